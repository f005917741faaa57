/*
 * proxy.h - the HTTP/1.1 reverse proxy's public interface.
 *
 * The proxy serves the traffic of every name in the route table of state/. It runs N worker
 * threads, each with its own libuv loop and its own SO_REUSEPORT listening socket, so the
 * kernel spreads connections over workers and no request ever crosses threads. Workers read
 * routes through state_routes_lookup (RCU, no lock on the request path).
 *
 * What this header offers the node (node/):
 *   config     struct proxy_config, filled from defaults (proxy_config_init) then flags/YAML
 *   lifecycle  proxy_start -> proxy_drain (stop accepting, finish in-flight) -> proxy_stop
 *   metrics    per-name counters (proxy_stats_each) and per-backend health (proxy_backends_each)
 *   health     fleet verdicts in (proxy_health_set_fleet), active probes out (proxy_probe_set
 *              with a result callback): the node carries both through gossip
 *
 * Conventions: functions that can fail return 0 (or a valid pointer) on success and a
 * negative PROXY_E* code (or NULL) on failure, writing a one-line human message without
 * trailing newline into the caller's `err` buffer when one is given. Every function here is
 * safe to call from any thread unless its comment says otherwise.
 */
#ifndef WEBGW_PROXY_H
#define WEBGW_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "state/state.h"

struct tls_store;       /* proxy/tls_internal.h: certificates served on the HTTPS port */
struct acme_challenges; /* acme/acme.h: HTTP-01 answers of this gateway */

/* ---- limits of the configuration itself ------------------------------------------------- */

#define PROXY_ERR_MAX 256        /* size of an error message buffer */
#define PROXY_WORKERS_MAX 64     /* worker threads */
#define PROXY_LISTEN_MAX 8       /* listening addresses per scheme (--http, --https) */
#define PROXY_TRUSTED_MAX 32     /* trusted proxy networks */
#define PROXY_OWN_ADDRS_MAX 128  /* own addresses (loop prevention): interfaces x listeners */
#define PROXY_OWN_HOSTS_MAX 16   /* own host names (loop prevention) */
#define PROXY_LATENCY_BUCKETS 12 /* latency histogram buckets, see proxy_latency_bounds_ms */
#define PROXY_PROBE_PATH_MAX 256 /* active health check path */
#define PROXY_VIA_NAME_MAX 40    /* Via pseudonym of the fleet, with its NUL */

enum proxy_error {
    PROXY_OK = 0,
    PROXY_EINVAL = -1,   /* bad configuration or argument */
    PROXY_ESYS = -2,     /* a system call failed (bind, socket, thread): message says which */
    PROXY_ENOMEM = -3,   /* allocation failure */
    PROXY_ETIMEOUT = -4, /* drain timed out: connections were still open and were cut */
};

/* ---- configuration --------------------------------------------------------------------- */

/* Load-balancing policy over the healthy backends of one name. */
enum proxy_balance {
    PROXY_BALANCE_ROUND_ROBIN = 0, /* default: rotate over healthy backends */
    PROXY_BALANCE_LEAST_CONN = 1,  /* fewest in-flight requests (counted across workers) */
    PROXY_BALANCE_P2C = 2,         /* power of two random choices by in-flight requests */
};

/* A network, for trusted proxies: family 4 or 6, address in network order, prefix length. */
struct proxy_cidr {
    uint8_t family;   /* 4 or 6 */
    uint8_t addr[16]; /* IPv4 in the first 4 bytes */
    uint8_t prefix;   /* 0..32 or 0..128 */
};

/* One listening address. An IPv6 wildcard ([::]) takes IPv4 clients too (IPV6_V6ONLY off)
 * unless v6only is set; when the host has no IPv6 at all, [::] falls back to 0.0.0.0. */
struct proxy_listen {
    struct sockaddr_storage addr; /* IP and port; port 0 picks one (see proxy_http_port) */
    bool v6only;                  /* IPv6 socket refuses IPv4-mapped clients */
};

