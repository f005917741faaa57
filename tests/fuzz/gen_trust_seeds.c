/*
 * gen_trust_seeds.c - writes the seed corpora of fuzz_witness_decode and fuzz_gossip_envelope
 * from our own encoders: bundles with 0 to 4 witnesses of every record kind, bare witnesses and
 * store entries (first byte 0, 1, 2), and envelope scripts and sealed envelopes (first byte 1
 * and 0). Run from the repository root after changing a format:
 *   build-fuzz/fuzz/gen_trust_seeds tests/fuzz/corpus/witness_decode
 * tests/fuzz/corpus/gossip_envelope
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "gossip/gossip_int.h"
#include "state/state.h"

static void put(const char *dir, const char *name, uint8_t tag, const uint8_t *p, size_t n)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fputc(tag, f) == EOF || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static struct state_key *key(const char *name)
{
    char path[256], err[STATE_ERR_MAX];
    struct state_key *k;

    snprintf(path, sizeof(path), "/tmp/gen_trust_seeds.%d.%s", (int)getpid(), name);
    k = state_key_generate(path, err, sizeof(err));
    unlink(path);
    if (k == NULL) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    return k;
}

static void witness_seeds(const char *dir)
{
    static const char *const backends[] = {"http://10.0.0.1:8080", "http://[fd00::2]:80"};
    struct state_key *owner = key("owner"), *gw[4] = {key("g0"), key("g1"), key("g2"), key("g3")};
    const uint64_t now = 1800000000000ULL;
    uint8_t buf[STATE_BUNDLE_MAX_BYTES];
    char err[STATE_ERR_MAX], name[64];
    struct state_witness w[4];
    struct state_record rec;
    int n;

    for (int kind = 0; kind < 4; kind++) {
        static const enum state_record_kind kinds[] = {STATE_RECORD_RESERVE, STATE_RECORD_PROXY,
                                                       STATE_RECORD_FQDN, STATE_RECORD_RELEASE};
        const char *keyname = kinds[kind] == STATE_RECORD_FQDN ? "shop.example.org" : "shop";
        size_t nb = kinds[kind] == STATE_RECORD_PROXY || kinds[kind] == STATE_RECORD_FQDN ? 2 : 0;

        if (state_record_build(&rec, kinds[kind], keyname, backends, nb, false, now, err,
                               sizeof(err)) != 0 ||
            state_record_sign(&rec, owner, err, sizeof(err)) != 0) {
            fprintf(stderr, "record: %s\n", err);
            exit(1);
        }
        for (int i = 0; i < 4; i++)
            state_witness_sign(&w[i], gw[i], &rec, now + 1000 * (uint64_t)i, err, sizeof(err));
        for (size_t count = 0; count <= 4; count += kind == 1 ? 1 : 4) {
            n = state_bundle_encode(&rec, w, count, buf, sizeof(buf));
            snprintf(name, sizeof(name), "bundle-%s-%zu", state_record_kind_name(rec.kind), count);
            put(dir, name, 0, buf, (size_t)n);
        }
        n = state_witness_encode(&w[kind], buf, sizeof(buf));
        snprintf(name, sizeof(name), "witness-%s", state_record_kind_name(rec.kind));
        put(dir, name, 1, buf, (size_t)n);
        n = state_witness_entry_encode(rec.name, rec.owner, &w[kind], buf, sizeof(buf));
        snprintf(name, sizeof(name), "entry-%s", state_record_kind_name(rec.kind));
        put(dir, name, 2, buf, (size_t)n);
    }
    state_key_free(owner);
    for (int i = 0; i < 4; i++)
        state_key_free(gw[i]);
}

static void envelope_seeds(const char *dir)
{
    /* scripts: [flags, skew s (2 bytes), length, body] steps */
    static const uint8_t s1[] = {0,   0,   0,   5, 'h',  'e',  'l', 'l', 'o',  1,    0, 10,  3,
                                 'a', 'b', 'c', 2, 0xff, 0xf6, 0,   3,   0x02, 0x58, 2, 'x', 'y'};
    static const uint8_t s2[] = {0, 0x0e, 0x10, 4, 'l', 'a', 't', 'e', 0, 0xf1, 0xf0, 1, 'e'};
    struct gossip_keyring kr = {.count = 1};
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t env[512];
    int n;

    put(dir, "script-steps", 1, s1, sizeof(s1));
    put(dir, "script-clock", 1, s2, sizeof(s2));
    for (int i = 0; i < GOSSIP_KEY_LEN; i++) /* the target's test key */
        kr.keys[0][i] = (uint8_t)(i * 7 + 1);
    n = genv_seal(ctx, &kr, "webgw", 1800000000000ULL, (const uint8_t *)"\x93\x01\x02\x03", 4, env,
                  sizeof(env));
    put(dir, "raw-sealed", 0, env, (size_t)n);
    n = genv_seal(ctx, &kr, "webgw", 1800000000000ULL - 3600000, (const uint8_t *)"\x90", 1, env,
                  sizeof(env));
    put(dir, "raw-sealed-old", 0, env, (size_t)n);
    kr.count = 0;
    n = genv_seal(ctx, &kr, "webgw", 0, (const uint8_t *)"\x93\x01\x02\x03", 4, env, sizeof(env));
    put(dir, "raw-plain", 0, env, (size_t)n);
    EVP_CIPHER_CTX_free(ctx);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: gen_trust_seeds WITNESS_DIR ENVELOPE_DIR\n");
        return 2;
    }
    witness_seeds(argv[1]);
    envelope_seeds(argv[2]);
    return 0;
}
