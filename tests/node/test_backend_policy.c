/*
 * test_backend_policy.c - backends a gateway refuses, on real processes: cloud metadata
 * endpoints in their IPv6 disguises, the operator's --deny-backend networks (a YAML list here),
 * and every fleet member's advertised addresses, both when a record is submitted and when a
 * member joins after the record was accepted (its route is withdrawn: no request loops
 * through, or into the gossip port of, another gateway).
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

static struct nt_node n1, n2;
static struct nt_backend *be;
static char envkey[400];

static int teardown(void **state)
{
    nt_node_stop(&n1, SIGTERM, 10000);
    nt_node_stop(&n2, SIGTERM, 10000);
    nt_backend_stop(be);
    nt_cleanup();
    return 0;
}

/* reserve + expose NAME -> BACKEND on n1; returns webgwctl's status, its stderr in err */
static int expose(const char *name, const char *backend, char *err, size_t errlen)
{
    const char *env[] = {envkey, NULL};
    char out[4096];
    const char *reserve[] = {"webgwctl", "--api", n1.api_url, "reserve", name, NULL};
    const char *exp[] = {"webgwctl", "--api",     n1.api_url, "expose",
                         name,       "--backend", backend,    NULL};

    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, errlen), 0);
    return nt_run(exp, env, out, sizeof(out), err, errlen);
}

static int get_later(void)
{
    char body[256];

    return nt_get(n1.ip, n1.http_port, "later.localhost", "/", body, sizeof(body));
}

static bool later_unrouted(void *ctx)
{
    (void)ctx;
    return get_later() == 404;
}

static void refused_backends(void **state)
{
    char seed[64], backend[96], err[4096], out[4096], body[128];
    const char *env[] = {envkey, NULL};
    const char *cfg = nt_write_tmp("n1.yaml", "deny-backend:\n  - 127.0.0.98\n  - 10.77.0.0/16\n");

    be = nt_backend_start("127.0.0.17", "ok-backend", 0);
    const char *extra1[] = {"--config", cfg, "--allow-loopback-backends", NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", extra1), 0);
    /* n2 runs on its own for now: not a member of n1's fleet */
    const char *extra2[] = {"--allow-loopback-backends", NULL};
    assert_int_equal(nt_node_start(&n2, "n2", "127.0.0.3", extra2), 0);
    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    const char *keygen[] = {"webgwctl", "--api", n1.api_url, "keygen", NULL};
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);

    /* an ordinary (loopback, allowed here) backend is served */
    snprintf(backend, sizeof(backend), "http://127.0.0.17:%d", nt_backend_port(be));
    assert_int_equal(expose("fine", backend, err, sizeof(err)), 0);
    assert_int_equal(nt_get(n1.ip, n1.http_port, "fine.localhost", "/", body, sizeof(body)), 200);

    /* cloud metadata, however written */
    assert_int_not_equal(expose("meta1", "http://[64:ff9b::a9fe:a9fe]:80", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "NAT64 cloud metadata address"));
    assert_int_not_equal(expose("meta2", "http://[2002:a9fe:a9fe::1]:80", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "6to4 cloud metadata address"));
    assert_int_not_equal(expose("meta3", "http://[fd00:ec2::254]:80", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "cloud metadata address"));
    assert_int_not_equal(expose("meta4", "http://100.100.100.200:80", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "cloud metadata address"));
    assert_int_not_equal(expose("resv", "http://240.1.2.3:80", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "reserved address"));

    /* the operator's deny list, from the YAML file */
    assert_int_not_equal(expose("deny1", "http://127.0.0.98:8080", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "denied network 127.0.0.98/32 (--deny-backend)"));
    assert_int_not_equal(expose("deny2", "http://[::ffff:10.77.1.2]:80", err, sizeof(err)), 0);
    assert_non_null(strstr(err, "denied network 10.77.0.0/16"));
    snprintf(backend, sizeof(backend), "http://10.78.1.2:80");
    assert_int_equal(expose("private", backend, err, sizeof(err)), 0);

    /* a name pointed at n2's gossip port while n2 is not in the fleet: accepted, and a
     * request gets 502 (the gossip port does not speak HTTP) */
    snprintf(backend, sizeof(backend), "http://127.0.0.3:%d", n2.gossip_port);
    assert_int_equal(expose("later", backend, err, sizeof(err)), 0);
    assert_int_equal(get_later(), 502);

    /* n2 joins: its addresses are the fleet's now, and n1 withdraws the route */
    assert_true(nt_node_stop(&n2, SIGTERM, 10000) >= 0);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", n1.gossip_port);
    const char *rejoin[] = {"--allow-loopback-backends", "--join", seed, NULL};
    assert_int_equal(nt_node_restart(&n2, rejoin), 0);
    assert_true(nt_wait(later_unrouted, NULL, 15000));

    /* and refuses new records naming any of its advertised addresses */
    snprintf(backend, sizeof(backend), "http://127.0.0.3:%d", n2.http_port);
    assert_int_not_equal(expose("direct", backend, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "fleet member's advertised address"));
    snprintf(backend, sizeof(backend), "http://127.0.0.3:%d", n2.https_port);
    assert_int_not_equal(expose("direct2", backend, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "fleet member's advertised address"));
    snprintf(backend, sizeof(backend), "http://127.0.0.3:%d", n2.gossip_port);
    assert_int_not_equal(expose("direct3", backend, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "fleet member's advertised address"));
    snprintf(backend, sizeof(backend), "http://127.0.0.3:%d", n2.api_port);
    assert_int_not_equal(expose("direct4", backend, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "fleet member's advertised address"));
    /* n2's host on another port is an ordinary backend */
    snprintf(backend, sizeof(backend), "http://127.0.0.3:%d", nt_free_port("127.0.0.3"));
    assert_int_equal(expose("beside", backend, err, sizeof(err)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_backends),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
