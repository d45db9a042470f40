/*
 * Queue manager; see qmgr.h. A message has at most one delivery job at a
 * time (a job per commit, per retry timer, per recovered file), so its
 * journal is only ever appended by one thread.
 */
#include "delivery/qmgr.h"

#include "base/buf.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "delivery/maildir.h"
#include "delivery/terminal.h"
#include "smtp/smtp_server.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RETRY_FIRST 60 /* seconds */
#define RETRY_MAX 3600

struct qmgr {
    struct event_base *base;
    struct workpool *pool;
    struct spool *spool;
    struct config *(*current)(void *arg);
    void *arg;
    atomic_bool stopping;          /* read by worker threads */
    struct delivery_job *retrying; /* jobs waiting on their timer */
};

struct delivery_job {
    struct work work;
    struct qmgr *q;
    struct config *cf;
    char id[QUEUE_ID_LEN + 1];
    unsigned attempt;
    size_t deferred; /* local recipients to retry */
    struct event *timer;
    struct delivery_job *next_retry;
};

static const struct action *
action_find(const struct config *cf, const char *name)
{
    for (size_t i = 0; i < cf->nactions; i++)
        if (strcmp(cf->actions[i].name, name) == 0)
            return &cf->actions[i];
    return NULL;
}

static double
delay_since(int64_t arrival)
{
    return difftime(time(NULL), (time_t)arrival);
}

/* Writes to every terminal of the user; true if one took it. */
static bool
deliver_terminals(const struct config *cf, const struct envelope *e, const char *user,
                  const char *msg, size_t len)
{
    char ttys[TERMINAL_MAX][40];
    int n = terminal_find(cf->utmp_file, user, ttys, TERMINAL_MAX);
    bool ok = false;

    for (int i = 0; i < n; i++)
        ok |= terminal_write(ttys[i], e->sender, msg, len) == 0;
    return ok;
}

static int
deliver_mailbox(const struct action *a, const struct envelope *e, const struct envelope_rcpt *r,
                const char *msg, size_t len, char *err, size_t errlen)
{
    char dir[4096], head[1200];

    if (maildir_path(a->maildir, r->user, dir, sizeof(dir), err, errlen) < 0)
        return -1;
    /* RFC 5321 4.4: the final delivery adds Return-Path. */
    snprintf(head, sizeof(head), "Return-Path: <%s>\nDelivered-To: %s\n", e->sender, r->address);
    if (maildir_deliver(dir, head, msg, len, err, errlen) < 0)
        return 0;
    snprintf(err, errlen, "delivered to maildir %s", dir);
    return 1;
}

/*
 * One local recipient, honouring RFC 821 SEND/SOML/SAML when terminal
 * delivery is on. Returns 1 delivered, 0 deferred, -1 failed for good.
 */
static int
deliver_one(struct delivery_job *j, const struct envelope *e, const struct envelope_rcpt *r,
            const char *msg, size_t len, char *err, size_t errlen)
{
    const struct action *a = action_find(j->cf, r->action);
    int mode = j->cf->terminal_delivery ? e->mode : SMTP_MODE_MAIL;
    bool tty;

    if (a == NULL || a->kind != ACTION_MAILDIR) {
        snprintf(err, errlen, "no maildir action \"%s\" in the configuration", r->action);
        return 0;
    }
    if (mode == SMTP_MODE_MAIL)
        return deliver_mailbox(a, e, r, msg, len, err, errlen);
    tty = deliver_terminals(j->cf, e, r->user, msg, len);
    if (mode == SMTP_MODE_SEND || (mode == SMTP_MODE_SOML && tty)) {
        snprintf(err, errlen, tty ? "written to the terminal" : "user is not logged in");
        return tty ? 1 : -1;
    }
    return deliver_mailbox(a, e, r, msg, len, err, errlen); /* SOML not logged in, SAML */
}

static void
log_result(const struct envelope *e, const struct envelope_rcpt *r, const char *status,
           const char *text)
{
    log_info("%s: to=<%s>%s%s%s, relay=%s, delay=%.0f, status=%s (%s)", e->id, r->address,
             strcmp(r->orig, r->address) ? ", orig_to=<" : "",
             strcmp(r->orig, r->address) ? r->orig : "", strcmp(r->orig, r->address) ? ">" : "",
             r->kind == RCPT_MAILDIR ? "maildir" : "none", delay_since(e->arrival), status, text);
}

/* Delivers every pending Maildir recipient; journals outcomes. */
static void
deliver_rcpts(struct delivery_job *j, struct envelope *e, const char *msg, size_t len,
              struct buf *journal)
{
    char err[512];