/* One answered request, for the access log. The strings are valid during the call only. */
struct proxy_access_entry {
    unsigned worker;      /* index of the calling worker, 0..workers-1 */
    const char *client;   /* client IP */
    const char *host;     /* normalized Host; "" when there was none */
    const char *name;     /* route key (name or fqdn); "" when nothing was routed */
    const char *method;   /* "GET", ... */
    const char *path;     /* request target as sent, cut at 255 bytes; may be "" */
    const char *backend;  /* "IP:PORT" of the last backend tried; "" when none */
    int status;           /* status answered; 0 when none was */
    uint64_t bytes_in;    /* bytes received from the client (head and body) */
    uint64_t bytes_out;   /* bytes sent to the client (head and body) */
    uint64_t duration_us; /* from the request head parsed to the answer's end */
    bool cut;             /* the exchange ended early (a peer failed or timed out) */
};

/* Receives each answered request, on the worker thread that answered it. It must not block:
 * a slow callback stalls every connection of that worker. */
typedef void (*proxy_access_fn)(void *ctx, const struct proxy_access_entry *entry);

struct proxy_config {
    /* listeners */
    struct proxy_listen http[PROXY_LISTEN_MAX];  /* --http, repeatable; at least one */
    size_t http_count;                           /* entries in http */
    struct proxy_listen https[PROXY_LISTEN_MAX]; /* --https, repeatable (TLS layer) */
    size_t https_count;                          /* entries in https; 0 = no HTTPS */
    struct tls_store *tls;                       /* certificates by SNI; required with https_count;
                                                    owned by the caller, must outlive the proxy */
    struct acme_challenges *acme;                /* answers GET /.well-known/acme-challenge/TOKEN on
                                                    the HTTP port; NULL = none; outlives the proxy */
    bool https_redirect;                         /* HTTP requests for served names get a 308 to
                                                    https:// (ACME challenge paths excepted) */
    uint16_t https_redirect_port;                /* port put in that Location; 0 or 443: none */
    unsigned workers;                            /* worker threads; 0 = one per online CPU */
    int listen_backlog;                          /* listen(2) backlog */

    /* naming */
    char domain[STATE_FQDN_MAX + 1]; /* gateway domain: NAME.DOMAIN is served */

    /* request limits: over a line/header limit answers 431, over the body limit 413 */
    uint32_t max_request_line; /* request line bytes (method, target, version) */
    uint32_t max_header_count; /* header fields per request or response */
    uint32_t max_header_bytes; /* whole head (request line + fields) bytes */
    uint64_t max_body_bytes;   /* request body bytes; 0 = no limit */

    /* timeouts in milliseconds */
    uint32_t header_timeout_ms;      /* whole request head must arrive within (slowloris) */
    uint32_t keepalive_timeout_ms;   /* client idle between requests */
    uint32_t connect_timeout_ms;     /* backend TCP connect */
    uint32_t response_timeout_ms;    /* backend silent while a response is awaited or read */
    uint32_t send_timeout_ms;        /* a peer not taking our bytes (client or backend) */
    uint32_t tunnel_idle_timeout_ms; /* Upgrade/WebSocket tunnel idle in both directions */

    /* buffering and back-pressure */
    uint32_t write_queue_limit; /* bytes queued to one peer before reading the other stops */

    /* backend keep-alive pool, per worker per backend */
    uint32_t pool_max_idle;        /* idle connections kept */
    uint32_t pool_idle_timeout_ms; /* idle connection closed after */
    uint32_t pool_max_requests;    /* requests per backend connection before it is retired */
    uint32_t pool_check_after_ms;  /* idle longer than this: recv(MSG_PEEK) before reuse, to
                                      see a close the loop has not processed yet; 0 = always */
    uint32_t pool_unsafe_idle_ms;  /* a request that could not be sent again (POST, PATCH, a
                                      body past what replay keeps) reuses only a connection idle
                                      less than this, else opens a new one; 0 = never reuses */

