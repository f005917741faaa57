/*
 * test_acme_unit.c - the ACME pieces that need no CA: base64url, the JWS a CA verifies, the
 * account key file, the challenge table the HTTP listener answers from, and the renewal and
 * backoff policy. The JWS is checked the way a CA would: by decoding it and verifying the
 * signature against the public key in its own header.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include "acme/acme_internal.h"

static void test_base64url_vectors(void **state)
{
    char out[32];
    /* RFC 4648 10, without padding, and the two characters that differ from base64 */
    assert_int_equal(acme_base64url((const uint8_t *)"", 0, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    acme_base64url((const uint8_t *)"f", 1, out, sizeof(out));
    assert_string_equal(out, "Zg");
    acme_base64url((const uint8_t *)"fo", 2, out, sizeof(out));
    assert_string_equal(out, "Zm8");
    acme_base64url((const uint8_t *)"foo", 3, out, sizeof(out));
    assert_string_equal(out, "Zm9v");
    acme_base64url((const uint8_t *)"foobar", 6, out, sizeof(out));
    assert_string_equal(out, "Zm9vYmFy");
    acme_base64url((const uint8_t *)"\xfb\xff", 2, out, sizeof(out));
    assert_string_equal(out, "-_8");
    assert_int_equal(acme_base64url((const uint8_t *)"foobar", 6, out, 8), 0); /* no room */
}

/* base64url decode, for checking. */
static size_t unb64url(const char *in, uint8_t *out, size_t cap)
{
    size_t len = strlen(in), o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const char *p = strchr(alphabet, in[i]);
        assert_non_null(p);
        acc = (acc << 6) | (uint32_t)(p - alphabet);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            assert_true(o < cap);
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return o;
}

/* Verifies a flattened JWS like a CA: header fields, then ES256 under the header's JWK. */
static void verify_jws(const char *jws, EVP_PKEY *expect_key, const char *kid, const char *payload)
{
    json_t *doc = json_loads(jws, 0, NULL), *hdr;
    const char *prot = json_string_value(json_object_get(doc, "protected"));
    const char *pay = json_string_value(json_object_get(doc, "payload"));
    const char *sig = json_string_value(json_object_get(doc, "signature"));
    uint8_t buf[2048], raw_sig[64], x[32], y[32], point[65];
    size_t n;

    assert_non_null(prot);
    assert_non_null(pay);
    assert_non_null(sig);
    n = unb64url(prot, buf, sizeof(buf) - 1);
    buf[n] = 0;
    hdr = json_loads((const char *)buf, 0, NULL);
    assert_non_null(hdr);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "ES256");
    assert_string_equal(json_string_value(json_object_get(hdr, "nonce")), "nonce-1");
    assert_string_equal(json_string_value(json_object_get(hdr, "url")), "https://ca/x");
    n = unb64url(pay, buf, sizeof(buf) - 1);
    buf[n] = 0;
    assert_string_equal((const char *)buf, payload);

    if (kid) {
        assert_string_equal(json_string_value(json_object_get(hdr, "kid")), kid);
        assert_null(json_object_get(hdr, "jwk"));
    } else {
        json_t *jwk = json_object_get(hdr, "jwk");
        assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "EC");
        assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "P-256");
        assert_int_equal(unb64url(json_string_value(json_object_get(jwk, "x")), x, 32), 32);
        assert_int_equal(unb64url(json_string_value(json_object_get(jwk, "y")), y, 32), 32);
        /* the JWK is the account key's public point */
        size_t plen = 0;
        assert_int_equal(EVP_PKEY_get_octet_string_param(expect_key, OSSL_PKEY_PARAM_PUB_KEY, point,
                                                         sizeof(point), &plen),
                         1);
        assert_int_equal(plen, 65);
        assert_memory_equal(point + 1, x, 32);
        assert_memory_equal(point + 33, y, 32);
    }

    /* signature: r || s over "protected.payload" */
    assert_int_equal(unb64url(sig, raw_sig, sizeof(raw_sig)), 64);
    ECDSA_SIG *es = ECDSA_SIG_new();
    ECDSA_SIG_set0(es, BN_bin2bn(raw_sig, 32, NULL), BN_bin2bn(raw_sig + 32, 32, NULL));
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(es, &der);
    char *input = NULL;
    assert_true(asprintf(&input, "%s.%s", prot, pay) > 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, expect_key), 1);
    assert_int_equal(
        EVP_DigestVerify(md, der, (size_t)der_len, (const uint8_t *)input, strlen(input)), 1);
    /* and a flipped payload byte does not verify */
    input[strlen(input) - 1] ^= 1;
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, expect_key), 1);
    assert_int_not_equal(
        EVP_DigestVerify(md, der, (size_t)der_len, (const uint8_t *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    free(input);
    OPENSSL_free(der);
    ECDSA_SIG_free(es);
    json_decref(hdr);
    json_decref(doc);
}

static void test_jws_verifies_like_a_ca_would(void **state)
{
    char err[ACME_ERR_MAX], tp[64], tp2[64], jwk[256];
    EVP_PKEY *key = acme_key_generate(err, sizeof(err));
    EVP_PKEY *other = acme_key_generate(err, sizeof(err));
    char *jws;

    assert_non_null(key);
    jws = acme_jws(key, NULL, "nonce-1", "https://ca/x", "{\"a\":1}", err, sizeof(err));
    assert_non_null(jws);
    verify_jws(jws, key, NULL, "{\"a\":1}");
    free(jws);
    jws = acme_jws(key, "https://ca/acct/7", "nonce-1", "https://ca/x", "", err, sizeof(err));
    assert_non_null(jws);
    verify_jws(jws, key, "https://ca/acct/7", "");
    free(jws);
    /* a CA-supplied string cannot inject JSON into the protected header */
    assert_null(acme_jws(key, NULL, "n\"", "https://ca/x", "", err, sizeof(err)));

    /* RFC 7638: thumbprint = base64url(SHA-256(canonical JWK)); stable, key-specific */
    assert_int_equal(acme_jwk(key, jwk, sizeof(jwk), err, sizeof(err)), ACME_OK);
    assert_int_equal(strncmp(jwk, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"", 31), 0);
    assert_int_equal(acme_jwk_thumbprint(key, tp, sizeof(tp), err, sizeof(err)), ACME_OK);
    assert_int_equal(strlen(tp), ACME_THUMBPRINT_LEN);
    assert_int_equal(acme_jwk_thumbprint(other, tp2, sizeof(tp2), err, sizeof(err)), ACME_OK);
    assert_string_not_equal(tp, tp2);
    uint8_t digest[32];
    char expect[64];
    EVP_Digest(jwk, strlen(jwk), digest, NULL, EVP_sha256(), NULL);
    acme_base64url(digest, 32, expect, sizeof(expect));
    assert_string_equal(tp, expect);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}

static void test_account_key_file(void **state)
{
    char dir[] = "/tmp/webgw-acme-XXXXXX", path[64], rsa_path[64], err[ACME_ERR_MAX];
    char tp1[64], tp2[64];
    EVP_PKEY *a = NULL, *b = NULL, *rsa;
    struct stat st;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/account.pem", dir);
    assert_int_equal(acme_key_load_or_create(path, &a, err, sizeof(err)), ACME_OK);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(acme_key_load_or_create(path, &b, err, sizeof(err)), ACME_OK);
    acme_jwk_thumbprint(a, tp1, sizeof(tp1), err, sizeof(err));
    acme_jwk_thumbprint(b, tp2, sizeof(tp2), err, sizeof(err));
    assert_string_equal(tp1, tp2); /* the same account across restarts */

    rsa = EVP_RSA_gen(2048);
    snprintf(rsa_path, sizeof(rsa_path), "%s/rsa.pem", dir);
    FILE *f = fopen(rsa_path, "w");
    PEM_write_PrivateKey(f, rsa, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    EVP_PKEY *c = NULL;
    assert_int_equal(acme_key_load_or_create(rsa_path, &c, err, sizeof(err)), ACME_EINVAL);
    assert_non_null(strstr(err, "not ECDSA P-256"));
    assert_int_equal(acme_key_load_or_create("/nonexistent-dir/k.pem", &c, err, sizeof(err)),
                     ACME_EINVAL);
    assert_non_null(strstr(err, "/nonexistent-dir/k.pem"));

    EVP_PKEY_free(rsa);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    unlink(path);
    unlink(rsa_path);
    rmdir(dir);
}

#define TP "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ" /* 43 chars */

static int answer(struct acme_challenges *t, const char *path, char *body, size_t *len)
{
    return acme_challenges_answer(t, path, strlen(path), body, ACME_KEY_AUTH_MAX, len);
}

static void test_challenge_table_answers_only_known_tokens(void **state)
{
    struct acme_challenges *t = acme_challenges_new();
    char err[ACME_ERR_MAX], body[ACME_KEY_AUTH_MAX];
    size_t len = 0;
    time_t later = time(NULL) + 60;

    assert_int_equal(acme_challenges_put(t, "tok-1_A", "tok-1_A." TP, later, err, sizeof(err)),
                     ACME_OK);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/tok-1_A", body, &len), 200);
    assert_int_equal(len, strlen("tok-1_A." TP));
    assert_memory_equal(body, "tok-1_A." TP, len);
    /* not a challenge path: the proxy handles it */
    assert_int_equal(answer(t, "/index.html", body, &len), 0);
    assert_int_equal(answer(t, "/.well-known/acme", body, &len), 0);
    /* unknown, query-decorated, traversal-looking or empty tokens: 404 */
    assert_int_equal(answer(t, "/.well-known/acme-challenge/other", body, &len), 404);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/tok-1_A?x=1", body, &len), 404);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/../tok-1_A", body, &len), 404);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/", body, &len), 404);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/tok-1", body, &len), 404);

    /* bad puts are refused with a reason */
    assert_int_equal(acme_challenges_put(t, "bad/tok", "bad/tok." TP, later, err, sizeof(err)),
                     ACME_EINVAL);
    assert_int_equal(acme_challenges_put(t, "tok2", "tok3." TP, later, err, sizeof(err)),
                     ACME_EINVAL);
    assert_non_null(strstr(err, "TOKEN.THUMBPRINT"));
    assert_int_equal(acme_challenges_put(t, "tok2", "tok2.short", later, err, sizeof(err)),
                     ACME_EINVAL);

    /* replace, expire, remove */
    assert_int_equal(acme_challenges_put(t, "old", "old." TP, time(NULL) - 1, err, sizeof(err)),
                     ACME_OK);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/old", body, &len), 404);
    assert_int_equal(acme_challenges_count(t), 1);
    acme_challenges_remove(t, "tok-1_A");
    assert_int_equal(answer(t, "/.well-known/acme-challenge/tok-1_A", body, &len), 404);
    assert_int_equal(acme_challenges_count(t), 0);
    acme_challenges_remove(t, "absent");

    /* bounded: the table refuses the token after the last slot */
    char tok[32], ka[128];
    for (int i = 0; i < ACME_CHALLENGES_MAX; i++) {
        snprintf(tok, sizeof(tok), "t%d", i);
        snprintf(ka, sizeof(ka), "t%d." TP, i);
        assert_int_equal(acme_challenges_put(t, tok, ka, later, err, sizeof(err)), ACME_OK);
    }
    assert_int_equal(acme_challenges_put(t, "one-more", "one-more." TP, later, err, sizeof(err)),
                     ACME_ELIMIT);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/t4095", body, &len), 200);
    acme_challenges_free(t);
}

