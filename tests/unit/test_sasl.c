/*
 * SASL PLAIN and LOGIN exchanges (auth/sasl.c): initial responses, "=",
 * continuations, "*" cancel, strict base64, field limits, NULs, UTF-8,
 * authzid rules, mechanism names, and the wiping of credentials.
 */
#include <stdio.h>
#include <string.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "smtp/smtp_sasl.h"

#define CHALLENGE_USER "VXNlcm5hbWU6"
#define CHALLENGE_PASS "UGFzc3dvcmQ6"

/* base64 of n octets at p, in a static buffer (one at a time). */
static struct str
b64n(const char *p, size_t n)
{
    static char out[8192];

    assert_true(sasl_base64_encode(str_make(p, n), out, sizeof(out)) >= 0);
    return str_cstr(out);
}

/* base64 of a string literal, NULs included. */
#define B64(lit) b64n(lit, sizeof(lit) - 1)

static struct sasl s;

static int
setup(void **state)
{
    (void)state;
    sasl_clear(&s);
    return 0;
}

static void
assert_error(enum sasl_result r, int code, const char *status)
{
    assert_int_equal(r, SASL_ERROR);
    assert_int_equal(s.reply.code, code);
    assert_string_equal(s.reply.status, status);
    assert_true(s.reply.text[0] != '\0');
    assert_int_equal(s.state, SASL_STATE_IDLE);
    /* nothing of a failed exchange is left behind */
    assert_string_equal(s.authcid, "");
    assert_string_equal(s.password, "");
}

static void
assert_done(enum sasl_result r, const char *authzid, const char *authcid, const char *password)
{
    assert_int_equal(r, SASL_DONE);
    assert_string_equal(s.authzid, authzid);
    assert_string_equal(s.authcid, authcid);
    assert_string_equal(s.password, password);
    assert_int_equal(s.state, SASL_STATE_IDLE);
}

/* PLAIN with the message as an initial response. */
static enum sasl_result
plain(struct str msg)
{
    return sasl_start(&s, STR_LIT("PLAIN"), msg, true);
}

static void
test_plain_initial_response(void **state)
{
    (void)state;
    assert_done(plain(B64("\0alice\0secret")), "", "alice", "secret");
    assert_int_equal(s.mech, SASL_MECH_PLAIN);
}

static void
test_plain_without_initial_response(void **state)
{
    (void)state;
    assert_int_equal(sasl_start(&s, STR_LIT("PLAIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_string_equal(s.challenge, "");
    assert_done(sasl_step(&s, B64("\0alice\0secret")), "", "alice", "secret");
}

/* RFC 4954 4: "=" is an empty initial response; the message follows. */
static void
test_plain_equals_then_message(void **state)
{
    (void)state;
    assert_int_equal(plain(STR_LIT("=")), SASL_CONTINUE);
    assert_string_equal(s.challenge, "");
    assert_done(sasl_step(&s, B64("\0alice\0secret")), "", "alice", "secret");
    /* an empty continuation line is an empty message: malformed */
    assert_int_equal(plain(STR_LIT("=")), SASL_CONTINUE);
    assert_error(sasl_step(&s, STR_LIT("")), 535, "5.7.8");
    /* "=" is only special as the initial response */
    assert_int_equal(plain(STR_LIT("=")), SASL_CONTINUE);
    assert_error(sasl_step(&s, STR_LIT("=")), 501, "5.5.2");
}

static void
test_login_two_steps(void **state)
{
    (void)state;
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_string_equal(s.challenge, CHALLENGE_USER);
    assert_int_equal(sasl_step(&s, B64("alice")), SASL_CONTINUE);
    assert_string_equal(s.challenge, CHALLENGE_PASS);
    assert_string_equal(s.authcid, "alice");
    assert_done(sasl_step(&s, B64("secret")), "", "alice", "secret");
    assert_int_equal(s.mech, SASL_MECH_LOGIN);
}

static void
test_login_initial_response_is_user(void **state)
{
    (void)state;
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), B64("alice"), true), SASL_CONTINUE);
    assert_string_equal(s.challenge, CHALLENGE_PASS);
    assert_done(sasl_step(&s, B64("secret")), "", "alice", "secret");
    /* "=": no user name yet, ask for it */
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT("="), true), SASL_CONTINUE);
    assert_string_equal(s.challenge, CHALLENGE_USER);
}

