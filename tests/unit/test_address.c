/*
 * smtp_path_parse / smtp_path_format: RFC 5321 4.1.2 paths, limits of
 * 4.5.3.1, SMTPUTF8 (RFC 6531). Every input is copied into a heap block of
 * exactly its length, so ASan catches any read past in.len.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "smtp/smtp_address.h"

#define S SMTP_PATH_SENDER
#define R SMTP_PATH_RECIPIENT

static char *exact; /* the current input, exactly sized */
static struct smtp_path path;
static struct str rest;
static struct smtp_reply err;

static int
parse_n(const char *in, size_t n, enum smtp_path_kind kind, bool utf8_ok)
{
    free(exact);
    exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, in, n);
    memset(&err, 0, sizeof(err));
    return smtp_path_parse(str_make(exact, n), kind, utf8_ok, &path, &rest, &err);
}

static int
parse(const char *in, enum smtp_path_kind kind, bool utf8_ok)
{
    return parse_n(in, strlen(in), kind, utf8_ok);
}

static int
teardown(void **state)
{
    (void)state;
    free(exact);
    exact = NULL;
    return 0;
}

static void
expect_ok(const char *in, enum smtp_path_kind kind, const char *local, const char *domain)
{
    if (parse(in, kind, false) != 0)
        fail_msg("'%s' refused: %d %s %s", in, err.code, err.status, err.text);
    assert_string_equal(path.local, local);
    assert_string_equal(path.domain, domain);
}

static void
expect_err_n(const char *in, size_t n, enum smtp_path_kind kind, bool utf8_ok, const char *status,
             const char *text)
{
    if (parse_n(in, n, kind, utf8_ok) != -1)
        fail_msg("'%.*s' accepted", (int)n, in);
    assert_int_equal(err.code, 501);
    assert_string_equal(err.status, status);
    if (strstr(err.text, text) == NULL)
        fail_msg("'%.*s': text '%s' lacks '%s'", (int)n, in, err.text, text);
}

/* For inputs holding NULs or non-ASCII: the length comes from the literal. */
#define EXPECT_ERR_LIT(lit, kind, utf8_ok, status, text)                                           \
    expect_err_n((lit), sizeof(lit) - 1, (kind), (utf8_ok), (status), (text))

static void
expect_err(const char *in, enum smtp_path_kind kind, const char *text)
{
    expect_err_n(in, strlen(in), kind, false, kind == S ? "5.1.7" : "5.1.3", text);
}

/* A syntactically valid domain of exactly n octets. */
static void
make_domain(char *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (i % 10 == 9) ? '.' : 'a';
    if (n > 0 && out[n - 1] == '.')
        out[n - 1] = 'b';
    out[n] = '\0';
}

static void
make_run(char *out, char c, size_t n)
{
    memset(out, c, n);
    out[n] = '\0';
}

static void
test_simple_paths(void **state)
{
    (void)state;
    expect_ok("<a@b>", S, "a", "b");
    expect_ok("<a@b>", R, "a", "b");
    expect_ok("<user.name+tag@example.com>", S, "user.name+tag", "example.com");
    expect_ok("<x@a-b.c1.example>", R, "x", "a-b.c1.example");
    expect_ok("<!#$%&'*+-/=?^_`{|}~@example.org>", R, "!#$%&'*+-/=?^_`{|}~", "example.org");
    expect_ok("<User@Example.COM>", S, "User", "Example.COM");
    expect_ok("<1@2.3>", S, "1", "2.3");
    assert_false(path.null || path.quoted || path.literal || path.had_route || path.utf8);
    assert_false(path.no_domain);
}

static void
test_leading_spaces_and_rest(void **state)
{
    (void)state;
    expect_ok("   <a@b>", S, "a", "b");
    assert_int_equal(rest.len, 0);
    expect_ok("<a@b> SIZE=10 BODY=8BITMIME", S, "a", "b");
    assert_int_equal(rest.len, 22);
    assert_memory_equal(rest.ptr, " SIZE=10 BODY=8BITMIME", 22);
    assert_ptr_equal(rest.ptr, exact + 5);
    expect_ok("<a@b>  ", R, "a", "b");
    assert_int_equal(rest.len, 2);
    expect_err("\t<a@b>", S, "enclosed");
}

