/*
 * test_hostile.c - what one fleet member that holds the cluster key and turned hostile can
 * send, and what it must not achieve: silencing a member with a huge incarnation, forging a
 * member's leave, pushing member lists or items outside an exchange, making a member allocate
 * for a reply larger than any real one, replaying a captured packet. Every packet is sealed
 * with the fleet's key (as a member would seal it) and handed straight to a member's
 * gossip_receive; the rest of the fleet runs on the fake network with virtual time.
 */
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

#define HOSTILE_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define START_INC 1700000000ull /* unix seconds, as the node passes them */

static bool converged(struct fakenet *net, void *arg)
{
    return fakenet_converged(net, (size_t)(uintptr_t)arg);
}

/* n members holding one key, all joined through node 0, converged. */
static struct fakenet *keyed_cluster(size_t n)
{
    struct fakenet *net = fakenet_new(n, 42);
    char err[GOSSIP_ERR_MAX];

    net->step_ms = 1;
    net->delay_min_ms = 1;
    net->delay_max_ms = 3;
    for (size_t i = 0; i < n; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        cfg.incarnation = START_INC;
        assert_int_equal(
            gossip_keyring_parse(HOSTILE_KEY, strlen(HOSTILE_KEY), &cfg.keyring, err, sizeof(err)),
            0);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
        if (i > 0)
            assert_int_equal(gossip_join(net->nodes[i].g, &net->nodes[0].addr, 1), 0);
    }
    assert_true(fakenet_run_until(net, converged, (void *)(uintptr_t)n, 100, 30000) != UINT64_MAX);
    return net;
}

/* Seals body and hands it to node `to` as if `from` had sent it. */
static void deliver(struct fakenet *net, size_t to, const struct gossip_addr *from,
                    const uint8_t *body, size_t len, bool stream)
{
    size_t cap = len + 256;
    uint8_t *out = malloc(cap);
    int n;

    assert_non_null(out);
    n = gossip_debug_seal(net->nodes[to].g, body, len, out, cap);
    assert_true(n > 0);
    gossip_receive(net->nodes[to].g, from, out, (size_t)n, stream);
    free(out);
}

static void deliver_msg(struct fakenet *net, size_t to, size_t from, const struct gmsg *m)
{
    uint8_t body[GOSSIP_UDP_MAX];
    struct gwbuf w;

    gwbuf_init_fixed(&w, body, sizeof(body) - 128);
    assert_int_equal(gproto_encode(&w, m), 0);
    deliver(net, to, &net->nodes[from].addr, body, w.len, false);
}

static uint64_t incarnation_seen(struct fakenet *net, size_t viewer, const char *id)
{
    struct gossip_member m;

    assert_int_equal(gossip_member_get(net->nodes[viewer].g, id, &m), 0);
    return m.incarnation;
}

static uint64_t drops(struct fakenet *net, size_t idx, enum gossip_drop_reason r)
{
    struct gossip_stats st;

    gossip_stats_get(net->nodes[idx].g, &st);
    return st.drops[r];
}

/* One suspicion at incarnation UINT64_MAX used to silence its subject for good: its
 * refutation wrapped to 0 and was ignored, and it was declared dead. */
static void test_huge_incarnation_cannot_silence_a_member(void **state)
{
    struct fakenet *net = keyed_cluster(3);
    struct gmsg m;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_SUSPECT;
    snprintf(m.id, sizeof(m.id), "node-1");
    snprintf(m.from, sizeof(m.from), "node-2");
    m.incarnation = UINT64_MAX;
    deliver_msg(net, 0, 2, &m);
    m.type = GMSG_ALIVE;
    m.incarnation = UINT64_MAX - 1;
    m.addr = net->nodes[2].addr;
    deliver_msg(net, 0, 2, &m);
    fakenet_run(net, 60000);
    assert_true(fakenet_converged(net, 3));
    for (size_t v = 0; v < 3; v++)
        assert_true(incarnation_seen(net, v, "node-1") < START_INC + 1000);
    assert_true(drops(net, 0, GOSSIP_DROP_INCARNATION) >= 2);
    fakenet_free(net);
}

