/*
 * gossip_int.h - private types and functions shared by the files of gossip/.
 *
 * Not part of the interface (that is gossip.h). Unit tests and the simulator include it to
 * reach the codec and to build large clusters without running thousands of joins.
 */
#ifndef WEBGW_GOSSIP_INT_H
#define WEBGW_GOSSIP_INT_H

#include "gossip/gossip.h"
#include "state/state.h"

#include <msgpack.h>
#include <openssl/evp.h>

struct greplay; /* gossip_replay.c */

/* ---- wire -------------------------------------------------------------------------------- */

#define GOSSIP_WIRE_VERSION                                                                        \
    3                             /* first byte of every packet and stream message (3: binary      \
                                     ids, addresses relative to the member's) */
#define GOSSIP_FLAG_ENCRYPTED 0x1 /* body is time | nonce | AES-256-GCM ciphertext | tag */
#define GOSSIP_TIME_LEN 8         /* sender's wall clock, ms, big-endian (authenticated) */
#define GOSSIP_NONCE_LEN 12
/* Envelopes stamped further than this from our clock, either way, are refused. It must cover
 * the clock offset the fleet tolerates elsewhere (STATE_FUTURE_SKEW_MS, 5 minutes: records and
 * witnesses dated ahead) plus a stream's time in flight (TCP retransmission backoff); at 120 s,
 * a member whose clock was 2 minutes off lost nearly every envelope it sent, and records
 * accepted through its API reached no other member (the soak's setup failure). */
#define GOSSIP_REPLAY_WINDOW_MS 600000
#define GOSSIP_REPLAY_MAX 65536 /* nonces remembered for the replay window */
#define GOSSIP_TAG_LEN 16
#define GOSSIP_MSGS_PER_PACKET 64   /* more messages in one datagram is malformed */
#define GOSSIP_PP_BUCKETS 256       /* push-pull digest buckets */
#define GOSSIP_PP_MBUCKETS_MAX 1024 /* member digest buckets accepted, at most */
#define GOSSIP_PP_MBUCKETS_SENT                                                                    \
    64                               /* member digest buckets sent, at most (8 members each        \
                                        below 512 members) */
#define GOSSIP_SUSPECT_CONFIRM_MAX 8 /* distinct accusers remembered per suspicion */
#define GOSSIP_REFUTE_DIRECT 32      /* members a refutation is sent to directly */
#define GOSSIP_RELAYS_MAX 128        /* indirect probes we relay at once */
#define GOSSIP_TIERS 64              /* retransmit counts tracked by the queue */
#define GOSSIP_JOIN_STAGGER_MS 1000  /* a join asks the next seed after this, if still alone */
#define GOSSIP_EAGER_GAP_MS 20       /* a new item may advance the gossip round this close */
#define GOSSIP_EAGER_QUEUE_MAX 16    /* no early rounds with more changes queued (a flood) */
#define GOSSIP_MEMBER_QUEUE_MAX 1024 /* membership news queued at most (gossip.c) */
#define GOSSIP_INC_AHEAD_S 86400     /* incarnations are unix seconds at start: one day of skew */
#define GOSSIP_INC_STEP_MAX 65536    /* refutations a member may have made since we heard */
#define GOSSIP_PP_OPEN_MAX 32        /* push-pull exchanges in flight, both roles */
#define GOSSIP_PP_OPEN_MS 15000      /* an exchange's answers are accepted this long */
#define GOSSIP_PP_CATCHUP_MS 1000    /* next exchange after one that taught us members */
#define GOSSIP_PP_ENTRIES_MAX (1u << 20) /* (key, version, hash) entries in one reply */
#define GOSSIP_PP_WANTS_MAX 16384        /* keys (or member ids) wanted in one item list */
#define GOSSIP_PP_JOIN_PAGE 512          /* members sampled in a reply to a joiner */
#define GOSSIP_PP_PAGE_NEXT_MS 100       /* a joiner's first pull after the page */

