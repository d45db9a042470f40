/*
 * Spool on a POSIX file system. Ordering, as in every careful MTA: write
 * the file in tmp/, make its data durable (sync_group_data: data and size),
 * rename into queue/ (atomic: readers never see a partial file), fsync
 * queue/ (the name is durable). A crash before the directory sync loses
 * only messages that were never acknowledged; one after it loses nothing.
 *
 * Commits run on threads of their own, never behind deliveries:
 * SPOOL_WRITERS writers write, sync and rename messages in parallel (their
 * data syncs are shared: one syncfs serves every writer waiting when it
 * starts, see base/sync_group.h), and one committer fsyncs queue/ once for
 * every message renamed since its last fsync (group commit), then
 * completes them.
 */
#include "queue/spool.h"

#include "base/fdio.h"
#include "base/sync_group.h"
#include "base/xmalloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SPOOL_WRITERS 8

struct spool {
    char *dir;
    int queue_fd; /* open queue/ directory, for fsync */
    struct workpool *pool;
    pthread_t committer;
    pthread_t writers[SPOOL_WRITERS];
    pthread_mutex_t lock;
    pthread_cond_t wake;          /* the committer: written commits, or stopping */
    pthread_cond_t work;          /* the writers: waiting commits, or stopping */
    struct spool_commit *waiting; /* to write */
    struct spool_commit *written; /* written and renamed (or failed): to fsync queue/ */
    bool stopping;                /* writers: finish what is waiting, then end */
    bool writers_done;            /* the committer: sync what is written, then end */
    struct spool_stats stats;
};

static void
spool_path(const struct spool *sp, char *out, size_t n, const char *sub, const char *id,
           const char *suffix)
{
    snprintf(out, n, "%s/%s/%s%s", sp->dir, sub, id, suffix);
}

static int
write_all(int fd, struct str *parts, int nparts)
{
    struct iovec iov[3];
    int n = 0;

    for (int i = 0; i < nparts && i < 3; i++)
        if (parts[i].len)
            iov[n++] = (struct iovec){(void *)(uintptr_t)parts[i].ptr, parts[i].len};
    while (n > 0) {
        ssize_t w = writev(fd, iov, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        while (n > 0 && (size_t)w >= iov[0].iov_len) {
            w -= (ssize_t)iov[0].iov_len;
            memmove(iov, iov + 1, (size_t)--n * sizeof(iov[0]));
        }
        if (n > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + w;
            iov[0].iov_len -= (size_t)w;
        }
    }
    return 0;
}

/* Writes and syncs one message into tmp/. Returns 0 or an errno value. */
static int
commit_write(struct spool *sp, struct spool_commit *c)
{
    char tmp[4096];
    int fd, r;

    spool_path(sp, tmp, sizeof(tmp), "tmp", c->id, "");
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno;
    r = write_all(fd, c->parts, 3);
    if (r == 0)
        r = sync_group_data(fd); /* returns before the rename, never after */
    atomic_fetch_add(&sp->stats.file_syncs, 1);
    close(fd);
    if (r < 0)
        unlink(tmp);
    return -r;
}

static int commit_rename(struct spool *sp, struct spool_commit *c);

int
spool_store(struct spool *sp, const char *id, const struct str parts[3])
{
    struct spool_commit c = {.id = id, .parts = {parts[0], parts[1], parts[2]}};
    int r;

    if ((r = commit_write(sp, &c)) != 0 || (r = commit_rename(sp, &c)) != 0)
        return r;
    atomic_fetch_add(&sp->stats.dir_syncs, 1);
    if (fsync(sp->queue_fd) < 0)
        return errno;
    atomic_fetch_add(&sp->stats.commits, 1);
    return 0;
}

int
spool_hold(struct spool *sp, const char *id, bool hold)
{
    const char *from = hold ? "queue" : "hold", *to = hold ? "hold" : "queue";
    char a[4096], b[4096];

    spool_path(sp, a, sizeof(a), from, id, "");
    spool_path(sp, b, sizeof(b), to, id, "");
    if (rename(a, b) < 0)
        return -errno;
    spool_path(sp, a, sizeof(a), from, id, ".state");
    spool_path(sp, b, sizeof(b), to, id, ".state");
    rename(a, b); /* no journal is fine */
    return 0;
}

static int
commit_rename(struct spool *sp, struct spool_commit *c)
{
    char tmp[4096], dst[4096];

    spool_path(sp, tmp, sizeof(tmp), "tmp", c->id, "");
    spool_path(sp, dst, sizeof(dst), "queue", c->id, "");
    /* Never replace a message: the sendmail command picks ids in another
     * process, and two ids may meet. */
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dst, RENAME_NOREPLACE) == 0)
        return 0;
    if ((errno == EINVAL || errno == ENOSYS) && link(tmp, dst) == 0) {
        unlink(tmp); /* a file system without RENAME_NOREPLACE: link never replaces */
        return 0;
    }
    unlink(tmp);
    return errno;
}

