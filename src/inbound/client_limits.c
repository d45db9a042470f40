/*
 * Per-client-address accounting; see client_limits.h. A chained hash table
 * keyed by the address (IPv4, or the IPv6 /64) with a random seed, so a
 * client cannot choose addresses that pile into one chain. Entries without
 * a session sit on an idle list, least recently idle at the tail: expiry
 * and eviction take from there, a few entries per call, so no call ever
 * walks the whole table.
 */
#include "inbound/client_limits.h"

#include "base/xmalloc.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* One event costs RATE_UNIT credits and a rate of N refills N credits a
 * second: a bucket holds a burst of N and refills completely in a minute. */
#define RATE_UNIT 60
/* Seconds after which an idle entry's buckets are full again. */
#define RATE_WINDOW 60
/* Idle entries examined per call for expiry: amortised O(1). */
#define SWEEP_STEPS 8

struct client_key {
    uint64_t addr; /* IPv4 in the low 32 bits, or the IPv6 /64 prefix */
    uint8_t family;
};

struct bucket {
    uint64_t spent; /* credits used and not yet refilled */
    int64_t at;     /* when spent was last brought up to date */
};

struct client {
    struct client_key key;
    unsigned sessions;
    struct bucket conn, msg;
    int64_t last;  /* last event: connect, disconnect, message */
    int64_t until; /* refused before this time (throttle) */
    struct client *hnext;
    struct client *iprev, *inext; /* idle list: only while sessions == 0 */
};

struct client_limits {
    struct client **buckets;
    size_t nbuckets; /* a power of two */
    size_t n, cap;
    uint64_t seed;
    struct client *idle_head, *idle_tail;
};

static bool
key_of(const struct sockaddr *sa, struct client_key *k)
{
    memset(k, 0, sizeof(*k));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;

        k->family = 4;
        k->addr = ntohl(v4->sin_addr.s_addr);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

        if (IN6_IS_ADDR_V4MAPPED(a)) { /* a dual-stack listener's IPv4 client */
            k->family = 4;
            k->addr = (uint64_t)a->s6_addr[12] << 24 | (uint64_t)a->s6_addr[13] << 16 |
                      (uint64_t)a->s6_addr[14] << 8 | a->s6_addr[15];
            return true;
        }
        k->family = 6;
        for (int i = 0; i < 8; i++) /* the /64: one subscriber's share (RFC 6177) */
            k->addr = k->addr << 8 | a->s6_addr[i];
        return true;
    }
    return false;
}

static size_t
key_hash(const struct client_limits *cl, const struct client_key *k)
{
    /* The seeded key through the murmur3 64-bit finaliser. */
    uint64_t h = (k->addr ^ cl->seed) + k->family;

    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (size_t)h & (cl->nbuckets - 1);
}

struct client_limits *
client_limits_new(size_t cap)
{
    struct client_limits *cl = xcalloc(1, sizeof(*cl));

    cl->cap = cap ? cap : 1;
    cl->nbuckets = 16;
    while (cl->nbuckets < cl->cap)
        cl->nbuckets <<= 1;
    cl->buckets = xcalloc(cl->nbuckets, sizeof(*cl->buckets));
    if (getrandom(&cl->seed, sizeof(cl->seed), GRND_NONBLOCK) != (ssize_t)sizeof(cl->seed))
        cl->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL; /* no entropy yet: still varies */
    return cl;
}

void
client_limits_free(struct client_limits *cl)
{
    if (cl == NULL)
        return;
    for (size_t i = 0; i < cl->nbuckets; i++) {
        struct client *c, *next;

        for (c = cl->buckets[i]; c; c = next) {
            next = c->hnext;
            free(c);
        }
    }
    free(cl->buckets);
    free(cl);
}

/* ---- the idle list ---- */

static void
idle_push(struct client_limits *cl, struct client *c)
{
    c->iprev = NULL;
    c->inext = cl->idle_head;
    if (cl->idle_head)
        cl->idle_head->iprev = c;
    else
        cl->idle_tail = c;
    cl->idle_head = c;
}

static void
idle_unlink(struct client_limits *cl, struct client *c)
{
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        cl->idle_head = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    else
        cl->idle_tail = c->iprev;
    c->iprev = c->inext = NULL;
}

/* ---- entries ---- */

static struct client *
lookup(struct client_limits *cl, const struct client_key *k)
{
    struct client *c;

    for (c = cl->buckets[key_hash(cl, k)]; c; c = c->hnext)
        if (c->key.addr == k->addr && c->key.family == k->family)
            return c;
    return NULL;
}

/* Removes an idle entry from the table and frees it. */
static void
forget(struct client_limits *cl, struct client *c)
{
    struct client **pp = &cl->buckets[key_hash(cl, &c->key)];

    while (*pp != c)
        pp = &(*pp)->hnext;
    *pp = c->hnext;
    idle_unlink(cl, c);
    free(c);
    cl->n--;
}