enum gmsg_type {
    GMSG_PING = 1,       /* [1, seq, target_id, from_id]: are you there? */
    GMSG_IPING = 2,      /* [2, seq, target_id, target_addr, nack]: probe it for me */
    GMSG_ACK = 3,        /* [3, seq] */
    GMSG_NACK = 4,       /* [4, seq]: I relayed your probe and heard nothing */
    GMSG_ALIVE = 5,      /* [5, id, inc, addr, name, domain, version, http, https] */
    GMSG_SUSPECT = 6,    /* [6, id, inc, from_id] */
    GMSG_DEAD = 7,       /* [7, id, inc, from_id]; from == id means it left */
    GMSG_ITEM = 8,       /* [8, key, version, bytes] */
    GMSG_HEALTH = 9,     /* [9, observer, backend, seq, up, ttl_ms] */
    GMSG_PP_DIGEST = 16, /* stream: [16, flags, from_id, members, buckets, member buckets] */
    GMSG_PP_REPLY = 17,  /* stream: [17, flags, from_id, members, buckets, entries,
                            member buckets] */
    GMSG_PP_ITEMS = 18,  /* stream: [18, flags, from_id, items, wants, members
                            (, member ids wanted: after a summary reply)] */
};

#define GPP_REPLY 0x1 /* push-pull flag: the receiver must answer */
#define GPP_JOIN 0x2  /* push-pull flag: the initiator is joining (no re-gossip of repairs) */

/* One decoded datagram message. Strings are copied; `bytes` points into the input. */
struct gmsg {
    uint8_t type;                 /* enum gmsg_type */
    uint32_t seq;                 /* ping/iping/ack/nack sequence */
    char id[GOSSIP_ID_MAX + 1];   /* subject: ping target, alive/suspect/dead member,
                                     health observer */
    char from[GOSSIP_ID_MAX + 1]; /* ping sender, suspect/dead accuser */
    struct gossip_addr addr;      /* alive: member address; iping: target address */
    uint64_t incarnation;         /* alive/suspect/dead */
    bool nack;                    /* iping: answer nack on timeout */
    struct gossip_meta meta;      /* alive */
    char key[GOSSIP_KEY_MAX + 1]; /* item key / health backend */
    uint64_t version;             /* item version / health sequence */
    const uint8_t *bytes;         /* item payload (into the input buffer) */
    size_t len;                   /* its length */
    bool up;                      /* health result */
    uint32_t ttl_ms;              /* health time to live */
};

/* A byte buffer the msgpack packer writes into: fixed (datagrams) or growing (streams). */
struct gwbuf {
    uint8_t *data;     /* bytes written */
    size_t len;        /* used */
    size_t cap;        /* allocated */
    size_t max;        /* growth limit; 0: fixed buffer */
    bool overflow;     /* a write did not fit */
    msgpack_packer pk; /* writes through gwbuf_write */
};

void gwbuf_init_fixed(struct gwbuf *w, uint8_t *buf, size_t cap);
int gwbuf_init_dynamic(struct gwbuf *w, size_t initial, size_t max);
void gwbuf_free_dynamic(struct gwbuf *w);

/* Appends one message; on overflow leaves the buffer as it was and returns GOSSIP_ETOOBIG. */
int gproto_encode(struct gwbuf *w, const struct gmsg *m);
/* Decodes the message starting at *off in buf[len] and advances *off. Returns 0, or a
 * negative code with *reason set (malformed, oversize, unknown type). Pure function. */
int gproto_decode(const uint8_t *buf, size_t len, size_t *off, struct gmsg *out,
                  enum gossip_drop_reason *reason);

/* msgpack_unpack_next, refusing (MSGPACK_UNPACK_PARSE_ERROR) a container that claims more
 * elements than there are bytes left, which msgpack-c would allocate for up front. Every
 * unpack of network input goes through it. */
int gproto_unpack(msgpack_unpacked *u, const uint8_t *buf, size_t len, size_t *off);

/* Helpers for stream messages, which gossip_pushpull.c walks as msgpack objects. */
int gproto_str(const msgpack_object *o, char *out, size_t cap, bool allow_empty);
int gproto_u64(const msgpack_object *o, uint64_t *out);
int gproto_addr(const msgpack_object *o, struct gossip_addr *out);
void gproto_pack_addr(msgpack_packer *pk, const struct gossip_addr *a);
/* A witness public key in member metadata: bin 32, or bin 0 for none (all zero). */
int gproto_witness(const msgpack_object *o, uint8_t out[GOSSIP_WITNESS_KEY_LEN]);
void gproto_pack_witness(msgpack_packer *pk, const uint8_t key[GOSSIP_WITNESS_KEY_LEN]);
void gproto_pack_str(msgpack_packer *pk, const char *s);
/* Member metadata: GPROTO_META_FIELDS consecutive array elements (see struct gossip_meta for
 * the layout and the extension map), shared by alive messages and push-pull member lists. */
#define GPROTO_META_FIELDS 6
void gproto_pack_meta(msgpack_packer *pk, const struct gossip_meta *meta,
                      const struct gossip_addr *base);
