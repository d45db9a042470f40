/*
 * Local submission: the envelope, the header fixes and the store. See
 * submit.h. The recipient rules are the daemon's (config/router.c); only
 * the way a bare name is qualified belongs to the sendmail command.
 */
#include "submit/submit.h"

#include "base/fdio.h"
#include "base/xmalloc.h"
#include "config/router.h"
#include "control/control_client.h"
#include "delivery/route_envelope.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PICKUP_TIMEOUT_MS 5000

/* ---- the envelope ---- */

void
submit_init(struct submit *s, const struct config *cf)
{
    memset(s, 0, sizeof(*s));
    s->cf = cf;
}

void
submit_clear(struct submit *s)
{
    envelope_free(s->env);
    s->env = NULL;
    s->naccepted = 0;
    s->first_rcpt[0] = '\0';
}

void
submit_begin(struct submit *s, const char *sender, const char *helo)
{
    submit_clear(s);
    s->env = envelope_new();
    free(s->env->sender);
    s->env->sender = xstrdup(sender);
    free(s->env->client);
    s->env->client = xstrdup("local");
    free(s->env->helo);
    s->env->helo = xstrdup(helo);
}

int
submit_rcpt(struct submit *s, const struct smtp_path *to, unsigned notify, const char *orcpt,
            struct smtp_reply *err)
{
    const struct route_client cl = {.addr = NULL, .local = true};
    struct route_result res = {0};
    char orig[SMTP_PATH_MAX + 1];

    if (smtp_path_format(to, orig, sizeof(orig)) < 0)
        return smtp_reply_set(err, 501, "5.1.3", "recipient address too long");
    if (router_rcpt(s->cf, &cl, to, &res, err) < 0)
        return -1;
    route_envelope_add(s->env, &res, orig, notify, orcpt);
    route_result_free(&res);
    if (s->naccepted++ == 0)
        snprintf(s->first_rcpt, sizeof(s->first_rcpt), "%s", orig);
    return 0;
}

/* ---- addresses ---- */

/* Trims spaces and one pair of angle brackets. */
static struct str
address_bare(const char *addr)
{
    struct str a = str_trim(str_cstr(addr));

    if (a.len >= 2 && a.ptr[0] == '<' && a.ptr[a.len - 1] == '>')
        a = str_trim(str_make(a.ptr + 1, a.len - 2));
    return a;
}

/* The last "@" outside a quoted string, or NULL. */
static const char *
address_at(struct str a)
{
    const char *at = NULL;
    bool quoted = false;

    for (size_t i = 0; i < a.len; i++) {
        if (quoted && a.ptr[i] == '\\' && i + 1 < a.len)
            i++;
        else if (a.ptr[i] == '"')
            quoted = !quoted;
        else if (!quoted && a.ptr[i] == '@')
            at = a.ptr + i;
    }
    return at;
}

static int
path_parse(struct str a, enum smtp_path_kind kind, struct smtp_path *out, struct smtp_reply *err)
{
    char buf[2 * SMTP_PATH_MAX];
    struct str rest;
    int n;

    if (a.len > SMTP_PATH_MAX)
        return smtp_reply_set(err, 553, "5.1.3", "address too long");
    n = snprintf(buf, sizeof(buf), "<%.*s>", (int)a.len, a.ptr);
    if (memchr(a.ptr, '\0', a.len) ||
        smtp_path_parse(str_make(buf, (size_t)n), kind, true, out, &rest, err) < 0) {
        smtp_reply_set(err, 553, kind == SMTP_PATH_SENDER ? "5.1.7" : "5.1.3",
                       "%.*s: bad address syntax", (int)(a.len > 100 ? 100 : a.len), a.ptr);
        return -1;
    }
    if (rest.len)
        return smtp_reply_set(err, 553, "5.1.3", "%.100s: bad address syntax", buf);
    return 0;
}

int
submit_parse_rcpt(const struct config *cf, const char *addr, struct smtp_path *out,
                  struct smtp_reply *err)
{
    struct str a = address_bare(addr);
    char canon[SMTP_PATH_MAX + 1], full[2 * SMTP_PATH_MAX];
    const char *at;
    int n;

