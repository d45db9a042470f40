/*
 * DSN builder: RFC 3464 message/delivery-status inside an RFC 6522
 * multipart/report, with the choices of RFC 3461 6.2-6.3. Every value that
 * came from the network (addresses, replies, ENVID, ORCPT, the original
 * message) passes through a cleaner or a line splitter first, so none of it
 * can add a header field, a MIME boundary or a line over 998 octets.
 * Depends on base/ only (and smtp/ for enum smtp_ret).
 */
#include "delivery/dsn.h"

#include "smtp/smtp_command.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define DSN_LINE_MAX 998     /* RFC 5322 2.1.1: MUST, octets before CRLF */
#define DSN_LINE_WANT 78     /* RFC 5322 2.1.1: SHOULD */
#define DSN_HOST_MAX 255     /* RFC 5321 4.5.3.1.2 */
#define DSN_UNIQUE_MAX 24    /* keeps the boundary under 70 (RFC 2046 5.1.1) */
#define DSN_BOUNDARY_SIZE 72 /* "=_" unique "." 20 digits or 16 hex, NUL */
#define DSN_BOUNDARY_TRIES 64
#define DSN_DATE_SIZE 40

/*
 * Output with a sticky error: once an append is refused (out's cap) every
 * later one is a no-op, so the writers below check once, at the end.
 */
struct out {
    struct buf *b;
    bool full;
};

static void
put(struct out *o, const void *p, size_t n)
{
    if (!o->full && buf_append(o->b, p, n) < 0)
        o->full = true;
}

static void
put_cstr(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static struct str
str_or_empty(const char *s)
{
    return s != NULL ? str_cstr(s) : STR_LIT("");
}

/*
 * A logical line (a header field or a sentence) folded as it is written.
 * Fed bytes are cleaned: controls (CR and LF included), TAB and DEL become
 * spaces, runs of spaces collapse, ends are trimmed, and octets above 0x7e
 * become '?' because delivery-status is 7bit (RFC 3464 2.1) and the text
 * part is us-ascii. XXX: RFC 6533 would carry UTF-8 addresses instead.
 * The line is folded before a word that would pass column 78, and a word
 * longer than a line is split so that no line passes 998.
 */
struct line {
    struct out *o;
    const char *indent; /* starts each continuation line */
    size_t col;         /* octets on the current output line */
    size_t words;       /* words on the current output line */
    size_t keep;        /* words the first line keeps before any fold */
    bool space;         /* a space is pending before the next word */
    size_t wlen;
    char word[DSN_LINE_MAX];
};

/* lead is written as is; keep is 2 for "Name: value" so a field name never
 * ends up alone on its line. */
static void
line_start(struct line *l, struct out *o, const char *lead, const char *indent, size_t keep)
{
    l->o = o;
    l->indent = indent;
    l->col = strlen(lead);
    l->words = 0;
    l->keep = keep;
    l->space = false;
    l->wlen = 0;
    put_cstr(o, lead);
}

static void
line_break(struct line *l)
{
    put(l->o, "\r\n", 2);
    put_cstr(l->o, l->indent);
    l->col = strlen(l->indent);
    l->words = 0;
    l->keep = 1;
}

/* Writes the word in hand, folding before it or splitting it as needed. */
static void
line_flush(struct line *l)
{
    const char *p = l->word;
    size_t n = l->wlen;

    if (n == 0)
        return;
    if (l->space && l->words >= l->keep && l->col + 1 + n > DSN_LINE_WANT)
        line_break(l);
    else if (l->space) {
        put(l->o, " ", 1);
        l->col++;
    }
    l->space = false;
    while (l->col + n > DSN_LINE_MAX) {
        size_t room = DSN_LINE_MAX - l->col;

        put(l->o, p, room);
        p += room;
        n -= room;
        line_break(l);
    }
    put(l->o, p, n);
    l->col += n;
    l->words++;
    l->wlen = 0;
}

static void
line_feed_char(struct line *l, unsigned char c)
{
    if (c <= ' ' || c == 0x7f) {
        line_flush(l);
        l->space = l->words > 0; /* leading spaces are dropped */
        return;
    }
    if (c > 0x7e)
        c = '?';
    if (l->wlen == sizeof(l->word))
        line_flush(l); /* an over-long word: flushed whole, split above */
    l->word[l->wlen++] = (char)c;
}

static void
line_feed(struct line *l, struct str s)
{
    for (size_t i = 0; i < s.len; i++)
        line_feed_char(l, (unsigned char)s.ptr[i]);
}

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* RFC 3461 4: xtext "+XX" is one octet. A "+" without two hex digits is
 * kept as it is: the value is shown, not parsed. */
static void
line_feed_xtext(struct line *l, struct str s)
{
    for (size_t i = 0; i < s.len; i++) {
        int hi, lo;

        if (s.ptr[i] == '+' && i + 2 < s.len && (hi = hex_value(s.ptr[i + 1])) >= 0 &&
            (lo = hex_value(s.ptr[i + 2])) >= 0) {
            line_feed_char(l, (unsigned char)(hi << 4 | lo));
            i += 2;
        } else
            line_feed_char(l, (unsigned char)s.ptr[i]);
    }
}

static void
line_end(struct line *l)
{
    line_flush(l);
    put(l->o, "\r\n", 2);
}

/* A header or delivery-status field: "Name: " prefix, then a cleaned value. */
static void
put_field(struct out *o, const char *prefix, struct str value)
{
    struct line l;

    line_start(&l, o, "", " ", 2);
    line_feed(&l, str_cstr(prefix));
    line_feed(&l, value);
    line_end(&l);
}

/* RFC 5322 3.3 date-time in UTC; out of range times are clamped. */
static void
format_date(int64_t t, char out[DSN_DATE_SIZE])
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    time_t tt;

    if (t < 0)
        t = 0;
    if (t > 253402300799) /* 9999-12-31T23:59:59Z: the year keeps 4 digits */
        t = 253402300799;
    tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL)
        memset(&tm, 0, sizeof(tm));
    snprintf(out, DSN_DATE_SIZE, "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday % 7],
             tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}

