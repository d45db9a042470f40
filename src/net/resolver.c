/*
 * MX resolution on c-ares, driven by the libevent loop: one event per
 * c-ares socket and one timer for c-ares's retransmissions. A query is an
 * MX lookup, then A and AAAA lookups of every chosen exchanger in parallel
 * (or of the domain itself: the implicit MX). Answers always reach the
 * caller from an event of their own, never from inside c-ares.
 * Depends on base/ only; see docs/dns.md for the policy.
 */
#include "net/resolver.h"

#include "base/log.h"
#include "base/xmalloc.h"
#include "net/mx_order.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define RESOLVER_TIMEOUT_MS 3000 /* first try; c-ares doubles it on the next round */
#define RESOLVER_TRIES 2

struct resolver_sock { /* one c-ares socket and its event */
    struct resolver *r;
    ares_socket_t fd;
    struct event *ev;
    struct resolver_sock *next;
};

struct resolver {
    struct event_base *base;
    ares_channel channel; /* NULL once resolver_free() destroyed it */
    struct event *timer;
    struct resolver_sock *socks;
    struct mx_query *queries; /* not yet answered */
    struct mx_rng rng;
    bool one_server; /* ARES_FLAG_NOCHECKRESP: SERVFAIL and REFUSED reach us */
    bool closing;
};

struct lookup { /* one c-ares query: the callback argument */
    struct mx_query *q;
    int type;   /* ns_t_mx, ns_t_a, ns_t_aaaa */
    int target; /* index into targets[] and res.hosts[] (A, AAAA) */
    int status; /* ARES_*, once answered */
};

struct mx_target { /* an exchanger while its addresses are looked up */
    struct lookup a, aaaa;
    int n4, n6;
    struct in_addr v4[MX_ADDRS_MAX];
    struct in6_addr v6[MX_ADDRS_MAX];
};

struct mx_query {
    struct resolver *r;
    struct mx_query *prev, *next;
    void (*cb)(void *arg, const struct mx_result *res);
    void *arg;
    struct event *done; /* made active once res is final */
    char domain[256];   /* without a trailing dot */
    int inflight;       /* c-ares queries (and holds) outstanding */
    struct lookup mx;
    int ntargets;
    struct mx_target targets[MX_HOSTS_MAX]; /* names and prefs in res.hosts[] */
    struct mx_result res;
};

static void resolver_arm_timer(struct resolver *r);

/* ------------------------------------------------------------------------
 * Answers: every query ends in query_ok() or query_fail(), which only
 * schedule query_deliver() on the loop.
 */

static void
query_unlink(struct mx_query *q)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        q->r->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
}

static void
query_free(struct mx_query *q)
{
    event_free(q->done);
    free(q);
}

static void
query_deliver(evutil_socket_t fd, short what, void *arg)
{
    struct mx_query *q = arg;

    (void)fd;
    (void)what;
    query_unlink(q);
    q->cb(q->arg, &q->res); /* may free the resolver: touch only q after */
    query_free(q);
}

static void
query_ok(struct mx_query *q)
{
    q->res.status = RESOLVER_OK;
    q->res.error[0] = '\0';
    event_active(q->done, EV_TIMEOUT, 1);
}

static void __attribute__((format(printf, 3, 4)))
query_fail(struct mx_query *q, enum resolver_status status, const char *fmt, ...)
{
    struct mx_result *res = &q->res;
    va_list ap;
    int n;

    res->status = status;
    res->nhosts = 0;
    /* A long name must not crowd out the reason. */
    n = snprintf(res->error, sizeof(res->error), "DNS: %.100s%s: ", q->domain,
                 strlen(q->domain) > 100 ? "..." : "");
    if (n > 0 && (size_t)n < sizeof(res->error)) {
        va_start(ap, fmt);
        vsnprintf(res->error + n, sizeof(res->error) - (size_t)n, fmt, ap);
        va_end(ap);
    }
    event_active(q->done, EV_TIMEOUT, 1);
}

/* Reads after "MX lookup " or "A lookup ". */
static const char *
status_text(const struct resolver *r, int status)
{
    switch (status) {
    case ARES_ETIMEOUT:
        return "timed out";
    case ARES_ESERVFAIL:
        return "failed: server failure (SERVFAIL)";
    case ARES_EREFUSED:
        return "refused by the server (REFUSED)";
    case ARES_ECONNREFUSED: /* c-ares 1.18 also says so after SERVFAIL from every server */
        return r->one_server ? "failed: connection refused"
                             : "failed: no DNS server gave a usable answer";
    case ARES_EFORMERR:
        return "failed: format error (FORMERR)";
    case ARES_ENOTIMP:
        return "failed: not implemented (NOTIMP)";
    case ARES_EBADRESP:
        return "failed: malformed response";
    case ARES_ENODATA:
        return "found no records";
    case ARES_ENOTFOUND:
        return "found no such domain";
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
        return "cancelled";
    default:
        return ares_strerror(status);
    }
}

