/*
 * SMTP AUTH exchanges for PLAIN and LOGIN (see sasl.h): strict base64, the
 * RFC 4616 message grammar, bounded copies of the credentials. Every buffer
 * that held a decoded response is wiped before it goes out of scope.
 */
#include "smtp/smtp_sasl.h"

#include <stdint.h>
#include <string.h>

/* LOGIN's challenges (draft-murchison-sasl-login): "Username:", "Password:". */
#define CHALLENGE_USER "VXNlcm5hbWU6"
#define CHALLENGE_PASS "UGFzc3dvcmQ6"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Decodes one group of 4 characters, sig of them significant (2..4). */
static int
b64_group(const char *in, size_t sig, uint32_t *w)
{
    *w = 0;
    for (size_t k = 0; k < 4; k++) {
        int v = k < sig ? b64_value((unsigned char)in[k]) : 0;

        if (v < 0)
            return -1; /* also "=" anywhere but the padding (RFC 4954 4) */
        *w = *w << 6 | (uint32_t)v;
    }
    /* RFC 4648 3.5: the bits under the padding must be zero. */
    if ((sig == 3 && (*w & 0xff)) || (sig == 2 && (*w & 0xffff)))
        return -1;
    return 0;
}

long
sasl_base64_decode(struct str in, char *out, size_t n)
{
    size_t pad = 0, o = 0;

    if (in.len % 4 != 0)
        return -1;
    if (in.len > 0 && in.ptr[in.len - 1] == '=')
        pad = in.len > 1 && in.ptr[in.len - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < in.len; i += 4) {
        size_t sig = i + 4 == in.len ? 4 - pad : 4;
        uint32_t w;

        if (b64_group(in.ptr + i, sig, &w) < 0)
            return -1;
        for (size_t k = 0; k + 1 < sig; k++) {
            if (o >= n)
                return -2;
            out[o++] = (char)(w >> (16 - 8 * k) & 0xff);
        }
    }
    return (long)o;
}

long
sasl_base64_encode(struct str in, char *out, size_t n)
{
    const unsigned char *p = (const unsigned char *)in.ptr;
    size_t need = (in.len + 2) / 3 * 4, o = 0;

    if (n == 0 || need > n - 1)
        return -1;
    for (size_t i = 0; i < in.len; i += 3) {
        size_t left = in.len - i;
        uint32_t w = (uint32_t)p[i] << 16;

        w |= left > 1 ? (uint32_t)p[i + 1] << 8 : 0;
        w |= left > 2 ? p[i + 2] : 0;
        out[o++] = b64_alphabet[w >> 18 & 63];
        out[o++] = b64_alphabet[w >> 12 & 63];
        out[o++] = left > 1 ? b64_alphabet[w >> 6 & 63] : '=';
        out[o++] = left > 2 ? b64_alphabet[w & 63] : '=';
    }
    out[o] = '\0';
    return (long)o;
}

/* The length of the UTF-8 character at p (RFC 4616 SAFE: no NUL, no
 * overlong forms or surrogates, at most U+10FFFF), or 0 if malformed. */
static size_t
utf8_char(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t len;

    if (p[0] >= 0x01 && p[0] <= 0x7f)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (len > n)
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if (p[k] < 0x80 || p[k] > 0xbf)
            return 0;
    return len;
}

bool
sasl_utf8_valid(struct str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;

    for (size_t i = 0, len; i < s.len; i += len)
        if ((len = utf8_char(p + i, s.len - i)) == 0)
            return false;
    return true;
}

/* Copies a decoded field: valid UTF-8, no NUL, fits in out (size n). */
static bool
field_copy(struct str v, char *out, size_t n)
{
    return v.len < n && sasl_utf8_valid(v) && str_copy(v, out, n);
}

/* Ends the exchange with an error reply; drops any partial credentials. */
static enum sasl_result
sasl_fail(struct sasl *s, int code, const char *status, const char *text)
{
    explicit_bzero(s->authzid, sizeof(s->authzid));
    explicit_bzero(s->authcid, sizeof(s->authcid));
    explicit_bzero(s->password, sizeof(s->password));
    s->state = SASL_STATE_IDLE;
    s->challenge = NULL;
    smtp_reply_set(&s->reply, code, status, "%s", text);
    return SASL_ERROR;
}

static enum sasl_result
bad_credentials(struct sasl *s, const char *text)
{
    return sasl_fail(s, 535, "5.7.8", text);
}

static enum sasl_result
sasl_continue(struct sasl *s, enum sasl_state next, const char *challenge)
{
    s->state = next;
    s->challenge = challenge;
    return SASL_CONTINUE;
}

static enum sasl_result
sasl_done(struct sasl *s)
{
    s->state = SASL_STATE_IDLE;
    s->challenge = NULL;
    return SASL_DONE;
}

/* Decodes a client response into buf (SASL_RESPONSE_MAX octets): its
 * length, or -1 with the exchange failed. */
