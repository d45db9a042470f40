/*
 * Body decoder; see smtp_data.h. Runs of ordinary octets are appended in
 * one go, so the per-byte state machine only runs at line boundaries.
 */
#include "smtp/smtp_data.h"

#include <string.h>

static void
data_put(struct smtp_data *d, const char *p, size_t n)
{
    d->size += n;
    if (d->too_big)
        return;
    if (buf_append(d->out, p, n) < 0)
        d->too_big = true;
}

/* A line has ended (CRLF already written): header bookkeeping. */
static void
data_line_end(struct smtp_data *d)
{
    if (d->in_header && !d->too_big) {
        struct str line = str_make(d->out->data + d->line_start, d->out->len - d->line_start);

        if (line.len <= 2)
            d->in_header = false; /* the empty line ends the header section */
        else if (str_iprefix(line, "Received:"))
            d->received++;
    }
    d->line_start = d->out->len;
    d->line_len = 0;
}

static void
data_crlf(struct smtp_data *d)
{
    data_put(d, "\r\n", 2);
    data_line_end(d);
}

/* A CR or LF that is not part of a CRLF pair. */
static void
data_bare(struct smtp_data *d, char c)
{
    d->bare_newline = true;
    if (d->binary || d->reject_bare) {
        data_put(d, &c, 1);
        return;
    }
    data_crlf(d);
}

static size_t
data_text_run(struct smtp_data *d, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] != '\r' && p[i] != '\n')
        i++;
    if (i) {
        data_put(d, p, i);
        d->line_len += i;
        if (d->line_len > d->max_line && !d->binary)
            d->long_line = true;
    }
    return i;
}

/* At a line start in the body (past the header: no per-line bookkeeping
 * left but the dot and the length): whole lines that end in CRLF, hold no
 * other CR, do not start with '.' and are not too long are content as they
 * are, so a run of them is found with memchr and appended in one go. Stops
 * before the first line that is not like that, or is not complete yet; the
 * octet-wise path takes it from there, as it would have from the start. */
static size_t
data_body_run(struct smtp_data *d, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && p[i] != '.') {
        const char *lf = memchr(p + i, '\n', n - i);
        size_t text;

        if (lf == NULL)
            break;
        text = (size_t)(lf - (p + i)); /* octets before the LF */
        if (text == 0 || p[i + text - 1] != '\r' || text - 1 > d->max_line ||
            memchr(p + i, '\r', text - 1) != NULL)
            break;
        i += text + 1;
    }
    if (i) {
        data_put(d, p, i);
        d->line_start = d->out->len;
    }
    return i;
}

static void
data_dot(struct smtp_data *d)
{
    data_put(d, ".", 1);
    d->line_len++;
}

/* One octet at a line boundary; returns true at the DATA terminator. */
static bool
data_step(struct smtp_data *d, char c)
{
    switch (d->state) {
    case SMTP_DATA_BOL:
        if (c == '.' && !d->bdat) {
            d->state = SMTP_DATA_DOT;
            return false;
        }
        d->state = SMTP_DATA_TEXT;
        return data_step(d, c);
    case SMTP_DATA_DOT:
        if (c == '\r') {
            d->state = SMTP_DATA_DOT_CR;
            return false;
        }
        d->state = SMTP_DATA_TEXT;
        if (c == '\n')
            data_dot(d); /* "." and a bare LF: the dot is content */
        /* RFC 5321 4.5.2: otherwise the leading dot of a line is removed. */
        return data_step(d, c);
    case SMTP_DATA_DOT_CR:
        if (c == '\n')
            return true;
        /* "." and a bare CR: keep the dot, so no empty line appears that
         * could move the end of the header section. */
        data_dot(d);
        data_bare(d, '\r');
        d->state = SMTP_DATA_TEXT;
        return data_step(d, c);
    case SMTP_DATA_CR:
        if (c == '\n') {
            data_crlf(d);
            d->state = SMTP_DATA_BOL;
            return false;
        }
        data_bare(d, '\r');
        d->state = SMTP_DATA_TEXT;
        return data_step(d, c);
    case SMTP_DATA_TEXT:
        if (c == '\r')
            d->state = SMTP_DATA_CR;
        else if (c == '\n')
            data_bare(d, '\n'); /* stays in TEXT: never a line start for "." */
        else {
            data_put(d, &c, 1);
            d->line_len++;
        }
        return false;
    }
    return false;
}

void
smtp_data_begin(struct smtp_data *d, struct buf *out, bool bdat, bool binary, bool reject_bare,
                size_t max_line)
{
    *d = (struct smtp_data){
        .out = out,
        .state = SMTP_DATA_BOL,
        .bdat = bdat,
        .binary = binary,
        .reject_bare = reject_bare,
        .max_line = max_line,
        .line_start = out->len,
        .in_header = true,
    };
}

size_t
smtp_data_feed(struct smtp_data *d, const char *p, size_t n, bool *done)
{
    size_t i = 0;

    *done = false;
    while (i < n) {
        if (d->state == SMTP_DATA_BOL && !d->in_header) {
            i += data_body_run(d, p + i, n - i);
            if (i == n)
                break;
        }
        if (d->state == SMTP_DATA_TEXT) {
            i += data_text_run(d, p + i, n - i);
            if (i == n)
                break;
        }
        if (data_step(d, p[i++])) {
            *done = true;
            break;
        }
    }
    return i;
}

void
smtp_data_finish(struct smtp_data *d)
{
    if (d->state == SMTP_DATA_CR)
        data_bare(d, '\r');
    /* RFC 5322 2.1: a message is lines, each ending in CRLF; BINARYMIME
     * content is kept exactly as sent. */
    if (d->line_len > 0 && !d->binary)
        data_crlf(d);
    d->state = SMTP_DATA_BOL;
}
