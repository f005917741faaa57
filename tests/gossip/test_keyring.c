/*
 * test_keyring.c - rotating the cluster key of a running fleet on the fake network.
 *
 * Four members share key A. Three roll to key B one member at a time (install B, make B
 * primary, remove A): at every step they stay alive in every view, no packet fails to decrypt,
 * and a new item reaches them all. The fourth, down during the rotation, comes back with only
 * A: its packets are dropped and counted as "decrypt", it sees nobody and gets no item. Refusals
 * (plain <-> encrypted, repeated key, too many keys) leave the running keyring untouched.
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

#define ROTATING 3 /* members 0..2 rotate, member 3 keeps only key A */

static void key_fill(uint8_t key[GOSSIP_KEY_LEN], uint8_t v)
{
    for (size_t i = 0; i < GOSSIP_KEY_LEN; i++)
        key[i] = (uint8_t)(v + i);
}

static struct gossip_keyring ring_of(const uint8_t *k1, const uint8_t *k2)
{
    struct gossip_keyring kr = {.count = 0};

    memcpy(kr.keys[kr.count++], k1, GOSSIP_KEY_LEN);
    if (k2)
        memcpy(kr.keys[kr.count++], k2, GOSSIP_KEY_LEN);
    return kr;
}

static uint64_t decrypt_drops(struct fakenet *net, size_t idx)
{
    struct gossip_stats st;

    gossip_stats_get(net->nodes[idx].g, &st);
    return st.drops[GOSSIP_DROP_DECRYPT];
}

/* Every rotating member sees every rotating member alive. */
static void assert_rotating_alive(struct fakenet *net)
{
    for (size_t v = 0; v < ROTATING; v++)
        for (size_t s = 0; s < ROTATING; s++)
            if (v != s)
                assert_int_equal(fakenet_state(net, v, s), GOSSIP_ALIVE);
}

/* Runs ms of protocol, checking the rotating members' views every 100 ms. */
static void run_checked(struct fakenet *net, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += 100) {
        fakenet_run(net, 100);
        assert_rotating_alive(net);
    }
}

struct spread_arg {
    const char *key;
    size_t n; /* members 0..n-1 must hold it */
};

static bool spread_to(struct fakenet *net, void *arg)
{
    struct spread_arg *a = arg;

    for (size_t i = 0; i < a->n; i++)
        if (!fakenet_item(&net->nodes[i], a->key))
            return false;
    return true;
}

static void publish_and_spread(struct fakenet *net, const char *key, size_t n)
{
    struct spread_arg a = {key, n};

    assert_int_equal(fakenet_publish(net, 0, key, 1, "v", 1), 0);
    assert_true(fakenet_run_until(net, spread_to, &a, 10, 10000) != UINT64_MAX);
}

/* One round of a rolling rotation: member by member, a second of protocol between each. */
static void roll(struct fakenet *net, const struct gossip_keyring *kr)
{
    char err[GOSSIP_ERR_MAX];

    for (size_t i = 0; i < ROTATING; i++) {
        assert_int_equal(gossip_set_keyring(net->nodes[i].g, kr, err, sizeof(err)), 0);
        run_checked(net, 1000);
    }
}

