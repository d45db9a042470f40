/*
 * The order in which to try mail exchangers (RFC 5321 section 5.1), without
 * any DNS: lowest preference first, equal preferences shuffled, the null MX
 * of RFC 7505 recognised. Internal to src/net; pure, so unit-tested alone.
 */
#ifndef PETREL_MX_ORDER_H
#define PETREL_MX_ORDER_H

#include <stdbool.h>
#include <stdint.h>

/* A small PRNG (splitmix64) for load spreading, not for secrets. */
struct mx_rng {
    uint64_t state;
};

void mx_rng_seed(struct mx_rng *rng, uint64_t seed);
/* Uniform in [0, n); n > 0. */
uint32_t mx_rng_below(struct mx_rng *rng, uint32_t n);

struct mx_record {
    const char *name; /* borrowed; "" or "." is the root */
    unsigned pref;
    unsigned rank; /* private to mx_order() */
};

/* RFC 7505: true when every record names the root (normally the one
 * "MX 0 ."), i.e. the domain says it accepts no mail. False for n == 0. */
bool mx_order_is_null(const struct mx_record *recs, int n);

/* Reorders recs in place: ascending preference, each run of equal
 * preferences in a uniformly random order drawn from rng. Records naming
 * the root and repeats of a name already kept (ASCII case and a trailing dot
 * ignored) are dropped. Returns how many lead recs[], at most max. */
int mx_order(struct mx_record *recs, int n, int max, struct mx_rng *rng);

#endif
