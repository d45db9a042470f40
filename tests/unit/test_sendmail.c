/*
 * The sendmail command's logic without a process: option parsing, the
 * input conversion (line ends, the "." line, -i), header fields with
 * folding, address lists for -t, the header fixes (Bcc removed; Date,
 * Message-ID, From added), the trace field, recipient routing with the
 * daemon's rules, and one store into a spool read back. Configs, tables
 * and the spool live under a mkdtemp directory.
 */
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "queue/spool.h"
#include "submit/sendmail.h"
#include "submit/submit.h"

static char tmpdir[] = "/tmp/petrel-test-sendmail-XXXXXX";
static struct config *cf;

/* ---- options ---- */

static int
parse_args(struct sendmail_opts *o, char *err, const char *first, ...)
{
    static char *argv[64]; /* o->rcpts points into it */
    int argc = 1;
    va_list ap;

    argv[0] = "sendmail";
    va_start(ap, first);
    for (const char *a = first; a && argc < 63; a = va_arg(ap, const char *))
        argv[argc++] = (char *)(uintptr_t)a;
    va_end(ap);
    argv[argc] = NULL;
    err[0] = '\0';
    return sendmail_parse_args(argc, argv, o, err, 256);
}

static void
test_options(void **state)
{
    struct sendmail_opts o;
    char err[256];

    (void)state;
    assert_int_equal(parse_args(&o, err, "alice", NULL), 0);
    assert_int_equal(o.mode, SENDMAIL_DELIVER);
    assert_false(o.extract);
    assert_false(o.ignore_dots);
    assert_null(o.sender);
    assert_int_equal(o.nrcpts, 1);
    assert_string_equal(o.rcpts[0], "alice");

    assert_int_equal(parse_args(&o, err, "-t", "-i", NULL), 0);
    assert_true(o.extract && o.ignore_dots);
    assert_int_equal(o.nrcpts, 0);
    assert_int_equal(parse_args(&o, err, "-ti", NULL), 0); /* grouped flags */
    assert_true(o.extract && o.ignore_dots);
    assert_int_equal(parse_args(&o, err, "-oi", NULL), 0);
    assert_true(o.ignore_dots && !o.extract);

    assert_int_equal(parse_args(&o, err, "-f", "a@b.org", "-F", "Ann Smith", "x", NULL), 0);
    assert_string_equal(o.sender, "a@b.org");
    assert_string_equal(o.fullname, "Ann Smith");
    assert_int_equal(parse_args(&o, err, "-fa@b.org", "-FAnn", "-C", "/x.conf", NULL), 0);
    assert_string_equal(o.sender, "a@b.org");
    assert_string_equal(o.fullname, "Ann");
    assert_string_equal(o.config, "/x.conf");
    assert_int_equal(parse_args(&o, err, "-r", "c@d.org", NULL), 0);
    assert_string_equal(o.sender, "c@d.org");
    assert_int_equal(parse_args(&o, err, "-f", "", "x", NULL), 0); /* the null sender */
    assert_string_equal(o.sender, "");
    assert_int_equal(parse_args(&o, err, "-tf", "a@b.org", NULL), 0); /* value after flags */
    assert_true(o.extract);
    assert_string_equal(o.sender, "a@b.org");

    assert_int_equal(parse_args(&o, err, "-bs", NULL), 0);
    assert_int_equal(o.mode, SENDMAIL_SMTP);
    assert_int_equal(parse_args(&o, err, "-bp", NULL), 0);
    assert_int_equal(o.mode, SENDMAIL_QUEUE);
    assert_int_equal(parse_args(&o, err, "-bs", "-bm", NULL), 0);
    assert_int_equal(o.mode, SENDMAIL_DELIVER);

    /* "--" ends the options; so does the first recipient */
    assert_int_equal(parse_args(&o, err, "-i", "--", "-t", "bob", NULL), 0);
    assert_false(o.extract);
    assert_int_equal(o.nrcpts, 2);
    assert_string_equal(o.rcpts[0], "-t");
    assert_int_equal(parse_args(&o, err, "bob", "-t", NULL), 0);
    assert_false(o.extract);
    assert_int_equal(o.nrcpts, 2);
}

