/*
 * gossip.h - the gossip layer's public interface.
 *
 * Gossip gives every node the same view of the fleet (who is alive, suspect, dead or gone)
 * and the same set of replicated items, without any node in charge:
 *
 *   membership     SWIM with the Lifeguard extensions: one probe per protocol period, indirect
 *                  probes with nacks, suspicion with incarnation numbers and refutation, a
 *                  suspicion timeout that shrinks with independent confirmations, a local health
 *                  multiplier and the buddy system (gossip.c)
 *   dissemination  a retransmit-limited queue that piggy-backs changes on every packet, newest
 *                  version per key wins, membership and data share each packet fairly
 *                  (gossip_queue.c)
 *   anti-entropy   push-pull over TCP: per-bucket digests of the member list and of the item
 *                  set, then only the members and items of the buckets that differ
 *                  (gossip_pushpull.c)
 *   health         per-observer backend health entries with expiry, rendezvous hashing to pick
 *                  the k members that probe each backend (gossip_health.c)
 *   wire           msgpack messages with a version byte, strict bounds-checked decoders, an
 *                  AES-256-GCM keyring and a cluster label (gossip_proto.c, gossip_crypto.c)
 *   transport      pluggable: libuv UDP + TCP for real use (gossip_uv.c), a fake network with
 *                  virtual time for tests (tests/gossip/fakenet.c)
 *
 * Gossip does not know what a record is. It carries opaque *items*: a key, a version that
 * only goes up, and at most GOSSIP_ITEM_MAX bytes. The node decides what an item means (it
 * decodes, verifies and merges it in on_item) and tells gossip what it holds (each_item,
 * get_item) so push-pull can compare item sets.
 *
 * Threading: a gossip instance is driven by one thread (the event loop that owns it). No
 * function here may be called concurrently with another on the same instance. Results that
 * other threads need (members, health verdicts) are copied out by the caller, or pushed to it
 * through the on_member / on_health callbacks.
 *
 * Conventions: functions that can fail return 0 (or a count) on success and a negative
 * GOSSIP_E* code on failure, writing a one-line human message into `err` when given.
 */
#ifndef WEBGW_GOSSIP_H
#define WEBGW_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* ---- limits: every external input is bounded ------------------------------------------- */

#define GOSSIP_ID_MAX 64              /* node id: [A-Za-z0-9._:-], stable across restarts */
#define GOSSIP_NAME_MAX 63            /* node name (display) */
#define GOSSIP_DOMAIN_MAX 253         /* gateway domain carried in member metadata */
#define GOSSIP_VERSION_MAX 31         /* software version string in member metadata */
#define GOSSIP_LABEL_MAX 64           /* cluster label (authenticated, never merges two clusters) */
#define GOSSIP_KEY_MAX 255            /* item key */
#define GOSSIP_ITEM_MAX 4096          /* item payload bytes (a signed record is <= 2048) */
#define GOSSIP_BACKEND_MAX 96         /* backend key for health ("http://[v6]:port") */
#define GOSSIP_KEYS_MAX 8             /* keys in a keyring */
#define GOSSIP_KEY_LEN 32             /* AES-256 key bytes */
#define GOSSIP_UDP_MAX 1400           /* largest datagram we send or accept */
#define GOSSIP_STREAM_MAX (32u << 20) /* largest TCP message (push-pull with many members) */
#define GOSSIP_MEMBERS_MAX 65536      /* members we track (bounded memory) */
#define GOSSIP_SEEDS_MAX 16           /* join addresses */
#define GOSSIP_ERR_MAX 256            /* size of an error message buffer */
#define GOSSIP_PUBLIC_ADDRS_MAX 8     /* --public-addr entries in member metadata */
#define GOSSIP_WITNESS_KEY_LEN 32     /* Ed25519 public key in member metadata (tag 2) */
#define GOSSIP_META_EXT_MAX 16        /* entries of the metadata extension map we accept */

/* ---- error codes ----------------------------------------------------------------------- */