static void test_local_publisher_fills_the_table(void **state)
{
    struct acme_challenges *t = acme_challenges_new();
    struct acme_publisher p = acme_publisher_local(t);
    char err[ACME_ERR_MAX], body[ACME_KEY_AUTH_MAX];
    size_t len;

    assert_int_equal(p.publish(p.ctx, "abc", "abc." TP, err, sizeof(err)), ACME_OK);
    assert_int_equal(answer(t, "/.well-known/acme-challenge/abc", body, &len), 200);
    p.withdraw(p.ctx, "abc");
    assert_int_equal(answer(t, "/.well-known/acme-challenge/abc", body, &len), 404);
    acme_challenges_free(t);
}

static void test_renewal_and_backoff_policy(void **state)
{
    time_t now = 1700000000;
    assert_false(acme_renewal_due(now + 31 * 86400, now));
    assert_true(acme_renewal_due(now + 30 * 86400, now));
    assert_true(acme_renewal_due(now - 1, now));

    assert_int_equal(acme_backoff_seconds(1, 0, 0), 60);
    assert_int_equal(acme_backoff_seconds(2, 0, 0), 120);
    assert_int_equal(acme_backoff_seconds(5, 0, 0), 960);
    assert_int_equal(acme_backoff_seconds(12, 0, 0), 86400); /* capped at a day */
    assert_int_equal(acme_backoff_seconds(4000000000u, 0, 0), 86400);
    assert_int_equal(acme_backoff_seconds(1, 3600, 0), 3600); /* the CA's Retry-After wins */
    long j = acme_backoff_seconds(3, 0, 0.999);
    assert_true(j >= 180 && j < 240); /* jitter stays in the upper quarter */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url_vectors),
        cmocka_unit_test(test_jws_verifies_like_a_ca_would),
        cmocka_unit_test(test_account_key_file),
        cmocka_unit_test(test_challenge_table_answers_only_known_tokens),
        cmocka_unit_test(test_local_publisher_fills_the_table),
        cmocka_unit_test(test_renewal_and_backoff_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
