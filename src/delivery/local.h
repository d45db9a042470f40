/*
 * Local delivery of one recipient (Maildir, and RFC 821 terminals for
 * SEND/SOML/SAML), and the direct path that delivers a new message to its
 * Maildirs before the 250 instead of through the spool. Blocking: worker
 * threads only.
 */
#ifndef PETREL_LOCAL_H
#define PETREL_LOCAL_H

#include "base/str.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "queue/spool.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * Delivers msg (CRLF lines; preceded by trace, CRLF lines, when the trace
 * fields are not part of msg) to recipient r. Returns 1 delivered, 0
 * deferred, -1 failed for good, with a log text in err.
 */
int local_deliver(const struct config *cf, const struct envelope *e, const struct envelope_rcpt *r,
                  struct str trace, const char *msg, size_t len, char *err, size_t errlen);

/*
 * Whether e may take the direct path: every recipient a Maildir mailbox of
 * a maildir action, plain MAIL (no terminal delivery), and no recipient
 * asking for a success DSN (RFC 3461 NOTIFY=SUCCESS needs the queue).
 */
bool local_direct_eligible(const struct config *cf, const struct envelope *e);

/*
 * The direct path: delivers the message (parts: envelope text, trace,
 * message) to every recipient of e, each durable in its Maildir (file and
 * new/ fsync'ed) before this returns. When one is not delivered, the
 * message goes to the spool after all, with a journal marking the
 * recipients already delivered, and *spooled is set: the queue manager
 * takes over the rest. Returns 0, or an errno value when the message could
 * not be stored (nothing acknowledged: the client will send it again).
 */
int local_direct(struct spool *sp, const struct config *cf, struct envelope *e,
                 const struct str parts[3], bool *spooled);

/*
 * The way out of a direct path (this one, or the relay handoff in
 * relay_direct.h) when a recipient is left: stores the message in the
 * spool with a journal of the outcomes e already holds (delivered, failed,
 * deferred with its next attempt), for the queue manager to finish.
 * Returns 0 or an errno value (nothing stored). Blocking.
 */
int direct_queue_rest(struct spool *sp, struct envelope *e, const struct str parts[3]);

#endif
