/*
 * libFuzzer target for the envelope text form (envelope.c). Arbitrary bytes
 * go to envelope_parse; whatever parses must write back, parse again to
 * the same envelope, and write back to the same text (the written form is
 * a fixed point). The bytes after data_offset are then applied as a .state
 * journal, which must leave every recipient in a valid state.
 */
#include "queue/envelope.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_envelope: check failed: %s (line %d)\n", #c, __LINE__);          \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static bool
same_rcpt(const struct envelope_rcpt *a, const struct envelope_rcpt *b)
{
    return a->kind == b->kind && strcmp(a->action, b->action) == 0 &&
           strcmp(a->user, b->user) == 0 && strcmp(a->address, b->address) == 0 &&
           strcmp(a->orig, b->orig) == 0 && a->notify == b->notify &&
           strcmp(a->orcpt, b->orcpt) == 0;
}

static bool
same_envelope(const struct envelope *a, const struct envelope *b)
{
    if (strcmp(a->id, b->id) != 0 || a->arrival != b->arrival || strcmp(a->sender, b->sender) ||
        a->body != b->body || a->smtputf8 != b->smtputf8 || a->ret != b->ret ||
        strcmp(a->envid, b->envid) || a->mode != b->mode || strcmp(a->client, b->client) ||
        strcmp(a->helo, b->helo) || a->nrcpts != b->nrcpts)
        return false;
    for (size_t i = 0; i < a->nrcpts; i++)
        if (!same_rcpt(&a->rcpts[i], &b->rcpts[i]))
            return false;
    return true;
}

/* Parses an exact-size copy, so reads past the end trip ASan. */
static struct envelope *
parse_copy(const char *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    struct envelope *e;

    if (copy == NULL)
        abort();
    memcpy(copy, p, n);
    e = envelope_parse(copy, n);
    free(copy);
    return e;
}

static void
check_parsed(const struct envelope *e, size_t n)
{
    CHECK(e->data_offset <= n);
    CHECK(queue_id_valid(e->id));
    CHECK(e->nrcpts > 0);
    CHECK(e->body >= 0 && e->body <= 2 && e->ret >= 0 && e->ret <= 2);
    CHECK(e->mode >= 0 && e->mode <= 3 && e->arrival >= 0);
    for (size_t i = 0; i < e->nrcpts; i++) {
        CHECK(e->rcpts[i].state == RCPT_PENDING);
        CHECK(e->rcpts[i].notify <= 15);
    }
}

static void
round_trip(const struct envelope *e)
{
    struct buf one, two;
    struct envelope *again;

    buf_init(&one, 1u << 26);
    buf_init(&two, 1u << 26);
    CHECK(envelope_write(e, &one) == 0);
    again = parse_copy(one.data, one.len);
    CHECK(again != NULL);
    CHECK(again->data_offset == one.len);
    CHECK(same_envelope(e, again));
    CHECK(envelope_write(again, &two) == 0);
    CHECK(one.len == two.len && memcmp(one.data, two.data, one.len) == 0);
    envelope_free(again);
    buf_free(&one);
    buf_free(&two);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    struct envelope *e = parse_copy(p, size);
    size_t pending;

    if (e == NULL)
        return 0;
    check_parsed(e, size);
    round_trip(e);
    {
        size_t n = size - e->data_offset;
        char *journal = malloc(n ? n : 1);

        if (journal == NULL)
            abort();
        memcpy(journal, p + e->data_offset, n);
        envelope_apply_state(e, journal, n);
        free(journal);
    }
    pending = 0;
    for (size_t i = 0; i < e->nrcpts; i++) {
        CHECK(e->rcpts[i].state == RCPT_PENDING || e->rcpts[i].state == RCPT_DELIVERED ||
              e->rcpts[i].state == RCPT_FAILED);
        CHECK(e->rcpts[i].error != NULL);
        pending += e->rcpts[i].state == RCPT_PENDING;
    }
    CHECK(envelope_pending(e) == pending);
    envelope_free(e);
    return 0;
}