/* A leave notice naming a member that did not leave: it hears of it and refutes. */
static void test_forged_leave_is_refuted(void **state)
{
    struct fakenet *net = keyed_cluster(4);
    struct gmsg m;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_DEAD;
    snprintf(m.id, sizeof(m.id), "node-1");
    snprintf(m.from, sizeof(m.from), "node-1");
    m.incarnation = incarnation_seen(net, 0, "node-1");
    deliver_msg(net, 0, 3, &m);
    deliver_msg(net, 2, 3, &m);
    assert_int_equal(fakenet_state(net, 0, 1), GOSSIP_LEFT);
    assert_true(fakenet_run_until(net, converged, (void *)(uintptr_t)4, 100, 30000) != UINT64_MAX);
    for (size_t v = 0; v < 4; v++)
        assert_int_equal(fakenet_state(net, v, 1), GOSSIP_ALIVE);
    fakenet_free(net);
}

/* The item digest build_reply sends: the dense zero form unless a test sets these. */
static const uint8_t *reply_digest;
static size_t reply_digest_len;

static void pack_buckets(msgpack_packer *pk)
{
    static const uint8_t zero[GOSSIP_PP_BUCKETS * 8];

    if (reply_digest != NULL) {
        msgpack_pack_bin_with_body(pk, reply_digest, reply_digest_len);
        return;
    }
    msgpack_pack_bin(pk, sizeof(zero));
    msgpack_pack_bin_body(pk, zero, sizeof(zero));
}

/* [17, 0, from, [ghost member], buckets, entries(n), member buckets]: a push-pull reply. */
static void build_reply(struct gwbuf *w, const char *from, bool ghost, size_t nentries)
{
    struct gossip_addr ga = {.family = 4, .ip = {10, 9, 9, 9}, .port = 7946};

    assert_int_equal(gwbuf_init_dynamic(w, 4096, GOSSIP_STREAM_MAX - 1024), 0);
    msgpack_pack_array(&w->pk, 7);
    msgpack_pack_uint8(&w->pk, GMSG_PP_REPLY);
    msgpack_pack_uint8(&w->pk, 0);
    gproto_pack_str(&w->pk, from);
    msgpack_pack_array(&w->pk, ghost ? 1 : 0);
    if (ghost) {
        msgpack_pack_array(&w->pk, 5 + GPROTO_META_FIELDS);
        gproto_pack_str(&w->pk, "ghost");
        msgpack_pack_uint64(&w->pk, START_INC);
        msgpack_pack_uint8(&w->pk, GOSSIP_ALIVE);
        gproto_pack_addr(&w->pk, &ga);
        gproto_pack_meta(&w->pk, &(struct gossip_meta){.name = "ghost"}, &ga);
        msgpack_pack_uint64(&w->pk, 0);
    }
    pack_buckets(&w->pk);
    msgpack_pack_array(&w->pk, nentries);
    for (size_t i = 0; i < nentries; i++) {
        msgpack_pack_array(&w->pk, 3);
        gproto_pack_str(&w->pk, "k");
        msgpack_pack_uint8(&w->pk, 1);
        msgpack_pack_uint8(&w->pk, 1);
    }
    {
        static const uint8_t one_member_bucket[8];
        msgpack_pack_bin_with_body(&w->pk, one_member_bucket, sizeof(one_member_bucket));
    }
    assert_false(w->overflow);
}

/* [18, flags, from, [items], [], []]: an item list. */
static void build_items(struct gwbuf *w, uint8_t flags, size_t nitems)
{
    assert_int_equal(gwbuf_init_dynamic(w, 4096, 1 << 20), 0);
    msgpack_pack_array(&w->pk, 6);
    msgpack_pack_uint8(&w->pk, GMSG_PP_ITEMS);
    msgpack_pack_uint8(&w->pk, flags);
    gproto_pack_str(&w->pk, "node-2");
    msgpack_pack_array(&w->pk, nitems);
    for (size_t i = 0; i < nitems; i++) {
        struct gmsg m = {.type = GMSG_ITEM, .version = 7, .bytes = (const uint8_t *)"x", .len = 1};
        snprintf(m.key, sizeof(m.key), "pushed/%zu", i);
        assert_int_equal(gproto_encode(w, &m), 0);
    }
    msgpack_pack_array(&w->pk, 0);
    msgpack_pack_array(&w->pk, 0);
}

