/*
 * The SMTP/LMTP client side as a pure state machine, the mirror of
 * smtp_server.h: server reply bytes in, commands out, per-recipient results.
 * No sockets, no DNS, no clock: the caller connects, moves bytes, and runs
 * the timeouts of RFC 5321 4.5.3.2 around it.
 *
 *   cl = smtp_client_new(&settings);
 *   loop: smtp_client_feed(cl, bytes, n); send smtp_client_output(cl);
 *         switch (smtp_client_event(cl)) { ... }
 *
 * One connection can carry several messages (smtp_client_send() again once
 * the client is SMTP_CLIENT_READY), then smtp_client_quit().
 */
#ifndef PETREL_SMTP_CLIENT_H
#define PETREL_SMTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "smtp/smtp_reply.h"

struct smtp_client_settings {
    const char *helo_name; /* our hostname for EHLO/HELO/LHLO */
    bool lmtp;             /* RFC 2033: LHLO, one reply per recipient after DATA */
};

/* What the server offered in its EHLO reply. */
struct smtp_client_ext {
    bool esmtp; /* EHLO worked (else HELO was used) */
    bool pipelining, eightbitmime, smtputf8, chunking, dsn, starttls, enhancedstatuscodes;
    bool size;         /* SIZE advertised */
    uint64_t size_max; /* 0 = no limit given */
    char auth[128];    /* AUTH mechanisms, "" if none */
};

struct smtp_client_rcpt {
    const char *address;
    unsigned notify;   /* SMTP_NOTIFY_* bits, 0 = none */
    const char *orcpt; /* "rfc822;addr" xtext, "" = none */
};

struct smtp_client_message {
    const char *sender; /* "" = null sender */
    const struct smtp_client_rcpt *rcpts;
    size_t nrcpts;
    bool eightbit; /* BODY=8BITMIME content */
    bool smtputf8; /* needs SMTPUTF8 */
    int ret;       /* enum smtp_ret: DSN RET, 0 = none */
    const char *envid; /* DSN ENVID xtext, "" = none */
    const char *data;  /* the message: CRLF lines, not dot-stuffed */
    size_t len;
};

enum smtp_client_event {
    SMTP_CLIENT_BUSY,   /* waiting for replies: feed more */
    SMTP_CLIENT_READY,  /* greeted and EHLO done, idle: send a message or quit */
    SMTP_CLIENT_DONE,   /* the message's transaction ended: read the results */
    SMTP_CLIENT_FAILED, /* the connection is unusable (bad greeting, 421, protocol error) */
    SMTP_CLIENT_CLOSED, /* QUIT answered, or closed after FAILED */
};

struct smtp_client;

struct smtp_client *smtp_client_new(const struct smtp_client_settings *s);
void smtp_client_free(struct smtp_client *cl);

/* Server bytes in; returns octets consumed (whole reply lines; keep the
 * rest and feed it again with more). */
size_t smtp_client_feed(struct smtp_client *cl, const char *p, size_t n);
/* Commands and data to send; the caller sends and buf_reset()s it. */
struct buf *smtp_client_output(struct smtp_client *cl);
enum smtp_client_event smtp_client_event(const struct smtp_client *cl);
const struct smtp_client_ext *smtp_client_ext(const struct smtp_client *cl);

/*
 * Starts a transaction (only when READY). m and everything it points to
 * must stay valid until DONE/FAILED. Before sending anything it checks the
 * message against the server's extensions: SMTPUTF8 needed and not offered
 * -> every recipient fails with 550 5.6.7; SIZE over the server's limit ->
 * 552 5.3.4 (the caller may try another host); both give DONE at once.
 * Uses PIPELINING (RFC 2920), BODY=8BITMIME (RFC 6152), SMTPUTF8, DSN
 * parameters when offered (RFC 3461 5.2), BDAT when CHUNKING is offered
 * (RFC 3030), else DATA with dot-stuffing.
 */
int smtp_client_send(struct smtp_client *cl, const struct smtp_client_message *m);

/* After DONE: the result for recipient i (2xx delivered, 4xx retry, 5xx
 * failed). A refused MAIL or DATA gives every recipient that reply. */
const struct smtp_reply *smtp_client_result(const struct smtp_client *cl, size_t i);
/* After DONE/FAILED: the reply that ended things, for logs ("421 ..."). */
const struct smtp_reply *smtp_client_error(const struct smtp_client *cl);
/* Back to READY after DONE (RSET is sent only if needed). */
void smtp_client_next(struct smtp_client *cl);
void smtp_client_quit(struct smtp_client *cl);

#endif
