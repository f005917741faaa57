/*
 * node.h - the node module's public interface: what the `webgw` daemon and the `webgwctl` CLI
 * are made of, and what the tests drive directly.
 *
 *   config   every long option of the daemon, also a key of the YAML config file; flags
 *            override the file (config*.c, addr.c)
 *   log      text or JSON lines with levels, safe from any thread (log.c)
 *   node     the daemon: one control loop (API, state, gossip) plus the proxy workers
 *            (node.c, node_records.c, api*.c, httpd.c, metrics.c, dashboard.c)
 *   ctl      the CLI (ctl*.c)
 *
 * Conventions as in state.h: 0 or a negative code on failure, with a one-line human message
 * written into the caller's `err` buffer.
 */
#ifndef WEBGW_NODE_H
#define WEBGW_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "proxy/proxy.h"
#include "state/state.h"

/* ---- limits ----------------------------------------------------------------------------- */

#define NODE_PATH_MAX 512                /* longest file or directory path in the config */
#define NODE_NAME_MAX 63                 /* longest --node-name */
#define NODE_JOIN_MAX 16                 /* --join seeds */
#define NODE_ADDR_TEXT_MAX 300           /* "HOST:PORT" as written, for --join */
#define NODE_CONFIG_FILE_MAX (1 << 20)   /* largest YAML config file */
#define NODE_ERR_MAX 256                 /* size of an error message buffer */
#define NODE_TLS_PAIRS_MAX 16            /* --tls-cert/--tls-key pairs */
#define NODE_FLEET_ADDRS_MAX 64          /* --fleet-addr entries */
#define NODE_LISTEN_MAX PROXY_LISTEN_MAX /* --http and --https addresses, each */
#define NODE_DENY_BACKENDS_MAX 64        /* --deny-backend networks */
#define NODE_DNS_LISTEN_MAX 8            /* --dns-listen entries */
#define NODE_PUBLIC_ADDRS_MAX 8          /* --public-addr entries (GOSSIP_PUBLIC_ADDRS_MAX) */

/* ---- addresses ------------------------------------------------------------------------- */

/* A listen or peer address: "IP:PORT", IPv6 as "[::1]:8080". */
struct node_addr {
    struct sockaddr_storage ss; /* AF_INET or AF_INET6, port set */
    bool v6only;                /* proxy listeners only: IPv6 socket refuses IPv4 clients */
    char text[64];              /* canonical text form, e.g. "127.0.0.1:8080", "[::]:80/v6only" */
};

/* Parses an IP literal with a port (1..65535). Host names are refused: listen addresses must
 * be literal. Returns 0 or -1 with `err` set ("expected ADDR:PORT, got ..."). */
int node_addr_parse(const char *text, struct node_addr *out, char *err, size_t errlen);

/* Parses a proxy listen address: node_addr_parse's form, optionally followed by "/v6only" on an
 * IPv6 address. Without it an IPv6 listener takes IPv4 clients too, so "[::]:8080" serves both
 * families. Returns 0 or -1 with `err` set. */
int node_listen_parse(const char *text, struct node_addr *out, char *err, size_t errlen);

/* Whether two listen addresses would take the same connections: same port, and the same IP,
 * or one a wildcard covering the other (0.0.0.0 covers IPv4, [::] covers IPv6 and, unless
 * v6only, IPv4). */
bool node_listen_overlap(const struct node_addr *a, const struct node_addr *b);

/* Checks "HOST:PORT" syntax for seeds (a host name or an IP literal), without resolving. */
int node_hostport_check(const char *text, char *err, size_t errlen);

/* Formats a socket address as "IP:PORT" / "[IP]:PORT" into out[64]. */
void node_addr_format(const struct sockaddr *sa, char out[64]);

/* ---- logging --------------------------------------------------------------------------- */

enum node_log_level { NODE_LOG_DEBUG = 0, NODE_LOG_INFO, NODE_LOG_WARN, NODE_LOG_ERROR };
enum node_log_format { NODE_LOG_TEXT = 0, NODE_LOG_JSON };

/* Sets the process-wide format, threshold and stream (stderr when NULL). */
void node_log_setup(enum node_log_format format, enum node_log_level level, void *stream);
/* Writes one line: "TIME LEVEL component: message" or a JSON object with ts, level,
 * component and msg. Lines from several threads never interleave. */
