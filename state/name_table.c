/*
 * name_table.c - the container behind struct state_names: a chained hash table of keys, each
 * with every owner's latest record (name_private.h), plus what reads the table without changing
 * its meaning: lookups, sorted iteration, counters, the digest and tombstone collection.
 *
 * The merge rules themselves (which record an owner keeps, who holds a key) live in
 * name_merge.c; this file only derives views from what merge stored.
 *
 * The table is state's keyed hash table (hash_table.c): a per-table random key, so names
 * chosen by an attacker cannot pile into one bucket (hash flooding); the key never leaves the
 * process, so nothing that other nodes see depends on it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/name_private.h"

#define NAME_TABLE_INITIAL_BUCKETS 64

/* ---- table ------------------------------------------------------------------------------ */

/* Keys and owners are bounded by the growth limits the node applies before a record takes a
 * new place (state_names_quota, --max-records); the tables themselves must take whatever a
 * replay of the accepted log holds, so they set no bound of their own. */
struct state_names *state_names_new(void)
{
    struct state_names *names = calloc(1, sizeof(*names));

    if (names == NULL)
        return NULL;
    state_hash_table_init(&names->keys, NAME_TABLE_INITIAL_BUCKETS, SIZE_MAX);
    state_hash_table_init(&names->owners, NAME_TABLE_INITIAL_BUCKETS, SIZE_MAX);
    return names;
}

static void key_free(struct name_key *k)
{
    for (uint8_t i = 0; i < k->claim_count; i++)
        name_claim_free(k->claims[i]);
    if (k->claims != &k->one)
        free(k->claims);
    free(k);
}

void state_names_free(struct state_names *names)
{
    struct state_hash_node *n, *next;
    size_t bucket;

    if (names == NULL)
        return;
    STATE_HASH_TABLE_EACH (&names->keys, n, next, bucket)
        key_free(STATE_HASH_ENTRY(n, struct name_key, node));
    state_hash_table_fini(&names->keys);
    name_owner_free_all(names);
    free(names);
}

static bool key_is(const struct state_hash_node *n, const void *name)
{
    return strcmp(STATE_HASH_ENTRY(n, struct name_key, node)->name, name) == 0;
}

struct name_key *name_table_find(const struct state_names *names, const char *key)
{
    size_t len = strnlen(key, STATE_FQDN_MAX + 1);
    struct state_hash_node *n;

    if (len > STATE_FQDN_MAX)
        return NULL;
    n = state_hash_table_find(&names->keys, state_hash_table_hash(&names->keys, key, len), key_is,
                              key);
    return n ? STATE_HASH_ENTRY(n, struct name_key, node) : NULL;
}

struct name_key *name_table_upsert(struct state_names *names, const char *key)
{
    size_t len = strnlen(key, STATE_FQDN_MAX + 1);
    struct name_key *k;

    if (len > STATE_FQDN_MAX)
        return NULL;
    k = name_table_find(names, key);
    if (k != NULL)
        return k;
    k = calloc(1, sizeof(*k) + len + 1);
    if (k == NULL)
        return NULL;
    memcpy(k->name, key, len + 1);
    if (state_hash_table_insert(&names->keys, &k->node,
                                state_hash_table_hash(&names->keys, key, len)) != 0) {
        free(k);
        return NULL;
    }
    return k;
}

void name_table_remove(struct state_names *names, struct name_key *k)
{
    state_hash_table_remove(&names->keys, &k->node);
    key_free(k);
}

/* ---- derived view ----------------------------------------------------------------------- */

int name_key_holder(const struct state_names *names, const struct name_key *k)
{
    uint64_t best_time = 0, t;
    int best = -1;

    for (int i = 0; i < k->claim_count; i++) {
        const struct name_claim *c = k->claims[i];

        if (c->kind == STATE_RECORD_RELEASE || !name_claim_effective(names, c, &t))
            continue;
        if (best < 0 || t < best_time ||
            (t == best_time && memcmp(c->owner, k->claims[best]->owner, STATE_OWNER_LEN) < 0)) {
            best = i;
            best_time = t;
        }
    }
    return best;
}

/* The live claim a key shows while none has enough witnesses: the earliest owner-given claim
 * time, as the API's admission sees it (an owner may expose its own pending claim). */
static int key_first_pending(const struct name_key *k)
{
    int best = -1;

    for (int i = 0; i < k->claim_count; i++) {
        const struct name_claim *c = k->claims[i], *b = best >= 0 ? k->claims[best] : NULL;

        if (c->kind == STATE_RECORD_RELEASE)
            continue;
        if (b == NULL || c->reserved_at_ms < b->reserved_at_ms ||
            (c->reserved_at_ms == b->reserved_at_ms &&
             memcmp(c->owner, b->owner, STATE_OWNER_LEN) < 0))
            best = i;
    }
    return best;
}

