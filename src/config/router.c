/*
 * Routing one recipient: the first match rule whose "from" and "for" fit
 * decides; nothing relays unless a rule says so. Local recipients of a
 * maildir action go through user+tag stripping, aliases (expanded
 * recursively, with loop and depth limits) and the users table. Pure: only
 * in-memory tables, no I/O, so every decision is unit-testable.
 */
#include "config/router.h"

#include "base/xmalloc.h"
#include "config/config_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIAS_DEPTH_MAX 10     /* nested aliases before we call it a loop */
#define ROUTE_STEPS_MAX 10000  /* lookups per recipient: bounds a fan-out bomb */
#define ROUTE_TARGETS_MAX 1000 /* final addresses per recipient */
/* An address as shown in replies: a quoted local part may double in size. */
#define ROUTE_DISPLAY_MAX (2 * SMTP_LOCAL_MAX + 3 + SMTP_DOMAIN_MAX + 1)

struct alias_frame {
    const struct action *action;
    const char *name;
};

struct route_ctx {
    const struct config *cf;
    struct route_result *out;
    size_t cap;
    struct smtp_reply *err;
    char rcpt[ROUTE_DISPLAY_MAX + 2]; /* "<addr>", for replies */
    struct alias_frame stack[ALIAS_DEPTH_MAX];
    size_t depth;
    unsigned steps;
};

/* Alias targets are routed as if the local sendmail command sent them. */
static const struct route_client local_client = {.addr = NULL, .local = true};

static int resolve_local(struct route_ctx *ctx, const struct action *act, const char *name,
                         const char *domain);

static bool
from_matches(const struct match_rule *r, const struct route_client *cl)
{
    switch (r->from) {
    case MATCH_FROM_ANY:
        return true;
    case MATCH_FROM_LOCAL:
        return cl->local;
    case MATCH_FROM_TABLE:
        return !cl->local && table_has_addr(r->from_table, cl->addr);
    case MATCH_FROM_NET:
        return !cl->local && cl->addr && table_net_contains(&r->from_net, cl->addr);
    case MATCH_FROM_AUTH:
        return cl->authenticated;
    }
    return false;
}

/* domain is lowercased. An address literal is nobody's domain name. */
static bool
for_matches(const struct match_rule *r, const char *domain, bool literal)
{
    switch (r->for_) {
    case MATCH_FOR_ANY:
        return true;
    case MATCH_FOR_DOMAIN:
        return !literal && strcmp(r->domain, domain) == 0;
    case MATCH_FOR_DOMAIN_TABLE:
        return !literal && table_get(r->domain_table, domain) != NULL;
    }
    return false;
}

static const struct match_rule *
rule_find(const struct config *cf, const struct route_client *cl, const char *domain)
{
    bool literal = domain[0] == '[';

    for (size_t i = 0; i < cf->nrules; i++)
        if (from_matches(&cf->rules[i], cl) && for_matches(&cf->rules[i], domain, literal))
            return &cf->rules[i];
    return NULL;
}

/* The first maildir action in rule order: where Postmaster lives. */
static const struct action *
first_maildir_action(const struct config *cf)
{
    for (size_t i = 0; i < cf->nrules; i++)
        if (cf->rules[i].action->kind == ACTION_MAILDIR)
            return cf->rules[i].action;
    return NULL;
}

/* A domain name from a `for domain <table>`: the first key in sorted order
 * that is not an address literal; NULL if none. */
static const char *
table_first_domain(const struct table *t)
{
    for (size_t i = 0; i < t->nentries; i++)
        if (t->entries[i].key[0] != '[')
            return t->entries[i].key;
    return NULL;
}

/* The domain an action's mailboxes are known by when none was given: the
 * first domain routed to it in rule order, else the host name. */
static void
action_domain(const struct config *cf, const struct action *act, char *out, size_t n)
{
    for (size_t i = 0; i < cf->nrules; i++) {
        const struct match_rule *r = &cf->rules[i];
        const char *d = NULL;

        if (r->action != act)
            continue;
        if (r->for_ == MATCH_FOR_DOMAIN)
            d = r->domain;
        else if (r->for_ == MATCH_FOR_DOMAIN_TABLE)
            d = table_first_domain(r->domain_table);
        if (d) {
            snprintf(out, n, "%s", d);
            return;
        }
    }
    snprintf(out, n, "%s", cf->hostname);
    config_ascii_lower(out);
}

