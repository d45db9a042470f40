/*
 * dsn_build (RFC 3464, 6522, 3461 6.2-6.3, 3834). Each output goes through
 * a small checker: CRLF-only lines of at most 998 octets, the top-level
 * header, the multipart/report structure (preamble, three parts, closing
 * delimiter) and the delivery-status field groups.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs these first, in this order */
// clang-format off
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
// clang-format on

#include "delivery/dsn.h"
#include "smtp/smtp_command.h"

#define ORIGINAL                                                                                   \
    "Received: from client.example.com\r\n"                                                        \
    "From: Alice <alice@example.com>\r\n"                                                          \
    "Subject: hello\r\n"                                                                           \
    "Message-ID: <m1@example.com>\r\n"                                                             \
    "\r\n"                                                                                         \
    "Body line one.\r\n"                                                                           \
    "Body line two.\r\n"
#define ORIGINAL_HEADER_LEN                                                                        \
    (sizeof(ORIGINAL) - 1 - sizeof("\r\nBody line one.\r\nBody line two.\r\n") + 1)

static struct buf out;
static struct dsn_rcpt rcpts[4];
static struct dsn_report rep;

/* ---- the checker ---- */

struct part {
    struct str head, body;
};

struct parsed {
    struct str head; /* top-level header section, with its final CRLF */
    struct str body;
    char boundary[80];
    struct str preamble;
    struct part parts[8];
    size_t nparts;
};

static struct str
slice(struct str s, size_t from, size_t to)
{
    return str_make(s.ptr + from, to - from);
}

static bool
has(struct str hay, const char *needle)
{
    size_t n = strlen(needle);

    return hay.len >= n && memmem(hay.ptr, hay.len, needle, n) != NULL;
}

/* Every line ends with CRLF, no bare CR or LF, none longer than 998. */
static void
check_lines(struct str s)
{
    size_t start = 0;

    assert_true(s.len >= 2);
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] == '\r') {
            if (i + 1 >= s.len || s.ptr[i + 1] != '\n')
                fail_msg("bare CR at %zu", i);
            if (i - start > 998)
                fail_msg("line of %zu octets at %zu", i - start, start);
            i++;
            start = i + 1;
        } else if (s.ptr[i] == '\n')
            fail_msg("bare LF at %zu", i);
    }
    assert_int_equal(start, s.len); /* ends with CRLF */
}

/* Splits at the first empty line; the head keeps the CRLF of its last line. */
static void
split_head(struct str s, struct str *head, struct str *body)
{
    const char *p;

    if (s.len >= 2 && memcmp(s.ptr, "\r\n", 2) == 0) {
        *head = slice(s, 0, 0);
        *body = slice(s, 2, s.len);
        return;
    }
    p = memmem(s.ptr, s.len, "\r\n\r\n", 4);
    assert_non_null(p);
    *head = slice(s, 0, (size_t)(p - s.ptr) + 2);
    *body = slice(s, (size_t)(p - s.ptr) + 4, s.len);
}

/* How many fields named name the header section holds; the last one's
 * value, unfolded (CRLFs removed) and without the space after the colon. */
static int
field(struct str head, const char *name, char *val, size_t vsize)
{
    size_t pos = 0, nlen = strlen(name);
    int count = 0;

    while (pos < head.len) {
        const char *eol = memmem(head.ptr + pos, head.len - pos, "\r\n", 2);
        size_t end = eol ? (size_t)(eol - head.ptr) : head.len;

        if (end - pos > nlen && strncasecmp(head.ptr + pos, name, nlen) == 0 &&
            head.ptr[pos + nlen] == ':') {
            size_t v = 0, i = pos + nlen + 1;

            count++;
            if (i < head.len && head.ptr[i] == ' ')
                i++;
            for (; i < head.len; i++) {
                if (head.ptr[i] == '\r' && i + 2 < head.len &&
                    (head.ptr[i + 2] == ' ' || head.ptr[i + 2] == '\t')) {
                    i++; /* unfold: drop CRLF, keep the WSP */
                    continue;
                }
                if (head.ptr[i] == '\r')
                    break;
                if (v + 1 < vsize)
                    val[v++] = head.ptr[i];
            }
            val[v] = '\0';
        }
        pos = end + 2;
    }
    return count;
}

