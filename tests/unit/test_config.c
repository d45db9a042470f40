/*
 * The config parser: every directive, the defaults, units, relative path
 * resolution, and each class of error with its exact "FILE:LINE: problem"
 * line. The tests run inside a mkdtemp directory (removed at the end) so
 * that messages can name "petrel.conf" rather than a random path.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

#include "config/config.h"

#define LISTEN "listen on 127.0.0.1 port 2525\n"

static char tmpdir[] = "/tmp/petrel-test-config-XXXXXX";
static char realdir[PATH_MAX]; /* realpath(tmpdir): /tmp may be a symlink */
static char oldcwd[PATH_MAX];
static char err[512];

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
group_setup(void **state)
{
    (void)state;
    if (getcwd(oldcwd, sizeof(oldcwd)) == NULL || mkdtemp(tmpdir) == NULL ||
        realpath(tmpdir, realdir) == NULL || chdir(tmpdir) < 0 || mkdir("etc", 0700) < 0)
        return -1;
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    if (chdir(oldcwd) < 0)
        return -1;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void
write_file_n(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void
write_file(const char *path, const char *text)
{
    write_file_n(path, text, strlen(text));
}

/* Writes text to petrel.conf and loads it; err holds the problem on NULL. */
static struct config *
load(const char *text)
{
    write_file("petrel.conf", text);
    err[0] = '\0';
    return config_load("petrel.conf", err, sizeof(err));
}

static void
expect_error(const char *text, const char *want)
{
    struct config *cf = load(text);

    if (cf != NULL) {
        config_unref(cf);
        fail_msg("accepted:\n%s", text);
    }
    if (strcmp(err, want) != 0)
        fail_msg("for:\n%s\nwant: %s\n got: %s", text, want, err);
    assert_null(strchr(err, '\n'));
}

/* realdir + "/" + rel, for expected absolute paths. */
static const char *
abs_path(const char *rel)
{
    static char buf[2][PATH_MAX + 64];
    static int which;

    which ^= 1;
    snprintf(buf[which], sizeof(buf[which]), "%s/%s", realdir, rel);
    return buf[which];
}

static void
test_outbound(void **state)
{
    struct config *cf = load(LISTEN "retry 1m 2m 1h\nexpire 2d\ndelay-warning 4h\n"
                                    "relay-handoff 45s\n"
                                    "resolver 127.0.0.1 port 5353\nremote port 2526\n"
                                    "limit outbound-connections 7\n"
                                    "limit destination-connections 2\n"
                                    "action \"mx\" relay\n"
                                    "action \"smart\" relay host smtp.example.net port 587\n"
                                    "action \"dovecot\" lmtp 127.0.0.1 port 24\n"
                                    "match from local for domain \"lmtp.test\" action \"dovecot\"\n"
                                    "match from local for any action \"smart\"\n");

    (void)state;
    if (cf == NULL)
        fail_msg("%s", err);
    assert_int_equal(cf->nretry, 3);
    assert_int_equal(cf->retry[2], 3600);
    assert_int_equal(cf->expire, 2 * 86400);
    assert_int_equal(cf->delay_warning, 4 * 3600);
    assert_int_equal(cf->relay_handoff, 45);
    assert_string_equal(cf->resolver, "127.0.0.1");
    assert_int_equal(cf->resolver_port, 5353);
    assert_int_equal(cf->remote_port, 2526);
    assert_int_equal(cf->max_outbound, 7);
    assert_int_equal(cf->max_per_destination, 2);
    assert_int_equal(cf->actions[0].kind, ACTION_RELAY);
    assert_null(cf->actions[0].host);
    assert_string_equal(cf->actions[1].host, "smtp.example.net");
    assert_int_equal(cf->actions[1].port, 587);
    assert_int_equal(cf->actions[2].kind, ACTION_LMTP);
    assert_int_equal(cf->actions[2].port, 24);
    config_unref(cf);

    expect_error(LISTEN "retry\n", "petrel.conf:2: retry: missing a duration");
    expect_error(LISTEN "retry 5x\n", "petrel.conf:2: retry: invalid duration \"5x\"");
    expect_error(LISTEN "expire 0s\n", "petrel.conf:2: expire: invalid duration \"0s\"");
    expect_error(LISTEN "resolver 127.0.0.1\n", "petrel.conf:2: resolver: missing \"port\"");
    expect_error(LISTEN "action \"l\" lmtp 127.0.0.1\n", "petrel.conf:2: action: missing \"port\"");
    expect_error(LISTEN "remote port 0\n", "petrel.conf:2: remote: 0 is out of range (1-65535)");
    expect_error(LISTEN "relay-handoff 0s\n",
                 "petrel.conf:2: relay-handoff: invalid duration \"0s\"");
    expect_error(LISTEN "relay-handoff 10m\n",
                 "petrel.conf:2: relay-handoff: invalid duration \"10m\"");
    cf = load(LISTEN "relay-handoff off\n");
    if (cf == NULL)
        fail_msg("%s", err);
    assert_int_equal(cf->relay_handoff, 0);
    config_unref(cf);
}

static void
test_defaults(void **state)
{
    struct config *cf = load(LISTEN);
    char host[256] = "";

    (void)state;
    assert_non_null(cf);
    assert_int_equal(cf->refs, 1);
    assert_string_equal(cf->path, "petrel.conf");
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    assert_string_equal(cf->hostname, host);
    assert_string_equal(cf->spool, "/var/spool/petrel");
    assert_int_equal(cf->nlistens, 1);
    assert_string_equal(cf->listens[0].addr, "127.0.0.1");
    assert_int_equal(cf->listens[0].port, 2525);
    assert_int_equal(cf->ntables + cf->nactions + cf->nrules, 0);
    assert_int_equal(cf->message_size, 25 * 1024 * 1024);
    assert_int_equal(cf->max_recipients, 1000);
    assert_int_equal(cf->max_errors, 10);
    assert_int_equal(cf->max_connections, 1000);
    assert_int_equal(cf->max_received, 100);
    assert_int_equal(cf->line_length, 8192);
    assert_int_equal(cf->timeout_command, 300);
    assert_int_equal(cf->timeout_data, 180);
    assert_int_equal(cf->timeout_shutdown, 30);
    assert_false(cf->vrfy);
    assert_false(cf->expn);
    assert_false(cf->terminal_delivery);
    assert_int_equal(cf->bare_newline, BARE_NEWLINE_NORMALIZE);
    assert_int_equal(cf->recipient_delimiter, '+');
    assert_int_equal(cf->nretry, 7);
    assert_int_equal(cf->retry[0], 300);
    assert_int_equal(cf->retry[6], 14400);
    assert_int_equal(cf->expire, 5 * 86400);
    assert_int_equal(cf->delay_warning, 0);
    assert_null(cf->resolver);
    assert_int_equal(cf->remote_port, 25);
    assert_int_equal(cf->max_outbound, 100);
    assert_int_equal(cf->max_per_destination, 20);
    assert_int_equal(cf->relay_handoff, 10);
    assert_int_equal(cf->max_auth_failures, 3);
    assert_int_equal(cf->auth_throttle, 300);
    config_unref(cf);
}

static const char full_config[] =
    "# petrel test config\n"
    "hostname mx.Example.org\n"
    "spool \"/srv/petrel spool\"   # quoted, with a space\n"
    "listen on 127.0.0.1 port 25\n"
    "listen on ::1 port 587\n"
    "listen on 0:0:0:0:0:0:0:1 port 2525\n"
    "listen on localhost port 26\n"
    "\n"
    "table users file:\"users\"\n"
    "table aliases file:aliases\n"
    "table trusted file: \"nets\"\n"
    "table domains file:\"domains\"\n"
    "action \"local\" maildir \"mail/%{user}/Maildir\" users <users> aliases <aliases>\n"
    "action anyone maildir \"/var/mail/%{user}\"\n"
    "action \"out\" relay\n"
    "match for domain \"Example.ORG\" action \"local\"\n"
    "match from any for domain <domains> action anyone\n"
    "match from src <trusted> for any action \"out\"\n"
    "match from src 198.51.100.0/24 for any action \"out\"\n"
    "match from local for any action \"out\"\n"
    "match action \"out\" for any from auth\n"
    "limit message-size 10M\n"
    "limit recipients 50\n"
    "limit errors 3\n"
    "limit connections 200\n"
    "limit received-headers 30\n"
    "limit line-length 1000\n"
    "timeout command 10m\n"
    "timeout data 2m\n"
    "timeout shutdown 0\n"
    "vrfy on\n"
    "expn on\n"
    "terminal-delivery on\n"
    "bare-newline reject\n"
    "recipient-delimiter \"-\"\n";

static void
write_tables(void)
{
    write_file("users", "alice\nbob\n");
    write_file("aliases", "sales: alice, bob\n");
    write_file("nets", "192.0.2.0/24\n2001:db8::/32\n");
    write_file("domains", "example.net\n");
}

static void
check_full_rules(const struct config *cf)
{
    const struct match_rule *r = cf->rules;

    assert_int_equal(cf->nrules, 6);
    assert_int_equal(r[0].from, MATCH_FROM_ANY);
    assert_int_equal(r[0].for_, MATCH_FOR_DOMAIN);
    assert_string_equal(r[0].domain, "example.org");
    assert_ptr_equal(r[0].action, &cf->actions[0]);
    assert_int_equal(r[0].line, 16);
    assert_int_equal(r[1].for_, MATCH_FOR_DOMAIN_TABLE);
    assert_ptr_equal(r[1].domain_table, cf->tables[3]);
    assert_ptr_equal(r[1].action, &cf->actions[1]);
    assert_int_equal(r[2].from, MATCH_FROM_TABLE);
    assert_ptr_equal(r[2].from_table, cf->tables[2]);
    assert_int_equal(cf->tables[2]->nnets, 2); /* parsed as networks at load */
    assert_int_equal(r[2].for_, MATCH_FOR_ANY);
    assert_ptr_equal(r[2].action, &cf->actions[2]);
    assert_int_equal(r[3].from, MATCH_FROM_NET);
    assert_int_equal(r[3].from_net.prefix, 24);
    assert_int_equal(r[4].from, MATCH_FROM_LOCAL);
    assert_int_equal(r[5].from, MATCH_FROM_AUTH);
    assert_ptr_equal(r[5].action, &cf->actions[2]);
}

static void
check_full_actions(const struct config *cf)
{
    assert_int_equal(cf->ntables, 4);
    assert_string_equal(cf->tables[0]->name, "users");
    assert_string_equal(cf->tables[0]->path, abs_path("users"));
    assert_string_equal(cf->tables[1]->path, abs_path("aliases"));
    assert_int_equal(cf->nactions, 3);
    assert_string_equal(cf->actions[0].name, "local");
    assert_int_equal(cf->actions[0].kind, ACTION_MAILDIR);
    assert_string_equal(cf->actions[0].maildir, abs_path("mail/%{user}/Maildir"));
    assert_ptr_equal(cf->actions[0].users, cf->tables[0]);
    assert_ptr_equal(cf->actions[0].aliases, cf->tables[1]);
    assert_string_equal(cf->actions[1].name, "anyone");
    assert_string_equal(cf->actions[1].maildir, "/var/mail/%{user}");
    assert_null(cf->actions[1].users);
    assert_null(cf->actions[1].aliases);
    assert_string_equal(cf->actions[2].name, "out");
    assert_int_equal(cf->actions[2].kind, ACTION_RELAY);
}

static void
test_full_grammar(void **state)
{
    struct config *cf;

    (void)state;
    write_tables();
    cf = load(full_config);
    if (cf == NULL)
        fail_msg("%s", err);
    assert_string_equal(cf->hostname, "mx.Example.org");
    assert_string_equal(cf->spool, "/srv/petrel spool");
    assert_int_equal(cf->nlistens, 4);
    assert_string_equal(cf->listens[1].addr, "::1");
    assert_int_equal(cf->listens[1].port, 587);
    assert_string_equal(cf->listens[2].addr, "::1");
    assert_string_equal(cf->listens[3].addr, "127.0.0.1");
    check_full_actions(cf);
    check_full_rules(cf);
    assert_int_equal(cf->message_size, 10 * 1024 * 1024);
    assert_int_equal(cf->max_recipients, 50);
    assert_int_equal(cf->max_errors, 3);
    assert_int_equal(cf->max_connections, 200);
    assert_int_equal(cf->max_received, 30);
    assert_int_equal(cf->line_length, 1000);
    assert_int_equal(cf->timeout_command, 600);
    assert_int_equal(cf->timeout_data, 120);
    assert_int_equal(cf->timeout_shutdown, 0);
    assert_true(cf->vrfy && cf->expn && cf->terminal_delivery);
    assert_int_equal(cf->bare_newline, BARE_NEWLINE_REJECT);
    assert_int_equal(cf->recipient_delimiter, '-');
    config_unref(cf);
}

static void
test_flags_off_and_delimiter_none(void **state)
{
    struct config *cf = load(LISTEN "vrfy off\nexpn off\nterminal-delivery off\n"
                                    "bare-newline normalize\nrecipient-delimiter none\n");

    (void)state;
    assert_non_null(cf);
    assert_false(cf->vrfy || cf->expn || cf->terminal_delivery);
    assert_int_equal(cf->bare_newline, BARE_NEWLINE_NORMALIZE);
    assert_int_equal(cf->recipient_delimiter, '\0');
    config_unref(cf);
}

static void
test_sync_method(void **state)
{
    struct config *cf = load(LISTEN);

    (void)state;
    assert_non_null(cf);
    assert_int_equal(cf->sync, SYNC_METHOD_FILESYSTEM); /* the default */
    config_unref(cf);
    cf = load(LISTEN "sync files\n");
    assert_non_null(cf);
    assert_int_equal(cf->sync, SYNC_METHOD_FILES);
    config_unref(cf);
    cf = load(LISTEN "sync filesystem\n");
    assert_non_null(cf);
    assert_int_equal(cf->sync, SYNC_METHOD_FILESYSTEM);
    config_unref(cf);
    expect_error(LISTEN "sync\n", "petrel.conf:2: sync: missing \"files\" or \"filesystem\"");
    expect_error(LISTEN "sync disk\n",
                 "petrel.conf:2: sync: expected \"files\" or \"filesystem\", found \"disk\"");
    expect_error(LISTEN "sync files files\n",
                 "petrel.conf:2: sync: unexpected extra argument \"files\"");
}

static void
test_strings_and_comments(void **state)
{
    struct config *cf = load("# leading comment\n"
                             "   # indented comment\n" LISTEN
                             "spool \"/x/# not a comment/\\\"q\\\"/\\\\b\"# comment\n"
                             "hostname\tmx.example.org   \r\n");

    (void)state;
    if (cf == NULL)
        fail_msg("%s", err);
    assert_string_equal(cf->spool, "/x/# not a comment/\"q\"/\\b");
    assert_string_equal(cf->hostname, "mx.example.org");
    config_unref(cf);
}

static void
test_relative_paths(void **state)
{
    struct config *cf;
    char want[PATH_MAX + 64];

    (void)state;
    write_file("etc/users", "alice\n");
    write_file("etc/petrel.conf", LISTEN "spool \"../var/spool\"\n"
                                         "table users file:\"users\"\n"
                                         "action \"l\" maildir \"mail/%{user}\" users <users>\n");
    cf = config_load("etc/petrel.conf", err, sizeof(err));
    if (cf == NULL)
        fail_msg("%s", err);
    assert_string_equal(cf->spool, abs_path("var/spool")); /* normalized */
    assert_string_equal(cf->tables[0]->path, abs_path("etc/users"));
    assert_string_equal(cf->actions[0].maildir, abs_path("etc/mail/%{user}"));
    config_unref(cf);

    /* An absolute config path resolves the same way. */
    snprintf(want, sizeof(want), "%s/etc/petrel.conf", realdir);
    cf = config_load(want, err, sizeof(err));
    assert_non_null(cf);
    assert_string_equal(cf->tables[0]->path, abs_path("etc/users"));
    config_unref(cf);
}

static void
test_parse_string(void **state)
{
    struct config *cf;

    (void)state;
    cf = config_parse_string("etc/petrel.conf", LISTEN "spool \"q\"\n", err, sizeof(err));
    if (cf == NULL)
        fail_msg("%s", err);
    assert_string_equal(cf->path, "etc/petrel.conf");
    assert_string_equal(cf->spool, abs_path("etc/q"));
    config_unref(cf);

    assert_null(config_parse_string("inline", "lisen on 1.2.3.4\n", err, sizeof(err)));
    assert_string_equal(err, "inline:1: unknown directive \"lisen\"");
    assert_null(config_parse_string("inline", NULL, err, sizeof(err)));
    assert_string_equal(err, "inline:0: no \"listen\" directive (at least one is required)");
    assert_null(config_parse_string("no/such/dir/x.conf", LISTEN "spool rel\n", err, sizeof(err)));
    assert_string_equal(err, "no/such/dir/x.conf:2: cannot resolve \"rel\" against directory "
                             "\"no/such/dir\": No such file or directory");
}

static void
test_refcount(void **state)
{
    struct config *cf = load(LISTEN);

    (void)state;
    assert_non_null(cf);
    assert_ptr_equal(config_ref(cf), cf);
    assert_int_equal(cf->refs, 2);
    config_unref(cf);
    assert_int_equal(cf->refs, 1);
    config_unref(cf); /* freed: ASan reports a leak or a use otherwise */
    config_unref(NULL);
}

static void
test_parse_size(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"0", 0},
        {"512", 512},
        {"10k", 10240},
        {"10K", 10240},
        {"25M", 26214400},
        {"25m", 26214400},
        {"1G", 1073741824},
        {"2T", UINT64_C(2) << 40},
        {"18446744073709551615", UINT64_MAX},
        {"16777215T", UINT64_C(16777215) << 40},
    };
    static const char *bad[] = {"",    "M",  "-1",   "+5",   " 5",        "5 ",
                                "5MB", "5x", "1.5M", "0x10", "16777216T", "18446744073709551616"};
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(config_parse_size(ok[i].s, &v), 0);
        assert_true(v == ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_size(bad[i], &v) == 0)
            fail_msg("accepted size \"%s\"", bad[i]);
    assert_int_equal(config_parse_size(NULL, &v), -1);
}