    if (a.len == 0)
        return smtp_reply_set(err, 553, "5.1.3", "empty recipient address");
    if (address_at(a) != NULL)
        return path_parse(a, SMTP_PATH_RECIPIENT, out, err);
    if (str_ieq(a, "postmaster"))
        return path_parse(STR_LIT("Postmaster"), SMTP_PATH_RECIPIENT, out, err);
    /* A bare name: a mailbox or alias here, known by its action's domain. */
    if (router_vrfy(cf, a, canon, sizeof(canon), err) < 0)
        return -1;
    at = strrchr(canon, '@');
    n = snprintf(full, sizeof(full), "%.*s@%s", (int)a.len, a.ptr, at ? at + 1 : cf->hostname);
    return path_parse(str_make(full, (size_t)n), SMTP_PATH_RECIPIENT, out, err);
}

int
submit_parse_sender(const struct config *cf, const char *addr, struct smtp_path *out,
                    struct smtp_reply *err)
{
    struct str a = address_bare(addr);
    char full[2 * SMTP_PATH_MAX];
    int n;

    if (a.len == 0) {
        memset(out, 0, sizeof(*out));
        out->null = true;
        return 0;
    }
    if (address_at(a) != NULL)
        return path_parse(a, SMTP_PATH_SENDER, out, err);
    if (a.len > SMTP_LOCAL_MAX)
        return smtp_reply_set(err, 553, "5.1.7", "sender address too long");
    n = snprintf(full, sizeof(full), "%.*s@%s", (int)a.len, a.ptr, cf->hostname);
    return path_parse(str_make(full, (size_t)n), SMTP_PATH_SENDER, out, err);
}

/* ---- header fields ---- */

/* RFC 5322 2.2: field names are printable US-ASCII except ":". */
static bool
ftext(char c)
{
    return c >= 33 && c <= 126 && c != ':';
}

bool
submit_next_field(struct str *msg, struct submit_field *f)
{
    const char *p = msg->ptr;
    size_t n = msg->len, i = 0, name, value, end;

    while (i < n && ftext(p[i]))
        i++;
    name = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) /* obs-field-name: WSP before ":" */
        i++;
    if (name == 0 || i >= n || p[i] != ':')
        return false;
    value = ++i;
    for (;;) { /* the line, then every continuation line (RFC 5322 2.2.3) */
        const char *nl = memchr(p + i, '\n', n - i);

        if (nl == NULL) {
            i = end = n;
            break;
        }
        end = (size_t)(nl - p) > i && nl[-1] == '\r' ? (size_t)(nl - p) - 1 : (size_t)(nl - p);
        i = (size_t)(nl - p) + 1;
        if (i >= n || (p[i] != ' ' && p[i] != '\t'))
            break;
    }
    f->name = str_make(p, name);
    f->value = str_make(p + value, end - value);
    f->raw = str_make(p, i);
    *msg = str_make(p + i, n - i);
    return true;
}

struct addr_scan {
    char *cur, *angle; /* each as long as the whole value: cannot overflow */
    size_t ncur, nangle;
    bool saw_angle, in_angle;
    bool space; /* white space since the last octet kept */
    size_t found;
    void (*cb)(void *arg, const char *addr);
    void *arg;
};

/* One address ends (at "," or ";" or the end of the value). */
static void
scan_emit(struct addr_scan *s)
{
    char *a = s->saw_angle ? s->angle : s->cur;
    size_t n = s->saw_angle ? s->nangle : s->ncur;

    a[n] = '\0';
    if (a[0] == '@') { /* obs-route "@a,@b:" before the address */
        char *colon = strchr(a, ':');

        a = colon ? colon + 1 : a + n;
    }
    if (*a) {
        s->cb(s->arg, a);
        s->found++;
    }
    s->ncur = s->nangle = 0;
    s->saw_angle = s->in_angle = s->space = false;
}

static void
scan_put(struct addr_scan *s, char c)
{
    char *b = s->in_angle ? s->angle : s->cur;
    size_t *n = s->in_angle ? &s->nangle : &s->ncur;

    /* CFWS may surround "." and "@" (RFC 5322 obs-local-part, obs-domain);
     * between two words it stays, so "bad address@x" is refused later,
     * not read as "badaddress@x". Each space kept stands for white space
     * dropped, so the buffers never outgrow the value. */
    if (s->space && *n > 0 && !strchr(".@", b[*n - 1]) && !strchr(".@", c))
        b[(*n)++] = ' ';
    s->space = false;
    b[(*n)++] = c;
}

