/*
 * test_health_flood.c - health verdicts hold while records flood the fleet.
 *
 * A fleet that takes a thousand names at once (the soak's setup: a reservation and a proxy
 * record per name, through every gateway in turn) queues thousands of records on every member,
 * and each member forwards every record it had not seen, newest first, for minutes after. When
 * health entries shared that queue, a prober's restatement (one every TTL/2 once a verdict
 * stopped changing) landed under the records that kept arriving and waited behind them while
 * the copies it was to refresh expired: members that had known every verdict held none 30 s
 * later (the soak read a backend `unknown` on a gateway in the first seconds of its run, after
 * the setup's names). A fleet of 5 (daemon-sized envelopes), two members probing 4 backends
 * every second with the default 30 s TTL, 2,000 records of 800 bytes published at 200 a second
 * through the members in turn as the probing starts: every member must hold every verdict within
 * BOUND_MS of the first probe, and keep holding it through the flood and the minute after.
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

#define FLEET 5
#define PROBERS 2        /* members 0 and 1 probe every backend */
#define NBACKENDS 4      /* backends probed */
#define PROBE_MS 1000    /* the probers publish every second, as the daemon's probes do */
#define RECORDS 2000     /* a thousand names: a reservation and a proxy record each */
#define RECORD_BYTES 800 /* a record with its signature and witnesses, as gossip carries it */
#define RECORDS_PER_S 200
#define AFTER_MS 60000 /* watched after the flood */
#define BOUND_MS 2000  /* every member holds every verdict this long after the first probe */

static const char *const BACKENDS[NBACKENDS] = {"10.231.0.31:8080", "10.231.0.32:8080",
                                                "10.231.0.33:8080", "10.231.0.34:8080"};

static bool backend_up(size_t i)
{
    return i % 2 == 0;
}

struct flood {
    struct fakenet *net;
    uint64_t start;   /* virtual time of the first probe and the first record */
    size_t published; /* records so far */
};

/* 5 ms at a time: records at their rate, probes on whole seconds. */
static void run(struct flood *f, uint64_t ms)
{
    struct fakenet *net = f->net;

    for (uint64_t end = net->now + ms; net->now < end;) {
        fakenet_run(net, 5);
        if ((net->now - f->start) % PROBE_MS == 0)
            for (size_t p = 0; p < PROBERS; p++)
                for (size_t i = 0; i < NBACKENDS; i++)
                    assert_int_equal(
                        gossip_health_publish(net->nodes[p].g, BACKENDS[i], backend_up(i)), 0);
        while (f->published < RECORDS &&
               f->published * 1000 < (net->now - f->start) * RECORDS_PER_S) {
            uint8_t v[RECORD_BYTES];
            char key[32];
            memset(v, (int)f->published, sizeof(v));
            snprintf(key, sizeof(key), "r:%05zu", f->published);
            assert_int_equal(fakenet_publish(net, f->published % FLEET, key, 1, v, sizeof(v)), 0);
            f->published++;
        }
    }
}

static bool knows_all(struct fakenet *net, size_t idx)
{
    return fakenet_health_holds(net, idx, BACKENDS, NBACKENDS, backend_up);
}

static void flood_seed(uint64_t seed, uint64_t *first_worst, uint64_t *lapses)
{
    struct flood f = {.net = fakenet_new(FLEET, seed)};
    struct fakenet *net = f.net;
    uint64_t known[FLEET], lapse_from = 0, lapse_to = 0;

    net->daemon_sized = true;
    for (size_t i = 0; i < FLEET; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
        if (i > 0)
            assert_int_equal(gossip_join(net->nodes[i].g, &net->nodes[0].addr, 1), 0);
    }
    for (int s = 0; s < 600 && !fakenet_converged(net, FLEET); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, FLEET));
    f.start = net->now;
    *first_worst = *lapses = 0;
    for (size_t m = 0; m < FLEET; m++)
        known[m] = UINT64_MAX;
    while (net->now - f.start < RECORDS * 1000 / RECORDS_PER_S + AFTER_MS) {
        run(&f, 100);
        for (size_t m = 0; m < FLEET; m++) {
            bool k = knows_all(net, m);
            if (known[m] == UINT64_MAX && k) {
                known[m] = net->now - f.start;
                if (known[m] > *first_worst)
                    *first_worst = known[m];
            } else if (known[m] != UINT64_MAX && !k) {
                if ((*lapses)++ == 0)
                    lapse_from = net->now - f.start;
                lapse_to = net->now - f.start;
            }
        }
    }
    for (size_t m = 0; m < FLEET; m++)
        if (known[m] == UINT64_MAX)
            *first_worst = UINT64_MAX;
    printf("seed %llu: %zu records in %d s; every member held every verdict %lld ms after the "
           "first probe (bound %d); then %llu samples (100 ms, per member) lacked one",
           (unsigned long long)seed, f.published, RECORDS / RECORDS_PER_S,
           *first_worst == UINT64_MAX ? -1LL : (long long)*first_worst, BOUND_MS,
           (unsigned long long)*lapses);
    if (*lapses)
        printf(", %.1f..%.1f s after it", (double)lapse_from / 1000, (double)lapse_to / 1000);
    printf("\n");
    fakenet_free(net);
}

static void test_verdicts_hold_through_a_record_flood(void **state)
{
    uint64_t worst = 0, lapses = 0;

    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        uint64_t first, l;
        flood_seed(seed, &first, &l);
        if (first > worst)
            worst = first;
        lapses += l;
    }
    assert_true(worst <= BOUND_MS);
    assert_int_equal(lapses, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verdicts_hold_through_a_record_flood),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
