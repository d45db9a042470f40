/*
 * The daemon's configuration: parsed and validated in full before anything
 * uses it (validate first, then swap on SIGHUP). Sessions hold a reference
 * to the config they started with, so a reload never changes a session's
 * rules mid-transaction. The grammar is documented in docs/config.md.
 */
#ifndef PETREL_CONFIG_H
#define PETREL_CONFIG_H

#include "base/sync_group.h"
#include "config/table.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum action_kind {
    ACTION_MAILDIR, /* action "x" maildir "/var/mail/%{user}" users <t> aliases <t> */
    ACTION_RELAY,   /* action "x" relay [host H [port N]]: MX lookup, or a smarthost */
    ACTION_LMTP,    /* action "x" lmtp HOST port N (RFC 2033) */
    ACTION_ATRN,    /* action "x" atrn <T>: held until its owner pulls it (RFC 2645) */
};

/* Outbound TLS policy of a relay action (RFC 3207 as a client). */
enum tls_policy {
    TLS_POLICY_OPPORTUNISTIC, /* default: STARTTLS when offered, any certificate */
    TLS_POLICY_NONE,          /* `tls no`: never STARTTLS */
    TLS_POLICY_REQUIRE,       /* `tls require`: STARTTLS or defer, any certificate */
    TLS_POLICY_VERIFY,        /* `tls verify`: STARTTLS, chain and host name checked */
    TLS_POLICY_SMTPS,         /* `tls smtps`: implicit TLS (RFC 8314), verified */
};

struct action {
    char *name;
    enum action_kind kind;
    char *maildir;         /* path template: %{user} = mailbox name */
    struct table *users;   /* borrowed from config->tables; NULL = every local part is a user;
                            * atrn: "user: domain, domain" who may pull what */
    struct table *aliases; /* borrowed; may be NULL */
    char *host;            /* relay: smarthost or NULL for MX; lmtp: server */
    int port;              /* 0 = `remote port` */
    enum tls_policy tls;   /* relay: `tls no|require|verify|smtps` */
    struct table *secrets; /* relay: `auth <T>`: "host: user:password"; borrowed */
};

enum match_from {
    MATCH_FROM_ANY,   /* default, and `from any` */
    MATCH_FROM_LOCAL, /* the local sendmail command, never a network peer */
    MATCH_FROM_TABLE, /* `from src <table>` */
    MATCH_FROM_NET,   /* `from src 192.0.2.0/24` */
    MATCH_FROM_AUTH,  /* `from auth`: reserved for AUTH */
};

enum match_for {
    MATCH_FOR_ANY,          /* `for any` */
    MATCH_FOR_DOMAIN,       /* `for domain "example.org"` */
    MATCH_FOR_DOMAIN_TABLE, /* `for domain <table>` */
};

/* Rules are tried in order; the first whose from and for fit decides. */
struct match_rule {
    enum match_from from;
    struct table *from_table;  /* borrowed; MATCH_FROM_TABLE */
    struct table_net from_net; /* MATCH_FROM_NET */
    enum match_for for_;
    char *domain;               /* lowercased; MATCH_FOR_DOMAIN */
    struct table *domain_table; /* borrowed; MATCH_FOR_DOMAIN_TABLE */
    struct action *action;      /* borrowed from config->actions */
    int line;                   /* in the config file, for logs */
};

/* pki "name" cert "FILE" key "FILE": a certificate for TLS listeners.
 * The OpenSSL server context is built while the config loads, so a bad
 * certificate is a config error and SIGHUP picks up renewed files. */
struct config_pki {
    char *name;
    char *cert, *key;       /* absolute paths */
    struct ssl_ctx_st *ctx; /* SSL_CTX: TLS 1.2+, owned by the config */
};

struct config_listen {
    char addr[64]; /* numeric IPv4 or IPv6 */
    int port;
    bool submission;          /* `submission`: RFC 6409, AUTH before MAIL */
    struct table *auth_users; /* borrowed; `auth [<T>]`: offer AUTH; NULL = not offered */
    bool auth_insecure;       /* `insecure`: AUTH without TLS */
    struct config_pki *pki;   /* borrowed; `tls pki "x"` or `smtps pki "x"`; NULL = no TLS */
    bool smtps;               /* `smtps`: implicit TLS from the first byte (RFC 8314) */
};

enum bare_newline_policy {
    BARE_NEWLINE_NORMALIZE, /* bare CR / LF in DATA become CRLF inside the message */
    BARE_NEWLINE_REJECT,    /* message refused with 554 5.6.0 */
};

#define CONFIG_RETRY_MAX 16

