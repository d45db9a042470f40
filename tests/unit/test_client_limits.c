/*
 * Per-client-address accounting: session counts, the per-minute buckets
 * with an injected clock, throttles, IPv6 /64 and v4-mapped keys, expiry of
 * idle entries and the table's cap. No sockets, no sleeping.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "inbound/client_limits.h"

#define T0 1000000 /* an arbitrary monotonic time */

static struct sockaddr_storage addrs[8];

/* A sockaddr for numeric text, IPv4 or IPv6; up to 8 alive at once. */
static const struct sockaddr *
addr(const char *ip)
{
    static unsigned next;
    struct sockaddr_storage *ss = &addrs[next++ % 8];
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1)
        v4->sin_family = AF_INET;
    else {
        assert_int_equal(inet_pton(AF_INET6, ip, &v6->sin6_addr), 1);
        v6->sin6_family = AF_INET6;
    }
    return (const struct sockaddr *)ss;
}

static enum client_verdict
connect_at(struct client_limits *cl, const char *ip, unsigned per_ip, unsigned rate, int64_t now)
{
    struct client_limits_policy p = {.max_per_ip = per_ip, .connection_rate = rate};

    return client_limits_connect(cl, addr(ip), &p, now);
}

static void
test_sessions_counted_per_address(void **state)
{
    struct client_limits *cl = client_limits_new(100);

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(connect_at(cl, "192.0.2.1", 3, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "192.0.2.1", 3, 0, T0), CLIENT_TOO_MANY);
    assert_int_equal(client_limits_sessions(cl, addr("192.0.2.1")), 3);
    /* another address has its own count */
    assert_int_equal(connect_at(cl, "192.0.2.2", 3, 0, T0), CLIENT_ADMIT);
    /* a session ends: one more fits */
    client_limits_disconnect(cl, addr("192.0.2.1"), T0 + 1);
    assert_int_equal(client_limits_sessions(cl, addr("192.0.2.1")), 2);
    assert_int_equal(connect_at(cl, "192.0.2.1", 3, 0, T0 + 1), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "192.0.2.1", 3, 0, T0 + 1), CLIENT_TOO_MANY);
    /* 0 = no limit */
    for (int i = 0; i < 100; i++)
        assert_int_equal(connect_at(cl, "192.0.2.1", 0, 0, T0 + 1), CLIENT_ADMIT);
    assert_int_equal(client_limits_sessions(cl, addr("192.0.2.1")), 103);
    client_limits_free(cl);
}

static void
test_disconnect_of_unknown_is_harmless(void **state)
{
    struct client_limits *cl = client_limits_new(10);

    (void)state;
    client_limits_disconnect(cl, addr("192.0.2.9"), T0);
    assert_int_equal(client_limits_size(cl), 0);
    assert_int_equal(connect_at(cl, "192.0.2.9", 1, 0, T0), CLIENT_ADMIT);
    client_limits_disconnect(cl, addr("192.0.2.9"), T0);
    client_limits_disconnect(cl, addr("192.0.2.9"), T0); /* never below zero */
    assert_int_equal(client_limits_sessions(cl, addr("192.0.2.9")), 0);
    assert_int_equal(connect_at(cl, "192.0.2.9", 1, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "192.0.2.9", 1, 0, T0), CLIENT_TOO_MANY);
    client_limits_free(cl);
}

static void
test_connection_rate_per_minute(void **state)
{
    struct client_limits *cl = client_limits_new(100);

    (void)state;
    /* a burst of 6, then refused */
    for (int i = 0; i < 6; i++) {
        assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0), CLIENT_ADMIT);
        client_limits_disconnect(cl, addr("198.51.100.7"), T0);
    }
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0), CLIENT_TOO_FAST);
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 9), CLIENT_TOO_FAST);
    /* 6 a minute: one more every 10 s */
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 10), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 10), CLIENT_TOO_FAST);
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 30), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 30), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 30), CLIENT_TOO_FAST);
    /* a whole minute later: the full burst again, and never more */
    for (int i = 0; i < 6; i++)
        assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 1000), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "198.51.100.7", 0, 6, T0 + 1000), CLIENT_TOO_FAST);
    /* refused attempts cost nothing, others are not affected */
    assert_int_equal(connect_at(cl, "198.51.100.8", 0, 6, T0 + 1000), CLIENT_ADMIT);
    client_limits_free(cl);
}

