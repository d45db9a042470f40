/*
 * The one result type of every SMTP-level check: a reply code, an RFC 3463
 * enhanced status code and a human text. code 0 means "no error".
 */
#ifndef PETREL_SMTP_REPLY_H
#define PETREL_SMTP_REPLY_H

struct smtp_reply {
    int code;           /* 0 = ok, else 4xx/5xx */
    const char *status; /* "5.1.3"; static string */
    char text[200];     /* without code or status */
};

/* Fills r; returns -1 so callers can `return smtp_reply_set(...)`. */
int smtp_reply_set(struct smtp_reply *r, int code, const char *status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
