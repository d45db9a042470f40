/*
 * The control socket, daemon side; see control_server.h. A connection is
 * read until its first "\n" (at most CONTROL_LINE_MAX octets, within
 * CONTROL_TIMEOUT), answered with one line, and closed once the reply has
 * left. Access control is the socket's mode (0600) and the spool
 * directory's (0700): only the daemon's user and root get in. With `user
 * NAME` the daemon creates the socket after dropping to NAME, so both are
 * NAME's and the queue tool works as root or as NAME, nobody else; no
 * group access (0660) is offered, as a group would be a second way in.
 */
#include "control/control_server.h"

#include "base/log.h"
#include "base/xmalloc.h"
#include "control/control_client.h"
#include "control/control_proto.h"

#include <dirent.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONTROL_TIMEOUT 10 /* seconds for a request to arrive and its reply to leave */
#define CONTROL_BACKLOG 64

struct control_conn {
    struct control_server *cs;
    struct bufferevent *bev;
    long uid, pid; /* the peer, from SO_PEERCRED; -1 if unknown */
    bool replied;
    struct control_conn *prev, *next;
};

struct control_server {
    struct evconnlistener *listener;
    char *path;
    dev_t dev; /* the socket file we created, to remove only ours */
    ino_t ino;
    struct qmgr *q;
    struct spool *sp;
    struct control_conn *conns;
};

/* ---- requests ---- */

static bool
reply_rc(int rc, const char *id, const char *done, char *text, size_t n)
{
    if (rc == 0)
        snprintf(text, n, "%s %s", id, done);
    else if (rc == -ENOENT)
        snprintf(text, n, "%s: no such message", id);
    else if (rc == -EBUSY)
        snprintf(text, n, "%s: a delivery of this message is running, try again", id);
    else
        snprintf(text, n, "%s: %s", id, strerror(rc < 0 ? -rc : rc));
    return rc == 0;
}

struct id_list {
    char (*ids)[QUEUE_ID_LEN + 1];
    size_t n;
};

static void
id_list_add(void *arg, const char *id)
{
    struct id_list *l = arg;

    l->ids = xrealloc(l->ids, (l->n + 1) * sizeof(*l->ids));
    snprintf(l->ids[l->n++], QUEUE_ID_LEN + 1, "%s", id);
}

/* Ids of the held messages: spool_scan() only walks queue/. */
static void
held_ids(struct spool *sp, struct id_list *l)
{
    char path[4096];
    struct dirent *de;
    DIR *d;

    snprintf(path, sizeof(path), "%s/hold", spool_dir(sp));
    if ((d = opendir(path)) == NULL)
        return;
    while ((de = readdir(d)) != NULL)
        if (queue_id_valid(de->d_name))
            id_list_add(l, de->d_name);
    closedir(d);
}

static bool
delete_all(struct control_server *cs, char *text, size_t n)
{
    struct id_list l = {0};
    size_t deleted = 0, busy = 0, failed = 0;

    spool_scan(cs->sp, id_list_add, &l);
    held_ids(cs->sp, &l);
    for (size_t i = 0; i < l.n; i++) {
        int rc = qmgr_delete(cs->q, l.ids[i]);

        if (rc == 0)
            deleted++;
        else if (rc == -EBUSY)
            busy++;
        else if (rc != -ENOENT) /* gone meanwhile: delivered or deleted */
            failed++;
    }
    free(l.ids);
    if (busy || failed) {
        snprintf(text, n, "%zu deleted, %zu being delivered%s, %zu failed", deleted, busy,
                 busy ? " (try again)" : "", failed);
        return false;
    }
    snprintf(text, n, "%zu message%s deleted", deleted, deleted == 1 ? "" : "s");
    return true;
}

