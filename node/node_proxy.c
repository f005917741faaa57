/*
 * node_proxy.c - the node's side of the proxy: start the workers on the route table, carry
 * health between the proxy and gossip, drain on stop, and the traffic views for the API,
 * metrics and dashboard.
 *
 * Threads: the proxy's workers and its probe thread never touch node state. A probe result
 * arrives on the probe thread, is queued under a mutex and handed to the control loop with
 * uv_async_send, where gossip publishes it. Every probe's result comes through, changed or
 * not: publishing an unchanged verdict refreshes its expiry in gossip, which is what keeps a
 * verdict alive fleet-wide for as long as probing goes on. The queue is drained oldest first
 * so the last result published for a backend is its latest; a result dropped on overflow is
 * restated by the next probe one interval later.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/access_log.h"
#include "node/node_internal.h"

#define NODE_PROBE_QUEUE_MAX 4096 /* probe results waiting for the loop; more are dropped */

struct node_probe_result {
    char key[64]; /* backend key as gossip names it */
    bool up;      /* the verdict */
};

/* Health is per address, whatever the mode a name uses it in: the key is "IP:PORT" (the
 * passthrough text form), the same string on every node. */
void node_backend_key(const struct state_backend *be, char out[64])
{
    state_backend_format(be, true, out);
}

int node_backend_from_key(const char *key, struct state_backend *out)
{
    char err[STATE_ERR_MAX];

    return state_backend_parse(key, true, out, err, sizeof(err));
}

/* Probe thread: queue the result for the loop. */
static void node_probe_result(void *ctx, const struct state_backend *be, enum proxy_verdict verdict,
                              bool changed, const char *detail)
{
    struct node *node = ctx;
    char key[64];

    if (verdict == PROXY_VERDICT_UNKNOWN)
        return;
    node_backend_key(be, key);
    if (changed)
        node_log(NODE_LOG_DEBUG, "health", "probe %s: %s (%s)", key,
                 verdict == PROXY_VERDICT_UP ? "up" : "down", detail ? detail : "");
    uv_mutex_lock(&node->probe_mutex);
    if (node->probe_count < NODE_PROBE_QUEUE_MAX) {
        struct node_probe_result *r = &node->probe_queue[node->probe_count++];
        memcpy(r->key, key, sizeof(r->key));
        r->up = verdict == PROXY_VERDICT_UP;
    }
    uv_mutex_unlock(&node->probe_mutex);
    uv_async_send(&node->probe_async);
}

/* Loop: publish the queued probe results through gossip, in the order they came. */
static void node_probe_drain(uv_async_t *a)
{
    struct node *node = a->data;
    struct node_probe_result *batch;
    size_t n;

    if (!node->probe_mutex_ready) /* stopped: the queue and its mutex are gone */
        return;
    /* take the whole queue by swapping buffers: the probe thread waits for one swap only */
    uv_mutex_lock(&node->probe_mutex);
    batch = node->probe_queue;
    n = node->probe_count;
    node->probe_queue = node->probe_batch;
    node->probe_count = 0;
    node->probe_batch = batch;
    uv_mutex_unlock(&node->probe_mutex);
    for (size_t i = 0; i < n; i++)
        node_health_observed(node, batch[i].key, batch[i].up);
}

/* The fleet's Via pseudonym (proxy.h, http1_via.c): "webgw-" and 16 hex digits of
 * SHA-256("webgw-via-v1\0" || cluster key), so every member holding the same primary key
 * names the fleet the same way and a request that re-enters the fleet anywhere is refused at
 * once. It is public (it goes out in every forwarded request) but says nothing of the key. A
 * node without a cluster key is a fleet of its own: its persistent node id stands in. After a
 * key rotation the members started before it keep the old token until they restart; a loop
 * through two tokens is still caught, one hop later. */
