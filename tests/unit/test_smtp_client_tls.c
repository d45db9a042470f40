/*
 * The client's STARTTLS (RFC 3207) and AUTH (RFC 4954) steps, driven as a
 * fake server would: the STARTTLS step and its parking state, EHLO again
 * with the old extensions forgotten, each TLS policy (a required TLS that
 * is missing or refused fails temporarily before MAIL), implicit TLS,
 * AUTH PLAIN and LOGIN, no credentials outside TLS, refused passwords
 * deferred, and plaintext injected after the 220.
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

#include "smtp/smtp_client.h"

#define HELO_NAME "client.example.net"
#define GREETING "220 mx.example.org ESMTP ready\r\n"
#define EHLO_CMD "EHLO " HELO_NAME "\r\n"
#define BODY "Subject: test\r\n\r\nHello\r\n"
#define MAIL_CMD "MAIL FROM:<s@example.net>\r\n"
#define RCPT_A "RCPT TO:<a@example.org>\r\n"
/* base64 of "\0user\0pass" (RFC 4616 2, no authzid) */
#define PLAIN_B64 "AHVzZXIAcGFzcw=="

#define EHLO_TLS "250-mx.example.org\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n"
#define EHLO_PLAIN "250-mx.example.org\r\n250-PIPELINING\r\n250 8BITMIME\r\n"

static struct smtp_client_rcpt rcpt;
static struct smtp_client_message msg;
static struct smtp_client_settings set;
static struct smtp_client *cl;
static char out[1 << 14];

static int
setup(void **state)
{
    (void)state;
    rcpt = (struct smtp_client_rcpt){"a@example.org", 0, ""};
    msg = (struct smtp_client_message){
        .sender = "s@example.net",
        .rcpts = &rcpt,
        .nrcpts = 1,
        .envid = "",
        .data = BODY,
        .len = strlen(BODY),
    };
    set = (struct smtp_client_settings){
        .helo_name = HELO_NAME,
        .tls = SMTP_CLIENT_TLS_MAY,
        .server_name = "mx.example.org",
    };
    cl = NULL;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    smtp_client_free(cl);
    cl = NULL;
    return 0;
}

static const char *
take(void)
{
    struct buf *b = smtp_client_output(cl);

    assert_true(b->len < sizeof(out));
    memcpy(out, b->data ? b->data : "", b->len);
    out[b->len] = '\0';
    buf_reset(b);
    return out;
}

static void
feed(const char *s)
{
    assert_int_equal(smtp_client_feed(cl, s, strlen(s)), strlen(s));
}

static enum smtp_client_event
ev(void)
{
    return smtp_client_event(cl);
}

/* Greeted, EHLO sent and answered with ehlo_reply. */
static void
start(const char *ehlo_reply)
{
    cl = smtp_client_new(&set);
    feed(GREETING);
    assert_string_equal(take(), EHLO_CMD);
    feed(ehlo_reply);
}

/* From the EHLO reply offering STARTTLS through the handshake to the
 * second EHLO being sent. */
static void
through_tls(void)
{
    start(EHLO_TLS);
    assert_string_equal(take(), "STARTTLS\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    assert_int_equal(smtp_client_timeout(cl), 5 * 60);
    feed("220 2.0.0 Ready to start TLS\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_TLS);
    assert_string_equal(take(), ""); /* nothing more in the clear */
    assert_int_equal(smtp_client_timeout(cl), 0);
    assert_false(smtp_client_tls_active(cl));
    smtp_client_tls_done(cl, true);
    assert_true(smtp_client_tls_active(cl));
    assert_string_equal(take(), EHLO_CMD);
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
}

/* The error's text contains want; the error is a 4xx with status. */
static void
failed_with(int code, const char *status, const char *want)
{
    const struct smtp_reply *r;

    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    r = smtp_client_error(cl);
    assert_non_null(r);
    assert_int_equal(r->code, code);
    assert_string_equal(r->status, status);
    if (strstr(r->text, want) == NULL)
        fail_msg("error text \"%s\" lacks \"%s\"", r->text, want);
    assert_int_equal(smtp_client_send(cl, &msg), -1);
    assert_null(strstr(take(), "MAIL"));
}

static void
test_starttls_then_ehlo_again(void **state)
{
    (void)state;
    through_tls();
    /* RFC 3207 4.2: what the server said before TLS is forgotten */
    assert_false(smtp_client_ext(cl)->pipelining);
    assert_false(smtp_client_ext(cl)->starttls);
    assert_string_equal(smtp_client_ext(cl)->auth, "");
    feed("250-mx.example.org\r\n250 8BITMIME\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_true(smtp_client_ext(cl)->eightbitmime);
    assert_false(smtp_client_ext(cl)->pipelining); /* only offered before TLS */
    assert_false(smtp_client_authenticated(cl));   /* no credentials given */
    /* lock-step now: MAIL alone */
    assert_int_equal(smtp_client_send(cl, &msg), 0);
    assert_string_equal(take(), MAIL_CMD);
    feed("250 ok\r\n");
    assert_string_equal(take(), RCPT_A);
    feed("250 ok\r\n");
    assert_string_equal(take(), "DATA\r\n");
    feed("354 go\r\n");
    assert_string_equal(take(), BODY ".\r\n");
    feed("250 2.0.0 queued\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    smtp_client_next(cl);
    assert_int_equal(ev(), SMTP_CLIENT_READY); /* TLS stays; no second STARTTLS */
    assert_true(smtp_client_tls_active(cl));
    assert_string_equal(take(), "");
}

static void
test_opportunistic_without_starttls(void **state)
{
    (void)state;
    start(EHLO_PLAIN);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), "");
    assert_false(smtp_client_tls_active(cl));
}

static void
test_policy_no_ignores_starttls(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_NO;
    start(EHLO_TLS);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), "");
}

