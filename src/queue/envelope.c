/*
 * Envelope text form. One record per line: a keyword, then fields
 * separated by single spaces. Fields escape '%', space, controls and DEL
 * as %XX; "-" stands for an empty field. See docs/queue-format.md.
 */
#include "queue/envelope.h"

#include "base/xmalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENVELOPE_MAGIC "petrel-queue 1"
#define ENVELOPE_MAX_RCPTS 100000

struct envelope *
envelope_new(void)
{
    struct envelope *e = xcalloc(1, sizeof(*e));

    e->sender = xstrdup("");
    e->envid = xstrdup("");
    e->client = xstrdup("");
    e->helo = xstrdup("");
    return e;
}

static void
rcpt_clear(struct envelope_rcpt *r)
{
    free(r->action);
    free(r->user);
    free(r->address);
    free(r->orig);
    free(r->orcpt);
    free(r->error);
}

void
envelope_free(struct envelope *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; i < e->nrcpts; i++)
        rcpt_clear(&e->rcpts[i]);
    free(e->rcpts);
    free(e->sender);
    free(e->envid);
    free(e->client);
    free(e->helo);
    free(e);
}

struct envelope_rcpt *
envelope_add_rcpt(struct envelope *e, enum rcpt_kind kind, const char *action, const char *user,
                  const char *address, const char *orig, unsigned notify, const char *orcpt)
{
    struct envelope_rcpt *r;

    e->rcpts = xrealloc(e->rcpts, (e->nrcpts + 1) * sizeof(*e->rcpts));
    r = &e->rcpts[e->nrcpts++];
    *r = (struct envelope_rcpt){
        .kind = kind,
        .action = xstrdup(action),
        .user = xstrdup(user),
        .address = xstrdup(address),
        .orig = xstrdup(orig),
        .notify = notify,
        .orcpt = xstrdup(orcpt),
        .state = RCPT_PENDING,
        .error = xstrdup(""),
    };
    return r;
}

bool
envelope_has_rcpt(const struct envelope *e, enum rcpt_kind kind, const char *action,
                  const char *address)
{
    for (size_t i = 0; i < e->nrcpts; i++) {
        const struct envelope_rcpt *r = &e->rcpts[i];

        if (r->kind == kind && strcmp(r->action, action) == 0 && strcmp(r->address, address) == 0)
            return true;
    }
    return false;
}

const char *
envelope_rcpt_domain(const struct envelope_rcpt *r)
{
    const char *at = strrchr(r->address, '@');

    return at ? at + 1 : "";
}

size_t
envelope_pending(const struct envelope *e)
{
    size_t n = 0;

    for (size_t i = 0; i < e->nrcpts; i++)
        n += e->rcpts[i].state == RCPT_PENDING;
    return n;
}

static int
field_put(struct buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    int r = buf_append(out, " ", 1);

    if (*s == '\0' || strcmp(s, "-") == 0)
        return r ? r : buf_append(out, *s ? "%2D" : "-", *s ? 3 : 1);
    for (; *s && r == 0; s++) {
        unsigned char c = (unsigned char)*s;

        if (c <= ' ' || c == '%' || c == 0x7f) {
            char esc[3] = {'%', hex[c >> 4], hex[c & 15]};

            r = buf_append(out, esc, 3);
        } else {
            r = buf_append(out, s, 1);
        }
    }
    return r;
}

static int
rcpt_write(const struct envelope_rcpt *r, struct buf *out)
{
    char notify[16];
    int rc = buf_cat(out, "rcpt ", r->kind == RCPT_MAILDIR ? "maildir" : "relay", NULL);

    snprintf(notify, sizeof(notify), "%u", r->notify);
    if (rc == 0)
        rc = field_put(out, r->action);
    if (rc == 0)
        rc = field_put(out, r->user);
    if (rc == 0)
        rc = field_put(out, r->address);
    if (rc == 0)
        rc = field_put(out, r->orig);
    if (rc == 0)
        rc = field_put(out, notify);
    if (rc == 0)
        rc = field_put(out, r->orcpt);
    return rc ? rc : buf_append(out, "\n", 1);
}

