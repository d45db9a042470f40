/*
 * Shared syncs (base/sync_group.c): concurrent callers all succeed and
 * share system calls; each returns only after a sync that started after
 * its write (checked against a model of syncfs); a failure reaches every
 * caller it served; `sync files` issues one fdatasync per call.
 */
#include "base/sync_group.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#define THREADS 12
#define ROUNDS 8

static char tmpdir[] = "/tmp/petrel-sync-XXXXXX";

/*
 * A stand-in for syncfs that models what the real one guarantees: the data
 * written before it started is durable when it returns, later writes are
 * not. Each thread bumps written[i] after writing; the fake copies written[]
 * when it starts and publishes the copy as durable[] when it ends.
 */
static pthread_mutex_t model_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned written[THREADS], durable[THREADS];
static atomic_int fake_calls, fake_errno, fake_fdatasyncs;

static int
fake_syncfs(int fd)
{
    unsigned seen[THREADS];
    struct timespec nap = {0, 3 * 1000 * 1000};
    int e = atomic_load(&fake_errno);

    (void)fd;
    atomic_fetch_add(&fake_calls, 1);
    pthread_mutex_lock(&model_lock);
    memcpy(seen, written, sizeof(seen));
    pthread_mutex_unlock(&model_lock);
    nanosleep(&nap, NULL); /* long enough for the other threads to pile up */
    if (e) {
        errno = e;
        return -1;
    }
    pthread_mutex_lock(&model_lock);
    for (int i = 0; i < THREADS; i++)
        if (seen[i] > durable[i])
            durable[i] = seen[i];
    pthread_mutex_unlock(&model_lock);
    return 0;
}

/* The same model for the fdatasync of a caller alone in its group: its own
 * file's writes before it started are durable when it returns. */
static int fd_owner[1024];

static int
fake_fdatasync(int fd)
{
    struct timespec nap = {0, 1000 * 1000};
    int e = atomic_load(&fake_errno), id = fd >= 0 && fd < 1024 ? fd_owner[fd] : -1;
    unsigned seen;

    atomic_fetch_add(&fake_calls, 1);
    atomic_fetch_add(&fake_fdatasyncs, 1);
    if (id < 0) {
        errno = EBADF;
        return -1;
    }
    pthread_mutex_lock(&model_lock);
    seen = written[id];
    pthread_mutex_unlock(&model_lock);
    nanosleep(&nap, NULL);
    if (e) {
        errno = e;
        return -1;
    }
    pthread_mutex_lock(&model_lock);
    if (seen > durable[id])
        durable[id] = seen;
    pthread_mutex_unlock(&model_lock);
    return 0;
}

struct worker {
    int id, rounds;
    int fd;
    int result;      /* first nonzero sync_group_data result, else 0 */
    int not_durable; /* rounds that returned before their write was durable */
    pthread_barrier_t *start;
};

static void *
worker_run(void *arg)
{
    struct worker *w = arg;

    pthread_barrier_wait(w->start);
    for (int r = 1; r <= w->rounds; r++) {
        int rc;

        if (write(w->fd, "x", 1) != 1)
            w->result = -EIO;
        pthread_mutex_lock(&model_lock);
        written[w->id] = (unsigned)r;
        pthread_mutex_unlock(&model_lock);
        rc = sync_group_data(w->fd);
        if (rc != 0 && w->result == 0)
            w->result = rc;
        pthread_mutex_lock(&model_lock);
        if (durable[w->id] < (unsigned)r)
            w->not_durable++;
        pthread_mutex_unlock(&model_lock);
    }
    return NULL;
}