static void
test_parse_duration(void **state)
{
    static const struct {
        const char *s;
        unsigned v;
    } ok[] = {
        {"0", 0},
        {"45", 45},
        {"30s", 30},
        {"5m", 300},
        {"2h", 7200},
        {"1d", 86400},
        {"4294967295", 4294967295u},
    };
    static const char *bad[] = {"",     "s",          "-5",     "+5",
                                "5M",   "5 m",        "1w",     "5ms",
                                "1.5h", "4294967296", "49711d", "99999999999999999999"};
    unsigned v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(config_parse_duration(ok[i].s, &v), 0);
        assert_int_equal(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (config_parse_duration(bad[i], &v) == 0)
            fail_msg("accepted duration \"%s\"", bad[i]);
}

static void
test_limit_units_in_config(void **state)
{
    struct config *cf = load(LISTEN "limit message-size 1024\ntimeout data 90\n"
                                    "timeout command 1h\ntimeout shutdown 1d\n");

    (void)state;
    assert_non_null(cf);
    assert_int_equal(cf->message_size, 1024);
    assert_int_equal(cf->timeout_data, 90);
    assert_int_equal(cf->timeout_command, 3600);
    assert_int_equal(cf->timeout_shutdown, 86400);
    config_unref(cf);
}

struct error_case {
    const char *text;
    const char *err;
};

static void
run_error_cases(const struct error_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++)
        expect_error(cases[i].text, cases[i].err);
}

