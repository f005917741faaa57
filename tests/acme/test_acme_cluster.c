/*
 * test_acme_cluster.c - the fleet side of ACME: every node agrees on who orders a name, the
 * orders spread, a dead orderer's names (and only those) move; an issued certificate sealed
 * with the cluster key opens on another gateway into a certificate it can serve, and not
 * under another name, another cluster key, or after tampering.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "acme/acme.h"
#include "proxy/tls_internal.h"
#include "tests/proxy/tls_test_util.h"

static void test_orderer_is_agreed_spread_and_stable(void **state)
{
    const char *ids[5] = {"node-a", "node-b", "node-c", "node-d", "node-e"};
    const char *reordered[5] = {"node-e", "node-c", "node-a", "node-d", "node-b"};
    int per_node[5] = {0};
    char name[64];

    assert_int_equal(acme_orderer("x.test", ids, 0), -1);
    for (int i = 0; i < 500; i++) {
        snprintf(name, sizeof(name), "app%d.gw.test", i);
        long a = acme_orderer(name, ids, 5), b = acme_orderer(name, reordered, 5);
        assert_true(a >= 0 && b >= 0);
        assert_string_equal(ids[a], reordered[b]); /* same answer whatever the list order */
        per_node[a]++;

        /* node-c dies: names it did not order keep their orderer */
        const char *without_c[4] = {"node-a", "node-b", "node-d", "node-e"};
        long c = acme_orderer(name, without_c, 4);
        if (strcmp(ids[a], "node-c") != 0)
            assert_string_equal(without_c[c], ids[a]);
    }
    for (int i = 0; i < 5; i++)
        assert_true(per_node[i] > 50); /* about 100 each */
}

struct fixture {
    struct tt_ca ca;
    struct acme_cert cert;
    uint8_t key[ACME_SEAL_KEY_LEN], other_key[ACME_SEAL_KEY_LEN];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tt_leaf leaf, inter;
    tt_ca_new(&f->ca, "seal CA");
    tt_leaf_issue(&f->ca, "shop.gw.test", "DNS:shop.gw.test,DNS:www.shop.gw.test", 90, &leaf);
    tt_leaf_issue(&f->ca, "intermediate", "DNS:unused.test", 90, &inter);
    /* a chain of two, as CAs send */
    f->cert.cert_pem = malloc(strlen(leaf.cert_pem) + strlen(inter.cert_pem) + 1);
    strcpy(f->cert.cert_pem, leaf.cert_pem);
    strcat(f->cert.cert_pem, inter.cert_pem);
    f->cert.key_pem = strdup(leaf.key_pem);
    f->cert.not_after = 1893456000;
    memset(f->key, 0x42, sizeof(f->key));
    memset(f->other_key, 0x17, sizeof(f->other_key));
    tt_leaf_free(&leaf);
    tt_leaf_free(&inter);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    acme_cert_free(&f->cert);
    tt_ca_free(&f->ca);
    free(f);
    return 0;
}

static void test_sealed_certificate_opens_and_serves_elsewhere(void **state)
{
    struct fixture *f = *state;
    uint8_t sealed[ACME_SEALED_MAX];
    size_t len = 0;
    char err[ACME_ERR_MAX], cn[64];
    struct acme_cert opened;
    uint8_t ring[2][ACME_SEAL_KEY_LEN];

    assert_int_equal(acme_cert_seal(f->key, "shop.gw.test", &f->cert, sealed, sizeof(sealed), &len,
                                    err, sizeof(err)),
                     ACME_OK);
    assert_true(len < 2000); /* DER: far below a gossip item */
    assert_null(memmem(sealed, len, "PRIVATE", 7));

    /* another gateway with the keyring {new key, our key}: the second key opens it */
    memcpy(ring[0], f->other_key, ACME_SEAL_KEY_LEN);
    memcpy(ring[1], f->key, ACME_SEAL_KEY_LEN);
    assert_int_equal(acme_cert_open((const uint8_t(*)[ACME_SEAL_KEY_LEN])ring, 2, "shop.gw.test",
                                    sealed, len, &opened, err, sizeof(err)),
                     ACME_OK);
    assert_int_equal(opened.not_after, f->cert.not_after);
    assert_string_equal(opened.cert_pem, f->cert.cert_pem); /* both certificates, in order */

    /* and it serves: a handshake verified by the CA */
    struct tls_store *store = tls_store_new(err, sizeof(err));
    struct tls_pem_pair pair = {opened.cert_pem, opened.key_pem, "gossip"};
    assert_int_equal(tls_store_reload(store, NULL, NULL, 0, &pair, 1, err, sizeof(err)), TLS_OK);
    SSL_CTX *ctx = tt_client_ctx(f->ca.cert_pem);
    SSL *client = SSL_new(ctx), *server = tls_store_new_ssl(store, err, sizeof(err));
    SSL_set_tlsext_host_name(client, "www.shop.gw.test");
    SSL_set1_host(client, "www.shop.gw.test");
    assert_true(tt_handshake(client, server));
    assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
    tt_peer_cn(client, cn, sizeof(cn));
    assert_string_equal(cn, "shop.gw.test");
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(ctx);
    tls_store_free(store);
    acme_cert_free(&opened);
}