static void
test_missing_brackets(void **state)
{
    (void)state;
    expect_err("a@b", S, "enclosed in '<' and '>'");
    expect_err("a@b>", R, "enclosed");
    expect_err("<a@b", S, "missing '>'");
    expect_err("<a", R, "missing '>'");
    expect_err("<", S, "missing '>'");
    expect_err("", S, "missing address");
    expect_err("   ", R, "missing address");
    expect_err("<\"a\"@b", S, "missing '>'");
}

static void
test_trailing_garbage(void **state)
{
    (void)state;
    expect_err("<a@b>x", S, "unexpected text after '>'");
    expect_err("<a@b>>", R, "unexpected text after '>'");
    expect_err("<a@b>\r", S, "control character after '>'");
    /* a second path is the parameter parser's business */
    expect_ok("<a@b> <c@d>", S, "a", "b");
    assert_int_equal(rest.len, 6);
}

static void
test_null_path(void **state)
{
    (void)state;
    assert_int_equal(parse("<>", S, false), 0);
    assert_true(path.null);
    assert_string_equal(path.local, "");
    assert_string_equal(path.domain, "");
    assert_int_equal(parse(" <> SIZE=1", S, true), 0);
    assert_true(path.null);
    assert_int_equal(rest.len, 7);
    expect_err("<>", R, "null path");
    expect_err("< >", S, "unexpected ' ' in local part");
}

static void
test_postmaster(void **state)
{
    (void)state;
    expect_ok("<Postmaster>", R, "Postmaster", "");
    assert_true(path.no_domain);
    expect_ok("<pOSTMASTER>", R, "Postmaster", "");
    assert_true(path.no_domain);
    expect_ok("<postmaster@example.com>", R, "postmaster", "example.com");
    assert_false(path.no_domain);
    expect_ok("<Postmaster@example.com>", S, "Postmaster", "example.com");
    expect_err("<Postmaster>", S, "missing '@domain'");
    expect_err("<Postmasters>", R, "missing '@domain'");
    expect_err("<\"Postmaster\">", R, "missing '@domain'");
    expect_err("<@a:Postmaster>", R, "missing '@domain'");
}

static void
test_quoted_local(void **state)
{
    (void)state;
    expect_ok("<\"john doe\"@example.com>", S, "john doe", "example.com");
    assert_true(path.quoted);
    expect_ok("<\"a\\\"b\\\\c\"@x>", R, "a\"b\\c", "x");
    expect_ok("<\"\\a\\b\"@x>", R, "ab", "x");
    expect_ok("<\"\"@x>", S, "", "x");
    expect_ok("<\"a@b<c>d,e:f\"@x>", S, "a@b<c>d,e:f", "x");
    expect_ok("<\"a..b\"@x>", S, "a..b", "x");
    expect_err("<\"abc@x>", S, "unterminated quoted string");
    expect_err("<\"abc\\", S, "unterminated quoted string");
    expect_err("<\"a\tb\"@x>", R, "control character in quoted string");
    expect_err("<\"a\\\tb\"@x>", R, "control character in quoted pair");
    expect_err("<\"a\"b@x>", S, "unexpected 'b' in local part");
    expect_err("<a\"b\"@x>", S, "unexpected '\"' in local part");
}

static void
test_dot_string_errors(void **state)
{
    (void)state;
    expect_err("<.a@b>", S, "misplaced '.' in local part");
    expect_err("<a.@b>", R, "misplaced '.' in local part");
    expect_err("<a..b@c>", S, "misplaced '.' in local part");
    expect_err("<a b@c>", S, "unexpected ' ' in local part");
    expect_err("<a(b)@c>", R, "unexpected '(' in local part");
    expect_err("<a>", S, "missing '@domain'");
    expect_err("<@a:>", S, "missing local part");
    expect_err("<a,b@c>", S, "unexpected ',' in local part");
    expect_err("<a\\b@c>", S, "unexpected '\\' in local part");
}

static void
test_domain_errors(void **state)
{
    (void)state;
    expect_err("<a@>", S, "missing domain");
    expect_err("<a@b.>", S, "trailing '.' in domain");
    expect_err("<a@.b>", R, "empty label in domain");
    expect_err("<a@b..c>", R, "empty label in domain");
    expect_err("<a@-b>", S, "starts or ends with '-'");
    expect_err("<a@b->", S, "starts or ends with '-'");
    expect_err("<a@b.-c.d>", S, "starts or ends with '-'");
    expect_err("<a@b_c>", R, "unexpected '_' in domain");
    expect_err("<a@b c>", R, "unexpected ' ' in domain");
    expect_err("<a@b@c>", S, "unexpected '@' in domain");
    expect_err("<a@_b>", S, "unexpected '_' in domain");
    expect_ok("<a@b--c.d>", S, "a", "b--c.d");
    expect_ok("<a@xn--bcher-kva.example>", S, "a", "xn--bcher-kva.example");
}

