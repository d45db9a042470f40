/*
 * The client's security steps between EHLO and READY: STARTTLS (RFC 3207)
 * under the caller's policy, EHLO again inside TLS, then AUTH PLAIN or
 * LOGIN (RFC 4954, RFC 4616) when the caller gave credentials. The
 * handshake itself is the caller's (SMTP_CLIENT_TLS). Every failure here
 * is temporary: a missing STARTTLS or a wrong password is for the admin
 * to fix, and the mail waits in the queue meanwhile instead of bouncing.
 */
#include "smtp/smtp_client_impl.h"
#include "smtp/smtp_sasl.h"

#include <stdio.h>
#include <string.h>

/* RFC 4954 4 allows AUTH lines up to 12288 octets; credentials this long
 * are a configuration mistake, not a password. */
#define AUTH_FIELD_MAX 255

static void
fail_temp(struct smtp_client *cl, int code, const char *status, const char *fmt, const char *a,
          const struct smtp_reply *why)
{
    struct smtp_reply r;
    char text[sizeof(r.text)];

    snprintf(text, sizeof(text), fmt, a);
    if (why)
        smtp_reply_set(&r, code, status, "%s: %d %s", text, why->code, why->text);
    else
        smtp_reply_set(&r, code, status, "%s", text);
    smtp_client_fail(cl, &r);
}

/* One base64 line of s (or of the PLAIN message "\0user\0pass") after
 * prefix; the stack copies are wiped. */
static void
send_b64(struct smtp_client *cl, const char *prefix, const char *p, size_t n)
{
    char b64[4 * ((2 * AUTH_FIELD_MAX + 4) / 3) + 8];

    if (sasl_base64_encode(str_make(p, n), b64, sizeof(b64)) < 0) {
        fail_temp(cl, 451, "4.7.0", "credentials for %s too long", cl->server_name, NULL);
        return;
    }
    smtp_client_cmd(cl, "%s%s", prefix, b64);
    explicit_bzero(b64, sizeof(b64));
}

static void
auth_start(struct smtp_client *cl)
{
    size_t ul = strlen(cl->auth_user), pl = strlen(cl->auth_pass);
    char plain[2 * AUTH_FIELD_MAX + 2];

    /* RFC 4954 4: credentials only under a security layer. Also checked
     * by the config, but the machine holds to it whatever it is told. */
    if (!cl->tls_active) {
        fail_temp(cl, 451, "4.7.0", "not sending credentials to %s without TLS", cl->server_name,
                  NULL);
        return;
    }
    if (ul == 0 || ul > AUTH_FIELD_MAX || pl > AUTH_FIELD_MAX) {
        fail_temp(cl, 451, "4.7.0", "credentials for %s unusable (empty or too long)",
                  cl->server_name, NULL);
        return;
    }
    if (smtp_client_auth_offered(&cl->ext, "PLAIN")) {
        /* RFC 4616 2: [authzid] NUL authcid NUL passwd; no authzid. RFC
         * 4954 4: the initial response saves a round trip. */
        plain[0] = '\0';
        memcpy(plain + 1, cl->auth_user, ul);
        plain[1 + ul] = '\0';
        memcpy(plain + 2 + ul, cl->auth_pass, pl);
        send_b64(cl, "AUTH PLAIN ", plain, ul + pl + 2);
        explicit_bzero(plain, sizeof(plain));
        smtp_client_set_state(cl, SMTP_CLIENT_ST_AUTH);
    } else if (smtp_client_auth_offered(&cl->ext, "LOGIN")) {
        smtp_client_cmd(cl, "AUTH LOGIN");
        smtp_client_set_state(cl, SMTP_CLIENT_ST_AUTH_USER);
    } else {
        fail_temp(cl, 451, "4.7.0",
                  "authentication configured but %s offers no AUTH PLAIN or LOGIN", cl->server_name,
                  NULL);
    }
}