static void
test_login_empty_fields(void **state)
{
    (void)state;
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_error(sasl_step(&s, STR_LIT("")), 535, "5.7.8");
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), B64("alice"), true), SASL_CONTINUE);
    assert_error(sasl_step(&s, STR_LIT("")), 535, "5.7.8");
}

static void
test_cancel(void **state)
{
    (void)state;
    assert_int_equal(sasl_start(&s, STR_LIT("PLAIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_error(sasl_step(&s, STR_LIT("*")), 501, "5.7.0");
    assert_string_equal(s.reply.text, "authentication cancelled");
    /* after the user name: the partial credentials are dropped */
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_int_equal(sasl_step(&s, B64("alice")), SASL_CONTINUE);
    assert_error(sasl_step(&s, STR_LIT("*")), 501, "5.7.0");
    /* "*" as the initial response is not a cancel but bad base64 */
    assert_error(plain(STR_LIT("*")), 501, "5.5.2");
}

static void
test_bad_base64(void **state)
{
    static const char *const bad[] = {
        "AGFsaWNlAHNlY3JldA",     /* length not a multiple of 4 */
        "AGFsaWNlAHNlY3JldA=",    /* short padding */
        "AGFs aWNlAHNlY3JldA==",  /* space */
        "AGFsaWNlAHNlY3JldA==\r", /* CR */
        "AGFsaWNl\nAHNlY3JldA==", /* line break */
        "AGFsaWNlAHNlY3JldA===",  /* too much padding */
        "=AAA",                   /* pad first (RFC 4954 4) */
        "AA=AAAAA",               /* pad in the middle */
        "YQ==YQ==",               /* two padded groups */
        "AGFs!WNlAHNlY3JldA==",   /* not in the alphabet */
        "AGFs-WNl",               /* base64url is not base64 */
        "YR==",                   /* non-zero bits under the padding */
        "YWJ=",                   /* idem, one pad */
        "====",
        "A===",
        "*x",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_error(plain(str_cstr(bad[i])), 501, "5.5.2");
        assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT(""), false), SASL_CONTINUE);
        assert_error(sasl_step(&s, str_cstr(bad[i])), 501, "5.5.2");
    }
    /* a NUL in the line */
    assert_error(plain(str_make("YQ=\0", 4)), 501, "5.5.2");
    /* an empty argument is not "=" */
    assert_error(plain(STR_LIT("")), 501, "5.5.2");
}

static void
test_base64_decode(void **state)
{
    char out[8];

    (void)state;
    assert_int_equal(sasl_base64_decode(STR_LIT(""), out, sizeof(out)), 0);
    assert_int_equal(sasl_base64_decode(STR_LIT("YQ=="), out, sizeof(out)), 1);
    assert_memory_equal(out, "a", 1);
    assert_int_equal(sasl_base64_decode(STR_LIT("YWI="), out, sizeof(out)), 2);
    assert_memory_equal(out, "ab", 2);
    assert_int_equal(sasl_base64_decode(STR_LIT("YWJj"), out, sizeof(out)), 3);
    assert_memory_equal(out, "abc", 3);
    assert_int_equal(sasl_base64_decode(STR_LIT("+/+/"), out, sizeof(out)), 3);
    assert_memory_equal(out, "\xfb\xff\xbf", 3);
    assert_int_equal(sasl_base64_decode(STR_LIT("YWJjZGVmZ2hp"), out, sizeof(out)), -2);
    assert_int_equal(sasl_base64_decode(STR_LIT("YWJjZGVmZ2g="), out, sizeof(out)), 8);
    assert_int_equal(sasl_base64_decode(STR_LIT("YWJj"), out, 2), -2);
}

static void
test_base64_encode(void **state)
{
    char out[9];

    (void)state;
    assert_int_equal(sasl_base64_encode(STR_LIT(""), out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(sasl_base64_encode(STR_LIT("a"), out, sizeof(out)), 4);
    assert_string_equal(out, "YQ==");
    assert_int_equal(sasl_base64_encode(STR_LIT("Username:"), out, sizeof(out)), -1);
    assert_int_equal(sasl_base64_encode(STR_LIT("abcdef"), out, sizeof(out)), 8);
    assert_string_equal(out, "YWJjZGVm");
    assert_int_equal(sasl_base64_encode(STR_LIT("a"), out, 0), -1);
}

/* A PLAIN message with fields of the given lengths ('z', 'u' and 'p'). */
static struct str
plain_sized(size_t zlen, size_t ulen, size_t plen)
{
    static char msg[4096];
    size_t n = 0;

    memset(msg + n, 'u', zlen); /* authzid must equal authcid */
    n += zlen;
    msg[n++] = '\0';
    memset(msg + n, 'u', ulen);
    n += ulen;
    msg[n++] = '\0';
    memset(msg + n, 'p', plen);
    n += plen;
    return b64n(msg, n);
}

static void
test_field_limits(void **state)
{
    (void)state;
    assert_int_equal(plain(plain_sized(255, 255, 1024)), SASL_DONE);
    assert_int_equal(strlen(s.authzid), 255);
    assert_int_equal(strlen(s.authcid), 255);
    assert_int_equal(strlen(s.password), 1024);
    assert_error(plain(plain_sized(0, 256, 10)), 535, "5.7.8");
    assert_error(plain(plain_sized(256, 256, 10)), 535, "5.7.8");
    assert_error(plain(plain_sized(0, 10, 1025)), 535, "5.7.8");
}

static void
test_login_field_limits(void **state)
{
    char field[1025];

    (void)state;
    memset(field, 'x', sizeof(field));
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), b64n(field, 255), true), SASL_CONTINUE);
    assert_int_equal(sasl_step(&s, b64n(field, 1024)), SASL_DONE);
    assert_int_equal(strlen(s.authcid), 255);
    assert_int_equal(strlen(s.password), 1024);
}

