/*
 * OpenSSL for outbound connections: one client context (TLS 1.2 and up,
 * a trust store), one SSL object per connection with SNI and the name to
 * check, and what a handshake established, for logs and policy. Knows
 * nothing of SMTP or of the configuration.
 */
#ifndef PETREL_TLS_CLIENT_H
#define PETREL_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

/*
 * A client context: TLS 1.2 minimum (RFC 8996), no compression or
 * renegotiation, trust anchors from ca_file (PEM) or, when NULL, the
 * system's default store. NULL on failure with one line in err. Free with
 * tls_client_ctx_free().
 */
struct ssl_ctx_st *tls_client_ctx_new(const char *ca_file, char *err, size_t errlen);
void tls_client_ctx_free(struct ssl_ctx_st *ctx);

/*
 * A connection's SSL object (the caller owns it, or hands it to a
 * bufferevent that frees it). name is the host the certificate must name:
 * a DNS name (also sent as SNI, RFC 6066 3) or an IP address (no SNI);
 * also, when not NULL, is a second DNS name the certificate may name
 * instead. verify: the handshake fails unless the chain verifies and a
 * name matches (RFC 6125); otherwise any certificate is taken (RFC 7435)
 * and tls_client_trust() says what it was worth. NULL on failure.
 */
struct ssl_st *tls_client_ssl_new(struct ssl_ctx_st *ctx, const char *name, const char *also,
                                  bool verify);

enum tls_client_trust {
    TLS_CLIENT_UNTRUSTED, /* no certificate, or its chain did not verify */
    TLS_CLIENT_TRUSTED,   /* chain verified, but not issued for the name */
    TLS_CLIENT_VERIFIED,  /* chain verified and the name matches */
};

/* After a completed handshake: how far the peer's certificate checked out
 * against the name given to tls_client_ssl_new(). */
enum tls_client_trust tls_client_trust(struct ssl_st *ssl);
/* "Verified", "Trusted", "Untrusted" (Postfix's words, which admins grep). */
const char *tls_client_trust_name(enum tls_client_trust t);
/* "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)" into buf. */
const char *tls_client_describe(struct ssl_st *ssl, char *buf, size_t n);
/* Why the handshake failed: the certificate check's reason when it was
 * that, else OpenSSL's first queued error (or fallback). Clears the
 * thread's OpenSSL error queue. */
const char *tls_client_error(struct ssl_st *ssl, unsigned long ssl_err, const char *fallback,
                             char *buf, size_t n);

#endif