/* Expires idle entries from the tail, at most SWEEP_STEPS of them. The
 * list is in order of going idle, so the first entry still inside its
 * rate window ends the sweep; one kept only by a throttle goes back to the
 * head, to be looked at again later. */
static void
sweep(struct client_limits *cl, int64_t now)
{
    for (int i = 0; i < SWEEP_STEPS && cl->idle_tail; i++) {
        struct client *c = cl->idle_tail;

        if (now - c->last < RATE_WINDOW)
            return;
        if (now < c->until) {
            idle_unlink(cl, c);
            idle_push(cl, c);
            continue;
        }
        forget(cl, c);
    }
}

/* The entry for k, created idle if needed; NULL when the table is full
 * and no idle entry can make room. Expires a few idle entries first: every
 * connection and message does a little of that work. */
static struct client *
obtain(struct client_limits *cl, const struct client_key *k, int64_t now)
{
    struct client *c;
    size_t h;

    sweep(cl, now); /* may free k's entry: only if it was as good as new */
    if ((c = lookup(cl, k)) != NULL)
        return c;
    if (cl->n >= cl->cap) {
        if (cl->idle_tail == NULL)
            return NULL;
        forget(cl, cl->idle_tail); /* the least recently idle: loses its state */
    }
    c = xcalloc(1, sizeof(*c));
    c->key = *k;
    c->last = now;
    c->conn.at = c->msg.at = now;
    h = key_hash(cl, k);
    c->hnext = cl->buckets[h];
    cl->buckets[h] = c;
    idle_push(cl, c);
    cl->n++;
    return c;
}

/* Brings the bucket up to date; true if one more event fits in rate per
 * minute. Credits refill at `rate` a second up to RATE_UNIT * rate. */
static bool
bucket_fits(struct bucket *b, unsigned rate, int64_t now)
{
    uint64_t cap = (uint64_t)rate * RATE_UNIT;

    if (now > b->at) {
        int64_t elapsed = now - b->at;
        uint64_t back = (uint64_t)(elapsed > RATE_WINDOW ? RATE_WINDOW : elapsed) * rate;

        b->spent = back >= b->spent ? 0 : b->spent - back;
        b->at = now;
    }
    if (b->spent > cap) /* the rate was lowered by a reload */
        b->spent = cap;
    return b->spent + RATE_UNIT <= cap;
}

enum client_verdict
client_limits_connect(struct client_limits *cl, const struct sockaddr *sa,
                      const struct client_limits_policy *p, int64_t now)
{
    struct client_key k;
    struct client *c;

    if (!key_of(sa, &k))
        return CLIENT_UNTRACKED;
    if ((c = obtain(cl, &k, now)) == NULL)
        return CLIENT_UNTRACKED;
    if (now < c->until)
        return CLIENT_THROTTLED;
    if (p->max_per_ip && c->sessions >= p->max_per_ip)
        return CLIENT_TOO_MANY;
    if (p->connection_rate && !bucket_fits(&c->conn, p->connection_rate, now))
        return CLIENT_TOO_FAST;
    if (p->connection_rate)
        c->conn.spent += RATE_UNIT;
    if (c->sessions++ == 0)
        idle_unlink(cl, c);
    c->last = now;
    return CLIENT_ADMIT;
}

void
client_limits_disconnect(struct client_limits *cl, const struct sockaddr *sa, int64_t now)
{
    struct client_key k;
    struct client *c;

    if (!key_of(sa, &k) || (c = lookup(cl, &k)) == NULL || c->sessions == 0)
        return; /* an untracked session */
    c->last = now;
    if (--c->sessions == 0)
        idle_push(cl, c);
}

bool
client_limits_message(struct client_limits *cl, const struct sockaddr *sa, unsigned rate,
                      int64_t now)
{
    struct client_key k;
    struct client *c;

    if (rate == 0 || !key_of(sa, &k) || (c = obtain(cl, &k, now)) == NULL)
        return true;
    c->last = now;
    if (!bucket_fits(&c->msg, rate, now))
        return false;
    c->msg.spent += RATE_UNIT;
    return true;
}

void
client_limits_throttle(struct client_limits *cl, const struct sockaddr *sa, unsigned seconds,
                       int64_t now)
{
    struct client_key k;
    struct client *c;

    if (!key_of(sa, &k) || (c = obtain(cl, &k, now)) == NULL)
        return;
    if (now + seconds > c->until)
        c->until = now + seconds;
}

size_t
client_limits_size(const struct client_limits *cl)
{
    return cl->n;
}

unsigned
client_limits_sessions(struct client_limits *cl, const struct sockaddr *sa)
{
    struct client_key k;
    struct client *c;

    if (!key_of(sa, &k) || (c = lookup(cl, &k)) == NULL)
        return 0;
    return c->sessions;
}
