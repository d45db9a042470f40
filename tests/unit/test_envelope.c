/*
 * Envelope text form (envelope.c): write -> parse round trips with hostile
 * field contents, data_offset, refusal of truncated and garbled input, the
 * .state journal (including a torn last line), and queue ids. Parser input
 * is copied into heap blocks of exactly its length so ASan catches reads
 * past the end.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka.h needs these first. */
// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on

#include "queue/envelope.h"

#define ID "00112233445566AA"

/* Parses an exact-size copy of p[0..n). */
static struct envelope *
parse(const char *p, size_t n)
{
    char *copy = malloc(n ? n : 1);
    struct envelope *e;

    assert_non_null(copy);
    memcpy(copy, p, n);
    e = envelope_parse(copy, n);
    free(copy);
    return e;
}

static struct envelope *
parse_str(const char *s)
{
    return parse(s, strlen(s));
}

static void
apply(struct envelope *e, const char *s)
{
    size_t n = strlen(s);
    char *copy = malloc(n ? n : 1);

    assert_non_null(copy);
    memcpy(copy, s, n);
    envelope_apply_state(e, copy, n);
    free(copy);
}

/* Text form of e; the caller frees. */
static void
write_env(const struct envelope *e, struct buf *b)
{
    buf_init(b, 1 << 20);
    assert_int_equal(envelope_write(e, b), 0);
}

static struct envelope *
hostile(void)
{
    struct envelope *e = envelope_new();

    memcpy(e->id, ID, sizeof(ID));
    e->arrival = 1700000000;
    free(e->sender);
    e->sender = strdup("we ird%20 \"sender\"\n\r\t\x7f@example.net");
    free(e->envid);
    e->envid = strdup("-");
    free(e->client);
    e->client = strdup("2001:db8::1");
    free(e->helo);
    e->helo = strdup("");
    e->body = 2;
    e->smtputf8 = true;
    e->ret = 1;
    e->mode = 3;
    envelope_add_rcpt(e, RCPT_MAILDIR, "local mail", "alice", "alice@example.org",
                      "Alice@Example.ORG", 0, "");
    envelope_add_rcpt(e, RCPT_RELAY, "-", "",
                      "j\xc3\xb6rg@b\xc3\xbc"
                      "cher.example",
                      "-x-", 15, "rfc822;a+2Bb%c");
    envelope_add_rcpt(e, RCPT_MAILDIR, "%%", "\x01\x1f", "line\nbreak@example.org", "%41", 6,
                      "utf-8;\xe4\xbe\x8b");
    return e;
}

static void
assert_same_envelope(const struct envelope *a, const struct envelope *b)
{
    assert_string_equal(a->id, b->id);
    assert_int_equal(a->arrival, b->arrival);
    assert_string_equal(a->sender, b->sender);
    assert_int_equal(a->body, b->body);
    assert_int_equal(a->smtputf8, b->smtputf8);
    assert_int_equal(a->ret, b->ret);
    assert_string_equal(a->envid, b->envid);
    assert_int_equal(a->mode, b->mode);
    assert_string_equal(a->client, b->client);
    assert_string_equal(a->helo, b->helo);
    assert_int_equal(a->nrcpts, b->nrcpts);
    for (size_t i = 0; i < a->nrcpts; i++) {
        const struct envelope_rcpt *x = &a->rcpts[i], *y = &b->rcpts[i];

        assert_int_equal(x->kind, y->kind);
        assert_string_equal(x->action, y->action);
        assert_string_equal(x->user, y->user);
        assert_string_equal(x->address, y->address);
        assert_string_equal(x->orig, y->orig);
        assert_int_equal(x->notify, y->notify);
        assert_string_equal(x->orcpt, y->orcpt);
        assert_int_equal(y->state, RCPT_PENDING); /* states live in the journal */
    }
}

