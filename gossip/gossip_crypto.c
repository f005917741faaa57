/*
 * gossip_crypto.c - the packet envelope: version byte, label, AES-256-GCM keyring.
 *
 * Every datagram and stream message starts with a clear header:
 *
 *     version (1) | flags (1) | label length (1) | label (0..64)
 *
 * followed by the body, either plain or `time (8) | nonce (12) | ciphertext | tag (16)`. The
 * header and the time (the sender's wall clock in ms) are the GCM associated data: the time
 * feeds the replay window (gossip_replay.c), checked before any decryption. The keys are not
 * the operator's cluster keys but keys derived from them with HKDF for gossip alone
 * (gossip_key_derive); the header is the GCM associated data, so a packet of another cluster
 * (another label) fails to authenticate even if it shares our key; the label also travels in clear
 * so such packets are dropped and counted as "label" before any decryption is tried. The first key
 * of the ring encrypts; opening tries every key, so an operator rotates by adding the new key
 * second, then first, then removing the old one, with no moment where two members cannot talk.
 * Nonces are random: with 96 bits, collisions under one key stay negligible for far more
 * packets than a key should see.
 */
#include "gossip/gossip_int.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- key files --------------------------------------------------------------------------- */

int gossip_keyring_parse(const char *text, size_t len, struct gossip_keyring *out, char *err,
                         size_t errlen)
{
    size_t pos = 0;
    unsigned lineno = 0;

    memset(out, 0, sizeof(*out));
    while (pos < len) {
        const char *line = text + pos;
        size_t n = 0, b = 0, e;
        char clean[128];
        uint8_t raw[96];
        int dec;
        size_t pad = 0;

        while (pos + n < len && line[n] != '\n')
            n++;
        pos += n + 1;
        lineno++;
        /* trim spaces and a CR */
        while (b < n && (line[b] == ' ' || line[b] == '\t'))
            b++;
        e = n;
        while (e > b && (line[e - 1] == ' ' || line[e - 1] == '\t' || line[e - 1] == '\r'))
            e--;
        if (e == b || line[b] == '#')
            continue;
        if (e - b != 44) {
            snprintf(err, errlen, "line %u: want a base64 32-byte key (44 characters), got %zu",
                     lineno, e - b);
            goto fail;
        }
        if (out->count == GOSSIP_KEYS_MAX) {
            snprintf(err, errlen, "line %u: more than %d keys", lineno, GOSSIP_KEYS_MAX);
            goto fail;
        }
        memcpy(clean, line + b, e - b);
        clean[e - b] = '\0';
        for (size_t i = 0; i < e - b; i++) {
            char c = clean[i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= 42))) {
                snprintf(err, errlen, "line %u: not base64", lineno);
                goto fail;
            }
        }
        while (pad < 2 && clean[43 - pad] == '=')
            pad++;
        dec = EVP_DecodeBlock(raw, (const unsigned char *)clean, 44);
        if (dec < 0 || (size_t)dec - pad != GOSSIP_KEY_LEN) {
            snprintf(err, errlen, "line %u: key is not 32 bytes", lineno);
            goto fail;
        }
        memcpy(out->keys[out->count++], raw, GOSSIP_KEY_LEN);
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(clean, sizeof(clean));
    }
    return 0;
fail:
    OPENSSL_cleanse(out, sizeof(*out));
    return GOSSIP_EINVAL;
}

int gossip_keyring_load(const char *path, struct gossip_keyring *out, char *err, size_t errlen)
{
    char buf[4096];
    char msg[GOSSIP_ERR_MAX];
    FILE *f;
    size_t n;
    bool rerr, big;
    int rc;

    memset(out, 0, sizeof(*out));
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cluster key %s: %s", path, strerror(errno));
        return GOSSIP_EIO;
    }
    n = fread(buf, 1, sizeof(buf), f);
    rerr = ferror(f) != 0;
    big = !rerr && (n == sizeof(buf) && fgetc(f) != EOF);
    fclose(f);
    if (rerr || big) {
        snprintf(err, errlen, "cluster key %s: %s", path,
                 rerr ? "read error" : "file larger than 4 KiB");
        OPENSSL_cleanse(buf, sizeof(buf));
        return rerr ? GOSSIP_EIO : GOSSIP_ETOOBIG;
    }
    rc = gossip_keyring_parse(buf, n, out, msg, sizeof(msg));
    OPENSSL_cleanse(buf, sizeof(buf));
    if (rc != 0) {
        snprintf(err, errlen, "cluster key %s: %s", path, msg);
        return rc;
    }
    if (out->count == 0) {
        snprintf(err, errlen, "cluster key %s: no key in file", path);
        return GOSSIP_EINVAL;
    }
    return 0;
}

/* ---- envelope ---------------------------------------------------------------------------- */

static size_t genv_header(const char *label, uint8_t *out, bool encrypted)
{
    size_t n = strlen(label);

    out[0] = GOSSIP_WIRE_VERSION;
    out[1] = encrypted ? GOSSIP_FLAG_ENCRYPTED : 0;
    out[2] = (uint8_t)n;
    memcpy(out + 3, label, n);
    return 3 + n;
}

size_t genv_overhead(const struct gossip_keyring *kr, const char *label)
{
    size_t n = 3 + strlen(label);

    if (kr->count > 0)
        n += GOSSIP_TIME_LEN + GOSSIP_NONCE_LEN + GOSSIP_TAG_LEN;
    return n;
}

