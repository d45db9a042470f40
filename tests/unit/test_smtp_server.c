/*
 * The SMTP server state machine driven as bytes in, replies out, with no
 * sockets: a fake set of hooks records what the machine asks, and small
 * limits make every limit reachable. Covers the command set, pipelining,
 * feeding in arbitrary pieces, DATA and BDAT, the limits and SMTP
 * smuggling in both bare-newline modes.
 */
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

#define HOST "mx.example.org"
#define GREETING "220 " HOST " ESMTP petrel\r\n"
#define EHLO_REPLY                                                                                 \
    "250-" HOST " Hello client.example [192.0.2.1]\r\n"                                            \
    "250-PIPELINING\r\n"                                                                           \
    "250-SIZE 1000\r\n"                                                                            \
    "250-8BITMIME\r\n"                                                                             \
    "250-ENHANCEDSTATUSCODES\r\n"                                                                  \
    "250-SMTPUTF8\r\n"                                                                             \
    "250-CHUNKING\r\n"                                                                             \
    "250 DSN\r\n"
#define R_OK "250 2.0.0 Ok\r\n"
#define R_MAIL_OK "250 2.1.0 Ok\r\n"
#define R_RCPT_OK "250 2.1.5 Ok\r\n"
#define R_354 "354 End data with <CR><LF>.<CR><LF>\r\n"
#define R_TOO_LONG "500 5.5.2 line too long\r\n"
#define R_UNKNOWN "500 5.5.2 command not recognized\r\n"
#define R_TOO_BIG "552 5.3.4 message size exceeds fixed maximum message size\r\n"
#define R_BARE "554 5.6.0 message contains bare CR or LF; lines must end in CRLF\r\n"

#define HELP_REPLY                                                                                 \
    "214-2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP QUIT HELP VRFY EXPN ETRN\r\n"     \
    "214-2.0.0 Legacy: SEND SOML SAML (RFC 821)\r\n"                                               \
    "214 2.0.0 HELP <command> describes one command\r\n"

#define MAIL "MAIL FROM:<sender@example.net>\r\n"
#define RCPT "RCPT TO:<alice@example.org>\r\n"

/* What the fake hooks saw. */
struct fake {
    unsigned mail, rcpt, rcpt_ok, reset, vrfy, expn;
    enum smtp_mode mode;
    char from[SMTP_PATH_MAX + 1];
    char to[SMTP_PATH_MAX + 1]; /* last accepted recipient */
    struct smtp_mail_params mail_params;
    struct smtp_rcpt_params rcpt_params;
};

static const struct smtp_server_settings default_settings = {
    .hostname = HOST,
    .peer_ip = "192.0.2.1",
    .message_size = 1000,
    .max_recipients = 3,
    .max_errors = 20,
    .max_received = 3,
    .line_length = 100,
};

static struct fake fk;
static struct smtp_server_settings set;
static struct smtp_server *srv;
static char out[1 << 16];

/* ---- fake hooks ---- */

static int
fake_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
          const struct smtp_mail_params *p, struct smtp_reply *r)
{
    struct fake *f = ctx;

    f->mail++;
    f->mode = mode;
    f->mail_params = *p;
    assert_true(smtp_path_format(from, f->from, sizeof(f->from)) >= 0);
    if (strcmp(from->local, "blocked") == 0)
        return smtp_reply_set(r, 550, "5.7.1", "sender blocked");
    return 0;
}

static int
fake_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
          struct smtp_reply *r)
{
    struct fake *f = ctx;
    char addr[SMTP_PATH_MAX + 1];

    f->rcpt++;
    assert_true(smtp_path_format(to, addr, sizeof(addr)) >= 0);
    if (strcmp(to->local, "nobody") == 0)
        return smtp_reply_set(r, 550, "5.1.1", "<%s>: user unknown", addr);
    if (strcmp(addr, "far@away") == 0)
        return smtp_reply_set(r, 550, "5.7.1", "<%s>: relaying denied", addr);
    f->rcpt_ok++;
    f->rcpt_params = *p;
    snprintf(f->to, sizeof(f->to), "%s", addr);
    return 0;
}

static void
fake_reset(void *ctx)
{
    struct fake *f = ctx;

    f->reset++;
}

static int
fake_vrfy(void *ctx, struct str arg, char *addr, size_t n, struct smtp_reply *r)
{
    struct fake *f = ctx;

    f->vrfy++;
    if (str_ieq(arg, "alice")) {
        snprintf(addr, n, "alice@example.org");
        return 0;
    }
    return smtp_reply_set(r, 550, "5.1.1", "<%.*s>: user unknown", (int)arg.len, arg.ptr);
}

static int
fake_expn(void *ctx, struct str arg, struct buf *lines, struct smtp_reply *r)
{
    struct fake *f = ctx;
    const char *members = NULL;

    f->expn++;
    if (str_ieq(arg, "staff"))
        members = "alice@example.org\nbob@example.org";
    else if (str_ieq(arg, "solo"))
        members = "carol@example.org";
    else if (str_ieq(arg, "empty"))
        members = "";
    if (members == NULL)
        return smtp_reply_set(r, 550, "5.1.1", "<%.*s>: not a mailing list", (int)arg.len, arg.ptr);
    assert_int_equal(buf_append(lines, members, strlen(members)), 0);
    return 0;
}

static const struct smtp_server_hooks fake_hooks = {
    .mail = fake_mail,
    .rcpt = fake_rcpt,
    .reset = fake_reset,
    .vrfy = fake_vrfy,
    .expn = fake_expn,
};

/* ---- driving the machine ---- */

static int
setup(void **state)
{
    (void)state;
    memset(&fk, 0, sizeof(fk));
    set = default_settings;
    srv = NULL;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    smtp_server_free(srv);
    srv = NULL;
    return 0;
}

/* The replies produced so far, NUL-terminated; empties the output. */
static const char *
take(void)
{
    struct buf *b = smtp_server_output(srv);

    assert_true(b->len < sizeof(out));
    memcpy(out, b->data ? b->data : "", b->len);
    out[b->len] = '\0';
    buf_reset(b);
    return out;
}

