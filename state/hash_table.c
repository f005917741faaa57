/*
 * hash_table.c - the chained hash table behind every table keyed by remote input (state.h,
 * "keyed hash table").
 *
 * Why one table: the project had six hand-written copies of the same insert/find/rehash
 * loops, and one of them (the fqdn checks) was a linear array. Keys that come from the
 * network can be chosen to collide under a known hash, so every table hashes with SipHash
 * (siphash.c) under its own random key, and every table states how many entries it may hold:
 * an insert beyond that is refused with STATE_EFULL rather than growing memory without end.
 *
 * Design: intrusive, as the Linux hlist and liburcu's cds_lfht are. The entry embeds a
 * struct state_hash_node, so an entry costs no allocation of the table's own and one entry
 * type can sit in several tables. The node keeps its hash: a rehash needs no callback into
 * the caller, and a lookup compares keys only when the 64-bit hashes are equal. Buckets are
 * a power of two, allocated on the first insert (an unused table costs nothing), doubled when
 * entries outnumber them, halved on request (state_hash_table_shrink) when they are mostly
 * empty. A failed growth keeps the old buckets: lookups get slower, nothing breaks.
 */
#include <stdlib.h>

#include "state/state.h"

#define HASH_TABLE_MIN_BUCKETS 8

void state_hash_table_init(struct state_hash_table *t, size_t min_buckets, size_t max_entries)
{
    size_t n = HASH_TABLE_MIN_BUCKETS;

    while (n < min_buckets && n <= SIZE_MAX / 4)
        n *= 2;
    t->buckets = NULL;
    t->bucket_count = 0;
    t->min_buckets = n;
    t->count = 0;
    t->max = max_entries;
    state_siphash_key(t->key);
}

void state_hash_table_fini(struct state_hash_table *t)
{
    free(t->buckets);
    t->buckets = NULL;
    t->bucket_count = 0;
    t->count = 0;
}

void state_hash_table_free_all(struct state_hash_table *t, size_t node_offset)
{
    for (size_t b = 0; b < t->bucket_count; b++) {
        struct state_hash_node *n = t->buckets[b], *next;

        for (; n != NULL; n = next) {
            next = n->next;
            free((char *)n - node_offset);
        }
    }
    state_hash_table_fini(t);
}

uint64_t state_hash_table_hash(const struct state_hash_table *t, const void *key, size_t len)
{
    return state_siphash(t->key, key, len);
}

/* Relinks every node into `count` buckets; on allocation failure nothing changes. */
static int table_resize(struct state_hash_table *t, size_t count)
{
    struct state_hash_node **buckets = calloc(count, sizeof(*buckets));

    if (buckets == NULL)
        return STATE_ENOMEM;
    for (size_t b = 0; b < t->bucket_count; b++) {
        struct state_hash_node *n = t->buckets[b], *next;

        for (; n != NULL; n = next) {
            next = n->next;
            n->next = buckets[n->hash & (count - 1)];
            buckets[n->hash & (count - 1)] = n;
        }
    }
    free(t->buckets);
    t->buckets = buckets;
    t->bucket_count = count;
    return 0;
}

struct state_hash_node *state_hash_table_find(const struct state_hash_table *t, uint64_t hash,
                                              state_hash_eq_fn eq, const void *key)
{
    if (t->bucket_count == 0)
        return NULL;
    for (struct state_hash_node *n = t->buckets[hash & (t->bucket_count - 1)]; n; n = n->next)
        if (n->hash == hash && eq(n, key))
            return n;
    return NULL;
}

int state_hash_table_insert(struct state_hash_table *t, struct state_hash_node *node, uint64_t hash)
{
    struct state_hash_node **head;

    if (t->count >= t->max)
        return STATE_EFULL;
    if (t->bucket_count == 0 && table_resize(t, t->min_buckets) != 0)
        return STATE_ENOMEM;
    if (t->count >= t->bucket_count && t->bucket_count <= SIZE_MAX / (2 * sizeof(*head)))
        table_resize(t, t->bucket_count * 2); /* on failure: longer chains */
    node->hash = hash;
    head = &t->buckets[hash & (t->bucket_count - 1)];
    node->next = *head;
    *head = node;
    t->count++;
    return 0;
}

bool state_hash_table_full(const struct state_hash_table *t)
{
    return t->count >= t->max;
}

void state_hash_table_remove(struct state_hash_table *t, struct state_hash_node *node)
{
    struct state_hash_node **pp = &t->buckets[node->hash & (t->bucket_count - 1)];

    while (*pp != NULL && *pp != node)
        pp = &(*pp)->next;
    if (*pp == node) {
        *pp = node->next;
        node->next = NULL;
        t->count--;
    }
}

void state_hash_table_shrink(struct state_hash_table *t)
{
    if (t->bucket_count > t->min_buckets && t->count < t->bucket_count / 8)
        table_resize(t, t->bucket_count / 2);
}

/* The first node in buckets from..end, with *bucket set to its bucket; NULL when none. */
static struct state_hash_node *first_from(const struct state_hash_table *t, size_t from,
                                          size_t *bucket)
{
    for (size_t b = from; b < t->bucket_count; b++) {
        if (t->buckets[b] != NULL) {
            *bucket = b;
            return t->buckets[b];
        }
    }
    *bucket = t->bucket_count;
    return NULL;
}

struct state_hash_node *state_hash_table_first(const struct state_hash_table *t, size_t *bucket)
{
    return first_from(t, 0, bucket);
}

struct state_hash_node *state_hash_table_next(const struct state_hash_table *t,
                                              const struct state_hash_node *node, size_t *bucket)
{
    if (node->next != NULL)
        return node->next;
    return first_from(t, *bucket + 1, bucket);
}
