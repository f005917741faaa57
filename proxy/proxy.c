/*
 * proxy.c - lifecycle of the proxy: listening sockets, worker threads and their loops,
 * drain and stop. The backend registry and the health the node reads and feeds are in
 * registry.c.
 *
 * Every worker gets its own SO_REUSEPORT socket bound to the same address, so the kernel
 * balances new connections over workers and a worker never touches another's connections.
 * The sockets are created here, in the caller's thread, so a bind error is reported by
 * proxy_start itself. Other threads talk to a worker only through `cmd` + uv_async_send.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/filter.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/internal.h"

#define ERR(...)                                                                                   \
    do {                                                                                           \
        if (err && errlen)                                                                         \
            snprintf(err, errlen, __VA_ARGS__);                                                    \
    } while (0)

/* Binds and listens on one address. An IPv6 socket takes IPv4 clients too unless v6only: a
 * "[::]" listener then serves both families. Returns the fd, or -1 with err set. */
static int listen_socket(const struct sockaddr_storage *addr, bool v6only, int backlog, char *err,
                         size_t errlen)
{
    int one = 1, v6only_opt = v6only ? 1 : 0;
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        ERR("socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) {
        ERR("setsockopt SO_REUSEPORT: %s", strerror(errno));
        goto fail;
    }
    if (addr->ss_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only_opt, sizeof(v6only_opt)) != 0) {
        ERR("setsockopt IPV6_V6ONLY: %s", strerror(errno));
        goto fail;
    }
    socklen_t len =
        addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, (const struct sockaddr *)addr, len) != 0) {
        char host[INET6_ADDRSTRLEN] = "?";
        uint16_t port;
        if (addr->ss_family == AF_INET6) {
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, host,
                      sizeof(host));
            port = ntohs(((const struct sockaddr_in6 *)addr)->sin6_port);
        } else {
            inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, host, sizeof(host));
            port = ntohs(((const struct sockaddr_in *)addr)->sin_port);
        }
        ERR("bind %s port %u: %s", host, port, strerror(errno));
        goto fail;
    }
    if (listen(fd, backlog) != 0) {
        ERR("listen: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

/* A host without IPv6 (kernel booted with ipv6.disable=1) cannot open an AF_INET6 socket at
 * all; there "[::]" (every address, both families) can only mean 0.0.0.0. An explicit v6only
 * or a specific IPv6 address keeps its error. */
static struct sockaddr_storage listen_effective_addr(const struct proxy_listen *l)
{
    static const uint8_t any6[16];
    struct sockaddr_storage a = l->addr;
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&l->addr;
    int fd;

    if (a.ss_family != AF_INET6 || l->v6only || memcmp(&s6->sin6_addr, any6, 16) != 0)
        return a;
    fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0) {
        close(fd);
        return a;
    }
    if (errno != EAFNOSUPPORT)
        return a;
    memset(&a, 0, sizeof(a));
    ((struct sockaddr_in *)&a)->sin_family = AF_INET;
    ((struct sockaddr_in *)&a)->sin_port = s6->sin6_port;
    return a;
}

/* Opens one listening socket per worker on `l` (SO_REUSEPORT), into each worker's next listen
 * slot. The first socket fixes the port (the address may say 0) and the others share it; the
 * port is stored in *port when port is not NULL. Returns 0, or -1 with err set ("https: bind
 * ...: Address in use"); sockets opened so far stay in the workers for proxy_free to close. */
static int listen_workers(struct proxy *p, const struct proxy_listen *l, bool tls, uint16_t *port,
                          char *err, size_t errlen)
{
    struct sockaddr_storage addr = listen_effective_addr(l);
    char why[PROXY_ERR_MAX];

    for (unsigned i = 0; i < p->nworkers; i++) {
        struct proxy_wlisten *wl = &p->workers[i].listen[p->workers[i].nlisten];
        int fd = listen_socket(&addr, l->v6only, p->cfg.listen_backlog, why, sizeof(why));
        if (fd < 0) {
            ERR("%s: %s", tls ? "https" : "http", why);
            return -1;
        }
        wl->fd = fd;
        wl->tls = tls;
        p->workers[i].nlisten++;
        if (i == 0) {
            socklen_t sl = sizeof(addr);
            getsockname(fd, (struct sockaddr *)&addr, &sl);
            if (port)
                *port = ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                                         : ((struct sockaddr_in *)&addr)->sin_port);
        }
    }
    return 0;
}

