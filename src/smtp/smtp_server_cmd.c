/*
 * One handler per SMTP command (RFC 5321 4.1.1, RFC 821 for SEND/SOML/
 * SAML/TURN, RFC 3030 for BDAT). Each checks syntax and state, asks the
 * session through a hook where policy is involved, and replies.
 */
#include "smtp/smtp_server_impl.h"

#include <stdio.h>
#include <string.h>

static bool
helo_name_ok(struct str name)
{
    if (name.len == 0 || name.len > 255)
        return false;
    for (size_t i = 0; i < name.len; i++)
        if (name.ptr[i] <= ' ' || name.ptr[i] > '~')
            return false;
    return true;
}

static bool
auth_usable(const struct smtp_server *srv)
{
    return srv->set->auth_offered && (srv->tls || srv->set->auth_insecure);
}

static void
cmd_helo(struct smtp_server *srv, const struct smtp_command *cmd, bool esmtp)
{
    struct str name = str_trim(cmd->args);
    const struct smtp_server_settings *s = srv->set;

    if (!helo_name_ok(name)) {
        smtp_reply(srv, 501, "5.5.4", "syntax: %s hostname", esmtp ? "EHLO" : "HELO");
        return;
    }
    smtp_tx_reset(srv); /* RFC 5321 4.1.4: HELO/EHLO implies RSET */
    str_copy(name, srv->helo, sizeof(srv->helo));
    srv->esmtp = esmtp;
    srv->state = SMTP_STATE_READY;
    if (!esmtp) {
        smtp_reply_line(srv, 250, true, NULL, "%s Hello %s [%s]", s->hostname, srv->helo,
                        s->peer_ip);
        return;
    }
    /* Advertise exactly what is implemented (RFC 5321 4.1.1.1). */
    smtp_reply_line(srv, 250, false, NULL, "%s Hello %s [%s]", s->hostname, srv->helo, s->peer_ip);
    smtp_reply_line(srv, 250, false, NULL, "PIPELINING");
    smtp_reply_line(srv, 250, false, NULL, "SIZE %llu", (unsigned long long)s->message_size);
    smtp_reply_line(srv, 250, false, NULL, "8BITMIME");
    smtp_reply_line(srv, 250, false, NULL, "ENHANCEDSTATUSCODES");
    smtp_reply_line(srv, 250, false, NULL, "SMTPUTF8");
    smtp_reply_line(srv, 250, false, NULL, "CHUNKING");
    if (srv->hooks.etrn)
        smtp_reply_line(srv, 250, false, NULL, "ETRN");
    if (s->starttls && !srv->tls)
        smtp_reply_line(srv, 250, false, NULL, "STARTTLS");
    /* RFC 4954 4: mechanisms that send passwords in the clear are offered
     * only inside TLS, unless the listener is marked insecure. */
    if (auth_usable(srv))
        smtp_reply_line(srv, 250, false, NULL, "AUTH %s", SASL_MECHANISMS);
    if (auth_usable(srv) && srv->hooks.atrn)
        smtp_reply_line(srv, 250, false, NULL, "ATRN");
    smtp_reply_line(srv, 250, true, NULL, "DSN");
}

static struct smtp_param_policy
param_policy(const struct smtp_server *srv)
{
    bool e = srv->esmtp; /* RFC 5321 4.1.1.11: no parameters after HELO */

    return (struct smtp_param_policy){.size = e,
                                      .eightbit = e,
                                      .binarymime = false,
                                      .smtputf8 = e,
                                      .dsn = e,
                                      .auth = e && auth_usable(srv)};
}

/* "FROM:" / "TO:" prefix; returns false (and replies) if missing. */
static bool
take_prefix(struct smtp_server *srv, struct str *args, const char *prefix, const char *syntax)
{
    if (!str_iprefix(*args, prefix)) {
        smtp_reply(srv, 501, "5.5.4", "syntax: %s", syntax);
        return false;
    }
    args->ptr += strlen(prefix);
    args->len -= strlen(prefix);
    return true;
}

