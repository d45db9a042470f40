/*
 * Tables: the file format (comments, separators, case folding, duplicates),
 * lookups, and networks (CIDR parsing, IPv4-mapped IPv6 peers). Files are
 * written under a mkdtemp directory that the group teardown removes.
 */
#include <arpa/inet.h>
#include <ftw.h>
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

#include "config/table.h"

static char tmpdir[] = "/tmp/petrel-test-table-XXXXXX";
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
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Writes data (len bytes) to tmpdir/name; returns the path (static). */
static const char *
write_file_n(const char *name, const char *data, size_t len)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *
write_file(const char *name, const char *data)
{
    return write_file_n(name, data, strlen(data));
}

static struct table *
load(const char *name, const char *data)
{
    const char *path = write_file(name, data);

    err[0] = '\0';
    return table_load(name, path, err, sizeof(err));
}

/* Expects table_load to fail with "TMPDIR/name:" + suffix. */
static void
expect_load_error(const char *name, const char *data, const char *suffix)
{
    char want[512];

    assert_null(load(name, data));
    snprintf(want, sizeof(want), "%s/%s:%s", tmpdir, name, suffix);
    assert_string_equal(err, want);
}

static void
test_format(void **state)
{
    struct table *t = load("format", "# a comment line\n"
                                     "\n"
                                     "   \t \n"
                                     "Alice\n"
                                     "sales: alice, bob   # trailing comment\n"
                                     "bob   Bob Smith\n"
                                     "carol:$y$j9T$salt$hash\n"
                                     "dave:\n"
                                     "  eve  :  spaced  \n");

    (void)state;
    assert_non_null(t);
    assert_int_equal(t->nentries, 6);
    assert_string_equal(t->name, "format");
    assert_string_equal(table_get(t, "alice"), "");
    assert_string_equal(table_get(t, "ALICE"), "");
    assert_string_equal(table_get(t, "sales"), "alice, bob");
    assert_string_equal(table_get(t, "bob"), "Bob Smith");
    assert_string_equal(table_get(t, "carol"), "$y$j9T$salt$hash");
    assert_string_equal(table_get(t, "dave"), "");
    assert_string_equal(table_get(t, "EVE"), "spaced");
    table_free(t);
}

static void
test_separator_forms(void **state)
{
    struct table *t = load("sep", "a : x\nb :y\nc:z\nd z2\ne\t:\tw\n");

    (void)state;
    assert_non_null(t);
    assert_string_equal(table_get(t, "a"), "x");
    assert_string_equal(table_get(t, "b"), "y");
    assert_string_equal(table_get(t, "c"), "z");
    assert_string_equal(table_get(t, "d"), "z2");
    assert_string_equal(table_get(t, "e"), "w");
    table_free(t);
}

static void
test_keys_lowercased_sorted(void **state)
{
    struct table *t = load("sorted", "zulu\nAlpha\nmIKE\n");

    (void)state;
    assert_non_null(t);
    assert_string_equal(t->entries[0].key, "alpha");
    assert_string_equal(t->entries[1].key, "mike");
    assert_string_equal(t->entries[2].key, "zulu");
    assert_int_equal(t->entries[0].line, 2);
    assert_non_null(table_get(t, "MiKe"));
    assert_null(table_get(t, "mik"));
    assert_null(table_get(t, "mikes"));
    assert_null(table_get(t, ""));
    table_free(t);
}

static void
test_many_keys_bsearch(void **state)
{
    size_t cap = 500 * 16, len = 0;
    char *text = malloc(cap);
    char key[32];
    struct table *t;

    (void)state;
    assert_non_null(text);
    for (int i = 499; i >= 0; i--)
        len += (size_t)snprintf(text + len, cap - len, "K%03d: v%d\n", i, i);
    t = load("many", text);
    free(text);
    assert_non_null(t);
    assert_int_equal(t->nentries, 500);
    for (int i = 0; i < 500; i++) {
        char want[16];

        snprintf(key, sizeof(key), "k%03d", i);
        snprintf(want, sizeof(want), "v%d", i);
        assert_string_equal(table_get(t, key), want);
    }
    assert_null(table_get(t, "k500"));
    table_free(t);
}

