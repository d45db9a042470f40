/* SMTP session glue; see session.h. */
#include "inbound/session.h"

#include "auth/password.h"
#include "base/fdio.h"
#include "base/log.h"
#include "base/xmalloc.h"
#include "config/router.h"
#include "delivery/local.h"
#include "delivery/relay_direct.h"
#include "delivery/route_envelope.h"
#include "delivery/terminal.h"
#include "inbound/daemon.h"
#include "queue/envelope.h"
#include "smtp/smtp_sasl.h"
#include "smtp/smtp_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Input kept while a commit is in flight or a line is incomplete. */
#define SESSION_INPUT_MAX (256 * 1024)
/* The most a socket bufferevent reads at once (libevent 2.1's
 * EVBUFFER_MAX_READ), and what session_read_more() reads after it. */
#define SESSION_READ_FULL 4096
#define SESSION_READ_MORE (64 * 1024)
/* Replies the client has not read yet; past this, stop reading its input. */
#define SESSION_OUTPUT_MAX (64 * 1024)
/* Every failed AUTH waits this long (seconds) before its 535: slows guessing. */
#define SESSION_AUTH_DELAY 1

/* One AUTH check on a worker thread: it owns copies of the credentials. */
struct session_auth {
    struct work work;
    const struct table *users;
    char user[SASL_AUTHCID_MAX + 1];
    char password[SASL_PASSWORD_MAX + 1];
    bool ok;
};

struct session {
    struct daemon *d;
    struct config *cf;
    unsigned long id;
    struct bufferevent *bev;
    struct sockaddr_storage peer;
    char ip[INET6_ADDRSTRLEN];
    struct smtp_server_settings set;
    struct smtp_server *smtp;
    struct envelope *env; /* the transaction, NULL outside one */
    unsigned rcpt_orig;   /* RCPT commands accepted in it */
    char first_rcpt[SMTP_PATH_MAX + 1];
    struct spool_commit commit;
    struct buf meta, trace;
    const struct config_listen *listen; /* in cf; NULL if no longer configured */
    struct session_auth auth;           /* the AUTH check in flight */
    struct event *auth_delay;           /* holds back a failed AUTH's 535 */
    char user[SASL_AUTHCID_MAX + 1];    /* authenticated user, "" if none */
    bool authing;                       /* AUTH check or its delay pending */
    unsigned auth_failures;
    bool handshaking;       /* TLS handshake in progress (smtps or after STARTTLS) */
    char tls_info[160];     /* "TLSv1.3 with cipher X (256/256 bits)", "" before TLS */
    struct event *greeting; /* greeting-delay: the 220 waits for it */
    char atrn[512];         /* ATRN accepted: " a.example b.example " to deliver here */
    bool committing, gone, closing, draining;
    bool greeted; /* the 220 is sent or queued: replies may go straight to the socket */
    bool direct, direct_spooled; /* the commit is a direct path (local.h, relay_direct.h) */
    struct smtp_reply refused;   /* the next hop refused every recipient (relay_direct.h) */
    struct session *prev, *next;
};

static void session_process(struct session *s);

static void
session_free(struct session *s)
{
    struct daemon *d = s->d;

    log_info("s=%lu disconnect from [%s]", s->id, s->ip);
    if (s->prev)
        s->prev->next = s->next;
    else
        d->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    d->nsessions--;
    daemon_client_closed(d, (const struct sockaddr *)&s->peer);
    if (s->bev) /* NULL if TLS could not take over after STARTTLS */
        bufferevent_free(s->bev);
    if (s->auth_delay)
        event_free(s->auth_delay);
    if (s->greeting)
        event_free(s->greeting);
    explicit_bzero(s->auth.password, sizeof(s->auth.password));
    smtp_server_free(s->smtp);
    envelope_free(s->env);
    buf_free(&s->meta);
    buf_free(&s->trace);
    config_unref(s->cf);
    free(s);
    daemon_session_gone(d, NULL);
}

/* A commit or an AUTH check is in flight: it ends with a callback. */
static bool
session_busy(const struct session *s)
{
    return s->committing || s->authing;
}

/* The client is gone, or we are done with it. */
static void
session_end(struct session *s)
{
    if (session_busy(s)) {
        s->gone = true; /* freed when the commit or AUTH check completes */
        bufferevent_disable(s->bev, EV_READ | EV_WRITE);
        return;
    }
    session_free(s);
}

/* Through the bufferevent: it sends when the socket can take it. Writing
 * is enabled only here, with something to send; enabled while the output
 * is empty, it would add EPOLLOUT just to be told the socket is writable. */
static void
session_queue_output(struct session *s, const void *data, size_t len)
{
    bufferevent_write(s->bev, data, len);
    bufferevent_enable(s->bev, EV_WRITE);
}

