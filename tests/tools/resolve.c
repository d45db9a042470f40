/*
 * resolve [-c MS] SERVER PORT DOMAIN...: looks up the mail exchangers of
 * every DOMAIN at once through src/net/resolver.c and prints each answer
 * as it arrives (SERVER "-" is /etc/resolv.conf). With -c, the resolver is
 * freed after MS milliseconds, cancelling what is still pending. Output,
 * one line each, N being the DOMAIN's position from 0:
 *   result N DOMAIN STATUS implicit=0|1 hosts=COUNT
 *   host N PREF NAME ADDRESS...          (COUNT lines, in order)
 *   error N TEXT                         (when STATUS is not OK)
 * Exits 0, 1 on a resolver error, 2 on usage, 3 when the resolver broke its
 * contract (a callback inside resolver_mx(), or not exactly one per query).
 */
#include "base/log.h"
#include "net/resolver.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lookup {
    int index;
    const char *domain;
    int answers;
};

static int issuing; /* set while resolver_mx() runs */
static int broken;
static int pending;
static struct event_base *base;
static struct resolver *resolver; /* NULL once freed */

static const char *
status_name(enum resolver_status s)
{
    switch (s) {
    case RESOLVER_OK:
        return "OK";
    case RESOLVER_NULL_MX:
        return "NULL_MX";
    case RESOLVER_NXDOMAIN:
        return "NXDOMAIN";
    case RESOLVER_TEMPFAIL:
        return "TEMPFAIL";
    }
    return "?";
}

static void
print_host(int index, const struct mx_host *h)
{
    char text[INET6_ADDRSTRLEN];

    printf("host %d %u %s", index, h->pref, h->name);
    for (int i = 0; i < h->naddrs; i++) {
        const struct sockaddr_storage *ss = &h->addrs[i];
        const void *a = ss->ss_family == AF_INET
                            ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
                            : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

        if (inet_ntop(ss->ss_family, a, text, sizeof(text)) == NULL)
            snprintf(text, sizeof(text), "bad-family-%d", ss->ss_family);
        printf(" %s", text);
    }
    printf("\n");
}

static void
answered(void *arg, const struct mx_result *res)
{
    struct lookup *l = arg;

    if (issuing) {
        printf("contract %d callback inside resolver_mx\n", l->index);
        broken = 1;
    }
    if (++l->answers != 1) {
        printf("contract %d answered %d times\n", l->index, l->answers);
        broken = 1;
    }
    printf("result %d %s %s implicit=%d hosts=%d\n", l->index, l->domain, status_name(res->status),
           res->implicit ? 1 : 0, res->nhosts);
    for (int i = 0; i < res->nhosts; i++)
        print_host(l->index, &res->hosts[i]);
    if (res->status != RESOLVER_OK)
        printf("error %d %s\n", l->index, res->error);
    fflush(stdout);
    if (--pending == 0)
        event_base_loopexit(base, NULL);
}

static void
cancel(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    resolver_free(resolver); /* answers what is pending, with TEMPFAIL */
    resolver = NULL;
    event_base_loopexit(base, NULL);
}

int
main(int argc, char **argv)
{
    struct lookup *lookups;
    struct event *timer = NULL;
    char err[256];
    long cancel_ms = -1;
    int opt, n;

    log_init("resolve", false);
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt != 'c')
            goto usage;
        cancel_ms = strtol(optarg, NULL, 10);
    }
    if (argc - optind < 3)
        goto usage;
    base = event_base_new();
    resolver = resolver_new(base, strcmp(argv[optind], "-") == 0 ? NULL : argv[optind],
                            (int)strtol(argv[optind + 1], NULL, 10), err, sizeof(err));
    if (resolver == NULL) {
        fprintf(stderr, "resolve: %s\n", err);
        return 1;
    }
    n = argc - optind - 2;
    lookups = calloc((size_t)n, sizeof(*lookups));
    pending = n;
    issuing = 1;
    for (int i = 0; i < n; i++) {
        lookups[i] = (struct lookup){i, argv[optind + 2 + i], 0};
        resolver_mx(resolver, lookups[i].domain, answered, &lookups[i]);
    }
    issuing = 0;
    if (cancel_ms >= 0) {
        struct timeval tv = {cancel_ms / 1000, (cancel_ms % 1000) * 1000};

        timer = evtimer_new(base, cancel, NULL);
        evtimer_add(timer, &tv);
    }
    event_base_dispatch(base);
    resolver_free(resolver);
    if (timer)
        event_free(timer);
    for (int i = 0; i < n; i++) {
        if (lookups[i].answers != 1) {
            printf("contract %d answered %d times\n", i, lookups[i].answers);
            broken = 1;
        }
    }
    free(lookups);
    event_base_free(base);
    return broken ? 3 : 0;
usage:
    fprintf(stderr, "usage: resolve [-c MS] SERVER PORT DOMAIN...\n");
    return 2;
}