/* Replies and item lists count only inside an exchange the receiver is part of. */
static void test_unsolicited_pushpull_is_dropped(void **state)
{
    struct fakenet *net = keyed_cluster(3);
    struct gossip_member gm;
    struct gwbuf w;

    (void)state;
    build_reply(&w, "node-2", true, 0);
    deliver(net, 0, &net->nodes[2].addr, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_int_equal(gossip_member_get(net->nodes[0].g, "ghost", &gm), GOSSIP_ENOTFOUND);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_UNSOLICITED), 1);

    build_items(&w, 0, 1); /* as if answering a reply of ours */
    deliver(net, 0, &net->nodes[2].addr, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    build_items(&w, 0x4, 1); /* as if answering our wants */
    deliver(net, 0, &net->nodes[2].addr, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_null(fakenet_item(&net->nodes[0], "pushed/0"));
    assert_int_equal(drops(net, 0, GOSSIP_DROP_UNSOLICITED), 3);

    /* a gossiped big item travels alone: a list of them is refused whole */
    build_items(&w, 0x8, 2);
    deliver(net, 0, &net->nodes[2].addr, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_null(fakenet_item(&net->nodes[0], "pushed/1"));
    build_items(&w, 0x8, 1);
    deliver(net, 0, &net->nodes[2].addr, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_non_null(fakenet_item(&net->nodes[0], "pushed/0"));

    /* honest exchanges still repair: an item only node 1 holds reaches everyone */
    assert_int_equal(fakenet_publish(net, 1, "late", 3, "v", 1), 0);
    fakenet_run(net, 70000);
    assert_true(fakenet_item_everywhere(net, "late", 3));
    fakenet_free(net);
}

/* The sparse item digest ((index, hash) pairs, 9 bytes each) has one form: indices strictly
 * increasing, a whole number of pairs, fewer than the dense 2048 bytes. Anything else in a
 * reply we wait for is malformed; a well-formed one is taken. */
static void test_sparse_digest_is_checked(void **state)
{
    struct fakenet *net = keyed_cluster(2);
    struct gossip_addr peer = {.family = 4, .ip = {10, 200, 0, 1}, .port = 7946};
    static uint8_t bad[4][GOSSIP_PP_BUCKETS * 8 + 9];
    const size_t bad_len[4] = {18, 18, 10, sizeof(bad[3])};
    uint8_t good[18] = {0};
    struct gwbuf w;
    uint64_t before;

    (void)state;
    bad[0][0] = 5; /* indices 5 then 3 */
    bad[0][9] = 3;
    bad[1][0] = 4; /* index 4 twice */
    bad[1][9] = 4;
    for (size_t i = 0; i < 4; i++) { /* 10 bytes: not pairs; 2057: neither form */
        gossip_pushpull_expect(net->nodes[0].g, &peer, GPP_DIGEST_SENT);
        reply_digest = bad[i];
        reply_digest_len = bad_len[i];
        build_reply(&w, "node-9", false, 0);
        before = drops(net, 0, GOSSIP_DROP_MALFORMED);
        deliver(net, 0, &peer, w.data, w.len, true);
        gwbuf_free_dynamic(&w);
        assert_int_equal(drops(net, 0, GOSSIP_DROP_MALFORMED), before + 1);
    }
    good[0] = 3;
    good[1] = 1;
    good[9] = 200;
    good[10] = 1;
    gossip_pushpull_expect(net->nodes[0].g, &peer, GPP_DIGEST_SENT);
    reply_digest = good;
    reply_digest_len = sizeof(good);
    build_reply(&w, "node-9", false, 0);
    before = drops(net, 0, GOSSIP_DROP_MALFORMED);
    deliver(net, 0, &peer, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_MALFORMED), before);
    reply_digest = NULL;
    fakenet_free(net);
}

/* A reply listing more entries than any fleet has is refused before anything is allocated for
 * it, even inside an exchange we started; one of ordinary size is answered. */
static void test_oversized_reply_is_refused_before_allocation(void **state)
{
    struct fakenet *net = keyed_cluster(2);
    struct gossip_addr peer = {.family = 4, .ip = {10, 200, 0, 1}, .port = 7946};
    uint64_t before;
    struct gwbuf w;

    (void)state;
    gossip_pushpull_start(net->nodes[0].g, &peer, false);
    build_reply(&w, "node-9", false, GOSSIP_PP_ENTRIES_MAX + 1);
    before = drops(net, 0, GOSSIP_DROP_OVERSIZE);
    deliver(net, 0, &peer, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_OVERSIZE), before + 1);
    /* the same answer again: the exchange is over */
    build_reply(&w, "node-9", false, 1);
    deliver(net, 0, &peer, w.data, w.len, true);
    gwbuf_free_dynamic(&w);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_UNSOLICITED), 1);
    fakenet_free(net);
}

