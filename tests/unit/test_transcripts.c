/*
 * Runs the SMTP transcripts (every .smtp file in tests/transcripts/) against
 * the server state machine, one cmocka test per file, each twice: input
 * delivered as written and input delivered one octet at a time. The
 * directory is found relative to the repository root (where the tests run),
 * else under $PETREL_SRCDIR. File format:
 *
 *   # settings: vrfy=on expn=on max_recipients=3 ...   (before anything else)
 *   # any other comment; blank lines are ignored
 *   C: EHLO client.example      client line, CRLF appended
 *   C-: BDAT 5\r\nhel           client bytes, nothing appended
 *   S: 250 2.1.0 Ok             the next reply line, exactly
 *   M: Subject: hi              expected message line (CRLF appended; M-: none),
 *                               checked at the next commit
 *   X: commit OK 0123ABCD       end COMMIT with success ...
 *   X: commit FAIL 451 4.3.0 text   ... or with this reply
 *   X: close 4.4.2 text         smtp_server_close()
 *   X: state READY              assert the state (INIT READY MAIL RCPT DATA BDAT COMMIT CLOSED)
 *   X: mode SOML                assert the transaction mode
 *   X: calls mail=1 rcpt=2 reset=1   assert how often the hooks ran
 *
 * C, C-, M and M- text understands \r \n \t \\ and \xHH. Consecutive client
 * lines reach the server in one feed (pipelining); all replies must be
 * matched by S: lines, and a message left in COMMIT fails the test.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "smtp/smtp_server.h"

#define TRANSCRIPT_DIR "tests/transcripts"

struct calls {
    unsigned mail, rcpt, reset;
};

struct run {
    const char *file;
    unsigned lineno;
    bool bytewise;
    char hostname[256], peer_ip[64];
    struct smtp_server_settings set;
    struct smtp_server *srv;
    struct calls calls;
    struct buf pend;    /* client bytes not yet delivered */
    struct buf inbuf;   /* delivered, not yet consumed by the server */
    struct buf replies; /* server output not yet matched */
    size_t rpos;
    struct buf msg; /* expected message, from M: lines */
    bool have_msg;
};

#define FAIL(r, ...)                                                                               \
    fail_msg("%s:%u (%s): %s", (r)->file, (r)->lineno, (r)->bytewise ? "bytewise" : "whole",       \
             errtext(__VA_ARGS__))

static const char *errtext(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static const char *
errtext(const char *fmt, ...)
{
    static char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return text;
}

/* ---- fake hooks: the same policy as test_smtp_server.c ---- */

static int
hook_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
          const struct smtp_mail_params *p, struct smtp_reply *r)
{
    struct run *run = ctx;

    (void)mode;
    (void)p;
    run->calls.mail++;
    if (strcmp(from->local, "blocked") == 0)
        return smtp_reply_set(r, 550, "5.7.1", "sender blocked");
    return 0;
}

static int
hook_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
          struct smtp_reply *r)
{
    struct run *run = ctx;
    char addr[SMTP_PATH_MAX + 1];

    (void)p;
    run->calls.rcpt++;
    if (smtp_path_format(to, addr, sizeof(addr)) < 0)
        return smtp_reply_set(r, 501, "5.1.3", "cannot format");
    if (strcmp(to->local, "nobody") == 0)
        return smtp_reply_set(r, 550, "5.1.1", "<%s>: user unknown", addr);
    if (strcmp(addr, "far@away") == 0)
        return smtp_reply_set(r, 550, "5.7.1", "<%s>: relaying denied", addr);
    return 0;
}

static void
hook_reset(void *ctx)
{
    struct run *run = ctx;

    run->calls.reset++;
}

static int
hook_vrfy(void *ctx, struct str arg, char *out, size_t n, struct smtp_reply *r)
{
    (void)ctx;
    if (str_ieq(arg, "alice")) {
        snprintf(out, n, "alice@example.org");
        return 0;
    }
    return smtp_reply_set(r, 550, "5.1.1", "<%.*s>: user unknown", (int)arg.len, arg.ptr);
}

static int
hook_expn(void *ctx, struct str arg, struct buf *lines, struct smtp_reply *r)
{
    static const char staff[] = "alice@example.org\nbob@example.org";

    (void)ctx;
    if (!str_ieq(arg, "staff"))
        return smtp_reply_set(r, 550, "5.1.1", "<%.*s>: not a mailing list", (int)arg.len, arg.ptr);
    return buf_append(lines, staff, sizeof(staff) - 1);
}