/* Percent hack, bang path, or an "@" in a quoted local part (RFC 5321 3.6.1). */
static bool
has_routing(const char *local)
{
    return strpbrk(local, "%!@") != NULL;
}

/* Mailbox name: the +tag removed (first delimiter), lowercased. */
static void
canonical_name(const struct config *cf, const char *local, char *out, size_t n)
{
    char *tag;

    snprintf(out, n, "%s", local);
    /* "+tag" alone is a name, not an empty user with a tag. */
    tag = cf->recipient_delimiter ? strchr(out + 1, cf->recipient_delimiter) : NULL;
    if (out[0] && tag)
        *tag = '\0';
    config_ascii_lower(out);
}

/* The name becomes a path component of the maildir template: no "/", no "..". */
static bool
valid_mailbox(const char *name)
{
    if (name[0] == '\0' || name[0] == '.')
        return false;
    for (const unsigned char *s = (const unsigned char *)name; *s; s++)
        if (*s <= ' ' || *s == 0x7f || strchr("/%!@\"\\", *s))
            return false;
    return true;
}

static bool
is_user(const struct action *act, const char *name)
{
    return strcmp(name, "postmaster") == 0 || act->users == NULL ||
           table_get(act->users, name) != NULL;
}

static bool
same_target(const struct route_target *t, enum route_target_kind kind, const struct action *act,
            const char *user, const char *address)
{
    if (t->kind != kind || t->action != act)
        return false;
    return kind == ROUTE_MAILDIR ? strcmp(t->user, user) == 0 : strcmp(t->address, address) == 0;
}

static int
add_target(struct route_ctx *ctx, enum route_target_kind kind, const struct action *act,
           const char *user, const char *address)
{
    struct route_result *out = ctx->out;
    struct route_target *t;

    for (size_t i = 0; i < out->ntargets; i++)
        if (same_target(&out->targets[i], kind, act, user, address))
            return 0;
    if (out->ntargets == ROUTE_TARGETS_MAX)
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias expands to more than %d addresses",
                              ctx->rcpt, ROUTE_TARGETS_MAX);
    if (out->ntargets == ctx->cap) {
        ctx->cap = ctx->cap ? ctx->cap * 2 : 4;
        out->targets = xrealloc(out->targets, ctx->cap * sizeof(*out->targets));
    }
    t = &out->targets[out->ntargets];
    memset(t, 0, sizeof(*t));
    t->kind = kind;
    t->action = act;
    if (snprintf(t->user, sizeof(t->user), "%s", user) >= (int)sizeof(t->user) ||
        snprintf(t->address, sizeof(t->address), "%s", address) >= (int)sizeof(t->address))
        return smtp_reply_set(ctx->err, 553, "5.1.3", "%s: address too long", ctx->rcpt);
    out->ntargets++;
    return 0;
}

/* Unknown at the top is the sender's problem; inside an alias it is ours. */
static int
unknown_user(struct route_ctx *ctx, const char *name)
{
    if (ctx->depth == 0)
        return smtp_reply_set(ctx->err, 550, "5.1.1", "%s: user unknown", ctx->rcpt);
    return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias target \"%s\" is not a known user",
                          ctx->rcpt, name);
}

static int
add_mailbox(struct route_ctx *ctx, const struct action *act, const char *name, const char *domain)
{
    char address[SMTP_PATH_MAX + 1];

    if (!valid_mailbox(name))
        return unknown_user(ctx, name);
    if (snprintf(address, sizeof(address), "%s@%s", name, domain) >= (int)sizeof(address))
        return smtp_reply_set(ctx->err, 553, "5.1.3", "%s: address too long", ctx->rcpt);
    return add_target(ctx, ROUTE_MAILDIR, act, name, address);
}

