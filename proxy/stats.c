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

static size_t name_bucket(const struct proxy_stats_table *t, const char *name, size_t size)
{
    return state_siphash(t->key, name, strlen(name)) & (size - 1);
}

/* Under t->lock: rehashes into `size` buckets (unchanged when out of memory). */
static void stats_resize(struct proxy_stats_table *t, size_t size)
{
    struct proxy_stat **nt = calloc(size, sizeof(*nt));
    if (nt == NULL)
        return;
    for (size_t b = 0; b < t->size; b++) {
        struct proxy_stat *s = t->buckets[b];
        while (s) {
            struct proxy_stat *n = s->next;
            size_t i = name_bucket(t, s->name, size);
            s->next = nt[i];
            nt[i] = s;
            s = n;
        }
    }
    free(t->buckets);
    t->buckets = nt;
    t->size = size;
}

struct proxy_stat *proxy_stats_get(struct proxy_stats_table *t, const char *name)
{
    /* only this worker inserts and evicts, so reading the chains without the lock is safe */
    if (t->size) {
        for (struct proxy_stat *s = t->buckets[name_bucket(t, name, t->size)]; s; s = s->next)
            if (strcmp(s->name, name) == 0)
                return s;
    }
    struct proxy_stat *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    snprintf(s->name, sizeof(s->name), "%s", name);
    pthread_mutex_lock(&t->lock);
    if (t->size == 0) {
        state_siphash_key(t->key);
        stats_resize(t, STAT_BUCKETS_MIN);
    } else if (t->count >= t->size) {
        stats_resize(t, t->size * 2);
    }
    if (t->size == 0) {
        pthread_mutex_unlock(&t->lock);
        free(s);
        return NULL;
    }
    size_t b = name_bucket(t, name, t->size);
    s->next = t->buckets[b];
    t->buckets[b] = s;
    t->count++;
    pthread_mutex_unlock(&t->lock);
    return s;
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
    size_t kept = 0;
    for (size_t b = 0; b < t->size; b++) {
        struct proxy_stat **pp = &t->buckets[b];
        while (*pp) {
            struct proxy_stat *s = *pp;
            /* "" counts requests for unknown names: it always stays */
            bool routed = s->name[0] == '\0' || name_routed(w->p, s->name);
            if (routed || s->held) {
                kept += !routed;
                s->held = false;
                pp = &s->next;
                continue;
            }
            pthread_mutex_lock(&t->lock);
            *pp = s->next;
            t->count--;
            pthread_mutex_unlock(&t->lock);
            free(s);
        }
    }
    if (t->size > STAT_BUCKETS_MIN && t->count < t->size / 8) {
        pthread_mutex_lock(&t->lock);
        stats_resize(t, t->size / 2);
        pthread_mutex_unlock(&t->lock);
    }
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
    for (size_t b = 0; b < t->size; b++) {
        struct proxy_stat *s = t->buckets[b];
        while (s) {
            struct proxy_stat *n = s->next;
            free(s);
            s = n;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    t->size = t->count = 0;
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

struct agg {
    struct proxy_name_stats st;
    struct agg *next;
};

int proxy_stats_each(struct proxy *p, proxy_stats_visit_fn fn, void *ctx)
{
    /* sum into a private table one worker at a time (one lock held at once), then call fn
     * with no lock held */
    size_t total = 0, size = STAT_BUCKETS_MIN;
    for (unsigned wi = 0; wi < p->nworkers; wi++) {
        struct proxy_stats_table *t = &p->workers[wi].stats;
        pthread_mutex_lock(&t->lock);
        total += t->count;
        pthread_mutex_unlock(&t->lock);
    }
    while (size < total)
        size *= 2;
    struct agg **buckets = calloc(size, sizeof(*buckets));
    if (buckets == NULL)
        return PROXY_ENOMEM;
    uint64_t key[2];
    state_siphash_key(key);
    int rc = 0;
    for (unsigned wi = 0; wi < p->nworkers && rc == 0; wi++) {
        struct proxy_stats_table *t = &p->workers[wi].stats;
        pthread_mutex_lock(&t->lock);
        for (size_t b = 0; b < t->size && rc == 0; b++) {
            for (struct proxy_stat *s = t->buckets[b]; s; s = s->next) {
                size_t i = state_siphash(key, s->name, strlen(s->name)) & (size - 1);
                struct agg *a = buckets[i];
                while (a && strcmp(a->st.name, s->name) != 0)
                    a = a->next;
                if (a == NULL) {
                    a = calloc(1, sizeof(*a));
                    if (a == NULL) {
                        rc = PROXY_ENOMEM;
                        break;
                    }
                    snprintf(a->st.name, sizeof(a->st.name), "%s", s->name);
                    a->next = buckets[i];
                    buckets[i] = a;
                }
                accumulate(&a->st, s);
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    for (size_t b = 0; b < size; b++) {
        struct agg *a = buckets[b];
        while (a) {
            struct agg *n = a->next;
            if (rc == 0)
                rc = fn(&a->st, ctx);
            free(a);
            a = n;
        }
    }
    free(buckets);
    return rc;
}