static void
session_flush(struct session *s)
{
    struct buf *out = smtp_server_output(s->smtp);
    bool plain = bufferevent_openssl_get_ssl(s->bev) == NULL;
    size_t sent = 0;

    if (out->len == 0)
        return;
    /* The greeting of a plain session waits in the bufferevent for the
     * deferred callbacks of this loop pass (session_write sends it): a burst
     * of connections is accepted first, each without a system call for its
     * greeting; sent from the accept, one send per connection slowed the
     * listener enough to overflow the backlog (10,000 connections at once:
     * 2.2 s to greet them all instead of 0.4 s). */
    if (!s->greeted && plain) {
        bufferevent_write(s->bev, out->data, out->len);
        buf_reset(out);
        bufferevent_trigger(s->bev, EV_WRITE,
                            BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
        return;
    }
    /* Straight to the socket when nothing waits before it (the usual case):
     * through the bufferevent, each reply would arm and disarm EPOLLOUT,
     * two epoll_ctl calls and a loop pass. What the socket does not take,
     * or an error, goes to the bufferevent, which sends or reports it. */
    if (plain && evbuffer_get_length(bufferevent_get_output(s->bev)) == 0) {
        ssize_t n =
            send(bufferevent_getfd(s->bev), out->data, out->len, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n > 0)
            sent = (size_t)n;
    }
    if (sent < out->len)
        session_queue_output(s, out->data + sent, out->len - sent);
    buf_reset(out);
    s->greeted = true;
}

/* The deferred write callback of a plain session's greeting: whatever is
 * queued goes out in one write; the bufferevent sends what the socket does
 * not take, or meets the error and reports it. True while output remains. */
static bool
session_send_greeting(struct session *s)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);

    s->greeted = true;
    /* The bufferevent keeps the start of its output frozen for itself, and
     * thaws it around its own writes the same way. */
    evbuffer_unfreeze(out, 1);
    if (evbuffer_write(out, bufferevent_getfd(s->bev)) < 0 && errno != EAGAIN &&
        errno != EWOULDBLOCK && errno != EINTR)
        log_debug("s=%lu greeting to [%s]: %s", s->id, s->ip, strerror(errno));
    evbuffer_freeze(out, 1);
    if (evbuffer_get_length(out) == 0)
        return false;
    bufferevent_enable(s->bev, EV_WRITE);
    return true;
}

/* ---- hooks called by the protocol machine ---- */

static struct route_client
session_client(const struct session *s)
{
    return (struct route_client){.addr = (const struct sockaddr *)&s->peer,
                                 .authenticated = s->user[0] != '\0'};
}

/* Submission (RFC 6409 6.1): the sender must be a mailbox of the user. */
static int
check_sender(struct session *s, const struct smtp_path *from, const char *sender,
             struct smtp_reply *r)
{
    struct route_client local = {.local = true};
    struct route_result res = {0};
    struct smtp_reply err = {0};
    bool owned = false;

    if (s->listen == NULL || !s->listen->submission)
        return 0;
    if (!from->null && router_rcpt(s->cf, &local, from, &res, &err) == 0)
        for (size_t i = 0; i < res.ntargets && !owned; i++)
            owned =
                res.targets[i].kind == ROUTE_MAILDIR && strcmp(res.targets[i].user, s->user) == 0;
    route_result_free(&res);
    if (owned)
        return 0;
    log_info("s=%lu reject: MAIL from [%s]: sender <%s> not owned by %s", s->id, s->ip, sender,
             s->user);
    return smtp_reply_set(r, 553, "5.7.1", "sender address not owned by %s", s->user);
}

static int
hook_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
          const struct smtp_mail_params *p, struct smtp_reply *r)
{
    struct session *s = ctx;
    char sender[SMTP_PATH_MAX + 1];

    if (!daemon_message_allowed(s->d, (const struct sockaddr *)&s->peer))
        return smtp_reply_set(r, 421, "4.7.0",
                              "too many messages from your address, try again later");
    if (smtp_path_format(from, sender, sizeof(sender)) < 0)
        return smtp_reply_set(r, 501, "5.1.7", "sender address too long");
    if (check_sender(s, from, sender, r) < 0)
        return -1;
    envelope_free(s->env);
    s->env = envelope_new();
    free(s->env->sender);
    s->env->sender = xstrdup(sender);
    s->env->body = p->body;
    s->env->smtputf8 = p->smtputf8;
    s->env->ret = p->ret;
    free(s->env->envid);
    s->env->envid = xstrdup(p->envid);
    s->env->mode = mode;
    free(s->env->client);
    s->env->client = xstrdup(s->ip);
    free(s->env->helo);
    s->env->helo = xstrdup(smtp_server_helo(s->smtp));
    s->rcpt_orig = 0;
    return 0;
}

/* RFC 821 4.1.1: SEND reaches only users logged in right now. */
static int
check_send(struct session *s, const struct route_result *res, const char *orig,
           struct smtp_reply *r)
{
    char ttys[TERMINAL_MAX][40];

