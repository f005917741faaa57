/*
 * test_membership.c - SWIM + Lifeguard membership on the fake network (virtual time).
 *
 * What a user of the fleet relies on: members find each other through one seed, a member
 * that dies is declared dead by everyone within a bounded time, a member that is merely slow
 * or behind a lossy network is never declared dead, a member that leaves is shown as left,
 * and a member that restarts comes back under a new incarnation.
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

static struct fakenet *cluster(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    return net;
}

static bool all_converged(struct fakenet *net, void *arg)
{
    return fakenet_converged(net, *(size_t *)arg);
}

static uint64_t total_deaths(struct fakenet *net)
{
    uint64_t d = 0;

    for (size_t i = 0; i < net->n; i++)
        d += net->nodes[i].deaths_seen;
    return d;
}

static void join_converges(size_t n)
{
    struct fakenet *net = cluster(n, 1000 + n);
    uint64_t t = fakenet_run_until(net, all_converged, &n, 100, 60000);

    printf("  join of %zu members converged in %llu ms (virtual)\n", n, (unsigned long long)t);
    assert_true(t != UINT64_MAX);
    assert_true(t <= 15000);
    assert_int_equal(total_deaths(net), 0);
    fakenet_free(net);
}

static void test_join_converges_5(void **state)
{
    (void)state;
    join_converges(5);
}

static void test_join_converges_20(void **state)
{
    (void)state;
    join_converges(20);
}

static void test_join_converges_100(void **state)
{
    (void)state;
    join_converges(100);
}

struct dead_arg {
    size_t victim;
};

static bool victim_dead_everywhere(struct fakenet *net, void *arg)
{
    size_t v = ((struct dead_arg *)arg)->victim;

    for (size_t i = 0; i < net->n; i++)
        if (i != v && net->nodes[i].up && fakenet_state(net, i, v) != GOSSIP_DEAD)
            return false;
    return true;
}

/* Joins member `idx` of net through the members listed in seeds; returns the stream bytes
 * moved in the first 500 ms, with *alive set to how many members it then sees. */
static uint64_t join_through(struct fakenet *net, size_t idx, const size_t *seeds, size_t nseeds,
                             size_t *alive)
{
    struct gossip_config cfg;
    struct gossip_addr addrs[GOSSIP_SEEDS_MAX];
    uint64_t before;

    for (size_t i = 0; i < nseeds; i++)
        addrs[i] = net->nodes[seeds[i]].addr;
    fakenet_config(net, idx, &cfg);
    assert_int_equal(fakenet_start(net, idx, &cfg), 0);
    before = net->stream_bytes;
    assert_int_equal(gossip_join(net->nodes[idx].g, addrs, nseeds), 0);
    fakenet_run(net, 500);
    *alive = gossip_live_count(net->nodes[idx].g);
    return net->stream_bytes - before;
}

/* A join through three seeds takes one seed's member list, not three; when the first seed is
 * down, the next is asked a second later, and our own address among the seeds is skipped. */
static void test_join_asks_one_seed_at_a_time(void **state)
{
    struct fakenet *net = fakenet_new(33, 12);
    size_t n = 30, alive_one, alive_three, alive_down;
    const size_t one[] = {0}, three[] = {0, 1, 2}, down_first[] = {3, 32, 4};
    uint64_t b_one, b_three, t;

    (void)state;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    t = fakenet_run_until(net, all_converged, &n, 100, 60000);
    assert_true(t != UINT64_MAX);
    fakenet_run(net, 5000);

    b_one = join_through(net, 30, one, 1, &alive_one);
    b_three = join_through(net, 31, three, 3, &alive_three);
    printf("  join through 1 seed: %llu stream bytes, through 3 seeds: %llu\n",
           (unsigned long long)b_one, (unsigned long long)b_three);
    assert_int_equal(alive_one, n + 1);
    assert_true(alive_three >= n + 1);
    /* the same exchange (the second joiner also finds the first): not three lists */
    assert_true(b_three < b_one + b_one / 2);

    /* seed 3 killed, node 32 itself listed: the join still lands, through seed 4 */
    fakenet_kill(net, 3);
    (void)join_through(net, 32, down_first, 3, &alive_down);
    assert_int_equal(alive_down, 1);
    fakenet_run(net, 1000);
    assert_true(gossip_live_count(net->nodes[32].g) > 2);
    fakenet_free(net);
}

