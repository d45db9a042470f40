/*
 * One SMTP connection: moves bytes between the socket (a libevent
 * bufferevent, so a TLS filter can be stacked on it later) and the pure
 * protocol machine in smtp/, answers its hooks with the router, and hands
 * complete messages to the spool. Nothing here blocks.
 */
#ifndef PETREL_SESSION_H
#define PETREL_SESSION_H

#include <sys/socket.h>

struct config_listen;
struct daemon;
struct session;

/* Takes ownership of fd. la names the listener that accepted fd (address and port); its options
 * (AUTH, submission) are taken from the daemon's current config. */
void session_new(struct daemon *d, int fd, const struct sockaddr *sa, socklen_t salen,
                 const struct config_listen *la);
/* Shutdown: sessions outside a transaction get 421 now; the others after
 * their transaction ends. */
void session_drain(struct session *s);
/* Shutdown grace period over: 421 and close, whatever the state. */
void session_abort(struct session *s);
struct session *session_next(struct session *s);

#endif
