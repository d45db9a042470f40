/*
 * Delivery into a Maildir (https://cr.yp.to/proto/maildir.html): write in
 * tmp/ under a unique name, sync its data (sync_group_data), rename into
 * new/, fsync new/ (shared: sync_group_dir). Blocking:
 * call from a worker thread.
 */
#ifndef PETREL_MAILDIR_H
#define PETREL_MAILDIR_H

#include <stddef.h>

/*
 * Expands the action's template ("/var/mail/%{user}") for user into out.
 * Refuses names that could escape the mail directory ("/", leading ".",
 * controls). 0 or -1 with err.
 */
int maildir_path(const char *tmpl, const char *user, char *out, size_t n, char *err, size_t errlen);

/*
 * Stores head (LF lines, e.g. Return-Path) followed by msg (CRLF lines,
 * converted to LF) as one new message in the Maildir at dir, creating the
 * Maildir if missing. Returns 0, or -errno with err filled.
 */
int maildir_deliver(const char *dir, const char *head, const char *msg, size_t len, char *err,
                    size_t errlen);

#endif
