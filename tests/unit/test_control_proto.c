/*
 * The control protocol (control_proto.c): every request parses to the
 * right command and argument, bad ones are refused with a reason, format
 * and parse round-trip, replies cannot carry a line break, and a socket
 * path longer than sun_path still binds and connects (control_client.c).
 * Parser input is copied into heap blocks of exactly its length so ASan
 * catches reads past the end.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "control/control_client.h"
#include "control/control_proto.h"

#define ID "6B02E3C067D66000"

static char err[256];

/* Parses an exact-size copy of s[0..n). */
static int
parse_n(const char *s, size_t n, struct control_request *r)
{
    char *copy = malloc(n ? n : 1);
    int rc;

    assert_non_null(copy);
    memcpy(copy, s, n);
    err[0] = '\0';
    rc = control_request_parse(str_make(copy, n), r, err, sizeof(err));
    free(copy);
    return rc;
}

static int
parse(const char *s, struct control_request *r)
{
    return parse_n(s, strlen(s), r);
}

static void
expect_ok(const char *line, enum control_cmd cmd, const char *arg)
{
    struct control_request r;

    if (parse(line, &r) != 0)
        fail_msg("\"%s\" refused: %s", line, err);
    assert_int_equal(r.cmd, cmd);
    assert_string_equal(r.arg, arg);
}

static void
expect_refused(const char *line, const char *reason)
{
    struct control_request r;

    if (parse(line, &r) == 0)
        fail_msg("\"%s\" accepted", line);
    if (strstr(err, reason) == NULL)
        fail_msg("\"%s\": reason \"%s\", expected \"%s\"", line, err, reason);
}

static void
test_requests(void **state)
{
    (void)state;
    expect_ok("ping", CONTROL_PING, "");
    expect_ok("flush", CONTROL_FLUSH, "");
    expect_ok("flush Example.ORG", CONTROL_FLUSH, "example.org");
    expect_ok("flush [192.0.2.1]", CONTROL_FLUSH, "[192.0.2.1]");
    expect_ok("flush bücher.example", CONTROL_FLUSH, "bücher.example");
    expect_ok("flush @Example.org", CONTROL_FLUSH, "@example.org"); /* and subdomains */
    expect_ok("delete " ID, CONTROL_DELETE, ID);
    expect_ok("delete all", CONTROL_DELETE_ALL, "");
    expect_ok("DELETE ALL", CONTROL_DELETE_ALL, "");
    expect_ok("hold 6b02e3c067d66000", CONTROL_HOLD, ID); /* ids are uppercased */
    expect_ok("release " ID, CONTROL_RELEASE, ID);
    expect_ok("pickup " ID, CONTROL_PICKUP, ID);
    expect_ok("Ping", CONTROL_PING, "");
    expect_ok("  hold   " ID "  ", CONTROL_HOLD, ID);
    expect_ok("ping\r", CONTROL_PING, "");
}

static void
test_refused(void **state)
{
    (void)state;
    expect_refused("", "empty request");
    expect_refused("   ", "empty request");
    expect_refused("bogus", "unknown command");
    expect_refused("bogus " ID, "unknown command");
    expect_refused("ping now", "usage: ping");
    expect_refused("delete", "usage: delete ID|all");
    expect_refused("hold", "usage: hold ID");
    expect_refused("release", "usage: release ID");
    expect_refused("pickup", "usage: pickup ID");
    expect_refused("delete 123", "bad queue id");
    expect_refused("delete 6B02E3C067D6600G", "bad queue id");
    expect_refused("delete 6B02E3C067D660000", "bad queue id");
    expect_refused("hold ../../etc/passwd", "bad queue id");
    expect_refused("hold " ID " " ID, "too many arguments");
    expect_refused("flush a b", "too many arguments");
    expect_refused("flush user@example.org", "bad domain");
    expect_refused("flush @", "bad domain");
    expect_refused("flush @@example.org", "bad domain");
    expect_refused("flush @.example.org", "bad domain");
    expect_refused("flush -x", "bad domain");
    expect_refused("flush .example.org", "bad domain");
    expect_refused("flush a/b", "bad domain");
    expect_refused("ping\tx", "control character");
    expect_refused("ping\r\r", "control character");
    expect_refused("flush \x7f", "control character");
}

