/*
 * state.h - the state layer's public interface.
 *
 * webgw replicates one kind of data: signed name records. This header is all the rest of the
 * program sees of them:
 *
 *   records   the four record kinds (reserve, proxy, fqdn, release), their canonical msgpack
 *             encoding, Ed25519 signatures and owner ids, and validation with one message per
 *             rule (record.c, record_build.c, record_codec.c, record_sign.c, record_validate.c,
 *             backend_addr.c)
 *   names     the merged set of records: a join-semilattice, so every node that has seen the
 *             same records holds the same state whatever the order, delay or duplication of
 *             arrivals (name_table.c, name_merge.c)
 *   store     the durable append-only log with checksums and snapshots (store_log.c)
 *   routes    the RCU-protected table that proxy workers read without locks (route_table.c)
 *
 * Conventions: functions that can fail return 0 on success and a negative STATE_E* code on
 * failure, writing a human message (without trailing newline) into the caller's `err` buffer
 * when one is given. Decoders are pure functions over bytes: no allocation is kept, no global
 * state is read, every length is checked against the limits below.
 */
#ifndef WEBGW_STATE_H
#define WEBGW_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits: every external input is bounded ------------------------------------------- */

#define STATE_NAME_MIN 3            /* shortest name label */
#define STATE_NAME_MAX 63           /* longest name label (one DNS label) */
#define STATE_FQDN_MAX 253          /* longest custom domain */
#define STATE_BACKENDS_MAX 16       /* backends per record */
#define STATE_RECORD_MAX_BYTES 2048 /* largest encoded signed record */
#define STATE_OWNER_LEN 32          /* Ed25519 public key bytes */
#define STATE_OWNER_HEX_LEN 64      /* owner id as printed: lowercase hex */
#define STATE_SIGNATURE_LEN 64      /* Ed25519 signature bytes */
#define STATE_FUTURE_SKEW_MS 300000 /* a record may be dated at most 5 min ahead of us */
#define STATE_VERSION_MAX                                                                          \
    (1ULL << 53)                    /* highest version: exact in JSON numbers and doubles,         \
                                       and centuries of one version per microsecond, while an      \
                                       owner who jumps to 2^64-1 could never update again */
#define STATE_CLAIMS_PER_NAME_MAX 8 /* distinct owners tracked per name (abuse bound) */
#define STATE_ERR_MAX 256           /* size of an error message buffer */
#define STATE_WITNESSES_MAX 16      /* witnesses kept per owner and key (one per witness key) */
#define STATE_WITNESS_FAULTS_MAX 8  /* largest f (--witness-faults); f + 1 <= witnesses kept */
#define STATE_WITNESS_MAX_BYTES 160 /* largest encoded witness */
#define STATE_BUNDLE_MAX_BYTES 4096 /* largest encoded bundle: a record and its witnesses */
#define STATE_TOMBSTONE_TTL_MS_DEFAULT (7ULL * 24 * 3600 * 1000) /* tombstone retention */

/* ---- error codes ----------------------------------------------------------------------- */

enum state_error {
    STATE_OK = 0,
    STATE_EINVAL = -1,     /* malformed or invalid record: answer 400 */
    STATE_ESIGNATURE = -2, /* bad signature: 403 */
    STATE_ENOTOWNER = -3,  /* signed by someone who does not hold the name: 403 */
    STATE_ETAKEN = -4,     /* name held by another owner: 409 */
    STATE_ESTALE = -5,     /* not newer than what we have: nothing changed (idempotent) */
    STATE_ETOOBIG = -6,    /* over a size limit: 413 */
    STATE_EIO = -7,        /* disk or system failure: 500 */
    STATE_ENOMEM = -8,     /* allocation failure: 500 */
    STATE_ENOTFOUND = -9,  /* no such name/key: 404 */
    STATE_EQUOTA = -10,    /* the owner has its limit of names: 403 */
    STATE_EFULL = -11,     /* the fleet has its limit of records: 429 */
};

/* ---- records --------------------------------------------------------------------------- */

enum state_record_kind {
    STATE_RECORD_RESERVE = 1, /* name reservation: claims `name` for `owner` */
    STATE_RECORD_PROXY = 2,   /* name proxy: backends for NAME.DOMAIN */
    STATE_RECORD_FQDN = 3,    /* fqdn proxy: backends for a custom domain */
    STATE_RECORD_RELEASE = 4, /* release: tombstone for a name or fqdn */
};

/* One backend address: an IP literal and a port; never a host name. */
struct state_backend {
    uint8_t family;   /* 4 or 6 */
    uint8_t addr[16]; /* network byte order; IPv4 in the first 4 bytes */
    uint16_t port;    /* host byte order, 1..65535 */
};

