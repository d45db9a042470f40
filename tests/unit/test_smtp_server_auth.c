/*
 * AUTH (RFC 4954) and submission (RFC 6409) in the SMTP server state
 * machine, with a fake auth hook: the exact replies, PLAIN and LOGIN, the
 * AUTH_WAIT park and its resumption by smtp_server_auth_done, and the
 * AUTH= parameter of MAIL.
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
#define EHLO_AUTH_HEAD                                                                             \
    "250-" HOST " Hello client.example [192.0.2.1]\r\n"                                            \
    "250-PIPELINING\r\n"                                                                           \
    "250-SIZE 1000\r\n"                                                                            \
    "250-8BITMIME\r\n"                                                                             \
    "250-ENHANCEDSTATUSCODES\r\n"                                                                  \
    "250-SMTPUTF8\r\n"                                                                             \
    "250-CHUNKING\r\n"
#define EHLO_AUTH EHLO_AUTH_HEAD "250-AUTH PLAIN LOGIN\r\n250 DSN\r\n"
#define EHLO "EHLO client.example\r\n"
#define R_235 "235 2.7.0 Authentication successful\r\n"
#define R_535 "535 5.7.8 Authentication credentials invalid\r\n"
#define R_530 "530 5.7.0 Authentication required\r\n"
#define R_MAIL_OK "250 2.1.0 Ok\r\n"
#define R_RCPT_OK "250 2.1.5 Ok\r\n"
/* "\0alice\0secret" */
#define PLAIN_ALICE "AGFsaWNlAHNlY3JldA=="

struct fake {
    unsigned auth, mail, rcpt;
    char authzid[256], authcid[256], password[1025];
};

static struct fake fk;
static struct smtp_server_settings set;
static struct smtp_server *srv;
static char out[1 << 16];

static void
fake_auth(void *ctx, const char *authzid, const char *authcid, const char *password)
{
    struct fake *f = ctx;

    f->auth++;
    snprintf(f->authzid, sizeof(f->authzid), "%s", authzid);
    snprintf(f->authcid, sizeof(f->authcid), "%s", authcid);
    snprintf(f->password, sizeof(f->password), "%s", password);
}

static int
fake_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
          const struct smtp_mail_params *p, struct smtp_reply *r)
{
    struct fake *f = ctx;

    (void)mode, (void)from, (void)p, (void)r;
    f->mail++;
    return 0;
}

static int
fake_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
          struct smtp_reply *r)
{
    struct fake *f = ctx;

    (void)to, (void)p, (void)r;
    f->rcpt++;
    return 0;
}

static void
fake_reset(void *ctx)
{
    (void)ctx;
}

static int atrn_answer; /* 250 or an error code for fake_atrn */
static char atrn_domains[256];

static int
fake_atrn(void *ctx, struct str domains, struct smtp_reply *r)
{
    (void)ctx;
    snprintf(atrn_domains, sizeof(atrn_domains), "%.*s", (int)domains.len, domains.ptr);
    if (atrn_answer == 250)
        return smtp_reply_set(r, 250, "2.0.0", "OK now reversing the connection"), 0;
    return smtp_reply_set(r, atrn_answer, "4.3.0", "You have no mail");
}

static const struct smtp_server_hooks hooks = {
    .mail = fake_mail,
    .rcpt = fake_rcpt,
    .reset = fake_reset,
    .auth = fake_auth,
};

static const struct smtp_server_hooks hooks_atrn = {
    .mail = fake_mail,
    .rcpt = fake_rcpt,
    .reset = fake_reset,
    .auth = fake_auth,
    .atrn = fake_atrn,
};

static void
start(bool required)
{
    set = (struct smtp_server_settings){
        .hostname = HOST,
        .peer_ip = "192.0.2.1",
        .message_size = 1000,
        .max_recipients = 3,
        .max_errors = 20,
        .max_received = 3,
        .line_length = 100,
        .auth_offered = true,
        .auth_insecure = true,
        .auth_required = required,
    };
    memset(&fk, 0, sizeof(fk));
    srv = smtp_server_new(&set, &hooks, &fk);
}

static const char *
take(void)
{
    struct buf *b = smtp_server_output(srv);

    assert_true(b->len < sizeof(out));
    memcpy(out, b->data, b->len);
    out[b->len] = '\0';
    buf_reset(b);
    return out;
}

/* Feeds all of in (it must be consumed) and checks the replies. */
static void
expect(const char *in, const char *replies)
{
    assert_int_equal(smtp_server_feed(srv, in, strlen(in)), strlen(in));
    assert_string_equal(take(), replies);
}

static int
setup(void **state)
{
    (void)state;
    start(false);
    assert_string_equal(take(), GREETING);
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

static void
test_ehlo_advertises(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
}

static void
test_not_offered(void **state)
{
    (void)state;
    smtp_server_free(srv);
    start(false);
    set.auth_offered = false;
    take();
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "502 5.5.1 AUTH is not implemented\r\n");
}

