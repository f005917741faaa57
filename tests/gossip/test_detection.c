/* experiment harness (temporary) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fakenet.h"
#include "gossip/gossip_int.h"

static uint32_t envu(const char *name, uint32_t def)
{
    const char *v = getenv(name);
    return v ? (uint32_t)strtoul(v, NULL, 10) : def;
}

static void tweak(struct gossip_config *cfg)
{
    cfg->probe_interval_ms = envu("PI", cfg->probe_interval_ms);
    cfg->probe_timeout_ms = envu("PT", cfg->probe_timeout_ms);
    cfg->suspicion_mult = envu("SM", cfg->suspicion_mult);
    cfg->suspicion_confirm = envu("SK", cfg->suspicion_confirm);
}

static struct fakenet *cluster(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);
    struct gossip_config cfg;

    net->daemon_sized = true;
    for (size_t i = 0; i < n; i++) {
        fakenet_config(net, i, &cfg);
        tweak(&cfg);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
        if (i)
            gossip_join(net->nodes[i].g, &net->nodes[0].addr, 1);
    }
    for (int s = 0; s < 600 && !fakenet_converged(net, n); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, n));
    return net;
}

struct victim {
    size_t v;
};
static bool all_see_dead(struct fakenet *net, void *arg)
{
    size_t v = *(size_t *)arg;
    for (size_t i = 0; i < net->n; i++)
        if (i != v && fakenet_state(net, i, v) != GOSSIP_DEAD)
            return false;
    return true;
}

static void test_experiment(void **state)
{
    size_t sizes[] = {5, 20, 50};
    (void)state;
    for (size_t k = 0; k < 3; k++) {
        size_t n = sizes[k];
        double sum = 0, worst = 0;
        int reps = (int)envu("REPS", 10);
        uint64_t b0, c0, s0, sc0;
        for (int r = 0; r < reps; r++) {
            struct fakenet *net = cluster(n, 7000 + n * 100 + (size_t)r);
            size_t v = n - 1;
            uint64_t t;
            fakenet_run(net, 30000 + (uint64_t)r * 137);
            if (r == 0) {
                b0 = net->dgram_bytes; c0 = net->dgram_count; s0 = net->stream_bytes; sc0 = net->stream_count;
                fakenet_run(net, 60000);
                printf("n=%zu udp %.1f B/s pkt %.2f tcp msgs %.3f/s tcp bytes %.1f\n", n,
                       (double)(net->dgram_bytes - b0 + 28 * (net->dgram_count - c0)) / n / 60,
                       (double)(net->dgram_count - c0) / n / 60,
                       (double)(net->stream_count - sc0) / n / 60, (double)(net->stream_bytes - s0) / n / 60);
            }
            fakenet_kill(net, v);
            t = fakenet_run_until(net, all_see_dead, &v, 10, 120000);
            sum += (double)t;
            if (t > worst) worst = (double)t;
            fakenet_free(net);
        }
        printf("n=%zu kill detection mean %.0f ms worst %.0f\n", n, sum / reps, worst);
    }
    if (envu("LOSS", 0)) {
        size_t ns[] = {20, 50};
        for (size_t k = 0; k < 2; k++) {
            struct fakenet *net = cluster(ns[k], 99 + ns[k]);
            uint64_t d = 0, s = 0;
            net->loss = envu("LOSS", 0) / 100.0;
            fakenet_run(net, envu("MIN", 10) * 60000);
            for (size_t i = 0; i < net->n; i++) {
                d += net->nodes[i].deaths_seen;
                s += net->nodes[i].suspicions_seen;
            }
            printf("n=%zu loss %u%%: deaths %llu suspicions %llu\n", ns[k], envu("LOSS", 0),
                   (unsigned long long)d, (unsigned long long)s);
            fakenet_free(net);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_experiment)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