/* One fsync of queue/ for every commit in list, then their replies. */
static void
commit_batch(struct spool *sp, struct spool_commit *list)
{
    struct spool_commit *c, *next;
    int dir_err = 0;
    bool renamed = false;

    for (c = list; c; c = c->next)
        renamed |= c->error == 0;
    if (renamed && fsync(sp->queue_fd) < 0)
        dir_err = errno;
    atomic_fetch_add(&sp->stats.dir_syncs, renamed);
    atomic_fetch_add(&sp->stats.batches, 1);
    for (c = list; c; c = next) {
        next = c->next;
        if (c->error == 0 && dir_err) {
            char dst[4096];

            /* Not durable: take it back so it is never delivered unacked. */
            spool_path(sp, dst, sizeof(dst), "queue", c->id, "");
            unlink(dst);
            c->error = dir_err;
        }
        if (c->error == 0)
            atomic_fetch_add(&sp->stats.commits, 1);
        workpool_finish(sp->pool, &c->work);
    }
}

static void *
spool_writer(void *arg)
{
    struct spool *sp = arg;
    struct spool_commit *c;

    for (;;) {
        pthread_mutex_lock(&sp->lock);
        while (sp->waiting == NULL && !sp->stopping)
            pthread_cond_wait(&sp->work, &sp->lock);
        c = sp->waiting;
        if (c)
            sp->waiting = c->next;
        pthread_mutex_unlock(&sp->lock);
        if (c == NULL)
            return NULL; /* stopping, and nothing left to write */
        if ((c->error = commit_write(sp, c)) == 0)
            c->error = commit_rename(sp, c);
        pthread_mutex_lock(&sp->lock);
        c->next = sp->written;
        sp->written = c;
        pthread_cond_signal(&sp->wake);
        pthread_mutex_unlock(&sp->lock);
    }
}

static void *
spool_committer(void *arg)
{
    struct spool *sp = arg;
    struct spool_commit *list;

    for (;;) {
        pthread_mutex_lock(&sp->lock);
        while (sp->written == NULL && !sp->writers_done)
            pthread_cond_wait(&sp->wake, &sp->lock);
        list = sp->written;
        sp->written = NULL;
        pthread_mutex_unlock(&sp->lock);
        if (list == NULL)
            return NULL; /* the writers have ended and all is synced */
        commit_batch(sp, list);
    }
}

void
spool_commit(struct spool *sp, struct spool_commit *c)
{
    c->work.run = NULL; /* the spool's threads run it */
    c->error = 0;
    workpool_submit(sp->pool, &c->work);
    pthread_mutex_lock(&sp->lock);
    c->next = sp->waiting;
    sp->waiting = c;
    pthread_cond_signal(&sp->work);
    pthread_mutex_unlock(&sp->lock);
}