#define RUN(cases) run_error_cases(cases, sizeof(cases) / sizeof(cases[0]))

static void
test_errors_directives(void **state)
{
    static const struct error_case cases[] = {
        {LISTEN "\nlisen on 1.2.3.4 port 25\n", "petrel.conf:3: unknown directive \"lisen\""},
        {"Listen on 127.0.0.1 port 25\n", "petrel.conf:1: unknown directive \"Listen\""},
        {"\"listen\" on 127.0.0.1 port 25\n",
         "petrel.conf:1: expected a directive, found \"listen\""},
        {"<t>\n", "petrel.conf:1: expected a directive, found <t>"},
        {LISTEN "hostname\n", "petrel.conf:2: hostname: missing a host name"},
        {LISTEN "hostname a.example b.example\n",
         "petrel.conf:2: hostname: unexpected extra argument \"b.example\""},
        {LISTEN "hostname a..example\n",
         "petrel.conf:2: hostname: invalid host name \"a..example\""},
        {LISTEN "hostname a_b\n", "petrel.conf:2: hostname: invalid host name \"a_b\""},
        {LISTEN "hostname a\nhostname b\n",
         "petrel.conf:3: duplicate \"hostname\" (first at line 2)"},
        {LISTEN "spool\n", "petrel.conf:2: spool: missing a path"},
        {LISTEN "spool \"\"\n", "petrel.conf:2: spool: empty path"},
        {LISTEN "spool /a\nspool /b\n", "petrel.conf:3: duplicate \"spool\" (first at line 2)"},
        {LISTEN "spool <t>\n", "petrel.conf:2: spool: expected a path, found <t>"},
        {"# nothing\n\n", "petrel.conf:2: no \"listen\" directive (at least one is required)"},
        {"", "petrel.conf:0: no \"listen\" directive (at least one is required)"},
    };

    (void)state;
    RUN(cases);
}