static void
start(void)
{
    srv = smtp_server_new(&set, &fake_hooks, &fk);
    assert_non_null(srv);
    assert_string_equal(take(), GREETING);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_INIT);
}

/* Feeds n octets from an exact-size heap copy; returns the octets consumed. */
static size_t
feedn(const char *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    size_t used;

    assert_non_null(copy);
    memcpy(copy, p, n);
    used = smtp_server_feed(srv, copy, n);
    free(copy);
    assert_true(used <= n);
    return used;
}

static size_t
feed(const char *s)
{
    return feedn(s, strlen(s));
}

/* Feeds in, which must be consumed in full, and checks the replies. */
static void
expect(const char *in, const char *want)
{
    assert_int_equal(feed(in), strlen(in));
    assert_string_equal(take(), want);
}

static void
ehlo(void)
{
    expect("EHLO client.example\r\n", EHLO_REPLY);
}

static void
begin_tx(void)
{
    ehlo();
    expect(MAIL RCPT, R_MAIL_OK R_RCPT_OK);
}

static void
expect_message(const char *want)
{
    const struct buf *m = smtp_server_message(srv);
    size_t n = strlen(want);

    assert_int_equal(smtp_server_state(srv), SMTP_STATE_COMMIT);
    if (m->len != n || memcmp(m->data ? m->data : "", want, n) != 0)
        fail_msg("message \"%.*s\", want \"%s\"", (int)m->len, m->data ? m->data : "", want);
}

static void
commit_ok(const char *id)
{
    char want[128];

    smtp_server_commit_done(srv, NULL, id);
    snprintf(want, sizeof(want), "250 2.0.0 Ok: queued as %s\r\n", id);
    assert_string_equal(take(), want);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
}

/*
 * Runs a whole session script the way the session layer does: feeds pieces
 * of at most step octets, keeps what was not consumed, commits every
 * message ("Q1", "Q2", ...) and stops at CLOSED. Appends every reply to
 * replies, and every message followed by "|" to messages.
 */
static void
drive(const char *in, size_t n, size_t step, struct buf *replies, struct buf *messages)
{
    struct buf pend, *o;
    size_t pos = 0, used;
    unsigned ncommit = 0;
    char id[16];

    buf_init(&pend, 1 << 20);
    for (;;) {
        used = smtp_server_feed(srv, pend.data ? pend.data : "", pend.len);
        buf_consume(&pend, used);
        o = smtp_server_output(srv);
        assert_int_equal(buf_append(replies, o->data ? o->data : "", o->len), 0);
        buf_reset(o);
        if (smtp_server_state(srv) == SMTP_STATE_COMMIT) {
            const struct buf *m = smtp_server_message(srv);

            assert_int_equal(buf_append(messages, m->data ? m->data : "", m->len), 0);
            assert_int_equal(buf_append(messages, "|", 1), 0);
            snprintf(id, sizeof(id), "Q%u", ++ncommit);
            smtp_server_commit_done(srv, NULL, id);
            continue;
        }
        if (smtp_server_state(srv) == SMTP_STATE_CLOSED)
            break;
        /* not parked: whatever is left is an incomplete command line */
        assert_null(memchr(pend.data ? pend.data : "", '\n', pend.len));
        assert_true(pend.len <= 512 + 600);
        if (pos == n)
            break;
        used = n - pos < step ? n - pos : step;
        assert_int_equal(buf_append(&pend, in + pos, used), 0);
        pos += used;
    }
    buf_free(&pend);
}

/* ---- greeting, EHLO, HELO ---- */

static void
test_greeting(void **state)
{
    (void)state;
    start();
    assert_false(smtp_server_esmtp(srv));
}

static void
test_ehlo_keywords(void **state)
{
    (void)state;
    start();
    ehlo();
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    assert_true(smtp_server_esmtp(srv));
    assert_string_equal(smtp_server_helo(srv), "client.example");
}

static void
test_helo(void **state)
{
    (void)state;
    start();
    expect("HELO client.example\r\n", "250 " HOST " Hello client.example [192.0.2.1]\r\n");
    assert_false(smtp_server_esmtp(srv));
    assert_string_equal(smtp_server_helo(srv), "client.example");
    expect("HELO\r\n", "501 5.5.4 syntax: HELO hostname\r\n");
    expect("EHLO two words\r\n", "501 5.5.4 syntax: EHLO hostname\r\n");
    assert_string_equal(smtp_server_helo(srv), "client.example");
}

static void
test_helo_resets_transaction(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("EHLO again.example\r\n",
           "250-" HOST " Hello again.example [192.0.2.1]\r\n250-PIPELINING\r\n250-SIZE "
           "1000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250-"
           "CHUNKING\r\n250 DSN\r\n");
    assert_int_equal(fk.reset, 1);
    expect(MAIL, R_MAIL_OK); /* not "nested" */
}

/* ---- command order ---- */

static void
test_mail_before_helo(void **state)
{
    (void)state;
    start();
    expect(MAIL, "503 5.5.1 send HELO or EHLO first\r\n");
    expect(RCPT, "503 5.5.1 need MAIL before RCPT\r\n");
    expect("DATA\r\n", "503 5.5.1 need MAIL command\r\n");
    assert_int_equal(fk.mail, 0);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_INIT);
}

static void
test_nested_mail(void **state)
{
    (void)state;
    start();
    ehlo();
    expect(MAIL, R_MAIL_OK);
    expect(MAIL, "503 5.5.1 nested MAIL command\r\n");
    assert_int_equal(fk.mail, 1);
    assert_string_equal(fk.from, "sender@example.net");
}

static void
test_rcpt_before_mail(void **state)
{
    (void)state;
    start();
    ehlo();
    expect(RCPT, "503 5.5.1 need MAIL before RCPT\r\n");
    assert_int_equal(fk.rcpt, 0);
}

