/*
 * registry.c - the shared backend registry: one entry per backend address the proxy may send
 * traffic to, holding its health and counters (struct proxy_backend), and its lifetime.
 *
 * Backends come from records anyone can publish, and from probes and fleet health verdicts
 * that name any IP:PORT, so the registry must shrink as well as grow. An entry lives while
 * something refers to it:
 *   routes  the route table's references, counted by the route observer (state_routes_observe):
 *           +1 for every published route that lists the backend, -1 when that route is
 *           retired. The new route is announced before the old one is retired, so a backend
 *           kept across a record update never drops to zero in between and keeps its health.
 *   users   holders of a pointer: each worker's view (struct proxy_wbackend) and each probe
 *           target. They take and drop it under reg_lock (proxy_backend_acquire/release).
 * An entry with neither is unlinked and freed at once, under reg_lock. No grace period is
 * needed: the workers' lock-free reads go through the route table (RCU), which hands out
 * addresses, never registry pointers; every registry pointer held outside reg_lock is a
 * counted user. A fleet verdict from gossip only updates an existing entry: a health message
 * naming a backend no route or probe uses is ignored here (the node feeds it again when a
 * route appears).
 *
 * Workers drop their views of backends no route refers to any more in their sweep, once no
 * session holds them (proxy_session_mark_held); routes_gen tells them when to look.
 *
 * The registry and each worker's views are state's keyed hash tables (hash_table.c: SipHash
 * under a random key per table, addresses are remote input), grown and shrunk with the entry
 * count.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

#define REG_BUCKETS_MIN 1024 /* never shrink below */
#define WB_BUCKETS_MIN 64

static bool same_addr(const struct state_backend *a, const struct state_backend *b)
{
    size_t n = a->family == 6 ? 16 : 4;
    return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, n) == 0;
}

/* The key bytes of an address: family, the address's own bytes, port (no padding). */
static uint64_t addr_hash(const struct state_hash_table *t, const struct state_backend *a)
{
    uint8_t buf[19];
    size_t n = a->family == 6 ? 16 : 4;
    buf[0] = a->family;
    memcpy(buf + 1, a->addr, n);
    buf[1 + n] = (uint8_t)(a->port >> 8);
    buf[2 + n] = (uint8_t)a->port;
    return state_hash_table_hash(t, buf, n + 3);
}

static bool backend_is(const struct state_hash_node *n, const void *addr)
{
    return same_addr(&STATE_HASH_ENTRY(n, struct proxy_backend, node)->addr, addr);
}

static bool view_is(const struct state_hash_node *n, const void *addr)
{
    return same_addr(&STATE_HASH_ENTRY(n, struct proxy_wbackend, node)->be->addr, addr);
}

/* Entries are bounded by their users: routes (the records' bound) and capped creations
 * (PROXY_BACKENDS_TRACKED_MAX, registry_get), so the table sets no bound of its own. */
int proxy_registry_init(struct proxy *p)
{
    pthread_mutex_init(&p->reg_lock, NULL);
    state_hash_table_init(&p->reg, REG_BUCKETS_MIN, SIZE_MAX);
    return 0;
}

void proxy_registry_free(struct proxy *p)
{
    state_hash_table_free_all(&p->reg, offsetof(struct proxy_backend, node));
    pthread_mutex_destroy(&p->reg_lock);
}

/* Under reg_lock. */
static struct proxy_backend *registry_find(struct proxy *p, const struct state_backend *addr)
{
    struct state_hash_node *n =
        state_hash_table_find(&p->reg, addr_hash(&p->reg, addr), backend_is, addr);
    return n ? STATE_HASH_ENTRY(n, struct proxy_backend, node) : NULL;
}

/* Under reg_lock: finds or creates. `capped`: refuse to create past the tracking bound. */
static struct proxy_backend *registry_get(struct proxy *p, const struct state_backend *addr,
                                          bool capped)
{
    struct proxy_backend *be = registry_find(p, addr);
    if (be != NULL)
        return be;
    if (capped && p->reg.count >= PROXY_BACKENDS_TRACKED_MAX)
        return NULL;
    be = calloc(1, sizeof(*be));
    if (be == NULL)
        return NULL;
    be->addr = *addr;
    if (addr->family == 6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&be->sa;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, addr->addr, 16);
        in6->sin6_port = htons(addr->port);
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&be->sa;
        in4->sin_family = AF_INET;
        memcpy(&in4->sin_addr, addr->addr, 4);
        in4->sin_port = htons(addr->port);
    }
    proxy_backend_format(addr, be->text);
    be->own = proxy_addr_is_own(p, addr);
    if (state_hash_table_insert(&p->reg, &be->node, addr_hash(&p->reg, addr)) != 0) {
        free(be);
        return NULL;
    }
    return be;
}

