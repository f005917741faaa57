/*
 * bench_gossip_sim.c - a cold start of thousands of gossip members on the fake network, then
 * the converged fleet's steady state, a join, a record and a death.
 *
 * Every member is a real gossip instance with the real codec and what the daemon sends
 * (fakenet's daemon_sized: 32-hex ids, the daemon's metadata, every packet sealed); only the
 * network (no loss, 1-5 ms delay) and the clock are simulated. Bytes are counted as the wire
 * carries them (fakenet_wire_udp / fakenet_wire_tcp: IP, UDP and TCP headers included).
 *
 *   cold    N members start within WINDOW (the 3 seeds first), each joining through the 3
 *           seeds: virtual seconds from the last start until every member lists every other
 *           alive and none suspect; bytes per member per second over the whole cold start,
 *           and the busiest member's (a seed)
 *   steady  bytes per member per second on the converged fleet (after SETTLE_S, 300:
 *           the cold start's queued news takes minutes to drain),
 *           over one push-pull period
 *   join    a new member joins through one seed: until every member lists it alive
 *   record  a new item is published at one member: until every member holds it
 *   death   a member is killed: until every survivor lists it dead
 *
 * Also the wall time and the peak resident memory of the whole run.
 *
 * With -t, only the memory of a converged fleet: N members started and every member table
 * filled with every member (ids and metadata as the cold start leaves them) without running
 * the protocol, then the peak resident memory and the bytes per table entry (from the resident
 * memory, and exactly: what the tables allocate). The tables are one, member 0's, which every
 * other member shares copy-on-write (gossip_debug_share_table): a member that writes an entry
 * copies its chunk of 1,024 first. This reaches
 * sizes whose cold start takes too long on a shared machine.
 *
 * With -c, the cold start only (its line on stderr).
 *
 * With -S, the steady state of the fleet -t builds: the protocol runs SETTLE_S (-s), then the
 * bytes per member per second over one push-pull period (bandwidth per member against the
 * fleet's size, at sizes whose cold start and its settling take too long to run).
 *
 *   bench_gossip_sim [-w WINDOW_MS] [-s SETTLE_S] [-c] [-t] [-S] [N...]        (default: -w 10000
 * 1000 10000)
 */
#include "fakenet.h"
#include "gossip/gossip_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SEEDS 3

struct row {
    size_t n;
    double cold_s;             /* last start -> converged (virtual) */
    double cold_bps, seed_bps; /* wire B/member/s during the cold start; the busiest member */
    double cold_tcp_bps;       /* the TCP part of cold_bps */
    double cold_pp;            /* push-pull exchanges started per member in the cold start */
    double udp_bps, tcp_bps;   /* steady state, wire B/member/s */
    double steady_s;           /* over this many virtual seconds */
    double join_s, death_s, record_s;
    double cold_wall_s, wall_s; /* wall time of the cold start, of the whole run */
    double rss_gb;              /* peak resident set of the process so far */
};