static void
test_errors_listen(void **state)
{
    static const struct error_case cases[] = {
        {"listen 127.0.0.1 port 25\n",
         "petrel.conf:1: listen: expected \"on\", found \"127.0.0.1\""},
        {"listen on\n", "petrel.conf:1: listen: missing an address"},
        {"listen on mail.example.org port 25\n",
         "petrel.conf:1: listen: invalid address \"mail.example.org\" (numeric IPv4 or IPv6)"},
        {"listen on 127.0.0.1\n", "petrel.conf:1: listen: missing \"port\""},
        {"listen on 127.0.0.1 25\n", "petrel.conf:1: listen: expected \"port\", found \"25\""},
        {"listen on 127.0.0.1 port\n", "petrel.conf:1: listen: missing a number"},
        {"listen on 127.0.0.1 port 0\n", "petrel.conf:1: listen: 0 is out of range (1-65535)"},
        {"listen on 127.0.0.1 port 65536\n",
         "petrel.conf:1: listen: 65536 is out of range (1-65535)"},
        {"listen on 127.0.0.1 port smtp\n", "petrel.conf:1: listen: invalid number \"smtp\""},
        {"listen on 127.0.0.1 port -25\n", "petrel.conf:1: listen: invalid number \"-25\""},
        {"listen on 127.0.0.1 port 99999999999999999999999\n",
         "petrel.conf:1: listen: invalid number \"99999999999999999999999\""},
        {"listen on 127.0.0.1 port 25 tls\n", "petrel.conf:1: listen: missing \"pki\""},
        {"listen on 127.0.0.1 port 25 tls pki \"mx\"\n",
         "petrel.conf:1: listen: undefined pki \"mx\" (define it with `pki` first)"},
        {"listen on 127.0.0.1 port 25 auth\n",
         "petrel.conf:1: listen: auth needs a <table> of users (or a table named \"users\")"},
        {"listen on 127.0.0.1 port 25\nlisten on localhost port 25\n",
         "petrel.conf:2: listen: duplicate listen on 127.0.0.1 port 25"},
        {"table pw file:\"pw\"\nlisten on 127.0.0.1 port 587 auth <pw>\n",
         "petrel.conf:2: listen: auth without TLS: add `tls pki \"NAME\"` (or `insecure` to "
         "allow passwords in the clear)"},
        {"table pw file:\"pw\"\nlisten on 127.0.0.1 port 587 submission auth <pw>\n",
         "petrel.conf:2: listen: auth without TLS: add `tls pki \"NAME\"` (or `insecure` to "
         "allow passwords in the clear)"},
        {"listen on 127.0.0.1 port 587 submission\n",
         "petrel.conf:1: listen: submission needs `auth`"},
        {"listen on 127.0.0.1 port 587 auth <pw> insecure\n",
         "petrel.conf:1: listen: undefined table <pw>"},
        {"listen on 127.0.0.1 port 587 insecure\n",
         "petrel.conf:1: listen: unexpected extra argument \"insecure\""},
    };

    (void)state;
    write_file("pw", "alice\n");
    RUN(cases);
}

