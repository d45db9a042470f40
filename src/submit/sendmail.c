/*
 * The sendmail command; see sendmail.h. Option parsing and input
 * conversion are pure; sendmail_run() reads stdin, routes the recipients
 * (submit.c), stores the message and tells a running daemon to pick it up.
 */
#include "submit/sendmail.h"

#include "base/fdio.h"
#include "base/xmalloc.h"
#include "config/router.h"
#include "smtp/smtp_server.h"
#include "submit/submit.h"

#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

/* ---- options ---- */

/* Options with a value, attached or as the next word. Only -f, -r, -F and
 * -C are used; the rest are sendmail's and accepted for compatibility. */
static const char value_opts[] = "fFrCBNRVXhLOA";
/* Flags: -t and -i are used; -v -m -n -U -G are accepted and ignored. */
static const char flag_opts[] = "tivmnUG";

static int
opt_fail(char *err, size_t errlen, const char *fmt, const char *arg)
{
    snprintf(err, errlen, fmt, arg);
    return -1;
}

/* -oX (only -oi has an effect) and -bX. */
static int
word_option(struct sendmail_opts *o, const char *a, char *err, size_t errlen)
{
    const char *v = a + 2;

    if (a[1] == 'o') {
        if (*v == '\0')
            return opt_fail(err, errlen, "option %s needs a value", a);
        if (strcmp(v, "i") == 0)
            o->ignore_dots = true;
        else
            o->ignored++; /* -oem, -odb, -odi, -oQ/dir, -om, ... */
        return 0;
    }
    if (strcmp(v, "m") == 0)
        o->mode = SENDMAIL_DELIVER;
    else if (strcmp(v, "s") == 0)
        o->mode = SENDMAIL_SMTP;
    else if (strcmp(v, "p") == 0)
        o->mode = SENDMAIL_QUEUE;
    else
        return opt_fail(err, errlen, "option %s is not supported", a);
    return 0;
}

static void
value_option(struct sendmail_opts *o, char c, const char *v)
{
    switch (c) {
    case 'f':
    case 'r':
        o->sender = v;
        break;
    case 'F':
        o->fullname = v;
        break;
    case 'C':
        o->config = v;
        break;
    default:
        o->ignored++;
    }
}

static void
flag_option(struct sendmail_opts *o, char c)
{
    if (c == 't')
        o->extract = true;
    else if (c == 'i')
        o->ignore_dots = true;
    else
        o->ignored++;
}

int
sendmail_parse_args(int argc, char **argv, struct sendmail_opts *o, char *err, size_t errlen)
{
    int i;

    memset(o, 0, sizeof(*o));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        char opt[3] = "-?";

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (a[1] == 'o' || a[1] == 'b') {
            if (word_option(o, a, err, errlen) < 0)
                return -1;
            continue;
        }
        for (const char *p = a + 1; *p; p++) {
            opt[1] = *p;
            if (strchr(value_opts, *p)) {
                const char *v = p[1] ? p + 1 : i + 1 < argc ? argv[++i] : NULL;

                if (v == NULL)
                    return opt_fail(err, errlen, "option %s needs a value", opt);
                value_option(o, *p, v);
                break;
            }
            if (!strchr(flag_opts, *p))
                return opt_fail(err, errlen, "unknown or unsupported option %s", opt);
            flag_option(o, *p);
        }
    }
    o->rcpts = argv + i;
    o->nrcpts = argc - i;
    return 0;
}

/* ---- input ---- */

void
sendmail_input_init(struct sendmail_input *in, struct buf *out, bool ignore_dots)
{
    memset(in, 0, sizeof(*in));
    in->out = out;
    in->ignore_dots = ignore_dots;
    buf_init(&in->line, out->max);
}

void
sendmail_input_free(struct sendmail_input *in)
{
    buf_free(&in->line);
}

/* A complete line (its LF removed) goes out with CRLF. */
static int
input_line(struct sendmail_input *in)
{
    struct buf *l = &in->line;

    if (l->len && l->data[l->len - 1] == '\r')
        l->len--;
    if (in->nlines++ == 0 && l->len >= 5 && memcmp(l->data, "From ", 5) == 0) {
        /* an mbox separator, not a header field: dropped, as Postfix does */
    } else if (!in->ignore_dots && l->len == 1 && l->data[0] == '.') {
        in->done = true;
    } else if (buf_append(in->out, l->data, l->len) < 0 || buf_append(in->out, "\r\n", 2) < 0) {
        in->too_big = true;
        return -1;
    }
    buf_reset(l);
    return 0;
}

