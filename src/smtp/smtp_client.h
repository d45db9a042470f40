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
 *
 * TLS (RFC 3207) and AUTH (RFC 4954) as a client: after EHLO the client
 * sends STARTTLS when the policy asks for it and the server offers it; on
 * the 220 it stops with SMTP_CLIENT_TLS, the caller runs the handshake and
 * reports it with smtp_client_tls_done(), and the client says EHLO again.
 * With credentials it then authenticates (AUTH PLAIN, else LOGIN), never
 * before TLS is active. READY means all of that is done.
 */
#ifndef PETREL_SMTP_CLIENT_H
#define PETREL_SMTP_CLIENT_H

#include "base/buf.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* When to use TLS. */
enum smtp_client_tls {
    SMTP_CLIENT_TLS_NO,       /* never STARTTLS */
    SMTP_CLIENT_TLS_MAY,      /* STARTTLS when offered; in the clear when not or refused */
    SMTP_CLIENT_TLS_MUST,     /* STARTTLS or every recipient gets 4.7.x, nothing sent */
    SMTP_CLIENT_TLS_IMPLICIT, /* TLS from the first byte (RFC 8314): already active */
};

struct smtp_client_settings {
    const char *helo_name;    /* our hostname for EHLO/HELO/LHLO */
    bool lmtp;                /* RFC 2033: LHLO, one reply per recipient after DATA */
    enum smtp_client_tls tls; /* default NO */
    const char *server_name;  /* for error texts ("... offered by HOST"); NULL: "the server" */
    /* RFC 4954: authenticate when both are set (copied, wiped at free).
     * Only over TLS: without it the client fails (4.7.x) instead. */
    const char *auth_user, *auth_pass;
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
    bool eightbit;     /* BODY=8BITMIME content */
    bool smtputf8;     /* needs SMTPUTF8 */
    int ret;           /* enum smtp_ret: DSN RET, 0 = none */
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
    SMTP_CLIENT_TLS,    /* STARTTLS answered 220: handshake now, then smtp_client_tls_done() */
};

struct smtp_client;

/* Copies s (its strings too); waits for the greeting. Never fails. */
struct smtp_client *smtp_client_new(const struct smtp_client_settings *s);
void smtp_client_free(struct smtp_client *cl);

/* Server bytes in; returns octets consumed (whole reply lines; keep the
 * rest and feed it again with more). Stops after the reply that makes the
 * client READY or DONE, so that the caller acts (send, next, quit) before
 * the rest is fed; a reply that then arrives unasked is a protocol error.
 * Consumes nothing once FAILED or CLOSED. */
size_t smtp_client_feed(struct smtp_client *cl, const char *p, size_t n);
/* Commands and data to send; the caller sends and buf_reset()s it. The
 * message is copied in too (its max grows with it). If the caller never
 * drains it, the client ends FAILED with 451 4.3.0. */
struct buf *smtp_client_output(struct smtp_client *cl);
enum smtp_client_event smtp_client_event(const struct smtp_client *cl);
const struct smtp_client_ext *smtp_client_ext(const struct smtp_client *cl);
/* True once TLS is active (after smtp_client_tls_done(cl, true), or from
 * the start with SMTP_CLIENT_TLS_IMPLICIT). */
bool smtp_client_tls_active(const struct smtp_client *cl);
/* True once AUTH succeeded (235). */
bool smtp_client_authenticated(const struct smtp_client *cl);

/*
 * Only in SMTP_CLIENT_TLS: the caller's handshake result. ok: TLS is
 * active, the client forgets what the server said before (RFC 3207 4.2)
 * and sends EHLO again. !ok: FAILED with 451 4.7.0 (the caller knows why
 * and may log or report better). Any server bytes fed while in
 * SMTP_CLIENT_TLS are a protocol error: they were sent before the
 * handshake and must not be taken as replies (plaintext injection).
 */
void smtp_client_tls_done(struct smtp_client *cl, bool ok);

/*
 * Starts a transaction (only when READY). m and everything it points to
 * must stay valid until DONE/FAILED. Before sending anything it checks the
 * message against the server's extensions: SMTPUTF8 needed and not offered
 * -> every recipient fails with 550 5.6.7; SIZE over the server's limit ->
 * 552 5.3.4 (the caller may try another host); both give DONE at once.
 * Uses PIPELINING (RFC 2920), BODY=8BITMIME (RFC 6152), SMTPUTF8, DSN
 * parameters when offered (RFC 3461 5.2), BDAT when CHUNKING is offered
 * (RFC 3030; one "BDAT n LAST" chunk of the message as is; not for LMTP),
 * else DATA with dot-stuffing (bare CR or LF in the message go out as
 * CRLF). BODY=8BITMIME is only added when offered; 8-bit content is not
 * downgraded for a server without it.
 *
 * Returns 0, or -1 with nothing sent when not READY or m is unusable: no
 * recipients, a control character in the sender or an address, a space or
 * control character in envid or orcpt (no command injection).
 */
int smtp_client_send(struct smtp_client *cl, const struct smtp_client_message *m);

/* After DONE: the result for recipient i (2xx delivered, 4xx retry, 5xx
 * failed). A refused MAIL or DATA gives every recipient that reply. After
 * FAILED mid-transaction, recipients without an outcome get the reply that
 * ended things (4xx). status is a static string, never NULL here: without
 * an enhanced code from the server it is the class's "2.0.0"/"4.0.0"/
 * "5.0.0", so the reply may be copied by value. The pointer stays valid
 * until the next smtp_client_send() or free; NULL for i out of range or
 * no outcome yet. */
const struct smtp_reply *smtp_client_result(const struct smtp_client *cl, size_t i);
/* After DONE/FAILED: the reply that ended things, for logs ("421 ..."):
 * a refused MAIL/DATA/message, a failed pre-check, the greeting or EHLO
 * refusal, or a synthetic 451 4.4.0 "protocol error: ..." (malformed or
 * unexpected reply, line over 4096 octets, over 100 lines). TLS and AUTH
 * failures are always temporary (a policy or password problem is the
 * admin's to fix, not a reason to bounce): 451 4.7.0 "TLS required but
 * not offered by HOST" (or refused), 454 4.7.8 "authentication failed
 * at HOST: 535 ..." (the server's reply without credentials), 451 4.7.0
 * when credentials would have to go without TLS or no usable mechanism is
 * offered. NULL if none. */
const struct smtp_reply *smtp_client_error(const struct smtp_client *cl);
/* Back to READY after DONE (RSET is sent only if needed: MAIL accepted and
 * the transaction not ended by the server; BUSY until its 2xx). */
void smtp_client_next(struct smtp_client *cl);
/* READY or DONE: sends QUIT, CLOSED after any reply. In any other state
 * (FAILED, or giving up while BUSY) goes CLOSED at once, sending nothing. */
void smtp_client_quit(struct smtp_client *cl);
/* Seconds to wait for the awaited reply (RFC 5321 4.5.3.2: 5 min, 2 min
 * for DATA's 354, 10 min after the final dot); 0 when none is awaited. The
 * 3 min per data block of sending is the caller's own write timeout. */
unsigned smtp_client_timeout(const struct smtp_client *cl);

#endif
