/*
 * Queue manager scheduling; see qmgr.h and qmgr_impl.h. Every queued
 * message has a struct qmsg while the daemon runs (ids and timers only;
 * envelopes are loaded for the length of a pass). A message has at most
 * one pass running, so its journal is only ever appended by one thread.
 */
#include "delivery/qmgr.h"

#include "base/log.h"
#include "base/xmalloc.h"
#include "delivery/qmgr_impl.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void qmsg_pass(struct qmsg *m);

/* ---- recipient bookkeeping (any thread; one pass per message) ---- */

bool
qmgr_rcpt_due(const struct qmsg *m, const struct envelope_rcpt *r)
{
    return r->state == RCPT_PENDING && (m->flush || r->next_attempt <= m->now);
}

static void
journal(struct qmsg *m, size_t i, char kind)
{
    if (envelope_journal_line(m->env, i, kind, &m->journal) < 0)
        log_warn("%s: journal too large", m->id);
}

static void
set_error(struct envelope_rcpt *r, const char *text)
{
    free(r->error);
    r->error = xstrdup(text);
}

void
qmgr_rcpt_delivered(struct qmsg *m, size_t i, const char *text)
{
    m->env->rcpts[i].state = RCPT_DELIVERED;
    set_error(&m->env->rcpts[i], text);
    journal(m, i, 'd');
}

void
qmgr_rcpt_failed(struct qmsg *m, size_t i, const char *text)
{
    m->env->rcpts[i].state = RCPT_FAILED;
    set_error(&m->env->rcpts[i], text);
    journal(m, i, 'f');
}

void
qmgr_rcpt_deferred(struct qmsg *m, size_t i, const char *text)
{
    struct envelope_rcpt *r = &m->env->rcpts[i];
    unsigned n = m->cf->nretry, step = r->attempts < n ? r->attempts : n - 1;

    r->attempts++;
    r->next_attempt = m->now + m->cf->retry[step];
    set_error(r, text);
    journal(m, i, 't');
}

void
qmgr_log(const struct envelope *e, const struct envelope_rcpt *r, const char *relay,
         const char *status, const char *text)
{
    bool orig = strcmp(r->orig, r->address) != 0;

    log_info("%s: to=<%s>%s%s%s, relay=%s, delay=%.0f, status=%s (%s)", e->id, r->address,
             orig ? ", orig_to=<" : "", orig ? r->orig : "", orig ? ">" : "", relay,
             difftime(time(NULL), (time_t)e->arrival), status, text);
}

/* ---- the message table ---- */

static struct qmsg *
qmsg_find(struct qmgr *q, const char *id)
{
    for (struct qmsg *m = q->msgs; m; m = m->next)
        if (strcmp(m->id, id) == 0)
            return m;
    return NULL;
}

static void
qmsg_free(struct qmsg *m)
{
    struct qmgr *q = m->q;

    if (m->prev)
        m->prev->next = m->next;
    else
        q->msgs = m->next;
    if (m->next)
        m->next->prev = m->prev;
    q->nmsgs--;
    if (m->timer)
        event_free(m->timer);
    buf_free(&m->journal);
    free(m);
}

static void
qmsg_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    qmsg_pass(arg);
}

static void
qmsg_schedule(struct qmsg *m, int64_t when)
{
    struct timeval tv = {0, 0};
    int64_t now = time(NULL);

    m->due = when;
    if (m->timer == NULL)
        m->timer = evtimer_new(m->q->base, qmsg_timer, m);
    tv.tv_sec = when > now ? when - now : 0;
    evtimer_add(m->timer, &tv);
}

static struct qmsg *
qmsg_get(struct qmgr *q, const char *id)
{
    struct qmsg *m = qmsg_find(q, id);

    if (m)
        return m;
    m = xcalloc(1, sizeof(*m));
    m->q = q;
    snprintf(m->id, sizeof(m->id), "%s", id);
    buf_init(&m->journal, 1u << 24);
    m->next = q->msgs;
    if (q->msgs)
        q->msgs->prev = m;
    q->msgs = m;
    q->nmsgs++;
    return m;
}

/* ---- a pass: local (worker), remote (loop), finish (worker) ---- */

