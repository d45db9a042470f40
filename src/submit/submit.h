/*
 * Local submission, as the sendmail command does it: recipients routed as
 * the daemon routes those of the local sendmail command, the header fixes
 * RFC 6409 8 allows a submission server (Date, Message-ID, From; Bcc
 * removed), the trace header, and a durable store into the spool that
 * needs no running daemon. Nothing here reads stdin or argv (sendmail.c).
 */
#ifndef PETREL_SUBMIT_H
#define PETREL_SUBMIT_H

#include "base/buf.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "smtp/smtp_address.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* ---- the envelope ---- */

struct submit {
    const struct config *cf; /* borrowed */
    struct envelope *env;    /* owned; NULL outside a transaction */
    unsigned naccepted;      /* recipients accepted, before alias expansion */
    char first_rcpt[SMTP_PATH_MAX + 1];
};

void submit_init(struct submit *s, const struct config *cf);
/* Frees the transaction, if any. */
void submit_clear(struct submit *s);
/* Starts a transaction from sender ("" = the null sender); helo is the
 * HELO/EHLO name of a `sendmail -bs` session, "" otherwise. */
void submit_begin(struct submit *s, const char *sender, const char *helo);
/*
 * Routes one recipient with route_client.local = true, exactly as the
 * daemon routes it (aliases, user+tag); an alias and its members, or two
 * spellings of one mailbox, make one envelope recipient. 0, or -1 with err
 * (router_rcpt's replies).
 */
int submit_rcpt(struct submit *s, const struct smtp_path *to, unsigned notify, const char *orcpt,
                struct smtp_reply *err);

/*
 * An address as a command line or a header field gives it: "alice@example.org",
 * "<alice@example.org>" or a bare name. A bare name is a local mailbox or
 * alias, qualified with the domain its action is known by ("alice+x" ->
 * "alice+x@example.org"; "postmaster" -> <Postmaster>); an unknown bare name
 * is 550 5.1.1. 0, or -1 with err (553 5.1.3 for bad syntax).
 */
int submit_parse_rcpt(const struct config *cf, const char *addr, struct smtp_path *out,
                      struct smtp_reply *err);
/* A sender (-f): "" or "<>" is the null sender (out->null); a bare name is
 * qualified with the config hostname. 0, or -1 with err. */
int submit_parse_sender(const struct config *cf, const char *addr, struct smtp_path *out,
                        struct smtp_reply *err);

/* ---- the message ---- */

/* One header field: name, value (after the colon, folded lines kept) and
 * the whole field with its final CRLF; slices of the message. */
struct submit_field {
    struct str name;
    struct str value;
    struct str raw;
};

/*
 * The next header field of *msg (CRLF lines), advancing *msg past it.
 * False at the end of the header section: *msg then starts with the empty
 * line, with the first line that is not a header field, or is empty.
 */
bool submit_next_field(struct str *msg, struct submit_field *f);

/*
 * The addr-specs of an RFC 5322 address-list (To, Cc, Bcc values): groups,
 * display names, comments and quoted strings are understood; each address
 * goes to cb (NUL-terminated, without angle brackets or route). Returns
 * how many were found.
 */
size_t submit_address_list(struct str value, void (*cb)(void *arg, const char *addr), void *arg);

/* Addresses of the To, Cc and Bcc fields of msg's header section (-t). */
size_t submit_header_rcpts(struct str msg, void (*cb)(void *arg, const char *addr), void *arg);

struct submit_fixes {
    const char *from_addr; /* for an added From: */
    const char *from_name; /* its display name; NULL or "" for none */
    const char *msgid;     /* for an added Message-ID: "<...>" */
    time_t now;            /* for an added Date: */
};

/*
 * Writes msg (CRLF lines) to out without its Bcc fields, adding Date,
 * Message-ID and From at the end of the header section when they are
 * missing (RFC 6409 8.2, 8.3, 8.1), and an empty line before a body that
 * started without one. 0, or -1 when out's max is exceeded.
 */
int submit_fix_headers(struct str msg, const struct submit_fixes *fx, struct buf *out)
    __attribute__((warn_unused_result));

/* RFC 5322 3.3 date-time in local time: "Sun, 22 Nov 2026 13:25:18 +0000". */
void submit_date(time_t t, char *out, size_t n);

/*
 * The RFC 5321 4.4 trace field of a local submission, with its CRLF:
 *   Received: by HOST (petrel, from userid UID)
 *           id ID; DATE
 * and for `sendmail -bs` (helo given) "from HELO" first and "with PROTO".
 * for_rcpt ("" for none) adds "for <ADDR>". 0, or -1 if out is full.
 */
struct submit_trace {
    const char *hostname;
    unsigned uid;
    const char *helo;     /* "" unless -bs */
    const char *protocol; /* "SMTP", "ESMTP", "UTF8SMTP"; -bs only */
    const char *id;
    const char *for_rcpt;
    time_t now;
};
int submit_trace(const struct submit_trace *t, struct buf *out) __attribute__((warn_unused_result));

/* ---- the store ---- */

/*
 * Picks a fresh queue id for the transaction: unused in queue/ and hold/,
 * its counter mixed with the process id so that two sendmail commands in
 * the same microsecond differ.
 */
void submit_new_id(struct submit *s, const char *spool);

/*
 * Writes the envelope, trace and message (CRLF lines) into the spool at
 * spool_dir durably (write, fdatasync, rename, fsync of queue/), under the
 * id from submit_new_id(), beside a running daemon without disturbing it.
 * Sets the arrival time, 8BITMIME and SMTPUTF8 when the content needs them.
 * 0, or an errno value with err filled; EEXIST when another process took
 * the id meanwhile (take a new one and try again).
 */
int submit_store(struct submit *s, const char *spool_dir, struct str trace, struct str msg,
                 char *err, size_t errlen);

/*
 * Tells a running daemon about a stored message ("pickup ID" on
 * <spool>/control.sock) so it delivers at once. Returns 0, or -1 when no
 * daemon took it (it delivers at its next start).
 */
int submit_pickup(const char *spool_dir, const char *id);

#endif
