/*
 * test_detection.c - how fast a kill -9 is seen at what bandwidth, and what loss does, with the
 * shipped timings and what the daemon sends (32-hex ids, its metadata, a cluster key).
 *
 *   - kill detection: n = 5, 20, 50 members converge, one stops answering (kill -9); the time
 *     until every survivor holds it dead, mean over 10 seeds, with the UDP bytes per member per
 *     second of the steady state before it. Detection bounds are about 1.35 times what was
 *     measured, so a 2x regression fails; the byte bound keeps it at equal bandwidth: the
 *     detector before (probe 500 ms, suspicion mult 4, 2 confirmations) took 2.95 / 3.60 /
 *     4.29 s on 354 B/s and fails the bytes; with probes every second (about Serf's cost) it
 *     took 5.6 / 7.4 / 9.0 s and fails the times;
 *   - the same under 10% loss on everything (the loss on during the 30 s before the kill and
 *     until the end): as fast, and no false death before it;
 *   - a second kill -9 just as the first is seen everywhere is seen as fast as the first:
 *     failing a probe of a dead member must not slow the survivors' own probing;
 *   - 10 virtual minutes of 10% loss on every datagram and every TCP segment at 20 and 50
 *     members: nobody is declared dead, the bytes stay under Serf's at that loss, and the
 *     suspicions (each member's transitions to
 *     SUSPECT, as the daemon logs them) stay few: one failed probe is seen by about a
 *     dozen members, and the bounds allow about two (before the second look of
 *     gossip_probe_second: 39 and 344 here, 16-109 and 212-334 over 8 other seeds; before
 *     the early confirmations: 1047 and 4965).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fakenet.h"

#define DETECT_SEEDS 10
#define WIRE_IP_UDP 28 /* IPv4 + UDP headers */
/* UDP bytes per member per second the probe cycle may spend: Serf (memberlist LAN, 32-hex
 * names, encrypted) measured 362 on the wire (tests/bench/gossip_vs_serf.sh); the daemon adds
 * push-pull over TCP and its own items on top, so the detector keeps well below. */
#define UDP_BUDGET 300
/* Bytes per member per second (UDP and TCP, headers included) the fleet may spend under 10%
 * loss: Serf spent 825-1,186 on the wire at 20 and 50 members (gossip_vs_serf.sh LOSS=10,
 * 2026-12-05). A probe that misses its direct ack costs more than the ack: indirect probes,
 * retries, and the TCP probe, which went out with the indirect probes (355 B/s of TCP per
 * member on its own) and now only with the second look. The early direct retry
 * (gossip_probe_retry) keeps the indirect probes for the probes whose retry is lost too:
 * measured 444 and 448 here (409-460 over 8 other seeds), 681 and 689 without it (the bound
 * was 800 then; 500 fails them). */
#define LOSS_BUDGET 500

static struct fakenet *daemon_cluster(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);

    net->daemon_sized = true;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    for (int s = 0; s < 600 && !fakenet_converged(net, n); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, n));
    return net;
}

static bool all_see_dead(struct fakenet *net, void *arg)
{
    size_t v = *(size_t *)arg;

    for (size_t i = 0; i < net->n; i++)
        if (i != v && net->nodes[i].up && fakenet_state(net, i, v) != GOSSIP_DEAD)
            return false;
    return true;
}

/* Mean ms from the kill until every survivor holds the victim dead, with `loss` on every
 * datagram and TCP segment from 30 s before the kill on; without loss, *udp_bps gets the
 * datagram bytes (IPv4 and UDP headers included) per member per second in the steady state
 * before the first kill (left alone under loss). */
