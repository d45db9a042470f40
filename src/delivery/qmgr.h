/*
 * The queue manager: delivers each committed message's local recipients on
 * worker threads, journals every outcome, removes the message once all its
 * recipients are final, and retries temporary failures with back-off.
 * Relay recipients wait in the spool for the outbound delivery agent.
 */
#ifndef PETREL_QMGR_H
#define PETREL_QMGR_H

#include "config/config.h"
#include "event/workpool.h"
#include "queue/spool.h"

#include <stddef.h>

struct envelope;
struct event_base;
struct qmgr;

struct mta;

/* current() returns a new reference to the config in force. mta may be
 * NULL (relay recipients then wait). */
struct qmgr *qmgr_new(struct event_base *base, struct workpool *pool, struct spool *sp,
                      struct mta *mta, struct config *(*current)(void *arg), void *arg);
void qmgr_free(struct qmgr *q);
/* A message was committed: deliver what can be delivered now. The envelope,
 * when the caller has it, tells ETRN at once which domains it waits for. */
void qmgr_submit(struct qmgr *q, const char *id, const struct envelope *e);
/* Start-up: every message in the spool gets a delivery attempt. */
size_t qmgr_recover(struct qmgr *q);
/* Shutdown: start nothing new; jobs already running finish. */
void qmgr_stop(struct qmgr *q);

/* Control requests (petrel flush, delete, hold, release), on the loop
 * thread. flush retries every deferred message now (those with a pending
 * recipient in domain — "@domain" includes its subdomains — or all when
 * domain is NULL) and returns how many.
 * The others return 0, -ENOENT for an unknown id, or -EBUSY while a
 * delivery of that message is running (try again). */
size_t qmgr_flush(struct qmgr *q, const char *domain);
/* How many messages (not held) wait for domain; nothing is started. */
size_t qmgr_waiting(const struct qmgr *q, const char *domain);
int qmgr_delete(struct qmgr *q, const char *id);
int qmgr_hold(struct qmgr *q, const char *id);
int qmgr_release(struct qmgr *q, const char *id);

#endif