/* The names of the fields in a header section, "|"-joined, in order;
 * fails on a line that is neither a field nor a continuation. */
static void
field_names(struct str head, char *names, size_t size)
{
    size_t pos = 0;

    names[0] = '\0';
    while (pos < head.len) {
        const char *eol = memmem(head.ptr + pos, head.len - pos, "\r\n", 2);
        size_t end = eol ? (size_t)(eol - head.ptr) : head.len;
        const char *colon = memchr(head.ptr + pos, ':', end - pos);

        if (head.ptr[pos] != ' ' && head.ptr[pos] != '\t') {
            if (colon == NULL)
                fail_msg("not a field: %.*s", (int)(end - pos), head.ptr + pos);
            if (names[0] != '\0')
                strncat(names, "|", size - strlen(names) - 1);
            strncat(names, head.ptr + pos,
                    (size_t)(colon - (head.ptr + pos)) < size - strlen(names) - 1
                        ? (size_t)(colon - (head.ptr + pos))
                        : size - strlen(names) - 1);
        }
        pos = end + 2;
    }
}

static bool
line_equals(struct str s, size_t pos, size_t end, const char *want)
{
    return end - pos == strlen(want) && memcmp(s.ptr + pos, want, end - pos) == 0;
}

static void
parse_boundary(struct parsed *p)
{
    char ct[2048];
    const char *b, *q;

    assert_int_equal(field(p->head, "Content-Type", ct, sizeof(ct)), 1);
    if (strncmp(ct, "multipart/report; report-type=delivery-status;", 46) != 0)
        fail_msg("Content-Type: %s", ct);
    b = strstr(ct, "boundary=\"");
    assert_non_null(b);
    b += 10;
    q = strchr(b, '"');
    assert_non_null(q);
    assert_true(q > b && q - b <= 70); /* RFC 2046 5.1.1 */
    memcpy(p->boundary, b, (size_t)(q - b));
    p->boundary[q - b] = '\0';
}

/* Splits the body at delimiter lines; the CRLF before one belongs to it. */
static void
parse_parts(struct parsed *p)
{
    char delim[90], close[92];
    size_t pos = 0, part_start = 0;
    bool in_part = false, closed = false;

    snprintf(delim, sizeof(delim), "--%s", p->boundary);
    snprintf(close, sizeof(close), "--%s--", p->boundary);
    while (pos < p->body.len && !closed) {
        const char *eol = memmem(p->body.ptr + pos, p->body.len - pos, "\r\n", 2);
        size_t end = eol ? (size_t)(eol - p->body.ptr) : p->body.len;
        bool is_delim = line_equals(p->body, pos, end, delim);

        closed = line_equals(p->body, pos, end, close);
        if (is_delim || closed) {
            size_t stop = pos >= 2 ? pos - 2 : 0;

            if (!in_part)
                p->preamble = slice(p->body, 0, stop);
            else {
                assert_true(p->nparts < 8);
                split_head(slice(p->body, part_start, stop), &p->parts[p->nparts].head,
                           &p->parts[p->nparts].body);
                p->nparts++;
            }
            in_part = true;
            part_start = end + 2;
        }
        pos = end + 2;
    }
    assert_true(closed);
    assert_int_equal(pos, p->body.len); /* nothing after the close delimiter */
}

static void
parse(struct parsed *p)
{
    struct str s = buf_str(&out);

    memset(p, 0, sizeof(*p));
    check_lines(s);
    split_head(s, &p->head, &p->body);
    parse_boundary(p);
    parse_parts(p);
    assert_true(p->preamble.len > 0);
    assert_int_equal(p->nparts, 3);
    /* the boundary appears only in its delimiter lines */
    for (size_t i = 0; i < p->nparts; i++) {
        assert_false(has(p->parts[i].head, p->boundary));
        assert_false(has(p->parts[i].body, p->boundary));
    }
    assert_false(has(p->preamble, p->boundary));
}