static void
test_listen_auth(void **state)
{
    struct config *cf;

    (void)state;
    write_file("pw",
               "alice:$y$j9T$F3Sns9u76w/0CQoPXtBqS/$qrPKYdBi3gsyRcqWm1x8OaMJ8K7tMPXP8kbQqkhdQt8\n");
    cf = load("table pw file:\"pw\"\n"
              "listen on 127.0.0.1 port 25\n"
              "listen on 127.0.0.1 port 587 submission auth <pw> insecure\n"
              "listen on 127.0.0.1 port 2587 auth <pw> insecure\n");
    assert_non_null(cf);
    assert_int_equal(cf->nlistens, 3);
    assert_false(cf->listens[0].submission);
    assert_null(cf->listens[0].auth_users);
    assert_true(cf->listens[1].submission);
    assert_non_null(cf->listens[1].auth_users);
    assert_true(cf->listens[1].auth_insecure);
    assert_false(cf->listens[2].submission);
    assert_ptr_equal(cf->listens[2].auth_users, cf->listens[1].auth_users);
    config_unref(cf);
}

static void
test_errors_limits(void **state)
{
    static const struct error_case cases[] = {
        {LISTEN "limit\n", "petrel.conf:2: limit: missing name of the limit"},
        {LISTEN "limit rcpts 5\n", "petrel.conf:2: limit: unknown limit \"rcpts\""},
        {LISTEN "limit recipients\n", "petrel.conf:2: limit recipients: missing a number"},
        {LISTEN "limit recipients abc\n",
         "petrel.conf:2: limit recipients: invalid number \"abc\""},
        {LISTEN "limit recipients 0\n",
         "petrel.conf:2: limit recipients: 0 is out of range (1-1000000)"},
        {LISTEN "limit recipients 5 6\n",
         "petrel.conf:2: limit recipients: unexpected extra argument \"6\""},
        {LISTEN "limit recipients 5\nlimit errors 5\nlimit recipients 6\n",
         "petrel.conf:4: duplicate \"limit recipients\" (first at line 2)"},
        {LISTEN "limit line-length 999\n",
         "petrel.conf:2: limit line-length: 999 is out of range (1000-1048576)"},
        {LISTEN "limit received-headers 1001\n",
         "petrel.conf:2: limit received-headers: 1001 is out of range (1-1000)"},
        {LISTEN "limit message-size 25MB\n",
         "petrel.conf:2: limit message-size: invalid size \"25MB\" (bytes, or with K, M, G)"},
        {LISTEN "limit message-size 0\n",
         "petrel.conf:2: limit message-size: 0 is out of range (1-1099511627776 bytes)"},
        {LISTEN "limit message-size 2T\n",
         "petrel.conf:2: limit message-size: 2T is out of range (1-1099511627776 bytes)"},
        {LISTEN "timeout\n", "petrel.conf:2: timeout: missing name of the timeout"},
        {LISTEN "timeout idle 5m\n", "petrel.conf:2: timeout: unknown timeout \"idle\""},
        {LISTEN "timeout command 5 m\n",
         "petrel.conf:2: timeout command: unexpected extra argument \"m\""},
        {LISTEN "timeout command 5x\n", "petrel.conf:2: timeout command: invalid duration "
                                        "\"5x\" (seconds, or with s, m, h, d)"},
        {LISTEN "timeout command 0\n",
         "petrel.conf:2: timeout command: 0 is out of range (1-86400 seconds)"},
        {LISTEN "timeout data 2d\n",
         "petrel.conf:2: timeout data: 2d is out of range (1-86400 seconds)"},
        {LISTEN "timeout shutdown 1s\ntimeout shutdown 2s\n",
         "petrel.conf:3: duplicate \"timeout shutdown\" (first at line 2)"},
    };

    (void)state;
    RUN(cases);
}