/* A decoded record. `name` is the key: a label for reserve/proxy, a domain for fqdn, either
 * for release. Records of one owner for one key are ordered by `version`. `reserved_at_ms` is
 * the owner's claim time on the key: conflicting claims by different owners resolve to the
 * earliest (reserved_at_ms, owner) everywhere. */
struct state_record {
    enum state_record_kind kind;                       /* what this record says */
    char name[STATE_FQDN_MAX + 1];                     /* lowercase key, NUL-terminated */
    uint8_t owner[STATE_OWNER_LEN];                    /* Ed25519 public key of the signer */
    uint64_t version;                                  /* per owner and key, only goes up */
    uint64_t reserved_at_ms;                           /* claim time, ms since the Unix epoch */
    uint64_t issued_at_ms;                             /* when this version was signed */
    bool tls_passthrough;                              /* proxy/fqdn: splice TLS by SNI */
    uint8_t backend_count;                             /* proxy/fqdn: 1..16; else 0 */
    struct state_backend backends[STATE_BACKENDS_MAX]; /* proxy/fqdn backends */
    uint8_t signature[STATE_SIGNATURE_LEN];            /* over the canonical body */
};

const char *state_record_kind_name(enum state_record_kind kind); /* "reserve", "proxy", ... */

/* Canonical encoding: exactly one byte sequence per record. state_record_encode writes the
 * signed record (body and signature) into buf[cap]; returns the length, or a negative
 * STATE_E* code (STATE_ETOOBIG when cap is short). state_record_encode_body writes only the
 * bytes the signature covers. */
int state_record_encode(const struct state_record *rec, uint8_t *buf, size_t cap);
int state_record_encode_body(const struct state_record *rec, uint8_t *buf, size_t cap);

/* Decodes a signed record from exactly `len` bytes. Rejects truncated, trailing, oversized,
 * unknown-version and non-canonical input. Does not verify the signature nor validate
 * semantics (see state_record_verify, state_record_validate). */
int state_record_decode(const uint8_t *buf, size_t len, struct state_record *out, char *err,
                        size_t errlen);

/* Builds an unsigned record from what a user typed (CLI, API, tests): the key normalized as a
 * name (reserve, proxy; release of a key without a dot) or a domain (fqdn; release of a key
 * with a dot), backends parsed in the form tls_passthrough asks for (state_backend_parse),
 * and version, reserved_at_ms and issued_at_ms all set to now_ms (wall-clock milliseconds as
 * the version only go up for one signer without keeping state). Checks syntax and the
 * kind/backend-count rules only; the node applies its policy with state_record_validate.
 * A record for a name the signer already holds must keep its claim time: the caller copies
 * the held record's reserved_at_ms before signing, or the claim counts as a new, later one. */
int state_record_build(struct state_record *rec, enum state_record_kind kind, const char *key,
                       const char *const *backends, size_t backend_count, bool tls_passthrough,
                       uint64_t now_ms, char *err, size_t errlen);

/* ---- keys and signatures (OpenSSL EVP, Ed25519) ----------------------------------------- */

struct state_key; /* an Ed25519 private key (opaque) */

/* Generates a key and writes it to `path` as PEM (PKCS#8), mode 0600, refusing to overwrite
 * an existing file. Returns the key, or NULL with `err` set. */
struct state_key *state_key_generate(const char *path, char *err, size_t errlen);
struct state_key *state_key_load(const char *path, char *err, size_t errlen);
void state_key_free(struct state_key *key);
void state_key_owner(const struct state_key *key, uint8_t owner[STATE_OWNER_LEN]);

/* Sets rec->owner from the key and fills rec->signature. */
int state_record_sign(struct state_record *rec, const struct state_key *key, char *err,
                      size_t errlen);
/* 0 if rec->signature verifies against rec->owner, else STATE_ESIGNATURE. */
int state_record_verify(const struct state_record *rec, char *err, size_t errlen);

/* Ed25519 over msg[len] with `key` (records, witnesses, the node's signed
 * traffic summaries); callers put their own domain string first in msg so that no signature
 * of one kind verifies as another; 0 or a negative code with err set. */
int state_sign_bytes(const struct state_key *key, const uint8_t *msg, size_t len,
                     uint8_t sig[STATE_SIGNATURE_LEN], char *err, size_t errlen);
/* 0 when sig verifies over msg[len] for the public key pub, else STATE_ESIGNATURE with
 * "signature does not verify for WHO HEX" (who: "owner", "witness"). */
int state_verify_bytes(const char *who, const uint8_t pub[STATE_OWNER_LEN], const uint8_t *msg,
                       size_t len, const uint8_t sig[STATE_SIGNATURE_LEN], char *err,
                       size_t errlen);

