/*
 * The resolver without a real DNS server: MX ordering (src/net/mx_order.c),
 * address literals, name checks, cancellation by resolver_free(), and the
 * answer policy against a tiny in-process UDP responder that serves a
 * fixed table of records and response codes on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "net/mx_order.h"
#include "net/resolver.h"

/* ------------------------------------------------------------------------
 * mx_order
 */

static void
test_rng_below(void **state)
{
    struct mx_rng rng;
    int seen[5] = {0};

    (void)state;
    mx_rng_seed(&rng, 1);
    for (int i = 0; i < 5000; i++) {
        uint32_t x = mx_rng_below(&rng, 5);

        assert_true(x < 5);
        seen[x]++;
    }
    for (int i = 0; i < 5; i++)
        assert_in_range(seen[i], 800, 1200);
    assert_int_equal(mx_rng_below(&rng, 1), 0);
}

static void
test_order_by_preference(void **state)
{
    struct mx_record recs[] = {
        {"c", 30, 0}, {"a", 10, 0}, {"d", 65535, 0}, {"b", 20, 0}, {"z", 0, 0}};
    struct mx_rng rng;

    (void)state;
    mx_rng_seed(&rng, 42);
    assert_int_equal(mx_order(recs, 5, 16, &rng), 5);
    assert_string_equal(recs[0].name, "z");
    assert_string_equal(recs[1].name, "a");
    assert_string_equal(recs[2].name, "b");
    assert_string_equal(recs[3].name, "c");
    assert_string_equal(recs[4].name, "d");
}

/* Three equal preferences between two others: all six orders come up, about
 * equally often, and the others never move. */
static void
test_order_shuffles_equal(void **state)
{
    struct mx_rng rng;
    int count[6] = {0};

    (void)state;
    mx_rng_seed(&rng, 7);
    for (int run = 0; run < 6000; run++) {
        struct mx_record recs[] = {{"b", 5, 0}, {"x", 1, 0}, {"c", 5, 0}, {"y", 9, 0}, {"a", 5, 0}};
        char order[4];

        assert_int_equal(mx_order(recs, 5, 16, &rng), 5);
        assert_string_equal(recs[0].name, "x");
        assert_string_equal(recs[4].name, "y");
        for (int i = 0; i < 3; i++)
            order[i] = recs[i + 1].name[0];
        order[3] = '\0';
        if (strcmp(order, "abc") == 0)
            count[0]++;
        else if (strcmp(order, "acb") == 0)
            count[1]++;
        else if (strcmp(order, "bac") == 0)
            count[2]++;
        else if (strcmp(order, "bca") == 0)
            count[3]++;
        else if (strcmp(order, "cab") == 0)
            count[4]++;
        else
            count[5]++;
    }
    for (int i = 0; i < 6; i++)
        assert_in_range(count[i], 800, 1200);
}

static void
test_order_drops_root_and_repeats(void **state)
{
    struct mx_record recs[] = {{"MX.example.", 20, 0},
                               {".", 0, 0},
                               {"mx.example", 10, 0},
                               {"", 5, 0},
                               {"other.example", 30, 0}};
    struct mx_rng rng;

    (void)state;
    mx_rng_seed(&rng, 3);
    assert_false(mx_order_is_null(recs, 5));
    assert_int_equal(mx_order(recs, 5, 16, &rng), 2);
    assert_string_equal(recs[0].name, "mx.example"); /* the lower preference wins */
    assert_int_equal(recs[0].pref, 10);
    assert_string_equal(recs[1].name, "other.example");
}

static void
test_order_cap(void **state)
{
    struct mx_record recs[40];
    char names[40][8];
    struct mx_rng rng;

    (void)state;
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof(names[i]), "h%d", i);
        recs[i] = (struct mx_record){names[i], (unsigned)(39 - i), 0};
    }
    mx_rng_seed(&rng, 9);
    assert_int_equal(mx_order(recs, 40, 16, &rng), 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(recs[i].pref, i);
    assert_int_equal(mx_order(recs, 0, 16, &rng), 0);
}

