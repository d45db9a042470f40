/*
 * smtp_command_parse, smtp_verb_name and the MAIL/RCPT parameter parsers
 * (RFC 5321 4.1.1, RFC 1870, 6152, 3030, 6531, 3461). Inputs are copied into
 * heap blocks of exactly their length so ASan catches reads past the end.
 */
#include <stdlib.h>
#include <string.h>

/* cmocka needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "smtp/smtp_command.h"

static char *exact;
static struct smtp_reply err;
static struct smtp_mail_params mp;
static struct smtp_rcpt_params rp;

static const struct smtp_param_policy all_on = {true, true, true, true, true, true};
static const struct smtp_param_policy all_off = {false, false, false, false, false, false};

static struct str
exact_copy(const char *in, size_t n)
{
    free(exact);
    exact = malloc(n ? n : 1);
    assert_non_null(exact);
    memcpy(exact, in, n);
    return str_make(exact, n);
}

static int
teardown(void **state)
{
    (void)state;
    free(exact);
    exact = NULL;
    return 0;
}

static struct smtp_command
command(const char *line, size_t n)
{
    struct smtp_command cmd;

    smtp_command_parse(exact_copy(line, n), &cmd);
    return cmd;
}

static void
expect_command(const char *line, enum smtp_verb verb, const char *name, const char *args)
{
    struct smtp_command cmd = command(line, strlen(line));

    if (cmd.verb != verb)
        fail_msg("'%s': verb %d, want %d", line, cmd.verb, verb);
    assert_int_equal(cmd.name.len, strlen(name));
    assert_memory_equal(cmd.name.ptr, name, cmd.name.len);
    assert_int_equal(cmd.args.len, strlen(args));
    assert_memory_equal(cmd.args.ptr, args, cmd.args.len);
}

static int
mail(const char *in, const struct smtp_param_policy *pol)
{
    memset(&err, 0, sizeof(err));
    memset(&mp, 0x5a, sizeof(mp)); /* the parser must reset every field */
    return smtp_mail_params_parse(exact_copy(in, strlen(in)), pol, &mp, &err);
}

static int
rcpt(const char *in, const struct smtp_param_policy *pol)
{
    memset(&err, 0, sizeof(err));
    memset(&rp, 0x5a, sizeof(rp));
    return smtp_rcpt_params_parse(exact_copy(in, strlen(in)), pol, &rp, &err);
}

static void
expect_mail_ok(const char *in, const struct smtp_param_policy *pol)
{
    if (mail(in, pol) != 0)
        fail_msg("MAIL '%s' refused: %d %s", in, err.code, err.text);
}

static void
expect_rcpt_ok(const char *in, const struct smtp_param_policy *pol)
{
    if (rcpt(in, pol) != 0)
        fail_msg("RCPT '%s' refused: %d %s", in, err.code, err.text);
}

static void
check_err(const char *in, int rc, int code, const char *text)
{
    if (rc != -1)
        fail_msg("'%s' accepted", in);
    if (err.code != code)
        fail_msg("'%s': code %d (%s), want %d", in, err.code, err.text, code);
    assert_string_equal(err.status, "5.5.4");
    if (strstr(err.text, text) == NULL)
        fail_msg("'%s': text '%s' lacks '%s'", in, err.text, text);
}

static void
expect_mail_err(const char *in, const struct smtp_param_policy *pol, int code, const char *text)
{
    check_err(in, mail(in, pol), code, text);
}

static void
expect_rcpt_err(const char *in, const struct smtp_param_policy *pol, int code, const char *text)
{
    check_err(in, rcpt(in, pol), code, text);
}