static double kill_detection(size_t n, double loss, uint64_t *worst, double *udp_bps)
{
    double sum = 0;

    *worst = 0;
    for (uint64_t s = 0; s < DETECT_SEEDS; s++) {
        struct fakenet *net = daemon_cluster(n, 7000 + n * 100 + s);
        size_t victim = n - 1;
        uint64_t t, b0, c0;

        /* settle, and kill at a different point of the probe cycle each time */
        net->loss = loss;
        fakenet_run(net, 30000 + s * 137);
        if (s == 0 && loss == 0) {
            b0 = net->dgram_bytes;
            c0 = net->dgram_count;
            fakenet_run(net, 60000);
            *udp_bps = (double)(net->dgram_bytes - b0 + WIRE_IP_UDP * (net->dgram_count - c0)) /
                       (double)n / 60.0;
        }
        fakenet_kill(net, victim);
        t = fakenet_run_until(net, all_see_dead, &victim, 10, 120000);
        assert_true(t != UINT64_MAX);
        sum += (double)t;
        *worst = t > *worst ? t : *worst;
        for (size_t i = 0; i + 1 < n; i++)
            assert_int_equal(net->nodes[i].deaths_seen, 1);
        fakenet_free(net);
    }
    return sum / DETECT_SEEDS;
}

static void test_kill_detection(void **state)
{
    static const struct {
        size_t n;
        double bound_ms; /* measured 2483 / 2789 / 3366 ms; with the probe order of before
                            (a stored shuffled list) 2659 / 2839 / 3315, and 2659 / 2841 /
                            3295 before the second look: it costs no detection time */
    } cases[] = {{5, 3500}, {20, 3500}, {50, 4700}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t worst;
        double udp;
        double mean = kill_detection(cases[i].n, 0, &worst, &udp);
        printf("  kill -9 at %zu members: every survivor sees it dead after %.0f ms on average "
               "(%d seeds, worst %llu ms, bound %.0f ms); steady state %.1f B/s of UDP per "
               "member (bound %d)\n",
               cases[i].n, mean, DETECT_SEEDS, (unsigned long long)worst, cases[i].bound_ms, udp,
               UDP_BUDGET);
        assert_true(mean <= cases[i].bound_ms);
        assert_true(udp <= UDP_BUDGET);
    }
}

/* The same kill -9 after 30 s of 10% loss on every datagram and TCP segment, loss kept on
 * until every survivor sees it: no false death before it (kill_detection checks each
 * survivor saw exactly one), and detection as fast as without loss. Failed probes under loss
 * are rare (gossip_probe_retry, gossip_probe_second), and a dead member's confirmations come
 * from several probers, so a lost datagram or two costs no time. Serf (memberlist LAN) took
 * 5.6-5.9 s at 5 members, 6.7-7.6 s at 20 and 8.6-10.2 s at 50 under the same loss
 * (gossip_vs_serf.sh LOSS=10); the bounds are test_kill_detection's. */
static void test_kill_detection_under_loss(void **state)
{
    static const struct {
        size_t n;
        double bound_ms; /* measured 2268 / 2486 / 3472 ms (worst 2900 / 2960 / 5310) */
    } cases[] = {{5, 3500}, {20, 3500}, {50, 4700}};

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t worst;
        double udp = 0;
        double mean = kill_detection(cases[i].n, 0.10, &worst, &udp);
        printf("  kill -9 at %zu members under 10%% loss: every survivor sees it dead after "
               "%.0f ms on average (%d seeds, worst %llu ms, bound %.0f ms)\n",
               cases[i].n, mean, DETECT_SEEDS, (unsigned long long)worst, cases[i].bound_ms);
        assert_true(mean <= cases[i].bound_ms);
    }
}

/* Two gateways die one after the other (a rack, a bad deploy): the second is seen as fast as
 * the first. Every survivor probed the first and failed, and Lifeguard's local health counts a
 * failed probe against the prober only by the relays' nacks it missed; nacks that arrive after
 * the period (as they did: relays answered at their own deadline, the end of the requester's
 * period) made every survivor slow down its probing fourfold, and the second death took
 * 5.6 s on average instead of 2.9. */