static void
test_require_without_starttls_fails_temporarily(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_MUST;
    start(EHLO_PLAIN);
    failed_with(451, "4.7.0", "TLS required but not offered by mx.example.org");
}

static void
test_require_after_helo_fallback(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_MUST;
    start("502 5.5.1 no EHLO\r\n");
    assert_string_equal(take(), "HELO " HELO_NAME "\r\n");
    feed("250 mx\r\n");
    failed_with(451, "4.7.0", "not offered");
}

static void
test_require_starttls_refused(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_MUST;
    start(EHLO_TLS);
    assert_string_equal(take(), "STARTTLS\r\n");
    feed("454 4.7.0 TLS not available\r\n");
    failed_with(451, "4.7.0", "STARTTLS refused by mx.example.org: 454 TLS not available");
}

static void
test_opportunistic_starttls_refused_goes_on(void **state)
{
    (void)state;
    start(EHLO_TLS);
    assert_string_equal(take(), "STARTTLS\r\n");
    feed("454 4.7.0 TLS not available\r\n");
    /* RFC 3207 4: the session is as before: extensions hold */
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), "");
    assert_false(smtp_client_tls_active(cl));
    assert_true(smtp_client_ext(cl)->pipelining);
}

static void
test_421_to_starttls(void **state)
{
    (void)state;
    start(EHLO_TLS);
    take();
    feed("421 4.3.2 closing\r\n");
    failed_with(421, "4.3.2", "closing");
}

static void
test_plaintext_after_220_is_refused(void **state)
{
    static const char inj[] = "220 go ahead\r\n250-injected\r\n250 AUTH PLAIN\r\n";

    (void)state;
    start(EHLO_TLS);
    take();
    /* feed() stops at the 220; the rest was sent in the clear */
    assert_int_equal(smtp_client_feed(cl, inj, strlen(inj)), strlen("220 go ahead\r\n"));
    assert_int_equal(ev(), SMTP_CLIENT_TLS);
    assert_int_equal(smtp_client_feed(cl, inj + 14, strlen(inj + 14)), 0);
    failed_with(451, "4.4.0", "data after the STARTTLS reply");
    smtp_client_tls_done(cl, true); /* too late: stays FAILED */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_false(smtp_client_tls_active(cl));
}

static void
test_handshake_failed(void **state)
{
    (void)state;
    start(EHLO_TLS);
    take();
    feed("220 go ahead\r\n");
    smtp_client_tls_done(cl, false);
    failed_with(451, "4.7.0", "TLS handshake with mx.example.org failed");
}

static void
test_quit_while_in_tls(void **state)
{
    (void)state;
    start(EHLO_TLS);
    take();
    feed("220 go ahead\r\n");
    smtp_client_quit(cl);
    assert_int_equal(ev(), SMTP_CLIENT_CLOSED);
    assert_string_equal(take(), "");
}

static void
test_tls_done_outside_tls_state(void **state)
{
    (void)state;
    start(EHLO_PLAIN);
    smtp_client_tls_done(cl, true);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_false(smtp_client_tls_active(cl));
    assert_string_equal(take(), "");
}