static void
test_refused_by_count_costs_no_rate(void **state)
{
    struct client_limits *cl = client_limits_new(100);

    (void)state;
    assert_int_equal(connect_at(cl, "203.0.113.1", 1, 2, T0), CLIENT_ADMIT);
    for (int i = 0; i < 5; i++)
        assert_int_equal(connect_at(cl, "203.0.113.1", 1, 2, T0), CLIENT_TOO_MANY);
    client_limits_disconnect(cl, addr("203.0.113.1"), T0);
    assert_int_equal(connect_at(cl, "203.0.113.1", 1, 2, T0), CLIENT_ADMIT);
    client_limits_free(cl);
}

static void
test_message_rate(void **state)
{
    struct client_limits *cl = client_limits_new(100);
    const struct sockaddr *a;

    (void)state;
    assert_int_equal(connect_at(cl, "192.0.2.50", 0, 0, T0), CLIENT_ADMIT);
    a = addr("192.0.2.50");
    for (int i = 0; i < 3; i++)
        assert_true(client_limits_message(cl, a, 3, T0));
    assert_false(client_limits_message(cl, a, 3, T0));
    assert_false(client_limits_message(cl, a, 3, T0 + 19));
    assert_true(client_limits_message(cl, a, 3, T0 + 20)); /* 3 a minute: one per 20 s */
    assert_false(client_limits_message(cl, a, 3, T0 + 20));
    /* rate 0: always allowed, nothing counted */
    for (int i = 0; i < 100; i++)
        assert_true(client_limits_message(cl, a, 0, T0 + 20));
    /* a lower rate after a reload applies at once */
    assert_true(client_limits_message(cl, a, 3, T0 + 200));
    assert_false(client_limits_message(cl, a, 1, T0 + 200));
    /* the connection bucket is separate */
    assert_int_equal(connect_at(cl, "192.0.2.50", 0, 1, T0 + 200), CLIENT_ADMIT);
    client_limits_free(cl);
}

static void
test_throttle(void **state)
{
    struct client_limits *cl = client_limits_new(100);

    (void)state;
    client_limits_throttle(cl, addr("192.0.2.77"), 300, T0);
    assert_int_equal(connect_at(cl, "192.0.2.77", 0, 0, T0), CLIENT_THROTTLED);
    assert_int_equal(connect_at(cl, "192.0.2.77", 0, 0, T0 + 299), CLIENT_THROTTLED);
    assert_int_equal(connect_at(cl, "192.0.2.78", 0, 0, T0 + 1), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "192.0.2.77", 0, 0, T0 + 300), CLIENT_ADMIT);
    /* a shorter throttle never shortens a longer one */
    client_limits_throttle(cl, addr("192.0.2.77"), 600, T0 + 300);
    client_limits_throttle(cl, addr("192.0.2.77"), 10, T0 + 301);
    assert_int_equal(connect_at(cl, "192.0.2.77", 0, 0, T0 + 400), CLIENT_THROTTLED);
    client_limits_free(cl);
}

