/*
 * bench_gossip_sim.c - the gossip protocol at 1,000 and 10,000 members on the fake network.
 *
 * Every member is a real gossip instance with the real codec; only the network (no loss,
 * 1-5 ms delay) and the clock are simulated, so a minute of a 10,000-member fleet runs in
 * about a minute of CPU. The cluster is pre-built (every member already knows every other,
 * as after a long uptime), then:
 *
 *   join    a new member joins through one seed: rounds until every member lists it alive
 *   death   a member is killed: rounds until every survivor lists it dead
 *   record  a new item is published at one member: rounds until every member holds it
 *   bytes   datagram and TCP bytes sent per member per second in the steady state, as on
 *           the wire: every datagram with its 28 bytes of IPv4 and UDP headers, every stream
 *           message with its frame header and 52-byte TCP segments (handshake, data, close)
 *
 * Members carry the daemon's 32-hex ids and every packet is sealed with a cluster key
 * (fakenet's daemon_sized); the pre-built views carry no metadata (see simulate), so member
 * lists exchanged by push-pull are smaller than the daemon's by the metadata.
 *
 * A round is one gossip interval (200 ms). Prints a table.
 *
 *   bench_gossip_sim [N...]        (default: 1000 10000)
 */
#include "fakenet.h"
#include "gossip/gossip_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct row {
    size_t n;
    double join_s, death_s, record_s;
    double udp_bps, tcp_bps;
    double build_s, wall_s;
};

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool all_see(struct fakenet *net, size_t subject, enum gossip_member_state want)
{
    for (size_t i = 0; i < net->n; i++) {
        if (i == subject || !net->nodes[i].up || net->nodes[i].g == NULL)
            continue;
        if (fakenet_state(net, i, subject) != want)
            return false;
    }
    return true;
}

static double until(struct fakenet *net, size_t subject, enum gossip_member_state want,
                    uint64_t limit_ms)
{
    uint64_t start = net->now;

    while (net->now - start < limit_ms) {
        fakenet_run(net, 100);
        if (all_see(net, subject, want))
            return (double)(net->now - start) / 1000.0;
    }
    return -1;
}

static struct row simulate(size_t n)
{
    struct row r = {.n = n};
    struct fakenet *net = fakenet_new(n + 1, 4242 + n);
    double t0 = mono();
    uint64_t b0, s0, c0, start;
    double window;
    char id[GOSSIP_ID_MAX + 1];

    net->step_ms = 5;
    net->daemon_sized = true;
    for (size_t i = 0; i < n; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        /* no metadata: the pre-built views below carry none either, and a member seeing
         * its own metadata differ would (rightly) refute with a new incarnation */
        memset(&cfg.meta, 0, sizeof(cfg.meta));
        if (fakenet_start(net, i, &cfg) != 0)
            exit(1);
    }
    /* the converged fleet, without n^2 join messages */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            fakenet_id(net, j, id);
            if (gossip_debug_add_member(net->nodes[i].g, id, &net->nodes[j].addr, 0) != 0)
                exit(1);
        }
    }
    /* as after a long uptime: push-pull exchanges spread over their (size-scaled) period
     * instead of all members starting their first one together */
    for (size_t i = 0; i < n; i++) {
        struct gossip *g = net->nodes[i].g;
        uint64_t period = g->cfg.pushpull_interval_ms;
        if (n > 32)
            period *= (uint64_t)ceil(log2((double)n) - 5.0) + 1;
        g->pushpull_next = net->now + grand_below(&g->rng, (uint32_t)period);
    }
    r.build_s = mono() - t0;
    t0 = mono();
    fakenet_run(net, 10000);

    /* steady state traffic, headers included */
    b0 = net->dgram_bytes + 28 * net->dgram_count;
    s0 = net->stream_bytes;
    c0 = net->stream_count;
    window = n >= 5000 ? 30.0 : 60.0;
    fakenet_run(net, (uint64_t)(window * 1000));
    r.udp_bps = (double)(net->dgram_bytes + 28 * net->dgram_count - b0) / (double)n / window;
    {
        uint64_t sb = net->stream_bytes - s0, sc = net->stream_count - c0;
        uint64_t segs = sb / FN_MSS + sc;
        r.tcp_bps = (double)(sb + 11 * sc + 52 * (7 * sc + 2 * segs)) / (double)n / window;
    }

    /* a join through one seed */
    if (fakenet_start_join(net, n, 0) != 0)
        exit(1);
    r.join_s = until(net, n, GOSSIP_ALIVE, 120000);
    fakenet_run(net, 5000);

    /* a new record */
    if (fakenet_publish(net, 1, "name/bench", 1, "backends=10.0.0.1:80", 20) != 0)
        exit(1);
    start = net->now;
    r.record_s = -1;
    while (net->now - start < 60000) {
        fakenet_run(net, 50);
        if (fakenet_item_everywhere(net, "name/bench", 1)) {
            r.record_s = (double)(net->now - start) / 1000.0;
            break;
        }
    }
    fakenet_run(net, 5000);

    /* a death */
    fakenet_kill(net, 5);
    r.death_s = until(net, 5, GOSSIP_DEAD, 120000);
    r.wall_s = mono() - t0;
    fakenet_free(net);
    return r;
}

static void print_rounds(double s)
{
    if (s < 0)
        printf(" %16s", "not converged");
    else
        printf(" %6.1f (%5.1fs)", s / 0.2, s);
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {1000, 10000};
    size_t nsizes = 2;
    struct row rows[8];

    if (argc > 1) {
        nsizes = 0;
        for (int i = 1; i < argc && nsizes < 8; i++)
            sizes[nsizes++] = (size_t)strtoul(argv[i], NULL, 10);
    }
    for (size_t i = 0; i < nsizes; i++) {
        rows[i] = simulate(sizes[i]);
        fprintf(stderr, "simulated %zu members: built in %.1fs, ran in %.1fs\n", sizes[i],
                rows[i].build_s, rows[i].wall_s);
    }
    printf("\ngossip simulator (fake network, no loss, defaults: probe 500 ms, gossip 200 ms x 3; "
           "32-hex ids, encrypted, bytes with IP/UDP/TCP headers)\n");
    printf("%8s %16s %16s %16s %14s %14s\n", "members", "join rounds", "death rounds",
           "record rounds", "UDP B/member/s", "TCP B/member/s");
    for (size_t i = 0; i < nsizes; i++) {
        printf("%8zu", rows[i].n);
        print_rounds(rows[i].join_s);
        print_rounds(rows[i].death_s);
        print_rounds(rows[i].record_s);
        printf(" %14.0f %14.0f\n", rows[i].udp_bps, rows[i].tcp_bps);
    }
    return 0;
}