static int
mkdir_sub(const char *dir, const char *sub, char *err, size_t errlen)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s%s%s", dir, *sub ? "/" : "", sub);
    if (mkdir(path, 0700) < 0 && errno != EEXIST) {
        snprintf(err, errlen, "spool: cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static const char *const spool_subs[] = {"tmp", "queue", "corrupt", "hold"};

static bool
spool_sub(const char *name)
{
    for (size_t i = 0; i < sizeof(spool_subs) / sizeof(spool_subs[0]); i++)
        if (strcmp(name, spool_subs[i]) == 0)
            return true;
    return false;
}

/* Gives the directory at dirfd/name to uid:gid with mode 0700, then every
 * entry in it that is not owned so already; with depth 1 the spool's own
 * subdirectories too. Symbolic links are never followed: a link planted in
 * the spool could otherwise hand any file to the daemon's user. */
static int
spool_own_dir(int at, const char *name, uid_t uid, gid_t gid, int depth)
{
    struct dirent *de;
    struct stat st;
    DIR *d;
    int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return -1;
    if (fchown(fd, uid, gid) < 0 || fchmod(fd, 0700) < 0 || (d = fdopendir(fd)) == NULL) {
        close(fd);
        return -1;
    }
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0 && spool_sub(de->d_name)) {
            if (spool_own_dir(dirfd(d), de->d_name, uid, gid, depth - 1) < 0) {
                closedir(d);
                return -1;
            }
        } else if (!S_ISLNK(st.st_mode) && (st.st_uid != uid || st.st_gid != gid) &&
                   fchownat(dirfd(d), de->d_name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0) {
            closedir(d);
            return -1;
        }
    }
    closedir(d);
    return 0;
}

int
spool_prepare(const char *dir, long uid, long gid, char *err, size_t errlen)
{
    if (mkdir_sub(dir, "", err, errlen) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(spool_subs) / sizeof(spool_subs[0]); i++)
        if (mkdir_sub(dir, spool_subs[i], err, errlen) < 0)
            return -1;
    if (uid < 0)
        return 0;
    if (spool_own_dir(AT_FDCWD, dir, (uid_t)uid, (gid_t)gid, 1) < 0) {
        snprintf(err, errlen, "spool: cannot give %s to uid %ld: %s", dir, uid, strerror(errno));
        return -1;
    }
    return 0;
}

/* A journal whose message is gone: a crash hit between the two unlinks
 * of spool_remove(). The message was final; the journal is noise. */
static void
spool_clean_orphans(struct spool *sp)
{
    char id[QUEUE_ID_LEN + 1];
    struct dirent *de;
    struct stat st;
    DIR *d = fdopendir(dup(sp->queue_fd));

    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);

        if (n != QUEUE_ID_LEN + 6 || strcmp(de->d_name + QUEUE_ID_LEN, ".state") != 0)
            continue;
        memcpy(id, de->d_name, QUEUE_ID_LEN);
        id[QUEUE_ID_LEN] = '\0';
        if (queue_id_valid(id) && fstatat(sp->queue_fd, id, &st, 0) < 0 && errno == ENOENT)
            unlinkat(sp->queue_fd, de->d_name, 0);
    }
    closedir(d);
}

static void
spool_clean_tmp(struct spool *sp)
{
    char path[4096];
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/tmp", sp->dir);
    if ((d = opendir(path)) == NULL)
        return;
    /* Files in tmp/ were never acknowledged: nobody is waiting for them. */
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            unlinkat(dirfd(d), de->d_name, 0);
    closedir(d);
}

struct spool *
spool_open(const char *dir, struct workpool *pool, char *err, size_t errlen)
{
    struct spool *sp;
    char path[4096];

    if (spool_prepare(dir, -1, -1, err, errlen) < 0)
        return NULL;
    sp = xcalloc(1, sizeof(*sp));
    sp->dir = xstrdup(dir);
    sp->pool = pool;
    snprintf(path, sizeof(path), "%s/queue", dir);
    sp->queue_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (sp->queue_fd < 0) {
        snprintf(err, errlen, "spool: cannot open %s: %s", path, strerror(errno));
        free(sp->dir);
        free(sp);
        return NULL;
    }
    spool_clean_tmp(sp);
    spool_clean_orphans(sp);
    pthread_mutex_init(&sp->lock, NULL);
    pthread_cond_init(&sp->wake, NULL);
    pthread_cond_init(&sp->work, NULL);
    for (int i = 0; i < SPOOL_WRITERS; i++)
        if (pthread_create(&sp->writers[i], NULL, spool_writer, sp) != 0)
            abort();
    if (pthread_create(&sp->committer, NULL, spool_committer, sp) != 0)
        abort();
    return sp;
}

