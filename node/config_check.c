/*
 * config_check.c - the checks of the whole configuration once every value is set: options
 * that go in pairs or need each other, files that must be readable, listeners that would
 * overlap, and who may witness (--fleet-keys / --fleet-open).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node/config_internal.h"

static int config_readable(const char *key, const char *path, char *err, size_t errlen)
{
    if (path[0] != '\0' && access(path, R_OK) != 0) {
        snprintf(err, errlen, "%s: cannot read %s: %s", key, path, strerror(errno));
        return -1;
    }
    return 0;
}

/* Two listeners that would take the same connections (the same address twice, 0.0.0.0 and
 * 127.0.0.1 on one port, or a dual-stack [::] and any IPv4 address on it) would both bind under
 * SO_REUSEPORT and split the clients between HTTP and HTTPS or between duplicates. */
static int config_check_listeners(const struct node_config *cfg, char *err, size_t errlen)
{
    const struct node_addr *all[2 * NODE_LISTEN_MAX];
    size_t n = 0;

    if (cfg->http_count == 0 || cfg->https_count == 0) {
        snprintf(err, errlen, "%s: needs at least one address", cfg->http_count ? "https" : "http");
        return -1;
    }
    for (size_t i = 0; i < cfg->http_count; i++)
        all[n++] = &cfg->http[i];
    for (size_t i = 0; i < cfg->https_count; i++)
        all[n++] = &cfg->https[i];
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (node_listen_overlap(all[i], all[j])) {
                snprintf(err, errlen,
                         "%s: %s overlaps %s %s (a [::] listener takes IPv4 too unless "
                         "/v6only)",
                         j < cfg->http_count ? "http" : "https", all[j]->text,
                         i < cfg->http_count ? "http" : "https", all[i]->text);
                return -1;
            }
    return 0;
}

static bool config_loopback(const struct sockaddr_storage *ss)
{
    static const uint8_t v6_loopback[16] = {[15] = 1};

    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, v6_loopback, 16) == 0;
}

/* Who may witness (README "Trust model"): an operator's roster, or, knowingly, every key a
 * member announces. The open roster is the default only where nobody else can reach gossip. */
static int config_check_fleet(const struct node_config *cfg, char *err, size_t errlen)
{
    bool gossiping = cfg->cluster_key[0] != '\0' || cfg->gossip_insecure;

    if (cfg->fleet_open && cfg->fleet_keys[0] != '\0') {
        snprintf(err, errlen, "fleet-open: contradicts --fleet-keys (a roster is not open)");
        return -1;
    }
    if (gossiping && cfg->fleet_keys[0] == '\0' && !cfg->fleet_open &&
        !config_loopback(&cfg->gossip.ss)) {
        snprintf(err, errlen,
                 "gossip: %s is not loopback: give --fleet-keys FILE (the fleet's node keys; "
                 "`webgw identity` prints one) or --fleet-open (any cluster-key holder may then "
                 "add identities)",
                 cfg->gossip.text);
        return -1;
    }
    return config_readable("fleet-keys", cfg->fleet_keys, err, errlen);
}

int node_config_check(const struct node_config *cfg, char *err, size_t errlen)
{
    if (cfg->gossip_timing.probe_timeout_ms >= cfg->gossip_timing.probe_interval_ms) {
        snprintf(err, errlen,
                 "gossip-probe-timeout: %ums is not below gossip-probe-interval (%ums): a probe "
                 "must be answered or given up before the next one starts",
                 cfg->gossip_timing.probe_timeout_ms, cfg->gossip_timing.probe_interval_ms);
        return -1;
    }
    if (config_check_listeners(cfg, err, errlen) != 0)
        return -1;
    if (cfg->acme_wildcard && (cfg->dns_listen_count == 0 || cfg->acme_directory[0] == '\0')) {
        snprintf(err, errlen, "acme-wildcard: needs --dns-listen and --acme-directory");
        return -1;
    }
    if (cfg->tls_cert_count != cfg->tls_key_count) {
        if (cfg->tls_cert_count == 0 || cfg->tls_key_count == 0)
            snprintf(err, errlen, "%s: needs %s as well",
                     cfg->tls_cert_count ? "tls-cert" : "tls-key",
                     cfg->tls_cert_count ? "tls-key" : "tls-cert");
        else
            snprintf(err, errlen,
                     "tls-cert: %zu given but %zu tls-key; they go in pairs, in the same order",
                     cfg->tls_cert_count, cfg->tls_key_count);
        return -1;
    }
    for (size_t i = 0; i < cfg->tls_cert_count; i++)
        if (config_readable("tls-cert", cfg->tls_cert[i], err, errlen) != 0 ||
            config_readable("tls-key", cfg->tls_key[i], err, errlen) != 0)
            return -1;
    if (cfg->join_count > 0 && cfg->cluster_key[0] == '\0' && !cfg->gossip_insecure) {
        snprintf(err, errlen,
                 "join: a node without --cluster-key runs alone; give the fleet's --cluster-key "
                 "(or --gossip-insecure to gossip in plain text, which anyone can join)");
        return -1;
    }
    if (config_readable("cluster-key", cfg->cluster_key, err, errlen) != 0 ||
        config_readable("admin-token-file", cfg->admin_token_file, err, errlen) != 0 ||
        config_check_fleet(cfg, err, errlen) != 0)
        return -1;
    return node_config_check_proxy(cfg, err, errlen);
}