static const struct smtp_server_hooks hooks = {
    .mail = hook_mail,
    .rcpt = hook_rcpt,
    .reset = hook_reset,
    .vrfy = hook_vrfy,
    .expn = hook_expn,
};

/* ---- settings header ---- */

static bool
setting_bool(struct run *r, struct str v)
{
    if (str_ieq(v, "on") || str_ieq(v, "yes") || str_ieq(v, "1"))
        return true;
    if (str_ieq(v, "off") || str_ieq(v, "no") || str_ieq(v, "0"))
        return false;
    FAIL(r, "bad boolean \"%.*s\"", (int)v.len, v.ptr);
    return false;
}

static uint64_t
setting_num(struct run *r, struct str v)
{
    uint64_t n = 0;

    if (v.len == 0 || v.len > 19)
        FAIL(r, "bad number \"%.*s\"", (int)v.len, v.ptr);
    for (size_t i = 0; i < v.len; i++) {
        if (v.ptr[i] < '0' || v.ptr[i] > '9')
            FAIL(r, "bad number \"%.*s\"", (int)v.len, v.ptr);
        n = n * 10 + (uint64_t)(v.ptr[i] - '0');
    }
    return n;
}

static void
setting_str(struct run *r, struct str v, char *out, size_t n)
{
    if (!str_copy(v, out, n))
        FAIL(r, "value too long");
}

static void
setting(struct run *r, struct str k, struct str v)
{
    struct smtp_server_settings *s = &r->set;

    if (str_ieq(k, "vrfy"))
        s->vrfy = setting_bool(r, v);
    else if (str_ieq(k, "expn"))
        s->expn = setting_bool(r, v);
    else if (str_ieq(k, "terminal_delivery"))
        s->terminal_delivery = setting_bool(r, v);
    else if (str_ieq(k, "reject_bare_newline"))
        s->reject_bare_newline = setting_bool(r, v);
    else if (str_ieq(k, "message_size"))
        s->message_size = setting_num(r, v);
    else if (str_ieq(k, "max_recipients"))
        s->max_recipients = (unsigned)setting_num(r, v);
    else if (str_ieq(k, "max_errors"))
        s->max_errors = (unsigned)setting_num(r, v);
    else if (str_ieq(k, "max_received"))
        s->max_received = (unsigned)setting_num(r, v);
    else if (str_ieq(k, "line_length"))
        s->line_length = (size_t)setting_num(r, v);
    else if (str_ieq(k, "hostname"))
        setting_str(r, v, r->hostname, sizeof(r->hostname));
    else if (str_ieq(k, "peer_ip"))
        setting_str(r, v, r->peer_ip, sizeof(r->peer_ip));
    else
        FAIL(r, "unknown setting \"%.*s\"", (int)k.len, k.ptr);
}

static void
settings_line(struct run *r, struct str line)
{
    while (line.len) {
        struct str word = str_cut(&line, ' '), key;

        if (word.len == 0)
            continue;
        if (memchr(word.ptr, '=', word.len) == NULL)
            FAIL(r, "setting \"%.*s\" needs =value", (int)word.len, word.ptr);
        key = str_cut(&word, '=');
        setting(r, key, word);
    }
}

/* ---- the run ---- */

static unsigned
hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (unsigned)(c - 'A' + 10);
    return 16;
}

static void
unescape(struct run *r, struct str in, struct buf *out)
{
    for (size_t i = 0; i < in.len; i++) {
        char c = in.ptr[i];

        if (c == '\\') {
            unsigned hi, lo;

            if (++i == in.len)
                FAIL(r, "lone backslash at the end of the line");
            switch (in.ptr[i]) {
            case 'r':
                c = '\r';
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case '\\':
                c = '\\';
                break;
            case 'x':
                hi = i + 2 < in.len ? hexdigit(in.ptr[i + 1]) : 16;
                lo = i + 2 < in.len ? hexdigit(in.ptr[i + 2]) : 16;
                if (hi > 15 || lo > 15)
                    FAIL(r, "bad \\x escape");
                c = (char)(hi * 16 + lo);
                i += 2;
                break;
            default:
                FAIL(r, "unknown escape \\%c", in.ptr[i]);
            }
        }
        assert_int_equal(buf_append(out, &c, 1), 0);
    }
}

