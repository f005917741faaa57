/*
 * test_health_ttl.c - backend health stays fresh past its TTL on a real 3-node cluster.
 *
 * Gossip lets each prober's verdict expire after --health-ttl unless it is restated. Sampling
 * inside one TTL hides a prober that reports only changes, so this runs with a short TTL (6 s)
 * for several TTLs and checks, on every node, every half second: the up backend reads "up",
 * the down one "down", never "unknown"; /metrics keeps webgw_backend_up for both; traffic goes
 * to the up one only. Then one backend dies and the other comes back, and every node must see
 * both changes within the bound the README documents: max(rise, fall) x (interval + timeout)
 * to detect, plus a quarter TTL to spread.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "node/node.h"

#define NODES 3
#define TTL_MS 6000     /* --health-ttl */
#define INTERVAL_MS 300 /* --health-interval (the probe timeout follows it) */
#define RISE_FALL 2     /* --health-rise and --health-fall */
/* the documented bound for a change to reach every gateway */
#define CHANGE_BOUND_MS (RISE_FALL * (INTERVAL_MS + INTERVAL_MS) + TTL_MS / 4)
#define SAMPLE_MS 500 /* between two samples of the whole fleet */

static struct nt_node nodes[NODES];
static struct nt_backend *be_a, *be_b; /* a starts up, b starts down (nothing listening) */
static int port_a, port_b;
static char key_a[64], key_b[64];
static char env_key[400], out[65536], err[8192];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static uint64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int setup(void **state)
{
    char seed[64] = "", ttl[16], interval[16], rf[8];

    (void)state;
    snprintf(ttl, sizeof(ttl), "%dms", TTL_MS);
    snprintf(interval, sizeof(interval), "%dms", INTERVAL_MS);
    snprintf(rf, sizeof(rf), "%d", RISE_FALL);
    be_a = nt_backend_start("127.0.0.21", "backend-a", 0);
    port_a = nt_backend_port(be_a);
    port_b = nt_free_port("127.0.0.22");
    snprintf(key_a, sizeof(key_a), "127.0.0.21:%d", port_a);
    snprintf(key_b, sizeof(key_b), "127.0.0.22:%d", port_b);
    for (int i = 0; i < NODES; i++) {
        char name[8], ip[16];
        snprintf(name, sizeof(name), "gw%d", i + 1);
        snprintf(ip, sizeof(ip), "127.0.0.%d", i + 1);
        const char *extra[] = {"--allow-loopback-backends",
                               "--node-name",
                               name,
                               "--cluster-label",
                               "health-ttl",
                               "--health-ttl",
                               ttl,
                               "--health-interval",
                               interval,
                               "--health-rise",
                               rf,
                               "--health-fall",
                               rf,
                               i ? "--join" : NULL,
                               seed,
                               NULL};
        if (nt_node_start(&nodes[i], name, ip, extra) != 0)
            return -1;
        if (i == 0)
            snprintf(seed, sizeof(seed), "127.0.0.1:%d", nodes[0].gossip_port);
    }
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    return ctl(nodes[0].api_url, "keygen", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < NODES; i++)
        if (nodes[i].pid)
            nt_node_stop(&nodes[i], SIGTERM, 10000);
    nt_backend_stop(be_a);
    nt_backend_stop(be_b);
    nt_cleanup();
    return 0;
}

/* One node's view of both backends: "up", "down", "unknown", or "" when not listed. */
struct view {
    char a[16], b[16]; /* fleet verdicts from GET /api/v1/backends */
    bool metrics_a;    /* webgw_backend_up lists a */
    bool metrics_b;    /* and b */
};

static void sample(const struct nt_node *n, struct view *v)
{
    struct ctl_response r;
    json_t *doc, *e;
    size_t i;

    memset(v, 0, sizeof(*v));
    if (nt_api(n, "GET", "/api/v1/backends", NULL, NULL, 0, &r) == 200) {
        doc = json_loads(r.body, 0, NULL);
        json_array_foreach(doc, i, e)
        {
            const char *key = json_string_value(json_object_get(e, "key"));
            const char *h = json_string_value(json_object_get(e, "health"));
            if (key && h && strcmp(key, key_a) == 0)
                snprintf(v->a, sizeof(v->a), "%s", h);
            if (key && h && strcmp(key, key_b) == 0)
                snprintf(v->b, sizeof(v->b), "%s", h);
        }
        json_decref(doc);
    }
    ctl_response_free(&r);
    if (nt_api(n, "GET", "/metrics", NULL, NULL, 0, &r) == 200) {
        char want[128];
        snprintf(want, sizeof(want), "webgw_backend_up{backend=\"%s\"", key_a);
        v->metrics_a = strstr(r.body, want) != NULL;
        snprintf(want, sizeof(want), "webgw_backend_up{backend=\"%s\"", key_b);
        v->metrics_b = strstr(r.body, want) != NULL;
    }
    ctl_response_free(&r);
}

