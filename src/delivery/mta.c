/*
 * Outbound agent; see mta.h. A destination is a domain's MX set, a
 * smarthost or an LMTP server. Each has a queue of requests and up to
 * `limit destination-connections` connections (within `limit
 * outbound-connections` in all); a connection takes the next request of
 * its destination when the previous one is done, so a busy destination
 * reuses its connections. RFC 5321 5.1: hosts are tried in MX order, the
 * next one on connection or greeting failure, 421, or a transaction
 * answered with 4xx as a whole.
 *
 * TLS (docs/outbound-tls.md): the client machine says when to start it
 * (STARTTLS answered 220) and the connection stacks an OpenSSL filter
 * bufferevent over its socket; `tls smtps` stacks it before the greeting.
 * A destination's key holds its TLS policy and credentials table, so a
 * reused connection always has the security its next message asks for.
 */
#include "delivery/mta.h"

#include "base/fdio.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "net/resolver.h"
#include "net/tls_client.h"
#include "smtp/smtp_client.h"
#include "smtp/smtp_command.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MTA_IDLE_SECONDS 5    /* keep a connection for the next message */
#define MTA_TIMEOUT 300       /* RFC 5321 4.5.3.2: 5 minutes per reply */
#define MTA_FINAL_TIMEOUT 600 /* RFC 5321 4.5.3.2.6: 10 minutes after the dot */

struct dest;

struct conn {
    struct mta *mta;
    struct dest *d;
    struct bufferevent *bev;
    struct smtp_client *cl;
    struct smtp_client_settings set;
    char helo[256];
    char user[256], pass[256]; /* AUTH credentials, wiped at release */
    int host, addr;            /* position in d->mx */
    bool tls_handshake;        /* the filter is stacked, the handshake under way */
    bool tls_clear;            /* opportunistic TLS failed on this address: in the clear */
    struct mta_request *req;
    struct smtp_client_rcpt *rcpts;
    struct smtp_client_message msg;
    struct event *idle;
    struct conn *next;
};

struct dest {
    struct mta *mta;
    char key[320];
    char name[256]; /* what is resolved: the domain, or the smarthost */
    int port;
    bool lmtp;
    bool smarthost;      /* `relay host`: certificates must name d->name */
    bool atrn;           /* a turned-round client connection (RFC 2645), no MX */
    char domains[512];   /* atrn: " a.example b.example " served by it */
    struct event *later; /* atrn: fails the queue from the loop (no connection) */
    enum tls_policy tls; /* of the actions routed here (part of the key) */
    struct mta_request *queue, *tail;
    struct conn *conns;
    unsigned nconns;
    bool resolving, resolved;
    struct mx_result mx;
    struct dest *next;
};

struct mta {
    struct event_base *base;
    struct resolver *resolver;
    struct config *(*current)(void *);
    void *arg;
    struct dest *dests;
    unsigned nconns;
    struct ssl_ctx_st *tls_ctx; /* the client context for ca_file, NULL until needed */
    char *tls_ca_file;          /* what tls_ctx trusts: a copy of cf->ca_file, NULL = system */
    bool tls_ctx_failed;        /* building it for tls_ca_file failed (logged once) */
};

static void dest_kick(struct dest *d);
static void conn_connect(struct conn *c);
static bool conn_step(struct conn *c);
static void conn_read(struct bufferevent *bev, void *arg);
static void conn_event(struct bufferevent *bev, short what, void *arg);

/* The wait for the connection's next step: secs, or less when the request
 * it serves asks for it (a client is waiting for the relay handoff). */
static struct timeval
conn_wait(const struct conn *c, unsigned secs)
{
    if (c->req && c->req->timeout && c->req->timeout < secs)
        secs = c->req->timeout;
    return (struct timeval){(time_t)secs, 0};
}

/* ---- requests ---- */

static void
req_finish_all(struct mta_request *req, int code, const char *status, const char *text,
               const char *host)
{
    for (size_t i = 0; i < req->nrcpts; i++) {
        struct mta_result *r = &req->results[i];

        smtp_reply_set(&r->reply, code, status, "%s", text);
        snprintf(r->host, sizeof(r->host), "%s", host ? host : "");
    }
    req->done(req);
}

static struct mta_request *
dest_pop(struct dest *d)
{
    struct mta_request *req = d->queue;

    if (req) {
        d->queue = req->next;
        if (d->queue == NULL)
            d->tail = NULL;
    }
    return req;
}

