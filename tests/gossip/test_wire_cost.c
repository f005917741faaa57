/*
 * test_wire_cost.c - what a member costs on the wire in the steady state, with what the daemon
 * really sends: 32-hex member ids, its metadata (witness key, API and public addresses) and a
 * cluster key (every packet sealed).
 *
 * A converged cluster runs a virtual minute with nothing happening but probes, acks and
 * anti-entropy; the bytes every member sent, per member per second, are counted as they would
 * be on the wire: datagrams with their IPv4 and UDP headers (28 bytes), stream messages with
 * the frame header and the TCP segments of a short connection (handshake, data, close: see
 * fakenet_wire_tcp). Prints the figures; the bounds are the compact wire's (version 3), which the
 * text ids of version 2 exceeded.
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

struct wire {
    double udp_bps; /* datagram bytes per member per second, headers included */
    double tcp_bps; /* stream bytes per member per second, headers included */
    double pkt_ps;  /* datagrams per member per second */
};

static struct wire steady_state(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);
    struct wire w;
    uint64_t b0, c0, s0, sc0;
    const double secs = 60;

    net->daemon_sized = true;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    for (int s = 0; s < 600 && !fakenet_converged(net, n); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, n));
    /* past the join chatter and the first round of push-pull exchanges */
    fakenet_run(net, 60000);
    b0 = net->dgram_bytes;
    c0 = net->dgram_count;
    s0 = net->stream_bytes;
    sc0 = net->stream_count;
    fakenet_run(net, (uint64_t)(secs * 1000));
    w.pkt_ps = (double)(net->dgram_count - c0) / (double)n / secs;
    w.udp_bps =
        (double)fakenet_wire_udp(net->dgram_bytes - b0, net->dgram_count - c0) / (double)n / secs;
    w.tcp_bps = (double)fakenet_wire_tcp(net->stream_bytes - s0, net->stream_count - sc0) /
                (double)n / secs;
    assert_true(fakenet_converged(net, n));
    fakenet_free(net);
    return w;
}

static void test_bytes_per_member_per_second(void **state)
{
    static const size_t sizes[] = {5, 20, 50};

    (void)state;
    printf("  steady state, daemon-sized ids and metadata, encrypted, default probe (600ms), "
           "push-pull "
           "30s\n");
    printf("  %4s %10s %10s %10s %10s\n", "n", "pkt/s", "udp B/s", "tcp B/s", "total B/s");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct wire w = steady_state(sizes[i], 900 + sizes[i]);
        printf("  %4zu %10.1f %10.1f %10.1f %10.1f\n", sizes[i], w.pkt_ps, w.udp_bps, w.tcp_bps,
               w.udp_bps + w.tcp_bps);
        /* at 500 ms probes: four datagrams a second (two pings, two acks); wire version 2
         * spent 420 B/s on them, version 3 356; at today's 600 ms 3.3 and 296 */
        assert_true(w.pkt_ps <= 3.4);
        assert_true(w.udp_bps <= 300);
        /* push-pull: the sparse item digest (few items) instead of 2 KiB: 92 -> 19 B/s */
        assert_true(w.tcp_bps <= 30);
    }
}

#define PP_FLEET 400 /* members both sides know besides themselves */

struct stream_mark {
    uint64_t bytes, count; /* fakenet's stream counters when the mark was set */
};

static struct stream_mark stream_mark(const struct fakenet *net)
{
    return (struct stream_mark){net->stream_bytes, net->stream_count};
}

/* Runs the network `ms` more; returns the stream bytes sent since the mark (messages in *msgs). */
static uint64_t stream_bytes_since(struct fakenet *net, struct stream_mark m, uint64_t ms,
                                   uint64_t *msgs)
{
    fakenet_run(net, ms);
    *msgs = net->stream_count - m.count;
    return net->stream_bytes - m.bytes;
}

/* Push-pull moves what differs, not the member list: with 400 members known to both sides, an
 * exchange where they agree is the digest alone, one where a single member's incarnation
 * differs adds about one member bucket, and a joiner gets the seed's list once and sends back
 * only itself. (Wire version 2 sent both whole lists in the last two cases.) */
/* Nodes 0 and 1 running, knowing each other and `fleet` members that are not running
 * (no probes, no periodic exchanges: only the exchanges a test starts move stream bytes). */