/* An alias target "local@domain": ours again, or relayed per the rules. */
static int
route_alias_address(struct route_ctx *ctx, const char *target, const char *at)
{
    char local[SMTP_LOCAL_MAX + 1], domain[SMTP_DOMAIN_MAX + 1], name[SMTP_LOCAL_MAX + 1];
    char address[SMTP_PATH_MAX + 1];
    const struct match_rule *rule;
    size_t llen = (size_t)(at - target);

    if (llen == 0 || llen >= sizeof(local) || at[1] == '\0' ||
        snprintf(domain, sizeof(domain), "%s", at + 1) >= (int)sizeof(domain))
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: invalid alias target \"%s\"", ctx->rcpt,
                              target);
    memcpy(local, target, llen);
    local[llen] = '\0';
    config_ascii_lower(domain);
    rule = rule_find(ctx->cf, &local_client, domain);
    if (rule == NULL)
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: no route for alias target \"%s\"",
                              ctx->rcpt, target);
    if (rule->action->kind != ACTION_MAILDIR) {
        if (snprintf(address, sizeof(address), "%s@%s", local, domain) >= (int)sizeof(address))
            return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias target too long", ctx->rcpt);
        return add_target(ctx, ROUTE_RELAY, rule->action, "", address);
    }
    if (has_routing(local))
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: invalid alias target \"%s\"", ctx->rcpt,
                              target);
    canonical_name(ctx->cf, local, name, sizeof(name));
    return resolve_local(ctx, rule->action, name, domain);
}

/* One item of an alias list; alias is the name being expanded. */
static int
route_alias_target(struct route_ctx *ctx, const struct action *act, const char *alias,
                   const char *target, const char *domain)
{
    const char *at = strrchr(target, '@');
    char name[SMTP_LOCAL_MAX + 1];

    if (at)
        return route_alias_address(ctx, target, at);
    if (strlen(target) >= sizeof(name))
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: invalid alias target \"%s\"", ctx->rcpt,
                              target);
    canonical_name(ctx->cf, target, name, sizeof(name));
    /* "alice: alice, archive@example.net" keeps a copy in alice's own mailbox. */
    if (strcmp(name, alias) == 0)
        return is_user(act, name) ? add_mailbox(ctx, act, name, domain) : unknown_user(ctx, name);
    return resolve_local(ctx, act, name, domain);
}

static int
check_alias_loop(struct route_ctx *ctx, const struct action *act, const char *name)
{
    for (size_t i = 0; i < ctx->depth; i++)
        if (ctx->stack[i].action == act && strcmp(ctx->stack[i].name, name) == 0)
            return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias loop (\"%s\")", ctx->rcpt,
                                  name);
    if (ctx->depth == ALIAS_DEPTH_MAX)
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias loop (nested deeper than %d)",
                              ctx->rcpt, ALIAS_DEPTH_MAX);
    return 0;
}

/* value is "target, target, ..."; each target is expanded in turn. */
static int
expand_alias(struct route_ctx *ctx, const struct action *act, const char *name, const char *value,
             const char *domain)
{
    struct str rest = str_cstr(value);
    char target[SMTP_PATH_MAX + 1];
    int items = 0, r = 0;

    if (check_alias_loop(ctx, act, name) < 0)
        return -1;
    ctx->stack[ctx->depth++] = (struct alias_frame){act, name};
    while (rest.len && r == 0) {
        struct str item = str_trim(str_cut(&rest, ','));

        if (item.len == 0)
            continue;
        items++;
        if (!str_copy(item, target, sizeof(target)))
            r = smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias target too long", ctx->rcpt);
        else
            r = route_alias_target(ctx, act, name, target, domain);
    }
    ctx->depth--;
    if (r == 0 && items == 0)
        r = smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias \"%s\" has no targets", ctx->rcpt,
                           name);
    return r;
}

/* name is canonical: aliases first, then users; postmaster always exists. */
static int
resolve_local(struct route_ctx *ctx, const struct action *act, const char *name, const char *domain)
{
    const char *value = table_get(act->aliases, name);

    if (++ctx->steps > ROUTE_STEPS_MAX)
        return smtp_reply_set(ctx->err, 451, "4.3.5", "%s: alias expansion too large", ctx->rcpt);
    if (value)
        return expand_alias(ctx, act, name, value, domain);
    if (!is_user(act, name))
        return unknown_user(ctx, name);
    return add_mailbox(ctx, act, name, domain);
}

static void
route_ctx_init(struct route_ctx *ctx, const struct config *cf, struct route_result *out,
               struct smtp_reply *err, const char *display)
{
    memset(ctx, 0, sizeof(*ctx));
    ctx->cf = cf;
    ctx->out = out;
    ctx->err = err;
    snprintf(ctx->rcpt, sizeof(ctx->rcpt), "<%s>", display);
    out->targets = NULL;
    out->ntargets = 0;
}

