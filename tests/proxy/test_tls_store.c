/*
 * test_tls_store.c - the certificate store, seen from a TLS client.
 *
 * A CA made by the test issues certificates; real OpenSSL clients handshake with the
 * store's SSL objects over memory BIOs and check what a browser would: which certificate
 * came back for which name, that it verifies, which protocol versions and ALPN were agreed,
 * that a reload does not disturb a connection in progress, and that a session resumes on
 * another gateway that shares the ticket keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/tls_internal.h"
#include "tests/proxy/tls_test_util.h"

struct fixture {
    struct tt_ca ca;
    struct tt_leaf wild, api, other;
    struct tls_store *store;
    SSL_CTX *client;
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[TLS_ERR_MAX], cert[128], key[128];
    struct tls_cert_set *set = tls_cert_set_new();

    tt_ca_new(&f->ca, "webgw test CA");
    tt_leaf_issue(&f->ca, "wild", "DNS:*.apps.test", 30, &f->wild);
    tt_leaf_issue(&f->ca, "api", "DNS:api.apps.test,DNS:api2.apps.test", 30, &f->api);
    tt_leaf_issue(&f->ca, "other", "DNS:other.test", 60, &f->other);
    snprintf(f->dir, sizeof(f->dir), "/tmp/webgw-tls-XXXXXX");
    assert_non_null(mkdtemp(f->dir));

    /* the operator's wildcard comes from files, the others from memory */
    snprintf(cert, sizeof(cert), "%s/wild.crt", f->dir);
    snprintf(key, sizeof(key), "%s/wild.key", f->dir);
    tt_write_file(cert, f->wild.cert_pem);
    tt_write_file(key, f->wild.key_pem);
    assert_int_equal(tls_cert_set_add_files(set, cert, key, err, sizeof(err)), TLS_OK);
    assert_int_equal(tls_cert_set_add_pem(set, f->api.cert_pem, strlen(f->api.cert_pem),
                                          f->api.key_pem, strlen(f->api.key_pem), "api", err,
                                          sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_cert_set_add_pem(set, f->other.cert_pem, strlen(f->other.cert_pem),
                                          f->other.key_pem, strlen(f->other.key_pem), "other", err,
                                          sizeof(err)),
                     TLS_OK);
    f->store = tls_store_new(err, sizeof(err));
    assert_non_null(f->store);
    assert_int_equal(tls_store_install(f->store, set, err, sizeof(err)), TLS_OK);
    f->client = tt_client_ctx(f->ca.cert_pem);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[128];
    tls_store_free(f->store);
    SSL_CTX_free(f->client);
    tt_leaf_free(&f->wild);
    tt_leaf_free(&f->api);
    tt_leaf_free(&f->other);
    tt_ca_free(&f->ca);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* Handshakes a verifying client asking for `sni` with `store`; the peer CN into `cn`.
 * Returns 1 on success. `session`: resume it if not NULL; `*out_session`: keep the new one. */
static int connect_to(SSL_CTX *client_ctx, struct tls_store *store, const char *sni, char *cn,
                      size_t cnlen, SSL_SESSION *session, SSL_SESSION **out_session, int *reused)
{
    char err[TLS_ERR_MAX];
    SSL *client = SSL_new(client_ctx);
    SSL *server = tls_store_new_ssl(store, err, sizeof(err));
    int ok;

    assert_non_null(client);
    assert_non_null(server);
    if (sni) {
        SSL_set_tlsext_host_name(client, sni);
        SSL_set1_host(client, sni); /* verify the name like a browser */
    }
    if (session)
        SSL_set_session(client, session);
    ok = tt_handshake(client, server);
    if (ok) {
        assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
        tt_peer_cn(client, cn, cnlen);
        if (reused)
            *reused = SSL_session_reused(client);
        if (out_session)
            *out_session = SSL_get1_session(client);
        /* close cleanly: OpenSSL marks the session of an unclosed connection not resumable */
        SSL_shutdown(client);
        SSL_shutdown(server);
    }
    SSL_free(client);
    SSL_free(server);
    return ok;
}

static void test_sni_picks_exact_then_wildcard(void **state)
{
    struct fixture *f = *state;
    char cn[64];

    assert_true(connect_to(f->client, f->store, "api.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "api");
    assert_true(
        connect_to(f->client, f->store, "api2.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "api");
    assert_true(connect_to(f->client, f->store, "web.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "wild");
    assert_true(
        connect_to(f->client, f->store, "Shop.APPS.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "wild");
    assert_true(connect_to(f->client, f->store, "other.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "other");

    assert_true(tls_store_has_name(f->store, "x.apps.test"));
    assert_false(tls_store_has_name(f->store, "apps.test"));
    assert_false(tls_store_has_name(f->store, "a.b.apps.test"));
}

static void test_unknown_or_missing_sni_is_refused_and_counted(void **state)
{
    struct fixture *f = *state;
    struct tls_store_stats st;
    char cn[64];

    /* a wildcard covers one label only; the bare parent is not covered either */
    assert_false(
        connect_to(f->client, f->store, "a.b.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_false(connect_to(f->client, f->store, "apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_false(connect_to(f->client, f->store, NULL, cn, sizeof(cn), NULL, NULL, NULL));
    tls_store_get_stats(f->store, &st);
    assert_int_equal(st.unknown_sni, 2);
    assert_int_equal(st.no_sni, 1);
}

static void test_protocol_versions_and_alpn(void **state)
{
    struct fixture *f = *state;
    char err[TLS_ERR_MAX];
    SSL *client, *server;
    const unsigned char *proto;
    unsigned proto_len;

    /* TLS 1.1 is refused */
    SSL_CTX_set_max_proto_version(f->client, TLS1_1_VERSION);
    SSL_CTX_set_security_level(f->client, 0);
    client = SSL_new(f->client);
    server = tls_store_new_ssl(f->store, err, sizeof(err));
    SSL_set_tlsext_host_name(client, "other.test");
    assert_false(tt_handshake(client, server));
    SSL_free(client);
    SSL_free(server);

    /* TLS 1.2 gets an ECDHE AEAD suite; http/1.1 is chosen among h2 and http/1.1 */
    SSL_CTX_set_max_proto_version(f->client, TLS1_2_VERSION);
    client = SSL_new(f->client);
    server = tls_store_new_ssl(f->store, err, sizeof(err));
    SSL_set_tlsext_host_name(client, "other.test");
    SSL_set_alpn_protos(client, (const unsigned char *)"\x02h2\x08http/1.1", 12);
    assert_true(tt_handshake(client, server));
    assert_int_equal(SSL_version(client), TLS1_2_VERSION);
    assert_non_null(strstr(SSL_get_cipher_name(client), "ECDHE-ECDSA-"));
    assert_non_null(strstr(SSL_get_cipher_name(client), "GCM"));
    SSL_get0_alpn_selected(client, &proto, &proto_len);
    assert_int_equal(proto_len, 8);
    assert_memory_equal(proto, "http/1.1", 8);
    SSL_free(client);
    SSL_free(server);

    /* TLS 1.3 with an h2-only client: no ALPN agreed, the handshake still succeeds */
    SSL_CTX_set_max_proto_version(f->client, 0);
    client = SSL_new(f->client);
    server = tls_store_new_ssl(f->store, err, sizeof(err));
    SSL_set_tlsext_host_name(client, "other.test");
    SSL_set_alpn_protos(client, (const unsigned char *)"\x02h2", 3);
    assert_true(tt_handshake(client, server));
    assert_int_equal(SSL_version(client), TLS1_3_VERSION);
    SSL_get0_alpn_selected(client, &proto, &proto_len);
    assert_int_equal(proto_len, 0);
    SSL_free(client);
    SSL_free(server);
}

static void test_bad_inputs_are_refused_with_a_reason(void **state)
{
    struct fixture *f = *state;
    struct tls_cert_set *set = tls_cert_set_new();
    struct tt_leaf ip_only;
    char err[TLS_ERR_MAX];

    assert_int_equal(tls_cert_set_add_pem(set, f->api.cert_pem, strlen(f->api.cert_pem),
                                          f->other.key_pem, strlen(f->other.key_pem), "mixed.pem",
                                          err, sizeof(err)),
                     TLS_EINVAL);
    assert_non_null(strstr(err, "mixed.pem: private key does not match"));
    assert_int_equal(tls_cert_set_add_pem(set, "garbage", 7, f->api.key_pem, strlen(f->api.key_pem),
                                          "g.pem", err, sizeof(err)),
                     TLS_EINVAL);
    assert_non_null(strstr(err, "g.pem: no PEM certificate"));
    assert_int_equal(tls_cert_set_add_pem(set, f->api.cert_pem, strlen(f->api.cert_pem), "nokey", 5,
                                          "k.pem", err, sizeof(err)),
                     TLS_EINVAL);
    assert_non_null(strstr(err, "k.pem: no PEM private key"));
    assert_int_equal(
        tls_cert_set_add_files(set, "/nonexistent/c.pem", "/nonexistent/k.pem", err, sizeof(err)),
        TLS_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/c.pem: No such file"));

    tt_leaf_issue(&f->ca, "10.0.0.1", "IP:10.0.0.1", 30, &ip_only);
    assert_int_equal(tls_cert_set_add_pem(set, ip_only.cert_pem, strlen(ip_only.cert_pem),
                                          ip_only.key_pem, strlen(ip_only.key_pem), "ip.pem", err,
                                          sizeof(err)),
                     TLS_EINVAL);
    assert_non_null(strstr(err, "names no DNS host"));
    tt_leaf_free(&ip_only);
    tls_cert_set_free(set);
}

static void test_first_claim_of_a_name_wins(void **state)
{
    struct fixture *f = *state;
    struct tls_cert_set *set = tls_cert_set_new();
    struct tls_store *store;
    struct tt_leaf operator, issued;
    char err[TLS_ERR_MAX], cn[64];

    tt_leaf_issue(&f->ca, "operator", "DNS:dup.test", 30, &operator);
    tt_leaf_issue(&f->ca, "issued", "DNS:dup.test,DNS:only-issued.test", 30, &issued);
    assert_int_equal(tls_cert_set_add_pem(set, operator.cert_pem,
                                          strlen(operator.cert_pem), operator.key_pem,
                                          strlen(operator.key_pem), "op", err, sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_cert_set_add_pem(set, issued.cert_pem, strlen(issued.cert_pem),
                                          issued.key_pem, strlen(issued.key_pem), "acme", err,
                                          sizeof(err)),
                     TLS_OK);
    store = tls_store_new(err, sizeof(err));
    assert_int_equal(tls_store_install(store, set, err, sizeof(err)), TLS_OK);
    assert_true(connect_to(f->client, store, "dup.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "operator");
    assert_true(connect_to(f->client, store, "only-issued.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "issued");
    tls_store_free(store);
    tt_leaf_free(&operator);
    tt_leaf_free(&issued);
}

static void test_reload_keeps_running_connections_on_their_certificate(void **state)
{
    struct fixture *f = *state;
    struct tls_store *store;
    struct tls_cert_set *set;
    struct tt_leaf old_leaf, new_leaf;
    struct tls_store_stats st;
    char err[TLS_ERR_MAX], cn[64];
    time_t old_expiry, new_expiry;

    tt_leaf_issue(&f->ca, "old", "DNS:site.test", 10, &old_leaf);
    tt_leaf_issue(&f->ca, "new", "DNS:site.test", 90, &new_leaf);
    store = tls_store_new(err, sizeof(err));
    assert_null(tls_store_new_ssl(store, err, sizeof(err)));
    assert_string_equal(err, "no certificates installed");

    set = tls_cert_set_new();
    assert_int_equal(tls_cert_set_add_pem(set, old_leaf.cert_pem, strlen(old_leaf.cert_pem),
                                          old_leaf.key_pem, strlen(old_leaf.key_pem), "old", err,
                                          sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_store_install(store, set, err, sizeof(err)), TLS_OK);
    assert_int_equal(tls_store_expiry(store, "site.test", &old_expiry), TLS_OK);

    /* a connection accepted before the reload, handshaking after it */
    SSL *early = tls_store_new_ssl(store, err, sizeof(err));
    set = tls_cert_set_new();
    assert_int_equal(tls_cert_set_add_pem(set, new_leaf.cert_pem, strlen(new_leaf.cert_pem),
                                          new_leaf.key_pem, strlen(new_leaf.key_pem), "new", err,
                                          sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_store_install(store, set, err, sizeof(err)), TLS_OK);

    SSL *client = SSL_new(f->client);
    SSL_set_tlsext_host_name(client, "site.test");
    assert_true(tt_handshake(client, early));
    tt_peer_cn(client, cn, sizeof(cn));
    assert_string_equal(cn, "old");
    SSL_free(client);
    SSL_free(early); /* frees the old context and its certificates (ASan checks) */

    assert_true(connect_to(f->client, store, "site.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "new");
    assert_int_equal(tls_store_expiry(store, "site.test", &new_expiry), TLS_OK);
    assert_true(new_expiry - old_expiry > 79 * 86400);
    assert_int_equal(tls_store_expiry(store, "nope.test", &new_expiry), TLS_ENOTFOUND);

    /* a failed install leaves the current certificates in place */
    assert_int_equal(tls_store_install(store, NULL, err, sizeof(err)), TLS_EINVAL);
    assert_true(connect_to(f->client, store, "site.test", cn, sizeof(cn), NULL, NULL, NULL));
    tls_store_get_stats(store, &st);
    assert_int_equal(st.reloads, 2);
    tls_store_free(store);
    tt_leaf_free(&old_leaf);
    tt_leaf_free(&new_leaf);
}

/* Two gateways: a session from one resumes on the other when they share ticket keys. */
static void resume_across(struct fixture *f, int version)
{
    struct tls_store *a, *b;
    struct tls_cert_set *set;
    struct tls_ticket_key k_now, k_prev, k_other;
    struct tls_store_stats st;
    const uint8_t secret[32] = "cluster key for the ticket test";
    SSL_SESSION *session = NULL, *session2 = NULL;
    char err[TLS_ERR_MAX], cn[64];
    int reused = -1;

    assert_int_equal(tls_ticket_key_derive(secret, sizeof(secret), 100, &k_now, err, sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_ticket_key_derive(secret, sizeof(secret), 99, &k_prev, err, sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_ticket_key_derive((const uint8_t *)"another cluster", 15, 100, &k_other,
                                           err, sizeof(err)),
                     TLS_OK);
    assert_memory_not_equal(k_now.name, k_prev.name, 16);
    assert_memory_not_equal(k_now.aes_key, k_other.aes_key, 32);

    a = tls_store_new(err, sizeof(err));
    b = tls_store_new(err, sizeof(err));
    for (int i = 0; i < 2; i++) {
        set = tls_cert_set_new();
        assert_int_equal(tls_cert_set_add_pem(set, f->other.cert_pem, strlen(f->other.cert_pem),
                                              f->other.key_pem, strlen(f->other.key_pem), "other",
                                              err, sizeof(err)),
                         TLS_OK);
        assert_int_equal(tls_store_install(i ? b : a, set, err, sizeof(err)), TLS_OK);
    }
    SSL_CTX_set_max_proto_version(f->client, version);

    /* random per-store keys (no cluster keys yet): no resumption on the other gateway */
    assert_true(connect_to(f->client, a, "other.test", cn, sizeof(cn), NULL, &session, NULL));
    assert_true(connect_to(f->client, b, "other.test", cn, sizeof(cn), session, NULL, &reused));
    assert_int_equal(reused, 0);
    SSL_SESSION_free(session);

    /* both gateways on the same derived key: a session from a resumes on b */
    assert_int_equal(tls_store_set_ticket_keys(a, &k_now, 1, err, sizeof(err)), TLS_OK);
    assert_int_equal(tls_store_set_ticket_keys(b, &k_now, 1, err, sizeof(err)), TLS_OK);
    assert_true(connect_to(f->client, a, "other.test", cn, sizeof(cn), NULL, &session, NULL));
    assert_true(connect_to(f->client, b, "other.test", cn, sizeof(cn), session, NULL, &reused));
    assert_int_equal(reused, 1);

    /* rotation: b moves to the next epoch and keeps the previous key for decryption */
    struct tls_ticket_key ring[2];
    assert_int_equal(tls_ticket_key_derive(secret, sizeof(secret), 101, &ring[0], err, sizeof(err)),
                     TLS_OK);
    ring[1] = k_now;
    assert_int_equal(tls_store_set_ticket_keys(b, ring, 2, err, sizeof(err)), TLS_OK);
    assert_true(
        connect_to(f->client, b, "other.test", cn, sizeof(cn), session, &session2, &reused));
    assert_int_equal(reused, 1);
    /* once the old key is retired, the old session no longer resumes, the renewed one does */
    assert_int_equal(tls_store_set_ticket_keys(b, ring, 1, err, sizeof(err)), TLS_OK);
    assert_true(connect_to(f->client, b, "other.test", cn, sizeof(cn), session, NULL, &reused));
    assert_int_equal(reused, 0);
    assert_true(connect_to(f->client, b, "other.test", cn, sizeof(cn), session2, NULL, &reused));
    assert_int_equal(reused, 1);

    assert_int_equal(tls_store_set_ticket_keys(b, ring, 0, err, sizeof(err)), TLS_EINVAL);
    assert_int_equal(tls_store_set_ticket_keys(b, ring, TLS_TICKET_KEYS_MAX + 1, err, sizeof(err)),
                     TLS_EINVAL);
    tls_store_get_stats(b, &st);
    assert_true(st.tickets_issued >= 3);        /* full handshakes and renewals */
    assert_int_equal(st.tickets_recognised, 3); /* tickets under a held key */

    SSL_SESSION_free(session);
    SSL_SESSION_free(session2);
    tls_store_free(a);
    tls_store_free(b);
    SSL_CTX_set_max_proto_version(f->client, 0);
}

static void test_session_resumes_on_another_gateway_tls13(void **state)
{
    resume_across(*state, TLS1_3_VERSION);
}

static void test_session_resumes_on_another_gateway_tls12(void **state)
{
    resume_across(*state, TLS1_2_VERSION);
}

static void test_reload_from_files_is_all_or_nothing(void **state)
{
    struct fixture *f = *state;
    char err[TLS_ERR_MAX], cert[128], key[128], cn[64];
    struct tls_store *store = tls_store_new(err, sizeof(err));
    const char *certs[2], *keys[2];
    struct tls_pem_pair issued = {f->api.cert_pem, f->api.key_pem, "acme api"};

    snprintf(cert, sizeof(cert), "%s/wild.crt", f->dir);
    snprintf(key, sizeof(key), "%s/wild.key", f->dir);
    certs[0] = cert, keys[0] = key;
    assert_int_equal(tls_store_reload(store, certs, keys, 1, &issued, 1, err, sizeof(err)), TLS_OK);
    assert_true(connect_to(f->client, store, "www.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "wild");
    assert_true(connect_to(f->client, store, "api.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "api"); /* issued exact name beats the operator's wildcard */

    /* a second pair whose key file is missing: refused, the running set stays */
    certs[1] = cert, keys[1] = "/nonexistent/key.pem";
    assert_int_equal(tls_store_reload(store, certs, keys, 2, NULL, 0, err, sizeof(err)),
                     TLS_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/key.pem"));
    assert_true(connect_to(f->client, store, "api.apps.test", cn, sizeof(cn), NULL, NULL, NULL));
    assert_string_equal(cn, "api");
    tls_store_free(store);
}

static void test_ticket_secret_spans_epochs(void **state)
{
    struct fixture *f = *state;
    char err[TLS_ERR_MAX], cn[64];
    const uint8_t secret[32] = "the cluster key, 32 bytes long!";
    struct tls_store *a = tls_store_new(err, sizeof(err)), *b = tls_store_new(err, sizeof(err));
    SSL_SESSION *session = NULL;
    time_t t = 1700000000;
    int reused = -1;

    for (int i = 0; i < 2; i++) {
        struct tls_pem_pair pair = {f->other.cert_pem, f->other.key_pem, "other"};
        assert_int_equal(tls_store_reload(i ? b : a, NULL, NULL, 0, &pair, 1, err, sizeof(err)),
                         TLS_OK);
    }
    assert_int_equal(tls_store_set_ticket_secret(a, secret, sizeof(secret), t, err, sizeof(err)),
                     TLS_OK);
    /* b is one epoch later (its clock, or a rotation): a's tickets still resume there */
    assert_int_equal(tls_store_set_ticket_secret(b, secret, sizeof(secret), t + TLS_TICKET_EPOCH_S,
                                                 err, sizeof(err)),
                     TLS_OK);
    assert_true(connect_to(f->client, a, "other.test", cn, sizeof(cn), NULL, &session, NULL));
    assert_true(connect_to(f->client, b, "other.test", cn, sizeof(cn), session, NULL, &reused));
    assert_int_equal(reused, 1);
    /* two epochs later the key is retired */
    assert_int_equal(tls_store_set_ticket_secret(b, secret, sizeof(secret),
                                                 t + 2 * TLS_TICKET_EPOCH_S, err, sizeof(err)),
                     TLS_OK);
    assert_true(connect_to(f->client, b, "other.test", cn, sizeof(cn), session, NULL, &reused));
    assert_int_equal(reused, 0);
    SSL_SESSION_free(session);
    tls_store_free(a);
    tls_store_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sni_picks_exact_then_wildcard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_or_missing_sni_is_refused_and_counted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_protocol_versions_and_alpn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_inputs_are_refused_with_a_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(test_first_claim_of_a_name_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_keeps_running_connections_on_their_certificate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_resumes_on_another_gateway_tls13, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_session_resumes_on_another_gateway_tls12, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reload_from_files_is_all_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_secret_spans_epochs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
