/* Terminal delivery; see terminal.h. */
#include "delivery/terminal.h"

#include "base/fdio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utmp.h>

int
terminal_find(const char *utmp_path, const char *user, char ttys[][40], int max)
{
    struct utmp u;
    int fd = open(utmp_path, O_RDONLY | O_CLOEXEC), n = 0;

    if (fd < 0)
        return 0;
    /* Read the file directly: getutent() keeps global state (not thread-safe). */
    while (n < max && read(fd, &u, sizeof(u)) == (ssize_t)sizeof(u)) {
        if (u.ut_type != USER_PROCESS || u.ut_line[0] == '\0')
            continue;
        if (strncmp(u.ut_user, user, sizeof(u.ut_user)) != 0 || strlen(user) > sizeof(u.ut_user))
            continue;
        snprintf(ttys[n], 40, "%.*s", (int)sizeof(u.ut_line), u.ut_line);
        if (strstr(ttys[n], "..") == NULL) /* never leave /dev */
            n++;
    }
    close(fd);
    return n;
}

/* The message with CRLF for the terminal and controls made visible. */
static int
put_message(int fd, const char *msg, size_t len)
{
    char out[4096];
    size_t o = 0;
    int r = 0;

    for (size_t i = 0; i < len && r == 0; i++) {
        unsigned char c = (unsigned char)msg[i];

        if (c == '\r')
            continue;
        if (c == '\n') {
            out[o++] = '\r';
            out[o++] = '\n';
        } else {
            out[o++] = (c < ' ' && c != '\t') || c == 0x7f ? '?' : (char)c;
        }
        if (o >= sizeof(out) - 2) {
            r = fd_write_all(fd, out, o);
            o = 0;
        }
    }
    return r ? r : fd_write_all(fd, out, o);
}

int
terminal_write(const char *tty, const char *sender, const char *msg, size_t len)
{
    char path[64], banner[512], date[64];
    struct stat st;
    time_t now = time(NULL);
    struct tm tm;
    int fd, r;

    snprintf(path, sizeof(path), "/dev/%s", tty);
    fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
        close(fd);
        return -ENOTTY;
    }
    localtime_r(&now, &tm);
    strftime(date, sizeof(date), "%H:%M", &tm);
    snprintf(banner, sizeof(banner), "\r\n\007Message from <%s> (petrel) at %s ...\r\n",
             sender[0] ? sender : "MAILER-DAEMON", date);
    r = fd_write_all(fd, banner, strlen(banner));
    if (r == 0)
        r = put_message(fd, msg, len);
    if (r == 0)
        r = fd_write_all(fd, "EOF\r\n", 5);
    close(fd);
    return r;
}
