/*
 * config.c - the daemon's options: one table, read by the flag parser, the YAML loader
 * (config_yaml.c) and --help, so a key can never exist in one and not the others.
 *
 * Order of precedence: embedded defaults, then the --config file, then the other flags.
 * Every value is checked when it is set; a bad one stops the daemon with one line naming the
 * key ("--http: port must be 1..65535 in ...").
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gossip/gossip.h"
#include "node/access_log.h"
#include "node/node.h"

enum config_kind {
    CONFIG_STRING, /* a path or a name */
    CONFIG_ADDR,   /* IP:PORT */
    CONFIG_LIST,   /* repeatable: flags and YAML list items append */
    CONFIG_BOOL,   /* a flag without argument; true/false in YAML */
    CONFIG_UINT,   /* a bounded unsigned integer */
    CONFIG_ENUM,   /* one word out of a list */
    CONFIG_TIME,   /* a duration: seconds, or with a unit suffix (500ms, 10s, 5m) */
};

struct config_option {
    const char *key;       /* long option name and YAML key */
    enum config_kind kind; /* how the value is parsed */
    const char *arg;       /* placeholder in --help */
    const char *deflt;     /* default as shown in --help */
    const char *help;      /* one line of --help */
};

static const struct config_option config_options[] = {
    {"config", CONFIG_STRING, "FILE", "none",
     "YAML file with any of these keys; flags override it"},
    {"node-name", CONFIG_STRING, "NAME", "host name", "this node's name, shown to operators"},
    {"data-dir", CONFIG_STRING, "DIR", "./data", "where the record log and snapshots live"},
    {"domain", CONFIG_STRING, "D", "localhost", "names are served as NAME.D"},
    {"http", CONFIG_LIST, "ADDR:PORT[/v6only]", "[::]:8080 (IPv4 and IPv6)",
     "plain HTTP proxy listener (repeatable; a YAML list)"},
    {"https", CONFIG_LIST, "ADDR:PORT[/v6only]", "[::]:8443 (IPv4 and IPv6)",
     "TLS proxy listener (repeatable; a YAML list)"},
    {"gossip", CONFIG_ADDR, "ADDR:PORT", "0.0.0.0:7946", "gossip listener, UDP and TCP"},
    {"advertise", CONFIG_ADDR, "ADDR:PORT", "the gossip address", "gossip address peers use"},
    {"api", CONFIG_ADDR, "ADDR:PORT", "127.0.0.1:9080", "API, metrics and dashboard listener"},
    {"join", CONFIG_LIST, "ADDR:PORT", "none", "seed to join (repeatable; a YAML list)"},
    {"cluster-label", CONFIG_STRING, "LABEL", "webgw",
     "gossip cluster name, authenticated: labels differ, clusters never merge"},
    {"cluster-key", CONFIG_STRING, "FILE", "none (the node runs alone)",
     "base64 32-byte keys, one a line; the first encrypts, all decrypt"},
    {"gossip-insecure", CONFIG_BOOL, NULL, "false",
     "without --cluster-key, gossip in plain text and let anyone who reaches the port join"},
    {"gossip-probe-interval", CONFIG_TIME, "DURATION", "600ms",
     "SWIM protocol period: one member probed per period (100ms..60s; memberlist LAN: 1s)"},
    {"gossip-probe-timeout", CONFIG_TIME, "DURATION", "300ms",
     "direct ack deadline before indirect and TCP probes (10ms..30s, below the probe "
     "interval; memberlist LAN: 500ms)"},
    {"gossip-interval", CONFIG_TIME, "DURATION", "200ms",
     "dissemination round period (10ms..10s); a new change goes out at once"},
    {"gossip-fanout", CONFIG_UINT, "N", "3", "members sent each dissemination round (1..16)"},
    {"gossip-suspicion-mult", CONFIG_UINT, "N", "2",
     "a suspect is declared dead after N x log10(members) probe intervals once 3 other "
     "members confirmed it, 6 times that with no confirmation (1..20; memberlist LAN: 4 "
     "with 2)"},
    {"gossip-pushpull-interval", CONFIG_TIME, "DURATION", "30s",
     "anti-entropy exchange with one member, longer past 32 members (1s..1h)"},
    {"witness-faults", CONFIG_UINT, "F", "1",
     "f: a claim's time is the (f+1)-th earliest member witness (same on every node)"},
    {"fleet-keys", CONFIG_STRING, "FILE", "none",
     "the fleet roster: node keys (`webgw identity`), one a line; only their witnesses count "
     "(reloaded on SIGHUP)"},
    {"fleet-open", CONFIG_BOOL, NULL, "false",
     "without --fleet-keys, count every key a member announces (one holder of the cluster key "
     "can then run extra identities and take names); needed when gossip leaves loopback"},
    {"workers", CONFIG_UINT, "N", "one per core", "proxy worker threads"},
    {"tls-cert", CONFIG_LIST, "FILE", "none", "PEM certificate chain for HTTPS (repeatable)"},
    {"tls-key", CONFIG_LIST, "FILE", "none", "PEM key of the --tls-cert in the same position"},
    {"fleet-addr", CONFIG_LIST, "IP", "none",
     "a fleet address besides the members' own (repeatable)"},
    {"dns-server", CONFIG_STRING, "IP[:PORT]", "resolv.conf's", "resolver of the fqdn checks"},
    {"dns-interval", CONFIG_UINT, "SECONDS", "60", "how often each fqdn's DNS is checked again"},
    {"dns-listen", CONFIG_LIST, "ADDR:PORT", "none (no DNS server)",
     "authoritative DNS for --domain, UDP and TCP (repeatable)"},
    {"public-addr", CONFIG_LIST, "IP", "the advertise address",
     "this gateway's address in the fleet's DNS answers (repeatable, IPv4 or IPv6)"},
    {"dns-ttl", CONFIG_UINT, "SECONDS", "30", "TTL of the fleet's DNS answers"},
    {"dns-rrl", CONFIG_UINT, "N", "100",
     "DNS responses per second per client /24 (IPv6 /56) over UDP; 0 = unlimited"},
    {"acme-directory", CONFIG_STRING, "URL", "none (no automatic certificates)",
     "ACME directory of the CA that issues certificates for served names (HTTP-01)"},
    {"acme-ca-file", CONFIG_STRING, "FILE", "system trust store",
     "PEM trust anchors for the ACME CA's own HTTPS"},
    {"acme-email", CONFIG_STRING, "ADDR", "none", "contact address of the ACME account"},
    {"acme-wildcard", CONFIG_BOOL, NULL, "false",
     "order a wildcard *.DOMAIN certificate with DNS-01 through the fleet's own DNS "
     "(needs --dns-listen and --acme-directory)"},
    {"https-redirect", CONFIG_BOOL, NULL, "false",
     "answer plain HTTP for served names with a redirect to https (ACME paths excepted)"},
    {"deny-backend", CONFIG_LIST, "CIDR", "none",
     "network no backend may be in, on top of the built-in rules (repeatable; a YAML list)"},
    {"allow-loopback-backends", CONFIG_BOOL, NULL, "false",
     "accept 127.0.0.0/8 and ::1 backends (demos and tests on one machine)"},
    {"admin-token-file", CONFIG_STRING, "FILE", "none (admin API off)",
     "bearer token required by the admin API (drain, leave, key rotation)"},
    {"log-level", CONFIG_ENUM, "LEVEL", "info", "debug, info, warn or error"},
    {"log-format", CONFIG_ENUM, "FORMAT", "text", "text or json (one object a line)"},
    {"access-log", CONFIG_STRING, "DEST", "stderr",
     "one line per request to stderr (shown at log-level info), a file PATH (reopened on "
     "SIGHUP), syslog, syslog:SOCKET, or off"},
    {"access-log-buffer", CONFIG_UINT, "BYTES", "1048576",
     "access lines held per worker for the writer; when full, lines are dropped and counted"},
    {"drain-timeout", CONFIG_UINT, "SECONDS", "10", "how long a stop waits for in-flight requests"},
    {"api-rate-limit", CONFIG_UINT, "N", "100", "API requests per second per client IP (429 over)"},
    {"api-body-limit", CONFIG_UINT, "BYTES", "16384", "largest API request body (413 over)"},
    {"compact-bytes", CONFIG_UINT, "BYTES", "8388608", "record log size that triggers a snapshot"},
    {"tombstone-ttl", CONFIG_UINT, "SECONDS", "604800", "how long released names are remembered"},
    {"max-names-per-owner", CONFIG_UINT, "N", "1000",
     "live names one owner key may hold or contend (API 403; gossip drops the rest); 0: none"},
    {"max-records", CONFIG_UINT, "N", "100000",
     "records (claims and tombstones) kept in all (API 429; gossip drops the rest); 0: none"},
    /* the proxy's limits and policies (struct proxy_config, proxy_probe_config) */
    {"balance", CONFIG_ENUM, "POLICY", "round-robin",
     "over a name's healthy backends: round-robin, least-conn or p2c"},
    {"max-request-line", CONFIG_UINT, "BYTES", "8192", "longest request line (431 over)"},
    {"max-header-count", CONFIG_UINT, "N", "100",
     "header fields per request or response (431 over)"},
    {"max-header-bytes", CONFIG_UINT, "BYTES", "32768",
     "whole request head, request line included (431 over)"},
    {"max-body-bytes", CONFIG_UINT, "BYTES", "1073741824",
     "largest request body (413 over); 0 = unlimited"},
    {"header-timeout", CONFIG_TIME, "DURATION", "10s",
     "a client's request head must arrive within this (slowloris)"},
    {"keepalive-timeout", CONFIG_TIME, "DURATION", "60s", "client idle between requests"},
    {"connect-timeout", CONFIG_TIME, "DURATION", "3s", "backend TCP connect"},
    {"response-timeout", CONFIG_TIME, "DURATION", "60s",
     "backend silent while a response is awaited or read"},
    {"tunnel-timeout", CONFIG_TIME, "DURATION", "300s", "WebSocket/Upgrade tunnel idle"},
    {"retries", CONFIG_UINT, "N", "2", "other backends tried when one fails before any byte"},
    {"backend-pool-idle", CONFIG_UINT, "N", "256",
     "idle keep-alive connections kept per worker per backend"},
    {"max-conns-per-ip", CONFIG_UINT, "N", "256",
     "concurrent connections from one client IP; 0 = unlimited"},
    {"rate-per-ip", CONFIG_UINT, "N", "0 (off)",
     "requests per second per client IP, token bucket (429 over)"},
    {"rate-burst", CONFIG_UINT, "N", "rate-per-ip", "token bucket size of --rate-per-ip"},
    {"max-hops", CONFIG_UINT, "N", "8",
     "gateways a request may pass (Webgw-Hops) before it is answered 508 Loop Detected"},
    {"trusted-proxy", CONFIG_LIST, "CIDR", "none",
     "peer whose X-Forwarded-* are kept (repeatable; a YAML list)"},
    {"health-check", CONFIG_ENUM, "KIND", "tcp",
     "active health check: tcp (connect) or http (GET)"},
    {"health-path", CONFIG_STRING, "PATH", "/", "path of the http health check (2xx/3xx is up)"},
    {"health-interval", CONFIG_TIME, "DURATION", "2s", "between two checks of a backend"},
    {"health-rise", CONFIG_UINT, "N", "2", "consecutive successes that mark a backend up"},
    {"health-fall", CONFIG_UINT, "N", "3", "consecutive failures that mark a backend down"},
    {"health-ttl", CONFIG_TIME, "DURATION", "30s",
     "a prober's verdict expires fleet-wide after this unless restated (probers restate it "
     "every half TTL); at least 4x (health-interval + probe timeout)"},
};

