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
 * The table is chained and keyed by SipHash with a per-proxy key (addresses are remote
 * input), grown and shrunk with the entry count.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

#define REG_BUCKETS_MIN 1024 /* never shrink below */

static bool same_addr(const struct state_backend *a, const struct state_backend *b)
{
    size_t n = a->family == 6 ? 16 : 4;
    return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, n) == 0;
}

uint64_t proxy_addr_hash(const uint64_t key[2], const struct state_backend *a)
{
    uint8_t buf[19];
    size_t n = a->family == 6 ? 16 : 4;
    buf[0] = a->family;
    memcpy(buf + 1, a->addr, n);
    buf[1 + n] = (uint8_t)(a->port >> 8);
    buf[2 + n] = (uint8_t)a->port;
    return state_siphash(key, buf, n + 3);
}

int proxy_registry_init(struct proxy *p)
{
    pthread_mutex_init(&p->reg_lock, NULL);
    state_siphash_key(p->hash_key);
    p->reg_size = REG_BUCKETS_MIN;
    p->reg = calloc(p->reg_size, sizeof(*p->reg));
    return p->reg ? 0 : PROXY_ENOMEM;
}

void proxy_registry_free(struct proxy *p)
{
    for (size_t b = 0; p->reg && b < p->reg_size; b++) {
        struct proxy_backend *be = p->reg[b];
        while (be) {
            struct proxy_backend *n = be->next;
            free(be);
            be = n;
        }
    }
    free(p->reg);
    p->reg = NULL;
    pthread_mutex_destroy(&p->reg_lock);
}

/* Rehashes into `size` buckets; on allocation failure the table stays as it is. */
static void registry_resize(struct proxy *p, size_t size)
{
    struct proxy_backend **nt = calloc(size, sizeof(*nt));
    if (nt == NULL)
        return;
    for (size_t b = 0; b < p->reg_size; b++) {
        struct proxy_backend *be = p->reg[b];
        while (be) {
            struct proxy_backend *n = be->next;
            size_t i = proxy_addr_hash(p->hash_key, &be->addr) & (size - 1);
            be->next = nt[i];
            nt[i] = be;
            be = n;
        }
    }
    free(p->reg);
    p->reg = nt;
    p->reg_size = size;
}

/* Under reg_lock. */
static struct proxy_backend *registry_find(struct proxy *p, const struct state_backend *addr)
{
    size_t i = proxy_addr_hash(p->hash_key, addr) & (p->reg_size - 1);
    for (struct proxy_backend *be = p->reg[i]; be; be = be->next)
        if (same_addr(&be->addr, addr))
            return be;
    return NULL;
}

/* Under reg_lock: finds or creates. `capped`: refuse to create past the tracking bound. */
static struct proxy_backend *registry_get(struct proxy *p, const struct state_backend *addr,
                                          bool capped)
{
    struct proxy_backend *be = registry_find(p, addr);
    if (be != NULL)
        return be;
    if (capped && p->backend_count >= PROXY_BACKENDS_TRACKED_MAX)
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
    size_t i = proxy_addr_hash(p->hash_key, addr) & (p->reg_size - 1);
    be->next = p->reg[i];
    p->reg[i] = be;
    p->backend_count++;
    if (p->backend_count > p->reg_size)
        registry_resize(p, p->reg_size * 2);
    return be;
}

/* Under reg_lock: frees `be` when nothing refers to it any more. */
static void registry_maybe_free(struct proxy *p, struct proxy_backend *be)
{
    if (atomic_load_explicit(&be->routes, memory_order_relaxed) != 0 || be->users != 0)
        return;
    size_t i = proxy_addr_hash(p->hash_key, &be->addr) & (p->reg_size - 1);
    for (struct proxy_backend **pp = &p->reg[i]; *pp; pp = &(*pp)->next) {
        if (*pp == be) {
            *pp = be->next;
            break;
        }
    }
    free(be);
    p->backend_count--;
    if (p->reg_size > REG_BUCKETS_MIN && p->backend_count < p->reg_size / 8)
        registry_resize(p, p->reg_size / 2);
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
    size_t n = p->backend_count;
    pthread_mutex_unlock(&p->reg_lock);
    return n;
}

int proxy_backends_each(struct proxy *p, proxy_backend_visit_fn fn, void *ctx)
{
    int rc = 0;
    uint64_t now = proxy_mono_ms();
    uint64_t wall = state_now_ms();
    pthread_mutex_lock(&p->reg_lock);
    for (size_t b = 0; b < p->reg_size && rc == 0; b++) {
        for (struct proxy_backend *be = p->reg[b]; be && rc == 0; be = be->next) {
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
        }
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

#define WB_BUCKETS_MIN 64

static void wb_resize(struct proxy_worker *w, size_t size)
{
    struct proxy_wbackend **nt = calloc(size, sizeof(*nt));
    if (nt == NULL)
        return;
    for (size_t b = 0; b < w->wb_size; b++) {
        struct proxy_wbackend *wb = w->wb[b];
        while (wb) {
            struct proxy_wbackend *n = wb->next;
            size_t i = proxy_addr_hash(w->p->hash_key, &wb->be->addr) & (size - 1);
            wb->next = nt[i];
            nt[i] = wb;
            wb = n;
        }
    }
    free(w->wb);
    w->wb = nt;
    w->wb_size = size;
}

struct proxy_wbackend *proxy_worker_backend(struct proxy_worker *w, const struct state_backend *a)
{
    if (w->wb == NULL) {
        wb_resize(w, WB_BUCKETS_MIN);
        if (w->wb == NULL)
            return NULL;
    }
    size_t b = proxy_addr_hash(w->p->hash_key, a) & (w->wb_size - 1);
    for (struct proxy_wbackend *wb = w->wb[b]; wb; wb = wb->next)
        if (same_addr(&wb->be->addr, a))
            return wb;
    struct proxy_wbackend *wb = calloc(1, sizeof(*wb));
    if (wb == NULL)
        return NULL;
    wb->be = proxy_backend_acquire(w->p, a);
    if (wb->be == NULL) {
        free(wb);
        return NULL;
    }
    proxy_list_init(&wb->idle);
    wb->next = w->wb[b];
    w->wb[b] = wb;
    w->wb_count++;
    if (w->wb_count > w->wb_size)
        wb_resize(w, w->wb_size * 2);
    return wb;
}

/* Drops the views of backends no route refers to, unless a session holds them (marked by
 * proxy_session_mark_held) or a pooled connection is still closing. Returns how many such
 * views had to stay. */
static size_t worker_backends_evict(struct proxy_worker *w)
{
    size_t kept = 0;
    for (size_t b = 0; b < w->wb_size; b++) {
        struct proxy_wbackend **pp = &w->wb[b];
        while (*pp) {
            struct proxy_wbackend *wb = *pp;
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
                pp = &wb->next;
                continue;
            }
            *pp = wb->next;
            proxy_backend_release(w->p, wb->be);
            free(wb);
            w->wb_count--;
        }
    }
    if (w->wb_size > WB_BUCKETS_MIN && w->wb_count < w->wb_size / 8)
        wb_resize(w, w->wb_size / 2);
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
    for (size_t b = 0; b < w->wb_size; b++) {
        struct proxy_wbackend *wb = w->wb[b];
        while (wb) {
            struct proxy_wbackend *n = wb->next;
            proxy_backend_release(w->p, wb->be);
            free(wb);
            wb = n;
        }
    }
    free(w->wb);
    w->wb = NULL;
    w->wb_size = w->wb_count = 0;
}