/* NXDOMAIN and NODATA are answers; anything else may go away on retry. */
static bool
lookup_is_temp(int status)
{
    return status != ARES_SUCCESS && status != ARES_ENODATA && status != ARES_ENOTFOUND &&
           status != ARES_EBADNAME;
}

/* ------------------------------------------------------------------------
 * Addresses of the exchangers (or of the domain, for the implicit MX)
 */

static void lookup_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen);

static void
lookup_start(struct mx_query *q, struct lookup *l, int type, int target, const char *name)
{
    l->q = q;
    l->type = type;
    l->target = target;
    l->status = ARES_ETIMEOUT;
    q->inflight++;
    /* May call lookup_done() before it returns (bad name, no memory). */
    ares_query(q->r->channel, name, ns_c_in, type, lookup_done, l);
}

static void
addr_answer(struct mx_query *q, struct lookup *l, const unsigned char *abuf, int alen)
{
    struct mx_target *t = &q->targets[l->target];
    int n = MX_ADDRS_MAX;

    if (l->status != ARES_SUCCESS)
        return;
    if (l->type == ns_t_a) {
        struct ares_addrttl a[MX_ADDRS_MAX];

        l->status = ares_parse_a_reply(abuf, alen, NULL, a, &n);
        for (t->n4 = 0; l->status == ARES_SUCCESS && t->n4 < n; t->n4++)
            t->v4[t->n4] = a[t->n4].ipaddr;
    } else {
        struct ares_addr6ttl a[MX_ADDRS_MAX];

        l->status = ares_parse_aaaa_reply(abuf, alen, NULL, a, &n);
        for (t->n6 = 0; l->status == ARES_SUCCESS && t->n6 < n; t->n6++)
            memcpy(&t->v6[t->n6], &a[t->n6].ip6addr, sizeof(t->v6[0]));
    }
    if (l->status == ARES_SUCCESS && n == 0) /* e.g. only a CNAME */
        l->status = ARES_ENODATA;
}

/* IPv4 first, then IPv6, in the order DNS gave them; when both families
 * have more than half of MX_ADDRS_MAX, each keeps half. */
static void
host_fill(struct mx_host *h, const struct mx_target *t)
{
    int n4 = t->n4, n6 = t->n6, half = MX_ADDRS_MAX / 2;

    if (n4 + n6 > MX_ADDRS_MAX) {
        if (n4 > half && n6 > half)
            n4 = half;
        else if (n4 > half)
            n4 = MX_ADDRS_MAX - n6;
        n6 = MX_ADDRS_MAX - n4 < n6 ? MX_ADDRS_MAX - n4 : n6;
    }
    memset(h->addrs, 0, sizeof(h->addrs));
    h->naddrs = 0;
    for (int i = 0; i < n4; i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&h->addrs[h->naddrs++];

        sin->sin_family = AF_INET;
        sin->sin_addr = t->v4[i];
    }
    for (int i = 0; i < n6; i++) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->addrs[h->naddrs++];

        sin6->sin6_family = AF_INET6;
        sin6->sin6_addr = t->v6[i];
    }
}

/* Why target i has no address, for the error text. */
static void
target_reason(const struct mx_query *q, int i, char *buf, size_t len)
{
    const struct mx_target *t = &q->targets[i];
    const char *name = q->res.hosts[i].name;

    if (lookup_is_temp(t->a.status))
        snprintf(buf, len, "%s: A lookup %s", name, status_text(q->r, t->a.status));
    else if (lookup_is_temp(t->aaaa.status))
        snprintf(buf, len, "%s: AAAA lookup %s", name, status_text(q->r, t->aaaa.status));
    else if (t->a.status == ARES_ENOTFOUND || t->aaaa.status == ARES_ENOTFOUND)
        snprintf(buf, len, "%s: no such domain", name);
    else
        snprintf(buf, len, "%s: no A/AAAA records", name);
}