static void
test_crlf(void **state)
{
    struct table *t = load("crlf", "alice: a1\r\nbob\r\n");

    (void)state;
    assert_non_null(t);
    assert_string_equal(table_get(t, "alice"), "a1");
    assert_string_equal(table_get(t, "bob"), "");
    table_free(t);
}

static void
test_empty_file(void **state)
{
    struct table *t = load("empty", "");

    (void)state;
    assert_non_null(t);
    assert_int_equal(t->nentries, 0);
    assert_null(table_get(t, "x"));
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), 0);
    table_free(t);
    assert_null(table_get(NULL, "x"));
    table_free(NULL);
}

static void
test_ipv6_keys_stay_whole(void **state)
{
    struct table *t = load("v6", "2001:db8::/32\n::1\nfe80::1:2 comment-like value\n");

    (void)state;
    assert_non_null(t);
    assert_string_equal(table_get(t, "2001:db8::/32"), "");
    assert_string_equal(table_get(t, "::1"), "");
    assert_string_equal(table_get(t, "fe80::1:2"), "comment-like value");
    table_free(t);
}

static void
test_load_errors(void **state)
{
    char path[512];

    (void)state;
    expect_load_error("dup", "alice\nbob\nALICE: x\n",
                      "3: duplicate key \"alice\" (first at line 1)");
    expect_load_error("emptykey", "alice\n: orphan\n", "2: empty key");
    assert_null(table_load("nul", write_file_n("nul", "a\nb\0c\n", 6), err, sizeof(err)));
    snprintf(path, sizeof(path), "%s/nul:2: NUL byte in line", tmpdir);
    assert_string_equal(err, path);

    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    assert_null(table_load("missing", path, err, sizeof(err)));
    assert_true(strstr(err, ":0: cannot read table: No such file or directory") != NULL);
    assert_null(table_load("dir", tmpdir, err, sizeof(err)));
    snprintf(path, sizeof(path), "%s:0: cannot read table: not a regular file", tmpdir);
    assert_string_equal(err, path);
}

static void
test_net_parse(void **state)
{
    static const struct {
        const char *s;
        int family;
        unsigned prefix;
        const char *addr; /* network after masking */
    } ok[] = {
        {"192.0.2.0/24", AF_INET, 24, "192.0.2.0"},
        {"192.0.2.77/24", AF_INET, 24, "192.0.2.0"},
        {"192.0.2.1", AF_INET, 32, "192.0.2.1"},
        {"10.1.2.3/9", AF_INET, 9, "10.0.0.0"},
        {"0.0.0.0/0", AF_INET, 0, "0.0.0.0"},
        {"::1", AF_INET6, 128, "::1"},
        {"2001:db8::/32", AF_INET6, 32, "2001:db8::"},
        {"2001:db8:ffff::1/33", AF_INET6, 33, "2001:db8:8000::"},
        {"::/0", AF_INET6, 0, "::"},
        {"::ffff:192.0.2.0/120", AF_INET, 24, "192.0.2.0"},
        {"::ffff:192.0.2.9", AF_INET, 32, "192.0.2.9"},
    };
    static const char *bad[] = {
        "",
        "/24",
        "192.0.2.0/33",
        "192.0.2.0/",
        "192.0.2.0/+8",
        "192.0.2.0/-1",
        "192.0.2.0/ 8",
        "192.0.2.0/8x",
        "192.0.2",
        "host.example",
        "::1/129",
        "2001:db8::/0128",
        "1.2.3.4/24/8",
        "fe80::1%eth0",
    };
    struct table_net n;
    char buf[INET6_ADDRSTRLEN];

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        assert_int_equal(table_net_parse(ok[i].s, &n), 0);
        assert_int_equal(n.family, ok[i].family);
        assert_int_equal(n.prefix, ok[i].prefix);
        assert_non_null(inet_ntop(n.family, n.addr, buf, sizeof(buf)));
        assert_string_equal(buf, ok[i].addr);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (table_net_parse(bad[i], &n) == 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static struct sockaddr_storage
peer(const char *s)
{
    struct sockaddr_storage ss;
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, s, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        return ss;
    }
    assert_int_equal(inet_pton(AF_INET6, s, &sin6->sin6_addr), 1);
    sin6->sin6_family = AF_INET6;
    return ss;
}

static bool
has(const struct table *t, const char *addr)
{
    struct sockaddr_storage ss = peer(addr);

    return table_has_addr(t, (struct sockaddr *)&ss);
}

static void
test_parse_nets_and_match(void **state)
{
    struct table *t = load("nets", "# trusted\n192.0.2.0/24\n198.51.100.7\n2001:db8::/32\n");

    (void)state;
    assert_non_null(t);
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), 0);
    assert_int_equal(t->nnets, 3);
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), 0); /* idempotent */
    assert_int_equal(t->nnets, 3);
    assert_true(has(t, "192.0.2.1"));
    assert_true(has(t, "192.0.2.255"));
    assert_false(has(t, "192.0.3.1"));
    assert_true(has(t, "198.51.100.7"));
    assert_false(has(t, "198.51.100.8"));
    assert_true(has(t, "2001:db8:1::5"));
    assert_false(has(t, "2001:db9::5"));
    /* IPv4-mapped IPv6 peers (a dual-stack socket) match IPv4 networks. */
    assert_true(has(t, "::ffff:192.0.2.1"));
    assert_false(has(t, "::ffff:192.0.3.1"));
    /* ... but an IPv4 network never matches a native IPv6 peer. */
    assert_false(has(t, "::192.0.2.1"));
    assert_false(table_has_addr(t, NULL));
    assert_false(table_has_addr(NULL, NULL));
    table_free(t);
}