static void
test_null_mx(void **state)
{
    struct mx_record one[] = {{"", 0, 0}};
    struct mx_record dot[] = {{".", 10, 0}};
    struct mx_record mixed[] = {{"", 0, 0}, {"mx.example", 10, 0}};

    (void)state;
    assert_true(mx_order_is_null(one, 1));
    assert_true(mx_order_is_null(dot, 1));
    assert_false(mx_order_is_null(mixed, 2));
    assert_false(mx_order_is_null(one, 0));
}

/* ------------------------------------------------------------------------
 * A fake DNS server: answers each UDP query from fake_zone[]. A row with
 * an rcode answers that code for its name and type; rows with data become
 * answer records; a name and type without rows get NOERROR and no answer.
 */

#define T_A 1
#define T_MX 15
#define T_AAAA 28
#define RC_FORMERR 1
#define RC_SERVFAIL 2
#define RC_NXDOMAIN 3
#define RC_REFUSED 5

struct fake_rr {
    const char *name;
    int type;
    int rcode;
    const char *data; /* address, or MX exchanger ("." for the root) */
    unsigned pref;
};

static const struct fake_rr *fake_zone;
static size_t fake_nzone;
static bool fake_silent; /* read queries, never answer */
static int fake_queries;

#define ZONE(z) (fake_zone = (z), fake_nzone = sizeof(z) / sizeof((z)[0]))

static size_t
put16(unsigned char *p, unsigned v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

static size_t
put_name(unsigned char *p, const char *name)
{
    size_t n = 0;

    while (*name && strcmp(name, ".") != 0) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);

        p[n++] = (unsigned char)len;
        memcpy(p + n, name, len);
        n += len;
        name += len + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

/* Appends one answer record for rr (owner: the question name). */
static size_t
put_answer(unsigned char *p, const struct fake_rr *rr)
{
    size_t n = 0, rdlen;

    n += put16(p + n, 0xc00c);
    n += put16(p + n, (unsigned)rr->type);
    n += put16(p + n, 1);
    n += put16(p + n, 0);
    n += put16(p + n, 60);
    if (rr->type == T_MX) {
        rdlen = put16(p + n + 2, rr->pref);
        rdlen += put_name(p + n + 2 + rdlen, rr->data);
    } else {
        rdlen = rr->type == T_A ? 4 : 16;
        assert_int_equal(inet_pton(rr->type == T_A ? AF_INET : AF_INET6, rr->data, p + n + 2), 1);
    }
    n += put16(p + n, (unsigned)rdlen);
    return n + rdlen;
}

static void
fake_read(evutil_socket_t fd, short what, void *arg)
{
    unsigned char q[512], out[4096];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    char name[256] = "";
    size_t off = 12, len, an = 0;
    ssize_t n;
    int type, rcode = 0;

    (void)what;
    (void)arg;
    n = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from, &fromlen);
    if (n < 17)
        return;
    fake_queries++;
    if (fake_silent)
        return;
    while (off < (size_t)n && q[off] != 0) { /* the question name, as text */
        len = q[off];
        snprintf(name + strlen(name), sizeof(name) - strlen(name), "%s%.*s", name[0] ? "." : "",
                 (int)len, (const char *)q + off + 1);
        off += len + 1;
    }
    if (off + 5 > (size_t)n)
        return;
    type = (q[off + 1] << 8) | q[off + 2];
    off += 5; /* end of the question; drop any EDNS record after it */
    memcpy(out, q, off);
    out[2] = 0x84 | (q[2] & 0x01); /* QR, AA, RD copied */
    out[3] = 0x80;                 /* RA */
    put16(out + 4, 1);
    memset(out + 6, 0, 6);
    len = off;
    for (size_t i = 0; i < fake_nzone && rcode == 0; i++) {
        const struct fake_rr *rr = &fake_zone[i];

        if (strcasecmp(rr->name, name) != 0 || rr->type != type)
            continue;
        if (rr->rcode) {
            rcode = rr->rcode;
        } else if (len + 300 < sizeof(out)) {
            len += put_answer(out + len, rr);
            an++;
        }
    }
    if (rcode) {
        len = off;
        an = 0;
    }
    out[3] |= (unsigned char)rcode;
    put16(out + 6, (unsigned)an);
    sendto(fd, out, len, 0, (struct sockaddr *)&from, fromlen);
}

