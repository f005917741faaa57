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

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

int gossip_set_keyring(struct gossip *g, const struct gossip_keyring *kr, char *err, size_t errlen)
{
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
    OPENSSL_cleanse(&g->cfg.keyring, sizeof(g->cfg.keyring));
    memcpy(&g->cfg.keyring, kr, sizeof(*kr));
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
