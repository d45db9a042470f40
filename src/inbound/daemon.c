/*
 * Daemon life cycle: start, listeners, SIGHUP reload (validate the new
 * config fully, then swap; sessions keep the config they started with),
 * SIGTERM drain (stop accepting, let transactions finish within
 * `timeout shutdown`, wait for in-flight commits), exit 0.
 */
#include "inbound/daemon.h"

#include "base/fdio.h"
#include "base/log.h"
#include "base/sync_group.h"
#include "base/xmalloc.h"
#include "control/control_server.h"
#include "inbound/client_limits.h"
#include "inbound/session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* Blocking work: Maildir deliveries, the direct path, AUTH checks. Enough
 * that many sessions' deliveries wait at one shared sync (sync_group.h):
 * measured, 32 share about a third more than 8 at 50 sessions. */
#define DELIVERY_THREADS 32
/* A burst of connections waits in the kernel rather than being dropped
 * (a dropped SYN is retried only after a second); Linux caps it at
 * net.core.somaxconn (4096 by default). */
#define LISTEN_BACKLOG 65535

struct listener {
    struct config_listen addr;
    struct evconnlistener *ev;
    struct daemon *d;
    struct listener *next;
};

struct config *
daemon_config(void *daemon)
{
    struct daemon *d = daemon;

    return config_ref(d->cf);
}

/* Addresses tracked at once: about 100 bytes each. Sessions beyond it are
 * still admitted (see client_limits.h); the default `limit connections`
 * is far below. */
#define CLIENT_LIMITS_CAP 16384

/* Seconds of a clock that never jumps: rate windows and throttles. */
static int64_t
now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

/* Numeric IPv4 or IPv6 text and a port as a socket address; -1 if ip is
 * neither. */
static int
sockaddr_parse(const char *ip, int port, struct sockaddr_storage *ss, socklen_t *len)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *len = sizeof(*v4);
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*v6);
        return 0;
    }
    return -1;
}

void
daemon_throttle(struct daemon *d, const char *ip, unsigned seconds)
{
    struct sockaddr_storage ss;
    socklen_t len;

    if (seconds == 0 || sockaddr_parse(ip, 0, &ss, &len) < 0)
        return;
    client_limits_throttle(d->clients, (struct sockaddr *)&ss, seconds, now_seconds());
    log_info("throttling [%s] for %u s after repeated authentication failures", ip, seconds);
}

void
daemon_client_closed(struct daemon *d, const struct sockaddr *peer)
{
    client_limits_disconnect(d->clients, peer, now_seconds());
}

bool
daemon_message_allowed(struct daemon *d, const struct sockaddr *peer)
{
    char ip[INET6_ADDRSTRLEN];

    if (client_limits_message(d->clients, peer, d->cf->message_rate, now_seconds()))
        return true;
    log_info("refusing MAIL from [%s]: over limit message-rate %u per minute",
             sockaddr_text(peer, ip, sizeof(ip)), d->cf->message_rate);
    return false;
}

/* A connection over a limit gets a 421 in place of the greeting and is
 * closed: RFC 5321 3.8 allows a close only after a 421, and 7.8 lets a
 * server defend itself. Best effort: the write never blocks the loop. */