static void
dest_fail_queue(struct dest *d, int code, const char *status, const char *text)
{
    struct mta_request *req;

    while ((req = dest_pop(d)) != NULL)
        req_finish_all(req, code, status, text, NULL);
}

/* ---- destinations ---- */

static void
dest_free_if_idle(struct dest *d)
{
    struct mta *m = d->mta;

    if (d->queue || d->conns || d->resolving || d->later)
        return;
    for (struct dest **pp = &m->dests; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    free(d);
}

static void
atrn_failed(evutil_socket_t fd, short what, void *arg)
{
    struct dest *d = arg;

    (void)fd;
    (void)what;
    event_free(d->later);
    d->later = NULL;
    dest_fail_queue(d, 451, "4.4.0",
                    "held for on-demand relay: waiting for the domain's owner to connect (ATRN)");
    dest_free_if_idle(d);
}

/* Requests for an ATRN domain nobody is connected for: deferred, from the
 * loop (mta_submit never completes a request inside the call). */
static void
atrn_fail_later(struct dest *d)
{
    struct timeval now = {0, 0};

    if (d->later == NULL) {
        d->later = evtimer_new(d->mta->base, atrn_failed, d);
        evtimer_add(d->later, &now);
    }
}

/* The turned-round connection serving domain, or the holding destination
 * whose requests are deferred. */
static struct dest *
atrn_dest(struct mta *m, const char *domain)
{
    char word[300];
    struct dest *d;

    snprintf(word, sizeof(word), " %s ", domain);
    for (d = m->dests; d; d = d->next)
        if (d->atrn && d->conns && strcasestr(d->domains, word))
            return d;
    for (d = m->dests; d; d = d->next)
        if (d->atrn && strcmp(d->key, "atrn:") == 0)
            return d;
    d = xcalloc(1, sizeof(*d));
    d->mta = m;
    d->atrn = true;
    d->tls = TLS_POLICY_NONE;
    snprintf(d->key, sizeof(d->key), "atrn:");
    snprintf(d->name, sizeof(d->name), "ATRN");
    d->next = m->dests;
    m->dests = d;
    return d;
}

static struct dest *
dest_get(struct mta *m, const struct mta_request *req, const struct config *cf)
{
    const struct action *a = req->action;
    char key[320];
    struct dest *d;
    bool lmtp = a->kind == ACTION_LMTP;

    /* Actions with another TLS policy or other credentials never share
     * connections, even to the same host. */
    snprintf(key, sizeof(key), "%s:%s:%d:%d:%s",
             lmtp      ? "lmtp"
             : a->host ? "relay"
                       : "mx",
             a->host ? a->host : req->domain, a->host ? a->port : cf->remote_port,
             lmtp ? (int)TLS_POLICY_NONE : (int)a->tls, a->secrets ? a->secrets->name : "");
    for (d = m->dests; d; d = d->next)
        if (strcasecmp(d->key, key) == 0)
            return d;
    d = xcalloc(1, sizeof(*d));
    d->mta = m;
    snprintf(d->key, sizeof(d->key), "%s", key);
    snprintf(d->name, sizeof(d->name), "%s", a->host ? a->host : req->domain);
    d->port = a->host ? a->port : cf->remote_port;
    d->lmtp = lmtp;
    d->smarthost = a->host != NULL && !lmtp;
    /* LMTP actions have no `tls` option: a local delivery server. */
    d->tls = lmtp ? TLS_POLICY_NONE : a->tls;
    d->next = m->dests;
    m->dests = d;
    return d;
}

static void
dest_resolved(void *arg, const struct mx_result *res)
{
    struct dest *d = arg;

    d->resolving = false;
    switch (res->status) {
    case RESOLVER_OK:
        d->mx = *res;
        d->resolved = true;
        dest_kick(d);
        return;
    case RESOLVER_NULL_MX: /* RFC 7505 3 */
        dest_fail_queue(d, 556, "5.1.10", "recipient domain does not accept mail (null MX)");
        break;
    case RESOLVER_NXDOMAIN:
        dest_fail_queue(d, 550, "5.1.2", res->error[0] ? res->error : "domain not found");
        break;
    default:
        dest_fail_queue(d, 451, "4.4.3", res->error[0] ? res->error : "DNS lookup failed");
    }
    dest_free_if_idle(d);
}

/* Literal IPs skip DNS, so a smarthost or LMTP server may be an address. */
static const char *
dest_lookup_name(const struct dest *d, char *buf, size_t n)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (inet_pton(AF_INET, d->name, &a4) == 1)
        snprintf(buf, n, "[%s]", d->name);
    else if (inet_pton(AF_INET6, d->name, &a6) == 1)
        snprintf(buf, n, "[IPv6:%s]", d->name);
    else
        snprintf(buf, n, "%s", d->name);
    return buf;
}

