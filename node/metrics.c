/*
 * metrics.c - /metrics in the Prometheus text format (version 0.0.4).
 *
 * Built into one growing buffer on request: counters are plain integers owned by the control
 * loop, so a scrape is a walk over them with no locking.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_internal.h"

struct node_metrics {
    char *data;  /* text so far */
    size_t len;  /* bytes used */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed */
};

const char *node_metrics_label(const char *in, char *out, size_t cap)
{
    size_t o = 0;

    for (; *in != '\0' && o + 3 <= cap; in++) {
        if (*in == '\\' || *in == '"' || *in == '\n') {
            out[o++] = '\\';
            out[o++] = *in == '\n' ? 'n' : *in;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
    return out;
}

void node_metrics_printf(struct node_metrics *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        char *nd = realloc(b->data, b->cap * 2 + (size_t)n);
        if (!nd) {
            b->failed = true;
            return;
        }
        b->data = nd;
        b->cap = b->cap * 2 + (size_t)n;
    }
}

void node_metrics_family(struct node_metrics *b, const char *name, const char *type,
                         const char *help)
{
    node_metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Active libuv handles and timers: the control loop's now, the workers' and the probe thread's
 * at their last count (at most a second old). Flat under steady traffic; growth is a leak. */
static void metrics_loops(const struct node *node, struct node_metrics *b)
{
    struct proxy_loop_counts ctl, wk, pr;

    proxy_loop_count((uv_loop_t *)&node->loop, &ctl);
    proxy_worker_loop_counts(node->proxy, &wk);
    proxy_probe_loop_counts(node->proxy, &pr);
    node_metrics_family(b, "webgw_loop_handles", "gauge",
                        "Active libuv handles (sockets, timers, signals) per event loop.");
    node_metrics_printf(b, "webgw_loop_handles{loop=\"control\"} %u\n", ctl.handles);
    node_metrics_printf(b, "webgw_loop_handles{loop=\"workers\"} %u\n", wk.handles);
    node_metrics_printf(b, "webgw_loop_handles{loop=\"probes\"} %u\n", pr.handles);
    node_metrics_family(b, "webgw_loop_timers", "gauge",
                        "Active timers per event loop (a worker's client connection timeouts "
                        "count one each).");
    node_metrics_printf(b, "webgw_loop_timers{loop=\"control\"} %u\n", ctl.timers);
    node_metrics_printf(b, "webgw_loop_timers{loop=\"workers\"} %u\n", wk.timers);
    node_metrics_printf(b, "webgw_loop_timers{loop=\"probes\"} %u\n", pr.timers);
}

char *node_metrics_render(const struct node *node, size_t *len)
{
    struct node_metrics b = {.cap = 8192};
    const struct node_record_stats *rs = &node->rec_stats;
    struct node_httpd_stats hs = {0};

    b.data = malloc(b.cap);
    if (!b.data)
        return NULL;
    b.data[0] = '\0';
    if (node->api)
        node_httpd_stats(node->api, &hs);

    node_metrics_family(&b, "webgw_build_info", "gauge", "Version of this webgw.");
    node_metrics_printf(&b, "webgw_build_info{version=\"%s\",node=\"%s\"} 1\n", WEBGW_VERSION,
                        node->cfg.node_name);
    node_metrics_family(&b, "webgw_uptime_seconds", "gauge", "Seconds since this node started.");
    node_metrics_printf(&b, "webgw_uptime_seconds %llu\n",
                        (unsigned long long)((state_now_ms() - node->started_ms) / 1000));

    node_metrics_family(&b, "webgw_names", "gauge", "Names (and fqdns) held by an owner.");
    node_metrics_printf(&b, "webgw_names %zu\n", state_names_count(node->names));
    node_metrics_family(&b, "webgw_tombstones", "gauge", "Released names remembered.");
    node_metrics_printf(&b, "webgw_tombstones %zu\n", state_names_tombstones(node->names));
    node_metrics_family(&b, "webgw_records", "gauge", "Records kept (latest per owner and key).");
    node_metrics_printf(&b, "webgw_records %zu\n", state_names_records(node->names));
    node_metrics_family(&b, "webgw_routes", "gauge", "Host names in the route table.");
    node_metrics_printf(&b, "webgw_routes %zu\n", state_routes_count(node->routes));
    node_metrics_family(&b, "webgw_store_log_bytes", "gauge", "Size of the record log.");
    node_metrics_printf(&b, "webgw_store_log_bytes %zu\n", state_store_log_bytes(node->store));
    node_metrics_family(&b, "webgw_store_syncs_total", "counter",
                        "fdatasync calls on the record log (group commit: one per batch).");
    node_metrics_printf(&b, "webgw_store_syncs_total %llu\n",
                        (unsigned long long)state_store_syncs(node->store));
    node_metrics_family(&b, "webgw_store_compactions_total", "counter", "Snapshots written.");
    node_metrics_printf(&b, "webgw_store_compactions_total %llu\n",
                        (unsigned long long)rs->compactions);

    node_metrics_family(&b, "webgw_records_submitted_total", "counter",
                        "Records submitted to the API, by outcome.");
    static const char *const outcomes[] = {"accepted",  "duplicate",        "invalid",
                                           "forbidden", "conflict",         "too_big",
                                           "failed",    "over_owner_limit", "over_fleet_limit"};
    const uint64_t counts[] = {rs->accepted,  rs->duplicate,        rs->invalid,
                               rs->forbidden, rs->conflict,         rs->too_big,
                               rs->failed,    rs->over_owner_limit, rs->over_fleet_limit};
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
        node_metrics_printf(&b, "webgw_records_submitted_total{outcome=\"%s\"} %llu\n", outcomes[i],
                            (unsigned long long)counts[i]);
    node_metrics_family(&b, "webgw_records_gossiped_total", "counter",
                        "Records received by gossip, by outcome.");
    node_metrics_printf(&b, "webgw_records_gossiped_total{outcome=\"accepted\"} %llu\n",
                        (unsigned long long)rs->from_gossip_accepted);
    node_metrics_printf(&b, "webgw_records_gossiped_total{outcome=\"dropped\"} %llu\n",
                        (unsigned long long)rs->from_gossip_dropped);
    node_metrics_printf(&b, "webgw_records_gossiped_total{outcome=\"stale\"} %llu\n",
                        (unsigned long long)rs->from_gossip_stale);
    node_metrics_printf(&b, "webgw_records_gossiped_total{outcome=\"over_limit\"} %llu\n",
                        (unsigned long long)rs->from_gossip_over_limit);
    node_metrics_family(&b, "webgw_witnesses_total", "counter",
                        "Claim witnesses: signed by this node, kept from others, refused "
                        "(bad), unadmitted (key not in --fleet-keys).");
    node_metrics_printf(&b, "webgw_witnesses_total{outcome=\"signed\"} %llu\n",
                        (unsigned long long)rs->witnesses_signed);
    node_metrics_printf(&b, "webgw_witnesses_total{outcome=\"kept\"} %llu\n",
                        (unsigned long long)rs->witnesses_kept);
    node_metrics_printf(&b, "webgw_witnesses_total{outcome=\"refused\"} %llu\n",
                        (unsigned long long)rs->witnesses_refused);
    node_metrics_printf(&b, "webgw_witnesses_total{outcome=\"unadmitted\"} %llu\n",
                        (unsigned long long)rs->witnesses_unadmitted);
    node_traffic_metrics(node, &b);

    node_metrics_family(&b, "webgw_api_requests_total", "counter", "API requests answered.");
    node_metrics_printf(&b, "webgw_api_requests_total %llu\n", (unsigned long long)hs.requests);
    node_metrics_family(&b, "webgw_api_rate_limited_total", "counter",
                        "API requests answered 429.");
    node_metrics_printf(&b, "webgw_api_rate_limited_total %llu\n",
                        (unsigned long long)hs.rate_limited);
    node_metrics_family(&b, "webgw_api_bad_requests_total", "counter",
                        "API requests refused by the parser or a limit (400, 413, 431).");
    node_metrics_printf(&b, "webgw_api_bad_requests_total %llu\n",
                        (unsigned long long)hs.bad_requests);
    node_metrics_family(&b, "webgw_api_connections", "gauge", "Open API connections.");
    node_metrics_printf(&b, "webgw_api_connections %llu\n", (unsigned long long)hs.conns_open);
    metrics_loops(node, &b);

    node_gossip_metrics(node, &b);
    node_proxy_metrics(node, &b);
    node_tls_metrics(node, &b);
    node_fqdn_metrics(node, &b);
    node_zone_metrics(node, &b);

    if (b.failed) {
        free(b.data);
        return NULL;
    }
    *len = b.len;
    return b.data;
}
