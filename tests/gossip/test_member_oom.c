/*
 * test_member_oom.c - a member's new incarnation that cannot be stored (the shared version
 * table out of memory) leaves the member as it was: no refutation that refutes nothing, no
 * suspect marked alive at the incarnation it is suspected at. The failure is counted and
 * the next message tries again.
 *
 * The failure is injected by linking with -Wl,--wrap=gshare_ver_ref (tests/gossip/CMakeLists.txt):
 * gossip_members.c's calls reach __wrap_gshare_ver_ref below, which fails while fail_vers > 0.
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

static int fail_vers; /* gshare_ver_ref calls still to fail */

uint32_t __real_gshare_ver_ref(const struct gver *v);
uint32_t __wrap_gshare_ver_ref(const struct gver *v);

uint32_t __wrap_gshare_ver_ref(const struct gver *v)
{
    if (fail_vers > 0) {
        fail_vers--;
        return 0;
    }
    return __real_gshare_ver_ref(v);
}

static bool all_converged(struct fakenet *net, void *arg)
{
    return fakenet_converged(net, *(size_t *)arg);
}

static struct fakenet *converged(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    assert_true(fakenet_run_until(net, all_converged, &n, 100, 60000) != UINT64_MAX);
    return net;
}

static void refutation_without_memory_refutes_nothing(void **state)
{
    struct fakenet *net = converged(3, 71);
    struct gossip *g = net->nodes[0].g;
    uint64_t inc = gm_inc(g->self), drops = g->stats.drops[GOSSIP_DROP_TABLE_FULL];
    uint64_t refuted = g->stats.refutations;

    (void)state;
    fail_vers = 1;
    gossip_on_suspect(g, gm_id(g->self), inc, "node-1");
    assert_int_equal(fail_vers, 0); /* the refutation did try */
    assert_int_equal(gm_inc(g->self), inc);
    assert_int_equal(g->stats.refutations, refuted); /* nothing went out at the old one */
    assert_int_equal(g->stats.drops[GOSSIP_DROP_TABLE_FULL], drops + 1);
    /* the suspicion comes round again: this time it is refuted */
    gossip_on_suspect(g, gm_id(g->self), inc, "node-2");
    assert_int_equal(gm_inc(g->self), inc + 1);
    assert_int_equal(g->stats.refutations, refuted + 1);
    fakenet_free(net);
}

static void alive_without_memory_leaves_the_suspect(void **state)
{
    struct fakenet *net = converged(3, 72);
    struct gossip *g = net->nodes[0].g;
    struct gmember *mem = gossip_find(g, "node-1");
    uint64_t inc, drops = g->stats.drops[GOSSIP_DROP_TABLE_FULL];
    struct gmsg msg;

    (void)state;
    assert_non_null(mem);
    inc = gm_inc(mem);
    gossip_on_suspect(g, "node-1", inc, "node-2");
    assert_int_equal(mem->state, GOSSIP_SUSPECT);
    /* node-1 refutes with inc + 1; storing that incarnation fails */
    gossip_alive_msg(mem, &msg);
    msg.incarnation = inc + 1;
    fail_vers = 1;
    gossip_on_alive(g, &msg, true);
    assert_int_equal(fail_vers, 0);
    /* still suspected at inc: an alive at the suspected incarnation clears nothing */
    assert_int_equal(gm_inc(mem), inc);
    assert_int_equal(mem->state, GOSSIP_SUSPECT);
    assert_int_equal(g->stats.drops[GOSSIP_DROP_TABLE_FULL], drops + 1);
    /* its retransmission gets through */
    gossip_on_alive(g, &msg, true);
    assert_int_equal(gm_inc(mem), inc + 1);
    assert_int_equal(mem->state, GOSSIP_ALIVE);
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refutation_without_memory_refutes_nothing),
        cmocka_unit_test(alive_without_memory_leaves_the_suspect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