#define CONFIG_OPTION_COUNT (sizeof(config_options) / sizeof(config_options[0]))

static const struct config_option *config_find(const char *key)
{
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++)
        if (strcmp(config_options[i].key, key) == 0)
            return &config_options[i];
    return NULL;
}

void node_config_defaults(struct node_config *cfg)
{
    char err[NODE_ERR_MAX];

    memset(cfg, 0, sizeof(*cfg));
    if (gethostname(cfg->node_name, sizeof(cfg->node_name)) != 0 || cfg->node_name[0] == '\0')
        snprintf(cfg->node_name, sizeof(cfg->node_name), "webgw");
    cfg->node_name[sizeof(cfg->node_name) - 1] = '\0';
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./data");
    snprintf(cfg->domain, sizeof(cfg->domain), "localhost");
    snprintf(cfg->cluster_label, sizeof(cfg->cluster_label), "webgw");
    node_listen_parse("[::]:8080", &cfg->http[0], err, sizeof(err));
    node_listen_parse("[::]:8443", &cfg->https[0], err, sizeof(err));
    cfg->http_count = cfg->https_count = 1;
    node_addr_parse("0.0.0.0:7946", &cfg->gossip, err, sizeof(err));
    node_addr_parse("127.0.0.1:9080", &cfg->api, err, sizeof(err));
    cfg->advertise = cfg->gossip;
    cfg->log_level = NODE_LOG_INFO;
    cfg->log_format = NODE_LOG_TEXT;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "stderr");
    cfg->access_log_buffer = 1u << 20;
    cfg->drain_timeout_ms = 10000;
    cfg->api_rate_limit = 100;
    cfg->max_names_per_owner = 1000;
    cfg->max_records = 100000;
    cfg->api_body_limit = 16384;
    cfg->compact_bytes = 8u << 20;
    cfg->tombstone_ttl_ms = STATE_TOMBSTONE_TTL_MS_DEFAULT;
    cfg->dns_interval_ms = 60000;
    cfg->witness_faults = 1;
    cfg->dns_ttl = 30;
    cfg->dns_rrl = 100;
    proxy_config_init(&cfg->proxy);
    proxy_probe_config_init(&cfg->probe);
    cfg->health_ttl_ms = NODE_HEALTH_TTL_MS_DEFAULT;
    node_config_gossip_defaults(&cfg->gossip_timing);
}

