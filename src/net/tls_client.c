/*
 * Outbound TLS with OpenSSL; see tls_client.h. The name check is always
 * configured, even when the policy takes any certificate, so that the
 * verification result tells the logs whether the certificate would have
 * passed: opportunistic TLS (RFC 7435) records what it could not enforce.
 */
#include "net/tls_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

/* Same as the listeners (config_pki.c): forward secrecy and AEAD for TLS
 * 1.2; TLS 1.3's suites all qualify. */
#define TLS_CLIENT_CIPHERS_TLS12 "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL"

static void
ssl_error_line(char *err, size_t n, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256];

    ERR_clear_error();
    if (e)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, n, "%s: %s", what, e ? buf : "unknown error");
}

struct ssl_ctx_st *
tls_client_ctx_new(const char *ca_file, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        ssl_error_line(err, errlen, "TLS client context");
        return NULL;
    }
    /* RFC 8996: nothing older than TLS 1.2; RFC 7457: no compression. */
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_cipher_list(ctx, TLS_CLIENT_CIPHERS_TLS12) != 1) {
        ssl_error_line(err, errlen, "TLS client ciphers");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1
                : SSL_CTX_set_default_verify_paths(ctx) != 1) {
        ssl_error_line(err, errlen, ca_file ? ca_file : "the system's CA store");
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void
tls_client_ctx_free(struct ssl_ctx_st *ctx)
{
    SSL_CTX_free(ctx);
}

static bool
is_ip(const char *name)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1;
}

struct ssl_st *
tls_client_ssl_new(struct ssl_ctx_st *ctx, const char *name, const char *also, bool verify)
{
    SSL *ssl = SSL_new(ctx);
    X509_VERIFY_PARAM *vp;
    bool ip = is_ip(name);

    if (ssl == NULL)
        return NULL;
    vp = SSL_get0_param(ssl);
    /* RFC 6125 6.4.4: no CN fallback when the certificate has DNS names;
     * no partial wildcards ("f*.example.com"). */
    X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1
           : X509_VERIFY_PARAM_set1_host(vp, name, 0) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    if (also && !is_ip(also) && X509_VERIFY_PARAM_add1_host(vp, also, 0) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    /* RFC 6066 3: SNI carries DNS names only. */
    if (!ip && SSL_set_tlsext_host_name(ssl, name) != 1) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    SSL_set_connect_state(ssl);
    return ssl;
}

enum tls_client_trust
tls_client_trust(struct ssl_st *ssl)
{
    X509 *peer = SSL_get0_peer_certificate(ssl);
    long res = SSL_get_verify_result(ssl);

    if (peer == NULL)
        return TLS_CLIENT_UNTRUSTED;
    if (res == X509_V_OK)
        return TLS_CLIENT_VERIFIED;
    /* The chain may be fine and only the name wrong: check the chain alone. */
    if (res == X509_V_ERR_HOSTNAME_MISMATCH || res == X509_V_ERR_IP_ADDRESS_MISMATCH) {
        X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(ssl));
        X509_STORE_CTX *sc = X509_STORE_CTX_new();
        bool ok = false;

        if (sc && X509_STORE_CTX_init(sc, store, peer, SSL_get_peer_cert_chain(ssl)) == 1) {
            X509_STORE_CTX_set_default(sc, "ssl_server");
            ok = X509_verify_cert(sc) == 1;
        }
        X509_STORE_CTX_free(sc);
        ERR_clear_error();
        return ok ? TLS_CLIENT_TRUSTED : TLS_CLIENT_UNTRUSTED;
    }
    return TLS_CLIENT_UNTRUSTED;
}

const char *
tls_client_trust_name(enum tls_client_trust t)
{
    switch (t) {
    case TLS_CLIENT_VERIFIED:
        return "Verified";
    case TLS_CLIENT_TRUSTED:
        return "Trusted";
    default:
        return "Untrusted";
    }
}

const char *
tls_client_describe(struct ssl_st *ssl, char *buf, size_t n)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    int alg = 0, bits = c ? SSL_CIPHER_get_bits(c, &alg) : 0;

    snprintf(buf, n, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
             c ? SSL_CIPHER_get_name(c) : "none", bits, alg);
    return buf;
}

const char *
tls_client_error(struct ssl_st *ssl, unsigned long ssl_err, const char *fallback, char *buf,
                 size_t n)
{
    long res = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;

    if (ssl && res != X509_V_OK && SSL_get_verify_mode(ssl) != SSL_VERIFY_NONE) {
        snprintf(buf, n, "certificate verification failed: %s", X509_verify_cert_error_string(res));
    } else if (ssl_err) {
        char e[256];

        ERR_error_string_n(ssl_err, e, sizeof(e));
        snprintf(buf, n, "%s", e);
    } else {
        snprintf(buf, n, "%s", fallback);
    }
    ERR_clear_error();
    return buf;
}