/* ------------------------------------------------------------------------
 * Fixture: an event base, the fake server and a resolver pointed at it
 */

struct fixture {
    struct event_base *base;
    int fd;
    struct event *server, *tick;
    struct resolver *r;
};

static void
tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg; /* only wakes the loop so run_until() can check its deadline */
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    struct timeval tv = {0, 20000};
    char err[256];

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->base = event_base_new();
    f->fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (f->fd < 0 || bind(f->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
        getsockname(f->fd, (struct sockaddr *)&sin, &slen) < 0)
        return -1;
    f->server = event_new(f->base, f->fd, EV_READ | EV_PERSIST, fake_read, NULL);
    event_add(f->server, NULL);
    f->tick = event_new(f->base, -1, EV_PERSIST, tick, NULL);
    event_add(f->tick, &tv);
    f->r = resolver_new(f->base, "127.0.0.1", ntohs(sin.sin_port), err, sizeof(err));
    if (f->r == NULL)
        return -1;
    fake_zone = NULL;
    fake_nzone = 0;
    fake_silent = false;
    fake_queries = 0;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    resolver_free(f->r);
    event_free(f->server);
    event_free(f->tick);
    close(f->fd);
    event_base_free(f->base);
    free(f);
    return 0;
}

struct answer {
    int calls;
    bool during_mx; /* the callback ran inside resolver_mx() */
    struct mx_result res;
};

static bool in_resolver_mx;

static void
record(void *arg, const struct mx_result *res)
{
    struct answer *a = arg;

    a->calls++;
    a->during_mx |= in_resolver_mx;
    a->res = *res;
}

static void
ask(struct fixture *f, const char *domain, struct answer *a)
{
    memset(a, 0, sizeof(*a));
    in_resolver_mx = true;
    resolver_mx(f->r, domain, record, a);
    in_resolver_mx = false;
    assert_int_equal(a->calls, 0);
}

static void
run_until(struct fixture *f, const int *calls, int want)
{
    time_t deadline = time(NULL) + 10;

    while (*calls < want) {
        assert_true(time(NULL) < deadline);
        event_base_loop(f->base, EVLOOP_ONCE);
    }
}

/* Asks for domain and waits for the one answer. */
static void
resolve(struct fixture *f, const char *domain, struct answer *a)
{
    ask(f, domain, a);
    run_until(f, &a->calls, 1);
    assert_int_equal(a->calls, 1);
    assert_false(a->during_mx);
}

static const char *
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
    const void *a = ss->ss_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

    return inet_ntop(ss->ss_family, a, buf, (socklen_t)len);
}

static void
assert_addr(const struct mx_host *h, int i, const char *want)
{
    char buf[INET6_ADDRSTRLEN];

    assert_true(i < h->naddrs);
    assert_non_null(addr_text(&h->addrs[i], buf, sizeof(buf)));
    assert_string_equal(buf, want);
    if (h->addrs[i].ss_family == AF_INET)
        assert_int_equal(((const struct sockaddr_in *)&h->addrs[i])->sin_port, 0);
    else
        assert_int_equal(((const struct sockaddr_in6 *)&h->addrs[i])->sin6_port, 0);
}

/* ------------------------------------------------------------------------
 * Without DNS
 */

static void
test_new_errors(void **state)
{
    struct fixture *f = *state;
    char err[256];

    assert_null(resolver_new(f->base, "dns.example", 53, err, sizeof(err)));
    assert_non_null(strstr(err, "numeric"));
    assert_null(resolver_new(f->base, "127.0.0.1", 0, err, sizeof(err)));
    assert_null(resolver_new(f->base, "::1", 65536, err, sizeof(err)));
    assert_non_null(strstr(err, "port"));
}