static void
test_nul_and_length(void **state)
{
    struct control_request r;
    char line[CONTROL_LINE_MAX + 10], dom[CONTROL_ARG_MAX + 2];

    (void)state;
    assert_int_equal(parse_n("ping\0x", 6, &r), -1);
    assert_non_null(strstr(err, "control character"));
    assert_int_equal(parse_n("hold " ID "\0", 22, &r), -1);
    /* the longest domain passes, one more octet does not */
    memset(dom, 'a', sizeof(dom));
    dom[CONTROL_ARG_MAX] = '\0';
    snprintf(line, sizeof(line), "flush %s", dom);
    assert_int_equal(parse(line, &r), 0);
    assert_int_equal(strlen(r.arg), CONTROL_ARG_MAX);
    dom[CONTROL_ARG_MAX] = 'a';
    dom[CONTROL_ARG_MAX + 1] = '\0';
    snprintf(line, sizeof(line), "flush %s", dom);
    expect_refused(line, "bad domain");
    memset(line, 'a', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    expect_refused(line, "too long");
}

static void
test_format_round_trip(void **state)
{
    static const struct control_request reqs[] = {
        {CONTROL_PING, ""},    {CONTROL_FLUSH, ""},      {CONTROL_FLUSH, "example.org"},
        {CONTROL_DELETE, ID},  {CONTROL_DELETE_ALL, ""}, {CONTROL_HOLD, ID},
        {CONTROL_RELEASE, ID}, {CONTROL_PICKUP, ID},
    };
    char line[CONTROL_LINE_MAX + 1];

    (void)state;
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct control_request back;
        int n = control_request_format(&reqs[i], line, sizeof(line));

        assert_true(n > 0);
        assert_int_equal(line[n - 1], '\n');
        assert_int_equal(strchr(line, '\n') - line, n - 1);
        assert_int_equal(parse_n(line, (size_t)n - 1, &back), 0);
        assert_int_equal(back.cmd, reqs[i].cmd);
        assert_string_equal(back.arg, reqs[i].arg);
    }
    assert_int_equal(control_request_format(&reqs[3], line, 10), -1); /* too small */
}

static void
test_format_refuses_bad_arguments(void **state)
{
    struct control_request r = {CONTROL_HOLD, "not-an-id"};
    char line[CONTROL_LINE_MAX + 1];

    (void)state;
    assert_int_equal(control_request_format(&r, line, sizeof(line)), -1);
    r = (struct control_request){CONTROL_HOLD, ""};
    assert_int_equal(control_request_format(&r, line, sizeof(line)), -1);
    r = (struct control_request){CONTROL_PING, ID};
    assert_int_equal(control_request_format(&r, line, sizeof(line)), -1);
    r = (struct control_request){CONTROL_FLUSH, "a b"};
    assert_int_equal(control_request_format(&r, line, sizeof(line)), -1);
}