static void test_killed_member_declared_dead_by_all(void **state)
{
    size_t n = 50;
    struct fakenet *net = cluster(n, 7);
    struct dead_arg a = {.victim = 7};
    struct gossip_config cfg;
    uint64_t t, bound;

    (void)state;
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    fakenet_run(net, 5000);
    fakenet_kill(net, a.victim);
    /* Bound: the victim is probed within a round of the probe list (n periods at worst, but
     * every member probes it: about one period), then Lifeguard's maximum suspicion timeout
     * (suspicion_max_mult * suspicion_mult * log10(n) periods), plus dissemination. */
    fakenet_config(net, 0, &cfg);
    bound = (uint64_t)(cfg.suspicion_max_mult * cfg.suspicion_mult * 1.7 * cfg.probe_interval_ms) +
            5 * cfg.probe_interval_ms;
    t = fakenet_run_until(net, victim_dead_everywhere, &a, 50, 120000);
    printf("  killed member of %zu declared dead by all survivors in %llu ms (bound %llu)\n", n,
           (unsigned long long)t, (unsigned long long)bound);
    assert_true(t != UINT64_MAX);
    assert_true(t <= bound);
    /* nobody else died anywhere: exactly one death seen per survivor */
    for (size_t i = 0; i < n; i++)
        if (i != a.victim)
            assert_int_equal(net->nodes[i].deaths_seen, 1);
    n = n - 1;
    assert_true(fakenet_converged(net, n));
    fakenet_free(net);
}

static void test_slow_member_not_declared_dead(void **state)
{
    size_t n = 20;
    struct fakenet *net = cluster(n, 11);
    struct gossip_stats st;
    uint32_t max_awareness = 0;

    (void)state;
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    /* member 3 processes everything it receives 1.2 s late: longer than a whole probe
     * period, so its acks miss every deadline and its own probes time out */
    net->nodes[3].in_delay_ms = 1200;
    for (int s = 0; s < 120; s++) {
        fakenet_run(net, 1000);
        gossip_stats_get(net->nodes[3].g, &st);
        if (st.awareness > max_awareness)
            max_awareness = st.awareness;
    }
    net->nodes[3].in_delay_ms = 0;
    fakenet_run(net, 20000);
    printf("  slow member: %llu deaths declared, its awareness peaked at %u\n",
           (unsigned long long)total_deaths(net), max_awareness);
    assert_int_equal(total_deaths(net), 0);
    /* Lifeguard's local health multiplier kicked in on the slow member */
    assert_true(max_awareness >= 1);
    assert_true(fakenet_converged(net, n));
    fakenet_free(net);
}

static void test_loss_20_percent_no_false_death(void **state)
{
    size_t n = 50;
    struct fakenet *net = cluster(n, 23);
    uint64_t suspicions = 0;

    (void)state;
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    net->loss = 0.20;
    fakenet_run(net, 300000); /* five minutes */
    net->loss = 0;
    fakenet_run(net, 15000);
    for (size_t i = 0; i < n; i++)
        suspicions += net->nodes[i].suspicions_seen;
    printf("  20%% loss, 5 min, %zu members: %llu suspicions raised, %llu deaths\n", n,
           (unsigned long long)suspicions, (unsigned long long)total_deaths(net));
    assert_int_equal(total_deaths(net), 0);
    assert_true(fakenet_converged(net, n));
    fakenet_free(net);
}

static bool left_everywhere(struct fakenet *net, void *arg)
{
    size_t v = *(size_t *)arg;

    for (size_t i = 0; i < net->n; i++)
        if (i != v && fakenet_state(net, i, v) != GOSSIP_LEFT)
            return false;
    return true;
}

