/* The control line protocol; see control_proto.h. */
#include "control/control_proto.h"

#include "queue/envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct control_verb {
    const char *name;
    enum control_cmd cmd;
    enum { ARG_NONE, ARG_ID, ARG_DOMAIN_OPT, ARG_ID_OR_ALL } arg;
    const char *usage;
};

static const struct control_verb control_verbs[] = {
    {"ping", CONTROL_PING, ARG_NONE, "ping"},
    {"flush", CONTROL_FLUSH, ARG_DOMAIN_OPT, "flush [DOMAIN]"},
    {"delete", CONTROL_DELETE, ARG_ID_OR_ALL, "delete ID|all"},
    {"hold", CONTROL_HOLD, ARG_ID, "hold ID"},
    {"release", CONTROL_RELEASE, ARG_ID, "release ID"},
    {"pickup", CONTROL_PICKUP, ARG_ID, "pickup ID"},
};

#define NVERBS (sizeof(control_verbs) / sizeof(control_verbs[0]))

const char *
control_cmd_name(enum control_cmd cmd)
{
    if (cmd == CONTROL_DELETE_ALL)
        return "delete";
    for (size_t i = 0; i < NVERBS; i++)
        if (control_verbs[i].cmd == cmd)
            return control_verbs[i].name;
    return "?";
}

/* The next space-separated word of *s; empty at the end. */
static struct str
next_word(struct str *s)
{
    size_t i = 0, j;

    while (i < s->len && s->ptr[i] == ' ')
        i++;
    for (j = i; j < s->len && s->ptr[j] != ' '; j++)
        ;
    struct str w = str_make(s->ptr + i, j - i);

    *s = str_make(s->ptr + j, s->len - j);
    return w;
}

static bool
id_take(struct str w, char *out)
{
    if (w.len != QUEUE_ID_LEN)
        return false;
    for (size_t i = 0; i < w.len; i++) {
        char c = w.ptr[i];

        out[i] = c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
    }
    out[w.len] = '\0';
    return queue_id_valid(out);
}

/* A domain name or address literal, "@" first for its subdomains too (as
 * ETRN, RFC 1985 5.3); U-labels (UTF-8) are allowed. */
static bool
domain_take(struct str w, char *out)
{
    size_t start = w.len && w.ptr[0] == '@';

    if (w.len <= start || w.len > CONTROL_ARG_MAX || w.ptr[start] == '.' || w.ptr[start] == '-')
        return false;
    out[0] = '@';
    for (size_t i = start; i < w.len; i++) {
        unsigned char c = (unsigned char)w.ptr[i];
        bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '.' ||
                  c == '_' || c == '[' || c == ']' || c == ':' || c >= 0x80;

        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
            ok = true;
        }
        if (!ok)
            return false;
        out[i] = (char)c;
    }
    out[w.len] = '\0';
    return true;
}

static int
fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    return -1;
}

static int
arg_parse(const struct control_verb *v, struct str arg, struct control_request *out, char *err,
          size_t errlen)
{
    out->cmd = v->cmd;
    out->arg[0] = '\0';
    switch (v->arg) {
    case ARG_NONE:
        return arg.len ? fail(err, errlen, "usage: %s", v->usage) : 0;
    case ARG_DOMAIN_OPT:
        if (arg.len && !domain_take(arg, out->arg))
            return fail(err, errlen, "%s", "bad domain name");
        return 0;
    case ARG_ID_OR_ALL:
        if (str_ieq(arg, "all")) {
            out->cmd = CONTROL_DELETE_ALL;
            return 0;
        }
        /* FALLTHROUGH */
    case ARG_ID:
        if (arg.len == 0)
            return fail(err, errlen, "usage: %s", v->usage);
        if (!id_take(arg, out->arg))
            return fail(err, errlen, "%s", "bad queue id (16 hexadecimal digits)");
        return 0;
    }
    return -1;
}