static void
refuse(int fd, const struct config *cf, const char *why)
{
    char msg[400];
    int n = snprintf(msg, sizeof(msg), "421 4.7.0 %s %s, try again later\r\n", cf->hostname, why);

    if (send(fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
        /* the client will see the close */
    }
    close(fd);
}

/* The one place that decides whether a client may connect: the global
 * limit, then its address's throttle, session count and connection rate.
 * True if admitted (and counted: daemon_client_closed() when it ends). */
static bool
admit(struct daemon *d, int fd, const struct sockaddr *sa)
{
    const struct config *cf = d->cf;
    struct client_limits_policy pol = {cf->max_per_ip, cf->connection_rate};
    char ip[INET6_ADDRSTRLEN];

    if (d->nsessions >= cf->max_connections) {
        log_warn("connection limit %u reached: refusing a client", cf->max_connections);
        refuse(fd, cf, "too many connections");
        return false;
    }
    switch (client_limits_connect(d->clients, sa, &pol, now_seconds())) {
    case CLIENT_ADMIT:
        return true;
    case CLIENT_UNTRACKED:
        log_debug("[%s] not tracked: per-address table full", sockaddr_text(sa, ip, sizeof(ip)));
        return true;
    case CLIENT_THROTTLED:
        log_info("refusing [%s]: throttled after repeated authentication failures",
                 sockaddr_text(sa, ip, sizeof(ip)));
        refuse(fd, cf, "too many authentication failures from your address");
        return false;
    case CLIENT_TOO_MANY:
        log_info("refusing [%s]: limit connections-per-ip %u reached",
                 sockaddr_text(sa, ip, sizeof(ip)), cf->max_per_ip);
        break;
    case CLIENT_TOO_FAST:
        log_info("refusing [%s]: over limit connection-rate %u per minute",
                 sockaddr_text(sa, ip, sizeof(ip)), cf->connection_rate);
        break;
    }
    refuse(fd, cf, "too many connections from your address");
    return false;
}

static void
on_accept(struct evconnlistener *ev, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct listener *l = arg;
    struct daemon *d = l->d;

    (void)ev;
    if (d->stopping) {
        close(fd);
        return;
    }
    if (!admit(d, fd, sa))
        return;
    /* non-blocking already: the listener accepts with SOCK_NONBLOCK */
    session_new(d, fd, sa, (socklen_t)salen, &l->addr);
}

static struct listener *
listener_open(struct daemon *d, const struct config_listen *a)
{
    struct listener *l = xcalloc(1, sizeof(*l));
    struct sockaddr_storage ss;
    socklen_t len;

    l->addr = *a;
    l->d = d;
    if (sockaddr_parse(a->addr, a->port, &ss, &len) == 0)
        l->ev = evconnlistener_new_bind(d->base, on_accept, l,
                                        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                            LEV_OPT_CLOSE_ON_EXEC,
                                        LISTEN_BACKLOG, (struct sockaddr *)&ss, (int)len);
    if (l->ev == NULL) {
        log_warn("cannot listen on %s port %d: %s", a->addr, a->port, strerror(errno));
        free(l);
        return NULL;
    }
    log_info("listening on %s port %d", a->addr, a->port);
    return l;
}

static bool
listen_same(const struct config_listen *a, const struct config_listen *b)
{
    return a->port == b->port && strcmp(a->addr, b->addr) == 0;
}

/* Keeps listeners the config still names, opens new ones, closes the rest.
 * Returns how many configured addresses could not be opened. */
static int
listeners_sync(struct daemon *d, const struct config *cf)
{
    struct listener *keep = NULL, *l, *next;
    int failed = 0;

    for (l = d->listeners; l; l = next) {
        bool wanted = false;

        next = l->next;
        for (size_t i = 0; i < cf->nlistens && !wanted; i++)
            wanted = listen_same(&l->addr, &cf->listens[i]);
        if (!wanted) {
            evconnlistener_free(l->ev);
            free(l);
            continue;
        }
        l->next = keep;
        keep = l;
    }
    d->listeners = keep;
    for (size_t i = 0; i < cf->nlistens; i++) {
        bool have = false;

        for (l = d->listeners; l && !have; l = l->next)
            have = listen_same(&l->addr, &cf->listens[i]);
        if (have)
            continue;
        if ((l = listener_open(d, &cf->listens[i])) == NULL) {
            failed++;
            continue;
        }
        l->next = d->listeners;
        d->listeners = l;
    }
    return failed;
}

static void
listeners_close(struct daemon *d)
{
    struct listener *l, *next;

    for (l = d->listeners; l; l = next) {
        next = l->next;
        evconnlistener_free(l->ev);
        free(l);
    }
    d->listeners = NULL;
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct config *cf;
    char err[1024];

    (void)sig;
    (void)what;
    if (d->stopping) { /* listeners_sync() would open the closed listeners again */
        log_info("reload ignored: shutting down");
        return;
    }
    cf = config_load(d->config_path, err, sizeof(err));
    if (cf == NULL) {
        log_warn("reload failed, keeping the running configuration: %s", err);
        return;
    }
    if (strcmp(cf->spool, d->cf->spool) != 0)
        log_warn("reload: a new spool directory takes effect only after a restart");
    if ((cf->user == NULL) != (d->cf->user == NULL) ||
        (cf->user && strcmp(cf->user, d->cf->user) != 0))
        log_warn("reload: a new `user` takes effect only after a restart");
    listeners_sync(d, cf);
    sync_group_set_method(cf->sync); /* syncs already waiting finish as they began */
    config_unref(d->cf);
    d->cf = cf;
    log_info("configuration reloaded from %s", d->config_path);
}

void
daemon_session_gone(struct daemon *d, struct session *s)
{
    (void)s;
    if (d->stopping && d->nsessions == 0)
        event_base_loopexit(d->base, NULL);
}

static void
on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct session *s, *next;

    (void)fd;
    (void)what;
    log_info("shutdown: grace period over, closing %u sessions", d->nsessions);
    for (s = d->sessions; s; s = next) {
        next = session_next(s);
        session_abort(s);
    }
}