static void test_leave_is_seen_as_left(void **state)
{
    size_t n = 20, v = 5;
    struct fakenet *net = cluster(n, 31);
    uint64_t t;

    (void)state;
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    gossip_leave(net->nodes[v].g);
    /* the daemon keeps its loop running briefly after leaving, then exits */
    t = fakenet_run_until(net, left_everywhere, &v, 10, 30000);
    printf("  leave seen by all in %llu ms\n", (unsigned long long)t);
    assert_true(t <= 2000);
    fakenet_run(net, 1000);
    fakenet_kill(net, v);
    /* and it stays "left": nobody turns it into "dead" later */
    fakenet_run(net, 60000);
    assert_true(left_everywhere(net, &v));
    assert_int_equal(total_deaths(net), 0);
    fakenet_free(net);
}

static bool alive_everywhere(struct fakenet *net, void *arg)
{
    size_t v = *(size_t *)arg;

    for (size_t i = 0; i < net->n; i++)
        if (i != v && net->nodes[i].up && fakenet_state(net, i, v) != GOSSIP_ALIVE)
            return false;
    return true;
}

static void test_restart_rejoins_with_new_incarnation(void **state)
{
    size_t n = 20, v = 4;
    struct fakenet *net = cluster(n, 41);
    struct dead_arg a = {.victim = v};
    struct gossip_member before, after;

    (void)state;
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    assert_int_equal(gossip_member_get(net->nodes[0].g, "node-4", &before), 0);
    fakenet_kill(net, v);
    assert_true(fakenet_run_until(net, victim_dead_everywhere, &a, 100, 120000) != UINT64_MAX);
    /* restart with the same id, starting again from incarnation 0 (worst case: the node did
     * not pass the wall clock); it must refute its own death and come back */
    assert_int_equal(fakenet_start_join(net, v, 0), 0);
    assert_true(fakenet_run_until(net, alive_everywhere, &v, 100, 30000) != UINT64_MAX);
    assert_int_equal(gossip_member_get(net->nodes[0].g, "node-4", &after), 0);
    assert_true(after.incarnation > before.incarnation);
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 30000) != UINT64_MAX);
    fakenet_free(net);
}

/* Probes `count` times from g; counts how often each member was the target. */
static void probe_round(struct gossip *g, size_t count, uint32_t *hits, size_t nhits)
{
    for (size_t i = 0; i < count; i++) {
        struct gmember *m = gossip_probe_target(g);
        assert_non_null(m);
        assert_true(gm_sid(m) < nhits);
        hits[gm_sid(m)]++;
    }
}

/* SWIM's shuffled round-robin: each round probes every other member exactly once, in an order
 * that changes from round to round; a member learned during a round (even one whose id handle
 * lies past the table's size when the round began) is probed in that same round, and a member
 * gone meanwhile is skipped. The order is a permutation drawn per round, nothing stored per
 * member (see gossip_probe.c). */
