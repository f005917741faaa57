/*
 * test_health_join.c - a member that joins or restarts learns every health verdict within
 * about one gossip round, not at the probers' next restatement.
 *
 * Push-pull carries no health entries, so a newcomer used to learn the verdicts it does not
 * probe itself only from the regular restatements, up to TTL/2 (15 s) later: the soak read
 * `unknown` on a gateway 16 s after its restart. A fleet of 5 (daemon-sized envelopes), two
 * members probing 4 backends every second with the default 30 s TTL; then a 6th member joins,
 * and a member is killed and a fresh instance with the same id (incarnation from the wall
 * clock, as the node starts it) comes back, both before the fleet declares it dead and after.
 * The newcomer must hold the right verdict on every backend within 2 s, at 15% datagram loss
 * too. And a member whose incarnation keeps jumping costs at most one restatement a second.
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

#define FLEET 5       /* members 0..4; 5 is the joiner */
#define PROBERS 2     /* members 0 and 1 probe every backend */
#define VIA 3         /* joins go through a member that probes nothing */
#define NBACKENDS 4   /* backends probed */
#define PROBE_MS 1000 /* the probers publish every second, as the daemon's probes do */
#define BOUND_MS 2000 /* a newcomer holds every verdict within this */

static const char *const BACKENDS[NBACKENDS] = {"10.231.0.31:8080", "10.231.0.32:8080",
                                                "10.231.0.33:8080", "10.231.0.34:8080"};

static bool backend_up(size_t i)
{
    return i % 2 == 0;
}

static void probe(struct fakenet *net)
{
    for (size_t p = 0; p < PROBERS; p++)
        for (size_t i = 0; i < NBACKENDS; i++)
            assert_int_equal(gossip_health_publish(net->nodes[p].g, BACKENDS[i], backend_up(i)), 0);
}

/* Runs ms of fleet time, the probers publishing on every whole second. */
static void run_probing(struct fakenet *net, uint64_t ms)
{
    for (uint64_t end = net->now + ms; net->now < end;) {
        uint64_t step = PROBE_MS - net->now % PROBE_MS;
        if (step > end - net->now)
            step = end - net->now;
        fakenet_run(net, step);
        if (net->now % PROBE_MS == 0)
            probe(net);
    }
}

static bool knows_all(struct fakenet *net, size_t idx)
{
    return fakenet_health_holds(net, idx, BACKENDS, NBACKENDS, backend_up);
}

/* Starts member idx as the node does (incarnation from the wall clock) and joins it via VIA. */
static void start_member(struct fakenet *net, size_t idx)
{
    struct gossip_config cfg;

    fakenet_config(net, idx, &cfg);
    cfg.incarnation = (FN_WALL_EPOCH_MS + net->now) / 1000;
    assert_int_equal(fakenet_start(net, idx, &cfg), 0);
    if (idx != 0)
        assert_int_equal(gossip_join(net->nodes[idx].g, &net->nodes[idx == VIA ? 0 : VIA].addr, 1),
                         0);
}

/* A converged, probing fleet of FLEET members; the probers' restatements are under way. */
static struct fakenet *fleet(uint64_t seed, double loss)
{
    struct fakenet *net = fakenet_new(FLEET + 1, seed);

    net->daemon_sized = true;
    for (size_t i = 0; i < FLEET; i++)
        start_member(net, i);
    for (int s = 0; s < 600 && !fakenet_converged(net, FLEET); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, FLEET));
    net->loss = loss;
    /* past a few restatements, ending at a seed-dependent point of the TTL/2 cycle */
    run_probing(net, 40000 + (seed * 3700) % 15000);
    for (size_t i = 0; i < FLEET; i++)
        assert_true(knows_all(net, i));
    return net;
}

/* Virtual ms from now until member idx holds every verdict (UINT64_MAX past 20 s). */
static uint64_t time_to_know(struct fakenet *net, size_t idx)
{
    uint64_t start = net->now;

    for (uint64_t t = 0; t < 20000; t += 100) {
        if (knows_all(net, idx))
            return net->now - start;
        run_probing(net, 100);
    }
    return UINT64_MAX;
}

