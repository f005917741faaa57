/*
 * traffic_history.c - the last 15 minutes of each name's traffic on this node, for the
 * dashboard's charts. Every NODE_SAMPLE_MS the node reads the proxy's cumulative per-name
 * counters; the difference from the previous reading is one sample (requests, errors, p99 of
 * the interval) in a ring of NODE_HISTORY_SAMPLES per name.
 *
 * Memory is bounded whatever the number of names: NODE_HISTORY_NAMES slots of about 1 KiB.
 * Names are remote input (anyone can reserve one), so the index over the slots is keyed by
 * SipHash. When every slot is taken, a name without one takes the slot of the least active
 * name (fewest requests in its ring) if it has answered more requests in all than that one did
 * in the window; otherwise it goes without a history (counted in `refused`). A name that the
 * proxy stopped listing (no route serves it) gives its slot up once its ring is empty.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/traffic_internal.h"

#define HIST_BUCKETS 128 /* index chains (power of two, twice the slots) */

struct hist_slot {
    char name[STATE_FQDN_MAX + 1];                    /* "" when free */
    uint64_t requests, errors;                        /* cumulative at the last reading */
    uint64_t latency[PROXY_LATENCY_BUCKETS];          /* idem, per bucket */
    uint64_t since;                                   /* first interval in its ring */
    bool listed;                                      /* the proxy listed it this interval */
    int next;                                         /* index chain, -1 ends */
    struct traffic_sample ring[NODE_HISTORY_SAMPLES]; /* interval t at t % SAMPLES */
};

struct traffic_history {
    struct hist_slot slots[NODE_HISTORY_NAMES]; /* the names with a history */
    int buckets[HIST_BUCKETS];                  /* SipHash(name) -> first slot, -1 */
    uint64_t key[2];                            /* SipHash key */
    uint64_t tick;                              /* current interval, from 1 */
    uint64_t end_ms;                            /* wall clock at its end */
    size_t used;                                /* slots taken */
    int least;                                  /* hist_find_least's answer, -1: none */
    uint64_t least_sum;                         /* its ring's requests */
    bool least_stale;                           /* recompute before use */
    bool full_once;                             /* every slot was taken at some point */
    uint64_t refused;                           /* names that found no slot */
};

struct traffic_history *traffic_history_new(void)
{
    struct traffic_history *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    state_siphash_key(h->key);
    for (int i = 0; i < HIST_BUCKETS; i++)
        h->buckets[i] = -1;
    return h;
}

void traffic_history_free(struct traffic_history *h)
{
    free(h);
}

static size_t hist_bucket(const struct traffic_history *h, const char *name)
{
    return state_siphash(h->key, name, strlen(name)) & (HIST_BUCKETS - 1);
}

static struct hist_slot *hist_find(struct traffic_history *h, const char *name)
{
    for (int i = h->buckets[hist_bucket(h, name)]; i >= 0; i = h->slots[i].next)
        if (strcmp(h->slots[i].name, name) == 0)
            return &h->slots[i];
    return NULL;
}

static void hist_unlink(struct traffic_history *h, struct hist_slot *s)
{
    int *pp = &h->buckets[hist_bucket(h, s->name)];
    int idx = (int)(s - h->slots);

    while (*pp >= 0 && *pp != idx)
        pp = &h->slots[*pp].next;
    if (*pp == idx)
        *pp = s->next;
    s->name[0] = '\0';
    h->used--;
}

static uint64_t hist_ring_sum(const struct hist_slot *s)
{
    uint64_t n = 0;

    for (int i = 0; i < NODE_HISTORY_SAMPLES; i++)
        n += s->ring[i].requests;
    return n;
}

/* The least active slot that was not taken this interval (a slot taken now has an empty ring
 * and would otherwise be the next one taken), cached until a slot changes hands. */
static void hist_find_least(struct traffic_history *h)
{
    h->least = -1;
    h->least_sum = UINT64_MAX;
    for (int i = 0; i < NODE_HISTORY_NAMES; i++) {
        uint64_t n = hist_ring_sum(&h->slots[i]);
        if (h->slots[i].since <= h->tick && n < h->least_sum) {
            h->least_sum = n;
            h->least = i;
        }
    }
}

/* A slot for a name that has none: a free one, or the least active one if `requests` beats it;
 * NULL when the name goes without a history. */
static struct hist_slot *hist_take(struct traffic_history *h, const char *name, uint64_t requests)
{
    struct hist_slot *s = NULL;

    if (h->used < NODE_HISTORY_NAMES) {
        for (int i = 0; i < NODE_HISTORY_NAMES && s == NULL; i++)
            if (h->slots[i].name[0] == '\0')
                s = &h->slots[i];
        if (s == NULL)
            return NULL; /* cannot happen: used counts the taken slots */
    } else {
        h->full_once = true;
        if (h->least_stale)
            hist_find_least(h);
        h->least_stale = false;
        if (h->least < 0 || requests <= h->least_sum) {
            h->refused++;
            return NULL;
        }
        s = &h->slots[h->least];
        hist_unlink(h, s);
        h->least_stale = true;
    }
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->since = h->tick + 1; /* its first interval is the next one: this reading is the base */
    size_t b = hist_bucket(h, name);
    s->next = h->buckets[b];
    h->buckets[b] = (int)(s - h->slots);
    h->used++;
    return s;
}