static void
targets_fail(struct mx_query *q)
{
    char why[160];
    int bad = 0; /* the first target with a temporary error, else the first */
    bool temp = false;

    for (int i = 0; i < q->ntargets && !temp; i++) {
        temp = lookup_is_temp(q->targets[i].a.status) || lookup_is_temp(q->targets[i].aaaa.status);
        bad = temp ? i : 0;
    }
    target_reason(q, bad, why, sizeof(why));
    if (!q->res.implicit)
        query_fail(q, RESOLVER_TEMPFAIL, "no address for any MX host (%s)", why);
    else if (temp)
        query_fail(q, RESOLVER_TEMPFAIL, "no MX records, and %s", why);
    else /* RFC 5321 5.1: neither MX nor address records */
        query_fail(q, RESOLVER_NXDOMAIN, "no MX and no A/AAAA records");
}

/* All address lookups answered: keep the exchangers that have addresses,
 * in order (hosts[0..k) are kept; hosts[k..i) are spent). */
static void
targets_done(struct mx_query *q)
{
    struct mx_host *hosts = q->res.hosts;
    int k = 0;

    for (int i = 0; i < q->ntargets; i++) {
        const struct mx_target *t = &q->targets[i];

        if (t->n4 + t->n6 == 0)
            continue;
        if (k != i) {
            memcpy(hosts[k].name, hosts[i].name, sizeof(hosts[k].name));
            hosts[k].pref = hosts[i].pref;
        }
        host_fill(&hosts[k++], t);
    }
    if (k == 0) {
        targets_fail(q);
        return;
    }
    q->res.nhosts = k;
    query_ok(q);
}

static void
targets_lookup(struct mx_query *q)
{
    q->inflight++; /* hold: answers given right away must not end the query early */
    for (int i = 0; i < q->ntargets; i++) {
        lookup_start(q, &q->targets[i].a, ns_t_a, i, q->res.hosts[i].name);
        lookup_start(q, &q->targets[i].aaaa, ns_t_aaaa, i, q->res.hosts[i].name);
    }
    if (--q->inflight == 0)
        targets_done(q);
}

/* ------------------------------------------------------------------------
 * The MX lookup
 */

static void
mx_use(struct mx_query *q, const struct ares_mx_reply *mx)
{
    struct mx_record *recs;
    int n = 0, k;

    for (const struct ares_mx_reply *p = mx; p; p = p->next)
        n++;
    /* n is bounded by the size of one DNS message (64 KiB over TCP). */
    recs = xcalloc((size_t)n, sizeof(*recs));
    n = 0;
    for (const struct ares_mx_reply *p = mx; p; p = p->next) {
        recs[n].name = p->host;
        recs[n++].pref = p->priority;
    }
    if (mx_order_is_null(recs, n)) {
        free(recs);
        query_fail(q, RESOLVER_NULL_MX, "null MX: the domain accepts no mail (RFC 7505)");
        return;
    }
    k = mx_order(recs, n, MX_HOSTS_MAX, &q->r->rng);
    for (int i = 0; i < k; i++) {
        struct mx_host *h = &q->res.hosts[i];
        size_t len = strlen(recs[i].name);

        if (len > 0 && recs[i].name[len - 1] == '.')
            len--;
        snprintf(h->name, sizeof(h->name), "%.*s", (int)len, recs[i].name);
        h->pref = recs[i].pref;
    }
    free(recs);
    q->ntargets = k;
    targets_lookup(q);
}

/* RFC 5321 5.1: no MX records, so the domain itself is the one host. */
static void
mx_implicit(struct mx_query *q)
{
    q->res.implicit = true;
    memcpy(q->res.hosts[0].name, q->domain, sizeof(q->domain));
    q->res.hosts[0].pref = 0;
    q->ntargets = 1;
    targets_lookup(q);
}

static void
mx_answer(struct mx_query *q, int status, const unsigned char *abuf, int alen)
{
    struct ares_mx_reply *mx = NULL;

    if (status == ARES_SUCCESS)
        status = ares_parse_mx_reply(abuf, alen, &mx);
    if (status == ARES_SUCCESS && mx == NULL) /* e.g. only a CNAME: c-ares 1.18 says SUCCESS */
        status = ARES_ENODATA;
    switch (status) {
    case ARES_SUCCESS:
        mx_use(q, mx);
        break;
    case ARES_ENODATA:
        mx_implicit(q);
        break;
    case ARES_ENOTFOUND:
        query_fail(q, RESOLVER_NXDOMAIN, "no such domain");
        break;
    case ARES_EBADNAME:
        query_fail(q, RESOLVER_NXDOMAIN, "invalid domain name");
        break;
    default:
        query_fail(q, RESOLVER_TEMPFAIL, "MX lookup %s", status_text(q->r, status));
        break;
    }
    if (mx)
        ares_free_data(mx);
}