/* Owner id, printed one way everywhere: 64 lowercase hex digits. `out` holds 65 bytes. */
void state_owner_format(const uint8_t owner[STATE_OWNER_LEN], char out[STATE_OWNER_HEX_LEN + 1]);
int state_owner_parse(const char *text, uint8_t owner[STATE_OWNER_LEN]);

/* ---- witnesses: claim times nobody can forge alone ------------------------------------- */

/* A gateway's countersignature of an owner's record on a key: "I, gateway `key`, saw this
 * owner's claim (or release) at my clock's `time_ms`". It signs the key, the owner, the claim
 * time the owner gave (`claim_at_ms`, the record's reserved_at_ms), whether the record was a
 * release, and the version it saw, under the domain "webgw-witness-v1". A claim's effective
 * time is taken from its witnesses (name_merge.c explains the rule). */
struct state_witness {
    uint8_t key[STATE_OWNER_LEN];           /* the witnessing gateway's Ed25519 public key */
    uint64_t version;                       /* record version it saw */
    uint64_t claim_at_ms;                   /* the claim time it saw (record reserved_at_ms) */
    bool released;                          /* it saw a release */
    uint64_t time_ms;                       /* its own wall clock then */
    uint8_t signature[STATE_SIGNATURE_LEN]; /* over the fields above, the key and the owner */
};

/* Signs a witness of `rec` (its key, owner, version, claim time, kind) at time_ms with the
 * gateway key `key`. Returns 0 or a negative code with err set. */
int state_witness_sign(struct state_witness *w, const struct state_key *key,
                       const struct state_record *rec, uint64_t time_ms, char *err, size_t errlen);
/* 0 when w's signature verifies for the claim of `owner` on `name`, else STATE_ESIGNATURE. */
int state_witness_verify(const struct state_witness *w, const char *name,
                         const uint8_t owner[STATE_OWNER_LEN], char *err, size_t errlen);

/* Canonical msgpack of a witness: [key (bin 32), version, claim_at_ms, released (bool),
 * time_ms, signature (bin 64)]. Encode returns the length or a negative code; decode reads
 * exactly len bytes and refuses anything non-canonical. */
int state_witness_encode(const struct state_witness *w, uint8_t *buf, size_t cap);
int state_witness_decode(const uint8_t *buf, size_t len, struct state_witness *out, char *err,
                         size_t errlen);

/* A bundle is what travels in gossip: one signed record and the witnesses of its owner's claim
 * on its key, [record (bin), [witness, ...]] with at most STATE_WITNESSES_MAX witnesses, in
 * the order state_names_witnesses lists them (so equal sets encode equally). Decode fills
 * rec, w[STATE_WITNESSES_MAX] and *count; it checks the shape, not the signatures. */
int state_bundle_encode(const struct state_record *rec, const struct state_witness *w, size_t count,
                        uint8_t *buf, size_t cap);
int state_bundle_decode(const uint8_t *buf, size_t len, struct state_record *rec,
                        struct state_witness *w, size_t *count, char *err, size_t errlen);

/* A witness as the store keeps it: [name, owner (bin 32), witness]. */
int state_witness_entry_encode(const char *name, const uint8_t owner[STATE_OWNER_LEN],
                               const struct state_witness *w, uint8_t *buf, size_t cap);
int state_witness_entry_decode(const uint8_t *buf, size_t len, char *name,
                               uint8_t owner[STATE_OWNER_LEN], struct state_witness *w, char *err,
                               size_t errlen);

/* ---- the fleet roster: which node keys may witness (fleet_keys.c) --------------------- */

#define STATE_FLEET_KEYS_MAX 256        /* keys a roster lists (--fleet-keys) */
#define STATE_FLEET_LABEL_MAX 63        /* longest label after a key */
#define STATE_FLEET_FILE_MAX (64 << 10) /* largest roster file */

/* The keys an operator admitted, in file order, each with its label ("" if none) and line. */
struct state_fleet_keys {
    size_t count;
    uint8_t keys[STATE_FLEET_KEYS_MAX][STATE_OWNER_LEN];
    char labels[STATE_FLEET_KEYS_MAX][STATE_FLEET_LABEL_MAX + 1];
    unsigned lines[STATE_FLEET_KEYS_MAX];
};

/* Parses a roster: one node key (64 hex digits) a line, an optional label after it, `#`
 * comments, blank lines, CRLF. Refuses a malformed line, a key listed twice, more than
 * STATE_FLEET_KEYS_MAX keys or more than STATE_FLEET_FILE_MAX bytes with "WHAT:LINE: why"
 * (STATE_EINVAL; out is then empty). _load reads the file `path` (WHAT is the path). */
