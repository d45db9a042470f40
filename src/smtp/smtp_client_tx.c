/*
 * One message's transaction on the client side: checks against the
 * server's extensions, MAIL/RCPT/DATA or BDAT with their parameters
 * (RFC 1870, 6152, 6531, 3461, 3030), pipelined as one group when the
 * server allows it (RFC 2920), and matching each reply to its recipient.
 */
#include "base/xmalloc.h"
#include "smtp/smtp_client_impl.h"
#include "smtp/smtp_command.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* No control octets (no CR or LF to smuggle a command in); no spaces
 * either where the value is an xtext parameter. */
static bool
field_ok(const char *s, bool space_ok)
{
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f || (c == ' ' && !space_ok))
            return false;
    }
    return true;
}

static bool
message_ok(const struct smtp_client_message *m)
{
    if (m == NULL || m->nrcpts == 0 || m->rcpts == NULL || (m->len > 0 && m->data == NULL))
        return false;
    if (m->nrcpts > SIZE_MAX / sizeof(struct smtp_client_rcpt_state))
        return false;
    /* the output may hold the dot-stuffed copy: at most twice the size */
    if (m->len > (SIZE_MAX - SMTP_CLIENT_OUT_MAX) / 2 - 16)
        return false;
    if (!field_ok(m->sender, true) || !field_ok(m->envid, false))
        return false;
    for (size_t i = 0; i < m->nrcpts; i++)
        if (m->rcpts[i].address == NULL || !field_ok(m->rcpts[i].address, true) ||
            !field_ok(m->rcpts[i].orcpt, false))
            return false;
    return true;
}

static void
tx_begin(struct smtp_client *cl, const struct smtp_client_message *m)
{
    if (m->nrcpts > cl->rcpt_cap) {
        cl->rcpt = xrealloc(cl->rcpt, m->nrcpts * sizeof(*cl->rcpt));
        cl->rcpt_cap = m->nrcpts;
    }
    memset(cl->rcpt, 0, m->nrcpts * sizeof(*cl->rcpt));
    memset(&cl->error, 0, sizeof(cl->error));
    cl->msg = m;
    cl->nrcpts = m->nrcpts;
    cl->cursor = cl->naccepted = 0;
    cl->mail_refused = cl->tx_open = false;
    cl->pipelining = cl->ext.pipelining;
    cl->chunking = cl->ext.chunking && !cl->lmtp;
    cl->out.max = SMTP_CLIENT_OUT_MAX + 2 * m->len + 16;
}

static void
tx_done(struct smtp_client *cl)
{
    cl->msg = NULL; /* the caller may free it now */
    smtp_client_set_state(cl, SMTP_CLIENT_ST_DONE);
}

/* Every recipient gets r, which is also the error. */
static void
tx_fail_all(struct smtp_client *cl, const struct smtp_reply *r)
{
    for (size_t i = 0; i < cl->nrcpts; i++)
        smtp_client_rcpt_result(cl, i, r);
    cl->error = *r;
}

/* Recipients RCPT accepted get r (a refusal of the whole message). */
static void
tx_result_accepted(struct smtp_client *cl, const struct smtp_reply *r)
{
    for (size_t i = 0; i < cl->nrcpts; i++)
        if (cl->rcpt[i].accepted)
            smtp_client_rcpt_result(cl, i, r);
    if (r->code / 100 != 2)
        cl->error = *r;
}

/* What can be known before saying anything: the caller may then try
 * another server without having opened a transaction here. */
static bool
tx_precheck(struct smtp_client *cl)
{
    const struct smtp_client_message *m = cl->msg;
    struct smtp_reply r;

    if (m->smtputf8 && !cl->ext.smtputf8)
        /* RFC 6531 3.4 */
        smtp_reply_set(&r, 550, "5.6.7", "remote server does not support SMTPUTF8");
    else if (cl->ext.size && cl->ext.size_max > 0 && m->len > cl->ext.size_max)
        /* RFC 1870 6.1 */
        smtp_reply_set(&r, 552, "5.3.4",
                       "message size %zu exceeds the remote server's fixed limit of %llu", m->len,
                       (unsigned long long)cl->ext.size_max);
    else
        return false;
    tx_fail_all(cl, &r);
    tx_done(cl);
    return true;
}

static const char *
ret_param(int ret)
{
    switch (ret) {
    case SMTP_RET_FULL:
        return " RET=FULL";
    case SMTP_RET_HDRS:
        return " RET=HDRS";
    default:
        return "";
    }
}

