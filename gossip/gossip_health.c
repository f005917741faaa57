/*
 * gossip_health.c - backend health shared by the fleet.
 *
 * Probing every backend from every gateway would put n probes per interval on each backend
 * and grow with the fleet. Instead rendezvous (highest random weight) hashing picks, for each
 * backend, the k alive members with the highest hash(member id, backend): every member
 * computes the same k from the same member list, the choice moves only for the backends of a
 * member that comes or goes, and each backend sees k probers whatever the fleet size.
 *
 * Each prober gossips its result as a per-observer entry (observer, backend, sequence, up,
 * ttl). Receivers keep the latest entry per observer and let it expire after its TTL on their
 * own clock (no clock sync needed: the TTL travels, not a time stamp). The fleet verdict on a
 * backend is the majority of fresh entries. A prober re-gossips an unchanged result only when
 * half its TTL has gone, so steady state costs k small messages per backend per TTL/2.
 *
 * A change is the one message that must not be lost: dissemination is retransmit-limited
 * (about 4 log10(n) sends per member), and under 15% datagram loss a member now and then
 * receives none of them; it would then hold the old result until the next restatement, half a
 * TTL later, past the TTL/4 the documented bound gives a change to spread. So for a quarter
 * TTL after a change the prober queues the same entry again at every probe (same sequence:
 * members that have it drop it at once and forward nothing; one that missed it takes it).
 * A member that joins or restarts holds no result at all and would wait as long, so its
 * arrival starts the same quarter TTL of restating on every prober.
 *
 * Push-pull does not carry health entries, so a member that just started (or restarted) would
 * learn the verdicts it does not probe itself only from those restatements: up to TTL/2 later,
 * twice that when loss eats a copy. Restating for a quarter TTL still leaves the newcomer to the
 * prober's own sends (other members drop copies they hold). So when a member starts a new life here
 * (one we did not hold, one back from dead or left, or one whose incarnation rose past a
 * refutation: a restart, as the node starts incarnations from unix seconds), we restate every
 * verdict of our own at once under a new sequence, so every member forwards it and the newcomer
 * holds each within about one gossip round. The copy carries what is left of the entry's TTL, so it
 * expires where our own does, and the regular schedule is untouched. At most one such
 * restatement per GH_RESTATE_GAP_MS whatever the churn: joins within the gap are served by
 * one deferred restatement at the end of it (housekeeping runs every second), so a flapping
 * or hostile member costs at most one restatement per gap.
 */
#include "gossip/gossip_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GH_OBSERVERS_MAX 16    /* observer entries kept per backend */
#define GH_BACKENDS_MAX 65536  /* backends tracked */
#define GH_TTL_MAX_MS 600000u  /* accept at most 10 minutes of TTL from the wire */
#define GH_RESTATE_GAP_MS 1000 /* at most one restatement for newcomers per second */

struct ghentry {
    char observer[GOSSIP_ID_MAX + 1]; /* who probed */
    bool up;                          /* what it saw */
    uint64_t seq;                     /* observer's sequence: higher wins */
    uint64_t expires_ms;              /* our clock */
    uint64_t published_ms;            /* own entries: when last gossiped */
    uint64_t spread_from_ms;          /* own entries: when the result last changed or a member
                                         joined (restated at each probe for TTL/4 after) */
    uint64_t observed_ms;             /* our clock when this result last arrived (own
                                         entries: when last probed) - its age on the API */
};

struct ghbackend {
    struct state_hash_node node;          /* in ghealth.table */
    char backend[GOSSIP_BACKEND_MAX + 1]; /* key */
    struct ghentry obs[GH_OBSERVERS_MAX]; /* entries (n used) */
    size_t n;
    enum gossip_health_verdict verdict; /* last reported */
};

struct ghealth {
    struct state_hash_table table; /* backends by name, keyed: they come from the network */
    uint64_t seq;                  /* our last published sequence */
    uint64_t restated_ms;          /* when we last restated everything for a newcomer */
    bool restate_pending;          /* a newcomer came within the gap: restate at its end */
};

struct ghealth *ghealth_new(void)
{
    struct ghealth *h = calloc(1, sizeof(*h));

    if (h == NULL)
        return NULL;
    state_hash_table_init(&h->table, 256, GH_BACKENDS_MAX);
    return h;
}

void ghealth_free(struct ghealth *h)
{
    if (h == NULL)
        return;
    state_hash_table_free_all(&h->table, offsetof(struct ghbackend, node));
    free(h);
}

