/*
 * The SMTP server side as a pure state machine: bytes in, replies out, and
 * requests for the outside world. No sockets, no disk, no clock.
 *
 *   srv = smtp_server_new(&settings, &hooks, ctx);   // greeting queued
 *   n = smtp_server_feed(srv, bytes, len);           // consumes what it can
 *   out = smtp_server_output(srv);                   // replies to send
 *   if (smtp_server_state(srv) == SMTP_STATE_COMMIT) // message complete:
 *       ... store it durably, then smtp_server_commit_done(srv, ...)
 *
 * Synchronous questions (is this recipient acceptable?) go through hooks;
 * the one asynchronous step, the durable commit, parks the machine in
 * SMTP_STATE_COMMIT: feed() then consumes nothing until commit_done().
 * AUTH parks it the same way in SMTP_STATE_AUTH_WAIT until auth_done(),
 * and STARTTLS in SMTP_STATE_STARTTLS until starttls_done().
 */
#ifndef PETREL_SMTP_SERVER_H
#define PETREL_SMTP_SERVER_H

#include "base/buf.h"
#include "smtp/smtp_address.h"
#include "smtp/smtp_command.h"
#include "smtp/smtp_data.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stdint.h>

enum smtp_state {
    SMTP_STATE_INIT,      /* greeted; HELO/EHLO needed before MAIL */
    SMTP_STATE_READY,     /* no transaction */
    SMTP_STATE_MAIL,      /* sender given */
    SMTP_STATE_RCPT,      /* at least one recipient accepted */
    SMTP_STATE_DATA,      /* reading the body after 354 */
    SMTP_STATE_BDAT,      /* reading a BDAT chunk */
    SMTP_STATE_COMMIT,    /* message complete, waiting for commit_done() */
    SMTP_STATE_AUTH,      /* AUTH exchange: reading SASL continuation lines */
    SMTP_STATE_AUTH_WAIT, /* credentials handed to hooks.auth, waiting for auth_done() */
    SMTP_STATE_STARTTLS,  /* 220 to STARTTLS queued: the caller discards any input
                           * that followed, does the handshake, then starttls_done() */
    SMTP_STATE_TURNED,    /* ATRN accepted: once the 250 is out, the connection is
                           * the session's to use as a client (RFC 2645) */
    SMTP_STATE_CLOSED,    /* QUIT or 421: flush output, then close */
};

/* RFC 821 3.4: how the message is to be delivered. */
enum smtp_mode {
    SMTP_MODE_MAIL, /* mailbox */
    SMTP_MODE_SEND, /* terminal only */
    SMTP_MODE_SOML, /* terminal, or mailbox if not logged in */
    SMTP_MODE_SAML, /* terminal and mailbox */
};

struct smtp_server_settings {
    const char *hostname;
    const char *peer_ip;   /* for the EHLO greeting line */
    uint64_t message_size; /* SIZE; also the decoded-body cap */
    unsigned max_recipients;
    unsigned max_errors;
    unsigned max_received;
    size_t line_length; /* DATA text lines */
    bool vrfy, expn, terminal_delivery;
    bool reject_bare_newline;
    bool auth_offered;  /* advertise and accept AUTH PLAIN LOGIN (RFC 4954) */
    bool auth_required; /* submission (RFC 6409): MAIL needs AUTH first (530) */
    bool auth_insecure; /* AUTH also without TLS; otherwise 538 until STARTTLS */
    bool starttls;      /* offer STARTTLS (RFC 3207) */
    bool tls;           /* TLS from the first byte (RFC 8314 implicit TLS) */
};

/*
 * Hooks the session provides. Each returns 0 to accept or -1 with r filled
 * (code and status) to refuse. Strings passed in are valid for the call only.
 */
