/*
 * Worker threads with a mutex/condvar job list. Results go back through a
 * done list and one libevent event made active from the worker thread
 * (event_active is thread-safe once evthread_use_pthreads() ran).
 */
#include "event/workpool.h"

#include "base/xmalloc.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

struct workpool {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct work *queue, *queue_tail;
    struct work *finished;
    size_t pending;
    bool stopping;
    struct event *notify;
    pthread_t *threads;
    unsigned nthreads;
};

static void *
workpool_thread(void *arg)
{
    struct workpool *pool = arg;
    struct work *w;

    for (;;) {
        pthread_mutex_lock(&pool->lock);
        while (pool->queue == NULL && !pool->stopping)
            pthread_cond_wait(&pool->wake, &pool->lock);
        w = pool->queue;
        if (w == NULL) {
            pthread_mutex_unlock(&pool->lock);
            return NULL;
        }
        pool->queue = w->next;
        if (pool->queue == NULL)
            pool->queue_tail = NULL;
        pthread_mutex_unlock(&pool->lock);
        w->run(w);
        workpool_finish(pool, w);
    }
}

/* Loop thread: run the done() callbacks of everything finished so far. */
static void
workpool_drain(evutil_socket_t fd, short what, void *arg)
{
    struct workpool *pool = arg;
    struct work *list, *next, *rev = NULL;
    size_t n = 0;

    (void)fd;
    (void)what;
    pthread_mutex_lock(&pool->lock);
    list = pool->finished;
    pool->finished = NULL;
    for (struct work *w = list; w; w = w->next)
        n++;
    /* no longer pending once their done() runs, below, before the loop
     * could ask: one lock for the batch */
    pool->pending -= n;
    pthread_mutex_unlock(&pool->lock);
    for (; list; list = next) { /* restore completion order */
        next = list->next;
        list->next = rev;
        rev = list;
    }
    for (; rev; rev = next) {
        next = rev->next;
        rev->done(rev);
    }
}

struct workpool *
workpool_new(struct event_base *base, unsigned nthreads)
{
    struct workpool *pool = xcalloc(1, sizeof(*pool));

    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pool->notify = event_new(base, -1, 0, workpool_drain, pool);
    pool->threads = xcalloc(nthreads ? nthreads : 1, sizeof(pthread_t));
    pool->nthreads = nthreads;
    for (unsigned i = 0; i < nthreads; i++)
        if (pthread_create(&pool->threads[i], NULL, workpool_thread, pool) != 0)
            abort();
    return pool;
}

void
workpool_submit(struct workpool *pool, struct work *w)
{
    w->next = NULL;
    pthread_mutex_lock(&pool->lock);
    pool->pending++;
    if (w->run == NULL) { /* finished elsewhere (workpool_finish) */
        pthread_mutex_unlock(&pool->lock);
        return;
    }
    if (pool->queue_tail)
        pool->queue_tail->next = w;
    else
        pool->queue = w;
    pool->queue_tail = w;
    pthread_mutex_unlock(&pool->lock);
    /* after the unlock: a worker woken while the lock is still held would
     * only block on it again (two more futex calls per job) */
    pthread_cond_signal(&pool->wake);
}

void
workpool_finish(struct workpool *pool, struct work *w)
{
    pthread_mutex_lock(&pool->lock);
    w->next = pool->finished;
    pool->finished = w;
    pthread_mutex_unlock(&pool->lock);
    event_active(pool->notify, 0, 0);
}

size_t
workpool_pending(struct workpool *pool)
{
    size_t n;

    pthread_mutex_lock(&pool->lock);
    n = pool->pending;
    pthread_mutex_unlock(&pool->lock);
    return n;
}

void
workpool_free(struct workpool *pool)
{
    if (pool == NULL)
        return;
    pthread_mutex_lock(&pool->lock);
    pool->stopping = true;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->lock);
    for (unsigned i = 0; i < pool->nthreads; i++)
        pthread_join(pool->threads[i], NULL);
    workpool_drain(-1, 0, pool);
    event_free(pool->notify);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->lock);
    free(pool->threads);
    free(pool);
}
