/*
 * Routing decisions: relay control (first match wins, trusted networks,
 * from local, literals, routing tricks in local parts), local users, user+tag,
 * aliases (nesting, lists, loops, remote targets, dedup), postmaster, VRFY
 * and EXPN. Configs and tables are written under a mkdtemp directory.
 */
#include <arpa/inet.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "base/buf.h"
#include "config/router.h"

static char tmpdir[] = "/tmp/petrel-test-router-XXXXXX";
static char err[512];
static struct config *cf; /* the main config, loaded by the group setup */

static const char main_conf[] =
    "hostname MX.Example.ORG\n"
    "listen on 127.0.0.1 port 2525\n"
    "table users file:\"users\"\n"
    "table aliases file:\"aliases\"\n"
    "table trusted file:\"trusted\"\n"
    "table domains file:\"domains\"\n"
    "action \"local\" maildir \"mail/%{user}\" users <users> aliases <aliases>\n"
    "action \"other\" maildir \"/var/mail/other/%{user}\"\n"
    "action \"out\" relay\n"
    "match for domain \"example.org\" action \"local\"\n"
    "match for domain <domains> action \"other\"\n"
    "match from src <trusted> for any action \"out\"\n"
    "match from src 198.51.100.0/24 for any action \"out\"\n"
    "match from local for any action \"out\"\n"
    "match from auth for any action \"out\"\n";

static const char aliases[] = "sales: alice, bob\n"
                              "team: sales, carol, Alice+team, alice@Example.ORG\n"
                              "carol: carol, carol@elsewhere.net\n"
                              "remote: someone@elsewhere.net, x@other.example\n"
                              "loop1: loop2\n"
                              "loop2: loop3\n"
                              "loop3: loop1\n"
                              "deep1: deep2\ndeep2: deep3\ndeep3: deep4\ndeep4: deep5\n"
                              "deep5: deep6\ndeep6: deep7\ndeep7: deep8\ndeep8: deep9\n"
                              "deep9: deep10\ndeep10: deep11\ndeep11: alice\n"
                              "nine1: deep3\n"
                              "ghost: nobody\n"
                              "empty:\n"
                              "commas: , alice ,, bob,\n"
                              "literal: user@[192.0.2.1]\n"
                              "pct: user%elsewhere.net@example.org\n";

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
write_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* Writes name with text and loads it as a config; fails the test on error. */
static struct config *
load_conf(const char *name, const char *text)
{
    char path[PATH_MAX];
    struct config *c;

    write_file(name, text);
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    c = config_load(path, err, sizeof(err));
    if (c == NULL)
        fail_msg("%s", err);
    return c;
}

static int
group_setup(void **state)
{
    (void)state;
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    write_file("users", "alice\nbob\ncarol\nDave\n");
    write_file("aliases", aliases);
    write_file("trusted", "192.0.2.0/24\n2001:db8::/32\n");
    write_file("domains", "other.example\nOther2.Example\n[192.0.2.1]\n");
    cf = load_conf("petrel.conf", main_conf);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    config_unref(cf);
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A parsed path, as smtp_path_parse leaves it. */
static struct smtp_path
path(const char *local, const char *domain)
{
    struct smtp_path p;

    memset(&p, 0, sizeof(p));
    snprintf(p.local, sizeof(p.local), "%s", local);
    snprintf(p.domain, sizeof(p.domain), "%s", domain);
    p.literal = domain[0] == '[';
    p.quoted = strpbrk(local, "@\" ") != NULL;
    return p;
}

struct client {
    struct sockaddr_storage ss;
    struct route_client cl;
};

static struct client
remote(const char *addr)
{
    struct client c;
    struct sockaddr_in *sin = (struct sockaddr_in *)&c.ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&c.ss;

    memset(&c, 0, sizeof(c));
    if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
        sin6->sin6_family = AF_INET6;
    }
    return c;
}

static struct route_result res;
static struct smtp_reply reply;

static int
route(const struct config *c, struct client *cl, struct smtp_path p)
{
    cl->cl.addr = cl->cl.local ? NULL : (struct sockaddr *)&cl->ss;
    memset(&reply, 0, sizeof(reply));
    return router_rcpt(c, &cl->cl, &p, &res, &reply);
}

