/*
 * libFuzzer target for the SMTP server state machine. The input is
 *
 *   [flags] [limits] [ndec] [ndec decision bytes] [session bytes...]
 *
 * flags and limits pick the settings; the decision bytes answer the hooks
 * (accept or refuse MAIL/RCPT, VRFY/EXPN results, AUTH checks) and the commits (success,
 * failure, or a 421 close), cycled in order. The session bytes are fed
 * twice: whole, and in pseudo-random pieces as a socket would deliver them;
 * both runs must give the same replies and messages. Along the way it
 * checks that output is only whole reply lines, that nothing is written or
 * read after CLOSED, that hooks see a sane transaction, and that every
 * committed message is CRLF lines within the limits.
 */
#include "smtp/smtp_sasl.h"
#include "smtp/smtp_server.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_PARAM (512 + 600)         /* the longest command line kept waiting */
#define LINE_MAX_AUTH (SASL_LINE_MAX + 32) /* ... when AUTH is offered */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz {
    const uint8_t *dec;
    size_t ndec, di;
    uint32_t rng;
    struct smtp_server_settings set;
    struct smtp_server *srv;
    bool in_tx;
    unsigned rcpt_ok, commits;
    struct buf replies, messages;
};

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_smtp_server: check failed: %s (line %d)\n", #c, __LINE__);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static uint8_t
decide(struct fz *f)
{
    return f->ndec ? f->dec[f->di++ % f->ndec] : 0;
}

static uint32_t
rng_next(struct fz *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 17;
    f->rng ^= f->rng << 5;
    return f->rng;
}

/* ---- hooks answered from the decision bytes ---- */

static int
hook_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
          const struct smtp_mail_params *p, struct smtp_reply *r)
{
    struct fz *f = ctx;
    uint8_t d = decide(f);

    (void)from;
    CHECK(!f->in_tx); /* no nested transaction reaches the session */
    CHECK(!f->set.auth_required || smtp_server_authenticated(f->srv));
    CHECK(mode != SMTP_MODE_SEND || f->set.terminal_delivery);
    CHECK(!p->has_size || p->size <= f->set.message_size);
    if (d % 4 == 0)
        return smtp_reply_set(r, d & 4 ? 451 : 550, d & 4 ? "4.3.0" : "5.7.1", "no");
    f->in_tx = true;
    f->rcpt_ok = 0;
    return 0;
}

static int
hook_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
          struct smtp_reply *r)
{
    struct fz *f = ctx;
    uint8_t d = decide(f);

    (void)to;
    (void)p;
    CHECK(f->in_tx);
    CHECK(f->rcpt_ok < f->set.max_recipients);
    if (d % 3 == 0)
        return smtp_reply_set(r, d & 4 ? 450 : 550, d & 4 ? "4.2.1" : "5.1.1", "refused");
    f->rcpt_ok++;
    return 0;
}

static void
hook_reset(void *ctx)
{
    struct fz *f = ctx;

    CHECK(f->in_tx); /* only a transaction that existed is reset */
    f->in_tx = false;
    f->rcpt_ok = 0;
}

static int
hook_vrfy(void *ctx, struct str arg, char *out, size_t n, struct smtp_reply *r)
{
    struct fz *f = ctx;
    uint8_t d = decide(f);

    (void)arg;
    CHECK(f->set.vrfy);
    if (d % 2)
        return smtp_reply_set(r, 550, "5.1.1", "unknown");
    memset(out, 'v', n - 1); /* up to the last octet of the buffer */
    out[(d >> 1) % n] = '\0';
    out[n - 1] = '\0';
    return 0;
}

static int
hook_expn(void *ctx, struct str arg, struct buf *lines, struct smtp_reply *r)
{
    struct fz *f = ctx;
    uint8_t d = decide(f);

    (void)arg;
    CHECK(f->set.expn);
    switch (d % 4) {
    case 0:
        return smtp_reply_set(r, 550, "5.1.1", "not a list");
    case 1:
        return 0; /* an empty list */
    case 2:
        return buf_append(lines, "a@example.org", 13);
    default:
        return buf_append(lines, "a@example.org\nb@example.org\nc@example.org", 41);
    }
}

static void
hook_auth(void *ctx, const char *authzid, const char *authcid, const char *password)
{
    struct fz *f = ctx;

    CHECK(f->set.auth_offered && !f->in_tx);
    CHECK(f->set.auth_insecure || smtp_server_tls(f->srv)); /* passwords only inside TLS */
    CHECK(authcid[0] != '\0' && password[0] != '\0');
    CHECK(authzid[0] == '\0' || strcmp(authzid, authcid) == 0);
}