void
spool_close(struct spool *sp)
{
    if (sp == NULL)
        return;
    pthread_mutex_lock(&sp->lock);
    sp->stopping = true;
    pthread_cond_broadcast(&sp->work);
    pthread_mutex_unlock(&sp->lock);
    /* writers finish what is waiting, then the committer syncs the rest */
    for (int i = 0; i < SPOOL_WRITERS; i++)
        pthread_join(sp->writers[i], NULL);
    pthread_mutex_lock(&sp->lock);
    sp->writers_done = true;
    pthread_cond_signal(&sp->wake);
    pthread_mutex_unlock(&sp->lock);
    pthread_join(sp->committer, NULL);
    close(sp->queue_fd);
    pthread_cond_destroy(&sp->work);
    pthread_cond_destroy(&sp->wake);
    pthread_mutex_destroy(&sp->lock);
    free(sp->dir);
    free(sp);
}

int
spool_journal(struct spool *sp, const char *id, const char *lines, size_t n)
{
    char path[4096];
    struct str part = str_make(lines, n);
    int fd, r;

    spool_path(sp, path, sizeof(path), "queue", id, ".state");
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    r = write_all(fd, &part, 1);
    if (r == 0)
        r = sync_group_data(fd);
    atomic_fetch_add(&sp->stats.file_syncs, 1);
    close(fd);
    return r;
}

int
spool_remove(struct spool *sp, const char *id)
{
    static const char *const subs[] = {"queue", "hold"};
    char path[4096];
    bool found = false;
    int r = 0;

    for (int i = 0; i < 2; i++) {
        /* The message first: a journal without its message is removed at
         * the next start; the other way round would redeliver. */
        spool_path(sp, path, sizeof(path), subs[i], id, "");
        if (unlink(path) == 0)
            found = true;
        else if (errno != ENOENT)
            r = -errno;
        spool_path(sp, path, sizeof(path), subs[i], id, ".state");
        unlink(path);
    }
    return r ? r : found ? 0 : -ENOENT;
}

static int
read_file(const char *path, char **out, size_t *len, size_t limit)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t r;

    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || (size_t)st.st_size > limit) {
        close(fd);
        return -EFBIG;
    }
    *out = xmalloc((size_t)st.st_size + 1);
    r = read(fd, *out, (size_t)st.st_size);
    close(fd);
    if (r < 0) {
        free(*out);
        return -EIO;
    }
    *len = (size_t)r;
    return 0;
}

int
spool_map(struct spool *sp, const char *id, const char **map, size_t *maplen)
{
    char path[4096];

    spool_path(sp, path, sizeof(path), "queue", id, "");
    return file_map(path, map, maplen);
}

void
spool_unmap(const char *map, size_t maplen)
{
    file_unmap(map, maplen);
}

struct envelope *
spool_load(struct spool *sp, const char *id)
{
    char path[4096];
    const char *map;
    size_t maplen, jlen = 0;
    char *journal = NULL;
    struct envelope *e;

    if (spool_map(sp, id, &map, &maplen) < 0)
        return NULL;
    e = envelope_parse(map, maplen);
    spool_unmap(map, maplen);
    if (e == NULL || strcmp(e->id, id) != 0) {
        envelope_free(e);
        return NULL;
    }
    spool_path(sp, path, sizeof(path), "queue", id, ".state");
    if (read_file(path, &journal, &jlen, 64u << 20) == 0) {
        envelope_apply_state(e, journal, jlen);
        free(journal);
    }
    return e;
}

static int
id_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

size_t
spool_scan(struct spool *sp, void (*cb)(void *arg, const char *id), void *arg)
{
    char path[4096], **ids = NULL;
    size_t n = 0;
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/queue", sp->dir);
    if ((d = opendir(path)) == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        if (!queue_id_valid(de->d_name))
            continue;
        ids = xrealloc(ids, (n + 1) * sizeof(*ids));
        ids[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n > 1)
        qsort(ids, n, sizeof(*ids), id_cmp); /* ids sort by arrival */
    for (size_t i = 0; i < n; i++) {
        cb(arg, ids[i]);
        free(ids[i]);
    }
    free(ids);
    return n;
}

void
spool_quarantine(struct spool *sp, const char *id)
{
    char from[4096], to[4096];

    spool_path(sp, from, sizeof(from), "queue", id, "");
    spool_path(sp, to, sizeof(to), "corrupt", id, "");
    rename(from, to);
}

const struct spool_stats *
spool_stats(const struct spool *sp)
{
    return &sp->stats;
}

const char *
spool_dir(const struct spool *sp)
{
    return sp->dir;
}
