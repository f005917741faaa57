/*
 * config_set.c - sets one key from its text (a flag's value or a YAML scalar): every value is
 * checked when it is set, and node_config_set names the key in the one line it fails with.
 * The proxy's keys are config_proxy.c's.
 */
#include <stdio.h>
#include <string.h>

#include "gossip/gossip.h"
#include "node/access_log.h"
#include "node/config_internal.h"

void node_config_clear_list(struct node_config *cfg, const char *key)
{
    if (strcmp(key, "join") == 0)
        cfg->join_count = 0;
    else if (strcmp(key, "http") == 0)
        cfg->http_count = 0;
    else if (strcmp(key, "https") == 0)
        cfg->https_count = 0;
    else if (strcmp(key, "tls-cert") == 0)
        cfg->tls_cert_count = 0;
    else if (strcmp(key, "tls-key") == 0)
        cfg->tls_key_count = 0;
    else if (strcmp(key, "fleet-addr") == 0)
        cfg->fleet_addr_count = 0;
    else if (strcmp(key, "deny-backend") == 0)
        cfg->deny_backend_count = 0;
    else if (strcmp(key, "trusted-proxy") == 0)
        cfg->proxy.trusted_count = 0;
    else if (strcmp(key, "dns-listen") == 0)
        cfg->dns_listen_count = 0;
    else if (strcmp(key, "public-addr") == 0)
        cfg->public_addr_count = 0;
}

/* The gossip timings (--gossip-*). Returns 1 when `key` is not one of them. The ranges keep
 * a typo from silencing the detector (a 60 s probe) or flooding the network (a 1 ms round). */
static int config_apply_gossip(struct node_gossip_timing *t, const char *key, const char *value,
                               char *err, size_t errlen)
{
    if (strcmp(key, "gossip-probe-interval") == 0)
        return config_duration(value, 100, 60 * 1000, &t->probe_interval_ms, err, errlen);
    if (strcmp(key, "gossip-probe-timeout") == 0)
        return config_duration(value, 10, 30 * 1000, &t->probe_timeout_ms, err, errlen);
    if (strcmp(key, "gossip-interval") == 0)
        return config_duration(value, 10, 10 * 1000, &t->gossip_interval_ms, err, errlen);
    if (strcmp(key, "gossip-fanout") == 0)
        return config_u32(value, 1, 16, &t->fanout, err, errlen);
    if (strcmp(key, "gossip-suspicion-mult") == 0)
        return config_u32(value, 1, 20, &t->suspicion_mult, err, errlen);
    if (strcmp(key, "gossip-pushpull-interval") == 0)
        return config_duration(value, 1000, 3600 * 1000, &t->pushpull_interval_ms, err, errlen);
    return 1;
}

void node_config_gossip_defaults(struct node_gossip_timing *t)
{
    struct gossip_config gc;

    gossip_config_default(&gc);
    t->probe_interval_ms = gc.probe_interval_ms;
    t->probe_timeout_ms = gc.probe_timeout_ms;
    t->gossip_interval_ms = gc.gossip_interval_ms;
    t->fanout = gc.gossip_nodes;
    t->suspicion_mult = gc.suspicion_mult;
    t->pushpull_interval_ms = gc.pushpull_interval_ms;
}