long
sendmail_input_feed(struct sendmail_input *in, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && !in->done) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t take = nl ? (size_t)(nl - (p + i)) : n - i;

        if (buf_append(&in->line, p + i, take) < 0) {
            in->too_big = true;
            return -1;
        }
        i += take;
        if (nl == NULL)
            break;
        i++;
        if (input_line(in) < 0)
            return -1;
    }
    return (long)i;
}

int
sendmail_input_end(struct sendmail_input *in)
{
    if (in->done || in->line.len == 0)
        return 0;
    return input_line(in);
}

/* Reads stdin until EOF or the "." line. 0, or an exit code. */
static int
read_message(struct buf *msg, bool ignore_dots)
{
    struct sendmail_input in;
    char chunk[65536];
    int rc = EX_OK;

    sendmail_input_init(&in, msg, ignore_dots);
    while (!in.done) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "sendmail: cannot read the message: %s\n", strerror(errno));
            rc = EX_IOERR;
            break;
        }
        if ((n == 0 && sendmail_input_end(&in) < 0) ||
            (n > 0 && sendmail_input_feed(&in, chunk, (size_t)n) < 0)) {
            fprintf(stderr, "sendmail: message too large (limit %zu octets)\n", msg->max);
            rc = EX_DATAERR;
            break;
        }
        if (n == 0)
            break;
    }
    sendmail_input_free(&in);
    return rc;
}

/* ---- recipients ---- */

int
sendmail_exit_code(const struct smtp_reply *r)
{
    if (r->code >= 400 && r->code < 500)
        return EX_TEMPFAIL;
    if (r->status && strcmp(r->status, "5.1.1") == 0)
        return EX_NOUSER;
    if (r->status && strncmp(r->status, "5.7.", 4) == 0)
        return EX_NOPERM;
    if (r->code == 501 || r->code == 553)
        return EX_DATAERR;
    return EX_UNAVAILABLE;
}

struct sendmail_user {
    unsigned uid;
    char login[64];
    char fullname[256];
};

struct rcpt_ctx {
    const struct config *cf;
    struct submit *s;
    size_t given;
    int rc; /* the first refusal's exit code */
};

static void
rcpt_one(void *arg, const char *addr)
{
    struct rcpt_ctx *c = arg;
    struct smtp_path p;
    struct smtp_reply r = {0};

    c->given++;
    if (submit_parse_rcpt(c->cf, addr, &p, &r) == 0 && submit_rcpt(c->s, &p, 0, "", &r) == 0)
        return;
    fprintf(stderr, "sendmail: %s: %d %s %s\n", addr, r.code, r.status ? r.status : "", r.text);
    if (c->rc == EX_OK)
        c->rc = sendmail_exit_code(&r);
}

/* Every recipient is checked and each refusal reported; any refusal
 * means nothing is queued. */
static int
add_rcpts(struct submit *s, const struct sendmail_opts *o, struct str msg)
{
    struct rcpt_ctx c = {.cf = s->cf, .s = s};

    for (int i = 0; i < o->nrcpts; i++)
        submit_address_list(str_cstr(o->rcpts[i]), rcpt_one, &c);
    if (o->extract)
        submit_header_rcpts(msg, rcpt_one, &c);
    if (c.given == 0) {
        fprintf(stderr, "sendmail: no recipients: give addresses%s\n",
                o->extract ? " or To:, Cc:, Bcc: fields" : " or use -t");
        return EX_USAGE;
    }
    return c.rc;
}

/* ---- the store ---- */

struct store_args {
    const struct config *cf;
    const struct sendmail_user *u;
    const char *from_addr; /* for an added From: */
    const char *helo;      /* -bs only */
    const char *protocol;
};

static int
store_exit_code(int err)
{
    return err == EACCES || err == EPERM || err == EROFS || err == ENOENT ? EX_CANTCREAT
                                                                          : EX_TEMPFAIL;
}

/* Fixes the headers, adds the trace and stores; a collision of queue ids
 * with another sendmail command (EEXIST) gets a new id. 0 or an errno. */
static int
store(struct submit *s, const struct store_args *a, struct str msg, char *err, size_t errlen)
{
    struct buf out, trace;
    int r = EEXIST;

    buf_init(&out, msg.len + 64 * 1024);
    buf_init(&trace, 4096);
    for (int tries = 0; tries < 5 && r == EEXIST; tries++) {
        char msgid[QUEUE_ID_LEN + 300];
        struct submit_fixes fx = {a->from_addr, a->u->fullname, msgid, time(NULL)};
        struct submit_trace t = {a->cf->hostname, a->u->uid, a->helo, a->protocol,
                                 s->env->id,      "",        fx.now};

        submit_new_id(s, a->cf->spool);
        snprintf(msgid, sizeof(msgid), "<%s@%s>", s->env->id, a->cf->hostname);
        t.for_rcpt = s->naccepted == 1 ? s->first_rcpt : "";
        buf_reset(&out);
        buf_reset(&trace);
        if (submit_fix_headers(msg, &fx, &out) < 0 || submit_trace(&t, &trace) < 0) {
            snprintf(err, errlen, "message too large");
            r = EFBIG;
            break;
        }
        r = submit_store(s, a->cf->spool, buf_str(&trace), buf_str(&out), err, errlen);
    }
    buf_free(&out);
    buf_free(&trace);
    return r;
}

