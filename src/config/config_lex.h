/*
 * The config tokenizer: splits the text into lines of tokens. Words, "quoted
 * strings" (escapes \" and \\ only), <table> references, and "#" comments to
 * the end of the line. One directive per line, so a string never spans
 * lines. Internal to src/config.
 */
#ifndef PETREL_CONFIG_LEX_H
#define PETREL_CONFIG_LEX_H

#include "base/str.h"

#include <stddef.h>

enum config_token_kind {
    CONFIG_TOKEN_WORD,   /* directive names, keywords, numbers, addresses */
    CONFIG_TOKEN_STRING, /* "quoted string", quotes and escapes removed */
    CONFIG_TOKEN_TABLE,  /* <name>, brackets removed */
};

struct config_token {
    enum config_token_kind kind;
    char *text; /* NUL-terminated; owned by the line */
};

#define CONFIG_TOKENS_MAX 32 /* longer lines are errors, not truncations */

struct config_line {
    int lineno;
    size_t ntokens;
    struct config_token tokens[CONFIG_TOKENS_MAX];
};

struct config_lexer {
    struct str rest; /* not yet read */
    int lineno;      /* of the last line read */
};

/* text must stay valid while the lexer is used. */
void config_lexer_init(struct config_lexer *lx, struct str text);
/*
 * Reads the next line holding at least one token into line (clear it with
 * config_line_clear). Returns 1, 0 at the end of the text, or -1 with the
 * problem in why (lx->lineno is the line).
 */
int config_lexer_next(struct config_lexer *lx, struct config_line *line, char *why, size_t whylen);
void config_line_clear(struct config_line *line);

#endif