static void
test_ignored_options(void **state)
{
    struct sendmail_opts o;
    char err[256];

    (void)state;
    assert_int_equal(parse_args(&o, err, "-oem", "-odb", "-odi", "-oQ/var/x", "-v", "-m", "-U",
                                "-B", "8BITMIME", "-N", "never", "-R", "hdrs", "-V", "env", "-X",
                                "/tmp/log", "-h", "5", "-L", "tag", "-Am", "-Odb", "-n", "-G",
                                "carol", NULL),
                     0);
    assert_int_equal(o.ignored, 18);
    assert_false(o.ignore_dots);
    assert_int_equal(o.nrcpts, 1);
    assert_string_equal(o.rcpts[0], "carol");
}

static void
test_option_errors(void **state)
{
    struct sendmail_opts o;
    char err[256];

    (void)state;
    assert_int_equal(parse_args(&o, err, "-x", NULL), -1);
    assert_string_equal(err, "unknown or unsupported option -x");
    assert_int_equal(parse_args(&o, err, "-q", NULL), -1);
    assert_int_equal(parse_args(&o, err, "-bi", NULL), -1);
    assert_string_equal(err, "option -bi is not supported");
    assert_int_equal(parse_args(&o, err, "-bd", NULL), -1);
    assert_int_equal(parse_args(&o, err, "-f", NULL), -1);
    assert_string_equal(err, "option -f needs a value");
    assert_int_equal(parse_args(&o, err, "-o", NULL), -1);
    assert_int_equal(parse_args(&o, err, "-ti", "-F", NULL), -1);
}

/* ---- input ---- */

/* Feeds s in chunks of step octets; returns the message (static). */
static const char *
convert(const char *s, size_t step, bool ignore_dots, size_t max, int *rc, size_t *used)
{
    static char result[4096];
    struct sendmail_input in;
    struct buf out;
    size_t n = strlen(s), i = 0;

    buf_init(&out, max);
    sendmail_input_init(&in, &out, ignore_dots);
    *rc = 0;
    while (i < n && !in.done) {
        size_t len = n - i < step ? n - i : step;
        long r = sendmail_input_feed(&in, s + i, len);

        if (r < 0) {
            *rc = -1;
            break;
        }
        i += (size_t)r;
        if ((size_t)r < len)
            break;
    }
    if (*rc == 0)
        *rc = sendmail_input_end(&in);
    *used = i;
    snprintf(result, sizeof(result), "%.*s", (int)out.len, out.data ? out.data : "");
    sendmail_input_free(&in);
    buf_free(&out);
    return result;
}

static void
expect_convert(const char *in, bool ignore_dots, const char *want)
{
    for (size_t step = 1; step <= strlen(in) + 1; step++) {
        size_t used;
        int rc;
        const char *got = convert(in, step, ignore_dots, 4096, &rc, &used);

        assert_int_equal(rc, 0);
        if (strcmp(got, want) != 0)
            fail_msg("step %zu: \"%s\" -> \"%s\", expected \"%s\"", step, in, got, want);
    }
}

static void
test_input_line_ends(void **state)
{
    (void)state;
    expect_convert("a\nb\n", false, "a\r\nb\r\n");
    expect_convert("a\r\nb\r\n", false, "a\r\nb\r\n");
    expect_convert("a\r\nb\nc", false, "a\r\nb\r\nc\r\n"); /* mixed; last line completed */
    expect_convert("a\rb\n", false, "a\rb\r\n");           /* a lone CR is kept */
    expect_convert("", false, "");
    expect_convert("\n\n", false, "\r\n\r\n");
    /* a leading mbox "From " line goes; later ones are body text */
    expect_convert("From me Sun Nov 22 13:25:18 2026\nTo: a\n\nFrom here\n", false,
                   "To: a\r\n\r\nFrom here\r\n");
    expect_convert("From: me\n", false, "From: me\r\n");
}