static bool ghealth_key_valid(const char *backend)
{
    size_t n = backend ? strlen(backend) : 0;

    if (n == 0 || n > GOSSIP_BACKEND_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)backend[i] <= 0x20 || (unsigned char)backend[i] > 0x7e)
            return false;
    return true;
}

static bool ghealth_is(const struct state_hash_node *n, const void *backend)
{
    return strcmp(STATE_HASH_ENTRY(n, struct ghbackend, node)->backend, backend) == 0;
}

static struct ghbackend *ghealth_find(const struct ghealth *h, const char *backend, uint64_t hash)
{
    struct state_hash_node *n = state_hash_table_find(&h->table, hash, ghealth_is, backend);

    return n ? STATE_HASH_ENTRY(n, struct ghbackend, node) : NULL;
}

static uint64_t ghealth_hash(const struct ghealth *h, const char *backend)
{
    return state_hash_table_hash(&h->table, backend, strlen(backend));
}

static struct ghbackend *ghealth_get(struct gossip *g, const char *backend)
{
    struct ghealth *h = g->health;
    uint64_t hash = ghealth_hash(h, backend);
    struct ghbackend *b = ghealth_find(h, backend, hash);
    int rc;

    if (b != NULL)
        return b;
    if (state_hash_table_full(&h->table)) {
        gossip_drop(g, GOSSIP_DROP_TABLE_FULL);
        return NULL;
    }
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    snprintf(b->backend, sizeof(b->backend), "%s", backend);
    rc = state_hash_table_insert(&h->table, &b->node, hash);
    if (rc != 0) {
        free(b); /* no first buckets */
        return NULL;
    }
    return b;
}

static enum gossip_health_verdict ghealth_count(const struct ghbackend *b, uint64_t now,
                                                unsigned *up, unsigned *down)
{
    unsigned u = 0, d = 0;

    for (size_t i = 0; b && i < b->n; i++) {
        if (b->obs[i].expires_ms <= now)
            continue;
        if (b->obs[i].up)
            u++;
        else
            d++;
    }
    if (up)
        *up = u;
    if (down)
        *down = d;
    if (u == 0 && d == 0)
        return GOSSIP_HEALTH_UNKNOWN;
    return u >= d ? GOSSIP_HEALTH_UP : GOSSIP_HEALTH_DOWN;
}

static void ghealth_report(struct gossip *g, struct ghbackend *b, uint64_t now)
{
    enum gossip_health_verdict v = ghealth_count(b, now, NULL, NULL);

    if (v == b->verdict)
        return;
    b->verdict = v;
    if (g->cb.on_health)
        g->cb.on_health(g->cb.ctx, b->backend, v);
}

/* The slot for an observer: its own, a free one, or the one closest to expiry. */
static struct ghentry *ghealth_slot(struct ghbackend *b, const char *observer, bool *fresh)
{
    size_t oldest = 0;

    *fresh = false;
    for (size_t i = 0; i < b->n; i++) {
        if (strcmp(b->obs[i].observer, observer) == 0)
            return &b->obs[i];
        if (b->obs[i].expires_ms < b->obs[oldest].expires_ms)
            oldest = i;
    }
    *fresh = true;
    if (b->n < GH_OBSERVERS_MAX)
        return &b->obs[b->n++];
    return &b->obs[oldest];
}

static void ghealth_queue(struct gossip *g, const struct ghbackend *b, const struct ghentry *e,
                          uint32_t ttl_ms)
{
    char qkey[GOSSIP_ID_MAX + GOSSIP_BACKEND_MAX + 4];
    struct gmsg m;

    memset(&m, 0, sizeof(m));
    m.type = GMSG_HEALTH;
    snprintf(m.id, sizeof(m.id), "%s", e->observer);
    snprintf(m.key, sizeof(m.key), "%s", b->backend);
    m.version = e->seq;
    m.up = e->up;
    m.ttl_ms = ttl_ms;
    snprintf(qkey, sizeof(qkey), "h:%s|%s", e->observer, b->backend);
    gossip_queue_data(g, qkey, e->seq, &m);
}

static uint64_t ghealth_next_seq(struct gossip *g)
{
    /* Sequences start from our incarnation so a restarted prober outranks its past self. */
    if (g->health->seq < gm_inc(g->self) << 24)
        g->health->seq = gm_inc(g->self) << 24;
    return ++g->health->seq;
}

