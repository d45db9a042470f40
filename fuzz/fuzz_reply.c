/*
 * libFuzzer target for the client's reply parser (smtp_reply_parse.c):
 * arbitrary server output is framed into lines and replies. Checks that a
 * step consumes only what it reports, at most one line of bounded length,
 * that a finished reply has a code in 200..599 and a static status code of
 * its class, and that its text holds no control characters and fits.
 */
#include "smtp/smtp_reply_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_reply: check failed: %s (line %d)\n", #c, __LINE__);             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void
check_reply(const struct smtp_reply *r)
{
    CHECK(r->code >= 200 && r->code <= 599);
    /* RFC 3463 has classes 2, 4 and 5 only: a 3xx reply has no status */
    if (r->code / 100 == 3)
        CHECK(r->status == NULL);
    else
        CHECK(r->status != NULL && r->status[0] == '0' + r->code / 100 && r->status[1] == '.');
    for (const char *c = r->text; *c; c++)
        CHECK((unsigned char)*c >= 0x20 && *c != 0x7f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_reply_parser rp;
    const char *p = (const char *)data;
    size_t pos = 0;

    smtp_reply_parser_init(&rp);
    while (pos < size) {
        struct smtp_reply_line line;
        size_t used = 0;
        enum smtp_reply_result res = smtp_reply_parser_feed(&rp, p + pos, size - pos, &used, &line);

        if (res == SMTP_REPLY_AGAIN) {
            CHECK(used == 0 && memchr(p + pos, '\n', size - pos) == NULL);
            break;
        }
        if (res != SMTP_REPLY_LINE && res != SMTP_REPLY_DONE) {
            CHECK(used == 0);
            smtp_reply_parser_init(&rp); /* as the client does after an error */
            pos += 1;
            continue;
        }
        CHECK(used > 0 && used <= size - pos && used <= SMTP_REPLY_LINE_MAX);
        CHECK(p[pos + used - 1] == '\n');
        CHECK(memchr(p + pos, '\n', used - 1) == NULL); /* one line at a time */
        CHECK(line.code >= 200 && line.code <= 599);
        CHECK(line.text.ptr >= p + pos && line.text.ptr + line.text.len <= p + pos + used);
        if (res == SMTP_REPLY_DONE)
            check_reply(&rp.reply);
        pos += used;
    }
    return 0;
}
