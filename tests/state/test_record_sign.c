/*
 * test_record_sign.c - owner keys and signatures: keygen never overwrites and keeps keys
 * private, a signed record verifies after a trip through the wire format, and any change of
 * signer or byte is caught.
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
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tests/state/record_fixtures.h"

struct keydir {
    char dir[64];
    char path[128];  /* dir/owner.key */
    char other[128]; /* dir/other.key */
};

static int setup(void **state)
{
    struct keydir *kd = calloc(1, sizeof(*kd));

    strcpy(kd->dir, "/tmp/webgw-test-sign-XXXXXX");
    if (mkdtemp(kd->dir) == NULL)
        return -1;
    snprintf(kd->path, sizeof(kd->path), "%s/owner.key", kd->dir);
    snprintf(kd->other, sizeof(kd->other), "%s/other.key", kd->dir);
    *state = kd;
    return 0;
}

static int teardown(void **state)
{
    struct keydir *kd = *state;

    unlink(kd->path);
    unlink(kd->other);
    rmdir(kd->dir);
    free(kd);
    return 0;
}

static char *read_file(const char *path)
{
    static char buf[4096];
    FILE *fp = fopen(path, "r");
    size_t n;

    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* ---- keys -------------------------------------------------------------------------------- */

static void test_keygen_writes_private_pem(void **state)
{
    struct keydir *kd = *state;
    uint8_t owner[STATE_OWNER_LEN], loaded_owner[STATE_OWNER_LEN];
    char err[STATE_ERR_MAX] = "";
    struct state_key *key, *loaded;
    struct stat st;

    key = state_key_generate(kd->path, err, sizeof(err));
    assert_non_null(key);
    assert_string_equal(err, "");
    assert_int_equal(stat(kd->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_non_null(strstr(read_file(kd->path), "-----BEGIN PRIVATE KEY-----"));

    loaded = state_key_load(kd->path, err, sizeof(err));
    assert_non_null(loaded);
    state_key_owner(key, owner);
    state_key_owner(loaded, loaded_owner);
    assert_memory_equal(owner, loaded_owner, STATE_OWNER_LEN);
    state_key_free(key);
    state_key_free(loaded);
}

static void test_keygen_refuses_to_overwrite(void **state)
{
    struct keydir *kd = *state;
    char err[STATE_ERR_MAX], expect[STATE_ERR_MAX + 128], before[4096];
    struct state_key *key;

    key = state_key_generate(kd->path, err, sizeof(err));
    assert_non_null(key);
    state_key_free(key);
    strcpy(before, read_file(kd->path));

    assert_null(state_key_generate(kd->path, err, sizeof(err)));
    snprintf(expect, sizeof(expect), "key file %s exists, not overwriting", kd->path);
    assert_string_equal(err, expect);
    assert_string_equal(read_file(kd->path), before);
}

static void test_keygen_two_keys_differ(void **state)
{
    struct keydir *kd = *state;
    uint8_t a[STATE_OWNER_LEN], b[STATE_OWNER_LEN];
    struct state_key *ka, *kb;
    char err[STATE_ERR_MAX];

    ka = state_key_generate(kd->path, err, sizeof(err));
    kb = state_key_generate(kd->other, err, sizeof(err));
    assert_non_null(ka);
    assert_non_null(kb);
    state_key_owner(ka, a);
    state_key_owner(kb, b);
    assert_memory_not_equal(a, b, STATE_OWNER_LEN);
    state_key_free(ka);
    state_key_free(kb);
}

static void test_keygen_unwritable_dir(void **state)
{
    char err[STATE_ERR_MAX];

    assert_null(state_key_generate("/nonexistent-dir/owner.key", err, sizeof(err)));
    assert_string_equal(err, "cannot create key file /nonexistent-dir/owner.key: No such file or "
                             "directory");
}

static void test_load_missing_key(void **state)
{
    char err[STATE_ERR_MAX];

    assert_null(state_key_load("/nonexistent-dir/owner.key", err, sizeof(err)));
    assert_string_equal(err, "cannot read key /nonexistent-dir/owner.key: No such file or "
                             "directory");
}

static void test_load_garbage_key(void **state)
{
    struct keydir *kd = *state;
    char err[STATE_ERR_MAX], expect[STATE_ERR_MAX];

    write_file(kd->path, "this is not a key\n");
    assert_null(state_key_load(kd->path, err, sizeof(err)));
    snprintf(expect, sizeof(expect), "cannot read key %s: not a PEM private key", kd->path);
    assert_memory_equal(err, expect, strlen(expect));
}

static void test_load_non_ed25519_key(void **state)
{
    struct keydir *kd = *state;
    char err[STATE_ERR_MAX], expect[STATE_ERR_MAX];
    EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    FILE *fp = fopen(kd->path, "w");

    assert_non_null(ec);
    assert_non_null(fp);
    assert_int_equal(PEM_write_PrivateKey(fp, ec, NULL, NULL, 0, NULL, NULL), 1);
    fclose(fp);
    EVP_PKEY_free(ec);
    assert_null(state_key_load(kd->path, err, sizeof(err)));
    snprintf(expect, sizeof(expect), "key %s is not an Ed25519 key", kd->path);
    assert_string_equal(err, expect);
}

/* ---- owner ids --------------------------------------------------------------------------- */

static void test_owner_hex_round_trip(void **state)
{
    uint8_t owner[STATE_OWNER_LEN], back[STATE_OWNER_LEN];
    char hex[STATE_OWNER_HEX_LEN + 1];
    char upper[STATE_OWNER_HEX_LEN + 1];

    for (int i = 0; i < STATE_OWNER_LEN; i++)
        owner[i] = (uint8_t)(i * 37 + 11);
    state_owner_format(owner, hex);
    assert_int_equal(strlen(hex), STATE_OWNER_HEX_LEN);
    assert_memory_equal(hex, "0b30557a9fc4e90e33587da2c7ec1136", 32);
    assert_int_equal(state_owner_parse(hex, back), 0);
    assert_memory_equal(owner, back, STATE_OWNER_LEN);
    /* pasted from somewhere that upper-cased it: same owner */
    for (int i = 0; i <= STATE_OWNER_HEX_LEN; i++)
        upper[i] = (hex[i] >= 'a' && hex[i] <= 'f') ? (char)(hex[i] - 32) : hex[i];
    memset(back, 0, sizeof(back));
    assert_int_equal(state_owner_parse(upper, back), 0);
    assert_memory_equal(owner, back, STATE_OWNER_LEN);
}

static void test_owner_parse_rejects(void **state)
{
    uint8_t owner[STATE_OWNER_LEN];
    char text[STATE_OWNER_HEX_LEN + 2];

    memset(text, 'a', STATE_OWNER_HEX_LEN - 1);
    text[STATE_OWNER_HEX_LEN - 1] = '\0';
    assert_int_equal(state_owner_parse(text, owner), STATE_EINVAL); /* 63 digits */
    memset(text, 'a', STATE_OWNER_HEX_LEN + 1);
    text[STATE_OWNER_HEX_LEN + 1] = '\0';
    assert_int_equal(state_owner_parse(text, owner), STATE_EINVAL); /* 65 digits */
    text[STATE_OWNER_HEX_LEN] = '\0';
    text[10] = 'g';
    assert_int_equal(state_owner_parse(text, owner), STATE_EINVAL);
    assert_int_equal(state_owner_parse("", owner), STATE_EINVAL);
}

/* ---- signatures -------------------------------------------------------------------------- */

static struct state_key *new_key(const char *path)
{
    char err[STATE_ERR_MAX];
    struct state_key *key = state_key_generate(path, err, sizeof(err));

    assert_non_null(key);
    return key;
}

static void test_sign_verify_over_the_wire(void **state)
{
    struct keydir *kd = *state;
    struct state_key *key = new_key(kd->path);
    uint8_t buf[STATE_RECORD_MAX_BYTES], owner[STATE_OWNER_LEN];
    char err[STATE_ERR_MAX] = "";
    enum state_record_kind kinds[] = {STATE_RECORD_RESERVE, STATE_RECORD_PROXY, STATE_RECORD_FQDN,
                                      STATE_RECORD_RELEASE};

    state_key_owner(key, owner);
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct state_record rec = fixture_record(kinds[i], "myapp"), got;
        int n;

        assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
        assert_memory_equal(rec.owner, owner, STATE_OWNER_LEN);
        assert_int_equal(state_record_verify(&rec, err, sizeof(err)), 0);
        n = state_record_encode(&rec, buf, sizeof(buf));
        assert_true(n > 0);
        assert_int_equal(state_record_decode(buf, (size_t)n, &got, err, sizeof(err)), 0);
        assert_int_equal(state_record_verify(&got, err, sizeof(err)), 0);
    }
    state_key_free(key);
}

static void test_wrong_signer_refused(void **state)
{
    struct keydir *kd = *state;
    struct state_key *alice = new_key(kd->path), *mallory = new_key(kd->other);
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    char err[STATE_ERR_MAX], expect[STATE_ERR_MAX], alice_hex[STATE_OWNER_HEX_LEN + 1];
    uint8_t alice_owner[STATE_OWNER_LEN];

    /* mallory signs a record that claims to come from alice */
    state_key_owner(alice, alice_owner);
    assert_int_equal(state_record_sign(&rec, mallory, err, sizeof(err)), 0);
    memcpy(rec.owner, alice_owner, STATE_OWNER_LEN);
    assert_int_equal(state_record_verify(&rec, err, sizeof(err)), STATE_ESIGNATURE);
    state_owner_format(alice_owner, alice_hex);
    snprintf(expect, sizeof(expect), "signature does not verify for owner %s", alice_hex);
    assert_string_equal(err, expect);
    state_key_free(alice);
    state_key_free(mallory);
}

static void test_every_tampered_field_fails(void **state)
{
    struct keydir *kd = *state;
    struct state_key *key = new_key(kd->path);
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp"), t;
    char err[STATE_ERR_MAX];

    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
    t = rec;
    t.version++;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.name[0] = 'n';
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.tls_passthrough = true;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.backends[1].port++;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.backend_count = 1;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.kind = STATE_RECORD_FQDN;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.issued_at_ms++;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.reserved_at_ms--;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    t = rec;
    t.signature[63] ^= 1;
    assert_int_equal(state_record_verify(&t, err, sizeof(err)), STATE_ESIGNATURE);
    state_key_free(key);
}

static void test_every_flipped_wire_bit_fails(void **state)
{
    /* Flip each bit of the encoded record: either it no longer decodes, or it decodes and the
     * signature check catches it. Nothing tampered is ever accepted. */
    struct keydir *kd = *state;
    struct state_key *key = new_key(kd->path);
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp"), got;
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX];
    int n, decoded = 0;

    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
    n = state_record_encode(&rec, buf, sizeof(buf));
    for (int i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1 << bit);
            if (state_record_decode(buf, (size_t)n, &got, err, sizeof(err)) == 0) {
                decoded++;
                assert_int_equal(state_record_verify(&got, err, sizeof(err)), STATE_ESIGNATURE);
            }
            buf[i] ^= (uint8_t)(1 << bit);
        }
    }
    /* most flips land in names, keys, numbers and signatures and still decode */
    assert_true(decoded > n * 4);
    assert_int_equal(state_record_decode(buf, (size_t)n, &got, err, sizeof(err)), 0);
    assert_int_equal(state_record_verify(&got, err, sizeof(err)), 0);
    state_key_free(key);
}