static void
test_ipv6_counted_per_64(void **state)
{
    struct client_limits *cl = client_limits_new(100);

    (void)state;
    assert_int_equal(connect_at(cl, "2001:db8:1:2::1", 2, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "2001:db8:1:2:ffff:0:0:9", 2, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "2001:db8:1:2:abcd::", 2, 0, T0), CLIENT_TOO_MANY);
    assert_int_equal(client_limits_sessions(cl, addr("2001:db8:1:2::77")), 2);
    /* the neighbouring /64 is someone else */
    assert_int_equal(connect_at(cl, "2001:db8:1:3::1", 2, 0, T0), CLIENT_ADMIT);
    client_limits_throttle(cl, addr("2001:db8:1:2::1"), 60, T0);
    assert_int_equal(connect_at(cl, "2001:db8:1:2::4242", 0, 0, T0), CLIENT_THROTTLED);
    client_limits_free(cl);
}

static void
test_v4_mapped_is_ipv4(void **state)
{
    struct client_limits *cl = client_limits_new(100);

    (void)state;
    assert_int_equal(connect_at(cl, "::ffff:192.0.2.1", 2, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "192.0.2.1", 2, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "::ffff:192.0.2.1", 2, 0, T0), CLIENT_TOO_MANY);
    /* and IPv4 addresses are not lumped together like a /64 */
    assert_int_equal(connect_at(cl, "::ffff:192.0.2.2", 2, 0, T0), CLIENT_ADMIT);
    client_limits_free(cl);
}

static void
test_other_families_untracked(void **state)
{
    struct client_limits *cl = client_limits_new(10);
    struct sockaddr sa = {.sa_family = AF_UNIX};
    struct client_limits_policy p = {1, 1};

    (void)state;
    assert_int_equal(client_limits_connect(cl, &sa, &p, T0), CLIENT_UNTRACKED);
    assert_int_equal(client_limits_connect(cl, &sa, &p, T0), CLIENT_UNTRACKED);
    assert_true(client_limits_message(cl, &sa, 1, T0));
    assert_true(client_limits_message(cl, &sa, 1, T0));
    client_limits_disconnect(cl, &sa, T0);
    assert_int_equal(client_limits_size(cl), 0);
    client_limits_free(cl);
}

static void
test_idle_entries_expire(void **state)
{
    struct client_limits *cl = client_limits_new(1000);
    char ip[32];

    (void)state;
    for (int i = 0; i < 100; i++) {
        snprintf(ip, sizeof(ip), "10.0.%d.%d", i / 250, i % 250);
        assert_int_equal(connect_at(cl, ip, 5, 5, T0), CLIENT_ADMIT);
        client_limits_disconnect(cl, addr(ip), T0);
    }
    assert_int_equal(client_limits_size(cl), 100);
    /* within the rate window they are kept: their buckets are not full yet */
    assert_int_equal(connect_at(cl, "10.1.0.1", 5, 5, T0 + 59), CLIENT_ADMIT);
    assert_int_equal(client_limits_size(cl), 101);
    /* later, each call frees a few: every idle one is gone eventually */
    for (int i = 0; i < 100; i++)
        client_limits_message(cl, addr("10.1.0.1"), 5, T0 + 120 + i);
    assert_int_equal(client_limits_size(cl), 1); /* 10.1.0.1 holds a session */
    client_limits_free(cl);
}

static void
test_active_and_throttled_entries_are_kept(void **state)
{
    struct client_limits *cl = client_limits_new(1000);

    (void)state;
    assert_int_equal(connect_at(cl, "10.0.0.1", 5, 0, T0), CLIENT_ADMIT);
    client_limits_throttle(cl, addr("10.0.0.2"), 3600, T0);
    for (int i = 0; i < 50; i++)
        connect_at(cl, "10.0.0.3", 0, 0, T0 + 100 + i);
    assert_int_equal(client_limits_sessions(cl, addr("10.0.0.1")), 1);
    assert_int_equal(connect_at(cl, "10.0.0.2", 0, 0, T0 + 200), CLIENT_THROTTLED);
    /* once the throttle is over it goes too */
    for (int i = 0; i < 50; i++)
        client_limits_message(cl, addr("10.0.0.3"), 1000, T0 + 4000 + i);
    assert_int_equal(client_limits_size(cl), 2); /* 10.0.0.1 and 10.0.0.3 hold sessions */
    client_limits_free(cl);
}

