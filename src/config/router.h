/*
 * Deciding what becomes of a recipient: the match rules (first match wins),
 * relay control, local users, aliases and user+tag addressing. Pure: tables
 * are in memory, nothing here blocks.
 */
#ifndef PETREL_ROUTER_H
#define PETREL_ROUTER_H

#include "base/buf.h"
#include "config/config.h"
#include "smtp/smtp_address.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <sys/socket.h>

struct route_client {
    const struct sockaddr *addr; /* peer address; NULL for local submission */
    bool local;                  /* the local sendmail command */
    bool authenticated;          /* AUTH (later issue) */
};

enum route_target_kind {
    ROUTE_MAILDIR, /* deliver into action->maildir with %{user} = user */
    ROUTE_RELAY,   /* forward to address over SMTP (outbound issue) */
};

struct route_target {
    enum route_target_kind kind;
    const struct action *action;     /* ROUTE_RELAY: may be NULL if no rule routes it */
    char user[SMTP_LOCAL_MAX + 1];   /* ROUTE_MAILDIR: mailbox name, lowercased */
    char address[SMTP_PATH_MAX + 1]; /* final address: "alice@example.org" / remote */
};

struct route_result {
    struct route_target *targets; /* owned; free with route_result_free */
    size_t ntargets;
};

/*
 * Resolves one RCPT. On success returns 0 and fills out (owned by the
 * caller: route_result_free) with one or more targets, aliases expanded,
 * deduplicated by kind + action + user (maildir) or address (relay). On
 * refusal returns -1 with out empty and err set: 550 5.7.1 relay denied
 * (also for %-hack, bang paths and routing inside a local part of our
 * domains), 550 5.1.1 unknown user, 451 4.3.5 for configuration problems
 * (alias loop or nesting over 10, alias target unknown or unroutable, alias
 * with no targets, expansion over 1000 addresses), 553 5.1.3 for "<>".
 * ROUTE_RELAY targets of alias expansion get their action by routing the
 * target as if from the local sendmail command. user is "" for ROUTE_RELAY.
 */
int router_rcpt(const struct config *cf, const struct route_client *cl,
                const struct smtp_path *rcpt, struct route_result *out, struct smtp_reply *err);
void route_result_free(struct route_result *r);

/*
 * VRFY (RFC 5321 3.5.3): arg is "name", "name@domain" or "<name@domain>".
 * A mailbox or alias of a maildir action: 0 with the canonical
 * "name@domain" in out (lowercase, no +tag). With a domain, the action is
 * the one a `for domain` rule routes it to; without, each maildir action in
 * rule order, and the domain is the first routed to it (else hostname).
 * Otherwise -1 with err (550 5.1.1 unknown, 553 5.1.3 syntax or too long).
 */
int router_vrfy(const struct config *cf, struct str arg, char *out, size_t n,
                struct smtp_reply *err);
/* EXPN: expands an alias fully into out (final addresses, as router_rcpt).
 * 0, or -1 with err: 550 5.1.1 unknown or not a mailing list, 553 5.1.3
 * syntax, 451 4.3.5 as for router_rcpt. */
int router_expn(const struct config *cf, struct str arg, struct route_result *out,
                struct smtp_reply *err);
/* The same, appended to lines as one address per "\n"-separated line (the
 * form the SMTP server's EXPN hook returns). */
int router_expn_lines(const struct config *cf, struct str arg, struct buf *lines,
                      struct smtp_reply *err);

#endif
