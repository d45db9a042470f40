/*
 * libFuzzer target for smtp_path_parse / smtp_path_format. The raw bytes are
 * parsed as both kinds of path, with and without SMTPUTF8; every accepted
 * path must format and re-parse to the same local part and domain.
 */
#include "smtp/smtp_address.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_invariants(const struct smtp_path *p, enum smtp_path_kind kind, bool utf8_ok, struct str in,
                 struct str rest)
{
    if (rest.ptr < in.ptr || rest.ptr + rest.len != in.ptr + in.len)
        abort(); /* rest must be the tail of the input */
    if (rest.len > 0 && rest.ptr[0] != ' ')
        abort();
    if (strlen(p->local) > SMTP_LOCAL_MAX || strlen(p->domain) > SMTP_DOMAIN_MAX)
        abort();
    if ((p->null && kind != SMTP_PATH_SENDER) || (p->no_domain && kind != SMTP_PATH_RECIPIENT))
        abort();
    if (p->utf8 && !utf8_ok)
        abort();
    if (!p->null && !p->no_domain && p->domain[0] == '\0')
        abort();
}

/* format -> "<...>" -> parse must succeed and give the same mailbox. */
static void
check_round_trip(const struct smtp_path *p, enum smtp_path_kind kind, bool utf8_ok)
{
    char text[SMTP_PATH_MAX + 1], again[SMTP_PATH_MAX + 3];
    struct smtp_path q;
    struct smtp_reply err;
    struct str rest;
    int n = smtp_path_format(p, text, sizeof(text));

    if (n < 0 || (size_t)n != strlen(text))
        abort();
    again[0] = '<';
    memcpy(again + 1, text, (size_t)n);
    again[n + 1] = '>';
    if (smtp_path_parse(str_make(again, (size_t)n + 2), kind, utf8_ok, &q, &rest, &err) != 0) {
        fprintf(stderr, "round trip refused: <%s>: %s\n", text, err.text);
        abort();
    }
    if (strcmp(q.local, p->local) != 0 || strcmp(q.domain, p->domain) != 0 || q.null != p->null ||
        q.no_domain != p->no_domain || rest.len != 0)
        abort();
}

static void
fuzz_one(struct str in, enum smtp_path_kind kind, bool utf8_ok)
{
    struct smtp_path p;
    struct smtp_reply err;
    struct str rest;

    if (smtp_path_parse(in, kind, utf8_ok, &p, &rest, &err) != 0) {
        if (err.code != 501 || err.status == NULL || err.text[0] == '\0')
            abort();
        return;
    }
    check_invariants(&p, kind, utf8_ok, in, rest);
    check_round_trip(&p, kind, utf8_ok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a private exact-size copy: reading past size trips ASan */
    char *copy = malloc(size ? size : 1);
    struct str in;

    if (copy == NULL)
        return 0;
    if (size > 0)
        memcpy(copy, data, size);
    in = str_make(copy, size);
    fuzz_one(in, SMTP_PATH_SENDER, false);
    fuzz_one(in, SMTP_PATH_SENDER, true);
    fuzz_one(in, SMTP_PATH_RECIPIENT, false);
    fuzz_one(in, SMTP_PATH_RECIPIENT, true);
    free(copy);
    return 0;
}
