/*
 * tls_test_util.c - the TLS tests' CA, ClientHello generator and in-memory handshakes.
 * Everything is made with OpenSSL at run time; no key or certificate is checked in.
 */
#include "tests/proxy/tls_test_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #cond);                      \
            ERR_print_errors_fp(stderr);                                                           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *bio_to_string(BIO *bio)
{
    char *data;
    long len = BIO_get_mem_data(bio, &data);
    char *s = malloc((size_t)len + 1);
    CHECK(s != NULL);
    memcpy(s, data, (size_t)len);
    s[len] = '\0';
    return s;
}

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    CHECK(ext != NULL);
    CHECK(X509_add_ext(cert, ext, -1) == 1);
    X509_EXTENSION_free(ext);
}

static X509 *new_cert(EVP_PKEY *key, const char *cn, int days)
{
    X509 *cert = X509_new();
    unsigned char serial[16];
    CHECK(cert != NULL);
    CHECK(X509_set_version(cert, 2) == 1);
    CHECK(RAND_bytes(serial, sizeof(serial)) == 1);
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    CHECK(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) != NULL);
    BN_free(bn);
    X509_NAME *name = X509_get_subject_name(cert);
    CHECK(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                     0) == 1);
    if (days >= 0) {
        CHECK(X509_gmtime_adj(X509_getm_notBefore(cert), -3600) != NULL);
        CHECK(X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400) != NULL);
    } else {
        CHECK(X509_gmtime_adj(X509_getm_notBefore(cert), (long)(days - 10) * 86400) != NULL);
        CHECK(X509_gmtime_adj(X509_getm_notAfter(cert), (long)days * 86400) != NULL);
    }
    CHECK(X509_set_pubkey(cert, key) == 1);
    return cert;
}

void tt_ca_new(struct tt_ca *ca, const char *cn)
{
    ca->key = EVP_EC_gen("P-256");
    CHECK(ca->key != NULL);
    ca->cert = new_cert(ca->key, cn, 30);
    CHECK(X509_set_issuer_name(ca->cert, X509_get_subject_name(ca->cert)) == 1);
    add_ext(ca->cert, ca->cert, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(ca->cert, ca->cert, NID_key_usage, "critical,keyCertSign,cRLSign");
    add_ext(ca->cert, ca->cert, NID_subject_key_identifier, "hash");
    CHECK(X509_sign(ca->cert, ca->key, EVP_sha256()) > 0);
    BIO *bio = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_X509(bio, ca->cert) == 1);
    ca->cert_pem = bio_to_string(bio);
    BIO_free(bio);
}

void tt_ca_free(struct tt_ca *ca)
{
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->cert_pem);
    memset(ca, 0, sizeof(*ca));
}

void tt_leaf_issue(struct tt_ca *ca, const char *cn, const char *sans, int days,
                   struct tt_leaf *out)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    CHECK(key != NULL);
    X509 *cert = new_cert(key, cn, days);
    CHECK(X509_set_issuer_name(cert, X509_get_subject_name(ca->cert)) == 1);
    add_ext(cert, ca->cert, NID_basic_constraints, "critical,CA:FALSE");
    add_ext(cert, ca->cert, NID_key_usage, "critical,digitalSignature");
    add_ext(cert, ca->cert, NID_ext_key_usage, "serverAuth");
    add_ext(cert, ca->cert, NID_authority_key_identifier, "keyid");
    if (sans && sans[0])
        add_ext(cert, ca->cert, NID_subject_alt_name, sans);
    CHECK(X509_sign(cert, ca->key, EVP_sha256()) > 0);

    BIO *bio = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_X509(bio, cert) == 1);
    out->cert_pem = bio_to_string(bio);
    BIO_free(bio);
    bio = BIO_new(BIO_s_mem());
    CHECK(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) == 1);
    out->key_pem = bio_to_string(bio);
    BIO_free(bio);
    X509_free(cert);
    EVP_PKEY_free(key);
}

void tt_leaf_free(struct tt_leaf *leaf)
{
    free(leaf->cert_pem);
    free(leaf->key_pem);
    memset(leaf, 0, sizeof(*leaf));
}

void tt_write_file(const char *path, const char *data)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    CHECK(fputs(data, f) >= 0);
    CHECK(fclose(f) == 0);
}

size_t tt_client_hello(const char *sni, const unsigned char *alpn, size_t alpn_len, int max_version,
                       uint8_t *out, size_t cap)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(ctx != NULL);
    if (max_version)
        CHECK(SSL_CTX_set_max_proto_version(ctx, max_version) == 1);
    SSL *ssl = SSL_new(ctx);
    CHECK(ssl != NULL);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    if (sni)
        CHECK(SSL_set_tlsext_host_name(ssl, sni) == 1);
    if (alpn)
        CHECK(SSL_set_alpn_protos(ssl, alpn, (unsigned)alpn_len) == 0);
    CHECK(SSL_do_handshake(ssl) <= 0);
    int n = BIO_read(wbio, out, (int)cap);
    CHECK(n > 0 && BIO_ctrl_pending(wbio) == 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return (size_t)n;
}

/* Moves whatever `from` wrote to `to`'s read side. */
static int pump(SSL *from, SSL *to)
{
    char buf[16384];
    int moved = 0, n;
    BIO *w = SSL_get_wbio(from), *r = SSL_get_rbio(to);
    while ((n = BIO_read(w, buf, sizeof(buf))) > 0) {
        CHECK(BIO_write(r, buf, n) == n);
        moved += n;
    }
    return moved;
}

static int step(SSL *ssl, int *done)
{
    if (*done)
        return 1;
    int rc = SSL_do_handshake(ssl);
    if (rc == 1) {
        *done = 1;
        return 1;
    }
    int e = SSL_get_error(ssl, rc);
    return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE;
}

int tt_handshake(SSL *client, SSL *server)
{
    int cdone = 0, sdone = 0;
    SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_bio(server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    for (int i = 0; i < 32 && !(cdone && sdone); i++) {
        int ok_c = step(client, &cdone);
        pump(client, server);
        int ok_s = step(server, &sdone);
        pump(server, client);
        if (!ok_c || !ok_s) {
            /* let the other side read the alert, so both report it */
            step(client, &cdone);
            return 0;
        }
    }
    if (!(cdone && sdone))
        return 0;
    /* TLS 1.3 tickets come after the handshake: let the client read them. */
    char byte;
    pump(server, client);
    SSL_read(client, &byte, 1);
    return 1;
}

SSL_CTX *tt_client_ctx(const char *ca_pem)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK(ctx != NULL);
    BIO *bio = BIO_new_mem_buf(ca_pem, -1);
    X509 *ca = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    CHECK(ca != NULL);
    CHECK(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), ca) == 1);
    X509_free(ca);
    BIO_free(bio);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

void tt_peer_cn(SSL *ssl, char *buf, size_t len)
{
    buf[0] = '\0';
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer)
        return;
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, (int)len);
    X509_free(peer);
}