static void
put_date_field(struct out *o, const char *name, int64_t t)
{
    char date[DSN_DATE_SIZE];

    format_date(t, date);
    put_cstr(o, name);
    put_cstr(o, date);
    put(o, "\r\n", 2);
}

/*
 * Copies s into out keeping letters, digits, '.' and '-' and turning
 * anything else into '-': the result is safe as a Message-ID part, a
 * domain and a boundary part. Truncates to max octets; "" gives dflt.
 */
static void
copy_token(const char *s, size_t max, const char *dflt, char *out)
{
    size_t n = 0;

    for (; s != NULL && s[n] != '\0' && n < max; n++) {
        unsigned char c = (unsigned char)s[n];

        out[n] = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '.' || c == '-'
                     ? (char)c
                     : '-';
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, max + 1, "%s", dflt);
}

/* Everything dsn_build derives from the report once. */
struct dsn_ctx {
    const struct dsn_report *r;
    char host[DSN_HOST_MAX + 1];
    char unique[DSN_UNIQUE_MAX + 1];
    struct str orig; /* the whole original message */
    struct str back; /* what part 3 returns: all of orig or its header */
    size_t hdr_len;  /* length of orig's header section */
    bool full;       /* back is the whole message (message/rfc822) */
    bool eightbit;   /* back holds octets that 7bit does not allow */
};

/* One line of m from pos: sets its length without terminator, returns
 * where the next starts. CRLF, a bare LF and a bare CR all end a line. */
static size_t
line_next(struct str m, size_t pos, size_t *len)
{
    size_t i = pos;

    while (i < m.len && m.ptr[i] != '\r' && m.ptr[i] != '\n')
        i++;
    *len = i - pos;
    if (i < m.len && m.ptr[i] == '\r')
        i++;
    if (i < m.len && m.ptr[i] == '\n')
        i++;
    return i;
}

/* RFC 6522 4: the header section ends before the first empty line. */
static size_t
header_section_len(struct str m)
{
    size_t pos = 0, len;

    while (pos < m.len) {
        size_t next = line_next(m, pos, &len);

        if (len == 0)
            return pos;
        pos = next;
    }
    return m.len;
}

