/*
 * The durable spool. <dir>/tmp holds files being written, <dir>/queue the
 * committed messages (<id>: envelope + message) and their delivery
 * journals (<id>.state). A message is committed when its file and the
 * queue directory are fsync'ed: only then does the client get 250.
 *
 * Commits run on one committer thread that takes every commit waiting and
 * finishes them together: each file is written and fdatasync'ed, all are
 * renamed into queue/, then ONE fsync of the directory covers the batch
 * (group commit).
 */
#ifndef PETREL_SPOOL_H
#define PETREL_SPOOL_H

#include "base/str.h"
#include "event/workpool.h"
#include "queue/envelope.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct spool;

struct spool_stats {
    atomic_ulong commits;    /* messages committed */
    atomic_ulong batches;    /* group commits */
    atomic_ulong file_syncs; /* data syncs of message and journal files (sync_group_data) */
    atomic_ulong dir_syncs;  /* fsync of directories */
};

struct spool_commit {
    struct work work; /* caller sets work.done; runs on the loop thread */
    /* in: the pieces written one after another */
    const char *id;
    struct str parts[3]; /* envelope text, trace headers, message */
    /* out */
    int error;                 /* 0, or an errno value (ENOSPC, EIO, ...) */
    struct spool_commit *next; /* private */
};

/* Creates the spool directories (mode 0700) if needed. With uid >= 0 it
 * also gives the spool tree to uid:gid: the directories become theirs with
 * mode 0700, and every file in them theirs (message files are created
 * 0600). For the daemon's start-up as root, before it drops to `user`.
 * 0, or -1 with err filled. */
int spool_prepare(const char *dir, long uid, long gid, char *err, size_t errlen);
/* Creates the directories if needed and removes leftovers from tmp/.
 * Returns NULL with err filled on failure. */
struct spool *spool_open(const char *dir, struct workpool *pool, char *err, size_t errlen);
/* Finishes queued commits, then stops the committer. */
void spool_close(struct spool *sp);
/* Asynchronous: c->work.done runs on the loop thread when c is durable or
 * has failed (c->error). */
void spool_commit(struct spool *sp, struct spool_commit *c);

/* Blocking calls, for worker threads, start-up and the sendmail command. */
/* Stores one message durably at once (write, fdatasync, rename, fsync of
 * queue/): for bounces and local submission. 0 or an errno value. */
int spool_store(struct spool *sp, const char *id, const struct str parts[3]);
/* Moves a message and its journal between queue/ and hold/. 0 or -errno. */
int spool_hold(struct spool *sp, const char *id, bool hold);
/* Appends lines to <id>.state and fdatasyncs it. 0 or -errno. */
int spool_journal(struct spool *sp, const char *id, const char *lines, size_t n);
/* Removes a message (from queue/ or hold/) and its journal. 0, -ENOENT
 * if there was none, or -errno. */
int spool_remove(struct spool *sp, const char *id);
/* Reads the envelope and journal of id. NULL if missing or corrupt. */
struct envelope *spool_load(struct spool *sp, const char *id);
/* Maps the message file read-only: *map and *maplen cover the whole file, the
 * message starts at env->data_offset. 0 or -errno; spool_unmap() after. */
int spool_map(struct spool *sp, const char *id, const char **map, size_t *maplen);
void spool_unmap(const char *map, size_t maplen);
/* Calls cb for every queued message id, oldest first. Returns how many. */
size_t spool_scan(struct spool *sp, void (*cb)(void *arg, const char *id), void *arg);
/* Moves an unreadable queue file aside to <dir>/corrupt/. */
void spool_quarantine(struct spool *sp, const char *id);

const struct spool_stats *spool_stats(const struct spool *sp);
const char *spool_dir(const struct spool *sp);

#endif