/* The bound port of a worker's listen slot (its fd is still ours: before worker_init). */
static uint16_t listen_port(const struct proxy_wlisten *wl)
{
    struct sockaddr_storage a;
    socklen_t sl = sizeof(a);

    if (wl->fd < 0 || getsockname(wl->fd, (struct sockaddr *)&a, &sl) != 0)
        return 0;
    return ntohs(a.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&a)->sin6_port
                                         : ((struct sockaddr_in *)&a)->sin_port);
}

/* Adds every local interface address with each of our listen ports to the own-address list,
 * so a backend pointing at this gateway's listener is refused even when it is bound to a
 * wildcard address. */
static void add_own_addrs(struct proxy *p)
{
    struct ifaddrs *ifs, *i;
    struct proxy_config *cfg = &p->cfg;
    const struct proxy_worker *w0 = &p->workers[0];
    if (getifaddrs(&ifs) != 0)
        return;
    for (i = ifs; i && cfg->own_addr_count < PROXY_OWN_ADDRS_MAX; i = i->ifa_next) {
        struct state_backend o;
        if (i->ifa_addr == NULL)
            continue;
        memset(&o, 0, sizeof(o));
        if (i->ifa_addr->sa_family == AF_INET) {
            o.family = 4;
            memcpy(o.addr, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, 4);
        } else if (i->ifa_addr->sa_family == AF_INET6) {
            o.family = 6;
            memcpy(o.addr, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, 16);
        } else {
            continue;
        }
        for (unsigned l = 0; l < w0->nlisten && cfg->own_addr_count < PROXY_OWN_ADDRS_MAX; l++) {
            o.port = listen_port(&w0->listen[l]);
            cfg->own_addrs[cfg->own_addr_count++] = o;
        }
    }
    freeifaddrs(ifs);
}

/* ---- workers -------------------------------------------------------------------------- */

/* A draining worker's listeners stay open for PROXY_DRAIN_LINGER_MS: what they accept then is
 * served like the rest (its answer says Connection: close). */
static void on_connection(uv_stream_t *server, int status)
{
    struct proxy_worker *w = server->data;
    if (status != 0 || w->stopping)
        return;
    proxy_session_accept(w, server);
}

static void on_tls_connection(uv_stream_t *server, int status)
{
    struct proxy_worker *w = server->data;
    if (status != 0 || w->stopping)
        return;
    proxy_session_accept_https(w, server);
}

static void close_listeners(struct proxy_worker *w)
{
    for (unsigned i = 0; i < w->nlisten; i++) {
        if (w->listen[i].listening)
            uv_close((uv_handle_t *)&w->listen[i].tcp, NULL);
        w->listen[i].listening = false;
    }
    if (w->listeners_open) {
        w->listeners_open = false;
        atomic_fetch_sub(&w->p->listening_workers, 1);
    }
}

/* Takes every connection waiting in the listener's kernel queue (until EAGAIN) into a session.
 * Closing a listener resets what its queue holds: clients whose handshake the kernel completed
 * and who may have sent their request. With SO_REUSEPORT each worker's socket has a queue of
 * its own, so each worker empties its own. */
static void accept_queued(struct proxy_worker *w, struct proxy_wlisten *wl)
{
    uv_os_fd_t lfd;

    if (!wl->listening || uv_fileno((const uv_handle_t *)&wl->tcp, &lfd) != 0)
        return;
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN: empty; EMFILE and the like: what is left is lost with the close */
        }
        proxy_session_accept_fd(w, fd, wl->tls);
    }
}

/* From now on the listener drops new connections' SYNs (a socket filter: the client's SYN is
 * retransmitted after a second and then meets the closed port, a clean refusal), while
 * handshakes the kernel already answered still complete into the queue. */