static void
test_command_split(void **state)
{
    (void)state;
    expect_command("MAIL FROM:<a@b>", SMTP_CMD_MAIL, "MAIL", "FROM:<a@b>");
    expect_command("mail from:<>", SMTP_CMD_MAIL, "mail", "from:<>");
    expect_command("RcPt TO:<a@b> NOTIFY=NEVER", SMTP_CMD_RCPT, "RcPt", "TO:<a@b> NOTIFY=NEVER");
    expect_command("QUIT", SMTP_CMD_QUIT, "QUIT", "");
    expect_command("QUIT ", SMTP_CMD_QUIT, "QUIT", "");
    expect_command("EHLO  x", SMTP_CMD_EHLO, "EHLO", " x");
    expect_command("starttls", SMTP_CMD_STARTTLS, "starttls", "");
    expect_command("BDAT 100 LAST", SMTP_CMD_BDAT, "BDAT", "100 LAST");
    expect_command("AUTH PLAIN AGZvbwBiYXI=", SMTP_CMD_AUTH, "AUTH", "PLAIN AGZvbwBiYXI=");
}

static void
test_command_unknown(void **state)
{
    (void)state;
    expect_command("MAIL:<a@b>", SMTP_CMD_UNKNOWN, "MAIL:<a@b>", "");
    expect_command("MAIL\tFROM:<a@b>", SMTP_CMD_UNKNOWN, "MAIL\tFROM:<a@b>", "");
    expect_command("MAILX FROM:<a@b>", SMTP_CMD_UNKNOWN, "MAILX", "FROM:<a@b>");
    expect_command("MAI", SMTP_CMD_UNKNOWN, "MAI", "");
    expect_command("M4IL x", SMTP_CMD_UNKNOWN, "M4IL", "x");
    expect_command(" MAIL FROM:<>", SMTP_CMD_UNKNOWN, "", "MAIL FROM:<>");
    expect_command("", SMTP_CMD_UNKNOWN, "", "");
    expect_command("GET / HTTP/1.1", SMTP_CMD_UNKNOWN, "GET", "/ HTTP/1.1");
    expect_command("STARTTLSX", SMTP_CMD_UNKNOWN, "STARTTLSX", "");
}

static void
test_command_binary(void **state)
{
    struct smtp_command cmd;

    (void)state;
    cmd = command("DATA\0 x", 7);
    assert_int_equal(cmd.verb, SMTP_CMD_UNKNOWN);
    assert_int_equal(cmd.name.len, 5);
    cmd = command("NOOP \0\r\n", 8);
    assert_int_equal(cmd.verb, SMTP_CMD_NOOP);
    assert_int_equal(cmd.args.len, 3);
    assert_ptr_equal(cmd.args.ptr, exact + 5);
    cmd = command("RSET", 3); /* only "RSE" is ours to read */
    assert_int_equal(cmd.verb, SMTP_CMD_UNKNOWN);
    assert_int_equal(cmd.name.len, 3);
    cmd = command("\xc3\xa9HLO x", 7);
    assert_int_equal(cmd.verb, SMTP_CMD_UNKNOWN);
}

static void
test_verb_names(void **state)
{
    (void)state;
    for (int v = SMTP_CMD_HELO; v <= SMTP_CMD_STARTTLS; v++) {
        const char *name = smtp_verb_name((enum smtp_verb)v);
        struct smtp_command cmd = command(name, strlen(name));

        assert_true(strlen(name) >= 4);
        assert_int_equal(cmd.verb, v);
    }
    assert_string_equal(smtp_verb_name(SMTP_CMD_MAIL), "MAIL");
    assert_string_equal(smtp_verb_name(SMTP_CMD_STARTTLS), "STARTTLS");
    assert_string_equal(smtp_verb_name(SMTP_CMD_UNKNOWN), "");
    assert_string_equal(smtp_verb_name((enum smtp_verb)999), "");
}

static void
test_mail_no_params(void **state)
{
    (void)state;
    expect_mail_ok("", &all_off);
    assert_false(mp.has_size);
    assert_int_equal(mp.size, 0);
    assert_int_equal(mp.body, SMTP_BODY_7BIT);
    assert_false(mp.smtputf8);
    assert_int_equal(mp.ret, SMTP_RET_NONE);
    assert_string_equal(mp.envid, "");
    expect_mail_ok("   ", &all_on);
    assert_false(mp.has_size);
    expect_rcpt_ok("", &all_off);
    assert_int_equal(rp.notify, 0);
    assert_string_equal(rp.orcpt, "");
}

