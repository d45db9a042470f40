/*
 * Internals shared by smtp_client.c (reply framing, connection set-up,
 * RSET/QUIT, failures) and smtp_client_tx.c (one message's transaction).
 * Not for other modules.
 */
#ifndef PETREL_SMTP_CLIENT_IMPL_H
#define PETREL_SMTP_CLIENT_IMPL_H

#include "smtp/smtp_client.h"
#include "smtp/smtp_reply_parse.h"

/* Commands never grow without bound; a message adds its own size on top
 * (smtp_client_send raises the cap for it). */
#define SMTP_CLIENT_OUT_MAX (1u << 20)

/* What the client waits for. Every state but READY, DONE, FAILED and
 * CLOSED is SMTP_CLIENT_BUSY to the caller. */
enum smtp_client_state {
    SMTP_CLIENT_ST_GREETING,  /* the 220 */
    SMTP_CLIENT_ST_EHLO,      /* EHLO or LHLO reply */
    SMTP_CLIENT_ST_HELO,      /* HELO reply, after EHLO was refused */
    SMTP_CLIENT_ST_STARTTLS,  /* STARTTLS reply */
    SMTP_CLIENT_ST_TLS,       /* the caller's handshake (SMTP_CLIENT_TLS) */
    SMTP_CLIENT_ST_AUTH,      /* the final AUTH reply (235) */
    SMTP_CLIENT_ST_AUTH_USER, /* AUTH LOGIN: the 334 asking for the user name */
    SMTP_CLIENT_ST_AUTH_PASS, /* AUTH LOGIN: the 334 asking for the password */
    SMTP_CLIENT_ST_READY,     /* nothing outstanding */
    SMTP_CLIENT_ST_MAIL,      /* MAIL reply */
    SMTP_CLIENT_ST_RCPT,      /* RCPT reply number cursor */
    SMTP_CLIENT_ST_DATA,      /* DATA reply: 354 wanted */
    SMTP_CLIENT_ST_FINAL,     /* after the dot or BDAT LAST (LMTP: reply number cursor) */
    SMTP_CLIENT_ST_EMPTY_DOT, /* after the lone dot that answers a stray 354 */
    SMTP_CLIENT_ST_DONE,      /* transaction over, results final */
    SMTP_CLIENT_ST_RSET,      /* RSET reply */
    SMTP_CLIENT_ST_QUIT,      /* QUIT reply */
    SMTP_CLIENT_ST_FAILED,
    SMTP_CLIENT_ST_CLOSED,
};

struct smtp_client_rcpt_state {
    struct smtp_reply result; /* code 0 until the recipient's outcome is known */
    bool accepted;            /* RCPT got a 2xx */
};

struct smtp_client {
    char *helo_name;
    bool lmtp;
    enum smtp_client_state state;
    enum smtp_client_tls tls;
    bool tls_active;
    bool authenticated;
    char *server_name;
    char *auth_user, *auth_pass; /* NULL = no AUTH; wiped at free */
    struct buf out;
    struct smtp_reply_parser rp;
    struct smtp_client_ext ext;
    struct smtp_reply error; /* code 0 = none */

    /* the transaction */
    const struct smtp_client_message *msg; /* NULL outside one */
    struct smtp_client_rcpt_state *rcpt;   /* results stay until the next send */
    size_t nrcpts;
    size_t rcpt_cap;
    size_t cursor;    /* the RCPT (or LMTP final) reply expected next */
    size_t naccepted; /* recipients RCPT accepted */
    bool pipelining;  /* commands of this transaction sent as one group */
    bool chunking;    /* BDAT instead of DATA */
    bool mail_refused;
    bool tx_open; /* the server holds transaction state: RSET before the next */
};

/* The only way to change state; never leaves FAILED or CLOSED. */
void smtp_client_set_state(struct smtp_client *cl, enum smtp_client_state st);
/* Queues a command; -1 (and FAILED) if the output cap is reached. */
int smtp_client_cmd(struct smtp_client *cl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends raw octets to the output; -1 (and FAILED) past the cap. */
int smtp_client_put(struct smtp_client *cl, const char *p, size_t n);
/* Ends the connection: recipients without an outcome get r, and r is the
 * error. */
void smtp_client_fail(struct smtp_client *cl, const struct smtp_reply *r);
/* FAILED with the synthetic 451 4.4.0 "protocol error: what". */
void smtp_client_protocol_error(struct smtp_client *cl, const char *what);
/* Wipes the string's bytes, then frees it (credentials); NULL is fine. */
void smtp_client_wipe_free(char *s);
/* Whether the server's AUTH list holds mech (upper-case). */
bool smtp_client_auth_offered(const struct smtp_client_ext *e, const char *mech);
/* Records r as the outcome of recipient i. */
void smtp_client_rcpt_result(struct smtp_client *cl, size_t i, const struct smtp_reply *r);

/* A complete reply in one of the transaction states (MAIL .. EMPTY_DOT). */
void smtp_client_tx_reply(struct smtp_client *cl, const struct smtp_reply *r);

/* smtp_client_tls.c: after a successful EHLO or HELO, what comes next:
 * STARTTLS, AUTH, a policy failure, or READY. */
void smtp_client_greeted(struct smtp_client *cl);
/* A complete reply in STARTTLS or one of the AUTH states. */
void smtp_client_tls_reply(struct smtp_client *cl, const struct smtp_reply *r);
/* Sends EHLO (LHLO), forgetting the extensions known so far. */
void smtp_client_send_ehlo(struct smtp_client *cl);

#endif