/* Remembers the domains still waiting, for ETRN and `petrel flush DOMAIN`. */
static void
note_domains(struct qmsg *m, const struct envelope *e)
{
    size_t len = 1;

    snprintf(m->domains, sizeof(m->domains), " ");
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];
        const char *at = strrchr(r->address, '@');
        char word[300];

        if (r->state != RCPT_PENDING || r->kind != RCPT_RELAY || at == NULL)
            continue;
        snprintf(word, sizeof(word), " %s ", at + 1);
        if (strcasestr(m->domains, word) == NULL && len + strlen(word) < sizeof(m->domains))
            len += (size_t)snprintf(m->domains + len, sizeof(m->domains) - len, "%s ", at + 1);
    }
}

/* "example.org" matches that domain; "@example.org" its subdomains too. */
static bool
waits_for(const struct qmsg *m, const char *node)
{
    char word[300];
    const char *p;

    if (node[0] != '@') {
        snprintf(word, sizeof(word), " %s ", node);
        return strcasestr(m->domains, word) != NULL;
    }
    snprintf(word, sizeof(word), "%s ", node + 1);
    for (p = m->domains; (p = strcasestr(p, word)) != NULL; p++)
        if (p[-1] == ' ' || p[-1] == '.')
            return true;
    return false;
}

static void
pass_end(struct qmsg *m)
{
    struct envelope *e = m->env;
    bool pending = false, again = m->reflush;
    int64_t next = 0;

    for (int i = 0; i < m->ndsns; i++)
        qmgr_submit(m->q, m->new_dsns[i], NULL);
    m->ndsns = 0;
    m->running = m->flush = m->reflush = false;
    for (size_t i = 0; e && !m->removed && i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];

        pending |= r->state == RCPT_PENDING || !r->dsn_sent;
        if (r->state == RCPT_PENDING && (next == 0 || r->next_attempt < next))
            next = r->next_attempt;
    }
    if (e)
        note_domains(m, e);
    envelope_free(e);
    m->env = NULL;
    config_unref(m->cf);
    m->cf = NULL;
    buf_reset(&m->journal);
    if (e == NULL || m->removed || m->deleted || !pending) {
        qmsg_free(m);
        return;
    }
    if (m->held || atomic_load(&m->q->stopping))
        return;
    if (again) { /* a flush came while this pass ran */
        m->flush = true;
        next = 0;
    } else if (next <= m->now) {
        /* Nothing was tried (a file that could not be read, a DSN that could
         * not be stored): wait the first retry interval, never spin. */
        next = m->now + (m->q->first_retry ? m->q->first_retry : 300);
    }
    qmsg_schedule(m, next);
}

static void
finish_run(struct work *w)
{
    qmgr_finish_run((struct qmsg *)((char *)w - offsetof(struct qmsg, work)));
}

static void
finish_done(struct work *w)
{
    pass_end((struct qmsg *)((char *)w - offsetof(struct qmsg, work)));
}

static void
pass_finish(struct qmsg *m)
{
    m->work = (struct work){.run = finish_run, .done = finish_done};
    workpool_submit(m->q->pool, &m->work);
}

static void remote_start(struct qmsg *m);

static bool
remote_due(const struct qmsg *m)
{
    for (size_t i = 0; i < m->env->nrcpts; i++)
        if (m->env->rcpts[i].kind == RCPT_RELAY && qmgr_rcpt_due(m, &m->env->rcpts[i]))
            return true;
    return false;
}

static void
local_run(struct work *w)
{
    struct qmsg *m = (struct qmsg *)((char *)w - offsetof(struct qmsg, work));

    if (atomic_load(&m->q->stopping))
        return;
    qmgr_local_run(m);
    /* Nothing for step 2, or shutting down (the outbound agent may be gone
     * by the time local_done() runs): finish here. */
    if (m->env && (!remote_due(m) || atomic_load(&m->q->stopping))) {
        qmgr_finish_run(m);
        m->finished = true;
        return;
    }
    /* Step 2 can take minutes (a slow peer): journal the Maildir outcomes
     * now, or a crash meanwhile delivers them again at every restart.
     * If this fails, step 3 writes them with the rest. */
    if (m->env && m->journal.len &&
        spool_journal(m->q->spool, m->id, m->journal.data, m->journal.len) == 0)
        buf_reset(&m->journal);
}

static void
local_done(struct work *w)
{
    struct qmsg *m = (struct qmsg *)((char *)w - offsetof(struct qmsg, work));

    if (m->env == NULL || m->finished) { /* done, gone, unreadable, or shutting down */
        m->finished = false;
        pass_end(m);
        return;
    }
    if (atomic_load(&m->q->stopping)) {
        /* Stopped after local_run() looked: daemon_release() may have freed
         * the outbound agent already. Journal the local outcomes here; a
         * blocking write on the loop thread is fine once it is shutting
         * down. */
        qmgr_finish_run(m);
        pass_end(m);
        return;
    }
    remote_start(m);
}