static void
test_literal_ipv4(void **state)
{
    struct fixture *f = *state;
    struct answer a;

    resolve(f, "[192.0.2.1]", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_false(a.res.implicit);
    assert_int_equal(a.res.nhosts, 1);
    assert_string_equal(a.res.hosts[0].name, "[192.0.2.1]");
    assert_int_equal(a.res.hosts[0].naddrs, 1);
    assert_int_equal(a.res.hosts[0].addrs[0].ss_family, AF_INET);
    assert_addr(&a.res.hosts[0], 0, "192.0.2.1");
    assert_int_equal(fake_queries, 0);
}

static void
test_literal_ipv6(void **state)
{
    struct fixture *f = *state;
    struct answer a;

    resolve(f, "[IPv6:2001:db8::25]", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_int_equal(a.res.nhosts, 1);
    assert_int_equal(a.res.hosts[0].addrs[0].ss_family, AF_INET6);
    assert_addr(&a.res.hosts[0], 0, "2001:db8::25");
    resolve(f, "[ipv6:::1]", &a); /* the tag ignores case */
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_addr(&a.res.hosts[0], 0, "::1");
    assert_int_equal(fake_queries, 0);
}

static void
test_literal_bad(void **state)
{
    static const char *bad[] = {
        "[]",         "[1.2.3]",       "[256.1.1.1]",    "[1.2.3.4",
        "[1.2.3.4]x", "[2001:db8::1]", "[IPv6:1.2.3.4]", "[IPv6:2001:db8:::1]",
        "[foo:bar]",  "[ 1.2.3.4]",
    };
    struct fixture *f = *state;
    struct answer a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resolve(f, bad[i], &a);
        assert_int_equal(a.res.status, RESOLVER_NXDOMAIN);
        assert_int_equal(a.res.nhosts, 0);
        assert_non_null(strstr(a.res.error, "bad address literal"));
        assert_non_null(strstr(a.res.error, bad[i]));
    }
    assert_int_equal(fake_queries, 0);
}

static void
test_invalid_names(void **state)
{
    struct fixture *f = *state;
    char longname[300];
    const char *bad[] = {
        "", ".", "a..example", ".example", "a b.example", "a\\.example", "tab\t.example", longname};
    struct answer a;

    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resolve(f, bad[i], &a);
        assert_int_equal(a.res.status, RESOLVER_NXDOMAIN);
        assert_non_null(strstr(a.res.error, "invalid domain name"));
    }
    assert_int_equal(fake_queries, 0);
}

/* resolver_free() answers everything pending, once, with TEMPFAIL. */
static void
test_free_cancels(void **state)
{
    struct fixture *f = *state;
    struct answer a, b, c;
    struct answer *all[] = {&a, &b, &c};

    fake_silent = true;
    ask(f, "slow.example", &a);
    ask(f, "other.example", &b);
    while (fake_queries < 2)
        event_base_loop(f->base, EVLOOP_ONCE);
    ask(f, "[192.0.2.1]", &c); /* answered, but not yet delivered */
    assert_int_equal(a.calls + b.calls, 0);
    resolver_free(f->r);
    f->r = NULL;
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        assert_int_equal(all[i]->calls, 1);
        assert_int_equal(all[i]->res.status, RESOLVER_TEMPFAIL);
        assert_int_equal(all[i]->res.nhosts, 0);
        assert_non_null(strstr(all[i]->res.error, "resolver shut down"));
    }
}

struct chain {
    struct resolver *r;
    struct answer first, second;
};

static void
chain_second(void *arg, const struct mx_result *res)
{
    record(&((struct chain *)arg)->second, res);
}

/* A callback that asks again while the resolver is being freed. */
static void
chain_first(void *arg, const struct mx_result *res)
{
    struct chain *c = arg;

    record(&c->first, res);
    resolver_mx(c->r, "again.example", chain_second, c);
}

static void
test_free_answers_requests_made_during_free(void **state)
{
    struct fixture *f = *state;
    struct chain c;

    memset(&c, 0, sizeof(c));
    c.r = f->r;
    fake_silent = true;
    resolver_mx(f->r, "slow.example", chain_first, &c);
    resolver_free(f->r);
    f->r = NULL;
    assert_int_equal(c.first.calls, 1);
    assert_int_equal(c.second.calls, 1);
    assert_int_equal(c.second.res.status, RESOLVER_TEMPFAIL);
}

