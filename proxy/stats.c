/*
 * stats.c - per-name counters. Each worker owns a table and is the only writer of its
 * counters, so updates are plain relaxed load+store (no locked instruction on the request
 * path); the lock is taken only to insert or evict a name and to walk the table from another
 * thread. Names are remote input (anyone can reserve one), so the table is keyed by SipHash,
 * grows with its names, and drops a name's counters once no route serves it (the worker's
 * eviction sweep, registry.c) - the series ends in /metrics with the name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

const uint32_t proxy_latency_bounds_ms[PROXY_LATENCY_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, UINT32_MAX};

#define STAT_BUCKETS_MIN 64

/* Names are what routes serve (or "", every unknown name): a name's counters go with its
 * route (proxy_stats_evict), so the records' bound (--max-records) is this table's too. */
void proxy_stats_table_init(struct proxy_stats_table *t)
{
    pthread_mutex_init(&t->lock, NULL);
    state_hash_table_init(&t->names, STAT_BUCKETS_MIN, SIZE_MAX);
    t->last = NULL;
}

static bool stat_is(const struct state_hash_node *n, const void *name)
{
    return strcmp(STATE_HASH_ENTRY(n, struct proxy_stat, node)->name, name) == 0;
}

struct proxy_stat *proxy_stats_get(struct proxy_stats_table *t, const char *name)
{
    if (t->last != NULL && strcmp(t->last->name, name) == 0)
        return t->last;
    uint64_t hash = state_hash_table_hash(&t->names, name, strlen(name));
    /* only this worker inserts and evicts, so reading the chains without the lock is safe */
    struct state_hash_node *n = state_hash_table_find(&t->names, hash, stat_is, name);
    if (n != NULL)
        return t->last = STATE_HASH_ENTRY(n, struct proxy_stat, node);
    struct proxy_stat *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    snprintf(s->name, sizeof(s->name), "%s", name);
    pthread_mutex_lock(&t->lock);
    int rc = state_hash_table_insert(&t->names, &s->node, hash);
    pthread_mutex_unlock(&t->lock);
    if (rc != 0) {
        free(s);
        return NULL;
    }
    return t->last = s;
}

/* Whether a route still serves `name`: a label is served as "name.DOMAIN", an fqdn as itself
 * (state_routes_apply). */
static bool name_routed(struct proxy *p, const char *name)
{
    char host[2 * (STATE_FQDN_MAX + 1)];
    struct state_route r;
    int n = strchr(name, '.') ? snprintf(host, sizeof(host), "%s", name)
                              : snprintf(host, sizeof(host), "%s.%s", name, p->cfg.domain);
    return n > 0 && state_routes_lookup(p->routes, host, (size_t)n, &r) &&
           strcmp(r.name, name) == 0;
}

size_t proxy_stats_evict(struct proxy_worker *w)
{
    struct proxy_stats_table *t = &w->stats;
    struct state_hash_node *n, *next;
    size_t kept = 0, bucket;
    STATE_HASH_TABLE_EACH (&t->names, n, next, bucket) {
        struct proxy_stat *s = STATE_HASH_ENTRY(n, struct proxy_stat, node);
        /* "" counts requests for unknown names: it always stays */
        bool routed = s->name[0] == '\0' || name_routed(w->p, s->name);
        if (routed || s->held) {
            kept += !routed;
            s->held = false;
            continue;
        }
        pthread_mutex_lock(&t->lock);
        state_hash_table_remove(&t->names, n);
        pthread_mutex_unlock(&t->lock);
        if (t->last == s)
            t->last = NULL;
        free(s);
    }
    pthread_mutex_lock(&t->lock);
    state_hash_table_shrink(&t->names);
    pthread_mutex_unlock(&t->lock);
    return kept;
}

static inline void add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