static void
send_mail(struct smtp_client *cl)
{
    const struct smtp_client_message *m = cl->msg;
    const struct smtp_client_ext *e = &cl->ext;
    const char *envid = e->dsn && m->envid && m->envid[0] ? m->envid : NULL;
    char size[32] = "";

    if (e->size) /* RFC 1870 6: only to a server that offered SIZE */
        snprintf(size, sizeof(size), " SIZE=%zu", m->len);
    smtp_client_cmd(cl, "MAIL FROM:<%s>%s%s%s%s%s%s", m->sender ? m->sender : "", size,
                    m->eightbit && e->eightbitmime ? " BODY=8BITMIME" : "",
                    m->smtputf8 ? " SMTPUTF8" : "", e->dsn ? ret_param(m->ret) : "",
                    envid ? " ENVID=" : "", envid ? envid : "");
}

/* RFC 3461 4.1: NEVER stands alone, else a comma list. */
static void
notify_param(unsigned notify, char *out, size_t n)
{
    static const struct {
        unsigned bit;
        const char *name;
    } kinds[] = {
        {SMTP_NOTIFY_SUCCESS, "SUCCESS"},
        {SMTP_NOTIFY_FAILURE, "FAILURE"},
        {SMTP_NOTIFY_DELAY, "DELAY"},
    };
    size_t len = 0;

    out[0] = '\0';
    if (notify & SMTP_NOTIFY_NEVER) {
        snprintf(out, n, " NOTIFY=NEVER");
        return;
    }
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if ((notify & kinds[i].bit) && len < n)
            len +=
                (size_t)snprintf(out + len, n - len, "%s%s", len ? "," : " NOTIFY=", kinds[i].name);
}

static void
send_rcpt(struct smtp_client *cl, size_t i)
{
    const struct smtp_client_rcpt *rc = &cl->msg->rcpts[i];
    const char *orcpt = cl->ext.dsn && rc->orcpt && rc->orcpt[0] ? rc->orcpt : NULL;
    char notify[48] = "";

    if (cl->ext.dsn) /* RFC 3461 5.2: passed on only where understood */
        notify_param(rc->notify, notify, sizeof(notify));
    smtp_client_cmd(cl, "RCPT TO:<%s>%s%s%s", rc->address, notify, orcpt ? " ORCPT=" : "",
                    orcpt ? orcpt : "");
}

int
smtp_client_send(struct smtp_client *cl, const struct smtp_client_message *m)
{
    if (cl->state != SMTP_CLIENT_ST_READY || !message_ok(m))
        return -1;
    tx_begin(cl, m);
    if (tx_precheck(cl))
        return 0;
    send_mail(cl);
    if (cl->pipelining) {
        /* RFC 2920 3.1: MAIL, the RCPTs and DATA (the last of the group)
         * in one write. BDAT waits: no data is sent to nobody. */
        for (size_t i = 0; i < m->nrcpts; i++)
            send_rcpt(cl, i);
        if (!cl->chunking)
            smtp_client_cmd(cl, "DATA");
    }
    smtp_client_set_state(cl, SMTP_CLIENT_ST_MAIL);
    return 0;
}

/*
 * The message for DATA (RFC 5321 4.5.2): a line starting with "." gets
 * another; the last line is ended if it was not; then the terminator.
 * Bare CR and bare LF are sent as CRLF, so no next hop can read a
 * different end of data into the message than we mean (SMTP smuggling).
 *
 * XXX: the whole message is copied into the output buffer. That doubles
 * its memory for the time of the write, but keeps one output path for
 * commands and data; a chunk queue pointing into m->data would avoid it.
 */
