/*
 * node_internal.h - what the daemon's files share (private to node/): the node struct, the
 * record flow, the event ring the dashboard shows, the JSON views of the API.
 */
#ifndef WEBGW_NODE_INTERNAL_H
#define WEBGW_NODE_INTERNAL_H

#include <jansson.h>
#include <time.h>
#include <uv.h>

#include "gossip/gossip.h"
#include "node/httpd.h"
#include "node/node.h"
#include "node/traffic_internal.h"
#include "proxy/proxy.h"

#define NODE_EVENTS_MAX 200                  /* recent events kept for the dashboard */
#define NODE_OWN_ADDRS_MAX 128               /* own addresses a backend may not use */
#define NODE_ID_HEX_LEN 32                   /* node id: 16 random bytes, hex */
#define NODE_ROSTER_MAX STATE_FLEET_KEYS_MAX /* witness keys: listed, or announced ever */

struct node_event {
    uint64_t ts_ms; /* when */
    char kind[16];  /* "record", "member", "node", ... */
    char text[240]; /* one line for people */
};

/* Outcome counters of the record flow, for /metrics. */
struct node_record_stats {
    uint64_t accepted;               /* new information, stored */
    uint64_t duplicate;              /* already known */
    uint64_t invalid;                /* 400 */
    uint64_t forbidden;              /* 403 */
    uint64_t conflict;               /* 409 */
    uint64_t too_big;                /* 413 */
    uint64_t over_owner_limit;       /* 403: the owner has --max-names-per-owner names */
    uint64_t over_fleet_limit;       /* 429: the fleet has --max-records records */
    uint64_t failed;                 /* 500: disk or memory */
    uint64_t from_gossip_accepted;   /* gossip records that changed our state */
    uint64_t from_gossip_dropped;    /* gossip records refused (bad signature, invalid) */
    uint64_t from_gossip_stale;      /* gossip records older than ours, dropped unverified */
    uint64_t from_gossip_over_limit; /* gossip records past a growth limit, dropped unverified */
    uint64_t over_limit_logged_ms;   /* when a gossip refusal was last logged (one a minute) */
    uint64_t compactions;            /* snapshots written */
    uint64_t witnesses_signed;       /* claims this node countersigned */
    uint64_t witnesses_kept;         /* other members' witnesses that were new */
    uint64_t witnesses_refused;      /* unknown key, future time or bad signature */
    uint64_t witnesses_unadmitted;   /* from a key --fleet-keys does not list */
};

struct node_probe_result; /* a probe verdict crossing from the probe thread (node_proxy.c) */
struct node_metrics;      /* a /metrics text being built (metrics.c) */