enum gossip_error {
    GOSSIP_OK = 0,
    GOSSIP_EINVAL = -1,     /* bad argument or configuration */
    GOSSIP_ENOMEM = -2,     /* allocation failure */
    GOSSIP_ETOOBIG = -3,    /* over a size limit */
    GOSSIP_EIO = -4,        /* socket or file failure */
    GOSSIP_ECRYPTO = -5,    /* encryption failure or bad key */
    GOSSIP_EMALFORMED = -6, /* undecodable input */
    GOSSIP_ENOTFOUND = -7,  /* no such member / backend / item */
    GOSSIP_ERANGE = -8,     /* a time outside the window we accept */
};

/* ---- addresses --------------------------------------------------------------------------- */

/* An IP literal and a port, the way the wire carries it. */
struct gossip_addr {
    uint8_t family; /* 4 or 6; 0 means unset */
    uint8_t ip[16]; /* network byte order; IPv4 in the first 4 bytes */
    uint16_t port;  /* host byte order */
};

/* Parses "1.2.3.4:7946" or "[::1]:7946". Returns 0 or GOSSIP_EINVAL with `err` set. */
int gossip_addr_parse(const char *text, struct gossip_addr *out, char *err, size_t errlen);
/* Formats as gossip_addr_parse reads it; `out` holds at least 48 bytes. Returns `out`. */
char *gossip_addr_format(const struct gossip_addr *a, char *out, size_t outlen);
bool gossip_addr_equal(const struct gossip_addr *a, const struct gossip_addr *b);

/* ---- members ----------------------------------------------------------------------------- */

enum gossip_member_state {
    GOSSIP_ALIVE = 0,   /* answering probes */
    GOSSIP_SUSPECT = 1, /* missed a probe; will be declared dead unless it refutes in time */
    GOSSIP_DEAD = 2,    /* declared dead by the cluster (kept for reconnects, then reaped) */
    GOSSIP_LEFT = 3,    /* left gracefully */
};

/* "alive", "suspect", "dead", "left": the strings GET /api/v1/members uses. */
const char *gossip_state_name(enum gossip_member_state state);

/* What a member tells the fleet about itself. Set by the node in gossip_config.
 *
 * Wire: name, domain, version, http, https, then an extension map {uint tag: value}. New
 * metadata gets a new tag in that map instead of a new position, so members that do not know
 * a tag skip it (unknown tags are ignored, at most GOSSIP_META_EXT_MAX entries). Tags:
 *   1  public addresses: an array of up to GOSSIP_PUBLIC_ADDRS_MAX address bins (port 0)
 *   2  API address: one address bin (the fleet refuses it as a backend)
 *   3  witness key: bin 32, the member's Ed25519 public key for claim witnesses */
struct gossip_meta {
    char name[GOSSIP_NAME_MAX + 1];       /* --node-name */
    char domain[GOSSIP_DOMAIN_MAX + 1];   /* --domain */
    char version[GOSSIP_VERSION_MAX + 1]; /* webgw version */
    struct gossip_addr http;              /* public HTTP address (family 0: none) */
    struct gossip_addr https;             /* public HTTPS address (family 0: none) */
    struct gossip_addr public_addrs[GOSSIP_PUBLIC_ADDRS_MAX]; /* --public-addr: what the
                                                                 fleet's DNS answers (port 0) */
    uint8_t public_count;                                     /* entries in public_addrs */
    struct gossip_addr api;                                   /* API address (family 0: none) */
    uint8_t witness[GOSSIP_WITNESS_KEY_LEN]; /* the node's Ed25519 witness key (claim
                                                countersignatures, node_witness.c); all zero:
                                                none */
};