int
envelope_write(const struct envelope *e, struct buf *out)
{
    int r = buf_printf(out,
                       ENVELOPE_MAGIC "\nid %s\narrival %lld\nbody %d\nsmtputf8 %d\n"
                                      "ret %d\nmode %d\nfrom",
                       e->id, (long long)e->arrival, e->body, e->smtputf8, e->ret, e->mode);

    if (r == 0)
        r = field_put(out, e->sender);
    if (r == 0)
        r = buf_append(out, "\nenvid", 6);
    if (r == 0)
        r = field_put(out, e->envid);
    if (r == 0)
        r = buf_append(out, "\nclient", 7);
    if (r == 0)
        r = field_put(out, e->client);
    if (r == 0)
        r = field_put(out, e->helo);
    if (r == 0)
        r = buf_append(out, "\n", 1);
    for (size_t i = 0; i < e->nrcpts && r == 0; i++)
        r = rcpt_write(&e->rcpts[i], out);
    return r ? r : buf_append(out, "\n", 1);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the next space-separated field of *line; NULL if none or bad. */
static char *
field_take(struct str *line)
{
    struct str f = str_cut(line, ' ');
    char *out, *o;

    if (f.len == 0)
        return NULL;
    if (f.len == 1 && f.ptr[0] == '-')
        return xstrdup("");
    o = out = xmalloc(f.len + 1);
    for (size_t i = 0; i < f.len; i++) {
        unsigned char c = (unsigned char)f.ptr[i];

        if (c < ' ' || c == 0x7f) { /* field_put escapes these: a CR or NUL is damage */
            free(out);
            return NULL;
        }
        if (c != '%') {
            *o++ = f.ptr[i];
            continue;
        }
        int hi = i + 2 < f.len ? hexval(f.ptr[i + 1]) : -1;
        int lo = i + 2 < f.len ? hexval(f.ptr[i + 2]) : -1;

        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = '\0';
    return out;
}

static bool
number_take(struct str *line, long long min, long long max, long long *out)
{
    char *f = field_take(line), *end;
    long long v;

    if (f == NULL)
        return false;
    v = strtoll(f, &end, 10);
    if (*f == '\0' || *end != '\0' || v < min || v > max) {
        free(f);
        return false;
    }
    free(f);
    *out = v;
    return true;
}

static bool
rcpt_parse(struct envelope *e, struct str line)
{
    char *f[7] = {0};
    long long notify;
    bool ok = true;

    for (int i = 0; i < 7 && ok; i++) {
        if (i == 5) {
            ok = number_take(&line, 0, 15, &notify);
            f[i] = NULL;
        } else {
            ok = (f[i] = field_take(&line)) != NULL;
        }
    }
    ok = ok && line.len == 0 && e->nrcpts < ENVELOPE_MAX_RCPTS &&
         (strcmp(f[0], "maildir") == 0 || strcmp(f[0], "relay") == 0);
    if (ok)
        envelope_add_rcpt(e, strcmp(f[0], "maildir") == 0 ? RCPT_MAILDIR : RCPT_RELAY, f[1], f[2],
                          f[3], f[4], (unsigned)notify, f[6]);
    for (int i = 0; i < 7; i++)
        free(f[i]);
    return ok;
}

static bool
string_set(char **dst, struct str *line)
{
    char *v = field_take(line);

    if (v == NULL)
        return false;
    free(*dst);
    *dst = v;
    return true;
}

static bool
envelope_line(struct envelope *e, struct str line)
{
    struct str key = str_cut(&line, ' ');
    long long v;

    if (str_ieq(key, "rcpt"))
        return rcpt_parse(e, line);
    if (str_ieq(key, "from"))
        return string_set(&e->sender, &line) && line.len == 0;
    if (str_ieq(key, "envid"))
        return string_set(&e->envid, &line) && line.len == 0;
    if (str_ieq(key, "client"))
        return string_set(&e->client, &line) && string_set(&e->helo, &line) && line.len == 0;
    if (str_ieq(key, "id"))
        return str_copy(line, e->id, sizeof(e->id)) && queue_id_valid(e->id);
    if (!number_take(&line, 0, INT64_MAX, &v) || line.len)
        return false;
    if (str_ieq(key, "arrival"))
        e->arrival = v;
    else if (str_ieq(key, "body") && v <= 2)
        e->body = (int)v;
    else if (str_ieq(key, "smtputf8") && v <= 1)
        e->smtputf8 = v;
    else if (str_ieq(key, "ret") && v <= 2)
        e->ret = (int)v;
    else if (str_ieq(key, "mode") && v <= 3)
        e->mode = (int)v;
    else
        return false;
    return true;
}

struct envelope *
envelope_parse(const char *p, size_t n)
{
    struct str in = str_make(p, n), line;
    struct envelope *e;

    line = str_cut(&in, '\n');
    if (!str_ieq(line, ENVELOPE_MAGIC))
        return NULL;
    e = envelope_new();
    for (;;) {
        if (in.len == 0)
            break; /* no blank line: truncated */
        line = str_cut(&in, '\n');
        if (line.len == 0) {
            e->data_offset = (size_t)(in.ptr - p);
            if (e->id[0] && e->nrcpts)
                return e;
            break;
        }
        if (!envelope_line(e, line))
            break;
    }
    envelope_free(e);
    return NULL;
}

static void
state_line(struct envelope *e, struct str word, struct str line)
{
    struct envelope_rcpt *r;
    long long idx, next, attempts;
    char *text;

    if (str_ieq(word, "w")) {
        e->warned = true;
        return;
    }
    if (!number_take(&line, 0, (long long)e->nrcpts - 1, &idx))
        return;
    r = &e->rcpts[idx];
    if (str_ieq(word, "d")) {
        r->state = RCPT_DELIVERED;
    } else if (str_ieq(word, "n")) {
        r->dsn_sent = true;
    } else if (str_ieq(word, "f") && (text = field_take(&line)) != NULL) {
        r->state = RCPT_FAILED;
        free(r->error);
        r->error = text;
    } else if (str_ieq(word, "t") && number_take(&line, 0, INT64_MAX, &next) &&
               number_take(&line, 0, 1000000, &attempts) && (text = field_take(&line)) != NULL) {
        r->next_attempt = next;
        r->attempts = (unsigned)attempts;
        free(r->error);
        r->error = text;
    }
}

void
envelope_apply_state(struct envelope *e, const char *p, size_t n)
{
    struct str in = str_make(p, n), line, word;

    while (in.len) {
        line = str_cut(&in, '\n');
        if (in.len == 0 && line.ptr + line.len == p + n)
            break; /* last line without "\n": torn write, ignore */
        word = str_cut(&line, ' ');
        state_line(e, word, line);
    }
}

int
envelope_journal_line(const struct envelope *e, size_t i, char kind, struct buf *out)
{
    const struct envelope_rcpt *r = &e->rcpts[i];
    int rc;

    switch (kind) {
    case 'd':
    case 'n':
        return buf_printf(out, "%c %zu\n", kind, i);
    case 'f':
        rc = buf_printf(out, "f %zu", i);
        break;
    default:
        rc = buf_printf(out, "t %zu %lld %u", i, (long long)r->next_attempt, r->attempts);
        break;
    }
    if (rc == 0)
        rc = field_put(out, r->error);
    return rc ? rc : buf_append(out, "\n", 1);
}
