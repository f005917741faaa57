/*
 * fuzz_gossip_keyring.c - libFuzzer target for gossip_keyring_parse(), the reader of the
 * cluster key file an operator writes by hand. Besides memory safety it checks the contract:
 * a refusal always says why and leaves no key behind, an accepted file holds at most
 * GOSSIP_KEYS_MAX keys, and writing those keys back out one base64 line each parses to the
 * same ring in the same order (the first key is the one that encrypts).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "gossip/gossip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct gossip_keyring zero;
    struct gossip_keyring kr, again;
    char err[GOSSIP_ERR_MAX] = "";
    char text[GOSSIP_KEYS_MAX * 46];
    size_t tlen = 0;

    if (size > 4096) /* gossip_keyring_load reads at most 4 KiB */
        return 0;
    if (gossip_keyring_parse((const char *)data, size, &kr, err, sizeof(err)) != 0) {
        if (err[0] == '\0' || memcmp(&kr, &zero, sizeof(kr)) != 0)
            abort();
        return 0;
    }
    if (kr.count > GOSSIP_KEYS_MAX)
        abort();
    for (size_t i = 0; i < kr.count; i++) {
        char fpr[GOSSIP_KEY_FPR_LEN + 1];
        int n = EVP_EncodeBlock((unsigned char *)text + tlen, kr.keys[i], GOSSIP_KEY_LEN);
        if (n != 44)
            abort();
        tlen += (size_t)n;
        text[tlen++] = '\n';
        gossip_key_fingerprint(kr.keys[i], fpr);
        if (strlen(fpr) != GOSSIP_KEY_FPR_LEN)
            abort();
    }
    if (gossip_keyring_parse(text, tlen, &again, err, sizeof(err)) != 0 ||
        again.count != kr.count || memcmp(again.keys, kr.keys, kr.count * sizeof(kr.keys[0])) != 0)
        abort();
    return 0;
}