void
smtp_client_greeted(struct smtp_client *cl)
{
    /* RFC 3207 4: STARTTLS only when offered, and only once. */
    if (!cl->tls_active && cl->tls != SMTP_CLIENT_TLS_NO && cl->ext.starttls) {
        smtp_client_cmd(cl, "STARTTLS");
        smtp_client_set_state(cl, SMTP_CLIENT_ST_STARTTLS);
        return;
    }
    if (!cl->tls_active && cl->tls == SMTP_CLIENT_TLS_MUST) {
        fail_temp(cl, 451, "4.7.0", "TLS required but not offered by %s", cl->server_name, NULL);
        return;
    }
    if (cl->auth_user && !cl->authenticated) {
        auth_start(cl);
        return;
    }
    smtp_client_set_state(cl, SMTP_CLIENT_ST_READY);
}

static void
on_starttls(struct smtp_client *cl, const struct smtp_reply *r)
{
    if (r->code == 220) {
        smtp_client_set_state(cl, SMTP_CLIENT_ST_TLS);
        return;
    }
    if (cl->tls == SMTP_CLIENT_TLS_MUST) {
        fail_temp(cl, 451, "4.7.0", "TLS required but STARTTLS refused by %s", cl->server_name, r);
        return;
    }
    /* RFC 3207 4: after a refusal the client decides; opportunistic TLS
     * (RFC 7435) goes on in the clear. The session is as before STARTTLS,
     * so the extensions still hold; only STARTTLS is not tried again. */
    cl->ext.starttls = false;
    smtp_client_greeted(cl);
}

static void
auth_failed(struct smtp_client *cl, const struct smtp_reply *r)
{
    /* A refused password (535 5.7.8) is the admin's to fix: deferred, so
     * nothing bounces meanwhile. The server's text says which it was. */
    if (r->code / 100 == 4)
        fail_temp(cl, r->code, r->status ? r->status : "4.7.0", "authentication failed at %s",
                  cl->server_name, r);
    else
        fail_temp(cl, 454, r->code == 535 ? "4.7.8" : "4.7.0", "authentication failed at %s",
                  cl->server_name, r);
}

void
smtp_client_tls_reply(struct smtp_client *cl, const struct smtp_reply *r)
{
    switch (cl->state) {
    case SMTP_CLIENT_ST_STARTTLS:
        on_starttls(cl, r);
        break;
    case SMTP_CLIENT_ST_AUTH:
        if (r->code == 235) { /* RFC 4954 6 */
            cl->authenticated = true;
            smtp_client_set_state(cl, SMTP_CLIENT_ST_READY);
        } else {
            auth_failed(cl, r);
        }
        break;
    case SMTP_CLIENT_ST_AUTH_USER:
    case SMTP_CLIENT_ST_AUTH_PASS:
        /* AUTH LOGIN: two 334 challenges, the user name, then the password
         * (its challenge texts are not standard and not looked at). */
        if (r->code != 334) {
            auth_failed(cl, r);
        } else if (cl->state == SMTP_CLIENT_ST_AUTH_USER) {
            send_b64(cl, "", cl->auth_user, strlen(cl->auth_user));
            smtp_client_set_state(cl, SMTP_CLIENT_ST_AUTH_PASS);
        } else {
            send_b64(cl, "", cl->auth_pass, strlen(cl->auth_pass));
            smtp_client_set_state(cl, SMTP_CLIENT_ST_AUTH);
        }
        break;
    default:
        smtp_client_protocol_error(cl, "unexpected reply");
    }
}

void
smtp_client_tls_done(struct smtp_client *cl, bool ok)
{
    if (cl->state != SMTP_CLIENT_ST_TLS)
        return;
    if (!ok) {
        fail_temp(cl, 451, "4.7.0", "TLS handshake with %s failed", cl->server_name, NULL);
        return;
    }
    /* RFC 3207 4.2: discard what the server said before TLS and ask again. */
    cl->tls_active = true;
    smtp_client_send_ehlo(cl);
}

bool
smtp_client_tls_active(const struct smtp_client *cl)
{
    return cl->tls_active;
}

bool
smtp_client_authenticated(const struct smtp_client *cl)
{
    return cl->authenticated;
}
