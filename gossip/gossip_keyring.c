/*
 * gossip_keyring.c - changing the keyring of a running member (key rotation without downtime).
 *
 * A rolling rotation is three keyring changes applied on every member in turn: install the new
 * key as a secondary (everyone still encrypts with the old one, everyone can now read both),
 * make it primary (members already switched and members not yet switched still understand each
 * other), then drop the old key. The envelope (gossip_crypto.c) tries every key on receive, so
 * no step ever leaves two members unable to talk; a member that missed the whole rotation is
 * cut off and its packets are counted as "decrypt" drops.
 *
 * Switching between plain and encrypted at runtime is refused: a plain member drops encrypted
 * packets and an encrypted member drops plain ones, so there is no order of per-member switches
 * that keeps the fleet connected. That change needs every member restarted with the new
 * setting.
 */
#include "gossip/gossip_int.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

int gossip_set_keyring(struct gossip *g, const struct gossip_keyring *kr, char *err, size_t errlen)
{
    struct gossip_keyring wire;

    if (kr->count > GOSSIP_KEYS_MAX) {
        snprintf(err, errlen, "keyring: %zu keys, at most %d", kr->count, GOSSIP_KEYS_MAX);
        return GOSSIP_EINVAL;
    }
    if ((kr->count == 0) != (g->cfg.keyring.count == 0)) {
        snprintf(err, errlen,
                 "keyring: cannot switch a running member from %s to %s (restart every member "
                 "with the new setting)",
                 g->cfg.keyring.count ? "encrypted" : "plain", kr->count ? "encrypted" : "plain");
        return GOSSIP_EINVAL;
    }
    for (size_t i = 0; i < kr->count; i++)
        for (size_t j = i + 1; j < kr->count; j++)
            if (CRYPTO_memcmp(kr->keys[i], kr->keys[j], GOSSIP_KEY_LEN) == 0) {
                snprintf(err, errlen, "keyring: key %zu repeats key %zu", j + 1, i + 1);
                return GOSSIP_EINVAL;
            }
    if (gossip_keyring_derive(kr, &wire) != 0) {
        snprintf(err, errlen, "keyring: key derivation failed");
        return GOSSIP_ECRYPTO;
    }
    OPENSSL_cleanse(&g->cfg.keyring, sizeof(g->cfg.keyring));
    memcpy(&g->cfg.keyring, kr, sizeof(*kr));
    OPENSSL_cleanse(&g->wire, sizeof(g->wire));
    g->wire = wire;
    OPENSSL_cleanse(&wire, sizeof(wire));
    return 0;
}

int gossip_key_derive(const uint8_t key[GOSSIP_KEY_LEN], const char *purpose,
                      uint8_t out[GOSSIP_KEY_LEN])
{
    static const char salt[] = "webgw cluster key";
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    OSSL_PARAM params[5];
    int ok;

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, GOSSIP_KEY_LEN);
    params[2] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, sizeof(salt) - 1);
    params[3] =
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)purpose, strlen(purpose));
    params[4] = OSSL_PARAM_construct_end();
    ok = kctx != NULL && EVP_KDF_derive(kctx, out, GOSSIP_KEY_LEN, params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : GOSSIP_ECRYPTO;
}

int gossip_keyring_derive(const struct gossip_keyring *raw, struct gossip_keyring *wire)
{
    memset(wire, 0, sizeof(*wire));
    for (size_t i = 0; i < raw->count && i < GOSSIP_KEYS_MAX; i++)
        if (gossip_key_derive(raw->keys[i], GOSSIP_KDF_GOSSIP, wire->keys[i]) != 0) {
            OPENSSL_cleanse(wire, sizeof(*wire));
            return GOSSIP_ECRYPTO;
        }
    wire->count = raw->count;
    return 0;
}

void gossip_keyring_get(const struct gossip *g, struct gossip_keyring *out)
{
    memcpy(out, &g->cfg.keyring, sizeof(*out));
}

void gossip_key_fingerprint(const uint8_t key[GOSSIP_KEY_LEN], char out[GOSSIP_KEY_FPR_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t md[SHA256_DIGEST_LENGTH];

    SHA256(key, GOSSIP_KEY_LEN, md);
    for (size_t i = 0; i < GOSSIP_KEY_FPR_LEN / 2; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0xf];
    }
    out[GOSSIP_KEY_FPR_LEN] = '\0';
}
