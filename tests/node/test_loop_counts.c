/*
 * test_loop_counts.c - webgw_loop_timers and webgw_loop_handles in /metrics count what the
 * event loops really hold: 40 idle client connections add at least 40 timers and 40 handles to
 * the workers' counts (a session holds its socket and one timeout, counted as a timer though
 * the sessions of a worker share one libuv timer), and once they close, the counts return to
 * where they were. The probe thread's loop is counted too: probing three backends adds at least
 * three timers (one per probed backend), and releasing the name takes them away again. The
 * soak judges "timers stay flat" from these numbers, so a count that did not move with the
 * loops would hide a leak.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CONNS 40

static struct nt_node n1;
static char env_key[400], out[65536], err[8192];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static int teardown(void **state)
{
    (void)state;
    nt_node_stop(&n1, SIGTERM, 10000);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    nt_cleanup();
    return 0;
}

/* The value of `series` (name and labels, exactly) in a scrape, or -1. */
static long metric(const char *series)
{
    struct ctl_response r;
    long v = -1;

    if (nt_api(&n1, "GET", "/metrics", NULL, NULL, 0, &r) != 200)
        return -1;
    for (const char *p = r.body; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, strlen(series)) == 0 && p[strlen(series)] == ' ')
            v = strtol(p + strlen(series) + 1, NULL, 10);
    ctl_response_free(&r);
    return v;
}

/* The workers count at their once-a-second sweep: wait past two of them. */
static void settle(void)
{
    usleep(2200 * 1000);
}

static void loop_counts_follow_connections(void **state)
{
    int fds[CONNS];
    struct sockaddr_in sa = {.sin_family = AF_INET};
    long t0, h0, t1, h1, t2, h2;

    (void)state;
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", NULL), 0);
    settle();
    t0 = metric("webgw_loop_timers{loop=\"workers\"}");
    h0 = metric("webgw_loop_handles{loop=\"workers\"}");
    assert_true(t0 >= 0 && h0 > 0);
    /* the control loop runs gossip, the API and the probes' timers: never none */
    assert_true(metric("webgw_loop_timers{loop=\"control\"}") > 0);
    assert_true(metric("webgw_loop_handles{loop=\"control\"}") > 0);
    /* no backend used yet: no pooled backend connection (tests/proxy/test_proxy_pool_idle.c
     * follows the count through a pool's life) */
    assert_int_equal(metric("webgw_backend_pool_idle"), 0);

    sa.sin_port = htons((uint16_t)n1.http_port);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    for (int i = 0; i < CONNS; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(fds[i] >= 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
    }
    settle();
    t1 = metric("webgw_loop_timers{loop=\"workers\"}");
    h1 = metric("webgw_loop_handles{loop=\"workers\"}");
    printf("  workers: timers %ld -> %ld, handles %ld -> %ld with %d idle connections\n", t0, t1,
           h0, h1, CONNS);
    assert_true(t1 >= t0 + CONNS);
    assert_true(h1 >= h0 + CONNS);

    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    settle();
    t2 = metric("webgw_loop_timers{loop=\"workers\"}");
    h2 = metric("webgw_loop_handles{loop=\"workers\"}");
    printf("  after they closed: timers %ld, handles %ld\n", t2, h2);
    assert_int_equal(t2, t0);
    assert_int_equal(h2, h0);
}

/* Three backends that refuse connections (nothing listens): each is probed on its own timer. */
static void probe_loop_counts_follow_probed_backends(void **state)
{
    const char *extra[] = {"--allow-loopback-backends", "--health-interval", "300ms", NULL};
    char be[3][48];
    long t0, t1, t2;

    (void)state;
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", extra), 0);
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    assert_int_equal(ctl(n1.api_url, "keygen", NULL), 0);
    settle();
    t0 = metric("webgw_loop_timers{loop=\"probes\"}");
    assert_true(t0 >= 0);
    for (int i = 0; i < 3; i++)
        snprintf(be[i], sizeof(be[i]), "http://127.0.0.%d:%d", 41 + i,
                 nt_free_port(i == 0   ? "127.0.0.41"
                              : i == 1 ? "127.0.0.42"
                                       : "127.0.0.43"));
    assert_int_equal(ctl(n1.api_url, "reserve", "loops", NULL), 0);
    assert_int_equal(ctl(n1.api_url, "expose", "loops", "--backend", be[0], "--backend", be[1],
                         "--backend", be[2], NULL),
                     0);
    settle();
    t1 = metric("webgw_loop_timers{loop=\"probes\"}");
    assert_int_equal(ctl(n1.api_url, "release", "loops", NULL), 0);
    settle();
    t2 = metric("webgw_loop_timers{loop=\"probes\"}");
    printf("  probes: timers %ld -> %ld probing 3 backends -> %ld after the release\n", t0, t1, t2);
    assert_true(t1 >= t0 + 3);
    assert_int_equal(t2, t0);
    assert_true(metric("webgw_loop_handles{loop=\"probes\"}") >= t2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(loop_counts_follow_connections, teardown),
        cmocka_unit_test_teardown(probe_loop_counts_follow_probed_backends, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