static void
dest_kick(struct dest *d)
{
    struct mta *m = d->mta;
    struct config *cf;
    char name[300];

    if (d->queue == NULL)
        return;
    for (struct conn *c = d->conns; c && d->queue; c = c->next)
        if (c->idle && c->req == NULL) { /* an idle connection takes it */
            event_free(c->idle);
            c->idle = NULL;
            conn_step(c);
            return;
        }
    if (d->atrn) { /* never connects: its connection came to us */
        if (d->conns == NULL)
            atrn_fail_later(d);
        return;
    }
    if (!d->resolved) {
        if (!d->resolving) {
            d->resolving = true;
            resolver_mx(m->resolver, dest_lookup_name(d, name, sizeof(name)), dest_resolved, d);
        }
        return;
    }
    cf = m->current(m->arg);
    while (d->queue && d->nconns < cf->max_per_destination && m->nconns < cf->max_outbound) {
        struct conn *c = xcalloc(1, sizeof(*c));

        c->mta = m;
        c->d = d;
        snprintf(c->helo, sizeof(c->helo), "%s", cf->hostname);
        c->req = dest_pop(d);
        c->next = d->conns;
        d->conns = c;
        d->nconns++;
        m->nconns++;
        conn_connect(c);
    }
    config_unref(cf);
}

/* ---- connections ---- */

static const char *
conn_host(const struct conn *c)
{
    return c->host < c->d->mx.nhosts ? c->d->mx.hosts[c->host].name : c->d->name;
}

/* Frees c and what it owns; the caller has unlinked it. */
static void
conn_release(struct conn *c)
{
    explicit_bzero(c->user, sizeof(c->user));
    explicit_bzero(c->pass, sizeof(c->pass));
    if (c->bev)
        bufferevent_free(c->bev);
    if (c->idle)
        event_free(c->idle);
    smtp_client_free(c->cl);
    free(c->rcpts);
    free(c);
}