static void node_via_name(const uint8_t *cluster_key, const char *node_id, char *out, size_t cap)
{
    static const char label[] = "webgw-via-v1";
    uint8_t in[sizeof(label) + NODE_ID_HEX_LEN + GOSSIP_KEY_LEN], md[SHA256_DIGEST_LENGTH];
    size_t len = sizeof(label); /* with its NUL: domain separation */

    memcpy(in, label, sizeof(label));
    if (cluster_key) {
        memcpy(in + len, cluster_key, GOSSIP_KEY_LEN);
        len += GOSSIP_KEY_LEN;
    } else {
        memcpy(in + len, node_id, strnlen(node_id, NODE_ID_HEX_LEN));
        len += strnlen(node_id, NODE_ID_HEX_LEN);
    }
    SHA256(in, len, md);
    OPENSSL_cleanse(in, sizeof(in));
    snprintf(out, cap, "webgw-%02x%02x%02x%02x%02x%02x%02x%02x", md[0], md[1], md[2], md[3], md[4],
             md[5], md[6], md[7]);
}

int node_proxy_start(struct node *node, const uint8_t *cluster_key, char *err, size_t errlen)
{
    struct proxy_config pc;
    char perr[PROXY_ERR_MAX];

    proxy_config_init(&pc);
    node_config_proxy(&node->cfg, &pc);
    pc.http_count = node->cfg.http_count;
    for (size_t i = 0; i < pc.http_count; i++)
        pc.http[i] = (struct proxy_listen){node->cfg.http[i].ss, node->cfg.http[i].v6only};
    pc.https_count = node->cfg.https_count;
    for (size_t i = 0; i < pc.https_count; i++)
        pc.https[i] = (struct proxy_listen){node->cfg.https[i].ss, node->cfg.https[i].v6only};
    pc.tls = node->tls;
    pc.https_redirect = node->cfg.https_redirect;
    /* the redirect names the first --https port: the one operators publish */
    pc.https_redirect_port =
        ntohs(node->cfg.https[0].ss.ss_family == AF_INET6
                  ? ((const struct sockaddr_in6 *)&node->cfg.https[0].ss)->sin6_port
                  : ((const struct sockaddr_in *)&node->cfg.https[0].ss)->sin_port);
    if (node_acme_setup(node, &pc, err, errlen) != 0)
        return -1;
    pc.workers = node->cfg.workers;
    snprintf(pc.domain, sizeof(pc.domain), "%s", node->cfg.domain);
    for (size_t i = 0; i < node->own_addr_count && pc.own_addr_count < PROXY_OWN_ADDRS_MAX; i++)
        pc.own_addrs[pc.own_addr_count++] = node->own_addrs[i];
    snprintf(pc.own_hosts[pc.own_host_count++], STATE_FQDN_MAX + 1, "%s", node->cfg.domain);
    node_via_name(cluster_key, node->id, pc.via_name, sizeof(pc.via_name));
    node->access = access_log_start(node->cfg.access_log, node->cfg.access_log_buffer,
                                    node->cfg.log_format, node->cfg.log_level, perr, sizeof(perr));
    if (!node->access) {
        snprintf(err, errlen, "access-log: %s", perr);
        return -1;
    }
    pc.access_log = access_log_entry;
    pc.access_log_ctx = node->access;

    node->probe_queue = calloc(NODE_PROBE_QUEUE_MAX, sizeof(*node->probe_queue));
    node->probe_batch = calloc(NODE_PROBE_QUEUE_MAX, sizeof(*node->probe_batch));
    if (!node->probe_queue || !node->probe_batch || uv_mutex_init(&node->probe_mutex) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    node->probe_mutex_ready = true;
    uv_async_init(&node->loop, &node->probe_async, node_probe_drain);
    node->probe_async.data = node;

    node->proxy = proxy_start(&pc, node->routes, perr, sizeof(perr));
    if (!node->proxy) {
        snprintf(err, errlen, "proxy: %s", perr); /* "proxy: https: bind ..." */
        return -1;
    }
    return 0;
}

/* The backends this node must probe: those gossip assigns to it among the held names'. */
struct probe_walk {
    struct node *node;          /* whose gossip decides */
    struct state_backend *list; /* collected */
    size_t count, cap;          /* used and allocated */
};

static int probe_walk_one(const struct state_name_view *view, void *ctx)
{
    struct probe_walk *w = ctx;
    const struct state_record *rec = &view->record;

    if (!view->held)
        return 0;
    for (unsigned i = 0; i < rec->backend_count; i++) {
        char key[64];
        bool dup = false;
        /* a backend already listed first: many names share a few backends, and the checks
         * below (a policy, a key, the rendezvous hash) cost more than this loop */
        for (size_t j = 0; j < w->count && !dup; j++)
            dup = memcmp(&w->list[j], &rec->backends[i], sizeof(rec->backends[i])) == 0;
        if (dup)
            continue;
        node_backend_key(&rec->backends[i], key);
        if (!node_backend_allowed(w->node, &rec->backends[i]) ||
            !node_health_assigned(w->node, key))
            continue;
        if (w->count == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 64;
            struct state_backend *nl = realloc(w->list, cap * sizeof(*nl));
            if (!nl)
                return -1;
            w->list = nl;
            w->cap = cap;
        }
        w->list[w->count++] = rec->backends[i];
    }
    return 0;
}

void node_proxy_probes_update(struct node *node)
{
    struct probe_walk w = {.node = node};
    struct proxy_probe_config pc;
    char err[PROXY_ERR_MAX];

    if (!node->proxy || node->draining)
        return;
    pc = node->cfg.probe;
    if (state_names_each_unordered(node->names, probe_walk_one, &w) == 0 &&
        proxy_probe_set(node->proxy, w.list, w.count, &pc, node_probe_result, node, err,
                        sizeof(err)) != 0)
        node_log(NODE_LOG_WARN, "health", "probe set not updated: %s", err);
    free(w.list);
}

void node_proxy_fleet_verdict(struct node *node, const char *key, enum proxy_verdict verdict)
{
    struct state_backend be;

    if (node->proxy && node_backend_from_key(key, &be) == 0)
        proxy_health_set_fleet(node->proxy, &be, verdict);
}

/* The proxy keeps fleet verdicts only for backends it tracks, and gossip reports a verdict
 * only when it changes: a route that adds a backend gets the verdict gossip holds now. */
void node_proxy_fleet_sync(struct node *node, const struct state_record *rec)
{
    if (!node->proxy || !node->gossip)
        return;
    for (unsigned i = 0; i < rec->backend_count; i++) {
        char key[64];
        enum gossip_health_verdict v;
        node_backend_key(&rec->backends[i], key);
        v = gossip_health_verdict(node->gossip, key, NULL, NULL);
        proxy_health_set_fleet(node->proxy, &rec->backends[i],
                               v == GOSSIP_HEALTH_UP     ? PROXY_VERDICT_UP
                               : v == GOSSIP_HEALTH_DOWN ? PROXY_VERDICT_DOWN
                                                         : PROXY_VERDICT_UNKNOWN);
    }
}

struct drain_work {
    uv_work_t req;     /* runs proxy_drain on the thread pool */
    struct node *node; /* whose proxy */
    int rc;            /* proxy_drain's result */
};

static void node_proxy_drain_work(uv_work_t *req)
{
    struct drain_work *w = req->data;

    w->rc = proxy_drain(w->node->proxy, w->node->cfg.drain_timeout_ms);
}

static void node_proxy_drain_done(uv_work_t *req, int status)
{
    struct drain_work *w = req->data;
    struct node *node = w->node;

    if (w->rc == PROXY_ETIMEOUT)
        node_log(NODE_LOG_WARN, "proxy", "drain timeout: %llu connections cut",
                 (unsigned long long)proxy_connections(node->proxy));
    else
        node_log(NODE_LOG_INFO, "proxy", "in-flight requests finished");
    free(w);
    node->proxy_drained = true;
    node_drain_step(node);
}

void node_proxy_drain(struct node *node)
{
    struct drain_work *w;

    if (!node->proxy) {
        node->proxy_drained = true;
        return;
    }
    w = calloc(1, sizeof(*w));
    if (!w) {
        node->proxy_drained = true;
        return;
    }
    w->node = node;
    w->req.data = w;
    /* proxy_drain blocks until the workers are done: on the thread pool, so gossip's leave
     * keeps flowing on this loop meanwhile */
    if (uv_queue_work(&node->loop, &w->req, node_proxy_drain_work, node_proxy_drain_done) != 0) {
        free(w);
        node->proxy_drained = true;
    }
}

void node_proxy_stop(struct node *node)
{
    proxy_stop(node->proxy);
    node->proxy = NULL;
    /* after the workers: nobody writes to the rings any more */
    access_log_stop(node->access);
    node->access = NULL;
    if (node->probe_mutex_ready) {
        /* The probe thread's last uv_async_send may still be pending in this loop turn (stop
         * runs from a timer or the drain's work-done callback, before the async phase): close
         * the handle first, or node_probe_drain would lock the destroyed mutex, which glibc
         * answers with EINVAL and uv_mutex_lock turns into a silent abort() at SIGTERM. */
        uv_close((uv_handle_t *)&node->probe_async, NULL);
        node->probe_count = 0;
        uv_mutex_destroy(&node->probe_mutex);
        node->probe_mutex_ready = false;
    }
    free(node->probe_queue);
    node->probe_queue = NULL;
    free(node->probe_batch);
    node->probe_batch = NULL;
}

/* ---- views ---------------------------------------------------------------------------- */

static int traffic_one(const struct proxy_name_stats *s, void *ctx)
{
    if (s->name[0] == '\0')
        return 0; /* requests for unknown names have no row on the dashboard */
    json_array_append_new(
        ctx, json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", s->name, "requests",
                       (json_int_t)s->requests, "bytes_in", (json_int_t)s->bytes_in, "bytes_out",
                       (json_int_t)s->bytes_out, "errors", (json_int_t)s->errors));
    return 0;
}