static void
expect_field(struct str head, const char *name, const char *want)
{
    char val[4096];
    int n = field(head, name, val, sizeof(val));

    if (n != 1)
        fail_msg("%s: %d fields, want 1", name, n);
    if (strcmp(val, want) != 0)
        fail_msg("%s: '%s', want '%s'", name, val, want);
}

static void
expect_no_field(struct str head, const char *name)
{
    char val[16];

    if (field(head, name, val, sizeof(val)) != 0)
        fail_msg("unexpected field %s", name);
}

static void
expect_part_type(const struct parsed *p, size_t i, const char *type)
{
    expect_field(p->parts[i].head, "Content-Type", type);
}

/* The delivery-status body as groups of fields, split at empty lines. */
static size_t
status_groups(const struct parsed *p, struct str *groups, size_t max)
{
    struct str b = p->parts[1].body;
    size_t n = 0, pos = 0;

    while (pos < b.len) {
        const char *sep = memmem(b.ptr + pos, b.len - pos, "\r\n\r\n", 4);
        size_t end = sep ? (size_t)(sep - b.ptr) + 2 : b.len;

        assert_true(n < max);
        groups[n++] = slice(b, pos, end);
        pos = sep ? end + 2 : b.len;
    }
    return n;
}

static void
expect_names(struct str head, const char *want)
{
    char names[1024];

    field_names(head, names, sizeof(names));
    if (strcmp(names, want) != 0)
        fail_msg("fields '%s', want '%s'", names, want);
}

/* ---- fixtures ---- */

static int
setup(void **state)
{
    (void)state;
    buf_init(&out, 1u << 22);
    memset(rcpts, 0, sizeof(rcpts));
    rcpts[0] = (struct dsn_rcpt){
        .address = "bob@example.net",
        .orcpt = "rfc822;bob@example.net",
        .action = "failed",
        .status = "5.1.1",
        .remote_mta = "mx.example.net",
        .diagnostic = "550 5.1.1 no such user",
        .last_attempt = 1700000000,
        .will_retry_until = 0,
    };
    rep = (struct dsn_report){
        .kind = DSN_FAILURE,
        .reporting_mta = "mx.example.org",
        .sender = "alice@example.com",
        .envid = "",
        .arrival = 1699990000,
        .ret = SMTP_RET_NONE,
        .message = ORIGINAL,
        .message_len = sizeof(ORIGINAL) - 1,
        .rcpts = rcpts,
        .nrcpts = 1,
        .now = 1700000000,
        .unique = "Q1A2B3C",
    };
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    buf_free(&out);
    return 0;
}

static void
build(struct parsed *p)
{
    assert_int_equal(dsn_build(&rep, &out), 0);
    parse(p);
}

/* ---- tests ---- */

static void
test_failure_header(void **state)
{
    struct parsed p;

    (void)state;
    build(&p);
    expect_names(p.head, "From|To|Subject|Date|Message-ID|Auto-Submitted|MIME-Version|"
                         "Content-Type");
    expect_field(p.head, "From", "Mail Delivery System <MAILER-DAEMON@mx.example.org>");
    expect_field(p.head, "To", "<alice@example.com>");
    expect_field(p.head, "Subject", "Undelivered Mail Returned to Sender");
    expect_field(p.head, "Date", "Tue, 14 Nov 2023 22:13:20 +0000");
    expect_field(p.head, "Message-ID", "<Q1A2B3C.1700000000@mx.example.org>");
    expect_field(p.head, "Auto-Submitted", "auto-replied");
    expect_field(p.head, "MIME-Version", "1.0");
    assert_false(has(p.head, "Content-Transfer-Encoding"));
}

