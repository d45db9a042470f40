/*
 * The capped buffer (base/buf.c): formatted text lands whole whether it
 * fits the room already there or needs the buffer to grow; a result over
 * the cap leaves the buffer as it was, text and terminator; strings joined
 * with buf_cat likewise.
 */
#include "base/buf.h"

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

static void
test_printf_fits_and_grows(void **state)
{
    struct buf b;
    char want[2048];
    size_t wlen = 0;

    (void)state;
    buf_init(&b, 1u << 20);
    /* short pieces (in the room) and long ones (past it) alike */
    for (int i = 0; i < 60; i++) {
        int n = i % 7 == 0 ? 40 : 3;

        assert_int_equal(
            buf_printf(&b, "%d:%.*s;", i, n, "0123456789012345678901234567890123456789"), 0);
        wlen += (size_t)snprintf(want + wlen, sizeof(want) - wlen, "%d:%.*s;", i, n,
                                 "0123456789012345678901234567890123456789");
        assert_int_equal(b.len, wlen);
        assert_memory_equal(b.data, want, wlen + 1); /* with the terminator */
    }
    buf_free(&b);
}

static void
test_printf_over_the_cap_changes_nothing(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 300); /* the first allocation is 256 octets, the next 512: past the cap */
    assert_int_equal(buf_printf(&b, "%0290d", 7), 0);
    assert_int_equal(b.len, 290);
    /* fits the allocated room but not the cap */
    assert_int_equal(buf_printf(&b, "%0100d", 7), -1);
    assert_int_equal(b.len, 290);
    assert_int_equal(b.data[290], '\0');
    /* fits neither */
    assert_int_equal(buf_printf(&b, "%0600d", 7), -1);
    assert_int_equal(b.len, 290);
    assert_int_equal(b.data[290], '\0');
    /* exactly up to the cap */
    assert_int_equal(buf_printf(&b, "%010d", 8), 0);
    assert_int_equal(b.len, 300);
    assert_int_equal(b.data[299], '8');
    assert_int_equal(b.data[300], '\0');
    assert_int_equal(buf_printf(&b, "x"), -1);
    assert_int_equal(b.len, 300);
    assert_int_equal(b.data[300], '\0');
    /* from an empty buffer: over the cap in the first allocation's room */
    buf_free(&b);
    buf_init(&b, 100);
    assert_int_equal(buf_printf(&b, "%s", "abc"), 0);
    assert_int_equal(buf_printf(&b, "%0120d", 7), -1);
    assert_int_equal(b.len, 3);
    assert_string_equal(b.data, "abc");
    buf_free(&b);
}

static void
test_printf_into_an_emptied_buffer(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 4096);
    assert_int_equal(buf_printf(&b, "%0100d", 1), 0);
    buf_reset(&b);
    assert_int_equal(buf_printf(&b, "%s-%u", "x", 42u), 0);
    assert_int_equal(b.len, 4);
    assert_string_equal(b.data, "x-42");
    buf_free(&b);
}

static void
test_cat_joins_or_changes_nothing(void **state)
{
    struct buf b;

    (void)state;
    buf_init(&b, 20);
    assert_int_equal(buf_cat(&b, NULL), 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(buf_cat(&b, "Received: ", "", "from", NULL), 0);
    assert_string_equal(b.data, "Received: from");
    /* the second string would pass the cap: not even the first stays */
    assert_int_equal(buf_cat(&b, " a", " longer one", NULL), -1);
    assert_int_equal(b.len, 14);
    assert_string_equal(b.data, "Received: from");
    assert_int_equal(buf_cat(&b, " x", "yz", "!!", NULL), 0);
    assert_int_equal(b.len, 20);
    assert_string_equal(b.data, "Received: from xyz!!");
    buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_printf_fits_and_grows),
        cmocka_unit_test(test_printf_over_the_cap_changes_nothing),
        cmocka_unit_test(test_printf_into_an_emptied_buffer),
        cmocka_unit_test(test_cat_joins_or_changes_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