static void
conn_free(struct conn *c)
{
    struct dest *d = c->d;

    for (struct conn **pp = &d->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    d->nconns--;
    c->mta->nconns--;
    conn_release(c);
    dest_kick(d);
    for (struct dest *o = d->mta->dests; o; o = o->next)
        if (o != d && o->queue)
            dest_kick(o); /* a global slot may have freed up */
    dest_free_if_idle(d);
}

/* Advances to the next address, then the next host; false when none is left. */
static bool
conn_next_target(struct conn *c)
{
    const struct mx_result *mx = &c->d->mx;

    if (c->host < mx->nhosts && ++c->addr < mx->hosts[c->host].naddrs)
        return true;
    c->addr = 0;
    return ++c->host < mx->nhosts;
}

/* RFC 2033 4.2: an LMTP server may have delivered to some recipients
 * (one final reply each) before the connection broke. Those outcomes stand:
 * retrying them, here or on another host, would deliver twice. The rest
 * get a temporary failure. True if the request was completed so. */
static bool
conn_partial_done(struct conn *c, const struct smtp_reply *why)
{
    struct mta_request *req = c->req;
    const struct smtp_client_ext *ext = smtp_client_ext(c->cl);
    bool delivered = false;

    for (size_t i = 0; i < req->nrcpts && !delivered; i++) {
        const struct smtp_reply *r = smtp_client_result(c->cl, i);

        delivered = r && r->code / 100 == 2;
    }
    if (!delivered)
        return false;
    for (size_t i = 0; i < req->nrcpts; i++) {
        const struct smtp_reply *r = smtp_client_result(c->cl, i);
        struct mta_result *res = &req->results[i];

        if (r && r->code / 100 != 4)
            res->reply = *r;
        else if (why->code / 100 == 4)
            res->reply = *why;
        else
            smtp_reply_set(&res->reply, 451, "4.4.1", "%s", why->text);
        snprintf(res->host, sizeof(res->host), "%s", conn_host(c));
        res->dsn_passed = ext->dsn && c->rcpts[i].notify != 0;
    }
    c->req = NULL;
    req->done(req);
    return true;
}

/* This host could not take the current request: try the next one, or
 * give the request back with the last error. */
static void
conn_host_failed(struct conn *c, const struct smtp_reply *failure)
{
    /* failure may be the client's own error, freed below with the client */
    struct smtp_reply copy = *failure;
    const struct smtp_reply *why = &copy;
    char text[400];

    log_info("delivery to %s: %s: %d %s %s", c->d->name, conn_host(c), why->code,
             why->status ? why->status : "", why->text);
    if (c->req && c->cl)
        conn_partial_done(c, why);
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    c->tls_handshake = false;
    c->tls_clear = false;
    smtp_client_free(c->cl);
    c->cl = NULL;
    if (c->req && conn_next_target(c)) {
        conn_connect(c);
        return;
    }
    if (c->req) {
        snprintf(text, sizeof(text), "%s (last host tried: %s)", why->text, conn_host(c));
        req_finish_all(c->req,
                       why->code / 100 == 5 ? 451
                       : why->code          ? why->code
                                            : 451,
                       why->code / 100 == 4 && why->status ? why->status : "4.4.1", text, NULL);
        c->req = NULL;
    }
    conn_free(c);
}

static void
conn_fill_message(struct conn *c)
{
    struct mta_request *req = c->req;
    const struct envelope *e = req->env;

    free(c->rcpts);
    c->rcpts = xcalloc(req->nrcpts, sizeof(*c->rcpts));
    for (size_t i = 0; i < req->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[req->rcpts[i]];

        c->rcpts[i] = (struct smtp_client_rcpt){r->address, r->notify, r->orcpt};
    }
    c->msg = (struct smtp_client_message){
        .sender = e->sender,
        .rcpts = c->rcpts,
        .nrcpts = req->nrcpts,
        .eightbit = e->body != 0,
        .smtputf8 = e->smtputf8,
        .ret = e->ret,
        .envid = e->envid,
        .data = req->msg,
        .len = req->len,
    };
}

static void
conn_idle_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    event_free(c->idle);
    c->idle = NULL;
    smtp_client_quit(c->cl);
    struct buf *out = smtp_client_output(c->cl);
    bufferevent_write(c->bev, out->data, out->len);
    buf_reset(out);
}

static void
conn_ready(struct conn *c)
{
    struct timeval tv = {MTA_IDLE_SECONDS, 0};

    if (c->req == NULL)
        c->req = dest_pop(c->d);
    if (c->req == NULL) {
        if (c->idle == NULL) {
            c->idle = evtimer_new(c->mta->base, conn_idle_timeout, c);
            evtimer_add(c->idle, &tv);
        }
        return;
    }
    conn_fill_message(c);
    if (smtp_client_send(c->cl, &c->msg) < 0) {
        /* The envelope cannot be sent as it is (it would inject commands). */
        struct mta_request *req = c->req;

        c->req = NULL;
        req_finish_all(req, 554, "5.6.0", "envelope cannot be sent over SMTP", NULL);
        conn_ready(c);
    }
}

/* The transaction ended: every recipient has a reply. Returns false when
 * the connection was given up (c freed, or reconnecting elsewhere). */
static bool
conn_done(struct conn *c)
{
    struct mta_request *req = c->req;
    const struct smtp_client_ext *ext = smtp_client_ext(c->cl);
    bool all_temp = true;

    for (size_t i = 0; i < req->nrcpts; i++) {
        const struct smtp_reply *r = smtp_client_result(c->cl, i);

        all_temp &=
            r->code / 100 == 4 || (r->code == 552 && r->status && strcmp(r->status, "5.3.4") == 0);
    }
    if (all_temp && req->nrcpts > 0 && c->host + 1 < c->d->mx.nhosts) {
        /* RFC 5321 5.1: a host that defers the whole message is skipped. */
        struct smtp_reply why = *smtp_client_result(c->cl, 0);

        smtp_client_quit(c->cl);
        c->addr = c->d->mx.hosts[c->host].naddrs; /* skip its other addresses */
        conn_host_failed(c, &why);
        return false;
    }
    for (size_t i = 0; i < req->nrcpts; i++) {
        struct mta_result *res = &req->results[i];

        res->reply = *smtp_client_result(c->cl, i);
        snprintf(res->host, sizeof(res->host), "%s", conn_host(c));
        res->dsn_passed = ext->dsn && c->rcpts[i].notify != 0;
    }
    c->req = NULL;
    req->done(req);
    smtp_client_next(c->cl);
    return true;
}

