/*
 * Blocking work off the event loop: jobs run on worker threads, and their
 * done() callbacks run back on the loop thread. A job can also be finished
 * by a thread of its own (the spool committer) with workpool_finish().
 */
#ifndef PETREL_WORKPOOL_H
#define PETREL_WORKPOOL_H

#include <stddef.h>

struct event_base;
struct workpool;

struct work {
    void (*run)(struct work *w);  /* on a worker thread; may block */
    void (*done)(struct work *w); /* on the loop thread, after run */
    struct work *next;            /* private to the pool */
};

/* Needs evthread_use_pthreads() before the event base was made. */
struct workpool *workpool_new(struct event_base *base, unsigned nthreads);
/* Waits for queued and running jobs, runs their done() callbacks, stops. */
void workpool_free(struct workpool *pool);
/* Queues w. With w->run == NULL the job is only counted: another thread
 * (the spool committer) runs it and calls workpool_finish(). */
void workpool_submit(struct workpool *pool, struct work *w);
/* From any thread: schedule w->done on the loop thread. */
void workpool_finish(struct workpool *pool, struct work *w);
/* Jobs submitted and not yet done (for shutdown and tests). */
size_t workpool_pending(struct workpool *pool);

#endif
