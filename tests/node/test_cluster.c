/*
 * test_cluster.c - three webgw nodes on 127.0.0.1, .2 and .3, as the local demo runs them: a
 * name exposed through node 1 is served by nodes 2 and 3, and when a node is killed (kill -9)
 * the others go on serving it and see the death.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "node/node.h"

#define NODES 3

static struct nt_node nodes[NODES];
static struct nt_backend *be_a, *be_b;
static char env_api[128], env_key[400], out[65536], err[8192];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static int setup(void **state)
{
    char seed[64], label[] = "--cluster-label";
    const char *extra1[] = {"--allow-loopback-backends", "--node-name", "gw1", label, "test", NULL};

    be_a = nt_backend_start("127.0.0.11", "backend-a", 0);
    be_b = nt_backend_start("127.0.0.12", "backend-b", 0);
    if (nt_node_start(&nodes[0], "gw1", "127.0.0.1", extra1) != 0)
        return -1;
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", nodes[0].gossip_port);
    for (int i = 1; i < NODES; i++) {
        char name[8], ip[16];
        snprintf(name, sizeof(name), "gw%d", i + 1);
        snprintf(ip, sizeof(ip), "127.0.0.%d", i + 1);
        const char *extra[] = {
            "--allow-loopback-backends", "--node-name", name, label, "test", "--join", seed, NULL};
        if (nt_node_start(&nodes[i], name, ip, extra) != 0)
            return -1;
    }
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(env_api, sizeof(env_api), "WEBGW_API=%s", nodes[0].api_url);
    return ctl(nodes[0].api_url, "keygen", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    for (int i = 0; i < NODES; i++)
        if (nodes[i].pid)
            nt_node_stop(&nodes[i], SIGTERM, 10000);
    nt_backend_stop(be_a);
    nt_backend_stop(be_b);
    nt_cleanup();
    return 0;
}

struct member_check {
    const struct nt_node *at; /* whose view */
    const char *name;         /* member name */
    const char *states;       /* acceptable states, e.g. "alive" or "suspect dead" */
    size_t min_members;       /* members listed at least */
};

static bool member_in_state(void *ctx)
{
    struct member_check *mc = ctx;
    struct ctl_response r;
    json_t *doc, *m;
    size_t i;
    bool ok = false;

    if (nt_api(mc->at, "GET", "/api/v1/members", NULL, NULL, 0, &r) != 200) {
        ctl_response_free(&r);
        return false;
    }
    doc = json_loads(r.body, 0, NULL);
    ctl_response_free(&r);
    if (json_array_size(doc) >= mc->min_members) {
        json_array_foreach(doc, i, m)
        {
            const char *st = json_string_value(json_object_get(m, "state"));
            if (strcmp(json_string_value(json_object_get(m, "name")), mc->name) == 0 && st &&
                strstr(mc->states, st))
                ok = true;
        }
    }
    json_decref(doc);
    return ok;
}

struct serve_check {
    const struct nt_node *at; /* which gateway */
    const char *host;         /* Host header */
};

static bool served(void *ctx)
{
    struct serve_check *sc = ctx;
    char body[256];

    return nt_get(sc->at->ip, sc->at->http_port, sc->host, "/", body, sizeof(body)) == 200 &&
           strstr(body, "backend-") != NULL;
}

static void the_nodes_form_one_cluster(void **state)
{
    for (int at = 0; at < NODES; at++) {
        for (int i = 0; i < NODES; i++) {
            char name[8];
            snprintf(name, sizeof(name), "gw%d", i + 1);
            struct member_check mc = {&nodes[at], name, "alive", NODES};
            assert_true(nt_wait(member_in_state, &mc, 10000));
        }
    }
}

static void a_name_exposed_on_node_1_is_served_by_every_node(void **state)
{
    char a[64], b[64];
    char host[] = "demo.localhost";

    snprintf(a, sizeof(a), "http://127.0.0.11:%d", nt_backend_port(be_a));
    snprintf(b, sizeof(b), "http://127.0.0.12:%d", nt_backend_port(be_b));
    assert_int_equal(ctl(nodes[0].api_url, "reserve", "demo", NULL), 0);
    assert_int_equal(ctl(nodes[0].api_url, "expose", "demo", "--backend", a, "--backend", b, NULL),
                     0);
    for (int i = 0; i < NODES; i++) {
        struct serve_check sc = {&nodes[i], host};
        assert_true(nt_wait(served, &sc, 10000));
    }
    /* the record itself reached every node's API */
    assert_int_equal(ctl(nodes[2].api_url, "--json", "show", "demo", NULL), 0);
    assert_non_null(strstr(out, "127.0.0.12"));
    /* both backends get traffic through node 3 (round-robin) */
    {
        unsigned long a0 = nt_backend_requests(be_a), b0 = nt_backend_requests(be_b);
        char body[256];
        for (int i = 0; i < 10; i++)
            assert_int_equal(nt_get(nodes[2].ip, nodes[2].http_port, host, "/", body, sizeof(body)),
                             200);
        assert_true(nt_backend_requests(be_a) > a0);
        assert_true(nt_backend_requests(be_b) > b0);
    }
    /* an unknown name is a 404 on every node */
    {
        char body[512];
        assert_int_equal(
            nt_get(nodes[1].ip, nodes[1].http_port, "nope.localhost", "/", body, sizeof(body)),
            404);
    }
}

static void a_killed_node_leaves_the_others_serving(void **state)
{
    char host[] = "demo.localhost";
    char body[256];

    /* node 1 received the record; kill it without a chance to say goodbye */
    assert_int_equal(nt_node_stop(&nodes[0], SIGKILL, 5000), 128 + SIGKILL);
    for (int i = 1; i < NODES; i++) {
        for (int k = 0; k < 5; k++)
            assert_int_equal(nt_get(nodes[i].ip, nodes[i].http_port, host, "/", body, sizeof(body)),
                             200);
        struct member_check mc = {&nodes[i], "gw1", "suspect dead", NODES};
        assert_true(nt_wait(member_in_state, &mc, 15000));
    }
    /* and a record sent to a survivor still spreads to the other */
    assert_int_equal(ctl(nodes[1].api_url, "reserve", "after", NULL), 0);
    {
        struct ctl_response r;
        bool seen = false;
        for (int i = 0; i < 100 && !seen; i++) {
            seen = nt_api(&nodes[2], "GET", "/api/v1/names/after", NULL, NULL, 0, &r) == 200;
            ctl_response_free(&r);
            if (!seen)
                usleep(50000);
        }
        assert_true(seen);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_nodes_form_one_cluster),
        cmocka_unit_test(a_name_exposed_on_node_1_is_served_by_every_node),
        cmocka_unit_test(a_killed_node_leaves_the_others_serving),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
