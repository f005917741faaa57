/*
 * test_share.c - member ids and metadata are stored once per process (gossip_share.c), and so
 * is each member's version (id, incarnation, address, metadata): every member table in the
 * simulator references the same copy, a change takes a new one, and the last reference frees
 * it. A table entry is the version's handle, the state and its time: 8 bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
#include <string.h>
#include <cmocka.h>

#include "fakenet.h"
#include "gossip/gossip_int.h"

#define N 20

static bool all_alive(struct fakenet *net, void *arg)
{
    (void)arg;
    return fakenet_converged(net, N);
}

static void test_metadata_is_shared(void **state)
{
    struct fakenet *net = fakenet_new(N, 77);
    struct gossip_meta changed;
    struct gmsg alive;
    char id[GOSSIP_ID_MAX + 1];
    const struct gmember *a, *b;

    (void)state;
    net->daemon_sized = true;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    assert_true(fakenet_run_until(net, all_alive, NULL, 100, 60000) != UINT64_MAX);
    /* N * N member entries: N distinct ids, N distinct metadata, N distinct addresses and N
     * versions, one per member, shared by every table */
    assert_int_equal(gshare_stored(), 4 * N);
    fakenet_id(net, 7, id);
    a = gossip_find(net->nodes[3].g, id);
    b = gossip_find(net->nodes[12].g, id);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(gm_meta(a));
    assert_int_equal(a->ver, b->ver);
    assert_int_equal(a->ver, net->nodes[7].g->self->ver);
    assert_ptr_equal(gm_meta(a), gm_meta(b));
    assert_ptr_equal(gm_id(a), gm_id(b));
    assert_true(gossip_addr_equal(gm_addr(a), &net->nodes[7].addr));
    /* the table itself: one small entry per member, found by the id's shared handle */
    assert_ptr_equal(a, gossip_slot(net->nodes[3].g, gm_sid(a)));
    assert_int_equal(sizeof(struct gmember), 8);

    /* member 7 as member 3 hears of it in a new life with another name: member 3 alone takes
     * a new copy, the others keep the old one */
    gossip_alive_msg(a, &alive);
    alive.incarnation++;
    changed = alive.meta;
    snprintf(changed.name, sizeof(changed.name), "renamed");
    alive.meta = changed;
    gossip_on_alive(net->nodes[3].g, &alive, false);
    assert_string_equal(gm_meta(a)->name, "renamed");
    assert_int_not_equal(a->ver, b->ver);
    assert_int_not_equal(gm_ver(a)->meta, gm_ver(b)->meta);
    assert_string_equal(gm_meta(b)->name, "gateway-007");
    assert_int_equal(gm_inc(a), gm_inc(b) + 1);
    assert_int_equal(gshare_stored(), 4 * N + 2); /* its new metadata and version */

    fakenet_free(net);
    assert_int_equal(gshare_stored(), 0);
}

/* What one more member table costs per entry, the fleet's data already stored: a member holds
 * an entry per member and nothing else per member (no member list, no probe order: the
 * simulator holds n squared entries, and 50,000 members must fit in 24 GB, under 9.6 bytes an
 * entry in all). Measured as heap growth (mallinfo2); a sanitizer's allocator does not count
 * there, so under one the test only builds the tables. */
static void test_table_costs_eight_bytes_an_entry(void **state)
{
    size_t n = 6000;
    struct fakenet *net = fakenet_new(3, 78);
    char id[GOSSIP_ID_MAX + 1];
    struct gossip_addr addr;
    size_t before, after;

    (void)state;
    for (size_t i = 0; i < 3; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
    }
    addr = net->nodes[2].addr;
    for (size_t j = 0; j < n; j++) { /* the fleet's ids, addresses and versions, once */
        snprintf(id, sizeof(id), "member-%zu", j);
        assert_int_equal(gossip_debug_add_member(net->nodes[0].g, id, &addr, 7), 0);
    }
    before = mallinfo2().uordblks;
    for (size_t j = 0; j < n; j++) { /* a second table of the same members */
        snprintf(id, sizeof(id), "member-%zu", j);
        assert_int_equal(gossip_debug_add_member(net->nodes[1].g, id, &addr, 7), 0);
    }
    after = mallinfo2().uordblks;
    printf("  a member table of %zu members: %.1f bytes an entry more on the heap\n", n,
           (double)(after - before) / (double)n);
    if (before != 0 || after != 0)
        assert_true(after - before <= n * 9);
    fakenet_free(net);
    assert_int_equal(gshare_stored(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metadata_is_shared),
        cmocka_unit_test(test_table_costs_eight_bytes_an_entry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
