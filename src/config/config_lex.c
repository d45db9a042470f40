/*
 * Config tokenizer; see config_lex.h. Works on explicit lengths, so a NUL
 * byte in a file is reported instead of silently ending the text.
 */
#include "config/config_lex.h"

#include "base/buf.h"
#include "base/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>

struct lex_cursor {
    struct str s; /* the rest of the line */
    char *why;
    size_t whylen;
};

static bool
is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static bool
is_control(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

static int
lex_fail(struct lex_cursor *c, const char *problem)
{
    snprintf(c->why, c->whylen, "%s", problem);
    return -1;
}

static void
cursor_skip(struct lex_cursor *c, size_t n)
{
    c->s.ptr += n;
    c->s.len -= n;
}

/* After the opening quote; consumes the closing one. */
static int
lex_string(struct lex_cursor *c, struct buf *out)
{
    while (c->s.len) {
        char ch = c->s.ptr[0];

        if (ch == '"') {
            cursor_skip(c, 1);
            return 0;
        }
        if (ch == '\\') {
            if (c->s.len < 2 || (c->s.ptr[1] != '"' && c->s.ptr[1] != '\\'))
                return lex_fail(c, "unknown escape in string (only \\\" and \\\\)");
            ch = c->s.ptr[1];
            cursor_skip(c, 1);
        } else if (is_control(ch) && ch != '\t') {
            return lex_fail(c, "control character in string");
        }
        if (buf_append(out, &ch, 1) < 0)
            return lex_fail(c, "string too long");
        cursor_skip(c, 1);
    }
    return lex_fail(c, "unterminated string");
}

/* After the "<"; consumes the ">". */
static int
lex_table_ref(struct lex_cursor *c, struct buf *out)
{
    size_t n = 0;

    while (n < c->s.len && c->s.ptr[n] != '>') {
        if (is_blank(c->s.ptr[n]) || is_control(c->s.ptr[n]) || c->s.ptr[n] == '<')
            return lex_fail(c, "unterminated table reference (missing \">\")");
        n++;
    }
    if (n == c->s.len)
        return lex_fail(c, "unterminated table reference (missing \">\")");
    if (n == 0)
        return lex_fail(c, "empty table reference \"<>\"");
    if (buf_append(out, c->s.ptr, n) < 0)
        return lex_fail(c, "table name too long");
    cursor_skip(c, n + 1);
    return 0;
}

static int
lex_word(struct lex_cursor *c, struct buf *out)
{
    size_t n = 0;

    while (n < c->s.len) {
        char ch = c->s.ptr[n];

        if (is_blank(ch) || ch == '"' || ch == '#' || ch == '<')
            break;
        if (is_control(ch))
            return lex_fail(c, ch == '\0' ? "NUL byte in line" : "control character in line");
        n++;
    }
    if (buf_append(out, c->s.ptr, n) < 0)
        return lex_fail(c, "word too long");
    cursor_skip(c, n);
    return 0;
}

/* Reads one token at the cursor, which is at neither a blank nor "#". */
static int
lex_token(struct lex_cursor *c, struct config_token *tok)
{
    struct buf text;
    int r;

    buf_init(&text, 4096);
    if (c->s.ptr[0] == '"') {
        tok->kind = CONFIG_TOKEN_STRING;
        cursor_skip(c, 1);
        r = lex_string(c, &text);
    } else if (c->s.ptr[0] == '<') {
        tok->kind = CONFIG_TOKEN_TABLE;
        cursor_skip(c, 1);
        r = lex_table_ref(c, &text);
    } else {
        tok->kind = CONFIG_TOKEN_WORD;
        r = lex_word(c, &text);
    }
    if (r == 0)
        tok->text = text.data ? text.data : xstrdup("");
    else
        buf_free(&text);
    return r;
}

static int
lex_line(struct lex_cursor *c, struct config_line *line)
{
    while (c->s.len) {
        if (is_blank(c->s.ptr[0])) {
            cursor_skip(c, 1);
            continue;
        }
        if (c->s.ptr[0] == '#')
            return 0;
        if (line->ntokens == CONFIG_TOKENS_MAX)
            return lex_fail(c, "too many words on one line");
        if (lex_token(c, &line->tokens[line->ntokens]) < 0)
            return -1;
        line->ntokens++;
    }
    return 0;
}

void
config_lexer_init(struct config_lexer *lx, struct str text)
{
    lx->rest = text;
    lx->lineno = 0;
}

int
config_lexer_next(struct config_lexer *lx, struct config_line *line, char *why, size_t whylen)
{
    line->ntokens = 0;
    while (lx->rest.len) {
        struct lex_cursor c = {.why = why, .whylen = whylen};

        c.s = str_cut(&lx->rest, '\n');
        line->lineno = ++lx->lineno;
        if (lex_line(&c, line) < 0) {
            config_line_clear(line);
            return -1;
        }
        if (line->ntokens)
            return 1;
    }
    return 0;
}

void
config_line_clear(struct config_line *line)
{
    for (size_t i = 0; i < line->ntokens; i++)
        free(line->tokens[i].text);
    line->ntokens = 0;
}
