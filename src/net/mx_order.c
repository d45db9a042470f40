/*
 * MX ordering: shuffle, then sort by (preference, position after the
 * shuffle). The result is a stable sort of a uniform permutation, so each
 * run of equal preferences comes out in a uniformly random order, as RFC
 * 5321 section 5.1 asks ("MUST randomize them to spread the load").
 */
#include "net/mx_order.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

void
mx_rng_seed(struct mx_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

static uint64_t
mx_rng_next(struct mx_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint32_t
mx_rng_below(struct mx_rng *rng, uint32_t n)
{
    /* Rejection keeps it unbiased: drop draws from the incomplete last block. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;

    do
        x = mx_rng_next(rng);
    while (x >= limit);
    return (uint32_t)(x % n);
}

static bool
mx_name_is_root(const char *name)
{
    return name[0] == '\0' || strcmp(name, ".") == 0;
}

bool
mx_order_is_null(const struct mx_record *recs, int n)
{
    for (int i = 0; i < n; i++)
        if (!mx_name_is_root(recs[i].name))
            return false;
    return n > 0;
}

static int
mx_record_cmp(const void *a, const void *b)
{
    const struct mx_record *x = a, *y = b;

    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Host names compare without ASCII case and without a trailing dot. */
static bool
mx_name_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);

    if (la > 0 && a[la - 1] == '.')
        la--;
    if (lb > 0 && b[lb - 1] == '.')
        lb--;
    return la == lb && strncasecmp(a, b, la) == 0;
}

static bool
mx_seen(const struct mx_record *kept, int nkept, const char *name)
{
    for (int i = 0; i < nkept; i++)
        if (mx_name_eq(kept[i].name, name))
            return true;
    return false;
}

int
mx_order(struct mx_record *recs, int n, int max, struct mx_rng *rng)
{
    int kept = 0;

    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)mx_rng_below(rng, (uint32_t)i + 1);
        struct mx_record t = recs[i];

        recs[i] = recs[j];
        recs[j] = t;
    }
    for (int i = 0; i < n; i++)
        recs[i].rank = (unsigned)i;
    if (n > 1)
        qsort(recs, (size_t)n, sizeof(*recs), mx_record_cmp);
    /* Keep the first (lowest preference) of each name; compacts in place. */
    for (int i = 0; i < n && kept < max; i++) {
        if (mx_name_is_root(recs[i].name) || mx_seen(recs, kept, recs[i].name))
            continue;
        recs[kept++] = recs[i];
    }
    return kept;
}