static int
run_deliver(const struct config *cf, const struct sendmail_opts *o, const struct sendmail_user *u)
{
    char sender[SMTP_PATH_MAX + 1], from[SMTP_PATH_MAX + 1], err[1024];
    struct smtp_reply r = {0};
    struct smtp_path path;
    struct submit s;
    struct buf msg;
    int rc;

    if (submit_parse_sender(cf, o->sender ? o->sender : u->login, &path, &r) < 0 ||
        smtp_path_format(&path, sender, sizeof(sender)) < 0) {
        fprintf(stderr, "sendmail: bad sender address: %s\n", r.text);
        return EX_USAGE;
    }
    snprintf(from, sizeof(from), "%s", sender);
    if (from[0] == '\0') /* the null sender: From: names the user */
        snprintf(from, sizeof(from), "%s@%s", u->login, cf->hostname);
    buf_init(&msg, cf->message_size);
    submit_init(&s, cf);
    submit_begin(&s, sender, "");
    if ((rc = read_message(&msg, o->ignore_dots)) == EX_OK &&
        (rc = add_rcpts(&s, o, buf_str(&msg))) == EX_OK) {
        struct store_args a = {cf, u, from, "", ""};
        int e = store(&s, &a, buf_str(&msg), err, sizeof(err));

        if (e != 0) {
            fprintf(stderr, "sendmail: %s\n", err);
            rc = store_exit_code(e);
        } else {
            submit_pickup(cf->spool, s.env->id); /* else the next start delivers it */
        }
    }
    submit_clear(&s);
    buf_free(&msg);
    return rc;
}

/* ---- -bs: SMTP on stdin/stdout ---- */

struct bs {
    const struct config *cf;
    const struct sendmail_user *u;
    struct submit sub;
    struct smtp_server *srv;
    struct smtp_server_settings set;
};

static int
bs_mail(void *ctx, enum smtp_mode mode, const struct smtp_path *from,
        const struct smtp_mail_params *p, struct smtp_reply *r)
{
    struct bs *b = ctx;
    char sender[SMTP_PATH_MAX + 1];
    struct envelope *e;

    if (smtp_path_format(from, sender, sizeof(sender)) < 0)
        return smtp_reply_set(r, 501, "5.1.7", "sender address too long");
    submit_begin(&b->sub, sender, smtp_server_helo(b->srv));
    e = b->sub.env;
    e->body = p->body;
    e->smtputf8 = p->smtputf8;
    e->ret = p->ret;
    free(e->envid);
    e->envid = xstrdup(p->envid);
    e->mode = mode;
    return 0;
}

static int
bs_rcpt(void *ctx, const struct smtp_path *to, const struct smtp_rcpt_params *p,
        struct smtp_reply *r)
{
    struct bs *b = ctx;

    return submit_rcpt(&b->sub, to, p->notify, p->orcpt, r);
}

static void
bs_reset(void *ctx)
{
    struct bs *b = ctx;

    submit_clear(&b->sub);
}

static int
bs_vrfy(void *ctx, struct str arg, char *out, size_t n, struct smtp_reply *r)
{
    struct bs *b = ctx;

    return router_vrfy(b->cf, arg, out, n, r);
}

static int
bs_expn(void *ctx, struct str arg, struct buf *lines, struct smtp_reply *r)
{
    struct bs *b = ctx;

    return router_expn_lines(b->cf, arg, lines, r);
}

static const struct smtp_server_hooks bs_hooks = {
    .mail = bs_mail,
    .rcpt = bs_rcpt,
    .reset = bs_reset,
    .vrfy = bs_vrfy,
    .expn = bs_expn,
};