/* Replies are whole lines: three digits, ' ' or '-', text, CRLF. */
static void
check_output(struct run *r, const struct buf *o)
{
    size_t start = 0;

    for (size_t i = 0; i < o->len; i++) {
        if (o->data[i] != '\n')
            continue;
        if (i - start < 5 || o->data[i - 1] != '\r' || o->data[start + 3] == '\r' ||
            (o->data[start + 3] != ' ' && o->data[start + 3] != '-') ||
            memchr(o->data + start, '\r', i - 1 - start) != NULL)
            FAIL(r, "malformed reply line \"%.*s\"", (int)(i - start), o->data + start);
        start = i + 1;
    }
    if (start != o->len)
        FAIL(r, "output ends inside a line");
}

static void
collect(struct run *r)
{
    struct buf *o = smtp_server_output(r->srv);

    check_output(r, o);
    assert_int_equal(buf_append(&r->replies, o->data ? o->data : "", o->len), 0);
    buf_reset(o);
}

/* Delivers pending client bytes the way the session layer does. */
static void
pump(struct run *r)
{
    for (;;) {
        size_t used = smtp_server_feed(r->srv, r->inbuf.data ? r->inbuf.data : "", r->inbuf.len);
        enum smtp_state st;
        size_t k;

        buf_consume(&r->inbuf, used);
        collect(r);
        st = smtp_server_state(r->srv);
        if (st == SMTP_STATE_COMMIT || st == SMTP_STATE_CLOSED || r->pend.len == 0)
            return;
        if (memchr(r->inbuf.data ? r->inbuf.data : "", '\n', r->inbuf.len) &&
            st != SMTP_STATE_DATA && st != SMTP_STATE_BDAT)
            FAIL(r, "server left a complete command line unread");
        k = r->bytewise ? 1 : r->pend.len;
        assert_int_equal(buf_append(&r->inbuf, r->pend.data, k), 0);
        buf_consume(&r->pend, k);
    }
}

static void
expect_reply(struct run *r, struct str want)
{
    const char *p, *crlf;
    size_t n;

    pump(r);
    p = r->replies.data + r->rpos;
    crlf = r->rpos < r->replies.len ? memmem(p, r->replies.len - r->rpos, "\r\n", 2) : NULL;
    if (crlf == NULL)
        FAIL(r, "expected \"%.*s\", the server said nothing more", (int)want.len, want.ptr);
    n = (size_t)(crlf - p);
    if (n != want.len || memcmp(p, want.ptr, n) != 0)
        FAIL(r, "expected \"%.*s\"\n     got \"%.*s\"", (int)want.len, want.ptr, (int)n, p);
    r->rpos += n + 2;
}

static const char *const state_names[] = {
    [SMTP_STATE_INIT] = "INIT",     [SMTP_STATE_READY] = "READY",   [SMTP_STATE_MAIL] = "MAIL",
    [SMTP_STATE_RCPT] = "RCPT",     [SMTP_STATE_DATA] = "DATA",     [SMTP_STATE_BDAT] = "BDAT",
    [SMTP_STATE_COMMIT] = "COMMIT", [SMTP_STATE_CLOSED] = "CLOSED",
};

static const char *const mode_names[] = {
    [SMTP_MODE_MAIL] = "MAIL",
    [SMTP_MODE_SEND] = "SEND",
    [SMTP_MODE_SOML] = "SOML",
    [SMTP_MODE_SAML] = "SAML",
};

static void
check_message(struct run *r)
{
    const struct buf *m = smtp_server_message(r->srv);

    if (!r->have_msg)
        return;
    if (m->len != r->msg.len || (m->len && memcmp(m->data, r->msg.data, m->len) != 0))
        FAIL(r, "message is \"%.*s\"\n    want \"%.*s\"", (int)m->len, m->data ? m->data : "",
             (int)r->msg.len, r->msg.data ? r->msg.data : "");
    buf_reset(&r->msg);
    r->have_msg = false;
}