static void
test_mail_refused_by_hook(void **state)
{
    (void)state;
    start();
    ehlo();
    expect("MAIL FROM:<blocked@example.net>\r\n", "550 5.7.1 sender blocked\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    expect(RCPT, "503 5.5.1 need MAIL before RCPT\r\n");
    expect(MAIL, R_MAIL_OK);
}

static void
test_data_without_rcpt(void **state)
{
    (void)state;
    start();
    ehlo();
    expect("DATA\r\n", "503 5.5.1 need MAIL command\r\n");
    expect(MAIL, R_MAIL_OK);
    expect("DATA\r\n", "503 5.5.1 need RCPT command\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_MAIL);
}

static void
test_data_only_refused_rcpts(void **state)
{
    (void)state;
    start();
    ehlo();
    expect(MAIL "RCPT TO:<nobody@example.org>\r\nRCPT TO:<far@away>\r\nDATA\r\n",
           R_MAIL_OK "550 5.1.1 <nobody@example.org>: user unknown\r\n"
                     "550 5.7.1 <far@away>: relaying denied\r\n"
                     "554 5.5.1 no valid recipients\r\n");
    assert_int_equal(fk.rcpt, 2);
    assert_int_equal(fk.rcpt_ok, 0);
    /* the message text that follows is read as commands, as the RFC says */
    expect("Subject: x\r\n", R_UNKNOWN);
    expect(RCPT "DATA\r\n", R_RCPT_OK R_354);
}

static void
test_data_arguments(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("DATA now\r\n", "501 5.5.4 syntax: DATA\r\n");
    expect("DATA\r\n", R_354);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_DATA);
}

/* ---- DATA and the commit ---- */

static void
test_data_commit_success(void **state)
{
    const char *body = "Subject: hi\r\n\r\nhello\r\n.\r\n";

    (void)state;
    start();
    begin_tx();
    expect("DATA\r\n", R_354);
    assert_int_equal(feed(body), strlen(body));
    assert_string_equal(take(), "");
    expect_message("Subject: hi\r\n\r\nhello\r\n");
    assert_int_equal(smtp_server_received_count(srv), 0);
    assert_int_equal(feed("NOOP\r\n"), 0); /* parked until the commit ends */
    assert_string_equal(take(), "");
    commit_ok("0123456789ABCDEF");
    assert_int_equal(fk.reset, 1);

    /* a second transaction starts from an empty message */
    expect(MAIL RCPT "DATA\r\n", R_MAIL_OK R_RCPT_OK R_354);
    assert_int_equal(feed("two\r\n.\r\n"), 8);
    expect_message("two\r\n");
    commit_ok("X2");
}

static void
test_data_commit_failure(void **state)
{
    struct smtp_reply r;

    (void)state;
    start();
    begin_tx();
    expect("DATA\r\nbody\r\n.\r\n", R_354);
    expect_message("body\r\n");
    smtp_reply_set(&r, 451, "4.3.0", "queue write failed");
    smtp_server_commit_done(srv, &r, NULL);
    assert_string_equal(take(), "451 4.3.0 queue write failed\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    assert_int_equal(fk.reset, 1);
    expect(MAIL, R_MAIL_OK); /* the transaction is gone */

    /* commit_done outside COMMIT is ignored */
    smtp_server_commit_done(srv, NULL, "ZZZ");
    assert_string_equal(take(), "");
}

static void
test_dot_unstuffing(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("DATA\r\n..leading\r\n...\r\n.x\r\nmid.dle\r\n.\r\n", R_354);
    expect_message(".leading\r\n..\r\nx\r\nmid.dle\r\n");
}

static void
test_empty_message(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("DATA\r\n.\r\n", R_354);
    expect_message("");
    commit_ok("E");
}

static void
test_message_params_and_mode(void **state)
{
    (void)state;
    start();
    ehlo();
    expect("MAIL FROM:<> SIZE=10 BODY=8BITMIME RET=HDRS ENVID=abc\r\n", R_MAIL_OK);
    assert_string_equal(fk.from, "");
    assert_true(smtp_server_mail_params(srv)->has_size);
    assert_int_equal(smtp_server_mail_params(srv)->size, 10);
    assert_int_equal(smtp_server_mail_params(srv)->body, SMTP_BODY_8BITMIME);
    assert_string_equal(smtp_server_mail_params(srv)->envid, "abc");
    assert_int_equal(smtp_server_mode(srv), SMTP_MODE_MAIL);
    expect("RCPT TO:<alice@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;alice@example.org\r\n",
           R_RCPT_OK);
    assert_int_equal(fk.rcpt_params.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE);
    assert_string_equal(fk.rcpt_params.orcpt, "rfc822;alice@example.org");
    expect("RSET\r\n", R_OK);
    assert_false(smtp_server_mail_params(srv)->has_size);
}

/* ---- pipelining and feeding in pieces ---- */

static void
test_pipelining(void **state)
{
    const char *in = "EHLO client.example\r\n" MAIL RCPT "RCPT TO:<nobody@example.org>\r\n"
                     "DATA\r\nSubject: p\r\n\r\nbody\r\n.\r\n"
                     "MAIL FROM:<second@example.net>\r\n" RCPT "DATA\r\nagain\r\n.\r\nQUIT\r\n";
    const char *first_end = strstr(in, "\r\n.\r\n") + 5;
    size_t used;

    (void)state;
    start();
    used = feed(in);
    /* feed stops right after the terminator, COMMIT parks the rest */
    assert_int_equal(used, (size_t)(first_end - in));
    assert_string_equal(take(), EHLO_REPLY R_MAIL_OK R_RCPT_OK
                        "550 5.1.1 <nobody@example.org>: user unknown\r\n" R_354);
    expect_message("Subject: p\r\n\r\nbody\r\n");
    commit_ok("P1");

    /* the caller feeds the rest again */
    in += used;
    used = feed(in);
    assert_int_equal(used, (size_t)(strstr(in, "\r\n.\r\n") + 5 - in));
    assert_string_equal(take(), R_MAIL_OK R_RCPT_OK R_354);
    assert_string_equal(fk.from, "second@example.net");
    expect_message("again\r\n");
    commit_ok("P2");
    expect(in + used, "221 2.0.0 " HOST " closing connection\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
}

static const char *const scripts[] = {
    "EHLO client.example\r\n" MAIL RCPT "RCPT TO:<far@away>\r\nDATA\r\nSubject: a\r\n\r\n"
    "..dot\r\nline\r\n.\r\n" MAIL RCPT "DATA\r\n.\r\nNOOP\r\nQUIT\r\nNOOP\r\n",
    "EHLO client.example\r\n" MAIL RCPT "BDAT 9\r\n0123\r\n.\r\nBDAT 4 LAST\r\nend\n"
    "BDAT 0 LAST\r\nRSET\r\n" MAIL RCPT "BDAT 3 LAST\r\nxyzHELP MAIL\r\nQUIT\r\n",
    "FOO\r\nHELO h\r\nMAIL FROM:<a@b.example> SIZE=5\r\nNOOP\nVRFY x\r\nEXPN y\r\nHELP\r\n",
    "EHLO e\r\nNOOP "
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    "\r\n" MAIL RCPT "DATA\r\na\n.\r\nMAIL FROM:<evil@x.example>\r\n.\r\nBDAT x\r\nNOOP\r\n",
};

static void
test_any_piece_size_same_result(void **state)
{
    static const size_t steps[] = {1, 2, 3, 5, 7, 64, 1 << 20};
    struct buf r0, m0, r1, m1;

    (void)state;
    for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
            buf_init(&r1, 1 << 20);
            buf_init(&m1, 1 << 20);
            srv = smtp_server_new(&set, &fake_hooks, &fk);
            drive(scripts[i], strlen(scripts[i]), steps[s], &r1, &m1);
            smtp_server_free(srv);
            srv = NULL;
            if (s == 0) {
                r0 = r1;
                m0 = m1;
                continue;
            }
            if (r0.len != r1.len || memcmp(r0.data, r1.data, r0.len) != 0)
                fail_msg("script %zu, step %zu: replies\n%.*s\nvs\n%.*s", i, steps[s], (int)r0.len,
                         r0.data, (int)r1.len, r1.data);
            if (m0.len != m1.len || (m0.len && memcmp(m0.data, m1.data, m0.len) != 0))
                fail_msg("script %zu, step %zu: messages differ", i, steps[s]);
            buf_free(&r1);
            buf_free(&m1);
        }
        buf_free(&r0);
        buf_free(&m0);
    }
}

/* The exact replies of the BDAT script above, fed one octet at a time. */
static void
test_bytewise_bdat_script(void **state)
{
    struct buf r, m;

    (void)state;
    buf_init(&r, 1 << 20);
    buf_init(&m, 1 << 20);
    srv = smtp_server_new(&set, &fake_hooks, &fk);
    drive(scripts[1], strlen(scripts[1]), 1, &r, &m);
    assert_int_equal(buf_append(&r, "", 1), 0);
    assert_int_equal(buf_append(&m, "", 1), 0);
    assert_string_equal(r.data, GREETING EHLO_REPLY R_MAIL_OK R_RCPT_OK
                        "250 2.0.0 9 octets received\r\n"
                        "250 2.0.0 Ok: queued as Q1\r\n"
                        "503 5.5.1 need MAIL command\r\n" R_OK R_MAIL_OK R_RCPT_OK
                        "250 2.0.0 Ok: queued as Q2\r\n"
                        "214-2.0.0 MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]\r\n"
                        "214 2.0.0           [RET=FULL|HDRS] [ENVID=id]: start a message\r\n"
                        "221 2.0.0 " HOST " closing connection\r\n");
    assert_string_equal(m.data, "0123\r\n.\r\nend\r\n|xyz\r\n|");
    buf_free(&r);
    buf_free(&m);
}

/* ---- line length ---- */

static void
line_of(char *buf, const char *head, size_t total)
{
    size_t n = strlen(head);

    memcpy(buf, head, n);
    memset(buf + n, ' ', total - n - 2);
    memcpy(buf + total - 2, "\r\n", 3);
}

static void
test_line_too_long(void **state)
{
    char line[2048];

    (void)state;
    start();
    ehlo();
    line_of(line, "NOOP x", 512); /* RFC 5321 4.5.3.1.4: 512 with CRLF */
    expect(line, R_OK);
    line_of(line, "NOOP x", 513);
    expect(line, R_TOO_LONG);
    /* MAIL and RCPT may carry RFC 3461 parameters: 512 + 600 */
    line_of(line, "MAIL FROM:<a@example.net>", 1112);
    expect(line, R_MAIL_OK);
    expect("RSET\r\n", R_OK);
    line_of(line, "MAIL FROM:<a@example.net>", 1113);
    expect(line, R_TOO_LONG);
    line_of(line, "MAIL FROM:<a@example.net>", 2000);
    expect(line, R_TOO_LONG);
    assert_int_equal(fk.mail, 1);
    expect(MAIL, R_MAIL_OK);

    snprintf(line, sizeof(line), "RCPT TO:<alice@example.org> ORCPT=rfc822;%0480d@example.org\r\n",
             0);
    assert_true(strlen(line) > 512);
    expect(line, R_RCPT_OK);
}

static void
test_endless_line(void **state)
{
    char chunk[1000];
    struct buf pend;
    size_t used;

    (void)state;
    start();
    ehlo();
    memset(chunk, 'x', sizeof(chunk));
    buf_init(&pend, 1 << 20);
    for (int i = 0; i < 1000; i++) { /* a megabyte without LF */
        assert_int_equal(buf_append(&pend, chunk, sizeof(chunk)), 0);
        used = smtp_server_feed(srv, pend.data, pend.len);
        buf_consume(&pend, used);
        /* the server consumes it rather than make the caller buffer it */
        assert_true(pend.len <= 512 + 600);
        assert_string_equal(take(), "");
    }
    assert_int_equal(buf_append(&pend, "\r\nNOOP\r\n", 8), 0);
    used = smtp_server_feed(srv, pend.data, pend.len);
    assert_int_equal(used, pend.len);
    assert_string_equal(take(), R_TOO_LONG R_OK);
    buf_free(&pend);
}

/* A line past the longest legal one is discarded as it arrives in pieces;
 * whole, it must get the same replies (a BDAT line ends the session: its
 * chunk cannot be found), or how the bytes arrive would change them. */
static void
test_overlong_line_alike_whole_and_in_pieces(void **state)
{
    static const char *const heads[] = {"BDATX 5", "NOOP", "MAIL FROM:<a@example.net>"};
    static const char *const want[] = {
        R_TOO_LONG "421 4.5.4 " HOST " cannot find the end of a malformed BDAT chunk\r\n",
        R_TOO_LONG R_OK,
        R_TOO_LONG R_OK,
    };
    static const size_t steps[] = {1, 7, 100, 1113, 4096};
    char in[2200];

    (void)state;
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        line_of(in, heads[h], 2000);
        strcat(in, "NOOP\r\n");
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
            struct buf replies, messages;

            start();
            ehlo();
            buf_init(&replies, 1 << 16);
            buf_init(&messages, 1 << 16);
            drive(in, strlen(in), steps[i], &replies, &messages);
            assert_int_equal(buf_append(&replies, "", 1), 0);
            assert_string_equal(replies.data, want[h]);
            buf_free(&replies);
            buf_free(&messages);
            smtp_server_free(srv);
            srv = NULL;
        }
    }
}