static void
test_failure_structure(void **state)
{
    struct parsed p;

    (void)state;
    build(&p);
    expect_part_type(&p, 0, "text/plain; charset=us-ascii");
    expect_part_type(&p, 1, "message/delivery-status");
    expect_part_type(&p, 2, "text/rfc822-headers"); /* no RET: headers only */
    assert_true(has(p.parts[0].body, "This is the mail system at host mx.example.org."));
    assert_true(has(p.parts[0].body, "<bob@example.net>: failed, status 5.1.1\r\n"));
    assert_true(
        has(p.parts[0].body, "Remote host mx.example.net said: 550 5.1.1 no such user\r\n"));
    assert_true(has(p.parts[0].body, "The header of the message is attached."));
}

static void
test_status_fields(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rep.envid = "QQ314159";
    build(&p);
    assert_int_equal(status_groups(&p, g, 8), 2);
    expect_names(g[0], "Original-Envelope-Id|Reporting-MTA|Arrival-Date");
    expect_field(g[0], "Original-Envelope-Id", "QQ314159");
    expect_field(g[0], "Reporting-MTA", "dns; mx.example.org");
    expect_field(g[0], "Arrival-Date", "Tue, 14 Nov 2023 19:26:40 +0000");
    expect_names(g[1], "Original-Recipient|Final-Recipient|Action|Status|Remote-MTA|"
                       "Diagnostic-Code|Last-Attempt-Date");
    expect_field(g[1], "Original-Recipient", "rfc822;bob@example.net");
    expect_field(g[1], "Final-Recipient", "rfc822; bob@example.net");
    expect_field(g[1], "Action", "failed");
    expect_field(g[1], "Status", "5.1.1");
    expect_field(g[1], "Remote-MTA", "dns; mx.example.net");
    expect_field(g[1], "Diagnostic-Code", "smtp; 550 5.1.1 no such user");
    expect_field(g[1], "Last-Attempt-Date", "Tue, 14 Nov 2023 22:13:20 +0000");
}

static void
test_ret_full(void **state)
{
    struct parsed p;

    (void)state;
    rep.ret = SMTP_RET_FULL;
    build(&p);
    expect_part_type(&p, 2, "message/rfc822");
    expect_field(p.parts[2].head, "Content-Description", "Undelivered Message");
    assert_int_equal(p.parts[2].body.len, sizeof(ORIGINAL) - 1);
    assert_memory_equal(p.parts[2].body.ptr, ORIGINAL, sizeof(ORIGINAL) - 1);
    assert_true(has(p.parts[0].body, "A copy of the message is attached."));
}

static void
test_ret_hdrs_and_none(void **state)
{
    static const int rets[] = {SMTP_RET_HDRS, SMTP_RET_NONE};
    struct parsed p;

    (void)state;
    for (size_t i = 0; i < 2; i++) {
        buf_reset(&out);
        rep.ret = rets[i];
        build(&p);
        expect_part_type(&p, 2, "text/rfc822-headers");
        assert_int_equal(p.parts[2].body.len, ORIGINAL_HEADER_LEN);
        assert_memory_equal(p.parts[2].body.ptr, ORIGINAL, ORIGINAL_HEADER_LEN);
        assert_false(has(buf_str(&out), "Body line"));
    }
}

static void
test_delay(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rep.kind = DSN_DELAY;
    rep.ret = SMTP_RET_FULL; /* RFC 3461 6.2: no failure reported, headers only */
    rcpts[0].action = "delayed";
    rcpts[0].status = "4.4.1";
    rcpts[0].diagnostic = "421 4.4.1 try later";
    rcpts[0].will_retry_until = 1700400000;
    build(&p);
    expect_field(p.head, "Subject", "Delayed Mail (still being retried)");
    expect_part_type(&p, 2, "text/rfc822-headers");
    assert_false(has(buf_str(&out), "Body line"));
    assert_int_equal(status_groups(&p, g, 8), 2);
    expect_field(g[1], "Action", "delayed");
    expect_field(g[1], "Status", "4.4.1");
    expect_field(g[1], "Will-Retry-Until", "Sun, 19 Nov 2023 13:20:00 +0000");
    assert_true(has(p.parts[0].body, "Will retry until: Sun, 19 Nov 2023 13:20:00 +0000"));
}