enum scenario { JOIN, RESTART_FAST, RESTART_AFTER_DEATH };
static const char *const SCENARIO[] = {"a new member joins", "a member restarts within 2 s",
                                       "a member restarts after being declared dead"};

static uint64_t newcomer_delay(enum scenario sc, uint64_t seed, double loss)
{
    struct fakenet *net = fleet(seed, loss);
    size_t idx = sc == JOIN ? FLEET : 4;
    uint64_t took;

    if (sc != JOIN) {
        fakenet_kill(net, idx);
        if (sc == RESTART_FAST) {
            run_probing(net, 2000);
        } else {
            for (int s = 0; s < 600 && fakenet_state(net, 0, idx) != GOSSIP_DEAD; s++)
                run_probing(net, 100);
            assert_int_equal(fakenet_state(net, 0, idx), GOSSIP_DEAD);
        }
    }
    start_member(net, idx);
    took = time_to_know(net, idx);
    printf("%s, seed %llu, loss %.0f%%: it holds all %d verdicts after %lld ms (bound %d)\n",
           SCENARIO[sc], (unsigned long long)seed, loss * 100, NBACKENDS,
           took == UINT64_MAX ? -1LL : (long long)took, BOUND_MS);
    fakenet_free(net);
    return took;
}

static void check_scenario(enum scenario sc)
{
    uint64_t worst = 0;

    for (uint64_t seed = 1; seed <= 4; seed++) {
        uint64_t t = newcomer_delay(sc, seed, seed == 1 ? 0.0 : 0.15);
        if (t > worst)
            worst = t;
    }
    assert_true(worst <= BOUND_MS);
}

static void test_a_joiner_learns_every_verdict_at_once(void **state)
{
    (void)state;
    check_scenario(JOIN);
}

static void test_a_restarted_member_learns_every_verdict_at_once(void **state)
{
    (void)state;
    check_scenario(RESTART_FAST);
}

static void test_a_member_back_from_dead_learns_every_verdict_at_once(void **state)
{
    (void)state;
    check_scenario(RESTART_AFTER_DEATH);
}

/* A member announcing a new life 20 times a second (a flapping or hostile one) makes a prober
 * restate at most once a second, and a refutation (one incarnation step) not at all. */
static void test_new_lives_restate_at_most_once_a_second(void **state)
{
    struct fakenet *net = fleet(7, 0.0);
    struct gossip *g = net->nodes[0].g;
    struct gossip_member m;
    struct gossip_stats before, after;
    struct gmsg alive;

    (void)state;
    assert_int_equal(gossip_member_get(g, gm_id(net->nodes[4].g->self), &m), 0);
    memset(&alive, 0, sizeof(alive));
    alive.type = GMSG_ALIVE;
    snprintf(alive.id, sizeof(alive.id), "%s", m.id);
    alive.addr = m.addr;
    alive.incarnation = m.incarnation;
    gossip_stats_get(g, &before);
    for (int i = 0; i < 20; i++) { /* refutations: no restatement */
        alive.incarnation++;
        gossip_on_alive(g, &alive, false);
    }
    gossip_stats_get(g, &after);
    assert_int_equal(after.health_restatements, before.health_restatements);
    for (int i = 0; i < 100; i++) { /* 5 s of restarts every 50 ms */
        alive.incarnation += 10;
        gossip_on_alive(g, &alive, false);
        run_probing(net, 50);
    }
    gossip_stats_get(g, &after);
    printf("100 restarts in 5 s: %llu restatements\n",
           (unsigned long long)(after.health_restatements - before.health_restatements));
    assert_true(after.health_restatements - before.health_restatements >= 3);
    assert_true(after.health_restatements - before.health_restatements <= 6);
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_joiner_learns_every_verdict_at_once),
        cmocka_unit_test(test_a_restarted_member_learns_every_verdict_at_once),
        cmocka_unit_test(test_a_member_back_from_dead_learns_every_verdict_at_once),
        cmocka_unit_test(test_new_lives_restate_at_most_once_a_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
