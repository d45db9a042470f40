/*
 * Asynchronous DNS through c-ares on the libevent loop: MX lookups with the
 * address records of each exchanger, as RFC 5321 section 5.1 orders them.
 */
#ifndef PETREL_RESOLVER_H
#define PETREL_RESOLVER_H

#include <stdbool.h>
#include <sys/socket.h>

struct event_base;
struct resolver;

#define MX_HOSTS_MAX 16
#define MX_ADDRS_MAX 8

struct mx_host {
    char name[256];
    unsigned pref;
    int naddrs;
    struct sockaddr_storage addrs[MX_ADDRS_MAX]; /* port 0; IPv4 and IPv6 */
};

enum resolver_status {
    RESOLVER_OK,       /* hosts[] filled (implicit MX: one host, the domain itself) */
    RESOLVER_NULL_MX,  /* RFC 7505: the domain accepts no mail (5.1.10) */
    RESOLVER_NXDOMAIN, /* no such domain, or no MX and no A/AAAA (5.1.2) */
    RESOLVER_TEMPFAIL, /* SERVFAIL, timeout, ... (4.4.3) */
};

struct mx_result {
    enum resolver_status status;
    bool implicit; /* no MX records: the domain's own A/AAAA (RFC 5321 5.1) */
    int nhosts;
    struct mx_host hosts[MX_HOSTS_MAX]; /* by preference; equal preferences shuffled */
    char error[200];                    /* for logs and DSNs when not OK */
};

/* server NULL: /etc/resolv.conf; else a numeric IP and port (tests run a
 * DNS server on loopback). NULL on failure with err filled. */
struct resolver *resolver_new(struct event_base *base, const char *server, int port, char *err,
                              size_t errlen);
void resolver_free(struct resolver *r); /* pending callbacks are called with TEMPFAIL */

/* Looks up the mail exchangers of domain; cb runs on the loop thread,
 * never before resolver_mx() returns. res is valid during the call only.
 * Hosts whose addresses could not be found are left out; if none remain
 * the status is TEMPFAIL. An address literal "[192.0.2.1]" is answered
 * without DNS. */
void resolver_mx(struct resolver *r, const char *domain,
                 void (*cb)(void *arg, const struct mx_result *res), void *arg);

#endif