static void
test_success(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rep.kind = DSN_SUCCESS;
    rep.ret = SMTP_RET_FULL;
    rcpts[0].action = "delivered";
    rcpts[0].status = "2.0.0";
    rcpts[0].diagnostic = "250 2.0.0 ok";
    rcpts[0].will_retry_until = 1700400000; /* RFC 3464 2.3.9: not in a success */
    build(&p);
    expect_field(p.head, "Subject", "Successful Mail Delivery Report");
    expect_part_type(&p, 2, "text/rfc822-headers");
    assert_false(has(buf_str(&out), "Body line"));
    status_groups(&p, g, 8);
    expect_field(g[1], "Action", "delivered");
    expect_no_field(g[1], "Will-Retry-Until");
}

static void
test_hostile_values(void **state)
{
    struct str g[8];
    struct parsed p;
    char val[1024];

    (void)state;
    rep.sender = "alice@example.com>\r\nBcc: victim@example.org\r\nX-A: <x";
    rep.reporting_mta = "mx.example.org\r\nX-Host: evil";
    rcpts[0].address = "bob@example.net\r\nX-Addr: 1";
    rcpts[0].remote_mta = "mx\r\nX-Mta: 1";
    rcpts[0].diagnostic = "550 bad\r\nX-Injected: yes\r\n\r\nContent-Type: text/html\r\n\r\n"
                          "--=_Q1A2B3C.1700000000\r\n\x01\x7f\x1b[0m";
    rcpts[0].orcpt = "rfc822;x\r\nX-Orcpt: 1";
    build(&p);
    expect_names(p.head, "From|To|Subject|Date|Message-ID|Auto-Submitted|MIME-Version|"
                         "Content-Type");
    expect_field(p.head, "From",
                 "Mail Delivery System <MAILER-DAEMON@mx.example.org--X-Host--evil>");
    expect_field(p.head, "To", "<alice@example.com> Bcc: victim@example.org X-A: <x>");
    assert_int_equal(status_groups(&p, g, 8), 2);
    expect_names(g[1], "Original-Recipient|Final-Recipient|Action|Status|Remote-MTA|"
                       "Diagnostic-Code|Last-Attempt-Date");
    field(g[1], "Diagnostic-Code", val, sizeof(val));
    assert_string_equal(val, "smtp; 550 bad X-Injected: yes Content-Type: text/html "
                             "--=_Q1A2B3C.1700000000 [0m");
    expect_field(g[1], "Final-Recipient", "rfc822; bob@example.net X-Addr: 1");
    assert_false(has(buf_str(&out), "\nX-"));
}

static void
test_xtext_decoded(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rep.envid = "ab+2Bcd+0D+0AX-Evil:+20x+zz+";
    rcpts[0].orcpt = "rfc822;bob+2Btag@example.net";
    build(&p);
    status_groups(&p, g, 8);
    expect_field(g[0], "Original-Envelope-Id", "ab+cd X-Evil: x+zz+");
    expect_field(g[1], "Original-Recipient", "rfc822;bob+tag@example.net");
    buf_reset(&out);
    rcpts[0].orcpt = "no-semicolon";
    build(&p);
    status_groups(&p, g, 8);
    expect_field(g[1], "Original-Recipient", "unknown;no-semicolon");
}

static void
test_optional_fields_omitted(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rep.envid = NULL;
    rep.arrival = 0;
    rcpts[0].orcpt = "";
    rcpts[0].remote_mta = NULL;
    rcpts[0].diagnostic = "";
    rcpts[0].last_attempt = 0;
    build(&p);
    assert_int_equal(status_groups(&p, g, 8), 2);
    expect_names(g[0], "Reporting-MTA");
    expect_names(g[1], "Final-Recipient|Action|Status");
    /* the Reporting MTA's own diagnostic, without Remote-MTA */
    buf_reset(&out);
    rcpts[0].diagnostic = "550 5.1.1 mailbox unknown";
    build(&p);
    status_groups(&p, g, 8);
    expect_names(g[1], "Final-Recipient|Action|Status|Diagnostic-Code");
    assert_true(has(p.parts[0].body, "    Reason: 550 5.1.1 mailbox unknown\r\n"));
}