static void
do_commit(struct run *r, struct str args)
{
    struct str how = str_cut(&args, ' ');
    struct smtp_reply rep = {0};
    char id[64], status[16];

    pump(r);
    if (smtp_server_state(r->srv) != SMTP_STATE_COMMIT)
        FAIL(r, "commit, but the state is %s", state_names[smtp_server_state(r->srv)]);
    check_message(r);
    if (str_ieq(how, "OK")) {
        if (!str_copy(args, id, sizeof(id)))
            FAIL(r, "queue id too long");
        smtp_server_commit_done(r->srv, NULL, id);
    } else if (str_ieq(how, "FAIL")) {
        struct str code = str_cut(&args, ' '), st = str_cut(&args, ' ');

        if (!str_copy(st, status, sizeof(status)))
            FAIL(r, "bad status");
        /* status is borrowed only for the call */
        smtp_reply_set(&rep, (int)setting_num(r, code), status, "%.*s", (int)args.len, args.ptr);
        smtp_server_commit_done(r->srv, &rep, "");
    } else {
        FAIL(r, "commit OK id | commit FAIL code status text");
    }
    collect(r);
}

static void
check_calls(struct run *r, struct str args)
{
    while (args.len) {
        struct str v = str_cut(&args, ' '), k = str_cut(&v, '=');
        unsigned want = (unsigned)setting_num(r, v), got;

        if (str_ieq(k, "mail"))
            got = r->calls.mail;
        else if (str_ieq(k, "rcpt"))
            got = r->calls.rcpt;
        else if (str_ieq(k, "reset"))
            got = r->calls.reset;
        else
            FAIL(r, "calls: mail= rcpt= reset=");
        if (got != want)
            FAIL(r, "%.*s hook ran %u times, want %u", (int)k.len, k.ptr, got, want);
    }
}

static void
directive(struct run *r, struct str line)
{
    struct str verb = str_cut(&line, ' ');

    if (str_ieq(verb, "commit")) {
        do_commit(r, line);
    } else if (str_ieq(verb, "close")) {
        struct str st = str_cut(&line, ' ');
        char status[16], text[256];

        pump(r);
        if (!str_copy(st, status, sizeof(status)) || !str_copy(line, text, sizeof(text)))
            FAIL(r, "close status text");
        smtp_server_close(r->srv, status, text);
        collect(r);
    } else if (str_ieq(verb, "state")) {
        pump(r);
        if (!str_ieq(line, state_names[smtp_server_state(r->srv)]))
            FAIL(r, "state is %s, want %.*s", state_names[smtp_server_state(r->srv)], (int)line.len,
                 line.ptr);
    } else if (str_ieq(verb, "mode")) {
        pump(r);
        if (!str_ieq(line, mode_names[smtp_server_mode(r->srv)]))
            FAIL(r, "mode is %s, want %.*s", mode_names[smtp_server_mode(r->srv)], (int)line.len,
                 line.ptr);
    } else if (str_ieq(verb, "calls")) {
        pump(r);
        check_calls(r, line);
    } else {
        FAIL(r, "unknown directive \"%.*s\"", (int)verb.len, verb.ptr);
    }
}

/* "C: text", "C:" (empty text), "C-: text": the tag and the text. */
static bool
split_tag(struct str line, struct str *tag, struct str *text)
{
    const char *colon = memchr(line.ptr, ':', line.len < 3 ? line.len : 3);

    if (colon == NULL)
        return false;
    *tag = str_make(line.ptr, (size_t)(colon - line.ptr));
    *text = str_make(colon + 1, line.len - tag->len - 1);
    if (text->len && text->ptr[0] == ' ') {
        text->ptr++;
        text->len--;
    }
    return true;
}

static void
step(struct run *r, struct str line)
{
    struct str tag, text;

    if (line.len && line.ptr[line.len - 1] == '\r')
        line.len--; /* a transcript saved with CRLF line ends */
    if (line.len == 0 || line.ptr[0] == '#')
        return;
    if (!split_tag(line, &tag, &text))
        FAIL(r, "a line starts with C:, C-:, S:, M:, M-:, X: or #");
    if (str_ieq(tag, "C") || str_ieq(tag, "C-")) {
        unescape(r, text, &r->pend);
        if (tag.len == 1)
            assert_int_equal(buf_append(&r->pend, "\r\n", 2), 0);
    } else if (str_ieq(tag, "S")) {
        expect_reply(r, text);
    } else if (str_ieq(tag, "M") || str_ieq(tag, "M-")) {
        unescape(r, text, &r->msg);
        if (tag.len == 1)
            assert_int_equal(buf_append(&r->msg, "\r\n", 2), 0);
        r->have_msg = true;
    } else if (str_ieq(tag, "X")) {
        directive(r, text);
    } else {
        FAIL(r, "unknown tag \"%.*s\"", (int)tag.len, tag.ptr);
    }
}