static void
ctx_init(struct dsn_ctx *c, const struct dsn_report *r, bool full)
{
    c->r = r;
    copy_token(r->reporting_mta, DSN_HOST_MAX, "localhost", c->host);
    copy_token(r->unique, DSN_UNIQUE_MAX, "dsn", c->unique);
    c->orig = r->message != NULL ? str_make(r->message, r->message_len) : STR_LIT("");
    c->hdr_len = header_section_len(c->orig);
    c->full = full;
    c->back = full ? c->orig : str_make(c->orig.ptr, c->hdr_len);
    /* NUL is not 8bit either; it passes through labelled 8bit. XXX binary */
    c->eightbit = false;
    for (size_t i = 0; i < c->back.len && !c->eightbit; i++)
        c->eightbit = (unsigned char)c->back.ptr[i] >= 0x80 || c->back.ptr[i] == '\0';
}

/* RFC 3464 2.3.3, any case; anything else gets the kind's own action. */
static const char *
rcpt_action(const struct dsn_rcpt *rc, enum dsn_kind kind)
{
    static const char *const known[] = {"failed", "delayed", "delivered", "relayed", "expanded"};

    for (size_t i = 0; rc->action != NULL && i < sizeof(known) / sizeof(known[0]); i++)
        if (strcasecmp(rc->action, known[i]) == 0)
            return known[i];
    return kind == DSN_FAILURE ? "failed" : kind == DSN_DELAY ? "delayed" : "delivered";
}

/* RFC 3464 2.3.4: DIGIT "." 1*3DIGIT "." 1*3DIGIT, no leading zeros. */
static bool
status_valid(const char *s)
{
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    s += 2;
    for (int part = 0; part < 2; part++) {
        size_t n = strspn(s, "0123456789");

        if (n == 0 || n > 3 || (n > 1 && s[0] == '0'))
            return false;
        s += n;
        if (part == 0 && *s++ != '.')
            return false;
    }
    return *s == '\0';
}

/* RFC 3461 6.3 (g): without a usable code, the generic one of its class. */
static const char *
rcpt_status(const struct dsn_rcpt *rc, const char *action)
{
    if (status_valid(rc->status))
        return rc->status;
    if (strcmp(action, "failed") == 0)
        return "5.0.0";
    return strcmp(action, "delayed") == 0 ? "4.0.0" : "2.0.0";
}

/* --- part 1: text/plain for people --- */

static const char *
text_intro(enum dsn_kind kind)
{
    switch (kind) {
    case DSN_FAILURE:
        return "Your message could not be delivered to one or more recipients. The mail system "
               "has given up on them; the reasons are given below.";
    case DSN_DELAY:
        return "Your message has not yet been delivered to one or more recipients. The mail "
               "system will keep trying, so there is no need to send it again; the reasons for "
               "the delay are given below.";
    case DSN_SUCCESS:
        break;
    }
    return "Your message was delivered to the recipients listed below.";
}

static void
put_sentence(struct out *o, const char *lead, const char *a, struct str b, const char *c)
{
    struct line l;

    line_start(&l, o, lead, lead[0] != '\0' ? "        " : "", 1);
    line_feed(&l, str_cstr(a));
    line_feed(&l, b);
    line_feed(&l, str_cstr(c));
    line_end(&l);
}

static void
text_rcpt(struct out *o, const struct dsn_ctx *c, const struct dsn_rcpt *rc)
{
    const char *action = rcpt_action(rc, c->r->kind);
    struct str mta = str_or_empty(rc->remote_mta), diag = str_or_empty(rc->diagnostic);
    char date[DSN_DATE_SIZE];
    struct line l;

    line_start(&l, o, "", "    ", 1);
    line_feed(&l, STR_LIT("<"));
    line_feed(&l, str_or_empty(rc->address));
    line_feed(&l, STR_LIT(">: "));
    line_feed(&l, str_cstr(action));
    line_feed(&l, STR_LIT(", status "));
    line_feed(&l, str_cstr(rcpt_status(rc, action)));
    line_end(&l);
    if (mta.len > 0 && diag.len > 0) {
        line_start(&l, o, "    ", "        ", 1);
        line_feed(&l, STR_LIT("Remote host "));
        line_feed(&l, mta);
        line_feed(&l, STR_LIT(" said: "));
        line_feed(&l, diag);
        line_end(&l);
    } else if (mta.len > 0)
        put_sentence(o, "    ", "Remote host: ", mta, "");
    else if (diag.len > 0)
        put_sentence(o, "    ", "Reason: ", diag, "");
    if (rc->last_attempt != 0) {
        format_date(rc->last_attempt, date);
        put_sentence(o, "    ", "Last attempt: ", str_cstr(date), "");
    }
    if (c->r->kind == DSN_DELAY && rc->will_retry_until != 0) {
        format_date(rc->will_retry_until, date);
        put_sentence(o, "    ", "Will retry until: ", str_cstr(date), "");
    }
}