static void
test_input_dot(void **state)
{
    size_t used;
    int rc;

    (void)state;
    expect_convert("a\n.\nafter\n", false, "a\r\n");
    expect_convert("a\r\n.\r\nafter\r\n", false, "a\r\n");
    expect_convert("a\n.", false, "a\r\n"); /* "." at the very end */
    expect_convert("a\n..\n.x\n x\n", false, "a\r\n..\r\n.x\r\n x\r\n");
    /* -i: a "." line is text */
    expect_convert("a\n.\nafter\n", true, "a\r\n.\r\nafter\r\n");
    expect_convert("a\n.", true, "a\r\n.\r\n");
    /* nothing after the "." is consumed */
    convert("a\n.\nrest", 64, false, 4096, &rc, &used);
    assert_int_equal(rc, 0);
    assert_int_equal(used, 4);
}

static void
test_input_too_big(void **state)
{
    size_t used;
    int rc;

    (void)state;
    convert("0123456789\n", 64, false, 12, &rc, &used);
    assert_int_equal(rc, 0); /* 12 octets with the CRLF: fits exactly */
    convert("0123456789a\n", 64, false, 12, &rc, &used);
    assert_int_equal(rc, -1);
    convert("0123456789abcdef", 4, false, 12, &rc, &used); /* one long line */
    assert_int_equal(rc, -1);
}

static void
test_exit_codes(void **state)
{
    struct smtp_reply r = {0};

    (void)state;
    smtp_reply_set(&r, 550, "5.1.1", "unknown");
    assert_int_equal(sendmail_exit_code(&r), EX_NOUSER);
    smtp_reply_set(&r, 550, "5.7.1", "relay denied");
    assert_int_equal(sendmail_exit_code(&r), EX_NOPERM);
    smtp_reply_set(&r, 553, "5.1.3", "syntax");
    assert_int_equal(sendmail_exit_code(&r), EX_DATAERR);
    smtp_reply_set(&r, 451, "4.3.5", "alias loop");
    assert_int_equal(sendmail_exit_code(&r), EX_TEMPFAIL);
    smtp_reply_set(&r, 554, "5.3.0", "other");
    assert_int_equal(sendmail_exit_code(&r), EX_UNAVAILABLE);
}

/* ---- header fields ---- */

static void
test_fields(void **state)
{
    struct str msg = STR_LIT("To: a@x,\r\n\tb@y\r\nSubject : hi\r\nX-Empty:\r\n\r\nBody: no\r\n");
    struct submit_field f;

    (void)state;
    assert_true(submit_next_field(&msg, &f));
    assert_true(str_ieq(f.name, "to"));
    assert_int_equal(f.value.len, strlen(" a@x,\r\n\tb@y"));
    assert_memory_equal(f.value.ptr, " a@x,\r\n\tb@y", f.value.len);
    assert_int_equal(f.raw.len, strlen("To: a@x,\r\n\tb@y\r\n"));
    assert_true(submit_next_field(&msg, &f)); /* obs-field-name: WSP before ":" */
    assert_true(str_ieq(f.name, "subject"));
    assert_true(submit_next_field(&msg, &f));
    assert_true(str_ieq(f.name, "x-empty"));
    assert_int_equal(f.value.len, 0);
    assert_false(submit_next_field(&msg, &f)); /* the empty line */
    assert_memory_equal(msg.ptr, "\r\nBody", 6);

    msg = STR_LIT("not a header\r\nTo: x@y\r\n");
    assert_false(submit_next_field(&msg, &f));
    assert_int_equal(msg.len, strlen("not a header\r\nTo: x@y\r\n"));
    msg = STR_LIT(" To: x@y\r\n");
    assert_false(submit_next_field(&msg, &f));
    msg = STR_LIT("To: x@y"); /* no line end at all */
    assert_true(submit_next_field(&msg, &f));
    assert_int_equal(f.value.len, 4);
    assert_int_equal(msg.len, 0);
}

struct addrs {
    char list[16][128];
    size_t n;
};