static bool
pickup(struct control_server *cs, const char *id, char *text, size_t n)
{
    char path[4096];
    struct stat st;

    snprintf(path, sizeof(path), "%s/queue/%s", spool_dir(cs->sp), id);
    if (stat(path, &st) < 0)
        return reply_rc(-errno, id, "", text, n);
    qmgr_submit(cs->q, id, NULL);
    snprintf(text, n, "%s queued for delivery", id);
    return true;
}

static bool
control_execute(struct control_server *cs, const struct control_request *r, char *text, size_t n)
{
    size_t count;

    switch (r->cmd) {
    case CONTROL_PING:
        snprintf(text, n, "petreld is running (pid %ld)", (long)getpid());
        return true;
    case CONTROL_FLUSH:
        count = qmgr_flush(cs->q, r->arg[0] ? r->arg : NULL);
        snprintf(text, n, "%zu message%s scheduled for delivery", count, count == 1 ? "" : "s");
        return true;
    case CONTROL_DELETE:
        return reply_rc(qmgr_delete(cs->q, r->arg), r->arg, "deleted", text, n);
    case CONTROL_DELETE_ALL:
        return delete_all(cs, text, n);
    case CONTROL_HOLD:
        return reply_rc(qmgr_hold(cs->q, r->arg), r->arg, "held", text, n);
    case CONTROL_RELEASE:
        return reply_rc(qmgr_release(cs->q, r->arg), r->arg, "released", text, n);
    case CONTROL_PICKUP:
        return pickup(cs, r->arg, text, n);
    }
    snprintf(text, n, "unknown command");
    return false;
}

/* ---- connections ---- */

static void
conn_free(struct control_conn *c)
{
    struct control_server *cs = c->cs;

    if (c->prev)
        c->prev->next = c->next;
    else
        cs->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c);
}

static void
conn_reply(struct control_conn *c, bool ok, const char *text)
{
    char line[CONTROL_LINE_MAX + 1];
    size_t len = control_reply_format(ok, text, line, sizeof(line));

    c->replied = true;
    bufferevent_disable(c->bev, EV_READ);
    if (bufferevent_write(c->bev, line, len) < 0)
        conn_free(c);
    /* control_write() closes once the reply has left */
}

static void
conn_request(struct control_conn *c, struct str line)
{
    struct control_request req;
    char text[CONTROL_LINE_MAX], reqline[CONTROL_LINE_MAX + 1];
    bool ok;

    if (control_request_parse(line, &req, text, sizeof(text)) < 0) {
        log_info("control: uid=%ld pid=%ld: refused: %s", c->uid, c->pid, text);
        conn_reply(c, false, text);
        return;
    }
    if (control_request_format(&req, reqline, sizeof(reqline)) < 0)
        snprintf(reqline, sizeof(reqline), "%s\n", control_cmd_name(req.cmd));
    reqline[strcspn(reqline, "\n")] = '\0';
    ok = control_execute(c->cs, &req, text, sizeof(text));
    log_info("control: uid=%ld pid=%ld: %s: %s%s", c->uid, c->pid, reqline,
             ok ? "" : "error: ", text);
    conn_reply(c, ok, text);
}

static void
control_read(struct bufferevent *bev, void *arg)
{
    struct control_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    char *line;

    if (c->replied) {
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
    if (line == NULL) {
        if (evbuffer_get_length(in) >= CONTROL_LINE_MAX) {
            log_info("control: uid=%ld pid=%ld: refused: request line too long", c->uid, c->pid);
            conn_reply(c, false, "request line too long");
        }
        return;
    }
    conn_request(c, str_make(line, n));
    free(line);
}

static void
control_write(struct bufferevent *bev, void *arg)
{
    struct control_conn *c = arg;

    (void)bev;
    if (c->replied)
        conn_free(c);
}

static void
control_event(struct bufferevent *bev, short what, void *arg)
{
    struct control_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t len = evbuffer_get_length(in);

    /* A last request line without "\n", then EOF: answer it anyway. */
    if ((what & BEV_EVENT_EOF) && !c->replied && len > 0 && len < CONTROL_LINE_MAX) {
        const char *p = (const char *)evbuffer_pullup(in, -1);

        conn_request(c, str_make(p, len));
        return;
    }
    conn_free(c);
}

static void
peer_creds(int fd, struct control_conn *c)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);

    c->uid = c->pid = -1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
        c->uid = (long)cred.uid;
        c->pid = (long)cred.pid;
    }
}

