/*
 * probe.c - active health checks of the backends gossip assigns to this node: a TCP connect,
 * or an HTTP GET whose status must be 2xx or 3xx, every interval, with rise/fall hysteresis.
 * Runs on its own thread and loop so a slow probe never delays proxied traffic. Every probe's
 * outcome goes to the node's callback with the current verdict, not only the changes: gossip
 * lets an observation expire after its TTL, so a verdict that is not restated while probing
 * goes on would turn into "unknown" fleet-wide (and a down backend back into a usable one).
 * The node feeds the fleet's combined verdict back with proxy_health_set_fleet.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

struct probe_target {
    struct proxy_probe_state *ps;
    struct state_backend addr;
    struct proxy_backend *be; /* registry entry, held (probe verdict shown in health) */
    uv_timer_t timer;         /* next probe, and the running probe's deadline */
    uv_tcp_t tcp;             /* the running probe's connection */
    uv_connect_t creq;
    uv_write_t wreq;
    bool running;  /* a probe is in flight */
    bool removed;  /* dropped from the set; freed once its handles close */
    int handles;   /* open handles */
    char rbuf[64]; /* start of the HTTP answer */
    size_t rlen;
    char req[512];
    uint32_t ok_streak, fail_streak;
    enum proxy_verdict verdict;
    struct probe_target *next;
};

struct proxy_probe_state {
    struct proxy *p;
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t count_timer; /* counts the loop's handles and timers once a second */
    _Atomic uint32_t loop_handles, loop_timers;
    pthread_mutex_t lock; /* guards the pending set below */
    bool pending;         /* a new set waits */
    bool stop;
    struct state_backend *next_set;
    size_t next_count;
    struct proxy_probe_config pc_next;
    proxy_probe_result_fn fn_next;
    void *ctx_next;
    /* loop thread only */
    struct proxy_probe_config pc;
    proxy_probe_result_fn fn;
    void *ctx;
    struct probe_target *targets;
};

static void probe_schedule(struct probe_target *t, uint64_t ms);

static void target_handle_closed(uv_handle_t *h)
{
    struct probe_target *t = h->data;
    if (--t->handles == 0 && t->removed) {
        proxy_backend_release(t->ps->p, t->be);
        free(t);
    }
}

static void verdict(struct probe_target *t, bool ok, const char *detail)
{
    struct proxy_probe_state *ps = t->ps;
    if (ok) {
        t->ok_streak++;
        t->fail_streak = 0;
    } else {
        t->fail_streak++;
        t->ok_streak = 0;
    }
    enum proxy_verdict v = t->verdict;
    if (ok && (t->ok_streak >= ps->pc.rise || t->verdict == PROXY_VERDICT_UNKNOWN))
        v = PROXY_VERDICT_UP;
    if (!ok && (t->fail_streak >= ps->pc.fall || t->verdict == PROXY_VERDICT_UNKNOWN))
        v = PROXY_VERDICT_DOWN;
    bool changed = v != t->verdict;
    if (changed) {
        t->verdict = v;
        atomic_store_explicit(&t->be->probe, (int)v, memory_order_relaxed);
    }
    /* restated after every probe: this is what keeps the fleet's copy from expiring */
    if (ps->fn)
        ps->fn(ps->ctx, &t->addr, v, changed, detail);
}