static void
conn_flush(struct conn *c)
{
    struct buf *out = smtp_client_output(c->cl);

    if (out->len) {
        bufferevent_write(c->bev, out->data, out->len);
        buf_reset(out);
    }
}

/* ---- TLS ---- */

/* The client context for the current ca-file, built when first needed and
 * again when a reload changes the file; NULL if it cannot be built. */
static struct ssl_ctx_st *
mta_tls_ctx(struct mta *m)
{
    struct config *cf = m->current(m->arg);
    const char *ca = cf->ca_file;
    char err[300];

    if ((ca == NULL) != (m->tls_ca_file == NULL) || (ca && strcmp(ca, m->tls_ca_file) != 0)) {
        tls_client_ctx_free(m->tls_ctx);
        m->tls_ctx = NULL;
        m->tls_ctx_failed = false;
        free(m->tls_ca_file);
        m->tls_ca_file = ca ? xstrdup(ca) : NULL;
    }
    config_unref(cf);
    if (m->tls_ctx == NULL && !m->tls_ctx_failed) {
        m->tls_ctx = tls_client_ctx_new(m->tls_ca_file, err, sizeof(err));
        if (m->tls_ctx == NULL) {
            m->tls_ctx_failed = true;
            log_warn("outbound TLS unavailable: %s", err);
        }
    }
    return m->tls_ctx;
}

/* The name the peer's certificate must carry: the smarthost as
 * configured, else the MX host's name (RFC 7672 calls the latter weak
 * without DNSSEC; it is what `tls verify` checks). */
static const char *
conn_tls_name(const struct conn *c)
{
    return c->d->smarthost ? c->d->name : conn_host(c);
}

/* A smarthost found through its MX records may also present the MX
 * host's name: the same trust `tls verify` gives any MX host. */
static const char *
conn_tls_also(const struct conn *c)
{
    const char *h = conn_host(c);

    return c->d->smarthost && h[0] != '[' && strcasecmp(h, c->d->name) != 0 ? h : NULL;
}

static bool
conn_tls_verify(const struct conn *c)
{
    return c->d->tls == TLS_POLICY_VERIFY || c->d->tls == TLS_POLICY_SMTPS;
}

/* "mx.example.org[192.0.2.1]:25" */
static const char *
conn_peer_text(const struct conn *c, char *buf, size_t n)
{
    char addr[64];

    sockaddr_text((const struct sockaddr *)&c->d->mx.hosts[c->host].addrs[c->addr], addr,
                  sizeof(addr));
    snprintf(buf, n, "%s[%s]:%d", conn_host(c), addr, c->d->port);
    return buf;
}

/* Stacks the OpenSSL filter over the connection; the handshake runs, and
 * conn_event hears how it went. False when c was given up. */
static bool
conn_start_tls(struct conn *c)
{
    struct ssl_ctx_st *ctx = mta_tls_ctx(c->mta);
    struct timeval tv = conn_wait(c, MTA_TIMEOUT);
    struct bufferevent *f = NULL;
    struct smtp_reply why;
    SSL *ssl = ctx ? tls_client_ssl_new(ctx, conn_tls_name(c), conn_tls_also(c), conn_tls_verify(c))
                   : NULL;

    if (ssl)
        f = bufferevent_openssl_filter_new(c->mta->base, c->bev, ssl, BUFFEREVENT_SSL_CONNECTING,
                                           BEV_OPT_CLOSE_ON_FREE);
    if (f == NULL) {
        smtp_reply_set(&why, 451, "4.7.0", "local TLS setup failed");
        conn_host_failed(c, &why);
        return false;
    }
    /* the filter owns the socket's bufferevent and the SSL now */
    c->bev = f;
    c->tls_handshake = true;
    /* A peer that closes without close_notify after QUIT is no error. */
    bufferevent_openssl_set_allow_dirty_shutdown(f, 1);
    bufferevent_setcb(f, conn_read, NULL, conn_event, c);
    bufferevent_set_timeouts(f, &tv, &tv);
    bufferevent_enable(f, EV_READ | EV_WRITE);
    return true;
}

/* The handshake completed: log what it is worth, hold the policy to it,
 * and let the client go on (EHLO again; or the greeting, for smtps). */