static void
expect_refusal(int code, const char *status, const char *text)
{
    assert_int_equal(reply.code, code);
    assert_string_equal(reply.status, status);
    assert_string_equal(reply.text, text);
    assert_null(res.targets);
    assert_int_equal(res.ntargets, 0);
}

static void
expect_mailbox(size_t i, const char *action, const char *user, const char *address)
{
    assert_true(i < res.ntargets);
    assert_int_equal(res.targets[i].kind, ROUTE_MAILDIR);
    assert_string_equal(res.targets[i].action->name, action);
    assert_string_equal(res.targets[i].user, user);
    assert_string_equal(res.targets[i].address, address);
}

static void
expect_relay(size_t i, const char *address)
{
    assert_true(i < res.ntargets);
    assert_int_equal(res.targets[i].kind, ROUTE_RELAY);
    assert_non_null(res.targets[i].action);
    assert_string_equal(res.targets[i].action->name, "out");
    assert_string_equal(res.targets[i].address, address);
}

/* Routes and expects exactly one mailbox target. */
static void
expect_one_mailbox(struct client *c, struct smtp_path p, const char *action, const char *user,
                   const char *address)
{
    if (route(cf, c, p) != 0)
        fail_msg("refused %s@%s: %d %s %s", p.local, p.domain, reply.code, reply.status,
                 reply.text);
    assert_int_equal(res.ntargets, 1);
    expect_mailbox(0, action, user, address);
    route_result_free(&res);
}

static void
test_local_user(void **state)
{
    struct client c = remote("203.0.113.5");

    (void)state;
    expect_one_mailbox(&c, path("alice", "example.org"), "local", "alice", "alice@example.org");
    /* Domains and users compare case-insensitively; mailbox names are lowercase. */
    expect_one_mailbox(&c, path("ALICE", "EXAMPLE.Org"), "local", "alice", "alice@example.org");
    expect_one_mailbox(&c, path("dave", "example.org"), "local", "dave", "dave@example.org");
    expect_one_mailbox(&c, path("DaVe", "example.org"), "local", "dave", "dave@example.org");
}

static void
test_user_tag(void **state)
{
    struct client c = remote("203.0.113.5");

    (void)state;
    expect_one_mailbox(&c, path("alice+news", "example.org"), "local", "alice",
                       "alice@example.org");
    expect_one_mailbox(&c, path("Alice+News+More", "example.org"), "local", "alice",
                       "alice@example.org");
    expect_one_mailbox(&c, path("alice+", "example.org"), "local", "alice", "alice@example.org");
    /* A leading delimiter is part of the name, not an empty user. */
    assert_int_equal(route(cf, &c, path("+alice", "example.org")), -1);
    expect_refusal(550, "5.1.1", "<+alice@example.org>: user unknown");
}

static void
test_delimiter_settings(void **state)
{
    struct config *none = load_conf("none.conf", "listen on ::1 port 25\n"
                                                 "table users file:users\n"
                                                 "action l maildir \"/m/%{user}\" users <users>\n"
                                                 "match for domain example.org action l\n"
                                                 "recipient-delimiter none\n");
    struct config *dash = load_conf("dash.conf", "listen on ::1 port 25\n"
                                                 "table users file:users\n"
                                                 "action l maildir \"/m/%{user}\" users <users>\n"
                                                 "match for domain example.org action l\n"
                                                 "recipient-delimiter -\n");
    struct client c = remote("203.0.113.5");

    (void)state;
    assert_int_equal(route(none, &c, path("alice+news", "example.org")), -1);
    expect_refusal(550, "5.1.1", "<alice+news@example.org>: user unknown");
    assert_int_equal(route(dash, &c, path("alice-news", "example.org")), 0);
    expect_mailbox(0, "l", "alice", "alice@example.org");
    route_result_free(&res);
    assert_int_equal(route(dash, &c, path("alice+news", "example.org")), -1);
    config_unref(none);
    config_unref(dash);
}