static void
test_bare_lf_original(void **state)
{
    static const char lf[] = "From: a@example.com\nSubject: lf\r\n\nline\rcr\n\nlast";
    static const char crlf[] = "From: a@example.com\r\nSubject: lf\r\n\r\nline\r\ncr\r\n\r\n"
                               "last\r\n";
    struct parsed p;

    (void)state;
    rep.message = lf;
    rep.message_len = sizeof(lf) - 1;
    rep.ret = SMTP_RET_FULL;
    build(&p);
    assert_int_equal(p.parts[2].body.len, sizeof(crlf) - 1);
    assert_memory_equal(p.parts[2].body.ptr, crlf, sizeof(crlf) - 1);
    buf_reset(&out);
    rep.ret = SMTP_RET_HDRS;
    build(&p);
    assert_int_equal(p.parts[2].body.len, 34);
    assert_memory_equal(p.parts[2].body.ptr, crlf, 34);
}

static char *
repeat(const char *unit, size_t times)
{
    size_t n = strlen(unit);
    char *s = malloc(n * times + 1);

    assert_non_null(s);
    for (size_t i = 0; i < times; i++)
        memcpy(s + i * n, unit, n);
    s[n * times] = '\0';
    return s;
}

static void
test_long_values(void **state)
{
    char *word = repeat("x", 5000), *words = repeat("abc defgh ", 300), *addr = repeat("a", 1500);
    struct str g[8];
    struct parsed p;
    char *val = malloc(8192);

    (void)state;
    assert_non_null(val);
    rcpts[0].diagnostic = words;
    rcpts[0].address = addr;
    build(&p); /* checks every line <= 998 */
    status_groups(&p, g, 8);
    field(g[1], "Diagnostic-Code", val, 8192);
    assert_int_equal(strlen(val), strlen("smtp; ") + strlen(words) - 1); /* trailing space */
    assert_memory_equal(val + 6, words, strlen(words) - 1);
    /* words fold before column 78 */
    for (const char *l = g[1].ptr; l < g[1].ptr + g[1].len;) {
        const char *e = memmem(l, (size_t)(g[1].ptr + g[1].len - l), "\r\n", 2);

        if (strncmp(l, "Final-Recipient", 15) != 0 && strncmp(l, " aaaa", 5) != 0)
            assert_true(e - l <= 78);
        l = e + 2;
    }
    buf_reset(&out);
    rcpts[0].diagnostic = word;
    build(&p);
    status_groups(&p, g, 8);
    assert_int_equal(field(g[1], "Diagnostic-Code", val, 8192), 1);
    free(word);
    free(words);
    free(addr);
    free(val);
}

static void
test_long_original_lines(void **state)
{
    char *hdr = repeat("h", 3000), *body = repeat("b", 3000);
    char *msg = malloc(7000);
    struct parsed p;
    struct str h, b;
    char names[1024];

    (void)state;
    assert_non_null(msg);
    snprintf(msg, 7000, "X-Long: %s\r\nSubject: s\r\n\r\n%s\r\n", hdr, body);
    rep.message = msg;
    rep.message_len = strlen(msg);
    rep.ret = SMTP_RET_FULL;
    build(&p);
    /* the long field goes on as continuation lines, the body line is split */
    split_head(p.parts[2].body, &h, &b);
    field_names(h, names, sizeof(names));
    assert_string_equal(names, "X-Long|Subject");
    assert_int_equal(b.len, 3000 + 4 * 2); /* 998 + 998 + 998 + 6, each ended CRLF */
    free(hdr);
    free(body);
    free(msg);
}

