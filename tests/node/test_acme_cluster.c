/*
 * test_acme_cluster.c - automatic certificates on a 3-node fleet, against Debian's pebble.
 *
 * Three webgw processes on 127.0.0.1, .2 and .3 (same HTTP port, as a fleet behind DNS
 * round-robin would be), joined by gossip with a cluster key and pointed at pebble. A name
 * is exposed; the node first in rendezvous order orders its certificate, but the mock DNS
 * sends the CA's HTTP-01 validation to another node, which can only answer because the
 * token came to it through gossip. Then all three serve the certificate (sealed with the
 * cluster key, carried by gossip), verified against pebble's root. Finally the whole fleet
 * and the CA stop, and one node restarted alone still serves the certificate: each node
 * keeps the sealed certificates in its data dir.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "acme/acme.h"
#include "tests/node/harness.h"
#include "tests/proxy/pebble_util.h"

#define NODES 3

static struct nt_node nodes[NODES];
static struct pebble pebble;
static bool pebble_up;

/* The CN and verification result of the certificate node n serves for host (-1: none). */
static int served(const struct nt_node *n, SSL_CTX *ctx, const char *host, char *cn, size_t cap)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n->https_port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;
    struct timeval tv = {3, 0};
    SSL *ssl = NULL;

    inet_pton(AF_INET, n->ip, &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        SSL_set_tlsext_host_name(ssl, host);
        SSL_set1_host(ssl, host);
        if (SSL_connect(ssl) == 1) {
            rc = (int)SSL_get_verify_result(ssl);
            tt_peer_cn(ssl, cn, cap);
            SSL_shutdown(ssl);
        }
    }
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return rc;
}

static void node_id(const struct nt_node *n, char *out, size_t cap)
{
    struct ctl_response r;
    assert_int_equal(nt_api(n, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    json_t *doc = json_loads(r.body, 0, NULL);
    const char *id = json_string_value(json_object_get(doc, "id"));
    assert_non_null(id);
    snprintf(out, cap, "%s", id);
    json_decref(doc);
    ctl_response_free(&r);
}

static void fleet_orders_validates_elsewhere_and_serves_everywhere(void **state)
{
    const char *ips[NODES] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
    const char *host = "shop.gw.test";
    char keyfile[300], http[NODES][64], join[64], owner[300], env_key[320], backend[64];
    char ids[NODES][64], cn[128];
    const char *idp[NODES];
    static const char *extras[NODES][16];
    int http_port = pebble_free_port();

    /* the CA validates at <DNS answer>:http_port; DNS is set per name below */
    pebble_start(&pebble, http_port, "127.0.0.1");
    pebble_up = true;
    snprintf(keyfile, sizeof(keyfile), "%s/cluster.key", nt_tmpdir());
    tt_write_file(keyfile, "q1zQmR2mYJx5Yg8c1pXvkq0nWm3l7rT2pX9c4mDkJfA=\n");
    struct nt_backend *be = nt_backend_start("127.0.0.15", "acme-backend", 0);

    for (int i = 0; i < NODES; i++) {
        char name[16];
        snprintf(http[i], sizeof(http[i]), "%s:%d", ips[i], http_port);
        snprintf(name, sizeof(name), "acme%d", i);
        const char *extra[] = {"--allow-loopback-backends",
                               "--domain",
                               "gw.test",
                               "--cluster-key",
                               keyfile,
                               "--http",
                               http[i],
                               "--acme-directory",
                               pebble.directory,
                               "--acme-ca-file",
                               pebble.ca_file,
                               i ? "--join" : NULL,
                               join,
                               NULL};
        memcpy(extras[i], extra, sizeof(extra));
        assert_int_equal(nt_node_start(&nodes[i], name, ips[i], extra), 0);
        nodes[i].http_port = http_port;
        if (i == 0)
            snprintf(join, sizeof(join), "%s:%d", ips[0], nodes[0].gossip_port);
        node_id(&nodes[i], ids[i], sizeof(ids[i]));
        idp[i] = ids[i];
    }
    /* wait for the three to see each other */
    for (int t = 0; t < 100; t++) {
        struct ctl_response r;
        int alive = 0;
        if (nt_api(&nodes[2], "GET", "/api/v1/members", NULL, NULL, 0, &r) == 200)
            for (const char *p = r.body; (p = strstr(p, "\"alive\"")) != NULL; p++)
                alive++;
        ctl_response_free(&r);
        if (alive == NODES)
            break;
        usleep(100000);
    }

    /* who orders, and send the CA's validation to someone else */
    long orderer = acme_orderer(host, idp, NODES);
    assert_true(orderer >= 0);
    int validator = (int)((orderer + 1) % NODES);
    pebble_add_a(&pebble, host, ips[validator]);
    fprintf(stderr, "orderer %s (%s), validation through %s\n", ids[orderer], ips[orderer],
            ips[validator]);

    /* expose the name on the first node */
    snprintf(backend, sizeof(backend), "http://127.0.0.15:%d", nt_backend_port(be));
    snprintf(owner, sizeof(owner), "%s/owner.key", nt_tmpdir());
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s", owner);
    {
        char out[4096], err[4096];
        const char *env[] = {env_key, NULL};
        const char *keygen[] = {"webgwctl", "--api", nodes[0].api_url, "keygen", NULL};
        const char *reserve[] = {"webgwctl", "--api", nodes[0].api_url, "reserve", "shop", NULL};
        const char *expose[] = {"webgwctl", "--api",     nodes[0].api_url, "expose",
                                "shop",     "--backend", backend,          NULL};
        assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
        assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
        assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);
    }

    /* every node ends up serving a certificate pebble's root verifies */
    char *root = pebble_root(&pebble);
    SSL_CTX *ctx = tt_client_ctx(root);
    for (int i = 0; i < NODES; i++) {
        int v = -1;
        for (int t = 0; t < 300 && v != X509_V_OK; t++) {
            v = served(&nodes[i], ctx, host, cn, sizeof(cn));
            if (v != X509_V_OK)
                usleep(100000);
        }
        if (v != X509_V_OK)
            fail_msg("node %s does not serve a valid certificate for %s (logs in %s)", ips[i], host,
                     nt_tmpdir());
    }
    for (int i = 0; i < NODES; i++)
        assert_int_equal(nt_node_stop(&nodes[i], SIGTERM, 15000), 0);

    /* no CA, no peers: a node restarted alone serves the certificate from its data dir */
    pebble_stop(&pebble);
    pebble_up = false;
    assert_int_equal(nt_node_restart(&nodes[validator], extras[validator]), 0);
    assert_int_equal(served(&nodes[validator], ctx, host, cn, sizeof(cn)), X509_V_OK);
    assert_int_equal(nt_node_stop(&nodes[validator], SIGTERM, 15000), 0);
    SSL_CTX_free(ctx);
    free(root);
    nt_backend_stop(be);
}

static int teardown(void **state)
{
    for (int i = 0; i < NODES; i++)
        if (nodes[i].pid)
            nt_node_stop(&nodes[i], SIGKILL, 5000);
    if (pebble_up)
        pebble_stop(&pebble);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fleet_orders_validates_elsewhere_and_serves_everywhere),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, teardown);
}