static void
test_round_trip_hostile(void **state)
{
    struct envelope *e = hostile(), *p;
    struct buf b;
    size_t lines = 0;

    (void)state;
    write_env(e, &b);
    for (size_t i = 0; i < b.len; i++)
        lines += b.data[i] == '\n';
    /* magic id arrival body smtputf8 ret mode from envid client, 3 rcpts, blank */
    assert_int_equal(lines, 10 + 3 + 1);
    assert_memory_equal(b.data + b.len - 2, "\n\n", 2);
    assert_null(memchr(b.data, '\r', b.len));
    assert_null(memchr(b.data, '\t', b.len));
    p = parse(b.data, b.len);
    assert_non_null(p);
    assert_same_envelope(e, p);
    assert_int_equal(p->data_offset, b.len);

    /* writing what was parsed gives the same text */
    {
        struct buf again;

        write_env(p, &again);
        assert_int_equal(again.len, b.len);
        assert_memory_equal(again.data, b.data, b.len);
        buf_free(&again);
    }
    envelope_free(p);
    envelope_free(e);
    buf_free(&b);
}

static void
test_round_trip_minimal(void **state)
{
    struct envelope *e = envelope_new(), *p;
    struct buf b;

    (void)state;
    memcpy(e->id, ID, sizeof(ID));
    envelope_add_rcpt(e, RCPT_RELAY, "", "", "", "", 0, "");
    write_env(e, &b);
    assert_non_null(strstr(b.data, "\nfrom -\n")); /* "" is written as "-" */
    p = parse(b.data, b.len);
    assert_non_null(p);
    assert_same_envelope(e, p);
    assert_string_equal(p->sender, "");
    envelope_free(p);
    envelope_free(e);
    buf_free(&b);
}

static void
test_write_cap(void **state)
{
    struct envelope *e = hostile();
    struct buf b;

    (void)state;
    buf_init(&b, 64);
    assert_int_equal(envelope_write(e, &b), -1);
    buf_free(&b);
    envelope_free(e);
}

static void
test_data_offset(void **state)
{
    struct envelope *e = hostile(), *p;
    struct buf b;
    size_t head;
    static const char msg[] = "Subject: x\r\n\r\nrcpt relay a b c d 0 e\n\nbody\r\n";

    (void)state;
    write_env(e, &b);
    head = b.len;
    assert_int_equal(buf_append(&b, msg, sizeof(msg) - 1), 0);
    p = parse(b.data, b.len);
    assert_non_null(p);
    assert_int_equal(p->data_offset, head);
    assert_int_equal(p->nrcpts, 3); /* the message's look-alike lines are not read */
    assert_memory_equal(b.data + p->data_offset, msg, sizeof(msg) - 1);
    envelope_free(p);
    envelope_free(e);
    buf_free(&b);
}

static void
test_truncated(void **state)
{
    struct envelope *e = hostile(), *p;
    struct buf b;

    (void)state;
    write_env(e, &b);
    for (size_t n = 0; n < b.len; n++) {
        p = parse(b.data, n);
        if (p != NULL)
            fail_msg("a prefix of %zu octets (of %zu) parsed", n, b.len);
    }
    envelope_free(e);
    buf_free(&b);
}

#define HEAD "petrel-queue 1\nid " ID "\narrival 5\n"
#define RCPT_LINE "rcpt maildir act user a@b orig 0 -\n"

static void
test_valid_reference(void **state)
{
    struct envelope *p = parse_str(HEAD RCPT_LINE "\n");

    (void)state;
    assert_non_null(p); /* the base the garbled cases below differ from */
    assert_int_equal(p->arrival, 5);
    assert_string_equal(p->rcpts[0].orcpt, "");
    envelope_free(p);
}