/* Where AUTH is not offered its lines are held to the ordinary limit, so a
 * long one gets the same reply whether it arrives whole or in pieces. */
static void
test_not_offered_long_line(void **state)
{
    char line[1200];
    size_t n = sizeof(line) - 1, half = 700;

    (void)state;
    smtp_server_free(srv);
    start(false);
    set.auth_offered = false;
    take();
    memcpy(line, "AUTH PLAIN ", 11);
    memset(line + 11, 'a', n - 13);
    memcpy(line + n - 2, "\r\n", 3);
    expect(line, "500 5.5.2 line too long\r\n");
    assert_int_equal(smtp_server_feed(srv, line, half), 0);
    assert_int_equal(smtp_server_feed(srv, line, n), n);
    assert_string_equal(take(), "500 5.5.2 line too long\r\n");
}

static void
test_before_ehlo(void **state)
{
    (void)state;
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "503 5.5.1 send EHLO first\r\n");
    expect("HELO client.example\r\n", "250 " HOST " Hello client.example [192.0.2.1]\r\n");
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "503 5.5.1 send EHLO first\r\n");
    assert_int_equal(fk.auth, 0);
}

static void
test_plain_initial(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_AUTH_WAIT);
    assert_int_equal(fk.auth, 1);
    assert_string_equal(fk.authzid, "");
    assert_string_equal(fk.authcid, "alice");
    assert_string_equal(fk.password, "secret");
    assert_false(smtp_server_authenticated(srv));
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), R_235);
    assert_true(smtp_server_authenticated(srv));
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
}

static void
test_plain_empty_initial(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH PLAIN =\r\n", "334 \r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_AUTH);
    expect(PLAIN_ALICE "\r\n", "");
    assert_int_equal(fk.auth, 1);
    assert_string_equal(fk.authcid, "alice");
    smtp_server_auth_done(srv, false);
    assert_string_equal(take(), R_535);
    assert_false(smtp_server_authenticated(srv));
    /* a failure leaves AUTH open for another try */
    expect("AUTH plain\r\n", "334 \r\n");
    expect(PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), R_235);
}

static void
test_login(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
    expect("YWxpY2U=\r\n", "334 UGFzc3dvcmQ6\r\n");
    expect("c2VjcmV0\r\n", "");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_AUTH_WAIT);
    assert_string_equal(fk.authcid, "alice");
    assert_string_equal(fk.password, "secret");
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), R_235);
}

static void
test_cancel(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH LOGIN\r\n", "334 VXNlcm5hbWU6\r\n");
    expect("*\r\n", "501 5.7.0 authentication cancelled\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    assert_int_equal(fk.auth, 0);
    expect("NOOP\r\n", "250 2.0.0 Ok\r\n");
}

static void
test_bad_base64_and_mechanism(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH PLAIN !!!!\r\n", "501 5.5.2 invalid base64 data\r\n");
    expect("AUTH PLAIN\r\n", "334 \r\n");
    expect("not base64\r\n", "501 5.5.2 invalid base64 data\r\n");
    expect("AUTH CRAM-MD5\r\n", "504 5.5.4 unrecognized authentication mechanism\r\n");
    expect("AUTH\r\n", "501 5.5.4 syntax: AUTH mechanism [initial-response]\r\n");
    assert_int_equal(fk.auth, 0);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
}

static void
test_auth_twice(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), R_235);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "503 5.5.1 already authenticated\r\n");
    assert_int_equal(fk.auth, 1);
    /* auth_done outside AUTH_WAIT does nothing */
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), "");
}

static void
test_auth_in_transaction(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("MAIL FROM:<a@example.net>\r\n", R_MAIL_OK);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n",
           "503 5.5.1 AUTH is not allowed during a transaction\r\n");
    assert_int_equal(fk.auth, 0);
}

static void
test_submission_requires_auth(void **state)
{
    (void)state;
    smtp_server_free(srv);
    start(true);
    take();
    expect(EHLO, EHLO_AUTH);
    expect("MAIL FROM:<alice@example.org>\r\n", R_530);
    assert_int_equal(fk.mail, 0);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, false);
    assert_string_equal(take(), R_535);
    expect("MAIL FROM:<alice@example.org>\r\n", R_530);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), R_235);
    expect("MAIL FROM:<alice@example.org> AUTH=<>\r\n", R_MAIL_OK);
    assert_int_equal(fk.mail, 1);
}

static void
test_mail_auth_param(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("MAIL FROM:<a@example.net> AUTH=a+40example.net\r\n", R_MAIL_OK);
    expect("RSET\r\n", "250 2.0.0 Ok\r\n");
    expect("MAIL FROM:<a@example.net> AUTH=a+4\r\n", "501 5.5.4 bad AUTH parameter value\r\n");
}