bool node_config_is_list(const char *key)
{
    const struct config_option *o = config_find(key);
    return o && o->kind == CONFIG_LIST;
}

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

static int config_uint(const char *value, uint64_t min, uint64_t max, uint64_t *out, char *err,
                       size_t errlen)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (value[0] < '0' || value[0] > '9')
        goto bad;
    v = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0')
        goto bad;
    if (v < min || v > max) {
        snprintf(err, errlen, "%llu is out of range %llu..%llu", v, (unsigned long long)min,
                 (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "expected a whole number, got \"%s\"", value);
    return -1;
}

static int config_bool(const char *value, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    snprintf(err, errlen, "expected true or false, got \"%s\"", value);
    return -1;
}

static int config_path(char *dst, const char *value, char *err, size_t errlen)
{
    if (value[0] == '\0') {
        snprintf(err, errlen, "must not be empty");
        return -1;
    }
    if (strlen(value) >= NODE_PATH_MAX) {
        snprintf(err, errlen, "path longer than %d bytes", NODE_PATH_MAX - 1);
        return -1;
    }
    snprintf(dst, NODE_PATH_MAX, "%s", value);
    return 0;
}

/* A domain: dot-separated DNS labels, lowercased into dst. */
static int config_domain(char *dst, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value), label = 0;

    if (len == 0 || len > STATE_FQDN_MAX) {
        snprintf(err, errlen, "must be 1..%d characters", STATE_FQDN_MAX);
        return -1;
    }
    for (size_t i = 0; i <= len; i++) {
        char c = value[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || value[i - 1] == '-') {
                snprintf(err, errlen, "\"%.60s\" is not a domain (labels of 1..63 [a-z0-9-])",
                         value);
                return -1;
            }
            label = 0;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0))) {
            snprintf(err, errlen, "\"%.60s\" is not a domain (labels of 1..63 [a-z0-9-])", value);
            return -1;
        }
        label++;
    }
    for (size_t i = 0; i <= len; i++)
        dst[i] = (value[i] >= 'A' && value[i] <= 'Z') ? (char)(value[i] - 'A' + 'a') : value[i];
    return 0;
}