int gproto_meta(const msgpack_object *f, struct gossip_meta *out, const struct gossip_addr *base);
/* Member ids: 32 lowercase hex digits (what the daemon makes) travel as bin 16, anything else
 * as str. gproto_id takes either and checks it (gproto_id_valid). */
void gproto_pack_id(msgpack_packer *pk, const char *id);
int gproto_id(const msgpack_object *o, char out[GOSSIP_ID_MAX + 1]);
bool gproto_id_valid(const char *id);

/* Envelope: version byte, flags, label, then the (possibly encrypted) body. `kr` holds the
 * derived wire keys (gossip_key_derive with GOSSIP_KDF_GOSSIP), never the raw cluster keys. */
size_t genv_overhead(const struct gossip_keyring *kr, const char *label);
/* Seals body[len] into out[cap], stamped with now_ms (wall clock). Returns the envelope length
 * or a negative code. */
int genv_seal(EVP_CIPHER_CTX *ctx, const struct gossip_keyring *kr, const char *label,
              uint64_t now_ms, const uint8_t *body, size_t len, uint8_t *out, size_t cap);
/* Opens in[len] in place: on success *body points into `in` (decrypted there) and its length is
 * returned; else a negative code and *reason. With a replay window (`replay` not NULL), an
 * encrypted envelope stamped outside now_ms +- GOSSIP_REPLAY_WINDOW_MS (GOSSIP_DROP_CLOCK) or
 * with a nonce seen before (GOSSIP_DROP_REPLAY) is refused before any decryption, and an
 * authenticated one is
 * recorded. Pure apart from the cipher context and the window. */
int genv_open(EVP_CIPHER_CTX *ctx, const struct gossip_keyring *kr, const char *label,
              struct greplay *replay, uint64_t now_ms, uint8_t *in, size_t len, uint8_t **body,
              enum gossip_drop_reason *reason);

/* The wire keyring for a raw one: each key through gossip_key_derive(GOSSIP_KDF_GOSSIP), same
 * order (gossip_keyring.c). Returns 0 or GOSSIP_ECRYPTO. */
int gossip_keyring_derive(const struct gossip_keyring *raw, struct gossip_keyring *wire);

/* ---- replay window (gossip_replay.c) ------------------------------------------------------ */

struct greplay *greplay_new(void);
void greplay_free(struct greplay *r);
/* 0 when an envelope stamped ts_ms with this nonce may be opened at now_ms; GOSSIP_ERANGE when
 * ts_ms is outside now_ms +- GOSSIP_REPLAY_WINDOW_MS (the sender's clock is off ours, or a late
 * capture); GOSSIP_EINVAL when its nonce was seen or forgotten. Records nothing. */
int greplay_check(const struct greplay *r, uint64_t now_ms, uint64_t ts_ms,
                  const uint8_t nonce[GOSSIP_NONCE_LEN]);
/* Remembers an authenticated envelope's nonce. */
void greplay_record(struct greplay *r, uint64_t now_ms, uint64_t ts_ms,
                    const uint8_t nonce[GOSSIP_NONCE_LEN]);

/* ---- small utilities --------------------------------------------------------------------- */

/* Unkeyed FNV-1a + mixer: only for values every member must compute alike (push-pull bucket
 * hashes, rendezvous scores), never to place remote keys in a table; tables use state_siphash
 * under their own random key. */
uint64_t ghash64(const void *data, size_t len, uint64_t seed);
uint64_t grand_next(uint64_t *state);              /* splitmix64 */
uint32_t grand_below(uint64_t *state, uint32_t n); /* uniform in [0, n) */

/* ---- dissemination queue (gossip_queue.c) ---------------------------------------------- */

struct gq_entry {
    struct gq_entry *prev, *next; /* tier list (newest first) */
    struct state_hash_node hnode; /* in gqueue.index, by key */
    uint32_t transmits;           /* times sent so far = its tier */
    uint32_t round;               /* packet it was last picked for (no repeats per packet) */
    uint64_t version;             /* an older version never replaces a newer one */
    size_t len;                   /* message bytes */
    char *key;                    /* points after msg */
    uint8_t msg[];                /* encoded message, then the key */
};

struct gqueue {
    struct gq_entry *tiers[GOSSIP_TIERS]; /* heads, by transmit count */
    struct state_hash_table index;        /* entries by key (state's keyed table) */
    size_t count;                         /* entries queued */
    size_t max;                           /* bound before eviction */
    uint32_t round;                       /* current packet stamp */
    uint64_t evicted;                     /* entries dropped before their retransmits */
};

