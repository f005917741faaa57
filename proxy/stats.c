/*
 * stats.c - per-name counters. Each worker owns a table and is the only writer of its
 * counters, so updates are plain relaxed load+store (no locked instruction on the request
 * path); the lock is taken only to insert a name and to walk the table from another thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

const uint32_t proxy_latency_bounds_ms[PROXY_LATENCY_BUCKETS] = {
    1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, UINT32_MAX};

static unsigned name_bucket(const char *name)
{
    uint32_t h = 2166136261u;
    for (const char *c = name; *c; c++)
        h = (h ^ (uint8_t)*c) * 16777619u;
    return h % PROXY_STAT_BUCKETS;
}

struct proxy_stat *proxy_stats_get(struct proxy_stats_table *t, const char *name)
{
    unsigned b = name_bucket(name);
    /* only this worker inserts, so reading the chain without the lock is safe here */
    for (struct proxy_stat *s = t->buckets[b]; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    struct proxy_stat *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    snprintf(s->name, sizeof(s->name), "%s", name);
    pthread_mutex_lock(&t->lock);
    s->next = t->buckets[b];
    t->buckets[b] = s;
    pthread_mutex_unlock(&t->lock);
    return s;
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
    for (int b = 0; b < PROXY_STAT_BUCKETS; b++) {
        struct proxy_stat *s = t->buckets[b];
        while (s) {
            struct proxy_stat *n = s->next;
            free(s);
            s = n;
        }
        t->buckets[b] = NULL;
    }
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
    struct agg *buckets[PROXY_STAT_BUCKETS] = {NULL};
    int rc = 0;
    for (unsigned wi = 0; wi < p->nworkers && rc == 0; wi++) {
        struct proxy_stats_table *t = &p->workers[wi].stats;
        pthread_mutex_lock(&t->lock);
        for (int b = 0; b < PROXY_STAT_BUCKETS && rc == 0; b++) {
            for (struct proxy_stat *s = t->buckets[b]; s; s = s->next) {
                struct agg *a = buckets[b];
                while (a && strcmp(a->st.name, s->name) != 0)
                    a = a->next;
                if (a == NULL) {
                    a = calloc(1, sizeof(*a));
                    if (a == NULL) {
                        rc = PROXY_ENOMEM;
                        break;
                    }
                    snprintf(a->st.name, sizeof(a->st.name), "%s", s->name);
                    a->next = buckets[b];
                    buckets[b] = a;
                }
                accumulate(&a->st, s);
            }
        }
        pthread_mutex_unlock(&t->lock);
    }
    for (int b = 0; b < PROXY_STAT_BUCKETS; b++) {
        struct agg *a = buckets[b];
        while (a) {
            struct agg *n = a->next;
            if (rc == 0)
                rc = fn(&a->st, ctx);
            free(a);
            a = n;
        }
    }
    return rc;
}
