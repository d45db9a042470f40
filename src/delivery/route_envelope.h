/*
 * From a routing decision to envelope recipients, shared by the SMTP
 * session, local submission and bounces.
 */
#ifndef PETREL_ROUTE_ENVELOPE_H
#define PETREL_ROUTE_ENVELOPE_H

#include "config/router.h"
#include "queue/envelope.h"

/* Adds res's targets to e, skipping any already there: a mailbox is one
 * per action and user (an alias and one of its members in one message
 * give that member one copy), a relay recipient one per address. */
void route_envelope_add(struct envelope *e, const struct route_result *res, const char *orig,
                        unsigned notify, const char *orcpt);

#endif
