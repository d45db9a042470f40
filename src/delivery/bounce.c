/*
 * Queueing a delivery status notification about a message: the report is
 * built by dsn.c; this file makes its envelope (null sender, the original
 * sender as recipient, routed as local mail) and stores it in the spool.
 */
#include "base/log.h"
#include "config/router.h"
#include "delivery/dsn.h"
#include "delivery/qmgr_impl.h"
#include "delivery/route_envelope.h"
#include "smtp/smtp_address.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Recipient error texts are "HOST: 550 5.1.1 text" (remote), "550 5.1.1
 * text" or "5.1.1 text" (local): split them for the report. */
static void
split_error(const char *err, int kind, char *status, size_t slen, char *host, size_t hlen,
            const char **diag)
{
    const char *p = err, *colon = strstr(err, ": ");
    const char *fallback = kind == DSN_FAILURE ? "5.0.0" : kind == DSN_DELAY ? "4.0.0" : "2.0.0";

    host[0] = '\0';
    if (colon && colon - err < 256 && colon[2] >= '2' && colon[2] <= '5') {
        snprintf(host, hlen, "%.*s", (int)(colon - err), err);
        p = colon + 2;
    }
    *diag = p;
    if (p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[3] == ' ')
        p += 4; /* reply code */
    if (p[0] >= '2' && p[0] <= '5' && p[1] == '.') {
        size_t n = strcspn(p, " ");

        snprintf(status, slen, "%.*s", (int)(n < slen ? n : slen - 1), p);
        return;
    }
    snprintf(status, slen, "%s", fallback);
}

static const char *
action_of(const struct config *cf, int kind, const struct envelope_rcpt *r)
{
    const struct action *a = config_find_action(cf, r->action);

    if (kind == DSN_DELAY)
        return "delayed";
    if (kind == DSN_FAILURE)
        return "failed";
    if (r->kind == RCPT_MAILDIR)
        return "delivered";
    /* LMTP is final delivery; SMTP relaying is not (RFC 3464 2.3.3). */
    return a && a->kind == ACTION_LMTP ? "delivered" : "relayed";
}

static int
dsn_text(struct qmsg *m, int kind, const size_t *idx, size_t n, const char *id, struct buf *out)
{
    const struct envelope *e = m->env;
    struct dsn_rcpt *rs = calloc(n, sizeof(*rs));
    char(*status)[16] = calloc(n, 16), (*host)[256] = calloc(n, 256);
    const char *map = NULL;
    size_t maplen = 0;
    int r = -1;

    if (rs && status && host && spool_map(m->q->spool, m->id, &map, &maplen) == 0) {
        for (size_t k = 0; k < n; k++) {
            const struct envelope_rcpt *rc = &e->rcpts[idx[k]];
            const char *diag;

            split_error(rc->error, kind, status[k], 16, host[k], 256, &diag);
            rs[k] = (struct dsn_rcpt){
                .address = rc->address,
                .orcpt = rc->orcpt,
                .action = action_of(m->cf, kind, rc),
                .status = status[k],
                .remote_mta = host[k],
                .diagnostic = kind == DSN_SUCCESS ? "" : diag,
                .last_attempt = m->now,
            };
        }
        struct dsn_report rep = {.kind = kind,
                                 .reporting_mta = m->cf->hostname,
                                 .sender = e->sender,
                                 .envid = e->envid,
                                 .arrival = e->arrival,
                                 .ret = e->ret,
                                 .message = map + e->data_offset,
                                 .message_len = maplen - e->data_offset,
                                 .rcpts = rs,
                                 .nrcpts = n,
                                 .now = m->now,
                                 .unique = id};
        r = dsn_build(&rep, out);
        spool_unmap(map, maplen);
    }
    free(rs);
    free(status);
    free(host);
    return r;
}

/* The DSN's envelope: from <>, to the original sender, routed as local. */
static struct envelope *
dsn_envelope(struct qmsg *m, const char *id)
{
    struct route_client cl = {.local = true};
    struct route_result res = {0};
    struct smtp_reply err;
    struct smtp_path path;
    struct str rest;
    char wrapped[SMTP_PATH_MAX + 3];
    struct envelope *d;

    snprintf(wrapped, sizeof(wrapped), "<%s>", m->env->sender);
    if (smtp_path_parse(str_cstr(wrapped), SMTP_PATH_RECIPIENT, true, &path, &rest, &err) < 0 ||
        router_rcpt(m->cf, &cl, &path, &res, &err) < 0) {
        log_warn("%s: cannot route a DSN to <%s>: %s", m->id, m->env->sender, err.text);
        return NULL;
    }
    d = envelope_new();
    snprintf(d->id, sizeof(d->id), "%s", id);
    d->arrival = m->now;
    d->body = m->env->body;
    d->smtputf8 = m->env->smtputf8;
    free(d->client);
    d->client = strdup("local");
    route_envelope_add(d, &res, m->env->sender, 0, "");
    route_result_free(&res);
    return d;
}

int
qmgr_bounce(struct qmsg *m, int kind, const size_t *rcpts, size_t n, char *out)
{
    struct buf meta, text;
    struct envelope *d;
    int r = -1;

    queue_id_new(out);
    buf_init(&meta, 1u << 20);
    buf_init(&text, m->cf->message_size + (1u << 20));
    d = dsn_envelope(m, out);
    if (d && envelope_write(d, &meta) == 0 && dsn_text(m, kind, rcpts, n, out, &text) == 0) {
        struct str parts[3] = {buf_str(&meta), STR_LIT(""), buf_str(&text)};

        if ((r = spool_store(m->q->spool, out, parts)) == 0)
            log_info("%s: sender %s notification: %s", m->id,
                     kind == DSN_FAILURE ? "non-delivery"
                     : kind == DSN_DELAY ? "delay"
                                         : "success",
                     out);
        else
            log_warn("%s: cannot store a DSN: %s", m->id, strerror(r));
    }
    envelope_free(d);
    buf_free(&meta);
    buf_free(&text);
    return r == 0 ? 0 : -1;
}