/* The tombstone a released key shows: the newest release, owner bytes breaking ties. */
static int key_newest_release(const struct name_key *k)
{
    int best = -1;

    for (int i = 0; i < k->claim_count; i++) {
        const struct name_claim *c = k->claims[i];

        if (c->kind != STATE_RECORD_RELEASE)
            continue;
        if (best < 0 || c->issued_at_ms > k->claims[best]->issued_at_ms ||
            (c->issued_at_ms == k->claims[best]->issued_at_ms &&
             memcmp(c->owner, k->claims[best]->owner, STATE_OWNER_LEN) < 0))
            best = i;
    }
    return best;
}

void name_claim_to_record(const struct name_claim *c, const char *name, struct state_record *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = (enum state_record_kind)c->kind;
    snprintf(out->name, sizeof(out->name), "%s", name);
    memcpy(out->owner, c->owner, STATE_OWNER_LEN);
    out->version = c->version;
    out->reserved_at_ms = c->reserved_at_ms;
    out->issued_at_ms = c->issued_at_ms;
    out->tls_passthrough = c->tls_passthrough != 0;
    out->backend_count = c->backend_count;
    memcpy(out->backends, c->backends, c->backend_count * sizeof(c->backends[0]));
    memcpy(out->signature, c->signature, STATE_SIGNATURE_LEN);
}

void name_key_view(const struct state_names *names, const struct name_key *k,
                   struct state_name_view *out)
{
    int holder = name_key_holder(names, k);
    int pending = holder < 0 ? key_first_pending(k) : -1;
    int shown = holder >= 0 ? holder : pending >= 0 ? pending : key_newest_release(k);
    uint8_t live = 0;

    for (int i = 0; i < k->claim_count; i++)
        live += k->claims[i]->kind != STATE_RECORD_RELEASE;
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", k->name);
    out->held = holder >= 0;
    out->pending = pending >= 0;
    out->contenders = live > 0 ? (uint8_t)(live - 1) : 0;
    if (holder >= 0)
        name_claim_effective(names, k->claims[holder], &out->claimed_at_ms);
    if (shown >= 0) {
        name_claim_to_record(k->claims[shown], k->name, &out->record);
        out->witnesses = (uint8_t)name_claim_witnessed(k->claims[shown]);
    }
}

void name_table_account(struct state_names *names, const struct name_key *k, int sign)
{
    size_t held = 0, tomb = 0, fqdn = 0;
    uint64_t digest = 0;

    if (k->claim_count > 0) {
        bool live = false;

        for (int i = 0; i < k->claim_count; i++)
            live |= k->claims[i]->kind != STATE_RECORD_RELEASE;
        held = name_key_holder(names, k) >= 0;
        tomb = !live;
        fqdn = strchr(k->name, '.') != NULL;
    }
    for (int i = 0; i < k->claim_count; i++) {
        if (k->claims[i]->kind != STATE_RECORD_RELEASE)
            name_owner_count(names, k->claims[i]->owner, sign);
        digest += k->claims[i]->record_hash;
        for (int j = 0; j < k->claims[i]->witness_count; j++)
            digest += k->claims[i]->witnesses[j].hash;
    }
    if (sign > 0) {
        names->held_count += held;
        names->tombstone_count += tomb;
        names->fqdn_count += fqdn;
        names->record_count += k->claim_count;
        names->digest += digest;
    } else {
        names->held_count -= held;
        names->tombstone_count -= tomb;
        names->fqdn_count -= fqdn;
        names->record_count -= k->claim_count;
        names->digest -= digest;
    }
}

/* ---- reads ------------------------------------------------------------------------------ */

int state_names_get(const struct state_names *names, const char *key, struct state_name_view *out)
{
    const struct name_key *k = name_table_find(names, key);

    if (k == NULL || k->claim_count == 0)
        return STATE_ENOTFOUND;
    name_key_view(names, k, out);
    return 0;
}

int state_names_owner_record(const struct state_names *names, const char *key,
                             const uint8_t owner[STATE_OWNER_LEN], struct state_record *out)
{
    const struct name_key *k = name_table_find(names, key);

    for (uint8_t i = 0; k != NULL && i < k->claim_count; i++) {
        if (memcmp(k->claims[i]->owner, owner, STATE_OWNER_LEN) == 0) {
            name_claim_to_record(k->claims[i], k->name, out);
            return 0;
        }
    }
    return STATE_ENOTFOUND;
}

static int key_cmp(const void *a, const void *b)
{
    const struct name_key *ka = *(const struct name_key *const *)a;
    const struct name_key *kb = *(const struct name_key *const *)b;

    return strcmp(ka->name, kb->name);
}

/* All keys with claims, sorted by name, in a new array (NULL with *count 0 when empty).
 * Returns STATE_ENOMEM when the array cannot be allocated. */