static void test_sealed_certificate_refuses_misuse(void **state)
{
    struct fixture *f = *state;
    uint8_t sealed[ACME_SEALED_MAX], small[512];
    size_t len = 0, small_len = 0;
    char err[ACME_ERR_MAX];
    struct acme_cert opened;
    uint8_t ring[1][ACME_SEAL_KEY_LEN];

    memcpy(ring[0], f->key, ACME_SEAL_KEY_LEN);
    assert_int_equal(acme_cert_seal(f->key, "shop.gw.test", &f->cert, sealed, sizeof(sealed), &len,
                                    err, sizeof(err)),
                     ACME_OK);
    const uint8_t(*k)[ACME_SEAL_KEY_LEN] = (const uint8_t(*)[ACME_SEAL_KEY_LEN])ring;

    /* replayed under another name: the name is authenticated */
    assert_int_equal(acme_cert_open(k, 1, "evil.gw.test", sealed, len, &opened, err, sizeof(err)),
                     ACME_EINVAL);
    assert_non_null(strstr(err, "no cluster key opens it"));
    assert_null(opened.cert_pem);
    /* another cluster's key */
    uint8_t other[1][ACME_SEAL_KEY_LEN];
    memcpy(other[0], f->other_key, ACME_SEAL_KEY_LEN);
    assert_int_equal(acme_cert_open((const uint8_t(*)[ACME_SEAL_KEY_LEN])other, 1, "shop.gw.test",
                                    sealed, len, &opened, err, sizeof(err)),
                     ACME_EINVAL);
    /* every single flipped bit and every truncation is refused */
    for (size_t i = 0; i < len; i += 7) {
        sealed[i] ^= 0x01;
        assert_int_equal(
            acme_cert_open(k, 1, "shop.gw.test", sealed, len, &opened, err, sizeof(err)),
            ACME_EINVAL);
        sealed[i] ^= 0x01;
    }
    for (size_t cut = 0; cut < len; cut += 97)
        assert_int_equal(
            acme_cert_open(k, 1, "shop.gw.test", sealed, cut, &opened, err, sizeof(err)),
            ACME_EINVAL);
    /* a name the certificate does not cover, even sealed under that name */
    assert_int_equal(acme_cert_seal(f->key, "other.gw.test", &f->cert, sealed, sizeof(sealed), &len,
                                    err, sizeof(err)),
                     ACME_OK);
    assert_int_equal(acme_cert_open(k, 1, "other.gw.test", sealed, len, &opened, err, sizeof(err)),
                     ACME_EINVAL);
    assert_non_null(strstr(err, "does not match"));
    /* too big for the room given */
    assert_int_equal(acme_cert_seal(f->key, "shop.gw.test", &f->cert, small, sizeof(small),
                                    &small_len, err, sizeof(err)),
                     ACME_ELIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_orderer_is_agreed_spread_and_stable),
        cmocka_unit_test_setup_teardown(test_sealed_certificate_opens_and_serves_elsewhere, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_sealed_certificate_refuses_misuse, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
