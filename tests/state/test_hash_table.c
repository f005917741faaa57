/*
 * test_hash_table.c - the keyed, bounded table every remote-keyed table uses (hash_table.c):
 * insert, find, remove, growth by rehash, the entry bound, shrinking, iteration that removes
 * as it goes, entries whose hashes collide, and a random key per table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "state/state.h"

struct item {
    struct state_hash_node node; /* in the table */
    char name[32];               /* the key */
    int seen;                    /* visits by an iteration */
};

static bool item_is(const struct state_hash_node *n, const void *key)
{
    return strcmp(STATE_HASH_ENTRY(n, struct item, node)->name, key) == 0;
}

static uint64_t hash_of(const struct state_hash_table *t, const char *name)
{
    return state_hash_table_hash(t, name, strlen(name));
}

static struct item *find(const struct state_hash_table *t, const char *name)
{
    struct state_hash_node *n = state_hash_table_find(t, hash_of(t, name), item_is, name);

    return n ? STATE_HASH_ENTRY(n, struct item, node) : NULL;
}

/* n items named "item-I", inserted into t. */
static struct item *fill(struct state_hash_table *t, size_t n)
{
    struct item *items = calloc(n, sizeof(*items));

    assert_non_null(items);
    for (size_t i = 0; i < n; i++) {
        snprintf(items[i].name, sizeof(items[i].name), "item-%zu", i);
        assert_int_equal(state_hash_table_insert(t, &items[i].node, hash_of(t, items[i].name)), 0);
    }
    return items;
}

static void test_insert_find_remove(void **state)
{
    struct state_hash_table t;
    struct item *items;

    (void)state;
    state_hash_table_init(&t, 16, 100);
    assert_null(find(&t, "item-0")); /* empty: no buckets yet, still answers */
    assert_null(t.buckets);
    items = fill(&t, 10);
    assert_int_equal(t.count, 10);
    for (size_t i = 0; i < 10; i++)
        assert_ptr_equal(find(&t, items[i].name), &items[i]);
    assert_null(find(&t, "item-10"));
    state_hash_table_remove(&t, &items[3].node);
    assert_int_equal(t.count, 9);
    assert_null(find(&t, "item-3"));
    assert_ptr_equal(find(&t, "item-4"), &items[4]);
    assert_int_equal(state_hash_table_insert(&t, &items[3].node, hash_of(&t, "item-3")), 0);
    assert_ptr_equal(find(&t, "item-3"), &items[3]);
    state_hash_table_fini(&t);
    free(items);
}

static void test_grows_by_rehash(void **state)
{
    struct state_hash_table t;
    struct item *items;

    (void)state;
    state_hash_table_init(&t, 8, 5000);
    items = fill(&t, 8);
    assert_int_equal(t.bucket_count, 8);
    state_hash_table_fini(&t);
    free(items);

    state_hash_table_init(&t, 8, 5000);
    items = fill(&t, 5000);
    /* doubled whenever entries outnumbered buckets: 4096 < 5000 entries <= 8192 buckets */
    assert_int_equal(t.bucket_count, 8192);
    for (size_t i = 0; i < 5000; i++)
        assert_ptr_equal(find(&t, items[i].name), &items[i]);
    state_hash_table_fini(&t);
    free(items);
}

static void test_bound_refuses(void **state)
{
    struct state_hash_table t;
    struct item *items, last = {.name = "last"}, extra = {.name = "extra"};

    (void)state;
    state_hash_table_init(&t, 8, 50);
    items = fill(&t, 49);
    assert_false(state_hash_table_full(&t));
    assert_int_equal(state_hash_table_insert(&t, &last.node, hash_of(&t, last.name)), 0);
    assert_true(state_hash_table_full(&t));
    assert_int_equal(state_hash_table_insert(&t, &extra.node, hash_of(&t, extra.name)),
                     STATE_EFULL);
    assert_int_equal(t.count, 50);
    assert_null(find(&t, "extra"));
    /* room again once one leaves */
    state_hash_table_remove(&t, &items[0].node);
    assert_int_equal(state_hash_table_insert(&t, &extra.node, hash_of(&t, extra.name)), 0);
    assert_ptr_equal(find(&t, "extra"), &extra);
    state_hash_table_fini(&t);
    free(items);
}

