/*
 * Password hashes for SMTP AUTH: checking a password against a crypt(3)
 * hash from the users table, and making new hashes (petrel passwd). Uses
 * libxcrypt; accepts yescrypt ($y$) and SHA-512-crypt ($6$) hashes only.
 *
 * Every function here is slow on purpose (tens of milliseconds of CPU and,
 * for yescrypt, megabytes of memory) and blocking: the daemon must call them
 * on a worker thread (event/workpool.h), never on the event loop. They keep
 * no state and are safe to call from several threads at once.
 */
#ifndef PETREL_PASSWORD_H
#define PETREL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

struct table;

/* Room for any hash password_hash makes, NUL included. */
#define PASSWORD_HASH_MAX 384
/* The longest password libxcrypt hashes (CRYPT_MAX_PASSPHRASE_SIZE - 1):
 * longer ones never verify, although SMTP AUTH lets clients send them. */
#define PASSWORD_LEN_MAX 511

/*
 * True when password matches hash ("$y$..." or "$6$..."). False for a wrong
 * password and for an empty, malformed or unsupported hash (DES, MD5, "*",
 * "!..."). The comparison of the computed hash runs in constant time.
 */
bool password_verify(const char *hash, const char *password);

/*
 * True when the users table has "name:HASH" and password matches HASH.
 * An unknown name, a bare "name" entry (no password) and an unusable hash
 * are checked against a stand-in hash all the same, so that they take as
 * long as a wrong password: timing does not tell which users exist. The
 * stand-in is the first usable hash of the table (same method and cost as
 * real users), or a built-in yescrypt hash when there is none.
 */
bool password_verify_user(const struct table *users, const char *name, const char *password);

/*
 * Hashes password with a fresh random salt and the library's default cost
 * for prefix "$y$" (yescrypt) or "$6$" (SHA-512-crypt); writes the
 * NUL-terminated hash to out (size n, PASSWORD_HASH_MAX is enough).
 * Returns 0, or -1 for another prefix, a result that does not fit, or a
 * failure of the library (no randomness).
 */
int password_hash(const char *password, const char *prefix, char *out, size_t n)
    __attribute__((warn_unused_result));

#endif