/* Outside quotes and comments. */
static void
scan_char(struct addr_scan *s, char c)
{
    switch (c) {
    case '<':
        s->in_angle = s->saw_angle = true;
        s->nangle = 0;
        s->space = false;
        break;
    case '>':
        s->in_angle = false;
        break;
    case ':':
        if (s->in_angle) {
            scan_put(s, c);
        } else { /* a group's display name ends */
            s->ncur = 0;
            s->space = false;
        }
        break;
    case ',':
    case ';':
        if (s->in_angle)
            scan_put(s, c);
        else
            scan_emit(s);
        break;
    case ' ':
    case '\t':
    case '\r':
    case '\n':
        s->space = true;
        break;
    default:
        scan_put(s, c);
    }
}

size_t
submit_address_list(struct str v, void (*cb)(void *arg, const char *addr), void *arg)
{
    struct addr_scan s = {.cb = cb, .arg = arg};
    bool quoted = false;
    int comment = 0;

    s.cur = xmalloc(v.len + 1);
    s.angle = xmalloc(v.len + 1);
    for (size_t i = 0; i < v.len; i++) {
        char c = v.ptr[i];

        if (quoted) {
            scan_put(&s, c);
            if (c == '\\' && i + 1 < v.len)
                scan_put(&s, v.ptr[++i]);
            else if (c == '"')
                quoted = false;
        } else if (comment) {
            if (c == '\\')
                i++;
            else
                comment += c == '(' ? 1 : c == ')' ? -1 : 0;
        } else if (c == '"') {
            quoted = true;
            scan_put(&s, c);
        } else if (c == '(') {
            comment = 1;
        } else {
            scan_char(&s, c);
        }
    }
    scan_emit(&s);
    free(s.cur);
    free(s.angle);
    return s.found;
}

size_t
submit_header_rcpts(struct str msg, void (*cb)(void *arg, const char *addr), void *arg)
{
    struct submit_field f;
    size_t n = 0;

    while (submit_next_field(&msg, &f))
        if (str_ieq(f.name, "to") || str_ieq(f.name, "cc") || str_ieq(f.name, "bcc"))
            n += submit_address_list(f.value, cb, arg);
    return n;
}

void
submit_date(time_t t, char *out, size_t n)
{
    struct tm tm;

    localtime_r(&t, &tm);
    if (strftime(out, n, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0 && n)
        out[0] = '\0';
}

/* RFC 5322 atext and spaces: a phrase that needs no quoting. */
static bool
phrase_plain(const char *s)
{
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr(" !#$%&'*+-/=?^_`{|}~", *s)))
            return false;
    return true;
}

static bool
has_8bit(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return true;
    return false;
}

/* RFC 2047 "B" encoded-words, each under 76 octets, split between UTF-8
 * characters. */
static int
phrase_encoded(const char *s, struct buf *out)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t len = strlen(s), i = 0;
    int r = 0;

    while (i < len && r == 0) {
        size_t n = len - i > 45 ? 45 : len - i;

        while (i + n < len && n > 1 && ((unsigned char)s[i + n] & 0xc0) == 0x80)
            n--; /* do not cut a character */
        r = buf_printf(out, "%s=?UTF-8?B?", i ? " " : "");
        for (size_t j = 0; j < n && r == 0; j += 3) {
            const unsigned char *p = (const unsigned char *)s + i + j;
            unsigned v = p[0] << 16 | (j + 1 < n ? p[1] << 8 : 0) | (j + 2 < n ? p[2] : 0);
            char q[4] = {b64[v >> 18], b64[(v >> 12) & 63], j + 1 < n ? b64[(v >> 6) & 63] : '=',
                         j + 2 < n ? b64[v & 63] : '='};

            r = buf_append(out, q, 4);
        }
        if (r == 0)
            r = buf_append(out, "?=", 2);
        i += n;
    }
    return r;
}

static int
phrase_put(const char *name, struct buf *out)
{
    int r = 0;

    if (has_8bit(name))
        return phrase_encoded(name, out);
    if (phrase_plain(name))
        return buf_printf(out, "%s", name);
    r = buf_append(out, "\"", 1);
    for (; *name && r == 0; name++) {
        if (*name == '"' || *name == '\\')
            r = buf_append(out, "\\", 1);
        if (r == 0)
            r = buf_append(out, name, 1);
    }
    return r ? r : buf_append(out, "\"", 1);
}