static void
test_source_route(void **state)
{
    (void)state;
    expect_ok("<@a.example,@b.example:user@c.example>", R, "user", "c.example");
    assert_true(path.had_route);
    expect_ok("<@a.example:u@c>", S, "u", "c");
    assert_true(path.had_route);
    expect_err("<@a.example>", S, "missing ':' after source route");
    expect_err("<@a.example,u@c>", S, "unexpected 'u' in source route");
    expect_err("<@:u@c>", S, "missing domain");
    expect_err("<@a,:u@c>", R, "unexpected ':' in source route");
    expect_err("<@a.:u@c>", R, "trailing '.' in domain");
    expect_err("<@a", R, "missing '>'");
    expect_err("<@a,", R, "missing '>'");
    expect_err("<@[1.2.3.4]:u@c>", R, "unexpected '[' in domain");
}

static void
test_address_literals(void **state)
{
    (void)state;
    expect_ok("<u@[192.0.2.1]>", S, "u", "[192.0.2.1]");
    assert_true(path.literal);
    expect_ok("<u@[0.0.0.0]>", S, "u", "[0.0.0.0]");
    expect_ok("<u@[255.255.255.255]>", S, "u", "[255.255.255.255]");
    expect_ok("<u@[001.002.003.004]>", S, "u", "[001.002.003.004]");
    expect_ok("<u@[IPv6:2001:db8::1]>", R, "u", "[IPv6:2001:db8::1]");
    expect_ok("<u@[ipv6:::1]>", R, "u", "[ipv6:::1]");
    expect_ok("<u@[IPv6:::ffff:192.0.2.1]>", R, "u", "[IPv6:::ffff:192.0.2.1]");
    expect_ok("<u@[IPv6:1:2:3:4:5:6:7:8]>", R, "u", "[IPv6:1:2:3:4:5:6:7:8]");
}

static void
test_bad_address_literals(void **state)
{
    (void)state;
    expect_err("<u@[256.0.0.1]>", S, "bad IPv4 address literal");
    expect_err("<u@[1.2.3]>", S, "bad IPv4 address literal");
    expect_err("<u@[1.2.3.4.5]>", S, "bad IPv4 address literal");
    expect_err("<u@[1..2.3]>", S, "bad IPv4 address literal");
    expect_err("<u@[0001.2.3.4]>", S, "bad IPv4 address literal");
    expect_err("<u@[]>", S, "bad IPv4 address literal");
    expect_err("<u@[a.b.c.d]>", S, "bad IPv4 address literal");
    expect_err("<u@[IPv6:2001:db8::g]>", R, "bad IPv6 address literal");
    expect_err("<u@[IPv6:1:2:3:4:5:6:7:8:9]>", R, "bad IPv6 address literal");
    expect_err("<u@[IPv6:]>", R, "bad IPv6 address literal");
    expect_err("<u@[IPv6:fe80::1%eth0]>", R, "bad IPv6 address literal");
    expect_err("<u@[IPv6:"
               "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb]>",
               R, "bad IPv6 address literal");
    expect_err("<u@[x400:c=us;a=b]>", R, "unsupported address literal");
    expect_err("<u@[192.0.2.1>", S, "missing ']'"); /* '>' is dcontent */
    expect_err("<u@[192.0.2.1", S, "missing ']'");
    expect_err("<u@[192.0.2.1]x>", S, "unexpected 'x' in address literal");
    expect_err("<u@[1.2 .3.4]>", S, "unexpected ' ' in address literal");
    expect_err("<u@[1.2[.3.4]>", S, "unexpected '[' in address literal");
}

static void
test_local_part_limit(void **state)
{
    char local[80], in[200];

    (void)state;
    make_run(local, 'l', 64);
    snprintf(in, sizeof(in), "<%s@x>", local);
    expect_ok(in, S, local, "x");
    make_run(local, 'l', 65);
    snprintf(in, sizeof(in), "<%s@x>", local);
    expect_err(in, S, "local part longer than 64 octets");
    expect_err(in, R, "local part longer than 64 octets");
    /* as written: the quotes count */
    make_run(local, 'q', 62);
    snprintf(in, sizeof(in), "<\"%s\"@x>", local);
    expect_ok(in, R, local, "x");
    make_run(local, 'q', 63);
    snprintf(in, sizeof(in), "<\"%s\"@x>", local);
    expect_err(in, R, "local part longer than 64 octets");
}

