/*
 * The config parser core: the directive table (one row per directive, with
 * its type, limits and the struct config field it sets), the dispatch loop,
 * argument helpers for the handlers in config_directives.c, and the config
 * lifetime (defaults, reference counting, freeing). Validation is complete
 * before a config is returned: callers never see a half-parsed one.
 */
#include "config/config_parse.h"

#include "base/buf.h"
#include "base/xmalloc.h"
#include "config/config_file.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CONFIG_FILE_MAX (1024 * 1024)

enum config_opt_type {
    OPT_CUSTOM,   /* parse() reads the arguments */
    OPT_FLAG,     /* on | off -> bool */
    OPT_COUNT,    /* decimal number -> unsigned or size_t */
    OPT_SIZE,     /* 25M -> uint64_t bytes */
    OPT_DURATION, /* 5m -> unsigned seconds */
};

struct config_option {
    const char *directive;
    const char *key; /* second word ("limit recipients"); NULL if none */
    enum config_opt_type type;
    bool repeatable;
    size_t offset, width; /* field of struct config for the typed options */
    uint64_t min, max;
    int (*parse)(struct config_parser *, struct config_args *);
};

#define FIELD(f) .offset = offsetof(struct config, f), .width = sizeof(((struct config *)0)->f)
#define DAY 86400

/* The grammar at a glance; docs/config.md describes each row. */
static const struct config_option config_options[] = {
    {"hostname", .parse = config_parse_hostname},
    {"spool", .parse = config_parse_spool},
    {"listen", .repeatable = true, .parse = config_parse_listen},
    {"table", .repeatable = true, .parse = config_parse_table},
    {"action", .repeatable = true, .parse = config_parse_action},
    {"match", .repeatable = true, .parse = config_parse_match},
    {"limit", "message-size", OPT_SIZE, FIELD(message_size), .min = 1, .max = UINT64_C(1) << 40},
    {"limit", "recipients", OPT_COUNT, FIELD(max_recipients), .min = 1, .max = 1000000},
    {"limit", "errors", OPT_COUNT, FIELD(max_errors), .min = 1, .max = 1000000},
    {"limit", "connections", OPT_COUNT, FIELD(max_connections), .min = 1, .max = 1000000},
    {"limit", "received-headers", OPT_COUNT, FIELD(max_received), .min = 1, .max = 1000},
    /* RFC 5321 4.5.3.1.6: a text line of 1000 octets must be accepted. */
    {"limit", "line-length", OPT_COUNT, FIELD(line_length), .min = 1000, .max = 1 << 20},
    {"timeout", "command", OPT_DURATION, FIELD(timeout_command), .min = 1, .max = DAY},
    {"timeout", "data", OPT_DURATION, FIELD(timeout_data), .min = 1, .max = DAY},
    {"timeout", "shutdown", OPT_DURATION, FIELD(timeout_shutdown), .min = 0, .max = DAY},
    {"vrfy", NULL, OPT_FLAG, FIELD(vrfy)},
    {"expn", NULL, OPT_FLAG, FIELD(expn)},
    {"terminal-delivery", NULL, OPT_FLAG, FIELD(terminal_delivery)},
    {"utmp-file", .parse = config_parse_utmp},
    {"bare-newline", .parse = config_parse_bare_newline},
    {"retry", .parse = config_parse_retry},
    {"expire", .parse = config_parse_expire},
    {"delay-warning", .parse = config_parse_delay_warning},
    {"relay-handoff", .parse = config_parse_relay_handoff},
    {"resolver", .parse = config_parse_resolver},
    {"remote", .parse = config_parse_remote},
    {"limit", "outbound-connections", OPT_COUNT, FIELD(max_outbound), .min = 1, .max = 100000},
    {"limit", "auth-failures", OPT_COUNT, FIELD(max_auth_failures), .min = 1, .max = 1000},
    {"auth-throttle", NULL, OPT_DURATION, FIELD(auth_throttle), .min = 0, .max = DAY},
    {"limit", "destination-connections", OPT_COUNT, FIELD(max_per_destination), .min = 1,
     .max = 10000},
    {"recipient-delimiter", .parse = config_parse_delimiter},
    {"pki", .repeatable = true, .parse = config_parse_pki},
    {"ca-file", .parse = config_parse_ca_file},
    {"user", .parse = config_parse_user},
    {"limit", "connections-per-ip", OPT_COUNT, FIELD(max_per_ip), .min = 0, .max = 1000000},
    {"limit", "connection-rate", OPT_COUNT, FIELD(connection_rate), .min = 0, .max = 1000000},
    {"limit", "message-rate", OPT_COUNT, FIELD(message_rate), .min = 0, .max = 1000000},
    {"greeting-delay", NULL, OPT_DURATION, FIELD(greeting_delay), .min = 0, .max = 300},
    {"sync", .parse = config_parse_sync},
};

