/*
 * Server reply parser; see smtp_reply_parse.h. Works on slices of the
 * caller's input and copies only the bounded part it keeps (up to
 * sizeof(text) of text); status codes are interned in a static table.
 */
#include "smtp/smtp_reply_parse.h"

#include <string.h>

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * Every status code a reply can name, as static strings: class 2, 4 or 5,
 * subject 0-9, detail 0-99 (RFC 3463 and the RFC 5248 registry stay well
 * inside). 3 x 10 x 100 x 7 octets of read-only data.
 */
#define ST_D(c, s, t)                                                                              \
    c "." s "." t "0", c "." s "." t "1", c "." s "." t "2", c "." s "." t "3", c "." s "." t "4", \
        c "." s "." t "5", c "." s "." t "6", c "." s "." t "7", c "." s "." t "8",                \
        c "." s "." t "9"
#define ST_S(c, s)                                                                                 \
    {                                                                                              \
        ST_D(c, s, ""), ST_D(c, s, "1"), ST_D(c, s, "2"), ST_D(c, s, "3"), ST_D(c, s, "4"),        \
            ST_D(c, s, "5"), ST_D(c, s, "6"), ST_D(c, s, "7"), ST_D(c, s, "8"), ST_D(c, s, "9")    \
    }
#define ST_C(c)                                                                                    \
    {                                                                                              \
        ST_S(c, "0"), ST_S(c, "1"), ST_S(c, "2"), ST_S(c, "3"), ST_S(c, "4"), ST_S(c, "5"),        \
            ST_S(c, "6"), ST_S(c, "7"), ST_S(c, "8"), ST_S(c, "9")                                 \
    }

static const char status_table[3][10][100][7] = {ST_C("2"), ST_C("4"), ST_C("5")};

/* A run of digits at s[*i] as a number (at most 3 digits: no overflow). */
static unsigned
status_field(struct str s, size_t *i)
{
    unsigned v = 0;

    while (*i < s.len && is_digit(s.ptr[*i]))
        v = v * 10 + (unsigned)(s.ptr[(*i)++] - '0');
    return v;
}

const char *
smtp_reply_status(int code, struct str status)
{
    int cls = code / 100;
    unsigned subject = 0, detail = 0;
    size_t i = 2;

    if (cls != 2 && cls != 4 && cls != 5)
        return NULL;
    if (status.len >= 5 && status.len <= 9) { /* as smtp_reply_line_parse found it */
        subject = status_field(status, &i);
        i++;
        detail = status_field(status, &i);
    }
    if (subject > 9 || detail > 99)
        subject = detail = 0;
    return status_table[cls == 2 ? 0 : cls == 4 ? 1 : 2][subject][detail];
}

/* 1*3digit at s[*i]; advances *i. */
static bool
status_number(struct str s, size_t *i)
{
    size_t start = *i;

    while (*i < s.len && *i - start < 3 && is_digit(s.ptr[*i]))
        (*i)++;
    return *i > start && (*i == s.len || !is_digit(s.ptr[*i]));
}

/*
 * RFC 3463 2: class "." subject "." detail, then a space or the end. The
 * class must match the reply's (RFC 2034 4); otherwise it is just text.
 */
static size_t
status_len(struct str s, int code)
{
    size_t i = 2;

    if (s.len < 5 || s.ptr[0] != (char)('0' + code / 100) || s.ptr[1] != '.')
        return 0;
    if (s.ptr[0] != '2' && s.ptr[0] != '4' && s.ptr[0] != '5')
        return 0;
    if (!status_number(s, &i) || i >= s.len || s.ptr[i] != '.')
        return 0;
    i++;
    if (!status_number(s, &i))
        return 0;
    if (i < s.len && s.ptr[i] != ' ')
        return 0;
    return i;
}

