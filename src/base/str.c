/* Slice helpers: ASCII-only case folding, as SMTP keywords are ASCII. */
#include "base/str.h"

static char
ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

bool
str_ieq(struct str s, const char *w)
{
    size_t n = strlen(w);

    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (ascii_lower(s.ptr[i]) != ascii_lower(w[i]))
            return false;
    return true;
}

bool
str_iprefix(struct str s, const char *p)
{
    size_t n = strlen(p);

    return s.len >= n && str_ieq(str_make(s.ptr, n), p);
}

struct str
str_trim(struct str s)
{
    while (s.len > 0 && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len > 0 && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

struct str
str_cut(struct str *s, char c)
{
    const char *p = s->len ? memchr(s->ptr, c, s->len) : NULL;
    struct str head;

    if (p == NULL) {
        head = *s;
        *s = str_make(s->ptr + s->len, 0);
        return head;
    }
    head = str_make(s->ptr, (size_t)(p - s->ptr));
    *s = str_make(p + 1, s->len - head.len - 1);
    return head;
}

bool
str_copy(struct str s, char *out, size_t n)
{
    if (s.len >= n || (s.len && memchr(s.ptr, '\0', s.len)))
        return false;
    memcpy(out, s.ptr, s.len);
    out[s.len] = '\0';
    return true;
}