static void
test_errors_switches(void **state)
{
    static const struct error_case cases[] = {
        {LISTEN "vrfy\n", "petrel.conf:2: vrfy: missing \"on\" or \"off\""},
        {LISTEN "vrfy yes\n", "petrel.conf:2: vrfy: expected \"on\" or \"off\", found \"yes\""},
        {LISTEN "expn on off\n", "petrel.conf:2: expn: unexpected extra argument \"off\""},
        {LISTEN "vrfy on\nvrfy off\n", "petrel.conf:3: duplicate \"vrfy\" (first at line 2)"},
        {LISTEN "terminal-delivery \"on\"\n",
         "petrel.conf:2: terminal-delivery: expected \"on\" or \"off\", found \"on\""},
        {LISTEN "bare-newline strip\n", "petrel.conf:2: bare-newline: expected \"normalize\" or "
                                        "\"reject\", found \"strip\""},
        {LISTEN "bare-newline reject\nbare-newline reject\n",
         "petrel.conf:3: duplicate \"bare-newline\" (first at line 2)"},
        {LISTEN "recipient-delimiter\n",
         "petrel.conf:2: recipient-delimiter: missing a delimiter or \"none\""},
        {LISTEN "recipient-delimiter \"++\"\n",
         "petrel.conf:2: recipient-delimiter: invalid delimiter \"++\" (one character such as "
         "\"+\" or \"-\")"},
        {LISTEN "recipient-delimiter \"@\"\n",
         "petrel.conf:2: recipient-delimiter: invalid delimiter \"@\" (one character such as "
         "\"+\" or \"-\")"},
        {LISTEN "recipient-delimiter x\n",
         "petrel.conf:2: recipient-delimiter: invalid delimiter \"x\" (one character such as "
         "\"+\" or \"-\")"},
        {LISTEN "recipient-delimiter none +\n",
         "petrel.conf:2: recipient-delimiter: unexpected extra argument \"+\""},
    };

    (void)state;
    RUN(cases);
}

