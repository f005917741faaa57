/*
 * record_sign.c - owner keys and record signatures: Ed25519 through OpenSSL 3's EVP API.
 *
 * The owner id is the raw 32-byte public key; it is printed everywhere as 64 lowercase hex
 * digits. Private keys live in PEM (PKCS#8) files created with O_EXCL and mode 0600, so
 * `webgwctl keygen` can never destroy a key that owns names. A signature covers a fixed
 * domain-separation prefix followed by the canonical body (record_codec.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "state/record_internal.h"

struct state_key {
    EVP_PKEY *pkey;                 /* the Ed25519 private key */
    uint8_t owner[STATE_OWNER_LEN]; /* its public half, cached */
    /* A signing context set up once and used for every signature: EVP_DigestSignInit cost
     * three times the Ed25519 signature itself (OpenSSL 3.0: 126 us a signature with a fresh
     * context, 31 us with this one, loaded 2-core VM), which made a start that countersigns
     * 1M names CPU-bound. The lock keeps it to one signer at a time; NULL when it could not be
     * set up (each signature then makes its own). */
    pthread_mutex_t sign_lock;
    EVP_MD_CTX *sign_ctx;
};

/* The last OpenSSL error as text, and an empty queue afterwards so a later failure in this
 * thread does not report a stale reason. */
static const char *ssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, len, "unknown OpenSSL error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static struct state_key *key_wrap(EVP_PKEY *pkey, const char *path, char *err, size_t errlen)
{
    struct state_key *key;
    size_t n = STATE_OWNER_LEN;

    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519) {
        state_errf(err, errlen, "key %s is not an Ed25519 key", path);
        goto fail;
    }
    key = calloc(1, sizeof(*key));
    if (key == NULL) {
        state_errf(err, errlen, "key %s: out of memory", path);
        goto fail;
    }
    if (EVP_PKEY_get_raw_public_key(pkey, key->owner, &n) != 1 || n != STATE_OWNER_LEN) {
        char why[128];

        state_errf(err, errlen, "key %s: cannot derive public key: %s", path,
                   ssl_reason(why, sizeof(why)));
        free(key);
        goto fail;
    }
    key->pkey = pkey;
    pthread_mutex_init(&key->sign_lock, NULL);
    key->sign_ctx = EVP_MD_CTX_new();
    if (key->sign_ctx != NULL && EVP_DigestSignInit(key->sign_ctx, NULL, NULL, NULL, pkey) != 1) {
        EVP_MD_CTX_free(key->sign_ctx);
        key->sign_ctx = NULL;
        ERR_clear_error();
    }
    return key;
fail:
    EVP_PKEY_free(pkey);
    return NULL;
}

