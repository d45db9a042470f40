/*
 * File tables: parsed once at config load into a sorted array searched with
 * bsearch, plus an optional list of networks for `from src <table>`.
 * Immutable after loading. Depends only on base/ and config_file.
 */
#include "config/table.h"

#include "base/buf.h"
#include "base/str.h"
#include "base/xmalloc.h"
#include "config/config_file.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct table_loader {
    struct table *t;
    size_t cap;
    char *err;
    size_t errlen;
};

static int __attribute__((format(printf, 5, 6)))
table_fail(const char *path, int line, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    int n;

    n = snprintf(err, errlen, "%s:%d: ", path, line);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* Exactly one line, whatever the path or the file holds. */
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return -1;
}

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static struct str
trim(struct str s)
{
    while (s.len && is_blank(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_blank(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

/* An IPv6 address or network: its colons are not a key/value separator. */
static bool
is_ipv6_word(struct str w)
{
    size_t colons = 0;

    for (size_t i = 0; i < w.len; i++) {
        char c = w.ptr[i];

        if (c == ':')
            colons++;
        else if (!strchr("0123456789abcdefABCDEF./", c))
            return false;
    }
    return colons >= 2;
}

/* Splits a trimmed, non-empty line into key and value; see table.h. */
static void
split_entry(struct str line, struct str *key, struct str *value)
{
    size_t ws = 0, colon;

    while (ws < line.len && !is_blank(line.ptr[ws]))
        ws++;
    *key = str_make(line.ptr, ws);
    if (!is_ipv6_word(*key)) {
        for (colon = 0; colon < ws && line.ptr[colon] != ':'; colon++)
            ;
        if (colon < ws) {
            *key = str_make(line.ptr, colon);
            *value = trim(str_make(line.ptr + colon + 1, line.len - colon - 1));
            return;
        }
    }
    *value = trim(str_make(line.ptr + ws, line.len - ws));
    /* "key : value" is "key: value" too. */
    if (value->len && value->ptr[0] == ':')
        *value = trim(str_make(value->ptr + 1, value->len - 1));
}

static int
table_add_line(struct table_loader *ld, struct str line, int lineno)
{
    struct table *t = ld->t;
    struct table_entry *e;
    struct str key, value;
    const char *hash;

    if (line.len && memchr(line.ptr, '\0', line.len))
        return table_fail(t->path, lineno, ld->err, ld->errlen, "NUL byte in line");
    hash = line.len ? memchr(line.ptr, '#', line.len) : NULL;
    if (hash)
        line.len = (size_t)(hash - line.ptr);
    line = trim(line);
    if (line.len == 0)
        return 0;
    split_entry(line, &key, &value);
    if (key.len == 0)
        return table_fail(t->path, lineno, ld->err, ld->errlen, "empty key");
    if (t->nentries == ld->cap) {
        ld->cap = ld->cap ? ld->cap * 2 : 16;
        t->entries = xrealloc(t->entries, ld->cap * sizeof(*t->entries));
    }
    e = &t->entries[t->nentries++];
    e->key = xstrndup(key.ptr, key.len);
    e->value = xstrndup(value.ptr, value.len);
    e->line = lineno;
    config_ascii_lower(e->key);
    return 0;
}

static int
entry_cmp(const void *a, const void *b)
{
    const struct table_entry *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c ? c : (x->line > y->line) - (x->line < y->line);
}

static int
table_sort(struct table_loader *ld)
{
    struct table *t = ld->t;

    if (t->nentries > 1)
        qsort(t->entries, t->nentries, sizeof(*t->entries), entry_cmp);
    for (size_t i = 1; i < t->nentries; i++)
        if (strcmp(t->entries[i - 1].key, t->entries[i].key) == 0)
            return table_fail(t->path, t->entries[i].line, ld->err, ld->errlen,
                              "duplicate key \"%s\" (first at line %d)", t->entries[i].key,
                              t->entries[i - 1].line);
    return 0;
}

static int
table_parse_text(struct table_loader *ld, struct str text)
{
    int lineno = 0;

    while (text.len) {
        struct str line = str_cut(&text, '\n');

        if (table_add_line(ld, line, ++lineno) < 0)
            return -1;
    }
    return table_sort(ld);
}

struct table *
table_load(const char *name, const char *path, char *err, size_t errlen)
{
    struct table_loader ld = {.err = err, .errlen = errlen};
    struct buf text;
    char why[128];

    ld.t = xcalloc(1, sizeof(*ld.t));
    ld.t->name = xstrdup(name);
    ld.t->path = xstrdup(path);
    if (config_file_read(path, TABLE_FILE_MAX, &text, why, sizeof(why)) < 0) {
        table_fail(path, 0, err, errlen, "cannot read table: %s", why);
        goto fail;
    }
    if (table_parse_text(&ld, buf_str(&text)) < 0)
        goto fail;
    buf_free(&text);
    return ld.t;
fail:
    buf_free(&text);
    table_free(ld.t);
    return NULL;
}

void
table_free(struct table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nentries; i++) {
        free(t->entries[i].key);
        free(t->entries[i].value);
    }
    free(t->entries);
    free(t->nets);
    free(t->name);
    free(t->path);
    free(t);
}

/* Orders like strcmp on the lowercased key, so it agrees with entry_cmp. */
static int
key_cmp(const void *k, const void *e)
{
    const unsigned char *a = k;
    const unsigned char *b = (const unsigned char *)((const struct table_entry *)e)->key;

    for (;; a++, b++) {
        unsigned char ca = (*a >= 'A' && *a <= 'Z') ? (unsigned char)(*a + 32) : *a;

        if (ca != *b || ca == '\0')
            return (ca > *b) - (ca < *b);
    }
}

const char *
table_get(const struct table *t, const char *key)
{
    const struct table_entry *e;

    if (t == NULL || t->nentries == 0)
        return NULL;
    e = bsearch(key, t->entries, t->nentries, sizeof(*t->entries), key_cmp);
    return e ? e->value : NULL;
}

static int
parse_prefix(const char *s, unsigned max, unsigned *out)
{
    char *end;
    unsigned long v;

    /* strtoul would take "+8", " 8" and "-8"; a prefix is digits only. */
    if (*s < '0' || *s > '9' || strlen(s) > 3)
        return -1;
    v = strtoul(s, &end, 10);
    if (*end != '\0' || v > max)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static void
net_mask(struct table_net *n)
{
    size_t len = n->family == AF_INET ? 4 : 16;

    for (size_t i = 0; i < len; i++) {
        unsigned bits = n->prefix > i * 8 ? n->prefix - (unsigned)i * 8 : 0;

        if (bits < 8)
            n->addr[i] &= (unsigned char)(0xff00u >> bits);
    }
}

/* ::ffff:a.b.c.d/96+N is the IPv4 network a.b.c.d/N (RFC 4291 2.5.5.2). */
static void
net_unmap_v4(struct table_net *n)
{
    if (n->family != AF_INET6 || n->prefix < 96 ||
        !IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)n->addr))
        return;
    memmove(n->addr, n->addr + 12, 4);
    memset(n->addr + 4, 0, 12);
    n->family = AF_INET;
    n->prefix -= 96;
}

int
table_net_parse(const char *s, struct table_net *n)
{
    char addr[INET6_ADDRSTRLEN];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    unsigned max;

    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, s, alen);
    addr[alen] = '\0';
    memset(n, 0, sizeof(*n));
    if (inet_pton(AF_INET, addr, n->addr) == 1) {
        n->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, n->addr) == 1) {
        n->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    n->prefix = max;
    if (slash && parse_prefix(slash + 1, max, &n->prefix) < 0)
        return -1;
    net_unmap_v4(n);
    net_mask(n);
    return 0;
}

int
table_parse_nets(struct table *t, char *err, size_t errlen)
{
    struct table_net *nets;

    if (t->nets || t->nentries == 0)
        return 0;
    nets = xcalloc(t->nentries, sizeof(*nets));
    for (size_t i = 0; i < t->nentries; i++) {
        const struct table_entry *e = &t->entries[i];

        if (table_net_parse(e->key, &nets[i]) < 0 || e->value[0] != '\0') {
            free(nets);
            if (e->value[0] != '\0')
                return table_fail(t->path, e->line, err, errlen,
                                  "unexpected \"%s\" after network \"%s\"", e->value, e->key);
            return table_fail(t->path, e->line, err, errlen, "invalid address or network \"%s\"",
                              e->key);
        }
    }
    t->nets = nets;
    t->nnets = t->nentries;
    return 0;
}

/* The peer as (family, bytes); an IPv4-mapped IPv6 peer is IPv4. */
static int
peer_bytes(const struct sockaddr *sa, const unsigned char **bytes)
{
    const struct sockaddr_in *sin;
    const struct sockaddr_in6 *sin6;

    if (sa == NULL)
        return AF_UNSPEC;
    if (sa->sa_family == AF_INET) {
        sin = (const struct sockaddr_in *)(const void *)sa;
        *bytes = (const unsigned char *)&sin->sin_addr;
        return AF_INET;
    }
    if (sa->sa_family != AF_INET6)
        return AF_UNSPEC;
    sin6 = (const struct sockaddr_in6 *)(const void *)sa;
    *bytes = sin6->sin6_addr.s6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
        *bytes += 12;
        return AF_INET;
    }
    return AF_INET6;
}

bool
table_net_contains(const struct table_net *n, const struct sockaddr *sa)
{
    const unsigned char *b = NULL;
    unsigned full, rest;

    if (peer_bytes(sa, &b) != n->family)
        return false;
    full = n->prefix / 8;
    rest = n->prefix % 8;
    if (memcmp(b, n->addr, full) != 0)
        return false;
    return rest == 0 || ((b[full] ^ n->addr[full]) & (0xff00u >> rest) & 0xff) == 0;
}

bool
table_has_addr(const struct table *t, const struct sockaddr *sa)
{
    if (t == NULL)
        return false;
    for (size_t i = 0; i < t->nnets; i++)
        if (table_net_contains(&t->nets[i], sa))
            return true;
    return false;
}