static void
qmsg_pass(struct qmsg *m)
{
    if (m->running || m->held || atomic_load(&m->q->stopping))
        return;
    m->running = true;
    m->now = time(NULL);
    m->cf = m->q->current(m->q->arg);
    m->q->first_retry = m->cf->retry[0];
    m->work = (struct work){.run = local_run, .done = local_done};
    workpool_submit(m->q->pool, &m->work);
}

/* ---- step 2: remote recipients, grouped by destination ---- */

struct remote_batch {
    struct mta_request req;
    struct qmsg *m;
    const char *map;
    size_t maplen;
    size_t idx[];
};

static void
remote_done(struct mta_request *req)
{
    struct remote_batch *b = req->arg;
    struct qmsg *m = b->m;

    for (size_t k = 0; k < req->nrcpts; k++) {
        const struct mta_result *res = &req->results[k];
        size_t i = b->idx[k];
        char text[700];

        snprintf(text, sizeof(text), "%s%s%d %s %s", res->host, res->host[0] ? ": " : "",
                 res->reply.code, res->reply.status ? res->reply.status : "", res->reply.text);
        if (res->reply.code / 100 == 4 && atomic_load(&m->q->stopping))
            continue; /* cut short by shutdown: not an attempt */
        if (res->reply.code / 100 == 2) {
            m->env->rcpts[i].dsn_passed = res->dsn_passed;
            qmgr_rcpt_delivered(m, i, text);
        } else if (res->reply.code / 100 == 5) {
            qmgr_rcpt_failed(m, i, text);
        } else {
            qmgr_rcpt_deferred(m, i, text);
        }
        qmgr_log(m->env, &m->env->rcpts[i], res->host[0] ? res->host : "none",
                 res->reply.code / 100 == 2   ? "sent"
                 : res->reply.code / 100 == 5 ? "bounced"
                                              : "deferred",
                 text);
    }
    spool_unmap(b->map, b->maplen);
    free(req->results);
    free(b);
    if (--m->remote_pending == 0)
        pass_finish(m);
}

/* Collects the due recipients of r's destination (same action, and same
 * domain unless the action names its host) into one request. */
static void
remote_group(struct qmsg *m, size_t first, bool *taken, const char *map, size_t maplen)
{
    struct envelope *e = m->env;
    const struct envelope_rcpt *r = &e->rcpts[first];
    struct remote_batch *b = xcalloc(1, sizeof(*b) + e->nrcpts * sizeof(size_t));
    const struct action *a = config_find_action(m->cf, r->action);
    /* A smarthost or LMTP server is one destination whatever the domains. */
    bool fixed_host = a && a->host;
    size_t n = 0;

    for (size_t i = first; i < e->nrcpts; i++) {
        const struct envelope_rcpt *o = &e->rcpts[i];

        if (taken[i] || o->kind != RCPT_RELAY || !qmgr_rcpt_due(m, o) ||
            strcmp(o->action, r->action) != 0 ||
            (!fixed_host && strcasecmp(envelope_rcpt_domain(o), envelope_rcpt_domain(r)) != 0))
            continue;
        taken[i] = true;
        b->idx[n++] = i;
    }
    b->m = m;
    b->map = map;
    b->maplen = maplen;
    b->req = (struct mta_request){
        .env = e,
        .rcpts = b->idx,
        .nrcpts = n,
        .msg = map + e->data_offset,
        .len = maplen - e->data_offset,
        .domain = envelope_rcpt_domain(r),
        .action = config_find_action(m->cf, r->action),
        .done = remote_done,
        .arg = b,
        .results = xcalloc(n, sizeof(struct mta_result)),
    };
    m->remote_pending++;
    mta_submit(m->q->mta, &b->req);
}

static void
remote_start(struct qmsg *m)
{
    struct envelope *e = m->env;
    bool *taken = xcalloc(e->nrcpts ? e->nrcpts : 1, sizeof(bool));

    note_domains(m, e);    /* ETRN and flush can find it while it runs */
    m->remote_pending = 1; /* held until every group is submitted */
    for (size_t i = 0; i < e->nrcpts; i++) {
        const char *map;
        size_t maplen;

        if (taken[i] || e->rcpts[i].kind != RCPT_RELAY || !qmgr_rcpt_due(m, &e->rcpts[i]))
            continue;
        if (m->q->mta == NULL || config_find_action(m->cf, e->rcpts[i].action) == NULL) {
            taken[i] = true;
            qmgr_rcpt_deferred(m, i, "4.3.5 no outbound route in the configuration");
            continue;
        }
        if (spool_map(m->q->spool, m->id, &map, &maplen) < 0)
            break;
        remote_group(m, i, taken, map, maplen);
    }
    free(taken);
    if (--m->remote_pending == 0)
        pass_finish(m);
}

