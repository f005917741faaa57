/*
 * bench_records.c - cost of the record path every submitted or gossiped record takes:
 * encode, decode (with the canonical re-encode), validate, sign, verify.
 *
 * The anchor for sign and verify is OpenSSL itself in the same run: raw EVP_DigestSign /
 * EVP_DigestVerify over a message of the same size with a ready EVP_PKEY. The ratio is the
 * overhead webgw adds (encoding the body, building the public key from the owner id).
 *
 * Usage: bench_records [iterations]   (default 20000 for sign/verify, 20x that for the rest)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "state/state.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void report(const char *what, long n, double secs)
{
    printf("%-28s %10.0f ops/s  %8.0f ns/op\n", what, (double)n / secs, secs * 1e9 / (double)n);
}

static struct state_record sample(void)
{
    struct state_record rec;

    memset(&rec, 0, sizeof(rec));
    rec.kind = STATE_RECORD_PROXY;
    strcpy(rec.name, "benchmark-app");
    rec.version = 42;
    rec.reserved_at_ms = 1700000000000ULL;
    rec.issued_at_ms = 1700000100000ULL;
    rec.backend_count = 2;
    rec.backends[0] = (struct state_backend){.family = 4, .addr = {10, 1, 2, 3}, .port = 8080};
    rec.backends[1] =
        (struct state_backend){.family = 6, .addr = {0x02, 0x00, [15] = 5}, .port = 8080};
    return rec;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 20000, fast = n * 20;
    const struct state_validate_policy pol = {.now_ms = 1700000200000ULL, .domain = "localhost"};
    char keypath[] = "/tmp/webgw-bench-key-XXXXXX", err[STATE_ERR_MAX];
    uint8_t buf[STATE_RECORD_MAX_BYTES], body[STATE_RECORD_MAX_BYTES], sig[64];
    struct state_record rec = sample(), out;
    double t, ours_sign, ours_verify, raw_sign, raw_verify;
    struct state_key *key;
    EVP_PKEY *pkey;
    size_t siglen;
    FILE *fp;
    int len, body_len, fd;
    volatile long sink = 0;

    fd = mkstemp(keypath);
    if (fd < 0)
        return 1;
    close(fd);
    unlink(keypath); /* state_key_generate refuses existing files */
    key = state_key_generate(keypath, err, sizeof(err));
    if (key == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    fp = fopen(keypath, "r");
    pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    unlink(keypath);
    state_record_sign(&rec, key, err, sizeof(err));
    len = state_record_encode(&rec, buf, sizeof(buf));
    body_len = state_record_encode_body(&rec, body, sizeof(body));
    printf("record: %d bytes signed, %d bytes body (proxy, 2 backends)\n", len, body_len);

    t = now_s();
    for (long i = 0; i < fast; i++)
        sink += state_record_encode(&rec, buf, sizeof(buf));
    report("encode", fast, now_s() - t);
    t = now_s();
    for (long i = 0; i < fast; i++)
        sink += state_record_decode(buf, (size_t)len, &out, err, sizeof(err));
    report("decode (canonical check)", fast, now_s() - t);
    t = now_s();
    for (long i = 0; i < fast; i++)
        sink += state_record_validate(&rec, &pol, err, sizeof(err));
    report("validate", fast, now_s() - t);

    t = now_s();
    for (long i = 0; i < n; i++)
        sink += state_record_sign(&rec, key, err, sizeof(err));
    ours_sign = now_s() - t;
    report("state_record_sign", n, ours_sign);
    t = now_s();
    for (long i = 0; i < n; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        siglen = sizeof(sig);
        EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey);
        sink += EVP_DigestSign(ctx, sig, &siglen, body, (size_t)body_len + 16);
        EVP_MD_CTX_free(ctx);
    }
    raw_sign = now_s() - t;
    report("anchor: EVP_DigestSign", n, raw_sign);

    t = now_s();
    for (long i = 0; i < n; i++)
        sink += state_record_verify(&rec, err, sizeof(err));
    ours_verify = now_s() - t;
    report("state_record_verify", n, ours_verify);
    t = now_s();
    for (long i = 0; i < n; i++) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey);
        sink += EVP_DigestVerify(ctx, sig, sizeof(sig), body, (size_t)body_len + 16);
        EVP_MD_CTX_free(ctx);
    }
    raw_verify = now_s() - t;
    report("anchor: EVP_DigestVerify", n, raw_verify);

    printf("ratio sign   webgw/anchor throughput: %.2f\n", raw_sign / ours_sign);
    printf("ratio verify webgw/anchor throughput: %.2f\n", raw_verify / ours_verify);
    EVP_PKEY_free(pkey);
    state_key_free(key);
    return sink == 0 ? 1 : 0;
}