int state_fleet_keys_parse(const char *text, size_t len, const char *what,
                           struct state_fleet_keys *out, char *err, size_t errlen);
int state_fleet_keys_load(const char *path, struct state_fleet_keys *out, char *err, size_t errlen);
bool state_fleet_keys_has(const struct state_fleet_keys *fk, const uint8_t key[STATE_OWNER_LEN]);

/* ---- validation ------------------------------------------------------------------------ */

/* A network: family 4 or 6, address in network order, prefix length. */
struct state_cidr {
    uint8_t family;   /* 4 or 6 */
    uint8_t addr[16]; /* IPv4 in the first 4 bytes */
    uint8_t prefix;   /* 0..32 or 0..128 */
};

/* Parses "IP/PREFIX" or a bare IP (full prefix). Returns 0 or STATE_EINVAL with `err` set. */
int state_cidr_parse(const char *text, struct state_cidr *out, char *err, size_t errlen);
/* True when the address (family 4 or 6, network order) lies in the network. */
bool state_cidr_contains(const struct state_cidr *net, uint8_t family, const uint8_t *addr);

/* Sorts addresses and drops repeats, so state_backend_check finds one among many by binary
 * search. Returns the new count. */
size_t state_backends_sort(struct state_backend *v, size_t n);

/* Addresses that backends may never use: the gateway's own (loop prevention). */
struct state_validate_policy {
    bool allow_loopback;                     /* --allow-loopback-backends */
    const struct state_backend *own_addrs;   /* this node's listen/advertise addresses; a port of
                                                0 forbids the whole IP, else IP:port only; an
                                                unspecified IP (0.0.0.0, ::) with port P forbids
                                                every loopback address on P (a wildcard listener
                                                answers there) */
    size_t own_addr_count;                   /* entries in own_addrs */
    uint64_t now_ms;                         /* wall clock, for the future-skew check; 0 reads
                                                state_now_ms() */
    const char *domain;                      /* gateway domain (--domain): fqdn records at or
                                                under it are refused, NAME.DOMAIN belongs to name
                                                records; NULL skips the check */
    const struct state_backend *fleet_addrs; /* every fleet member's advertised HTTP, HTTPS,
                                                API and gossip address (IP:port), sorted by
                                                state_backends_sort */
    size_t fleet_addr_count;                 /* entries in fleet_addrs */
    const struct state_cidr *deny;           /* operator's --deny-backend networks */
    size_t deny_count;                       /* entries in deny */
};

/* Checks every semantic rule (name syntax, kind/fields consistency, backend count and
 * addresses, timestamps) and writes the first broken rule's message. Returns 0 or
 * STATE_EINVAL. Does not check the signature. A NULL policy means the defaults: no loopback,
 * no own addresses, the current clock, no domain. */
int state_record_validate(const struct state_record *rec, const struct state_validate_policy *pol,
                          char *err, size_t errlen);

/* Key syntax alone, for what a user typed: lowercases `in` into out[STATE_FQDN_MAX + 1], or
 * returns STATE_EINVAL with the broken rule in `err`. state_fqdn_normalize also drops one
 * trailing dot ("www.example.org." is the same domain). */
int state_name_normalize(const char *in, char *out, char *err, size_t errlen);
int state_fqdn_normalize(const char *in, char *out, char *err, size_t errlen);

/* Backend text forms: "http://IP:PORT" (termination) or "IP:PORT" (passthrough); IPv6 in
 * brackets. state_backend_format writes the same forms back (out holds 64 bytes). */
int state_backend_parse(const char *text, bool passthrough, struct state_backend *out, char *err,
                        size_t errlen);
void state_backend_format(const struct state_backend *be, bool passthrough, char out[64]);
/* Address-only checks: refused whatever the policy are unspecified, multicast, broadcast,
 * link-local, reserved (240.0.0.0/4) and cloud metadata addresses, also when an IPv6 form
 * embeds them (IPv4-mapped, IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16); then, by
 * policy, loopback, this node's own addresses, fleet members' addresses and denied networks. */
int state_backend_check(const struct state_backend *be, const struct state_validate_policy *pol,
                        char *err, size_t errlen);

/* ---- names: the merged record set ------------------------------------------------------ */

/* The state of one key as the merge rules decide it. */
struct state_name_view {
    char name[STATE_FQDN_MAX + 1]; /* the key */
    bool held;                     /* some owner holds it (false: free or released) */
    struct state_record record;    /* the holder's latest record (or the newest tombstone;
                                      or, while no claim has enough witnesses, the claim the
                                      API would treat as first: see `pending`) */
    uint8_t contenders;            /* other owners with a losing claim on the key */
    bool pending;                  /* live claims exist but none has enough witnesses yet */
    uint64_t claimed_at_ms;        /* the holder's effective claim time (0 when not held) */
    uint8_t witnesses;             /* witnesses of the shown record's claim */
};

