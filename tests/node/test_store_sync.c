/*
 * test_store_sync.c - what a gateway with many names costs the disk: starting on a data dir
 * of NAMES names it has not witnessed yet (a dir from before witnesses) takes one fdatasync
 * for all of its witnesses, not one each, and the witnesses survive kill -9; a fresh gateway
 * that learns a fleet's NAMES names through gossip stores them (records, the fleet's
 * witnesses and its own) in batches, and so does the gateway that gets its witnesses back.
 * webgw_store_syncs_total in /metrics counts the fdatasyncs of the record log.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fill_names.h"
#include "harness.h"

#define NAMES 3000

static struct nt_backend *backend;
static struct nt_node nodes[3]; /* stopped by the teardown when a test fails half-way */

static unsigned long long metric(const struct nt_node *n, const char *name)
{
    struct ctl_response resp;
    unsigned long long v = 0;
    char line[128];
    const char *p;

    snprintf(line, sizeof(line), "\n%s ", name);
    if (nt_api(n, "GET", "/metrics", NULL, NULL, 0, &resp) == 200 && resp.body &&
        (p = strstr(resp.body, line)) != NULL)
        v = strtoull(p + strlen(line), NULL, 10);
    ctl_response_free(&resp);
    return v;
}

/* nt_tmpdir()/name filled with NAMES names to the backend, signed by owner (or filler). */
static void fill(const char *name, const struct state_key *owner)
{
    char dir[512], err[STATE_ERR_MAX];
    struct state_backend be = {.family = 4, .port = (uint16_t)nt_backend_port(backend)};

    inet_pton(AF_INET, "127.0.0.41", be.addr);
    snprintf(dir, sizeof(dir), "%s/%s", nt_tmpdir(), name);
    if (fill_names(dir, NAMES, &be, owner, false, err, sizeof(err)) != 0)
        fail_msg("fill_names %s: %s", dir, err);
}

static void served(const struct nt_node *n, const char *name)
{
    char host[96], body[64];

    snprintf(host, sizeof(host), "%s.localhost", name);
    assert_int_equal(nt_get(n->ip, n->http_port, host, "/", body, sizeof(body)), 200);
    assert_string_equal(body, "many-names\n");
}

static void start_witnesses_every_name_with_one_sync(void **state)
{
    const char *extra[] = {"--allow-loopback-backends", NULL};
    struct nt_node *n = &nodes[0];

    (void)state;
    fill("lone", NULL);
    assert_int_equal(nt_node_start(n, "lone", "127.0.0.1", extra), 0);
    /* every name needs this gateway's witness to be routed: all were countersigned... */
    assert_int_equal(metric(n, "webgw_routes"), NAMES);
    served(n, "app-0002999");
    /* ...and stored with one fdatasync, not NAMES */
    printf("start on %d unwitnessed names: %llu fdatasyncs\n", NAMES,
           metric(n, "webgw_store_syncs_total"));
    assert_int_equal(metric(n, "webgw_store_syncs_total"), 1);

    /* durable before the daemon said it was up: after kill -9 nothing is left to witness */
    assert_int_equal(nt_node_stop(n, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(nt_node_restart(n, extra), 0);
    assert_int_equal(metric(n, "webgw_routes"), NAMES);
    assert_int_equal(metric(n, "webgw_store_syncs_total"), 0);
    served(n, "app-0000000");
    nt_node_stop(n, SIGTERM, 10000);
}

static bool all_witnessed(void *ctx)
{
    const struct nt_node *n = ctx;

    /* a claim needs both gateways' witnesses in a fleet of two: routed = witnessed by both */
    return metric(&n[0], "webgw_routes") == NAMES && metric(&n[1], "webgw_routes") == NAMES;
}

static void fresh_gateway_stores_a_fleets_names_in_batches(void **state)
{
    char keyfile[512], err[STATE_ERR_MAX], seed[64];
    const char *extra1[] = {"--allow-loopback-backends", "--max-names-per-owner", "0", NULL};
    struct nt_node *n = &nodes[1];
    struct state_key *owner;
    unsigned long long s1, s2;

    (void)state;
    snprintf(keyfile, sizeof(keyfile), "%s/owner.pem", nt_tmpdir());
    owner = state_key_generate(keyfile, err, sizeof(err));
    assert_non_null(owner);
    fill("fleet1", owner);
    state_key_free(owner);
    assert_int_equal(nt_node_start(&n[0], "fleet1", "127.0.0.1", extra1), 0);
    assert_int_equal(metric(&n[0], "webgw_routes"), NAMES);
    s1 = metric(&n[0], "webgw_store_syncs_total");
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", n[0].gossip_port);
    const char *extra2[] = {
        "--allow-loopback-backends", "--max-names-per-owner", "0", "--join", seed, NULL};
    assert_int_equal(nt_node_start(&n[1], "fleet2", "127.0.0.2", extra2), 0);
    assert_true(nt_wait(all_witnessed, n, 90000));
    served(&n[1], "app-0001234");
    /* NAMES records, NAMES of gw1's witnesses and NAMES of its own on gw2, NAMES witnesses
     * back on gw1: 4 x NAMES entries, one fdatasync each before group commit */
    s2 = metric(&n[1], "webgw_store_syncs_total");
    s1 = metric(&n[0], "webgw_store_syncs_total") - s1;
    printf("fresh gateway learning %d names: %llu fdatasyncs; the gateway it joined: %llu\n", NAMES,
           s2, s1);
    assert_true(s2 <= NAMES / 20);
    assert_true(s1 <= NAMES / 20);
    nt_node_stop(&n[1], SIGTERM, 10000);
    nt_node_stop(&n[0], SIGTERM, 10000);
}

static int setup(void **state)
{
    (void)state;
    backend = nt_backend_start("127.0.0.41", "many-names", 0);
    return backend ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++)
        if (nodes[i].pid > 0)
            nt_node_stop(&nodes[i], SIGKILL, 5000);
    nt_backend_stop(backend);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(start_witnesses_every_name_with_one_sync),
        cmocka_unit_test(fresh_gateway_stores_a_fleets_names_in_batches),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
