/*
 * fakenet.h - a simulated network with virtual time for gossip tests and the simulator.
 *
 * Like tarantool's swim fakenet: members are real gossip instances with the real codec, and
 * only the transport and the clock are fake. Datagrams can be lost, delayed and cut by
 * partitions. Streams (TCP) are honest about the same loss: the handshake and every segment
 * are retransmitted with TCP's exponential backoff (so a lossy path makes them slow), a
 * message whose retries run out is lost as the kernel's reset would lose it, a stream can be
 * reset outright (stream_reset), and bandwidth can be limited (stream_bytes_per_ms).
 * Time advances in steps of step_ms; nothing sleeps, so a 100-member cluster runs minutes
 * of protocol in milliseconds, and every run with the same seed is identical.
 *
 * Each node also carries an item store (key -> version, value) standing in for the state
 * layer: an item replaces what it holds only with a higher version, like records do.
 */
#ifndef WEBGW_TESTS_FAKENET_H
#define WEBGW_TESTS_FAKENET_H

#include "gossip/gossip.h"

#define FN_ITEM_VALUE_MAX 2600 /* values can exceed a datagram to exercise the TCP path */

struct fn_item {
    char key[GOSSIP_KEY_MAX + 1];     /* item key */
    uint64_t version;                 /* current version */
    size_t len;                       /* value length */
    uint8_t value[FN_ITEM_VALUE_MAX]; /* value */
    uint64_t learned_ms;              /* virtual time it arrived */
};

struct fn_node {
    struct fakenet *net;     /* owner */
    struct gossip *g;        /* the member (NULL when never started) */
    size_t idx;              /* position in the net */
    struct gossip_addr addr; /* 10.x.y.z:7946 derived from idx */
    bool up;                 /* receiving and ticking */
    int group;               /* partition group: packets cross only within a group */
    uint32_t in_delay_ms;    /* extra delay on everything it receives (a slow member) */
    int64_t wall_offset_ms;  /* its wall clock minus the fleet's (a member whose NTP is off);
                                set before fakenet_start */
    uint64_t next_tick;      /* when gossip wants its next tick */
    struct fn_item *items;   /* item store */
    size_t nitems, items_cap;
    uint64_t deaths_seen;     /* transitions to DEAD this node observed */
    uint64_t suspicions_seen; /* transitions to SUSPECT this node observed */
    uint64_t stale_offered;   /* items offered with a version below what it holds */
    uint64_t wire_sent;       /* bytes it sent as the wire counts them (fakenet_wire_*) */
};

struct fakenet {
    uint64_t now;                        /* virtual milliseconds */
    uint64_t rng;                        /* loss and delay decisions */
    uint32_t step_ms;                    /* time resolution (1 in tests, more in big simulations) */
    double loss;                         /* datagram loss probability */
    uint32_t delay_min_ms, delay_max_ms; /* one-way delay range */
    struct fn_node *nodes;               /* members by index */
    size_t n;
    struct fpkt **heap; /* packets in flight, by delivery time */
    size_t nheap, heap_cap;
    uint64_t pkt_seq;                    /* tie-break for equal delivery times: FIFO */
    uint64_t dgram_bytes, dgram_count;   /* datagrams sent (before loss) */
    uint64_t stream_bytes, stream_count; /* stream messages sent */
    uint64_t wire_udp, wire_tcp;         /* the same as the wire counts them (headers, TCP
                                            segments: fakenet_wire_udp / fakenet_wire_tcp) */
    double stream_reset;                 /* probability a stream message is reset (lost) */
    uint32_t stream_bytes_per_ms;        /* stream bandwidth; 0 = unlimited */
    uint64_t streams_lost;               /* stream messages lost to retries running out */
    uint64_t streams_reset;              /* stream messages lost to stream_reset */
    bool daemon_sized;                   /* fakenet_config gives what the daemon sends: 32-hex
                                            ids, a witness key, API and public addresses, a
                                            cluster key (set before starting nodes) */
};

#define FN_MSS 1400        /* bytes per TCP segment */
#define FN_SYN_RETRIES 6   /* net.ipv4.tcp_syn_retries: about 127 s of backoff */
#define FN_DATA_RETRIES 15 /* net.ipv4.tcp_retries2 */
#define FN_RTO_MAX 120000  /* TCP_RTO_MAX: the backoff stops doubling at 120 s */

/* What the wire carries for gossip's bytes: datagrams with their IPv4 and UDP headers, stream
 * messages with the gossip_uv frame header and the TCP segments of a short connection
 * (handshake, a segment and its ack per MSS, close both ways). `msgs` messages of `bytes` in
 * all. */
