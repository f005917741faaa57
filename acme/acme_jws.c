/*
 * acme_jws.c - the account key and the signed requests ACME is made of (RFC 8555 6.2).
 *
 * ES256 (ECDSA P-256 with SHA-256) because every ACME CA accepts it, keys are small and
 * signing is cheap. OpenSSL produces DER signatures; JWS wants the fixed-width r || s
 * (RFC 7518 3.4), so each signature is converted. The JWK is written by hand with its
 * members in lexicographic order and no whitespace, which is what the RFC 7638 thumbprint
 * needs; JSON libraries do not promise that.
 */
#include "acme/acme_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>

size_t acme_base64url(const uint8_t *in, size_t len, char *out, size_t cap)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t need = (len / 3) * 4 + (len % 3 ? len % 3 + 1 : 0), o = 0, i = 0;

    if (cap < need + 1)
        return 0;
    for (; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* base64url into a new string. */
static char *b64url_dup(const uint8_t *in, size_t len)
{
    size_t cap = len / 3 * 4 + 8;
    char *out = malloc(cap);
    if (out && acme_base64url(in, len, out, cap) == 0 && len != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static bool is_p256(EVP_PKEY *key)
{
    char group[32];
    return EVP_PKEY_is_a(key, "EC") &&
           EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                          NULL) == 1 &&
           strcmp(group, "prime256v1") == 0;
}

EVP_PKEY *acme_key_generate(char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key)
        acme_errf(err, errlen, ACME_ECRYPTO, "P-256 key generation failed");
    return key;
}

int acme_key_load_or_create(const char *path, EVP_PKEY **out, char *err, size_t errlen)
{
    EVP_PKEY *key = NULL;
    FILE *f = fopen(path, "r");
    int fd, rc;

    if (f) {
        key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
        fclose(f);
        if (!key) {
            ERR_clear_error();
            return acme_errf(err, errlen, ACME_EINVAL, "%s: no PEM private key", path);
        }
        if (!is_p256(key)) {
            EVP_PKEY_free(key);
            return acme_errf(err, errlen, ACME_EINVAL, "%s: account key is not ECDSA P-256", path);
        }
        *out = key;
        return ACME_OK;
    }
    if (errno != ENOENT)
        return acme_errf(err, errlen, ACME_EINVAL, "%s: %s", path, strerror(errno));

    key = acme_key_generate(err, errlen);
    if (!key)
        return ACME_ECRYPTO;
    /* O_EXCL: never overwrite a key another process just wrote */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0) {
        rc = acme_errf(err, errlen, ACME_EINVAL, "%s: %s", path, strerror(errno));
        goto fail;
    }
    f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        rc = acme_errf(err, errlen, ACME_EINVAL, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        fclose(f);
        unlink(path);
        rc = acme_errf(err, errlen, ACME_EINVAL, "%s: write failed", path);
        goto fail;
    }
    fclose(f);
    *out = key;
    return ACME_OK;
fail:
    EVP_PKEY_free(key);
    return rc;
}

int acme_jwk(EVP_PKEY *key, char *out, size_t cap, char *err, size_t errlen)
{
    BIGNUM *x = NULL, *y = NULL;
    uint8_t xb[32], yb[32];
    char xs[48], ys[48];
    int rc = ACME_ECRYPTO;

    if (!is_p256(key))
        return acme_errf(err, errlen, ACME_EINVAL, "account key is not ECDSA P-256");
    if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &x) != 1 ||
        EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &y) != 1 ||
        BN_bn2binpad(x, xb, 32) != 32 || BN_bn2binpad(y, yb, 32) != 32) {
        acme_errf(err, errlen, rc, "cannot read the public key");
        goto out;
    }
    acme_base64url(xb, 32, xs, sizeof(xs));
    acme_base64url(yb, 32, ys, sizeof(ys));
    if ((size_t)snprintf(out, cap, "{\"crv\":\"P-256\",\"kty\":\"EC\",\"x\":\"%s\",\"y\":\"%s\"}",
                         xs, ys) >= cap) {
        rc = acme_errf(err, errlen, ACME_EINVAL, "JWK buffer too small");
        goto out;
    }
    rc = ACME_OK;
out:
    BN_free(x);
    BN_free(y);
    return rc;
}

int acme_jwk_thumbprint(EVP_PKEY *key, char *out, size_t cap, char *err, size_t errlen)
{
    char jwk[256];
    uint8_t digest[32];
    int rc = acme_jwk(key, jwk, sizeof(jwk), err, errlen);

    if (rc != ACME_OK)
        return rc;
    if (EVP_Digest(jwk, strlen(jwk), digest, NULL, EVP_sha256(), NULL) != 1)
        return acme_errf(err, errlen, ACME_ECRYPTO, "SHA-256 failed");
    if (acme_base64url(digest, sizeof(digest), out, cap) != ACME_THUMBPRINT_LEN)
        return acme_errf(err, errlen, ACME_EINVAL, "thumbprint buffer too small");
    return ACME_OK;
}

/* ES256 over `data`: the 64-byte r || s. */
static int sign_es256(EVP_PKEY *key, const char *data, uint8_t sig[64])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    uint8_t der[80];
    size_t der_len = sizeof(der);
    const uint8_t *p = der;
    ECDSA_SIG *ecdsa = NULL;
    const BIGNUM *r, *s;
    int ok = 0;

    if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const uint8_t *)data, strlen(data)) != 1)
        goto out;
    ecdsa = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (!ecdsa)
        goto out;
    ECDSA_SIG_get0(ecdsa, &r, &s);
    ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
out:
    ECDSA_SIG_free(ecdsa);
    EVP_MD_CTX_free(md);
    return ok;
}

char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload, char *err, size_t errlen)
{
    char jwk[256], *header = NULL, *h64 = NULL, *p64 = NULL, *input = NULL, *out = NULL;
    uint8_t sig[64];
    char s64[100];
    int n;

    if (!kid && acme_jwk(key, jwk, sizeof(jwk), err, errlen) != ACME_OK)
        return NULL;
    /* nonce and URLs come from the CA: never let one break out of its JSON string */
    if (strpbrk(nonce, "\"\\") || strpbrk(url, "\"\\") || (kid && strpbrk(kid, "\"\\"))) {
        acme_errf(err, errlen, ACME_EINVAL, "nonce or URL with quote or backslash");
        return NULL;
    }
    if (kid)
        n = asprintf(&header, "{\"alg\":\"ES256\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}",
                     kid, nonce, url);
    else
        n = asprintf(&header, "{\"alg\":\"ES256\",\"jwk\":%s,\"nonce\":\"%s\",\"url\":\"%s\"}", jwk,
                     nonce, url);
    if (n < 0) {
        header = NULL;
        goto nomem;
    }
    h64 = b64url_dup((const uint8_t *)header, strlen(header));
    p64 = b64url_dup((const uint8_t *)payload, strlen(payload));
    if (!h64 || !p64 || asprintf(&input, "%s.%s", h64, p64) < 0) {
        input = NULL;
        goto nomem;
    }
    if (!sign_es256(key, input, sig)) {
        ERR_clear_error();
        acme_errf(err, errlen, ACME_ECRYPTO, "ES256 signing failed");
        goto out;
    }
    acme_base64url(sig, sizeof(sig), s64, sizeof(s64));
    if (asprintf(&out, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", h64, p64,
                 s64) < 0) {
        out = NULL;
        goto nomem;
    }
    goto out;
nomem:
    acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
out:
    free(header);
    free(h64);
    free(p64);
    free(input);
    return out;
}