/* The From: field the submission lacked (RFC 6409 8.1). */
static int
from_put(const struct submit_fixes *fx, struct buf *out)
{
    char name[256];
    size_t n = 0;
    int r;

    /* A display name from the command line: no line breaks, bounded. */
    for (const char *p = fx->from_name ? fx->from_name : ""; *p && n + 1 < sizeof(name); p++)
        name[n++] = (unsigned char)*p < ' ' || *p == 0x7f ? ' ' : *p;
    name[n] = '\0';
    if (str_trim(str_cstr(name)).len == 0)
        return buf_printf(out, "From: %s\r\n", fx->from_addr);
    r = buf_append(out, "From: ", 6);
    if (r == 0)
        r = phrase_put(name, out);
    return r ? r : buf_printf(out, " <%s>\r\n", fx->from_addr);
}

int
submit_fix_headers(struct str msg, const struct submit_fixes *fx, struct buf *out)
{
    bool date = false, msgid = false, from = false;
    struct submit_field f = {0};
    char when[64];
    int r = 0;

    while (r == 0 && submit_next_field(&msg, &f)) {
        date |= str_ieq(f.name, "date");
        msgid |= str_ieq(f.name, "message-id");
        from |= str_ieq(f.name, "from");
        if (!str_ieq(f.name, "bcc")) /* RFC 5322 3.6.3: Bcc is not shown to the others */
            r = buf_append(out, f.raw.ptr, f.raw.len);
    }
    if (r == 0 && f.raw.len && f.raw.ptr[f.raw.len - 1] != '\n')
        r = buf_append(out, "\r\n", 2); /* a last field without a line end */
    submit_date(fx->now, when, sizeof(when));
    if (r == 0 && !date)
        r = buf_printf(out, "Date: %s\r\n", when);
    if (r == 0 && !msgid)
        r = buf_printf(out, "Message-ID: %s\r\n", fx->msgid);
    if (r == 0 && !from)
        r = from_put(fx, out);
    if (r == 0 && !(msg.len >= 2 && msg.ptr[0] == '\r' && msg.ptr[1] == '\n'))
        r = buf_append(out, "\r\n", 2); /* the body started without the empty line */
    return r ? r : buf_append(out, msg.ptr, msg.len);
}

int
submit_trace(const struct submit_trace *t, struct buf *out)
{
    char when[64];
    int r;

    submit_date(t->now, when, sizeof(when));
    if (t->helo[0])
        r = buf_printf(out, "Received: from %s\r\n\tby %s (petrel, from userid %u) with %s id %s",
                       t->helo, t->hostname, t->uid, t->protocol, t->id);
    else
        r = buf_printf(out, "Received: by %s (petrel, from userid %u)\r\n\tid %s", t->hostname,
                       t->uid, t->id);
    if (r == 0 && t->for_rcpt[0])
        r = buf_printf(out, "\r\n\tfor <%s>", t->for_rcpt);
    return r ? r : buf_printf(out, "; %s\r\n", when);
}

/* ---- the store ---- */

static bool
spool_has(const char *spool, const char *sub, const char *id)
{
    char path[4096];

    snprintf(path, sizeof(path), "%s/%s/%s", spool, sub, id);
    return access(path, F_OK) == 0;
}

void
submit_new_id(struct submit *s, const char *spool)
{
    unsigned pid = (unsigned)getpid();

    for (int tries = 0; tries < 100; tries++) {
        unsigned counter;

        queue_id_new(s->env->id);
        /* queue_id_new()'s counter starts at 0 in every process. */
        counter = (unsigned)strtoul(s->env->id + 13, NULL, 16);
        snprintf(s->env->id + 13, 4, "%03X", (counter ^ pid) & 0xfff);
        if (!spool_has(spool, "queue", s->env->id) && !spool_has(spool, "hold", s->env->id))
            return;
    }
}

static bool
str_8bit(struct str s)
{
    for (size_t i = 0; i < s.len; i++)
        if ((unsigned char)s.ptr[i] >= 0x80)
            return true;
    return false;
}

