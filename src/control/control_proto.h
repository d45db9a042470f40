/*
 * The control protocol between the petrel tool and petreld: one request
 * line per connection on a UNIX socket (<spool>/control.sock), one reply
 * line "ok TEXT" or "error TEXT", then the daemon closes. Pure parsing and
 * formatting, shared by control_server.c and control_client.c; see
 * docs/tools.md.
 */
#ifndef PETREL_CONTROL_PROTO_H
#define PETREL_CONTROL_PROTO_H

#include "base/str.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#define CONTROL_SOCKET_NAME "control.sock"
/* A request or reply line, "\n" included: longer requests are refused. */
#define CONTROL_LINE_MAX 512
#define CONTROL_ARG_MAX 255 /* a domain name (RFC 5321 4.5.3.1.2) or a queue id */

enum control_cmd {
    CONTROL_PING,       /* "ping" */
    CONTROL_FLUSH,      /* "flush [DOMAIN]", "flush @DOMAIN" (and subdomains) */
    CONTROL_DELETE,     /* "delete ID" */
    CONTROL_DELETE_ALL, /* "delete all" */
    CONTROL_HOLD,       /* "hold ID" */
    CONTROL_RELEASE,    /* "release ID" */
    CONTROL_PICKUP,     /* "pickup ID": a message the sendmail command stored */
};

struct control_request {
    enum control_cmd cmd;
    char arg[CONTROL_ARG_MAX + 1]; /* queue id (uppercase), domain (lowercase) or "" */
};

/*
 * Parses one request line, without its "\n" (a trailing "\r" is allowed).
 * Words are separated by one or more spaces; command names are
 * case-insensitive, ids are uppercased and domains lowercased. Returns 0,
 * or -1 with err set to a one-line reason ("unknown command", "usage: ...").
 */
int control_request_parse(struct str line, struct control_request *out, char *err, size_t errlen);
/* Writes r as a request line ending in "\n"; returns its length, or -1 if
 * n is too small or r->arg is not valid for r->cmd. */
int control_request_format(const struct control_request *r, char *out, size_t n);
const char *control_cmd_name(enum control_cmd cmd);

/* Writes "ok TEXT\n" or "error TEXT\n"; control characters in text become
 * '?', and text is cut to fit CONTROL_LINE_MAX and n. Returns the length. */
size_t control_reply_format(bool ok, const char *text, char *out, size_t n);
/* Parses a reply line without its "\n": 1 for "ok", 0 for "error", -1 if
 * malformed. *text is the rest (a slice of line). */
int control_reply_parse(struct str line, struct str *text);

/* <spool>/control.sock; -1 if it does not fit n. */
int control_socket_path(const char *spool, char *out, size_t n);

/*
 * Fills sun for path. A path longer than sun_path is reached through an
 * O_PATH descriptor of its directory ("/proc/self/fd/N/control.sock",
 * Linux): *dirfd is then that descriptor, to close after bind() or
 * connect(), else -1. Returns 0, or -1 with errno set.
 */
int control_sockaddr(const char *path, struct sockaddr_un *sun, socklen_t *len, int *dirfd);

#endif