static struct fakenet *pp_pair(size_t fleet, uint64_t seed)
{
    struct fakenet *net = fakenet_new(3, seed);
    struct gossip_config cfg;
    struct gossip_addr fake = {.family = 4, .ip = {10, 100, 0, 0}, .port = 7946};
    char id[GOSSIP_ID_MAX + 1];

    net->daemon_sized = true;
    for (size_t i = 0; i < 2; i++) {
        fakenet_config(net, i, &cfg);
        cfg.probe_interval_ms = 60000;
        cfg.probe_timeout_ms = 30000;
        cfg.pushpull_interval_ms = 3600000;
        cfg.reconnect_interval_ms = 3600000;
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
    }
    for (size_t j = 0; j < fleet; j++) {
        snprintf(id, sizeof(id), "%032zx", j + 1000);
        fake.ip[2] = (uint8_t)(j >> 8);
        fake.ip[3] = (uint8_t)j;
        for (size_t i = 0; i < 2; i++)
            assert_int_equal(gossip_debug_add_member(net->nodes[i].g, id, &fake, 5), 0);
    }
    fakenet_id(net, 1, id);
    assert_int_equal(gossip_debug_add_member(net->nodes[0].g, id, &net->nodes[1].addr,
                                             gm_inc(net->nodes[1].g->self)),
                     0);
    fakenet_id(net, 0, id);
    assert_int_equal(gossip_debug_add_member(net->nodes[1].g, id, &net->nodes[0].addr,
                                             gm_inc(net->nodes[0].g->self)),
                     0);
    return net;
}

/* Starts node 2 (probing too slowly to matter) and joins it through node 0. */
static void pp_join(struct fakenet *net)
{
    struct gossip_config cfg;

    fakenet_config(net, 2, &cfg);
    cfg.probe_interval_ms = 60000;
    cfg.probe_timeout_ms = 30000;
    assert_int_equal(fakenet_start(net, 2, &cfg), 0);
    assert_int_equal(gossip_join(net->nodes[2].g, &net->nodes[0].addr, 1), 0);
}

static void test_pushpull_cost_follows_the_difference(void **state)
{
    struct fakenet *net = pp_pair(PP_FLEET, 31);
    struct gossip_addr fake = {.family = 4, .ip = {10, 100, 0, 0}, .port = 7946};
    uint64_t steady, one_diff, join, msgs;
    struct stream_mark mark;
    struct gmsg alive;

    (void)state;
    fakenet_run(net, 1000);

    mark = stream_mark(net);
    gossip_pushpull_start(net->nodes[0].g, &net->nodes[1].addr, false);
    steady = stream_bytes_since(net, mark, 200, &msgs);
    assert_int_equal(msgs, 1); /* the digest, and nothing to answer */

    /* node 0 alone hears that member 7 restarted */
    memset(&alive, 0, sizeof(alive));
    alive.type = GMSG_ALIVE;
    snprintf(alive.id, sizeof(alive.id), "%032zx", (size_t)1007);
    alive.incarnation = 6;
    alive.addr = fake;
    alive.addr.ip[2] = 0;
    alive.addr.ip[3] = 7;
    gossip_on_alive(net->nodes[0].g, &alive, false);
    mark = stream_mark(net);
    gossip_pushpull_start(net->nodes[0].g, &net->nodes[1].addr, false);
    one_diff = stream_bytes_since(net, mark, 200, &msgs);
    {
        struct gossip_member gm;
        assert_int_equal(gossip_member_get(net->nodes[1].g, alive.id, &gm), 0);
        assert_int_equal(gm.incarnation, 6);
    }

    /* a joiner through node 0 */
    mark = stream_mark(net);
    pp_join(net);
    join = stream_bytes_since(net, mark, 200, &msgs);
    assert_int_equal(gossip_live_count(net->nodes[2].g), PP_FLEET + 3);

    printf("  push-pull with %d members: agreeing %llu B, one member differs %llu B, join %llu B\n",
           PP_FLEET + 2, (unsigned long long)steady, (unsigned long long)one_diff,
           (unsigned long long)join);
    /* one member more than agreeing: a reply with one bucket (about 8 members), not 400 */
    assert_true(one_diff < steady + 2048);
    /* the seed's list once (about 40 bytes a member here, no metadata on the fakes) */
    assert_true(join < 2 * steady + 2048 + 60 * (PP_FLEET + 2));
    fakenet_free(net);
}