static void
test_mail_size(void **state)
{
    (void)state;
    expect_mail_ok("SIZE=1000", &all_on);
    assert_true(mp.has_size);
    assert_int_equal(mp.size, 1000);
    expect_mail_ok("size=0", &all_on);
    assert_true(mp.has_size);
    assert_int_equal(mp.size, 0);
    expect_mail_ok("SIZE=18446744073709551615", &all_on);
    assert_true(mp.size == UINT64_MAX);
    expect_mail_ok("SIZE=00000000000000000001", &all_on); /* 20 digits */
    assert_int_equal(mp.size, 1);
}

static void
test_mail_size_bad(void **state)
{
    (void)state;
    expect_mail_err("SIZE=18446744073709551616", &all_on, 501, "bad SIZE parameter value");
    expect_mail_err("SIZE=99999999999999999999", &all_on, 501, "bad SIZE");
    expect_mail_err("SIZE=000000000000000000001", &all_on, 501, "bad SIZE"); /* 21 digits */
    expect_mail_err("SIZE=", &all_on, 501, "malformed SIZE parameter value");
    expect_mail_err("SIZE", &all_on, 501, "SIZE parameter requires a value");
    expect_mail_err("SIZE=12a", &all_on, 501, "bad SIZE");
    expect_mail_err("SIZE=-1", &all_on, 501, "bad SIZE");
    expect_mail_err("SIZE=+1", &all_on, 501, "bad SIZE");
    expect_mail_err("SIZE=1 SIZE=1", &all_on, 501, "duplicate SIZE parameter");
    expect_mail_err("SIZE=1 size=2", &all_on, 501, "duplicate SIZE");
}

static void
test_mail_body(void **state)
{
    struct smtp_param_policy only8 = {.eightbit = true};
    struct smtp_param_policy onlybin = {.binarymime = true};

    (void)state;
    expect_mail_ok("BODY=7BIT", &all_on);
    assert_int_equal(mp.body, SMTP_BODY_7BIT);
    expect_mail_ok("BODY=8BITMIME", &only8);
    assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
    expect_mail_ok("body=8bitmime", &all_on);
    assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
    expect_mail_ok("BODY=BINARYMIME", &all_on);
    assert_int_equal(mp.body, SMTP_BODY_BINARYMIME);
    expect_mail_ok("BODY=BINARYMIME", &onlybin);
    assert_int_equal(mp.body, SMTP_BODY_BINARYMIME);
    expect_mail_err("BODY=BINARYMIME", &only8, 501, "bad BODY parameter value");
    expect_mail_err("BODY=8BITMIME", &onlybin, 501, "bad BODY");
    expect_mail_err("BODY=9BIT", &all_on, 501, "bad BODY");
    expect_mail_err("BODY=7BITS", &all_on, 501, "bad BODY");
    expect_mail_err("BODY", &all_on, 501, "requires a value");
    expect_mail_err("BODY=8BITMIME", &all_off, 555, "BODY parameter not implemented");
    expect_mail_err("BODY=7BIT BODY=7BIT", &all_on, 501, "duplicate BODY");
}

static void
test_mail_smtputf8(void **state)
{
    (void)state;
    expect_mail_ok("SMTPUTF8", &all_on);
    assert_true(mp.smtputf8);
    expect_mail_ok("smtputf8", &all_on);
    assert_true(mp.smtputf8);
    expect_mail_err("SMTPUTF8=YES", &all_on, 501, "SMTPUTF8 parameter takes no value");
    expect_mail_err("SMTPUTF8=", &all_on, 501, "malformed SMTPUTF8");
    expect_mail_err("SMTPUTF8", &all_off, 555, "SMTPUTF8 parameter not implemented");
    expect_mail_err("SMTPUTF8 SMTPUTF8", &all_on, 501, "duplicate SMTPUTF8");
}

static void
test_mail_ret(void **state)
{
    (void)state;
    expect_mail_ok("RET=FULL", &all_on);
    assert_int_equal(mp.ret, SMTP_RET_FULL);
    expect_mail_ok("ret=hdrs", &all_on);
    assert_int_equal(mp.ret, SMTP_RET_HDRS);
    expect_mail_err("RET=NONE", &all_on, 501, "bad RET parameter value");
    expect_mail_err("RET", &all_on, 501, "RET parameter requires a value");
    expect_mail_err("RET=FULL RET=HDRS", &all_on, 501, "duplicate RET");
    expect_mail_err("RET=FULL", &all_off, 555, "RET parameter not implemented");
}

