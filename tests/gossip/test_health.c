/*
 * test_health.c - shared backend health on the fake network.
 *
 * Each backend gets exactly k probers, the same k on every member; their results reach the
 * whole fleet, which agrees on the verdict; results expire when the probers stop publishing;
 * when a prober dies, another member takes its backends.
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

#define NODES 10
#define BACKENDS 40

static struct fakenet *converged_cluster(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    for (int s = 0; s < 600 && !fakenet_converged(net, n); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, n));
    return net;
}

static void backend_name(int b, char *out, size_t len)
{
    snprintf(out, len, "http://10.1.%d.%d:8080", b / 200, b % 200 + 1);
}

/* Every up member agrees on the probers of every backend, and there are exactly k. */
static void assert_assignment(struct fakenet *net, size_t k, int skip)
{
    for (int b = 0; b < BACKENDS; b++) {
        char name[64], ref[4][GOSSIP_ID_MAX + 1];
        size_t assigned = 0, nref;
        backend_name(b, name, sizeof(name));
        nref = gossip_health_probers(net->nodes[0].g, name, ref, 4);
        assert_int_equal(nref, k);
        for (size_t i = 0; i < net->n; i++) {
            char ids[4][GOSSIP_ID_MAX + 1];
            if ((int)i == skip)
                continue;
            assert_int_equal(gossip_health_probers(net->nodes[i].g, name, ids, 4), k);
            for (size_t j = 0; j < k; j++)
                assert_string_equal(ids[j], ref[j]);
            assigned += gossip_health_assigned(net->nodes[i].g, name);
        }
        assert_int_equal(assigned, k);
    }
}

/* The assigned probers publish: every backend up except those divisible by 7. */
static void probe_round(struct fakenet *net)
{
    for (int b = 0; b < BACKENDS; b++) {
        char name[64];
        backend_name(b, name, sizeof(name));
        for (size_t i = 0; i < net->n; i++)
            if (net->nodes[i].up && gossip_health_assigned(net->nodes[i].g, name))
                assert_int_equal(gossip_health_publish(net->nodes[i].g, name, b % 7 != 0), 0);
    }
}

static bool fleet_agrees(struct fakenet *net)
{
    for (size_t i = 0; i < net->n; i++) {
        if (!net->nodes[i].up)
            continue;
        for (int b = 0; b < BACKENDS; b++) {
            char name[64];
            unsigned up, down;
            backend_name(b, name, sizeof(name));
            if (gossip_health_verdict(net->nodes[i].g, name, &up, &down) !=
                (b % 7 ? GOSSIP_HEALTH_UP : GOSSIP_HEALTH_DOWN))
                return false;
        }
    }
    return true;
}

static int count_entries(void *ctx, const struct gossip_health_entry *e)
{
    (void)e;
    (*(int *)ctx)++;
    return 0;
}

static void test_k_probers_per_backend_and_fleet_verdict(void **state)
{
    struct fakenet *net = converged_cluster(NODES, 61);
    struct gossip_config cfg;
    int entries = 0;
    char name[64];
    unsigned up = 0, down = 0;

    (void)state;
    fakenet_config(net, 0, &cfg);
    assert_assignment(net, cfg.health_probers, -1);
    probe_round(net);
    fakenet_run(net, 3000);
    assert_true(fleet_agrees(net));
    /* two observers per backend, each entry listed once */
    gossip_health_each(net->nodes[4].g, count_entries, &entries);
    assert_int_equal(entries, BACKENDS * (int)cfg.health_probers);
    backend_name(14, name, sizeof(name));
    assert_int_equal(gossip_health_verdict(net->nodes[8].g, name, &up, &down), GOSSIP_HEALTH_DOWN);
    assert_int_equal(down, cfg.health_probers);
    assert_int_equal(up, 0);
    assert_string_equal(gossip_health_verdict_name(GOSSIP_HEALTH_DOWN), "down");
    fakenet_free(net);
}

static void test_results_expire_without_probers(void **state)
{
    struct fakenet *net = converged_cluster(NODES, 67);
    struct gossip_config cfg;
    char name[64];

    (void)state;
    fakenet_config(net, 0, &cfg);
    probe_round(net);
    fakenet_run(net, 3000);
    assert_true(fleet_agrees(net));
    /* probers keep publishing for a while: still fresh past one TTL */
    for (uint32_t t = 0; t < cfg.health_ttl_ms * 2; t += 5000) {
        probe_round(net);
        fakenet_run(net, 5000);
    }
    assert_true(fleet_agrees(net));
    /* then stop: after a TTL nobody has an opinion */
    fakenet_run(net, cfg.health_ttl_ms + 2000);
    backend_name(3, name, sizeof(name));
    for (size_t i = 0; i < NODES; i++)
        assert_int_equal(gossip_health_verdict(net->nodes[i].g, name, NULL, NULL),
                         GOSSIP_HEALTH_UNKNOWN);
    fakenet_free(net);
}

static void test_dead_prober_is_replaced(void **state)
{
    struct fakenet *net = converged_cluster(NODES, 71);
    struct gossip_config cfg;
    size_t victim = 6;

    (void)state;
    fakenet_config(net, 0, &cfg);
    fakenet_kill(net, victim);
    for (int s = 0; s < 120 && !fakenet_converged(net, NODES - 1); s++)
        fakenet_run(net, 1000);
    assert_true(fakenet_converged(net, NODES - 1));
    /* still exactly k per backend among the survivors, the dead one never among them */
    assert_assignment(net, cfg.health_probers, (int)victim);
    for (int b = 0; b < BACKENDS; b++) {
        char name[64], ids[4][GOSSIP_ID_MAX + 1];
        backend_name(b, name, sizeof(name));
        size_t k = gossip_health_probers(net->nodes[0].g, name, ids, 4);
        for (size_t j = 0; j < k; j++)
            assert_string_not_equal(ids[j], "node-6");
    }
    probe_round(net);
    fakenet_run(net, 3000);
    assert_true(fleet_agrees(net));
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_k_probers_per_backend_and_fleet_verdict),
        cmocka_unit_test(test_results_expire_without_probers),
        cmocka_unit_test(test_dead_prober_is_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