static int sorted_keys(const struct state_names *names, struct name_key ***out, size_t *count)
{
    struct name_key **arr = NULL;
    size_t n = 0;

    struct state_hash_node *node, *next;
    size_t bucket;

    *out = NULL;
    *count = 0;
    if (names->keys.count == 0)
        return 0;
    arr = malloc(names->keys.count * sizeof(*arr));
    if (arr == NULL)
        return STATE_ENOMEM;
    STATE_HASH_TABLE_EACH (&names->keys, node, next, bucket) {
        struct name_key *k = STATE_HASH_ENTRY(node, struct name_key, node);

        if (k->claim_count > 0)
            arr[n++] = k;
    }
    qsort(arr, n, sizeof(*arr), key_cmp);
    *out = arr;
    *count = n;
    return 0;
}

int state_names_each(const struct state_names *names, state_names_visit_fn fn, void *ctx)
{
    struct name_key **keys;
    struct state_name_view *view;
    size_t n;
    int rc;

    view = malloc(sizeof(*view));
    if (view == NULL)
        return STATE_ENOMEM;
    rc = sorted_keys(names, &keys, &n);
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < n && rc == 0; i++) {
        name_key_view(names, keys[i], view);
        rc = fn(view, ctx);
    }
    free(keys);
done:
    free(view);
    return rc;
}

int state_names_each_unordered(const struct state_names *names, state_names_visit_fn fn, void *ctx)
{
    struct state_name_view *view = malloc(sizeof(*view));
    struct state_hash_node *node, *next;
    size_t bucket;
    int rc = 0;

    if (view == NULL)
        return STATE_ENOMEM;
    STATE_HASH_TABLE_EACH (&names->keys, node, next, bucket) {
        struct name_key *k = STATE_HASH_ENTRY(node, struct name_key, node);

        if (k->claim_count == 0)
            continue;
        name_key_view(names, k, view);
        rc = fn(view, ctx);
        if (rc != 0)
            break;
    }
    free(view);
    return rc;
}

static int claim_owner_cmp(const void *a, const void *b)
{
    const struct name_claim *ca = *(const struct name_claim *const *)a;
    const struct name_claim *cb = *(const struct name_claim *const *)b;

    return memcmp(ca->owner, cb->owner, STATE_OWNER_LEN);
}

int state_names_each_record(const struct state_names *names, state_records_visit_fn fn, void *ctx)
{
    struct name_claim *order[STATE_CLAIMS_PER_NAME_MAX];
    struct state_record *rec;
    struct name_key **keys;
    size_t n;
    int rc;

    rec = malloc(sizeof(*rec));
    if (rec == NULL)
        return STATE_ENOMEM;
    rc = sorted_keys(names, &keys, &n);
    if (rc != 0)
        goto done;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct name_key *k = keys[i];

        memcpy(order, k->claims, k->claim_count * sizeof(order[0]));
        qsort(order, k->claim_count, sizeof(order[0]), claim_owner_cmp);
        for (int c = 0; c < k->claim_count && rc == 0; c++) {
            name_claim_to_record(order[c], k->name, rec);
            rc = fn(rec, ctx);
        }
    }
    free(keys);
done:
    free(rec);
    return rc;
}

size_t state_names_count(const struct state_names *names)
{
    return names->held_count;
}

size_t state_names_fqdns(const struct state_names *names)
{
    return names->fqdn_count;
}

size_t state_names_tombstones(const struct state_names *names)
{
    return names->tombstone_count;
}

size_t state_names_records(const struct state_names *names)
{
    return names->record_count;
}

uint64_t state_names_digest(const struct state_names *names)
{
    return names->digest;
}

/* ---- tombstone collection --------------------------------------------------------------- */

/* A key is collected as a whole once every claim on it is a release and the newest release is
 * older than the TTL. Tombstones on a key someone else now holds are kept: they are what stops
 * a stale record of their owner, with an earlier claim time, from taking the name back (see
 * name_merge.c). They are bounded by STATE_CLAIMS_PER_NAME_MAX per key. */
size_t state_names_collect(struct state_names *names, uint64_t now_ms, uint64_t ttl_ms)
{
    struct state_hash_node *node, *next;
    size_t collected = 0, bucket;

    /* only tombstones go: none, no walk (a walk of 1M names every housekeeping turn was most
     * of an idle gateway's CPU) */
    if (names->tombstone_count == 0)
        return 0;
    STATE_HASH_TABLE_EACH (&names->keys, node, next, bucket) {
        struct name_key *k = STATE_HASH_ENTRY(node, struct name_key, node);
        uint64_t newest = 0;
        bool live = false;

        for (int i = 0; i < k->claim_count; i++) {
            live |= k->claims[i]->kind != STATE_RECORD_RELEASE;
            if (k->claims[i]->issued_at_ms > newest)
                newest = k->claims[i]->issued_at_ms;
        }
        if (live || k->claim_count == 0 || newest >= now_ms || now_ms - newest <= ttl_ms)
            continue;
        name_table_account(names, k, -1);
        name_table_remove(names, k);
        collected++;
    }
    return collected;
}
