/*
 * Non-owning byte slices (pointer + length). Parsers return slices into
 * their input and never rely on NUL termination: SMTP arguments may hold NULs.
 */
#ifndef PETREL_STR_H
#define PETREL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct str {
    const char *ptr;
    size_t len;
};

#define STR_LIT(s) ((struct str){(s), sizeof(s) - 1})

static inline struct str
str_make(const char *p, size_t len)
{
    return (struct str){p, len};
}

static inline struct str
str_cstr(const char *s)
{
    return (struct str){s, strlen(s)};
}

/* True when s equals the NUL-terminated word w, ignoring ASCII case. */
bool str_ieq(struct str s, const char *w);
/* True when s starts with prefix p, ignoring ASCII case. */
bool str_iprefix(struct str s, const char *p);
/* Drops leading and trailing spaces and tabs. */
struct str str_trim(struct str s);
/* Splits at the first c: returns what precedes it, leaves the rest in *s
 * (after c). Without c, returns all of *s and leaves it empty. */
struct str str_cut(struct str *s, char c);
/* Copies s into out (size n) NUL-terminated; returns false if it does not fit
 * or holds a NUL byte. */
bool str_copy(struct str s, char *out, size_t n);

#endif