static void
conn_tls_up(struct conn *c)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    enum tls_client_trust trust = tls_client_trust(ssl);
    char peer[400], desc[200];
    struct smtp_reply why;

    c->tls_handshake = false;
    log_info("delivery to %s: %s TLS connection established to %s: %s", c->d->name,
             tls_client_trust_name(trust), conn_peer_text(c, peer, sizeof(peer)),
             tls_client_describe(ssl, desc, sizeof(desc)));
    if (conn_tls_verify(c) && trust != TLS_CLIENT_VERIFIED) {
        /* SSL_VERIFY_PEER already refuses this; never rely on one check. */
        smtp_reply_set(&why, 451, "4.7.5", "TLS: certificate of %s not verified", conn_tls_name(c));
        conn_host_failed(c, &why);
        return;
    }
    if (smtp_client_event(c->cl) == SMTP_CLIENT_TLS)
        smtp_client_tls_done(c->cl, true);
    conn_step(c);
}

/* The handshake failed. Opportunistic TLS tries the same address again in
 * the clear (RFC 7435: something is better than nothing); otherwise the
 * host failed and the next one is tried. */
static void
conn_tls_failed(struct conn *c, short what)
{
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
    unsigned long e = bufferevent_get_openssl_error(c->bev);
    char peer[400], reason[300];
    struct smtp_reply why;
    bool verify = conn_tls_verify(c);

    tls_client_error(ssl, e,
                     what & BEV_EVENT_TIMEOUT ? "timeout"
                     : what & BEV_EVENT_EOF   ? "connection closed"
                                              : "handshake failed",
                     reason, sizeof(reason));
    c->tls_handshake = false;
    if (c->d->tls == TLS_POLICY_OPPORTUNISTIC && !c->tls_clear && c->req) {
        log_info("delivery to %s: TLS handshake with %s failed: %s; trying again without TLS",
                 c->d->name, conn_peer_text(c, peer, sizeof(peer)), reason);
        bufferevent_free(c->bev);
        c->bev = NULL;
        smtp_client_free(c->cl);
        c->cl = NULL;
        c->tls_clear = true;
        conn_connect(c);
        return;
    }
    log_info("delivery to %s: TLS handshake with %s failed: %s", c->d->name,
             conn_peer_text(c, peer, sizeof(peer)), reason);
    /* RFC 3463: X.7.5 cryptographic failure; X.7.0 other security. */
    smtp_reply_set(&why, 451, verify && strncmp(reason, "certificate", 11) == 0 ? "4.7.5" : "4.7.0",
                   "TLS with %s failed: %s", conn_tls_name(c), reason);
    conn_host_failed(c, &why);
}

/* Acts on the client's state. Returns false when c was freed. */
static bool
conn_step(struct conn *c)
{
    struct timeval tv;

    for (;;) {
        conn_flush(c);
        switch (smtp_client_event(c->cl)) {
        case SMTP_CLIENT_READY:
            conn_ready(c);
            conn_flush(c);
            if (smtp_client_event(c->cl) == SMTP_CLIENT_DONE)
                continue; /* refused by a pre-check, nothing sent */
            break;
        case SMTP_CLIENT_DONE:
            if (!conn_done(c))
                return false;
            continue;
        case SMTP_CLIENT_FAILED:
            conn_host_failed(c, smtp_client_error(c->cl));
            return false;
        case SMTP_CLIENT_CLOSED:
            c->req = NULL;
            conn_free(c);
            return false;
        case SMTP_CLIENT_TLS:
            /* Bytes after the 220 are left for conn_read to feed: the
             * client fails on them (plaintext injection). */
            if (!c->tls_handshake && evbuffer_get_length(bufferevent_get_input(c->bev)) == 0 &&
                !conn_start_tls(c))
                return false;
            break;
        case SMTP_CLIENT_BUSY:
            break;
        }
        /* RFC 5321 4.5.3.2: the wait depends on the reply expected. */
        tv =
            conn_wait(c, smtp_client_timeout(c->cl) > 0 ? smtp_client_timeout(c->cl) : MTA_TIMEOUT);
        bufferevent_set_timeouts(c->bev, &tv, &tv);
        return true;
    }
}

