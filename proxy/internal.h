/*
 * internal.h - the proxy's private types, shared by the files of proxy/ only.
 *
 * Ownership in one picture:
 *
 *   struct proxy                      one per process; config, backend registry, IP table
 *     struct proxy_worker[N]          one thread + one libuv loop + one listening socket each
 *       struct proxy_session          one client connection (struct proxy_conn inside)
 *         struct proxy_upstream       the backend connection serving its current request
 *       struct proxy_wbackend         this worker's view of a backend: its idle pool
 *         -> struct proxy_backend     shared health and counters (atomics), in the registry
 *
 * A session and its upstream live on one worker; only struct proxy_backend, the IP table and
 * the counters are touched by several threads, through atomics or short striped locks that
 * the request path takes at most once.
 */
#ifndef WEBGW_PROXY_INTERNAL_H
#define WEBGW_PROXY_INTERNAL_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "proxy/conn.h"
#include "proxy/http1.h"
#include "proxy/proxy.h"
#include "proxy/tls_internal.h"

/* ---- intrusive list ------------------------------------------------------------------- */

struct proxy_link {
    struct proxy_link *prev, *next;
};

static inline void proxy_list_init(struct proxy_link *head)
{
    head->prev = head->next = head;
}

static inline void proxy_list_add(struct proxy_link *head, struct proxy_link *n)
{
    n->next = head->next;
    n->prev = head;
    head->next->prev = n;
    head->next = n;
}