static void test_kill_right_after_a_kill(void **state)
{
    size_t n = 20;
    double first = 0, second = 0;
    uint64_t worst = 0;
    uint32_t awareness = 0;

    (void)state;
    for (uint64_t s = 0; s < DETECT_SEEDS; s++) {
        struct fakenet *net = daemon_cluster(n, 8000 + s);
        size_t victim = n - 1;
        uint64_t t;

        fakenet_run(net, 20000 + s * 137);
        fakenet_kill(net, victim);
        t = fakenet_run_until(net, all_see_dead, &victim, 10, 120000);
        assert_true(t != UINT64_MAX);
        first += (double)t;
        for (size_t i = 0; i + 1 < n; i++) {
            struct gossip_stats st;
            gossip_stats_get(net->nodes[i].g, &st);
            awareness = st.awareness > awareness ? st.awareness : awareness;
        }
        victim = n - 2;
        fakenet_kill(net, victim);
        t = fakenet_run_until(net, all_see_dead, &victim, 10, 120000);
        assert_true(t != UINT64_MAX);
        second += (double)t;
        worst = t > worst ? t : worst;
        fakenet_free(net);
    }
    first /= DETECT_SEEDS;
    second /= DETECT_SEEDS;
    printf(
        "  %zu members: a kill -9 seen by all after %.0f ms, another killed at that moment after "
        "%.0f ms (%d seeds, worst %llu ms, bound 3500 ms); survivors' local health score "
        "at most %u after the first\n",
        n, first, second, DETECT_SEEDS, (unsigned long long)worst, awareness);
    assert_true(second <= 3500); /* test_kill_detection's bound at 20 members */
    assert_int_equal(awareness, 0);
}

/* Ten virtual minutes of `loss` on everything: no deaths, suspicions under the bound. */
static void lossy_ten_minutes(size_t n, double loss, uint64_t max_suspicions)
{
    struct fakenet *net = daemon_cluster(n, 99 + n);
    uint64_t deaths = 0, suspicions = 0, failed = 0, probes = 0;
    uint64_t udp0 = net->wire_udp, tcp0 = net->wire_tcp;
    double udp, tcp;

    net->loss = loss; /* fakenet applies it to datagrams and to every TCP segment */
    fakenet_run(net, 600000);
    udp = (double)(net->wire_udp - udp0) / (double)n / 600.0;
    tcp = (double)(net->wire_tcp - tcp0) / (double)n / 600.0;
    for (size_t i = 0; i < n; i++) {
        struct gossip_stats st;
        gossip_stats_get(net->nodes[i].g, &st);
        deaths += net->nodes[i].deaths_seen;
        suspicions += net->nodes[i].suspicions_seen;
        failed += st.probes_failed;
        probes += st.probes;
    }
    printf("  %zu members, %.0f%% loss on UDP and TCP, 10 min: %llu deaths, %llu suspicions "
           "(bound %llu), %llu of %llu probes failed, streams lost %llu of %llu; %.0f + %.0f "
           "B/s of UDP and TCP per member on the wire (bound %d)\n",
           n, loss * 100, (unsigned long long)deaths, (unsigned long long)suspicions,
           (unsigned long long)max_suspicions, (unsigned long long)failed,
           (unsigned long long)probes, (unsigned long long)net->streams_lost,
           (unsigned long long)net->stream_count, udp, tcp, LOSS_BUDGET);
    assert_int_equal(deaths, 0);
    assert_true(suspicions <= max_suspicions);
    assert_true(udp + tcp <= LOSS_BUDGET);
    net->loss = 0;
    fakenet_run(net, 30000);
    assert_true(fakenet_converged(net, n));
    fakenet_free(net);
}

static void test_ten_minutes_of_ten_percent_loss(void **state)
{
    (void)state;
    /* measured 0 and 9; over 8 other seeds 0 and 0-15 (at most 1 failed probe a run) */
    lossy_ten_minutes(20, 0.10, 20);
    lossy_ten_minutes(50, 0.10, 30);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill_detection),
        cmocka_unit_test(test_kill_detection_under_loss),
        cmocka_unit_test(test_kill_right_after_a_kill),
        cmocka_unit_test(test_ten_minutes_of_ten_percent_loss),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