static void
test_garbled(void **state)
{
    static const char *const bad[] = {
        "",
        "\n",
        "petrel-queue 2\nid " ID "\n" RCPT_LINE "\n",
        "petrel-queue 1 \nid " ID "\n" RCPT_LINE "\n",
        "petrel-queue 1\n" RCPT_LINE "\n",                       /* no id */
        "petrel-queue 1\nid " ID "\n\n",                         /* no recipient */
        "petrel-queue 1\nid 00112233445566aa\n" RCPT_LINE "\n",  /* lowercase */
        "petrel-queue 1\nid 00112233445566A\n" RCPT_LINE "\n",   /* short */
        "petrel-queue 1\nid 00112233445566AAB\n" RCPT_LINE "\n", /* long */
        HEAD "bogus 1\n" RCPT_LINE "\n",                         /* unknown key */
        HEAD "body 3\n" RCPT_LINE "\n",
        HEAD "smtputf8 2\n" RCPT_LINE "\n",
        HEAD "ret 3\n" RCPT_LINE "\n",
        HEAD "mode 4\n" RCPT_LINE "\n",
        HEAD "arrival -1\n" RCPT_LINE "\n",
        HEAD "arrival 12x\n" RCPT_LINE "\n",
        HEAD "arrival 1 2\n" RCPT_LINE "\n",
        HEAD "arrival\n" RCPT_LINE "\n",
        HEAD "from a b\n" RCPT_LINE "\n",         /* two fields */
        HEAD "from\n" RCPT_LINE "\n",             /* none */
        HEAD "from a%4\n" RCPT_LINE "\n",         /* short escape */
        HEAD "from a%zz\n" RCPT_LINE "\n",        /* not hex */
        HEAD "from a%2d\n" RCPT_LINE "\n",        /* lowercase hex */
        HEAD "from a%00b\n" RCPT_LINE "\n",       /* NUL */
        HEAD "client 192.0.2.1\n" RCPT_LINE "\n", /* helo missing */
        HEAD "client 192.0.2.1 h x\n" RCPT_LINE "\n",
        HEAD "rcpt smtp act user a@b orig 0 -\n\n",     /* kind */
        HEAD "rcpt maildir act user a@b orig 16 -\n\n", /* notify */
        HEAD "rcpt maildir act user a@b orig -1 -\n\n",
        HEAD "rcpt maildir act user a@b orig x -\n\n",
        HEAD "rcpt maildir act user a@b orig 0\n\n", /* field missing */
        HEAD "rcpt maildir act user a@b orig 0 - extra\n\n",
        HEAD "rcpt maildir act  user a@b orig 0 -\n\n", /* empty field */
        HEAD "rcpt maildir act user a@b orig 0 -\r\n\n",
        HEAD RCPT_LINE "\r\n", /* no blank line */
        HEAD RCPT_LINE,
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct envelope *p = parse_str(bad[i]);

        if (p != NULL) {
            envelope_free(p);
            fail_msg("garbled input %zu parsed: \"%s\"", i, bad[i]);
        }
    }
}

/* The writer escapes every control octet, so a raw one means damage (a
 * CRLF conversion, a NUL from a torn block) and must not slip into a field. */
static void
test_raw_controls_refused(void **state)
{
    static const char nul[] = HEAD "from a\0b\n" RCPT_LINE "\n";
    static const char *const bad[] = {
        HEAD "from a\tb\n" RCPT_LINE "\n",
        HEAD "from -\r\n" RCPT_LINE "\n",
        HEAD "envid \x7f\n" RCPT_LINE "\n",
        HEAD "rcpt maildir\r act user a@b orig 0 -\n\n",
    };

    (void)state;
    assert_null(parse(nul, sizeof(nul) - 1));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parse_str(bad[i]) != NULL)
            fail_msg("raw control in input %zu parsed", i);
}

