/*
 * Shared syncs (group commit): many threads that each need "my data is on
 * stable storage" are served by few system calls. Two kinds:
 *
 *  - data: the contents of one file (before it is renamed into place);
 *  - directories: the names in one directory (after the renames).
 *
 * A caller is served only by a sync that starts after the call began, so
 * everything it wrote before the call is covered; one sync serves every
 * caller waiting when it starts. Blocking: call from worker threads.
 */
#ifndef PETREL_SYNC_GROUP_H
#define PETREL_SYNC_GROUP_H

#include <stdatomic.h>

enum sync_method {
    SYNC_METHOD_FILESYSTEM, /* default: one syncfs(2) serves every waiting caller */
    SYNC_METHOD_FILES,      /* fdatasync(2) of each file: nothing else is flushed */
};

/* Process-wide; set at start and on reload. Callers in flight keep the
 * method they started with. */
void sync_group_set_method(enum sync_method m);
enum sync_method sync_group_method(void);

/*
 * Makes the data of the file behind fd durable (what was written to it
 * before the call). With SYNC_METHOD_FILESYSTEM: waits for a syncfs of
 * fd's file system that started after this call began, then checks this
 * file's own writeback errors; a caller with no other caller of its file
 * system in sight fdatasyncs its file instead (no one to share with, and
 * nothing else flushed). Returns 0 or -errno; a failed syncfs fails
 * every caller it served.
 */
int sync_group_data(int fd);

/* Makes the entries of the directory at path durable (renames into it that
 * returned before the call): one fsync serves every caller waiting when it
 * starts. Returns 0 or -errno. */
int sync_group_dir(const char *path);

/* Counters since the start of the process. */
struct sync_group_stats {
    atomic_ulong data_calls;    /* sync_group_data calls */
    atomic_ulong data_syscalls; /* fdatasync or syncfs calls they issued */
    atomic_ulong dir_calls;     /* sync_group_dir calls */
    atomic_ulong dir_syscalls;  /* directory fsyncs they issued */
};

const struct sync_group_stats *sync_group_stats(void);

/* Tests only: replaces syncfs(2) (a function returning 0 or -1 with errno
 * set); NULL restores it. */
void sync_group_set_syncfs(int (*fn)(int fd));
/* Tests only: the same for the fdatasync(2) of a caller alone in its
 * group (SYNC_METHOD_FILESYSTEM); `sync files` always calls the real one. */
void sync_group_set_fdatasync(int (*fn)(int fd));

#endif