json_t *node_json_traffic(const struct node *node)
{
    json_t *arr = json_array();

    if (node->proxy)
        proxy_stats_each(node->proxy, traffic_one, arr);
    return arr;
}

static int local_health_one(const struct proxy_backend_health *h, void *ctx)
{
    char key[64];

    node_backend_key(&h->addr, key);
    json_object_set_new(ctx, key,
                        json_pack("{s:b, s:b, s:I, s:I, s:I}", "up", h->up, "passive_down",
                                  h->passive_down, "in_flight", (json_int_t)h->in_flight,
                                  "requests", (json_int_t)h->requests, "failures",
                                  (json_int_t)h->failures));
    return 0;
}

json_t *node_proxy_local_health(const struct node *node)
{
    json_t *obj = json_object();

    if (node->proxy)
        proxy_backends_each(node->proxy, local_health_one, obj);
    return obj;
}

struct name_stats_list {
    struct proxy_name_stats *items; /* copies */
    size_t count, cap;              /* used, allocated */
};

static int metrics_collect(const struct proxy_name_stats *s, void *ctx)
{
    struct name_stats_list *l = ctx;

    if (l->count == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 32;
        struct proxy_name_stats *n = realloc(l->items, cap * sizeof(*n));
        if (!n)
            return -1;
        l->items = n;
        l->cap = cap;
    }
    l->items[l->count++] = *s;
    return 0;
}