static void probe_end(struct probe_target *t, bool ok, const char *detail)
{
    if (!t->running)
        return;
    t->running = false;
    uv_close((uv_handle_t *)&t->tcp, target_handle_closed);
    if (!t->removed) {
        verdict(t, ok, detail);
        probe_schedule(t, t->ps->pc.interval_ms);
    }
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct probe_target *t = h->data;
    (void)sz;
    b->base = t->rbuf + t->rlen;
    b->len = sizeof(t->rbuf) - 1 - t->rlen;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct probe_target *t = s->data;
    (void)b;
    if (n < 0) {
        probe_end(t, false, "http: connection closed before a status line");
        return;
    }
    t->rlen += (size_t)n;
    t->rbuf[t->rlen] = '\0';
    if (t->rlen < 12 && memchr(t->rbuf, '\n', t->rlen) == NULL)
        return;
    int major, minor, status;
    if (sscanf(t->rbuf, "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        probe_end(t, false, "http: malformed status line");
        return;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "http: status %d", status);
    probe_end(t, status >= 200 && status < 400, detail);
}

static void on_write(uv_write_t *w, int status)
{
    struct probe_target *t = w->data;
    if (status != 0 && t->running) {
        char detail[96];
        snprintf(detail, sizeof(detail), "http: write: %s", uv_strerror(status));
        probe_end(t, false, detail);
    }
}

static void on_connect(uv_connect_t *c, int status)
{
    struct probe_target *t = c->data;
    if (!t->running)
        return;
    if (status != 0) {
        char detail[96];
        snprintf(detail, sizeof(detail), "connect: %s", uv_strerror(status));
        probe_end(t, false, detail);
        return;
    }
    struct proxy_probe_state *ps = t->ps;
    if (ps->pc.kind == PROXY_PROBE_TCP) {
        probe_end(t, true, "connect: ok");
        return;
    }
    char host[STATE_FQDN_MAX + 1];
    if (ps->pc.host[0])
        snprintf(host, sizeof(host), "%s", ps->pc.host);
    else
        proxy_backend_format(&t->addr, host); /* fits: 64 <= sizeof(host) */
    int n = snprintf(t->req, sizeof(t->req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: webgw-probe\r\n"
                     "Connection: close\r\n\r\n",
                     ps->pc.path, host);
    uv_buf_t b = uv_buf_init(t->req, (unsigned)n);
    t->rlen = 0;
    t->wreq.data = t;
    if (uv_write(&t->wreq, (uv_stream_t *)&t->tcp, &b, 1, on_write) != 0 ||
        uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read) != 0)
        probe_end(t, false, "http: cannot send the request");
}

static void on_timer(uv_timer_t *timer)
{
    struct probe_target *t = timer->data;
    struct proxy_probe_state *ps = t->ps;
    if (t->running) {
        probe_end(t, false, "timeout");
        return;
    }
    uv_tcp_init(&ps->loop, &t->tcp);
    t->tcp.data = t;
    t->handles++;
    t->running = true;
    t->creq.data = t;
    if (uv_tcp_connect(&t->creq, &t->tcp, (const struct sockaddr *)&t->be->sa, on_connect) != 0) {
        probe_end(t, false, "connect: cannot start");
        return;
    }
    uv_timer_start(&t->timer, on_timer, ps->pc.timeout_ms, 0);
}

static void probe_schedule(struct probe_target *t, uint64_t ms)
{
    uv_timer_start(&t->timer, on_timer, ms, 0);
}

static void target_remove(struct probe_target *t)
{
    t->removed = true;
    /* no longer probed here: our old verdict must not keep vetoing the backend */
    atomic_store_explicit(&t->be->probe, (int)PROXY_VERDICT_UNKNOWN, memory_order_relaxed);
    if (t->running) {
        t->running = false;
        uv_close((uv_handle_t *)&t->tcp, target_handle_closed);
    }
    uv_close((uv_handle_t *)&t->timer, target_handle_closed);
}

static bool same(const struct state_backend *a, const struct state_backend *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->addr, b->addr, a->family == 6 ? 16 : 4) == 0;
}

static void apply_set(struct proxy_probe_state *ps, const struct state_backend *set, size_t n)
{
    struct probe_target **pp = &ps->targets;
    while (*pp) {
        struct probe_target *t = *pp;
        bool keep = false;
        for (size_t i = 0; i < n && !keep; i++)
            keep = same(&t->addr, &set[i]);
        if (!keep) {
            *pp = t->next;
            target_remove(t);
            continue;
        }
        pp = &t->next;
    }
    for (size_t i = 0; i < n; i++) {
        bool have = false;
        for (struct probe_target *t = ps->targets; t && !have; t = t->next)
            have = same(&t->addr, &set[i]);
        if (have)
            continue;
        struct probe_target *t = calloc(1, sizeof(*t));
        if (t == NULL)
            continue;
        t->ps = ps;
        t->addr = set[i];
        t->be = proxy_backend_acquire(ps->p, &set[i]);
        if (t->be == NULL) {
            free(t);
            continue;
        }
        uv_timer_init(&ps->loop, &t->timer);
        t->timer.data = t;
        t->handles = 1;
        t->next = ps->targets;
        ps->targets = t;
        /* spread the first probes over one interval */
        probe_schedule(t, (uint64_t)(i * ps->pc.interval_ms / (n ? n : 1)));
    }
}

static void on_wake(uv_async_t *a)
{
    struct proxy_probe_state *ps = a->data;
    pthread_mutex_lock(&ps->lock);
    bool stop = ps->stop;
    struct state_backend *set = NULL;
    size_t n = 0;
    bool had = ps->pending;
    if (ps->pending) {
        set = ps->next_set;
        n = ps->next_count;
        ps->next_set = NULL;
        ps->pc = ps->pc_next;
        ps->fn = ps->fn_next;
        ps->ctx = ps->ctx_next;
        ps->pending = false;
    }
    pthread_mutex_unlock(&ps->lock);
    if (stop) {
        apply_set(ps, NULL, 0);
        free(set);
        uv_close((uv_handle_t *)&ps->wake, NULL);
        uv_close((uv_handle_t *)&ps->count_timer, NULL);
        return;
    }
    if (had)
        apply_set(ps, set, n);
    free(set);
}