    /* load balancing, retries and passive health */
    enum proxy_balance balance;   /* policy */
    uint32_t retries;             /* extra backends tried for one request (see issue 4) */
    uint32_t down_after_failures; /* consecutive passive failures that take a backend out */
    uint32_t down_backoff_ms;     /* first pause once out; doubles with each further failure */
    uint32_t down_backoff_max_ms; /* cap of that pause */

    /* per client IP */
    uint32_t max_conns_per_ip; /* concurrent connections from one IP; 0 = no limit */
    uint32_t rate_per_ip;      /* requests per second (token bucket refill); 0 = no limit */
    uint32_t rate_burst;       /* token bucket size; 0 = same as rate_per_ip */

    /* X-Forwarded-*: copies sent by these peers are kept and extended, others dropped */
    struct proxy_cidr trusted[PROXY_TRUSTED_MAX];
    size_t trusted_count;

    /* loop prevention: never proxy to these (port 0 = every port of the IP), never serve
     * these host names (the API host, the bare domain). The listen addresses are added. */
    struct state_backend own_addrs[PROXY_OWN_ADDRS_MAX];
    size_t own_addr_count;
    char own_hosts[PROXY_OWN_HOSTS_MAX][STATE_FQDN_MAX + 1];
    size_t own_host_count;

    /* request loops (RFC 9110 7.6.3): every forwarded request gets "Via: 1.1 <via_name>"
     * after the Via values it came with, and "Webgw-Hops: N+1" for the N it came with; a
     * request whose Via already names via_name, or that came with N >= max_hops, is answered
     * 508 Loop Detected instead */
    char via_name[PROXY_VIA_NAME_MAX]; /* a token; "" = no Via added nor checked */
    uint32_t max_hops;                 /* gateways a request may pass, 1..255 */

    /* access log: called once per answered request; NULL = none */
    proxy_access_fn access_log;
    void *access_log_ctx;
};

/* Fills `cfg` with the embedded defaults: http [::]:8080 (both families), no https,
 * domain "localhost", one worker per CPU, 8 KiB request line, 100 fields, 32 KiB head, 1 GiB
 * body, header 10 s, keep-alive 60 s, connect 3 s, response 60 s, send 60 s, tunnel 300 s,
 * 256 KiB write queue, pool 256 idle for 60 s / 1000 requests (peek after 100 ms idle),
 * round-robin, 2 retries, out after 3 failures in a row, backoff 1 s..30 s, 256 connections per IP,
 * no rate limit, no Via pseudonym, 8 hops. */
void proxy_config_init(struct proxy_config *cfg);

/* Checks ranges and consistency. Returns 0 or PROXY_EINVAL with the first problem in err. */
int proxy_config_validate(const struct proxy_config *cfg, char *err, size_t errlen);

/* Parses "IP:PORT", "[IPv6]:PORT" (IP literals only) into `out`. Returns 0 or PROXY_EINVAL. */
int proxy_parse_addr(const char *text, struct sockaddr_storage *out, char *err, size_t errlen);

/* Parses "IP/PREFIX" or a bare IP (full prefix). Returns 0 or PROXY_EINVAL. */
int proxy_parse_cidr(const char *text, struct proxy_cidr *out, char *err, size_t errlen);

/* Parses "round-robin", "least-conn" or "p2c". Returns 0 or PROXY_EINVAL. */
int proxy_parse_balance(const char *text, enum proxy_balance *out, char *err, size_t errlen);
const char *proxy_balance_name(enum proxy_balance b);

/* ---- lifecycle ------------------------------------------------------------------------- */

struct proxy; /* a running proxy (opaque) */

/* Validates and copies `cfg`, binds one SO_REUSEPORT listening socket per worker (so a bind
 * failure is reported here, synchronously), and starts the workers. SIGPIPE is set to ignored
 * if it still has its default disposition (a client resetting must not kill the process). Each
 * worker registers itself as an RCU reader of `routes`, which must outlive the proxy. Returns NULL
 * with `err` set on failure, having released everything. */
struct proxy *proxy_start(const struct proxy_config *cfg, struct state_routes *routes, char *err,
                          size_t errlen);