static void
test_mail_envid(void **state)
{
    char in[200];

    (void)state;
    expect_mail_ok("ENVID=QQ314159", &all_on);
    assert_string_equal(mp.envid, "QQ314159");
    expect_mail_ok("ENVID=a+2Bb+3D+20c~!", &all_on);
    assert_string_equal(mp.envid, "a+2Bb+3D+20c~!"); /* kept encoded */
    memcpy(in, "ENVID=", 6);
    memset(in + 6, 'e', 100);
    in[106] = '\0';
    expect_mail_ok(in, &all_on);
    assert_int_equal(strlen(mp.envid), 100);
    in[106] = 'e';
    in[107] = '\0';
    expect_mail_err(in, &all_on, 501, "bad ENVID parameter value");
}

static void
test_mail_envid_bad(void **state)
{
    (void)state;
    expect_mail_err("ENVID=a+2b", &all_on, 501, "bad ENVID"); /* hex must be upper case */
    expect_mail_err("ENVID=a+2", &all_on, 501, "bad ENVID");
    expect_mail_err("ENVID=a+", &all_on, 501, "bad ENVID");
    expect_mail_err("ENVID=+G0", &all_on, 501, "bad ENVID");
    expect_mail_err("ENVID=a+b", &all_on, 501, "bad ENVID");
    expect_mail_err("ENVID=a=b", &all_on, 501, "malformed ENVID parameter value");
    expect_mail_err("ENVID=", &all_on, 501, "malformed ENVID");
    expect_mail_err("ENVID", &all_on, 501, "requires a value");
    expect_mail_err("ENVID=\xc3\xa9", &all_on, 501, "malformed ENVID");
    expect_mail_err("ENVID=a ENVID=b", &all_on, 501, "duplicate ENVID");
    expect_mail_err("ENVID=a", &all_off, 555, "ENVID parameter not implemented");
}

static void
test_mail_all_params(void **state)
{
    (void)state;
    expect_mail_ok("  SIZE=100  BODY=8BITMIME SMTPUTF8 RET=HDRS ENVID=abc  ", &all_on);
    assert_true(mp.has_size);
    assert_int_equal(mp.size, 100);
    assert_int_equal(mp.body, SMTP_BODY_8BITMIME);
    assert_true(mp.smtputf8);
    assert_int_equal(mp.ret, SMTP_RET_HDRS);
    assert_string_equal(mp.envid, "abc");
}

static void
test_unknown_and_not_offered(void **state)
{
    struct smtp_param_policy no_size = all_on;

    (void)state;
    no_size.size = false;
    expect_mail_err("FOO=bar", &all_on, 555, "FOO parameter not recognized");
    expect_mail_err("X-FOO", &all_on, 555, "X-FOO parameter not recognized");
    expect_mail_err("AUTH=<>", &all_off, 555, "AUTH parameter not implemented");
    expect_mail_ok("AUTH=<>", &all_on);
    expect_mail_ok("AUTH=alice+40example.org SIZE=10", &all_on);
    expect_mail_err("AUTH", &all_on, 501, "AUTH parameter requires a value");
    expect_mail_err("AUTH=a+4", &all_on, 501, "bad AUTH parameter value");
    expect_rcpt_err("AUTH=<>", &all_on, 555, "AUTH parameter not recognized");
    expect_mail_err("NOTIFY=NEVER", &all_on, 555, "NOTIFY parameter not recognized");
    expect_mail_err("ORCPT=rfc822;a@b", &all_on, 555, "ORCPT parameter not recognized");
    expect_mail_err("SIZE=1", &no_size, 555, "SIZE parameter not implemented");
    expect_mail_err("BODY=7BIT SIZE=1", &no_size, 555, "SIZE parameter not implemented");
    expect_rcpt_err("SIZE=1", &all_on, 555, "SIZE parameter not recognized");
    expect_rcpt_err("RET=FULL", &all_on, 555, "RET parameter not recognized");
    expect_rcpt_err("NOTIFY=NEVER", &all_off, 555, "NOTIFY parameter not implemented");
    expect_rcpt_err("ORCPT=rfc822;a@b", &all_off, 555, "ORCPT parameter not implemented");
}