static void
on_term(evutil_socket_t sig, short what, void *arg)
{
    struct daemon *d = arg;
    struct session *s, *next;
    struct timeval tv = {d->cf->timeout_shutdown, 0};

    (void)what;
    if (d->stopping)
        return;
    log_info("signal %d: stopping; %u sessions to finish", (int)sig, d->nsessions);
    d->stopping = true;
    listeners_close(d);
    qmgr_stop(d->qmgr);
    for (s = d->sessions; s; s = next) {
        next = session_next(s);
        session_drain(s);
    }
    if (d->nsessions == 0) {
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->shutdown_timer = evtimer_new(d->base, on_shutdown_timeout, d);
    evtimer_add(d->shutdown_timer, &tv);
}

/* ---- privileges ---- */

/* Who the daemon runs as after start-up: `user NAME`, resolved. */
struct run_as {
    bool drop; /* started as root with `user`: switch */
    uid_t uid;
    gid_t gid;
};

/* Decides whether and to whom to drop; -1 when `user` cannot be honoured. */
static int
run_as_resolve(const struct config *cf, struct run_as *ra)
{
    struct passwd pw, *res = NULL;
    char buf[4096];

    memset(ra, 0, sizeof(*ra));
    if (cf->user == NULL) {
        if (geteuid() == 0)
            log_warn("running as root: add `user NAME` to %s so that petreld gives up root "
                     "once its ports are bound",
                     cf->path);
        return 0;
    }
    if (getpwnam_r(cf->user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL) {
        log_warn("user %s: no such user", cf->user);
        return -1;
    }
    if (geteuid() != 0) {
        if (getuid() == pw.pw_uid && geteuid() == pw.pw_uid)
            return 0; /* started as that user already */
        log_warn("user %s: petreld must be started as root or as %s to run as %s (it runs as "
                 "uid %ld)",
                 cf->user, cf->user, cf->user, (long)geteuid());
        return -1;
    }
    *ra = (struct run_as){.drop = true, .uid = pw.pw_uid, .gid = pw.pw_gid};
    return 0;
}

/*
 * Switches every id (real, effective, saved) and the supplementary groups
 * to the user's, for good: the kernel clears all capabilities when a
 * process with uid 0 sets all its uids to non-zero. Runs before any thread
 * exists, so no thread keeps root. Any failure is fatal: better not to run
 * than to run as root by accident.
 */
static void
privileges_drop(const struct config *cf, const struct run_as *ra)
{
    uid_t r, e, s;
    gid_t gr, ge, gs;

    if (initgroups(cf->user, ra->gid) < 0)
        fatal("user %s: initgroups", cf->user);
    if (setresgid(ra->gid, ra->gid, ra->gid) < 0)
        fatal("user %s: setresgid %ld", cf->user, (long)ra->gid);
    if (setresuid(ra->uid, ra->uid, ra->uid) < 0)
        fatal("user %s: setresuid %ld", cf->user, (long)ra->uid);
    if (getresuid(&r, &e, &s) < 0 || getresgid(&gr, &ge, &gs) < 0 || r != ra->uid || e != ra->uid ||
        s != ra->uid || gr != ra->gid || ge != ra->gid || gs != ra->gid)
        fatalx("user %s: the ids did not change", cf->user);
    if (setuid(0) == 0 || seteuid(0) == 0)
        fatalx("user %s: root could be regained after dropping it", cf->user);
    log_info("running as user %s (uid %ld, gid %ld)", cf->user, (long)ra->uid, (long)ra->gid);
}

/*
 * Start-up in two halves. As started (root, typically): bind the
 * listeners (ports below 1024) and create the spool, given to `user` if
 * set. Then drop privileges, and only then start threads (workers, spool
 * committer) and create the control socket, which is therefore the user's
 * (mode 0600, see control_server.c).
 */
static int
daemon_open(struct daemon *d)
{
    char err[1024], path[4096];
    struct run_as ra;

    d->base = event_base_new();
    if (d->base == NULL)
        fatalx("cannot create the event loop");
    d->clients = client_limits_new(CLIENT_LIMITS_CAP);
    if (run_as_resolve(d->cf, &ra) < 0 || listeners_sync(d, d->cf) > 0)
        return 1;
    if (spool_prepare(d->cf->spool, ra.drop ? (long)ra.uid : -1, ra.drop ? (long)ra.gid : -1, err,
                      sizeof(err)) < 0) {
        log_warn("%s", err);
        return 1;
    }
    if (ra.drop)
        privileges_drop(d->cf, &ra);
    d->pool = workpool_new(d->base, DELIVERY_THREADS);
    d->spool = spool_open(d->cf->spool, d->pool, err, sizeof(err));
    if (d->spool == NULL) {
        log_warn("%s", err);
        return 1;
    }
    d->mta = mta_new(d->base, daemon_config, d, err, sizeof(err));
    if (d->mta == NULL) {
        log_warn("outbound delivery: %s", err);
        return 1;
    }
    d->qmgr = qmgr_new(d->base, d->pool, d->spool, d->mta, daemon_config, d);
    snprintf(path, sizeof(path), "%s/control.sock", d->cf->spool);
    d->control = control_server_new(d->base, path, d->qmgr, d->spool, err, sizeof(err));
    if (d->control == NULL) {
        log_warn("%s", err);
        return 1;
    }
    d->sig_term = evsignal_new(d->base, SIGTERM, on_term, d);
    d->sig_int = evsignal_new(d->base, SIGINT, on_term, d);
    d->sig_hup = evsignal_new(d->base, SIGHUP, on_hup, d);
    event_add(d->sig_term, NULL);
    event_add(d->sig_int, NULL);
    event_add(d->sig_hup, NULL);
    return 0;
}

/* Frees whatever daemon_start() got to: on a failed start and at exit. */
static void
daemon_release(struct daemon *d)
{
    listeners_close(d);
    control_server_free(d->control);
    /* Outbound connections end first: their requests come back deferred
     * (not counted as attempts) and finish on the pool. Deliveries still
     * running use the spool: wait for them before closing it. */
    mta_free(d->mta);
    if (d->pool)
        workpool_free(d->pool);
    spool_close(d->spool);
    qmgr_free(d->qmgr);
    if (d->shutdown_timer)
        event_free(d->shutdown_timer);
    if (d->sig_term) {
        event_free(d->sig_term);
        event_free(d->sig_int);
        event_free(d->sig_hup);
    }
    if (d->cf)
        config_unref(d->cf);
    client_limits_free(d->clients);
    if (d->base)
        event_base_free(d->base);
    free(d->config_path);
    memset(d, 0, sizeof(*d));
}

/* Every session is a descriptor: allow as many as the hard limit does. */
static void
raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int
daemon_start(struct daemon *d, const char *config_path)
{
    char err[1024];

    memset(d, 0, sizeof(*d));
    d->config_path = xstrdup(config_path);
    d->cf = config_load(config_path, err, sizeof(err));
    if (d->cf == NULL) {
        fprintf(stderr, "%s\n", err);
        daemon_release(d);
        return 2;
    }
    sync_group_set_method(d->cf->sync);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    if (daemon_open(d) != 0) {
        daemon_release(d);
        return 1;
    }
    return 0;
}

static void
log_spool_stats(const struct daemon *d)
{
    const struct spool_stats *st = spool_stats(d->spool);
    const struct sync_group_stats *sg = sync_group_stats();
    unsigned long commits = atomic_load(&st->commits), dirs = atomic_load(&st->dir_syncs);

    log_info("spool: %lu messages committed in %lu batches with %lu directory syncs "
             "(%.2f messages per directory sync), %lu file syncs",
             commits, (unsigned long)atomic_load(&st->batches), dirs,
             dirs ? (double)commits / (double)dirs : 0.0,
             (unsigned long)atomic_load(&st->file_syncs));
    log_info(
        "sync: %lu data syncs (spool and Maildirs) served by %lu system calls, "
        "%lu Maildir directory syncs by %lu",
        (unsigned long)atomic_load(&sg->data_calls), (unsigned long)atomic_load(&sg->data_syscalls),
        (unsigned long)atomic_load(&sg->dir_calls), (unsigned long)atomic_load(&sg->dir_syscalls));
}

int
daemon_run(struct daemon *d)
{
    size_t n = qmgr_recover(d->qmgr);

    log_info("started: hostname %s, spool %s, %zu queued messages", d->cf->hostname, d->cf->spool,
             n);
    event_base_dispatch(d->base);
    /* Sessions are gone, so no commit is in flight. */
    qmgr_stop(d->qmgr);
    log_spool_stats(d);
    daemon_release(d);
    log_info("stopped");
    return 0;
}