/* A snapshot of one member, copied out (no pointer into gossip's tables). */
struct gossip_member {
    char id[GOSSIP_ID_MAX + 1];     /* stable node id */
    struct gossip_meta meta;        /* its metadata */
    struct gossip_addr addr;        /* gossip address (UDP and TCP) */
    enum gossip_member_state state; /* alive / suspect / dead / left */
    uint64_t incarnation;           /* its incarnation number as we know it */
    uint64_t state_since_ms;        /* our clock when the state last changed */
    bool self;                      /* this is us */
};

/* ---- items and callbacks -------------------------------------------------------------- */

/* Push-pull enumerates the local item set through this visitor: one call per item. `hash` is
 * a digest of the item's bytes (0 if the caller has none: key and version then identify the
 * content). Return non-zero to stop. */
typedef int (*gossip_item_visit_fn)(void *visit_ctx, const char *key, uint64_t version,
                                    uint64_t hash);

/* Fleet verdict on one backend from the fresh per-observer entries. */
enum gossip_health_verdict {
    GOSSIP_HEALTH_UNKNOWN = 0, /* no fresh observation */
    GOSSIP_HEALTH_UP = 1,      /* at least as many fresh "up" as "down", and one "up" */
    GOSSIP_HEALTH_DOWN = 2,    /* more fresh "down" than "up" */
};
const char *gossip_health_verdict_name(enum gossip_health_verdict v); /* "unknown","up","down" */

/* What the node gives gossip. Every callback is optional except where noted; all run on the
 * gossip thread, and none may call back into gossip_free. */
struct gossip_callbacks {
    void *ctx; /* passed to every callback */

    /* An item arrived from the network (a record change or an anti-entropy repair). The node
     * decodes, verifies, validates and merges it. Return 1 if it was new to us (gossip then
     * retransmits it), 0 if already known or older (dropped silently), or a negative value if
     * it is invalid (counted as GOSSIP_DROP_ITEM_REJECTED and not forwarded). Required for
     * items to flow. */
    int (*on_item)(void *ctx, const char *key, uint64_t version, const uint8_t *bytes, size_t len);

    /* Enumerates every item the node holds (for push-pull digests). Returns 0, or the
     * visitor's non-zero value if it stopped early. */
    int (*each_item)(void *ctx, gossip_item_visit_fn visit, void *visit_ctx);

    /* Copies the current item under `key` into buf[cap] and its version into *version.
     * Returns the length, GOSSIP_ENOTFOUND, or GOSSIP_ETOOBIG. */
    int (*get_item)(void *ctx, const char *key, uint64_t *version, uint8_t *buf, size_t cap);

    /* A member joined, changed state, changed metadata, or was reaped (`reaped` true: it is
     * no longer listed). */
    void (*on_member)(void *ctx, const struct gossip_member *member, bool reaped);

    /* The fleet verdict on a backend changed (including to UNKNOWN when entries expire). */
    void (*on_health)(void *ctx, const char *backend, enum gossip_health_verdict verdict);

    /* One log line, without newline. level: 0 error, 1 warning, 2 info, 3 debug. */
    void (*log)(void *ctx, int level, const char *msg);
};

/* ---- transport and clock (pluggable) ----------------------------------------------------- */

/* How gossip sends bytes. gossip_uv_open provides a libuv one; tests provide a fake network.
 * Inbound bytes are handed to gossip_receive by whoever owns the transport. */
struct gossip_transport_ops {
    /* Sends one datagram (len <= GOSSIP_UDP_MAX), best effort. Returns 0 or a negative code
     * (counted, never retried). */
    int (*send_packet)(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len);
    /* Sends one message over a reliable stream (TCP), whole or not at all, at most
     * GOSSIP_STREAM_MAX bytes. The receiver gets it through gossip_receive(..., true). A
     * message sent to a peer while gossip_receive handles a stream message from it may travel
     * back on that message's connection (gossip_uv.c does: the TCP probe's ack). */
    int (*send_stream)(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len);
};
struct gossip_transport {
    const struct gossip_transport_ops *ops; /* send functions */
    void *ctx;                              /* their first argument */
};

