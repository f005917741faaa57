/*
 * gossip_queue.c - the retransmit-limited dissemination queue.
 *
 * Each change to spread (a member's new state, an item, a health entry) is queued once under
 * a key, already encoded, and piggy-backed on outgoing packets until it has been sent
 * `limit` times (about lambda * log(n): enough for an epidemic to reach everyone with high
 * probability). Entries sit in tiers by transmit count so the least-sent, then newest, go
 * first in O(1): fresh news outruns old news. Queuing a key that is already present replaces
 * the entry (and resets its count) unless the queued version is newer, so a name updated ten
 * times in a second is sent as its last version only. gossip.c keeps one queue per class
 * (membership, health, data) and takes from each in turn while filling a packet, so a burst of
 * one class never starves another: membership changes and records, nor a flood of records the
 * health verdicts whose copies expire unless restated.
 */
#include "gossip/gossip_int.h"

#include <stdlib.h>
#include <string.h>

int gq_init(struct gqueue *q, size_t max)
{
    memset(q, 0, sizeof(*q));
    q->max = max ? max : 1;
    state_hash_table_init(&q->index, 64, q->max);
    return 0;
}

/* Takes e out of its tier list only. */
static void gq_tier_unlink(struct gqueue *q, struct gq_entry *e)
{
    uint32_t t = e->transmits < GOSSIP_TIERS ? e->transmits : GOSSIP_TIERS - 1;

    if (e->prev)
        e->prev->next = e->next;
    else
        q->tiers[t] = e->next;
    if (e->next)
        e->next->prev = e->prev;
}

/* Takes e out of the queue (its tier and the index); the caller frees it. */
static void gq_unlink(struct gqueue *q, struct gq_entry *e)
{
    gq_tier_unlink(q, e);
    state_hash_table_remove(&q->index, &e->hnode);
    q->count--;
}

static void gq_tier_push(struct gqueue *q, struct gq_entry *e)
{
    uint32_t t = e->transmits < GOSSIP_TIERS ? e->transmits : GOSSIP_TIERS - 1;

    e->prev = NULL;
    e->next = q->tiers[t];
    if (e->next)
        e->next->prev = e;
    q->tiers[t] = e;
}

void gq_destroy(struct gqueue *q)
{
    for (size_t t = 0; t < GOSSIP_TIERS; t++) {
        struct gq_entry *e = q->tiers[t];
        while (e) {
            struct gq_entry *n = e->next;
            free(e);
            e = n;
        }
    }
    state_hash_table_fini(&q->index);
    memset(q, 0, sizeof(*q));
}

static bool gq_entry_is(const struct state_hash_node *n, const void *key)
{
    return strcmp(STATE_HASH_ENTRY(n, struct gq_entry, hnode)->key, key) == 0;
}

static struct gq_entry *gq_find(const struct gqueue *q, const char *key, uint64_t h)
{
    struct state_hash_node *n = state_hash_table_find(&q->index, h, gq_entry_is, key);

    return n ? STATE_HASH_ENTRY(n, struct gq_entry, hnode) : NULL;
}

/* Drops the most-transmitted, oldest entry to make room. */
static void gq_evict(struct gqueue *q)
{
    for (int t = GOSSIP_TIERS - 1; t >= 0; t--) {
        struct gq_entry *e = q->tiers[t];
        if (e == NULL)
            continue;
        while (e->next)
            e = e->next;
        gq_unlink(q, e);
        free(e);
        q->evicted++;
        return;
    }
}

int gq_put(struct gqueue *q, const char *key, uint64_t version, const uint8_t *msg, size_t len)
{
    size_t klen = strlen(key);
    uint64_t h = state_hash_table_hash(&q->index, key, klen);
    struct gq_entry *old = gq_find(q, key, h);
    struct gq_entry *e;

    if (old != NULL) {
        if (old->version > version)
            return 0;
        gq_unlink(q, old);
        free(old);
    }
    if (q->count >= q->max)
        gq_evict(q);
    e = malloc(sizeof(*e) + len + klen + 1);
    if (e == NULL)
        return GOSSIP_ENOMEM;
    memset(e, 0, sizeof(*e));
    e->version = version;
    e->len = len;
    memcpy(e->msg, msg, len);
    e->key = (char *)e->msg + len;
    memcpy(e->key, key, klen + 1);
    if (state_hash_table_insert(&q->index, &e->hnode, h) != 0) {
        free(e);
        return GOSSIP_ENOMEM; /* no room left by the eviction above, or no first buckets */
    }
    gq_tier_push(q, e);
    q->count++;
    return 0;
}

void gq_remove(struct gqueue *q, const char *key)
{
    struct gq_entry *e = gq_find(q, key, state_hash_table_hash(&q->index, key, strlen(key)));

    if (e != NULL) {
        gq_unlink(q, e);
        free(e);
    }
}

void gq_begin(struct gqueue *q)
{
    q->round++;
}

struct gq_entry *gq_pick(struct gqueue *q, uint32_t limit, size_t room)
{
    /* Walking past entries that do not fit costs time; give up after a few so a nearly full
     * packet does not scan the whole queue. */
    unsigned misses = 0;

    if (limit > GOSSIP_TIERS)
        limit = GOSSIP_TIERS;
    for (uint32_t t = 0; t < limit; t++) {
        for (struct gq_entry *e = q->tiers[t]; e; e = e->next) {
            if (e->round == q->round)
                continue;
            if (e->len <= room) {
                e->round = q->round;
                return e;
            }
            if (++misses > 16)
                return NULL;
        }
    }
    return NULL;
}

void gq_sent_n(struct gqueue *q, struct gq_entry *e, uint32_t limit, uint32_t n)
{
    if (e->transmits + n >= limit || e->transmits + n >= GOSSIP_TIERS) {
        gq_unlink(q, e);
        free(e);
        return;
    }
    gq_tier_unlink(q, e); /* it stays in the index */
    e->transmits += n;
    gq_tier_push(q, e);
}

void gq_sent(struct gqueue *q, struct gq_entry *e, uint32_t limit)
{
    gq_sent_n(q, e, limit, 1);
}