static void
conn_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len;

    /* feed() stops at each reply that needs an action from us. */
    while ((len = evbuffer_get_length(in)) > 0) {
        size_t used = smtp_client_feed(c->cl, (const char *)evbuffer_pullup(in, -1), len);

        evbuffer_drain(in, used);
        if (!conn_step(c) || used == 0)
            return;
    }
    conn_step(c);
}

static void
conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    struct smtp_reply why = {0};

    (void)bev;
    if (c->tls_handshake) {
        if (what & BEV_EVENT_CONNECTED)
            conn_tls_up(c);
        else
            conn_tls_failed(c, what);
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        /* RFC 8314 3: implicit TLS starts before the greeting. */
        if (c->d->tls == TLS_POLICY_SMTPS)
            conn_start_tls(c);
        return;
    }
    if (smtp_client_event(c->cl) == SMTP_CLIENT_CLOSED || (c->req == NULL && c->idle)) {
        c->req = NULL;
        conn_free(c);
        return;
    }
    smtp_reply_set(&why, 451, "4.4.1", "%s",
                   what & BEV_EVENT_TIMEOUT ? "timeout"
                   : what & BEV_EVENT_EOF   ? "connection closed by the remote host"
                                            : "connection failed");
    conn_host_failed(c, &why);
}

/* RFC 4954 as a client: the action's secrets table holds
 * "HOST: USER:PASSWORD" for the smarthost as written in `relay host`. A
 * missing or malformed entry leaves the user empty: the client then fails
 * (4.7.0, deferred) before sending anything of the message. */
static void
conn_credentials(struct conn *c)
{
    const struct action *a = c->req ? c->req->action : NULL;
    const char *v, *colon;

    c->user[0] = c->pass[0] = '\0';
    if (a == NULL || a->secrets == NULL)
        return;
    v = table_get(a->secrets, c->d->name);
    colon = v ? strchr(v, ':') : NULL;
    if (colon == NULL || colon == v || (size_t)(colon - v) >= sizeof(c->user) ||
        strlen(colon + 1) >= sizeof(c->pass)) {
        log_warn("delivery to %s: no usable credentials for %s in table \"%s\" (want "
                 "\"%s: user:password\")",
                 c->d->name, c->d->name, a->secrets->name, c->d->name);
        return;
    }
    memcpy(c->user, v, (size_t)(colon - v));
    c->user[colon - v] = '\0';
    snprintf(c->pass, sizeof(c->pass), "%s", colon + 1);
}

/* The client's settings for this attempt: the destination's TLS policy
 * (in the clear after a failed opportunistic handshake, or when no TLS
 * context can be built), the server's name for error texts, credentials. */
static void
conn_settings(struct conn *c)
{
    static const enum smtp_client_tls map[] = {
        [TLS_POLICY_OPPORTUNISTIC] = SMTP_CLIENT_TLS_MAY,
        [TLS_POLICY_NONE] = SMTP_CLIENT_TLS_NO,
        [TLS_POLICY_REQUIRE] = SMTP_CLIENT_TLS_MUST,
        [TLS_POLICY_VERIFY] = SMTP_CLIENT_TLS_MUST,
        [TLS_POLICY_SMTPS] = SMTP_CLIENT_TLS_IMPLICIT,
    };
    enum smtp_client_tls tls = map[c->d->tls];

    if (tls == SMTP_CLIENT_TLS_MAY && (c->tls_clear || mta_tls_ctx(c->mta) == NULL))
        tls = SMTP_CLIENT_TLS_NO;
    conn_credentials(c);
    c->set = (struct smtp_client_settings){
        .helo_name = c->helo,
        .lmtp = c->d->lmtp,
        .tls = tls,
        .server_name = conn_host(c),
        .auth_user = c->req && c->req->action->secrets ? c->user : NULL,
        .auth_pass = c->req && c->req->action->secrets ? c->pass : NULL,
    };
}

static void
conn_connect(struct conn *c)
{
    const struct mx_host *h = &c->d->mx.hosts[c->host];
    struct sockaddr_storage ss = h->addrs[c->addr];
    struct timeval tv = conn_wait(c, MTA_TIMEOUT);
    socklen_t len =
        ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)c->d->port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)c->d->port);
    conn_settings(c);
    c->cl = smtp_client_new(&c->set);
    c->bev = bufferevent_socket_new(c->mta->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    /* connect() can fail at once (ENETUNREACH: an IPv6 MX without an IPv6
     * route). Giving up c here would free it, and maybe d, under the
     * caller (dest_kick's loop, conn_free) and complete a request inside
     * mta_submit(): report the failure from the loop instead. */
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, (int)len) < 0)
        bufferevent_trigger_event(c->bev, BEV_EVENT_ERROR, BEV_TRIG_DEFER_CALLBACKS);
}