int gq_init(struct gqueue *q, size_t max);
void gq_destroy(struct gqueue *q);
/* Queues msg under key, replacing an entry for the same key unless it holds a newer version.
 * Returns 0, or GOSSIP_ENOMEM. */
int gq_put(struct gqueue *q, const char *key, uint64_t version, const uint8_t *msg, size_t len);
/* Removes the entry for key, if any. */
void gq_remove(struct gqueue *q, const char *key);
/* Starts a new packet: entries picked from now on are stamped with a fresh round. */
void gq_begin(struct gqueue *q);
/* The least-transmitted (then newest) entry below `limit` transmits that fits in `room` bytes
 * and was not picked this round; NULL if none. */
struct gq_entry *gq_pick(struct gqueue *q, uint32_t limit, size_t room);
/* Counts a transmission of a picked entry; frees it when it reached `limit`. */
void gq_sent(struct gqueue *q, struct gq_entry *e, uint32_t limit);
/* Counts n transmissions at once (one packet sent to n members). */
void gq_sent_n(struct gqueue *q, struct gq_entry *e, uint32_t limit, uint32_t n);

/* ---- members ----------------------------------------------------------------------------- */

/* Lifeguard suspicion state, allocated while a member is SUSPECT. */
struct gsusp {
    uint64_t start_ms;    /* when we started suspecting */
    uint64_t min_ms;      /* shortest timeout (all confirmations in) */
    uint64_t max_ms;      /* initial timeout */
    uint64_t deadline_ms; /* declared dead at this time */
    uint32_t k;           /* confirmations that bring the timeout down to min */
    uint32_t n;           /* distinct accusers seen (the first is not a confirmation) */
    bool probed;          /* we probed it ourselves since the suspicion started */
    char from[GOSSIP_SUSPECT_CONFIRM_MAX][GOSSIP_ID_MAX + 1]; /* who accused */
};

/* One member as we know it, 8 bytes: a member holds one per member of the fleet, so the
 * simulator's members hold n squared of them (10,000 members: 10^8 entries), most of them in
 * chunks they share (struct gchunk). The table is an array of
 * these indexed by the id's shared handle (gossip_share.c), in chunks that never move, so a
 * pointer to an entry stays valid while the member is known (but for the simulator's shared
 * chunks, which a write copies first: struct gchunk). What every member of a converged
 * fleet agrees on (id, incarnation, address, metadata) is one shared version (struct gver);
 * the entry adds what is ours alone: the state and when it last changed. The suspicion state
 * lives beside the suspects list (gm_susp). */
#define GMEMBER_TICK_MS 100 /* unit of `since`: 13 years of uptime in 32 bits */
#define GMEMBER_CHUNK 1024  /* entries a chunk of the table */
struct gmember {
    uint32_t ver : 30;  /* its version's handle (GSHARE_VERS); 0: the slot is free */
    uint32_t state : 2; /* enum gossip_member_state: alive / suspect / dead / left */
    uint32_t since;     /* when the state last changed: GMEMBER_TICK_MS after start_ms */
};

/* A chunk of a member table, copy-on-write: the simulator's tables (gossip_debug_share_table)
 * point at the chunks of one converged table, so that n members do not hold n squared entries
 * (50,000 members: 20 GB). A chunk pointed at by more than one table is never written: a
 * table that writes an entry first takes a private copy (gossip_member_w). It holds one
 * reference to the version of each entry in use, dropped when its last table lets go. A
 * daemon's table shares nothing (g->shared false): a write costs one branch more. The table
 * points at the entries (g->slots[c] is e), the header sits just before them. */
struct gchunk {
    _Atomic uint32_t refs; /* tables pointing at it */
    uint32_t pad;
    struct gmember e[GMEMBER_CHUNK];
};
static inline struct gchunk *gchunk_of(struct gmember *e)
{
    return (struct gchunk *)(void *)((char *)e - offsetof(struct gchunk, e));
}

/* A member's version: immutable, stored once per process (gossip_share.c), so canonical bytes
 * (pad zero). */
#define GVER_ID_HASH_SEED 0x3d /* seed of gver.id_hash (push-pull member buckets) */
struct gver {
    uint64_t incarnation; /* its incarnation */
    uint64_t id_hash;     /* ghash64 of its id with GVER_ID_HASH_SEED, computed once */
    uint32_t sid;         /* its id's handle (GSHARE_IDS): its place in every table */
    uint32_t addr;        /* its gossip address's handle (GSHARE_BLOBS) */
    uint32_t meta;        /* its metadata's handle (GSHARE_BLOBS); 0 when empty */
    uint32_t pad;         /* zero */
};