static bool
mail_allowed(struct smtp_server *srv, enum smtp_mode mode)
{
    if (srv->state == SMTP_STATE_INIT) {
        smtp_reply(srv, 503, "5.5.1", "send HELO or EHLO first");
        return false;
    }
    if (srv->in_tx) {
        smtp_reply(srv, 503, "5.5.1", "nested MAIL command");
        return false;
    }
    if (srv->set->auth_required && !srv->authenticated) {
        /* RFC 6409 4.3: submission needs authentication first */
        smtp_reply(srv, 530, "5.7.0", "Authentication required");
        return false;
    }
    if (mode == SMTP_MODE_SEND && !srv->set->terminal_delivery) {
        smtp_reply(srv, 502, "5.5.1", "SEND is disabled: terminal delivery is off on this server");
        return false;
    }
    return true;
}

static void
cmd_mail(struct smtp_server *srv, const struct smtp_command *cmd, enum smtp_mode mode)
{
    struct smtp_param_policy pol = param_policy(srv);
    struct smtp_mail_params params = {0};
    struct str args = cmd->args, rest;
    struct smtp_path from;
    struct smtp_reply r = {0};

    if (!mail_allowed(srv, mode) || !take_prefix(srv, &args, "FROM:", "MAIL FROM:<address>"))
        return;
    if (smtp_path_parse(args, SMTP_PATH_SENDER, true, &from, &rest, &r) < 0 ||
        smtp_mail_params_parse(str_trim(rest), &pol, &params, &r) < 0) {
        smtp_reply_err(srv, &r);
        return;
    }
    if (from.utf8 && !params.smtputf8) {
        smtp_reply(srv, 553, "5.6.7", "non-ASCII address needs the SMTPUTF8 parameter");
        return;
    }
    if (params.has_size && params.size > srv->set->message_size) {
        smtp_reply(srv, 552, "5.3.4", "message size exceeds fixed maximum message size");
        return;
    }
    if (srv->hooks.mail(srv->ctx, mode, &from, &params, &r) < 0) {
        smtp_reply_err(srv, &r);
        return;
    }
    srv->mail = params;
    srv->mode = mode;
    srv->in_tx = true;
    srv->state = SMTP_STATE_MAIL;
    smtp_reply(srv, 250, "2.1.0", "Ok");
}

static void
cmd_rcpt(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct smtp_param_policy pol = param_policy(srv);
    struct smtp_rcpt_params params = {0};
    struct str args = cmd->args, rest;
    struct smtp_path to;
    struct smtp_reply r = {0};

    if (!srv->in_tx) {
        smtp_reply(srv, 503, "5.5.1", "need MAIL before RCPT");
        return;
    }
    if (!take_prefix(srv, &args, "TO:", "RCPT TO:<address>"))
        return;
    if (smtp_path_parse(args, SMTP_PATH_RECIPIENT, true, &to, &rest, &r) < 0 ||
        smtp_rcpt_params_parse(str_trim(rest), &pol, &params, &r) < 0) {
        smtp_reply_err(srv, &r);
        return;
    }
    if (to.utf8 && !srv->mail.smtputf8) {
        /* RFC 6531 3.5: 553 and X.6.7 for RCPT, as for MAIL above */
        smtp_reply(srv, 553, "5.6.7", "non-ASCII address needs the SMTPUTF8 parameter");
        return;
    }
    if (srv->nrcpt >= srv->set->max_recipients) {
        /* RFC 5321 4.5.3.1.10: 452, and the client sends the rest later. */
        smtp_reply_line(srv, 452, true, "4.5.3", "too many recipients");
        return;
    }
    srv->rcpt_tried++;
    if (srv->hooks.rcpt(srv->ctx, &to, &params, &r) < 0) {
        smtp_reply_err(srv, &r);
        return;
    }
    srv->nrcpt++;
    srv->state = SMTP_STATE_RCPT;
    smtp_reply(srv, 250, "2.1.5", "Ok");
}

/* Whether a body may start now; replies if not (RFC 5321 3.3). */
static bool
body_allowed(struct smtp_server *srv, struct smtp_reply *r)
{
    if (srv->state == SMTP_STATE_RCPT)
        return true;
    if (!srv->in_tx)
        smtp_reply_set(r, 503, "5.5.1", "need MAIL command");
    else if (srv->rcpt_tried > 0)
        smtp_reply_set(r, 554, "5.5.1", "no valid recipients");
    else
        smtp_reply_set(r, 503, "5.5.1", "need RCPT command");
    return false;
}