struct config {
    int refs;
    char *path;
    char hostname[256]; /* default: gethostname() */
    char *spool;        /* default "/var/spool/petrel" */

    struct config_listen *listens; /* at least one */
    size_t nlistens;
    struct table **tables;
    size_t ntables;
    struct action *actions;
    size_t nactions;
    struct match_rule *rules;
    size_t nrules;
    struct config_pki **pkis; /* pointers: listeners borrow them */
    size_t npkis;
    char *ca_file; /* ca-file "PATH" for `tls verify`; NULL = the system's store */
    char *user;    /* user NAME: drop to it after binding; NULL = stay as started */

    uint64_t message_size;     /* limit message-size, default 25M */
    unsigned max_recipients;   /* limit recipients, default 1000 */
    unsigned max_errors;       /* limit errors, default 10 per session */
    unsigned max_connections;  /* limit connections, default 1000 */
    unsigned max_received;     /* limit received-headers, default 100 */
    size_t line_length;        /* limit line-length, default 8192, DATA text lines */
    unsigned timeout_command;  /* timeout command, seconds, default 300 */
    unsigned timeout_data;     /* timeout data, seconds, default 180 */
    unsigned timeout_shutdown; /* timeout shutdown, seconds, default 30 */

    bool vrfy;                             /* vrfy on|off, default off (252) */
    bool expn;                             /* expn on|off, default off (502) */
    bool terminal_delivery;                /* terminal-delivery on|off, default off */
    char *utmp_file;                       /* utmp-file "PATH", default "/var/run/utmp" */
    enum bare_newline_policy bare_newline; /* bare-newline normalize|reject */
    char recipient_delimiter;              /* recipient-delimiter "+", '\0' = off */

    /* outbound delivery */
    unsigned retry[CONFIG_RETRY_MAX]; /* retry 5m 10m 20m 40m 1h 2h 4h */
    unsigned nretry;
    unsigned expire;        /* expire 5d: then bounce */
    unsigned delay_warning; /* delay-warning 4h | off (0, default) */
    unsigned relay_handoff; /* relay-handoff 10s | off (0): forward while the client waits */
    char *resolver;         /* resolver HOST port N; NULL = /etc/resolv.conf */
    int resolver_port;
    int remote_port;              /* remote port 25 */
    unsigned max_outbound;        /* limit outbound-connections 20 */
    unsigned max_per_destination; /* limit destination-connections 4 */
    unsigned max_auth_failures;   /* limit auth-failures 3: then 421 and throttle */
    unsigned auth_throttle;       /* auth-throttle 5m: refuse that address meanwhile */

    /* abuse resistance (0 = no limit) */
    unsigned max_per_ip;      /* limit connections-per-ip 50 */
    unsigned connection_rate; /* limit connection-rate N: per IP per minute, default 0 */
    unsigned message_rate;    /* limit message-rate N: per IP per minute, default 0 */
    unsigned greeting_delay;  /* greeting-delay 0s: hold the 220, refuse early talkers */

    enum sync_method sync; /* sync files|filesystem, default filesystem */
};

/*
 * Parses and validates path, loading every table it names. Relative paths
 * in it are made absolute against the realpath of path's directory. On
 * success returns a config with refs = 1, owned by the caller. On failure
 * returns NULL and writes exactly one line "FILE:LINE: problem" (no
 * trailing newline) into err; FILE is a table file for problems inside a
 * table, LINE is 0 when the file itself cannot be read.
 */
struct config *config_load(const char *path, char *err, size_t errlen);
/* Same, from a NUL-terminated string (unit tests, fuzzing); name is used in
 * messages and, like path above, to resolve relative paths. */
struct config *config_parse_string(const char *name, const char *text, char *err, size_t errlen);
/* Reference counting is atomic: any thread may take or drop a reference.
 * The last config_unref frees the config with its tables, actions and
 * rules; config_unref(NULL) does nothing. */
struct config *config_ref(struct config *cf);
/* The action called name, or NULL (a recipient queued under a config that
 * a reload has since changed may name one that is gone). */
struct action *config_find_action(const struct config *cf, const char *name);
void config_unref(struct config *cf);

/* Human units: digits, then optionally one of K M G T (powers of 1024,
 * either case): "25M" -> 26214400, "10k", "1G". 0, or -1 on bad syntax or
 * overflow. */
int config_parse_size(const char *s, uint64_t *out);
/* Digits, then optionally s m h d: "30s", "5m", "2h", "1d", bare seconds.
 * 0, or -1 on bad syntax or if the result does not fit. */
int config_parse_duration(const char *s, unsigned *out);

#endif
