/*
 * libFuzzer target for the SMTP/LMTP client state machine. The input is
 *
 *   [flags] [server bytes...]
 *
 * flags picks SMTP or LMTP (bit 0), how many of the three messages the
 * client sends on the connection (bits 1-2), the TLS policy (bits 3-4),
 * credentials for AUTH (bit 5) and whether the handshake fails (bit 6).
 * The server
 * bytes are fed twice, as a delivery agent would: whole, and in
 * pseudo-random pieces as a socket would deliver them; both runs must
 * send the same bytes and report the same outcomes. Along the way it
 * checks that the output is only well-formed commands, the dot-stuffed
 * message or a BDAT chunk of exactly the message; that nothing is sent
 * after QUIT or FAILED; that DONE gives every recipient an outcome, FAILED
 * an error; and that unconsumed input stays below one reply line. For TLS
 * and AUTH: the first command after STARTTLS is EHLO/LHLO inside TLS;
 * credentials never go out before TLS is active; with TLS required (or
 * credentials given) no MAIL is sent in the clear or unauthenticated.
 */
#include "smtp/smtp_client.h"
#include "smtp/smtp_command.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_REPLY 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_smtp_client: check failed: %s (line %d)\n", #c, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* A leading dot, a bare LF, a lone-dot line and no final CRLF. */
static const char body[] = ".first\r\nSubject: fuzz\r\n\r\nbody\n.\r\nlast";

static const struct smtp_client_rcpt rcpts[] = {
    {"a@example.org", SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, "rfc822;a@example.org"},
    {"b@example.org", SMTP_NOTIFY_NEVER, ""},
    {"c@example.org", 0, ""},
};

static const struct smtp_client_message msgs[] = {
    {.sender = "s@example.net",
     .rcpts = rcpts,
     .nrcpts = 3,
     .eightbit = true,
     .ret = SMTP_RET_HDRS,
     .envid = "ID1",
     .data = body,
     .len = sizeof(body) - 1},
    {.sender = "", .rcpts = rcpts + 2, .nrcpts = 1, .envid = "", .data = "x\r\n", .len = 3},
    {.sender = "s@example.net",
     .rcpts = rcpts + 1,
     .nrcpts = 2,
     .smtputf8 = true,
     .envid = "",
     .data = body,
     .len = sizeof(body) - 1},
};
#define NMSGS (sizeof(msgs) / sizeof(msgs[0]))

#define FZ_USER "user"
#define FZ_PASS "pass"
#define FZ_PLAIN "AUTH PLAIN AHVzZXIAcGFzcw==" /* "\0user\0pass" */
#define FZ_USER64 "dXNlcg=="
#define FZ_PASS64 "cGFzcw=="

struct fz {
    uint8_t flags;
    size_t tls_at; /* output offset where TLS became active, SIZE_MAX = never */
    uint32_t rng;
    struct smtp_client_settings set;
    struct smtp_client *cl;
    size_t sent; /* messages handed to send() */
    const struct smtp_client_message *cur;
    struct buf out, log;
};

static uint32_t
rng_next(struct fz *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 17;
    f->rng ^= f->rng << 5;
    return f->rng;
}

/* ---- the output checker: walks the whole stream the client sent ---- */

struct walk {
    const char *p;
    size_t n, pos;
    size_t tls_at;   /* see struct fz */
    bool must_tls;   /* MAIL only inside TLS */
    bool starttls;   /* STARTTLS sent: the first command inside TLS is EHLO/LHLO */
    int login;       /* AUTH LOGIN lines sent so far (command, user, password) */
    bool auth_after; /* an AUTH line was the last command */
    const struct smtp_client_message *cur;
    bool in_tx, data_cmd, data_sent, quit;
    size_t nrcpt;
    struct buf stuffed[NMSGS]; /* what DATA must send for each message */
};

/* A reference dot-stuffer, written differently from the client's. */
static void
stuff(const char *p, size_t n, struct buf *o)
{
    bool bol = true;

    for (size_t i = 0; i < n; i++) {
        if (bol && p[i] == '.')
            CHECK(buf_append(o, ".", 1) == 0);
        bol = false;
        if (p[i] == '\r' && i + 1 < n && p[i + 1] == '\n')
            i++;
        if (p[i] == '\r' || p[i] == '\n') {
            CHECK(buf_append(o, "\r\n", 2) == 0);
            bol = true;
        } else {
            CHECK(buf_append(o, p + i, 1) == 0);
        }
    }
    if (!bol)
        CHECK(buf_append(o, "\r\n", 2) == 0);
    CHECK(buf_append(o, ".\r\n", 3) == 0);
}

