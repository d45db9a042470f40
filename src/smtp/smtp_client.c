/*
 * SMTP/LMTP client core: frames server replies, hands each complete one to
 * whatever the client waits for, sets the connection up (greeting,
 * EHLO/LHLO, HELO fallback) and winds it down (RSET, QUIT, failures). One
 * message's transaction lives in smtp_client_tx.c, STARTTLS and AUTH in
 * smtp_client_tls.c. No I/O, no clock.
 */
#include "base/xmalloc.h"
#include "smtp/smtp_client_impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct smtp_client *
smtp_client_new(const struct smtp_client_settings *s)
{
    struct smtp_client *cl = xcalloc(1, sizeof(*cl));

    cl->helo_name = xstrdup(s->helo_name ? s->helo_name : "localhost");
    cl->lmtp = s->lmtp;
    cl->tls = s->tls;
    cl->tls_active = s->tls == SMTP_CLIENT_TLS_IMPLICIT;
    cl->server_name = xstrdup(s->server_name ? s->server_name : "the server");
    if (s->auth_user && s->auth_pass) {
        cl->auth_user = xstrdup(s->auth_user);
        cl->auth_pass = xstrdup(s->auth_pass);
    }
    cl->state = SMTP_CLIENT_ST_GREETING;
    buf_init(&cl->out, SMTP_CLIENT_OUT_MAX);
    smtp_reply_parser_init(&cl->rp);
    return cl;
}

void
smtp_client_free(struct smtp_client *cl)
{
    if (cl == NULL)
        return;
    /* The output may still hold an AUTH line: secrets do not outlive us. */
    if (cl->out.data)
        explicit_bzero(cl->out.data, cl->out.cap);
    buf_free(&cl->out);
    smtp_client_wipe_free(cl->auth_user);
    smtp_client_wipe_free(cl->auth_pass);
    free(cl->server_name);
    free(cl->rcpt);
    free(cl->helo_name);
    free(cl);
}

void
smtp_client_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

void
smtp_client_set_state(struct smtp_client *cl, enum smtp_client_state st)
{
    if (cl->state != SMTP_CLIENT_ST_FAILED && cl->state != SMTP_CLIENT_ST_CLOSED)
        cl->state = st;
}

void
smtp_client_rcpt_result(struct smtp_client *cl, size_t i, const struct smtp_reply *r)
{
    cl->rcpt[i].result = *r; /* status is static: a plain copy */
}

void
smtp_client_fail(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (cl->state == SMTP_CLIENT_ST_FAILED || cl->state == SMTP_CLIENT_ST_CLOSED)
        return;
    /* After DONE every recipient has its outcome already: this is a no-op. */
    for (size_t i = 0; i < cl->nrcpts; i++)
        if (cl->rcpt[i].result.code == 0)
            smtp_client_rcpt_result(cl, i, r);
    cl->error = *r;
    cl->msg = NULL;
    cl->state = SMTP_CLIENT_ST_FAILED;
}

void
smtp_client_protocol_error(struct smtp_client *cl, const char *what)
{
    struct smtp_reply r;

    smtp_reply_set(&r, 451, "4.4.0", "protocol error: %s", what);
    smtp_client_fail(cl, &r);
}

/* The caller never drained the output: nothing sensible can follow. */
static int
out_full(struct smtp_client *cl, size_t mark)
{
    struct smtp_reply r;

    cl->out.len = mark; /* never leave half a command */
    smtp_reply_set(&r, 451, "4.3.0", "local error: output buffer full");
    smtp_client_fail(cl, &r);
    return -1;
}

int
smtp_client_cmd(struct smtp_client *cl, const char *fmt, ...)
{
    size_t mark = cl->out.len;
    va_list ap;
    int r;

    if (cl->state == SMTP_CLIENT_ST_FAILED || cl->state == SMTP_CLIENT_ST_CLOSED)
        return -1;
    va_start(ap, fmt);
    r = buf_vprintf(&cl->out, fmt, ap);
    va_end(ap);
    if (r == 0)
        r = buf_append(&cl->out, "\r\n", 2);
    return r == 0 ? 0 : out_full(cl, mark);
}

int
smtp_client_put(struct smtp_client *cl, const char *p, size_t n)
{
    if (cl->state == SMTP_CLIENT_ST_FAILED || cl->state == SMTP_CLIENT_ST_CLOSED)
        return -1;
    return buf_append(&cl->out, p, n) == 0 ? 0 : out_full(cl, cl->out.len);
}