static void
test_errors_tokens(void **state)
{
    static const struct error_case cases[] = {
        {LISTEN "spool \"/var/spool\n", "petrel.conf:2: unterminated string"},
        {LISTEN "spool \"/var\\nspool\"\n",
         "petrel.conf:2: unknown escape in string (only \\\" and \\\\)"},
        {LISTEN "spool \"/var/\x01\"\n", "petrel.conf:2: control character in string"},
        {LISTEN "hostname a\x01\n", "petrel.conf:2: control character in line"},
        {LISTEN "action x maildir \"/m/%{user}\" users <users\n",
         "petrel.conf:2: unterminated table reference (missing \">\")"},
        {LISTEN "action x maildir \"/m/%{user}\" users <>\n",
         "petrel.conf:2: empty table reference \"<>\""},
        {LISTEN "a b c d e f g h i j k l m n o p q r s t u v w x y z 1 2 3 4 5 6 7\n",
         "petrel.conf:2: too many words on one line"},
    };

    (void)state;
    RUN(cases);
}

static void
test_errors_tables(void **state)
{
    char want[PATH_MAX + 128];
    static const struct error_case cases[] = {
        {LISTEN "table\n", "petrel.conf:2: table: missing a table name"},
        {LISTEN "table users\n", "petrel.conf:2: table: missing file:\"PATH\""},
        {LISTEN "table users users\n",
         "petrel.conf:2: table: expected file:\"PATH\", found \"users\""},
        {LISTEN "table users file:\n", "petrel.conf:2: table: missing a path after file:"},
        {LISTEN "table users file:\"\"\n", "petrel.conf:2: table \"users\": empty path"},
        {LISTEN "table users file:users extra\n",
         "petrel.conf:2: table: unexpected extra argument \"extra\""},
        {LISTEN "table \"a b\" file:users\n",
         "petrel.conf:2: table: invalid name \"a b\" (letters, digits, - _ .)"},
        {LISTEN "table users file:users\ntable users file:users\n",
         "petrel.conf:3: table: duplicate table \"users\""},
    };

    (void)state;
    write_file("users", "alice\n");
    RUN(cases);
    snprintf(want, sizeof(want), "petrel.conf:2: table \"t\": \"%s\" is not a regular file",
             abs_path("etc"));
    expect_error(LISTEN "table t file:etc\n", want);
    snprintf(want, sizeof(want),
             "petrel.conf:2: table \"t\": cannot open \"%s\": No such file or directory",
             abs_path("missing"));
    expect_error(LISTEN "table t file:\"missing\"\n", want);
    /* Problems inside a table name the table file and its line. */
    write_file("dups", "alice\nAlice\n");
    snprintf(want, sizeof(want), "%s:2: duplicate key \"alice\" (first at line 1)",
             abs_path("dups"));
    expect_error(LISTEN "table t file:dups\n", want);
    write_file("badnets", "192.0.2.0/24\n10.0.0.0/33\n");
    snprintf(want, sizeof(want), "%s:2: invalid address or network \"10.0.0.0/33\"",
             abs_path("badnets"));
    expect_error(LISTEN "table t file:badnets\naction r relay\n"
                        "match from src <t> for any action r\n",
                 want);
}

static void
test_errors_actions(void **state)
{
    static const struct error_case cases[] = {
        {LISTEN "action\n", "petrel.conf:2: action: missing an action name"},
        {LISTEN "action x\n",
         "petrel.conf:2: action: missing \"maildir\", \"relay\", \"lmtp\" or \"atrn\""},
        {LISTEN "action x mbox \"/m\"\n", "petrel.conf:2: action: expected \"maildir\", \"relay\", "
                                          "\"lmtp\" or \"atrn\", found \"mbox\""},
        {LISTEN "action x maildir\n", "petrel.conf:2: action: missing a maildir path"},
        {LISTEN "action x maildir \"/var/mail\"\n",
         "petrel.conf:2: action \"x\": maildir path \"/var/mail\" must contain %{user}"},
        {LISTEN "action x maildir \"/var/mail/%{usr}\"\n",
         "petrel.conf:2: action \"x\": unknown expansion in \"/var/mail/%{usr}\" (only %{user})"},
        {LISTEN "action x maildir \"/m/%{user}\" users\n",
         "petrel.conf:2: action: missing a <table>"},
        {LISTEN "action x maildir \"/m/%{user}\" users users\n",
         "petrel.conf:2: action: expected a <table>, found \"users\""},
        {LISTEN "action x maildir \"/m/%{user}\" users <nope>\n",
         "petrel.conf:2: action: undefined table <nope>"},
        {LISTEN "table u file:users\naction x maildir \"/m/%{user}\" users <u> users <u>\n",
         "petrel.conf:3: action: \"users\" given twice"},
        {LISTEN "action x maildir \"/m/%{user}\" quota 5\n",
         "petrel.conf:2: action: unexpected extra argument \"quota\""},
        {LISTEN "action x relay host\n", "petrel.conf:2: action: missing a host"},
        {LISTEN "action x relay\naction x relay\n",
         "petrel.conf:3: action: duplicate action \"x\""},
        {LISTEN "action \"\" relay\n",
         "petrel.conf:2: action: invalid name \"\" (letters, digits, - _ .)"},
    };

    (void)state;
    write_file("users", "alice\n");
    RUN(cases);
}

