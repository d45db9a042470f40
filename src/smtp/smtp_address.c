/*
 * RFC 5321 4.1.2 path parsing, extended by RFC 6531 3.3 for SMTPUTF8.
 * One forward-only cursor bounded by the input's end: no NUL termination is
 * assumed and nothing ever steps before the start of a token (the lessons
 * of OpenSMTPD CVE-2020-7247 and Exim CVE-2020-28022). Depends on base/ only.
 */
#include "smtp/smtp_address.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct path_parser {
    const char *p; /* cursor; never beyond end */
    const char *end;
    enum smtp_path_kind kind;
    bool utf8_ok;
    struct smtp_path *out;
    struct smtp_reply *err;
};

/* RFC 3463: 5.1.7 bad sender mailbox syntax, 5.1.3 bad destination syntax. */
static const char *
path_status(const struct path_parser *pp)
{
    return pp->kind == SMTP_PATH_SENDER ? "5.1.7" : "5.1.3";
}

static const char *
path_role(const struct path_parser *pp)
{
    return pp->kind == SMTP_PATH_SENDER ? "sender" : "recipient";
}

static int path_fail(struct path_parser *pp, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A syntax error: "bad sender address syntax: <detail>". Returns -1. */
static int
path_fail(struct path_parser *pp, const char *fmt, ...)
{
    char detail[160];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    return smtp_reply_set(pp->err, 501, path_status(pp), "bad %s address syntax: %s", path_role(pp),
                          detail);
}

/* A size limit of RFC 5321 4.5.3.1 exceeded. Returns -1. */
static int
path_too_long(struct path_parser *pp, const char *what)
{
    return smtp_reply_set(pp->err, 501, path_status(pp), "bad %s address: %s", path_role(pp), what);
}

/* RFC 6531 3.5: X.6.7, non-ASCII address without SMTPUTF8. Returns -1. */
static int
path_need_utf8(struct path_parser *pp)
{
    return smtp_reply_set(pp->err, 501, "5.6.7",
                          "non-ASCII %s address requires the SMTPUTF8 parameter (RFC 6531)",
                          path_role(pp));
}

static bool
is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool
is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 3.2.3 atext, ASCII part. */
static bool
is_atext(unsigned char c)
{
    return is_alnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/*
 * Length of the well-formed UTF-8 sequence at p (RFC 3629 4), or 0 when it
 * is malformed: bad lead byte, truncated, overlong, surrogate, > U+10FFFF.
 */
static size_t
utf8_seq_len(const unsigned char *p, size_t avail)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;

    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        n = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        n = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        n = 4;
    else
        return 0; /* continuation byte, overlong C0/C1, or F5..FF */
    if (p[0] == 0xe0)
        lo = 0xa0; /* overlong 3-byte */
    else if (p[0] == 0xed)
        hi = 0x9f; /* surrogates D800..DFFF */
    else if (p[0] == 0xf0)
        lo = 0x90; /* overlong 4-byte */
    else if (p[0] == 0xf4)
        hi = 0x8f; /* above U+10FFFF */
    if (avail < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Consumes one UTF8-non-ascii character (RFC 6531 3.3) at the cursor. */
static int
take_utf8(struct path_parser *pp, const char *where)
{
    size_t n;

    if (!pp->utf8_ok)
        return path_need_utf8(pp);
    n = utf8_seq_len((const unsigned char *)pp->p, (size_t)(pp->end - pp->p));
    if (n == 0)
        return path_fail(pp, "malformed UTF-8 in %s", where);
    pp->p += n;
    pp->out->utf8 = true;
    return 0;
}

/* Explains why the octet at the cursor (or the end of input) is wrong. */
static int
fail_at(struct path_parser *pp, const char *where)
{
    unsigned char c;

    if (pp->p == pp->end)
        return path_fail(pp, "missing '>'");
    c = (unsigned char)*pp->p;
    if (is_ctl(c))
        return path_fail(pp, "control character in %s", where);
    if (c >= 0x80 && !pp->utf8_ok)
        return path_need_utf8(pp);
    if (c >= 0x80)
        return path_fail(pp, "unexpected octet 0x%02X in %s", c, where);
    return path_fail(pp, "unexpected '%c' in %s", c, where);
}

static bool
at(const struct path_parser *pp, char c)
{
    return pp->p < pp->end && *pp->p == c;
}

/* One Atom of a Dot-string, possibly empty; 0 or -1. */
static int
parse_atom(struct path_parser *pp)
{
    while (pp->p < pp->end) {
        unsigned char c = (unsigned char)*pp->p;

        if (is_atext(c))
            pp->p++;
        else if (c < 0x80)
            break;
        else if (take_utf8(pp, "local part") < 0)
            return -1;
    }
    return 0;
}

/* Dot-string = Atom *("." Atom); fills *written with the slice. */
static int
parse_dot_string(struct path_parser *pp, struct str *written)
{
    const char *start = pp->p;

    for (bool first = true;; first = false) {
        const char *atom = pp->p;

        if (parse_atom(pp) < 0)
            return -1;
        if (pp->p == atom && (!first || at(pp, '.')))
            return path_fail(pp, "misplaced '.' in local part");
        if (pp->p == atom && at(pp, '>'))
            return path_fail(pp, "missing local part");
        if (pp->p == atom)
            return fail_at(pp, "local part");
        if (!at(pp, '.'))
            break;
        pp->p++;
    }
    *written = str_make(start, (size_t)(pp->p - start));
    return 0;
}

/* Quoted-string = DQUOTE *QcontentSMTP DQUOTE; the cursor is on the DQUOTE. */
static int
scan_quoted_string(struct path_parser *pp, struct str *written)
{
    const char *start = pp->p++;

    while (pp->p < pp->end && *pp->p != '"') {
        unsigned char c = (unsigned char)*pp->p;

        if (c == '\\') {
            pp->p++; /* quoted-pairSMTP = %d92 %d32-126 */
            if (pp->p == pp->end)
                break;
            if ((unsigned char)*pp->p < 32 || (unsigned char)*pp->p > 126)
                return fail_at(pp, "quoted pair");
            pp->p++;
        } else if (c >= 32 && c <= 126) {
            pp->p++; /* qtextSMTP */
        } else if (c < 0x80) {
            return fail_at(pp, "quoted string");
        } else if (take_utf8(pp, "quoted string") < 0) {
            return -1;
        }
    }
    if (pp->p == pp->end)
        return path_fail(pp, "unterminated quoted string");
    pp->p++;
    *written = str_make(start, (size_t)(pp->p - start));
    return 0;
}

/* Copies a validated quoted-string into out->local minus quotes and escapes. */
static void
decode_quoted(struct str written, char *local)
{
    size_t n = 0;

    for (size_t i = 1; i + 1 < written.len; i++) {
        if (written.ptr[i] == '\\')
            i++;
        local[n++] = written.ptr[i];
    }
    local[n] = '\0';
}

/* Local-part = Dot-string / Quoted-string (RFC 5321 4.1.2). */
static int
parse_local_part(struct path_parser *pp)
{
    struct str written;
    bool quoted = at(pp, '"');

    if ((quoted ? scan_quoted_string(pp, &written) : parse_dot_string(pp, &written)) < 0)
        return -1;
    if (written.len > SMTP_LOCAL_MAX) /* RFC 5321 4.5.3.1.1, as written */
        return path_too_long(pp, "local part longer than 64 octets");
    pp->out->quoted = quoted;
    if (quoted) {
        decode_quoted(written, pp->out->local);
    } else {
        memcpy(pp->out->local, written.ptr, written.len);
        pp->out->local[written.len] = '\0';
    }
    return 0;
}

/* Scans one sub-domain: ALPHA / DIGIT / "-" and UTF-8 (RFC 6531 U-label).
 * parse_domain checks the Let-dig ends. */
static int
parse_label(struct path_parser *pp, const char **label_start)
{
    *label_start = pp->p;
    while (pp->p < pp->end) {
        unsigned char c = (unsigned char)*pp->p;

        if (is_alnum(c) || c == '-')
            pp->p++;
        else if (c < 0x80)
            break;
        else if (take_utf8(pp, "domain") < 0)
            return -1;
    }
    return 0;
}

static bool
at_path_delimiter(const struct path_parser *pp)
{
    return at(pp, '>') || at(pp, ',') || at(pp, ':');
}

/* Names the problem when a domain label turns out empty. */
static int
empty_label_error(struct path_parser *pp, bool first)
{
    if (at(pp, '.'))
        return path_fail(pp, "empty label in domain");
    if (first && at_path_delimiter(pp))
        return path_fail(pp, "missing domain");
    if (!first && at_path_delimiter(pp))
        return path_fail(pp, "trailing '.' in domain");
    return fail_at(pp, "domain");
}

/* Domain = sub-domain *("." sub-domain); no empty labels, no trailing dot. */
static int
parse_domain(struct path_parser *pp, struct str *dom)
{
    const char *start = pp->p, *label;

    for (;;) {
        if (parse_label(pp, &label) < 0)
            return -1;
        if (pp->p == label)
            return empty_label_error(pp, label == start);
        if (*label == '-' || pp->p[-1] == '-') /* pp->p > label here */
            return path_fail(pp, "domain label starts or ends with '-'");
        if (!at(pp, '.'))
            break;
        pp->p++;
    }
    *dom = str_make(start, (size_t)(pp->p - start));
    if (dom->len > SMTP_DOMAIN_MAX) /* RFC 5321 4.5.3.1.2 */
        return path_too_long(pp, "domain longer than 255 octets");
    return 0;
}

/* Snum 3("." Snum), Snum = 1*3DIGIT with value 0..255 (RFC 5321 4.1.3). */
static bool
is_ipv4_literal(struct str s)
{
    size_t i = 0;

    for (int part = 0; part < 4; part++) {
        unsigned value = 0, digits = 0;

        if (part > 0 && (i == s.len || s.ptr[i++] != '.'))
            return false;
        while (i < s.len && s.ptr[i] >= '0' && s.ptr[i] <= '9' && digits < 3) {
            value = value * 10 + (unsigned)(s.ptr[i++] - '0');
            digits++;
        }
        if (digits == 0 || value > 255)
            return false;
    }
    return i == s.len;
}

/* "IPv6:" IPv6-addr, checked with inet_pton on a bounded copy. */
static bool
is_ipv6_literal(struct str addr)
{
    char buf[INET6_ADDRSTRLEN + 8];
    struct in6_addr a;

    if (!str_copy(addr, buf, sizeof(buf)))
        return false;
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* Checks the text between "[" and "]" (RFC 5321 4.1.3). */
static int
check_literal_content(struct path_parser *pp, struct str content)
{
    if (str_iprefix(content, "IPv6:")) {
        if (!is_ipv6_literal(str_make(content.ptr + 5, content.len - 5)))
            return path_fail(pp, "bad IPv6 address literal");
        return 0;
    }
    if (content.len > 0 && memchr(content.ptr, ':', content.len) != NULL)
        return path_fail(pp, "unsupported address literal"); /* General-address-literal */
    if (!is_ipv4_literal(content))
        return path_fail(pp, "bad IPv4 address literal");
    return 0;
}

/* address-literal = "[" ... "]"; the cursor is on the "[". */
static int
parse_address_literal(struct path_parser *pp, struct str *dom)
{
    const char *start = pp->p++;
    struct str content;

    /* dcontent = %d33-90 / %d94-126 */
    while (pp->p < pp->end && *pp->p != ']') {
        unsigned char c = (unsigned char)*pp->p;

        if (c < 33 || c > 126 || c == '[' || c == '\\')
            return fail_at(pp, "address literal");
        pp->p++;
    }
    if (pp->p == pp->end)
        return path_fail(pp, "missing ']'");
    content = str_make(start + 1, (size_t)(pp->p - start - 1));
    pp->p++;
    if (check_literal_content(pp, content) < 0)
        return -1;
    *dom = str_make(start, (size_t)(pp->p - start));
    if (dom->len > SMTP_DOMAIN_MAX) /* valid literals are shorter; guards the copy */
        return path_too_long(pp, "domain longer than 255 octets");
    return 0;
}

/* A-d-l ":" where A-d-l = At-domain *( "," At-domain ): parsed, dropped. */
static int
parse_source_route(struct path_parser *pp)
{
    struct str ignored;

    for (;;) {
        pp->p++; /* the "@" */
        if (parse_domain(pp, &ignored) < 0)
            return -1;
        if (at(pp, ':'))
            break;
        if (!at(pp, ','))
            return pp->p == pp->end ? fail_at(pp, "source route")
                                    : path_fail(pp, "missing ':' after source route");
        pp->p++;
        if (!at(pp, '@'))
            return fail_at(pp, "source route");
    }
    pp->p++;
    pp->out->had_route = true;
    return 0;
}

/* Mailbox = Local-part "@" ( Domain / address-literal ) */
static int
parse_mailbox(struct path_parser *pp)
{
    struct str dom;

    if (parse_local_part(pp) < 0)
        return -1;
    if (at(pp, '>'))
        return path_fail(pp, "missing '@domain'");
    if (!at(pp, '@'))
        return fail_at(pp, "local part");
    pp->p++;
    if (at(pp, '[')) {
        if (parse_address_literal(pp, &dom) < 0)
            return -1;
        pp->out->literal = true;
    } else if (parse_domain(pp, &dom) < 0) {
        return -1;
    }
    memcpy(pp->out->domain, dom.ptr, dom.len);
    pp->out->domain[dom.len] = '\0';
    return 0;
}

/* "<>" (RFC 5321 4.1.1.2) and "<Postmaster>" (4.1.1.3); 1 if matched. */
static int
parse_special_path(struct path_parser *pp)
{
    size_t avail = (size_t)(pp->end - pp->p);

    if (at(pp, '>')) {
        if (pp->kind != SMTP_PATH_SENDER)
            return path_fail(pp, "null path '<>' is only valid for MAIL");
        pp->out->null = true;
        return 1;
    }
    if (pp->kind == SMTP_PATH_RECIPIENT && avail >= 11 &&
        str_ieq(str_make(pp->p, 11), "Postmaster>")) {
        pp->p += 10;
        pp->out->no_domain = true;
        memcpy(pp->out->local, "Postmaster", sizeof("Postmaster"));
        return 1;
    }
    return 0;
}

/* Everything from "<" to ">"; the cursor is on the "<". */
static int
parse_bracketed(struct path_parser *pp)
{
    const char *open = pp->p++;
    int special = parse_special_path(pp);

    if (special < 0)
        return -1;
    if (special == 0) {
        if (at(pp, '@') && parse_source_route(pp) < 0)
            return -1;
        if (parse_mailbox(pp) < 0)
            return -1;
    }
    if (!at(pp, '>'))
        return fail_at(pp, pp->out->literal ? "address literal" : "domain");
    pp->p++;
    if ((size_t)(pp->p - open) > SMTP_PATH_MAX) /* RFC 5321 4.5.3.1.3, 4.5.3.1.10 */
        return smtp_reply_set(pp->err, 501, path_status(pp), "Path too long");
    return 0;
}

int
smtp_path_parse(struct str in, enum smtp_path_kind kind, bool utf8_ok, struct smtp_path *out,
                struct str *rest, struct smtp_reply *err)
{
    struct path_parser pp = {in.ptr, in.ptr + in.len, kind, utf8_ok, out, err};

    memset(out, 0, sizeof(*out));
    *rest = str_make(in.ptr + in.len, 0);
    while (at(&pp, ' ')) /* "MAIL FROM: <a@b>" is common */
        pp.p++;
    if (pp.p == pp.end)
        return path_fail(&pp, "missing address");
    if (!at(&pp, '<'))
        return path_fail(&pp, "address must be enclosed in '<' and '>'");
    if (parse_bracketed(&pp) < 0)
        return -1;
    /* RFC 5321 4.1.1.2: Reverse-path [SP Mail-parameters] */
    if (pp.p < pp.end && *pp.p != ' ')
        return path_fail(&pp, is_ctl((unsigned char)*pp.p) ? "control character after '>'"
                                                           : "unexpected text after '>'");
    *rest = str_make(pp.p, (size_t)(pp.end - pp.p));
    return 0;
}

/* Dot-string check for formatting; non-ASCII octets count as atext. */
static bool
is_dot_string(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || s[0] == '.' || s[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '.' && s[i + 1] == '.')
            return false;
        if (c != '.' && !is_atext(c) && c < 0x80)
            return false;
    }
    return true;
}

struct out_writer {
    char *buf;
    size_t cap, len;
    bool overflow;
};

static void
out_putc(struct out_writer *w, char c)
{
    if (w->len + 1 >= w->cap) { /* keep room for the NUL */
        w->overflow = true;
        return;
    }
    w->buf[w->len++] = c;
}

static void
out_puts(struct out_writer *w, const char *s)
{
    while (*s != '\0')
        out_putc(w, *s++);
}

/* Quoted-string with quoted-pairSMTP only where needed: '"' and '\'. */
static void
out_quoted(struct out_writer *w, const char *s)
{
    out_putc(w, '"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            out_putc(w, '\\');
        out_putc(w, *s);
    }
    out_putc(w, '"');
}

int
smtp_path_format(const struct smtp_path *p, char *out, size_t n)
{
    struct out_writer w = {out, n, 0, false};

    if (n == 0)
        return -1;
    if (p->no_domain) {
        out_puts(&w, "Postmaster");
    } else if (!p->null) {
        if (is_dot_string(p->local))
            out_puts(&w, p->local);
        else
            out_quoted(&w, p->local);
        out_putc(&w, '@');
        out_puts(&w, p->domain);
    }
    out[w.len] = '\0';
    return w.overflow ? -1 : (int)w.len;
}
