/*
 * The server side of SMTP AUTH (RFC 4954) for the PLAIN (RFC 4616) and LOGIN
 * mechanisms: a pure state machine fed the AUTH arguments and the client's
 * continuation lines, which yields the next 334 challenge, the credentials,
 * or an error reply. No I/O, no user lookup: the caller checks the
 * credentials (auth/password.h) and sends 235 2.7.0 or 535 5.7.8.
 * Depends on base/ and smtp/smtp_reply.h only.
 */
#ifndef PETREL_SMTP_SASL_H
#define PETREL_SMTP_SASL_H

#include "base/str.h"
#include "smtp/smtp_reply.h"

#include <stdbool.h>
#include <stddef.h>

/* Octet limits of the decoded fields (RFC 4616 2 asks for at least 255). */
#define SASL_AUTHZID_MAX 255
#define SASL_AUTHCID_MAX 255
#define SASL_PASSWORD_MAX 1024
/* The largest decoded client response: a full PLAIN message. */
#define SASL_RESPONSE_MAX (SASL_AUTHZID_MAX + 1 + SASL_AUTHCID_MAX + 1 + SASL_PASSWORD_MAX)
/* The longest base64 response line accepted (without CRLF); longer is 500 5.5.6. */
#define SASL_LINE_MAX ((SASL_RESPONSE_MAX + 2) / 3 * 4)
/* The mechanisms for the EHLO keyword line: "250-AUTH PLAIN LOGIN". */
#define SASL_MECHANISMS "PLAIN LOGIN"

enum sasl_result {
    SASL_CONTINUE, /* send "334 " + s->challenge, then feed the next line to sasl_step */
    SASL_DONE,     /* s->authzid, s->authcid and s->password are ready */
    SASL_ERROR,    /* send s->reply; the exchange is over */
};

enum sasl_mech {
    SASL_MECH_NONE,
    SASL_MECH_PLAIN,
    SASL_MECH_LOGIN,
};

enum sasl_state {
    SASL_STATE_IDLE,       /* before sasl_start, or after DONE/ERROR */
    SASL_STATE_PLAIN,      /* waiting for the PLAIN message */
    SASL_STATE_LOGIN_USER, /* waiting for the LOGIN user name */
    SASL_STATE_LOGIN_PASS, /* waiting for the LOGIN password */
};

/*
 * One exchange. Zero it (or sasl_clear it) before sasl_start; it owns no
 * heap memory. password holds a secret: call sasl_clear as soon as the
 * credentials have been checked, and on every path that drops the struct.
 */
struct sasl {
    enum sasl_state state;
    enum sasl_mech mech;
    const char *challenge;   /* SASL_CONTINUE: static base64 text after "334 " */
    struct smtp_reply reply; /* SASL_ERROR: the reply to send */
    /* SASL_DONE: NUL-terminated, valid UTF-8 without NUL, never truncated.
     * authzid is "" when the client gave none, else equal to authcid. */
    char authzid[SASL_AUTHZID_MAX + 1];
    char authcid[SASL_AUTHCID_MAX + 1];
    char password[SASL_PASSWORD_MAX + 1];
};

/*
 * Starts an exchange for `AUTH mechanism [initial]`. has_initial tells
 * whether the command had a second argument; "=" stands for an empty
 * initial response (RFC 4954 4), which is taken as no initial response:
 * the first challenge follows ("" for PLAIN, "Username:" for LOGIN).
 * Mechanism names ignore ASCII case. For LOGIN an initial response is
 * taken as the user name (as Postfix and Cyrus SASL do). Replies on
 * SASL_ERROR:
 *   504 5.5.4 unknown or unsupported mechanism
 *   501 5.5.2 initial response not valid base64 (or an empty argument)
 *   500 5.5.6 response longer than SASL_LINE_MAX
 *   535 5.7.8 malformed PLAIN message, field too long, bad UTF-8, NUL in a
 *             LOGIN field, empty user name or password, authzid != authcid
 * Any earlier exchange in s is wiped first.
 */
enum sasl_result sasl_start(struct sasl *s, struct str mechanism, struct str initial,
                            bool has_initial);

/*
 * Feeds one client line (without CRLF) after a SASL_CONTINUE. Replies on
 * SASL_ERROR, besides those of sasl_start:
 *   501 5.7.0 "*": authentication cancelled
 *   503 5.5.1 no exchange in progress (the caller should not let this happen)
 * In continuations an empty line is an empty response and "=" is not base64.
 */
enum sasl_result sasl_step(struct sasl *s, struct str line);

/* Wipes the whole struct, password included (explicit_bzero); s is then
 * ready for sasl_start. */
void sasl_clear(struct sasl *s);

/*
 * Strict RFC 4648 4 base64: no white space or line breaks, length a multiple
 * of 4, "=" only as the last one or two characters, unused bits zero.
 * Writes at most n octets to out. Returns the decoded length, -1 if in is
 * not valid base64, -2 if the result would exceed n (out then holds a
 * prefix; wipe it if it may be secret).
 */
long sasl_base64_decode(struct str in, char *out, size_t n);
/* True when s is UTF-8 as RFC 4616 2 allows in a field: no NUL, no overlong
 * forms or surrogates, nothing above U+10FFFF. */
bool sasl_utf8_valid(struct str s);
/* Encodes in into out (size n), NUL-terminated, padded; returns the length
 * or -1 if it does not fit. */
long sasl_base64_encode(struct str in, char *out, size_t n);

#endif