static void
text_part(struct out *o, const struct dsn_ctx *c)
{
    const char *attached =
        c->full ? "A copy of the message is attached." : "The header of the message is attached.";

    put_sentence(o, "", "This is the mail system at host ", str_cstr(c->host), ".");
    put(o, "\r\n", 2);
    put_sentence(o, "", text_intro(c->r->kind), STR_LIT(""), "");
    put(o, "\r\n", 2);
    put_sentence(o, "", attached, STR_LIT(""), "");
    for (size_t i = 0; i < c->r->nrcpts; i++) {
        put(o, "\r\n", 2);
        text_rcpt(o, c, &c->r->rcpts[i]);
    }
}

/* --- part 2: message/delivery-status (RFC 3464 2.2, 2.3) --- */

/* RFC 3461 6.3 (d), RFC 3464 2.3.1: "addr-type;" and the decoded xtext. */
static void
put_orcpt(struct out *o, struct str orcpt)
{
    const char *semi = memchr(orcpt.ptr, ';', orcpt.len);
    struct line l;

    line_start(&l, o, "", " ", 2);
    line_feed(&l, STR_LIT("Original-Recipient: "));
    if (semi != NULL) {
        line_feed(&l, str_make(orcpt.ptr, (size_t)(semi - orcpt.ptr) + 1));
        orcpt = str_make(semi + 1, orcpt.len - (size_t)(semi - orcpt.ptr) - 1);
    } else
        line_feed(&l, STR_LIT("unknown;"));
    line_feed_xtext(&l, orcpt);
    line_end(&l);
}

static void
status_rcpt(struct out *o, const struct dsn_ctx *c, const struct dsn_rcpt *rc)
{
    const char *action = rcpt_action(rc, c->r->kind);
    struct str orcpt = str_or_empty(rc->orcpt), mta = str_or_empty(rc->remote_mta);
    struct str diag = str_or_empty(rc->diagnostic);

    if (orcpt.len > 0)
        put_orcpt(o, orcpt);
    put_field(o, "Final-Recipient: rfc822; ", str_or_empty(rc->address));
    put_field(o, "Action: ", str_cstr(action));
    put_field(o, "Status: ", str_cstr(rcpt_status(rc, action)));
    if (mta.len > 0) /* RFC 3464 2.3.5: only if one was involved */
        put_field(o, "Remote-MTA: dns; ", mta);
    if (diag.len > 0) /* RFC 3461 9.2: multi-line replies end up on folded lines */
        put_field(o, "Diagnostic-Code: smtp; ", diag);
    if (rc->last_attempt != 0)
        put_date_field(o, "Last-Attempt-Date: ", rc->last_attempt);
    if (c->r->kind == DSN_DELAY && rc->will_retry_until != 0) /* 2.3.9: delays only */
        put_date_field(o, "Will-Retry-Until: ", rc->will_retry_until);
}

static void
status_part(struct out *o, const struct dsn_ctx *c)
{
    struct str envid = str_or_empty(c->r->envid);

    if (envid.len > 0) {
        /* RFC 3461 6.3 (a): the field holds the ENVID with its xtext decoded. */
        struct line l;

        line_start(&l, o, "", " ", 2);
        line_feed(&l, STR_LIT("Original-Envelope-Id: "));
        line_feed_xtext(&l, envid);
        line_end(&l);
    }
    put_cstr(o, "Reporting-MTA: dns; ");
    put_cstr(o, c->host);
    put(o, "\r\n", 2);
    if (c->r->arrival != 0)
        put_date_field(o, "Arrival-Date: ", c->r->arrival);
    for (size_t i = 0; i < c->r->nrcpts; i++) {
        put(o, "\r\n", 2);
        status_rcpt(o, c, &c->r->rcpts[i]);
    }
}