static void
test_bare_lf_command(void **state)
{
    (void)state;
    start();
    expect("EHLO client.example\n", EHLO_REPLY);
    expect("NOOP\n", R_OK);
    assert_int_equal(feed("NOOP"), 0); /* an incomplete line waits */
    assert_int_equal(feed("NOOP\r"), 0);
}

/* ---- errors and limits ---- */

static void
test_unknown_command(void **state)
{
    (void)state;
    start();
    expect("FOO\r\n", R_UNKNOWN);
    expect("\r\n", R_UNKNOWN);
    expect("MAIL:FROM:<a@b>\r\n", R_UNKNOWN);
    expect("NOOP arg\r\n", R_OK);
}

static void
test_error_limit(void **state)
{
    const char *in = "FOO\r\nBAR\r\nNOOP\r\nBAZ\r\nNOOP\r\n";

    (void)state;
    set.max_errors = 3;
    start();
    assert_int_equal(feed(in), strlen(in) - 6); /* nothing after the 421 */
    assert_string_equal(take(), R_UNKNOWN R_UNKNOWN R_OK R_UNKNOWN
                        "421 4.7.0 " HOST " too many errors, closing connection\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
    assert_int_equal(feed("NOOP\r\n"), 0);
    assert_string_equal(take(), "");
}

static void
test_size_param_over_limit(void **state)
{
    (void)state;
    start();
    ehlo();
    expect("MAIL FROM:<a@example.net> SIZE=1001\r\n", R_TOO_BIG);
    assert_int_equal(fk.mail, 0);
    expect("MAIL FROM:<a@example.net> SIZE=1000\r\n", R_MAIL_OK);
}

static void
test_body_over_limit(void **state)
{
    char body[1200];

    (void)state;
    start();
    begin_tx();
    expect("DATA\r\n", R_354);
    memset(body, 'b', sizeof(body));
    for (size_t i = 80; i < sizeof(body); i += 80)
        memcpy(body + i - 2, "\r\n", 2);
    assert_int_equal(feedn(body, sizeof(body)), sizeof(body));
    assert_string_equal(take(), ""); /* the reply waits for the dot */
    expect("\r\n.\r\n", R_TOO_BIG);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    assert_int_equal(fk.reset, 1);
    expect("NOOP\r\n", R_OK);
}

static void
test_bdat_over_limit(void **state)
{
    char chunk[1100];
    char cmd[32];

    (void)state;
    start();
    begin_tx();
    memset(chunk, 'c', sizeof(chunk));
    snprintf(cmd, sizeof(cmd), "BDAT %zu\r\n", sizeof(chunk));
    assert_int_equal(feed(cmd), strlen(cmd));
    assert_int_equal(feedn(chunk, sizeof(chunk)), sizeof(chunk));
    assert_string_equal(take(), R_TOO_BIG);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    expect("BDAT 1 LAST\r\nx", "503 5.5.1 need MAIL command\r\n");
}

static void
test_max_recipients(void **state)
{
    (void)state;
    start();
    ehlo();
    expect(MAIL "RCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\n"
                "RCPT TO:<nobody@example.org>\r\nRCPT TO:<c@example.org>\r\n"
                "RCPT TO:<d@example.org>\r\n",
           R_MAIL_OK R_RCPT_OK R_RCPT_OK
           "550 5.1.1 <nobody@example.org>: user unknown\r\n" R_RCPT_OK
           "452 4.5.3 too many recipients\r\n");
    assert_int_equal(fk.rcpt_ok, 3);
    assert_int_equal(fk.rcpt, 4); /* the hook is not asked past the limit */
    expect("DATA\r\nx\r\n.\r\n", R_354);
    commit_ok("R");
}

static void
test_max_received(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("DATA\r\nReceived: 1\r\nReceived: 2\r\nReceived: 3\r\n\r\nReceived: body\r\n.\r\n",
           R_354);
    assert_int_equal(smtp_server_received_count(srv), 3);
    commit_ok("OK3");
    expect(MAIL RCPT "DATA\r\nReceived: 1\r\nReceived: 2\r\nreceived: 3\r\nReceived: 4\r\n"
                     "\r\nbody\r\n.\r\n",
           R_MAIL_OK R_RCPT_OK R_354
           "554 5.4.6 too many Received headers: mail forwarding loop\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
}

static void
test_data_line_length(void **state)
{
    char line[256];

    (void)state;
    start();
    begin_tx();
    memset(line, 'l', 101);
    memcpy(line + 101, "\r\n.\r\n", 6);
    expect("DATA\r\n", R_354);
    expect(line, "554 5.6.0 message has a line longer than 100 octets\r\n");
    line[100] = '\r';
    line[101] = '\n';
    memcpy(line + 102, ".\r\n", 4);
    expect(MAIL RCPT "DATA\r\n", R_MAIL_OK R_RCPT_OK R_354);
    expect(line, "");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_COMMIT);
}

static void
test_params_after_helo(void **state)
{
    (void)state;
    start();
    expect("HELO client.example\r\n", "250 " HOST " Hello client.example [192.0.2.1]\r\n");
    expect("MAIL FROM:<a@example.net> SIZE=100\r\n",
           "555 5.5.4 SIZE parameter not implemented\r\n");
    expect("MAIL FROM:<a@example.net> BODY=8BITMIME\r\n",
           "555 5.5.4 BODY parameter not implemented\r\n");
    expect("MAIL FROM:<a@example.net> SMTPUTF8\r\n",
           "555 5.5.4 SMTPUTF8 parameter not implemented\r\n");
    expect("MAIL FROM:<a@example.net> FOO=1\r\n", "555 5.5.4 FOO parameter not recognized\r\n");
    expect(MAIL, R_MAIL_OK);
    expect("RCPT TO:<alice@example.org> NOTIFY=NEVER\r\n",
           "555 5.5.4 NOTIFY parameter not implemented\r\n");
    assert_int_equal(fk.mail, 1);
    assert_int_equal(fk.rcpt, 0);
}

static void
test_smtputf8(void **state)
{
    (void)state;
    start();
    ehlo();
    expect("MAIL FROM:<j\xc3\xb6rg@example.net>\r\n",
           "553 5.6.7 non-ASCII address needs the SMTPUTF8 parameter\r\n");
    assert_int_equal(fk.mail, 0);
    expect(MAIL "RCPT TO:<j\xc3\xb6rg@example.org>\r\n",
           R_MAIL_OK "553 5.6.7 non-ASCII address needs the SMTPUTF8 parameter\r\n");
    assert_int_equal(fk.rcpt, 0);
    expect("RSET\r\nMAIL FROM:<j\xc3\xb6rg@example.net> SMTPUTF8\r\n"
           "RCPT TO:<m\xc3\xbcller@example.org>\r\n",
           R_OK R_MAIL_OK R_RCPT_OK);
    assert_string_equal(fk.from, "j\xc3\xb6rg@example.net");
    assert_string_equal(fk.to, "m\xc3\xbcller@example.org");
    assert_true(smtp_server_mail_params(srv)->smtputf8);
}

/* ---- BDAT (RFC 3030) ---- */

static void
test_bdat_chunks(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("BDAT 6\r\nhello ", "250 2.0.0 6 octets received\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_RCPT);
    expect("BDAT 3\r\nwor", "250 2.0.0 3 octets received\r\n");
    assert_int_equal(feed("BDAT 4 LAST\r\nld\r\nNOOP\r\n"), 17);
    assert_string_equal(take(), "");
    expect_message("hello world\r\n");
    commit_ok("B1");
    expect("NOOP\r\n", R_OK);
}

static void
test_bdat_zero_last(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("BDAT 5\r\nab\r\nc", "250 2.0.0 5 octets received\r\n");
    expect("BDAT 0 LAST\r\n", "");
    expect_message("ab\r\nc\r\n"); /* the last line gets its CRLF */
    commit_ok("B2");

    expect(MAIL RCPT "BDAT 0 LAST\r\n", R_MAIL_OK R_RCPT_OK);
    expect_message("");
    commit_ok("B3");
    expect(MAIL RCPT "BDAT 3  last\r\nabc", R_MAIL_OK R_RCPT_OK);
    expect_message("abc\r\n");
}

static void
test_bdat_without_rcpt(void **state)
{
    (void)state;
    start();
    expect("BDAT 6\r\nNOOP\r\n", "503 5.5.1 BDAT needs EHLO\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_INIT);
    ehlo();
    expect("BDAT 6\r\nNOOP\r\n", "503 5.5.1 need MAIL command\r\n");
    expect(MAIL "BDAT 6\r\nNOOP\r\n", R_MAIL_OK "503 5.5.1 need RCPT command\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_MAIL);
    expect("RCPT TO:<nobody@example.org>\r\nBDAT 6 LAST\r\nNOOP\r\n",
           "550 5.1.1 <nobody@example.org>: user unknown\r\n554 5.5.1 no valid recipients\r\n");
    expect(RCPT "BDAT 2 LAST\r\nok", R_RCPT_OK);
    expect_message("ok\r\n");
}

static void
test_data_after_bdat(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("BDAT 3\r\nabc", "250 2.0.0 3 octets received\r\n");
    expect("DATA\r\n", "503 5.5.1 DATA cannot follow BDAT in one transaction\r\n");
    expect("BDAT 3 LAST\r\ndef", "");
    expect_message("abcdef\r\n");
}

static void
test_bdat_keeps_dot_lines(void **state)
{
    const char *chunk = "A\r\n.\r\nMAIL FROM:<evil@x.example>\r\n.\r\n";
    char cmd[64];

    (void)state;
    start();
    begin_tx();
    snprintf(cmd, sizeof(cmd), "BDAT %zu LAST\r\n", strlen(chunk));
    expect(cmd, "");
    assert_int_equal(feed(chunk), strlen(chunk));
    assert_string_equal(take(), "");
    expect_message(chunk);
    assert_int_equal(fk.mail, 1);
}

static void
test_bdat_malformed(void **state)
{
    static const char *const bad[] = {
        "BDAT x\r\n",
        "BDAT\r\n",
        "BDAT -1\r\n",
        "BDAT 5 MORE\r\n",
        "BDAT 5 LAST x\r\n",
        "BDAT  5\r\n",
        "BDAT 99999999999999999999\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        start();
        begin_tx();
        assert_int_equal(feed(bad[i]), strlen(bad[i]));
        assert_string_equal(take(),
                            "501 5.5.4 syntax: BDAT size [LAST]\r\n"
                            "421 4.5.4 " HOST " cannot find the end of a malformed BDAT chunk\r\n");
        assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
        assert_int_equal(feed("NOOP\r\n"), 0);
        smtp_server_free(srv);
        srv = NULL;
    }
}

/* ---- the other commands ---- */

static void
test_rset_noop_quit(void **state)
{
    (void)state;
    start();
    expect("RSET\r\n", R_OK);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_INIT); /* RSET is not HELO */
    begin_tx();
    expect("NOOP\r\n", R_OK);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_RCPT);
    expect("RSET x\r\n", "501 5.5.4 syntax: RSET\r\n");
    expect("rset\r\n", R_OK);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    assert_int_equal(fk.reset, 1);
    expect("RSET\r\n", R_OK);
    assert_int_equal(fk.reset, 1); /* no transaction, no reset hook */
    assert_int_equal(feed("QUIT\r\nNOOP\r\n"), 6);
    assert_string_equal(take(), "221 2.0.0 " HOST " closing connection\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
}

static void
test_help(void **state)
{
    (void)state;
    start();
    expect("HELP\r\n", HELP_REPLY);
    expect("HELP MAIL\r\n",
           "214-2.0.0 MAIL FROM:<address> [SIZE=n] [BODY=7BIT|8BITMIME] [SMTPUTF8]\r\n"
           "214 2.0.0           [RET=FULL|HDRS] [ENVID=id]: start a message\r\n");
    expect("help quit\r\n", "214 2.0.0 QUIT: close the connection\r\n");
    expect("HELP bogus\r\n", "504 5.5.1 no help on that topic; HELP lists the commands\r\n");
}

static void
test_vrfy_off(void **state)
{
    (void)state;
    start();
    expect("VRFY alice\r\n",
           "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n");
    expect("VRFY\r\n", "501 5.5.4 syntax: VRFY user\r\n");
    assert_int_equal(fk.vrfy, 0);
}

static void
test_vrfy_on(void **state)
{
    (void)state;
    set.vrfy = true;
    start();
    expect("VRFY alice\r\n", "250 2.1.5 <alice@example.org>\r\n");
    expect("VRFY  nobody \r\n", "550 5.1.1 <nobody>: user unknown\r\n");
    /* a reply's text is copied, never used as a format */
    expect("VRFY %s%d%n%%\r\n", "550 5.1.1 <%s%d%n%%>: user unknown\r\n");
    assert_int_equal(fk.vrfy, 3);
}

static void
test_expn_off(void **state)
{
    (void)state;
    start();
    expect("EXPN staff\r\n", "502 5.5.1 EXPN is not available on this server\r\n");
    assert_int_equal(fk.expn, 0);
}

static void
test_expn_on(void **state)
{
    (void)state;
    set.expn = true;
    start();
    expect("EXPN staff\r\n", "250-2.1.5 <alice@example.org>\r\n250 2.1.5 <bob@example.org>\r\n");
    expect("EXPN solo\r\n", "250 2.1.5 <carol@example.org>\r\n");
    expect("EXPN other\r\n", "550 5.1.1 <other>: not a mailing list\r\n");
    expect("EXPN\r\n", "501 5.5.4 syntax: EXPN list\r\n");
    assert_int_equal(fk.expn, 3);
}

/* A list that expands to nothing still gets a reply, or the client waits. */
static void
test_expn_empty_list(void **state)
{
    (void)state;
    set.expn = true;
    start();
    expect("EXPN empty\r\n", "550 5.1.1 mailing list has no members\r\n");
}

static void
test_send_soml_saml(void **state)
{
    (void)state;
    start();
    ehlo();
    expect("SEND FROM:<a@example.net>\r\n",
           "502 5.5.1 SEND is disabled: terminal delivery is off on this server\r\n");
    assert_int_equal(fk.mail, 0);
    expect("SOML FROM:<a@example.net>\r\n", R_MAIL_OK);
    assert_int_equal(smtp_server_mode(srv), SMTP_MODE_SOML);
    assert_int_equal(fk.mode, SMTP_MODE_SOML);
    expect("RSET\r\n", R_OK);
    assert_int_equal(smtp_server_mode(srv), SMTP_MODE_MAIL);
    expect("SAML FROM:<a@example.net>\r\n", R_MAIL_OK);
    assert_int_equal(smtp_server_mode(srv), SMTP_MODE_SAML);
}

static void
test_send_on(void **state)
{
    (void)state;
    set.terminal_delivery = true;
    start();
    ehlo();
    expect("SEND FROM:<a@example.net>\r\n" RCPT "DATA\r\nhi\r\n.\r\n", R_MAIL_OK R_RCPT_OK R_354);
    assert_int_equal(smtp_server_mode(srv), SMTP_MODE_SEND);
    assert_int_equal(fk.mode, SMTP_MODE_SEND);
    commit_ok("S");
    assert_int_equal(smtp_server_mode(srv), SMTP_MODE_MAIL);
}

static void
test_not_offered(void **state)
{
    (void)state;
    start();
    expect("TURN\r\n",
           "502 5.7.0 TURN is not supported: it would hand mail to an unauthenticated peer\r\n");
    expect("ETRN example.org\r\n", "502 5.5.1 ETRN is not implemented\r\n");
    expect("AUTH PLAIN AGFAYg==\r\n", "502 5.5.1 AUTH is not implemented\r\n");
    expect("STARTTLS\r\n", "502 5.5.1 STARTTLS is not implemented\r\n");
    expect("ATRN\r\n", "502 5.5.1 ATRN is not implemented\r\n");
}

static void
test_server_close(void **state)
{
    (void)state;
    start();
    begin_tx();
    smtp_server_close(srv, "4.4.2", "timeout, closing connection");
    assert_string_equal(take(), "421 4.4.2 " HOST " timeout, closing connection\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
    smtp_server_close(srv, "4.3.2", "shutting down"); /* once only */
    assert_string_equal(take(), "");
    assert_int_equal(feed("NOOP\r\n"), 0);
    assert_string_equal(take(), "");
}

static void
test_close_while_committing(void **state)
{
    (void)state;
    start();
    begin_tx();
    expect("DATA\r\nx\r\n.\r\n", R_354);
    smtp_server_close(srv, "4.3.2", "shutting down");
    assert_string_equal(take(), "421 4.3.2 " HOST " shutting down\r\n");
    smtp_server_commit_done(srv, NULL, "LATE"); /* no reply after the 421 */
    assert_string_equal(take(), "");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
}

/* Replies are complete lines even when a client that never reads makes
 * the output reach its cap. */
static void
test_output_cap_keeps_lines_whole(void **state)
{
    struct buf in;
    struct buf *o;
    size_t used, lines = 0;

    (void)state;
    start();
    buf_init(&in, 1 << 20);
    for (int i = 0; i < 20000; i++)
        assert_int_equal(buf_append(&in, "HELP\r\n", 6), 0);
    used = smtp_server_feed(srv, in.data, in.len);
    assert_true(used < in.len);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
    o = smtp_server_output(srv);
    assert_true(o->len > 0);
    for (size_t i = 0; i < o->len; i++) {
        if (o->data[i] == '\n') {
            assert_true(i > 0 && o->data[i - 1] == '\r');
            lines++;
        }
    }
    assert_true(lines > 0);
    assert_memory_equal(o->data + o->len - 2, "\r\n", 2);
    /* and nothing after the first line that did not fit */
    for (size_t i = 0; i < o->len; i += strlen(HELP_REPLY)) {
        size_t n = o->len - i < strlen(HELP_REPLY) ? o->len - i : strlen(HELP_REPLY);

        assert_memory_equal(o->data + i, HELP_REPLY, n);
    }
    buf_free(&in);
}

/* ---- smuggling (CVE-2023-51764 and kin) ---- */

static const char *const fake_ends[] = {"\n.\r\n", "\r.\r\n", "\n.\n", "\r\n.\r", "\r\n.\n"};

#define SMUGGLED "MAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@example.org>\r\nDATA\r\nevil\r\n"

static size_t
smuggle(const char *fake_end, char *in, size_t n)
{
    snprintf(in, n, "Subject: s\r\n\r\nhello%s" SMUGGLED ".\r\nNOOP\r\n", fake_end);
    return strlen(in) - 6;
}

static void
test_smuggling_normalize(void **state)
{
    char in[256];

    (void)state;
    for (size_t i = 0; i < sizeof(fake_ends) / sizeof(fake_ends[0]); i++) {
        size_t end;
        const struct buf *m;

        memset(&fk, 0, sizeof(fk));
        start();
        begin_tx();
        expect("DATA\r\n", R_354);
        end = smuggle(fake_ends[i], in, sizeof(in));
        assert_int_equal(feed(in), end); /* only the real terminator ends it */
        assert_string_equal(take(), "");
        assert_int_equal(smtp_server_state(srv), SMTP_STATE_COMMIT);
        m = smtp_server_message(srv);
        /* no bare CR or LF left: every newline is a CRLF */
        for (size_t k = 0; k < m->len; k++) {
            if (m->data[k] == '\n')
                assert_true(k > 0 && m->data[k - 1] == '\r');
            if (m->data[k] == '\r')
                assert_true(k + 1 < m->len && m->data[k + 1] == '\n');
        }
        assert_non_null(strstr(m->data, "\r\nMAIL FROM:<evil@x.example>\r\n"));
        assert_non_null(strstr(m->data, "hello\r\n"));
        commit_ok("N");
        expect(in + end, R_OK);
        assert_int_equal(fk.mail, 1); /* the smuggled commands never ran */
        assert_int_equal(fk.rcpt, 1);
        smtp_server_free(srv);
        srv = NULL;
    }
}

static void
test_smuggling_reject(void **state)
{
    char in[256];

    (void)state;
    for (size_t i = 0; i < sizeof(fake_ends) / sizeof(fake_ends[0]); i++) {
        memset(&fk, 0, sizeof(fk));
        set.reject_bare_newline = true;
        start();
        begin_tx();
        expect("DATA\r\n", R_354);
        smuggle(fake_ends[i], in, sizeof(in));
        assert_int_equal(feed(in), strlen(in));
        assert_string_equal(take(), R_BARE R_OK);
        assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
        assert_int_equal(fk.mail, 1);
        assert_int_equal(fk.rcpt, 1);
        assert_int_equal(fk.reset, 1);
        smtp_server_free(srv);
        srv = NULL;
    }
}

static void
test_reject_mode_clean_message(void **state)
{
    (void)state;
    set.reject_bare_newline = true;
    start();
    begin_tx();
    expect("DATA\r\nclean\r\n.\r\n", R_354);
    expect_message("clean\r\n");
    commit_ok("C");
    expect(MAIL RCPT "BDAT 4 LAST\r\na\nb\r", R_MAIL_OK R_RCPT_OK R_BARE);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_greeting),
        T(test_ehlo_keywords),
        T(test_helo),
        T(test_helo_resets_transaction),
        T(test_mail_before_helo),
        T(test_nested_mail),
        T(test_rcpt_before_mail),
        T(test_mail_refused_by_hook),
        T(test_data_without_rcpt),
        T(test_data_only_refused_rcpts),
        T(test_data_arguments),
        T(test_data_commit_success),
        T(test_data_commit_failure),
        T(test_dot_unstuffing),
        T(test_empty_message),
        T(test_message_params_and_mode),
        T(test_pipelining),
        T(test_any_piece_size_same_result),
        T(test_bytewise_bdat_script),
        T(test_line_too_long),
        T(test_endless_line),
        T(test_overlong_line_alike_whole_and_in_pieces),
        T(test_bare_lf_command),
        T(test_unknown_command),
        T(test_error_limit),
        T(test_size_param_over_limit),
        T(test_body_over_limit),
        T(test_bdat_over_limit),
        T(test_max_recipients),
        T(test_max_received),
        T(test_data_line_length),
        T(test_params_after_helo),
        T(test_smtputf8),
        T(test_bdat_chunks),
        T(test_bdat_zero_last),
        T(test_bdat_without_rcpt),
        T(test_data_after_bdat),
        T(test_bdat_keeps_dot_lines),
        T(test_bdat_malformed),
        T(test_rset_noop_quit),
        T(test_help),
        T(test_vrfy_off),
        T(test_vrfy_on),
        T(test_expn_off),
        T(test_expn_on),
        T(test_expn_empty_list),
        T(test_send_soml_saml),
        T(test_send_on),
        T(test_not_offered),
        T(test_server_close),
        T(test_close_while_committing),
        T(test_output_cap_keeps_lines_whole),
        T(test_smuggling_normalize),
        T(test_smuggling_reject),
        T(test_reject_mode_clean_message),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