int
smtp_reply_line_parse(struct str s, struct smtp_reply_line *out)
{
    size_t k;

    memset(out, 0, sizeof(*out));
    if (s.len < 3 || s.ptr[0] < '2' || s.ptr[0] > '5' || !is_digit(s.ptr[1]) || !is_digit(s.ptr[2]))
        return -1;
    if (s.len > 3 && s.ptr[3] != ' ' && s.ptr[3] != '-')
        return -1;
    out->code = (s.ptr[0] - '0') * 100 + (s.ptr[1] - '0') * 10 + (s.ptr[2] - '0');
    /* RFC 5321 4.2: the last line may be the bare code. */
    out->last = s.len == 3 || s.ptr[3] == ' ';
    out->text = s.len > 4 ? str_make(s.ptr + 4, s.len - 4) : str_make(s.ptr + s.len, 0);
    k = status_len(out->text, out->code);
    out->status = str_make(out->text.ptr, k);
    out->msg = str_make(out->text.ptr + k, out->text.len - k);
    while (k > 0 && out->msg.len > 0 && out->msg.ptr[0] == ' ')
        out->msg = str_make(out->msg.ptr + 1, out->msg.len - 1);
    return 0;
}

void
smtp_reply_parser_init(struct smtp_reply_parser *rp)
{
    memset(rp, 0, sizeof(*rp));
}

/* Appends a line's text: space-joined, control octets made harmless for
 * logs and DSNs, cut at the end of the fixed buffer. */
static void
reply_add_text(struct smtp_reply_parser *rp, struct str msg)
{
    char *t = rp->reply.text;
    size_t room = sizeof(rp->reply.text) - 1;

    if (rp->text_len > 0 && rp->text_len < room && msg.len > 0)
        t[rp->text_len++] = ' ';
    for (size_t i = 0; i < msg.len && rp->text_len < room; i++) {
        unsigned char c = (unsigned char)msg.ptr[i];

        t[rp->text_len++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    t[rp->text_len] = '\0';
}

static void
reply_first_line(struct smtp_reply_parser *rp, const struct smtp_reply_line *l)
{
    memset(&rp->reply, 0, sizeof(rp->reply));
    rp->text_len = 0;
    rp->reply.code = l->code;
    rp->reply.status = smtp_reply_status(l->code, l->status);
    rp->status_given = l->status.len > 0;
}

/* Finds the end of the next line: its length with the LF, or 0. */
static size_t
line_frame(const char *p, size_t n, enum smtp_reply_result *err)
{
    size_t look = n < SMTP_REPLY_LINE_MAX ? n : SMTP_REPLY_LINE_MAX;
    const char *lf = look ? memchr(p, '\n', look) : NULL;

    *err = SMTP_REPLY_AGAIN;
    if (lf == NULL) {
        if (n >= SMTP_REPLY_LINE_MAX)
            *err = SMTP_REPLY_TOO_LONG;
        return 0;
    }
    return (size_t)(lf - p) + 1;
}

enum smtp_reply_result
smtp_reply_parser_feed(struct smtp_reply_parser *rp, const char *p, size_t n, size_t *used,
                       struct smtp_reply_line *line)
{
    enum smtp_reply_result err;
    size_t len = line_frame(p, n, &err), body;

    *used = 0;
    if (len == 0)
        return err;
    if (rp->complete) {
        rp->complete = false;
        rp->nlines = 0; /* this line starts a new reply */
    }
    body = len - 1;
    if (body > 0 && p[body - 1] == '\r')
        body--;
    if (smtp_reply_line_parse(str_make(p, body), line) < 0)
        return SMTP_REPLY_BAD;
    if (rp->nlines == 0) {
        reply_first_line(rp, line);
    } else if (line->code != rp->reply.code) {
        return SMTP_REPLY_BAD; /* RFC 5321 4.2.1: one code for all lines */
    } else if (rp->nlines >= SMTP_REPLY_LINES_MAX) {
        return SMTP_REPLY_TOO_MANY;
    } else if (!rp->status_given && line->status.len > 0) {
        /* "550-mx.example.org\r\n550 5.7.1 no": the first code given */
        rp->reply.status = smtp_reply_status(line->code, line->status);
        rp->status_given = true;
    }
    reply_add_text(rp, line->msg);
    rp->nlines++;
    *used = len;
    if (!line->last)
        return SMTP_REPLY_LINE;
    rp->complete = true;
    return SMTP_REPLY_DONE;
}