/* Sets `key` from `value`; writes only the problem (no key) into err. */
int config_apply(struct node_config *cfg, const char *key, const char *value, char *err,
                 size_t errlen)
{
    uint64_t n;
    int rc;

    if (strcmp(key, "config") == 0)
        return config_path(cfg->config_path, value, err, errlen);
    if (strcmp(key, "node-name") == 0)
        return config_node_name(cfg->node_name, value, err, errlen);
    if (strcmp(key, "data-dir") == 0)
        return config_path(cfg->data_dir, value, err, errlen);
    if (strcmp(key, "domain") == 0)
        return config_domain(cfg->domain, value, err, errlen);
    if (strcmp(key, "http") == 0)
        return config_listen_item(cfg->http, &cfg->http_count, value, err, errlen);
    if (strcmp(key, "https") == 0)
        return config_listen_item(cfg->https, &cfg->https_count, value, err, errlen);
    if (strcmp(key, "gossip") == 0) {
        if (node_addr_parse(value, &cfg->gossip, err, errlen) != 0)
            return -1;
        if (!cfg->advertise_set)
            cfg->advertise = cfg->gossip;
        return 0;
    }
    if (strcmp(key, "advertise") == 0) {
        if (node_addr_parse(value, &cfg->advertise, err, errlen) != 0)
            return -1;
        cfg->advertise_set = true;
        return 0;
    }
    if (strcmp(key, "api") == 0)
        return node_addr_parse(value, &cfg->api, err, errlen);
    if (strcmp(key, "join") == 0) {
        if (cfg->join_count == NODE_JOIN_MAX) {
            snprintf(err, errlen, "at most %d seeds", NODE_JOIN_MAX);
            return -1;
        }
        if (node_hostport_check(value, err, errlen) != 0)
            return -1;
        snprintf(cfg->join[cfg->join_count++], NODE_ADDR_TEXT_MAX, "%s", value);
        return 0;
    }
    if (strcmp(key, "cluster-label") == 0) {
        if (value[0] == '\0' || strlen(value) > 64) {
            snprintf(err, errlen, "must be 1..64 characters");
            return -1;
        }
        snprintf(cfg->cluster_label, sizeof(cfg->cluster_label), "%s", value);
        return 0;
    }
    if (strcmp(key, "cluster-key") == 0)
        return config_path(cfg->cluster_key, value, err, errlen);
    if (strcmp(key, "gossip-insecure") == 0)
        return config_bool(value, &cfg->gossip_insecure, err, errlen);
    if (strcmp(key, "fleet-keys") == 0)
        return config_path(cfg->fleet_keys, value, err, errlen);
    if (strcmp(key, "fleet-open") == 0)
        return config_bool(value, &cfg->fleet_open, err, errlen);
    if (strcmp(key, "witness-faults") == 0) {
        if (config_uint(value, 0, STATE_WITNESS_FAULTS_MAX, &n, err, errlen) != 0)
            return -1;
        cfg->witness_faults = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "workers") == 0) {
        if (config_uint(value, 0, 256, &n, err, errlen) != 0)
            return -1;
        cfg->workers = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "tls-cert") == 0)
        return config_path_item(cfg->tls_cert, &cfg->tls_cert_count, value, err, errlen);
    if (strcmp(key, "tls-key") == 0)
        return config_path_item(cfg->tls_key, &cfg->tls_key_count, value, err, errlen);
    if (strcmp(key, "fleet-addr") == 0) {
        if (cfg->fleet_addr_count == NODE_FLEET_ADDRS_MAX) {
            snprintf(err, errlen, "at most %d addresses", NODE_FLEET_ADDRS_MAX);
            return -1;
        }
        if (config_ip(value, 0, &cfg->fleet_addr[cfg->fleet_addr_count], err, errlen) != 0)
            return -1;
        cfg->fleet_addr_count++;
        return 0;
    }
    if (strcmp(key, "deny-backend") == 0) {
        char why[STATE_ERR_MAX];
        if (cfg->deny_backend_count == NODE_DENY_BACKENDS_MAX) {
            snprintf(err, errlen, "at most %d networks", NODE_DENY_BACKENDS_MAX);
            return -1;
        }
        if (state_cidr_parse(value, &cfg->deny_backend[cfg->deny_backend_count], why,
                             sizeof(why)) != 0) {
            snprintf(err, errlen, "expected IP or IP/PREFIX, got \"%.60s\"", value);
            return -1;
        }
        cfg->deny_backend_count++;
        return 0;
    }
    if (strcmp(key, "dns-server") == 0) {
        char why[NODE_ERR_MAX];
        /* IP:PORT first; a bare IP means port 53 */
        if (node_addr_parse(value, &cfg->dns_server, why, sizeof(why)) != 0) {
            if (config_ip(value, 53, &cfg->dns_server.ss, err, errlen) != 0) {
                snprintf(err, errlen, "expected IP or IP:PORT, got \"%.80s\"", value);
                return -1;
            }
            node_addr_format((struct sockaddr *)&cfg->dns_server.ss, cfg->dns_server.text);
        }
        cfg->dns_server_set = true;
        return 0;
    }
    if (strcmp(key, "dns-listen") == 0) {
        if (cfg->dns_listen_count == NODE_DNS_LISTEN_MAX) {
            snprintf(err, errlen, "at most %d addresses", NODE_DNS_LISTEN_MAX);
            return -1;
        }
        if (node_addr_parse(value, &cfg->dns_listen[cfg->dns_listen_count], err, errlen) != 0)
            return -1;
        cfg->dns_listen_count++;
        return 0;
    }
    if (strcmp(key, "public-addr") == 0) {
        if (cfg->public_addr_count == NODE_PUBLIC_ADDRS_MAX) {
            snprintf(err, errlen, "at most %d addresses", NODE_PUBLIC_ADDRS_MAX);
            return -1;
        }
        if (config_ip(value, 0, &cfg->public_addr[cfg->public_addr_count], err, errlen) != 0)
            return -1;
        cfg->public_addr_count++;
        return 0;
    }
    if (strcmp(key, "dns-ttl") == 0) {
        if (config_uint(value, 1, 86400, &n, err, errlen) != 0)
            return -1;
        cfg->dns_ttl = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "dns-rrl") == 0) {
        if (config_uint(value, 0, 1000000, &n, err, errlen) != 0)
            return -1;
        cfg->dns_rrl = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "dns-interval") == 0) {
        if (config_uint(value, 1, 86400, &n, err, errlen) != 0)
            return -1;
        cfg->dns_interval_ms = (unsigned)n * 1000;
        return 0;
    }
    if (strcmp(key, "acme-directory") == 0) {
        if (strncmp(value, "https://", 8) != 0 || strlen(value) >= sizeof(cfg->acme_directory)) {
            snprintf(err, errlen, "must be an https:// URL");
            return -1;
        }
        snprintf(cfg->acme_directory, sizeof(cfg->acme_directory), "%s", value);
        return 0;
    }
    if (strcmp(key, "https-redirect") == 0)
        return config_bool(value, &cfg->https_redirect, err, errlen);
    if (strcmp(key, "acme-wildcard") == 0)
        return config_bool(value, &cfg->acme_wildcard, err, errlen);
    if (strcmp(key, "acme-ca-file") == 0)
        return config_path(cfg->acme_ca_file, value, err, errlen);
    if (strcmp(key, "acme-email") == 0) {
        if (!strchr(value, '@') || strpbrk(value, " \t\"\\") ||
            strlen(value) >= sizeof(cfg->acme_email)) {
            snprintf(err, errlen, "expected an e-mail address");
            return -1;
        }
        snprintf(cfg->acme_email, sizeof(cfg->acme_email), "%s", value);
        return 0;
    }
    if (strcmp(key, "allow-loopback-backends") == 0)
        return config_bool(value, &cfg->allow_loopback_backends, err, errlen);
    if (strcmp(key, "admin-token-file") == 0)
        return config_path(cfg->admin_token_file, value, err, errlen);
    if (strcmp(key, "log-level") == 0) {
        static const char *const levels[] = {"debug", "info", "warn", "error"};
        for (int i = 0; i < 4; i++) {
            if (strcmp(value, levels[i]) == 0) {
                cfg->log_level = (enum node_log_level)i;
                return 0;
            }
        }
        snprintf(err, errlen, "expected debug, info, warn or error, got \"%s\"", value);
        return -1;
    }
    if (strcmp(key, "log-format") == 0) {
        if (strcmp(value, "text") == 0 || strcmp(value, "json") == 0) {
            cfg->log_format = value[0] == 't' ? NODE_LOG_TEXT : NODE_LOG_JSON;
            return 0;
        }
        snprintf(err, errlen, "expected text or json, got \"%s\"", value);
        return -1;
    }
    if (strcmp(key, "access-log") == 0) {
        struct access_sink sink;
        if (access_sink_parse(value, &sink, err, errlen) != 0)
            return -1;
        snprintf(cfg->access_log, sizeof(cfg->access_log), "%s", value);
        return 0;
    }
    if (strcmp(key, "access-log-buffer") == 0)
        return config_uint(value, 4096, UINT64_C(1) << 30, &cfg->access_log_buffer, err, errlen);
    if (strcmp(key, "drain-timeout") == 0) {
        if (config_uint(value, 0, 3600, &n, err, errlen) != 0)
            return -1;
        cfg->drain_timeout_ms = (unsigned)n * 1000;
        return 0;
    }
    if (strcmp(key, "max-names-per-owner") == 0)
        return config_uint(value, 0, 100000000, &cfg->max_names_per_owner, err, errlen);
    if (strcmp(key, "max-records") == 0)
        return config_uint(value, 0, 1000000000, &cfg->max_records, err, errlen);
    if (strcmp(key, "api-rate-limit") == 0) {
        if (config_uint(value, 1, 1000000, &n, err, errlen) != 0)
            return -1;
        cfg->api_rate_limit = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "api-body-limit") == 0) {
        /* a signed record, base64 in JSON, must always fit */
        if (config_uint(value, 4096, 1 << 20, &n, err, errlen) != 0)
            return -1;
        cfg->api_body_limit = (unsigned)n;
        return 0;
    }
    if (strcmp(key, "compact-bytes") == 0)
        return config_uint(value, 4096, UINT64_C(1) << 40, &cfg->compact_bytes, err, errlen);
    if (strcmp(key, "tombstone-ttl") == 0) {
        if (config_uint(value, 1, UINT64_C(10) * 365 * 24 * 3600, &n, err, errlen) != 0)
            return -1;
        cfg->tombstone_ttl_ms = n * 1000;
        return 0;
    }
    rc = config_apply_gossip(&cfg->gossip_timing, key, value, err, errlen);
    if (rc != 1)
        return rc;
    return config_apply_proxy(cfg, key, value, err, errlen);
}

int node_config_set(struct node_config *cfg, const char *key, const char *value, char *err,
                    size_t errlen)
{
    char why[NODE_ERR_MAX];

    if (!config_find(key)) {
        snprintf(err, errlen, "%s: unknown key", key);
        return -1;
    }
    if (config_apply(cfg, key, value, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: %s", key, why);
        return -1;
    }
    return 0;
}
