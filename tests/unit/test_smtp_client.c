/*
 * The SMTP/LMTP client state machine driven as a fake server would: feed
 * reply bytes, assert the exact command bytes produced and the outcome of
 * every recipient. Covers EHLO keywords, the HELO fallback, LMTP, PIPELINING
 * and the lock-step sequence, refusals at each step, dot-stuffing, BDAT,
 * the SIZE/SMTPUTF8 pre-checks, DSN parameters, 421 and protocol errors,
 * several messages on one connection, and feeding at every split point.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "smtp/smtp_client.h"
#include "smtp/smtp_command.h"

#define HELO_NAME "client.example.net"
#define GREETING "220 mx.example.org ESMTP ready\r\n"
#define EHLO_CMD "EHLO " HELO_NAME "\r\n"
#define LHLO_CMD "LHLO " HELO_NAME "\r\n"

/* Every extension the client knows. */
#define EHLO_ALL                                                                                   \
    "250-mx.example.org hello [192.0.2.2]\r\n"                                                     \
    "250-PIPELINING\r\n"                                                                           \
    "250-SIZE 10000\r\n"                                                                           \
    "250-8BITMIME\r\n"                                                                             \
    "250-SMTPUTF8\r\n"                                                                             \
    "250-CHUNKING\r\n"                                                                             \
    "250-DSN\r\n"                                                                                  \
    "250-STARTTLS\r\n"                                                                             \
    "250-ENHANCEDSTATUSCODES\r\n"                                                                  \
    "250-AUTH PLAIN login\r\n"                                                                     \
    "250 AUTH=LOGIN CRAM-MD5\r\n"
/* Pipelining without CHUNKING or DSN: the MAIL/RCPT/DATA group. */
#define EHLO_PIPE "250-mx.example.org\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 10000\r\n"
/* No extensions at all: one command at a time. */
#define EHLO_NONE "250-mx.example.org\r\n250 HELP\r\n"
#define EHLO_CHUNK "250-mx.example.org\r\n250-PIPELINING\r\n250 CHUNKING\r\n"
#define EHLO_DSN "250-mx.example.org\r\n250-PIPELINING\r\n250 DSN\r\n"

#define BODY "Subject: test\r\n\r\nHello\r\n" /* 24 octets */
#define MAIL_CMD "MAIL FROM:<s@example.net>"
#define RCPT_A "RCPT TO:<a@example.org>\r\n"
#define RCPT_B "RCPT TO:<b@example.org>\r\n"
#define RCPT_C "RCPT TO:<c@example.org>\r\n"
#define OK "250 2.0.0 Ok\r\n"

static struct smtp_client_rcpt rcpts[3];
static struct smtp_client_message msg;
static struct smtp_client_settings set;
static struct smtp_client *cl;
static char out[1 << 16];

static int
setup(void **state)
{
    (void)state;
    rcpts[0] = (struct smtp_client_rcpt){"a@example.org", 0, ""};
    rcpts[1] = (struct smtp_client_rcpt){"b@example.org", 0, ""};
    rcpts[2] = (struct smtp_client_rcpt){"c@example.org", 0, ""};
    msg = (struct smtp_client_message){
        .sender = "s@example.net",
        .rcpts = rcpts,
        .nrcpts = 1,
        .envid = "",
        .data = BODY,
        .len = strlen(BODY),
    };
    set = (struct smtp_client_settings){.helo_name = HELO_NAME};
    cl = NULL;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    smtp_client_free(cl);
    cl = NULL;
    return 0;
}

/* ---- driving the machine ---- */

/* The commands produced so far, NUL-terminated; empties the output. */
static const char *
take(void)
{
    struct buf *b = smtp_client_output(cl);

    assert_true(b->len < sizeof(out));
    memcpy(out, b->data ? b->data : "", b->len);
    out[b->len] = '\0';
    buf_reset(b);
    return out;
}

/* Server bytes that must be consumed whole. */
static void
feed(const char *s)
{
    assert_int_equal(smtp_client_feed(cl, s, strlen(s)), strlen(s));
}

static enum smtp_client_event
ev(void)
{
    return smtp_client_event(cl);
}