    if (s->env->mode != SMTP_MODE_SEND)
        return 0;
    for (size_t i = 0; i < res->ntargets; i++) {
        const struct route_target *t = &res->targets[i];

        if (t->kind != ROUTE_MAILDIR)
            return smtp_reply_set(r, 550, "5.7.1", "<%s>: SEND reaches local users only", orig);
        if (terminal_find(s->cf->utmp_file, t->user, ttys, TERMINAL_MAX) == 0)
            return smtp_reply_set(r, 450, "4.2.1", "<%s>: user is not logged in", orig);
    }
    return 0;
}

static int
hook_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
          struct smtp_reply *r)
{
    struct session *s = ctx;
    struct route_client cl = session_client(s);
    struct route_result res = {0};
    char orig[SMTP_PATH_MAX + 1];

    if (smtp_path_format(to, orig, sizeof(orig)) < 0)
        return smtp_reply_set(r, 501, "5.1.3", "recipient address too long");
    if (router_rcpt(s->cf, &cl, to, &res, r) < 0 || check_send(s, &res, orig, r) < 0) {
        route_result_free(&res);
        log_info("s=%lu reject: RCPT from [%s]: %d %s %s; from=<%s> to=<%s>", s->id, s->ip, r->code,
                 r->status, r->text, s->env->sender, orig);
        return -1;
    }
    route_envelope_add(s->env, &res, orig, p->notify, p->orcpt);
    route_result_free(&res);
    if (s->rcpt_orig++ == 0)
        snprintf(s->first_rcpt, sizeof(s->first_rcpt), "%s", orig);
    return 0;
}

static void
hook_reset(void *ctx)
{
    struct session *s = ctx;

    envelope_free(s->env);
    s->env = NULL;
}

static int
hook_vrfy(void *ctx, struct str arg, char *out, size_t n, struct smtp_reply *r)
{
    struct session *s = ctx;

    return router_vrfy(s->cf, arg, out, n, r);
}

static int
hook_expn(void *ctx, struct str arg, struct buf *lines, struct smtp_reply *r)
{
    struct session *s = ctx;

    return router_expn_lines(s->cf, arg, lines, r);
}

/* ETRN is for clients that may relay to the node: the same rules decide. */
static int
hook_etrn(void *ctx, struct str node, struct smtp_reply *r)
{
    struct session *s = ctx;
    struct route_client cl = session_client(s);
    struct route_result res = {0};
    struct smtp_path path = {0};
    bool subdomains = node.ptr[0] == '@';
    char domain[SMTP_DOMAIN_MAX + 2];
    size_t n;

    if (subdomains)
        node = str_make(node.ptr + 1, node.len - 1);
    if (!str_copy(node, domain + 1, sizeof(domain) - 1) || node.len == 0)
        return smtp_reply_set(r, 501, "5.5.4", "syntax: ETRN domain");
    snprintf(path.local, sizeof(path.local), "postmaster");
    snprintf(path.domain, sizeof(path.domain), "%s", domain + 1);
    if (router_rcpt(s->cf, &cl, &path, &res, r) < 0 || res.ntargets == 0 ||
        res.targets[0].kind != ROUTE_RELAY) {
        route_result_free(&res);
        return smtp_reply_set(r, 459, "4.7.1", "%s: not allowed to start the queue for it",
                              domain + 1);
    }
    route_result_free(&res);
    domain[0] = '@';
    n = qmgr_flush(s->d->qmgr, subdomains ? domain : domain + 1);
    log_info("s=%lu ETRN %s from [%s]: %zu messages", s->id, domain + !subdomains, s->ip, n);
    if (n == 0)
        smtp_reply_set(r, 251, "2.0.0", "OK, no messages waiting for node %s", domain + 1);
    else
        smtp_reply_set(r, 253, "2.0.0", "OK, %zu pending messages for node %s started", n,
                       domain + 1);
    return 0;
}

/* ---- AUTH ---- */

static void session_auth_finish(struct session *s, bool ok);

/* On a worker thread: the slow, blocking crypt check. */
static void
session_auth_run(struct work *w)
{
    struct session_auth *a = (struct session_auth *)w;

    a->ok = password_verify_user(a->users, a->user, a->password);
    explicit_bzero(a->password, sizeof(a->password));
}

static void
session_auth_delayed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_auth_finish(arg, false);
}

/* Back on the loop thread. Failures wait SESSION_AUTH_DELAY first, whatever
 * the reason (unknown user or wrong password). */
static void
session_auth_done(struct work *w)
{
    struct session *s = (struct session *)((char *)w - offsetof(struct session, auth));
    struct timeval delay = {SESSION_AUTH_DELAY, 0};

    if (s->auth.ok) {
        session_auth_finish(s, true);
        return;
    }
    if (s->auth_delay == NULL)
        s->auth_delay = evtimer_new(s->d->base, session_auth_delayed, s);
    evtimer_add(s->auth_delay, &delay);
}