static bool known(const char *verdict)
{
    return strcmp(verdict, "up") == 0 || strcmp(verdict, "down") == 0;
}

/* Every node reads a as `want_a` and b as `want_b`. With `strict`, a node that reads either
 * as anything but up or down fails the test. */
static bool fleet_reads(const char *want_a, const char *want_b, bool strict)
{
    bool all = true;

    for (int i = 0; i < NODES; i++) {
        struct view v;
        sample(&nodes[i], &v);
        if (strict && (!known(v.a) || !known(v.b)))
            fail_msg("gw%d: a=\"%s\" b=\"%s\" while both are probed", i + 1, v.a, v.b);
        if (strcmp(v.a, want_a) != 0 || strcmp(v.b, want_b) != 0)
            all = false;
    }
    return all;
}

/* For `ms`, every SAMPLE_MS: every node reads the expected verdicts, lists both backends in
 * /metrics, and serves the name from the up backend. */
static void fleet_holds(const char *want_a, const char *want_b, const char *tag, int ms)
{
    uint64_t end = now_ms() + (uint64_t)ms;
    int rounds = 0;

    while (now_ms() < end) {
        for (int i = 0; i < NODES; i++) {
            struct view v;
            char body[256];
            sample(&nodes[i], &v);
            if (strcmp(v.a, want_a) != 0 || strcmp(v.b, want_b) != 0 || !v.metrics_a ||
                !v.metrics_b)
                fail_msg("gw%d after %d rounds: a=%s (want %s) b=%s (want %s) metrics a=%d b=%d",
                         i + 1, rounds, v.a, want_a, v.b, want_b, v.metrics_a, v.metrics_b);
            assert_int_equal(
                nt_get(nodes[i].ip, nodes[i].http_port, "demo.localhost", "/", body, sizeof(body)),
                200);
            assert_non_null(strstr(body, tag));
        }
        rounds++;
        usleep(SAMPLE_MS * 1000);
    }
    assert_true(rounds >= ms / (SAMPLE_MS * 4));
}

static void verdicts_stay_fresh_past_several_ttls_and_changes_spread_in_bound(void **state)
{
    char a[80], b[80];
    uint64_t t0, took = 0;
    bool seen = false;

    (void)state;
    snprintf(a, sizeof(a), "http://%s", key_a);
    snprintf(b, sizeof(b), "http://%s", key_b);
    assert_int_equal(ctl(nodes[0].api_url, "reserve", "demo", NULL), 0);
    assert_int_equal(ctl(nodes[0].api_url, "expose", "demo", "--backend", a, "--backend", b, NULL),
                     0);
    /* first verdicts: a up, b down everywhere */
    t0 = now_ms();
    while (!seen && now_ms() - t0 < 20000) {
        seen = fleet_reads("up", "down", false);
        if (!seen)
            usleep(100000);
    }
    assert_true(seen);
    /* past four TTLs: nothing expires, nothing flips */
    fleet_holds("up", "down", "backend-a", 4 * TTL_MS);

    /* a dies, b comes back on its port: every node sees both within the bound */
    nt_backend_stop(be_a);
    be_a = NULL;
    be_b = nt_backend_start_port("127.0.0.22", port_b, "backend-b", 0);
    t0 = now_ms();
    seen = false;
    while (!seen && now_ms() - t0 < 4 * CHANGE_BOUND_MS) {
        seen = fleet_reads("down", "up", true);
        took = now_ms() - t0;
        if (!seen)
            usleep(50000);
    }
    for (int i = 0; i < NODES && !seen; i++) {
        struct view v;
        sample(&nodes[i], &v);
        print_message("gw%d reads a=%s b=%s\n", i + 1, v.a, v.b);
    }
    print_message("change seen by all %d nodes in %llu ms (bound %d ms)\n", NODES,
                  (unsigned long long)took, CHANGE_BOUND_MS);
    assert_true(seen);
    assert_true(took <= CHANGE_BOUND_MS);
    /* and the new verdicts hold past two more TTLs */
    fleet_holds("down", "up", "backend-b", 2 * TTL_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(verdicts_stay_fresh_past_several_ttls_and_changes_spread_in_bound),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
