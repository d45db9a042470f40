/*
 * The outbound agent: delivers relay and LMTP recipients over SMTP/LMTP.
 * Requests are grouped by destination (a domain's MX hosts, a smarthost,
 * an LMTP server); each destination has a few connections, reused for the
 * next message, within a global cap. Runs on the event loop; never blocks.
 */
#ifndef PETREL_MTA_H
#define PETREL_MTA_H

#include "config/config.h"
#include "queue/envelope.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct resolver;
struct mta;

struct mta_result {
    struct smtp_reply reply; /* 2xx delivered, 4xx retry, 5xx failed */
    char host[256];          /* the host that answered, "" if none did */
    bool dsn_passed;         /* the peer took the DSN parameters (RFC 3461) */
};

struct mta_request {
    /* in, valid until done() */
    const struct envelope *env;
    const size_t *rcpts; /* indexes into env->rcpts, all for one destination */
    size_t nrcpts;
    const char *msg; /* the message, CRLF lines */
    size_t len;
    const char *domain; /* the recipients' domain */
    const struct action *action;
    unsigned timeout; /* seconds: caps each wait while it is served; 0 = RFC 5321 4.5.3.2 */
    void (*done)(struct mta_request *req); /* on the loop thread */
    void *arg;
    /* out: one per rcpts[i] */
    struct mta_result *results;
    /* private */
    struct mta_request *next;
};

struct mta *mta_new(struct event_base *base, struct config *(*current)(void *), void *arg,
                    char *err, size_t errlen);
/* Ends connections; requests still waiting get 4xx results. */
void mta_free(struct mta *m);
/* Asynchronous: req->done runs later, never inside this call. */
void mta_submit(struct mta *m, struct mta_request *req);
/* Takes back req if it still waits for a connection: true, and done()
 * will not run. False once a connection serves it (it completes then). */
bool mta_cancel(struct mta *m, struct mta_request *req);
/* A destination was flushed: forget its failure back-off. */
void mta_reset_destinations(struct mta *m);

struct bufferevent;
/*
 * ATRN (RFC 2645 4): bev is a client's connection (plain or TLS) whose
 * "250 OK now reversing the connection" has been sent. The roles turn:
 * petrel waits for the client's 220, then delivers, as an SMTP client,
 * the requests for the space-separated domains that mta_submit() gets
 * while the connection lasts, and QUITs once idle. Takes bev. Requests of
 * an `atrn` action for a domain no such connection serves are deferred.
 */
void mta_atrn(struct mta *m, struct bufferevent *bev, const char *peer, const char *domains);

#endif
