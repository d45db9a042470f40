/*
 * The relay handoff; see relay_direct.h. The outbound agent does the
 * delivery exactly as for a queued message (same connections, TLS policy,
 * MX order); this file decides what the client is told.
 */
#include "delivery/relay_direct.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "delivery/local.h"
#include "delivery/mta.h"
#include "delivery/qmgr_impl.h"
#include "event/workpool.h"
#include "smtp/smtp_command.h"
#include "smtp/smtp_server.h"

#include <errno.h>
#include <event2/event.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct handoff {
    struct mta_request req;
    struct mta *mta;
    struct spool *spool;
    struct workpool *pool;
    const struct config *cf;
    struct envelope *env;
    struct str parts[3];
    struct buf data; /* trace fields and message: what the next hop gets */
    struct event *timer;
    struct work work; /* the way into the spool, on a worker thread */
    int error;
    void (*done)(void *arg, int error, bool spooled, const struct smtp_reply *refused);
    void *arg;
    size_t idx[];
};

bool
relay_direct_eligible(const struct config *cf, const struct envelope *e)
{
    const struct action *a;

    if (cf->relay_handoff == 0 || e->mode != SMTP_MODE_MAIL || e->nrcpts == 0)
        return false;
    a = config_find_action(cf, e->rcpts[0].action);
    if (a == NULL || (a->kind != ACTION_RELAY && a->kind != ACTION_LMTP))
        return false;
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];

        /* RFC 3461 6.2.2: a success DSN may be owed ("relayed"): queue it. */
        if (r->kind != RCPT_RELAY || (r->notify & SMTP_NOTIFY_SUCCESS) ||
            strcmp(r->action, a->name) != 0 ||
            (!a->host &&
             strcasecmp(envelope_rcpt_domain(r), envelope_rcpt_domain(&e->rcpts[0])) != 0))
            return false;
    }
    return true;
}

static void
handoff_free(struct handoff *h)
{
    if (h->timer)
        event_free(h->timer);
    buf_free(&h->data);
    free(h->req.results);
    free(h);
}

static void
handoff_finish(struct handoff *h, int error, bool spooled, const struct smtp_reply *refused)
{
    void (*done)(void *, int, bool, const struct smtp_reply *) = h->done;
    void *arg = h->arg;

    handoff_free(h);
    done(arg, error, spooled, refused);
}

static void
spool_run(struct work *w)
{
    struct handoff *h = (struct handoff *)((char *)w - offsetof(struct handoff, work));

    h->error = direct_queue_rest(h->spool, h->env, h->parts);
}

static void
spool_done(struct work *w)
{
    struct handoff *h = (struct handoff *)((char *)w - offsetof(struct handoff, work));

    handoff_finish(h, h->error, h->error == 0, NULL);
}

/* What the queue manager would have recorded after this first attempt. */
static void
note_outcome(struct handoff *h, struct envelope_rcpt *r, const struct mta_result *res)
{
    const char *host = res->host[0] ? res->host : "none";
    char text[700];

    snprintf(text, sizeof(text), "%s%s%d %s %s", res->host, res->host[0] ? ": " : "",
             res->reply.code, res->reply.status ? res->reply.status : "", res->reply.text);
    free(r->error);
    r->error = xstrdup(text);
    switch (res->reply.code / 100) {
    case 2:
        r->state = RCPT_DELIVERED;
        r->dsn_passed = res->dsn_passed;
        qmgr_log(h->env, r, host, "sent", text);
        break;
    case 5:
        r->state = RCPT_FAILED; /* logged once it is known who is told */
        break;
    default:
        r->attempts = 1;
        r->next_attempt = (int64_t)time(NULL) + h->cf->retry[0];
        qmgr_log(h->env, r, host, "deferred", text);
    }
}

static void
mta_done(struct mta_request *req)
{
    struct handoff *h = req->arg;
    size_t delivered = 0, failed = 0;
    struct smtp_reply refused;

    evtimer_del(h->timer);
    for (size_t k = 0; k < req->nrcpts; k++) {
        note_outcome(h, &h->env->rcpts[h->idx[k]], &req->results[k]);
        delivered += h->env->rcpts[h->idx[k]].state == RCPT_DELIVERED;
        failed += h->env->rcpts[h->idx[k]].state == RCPT_FAILED;
    }
    for (size_t k = 0; k < req->nrcpts; k++) {
        const struct envelope_rcpt *r = &h->env->rcpts[h->idx[k]];

        if (r->state == RCPT_FAILED)
            qmgr_log(h->env, r, req->results[k].host[0] ? req->results[k].host : "none",
                     failed == req->nrcpts ? "refused (the client is told)" : "bounced", r->error);
    }
    if (delivered == req->nrcpts) {
        handoff_finish(h, 0, false, NULL);
        return;
    }
    if (failed == req->nrcpts) {
        /* RFC 5321 6.1: refusing now leaves the bounce to the client. */
        const struct mta_result *first = &req->results[0];

        if (first->host[0])
            smtp_reply_set(&refused, first->reply.code, first->reply.status, "%s said: %s",
                           first->host, first->reply.text);
        else
            refused = first->reply;
        handoff_finish(h, 0, false, &refused);
        return;
    }
    workpool_submit(h->pool, &h->work);
}

/* The next hop took too long to even start: the queue takes the message.
 * One a connection already serves finishes within req.timeout per step. */
static void
handoff_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct handoff *h = arg;

    (void)fd;
    (void)what;
    if (!mta_cancel(h->mta, &h->req))
        return;
    log_info("%s: relay handoff: no connection within %us; queued", h->env->id,
             h->cf->relay_handoff);
    workpool_submit(h->pool, &h->work);
}

void
relay_direct_start(const struct relay_direct_env *env, const struct config *cf, struct envelope *e,
                   const struct str parts[3],
                   void (*done)(void *arg, int error, bool spooled,
                                const struct smtp_reply *refused),
                   void *arg)
{
    struct handoff *h = xcalloc(1, sizeof(*h) + e->nrcpts * sizeof(size_t));
    struct timeval tv = {(time_t)cf->relay_handoff, 0};
    const struct envelope_rcpt *first = &e->rcpts[0];

    h->mta = env->mta;
    h->spool = env->spool;
    h->pool = env->pool;
    h->cf = cf;
    h->env = e;
    memcpy(h->parts, parts, sizeof(h->parts));
    h->done = done;
    h->arg = arg;
    h->work = (struct work){.run = spool_run, .done = spool_done};
    buf_init(&h->data, SIZE_MAX);
    if (buf_append(&h->data, parts[1].ptr, parts[1].len) < 0 ||
        buf_append(&h->data, parts[2].ptr, parts[2].len) < 0) {
        handoff_free(h);
        done(arg, ENOMEM, false, NULL);
        return;
    }
    for (size_t i = 0; i < e->nrcpts; i++)
        h->idx[i] = i;
    h->req = (struct mta_request){
        .env = e,
        .rcpts = h->idx,
        .nrcpts = e->nrcpts,
        .msg = h->data.data,
        .len = h->data.len,
        .domain = envelope_rcpt_domain(first),
        .action = config_find_action(cf, first->action),
        .timeout = cf->relay_handoff,
        .done = mta_done,
        .arg = h,
        .results = xcalloc(e->nrcpts, sizeof(struct mta_result)),
    };
    h->timer = evtimer_new(env->base, handoff_timeout, h);
    evtimer_add(h->timer, &tv);
    mta_submit(env->mta, &h->req);
}
