/*
 * RFC 5321 4.1.2 paths: "<local@domain>", "<>", "<Postmaster>", with quoted
 * local parts, address literals and source routes (accepted, ignored).
 * Pure parsing: no knowledge of which domains are ours.
 */
#ifndef PETREL_SMTP_ADDRESS_H
#define PETREL_SMTP_ADDRESS_H

#include "base/str.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>

#define SMTP_LOCAL_MAX 64   /* RFC 5321 4.5.3.1.1 */
#define SMTP_DOMAIN_MAX 255 /* RFC 5321 4.5.3.1.2 */
#define SMTP_PATH_MAX 256   /* RFC 5321 4.5.3.1.3, with the brackets */

struct smtp_path {
    bool null;                        /* "<>" */
    bool had_route;                   /* "<@a,@b:user@dom>": route dropped */
    bool quoted;                      /* local part was a quoted-string */
    bool utf8;                        /* contains non-ASCII octets (needs SMTPUTF8) */
    bool literal;                     /* domain is an address literal "[192.0.2.1]" */
    bool no_domain;                   /* "<Postmaster>" form, only legal for RCPT */
    char local[SMTP_LOCAL_MAX + 1];   /* decoded: quotes and backslashes removed */
    char domain[SMTP_DOMAIN_MAX + 1]; /* as written, literal with brackets */
};

enum smtp_path_kind {
    SMTP_PATH_SENDER,    /* MAIL FROM: "<>" allowed */
    SMTP_PATH_RECIPIENT, /* RCPT TO: "<Postmaster>" allowed */
};

/*
 * Parses the path at the start of in (after "FROM:" / "TO:", optional
 * spaces before "<" are tolerated). utf8_ok permits non-ASCII octets
 * (RFC 6531). On success returns 0, fills *out, and sets *rest to what
 * follows the ">" (the parameters). On failure returns -1 and fills err
 * with 501 5.1.7 (sender) or 501 5.1.3 (recipient), the text naming the
 * problem; over-long parts are 501 too ("Path too long", RFC 5321
 * 4.5.3.1.10).
 */
int smtp_path_parse(struct str in, enum smtp_path_kind kind, bool utf8_ok, struct smtp_path *out,
                    struct str *rest, struct smtp_reply *err);

/*
 * Writes "local@domain" (no brackets) into out, quoting the local part when
 * it needs it per RFC 5321 4.1.2. "" for the null path. Returns length, or
 * -1 if n is too small.
 */
int smtp_path_format(const struct smtp_path *p, char *out, size_t n);

#endif