struct state_names; /* the merged record set (opaque); one writer thread */

struct state_names *state_names_new(void);
void state_names_free(struct state_names *names);

/* Turns witnessed claim times on: a live claim counts, and is ordered, by the
 * (f'+1)-th earliest of its witness times, f' = min(faults, fleet - 1) (fleet: witness keys
 * known, at least 1). Without this call (unit tests, tools) claims count by reserved_at_ms.
 * Every node must use the same faults; fleet converges as members learn each other. */
void state_names_set_witnessing(struct state_names *names, unsigned faults, unsigned fleet);

/* Merges a witness, already verified (state_witness_verify) and admitted by the caller's
 * policy (known witness key, time not in the future), into the owner's entry on `name`.
 * Keeps one witness per witness key, at most STATE_WITNESSES_MAX (name_merge.c). Returns 1
 * changed, STATE_ESTALE nothing new, STATE_ENOTFOUND no record of that owner on that key
 * (merge the record first: bundles carry both). `changed` receives the key's view. */
int state_names_witness(struct state_names *names, const char *name,
                        const uint8_t owner[STATE_OWNER_LEN], const struct state_witness *w,
                        struct state_name_view *changed);
/* Copies the witnesses kept for owner's entry on name (at most STATE_WITNESSES_MAX) into out,
 * best first; returns how many, 0 when none or no such entry. */
size_t state_names_witnesses(const struct state_names *names, const char *name,
                             const uint8_t owner[STATE_OWNER_LEN], struct state_witness *out);
/* Drops every kept witness whose key is not among keys[count] (the roster shrank, or the store
 * holds witnesses from before it): afterwards the state is what merging only the admitted
 * witnesses would have given. Returns how many were dropped. */
size_t state_names_keep_witnesses(struct state_names *names, const uint8_t (*keys)[STATE_OWNER_LEN],
                                  size_t count);

/* Merges a record that has already been decoded, verified and validated. Returns:
 *   1             the state changed (the record is new information: store and disseminate it)
 *   STATE_ESTALE  nothing changed (a duplicate or an older version)
 *   <0            STATE_ENOMEM
 * The merge is commutative, associative and idempotent over sets of records. `changed`, when
 * not NULL, receives the key's view after the merge. */
int state_names_merge(struct state_names *names, const struct state_record *rec,
                      struct state_name_view *changed);

/* Admission check for a record submitted by a client (the API), before merging: refuses a
 * claim on a key another owner holds (STATE_ETAKEN, message names the holder and the claim
 * time), a proxy/release by someone who does not hold the key (STATE_ENOTOWNER), a version not
 * above the owner's last (STATE_ESTALE) and a new claim dated more than 5 minutes before
 * `now_ms` (STATE_EINVAL). Gossip-arriving records skip this and go straight to merge. */
int state_names_admit(const struct state_names *names, const struct state_record *rec,
                      uint64_t now_ms, char *err, size_t errlen);

int state_names_get(const struct state_names *names, const char *key, struct state_name_view *out);

/* The latest record `owner` has on `key` (held, contending or a tombstone) into out. Returns
 * 0, or STATE_ENOTFOUND. O(1): one hash lookup and at most STATE_CLAIMS_PER_NAME_MAX owners
 * compared; what anti-entropy uses to answer for one item, and to drop a stale record
 * before paying for its signature check. */
int state_names_owner_record(const struct state_names *names, const char *key,
                             const uint8_t owner[STATE_OWNER_LEN], struct state_record *out);

/* Calls fn for every key in a stable order (sorted by key); stops early if fn returns non-zero
 * and returns that value. */
typedef int (*state_names_visit_fn)(const struct state_name_view *view, void *ctx);
int state_names_each(const struct state_names *names, state_names_visit_fn fn, void *ctx);
/* The same in the table's order, for walks that need none (the route table, the fqdn sweep):
 * no array of every key and no sort (1M names: N log N string compares per walk). fn must not
 * change names. */
int state_names_each_unordered(const struct state_names *names, state_names_visit_fn fn, void *ctx);

/* Calls fn for every stored record (each owner's latest per key): what a snapshot or an
 * anti-entropy exchange must carry so another node reaches the same state. */
typedef int (*state_records_visit_fn)(const struct state_record *rec, void *ctx);
int state_names_each_record(const struct state_names *names, state_records_visit_fn fn, void *ctx);

