/*
 * gossip_replay.c - the replay window on encrypted envelopes.
 *
 * AES-GCM proves a packet was sealed with the cluster key, not that it is new: anyone on the
 * path can capture a sealed push-pull message and send it again, as often as they like, and
 * each copy would be decrypted, parsed and answered. So every encrypted envelope carries its
 * sender's wall-clock time (authenticated, as part of the associated data), and a member
 * accepts it only
 *
 *   - within GOSSIP_REPLAY_WINDOW_MS of its own clock, either way (older captures are refused
 *     without any cryptography; the window is wide enough for the clock offsets the fleet
 *     tolerates, see gossip_int.h, and a member beyond it is named in a warning), and
 *   - if its nonce was not seen before: accepted nonces are remembered while their time is
 *     inside the window.
 *
 * Both checks run before the decryption, so a replay costs a hash lookup. A nonce is recorded
 * only after the packet authenticated: forged packets cannot fill the table.
 *
 * Memory is bounded: at most GOSSIP_REPLAY_MAX nonces, kept in arrival order in a ring with a
 * keyed SipHash index (nonces are chosen by the sender, and a member that holds the key could
 * choose colliding ones). When the ring is full the oldest nonce leaves and the window's floor
 * rises to its time: from then on nothing sealed at or before that time is accepted, so
 * forgetting a nonce never lets its packet in again. The ring starts small and doubles as
 * traffic needs, so a simulation of thousands of members does not pay the maximum each.
 */
#include "gossip/gossip_int.h"
#include "state/state.h"

#include <stdlib.h>
#include <string.h>

#define GREPLAY_INITIAL 256 /* ring slots at first */

struct greplay_entry {
    uint64_t nonce_hash; /* keyed hash of the 12-byte nonce */
    uint64_t ts_ms;      /* sender's time */
    uint32_t next;       /* index chain, UINT32_MAX ends it */
};

struct greplay {
    struct greplay_entry *ring; /* arrival order, `cap` slots */
    uint32_t *buckets;          /* heads of the index chains, `cap` of them */
    uint32_t cap, head, count;  /* slots, oldest slot, slots used */
    uint64_t floor_ms;          /* nothing sealed at or before this is accepted ... */
    bool floored;               /* ... once a nonce was forgotten */
    uint64_t key[2];            /* SipHash key */
};

struct greplay *greplay_new(void)
{
    struct greplay *r = calloc(1, sizeof(*r));

    if (r != NULL)
        state_siphash_key(r->key);
    return r;
}

void greplay_free(struct greplay *r)
{
    if (r == NULL)
        return;
    free(r->ring);
    free(r->buckets);
    free(r);
}

static uint64_t greplay_hash(const struct greplay *r, const uint8_t nonce[GOSSIP_NONCE_LEN])
{
    return state_siphash(r->key, nonce, GOSSIP_NONCE_LEN);
}

static bool greplay_seen(const struct greplay *r, uint64_t h)
{
    if (r->cap == 0)
        return false;
    for (uint32_t i = r->buckets[h & (r->cap - 1)]; i != UINT32_MAX; i = r->ring[i].next)
        if (r->ring[i].nonce_hash == h)
            return true;
    return false;
}

int greplay_check(const struct greplay *r, uint64_t now_ms, uint64_t ts_ms,
                  const uint8_t nonce[GOSSIP_NONCE_LEN])
{
    if (ts_ms + GOSSIP_REPLAY_WINDOW_MS < now_ms || ts_ms > now_ms + GOSSIP_REPLAY_WINDOW_MS)
        return GOSSIP_ERANGE;
    if (r->floored && ts_ms <= r->floor_ms)
        return GOSSIP_EINVAL;
    return greplay_seen(r, greplay_hash(r, nonce)) ? GOSSIP_EINVAL : 0;
}

static void greplay_link(struct greplay *r, uint32_t slot)
{
    uint32_t b = (uint32_t)(r->ring[slot].nonce_hash & (r->cap - 1));

    r->ring[slot].next = r->buckets[b];
    r->buckets[b] = slot;
}

/* Doubles the ring (and the index) keeping arrival order; false when at the bound or out of
 * memory (the oldest entry is then evicted instead). */
static bool greplay_grow(struct greplay *r)
{
    uint32_t ncap = r->cap ? r->cap * 2 : GREPLAY_INITIAL;
    struct greplay_entry *ring;
    uint32_t *buckets;

    if (ncap > GOSSIP_REPLAY_MAX)
        return false;
    ring = malloc(ncap * sizeof(*ring));
    buckets = malloc(ncap * sizeof(*buckets));
    if (ring == NULL || buckets == NULL) {
        free(ring);
        free(buckets);
        return false;
    }
    for (uint32_t i = 0; i < r->count; i++)
        ring[i] = r->ring[(r->head + i) % r->cap];
    free(r->ring);
    free(r->buckets);
    r->ring = ring;
    r->buckets = buckets;
    r->cap = ncap;
    r->head = 0;
    memset(r->buckets, 0xff, ncap * sizeof(*buckets));
    for (uint32_t i = 0; i < r->count; i++)
        greplay_link(r, i);
    return true;
}

/* Drops the oldest entry and raises the floor to its time. */
static void greplay_evict(struct greplay *r)
{
    struct greplay_entry *old = &r->ring[r->head];
    uint32_t *link = &r->buckets[old->nonce_hash & (r->cap - 1)];

    while (*link != r->head)
        link = &r->ring[*link].next;
    *link = old->next;
    if (!r->floored || old->ts_ms > r->floor_ms)
        r->floor_ms = old->ts_ms;
    r->floored = true;
    r->head = (r->head + 1) % r->cap;
    r->count--;
}

void greplay_record(struct greplay *r, uint64_t now_ms, uint64_t ts_ms,
                    const uint8_t nonce[GOSSIP_NONCE_LEN])
{
    uint32_t slot;

    /* nonces sealed before the window need no memory: the window check refuses them */
    while (r->count > 0 && r->ring[r->head].ts_ms + GOSSIP_REPLAY_WINDOW_MS < now_ms)
        greplay_evict(r);
    if (r->count == r->cap && !greplay_grow(r)) {
        if (r->cap == 0)
            return;
        greplay_evict(r);
    }
    slot = (r->head + r->count) % r->cap;
    r->ring[slot].nonce_hash = greplay_hash(r, nonce);
    r->ring[slot].ts_ms = ts_ms;
    greplay_link(r, slot);
    r->count++;
}
