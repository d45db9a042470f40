/*
 * crypt(3) hashes through libxcrypt's reentrant calls (see password.h).
 * struct crypt_data is 32 KiB, so it lives on the heap rather than on a
 * worker thread's stack, and is wiped before it is freed: it held the
 * password.
 */
#include "auth/password.h"

#include "base/xmalloc.h"
#include "config/table.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>

/* A yescrypt hash at the default cost of a password nobody uses. It only
 * burns time: password_verify_user never accepts a match against it. */
static const char stand_in_hash[] =
    "$y$j9T$3v8JakicfH4FjNzc7EBlV.$vOSxtlLmDJFcHCePKFxRrqOnr1RtU/DdJcP5mMhowI/";

/* yescrypt or SHA-512-crypt, short enough for crypt_data.output. Weak or
 * foreign methods (DES, MD5, ...) are refused rather than verified. */
static bool
hash_usable(const char *hash)
{
    return hash != NULL && (strncmp(hash, "$y$", 3) == 0 || strncmp(hash, "$6$", 3) == 0) &&
           strnlen(hash, CRYPT_OUTPUT_SIZE) < CRYPT_OUTPUT_SIZE;
}

/* Compares every octet of want (shorter than CRYPT_OUTPUT_SIZE) whatever
 * the differences, so the time does not depend on where they are. */
static bool
equal_const_time(const char *got, const char *want)
{
    char copy[CRYPT_OUTPUT_SIZE] = {0};
    size_t glen = strnlen(got, CRYPT_OUTPUT_SIZE - 1), wlen = strlen(want);
    unsigned diff = (unsigned)(glen ^ wlen);

    memcpy(copy, got, glen);
    for (size_t i = 0; i < wlen; i++)
        diff |= (unsigned char)(copy[i] ^ want[i]);
    return diff == 0;
}

bool
password_verify(const char *hash, const char *password)
{
    struct crypt_data *cd;
    const char *out;
    bool ok;

    if (!hash_usable(hash) || password == NULL)
        return false;
    cd = xcalloc(1, sizeof(*cd));
    out = crypt_r(password, hash, cd);
    /* libxcrypt fails with NULL or a string starting with "*". */
    ok = out != NULL && out[0] != '*' && equal_const_time(out, hash);
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return ok;
}

/* The hash that unknown users are checked against; see password.h. */
static const char *
stand_in(const struct table *users)
{
    for (size_t i = 0; users != NULL && i < users->nentries; i++)
        if (hash_usable(users->entries[i].value))
            return users->entries[i].value;
    return stand_in_hash;
}

bool
password_verify_user(const struct table *users, const char *name, const char *password)
{
    const char *hash = users != NULL && name != NULL ? table_get(users, name) : NULL;
    bool known = hash_usable(hash);
    bool match = password_verify(known ? hash : stand_in(users), password);

    return known && match;
}

int
password_hash(const char *password, const char *prefix, char *out, size_t n)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    struct crypt_data *cd;
    const char *h;
    int rc = -1;

    if (strcmp(prefix, "$y$") != 0 && strcmp(prefix, "$6$") != 0)
        return -1;
    /* count 0: the library's default cost; NULL: salt from the OS. */
    if (crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) == NULL)
        return -1;
    cd = xcalloc(1, sizeof(*cd));
    h = crypt_r(password, setting, cd);
    if (h != NULL && h[0] != '*' && strlen(h) < n) {
        memcpy(out, h, strlen(h) + 1);
        rc = 0;
    }
    explicit_bzero(cd, sizeof(*cd));
    free(cd);
    return rc;
}