size_t state_names_count(const struct state_names *names);      /* keys held by someone */
size_t state_names_tombstones(const struct state_names *names); /* released keys kept */
size_t state_names_fqdns(const struct state_names *names);      /* fqdn keys with claims */
size_t state_names_records(const struct state_names *names);    /* records kept in all */
/* Live claims (names held or contended, not released) of one owner. */
size_t state_names_owner_names(const struct state_names *names,
                               const uint8_t owner[STATE_OWNER_LEN]);

/* Growth limits (name_quota.c); 0 means no limit. */
struct state_quota {
    size_t names_per_owner; /* live claims one owner may have */
    size_t records_max;     /* records (claims and tombstones) kept in all */
};

/* Whether merging `rec` stays within `q`: only a record that would take a new place counts (a
 * first record of its owner on its key against records_max; a claim that is not yet live,
 * against names_per_owner); updates of what is kept always pass. Returns 0, STATE_EQUOTA or
 * STATE_EFULL with a message in err. A lookup, no signature check: callers run it before the
 * verify, so records refused here cost little. */
int state_names_quota(const struct state_names *names, const struct state_record *rec,
                      const struct state_quota *q, char *err, size_t errlen);

/* Drops tombstones whose release was issued more than ttl_ms before now_ms. Returns how many
 * were collected. */
size_t state_names_collect(struct state_names *names, uint64_t now_ms, uint64_t ttl_ms);

/* A 64-bit digest of the whole record set, equal on two nodes iff (with overwhelming
 * probability) they hold the same records. Used by tests and anti-entropy. */
uint64_t state_names_digest(const struct state_names *names);

/* ---- durable store --------------------------------------------------------------------- */

struct state_store; /* append-only record log plus snapshot in a data directory (opaque) */

/* Opens (creating if needed) the store in `dir`, taking its lock file (flock: a second process
 * on the same dir gets an error), and replays snapshot and log into `names`. Log records are
 * decoded, verified and merged, and those whose signature fails are skipped and counted in the
 * report; snapshot records, written from an already verified set and checksummed, are decoded
 * and merged without verifying again (startup cost). A torn or corrupt tail is cut and
 * described in `report` (one line, empty when the log was clean). Returns NULL with `err` set
 * when the directory cannot be used. */
struct state_store *state_store_open(const char *dir, struct state_names *names, char *report,
                                     size_t reportlen, char *err, size_t errlen);
/* Appends a record and fsyncs before returning 0: an acknowledged record survives kill -9.
 * Entries staged before it become durable with it (one fdatasync for all). */
int state_store_append(struct state_store *store, const struct state_record *rec, char *err,
                       size_t errlen);
/* Writes a snapshot of `names` (write, fsync, rename) and truncates the log. `names` must hold
 * every record appended or staged so far (the set they were merged into). */
int state_store_compact(struct state_store *store, const struct state_names *names, char *err,
                        size_t errlen);
/* Appends a witness of owner's claim on name (after its record) and fsyncs, as above. */
int state_store_append_witness(struct state_store *store, const char *name,
                               const uint8_t owner[STATE_OWNER_LEN], const struct state_witness *w,
                               char *err, size_t errlen);
/* Group commit: stage a record or a witness without waiting for the disk. Staged entries are
 * written in batches (one pwrite per 256 KiB) and made durable together by the next
 * state_store_sync or state_store_append (one fdatasync). For what needs no acknowledgement
 * (gossiped records, this node's witnesses): a crash loses what was staged since the last
 * sync, which anti-entropy and the start's witnessing bring back. On a failed write the log
 * goes back to its last synced size (what was dropped stays in memory) and err says why. */
int state_store_stage(struct state_store *store, const struct state_record *rec, char *err,
                      size_t errlen);
int state_store_stage_witness(struct state_store *store, const char *name,
                              const uint8_t owner[STATE_OWNER_LEN], const struct state_witness *w,
                              char *err, size_t errlen);
/* Writes what is staged and fdatasyncs when anything is not durable yet. 0, or STATE_EIO with
 * err set ("DIR/records.log: fdatasync: ..."). */
int state_store_sync(struct state_store *store, char *err, size_t errlen);
size_t state_store_unsynced(const struct state_store *store);  /* bytes not durable yet */
uint64_t state_store_syncs(const struct state_store *store);   /* fdatasyncs of the log so far */
size_t state_store_log_bytes(const struct state_store *store); /* log size, staged included */
/* Syncs what is staged (call state_store_sync first to hear of a failure), closes and unlocks. */
void state_store_close(struct state_store *store);

/* ---- route table (RCU) ----------------------------------------------------------------- */

/* What a proxy worker needs to serve one host name. Copied out under the read lock. */
struct state_route {
    char host[STATE_FQDN_MAX + 1];                     /* served host, lowercase */
    char name[STATE_FQDN_MAX + 1];                     /* the record key it comes from */
    bool tls_passthrough;                              /* splice TLS instead of terminating */
    uint8_t backend_count;                             /* 1..16 */
    struct state_backend backends[STATE_BACKENDS_MAX]; /* where to send traffic */
    uint64_t version;                                  /* record version that produced it */
};