static void
test_unknown_user(void **state)
{
    struct client c = remote("203.0.113.5");

    (void)state;
    assert_int_equal(route(cf, &c, path("zed", "example.org")), -1);
    expect_refusal(550, "5.1.1", "<zed@example.org>: user unknown");
    assert_int_equal(route(cf, &c, path("", "example.org")), -1);
    expect_refusal(550, "5.1.1", "<\"\"@example.org>: user unknown");
}

static void
test_relay_denied(void **state)
{
    struct client c = remote("203.0.113.5");
    struct client loopback = remote("127.0.0.1");
    struct client v6 = remote("2001:db9::1");

    (void)state;
    assert_int_equal(route(cf, &c, path("someone", "elsewhere.net")), -1);
    expect_refusal(550, "5.7.1", "<someone@elsewhere.net>: relay access denied");
    /* `from local` is the sendmail command only: a loopback peer is a stranger. */
    assert_int_equal(route(cf, &loopback, path("someone", "elsewhere.net")), -1);
    expect_refusal(550, "5.7.1", "<someone@elsewhere.net>: relay access denied");
    assert_int_equal(route(cf, &v6, path("someone", "elsewhere.net")), -1);
    /* A local client without an address is not matched by `from src`. */
    c.cl.addr = NULL;
    assert_int_equal(
        router_rcpt(cf, &c.cl, &(struct smtp_path){.local = "a", .domain = "b.net"}, &res, &reply),
        -1);
    assert_string_equal(reply.status, "5.7.1");
}

static void
test_trusted_networks(void **state)
{
    static const char *const peers[] = {"192.0.2.10", "::ffff:192.0.2.10", "2001:db8::5",
                                        "198.51.100.7", "::ffff:198.51.100.7"};
    struct client local = {.cl = {.local = true}};
    struct client auth = remote("203.0.113.5");

    (void)state;
    for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
        struct client c = remote(peers[i]);

        if (route(cf, &c, path("Someone", "Elsewhere.NET")) != 0)
            fail_msg("%s refused: %s", peers[i], reply.text);
        assert_int_equal(res.ntargets, 1);
        expect_relay(0, "Someone@elsewhere.net");
        route_result_free(&res);
    }
    assert_int_equal(route(cf, &local, path("someone", "elsewhere.net")), 0);
    expect_relay(0, "someone@elsewhere.net");
    route_result_free(&res);
    auth.cl.authenticated = true;
    assert_int_equal(route(cf, &auth, path("someone", "elsewhere.net")), 0);
    expect_relay(0, "someone@elsewhere.net");
    route_result_free(&res);
}

static void
test_routing_in_local_part(void **state)
{
    static const char *const locals[] = {"user%elsewhere.net", "elsewhere.net!user",
                                         "user@elsewhere.net", "alice%"};
    static const char *const shown[] = {
        "<user%elsewhere.net@example.org>", "<elsewhere.net!user@example.org>",
        "<\"user@elsewhere.net\"@example.org>", "<alice%@example.org>"};
    struct client strangers[] = {remote("203.0.113.5"), remote("192.0.2.10")};
    char want[256];

    (void)state;
    /* Refused even for trusted clients: the domain is ours, so is the decision. */
    for (size_t k = 0; k < 2; k++)
        for (size_t i = 0; i < sizeof(locals) / sizeof(locals[0]); i++) {
            assert_int_equal(route(cf, &strangers[k], path(locals[i], "example.org")), -1);
            snprintf(want, sizeof(want),
                     "%s: relay access denied (routing in the local part is not supported)",
                     shown[i]);
            expect_refusal(550, "5.7.1", want);
        }
    /* For a remote domain that a trusted client may relay to, it is the remote's business. */
    assert_int_equal(route(cf, &strangers[1], path("a%b", "elsewhere.net")), 0);
    expect_relay(0, "a%b@elsewhere.net");
    route_result_free(&res);
}

static void
test_source_route_already_reduced(void **state)
{
    struct client c = remote("203.0.113.5");
    struct smtp_path p = path("alice", "example.org");

    (void)state;
    /* "<@relay.example:alice@example.org>": the parser dropped the route. */
    p.had_route = true;
    expect_one_mailbox(&c, p, "local", "alice", "alice@example.org");
    p = path("someone", "elsewhere.net");
    p.had_route = true;
    assert_int_equal(route(cf, &c, p), -1);
    expect_refusal(550, "5.7.1", "<someone@elsewhere.net>: relay access denied");
}