void node_log(enum node_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- configuration --------------------------------------------------------------------- */

/* The gossip timings an operator may set (--gossip-*). Defaults are gossip_config_default's;
 * node_config_check refuses a probe timeout that is not below the probe interval. */
struct node_gossip_timing {
    uint32_t probe_interval_ms;    /* --gossip-probe-interval: one probe per period */
    uint32_t probe_timeout_ms;     /* --gossip-probe-timeout: direct ack deadline */
    uint32_t gossip_interval_ms;   /* --gossip-interval: dissemination round period */
    uint32_t fanout;               /* --gossip-fanout: members per dissemination round */
    uint32_t suspicion_mult;       /* --gossip-suspicion-mult: suspicion timeout multiplier */
    uint32_t pushpull_interval_ms; /* --gossip-pushpull-interval: anti-entropy period */
};

struct node_config {
    char config_path[NODE_PATH_MAX];        /* --config: YAML file read before the flags */
    char node_name[NODE_NAME_MAX + 1];      /* --node-name: shown to operators; default host name */
    char data_dir[NODE_PATH_MAX];           /* --data-dir: record log and snapshot */
    char domain[STATE_FQDN_MAX + 1];        /* --domain: names are served as NAME.DOMAIN */
    struct node_addr http[NODE_LISTEN_MAX]; /* --http: proxy listeners, plain HTTP */
    size_t http_count;                      /* entries in http (at least one) */
    struct node_addr https[NODE_LISTEN_MAX];      /* --https: proxy listeners, TLS */
    size_t https_count;                           /* entries in https (at least one) */
    struct node_addr gossip;                      /* --gossip: SWIM, UDP and TCP */
    struct node_addr advertise;                   /* --advertise: gossip address peers use */
    bool advertise_set;                           /* advertise given (else derived from gossip) */
    struct node_addr api;                         /* --api: this API */
    char join[NODE_JOIN_MAX][NODE_ADDR_TEXT_MAX]; /* --join: seeds, HOST:PORT */
    size_t join_count;                            /* seeds in join */
    char cluster_key[NODE_PATH_MAX];              /* --cluster-key: base64 keys, one a line */
    char cluster_label[65];         /* --cluster-label: authenticated in gossip packets */
    bool gossip_insecure;           /* --gossip-insecure: plain gossip open to the network */
    unsigned witness_faults;        /* --witness-faults: f, faulty members a claim time tolerates */
    char fleet_keys[NODE_PATH_MAX]; /* --fleet-keys: the node keys whose witnesses count */
    bool fleet_open;                /* --fleet-open: no roster; every announced key counts */
    unsigned workers;               /* --workers: proxy threads; 0 = one per core */
    char tls_cert[NODE_TLS_PAIRS_MAX][NODE_PATH_MAX]; /* --tls-cert: the i-th pairs with */
    char tls_key[NODE_TLS_PAIRS_MAX][NODE_PATH_MAX];  /* the i-th --tls-key */
    size_t tls_cert_count;                            /* entries in tls_cert */
    size_t tls_key_count;                             /* entries in tls_key */
    struct node_addr dns_server;                      /* --dns-server: resolver for fqdn checks */
    bool dns_server_set;                              /* else the system's (resolv.conf) */
    unsigned dns_interval_ms;                         /* --dns-interval (seconds in the config) */
    struct sockaddr_storage fleet_addr[NODE_FLEET_ADDRS_MAX]; /* --fleet-addr: public IPs */
    size_t fleet_addr_count;                                  /* entries in fleet_addr */
    struct state_cidr deny_backend[NODE_DENY_BACKENDS_MAX];   /* --deny-backend networks */
    size_t deny_backend_count;                                /* entries in deny_backend */
    struct node_addr dns_listen[NODE_DNS_LISTEN_MAX]; /* --dns-listen: authoritative DNS, UDP
                                                         and TCP; none: no DNS server */
    size_t dns_listen_count;                          /* entries in dns_listen */
    struct sockaddr_storage public_addr[NODE_PUBLIC_ADDRS_MAX]; /* --public-addr: what DNS
                                                                   answers for this gateway */
    size_t public_addr_count;                                   /* 0: the advertise address */
    unsigned dns_ttl;                     /* --dns-ttl: seconds, TTL of the fleet's DNS answers */
    unsigned dns_rrl;                     /* --dns-rrl: UDP responses/s per client prefix; 0 off */
    char acme_directory[NODE_PATH_MAX];   /* --acme-directory: ACME CA directory URL; "" off */
    char acme_ca_file[NODE_PATH_MAX];     /* --acme-ca-file: trust anchors for the CA's HTTPS */
    char acme_email[256];                 /* --acme-email: account contact */
    bool https_redirect;                  /* --https-redirect: HTTP answers 308 to https */
    bool acme_wildcard;                   /* --acme-wildcard: *.DOMAIN through DNS-01 */
    bool allow_loopback_backends;         /* --allow-loopback-backends */
    char admin_token_file[NODE_PATH_MAX]; /* --admin-token-file: bearer token for admin ops */
    enum node_log_level log_level;        /* --log-level */
    enum node_log_format log_format;      /* --log-format */
    char access_log[NODE_PATH_MAX];       /* --access-log: stderr, syslog[:SOCKET], off, a path */
    uint64_t access_log_buffer;           /* --access-log-buffer: ring bytes per worker */
    unsigned drain_timeout_ms;            /* --drain-timeout (seconds in the config) */
    unsigned api_rate_limit;              /* --api-rate-limit: requests/s per client IP */
    uint64_t max_names_per_owner;         /* --max-names-per-owner: live names per owner, 0 none */
    uint64_t max_records;                 /* --max-records: records kept in all, 0 none */
    unsigned api_body_limit;              /* --api-body-limit: bytes */
    uint64_t compact_bytes;               /* --compact-bytes: log size that triggers a snapshot */
    uint64_t tombstone_ttl_ms;            /* --tombstone-ttl (seconds in the config) */
    struct proxy_config proxy;            /* --balance, --max-*, the timeouts, --retries,
                                             --backend-pool-idle, the per-IP limits,
                                             --max-hops and --trusted-proxy; only the
                                             fields those options
                                             name are read (node_config_proxy) */
    struct proxy_probe_config probe;      /* --health-*: the active health check */
    uint32_t health_ttl_ms;               /* --health-ttl: a gossiped verdict's lifetime */
    struct node_gossip_timing gossip_timing; /* --gossip-*: SWIM and dissemination timings */
};

#define NODE_HEALTH_TTL_MS_DEFAULT 30000 /* --health-ttl default */

/* Copies the proxy options of `cfg` (limits, timeouts, balancing, retries, pool, per-IP limits,
 * trusted proxies) into `pc`, leaving its other fields (listeners, TLS, naming) alone. */
void node_config_proxy(const struct node_config *cfg, struct proxy_config *pc);
/* Fills the gossip timings with gossip_config_default's values. */
void node_config_gossip_defaults(struct node_gossip_timing *t);

/* Fills the embedded defaults: `webgw` alone serves a single node on them. */
void node_config_defaults(struct node_config *cfg);

/* Sets one key (the long option name without dashes, e.g. "http"), as a flag or a YAML
 * scalar would. Repeatable keys (join) append. Returns 0, or -1 with "KEY: problem" in err. */
int node_config_set(struct node_config *cfg, const char *key, const char *value, char *err,
                    size_t errlen);

/* Whether `key` is repeatable (join, tls-cert, tls-key, fleet-addr): a flag or YAML list item
 * appends; the first flag replaces what the config file gave. */
bool node_config_is_list(const char *key);
/* Empties the repeatable `key` (before flags replace the file's list). */
void node_config_clear_list(struct node_config *cfg, const char *key);

/* Loads a YAML mapping of keys to scalars (repeatable keys may be sequences). Returns 0 or -1 with
 * "FILE: KEY: problem" (or a YAML syntax error with its line) in err. */
int node_config_load_file(struct node_config *cfg, const char *path, char *err, size_t errlen);

/* Builds the configuration from the command line: defaults, then --config FILE, then every
 * other flag. Returns 0 to run, 1 when --help or --version was printed to `out`, -1 with
 * err set on a bad flag, value or file. */
int node_config_from_args(struct node_config *cfg, int argc, char **argv, void *out, char *err,
                          size_t errlen);

/* Cross-key checks (e.g. --tls-cert without --tls-key). Returns 0 or -1 with err set. */
int node_config_check(const struct node_config *cfg, char *err, size_t errlen);

/* Prints the --help text (every option, its YAML key and its default). */
void node_config_usage(void *out);

/* ---- the daemon ------------------------------------------------------------------------ */

struct node; /* one webgw process (opaque) */

/* Opens the store, binds every listener and starts the proxy workers. Returns NULL with err
 * set (one line) when any of it fails. */
struct node *node_new(const struct node_config *cfg, char *err, size_t errlen);
/* Runs the control loop until a drain completes (SIGTERM/SIGINT or the admin API). Returns
 * 0 on a clean stop. */
int node_run(struct node *node);
/* Remembers the command line so SIGHUP re-reads the same file and flags. */
void node_set_argv(struct node *node, int argc, char **argv);
void node_free(struct node *node);

/* `webgw identity`: this gateway's node key (DATA-DIR/node.key, made 0600 when missing, never
 * overwritten; data_dir made 0700 when missing) as the 64 hex digits --fleet-keys lists.
 * *created tells whether it was made now. 0, or -1 with err set. */
int node_identity(const char *data_dir, char hex[STATE_OWNER_HEX_LEN + 1], bool *created, char *err,
                  size_t errlen);

/* ---- the CLI --------------------------------------------------------------------------- */

/* Exit statuses of webgwctl, documented in its --help. */
enum node_ctl_exit {
    NODE_CTL_OK = 0,
    NODE_CTL_REFUSED = 1,     /* the server answered with an error, or a local failure */
    NODE_CTL_USAGE = 2,       /* bad command line */
    NODE_CTL_UNREACHABLE = 3, /* could not reach the API */
};

/* webgwctl's main: parses argv, runs the command, prints the result to stdout and one-line
 * errors to stderr. Returns an enum node_ctl_exit status. */
int node_ctl_main(int argc, char **argv);

#endif /* WEBGW_NODE_H */