static bool
at(const struct walk *w, const char *s, size_t len)
{
    return w->n - w->pos >= len && memcmp(w->p + w->pos, s, len) == 0;
}

/* One command line: printable, CRLF-ended, bounded. */
static size_t
walk_line(const struct walk *w)
{
    const char *s = w->p + w->pos;
    const char *lf = memchr(s, '\n', w->n - w->pos);
    size_t len;

    CHECK(lf != NULL && lf > s && lf[-1] == '\r');
    len = (size_t)(lf - s) + 1;
    CHECK(len <= 512 + 600);
    for (size_t i = 0; i + 2 < len; i++)
        CHECK((unsigned char)s[i] >= 0x20 && s[i] != 0x7f);
    return len;
}

/* Message bytes right after DATA (if a 354 came) or BDAT. */
static bool
walk_data(struct walk *w)
{
    const struct buf *st;

    if (w->cur == NULL || !w->data_cmd || w->data_sent)
        return false;
    CHECK(!w->quit);
    st = &w->stuffed[w->cur - msgs];
    if (at(w, st->data, st->len)) {
        w->pos += st->len;
    } else if (at(w, ".\r\n", 3)) {
        w->pos += 3; /* the lone dot after a stray 354 */
    } else {
        return false;
    }
    w->data_sent = true;
    return true;
}

static void
walk_bdat(struct walk *w, size_t len)
{
    char want[64];

    CHECK(w->in_tx && w->nrcpt == w->cur->nrcpts && !w->data_cmd && !w->data_sent);
    snprintf(want, sizeof(want), "BDAT %zu LAST\r\n", w->cur->len);
    CHECK(at(w, want, strlen(want)) && len == strlen(want));
    w->pos += len;
    CHECK(at(w, w->cur->data, w->cur->len));
    w->pos += w->cur->len;
    w->data_sent = true;
}

static void
walk_command(struct walk *w)
{
    size_t len = walk_line(w);
    struct str l = str_make(w->p + w->pos, len - 2);

    CHECK(!w->quit); /* nothing after QUIT */
    if (w->starttls && w->pos >= w->tls_at) {
        /* RFC 3207 4.2: the first command inside TLS is EHLO again */
        CHECK(str_iprefix(l, "EHLO ") || str_iprefix(l, "LHLO "));
        w->starttls = false;
    }
    if (w->login == 1 || w->login == 2) { /* AUTH LOGIN's answers */
        CHECK(str_ieq(l, w->login == 1 ? FZ_USER64 : FZ_PASS64));
        CHECK(w->pos >= w->tls_at);
        w->login++;
        w->pos += len;
        return;
    }
    if (str_ieq(l, "STARTTLS")) {
        CHECK(!w->in_tx && w->pos < w->tls_at);
        w->starttls = true;
    } else if (str_ieq(l, FZ_PLAIN) || str_ieq(l, "AUTH LOGIN")) {
        /* RFC 4954 4: credentials only inside TLS */
        CHECK(!w->in_tx && w->pos >= w->tls_at);
        w->login = str_ieq(l, "AUTH LOGIN") ? 1 : 3;
    } else if (str_iprefix(l, "EHLO ") || str_iprefix(l, "LHLO ") || str_iprefix(l, "HELO ")) {
        CHECK(!w->in_tx);
    } else if (str_iprefix(l, "MAIL FROM:<")) {
        CHECK(!w->in_tx);
        CHECK(!w->must_tls || w->pos >= w->tls_at);
        w->in_tx = true;
        w->nrcpt = 0;
        w->data_cmd = w->data_sent = false;
    } else if (str_iprefix(l, "RCPT TO:<")) {
        CHECK(w->in_tx && !w->data_sent && w->nrcpt < w->cur->nrcpts);
        CHECK(str_iprefix(str_make(l.ptr + 9, l.len - 9), w->cur->rcpts[w->nrcpt].address));
        w->nrcpt++;
    } else if (str_ieq(l, "DATA")) {
        CHECK(w->in_tx && w->nrcpt == w->cur->nrcpts && !w->data_cmd);
        w->data_cmd = true;
    } else if (str_iprefix(l, "BDAT ")) {
        walk_bdat(w, len);
        return;
    } else if (str_ieq(l, "RSET")) {
        w->in_tx = false;
    } else if (str_ieq(l, "QUIT")) {
        w->quit = true;
    } else {
        CHECK(!"unknown command");
    }
    w->pos += len;
}