static void
test_literal_domains(void **state)
{
    struct client c = remote("203.0.113.5");
    struct client local = {.cl = {.local = true}};

    (void)state;
    /* "[192.0.2.1]" is in the domains table, yet a literal only matches `for any`. */
    assert_int_equal(route(cf, &c, path("alice", "[192.0.2.1]")), -1);
    expect_refusal(550, "5.7.1", "<alice@[192.0.2.1]>: relay access denied");
    assert_int_equal(route(cf, &local, path("alice", "[192.0.2.1]")), 0);
    expect_relay(0, "alice@[192.0.2.1]");
    route_result_free(&res);
}

static void
test_domain_table_action(void **state)
{
    struct client c = remote("203.0.113.5");
    struct smtp_path dotdot = path("../etc", "other.example");

    (void)state;
    /* The "other" action has no users table: every valid local part is a user. */
    expect_one_mailbox(&c, path("Anyone+tag", "OTHER2.example"), "other", "anyone",
                       "anyone@other2.example");
    /* ... but never a name that would escape the maildir template. */
    assert_int_equal(route(cf, &c, dotdot), -1);
    expect_refusal(550, "5.1.1", "<\"../etc\"@other.example>: user unknown");
    assert_int_equal(route(cf, &c, path(".hidden", "other.example")), -1);
    assert_int_equal(route(cf, &c, path("a b", "other.example")), -1);
    expect_refusal(550, "5.1.1", "<\"a b\"@other.example>: user unknown");
}

static void
test_first_match_wins(void **state)
{
    struct config *c2 =
        load_conf("order.conf", "listen on ::1 port 25\n"
                                "action l maildir \"/m/%{user}\"\n"
                                "action r relay\n"
                                "match from src 192.0.2.0/24 for domain example.org action r\n"
                                "match for domain example.org action l\n"
                                "match from any for any action l\n");
    struct client trusted = remote("192.0.2.1"), other = remote("203.0.113.5");

    (void)state;
    assert_int_equal(route(c2, &trusted, path("bob", "example.org")), 0);
    assert_int_equal(res.targets[0].kind, ROUTE_RELAY);
    assert_string_equal(res.targets[0].action->name, "r");
    route_result_free(&res);
    assert_int_equal(route(c2, &other, path("bob", "example.org")), 0);
    assert_int_equal(res.targets[0].kind, ROUTE_MAILDIR);
    route_result_free(&res);
    /* The explicit catch-all delivers anything locally, literals included. */
    assert_int_equal(route(c2, &other, path("bob", "[192.0.2.1]")), 0);
    expect_mailbox(0, "l", "bob", "bob@[192.0.2.1]");
    route_result_free(&res);
    config_unref(c2);
}

static void
test_aliases(void **state)
{
    struct client c = remote("203.0.113.5");

    (void)state;
    assert_int_equal(route(cf, &c, path("sales", "example.org")), 0);
    assert_int_equal(res.ntargets, 2);
    expect_mailbox(0, "local", "alice", "alice@example.org");
    expect_mailbox(1, "local", "bob", "bob@example.org");
    route_result_free(&res);
    /* Nested alias, a member also listed directly (three ways): each mailbox once. */
    assert_int_equal(route(cf, &c, path("Team+x", "example.org")), 0);
    assert_int_equal(res.ntargets, 4);
    expect_mailbox(0, "local", "alice", "alice@example.org");
    expect_mailbox(1, "local", "bob", "bob@example.org");
    expect_mailbox(2, "local", "carol", "carol@example.org");
    expect_relay(3, "carol@elsewhere.net");
    route_result_free(&res);
    /* Empty items in a list are skipped. */
    assert_int_equal(route(cf, &c, path("commas", "example.org")), 0);
    assert_int_equal(res.ntargets, 2);
    route_result_free(&res);
}

