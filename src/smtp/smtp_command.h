/*
 * Splitting a command line into verb and arguments, and parsing the
 * ESMTP parameters of MAIL and RCPT (RFC 1870, 6152, 6531, 3030, 3461).
 */
#ifndef PETREL_SMTP_COMMAND_H
#define PETREL_SMTP_COMMAND_H

#include "base/str.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stdint.h>

enum smtp_verb {
    SMTP_CMD_UNKNOWN,
    SMTP_CMD_HELO,
    SMTP_CMD_EHLO,
    SMTP_CMD_MAIL,
    SMTP_CMD_RCPT,
    SMTP_CMD_DATA,
    SMTP_CMD_BDAT,
    SMTP_CMD_RSET,
    SMTP_CMD_NOOP,
    SMTP_CMD_QUIT,
    SMTP_CMD_HELP,
    SMTP_CMD_VRFY,
    SMTP_CMD_EXPN,
    SMTP_CMD_SEND,
    SMTP_CMD_SOML,
    SMTP_CMD_SAML,
    SMTP_CMD_TURN,
    SMTP_CMD_ETRN,
    SMTP_CMD_ATRN,
    SMTP_CMD_AUTH,
    SMTP_CMD_STARTTLS,
};

struct smtp_command {
    enum smtp_verb verb;
    struct str name; /* the verb as sent */
    struct str args; /* after the verb and one space; may be empty */
};

/* line excludes the CRLF. Never fails: unknown verbs get SMTP_CMD_UNKNOWN. */
void smtp_command_parse(struct str line, struct smtp_command *out);
/* "MAIL" etc.; "" for SMTP_CMD_UNKNOWN. */
const char *smtp_verb_name(enum smtp_verb v);

enum smtp_body { SMTP_BODY_7BIT, SMTP_BODY_8BITMIME, SMTP_BODY_BINARYMIME };
enum smtp_ret { SMTP_RET_NONE, SMTP_RET_FULL, SMTP_RET_HDRS };

#define SMTP_ENVID_MAX 100 /* RFC 3461 4.4 */
#define SMTP_ORCPT_MAX 500 /* RFC 3461 4.2: addr-type ";" xtext, bounded */

struct smtp_mail_params {
    bool has_size;
    uint64_t size;
    enum smtp_body body;
    bool smtputf8;
    enum smtp_ret ret;
    char envid[SMTP_ENVID_MAX + 1]; /* xtext as received; "" if absent */
};

/* RFC 3461 4.1 NOTIFY bits; 0 = not given. */
enum {
    SMTP_NOTIFY_NEVER = 1,
    SMTP_NOTIFY_SUCCESS = 2,
    SMTP_NOTIFY_FAILURE = 4,
    SMTP_NOTIFY_DELAY = 8,
};

struct smtp_rcpt_params {
    unsigned notify;
    char orcpt[SMTP_ORCPT_MAX + 1]; /* "rfc822;user@example.org" as received; "" if absent */
};

/* Which extensions the session offers, so parameters of others are refused. */
struct smtp_param_policy {
    bool size, eightbit, binarymime, smtputf8, dsn;
    bool auth; /* RFC 4954 5: the AUTH= parameter of MAIL */
};

/*
 * Parse "SIZE=1000 BODY=8BITMIME ..." (the text after the path). Unknown or
 * not-offered keywords give 555 5.5.4 (RFC 5321 4.1.1.11); bad values 501
 * 5.5.4; duplicates 501 5.5.4. Returns 0 or -1 with err filled.
 */
int smtp_mail_params_parse(struct str in, const struct smtp_param_policy *pol,
                           struct smtp_mail_params *out, struct smtp_reply *err);
int smtp_rcpt_params_parse(struct str in, const struct smtp_param_policy *pol,
                           struct smtp_rcpt_params *out, struct smtp_reply *err);

#endif
