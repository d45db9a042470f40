/*
 * What the directive handlers share with the parser core: the parser state,
 * the argument cursor over one line's tokens, and error reporting. Internal
 * to src/config; the public API is config.h.
 */
#ifndef PETREL_CONFIG_PARSE_H
#define PETREL_CONFIG_PARSE_H

#include "config/config.h"
#include "config/config_lex.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_DIRECTIVES_MAX 48 /* size of the duplicate-tracking array */
#define CONFIG_NAME_MAX 64       /* table and action names */

struct config_parser {
    struct config *cf;
    const char *name; /* file name as given, for messages and relative paths */
    char *dir;        /* realpath of name's directory; computed on first use */
    int lineno;
    int seen[CONFIG_DIRECTIVES_MAX]; /* line of each single-valued directive */
    size_t *rule_actions;            /* action index per rule, fixed up at the end */
    char *err;
    size_t errlen;
};

/* The arguments of one directive; pos indexes line->tokens. */
struct config_args {
    const struct config_line *line;
    size_t pos;
    const char *what; /* "listen", "limit recipients": prefix of messages */
};

/* Writes "FILE:LINE: problem" into p->err; returns -1. */
int config_fail(struct config_parser *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The next token, or NULL at the end of the line; does not consume. */
const struct config_token *config_args_peek(const struct config_args *a);
/* True (and consumed) when the next token is the bare word kw. */
bool config_args_accept(struct config_args *a, const char *kw);
/* Consumes the bare word kw, or errors ("missing"/"expected ... found"). */
int config_args_expect(struct config_parser *p, struct config_args *a, const char *kw);
/* The next token's text if it is a word or a string; else an error naming what. */
int config_args_value(struct config_parser *p, struct config_args *a, const char *what,
                      const char **out);
/* The next token as a defined <table>; errors name an undefined one. */
int config_args_table(struct config_parser *p, struct config_args *a, struct table **out);
/* Errors unless every token was consumed. */
int config_args_end(struct config_parser *p, struct config_args *a);
/* Errors with "unexpected X" for the next token (or "missing WHAT"). */
int config_args_unexpected(struct config_parser *p, struct config_args *a, const char *what);

/* path made absolute against the config file's directory; NULL after an error. */
char *config_resolve_path(struct config_parser *p, const char *path);
/* Digits only (no sign, no space), no overflow; 0 or -1. */
int config_parse_u64(const char *s, uint64_t *out);
/* Unsigned decimal number in [min, max]; errors name a->what. */
int config_args_number(struct config_parser *p, struct config_args *a, uint64_t min, uint64_t max,
                       uint64_t *out);

/* Directive handlers, in config_directives.c. */
int config_parse_hostname(struct config_parser *p, struct config_args *a);
int config_parse_spool(struct config_parser *p, struct config_args *a);
int config_parse_utmp(struct config_parser *p, struct config_args *a);
/* Outbound delivery, in config_outbound.c. */
int config_parse_retry(struct config_parser *p, struct config_args *a);
int config_parse_expire(struct config_parser *p, struct config_args *a);
int config_parse_delay_warning(struct config_parser *p, struct config_args *a);
int config_parse_relay_handoff(struct config_parser *p, struct config_args *a);
int config_parse_resolver(struct config_parser *p, struct config_args *a);
int config_parse_remote(struct config_parser *p, struct config_args *a);
int config_parse_action_relay(struct config_parser *p, struct config_args *a, struct action *act);
int config_parse_action_lmtp(struct config_parser *p, struct config_args *a, struct action *act);
int config_parse_listen(struct config_parser *p, struct config_args *a);
int config_parse_table(struct config_parser *p, struct config_args *a);
int config_parse_action(struct config_parser *p, struct config_args *a);
int config_parse_match(struct config_parser *p, struct config_args *a);
int config_parse_bare_newline(struct config_parser *p, struct config_args *a);
int config_parse_sync(struct config_parser *p, struct config_args *a);
int config_parse_delimiter(struct config_parser *p, struct config_args *a);
/* TLS and privileges, in config_pki.c. */
int config_parse_pki(struct config_parser *p, struct config_args *a);
int config_parse_ca_file(struct config_parser *p, struct config_args *a);
int config_parse_user(struct config_parser *p, struct config_args *a);
void config_pki_free(struct config_pki *pki);
/* The next token names a defined pki ("tls pki \"mx\""). */
int config_args_pki(struct config_parser *p, struct config_args *a, struct config_pki **out);

/* Lookups by name over what is defined so far; NULL if absent. */
struct table *config_find_table(const struct config *cf, const char *name);
struct config_pki *config_find_pki(const struct config *cf, const char *name);
/* Names of tables, actions and pkis: letters, digits, - _ . */
bool config_valid_name(const char *s);

#endif
