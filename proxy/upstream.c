/*
 * upstream.c - connections to backends and the per-worker keep-alive pool.
 *
 * Like nginx's upstream keepalive module: a connection goes back to the pool only when clean
 * (the whole request sent, the whole response read, no stray bytes, keep-alive allowed, under
 * its request limit; the session decides that). While idle it keeps a read watch so a backend
 * closing it is noticed at once, and before reuse recv(MSG_PEEK) checks that it has not been
 * closed in the meantime, so a request is never written into a dead connection we could know
 * about.
 *
 * What no check can see is a backend whose idle timeout fires just as the request reaches it
 * (Node's keepAliveTimeout race): it closes a connection we were right to think alive. An
 * idempotent request is then sent again on a new connection; a POST cannot be (RFC 9110
 * 9.2.2). So a request that could not be sent again takes a pooled connection only if it has
 * been idle less than pool_unsafe_idle_ms (100 ms, below any backend idle timeout in common
 * use), else a new one: the idea of HAProxy's "http-reuse safe" and Apache's
 * proxy-initial-not-pooled, applied where the risk is, a connection that sat idle.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "proxy/internal.h"

#define UPSTREAM_IN_INITIAL 16384

static void on_idle_read(struct proxy_conn *c, int status)
{
    /* an idle connection has nothing to say: data or EOF both mean it is unusable */
    (void)status;
    proxy_upstream_close((struct proxy_upstream *)c);
}

static void on_upstream_closed(struct proxy_conn *c)
{
    free(c);
}

/* The only two places a connection enters and leaves a pool: the pool's length and the
 * worker's count (proxy_backend_pool_idle) move with the list. */
static void pool_link(struct proxy_wbackend *wb, struct proxy_upstream *up)
{
    _Atomic uint32_t *n = &wb->w->pool_idle;
    proxy_list_add(&wb->idle, &up->pool_link);
    wb->idle_count++;
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void pool_unlink(struct proxy_upstream *up)
{
    _Atomic uint32_t *n = &up->wb->w->pool_idle;
    proxy_list_del(&up->pool_link);
    up->wb->idle_count--;
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

void proxy_upstream_close(struct proxy_upstream *up)
{
    if (up->c.closing)
        return;
    if (up->s == NULL && up->wb && up->pool_link.next != &up->pool_link)
        pool_unlink(up);
    up->s = NULL;
    proxy_conn_close(&up->c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct proxy_upstream *up = req->data;
    if (status == UV_ECANCELED || up->c.closing)
        return;
    if (status == 0) {
        up->connected = true;
        uv_tcp_nodelay(&up->c.tcp, 1);
    }
    up->connected_cb(up, status);
}

struct proxy_upstream *proxy_upstream_connect(struct proxy_worker *w, struct proxy_wbackend *wb,
                                              void (*connected)(struct proxy_upstream *, int))
{
    struct proxy *p = w->p;
    struct proxy_upstream *up = calloc(1, sizeof(*up));
    if (up == NULL)
        return NULL;
    size_t in_max = proxy_conn_in_max(p);
    if (proxy_conn_init(&w->conns, &up->c, UPSTREAM_IN_INITIAL, in_max) != 0) {
        free(up);
        return NULL;
    }
    up->wb = wb;
    proxy_list_init(&up->pool_link);
    up->c.on_closed = on_upstream_closed;
    up->connected_cb = connected;
    up->creq.data = up;
    int rc =
        uv_tcp_connect(&up->creq, &up->c.tcp, (const struct sockaddr *)&wb->be->sa, on_connect);
    if (rc != 0) {
        /* reported like an asynchronous failure so callers have one path */
        proxy_conn_close(&up->c);
        return NULL;
    }
    return up;
}

struct proxy_upstream *proxy_pool_take(struct proxy_worker *w, struct proxy_wbackend *wb,
                                       uint64_t max_idle_ms)
{
    while (!proxy_list_empty(&wb->idle)) {
        struct proxy_link *l = wb->idle.next;
        struct proxy_upstream *up = PROXY_CONTAINER(l, struct proxy_upstream, pool_link);
        /* most recent first: the others have been idle longer still; they stay for requests
         * that may take them */
        if (uv_now(&w->loop) - up->idle_since_ms >= max_idle_ms)
            return NULL;
        pool_unlink(up);
        uv_os_fd_t fd;
        char byte;
        ssize_t n = -1;
        errno = EAGAIN;
        /* A connection that went idle moments ago was alive at the last poll and its read
         * watch would have seen a close since; a backend's idle timeout closes connections
         * idle for seconds. Those are the ones worth a system call. */
        if (uv_now(&w->loop) - up->idle_since_ms < w->p->cfg.pool_check_after_ms)
            n = -1;
        else if (uv_fileno((uv_handle_t *)&up->c.tcp, &fd) == 0)
            n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            /* the read watch stays on: the session takes over its callback, no epoll_ctl */
            up->reused = true;
            up->reused_after = uv_now(&w->loop) - up->idle_since_ms;
            return up;
        }
        /* EOF, stray bytes or an error: the backend is done with it */
        proxy_conn_close(&up->c);
    }
    return NULL;
}

void proxy_pool_put(struct proxy_worker *w, struct proxy_upstream *up)
{
    struct proxy_wbackend *wb = up->wb;
    up->s = NULL;
    if (w->draining || w->stopping || wb->idle_count >= w->p->cfg.pool_max_idle ||
        up->requests >= w->p->cfg.pool_max_requests || proxy_conn_avail(&up->c) != 0 ||
        up->c.write_err != 0) {
        proxy_conn_close(&up->c);
        return;
    }
    up->c.on_read = on_idle_read;
    up->c.on_written = NULL;
    up->idle_since_ms = uv_now(&w->loop);
    if (proxy_conn_read_start(&up->c) != 0) {
        proxy_conn_close(&up->c);
        return;
    }
    pool_link(wb, up);
}

void proxy_pool_sweep(struct proxy_worker *w, uint64_t now_ms, bool all)
{
    uint64_t timeout = w->p->cfg.pool_idle_timeout_ms;
    struct state_hash_node *n, *next;
    size_t bucket;
    STATE_HASH_TABLE_EACH (&w->views, n, next, bucket) {
        struct proxy_wbackend *wb = STATE_HASH_ENTRY(n, struct proxy_wbackend, node);
        /* most recent first: the old ones are at the tail */
        while (!proxy_list_empty(&wb->idle)) {
            struct proxy_link *l = wb->idle.prev;
            struct proxy_upstream *up = PROXY_CONTAINER(l, struct proxy_upstream, pool_link);
            if (!all && now_ms - up->idle_since_ms < timeout)
                break;
            proxy_upstream_close(up);
        }
    }
}

uint64_t proxy_backend_pool_idle(const struct proxy *p)
{
    uint64_t n = 0;
    for (unsigned i = 0; p != NULL && i < p->nworkers; i++)
        n += atomic_load_explicit(&p->workers[i].pool_idle, memory_order_relaxed);
    return n;
}