static void
test_boundary_collision(void **state)
{
    struct parsed p;
    char first[80], *msg = malloc(4096);

    (void)state;
    assert_non_null(msg);
    build(&p);
    snprintf(first, sizeof(first), "%s", p.boundary);
    assert_string_equal(first, "=_Q1A2B3C.1700000000");
    /* the original holds the boundary we would pick: another is chosen */
    snprintf(msg, 4096, "Subject: x\r\n\r\n--%s\r\nContent-Type: text/plain\r\n\r\n--%s--\r\n",
             first, first);
    rep.message = msg;
    rep.message_len = strlen(msg);
    rep.ret = SMTP_RET_FULL;
    buf_reset(&out);
    build(&p);
    assert_string_not_equal(p.boundary, first);
    assert_false(has(str_cstr(msg), p.boundary));
    /* so does a remote diagnostic */
    rep.message = ORIGINAL;
    rep.message_len = sizeof(ORIGINAL) - 1;
    rcpts[0].diagnostic = "550 --=_Q1A2B3C.1700000000";
    buf_reset(&out);
    build(&p);
    assert_string_not_equal(p.boundary, first);
    free(msg);
}

static void
test_cap(void **state)
{
    char *big = malloc(300000);
    struct parsed p;

    (void)state;
    buf_free(&out);
    buf_init(&out, 300);
    assert_int_equal(buf_append(&out, "keep", 4), 0);
    assert_int_equal(dsn_build(&rep, &out), -1);
    assert_int_equal(out.len, 4); /* left as it was */
    assert_string_equal(out.data, "keep");
    /* RET=FULL of a message too big for out: the header is returned instead */
    assert_non_null(big);
    snprintf(big, 300000, "Subject: big\r\n\r\n");
    memset(big + 16, 'y', 200000);
    memcpy(big + 200016, "\r\n", 3);
    buf_free(&out);
    buf_init(&out, 100000);
    rep.message = big;
    rep.message_len = strlen(big);
    rep.ret = SMTP_RET_FULL;
    build(&p);
    expect_part_type(&p, 2, "text/rfc822-headers");
    assert_true(has(p.parts[0].body, "The header of the message is attached."));
    free(big);
}

static void
test_refused(void **state)
{
    (void)state;
    rep.sender = "";
    assert_int_equal(dsn_build(&rep, &out), -1);
    rep.sender = NULL;
    assert_int_equal(dsn_build(&rep, &out), -1);
    rep.sender = "alice@example.com";
    rep.nrcpts = 0;
    assert_int_equal(dsn_build(&rep, &out), -1);
    assert_int_equal(out.len, 0);
}

static void
test_eightbit(void **state)
{
    static const char msg[] = "Subject: caf\xc3\xa9\r\n\r\nna\xc3\xafve\r\n";
    struct str g[8];
    struct parsed p;

    (void)state;
    rep.message = msg;
    rep.message_len = sizeof(msg) - 1;
    rep.ret = SMTP_RET_FULL;
    rcpts[0].diagnostic = "550 \xc3\xa9t\xc3\xa9";
    build(&p);
    expect_field(p.head, "Content-Transfer-Encoding", "8bit");
    expect_field(p.parts[2].head, "Content-Transfer-Encoding", "8bit");
    assert_memory_equal(p.parts[2].body.ptr, msg, sizeof(msg) - 1);
    status_groups(&p, g, 8);
    expect_field(g[1], "Diagnostic-Code", "smtp; 550 ??t??"); /* delivery-status is 7bit */
    for (size_t i = 0; i < 2; i++)
        for (size_t k = 0; k < p.parts[i].body.len; k++)
            assert_true((unsigned char)p.parts[i].body.ptr[k] < 0x80);
}