static void
lookup_done(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct lookup *l = arg;
    struct mx_query *q = l->q;

    (void)timeouts;
    q->inflight--;
    l->status = status;
    if (q->r->closing)
        return; /* ARES_EDESTRUCTION: resolver_free() answers every query */
    if (l->type == ns_t_mx) {
        mx_answer(q, status, abuf, alen);
        return;
    }
    addr_answer(q, l, abuf, alen);
    if (q->inflight == 0)
        targets_done(q);
}

/* ------------------------------------------------------------------------
 * Domains and address literals, answered without DNS
 */

static void
literal_answer(struct mx_query *q, const char *lit)
{
    struct mx_host *h = &q->res.hosts[0];
    size_t len = strlen(lit);
    char text[64];

    /* RFC 5321 4.1.3: "[" IPv4 "]" or "[IPv6:" IPv6 "]" */
    if (len < 3 || lit[len - 1] != ']' || len - 2 >= sizeof(text))
        goto bad;
    memcpy(text, lit + 1, len - 2);
    text[len - 2] = '\0';
    if (strncasecmp(text, "IPv6:", 5) == 0) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&h->addrs[0];

        if (inet_pton(AF_INET6, text + 5, &sin6->sin6_addr) != 1)
            goto bad;
        sin6->sin6_family = AF_INET6;
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&h->addrs[0];

        if (inet_pton(AF_INET, text, &sin->sin_addr) != 1)
            goto bad;
        sin->sin_family = AF_INET;
    }
    snprintf(h->name, sizeof(h->name), "%s", lit);
    h->naddrs = 1;
    q->res.nhosts = 1;
    query_ok(q);
    return;
bad:
    memset(h, 0, sizeof(*h));
    query_fail(q, RESOLVER_NXDOMAIN, "bad address literal");
}

/* Refuses what no mail domain holds: empty labels, spaces, controls, and
 * '\' (c-ares would read it as an escape). Other bytes are left to DNS. */
static bool
domain_ok(const char *d, size_t len)
{
    if (len == 0 || len > 253 || d[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];

        if (c <= ' ' || c == 0x7f || c == '\\' || (c == '.' && d[i + 1] == '.'))
            return false;
    }
    return true;
}

void
resolver_mx(struct resolver *r, const char *domain,
            void (*cb)(void *arg, const struct mx_result *res), void *arg)
{
    struct mx_query *q = xcalloc(1, sizeof(*q));
    size_t len = strlen(domain);

    q->r = r;
    q->cb = cb;
    q->arg = arg;
    q->done = event_new(r->base, -1, 0, query_deliver, q);
    if (q->done == NULL)
        fatalx("resolver: event_new failed");
    q->next = r->queries;
    if (r->queries)
        r->queries->prev = q;
    r->queries = q;
    if (len > 1 && domain[len - 1] == '.')
        len--;
    snprintf(q->domain, sizeof(q->domain), "%.*s", (int)len, domain);
    if (r->closing)
        return; /* called from a callback of resolver_free(), which answers it */
    if (domain[0] == '[')
        literal_answer(q, domain);
    else if (!domain_ok(domain, len))
        query_fail(q, RESOLVER_NXDOMAIN, "invalid domain name");
    else
        lookup_start(q, &q->mx, ns_t_mx, -1, q->domain);
    resolver_arm_timer(r);
}

/* ------------------------------------------------------------------------
 * c-ares on libevent
 */

static void
resolver_arm_timer(struct resolver *r)
{
    struct timeval tv, *tvp;

    if (r->channel == NULL)
        return;
    tvp = ares_timeout(r->channel, NULL, &tv);
    if (tvp)
        evtimer_add(r->timer, tvp);
    else
        evtimer_del(r->timer);
}

static void
resolver_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct resolver *r = arg;

    (void)fd;
    (void)what;
    ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    resolver_arm_timer(r);
}

