/*
 * test_gossip_timing.c - the gossip timings set on the command line reach the running
 * protocol: two real daemons in one cluster, one probing every 200 ms and one every 1 s,
 * each probe at its own rate as counted by webgw_gossip_probes_total{outcome="sent"}.
 * (The default is 600 ms: a daemon that ignored the flags would probe 1.7/s on both.)
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

#include "harness.h"
#include "node/node.h"

static struct nt_node fast, slow;

/* webgw_gossip_probes_total{outcome="sent"} of a node, or -1. */
static long probes_sent(const struct nt_node *n)
{
    static const char metric[] = "webgw_gossip_probes_total{outcome=\"sent\"} ";
    struct ctl_response r;
    long v = -1;

    if (nt_api(n, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body) {
        const char *p = strstr(r.body, metric);
        if (p)
            v = strtol(p + sizeof(metric) - 1, NULL, 10);
    }
    ctl_response_free(&r);
    return v;
}

static bool two_alive(void *ctx)
{
    struct ctl_response r;
    bool ok = nt_api(ctx, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body &&
              strstr(r.body, "webgw_members{state=\"alive\"} 2\n") != NULL;

    ctl_response_free(&r);
    return ok;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void each_daemon_probes_at_its_configured_rate(void **state)
{
    char seed[64];
    const char *fast_flags[] = {"--gossip-probe-interval", "200ms", "--gossip-probe-timeout",
                                "100ms", NULL};
    const char *slow_flags[] = {
        "--gossip-probe-interval", "1s", "--gossip-probe-timeout", "500ms", "--join", seed, NULL};
    long f0, s0, f1, s1;
    double t0, t1, fast_rate, slow_rate;

    (void)state;
    assert_int_equal(nt_node_start(&fast, "fast", "127.0.0.1", fast_flags), 0);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", fast.gossip_port);
    assert_int_equal(nt_node_start(&slow, "slow", "127.0.0.2", slow_flags), 0);
    assert_true(nt_wait(two_alive, &fast, 20000));
    assert_true(nt_wait(two_alive, &slow, 20000));

    t0 = now_s();
    f0 = probes_sent(&fast);
    s0 = probes_sent(&slow);
    sleep(5);
    f1 = probes_sent(&fast);
    s1 = probes_sent(&slow);
    t1 = now_s();
    assert_true(f0 >= 0 && s0 >= 0 && f1 >= 0 && s1 >= 0);
    fast_rate = (double)(f1 - f0) / (t1 - t0);
    slow_rate = (double)(s1 - s0) / (t1 - t0);
    printf("probes per second: fast (200ms) %.2f, slow (1s) %.2f\n", fast_rate, slow_rate);
    /* 5/s and 1/s; the window's edges and a loaded machine cost a probe or two */
    assert_true(fast_rate >= 3.8 && fast_rate <= 5.6);
    assert_true(slow_rate >= 0.6 && slow_rate <= 1.3);
}

static int teardown(void **state)
{
    (void)state;
    if (fast.pid)
        nt_node_stop(&fast, SIGTERM, 10000);
    if (slow.pid)
        nt_node_stop(&slow, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_daemon_probes_at_its_configured_rate),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