static void test_sign_refuses_unencodable_record(void **state)
{
    struct keydir *kd = *state;
    struct state_key *key = new_key(kd->path);
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "MyApp");
    char err[STATE_ERR_MAX];

    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "cannot sign: record has no encoding (bad kind, name or backend)");
    state_key_free(key);
}

static void test_signature_covers_domain_prefix(void **state)
{
    /* A signature over the bare body (what another protocol signing with the same key might
     * produce) must not pass as a record signature. */
    struct keydir *kd = *state;
    struct state_key *key = new_key(kd->path);
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");
    uint8_t body[STATE_RECORD_MAX_BYTES];
    size_t siglen = STATE_SIGNATURE_LEN;
    char err[STATE_ERR_MAX];
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY *pkey;
    FILE *fp;
    int n;

    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
    assert_int_equal(state_record_verify(&rec, err, sizeof(err)), 0);
    fp = fopen(kd->path, "r");
    pkey = PEM_read_PrivateKey(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(pkey);
    n = state_record_encode_body(&rec, body, sizeof(body));
    assert_true(n > 0);
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey), 1);
    assert_int_equal(EVP_DigestSign(ctx, rec.signature, &siglen, body, (size_t)n), 1);
    assert_int_equal(state_record_verify(&rec, err, sizeof(err)), STATE_ESIGNATURE);
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pkey);
    state_key_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen_writes_private_pem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_refuses_to_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_two_keys_differ, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_unwritable_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_missing_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_garbage_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_non_ed25519_key, setup, teardown),
        cmocka_unit_test(test_owner_hex_round_trip),
        cmocka_unit_test(test_owner_parse_rejects),
        cmocka_unit_test_setup_teardown(test_sign_verify_over_the_wire, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_signer_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_tampered_field_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_flipped_wire_bit_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_refuses_unencodable_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_signature_covers_domain_prefix, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
