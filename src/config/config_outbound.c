/*
 * Directives of outbound delivery: the retry schedule, queue lifetime,
 * delay warnings, the resolver, the remote port, and the relay and lmtp
 * actions (smarthost, LMTP server).
 */
#include "base/xmalloc.h"
#include "config/config_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEEKS (86400u * 7)

static int
duration_arg(struct config_parser *p, struct config_args *a, const char *what, unsigned min,
             unsigned max, unsigned *out)
{
    const char *v = NULL;

    if (config_args_value(p, a, "a duration", &v) < 0)
        return -1;
    if (config_parse_duration(v, out) < 0 || *out < min || *out > max)
        return config_fail(p, "%s: invalid duration \"%s\"", what, v);
    return 0;
}

/* retry 5m 10m 20m 40m 1h: the waits after each failed attempt; the last
 * one repeats until the message expires. */
int
config_parse_retry(struct config_parser *p, struct config_args *a)
{
    unsigned v, n = 0;

    while (config_args_peek(a) && n < CONFIG_RETRY_MAX) {
        if (duration_arg(p, a, "retry", 1, WEEKS, &v) < 0)
            return -1;
        p->cf->retry[n++] = v;
    }
    if (n == 0)
        return config_fail(p, "retry: missing a duration");
    if (config_args_end(p, a) < 0)
        return -1;
    p->cf->nretry = n;
    return 0;
}

int
config_parse_expire(struct config_parser *p, struct config_args *a)
{
    return duration_arg(p, a, "expire", 1, 8 * WEEKS, &p->cf->expire) < 0 ? -1
                                                                          : config_args_end(p, a);
}

int
config_parse_delay_warning(struct config_parser *p, struct config_args *a)
{
    if (config_args_accept(a, "off")) {
        p->cf->delay_warning = 0;
        return config_args_end(p, a);
    }
    return duration_arg(p, a, "delay-warning", 1, 8 * WEEKS, &p->cf->delay_warning) < 0
               ? -1
               : config_args_end(p, a);
}

/* relay-handoff DUR | off. A client waits this long at most for the next
 * hop; RFC 5321 4.5.3.2.6 gives it 10 minutes, so anything shorter is
 * safe from its timeout. */
int
config_parse_relay_handoff(struct config_parser *p, struct config_args *a)
{
    if (config_args_accept(a, "off")) {
        p->cf->relay_handoff = 0;
        return config_args_end(p, a);
    }
    return duration_arg(p, a, "relay-handoff", 1, 300, &p->cf->relay_handoff) < 0
               ? -1
               : config_args_end(p, a);
}

/* HOST port N, both required. */
static int
host_port(struct config_parser *p, struct config_args *a, const char *what, char **host, int *port)
{
    const char *h = NULL;
    uint64_t n;

    if (config_args_value(p, a, "a host", &h) < 0)
        return -1;
    if (h[0] == '\0' || strlen(h) > 255)
        return config_fail(p, "%s: invalid host \"%s\"", what, h);
    if (config_args_expect(p, a, "port") < 0 || config_args_number(p, a, 1, 65535, &n) < 0)
        return -1;
    free(*host);
    *host = xstrdup(h);
    *port = (int)n;
    return 0;
}

/* resolver 127.0.0.1 port 5353: ask this server instead of resolv.conf. */
int
config_parse_resolver(struct config_parser *p, struct config_args *a)
{
    if (host_port(p, a, "resolver", &p->cf->resolver, &p->cf->resolver_port) < 0)
        return -1;
    return config_args_end(p, a);
}

/* remote port 25: the port of remote MX hosts. */
int
config_parse_remote(struct config_parser *p, struct config_args *a)
{
    uint64_t n;

    if (config_args_expect(p, a, "port") < 0 || config_args_number(p, a, 1, 65535, &n) < 0)
        return -1;
    p->cf->remote_port = (int)n;
    return config_args_end(p, a);
}

/* tls no|require|verify|smtps */
static int
relay_tls(struct config_parser *p, struct config_args *a, struct action *act)
{
    static const struct {
        const char *word;
        enum tls_policy policy;
    } words[] = {
        {"no", TLS_POLICY_NONE},         {"opportunistic", TLS_POLICY_OPPORTUNISTIC},
        {"require", TLS_POLICY_REQUIRE}, {"verify", TLS_POLICY_VERIFY},
        {"smtps", TLS_POLICY_SMTPS},
    };

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
        if (config_args_accept(a, words[i].word)) {
            act->tls = words[i].policy;
            return 0;
        }
    return config_args_unexpected(p, a,
                                  "\"no\", \"opportunistic\", \"require\", \"verify\" "
                                  "or \"smtps\"");
}

/* action "x" relay [host H [port N]] [tls POLICY] [auth <T>] */
int
config_parse_action_relay(struct config_parser *p, struct config_args *a, struct action *act)
{
    act->kind = ACTION_RELAY;
    act->port = 0; /* MX: the `remote port` */
    if (config_args_accept(a, "host")) {
        const char *h = NULL;
        uint64_t n = 25;

        if (config_args_value(p, a, "a host", &h) < 0)
            return -1;
        act->host = xstrdup(h);
        if (config_args_accept(a, "port") && config_args_number(p, a, 1, 65535, &n) < 0)
            return -1;
        act->port = (int)n;
    }
    if (config_args_accept(a, "tls") && relay_tls(p, a, act) < 0)
        return -1;
    if (config_args_accept(a, "auth")) {
        if (config_args_table(p, a, &act->secrets) < 0)
            return -1;
        if (act->host == NULL)
            return config_fail(p, "action \"%s\": auth needs a smarthost (relay host H)",
                               act->name);
        /* RFC 4954 4: credentials only inside TLS */
        if (act->tls == TLS_POLICY_OPPORTUNISTIC || act->tls == TLS_POLICY_NONE)
            return config_fail(p,
                               "action \"%s\": auth needs `tls require`, `tls verify` or "
                               "`tls smtps` before it",
                               act->name);
    }
    return config_args_end(p, a);
}

/* action "x" lmtp HOST port N (RFC 2033) */
int
config_parse_action_lmtp(struct config_parser *p, struct config_args *a, struct action *act)
{
    act->kind = ACTION_LMTP;
    if (host_port(p, a, "action", &act->host, &act->port) < 0)
        return -1;
    return config_args_end(p, a);
}
