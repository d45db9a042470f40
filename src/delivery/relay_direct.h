/*
 * The relay handoff: a new message whose recipients all go to one
 * outbound destination (a smarthost, a domain's MX hosts, an LMTP server)
 * is forwarded while its client waits, and the client's 250 follows the
 * next hop's. The message is then on the next hop's stable storage, not
 * ours: nothing to write, sync, read back and unlink. Whatever the next
 * hop does not take within `relay-handoff` goes to the spool, with the
 * outcomes so far journaled, before the 250; the queue manager finishes
 * it. When the next hop refuses every recipient for good, the client gets
 * its refusal instead: nothing is stored and no bounce is owed.
 */
#ifndef PETREL_RELAY_DIRECT_H
#define PETREL_RELAY_DIRECT_H

#include "base/str.h"
#include "config/config.h"
#include "queue/envelope.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>

struct event_base;
struct mta;
struct spool;
struct workpool;

/* Whether e may take the handoff: handoff on, plain MAIL, every recipient
 * for the same relay or LMTP action and destination (one domain, unless
 * the action names its host), none asking for a success DSN. */
bool relay_direct_eligible(const struct config *cf, const struct envelope *e);

struct relay_direct_env {
    struct event_base *base;
    struct mta *mta;
    struct workpool *pool;
    struct spool *spool;
};

/*
 * Starts the handoff of e (parts: envelope text, trace, message; e, parts
 * and cf stay valid until done). done runs later on the loop thread with:
 * error 0 and spooled false (delivered), error 0 and spooled true (stored
 * in the spool: hand the id to the queue manager), an errno value (not
 * stored: answer 451/452), or error 0 with refused set (every recipient
 * refused for good: answer with it).
 */
void relay_direct_start(const struct relay_direct_env *env, const struct config *cf,
                        struct envelope *e, const struct str parts[3],
                        void (*done)(void *arg, int error, bool spooled,
                                     const struct smtp_reply *refused),
                        void *arg);

#endif