static void
test_replies(void **state)
{
    char line[CONTROL_LINE_MAX + 1], big[2000];
    struct str text;
    size_t n;

    (void)state;
    n = control_reply_format(true, "3 messages scheduled", line, sizeof(line));
    assert_string_equal(line, "ok 3 messages scheduled\n");
    assert_int_equal(n, strlen(line));
    assert_int_equal(control_reply_parse(str_make(line, n - 1), &text), 1);
    assert_int_equal(text.len, strlen("3 messages scheduled"));
    assert_memory_equal(text.ptr, "3 messages scheduled", text.len);

    /* a line break in the text cannot end the reply early */
    n = control_reply_format(false, "bad\r\nok forged", line, sizeof(line));
    assert_string_equal(line, "error bad??ok forged\n");
    assert_int_equal(control_reply_parse(str_make(line, n - 1), &text), 0);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    n = control_reply_format(true, big, line, sizeof(line));
    assert_true(n <= CONTROL_LINE_MAX);
    assert_int_equal(line[n - 1], '\n');
    n = control_reply_format(true, big, line, 20);
    assert_int_equal(n, strlen(line));
    assert_true(n < 20);
    assert_int_equal(line[n - 1], '\n');

    assert_int_equal(control_reply_parse(STR_LIT("ok"), &text), 1);
    assert_int_equal(text.len, 0);
    assert_int_equal(control_reply_parse(STR_LIT("OK fine\r"), &text), 1);
    assert_int_equal(text.len, 4);
    assert_int_equal(control_reply_parse(STR_LIT("error no such message"), &text), 0);
    assert_int_equal(control_reply_parse(STR_LIT("okay"), &text), -1);
    assert_int_equal(control_reply_parse(STR_LIT(""), &text), -1);
    assert_int_equal(control_reply_parse(STR_LIT("250 ok"), &text), -1);
}

static void
test_socket_path(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(control_socket_path("/var/spool/petrel", out, sizeof(out)), 0);
    assert_string_equal(out, "/var/spool/petrel/control.sock");
    assert_int_equal(control_socket_path("/a/very/long/spool/directory/name/here/x", out, 40), -1);
    assert_string_equal(control_cmd_name(CONTROL_DELETE_ALL), "delete");
    assert_string_equal(control_cmd_name(CONTROL_PICKUP), "pickup");
}

/* A path longer than sun_path binds through /proc/self/fd and a client
 * connects to it the same way. */
static void
test_long_socket_path(void **state)
{
    char dir[] = "/tmp/petrel-test-control-XXXXXX", path[PATH_MAX], sub[PATH_MAX];
    struct sockaddr_un sun;
    socklen_t len;
    int dirfd, srv, cli, acc;

    (void)state;
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/%0120d", dir, 7);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(path, sizeof(path), "%s/control.sock", sub);
    assert_true(strlen(path) >= sizeof(sun.sun_path));

    assert_int_equal(control_sockaddr(path, &sun, &len, &dirfd), 0);
    assert_true(dirfd >= 0);
    assert_memory_equal(sun.sun_path, "/proc/self/fd/", 14);
    srv = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(srv >= 0);
    assert_int_equal(bind(srv, (struct sockaddr *)&sun, len), 0);
    close(dirfd);
    assert_int_equal(listen(srv, 1), 0);
    assert_int_equal(access(path, F_OK), 0); /* the file is where it should be */

    cli = control_client_connect(path);
    assert_true(cli >= 0);
    acc = accept(srv, NULL, NULL);
    assert_true(acc >= 0);
    close(acc);
    close(cli);
    close(srv);
    unlink(path);
    rmdir(sub);
    rmdir(dir);

    /* short paths go into sun_path as they are */
    assert_int_equal(control_sockaddr("/run/x.sock", &sun, &len, &dirfd), 0);
    assert_int_equal(dirfd, -1);
    assert_string_equal(sun.sun_path, "/run/x.sock");
}

/* Nobody listening: UNREACHABLE with the system's reason. */
static void
test_client_unreachable(void **state)
{
    struct control_request r = {CONTROL_PING, ""};
    char text[128];

    (void)state;
    assert_int_equal(
        control_client_request("/nonexistent/petrel/control.sock", &r, 1000, text, sizeof(text)),
        CONTROL_UNREACHABLE);
    assert_string_equal(text, "No such file or directory");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_nul_and_length),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_format_refuses_bad_arguments),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_socket_path),
        cmocka_unit_test(test_long_socket_path),
        cmocka_unit_test(test_client_unreachable),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