static void test_rolling_rotation_keeps_fleet_and_cuts_off_laggard(void **state)
{
    struct fakenet *net = fakenet_new(ROTATING + 1, 77);
    uint8_t a[GOSSIP_KEY_LEN], b[GOSSIP_KEY_LEN];
    struct gossip_keyring only_a, a_then_b, b_then_a, only_b;
    struct gossip_stats st;
    struct gossip_config cfg;
    uint64_t susp[ROTATING];

    (void)state;
    key_fill(a, 1);
    key_fill(b, 101);
    only_a = ring_of(a, NULL);
    a_then_b = ring_of(a, b);
    b_then_a = ring_of(b, a);
    only_b = ring_of(b, NULL);
    for (size_t i = 0; i <= ROTATING; i++) {
        fakenet_config(net, i, &cfg);
        cfg.keyring = only_a;
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
        if (i > 0)
            assert_int_equal(gossip_join(net->nodes[i].g, &net->nodes[0].addr, 1), 0);
    }
    for (int s = 0; s < 300 && !fakenet_converged(net, ROTATING + 1); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, ROTATING + 1));
    fakenet_run(net, 10000); /* let join chatter settle */
    run_checked(net, 5000);
    for (size_t i = 0; i < ROTATING; i++)
        susp[i] = net->nodes[i].suspicions_seen;

    roll(net, &a_then_b); /* 1. install B everywhere: A still encrypts */
    publish_and_spread(net, "after-install", ROTATING + 1);
    assert_true(fakenet_converged(net, ROTATING + 1));
    for (size_t i = 0; i < ROTATING; i++)
        assert_int_equal(net->nodes[i].suspicions_seen, susp[i]);

    /* The laggard goes down for the rest of the rotation (it would be cut off as soon as the
     * first member encrypts with B; its suspicions would only add noise here). */
    fakenet_kill(net, ROTATING);
    roll(net, &b_then_a); /* 2. B encrypts, A still decrypts */
    publish_and_spread(net, "after-use", ROTATING);
    roll(net, &only_b); /* 3. remove A */
    publish_and_spread(net, "after-remove", ROTATING);
    run_checked(net, 5000);
    for (size_t i = 0; i < ROTATING; i++)
        assert_int_equal(decrypt_drops(net, i), 0);

    /* The laggard comes back with only A: nobody can read it, it can read nobody. */
    fakenet_config(net, ROTATING, &cfg);
    cfg.keyring = only_a;
    assert_int_equal(fakenet_start(net, ROTATING, &cfg), 0);
    assert_int_equal(gossip_join(net->nodes[ROTATING].g, &net->nodes[0].addr, 1), 0);
    run_checked(net, 20000);
    assert_true(decrypt_drops(net, 0) > 0); /* its join, pings and gossip */
    gossip_stats_get(net->nodes[ROTATING].g, &st);
    assert_int_equal(st.members_alive, 1); /* itself */
    assert_null(fakenet_item(&net->nodes[ROTATING], "after-remove"));
    for (size_t i = 0; i < ROTATING; i++)
        assert_int_not_equal(fakenet_state(net, i, ROTATING), GOSSIP_ALIVE);
    fakenet_free(net);
}

static void test_refusals_keep_running_keyring(void **state)
{
    struct fakenet *net = fakenet_new(2, 5);
    struct gossip_config cfg;
    struct gossip_keyring kr, got, empty = {.count = 0};
    uint8_t a[GOSSIP_KEY_LEN], b[GOSSIP_KEY_LEN];
    char err[GOSSIP_ERR_MAX];

    (void)state;
    key_fill(a, 1);
    key_fill(b, 2);
    fakenet_config(net, 0, &cfg);
    cfg.keyring = ring_of(a, NULL);
    assert_int_equal(fakenet_start(net, 0, &cfg), 0);
    fakenet_config(net, 1, &cfg); /* plain */
    assert_int_equal(fakenet_start(net, 1, &cfg), 0);

    assert_int_equal(gossip_set_keyring(net->nodes[0].g, &empty, err, sizeof(err)), GOSSIP_EINVAL);
    assert_non_null(strstr(err, "from encrypted to plain"));
    kr = ring_of(a, NULL);
    assert_int_equal(gossip_set_keyring(net->nodes[1].g, &kr, err, sizeof(err)), GOSSIP_EINVAL);
    assert_non_null(strstr(err, "from plain to encrypted"));
    kr = ring_of(b, b);
    assert_int_equal(gossip_set_keyring(net->nodes[0].g, &kr, err, sizeof(err)), GOSSIP_EINVAL);
    assert_non_null(strstr(err, "repeats"));
    kr.count = GOSSIP_KEYS_MAX + 1;
    assert_int_equal(gossip_set_keyring(net->nodes[0].g, &kr, err, sizeof(err)), GOSSIP_EINVAL);

    gossip_keyring_get(net->nodes[0].g, &got);
    assert_int_equal(got.count, 1);
    assert_memory_equal(got.keys[0], a, GOSSIP_KEY_LEN);
    assert_int_equal(gossip_set_keyring(net->nodes[1].g, &empty, err, sizeof(err)), 0);
    fakenet_free(net);
}

static void test_fingerprint_names_key_without_revealing_it(void **state)
{
    uint8_t a[GOSSIP_KEY_LEN], b[GOSSIP_KEY_LEN];
    char fa[GOSSIP_KEY_FPR_LEN + 1], fb[GOSSIP_KEY_FPR_LEN + 1], fa2[GOSSIP_KEY_FPR_LEN + 1];

    (void)state;
    memset(a, 0, sizeof(a));
    key_fill(b, 1);
    gossip_key_fingerprint(a, fa);
    gossip_key_fingerprint(b, fb);
    gossip_key_fingerprint(a, fa2);
    assert_int_equal(strlen(fa), GOSSIP_KEY_FPR_LEN);
    assert_string_equal(fa, fa2);
    assert_string_not_equal(fa, fb);
    /* SHA-256 of 32 zero bytes starts 66687aadf862bd77 */
    assert_string_equal(fa, "66687aadf862bd77");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rolling_rotation_keeps_fleet_and_cuts_off_laggard),
        cmocka_unit_test(test_refusals_keep_running_keyring),
        cmocka_unit_test(test_fingerprint_names_key_without_revealing_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