int genv_seal(EVP_CIPHER_CTX *ctx, const struct gossip_keyring *kr, const char *label,
              uint64_t now_ms, const uint8_t *body, size_t len, uint8_t *out, size_t cap)
{
    size_t h, need = genv_overhead(kr, label) + len;
    uint8_t *nonce, *ct;
    int n1 = 0, n2 = 0;

    if (need > cap || len > INT32_MAX)
        return GOSSIP_ETOOBIG;
    h = genv_header(label, out, kr->count > 0);
    if (kr->count == 0) {
        memcpy(out + h, body, len);
        return (int)(h + len);
    }
    for (int i = 0; i < GOSSIP_TIME_LEN; i++)
        out[h + i] = (uint8_t)(now_ms >> (8 * (GOSSIP_TIME_LEN - 1 - i)));
    h += GOSSIP_TIME_LEN;
    nonce = out + h;
    ct = nonce + GOSSIP_NONCE_LEN;
    if (RAND_bytes(nonce, GOSSIP_NONCE_LEN) != 1)
        return GOSSIP_ECRYPTO;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kr->keys[0], nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &n1, out, (int)h) != 1 ||
        EVP_EncryptUpdate(ctx, ct, &n1, body, (int)len) != 1 ||
        EVP_EncryptFinal_ex(ctx, ct + n1, &n2) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GOSSIP_TAG_LEN, ct + len) != 1)
        return GOSSIP_ECRYPTO;
    return (int)need;
}

int genv_open(EVP_CIPHER_CTX *ctx, const struct gossip_keyring *kr, const char *label,
              struct greplay *replay, uint64_t now_ms, uint8_t *in, size_t len, uint8_t **body,
              enum gossip_drop_reason *reason)
{
    size_t llen = strlen(label), h, clen;
    uint8_t *nonce, *ct, *tag;
    uint64_t ts = 0;
    uint8_t *plain = NULL;
    int rc = GOSSIP_EMALFORMED;

    *reason = GOSSIP_DROP_MALFORMED;
    if (len < 3)
        return GOSSIP_EMALFORMED;
    if (in[0] != GOSSIP_WIRE_VERSION) {
        *reason = GOSSIP_DROP_VERSION;
        return GOSSIP_EMALFORMED;
    }
    if ((in[1] & ~GOSSIP_FLAG_ENCRYPTED) != 0 || in[2] > GOSSIP_LABEL_MAX ||
        len < 3 + (size_t)in[2])
        return GOSSIP_EMALFORMED;
    if (in[2] != llen || memcmp(in + 3, label, llen) != 0) {
        *reason = GOSSIP_DROP_LABEL;
        return GOSSIP_EMALFORMED;
    }
    h = 3 + llen;
    if (!(in[1] & GOSSIP_FLAG_ENCRYPTED)) {
        if (kr->count > 0) {
            *reason = GOSSIP_DROP_UNENCRYPTED;
            return GOSSIP_EMALFORMED;
        }
        *body = in + h;
        return (int)(len - h);
    }
    if (kr->count == 0) {
        *reason = GOSSIP_DROP_ENCRYPTED;
        return GOSSIP_EMALFORMED;
    }
    if (len < h + GOSSIP_TIME_LEN + GOSSIP_NONCE_LEN + GOSSIP_TAG_LEN || len - h > INT32_MAX)
        return GOSSIP_EMALFORMED;
    for (int i = 0; i < GOSSIP_TIME_LEN; i++)
        ts = (ts << 8) | in[h + i];
    h += GOSSIP_TIME_LEN;
    nonce = in + h;
    /* a replay (or a capture from outside the window) is refused for the price of a lookup */
    if (replay != NULL && (rc = greplay_check(replay, now_ms, ts, nonce)) != 0) {
        *reason = rc == GOSSIP_ERANGE ? GOSSIP_DROP_CLOCK : GOSSIP_DROP_REPLAY;
        return GOSSIP_EMALFORMED;
    }
    ct = nonce + GOSSIP_NONCE_LEN;
    clen = len - h - GOSSIP_NONCE_LEN - GOSSIP_TAG_LEN;
    tag = ct + clen;
    /* Decrypt into a scratch copy so a wrong key does not clobber the ciphertext the next
     * key must see. */
    plain = malloc(clen ? clen : 1);
    if (plain == NULL)
        return GOSSIP_ENOMEM;
    *reason = GOSSIP_DROP_DECRYPT;
    rc = GOSSIP_ECRYPTO;
    for (size_t k = 0; k < kr->count; k++) {
        int n1 = 0, n2 = 0;
        if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, kr->keys[k], nonce) != 1 ||
            EVP_DecryptUpdate(ctx, NULL, &n1, in, (int)h) != 1 ||
            EVP_DecryptUpdate(ctx, plain, &n1, ct, (int)clen) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GOSSIP_TAG_LEN, tag) != 1)
            continue;
        if (EVP_DecryptFinal_ex(ctx, plain + n1, &n2) == 1) {
            memcpy(ct, plain, clen);
            *body = ct;
            rc = (int)clen;
            if (replay != NULL)
                greplay_record(replay, now_ms, ts, nonce);
            break;
        }
    }
    free(plain);
    return rc;
}
