/*
 * STARTTLS (RFC 3207) in the SMTP server state machine: when it is offered,
 * its replies, the STARTTLS park, the reset after the handshake (RFC 3207
 * 4.2), and AUTH held back until TLS (RFC 4954 4: 538 5.7.11).
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
#define EHLO_HEAD                                                                                  \
    "250-" HOST " Hello client.example [192.0.2.1]\r\n"                                            \
    "250-PIPELINING\r\n"                                                                           \
    "250-SIZE 1000\r\n"                                                                            \
    "250-8BITMIME\r\n"                                                                             \
    "250-ENHANCEDSTATUSCODES\r\n"                                                                  \
    "250-SMTPUTF8\r\n"                                                                             \
    "250-CHUNKING\r\n"
#define EHLO "EHLO client.example\r\n"
#define EHLO_PLAIN EHLO_HEAD "250-STARTTLS\r\n250 DSN\r\n"
#define EHLO_TLS EHLO_HEAD "250-AUTH PLAIN LOGIN\r\n250 DSN\r\n"
#define R_READY "220 2.0.0 Ready to start TLS\r\n"
#define R_538                                                                                      \
    "538 5.7.11 Encryption required for requested authentication mechanism: use STARTTLS "         \
    "first\r\n"
#define PLAIN_ALICE "AGFsaWNlAHNlY3JldA=="

static unsigned nauth, nmail, nreset;
static struct smtp_server_settings set;
static struct smtp_server *srv;
static char out[1 << 16];

static void
fake_auth(void *ctx, const char *authzid, const char *authcid, const char *password)
{
    (void)ctx, (void)authzid, (void)authcid, (void)password;
    nauth++;
}

static int
fake_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
          const struct smtp_mail_params *p, struct smtp_reply *r)
{
    (void)ctx, (void)mode, (void)from, (void)p, (void)r;
    nmail++;
    return 0;
}

static int
fake_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
          struct smtp_reply *r)
{
    (void)ctx, (void)to, (void)p, (void)r;
    return 0;
}

static void
fake_reset(void *ctx)
{
    (void)ctx;
    nreset++;
}

static const struct smtp_server_hooks hooks = {
    .mail = fake_mail,
    .rcpt = fake_rcpt,
    .reset = fake_reset,
    .auth = fake_auth,
};

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

static void
expect(const char *in, const char *replies)
{
    assert_int_equal(smtp_server_feed(srv, in, strlen(in)), strlen(in));
    assert_string_equal(take(), replies);
}

static void
start(bool starttls, bool implicit)
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
        .starttls = starttls,
        .tls = implicit,
    };
    nauth = nmail = nreset = 0;
    srv = smtp_server_new(&set, &hooks, NULL);
    assert_string_equal(take(), GREETING);
}

static int
setup(void **state)
{
    (void)state;
    start(true, false);
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    smtp_server_free(srv);
    return 0;
}

static void
test_offered_and_auth_held_back(void **state)
{
    (void)state;
    expect(EHLO, EHLO_PLAIN);
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", R_538);
    assert_int_equal(nauth, 0);
    assert_false(smtp_server_tls(srv));
}

static void
test_not_offered(void **state)
{
    (void)state;
    smtp_server_free(srv);
    start(false, false);
    expect(EHLO, EHLO_HEAD "250 DSN\r\n");
    expect("STARTTLS\r\n", "502 5.5.1 STARTTLS is not implemented\r\n");
}

/* RFC 3207 4: parameters, before EHLO, in a transaction. */
static void
test_refusals(void **state)
{
    (void)state;
    expect("STARTTLS\r\n", "503 5.5.1 send EHLO first\r\n");
    expect("HELO client.example\r\n", "250 " HOST " Hello client.example [192.0.2.1]\r\n");
    expect("STARTTLS\r\n", "503 5.5.1 send EHLO first\r\n");
    expect(EHLO, EHLO_PLAIN);
    expect("STARTTLS now\r\n", "501 5.5.4 syntax: STARTTLS (no parameters)\r\n");
    expect("MAIL FROM:<a@example.net>\r\n", "250 2.1.0 Ok\r\n");
    expect("STARTTLS\r\n", "503 5.5.1 STARTTLS is not allowed during a transaction\r\n");
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_MAIL);
}

/* The machine stops at the STARTTLS line: what follows is not read. */
static void
test_park_and_reset(void **state)
{
    const char *in = "STARTTLS\r\nMAIL FROM:<evil@example.net>\r\n";

    (void)state;
    expect(EHLO, EHLO_PLAIN);
    assert_int_equal(smtp_server_feed(srv, in, strlen(in)), strlen("STARTTLS\r\n"));
    assert_string_equal(take(), R_READY);
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_STARTTLS);
    assert_int_equal(smtp_server_feed(srv, "NOOP\r\n", 6), 0);
    assert_string_equal(take(), "");
    assert_int_equal(nmail, 0);
    smtp_server_starttls_done(srv);
    assert_true(smtp_server_tls(srv));
    assert_string_equal(take(), ""); /* no second greeting */
    /* RFC 3207 4.2: everything starts over, EHLO first */
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_INIT);
    assert_string_equal(smtp_server_helo(srv), "");
    expect("MAIL FROM:<a@example.net>\r\n", "503 5.5.1 send HELO or EHLO first\r\n");
    expect(EHLO, EHLO_TLS);
    expect("STARTTLS\r\n", "503 5.5.1 TLS is already active\r\n");
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    assert_int_equal(nauth, 1);
    smtp_server_auth_done(srv, true);
    assert_string_equal(take(), "235 2.7.0 Authentication successful\r\n");
}

/* Port 465: TLS from the start, AUTH offered at once, no STARTTLS. */
static void
test_implicit(void **state)
{
    (void)state;
    smtp_server_free(srv);
    start(true, true);
    assert_true(smtp_server_tls(srv));
    expect(EHLO, EHLO_TLS);
    expect("STARTTLS\r\n", "503 5.5.1 TLS is already active\r\n");
}

/* `insecure`: AUTH without TLS, next to STARTTLS. */
static void
test_insecure(void **state)
{
    (void)state;
    smtp_server_free(srv);
    start(true, false);
    set.auth_insecure = true;
    expect(EHLO, EHLO_HEAD "250-STARTTLS\r\n250-AUTH PLAIN LOGIN\r\n250 DSN\r\n");
    expect("AUTH PLAIN " PLAIN_ALICE "\r\n", "");
    assert_int_equal(nauth, 1);
}

/* starttls_done outside the park changes nothing. */
static void
test_done_out_of_place(void **state)
{
    (void)state;
    expect(EHLO, EHLO_PLAIN);
    smtp_server_starttls_done(srv);
    assert_false(smtp_server_tls(srv));
    assert_int_equal(smtp_server_state(srv), SMTP_STATE_READY);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_offered_and_auth_held_back),
        T(test_not_offered),
        T(test_refusals),
        T(test_park_and_reset),
        T(test_implicit),
        T(test_insecure),
        T(test_done_out_of_place),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
