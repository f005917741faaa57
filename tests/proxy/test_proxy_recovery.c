/*
 * test_proxy_recovery.c - a backend the fleet's probes see recover is used again at once,
 * whatever passive backoff this gateway had piled on it while it was failing.
 *
 * Found by the soak suite (tests/soak): a backend that stalled for 15 s collected request
 * timeouts, and its passive backoff (1 s doubling to 30 s) kept it out of rotation for up to
 * 30 s after the probes said `up` again; when the name's other backend then failed one request,
 * the name answered 503 "no healthy backend" although both backends were up. Here backend 0's
 * connects hang (its accept queue held full) so several requests time out and back it off;
 * then it recovers and the fleet verdict goes DOWN -> UP, as the probes report it: the next
 * requests must reach it, within far less than the backoff it had.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void test_fleet_up_clears_passive_backoff(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *be0 = tb_start(0), *be1 = tb_start(1);
    uint16_t ports[2] = {tb_port(be0), tb_port(be1)};
    th_route(routes, "app.localhost", "app", ports, 2);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.connect_timeout_ms = 100;
    cfg.down_backoff_ms = 50;    /* short steps; the cap stays 30 s */
    cfg.down_after_failures = 1; /* every failure counts at once: the backoff piles up fast */
    struct proxy *p = th_proxy(routes, &cfg);
    uint16_t port = proxy_http_port(p);
    struct state_backend b0 = {.family = 4, .addr = {127, 0, 0, 1}, .port = ports[0]};
    struct tc_resp r;

    /* backend 0 stops completing connects: each try times out (100 ms) and the request goes
     * on to backend 1; every failure doubles backend 0's backoff (50 ms, 100, ... 1.6 s) */
    tb_hold_connects(be0);
    for (int i = 0; i < 6; i++) {
        for (int k = 0; k < 2; k++) { /* round robin: one of the two tries backend 0 */
            assert_int_equal(tc_get(port, "app.localhost", "/id", &r), 200);
            assert_string_equal(r.body, "backend-1");
            tc_resp_free(&r);
        }
        if (i < 5)
            usleep((50000u << i) + 20000); /* past the backoff: the next pick tries it again */
    }
    /* it recovers; the probes saw it down, now up */
    tb_release_connects(be0);
    usleep(200000); /* well inside the last backoff (1.6 s) */
    proxy_health_set_fleet(p, &b0, PROXY_VERDICT_DOWN);
    proxy_health_set_fleet(p, &b0, PROXY_VERDICT_UP);
    /* round robin over two usable backends: backend 0 within the next few requests */
    int zero = 0;
    for (int i = 0; i < 6; i++) {
        assert_int_equal(tc_get(port, "app.localhost", "/id", &r), 200);
        if (strcmp(r.body, "backend-0") == 0)
            zero++;
        tc_resp_free(&r);
    }
    printf("  after the fleet's up: %d of 6 requests on the recovered backend\n", zero);
    assert_true(zero >= 2);
    proxy_stop(p);
    tb_free(be0);
    tb_free(be1);
    state_routes_free(routes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fleet_up_clears_passive_backoff),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
