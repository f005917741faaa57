/*
 * acme_cluster.c - what makes ACME work for a fleet without shared storage: a deterministic
 * choice of the one gateway that orders each certificate, and certificates sealed with the
 * cluster key so gossip can carry them to every gateway.
 *
 * Why rendezvous hashing: every node knows the alive members from SWIM, so each can compute
 * the orderer of a name on its own, with no election; when a member dies, only the names it
 * ordered move, to the next highest. Why seal: a gossip item crosses the network and lands
 * in every node's memory and store; the private key must only be readable with the cluster
 * key, and the name is bound to the ciphertext so an item cannot be moved to another name.
 *
 * Sealed layout: "WGC1" | nonce (12) | AES-256-GCM(plaintext, aad = "webgw cert " name) |
 * tag (16); plaintext: chain DER length (4, BE) | chain DER (leaf first) | key DER length
 * (4, BE) | PKCS#8 key DER | notAfter (8, BE, unix seconds).
 */
#include "acme/acme_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#define SEAL_MAGIC "WGC1"
#define SEAL_NONCE 12
#define SEAL_TAG 16
#define SEAL_OVERHEAD (4 + SEAL_NONCE + SEAL_TAG)

long acme_orderer(const char *name, const char *const *ids, size_t n)
{
    uint8_t best[32], h[32];
    long chosen = -1;

    for (size_t i = 0; i < n; i++) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned len = 0;
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(md, ids[i], strlen(ids[i]) + 1) != 1 || /* id and its NUL */
            EVP_DigestUpdate(md, name, strlen(name)) != 1 || EVP_DigestFinal_ex(md, h, &len) != 1) {
            EVP_MD_CTX_free(md);
            continue;
        }
        EVP_MD_CTX_free(md);
        if (chosen < 0 || memcmp(h, best, sizeof(h)) > 0) {
            memcpy(best, h, sizeof(best));
            chosen = (long)i;
        }
    }
    return chosen;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* AES-256-GCM one shot. enc: in -> out (same length), tag written; dec: tag checked. */
static bool gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const char *name,
                const uint8_t *in, size_t len, uint8_t *out, uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    char aad[300];
    int n, aad_len = snprintf(aad, sizeof(aad), "webgw cert %s", name);
    bool ok = c && aad_len > 0 && (size_t)aad_len < sizeof(aad) &&
              EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) == 1 &&
              EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, SEAL_NONCE, NULL) == 1 &&
              EVP_CipherInit_ex(c, NULL, NULL, key, nonce, enc) == 1 &&
              EVP_CipherUpdate(c, NULL, &n, (const uint8_t *)aad, aad_len) == 1 &&
              EVP_CipherUpdate(c, out, &n, in, (int)len) == 1;
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(c, out + n, &n) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    ERR_clear_error();
    return ok;
}

int acme_cert_seal(const uint8_t key[ACME_SEAL_KEY_LEN], const char *name,
                   const struct acme_cert *cert, uint8_t *out, size_t cap, size_t *out_len,
                   char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(cert->cert_pem, -1), *kbio = NULL;
    EVP_PKEY *pkey = NULL;
    uint8_t *plain = NULL, *der = NULL;
    size_t plen = 0, limit = cap < ACME_SEALED_MAX ? cap : ACME_SEALED_MAX;
    X509 *x;
    int rc = ACME_EINVAL, len;

    if (limit <= SEAL_OVERHEAD + 16 || !bio) {
        snprintf(err, errlen, "seal %s: no room", name);
        rc = ACME_ELIMIT;
        goto out;
    }
    plain = malloc(limit);
    if (!plain) {
        snprintf(err, errlen, "out of memory");
        rc = ACME_ENOMEM;
        goto out;
    }
    /* the chain, DER after DER */
    plen = 4;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        len = i2d_X509(x, NULL);
        if (len <= 0 || plen + (size_t)len > limit - SEAL_OVERHEAD) {
            X509_free(x);
            snprintf(err, errlen, "seal %s: certificate chain does not fit %zu bytes", name, limit);
            rc = ACME_ELIMIT;
            goto out;
        }
        uint8_t *p = plain + plen;
        i2d_X509(x, &p);
        plen += (size_t)len;
        X509_free(x);
    }
    ERR_clear_error();
    if (plen == 4) {
        snprintf(err, errlen, "seal %s: no certificate", name);
        goto out;
    }
    put32(plain, (uint32_t)(plen - 4));
    kbio = BIO_new_mem_buf(cert->key_pem, -1);
    pkey = kbio ? PEM_read_bio_PrivateKey(kbio, NULL, NULL, NULL) : NULL;
    len = pkey ? i2d_PrivateKey(pkey, &der) : -1;
    if (len <= 0) {
        ERR_clear_error();
        snprintf(err, errlen, "seal %s: unreadable private key", name);
        goto out;
    }
    if (plen + 4 + (size_t)len + 8 > limit - SEAL_OVERHEAD) {
        snprintf(err, errlen, "seal %s: certificate and key do not fit %zu bytes", name, limit);
        rc = ACME_ELIMIT;
        goto out;
    }
    put32(plain + plen, (uint32_t)len);
    memcpy(plain + plen + 4, der, (size_t)len);
    plen += 4 + (size_t)len;
    put32(plain + plen, (uint32_t)((uint64_t)cert->not_after >> 32));
    put32(plain + plen + 4, (uint32_t)cert->not_after);
    plen += 8;

    memcpy(out, SEAL_MAGIC, 4);
    if (RAND_bytes(out + 4, SEAL_NONCE) != 1 ||
        !gcm(true, key, out + 4, name, plain, plen, out + 4 + SEAL_NONCE,
             out + 4 + SEAL_NONCE + plen)) {
        snprintf(err, errlen, "seal %s: AES-256-GCM failed", name);
        rc = ACME_ECRYPTO;
        goto out;
    }
    *out_len = plen + SEAL_OVERHEAD;
    rc = ACME_OK;