/* Under reg_lock: frees `be` when nothing refers to it any more. */
static void registry_maybe_free(struct proxy *p, struct proxy_backend *be)
{
    if (atomic_load_explicit(&be->routes, memory_order_relaxed) != 0 || be->users != 0)
        return;
    state_hash_table_remove(&p->reg, &be->node);
    free(be);
    state_hash_table_shrink(&p->reg);
}

struct proxy_backend *proxy_backend_acquire(struct proxy *p, const struct state_backend *addr)
{
    pthread_mutex_lock(&p->reg_lock);
    /* bounded like every input; entries routes refer to exist already and are not capped */
    struct proxy_backend *be = registry_get(p, addr, true);
    if (be != NULL)
        be->users++;
    pthread_mutex_unlock(&p->reg_lock);
    return be;
}

void proxy_backend_release(struct proxy *p, struct proxy_backend *be)
{
    if (be == NULL)
        return;
    pthread_mutex_lock(&p->reg_lock);
    be->users--;
    registry_maybe_free(p, be);
    pthread_mutex_unlock(&p->reg_lock);
}

void proxy_registry_route(void *ctx, const struct state_route *route, bool added)
{
    struct proxy *p = ctx;
    pthread_mutex_lock(&p->reg_lock);
    for (uint8_t i = 0; i < route->backend_count; i++) {
        struct proxy_backend *be;
        if (added) {
            /* not capped: the route table bounds what routes refer to */
            be = registry_get(p, &route->backends[i], false);
            if (be != NULL)
                atomic_fetch_add_explicit(&be->routes, 1, memory_order_relaxed);
            continue;
        }
        be = registry_find(p, &route->backends[i]);
        /* an entry missing at `added` (out of memory) was never counted */
        if (be == NULL || atomic_load_explicit(&be->routes, memory_order_relaxed) == 0)
            continue;
        atomic_fetch_sub_explicit(&be->routes, 1, memory_order_relaxed);
        registry_maybe_free(p, be);
    }
    pthread_mutex_unlock(&p->reg_lock);
    /* workers look for views and counters that lost their route */
    if (!added)
        atomic_fetch_add_explicit(&p->routes_gen, 1, memory_order_release);
}

size_t proxy_backend_entries(struct proxy *p)
{
    pthread_mutex_lock(&p->reg_lock);
    size_t n = p->reg.count;
    pthread_mutex_unlock(&p->reg_lock);
    return n;
}

int proxy_backends_each(struct proxy *p, proxy_backend_visit_fn fn, void *ctx)
{
    int rc = 0;
    uint64_t now = proxy_mono_ms();
    uint64_t wall = state_now_ms();
    struct state_hash_node *n, *next;
    size_t bucket;
    pthread_mutex_lock(&p->reg_lock);
    STATE_HASH_TABLE_EACH (&p->reg, n, next, bucket) {
        const struct proxy_backend *be = STATE_HASH_ENTRY(n, struct proxy_backend, node);
        struct proxy_backend_health h;
        memset(&h, 0, sizeof(h));
        h.addr = be->addr;
        uint64_t until = atomic_load_explicit(&be->down_until, memory_order_relaxed);
        h.passive_down = until > now;
        h.down_until_ms = h.passive_down ? wall + (until - now) : 0;
        h.fleet = (enum proxy_verdict)atomic_load_explicit(&be->fleet, memory_order_relaxed);
        h.probe = (enum proxy_verdict)atomic_load_explicit(&be->probe, memory_order_relaxed);
        h.up = proxy_backend_usable(be, now);
        h.in_flight = atomic_load_explicit(&be->in_flight, memory_order_relaxed);
        h.requests = atomic_load_explicit(&be->requests, memory_order_relaxed);
        h.failures = atomic_load_explicit(&be->failures, memory_order_relaxed);
        rc = fn(&h, ctx);
        if (rc != 0)
            break;
    }
    pthread_mutex_unlock(&p->reg_lock);
    return rc;
}