/* 8BITMIME and SMTPUTF8 as the content needs them (RFC 6152, RFC 6531). */
static void
envelope_needs(struct envelope *e, struct str trace, struct str msg)
{
    bool utf8 = has_8bit(e->sender);

    for (size_t i = 0; i < e->nrcpts && !utf8; i++)
        utf8 = has_8bit(e->rcpts[i].address) || has_8bit(e->rcpts[i].orig);
    e->smtputf8 |= utf8;
    if (e->body == 0 && (str_8bit(trace) || str_8bit(msg)))
        e->body = 1; /* SMTP_BODY_8BITMIME */
}

/* Root stores for a daemon that runs as the spool's owner. */
static void
store_chown(const char *spool, const char *id)
{
    char path[4096];
    struct stat st;

    if (geteuid() != 0 || stat(spool, &st) < 0 || st.st_uid == 0)
        return;
    snprintf(path, sizeof(path), "%s/queue/%s", spool, id);
    if (chown(path, st.st_uid, st.st_gid) < 0) {
        /* the daemon will report the file as unreadable */
    }
}

/*
 * Not spool_open() + spool_store(): spool_open() is the daemon's start-up
 * and empties tmp/, so run next to a running daemon it deletes that
 * daemon's commits in flight (their clients get 451). This is the same
 * ordering as spool.c (write, fdatasync, rename, fsync of queue/), with a
 * rename that never replaces a queued message of the same id.
 * XXX: spool.c could offer a store that opens nothing; then this goes.
 */
static int
rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return errno;
    if (link(from, to) < 0) /* a file system without RENAME_NOREPLACE */
        return errno;
    unlink(from);
    return 0;
}

static int
write_parts(int fd, const struct str parts[3])
{
    for (int i = 0; i < 3; i++) {
        int r = fd_write_all(fd, parts[i].ptr, parts[i].len);

        if (r < 0)
            return -r;
    }
    return 0;
}

/* Makes the spool directories a daemon that never ran has not made yet. */
static void
store_dirs(const char *spool)
{
    static const char *const subs[] = {"", "/tmp", "/queue"};
    char path[4096];

    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof(path), "%s%s", spool, subs[i]);
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
            return; /* the open below reports it */
    }
}

static int
store_write(const char *spool, const char *id, const struct str parts[3])
{
    char tmp[4096], dst[4096];
    int fd, r;

    snprintf(tmp, sizeof(tmp), "%s/tmp/%s", spool, id);
    snprintf(dst, sizeof(dst), "%s/queue/%s", spool, id);
    store_dirs(spool);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
        return errno;
    r = write_parts(fd, parts);
    if (r == 0 && fdatasync(fd) < 0)
        r = errno;
    if (close(fd) < 0 && r == 0)
        r = errno;
    if (r == 0)
        r = rename_noreplace(tmp, dst);
    if (r != 0) {
        unlink(tmp);
        return r;
    }
    snprintf(tmp, sizeof(tmp), "%s/queue", spool);
    if ((fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || fsync(fd) < 0)
        r = errno;
    if (fd >= 0)
        close(fd);
    if (r != 0)
        unlink(dst); /* not durable: the caller reports a failure, so no copy stays */
    return r;
}

int
submit_store(struct submit *s, const char *spool, struct str trace, struct str msg, char *err,
             size_t errlen)
{
    struct buf meta;
    int r;

    s->env->arrival = time(NULL);
    envelope_needs(s->env, trace, msg);
    buf_init(&meta, 64u << 20);
    if (envelope_write(s->env, &meta) < 0) {
        buf_free(&meta);
        snprintf(err, errlen, "envelope too large");
        return EFBIG;
    }
    r = store_write(spool, s->env->id, (const struct str[3]){buf_str(&meta), trace, msg});
    buf_free(&meta);
    if (r != 0)
        snprintf(err, errlen, "cannot store %s in %s/queue: %s", s->env->id, spool, strerror(r));
    else
        store_chown(spool, s->env->id);
    return r;
}

int
submit_pickup(const char *spool, const char *id)
{
    struct control_request req = {.cmd = CONTROL_PICKUP};
    char path[4096], text[CONTROL_LINE_MAX];

    if (control_socket_path(spool, path, sizeof(path)) < 0)
        return -1;
    snprintf(req.arg, sizeof(req.arg), "%s", id);
    return control_client_request(path, &req, PICKUP_TIMEOUT_MS, text, sizeof(text)) == CONTROL_OK
               ? 0
               : -1;
}