static void
test_alias_self_and_remote(void **state)
{
    struct client c = remote("203.0.113.5");

    (void)state;
    /* "carol: carol, carol@elsewhere.net": a copy stays in carol's mailbox. */
    assert_int_equal(route(cf, &c, path("carol", "example.org")), 0);
    assert_int_equal(res.ntargets, 2);
    expect_mailbox(0, "local", "carol", "carol@example.org");
    expect_relay(1, "carol@elsewhere.net");
    route_result_free(&res);
    /* Remote targets relay (routed as from local); a target in another of our domains
     * goes to that domain's action. */
    assert_int_equal(route(cf, &c, path("remote", "example.org")), 0);
    assert_int_equal(res.ntargets, 2);
    expect_relay(0, "someone@elsewhere.net");
    expect_mailbox(1, "other", "x", "x@other.example");
    route_result_free(&res);
    assert_int_equal(route(cf, &c, path("literal", "example.org")), 0);
    expect_relay(0, "user@[192.0.2.1]");
    route_result_free(&res);
}

static void
test_alias_errors(void **state)
{
    struct client c = remote("203.0.113.5");

    (void)state;
    assert_int_equal(route(cf, &c, path("loop1", "example.org")), -1);
    expect_refusal(451, "4.3.5", "<loop1@example.org>: alias loop (\"loop1\")");
    assert_int_equal(route(cf, &c, path("deep1", "example.org")), -1);
    expect_refusal(451, "4.3.5", "<deep1@example.org>: alias loop (nested deeper than 10)");
    /* Ten levels are fine: nine1 -> deep3 ... deep11 -> alice. */
    assert_int_equal(route(cf, &c, path("nine1", "example.org")), 0);
    expect_mailbox(0, "local", "alice", "alice@example.org");
    route_result_free(&res);
    assert_int_equal(route(cf, &c, path("ghost", "example.org")), -1);
    expect_refusal(451, "4.3.5",
                   "<ghost@example.org>: alias target \"nobody\" is not a known user");
    assert_int_equal(route(cf, &c, path("empty", "example.org")), -1);
    expect_refusal(451, "4.3.5", "<empty@example.org>: alias \"empty\" has no targets");
    assert_int_equal(route(cf, &c, path("pct", "example.org")), -1);
    expect_refusal(451, "4.3.5",
                   "<pct@example.org>: invalid alias target \"user%elsewhere.net@example.org\"");
}

static void
test_alias_without_relay_rule(void **state)
{
    struct config *c2;
    struct client c = remote("192.0.2.1");

    (void)state;
    write_file("aliases2", "fwd: someone@elsewhere.net\n");
    c2 = load_conf("norelay.conf", "listen on ::1 port 25\n"
                                   "table aliases file:aliases2\n"
                                   "action l maildir \"/m/%{user}\" aliases <aliases>\n"
                                   "action r relay\n"
                                   "match for domain example.org action l\n"
                                   "match from src 192.0.2.0/24 for any action r\n");
    /* The client may relay, but alias targets route as from local: no rule. */
    assert_int_equal(route(c2, &c, path("fwd", "example.org")), -1);
    expect_refusal(451, "4.3.5",
                   "<fwd@example.org>: no route for alias target \"someone@elsewhere.net\"");
    config_unref(c2);
}

