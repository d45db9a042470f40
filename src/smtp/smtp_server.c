/*
 * SMTP server core: frames input into command lines or body octets,
 * formats replies, keeps the state and the error count. Command semantics
 * live in smtp_server_cmd.c.
 */
#include "base/xmalloc.h"
#include "smtp/smtp_server_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Replies never grow without bound: a session that does not read them is
 * closed by the session layer long before this. */
#define SMTP_OUT_MAX (1u << 20)

struct smtp_server *
smtp_server_new(const struct smtp_server_settings *s, const struct smtp_server_hooks *hooks,
                void *ctx)
{
    struct smtp_server *srv = xcalloc(1, sizeof(*srv));

    srv->set = s;
    srv->hooks = *hooks;
    srv->ctx = ctx;
    srv->state = SMTP_STATE_INIT;
    srv->tls = s->tls;
    buf_init(&srv->out, SMTP_OUT_MAX);
    buf_init(&srv->msg, s->message_size);
    /* RFC 5321 4.3.1: the greeting names us; no enhanced code before EHLO. */
    smtp_reply_line(srv, 220, true, NULL, "%s ESMTP petrel", s->hostname);
    return srv;
}

void
smtp_server_free(struct smtp_server *srv)
{
    if (srv == NULL)
        return;
    sasl_clear(&srv->sasl);
    buf_free(&srv->out);
    buf_free(&srv->msg);
    free(srv);
}

/* The text of a reply line. Most replies are fixed words or one string:
 * copied, not formatted (an EHLO reply is ten lines). */
static int
reply_text(struct buf *out, const char *fmt, va_list ap)
{
    if (strcmp(fmt, "%s") == 0) {
        const char *text = va_arg(ap, const char *);

        return buf_append(out, text, strlen(text));
    }
    if (strchr(fmt, '%') == NULL)
        return buf_append(out, fmt, strlen(fmt));
    return buf_vprintf(out, fmt, ap);
}

void
smtp_reply_line(struct smtp_server *srv, int code, bool last, const char *status, const char *fmt,
                ...)
{
    size_t mark = srv->out.len;
    char head[4] = {(char)('0' + code / 100 % 10), (char)('0' + code / 10 % 10),
                    (char)('0' + code % 10), last ? ' ' : '-'};
    va_list ap;
    int r;

    if (srv->state == SMTP_STATE_CLOSED) /* nothing after the 221 or 421 */
        return;
    r = buf_append(&srv->out, head, sizeof(head));
    if (r == 0 && status) {
        r = buf_append(&srv->out, status, strlen(status));
        if (r == 0)
            r = buf_append(&srv->out, " ", 1);
    }
    va_start(ap, fmt);
    if (r == 0)
        r = reply_text(&srv->out, fmt, ap);
    va_end(ap);
    if (r == 0)
        r = buf_append(&srv->out, "\r\n", 2);
    if (r < 0) {
        /* the peer stopped reading replies long ago; never send half a line */
        srv->out.len = mark;
        srv->state = SMTP_STATE_CLOSED;
    }
}

static void
smtp_count_error(struct smtp_server *srv, int code)
{
    if (code < 500 || srv->state == SMTP_STATE_CLOSED)
        return;
    if (++srv->errors < srv->set->max_errors)
        return;
    smtp_server_close(srv, "4.7.0", "too many errors, closing connection");
}

void
smtp_reply(struct smtp_server *srv, int code, const char *status, const char *fmt, ...)
{
    char text[512]; /* RFC 5321 4.5.3.1.5: a reply line is at most 512 octets */
    const char *t = text;
    va_list ap;

    va_start(ap, fmt);
    if (strchr(fmt, '%') == NULL) /* fixed words or one string: nothing to format */
        t = fmt;
    else if (strcmp(fmt, "%s") == 0)
        t = va_arg(ap, const char *);
    else
        vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (t != text && strlen(t) >= sizeof(text)) { /* cut as a formatted text is */
        snprintf(text, sizeof(text), "%s", t);
        t = text;
    }
    smtp_reply_line(srv, code, true, status, "%s", t);
    smtp_count_error(srv, code);
}

void
smtp_reply_err(struct smtp_server *srv, const struct smtp_reply *r)
{
    smtp_reply(srv, r->code, r->status, "%s", r->text);
    /* RFC 5321 3.8: 421 is "service not available, closing channel". */
    if (r->code == 421)
        srv->state = SMTP_STATE_CLOSED;
}

void
smtp_set_state(struct smtp_server *srv, enum smtp_state st)
{
    if (srv->state != SMTP_STATE_CLOSED)
        srv->state = st;
}

void
smtp_tx_reset(struct smtp_server *srv)
{
    bool had_tx = srv->in_tx;

    memset(&srv->mail, 0, sizeof(srv->mail));
    srv->mode = SMTP_MODE_MAIL;
    srv->nrcpt = srv->rcpt_tried = 0;
    srv->used_bdat = false;
    srv->in_tx = false;
    buf_reset(&srv->msg);
    if (srv->state != SMTP_STATE_INIT)
        smtp_set_state(srv, SMTP_STATE_READY);
    if (had_tx && srv->hooks.reset)
        srv->hooks.reset(srv->ctx);
}

void
smtp_server_close(struct smtp_server *srv, const char *status, const char *text)
{
    if (srv->state == SMTP_STATE_CLOSED)
        return;
    smtp_reply_line(srv, 421, true, status, "%s %s", srv->set->hostname, text);
    srv->state = SMTP_STATE_CLOSED;
}

