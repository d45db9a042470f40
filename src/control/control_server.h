/*
 * The daemon side of the control socket: a UNIX stream socket (mode 0600)
 * where the petrel tool asks for flush, delete, hold, release, and sendmail
 * announces a message it stored ("pickup"). One request line per
 * connection, one reply line, then close; every request is logged. Runs on
 * the event loop thread; needs the queue manager, never the network.
 */
#ifndef PETREL_CONTROL_SERVER_H
#define PETREL_CONTROL_SERVER_H

#include "delivery/qmgr.h"
#include "queue/spool.h"

#include <stddef.h>

struct event_base;
struct control_server;

/*
 * Listens at path (normally <spool>/control.sock). A socket file left by a
 * daemon that is gone is replaced; if another daemon answers there, or path
 * is not a socket, returns NULL with err filled ("control: ..."), as for any
 * other failure. q and sp are borrowed and must outlive the server.
 */
struct control_server *control_server_new(struct event_base *base, const char *path, struct qmgr *q,
                                          struct spool *sp, char *err, size_t errlen);
/* Stops listening, drops connections in progress and removes the socket
 * file if it is still ours. NULL does nothing. */
void control_server_free(struct control_server *cs);

#endif