static void
resolver_sock_ready(evutil_socket_t fd, short what, void *arg)
{
    struct resolver *r = ((struct resolver_sock *)arg)->r; /* arg may go in process */

    ares_process_fd(r->channel, (what & EV_READ) ? fd : ARES_SOCKET_BAD,
                    (what & EV_WRITE) ? fd : ARES_SOCKET_BAD);
    resolver_arm_timer(r);
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opened, changed or (0, 0) is closing fd. */
static void
resolver_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct resolver *r = data;
    struct resolver_sock **pp = &r->socks, *s;
    short what = EV_PERSIST | (readable ? EV_READ : 0) | (writable ? EV_WRITE : 0);

    while (*pp && (*pp)->fd != fd)
        pp = &(*pp)->next;
    s = *pp;
    if (s)
        event_free(s->ev);
    if (!readable && !writable) {
        if (s) {
            *pp = s->next;
            free(s);
        }
        return;
    }
    if (s == NULL) {
        s = xcalloc(1, sizeof(*s));
        s->r = r;
        s->fd = fd;
        s->next = r->socks;
        r->socks = s;
    }
    s->ev = event_new(r->base, fd, what, resolver_sock_ready, s);
    if (s->ev == NULL || event_add(s->ev, NULL) < 0)
        fatalx("resolver: cannot watch DNS socket %d", (int)fd);
}

static int
resolver_set_server(struct resolver *r, const char *server, int port, char *err, size_t errlen)
{
    struct ares_addr_port_node node;
    int rc;

    memset(&node, 0, sizeof(node));
    if (port < 1 || port > 65535) {
        snprintf(err, errlen, "resolver: bad port %d", port);
        return -1;
    }
    if (inet_pton(AF_INET, server, &node.addr.addr4) == 1)
        node.family = AF_INET;
    else if (inet_pton(AF_INET6, server, &node.addr.addr6) == 1)
        node.family = AF_INET6;
    else {
        snprintf(err, errlen, "resolver: %s is not a numeric IP address", server);
        return -1;
    }
    node.udp_port = node.tcp_port = port; /* TCP after a truncated UDP answer */
    rc = ares_set_servers_ports(r->channel, &node);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: %s: %s", server, ares_strerror(rc));
        return -1;
    }
    return 0;
}

static uint64_t
resolver_seed(void)
{
    struct timespec ts;
    uint64_t seed;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ (uint64_t)getpid();
}

struct resolver *
resolver_new(struct event_base *base, const char *server, int port, char *err, size_t errlen)
{
    struct ares_options opts;
    struct resolver *r;
    int rc;

    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: c-ares: %s", ares_strerror(rc));
        return NULL;
    }
    r = xcalloc(1, sizeof(*r));
    r->base = base;
    memset(&opts, 0, sizeof(opts));
    opts.timeout = RESOLVER_TIMEOUT_MS;
    opts.tries = RESOLVER_TRIES;
    opts.sock_state_cb = resolver_sock_state;
    opts.sock_state_cb_data = r;
    /* With one server there is no other to ask after a SERVFAIL or REFUSED:
     * let c-ares hand those answers over, so errors name them. */
    r->one_server = server != NULL;
    opts.flags = r->one_server ? ARES_FLAG_NOCHECKRESP : 0;
    rc = ares_init_options(&r->channel, &opts,
                           ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_SOCK_STATE_CB |
                               (r->one_server ? ARES_OPT_FLAGS : 0));
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "resolver: c-ares: %s", ares_strerror(rc));
        free(r);
        ares_library_cleanup();
        return NULL;
    }
    if (server && resolver_set_server(r, server, port, err, errlen) < 0) {
        ares_destroy(r->channel);
        free(r);
        ares_library_cleanup();
        return NULL;
    }
    r->timer = evtimer_new(base, resolver_timeout, r);
    if (r->timer == NULL)
        fatalx("resolver: evtimer_new failed");
    mx_rng_seed(&r->rng, resolver_seed());
    return r;
}

void
resolver_free(struct resolver *r)
{
    struct mx_query *q;

    if (r == NULL)
        return;
    r->closing = true;
    ares_destroy(r->channel); /* every lookup ends with ARES_EDESTRUCTION */
    r->channel = NULL;
    while (r->socks) { /* c-ares closed them; drop what may be left */
        struct resolver_sock *s = r->socks;

        r->socks = s->next;
        event_free(s->ev);
        free(s);
    }
    /* Callbacks may ask for more (resolver_mx() queues them): loop until empty. */
    while ((q = r->queries) != NULL) {
        query_unlink(q);
        q->res.implicit = false;
        query_fail(q, RESOLVER_TEMPFAIL, "resolver shut down");
        q->cb(q->arg, &q->res);
        query_free(q);
    }
    event_free(r->timer);
    ares_library_cleanup();
    free(r);
}