#define FN_WIRE_IP_UDP 28  /* IPv4 + UDP headers */
#define FN_WIRE_TCP_SEG 52 /* IPv4 + TCP headers with timestamps */
#define FN_WIRE_FRAME 11   /* gossip_uv frame: length, address length, IPv4 address and port */
uint64_t fakenet_wire_udp(uint64_t bytes, uint64_t msgs);
uint64_t fakenet_wire_tcp(uint64_t bytes, uint64_t msgs);

/* The fleet's wall clock at virtual time 0 (what encrypted envelopes are stamped with, plus
 * the virtual time and the member's wall_offset_ms). */
#define FN_WALL_EPOCH_MS 1700000000000ull

struct fakenet *fakenet_new(size_t max_nodes, uint64_t seed);
void fakenet_free(struct fakenet *net);

/* Node idx's id: "node-<idx>", or with daemon_sized 32 hex digits derived from idx. */
void fakenet_id(const struct fakenet *net, size_t idx, char out[GOSSIP_ID_MAX + 1]);
/* Fills cfg for node idx: defaults, its id, its address, a seed (and with daemon_sized the
 * daemon's metadata and a cluster key). Tests then tweak. */
void fakenet_config(struct fakenet *net, size_t idx, struct gossip_config *cfg);
/* Starts (or restarts, freeing the previous instance) node idx with cfg. Returns 0 or -1. */
int fakenet_start(struct fakenet *net, size_t idx, const struct gossip_config *cfg);
/* Starts node idx with default config and joins it through node `seed` (unless idx == seed). */
int fakenet_start_join(struct fakenet *net, size_t idx, size_t seed);
/* Stops delivering to and ticking node idx (kill -9). Its instance stays for inspection. */
void fakenet_kill(struct fakenet *net, size_t idx);

/* Advances virtual time by ms. */
void fakenet_run(struct fakenet *net, uint64_t ms);
/* Advances until pred returns true (checked every check_ms) or limit_ms passes. Returns the
 * virtual ms it took, or UINT64_MAX on timeout. */
typedef bool (*fakenet_pred)(struct fakenet *net, void *arg);
uint64_t fakenet_run_until(struct fakenet *net, fakenet_pred pred, void *arg, uint64_t check_ms,
                           uint64_t limit_ms);

/* Every up node sees exactly `alive` members alive and none suspect. */
bool fakenet_converged(struct fakenet *net, size_t alive);
/* A cold start of the whole net: node i starts at window_ms * i / (n - 1) from now (a
 * config from fakenet_config) and joins through nodes 0 .. nseeds-1, the seeds included
 * (each retries the others until they are up). Then runs until every node sees all n alive
 * and none suspect, at most limit_ms past the last start (*last_start: its virtual time).
 * Returns the virtual ms from the last start to convergence, or UINT64_MAX. */
uint64_t fakenet_cold_start(struct fakenet *net, size_t nseeds, uint64_t window_ms,
                            uint64_t limit_ms, uint64_t *last_start);
/* The state node `viewer` has for node `subject` (GOSSIP_DEAD if unknown). */
enum gossip_member_state fakenet_state(struct fakenet *net, size_t viewer, size_t subject);

/* What the network does to one stream message of len bytes (see fakenet.c): -1 when it is
 * lost (reset, or retransmissions ran out; counted in streams_reset / streams_lost), else 0
 * with *delay grown by the retransmission backoff and the transfer time. Used by fn_send;
 * exported so tests can check the model itself. */
int fakenet_stream_fate(struct fakenet *net, size_t len, uint64_t *delay);

/* Item store helpers. */
const struct fn_item *fakenet_item(const struct fn_node *node, const char *key);
/* Stores locally and broadcasts, as the node does for a record accepted via the API. */
int fakenet_publish(struct fakenet *net, size_t idx, const char *key, uint64_t version,
                    const void *value, size_t len);
/* Every up node holds key at exactly `version`. */
bool fakenet_item_everywhere(struct fakenet *net, const char *key, uint64_t version);
/* The same as a fakenet_pred for fakenet_run_until: arg is a struct fakenet_item_at. */
struct fakenet_item_at {
    const char *key;
    uint64_t version;
};
bool fakenet_item_at_everywhere(struct fakenet *net, void *arg);

/* Node idx's fleet verdict on each of the n backends is up(i) (up or down, never unknown). */
bool fakenet_health_holds(struct fakenet *net, size_t idx, const char *const *backends, size_t n,
                          bool (*up)(size_t i));

#endif