static void
test_apply_state(void **state)
{
    struct envelope *e = hostile();

    (void)state;
    assert_int_equal(envelope_pending(e), 3);
    apply(e, "d 0\nf 1 -\nd 9\nx 2\nd abc\nf 2\nd -1\n\nd 2 trailing\nd 2");
    assert_int_equal(e->rcpts[0].state, RCPT_DELIVERED);
    assert_int_equal(e->rcpts[1].state, RCPT_FAILED);
    assert_string_equal(e->rcpts[1].error, "");
    /* "d 2 trailing" is read as "d 2": what follows the index is ignored */
    assert_int_equal(e->rcpts[2].state, RCPT_DELIVERED);
    assert_int_equal(envelope_pending(e), 0);
    envelope_free(e);

    e = hostile();
    /* a torn last line (no "\n": the write did not finish) is ignored */
    apply(e, "f 1 mailbox%20full\nd 2");
    assert_int_equal(e->rcpts[1].state, RCPT_FAILED);
    assert_string_equal(e->rcpts[1].error, "mailbox full");
    assert_int_equal(e->rcpts[2].state, RCPT_PENDING);
    assert_int_equal(envelope_pending(e), 2);
    apply(e, "d 2\n");
    assert_int_equal(e->rcpts[2].state, RCPT_DELIVERED);
    apply(e, "");
    assert_int_equal(envelope_pending(e), 1);
    envelope_free(e);
}

static void
test_rcpt_helpers(void **state)
{
    struct envelope *e = hostile();

    (void)state;
    assert_true(envelope_has_rcpt(e, RCPT_MAILDIR, "local mail", "alice@example.org"));
    assert_false(envelope_has_rcpt(e, RCPT_RELAY, "local mail", "alice@example.org"));
    assert_false(envelope_has_rcpt(e, RCPT_MAILDIR, "other", "alice@example.org"));
    assert_false(envelope_has_rcpt(e, RCPT_MAILDIR, "local mail", "Alice@example.org"));
    envelope_free(e);
}

static int
cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, QUEUE_ID_LEN);
}

static void
test_queue_id_new(void **state)
{
    enum { N = 100000 };
    char(*ids)[QUEUE_ID_LEN + 1] = calloc(N, sizeof(*ids));

    (void)state;
    assert_non_null(ids);
    for (size_t i = 0; i < N; i++) {
        queue_id_new(ids[i]);
        assert_int_equal(strlen(ids[i]), QUEUE_ID_LEN);
        for (size_t k = 0; k < QUEUE_ID_LEN; k++)
            assert_non_null(strchr("0123456789ABCDEF", ids[i][k]));
        assert_true(queue_id_valid(ids[i]));
    }
    qsort(ids, N, sizeof(*ids), cmp_id);
    for (size_t i = 1; i < N; i++)
        if (memcmp(ids[i - 1], ids[i], QUEUE_ID_LEN) == 0)
            fail_msg("duplicate queue id %s", ids[i]);
    free(ids);
}

static void
test_queue_id_valid(void **state)
{
    (void)state;
    assert_true(queue_id_valid("0123456789ABCDEF"));
    assert_true(queue_id_valid(ID));
    assert_false(queue_id_valid(""));
    assert_false(queue_id_valid("0123456789ABCDE"));
    assert_false(queue_id_valid("0123456789ABCDEF0"));
    assert_false(queue_id_valid("0123456789abcdef"));
    assert_false(queue_id_valid("0123456789ABCDEG"));
    assert_false(queue_id_valid("../../etc/passwd"));
    assert_false(queue_id_valid("0123456789ABCDE."));
    assert_false(queue_id_valid("0123456789ABCDE "));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_hostile),
        cmocka_unit_test(test_round_trip_minimal),
        cmocka_unit_test(test_write_cap),
        cmocka_unit_test(test_data_offset),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_valid_reference),
        cmocka_unit_test(test_garbled),
        cmocka_unit_test(test_raw_controls_refused),
        cmocka_unit_test(test_apply_state),
        cmocka_unit_test(test_rcpt_helpers),
        cmocka_unit_test(test_queue_id_new),
        cmocka_unit_test(test_queue_id_valid),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