/* Checks the whole output. Message k was handed to send() when the
 * output was mail_at[k] long: its MAIL starts there, unless a pre-check
 * refused it and nothing was sent. */
static void
check_stream(const struct fz *f, const size_t *mail_at, size_t nmail)
{
    const struct buf *out = &f->out;
    struct walk w = {.p = out->data ? out->data : "",
                     .n = out->len,
                     .tls_at = f->tls_at,
                     .must_tls = f->set.tls == SMTP_CLIENT_TLS_MUST || f->set.auth_user};
    size_t m = 0;

    for (size_t i = 0; i < NMSGS; i++) {
        buf_init(&w.stuffed[i], 1 << 16);
        stuff(msgs[i].data, msgs[i].len, &w.stuffed[i]);
    }
    for (;;) {
        while (m < nmail && w.pos == mail_at[m]) {
            w.cur = &msgs[m++];
            w.in_tx = false; /* a finished transaction needs no RSET */
        }
        if (w.pos == w.n)
            break;
        if (!walk_data(&w))
            walk_command(&w);
    }
    CHECK(m == nmail);
    for (size_t i = 0; i < NMSGS; i++)
        buf_free(&w.stuffed[i]);
}

/* ---- the delivery agent ---- */

static void
log_reply(struct fz *f, char what, const struct smtp_reply *r)
{
    CHECK(r != NULL);
    CHECK(r->code >= 200 && r->code <= 599);
    CHECK(strlen(r->text) < sizeof(r->text));
    CHECK(buf_printf(&f->log, "%c%d %s %s\n", what, r->code, r->status ? r->status : "-",
                     r->text) == 0);
}

static void
on_done(struct fz *f)
{
    for (size_t i = 0; i < f->cur->nrcpts; i++) {
        const struct smtp_reply *r = smtp_client_result(f->cl, i);

        CHECK(r != NULL && r->status != NULL);
        CHECK(r->code / 100 == 2 || r->code / 100 == 4 || r->code / 100 == 5);
        log_reply(f, 'r', r);
    }
    CHECK(smtp_client_result(f->cl, f->cur->nrcpts) == NULL);
}

/* Acts on the event; false once CLOSED. mail_at records where each
 * message's MAIL starts in the output. */
static bool
act(struct fz *f, size_t *mail_at)
{
    for (;;) {
        enum smtp_client_event e = smtp_client_event(f->cl);

        CHECK((smtp_client_timeout(f->cl) > 0) == (e == SMTP_CLIENT_BUSY));
        switch (e) {
        case SMTP_CLIENT_READY:
            /* READY means every security step the settings ask for is done */
            if (f->set.tls == SMTP_CLIENT_TLS_MUST || f->set.tls == SMTP_CLIENT_TLS_IMPLICIT)
                CHECK(smtp_client_tls_active(f->cl));
            if (f->set.auth_user)
                CHECK(smtp_client_authenticated(f->cl) && smtp_client_tls_active(f->cl));
            if (f->sent < ((f->flags >> 1) & 3u)) {
                f->cur = &msgs[f->sent];
                mail_at[f->sent++] = f->out.len + smtp_client_output(f->cl)->len;
                CHECK(smtp_client_send(f->cl, f->cur) == 0);
            } else {
                smtp_client_quit(f->cl);
            }
            continue; /* a pre-check may have made it DONE already */
        case SMTP_CLIENT_DONE:
            on_done(f);
            smtp_client_next(f->cl);
            continue;
        case SMTP_CLIENT_FAILED:
            log_reply(f, 'f', smtp_client_error(f->cl));
            if (f->cur && f->sent > 0)
                for (size_t i = 0; i < f->cur->nrcpts; i++)
                    CHECK(smtp_client_result(f->cl, i) != NULL);
            smtp_client_quit(f->cl);
            CHECK(smtp_client_event(f->cl) == SMTP_CLIENT_CLOSED);
            continue;
        case SMTP_CLIENT_CLOSED:
            return false;
        case SMTP_CLIENT_TLS:
            CHECK(!smtp_client_tls_active(f->cl));
            CHECK(smtp_client_output(f->cl)->len == 0); /* nothing after STARTTLS */
            if (f->flags & 0x40) {
                smtp_client_tls_done(f->cl, false);
                CHECK(smtp_client_event(f->cl) == SMTP_CLIENT_FAILED);
            } else {
                f->tls_at = f->out.len;
                smtp_client_tls_done(f->cl, true);
                CHECK(smtp_client_tls_active(f->cl));
            }
            continue;
        case SMTP_CLIENT_BUSY:
            return true;
        }
    }
}

