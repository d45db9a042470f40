/*
 * The body decoder on its own (smtp_data.c): the DATA terminator and
 * dot-unstuffing, bare CR and LF in normalize and reject mode, the line
 * length and size flags, Received: counting, BDAT mode; and that input split
 * anywhere decodes exactly like one feed. Every piece is copied into a heap
 * block of exactly its length so ASan catches reads past the end.
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

#include "smtp/smtp_data.h"

struct opts {
    bool bdat, binary, reject;
    size_t max_line;
    size_t max_size;
};

struct result {
    struct buf out;
    struct smtp_data d;
    size_t used;
    bool done;
};

static const struct opts data_normalize = {false, false, false, 998, 1 << 20};
static const struct opts data_reject = {false, false, true, 998, 1 << 20};
static const struct opts bdat_normalize = {true, false, false, 998, 1 << 20};

static void
result_begin(const struct opts *o, struct result *r)
{
    buf_init(&r->out, o->max_size);
    smtp_data_begin(&r->d, &r->out, o->bdat, o->binary, o->reject, o->max_line);
    r->used = 0;
    r->done = false;
}

/* Feeds one piece the way the server does: nothing more once done. */
static void
result_feed(struct result *r, const char *p, size_t n)
{
    char *copy;
    size_t used;
    bool done;

    if (r->done)
        return;
    copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, p, n);
    used = smtp_data_feed(&r->d, copy, n, &done);
    free(copy);
    assert_true(used <= n);
    if (!done)
        assert_int_equal(used, n); /* short only at the terminator */
    r->used += used;
    r->done = done;
}

/* Feeds in[0..n) cut at cut (0 or n = one feed); finishes a BDAT body. */
static void
decode_cut(const struct opts *o, const char *in, size_t n, size_t cut, struct result *r)
{
    result_begin(o, r);
    result_feed(r, in, cut);
    result_feed(r, in + cut, n - cut);
    if (o->bdat)
        smtp_data_finish(&r->d);
}

static void
decode(const struct opts *o, const char *in, struct result *r)
{
    size_t n = strlen(in);

    decode_cut(o, in, n, n, r);
}

static void
decode_bytewise(const struct opts *o, const char *in, size_t n, struct result *r)
{
    result_begin(o, r);
    for (size_t i = 0; i < n; i++)
        result_feed(r, in + i, 1);
    if (o->bdat)
        smtp_data_finish(&r->d);
}

static void
expect_out(const struct result *r, const char *want)
{
    size_t n = strlen(want);

    if (r->out.len != n || (n && memcmp(r->out.data, want, n) != 0))
        fail_msg("decoded \"%.*s\" (%zu), want \"%s\" (%zu)", (int)r->out.len,
                 r->out.data ? r->out.data : "", r->out.len, want, n);
}

/* Once too_big, what was kept is a prefix of the message that depends on
 * where the input was cut; the server throws it away (552) in any case. */
static void
assert_same(const struct result *a, const struct result *b, const char *what, size_t at)
{
    if (!a->d.too_big && (a->out.len != b->out.len ||
                          (a->out.len && memcmp(a->out.data, b->out.data, a->out.len) != 0)))
        fail_msg("%s at %zu: output differs", what, at);
    if (a->used != b->used || a->done != b->done)
        fail_msg("%s at %zu: used %zu/%d vs %zu/%d", what, at, a->used, a->done, b->used, b->done);
    if (a->d.size != b->d.size || a->d.received != b->d.received || a->d.too_big != b->d.too_big ||
        a->d.bare_newline != b->d.bare_newline || a->d.long_line != b->d.long_line ||
        a->d.state != b->d.state || a->d.in_header != b->d.in_header ||
        a->d.line_len != b->d.line_len)
        fail_msg("%s at %zu: flags differ", what, at);
}

static void
result_free(struct result *r)
{
    buf_free(&r->out);
}

/* ---- chunk boundaries ---- */