/* Queues every live verdict of ours again under a new sequence, with what is left of its TTL. */
static void ghealth_restate(struct gossip *g, uint64_t now)
{
    struct ghealth *h = g->health;
    struct state_hash_node *n, *next;
    size_t bucket;

    h->restated_ms = now;
    h->restate_pending = false;
    g->stats.health_restatements++;
    STATE_HASH_TABLE_EACH (&h->table, n, next, bucket) {
        struct ghbackend *b = STATE_HASH_ENTRY(n, struct ghbackend, node);

        for (size_t j = 0; j < b->n; j++) {
            struct ghentry *e = &b->obs[j];
            if (e->expires_ms <= now || strcmp(e->observer, gm_id(g->self)) != 0)
                continue;
            e->seq = ghealth_next_seq(g);
            ghealth_queue(g, b, e, (uint32_t)(e->expires_ms - now));
        }
    }
}

/* A restatement now, or at the end of the gap when one ran less than a gap ago. */
static void ghealth_restate_soon(struct gossip *g)
{
    struct ghealth *h = g->health;
    uint64_t now = gossip_now(g);

    if (h->restated_ms != 0 && now - h->restated_ms < GH_RESTATE_GAP_MS) {
        h->restate_pending = true;
        return;
    }
    ghealth_restate(g, now);
}

void ghealth_on_msg(struct gossip *g, const struct gmsg *m)
{
    uint64_t now = gossip_now(g);
    uint32_t ttl = m->ttl_ms < GH_TTL_MAX_MS ? m->ttl_ms : GH_TTL_MAX_MS;
    struct ghbackend *b;
    struct ghentry *e;
    bool fresh;

    if (strcmp(m->id, gm_id(g->self)) == 0 || !ghealth_key_valid(m->key))
        return; /* we are the authority on our own observations */
    b = ghealth_get(g, m->key);
    if (b == NULL)
        return;
    e = ghealth_slot(b, m->id, &fresh);
    if (!fresh && m->version <= e->seq)
        return;
    memset(e, 0, sizeof(*e));
    snprintf(e->observer, sizeof(e->observer), "%s", m->id);
    e->up = m->up;
    e->seq = m->version;
    e->expires_ms = now + ttl;
    e->observed_ms = now;
    ghealth_queue(g, b, e, ttl);
    ghealth_report(g, b, now);
}

void ghealth_expire(struct gossip *g, uint64_t now)
{
    struct ghealth *h = g->health;
    struct state_hash_node *n, *next;
    size_t bucket;

    if (h->restate_pending && now - h->restated_ms >= GH_RESTATE_GAP_MS)
        ghealth_restate(g, now);
    STATE_HASH_TABLE_EACH (&h->table, n, next, bucket) {
        struct ghbackend *b = STATE_HASH_ENTRY(n, struct ghbackend, node);

        for (size_t j = 0; j < b->n;) {
            if (b->obs[j].expires_ms <= now)
                b->obs[j] = b->obs[--b->n];
            else
                j++;
        }
        ghealth_report(g, b, now);
        if (b->n == 0) {
            state_hash_table_remove(&h->table, n);
            free(b);
        }
    }
}

int gossip_health_publish(struct gossip *g, const char *backend, bool up)
{
    uint64_t now = gossip_now(g);
    struct ghbackend *b;
    struct ghentry *e;
    uint64_t changed;
    bool fresh;

    if (!ghealth_key_valid(backend))
        return GOSSIP_EINVAL;
    b = ghealth_get(g, backend);
    if (b == NULL)
        return GOSSIP_ENOMEM;
    e = ghealth_slot(b, gm_id(g->self), &fresh);
    if (!fresh && e->up == up && now - e->published_ms < g->cfg.health_ttl_ms / 2) {
        e->expires_ms = now + g->cfg.health_ttl_ms;
        e->observed_ms = now;
        if (now - e->spread_from_ms < g->cfg.health_ttl_ms / 4) /* a change still spreading */
            ghealth_queue(g, b, e, g->cfg.health_ttl_ms);
        return 0;
    }
    changed = fresh || e->up != up ? now : e->spread_from_ms;
    memset(e, 0, sizeof(*e));
    snprintf(e->observer, sizeof(e->observer), "%s", gm_id(g->self));
    e->up = up;
    e->seq = ghealth_next_seq(g);
    e->expires_ms = now + g->cfg.health_ttl_ms;
    e->published_ms = now;
    e->spread_from_ms = changed;
    e->observed_ms = now;
    ghealth_queue(g, b, e, g->cfg.health_ttl_ms);
    ghealth_report(g, b, now);
    return 0;
}