static void
session_auth_finish(struct session *s, bool ok)
{
    char shown[SASL_AUTHCID_MAX + 1];

    s->authing = false;
    if (ok)
        snprintf(s->user, sizeof(s->user), "%s", s->auth.user);
    /* the name is the client's: no control characters into the log */
    snprintf(shown, sizeof(shown), "%s", s->auth.user);
    for (char *c = shown; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    log_info("s=%lu auth: user=%s %s", s->id, shown, ok ? "ok" : "failed");
    smtp_server_auth_done(s->smtp, ok);
    if (!ok && ++s->auth_failures >= s->cf->max_auth_failures) {
        /* Guessing passwords: end the session and refuse the address a while. */
        smtp_server_close(s->smtp, "4.7.0", "too many authentication failures");
        daemon_throttle(s->d, s->ip, s->cf->auth_throttle);
    }
    if (s->gone) {
        session_free(s);
        return;
    }
    session_process(s);
}

static void
hook_auth(void *ctx, const char *authzid, const char *authcid, const char *password)
{
    struct session *s = ctx;

    (void)authzid; /* sasl.h: "" or equal to authcid */
    s->auth = (struct session_auth){
        .work = {.run = session_auth_run, .done = session_auth_done},
        .users = s->listen ? s->listen->auth_users : NULL,
    };
    snprintf(s->auth.user, sizeof(s->auth.user), "%s", authcid);
    snprintf(s->auth.password, sizeof(s->auth.password), "%s", password);
    s->authing = true;
    workpool_submit(s->d->pool, &s->auth.work);
}

/* ---- ATRN (RFC 2645) ---- */

/* Appends " d " to list unless it is there; false when it does not fit. */
static bool
domain_list_add(char *list, size_t n, const char *d, size_t dlen)
{
    char word[300];
    size_t len = strlen(list);

    if (dlen == 0 || dlen > 255)
        return true;
    snprintf(word, sizeof(word), " %.*s ", (int)dlen, d);
    for (char *c = word; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    if (strstr(list, word))
        return true;
    if (len + strlen(word) >= n)
        return false;
    snprintf(list + (len ? len - 1 : 0), n - (len ? len - 1 : 0), "%s", word);
    return true;
}

/* The next domain of a " a b " list into out; false at its end. */
static bool
domain_list_next(const char **p, char *out, size_t n)
{
    size_t k;

    *p += strspn(*p, " ");
    k = strcspn(*p, " ");
    if (k == 0)
        return false;
    snprintf(out, n, "%.*s", (int)k, *p);
    *p += k;
    return true;
}

/* The domains user may pull: every `atrn` action's table maps a user to
 * its domains ("alice: a.example, b.example"). */
static void
atrn_owned(const struct config *cf, const char *user, char *out, size_t n)
{
    out[0] = '\0';
    for (size_t i = 0; i < cf->nactions; i++) {
        const char *v = cf->actions[i].kind == ACTION_ATRN && cf->actions[i].users
                            ? table_get(cf->actions[i].users, user)
                            : NULL;

        while (v && *v) {
            size_t k = strcspn(v, ", \t");

            domain_list_add(out, n, v, k);
            v += k;
            v += strspn(v, ", \t");
        }
    }
}

static bool
config_has_atrn(const struct config *cf)
{
    for (size_t i = 0; i < cf->nactions; i++)
        if (cf->actions[i].kind == ACTION_ATRN)
            return true;
    return false;
}

static int
hook_atrn(void *ctx, struct str arg, struct smtp_reply *r)
{
    struct session *s = ctx;
    char owned[512], want[512] = "", word[300];
    size_t waiting = 0;

    atrn_owned(s->cf, s->user, owned, sizeof(owned));
    if (arg.len == 0)
        snprintf(want, sizeof(want), "%s", owned);
    while (arg.len > 0) {
        struct str d = str_cut(&arg, ',');

        if (!str_copy(d, word + 1, sizeof(word) - 2) || d.len == 0)
            continue;
        word[0] = ' ';
        snprintf(word + 1 + d.len, sizeof(word) - 1 - d.len, " ");
        for (char *c = word; *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
        if (strstr(owned, word) == NULL) {
            log_info("s=%lu ATRN from [%s]: user=%s may not pull%s", s->id, s->ip, s->user, word);
            return smtp_reply_set(r, 450, "4.7.1", "ATRN request refused: %.*s is not yours",
                                  (int)d.len, d.ptr);
        }
        if (!domain_list_add(want, sizeof(want), d.ptr, d.len))
            return smtp_reply_set(r, 501, "5.5.4", "too many domains");
    }
    if (want[0] == '\0')
        return smtp_reply_set(r, 450, "4.7.1", "ATRN request refused: no domains for %s", s->user);
    for (const char *p = want; domain_list_next(&p, word, sizeof(word));)
        waiting += qmgr_waiting(s->d->qmgr, word);
    if (waiting == 0)
        return smtp_reply_set(r, 453, "4.3.0", "You have no mail");
    snprintf(s->atrn, sizeof(s->atrn), "%s", want);
    log_info("s=%lu ATRN from [%s]: user=%s,%s: %zu messages", s->id, s->ip, s->user, want,
             waiting);
    smtp_reply_set(r, 250, "2.0.0", "OK now reversing the connection");
    return 0;
}

static const struct smtp_server_hooks session_hooks = {
    .auth = hook_auth,
    .etrn = hook_etrn,
    .mail = hook_mail,
    .rcpt = hook_rcpt,
    .reset = hook_reset,
    .vrfy = hook_vrfy,
    .expn = hook_expn,
};

/* ---- the commit ---- */

/* RFC 3848 protocol names for the Received "with" clause. */
static const char *
trace_protocol(const struct session *s)
{
    /* RFC 3848: "S" inside TLS, "A" for an authenticated client */
    static const char *const names[2][2][2] = {
        {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
        {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
    };

    if (!smtp_server_esmtp(s->smtp))
        return "SMTP";
    return names[s->env->smtputf8][smtp_server_tls(s->smtp)][s->user[0] != '\0'];
}

/* RFC 5321 4.4 trace header, prepended to the message. */
static int
session_trace(struct session *s)
{
    char date[64];
    struct tm tm;
    time_t now = time(NULL);

    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
    buf_reset(&s->trace);
    if (buf_cat(&s->trace, "Received: from ", smtp_server_helo(s->smtp), " ([", s->ip, "])\r\n",
                NULL) < 0)
        return -1;
    if (s->tls_info[0] && buf_cat(&s->trace, "\t(using ", s->tls_info, ")\r\n", NULL) < 0)
        return -1;
    if (buf_cat(&s->trace, "\tby ", s->cf->hostname, " (petrel) with ", trace_protocol(s), " id ",
                s->env->id, NULL) < 0)
        return -1;
    if (s->rcpt_orig == 1 && buf_cat(&s->trace, "\r\n\tfor <", s->first_rcpt, ">", NULL) < 0)
        return -1;
    return buf_cat(&s->trace, "; ", date, "\r\n", NULL);
}

static void
session_commit_done(struct work *w)
{
    struct session *s = (struct session *)((char *)w - offsetof(struct session, commit));
    const struct buf *msg = smtp_server_message(s->smtp);
    struct smtp_reply r = {0};
    char id[QUEUE_ID_LEN + 1];

    s->committing = false;
    snprintf(id, sizeof(id), "%s", s->env->id);
    if (s->refused.code) {
        log_info("%s: s=%lu client=[%s], from=<%s>, size=%zu, nrcpt=%zu: refused by the next hop",
                 id, s->id, s->ip, s->env->sender, msg->len + s->trace.len, s->env->nrcpts);
        r = s->refused;
    } else if (s->commit.error == 0) {
        log_info("%s: s=%lu client=[%s], from=<%s>, size=%zu, nrcpt=%zu%s", id, s->id, s->ip,
                 s->env->sender, msg->len + s->trace.len, s->env->nrcpts,
                 s->direct && !s->direct_spooled ? " (delivered directly)" : "");
        if (!s->direct || s->direct_spooled)
            qmgr_submit(s->d->qmgr, id, s->env);
    } else {
        log_warn("%s: s=%lu spool commit failed: %s", id, s->id, strerror(s->commit.error));
        if (s->commit.error == ENOSPC || s->commit.error == EDQUOT)
            smtp_reply_set(&r, 452, "4.3.1", "insufficient system storage");
        else
            smtp_reply_set(&r, 451, "4.3.0", "local error: message not stored");
    }
    smtp_server_commit_done(s->smtp, r.code ? &r : NULL, id);
    if (s->gone) {
        session_free(s);
        return;
    }
    session_process(s);
}

/* On a worker thread: the direct path (local.h), instead of the spool. */
static void
session_direct_run(struct work *w)
{
    struct session *s = (struct session *)((char *)w - offsetof(struct session, commit));

    s->commit.error = local_direct(s->d->spool, s->cf, s->env, s->commit.parts, &s->direct_spooled);
}

/* The relay handoff ended (relay_direct.h). */
static void
session_handoff_done(void *arg, int error, bool spooled, const struct smtp_reply *refused)
{
    struct session *s = arg;

    s->commit.error = error;
    s->direct_spooled = spooled;
    if (refused)
        s->refused = *refused;
    session_commit_done(&s->commit.work);
}

static void
session_commit(struct session *s)
{
    const struct buf *msg = smtp_server_message(s->smtp);
    struct smtp_reply r;

    queue_id_new(s->env->id);
    s->env->arrival = time(NULL);
    buf_reset(&s->meta);
    if (session_trace(s) < 0 || envelope_write(s->env, &s->meta) < 0) {
        smtp_reply_set(&r, 451, "4.3.0", "local error: envelope too large");
        smtp_server_commit_done(s->smtp, &r, "");
        return;
    }
    s->commit = (struct spool_commit){
        .work.done = session_commit_done,
        .id = s->env->id,
        .parts = {buf_str(&s->meta), buf_str(&s->trace), buf_str(msg)},
    };
    s->committing = true;
    s->direct = s->direct_spooled = false;
    s->refused = (struct smtp_reply){0};
    if (local_direct_eligible(s->cf, s->env)) {
        s->direct = true;
        s->commit.work.run = session_direct_run;
        workpool_submit(s->d->pool, &s->commit.work);
        return;
    }
    if (s->d->mta && relay_direct_eligible(s->cf, s->env)) {
        struct relay_direct_env env = {s->d->base, s->d->mta, s->d->pool, s->d->spool};

        s->direct = true;
        relay_direct_start(&env, s->cf, s->env, s->commit.parts, session_handoff_done, s);
        return;
    }
    spool_commit(s->d->spool, &s->commit);
}

/* ---- I/O ---- */

static void
session_timeouts(struct session *s)
{
    enum smtp_state st = smtp_server_state(s->smtp);
    struct timeval rd = {st == SMTP_STATE_DATA || st == SMTP_STATE_BDAT ? s->cf->timeout_data
                                                                        : s->cf->timeout_command,
                         0};
    struct timeval wr = {s->cf->timeout_command, 0};

    bufferevent_set_timeouts(s->bev, &rd, &wr);
}

static void
session_close_after_flush(struct session *s)
{
    s->closing = true;
    bufferevent_disable(s->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
        session_end(s);
}

/* ---- early talkers and TLS ---- */

static void session_read(struct bufferevent *bev, void *arg);
static void session_write(struct bufferevent *bev, void *arg);
static void session_event(struct bufferevent *bev, short what, void *arg);

static void
session_use_bev(struct session *s, struct bufferevent *bev)
{
    s->bev = bev;
    bufferevent_setcb(bev, session_read, session_write, session_event, s);
    bufferevent_setwatermark(bev, EV_READ, 0, SESSION_INPUT_MAX);
    /* Writing is enabled when there is something to send (session_queue_output):
     * a new bufferevent has it enabled, and would arm EPOLLOUT for the queued
     * greeting. TLS has its handshake to write from the start. */
    if (bufferevent_openssl_get_ssl(bev)) {
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        return;
    }
    bufferevent_disable(bev, EV_WRITE);
    bufferevent_enable(bev, EV_READ);
}

/* RFC 5321 3.1: the client waits for the greeting. One that talks first
 * is a bot blasting commands blind: refuse it, say why, close. */
static void
session_early_talker(struct session *s)
{
    char line[300];
    int n =
        snprintf(line, sizeof(line),
                 "554 5.5.1 %s protocol error: data sent before the greeting\r\n", s->cf->hostname);

    log_info("s=%lu reject: early talker [%s]: sent data before the greeting", s->id, s->ip);
    if (s->greeting) {
        event_free(s->greeting);
        s->greeting = NULL;
    }
    buf_reset(smtp_server_output(s->smtp)); /* the 220 never leaves */
    evbuffer_drain(bufferevent_get_input(s->bev),
                   evbuffer_get_length(bufferevent_get_input(s->bev)));
    session_queue_output(s, line, (size_t)n);
    session_close_after_flush(s);
}

static void
session_greet(evutil_socket_t fd, short what, void *arg)
{
    struct session *s = arg;
    char c;

    (void)fd;
    (void)what;
    event_free(s->greeting);
    s->greeting = NULL;
    if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0 ||
        recv(bufferevent_getfd(s->bev), &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        session_early_talker(s);
        return;
    }
    session_process(s);
}

/* After the handshake: what the Received field and the log say. */
static void
session_tls_ready(struct session *s)
{
    SSL *ssl = bufferevent_openssl_get_ssl(s->bev);
    int alg = 0, bits = SSL_get_cipher_bits(ssl, &alg);

    s->handshaking = false;
    snprintf(s->tls_info, sizeof(s->tls_info), "%s with cipher %s (%d/%d bits)",
             SSL_get_version(ssl), SSL_get_cipher_name(ssl), bits, alg);
    log_info("s=%lu TLS from [%s]: %s", s->id, s->ip, s->tls_info);
    smtp_server_starttls_done(s->smtp); /* after STARTTLS: start over */
    session_process(s);
}

/* A TLS bufferevent on fd, handshake in server role; NULL on failure. */
static struct bufferevent *
session_tls_bev(struct session *s, int fd)
{
    struct bufferevent *bev;
    SSL *ssl = SSL_new(s->listen->pki->ctx);

    if (ssl == NULL)
        return NULL;
    bev = bufferevent_openssl_socket_new(s->d->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        SSL_free(ssl);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    s->handshaking = true;
    session_use_bev(s, bev);
    return bev;
}

/* RFC 3207 4: once the 220 has left in the clear, TLS takes over the socket. */
static int
session_starttls(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t early = evbuffer_get_length(in);
    int fd = bufferevent_getfd(s->bev);

    /* Anything sent after STARTTLS came before TLS: a command injected
     * there (CVE-2011-0411) must not run inside the encrypted session.
     * Bytes still unread in the socket reach the handshake and fail it. */
    if (early)
        log_info("s=%lu STARTTLS from [%s]: %zu octets sent after STARTTLS discarded", s->id, s->ip,
                 early);
    bufferevent_setfd(s->bev, -1); /* keep fd open through the free */
    bufferevent_free(s->bev);
    s->bev = NULL;
    if (session_tls_bev(s, fd) == NULL) {
        close(fd);
        return -1;
    }
    return 0;
}

/* RFC 2645 4: the connection becomes the outbound agent's, which delivers
 * the user's domains over it; the session ends here. */
static void
session_turn(struct session *s)
{
    struct bufferevent *bev = s->bev;
    char peer[256], domain[300];

    snprintf(peer, sizeof(peer), "[%s] (ATRN %s)", s->ip, s->user);
    s->bev = NULL;
    bufferevent_set_timeouts(bev, NULL, NULL);
    mta_atrn(s->d->mta, bev, peer, s->atrn);
    for (const char *p = s->atrn; domain_list_next(&p, domain, sizeof(domain));)
        qmgr_flush(s->d->qmgr, domain);
    session_free(s);
}

static void
session_process(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len = evbuffer_get_length(in), used = 0;
    enum smtp_state st;

    if (s->greeting) { /* greeting-delay: listen, say nothing */
        if (len)
            session_early_talker(s);
        return;
    }
    if (len && !session_busy(s)) {
        const char *data = (const char *)evbuffer_pullup(in, -1);

        used = smtp_server_feed(s->smtp, data, len);
        evbuffer_drain(in, used);
    }
    st = smtp_server_state(s->smtp);
    if (s->draining && (st == SMTP_STATE_INIT || st == SMTP_STATE_READY))
        smtp_server_close(s->smtp, "4.3.2", "shutting down");
    session_flush(s);
    st = smtp_server_state(s->smtp);
    if (st == SMTP_STATE_CLOSED) {
        session_close_after_flush(s);
        return;
    }
    if (st == SMTP_STATE_TURNED) {
        /* the 250 leaves first; session_write() comes back here */
        bufferevent_disable(s->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
            session_turn(s);
        return;
    }
    if (st == SMTP_STATE_STARTTLS && !s->handshaking) {
        /* the 220 leaves first; session_write() comes back here */
        bufferevent_disable(s->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
            return;
        if (session_starttls(s) < 0) {
            log_warn("s=%lu STARTTLS from [%s]: cannot set up TLS", s->id, s->ip);
            session_end(s);
            return;
        }
    }
    if (st == SMTP_STATE_COMMIT && !s->committing)
        session_commit(s);
    /* A client that does not read its replies is not read either. */
    if (evbuffer_get_length(bufferevent_get_output(s->bev)) > SESSION_OUTPUT_MAX)
        bufferevent_disable(s->bev, EV_READ);
    session_timeouts(s);
}

/* A socket bufferevent reads at most 4 KiB at a time (libevent 2.1), each
 * read after an ioctl(FIONREAD) and a loop pass: 14 reads for a 32 KiB
 * message, 256 for 1 MiB. When it has just read its most, more is likely
 * waiting (a message body streaming in): take it in one read, up to the
 * input limit. Whatever this read meets (EOF, an error) the bufferevent's
 * next read meets again and reports. */
static void
session_read_more(struct session *s)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t have = evbuffer_get_length(in), room;
    struct evbuffer_iovec v;
    ssize_t n;

    if (have < SESSION_READ_FULL || have >= SESSION_INPUT_MAX || session_busy(s) ||
        bufferevent_openssl_get_ssl(s->bev) != NULL)
        return;
    room = SESSION_INPUT_MAX - have;
    if (room > SESSION_READ_MORE)
        room = SESSION_READ_MORE;
    /* the bufferevent keeps the end of its input frozen for itself */
    evbuffer_unfreeze(in, 0);
    if (evbuffer_reserve_space(in, (ev_ssize_t)room, &v, 1) == 1) {
        n = recv(bufferevent_getfd(s->bev), v.iov_base, v.iov_len < room ? v.iov_len : room,
                 MSG_DONTWAIT);
        if (n > 0) { /* space reserved and not committed is not kept */
            v.iov_len = (size_t)n;
            evbuffer_commit_space(in, &v, 1);
        }
    }
    evbuffer_freeze(in, 0);
}

static void
session_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    session_read_more(arg);
    session_process(arg);
}

static void
session_write(struct bufferevent *bev, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (!s->greeted && session_send_greeting(s))
        return; /* called again once the rest is out */
    if (s->closing) {
        session_end(s);
        return;
    }
    if ((smtp_server_state(s->smtp) == SMTP_STATE_STARTTLS && !s->handshaking) ||
        smtp_server_state(s->smtp) == SMTP_STATE_TURNED) {
        session_process(s); /* the 220 or 250 is out: TLS or the outbound agent takes over */
        return;
    }
    if (!session_busy(s))
        bufferevent_enable(s->bev, EV_READ);
}

static void
session_event(struct bufferevent *bev, short what, void *arg)
{
    struct session *s = arg;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) { /* the TLS handshake is complete */
        session_tls_ready(s);
        return;
    }
    if (s->handshaking) {
        unsigned long e = bufferevent_get_openssl_error(s->bev);
        char msg[256] = "connection closed or timed out";

        if (e)
            ERR_error_string_n(e, msg, sizeof(msg));
        log_info("s=%lu TLS handshake with [%s] failed: %s", s->id, s->ip, msg);
        session_end(s);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && !s->closing &&
        !session_busy(s)) {
        log_info("s=%lu timeout from [%s]", s->id, s->ip);
        smtp_server_close(s->smtp, "4.4.2", "timeout, closing connection");
        session_flush(s);
        session_close_after_flush(s);
        /* give the 421 one write-timeout to leave, then drop */
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_READING) && session_busy(s)) {
        bufferevent_enable(s->bev, EV_READ); /* re-arm; the commit ends it */
        return;
    }
    /* A write timeout: the peer has read nothing for a whole timeout and
     * libevent has disabled writing, so no 421 could ever leave: drop it. */
    if (what & BEV_EVENT_TIMEOUT)
        log_info("s=%lu timeout from [%s] (not reading replies)", s->id, s->ip);
    session_end(s);
}

static void
session_settings(struct session *s)
{
    const struct config *cf = s->cf;

    s->set = (struct smtp_server_settings){
        .hostname = cf->hostname,
        .peer_ip = s->ip,
        .message_size = cf->message_size,
        .max_recipients = cf->max_recipients,
        .max_errors = cf->max_errors,
        .max_received = cf->max_received,
        .line_length = cf->line_length,
        .vrfy = cf->vrfy,
        .expn = cf->expn,
        .terminal_delivery = cf->terminal_delivery,
        .reject_bare_newline = cf->bare_newline == BARE_NEWLINE_REJECT,
        .auth_offered = s->listen && s->listen->auth_users,
        .auth_required = s->listen && s->listen->submission,
        .auth_insecure = s->listen && s->listen->auth_insecure,
        .starttls = s->listen && s->listen->pki, /* inside smtps: 503, already TLS */
        .tls = s->listen && s->listen->smtps,
    };
}

/* The bufferevent for fd: TLS from the first byte on an smtps listener;
 * else plain, with the greeting held back for greeting-delay. */
static int
session_open(struct session *s, int fd)
{
    struct timeval delay = {s->cf->greeting_delay, 0};
    struct bufferevent *bev;
    char c;

    if (s->set.tls) {
        if (session_tls_bev(s, fd) == NULL) {
            close(fd);
            return -1;
        }
        return 0;
    }
    bev = bufferevent_socket_new(s->d->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        close(fd);
        return -1;
    }
    session_use_bev(s, bev);
    if (s->cf->greeting_delay > 0) {
        s->greeting = evtimer_new(s->d->base, session_greet, s);
        evtimer_add(s->greeting, &delay);
    } else if (recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        /* even without a delay: the client spoke before we did */
        session_early_talker(s);
        return 0;
    }
    return 0;
}

void
session_new(struct daemon *d, int fd, const struct sockaddr *sa, socklen_t salen,
            const struct config_listen *la)
{
    struct session *s = xcalloc(1, sizeof(*s));
    struct smtp_server_hooks hooks;

    s->d = d;
    s->cf = config_ref(d->cf);
    s->id = ++d->next_session_id;
    memcpy(&s->peer, sa, salen < sizeof(s->peer) ? salen : sizeof(s->peer));
    sockaddr_text(sa, s->ip, sizeof(s->ip));
    for (size_t i = 0; i < s->cf->nlistens && la; i++)
        if (s->cf->listens[i].port == la->port && strcmp(s->cf->listens[i].addr, la->addr) == 0)
            s->listen = &s->cf->listens[i];
    buf_init(&s->meta, 64u << 20);
    buf_init(&s->trace, 4096);
    session_settings(s);
    hooks = session_hooks; /* copied by smtp_server_new */
    if (s->set.auth_offered && config_has_atrn(s->cf))
        hooks.atrn = hook_atrn; /* RFC 2645: offered after AUTH, with an atrn action */
    s->smtp = smtp_server_new(&s->set, &hooks, s);
    s->next = d->sessions;
    if (d->sessions)
        d->sessions->prev = s;
    d->sessions = s;
    d->nsessions++;
    log_info("s=%lu connect from [%s]", s->id, s->ip);
    if (session_open(s, fd) < 0) {
        log_warn("s=%lu cannot set up the connection from [%s]", s->id, s->ip);
        session_free(s);
        return;
    }
    session_process(s);
}

void
session_drain(struct session *s)
{
    s->draining = true;
    if (!session_busy(s) && !s->closing)
        session_process(s);
}

void
session_abort(struct session *s)
{
    if (session_busy(s)) {
        s->draining = true;
        return;
    }
    if (s->closing) { /* grace is over for unread replies too */
        session_end(s);
        return;
    }
    smtp_server_close(s->smtp, "4.3.2", "shutting down");
    session_flush(s);
    session_close_after_flush(s);
}

struct session *
session_next(struct session *s)
{
    return s->next;
}