/* Monotonic milliseconds. Tests run a virtual clock; real use reads uv_now. */
struct gossip_clock {
    uint64_t (*now_ms)(void *ctx);  /* current time */
    void *ctx;                      /* its argument */
    uint64_t (*wall_ms)(void *ctx); /* unix time in ms, stamped on encrypted envelopes for the
                                       replay window; NULL: now_ms (a shared virtual clock) */
    /* Optional: gossip needs a tick at `at_ms`, earlier than the deadline gossip_tick last
     * returned (a change was queued between ticks). The owner moves its timer up; without it
     * the change waits for the owner's next tick. */
    void (*wake)(void *ctx, uint64_t at_ms);
};

/* ---- configuration --------------------------------------------------------------------- */

struct gossip_keyring {
    uint8_t keys[GOSSIP_KEYS_MAX][GOSSIP_KEY_LEN]; /* keys[0] encrypts, all decrypt */
    size_t count;                                  /* 0: plain mode (warned about) */
};

/* Purposes of the keys derived from a cluster key: each use gets its own key, so no two
 * mechanisms ever share key material (AES-GCM nonces of gossip and of sealed certificates are
 * drawn independently; a key recovered from one use says nothing of the others). */
#define GOSSIP_KDF_GOSSIP "webgw gossip encryption v2"
#define GOSSIP_KDF_TICKETS "webgw tls session tickets v2"
#define GOSSIP_KDF_SEAL "webgw certificate sealing v2"

/* Derives out = HKDF-SHA256(key, salt "webgw cluster key", info purpose) (RFC 5869, OpenSSL's
 * EVP_KDF). Returns 0 or GOSSIP_ECRYPTO. */
int gossip_key_derive(const uint8_t key[GOSSIP_KEY_LEN], const char *purpose,
                      uint8_t out[GOSSIP_KEY_LEN]);

/* Reads a key file: one base64-encoded 32-byte key per line, the first line encrypts. Blank
 * lines and lines starting with '#' are ignored. Errors name the line. */
int gossip_keyring_load(const char *path, struct gossip_keyring *out, char *err, size_t errlen);
/* The same from text already in memory. */
int gossip_keyring_parse(const char *text, size_t len, struct gossip_keyring *out, char *err,
                         size_t errlen);

#define GOSSIP_KEY_FPR_LEN 16 /* hex characters of a key fingerprint */
/* Writes a key's fingerprint (the first 8 bytes of SHA-256(key), in hex) to out: safe to log
 * and to show, it names a key without revealing it. */
void gossip_key_fingerprint(const uint8_t key[GOSSIP_KEY_LEN], char out[GOSSIP_KEY_FPR_LEN + 1]);

struct gossip_config {
    char id[GOSSIP_ID_MAX + 1];       /* required: stable node id (the node persists it) */
    struct gossip_meta meta;          /* published to the fleet */
    struct gossip_addr bind;          /* UDP+TCP listen address (gossip_uv_open only) */
    struct gossip_addr advertise;     /* the address others reach us at (required) */
    uint64_t incarnation;             /* starting incarnation; the node passes unix seconds so
                                         a restart outranks what the fleet remembers */
    uint64_t seed;                    /* PRNG seed: probe order, gossip targets (tests fix it) */
    char label[GOSSIP_LABEL_MAX + 1]; /* cluster label, authenticated in every packet */
    struct gossip_keyring keyring;    /* encryption keys; count 0 = plain */