/* --- part 3: the original, or its header section --- */

/*
 * Copies s with every line ended by CRLF and split at 998 octets. A split
 * inside the header section goes on as a folded line, so the rest of a
 * long field can never read as a field of its own.
 */
static void
put_original(struct out *o, struct str s, size_t hdr_len)
{
    size_t pos = 0, len;

    while (pos < s.len) {
        size_t next = line_next(s, pos, &len);
        bool header = pos < hdr_len;
        size_t room = DSN_LINE_MAX;

        while (len > room) {
            put(o, s.ptr + pos, room);
            put_cstr(o, header ? "\r\n " : "\r\n");
            pos += room;
            len -= room;
            room = header ? DSN_LINE_MAX - 1 : DSN_LINE_MAX;
        }
        put(o, s.ptr + pos, len);
        put(o, "\r\n", 2);
        pos = next;
    }
}

/* --- the boundary --- */

static bool
occurs(struct str hay, const char *needle)
{
    size_t n = strlen(needle);

    return hay.len >= n && memmem(hay.ptr, hay.len, needle, n) != NULL;
}

static uint64_t
hash_bytes(uint64_t h, struct str s)
{
    for (size_t i = 0; i < s.len; i++)
        h = (h ^ (unsigned char)s.ptr[i]) * 0x100000001b3ULL; /* FNV-1a */
    return h;
}

static uint64_t
mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL; /* splitmix64 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/*
 * "=_" cannot occur in quoted-printable or base64, so the first candidate,
 * from unique and now, rarely needs a second. If it occurs in the original
 * or in parts 1-2 (diagnostics are remote text), the next candidates hash
 * the content itself, which a sender cannot arrange to contain in advance.
 */
static int
boundary_choose(const struct dsn_ctx *c, struct str parts, char b[DSN_BOUNDARY_SIZE])
{
    uint64_t h = 0;

    snprintf(b, DSN_BOUNDARY_SIZE, "=_%s.%lld", c->unique, (long long)c->r->now);
    for (unsigned k = 1; k <= DSN_BOUNDARY_TRIES; k++) {
        if (!occurs(c->orig, b) && !occurs(parts, b))
            return 0;
        if (k == 1)
            h = hash_bytes(hash_bytes(0xcbf29ce484222325ULL, c->orig), parts);
        snprintf(b, DSN_BOUNDARY_SIZE, "=_%s.%016llx", c->unique, (unsigned long long)mix64(h + k));
    }
    return -1;
}

/* --- the whole message --- */

static const char *
subject(enum dsn_kind kind)
{
    switch (kind) {
    case DSN_FAILURE:
        return "Undelivered Mail Returned to Sender";
    case DSN_DELAY:
        return "Delayed Mail (still being retried)";
    case DSN_SUCCESS:
        break;
    }
    return "Successful Mail Delivery Report";
}