static void
test_alias_expansion_bounds(void **state)
{
    struct buf b;
    struct config *c2;
    struct client c = remote("203.0.113.5");

    (void)state;
    buf_init(&b, 1 << 20);
    /* f0 -> 10 x f1 -> ... -> f6: a million lookups, although each level dedups. */
    for (int level = 0; level < 6; level++) {
        assert_int_equal(buf_printf(&b, "f%d: f%d", level, level + 1), 0);
        for (int i = 1; i < 10; i++)
            assert_int_equal(buf_printf(&b, ", f%d", level + 1), 0);
        assert_int_equal(buf_printf(&b, "\n"), 0);
    }
    /* big -> u0 ... u1000: one more than a recipient may expand to. */
    assert_int_equal(buf_printf(&b, "big: u0"), 0);
    for (int i = 1; i <= 1000; i++)
        assert_int_equal(buf_printf(&b, ", u%d", i), 0);
    assert_int_equal(buf_printf(&b, "\n"), 0);
    write_file("aliases4", b.data);
    buf_free(&b);
    c2 = load_conf("bounds.conf", "listen on ::1 port 25\n"
                                  "table aliases file:aliases4\n"
                                  "action l maildir \"/m/%{user}\" aliases <aliases>\n"
                                  "match for domain example.org action l\n");
    assert_int_equal(route(c2, &c, path("f0", "example.org")), -1);
    expect_refusal(451, "4.3.5", "<f0@example.org>: alias expansion too large");
    assert_int_equal(route(c2, &c, path("big", "example.org")), -1);
    expect_refusal(451, "4.3.5", "<big@example.org>: alias expands to more than 1000 addresses");
    assert_int_equal(route(c2, &c, path("f5", "example.org")), 0);
    assert_int_equal(res.ntargets, 1);
    expect_mailbox(0, "l", "f6", "f6@example.org");
    route_result_free(&res);
    config_unref(c2);
}

static void
test_postmaster(void **state)
{
    struct client c = remote("203.0.113.5");
    struct smtp_path pm = {.no_domain = true};

    (void)state;
    /* Not in the users table, accepted anyway (RFC 5321 4.5.1). */
    expect_one_mailbox(&c, path("PostMaster", "example.org"), "local", "postmaster",
                       "postmaster@example.org");
    expect_one_mailbox(&c, path("postmaster+x", "example.org"), "local", "postmaster",
                       "postmaster@example.org");
    expect_one_mailbox(&c, path("postmaster", "other.example"), "other", "postmaster",
                       "postmaster@other.example");
    snprintf(pm.local, sizeof(pm.local), "Postmaster");
    expect_one_mailbox(&c, pm, "local", "postmaster", "postmaster@example.org");
    /* Someone else's postmaster is not ours to accept. */
    assert_int_equal(route(cf, &c, path("postmaster", "elsewhere.net")), -1);
    expect_refusal(550, "5.7.1", "<postmaster@elsewhere.net>: relay access denied");
}

static void
test_postmaster_alias_and_hostname(void **state)
{
    struct config *c2;
    struct client c = remote("203.0.113.5");
    struct smtp_path pm = {.no_domain = true, .local = "postmaster"};

    (void)state;
    write_file("aliases3", "Postmaster: alice\n");
    write_file("users3", "alice\n");
    write_file("domains3", "[192.0.2.1]\n");
    c2 = load_conf("pm.conf", "hostname Mail.Example.NET\n"
                              "listen on ::1 port 25\n"
                              "table users file:users3\n"
                              "table aliases file:aliases3\n"
                              "table domains file:domains3\n"
                              "action r relay\n"
                              "action l maildir \"/m/%{user}\" users <users> aliases <aliases>\n"
                              "match from local for any action r\n"
                              "match for domain <domains> action l\n");
    assert_int_equal(route(c2, &c, pm), 0);
    assert_int_equal(res.ntargets, 1);
    expect_mailbox(0, "l", "alice", "alice@mail.example.net");
    route_result_free(&res);
    config_unref(c2);

    c2 = load_conf("nolocal.conf", "listen on ::1 port 25\naction r relay\n"
                                   "match from local for any action r\n");
    assert_int_equal(route(c2, &c, pm), -1);
    expect_refusal(550, "5.1.1", "<Postmaster>: no local delivery configured");
    config_unref(c2);
}

static void
test_null_recipient(void **state)
{
    struct client c = remote("203.0.113.5");
    struct smtp_path p = {.null = true};

    (void)state;
    assert_int_equal(route(cf, &c, p), -1);
    expect_refusal(553, "5.1.3", "<>: not a valid recipient");
}

static int
vrfy(const char *arg, char *out, size_t n)
{
    memset(&reply, 0, sizeof(reply));
    return router_vrfy(cf, str_cstr(arg), out, n, &reply);
}