static void
test_login_limits_exceeded(void **state)
{
    char field[1025];

    (void)state;
    memset(field, 'x', sizeof(field));
    assert_error(sasl_start(&s, STR_LIT("LOGIN"), b64n(field, 256), true), 535, "5.7.8");
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_error(sasl_step(&s, b64n(field, 256)), 535, "5.7.8");
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), b64n(field, 10), true), SASL_CONTINUE);
    assert_error(sasl_step(&s, b64n(field, 1025)), 535, "5.7.8");
}

static void
test_line_too_long(void **state)
{
    static char line[SASL_LINE_MAX + 5];

    (void)state;
    memset(line, 'A', sizeof(line));
    /* the longest line decodes to exactly SASL_RESPONSE_MAX octets */
    assert_int_equal(SASL_LINE_MAX % 4, 0);
    assert_true(SASL_LINE_MAX / 4 * 3 >= SASL_RESPONSE_MAX);
    assert_error(plain(str_make(line, SASL_LINE_MAX + 4)), 500, "5.5.6");
    assert_int_equal(sasl_start(&s, STR_LIT("PLAIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_error(sasl_step(&s, str_make(line, SASL_LINE_MAX + 4)), 500, "5.5.6");
    /* a line of the maximum length is decoded (and then malformed) */
    assert_error(plain(str_make(line, SASL_LINE_MAX)), 535, "5.7.8");
}

static void
test_plain_malformed(void **state)
{
    (void)state;
    assert_error(plain(B64("alicesecret")), 535, "5.7.8");       /* no NUL */
    assert_error(plain(B64("alice\0secret")), 535, "5.7.8");     /* one NUL */
    assert_error(plain(B64("\0alice\0sec\0ret")), 535, "5.7.8"); /* three */
    assert_error(plain(B64("\0al\0ice\0secret")), 535, "5.7.8"); /* NUL in authcid */
    assert_error(plain(B64("\0\0secret")), 535, "5.7.8");        /* empty authcid */
    assert_error(plain(B64("\0alice\0")), 535, "5.7.8");         /* empty password */
    assert_error(plain(B64("\0\0")), 535, "5.7.8");
    assert_error(plain(B64("\0alice\0\xff\xfe")), 535, "5.7.8");     /* not UTF-8 */
    assert_error(plain(B64("\0al\xc0\xafice\0pw")), 535, "5.7.8");   /* overlong */
    assert_error(plain(B64("\0alice\0\xed\xa0\x80")), 535, "5.7.8"); /* surrogate */
    assert_done(plain(B64("\0j\xc3\xb6rg\0p\xc3\xa4ss \xf0\x9f\x94\x91")), "", "j\xc3\xb6rg",
                "p\xc3\xa4ss \xf0\x9f\x94\x91");
}

static void
test_login_nul_in_user(void **state)
{
    (void)state;
    assert_error(sasl_start(&s, STR_LIT("LOGIN"), B64("al\0ice"), true), 535, "5.7.8");
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), B64("alice"), true), SASL_CONTINUE);
    assert_error(sasl_step(&s, B64("sec\0ret")), 535, "5.7.8");
}