/* ---- public ---- */

struct mta *
mta_new(struct event_base *base, struct config *(*current)(void *), void *arg, char *err,
        size_t errlen)
{
    struct mta *m = xcalloc(1, sizeof(*m));
    struct config *cf = current(arg);

    m->base = base;
    m->current = current;
    m->arg = arg;
    m->resolver = resolver_new(base, cf->resolver, cf->resolver_port, err, errlen);
    config_unref(cf);
    if (m->resolver == NULL) {
        free(m);
        return NULL;
    }
    return m;
}

void
mta_free(struct mta *m)
{
    if (m == NULL)
        return;
    /* First: it answers pending lookups (TEMPFAIL) into their destinations,
     * which must still exist. */
    resolver_free(m->resolver);
    m->resolver = NULL;
    tls_client_ctx_free(m->tls_ctx);
    free(m->tls_ca_file);
    while (m->dests) {
        struct dest *d = m->dests;

        dest_fail_queue(d, 421, "4.3.2", "shutting down");
        while (d->conns) {
            struct conn *c = d->conns;

            if (c->req)
                req_finish_all(c->req, 421, "4.3.2", "shutting down", NULL);
            c->req = NULL;
            d->conns = c->next;
            conn_release(c);
        }
        m->dests = d->next;
        if (d->later)
            event_free(d->later);
        free(d);
    }
    free(m);
}

void
mta_atrn(struct mta *m, struct bufferevent *bev, const char *peer, const char *domains)
{
    static unsigned long serial;
    struct config *cf = m->current(m->arg);
    struct timeval tv = {MTA_TIMEOUT, 0};
    struct dest *d = xcalloc(1, sizeof(*d));
    struct conn *c = xcalloc(1, sizeof(*c));

    d->mta = m;
    d->atrn = true;
    d->tls = TLS_POLICY_NONE; /* whatever TLS the session had, it keeps */
    snprintf(d->key, sizeof(d->key), "atrn:%lu", ++serial);
    snprintf(d->name, sizeof(d->name), "%s", peer);
    snprintf(d->domains, sizeof(d->domains), " %s ", domains);
    d->next = m->dests;
    m->dests = d;
    c->mta = m;
    c->d = d;
    snprintf(c->helo, sizeof(c->helo), "%s", cf->hostname);
    config_unref(cf);
    c->set = (struct smtp_client_settings){
        .helo_name = c->helo,
        .tls = SMTP_CLIENT_TLS_NO,
        .server_name = d->name,
    };
    c->cl = smtp_client_new(&c->set);
    c->bev = bev;
    c->next = d->conns;
    d->conns = c;
    d->nconns++;
    m->nconns++;
    log_info("ATRN: %s turned round for%s", peer, d->domains);
    /* RFC 2645 4: the client, now the server, greets first. */
    bufferevent_setcb(bev, conn_read, NULL, conn_event, c);
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    if (evbuffer_get_length(bufferevent_get_input(bev)) > 0)
        conn_read(bev, c);
}

void
mta_submit(struct mta *m, struct mta_request *req)
{
    struct config *cf = m->current(m->arg);
    struct dest *d =
        req->action->kind == ACTION_ATRN ? atrn_dest(m, req->domain) : dest_get(m, req, cf);

    config_unref(cf);
    req->next = NULL;
    if (d->tail)
        d->tail->next = req;
    else
        d->queue = req;
    d->tail = req;
    dest_kick(d);
}

bool
mta_cancel(struct mta *m, struct mta_request *req)
{
    for (struct dest *d = m->dests; d; d = d->next) {
        struct mta_request **pp, *prev = NULL;

        for (pp = &d->queue; *pp; prev = *pp, pp = &(*pp)->next) {
            if (*pp != req)
                continue;
            *pp = req->next;
            if (d->tail == req)
                d->tail = prev;
            dest_free_if_idle(d);
            return true;
        }
    }
    return false;
}

void
mta_reset_destinations(struct mta *m)
{
    for (struct dest *d = m->dests; d; d = d->next)
        if (!d->resolving && d->conns == NULL)
            d->resolved = false; /* look the MX up again */
}