struct node {
    struct node_config cfg; /* current configuration */
    int argc;               /* saved command line, for SIGHUP reloads */
    char **argv;
    uv_loop_t loop;                         /* the control loop */
    uv_signal_t sig_term, sig_int, sig_hup; /* signal watchers */
    uv_timer_t housekeeping;                /* compaction and tombstone collection */
    uv_timer_t store_timer;                 /* group commit of staged store entries */
    struct node_httpd *api;                 /* API server */
    struct state_names *names;              /* merged records */
    struct state_store *store;              /* durable log */
    struct state_routes *routes;            /* what proxy workers read */
    struct gossip *gossip;                  /* membership and dissemination */
    struct proxy *proxy;                    /* the workers */
    struct access_log *access;              /* their access lines (access_log.c), or NULL */
    char advertise_text[64];                /* gossip address peers use, as printed */
    uv_timer_t probe_timer;                 /* debounces probe assignment updates */
    uv_async_t probe_async;                 /* probe thread -> loop */
    uv_mutex_t probe_mutex;                 /* guards probe_queue and probe_count */
    bool probe_mutex_ready;                 /* probe_mutex initialized */
    struct node_probe_result *probe_queue;  /* results waiting for the loop, oldest first */
    size_t probe_count;                     /* entries in probe_queue */
    struct node_probe_result *probe_batch;  /* the loop's copy while it publishes (swapped) */
    uv_timer_t leave_timer;                 /* lets the leave notice spread before gossip closes */
    bool leave_done;                        /* leave notice had its time */
    bool proxy_drained;                     /* in-flight requests finished (or timed out) */
    bool stopped;                           /* the drain completed */
    struct tls_store *tls;                  /* certificates of the HTTPS listener */
    struct node_acme *acme;                 /* automatic certificates (node_acme.c) or NULL */
    struct node_fqdn *fqdn;                 /* fqdn DNS checks (node_fqdn.c) or NULL */
    struct dns_zone *zone;                  /* the fleet's DNS zone (node_zone.c) or NULL */
    struct dns_server *dns;                 /* its listeners (--dns-listen) or NULL */
    time_t tls_not_after[NODE_TLS_PAIRS_MAX]; /* operator certificates' expiry (0: none) */
    uint8_t ticket_secret[32];                /* cluster key: ticket keys derive from it */
    uv_timer_t ticket_timer;                  /* moves ticket keys to the next epoch */
    bool left;                                /* the leave notice was sent */
    struct state_backend own_addrs[NODE_OWN_ADDRS_MAX]; /* loop prevention */
    size_t own_addr_count;                              /* entries in own_addrs */
    struct state_hash_table longkeys;          /* item keys of long names: "#HASH" -> name */
    struct state_backend *fleet_addrs;         /* every member's advertised addresses, sorted */
    size_t fleet_addr_count;                   /* entries in fleet_addrs */
    char admin_token[256];                     /* "" when the admin API is off */
    char id[NODE_ID_HEX_LEN + 1];              /* stable node id (data-dir/node-id) */
    uint64_t started_ms;                       /* wall clock at start */
    bool draining;                             /* a stop is under way */
    int exit_code;                             /* node_run's result */
    struct node_event events[NODE_EVENTS_MAX]; /* ring of recent events */
    size_t events_next;                        /* next slot to write */
    size_t events_count;                       /* filled slots */
    struct node_record_stats rec_stats;        /* record flow counters */
    struct state_key *identity;                /* witness key (data-dir/node.key) */
    uint8_t witness_key[STATE_OWNER_LEN];      /* its public half */
    uint8_t (*roster)[STATE_OWNER_LEN];        /* witness keys: --fleet-keys', or every
                                                  key announced ever (open) */
    size_t roster_count;                       /* entries in roster */
    struct state_fleet_keys *fleet;            /* the --fleet-keys file as loaded (labels);
                                                  NULL when the roster is open */
    bool gossip_lone;                          /* no cluster key: gossip without a transport
                                                  (node_gossip.c) */
    uv_timer_t lone_timer;                     /* drives that lone gossip instance */
    struct node_traffic *traffic;              /* history and fleet summaries
                                                  (node_traffic.c) */
};

/* Result of submitting one record through the API: an HTTP status and a message. */
struct node_submit_result {
    int status;                                        /* 202, 400, 403, 409, 413 or 500 */
    bool changed;                                      /* the record was new information */
    char message[STATE_ERR_MAX + STATE_FQDN_MAX + 64]; /* why, or a summary for 202 */
};

/* The API path for a record: size, decode, validate, verify, admit, merge, fsync, then the
 * route table and dissemination. `result` tells what to answer. */
void node_record_submit(struct node *node, const uint8_t *buf, size_t len,
                        struct node_submit_result *result);
/* The gossip path for a bundle (a record and its witnesses): the same minus admission and
 * minus the node-local address policy (so every node merges the same set), then the witnesses
 * through node_witness_admit and our own. When anything changed, this node broadcasts its own
 * fuller bundle and returns 0 (gossip must not re-queue the received copy over it); returns
 * 0 when nothing changed, <0 when refused. */
