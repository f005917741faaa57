/*
 * tls_test_util.h - helpers the TLS tests share: a throw-away CA made with OpenSSL, real
 * ClientHellos from an OpenSSL client, and in-memory handshakes between two SSL objects.
 */
#ifndef WEBGW_TESTS_TLS_TEST_UTIL_H
#define WEBGW_TESTS_TLS_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* A CA made by the test: its key, its self-signed certificate, and that certificate in PEM. */
struct tt_ca {
    EVP_PKEY *key;
    X509 *cert;
    char *cert_pem;
};

/* A leaf issued by a tt_ca: PEM of the chain (leaf only) and of its key; free with free(). */
struct tt_leaf {
    char *cert_pem;
    char *key_pem;
};

/* tt_ca_new - a fresh P-256 CA named `cn`; aborts the test on failure. */
void tt_ca_new(struct tt_ca *ca, const char *cn);
void tt_ca_free(struct tt_ca *ca);

/*
 * tt_leaf_issue - a server certificate for `sans` ("DNS:a.test,DNS:*.b.test,IP:127.0.0.1")
 * valid for `days` (negative: already expired), with a new P-256 key.
 */
void tt_leaf_issue(struct tt_ca *ca, const char *cn, const char *sans, int days,
                   struct tt_leaf *out);
void tt_leaf_free(struct tt_leaf *leaf);

/* tt_write_file - writes `data` to `path` (aborts on failure). */
void tt_write_file(const char *path, const char *data);

/*
 * tt_client_hello - the first flight of an OpenSSL client into `out`: `sni` (NULL: none),
 * `alpn` in wire format (NULL: none), `max_version` (0: library default). Returns its size.
 */
size_t tt_client_hello(const char *sni, const unsigned char *alpn, size_t alpn_len, int max_version,
                       uint8_t *out, size_t cap);

/*
 * tt_handshake - runs a handshake between `client` and `server` over memory BIOs (each SSL
 * must have no BIO yet). Returns 1 when both finished, 0 when either failed.
 */
int tt_handshake(SSL *client, SSL *server);

/* tt_client_ctx - a client SSL_CTX that trusts `ca_pem` and verifies the peer. */
SSL_CTX *tt_client_ctx(const char *ca_pem);

/* tt_peer_cn - the CN of the peer certificate of `ssl` into buf ("" when none). */
void tt_peer_cn(SSL *ssl, char *buf, size_t len);

#endif
