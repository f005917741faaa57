/*
 * config_proxy.c - the proxy's part of the configuration: its keys (limits, timeouts,
 * balancing, per-IP limits, trusted proxies, the active health check), the checks of the ones
 * that only make sense together, and the struct proxy_config they fill.
 */
#include <stdio.h>
#include <string.h>

#include "node/config_internal.h"

/* The proxy's options (config_apply's tail): limits, timeouts, balancing, per-IP limits,
 * trusted proxies and the active health check. */
int config_apply_proxy(struct node_config *cfg, const char *key, const char *value, char *err,
                       size_t errlen)
{
    struct proxy_config *pc = &cfg->proxy;
    struct proxy_probe_config *probe = &cfg->probe;
    char why[PROXY_ERR_MAX];

    if (strcmp(key, "balance") == 0) {
        if (proxy_parse_balance(value, &pc->balance, why, sizeof(why)) != PROXY_OK) {
            snprintf(err, errlen, "expected round-robin, least-conn or p2c, got \"%.60s\"", value);
            return -1;
        }
        return 0;
    }
    if (strcmp(key, "max-request-line") == 0)
        return config_u32(value, 64, 1 << 20, &pc->max_request_line, err, errlen);
    if (strcmp(key, "max-header-count") == 0)
        return config_u32(value, 4, 10000, &pc->max_header_count, err, errlen);
    if (strcmp(key, "max-header-bytes") == 0)
        return config_u32(value, 64, 1 << 20, &pc->max_header_bytes, err, errlen);
    if (strcmp(key, "max-body-bytes") == 0)
        return config_uint(value, 0, UINT64_C(1) << 50, &pc->max_body_bytes, err, errlen);
    if (strcmp(key, "header-timeout") == 0)
        return config_duration(value, 1, CONFIG_TIME_MAX_MS, &pc->header_timeout_ms, err, errlen);
    if (strcmp(key, "keepalive-timeout") == 0)
        return config_duration(value, 1, CONFIG_TIME_MAX_MS, &pc->keepalive_timeout_ms, err,
                               errlen);
    if (strcmp(key, "connect-timeout") == 0)
        return config_duration(value, 1, CONFIG_TIME_MAX_MS, &pc->connect_timeout_ms, err, errlen);
    if (strcmp(key, "response-timeout") == 0)
        return config_duration(value, 1, CONFIG_TIME_MAX_MS, &pc->response_timeout_ms, err, errlen);
    if (strcmp(key, "tunnel-timeout") == 0)
        return config_duration(value, 1, CONFIG_TIME_MAX_MS, &pc->tunnel_idle_timeout_ms, err,
                               errlen);
    if (strcmp(key, "retries") == 0)
        return config_u32(value, 0, 16, &pc->retries, err, errlen);
    if (strcmp(key, "backend-pool-idle") == 0)
        return config_u32(value, 0, 65536, &pc->pool_max_idle, err, errlen);
    if (strcmp(key, "max-hops") == 0)
        return config_u32(value, 1, 255, &pc->max_hops, err, errlen);
    if (strcmp(key, "max-conns-per-ip") == 0)
        return config_u32(value, 0, 1000000, &pc->max_conns_per_ip, err, errlen);
    if (strcmp(key, "rate-per-ip") == 0)
        return config_u32(value, 0, 1000000, &pc->rate_per_ip, err, errlen);
    if (strcmp(key, "rate-burst") == 0)
        return config_u32(value, 0, 1000000, &pc->rate_burst, err, errlen);
    if (strcmp(key, "trusted-proxy") == 0) {
        if (pc->trusted_count == PROXY_TRUSTED_MAX) {
            snprintf(err, errlen, "at most %d networks", PROXY_TRUSTED_MAX);
            return -1;
        }
        if (proxy_parse_cidr(value, &pc->trusted[pc->trusted_count], why, sizeof(why)) !=
            PROXY_OK) {
            snprintf(err, errlen, "expected IP or IP/PREFIX, got \"%.60s\"", value);
            return -1;
        }
        pc->trusted_count++;
        return 0;
    }
    if (strcmp(key, "health-check") == 0) {
        if (strcmp(value, "tcp") == 0 || strcmp(value, "http") == 0) {
            probe->kind = value[0] == 't' ? PROXY_PROBE_TCP : PROXY_PROBE_HTTP;
            return 0;
        }
        snprintf(err, errlen, "expected tcp or http, got \"%.60s\"", value);
        return -1;
    }
    if (strcmp(key, "health-path") == 0) {
        size_t len = strlen(value);
        if (value[0] != '/' || len >= sizeof(probe->path)) {
            snprintf(err, errlen, "must start with / and be under %zu bytes", sizeof(probe->path));
            return -1;
        }
        /* it goes into a request line verbatim */
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)value[i];
            if (c <= ' ' || c >= 0x7f) {
                snprintf(err, errlen, "space, control or non-ASCII byte at offset %zu", i);
                return -1;
            }
        }
        memcpy(probe->path, value, len + 1);
        return 0;
    }
    if (strcmp(key, "health-interval") == 0) {
        if (config_duration(value, 10, 3600 * 1000, &probe->interval_ms, err, errlen) != 0)
            return -1;
        /* a probe never outlives the next one */
        probe->timeout_ms = probe->interval_ms < 1000 ? probe->interval_ms : 1000;
        return 0;
    }
    if (strcmp(key, "health-rise") == 0)
        return config_u32(value, 1, 100, &probe->rise, err, errlen);
    if (strcmp(key, "health-fall") == 0)
        return config_u32(value, 1, 100, &probe->fall, err, errlen);
    if (strcmp(key, "health-ttl") == 0)
        return config_duration(value, 100, 600 * 1000, &cfg->health_ttl_ms, err, errlen);
    snprintf(err, errlen, "unknown key");
    return -1;
}

