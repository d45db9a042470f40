/*
 * Which messages take the relay handoff (relay_direct_eligible): one
 * relay or LMTP destination, plain MAIL, no success DSN asked, handoff on.
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

#include "delivery/relay_direct.h"
#include "smtp/smtp_command.h"
#include "smtp/smtp_server.h"

static const char base_conf[] = "listen on 127.0.0.1 port 2525\n"
                                "action \"mx\" relay\n"
                                "action \"smart\" relay host smtp.example.net port 587\n"
                                "action \"dovecot\" lmtp 127.0.0.1 port 24\n"
                                "action \"local\" maildir \"/tmp/petrel-unit/%{user}\"\n"
                                "match from local for any action \"mx\"\n";

static struct config *
conf(const char *extra)
{
    char text[2048], err[512];
    struct config *cf;

    snprintf(text, sizeof(text), "%s%s", base_conf, extra);
    cf = config_parse_string("/tmp/petrel.conf", text, err, sizeof(err));
    if (cf == NULL)
        fail_msg("%s", err);
    return cf;
}

static void
add(struct envelope *e, const char *action, const char *address, unsigned notify)
{
    enum rcpt_kind kind = strcmp(action, "local") == 0 ? RCPT_MAILDIR : RCPT_RELAY;

    assert_non_null(envelope_add_rcpt(e, kind, action, kind == RCPT_MAILDIR ? "alice" : "", address,
                                      address, notify, ""));
}

static bool
eligible(const struct config *cf, const char *rcpts[][2], unsigned notify, int mode)
{
    struct envelope *e = envelope_new();
    bool r;

    e->mode = mode;
    for (size_t i = 0; rcpts[i][0]; i++)
        add(e, rcpts[i][0], rcpts[i][1], notify);
    r = relay_direct_eligible(cf, e);
    envelope_free(e);
    return r;
}

static void
test_one_destination(void **state)
{
    struct config *cf = conf("");
    const char *one[][2] = {{"mx", "bob@dest.test"}, {NULL, NULL}};
    const char *same_domain[][2] = {
        {"mx", "bob@dest.test"}, {"mx", "carol@DEST.test"}, {NULL, NULL}};
    const char *smarthost[][2] = {{"smart", "bob@a.test"}, {"smart", "carol@b.test"}, {NULL, NULL}};
    const char *lmtp[][2] = {{"dovecot", "bob@a.test"}, {"dovecot", "eve@b.test"}, {NULL, NULL}};

    (void)state;
    assert_int_equal(cf->relay_handoff, 10);
    assert_true(eligible(cf, one, 0, SMTP_MODE_MAIL));
    assert_true(eligible(cf, same_domain, 0, SMTP_MODE_MAIL));
    assert_true(eligible(cf, smarthost, 0, SMTP_MODE_MAIL)); /* one host whatever the domains */
    assert_true(eligible(cf, lmtp, 0, SMTP_MODE_MAIL));
    assert_true(eligible(cf, one, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY, SMTP_MODE_MAIL));
    config_unref(cf);
}

static void
test_everything_else_is_queued(void **state)
{
    struct config *cf = conf("");
    const char *none[][2] = {{NULL, NULL}};
    const char *one[][2] = {{"mx", "bob@dest.test"}, {NULL, NULL}};
    const char *two_domains[][2] = {{"mx", "bob@a.test"}, {"mx", "carol@b.test"}, {NULL, NULL}};
    const char *two_actions[][2] = {{"mx", "bob@a.test"}, {"smart", "carol@a.test"}, {NULL, NULL}};
    const char *with_local[][2] = {
        {"mx", "bob@a.test"}, {"local", "alice@example.org"}, {NULL, NULL}};
    const char *local_first[][2] = {
        {"local", "alice@example.org"}, {"mx", "bob@a.test"}, {NULL, NULL}};
    const char *unknown[][2] = {{"gone", "bob@a.test"}, {NULL, NULL}};

    (void)state;
    assert_false(eligible(cf, none, 0, SMTP_MODE_MAIL));
    assert_false(eligible(cf, two_domains, 0, SMTP_MODE_MAIL));
    assert_false(eligible(cf, two_actions, 0, SMTP_MODE_MAIL));
    assert_false(eligible(cf, with_local, 0, SMTP_MODE_MAIL));
    assert_false(eligible(cf, local_first, 0, SMTP_MODE_MAIL));
    assert_false(eligible(cf, unknown, 0, SMTP_MODE_MAIL)); /* renamed by a reload */
    /* RFC 3461 6.2.2: a "relayed" DSN may be owed */
    assert_false(eligible(cf, one, SMTP_NOTIFY_SUCCESS, SMTP_MODE_MAIL));
    assert_false(eligible(cf, one, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE, SMTP_MODE_MAIL));
    /* RFC 821 SEND, SOML, SAML */
    assert_false(eligible(cf, one, 0, SMTP_MODE_SEND));
    assert_false(eligible(cf, one, 0, SMTP_MODE_SAML));
    config_unref(cf);
}

static void
test_off(void **state)
{
    struct config *cf = conf("relay-handoff off\n");
    const char *one[][2] = {{"mx", "bob@dest.test"}, {NULL, NULL}};

    (void)state;
    assert_false(eligible(cf, one, 0, SMTP_MODE_MAIL));
    config_unref(cf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_destination),
        cmocka_unit_test(test_everything_else_is_queued),
        cmocka_unit_test(test_off),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
