/*
 * test_policy.c - each node routes by its own address policy. A record with a loopback
 * backend, accepted by a node started with --allow-loopback-backends, reaches a node without
 * the flag (the record sets converge), but that node neither forwards to nor probes its own
 * loopback: the name has no route there. A SIGHUP that turns the flag on gives it one.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node open_node, strict_node;
static struct nt_backend *be;

static int teardown(void **state)
{
    nt_node_stop(&open_node, SIGTERM, 10000);
    nt_node_stop(&strict_node, SIGTERM, 10000);
    nt_backend_stop(be);
    nt_cleanup();
    return 0;
}

static bool record_arrived(void *ctx)
{
    struct ctl_response r;
    bool ok = nt_api(&strict_node, "GET", "/api/v1/names/local", NULL, NULL, 0, &r) == 200;

    ctl_response_free(&r);
    return ok;
}

static bool served_by_strict(void *ctx)
{
    char body[128];
    return nt_get(strict_node.ip, strict_node.http_port, "local.localhost", "/", body,
                  sizeof(body)) == 200;
}

static void loopback_backends_are_refused_where_not_allowed(void **state)
{
    char seed[64], backend[64], envkey[400], out[4096], err[4096], body[512], cfg[300];
    const char *env[] = {envkey, NULL};
    FILE *f;

    be = nt_backend_start("127.0.0.16", "local-backend", 0);
    const char *extra_open[] = {"--allow-loopback-backends", NULL};
    assert_int_equal(nt_node_start(&open_node, "open", "127.0.0.1", extra_open), 0);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", open_node.gossip_port);
    snprintf(cfg, sizeof(cfg), "%s/strict.yaml", nt_tmpdir());
    f = fopen(cfg, "w");
    fputs("allow-loopback-backends: false\n", f);
    fclose(f);
    const char *extra_strict[] = {"--config",       cfg, "--join", seed, "--cluster-key",
                                  nt_cluster_key(), NULL};
    assert_int_equal(nt_node_start(&strict_node, "strict", "127.0.0.2", extra_strict), 0);

    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(backend, sizeof(backend), "http://127.0.0.16:%d", nt_backend_port(be));
    const char *keygen[] = {"webgwctl", "--api", open_node.api_url, "keygen", NULL};
    const char *reserve[] = {"webgwctl", "--api", open_node.api_url, "reserve", "local", NULL};
    const char *expose[] = {"webgwctl", "--api",     open_node.api_url, "expose",
                            "local",    "--backend", backend,           NULL};
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);

    /* the record reaches the strict node, which does not route it */
    assert_true(nt_wait(record_arrived, NULL, 10000));
    usleep(300000);
    assert_int_equal(
        nt_get(strict_node.ip, strict_node.http_port, "local.localhost", "/", body, sizeof(body)),
        404);
    assert_int_equal(
        nt_get(open_node.ip, open_node.http_port, "local.localhost", "/", body, sizeof(body)), 200);
    /* the operator allows loopback on the strict node: SIGHUP, and the route appears */
    f = fopen(cfg, "w");
    fputs("allow-loopback-backends: true\n", f);
    fclose(f);
    kill(strict_node.pid, SIGHUP);
    assert_true(nt_wait(served_by_strict, NULL, 10000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loopback_backends_are_refused_where_not_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
