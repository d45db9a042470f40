/*
 * RFC 821 terminal delivery (SEND, SOML, SAML): finding a user's terminals
 * in utmp and writing a message to them. Off unless `terminal-delivery on`.
 */
#ifndef PETREL_TERMINAL_H
#define PETREL_TERMINAL_H

#include <stdbool.h>
#include <stddef.h>

#define TERMINAL_MAX 8

/* Terminals ("pts/3") where user is logged in according to the utmp
 * file at path. Returns how many were found (at most max), 0 if none or
 * the file is unreadable. */
int terminal_find(const char *utmp_path, const char *user, char ttys[][40], int max);

/*
 * Writes the message to /dev/TTY without blocking (a terminal that does not
 * keep up gets a truncated copy, never a stalled server). Control
 * characters other than tab and newline are shown as '?', so mail cannot
 * drive the user's terminal. Returns 0 or -errno.
 */
int terminal_write(const char *tty, const char *sender, const char *msg, size_t len);

#endif