static void
test_errors_match(void **state)
{
    static const struct error_case cases[] = {
        {"match for any action r\n", "petrel.conf:1: match: undefined action \"r\""},
        {"action r relay\nmatch for any action r\n",
         "petrel.conf:2: match: \"for any\" without \"from\" would accept mail for every domain "
         "from anyone (an open relay); write \"from any\" if that is really meant"},
        {"action r relay\nmatch from any action r\n", "petrel.conf:2: match: missing \"for\""},
        {"action r relay\nmatch from any for any\n", "petrel.conf:2: match: missing \"action\""},
        {"action r relay\nmatch\n", "petrel.conf:2: match: missing \"for\""},
        {"action r relay\nmatch from any from local for any action r\n",
         "petrel.conf:2: match: \"from\" given twice"},
        {"action r relay\nmatch from anywhere for any action r\n",
         "petrel.conf:2: match: expected \"any\", \"local\", \"src\" or \"auth\" after from, "
         "found \"anywhere\""},
        {"action r relay\nmatch from src for any action r\n",
         "petrel.conf:2: match: invalid network \"for\""},
        {"action r relay\nmatch from src 10.0.0.0/33 for any action r\n",
         "petrel.conf:2: match: invalid network \"10.0.0.0/33\""},
        {"action r relay\nmatch from src <nets> for any action r\n",
         "petrel.conf:2: match: undefined table <nets>"},
        {"action r relay\nmatch from any for domains x action r\n",
         "petrel.conf:2: match: expected \"any\" or \"domain\" after for, found \"domains\""},
        {"action r relay\nmatch from any for domain action r\n",
         "petrel.conf:2: match: expected \"from\", \"for\" or \"action\", found \"r\""},
        {"action r relay\nmatch from any for domain \"a..b\" action r\n",
         "petrel.conf:2: match: invalid domain \"a..b\""},
        {"action r relay\nmatch for domain \"[192.0.2.1]\" action r\n",
         "petrel.conf:2: match: invalid domain \"[192.0.2.1]\""},
        {"action r relay\nmatch for domain <doms> action r\n",
         "petrel.conf:2: match: undefined table <doms>"},
        {"action r relay\nmatch for domain x.org action\n",
         "petrel.conf:2: match: missing an action name"},
        {"action r relay\nmatch for domain x.org action r tls\n",
         "petrel.conf:2: match: expected \"from\", \"for\" or \"action\", found \"tls\""},
        {"action r relay\nmatch for domain x.org action r action r\n",
         "petrel.conf:2: match: \"action\" given twice"},
    };

    (void)state;
    RUN(cases);
}

static void
test_error_is_one_line(void **state)
{
    static const char nul_conf[] = LISTEN "hostname a\0b\n";

    (void)state;
    assert_null(config_parse_string("bad\nname", "lisen\n", err, sizeof(err)));
    assert_string_equal(err, "bad?name:1: unknown directive \"lisen\"");
    write_file_n("nul.conf", nul_conf, sizeof(nul_conf) - 1);
    assert_null(config_load("nul.conf", err, sizeof(err)));
    assert_string_equal(err, "nul.conf:2: NUL byte in line");
    assert_null(config_load("nope.conf", err, sizeof(err)));
    assert_string_equal(err, "nope.conf:0: cannot read config: No such file or directory");
    assert_null(config_load("etc", err, sizeof(err)));
    assert_string_equal(err, "etc:0: cannot read config: not a regular file");
    /* A short buffer truncates, never overflows. */
    assert_null(config_parse_string("x", "lisen\n", err, 8));
    assert_string_equal(err, "x:1: un");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_outbound),
        cmocka_unit_test(test_full_grammar),
        cmocka_unit_test(test_flags_off_and_delimiter_none),
        cmocka_unit_test(test_sync_method),
        cmocka_unit_test(test_strings_and_comments),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_parse_string),
        cmocka_unit_test(test_refcount),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_limit_units_in_config),
        cmocka_unit_test(test_errors_directives),
        cmocka_unit_test(test_errors_listen),
        cmocka_unit_test(test_listen_auth),
        cmocka_unit_test(test_errors_limits),
        cmocka_unit_test(test_errors_switches),
        cmocka_unit_test(test_errors_tokens),
        cmocka_unit_test(test_errors_tables),
        cmocka_unit_test(test_errors_actions),
        cmocka_unit_test(test_errors_match),
        cmocka_unit_test(test_error_is_one_line),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