struct grelay {
    bool used;                    /* slot in use */
    uint32_t local_seq;           /* seq of our ping to the target */
    uint32_t orig_seq;            /* the requester's seq */
    struct gossip_addr requester; /* who asked */
    bool nack;                    /* a nack is still to be sent at nack_ms */
    uint64_t nack_ms;             /* send it then if still silent (half the deadline) */
    uint64_t deadline_ms;         /* give up then (a later ack is not passed on) */
};

struct ghealth; /* gossip_health.c */

/* A push-pull exchange in flight. Replies and item lists are accepted only against one of
 * these, so nobody can push member lists or items at us outside an exchange we are part of. */
enum gpp_stage {
    GPP_FREE = 0,    /* slot unused */
    GPP_DIGEST_SENT, /* we started it: a REPLY (or nothing) may come */
    GPP_ITEMS_SENT,  /* we started it and asked for items: the answering ITEMS may come */
    GPP_REPLY_SENT,  /* we answered a digest: the initiator's ITEMS may come */
};
struct gpp_open {
    enum gpp_stage stage;    /* what we wait for */
    struct gossip_addr peer; /* whom */
    uint64_t expires_ms;     /* forgotten then */
};

struct gossip {
    struct gossip_config cfg;   /* copied configuration */
    struct gossip_callbacks cb; /* node callbacks */
    struct gossip_transport tr; /* how we send */
    struct gossip_clock clock;  /* how we tell time */
    uint64_t rng;               /* PRNG state */
    EVP_CIPHER_CTX *cipher;     /* reused for every seal/open */
    struct gossip_keyring wire; /* keys derived from cfg.keyring (HKDF): what packets use */
    struct greplay *replay;     /* nonces of recent encrypted envelopes */
    uint64_t clock_warned_ms;   /* when we last warned of a member's clock (monotonic) */
    size_t udp_body_max;        /* datagram room after the envelope */

    struct gmember *self;      /* our own entry */
    struct gmember **slots;    /* the member table: chunks of GMEMBER_CHUNK entries, by sid */
    uint32_t *slot_used;       /* members held in each chunk (a random pick walks these) */
    size_t nslots;             /* chunks (and counts) allocated */
    bool shared;               /* chunks may be shared with other tables: writes un-share */
    size_t nmembers;           /* members held, self included */
    struct gmember **suspects; /* members in SUSPECT */
    struct gsusp **susps;      /* their suspicion state, same positions */
    size_t nsuspects, suspects_cap;
    struct gmember **gone; /* members DEAD or LEFT, reaped later */
    size_t ngone, gone_cap;
    uint32_t nlive; /* alive + suspect, self included */

    struct {
        uint64_t key[4]; /* this round's permutation of the table's places (gossip_probe.c) */
        uint32_t bits;   /* it permutes 2^bits places (even), walked up to range */
        uint32_t range;  /* places of the table when the round started */
        uint32_t pos;    /* next position */
        uint32_t *late;  /* sids added this round behind pos or past range */
        size_t nlate, late_cap;
    } order; /* the shuffled round-robin probe order */

    struct {
        bool active;                    /* a probe is in flight */
        bool acked;                     /* ack received (direct or relayed) */
        bool retry_sent;                /* the early direct retry went out */
        bool indirect_sent;             /* indirect probes went out */
        bool second_sent;               /* the second look went out (gossip_probe_second) */
        uint32_t seq;                   /* expected ack */
        char target[GOSSIP_ID_MAX + 1]; /* probed member */
        uint64_t target_inc;            /* its incarnation when probed */
        uint64_t retry_at;              /* early direct retry if still silent */
        uint64_t timeout_at;            /* direct deadline */
        uint64_t second_at;             /* when to take the second look if still silent */
        uint32_t nacks_expected, nacks; /* Lifeguard: missing nacks mean we are slow */
    } probe;
    uint32_t seq;                            /* last sequence number used */
    uint32_t awareness;                      /* Lifeguard local health score */
    struct grelay relays[GOSSIP_RELAYS_MAX]; /* indirect probes we run for others */

    struct gqueue q_members; /* alive/suspect/dead messages */
    struct gqueue q_health;  /* backend health entries */
    struct gqueue q_data;    /* items */
    struct gqueue q_big;     /* items too big for a datagram (sent over TCP) */

