/*
 * test_queue.c - the dissemination queue: what goes out first, how often, what replaces what.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "gossip/gossip_int.h"

static void put(struct gqueue *q, const char *key, uint64_t version, const char *msg)
{
    assert_int_equal(gq_put(q, key, version, (const uint8_t *)msg, strlen(msg)), 0);
}

/* Picks entries for one packet of `room` bytes and marks them sent; returns them joined. */
static void packet(struct gqueue *q, uint32_t limit, size_t room, char *out, size_t outlen)
{
    struct gq_entry *picked[64];
    size_t n = 0;

    out[0] = '\0';
    gq_begin(q);
    for (struct gq_entry *e; n < 64 && (e = gq_pick(q, limit, room)) != NULL; n++) {
        room -= e->len;
        picked[n] = e;
        strncat(out, (const char *)e->msg, e->len < outlen - strlen(out) - 2 ? e->len : 0);
        strcat(out, " ");
    }
    for (size_t i = 0; i < n; i++)
        gq_sent(q, picked[i], limit);
}

static void test_least_sent_then_newest_first(void **state)
{
    struct gqueue q;
    char out[256];

    (void)state;
    assert_int_equal(gq_init(&q, 100), 0);
    put(&q, "a", 1, "A");
    put(&q, "b", 1, "B");
    packet(&q, 3, 1, out, sizeof(out)); /* room for one: the newest */
    assert_string_equal(out, "B ");
    put(&q, "c", 1, "C");
    packet(&q, 3, 2, out, sizeof(out)); /* never sent before B's second time */
    assert_string_equal(out, "C A ");
    gq_destroy(&q);
}

static void test_sent_limit_times_then_gone(void **state)
{
    struct gqueue q;
    char out[256];

    (void)state;
    assert_int_equal(gq_init(&q, 100), 0);
    put(&q, "a", 1, "A");
    for (int i = 0; i < 4; i++) {
        packet(&q, 4, 100, out, sizeof(out));
        assert_string_equal(out, "A ");
    }
    packet(&q, 4, 100, out, sizeof(out));
    assert_string_equal(out, "");
    assert_int_equal(q.count, 0);
    gq_destroy(&q);
}

static void test_newer_replaces_older_never_the_reverse(void **state)
{
    struct gqueue q;
    char out[256];

    (void)state;
    assert_int_equal(gq_init(&q, 100), 0);
    put(&q, "name", 5, "v5");
    put(&q, "name", 4, "v4"); /* late older version: ignored */
    put(&q, "name", 6, "v6");
    assert_int_equal(q.count, 1);
    packet(&q, 4, 100, out, sizeof(out));
    assert_string_equal(out, "v6 ");
    gq_remove(&q, "name");
    assert_int_equal(q.count, 0);
    gq_destroy(&q);
}

static void test_bounded_evicts_most_sent(void **state)
{
    struct gqueue q;
    char key[16], out[256];

    (void)state;
    assert_int_equal(gq_init(&q, 3), 0);
    put(&q, "old", 1, "O");
    packet(&q, 10, 100, out, sizeof(out)); /* "old" now sent once */
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        put(&q, key, 1, key);
    }
    assert_int_equal(q.count, 3);
    assert_int_equal(q.evicted, 1);
    packet(&q, 10, 100, out, sizeof(out));
    assert_null(strstr(out, "O"));
    gq_destroy(&q);
}

static void test_many_keys_grow_the_index(void **state)
{
    struct gqueue q;
    char key[32];

    (void)state;
    assert_int_equal(gq_init(&q, 100000), 0);
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "member-%d", i);
        put(&q, key, 1, "m");
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "member-%d", i);
        put(&q, key, 2, "n"); /* replaces: still 5000 */
    }
    assert_int_equal(q.count, 5000);
    gq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_least_sent_then_newest_first),
        cmocka_unit_test(test_sent_limit_times_then_gone),
        cmocka_unit_test(test_newer_replaces_older_never_the_reverse),
        cmocka_unit_test(test_bounded_evicts_most_sent),
        cmocka_unit_test(test_many_keys_grow_the_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