/* The proxy options that only make sense together; proxy_config_validate has the last word. */
int node_config_check_proxy(const struct node_config *cfg, char *err, size_t errlen)
{
    struct proxy_config pc;
    char why[PROXY_ERR_MAX];

    if (cfg->proxy.max_request_line > cfg->proxy.max_header_bytes) {
        snprintf(err, errlen,
                 "max-request-line: %u is over max-header-bytes (%u), which includes the request "
                 "line",
                 cfg->proxy.max_request_line, cfg->proxy.max_header_bytes);
        return -1;
    }
    /* A prober restates an unchanged verdict once half a TTL has passed, at its next probe:
     * the gap between two restatements is at most TTL/2 + interval + timeout. Capping the
     * probe period at TTL/4 leaves a quarter of the TTL for gossip to carry it before the
     * previous one expires anywhere. */
    if ((uint64_t)cfg->probe.interval_ms + cfg->probe.timeout_ms > cfg->health_ttl_ms / 4) {
        snprintf(err, errlen,
                 "health-ttl: %ums is under 4x (health-interval %ums + probe timeout %ums): "
                 "verdicts would expire between two probes",
                 cfg->health_ttl_ms, cfg->probe.interval_ms, cfg->probe.timeout_ms);
        return -1;
    }
    proxy_config_init(&pc);
    node_config_proxy(cfg, &pc);
    if (proxy_config_validate(&pc, why, sizeof(why)) != PROXY_OK) {
        snprintf(err, errlen, "proxy options: %s", why);
        return -1;
    }
    return 0;
}

void node_config_proxy(const struct node_config *cfg, struct proxy_config *pc)
{
    const struct proxy_config *o = &cfg->proxy;

    pc->balance = o->balance;
    pc->max_request_line = o->max_request_line;
    pc->max_header_count = o->max_header_count;
    pc->max_header_bytes = o->max_header_bytes;
    pc->max_body_bytes = o->max_body_bytes;
    pc->header_timeout_ms = o->header_timeout_ms;
    pc->keepalive_timeout_ms = o->keepalive_timeout_ms;
    pc->connect_timeout_ms = o->connect_timeout_ms;
    pc->response_timeout_ms = o->response_timeout_ms;
    pc->tunnel_idle_timeout_ms = o->tunnel_idle_timeout_ms;
    pc->retries = o->retries;
    pc->pool_max_idle = o->pool_max_idle;
    pc->max_conns_per_ip = o->max_conns_per_ip;
    pc->max_hops = o->max_hops;
    pc->rate_per_ip = o->rate_per_ip;
    pc->rate_burst = o->rate_burst;
    memcpy(pc->trusted, o->trusted, sizeof(pc->trusted));
    pc->trusted_count = o->trusted_count;
}