static void
put_header(struct out *o, const struct dsn_ctx *c, const char *boundary)
{
    struct line l;

    put_cstr(o, "From: Mail Delivery System <MAILER-DAEMON@");
    put_cstr(o, c->host);
    put_cstr(o, ">\r\n");
    line_start(&l, o, "To: <", " ", 1);
    line_feed(&l, str_or_empty(c->r->sender));
    line_feed(&l, STR_LIT(">"));
    line_end(&l);
    put_cstr(o, "Subject: ");
    put_cstr(o, subject(c->r->kind));
    put(o, "\r\n", 2);
    put_date_field(o, "Date: ", c->r->now);
    put_cstr(o, "Message-ID: <");
    put_cstr(o, c->unique);
    if (!o->full && buf_printf(o->b, ".%lld@", (long long)c->r->now) < 0)
        o->full = true;
    put_cstr(o, c->host);
    put_cstr(o, ">\r\n");
    put_cstr(o, "Auto-Submitted: auto-replied\r\n"); /* RFC 3834 5.2: MAY on DSNs */
    put_cstr(o, "MIME-Version: 1.0\r\n");
    put_cstr(o, "Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"");
    put_cstr(o, boundary);
    put_cstr(o, "\"\r\n");
    if (c->eightbit) /* RFC 2045 6.4: a multipart is labelled as its widest part */
        put_cstr(o, "Content-Transfer-Encoding: 8bit\r\n");
    put(o, "\r\n", 2);
}

static void
put_delimiter(struct out *o, const char *boundary, const char *type, const char *desc)
{
    put_cstr(o, "\r\n--"); /* the CRLF before a delimiter is part of it */
    put_cstr(o, boundary);
    put_cstr(o, "\r\nContent-Type: ");
    put_cstr(o, type);
    put_cstr(o, "\r\nContent-Description: ");
    put_cstr(o, desc);
    put(o, "\r\n", 2);
}

static const char *
returned_description(const struct dsn_ctx *c)
{
    switch (c->r->kind) {
    case DSN_FAILURE:
        return c->full ? "Undelivered Message" : "Undelivered Message Headers";
    case DSN_DELAY:
        return "Delayed Message Headers";
    case DSN_SUCCESS:
        break;
    }
    return "Delivered Message Headers";
}

static void
put_body(struct out *o, const struct dsn_ctx *c, struct str parts, size_t text_len,
         const char *boundary)
{
    put_cstr(o, "This is a MIME-encapsulated message.\r\n");
    put_delimiter(o, boundary, "text/plain; charset=us-ascii", "Notification");
    put(o, "\r\n", 2);
    put(o, parts.ptr, text_len);
    put_delimiter(o, boundary, "message/delivery-status", "Delivery report");
    put(o, "\r\n", 2);
    put(o, parts.ptr + text_len, parts.len - text_len);
    put_delimiter(o, boundary, c->full ? "message/rfc822" : "text/rfc822-headers",
                  returned_description(c));
    if (c->eightbit)
        put_cstr(o, "Content-Transfer-Encoding: 8bit\r\n");
    put(o, "\r\n", 2);
    put_original(o, c->back, c->hdr_len);
    put_cstr(o, "\r\n--");
    put_cstr(o, boundary);
    put_cstr(o, "--\r\n");
}

/* One attempt; on failure out is left as it was. */
static int
dsn_build_as(const struct dsn_report *r, struct buf *out, bool full)
{
    struct dsn_ctx c;
    struct buf parts;
    struct out po = {&parts, false}, o = {out, false};
    char boundary[DSN_BOUNDARY_SIZE];
    size_t start = out->len, text_len;

    ctx_init(&c, r, full);
    /* parts 1-2 are built first: the boundary must not occur in them */
    buf_init(&parts, out->max);
    text_part(&po, &c);
    text_len = parts.len;
    status_part(&po, &c);
    if (!po.full && boundary_choose(&c, buf_str(&parts), boundary) == 0) {
        put_header(&o, &c, boundary);
        put_body(&o, &c, buf_str(&parts), text_len, boundary);
    } else
        o.full = true;
    buf_free(&parts);
    if (o.full) {
        out->len = start;
        if (out->data != NULL)
            out->data[start] = '\0';
        return -1;
    }
    return 0;
}

int
dsn_build(const struct dsn_report *r, struct buf *out)
{
    /* RFC 3461 6.2: the whole message only for failures with RET=FULL; a
     * delay or success report returns the header. Without RET we also
     * return only the header, so a bounce of forged mail (backscatter)
     * carries no spam body. */
    bool full = r->kind == DSN_FAILURE && r->ret == SMTP_RET_FULL;

    /* RFC 3461 6.1 / RFC 5321 6.1: never a DSN to the null sender; RFC 3464
     * 2.1 requires at least one recipient group. */
    if (r->sender == NULL || r->sender[0] == '\0' || r->rcpts == NULL || r->nrcpts == 0)
        return -1;
    if (dsn_build_as(r, out, full) == 0)
        return 0;
    /* RFC 3461 6.2: an MTA MAY return only the header of a message too big
     * to return whole; here "too big" means it does not fit in out. */
    return full ? dsn_build_as(r, out, false) : -1;
}