static void
test_several_recipients(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rcpts[1] = rcpts[0];
    rcpts[1].address = "carol@example.net";
    rcpts[1].orcpt = "";
    rcpts[1].status = "5.2.2";
    rcpts[1].diagnostic = "552-5.2.2 mailbox full\r\n552 5.2.2 try another";
    rcpts[2] = rcpts[0];
    rcpts[2].address = "dave@example.net";
    rep.nrcpts = 3;
    build(&p);
    assert_int_equal(status_groups(&p, g, 8), 4);
    expect_field(g[1], "Final-Recipient", "rfc822; bob@example.net");
    expect_field(g[2], "Final-Recipient", "rfc822; carol@example.net");
    expect_no_field(g[2], "Original-Recipient");
    expect_field(g[2], "Diagnostic-Code", "smtp; 552-5.2.2 mailbox full 552 5.2.2 try another");
    expect_field(g[3], "Final-Recipient", "rfc822; dave@example.net");
    assert_true(has(p.parts[0].body, "<carol@example.net>: failed, status 5.2.2"));
    assert_true(has(p.parts[0].body, "<dave@example.net>: failed, status 5.1.1"));
}

static void
test_action_status_checked(void **state)
{
    struct str g[8];
    struct parsed p;

    (void)state;
    rcpts[0].action = "FAILED";
    rcpts[1] = rcpts[0];
    rcpts[1].action = "bogus\r\nX: y";
    rcpts[1].status = "5.01.1";
    rcpts[2] = rcpts[0];
    rcpts[2].action = "relayed";
    rcpts[2].status = NULL;
    rcpts[3] = rcpts[0];
    rcpts[3].status = "4.4.7 (comment)";
    rep.nrcpts = 4;
    build(&p);
    assert_int_equal(status_groups(&p, g, 8), 5);
    expect_field(g[1], "Action", "failed");
    expect_field(g[2], "Action", "failed");
    expect_field(g[2], "Status", "5.0.0");
    expect_field(g[3], "Action", "relayed");
    expect_field(g[3], "Status", "2.0.0");
    expect_field(g[4], "Status", "5.0.0");
}

static void
test_header_section_edges(void **state)
{
    static const char nobody[] = "Subject: no body\r\nX-A: 1";
    static const char nohead[] = "\r\nbody only\r\n";
    struct parsed p;

    (void)state;
    rep.message = nobody;
    rep.message_len = sizeof(nobody) - 1;
    build(&p);
    assert_int_equal(p.parts[2].body.len, sizeof(nobody) + 1);
    assert_memory_equal(p.parts[2].body.ptr, "Subject: no body\r\nX-A: 1\r\n", sizeof(nobody) + 1);
    buf_reset(&out);
    rep.message = nohead;
    rep.message_len = sizeof(nohead) - 1;
    build(&p);
    assert_int_equal(p.parts[2].body.len, 0);
    buf_reset(&out);
    rep.message = NULL;
    rep.message_len = 0;
    build(&p);
    assert_int_equal(p.parts[2].body.len, 0);
}

static void
test_appends_to_out(void **state)
{
    (void)state;
    assert_int_equal(buf_append(&out, "X", 1), 0);
    assert_int_equal(dsn_build(&rep, &out), 0);
    assert_int_equal(out.data[0], 'X');
    assert_memory_equal(out.data + 1, "From: ", 6);
}

static void
test_dates_and_ids(void **state)
{
    struct parsed p;

    (void)state;
    rep.now = -5;
    rep.unique = "q/1 <x>";
    rep.reporting_mta = "";
    build(&p);
    expect_field(p.head, "Date", "Thu, 01 Jan 1970 00:00:00 +0000");
    expect_field(p.head, "Message-ID", "<q-1--x-.-5@localhost>");
    buf_reset(&out);
    rep.now = INT64_MAX;
    rep.unique = NULL;
    build(&p);
    expect_field(p.head, "Date", "Fri, 31 Dec 9999 23:59:59 +0000");
    expect_field(p.head, "Message-ID", "<dsn.9223372036854775807@localhost>");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_failure_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_structure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ret_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ret_hdrs_and_none, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_xtext_decoded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_optional_fields_omitted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bare_lf_original, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_original_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_boundary_collision, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eightbit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_several_recipients, setup, teardown),
        cmocka_unit_test_setup_teardown(test_action_status_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_section_edges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_appends_to_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dates_and_ids, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
