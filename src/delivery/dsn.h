/*
 * Delivery status notifications: RFC 3464 message/delivery-status inside
 * an RFC 6522 multipart/report, as RFC 3461 asks of a DSN-aware MTA.
 * Builds the message text only; queueing it is the caller's job.
 */
#ifndef PETREL_DSN_H
#define PETREL_DSN_H

#include "base/buf.h"

#include <stddef.h>
#include <stdint.h>

enum dsn_kind {
    DSN_FAILURE, /* permanent failure or expiry */
    DSN_DELAY,   /* still trying (delay warning) */
    DSN_SUCCESS, /* NOTIFY=SUCCESS: delivered */
};

struct dsn_rcpt {
    const char *address;      /* Final-Recipient: rfc822;address */
    const char *orcpt;        /* Original-Recipient, RFC 3461 xtext "rfc822;..." or "" */
    const char *action;       /* "failed", "delayed", "delivered", "relayed", "expanded" */
    const char *status;       /* "5.1.1" */
    const char *remote_mta;   /* "mx.example.net" or "" */
    const char *diagnostic;   /* the remote reply "550 5.1.1 no such user", or "" */
    int64_t last_attempt;     /* unix time, 0 = unknown */
    int64_t will_retry_until; /* for delays, 0 = omit */
};

struct dsn_report {
    enum dsn_kind kind;
    const char *reporting_mta; /* our hostname */
    const char *sender;        /* the original envelope sender: the DSN's To */
    const char *envid;         /* RFC 3461 ENVID xtext, "" = none */
    int64_t arrival;           /* Arrival-Date */
    int ret;                   /* enum smtp_ret: FULL = whole message, else headers only */
    const char *message;       /* the original message, CRLF lines */
    size_t message_len;
    const struct dsn_rcpt *rcpts;
    size_t nrcpts;
    int64_t now;        /* Date: and Message-ID, passed in for tests */
    const char *unique; /* makes Message-ID and the boundary unique (queue id) */
};

/*
 * Writes the whole DSN message (RFC 5322 header with From:
 * MAILER-DAEMON@reporting_mta, To: <sender>, Subject, Date, Message-ID,
 * Auto-Submitted: auto-replied (RFC 3834), MIME-Version, Content-Type
 * multipart/report; report-type=delivery-status; then a human-readable
 * part, the message/delivery-status part, and the original message as
 * message/rfc822 (RET=FULL) or text/rfc822-headers) into out, CRLF lines.
 * Returns 0 or -1 if out's cap is too small.
 */
int dsn_build(const struct dsn_report *r, struct buf *out) __attribute__((warn_unused_result));

#endif