static int
put_dot_stuffed(struct smtp_client *cl, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n) { /* one line per turn; i is at its start */
        size_t j = i;

        while (j < n && p[j] != '\r' && p[j] != '\n')
            j++;
        if ((p[i] == '.' && smtp_client_put(cl, ".", 1) < 0) ||
            smtp_client_put(cl, p + i, j - i) < 0 || smtp_client_put(cl, "\r\n", 2) < 0)
            return -1;
        if (j < n && p[j] == '\r' && j + 1 < n && p[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    return smtp_client_put(cl, ".\r\n", 3);
}

static void
send_bdat(struct smtp_client *cl)
{
    const struct smtp_client_message *m = cl->msg;

    /* RFC 3030 2: one chunk, the message as it is */
    if (smtp_client_cmd(cl, "BDAT %zu LAST", m->len) == 0)
        smtp_client_put(cl, m->len ? m->data : "", m->len);
    cl->cursor = 0;
    smtp_client_set_state(cl, SMTP_CLIENT_ST_FINAL);
}

static int
reply_class(const struct smtp_reply *r)
{
    return r->code / 100;
}

static bool
is_refusal(const struct smtp_reply *r)
{
    return reply_class(r) == 4 || reply_class(r) == 5;
}

static void
on_mail(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (reply_class(r) == 2) {
        cl->tx_open = true;
        if (!cl->pipelining)
            send_rcpt(cl, 0);
        smtp_client_set_state(cl, SMTP_CLIENT_ST_RCPT);
        return;
    }
    if (!is_refusal(r)) {
        smtp_client_protocol_error(cl, "unexpected reply to MAIL");
        return;
    }
    tx_fail_all(cl, r);
    cl->mail_refused = true;
    if (cl->pipelining) /* the replies to the rest of the group still come */
        smtp_client_set_state(cl, SMTP_CLIENT_ST_RCPT);
    else
        tx_done(cl);
}

/* All RCPT replies are in. */
static void
rcpts_done(struct smtp_client *cl)
{
    if (cl->pipelining && !cl->chunking) {
        smtp_client_set_state(cl, SMTP_CLIENT_ST_DATA); /* DATA went with the group */
        return;
    }
    if (cl->naccepted == 0) {
        tx_done(cl); /* tx_open stays if MAIL was accepted: RSET next */
        return;
    }
    if (cl->chunking) {
        send_bdat(cl);
        return;
    }
    smtp_client_cmd(cl, "DATA");
    smtp_client_set_state(cl, SMTP_CLIENT_ST_DATA);
}

static void
on_rcpt(struct smtp_client *cl, const struct smtp_reply *r)
{
    size_t i = cl->cursor++;

    if (reply_class(r) != 2 && !is_refusal(r)) {
        smtp_client_protocol_error(cl, "unexpected reply to RCPT");
        return;
    }
    if (cl->mail_refused) {
        /* outcomes are the MAIL reply's already */
    } else if (reply_class(r) == 2) {
        cl->rcpt[i].accepted = true;
        cl->naccepted++;
    } else {
        smtp_client_rcpt_result(cl, i, r);
    }
    if (cl->cursor < cl->nrcpts) {
        if (!cl->pipelining)
            send_rcpt(cl, cl->cursor);
        return;
    }
    rcpts_done(cl);
}

static void
on_data(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (r->code == 354 && cl->naccepted > 0) {
        put_dot_stuffed(cl, cl->msg->data, cl->msg->len);
        cl->cursor = 0;
        smtp_client_set_state(cl, SMTP_CLIENT_ST_FINAL);
    } else if (r->code == 354 && !cl->lmtp) {
        /* RFC 2920 3.1: DATA accepted though no RCPT was: a lone dot,
         * which the server must not deliver to anybody. */
        smtp_client_put(cl, ".\r\n", 3);
        smtp_client_set_state(cl, SMTP_CLIENT_ST_EMPTY_DOT);
    } else if (r->code == 354) {
        /* RFC 2033 4.2: DATA MUST fail without recipients; and the dot
         * would get no reply to wait for. */
        smtp_client_protocol_error(cl, "354 reply to DATA without recipients");
    } else if (is_refusal(r)) {
        /* RFC 5321 3.3: no data after anything but 354. The recipients
         * refused at RCPT keep their own reply. */
        if (cl->naccepted > 0)
            tx_result_accepted(cl, r);
        tx_done(cl);
    } else {
        smtp_client_protocol_error(cl, "unexpected reply to DATA");
    }
}

static size_t
next_accepted(const struct smtp_client *cl, size_t i)
{
    while (i < cl->nrcpts && !cl->rcpt[i].accepted)
        i++;
    return i;
}

/* After the dot or BDAT LAST. */
static void
on_final(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (reply_class(r) != 2 && !is_refusal(r)) {
        smtp_client_protocol_error(cl, "unexpected reply to the message");
        return;
    }
    if (!cl->lmtp) {
        tx_result_accepted(cl, r);
        /* RFC 3030 2: a failed BDAT leaves the state indeterminate: RSET.
         * After the DATA dot the transaction is over either way. */
        cl->tx_open = cl->chunking && reply_class(r) != 2;
        tx_done(cl);
        return;
    }
    /* RFC 2033 4.2: one reply per accepted recipient, in RCPT order. */
    cl->cursor = next_accepted(cl, cl->cursor);
    smtp_client_rcpt_result(cl, cl->cursor, r);
    cl->cursor = next_accepted(cl, cl->cursor + 1);
    if (cl->cursor == cl->nrcpts) {
        cl->tx_open = false;
        tx_done(cl);
    }
}

void
smtp_client_tx_reply(struct smtp_client *cl, const struct smtp_reply *r)
{
    switch (cl->state) {
    case SMTP_CLIENT_ST_MAIL:
        on_mail(cl, r);
        break;
    case SMTP_CLIENT_ST_RCPT:
        on_rcpt(cl, r);
        break;
    case SMTP_CLIENT_ST_DATA:
        on_data(cl, r);
        break;
    case SMTP_CLIENT_ST_FINAL:
        on_final(cl, r);
        break;
    case SMTP_CLIENT_ST_EMPTY_DOT:
        /* whatever it says, nothing was delivered and the transaction ended */
        cl->tx_open = false;
        tx_done(cl);
        break;
    default:
        break;
    }
}
