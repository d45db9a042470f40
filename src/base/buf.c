/* Capped growable buffer; see buf.h. */
#include "base/buf.h"

#include "base/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
buf_init(struct buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void
buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void
buf_reset(struct buf *b)
{
    b->len = 0;
}

static int
buf_reserve(struct buf *b, size_t n)
{
    size_t want, cap;

    if (n > b->max || b->len > b->max - n)
        return -1;
    want = b->len + n + 1; /* room for a NUL terminator, for callers' ease */
    if (want <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int
buf_append(struct buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n) < 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int
buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list aq;
    int n;

    /* Usually the text fits the room already there: one formatting pass. */
    va_copy(aq, ap);
    n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, aq);
    va_end(aq);
    if (n < 0)
        return -1;
    if (buf_reserve(b, (size_t)n) < 0) { /* over the cap: as it was */
        if (room)
            b->data[b->len] = '\0';
        return -1;
    }
    if ((size_t)n >= room) /* cut short: the buffer has grown for a second pass */
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int
buf_cat(struct buf *b, ...)
{
    size_t mark = b->len;
    const char *s;
    va_list ap;
    int r = 0;

    va_start(ap, b);
    while (r == 0 && (s = va_arg(ap, const char *)) != NULL)
        r = buf_append(b, s, strlen(s));
    va_end(ap);
    if (r < 0 && b->data) {
        b->len = mark;
        b->data[mark] = '\0';
    }
    return r;
}

int
buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    int r;

    va_start(ap, fmt);
    r = buf_vprintf(b, fmt, ap);
    va_end(ap);
    return r;
}

void
buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
