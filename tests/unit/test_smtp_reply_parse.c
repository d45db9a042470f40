/*
 * The client-side reply parser: single and multi-line replies, enhanced
 * status codes (kept only when well-formed and of the reply's class,
 * interned as static strings), malformed lines, and the bounds on line
 * length and line count.
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

#include "smtp/smtp_reply_parse.h"

static struct smtp_reply_parser rp;
static struct smtp_reply_line line;

static enum smtp_reply_result
feed(const char *s, size_t *used)
{
    return smtp_reply_parser_feed(&rp, s, strlen(s), used, &line);
}

/* Feeds a whole reply; asserts each line is taken and the last ends it. */
static void
feed_reply(const char *s)
{
    size_t n = strlen(s), pos = 0, used;

    while (pos < n) {
        enum smtp_reply_result r = smtp_reply_parser_feed(&rp, s + pos, n - pos, &used, &line);

        assert_true(r == SMTP_REPLY_LINE || r == SMTP_REPLY_DONE);
        pos += used;
        assert_int_equal(r == SMTP_REPLY_DONE, pos == n);
    }
}

static int
setup(void **state)
{
    (void)state;
    smtp_reply_parser_init(&rp);
    return 0;
}

static bool
slice_is(struct str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static void
test_line_parts(void **state)
{
    (void)state;
    assert_int_equal(smtp_reply_line_parse(STR_LIT("250 2.1.5  Ok, fine"), &line), 0);
    assert_int_equal(line.code, 250);
    assert_true(line.last);
    assert_true(slice_is(line.text, "2.1.5  Ok, fine"));
    assert_true(slice_is(line.status, "2.1.5"));
    assert_true(slice_is(line.msg, "Ok, fine"));

    assert_int_equal(smtp_reply_line_parse(STR_LIT("550-mailbox unavailable"), &line), 0);
    assert_int_equal(line.code, 550);
    assert_false(line.last);
    assert_int_equal(line.status.len, 0);
    assert_true(slice_is(line.msg, "mailbox unavailable"));

    /* RFC 5321 4.2: the bare code is a valid last line */
    assert_int_equal(smtp_reply_line_parse(STR_LIT("354"), &line), 0);
    assert_int_equal(line.code, 354);
    assert_true(line.last);
    assert_int_equal(line.text.len, 0);

    assert_int_equal(smtp_reply_line_parse(STR_LIT("250 "), &line), 0);
    assert_true(line.last);
    assert_int_equal(line.text.len, 0);
    assert_int_equal(smtp_reply_line_parse(STR_LIT("250 5.0.0"), &line), 0);
    assert_int_equal(line.status.len, 0); /* wrong class: just text */
    assert_int_equal(smtp_reply_line_parse(STR_LIT("421 4.7.0"), &line), 0);
    assert_true(slice_is(line.status, "4.7.0"));
    assert_int_equal(line.msg.len, 0);
}

static void
test_line_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "2",
        "25",
        "25 ok",
        "2500 ok",
        "250x ok",
        "250_ok",
        "abc",
        " 250 ok",
        "650 ok",
        "150 ok",
        "050 ok",
        "2a0 ok",
        "25a ok",
        "250\tok",
        "-250 ok",
        "\xff"
        "50 ok",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(smtp_reply_line_parse(str_cstr(bad[i]), &line), -1);
}