/* ---- EHLO keywords (RFC 5321 4.1.1.1) ---- */

/* RFC 1870 4: SIZE [number]; a missing, zero or unreadable number means no
 * fixed limit. */
static uint64_t
ehlo_size(struct str s)
{
    uint64_t v = 0;

    if (s.len == 0 || s.len > 20)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned)(s.ptr[i] - '0');

        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

/* RFC 4422 3.1: mechanism names are upper-case letters, digits, '-', '_'. */
static bool
auth_mech_ok(struct str m)
{
    if (m.len == 0 || m.len > 20)
        return false;
    for (size_t i = 0; i < m.len; i++) {
        char c = m.ptr[i];

        if (!(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') &&
            c != '-' && c != '_')
            return false;
    }
    return true;
}

static char
ascii_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
}

/* Whether the (upper-case) list already holds mechanism m. */
static bool
auth_has(const char *list, struct str m)
{
    struct str rest = str_cstr(list);

    while (rest.len > 0) {
        struct str have = str_cut(&rest, ' ');
        size_t i = 0;

        while (i < m.len && have.len == m.len && ascii_upper(m.ptr[i]) == have.ptr[i])
            i++;
        if (have.len == m.len && i == m.len)
            return true;
    }
    return false;
}

bool
smtp_client_auth_offered(const struct smtp_client_ext *e, const char *mech)
{
    return auth_has(e->auth, str_cstr(mech));
}

/* Adds the valid, new mechanisms of s to the space-separated list, upper-
 * cased, as many as fit whole. */
static void
ehlo_auth(struct smtp_client_ext *e, struct str s)
{
    size_t len = strlen(e->auth);

    while (s.len > 0) {
        struct str m = str_cut(&s, ' ');

        if (!auth_mech_ok(m) || auth_has(e->auth, m))
            continue;
        if (len + (len > 0) + m.len >= sizeof(e->auth))
            continue;
        if (len > 0)
            e->auth[len++] = ' ';
        for (size_t i = 0; i < m.len; i++)
            e->auth[len++] = ascii_upper(m.ptr[i]);
        e->auth[len] = '\0';
    }
}

static void
ehlo_keyword(struct smtp_client_ext *e, struct str text)
{
    struct str rest = str_trim(text);
    struct str kw = str_cut(&rest, ' ');

    rest = str_trim(rest);
    if (str_ieq(kw, "PIPELINING"))
        e->pipelining = true;
    else if (str_ieq(kw, "8BITMIME"))
        e->eightbitmime = true;
    else if (str_ieq(kw, "SMTPUTF8"))
        e->smtputf8 = true;
    else if (str_ieq(kw, "CHUNKING"))
        e->chunking = true;
    else if (str_ieq(kw, "DSN"))
        e->dsn = true;
    else if (str_ieq(kw, "STARTTLS"))
        e->starttls = true;
    else if (str_ieq(kw, "ENHANCEDSTATUSCODES"))
        e->enhancedstatuscodes = true;
    else if (str_ieq(kw, "SIZE")) {
        e->size = true;
        e->size_max = ehlo_size(rest);
    } else if (str_ieq(kw, "AUTH")) {
        ehlo_auth(e, rest);
    } else if (str_iprefix(kw, "AUTH=")) {
        /* the pre-RFC 2554 form some servers still send alongside */
        ehlo_auth(e, str_make(kw.ptr + 5, kw.len - 5));
        ehlo_auth(e, rest);
    }
}

/* ---- connection set-up and wind-down ---- */

void
smtp_client_send_ehlo(struct smtp_client *cl)
{
    memset(&cl->ext, 0, sizeof(cl->ext));
    smtp_client_cmd(cl, "%s %s", cl->lmtp ? "LHLO" : "EHLO", cl->helo_name);
    smtp_client_set_state(cl, SMTP_CLIENT_ST_EHLO);
}

static void
on_greeting(struct smtp_client *cl, const struct smtp_reply *r)
{
    /* RFC 5321 3.1: 220 to go on; 554 (or anything else) means no service. */
    if (r->code != 220) {
        smtp_client_fail(cl, r);
        return;
    }
    smtp_client_send_ehlo(cl);
}

