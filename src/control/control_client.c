/* The control socket, tool side; see control_client.h. */
#include "control/control_client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline: 0 ready, -1 with errno. */
static int
wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        long long left = deadline - now_ms();
        int r;

        if (left <= 0) {
            errno = ETIMEDOUT;
            return -1;
        }
        r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
    }
}

static int
send_all(int fd, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLOUT, deadline) < 0)
                return -1;
            continue;
        }
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads up to the first "\n" (not included); returns its length or -1. */
static ssize_t
recv_line(int fd, char *buf, size_t n, long long deadline)
{
    size_t len = 0;

    while (len + 1 < n) {
        ssize_t r = recv(fd, buf + len, n - 1 - len, MSG_DONTWAIT);
        char *nl;

        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (wait_fd(fd, POLLIN, deadline) < 0)
                return -1;
            continue;
        }
        if (r < 0)
            return -1;
        if (r == 0) {
            errno = ECONNRESET; /* closed without a complete reply */
            return -1;
        }
        len += (size_t)r;
        if ((nl = memchr(buf, '\n', len)) != NULL)
            return nl - buf;
    }
    errno = EMSGSIZE;
    return -1;
}

int
control_client_connect(const char *path)
{
    struct sockaddr_un sun;
    socklen_t len;
    int fd, dirfd, r, saved;

    if (control_sockaddr(path, &sun, &len, &dirfd) < 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        saved = errno;
        if (dirfd >= 0)
            close(dirfd);
        errno = saved;
        return -1;
    }
    do
        r = connect(fd, (struct sockaddr *)&sun, len);
    while (r < 0 && errno == EINTR);
    saved = errno;
    if (dirfd >= 0)
        close(dirfd);
    if (r < 0) {
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static enum control_result
failed(enum control_result r, char *text, size_t textlen)
{
    snprintf(text, textlen, "%s", strerror(errno));
    return r;
}

enum control_result
control_client_request(const char *path, const struct control_request *req, int timeout_ms,
                       char *text, size_t textlen)
{
    long long deadline = now_ms() + timeout_ms;
    char line[CONTROL_LINE_MAX + 1];
    struct str rest;
    int len, fd, ok;
    ssize_t n;

    if ((len = control_request_format(req, line, sizeof(line))) < 0) {
        errno = EINVAL;
        return failed(CONTROL_FAILED, text, textlen);
    }
    if ((fd = control_client_connect(path)) < 0)
        return failed(errno == EACCES || errno == EPERM ? CONTROL_DENIED : CONTROL_UNREACHABLE,
                      text, textlen);
    if (send_all(fd, line, (size_t)len, deadline) < 0 ||
        (n = recv_line(fd, line, sizeof(line), deadline)) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return failed(CONTROL_FAILED, text, textlen);
    }
    close(fd);
    ok = control_reply_parse(str_make(line, (size_t)n), &rest);
    if (ok < 0) {
        errno = EPROTO;
        return failed(CONTROL_FAILED, text, textlen);
    }
    snprintf(text, textlen, "%.*s", (int)rest.len, rest.ptr);
    return ok ? CONTROL_OK : CONTROL_REFUSED;
}
