/*
 * libFuzzer target for the message body decoder (smtp_data.c): DATA with
 * dot-unstuffing and its CRLF.CRLF terminator, and raw BDAT chunks. The
 * input is
 *
 *   [flags] [piece seed] [body bytes...]
 *
 * flags pick DATA or BDAT, BINARYMIME, bare-newline reject and a small or
 * large size and line limit. The body is decoded twice, whole and in
 * pseudo-random pieces; both must consume the same octets, end at the same
 * place, count the same size and decode to the same message (unless it is
 * over the size limit and so refused). The decoded message is CRLF lines
 * only (no bare CR or LF, unless BINARYMIME keeps bytes as they are), never
 * longer than the size limit, and a DATA message never contains the
 * terminator it ended at.
 */
#include "smtp/smtp_data.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_data: check failed: %s (line %d)\n", #c, __LINE__);              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct run {
    struct buf out;
    struct smtp_data d;
    size_t used;
    bool done;
};

static void
decode(struct run *r, uint8_t flags, const uint8_t *in, size_t n, uint32_t seed)
{
    size_t max = flags & 8 ? 64 : 1 << 16;

    buf_init(&r->out, max);
    smtp_data_begin(&r->d, &r->out, flags & 1, flags & 2, flags & 4, flags & 16 ? 1000 : 20);
    r->used = 0;
    r->done = false;
    while (r->used < n && !r->done) {
        size_t k = n - r->used;

        if (seed) { /* xorshift pieces of 1..37 octets */
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            k = 1 + seed % 37 < k ? 1 + seed % 37 : k;
        }
        r->used += smtp_data_feed(&r->d, (const char *)in + r->used, k, &r->done);
        CHECK(!(r->d.bdat && r->done)); /* BDAT never ends by itself */
    }
    if (r->d.bdat)
        smtp_data_finish(&r->d);
}

static void
check_message(const struct run *r)
{
    const struct buf *o = &r->out;

    CHECK(o->len <= o->max);
    /* kept as sent: BINARYMIME; cut short: over the size limit; refused as
     * a whole: bare newlines under `bare-newline reject` */
    if (r->d.binary || r->d.too_big || (r->d.reject_bare && r->d.bare_newline))
        return;
    for (size_t i = 0; i < o->len; i++) {
        if (o->data[i] == '\r')
            CHECK(i + 1 < o->len && o->data[i + 1] == '\n');
        if (o->data[i] == '\n')
            CHECK(i > 0 && o->data[i - 1] == '\r');
    }
    if (r->done && !r->d.bdat)
        CHECK(o->len == 0 || (o->len >= 2 && memcmp(o->data + o->len - 2, "\r\n", 2) == 0));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct run whole, split;

    if (size < 2)
        return 0;
    decode(&whole, data[0], data + 2, size - 2, 0);
    decode(&split, data[0], data + 2, size - 2, 0x9e3779b9u ^ data[1]);
    CHECK(whole.used == split.used);
    CHECK(whole.done == split.done);
    CHECK(whole.d.size == split.d.size);
    CHECK(whole.d.too_big == split.d.too_big);
    CHECK(whole.d.bare_newline == split.d.bare_newline);
    CHECK(whole.d.long_line == split.d.long_line);
    /* Over the limit the message is refused whole (552): what part of it
     * was kept depends on the pieces and is never used. */
    if (!whole.d.too_big) {
        CHECK(whole.d.received == split.d.received);
        CHECK(whole.out.len == split.out.len);
        CHECK(whole.out.len == 0 || memcmp(whole.out.data, split.out.data, whole.out.len) == 0);
    }
    check_message(&whole);
    buf_free(&whole.out);
    buf_free(&split.out);
    return 0;
}
