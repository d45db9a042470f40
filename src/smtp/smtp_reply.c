/* Filling the shared error result; see smtp_reply.h. */
#include "smtp/smtp_reply.h"

#include <stdarg.h>
#include <stdio.h>

int
smtp_reply_set(struct smtp_reply *r, int code, const char *status, const char *fmt, ...)
{
    va_list ap;

    r->code = code;
    r->status = status;
    va_start(ap, fmt);
    vsnprintf(r->text, sizeof(r->text), fmt, ap);
    va_end(ap);
    return -1;
}
