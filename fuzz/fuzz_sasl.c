/*
 * libFuzzer target for auth/sasl.c. The input is split at "\n": the first
 * line is the mechanism, the second the initial response when bit 7 of the
 * first octet is set, the rest continuation lines. Bit i % 7 of that octet
 * says whether the i-th line fed is base64-encoded first, so that the PLAIN
 * and LOGIN parsers see arbitrary decoded bytes too. Checks the result invariants, the bounds of
 * the credentials, and that strict base64 decoding is a bijection.
 */
#include "smtp/smtp_sasl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_base64(struct str in)
{
    static char dec[SASL_LINE_MAX], enc[SASL_LINE_MAX * 2 + 8];
    long n, m;

    if (in.len > SASL_LINE_MAX)
        return;
    /* decoding is strict: whatever decodes, encodes back to the same text */
    n = sasl_base64_decode(in, dec, sizeof(dec));
    if (n >= 0) {
        m = sasl_base64_encode(str_make(dec, (size_t)n), enc, sizeof(enc));
        if (m < 0 || (size_t)m != in.len || memcmp(enc, in.ptr, in.len) != 0)
            abort();
    } else if (n != -1) {
        abort();
    }
    /* and anything encodes to something that decodes back */
    m = sasl_base64_encode(in, enc, sizeof(enc));
    if (m < 0 || sasl_base64_decode(str_make(enc, (size_t)m), dec, sizeof(dec)) != (long)in.len ||
        memcmp(dec, in.ptr, in.len) != 0)
        abort();
}

static bool
bounded(const char *field, size_t max)
{
    size_t n = strnlen(field, max + 1);

    return n <= max && sasl_utf8_valid(str_make(field, n));
}

static void
check_result(const struct sasl *s, enum sasl_result r)
{
    if (r == SASL_ERROR) {
        int c = s->reply.code;

        if ((c != 500 && c != 501 && c != 503 && c != 504 && c != 535) || s->reply.status == NULL ||
            s->reply.text[0] == '\0' || s->state != SASL_STATE_IDLE || s->authcid[0] ||
            s->password[0])
            abort();
    } else if (r == SASL_CONTINUE) {
        if (s->state == SASL_STATE_IDLE || s->challenge == NULL ||
            (strcmp(s->challenge, "") != 0 && strcmp(s->challenge, "VXNlcm5hbWU6") != 0 &&
             strcmp(s->challenge, "UGFzc3dvcmQ6") != 0))
            abort();
    } else if (r == SASL_DONE) {
        if (s->state != SASL_STATE_IDLE || !bounded(s->authzid, SASL_AUTHZID_MAX) ||
            !bounded(s->authcid, SASL_AUTHCID_MAX) || !bounded(s->password, SASL_PASSWORD_MAX) ||
            s->authcid[0] == '\0' || s->password[0] == '\0' ||
            (s->authzid[0] && strcmp(s->authzid, s->authcid) != 0))
            abort();
    } else {
        abort();
    }
}

/* Line i of the input as fed: a private exact-size copy (reading past it
 * trips ASan), base64-encoded when the flag bit says so. *owned is freed
 * by the caller. */
static struct str
line_as_fed(struct str raw, bool encode, char **owned)
{
    size_t n = encode ? (raw.len + 2) / 3 * 4 + 1 : raw.len;
    char *copy = malloc(n ? n : 1);

    if (copy == NULL)
        abort();
    *owned = copy;
    if (!encode) {
        if (raw.len)
            memcpy(copy, raw.ptr, raw.len);
        return str_make(copy, raw.len);
    }
    if (sasl_base64_encode(raw, copy, n) < 0)
        abort();
    return str_make(copy, n - 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct str in = str_make((const char *)data, size), mech, line;
    static struct sasl s;
    enum sasl_result r;
    unsigned flags;
    bool has_initial;
    char *owned;

    if (size == 0)
        return 0;
    flags = data[0];
    has_initial = flags & 0x80;
    in = str_make(in.ptr + 1, in.len - 1);
    check_base64(in);
    mech = str_cut(&in, '\n');
    line = line_as_fed(has_initial ? str_cut(&in, '\n') : STR_LIT(""), flags & 1, &owned);
    sasl_clear(&s);
    r = sasl_start(&s, mech, line, has_initial);
    free(owned);
    check_result(&s, r);
    /* the rest: continuations, and steps after the end (503) */
    for (unsigned i = 1; i < 16 && in.len > 0; i++) {
        line = line_as_fed(str_cut(&in, '\n'), (flags >> (i % 7)) & 1, &owned);
        r = sasl_step(&s, line);
        free(owned);
        check_result(&s, r);
    }
    sasl_clear(&s);
    for (size_t i = 0; i < sizeof(s); i++)
        if (((const unsigned char *)&s)[i] != 0)
            abort();
    return 0;
}