static const char *const split_inputs[] = {
    "Subject: a\r\n\r\nbody\r\n..dot\r\n.\r\ntrailing",
    "Received: x\r\nreceived: y\r\n\r\nReceived: z\r\n.\r\n",
    ".\r\n",
    "\r\n.\r\n",
    "a\n.\r\nb\r\n.\r\n",
    "a\r.\r\nb\r\n.\r\n",
    "a\n.\nb\r\n.\r\n",
    "a\r\n.\rb\r\n.\r\n",
    "a\r\n.\nb\r\n.\r\n",
    "x\r\r\r\n\n\n.\r\r\n.\r\n",
    "0123456789ABCDEF\r\n.0123456789\r\n..\r\n...\r\n.\r\n",
    "0123456789012345678901234567890123456789012345678901234567890123456789\r\n.\r\n",
    "Received: a\rReceived: b\nX: c\r\n\r\n.\r\n",
    "no terminator at all\r\n.",
    "a\r\n.\r",
    /* body lines past the header: whole-line runs, and each kind of line
     * that leaves them (dot, too long, inner CR, bare LF, no end yet) */
    "H: v\r\n\r\nshort\r\nline\r\n0123456789AB\r\nx\ry\r\nz\nw\r\n..d\r\nok\r\n.\r\n",
    "H: v\r\n\r\n\r\n\r\nab\r\n.\r\nafter",
    "H: v\r\n\r\nabc\r\ndef\rghi\r\n\n\r\n.\r\n",
};

static void
check_splits(const struct opts *o, const char *in)
{
    size_t n = strlen(in);
    struct result whole, part;

    decode_cut(o, in, n, n, &whole);
    for (size_t cut = 0; cut <= n; cut++) {
        decode_cut(o, in, n, cut, &part);
        assert_same(&whole, &part, in, cut);
        result_free(&part);
    }
    decode_bytewise(o, in, n, &part);
    assert_same(&whole, &part, in, 1);
    result_free(&part);
    result_free(&whole);
}

static void
test_split_anywhere(void **state)
{
    (void)state;
    for (int bdat = 0; bdat < 2; bdat++) {
        for (int reject = 0; reject < 2; reject++) {
            /* small limits, so the long-line and too-big paths are split too */
            struct opts o = {bdat, false, reject, 10, 64};

            for (size_t i = 0; i < sizeof(split_inputs) / sizeof(split_inputs[0]); i++)
                check_splits(&o, split_inputs[i]);
        }
    }
}

/* Random bodies after a header, from the octets that matter to the decoder
 * (text, '.', CR, LF), in every mode: one feed, random pieces and one octet
 * at a time must decode alike. One feed takes whole lines in runs (memchr);
 * one octet at a time never can, so the two paths are checked against each
 * other on inputs no list above thought of. */
static void
test_random_bodies_decode_alike(void **state)
{
    static const char alphabet[] = "ab.\r\n";
    uint32_t seed = 2463534242u;
    char in[600];

    (void)state;
    for (int round = 0; round < 3000; round++) {
        struct opts o = {round % 2, false, (round / 2) % 2, round % 3 ? 998 : 6, 1 << 20};
        size_t n = 0, cut;
        struct result whole, part;

        n = (size_t)snprintf(in, sizeof(in), "H: v\r\n\r\n");
        for (size_t len = 8 + (seed % 400); n < len; n++) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            /* mostly ordinary lines, so runs of them happen */
            in[n] = seed % 8 < 5    ? alphabet[seed % 2]
                    : seed % 8 == 5 ? '\r'
                                    : alphabet[(seed >> 8) % 5];
            if (in[n] == '\r' && seed % 3 && n + 1 < len)
                in[++n] = '\n';
        }
        in[n] = '\0';
        decode_cut(&o, in, n, n, &whole);
        cut = seed % (n + 1);
        decode_cut(&o, in, n, cut, &part);
        assert_same(&whole, &part, "random cut", cut);
        result_free(&part);
        decode_bytewise(&o, in, n, &part);
        assert_same(&whole, &part, "random bytewise", round);
        result_free(&part);
        result_free(&whole);
    }
}

/* ---- DATA mode ---- */

static void
test_terminator(void **state)
{
    struct result r;

    (void)state;
    decode(&data_normalize, "hello\r\n.\r\nNOOP\r\n", &r);
    assert_true(r.done);
    assert_int_equal(r.used, 10); /* up to and including the terminator */
    expect_out(&r, "hello\r\n");
    assert_int_equal(r.d.size, 7);
    result_free(&r);

    /* the CRLF of the DATA command counts: "." first is an empty message */
    decode(&data_normalize, ".\r\nmore", &r);
    assert_true(r.done);
    assert_int_equal(r.used, 3);
    expect_out(&r, "");
    result_free(&r);
}

