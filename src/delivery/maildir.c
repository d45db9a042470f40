/* Maildir writer; see maildir.h. */
#include "delivery/maildir.h"

#include "base/fdio.h"
#include "base/sync_group.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

static bool
mailbox_name_ok(const char *user)
{
    if (user[0] == '\0' || user[0] == '.')
        return false;
    for (const char *p = user; *p; p++)
        if (*p == '/' || (unsigned char)*p < ' ' || *p == 0x7f)
            return false;
    return true;
}

int
maildir_path(const char *tmpl, const char *user, char *out, size_t n, char *err, size_t errlen)
{
    const char *var = strstr(tmpl, "%{user}");
    int len;

    if (!mailbox_name_ok(user)) {
        snprintf(err, errlen, "unsafe mailbox name \"%s\"", user);
        return -1;
    }
    if (var == NULL)
        len = snprintf(out, n, "%s", tmpl);
    else
        len = snprintf(out, n, "%.*s%s%s", (int)(var - tmpl), tmpl, user, var + 7);
    if (len < 0 || (size_t)len >= n) {
        snprintf(err, errlen, "mailbox path too long");
        return -1;
    }
    return 0;
}

/* mkdir that tells whether it made path: 0 (made or there), or -errno. */
static int
make_dir(const char *path, bool *made)
{
    if (mkdir(path, 0700) == 0)
        *made = true;
    else if (errno != EEXIST)
        return -errno;
    return 0;
}

/* Creates dir (and its parents), tmp/, new/ and cur/. What it creates is
 * made durable too (each new directory's parent fsync'ed), or a message in
 * a brand-new mailbox could outlive a power loss that its mailbox does not. */
static int
maildir_make(const char *dir)
{
    char path[4096];
    static const char *const subs[] = {"tmp", "new", "cur"};
    bool made = false;
    int r;

    snprintf(path, sizeof(path), "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if ((r = make_dir(path, &made)) < 0)
            return r;
        *p = '/';
    }
    if ((r = make_dir(path, &made)) < 0)
        return r;
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, subs[i]);
        if ((r = make_dir(path, &made)) < 0)
            return r;
    }
    if (!made)
        return 0;
    /* the mailbox's own entries, then every ancestor's: cheap, and once */
    snprintf(path, sizeof(path), "%s", dir);
    for (;;) {
        char *slash;

        if ((r = sync_group_dir(path)) < 0)
            return r;
        slash = strrchr(path, '/');
        if (slash == NULL || slash == path)
            break;
        *slash = '\0';
    }
    return 0;
}

/* The host part of Maildir names, with '/' and ':' escaped as the spec
 * says, and the PID: read once, not by two system calls per delivery. */
static char unique_host[512] = "localhost";
static long unique_pid;
static pthread_once_t unique_once = PTHREAD_ONCE_INIT;

static void
unique_init(void)
{
    char host[256] = "localhost";
    size_t j = 0;

    gethostname(host, sizeof(host) - 1);
    for (size_t i = 0; host[i] && j + 5 < sizeof(unique_host); i++) {
        if (host[i] == '/' || host[i] == ':')
            j += (size_t)snprintf(unique_host + j, sizeof(unique_host) - j, "\\%03o",
                                  (unsigned char)host[i]);
        else
            unique_host[j++] = host[i];
    }
    unique_host[j] = '\0';
    unique_pid = (long)getpid();
}

/* time.MusecPpidQn.host */
static void
maildir_unique(char *out, size_t n)
{
    static atomic_uint deliveries;
    struct timeval tv;

    pthread_once(&unique_once, unique_init);
    gettimeofday(&tv, NULL);
    snprintf(out, n, "%lld.M%ldP%ldQ%u.%s", (long long)tv.tv_sec, (long)tv.tv_usec, unique_pid,
             atomic_fetch_add(&deliveries, 1), unique_host);
}

/* Appends n octets to out (flushed to fd whenever it fills). */
static int
out_put(int fd, char *out, size_t cap, size_t *o, const char *p, size_t n)
{
    while (n > 0) {
        size_t k = cap - *o < n ? cap - *o : n;
        int r;

        memcpy(out + *o, p, k);
        *o += k;
        p += k;
        n -= k;
        if (*o == cap) {
            if ((r = fd_write_all(fd, out, cap)) < 0)
                return r;
            *o = 0;
        }
    }
    return 0;
}

/* Writes head as it is, then msg with each CRLF turned into LF (Maildir
 * files use LF; a CR on its own stays): one write(2) for a message that
 * fits the buffer, and memchr/memcpy per line, not a test per octet. */
static int
write_lf(int fd, const char *head, const char *msg, size_t len)
{
    char out[65536];
    size_t o = 0, i = 0;
    int r;

    if ((r = out_put(fd, out, sizeof(out), &o, head, strlen(head))) < 0)
        return r;
    while (i < len) {
        const char *cr = memchr(msg + i, '\r', len - i);
        size_t run = cr ? (size_t)(cr - (msg + i)) : len - i;
        bool crlf = cr && (size_t)(cr - msg) + 1 < len && cr[1] == '\n';

        /* the text before the CR, and the CR itself unless an LF follows */
        if ((r = out_put(fd, out, sizeof(out), &o, msg + i, run + (cr && !crlf))) < 0)
            return r;
        i += run + (cr ? 1 : 0);
    }
    return fd_write_all(fd, out, o);
}

/* a, b and c joined into out: copied, not formatted (three per delivery);
 * false if they do not fit. */
static bool
path_join(char *out, size_t n, const char *a, const char *b, const char *c)
{
    size_t la = strlen(a), lb = strlen(b), lc = strlen(c);

    if (la + lb + lc >= n)
        return false;
    memcpy(out, a, la);
    memcpy(out + la, b, lb);
    memcpy(out + la + lb, c, lc + 1);
    return true;
}

int
maildir_deliver(const char *dir, const char *head, const char *msg, size_t len, char *err,
                size_t errlen)
{
    char name[700], tmp[4096 + 700], dst[4096 + 700], newdir[4096 + 8];
    int fd, r;

    maildir_unique(name, sizeof(name));
    if (!path_join(tmp, sizeof(tmp), dir, "/tmp/", name) ||
        !path_join(dst, sizeof(dst), dir, "/new/", name) ||
        !path_join(newdir, sizeof(newdir), dir, "/new", "")) {
        snprintf(err, errlen, "Maildir path too long: %s", dir);
        return -ENAMETOOLONG;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == ENOENT) { /* a new mailbox: make it, once */
        if ((r = maildir_make(dir)) < 0) {
            snprintf(err, errlen, "cannot create Maildir %s: %s", dir, strerror(-r));
            return r;
        }
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    }
    if (fd < 0) {
        r = -errno;
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return r;
    }
    r = write_lf(fd, head, msg, len);
    if (r == 0)
        r = sync_group_data(fd); /* the data, before its name */
    if (close(fd) < 0 && r == 0)
        r = -errno;
    if (r == 0 && rename(tmp, dst) < 0)
        r = -errno;
    if (r < 0) {
        unlink(tmp); /* nothing is left in tmp/ */
        snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-r));
        return r;
    }
    if ((r = sync_group_dir(newdir)) < 0) /* the name, before the caller acks */
        snprintf(err, errlen, "cannot sync %s: %s", newdir, strerror(-r));
    return r;
}