static void
test_auth_plain_after_starttls(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_MUST;
    set.auth_user = "user";
    set.auth_pass = "pass";
    /* AUTH is offered in the clear, but STARTTLS comes first */
    through_tls();
    feed("250-mx.example.org\r\n250-PIPELINING\r\n250 AUTH LOGIN PLAIN\r\n");
    assert_string_equal(take(), "AUTH PLAIN " PLAIN_B64 "\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    feed("235 2.7.0 Authentication successful\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_true(smtp_client_authenticated(cl));
    assert_int_equal(smtp_client_send(cl, &msg), 0);
    assert_string_equal(take(), MAIL_CMD RCPT_A "DATA\r\n");
}

static void
test_no_auth_before_tls(void **state)
{
    (void)state;
    set.auth_user = "user";
    set.auth_pass = "pass";
    start("250-mx.example.org\r\n250 AUTH PLAIN\r\n"); /* no STARTTLS */
    failed_with(451, "4.7.0", "not sending credentials to mx.example.org without TLS");
    assert_false(smtp_client_authenticated(cl));
}

static void
test_no_auth_when_tls_policy_no(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_NO;
    set.auth_user = "user";
    set.auth_pass = "pass";
    start(EHLO_TLS);
    assert_string_equal(take(), ""); /* neither STARTTLS nor AUTH */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_int_equal(smtp_client_error(cl)->code, 451);
}

static void
test_implicit_tls_auth_plain(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    assert_true(smtp_client_tls_active(cl));
    feed(GREETING);
    assert_string_equal(take(), EHLO_CMD);
    feed(EHLO_TLS); /* STARTTLS inside TLS is never used */
    assert_string_equal(take(), "AUTH PLAIN " PLAIN_B64 "\r\n");
    feed("235 2.7.0 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_auth_login(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("250-mx\r\n250 AUTH LOGIN\r\n");
    assert_string_equal(take(), "AUTH LOGIN\r\n");
    feed("334 VXNlcm5hbWU6\r\n");
    assert_string_equal(take(), "dXNlcg==\r\n");
    feed("334 UGFzc3dvcmQ6\r\n");
    assert_string_equal(take(), "cGFzcw==\r\n");
    feed("235 2.7.0 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_true(smtp_client_authenticated(cl));
}

static void
test_auth_refused_is_deferred(void **state)
{
    const struct smtp_reply *r;

    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("250-mx\r\n250 AUTH PLAIN\r\n");
    take();
    feed("535 5.7.8 Authentication credentials invalid\r\n");
    failed_with(454, "4.7.8",
                "authentication failed at mx.example.org: 535 Authentication credentials invalid");
    r = smtp_client_error(cl);
    assert_null(strstr(r->text, "pass"));
    assert_null(strstr(r->text, PLAIN_B64));
}

static void
test_auth_temporary_refusal(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("250-mx\r\n250 AUTH LOGIN\r\n");
    take();
    feed("454 4.7.0 Temporary authentication failure\r\n");
    failed_with(454, "4.7.0", "Temporary authentication failure");
}

static void
test_auth_unexpected_challenge(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("250-mx\r\n250 AUTH PLAIN\r\n");
    take();
    feed("334 \r\n"); /* the initial response was sent already */
    failed_with(454, "4.7.0", "authentication failed");
}

static void
test_auth_no_usable_mechanism(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("250-mx\r\n250 AUTH CRAM-MD5 XOAUTH2\r\n");
    failed_with(451, "4.7.0", "offers no AUTH PLAIN or LOGIN");
}

static void
test_auth_not_offered(void **state)
{
    (void)state;
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = "pass";
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed(EHLO_PLAIN);
    failed_with(451, "4.7.0", "offers no AUTH");
}

static void
test_auth_credentials_unusable(void **state)
{
    static char longpass[400];

    (void)state;
    memset(longpass, 'x', sizeof(longpass) - 1);
    set.tls = SMTP_CLIENT_TLS_IMPLICIT;
    set.auth_user = "user";
    set.auth_pass = longpass;
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("250-mx\r\n250 AUTH PLAIN\r\n");
    failed_with(451, "4.7.0", "credentials for mx.example.org unusable");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_starttls_then_ehlo_again),
        T(test_opportunistic_without_starttls),
        T(test_policy_no_ignores_starttls),
        T(test_require_without_starttls_fails_temporarily),
        T(test_require_after_helo_fallback),
        T(test_require_starttls_refused),
        T(test_opportunistic_starttls_refused_goes_on),
        T(test_421_to_starttls),
        T(test_plaintext_after_220_is_refused),
        T(test_handshake_failed),
        T(test_quit_while_in_tls),
        T(test_tls_done_outside_tls_state),
        T(test_auth_plain_after_starttls),
        T(test_no_auth_before_tls),
        T(test_no_auth_when_tls_policy_no),
        T(test_implicit_tls_auth_plain),
        T(test_auth_login),
        T(test_auth_refused_is_deferred),
        T(test_auth_temporary_refusal),
        T(test_auth_unexpected_challenge),
        T(test_auth_no_usable_mechanism),
        T(test_auth_not_offered),
        T(test_auth_credentials_unusable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