static int
hook_atrn(void *ctx, struct str domains, struct smtp_reply *r)
{
    struct fz *f = ctx;
    uint8_t d = decide(f);

    (void)domains;
    CHECK(smtp_server_authenticated(f->srv) && !f->in_tx);
    if (d % 3 == 0)
        return smtp_reply_set(r, 250, "2.0.0", "OK now reversing the connection"), 0;
    return smtp_reply_set(r, d % 3 == 1 ? 453 : 450, "4.3.0", "no");
}

static const struct smtp_server_hooks hooks = {
    .atrn = hook_atrn,
    .auth = hook_auth,
    .mail = hook_mail,
    .rcpt = hook_rcpt,
    .reset = hook_reset,
    .vrfy = hook_vrfy,
    .expn = hook_expn,
};

/* ---- invariants ---- */

/* Output is whole reply lines: 3 digits, ' ' or '-', text, CRLF; a '-'
 * line is followed by one with the same code; the last line ends a reply. */
static void
check_output(const struct buf *o)
{
    size_t start = 0;
    bool more = false;
    char code[3] = {0};

    for (size_t i = 0; i < o->len; i++) {
        const char *l = o->data + start;
        size_t n;

        if (o->data[i] != '\n')
            continue;
        n = i + 1 - start;
        CHECK(n >= 6 && n <= 512 && l[n - 2] == '\r');
        CHECK(l[0] >= '2' && l[0] <= '5' && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' &&
              l[2] <= '9');
        CHECK(l[3] == ' ' || l[3] == '-');
        CHECK(memchr(l, '\r', n - 2) == NULL);
        CHECK(!more || memcmp(code, l, 3) == 0);
        memcpy(code, l, 3);
        more = l[3] == '-';
        start = i + 1;
    }
    CHECK(start == o->len);
    CHECK(!more);
}

/* A committed message: CRLF lines only, within the size and line limits. */
static void
check_message(const struct fz *f)
{
    const struct buf *m = smtp_server_message(f->srv);
    size_t line = 0;

    CHECK(f->in_tx && f->rcpt_ok > 0);
    CHECK(m->len <= f->set.message_size);
    CHECK(smtp_server_received_count(f->srv) <= f->set.max_received);
    for (size_t i = 0; i < m->len; i++) {
        if (m->data[i] == '\r') {
            CHECK(i + 1 < m->len && m->data[i + 1] == '\n');
            CHECK(line <= f->set.line_length);
            line = 0;
            i++;
            continue;
        }
        CHECK(m->data[i] != '\n');
        line++;
    }
    CHECK(line == 0); /* the last line ended in CRLF too */
}

static void
collect(struct fz *f)
{
    struct buf *o = smtp_server_output(f->srv);

    check_output(o);
    CHECK(buf_append(&f->replies, o->data ? o->data : "", o->len) == 0);
    buf_reset(o);
}

/* The session layer's part once the machine parks in COMMIT. */
static void
commit(struct fz *f)
{
    const struct buf *m = smtp_server_message(f->srv);
    struct smtp_reply r = {0};
    uint8_t d = decide(f);
    char id[17];

    check_message(f);
    CHECK(smtp_server_feed(f->srv, "NOOP\r\n", 6) == 0); /* parked */
    CHECK(buf_append(&f->messages, m->data ? m->data : "", m->len) == 0);
    CHECK(buf_append(&f->messages, "\0", 1) == 0);
    switch (d % 8) {
    case 1:
        smtp_reply_set(&r, 451, "4.3.0", "queue write failed");
        smtp_server_commit_done(f->srv, &r, NULL);
        break;
    case 2:
        smtp_reply_set(&r, 554, "5.3.0", "refused by policy");
        smtp_server_commit_done(f->srv, &r, NULL);
        break;
    case 7:
        smtp_server_close(f->srv, "4.3.2", "shutting down");
        CHECK(smtp_server_state(f->srv) == SMTP_STATE_CLOSED);
        return;
    default:
        snprintf(id, sizeof(id), "%016X", ++f->commits);
        smtp_server_commit_done(f->srv, NULL, id);
    }
    CHECK(smtp_server_state(f->srv) != SMTP_STATE_COMMIT);
    CHECK(!f->in_tx || smtp_server_state(f->srv) == SMTP_STATE_CLOSED);
}

/* After a feed: what is left over must be what the machine may leave. */
static void
check_leftover(const struct fz *f, const char *rest, size_t n)
{
    switch (smtp_server_state(f->srv)) {
    case SMTP_STATE_COMMIT:
    case SMTP_STATE_AUTH_WAIT:
    case SMTP_STATE_STARTTLS:
    case SMTP_STATE_TURNED:
    case SMTP_STATE_CLOSED:
        return;
    case SMTP_STATE_DATA:
    case SMTP_STATE_BDAT:
        CHECK(n == 0);
        return;
    default:
        CHECK(n <= (f->set.auth_offered ? LINE_MAX_AUTH : LINE_MAX_PARAM) &&
              memchr(rest, '\n', n) == NULL);
    }
}