static int config_node_name(char *dst, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value);

    if (len == 0 || len > NODE_NAME_MAX) {
        snprintf(err, errlen, "must be 1..%d characters", NODE_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            snprintf(err, errlen, "\"%s\" has a character outside [A-Za-z0-9._-]", value);
            return -1;
        }
    }
    memcpy(dst, value, len + 1);
    return 0;
}

/* An IP literal without port ("192.0.2.1", "2001:db8::1" or "[2001:db8::1]"), port `port`. */
static int config_ip(const char *value, uint16_t port, struct sockaddr_storage *out, char *err,
                     size_t errlen)
{
    char buf[64];
    size_t len = strlen(value);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof(*out));
    if (len >= 2 && value[0] == '[' && value[len - 1] == ']' && len - 2 < sizeof(buf)) {
        memcpy(buf, value + 1, len - 2);
        buf[len - 2] = '\0';
    } else if (len < sizeof(buf)) {
        memcpy(buf, value, len + 1);
    } else {
        buf[0] = '\0';
    }
    if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return 0;
    }
    snprintf(err, errlen, "expected an IP address, got \"%.80s\"", value);
    return -1;
}

/* A repeatable path: appended to list[*count] (at most NODE_TLS_PAIRS_MAX). */
static int config_path_item(char (*list)[NODE_PATH_MAX], size_t *count, const char *value,
                            char *err, size_t errlen)
{
    if (*count == NODE_TLS_PAIRS_MAX) {
        snprintf(err, errlen, "at most %d files", NODE_TLS_PAIRS_MAX);
        return -1;
    }
    if (config_path(list[*count], value, err, errlen) != 0)
        return -1;
    (*count)++;
    return 0;
}

