/*
 * Allocation that cannot fail: out of memory logs and aborts. Safe because
 * the spool is durable; never used for memory a client can grow (see buf.h).
 */
#ifndef PETREL_XMALLOC_H
#define PETREL_XMALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