    /* Timings (ms) and fan-outs; gossip_config_default sets LAN values. */
    uint32_t probe_interval_ms;     /* one probe per period (600; memberlist LAN: 1000) */
    uint32_t probe_timeout_ms;      /* direct ack deadline before indirect and TCP probes (300) */
    uint32_t indirect_checks;       /* k members asked to probe for us (3) */
    uint32_t gossip_interval_ms;    /* gossip round period (200) */
    uint32_t gossip_nodes;          /* members per gossip round (3) */
    uint32_t gossip_to_dead_ms;     /* keep gossiping to the dead this long (30000) */
    uint32_t suspicion_mult;        /* min suspicion = mult * log10(n) * probe interval (2) */
    uint32_t suspicion_max_mult;    /* max suspicion = this * min (6) */
    uint32_t suspicion_confirm;     /* independent accusers beyond the first that bring the
                                       suspicion timeout down to the minimum (3) */
    uint32_t retransmit_mult;       /* retransmits = mult * ceil(log10(n + 1)) (4) */
    uint32_t awareness_max;         /* local health multiplier ceiling (8) */
    uint32_t pushpull_interval_ms;  /* anti-entropy period, scaled up past 32 members (30000) */
    uint32_t reconnect_interval_ms; /* retry seeds when alone / dead members after partition
                                       (10000) */
    uint32_t dead_reap_ms;          /* forget dead members after this (3600000) */
    uint32_t left_reap_ms;          /* forget members that left after this (300000) */
    uint32_t health_probers;        /* k: members probing each backend (2) */
    uint32_t health_ttl_ms;         /* a health observation expires after this (30000) */
    uint32_t queue_max;             /* queued changes per class before the oldest drop (8192) */
};

/* Fills LAN defaults: memberlist-like, but probing every 600 ms (300 ms timeout) with a
 * shorter minimum suspicion that needs 3 confirmations (gossip.c says why); the caller then
 * sets id, meta and addresses. */
void gossip_config_default(struct gossip_config *cfg);

/* ---- lifecycle ------------------------------------------------------------------------- */

struct gossip; /* one member of the fleet (opaque) */

/* Creates a member on the given transport and clock (both copied; their contexts must
 * outlive the instance). The callbacks are copied. Nothing is sent until gossip_join or the
 * first gossip_tick. Logs a warning when the keyring is empty (plain mode). Returns NULL with
 * `err` set on a bad configuration. */
struct gossip *gossip_new(const struct gossip_config *cfg, const struct gossip_callbacks *cb,
                          const struct gossip_transport *tr, const struct gossip_clock *clock,
                          char *err, size_t errlen);

/* Frees a member created by gossip_new. Does not say goodbye: call gossip_leave first. */
void gossip_free(struct gossip *g);

/* Feeds bytes received from `from` (a datagram, or a whole stream message when `stream`).
 * Bad input is dropped and counted; it never fails otherwise. */
void gossip_receive(struct gossip *g, const struct gossip_addr *from, const uint8_t *buf,
                    size_t len, bool stream);

/* Runs every timer that is due (probes, suspicion timeouts, gossip rounds, push-pull, reaping
 * and health expiry) and returns the absolute time of the next one. The owner of the clock
 * calls it at (or after) that time and after gossip_receive. */
uint64_t gossip_tick(struct gossip *g);

/* Replaces the keyring of a running member (keys[0] encrypts from the next packet, every key
 * decrypts from the next packet received). Rotate across the fleet in three rounds, each
 * applied on every member before the next starts: install the new key as a secondary, make it
 * primary, remove the old one. Refuses (GOSSIP_EINVAL, `err` says why) more than
 * GOSSIP_KEYS_MAX keys, a key listed twice, and switching between plain (count 0) and
 * encrypted: no order of per-member switches keeps plain and encrypted members talking, so
 * that change needs a restart of every member. The keys are copied. */
int gossip_set_keyring(struct gossip *g, const struct gossip_keyring *kr, char *err, size_t errlen);
/* Copies the running keyring into out (the caller cleanses it when done). */
void gossip_keyring_get(const struct gossip *g, struct gossip_keyring *out);

/* Joins through the seed addresses with a push-pull exchange: the first seed at once, each
 * next one GOSSIP_JOIN_STAGGER_MS (1 s) later while no seed has answered (a seed answers a
 * joiner with its whole member list; asking all at once moved that list once per seed). Our
 * own address among the seeds is skipped. Returns at once; the member list fills as answers
 * arrive. Seeds are remembered and all retried every reconnect interval while we know no other
 * live member. Returns 0 or GOSSIP_EINVAL (no seeds, too many). */