/* ---- public ---- */

void
qmgr_submit(struct qmgr *q, const char *id, const struct envelope *e)
{
    struct qmsg *m = qmsg_get(q, id);

    if (e && !m->running) /* ETRN and flush find it before its pass reads it */
        note_domains(m, e);
    qmsg_pass(m);
}

/* At start every queued message gets one attempt at once, whatever its
 * retry times say: a restart is when an admin expects the queue to move. */
static void
recover_one(void *arg, const char *id)
{
    struct qmsg *m = qmsg_get(arg, id);

    m->flush = true;
    qmsg_pass(m);
}

size_t
qmgr_recover(struct qmgr *q)
{
    return spool_scan(q->spool, recover_one, q);
}

/* See qmgr_impl.h; at most a second. */
static unsigned
test_local_delay(void)
{
    const char *v = getenv("PETREL_TEST_LOCAL_DELAY_MS");
    unsigned long ms = v ? strtoul(v, NULL, 10) : 0;

    return ms > 1000 ? 1000 : (unsigned)ms;
}

struct qmgr *
qmgr_new(struct event_base *base, struct workpool *pool, struct spool *sp, struct mta *mta,
         struct config *(*current)(void *arg), void *arg)
{
    struct qmgr *q = xcalloc(1, sizeof(*q));

    q->base = base;
    q->pool = pool;
    q->spool = sp;
    q->mta = mta;
    q->current = current;
    q->arg = arg;
    q->test_local_delay_ms = test_local_delay();
    if (q->test_local_delay_ms)
        log_warn("PETREL_TEST_LOCAL_DELAY_MS is set: every queued Maildir delivery waits %u ms "
                 "(a hook of the crash tests, not for use)",
                 q->test_local_delay_ms);
    return q;
}

void
qmgr_stop(struct qmgr *q)
{
    atomic_store(&q->stopping, true);
    for (struct qmsg *m = q->msgs; m; m = m->next)
        if (m->timer)
            evtimer_del(m->timer);
}

void
qmgr_free(struct qmgr *q)
{
    if (q == NULL)
        return;
    qmgr_stop(q);
    while (q->msgs)
        qmsg_free(q->msgs);
    free(q);
}

/* ---- control ---- */

size_t
qmgr_flush(struct qmgr *q, const char *domain)
{
    size_t n = 0;

    if (q->mta)
        mta_reset_destinations(q->mta);
    for (struct qmsg *m = q->msgs; m; m = m->next) {
        if (m->held || (domain && !waits_for(m, domain)))
            continue;
        if (m->running) { /* its pass ends soon: run another right after */
            m->reflush = true;
            n++;
            continue;
        }
        m->flush = true;
        if (m->timer)
            evtimer_del(m->timer);
        qmsg_pass(m);
        n++;
    }
    return n;
}

size_t
qmgr_waiting(const struct qmgr *q, const char *domain)
{
    size_t n = 0;

    for (const struct qmsg *m = q->msgs; m; m = m->next)
        n += !m->held && waits_for(m, domain);
    return n;
}

int
qmgr_delete(struct qmgr *q, const char *id)
{
    struct qmsg *m = qmsg_find(q, id);
    int r;

    if (m && m->running)
        return -EBUSY;
    if ((r = spool_remove(q->spool, id)) < 0)
        return r;
    if (m)
        qmsg_free(m);
    log_info("%s: deleted by the administrator", id);
    return 0;
}

int
qmgr_hold(struct qmgr *q, const char *id)
{
    struct qmsg *m = qmsg_find(q, id);
    int r;

    if (m && m->running)
        return -EBUSY;
    if ((r = spool_hold(q->spool, id, true)) < 0)
        return r;
    if (m)
        qmsg_free(m);
    log_info("%s: held by the administrator", id);
    return 0;
}

int
qmgr_release(struct qmgr *q, const char *id)
{
    int r = spool_hold(q->spool, id, false);

    if (r < 0)
        return r;
    log_info("%s: released by the administrator", id);
    qmgr_submit(q, id, NULL);
    return 0;
}