/* An exchange where both sides agree costs the same in a big fleet. A joiner through a seed
 * of a big fleet gets a page of the seed's members (about
 * GOSSIP_PP_JOIN_PAGE of them), not the whole list, and pulls the rest from members. With
 * 2,000 members the seed's reply is about a quarter of the list. */
#define PAGE_FLEET 2000
static void test_join_reply_is_a_page(void **state)
{
    struct fakenet *net = pp_pair(PAGE_FLEET, 37);
    struct stream_mark mark;
    uint64_t steady, join, msgs;
    size_t known;

    (void)state;
    fakenet_run(net, 1000);
    /* two members that agree: the digest alone, as small as with 400 members (the member
     * digest has at most GOSSIP_PP_MBUCKETS_SENT buckets; 256 of them here before) */
    mark = stream_mark(net);
    gossip_pushpull_start(net->nodes[0].g, &net->nodes[1].addr, false);
    steady = stream_bytes_since(net, mark, 200, &msgs);
    assert_int_equal(msgs, 1);
    assert_true(steady < 1024);
    mark = stream_mark(net);
    pp_join(net);
    /* before the joiner's first pull (GOSSIP_PP_PAGE_NEXT_MS) */
    join = stream_bytes_since(net, mark, GOSSIP_PP_PAGE_NEXT_MS - 10, &msgs);
    known = gossip_live_count(net->nodes[2].g);
    printf("  %d members: agreeing %llu B; join through a seed: %llu B in %llu messages, joiner "
           "knows %zu\n",
           PAGE_FLEET + 2, (unsigned long long)steady, (unsigned long long)join,
           (unsigned long long)msgs, known);
    assert_true(known >= GOSSIP_PP_JOIN_PAGE / 2);
    assert_true(known <= GOSSIP_PP_JOIN_PAGE + 8);
    /* the whole list would be about 40 bytes a member here (no metadata on the fakes) */
    assert_true(join < 4096 + 60 * (GOSSIP_PP_JOIN_PAGE + 8));
    fakenet_free(net);
}

/* An exchange while catching up (the last one taught us members: a cold start, a healed
 * partition) costs about the difference, not the list: node 0, catching up, lacks 64 of the
 * 4,000 members node 1 knows. With the 64 buckets of the steady state (62 members each) about
 * 40 buckets differ and their summaries were most of the list (62.5 KB in all); catching up,
 * the digest has about 8 members a bucket (512 buckets, 4 KB) and only the differing
 * buckets' summaries follow (23.8 KB). */
#define CATCHUP_FLEET 4000
#define CATCHUP_MISSING 64
static void test_catch_up_exchange_follows_the_difference(void **state)
{
    struct fakenet *net = pp_pair(CATCHUP_FLEET, 41);
    struct gossip_addr fake = {.family = 4, .ip = {10, 101, 0, 0}, .port = 7946};
    struct stream_mark mark;
    uint64_t bytes, msgs;
    char id[GOSSIP_ID_MAX + 1];

    (void)state;
    for (size_t j = 0; j < CATCHUP_MISSING; j++) {
        snprintf(id, sizeof(id), "%032zx", j + 900000);
        fake.ip[3] = (uint8_t)j;
        assert_int_equal(gossip_debug_add_member(net->nodes[1].g, id, &fake, 5), 0);
    }
    fakenet_run(net, 1000);
    net->nodes[0].g->pp_catchup_ms = GOSSIP_PP_CATCHUP_MS;
    mark = stream_mark(net);
    gossip_pushpull_start(net->nodes[0].g, &net->nodes[1].addr, false);
    bytes = stream_bytes_since(net, mark, 200, &msgs);
    printf("  catching up with %d members, %d missing: %llu B in %llu messages\n",
           CATCHUP_FLEET + 2, CATCHUP_MISSING, (unsigned long long)bytes, (unsigned long long)msgs);
    assert_int_equal(gossip_live_count(net->nodes[0].g), CATCHUP_FLEET + 2 + CATCHUP_MISSING);
    assert_true(bytes < 32 * 1024); /* 23.8 KB; 62.5 KB with the steady 64 buckets */
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_per_member_per_second),
        cmocka_unit_test(test_pushpull_cost_follows_the_difference),
        cmocka_unit_test(test_join_reply_is_a_page),
        cmocka_unit_test(test_catch_up_exchange_follows_the_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