static void
free_from_callback(void *arg, const struct mx_result *res)
{
    struct fixture *f = arg;

    assert_int_equal(res->status, RESOLVER_OK);
    resolver_free(f->r);
    f->r = NULL;
}

/* The caller may free the resolver from a callback. */
static void
test_free_inside_callback(void **state)
{
    struct fixture *f = *state;
    struct answer b;

    fake_silent = true;
    resolver_mx(f->r, "[192.0.2.1]", free_from_callback, f);
    ask(f, "slow.example", &b);
    while (f->r)
        event_base_loop(f->base, EVLOOP_ONCE);
    assert_int_equal(b.calls, 1);
    assert_int_equal(b.res.status, RESOLVER_TEMPFAIL);
}

/* ------------------------------------------------------------------------
 * Against the fake server
 */

static void
test_rcodes(void **state)
{
    static const struct fake_rr zone[] = {
        {"servfail.example", T_MX, RC_SERVFAIL, NULL, 0},
        {"refused.example", T_MX, RC_REFUSED, NULL, 0},
        {"formerr.example", T_MX, RC_FORMERR, NULL, 0},
        {"nx.example", T_MX, RC_NXDOMAIN, NULL, 0},
    };
    struct fixture *f = *state;
    struct answer a;

    ZONE(zone);
    resolve(f, "servfail.example", &a);
    assert_int_equal(a.res.status, RESOLVER_TEMPFAIL);
    assert_string_equal(a.res.error,
                        "DNS: servfail.example: MX lookup failed: server failure (SERVFAIL)");
    resolve(f, "refused.example", &a);
    assert_int_equal(a.res.status, RESOLVER_TEMPFAIL);
    assert_non_null(strstr(a.res.error, "REFUSED"));
    resolve(f, "formerr.example", &a);
    assert_int_equal(a.res.status, RESOLVER_TEMPFAIL);
    resolve(f, "nx.example.", &a); /* a trailing dot is fine */
    assert_int_equal(a.res.status, RESOLVER_NXDOMAIN);
    assert_string_equal(a.res.error, "DNS: nx.example: no such domain");
}

