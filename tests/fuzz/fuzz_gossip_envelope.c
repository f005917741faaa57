/*
 * fuzz_gossip_envelope.c - libFuzzer target for the gossip envelope (gossip_crypto.c
 * genv_open) and its replay window (gossip_replay.c), with oracles:
 *
 *   first byte even: the rest is one raw envelope, opened by a member with a test key and a
 *   window. Nothing crashes; a refusal gives a reason; whatever opens lies inside the input.
 *
 *   first byte odd: the rest is a script of up to 16 steps [flags, clock skew (2 bytes, signed
 *   s), length, body...]. Each body is sealed under the test key at the sender's clock
 *   (base + skew) and opened at base + step; then:
 *     - an envelope sealed within the window opens the first time, to the same body;
 *     - one sealed outside the window is refused with GOSSIP_DROP_CLOCK;
 *     - the same bytes again are refused (replay), never opened twice;
 *     - with flag bit 0, one byte (flag-chosen) is flipped first: then it never opens;
 *     - with flag bit 1, it is opened under another label: refused, and the window unchanged
 *       (the genuine copy still opens afterwards).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gossip/gossip_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define BASE_MS 1800000000000ULL

static void keyring(struct gossip_keyring *kr)
{
    memset(kr, 0, sizeof(*kr));
    for (int i = 0; i < GOSSIP_KEY_LEN; i++)
        kr->keys[0][i] = (uint8_t)(i * 7 + 1);
    kr->count = 1;
}

static void raw(EVP_CIPHER_CTX *ctx, struct greplay *replay, const uint8_t *data, size_t size)
{
    struct gossip_keyring kr, plain = {.count = 0};
    enum gossip_drop_reason reason = GOSSIP_DROP__COUNT;
    uint8_t *copy = malloc(size ? size : 1), *body = NULL;
    int rc;

    keyring(&kr);
    memcpy(copy, data, size);
    rc = genv_open(ctx, &kr, "webgw", replay, BASE_MS, copy, size, &body, &reason);
    if (rc < 0 && reason >= GOSSIP_DROP__COUNT)
        abort();
    if (rc >= 0 && (body < copy || body + rc > copy + size))
        abort();
    memcpy(copy, data, size);
    rc = genv_open(ctx, &plain, "webgw", NULL, BASE_MS, copy, size, &body, &reason);
    if (rc >= 0 && (body < copy || body + rc > copy + size))
        abort();
    free(copy);
}

static void script(EVP_CIPHER_CTX *ctx, struct greplay *replay, const uint8_t *p, size_t n)
{
    struct gossip_keyring kr;
    uint8_t env[2048], copy[2048], *body;
    enum gossip_drop_reason reason;
    uint64_t now = BASE_MS;

    keyring(&kr);
    /* at most 16 steps an input: each costs several AES-GCM passes, and the smoke test's
     * random inputs would otherwise run hundreds */
    for (int step = 0; step < 16 && n >= 4; step++) {
        uint8_t flags = p[0];
        int16_t skew_s = (int16_t)(p[1] << 8 | p[2]);
        size_t blen = p[3] < n - 4 ? p[3] : n - 4;
        const uint8_t *b = p + 4;
        uint64_t sent = now + (int64_t)skew_s * 1000;
        bool inside;
        int len, rc;

        p += 4 + blen;
        n -= 4 + blen;
        now += 250; /* the receiver's clock moves on a little each step */
        inside = sent + GOSSIP_REPLAY_WINDOW_MS >= now && sent <= now + GOSSIP_REPLAY_WINDOW_MS;
        len = genv_seal(ctx, &kr, "webgw", sent, b, blen, env, sizeof(env));
        if (len < 0)
            abort();
        if (flags & 2) { /* another cluster's label: refused, nothing recorded */
            memcpy(copy, env, (size_t)len);
            if (genv_open(ctx, &kr, "other", replay, now, copy, (size_t)len, &body, &reason) >= 0)
                abort();
        }
        if (flags & 1) { /* a flipped byte never opens */
            size_t at = (size_t)(flags >> 2) * 7 % (size_t)len;
            memcpy(copy, env, (size_t)len);
            copy[at] ^= (uint8_t)(1 | flags);
            if (genv_open(ctx, &kr, "webgw", replay, now, copy, (size_t)len, &body, &reason) >= 0)
                abort();
        }
        memcpy(copy, env, (size_t)len);
        rc = genv_open(ctx, &kr, "webgw", replay, now, copy, (size_t)len, &body, &reason);
        if (inside && (rc != (int)blen || memcmp(body, b, blen) != 0))
            abort();
        if (!inside && (rc >= 0 || reason != GOSSIP_DROP_CLOCK))
            abort();
        memcpy(copy, env, (size_t)len);
        if (genv_open(ctx, &kr, "webgw", replay, now, copy, (size_t)len, &body, &reason) >= 0)
            abort(); /* a replay */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static EVP_CIPHER_CTX *ctx;
    struct greplay *replay;

    if (size < 1 || size > 8192)
        return 0;
    if (ctx == NULL)
        ctx = EVP_CIPHER_CTX_new();
    replay = greplay_new();
    if (ctx == NULL || replay == NULL)
        abort();
    if (data[0] % 2 == 0)
        raw(ctx, replay, data + 1, size - 1);
    else
        script(ctx, replay, data + 1, size - 1);
    greplay_free(replay);
    return 0;
}