static char *
read_all(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t cap = 0, len = 0, got;

    if (f == NULL)
        fail_msg("cannot open %s", path);
    do {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            data = realloc(data, cap);
            assert_non_null(data);
        }
        got = fread(data + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    *n = len;
    return data;
}

static void
run_file(const char *path, bool bytewise)
{
    struct run r = {.file = path, .bytewise = bytewise};
    size_t n;
    char *text = read_all(path, &n);
    struct str all = str_make(text, n), scan = all, line;

    snprintf(r.hostname, sizeof(r.hostname), "mx.example.org");
    snprintf(r.peer_ip, sizeof(r.peer_ip), "192.0.2.1");
    r.set = (struct smtp_server_settings){
        .message_size = 10240,
        .max_recipients = 100,
        .max_errors = 10,
        .max_received = 30,
        .line_length = 998,
    };
    while (scan.len) { /* the header first: the server is built with it */
        line = str_cut(&scan, '\n');
        r.lineno++;
        if (str_iprefix(line, "# settings:"))
            settings_line(&r, str_trim(str_make(line.ptr + 11, line.len - 11)));
    }
    r.set.hostname = r.hostname;
    r.set.peer_ip = r.peer_ip;
    buf_init(&r.pend, 1 << 24);
    buf_init(&r.inbuf, 1 << 24);
    buf_init(&r.replies, 1 << 24);
    buf_init(&r.msg, 1 << 24);
    r.srv = smtp_server_new(&r.set, &hooks, &r);
    collect(&r);
    r.lineno = 0;
    scan = all;
    while (scan.len) {
        line = str_cut(&scan, '\n');
        r.lineno++;
        step(&r, line);
    }
    pump(&r);
    if (r.rpos < r.replies.len)
        FAIL(&r, "replies left unmatched at the end:\n%.*s", (int)(r.replies.len - r.rpos),
             r.replies.data + r.rpos);
    if (smtp_server_state(r.srv) == SMTP_STATE_COMMIT)
        FAIL(&r, "a message is waiting for X: commit at the end");
    if (r.have_msg)
        FAIL(&r, "M: lines after the last commit");
    smtp_server_free(r.srv);
    buf_free(&r.pend);
    buf_free(&r.inbuf);
    buf_free(&r.replies);
    buf_free(&r.msg);
    free(text);
}

static void
test_transcript(void **state)
{
    const char *path = *state;

    run_file(path, false);
    run_file(path, true);
}

/* ---- discovery ---- */

static int
smtp_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);

    return d->d_name[0] != '.' && n > 5 && strcmp(d->d_name + n - 5, ".smtp") == 0;
}

static const char *
transcript_dir(char *buf, size_t n)
{
    const char *src = getenv("PETREL_SRCDIR");
    DIR *d = opendir(TRANSCRIPT_DIR);

    if (d != NULL) {
        closedir(d);
        return TRANSCRIPT_DIR;
    }
    if (src == NULL || *src == '\0')
        return NULL;
    snprintf(buf, n, "%s/%s", src, TRANSCRIPT_DIR);
    return buf;
}

int
main(void)
{
    char dirbuf[4096];
    const char *dir = transcript_dir(dirbuf, sizeof(dirbuf));
    struct dirent **names;
    struct CMUnitTest *tests;
    int n, rc;

    if (dir == NULL) {
        fprintf(stderr,
                "test_transcripts: no %s here; run from the repository root or set "
                "PETREL_SRCDIR\n",
                TRANSCRIPT_DIR);
        return 1;
    }
    n = scandir(dir, &names, smtp_file, alphasort);
    if (n <= 0) {
        fprintf(stderr, "test_transcripts: no *.smtp files in %s\n", dir);
        return 1;
    }
    tests = calloc((size_t)n, sizeof(*tests));
    assert_non_null(tests);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(dir) + strlen(names[i]->d_name) + 2;
        char *path = malloc(len);

        assert_non_null(path);
        snprintf(path, len, "%s/%s", dir, names[i]->d_name);
        tests[i].name = names[i]->d_name;
        tests[i].test_func = test_transcript;
        tests[i].initial_state = path;
    }
    rc = _cmocka_run_group_tests("transcripts", tests, (size_t)n, NULL, NULL);
    for (int i = 0; i < n; i++) {
        free(tests[i].initial_state);
        free(names[i]);
    }
    free(names);
    free(tests);
    return rc;
}
