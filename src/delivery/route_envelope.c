/* Routing results into envelope recipients; see route_envelope.h. */
#include "delivery/route_envelope.h"

#include <string.h>

static bool
same_rcpt(const struct envelope_rcpt *e, enum rcpt_kind kind, const char *action,
          const struct route_target *t)
{
    return e->kind == kind && strcmp(e->action, action) == 0 &&
           strcmp(kind == RCPT_MAILDIR ? e->user : e->address,
                  kind == RCPT_MAILDIR ? t->user : t->address) == 0;
}

void
route_envelope_add(struct envelope *e, const struct route_result *res, const char *orig,
                   unsigned notify, const char *orcpt)
{
    for (size_t i = 0; i < res->ntargets; i++) {
        const struct route_target *t = &res->targets[i];
        enum rcpt_kind kind = t->kind == ROUTE_MAILDIR ? RCPT_MAILDIR : RCPT_RELAY;
        const char *action = t->action ? t->action->name : "";
        bool dup = false;

        for (size_t j = 0; j < e->nrcpts && !dup; j++)
            dup = same_rcpt(&e->rcpts[j], kind, action, t);
        if (!dup)
            envelope_add_rcpt(e, kind, action, t->user, t->address, orig, notify, orcpt);
    }
}
