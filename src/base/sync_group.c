/*
 * Group commit of syncs; see sync_group.h.
 *
 * Each group (a directory, or a file system) counts the syncs it started
 * and finished. A caller needs the sync numbered started + 1 at its entry:
 * the first that begins after everything it wrote. If no sync is running
 * it runs that one itself; otherwise it waits for the running one to end
 * and then runs (or waits for) the next, which serves every caller that
 * arrived meanwhile. None is ever skipped, and under load one system call
 * serves many callers.
 *
 * Why syncfs(2) makes a file's data durable: it writes back every dirty
 * page and inode of the file system and then commits the journal, which
 * flushes the device cache, so the data written before it started is on
 * stable storage when it returns. Since Linux 5.8 it also reports
 * writeback errors of the file system; each caller then checks its own
 * file with sync_file_range(2) (wait only, no writeback: cheap), which
 * reports that file's writeback errors since it was opened, as fdatasync
 * would, on every kernel. On a file system without a journal syncfs may
 * write the inodes without a device flush; the fsync of the directory
 * that follows the renames (sync_group_dir) issues one, and it covers
 * those writes too, so nothing is acknowledged before it returns.
 */
#include "base/sync_group.h"

#include "base/xmalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct group {
    unsigned long started, done; /* syncs begun and finished */
    unsigned long failed;        /* number of the last sync that failed; 0 = none */
    int error;                   /* its -errno */
    bool running;
    unsigned users;
    pthread_cond_t done_cond; /* this group's syncs only: no waking of others' waiters */
    struct group *next;
    char key[]; /* "dir PATH" or "dev N"; sized to fit: a group is made and
                 * freed under group_lock for every lone caller */
};

static pthread_mutex_t group_lock = PTHREAD_MUTEX_INITIALIZER;
static struct group *groups;
static struct sync_group_stats stats;
static atomic_int method = SYNC_METHOD_FILESYSTEM;
static int (*_Atomic syncfs_fn)(int fd) = syncfs;
static int (*_Atomic fdatasync_fn)(int fd) = fdatasync;

void
sync_group_set_method(enum sync_method m)
{
    atomic_store(&method, (int)m);
}

enum sync_method
sync_group_method(void)
{
    return (enum sync_method)atomic_load(&method);
}

const struct sync_group_stats *
sync_group_stats(void)
{
    return &stats;
}

void
sync_group_set_syncfs(int (*fn)(int fd))
{
    atomic_store(&syncfs_fn, fn ? fn : syncfs);
}

void
sync_group_set_fdatasync(int (*fn)(int fd))
{
    atomic_store(&fdatasync_fn, fn ? fn : fdatasync);
}

/* Called with group_lock held. */
static struct group *
group_get(const char *key)
{
    struct group *g;

    for (g = groups; g && strcmp(g->key, key) != 0; g = g->next)
        ;
    if (g == NULL) {
        size_t len = strlen(key);

        g = xcalloc(1, sizeof(*g) + len + 1);
        memcpy(g->key, key, len + 1);
        pthread_cond_init(&g->done_cond, NULL);
        g->next = groups;
        groups = g;
    }
    g->users++;
    return g;
}

/* Called with group_lock held. */
static void
group_put(struct group *g)
{
    struct group **pp;

    if (--g->users > 0 || g->running)
        return;
    for (pp = &groups; *pp != g; pp = &(*pp)->next)
        ;
    *pp = g->next;
    pthread_cond_destroy(&g->done_cond);
    free(g);
}

/* Waits for a run of sync (0 or -errno) that starts after this call,
 * running it when no other caller is. A caller alone in its group runs
 * solo (if given) instead, which serves it only: returns 1 then, or
 * -errno. */
static int
group_sync(const char *key, int (*sync)(const void *), int (*solo)(const void *), const void *arg,
           atomic_ulong *syscalls)
{
    struct group *g;
    unsigned long need;
    int r;

    pthread_mutex_lock(&group_lock);
    g = group_get(key);
    need = g->started + 1;
    while (g->done < need) {
        if (g->running) {
            pthread_cond_wait(&g->done_cond, &group_lock);
            continue;
        }
        if (solo && g->users == 1) {
            /* running, so that callers arriving now wait and share the next
             * sync rather than start one beside it; it serves no one else */
            g->running = true;
            pthread_mutex_unlock(&group_lock);
            atomic_fetch_add(syscalls, 1);
            r = solo(arg);
            pthread_mutex_lock(&group_lock);
            g->running = false;
            pthread_cond_broadcast(&g->done_cond);
            group_put(g);
            pthread_mutex_unlock(&group_lock);
            return r < 0 ? r : 1;
        }
        g->running = true;
        g->started++;
        pthread_mutex_unlock(&group_lock);
        atomic_fetch_add(syscalls, 1);
        r = sync(arg);
        pthread_mutex_lock(&group_lock);
        g->running = false;
        g->done = g->started;
        if (r < 0) {
            g->failed = g->done;
            g->error = r;
        }
        pthread_cond_broadcast(&g->done_cond);
    }
    /* any failed sync from ours on may have lost our data: fail safe */
    r = g->failed >= need ? g->error : 0;
    group_put(g);
    pthread_mutex_unlock(&group_lock);
    return r;
}

static int
run_syncfs(const void *arg)
{
    int fd = *(const int *)arg;

    return atomic_load(&syncfs_fn)(fd) < 0 ? -errno : 0;
}

static int
run_fdatasync(const void *arg)
{
    return atomic_load(&fdatasync_fn)(*(const int *)arg) < 0 ? -errno : 0;
}

static int
run_fsync_dir(const void *arg)
{
    const char *path = arg;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r = 0;

    if (fd < 0)
        return -errno;
    if (fsync(fd) < 0)
        r = -errno;
    close(fd);
    return r;
}

int
sync_group_data(int fd)
{
    char key[64];
    struct stat st;
    int r;

    atomic_fetch_add(&stats.data_calls, 1);
    if (sync_group_method() == SYNC_METHOD_FILES) {
        atomic_fetch_add(&stats.data_syscalls, 1);
        return fdatasync(fd) < 0 ? -errno : 0;
    }
    if (fstat(fd, &st) < 0)
        return -errno;
    snprintf(key, sizeof(key), "dev %ju", (uintmax_t)st.st_dev);
    /* Alone, the file's own fdatasync is enough and flushes nothing else:
     * the file system is synced only when that serves several callers. */
    if ((r = group_sync(key, run_syncfs, run_fdatasync, &fd, &stats.data_syscalls)) != 0)
        return r < 0 ? r : 0;
    /* this file's own writeback errors, as fdatasync would report them */
    if (sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER) < 0)
        return -errno;
    return 0;
}

int
sync_group_dir(const char *path)
{
    char key[4096 + 16];

    atomic_fetch_add(&stats.dir_calls, 1);
    snprintf(key, sizeof(key), "dir %s", path);
    return group_sync(key, run_fsync_dir, NULL, path, &stats.dir_syscalls);
}
