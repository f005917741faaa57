/*
 * config.c - proxy configuration: embedded defaults, validation and the text forms the node
 * parses from flags and YAML (addresses, networks, balancing policy).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"

#define ERR(...)                                                                                   \
    do {                                                                                           \
        if (err && errlen)                                                                         \
            snprintf(err, errlen, __VA_ARGS__);                                                    \
    } while (0)

void proxy_config_init(struct proxy_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    proxy_parse_addr("[::]:8080", &cfg->http[0].addr, NULL, 0);
    cfg->http_count = 1;
    cfg->https_count = 0;
    cfg->workers = 0;
    cfg->listen_backlog = 511;
    snprintf(cfg->domain, sizeof(cfg->domain), "localhost");
    cfg->max_request_line = 8192;
    cfg->max_header_count = 100;
    cfg->max_header_bytes = 32768;
    cfg->max_body_bytes = 1ULL << 30;
    cfg->header_timeout_ms = 10000;
    cfg->keepalive_timeout_ms = 60000;
    cfg->connect_timeout_ms = 3000;
    cfg->response_timeout_ms = 60000;
    cfg->send_timeout_ms = 60000;
    cfg->tunnel_idle_timeout_ms = 300000;
    cfg->write_queue_limit = 256 * 1024;
    cfg->pool_max_idle = 256;
    cfg->pool_idle_timeout_ms = 60000;
    cfg->pool_max_requests = 1000;
    cfg->pool_check_after_ms = 100;
    cfg->pool_unsafe_idle_ms = 100;
    cfg->balance = PROXY_BALANCE_ROUND_ROBIN;
    cfg->retries = 2;
    cfg->down_after_failures = 3;
    cfg->down_backoff_ms = 1000;
    cfg->down_backoff_max_ms = 30000;
    cfg->max_conns_per_ip = 256;
    cfg->rate_per_ip = 0;
    cfg->rate_burst = 0;
    cfg->max_hops = 8;
}

void proxy_probe_config_init(struct proxy_probe_config *pc)
{
    memset(pc, 0, sizeof(*pc));
    pc->kind = PROXY_PROBE_TCP;
    snprintf(pc->path, sizeof(pc->path), "/");
    pc->interval_ms = 2000;
    pc->timeout_ms = 1000;
    pc->rise = 2;
    pc->fall = 3;
}

int proxy_config_validate(const struct proxy_config *cfg, char *err, size_t errlen)
{
    if (cfg->http_count < 1 || cfg->http_count > PROXY_LISTEN_MAX ||
        cfg->https_count > PROXY_LISTEN_MAX) {
        ERR("listeners: 1..%d http and 0..%d https addresses, got %zu and %zu", PROXY_LISTEN_MAX,
            PROXY_LISTEN_MAX, cfg->http_count, cfg->https_count);
        return PROXY_EINVAL;
    }
    for (size_t i = 0; i < cfg->http_count + cfg->https_count; i++) {
        const struct proxy_listen *l =
            i < cfg->http_count ? &cfg->http[i] : &cfg->https[i - cfg->http_count];
        if (l->addr.ss_family != AF_INET && l->addr.ss_family != AF_INET6) {
            ERR("%s address: not an IPv4 or IPv6 address", i < cfg->http_count ? "http" : "https");
            return PROXY_EINVAL;
        }
    }
    if (cfg->workers > PROXY_WORKERS_MAX) {
        ERR("workers: %u is over the maximum of %d", cfg->workers, PROXY_WORKERS_MAX);
        return PROXY_EINVAL;
    }
    if (cfg->domain[0] == '\0') {
        ERR("domain: empty");
        return PROXY_EINVAL;
    }
    if (cfg->max_request_line < 64 || cfg->max_header_bytes < cfg->max_request_line ||
        cfg->max_header_bytes > (1u << 20)) {
        ERR("header limits: need 64 <= max_request_line (%u) <= max_header_bytes (%u) <= 1 MiB",
            cfg->max_request_line, cfg->max_header_bytes);
        return PROXY_EINVAL;
    }
    if (cfg->max_header_count < 4 || cfg->max_header_count > 10000) {
        ERR("max_header_count: %u is outside 4..10000", cfg->max_header_count);
        return PROXY_EINVAL;
    }
    if (!cfg->header_timeout_ms || !cfg->keepalive_timeout_ms || !cfg->connect_timeout_ms ||
        !cfg->response_timeout_ms || !cfg->send_timeout_ms || !cfg->tunnel_idle_timeout_ms ||
        !cfg->pool_idle_timeout_ms) {
        ERR("timeouts: every timeout must be above 0 ms");
        return PROXY_EINVAL;
    }
    if (cfg->write_queue_limit < 4096) {
        ERR("write_queue_limit: %u is under 4096 bytes", cfg->write_queue_limit);
        return PROXY_EINVAL;
    }
    if (cfg->balance > PROXY_BALANCE_P2C) {
        ERR("balance: unknown policy %d", (int)cfg->balance);
        return PROXY_EINVAL;
    }
    if (cfg->retries > 16) {
        ERR("retries: %u is over 16", cfg->retries);
        return PROXY_EINVAL;
    }
    if (cfg->max_hops < 1 || cfg->max_hops > 255) {
        ERR("max_hops: %u is outside 1..255", cfg->max_hops);
        return PROXY_EINVAL;
    }
    for (const char *c = cfg->via_name; *c; c++) {
        /* a token (RFC 9110 5.6.2) of our own making: letters, digits, '-' */
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '.')) {
            ERR("via_name: \"%.40s\" is not a token of [A-Za-z0-9.-]", cfg->via_name);
            return PROXY_EINVAL;
        }
    }
    if (cfg->down_after_failures == 0 || cfg->down_after_failures > 1000) {
        ERR("down_after_failures: %u is not in 1..1000", cfg->down_after_failures);
        return PROXY_EINVAL;
    }
    if (cfg->down_backoff_ms == 0 || cfg->down_backoff_max_ms < cfg->down_backoff_ms) {
        ERR("backoff: need 0 < down_backoff_ms <= down_backoff_max_ms");
        return PROXY_EINVAL;
    }
    if (cfg->trusted_count > PROXY_TRUSTED_MAX || cfg->own_addr_count > PROXY_OWN_ADDRS_MAX ||
        cfg->own_host_count > PROXY_OWN_HOSTS_MAX) {
        ERR("trusted/own lists: too many entries");
        return PROXY_EINVAL;
    }
    for (size_t i = 0; i < cfg->trusted_count; i++) {
        const struct proxy_cidr *c = &cfg->trusted[i];
        if ((c->family != 4 && c->family != 6) || c->prefix > (c->family == 4 ? 32 : 128)) {
            ERR("trusted proxy %zu: bad family or prefix", i);
            return PROXY_EINVAL;
        }
    }
    return PROXY_OK;
}