static void
collect(struct fz *f)
{
    struct buf *o = smtp_client_output(f->cl);

    CHECK(buf_append(&f->out, o->data ? o->data : "", o->len) == 0);
    buf_reset(o);
}

static void
run(struct fz *f, const uint8_t *in, size_t n, bool pieces)
{
    size_t pos = 0, mail_at[NMSGS];
    struct buf pend;

    buf_init(&pend, 1 << 24);
    f->cl = smtp_client_new(&f->set);
    f->tls_at = f->set.tls == SMTP_CLIENT_TLS_IMPLICIT ? 0 : SIZE_MAX;
    while (act(f, mail_at)) {
        size_t used, k;

        collect(f);
        used = smtp_client_feed(f->cl, pend.data ? pend.data : "", pend.len);
        CHECK(used <= pend.len);
        buf_consume(&pend, used);
        collect(f);
        if (used > 0 || smtp_client_event(f->cl) != SMTP_CLIENT_BUSY)
            continue;
        CHECK(pend.len < LINE_MAX_REPLY); // an incomplete line, never more
        if (pos == n) {
            smtp_client_quit(f->cl); /* the connection dropped */
            CHECK(smtp_client_event(f->cl) == SMTP_CLIENT_CLOSED);
            break;
        }
        k = pieces ? 1 + rng_next(f) % 67 : n - pos;
        k = k < n - pos ? k : n - pos;
        CHECK(buf_append(&pend, in + pos, k) == 0);
        pos += k;
    }
    collect(f);
    CHECK(smtp_client_feed(f->cl, "250 ok\r\n", 8) == 0); /* nothing read once CLOSED */
    CHECK(smtp_client_output(f->cl)->len == 0);
    check_stream(f, mail_at, f->sent);
    smtp_client_free(f->cl);
    f->cl = NULL;
    buf_free(&pend);
}

static void
fz_init(struct fz *f, uint8_t flags)
{
    memset(f, 0, sizeof(*f));
    f->flags = flags;
    f->rng = 0x9e3779b9u ^ flags;
    f->set = (struct smtp_client_settings){
        .helo_name = "client.example.net",
        .lmtp = flags & 1,
        .tls = (enum smtp_client_tls)((flags >> 3) & 3u),
        .server_name = "mx.example.org",
        .auth_user = (flags & 0x20) ? FZ_USER : NULL,
        .auth_pass = (flags & 0x20) ? FZ_PASS : NULL,
    };
    buf_init(&f->out, 1 << 24);
    buf_init(&f->log, 1 << 24);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz whole, split;

    if (size < 1)
        return 0;
    fz_init(&whole, data[0]);
    fz_init(&split, data[0]);
    run(&whole, data + 1, size - 1, false);
    run(&split, data + 1, size - 1, true);
    /* how the bytes arrive never changes what the client says or reports */
    CHECK(whole.out.len == split.out.len);
    CHECK(whole.out.len == 0 || memcmp(whole.out.data, split.out.data, whole.out.len) == 0);
    CHECK(whole.log.len == split.log.len);
    CHECK(whole.log.len == 0 || memcmp(whole.log.data, split.log.data, whole.log.len) == 0);
    buf_free(&whole.out);
    buf_free(&whole.log);
    buf_free(&split.out);
    buf_free(&split.log);
    return 0;
}