static long
decode_response(struct sasl *s, struct str line, char *buf)
{
    long n;

    if (line.len > SASL_LINE_MAX)
        n = -2;
    else
        n = sasl_base64_decode(line, buf, SASL_RESPONSE_MAX);
    if (n == -2) /* RFC 4954 4: longer than the authentication buffer */
        sasl_fail(s, 500, "5.5.6", "authentication exchange line is too long");
    else if (n < 0)
        sasl_fail(s, 501, "5.5.2", "invalid base64 data");
    return n < 0 ? -1 : n;
}

/* RFC 4616 2: message = [authzid] NUL authcid NUL passwd. */
static enum sasl_result
plain_message(struct sasl *s, struct str msg)
{
    struct str rest = msg, authzid, authcid;
    size_t nuls = 0;

    for (size_t i = 0; i < msg.len; i++)
        nuls += msg.ptr[i] == '\0';
    if (nuls != 2)
        return bad_credentials(s, "malformed PLAIN response");
    authzid = str_cut(&rest, '\0');
    authcid = str_cut(&rest, '\0');
    if (authcid.len == 0 || rest.len == 0)
        return bad_credentials(s, "empty user name or password");
    if (!field_copy(authzid, s->authzid, sizeof(s->authzid)) ||
        !field_copy(authcid, s->authcid, sizeof(s->authcid)) ||
        !field_copy(rest, s->password, sizeof(s->password)))
        return bad_credentials(s, "user name or password too long or not UTF-8");
    /* Acting as another identity is not supported: an authzid must name
     * the authenticating user itself, octet for octet. */
    if (authzid.len &&
        (authzid.len != authcid.len || memcmp(authzid.ptr, authcid.ptr, authcid.len)))
        return bad_credentials(s, "authorization identity must be the user name");
    return sasl_done(s);
}

/* One LOGIN response: the user name, then the password. */
static enum sasl_result
login_response(struct sasl *s, struct str v)
{
    if (s->state == SASL_STATE_LOGIN_USER) {
        if (v.len == 0)
            return bad_credentials(s, "empty user name");
        if (!field_copy(v, s->authcid, sizeof(s->authcid)))
            return bad_credentials(s, "user name too long or not UTF-8");
        return sasl_continue(s, SASL_STATE_LOGIN_PASS, CHALLENGE_PASS);
    }
    if (v.len == 0)
        return bad_credentials(s, "empty password");
    if (!field_copy(v, s->password, sizeof(s->password)))
        return bad_credentials(s, "password too long or not UTF-8");
    return sasl_done(s);
}

/* Decodes line and hands it to the mechanism waiting for it. */
static enum sasl_result
sasl_response(struct sasl *s, struct str line)
{
    char buf[SASL_RESPONSE_MAX];
    enum sasl_result r;
    long n = decode_response(s, line, buf);

    if (n < 0)
        r = SASL_ERROR;
    else if (s->state == SASL_STATE_PLAIN)
        r = plain_message(s, str_make(buf, (size_t)n));
    else
        r = login_response(s, str_make(buf, (size_t)n));
    explicit_bzero(buf, sizeof(buf));
    return r;
}

enum sasl_result
sasl_start(struct sasl *s, struct str mechanism, struct str initial, bool has_initial)
{
    sasl_clear(s);
    if (str_ieq(mechanism, "PLAIN")) {
        s->mech = SASL_MECH_PLAIN;
        s->state = SASL_STATE_PLAIN;
    } else if (str_ieq(mechanism, "LOGIN")) {
        s->mech = SASL_MECH_LOGIN;
        s->state = SASL_STATE_LOGIN_USER;
    } else {
        return sasl_fail(s, 504, "5.5.4", "unrecognized authentication mechanism");
    }
    if (has_initial && initial.len == 0) /* "AUTH PLAIN " */
        return sasl_fail(s, 501, "5.5.2", "invalid base64 data");
    /* RFC 4954 4: "=" is an initial response of zero length. It carries no
     * credentials, so the exchange goes on as if none had been given. */
    if (!has_initial || (initial.len == 1 && initial.ptr[0] == '='))
        return sasl_continue(s, s->state, s->mech == SASL_MECH_PLAIN ? "" : CHALLENGE_USER);
    return sasl_response(s, initial);
}

enum sasl_result
sasl_step(struct sasl *s, struct str line)
{
    if (s->state == SASL_STATE_IDLE)
        return sasl_fail(s, 503, "5.5.1", "no authentication exchange in progress");
    /* RFC 4954 4: "*" cancels; the reply is 501 (5.7.0 as in RFC 4954 6). */
    if (line.len == 1 && line.ptr[0] == '*')
        return sasl_fail(s, 501, "5.7.0", "authentication cancelled");
    return sasl_response(s, line);
}

void
sasl_clear(struct sasl *s)
{
    explicit_bzero(s, sizeof(*s));
    s->state = SASL_STATE_IDLE;
    s->mech = SASL_MECH_NONE;
}
