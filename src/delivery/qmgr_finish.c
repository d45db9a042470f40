/*
 * Step 3 of a delivery pass, on a worker thread: expiry, delivery status
 * notifications (RFC 3461 6.2), the journal, and removal of a message
 * whose recipients are all final. DSNs are stored before the journal says
 * they were sent: a crash in between repeats a DSN, never loses one.
 */
#include "base/log.h"
#include "base/xmalloc.h"
#include "delivery/dsn.h"
#include "delivery/qmgr_impl.h"
#include "smtp/smtp_command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
expire_pending(struct qmsg *m)
{
    struct envelope *e = m->env;
    unsigned days = m->cf->expire % 86400 ? 0 : m->cf->expire / 86400;
    char text[700];

    if (m->now - e->arrival < (int64_t)m->cf->expire)
        return;
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct envelope_rcpt *r = &e->rcpts[i];

        if (r->state != RCPT_PENDING)
            continue;
        snprintf(text, sizeof(text), "4.4.7 message expired after %u %s in the queue%s%s",
                 days ? days : m->cf->expire, days ? "days" : "seconds",
                 r->error[0] ? "; last error: " : "", r->error);
        qmgr_rcpt_failed(m, i, text);
        qmgr_log(e, r, r->kind == RCPT_MAILDIR ? "maildir" : "smtp", "expired", text);
    }
}

/* RFC 3461 4.1: without NOTIFY, failures are reported (and delays may be). */
static bool
wants(const struct envelope_rcpt *r, unsigned bit)
{
    if (r->notify == 0)
        return bit == SMTP_NOTIFY_FAILURE || bit == SMTP_NOTIFY_DELAY;
    return (r->notify & bit) != 0;
}

/* Queues one DSN; true when nothing more is owed (stored, nothing to
 * say, or a null sender), false when it must be tried again. */
static bool
queue_dsn(struct qmsg *m, int kind, const size_t *idx, size_t n)
{
    if (n == 0)
        return true;
    if (m->env->sender[0] == '\0') {
        /* Never answer a bounce with a bounce (RFC 3461 6.2, RFC 5321 6.1). */
        log_info("%s: from=<>: %zu recipient(s) failed; no DSN for a null sender", m->id, n);
        return true;
    }
    if (m->ndsns >= (int)(sizeof(m->new_dsns) / sizeof(m->new_dsns[0])) ||
        qmgr_bounce(m, kind, idx, n, m->new_dsns[m->ndsns]) < 0)
        return false;
    m->ndsns++;
    return true;
}

static bool
listed(const size_t *idx, size_t n, size_t i)
{
    for (size_t k = 0; k < n; k++)
        if (idx[k] == i)
            return true;
    return false;
}

/* Final DSNs: failures, and successes that asked for one. A recipient is
 * marked reported (journal "n") only once its DSN is stored. */
static void
final_dsns(struct qmsg *m)
{
    struct envelope *e = m->env;
    /* Every failed recipient must be in the DSN: no cap. */
    size_t *failed = xcalloc(e->nrcpts + 1, sizeof(size_t));
    size_t *ok = xcalloc(e->nrcpts + 1, sizeof(size_t)), nf = 0, ns = 0;
    bool failed_done, ok_done;

    for (size_t i = 0; i < e->nrcpts; i++) {
        struct envelope_rcpt *r = &e->rcpts[i];

        if (r->state == RCPT_PENDING || r->dsn_sent)
            continue;
        if (r->state == RCPT_FAILED && wants(r, SMTP_NOTIFY_FAILURE))
            failed[nf++] = i;
        /* A peer that took the DSN parameters reports success itself. */
        if (r->state == RCPT_DELIVERED && wants(r, SMTP_NOTIFY_SUCCESS) && !r->dsn_passed)
            ok[ns++] = i;
    }
    failed_done = queue_dsn(m, DSN_FAILURE, failed, nf);
    ok_done = queue_dsn(m, DSN_SUCCESS, ok, ns);
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct envelope_rcpt *r = &e->rcpts[i];

        if (r->state == RCPT_PENDING || r->dsn_sent || (!failed_done && listed(failed, nf, i)) ||
            (!ok_done && listed(ok, ns, i)))
            continue;
        r->dsn_sent = true;
        if (envelope_journal_line(e, i, 'n', &m->journal) < 0)
            log_warn("%s: journal too large", m->id);
    }
    free(failed);
    free(ok);
}

/* True while a final recipient still owes its sender a DSN. */
static bool
dsn_owed(const struct envelope *e)
{
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state != RCPT_PENDING && !e->rcpts[i].dsn_sent)
            return true;
    return false;
}

static void
delay_dsn(struct qmsg *m)
{
    struct envelope *e = m->env;
    size_t *idx, n = 0;

    if (e->warned || m->cf->delay_warning == 0 ||
        m->now - e->arrival < (int64_t)m->cf->delay_warning)
        return;
    idx = xcalloc(e->nrcpts + 1, sizeof(size_t));
    for (size_t i = 0; i < e->nrcpts; i++)
        if (e->rcpts[i].state == RCPT_PENDING && wants(&e->rcpts[i], SMTP_NOTIFY_DELAY))
            idx[n++] = i;
    if (queue_dsn(m, DSN_DELAY, idx, n)) {
        e->warned = true;
        (void)!buf_printf(&m->journal, "w\n");
    }
    free(idx);
}

void
qmgr_finish_run(struct qmsg *m)
{
    struct envelope *e = m->env;

    if (e == NULL)
        return;
    expire_pending(m);
    final_dsns(m);
    delay_dsn(m);
    if (envelope_pending(e) == 0 && !dsn_owed(e)) {
        /* Removing the file records every outcome at once. */
        if (spool_remove(m->q->spool, m->id) == 0) {
            m->removed = true;
            log_info("%s: removed", m->id);
            return;
        }
        /* not removed: the journal must record the outcomes instead */
    }
    if (m->journal.len && spool_journal(m->q->spool, m->id, m->journal.data, m->journal.len) < 0)
        log_warn("%s: cannot write the journal; outcomes will be retried", m->id);
}