    struct ghealth *health;                      /* backend health table */
    struct gpp_open pp_open[GOSSIP_PP_OPEN_MAX]; /* push-pull exchanges in flight */
    uint64_t wall_base_s;                        /* cfg.incarnation: unix seconds at start */
    uint64_t start_ms;                           /* our clock at start */

    struct gossip_addr seeds[GOSSIP_SEEDS_MAX]; /* join addresses, retried when alone */
    size_t nseeds;
    size_t join_next;    /* next seed gossip_join contacts if we are still alone */
    uint64_t join_at_ms; /* when (GOSSIP_JOIN_STAGGER_MS after the previous one) */
    bool leaving;        /* gossip_leave called */

    uint64_t probe_next;        /* next protocol period */
    uint64_t gossip_next;       /* next gossip round */
    uint64_t last_round_ms;     /* when the last gossip round ran */
    uint64_t pushpull_next;     /* next anti-entropy exchange */
    uint64_t pp_catchup_ms;     /* gap to the next exchange while catching up (0: not) */
    uint64_t reconnect_next;    /* next seed / dead-member retry */
    uint64_t housekeeping_next; /* reaping and health expiry */
    uint64_t unknown_pp_next;   /* rate limit for push-pull with unknown pingers */
    uint64_t version_log_next;  /* rate limit for the "other wire version" warning */

    struct gossip_stats stats; /* counters */
    void *uv;                  /* gossip_uv.c state when opened with gossip_uv_open */
};