static void
test_domain_limit(void **state)
{
    char domain[300], in[400];

    (void)state;
    make_domain(domain, 256);
    snprintf(in, sizeof(in), "<a@%s>", domain);
    expect_err(in, S, "domain longer than 255 octets");
    /* 255 octets fit the domain limit; the path limit (256) then bites */
    make_domain(domain, 255);
    snprintf(in, sizeof(in), "<a@%s>", domain);
    expect_err(in, R, "Path too long");
    make_domain(domain, 252);
    snprintf(in, sizeof(in), "<a@%s>", domain);
    expect_ok(in, R, "a", domain);
    make_domain(domain, 256);
    snprintf(in, sizeof(in), "<@%s:a@b>", domain);
    expect_err(in, S, "domain longer than 255 octets");
}

static void
test_path_limit(void **state)
{
    char local[80], domain[300], in[400];

    (void)state;
    make_run(local, 'l', 64);
    make_domain(domain, 189); /* 1 + 64 + 1 + 189 + 1 = 256 */
    snprintf(in, sizeof(in), "<%s@%s>", local, domain);
    expect_ok(in, S, local, domain);
    make_domain(domain, 190);
    snprintf(in, sizeof(in), "<%s@%s>", local, domain);
    expect_err(in, S, "Path too long");
    assert_string_equal(err.text, "Path too long");
    expect_err(in, R, "Path too long");
    /* the dropped source route counts too */
    make_domain(domain, 249); /* 2 + 249 + 1 + 3 + 1 = 256 */
    snprintf(in, sizeof(in), "<@%s:a@b>", domain);
    expect_ok(in, S, "a", "b");
    make_domain(domain, 250);
    snprintf(in, sizeof(in), "<@%s:a@b>", domain);
    expect_err(in, S, "Path too long");
}

static void
test_utf8_accepted(void **state)
{
    (void)state;
    assert_int_equal(parse("<\xe7\x94\xa8\xe6\x88\xb7@\xe4\xbe\x8b\xe5\xad\x90.\xe5\xb9\xbf"
                           "\xe5\x91\x8a>",
                           S, true),
                     0);
    assert_true(path.utf8);
    assert_string_equal(path.local, "\xe7\x94\xa8\xe6\x88\xb7");
    assert_int_equal(parse("<j\xc3\xb6rg@b\xc3\xbc\x63her.example>", R, true), 0);
    assert_true(path.utf8);
    assert_int_equal(parse("<\"\xc3\xbc x\"@b>", R, true), 0);
    assert_true(path.quoted && path.utf8);
    assert_int_equal(parse("<a@b>", S, true), 0);
    assert_false(path.utf8);
    /* boundaries: U+0080, U+D7FF, U+E000, U+FFFF, U+10000, U+10FFFF */
    assert_int_equal(parse("<\xc2\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf@b>", S, true), 0);
    assert_int_equal(parse("<\xf0\x90\x80\x80\xf4\x8f\xbf\xbf@b>", S, true), 0);
    assert_int_equal(parse("<a@\xc3\xbc>", S, true), 0);
}

static void
test_utf8_rejected(void **state)
{
    (void)state;
    EXPECT_ERR_LIT("<\xc3\xbc@b>", S, false, "5.6.7", "SMTPUTF8");
    EXPECT_ERR_LIT("<a@\xc3\xbc>", R, false, "5.6.7", "SMTPUTF8");
    EXPECT_ERR_LIT("<\"\xc3\xbc\"@b>", R, false, "5.6.7", "SMTPUTF8");
    EXPECT_ERR_LIT("<@\xc3\xbc:a@b>", R, false, "5.6.7", "SMTPUTF8");
    EXPECT_ERR_LIT("<u@[\xc3\xbc]>", S, false, "5.6.7", "SMTPUTF8");
    EXPECT_ERR_LIT("<\"a\\\xc3\xbc\"@b>", S, false, "5.6.7", "SMTPUTF8");
    assert_int_equal(err.code, 501);
}