struct smtp_server_hooks {
    int (*mail)(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
                const struct smtp_mail_params *p, struct smtp_reply *r);
    int (*rcpt)(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
                struct smtp_reply *r);
    /* The transaction ended without a commit (RSET, HELO, error). */
    void (*reset)(void *ctx);
    /* VRFY with `vrfy on`: fill out ("alice@example.org"). */
    int (*vrfy)(void *ctx, struct str arg, char *out, size_t n, struct smtp_reply *r);
    /* EXPN with `expn on`: append one address per line ("\n"-separated). */
    int (*expn)(void *ctx, struct str arg, struct buf *lines, struct smtp_reply *r);
    /* ETRN (RFC 1985) for node ("example.org", "@example.org"): fill r with
     * the 25x reply and return 0, or an error and -1. NULL: not offered. */
    int (*etrn)(void *ctx, struct str node, struct smtp_reply *r);
    /* AUTH (with settings.auth_offered): the exchange is complete and the
     * machine is parked in SMTP_STATE_AUTH_WAIT. Check the credentials
     * asynchronously, then call smtp_server_auth_done(). The strings are
     * valid for the call only and wiped after it: copy what is needed, and
     * wipe the copy of password when done. authzid is "" or authcid. */
    void (*auth)(void *ctx, const char *authzid, const char *authcid, const char *password);
    /* ATRN (RFC 2645) by an authenticated client, for domains ("a.example,b.example", or
     * "" for all of the user's): 0 with r = 250 turns the connection round (state
     * TURNED); -1 with r = 450/453/... refuses. NULL: not offered. */
    int (*atrn)(void *ctx, struct str domains, struct smtp_reply *r);
};

struct smtp_server;

/* Queues the 220 greeting. settings and its strings must outlive srv. */
struct smtp_server *smtp_server_new(const struct smtp_server_settings *s,
                                    const struct smtp_server_hooks *hooks, void *ctx);
void smtp_server_free(struct smtp_server *srv);

/* Consumes as much of p as it can now; returns the octets consumed. The
 * caller keeps the rest (an incomplete line, or anything while parked in
 * COMMIT/CLOSED) and feeds it again later. */
size_t smtp_server_feed(struct smtp_server *srv, const char *p, size_t n);
/* Replies waiting to be sent; the caller sends and buf_reset()s it. */
struct buf *smtp_server_output(struct smtp_server *srv);
enum smtp_state smtp_server_state(const struct smtp_server *srv);

/* In COMMIT: the decoded message (CRLF lines, dot-stuffing undone). */
const struct buf *smtp_server_message(const struct smtp_server *srv);
/* The HELO/EHLO name, whether EHLO was used, and the transaction. */
const char *smtp_server_helo(const struct smtp_server *srv);
bool smtp_server_esmtp(const struct smtp_server *srv);
enum smtp_mode smtp_server_mode(const struct smtp_server *srv);
const struct smtp_mail_params *smtp_server_mail_params(const struct smtp_server *srv);
/* How many Received: fields the message carried (loop detection). */
unsigned smtp_server_received_count(const struct smtp_server *srv);

/* Ends COMMIT: result NULL = stored under queue_id ("250 ... queued as"),
 * else the reply to give (451 4.3.0 ...). The transaction is reset. */
void smtp_server_commit_done(struct smtp_server *srv, const struct smtp_reply *result,
                             const char *queue_id);
/* Ends AUTH_WAIT: 235 2.7.0 on success (the session is authenticated),
 * else 535 5.7.8; feeding resumes. */
void smtp_server_auth_done(struct smtp_server *srv, bool ok);
/* Whether an AUTH exchange has succeeded in this session. */
bool smtp_server_authenticated(const struct smtp_server *srv);
/* Ends STARTTLS after a successful handshake: RFC 3207 4.2, the session
 * starts over (EHLO needed again, nothing learnt before TLS is kept) and
 * nothing is sent, not even a greeting. */
void smtp_server_starttls_done(struct smtp_server *srv);
/* Whether the session runs inside TLS (implicit, or after STARTTLS). */
bool smtp_server_tls(const struct smtp_server *srv);
/* Queues a 421 with the text and moves to CLOSED (timeouts, shutdown). */
void smtp_server_close(struct smtp_server *srv, const char *status, const char *text);

#endif
