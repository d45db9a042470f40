/*
 * Queue manager internals. A message known to the queue manager is a
 * struct qmsg. Each delivery pass over it has three steps:
 *   1. local  (worker thread): load the envelope, deliver the pending
 *      Maildir/terminal recipients that are due;
 *   2. remote (loop thread): hand the due relay/LMTP recipients to the
 *      outbound agent, grouped by destination;
 *   3. finish (worker thread): expiry, DSNs, the journal (one fdatasync),
 *      and removal once every recipient is final.
 * Then the loop schedules the next pass at the earliest retry time.
 */
#ifndef PETREL_QMGR_IMPL_H
#define PETREL_QMGR_IMPL_H

#include "base/buf.h"
#include "delivery/mta.h"
#include "delivery/qmgr.h"

#include <stdatomic.h>
#include <stdbool.h>

struct qmsg {
    struct qmgr *q;
    char id[QUEUE_ID_LEN + 1];
    struct envelope *env; /* during a pass */
    struct config *cf;    /* during a pass */
    bool running, held, flush, removed, deleted, finished;
    bool reflush;      /* a flush arrived while running: another pass after this one */
    int64_t due;       /* next pass, unix time */
    char domains[512]; /* " a.test b.test ": domains of pending relay recipients */
    struct event *timer;
    struct work work;
    struct buf journal; /* outcomes of this pass, written in step 3 */
    int64_t now;        /* the time the pass started */
    size_t remote_pending;
    char new_dsns[4][QUEUE_ID_LEN + 1]; /* DSN messages queued in step 3 */
    int ndsns;
    struct qmsg *next, *prev;
};

struct qmgr {
    struct event_base *base;
    struct workpool *pool;
    struct spool *spool;
    struct mta *mta;
    struct config *(*current)(void *arg);
    void *arg;
    atomic_bool stopping;
    struct qmsg *msgs;
    size_t nmsgs;
    unsigned first_retry; /* retry[0] of the config last seen */
    /* PETREL_TEST_LOCAL_DELAY_MS, set by the crash campaign (tests/crash):
     * a pause before each queued Maildir delivery, so that its kills find
     * such deliveries under way. 0 (unset): none. */
    unsigned test_local_delay_ms;
};

/* Step 1, on a worker thread: sets m->env (NULL if the file is gone). */
void qmgr_local_run(struct qmsg *m);
/* Step 3, on a worker thread. */
void qmgr_finish_run(struct qmsg *m);

/* Recipient bookkeeping shared by the steps. */
bool qmgr_rcpt_due(const struct qmsg *m, const struct envelope_rcpt *r);
void qmgr_rcpt_delivered(struct qmsg *m, size_t i, const char *text);
void qmgr_rcpt_failed(struct qmsg *m, size_t i, const char *text);
void qmgr_rcpt_deferred(struct qmsg *m, size_t i, const char *text);
void qmgr_log(const struct envelope *e, const struct envelope_rcpt *r, const char *relay,
              const char *status, const char *text);

/* Queues a DSN about e (bounce.c); 0 with the new id in out, or -1. */
int qmgr_bounce(struct qmsg *m, int kind, const size_t *rcpts, size_t n, char *out);

#endif