    for (size_t i = 0; i < e->nrcpts; i++) {
        struct envelope_rcpt *r = &e->rcpts[i];
        int rc;

        if (r->state != RCPT_PENDING)
            continue;
        if (r->kind == RCPT_RELAY) {
            if (j->attempt == 0)
                log_result(e, r, "deferred", "outbound delivery is not available yet");
            continue;
        }
        rc = deliver_one(j, e, r, msg, len, err, sizeof(err));
        if (rc > 0) {
            r->state = RCPT_DELIVERED;
            (void)!buf_printf(journal, "d %zu\n", i);
        } else if (rc < 0) {
            r->state = RCPT_FAILED;
            (void)!buf_printf(journal, "f %zu %s\n", i, "-");
        } else {
            j->deferred++;
        }
        log_result(e, r, rc > 0 ? "sent" : rc < 0 ? "bounced" : "deferred", err);
    }
}

static void
job_run(struct work *w)
{
    struct delivery_job *j = (struct delivery_job *)w;
    struct envelope *e;
    const char *map;
    size_t maplen;
    struct buf journal;

    j->deferred = 0;
    if (atomic_load(&j->q->stopping))
        return; /* shutting down: the spool keeps it for the next start */
    if ((e = spool_load(j->q->spool, j->id)) == NULL) {
        log_warn("%s: unreadable queue file, moved to corrupt/", j->id);
        spool_quarantine(j->q->spool, j->id);
        return;
    }
    if (spool_map(j->q->spool, j->id, &map, &maplen) < 0) {
        j->deferred = 1;
        envelope_free(e);
        return;
    }
    buf_init(&journal, 1u << 24);
    deliver_rcpts(j, e, map + e->data_offset, maplen - e->data_offset, &journal);
    spool_unmap(map, maplen);
    /* Every recipient final: removing the message records that, no journal
     * needed. Otherwise the outcomes must be durable before we go on; if
     * they are not, the next attempt repeats them (a duplicate, never a loss). */
    if (envelope_pending(e) == 0) {
        if (spool_remove(j->q->spool, j->id) == 0)
            log_info("%s: removed", j->id);
    } else if (journal.len && spool_journal(j->q->spool, j->id, journal.data, journal.len) < 0) {
        j->deferred = 1;
    }
    buf_free(&journal);
    envelope_free(e);
}

static void job_start(struct delivery_job *j);

static void
job_retry(evutil_socket_t fd, short what, void *arg)
{
    struct delivery_job *j = arg, **pp;

    (void)fd;
    (void)what;
    for (pp = &j->q->retrying; *pp; pp = &(*pp)->next_retry)
        if (*pp == j) {
            *pp = j->next_retry;
            break;
        }
    job_start(j);
}

static void
job_free(struct delivery_job *j)
{
    if (j->timer)
        event_free(j->timer);
    if (j->cf)
        config_unref(j->cf);
    free(j);
}

static void
job_done(struct work *w)
{
    struct delivery_job *j = (struct delivery_job *)w;
    struct qmgr *q = j->q;
    struct timeval tv = {0, 0};
    unsigned delay;

    config_unref(j->cf);
    j->cf = NULL;
    if (j->deferred == 0 || q->stopping) {
        job_free(j);
        return;
    }
    delay = RETRY_FIRST << (j->attempt < 6 ? j->attempt : 6);
    delay = delay > RETRY_MAX ? RETRY_MAX : delay;
    j->attempt++;
    if (j->timer == NULL)
        j->timer = evtimer_new(q->base, job_retry, j);
    tv.tv_sec = delay;
    evtimer_add(j->timer, &tv);
    j->next_retry = q->retrying;
    q->retrying = j;
}

static void
job_start(struct delivery_job *j)
{
    if (j->q->stopping) {
        job_free(j);
        return;
    }
    j->cf = j->q->current(j->q->arg);
    j->work.run = job_run;
    j->work.done = job_done;
    workpool_submit(j->q->pool, &j->work);
}

void
qmgr_submit(struct qmgr *q, const char *id)
{
    struct delivery_job *j = xcalloc(1, sizeof(*j));

    j->q = q;
    snprintf(j->id, sizeof(j->id), "%s", id);
    job_start(j);
}

static void
recover_one(void *arg, const char *id)
{
    qmgr_submit(arg, id);
}

size_t
qmgr_recover(struct qmgr *q)
{
    return spool_scan(q->spool, recover_one, q);
}

struct qmgr *
qmgr_new(struct event_base *base, struct workpool *pool, struct spool *sp,
         struct config *(*current)(void *arg), void *arg)
{
    struct qmgr *q = xcalloc(1, sizeof(*q));

    q->base = base;
    q->pool = pool;
    q->spool = sp;
    q->current = current;
    q->arg = arg;
    return q;
}

void
qmgr_stop(struct qmgr *q)
{
    struct delivery_job *j, *next;

    q->stopping = true;
    for (j = q->retrying; j; j = next) {
        next = j->next_retry;
        job_free(j);
    }
    q->retrying = NULL;
}

void
qmgr_free(struct qmgr *q)
{
    if (q == NULL)
        return;
    qmgr_stop(q);
    free(q);
}
