/*
 * Internals shared by smtp_server.c (input framing, replies, state) and
 * smtp_server_cmd.c (one handler per command). Not for other modules.
 */
#ifndef PETREL_SMTP_SERVER_IMPL_H
#define PETREL_SMTP_SERVER_IMPL_H

#include "smtp/smtp_sasl.h"
#include "smtp/smtp_server.h"

/* RFC 5321 4.5.3.1.4: 512 octets with CRLF. MAIL and RCPT may grow by
 * RFC 3461 5: +100 (ENVID) and +500 (ORCPT); we allow both for both. */
#define SMTP_CMD_LINE_MAX 512
#define SMTP_PARAM_LINE_MAX (512 + 600)
/* RFC 4954 4: AUTH lines carry base64 responses; room for the longest
 * response sasl.h accepts, after "AUTH PLAIN ". */
#define SMTP_AUTH_LINE_MAX (SASL_LINE_MAX + 32)

struct smtp_server {
    const struct smtp_server_settings *set;
    struct smtp_server_hooks hooks;
    void *ctx;
    enum smtp_state state;
    struct buf out;
    struct buf msg;
    struct smtp_data data;

    char helo[256];
    bool esmtp;
    unsigned errors;
    bool skipping_line; /* discarding the rest of an over-long line */
    bool skipping_bdat; /* ... which was a BDAT command: close after it */

    /* AUTH (RFC 4954) */
    struct sasl sasl;
    bool authenticated;
    bool tls; /* inside TLS: implicit, or after STARTTLS */

    /* the transaction */
    bool in_tx; /* MAIL accepted; the session holds an envelope */
    enum smtp_mode mode;
    struct smtp_mail_params mail;
    unsigned nrcpt;
    unsigned rcpt_tried;
    bool used_bdat;

    /* the BDAT chunk being read */
    uint64_t bdat_left;
    uint64_t bdat_size;
    bool bdat_last;
    struct smtp_reply bdat_err;  /* code != 0: discard the chunk, then reply this */
    enum smtp_state bdat_return; /* state after a discarded chunk */
};

/* Appends one reply line; last=false makes it a "250-" continuation. */
void smtp_reply_line(struct smtp_server *srv, int code, bool last, const char *status,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Single-line reply; 5xx replies count toward the session's error limit. */
void smtp_reply(struct smtp_server *srv, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void smtp_reply_err(struct smtp_server *srv, const struct smtp_reply *r);
void smtp_set_state(struct smtp_server *srv, enum smtp_state st);
/* Abandons the transaction and tells the session. */
void smtp_tx_reset(struct smtp_server *srv);
/* Body complete (DATA terminator or BDAT LAST): checks, then COMMIT. */
void smtp_body_end(struct smtp_server *srv);
/* The current BDAT chunk has been read in full. */
void smtp_bdat_chunk_end(struct smtp_server *srv);

/* One SASL continuation line in SMTP_STATE_AUTH. */
void smtp_auth_line(struct smtp_server *srv, struct str line);
/* Ends an AUTH exchange that could not finish (line too long). */
void smtp_auth_abort(struct smtp_server *srv);

void smtp_server_dispatch(struct smtp_server *srv, const struct smtp_command *cmd, size_t linelen);
/* HELP text for a topic; NULL if unknown. "" = the command list. */
const char *const *smtp_help_lines(struct str topic);

#endif
