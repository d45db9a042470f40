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
struct client_limits;
struct sockaddr;

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
    struct client_limits *clients; /* per-address counts, rates, throttles */
};

/* Refuses connections from ip (its /64 for IPv6) for seconds, after
 * repeated AUTH failures. ip is numeric text, as session.c shows it. */
void daemon_throttle(struct daemon *d, const char *ip, unsigned seconds);
/* A session from peer ended: its address holds one session fewer
 * (limit connections-per-ip). Call exactly once per session. */
void daemon_client_closed(struct daemon *d, const struct sockaddr *peer);
/* Counts one MAIL command from peer against limit message-rate. False when
 * the address is over its rate: answer 421 4.7.0 and close. */
bool daemon_message_allowed(struct daemon *d, const struct sockaddr *peer);

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
