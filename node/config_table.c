/*
 * config_table.c - the daemon's options: one table, read by the flag parser (config.c), the
 * YAML loader (config_yaml.c) and --help, so a key can never exist in one and not the others.
 */
#include <stdio.h>
#include <string.h>

#include "node/config_internal.h"

const struct config_option config_options[] = {
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
_Static_assert(CONFIG_OPTION_COUNT <= CONFIG_OPTIONS_MAX, "raise CONFIG_OPTIONS_MAX");
const size_t config_option_count = CONFIG_OPTION_COUNT;

const struct config_option *config_find(const char *key)
{
    for (size_t i = 0; i < CONFIG_OPTION_COUNT; i++)
        if (strcmp(config_options[i].key, key) == 0)
            return &config_options[i];
    return NULL;
}

bool node_config_is_list(const char *key)
{
    const struct config_option *o = config_find(key);
    return o && o->kind == CONFIG_LIST;
}

void node_config_usage(void *out)
{
    FILE *f = out;

    fprintf(f, "Usage: webgw [OPTION]...\n"
               "       webgw identity [--config FILE] [--data-dir DIR]   prints the node key\n"
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