static void
bs_commit(struct bs *b)
{
    const struct buf *msg = smtp_server_message(b->srv);
    const char *proto = !smtp_server_esmtp(b->srv) ? "SMTP"
                        : b->sub.env->smtputf8     ? "UTF8SMTP"
                                                   : "ESMTP";
    char from[SMTP_PATH_MAX + 1], err[1024], id[QUEUE_ID_LEN + 1];
    struct store_args a = {b->cf, b->u, from, smtp_server_helo(b->srv), proto};
    struct smtp_reply r = {0};
    int e;

    snprintf(from, sizeof(from), "%s", b->sub.env->sender);
    if (from[0] == '\0')
        snprintf(from, sizeof(from), "%s@%s", b->u->login, b->cf->hostname);
    e = store(&b->sub, &a, buf_str(msg), err, sizeof(err));
    snprintf(id, sizeof(id), "%s", b->sub.env->id);
    if (e == ENOSPC || e == EDQUOT)
        smtp_reply_set(&r, 452, "4.3.1", "insufficient system storage");
    else if (e != 0)
        smtp_reply_set(&r, 451, "4.3.0", "local error: message not stored");
    if (e != 0)
        fprintf(stderr, "sendmail: %s\n", err);
    smtp_server_commit_done(b->srv, e ? &r : NULL, id);
    if (e == 0)
        submit_pickup(b->cf->spool, id);
}

static void
bs_settings(struct bs *b)
{
    const struct config *cf = b->cf;

    b->set = (struct smtp_server_settings){
        .hostname = cf->hostname,
        .peer_ip = "local",
        .message_size = cf->message_size,
        .max_recipients = cf->max_recipients,
        .max_errors = cf->max_errors,
        .max_received = cf->max_received,
        .line_length = cf->line_length,
        .vrfy = cf->vrfy,
        .expn = cf->expn,
        .terminal_delivery = false, /* SEND, SOML, SAML need the daemon's view of ttys */
        .reject_bare_newline = cf->bare_newline == BARE_NEWLINE_REJECT,
    };
}

/* Feeds the machine and sends its replies until QUIT, 421 or EOF. */
static int
bs_loop(struct bs *b, struct buf *in)
{
    char chunk[65536];

    for (;;) {
        struct buf *out;
        ssize_t n;

        buf_consume(in, smtp_server_feed(b->srv, in->data ? in->data : "", in->len));
        if (smtp_server_state(b->srv) == SMTP_STATE_COMMIT) {
            bs_commit(b);
            continue; /* pipelined commands may follow */
        }
        out = smtp_server_output(b->srv);
        if (fd_write_all(STDOUT_FILENO, out->data, out->len) < 0)
            return EX_IOERR;
        buf_reset(out);
        if (smtp_server_state(b->srv) == SMTP_STATE_CLOSED)
            return EX_OK;
        n = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? EX_IOERR : EX_OK;
        if (buf_append(in, chunk, (size_t)n) < 0)
            return EX_DATAERR; /* the machine consumes every complete line */
    }
}

static int
run_smtp(const struct config *cf, const struct sendmail_user *u)
{
    struct bs b = {.cf = cf, .u = u};
    struct buf in;
    int rc;

    signal(SIGPIPE, SIG_IGN); /* a peer gone shows as a write error */
    submit_init(&b.sub, cf);
    bs_settings(&b);
    b.srv = smtp_server_new(&b.set, &bs_hooks, &b);
    buf_init(&in, 1u << 20);
    rc = bs_loop(&b, &in);
    buf_free(&in);
    smtp_server_free(b.srv);
    submit_clear(&b.sub);
    return rc;
}

/* ---- main ---- */

static void
user_lookup(struct sendmail_user *u, const char *fullname)
{
    struct passwd *pw = getpwuid(getuid());

    u->uid = (unsigned)getuid();
    if (pw && pw->pw_name[0] && strlen(pw->pw_name) < sizeof(u->login))
        snprintf(u->login, sizeof(u->login), "%s", pw->pw_name);
    else
        snprintf(u->login, sizeof(u->login), "uid%u", u->uid);
    if (fullname == NULL && pw && pw->pw_gecos) /* the GECOS name, up to the first "," */
        snprintf(u->fullname, sizeof(u->fullname), "%.*s", (int)strcspn(pw->pw_gecos, ","),
                 pw->pw_gecos);
    else
        snprintf(u->fullname, sizeof(u->fullname), "%s", fullname ? fullname : "");
}

int
sendmail_run(const struct sendmail_opts *o, const char *config_path)
{
    const char *path = o->config ? o->config : config_path;
    struct sendmail_user u;
    char err[1024];
    struct config *cf = config_load(path, err, sizeof(err));
    int rc;

    if (cf == NULL) {
        fprintf(stderr, "sendmail: %s\n", err);
        return EX_CONFIG;
    }
    sync_group_set_method(cf->sync);
    user_lookup(&u, o->fullname);
    rc = o->mode == SENDMAIL_SMTP ? run_smtp(cf, &u) : run_deliver(cf, o, &u);
    config_unref(cf);
    return rc;
}
