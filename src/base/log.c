/* stderr logger; each line is written with one write(2) so lines from
 * worker threads never interleave. */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *log_prog = "petrel";
static bool log_debug_on;
static long log_pid; /* glibc no longer caches getpid(): a system call per line */
static char log_prefix[256];

void
log_init(const char *progname, bool debug)
{
    log_prog = progname;
    log_debug_on = debug;
    log_pid = (long)getpid();
    snprintf(log_prefix, sizeof(log_prefix), "%.200s[%ld]: ", progname, log_pid);
}

static void
log_emit(const char *level, const char *fmt, va_list ap, const char *suffix)
{
    char line[2048];
    int n, m;

    if (log_pid) { /* "prog[pid]: " is the same on every line: copied, not formatted */
        size_t plen = strlen(log_prefix), llen = strlen(level);

        memcpy(line, log_prefix, plen);
        memcpy(line + plen, level, llen);
        memcpy(line + plen + llen, ": ", 2);
        n = (int)(plen + llen + 2);
    } else {
        n = snprintf(line, sizeof(line), "%s[%ld]: %s: ", log_prog, (long)getpid(), level);
    }
    m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    if (m < 0)
        m = 0;
    n = n + m >= (int)sizeof(line) - 64 ? (int)sizeof(line) - 64 : n + m;
    if (suffix)
        n += snprintf(line + n, sizeof(line) - (size_t)n, ": %s", suffix);
    line[n++] = '\n';
    if (write(STDERR_FILENO, line, (size_t)n) < 0) {
        /* nowhere left to report it */
    }
}

#define LOG_BODY(level, suffix)                                                                    \
    do {                                                                                           \
        va_list ap;                                                                                \
        va_start(ap, fmt);                                                                         \
        log_emit(level, fmt, ap, suffix);                                                          \
        va_end(ap);                                                                                \
    } while (0)

void
log_info(const char *fmt, ...)
{
    LOG_BODY("info", NULL);
}

void
log_warn(const char *fmt, ...)
{
    LOG_BODY("warning", NULL);
}

void
log_debug(const char *fmt, ...)
{
    if (log_debug_on)
        LOG_BODY("debug", NULL);
}

void
fatal(const char *fmt, ...)
{
    const char *e = strerror(errno);

    LOG_BODY("fatal", e);
    exit(1);
}

void
fatalx(const char *fmt, ...)
{
    LOG_BODY("fatal", NULL);
    exit(1);
}