static void on_count(uv_timer_t *t)
{
    struct proxy_probe_state *ps = t->data;
    struct proxy_loop_counts c;

    proxy_loop_count(&ps->loop, &c);
    atomic_store_explicit(&ps->loop_handles, c.handles, memory_order_relaxed);
    atomic_store_explicit(&ps->loop_timers, c.timers, memory_order_relaxed);
}

void proxy_probe_loop_counts(const struct proxy *p, struct proxy_loop_counts *out)
{
    const struct proxy_probe_state *ps = p != NULL ? p->probe : NULL;

    out->handles = out->timers = 0;
    if (ps == NULL)
        return;
    out->handles = atomic_load_explicit(&ps->loop_handles, memory_order_relaxed);
    out->timers = atomic_load_explicit(&ps->loop_timers, memory_order_relaxed);
}

static void *probe_main(void *arg)
{
    struct proxy_probe_state *ps = arg;
    uv_run(&ps->loop, UV_RUN_DEFAULT);
    return NULL;
}

int proxy_probe_set(struct proxy *p, const struct state_backend *backends, size_t count,
                    const struct proxy_probe_config *pc, proxy_probe_result_fn fn, void *ctx,
                    char *err, size_t errlen)
{
    if (count > 4096 || (count && backends == NULL) || pc == NULL || pc->interval_ms == 0 ||
        pc->timeout_ms == 0 || pc->rise == 0 || pc->fall == 0 ||
        (pc->kind == PROXY_PROBE_HTTP && pc->path[0] != '/')) {
        if (err && errlen)
            snprintf(err, errlen,
                     "probe: need interval, timeout, rise, fall > 0 and a path "
                     "starting with /");
        return PROXY_EINVAL;
    }
    struct state_backend *copy = NULL;
    if (count) {
        copy = malloc(count * sizeof(*copy));
        if (copy == NULL)
            return PROXY_ENOMEM;
        memcpy(copy, backends, count * sizeof(*copy));
    }
    /* started on first use; proxy_probe_set is called from one node thread */
    if (p->probe == NULL) {
        struct proxy_probe_state *ps = calloc(1, sizeof(*ps));
        if (ps == NULL || uv_loop_init(&ps->loop) != 0) {
            free(ps);
            free(copy);
            return PROXY_ENOMEM;
        }
        ps->p = p;
        pthread_mutex_init(&ps->lock, NULL);
        uv_async_init(&ps->loop, &ps->wake, on_wake);
        ps->wake.data = ps;
        uv_timer_init(&ps->loop, &ps->count_timer);
        ps->count_timer.data = ps;
        uv_timer_start(&ps->count_timer, on_count, 0, 1000);
        if (pthread_create(&ps->thread, NULL, probe_main, ps) != 0) {
            uv_close((uv_handle_t *)&ps->wake, NULL);
            uv_close((uv_handle_t *)&ps->count_timer, NULL);
            uv_run(&ps->loop, UV_RUN_DEFAULT);
            uv_loop_close(&ps->loop);
            pthread_mutex_destroy(&ps->lock);
            free(ps);
            free(copy);
            if (err && errlen)
                snprintf(err, errlen, "probe: cannot start its thread");
            return PROXY_ESYS;
        }
        p->probe = ps;
    }
    struct proxy_probe_state *ps = p->probe;
    pthread_mutex_lock(&ps->lock);
    free(ps->next_set);
    ps->next_set = copy;
    ps->next_count = count;
    ps->pc_next = *pc;
    ps->fn_next = fn;
    ps->ctx_next = ctx;
    ps->pending = true;
    pthread_mutex_unlock(&ps->lock);
    uv_async_send(&ps->wake);
    return PROXY_OK;
}

void proxy_probe_free(struct proxy *p)
{
    struct proxy_probe_state *ps = p->probe;
    if (ps == NULL)
        return;
    pthread_mutex_lock(&ps->lock);
    ps->stop = true;
    pthread_mutex_unlock(&ps->lock);
    uv_async_send(&ps->wake);
    pthread_join(ps->thread, NULL);
    uv_loop_close(&ps->loop);
    free(ps->next_set);
    pthread_mutex_destroy(&ps->lock);
    free(ps);
    p->probe = NULL;
}