static int config_listen_item(struct node_addr *list, size_t *count, const char *value, char *err,
                              size_t errlen)
{
    if (*count == NODE_LISTEN_MAX) {
        snprintf(err, errlen, "at most %d addresses", NODE_LISTEN_MAX);
        return -1;
    }
    if (node_listen_parse(value, &list[*count], err, errlen) != 0)
        return -1;
    (*count)++;
    return 0;
}

/* A duration into milliseconds, min_ms..max_ms. A bare number is seconds, as for
 * --drain-timeout; the suffixes ms, s and m say the unit, so "500ms" is half a second. */
static int config_duration(const char *value, uint64_t min_ms, uint64_t max_ms, uint32_t *out,
                           char *err, size_t errlen)
{
    char *end;
    unsigned long long v, scale;

    errno = 0;
    if (value[0] < '0' || value[0] > '9')
        goto bad;
    v = strtoull(value, &end, 10);
    if (errno != 0)
        goto bad;
    if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else
        goto bad;
    if (v > max_ms / scale || v * scale < min_ms) {
        snprintf(err, errlen, "%s is out of range %llums..%llus", value, (unsigned long long)min_ms,
                 (unsigned long long)max_ms / 1000);
        return -1;
    }
    *out = (uint32_t)(v * scale);
    return 0;
bad:
    snprintf(err, errlen,
             "expected a duration (10s, 500ms, 5m; a bare number is seconds), got \"%.60s\"",
             value);
    return -1;
}

/* A bounded unsigned integer into a uint32_t field. */
static int config_u32(const char *value, uint32_t min, uint32_t max, uint32_t *out, char *err,
                      size_t errlen)
{
    uint64_t n;

    if (config_uint(value, min, max, &n, err, errlen) != 0)
        return -1;
    *out = (uint32_t)n;
    return 0;
}

#define CONFIG_TIME_MAX_MS (UINT64_C(86400) * 1000) /* a day: longer is a mistake */

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

/* The proxy's options (config_apply's tail): limits, timeouts, balancing, per-IP limits,
 * trusted proxies and the active health check. */
static int config_apply_proxy(struct node_config *cfg, const char *key, const char *value,
                              char *err, size_t errlen)
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

/* Sets `key` from `value`; writes only the problem (no key) into err. */
static int config_apply(struct node_config *cfg, const char *key, const char *value, char *err,
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

/* Splits argv[i] ("--key", "--key=value") and fetches its value; returns the option or NULL
 * with err set. *i is advanced past a separate value. */
static const struct config_option *config_flag(int argc, char **argv, int *i, char *key,
                                               size_t keycap, const char **value, char *err,
                                               size_t errlen)
{
    const char *arg = argv[*i], *eq;
    const struct config_option *opt;
    size_t klen;

    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", arg);
        return NULL;
    }
    eq = strchr(arg, '=');
    klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (klen >= keycap)
        klen = keycap - 1;
    memcpy(key, arg + 2, klen);
    key[klen] = '\0';
    opt = config_find(key);
    if (!opt) {
        snprintf(err, errlen, "unknown option --%s (see --help)", key);
        return NULL;
    }
    if (eq) {
        *value = eq + 1;
    } else if (opt->kind == CONFIG_BOOL) {
        *value = "true";
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        snprintf(err, errlen, "--%s: missing value %s", key, opt->arg);
        return NULL;
    }
    return opt;
}