static void
cmd_data(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct smtp_reply r = {0};

    if (cmd->args.len) {
        smtp_reply(srv, 501, "5.5.4", "syntax: DATA");
        return;
    }
    if (srv->used_bdat) {
        smtp_reply(srv, 503, "5.5.1", "DATA cannot follow BDAT in one transaction");
        return;
    }
    if (!body_allowed(srv, &r)) {
        smtp_reply_err(srv, &r);
        return;
    }
    smtp_data_begin(&srv->data, &srv->msg, false, false, srv->set->reject_bare_newline,
                    srv->set->line_length);
    srv->state = SMTP_STATE_DATA;
    smtp_reply_line(srv, 354, true, NULL, "End data with <CR><LF>.<CR><LF>");
}

/* "BDAT 1000" / "BDAT 1000 LAST" (RFC 3030 2). */
static bool
bdat_parse(struct str args, uint64_t *size, bool *last)
{
    struct str num = str_cut(&args, ' ');
    uint64_t v = 0;

    if (num.len == 0 || num.len > 19)
        return false;
    for (size_t i = 0; i < num.len; i++) {
        if (num.ptr[i] < '0' || num.ptr[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(num.ptr[i] - '0');
    }
    args = str_trim(args);
    *last = args.len > 0;
    if (*last && !str_ieq(args, "LAST"))
        return false;
    *size = v;
    return true;
}

static void
cmd_bdat(struct smtp_server *srv, const struct smtp_command *cmd)
{
    uint64_t size;
    bool last;

    if (!bdat_parse(cmd->args, &size, &last)) {
        /* Without a size the chunk cannot be skipped: give up on the session. */
        smtp_reply(srv, 501, "5.5.4", "syntax: BDAT size [LAST]");
        smtp_server_close(srv, "4.5.4", "cannot find the end of a malformed BDAT chunk");
        return;
    }
    srv->bdat_left = srv->bdat_size = size;
    srv->bdat_last = last;
    srv->bdat_return = srv->state;
    srv->bdat_err.code = 0;
    if (!srv->esmtp) {
        smtp_reply_set(&srv->bdat_err, 503, "5.5.1", "BDAT needs EHLO");
    } else if (body_allowed(srv, &srv->bdat_err) && !srv->used_bdat) {
        smtp_data_begin(&srv->data, &srv->msg, true, srv->mail.body == SMTP_BODY_BINARYMIME,
                        srv->set->reject_bare_newline, srv->set->line_length);
        srv->used_bdat = true;
    }
    srv->state = SMTP_STATE_BDAT;
    if (size == 0) /* nothing to read: the chunk is complete already */
        smtp_bdat_chunk_end(srv);
}

void
smtp_body_end(struct smtp_server *srv)
{
    const struct smtp_data *d = &srv->data;

    if (d->too_big)
        smtp_reply(srv, 552, "5.3.4", "message size exceeds fixed maximum message size");
    else if (d->bare_newline && srv->set->reject_bare_newline)
        smtp_reply(srv, 554, "5.6.0", "message contains bare CR or LF; lines must end in CRLF");
    else if (d->long_line)
        smtp_reply(srv, 554, "5.6.0", "message has a line longer than %zu octets",
                   srv->set->line_length);
    else if (d->received > srv->set->max_received)
        smtp_reply(srv, 554, "5.4.6", "too many Received headers: mail forwarding loop");
    else {
        smtp_set_state(srv, SMTP_STATE_COMMIT);
        return;
    }
    smtp_tx_reset(srv);
}

static void
cmd_rset(struct smtp_server *srv, const struct smtp_command *cmd)
{
    if (cmd->args.len) {
        smtp_reply(srv, 501, "5.5.4", "syntax: RSET");
        return;
    }
    smtp_tx_reset(srv);
    smtp_reply(srv, 250, "2.0.0", "Ok");
}

static void
cmd_quit(struct smtp_server *srv)
{
    smtp_reply(srv, 221, "2.0.0", "%s closing connection", srv->set->hostname);
    srv->state = SMTP_STATE_CLOSED;
}

static void
cmd_help(struct smtp_server *srv, const struct smtp_command *cmd)
{
    const char *const *lines = smtp_help_lines(str_trim(cmd->args));

    if (lines == NULL) {
        smtp_reply(srv, 504, "5.5.1", "no help on that topic; HELP lists the commands");
        return;
    }
    for (; lines[1]; lines++)
        smtp_reply_line(srv, 214, false, "2.0.0", "%s", lines[0]);
    smtp_reply_line(srv, 214, true, "2.0.0", "%s", lines[0]);
}

static void
cmd_vrfy(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct str arg = str_trim(cmd->args);
    struct smtp_reply r = {0};
    char addr[SMTP_PATH_MAX + 1];

    if (arg.len == 0) {
        smtp_reply(srv, 501, "5.5.4", "syntax: VRFY user");
        return;
    }
    if (!srv->set->vrfy) {
        /* RFC 5321 3.5.3: 252 when we will not say, but will accept mail. */
        smtp_reply(srv, 252, "2.5.0",
                   "Cannot VRFY user, but will accept message and attempt delivery");
        return;
    }
    if (srv->hooks.vrfy(srv->ctx, arg, addr, sizeof(addr), &r) < 0) {
        smtp_reply_err(srv, &r);
        return;
    }
    smtp_reply(srv, 250, "2.1.5", "<%s>", addr);
}

static void
cmd_expn(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct str arg = str_trim(cmd->args), lines, line;
    struct smtp_reply r = {0};
    struct buf out;

    if (arg.len == 0) {
        smtp_reply(srv, 501, "5.5.4", "syntax: EXPN list");
        return;
    }
    if (!srv->set->expn) {
        smtp_reply(srv, 502, "5.5.1", "EXPN is not available on this server");
        return;
    }
    buf_init(&out, 64 * 1024);
    if (srv->hooks.expn(srv->ctx, arg, &out, &r) < 0) {
        smtp_reply_err(srv, &r);
        buf_free(&out);
        return;
    }
    lines = buf_str(&out);
    if (lines.len == 0) /* every command gets a reply, or the client waits */
        smtp_reply(srv, 550, "5.1.1", "mailing list has no members");
    while (lines.len) {
        line = str_cut(&lines, '\n');
        smtp_reply_line(srv, 250, lines.len == 0, "2.1.5", "<%.*s>", (int)line.len, line.ptr);
    }
    buf_free(&out);
}

/* RFC 1985: ETRN [@|#]node asks us to run the queue for that node. */
static void
cmd_etrn(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct str node = str_trim(cmd->args);
    struct smtp_reply r = {0};

    if (srv->hooks.etrn == NULL) {
        smtp_reply(srv, 502, "5.5.1", "ETRN is not implemented");
        return;
    }
    if (srv->state == SMTP_STATE_INIT || srv->in_tx) {
        smtp_reply(srv, 503, "5.5.1",
                   srv->in_tx ? "ETRN is not allowed during a transaction"
                              : "send HELO or EHLO first");
        return;
    }
    if (node.len == 0 || node.len > 256 || memchr(node.ptr, ' ', node.len)) {
        smtp_reply(srv, 501, "5.5.4", "syntax: ETRN domain");
        return;
    }
    if (node.ptr[0] == '#') {
        smtp_reply(srv, 458, "4.5.0", "queue names are not supported; use ETRN domain");
        return;
    }
    srv->hooks.etrn(srv->ctx, node, &r);
    smtp_reply_err(srv, &r);
}

/* Acts on what struct sasl yields: a challenge, an error, or credentials. */
static void
auth_result(struct smtp_server *srv, enum sasl_result res)
{
    switch (res) {
    case SASL_CONTINUE:
        srv->state = SMTP_STATE_AUTH;
        smtp_reply_line(srv, 334, true, NULL, "%s", srv->sasl.challenge);
        return;
    case SASL_ERROR:
        smtp_set_state(srv, SMTP_STATE_READY);
        smtp_reply_err(srv, &srv->sasl.reply);
        sasl_clear(&srv->sasl);
        return;
    case SASL_DONE:
        break;
    }
    smtp_set_state(srv, SMTP_STATE_AUTH_WAIT);
    srv->hooks.auth(srv->ctx, srv->sasl.authzid, srv->sasl.authcid, srv->sasl.password);
    sasl_clear(&srv->sasl);
}

/* RFC 4954 4: AUTH mechanism [initial-response]. */
static void
cmd_auth(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct str args = str_trim(cmd->args), mech, initial;
    bool has_initial;

    if (!srv->esmtp) {
        smtp_reply(srv, 503, "5.5.1", "send EHLO first");
        return;
    }
    if (srv->authenticated) {
        smtp_reply(srv, 503, "5.5.1", "already authenticated");
        return;
    }
    if (srv->in_tx) {
        smtp_reply(srv, 503, "5.5.1", "AUTH is not allowed during a transaction");
        return;
    }
    if (!auth_usable(srv)) {
        smtp_reply(srv, 538, "5.7.11",
                   "Encryption required for requested authentication "
                   "mechanism: use STARTTLS first");
        return;
    }
    mech = str_cut(&args, ' ');
    initial = str_trim(args);
    has_initial = args.len > 0;
    if (mech.len == 0) {
        smtp_reply(srv, 501, "5.5.4", "syntax: AUTH mechanism [initial-response]");
        return;
    }
    auth_result(srv, sasl_start(&srv->sasl, mech, initial, has_initial));
}

void
smtp_auth_line(struct smtp_server *srv, struct str line)
{
    auth_result(srv, sasl_step(&srv->sasl, line));
}

void
smtp_auth_abort(struct smtp_server *srv)
{
    sasl_clear(&srv->sasl);
    smtp_set_state(srv, SMTP_STATE_READY);
}

void
smtp_server_auth_done(struct smtp_server *srv, bool ok)
{
    if (srv->state != SMTP_STATE_AUTH_WAIT)
        return;
    smtp_set_state(srv, SMTP_STATE_READY);
    if (ok) {
        srv->authenticated = true;
        smtp_reply(srv, 235, "2.7.0", "Authentication successful");
    } else {
        smtp_reply(srv, 535, "5.7.8", "Authentication credentials invalid");
    }
}

bool
smtp_server_authenticated(const struct smtp_server *srv)
{
    return srv->authenticated;
}

/* RFC 3207 4: STARTTLS, no parameters. */
static void
cmd_starttls(struct smtp_server *srv, const struct smtp_command *cmd)
{
    if (str_trim(cmd->args).len > 0) {
        smtp_reply(srv, 501, "5.5.4", "syntax: STARTTLS (no parameters)");
        return;
    }
    if (srv->tls) {
        smtp_reply(srv, 503, "5.5.1", "TLS is already active");
        return;
    }
    if (!srv->esmtp) {
        smtp_reply(srv, 503, "5.5.1", "send EHLO first");
        return;
    }
    if (srv->in_tx) {
        smtp_reply(srv, 503, "5.5.1", "STARTTLS is not allowed during a transaction");
        return;
    }
    smtp_reply(srv, 220, "2.0.0", "Ready to start TLS");
    srv->state = SMTP_STATE_STARTTLS;
}

void
smtp_server_starttls_done(struct smtp_server *srv)
{
    if (srv->state != SMTP_STATE_STARTTLS)
        return;
    /* RFC 3207 4.2: discard all knowledge obtained from the client. */
    srv->tls = true;
    srv->helo[0] = '\0';
    srv->esmtp = false;
    srv->authenticated = false;
    srv->state = SMTP_STATE_INIT;
}

bool
smtp_server_tls(const struct smtp_server *srv)
{
    return srv->tls;
}

/* RFC 2645 4: ATRN [domain *("," domain)], after AUTH only. */
static void
cmd_atrn(struct smtp_server *srv, const struct smtp_command *cmd)
{
    struct str args = str_trim(cmd->args);
    struct smtp_reply r = {0};

    if (!srv->esmtp) {
        smtp_reply(srv, 503, "5.5.1", "send EHLO first");
        return;
    }
    if (!srv->authenticated) {
        smtp_reply(srv, 530, "5.7.0", "Authentication required");
        return;
    }
    if (srv->in_tx) {
        smtp_reply(srv, 503, "5.5.1", "ATRN is not allowed during a transaction");
        return;
    }
    for (size_t i = 0; i < args.len; i++) {
        char c = args.ptr[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == ',')) {
            smtp_reply(srv, 501, "5.5.4", "syntax: ATRN [domain[,domain]...]");
            return;
        }
    }
    if (srv->hooks.atrn(srv->ctx, args, &r) < 0) {
        smtp_reply_err(srv, &r);
        return;
    }
    smtp_reply_err(srv, &r);
    if (srv->state != SMTP_STATE_CLOSED)
        srv->state = SMTP_STATE_TURNED;
}

/* Commands that exist but are not offered by this server. */
static void
cmd_not_offered(struct smtp_server *srv, const struct smtp_command *cmd)
{
    if (cmd->verb == SMTP_CMD_TURN) {
        /* RFC 2645 1: TURN hands our mail to whoever claims the name. */
        smtp_reply(srv, 502, "5.7.0",
                   "TURN is not supported: it would hand mail to an unauthenticated peer");
        return;
    }
    smtp_reply(srv, 502, "5.5.1", "%s is not implemented", smtp_verb_name(cmd->verb));
}

/* Never more than smtp_feed_lines() waits for, or whether a long line is
 * "too long" would depend on how its bytes arrived. */
static size_t
line_limit(const struct smtp_server *srv, enum smtp_verb v)
{
    if (v == SMTP_CMD_AUTH)
        return srv->set->auth_offered ? SMTP_AUTH_LINE_MAX : SMTP_CMD_LINE_MAX;
    return v == SMTP_CMD_MAIL || v == SMTP_CMD_RCPT || v == SMTP_CMD_SEND || v == SMTP_CMD_SOML ||
                   v == SMTP_CMD_SAML
               ? SMTP_PARAM_LINE_MAX
               : SMTP_CMD_LINE_MAX;
}

void
smtp_server_dispatch(struct smtp_server *srv, const struct smtp_command *cmd, size_t linelen)
{
    if (linelen > line_limit(srv, cmd->verb)) {
        smtp_reply(srv, 500, "5.5.2", "line too long");
        if (cmd->verb == SMTP_CMD_BDAT) /* its chunk must not run as commands */
            smtp_server_close(srv, "4.5.4", "cannot find the end of a malformed BDAT chunk");
        return;
    }
    switch (cmd->verb) {
    case SMTP_CMD_HELO:
        return cmd_helo(srv, cmd, false);
    case SMTP_CMD_EHLO:
        return cmd_helo(srv, cmd, true);
    case SMTP_CMD_MAIL:
        return cmd_mail(srv, cmd, SMTP_MODE_MAIL);
    case SMTP_CMD_SEND:
        return cmd_mail(srv, cmd, SMTP_MODE_SEND);
    case SMTP_CMD_SOML:
        return cmd_mail(srv, cmd, SMTP_MODE_SOML);
    case SMTP_CMD_SAML:
        return cmd_mail(srv, cmd, SMTP_MODE_SAML);
    case SMTP_CMD_RCPT:
        return cmd_rcpt(srv, cmd);
    case SMTP_CMD_DATA:
        return cmd_data(srv, cmd);
    case SMTP_CMD_BDAT:
        return cmd_bdat(srv, cmd);
    case SMTP_CMD_RSET:
        return cmd_rset(srv, cmd);
    case SMTP_CMD_NOOP:
        return smtp_reply(srv, 250, "2.0.0", "Ok");
    case SMTP_CMD_QUIT:
        return cmd_quit(srv);
    case SMTP_CMD_HELP:
        return cmd_help(srv, cmd);
    case SMTP_CMD_VRFY:
        return cmd_vrfy(srv, cmd);
    case SMTP_CMD_EXPN:
        return cmd_expn(srv, cmd);
    case SMTP_CMD_ETRN:
        return cmd_etrn(srv, cmd);
    case SMTP_CMD_AUTH:
        if (srv->set->auth_offered && srv->hooks.auth)
            return cmd_auth(srv, cmd);
        return cmd_not_offered(srv, cmd);
    case SMTP_CMD_STARTTLS:
        if (srv->set->starttls)
            return cmd_starttls(srv, cmd);
        return cmd_not_offered(srv, cmd);
    case SMTP_CMD_ATRN:
        if (srv->hooks.atrn && auth_usable(srv))
            return cmd_atrn(srv, cmd);
        return cmd_not_offered(srv, cmd);
    case SMTP_CMD_TURN:
        return cmd_not_offered(srv, cmd);
    case SMTP_CMD_UNKNOWN:
        break;
    }
    smtp_reply(srv, 500, "5.5.2", "command not recognized");
}
