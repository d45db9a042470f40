/*
 * The tool side of the control socket: connect, send one request, read the
 * one-line reply. Blocking, with a deadline; used by the petrel command and
 * by sendmail's "pickup".
 */
#ifndef PETREL_CONTROL_CLIENT_H
#define PETREL_CONTROL_CLIENT_H

#include "control/control_proto.h"

#include <stddef.h>

enum control_result {
    CONTROL_OK = 0,           /* "ok TEXT" */
    CONTROL_REFUSED = 1,      /* "error TEXT": the daemon refused the request */
    CONTROL_UNREACHABLE = -1, /* nobody listens at the path: petreld is not running */
    CONTROL_FAILED = -2,      /* I/O error, timeout or a malformed reply */
    CONTROL_DENIED = -3,      /* the socket exists but this user may not use it */
};

/*
 * Sends req to the daemon listening at path and waits at most timeout_ms
 * for its reply. text receives the reply's TEXT (CONTROL_OK, CONTROL_REFUSED)
 * or the system error (the others), NUL-terminated and cut to textlen.
 */
enum control_result control_client_request(const char *path, const struct control_request *req,
                                           int timeout_ms, char *text, size_t textlen);

/* Connects to the UNIX stream socket at path (blocking, close-on-exec).
 * Returns the descriptor, or -1 with errno set. */
int control_client_connect(const char *path);

#endif