static void
test_authzid_rules(void **state)
{
    (void)state;
    assert_done(plain(B64("alice\0alice\0secret")), "alice", "alice", "secret");
    assert_error(plain(B64("bob\0alice\0secret")), 535, "5.7.8");
    assert_error(plain(B64("Alice\0alice\0secret")), 535, "5.7.8"); /* octet for octet */
    assert_error(plain(B64("alic\0alice\0secret")), 535, "5.7.8");
    assert_error(plain(B64("alicee\0alice\0secret")), 535, "5.7.8");
}

static void
test_unknown_mechanism(void **state)
{
    static const char *const mechs[] = {"CRAM-MD5", "SCRAM-SHA-256", "PLAINX", "PLAI",
                                        "",         "XOAUTH2",       "LOGIN ", "GSSAPI"};

    (void)state;
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++) {
        assert_error(sasl_start(&s, str_cstr(mechs[i]), B64("\0a\0b"), true), 504, "5.5.4");
        assert_int_equal(s.mech, SASL_MECH_NONE);
    }
}

static void
test_mechanism_case(void **state)
{
    (void)state;
    assert_done(sasl_start(&s, STR_LIT("plain"), B64("\0a\0b"), true), "", "a", "b");
    assert_done(sasl_start(&s, STR_LIT("pLaIn"), B64("\0a\0b"), true), "", "a", "b");
    assert_int_equal(sasl_start(&s, STR_LIT("login"), STR_LIT(""), false), SASL_CONTINUE);
    assert_int_equal(sasl_start(&s, STR_LIT("Login"), STR_LIT(""), false), SASL_CONTINUE);
    assert_string_equal(s.challenge, CHALLENGE_USER);
}

static void
test_step_without_exchange(void **state)
{
    (void)state;
    assert_error(sasl_step(&s, B64("\0a\0b")), 503, "5.5.1");
    assert_done(plain(B64("\0a\0b")), "", "a", "b");
    assert_int_equal(sasl_step(&s, B64("\0a\0b")), SASL_ERROR);
    assert_int_equal(s.reply.code, 503);
    assert_error(plain(STR_LIT("!")), 501, "5.5.2");
    assert_int_equal(sasl_step(&s, STR_LIT("*")), SASL_ERROR);
    assert_int_equal(s.reply.code, 503);
}

static void
test_clear_wipes(void **state)
{
    const unsigned char *p = (const unsigned char *)&s;

    (void)state;
    assert_done(plain(B64("alice\0alice\0secret")), "alice", "alice", "secret");
    sasl_clear(&s);
    for (size_t i = 0; i < sizeof(s); i++)
        if (p[i] != 0)
            fail_msg("byte %zu of struct sasl not wiped", i);
    assert_int_equal(s.state, SASL_STATE_IDLE);
    /* a new start drops the previous credentials too */
    assert_done(plain(B64("\0alice\0secret")), "", "alice", "secret");
    assert_int_equal(sasl_start(&s, STR_LIT("LOGIN"), STR_LIT(""), false), SASL_CONTINUE);
    assert_string_equal(s.password, "");
    assert_string_equal(s.authcid, "");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_plain_initial_response, setup),
        cmocka_unit_test_setup(test_plain_without_initial_response, setup),
        cmocka_unit_test_setup(test_plain_equals_then_message, setup),
        cmocka_unit_test_setup(test_login_two_steps, setup),
        cmocka_unit_test_setup(test_login_initial_response_is_user, setup),
        cmocka_unit_test_setup(test_login_empty_fields, setup),
        cmocka_unit_test_setup(test_cancel, setup),
        cmocka_unit_test_setup(test_bad_base64, setup),
        cmocka_unit_test_setup(test_base64_decode, setup),
        cmocka_unit_test_setup(test_base64_encode, setup),
        cmocka_unit_test_setup(test_field_limits, setup),
        cmocka_unit_test_setup(test_login_field_limits, setup),
        cmocka_unit_test_setup(test_login_limits_exceeded, setup),
        cmocka_unit_test_setup(test_line_too_long, setup),
        cmocka_unit_test_setup(test_plain_malformed, setup),
        cmocka_unit_test_setup(test_login_nul_in_user, setup),
        cmocka_unit_test_setup(test_authzid_rules, setup),
        cmocka_unit_test_setup(test_unknown_mechanism, setup),
        cmocka_unit_test_setup(test_mechanism_case, setup),
        cmocka_unit_test_setup(test_step_without_exchange, setup),
        cmocka_unit_test_setup(test_clear_wipes, setup),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