static void
test_malformed_params(void **state)
{
    char longkw[80];

    (void)state;
    expect_mail_err("=1", &all_on, 501, "malformed parameter keyword");
    expect_mail_err("-X=1", &all_on, 501, "malformed parameter keyword");
    expect_mail_err("SI_ZE=1", &all_on, 501, "malformed parameter keyword");
    expect_mail_err("SIZE=1\tBODY=7BIT", &all_on, 501, "malformed SIZE parameter value");
    expect_mail_err("<a@b>", &all_on, 501, "malformed parameter keyword");
    expect_mail_err("\xc3\xa9=1", &all_on, 501, "malformed parameter keyword");
    memset(longkw, 'K', 70);
    longkw[70] = '\0';
    expect_mail_err(longkw, &all_on, 555, "parameter not recognized");
    assert_true(strlen(err.text) < 32 + sizeof(" parameter not recognized"));
}

static void
test_params_binary_input(void **state)
{
    (void)state;
    memset(&err, 0, sizeof(err));
    /* NUL inside: never a C string, never accepted */
    assert_int_equal(smtp_mail_params_parse(exact_copy("SIZE=1\0", 7), &all_on, &mp, &err), -1);
    assert_int_equal(err.code, 501);
    assert_int_equal(smtp_mail_params_parse(exact_copy("ENVID=a\0b", 9), &all_on, &mp, &err), -1);
    assert_int_equal(smtp_rcpt_params_parse(exact_copy("ORCPT=rfc822;\0", 14), &all_on, &rp, &err),
                     -1);
    /* only len bytes count */
    assert_int_equal(smtp_mail_params_parse(exact_copy("SIZE=12", 6), &all_on, &mp, &err), 0);
    assert_int_equal(mp.size, 1);
    assert_int_equal(smtp_mail_params_parse(exact_copy("SMTPUTF8=x", 8), &all_on, &mp, &err), 0);
    assert_true(mp.smtputf8);
}