static void
test_utf8_malformed(void **state)
{
    static const char *const bad[] = {
        "<\xc0\xaf@b>",         /* overlong '/' */
        "<\xc1\xbf@b>",         /* overlong */
        "<\xe0\x80\xaf@b>",     /* overlong 3-byte */
        "<\xf0\x80\x80\xaf@b>", /* overlong 4-byte */
        "<\xed\xa0\x80@b>",     /* surrogate U+D800 */
        "<\xed\xbf\xbf@b>",     /* surrogate U+DFFF */
        "<\xf4\x90\x80\x80@b>", /* U+110000 */
        "<\xf5\x80\x80\x80@b>", /* invalid lead */
        "<\xff@b>",             /* invalid lead */
        "<\x80@b>",             /* lone continuation */
        "<\xe4\xbd@b>",         /* truncated */
        "<\xc3@b>",             /* truncated */
        "<a@\xc3(>",            /* bad continuation in domain */
        "<\"\xe4\xbd\"@b>",     /* truncated in quoted string */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_err_n(bad[i], strlen(bad[i]), i % 2 ? S : R, true, i % 2 ? "5.1.7" : "5.1.3",
                     "malformed UTF-8");
    EXPECT_ERR_LIT("<a@b\xc3", S, true, "5.1.7", "malformed UTF-8");
    EXPECT_ERR_LIT("<u@[\xc3\xbc]>", S, true, "5.1.7", "unexpected octet 0xC3");
    EXPECT_ERR_LIT("<\"a\\\xc3\xbc\"@b>", S, true, "5.1.7", "unexpected octet 0xC3");
}

static void
test_control_characters(void **state)
{
    (void)state;
    EXPECT_ERR_LIT("<a\0b@c>", S, false, "5.1.7", "control character in local part");
    EXPECT_ERR_LIT("<a@b\0c>", R, false, "5.1.3", "control character in domain");
    EXPECT_ERR_LIT("<a@b>\0", S, false, "5.1.7", "control character after '>'");
    EXPECT_ERR_LIT("<\"a\0\"@c>", S, true, "5.1.7", "control character in quoted string");
    EXPECT_ERR_LIT("<a@[1.2.3.4\0]>", S, false, "5.1.7", "control character in address lit");
    EXPECT_ERR_LIT("<a\r\n@c>", S, false, "5.1.7", "control character");
    EXPECT_ERR_LIT("<a@c\n>", R, false, "5.1.3", "control character");
    EXPECT_ERR_LIT("<a\x7f@c>", R, false, "5.1.3", "control character");
    EXPECT_ERR_LIT("\0<a@c>", R, false, "5.1.3", "enclosed");
}

static void
test_never_reads_past_len(void **state)
{
    (void)state;
    /* the bytes after len would make it valid: they must not be seen */
    expect_err_n("<a@b>", 4, S, false, "5.1.7", "missing '>'");
    expect_err_n("<a@b.c>", 5, S, false, "5.1.7", "missing '>'");
    expect_err_n("<Postmaster>", 11, R, false, "5.1.3", "missing '>'");
    expect_err_n("<\xc3\xbc@b>", 2, S, true, "5.1.7", "malformed UTF-8");
    expect_err_n("<u@[IPv6:::1]>", 12, R, false, "5.1.3", "missing ']'");
    assert_int_equal(parse_n("<>", 2, S, false), 0);
    assert_int_equal(parse_n("<a@b>", 5, S, false), 0);
}

static void
check_format(const char *in, enum smtp_path_kind kind, const char *want)
{
    char buf[600];

    if (parse(in, kind, true) != 0)
        fail_msg("'%s' refused: %s", in, err.text);
    assert_int_equal(smtp_path_format(&path, buf, sizeof(buf)), (int)strlen(want));
    assert_string_equal(buf, want);
}

static void
test_format(void **state)
{
    (void)state;
    check_format("<a@b>", S, "a@b");
    check_format("<>", S, "");
    check_format("<postmaster>", R, "Postmaster");
    check_format("<\"john doe\"@x>", S, "\"john doe\"@x");
    check_format("<\"a\\\"b\\\\c\"@x>", S, "\"a\\\"b\\\\c\"@x");
    check_format("<\"abc\"@x>", S, "abc@x");
    check_format("<\"\\a\\.b\"@x>", S, "a.b@x");
    check_format("<\".a\"@x>", S, "\".a\"@x");
    check_format("<\"a.\"@x>", S, "\"a.\"@x");
    check_format("<\"a..b\"@x>", S, "\"a..b\"@x");
    check_format("<\"\"@x>", S, "\"\"@x");
    check_format("<@r1,@r2:u@[192.0.2.1]>", R, "u@[192.0.2.1]");
    check_format("<\xc3\xbc@\xc3\xbc.de>", R, "\xc3\xbc@\xc3\xbc.de");
    check_format("<\"\xc3\xbc x\"@b>", R, "\"\xc3\xbc x\"@b");
}

static void
test_format_buffer_size(void **state)
{
    char buf[16];

    (void)state;
    assert_int_equal(parse("<abc@def>", S, false), 0);
    assert_int_equal(smtp_path_format(&path, buf, 8), 7);
    assert_string_equal(buf, "abc@def");
    assert_int_equal(smtp_path_format(&path, buf, 7), -1);
    assert_int_equal(smtp_path_format(&path, buf, 1), -1);
    assert_int_equal(smtp_path_format(&path, buf, 0), -1);
    assert_int_equal(parse("<>", S, false), 0);
    assert_int_equal(smtp_path_format(&path, buf, 1), 0);
    assert_string_equal(buf, "");
    assert_int_equal(parse("<\"a b\"@c>", S, false), 0);
    assert_int_equal(smtp_path_format(&path, buf, 8), 7);
    assert_int_equal(smtp_path_format(&path, buf, 7), -1);
}

static void
round_trip(const char *in, enum smtp_path_kind kind)
{
    struct smtp_path first;
    char text[600], again[604];

    if (parse(in, kind, true) != 0)
        fail_msg("'%s' refused: %s", in, err.text);
    first = path;
    assert_true(smtp_path_format(&first, text, sizeof(text)) >= 0);
    snprintf(again, sizeof(again), "<%s>", text);
    if (parse(again, kind, true) != 0)
        fail_msg("'%s' -> '%s' refused: %s", in, again, err.text);
    assert_string_equal(path.local, first.local);
    assert_string_equal(path.domain, first.domain);
    assert_int_equal(path.null, first.null);
    assert_int_equal(path.no_domain, first.no_domain);
}

static void
test_format_round_trip(void **state)
{
    char local[80], domain[300], in[400];

    (void)state;
    round_trip("<a@b>", S);
    round_trip("<>", S);
    round_trip("<POSTMASTER>", R);
    round_trip("<\"\\\"\\\\\\ \"@x>", R);
    round_trip("<\"a\\b\"@x>", R);
    round_trip("<@a,@b:c@[IPv6:::1]>", R);
    round_trip("<\"\xe4\xbd\xa0 \\\"\"@\xe4\xbd\xa0.cn>", S);
    /* 31 escaped quotes: 64 octets as written, longest quoted form */
    make_run(local, '"', 31);
    in[0] = '<';
    in[1] = '"';
    for (int i = 0; i < 31; i++)
        memcpy(in + 2 + 2 * i, "\\\"", 2);
    memcpy(in + 64, "\"@x>", sizeof("\"@x>"));
    round_trip(in, S);
    assert_string_equal(path.local, local);
    make_run(local, 'l', 64);
    make_domain(domain, 189);
    snprintf(in, sizeof(in), "<%s@%s>", local, domain);
    round_trip(in, R);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_simple_paths, teardown),
        cmocka_unit_test_teardown(test_leading_spaces_and_rest, teardown),
        cmocka_unit_test_teardown(test_missing_brackets, teardown),
        cmocka_unit_test_teardown(test_trailing_garbage, teardown),
        cmocka_unit_test_teardown(test_null_path, teardown),
        cmocka_unit_test_teardown(test_postmaster, teardown),
        cmocka_unit_test_teardown(test_quoted_local, teardown),
        cmocka_unit_test_teardown(test_dot_string_errors, teardown),
        cmocka_unit_test_teardown(test_domain_errors, teardown),
        cmocka_unit_test_teardown(test_source_route, teardown),
        cmocka_unit_test_teardown(test_address_literals, teardown),
        cmocka_unit_test_teardown(test_bad_address_literals, teardown),
        cmocka_unit_test_teardown(test_local_part_limit, teardown),
        cmocka_unit_test_teardown(test_domain_limit, teardown),
        cmocka_unit_test_teardown(test_path_limit, teardown),
        cmocka_unit_test_teardown(test_utf8_accepted, teardown),
        cmocka_unit_test_teardown(test_utf8_rejected, teardown),
        cmocka_unit_test_teardown(test_utf8_malformed, teardown),
        cmocka_unit_test_teardown(test_control_characters, teardown),
        cmocka_unit_test_teardown(test_never_reads_past_len, teardown),
        cmocka_unit_test_teardown(test_format, teardown),
        cmocka_unit_test_teardown(test_format_buffer_size, teardown),
        cmocka_unit_test_teardown(test_format_round_trip, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
