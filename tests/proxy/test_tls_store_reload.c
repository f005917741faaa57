/*
 * test_tls_store_reload.c - certificates reloaded while handshakes run on other threads.
 *
 * The promise to an operator: SIGHUP or an ACME renewal swaps certificates under live
 * traffic and no handshake fails. Handshake threads play the proxy workers; the main thread
 * reinstalls alternating certificate sets as fast as it can. Labelled tsan: this is where
 * worker threads and the reload path meet.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/tls_internal.h"
#include "tests/proxy/tls_test_util.h"

#define WORKERS 2
#define HANDSHAKES_PER_WORKER 60

struct shared {
    struct tls_store *store;
    SSL_CTX *client;
    atomic_int failures;
    atomic_int saw_blue, saw_green;
    atomic_int workers_done;
};

static void *worker(void *arg)
{
    struct shared *sh = arg;
    char err[TLS_ERR_MAX], cn[64];

    for (int i = 0; i < HANDSHAKES_PER_WORKER; i++) {
        SSL *client = SSL_new(sh->client);
        SSL *server = tls_store_new_ssl(sh->store, err, sizeof(err));
        SSL_set_tlsext_host_name(client, "live.test");
        SSL_set1_host(client, "live.test");
        if (!server || !tt_handshake(client, server) ||
            SSL_get_verify_result(client) != X509_V_OK) {
            atomic_fetch_add(&sh->failures, 1);
        } else {
            tt_peer_cn(client, cn, sizeof(cn));
            if (strcmp(cn, "blue") == 0)
                atomic_fetch_add(&sh->saw_blue, 1);
            else if (strcmp(cn, "green") == 0)
                atomic_fetch_add(&sh->saw_green, 1);
            else
                atomic_fetch_add(&sh->failures, 1);
        }
        SSL_free(client);
        SSL_free(server);
    }
    atomic_fetch_add(&sh->workers_done, 1);
    return NULL;
}

static void install(struct tls_store *store, const struct tt_leaf *leaf, const char *origin)
{
    char err[TLS_ERR_MAX];
    struct tls_cert_set *set = tls_cert_set_new();
    assert_int_equal(tls_cert_set_add_pem(set, leaf->cert_pem, strlen(leaf->cert_pem),
                                          leaf->key_pem, strlen(leaf->key_pem), origin, err,
                                          sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_store_install(store, set, err, sizeof(err)), TLS_OK);
}

static void test_reload_under_load_fails_no_handshake(void **state)
{
    struct tt_ca ca;
    struct tt_leaf blue, green;
    struct shared sh = {0};
    pthread_t threads[WORKERS];
    char err[TLS_ERR_MAX];
    int reloads = 0;

    tt_ca_new(&ca, "reload CA");
    tt_leaf_issue(&ca, "blue", "DNS:live.test", 30, &blue);
    tt_leaf_issue(&ca, "green", "DNS:live.test", 30, &green);
    sh.store = tls_store_new(err, sizeof(err));
    sh.client = tt_client_ctx(ca.cert_pem);
    install(sh.store, &blue, "blue");

    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, worker, &sh), 0);
    while (atomic_load(&sh.workers_done) < WORKERS) {
        install(sh.store, reloads % 2 ? &blue : &green, "reload");
        reloads++;
    }
    for (int i = 0; i < WORKERS; i++)
        pthread_join(threads[i], NULL);

    fprintf(stderr, "%d reloads during %d handshakes: blue %d, green %d, failed %d\n", reloads,
            WORKERS * HANDSHAKES_PER_WORKER, atomic_load(&sh.saw_blue), atomic_load(&sh.saw_green),
            atomic_load(&sh.failures));
    assert_int_equal(atomic_load(&sh.failures), 0);
    assert_int_equal(atomic_load(&sh.saw_blue) + atomic_load(&sh.saw_green),
                     WORKERS * HANDSHAKES_PER_WORKER);
    assert_true(reloads > 1);
    assert_true(atomic_load(&sh.saw_green) > 0); /* the reloads really took effect */

    tls_store_free(sh.store);
    SSL_CTX_free(sh.client);
    tt_leaf_free(&blue);
    tt_leaf_free(&green);
    tt_ca_free(&ca);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reload_under_load_fails_no_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