static void
test_mapped_network_matches_v4_peer(void **state)
{
    struct table *t = load("mapped", "::ffff:10.0.0.0/104\n");

    (void)state;
    assert_non_null(t);
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), 0);
    assert_true(has(t, "10.9.8.7"));
    assert_true(has(t, "::ffff:10.9.8.7"));
    assert_false(has(t, "11.0.0.1"));
    table_free(t);
}

static void
test_net_contains_prefix_edges(void **state)
{
    struct table_net n;
    struct sockaddr_storage ss;

    (void)state;
    assert_int_equal(table_net_parse("10.0.0.0/7", &n), 0);
    ss = peer("11.255.255.255");
    assert_true(table_net_contains(&n, (struct sockaddr *)&ss));
    ss = peer("12.0.0.0");
    assert_false(table_net_contains(&n, (struct sockaddr *)&ss));
    assert_int_equal(table_net_parse("0.0.0.0/0", &n), 0);
    ss = peer("203.0.113.9");
    assert_true(table_net_contains(&n, (struct sockaddr *)&ss));
    ss = peer("2001:db8::1");
    assert_false(table_net_contains(&n, (struct sockaddr *)&ss));
}

static void
test_parse_nets_errors(void **state)
{
    struct table *t = load("badnets", "192.0.2.0/24\n\n10.0.0.0/33\n");
    char want[512];

    (void)state;
    assert_non_null(t);
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/badnets:3: invalid address or network \"10.0.0.0/33\"",
             tmpdir);
    assert_string_equal(err, want);
    assert_int_equal(t->nnets, 0);
    assert_false(has(t, "192.0.2.1"));
    table_free(t);

    t = load("valnets", "192.0.2.0/24 office\n");
    assert_non_null(t);
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "%s/valnets:1: unexpected \"office\" after network \"192.0.2.0/24\"", tmpdir);
    assert_string_equal(err, want);
    table_free(t);

    t = load("names", "mail.example.org\n");
    assert_non_null(t);
    assert_int_equal(table_parse_nets(t, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s/names:1: invalid address or network \"mail.example.org\"",
             tmpdir);
    assert_string_equal(err, want);
    table_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_separator_forms),
        cmocka_unit_test(test_keys_lowercased_sorted),
        cmocka_unit_test(test_many_keys_bsearch),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_ipv6_keys_stay_whole),
        cmocka_unit_test(test_load_errors),
        cmocka_unit_test(test_net_parse),
        cmocka_unit_test(test_parse_nets_and_match),
        cmocka_unit_test(test_mapped_network_matches_v4_peer),
        cmocka_unit_test(test_net_contains_prefix_edges),
        cmocka_unit_test(test_parse_nets_errors),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
