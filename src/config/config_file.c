/* Whole-file reads for the config loader and tables; see config_file.h. */
#include "config/config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
read_all(int fd, size_t max, struct buf *out, char *why, size_t whylen)
{
    char chunk[8192];
    ssize_t n;

    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n == 0)
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(why, whylen, "%s", strerror(errno));
            return -1;
        }
        if (buf_append(out, chunk, (size_t)n) < 0) {
            snprintf(why, whylen, "larger than %zu bytes", max);
            return -1;
        }
    }
}

int
config_file_read(const char *path, size_t max, struct buf *out, char *why, size_t whylen)
{
    struct stat st;
    int fd, r;

    buf_init(out, max);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -1;
    }
    /* O_NONBLOCK and the check below keep a FIFO from hanging the loader. */
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file");
        close(fd);
        return -1;
    }
    r = read_all(fd, max, out, why, whylen);
    close(fd);
    /* An empty file still yields a NUL-terminated (empty) string. */
    if (r == 0 && out->data == NULL && buf_append(out, "", 0) < 0)
        r = -1;
    return r;
}

void
config_ascii_lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + ('a' - 'A'));
}