static void
control_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen,
               void *arg)
{
    struct control_server *cs = arg;
    struct control_conn *c = xcalloc(1, sizeof(*c));
    struct timeval tv = {CONTROL_TIMEOUT, 0};

    (void)sa;
    (void)salen;
    evutil_make_socket_nonblocking(fd);
    c->cs = cs;
    peer_creds(fd, c);
    c->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        close(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, control_read, control_write, control_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, CONTROL_LINE_MAX);
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    c->next = cs->conns;
    if (cs->conns)
        cs->conns->prev = c;
    cs->conns = c;
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* ---- the listening socket ---- */

/* A socket file whose daemon is gone is removed; a live one is an error. */
static int
stale_remove(const char *path, char *err, size_t errlen)
{
    struct stat st;
    int fd;

    if (lstat(path, &st) < 0) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "control: cannot use %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "control: %s exists and is not a socket", path);
        return -1;
    }
    if ((fd = control_client_connect(path)) >= 0) {
        close(fd);
        snprintf(err, errlen, "control: another petreld is listening on %s", path);
        return -1;
    }
    if (unlink(path) < 0 && errno != ENOENT) {
        snprintf(err, errlen, "control: cannot remove the stale %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int
control_listen(const char *path, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, dirfd, r;

    if (control_sockaddr(path, &sun, &len, &dirfd) < 0) {
        snprintf(err, errlen, "control: %s: %s", path, strerror(errno));
        return -1;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    /* On Linux the socket file takes the mode of the socket at bind(): no
     * window where others could connect. The chmod() covers the rest. */
    r = fd < 0 || fchmod(fd, 0600) < 0 || bind(fd, (struct sockaddr *)&sun, len) < 0 ||
                chmod(path, 0600) < 0 || listen(fd, CONTROL_BACKLOG) < 0
            ? -1
            : 0;
    if (r < 0)
        snprintf(err, errlen, "control: cannot listen on %s: %s", path, strerror(errno));
    if (dirfd >= 0)
        close(dirfd);
    if (r < 0 && fd >= 0)
        close(fd);
    return r < 0 ? -1 : fd;
}

struct control_server *
control_server_new(struct event_base *base, const char *path, struct qmgr *q, struct spool *sp,
                   char *err, size_t errlen)
{
    struct control_server *cs;
    struct stat st;
    int fd;

    if (stale_remove(path, err, errlen) < 0 || (fd = control_listen(path, err, errlen)) < 0)
        return NULL;
    cs = xcalloc(1, sizeof(*cs));
    cs->path = xstrdup(path);
    cs->q = q;
    cs->sp = sp;
    if (stat(path, &st) == 0) {
        cs->dev = st.st_dev;
        cs->ino = st.st_ino;
    }
    cs->listener = evconnlistener_new(base, control_accept, cs,
                                      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
    if (cs->listener == NULL) {
        snprintf(err, errlen, "control: cannot listen on %s: event loop error", path);
        close(fd);
        unlink(path);
        free(cs->path);
        free(cs);
        return NULL;
    }
    log_info("control socket %s", path);
    return cs;
}

void
control_server_free(struct control_server *cs)
{
    struct stat st;

    if (cs == NULL)
        return;
    while (cs->conns)
        conn_free(cs->conns);
    evconnlistener_free(cs->listener);
    if (stat(cs->path, &st) == 0 && st.st_dev == cs->dev && st.st_ino == cs->ino)
        unlink(cs->path);
    free(cs->path);
    free(cs);
}