int
control_request_parse(struct str line, struct control_request *out, char *err, size_t errlen)
{
    struct str verb, arg;

    if (line.len && line.ptr[line.len - 1] == '\r')
        line.len--;
    if (line.len >= CONTROL_LINE_MAX)
        return fail(err, errlen, "%s", "request line too long");
    for (size_t i = 0; i < line.len; i++)
        if ((unsigned char)line.ptr[i] < ' ' || line.ptr[i] == 0x7f)
            return fail(err, errlen, "%s", "control character in the request");
    verb = next_word(&line);
    arg = next_word(&line);
    if (next_word(&line).len)
        return fail(err, errlen, "%s", "too many arguments");
    for (size_t i = 0; i < NVERBS; i++)
        if (str_ieq(verb, control_verbs[i].name))
            return arg_parse(&control_verbs[i], arg, out, err, errlen);
    return fail(err, errlen, "%s", verb.len ? "unknown command" : "empty request");
}

int
control_request_format(const struct control_request *r, char *out, size_t n)
{
    struct control_request check;
    char err[128];
    int len;

    if (r->cmd == CONTROL_DELETE_ALL)
        len = snprintf(out, n, "delete all\n");
    else
        len = snprintf(out, n, "%s%s%s\n", control_cmd_name(r->cmd), r->arg[0] ? " " : "", r->arg);
    if (len < 0 || (size_t)len >= n || len > CONTROL_LINE_MAX)
        return -1;
    /* Never send what the daemon would refuse to parse. */
    if (control_request_parse(str_make(out, (size_t)len - 1), &check, err, sizeof(err)) < 0 ||
        check.cmd != r->cmd)
        return -1;
    return len;
}

size_t
control_reply_format(bool ok, const char *text, char *out, size_t n)
{
    size_t max = n < CONTROL_LINE_MAX ? n : CONTROL_LINE_MAX;
    const char *word = ok ? "ok " : "error ";
    size_t len = 0;

    if (max < strlen(word) + 2)
        return 0;
    for (const char *w = word; *w; w++)
        out[len++] = *w;
    for (; *text && len + 2 < max; text++) {
        unsigned char c = (unsigned char)*text;

        out[len++] = c < ' ' || c == 0x7f ? '?' : (char)c;
    }
    out[len++] = '\n';
    out[len] = '\0';
    return len;
}

int
control_reply_parse(struct str line, struct str *text)
{
    struct str word;

    if (line.len && line.ptr[line.len - 1] == '\r')
        line.len--;
    word = str_cut(&line, ' ');
    *text = line;
    if (str_ieq(word, "ok"))
        return 1;
    if (str_ieq(word, "error"))
        return 0;
    return -1;
}

int
control_socket_path(const char *spool, char *out, size_t n)
{
    int len = snprintf(out, n, "%s/%s", spool, CONTROL_SOCKET_NAME);

    return len < 0 || (size_t)len >= n ? -1 : 0;
}

int
control_sockaddr(const char *path, struct sockaddr_un *sun, socklen_t *len, int *dirfd)
{
    const char *slash = strrchr(path, '/');
    char dir[4096];
    int n;

    memset(sun, 0, sizeof(*sun));
    sun->sun_family = AF_UNIX;
    *dirfd = -1;
    if (strlen(path) < sizeof(sun->sun_path)) {
        memcpy(sun->sun_path, path, strlen(path) + 1);
        *len = (socklen_t)sizeof(*sun);
        return 0;
    }
    /* Too long for sun_path: go through the directory's descriptor. */
    if (slash == NULL || (size_t)(slash - path) >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
    if ((*dirfd = open(dir[0] ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    n = snprintf(sun->sun_path, sizeof(sun->sun_path), "/proc/self/fd/%d/%s", *dirfd, slash + 1);
    if (n < 0 || (size_t)n >= sizeof(sun->sun_path)) {
        close(*dirfd);
        *dirfd = -1;
        errno = ENAMETOOLONG;
        return -1;
    }
    *len = (socklen_t)sizeof(*sun);
    return 0;
}