out:
    if (plain) {
        OPENSSL_cleanse(plain, limit);
        free(plain);
    }
    if (der) {
        OPENSSL_cleanse(der, (size_t)i2d_PrivateKey(pkey, NULL));
        OPENSSL_free(der);
    }
    EVP_PKEY_free(pkey);
    BIO_free(kbio);
    BIO_free(bio);
    return rc;
}

/* PEM of one object into a new string appended to *acc. */
static bool append_pem(char **acc, BIO *bio)
{
    char *data;
    long n = BIO_get_mem_data(bio, &data);
    size_t old = *acc ? strlen(*acc) : 0;
    char *grown = realloc(*acc, old + (size_t)n + 1);
    if (!grown)
        return false;
    memcpy(grown + old, data, (size_t)n);
    grown[old + (size_t)n] = '\0';
    *acc = grown;
    return true;
}

int acme_cert_open(const uint8_t (*keys)[ACME_SEAL_KEY_LEN], size_t nkeys, const char *name,
                   const uint8_t *in, size_t len, struct acme_cert *out, char *err, size_t errlen)
{
    uint8_t *plain = NULL;
    size_t plen, off, chain_len, key_len;
    X509 *leaf = NULL;
    EVP_PKEY *pkey = NULL;
    bool opened = false;
    int rc = ACME_EINVAL;

    memset(out, 0, sizeof(*out));
    if (len < SEAL_OVERHEAD + 4 + 4 + 8 || len > ACME_SEALED_MAX ||
        memcmp(in, SEAL_MAGIC, 4) != 0) {
        snprintf(err, errlen, "certificate item for %s: not a sealed certificate", name);
        return ACME_EINVAL;
    }
    plen = len - SEAL_OVERHEAD;
    plain = malloc(plen);
    if (!plain) {
        snprintf(err, errlen, "out of memory");
        return ACME_ENOMEM;
    }
    for (size_t k = 0; k < nkeys && !opened; k++)
        opened = gcm(false, keys[k], in + 4, name, in + 4 + SEAL_NONCE, plen, plain,
                     (uint8_t *)(in + 4 + SEAL_NONCE + plen));
    if (!opened) {
        snprintf(err, errlen, "certificate item for %s: no cluster key opens it", name);
        goto out;
    }
    /* every length checked against what is left */
    chain_len = get32(plain);
    if (chain_len == 0 || chain_len > plen - 4 - 4 - 8)
        goto malformed;
    key_len = get32(plain + 4 + chain_len);
    if (key_len == 0 || key_len != plen - 4 - chain_len - 4 - 8)
        goto malformed;
    off = 4;
    while (off < 4 + chain_len) {
        const uint8_t *p = plain + off;
        X509 *x = d2i_X509(NULL, &p, (long)(4 + chain_len - off));
        BIO *bio = BIO_new(BIO_s_mem());
        bool ok = x && bio && PEM_write_bio_X509(bio, x) == 1 && append_pem(&out->cert_pem, bio);
        BIO_free(bio);
        if (!ok) {
            X509_free(x);
            goto malformed;
        }
        off = (size_t)(p - plain);
        if (!leaf)
            leaf = x;
        else
            X509_free(x);
    }
    {
        const uint8_t *p = plain + 4 + chain_len + 4;
        pkey = d2i_AutoPrivateKey(NULL, &p, (long)key_len);
        BIO *bio = BIO_new(BIO_s_mem());
        bool ok = pkey && bio &&
                  PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1 &&
                  append_pem(&out->key_pem, bio);
        BIO_free(bio);
        if (!ok)
            goto malformed;
    }
    out->not_after = (time_t)((uint64_t)get32(plain + plen - 8) << 32 | get32(plain + plen - 4));
    if (X509_check_private_key(leaf, pkey) != 1 ||
        X509_check_host(leaf, name, strlen(name), 0, NULL) != 1) {
        snprintf(err, errlen, "certificate item for %s: key or name does not match", name);
        goto fail;
    }
    rc = ACME_OK;
    goto out;
malformed:
    snprintf(err, errlen, "certificate item for %s: malformed content", name);
fail:
    acme_cert_free(out);
out:
    ERR_clear_error();
    X509_free(leaf);
    EVP_PKEY_free(pkey);
    if (plain) {
        OPENSSL_cleanse(plain, plen);
        free(plain);
    }
    return rc;
}
