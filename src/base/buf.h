/*
 * Growable byte buffer with a mandatory cap (max): every length an attacker
 * controls is bounded by construction. Owns its memory.
 */
#ifndef PETREL_BUF_H
#define PETREL_BUF_H

#include "base/str.h"

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
/* Empties the buffer; keeps its memory for reuse. */
void buf_reset(struct buf *b);
/* Returns 0, or -1 (buffer unchanged) if the result would exceed max. */
int buf_append(struct buf *b, const void *p, size_t n) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap) __attribute__((warn_unused_result));
/* Appends the strings given, up to the NULL that ends the list: the same
 * result as a "%s%s..." format without formatting anything. */
int buf_cat(struct buf *b, ...) __attribute__((sentinel, warn_unused_result));
/* Removes the first n bytes. */
void buf_consume(struct buf *b, size_t n);

static inline struct str
buf_str(const struct buf *b)
{
    return str_make(b->data, b->len);
}

#endif