static void
test_mx_order_and_addresses(void **state)
{
    static const struct fake_rr zone[] = {
        {"example.net", T_MX, 0, "mx2.example.net", 20},
        {"example.net", T_MX, 0, "mx1.example.net", 10},
        {"example.net", T_MX, 0, "mx3.example.net", 30},
        {"mx1.example.net", T_A, 0, "192.0.2.1", 0},
        {"mx1.example.net", T_AAAA, 0, "2001:db8::1", 0},
        {"mx2.example.net", T_AAAA, 0, "2001:db8::2", 0},
        {"mx3.example.net", T_A, 0, "192.0.2.3", 0},
        {"mx3.example.net", T_A, 0, "192.0.2.33", 0},
    };
    struct fixture *f = *state;
    struct answer a;

    ZONE(zone);
    resolve(f, "example.net", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_false(a.res.implicit);
    assert_int_equal(a.res.nhosts, 3);
    assert_string_equal(a.res.hosts[0].name, "mx1.example.net");
    assert_int_equal(a.res.hosts[0].pref, 10);
    assert_int_equal(a.res.hosts[0].naddrs, 2);
    assert_addr(&a.res.hosts[0], 0, "192.0.2.1"); /* IPv4 first */
    assert_addr(&a.res.hosts[0], 1, "2001:db8::1");
    assert_string_equal(a.res.hosts[1].name, "mx2.example.net");
    assert_int_equal(a.res.hosts[1].naddrs, 1);
    assert_addr(&a.res.hosts[1], 0, "2001:db8::2");
    assert_string_equal(a.res.hosts[2].name, "mx3.example.net");
    assert_int_equal(a.res.hosts[2].naddrs, 2);
    assert_addr(&a.res.hosts[2], 1, "192.0.2.33");
    assert_int_equal(fake_queries, 7); /* MX, then A and AAAA of each */
}

static void
test_null_mx_answer(void **state)
{
    static const struct fake_rr zone[] = {
        {"nomail.example", T_MX, 0, ".", 0},
        {"nomail.example", T_A, 0, "192.0.2.1", 0},
    };
    struct fixture *f = *state;
    struct answer a;

    ZONE(zone);
    resolve(f, "nomail.example", &a);
    assert_int_equal(a.res.status, RESOLVER_NULL_MX);
    assert_int_equal(a.res.nhosts, 0);
    assert_non_null(strstr(a.res.error, "RFC 7505"));
    assert_int_equal(fake_queries, 1); /* no implicit MX behind a null MX */
}

/* A "." among real exchangers is skipped, not a null MX. */
static void
test_root_among_exchangers(void **state)
{
    static const struct fake_rr zone[] = {
        {"mixed.example", T_MX, 0, ".", 0},
        {"mixed.example", T_MX, 0, "mx.mixed.example", 10},
        {"mx.mixed.example", T_A, 0, "192.0.2.5", 0},
    };
    struct fixture *f = *state;
    struct answer a;

    ZONE(zone);
    resolve(f, "mixed.example", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_int_equal(a.res.nhosts, 1);
    assert_string_equal(a.res.hosts[0].name, "mx.mixed.example");
}

static void
test_implicit_mx(void **state)
{
    static const struct fake_rr zone[] = {
        {"plain.example", T_A, 0, "192.0.2.9", 0},
        {"plain.example", T_AAAA, 0, "2001:db8::9", 0},
        {"v4fail.example", T_A, RC_SERVFAIL, NULL, 0},
        {"v6fail.example", T_A, 0, "192.0.2.10", 0},
        {"v6fail.example", T_AAAA, RC_SERVFAIL, NULL, 0},
    };
    struct fixture *f = *state;
    struct answer a;

    ZONE(zone);
    resolve(f, "plain.example", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_true(a.res.implicit);
    assert_int_equal(a.res.nhosts, 1);
    assert_string_equal(a.res.hosts[0].name, "plain.example");
    assert_int_equal(a.res.hosts[0].pref, 0);
    assert_int_equal(a.res.hosts[0].naddrs, 2);
    assert_addr(&a.res.hosts[0], 0, "192.0.2.9");
    assert_addr(&a.res.hosts[0], 1, "2001:db8::9");

    resolve(f, "nodata.example", &a);
    assert_int_equal(a.res.status, RESOLVER_NXDOMAIN);
    assert_string_equal(a.res.error, "DNS: nodata.example: no MX and no A/AAAA records");

    resolve(f, "v4fail.example", &a); /* may succeed later: not permanent */
    assert_int_equal(a.res.status, RESOLVER_TEMPFAIL);
    assert_non_null(strstr(a.res.error, "A lookup failed: server failure"));

    resolve(f, "v6fail.example", &a); /* one family is enough */
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_int_equal(a.res.hosts[0].naddrs, 1);
}

static void
test_exchangers_without_address(void **state)
{
    static const struct fake_rr zone[] = {
        {"half.example", T_MX, 0, "broken.half.example", 5},
        {"half.example", T_MX, 0, "good.half.example", 10},
        {"broken.half.example", T_A, RC_SERVFAIL, NULL, 0},
        {"good.half.example", T_A, 0, "192.0.2.20", 0},
        {"dead.example", T_MX, 0, "gone.dead.example", 10},
        {"dead.example", T_MX, 0, "broken.half.example", 20},
        {"gone.dead.example", T_A, RC_NXDOMAIN, NULL, 0},
        {"gone.dead.example", T_AAAA, RC_NXDOMAIN, NULL, 0},
        {"nxonly.example", T_MX, 0, "gone.dead.example", 10},
    };
    struct fixture *f = *state;
    struct answer a;

    ZONE(zone);
    resolve(f, "half.example", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_int_equal(a.res.nhosts, 1);
    assert_string_equal(a.res.hosts[0].name, "good.half.example");
    assert_int_equal(a.res.hosts[0].pref, 10);

    resolve(f, "dead.example", &a);
    assert_int_equal(a.res.status, RESOLVER_TEMPFAIL);
    assert_string_equal(a.res.error, "DNS: dead.example: no address for any MX host "
                                     "(broken.half.example: A lookup failed: server failure "
                                     "(SERVFAIL))");

    resolve(f, "nxonly.example", &a);
    assert_int_equal(a.res.status, RESOLVER_TEMPFAIL);
    assert_string_equal(a.res.error, "DNS: nxonly.example: no address for any MX host "
                                     "(gone.dead.example: no such domain)");
}

static void
test_limits(void **state)
{
    static char names[20][32];
    static char v4[10][16], v6[10][24];
    static struct fake_rr zone[20 + 20 + 20];
    struct fixture *f = *state;
    struct answer a;
    size_t n = 0;

    /* 20 exchangers, preferences 19 down to 0; short names keep the answer
     * under 512 bytes (c-ares would retry a longer one over TCP). */
    for (int i = 0; i < 20; i++) {
        snprintf(names[i], sizeof(names[i]), "m%d.x", i);
        zone[n++] = (struct fake_rr){"many.example", T_MX, 0, names[i], (unsigned)(19 - i)};
        zone[n++] = (struct fake_rr){names[i], T_A, 0, "192.0.2.1", 0};
    }
    for (int i = 0; i < 10; i++) { /* a host with 10 + 10 addresses */
        snprintf(v4[i], sizeof(v4[i]), "192.0.2.%d", 100 + i);
        snprintf(v6[i], sizeof(v6[i]), "2001:db8::%d", 100 + i);
        zone[n++] = (struct fake_rr){"multi.example", T_A, 0, v4[i], 0};
        zone[n++] = (struct fake_rr){"multi.example", T_AAAA, 0, v6[i], 0};
    }
    fake_zone = zone;
    fake_nzone = n;
    resolve(f, "many.example", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_int_equal(a.res.nhosts, MX_HOSTS_MAX);
    for (int i = 0; i < MX_HOSTS_MAX; i++)
        assert_int_equal(a.res.hosts[i].pref, i);
    assert_string_equal(a.res.hosts[0].name, "m19.x");

    resolve(f, "multi.example", &a);
    assert_int_equal(a.res.status, RESOLVER_OK);
    assert_int_equal(a.res.hosts[0].naddrs, MX_ADDRS_MAX);
    for (int i = 0; i < MX_ADDRS_MAX; i++) /* half of each family */
        assert_int_equal(a.res.hosts[0].addrs[i].ss_family,
                         i < MX_ADDRS_MAX / 2 ? AF_INET : AF_INET6);
}

/* Many queries at once, on one resolver. */
static void
test_parallel(void **state)
{
    static const struct fake_rr zone[] = {
        {"p.example", T_MX, 0, "mx.p.example", 10},
        {"mx.p.example", T_A, 0, "192.0.2.50", 0},
    };
    struct fixture *f = *state;
    static struct answer a[24];
    int done = 0;

    ZONE(zone);
    for (int i = 0; i < 24; i++)
        ask(f, i % 3 == 2 ? "nx.p.example" : "p.example", &a[i]);
    while (done < 24) {
        run_until(f, &a[done].calls, 1);
        done++;
    }
    for (int i = 0; i < 24; i++) {
        assert_int_equal(a[i].calls, 1);
        if (i % 3 == 2)
            assert_int_equal(a[i].res.status, RESOLVER_NXDOMAIN); /* NODATA everywhere */
        else
            assert_int_equal(a[i].res.status, RESOLVER_OK);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_below),
        cmocka_unit_test(test_order_by_preference),
        cmocka_unit_test(test_order_shuffles_equal),
        cmocka_unit_test(test_order_drops_root_and_repeats),
        cmocka_unit_test(test_order_cap),
        cmocka_unit_test(test_null_mx),
        cmocka_unit_test_setup_teardown(test_new_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literal_ipv4, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literal_ipv6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_literal_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_answers_requests_made_during_free, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_inside_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rcodes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mx_order_and_addresses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_mx_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_among_exchangers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_implicit_mx, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exchangers_without_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