static inline void proxy_list_del(struct proxy_link *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

static inline bool proxy_list_empty(const struct proxy_link *head)
{
    return head->next == head;
}

#define PROXY_CONTAINER(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* ---- deadlines: connection timeouts on one libuv timer per worker (deadline.c) ----------- */

#define PROXY_DEADLINE_LATER_MAX ((1u << 20) - 1) /* ms a deadline moves back without a relink */

struct proxy_deadline {
    struct proxy_link link; /* in a list of proxy_deadlines while armed */
    uint64_t due : 44;      /* loop time (ms) of its place in the list (sorted by it) */
    uint64_t later : 20;    /* it expires this many ms after `due` (a move back, not relinked) */
};

#define PROXY_DEADLINE_LISTS 8 /* distinct durations with a list of their own, less one */

struct proxy_deadline_list {
    uint32_t ms;            /* duration of the deadlines in it */
    struct proxy_link head; /* sorted by due, earliest first */
};

struct proxy_deadlines {
    uv_timer_t timer;   /* armed for the earliest deadline */
    uint64_t timer_due; /* loop time it is armed for; 0 = not armed */
    size_t armed;       /* deadlines in the lists (the loop-timers metric counts them) */
    unsigned nlists;    /* lists given a duration */
    bool closed;        /* proxy_deadlines_close() called */
    struct proxy_deadline_list lists[PROXY_DEADLINE_LISTS];
    void (*expired)(struct proxy_deadline *d); /* called with d already taken off its list */
};

/* Initializes the lists and their timer (unreferenced: connections keep the loop alive). */
void proxy_deadlines_init(uv_loop_t *loop, struct proxy_deadlines *ds,
                          void (*expired)(struct proxy_deadline *));
/* Closes the timer; deadlines set later never expire. */
void proxy_deadlines_close(struct proxy_deadlines *ds);
/* (Re)arms d to expire `ms` from the loop's now (at least 1 ms). d starts zeroed. */
void proxy_deadline_set(struct proxy_deadlines *ds, struct proxy_deadline *d, uint32_t ms);
/* Disarms d (no effect when it is not armed). */
void proxy_deadline_clear(struct proxy_deadlines *ds, struct proxy_deadline *d);

/* ---- backends: shared health (registry) and per-worker pools --------------------------- */

#define PROXY_BACKENDS_TRACKED_MAX 65536 /* registry entries (health kept per backend) */

struct proxy_backend {
    struct state_backend addr;     /* identity */
    struct sockaddr_storage sa;    /* for connect(2) */
    char text[64];                 /* "IP:PORT" for logs */
    bool own;                      /* one of the gateway's own addresses: never used */
    _Atomic uint64_t in_flight;    /* requests on it now, over workers (least-conn, p2c) */
    _Atomic uint64_t requests;     /* requests sent */
    _Atomic uint64_t failures;     /* passive failures */
    _Atomic uint32_t fails_in_row; /* passive failures since the last answer it gave */
    _Atomic uint64_t down_until;   /* monotonic ms; passive backoff ends then */
    _Atomic uint32_t backoff_ms;   /* current passive backoff; 0 = healthy */
    _Atomic int fleet;             /* enum proxy_verdict from gossip */
    _Atomic int probe;             /* enum proxy_verdict from our own probes */
    _Atomic uint32_t routes;       /* published routes listing it (written under reg_lock) */
    uint32_t users;                /* worker views and probe targets holding it (reg_lock) */
    struct state_hash_node node;   /* in proxy.reg (under proxy.reg_lock) */
};

struct proxy_worker;
struct proxy_wbackend {
    struct proxy_backend *be;    /* shared part */
    struct proxy_worker *w;      /* the worker whose view it is */
    struct proxy_link idle;      /* idle keep-alive upstreams, most recent first */
    unsigned idle_count;         /* length of idle */
    bool held;                   /* a session uses it (set by the eviction sweep's mark) */
    struct state_hash_node node; /* in proxy_worker.views */
};

/* ---- per-name counters ---------------------------------------------------------------- */

/* One name's counters on one worker. Only that worker writes them (relaxed atomics, no lock
 * prefix needed); readers sum over workers. */
struct proxy_stat {
    char name[STATE_FQDN_MAX + 1];
    _Atomic uint64_t requests, bytes_in, bytes_out, errors;
    _Atomic uint64_t status_class[4]; /* 2xx..5xx */
    _Atomic uint64_t latency[PROXY_LATENCY_BUCKETS];
    _Atomic uint64_t latency_sum_us;
    bool held;                   /* a session uses it (set by the eviction sweep's mark) */
    struct state_hash_node node; /* in proxy_stats_table.names */
};

struct proxy_stats_table {
    pthread_mutex_t lock;          /* taken by the worker to insert or evict, by readers to walk */
    struct state_hash_table names; /* proxy_stat by name (state's keyed table) */
    struct proxy_stat *last;       /* the last name asked for (worker only): a run of requests
                                      for one name costs a strcmp, not a SipHash and a lookup */
};

/* This worker's counters of `name` (created on first use). NULL when out of memory. */
struct proxy_worker;
void proxy_stats_table_init(struct proxy_stats_table *t);
struct proxy_stat *proxy_stats_get(struct proxy_stats_table *t, const char *name);
/* Drops the counters of names no route serves any more unless a session holds them; returns
 * how many of those had to stay. Worker thread only. */
size_t proxy_stats_evict(struct proxy_worker *w);
void proxy_stats_record(struct proxy_stat *st, int status, uint64_t bytes_in, uint64_t bytes_out,
                        uint64_t latency_us, bool cut);
void proxy_stats_table_free(struct proxy_stats_table *t);

/* ---- per-client-IP connection limit and token bucket ---------------------------------- */

struct proxy_ipslot {
    uint8_t key[STATE_IP_KEY_LEN]; /* state_ip_key: IPv4 address or IPv6 /64 */
    uint32_t conns;                /* open connections */
    double tokens;                 /* token bucket */
    uint64_t last_ms;              /* last refill, monotonic */
    struct proxy_ipslot *next;     /* bucket chain */
};

#define PROXY_IP_BUCKETS 4096
#define PROXY_IP_STRIPES 16
/* Entries per stripe: 65,536 clients in all. An entry lives while its client holds a connection
 * or its bucket is refilling, so reaching this takes that many addresses (or /64s) at once; a
 * new one beyond it is refused like a client over its limit. */
#define PROXY_IP_STRIPE_MAX 4096

struct proxy_iptable {
    pthread_mutex_t lock[PROXY_IP_STRIPES];         /* bucket b is under lock[b % STRIPES] */
    size_t entries[PROXY_IP_STRIPES];               /* entries per stripe, under its lock */
    struct proxy_ipslot *buckets[PROXY_IP_BUCKETS]; /* chains, by keyed SipHash */
    uint64_t hash_key[2];                           /* per-process random SipHash key */
    uint32_t max_conns, rate, burst;                /* the limits */
};

int proxy_ip_init(struct proxy_iptable *t, uint32_t max_conns, uint32_t rate, uint32_t burst);
void proxy_ip_destroy(struct proxy_iptable *t);
/* Entries held and the longest bucket chain (tests, metrics). */
void proxy_ip_stats(struct proxy_iptable *t, size_t *entries, size_t *longest);
/* Counts a new connection from `sa`; returns NULL when over the limit (or out of memory). */
struct proxy_ipslot *proxy_ip_acquire(struct proxy_iptable *t, const struct sockaddr *sa);
void proxy_ip_release(struct proxy_iptable *t, struct proxy_ipslot *slot);
/* Takes one request token; false means answer 429. */
bool proxy_ip_take(struct proxy_iptable *t, struct proxy_ipslot *slot, uint64_t now_ms);
/* Frees idle slots whose bucket is full again. */
void proxy_ip_sweep(struct proxy_iptable *t, uint64_t now_ms);

/* ---- the proxy and its workers --------------------------------------------------------- */

enum {
    PROXY_CMD_DRAIN = 1,
    PROXY_CMD_STOP = 2,
};

/* A drain (proxy.c): each listener first drops new SYNs, its queue is accepted, and it stays
 * open this long so handshakes already under way complete into the queue (taken again before
 * the close) instead of being reset by it. */
#define PROXY_DRAIN_LINGER_MS 200
/* A connection with no request yet when the drain starts, or taken from a listener's queue,
 * gets this long for its first byte (session.c). */
#define PROXY_DRAIN_FIRST_REQUEST_MS 1000

/* One listening socket of a worker. Every worker has its own SO_REUSEPORT socket per listen
 * address, so the kernel spreads new connections over the workers. */
struct proxy_wlisten {
    uv_tcp_t tcp;   /* first: the handle's data points at the worker */
    int fd;         /* until the loop owns it; -1 after (or never opened) */
    bool tls;       /* an --https address: the TLS layer (tls_layer.c) sits on top */
    bool listening; /* tcp is open in the loop and must be closed on drain */
};

struct proxy_worker {
    struct proxy *p;
    unsigned id;
    pthread_t thread;
    bool thread_started;
    uv_loop_t loop;
    bool loop_ready;
    struct proxy_wlisten listen[2 * PROXY_LISTEN_MAX]; /* the --http ones, then --https */
    unsigned nlisten;                                  /* entries in listen */
    uv_async_t wake;                                   /* commands from other threads */
    uv_timer_t linger;            /* a drain: when the listeners close (PROXY_DRAIN_LINGER_MS) */
    bool listeners_open;          /* counted in proxy.listening_workers */
    uv_timer_t sweep;             /* once a second: pool idle timeouts, IP table, loop counts */
    struct proxy_conn_loop conns; /* what this loop's connections share */
    struct proxy_deadlines deadlines;           /* the sessions' timeouts */
    struct sess_req *req_free;                  /* cached request states (session.c) */
    unsigned req_free_count;                    /* entries in req_free */
    _Atomic uint32_t loop_handles, loop_timers; /* active handles and timers at the last sweep */
    _Atomic uint32_t pool_idle; /* idle connections in its pools (only this worker writes) */
    _Atomic int cmd;            /* PROXY_CMD_* bits */
    bool draining;
    bool stopping;
    struct proxy_link sessions;    /* every client connection */
    struct state_hash_table views; /* this worker's proxy_wbackend by address */
    uint64_t seen_gen;             /* proxy.routes_gen at the last eviction sweep */
    bool evict_pending;            /* that sweep kept unrouted entries a session held */
    uint64_t rr;                   /* round-robin counter */
    uint64_t rng;                  /* xorshift state for p2c */
    struct proxy_stats_table stats;
    /* Where every session of this worker parses a head into (max_header_count entries): a
     * head's fields are read only while it is parsed and forwarded, within one callback, so
     * one array serves all and an idle session holds none (issue 14). */
    struct http1_header *head_fields;
};

struct proxy_probe_state; /* probe.c */

struct proxy {
    struct proxy_config cfg;
    struct http1_limits req_limits;
    struct http1_limits resp_limits;
    struct state_routes *routes;
    unsigned nworkers;
    struct proxy_worker *workers;
    uint16_t http_port;          /* bound port of the first --http address */
    uint16_t https_port;         /* of the first --https address; 0 when HTTPS is off */
    pthread_mutex_t reg_lock;    /* backend registry (registry.c) */
    struct state_hash_table reg; /* proxy_backend by address (state's keyed table) */
    _Atomic uint64_t routes_gen; /* bumped when a route is retired: workers sweep */
    struct proxy_iptable ips;
    _Atomic uint64_t connections;       /* client connections open */
    _Atomic uint32_t listening_workers; /* workers whose listeners are still open */
    _Atomic uint32_t drain_linger_ms;   /* set by proxy_drain before it tells the workers */
    struct proxy_probe_state *probe;    /* active health checks (NULL until proxy_probe_set) */
};

/* How far a connection's read buffer may grow: the header limit plus room for the start of a
 * body read with it, and never under 64 KiB. Client and backend connections share it because
 * both read a head bounded by max_header_bytes. */
static inline size_t proxy_conn_in_max(const struct proxy *p)
{
    size_t in_max = p->cfg.max_header_bytes + 4096;
    return in_max < 65536 ? 65536 : in_max;
}

/* registry.c: the shared entries, their references and the workers' views of them. */
int proxy_registry_init(struct proxy *p);
void proxy_registry_free(struct proxy *p);
/* The route observer (state_routes_observe): counts route references. */
void proxy_registry_route(void *ctx, const struct state_route *route, bool added);
/* Finds or creates the entry of a backend and holds it; NULL at the tracking bound or out of
 * memory. Every acquire is paired with a release. */
struct proxy_backend *proxy_backend_acquire(struct proxy *p, const struct state_backend *addr);
void proxy_backend_release(struct proxy *p, struct proxy_backend *be);
/* Worker thread, from its sweep: drops views and counters whose route is gone. */
void proxy_worker_evict(struct proxy_worker *w);
void proxy_worker_backends_init(struct proxy_worker *w);
void proxy_worker_backends_free(struct proxy_worker *w);
bool proxy_backend_usable(const struct proxy_backend *be, uint64_t now_ms);
void proxy_backend_failed(struct proxy *p, struct proxy_backend *be, uint64_t now_ms);
void proxy_backend_succeeded(struct proxy_backend *be);
void proxy_backend_format(const struct state_backend *addr, char out[64]);
bool proxy_addr_is_own(const struct proxy *p, const struct state_backend *addr);

/* This worker's view of a backend (created on first use). */
struct proxy_wbackend *proxy_worker_backend(struct proxy_worker *w, const struct state_backend *a);

/* Picks a backend of `route` for a request: usable, not own, not in `tried` (bit i = backend
 * i). Returns its index or -1. */
int proxy_balance_pick(struct proxy_worker *w, const struct state_route *route, uint32_t tried,
                       struct proxy_wbackend **out);

uint64_t proxy_mono_ms(void);
uint64_t proxy_mono_us(void);

/* session.c: client connections. The HTTP listener calls proxy_session_accept(). Another
 * listener (the HTTPS one of issue 5) builds sessions itself: proxy_session_new(), accept into
 * proxy_session_conn(s)->tcp, optionally install a layer (TLS) on that conn, then
 * proxy_session_begin(s, https) starts reading requests; proxy_session_abort() drops a session
 * that will not begin. */
struct proxy_session;
struct proxy_session *proxy_session_new(struct proxy_worker *w);
struct proxy_conn *proxy_session_conn(struct proxy_session *s);
void proxy_session_begin(struct proxy_session *s, bool https);
void proxy_session_abort(struct proxy_session *s);
void proxy_session_accept(struct proxy_worker *w, uv_stream_t *listener);
/* The HTTPS listener: a session with the TLS layer (tls_layer.c) under it. */
void proxy_session_accept_https(struct proxy_worker *w, uv_stream_t *listener);
/* A connection a draining worker took from its listener's queue itself (the fd is the
 * session's, or closed). */
void proxy_session_accept_fd(struct proxy_worker *w, int fd, bool https);
void proxy_session_drain(struct proxy_worker *w);
/* Sets `held` on the backend views and counters the worker's sessions point at. */
void proxy_session_mark_held(struct proxy_worker *w);
void proxy_session_close_all(struct proxy_worker *w);

/* upstream.c: backend connections and the per-worker keep-alive pool */
struct proxy_session;
struct proxy_upstream {
    struct proxy_conn c;       /* first member */
    struct proxy_wbackend *wb; /* backend */
    struct proxy_session *s;   /* the session it serves; NULL while idle in the pool */
    uv_connect_t creq;         /* pending connect */
    void (*connected_cb)(struct proxy_upstream *up, int status); /* connect result */
    struct proxy_link pool_link;                                 /* in wb->idle while idle */
    uint64_t idle_since_ms;                                      /* when it went idle */
    unsigned requests;                                           /* requests sent on it */
    bool connected;                                              /* connect completed */
    bool reused;           /* taken from the pool for the current request */
    uint64_t reused_after; /* ms it had been idle then */
};

/* Takes an idle connection to wb whose backend has not closed it (recv MSG_PEEK), or NULL. */
/* The most recently pooled live connection to wb idle less than max_idle_ms, or NULL. */
struct proxy_upstream *proxy_pool_take(struct proxy_worker *w, struct proxy_wbackend *wb,
                                       uint64_t max_idle_ms);
/* Returns a clean connection to the pool, or closes it when the pool is full or draining. */
void proxy_pool_put(struct proxy_worker *w, struct proxy_upstream *up);
/* Closes idle connections older than the idle timeout (all of them when `all`). */
void proxy_pool_sweep(struct proxy_worker *w, uint64_t now_ms, bool all);
/* Starts a connection to wb; `connected` runs with status 0 or a libuv error. */
struct proxy_upstream *proxy_upstream_connect(struct proxy_worker *w, struct proxy_wbackend *wb,
                                              void (*connected)(struct proxy_upstream *, int));
void proxy_upstream_close(struct proxy_upstream *up);

/* ---- sessions: one client connection each (session*.c) -------------------------------- */

/* Takes the request state of s from the worker's cache (or allocates it). Returns 0, or -1
 * when out of memory. */
struct proxy_session;
int sess_req_take(struct proxy_session *s);
/* Gives it back: the session is between requests (or closing). */
void sess_req_put(struct proxy_session *s);
/* A tunnel started: its request state keeps only what a tunnel uses (up to `path`). */
void sess_req_tunnel(struct proxy_session *s);
/* Frees the worker's cache. */
void proxy_worker_req_cache_free(struct proxy_worker *w);

#define SESS_REPLAY_MAX 65536 /* body bytes kept for replaying a request on a new connection */
#define SESS_REPLAY_IDLE 4096 /* replay buffer an idle keep-alive connection may keep */

enum sess_state { SS_HEAD, SS_CONNECT, SS_EXCHANGE, SS_TUNNEL, SS_CLOSING };

/* Why a direction's source is not read at the moment; derived by sess_update_reading(). */
enum sess_blocker {
    BLOCK_NONE = 0,  /* reading */
    BLOCK_SHUT,      /* the source ended (EOF): nothing more will come */
    BLOCK_DEST_FULL, /* the destination holds over write_queue_limit; until it drains to half */
    BLOCK_BUF_FULL,  /* the input buffer is at in_max and this state consumes none of it */
    BLOCK_STATE,     /* this state does not read the side (closing, connecting a passthrough) */
};

/* One direction of the session: the facts its reading depends on. */
struct sess_dir {
    bool shut;                 /* the source sent EOF */
    bool dest_full;            /* the destination's queue went over write_queue_limit */
    enum sess_blocker blocked; /* why the source is not read now (BLOCK_NONE: it is) */
};

/* The current request of a session and, after a 101 or for a TLS passthrough, its tunnel:
 * taken from the worker's cache when the first byte of a request arrives (or the ClientHello of
 * a passthrough is read) and given back once the response is done, so a keep-alive connection
 * between requests holds none of it (as nginx frees its request and keeps a small connection,
 * ngx_http_set_keepalive). A tunnel needs none of what follows `host` and `path` (parsers,
 * route, failure text): its state is cut to that prefix when the tunnel starts. */
struct sess_req {
    /* kept with the object in the worker's cache (session.c) */
    struct sess_req *next_free; /* in the worker's cache while unused */
    char *replay;               /* body bytes as sent to the backend, for a retry */
    size_t replay_cap;          /* bytes allocated for replay (at most SESS_REPLAY_IDLE kept) */
    char *up_head;              /* request head for the backend, kept for a retry */
    size_t up_head_cap;         /* bytes allocated for up_head */
    /* cleared when taken: every field from `stat` up to `host` starts at zero */
    struct proxy_stat *stat;      /* counters of route.name */
    struct proxy_upstream *up;    /* backend connection */
    struct proxy_wbackend *wb;    /* its backend */
    uint32_t tried;               /* backends tried (bit = index in route) */
    unsigned attempts;            /* backends tried so far */
    size_t replay_len;            /* bytes in replay */
    size_t up_head_len;           /* bytes in up_head */
    uint64_t t_start_us;          /* request head parsed */
    uint64_t ex_in;               /* client bytes of this exchange */
    uint64_t out_mark;            /* c.bytes_written at the start of the exchange */
    uint64_t resp_mark;           /* c.bytes_written before the final response head */
    int status;                   /* status answered */
    int fail_status;              /* 502 or 504 if the last backend attempt failed */
    struct sess_dir response_dir; /* backend -> client; reset with each backend connection */
    uint8_t method;
    bool replay_lost;    /* more body was sent than replay holds: no retry */
    bool fresh_retry;    /* this request was already sent again on a new connection */
    bool client10;       /* client spoke HTTP/1.0 */
    bool head_only;      /* HEAD request: the response has no body */
    bool upgrade_wanted; /* request asked for an Upgrade */
    bool req_done;       /* whole request read and forwarded */
    bool body_sent;      /* some request body bytes went to the backend */
    bool resp_head_done; /* backend's final response head parsed */
    bool resp_started;   /* bytes of the response went to the client */
    bool chunked_out;    /* response is re-chunked to the client */
    bool client_keep;    /* connection stays open after this response */
    bool logged;         /* this exchange was counted */
    bool in_exchange;    /* an exchange is open (counted when it ends) */
    bool cut_to_tunnel;  /* the fields after `path` are gone (sess_req_tunnel) */
    /* emptied when taken */
    char host[256]; /* normalized Host, for routing and the log */
    char path[256]; /* request target, truncated, for the log */
    /* the request's own, written before they are read; a tunnel drops them */
    struct http1_parser req;  /* client side */
    struct http1_parser resp; /* backend side, reset per exchange */
    struct state_route route; /* copied out of the RCU table */
    char fail_why[320];       /* why the last backend attempt failed (with fail_status) */
};

/* One client connection. Between requests (and before the first) this is all it holds: the
 * socket, this record and the deadline in the worker's lists. */
struct proxy_session {
    struct proxy_conn c;              /* the client connection; first member */
    struct proxy_worker *w;           /* owning worker */
    struct proxy_link link;           /* in w->sessions */
    struct proxy_ipslot *ip;          /* per-IP accounting */
    struct proxy_deadline deadline;   /* the one timeout of the current state */
    struct sess_req *r;               /* the current request; NULL between requests */
    struct sess_dir request_dir;      /* client -> backend (request bodies, tunnel bytes) */
    unsigned requests;                /* requests started on this connection */
    uint8_t st;                       /* enum sess_state */
    bool trusted;                     /* peer is a trusted proxy */
    bool https;                       /* arrived over TLS: X-Forwarded-Proto https */
    bool passthrough;                 /* HTTPS to a tls_passthrough route: raw bytes through */
    bool head_timer;                  /* header timeout armed for the current head */
    char client_ip[INET6_ADDRSTRLEN]; /* for the log and X-Forwarded-For */
};
static inline struct proxy *sess_proxy(const struct proxy_session *s)
{
    return s->w->p;
}

/* session.c: the client side (requests, local answers, timers, closing) */
void sess_timer_set(struct proxy_session *s, uint32_t ms);
/* The expiry callback of the worker's deadlines: a session's timeout. */
void proxy_session_expired(struct proxy_deadline *d);
void sess_log(struct proxy_session *s, bool cut);
void sess_close(struct proxy_session *s, bool cut);
void sess_finish(struct proxy_session *s);
void sess_next(struct proxy_session *s);
void sess_local_reply(struct proxy_session *s, int status, const char *msg, bool keep,
                      const char *extra);
void sess_fail(struct proxy_session *s, int status, const char *why, bool can_retry);
bool sess_own_host(const struct proxy *p, const char *host);
void sess_process(struct proxy_session *s);

/* session_flow.c: per-direction reading (the flow-control note at the top of session.c) */
void sess_update_reading(struct proxy_session *s);
void sess_dir_note_queue(struct proxy_session *s, struct sess_dir *d, struct proxy_conn *to);
bool sess_dir_drained(struct proxy_session *s, struct sess_dir *d, struct proxy_conn *to);

/* session_upstream.c: the backend side (connect, retry and replay, request out, response in) */
void sess_connect_backend(struct proxy_session *s);
void sess_up_detach(struct proxy_session *s, bool reuse);
int sess_up_send_body(struct proxy_session *s, const char *data, size_t len);
void sess_up_read(struct proxy_conn *c, int status);

/* session_tunnel.c: bytes both ways after a 101, and TLS passthrough */
void sess_tunnel_pump(struct proxy_session *s, struct proxy_conn *from, struct proxy_conn *to);
void sess_tunnel_eof(struct proxy_session *s, bool from_client);
void sess_start_tunnel(struct proxy_session *s);
void sess_start_passthrough(struct proxy_session *s);
enum tls_route sess_tls_route(struct proxy_conn *c, const struct tls_client_hello *hello,
                              void *ctx);
void sess_begin_passthrough(struct proxy_session *s);

/* probe.c */
void proxy_probe_free(struct proxy *p);

#endif /* WEBGW_PROXY_INTERNAL_H */
