/*
 * Deciding what becomes of a recipient: the match rules (first match wins),
 * relay control, local users, aliases and user+tag addressing. Pure: tables
 * are in memory, nothing here blocks.
 */
#ifndef PETREL_ROUTER_H
#define PETREL_ROUTER_H

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
 * Resolves one RCPT. On success returns 0 and fills out with one or more
 * deduplicated targets (aliases expanded). On refusal returns -1 with err:
 * 550 5.7.1 relay denied (also for %-hack, bang paths and routing inside a
 * local part of our domains), 550 5.1.1 unknown user, 451 4.3.5 alias loop
 * or unroutable alias target.
 */
int router_rcpt(const struct config *cf, const struct route_client *cl,
                const struct smtp_path *rcpt, struct route_result *out, struct smtp_reply *err);
void route_result_free(struct route_result *r);

/*
 * VRFY (RFC 5321 3.5.3): arg is "name", "name@domain" or "<name@domain>".
 * A local user: 0 with "name@domain" in out. Otherwise -1 with err
 * (550 5.1.1 unknown, 553 5.1.3 syntax).
 */
int router_vrfy(const struct config *cf, struct str arg, char *out, size_t n,
                struct smtp_reply *err);
/* EXPN: expands an alias (one level shown as final addresses). 0 or -1. */
int router_expn(const struct config *cf, struct str arg, struct route_result *out,
                struct smtp_reply *err);

#endif