void proxy_health_set_fleet(struct proxy *p, const struct state_backend *addr,
                            enum proxy_verdict verdict)
{
    pthread_mutex_lock(&p->reg_lock);
    /* never creates: gossip may name any address */
    struct proxy_backend *be = registry_find(p, addr);
    if (be != NULL) {
        int was = atomic_exchange_explicit(&be->fleet, (int)verdict, memory_order_relaxed);
        /* The probes saw it come back: newer evidence than the failures our passive backoff
         * counted while it was down (up to 30 s of them, which would keep a recovered backend
         * out and could leave a name with no usable backend at all). */
        if (verdict == PROXY_VERDICT_UP && was != PROXY_VERDICT_UP) {
            atomic_store_explicit(&be->down_until, 0, memory_order_relaxed);
            atomic_store_explicit(&be->backoff_ms, 0, memory_order_relaxed);
            atomic_store_explicit(&be->fails_in_row, 0, memory_order_relaxed);
        }
    }
    pthread_mutex_unlock(&p->reg_lock);
}

/* ---- each worker's views ------------------------------------------------------------------ */

void proxy_worker_backends_init(struct proxy_worker *w)
{
    state_hash_table_init(&w->views, WB_BUCKETS_MIN, SIZE_MAX);
}

struct proxy_wbackend *proxy_worker_backend(struct proxy_worker *w, const struct state_backend *a)
{
    uint64_t hash = addr_hash(&w->views, a);
    struct state_hash_node *n = state_hash_table_find(&w->views, hash, view_is, a);
    if (n != NULL)
        return STATE_HASH_ENTRY(n, struct proxy_wbackend, node);
    struct proxy_wbackend *wb = calloc(1, sizeof(*wb));
    if (wb == NULL)
        return NULL;
    wb->be = proxy_backend_acquire(w->p, a);
    if (wb->be == NULL) {
        free(wb);
        return NULL;
    }
    wb->w = w;
    proxy_list_init(&wb->idle);
    if (state_hash_table_insert(&w->views, &wb->node, hash) != 0) {
        proxy_backend_release(w->p, wb->be);
        free(wb);
        return NULL;
    }
    return wb;
}

/* Drops the views of backends no route refers to, unless a session holds them (marked by
 * proxy_session_mark_held) or a pooled connection is still closing. Returns how many such
 * views had to stay. */
static size_t worker_backends_evict(struct proxy_worker *w)
{
    struct state_hash_node *n, *next;
    size_t kept = 0, bucket;
    STATE_HASH_TABLE_EACH (&w->views, n, next, bucket) {
        struct proxy_wbackend *wb = STATE_HASH_ENTRY(n, struct proxy_wbackend, node);
        bool routed = atomic_load_explicit(&wb->be->routes, memory_order_relaxed) != 0;
        if (!routed) {
            /* nobody will ask for it again: its idle pool goes now, not in 60 s */
            while (!proxy_list_empty(&wb->idle))
                proxy_upstream_close(
                    PROXY_CONTAINER(wb->idle.next, struct proxy_upstream, pool_link));
        }
        if (routed || wb->held) {
            kept += !routed;
            wb->held = false;
            continue;
        }
        state_hash_table_remove(&w->views, n);
        proxy_backend_release(w->p, wb->be);
        free(wb);
    }
    state_hash_table_shrink(&w->views);
    return kept;
}

void proxy_worker_evict(struct proxy_worker *w)
{
    uint64_t gen = atomic_load_explicit(&w->p->routes_gen, memory_order_acquire);
    if (gen == w->seen_gen && !w->evict_pending)
        return;
    w->seen_gen = gen;
    proxy_session_mark_held(w);
    size_t kept = worker_backends_evict(w);
    size_t kept_stats = proxy_stats_evict(w);
    w->evict_pending = kept + kept_stats > 0;
}

void proxy_worker_backends_free(struct proxy_worker *w)
{
    struct state_hash_node *n, *next;
    size_t bucket;
    STATE_HASH_TABLE_EACH (&w->views, n, next, bucket) {
        struct proxy_wbackend *wb = STATE_HASH_ENTRY(n, struct proxy_wbackend, node);
        proxy_backend_release(w->p, wb->be);
        free(wb);
    }
    state_hash_table_fini(&w->views);
}