static void
test_rcpt_notify(void **state)
{
    (void)state;
    expect_rcpt_ok("NOTIFY=NEVER", &all_on);
    assert_int_equal(rp.notify, SMTP_NOTIFY_NEVER);
    expect_rcpt_ok("NOTIFY=SUCCESS", &all_on);
    assert_int_equal(rp.notify, SMTP_NOTIFY_SUCCESS);
    expect_rcpt_ok("notify=success,Failure,DELAY", &all_on);
    assert_int_equal(rp.notify, SMTP_NOTIFY_SUCCESS | SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
    expect_rcpt_ok("NOTIFY=DELAY,FAILURE", &all_on);
    assert_int_equal(rp.notify, SMTP_NOTIFY_FAILURE | SMTP_NOTIFY_DELAY);
    expect_rcpt_ok("NOTIFY=FAILURE,FAILURE", &all_on);
    assert_int_equal(rp.notify, SMTP_NOTIFY_FAILURE);
    assert_string_equal(rp.orcpt, "");
}

static void
test_rcpt_notify_bad(void **state)
{
    (void)state;
    expect_rcpt_err("NOTIFY=NEVER,SUCCESS", &all_on, 501, "NEVER cannot be combined");
    expect_rcpt_err("NOTIFY=DELAY,NEVER", &all_on, 501, "NEVER cannot be combined");
    expect_rcpt_err("NOTIFY=SUCCESS,,DELAY", &all_on, 501, "bad NOTIFY parameter value");
    expect_rcpt_err("NOTIFY=,SUCCESS", &all_on, 501, "bad NOTIFY");
    expect_rcpt_err("NOTIFY=SUCCESS,", &all_on, 501, "bad NOTIFY");
    expect_rcpt_err("NOTIFY=,", &all_on, 501, "bad NOTIFY");
    expect_rcpt_err("NOTIFY=ALWAYS", &all_on, 501, "bad NOTIFY");
    expect_rcpt_err("NOTIFY", &all_on, 501, "NOTIFY parameter requires a value");
    expect_rcpt_err("NOTIFY=NEVER NOTIFY=NEVER", &all_on, 501, "duplicate NOTIFY");
}

static void
test_rcpt_orcpt(void **state)
{
    char in[600];

    (void)state;
    expect_rcpt_ok("ORCPT=rfc822;user@example.org", &all_on);
    assert_string_equal(rp.orcpt, "rfc822;user@example.org");
    expect_rcpt_ok("ORCPT=utf-8;user\\x{E9}@example.org", &all_on);
    expect_rcpt_ok("ORCPT=RFC822;a+2Bb@c", &all_on);
    expect_rcpt_ok("ORCPT=rfc822;", &all_on); /* xtext may be empty */
    expect_rcpt_ok("NOTIFY=NEVER ORCPT=rfc822;a@b", &all_on);
    assert_int_equal(rp.notify, SMTP_NOTIFY_NEVER);
    assert_string_equal(rp.orcpt, "rfc822;a@b");
    memcpy(in, "ORCPT=rfc822;", 13);
    memset(in + 13, 'o', 500 - 7);
    in[506] = '\0'; /* value is exactly 500 */
    expect_rcpt_ok(in, &all_on);
    assert_int_equal(strlen(rp.orcpt), 500);
    in[506] = 'o';
    in[507] = '\0';
    expect_rcpt_err(in, &all_on, 501, "bad ORCPT parameter value");
}

static void
test_rcpt_orcpt_bad(void **state)
{
    (void)state;
    expect_rcpt_err("ORCPT=rfc822", &all_on, 501, "bad ORCPT");
    expect_rcpt_err("ORCPT=;a@b", &all_on, 501, "bad ORCPT");
    expect_rcpt_err("ORCPT=rfc(822);a@b", &all_on, 501, "bad ORCPT");
    expect_rcpt_err("ORCPT=rfc822;a+2", &all_on, 501, "bad ORCPT");
    expect_rcpt_err("ORCPT=rfc822;a+2c", &all_on, 501, "bad ORCPT");
    expect_rcpt_err("ORCPT=rfc822;a=b", &all_on, 501, "malformed ORCPT");
    expect_rcpt_err("ORCPT", &all_on, 501, "requires a value");
    expect_rcpt_err("ORCPT=rfc822;a ORCPT=rfc822;b", &all_on, 501, "duplicate ORCPT");
    expect_rcpt_err("ORCPT=rfc822;a@b FOO", &all_on, 555, "FOO parameter not recognized");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_command_split, teardown),
        cmocka_unit_test_teardown(test_command_unknown, teardown),
        cmocka_unit_test_teardown(test_command_binary, teardown),
        cmocka_unit_test_teardown(test_verb_names, teardown),
        cmocka_unit_test_teardown(test_mail_no_params, teardown),
        cmocka_unit_test_teardown(test_mail_size, teardown),
        cmocka_unit_test_teardown(test_mail_size_bad, teardown),
        cmocka_unit_test_teardown(test_mail_body, teardown),
        cmocka_unit_test_teardown(test_mail_smtputf8, teardown),
        cmocka_unit_test_teardown(test_mail_ret, teardown),
        cmocka_unit_test_teardown(test_mail_envid, teardown),
        cmocka_unit_test_teardown(test_mail_envid_bad, teardown),
        cmocka_unit_test_teardown(test_mail_all_params, teardown),
        cmocka_unit_test_teardown(test_unknown_and_not_offered, teardown),
        cmocka_unit_test_teardown(test_malformed_params, teardown),
        cmocka_unit_test_teardown(test_params_binary_input, teardown),
        cmocka_unit_test_teardown(test_rcpt_notify, teardown),
        cmocka_unit_test_teardown(test_rcpt_notify_bad, teardown),
        cmocka_unit_test_teardown(test_rcpt_orcpt, teardown),
        cmocka_unit_test_teardown(test_rcpt_orcpt_bad, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
