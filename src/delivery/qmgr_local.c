/*
 * Step 1 of a delivery pass: local recipients (Maildir, and RFC 821
 * terminals for SEND/SOML/SAML). Runs on a worker thread.
 */
#include "base/log.h"
#include "delivery/local.h"
#include "delivery/maildir.h"
#include "delivery/qmgr_impl.h"
#include "delivery/terminal.h"
#include "smtp/smtp_server.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Writes to every terminal of the user; true if one took it. */
static bool
deliver_terminals(const struct config *cf, const struct envelope *e, const char *user,
                  const char *msg, size_t len)
{
    char ttys[TERMINAL_MAX][40];
    int n = terminal_find(cf->utmp_file, user, ttys, TERMINAL_MAX);
    bool ok = false;

    for (int i = 0; i < n; i++)
        ok |= terminal_write(ttys[i], e->sender, msg, len) == 0;
    return ok;
}

static int
deliver_mailbox(const struct action *a, const struct envelope *e, const struct envelope_rcpt *r,
                struct str trace, const char *msg, size_t len, char *err, size_t errlen)
{
    char dir[4096], head[4096];
    size_t n;

    if (maildir_path(a->maildir, r->user, dir, sizeof(dir), err, errlen) < 0)
        return -1;
    /* RFC 5321 4.4: the final delivery adds Return-Path. */
    n = (size_t)snprintf(head, sizeof(head), "Return-Path: <%s>\nDelivered-To: %s\n", e->sender,
                         r->address);
    /* the trace fields when they are not part of msg, as LF lines */
    for (size_t i = 0; i < trace.len && n + 1 < sizeof(head); i++)
        if (trace.ptr[i] != '\r' || i + 1 >= trace.len || trace.ptr[i + 1] != '\n')
            head[n++] = trace.ptr[i];
    if (n + 1 >= sizeof(head)) {
        snprintf(err, errlen, "4.3.0 trace fields too long");
        return 0;
    }
    head[n] = '\0';
    if (maildir_deliver(dir, head, msg, len, err, errlen) < 0)
        return 0;
    snprintf(err, errlen, "delivered to maildir %s", dir);
    return 1;
}

int
local_deliver(const struct config *cf, const struct envelope *e, const struct envelope_rcpt *r,
              struct str trace, const char *msg, size_t len, char *err, size_t errlen)
{
    const struct action *a = config_find_action(cf, r->action);
    int mode = cf->terminal_delivery ? e->mode : SMTP_MODE_MAIL;
    bool tty;

    if (a == NULL || a->kind != ACTION_MAILDIR) {
        snprintf(err, errlen, "4.3.5 no maildir action \"%s\" in the configuration", r->action);
        return 0;
    }
    if (mode == SMTP_MODE_MAIL)
        return deliver_mailbox(a, e, r, trace, msg, len, err, errlen);
    tty = deliver_terminals(cf, e, r->user, msg, len);
    if (mode == SMTP_MODE_SEND || (mode == SMTP_MODE_SOML && tty)) {
        snprintf(err, errlen, tty ? "written to the terminal" : "5.2.1 user is not logged in");
        return tty ? 1 : -1;
    }
    /* SOML not logged in, SAML */
    return deliver_mailbox(a, e, r, trace, msg, len, err, errlen);
}

void
qmgr_local_run(struct qmsg *m)
{
    const char *map;
    size_t maplen;
    char err[512];
    struct envelope *e;

    m->env = e = spool_load(m->q->spool, m->id);
    if (e == NULL)
        return;
    if (spool_map(m->q->spool, m->id, &map, &maplen) < 0)
        return; /* vanished meanwhile (deleted): step 3 notices */
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct envelope_rcpt *r = &e->rcpts[i];
        int rc;

        if (r->kind != RCPT_MAILDIR || !qmgr_rcpt_due(m, r))
            continue;
        if (m->q->test_local_delay_ms) {
            unsigned ms = m->q->test_local_delay_ms;
            struct timespec pause = {ms / 1000, (long)(ms % 1000) * 1000000};

            nanosleep(&pause, NULL);
        }
        rc = local_deliver(m->cf, e, r, str_make("", 0), map + e->data_offset,
                           maplen - e->data_offset, err, sizeof(err));
        if (rc > 0)
            qmgr_rcpt_delivered(m, i, err);
        else if (rc < 0)
            qmgr_rcpt_failed(m, i, err);
        else
            qmgr_rcpt_deferred(m, i, err);
        qmgr_log(e, r, "maildir", rc > 0 ? "sent" : rc < 0 ? "bounced" : "deferred", err);
    }
    spool_unmap(map, maplen);
}