/* One command line (without its line ending). */
static void
smtp_line(struct smtp_server *srv, const char *p, size_t len)
{
    struct smtp_command cmd;

    if (srv->state == SMTP_STATE_AUTH) {
        if (len + 2 > SMTP_AUTH_LINE_MAX) { /* as if discarded while it arrived */
            smtp_auth_abort(srv);
            smtp_reply(srv, 500, "5.5.2", "line too long");
            return;
        }
        smtp_auth_line(srv, str_make(p, len));
        return;
    }
    smtp_command_parse(str_make(p, len), &cmd);
    smtp_server_dispatch(srv, &cmd, len + 2);
}

/* p, n: the start of a line past the longest legal length; the line is
 * discarded (a BDAT line's chunk can no longer be found). */
static void
smtp_skip_line(struct smtp_server *srv, const char *p, size_t n)
{
    if (srv->skipping_line)
        return;
    srv->skipping_bdat = srv->state != SMTP_STATE_AUTH && str_iprefix(str_make(p, n), "BDAT");
    srv->skipping_line = true;
}

/* Command mode: consumes whole lines only. A line with no end in sight
 * past the longest legal length is discarded as it arrives. */
static size_t
smtp_feed_lines(struct smtp_server *srv, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t wait = srv->set->auth_offered ? SMTP_AUTH_LINE_MAX : SMTP_PARAM_LINE_MAX;
    size_t len;

    if (lf == NULL) {
        if (n <= wait && !srv->skipping_line)
            return 0; /* wait for the rest of the line */
        smtp_skip_line(srv, p, n);
        return n;
    }
    len = (size_t)(lf - p);
    /* Had it come in pieces, such a line would have been discarded as it
     * arrived: so it is whole, or how the bytes arrive would change the
     * reply (a BDAT line would end the session only in pieces). */
    if (len > wait)
        smtp_skip_line(srv, p, len);
    if (srv->skipping_line) {
        srv->skipping_line = false;
        if (srv->state == SMTP_STATE_AUTH)
            smtp_auth_abort(srv);
        smtp_reply(srv, 500, "5.5.2", "line too long");
        if (srv->skipping_bdat)
            smtp_server_close(srv, "4.5.4", "cannot find the end of a malformed BDAT chunk");
        return len + 1;
    }
    /* CRLF ends a command; a bare LF is tolerated here (never in DATA). */
    smtp_line(srv, p, len > 0 && p[len - 1] == '\r' ? len - 1 : len);
    return len + 1;
}

void
smtp_bdat_chunk_end(struct smtp_server *srv)
{
    if (srv->bdat_err.code) {
        /* RFC 3030 3: a refused chunk is still read in full first. */
        smtp_set_state(srv, srv->bdat_return);
        smtp_reply_err(srv, &srv->bdat_err);
        srv->bdat_err.code = 0;
    } else if (srv->bdat_last) {
        smtp_data_finish(&srv->data);
        smtp_body_end(srv);
    } else if (srv->data.too_big) {
        /* RFC 3030 2: after a failed chunk the client stops; so do we. */
        smtp_reply(srv, 552, "5.3.4", "message size exceeds fixed maximum message size");
        smtp_tx_reset(srv);
    } else {
        smtp_set_state(srv, SMTP_STATE_RCPT);
        smtp_reply(srv, 250, "2.0.0", "%llu octets received", (unsigned long long)srv->bdat_size);
    }
}

static size_t
smtp_feed_bdat(struct smtp_server *srv, const char *p, size_t n)
{
    size_t take = n < srv->bdat_left ? n : (size_t)srv->bdat_left;
    bool done;

    if (srv->bdat_err.code == 0)
        smtp_data_feed(&srv->data, p, take, &done);
    srv->bdat_left -= take;
    if (srv->bdat_left == 0)
        smtp_bdat_chunk_end(srv);
    return take;
}

size_t
smtp_server_feed(struct smtp_server *srv, const char *p, size_t n)
{
    size_t used = 0, k;
    bool done;

    while (used < n) {
        switch (srv->state) {
        case SMTP_STATE_COMMIT:
        case SMTP_STATE_AUTH_WAIT:
        case SMTP_STATE_STARTTLS:
        case SMTP_STATE_TURNED:
        case SMTP_STATE_CLOSED:
            return used;
        case SMTP_STATE_DATA:
            used += smtp_data_feed(&srv->data, p + used, n - used, &done);
            if (done)
                smtp_body_end(srv);
            break;
        case SMTP_STATE_BDAT:
            used += smtp_feed_bdat(srv, p + used, n - used);
            break;
        default:
            k = smtp_feed_lines(srv, p + used, n - used);
            if (k == 0)
                return used;
            used += k;
        }
    }
    return used;
}

struct buf *
smtp_server_output(struct smtp_server *srv)
{
    return &srv->out;
}

enum smtp_state
smtp_server_state(const struct smtp_server *srv)
{
    return srv->state;
}

const struct buf *
smtp_server_message(const struct smtp_server *srv)
{
    return &srv->msg;
}

const char *
smtp_server_helo(const struct smtp_server *srv)
{
    return srv->helo;
}

bool
smtp_server_esmtp(const struct smtp_server *srv)
{
    return srv->esmtp;
}

enum smtp_mode
smtp_server_mode(const struct smtp_server *srv)
{
    return srv->mode;
}

const struct smtp_mail_params *
smtp_server_mail_params(const struct smtp_server *srv)
{
    return &srv->mail;
}

unsigned
smtp_server_received_count(const struct smtp_server *srv)
{
    return srv->data.received;
}

void
smtp_server_commit_done(struct smtp_server *srv, const struct smtp_reply *result,
                        const char *queue_id)
{
    if (srv->state != SMTP_STATE_COMMIT)
        return;
    if (result && result->code)
        smtp_reply_err(srv, result);
    else
        smtp_reply(srv, 250, "2.0.0", "Ok: queued as %s", queue_id);
    smtp_tx_reset(srv);
}