/* Runs THREADS workers for rounds rounds each, on files of tmpdir. */
static void
run_workers(struct worker *w, int rounds)
{
    pthread_t t[THREADS];
    pthread_barrier_t start;

    memset(written, 0, sizeof(written));
    memset(durable, 0, sizeof(durable));
    pthread_barrier_init(&start, NULL, THREADS);
    for (int i = 0; i < THREADS; i++) {
        char path[128];

        snprintf(path, sizeof(path), "%s/f%d", tmpdir, i);
        w[i] = (struct worker){.id = i, .rounds = rounds, .start = &start};
        w[i].fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(w[i].fd >= 0 && w[i].fd < 1024);
        fd_owner[w[i].fd] = i;
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        close(w[i].fd);
    }
    pthread_barrier_destroy(&start);
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup(void **state)
{
    (void)state;
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int
reset(void **state)
{
    (void)state;
    sync_group_set_method(SYNC_METHOD_FILESYSTEM);
    sync_group_set_syncfs(NULL);
    sync_group_set_fdatasync(NULL);
    atomic_store(&fake_calls, 0);
    atomic_store(&fake_fdatasyncs, 0);
    atomic_store(&fake_errno, 0);
    return 0;
}

/* The real syncfs: every caller succeeds, never more syscalls than callers. */
static void
test_syncfs_concurrent_callers(void **state)
{
    const struct sync_group_stats *st = sync_group_stats();
    unsigned long calls = atomic_load(&st->data_calls), sys = atomic_load(&st->data_syscalls);
    struct worker w[THREADS];

    (void)state;
    run_workers(w, 2);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(w[i].result, 0);
    calls = atomic_load(&st->data_calls) - calls;
    sys = atomic_load(&st->data_syscalls) - sys;
    assert_int_equal(calls, THREADS * 2);
    assert_true(sys >= 1 && sys <= calls);
}

/* Each caller returns only after a sync that started after its write; and
 * callers that pile up share one. */
static void
test_each_caller_waits_for_a_later_sync(void **state)
{
    const struct sync_group_stats *st = sync_group_stats();
    unsigned long sys = atomic_load(&st->data_syscalls);
    struct worker w[THREADS];

    (void)state;
    sync_group_set_syncfs(fake_syncfs);
    sync_group_set_fdatasync(fake_fdatasync);
    run_workers(w, ROUNDS);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(w[i].result, 0);
        assert_int_equal(w[i].not_durable, 0);
    }
    sys = atomic_load(&st->data_syscalls) - sys;
    assert_int_equal(sys, (unsigned long)atomic_load(&fake_calls));
    /* 3 ms per sync while 12 threads wait: far fewer syncs than calls */
    assert_true(sys < THREADS * ROUNDS / 2);
}

/* A failed syncfs fails every caller it served; the next one may succeed. */
static void
test_error_reaches_every_caller(void **state)
{
    struct worker w[THREADS];

    (void)state;
    sync_group_set_syncfs(fake_syncfs);
    sync_group_set_fdatasync(fake_fdatasync);
    atomic_store(&fake_errno, EIO);
    run_workers(w, 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(w[i].result, -EIO);
    atomic_store(&fake_errno, 0);
    run_workers(w, 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(w[i].result, 0);
}

/* A caller alone syncs its own file: nothing else on the file system is
 * flushed for it, and its write is durable when the call returns. */
static void
test_alone_syncs_its_own_file(void **state)
{
    char path[128];
    int fd;

    (void)state;
    sync_group_set_syncfs(fake_syncfs);
    sync_group_set_fdatasync(fake_fdatasync);
    snprintf(path, sizeof(path), "%s/alone", tmpdir);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0 && fd < 1024);
    fd_owner[fd] = 0;
    memset(written, 0, sizeof(written));
    memset(durable, 0, sizeof(durable));
    for (unsigned r = 1; r <= 3; r++) {
        assert_int_equal(write(fd, "x", 1), 1);
        written[0] = r;
        assert_int_equal(sync_group_data(fd), 0);
        assert_int_equal(durable[0], r);
    }
    assert_int_equal(atomic_load(&fake_fdatasyncs), 3);
    assert_int_equal(atomic_load(&fake_calls), 3); /* no syncfs */
    atomic_store(&fake_errno, EIO);
    assert_int_equal(sync_group_data(fd), -EIO);
    close(fd);
}

/* `sync files`: one fdatasync per call, no syncfs at all. */
static void
test_files_method_syncs_each_file(void **state)
{
    const struct sync_group_stats *st = sync_group_stats();
    unsigned long calls = atomic_load(&st->data_calls), sys = atomic_load(&st->data_syscalls);
    struct worker w[THREADS];

    (void)state;
    sync_group_set_method(SYNC_METHOD_FILES);
    sync_group_set_syncfs(fake_syncfs);
    assert_int_equal(sync_group_method(), SYNC_METHOD_FILES);
    run_workers(w, 2);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(w[i].result, 0);
    assert_int_equal(atomic_load(&st->data_calls) - calls, THREADS * 2);
    assert_int_equal(atomic_load(&st->data_syscalls) - sys, THREADS * 2);
    assert_int_equal(atomic_load(&fake_calls), 0);
}

/* A bad descriptor is an error, not a hang or a success. */
static void
test_bad_fd(void **state)
{
    (void)state;
    assert_int_equal(sync_group_data(-1), -EBADF);
    sync_group_set_method(SYNC_METHOD_FILES);
    assert_int_equal(sync_group_data(-1), -EBADF);
}

static void *
dir_worker(void *arg)
{
    *(int *)arg = sync_group_dir(tmpdir);
    return NULL;
}

/* Directory syncs: every caller succeeds, never more fsyncs than callers;
 * a missing directory is an error. */
static void
test_dir_syncs(void **state)
{
    const struct sync_group_stats *st = sync_group_stats();
    unsigned long calls = atomic_load(&st->dir_calls), sys = atomic_load(&st->dir_syscalls);
    pthread_t t[THREADS];
    int r[THREADS];
    char missing[128];

    (void)state;
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, dir_worker, &r[i]), 0);
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i], 0);
    }
    assert_int_equal(atomic_load(&st->dir_calls) - calls, THREADS);
    sys = atomic_load(&st->dir_syscalls) - sys;
    assert_true(sys >= 1 && sys <= THREADS);
    snprintf(missing, sizeof(missing), "%s/none", tmpdir);
    assert_int_equal(sync_group_dir(missing), -ENOENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_syncfs_concurrent_callers, reset),
        cmocka_unit_test_setup(test_each_caller_waits_for_a_later_sync, reset),
        cmocka_unit_test_setup(test_error_reaches_every_caller, reset),
        cmocka_unit_test_setup(test_alone_syncs_its_own_file, reset),
        cmocka_unit_test_setup(test_files_method_syncs_each_file, reset),
        cmocka_unit_test_setup(test_bad_fd, reset),
        cmocka_unit_test_setup(test_dir_syncs, reset),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