/* Connected, greeted and through EHLO with the given reply. */
static void
start(const char *ehlo_reply)
{
    cl = smtp_client_new(&set);
    assert_non_null(cl);
    assert_string_equal(take(), "");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    feed(GREETING);
    assert_string_equal(take(), set.lmtp ? LHLO_CMD : EHLO_CMD);
    feed(ehlo_reply);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
send_ok(void)
{
    assert_int_equal(smtp_client_send(cl, &msg), 0);
}

static void
assert_reply(const struct smtp_reply *r, int code, const char *status, const char *text)
{
    assert_non_null(r);
    assert_int_equal(r->code, code);
    if (status == NULL)
        assert_null(r->status);
    else
        assert_string_equal(r->status, status);
    if (text)
        assert_string_equal(r->text, text);
}

static void
assert_result(size_t i, int code, const char *status, const char *text)
{
    assert_reply(smtp_client_result(cl, i), code, status, text);
}

/* ---- connection set-up ---- */

static void
test_ehlo_all_keywords(void **state)
{
    const struct smtp_client_ext *e;

    (void)state;
    start(EHLO_ALL);
    e = smtp_client_ext(cl);
    assert_true(e->esmtp && e->pipelining && e->eightbitmime && e->smtputf8 && e->chunking);
    assert_true(e->dsn && e->starttls && e->enhancedstatuscodes && e->size);
    assert_int_equal(e->size_max, 10000);
    assert_string_equal(e->auth, "PLAIN LOGIN CRAM-MD5"); /* upper-cased, no duplicates */
    assert_int_equal(smtp_client_timeout(cl), 0);
}

static void
test_ehlo_keyword_forms(void **state)
{
    const struct smtp_client_ext *e;

    (void)state;
    /* the first line is the greeting, never a keyword; case does not
     * matter; unknown keywords and bad values are ignored */
    start("250-PIPELINING\r\n250-size\r\n250-8bitmime\r\n250-XFOO bar\r\n"
          "250-Dsn\r\n250 auth  plain bad!mech  PLAIN\r\n");
    e = smtp_client_ext(cl);
    assert_false(e->pipelining);
    assert_true(e->size && e->eightbitmime && e->dsn);
    assert_int_equal(e->size_max, 0);
    assert_string_equal(e->auth, "PLAIN");
    smtp_client_free(cl);

    start("250-mx\r\n250 SIZE 12x\r\n");
    assert_true(smtp_client_ext(cl)->size);
    assert_int_equal(smtp_client_ext(cl)->size_max, 0);
    smtp_client_free(cl);

    start("250-mx\r\n250 SIZE 99999999999999999999999\r\n");
    assert_int_equal(smtp_client_ext(cl)->size_max, 0);
}

static void
test_greeting_refused(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    feed("554-mx.example.org\r\n554 5.7.1 no service for you\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 554, "5.7.1", "mx.example.org no service for you");
    assert_string_equal(take(), "");
    assert_int_equal(smtp_client_feed(cl, OK, strlen(OK)), 0); /* nothing more is read */
    smtp_client_quit(cl);
    assert_int_equal(ev(), SMTP_CLIENT_CLOSED);
    assert_string_equal(take(), "");
}

static void
test_greeting_other(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    feed("421 4.3.2 mx.example.org busy\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 421, "4.3.2", NULL);
    smtp_client_free(cl);

    cl = smtp_client_new(&set);
    feed("250 hello?\r\n"); /* anything but 220 */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 250, "2.0.0", "hello?");
    assert_string_equal(take(), "");
}

static void
test_helo_fallback(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    feed(GREETING);
    assert_string_equal(take(), EHLO_CMD);
    feed("502 5.5.1 command not implemented\r\n");
    assert_string_equal(take(), "HELO " HELO_NAME "\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    feed("250 mx.example.org\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_false(smtp_client_ext(cl)->esmtp);
    /* no parameters without ESMTP, 8-bit or not */
    msg.eightbit = true;
    msg.ret = SMTP_RET_FULL;
    send_ok();
    assert_string_equal(take(), MAIL_CMD "\r\n");
}

static void
test_helo_refused(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("500 what\r\n");
    assert_string_equal(take(), "HELO " HELO_NAME "\r\n");
    feed("550 5.7.1 go away\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 550, "5.7.1", "go away");
}

static void
test_ehlo_temporary_failure(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    feed(GREETING);
    take();
    feed("451 4.3.0 try later\r\n"); /* no HELO after a 4xx */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_string_equal(take(), "");
}

/* ---- the transaction ---- */

static void
test_pipelined(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    msg.nrcpts = 2;
    msg.eightbit = true;
    send_ok();
    /* RFC 2920: MAIL, RCPTs and DATA in one group */
    assert_string_equal(take(), MAIL_CMD " SIZE=24 BODY=8BITMIME\r\n" RCPT_A RCPT_B "DATA\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    assert_int_equal(smtp_client_timeout(cl), 300);
    feed("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n");
    assert_string_equal(take(), "");
    assert_int_equal(smtp_client_timeout(cl), 120);
    feed("354 End data with <CR><LF>.<CR><LF>\r\n");
    assert_string_equal(take(), BODY ".\r\n");
    assert_int_equal(smtp_client_timeout(cl), 600);
    assert_null(smtp_client_result(cl, 0)); /* no outcome yet */
    feed("250 2.0.0 Ok: queued as 1234\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 250, "2.0.0", "Ok: queued as 1234");
    assert_result(1, 250, "2.0.0", "Ok: queued as 1234");
    assert_null(smtp_client_result(cl, 2));
    assert_null(smtp_client_error(cl));
    smtp_client_next(cl);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), ""); /* no RSET after a complete transaction */
}

static void
test_not_pipelined(void **state)
{
    (void)state;
    start(EHLO_NONE);
    msg.nrcpts = 2;
    msg.eightbit = true; /* not offered: no BODY= (and no SIZE=) */
    send_ok();
    assert_string_equal(take(), MAIL_CMD "\r\n");
    feed("250 ok\r\n");
    assert_string_equal(take(), RCPT_A);
    feed("250 ok\r\n");
    assert_string_equal(take(), RCPT_B);
    feed("250 ok\r\n");
    assert_string_equal(take(), "DATA\r\n");
    feed("354 go ahead\r\n");
    assert_string_equal(take(), BODY ".\r\n");
    feed("250 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 250, "2.0.0", "ok");
    assert_result(1, 250, "2.0.0", "ok");
}

static void
test_mixed_rcpt_results(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    msg.nrcpts = 3;
    send_ok();
    assert_string_equal(take(), MAIL_CMD " SIZE=24\r\n" RCPT_A RCPT_B RCPT_C "DATA\r\n");
    feed("250 2.1.0 ok\r\n250 2.1.5 ok\r\n450 4.2.1 try later\r\n550 5.1.1 no such user\r\n"
         "354 go\r\n");
    assert_string_equal(take(), BODY ".\r\n");
    feed("250 2.0.0 queued\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 250, "2.0.0", "queued");
    assert_result(1, 450, "4.2.1", "try later");
    assert_result(2, 550, "5.1.1", "no such user");
    assert_null(smtp_client_error(cl));
}

static void
test_mail_refused(void **state)
{
    (void)state;
    start(EHLO_NONE);
    msg.nrcpts = 2;
    send_ok();
    assert_string_equal(take(), MAIL_CMD "\r\n");
    feed("550 5.7.1 sender rejected\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), "");
    assert_result(0, 550, "5.7.1", "sender rejected");
    assert_result(1, 550, "5.7.1", "sender rejected");
    assert_reply(smtp_client_error(cl), 550, "5.7.1", "sender rejected");
    smtp_client_next(cl); /* no transaction was opened: no RSET */
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), "");
}

static void
test_mail_refused_pipelined(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    msg.nrcpts = 2;
    send_ok();
    take();
    feed("451 4.3.0 sender check failed\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY); /* the rest of the group still answers */
    feed("503 5.5.1 need MAIL\r\n503 5.5.1 need MAIL\r\n554 5.5.1 no valid recipients\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), "");
    assert_result(0, 451, "4.3.0", "sender check failed");
    assert_result(1, 451, "4.3.0", "sender check failed");
    assert_reply(smtp_client_error(cl), 451, "4.3.0", NULL);
    smtp_client_next(cl);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), "");
}

static void
test_data_refused(void **state)
{
    (void)state;
    start(EHLO_NONE);
    msg.nrcpts = 2;
    send_ok();
    take();
    feed("250 ok\r\n");
    feed("250 ok\r\n");
    feed("550 5.1.1 unknown\r\n");
    assert_string_equal(take(), RCPT_A RCPT_B "DATA\r\n");
    feed("554 5.3.0 not now\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), ""); /* no data after a refused DATA */
    assert_result(0, 554, "5.3.0", "not now");
    assert_result(1, 550, "5.1.1", "unknown"); /* keeps its RCPT reply */
    assert_reply(smtp_client_error(cl), 554, "5.3.0", "not now");
    /* MAIL was accepted and nothing ended the transaction: RSET */
    smtp_client_next(cl);
    assert_string_equal(take(), "RSET\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    feed("250 2.0.0 reset\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_final_refused(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    send_ok();
    take();
    feed("250 ok\r\n250 ok\r\n354 go\r\n");
    assert_string_equal(take(), BODY ".\r\n");
    feed("554-5.7.1 message refused\r\n554 5.7.1 as spam\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 554, "5.7.1", "message refused as spam");
    assert_reply(smtp_client_error(cl), 554, "5.7.1", NULL);
    smtp_client_next(cl); /* the dot ended the transaction either way */
    assert_string_equal(take(), "");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_all_rcpt_refused_pipelined(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    msg.nrcpts = 2;
    send_ok();
    take();
    feed("250 ok\r\n550 5.1.1 no\r\n450 4.2.0 later\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY); /* DATA's reply is still due */
    feed("554 5.5.1 no valid recipients\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), "");
    assert_result(0, 550, "5.1.1", "no");
    assert_result(1, 450, "4.2.0", "later");
    smtp_client_next(cl);
    assert_string_equal(take(), "RSET\r\n");
    feed("250 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_all_rcpt_refused_but_354(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    send_ok();
    take();
    feed("250 ok\r\n550 5.1.1 no\r\n354 go ahead anyway\r\n");
    /* RFC 2920 3.1: a lone dot, never the message */
    assert_string_equal(take(), ".\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    feed("554 5.5.1 no recipients\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 550, "5.1.1", "no");
    smtp_client_next(cl);
    assert_string_equal(take(), "");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_all_rcpt_refused_not_pipelined(void **state)
{
    (void)state;
    start(EHLO_NONE);
    send_ok();
    feed("250 ok\r\n");
    feed("550 5.1.1 no\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), MAIL_CMD "\r\n" RCPT_A); /* no DATA */
    assert_result(0, 550, "5.1.1", "no");
    smtp_client_next(cl);
    assert_string_equal(take(), "RSET\r\n");
    feed("250 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

/* Sends data through DATA and returns what went on the wire. */
static const char *
data_bytes(const char *data, size_t len)
{
    msg.data = data;
    msg.len = len;
    start(EHLO_NONE);
    send_ok();
    feed("250 ok\r\n");
    feed("250 ok\r\n");
    take();
    feed("354 go\r\n");
    return take();
}

static void
test_dot_stuffing(void **state)
{
    static const char m[] = ".leading\r\nmid\r\n..two\r\n.\r\nend";

    (void)state;
    assert_string_equal(data_bytes(m, sizeof(m) - 1),
                        "..leading\r\nmid\r\n...two\r\n..\r\nend\r\n.\r\n");
}

static void
test_no_final_crlf_and_empty(void **state)
{
    (void)state;
    assert_string_equal(data_bytes("abc", 3), "abc\r\n.\r\n");
    smtp_client_free(cl);
    assert_string_equal(data_bytes(NULL, 0), ".\r\n");
    smtp_client_free(cl);
    assert_string_equal(data_bytes(".", 1), "..\r\n.\r\n");
}

static void
test_bare_newlines_normalized(void **state)
{
    static const char m[] = "a\nb\rc\r\n.d\n.\r\n\r";

    (void)state;
    /* no lone CR or LF reaches the wire: no next hop reads another end */
    assert_string_equal(data_bytes(m, sizeof(m) - 1), "a\r\nb\r\nc\r\n..d\r\n..\r\n\r\n.\r\n");
}

static void
test_bdat(void **state)
{
    static const char m[] = "line\r\n.\r\nlast";
    char want[128];

    (void)state;
    msg.data = m;
    msg.len = sizeof(m) - 1;
    msg.nrcpts = 2;
    start(EHLO_CHUNK);
    send_ok();
    /* MAIL and RCPTs pipelined; BDAT only once a recipient is accepted */
    assert_string_equal(take(), MAIL_CMD "\r\n" RCPT_A RCPT_B);
    feed("250 ok\r\n250 ok\r\n");
    assert_string_equal(take(), "");
    feed("550 5.1.1 no\r\n");
    snprintf(want, sizeof(want), "BDAT %zu LAST\r\n%s", sizeof(m) - 1, m);
    assert_string_equal(take(), want); /* raw: no stuffing, no added CRLF */
    assert_int_equal(smtp_client_timeout(cl), 600);
    feed("250 2.0.0 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 250, "2.0.0", "ok");
    assert_result(1, 550, "5.1.1", "no");
    smtp_client_next(cl);
    assert_string_equal(take(), "");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_bdat_refused(void **state)
{
    (void)state;
    start("250-mx\r\n250 CHUNKING\r\n"); /* lock-step */
    send_ok();
    assert_string_equal(take(), MAIL_CMD "\r\n");
    feed("250 ok\r\n");
    assert_string_equal(take(), RCPT_A);
    feed("250 ok\r\n");
    assert_string_equal(take(), "BDAT 24 LAST\r\n" BODY);
    feed("554 5.6.0 bad content\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 554, "5.6.0", "bad content");
    assert_reply(smtp_client_error(cl), 554, "5.6.0", NULL);
    /* RFC 3030 2: the state after a failed BDAT is indeterminate */
    smtp_client_next(cl);
    assert_string_equal(take(), "RSET\r\n");
    feed("250 ok\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_bdat_no_rcpt_accepted(void **state)
{
    (void)state;
    start(EHLO_CHUNK);
    send_ok();
    take();
    feed("250 ok\r\n550 5.1.1 no\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), "");
    smtp_client_next(cl);
    assert_string_equal(take(), "RSET\r\n");
}

static void
test_size_precheck(void **state)
{
    (void)state;
    start("250-mx\r\n250 SIZE 23\r\n");
    msg.nrcpts = 2;
    send_ok();
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), ""); /* nothing sent */
    assert_result(0, 552, "5.3.4", NULL);
    assert_result(1, 552, "5.3.4", NULL);
    assert_reply(smtp_client_error(cl), 552, "5.3.4", NULL);
    smtp_client_next(cl);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_string_equal(take(), "");
    smtp_client_free(cl);

    start("250-mx\r\n250 SIZE 24\r\n"); /* exactly the limit */
    send_ok();
    assert_string_equal(take(), MAIL_CMD " SIZE=24\r\n");
    smtp_client_free(cl);

    start("250-mx\r\n250 SIZE 0\r\n"); /* no fixed limit */
    send_ok();
    assert_string_equal(take(), MAIL_CMD " SIZE=24\r\n");
}

static void
test_smtputf8_precheck(void **state)
{
    (void)state;
    msg.smtputf8 = true;
    start(EHLO_PIPE);
    msg.nrcpts = 2;
    send_ok();
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_string_equal(take(), "");
    assert_result(0, 550, "5.6.7", NULL);
    assert_result(1, 550, "5.6.7", NULL);
    assert_non_null(strstr(smtp_client_result(cl, 0)->text, "does not support SMTPUTF8"));
    smtp_client_free(cl);

    start("250-mx\r\n250 SMTPUTF8\r\n");
    send_ok();
    assert_string_equal(take(), MAIL_CMD " SMTPUTF8\r\n");
}

static void
test_dsn_params_when_offered(void **state)
{
    (void)state;
    msg.nrcpts = 3;
    msg.ret = SMTP_RET_HDRS;
    msg.envid = "QQ314159";
    rcpts[0].notify = SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE;
    rcpts[0].orcpt = "rfc822;a+2Bx@example.org";
    rcpts[1].notify = SMTP_NOTIFY_NEVER;
    rcpts[2].notify = SMTP_NOTIFY_DELAY;
    start(EHLO_DSN);
    send_ok();
    assert_string_equal(take(), MAIL_CMD " RET=HDRS ENVID=QQ314159\r\n"
                                         "RCPT TO:<a@example.org> NOTIFY=SUCCESS,FAILURE"
                                         " ORCPT=rfc822;a+2Bx@example.org\r\n"
                                         "RCPT TO:<b@example.org> NOTIFY=NEVER\r\n"
                                         "RCPT TO:<c@example.org> NOTIFY=DELAY\r\n"
                                         "DATA\r\n");
    smtp_client_free(cl);

    msg.ret = SMTP_RET_FULL;
    msg.envid = "";
    msg.nrcpts = 1;
    rcpts[0].notify = 0;
    start(EHLO_DSN);
    send_ok();
    assert_string_equal(take(),
                        MAIL_CMD " RET=FULL\r\n"
                                 "RCPT TO:<a@example.org> ORCPT=rfc822;a+2Bx@example.org\r\n"
                                 "DATA\r\n");
}

static void
test_dsn_params_not_offered(void **state)
{
    (void)state;
    msg.nrcpts = 2;
    msg.ret = SMTP_RET_HDRS;
    msg.envid = "QQ314159";
    rcpts[0].notify = SMTP_NOTIFY_SUCCESS;
    rcpts[0].orcpt = "rfc822;a@example.org";
    rcpts[1].notify = SMTP_NOTIFY_NEVER;
    start(EHLO_PIPE);
    send_ok();
    assert_string_equal(take(), MAIL_CMD " SIZE=24\r\n" RCPT_A RCPT_B "DATA\r\n");
}

/* ---- LMTP ---- */

static void
test_lmtp(void **state)
{
    (void)state;
    set.lmtp = true;
    start("250-lmtp.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 ENHANCEDSTATUSCODES\r\n");
    msg.nrcpts = 3;
    send_ok();
    /* no BDAT for LMTP, even when offered */
    assert_string_equal(take(), MAIL_CMD "\r\n" RCPT_A RCPT_B RCPT_C "DATA\r\n");
    feed("250 ok\r\n250 ok\r\n550 5.1.1 unknown\r\n250 ok\r\n354 go\r\n");
    assert_string_equal(take(), BODY ".\r\n");
    /* RFC 2033 4.2: one reply per accepted recipient, in order */
    feed("250 2.0.0 <a@example.org> delivered\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    assert_result(0, 250, "2.0.0", "<a@example.org> delivered");
    feed("452 4.2.2 <c@example.org> over quota\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(1, 550, "5.1.1", "unknown");
    assert_result(2, 452, "4.2.2", "<c@example.org> over quota");
    assert_null(smtp_client_error(cl));
    smtp_client_next(cl);
    assert_string_equal(take(), "");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
}

static void
test_lmtp_no_helo_fallback(void **state)
{
    (void)state;
    set.lmtp = true;
    cl = smtp_client_new(&set);
    feed(GREETING);
    assert_string_equal(take(), LHLO_CMD);
    feed("500 5.5.1 unknown command\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_string_equal(take(), "");
}

static void
test_lmtp_421_between_replies(void **state)
{
    (void)state;
    set.lmtp = true;
    start("250 lmtp.example.org\r\n");
    msg.nrcpts = 2;
    send_ok();
    feed("250 ok\r\n");
    feed("250 ok\r\n");
    feed("250 ok\r\n");
    take();
    feed("354 go\r\n");
    feed("250 2.0.0 delivered\r\n421 4.3.2 shutting down\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_result(0, 250, "2.0.0", "delivered");
    assert_result(1, 421, "4.3.2", "shutting down");
    assert_reply(smtp_client_error(cl), 421, "4.3.2", "shutting down");
}

static void
test_lmtp_354_without_recipients(void **state)
{
    (void)state;
    set.lmtp = true;
    start("250-lmtp\r\n250 PIPELINING\r\n");
    send_ok();
    take();
    feed("250 ok\r\n550 no\r\n354 go\r\n"); /* RFC 2033 4.2 says 503 */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_string_equal(take(), "");
    assert_result(0, 550, "5.0.0", "no");
    assert_reply(smtp_client_error(cl), 451, "4.4.0", NULL);
}

/* ---- failures ---- */

static void
test_421_mid_transaction(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    msg.nrcpts = 3;
    send_ok();
    take();
    feed("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n421 4.4.2 timeout, closing\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_result(0, 421, "4.4.2", "timeout, closing"); /* accepted, but no outcome yet */
    assert_result(1, 550, "5.1.1", "no");               /* final already */
    assert_result(2, 421, "4.4.2", "timeout, closing");
    assert_reply(smtp_client_error(cl), 421, "4.4.2", "timeout, closing");
    assert_int_equal(smtp_client_feed(cl, OK, strlen(OK)), 0);
    smtp_client_quit(cl); /* nothing more is said */
    assert_int_equal(ev(), SMTP_CLIENT_CLOSED);
    assert_string_equal(take(), "");
}

static void
test_421_after_data(void **state)
{
    (void)state;
    start(EHLO_PIPE);
    send_ok();
    feed("250 ok\r\n250 ok\r\n354 go\r\n");
    take();
    feed("421 4.3.0 out of disk\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_result(0, 421, "4.3.0", "out of disk");
}

static void
test_421_when_idle(void **state)
{
    (void)state;
    start(EHLO_NONE);
    feed("421 4.4.2 idle too long\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 421, "4.4.2", "idle too long");
    assert_int_equal(smtp_client_send(cl, &msg), -1);
}

static void
test_unexpected_reply(void **state)
{
    (void)state;
    start(EHLO_NONE);
    feed("250-surprise\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_READY); /* not a whole reply yet */
    feed("250 again\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 451, "4.4.0", "protocol error: unexpected reply");
    smtp_client_free(cl);

    /* after DONE too */
    start(EHLO_NONE);
    send_ok();
    feed("550 no\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    feed("250 extra\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_result(0, 550, "5.0.0", "no"); /* outcomes stay */
}

static void
test_malformed_reply(void **state)
{
    static const char *const bad[] = {
        "hello\r\n", "25 ok\r\n", "250x ok\r\n", "\r\n", "250-a\r\n251 b\r\n", "650 ok\r\n",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        setup(NULL);
        start(EHLO_NONE);
        msg.nrcpts = 2;
        send_ok();
        smtp_client_feed(cl, bad[i], strlen(bad[i]));
        assert_int_equal(ev(), SMTP_CLIENT_FAILED);
        assert_reply(smtp_client_error(cl), 451, "4.4.0", NULL);
        assert_non_null(strstr(smtp_client_error(cl)->text, "protocol error"));
        assert_result(0, 451, "4.4.0", NULL);
        assert_result(1, 451, "4.4.0", NULL);
        smtp_client_free(cl);
        cl = NULL;
    }
}

static void
test_unexpected_reply_codes(void **state)
{
    (void)state;
    start(EHLO_NONE);
    send_ok();
    feed("354 go\r\n"); /* to MAIL */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    smtp_client_free(cl);

    start(EHLO_NONE);
    send_ok();
    feed("250 ok\r\n");
    feed("250 ok\r\n");
    feed("250 ok\r\n"); /* to DATA */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    smtp_client_free(cl);

    start(EHLO_NONE);
    send_ok();
    feed("250 ok\r\n");
    feed("354 ok\r\n"); /* to RCPT */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    smtp_client_free(cl);

    start(EHLO_PIPE);
    send_ok();
    feed("250 ok\r\n250 ok\r\n354 go\r\n354 again\r\n"); /* after the dot */
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_result(0, 451, "4.4.0", NULL);
}

static void
test_reply_line_too_long(void **state)
{
    static char junk[4096];

    (void)state;
    memset(junk, 'x', sizeof(junk));
    memcpy(junk, "250 ", 4);
    start(EHLO_NONE);
    send_ok();
    assert_int_equal(smtp_client_feed(cl, junk, sizeof(junk) - 1), 0);
    assert_int_equal(ev(), SMTP_CLIENT_BUSY); /* may still end in time */
    assert_int_equal(smtp_client_feed(cl, junk, sizeof(junk)), 0);
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 451, "4.4.0", "protocol error: reply line too long");
}

static void
test_too_many_reply_lines(void **state)
{
    (void)state;
    start(EHLO_NONE);
    send_ok();
    for (int i = 0; i < 100; i++)
        feed("250-more\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    assert_int_equal(smtp_client_feed(cl, OK, strlen(OK)), 0);
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 451, "4.4.0", "protocol error: too many reply lines");
}

static void
test_multiline_replies(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    feed("220-mx.example.org ESMTP\r\n");
    assert_string_equal(take(), "");
    feed("220-no UCE\r\n220 ready\r\n");
    assert_string_equal(take(), EHLO_CMD);
    feed(EHLO_NONE);
    msg.nrcpts = 2;
    send_ok();
    take();
    feed("250-2.1.0 sender\r\n250 2.1.0 ok\r\n");
    assert_string_equal(take(), RCPT_A);
    /* a reply split anywhere, even between CR and LF: the caller keeps
     * what was not consumed and feeds it again with more */
    assert_int_equal(smtp_client_feed(cl, "550-5.1.1 The email", 19), 0);
    feed("550-5.1.1 The email account that you tried to reach does not exist.\r\n");
    assert_int_equal(smtp_client_feed(cl, "550-5.1.1 Please try\r", 21), 0);
    feed("550-5.1.1 Please try\r\n550 5.1.1 again.\r\n");
    assert_string_equal(take(), RCPT_B);
    feed("550 no\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 550, "5.1.1",
                  "The email account that you tried to reach does not exist. Please try again.");
}

/* ---- the connection's life ---- */

static void
test_second_message(void **state)
{
    static const struct smtp_client_rcpt other = {"d@example.org", 0, ""};
    struct smtp_client_message m2 = {
        .sender = "", .rcpts = &other, .nrcpts = 1, .data = "x\r\n", .len = 3};

    (void)state;
    start(EHLO_PIPE);
    msg.nrcpts = 2;
    send_ok();
    take();
    feed("250 ok\r\n250 ok\r\n550 5.1.1 no\r\n354 go\r\n");
    take();
    feed("250 queued\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_int_equal(smtp_client_send(cl, &m2), -1); /* next() first */
    smtp_client_next(cl);
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    assert_int_equal(smtp_client_send(cl, &m2), 0);
    assert_string_equal(take(), "MAIL FROM:<> SIZE=3\r\nRCPT TO:<d@example.org>\r\nDATA\r\n");
    assert_null(smtp_client_result(cl, 0)); /* the last message's outcomes are gone */
    assert_null(smtp_client_result(cl, 1));
    feed("250 ok\r\n250 ok\r\n354 go\r\n");
    assert_string_equal(take(), "x\r\n.\r\n");
    feed("250 2.0.0 queued again\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_DONE);
    assert_result(0, 250, "2.0.0", "queued again");
    assert_null(smtp_client_result(cl, 1));
    smtp_client_next(cl);
    smtp_client_quit(cl);
    assert_string_equal(take(), "QUIT\r\n");
}

static void
test_quit(void **state)
{
    (void)state;
    start(EHLO_NONE);
    smtp_client_quit(cl);
    assert_string_equal(take(), "QUIT\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_BUSY);
    feed("221 2.0.0 bye\r\n");
    assert_int_equal(ev(), SMTP_CLIENT_CLOSED);
    assert_int_equal(smtp_client_feed(cl, OK, strlen(OK)), 0);
    smtp_client_free(cl);

    /* from DONE, even with a transaction open: QUIT ends it too */
    start(EHLO_NONE);
    send_ok();
    take();
    feed("250 ok\r\n");
    feed("550 no\r\n");
    smtp_client_quit(cl);
    assert_string_equal(take(), RCPT_A "QUIT\r\n");
    feed("421 4.0.0 whatever\r\n"); /* any reply closes */
    assert_int_equal(ev(), SMTP_CLIENT_CLOSED);
    smtp_client_free(cl);

    /* giving up while waiting */
    start(EHLO_NONE);
    send_ok();
    take();
    smtp_client_quit(cl);
    assert_int_equal(ev(), SMTP_CLIENT_CLOSED);
    assert_string_equal(take(), "");
}

static void
test_feed_stops_for_the_caller(void **state)
{
    static const char in[] = GREETING EHLO_NONE "250 2.1.0 ok\r\n";
    size_t used;

    (void)state;
    cl = smtp_client_new(&set);
    used = smtp_client_feed(cl, in, sizeof(in) - 1);
    assert_int_equal(used, strlen(GREETING EHLO_NONE));
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    send_ok();
    assert_string_equal(take(), EHLO_CMD MAIL_CMD "\r\n");
    feed(in + used); /* now it answers the MAIL */
    assert_string_equal(take(), RCPT_A);
}

static void
test_send_refused_locally(void **state)
{
    (void)state;
    cl = smtp_client_new(&set);
    assert_int_equal(smtp_client_send(cl, &msg), -1); /* not READY */
    smtp_client_free(cl);
    start(EHLO_DSN);
    assert_int_equal(smtp_client_send(cl, NULL), -1);
    msg.nrcpts = 0;
    assert_int_equal(smtp_client_send(cl, &msg), -1);
    msg.nrcpts = 1;
    rcpts[0].address = "a@example.org>\r\nRCPT TO:<evil@example.org";
    assert_int_equal(smtp_client_send(cl, &msg), -1);
    rcpts[0].address = "a@example.org";
    msg.sender = "s@example.net\n";
    assert_int_equal(smtp_client_send(cl, &msg), -1);
    msg.sender = "s@example.net";
    msg.envid = "a b";
    assert_int_equal(smtp_client_send(cl, &msg), -1);
    msg.envid = "";
    rcpts[0].orcpt = "rfc822;a@example.org NOTIFY=NEVER";
    assert_int_equal(smtp_client_send(cl, &msg), -1);
    assert_string_equal(take(), "");
    assert_int_equal(ev(), SMTP_CLIENT_READY);
    rcpts[0].orcpt = NULL; /* NULL strings count as empty */
    msg.sender = NULL;
    msg.envid = NULL;
    assert_int_equal(smtp_client_send(cl, &msg), 0);
    assert_string_equal(take(), "MAIL FROM:<>\r\n" RCPT_A "DATA\r\n");
}

static void
test_output_cap(void **state)
{
    int i;

    (void)state;
    start(EHLO_NONE);
    /* a caller that never sends its output: the cap ends the connection */
    for (i = 0; i < 100000 && ev() == SMTP_CLIENT_READY; i++) {
        send_ok();
        smtp_client_feed(cl, "550 no\r\n", 8);
        smtp_client_next(cl);
    }
    assert_int_equal(ev(), SMTP_CLIENT_FAILED);
    assert_reply(smtp_client_error(cl), 451, "4.3.0", NULL);
    assert_true(smtp_client_output(cl)->len <= (1u << 20) + 64);
    /* whole commands only */
    assert_int_equal(smtp_client_output(cl)->len % strlen(MAIL_CMD "\r\n"), 0);
}

/* ---- any split of the input ---- */

struct script {
    const char *name;
    bool lmtp;
    const char *server; /* every byte the server sends */
    const struct smtp_client_message *msgs[2];
    const char *client; /* every byte the client must send */
    const char *log;    /* outcomes, as drive() writes them */
    enum smtp_client_tls tls;
    const char *user, *pass; /* AUTH credentials, NULL = none */
};

static void
log_reply(struct buf *log, const char *what, const struct smtp_reply *r)
{
    assert_int_equal(
        buf_printf(log, "%s %d %s %s\n", what, r->code, r->status ? r->status : "-", r->text), 0);
}

static void
collect(struct buf *cout)
{
    struct buf *o = smtp_client_output(cl);

    assert_int_equal(buf_append(cout, o->data ? o->data : "", o->len), 0);
    buf_reset(o);
}

/* What a delivery agent does at each event; false once CLOSED. */
static bool
act(const struct script *sc, size_t *sent, struct buf *log)
{
    for (;;) {
        switch (ev()) {
        case SMTP_CLIENT_READY:
            if (*sent < 2 && sc->msgs[*sent])
                assert_int_equal(smtp_client_send(cl, sc->msgs[(*sent)++]), 0);
            else
                smtp_client_quit(cl);
            continue; /* a pre-check may have made it DONE already */
        case SMTP_CLIENT_DONE:
            for (size_t i = 0; i < sc->msgs[*sent - 1]->nrcpts; i++)
                log_reply(log, "rcpt", smtp_client_result(cl, i));
            smtp_client_next(cl);
            continue;
        case SMTP_CLIENT_FAILED:
            log_reply(log, "failed", smtp_client_error(cl));
            smtp_client_quit(cl);
            continue;
        case SMTP_CLIENT_CLOSED:
            assert_int_equal(buf_append(log, "closed\n", 7), 0);
            return false;
        case SMTP_CLIENT_TLS: /* the handshake, as if it worked */
            assert_int_equal(buf_append(log, "tls\n", 4), 0);
            smtp_client_tls_done(cl, true);
            continue;
        case SMTP_CLIENT_BUSY:
            return true;
        }
    }
}

/* Runs a script with the server bytes cut at split, or in pieces of piece
 * octets when piece > 0: act, send, feed what is there, and read more only
 * when nothing could be consumed. */
static void
drive(const struct script *sc, size_t split, size_t piece, struct buf *cout, struct buf *log)
{
    size_t n = strlen(sc->server), pos = 0, sent = 0;
    struct buf pend;

    set.lmtp = sc->lmtp;
    set.tls = sc->tls;
    set.auth_user = sc->user;
    set.auth_pass = sc->pass;
    cl = smtp_client_new(&set);
    buf_init(&pend, 1 << 16);
    while (act(sc, &sent, log)) {
        size_t used, k;

        collect(cout);
        used = smtp_client_feed(cl, pend.data ? pend.data : "", pend.len);
        buf_consume(&pend, used);
        collect(cout);
        if (used > 0 || ev() != SMTP_CLIENT_BUSY)
            continue;
        if (pos == n) {
            assert_int_equal(buf_append(log, "eof\n", 4), 0);
            break;
        }
        k = piece ? piece : (pos < split ? split - pos : n - pos);
        k = k < n - pos ? k : n - pos;
        assert_int_equal(buf_append(&pend, sc->server + pos, k), 0);
        pos += k;
    }
    collect(cout);
    if (pend.len)
        fail_msg("%s: left over: %.*s", sc->name, (int)pend.len, pend.data);
    buf_free(&pend);
    smtp_client_free(cl);
    cl = NULL;
}

static const struct smtp_client_rcpt three[] = {
    {"a@example.org", 0, ""}, {"b@example.org", 0, ""}, {"c@example.org", 0, ""}};
static const struct smtp_client_message msg3 = {
    .sender = "s@example.net", .rcpts = three, .nrcpts = 3, .data = BODY, .len = 24};
static const struct smtp_client_message msg1 = {
    .sender = "s@example.net", .rcpts = three, .nrcpts = 1, .data = ".dot\r\n", .len = 6};

static const struct script scripts[] = {
    {
        "pipelined, two messages, RSET, QUIT",
        false,
        GREETING EHLO_PIPE "250 2.1.0 ok\r\n250 2.1.5 ok\r\n450 4.2.1 later\r\n250 2.1.5 ok\r\n"
                           "354 go\r\n250 2.0.0 queued\r\n"
                           "250 2.1.0 ok\r\n250 2.1.5 ok\r\n451-4.3.0 not\r\n451 4.3.0 now\r\n"
                           "250 2.0.0 reset\r\n221 2.0.0 bye\r\n",
        {&msg3, &msg1},
        EHLO_CMD MAIL_CMD " SIZE=24\r\n" RCPT_A RCPT_B RCPT_C "DATA\r\n" BODY ".\r\n" MAIL_CMD
                          " SIZE=6\r\n" RCPT_A "DATA\r\nRSET\r\nQUIT\r\n",
        "rcpt 250 2.0.0 queued\nrcpt 450 4.2.1 later\nrcpt 250 2.0.0 queued\n"
        "rcpt 451 4.3.0 not now\nclosed\n",
        SMTP_CLIENT_TLS_NO,
        NULL,
        NULL,
    },
    {
        "HELO, lock-step, 421",
        false,
        "220-mx\r\n220 hi\r\n500 no EHLO\r\n250 mx\r\n250 ok\r\n550 5.1.1 no\r\n250 ok\r\n"
        "550 no\r\n354 go\r\n250 ok\r\n250 ok\r\n250 ok\r\n421 4.3.2 bye\r\n",
        {&msg3, &msg1},
        EHLO_CMD "HELO " HELO_NAME "\r\n" MAIL_CMD "\r\n" RCPT_A RCPT_B RCPT_C "DATA\r\n" BODY
                 ".\r\n" MAIL_CMD "\r\n" RCPT_A "DATA\r\n",
        "rcpt 550 5.1.1 no\nrcpt 250 2.0.0 ok\nrcpt 550 5.0.0 no\nfailed 421 4.3.2 bye\nclosed\n",
        SMTP_CLIENT_TLS_NO,
        NULL,
        NULL,
    },
    {
        "LMTP",
        true,
        GREETING "250-lmtp\r\n250 PIPELINING\r\n250 ok\r\n250 ok\r\n550 no\r\n250 ok\r\n"
                 "354 go\r\n250 2.0.0 a\r\n452 4.2.2 c\r\n250 ok\r\n250 ok\r\n354 go\r\n"
                 "250 2.0.0 a\r\n221 bye\r\n",
        {&msg3, &msg1},
        LHLO_CMD MAIL_CMD "\r\n" RCPT_A RCPT_B RCPT_C "DATA\r\n" BODY ".\r\n" MAIL_CMD "\r\n" RCPT_A
                          "DATA\r\n..dot\r\n.\r\nQUIT\r\n",
        "rcpt 250 2.0.0 a\nrcpt 550 5.0.0 no\nrcpt 452 4.2.2 c\nrcpt 250 2.0.0 a\nclosed\n",
        SMTP_CLIENT_TLS_NO,
        NULL,
        NULL,
    },
    {
        "CHUNKING",
        false,
        GREETING EHLO_CHUNK "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n250 2.0.0 done\r\n"
                            "250 ok\r\n250 ok\r\n550 5.6.0 no\r\n250 reset\r\n221 bye\r\n",
        {&msg3, &msg1},
        EHLO_CMD MAIL_CMD "\r\n" RCPT_A RCPT_B RCPT_C "BDAT 24 LAST\r\n" BODY MAIL_CMD "\r\n" RCPT_A
                          "BDAT 6 LAST\r\n.dot\r\nRSET\r\nQUIT\r\n",
        "rcpt 250 2.0.0 done\nrcpt 250 2.0.0 done\nrcpt 250 2.0.0 done\nrcpt 550 5.6.0 no\n"
        "closed\n",
        SMTP_CLIENT_TLS_NO,
        NULL,
        NULL,
    },
    {
        "STARTTLS, EHLO again, AUTH LOGIN",
        false,
        GREETING "250-mx\r\n250 STARTTLS\r\n220 2.0.0 go ahead\r\n"
                 "250-mx\r\n250-PIPELINING\r\n250 AUTH LOGIN\r\n334 VXNlcm5hbWU6\r\n"
                 "334 UGFzc3dvcmQ6\r\n235 2.7.0 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"
                 "250 2.0.0 queued\r\n221 bye\r\n",
        {&msg1, NULL},
        EHLO_CMD "STARTTLS\r\n" EHLO_CMD "AUTH LOGIN\r\ndXNlcg==\r\ncGFzcw==\r\n" MAIL_CMD
                 "\r\n" RCPT_A "DATA\r\n..dot\r\n.\r\nQUIT\r\n",
        "tls\nrcpt 250 2.0.0 queued\nclosed\n",
        SMTP_CLIENT_TLS_MUST,
        "user",
        "pass",
    },
};

static void
check_run(const struct script *sc, size_t split, size_t piece, const struct buf *want_out,
          const struct buf *want_log)
{
    struct buf cout, log;

    buf_init(&cout, 1 << 16);
    buf_init(&log, 1 << 16);
    drive(sc, split, piece, &cout, &log);
    if (cout.len != want_out->len || memcmp(cout.data, want_out->data, cout.len) != 0 ||
        log.len != want_log->len || memcmp(log.data, want_log->data, log.len) != 0)
        fail_msg("%s: split %zu piece %zu: got\n%s\n%s", sc->name, split, piece,
                 cout.data ? cout.data : "", log.data ? log.data : "");
    buf_free(&cout);
    buf_free(&log);
}

static void
test_every_split_point(void **state)
{
    (void)state;
    for (size_t s = 0; s < sizeof(scripts) / sizeof(scripts[0]); s++) {
        const struct script *sc = &scripts[s];
        size_t n = strlen(sc->server);
        struct buf want_out, want_log;

        buf_init(&want_out, 1 << 16);
        buf_init(&want_log, 1 << 16);
        drive(sc, n, 0, &want_out, &want_log);
        assert_string_equal(want_out.data, sc->client);
        assert_string_equal(want_log.data, sc->log);
        for (size_t split = 0; split <= n; split++)
            check_run(sc, split, 0, &want_out, &want_log);
        for (size_t piece = 1; piece < 9; piece++)
            check_run(sc, 0, piece, &want_out, &want_log);
        buf_free(&want_out);
        buf_free(&want_log);
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ehlo_all_keywords),
        T(test_ehlo_keyword_forms),
        T(test_greeting_refused),
        T(test_greeting_other),
        T(test_helo_fallback),
        T(test_helo_refused),
        T(test_ehlo_temporary_failure),
        T(test_pipelined),
        T(test_not_pipelined),
        T(test_mixed_rcpt_results),
        T(test_mail_refused),
        T(test_mail_refused_pipelined),
        T(test_data_refused),
        T(test_final_refused),
        T(test_all_rcpt_refused_pipelined),
        T(test_all_rcpt_refused_but_354),
        T(test_all_rcpt_refused_not_pipelined),
        T(test_dot_stuffing),
        T(test_no_final_crlf_and_empty),
        T(test_bare_newlines_normalized),
        T(test_bdat),
        T(test_bdat_refused),
        T(test_bdat_no_rcpt_accepted),
        T(test_size_precheck),
        T(test_smtputf8_precheck),
        T(test_dsn_params_when_offered),
        T(test_dsn_params_not_offered),
        T(test_lmtp),
        T(test_lmtp_no_helo_fallback),
        T(test_lmtp_421_between_replies),
        T(test_lmtp_354_without_recipients),
        T(test_421_mid_transaction),
        T(test_421_after_data),
        T(test_421_when_idle),
        T(test_unexpected_reply),
        T(test_malformed_reply),
        T(test_unexpected_reply_codes),
        T(test_reply_line_too_long),
        T(test_too_many_reply_lines),
        T(test_multiline_replies),
        T(test_second_message),
        T(test_quit),
        T(test_feed_stops_for_the_caller),
        T(test_send_refused_locally),
        T(test_output_cap),
        T(test_every_split_point),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