int node_config_from_args(struct node_config *cfg, int argc, char **argv, void *out, char *err,
                          size_t errlen)
{
    char key[64], why[NODE_ERR_MAX];
    const char *value, *config_file = NULL;
    bool replaced[CONFIG_OPTION_COUNT] = {false};

    node_config_defaults(cfg);
    /* first pass: --help, --version and --config, so the file is read before other flags */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            node_config_usage(out);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            fprintf(out, "webgw %s\n", WEBGW_VERSION);
            return 1;
        }
        if (!config_flag(argc, argv, &i, key, sizeof(key), &value, err, errlen))
            return -1;
        if (strcmp(key, "config") == 0)
            config_file = value;
    }
    if (config_file) {
        if (config_apply(cfg, "config", config_file, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--config: %s", why);
            return -1;
        }
        if (node_config_load_file(cfg, config_file, err, errlen) != 0)
            return -1;
    }
    for (int i = 1; i < argc; i++) {
        config_flag(argc, argv, &i, key, sizeof(key), &value, err, errlen);
        if (strcmp(key, "config") == 0)
            continue;
        {
            size_t idx = (size_t)(config_find(key) - config_options);
            if (config_options[idx].kind == CONFIG_LIST && !replaced[idx]) {
                /* flags replace the file's list rather than add to it */
                node_config_clear_list(cfg, key);
                replaced[idx] = true;
            }
        }
        if (config_apply(cfg, key, value, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--%s: %s", key, why);
            return -1;
        }
    }
    return node_config_check(cfg, err, errlen);
}

/* The proxy options that only make sense together; proxy_config_validate has the last word. */
static int node_config_check_proxy(const struct node_config *cfg, char *err, size_t errlen)
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

void node_config_usage(void *out)
{
    FILE *f = out;

    fprintf(f, "Usage: webgw [OPTION]...\n"
               "       webgw identity [--data-dir DIR]  (prints the node key for --fleet-keys)\n"
               "A clustered web gateway node: reverse proxy for NAME.DOMAIN plus gossip of the\n"
               "signed name records. With no option it runs a single node on the defaults below,\n"
               "so http://NAME.localhost:8080 works from this machine.\n\n"
               "Every option is also a key of the YAML file given with --config (same name,\n"
               "without the dashes; repeatable ones take a list); flags override the file.\n"
               "Certificates pair by position: the first tls-cert with the first tls-key, and\n"
               "so on; SNI picks among them (a wildcard *.D serves every NAME.D).\n"
               "An fqdn proxy is routed only while its DNS points at the fleet: every A/AAAA\n"
               "address a member's (or a --fleet-addr), or a CNAME into --domain; checked when\n"
               "the record arrives and every --dns-interval.\n\n");
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++) {
        const struct config_option *o = &config_options[i];
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", o->key, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(f, "  %-36s %s\n  %-36s (default: %s)\n", left, o->help, "", o->deflt);
    }
    fprintf(f, "  %-36s %s\n  %-36s %s\n\n", "--help", "print this help", "--version",
            "print the version");
    fprintf(f, "A DURATION is seconds, or a number with a unit: 500ms, 10s, 5m.\n");
    fprintf(f, "IPv6 addresses are written [::1]:8080. An IPv6 proxy listener takes IPv4\n"
               "clients too ([::]:8080 serves both families); add /v6only to refuse them, e.g.\n"
               "--http [::]:8080/v6only --http 0.0.0.0:8080. Make a cluster key with\n"
               "  head -c 32 /dev/urandom | base64 > cluster.key\n\n"
               "Signals: SIGTERM/SIGINT leave the cluster, stop accepting, finish in-flight\n"
               "requests (up to --drain-timeout) and exit 0; SIGHUP reloads the config file, the\n"
               "certificates and the --fleet-keys roster and reopens the --access-log file\n"
               "(logrotate: rename, then SIGHUP).\n"
               "Exit status: 0 after a clean stop, 1 on a start-up error (one line on stderr\n"
               "naming the option and the problem).\n");
}