int node_record_receive(struct node *node, const uint8_t *buf, size_t len, const char *item_key);
/* Witnesses (node_witness.c). node_witness_start loads or makes the identity and the roster
 * (--fleet-keys, or the open one) and turns witnessing on; node_witness_reload reads
 * --fleet-keys again (SIGHUP; a bad file keeps the roster); node_witness_member adds a
 * member's announced key to an open roster (named member_name in logs);
 * node_witness_record countersigns owner's current record on name unless we already attested
 * its claim (1 new, 0 nothing to do, <0 failure); node_witness_admit applies the policy
 * (known key, not in the future, signature) and keeps a received witness (1 new, 0 known,
 * <0 refused with err set); node_witness_all attests every stored record (at start). */
int node_witness_start(struct node *node, char *err, size_t errlen);
void node_witness_free(struct node *node);
void node_witness_reload(struct node *node, const char *fleet_keys);
void node_witness_member(struct node *node, const char *member_name,
                         const uint8_t key[GOSSIP_WITNESS_KEY_LEN]);
/* "roster" (--fleet-keys) or "open". */
const char *node_witness_fleet_mode(const struct node *node);
unsigned node_witness_need(const struct node *node);
int node_witness_record(struct node *node, const char *name, const uint8_t owner[STATE_OWNER_LEN],
                        struct state_name_view *view);
int node_witness_admit(struct node *node, const char *name, const uint8_t owner[STATE_OWNER_LEN],
                       const struct state_witness *w, struct state_name_view *view, char *err,
                       size_t errlen);
void node_witness_all(struct node *node);
/* Group commit (node.c): what the store staged (gossiped records, our witnesses) is made
 * durable within NODE_STORE_SYNC_MS by one fdatasync, not one per entry. node_store_staged
 * arms that; node_store_sync syncs now and logs a failure (0 or -1); node_store_flush syncs
 * now and sets err instead (the API path, which answers with it). Both disarm the timer. */
#define NODE_STORE_SYNC_MS 20
void node_store_staged(struct node *node);
int node_store_sync(struct node *node);
int node_store_flush(struct node *node, char *err, size_t errlen);
/* The gossip item of owner's record on a key: the record and our kept witnesses (bundle), and
 * the push-pull hash over both. */
int node_bundle_encode(const struct node *node, const struct state_record *rec, uint8_t *buf,
                       size_t cap);
uint64_t node_bundle_hash(const struct node *node, const struct state_record *rec);

/* Schedules a compaction check right after this loop turn (the log passed --compact-bytes). */
void node_compact_soon(struct node *node);
/* Applies the current routes of every name (at start, after a reload). */
void node_routes_rebuild(struct node *node);
/* Re-derives the route of one key from its current view (after its fqdn verdict changed). */
void node_route_name(struct node *node, const char *name);
/* Whether this node may send traffic (and probes) to `be` under its own address policy. */
bool node_backend_allowed(const struct node *node, const struct state_backend *be);
/* The address policy submitted records are checked against. */
void node_validate_policy(const struct node *node, struct state_validate_policy *pol);
/* Re-reads every member's advertised addresses (HTTP, HTTPS, API, gossip) from gossip; when
 * the set changed, routes are re-derived so a backend that became a member's address stops
 * being served. Called on every membership change. */
void node_fleet_addrs_update(struct node *node);
/* Frees the long-name item key index (node_gossip.c). */
void node_longkeys_free(struct node *node);