static void
test_status_forms(void **state)
{
    static const struct {
        const char *line;
        const char *status; /* "" = none found */
    } cases[] = {
        {"250 2.1.5 Ok", "2.1.5"}, {"250 2.1.5", "2.1.5"}, {"550 5.123.456 x", "5.123.456"},
        {"550 5.1 x", ""},         {"550 5.1. x", ""},     {"550 5..1 x", ""},
        {"550 5.1.1x", ""},        {"550 5.1.1.1 x", ""},  {"550 5.1234.1 x", ""},
        {"550 5.1.1234 x", ""},    {"550 4.1.1 x", ""},    {"450 5.1.1 x", ""},
        {"354 3.0.0 go", ""},      {"550 x5.1.1", ""},     {"550 5-1-1 x", ""},
        {"550 5.1.1\tx", ""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(smtp_reply_line_parse(str_cstr(cases[i].line), &line), 0);
        if (!slice_is(line.status, cases[i].status))
            fail_msg("%s: status %.*s, want %s", cases[i].line, (int)line.status.len,
                     line.status.ptr, cases[i].status);
    }
}

static void
test_status_interned(void **state)
{
    (void)state;
    assert_string_equal(smtp_reply_status(550, STR_LIT("5.1.1")), "5.1.1");
    assert_string_equal(smtp_reply_status(550, STR_LIT("5.01.001")), "5.1.1");
    assert_string_equal(smtp_reply_status(550, STR_LIT("5.7.26")), "5.7.26");
    assert_string_equal(smtp_reply_status(451, STR_LIT("4.9.99")), "4.9.99");
    assert_string_equal(smtp_reply_status(250, STR_LIT("2.0.0")), "2.0.0");
    /* beyond the table, and absent: the class alone (RFC 3463 3.1) */
    assert_string_equal(smtp_reply_status(550, STR_LIT("5.10.1")), "5.0.0");
    assert_string_equal(smtp_reply_status(550, STR_LIT("5.1.100")), "5.0.0");
    assert_string_equal(smtp_reply_status(451, STR_LIT("")), "4.0.0");
    assert_null(smtp_reply_status(354, STR_LIT("")));
    /* the same string every time: a static, not a copy */
    assert_ptr_equal(smtp_reply_status(550, STR_LIT("5.1.1")),
                     smtp_reply_status(550, STR_LIT("5.1.1")));
}

static void
test_single_line_reply(void **state)
{
    size_t used;

    (void)state;
    assert_int_equal(feed("250 2.1.5 Recipient ok\r\n", &used), SMTP_REPLY_DONE);
    assert_int_equal(used, 24);
    assert_int_equal(rp.reply.code, 250);
    assert_string_equal(rp.reply.status, "2.1.5");
    assert_string_equal(rp.reply.text, "Recipient ok");
    assert_int_equal(rp.nlines, 1);
    assert_true(rp.complete);

    assert_int_equal(feed("220 mx.example.org ESMTP\r\n", &used), SMTP_REPLY_DONE);
    assert_string_equal(rp.reply.status, "2.0.0"); /* none given */
    assert_string_equal(rp.reply.text, "mx.example.org ESMTP");

    assert_int_equal(feed("354 go ahead\n", &used), SMTP_REPLY_DONE); /* bare LF */
    assert_int_equal(used, 13);
    assert_null(rp.reply.status);
    assert_string_equal(rp.reply.text, "go ahead");
}

static void
test_multi_line_reply(void **state)
{
    size_t used;

    (void)state;
    assert_int_equal(feed("550-5.1.1 The email account\r\n550 5.1.1 does not exist\r\n", &used),
                     SMTP_REPLY_LINE);
    assert_int_equal(used, 29);
    assert_int_equal(rp.nlines, 1);
    assert_false(rp.complete);
    assert_int_equal(feed("550 5.1.1 does not exist\r\n", &used), SMTP_REPLY_DONE);
    assert_int_equal(rp.nlines, 2);
    assert_int_equal(rp.reply.code, 550);
    assert_string_equal(rp.reply.status, "5.1.1");
    assert_string_equal(rp.reply.text, "The email account does not exist");

    /* the next reply starts afresh */
    feed_reply("250-first\r\n250-\r\n250 last\r\n");
    assert_int_equal(rp.nlines, 3);
    assert_string_equal(rp.reply.text, "first last");
    feed_reply("421 4.3.2 bye\r\n");
    assert_int_equal(rp.nlines, 1);
    assert_string_equal(rp.reply.text, "bye");
}

static void
test_continuation_code_mismatch(void **state)
{
    size_t used;

    (void)state;
    assert_int_equal(feed("250-one\r\n", &used), SMTP_REPLY_LINE);
    assert_int_equal(feed("251 two\r\n", &used), SMTP_REPLY_BAD);
    assert_int_equal(used, 0);
}

static void
test_partial_line(void **state)
{
    size_t used;

    (void)state;
    assert_int_equal(feed("", &used), SMTP_REPLY_AGAIN);
    assert_int_equal(feed("250 no line end", &used), SMTP_REPLY_AGAIN);
    assert_int_equal(used, 0);
    assert_int_equal(feed("250 ok\r", &used), SMTP_REPLY_AGAIN);
    assert_int_equal(feed("\r\n", &used), SMTP_REPLY_BAD); /* an empty line */
}

static void
test_text_sanitized_and_cut(void **state)
{
    char big[600];
    size_t used;

    (void)state;
    assert_int_equal(smtp_reply_parser_feed(&rp, "250 a\tb\0c\x7f\x01\r\n", 13, &used, &line),
                     SMTP_REPLY_DONE);
    assert_string_equal(rp.reply.text, "a?b?c??");
    assert_int_equal(feed("250 caf\xc3\xa9\r\n", &used), SMTP_REPLY_DONE);
    assert_string_equal(rp.reply.text, "caf\xc3\xa9"); /* UTF-8 kept (RFC 6531) */

    memset(big, 'x', sizeof(big));
    memcpy(big, "250-", 4);
    memcpy(big + sizeof(big) - 2, "\r\n", 2);
    assert_int_equal(smtp_reply_parser_feed(&rp, big, sizeof(big), &used, &line), SMTP_REPLY_LINE);
    big[3] = ' ';
    assert_int_equal(smtp_reply_parser_feed(&rp, big, sizeof(big), &used, &line), SMTP_REPLY_DONE);
    assert_int_equal(strlen(rp.reply.text), sizeof(rp.reply.text) - 1);
}

static void
test_line_length_bound(void **state)
{
    static char in[SMTP_REPLY_LINE_MAX + 8];
    size_t used;

    (void)state;
    memset(in, 'x', sizeof(in));
    memcpy(in, "250 ", 4);
    /* exactly the limit, CRLF included */
    memcpy(in + SMTP_REPLY_LINE_MAX - 2, "\r\n", 2);
    assert_int_equal(smtp_reply_parser_feed(&rp, in, SMTP_REPLY_LINE_MAX, &used, &line),
                     SMTP_REPLY_DONE);
    assert_int_equal(used, SMTP_REPLY_LINE_MAX);
    /* one more and no line end in sight within the limit */
    memset(in, 'x', sizeof(in));
    memcpy(in, "250 ", 4);
    memcpy(in + SMTP_REPLY_LINE_MAX - 1, "\r\n", 2);
    assert_int_equal(smtp_reply_parser_feed(&rp, in, SMTP_REPLY_LINE_MAX - 1, &used, &line),
                     SMTP_REPLY_AGAIN);
    assert_int_equal(smtp_reply_parser_feed(&rp, in, SMTP_REPLY_LINE_MAX + 1, &used, &line),
                     SMTP_REPLY_TOO_LONG);
    assert_int_equal(used, 0);
}

static void
test_line_count_bound(void **state)
{
    size_t used;

    (void)state;
    for (int i = 0; i < SMTP_REPLY_LINES_MAX - 1; i++)
        assert_int_equal(feed("250-more\r\n", &used), SMTP_REPLY_LINE);
    assert_int_equal(feed("250 last\r\n", &used), SMTP_REPLY_DONE);
    assert_int_equal(rp.nlines, SMTP_REPLY_LINES_MAX);

    for (int i = 0; i < SMTP_REPLY_LINES_MAX; i++)
        assert_int_equal(feed("250-more\r\n", &used), SMTP_REPLY_LINE);
    assert_int_equal(feed("250 last\r\n", &used), SMTP_REPLY_TOO_MANY);
}

static void
test_bare_code_last_line(void **state)
{
    size_t used;

    (void)state;
    assert_int_equal(feed("250-mx.example.org\r\n", &used), SMTP_REPLY_LINE);
    assert_int_equal(feed("250\r\n", &used), SMTP_REPLY_DONE);
    assert_string_equal(rp.reply.text, "mx.example.org");
}

#define T(f) cmocka_unit_test_setup(f, setup)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_line_parts),
        T(test_line_malformed),
        T(test_status_forms),
        T(test_status_interned),
        T(test_single_line_reply),
        T(test_multi_line_reply),
        T(test_continuation_code_mismatch),
        T(test_partial_line),
        T(test_text_sanitized_and_cut),
        T(test_line_length_bound),
        T(test_line_count_bound),
        T(test_bare_code_last_line),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