static void
test_pipelined_input_resumes(void **state)
{
    const char *in = "AUTH PLAIN " PLAIN_ALICE "\r\nMAIL FROM:<a@example.net>\r\n"
                     "RCPT TO:<b@example.org>\r\n";
    size_t used;

    (void)state;
    smtp_server_free(srv);
    start(true);
    take();
    expect(EHLO, EHLO_AUTH);
    used = smtp_server_feed(srv, in, strlen(in));
    assert_int_equal(used, strlen("AUTH PLAIN " PLAIN_ALICE "\r\n"));
    assert_string_equal(take(), "");
    /* parked: nothing more is consumed until auth_done */
    assert_int_equal(smtp_server_feed(srv, in + used, strlen(in + used)), 0);
    assert_int_equal(fk.mail, 0);
    smtp_server_auth_done(srv, true);
    expect(in + used, R_235 R_MAIL_OK R_RCPT_OK);
    assert_int_equal(fk.mail, 1);
    assert_int_equal(fk.rcpt, 1);
}

static void
test_long_response_line(void **state)
{
    char line[4000], mid[2061];

    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("AUTH PLAIN\r\n", "334 \r\n");
    memset(mid, 'A', sizeof(mid) - 3);
    memcpy(mid + sizeof(mid) - 3, "\r\n", 3);
    expect(mid, "500 5.5.6 authentication exchange line is too long\r\n");
    expect("AUTH PLAIN\r\n", "334 \r\n");
    memset(line, 'A', sizeof(line) - 3);
    memcpy(line + sizeof(line) - 3, "\r\n", 3);
    expect(line, "500 5.5.2 line too long\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    /* no end in sight: discarded as it arrives, the exchange ends */
    expect("AUTH PLAIN\r\n", "334 \r\n");
    line[sizeof(line) - 3] = '\0';
    expect(line, "");
    expect(line, "");
    expect("\r\n", "500 5.5.2 line too long\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    expect("NOOP\r\n", "250 2.0.0 Ok\r\n");
}

/* RFC 2645 4: ATRN after AUTH; the machine parks in TURNED after a 250. */
static void
test_atrn(void **state)
{
    const char *in = "ATRN example.net,example.com\r\nNOOP\r\n";

    (void)state;
    smtp_server_free(srv);
    start(false);
    smtp_server_free(srv);
    srv = smtp_server_new(&set, &hooks_atrn, &fk);
    take();
    expect(EHLO, EHLO_AUTH_HEAD "250-AUTH PLAIN LOGIN\r\n250-ATRN\r\n250 DSN\r\n");
    expect("ATRN\r\n", "530 5.7.0 Authentication required\r\n");
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), R_235);
    expect("ATRN ex ample\r\n", "501 5.5.4 syntax: ATRN [domain[,domain]...]\r\n");
    atrn_answer = 453;
    expect("ATRN\r\n", "453 4.3.0 You have no mail\r\n");
    assert_string_equal(atrn_domains, "");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
    atrn_answer = 250;
    assert_int_equal(smtp_server_feed(srv, in, strlen(in)),
                     strlen("ATRN example.net,example.com\r\n"));
    assert_string_equal(take(), "250 2.0.0 OK now reversing the connection\r\n");
    assert_string_equal(atrn_domains, "example.net,example.com");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_TURNED);
    assert_int_equal(smtp_server_feed(srv, "NOOP\r\n", 6), 0);
}

static void
test_atrn_not_offered(void **state)
{
    (void)state;
    expect(EHLO, EHLO_AUTH);
    expect("ATRN\r\n", "502 5.5.1 ATRN is not implemented\r\n");
}

static void
test_failures_count_as_errors(void **state)
{
    (void)state;
    smtp_server_free(srv);
    start(false);
    set.max_errors = 2;
    take();
    expect(EHLO, EHLO_AUTH);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, false);
    assert_string_equal(take(), R_535);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    smtp_server_auth_done(srv, false);
    assert_string_equal(take(), R_535 "421 4.7.0 " HOST " too many errors, closing connection\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_CLOSED);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ehlo_advertises),
        T(test_not_offered),
        T(test_not_offered_long_line),
        T(test_before_ehlo),
        T(test_plain_initial),
        T(test_plain_empty_initial),
        T(test_login),
        T(test_cancel),
        T(test_bad_base64_and_mechanism),
        T(test_auth_twice),
        T(test_auth_in_transaction),
        T(test_submission_requires_auth),
        T(test_mail_auth_param),
        T(test_pipelined_input_resumes),
        T(test_long_response_line),
        T(test_failures_count_as_errors),
        T(test_atrn),
        T(test_atrn_not_offered),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