static void test_probe_order_is_round_robin(void **state)
{
    size_t n = 300, victim = 0;
    struct fakenet *net = fakenet_new(n + 1, 31);
    struct gossip *g;
    static uint32_t hits[16384], filler[5000];
    uint32_t first[300];
    char id[GOSSIP_ID_MAX + 1];
    size_t same = 0;

    (void)state;
    for (size_t i = 0; i <= n; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
    }
    g = net->nodes[0].g;
    for (size_t j = 1; j < n; j++) {
        fakenet_id(net, j, id);
        assert_int_equal(gossip_debug_add_member(g, id, &net->nodes[j].addr, 1), 0);
    }
    /* two full rounds: everyone once each time, in another order */
    for (int round = 0; round < 2; round++) {
        memset(hits, 0, sizeof(hits));
        for (size_t i = 0; i + 1 < n; i++) {
            struct gmember *m = gossip_probe_target(g);
            assert_non_null(m);
            assert_true(gm_sid(m) < 16384);
            hits[gm_sid(m)]++;
            if (round == 0)
                first[i] = gm_sid(m);
            else
                same += first[i] == gm_sid(m);
        }
        for (size_t j = 1; j < n; j++) {
            fakenet_id(net, j, id);
            assert_int_equal(hits[gm_sid(gossip_find(g, id))], 1);
        }
    }
    assert_true(same < n / 10);
    /* half a round, then: a newcomer (node n), one whose id handle lies past the table (after
     * 5000 other ids), and a member not yet probed leaves */
    memset(hits, 0, sizeof(hits));
    probe_round(g, n / 2, hits, 16384);
    for (size_t k = 0; k < 5000; k++) {
        snprintf(id, sizeof(id), "filler-%zu", k);
        filler[k] = gshare_ref(GSHARE_IDS, id, strlen(id) + 1);
    }
    fakenet_id(net, n, id);
    assert_int_equal(gossip_debug_add_member(g, id, &net->nodes[n].addr, 1), 0);
    assert_int_equal(gossip_debug_add_member(g, "far-member", &net->nodes[n].addr, 1), 0);
    assert_true(gm_sid(gossip_find(g, "far-member")) >= 4096);
    for (size_t j = 1; j < n && victim == 0; j++) {
        fakenet_id(net, j, id);
        if (hits[gm_sid(gossip_find(g, id))] == 0)
            victim = j;
    }
    fakenet_id(net, victim, id);
    gossip_on_dead(g, id, 1, id); /* it left */
    /* what is left of the round: the unprobed less the one that left, and the two newcomers */
    probe_round(g, (n - 1 - n / 2) - 1 + 2, hits, 16384);
    for (size_t j = 1; j <= n; j++) {
        fakenet_id(net, j, id);
        assert_int_equal(hits[gm_sid(gossip_find(g, id))], j == victim ? 0 : 1);
    }
    assert_int_equal(hits[gm_sid(gossip_find(g, "far-member"))], 1);
    /* a crowd arriving mid-round (a cold start, a partition healing): the late list stays
     * small, the round starts afresh, and every member is probed within that fresh round */
    memset(hits, 0, sizeof(hits));
    probe_round(g, n / 2, hits, 16384);
    for (size_t k = 0; k < 200; k++) {
        snprintf(id, sizeof(id), "crowd-%zu", k);
        assert_int_equal(gossip_debug_add_member(g, id, &net->nodes[n].addr, 1), 0);
        assert_true(g->order.nlate <= 64);
    }
    memset(hits, 0, sizeof(hits));
    probe_round(g, g->nlive - 1 + g->order.nlate, hits, 16384);
    for (size_t k = 0; k < 200; k++) {
        snprintf(id, sizeof(id), "crowd-%zu", k);
        assert_true(hits[gm_sid(gossip_find(g, id))] >= 1);
    }
    fakenet_free(net);
    for (size_t k = 0; k < 5000; k++)
        gshare_unref(GSHARE_IDS, filler[k]);
}

static void test_member_metadata_reaches_everyone(void **state)
{
    size_t n = 10;
    struct fakenet *net = cluster(n, 51);
    struct gossip_member m;
    struct gossip_member list[16];

    (void)state;
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    assert_int_equal(gossip_member_get(net->nodes[9].g, "node-3", &m), 0);
    assert_string_equal(m.meta.name, "gw3");
    assert_string_equal(m.meta.domain, "gw.example");
    assert_true(gossip_addr_equal(&m.addr, &net->nodes[3].addr));
    /* the snapshot lists everyone, sorted by id, self flagged */
    assert_int_equal(gossip_members(net->nodes[2].g, list, 16), n);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(list[i - 1].id, list[i].id) < 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(list[i].self, strcmp(list[i].id, "node-2") == 0);
    assert_string_equal(gossip_state_name(list[0].state), "alive");
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_converges_5),
        cmocka_unit_test(test_join_converges_20),
        cmocka_unit_test(test_join_converges_100),
        cmocka_unit_test(test_join_asks_one_seed_at_a_time),
        cmocka_unit_test(test_probe_order_is_round_robin),
        cmocka_unit_test(test_member_metadata_reaches_everyone),
        cmocka_unit_test(test_killed_member_declared_dead_by_all),
        cmocka_unit_test(test_slow_member_not_declared_dead),
        cmocka_unit_test(test_loss_20_percent_no_false_death),
        cmocka_unit_test(test_leave_is_seen_as_left),
        cmocka_unit_test(test_restart_rejoins_with_new_incarnation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
