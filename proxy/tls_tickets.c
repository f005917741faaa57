/*
 * tls_tickets.c - session ticket keys that a whole cluster can share.
 *
 * OpenSSL's default ticket keys are random per SSL_CTX, so a session could only resume on
 * the gateway (and the certificate generation) that issued it. DNS round-robin sends a
 * returning client to any gateway, so webgw encrypts tickets itself (RFC 5077 layout:
 * 16-byte key name, AES-256-CBC, HMAC-SHA256) under keys set from outside; the cluster
 * derives them from its shared key with tls_ticket_key_derive(), one per epoch, and rotates
 * by installing {current, previous}. Reloading certificates keeps the ring, so tickets
 * survive reloads too.
 */
#include "proxy/tls_certs_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

static int ticket_err(char *err, size_t errlen, int code, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return code;
}

int tls_ticket_key_derive(const uint8_t *secret, size_t secret_len, uint64_t epoch,
                          struct tls_ticket_key *out, char *err, size_t errlen)
{
    static const char salt[] = "webgw tls session ticket key v1";
    uint8_t info[8], okm[16 + 32 + 32];
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *kctx = NULL;
    OSSL_PARAM params[5];
    int rc = TLS_ECRYPTO;

    for (int i = 0; i < 8; i++)
        info[i] = (uint8_t)(epoch >> (56 - 8 * i));
    kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    if (!kctx) {
        ticket_err(err, errlen, rc, "HKDF unavailable");
        goto out;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, "SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len);
    params[2] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sizeof(salt) - 1);
    params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info));
    params[4] = OSSL_PARAM_construct_end();
    if (secret_len == 0 || EVP_KDF_derive(kctx, okm, sizeof(okm), params) != 1) {
        ticket_err(err, errlen, rc, "HKDF derive failed");
        goto out;
    }
    memcpy(out->name, okm, 16);
    memcpy(out->aes_key, okm + 16, 32);
    memcpy(out->hmac_key, okm + 48, 32);
    rc = TLS_OK;
out:
    OPENSSL_cleanse(okm, sizeof(okm));
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return rc;
}

int tls_ticket_ring_init(struct tls_ticket_ring *ring, char *err, size_t errlen)
{
    memset(ring, 0, sizeof(*ring));
    if (pthread_mutex_init(&ring->lock, NULL) != 0)
        return ticket_err(err, errlen, TLS_ENOMEM, "pthread_mutex_init failed");
    if (RAND_bytes((unsigned char *)&ring->keys[0], sizeof(ring->keys[0])) != 1) {
        pthread_mutex_destroy(&ring->lock);
        return ticket_err(err, errlen, TLS_ECRYPTO, "RAND_bytes failed");
    }
    ring->n = 1;
    return TLS_OK;
}

void tls_ticket_ring_destroy(struct tls_ticket_ring *ring)
{
    OPENSSL_cleanse(ring->keys, sizeof(ring->keys));
    pthread_mutex_destroy(&ring->lock);
}

int tls_ticket_ring_set(struct tls_ticket_ring *ring, const struct tls_ticket_key *keys, size_t n,
                        char *err, size_t errlen)
{
    if (n < 1 || n > TLS_TICKET_KEYS_MAX) {
        if (err && errlen)
            snprintf(err, errlen, "ticket keys: %zu given, 1 to %d allowed", n,
                     TLS_TICKET_KEYS_MAX);
        return TLS_EINVAL;
    }
    pthread_mutex_lock(&ring->lock);
    OPENSSL_cleanse(ring->keys, sizeof(ring->keys));
    memcpy(ring->keys, keys, n * sizeof(*keys));
    ring->n = n;
    pthread_mutex_unlock(&ring->lock);
    return TLS_OK;
}

static int set_hmac(EVP_MAC_CTX *hctx, const uint8_t *key)
{
    OSSL_PARAM params[3];
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)key, 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(hctx, params) == 1;
}

int tls_ticket_ring_crypt(struct tls_ticket_ring *ring, unsigned char key_name[16],
                          unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    struct tls_ticket_key key;
    size_t i;
    int rc;

    /* Copy the key out so the lock is never held across OpenSSL calls. */
    pthread_mutex_lock(&ring->lock);
    if (enc) {
        key = ring->keys[0];
        i = 0;
    } else {
        for (i = 0; i < ring->n; i++)
            if (memcmp(ring->keys[i].name, key_name, 16) == 0)
                break;
        if (i < ring->n)
            key = ring->keys[i];
    }
    size_t n = ring->n;
    pthread_mutex_unlock(&ring->lock);

    if (!enc && i == n)
        return 0; /* not ours (or retired): the client falls back to a full handshake */
    if (enc) {
        memcpy(key_name, key.name, 16);
        if (RAND_bytes(iv, 16) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes_key, iv) != 1 ||
            !set_hmac(hctx, key.hmac_key)) {
            rc = -1;
            goto out;
        }
        atomic_fetch_add_explicit(&ring->issued, 1, memory_order_relaxed);
        rc = 1;
    } else {
        if (!set_hmac(hctx, key.hmac_key) ||
            EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes_key, iv) != 1) {
            rc = -1;
            goto out;
        }
        atomic_fetch_add_explicit(&ring->recognised, 1, memory_order_relaxed);
        rc = i == 0 ? 1 : 2;
    }
out:
    OPENSSL_cleanse(&key, sizeof(key));
    return rc;
}