static void refuse_new_syns(struct proxy_wlisten *wl)
{
    static struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 13),           /* TCP flags (data is the TCP header) */
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x02, 0, 1), /* SYN */
        BPF_STMT(BPF_RET | BPF_K, 0),                     /* drop */
        BPF_STMT(BPF_RET | BPF_K, 0xffffffffu),           /* keep all of it */
    };
    struct sock_fprog prog = {.len = sizeof(code) / sizeof(code[0]), .filter = code};
    uv_os_fd_t lfd;

    if (wl->listening && uv_fileno((const uv_handle_t *)&wl->tcp, &lfd) == 0)
        setsockopt(lfd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog)); /* best effort */
}

/* The end of the linger: what completed meanwhile is taken, then the listeners close. */
static void on_linger(uv_timer_t *t)
{
    struct proxy_worker *w = t->data;

    for (unsigned i = 0; i < w->nlisten; i++)
        accept_queued(w, &w->listen[i]);
    close_listeners(w);
}

/* A drain stops accepting without resetting anyone: new SYNs are dropped, the queue is taken,
 * and the listeners close once the handshakes under way had PROXY_DRAIN_LINGER_MS to land. */
static void drain_listeners(struct proxy_worker *w)
{
    for (unsigned i = 0; i < w->nlisten; i++) {
        refuse_new_syns(&w->listen[i]);
        accept_queued(w, &w->listen[i]);
    }
    if (w->listeners_open)
        uv_timer_start(&w->linger, on_linger,
                       atomic_load_explicit(&w->p->drain_linger_ms, memory_order_relaxed), 0);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_sweep(uv_timer_t *t)
{
    struct proxy_worker *w = t->data;
    proxy_pool_sweep(w, uv_now(&w->loop), false);
    proxy_worker_evict(w);
    if (w->id == 0)
        proxy_ip_sweep(&w->p->ips, proxy_mono_ms());
    struct proxy_loop_counts c;
    proxy_loop_count(&w->loop, &c);
    atomic_store_explicit(&w->loop_handles, c.handles, memory_order_relaxed);
    /* the sessions' timeouts are timers too, kept in lists on one libuv timer */
    atomic_store_explicit(&w->loop_timers, c.timers + (uint32_t)w->deadlines.armed,
                          memory_order_relaxed);
}

static void loop_count_one(uv_handle_t *h, void *arg)
{
    struct proxy_loop_counts *c = arg;

    if (!uv_is_active(h))
        return;
    c->handles++;
    c->timers += h->type == UV_TIMER;
}

void proxy_loop_count(struct uv_loop_s *loop, struct proxy_loop_counts *out)
{
    out->handles = out->timers = 0;
    uv_walk(loop, loop_count_one, out);
}

void proxy_worker_loop_counts(const struct proxy *p, struct proxy_loop_counts *out)
{
    out->handles = out->timers = 0;
    for (unsigned i = 0; p != NULL && i < p->nworkers; i++) {
        struct proxy_worker *w = &p->workers[i];
        out->handles += atomic_load_explicit(&w->loop_handles, memory_order_relaxed);
        out->timers += atomic_load_explicit(&w->loop_timers, memory_order_relaxed);
    }
}

static void on_wake(uv_async_t *a)
{
    struct proxy_worker *w = a->data;
    int cmd = atomic_exchange(&w->cmd, 0);
    if ((cmd & PROXY_CMD_DRAIN) && !w->draining) {
        w->draining = true;
        proxy_pool_sweep(w, 0, true);
        proxy_session_drain(w);
        drain_listeners(w); /* after: what it takes from the queues is not idle */
    }
    if ((cmd & PROXY_CMD_STOP) && !w->stopping) {
        w->stopping = true;
        w->draining = true;
        close_listeners(w);
        proxy_session_close_all(w);
        proxy_pool_sweep(w, 0, true);
        uv_close((uv_handle_t *)&w->wake, NULL);
        uv_close((uv_handle_t *)&w->sweep, NULL);
        uv_close((uv_handle_t *)&w->linger, NULL);
        proxy_deadlines_close(&w->deadlines);
        proxy_conn_loop_close(&w->conns);
    }
}

static void *worker_main(void *arg)
{
    struct proxy_worker *w = arg;
    state_routes_reader_register();
    uv_run(&w->loop, UV_RUN_DEFAULT);
    /* anything left (should be nothing) is closed so the loop can be closed */
    uv_walk(&w->loop, close_walk, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    state_routes_reader_unregister();
    return NULL;
}

static int worker_init(struct proxy *p, struct proxy_worker *w, unsigned id, char *err,
                       size_t errlen)
{
    int rc;
    w->p = p;
    w->id = id;
    w->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)id << 32) ^ (uint64_t)(uintptr_t)w;
    proxy_list_init(&w->sessions);
    proxy_stats_table_init(&w->stats);
    proxy_worker_backends_init(w);
    w->head_fields =
        calloc(p->cfg.max_header_count ? p->cfg.max_header_count : 1, sizeof(*w->head_fields));
    if (w->head_fields == NULL) {
        ERR("worker %u: out of memory", id);
        return PROXY_ENOMEM;
    }
    if ((rc = uv_loop_init(&w->loop)) != 0) {
        ERR("worker %u: uv_loop_init: %s", id, uv_strerror(rc));
        return PROXY_ESYS;
    }
    w->loop_ready = true;
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    proxy_conn_loop_init(&w->loop, &w->conns);
    proxy_deadlines_init(&w->loop, &w->deadlines, proxy_session_expired);
    uv_timer_init(&w->loop, &w->sweep);
    w->sweep.data = w;
    uv_timer_start(&w->sweep, on_sweep, 1000, 1000);
    uv_unref((uv_handle_t *)&w->sweep);
    uv_timer_init(&w->loop, &w->linger);
    w->linger.data = w;
    for (unsigned i = 0; i < w->nlisten; i++) {
        struct proxy_wlisten *wl = &w->listen[i];
        uv_tcp_init(&w->loop, &wl->tcp);
        wl->tcp.data = w;
        if ((rc = uv_tcp_open(&wl->tcp, wl->fd)) != 0 ||
            (rc = uv_listen((uv_stream_t *)&wl->tcp, p->cfg.listen_backlog,
                            wl->tls ? on_tls_connection : on_connection)) != 0) {
            ERR("worker %u: listen %s: %s", id, wl->tls ? "https" : "http", uv_strerror(rc));
            return PROXY_ESYS;
        }
        wl->fd = -1; /* the loop owns it now */
        wl->listening = true;
    }
    return PROXY_OK;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void proxy_free(struct proxy *p)
{
    if (p->workers) {
        for (unsigned i = 0; i < p->nworkers; i++) {
            struct proxy_worker *w = &p->workers[i];
            for (unsigned l = 0; l < w->nlisten; l++)
                if (w->listen[l].fd >= 0)
                    close(w->listen[l].fd);
            if (w->loop_ready) {
                if (!w->thread_started) {
                    uv_walk(&w->loop, close_walk, NULL);
                    uv_run(&w->loop, UV_RUN_DEFAULT);
                }
                uv_loop_close(&w->loop);
            }
            proxy_worker_backends_free(w);
            proxy_stats_table_free(&w->stats);
            pthread_mutex_destroy(&w->stats.lock);
            free(w->head_fields);
            proxy_worker_req_cache_free(w);
        }
        free(p->workers);
    }
    state_routes_observe(p->routes, NULL, NULL);
    proxy_registry_free(p);
    proxy_ip_destroy(&p->ips);
    free(p);
}

struct proxy *proxy_start(const struct proxy_config *cfg, struct state_routes *routes, char *err,
                          size_t errlen)
{
    if (proxy_config_validate(cfg, err, errlen) != 0)
        return NULL;
    /* libuv writes with write(2): a peer that reset its connection must cost an EPIPE, not
     * the process. Only the default disposition is changed; a caller's handler stays. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    struct proxy *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        ERR("out of memory");
        return NULL;
    }
    p->cfg = *cfg;
    p->routes = routes;
    if (proxy_registry_init(p) != 0) {
        ERR("out of memory");
        proxy_registry_free(p);
        free(p);
        return NULL;
    }
    /* from here on the registry counts what routes refer to (registry.c) */
    state_routes_observe(routes, proxy_registry_route, p);
    proxy_ip_init(&p->ips, cfg->max_conns_per_ip, cfg->rate_per_ip, cfg->rate_burst);
    p->req_limits = (struct http1_limits){cfg->max_request_line, cfg->max_header_count,
                                          cfg->max_header_bytes, cfg->max_body_bytes};
    p->resp_limits = (struct http1_limits){cfg->max_header_bytes, cfg->max_header_count,
                                           cfg->max_header_bytes, 0};
    p->nworkers = cfg->workers;
    if (p->nworkers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        p->nworkers = n < 1 ? 1 : (n > PROXY_WORKERS_MAX ? PROXY_WORKERS_MAX : (unsigned)n);
    }
    p->workers = calloc(p->nworkers, sizeof(*p->workers));
    if (p->workers == NULL) {
        ERR("out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < p->nworkers; i++)
        for (unsigned l = 0; l < 2 * PROXY_LISTEN_MAX; l++)
            p->workers[i].listen[l].fd = -1;
    if (cfg->https_count > 0 && cfg->tls == NULL) {
        ERR("https enabled without a certificate store");
        goto fail;
    }
    for (size_t l = 0; l < cfg->http_count; l++)
        if (listen_workers(p, &cfg->http[l], false, l == 0 ? &p->http_port : NULL, err, errlen) !=
            0)
            goto fail;
    /* the HTTPS addresses: same scheme, a socket per worker (tls_layer.c reads the hello) */
    for (size_t l = 0; l < cfg->https_count; l++)
        if (listen_workers(p, &cfg->https[l], true, l == 0 ? &p->https_port : NULL, err, errlen) !=
            0)
            goto fail;
    add_own_addrs(p);
    for (unsigned i = 0; i < p->nworkers; i++)
        if (worker_init(p, &p->workers[i], i, err, errlen) != 0)
            goto fail;
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct proxy_worker *w = &p->workers[i];
        if (w->nlisten > 0) {
            w->listeners_open = true; /* until the worker closes them (close_listeners) */
            atomic_fetch_add(&p->listening_workers, 1);
        }
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0) {
            ERR("pthread_create: %s", strerror(rc));
            proxy_stop(p);
            return NULL;
        }
        w->thread_started = true;
        char name[16]; /* what top -H, perf and /proc/PID/task/TID/comm show */
        snprintf(name, sizeof(name), "proxy-worker%u", i % PROXY_WORKERS_MAX);
        pthread_setname_np(w->thread, name);
    }
    return p;
fail:
    proxy_free(p);
    return NULL;
}

uint16_t proxy_http_port(const struct proxy *p)
{
    return p->http_port;
}

uint16_t proxy_https_port(const struct proxy *p)
{
    return p->https_port;
}

uint64_t proxy_connections(const struct proxy *p)
{
    return atomic_load_explicit(&((struct proxy *)p)->connections, memory_order_relaxed);
}

static void send_cmd(struct proxy *p, int cmd)
{
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct proxy_worker *w = &p->workers[i];
        if (!w->thread_started)
            continue;
        atomic_fetch_or(&w->cmd, cmd);
        uv_async_send(&w->wake);
    }
}

int proxy_drain(struct proxy *p, uint32_t timeout_ms)
{
    atomic_store(&p->drain_linger_ms,
                 timeout_ms < PROXY_DRAIN_LINGER_MS ? timeout_ms : PROXY_DRAIN_LINGER_MS);
    send_cmd(p, PROXY_CMD_DRAIN);
    uint64_t deadline = proxy_mono_ms() + timeout_ms;
    while (proxy_connections(p) > 0 || atomic_load(&p->listening_workers) > 0) {
        if (proxy_mono_ms() >= deadline)
            return PROXY_ETIMEOUT;
        usleep(5000);
    }
    return PROXY_OK;
}

void proxy_stop(struct proxy *p)
{
    if (p == NULL)
        return;
    send_cmd(p, PROXY_CMD_STOP);
    for (unsigned i = 0; i < p->nworkers; i++) {
        struct proxy_worker *w = &p->workers[i];
        if (w->thread_started) {
            pthread_join(w->thread, NULL);
            w->thread_started = false;
            /* the loop ran to completion in the thread: nothing is left to close */
            uv_loop_close(&w->loop);
            w->loop_ready = false;
        }
    }
    proxy_probe_free(p);
    proxy_free(p);
}