static void
test_vrfy(void **state)
{
    static const struct {
        const char *arg, *want;
    } ok[] = {
        {"alice", "alice@example.org"},
        {"<alice@example.org>", "alice@example.org"},
        {" ALICE@Example.Org ", "alice@example.org"},
        {"alice+tag", "alice@example.org"},
        {"sales", "sales@example.org"},
        {"postmaster", "postmaster@example.org"},
        {"x@other.example", "x@other.example"},
        {"Dave@other2.example", "dave@other2.example"},
    };
    char out[300];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (vrfy(ok[i].arg, out, sizeof(out)) != 0)
            fail_msg("VRFY %s: %s", ok[i].arg, reply.text);
        assert_string_equal(out, ok[i].want);
    }
    /* A bare name is looked up in each maildir action in rule order; "other" takes
     * every name, and is known by the first name in its domain table. */
    assert_int_equal(vrfy("zed", out, sizeof(out)), 0);
    assert_string_equal(out, "zed@other.example");
    assert_int_equal(vrfy("zed@example.org", out, sizeof(out)), -1);
    assert_int_equal(reply.code, 550);
    assert_string_equal(reply.status, "5.1.1");
    assert_string_equal(reply.text, "<zed@example.org>: user unknown");
    assert_int_equal(vrfy("alice@elsewhere.net", out, sizeof(out)), -1);
    assert_string_equal(reply.text, "<alice@elsewhere.net>: user unknown");
    assert_int_equal(vrfy("../x@other.example", out, sizeof(out)), -1);
    assert_string_equal(reply.status, "5.1.1");
    static const char *const bad[] = {"",       "  ",    "<>",       "a b", "@example.org",
                                      "alice@", "a@b@c", "\"alice\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vrfy(bad[i], out, sizeof(out)), -1);
        assert_int_equal(reply.code, 553);
        assert_string_equal(reply.status, "5.1.3");
    }
    assert_int_equal(vrfy("alice", out, 5), -1); /* out too small */
    assert_int_equal(reply.code, 553);
}

static void
test_expn(void **state)
{
    (void)state;
    memset(&reply, 0, sizeof(reply));
    assert_int_equal(router_expn(cf, str_cstr("sales"), &res, &reply), 0);
    assert_int_equal(res.ntargets, 2);
    expect_mailbox(0, "local", "alice", "alice@example.org");
    expect_mailbox(1, "local", "bob", "bob@example.org");
    route_result_free(&res);
    assert_int_equal(router_expn(cf, str_cstr("<team@example.org>"), &res, &reply), 0);
    assert_int_equal(res.ntargets, 4);
    expect_relay(3, "carol@elsewhere.net");
    route_result_free(&res);
    assert_int_equal(router_expn(cf, str_cstr("alice"), &res, &reply), -1);
    assert_int_equal(reply.code, 550);
    assert_string_equal(reply.text, "<alice>: not a mailing list");
    assert_int_equal(router_expn(cf, str_cstr("zed@Example.org"), &res, &reply), -1);
    assert_string_equal(reply.text, "<zed@example.org>: user unknown");
    assert_int_equal(router_expn(cf, str_cstr("loop2"), &res, &reply), -1);
    expect_refusal(451, "4.3.5", "<loop2>: alias loop (\"loop2\")");
    assert_int_equal(router_expn(cf, str_cstr("a b"), &res, &reply), -1);
    assert_int_equal(reply.code, 553);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_local_user),
        cmocka_unit_test(test_user_tag),
        cmocka_unit_test(test_delimiter_settings),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_relay_denied),
        cmocka_unit_test(test_trusted_networks),
        cmocka_unit_test(test_routing_in_local_part),
        cmocka_unit_test(test_source_route_already_reduced),
        cmocka_unit_test(test_literal_domains),
        cmocka_unit_test(test_domain_table_action),
        cmocka_unit_test(test_first_match_wins),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_alias_self_and_remote),
        cmocka_unit_test(test_alias_errors),
        cmocka_unit_test(test_alias_without_relay_rule),
        cmocka_unit_test(test_alias_expansion_bounds),
        cmocka_unit_test(test_postmaster),
        cmocka_unit_test(test_postmaster_alias_and_hostname),
        cmocka_unit_test(test_null_recipient),
        cmocka_unit_test(test_vrfy),
        cmocka_unit_test(test_expn),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