static void test_iteration_removes_as_it_goes(void **state)
{
    struct state_hash_table t;
    struct state_hash_node *n, *next;
    struct item *items;
    size_t bucket, visited = 0;

    (void)state;
    state_hash_table_init(&t, 8, 1000);
    items = fill(&t, 1000);
    STATE_HASH_TABLE_EACH (&t, n, next, bucket) {
        struct item *it = STATE_HASH_ENTRY(n, struct item, node);

        it->seen++;
        visited++;
        if (strlen(it->name) % 2 == 0) /* kept; "item-10".."item-99" (7 characters) go */
            continue;
        state_hash_table_remove(&t, n);
    }
    assert_int_equal(visited, 1000);
    for (size_t i = 0; i < 1000; i++) {
        assert_int_equal(items[i].seen, 1);
        if (strlen(items[i].name) % 2 == 0)
            assert_ptr_equal(find(&t, items[i].name), &items[i]);
        else
            assert_null(find(&t, items[i].name));
    }
    assert_int_equal(t.count, 10 + 900); /* "item-0".."item-9" and "item-100".."item-999" */
    visited = 0;
    STATE_HASH_TABLE_EACH (&t, n, next, bucket)
        visited++;
    assert_int_equal(visited, t.count);
    state_hash_table_fini(&t);
    free(items);
}

static void test_shrink(void **state)
{
    struct state_hash_table t;
    struct item *items;

    (void)state;
    state_hash_table_init(&t, 64, 1024);
    items = fill(&t, 1024);
    assert_int_equal(t.bucket_count, 1024);
    state_hash_table_shrink(&t); /* full: stays */
    assert_int_equal(t.bucket_count, 1024);
    for (size_t i = 0; i < 1000; i++)
        state_hash_table_remove(&t, &items[i].node);
    state_hash_table_shrink(&t);
    assert_int_equal(t.bucket_count, 512);
    for (int i = 0; i < 10; i++)
        state_hash_table_shrink(&t);
    assert_int_equal(t.bucket_count, 128); /* 24 entries: an eighth of 128 is less */
    for (size_t i = 1000; i < 1020; i++)
        state_hash_table_remove(&t, &items[i].node);
    for (int i = 0; i < 10; i++)
        state_hash_table_shrink(&t);
    assert_int_equal(t.bucket_count, 64); /* min_buckets */
    for (size_t i = 1020; i < 1024; i++)
        assert_ptr_equal(find(&t, items[i].name), &items[i]);
    state_hash_table_fini(&t);
    free(items);
}

static void test_colliding_hashes(void **state)
{
    struct state_hash_table t;
    struct item a = {.name = "a"}, b = {.name = "b"};

    (void)state;
    state_hash_table_init(&t, 8, 10);
    /* two keys under one hash value: equality, not the hash, tells them apart */
    assert_int_equal(state_hash_table_insert(&t, &a.node, 42), 0);
    assert_int_equal(state_hash_table_insert(&t, &b.node, 42), 0);
    assert_ptr_equal(state_hash_table_find(&t, 42, item_is, "a"), &a.node);
    assert_ptr_equal(state_hash_table_find(&t, 42, item_is, "b"), &b.node);
    assert_null(state_hash_table_find(&t, 42, item_is, "c"));
    assert_null(state_hash_table_find(&t, 43, item_is, "a"));
    state_hash_table_remove(&t, &a.node);
    assert_null(state_hash_table_find(&t, 42, item_is, "a"));
    assert_ptr_equal(state_hash_table_find(&t, 42, item_is, "b"), &b.node);
    state_hash_table_fini(&t);
}

/* An entry whose node is not at its start, freed by free_all (ASan reports a leak or a bad
 * free if the offset is ignored). */
struct boxed {
    char name[24];               /* the key */
    struct state_hash_node node; /* in the table */
};

static void test_free_all(void **state)
{
    struct state_hash_table t;

    (void)state;
    state_hash_table_init(&t, 8, 100);
    for (int i = 0; i < 100; i++) {
        struct boxed *b = calloc(1, sizeof(*b));

        assert_non_null(b);
        snprintf(b->name, sizeof(b->name), "boxed-%d", i);
        assert_int_equal(state_hash_table_insert(&t, &b->node, hash_of(&t, b->name)), 0);
    }
    state_hash_table_free_all(&t, offsetof(struct boxed, node));
    assert_int_equal(t.count, 0);
    assert_null(t.buckets);
    assert_null(find(&t, "boxed-0"));
}

static void test_key_per_table(void **state)
{
    struct state_hash_table t1, t2;

    (void)state;
    state_hash_table_init(&t1, 8, 1);
    state_hash_table_init(&t2, 8, 1);
    /* a random key each: what collides in one table does not in another */
    assert_memory_not_equal(t1.key, t2.key, sizeof(t1.key));
    assert_true(hash_of(&t1, "example.org") != hash_of(&t2, "example.org"));
    assert_true(hash_of(&t1, "example.org") == hash_of(&t1, "example.org"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_insert_find_remove),
        cmocka_unit_test(test_grows_by_rehash),
        cmocka_unit_test(test_bound_refuses),
        cmocka_unit_test(test_iteration_removes_as_it_goes),
        cmocka_unit_test(test_shrink),
        cmocka_unit_test(test_colliding_hashes),
        cmocka_unit_test(test_free_all),
        cmocka_unit_test(test_key_per_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