static double mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double peak_rss_gb(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / (1024.0 * 1024.0);
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

static uint64_t wire_total(const struct fakenet *net)
{
    return net->wire_udp + net->wire_tcp;
}

static bool cold_only;
static uint64_t settle_ms = 300000; /* -s: settling before the steady state is measured */

static struct row simulate(size_t n, uint64_t window_ms)
{
    struct row r = {.n = n};
    /* n members and a spare slot for the join */
    struct fakenet *net = fakenet_new(n + 1, 4242 + n);
    double t0 = mono(), secs;
    uint64_t ms, last_start, u0, t0b, start, busiest = 0;

    net->daemon_sized = true;
    net->step_ms = 5;
    net->n = n; /* the spare slot stays out of the cold start and of convergence */
    ms = fakenet_cold_start(net, SEEDS, window_ms, 300000, &last_start);
    r.cold_s = ms == UINT64_MAX ? -1 : (double)ms / 1000.0;
    r.cold_wall_s = mono() - t0;
    secs = (double)net->now / 1000.0;
    r.cold_bps = (double)wire_total(net) / (double)n / secs;
    r.cold_tcp_bps = (double)net->wire_tcp / (double)n / secs;
    for (size_t i = 0; i < n; i++)
        r.cold_pp += (double)net->nodes[i].g->stats.pushpulls / (double)n;
    for (size_t i = 0; i < n; i++)
        if (net->nodes[i].wire_sent > busiest)
            busiest = net->nodes[i].wire_sent;
    r.seed_bps = (double)busiest / secs;
    fprintf(stderr,
            "  %zu members: cold start %s in %.1f virtual s after the last start, %.0f s "
            "wall, peak RSS %.2f GB; %.0f B/member/s (TCP %.0f), %.1f push-pulls a member\n",
            n, ms == UINT64_MAX ? "NOT converged" : "converged", r.cold_s, r.cold_wall_s,
            peak_rss_gb(), r.cold_bps, r.cold_tcp_bps, r.cold_pp);

    if (cold_only) {
        fakenet_free(net);
        return r;
    }
    /* steady state, past the settling of the cold start's exchanges, over one whole
     * push-pull period (gossip_pushpull_period: 30 s, times 1 + ceil(log2(n) - 5) past 32
     * members) so that every member's exchange is counted once */
    fakenet_run(net, settle_ms);
    u0 = net->wire_udp;
    t0b = net->wire_tcp;
    secs = 30.0 * (n > 32 ? ceil(log2((double)n) - 5.0) + 1.0 : 1.0);
    fakenet_run(net, (uint64_t)(secs * 1000));
    r.steady_s = secs;
    {
        double queued = 0, susp = 0;
        for (size_t i = 0; i < n; i++) {
            queued += (double)net->nodes[i].g->q_members.count / (double)n;
            susp += (double)net->nodes[i].suspicions_seen;
        }
        fprintf(stderr,
                "  steady: %.0f s from %.0f s, membership news still queued %.1f a member "
                "at the end, %.0f suspicions seen since the start\n",
                secs, (double)(net->now) / 1000.0 - secs, queued, susp);
    }
    r.udp_bps = (double)(net->wire_udp - u0) / (double)n / secs;
    r.tcp_bps = (double)(net->wire_tcp - t0b) / (double)n / secs;

    /* a join through one seed */
    net->n = n + 1;
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
    r.rss_gb = peak_rss_gb();
    fakenet_free(net);
    return r;
}

/* Bytes a member table holds: its chunks of entries and the per-chunk pointers and counts.
 * A chunk shared by k tables counts 1/k in each: summed over the fleet, what is allocated. */
static double table_bytes(const struct gossip *g)
{
    double b = (double)g->nslots * (double)(sizeof(*g->slots) + sizeof(*g->slot_used));

    for (size_t c = 0; c < g->nslots; c++)
        if (g->slots[c] != NULL)
            b += (double)sizeof(struct gchunk) / (double)gchunk_of(g->slots[c])->refs;
    return b;
}

static size_t chunks_copied; /* by built_fleet: members whose own entry differed */

/* The converged fleet built directly: n members started, member 0's table filled with every
 * member (ids, incarnations and metadata as the members themselves hold them) without running
 * the protocol, and every other member given that table by reference (copy-on-write chunks,
 * gossip_debug_share_table: its own entry differs, if at all, in a copy of one chunk). Returns
 * the fleet; *base gets the peak RSS before the tables. */
static struct fakenet *built_fleet(size_t n, double *base)
{
    struct fakenet *net = fakenet_new(n, 4242 + n);
    char id[GOSSIP_ID_MAX + 1];
    struct gossip *g0;

    net->daemon_sized = true;
    for (size_t i = 0; i < n; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        if (fakenet_start(net, i, &cfg) != 0)
            exit(1);
    }
    *base = peak_rss_gb();
    g0 = net->nodes[0].g;
    for (size_t j = 1; j < n; j++) {
        struct gmember *self = net->nodes[j].g->self, *m;
        fakenet_id(net, j, id);
        if (gossip_debug_add_member(g0, id, &net->nodes[j].addr, gm_inc(self)) != 0 ||
            (m = gossip_find(g0, id)) == NULL)
            exit(1);
        gossip_member_set_meta(g0, &m, gm_meta(self));
    }
    chunks_copied = 0;
    for (size_t i = 1; i < n; i++) {
        struct gossip *g = net->nodes[i].g;
        if (gossip_debug_share_table(g, g0) != 0)
            exit(1);
        chunks_copied += gchunk_of(g->slots[gm_sid(g->self) / GMEMBER_CHUNK])->refs == 1;
    }
    return net;
}

/* -t: the converged fleet's member tables, built directly. */
static void tables_only(size_t n)
{
    double t0 = mono(), base, tables = 0;
    struct fakenet *net = built_fleet(n, &base);

    for (size_t i = 0; i < n; i++)
        tables += table_bytes(net->nodes[i].g);
    printf("%7zu members: %.0f table entries, peak RSS %.2f GB (%.2f GB before the tables), "
           "%.1f bytes an entry; the tables hold %.1f MB, %.2f bytes an entry; %zu ids, "
           "addresses, metadata and versions stored; %zu members' own chunk copied (shared "
           "tables); %.0f s wall\n",
           n, (double)n * (double)(n - 1), peak_rss_gb(), base,
           (peak_rss_gb() - base) * 1024.0 * 1024.0 * 1024.0 / ((double)n * (double)(n - 1)),
           tables / (1024.0 * 1024.0), tables / ((double)n * (double)(n - 1)), gshare_stored(),
           chunks_copied, mono() - t0);
    fakenet_free(net);
}

/* -S: the steady state of a converged fleet built directly (-t's tables), which reaches sizes
 * whose cold start takes too long: the protocol runs for SETTLE_S (-s; use about one
 * push-pull period), then UDP and TCP bytes per member per second on the wire over one
 * push-pull period, with the datagrams and exchanges per member. */
static void steady_only(size_t n)
{
    double t0 = mono(), base, secs, tables_wall, pp = 0, dgrams, susp = 0, tables = 0;
    struct fakenet *net = built_fleet(n, &base);
    uint64_t u0, t0b, d0;

    tables_wall = mono() - t0;
    net->step_ms = 5;
    fakenet_run(net, settle_ms);
    u0 = net->wire_udp;
    t0b = net->wire_tcp;
    d0 = net->dgram_count;
    for (size_t i = 0; i < n; i++)
        pp -= (double)net->nodes[i].g->stats.pushpulls;
    secs = 30.0 * (n > 32 ? ceil(log2((double)n) - 5.0) + 1.0 : 1.0);
    fakenet_run(net, (uint64_t)(secs * 1000));
    for (size_t i = 0; i < n; i++) {
        pp += (double)net->nodes[i].g->stats.pushpulls;
        susp += (double)net->nodes[i].suspicions_seen;
        tables += table_bytes(net->nodes[i].g);
    }
    dgrams = (double)(net->dgram_count - d0) / (double)n / secs;
    printf("%7zu members, steady state from built tables: over %.0f s after %.0f s, %.1f UDP + "
           "%.1f TCP = %.1f B/member/s on the wire, %.2f datagrams/member/s, %.2f push-pulls "
           "started a member, %.0f suspicions; peak RSS %.2f GB, %.0f s wall (%.0f s building "
           "the tables); the tables hold %.1f MB at the end (shared chunks counted once)\n",
           n, secs, (double)settle_ms / 1000.0, (double)(net->wire_udp - u0) / (double)n / secs,
           (double)(net->wire_tcp - t0b) / (double)n / secs,
           (double)(net->wire_udp - u0 + net->wire_tcp - t0b) / (double)n / secs, dgrams,
           pp / (double)n, susp, peak_rss_gb(), mono() - t0, tables_wall,
           tables / (1024.0 * 1024.0));
    fakenet_free(net);
}

static void print_secs(double s)
{
    if (s < 0)
        printf(" %10s", "never");
    else
        printf(" %9.1fs", s);
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {1000, 10000};
    size_t nsizes = 2;
    uint64_t window_ms = 10000;
    struct row rows[8];
    double load[3] = {0, 0, 0};
    bool tables = false, steady = false;
    int opt;

    while ((opt = getopt(argc, argv, "w:s:ctS")) != -1) {
        if (opt == 't' || opt == 'c' || opt == 'S') {
            tables |= opt == 't';
            cold_only |= opt == 'c';
            steady |= opt == 'S';
            continue;
        }
        if (opt == 's') {
            settle_ms = strtoull(optarg, NULL, 10) * 1000;
            continue;
        }
        if (opt != 'w') {
            fprintf(stderr,
                    "usage: bench_gossip_sim [-w WINDOW_MS] [-s SETTLE_S] [-c] [-t] [-S] [N...]\n");
            return 2;
        }
        window_ms = strtoull(optarg, NULL, 10);
    }
    if (optind < argc) {
        nsizes = 0;
        for (int i = optind; i < argc && nsizes < 8; i++)
            sizes[nsizes++] = (size_t)strtoul(argv[i], NULL, 10);
    }
    for (size_t i = 0; i < nsizes; i++) {
        if (sizes[i] < SEEDS + 1 || sizes[i] > 1u << 20) {
            fprintf(stderr, "bench_gossip_sim: N must be %d .. %u\n", SEEDS + 1, 1u << 20);
            return 2;
        }
        if (tables)
            tables_only(sizes[i]);
        else if (steady)
            steady_only(sizes[i]);
        else
            rows[i] = simulate(sizes[i], window_ms);
    }
    if (tables || cold_only || steady)
        return 0;
    if (getloadavg(load, 3) < 0)
        load[0] = -1;
    printf("\ngossip simulator: cold start through %d seeds, all starting within %.1f s; fake "
           "network, no loss, 1-5 ms; daemon-sized ids and metadata, sealed; defaults (probe "
           "600 ms, timeout 300 ms, gossip 200 ms x 3, push-pull 30 s scaled); wire bytes "
           "with headers; load "
           "average %.1f\n",
           SEEDS, (double)window_ms / 1000.0, load[0]);
    printf("%7s %11s %11s %11s %10s %10s %10s %10s %10s %9s %9s\n", "members", "converged",
           "cold B/m/s", "busiest B/s", "UDP B/m/s", "TCP B/m/s", "join", "record", "death",
           "wall s", "peak RSS");
    for (size_t i = 0; i < nsizes; i++) {
        printf("%7zu", rows[i].n);
        print_secs(rows[i].cold_s);
        printf(" %11.0f %11.0f %10.0f %10.0f", rows[i].cold_bps, rows[i].seed_bps, rows[i].udp_bps,
               rows[i].tcp_bps);
        print_secs(rows[i].join_s);
        print_secs(rows[i].record_s);
        print_secs(rows[i].death_s);
        printf(" %9.0f %7.2fGB\n", rows[i].wall_s, rows[i].rss_gb);
    }
    return 0;
}
