/*
 * libFuzzer target for dsn_build. The input gives the kind, RET, the
 * recipient count, the cap and the time in its first 12 bytes, then
 * NUL-separated strings (sender, reporting MTA, ENVID, unique, and six per
 * recipient); whatever follows is the original message. Every DSN built must
 * be well formed: CRLF lines of at most 998 octets, a header of fields, and
 * a body of exactly three parts whose boundary occurs nowhere else.
 */
#include "delivery/dsn.h"
#include "smtp/smtp_command.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RCPTS 4
#define NSTRINGS (4 + 6 * MAX_RCPTS)
#define CT "\r\nContent-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\""

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_dsn: %s\n", what);
        abort();
    }
}

static void
check_lines(const char *s, size_t n)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\n')
            check(0, "bare LF");
        if (s[i] != '\r')
            continue;
        check(i + 1 < n && s[i + 1] == '\n', "bare CR");
        check(i - start <= 998, "line over 998 octets");
        start = i + 2;
        i++;
    }
    check(start == n, "last line not ended by CRLF");
}

/* Every header line is a field or a continuation; returns the header's
 * length (through the empty line) and copies the boundary parameter. */
static size_t
check_header(const char *s, size_t n, char *boundary, size_t bsize)
{
    const char *end = memmem(s, n, "\r\n\r\n", 4), *b, *q;
    size_t pos = 0;

    check(end != NULL, "no end of header");
    while (pos < (size_t)(end - s) + 2) {
        const char *eol = memmem(s + pos, n - pos, "\r\n", 2);

        check(s[pos] == ' ' || s[pos] == '\t' || memchr(s + pos, ':', (size_t)(eol - s) - pos),
              "header line is not a field");
        pos = (size_t)(eol - s) + 2;
    }
    /* at a line start: a field value cannot fake it, having no CRLF */
    b = memmem(s, (size_t)(end - s), CT, sizeof(CT) - 1);
    check(b != NULL, "no multipart/report Content-Type");
    b += sizeof(CT) - 1;
    q = memchr(b, '"', (size_t)(end - b));
    check(q != NULL && q > b && (size_t)(q - b) <= 70 && (size_t)(q - b) < bsize, "bad boundary");
    memcpy(boundary, b, (size_t)(q - b));
    boundary[q - b] = '\0';
    return (size_t)(end - s) + 4;
}

/* Three delimiters, one close delimiter, then nothing; the boundary string
 * appears on no other line of the body. */
static void
check_body(const char *s, size_t n, const char *boundary)
{
    size_t blen = strlen(boundary), pos = 0, opens = 0, closes = 0;

    while (pos < n) {
        const char *eol = memmem(s + pos, n - pos, "\r\n", 2);
        size_t len = (size_t)(eol - s) - pos;
        const char *line = s + pos;

        check(closes == 0, "text after the close delimiter");
        if (len >= 2 + blen && line[0] == '-' && line[1] == '-' &&
            memcmp(line + 2, boundary, blen) == 0) {
            if (len == 2 + blen)
                opens++;
            else if (len == 4 + blen && memcmp(line + 2 + blen, "--", 2) == 0)
                closes++;
            else
                check(0, "boundary inside a line");
        } else
            check(memmem(line, len, boundary, blen) == NULL, "boundary inside a part");
        pos += len + 2;
    }
    check(opens == 3 && closes == 1, "not three parts and a close delimiter");
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *strs[NSTRINGS];
    struct dsn_rcpt rcpts[MAX_RCPTS];
    struct dsn_report r;
    char *copy, boundary[80];
    size_t pos = 12, cap;
    struct buf out;
    int64_t now;
    int rc;

    if (size < 12)
        return 0;
    copy = malloc(size + 1); /* the strings get their NUL from the input */
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (size_t i = 0; i < NSTRINGS; i++) {
        size_t len = strnlen(copy + pos, size - pos);

        strs[i] = copy + pos;
        pos += pos + len < size ? len + 1 : len;
    }
    memcpy(&now, copy + 4, sizeof(now));
    for (size_t i = 0; i < MAX_RCPTS; i++) {
        const char **f = strs + 4 + 6 * i;

        rcpts[i] = (struct dsn_rcpt){.address = f[0],
                                     .orcpt = f[1],
                                     .action = f[2],
                                     .status = f[3],
                                     .remote_mta = f[4],
                                     .diagnostic = f[5],
                                     .last_attempt = now ^ (int64_t)i,
                                     .will_retry_until = now ^ (int64_t)(i << 8)};
    }
    r = (struct dsn_report){.kind = (enum dsn_kind)((unsigned char)copy[0] % 3),
                            .reporting_mta = strs[1],
                            .sender = strs[0],
                            .envid = strs[2],
                            .arrival = now / 2,
                            .ret = (unsigned char)copy[1] % 3,
                            .message = copy + pos,
                            .message_len = size - pos,
                            .rcpts = rcpts,
                            .nrcpts = (size_t)((unsigned char)copy[2] % MAX_RCPTS) + 1,
                            .now = now,
                            .unique = strs[3]};
    /* an odd selector tries a small cap: -1 must leave out as it was */
    cap = copy[3] & 1 ? (size_t)(unsigned char)copy[3] * 64 : (size - pos) * 2 + (1u << 20);
    buf_init(&out, cap);
    rc = dsn_build(&r, &out);
    if (rc == 0) {
        size_t h;

        check_lines(out.data, out.len);
        h = check_header(out.data, out.len, boundary, sizeof(boundary));
        check_body(out.data + h, out.len - h, boundary);
        check(memmem(r.message, r.message_len, boundary, strlen(boundary)) == NULL,
              "boundary occurs in the original");
    } else {
        check(rc == -1 && out.len == 0, "failure changed out");
        check(strs[0][0] == '\0' || copy[3] & 1, "failed with room to spare");
    }
    buf_free(&out);
    free(copy);
    return 0;
}