#define NAME_OF(s) ((s)->name[0] ? (s)->name : "(unknown)")

/* Prometheus wants each family's samples together: one pass over the names per family. */
void node_proxy_metrics(const struct node *node, struct node_metrics *m)
{
    struct name_stats_list l = {0};
    static const char *const classes[] = {"2xx", "3xx", "4xx", "5xx"};

    if (!node->proxy)
        return;
    node_metrics_family(m, "webgw_access_log_lines_total", "counter",
                        "Access-log lines the sink took.");
    node_metrics_printf(m, "webgw_access_log_lines_total %llu\n",
                        (unsigned long long)access_log_written(node->access));
    node_metrics_family(m, "webgw_access_log_dropped_total", "counter",
                        "Access-log lines dropped: a worker's buffer was full (slow or stuck "
                        "sink) or the sink failed.");
    node_metrics_printf(m, "webgw_access_log_dropped_total %llu\n",
                        (unsigned long long)access_log_dropped(node->access));
    proxy_stats_each(node->proxy, metrics_collect, &l);
    node_metrics_family(m, "webgw_backend_registry_entries", "gauge",
                        "Backends the proxy tracks (routed, probed or in use); returns to the "
                        "routed count when names go.");
    node_metrics_printf(m, "webgw_backend_registry_entries %zu\n",
                        proxy_backend_entries(node->proxy));
    node_metrics_family(m, "webgw_http_connections", "gauge", "Client connections open.");
    node_metrics_printf(m, "webgw_http_connections %llu\n",
                        (unsigned long long)proxy_connections(node->proxy));
    node_metrics_family(m, "webgw_backend_pool_idle", "gauge",
                        "Idle keep-alive connections to backends in the workers' pools (each "
                        "an open socket, kept up to the pool's idle timeout).");
    node_metrics_printf(m, "webgw_backend_pool_idle %llu\n",
                        (unsigned long long)proxy_backend_pool_idle(node->proxy));
    node_metrics_family(m, "webgw_proxy_read_buffers", "gauge",
                        "Read buffers held by client, backend and tunnel connections (only "
                        "those with bytes not yet consumed hold one).");
    node_metrics_printf(m, "webgw_proxy_read_buffers %llu\n",
                        (unsigned long long)proxy_read_buffers());
    node_metrics_family(m, "webgw_http_requests_total", "counter", "Proxied requests per name.");
    for (size_t i = 0; i < l.count; i++)
        node_metrics_printf(m, "webgw_http_requests_total{name=\"%s\"} %llu\n",
                            NAME_OF(&l.items[i]), (unsigned long long)l.items[i].requests);
    node_metrics_family(m, "webgw_http_bytes_total", "counter",
                        "Client bytes per name and direction (what an operator bills by).");
    for (size_t i = 0; i < l.count; i++) {
        node_metrics_printf(m, "webgw_http_bytes_total{name=\"%s\",direction=\"in\"} %llu\n",
                            NAME_OF(&l.items[i]), (unsigned long long)l.items[i].bytes_in);
        node_metrics_printf(m, "webgw_http_bytes_total{name=\"%s\",direction=\"out\"} %llu\n",
                            NAME_OF(&l.items[i]), (unsigned long long)l.items[i].bytes_out);
    }
    node_metrics_family(m, "webgw_http_errors_total", "counter",
                        "Answers >= 500 and cut responses per name.");
    for (size_t i = 0; i < l.count; i++)
        node_metrics_printf(m, "webgw_http_errors_total{name=\"%s\"} %llu\n", NAME_OF(&l.items[i]),
                            (unsigned long long)l.items[i].errors);
    node_metrics_family(m, "webgw_http_responses_total", "counter",
                        "Answers per name and status class.");
    for (size_t i = 0; i < l.count; i++) {
        const uint64_t by_class[] = {l.items[i].status_2xx, l.items[i].status_3xx,
                                     l.items[i].status_4xx, l.items[i].status_5xx};
        for (int c = 0; c < 4; c++)
            node_metrics_printf(m, "webgw_http_responses_total{name=\"%s\",class=\"%s\"} %llu\n",
                                NAME_OF(&l.items[i]), classes[c], (unsigned long long)by_class[c]);
    }
    node_metrics_family(m, "webgw_http_latency_seconds", "histogram", "Request latency per name.");
    for (size_t i = 0; i < l.count; i++) {
        const struct proxy_name_stats *s = &l.items[i];
        uint64_t cumulative = 0;
        for (int b = 0; b < PROXY_LATENCY_BUCKETS; b++) {
            cumulative += s->latency_count[b];
            if (b == PROXY_LATENCY_BUCKETS - 1)
                node_metrics_printf(
                    m, "webgw_http_latency_seconds_bucket{name=\"%s\",le=\"+Inf\"} %llu\n",
                    NAME_OF(s), (unsigned long long)cumulative);
            else
                node_metrics_printf(
                    m, "webgw_http_latency_seconds_bucket{name=\"%s\",le=\"%g\"} %llu\n",
                    NAME_OF(s), proxy_latency_bounds_ms[b] / 1000.0,
                    (unsigned long long)cumulative);
        }
        node_metrics_printf(m, "webgw_http_latency_seconds_sum{name=\"%s\"} %.6f\n", NAME_OF(s),
                            s->latency_sum_us / 1e6);
        node_metrics_printf(m, "webgw_http_latency_seconds_count{name=\"%s\"} %llu\n", NAME_OF(s),
                            (unsigned long long)cumulative);
    }
    free(l.items);
}
