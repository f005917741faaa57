/*
 * test_cold_start.c - a cold start of COLD_N members through 3 seeds on the fake network,
 * with what the daemon sends (32-hex ids, its metadata, every packet sealed): all of them
 * start within COLD_WINDOW_MS, each joining through the 3 seeds.
 *
 * The bounds are loose for today's figures and tight for a regression: the fleet must
 * converge (every member sees every other alive, none suspect) within COLD_CONVERGE_MS of
 * the last start (it takes about 8 s); members must spend less than COLD_BPS bytes a second
 * on the wire during the cold start (about 31 KB, of which UDP 19.5 KB: the regular rounds
 * with full packets; early rounds in the flood made the UDP 3 times that); and ids and
 * metadata are stored once for the whole simulation. The full-size run is
 * tests/bench/bench_gossip_sim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fakenet.h"
#include "gossip/gossip_int.h"

#define COLD_N 500
#define COLD_SEEDS 3
#define COLD_WINDOW_MS 5000
#define COLD_CONVERGE_MS 20000
#define COLD_BPS 45000

static void test_cold_start_through_three_seeds(void **state)
{
    struct fakenet *net = fakenet_new(COLD_N, 1500);
    uint64_t ms, last_start, busiest = 0;
    double secs, bps;

    (void)state;
    net->daemon_sized = true;
    net->step_ms = 5;
    ms = fakenet_cold_start(net, COLD_SEEDS, COLD_WINDOW_MS, 60000, &last_start);
    secs = (double)net->now / 1000.0;
    bps = (double)(net->wire_udp + net->wire_tcp) / COLD_N / secs;
    for (size_t i = 0; i < COLD_N; i++)
        if (net->nodes[i].wire_sent > busiest)
            busiest = net->nodes[i].wire_sent;
    printf("  %d members through %d seeds within %.1f s: converged %.1f s after the last start; "
           "%.0f B/member/s on the wire (UDP %.0f, TCP %.0f), busiest %.0f B/s\n",
           COLD_N, COLD_SEEDS, COLD_WINDOW_MS / 1000.0,
           ms == UINT64_MAX ? -1.0 : (double)ms / 1000.0, bps,
           (double)net->wire_udp / COLD_N / secs, (double)net->wire_tcp / COLD_N / secs,
           (double)busiest / secs);
    assert_true(ms != UINT64_MAX);
    /* members only ever send each other well-formed messages: a push-pull message whose
     * counts and contents disagree (a list packed past its buffer's room) is dropped whole */
    for (size_t i = 0; i < COLD_N; i++) {
        struct gossip_stats st;
        gossip_stats_get(net->nodes[i].g, &st);
        assert_int_equal(st.drops[GOSSIP_DROP_MALFORMED], 0);
        assert_int_equal(st.drops[GOSSIP_DROP_OVERSIZE], 0);
    }
    assert_true(ms <= COLD_CONVERGE_MS);
    assert_true(bps <= COLD_BPS);
    /* every member's table holds COLD_N entries; ids, metadata, addresses and each member's
     * version (one for all tables: they agree) are stored once */
    assert_int_equal(gshare_stored(), 4 * COLD_N);
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_start_through_three_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