void proxy_stats_record(struct proxy_stat *st, int status, uint64_t bytes_in, uint64_t bytes_out,
                        uint64_t latency_us, bool cut)
{
    if (st == NULL)
        return;
    add(&st->requests, 1);
    add(&st->bytes_in, bytes_in);
    add(&st->bytes_out, bytes_out);
    if (status >= 500 || cut)
        add(&st->errors, 1);
    if (status >= 200 && status < 600)
        add(&st->status_class[status / 100 - 2], 1);
    uint64_t ms = latency_us / 1000;
    int b = 0;
    while (b < PROXY_LATENCY_BUCKETS - 1 && ms >= proxy_latency_bounds_ms[b])
        b++;
    add(&st->latency[b], 1);
    add(&st->latency_sum_us, latency_us);
}

void proxy_stats_table_free(struct proxy_stats_table *t)
{
    state_hash_table_free_all(&t->names, offsetof(struct proxy_stat, node));
}

static uint64_t ld(_Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static void accumulate(struct proxy_name_stats *o, struct proxy_stat *s)
{
    o->requests += ld(&s->requests);
    o->bytes_in += ld(&s->bytes_in);
    o->bytes_out += ld(&s->bytes_out);
    o->errors += ld(&s->errors);
    o->status_2xx += ld(&s->status_class[0]);
    o->status_3xx += ld(&s->status_class[1]);
    o->status_4xx += ld(&s->status_class[2]);
    o->status_5xx += ld(&s->status_class[3]);
    for (int i = 0; i < PROXY_LATENCY_BUCKETS; i++)
        o->latency_count[i] += ld(&s->latency[i]);
    o->latency_sum_us += ld(&s->latency_sum_us);
}

/* One name's sum over workers, in a table of its own (state's keyed table). */
struct agg {
    struct proxy_name_stats st;
    struct state_hash_node node;
};

static bool agg_is(const struct state_hash_node *n, const void *name)
{
    return strcmp(STATE_HASH_ENTRY(n, struct agg, node)->st.name, name) == 0;
}

/* Adds one worker's counters into the sums; under that worker's lock. */
static int aggregate(struct state_hash_table *sums, struct proxy_stats_table *t)
{
    struct state_hash_node *n, *next;
    size_t bucket;
    STATE_HASH_TABLE_EACH (&t->names, n, next, bucket) {
        struct proxy_stat *s = STATE_HASH_ENTRY(n, struct proxy_stat, node);
        uint64_t hash = state_hash_table_hash(sums, s->name, strlen(s->name));
        struct state_hash_node *found = state_hash_table_find(sums, hash, agg_is, s->name);
        struct agg *a = found ? STATE_HASH_ENTRY(found, struct agg, node) : NULL;
        if (a == NULL) {
            a = calloc(1, sizeof(*a));
            if (a == NULL)
                return PROXY_ENOMEM;
            snprintf(a->st.name, sizeof(a->st.name), "%s", s->name);
            if (state_hash_table_insert(sums, &a->node, hash) != 0) {
                free(a);
                return PROXY_ENOMEM;
            }
        }
        accumulate(&a->st, s);
    }
    return 0;
}

int proxy_stats_each(struct proxy *p, proxy_stats_visit_fn fn, void *ctx)
{
    /* sum into a private table one worker at a time (one lock held at once), then call fn
     * with no lock held */
    struct state_hash_table sums;
    struct state_hash_node *n, *next;
    size_t bucket;
    int rc = 0;
    state_hash_table_init(&sums, STAT_BUCKETS_MIN, SIZE_MAX);
    for (unsigned wi = 0; wi < p->nworkers && rc == 0; wi++) {
        struct proxy_stats_table *t = &p->workers[wi].stats;
        pthread_mutex_lock(&t->lock);
        rc = aggregate(&sums, t);
        pthread_mutex_unlock(&t->lock);
    }
    STATE_HASH_TABLE_EACH (&sums, n, next, bucket) {
        struct agg *a = STATE_HASH_ENTRY(n, struct agg, node);
        if (rc == 0)
            rc = fn(&a->st, ctx);
        free(a);
    }
    state_hash_table_fini(&sums);
    return rc;
}