static void
collect(void *arg, const char *addr)
{
    struct addrs *a = arg;

    if (a->n < 16)
        snprintf(a->list[a->n++], sizeof(a->list[0]), "%s", addr);
}

static void
expect_list(const char *value, const char *want)
{
    struct addrs a = {0};
    char got[1024] = "";
    size_t n = submit_address_list(str_cstr(value), collect, &a);

    assert_int_equal(n, a.n);
    for (size_t i = 0; i < a.n; i++)
        snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? "|" : "", a.list[i]);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\" -> \"%s\", expected \"%s\"", value, got, want);
}

static void
test_address_lists(void **state)
{
    (void)state;
    expect_list("alice", "alice");
    expect_list(" alice@example.org , bob@example.org ", "alice@example.org|bob@example.org");
    expect_list("Bob Smith <bob@example.org>, <carol@example.org>",
                "bob@example.org|carol@example.org");
    expect_list("\"Smith, Jo\" <jo@x.org>, \"a <b>\" <c@d.org>", "jo@x.org|c@d.org");
    expect_list("(comment, with comma) a@x.org (more (nested)), b@y.org", "a@x.org|b@y.org");
    expect_list("team: a@x.org, b@y.org;, c@z.org", "a@x.org|b@y.org|c@z.org");
    expect_list("undisclosed-recipients:;", "");
    expect_list("<@relay1,@relay2:u@x.org>", "u@x.org");
    expect_list("\"john doe\"@x.org", "\"john doe\"@x.org");
    expect_list("a@x.org,\r\n b@y.org,\r\n\t Ann <c@z.org>", "a@x.org|b@y.org|c@z.org");
    expect_list(",,a@x.org,,", "a@x.org");
    expect_list("", "");
    expect_list("a . b @ x . org, c@y", "a.b@x.org|c@y");  /* CFWS around dots */
    expect_list("bad address@x.org", "bad address@x.org"); /* two words stay apart */
    expect_list("< spaced@x.org >, John Q <j@x.org>", "spaced@x.org|j@x.org");
    expect_list("\"unterminated <a@x.org>", "\"unterminated <a@x.org>"); /* fails later */
}

static void
test_header_rcpts(void **state)
{
    struct str msg = STR_LIT("From: me@x.org\r\n"
                             "To: alice,\r\n bob@example.org\r\n"
                             "Reply-To: nope@x.org\r\n"
                             "CC: Carol <carol@example.org>\r\n"
                             "Resent-To: nope2@x.org\r\n"
                             "bcc: hidden@example.org\r\n"
                             "\r\n"
                             "To: body@x.org\r\n");
    struct addrs a = {0};

    (void)state;
    assert_int_equal(submit_header_rcpts(msg, collect, &a), 4);
    assert_string_equal(a.list[0], "alice");
    assert_string_equal(a.list[1], "bob@example.org");
    assert_string_equal(a.list[2], "carol@example.org");
    assert_string_equal(a.list[3], "hidden@example.org");
}

/* ---- header fixes ---- */

static const char *
fix(const char *msg, const char *name)
{
    static char result[4096];
    struct submit_fixes fx = {"root@mx.example.org", name, "<ID@mx.example.org>", 0};
    struct buf out;

    buf_init(&out, 4096);
    assert_int_equal(submit_fix_headers(str_cstr(msg), &fx, &out), 0);
    snprintf(result, sizeof(result), "%.*s", (int)out.len, out.data);
    buf_free(&out);
    return result;
}