int gossip_join(struct gossip *g, const struct gossip_addr *seeds, size_t count);

/* Announces a graceful leave: the fleet marks us "left" instead of "dead". Sends the notice
 * at once to several members and queues it for gossip; keep the loop running about
 * gossip_interval_ms * 5 before gossip_free so it spreads. Probes stop. */
void gossip_leave(struct gossip *g);

/* ---- the libuv transport ----------------------------------------------------------------- */

/* Creates a member bound to cfg->bind (UDP and TCP on the same port) on `loop`, with the
 * libuv clock and timers: it runs by itself once the loop runs. Returns NULL with `err`
 * set ("bind 0.0.0.0:7946: address already in use"). */
struct gossip *gossip_uv_open(uv_loop_t *loop, const struct gossip_config *cfg,
                              const struct gossip_callbacks *cb, char *err, size_t errlen);
/* Closes the sockets and timers of a member made by gossip_uv_open and frees it once libuv
 * has released the handles (run the loop afterwards; uv_loop_close then succeeds). */
void gossip_uv_close(struct gossip *g);
/* The bound address (useful with port 0). */
int gossip_uv_bound_addr(const struct gossip *g, struct gossip_addr *out);

/* ---- dissemination ----------------------------------------------------------------------- */

/* Spreads an item the node accepted from a client (or produced itself). A queued older
 * version of the same key is replaced. Items too large for a datagram travel over TCP.
 * Returns 0, GOSSIP_EINVAL (empty/long key) or GOSSIP_ETOOBIG (len > GOSSIP_ITEM_MAX). */
int gossip_broadcast(struct gossip *g, const char *key, uint64_t version, const uint8_t *bytes,
                     size_t len);

/* ---- membership views -------------------------------------------------------------------- */

/* Copies up to `cap` members (self included), sorted by id, into out. Returns how many members
 * there are in all (call again with a larger array if that is more than cap); with cap 0,
 * out may be NULL. */
size_t gossip_members(const struct gossip *g, struct gossip_member *out, size_t cap);
/* Copies one member by id. Returns 0 or GOSSIP_ENOTFOUND. */
int gossip_member_get(const struct gossip *g, const char *id, struct gossip_member *out);
/* Members currently alive or suspect (self included): the n of the protocol. */
size_t gossip_live_count(const struct gossip *g);

/* ---- backend health ---------------------------------------------------------------------- */

/* True when this member is one of the k alive members that rendezvous hashing assigns to
 * probe `backend` (any string naming it, the same on every node, e.g. "http://10.0.0.5:80").
 * The proxy probes only the backends for which this says true. */
bool gossip_health_assigned(const struct gossip *g, const char *backend);

/* Copies the ids of the members assigned to `backend` (at most `cap`) into ids; returns how
 * many were written. */
size_t gossip_health_probers(const struct gossip *g, const char *backend,
                             char (*ids)[GOSSIP_ID_MAX + 1], size_t cap);

/* Publishes this member's probe result for `backend`. The entry expires on every node after
 * health_ttl_ms unless republished; an unchanged result is re-gossiped only when half the TTL
 * has passed, so calling this after every probe is cheap. Returns 0, GOSSIP_EINVAL. */
int gossip_health_publish(struct gossip *g, const char *backend, bool up);

/* The fleet verdict on a backend from fresh entries; up/down receive the vote counts. */
enum gossip_health_verdict gossip_health_verdict(const struct gossip *g, const char *backend,
                                                 unsigned *up, unsigned *down);

