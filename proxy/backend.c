/*
 * backend.c - backends as the proxy sees them: passive health with exponential backoff, the
 * combination of fleet, probe and passive views into "usable", loop prevention, and the
 * load-balancing policies. The registry of entries itself is registry.c.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proxy/internal.h"

uint64_t proxy_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t proxy_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

void proxy_backend_format(const struct state_backend *a, char out[64])
{
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(a->family == 6 ? AF_INET6 : AF_INET, a->addr, ip, sizeof(ip));
    if (a->family == 6)
        snprintf(out, 64, "[%s]:%u", ip, a->port);
    else
        snprintf(out, 64, "%s:%u", ip, a->port);
}

bool proxy_addr_is_own(const struct proxy *p, const struct state_backend *addr)
{
    size_t n = addr->family == 6 ? 16 : 4;
    for (size_t i = 0; i < p->cfg.own_addr_count; i++) {
        const struct state_backend *o = &p->cfg.own_addrs[i];
        if (o->family == addr->family && memcmp(o->addr, addr->addr, n) == 0 &&
            (o->port == 0 || o->port == addr->port))
            return true;
    }
    return false;
}

bool proxy_backend_usable(const struct proxy_backend *be, uint64_t now_ms)
{
    if (be->own)
        return false;
    int fleet = atomic_load_explicit(&be->fleet, memory_order_relaxed);
    if (fleet == PROXY_VERDICT_DOWN)
        return false;
    /* nobody's report is fresh: our own probe, when we run one, still knows */
    if (fleet == PROXY_VERDICT_UNKNOWN &&
        atomic_load_explicit(&be->probe, memory_order_relaxed) == PROXY_VERDICT_DOWN)
        return false;
    return atomic_load_explicit(&be->down_until, memory_order_relaxed) <= now_ms;
}

/* Passive health, in the manner of nginx's max_fails or HAProxy's error-limit: a failure
 * (connect refused or timed out, reset or no answer on a fresh connection) counts, and only
 * cfg.down_after_failures in a row with no answer between them take the backend out, for
 * down_backoff_ms; each further failure doubles that pause, up to down_backoff_max_ms. One
 * reset is a request's bad luck, not a verdict on the backend. */
void proxy_backend_failed(struct proxy *p, struct proxy_backend *be, uint64_t now_ms)
{
    atomic_fetch_add_explicit(&be->failures, 1, memory_order_relaxed);
    uint32_t row = atomic_fetch_add_explicit(&be->fails_in_row, 1, memory_order_relaxed) + 1;
    if (row < p->cfg.down_after_failures)
        return;
    uint32_t cur = atomic_load_explicit(&be->backoff_ms, memory_order_relaxed);
    uint32_t next = cur ? cur * 2 : p->cfg.down_backoff_ms;
    if (next > p->cfg.down_backoff_max_ms)
        next = p->cfg.down_backoff_max_ms;
    atomic_store_explicit(&be->backoff_ms, next, memory_order_relaxed);
    atomic_store_explicit(&be->down_until, now_ms + next, memory_order_relaxed);
}

void proxy_backend_succeeded(struct proxy_backend *be)
{
    /* read first: a healthy backend's cache line stays shared between workers */
    if (atomic_load_explicit(&be->backoff_ms, memory_order_relaxed) != 0)
        atomic_store_explicit(&be->backoff_ms, 0, memory_order_relaxed);
    if (atomic_load_explicit(&be->fails_in_row, memory_order_relaxed) != 0)
        atomic_store_explicit(&be->fails_in_row, 0, memory_order_relaxed);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

int proxy_balance_pick(struct proxy_worker *w, const struct state_route *route, uint32_t tried,
                       struct proxy_wbackend **out)
{
    struct proxy_wbackend *cand[STATE_BACKENDS_MAX];
    int idx[STATE_BACKENDS_MAX];
    int n = 0;
    uint64_t now = proxy_mono_ms();

    for (int i = 0; i < route->backend_count && i < STATE_BACKENDS_MAX; i++) {
        if (tried & (1u << i))
            continue;
        struct proxy_wbackend *wb = proxy_worker_backend(w, &route->backends[i]);
        if (wb == NULL || !proxy_backend_usable(wb->be, now))
            continue;
        cand[n] = wb;
        idx[n] = i;
        n++;
    }
    if (n == 0)
        return -1;
    int pick = 0;
    switch (w->p->cfg.balance) {
    case PROXY_BALANCE_ROUND_ROBIN:
        pick = (int)(w->rr++ % (uint64_t)n);
        break;
    case PROXY_BALANCE_LEAST_CONN: {
        /* start at a rotating offset so ties do not all go to the first backend */
        int start = (int)(w->rr++ % (uint64_t)n);
        uint64_t best = UINT64_MAX;
        for (int k = 0; k < n; k++) {
            int j = (start + k) % n;
            uint64_t f = atomic_load_explicit(&cand[j]->be->in_flight, memory_order_relaxed);
            if (f < best) {
                best = f;
                pick = j;
            }
        }
        break;
    }
    case PROXY_BALANCE_P2C: {
        int a = (int)(xorshift(&w->rng) % (uint64_t)n);
        int b = n > 1 ? (int)((a + 1 + (int)(xorshift(&w->rng) % (uint64_t)(n - 1))) % n) : a;
        uint64_t fa = atomic_load_explicit(&cand[a]->be->in_flight, memory_order_relaxed);
        uint64_t fb = atomic_load_explicit(&cand[b]->be->in_flight, memory_order_relaxed);
        pick = fb < fa ? b : a;
        break;
    }
    }
    *out = cand[pick];
    return idx[pick];
}
