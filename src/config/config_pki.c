/*
 * pki, ca-file and user: the directives that touch the system's security
 * pieces. A pki's certificate and key are loaded into an OpenSSL server
 * context here, while the config loads, so that a missing file, a key that
 * does not match its certificate or an expired chain is reported at its
 * line (and `petrel check` finds it) instead of at the first handshake; a
 * SIGHUP builds a new config and so reads renewed certificates.
 */
#include "base/xmalloc.h"
#include "config/config_parse.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/*
 * TLS 1.2 ciphers: forward secrecy and AEAD only. TLS 1.3 suites are
 * OpenSSL's defaults, all of which qualify. Mail is opportunistic: clients
 * that cannot do this still deliver in the clear on port 25.
 */
#define PKI_CIPHERS_TLS12 "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"

struct config_pki *
config_find_pki(const struct config *cf, const char *name)
{
    for (size_t i = 0; i < cf->npkis; i++)
        if (strcmp(cf->pkis[i]->name, name) == 0)
            return cf->pkis[i];
    return NULL;
}

int
config_args_pki(struct config_parser *p, struct config_args *a, struct config_pki **out)
{
    const char *name = NULL;

    if (config_args_value(p, a, "a pki name", &name) < 0)
        return -1;
    *out = config_find_pki(p->cf, name);
    if (*out == NULL)
        return config_fail(p, "%s: undefined pki \"%s\" (define it with `pki` first)", a->what,
                           name);
    return 0;
}

void
config_pki_free(struct config_pki *pki)
{
    if (pki == NULL)
        return;
    SSL_CTX_free(pki->ctx);
    free(pki->name);
    free(pki->cert);
    free(pki->key);
    free(pki);
}

/* The first queued OpenSSL error, as one short line. */
static const char *
pki_ssl_error(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();

    ERR_clear_error();
    if (e == 0)
        return "unknown error";
    ERR_error_string_n(e, buf, n);
    return buf;
}

static int
pki_file(struct config_parser *p, const char *name, const char *what, const char *path)
{
    struct stat st;

    if (stat(path, &st) < 0)
        return config_fail(p, "pki \"%s\": cannot open %s \"%s\": %s", name, what, path,
                           strerror(errno));
    if (!S_ISREG(st.st_mode))
        return config_fail(p, "pki \"%s\": %s \"%s\" is not a regular file", name, what, path);
    return 0;
}

static int
pki_context(struct config_parser *p, struct config_pki *pki)
{
    char e[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL)
        return config_fail(p, "pki \"%s\": %s", pki->name, pki_ssl_error(e, sizeof(e)));
    pki->ctx = ctx;
    /* RFC 8996: nothing older than TLS 1.2; RFC 7457: no compression, no
     * client-initiated renegotiation. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* idle sessions stay small */
    SSL_CTX_set_dh_auto(ctx, 1);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"petrel", 6);
    if (SSL_CTX_set_cipher_list(ctx, PKI_CIPHERS_TLS12) != 1)
        return config_fail(p, "pki \"%s\": %s", pki->name, pki_ssl_error(e, sizeof(e)));
    if (SSL_CTX_use_certificate_chain_file(ctx, pki->cert) != 1)
        return config_fail(p, "pki \"%s\": certificate \"%s\": %s", pki->name, pki->cert,
                           pki_ssl_error(e, sizeof(e)));
    if (SSL_CTX_use_PrivateKey_file(ctx, pki->key, SSL_FILETYPE_PEM) != 1)
        return config_fail(p, "pki \"%s\": key \"%s\": %s", pki->name, pki->key,
                           pki_ssl_error(e, sizeof(e)));
    if (SSL_CTX_check_private_key(ctx) != 1)
        return config_fail(p, "pki \"%s\": key \"%s\" does not match certificate \"%s\"", pki->name,
                           pki->key, pki->cert);
    return 0;
}

/* pki "NAME" cert "FILE" key "FILE" */
int
config_parse_pki(struct config_parser *p, struct config_args *a)
{
    const char *name = NULL, *cert = NULL, *key = NULL;
    struct config_pki *pki;

    if (config_args_value(p, a, "a pki name", &name) < 0)
        return -1;
    if (!config_valid_name(name))
        return config_fail(p, "pki: invalid name \"%s\" (letters, digits, - _ .)", name);
    if (config_find_pki(p->cf, name))
        return config_fail(p, "pki: duplicate pki \"%s\"", name);
    if (config_args_expect(p, a, "cert") < 0 ||
        config_args_value(p, a, "a certificate file", &cert) < 0 ||
        config_args_expect(p, a, "key") < 0 || config_args_value(p, a, "a key file", &key) < 0 ||
        config_args_end(p, a) < 0)
        return -1;
    pki = xcalloc(1, sizeof(*pki));
    pki->name = xstrdup(name);
    pki->cert = config_resolve_path(p, cert);
    pki->key = config_resolve_path(p, key);
    if (pki->cert == NULL || pki->key == NULL || pki_file(p, name, "certificate", pki->cert) < 0 ||
        pki_file(p, name, "key", pki->key) < 0 || pki_context(p, pki) < 0) {
        config_pki_free(pki);
        return -1;
    }
    p->cf->pkis = xrealloc(p->cf->pkis, (p->cf->npkis + 1) * sizeof(*p->cf->pkis));
    p->cf->pkis[p->cf->npkis++] = pki;
    return 0;
}

/* ca-file "PATH": trust anchors for `tls verify`. */
int
config_parse_ca_file(struct config_parser *p, struct config_args *a)
{
    const char *path = NULL;
    struct stat st;
    char *abs;

    if (config_args_value(p, a, "a file", &path) < 0 || config_args_end(p, a) < 0)
        return -1;
    abs = config_resolve_path(p, path);
    if (abs == NULL)
        return -1;
    if (stat(abs, &st) < 0 || !S_ISREG(st.st_mode)) {
        config_fail(p, "ca-file: \"%s\" is not a readable file", abs);
        free(abs);
        return -1;
    }
    free(p->cf->ca_file);
    p->cf->ca_file = abs;
    return 0;
}

/* user NAME: the account petreld runs as once its ports are bound. */
int
config_parse_user(struct config_parser *p, struct config_args *a)
{
    const char *name = NULL;
    struct passwd pw, *res = NULL;
    char buf[4096];

    if (config_args_value(p, a, "a user name", &name) < 0 || config_args_end(p, a) < 0)
        return -1;
    if (getpwnam_r(name, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
        return config_fail(p, "user: no such user \"%s\"", name);
    if (pw.pw_uid == 0)
        return config_fail(p, "user: \"%s\" is root; name an unprivileged account", name);
    free(p->cf->user);
    p->cf->user = xstrdup(name);
    return 0;
}