static void
test_fix_adds_missing(void **state)
{
    char date[64], want[512];

    (void)state;
    submit_date(0, date, sizeof(date));
    snprintf(want, sizeof(want),
             "Subject: x\r\nDate: %s\r\nMessage-ID: <ID@mx.example.org>\r\n"
             "From: root@mx.example.org\r\n\r\nbody\r\n",
             date);
    assert_string_equal(fix("Subject: x\r\n\r\nbody\r\n", NULL), want);
    /* present in any case: kept, nothing added */
    assert_string_equal(fix("FROM: a@b\r\ndate: x\r\nmessage-id: <y>\r\n\r\nb\r\n", NULL),
                        "FROM: a@b\r\ndate: x\r\nmessage-id: <y>\r\n\r\nb\r\n");
    /* no header section at all: the body gets its empty line */
    snprintf(want, sizeof(want),
             "Date: %s\r\nMessage-ID: <ID@mx.example.org>\r\nFrom: root@mx.example.org\r\n"
             "\r\nhello world\r\n",
             date);
    assert_string_equal(fix("hello world\r\n", NULL), want);
    snprintf(want, sizeof(want),
             "Date: %s\r\nMessage-ID: <ID@mx.example.org>\r\nFrom: root@mx.example.org\r\n\r\n",
             date);
    assert_string_equal(fix("", NULL), want);
    /* headers only, no body */
    assert_string_equal(fix("From: a\r\nDate: b\r\nMessage-ID: c\r\n", NULL),
                        "From: a\r\nDate: b\r\nMessage-ID: c\r\n\r\n");
}

static void
test_fix_removes_bcc(void **state)
{
    (void)state;
    assert_string_equal(fix("From: a\r\nDate: b\r\nMessage-ID: c\r\nBcc: x@y,\r\n z@w\r\n"
                            "To: t@u\r\nBCC: q@r\r\n\r\nBcc: body\r\n",
                            NULL),
                        "From: a\r\nDate: b\r\nMessage-ID: c\r\nTo: t@u\r\n\r\nBcc: body\r\n");
}

static const char *
added_from(const char *name)
{
    const char *m = fix("Date: x\r\nMessage-ID: y\r\n\r\n", name);

    return m + strlen("Date: x\r\nMessage-ID: y\r\n");
}

static void
test_fix_from_name(void **state)
{
    (void)state;
    assert_string_equal(added_from("Ann Smith"), "From: Ann Smith <root@mx.example.org>\r\n\r\n");
    assert_string_equal(added_from("Smith, Ann \"A\""),
                        "From: \"Smith, Ann \\\"A\\\"\" <root@mx.example.org>\r\n\r\n");
    assert_string_equal(added_from("José"),
                        "From: =?UTF-8?B?Sm9zw6k=?= <root@mx.example.org>\r\n\r\n");
    /* a line break in -F cannot add a header field */
    assert_string_equal(added_from("Eve\r\nBcc: x@y"),
                        "From: \"Eve  Bcc: x@y\" <root@mx.example.org>\r\n\r\n");
    assert_string_equal(added_from(""), "From: root@mx.example.org\r\n\r\n");
    assert_string_equal(added_from("  "), "From: root@mx.example.org\r\n\r\n");
}

static void
test_fix_long_utf8_name(void **state)
{
    const char *m;

    (void)state;
    /* 40 two-octet characters: two encoded-words, none cutting a character */
    m = added_from("éééééééééééééééééééééééééééééééééééééééé");
    assert_non_null(strstr(m, "?= =?UTF-8?B?"));
    for (const char *w = strstr(m, "=?"); w; w = strstr(w + 2, "=?")) {
        const char *end = strstr(w + 2, "?=");

        assert_non_null(end);
        assert_true(end + 2 - w <= 75); /* RFC 2047 2 */
        w = end;
    }
}

static void
test_trace(void **state)
{
    struct submit_trace t = {"mx.example.org", 1000, "", "", "6B02E3C067D66000", "", 0};
    char date[64], want[512];
    struct buf b;

    (void)state;
    submit_date(0, date, sizeof(date));
    buf_init(&b, 4096);
    assert_int_equal(submit_trace(&t, &b), 0);
    snprintf(want, sizeof(want),
             "Received: by mx.example.org (petrel, from userid 1000)\r\n\tid 6B02E3C067D66000; "
             "%s\r\n",
             date);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    buf_reset(&b);
    t.helo = "client.example";
    t.protocol = "ESMTP";
    t.for_rcpt = "alice@example.org";
    assert_int_equal(submit_trace(&t, &b), 0);
    snprintf(want, sizeof(want),
             "Received: from client.example\r\n\tby mx.example.org (petrel, from userid 1000) "
             "with ESMTP id 6B02E3C067D66000\r\n\tfor <alice@example.org>; %s\r\n",
             date);
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);
    buf_free(&b);
}