static void
on_ehlo(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (r->code / 100 == 2) {
        cl->ext.esmtp = true;
        smtp_client_greeted(cl);
        return;
    }
    memset(&cl->ext, 0, sizeof(cl->ext));
    /* RFC 5321 3.2: a server that refuses EHLO may still take HELO. LMTP
     * has no HELO (RFC 2033 4.1). */
    if (r->code / 100 == 5 && !cl->lmtp) {
        smtp_client_cmd(cl, "HELO %s", cl->helo_name);
        smtp_client_set_state(cl, SMTP_CLIENT_ST_HELO);
        return;
    }
    smtp_client_fail(cl, r);
}

/* HELO and RSET: 2xx, or the connection is no good. */
static void
on_ready_reply(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (r->code / 100 != 2) {
        smtp_client_fail(cl, r);
        return;
    }
    cl->tx_open = false;
    if (cl->state == SMTP_CLIENT_ST_HELO)
        smtp_client_greeted(cl); /* no extensions: a TLS policy may fail here */
    else
        smtp_client_set_state(cl, SMTP_CLIENT_ST_READY);
}

/* A line of a reply, before the reply is complete. */
static void
on_line(struct smtp_client *cl, const struct smtp_reply_line *l)
{
    /* The first line of the EHLO reply is the greeting, the rest keywords. */
    if (cl->state == SMTP_CLIENT_ST_EHLO && l->code / 100 == 2 && cl->rp.nlines > 1)
        ehlo_keyword(&cl->ext, l->text);
}

static void
on_reply(struct smtp_client *cl, const struct smtp_reply *r)
{
    /* RFC 5321 3.8: 421 at any point means the server is closing. */
    if (r->code == 421 && cl->state != SMTP_CLIENT_ST_QUIT) {
        smtp_client_fail(cl, r);
        return;
    }
    switch (cl->state) {
    case SMTP_CLIENT_ST_GREETING:
        on_greeting(cl, r);
        break;
    case SMTP_CLIENT_ST_EHLO:
        on_ehlo(cl, r);
        break;
    case SMTP_CLIENT_ST_HELO:
    case SMTP_CLIENT_ST_RSET:
        on_ready_reply(cl, r);
        break;
    case SMTP_CLIENT_ST_QUIT:
        cl->state = SMTP_CLIENT_ST_CLOSED; /* 221, or whatever it says */
        break;
    case SMTP_CLIENT_ST_STARTTLS:
    case SMTP_CLIENT_ST_AUTH:
    case SMTP_CLIENT_ST_AUTH_USER:
    case SMTP_CLIENT_ST_AUTH_PASS:
        smtp_client_tls_reply(cl, r);
        break;
    case SMTP_CLIENT_ST_MAIL:
    case SMTP_CLIENT_ST_RCPT:
    case SMTP_CLIENT_ST_DATA:
    case SMTP_CLIENT_ST_FINAL:
    case SMTP_CLIENT_ST_EMPTY_DOT:
        smtp_client_tx_reply(cl, r);
        break;
    default: /* READY, DONE: nothing was asked */
        smtp_client_protocol_error(cl, "unexpected reply");
    }
}

/* States where the caller acts next: feed() stops there so that replies
 * after it are matched with what the caller does, not taken as extra. */
static bool
caller_turn(const struct smtp_client *cl)
{
    return cl->state == SMTP_CLIENT_ST_READY || cl->state == SMTP_CLIENT_ST_DONE ||
           cl->state == SMTP_CLIENT_ST_TLS || cl->state == SMTP_CLIENT_ST_FAILED ||
           cl->state == SMTP_CLIENT_ST_CLOSED;
}

/* One step of feed(): returns the octets consumed, 0 to stop. */
static size_t
feed_line(struct smtp_client *cl, const char *p, size_t n)
{
    struct smtp_reply_line line;
    size_t used;

    switch (smtp_reply_parser_feed(&cl->rp, p, n, &used, &line)) {
    case SMTP_REPLY_AGAIN:
        return 0;
    case SMTP_REPLY_LINE:
        on_line(cl, &line);
        return used;
    case SMTP_REPLY_DONE:
        on_line(cl, &line);
        on_reply(cl, &cl->rp.reply);
        return used;
    case SMTP_REPLY_TOO_LONG:
        smtp_client_protocol_error(cl, "reply line too long");
        return 0;
    case SMTP_REPLY_TOO_MANY:
        smtp_client_protocol_error(cl, "too many reply lines");
        return 0;
    default:
        smtp_client_protocol_error(cl, "malformed reply line");
        return 0;
    }
}