struct state_key *state_key_generate(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *pkey = NULL;
    FILE *fp = NULL;
    char why[128];
    int fd;

    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (pkey == NULL) {
        state_errf(err, errlen, "cannot generate Ed25519 key: %s", ssl_reason(why, sizeof(why)));
        return NULL;
    }
    /* O_EXCL: a key owns names; overwriting one would lose them for good */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            state_errf(err, errlen, "key file %s exists, not overwriting", path);
        else
            state_errf(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        goto fail;
    }
    fp = fdopen(fd, "w");
    if (fp == NULL) {
        state_errf(err, errlen, "cannot write key file %s: %s", path, strerror(errno));
        close(fd);
        goto fail_unlink;
    }
    if (PEM_write_PrivateKey(fp, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
        state_errf(err, errlen, "cannot write key file %s: %s", path, ssl_reason(why, sizeof(why)));
        goto fail_unlink;
    }
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
        state_errf(err, errlen, "cannot write key file %s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    if (fclose(fp) != 0) {
        fp = NULL;
        state_errf(err, errlen, "cannot write key file %s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    return key_wrap(pkey, path, err, errlen);

fail_unlink:
    /* the file is ours (O_EXCL) and holds no usable key: do not leave it to block a retry */
    if (fp != NULL)
        fclose(fp);
    unlink(path);
fail:
    EVP_PKEY_free(pkey);
    return NULL;
}

struct state_key *state_key_load(const char *path, char *err, size_t errlen)
{
    EVP_PKEY *pkey;
    char why[128];
    FILE *fp;

    fp = fopen(path, "re");
    if (fp == NULL) {
        state_errf(err, errlen, "cannot read key %s: %s", path, strerror(errno));
        return NULL;
    }
    pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    if (pkey == NULL) {
        state_errf(err, errlen, "cannot read key %s: not a PEM private key (%s)", path,
                   ssl_reason(why, sizeof(why)));
        return NULL;
    }
    return key_wrap(pkey, path, err, errlen);
}

void state_key_free(struct state_key *key)
{
    if (key == NULL)
        return;
    EVP_MD_CTX_free(key->sign_ctx);
    pthread_mutex_destroy(&key->sign_lock);
    EVP_PKEY_free(key->pkey);
    free(key);
}

void state_key_owner(const struct state_key *key, uint8_t owner[STATE_OWNER_LEN])
{
    memcpy(owner, key->owner, STATE_OWNER_LEN);
}

/* The signed message: domain prefix then body. Returns its length or a negative code. */
static int signed_message(const struct state_record *rec, uint8_t *msg, size_t cap)
{
    int n;

    memcpy(msg, STATE_RECORD_SIGN_DOMAIN, STATE_RECORD_SIGN_DOMAIN_LEN);
    n = state_record_encode_body(rec, msg + STATE_RECORD_SIGN_DOMAIN_LEN,
                                 cap - STATE_RECORD_SIGN_DOMAIN_LEN);
    return n < 0 ? n : n + STATE_RECORD_SIGN_DOMAIN_LEN;
}

int state_sign_bytes(const struct state_key *key, const uint8_t *msg, size_t len,
                     uint8_t sig[STATE_SIGNATURE_LEN], char *err, size_t errlen)
{
    size_t siglen = STATE_SIGNATURE_LEN;
    EVP_MD_CTX *ctx;
    char why[128];
    int rc = STATE_EINVAL;

    if (key->sign_ctx != NULL) {
        struct state_key *k = (struct state_key *)key; /* the lock, not the key, changes */
        int ok;

        pthread_mutex_lock(&k->sign_lock);
        ok = EVP_DigestSign(k->sign_ctx, sig, &siglen, msg, len) == 1 &&
             siglen == STATE_SIGNATURE_LEN;
        pthread_mutex_unlock(&k->sign_lock);
        if (ok)
            return 0;
        ERR_clear_error(); /* an OpenSSL that refuses a second use: a fresh context below */
        siglen = STATE_SIGNATURE_LEN;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        state_errf(err, errlen, "cannot sign: out of memory");
        return STATE_ENOMEM;
    }
    /* Ed25519 hashes internally: no digest, one-shot DigestSign */
    if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, key->pkey) != 1 ||
        EVP_DigestSign(ctx, sig, &siglen, msg, len) != 1 || siglen != STATE_SIGNATURE_LEN) {
        state_errf(err, errlen, "cannot sign: %s", ssl_reason(why, sizeof(why)));
        goto done;
    }
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

int state_verify_bytes(const char *who, const uint8_t pub[STATE_OWNER_LEN], const uint8_t *msg,
                       size_t len, const uint8_t sig[STATE_SIGNATURE_LEN], char *err, size_t errlen)
{
    char hex[STATE_OWNER_HEX_LEN + 1];
    EVP_MD_CTX *ctx = NULL;
    EVP_PKEY *pkey;
    int rc = STATE_ESIGNATURE;

    state_owner_format(pub, hex);
    pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, STATE_OWNER_LEN);
    if (pkey == NULL) {
        ERR_clear_error();
        state_errf(err, errlen, "%s %s is not a valid Ed25519 public key", who, hex);
        return rc;
    }
    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        state_errf(err, errlen, "cannot verify: out of memory");
        rc = STATE_ENOMEM;
        goto done;
    }
    if (EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
        EVP_DigestVerify(ctx, sig, STATE_SIGNATURE_LEN, msg, len) != 1) {
        ERR_clear_error();
        state_errf(err, errlen, "signature does not verify for %s %s", who, hex);
        goto done;
    }
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    return rc;
}

int state_record_sign(struct state_record *rec, const struct state_key *key, char *err,
                      size_t errlen)
{
    uint8_t msg[STATE_RECORD_SIGN_DOMAIN_LEN + STATE_RECORD_BODY_MAX];
    int n;

    memcpy(rec->owner, key->owner, STATE_OWNER_LEN);
    n = signed_message(rec, msg, sizeof(msg));
    if (n < 0) {
        state_errf(err, errlen, "cannot sign: record has no encoding (bad kind, name or backend)");
        return n;
    }
    return state_sign_bytes(key, msg, (size_t)n, rec->signature, err, errlen);
}

int state_record_verify(const struct state_record *rec, char *err, size_t errlen)
{
    uint8_t msg[STATE_RECORD_SIGN_DOMAIN_LEN + STATE_RECORD_BODY_MAX];
    int n;

    n = signed_message(rec, msg, sizeof(msg));
    if (n < 0) {
        state_errf(err, errlen,
                   "cannot verify: record has no encoding (bad kind, name or backend)");
        return STATE_EINVAL;
    }
    return state_verify_bytes("owner", rec->owner, msg, (size_t)n, rec->signature, err, errlen);
}

void state_owner_format(const uint8_t owner[STATE_OWNER_LEN], char out[STATE_OWNER_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";

    for (int i = 0; i < STATE_OWNER_LEN; i++) {
        out[2 * i] = hex[owner[i] >> 4];
        out[2 * i + 1] = hex[owner[i] & 15];
    }
    out[STATE_OWNER_HEX_LEN] = '\0';
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int state_owner_parse(const char *text, uint8_t owner[STATE_OWNER_LEN])
{
    uint8_t tmp[STATE_OWNER_LEN];

    if (strnlen(text, STATE_OWNER_HEX_LEN + 1) != STATE_OWNER_HEX_LEN)
        return STATE_EINVAL;
    for (int i = 0; i < STATE_OWNER_LEN; i++) {
        int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);

        if (hi < 0 || lo < 0)
            return STATE_EINVAL;
        tmp[i] = (uint8_t)(hi << 4 | lo);
    }
    memcpy(owner, tmp, STATE_OWNER_LEN);
    return 0;
}