/* Feeds in[0..n) in pieces of at most piece octets (0 = all at once). */
static void
run(struct fz *f, const uint8_t *in, size_t n, bool pieces)
{
    struct buf pend;
    size_t pos = 0;

    buf_init(&pend, 1 << 24);
    f->srv = smtp_server_new(&f->set, &hooks, f);
    collect(f);
    for (;;) {
        size_t used = smtp_server_feed(f->srv, pend.data ? pend.data : "", pend.len), k;
        enum smtp_state st;

        CHECK(used <= pend.len);
        buf_consume(&pend, used);
        collect(f);
        st = smtp_server_state(f->srv);
        if (st == SMTP_STATE_COMMIT) {
            commit(f);
            collect(f);
            continue;
        }
        if (st == SMTP_STATE_STARTTLS) {
            /* The session drops input pipelined after STARTTLS; here the
             * rest of the input plays what the client sends inside TLS. */
            CHECK(smtp_server_feed(f->srv, "NOOP\r\n", 6) == 0); /* parked */
            CHECK(!smtp_server_tls(f->srv));
            smtp_server_starttls_done(f->srv);
            CHECK(smtp_server_tls(f->srv) && smtp_server_state(f->srv) == SMTP_STATE_INIT);
            CHECK(!smtp_server_authenticated(f->srv));
            collect(f);
            continue;
        }
        if (st == SMTP_STATE_AUTH_WAIT) {
            CHECK(smtp_server_feed(f->srv, "NOOP\r\n", 6) == 0); /* parked */
            smtp_server_auth_done(f->srv, decide(f) & 1);
            CHECK(smtp_server_state(f->srv) != SMTP_STATE_AUTH_WAIT);
            collect(f);
            continue;
        }
        check_leftover(f, pend.data ? pend.data : "", pend.len);
        if (st == SMTP_STATE_CLOSED || st == SMTP_STATE_TURNED || pos == n)
            break;
        k = pieces ? 1 + rng_next(f) % 67 : n - pos;
        k = k < n - pos ? k : n - pos;
        CHECK(buf_append(&pend, in + pos, k) == 0);
        pos += k;
    }
    if (smtp_server_state(f->srv) == SMTP_STATE_CLOSED) {
        /* nothing is read or written after the 221 or 421 */
        CHECK(smtp_server_feed(f->srv, "NOOP\r\n", 6) == 0);
        smtp_server_close(f->srv, "4.4.2", "timeout");
        CHECK(smtp_server_output(f->srv)->len == 0);
    }
    smtp_server_free(f->srv);
    f->srv = NULL;
    buf_free(&pend);
}

static void
fz_init(struct fz *f, const uint8_t *data, size_t ndec, uint8_t flags, uint8_t limits)
{
    memset(f, 0, sizeof(*f));
    f->dec = data;
    f->ndec = ndec;
    f->rng = 0x9e3779b9u ^ (uint32_t)(flags << 8 | limits);
    f->set = (struct smtp_server_settings){
        .hostname = "mx.example.org",
        .peer_ip = "192.0.2.1",
        .message_size = flags & 16 ? 64 : 4096,
        .max_recipients = 1 + limits % 4,
        .max_errors = 1 + (flags >> 5) * 3,
        .max_received = (limits >> 2) % 4,
        .line_length = limits & 16 ? 16 : 998,
        .vrfy = flags & 1,
        .expn = flags & 2,
        .terminal_delivery = flags & 4,
        .reject_bare_newline = flags & 8,
        .auth_offered = limits & 32,
        .auth_required = (limits & 96) == 96,
        .starttls = limits & 128,
        .auth_insecure = !(limits & 128), /* else AUTH waits for STARTTLS */
    };
    buf_init(&f->replies, 1 << 24);
    buf_init(&f->messages, 1 << 24);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz whole, split;
    size_t ndec;

    if (size < 3)
        return 0;
    ndec = data[2] % 64;
    if (ndec > size - 3)
        ndec = size - 3;
    fz_init(&whole, data + 3, ndec, data[0], data[1]);
    fz_init(&split, data + 3, ndec, data[0], data[1]);
    run(&whole, data + 3 + ndec, size - 3 - ndec, false);
    run(&split, data + 3 + ndec, size - 3 - ndec, true);
    /* how the bytes arrive never changes what the server says or stores */
    CHECK(whole.replies.len == split.replies.len);
    CHECK(whole.replies.len == 0 ||
          memcmp(whole.replies.data, split.replies.data, whole.replies.len) == 0);
    CHECK(whole.messages.len == split.messages.len);
    CHECK(whole.messages.len == 0 ||
          memcmp(whole.messages.data, split.messages.data, whole.messages.len) == 0);
    buf_free(&whole.replies);
    buf_free(&whole.messages);
    buf_free(&split.replies);
    buf_free(&split.messages);
    return 0;
}