struct state_routes; /* host -> route, cds_lfht under RCU (opaque) */

/* Creates an empty table (keyed with a fresh random hash key). Returns NULL when out of
 * memory. */
struct state_routes *state_routes_new(void);
/* Frees the table and every route in it, waiting for pending reclamation; no reader may be
 * inside it (call after workers stopped). Call it from a thread that is not inside a lookup. */
void state_routes_free(struct state_routes *routes);

/* Every thread that calls state_routes_lookup registers once and unregisters before exit.
 * Registrations nest (a counter per thread). A thread that forgets, and writer threads, are
 * registered on their first lookup or update and unregistered automatically when they exit. */
void state_routes_reader_register(void);
void state_routes_reader_unregister(void);

/* Writer side. The state layer updates from one thread, which keeps each host's routes in
 * merge order; the table itself tolerates concurrent writers. Readers see the old or the new
 * route of a host, never a mix; a replaced or removed route is freed after a grace period.
 *
 * state_routes_set adds or replaces route->host (folded to lowercase). Returns 0,
 * STATE_EINVAL (empty or over-long host or name, backend_count not 1..16, a backend family
 * not 4/6) or STATE_ENOMEM. state_routes_remove returns 0, STATE_ENOTFOUND when the host has
 * no route, or STATE_EINVAL for an empty or over-long host. */
int state_routes_set(struct state_routes *routes, const struct state_route *route);
int state_routes_remove(struct state_routes *routes, const char *host);
/* Derives the route of a name view and applies it: a held proxy record of name N serves
 * "N.DOMAIN", a held fqdn record serves the fqdn, both with their backends, passthrough flag
 * and version. A reservation without backends, a release, or a key nobody holds removes the
 * host (a label key is removed as "KEY.DOMAIN", a key with a dot as itself). An fqdn equal to
 * DOMAIN or inside it is never served (it would shadow NAME.DOMAIN routes of other owners):
 * serving one returns STATE_EINVAL and removing one changes nothing. Returns 0 (including
 * when there was nothing to remove), STATE_EINVAL (no domain for a label, host over 253
 * bytes, fqdn inside DOMAIN) or STATE_ENOMEM. */
int state_routes_apply(struct state_routes *routes, const struct state_name_view *view,
                       const char *domain);

/* Reader side: lock-free, from a registered thread. Copies the route for host[0..host_len)
 * (no port; case-insensitive; one trailing dot allowed) into `out` and returns true, or
 * returns false when no route serves it. Only the strings up to their NUL and the first
 * backend_count backends of `out` are written. */
bool state_routes_lookup(struct state_routes *routes, const char *host, size_t host_len,
                         struct state_route *out);
/* Route observer: told, in the writer's thread, of every route published (added, before
 * readers can see it) and of every route retired (replaced or removed, after the replacement
 * was announced as added), with a copy of the route. The proxy counts its backends'
 * references with it. A callback must not call back into the table. */
typedef void (*state_routes_observer_fn)(void *ctx, const struct state_route *route, bool added);
/* Installs `fn` (NULL removes it) and reports every route already in the table as added.
 * Call it from the writer thread while no other writer runs; remove it before the observer
 * goes away (and before state_routes_free, which retires every route). */
void state_routes_observe(struct state_routes *routes, state_routes_observer_fn fn, void *ctx);
/* Routes in the table (exact once the writer is idle). */
size_t state_routes_count(struct state_routes *routes);
/* Heap bytes held by the live routes' nodes (malloc_usable_size), without the hash table's
 * bucket arrays: the table's own accounting, for metrics and the benchmark. */
size_t state_routes_memory(struct state_routes *routes);

/* ---- small helpers shared by the modules ----------------------------------------------- */

uint64_t state_now_ms(void); /* wall clock, ms since the Unix epoch */

/* SipHash-1-3 of len bytes under `key` (siphash.c): the hash of every table keyed by what
 * the network sends. state_siphash_key fills a fresh random key (one per table). */
uint64_t state_siphash(const uint64_t key[2], const void *data, size_t len);
void state_siphash_key(uint64_t key[2]);

/* ---- keyed hash table (hash_table.c) ---------------------------------------------------- */

/* The one container of every table keyed by what the network sends (names, owners, backend
 * addresses, fqdns): chained, hashed with SipHash under a random key drawn for each table, and
 * bounded. It is intrusive, like the Linux hlist or liburcu's cds_lfht: the caller embeds a
 * struct state_hash_node in its entry, owns the entry's memory, hashes the key with
 * state_hash_table_hash and says which entry is which with an equality callback; the table
 * only links nodes. Not thread-safe: the caller locks when threads meet. */