/* RCPT TO:<Postmaster> (RFC 5321 4.5.1): always ours, from anyone. */
static int
route_postmaster(struct route_ctx *ctx)
{
    const struct action *act = first_maildir_action(ctx->cf);
    char domain[SMTP_DOMAIN_MAX + 1];

    if (act == NULL)
        return smtp_reply_set(ctx->err, 550, "5.1.1", "%s: no local delivery configured",
                              ctx->rcpt);
    action_domain(ctx->cf, act, domain, sizeof(domain));
    return resolve_local(ctx, act, "postmaster", domain);
}

static int
route_relay(struct route_ctx *ctx, const struct action *act, const struct smtp_path *rcpt,
            const char *domain)
{
    struct smtp_path p = *rcpt;
    char address[SMTP_PATH_MAX + 1];

    snprintf(p.domain, sizeof(p.domain), "%s", domain);
    if (smtp_path_format(&p, address, sizeof(address)) < 0)
        return smtp_reply_set(ctx->err, 553, "5.1.3", "%s: address too long", ctx->rcpt);
    return add_target(ctx, ROUTE_RELAY, act, "", address);
}

static int
route_rcpt(struct route_ctx *ctx, const struct route_client *cl, const struct smtp_path *rcpt)
{
    char domain[SMTP_DOMAIN_MAX + 1], name[SMTP_LOCAL_MAX + 1];
    const struct match_rule *rule;

    snprintf(domain, sizeof(domain), "%s", rcpt->domain);
    config_ascii_lower(domain);
    rule = rule_find(ctx->cf, cl, domain);
    if (rule == NULL)
        return smtp_reply_set(ctx->err, 550, "5.7.1", "%s: relay access denied", ctx->rcpt);
    if (rule->action->kind != ACTION_MAILDIR) /* relay, smarthost or LMTP */
        return route_relay(ctx, rule->action, rcpt, domain);
    /* "a%b@ours", "b!a@ours", "\"a@b\"@ours" would make us a relay. */
    if (has_routing(rcpt->local))
        return smtp_reply_set(ctx->err, 550, "5.7.1",
                              "%s: relay access denied (routing in the local part is not "
                              "supported)",
                              ctx->rcpt);
    canonical_name(ctx->cf, rcpt->local, name, sizeof(name));
    return resolve_local(ctx, rule->action, name, domain);
}

int
router_rcpt(const struct config *cf, const struct route_client *cl, const struct smtp_path *rcpt,
            struct route_result *out, struct smtp_reply *err)
{
    char display[ROUTE_DISPLAY_MAX];
    struct route_ctx ctx;
    int r;

    if (smtp_path_format(rcpt, display, sizeof(display)) < 0)
        snprintf(display, sizeof(display), "%s@%s", rcpt->local, rcpt->domain);
    route_ctx_init(&ctx, cf, out, err, display);
    if (rcpt->null)
        r = smtp_reply_set(err, 553, "5.1.3", "<>: not a valid recipient");
    else if (rcpt->no_domain)
        r = route_postmaster(&ctx);
    else
        r = route_rcpt(&ctx, cl, rcpt);
    if (r < 0)
        route_result_free(out);
    return r;
}

void
route_result_free(struct route_result *r)
{
    free(r->targets);
    r->targets = NULL;
    r->ntargets = 0;
}

/* A name or domain in a VRFY / EXPN argument: no quoting, no routing. */
static bool
query_word_ok(struct str s, size_t max)
{
    if (s.len == 0 || s.len > max)
        return false;
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] <= ' ' || s.ptr[i] == 0x7f || strchr("<>@\"\\(),;:", s.ptr[i]))
            return false;
    return true;
}

struct local_query {
    char display[ROUTE_DISPLAY_MAX]; /* as asked, for replies */
    char local[SMTP_LOCAL_MAX + 1];
    char domain[SMTP_DOMAIN_MAX + 1]; /* lowercased; "" when not given */
};