void traffic_history_begin(struct traffic_history *h, uint64_t wall_ms)
{
    h->tick++;
    h->end_ms = wall_ms;
    h->least_stale = true;
    for (int i = 0; i < NODE_HISTORY_NAMES; i++) {
        h->slots[i].listed = false;
        memset(&h->slots[i].ring[h->tick % NODE_HISTORY_SAMPLES], 0, sizeof(struct traffic_sample));
    }
}

uint8_t traffic_p99_bucket(const uint64_t counts[PROXY_LATENCY_BUCKETS])
{
    uint64_t total = 0, seen = 0;

    for (int i = 0; i < PROXY_LATENCY_BUCKETS; i++)
        total += counts[i];
    if (total == 0)
        return 0;
    /* the smallest bucket holding the ceil(0.99 * total)-th request */
    uint64_t rank = total - total / 100;
    for (int i = 0; i < PROXY_LATENCY_BUCKETS; i++) {
        seen += counts[i];
        if (seen >= rank)
            return (uint8_t)(i + 1);
    }
    return PROXY_LATENCY_BUCKETS;
}

long traffic_p99_ms(uint8_t p99)
{
    if (p99 == 0 || p99 > PROXY_LATENCY_BUCKETS)
        return -1;
    if (p99 == PROXY_LATENCY_BUCKETS)
        return 2L * proxy_latency_bounds_ms[PROXY_LATENCY_BUCKETS - 2];
    return (long)proxy_latency_bounds_ms[p99 - 1];
}

static uint32_t clamp32(uint64_t v)
{
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

struct traffic_sample traffic_history_add(struct traffic_history *h,
                                          const struct proxy_name_stats *st)
{
    struct traffic_sample out = {0};
    struct hist_slot *s = hist_find(h, st->name);
    uint64_t lat[PROXY_LATENCY_BUCKETS];

    bool reset = false;
    if (s == NULL) {
        /* While no slot was ever refused, a name without one was not listed at the last
         * reading: everything it counted belongs to this interval. Otherwise its past is
         * unknown and this reading is only the base of the next interval's sample. */
        bool first_listing = !h->full_once;
        s = hist_take(h, st->name, st->requests);
        if (s == NULL)
            return out;
        if (!first_listing) {
            s->requests = st->requests;
            s->errors = st->errors;
            memcpy(s->latency, st->latency_count, sizeof(s->latency));
            s->listed = true;
            return out;
        }
        s->since = h->tick;
        reset = true;
    }
    /* counters that went down were dropped and started again (the route went and came back):
     * everything counted since belongs to this interval */
    reset = reset || st->requests < s->requests;
    out.requests = clamp32(reset ? st->requests : st->requests - s->requests);
    out.errors = clamp32(reset || st->errors < s->errors ? st->errors : st->errors - s->errors);
    for (int i = 0; i < PROXY_LATENCY_BUCKETS; i++)
        lat[i] = reset || st->latency_count[i] < s->latency[i]
                     ? st->latency_count[i]
                     : st->latency_count[i] - s->latency[i];
    out.p99 = traffic_p99_bucket(lat);
    s->requests = st->requests;
    s->errors = st->errors;
    memcpy(s->latency, st->latency_count, sizeof(s->latency));
    s->listed = true;
    s->ring[h->tick % NODE_HISTORY_SAMPLES] = out;
    return out;
}

void traffic_history_end(struct traffic_history *h)
{
    for (int i = 0; i < NODE_HISTORY_NAMES; i++) {
        struct hist_slot *s = &h->slots[i];
        if (s->name[0] != '\0' && !s->listed && hist_ring_sum(s) == 0)
            hist_unlink(h, s);
    }
}

void traffic_history_each(const struct traffic_history *h, traffic_history_visit_fn fn, void *ctx)
{
    struct traffic_sample samples[NODE_HISTORY_SAMPLES];

    for (int i = 0; i < NODE_HISTORY_NAMES; i++) {
        const struct hist_slot *s = &h->slots[i];
        if (s->name[0] == '\0' || s->since > h->tick)
            continue;
        uint64_t first = h->tick - s->since + 1 > NODE_HISTORY_SAMPLES
                             ? h->tick - NODE_HISTORY_SAMPLES + 1
                             : s->since;
        size_t n = 0;
        for (uint64_t t = first; t <= h->tick; t++)
            samples[n++] = s->ring[t % NODE_HISTORY_SAMPLES];
        fn(ctx, s->name, samples, n);
    }
}

uint64_t traffic_history_end_ms(const struct traffic_history *h)
{
    return h->end_ms;
}

size_t traffic_history_names(const struct traffic_history *h)
{
    return h->used;
}

uint64_t traffic_history_refused(const struct traffic_history *h)
{
    return h->refused;
}