#define NOPTIONS (sizeof(config_options) / sizeof(config_options[0]))
_Static_assert(NOPTIONS <= CONFIG_DIRECTIVES_MAX, "grow CONFIG_DIRECTIVES_MAX");

int
config_fail(struct config_parser *p, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (p->errlen == 0)
        return -1;
    n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, p->lineno);
    if (n >= 0 && (size_t)n < p->errlen) {
        va_start(ap, fmt);
        vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    /* Exactly one line, whatever bytes the file or its name holds. */
    for (char *c = p->err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return -1;
}

const struct config_token *
config_args_peek(const struct config_args *a)
{
    return a->pos < a->line->ntokens ? &a->line->tokens[a->pos] : NULL;
}

bool
config_args_accept(struct config_args *a, const char *kw)
{
    const struct config_token *t = config_args_peek(a);

    if (t == NULL || t->kind != CONFIG_TOKEN_WORD || strcmp(t->text, kw) != 0)
        return false;
    a->pos++;
    return true;
}

int
config_args_unexpected(struct config_parser *p, struct config_args *a, const char *what)
{
    const struct config_token *t = config_args_peek(a);

    if (t == NULL)
        return config_fail(p, "%s: missing %s", a->what, what);
    if (t->kind == CONFIG_TOKEN_TABLE)
        return config_fail(p, "%s: expected %s, found <%s>", a->what, what, t->text);
    return config_fail(p, "%s: expected %s, found \"%s\"", a->what, what, t->text);
}

int
config_args_expect(struct config_parser *p, struct config_args *a, const char *kw)
{
    char what[64];

    if (config_args_accept(a, kw))
        return 0;
    snprintf(what, sizeof(what), "\"%s\"", kw);
    return config_args_unexpected(p, a, what);
}

int
config_args_value(struct config_parser *p, struct config_args *a, const char *what,
                  const char **out)
{
    const struct config_token *t = config_args_peek(a);

    if (t == NULL || t->kind == CONFIG_TOKEN_TABLE)
        return config_args_unexpected(p, a, what);
    *out = t->text;
    a->pos++;
    return 0;
}

int
config_args_table(struct config_parser *p, struct config_args *a, struct table **out)
{
    const struct config_token *t = config_args_peek(a);

    if (t == NULL || t->kind != CONFIG_TOKEN_TABLE)
        return config_args_unexpected(p, a, "a <table>");
    *out = config_find_table(p->cf, t->text);
    if (*out == NULL)
        return config_fail(p, "%s: undefined table <%s>", a->what, t->text);
    a->pos++;
    return 0;
}

int
config_args_end(struct config_parser *p, struct config_args *a)
{
    const struct config_token *t = config_args_peek(a);

    if (t == NULL)
        return 0;
    if (t->kind == CONFIG_TOKEN_TABLE)
        return config_fail(p, "%s: unexpected extra argument <%s>", a->what, t->text);
    return config_fail(p, "%s: unexpected extra argument \"%s\"", a->what, t->text);
}

int
config_args_number(struct config_parser *p, struct config_args *a, uint64_t min, uint64_t max,
                   uint64_t *out)
{
    const char *s = NULL;

    if (config_args_value(p, a, "a number", &s) < 0)
        return -1;
    if (config_parse_u64(s, out) < 0)
        return config_fail(p, "%s: invalid number \"%s\"", a->what, s);
    if (*out < min || *out > max)
        return config_fail(p, "%s: %s is out of range (%llu-%llu)", a->what, s,
                           (unsigned long long)min, (unsigned long long)max);
    return 0;
}

/* The directory part of the config file name, resolved once. */
static const char *
config_dir(struct config_parser *p, const char *path)
{
    const char *slash = strrchr(p->name, '/');
    char *dir;

    if (p->dir)
        return p->dir;
    if (slash == NULL)
        dir = xstrdup(".");
    else
        dir = xstrndup(p->name, slash == p->name ? 1 : (size_t)(slash - p->name));
    p->dir = realpath(dir, NULL);
    if (p->dir == NULL)
        config_fail(p, "cannot resolve \"%s\" against directory \"%s\": %s", path, dir,
                    strerror(errno));
    free(dir);
    return p->dir;
}

/* Lexically drops "." and "x/.." components of an absolute path, so logs
 * show /srv/var/spool rather than /srv/etc/../var/spool. */
static void
path_normalize(char *path)
{
    char *out = path, *in = path;

    while (*in) {
        char *seg = in + 1, *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);

        if (len == 0 || (len == 1 && seg[0] == '.')) {
            /* "//" or "/.": nothing to keep */
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > path && *--out != '/')
                ;
        } else {
            memmove(out, in, len + 1);
            out += len + 1;
        }
        in = seg + len;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

char *
config_resolve_path(struct config_parser *p, const char *path)
{
    const char *dir;
    size_t n;
    char *out;

    if (path[0] == '/')
        return xstrdup(path);
    dir = config_dir(p, path);
    if (dir == NULL)
        return NULL;
    n = strlen(dir) + 1 + strlen(path) + 1;
    out = xmalloc(n);
    snprintf(out, n, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", path);
    path_normalize(out);
    return out;
}

static void
store_uint(struct config *cf, const struct config_option *o, uint64_t v)
{
    char *field = (char *)cf + o->offset;

    /* The typed fields are unsigned, size_t, uint64_t or bool (see FIELD). */
    if (o->type == OPT_FLAG) {
        bool b = v != 0;
        memcpy(field, &b, sizeof(b));
    } else if (o->width == sizeof(unsigned)) {
        unsigned u = (unsigned)v;
        memcpy(field, &u, sizeof(u));
    } else {
        memcpy(field, &v, sizeof(v));
    }
}

static int
parse_flag(struct config_parser *p, struct config_args *a, uint64_t *v)
{
    if (config_args_accept(a, "on"))
        *v = 1;
    else if (config_args_accept(a, "off"))
        *v = 0;
    else
        return config_args_unexpected(p, a, "\"on\" or \"off\"");
    return 0;
}

/* A SIZE or DURATION value, range-checked against the row. */
static int
parse_units(struct config_parser *p, struct config_args *a, const struct config_option *o,
            uint64_t *v)
{
    const char *s = NULL;
    unsigned secs;

    if (config_args_value(p, a, o->type == OPT_SIZE ? "a size" : "a duration", &s) < 0)
        return -1;
    if (o->type == OPT_SIZE && config_parse_size(s, v) < 0)
        return config_fail(p, "%s: invalid size \"%s\" (bytes, or with K, M, G)", a->what, s);
    if (o->type == OPT_DURATION) {
        if (config_parse_duration(s, &secs) < 0)
            return config_fail(p, "%s: invalid duration \"%s\" (seconds, or with s, m, h, d)",
                               a->what, s);
        *v = secs;
    }
    if (*v < o->min || *v > o->max)
        return config_fail(p, "%s: %s is out of range (%llu-%llu%s)", a->what, s,
                           (unsigned long long)o->min, (unsigned long long)o->max,
                           o->type == OPT_SIZE ? " bytes" : " seconds");
    return 0;
}

static int
parse_typed(struct config_parser *p, struct config_args *a, const struct config_option *o)
{
    uint64_t v = 0;
    int r;

    if (o->type == OPT_FLAG)
        r = parse_flag(p, a, &v);
    else if (o->type == OPT_COUNT)
        r = config_args_number(p, a, o->min, o->max, &v);
    else
        r = parse_units(p, a, o, &v);
    if (r < 0 || config_args_end(p, a) < 0)
        return -1;
    store_uint(p->cf, o, v);
    return 0;
}

/* The row for the line's directive (and key); errors name unknown ones. */
static const struct config_option *
find_option(struct config_parser *p, struct config_args *a)
{
    const struct config_token *d = &a->line->tokens[0], *k;
    bool known = false;

    if (d->kind != CONFIG_TOKEN_WORD) {
        config_fail(p, "expected a directive, found %s%s%s",
                    d->kind == CONFIG_TOKEN_TABLE ? "<" : "\"", d->text,
                    d->kind == CONFIG_TOKEN_TABLE ? ">" : "\"");
        return NULL;
    }
    k = a->line->ntokens > 1 ? &a->line->tokens[1] : NULL;
    for (size_t i = 0; i < NOPTIONS; i++) {
        const struct config_option *o = &config_options[i];

        if (strcmp(o->directive, d->text) != 0)
            continue;
        known = true;
        if (o->key == NULL || (k && k->kind == CONFIG_TOKEN_WORD && strcmp(o->key, k->text) == 0))
            return o;
    }
    if (!known)
        config_fail(p, "unknown directive \"%s\"", d->text);
    else if (k == NULL)
        config_fail(p, "%s: missing name of the %s", d->text, d->text);
    else
        config_fail(p, "%s: unknown %s \"%s\"", d->text, d->text, k->text);
    return NULL;
}

static int
config_dispatch(struct config_parser *p, const struct config_line *line)
{
    struct config_args a = {.line = line, .pos = 1};
    const struct config_option *o = find_option(p, &a);
    char what[64];
    size_t idx;

    if (o == NULL)
        return -1;
    if (o->key) {
        snprintf(what, sizeof(what), "%s %s", o->directive, o->key);
        a.pos = 2;
    } else {
        snprintf(what, sizeof(what), "%s", o->directive);
    }
    a.what = what;
    idx = (size_t)(o - config_options);
    if (!o->repeatable && p->seen[idx])
        return config_fail(p, "duplicate \"%s\" (first at line %d)", what, p->seen[idx]);
    p->seen[idx] = p->lineno;
    return o->parse ? o->parse(p, &a) : parse_typed(p, &a, o);
}

static void
config_defaults(struct config *cf)
{
    cf->refs = 1;
    if (gethostname(cf->hostname, sizeof(cf->hostname)) < 0 || cf->hostname[0] == '\0')
        snprintf(cf->hostname, sizeof(cf->hostname), "localhost");
    cf->hostname[sizeof(cf->hostname) - 1] = '\0';
    cf->spool = xstrdup("/var/spool/petrel");
    cf->utmp_file = xstrdup("/var/run/utmp");
    cf->message_size = UINT64_C(25) << 20;
    cf->max_recipients = 1000;
    cf->max_errors = 10;
    cf->max_connections = 1000;
    cf->max_received = 100;
    cf->line_length = 8192;
    cf->timeout_command = 300; /* RFC 5321 4.5.3.2.7: at least 5 minutes */
    cf->timeout_data = 180;    /* RFC 5321 4.5.3.2.5/6: 3 minutes per data block */
    cf->timeout_shutdown = 30;
    cf->bare_newline = BARE_NEWLINE_NORMALIZE;
    cf->recipient_delimiter = '+';
    /* RFC 5321 4.5.4.1: retry after at least 30 minutes is the norm; the
     * first retries come sooner, as in the anchors, then back off. */
    static const unsigned retry[] = {300, 600, 1200, 2400, 3600, 7200, 14400};
    memcpy(cf->retry, retry, sizeof(retry));
    cf->nretry = sizeof(retry) / sizeof(retry[0]);
    cf->expire = 5 * 86400; /* RFC 5321 4.5.4.1: give up after 4-5 days */
    cf->remote_port = 25;
    cf->relay_handoff = 10;
    cf->max_outbound = 100;
    cf->max_per_destination = 20;
    cf->max_auth_failures = 3;
    cf->auth_throttle = 300;
    cf->max_per_ip = 50;
    cf->sync = SYNC_METHOD_FILESYSTEM;
}

static void
config_free(struct config *cf)
{
    for (size_t i = 0; i < cf->ntables; i++)
        table_free(cf->tables[i]);
    for (size_t i = 0; i < cf->nactions; i++) {
        free(cf->actions[i].name);
        free(cf->actions[i].maildir);
        free(cf->actions[i].host);
    }
    for (size_t i = 0; i < cf->nrules; i++)
        free(cf->rules[i].domain);
    for (size_t i = 0; i < cf->npkis; i++)
        config_pki_free(cf->pkis[i]);
    free(cf->pkis);
    free(cf->ca_file);
    free(cf->user);
    free(cf->tables);
    free(cf->actions);
    free(cf->rules);
    free(cf->listens);
    free(cf->spool);
    free(cf->utmp_file);
    free(cf->resolver);
    free(cf->path);
    free(cf);
}

struct config *
config_ref(struct config *cf)
{
    /* Atomic: worker threads may hold references too. */
    __atomic_add_fetch(&cf->refs, 1, __ATOMIC_RELAXED);
    return cf;
}

void
config_unref(struct config *cf)
{
    if (cf && __atomic_sub_fetch(&cf->refs, 1, __ATOMIC_ACQ_REL) == 0)
        config_free(cf);
}

/* Checks that need the whole file, then points rules at their actions. */
static int
config_finish(struct config_parser *p)
{
    struct config *cf = p->cf;

    if (cf->nlistens == 0)
        return config_fail(p, "no \"listen\" directive (at least one is required)");
    /* Actions are an array that grew while parsing: pointers only now. */
    for (size_t i = 0; i < cf->nrules; i++)
        cf->rules[i].action = &cf->actions[p->rule_actions[i]];
    return 0;
}

static int
config_parse_lines(struct config_parser *p, struct str text)
{
    struct config_lexer lx;
    struct config_line line;
    char why[128];
    int r;

    config_lexer_init(&lx, text);
    while ((r = config_lexer_next(&lx, &line, why, sizeof(why))) > 0) {
        p->lineno = line.lineno;
        r = config_dispatch(p, &line);
        config_line_clear(&line);
        if (r < 0)
            return -1;
    }
    p->lineno = lx.lineno;
    if (r < 0)
        return config_fail(p, "%s", why);
    return config_finish(p);
}

static struct config *
config_parse_text(const char *name, struct str text, char *err, size_t errlen)
{
    struct config_parser p = {.name = name, .err = err, .errlen = errlen};
    int r;

    p.cf = xcalloc(1, sizeof(*p.cf));
    config_defaults(p.cf);
    p.cf->path = xstrdup(name);
    r = config_parse_lines(&p, text);
    free(p.dir);
    free(p.rule_actions);
    if (r < 0) {
        config_free(p.cf);
        return NULL;
    }
    return p.cf;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
    struct config_parser p = {.name = path, .err = err, .errlen = errlen};
    struct config *cf;
    struct buf text;
    char why[128];

    if (config_file_read(path, CONFIG_FILE_MAX, &text, why, sizeof(why)) < 0) {
        config_fail(&p, "cannot read config: %s", why);
        buf_free(&text);
        return NULL;
    }
    cf = config_parse_text(path, buf_str(&text), err, errlen);
    buf_free(&text);
    return cf;
}

struct config *
config_parse_string(const char *name, const char *text, char *err, size_t errlen)
{
    return config_parse_text(name, str_cstr(text ? text : ""), err, errlen);
}
