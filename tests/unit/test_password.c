/*
 * Password hashes (auth/password.c): hash then verify for yescrypt and
 * SHA-512-crypt, wrong passwords, refused and malformed hashes, and users
 * table lookups (unknown user, bare entry) that cost as much as a wrong
 * password. The table file is written under a mkdtemp directory.
 */
#include <crypt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "auth/password.h"
#include "config/table.h"

static char tmpdir[] = "/tmp/petrel-test-password-XXXXXX";
static char path[512];
static char yhash[PASSWORD_HASH_MAX], shash[PASSWORD_HASH_MAX];
static struct table *users;

/* Writes the users table: alice ($y$), carol ($6$), a bare bob, a locked
 * mallory, and dan with a SHA-256-crypt hash (a refused method). */
static int
group_setup(void **state)
{
    char err[512], s256[CRYPT_OUTPUT_SIZE];
    struct crypt_data cd = {0};
    const char *h;
    FILE *f;

    (void)state;
    if (mkdtemp(tmpdir) == NULL || password_hash("alice pw", "$y$", yhash, sizeof(yhash)) < 0 ||
        password_hash("carol pw", "$6$", shash, sizeof(shash)) < 0)
        return -1;
    if ((h = crypt_r("dan pw", "$5$abcdefgh$", &cd)) == NULL || h[0] == '*')
        return -1;
    snprintf(s256, sizeof(s256), "%s", h);
    snprintf(path, sizeof(path), "%s/users", tmpdir);
    if ((f = fopen(path, "w")) == NULL)
        return -1;
    fprintf(f, "alice:%s\nbob\ncarol: %s\nmallory:*\ndan:%s\n", yhash, shash, s256);
    if (fclose(f) != 0)
        return -1;
    users = table_load("users", path, err, sizeof(err));
    return users ? 0 : -1;
}

static int
group_teardown(void **state)
{
    (void)state;
    table_free(users);
    unlink(path);
    return rmdir(tmpdir);
}

static void
test_hash_verify_yescrypt(void **state)
{
    char h[PASSWORD_HASH_MAX];

    (void)state;
    assert_int_equal(password_hash("s3cret \xc3\xa4", "$y$", h, sizeof(h)), 0);
    assert_memory_equal(h, "$y$", 3);
    assert_true(password_verify(h, "s3cret \xc3\xa4"));
    assert_false(password_verify(h, "s3cret \xc3\xa5"));
    assert_false(password_verify(h, "s3cret"));
    assert_false(password_verify(h, ""));
}

static void
test_hash_verify_sha512(void **state)
{
    char h[PASSWORD_HASH_MAX], h2[PASSWORD_HASH_MAX];

    (void)state;
    assert_int_equal(password_hash("s3cret", "$6$", h, sizeof(h)), 0);
    assert_memory_equal(h, "$6$", 3);
    assert_true(password_verify(h, "s3cret"));
    assert_false(password_verify(h, "S3cret"));
    /* a fresh salt every time */
    assert_int_equal(password_hash("s3cret", "$6$", h2, sizeof(h2)), 0);
    assert_string_not_equal(h, h2);
    assert_true(password_verify(h2, "s3cret"));
}

static void
test_hash_refusals(void **state)
{
    char h[PASSWORD_HASH_MAX];

    (void)state;
    assert_int_equal(password_hash("pw", "$1$", h, sizeof(h)), -1);
    assert_int_equal(password_hash("pw", "$5$", h, sizeof(h)), -1);
    assert_int_equal(password_hash("pw", "", h, sizeof(h)), -1);
    assert_int_equal(password_hash("pw", "$y$", h, 10), -1); /* does not fit */
}

static void
test_malformed_hashes(void **state)
{
    static const char *const bad[] = {
        "",     "*",          "!", "!$y$j9T$abc",     "$y$",           "$6$", "$y$j9T$",
        "$6$$", "$y$garbage", "x", "$6$rounds=1000$", "abJnggxhB/yWI", /* DES */
    };
    char h[PASSWORD_HASH_MAX], damaged[PASSWORD_HASH_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_false(password_verify(bad[i], ""));
        assert_false(password_verify(bad[i], "pw"));
    }
    assert_false(password_verify(NULL, "pw"));
    /* a valid hash with its last character changed, or cut short */
    assert_int_equal(password_hash("pw", "$y$", h, sizeof(h)), 0);
    snprintf(damaged, sizeof(damaged), "%s", h);
    damaged[strlen(damaged) - 1] ^= 1;
    assert_false(password_verify(damaged, "pw"));
    damaged[strlen(damaged) - 1] = '\0';
    assert_false(password_verify(damaged, "pw"));
    assert_true(password_verify(h, "pw"));
}

static void
test_refused_method(void **state)
{
    (void)state;
    /* dan's SHA-256-crypt hash is right but the method is not accepted */
    assert_false(password_verify_user(users, "dan", "dan pw"));
}

static void
test_users_table(void **state)
{
    (void)state;
    assert_true(password_verify_user(users, "alice", "alice pw"));
    assert_true(password_verify_user(users, "ALICE", "alice pw")); /* keys ignore case */
    assert_false(password_verify_user(users, "alice", "carol pw"));
    assert_true(password_verify_user(users, "carol", "carol pw"));
    assert_false(password_verify_user(users, "carol", "alice pw"));
    assert_false(password_verify_user(users, "mallory", "*"));
    assert_false(password_verify_user(users, "", "alice pw"));
    assert_false(password_verify_user(NULL, "alice", "alice pw"));
}

static void
test_unknown_user(void **state)
{
    (void)state;
    assert_false(password_verify_user(users, "dave", "wrong"));
    assert_false(password_verify_user(users, "dave", ""));
    /* the stand-in hash is alice's: her password does not open "dave" */
    assert_false(password_verify_user(users, "dave", "alice pw"));
}

static void
test_bare_entry(void **state)
{
    (void)state;
    assert_false(password_verify_user(users, "bob", ""));
    assert_false(password_verify_user(users, "bob", "bob"));
    assert_false(password_verify_user(users, "bob", "alice pw"));
}

static double
cpu_seconds(const char *name, const char *password)
{
    struct timespec a, b;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    for (int i = 0; i < 3; i++)
        assert_false(password_verify_user(users, name, password));
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

/* Unknown and bare users still pay for a hash (a loose bound: CPU time
 * within a factor of 3 of a wrong password, which is tens of ms). */
static void
test_unknown_user_costs_a_hash(void **state)
{
    double wrong = cpu_seconds("alice", "wrong"), unknown = cpu_seconds("dave", "wrong"),
           bare = cpu_seconds("bob", "wrong");

    (void)state;
    assert_true(wrong > 0.001);
    assert_true(unknown * 3 > wrong);
    assert_true(bare * 3 > wrong);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_verify_yescrypt),
        cmocka_unit_test(test_hash_verify_sha512),
        cmocka_unit_test(test_hash_refusals),
        cmocka_unit_test(test_malformed_hashes),
        cmocka_unit_test(test_refused_method),
        cmocka_unit_test(test_users_table),
        cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_bare_entry),
        cmocka_unit_test(test_unknown_user_costs_a_hash),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
