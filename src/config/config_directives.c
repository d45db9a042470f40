/*
 * Handlers for the directives that are more than one typed value: hostname,
 * spool, listen, table, action, match, bare-newline, recipient-delimiter.
 * Each reads its arguments through the config_args helpers and either
 * changes the config or reports one error; none leaves partial state that
 * config_free could not release.
 */
#include "base/xmalloc.h"
#include "config/config_file.h"
#include "config/config_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool
is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Table and action names: short, and safe to print in logs. */
bool
config_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CONFIG_NAME_MAX)
        return false;
    for (; *s; s++)
        if (!is_alnum(*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

/*
 * A domain name as RFC 5321 4.1.2 writes it: dot-separated labels of
 * letters, digits and hyphens, at most 63 octets each (RFC 1035 2.3.4).
 * Octets >= 0x80 are let through for internationalised names (RFC 6531).
 */
static bool
valid_domain(const char *s)
{
    size_t label = 0, n = strlen(s);

    if (n == 0 || n > 255)
        return false;
    for (; *s; s++) {
        if (*s == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if (is_alnum(*s) || *s == '-' || (unsigned char)*s >= 0x80) {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

struct table *
config_find_table(const struct config *cf, const char *name)
{
    for (size_t i = 0; i < cf->ntables; i++)
        if (strcmp(cf->tables[i]->name, name) == 0)
            return cf->tables[i];
    return NULL;
}

struct action *
config_find_action(const struct config *cf, const char *name)
{
    for (size_t i = 0; i < cf->nactions; i++)
        if (strcmp(cf->actions[i].name, name) == 0)
            return &cf->actions[i];
    return NULL;
}

int
config_parse_hostname(struct config_parser *p, struct config_args *a)
{
    const char *name = NULL;

    if (config_args_value(p, a, "a host name", &name) < 0 || config_args_end(p, a) < 0)
        return -1;
    if (!valid_domain(name) || strlen(name) >= sizeof(p->cf->hostname))
        return config_fail(p, "hostname: invalid host name \"%s\"", name);
    snprintf(p->cf->hostname, sizeof(p->cf->hostname), "%s", name);
    return 0;
}

/* One path argument, resolved against the config file's directory. */
static int
parse_path(struct config_parser *p, struct config_args *a, const char *what, char **dst)
{
    const char *path = NULL;
    char *abs;

    if (config_args_value(p, a, "a path", &path) < 0 || config_args_end(p, a) < 0)
        return -1;
    if (path[0] == '\0')
        return config_fail(p, "%s: empty path", what);
    abs = config_resolve_path(p, path);
    if (abs == NULL)
        return -1;
    free(*dst);
    *dst = abs;
    return 0;
}

int
config_parse_spool(struct config_parser *p, struct config_args *a)
{
    return parse_path(p, a, "spool", &p->cf->spool);
}

int
config_parse_utmp(struct config_parser *p, struct config_args *a)
{
    return parse_path(p, a, "utmp-file", &p->cf->utmp_file);
}

/* Numeric address in canonical form; "localhost" is 127.0.0.1. */
static int
listen_addr(struct config_parser *p, const char *s, char *out, size_t n)
{
    unsigned char bin[16];
    int af = AF_INET;

    if (strcmp(s, "localhost") == 0)
        s = "127.0.0.1";
    if (inet_pton(AF_INET, s, bin) != 1) {
        af = AF_INET6;
        if (inet_pton(AF_INET6, s, bin) != 1)
            return config_fail(p, "listen: invalid address \"%s\" (numeric IPv4 or IPv6)", s);
    }
    if (inet_ntop(af, bin, out, (socklen_t)n) == NULL)
        return config_fail(p, "listen: invalid address \"%s\"", s);
    return 0;
}

/* auth [<T>] [insecure]: the table defaults to <users>. */
static int
listen_auth(struct config_parser *p, struct config_args *a, struct config_listen *l)
{
    const struct config_token *t = config_args_peek(a);

    if (l->auth_users)
        return config_fail(p, "listen: \"auth\" given twice");
    if (t && t->kind == CONFIG_TOKEN_TABLE) {
        if (config_args_table(p, a, &l->auth_users) < 0)
            return -1;
    } else {
        l->auth_users = config_find_table(p->cf, "users");
        if (l->auth_users == NULL)
            return config_fail(p, "listen: auth needs a <table> of users (or a table named "
                                  "\"users\")");
    }
    l->auth_insecure = config_args_accept(a, "insecure");
    return 0;
}

/* Options after the port, in any order: submission, tls pki "x",
 * smtps pki "x", auth [<T>] [insecure]. */
static int
listen_options(struct config_parser *p, struct config_args *a, struct config_listen *l)
{
    while (config_args_peek(a)) {
        bool smtps = false;

        if (config_args_accept(a, "submission")) {
            l->submission = true;
        } else if (config_args_accept(a, "auth")) {
            if (listen_auth(p, a, l) < 0)
                return -1;
        } else if (config_args_accept(a, "tls") || (smtps = config_args_accept(a, "smtps"))) {
            if (l->pki)
                return config_fail(p, "listen: \"tls\" and \"smtps\" given together or twice");
            l->smtps = smtps;
            if (config_args_expect(p, a, "pki") < 0 || config_args_pki(p, a, &l->pki) < 0)
                return -1;
        } else {
            return config_args_end(p, a);
        }
    }
    return 0;
}

int
config_parse_listen(struct config_parser *p, struct config_args *a)
{
    struct config *cf = p->cf;
    struct config_listen l = {0};
    const char *addr = NULL;
    uint64_t port;

    if (config_args_expect(p, a, "on") < 0 || config_args_value(p, a, "an address", &addr) < 0)
        return -1;
    if (listen_addr(p, addr, l.addr, sizeof(l.addr)) < 0)
        return -1;
    if (config_args_expect(p, a, "port") < 0 || config_args_number(p, a, 1, 65535, &port) < 0)
        return -1;
    l.port = (int)port;
    if (listen_options(p, a, &l) < 0)
        return -1;
    /* RFC 4954 4: passwords travel only inside TLS unless the admin says so. */
    if (l.auth_users && !l.auth_insecure && l.pki == NULL)
        return config_fail(p, "listen: auth without TLS: add `tls pki \"NAME\"` (or `insecure` "
                              "to allow passwords in the clear)");
    if (l.submission && l.auth_users == NULL)
        return config_fail(p, "listen: submission needs `auth`");
    for (size_t i = 0; i < cf->nlistens; i++)
        if (strcmp(cf->listens[i].addr, l.addr) == 0 && cf->listens[i].port == l.port)
            return config_fail(p, "listen: duplicate listen on %s port %d", l.addr, l.port);
    cf->listens = xrealloc(cf->listens, (cf->nlistens + 1) * sizeof(*cf->listens));
    cf->listens[cf->nlistens++] = l;
    return 0;
}

/* file:"PATH", file: "PATH" or file:PATH. */
static int
table_source(struct config_parser *p, struct config_args *a, const char **path)
{
    const struct config_token *t = config_args_peek(a);

    if (t && t->kind == CONFIG_TOKEN_WORD && strncmp(t->text, "file:", 5) == 0) {
        a->pos++;
        if (t->text[5] != '\0') {
            *path = t->text + 5;
            return 0;
        }
        return config_args_value(p, a, "a path after file:", path);
    }
    return config_args_unexpected(p, a, "file:\"PATH\"");
}

/* Opening problems are reported at this line, content problems in the table. */
static int
table_open(struct config_parser *p, const char *name, const char *path)
{
    struct stat st;
    struct table *t;

    if (stat(path, &st) < 0)
        return config_fail(p, "table \"%s\": cannot open \"%s\": %s", name, path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return config_fail(p, "table \"%s\": \"%s\" is not a regular file", name, path);
    t = table_load(name, path, p->err, p->errlen);
    if (t == NULL)
        return -1;
    p->cf->tables = xrealloc(p->cf->tables, (p->cf->ntables + 1) * sizeof(*p->cf->tables));
    p->cf->tables[p->cf->ntables++] = t;
    return 0;
}

int
config_parse_table(struct config_parser *p, struct config_args *a)
{
    const char *name = NULL, *path = NULL;
    char *abs;
    int r;

    if (config_args_value(p, a, "a table name", &name) < 0)
        return -1;
    if (!config_valid_name(name))
        return config_fail(p, "table: invalid name \"%s\" (letters, digits, - _ .)", name);
    if (config_find_table(p->cf, name))
        return config_fail(p, "table: duplicate table \"%s\"", name);
    if (table_source(p, a, &path) < 0 || config_args_end(p, a) < 0)
        return -1;
    if (path[0] == '\0')
        return config_fail(p, "table \"%s\": empty path", name);
    abs = config_resolve_path(p, path);
    if (abs == NULL)
        return -1;
    r = table_open(p, name, abs);
    free(abs);
    return r;
}

/* The template must name the mailbox, and %{user} is its only expansion. */
static int
check_maildir_template(struct config_parser *p, const char *name, const char *path)
{
    bool has_user = false;

    for (const char *s = strchr(path, '%'); s; s = strchr(s + 1, '%')) {
        if (strncmp(s, "%{user}", 7) != 0)
            return config_fail(p, "action \"%s\": unknown expansion in \"%s\" (only %%{user})",
                               name, path);
        has_user = true;
    }
    if (!has_user)
        return config_fail(p, "action \"%s\": maildir path \"%s\" must contain %%{user}", name,
                           path);
    return 0;
}

/* [users <T>] [aliases <T>], each at most once, in either order. */
static int
maildir_options(struct config_parser *p, struct config_args *a, struct action *act)
{
    while (config_args_peek(a)) {
        struct table **slot;
        const char *kw = config_args_peek(a)->text;

        if (config_args_accept(a, "users"))
            slot = &act->users;
        else if (config_args_accept(a, "aliases"))
            slot = &act->aliases;
        else
            return config_args_end(p, a);
        if (*slot)
            return config_fail(p, "%s: \"%s\" given twice", a->what, kw);
        if (config_args_table(p, a, slot) < 0)
            return -1;
    }
    return 0;
}

static int
parse_maildir(struct config_parser *p, struct config_args *a, struct action *act)
{
    const char *path = NULL;

    if (config_args_value(p, a, "a maildir path", &path) < 0)
        return -1;
    if (check_maildir_template(p, act->name, path) < 0 || maildir_options(p, a, act) < 0)
        return -1;
    act->kind = ACTION_MAILDIR;
    act->maildir = config_resolve_path(p, path);
    return act->maildir ? 0 : -1;
}

int
config_parse_action(struct config_parser *p, struct config_args *a)
{
    struct action act = {0};
    const char *name = NULL;
    int r;

    if (config_args_value(p, a, "an action name", &name) < 0)
        return -1;
    if (!config_valid_name(name))
        return config_fail(p, "action: invalid name \"%s\" (letters, digits, - _ .)", name);
    if (config_find_action(p->cf, name))
        return config_fail(p, "action: duplicate action \"%s\"", name);
    act.name = xstrdup(name);
    if (config_args_accept(a, "maildir")) {
        r = parse_maildir(p, a, &act);
    } else if (config_args_accept(a, "relay")) {
        r = config_parse_action_relay(p, a, &act);
    } else if (config_args_accept(a, "lmtp")) {
        r = config_parse_action_lmtp(p, a, &act);
    } else if (config_args_accept(a, "atrn")) {
        /* RFC 2645: mail kept for on-demand relay; <T> says who pulls which domains */
        act.kind = ACTION_ATRN;
        r = config_args_table(p, a, &act.users) < 0 ? -1 : config_args_end(p, a);
    } else {
        r = config_args_unexpected(p, a, "\"maildir\", \"relay\", \"lmtp\" or \"atrn\"");
    }
    if (r < 0) {
        free(act.name);
        free(act.maildir);
        free(act.host);
        return -1;
    }
    p->cf->actions = xrealloc(p->cf->actions, (p->cf->nactions + 1) * sizeof(*p->cf->actions));
    p->cf->actions[p->cf->nactions++] = act;
    return 0;
}

/* from src <T> | from src CIDR; network tables are checked here, at load. */
static int
match_from_src(struct config_parser *p, struct config_args *a, struct match_rule *r)
{
    const struct config_token *t = config_args_peek(a);
    const char *net = NULL;

    if (t && t->kind == CONFIG_TOKEN_TABLE) {
        if (config_args_table(p, a, &r->from_table) < 0)
            return -1;
        r->from = MATCH_FROM_TABLE;
        return table_parse_nets(r->from_table, p->err, p->errlen);
    }
    if (config_args_value(p, a, "a <table> or network", &net) < 0)
        return -1;
    if (table_net_parse(net, &r->from_net) < 0)
        return config_fail(p, "match: invalid network \"%s\"", net);
    r->from = MATCH_FROM_NET;
    return 0;
}

static int
match_from(struct config_parser *p, struct config_args *a, struct match_rule *r)
{
    if (config_args_accept(a, "any"))
        r->from = MATCH_FROM_ANY;
    else if (config_args_accept(a, "local"))
        r->from = MATCH_FROM_LOCAL;
    else if (config_args_accept(a, "auth"))
        r->from = MATCH_FROM_AUTH;
    else if (config_args_accept(a, "src"))
        return match_from_src(p, a, r);
    else
        return config_args_unexpected(p, a, "\"any\", \"local\", \"src\" or \"auth\" after from");
    return 0;
}

static int
match_for(struct config_parser *p, struct config_args *a, struct match_rule *r)
{
    const struct config_token *t;
    const char *d = NULL;

    if (config_args_accept(a, "any")) {
        r->for_ = MATCH_FOR_ANY;
        return 0;
    }
    if (!config_args_accept(a, "domain"))
        return config_args_unexpected(p, a, "\"any\" or \"domain\" after for");
    t = config_args_peek(a);
    if (t && t->kind == CONFIG_TOKEN_TABLE) {
        r->for_ = MATCH_FOR_DOMAIN_TABLE;
        return config_args_table(p, a, &r->domain_table);
    }
    if (config_args_value(p, a, "a domain", &d) < 0)
        return -1;
    if (!valid_domain(d))
        return config_fail(p, "match: invalid domain \"%s\"", d);
    r->for_ = MATCH_FOR_DOMAIN;
    r->domain = xstrdup(d);
    config_ascii_lower(r->domain);
    return 0;
}

static int
match_action(struct config_parser *p, struct config_args *a, size_t *idx)
{
    const char *name = NULL;
    const struct action *act;

    if (config_args_value(p, a, "an action name", &name) < 0)
        return -1;
    act = config_find_action(p->cf, name);
    if (act == NULL)
        return config_fail(p, "match: undefined action \"%s\"", name);
    *idx = (size_t)(act - p->cf->actions);
    return 0;
}

/* One "from", "for" or "action" clause; each may appear once. */
static int
match_clause(struct config_parser *p, struct config_args *a, struct match_rule *r, bool seen[3],
             size_t *action_idx)
{
    static const char *const clauses[3] = {"from", "for", "action"};

    for (int i = 0; i < 3; i++) {
        if (!config_args_accept(a, clauses[i]))
            continue;
        if (seen[i])
            return config_fail(p, "match: \"%s\" given twice", clauses[i]);
        seen[i] = true;
        if (i == 0)
            return match_from(p, a, r);
        return i == 1 ? match_for(p, a, r) : match_action(p, a, action_idx);
    }
    return config_args_unexpected(p, a, "\"from\", \"for\" or \"action\"");
}

static int
match_add(struct config_parser *p, const struct match_rule *r, size_t action_idx)
{
    struct config *cf = p->cf;

    cf->rules = xrealloc(cf->rules, (cf->nrules + 1) * sizeof(*cf->rules));
    p->rule_actions = xrealloc(p->rule_actions, (cf->nrules + 1) * sizeof(*p->rule_actions));
    p->rule_actions[cf->nrules] = action_idx;
    cf->rules[cf->nrules++] = *r;
    return 0;
}

int
config_parse_match(struct config_parser *p, struct config_args *a)
{
    struct match_rule r = {.from = MATCH_FROM_ANY, .line = p->lineno};
    bool seen[3] = {false, false, false}; /* from, for, action */
    size_t action_idx = 0;

    while (config_args_peek(a))
        if (match_clause(p, a, &r, seen, &action_idx) < 0)
            goto fail;
    if (!seen[1] || !seen[2]) {
        config_fail(p, "match: missing \"%s\"", seen[1] ? "action" : "for");
        goto fail;
    }
    /* Nothing relays unless a rule says so: an implicit open relay is refused. */
    if (r.for_ == MATCH_FOR_ANY && !seen[0]) {
        config_fail(p, "match: \"for any\" without \"from\" would accept mail for every "
                       "domain from anyone (an open relay); write \"from any\" if that is "
                       "really meant");
        goto fail;
    }
    return match_add(p, &r, action_idx);
fail:
    free(r.domain);
    return -1;
}

int
config_parse_bare_newline(struct config_parser *p, struct config_args *a)
{
    if (config_args_accept(a, "normalize"))
        p->cf->bare_newline = BARE_NEWLINE_NORMALIZE;
    else if (config_args_accept(a, "reject"))
        p->cf->bare_newline = BARE_NEWLINE_REJECT;
    else
        return config_args_unexpected(p, a, "\"normalize\" or \"reject\"");
    return config_args_end(p, a);
}

int
config_parse_sync(struct config_parser *p, struct config_args *a)
{
    if (config_args_accept(a, "filesystem"))
        p->cf->sync = SYNC_METHOD_FILESYSTEM;
    else if (config_args_accept(a, "files"))
        p->cf->sync = SYNC_METHOD_FILES;
    else
        return config_args_unexpected(p, a, "\"files\" or \"filesystem\"");
    return config_args_end(p, a);
}

/* One punctuation character that cannot already mean something in an address. */
int
config_parse_delimiter(struct config_parser *p, struct config_args *a)
{
    const char *d = NULL;

    if (config_args_accept(a, "none")) {
        p->cf->recipient_delimiter = '\0';
        return config_args_end(p, a);
    }
    if (config_args_value(p, a, "a delimiter or \"none\"", &d) < 0 || config_args_end(p, a) < 0)
        return -1;
    if (strlen(d) != 1 || d[0] <= ' ' || d[0] >= 0x7f || is_alnum(d[0]) ||
        strchr("@\"\\%!/.()<>[],;:", d[0]))
        return config_fail(p,
                           "recipient-delimiter: invalid delimiter \"%s\" (one character "
                           "such as \"+\" or \"-\")",
                           d);
    p->cf->recipient_delimiter = d[0];
    return 0;
}