/* "name", "name@domain" or "<name@domain>" (RFC 5321 3.5.3). */
static int
query_parse(struct str arg, struct local_query *q, struct smtp_reply *err)
{
    struct str s = str_trim(arg), l, d = STR_LIT("");
    const char *at;

    if (s.len >= 2 && s.ptr[0] == '<' && s.ptr[s.len - 1] == '>')
        s = str_make(s.ptr + 1, s.len - 2);
    at = s.len ? memchr(s.ptr, '@', s.len) : NULL;
    l = at ? str_make(s.ptr, (size_t)(at - s.ptr)) : s;
    if (at)
        d = str_make(at + 1, s.len - l.len - 1);
    if (!query_word_ok(l, SMTP_LOCAL_MAX) || (at && !query_word_ok(d, SMTP_DOMAIN_MAX)))
        return smtp_reply_set(err, 553, "5.1.3", "Syntax: name or name@domain");
    str_copy(l, q->local, sizeof(q->local));
    str_copy(d, q->domain, sizeof(q->domain));
    config_ascii_lower(q->domain);
    snprintf(q->display, sizeof(q->display), "%s%s%s", q->local, at ? "@" : "", q->domain);
    return 0;
}

static bool
is_known(const struct action *act, const char *name)
{
    return table_get(act->aliases, name) || (is_user(act, name) && valid_mailbox(name));
}

/* The maildir action that owns a domain named by a rule (not `for any`). */
static const struct action *
domain_action(const struct config *cf, const char *domain)
{
    for (size_t i = 0; i < cf->nrules; i++) {
        const struct match_rule *r = &cf->rules[i];

        if (r->action->kind == ACTION_MAILDIR && r->for_ != MATCH_FOR_ANY &&
            for_matches(r, domain, domain[0] == '['))
            return r->action;
    }
    return NULL;
}

/* Finds the action where q names a user or alias; fills name and domain. */
static const struct action *
query_lookup(const struct config *cf, struct local_query *q, char *name, size_t n)
{
    const struct action *act;

    canonical_name(cf, q->local, name, n);
    if (q->domain[0]) {
        act = domain_action(cf, q->domain);
        return act && is_known(act, name) ? act : NULL;
    }
    for (size_t i = 0; i < cf->nrules; i++) {
        act = cf->rules[i].action;
        if (act->kind == ACTION_MAILDIR && is_known(act, name)) {
            action_domain(cf, act, q->domain, sizeof(q->domain));
            return act;
        }
    }
    return NULL;
}

int
router_vrfy(const struct config *cf, struct str arg, char *out, size_t n, struct smtp_reply *err)
{
    char name[SMTP_LOCAL_MAX + 1];
    struct local_query q;

    if (query_parse(arg, &q, err) < 0)
        return -1;
    if (query_lookup(cf, &q, name, sizeof(name)) == NULL)
        return smtp_reply_set(err, 550, "5.1.1", "<%s>: user unknown", q.display);
    if (snprintf(out, n, "%s@%s", name, q.domain) >= (int)n)
        return smtp_reply_set(err, 553, "5.1.3", "<%s>: address too long", q.display);
    return 0;
}

int
router_expn(const struct config *cf, struct str arg, struct route_result *out,
            struct smtp_reply *err)
{
    char name[SMTP_LOCAL_MAX + 1];
    const struct action *act;
    struct local_query q;
    struct route_ctx ctx;
    const char *value;

    out->targets = NULL;
    out->ntargets = 0;
    if (query_parse(arg, &q, err) < 0)
        return -1;
    act = query_lookup(cf, &q, name, sizeof(name));
    if (act == NULL)
        return smtp_reply_set(err, 550, "5.1.1", "<%s>: user unknown", q.display);
    value = table_get(act->aliases, name);
    if (value == NULL)
        return smtp_reply_set(err, 550, "5.1.1", "<%s>: not a mailing list", q.display);
    route_ctx_init(&ctx, cf, out, err, q.display);
    if (expand_alias(&ctx, act, name, value, q.domain) < 0) {
        route_result_free(out);
        return -1;
    }
    return 0;
}

int
router_expn_lines(const struct config *cf, struct str arg, struct buf *lines,
                  struct smtp_reply *err)
{
    struct route_result res = {0};

    if (router_expn(cf, arg, &res, err) < 0)
        return -1;
    for (size_t i = 0; i < res.ntargets; i++)
        if (buf_printf(lines, "%s%s", i ? "\n" : "", res.targets[i].address) < 0)
            break;
    route_result_free(&res);
    return 0;
}