void ghealth_member_joined(struct gossip *g, bool new_life)
{
    struct ghealth *h = g->health;
    uint64_t now = gossip_now(g);
    struct state_hash_node *n, *next;
    size_t bucket;

    if (new_life)
        ghealth_restate_soon(g);

    STATE_HASH_TABLE_EACH (&h->table, n, next, bucket) {
        struct ghbackend *b = STATE_HASH_ENTRY(n, struct ghbackend, node);

        for (size_t j = 0; j < b->n; j++)
            if (strcmp(b->obs[j].observer, gm_id(g->self)) == 0)
                b->obs[j].spread_from_ms = now;
    }
}

enum gossip_health_verdict gossip_health_verdict(const struct gossip *g, const char *backend,
                                                 unsigned *up, unsigned *down)
{
    const struct ghbackend *b =
        ghealth_key_valid(backend)
            ? ghealth_find(g->health, backend, ghealth_hash(g->health, backend))
            : NULL;

    return ghealth_count(b, gossip_now(g), up, down);
}

int gossip_health_each(const struct gossip *g, gossip_health_visit_fn fn, void *ctx)
{
    const struct ghealth *h = g->health;
    uint64_t now = gossip_now(g);

    struct state_hash_node *n, *next;
    size_t bucket;

    STATE_HASH_TABLE_EACH (&h->table, n, next, bucket) {
        const struct ghbackend *b = STATE_HASH_ENTRY(n, struct ghbackend, node);

        for (size_t j = 0; j < b->n; j++) {
            struct gossip_health_entry e;
            int rc;
            if (b->obs[j].expires_ms <= now)
                continue;
            memset(&e, 0, sizeof(e));
            memcpy(e.backend, b->backend, sizeof(e.backend));
            memcpy(e.observer, b->obs[j].observer, sizeof(e.observer));
            e.up = b->obs[j].up;
            e.expires_ms = b->obs[j].expires_ms;
            e.observed_ms = b->obs[j].observed_ms;
            rc = fn(ctx, &e);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

/* ---- rendezvous hashing ------------------------------------------------------------------ */

struct ghscore {
    uint64_t score; /* hash(member id, backend) */
    const struct gmember *m;
};

/* The k highest-scoring alive members, best first; returns how many. */
static size_t ghealth_top(const struct gossip *g, const char *backend, struct ghscore *top,
                          size_t k)
{
    uint64_t bh = ghash64(backend, strlen(backend), 0x4e);
    size_t n = 0;

    const struct gmember *m;
    uint32_t sid = 0;

    while ((m = gossip_member_next(g, &sid)) != NULL) {
        struct ghscore s;
        size_t pos;
        if (m->state != GOSSIP_ALIVE || (m == g->self && g->leaving))
            continue;
        s.score = ghash64(gm_id(m), strlen(gm_id(m)), bh);
        s.m = m;
        if (n == k && s.score <= top[k - 1].score)
            continue;
        pos = n < k ? n++ : k - 1;
        while (pos > 0 && top[pos - 1].score < s.score) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos] = s;
    }
    return n;
}

bool gossip_health_assigned(const struct gossip *g, const char *backend)
{
    struct ghscore top[32];
    size_t k = g->cfg.health_probers < 32 ? g->cfg.health_probers : 32;
    size_t n;

    if (!ghealth_key_valid(backend))
        return false;
    n = ghealth_top(g, backend, top, k);
    for (size_t i = 0; i < n; i++)
        if (top[i].m == g->self)
            return true;
    return false;
}

size_t gossip_health_probers(const struct gossip *g, const char *backend,
                             char (*ids)[GOSSIP_ID_MAX + 1], size_t cap)
{
    struct ghscore top[32];
    size_t k = g->cfg.health_probers < 32 ? g->cfg.health_probers : 32;
    size_t n;

    if (!ghealth_key_valid(backend))
        return 0;
    if (k > cap)
        k = cap;
    if (k == 0)
        return 0;
    n = ghealth_top(g, backend, top, k);
    for (size_t i = 0; i < n; i++)
        snprintf(ids[i], GOSSIP_ID_MAX + 1, "%s", gm_id(top[i].m));
    return n;
}