static void
test_no_terminator(void **state)
{
    static const char *const inputs[] = {
        "a\r\n.x\r\n", "a\r\n. \r\n", "a\r\n..\r\n", "a.\r\n", "a\r\n.\r", "a\r\n.",
    };
    struct result r;

    (void)state;
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        decode(&data_normalize, inputs[i], &r);
        if (r.done)
            fail_msg("\"%s\" ended the message", inputs[i]);
        assert_int_equal(r.used, strlen(inputs[i]));
        result_free(&r);
    }
}

static void
test_dot_unstuffing(void **state)
{
    struct result r;

    (void)state;
    decode(&data_normalize, "..\r\n..x\r\n.x\r\na.b\r\n...\r\n. \r\n.\r\n", &r);
    assert_true(r.done);
    expect_out(&r, ".\r\n.x\r\nx\r\na.b\r\n..\r\n \r\n");
    result_free(&r);
}

static void
test_bare_lf(void **state)
{
    struct result r;

    (void)state;
    decode(&data_normalize, "a\nb\r\n.\r\n", &r);
    assert_true(r.done);
    assert_true(r.d.bare_newline);
    expect_out(&r, "a\r\nb\r\n");
    result_free(&r);

    decode(&data_reject, "a\nb\r\n.\r\n", &r);
    assert_true(r.done);
    assert_true(r.d.bare_newline);
    expect_out(&r, "a\nb\r\n");
    result_free(&r);

    decode(&data_normalize, "a\r\nb\r\n.\r\n", &r);
    assert_false(r.d.bare_newline);
    result_free(&r);
}

static void
test_bare_cr(void **state)
{
    struct result r;

    (void)state;
    decode(&data_normalize, "a\rb\r\r\n.\r\n", &r);
    assert_true(r.done);
    assert_true(r.d.bare_newline);
    expect_out(&r, "a\r\nb\r\n\r\n");
    result_free(&r);

    decode(&data_reject, "a\rb\r\r\n.\r\n", &r);
    assert_true(r.done);
    assert_true(r.d.bare_newline);
    expect_out(&r, "a\rb\r\r\n");
    result_free(&r);
}

/* CVE-2023-51764 and kin: none of these ends the message early. */
static void
test_smuggling_sequences(void **state)
{
    static const struct {
        const char *fake, *normalized, *raw;
    } cases[] = {
        {"\n.\r\n", "a\r\n.\r\nb\r\n", "a\n.\r\nb\r\n"},
        {"\r.\r\n", "a\r\n.\r\nb\r\n", "a\r.\r\nb\r\n"},
        {"\n.\n", "a\r\n.\r\nb\r\n", "a\n.\nb\r\n"},
        {"\r\n.\r", "a\r\n.\r\nb\r\n", "a\r\n.\rb\r\n"},
        {"\r\n.\n", "a\r\n.\r\nb\r\n", "a\r\n.\nb\r\n"},
    };
    char in[64];
    struct result r;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(in, sizeof(in), "a%sb\r\n.\r\nNEXT", cases[i].fake);
        decode(&data_normalize, in, &r);
        assert_true(r.done);
        assert_int_equal(r.used, strlen(in) - 4);
        assert_true(r.d.bare_newline);
        expect_out(&r, cases[i].normalized);
        result_free(&r);

        decode(&data_reject, in, &r);
        assert_true(r.done);
        assert_int_equal(r.used, strlen(in) - 4);
        assert_true(r.d.bare_newline);
        expect_out(&r, cases[i].raw);
        result_free(&r);
    }
}

static void
test_long_line(void **state)
{
    struct opts o = data_normalize;
    struct result r;

    (void)state;
    o.max_line = 10;
    decode(&o, "0123456789\r\n.0123456789\r\n.\r\n", &r);
    assert_true(r.done);
    assert_false(r.d.long_line); /* 10 octets, and 10 after unstuffing */
    result_free(&r);

    decode(&o, "0123456789A\r\n.\r\n", &r);
    assert_true(r.done);
    assert_true(r.d.long_line);
    expect_out(&r, "0123456789A\r\n"); /* flagged, not cut */
    result_free(&r);

    /* the line length restarts at every line end, bare ones included */
    decode(&o, "01234\n56789\r\n.\r\n", &r);
    assert_false(r.d.long_line);
    result_free(&r);
}