/* The bound port of the first HTTP listener (useful when the config asked for port 0). */
uint16_t proxy_http_port(const struct proxy *p);

/* The bound port of the first HTTPS listener, 0 when HTTPS is not enabled. */
uint16_t proxy_https_port(const struct proxy *p);

/* Graceful drain: stops accepting without resetting anyone and lets in-flight requests finish,
 * waiting up to timeout_ms. Each listener drops new SYNs (those clients are refused once it
 * closes), its kernel queue is accepted, and it closes 200 ms later after taking what completed
 * meanwhile. Connections taken so, and those that sent nothing yet, get a second for their first
 * request; busy ones and any request arriving answer with "Connection: close"; idle kept-alive
 * connections are closed. Returns 0 when every connection ended in time, PROXY_ETIMEOUT when
 * some were still open (they stay open until proxy_stop). Call from one thread, at most once,
 * before proxy_stop. */
int proxy_drain(struct proxy *p, uint32_t timeout_ms);

/* Stops the workers (cutting any connection left), joins them and frees everything. NULL is a
 * no-op. Must not be called from a proxy callback. */
void proxy_stop(struct proxy *p);

/* Number of client connections open right now, over all workers. */
uint64_t proxy_connections(const struct proxy *p);

/* Idle keep-alive connections to backends in the workers' pools right now, summed over the
 * workers. Each is an open socket: with the client connections, what most of the process's
 * descriptors are. It rises with the concurrency of the last pool_idle_timeout_ms and falls
 * back as those connections time out (or their backend closes them). */
uint64_t proxy_backend_pool_idle(const struct proxy *p);

/* Read buffers held right now by the proxy's connections (client, backend, tunnel), over
 * every proxy of the process. A connection holds one only while it has bytes read and not
 * consumed: idle keep-alive connections hold none. */
uint64_t proxy_read_buffers(void);

/* Active libuv handles and, of them, active timers on one loop (uv_walk: call on the loop's
 * own thread). A count that grows while the traffic does not is a leak (the soak checks it). */
struct proxy_loop_counts {
    uint32_t handles;
    uint32_t timers;
};
struct uv_loop_s;
void proxy_loop_count(struct uv_loop_s *loop, struct proxy_loop_counts *out);
/* The same summed over the workers' loops, as each worker counted it at its last once-a-second
 * sweep. */
void proxy_worker_loop_counts(const struct proxy *p, struct proxy_loop_counts *out);
/* The same for the probe thread's loop, as it counted at its last once-a-second count (zeros
 * before the first proxy_probe_set). */
void proxy_probe_loop_counts(const struct proxy *p, struct proxy_loop_counts *out);

/* ---- per-name counters (for /metrics; bytes per name is what an operator bills by) ------ */

/* Upper bounds of the latency histogram buckets in milliseconds; the last bucket is +Inf. */
extern const uint32_t proxy_latency_bounds_ms[PROXY_LATENCY_BUCKETS];

struct proxy_name_stats {
    char name[STATE_FQDN_MAX + 1]; /* route key (name or fqdn); "" = requests with no route */
    uint64_t requests;             /* requests answered (any status) */
    uint64_t bytes_in;             /* bytes received from clients (heads and bodies) */
    uint64_t bytes_out;            /* bytes sent to clients (heads and bodies) */
    uint64_t errors;               /* answers with status >= 500, and cut responses */
    uint64_t status_2xx, status_3xx, status_4xx, status_5xx; /* by class */
    uint64_t latency_count[PROXY_LATENCY_BUCKETS]; /* requests per bucket (not cumulative) */
    uint64_t latency_sum_us;                       /* total latency, microseconds */
};

/* Calls fn once per name seen since start, with counters summed over workers, in no given
 * order; stops early when fn returns non-zero and returns that value. fn runs in the caller's
 * thread and must not call back into the proxy. */
typedef int (*proxy_stats_visit_fn)(const struct proxy_name_stats *stats, void *ctx);
int proxy_stats_each(struct proxy *p, proxy_stats_visit_fn fn, void *ctx);

