/*
 * The direct path for local mail; see local.h. A message whose recipients
 * are all local Maildirs needs no queue: once every Maildir copy is on
 * stable storage (file fsync'ed, then its new/ directory), the 250 can go
 * out. That is the same promise the spool gives, kept with a third of the
 * file system work: no queue file to write, sync, rename, read back,
 * journal and unlink. Anything unusual takes the queue as before.
 */
#include "base/log.h"
#include "delivery/local.h"
#include "delivery/qmgr_impl.h"
#include "smtp/smtp_command.h"
#include "smtp/smtp_server.h"

#include <stdio.h>
#include <string.h>

bool
local_direct_eligible(const struct config *cf, const struct envelope *e)
{
    if (e->mode != SMTP_MODE_MAIL || e->nrcpts == 0)
        return false;
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];
        const struct action *a = config_find_action(cf, r->action);

        if (r->kind != RCPT_MAILDIR || (r->notify & SMTP_NOTIFY_SUCCESS) || a == NULL ||
            a->kind != ACTION_MAILDIR)
            return false;
    }
    return true;
}

int
local_direct(struct spool *sp, const struct config *cf, struct envelope *e,
             const struct str parts[3], bool *spooled)
{
    size_t pending = 0;
    char err[512];
    int r;

    *spooled = false;
    for (size_t i = 0; i < e->nrcpts; i++) {
        struct envelope_rcpt *rc = &e->rcpts[i];

        if (local_deliver(cf, e, rc, parts[1], parts[2].ptr, parts[2].len, err, sizeof(err)) > 0) {
            rc->state = RCPT_DELIVERED;
            qmgr_log(e, rc, "maildir", "sent", err);
        } else {
            pending++; /* the queue retries it, and bounces it if it must */
            log_info("%s: to=<%s>: direct delivery failed (%s); queued", e->id, rc->address, err);
        }
    }
    if (pending == 0)
        return 0;
    if ((r = direct_queue_rest(sp, e, parts)) != 0)
        return r;
    *spooled = true;
    return 0;
}

int
direct_queue_rest(struct spool *sp, struct envelope *e, const struct str parts[3])
{
    struct buf journal;
    int r;

    /* RFC 5321 4.4 trace fields are in parts[1]; the spool keeps them too */
    if ((r = spool_store(sp, e->id, parts)) != 0)
        return r;
    buf_init(&journal, 1 << 20);
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *rc = &e->rcpts[i];
        char kind = rc->state == RCPT_DELIVERED ? 'd'
                    : rc->state == RCPT_FAILED  ? 'f'
                    : rc->attempts              ? 't'
                                                : 0;

        if (kind && envelope_journal_line(e, i, kind, &journal) < 0)
            break;
    }
    /* A crash before this line only tries those recipients again. */
    if (journal.len && spool_journal(sp, e->id, journal.data, journal.len) < 0)
        log_warn("%s: journal of the direct deliveries not written", e->id);
    buf_free(&journal);
    return 0;
}