/* Appends an event to the ring and logs it at info. */
void node_event(struct node *node, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts a graceful stop (signals and the admin API); node_drain_step finishes it once the
 * leave notice spread and the proxy drained. */
void node_drain(struct node *node, const char *why);
void node_drain_step(struct node *node);

/* Gossip side (node_gossip.c). */
int node_gossip_start(struct node *node, const struct gossip_keyring *keyring, char *err,
                      size_t errlen);
/* Spreads owner's current record on name with every witness we keep (a bundle). */
void node_gossip_broadcast(struct node *node, const char *name,
                           const uint8_t owner[STATE_OWNER_LEN]);
void node_gossip_leave(struct node *node);
/* "encrypted" (cluster key), "insecure" (--gossip-insecure, plain) or "alone" (no key). */
const char *node_gossip_mode(const struct node *node);
void node_gossip_close(struct node *node);
/* Item key of a record: "OWNERHEX/NAME" (see node_gossip.c). */
void node_item_key(const struct state_record *rec, char out[GOSSIP_KEY_MAX + 1]);
void node_probes_dirty(struct node *node);
bool node_health_assigned(struct node *node, const char *key);
void node_health_observed(struct node *node, const char *key, bool up);
void node_gossip_metrics(const struct node *node, struct node_metrics *m);

/* Key rotation (node_keys.c). node_keys_reload installs the keys of the file at `path` (SIGHUP)
 * and logs one line (count and primary fingerprint); node_api_keys answers GET and POST
 * /api/v1/admin/keys once api.c has checked the bearer token. */
void node_keys_reload(struct node *node, const char *path);
void node_api_keys(struct node *node, struct node_httpd_conn *conn,
                   const struct node_httpd_request *req);
/* Proxy side (node_proxy.c). Health keys are "IP:PORT", the same on every node. */
int node_proxy_start(struct node *node, const uint8_t *cluster_key, char *err, size_t errlen);
void node_proxy_probes_update(struct node *node);
void node_proxy_fleet_verdict(struct node *node, const char *key, enum proxy_verdict verdict);
/* Feeds the proxy the fleet verdicts gossip holds now for a route's backends. */
void node_proxy_fleet_sync(struct node *node, const struct state_record *rec);
void node_proxy_drain(struct node *node);
void node_proxy_stop(struct node *node);
json_t *node_proxy_local_health(const struct node *node);
void node_proxy_metrics(const struct node *node, struct node_metrics *m);
void node_backend_key(const struct state_backend *be, char out[64]);
int node_backend_from_key(const char *key, struct state_backend *out);

struct tls_pem_pair; /* proxy/tls_internal.h */
struct node_acme;    /* node_acme.c */

/* Automatic certificates (node_acme.c): ACME HTTP-01, tokens and certificates over gossip. */
int node_acme_setup(struct node *node, struct proxy_config *pc, char *err, size_t errlen);
void node_acme_stop(struct node *node); /* closes its handles; idempotent */
void node_acme_free(struct node *node); /* once the loop is done */
size_t node_acme_pairs(struct node *node, struct tls_pem_pair *out, size_t cap);
/* A rotated cluster keyring (node_keys.c): new certificates are sealed with its first key and
 * received ones opened with any of them. Certificates already sealed are not re-sealed. */
void node_acme_set_keys(struct node *node, const struct gossip_keyring *kr);
bool node_acme_item_key(const char *key); /* "acme:..." items are node_acme's */
/* The DNS-01 TXT values the fleet holds for `owner` ("_acme-challenge.DOMAIN"), at most cap
 * into out; returns how many (0 with ACME off). */
size_t node_acme_txt(struct node *node, const char *owner, char (*out)[256], size_t cap);
int node_acme_on_item(struct node *node, const char *key, uint64_t version, const uint8_t *bytes,
                      size_t len);
int node_acme_each_item(struct node *node, gossip_item_visit_fn visit, void *visit_ctx);
int node_acme_get_item(struct node *node, const char *key, uint64_t *version, uint8_t *buf,
                       size_t cap);

/* fqdn proxies served only while their DNS points at the fleet (node_fqdn.c). */
int node_fqdn_start(struct node *node, char *err, size_t errlen);
void node_fqdn_stop(struct node *node);         /* closes the resolver and timer; idempotent */
void node_fqdn_free(struct node *node);         /* once the loop is done */
void node_fqdn_set_interval(struct node *node); /* after a reload changed --dns-interval */
bool node_fqdn_served(const struct node *node, const char *fqdn);
void node_fqdn_check_soon(struct node *node, const char *fqdn);
void node_fqdn_metrics(const struct node *node, struct node_metrics *m);
/* Adds "dns": {"served", "checked", "reason"} (this node's last check of fqdn) to obj. */
void node_fqdn_json(const struct node *node, const char *fqdn, json_t *obj);

/* The fleet's authoritative DNS (node_zone.c): off without --dns-listen. */
struct dns_zone;
struct dns_server;
int node_zone_start(struct node *node, char *err, size_t errlen);
void node_zone_fleet_changed(struct node *node); /* a member changed: rebuild the gateways */
void node_zone_stop(struct node *node);          /* closes the listeners; idempotent */
void node_zone_free(struct node *node);          /* once the loop is done */
void node_zone_metrics(const struct node *node, struct node_metrics *m);

/* TLS side (node_tls.c). node_tls_start makes the store (before the proxy starts). */
int node_tls_start(struct node *node, const uint8_t *cluster_key, char *err, size_t errlen);
int node_tls_load(struct node *node, char *err, size_t errlen);
void node_tls_reload(struct node *node);
/* What an operator should know about HTTPS, or NULL: with no --tls-cert and no ACME the HTTPS
 * listener still opens (passthrough names need no certificate) but every terminated name fails
 * its handshake with unrecognized_name. Logged once at start and listed in /healthz. */
const char *node_tls_warning(const struct node *node);
void node_tls_free(struct node *node);
void node_tls_metrics(const struct node *node, struct node_metrics *m);

/* Metrics text builder (metrics.c). */
/* Writes `in` as a Prometheus label value (without the quotes) into out[cap]: '\\', '"' and
 * newline escaped, cut at cap. Label values that come from the network (health keys gossiped
 * by any member) must go through it, or one '"' breaks every scrape. Returns out. */
const char *node_metrics_label(const char *in, char *out, size_t cap);
void node_metrics_printf(struct node_metrics *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void node_metrics_family(struct node_metrics *m, const char *name, const char *type,
                         const char *help);

/* API request dispatch (api.c). */
void node_api_handle(void *ctx, struct node_httpd_conn *conn, const struct node_httpd_request *req);

/* JSON views shared by the API and webgwctl (json_views.c). */
json_t *node_json_name(const struct state_name_view *view);
json_t *node_json_names(const struct state_names *names);
json_t *node_json_members(const struct node *node);
json_t *node_json_backends(const struct node *node);
json_t *node_json_events(const struct node *node);
json_t *node_json_traffic(const struct node *node);

/* Traffic views (node_traffic.c): start samples every NODE_SAMPLE_MS (after gossip and the
 * proxy), stop at drain, free after the loop; the gossip items "traffic:ID"; the JSON of
 * GET /api/v1/traffic/fleet and /api/v1/traffic/history. */
int node_traffic_start(struct node *node, char *err, size_t errlen);
void node_traffic_stop(struct node *node);
void node_traffic_free(struct node *node);
bool node_traffic_item_key(const char *key);
int node_traffic_on_item(struct node *node, const char *key, uint64_t version, const uint8_t *bytes,
                         size_t len);
int node_traffic_each_item(struct node *node, gossip_item_visit_fn visit, void *visit_ctx);
int node_traffic_get_item(struct node *node, const char *key, uint64_t *version, uint8_t *buf,
                          size_t cap);
json_t *node_json_traffic_fleet(struct node *node);
json_t *node_json_traffic_history(const struct node *node);
void node_traffic_metrics(const struct node *node, struct node_metrics *m);

/* Prometheus text of everything the node counts (metrics.c); caller frees. */
char *node_metrics_render(const struct node *node, size_t *len);

/* The dashboard page (dashboard.c, generated from dashboard.html). */
extern const char node_dashboard_html[];
extern const size_t node_dashboard_html_len;

/* sd_notify without libsystemd: one datagram to $NOTIFY_SOCKET; no-op when unset. */
void node_sd_notify(const char *state);

#endif /* WEBGW_NODE_INTERNAL_H */