int proxy_parse_addr(const char *text, struct sockaddr_storage *out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port_text;
    memset(out, 0, sizeof(*out));
    if (text == NULL || *text == '\0') {
        ERR("address: empty");
        return PROXY_EINVAL;
    }
    if (text[0] == '[') {
        const char *end = strchr(text, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - text - 1) >= sizeof(host)) {
            ERR("address \"%s\": expected [IPv6]:PORT", text);
            return PROXY_EINVAL;
        }
        memcpy(host, text + 1, (size_t)(end - text - 1));
        host[end - text - 1] = '\0';
        port_text = end + 2;
    } else {
        const char *colon = strrchr(text, ':');
        if (colon == NULL || (size_t)(colon - text) >= sizeof(host) ||
            memchr(text, ':', (size_t)(colon - text)) != NULL) {
            ERR("address \"%s\": expected IP:PORT", text);
            return PROXY_EINVAL;
        }
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port_text = colon + 1;
    }
    char *endp;
    errno = 0;
    long port = strtol(port_text, &endp, 10);
    if (*port_text == '\0' || *endp != '\0' || errno || port < 0 || port > 65535) {
        ERR("address \"%s\": bad port", text);
        return PROXY_EINVAL;
    }
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        return PROXY_OK;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return PROXY_OK;
    }
    memset(out, 0, sizeof(*out));
    ERR("address \"%s\": \"%s\" is not an IP literal", text, host);
    return PROXY_EINVAL;
}

int proxy_parse_cidr(const char *text, struct proxy_cidr *out, char *err, size_t errlen)
{
    struct state_cidr c;

    /* one parser for networks: the state layer's (it also reads --deny-backend) */
    memset(out, 0, sizeof(*out));
    if (state_cidr_parse(text, &c, err, errlen) != 0)
        return PROXY_EINVAL;
    out->family = c.family;
    memcpy(out->addr, c.addr, sizeof(out->addr));
    out->prefix = c.prefix;
    return PROXY_OK;
}

static const char *const balance_names[] = {"round-robin", "least-conn", "p2c"};

int proxy_parse_balance(const char *text, enum proxy_balance *out, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(balance_names) / sizeof(balance_names[0]); i++) {
        if (strcmp(text, balance_names[i]) == 0) {
            *out = (enum proxy_balance)i;
            return PROXY_OK;
        }
    }
    ERR("balance \"%s\": expected round-robin, least-conn or p2c", text);
    return PROXY_EINVAL;
}

const char *proxy_balance_name(enum proxy_balance b)
{
    return (unsigned)b < 3 ? balance_names[b] : "unknown";
}