static void
test_too_big(void **state)
{
    struct opts o = data_normalize;
    struct result r;

    (void)state;
    o.max_size = 16;
    decode(&o, "0123456789\r\n0123456789\r\n..\r\n.\r\nX", &r);
    assert_true(r.done); /* the terminator is still found */
    assert_true(r.d.too_big);
    assert_int_equal(r.d.size, 27); /* counted past the limit */
    assert_true(r.out.len <= 16);
    assert_true(r.out.len >= 12); /* what was kept is a prefix of the message */
    assert_memory_equal(r.out.data, "0123456789\r\n0123456789", r.out.len);
    result_free(&r);

    o.max_size = 12;
    decode(&o, "0123456789\r\n.\r\n", &r);
    assert_false(r.d.too_big); /* exactly the limit */
    assert_int_equal(r.d.size, 12);
    result_free(&r);
}

static void
test_received_header_only(void **state)
{
    struct result r;

    (void)state;
    decode(&data_normalize,
           "Received: a\r\nRECEIVED: b\r\n\tfolded\r\nX-Received: c\r\nSubject: s\r\n"
           "\r\nReceived: in the body\r\n.\r\n",
           &r);
    assert_true(r.done);
    assert_int_equal(r.d.received, 2);
    assert_false(r.d.in_header);
    result_free(&r);

    decode(&data_normalize, "\r\nReceived: x\r\n.\r\n", &r);
    assert_int_equal(r.d.received, 0);
    result_free(&r);

    /* dot-stuffed: the field is "Received:" once unstuffed */
    decode(&data_normalize, ".Received: x\r\nReceived : y\r\n.\r\n", &r);
    assert_int_equal(r.d.received, 1);
    result_free(&r);
}

/* ---- BDAT mode ---- */

static void
test_bdat_raw(void **state)
{
    struct result r;

    (void)state;
    result_begin(&bdat_normalize, &r);
    result_feed(&r, "a\r\n.\r\n..x\r\nb", 12);
    assert_false(r.done);
    assert_int_equal(r.used, 12);
    expect_out(&r, "a\r\n.\r\n..x\r\nb");
    smtp_data_finish(&r.d);
    expect_out(&r, "a\r\n.\r\n..x\r\nb\r\n"); /* the last line gets its CRLF */
    assert_false(r.d.bare_newline);
    result_free(&r);

    decode(&bdat_normalize, "a\r\n", &r);
    expect_out(&r, "a\r\n"); /* nothing added to a complete line */
    result_free(&r);

    decode(&bdat_normalize, "", &r);
    expect_out(&r, "");
    result_free(&r);
}

static void
test_bdat_finish_pending_cr(void **state)
{
    struct result r;

    (void)state;
    decode(&bdat_normalize, "abc\r", &r);
    expect_out(&r, "abc\r\n");
    assert_true(r.d.bare_newline);
    result_free(&r);

    /* a CRLF split across two chunks is one line end */
    decode_cut(&bdat_normalize, "abc\r\ndef", 8, 4, &r);
    expect_out(&r, "abc\r\ndef\r\n");
    assert_false(r.d.bare_newline);
    result_free(&r);
}

static void
test_bdat_binary(void **state)
{
    struct opts o = {true, true, false, 4, 1 << 20};
    struct result r;

    (void)state;
    decode(&o, "a\nb\rlonger than four", &r);
    expect_out(&r, "a\nb\rlonger than four"); /* exact, no CRLF appended */
    assert_false(r.d.long_line);
    result_free(&r);
}

static void
test_bdat_size_and_received(void **state)
{
    struct opts o = {true, false, false, 998, 8};
    struct result r;

    (void)state;
    decode(&o, "Received: x\r\n\r\n", &r);
    assert_true(r.d.too_big);
    assert_int_equal(r.d.size, 15);
    result_free(&r);

    decode(&bdat_normalize, "Received: x\r\nReceived: y\r\n\r\nReceived: z\r\n", &r);
    assert_int_equal(r.d.received, 2);
    result_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_random_bodies_decode_alike),
        cmocka_unit_test(test_terminator),
        cmocka_unit_test(test_no_terminator),
        cmocka_unit_test(test_dot_unstuffing),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_bare_cr),
        cmocka_unit_test(test_smuggling_sequences),
        cmocka_unit_test(test_long_line),
        cmocka_unit_test(test_too_big),
        cmocka_unit_test(test_received_header_only),
        cmocka_unit_test(test_bdat_raw),
        cmocka_unit_test(test_bdat_finish_pending_cr),
        cmocka_unit_test(test_bdat_binary),
        cmocka_unit_test(test_bdat_size_and_received),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