/* ---- backend health -------------------------------------------------------------------- */

enum proxy_verdict {
    PROXY_VERDICT_UNKNOWN = 0, /* nobody reported */
    PROXY_VERDICT_UP = 1,
    PROXY_VERDICT_DOWN = 2,
};

struct proxy_backend_health {
    struct state_backend addr; /* the backend */
    bool up;                   /* what load balancing uses: fleet not down and not in backoff */
    bool passive_down;         /* this node saw it fail and is backing off */
    uint64_t down_until_ms;    /* end of that backoff (wall clock ms), 0 if none */
    enum proxy_verdict fleet;  /* verdict fed by proxy_health_set_fleet */
    enum proxy_verdict probe;  /* this node's own active probe verdict */
    uint64_t in_flight;        /* requests on it right now, over workers */
    uint64_t requests;         /* requests sent to it */
    uint64_t failures;         /* connect failures, resets and timeouts */
};

/* Entries in the backend registry: the backends routes list, plus those probed or in use
 * while their route goes away. Unreferenced entries are freed, so this returns to the
 * routes' count when names are released. */
size_t proxy_backend_entries(struct proxy *p);

/* Calls fn for every backend in the registry (see proxy_backend_entries), as above. */
typedef int (*proxy_backend_visit_fn)(const struct proxy_backend_health *h, void *ctx);
int proxy_backends_each(struct proxy *p, proxy_backend_visit_fn fn, void *ctx);

/* Feeds the fleet's verdict on a backend (from gossip). It is kept only for a backend in the
 * registry (a route lists it, or it is probed or in use): a verdict on any other address is
 * ignored, so the caller feeds the current verdict again when a route adds a backend. A DOWN
 * verdict takes the backend out
 * of load balancing on this node; UP leaves the decision to the passive view, and a change to
 * UP from anything else ends any passive backoff (the probes saw it recover); UNKNOWN (no
 * fresh report anywhere) falls back to this node's own probe verdict when it probes the
 * backend, so a backend probed down here never turns usable because reports expired. */
void proxy_health_set_fleet(struct proxy *p, const struct state_backend *be,
                            enum proxy_verdict verdict);

/* Active health probing of the backends gossip assigns to this node. */
enum proxy_probe_kind {
    PROXY_PROBE_TCP = 0,  /* a TCP connect succeeds */
    PROXY_PROBE_HTTP = 1, /* GET path answers 2xx or 3xx */
};

struct proxy_probe_config {
    enum proxy_probe_kind kind;
    char path[PROXY_PROBE_PATH_MAX]; /* HTTP: request path, "/" by default */
    char host[STATE_FQDN_MAX + 1];   /* HTTP: Host header sent ("" = the backend address) */
    uint32_t interval_ms;            /* between probes of one backend */
    uint32_t timeout_ms;             /* one probe's deadline */
    uint32_t rise;                   /* consecutive successes to turn UP */
    uint32_t fall;                   /* consecutive failures to turn DOWN */
};

void proxy_probe_config_init(struct proxy_probe_config *pc); /* TCP, "/", 2 s, 1 s, 2, 3 */

/* Called on the proxy's probe thread after every probe of a backend with its current verdict
 * (UP or DOWN), so the caller can keep the verdict fresh wherever it shares it; `changed` is
 * true when this probe changed it (and for its first verdict). `detail` says why, e.g.
 * "connect: connection refused". */
typedef void (*proxy_probe_result_fn)(void *ctx, const struct state_backend *be,
                                      enum proxy_verdict verdict, bool changed, const char *detail);

/* Replaces the set of backends this node probes (an empty set stops probing). Backends kept
 * from the previous set keep their rise/fall counters. Returns 0, or PROXY_EINVAL/ENOMEM. */
int proxy_probe_set(struct proxy *p, const struct state_backend *backends, size_t count,
                    const struct proxy_probe_config *pc, proxy_probe_result_fn fn, void *ctx,
                    char *err, size_t errlen);

#endif /* WEBGW_PROXY_H */