size_t
smtp_client_feed(struct smtp_client *cl, const char *p, size_t n)
{
    size_t used = 0;

    if (cl->state == SMTP_CLIENT_ST_FAILED || cl->state == SMTP_CLIENT_ST_CLOSED)
        return 0;
    if (cl->state == SMTP_CLIENT_ST_TLS && n > 0) {
        /* RFC 3207 5 and the STARTTLS injection attacks (CVE-2011-0411 on
         * the server side, its mirror here): what the server sent after
         * its 220 was sent in the clear and cannot be trusted as a reply
         * inside TLS. */
        smtp_client_protocol_error(cl, "data after the STARTTLS reply");
        return 0;
    }
    while (used < n) {
        size_t k = feed_line(cl, p + used, n - used);

        used += k;
        if (k == 0 || (caller_turn(cl) && cl->rp.complete))
            break;
    }
    return used;
}

/* ---- the rest of the API ---- */

struct buf *
smtp_client_output(struct smtp_client *cl)
{
    return &cl->out;
}

enum smtp_client_event
smtp_client_event(const struct smtp_client *cl)
{
    switch (cl->state) {
    case SMTP_CLIENT_ST_READY:
        return SMTP_CLIENT_READY;
    case SMTP_CLIENT_ST_DONE:
        return SMTP_CLIENT_DONE;
    case SMTP_CLIENT_ST_FAILED:
        return SMTP_CLIENT_FAILED;
    case SMTP_CLIENT_ST_CLOSED:
        return SMTP_CLIENT_CLOSED;
    case SMTP_CLIENT_ST_TLS:
        return SMTP_CLIENT_TLS;
    default:
        return SMTP_CLIENT_BUSY;
    }
}

const struct smtp_client_ext *
smtp_client_ext(const struct smtp_client *cl)
{
    return &cl->ext;
}

const struct smtp_reply *
smtp_client_result(const struct smtp_client *cl, size_t i)
{
    if (i >= cl->nrcpts || cl->rcpt[i].result.code == 0)
        return NULL;
    return &cl->rcpt[i].result;
}

const struct smtp_reply *
smtp_client_error(const struct smtp_client *cl)
{
    return cl->error.code ? &cl->error : NULL;
}

void
smtp_client_next(struct smtp_client *cl)
{
    if (cl->state != SMTP_CLIENT_ST_DONE)
        return;
    /* RFC 5321 4.1.1.5: clear a transaction the server may still hold. */
    if (cl->tx_open) {
        smtp_client_cmd(cl, "RSET");
        smtp_client_set_state(cl, SMTP_CLIENT_ST_RSET);
        return;
    }
    smtp_client_set_state(cl, SMTP_CLIENT_ST_READY);
}

void
smtp_client_quit(struct smtp_client *cl)
{
    if (cl->state == SMTP_CLIENT_ST_READY || cl->state == SMTP_CLIENT_ST_DONE) {
        smtp_client_cmd(cl, "QUIT");
        smtp_client_set_state(cl, SMTP_CLIENT_ST_QUIT);
        return;
    }
    /* FAILED, or giving up while waiting: nothing more is said. */
    cl->msg = NULL;
    cl->state = SMTP_CLIENT_ST_CLOSED;
}

unsigned
smtp_client_timeout(const struct smtp_client *cl)
{
    /* RFC 5321 4.5.3.2; EHLO, HELO, RSET and QUIT have none there and get
     * the command default. */
    switch (cl->state) {
    case SMTP_CLIENT_ST_DATA:
        return 2 * 60;
    case SMTP_CLIENT_ST_FINAL:
    case SMTP_CLIENT_ST_EMPTY_DOT:
        return 10 * 60;
    case SMTP_CLIENT_ST_READY:
    case SMTP_CLIENT_ST_DONE:
    case SMTP_CLIENT_ST_TLS: /* the handshake is the caller's to time */
    case SMTP_CLIENT_ST_FAILED:
    case SMTP_CLIENT_ST_CLOSED:
        return 0;
    default:
        return 5 * 60;
    }
}