/* One observer's fresh entry, as enumerated by gossip_health_each (GET /api/v1/backends). */
struct gossip_health_entry {
    char backend[GOSSIP_BACKEND_MAX + 1]; /* backend key */
    char observer[GOSSIP_ID_MAX + 1];     /* member that probed it */
    bool up;                              /* its result */
    uint64_t expires_ms;                  /* our clock when it stops counting */
    uint64_t observed_ms;                 /* our clock when the result last reached us (our
                                             own: when last probed); a remote prober re-gossips
                                             an unchanged result every health_ttl_ms / 2 */
};
typedef int (*gossip_health_visit_fn)(void *ctx, const struct gossip_health_entry *e);
/* Calls fn for every fresh entry, grouped by backend. Stops when fn returns non-zero. */
int gossip_health_each(const struct gossip *g, gossip_health_visit_fn fn, void *ctx);

/* ---- counters (GET /metrics) ------------------------------------------------------------- */

/* Why an inbound packet or message was dropped. */
enum gossip_drop_reason {
    GOSSIP_DROP_MALFORMED = 0, /* undecodable msgpack, wrong types, truncated */
    GOSSIP_DROP_VERSION,       /* unknown wire version */
    GOSSIP_DROP_OVERSIZE,      /* datagram or stream over its limit, field over its limit */
    GOSSIP_DROP_LABEL,         /* another cluster's label */
    GOSSIP_DROP_DECRYPT,       /* no key could authenticate it */
    GOSSIP_DROP_UNENCRYPTED,   /* plain packet while we require encryption */
    GOSSIP_DROP_ENCRYPTED,     /* encrypted packet while we have no key */
    GOSSIP_DROP_UNKNOWN_TYPE,  /* unknown message type */
    GOSSIP_DROP_WRONG_TARGET,  /* a ping meant for another node id (restart on same addr) */
    GOSSIP_DROP_ITEM_REJECTED, /* on_item said invalid */
    GOSSIP_DROP_QUEUE_FULL,    /* a queued change evicted before its retransmits */
    GOSSIP_DROP_SEND_FAILED,   /* the transport refused to send */
    GOSSIP_DROP_TABLE_FULL,    /* member / relay / health table at its bound, or no memory */
    GOSSIP_DROP_INCARNATION,   /* an incarnation far above what the member can have reached */
    GOSSIP_DROP_UNSOLICITED,   /* a push-pull reply or item list for no exchange of ours */
    GOSSIP_DROP_REPLAY,        /* an encrypted packet seen before */
    GOSSIP_DROP_CLOCK,         /* an encrypted packet stamped outside the time window: the
                                  sender's clock is more than GOSSIP_REPLAY_WINDOW_MS off ours */
    GOSSIP_DROP__COUNT
};
const char *gossip_drop_reason_name(enum gossip_drop_reason r); /* "malformed", ... */

struct gossip_stats {
    uint64_t packets_sent, packets_received; /* datagrams */
    uint64_t bytes_sent, bytes_received;     /* datagram bytes, on the wire */
    uint64_t streams_sent, streams_received; /* TCP messages */
    uint64_t stream_bytes_sent, stream_bytes_received;
    uint64_t probes;                    /* probes started */
    uint64_t probes_failed;             /* probes with no ack, direct or indirect */
    uint64_t indirect_probes;           /* indirect probe requests sent */
    uint64_t suspicions;                /* members we started suspecting */
    uint64_t refutations;               /* times we refuted a suspicion about ourselves */
    uint64_t deaths;                    /* members we declared dead (suspicion expired here) */
    uint64_t pushpulls;                 /* push-pull exchanges we started */
    uint64_t items_received;            /* items on_item said were new */
    uint64_t items_sent;                /* item transmissions */
    uint64_t health_restatements;       /* our verdicts restated at once for a newcomer */
    uint64_t drops[GOSSIP_DROP__COUNT]; /* by reason */
    uint32_t awareness;                 /* Lifeguard local health score, 0 = healthy */
    uint32_t members_alive, members_suspect, members_dead, members_left;
    uint32_t queue_membership, queue_data; /* changes waiting for retransmission */
    uint64_t incarnation;                  /* our own */
};
void gossip_stats_get(const struct gossip *g, struct gossip_stats *out);

#endif /* WEBGW_GOSSIP_H */
