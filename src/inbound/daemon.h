/*
 * The running daemon: event loop, config in force, spool, queue manager,
 * listeners and sessions. One per process; passed explicitly, never global.
 */
#ifndef PETREL_DAEMON_H
#define PETREL_DAEMON_H

#include "config/config.h"
#include "delivery/mta.h"
#include "delivery/qmgr.h"
#include "event/workpool.h"
#include "queue/spool.h"

#include <stdbool.h>

struct event_base;
struct session;
struct listener;

struct daemon {
    struct event_base *base;
    char *config_path;
    struct config *cf; /* in force; sessions hold their own reference */
    struct workpool *pool;
    struct spool *spool;
    struct qmgr *qmgr;
    struct mta *mta;
    struct control_server *control;
    struct listener *listeners;
    struct session *sessions;
    unsigned nsessions;
    unsigned long next_session_id;
    bool stopping;
    struct event *sig_term, *sig_int, *sig_hup, *shutdown_timer;
    struct throttle *throttled; /* addresses refused after too many AUTH failures */
    size_t nthrottled;
};

/* Refuses connections from ip for seconds (after repeated AUTH failures). */
void daemon_throttle(struct daemon *d, const char *ip, unsigned seconds);

/* Loads the config, opens the spool and listeners. On a config error
 * prints "FILE:LINE: problem" and returns 2; other start-up errors 1. */
int daemon_start(struct daemon *d, const char *config_path);
/* Runs until SIGTERM/SIGINT and the drain that follows; returns exit code. */
int daemon_run(struct daemon *d);

/* A new reference to the config in force. */
struct config *daemon_config(void *daemon);
/* Session bookkeeping, used by session.c. */
void daemon_session_gone(struct daemon *d, struct session *s);

#endif
