/*
 * Reading server replies on the client side (RFC 5321 4.2): framing reply
 * lines, splitting off the code, the continuation mark and an RFC 3463
 * enhanced status code (RFC 2034), and gathering a multi-line reply into
 * one struct smtp_reply. Bounded: a line is at most SMTP_REPLY_LINE_MAX
 * octets and a reply at most SMTP_REPLY_LINES_MAX lines. No I/O.
 */
#ifndef PETREL_SMTP_REPLY_PARSE_H
#define PETREL_SMTP_REPLY_PARSE_H

#include "base/str.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.5 allows 512 octets; we tolerate far more, not unbounded. */
#define SMTP_REPLY_LINE_MAX 4096 /* octets, line ending included */
#define SMTP_REPLY_LINES_MAX 100

/* One reply line taken apart; slices into the caller's input. */
struct smtp_reply_line {
    int code;          /* 200..599 */
    bool last;         /* ' ' (or nothing) after the code; false for '-' */
    struct str text;   /* everything after the separator */
    struct str status; /* leading enhanced status code of text, or empty */
    struct str msg;    /* text without the status code and its spaces */
};

enum smtp_reply_result {
    SMTP_REPLY_AGAIN,    /* no complete line yet: nothing consumed */
    SMTP_REPLY_LINE,     /* a continuation line consumed; the reply goes on */
    SMTP_REPLY_DONE,     /* the last line consumed: the reply is complete */
    SMTP_REPLY_BAD,      /* malformed line (or its code differs from the reply's) */
    SMTP_REPLY_TOO_LONG, /* no line end within SMTP_REPLY_LINE_MAX octets */
    SMTP_REPLY_TOO_MANY, /* more than SMTP_REPLY_LINES_MAX lines */
};

struct smtp_reply_parser {
    unsigned nlines;         /* lines of the current (or just completed) reply */
    bool complete;           /* the last line taken ended a reply */
    bool status_given;       /* a line of this reply had a status code */
    size_t text_len;         /* octets used in reply.r.text */
    struct smtp_reply reply; /* the reply being gathered, or the last one */
};

void smtp_reply_parser_init(struct smtp_reply_parser *rp);

/*
 * Takes at most one line from p[0..n). A line ends at LF; a CR before the
 * LF is dropped. On LINE and DONE *used is the line's length and *line
 * describes it (slices into p); otherwise *used is 0. After DONE,
 * rp->reply holds the whole reply until the next line is taken: its code,
 * the first status code any of its lines gave (or "2.0.0"/"4.0.0"/"5.0.0" from the reply
 * class when the server gave none, RFC 3463 3.1; always a static string,
 * see smtp_reply_status()) and the lines' texts
 * without status codes, joined by spaces, control characters replaced by
 * '?', cut to fit. After an error the parser must be re-initialised.
 */
enum smtp_reply_result smtp_reply_parser_feed(struct smtp_reply_parser *rp, const char *p, size_t n,
                                              size_t *used, struct smtp_reply_line *line);

/* Parses one line without its line ending. Returns 0, or -1 if it is not
 * three digits (first 2-5) followed by ' ', '-' or nothing. */
int smtp_reply_line_parse(struct str s, struct smtp_reply_line *out);

/*
 * The static string for an enhanced status code found by
 * smtp_reply_line_parse ("5.01.1" gives "5.1.1"), so that replies can be
 * copied by value (smtp_reply.h). Codes beyond subject 9 or detail 99, and
 * an empty status, give the class's "2.0.0", "4.0.0" or "5.0.0"; NULL for
 * other classes.
 */
const char *smtp_reply_status(int code, struct str status);

#endif