/* gossip.c */
uint64_t gossip_now(const struct gossip *g);
uint64_t gossip_wall(const struct gossip *g); /* unix ms (the clock's wall_ms, else now_ms) */
void gossip_logf(const struct gossip *g, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct gmember *gossip_find(const struct gossip *g, const char *id);
void gossip_drop(struct gossip *g, enum gossip_drop_reason r);
uint32_t gossip_retransmit_limit(const struct gossip *g);
/* Sends a datagram made of the given messages plus piggy-backed changes. */
void gossip_send_msgs(struct gossip *g, const struct gossip_addr *to, const struct gmsg *msgs,
                      size_t n);
/* Seals and sends a stream message; takes ownership of nothing. */
void gossip_send_stream(struct gossip *g, const struct gossip_addr *to, const uint8_t *body,
                        size_t len);
/* Queues a data message (item / health) for dissemination under key. */
void gossip_queue_data(struct gossip *g, const char *qkey, uint64_t version, const struct gmsg *m);
/* Membership state transitions, shared with push-pull. `rebroadcast` false for entries that
 * only a push-pull peer told us (it already knows). */
void gossip_on_alive(struct gossip *g, const struct gmsg *m, bool rebroadcast);
void gossip_on_suspect(struct gossip *g, const char *id, uint64_t inc, const char *from);
void gossip_on_dead(struct gossip *g, const char *id, uint64_t inc, const char *from);
/* Hands an item to the node; rebroadcasts it when new and `regossip`. */
void gossip_on_item(struct gossip *g, const char *key, uint64_t version, const uint8_t *bytes,
                    size_t len, bool regossip);
/* Copies a member out into the public snapshot form. */
void gossip_member_fill(const struct gossip *g, const struct gmember *m, struct gossip_member *out);
/* Test/simulator hook: adds an alive member without any message (pre-built clusters). */
int gossip_debug_add_member(struct gossip *g, const char *id, const struct gossip_addr *addr,
                            uint64_t incarnation);

/* Simulator hook: g, which holds only itself, takes src's member table by reference to its
 * chunks (copy-on-write: gossip_member_w), with its own entry as g holds it (its chunk is
 * copied if that entry differs). src must hold g's member, no suspect nor dead or departed
 * member, and the two must have started at the same time (entries count time from the
 * start); g must not have started a probe round. 0 or GOSSIP_EINVAL / GOSSIP_ENOMEM. */
int gossip_debug_share_table(struct gossip *g, struct gossip *src);

/* Test hook: seals body[len] into out[cap] exactly as g seals what it sends (its keys, its
 * label, a fresh nonce). Returns the envelope length or a negative code. Tests use it to play
 * a fleet member that holds the key and turned hostile. */
int gossip_debug_seal(struct gossip *g, const uint8_t *body, size_t len, uint8_t *out, size_t cap);

/* Handles one decoded datagram message (also used for pings/acks that came over a stream). */
void gossip_dispatch(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m);

/* gossip_share.c: member data stored once per process, by handle (1 and up; 0: none).
 * gshare_ref stores data[len] (or finds it) and takes a reference: its handle, 0 when out of
 * memory; gshare_unref drops one (0: nothing); gshare_lookup finds a handle without taking a
 * reference (0: not stored); gshare_data reads a held handle's bytes (NULL for 0) without a
 * lock; gshare_stored counts the distinct blobs held. Ids have their own dense numbering. */
enum { GSHARE_IDS = 0, GSHARE_BLOBS = 1, GSHARE_VERS = 2, GSHARE_KINDS = 3 };
uint32_t gshare_ref(int kind, const void *data, size_t len);
void gshare_unref(int kind, uint32_t handle);
uint32_t gshare_lookup(int kind, const void *data, size_t len);
const void *gshare_data(int kind, uint32_t handle);
size_t gshare_stored(void);
/* Member versions (GSHARE_VERS): gshare_ver_ref stores v (its parts held by the caller) or
 * finds it and takes a reference (0: out of memory); a stored version holds one reference to
 * each of its parts, dropped with its last reference (gshare_ver_unref). */
uint32_t gshare_ver_ref(const struct gver *v);
void gshare_ver_unref(uint32_t handle);
/* One more reference to the version of each of n entries in use (a copied table chunk). */
void gshare_ver_hold(const struct gmember *e, size_t n);
static inline const struct gver *gshare_ver(uint32_t handle)
{
    return gshare_data(GSHARE_VERS, handle);
}

/* A member's version, id handle, incarnation, id, address, metadata (NULL: empty), state
 * change time, suspicion (NULL unless SUSPECT) and the member at position i of g->members. */
static inline const struct gver *gm_ver(const struct gmember *m)
{
    return gshare_ver(m->ver);
}
static inline uint32_t gm_sid(const struct gmember *m)
{
    return gm_ver(m)->sid;
}
static inline uint64_t gm_inc(const struct gmember *m)
{
    return gm_ver(m)->incarnation;
}
static inline const char *gm_id(const struct gmember *m)
{
    return gshare_data(GSHARE_IDS, gm_sid(m));
}
static inline const struct gossip_addr *gm_addr(const struct gmember *m)
{
    return gshare_data(GSHARE_BLOBS, gm_ver(m)->addr);
}
static inline const struct gossip_meta *gm_meta(const struct gmember *m)
{
    return gshare_data(GSHARE_BLOBS, gm_ver(m)->meta);
}
static inline uint64_t gm_since(const struct gossip *g, const struct gmember *m)
{
    return g->start_ms + (uint64_t)m->since * GMEMBER_TICK_MS;
}
struct gsusp *gm_susp(const struct gossip *g, const struct gmember *m);
static inline struct gmember *gossip_slot(const struct gossip *g, uint32_t sid)
{
    struct gmember *m;

    if (sid / GMEMBER_CHUNK >= g->nslots || g->slots[sid / GMEMBER_CHUNK] == NULL)
        return NULL;
    m = &g->slots[sid / GMEMBER_CHUNK][sid % GMEMBER_CHUNK];
    return m->ver != 0 ? m : NULL;
}
/* gossip_members.c: sid's entry in a chunk of g's own, copied first if other tables share it
 * (NULL: out of memory); g->self, suspects[] and gone[] move to the copy. */
struct gmember *gossip_unshare(struct gossip *g, uint32_t sid);
/* The entry of m (an entry of g's table) that g may write: every store into an entry goes
 * through it. m itself unless its chunk is shared; then m's place in g's private copy of the
 * chunk, and any other pointer into the old chunk is stale (it reads the same values until
 * written, but it is not g's entry): callers keep the returned pointer (NULL: out of memory,
 * nothing written). */
static inline struct gmember *gossip_member_w(struct gossip *g, struct gmember *m)
{
    return g->shared ? gossip_unshare(g, gm_sid(m)) : m;
}
/* The member with the next higher id handle than *sid, or NULL when none; *sid becomes its
 * handle. Start from *sid = 0 (no member has it): the whole table in handle order. */
struct gmember *gossip_member_next(const struct gossip *g, uint32_t *sid);

/* gossip_members.c: the member table and its state transitions */
int gossip_ptr_push(struct gmember ***arr, size_t *n, size_t *cap, struct gmember *m);
int gossip_sid_push(uint32_t **arr, size_t *n, size_t *cap, uint32_t sid);
/* Writers of an entry take the caller's pointer to it and move it to the entry written
 * (gossip_member_w: g's private copy when the chunk was shared). */
void gossip_member_set_meta(struct gossip *g, struct gmember **mp, const struct gossip_meta *meta);
/* Moves *mp to incarnation inc (false: out of memory, nothing changed). */
bool gossip_member_set_inc(struct gossip *g, struct gmember **mp, uint64_t inc);
/* A new address for *mp (stored shared); false when out of memory (the old one is kept). */
bool gossip_member_set_addr(struct gossip *g, struct gmember **mp, const struct gossip_addr *addr);
bool gossip_member_free(struct gossip *g, struct gmember *m);
/* A table lets go of a chunk of entries (g->slots[c]); the last frees it (NULL: nothing). */
void gossip_chunk_release(struct gmember *e);
struct gmember *gossip_member_add(struct gossip *g, const char *id, const struct gossip_addr *addr,
                                  uint64_t inc);
void gossip_member_reap(struct gossip *g, struct gmember *m);
bool gossip_is_live(enum gossip_member_state s);
void gossip_alive_msg(const struct gmember *m, struct gmsg *out);
/* Advances the next gossip round when a change is queued (at most one early round per gap). */
void gossip_eager(struct gossip *g);
void gossip_queue_member(struct gossip *g, const struct gmsg *m);

/* gossip_probe.c: the probe cycle, relaying, TCP fallback, Lifeguard local health */
uint64_t gossip_scale(const struct gossip *g, uint64_t ms); /* ms scaled by local health */
void gossip_awareness(struct gossip *g, int delta);
typedef bool (*gossip_pick_fn)(const struct gossip *g, const struct gmember *m, const void *arg);
size_t gossip_random_members(struct gossip *g, size_t k, gossip_pick_fn fn, const void *arg,
                             struct gmember **out);
/* A member just added: the probe order takes it in this round (gossip_probe.c). */
void gossip_order_add(struct gossip *g, uint32_t sid);
/* The member to probe next: an unprobed suspect, else the next live member of this round's
 * shuffled order (NULL: nobody to probe). */
struct gmember *gossip_probe_target(struct gossip *g);
bool gossip_pick_gossip(const struct gossip *g, const struct gmember *m, const void *arg);
bool gossip_pick_alive(const struct gossip *g, const struct gmember *m, const void *arg);
void gossip_probe_start(struct gossip *g, uint64_t now);
void gossip_probe_retry(struct gossip *g);
void gossip_probe_indirect(struct gossip *g);
void gossip_probe_second(struct gossip *g);
void gossip_probe_conclude(struct gossip *g);
void gossip_probe_soon(struct gossip *g, struct gmember *m);
void gossip_reply(struct gossip *g, const struct gossip_addr *to, uint8_t type, uint32_t seq);
void gossip_on_iping(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m);
void gossip_on_ack(struct gossip *g, uint32_t seq);
void gossip_stream_msgs(struct gossip *g, const struct gossip_addr *to, const struct gmsg *msgs,
                        size_t n);
void gossip_stream_msg(struct gossip *g, const struct gossip_addr *to, const struct gmsg *m);

/* gossip_probe.c: handles a ping or ack that came over a stream (the TCP probe fallback). */
void gossip_stream_datagram_msg(struct gossip *g, const struct gossip_addr *from,
                                const uint8_t *body, size_t len);

/* gossip_pushpull.c */
void gossip_pushpull_start(struct gossip *g, const struct gossip_addr *to, bool join);
/* Test and fuzz hook: makes g wait for `stage` from `peer`, as if its exchange were under way. */
void gossip_pushpull_expect(struct gossip *g, const struct gossip_addr *peer, enum gpp_stage stage);
void gossip_pushpull_receive(struct gossip *g, const struct gossip_addr *from, const uint8_t *body,
                             size_t len);
/* Sends items too large for a datagram over a stream. */
void gossip_send_big_item(struct gossip *g, const struct gossip_addr *to, const uint8_t *msg,
                          size_t len);

/* gossip_health.c */
struct ghealth *ghealth_new(void);
void ghealth_free(struct ghealth *h);
void ghealth_on_msg(struct gossip *g, const struct gmsg *m);
/* Drops expired entries, reporting verdict changes (and runs a deferred restatement). */
void ghealth_expire(struct gossip *g, uint64_t now);
/* A member joined or restarted: our own results are restated for a quarter TTL, and with
 * `new_life` (new, back from dead or left, restarted) all of them at once too, at most once a
 * second. */
void ghealth_member_joined(struct gossip *g, bool new_life);

#endif /* WEBGW_GOSSIP_INT_H */