static void
test_cap_evicts_idle(void **state)
{
    struct client_limits *cl = client_limits_new(10);
    char ip[32];

    (void)state;
    /* 10 idle entries inside their rate window fill the table */
    for (int i = 0; i < 10; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        assert_int_equal(connect_at(cl, ip, 0, 1, T0), CLIENT_ADMIT);
        client_limits_disconnect(cl, addr(ip), T0);
    }
    assert_int_equal(connect_at(cl, "10.0.0.0", 0, 1, T0), CLIENT_TOO_FAST);
    /* a new address evicts the least recently idle one, never grows it */
    for (int i = 10; i < 30; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        assert_int_equal(connect_at(cl, ip, 0, 1, T0), CLIENT_ADMIT);
        client_limits_disconnect(cl, addr(ip), T0);
        assert_true(client_limits_size(cl) <= 10);
    }
    /* 10.0.0.0 was evicted: its rate state is gone */
    assert_int_equal(connect_at(cl, "10.0.0.0", 0, 1, T0), CLIENT_ADMIT);
    client_limits_free(cl);
}

static void
test_cap_full_of_sessions_fails_open(void **state)
{
    struct client_limits *cl = client_limits_new(4);
    char ip[32];

    (void)state;
    for (int i = 0; i < 4; i++) {
        snprintf(ip, sizeof(ip), "10.0.0.%d", i);
        assert_int_equal(connect_at(cl, ip, 1, 0, T0), CLIENT_ADMIT);
    }
    assert_int_equal(connect_at(cl, "10.0.0.99", 1, 0, T0), CLIENT_UNTRACKED);
    assert_int_equal(connect_at(cl, "10.0.0.99", 1, 0, T0), CLIENT_UNTRACKED);
    assert_int_equal(client_limits_size(cl), 4);
    client_limits_disconnect(cl, addr("10.0.0.99"), T0); /* untracked: nothing */
    assert_int_equal(connect_at(cl, "10.0.0.0", 1, 0, T0), CLIENT_TOO_MANY);
    /* a tracked one leaves: room again */
    client_limits_disconnect(cl, addr("10.0.0.3"), T0);
    assert_int_equal(connect_at(cl, "10.0.0.99", 1, 0, T0), CLIENT_ADMIT);
    assert_int_equal(connect_at(cl, "10.0.0.99", 1, 0, T0), CLIENT_TOO_MANY);
    client_limits_free(cl);
}

static void
test_many_addresses(void **state)
{
    struct client_limits *cl = client_limits_new(16384);
    char ip[64];

    (void)state;
    for (int i = 0; i < 20000; i++) {
        snprintf(ip, sizeof(ip), "2001:db8:%x:%x::1", i >> 8, i & 0xff);
        assert_int_not_equal(connect_at(cl, ip, 2, 2, T0 + i / 100), CLIENT_TOO_MANY);
        client_limits_disconnect(cl, addr(ip), T0 + i / 100);
    }
    assert_true(client_limits_size(cl) <= 16384);
    client_limits_free(cl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sessions_counted_per_address),
        cmocka_unit_test(test_disconnect_of_unknown_is_harmless),
        cmocka_unit_test(test_connection_rate_per_minute),
        cmocka_unit_test(test_refused_by_count_costs_no_rate),
        cmocka_unit_test(test_message_rate),
        cmocka_unit_test(test_throttle),
        cmocka_unit_test(test_ipv6_counted_per_64),
        cmocka_unit_test(test_v4_mapped_is_ipv4),
        cmocka_unit_test(test_other_families_untracked),
        cmocka_unit_test(test_idle_entries_expire),
        cmocka_unit_test(test_active_and_throttled_entries_are_kept),
        cmocka_unit_test(test_cap_evicts_idle),
        cmocka_unit_test(test_cap_full_of_sessions_fails_open),
        cmocka_unit_test(test_many_addresses),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
