/*
 * name_private.h - the in-memory layout of the merged record set, shared by name_table.c
 * (hash table, iteration, counters, collection) and name_merge.c (the join and the derived
 * view). Private to state/: the rest of the program includes state.h.
 *
 * Memory: a key holds one small array of claim pointers (one per owner seen on the key, at
 * most STATE_CLAIMS_PER_NAME_MAX) and each claim stores a record compactly: no name (the key
 * has it once) and only the backends it uses, about 130 bytes plus 20 per backend instead of
 * the ~700 bytes of a struct state_record.
 */
#ifndef WEBGW_STATE_NAME_PRIVATE_H
#define WEBGW_STATE_NAME_PRIVATE_H

#include "state/state.h"

/* A witness kept for an owner's claim, with its digest contribution. */
struct name_witness {
    struct state_witness w; /* as signed */
    uint64_t hash;          /* first 8 bytes of SHA-256 of its encoding (digest) */
};

/* One owner's latest record for a key, stored compactly, and the witnesses of its claims. */
struct name_claim {
    uint64_t version;                       /* the owner's version for this key */
    uint64_t reserved_at_ms;                /* the owner's claim time */
    uint64_t issued_at_ms;                  /* when this version was signed */
    uint64_t record_hash;                   /* hash of the canonical encoding (digest, dedup) */
    uint8_t owner[STATE_OWNER_LEN];         /* Ed25519 public key */
    uint8_t signature[STATE_SIGNATURE_LEN]; /* kept so the record can be re-sent verbatim */
    uint8_t kind;                           /* enum state_record_kind */
    uint8_t tls_passthrough;                /* proxy/fqdn flag */
    uint8_t backend_count;                  /* entries in backends[] */
    uint8_t witness_count;                  /* entries in witnesses[] */
    uint8_t witness_cap;                    /* allocated entries of witnesses[] (1, 2, 4 .. 16) */
    struct name_witness *witnesses;         /* one per witness key, best first (name_merge.c),
                                               kept across the owner's versions; NULL if none */
    struct state_backend backends[];        /* only the backends the record has */
};

/* A key and every owner's latest record for it. */
struct name_key {
    struct state_hash_node node; /* in state_names.keys */
    struct name_claim **claims;  /* one per owner, unordered; &one while claim_cap is 1 */
    struct name_claim *one;      /* storage of claims[] for a single owner (the usual case) */
    uint8_t claim_count;         /* used entries of claims[] */
    uint8_t claim_cap;           /* allocated entries of claims[] */
    char name[];                 /* the key, NUL-terminated */
};

struct state_names {
    struct state_hash_table keys;   /* name_key by name (SipHash, random key per table) */
    size_t held_count;              /* keys with a live claim (state_names_count) */
    size_t tombstone_count;         /* keys whose every claim is a release */
    size_t fqdn_count;              /* keys with claims that are fqdns (hold a '.') */
    size_t record_count;            /* claims over all keys */
    uint64_t digest;                /* sum of record_hash over all claims */
    struct state_hash_table owners; /* name_owner by owner key: live claims (name_quota.c) */
    bool witnessing;                /* holders need witnesses (state_names_set_witnessing) */
    unsigned witness_need;          /* witnesses a claim needs: min(f, fleet - 1) + 1 */
};

/* An owner's count of live claims (name_quota.c). */
struct name_owner {
    struct state_hash_node node;    /* in state_names.owners */
    uint8_t owner[STATE_OWNER_LEN]; /* Ed25519 public key */
    size_t live;                    /* its claims that are not releases */
};

/* Adds delta to the owner's live count (name_table_account); frees the entry at 0. */
void name_owner_count(struct state_names *names, const uint8_t owner[STATE_OWNER_LEN], int delta);
/* Frees the owner counts. */
void name_owner_free_all(struct state_names *names);

/* Looks a key up; NULL when absent. */
struct name_key *name_table_find(const struct state_names *names, const char *key);
/* Finds or inserts an empty key (no claims); NULL on allocation failure. */
struct name_key *name_table_upsert(struct state_names *names, const char *key);
/* Unlinks and frees a key with all its claims. Counters must already exclude it. */
void name_table_remove(struct state_names *names, struct name_key *k);

/* A live claim's effective time (name_merge.c): with witnessing, the witness_need-th earliest
 * witness time among its witnesses of this claim, false when it has fewer; without, its
 * reserved_at_ms. */
bool name_claim_effective(const struct state_names *names, const struct name_claim *c,
                          uint64_t *time_ms);
/* Witnesses of c that attest its current claim (not a release, same claim time). */
unsigned name_claim_witnessed(const struct name_claim *c);
/* Index of the key's holder in k->claims (the live claim with an effective time and the
 * smallest (effective time, owner)), or -1 when none. */
int name_key_holder(const struct state_names *names, const struct name_key *k);
/* Fills a view from the key (pure function of its claims and the witnessing setting). */
void name_key_view(const struct state_names *names, const struct name_key *k,
                   struct state_name_view *out);
/* Frees a claim and its witnesses. */
void name_claim_free(struct name_claim *c);
/* Rebuilds the full record of a claim stored under key `name`. */
void name_claim_to_record(const struct name_claim *c, const char *name, struct state_record *out);

/* Adds (sign=+1) or removes (sign=-1) a key's contribution to the table's counters and
 * digest; merge brackets every change of a key with these two calls. */
void name_table_account(struct state_names *names, const struct name_key *k, int sign);

#endif /* WEBGW_STATE_NAME_PRIVATE_H */