struct state_hash_node {
    struct state_hash_node *next; /* bucket chain */
    uint64_t hash;                /* the entry key's hash (state_hash_table_hash), kept for
                                     rehashing and to skip most key comparisons */
};

struct state_hash_table {
    struct state_hash_node **buckets; /* NULL until the first insert, then a power of two */
    size_t bucket_count;              /* buckets allocated (0 before the first insert) */
    size_t min_buckets;               /* first allocation, and never shrunk below */
    size_t count;                     /* entries linked */
    size_t max;                       /* inserts beyond this many are refused */
    uint64_t key[2];                  /* SipHash key, random per table, never leaves us */
};

/* The entry that embeds `node` as `member`. */
#define STATE_HASH_ENTRY(node, type, member) ((type *)((char *)(node)-offsetof(type, member)))

/* True when the entry of `node` has the key `key` (whatever the caller passed to find). */
typedef bool (*state_hash_eq_fn)(const struct state_hash_node *node, const void *key);

/* Sets up an empty table that allocates min_buckets (rounded up to a power of two, at least
 * 8) on its first insert and holds at most max_entries; draws its random key. Allocates
 * nothing, cannot fail. */
void state_hash_table_init(struct state_hash_table *t, size_t min_buckets, size_t max_entries);
/* Frees the buckets; the entries are the caller's (free them first, by iterating). The
 * table is empty afterwards and may be used again. */
void state_hash_table_fini(struct state_hash_table *t);
/* For entries that are one malloc'd block each: free()s every entry (its node lies
 * node_offset bytes into it: offsetof(type, member)), then the buckets as fini does. */
void state_hash_table_free_all(struct state_hash_table *t, size_t node_offset);
/* The hash of key[0..len) under the table's key: what find and insert take. */
uint64_t state_hash_table_hash(const struct state_hash_table *t, const void *key, size_t len);
/* The node of the entry whose hash is `hash` and for which eq(node, key) holds, or NULL. */
struct state_hash_node *state_hash_table_find(const struct state_hash_table *t, uint64_t hash,
                                              state_hash_eq_fn eq, const void *key);
/* Links `node` under `hash` (the caller has checked that its key is not in the table yet).
 * Returns 0, STATE_EFULL when the table already holds max_entries, or STATE_ENOMEM when the
 * first bucket array cannot be allocated. Doubles the buckets when entries outnumber them;
 * if that allocation fails the table keeps working with longer chains. */
int state_hash_table_insert(struct state_hash_table *t, struct state_hash_node *node,
                            uint64_t hash);
/* True when an insert would be refused with STATE_EFULL: check before allocating an entry
 * that a flood of new keys would otherwise allocate and free again. */
bool state_hash_table_full(const struct state_hash_table *t);
/* Unlinks `node`, which must be in the table. Never reallocates, so an iteration may remove
 * the node it stands on (state_hash_table_next was taken first). */
void state_hash_table_remove(struct state_hash_table *t, struct state_hash_node *node);
/* Halves the buckets when entries fill less than an eighth of them and more than
 * min_buckets remain (call after removals, outside an iteration). */
void state_hash_table_shrink(struct state_hash_table *t);
/* Iteration in bucket order (no meaning): first returns the first node or NULL and sets
 * *bucket; next returns the node after `node`. Take next before removing `node`. */
struct state_hash_node *state_hash_table_first(const struct state_hash_table *t, size_t *bucket);
struct state_hash_node *state_hash_table_next(const struct state_hash_table *t,
                                              const struct state_hash_node *node, size_t *bucket);
/* for (each node) that may remove `node` in the body; `next` and `bucket` are scratch. */
#define STATE_HASH_TABLE_EACH(t, node, next, bucket)                                               \
    for ((node) = state_hash_table_first((t), &(bucket));                                          \
         (node) != NULL && ((next) = state_hash_table_next((t), (node), &(bucket)), 1);            \
         (node) = (next))

/* The key of a client address in per-IP tables (ip_key.c): a family byte, then the IPv4
 * address or the IPv6 /64. A host is routinely given a whole /64, so a table keyed on full
 * IPv6 addresses would hand every client 2^64 keys (and limits); IPv4-mapped IPv6 (a dual-stack
 * socket) counts as IPv4. Returns false, out zeroed, for other families. */
#define STATE_IP_KEY_LEN 9
struct sockaddr;
bool state_ip_key(const struct sockaddr *sa, uint8_t out[STATE_IP_KEY_LEN]);

#endif /* WEBGW_STATE_H */
