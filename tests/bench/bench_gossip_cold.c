/*
 * bench_gossip_cold.c - a cold start on the fake network: three seeds, then every other member
 * started in the same millisecond, all joining through the three seeds, until every member
 * lists every other alive with no suspect.
 *
 * Members are what the daemon runs: 32-hex ids, its metadata (name, domain, version, HTTP,
 * HTTPS, API and public addresses, witness key), every packet sealed (fakenet daemon_sized),
 * default timings. No loss, 1-5 ms delay. Prints the time from the last start to convergence
 * and what every member sent on average over that time, datagrams with their IPv4/UDP headers
 * and stream messages with their frame header and TCP segments, as in bench_gossip_sim.
 *
 * Memory: every member keeps every member's metadata (about 0.7 KB each), so n members take
 * about 0.7 n^2 KB (1,000: 0.7 GB).
 *
 *   bench_gossip_cold [N...]        (default: 1000)
 */
#include "fakenet.h"
#include "gossip/gossip_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define COLD_LIMIT_MS 300000 /* give up after 5 virtual minutes */

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void cold_start(size_t n)
{
    struct fakenet *net = fakenet_new(n, 777 + n);
    struct gossip_addr seeds[3];
    uint64_t t0, d0, dc0, s0, sc0, took = UINT64_MAX, db, dc, sb, sc, segs;
    double wall = mono(), secs;

    net->daemon_sized = true;
    net->step_ms = 5;
    for (size_t i = 0; i < 3; i++) {
        if (fakenet_start_join(net, i, 0) != 0)
            exit(1);
        seeds[i] = net->nodes[i].addr;
    }
    fakenet_run(net, 2000);
    t0 = net->now;
    d0 = net->dgram_bytes;
    dc0 = net->dgram_count;
    s0 = net->stream_bytes;
    sc0 = net->stream_count;
    for (size_t i = 3; i < n; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        if (fakenet_start(net, i, &cfg) != 0 || gossip_join(net->nodes[i].g, seeds, 3) != 0)
            exit(1);
    }
    while (net->now - t0 < COLD_LIMIT_MS) {
        fakenet_run(net, 250);
        if (fakenet_converged(net, n)) {
            took = net->now - t0;
            break;
        }
    }
    secs = (double)(net->now - t0) / 1000.0;
    db = net->dgram_bytes - d0;
    dc = net->dgram_count - dc0;
    sb = net->stream_bytes - s0;
    sc = net->stream_count - sc0;
    segs = sb / FN_MSS + sc;
    if (took == UINT64_MAX)
        printf("%8zu %14s", n, "not converged");
    else
        printf("%8zu %13.2fs", n, (double)took / 1000.0);
    printf(" %16.0f %16.0f %12.1f %10.1f\n", (double)(db + 28 * dc) / (double)n / secs,
           (double)(sb + 11 * sc + 52 * (7 * sc + 2 * segs)) / (double)n / secs,
           (double)(db + 28 * dc + sb) / (double)n / 1024.0, mono() - wall);
    fflush(stdout);
    fakenet_free(net);
}

int main(int argc, char **argv)
{
    printf("cold start through 3 seeds (fake network, no loss, daemon ids and metadata, "
           "encrypted, default timings)\n");
    printf("%8s %14s %16s %16s %12s %10s\n", "members", "converged in", "UDP B/member/s",
           "TCP B/member/s", "KiB/member", "wall s");
    if (argc < 2) {
        cold_start(1000);
        return 0;
    }
    for (int i = 1; i < argc; i++)
        cold_start((size_t)strtoul(argv[i], NULL, 10));
    return 0;
}