/* A captured packet sent again is refused before it is decrypted or parsed: a replayed
 * push-pull costs a hash lookup, not a member-list merge. */
static void test_replayed_envelopes_are_refused(void **state)
{
    struct fakenet *net = keyed_cluster(3);
    uint8_t body[GOSSIP_UDP_MAX], sealed[GOSSIP_UDP_MAX], *big;
    struct gmsg m;
    struct gwbuf w, r;
    int n, nb;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_PING;
    m.seq = 77;
    snprintf(m.id, sizeof(m.id), "node-0");
    snprintf(m.from, sizeof(m.from), "node-2");
    gwbuf_init_fixed(&w, body, sizeof(body) - 128);
    assert_int_equal(gproto_encode(&w, &m), 0);
    n = gossip_debug_seal(net->nodes[0].g, body, w.len, sealed, sizeof(sealed));
    assert_true(n > 0);
    gossip_receive(net->nodes[0].g, &net->nodes[2].addr, sealed, (size_t)n, false);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_REPLAY), 0);
    for (int i = 0; i < 100; i++)
        gossip_receive(net->nodes[0].g, &net->nodes[2].addr, sealed, (size_t)n, false);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_REPLAY), 100);

    /* a push-pull message: parsed once (and refused there as unsolicited), then never again */
    build_reply(&r, "node-2", true, 1000);
    big = malloc(r.len + 256);
    assert_non_null(big);
    nb = gossip_debug_seal(net->nodes[0].g, r.data, r.len, big, r.len + 256);
    assert_true(nb > 0);
    for (int i = 0; i < 50; i++)
        gossip_receive(net->nodes[0].g, &net->nodes[2].addr, big, (size_t)nb, true);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_UNSOLICITED), 1);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_REPLAY), 149);
    free(big);
    gwbuf_free_dynamic(&r);

    /* a capture older than the window is refused even the first time this member sees it (as
     * `clock`: it cannot tell a late capture from a sender whose clock is that far off) */
    n = gossip_debug_seal(net->nodes[1].g, body, w.len, sealed, sizeof(sealed));
    fakenet_run(net, GOSSIP_REPLAY_WINDOW_MS + 1000);
    gossip_receive(net->nodes[0].g, &net->nodes[2].addr, sealed, (size_t)n, false);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_REPLAY), 149);
    assert_int_equal(drops(net, 0, GOSSIP_DROP_CLOCK), 1);
    assert_true(fakenet_converged(net, 3));
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_incarnation_cannot_silence_a_member),
        cmocka_unit_test(test_forged_leave_is_refuted),
        cmocka_unit_test(test_unsolicited_pushpull_is_dropped),
        cmocka_unit_test(test_sparse_digest_is_checked),
        cmocka_unit_test(test_oversized_reply_is_refused_before_allocation),
        cmocka_unit_test(test_replayed_envelopes_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
