/*
 * traffic_internal.h - traffic views of the dashboard (private to node/): the last 15 minutes
 * of each name on this node (traffic_history.c), the signed per-node summaries the fleet
 * gossips (traffic_wire.c), and the node's side of both (node_traffic.c).
 *
 * Why gossip and not each node asking the others' APIs: the API listens on loopback by default
 * (127.0.0.1:9080) and has no authentication, so nodes cannot reach each other's APIs and a
 * reply could not be told from a forgery. Gossip already reaches every member, encrypted with
 * the cluster key; each summary is also signed with the sender's witness key (the Ed25519 key
 * it announces in its member metadata), so a member can publish numbers only under its own
 * name: a malicious member can lie about its own traffic, and the dashboard shows those numbers
 * labelled as that member's, but it cannot change or forge another member's.
 */
#ifndef WEBGW_NODE_TRAFFIC_INTERNAL_H
#define WEBGW_NODE_TRAFFIC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/gossip.h"
#include "proxy/proxy.h"
#include "state/state.h"

#define NODE_SAMPLE_MS 10000     /* one history sample and one fleet summary per 10 s */
#define NODE_HISTORY_SAMPLES 90  /* 90 x 10 s: the last 15 minutes */
#define NODE_HISTORY_NAMES 64    /* names with a history on one node (bounded memory) */
#define NODE_FLEET_NODES_MAX 256 /* other members' summaries kept */
#define TRAFFIC_ITEM_MAX                                                                           \
    1024                     /* bytes of one summary: with its gossip framing it fits a            \
                                 datagram, so summaries ride the UDP rounds and never              \
                                 queue for TCP beside large records */
#define TRAFFIC_NAMES_MAX 24 /* names in one summary (at least 45 bytes each) */
#define TRAFFIC_ITEM_PREFIX "traffic:"
#define TRAFFIC_SIGN_DOMAIN "webgw-traffic-v1"

/* ---- history: one ring of samples per name (traffic_history.c) -------------------------- */

/* One interval of one name. p99 is a latency histogram bucket (proxy_latency_bounds_ms) plus
 * one: 0 means no request in the interval. */
struct traffic_sample {
    uint32_t requests; /* requests answered in the interval */
    uint32_t errors;   /* of which 5xx or cut */
    uint8_t p99;       /* bucket of the 99th percentile latency + 1; 0: none */
};

struct traffic_history; /* opaque */

struct traffic_history *traffic_history_new(void);
void traffic_history_free(struct traffic_history *h);
/* Starts a sample interval (call once per NODE_SAMPLE_MS, then traffic_history_add for each
 * name the proxy lists, then traffic_history_end). wall_ms dates the interval's end. */
void traffic_history_begin(struct traffic_history *h, uint64_t wall_ms);
/* Folds one name's cumulative counters into the current interval. Returns the interval's
 * sample for the name (zeroes when it has no history slot, or this is its first sample). */
struct traffic_sample traffic_history_add(struct traffic_history *h,
                                          const struct proxy_name_stats *s);
/* Ends the interval: names that have a slot but were not listed get an empty sample; a slot
 * whose name the proxy no longer lists and whose ring is all empty is freed. */
void traffic_history_end(struct traffic_history *h);
/* The 99th percentile bucket (+1, 0 when empty) of a histogram of `n` requests. */
uint8_t traffic_p99_bucket(const uint64_t counts[PROXY_LATENCY_BUCKETS]);
/* The p99 in milliseconds for a bucket+1 value (the bucket's upper bound; the open last bucket
 * reads as twice the last finite bound), or -1 for 0. */
long traffic_p99_ms(uint8_t p99);

/* Visits the names with a history: `samples` holds `count` samples, oldest first, the last one
 * ending at end_ms. */
typedef void (*traffic_history_visit_fn)(void *ctx, const char *name,
                                         const struct traffic_sample *samples, size_t count);
void traffic_history_each(const struct traffic_history *h, traffic_history_visit_fn fn, void *ctx);
uint64_t traffic_history_end_ms(const struct traffic_history *h);
size_t traffic_history_names(const struct traffic_history *h);
uint64_t traffic_history_refused(const struct traffic_history *h); /* names left without one */

/* ---- the summary a node gossips (traffic_wire.c) ---------------------------------------- */

struct traffic_name {
    char name[STATE_FQDN_MAX + 1]; /* route key (name or fqdn) */
    uint64_t requests, errors;     /* since the node started */
    uint64_t bytes_in, bytes_out;  /* idem */
    uint32_t recent_requests;      /* in the last interval (0 when the name has no history) */
    uint32_t recent_errors;        /* idem */
    uint8_t p99;                   /* last interval's p99 bucket + 1, 0: none */
};

/* One node's numbers: its busiest names (as many as fit in TRAFFIC_ITEM_MAX) and the rest as
 * one "others" sum. */
struct traffic_summary {
    char id[GOSSIP_ID_MAX + 1];                   /* the member id that signed it */
    uint64_t seq;                                 /* its wall clock in ms: only goes up */
    uint32_t sample_ms;                           /* its interval */
    uint32_t names_total;                         /* names it counted, listed or not */
    uint64_t others_requests;                     /* requests of the names not listed */
    uint64_t others_errors;                       /* errors of those */
    size_t count;                                 /* entries in names */
    struct traffic_name names[TRAFFIC_NAMES_MAX]; /* busiest first */
};

/* Encodes s (names in the order given, as many as fit in TRAFFIC_ITEM_MAX (and cap) with the
 * signature; the rest are added to others) and signs it with key under TRAFFIC_SIGN_DOMAIN. Returns
 * the length or -1. */
int traffic_summary_encode(struct traffic_summary *s, const struct state_key *key, uint8_t *buf,
                           size_t cap);
/* Decodes exactly len bytes (strict: lengths, characters, counts, no trailing bytes) without
 * verifying. Returns 0, or -1 with err set. */
int traffic_summary_decode(const uint8_t *buf, size_t len, struct traffic_summary *out, char *err,
                           size_t errlen);
/* 0 when the signature at the end of buf verifies for pub, else -1 with err set. */
int traffic_summary_verify(const uint8_t *buf, size_t len, const uint8_t pub[STATE_OWNER_LEN],
                           char *err, size_t errlen);

#endif