/* ---- routing and the store ---- */

static void
write_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int
setup(void **state)
{
    char path[PATH_MAX], err[512];

    (void)state;
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    write_file("users", "alice\nbob\ncarol\njosé\n");
    write_file("aliases", "sales: alice, bob\npostmaster: alice\nfar: someone@remote.example\n");
    write_file("petrel.conf", "hostname mx.example.org\n"
                              "spool \"spool\"\n"
                              "listen on 127.0.0.1 port 2525\n"
                              "table users file:\"users\"\n"
                              "table aliases file:\"aliases\"\n"
                              "action \"local\" maildir \"mail/%{user}\" users <users> "
                              "aliases <aliases>\n"
                              "action \"remote\" relay\n"
                              "match for domain \"example.org\" action \"local\"\n"
                              "match from local for any action \"remote\"\n"
                              "recipient-delimiter \"+\"\n");
    snprintf(path, sizeof(path), "%s/petrel.conf", tmpdir);
    cf = config_load(path, err, sizeof(err));
    if (cf == NULL)
        fprintf(stderr, "%s\n", err);
    return cf ? 0 : -1;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
teardown(void **state)
{
    (void)state;
    config_unref(cf);
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void
expect_rcpt(const char *addr, const char *want)
{
    struct smtp_reply r = {0};
    struct smtp_path p;
    char got[SMTP_PATH_MAX + 1];

    if (submit_parse_rcpt(cf, addr, &p, &r) < 0)
        fail_msg("%s: %d %s %s", addr, r.code, r.status, r.text);
    assert_true(smtp_path_format(&p, got, sizeof(got)) >= 0);
    assert_string_equal(got, want);
}

static void
expect_rcpt_refused(const char *addr, int code, const char *status)
{
    struct smtp_reply r = {0};
    struct smtp_path p;

    assert_int_equal(submit_parse_rcpt(cf, addr, &p, &r), -1);
    assert_int_equal(r.code, code);
    assert_string_equal(r.status, status);
}

static void
test_parse_rcpt(void **state)
{
    struct smtp_reply r = {0};
    struct smtp_path p;

    (void)state;
    expect_rcpt("alice", "alice@example.org");
    expect_rcpt("Alice+news", "Alice+news@example.org"); /* the tag stays */
    expect_rcpt("sales", "sales@example.org");
    expect_rcpt("<bob@example.org>", "bob@example.org");
    expect_rcpt("  someone@remote.example ", "someone@remote.example");
    expect_rcpt("\"john doe\"@remote.example", "\"john doe\"@remote.example");
    expect_rcpt_refused("nobody", 550, "5.1.1");
    expect_rcpt_refused("", 553, "5.1.3");
    expect_rcpt_refused("a@@b", 553, "5.1.3");
    expect_rcpt_refused("a b@example.org", 553, "5.1.3");
    assert_int_equal(submit_parse_rcpt(cf, "postmaster", &p, &r), 0);
    assert_true(p.no_domain);
}

static void
test_parse_sender(void **state)
{
    struct smtp_reply r = {0};
    struct smtp_path p;
    char got[SMTP_PATH_MAX + 1];

    (void)state;
    assert_int_equal(submit_parse_sender(cf, "", &p, &r), 0);
    assert_true(p.null);
    assert_int_equal(submit_parse_sender(cf, "<>", &p, &r), 0);
    assert_true(p.null);
    assert_int_equal(submit_parse_sender(cf, "root", &p, &r), 0);
    assert_true(smtp_path_format(&p, got, sizeof(got)) >= 0);
    assert_string_equal(got, "root@mx.example.org");
    assert_int_equal(submit_parse_sender(cf, "<x@y.org>", &p, &r), 0);
    assert_int_equal(submit_parse_sender(cf, "x@@y", &p, &r), -1);
    assert_string_equal(r.status, "5.1.7");
}

/* An alias and its member, and two spellings of one mailbox: one copy. */
static void
test_rcpt_dedup(void **state)
{
    static const char *const rcpts[] = {
        "sales", "alice", "ALICE+x", "alice@example.org", "far", "someone@remote.example"};
    struct smtp_reply r = {0};
    struct smtp_path p;
    struct submit s;

    (void)state;
    submit_init(&s, cf);
    submit_begin(&s, "root@mx.example.org", "");
    for (size_t i = 0; i < sizeof(rcpts) / sizeof(rcpts[0]); i++) {
        assert_int_equal(submit_parse_rcpt(cf, rcpts[i], &p, &r), 0);
        assert_int_equal(submit_rcpt(&s, &p, 0, "", &r), 0);
    }
    assert_int_equal(s.naccepted, 6);
    assert_string_equal(s.first_rcpt, "sales@example.org");
    assert_int_equal(s.env->nrcpts, 3);
    assert_string_equal(s.env->rcpts[0].user, "alice");
    assert_string_equal(s.env->rcpts[1].user, "bob");
    assert_int_equal(s.env->rcpts[2].kind, RCPT_RELAY);
    assert_string_equal(s.env->rcpts[2].address, "someone@remote.example");
    submit_clear(&s);
    assert_null(s.env);
}

static void
test_store_and_read_back(void **state)
{
    struct str trace = STR_LIT("Received: by mx.example.org (petrel, from userid 0)\r\n"
                               "\tid X; date\r\n");
    struct str msg = STR_LIT("Subject: caf\xc3\xa9\r\n\r\nbody\r\n");
    char err[512], spool[PATH_MAX], id[QUEUE_ID_LEN + 1];
    struct smtp_reply r = {0};
    struct smtp_path p;
    struct envelope *e;
    struct spool *sp;
    struct submit s;

    (void)state;
    snprintf(spool, sizeof(spool), "%s/spool", tmpdir);
    submit_init(&s, cf);
    submit_begin(&s, "root@mx.example.org", "");
    assert_int_equal(submit_parse_rcpt(cf, "josé", &p, &r), 0);
    assert_int_equal(submit_rcpt(&s, &p, 0, "", &r), 0);
    submit_new_id(&s, spool);
    assert_true(queue_id_valid(s.env->id));
    assert_int_equal(submit_store(&s, spool, trace, msg, err, sizeof(err)), 0);
    snprintf(id, sizeof(id), "%s", s.env->id);
    submit_clear(&s);

    sp = spool_open(spool, NULL, err, sizeof(err));
    assert_non_null(sp);
    e = spool_load(sp, id);
    assert_non_null(e);
    assert_string_equal(e->sender, "root@mx.example.org");
    assert_string_equal(e->client, "local");
    assert_int_equal(e->nrcpts, 1);
    assert_string_equal(e->rcpts[0].user, "josé");
    assert_int_equal(e->body, 1); /* 8BITMIME: the subject is UTF-8 */
    assert_true(e->smtputf8);     /* the address is */
    assert_true(e->arrival > 0);
    envelope_free(e);
    spool_close(sp);

    /* a second id differs, and never names a queued message */
    submit_init(&s, cf);
    submit_begin(&s, "", "");
    submit_new_id(&s, spool);
    assert_string_not_equal(s.env->id, id);
    submit_clear(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_ignored_options),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_input_line_ends),
        cmocka_unit_test(test_input_dot),
        cmocka_unit_test(test_input_too_big),
        cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_fields),
        cmocka_unit_test(test_address_lists),
        cmocka_unit_test(test_header_rcpts),
        cmocka_unit_test(test_fix_adds_missing),
        cmocka_unit_test(test_fix_removes_bcc),
        cmocka_unit_test(test_fix_from_name),
        cmocka_unit_test(test_fix_long_utf8_name),
        cmocka_unit_test(test_trace),
        cmocka_unit_test(test_parse_rcpt),
        cmocka_unit_test(test_parse_sender),
        cmocka_unit_test(test_rcpt_dedup),
        cmocka_unit_test(test_store_and_read_back),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
