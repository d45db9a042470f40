/*
 * Maildir delivery (delivery/maildir.c) on a real directory: a new mailbox
 * is made on first delivery, messages land in new/ with LF line ends and
 * the head first, nothing is left in tmp/, and deliveries from many
 * threads at once into one mailbox (sharing their new/ fsyncs) all land.
 */
#include "delivery/maildir.h"

#include <dirent.h>
#include <pthread.h>
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

#define THREADS 8
#define PER_THREAD 40

static char root[256];

static size_t
count(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Reads the one message in dir/new/ into buf (at most cap octets): its size. */
static size_t
read_delivered(const char *dir, char *buf, size_t cap)
{
    char path[1024];
    struct dirent *e;
    size_t n;
    FILE *f;
    DIR *d;

    snprintf(path, sizeof(path), "%s/new", dir);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL && e->d_name[0] == '.')
        ;
    assert_non_null(e);
    snprintf(path, sizeof(path), "%s/new/%s", dir, e->d_name);
    closedir(d);
    f = fopen(path, "rb");
    assert_non_null(f);
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void
remove_tree(const char *path)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(root, sizeof(root), "/tmp/petrel-maildir-XXXXXX");
    assert_non_null(mkdtemp(root));
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    remove_tree(root);
    return 0;
}

static void
test_first_delivery_makes_the_mailbox(void **state)
{
    char dir[512], path[600], buf[256], err[256];
    const char *msg = "Subject: hi\r\n\r\nbody\r\n";
    size_t n;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/a/b/alice", root);
    assert_int_equal(
        maildir_deliver(dir, "Return-Path: <s@example.net>\n", msg, strlen(msg), err, sizeof(err)),
        0);
    snprintf(path, sizeof(path), "%s/new", dir);
    assert_int_equal(count(path), 1);
    snprintf(path, sizeof(path), "%s/tmp", dir);
    assert_int_equal(count(path), 0);
    snprintf(path, sizeof(path), "%s/cur", dir);
    assert_int_equal(count(path), 0);
    n = read_delivered(dir, buf, sizeof(buf) - 1);
    buf[n] = '\0';
    assert_string_equal(buf, "Return-Path: <s@example.net>\nSubject: hi\n\nbody\n");
}

/* The body conversion (CRLF to LF, a lone CR kept) over more than the
 * writer's 64 KiB buffer, with CRs and CRLFs around its boundaries, against
 * the same conversion done one octet at a time here. */
static void
test_large_message_converted_exactly(void **state)
{
    size_t len = 200000, n = 0, got;
    char *msg = malloc(len), *want = malloc(len + 64), *file = malloc(len + 64);
    char dir[512], err[256];
    const char *head = "Return-Path: <s@example.net>\n";

    (void)state;
    assert_non_null(msg);
    assert_non_null(want);
    assert_non_null(file);
    for (size_t i = 0; i < len; i++) /* lines of 7, a lone CR every 1000 */
        msg[i] = i % 1000 == 999 ? '\r' : i % 9 == 7 ? '\r' : i % 9 == 8 ? '\n' : 'a' + i % 26;
    msg[65535] = '\r'; /* a CRLF across the first buffer boundary */
    msg[65536] = '\n';
    msg[len - 1] = '\r'; /* a CR at the very end stays */
    n = strlen(head);
    memcpy(want, head, n);
    for (size_t i = 0; i < len; i++)
        if (!(msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n'))
            want[n++] = msg[i];
    snprintf(dir, sizeof(dir), "%s/big", root);
    assert_int_equal(maildir_deliver(dir, head, msg, len, err, sizeof(err)), 0);
    got = read_delivered(dir, file, len + 64);
    assert_int_equal(got, n);
    assert_memory_equal(file, want, n);
    free(msg);
    free(want);
    free(file);
}

static void *
deliver_many(void *arg)
{
    const char *dir = arg;
    char err[256];
    const char *msg = "Subject: load\r\n\r\nx\r\n";

    for (int i = 0; i < PER_THREAD; i++)
        if (maildir_deliver(dir, "", msg, strlen(msg), err, sizeof(err)) != 0)
            return (void *)1;
    return NULL;
}

static void
test_concurrent_deliveries_all_land(void **state)
{
    pthread_t t[THREADS];
    char dir[512], path[600];
    void *res;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/bob", root);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, deliver_many, dir), 0);
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], &res), 0);
        assert_null(res);
    }
    snprintf(path, sizeof(path), "%s/new", dir);
    assert_int_equal(count(path), THREADS * PER_THREAD);
    snprintf(path, sizeof(path), "%s/tmp", dir);
    assert_int_equal(count(path), 0);
}

static void
test_unwritable_place_is_an_error(void **state)
{
    char dir[512], blocker[512], err[256] = "";

    (void)state;
    snprintf(blocker, sizeof(blocker), "%s/file", root);
    fclose(fopen(blocker, "w"));
    snprintf(dir, sizeof(dir), "%s/file/carol", root);
    assert_true(maildir_deliver(dir, "", "x\r\n", 3, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "file/carol")); /* the log names where */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_large_message_converted_exactly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_delivery_makes_the_mailbox, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_deliveries_all_land, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable_place_is_an_error, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
