/*
 * Queue ids: seconds (8 hex) + microseconds (5 hex) + a counter (3 hex).
 * Sortable by arrival, unique within one running daemon; the spool's
 * O_EXCL create catches the impossible collision across restarts.
 */
#include "queue/envelope.h"

#include <stdatomic.h>
#include <stdio.h>
#include <sys/time.h>

void
queue_id_new(char out[QUEUE_ID_LEN + 1])
{
    static atomic_uint counter;
    struct timeval tv;
    unsigned c = atomic_fetch_add(&counter, 1) & 0xfff;

    gettimeofday(&tv, NULL);
    snprintf(out, QUEUE_ID_LEN + 1, "%08llX%05lX%03X", (unsigned long long)tv.tv_sec & 0xffffffffu,
             (unsigned long)tv.tv_usec & 0xfffff, c);
}

bool
queue_id_valid(const char *s)
{
    size_t i;

    for (i = 0; s[i]; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return i == QUEUE_ID_LEN;
}
