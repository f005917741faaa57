/*
 * name_merge.c - the merge rules of name records: how a record joins the set, who holds a key,
 * and which client submissions the API admits.
 *
 * Design, and why
 * ---------------
 * Every node must reach the same state from the same records whatever the order, delay or
 * duplication of their arrival: gossip retransmits, anti-entropy resends whole sets, and nodes
 * restart and replay their logs. So the state is a join-semilattice and merging a record is a
 * join, which is commutative, associative and idempotent by construction rather than by care.
 *
 * The lattice. For each key (a name or an fqdn) and each owner (an Ed25519 public key) we keep
 * that owner's latest record for the key: the one with the highest version. Records are totally
 * ordered per (key, owner) by (version, canonical encoding bytes): two different records of one
 * owner with one version (a client bug, two CLIs racing) are ordered by memcmp of their
 * canonical encodings, the larger winning, so even that case converges. The state is the
 * pointwise maximum over all records seen, and a join is "keep the larger of two": max over a
 * total order is commutative, associative and idempotent, and so is the pointwise map of it.
 *
 * Why per owner, not one register per key: a single last-writer-wins register would let any
 * signed record with a higher version overwrite the key, whoever signed it, and would forget
 * the losing side of a conflict. Keeping each owner's chain apart means a record can only move
 * its own signer's entry (signatures are checked before merge), "versions only go up" is per
 * owner, and a loser's claim stays visible so it can learn why it lost.
 *
 * The view is a pure function of the state, recomputed from it, never stored apart:
 *   - live claims are the owners whose latest record is not a release;
 *   - the holder is the live claim with the smallest (reserved_at_ms, owner bytes): first claim
 *     wins, the owner id breaks exact ties, the same way on every node;
 *   - the holder's latest record is what is served (reserve: nothing yet; proxy and fqdn: its
 *     backends); other live claims are counted as `contenders`;
 *   - with no live claim the key is released: held=false and the view shows the newest release
 *     (a tombstone).
 *
 * Releases. A release is just an owner's latest record, so it beats every lower version of that
 * owner: a stale proxy record that arrives after the release is below the owner's maximum and
 * changes nothing, so no stale record resurrects a name. Once released, a new owner's claim is
 * the only live one and takes the name; the old owner can claim again only with a higher
 * version, and then with its new, later claim time.
 *
 * Claim times: why the owner's reserved_at_ms does not decide alone. An owner signs its own
 * claim time, so an owner (or a fleet member gossiping for its own keys) could date a claim a
 * day back and take any name held since. The API refuses new claims dated more than
 * NAME_CLAIM_PAST_MS in the past, but a record that arrives by gossip, or from a joining node's
 * store, skips the API; and a member whose clock is a day behind accepts such a claim as
 * recent. So, with witnessing on (the daemon always turns it on), a claim's order comes from
 * the gateways that saw it:
 *
 *   - Every gateway has its own Ed25519 identity and, on seeing an owner's record whose claim
 *     it has not yet attested, signs a witness: (its key, the record's version, the claim time
 *     the owner gave, release or not, ITS OWN clock's time) over the key and owner
 *     (witness.c). Witnesses travel with the record (gossip bundles, push-pull) and are stored.
 *   - A claim's effective time is the need-th earliest time among the witnesses that attest
 *     this very claim (not a release, same claim time), need = f' + 1, f' = min(f, fleet - 1):
 *     f malicious or misclocked members can each put one early time in, but the need-th
 *     earliest is at least one honest member's clock at the moment it first saw the claim.
 *     A claim with fewer witnesses has no effective time: it is a contender (shown as
 *     `pending` when no claim has one), never the holder, until enough members saw it.
 *   - Holder = the live claim with an effective time and the smallest (effective time, owner):
 *     first seen by the fleet wins, the owner id breaks exact ties, the same way everywhere.
 *   - The owner's reserved_at_ms still names the claim (witnesses attest a claim time, so a
 *     new version of the same claim keeps its witnesses and an honest gateway attests a claim
 *     once), but its value no longer orders anything.
 *
 * Who may witness is the caller's policy, applied before a witness reaches this merge like a
 * signature check: the node keeps witnesses only from keys in its roster (the operators'
 * --fleet-keys list, or with an open roster every key a member announced under the cluster
 * key) and refuses times in the future; the merge itself is a pure function of the witnesses
 * it is given. `fleet` is the roster's size, so a fleet of one needs only its own witness
 * (f' = 0: its own clock decides) and a fleet of two needs both whatever f is. When the
 * roster drops a key, state_names_keep_witnesses removes that key's witnesses: the state is
 * then the lattice over the remaining keys' witnesses, so nodes with the same roster and the
 * same witnesses derive the same holders whatever they kept before.
 *
 * Witnesses as a lattice. For each (key, owner) we keep a set of witnesses with one entry per
 * witness key, and at most STATE_WITNESSES_MAX entries, chosen by one total order on witnesses
 * ("better first"): higher version, then earlier time, then smaller claim time, claim before
 * release, then signature and key bytes. Per witness key the better entry wins; over keys the
 * STATE_WITNESSES_MAX best are kept. Both steps use the same order, so the result over any
 * union is "the N best among each key's best", whatever the grouping or repetition: a
 * witness kept in the final set is the best of its key everywhere and fewer than N keys rank
 * before it in any subset, so no intermediate step dropped it. Hence merge stays commutative,
 * associative and idempotent with witnesses (tests/state/test_names_merge.c checks it against
 * a brute-force model). The set is kept apart from the owner's record: a new version of the
 * record does not drop it, and which of its witnesses count is decided by the current record
 * when the view is derived, never stored.
 *
 * Why higher version first, per witness key: a gateway's newest observation of an owner
 * supersedes its older ones. When an owner releases a name, honest gateways attest the
 * release (a witness with a higher version); if that owner later signs a record reviving the
 * old claim time, the old witnesses of that claim (public, replayable) are outranked by the
 * same gateways' release witnesses, so the revived claim needs fresh witnesses at today's
 * times and cannot jump back ahead of whoever claimed the name after the release.
 *
 * Honest partitions. Concurrent claims on two sides of a partition are each witnessed at once
 * on their side and by the other side after the heal; every node ends with the same witness
 * sets and so the same holder. Which side wins depends on the witness times the fleet
 * recorded, as before it depended on the owners' times.
 *
 * What remains possible (README "Trust model"): f + 1 colluding admitted members can date a
 * claim as they like; with an open roster a member that holds the cluster key can announce
 * several identities (f is then measured in identities admitted by the cluster key, which is
 * why a roster of operator-listed keys exists); past STATE_WITNESSES_MAX
 * witness keys per claim, the kept ones are the N best by the order above.
 *
 * Abuse bound. A key tracks at most STATE_CLAIMS_PER_NAME_MAX owners. When a ninth owner
 * arrives, the nine candidates are ranked and the last one is dropped (possibly the newcomer,
 * which then changes nothing): the holder first (so the bound can never take a name from its
 * holder), then release tombstones, newest first (they stop stale records from coming back),
 * then the other live claims, those with an effective time first by it, then the others by
 * their owner's claim time (a contender only waits in a queue; its owner can send it again). Up to
 * the bound the state is exactly the lattice above; past it, which losing claims or old tombstones
 * are remembered can depend on arrival order, and a stale record of an owner whose tombstone was
 * dropped could be taken as new. Reaching it takes eight distinct keys signing claims on one name,
 * which the API refuses while the name is held (409), so only a cluster member gossiping forged
 * traffic for its own keys gets there.
 *
 * Tombstone collection (name_table.c) drops a key once all its claims are releases and the
 * newest is older than a TTL (7 days by default). The TTL is the usual gc-grace trade-off: a
 * node that stayed away longer than that could bring back a record the tombstone was hiding,
 * so a node offline for longer than the TTL should start from an empty data dir.
 *
 * Digest. Each kept record contributes the first 8 bytes of SHA-256 over its canonical
 * encoding, and the digest is their sum modulo 2^64: order-independent (sum is commutative),
 * exact for sets (a record is kept at most once), and updated in O(1) on every change.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/sha.h>

#include "state/name_private.h"
#include "state/record_internal.h"

/* How far in the past a client may date a new claim: enough for a slow client clock and a
 * retry, too little to jump ahead of a name someone has held for a while. */
#define NAME_CLAIM_PAST_MS 300000ULL

/* ---- record identity -------------------------------------------------------------------- */

/* SHA-256 fetched once: SHA256() looks the algorithm up by name at every call (OpenSSL 3),
 * which cost more than the hash itself, twice per name at start (record and witness). */
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

static uint64_t bytes_hash(const uint8_t *buf, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    uint64_t h = 0;

    pthread_once(&sha256_once, sha256_fetch);
    if (sha256_md == NULL || EVP_Digest(buf, len, md, NULL, sha256_md, NULL) != 1)
        SHA256(buf, len, md);
    for (int i = 0; i < 8; i++)
        h |= (uint64_t)md[i] << (8 * i);
    return h;
}

/* Orders two canonical encodings: memcmp, then the shorter first. */
static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

static struct name_claim *claim_new(const struct state_record *rec, uint64_t record_hash)
{
    struct name_claim *c;

    c = malloc(sizeof(*c) + rec->backend_count * sizeof(c->backends[0]));
    if (c == NULL)
        return NULL;
    c->version = rec->version;
    c->reserved_at_ms = rec->reserved_at_ms;
    c->issued_at_ms = rec->issued_at_ms;
    c->record_hash = record_hash;
    memcpy(c->owner, rec->owner, STATE_OWNER_LEN);
    memcpy(c->signature, rec->signature, STATE_SIGNATURE_LEN);
    c->kind = (uint8_t)rec->kind;
    c->tls_passthrough = rec->tls_passthrough;
    c->backend_count = rec->backend_count;
    c->witness_count = c->witness_cap = 0;
    c->witnesses = NULL;
    memcpy(c->backends, rec->backends, rec->backend_count * sizeof(c->backends[0]));
    return c;
}

static int claim_find(const struct name_key *k, const uint8_t owner[STATE_OWNER_LEN])
{
    for (int i = 0; i < k->claim_count; i++)
        if (memcmp(k->claims[i]->owner, owner, STATE_OWNER_LEN) == 0)
            return i;
    return -1;
}

/* Whether `rec` (encoded as enc[len]) is above the owner's current record `cur` in the
 * per-owner order (version, canonical bytes). Returns 1 above, 0 not above, <0 on error. */
static int record_above(const struct state_record *rec, const uint8_t *enc, size_t len,
                        uint64_t record_hash, const struct name_claim *cur, const char *name)
{
    struct state_record *old;
    uint8_t *buf;
    int n, rc;

    if (rec->version != cur->version)
        return rec->version > cur->version;
    if (record_hash == cur->record_hash)
        return 0; /* the same record again */
    old = malloc(sizeof(*old));
    buf = malloc(STATE_RECORD_MAX_BYTES);
    if (old == NULL || buf == NULL) {
        rc = STATE_ENOMEM;
        goto done;
    }
    name_claim_to_record(cur, name, old);
    n = state_record_encode(old, buf, STATE_RECORD_MAX_BYTES);
    if (n < 0) {
        rc = n;
        goto done;
    }
    rc = bytes_cmp(enc, len, buf, (size_t)n) > 0;
done:
    free(buf);
    free(old);
    return rc;
}

void name_claim_free(struct name_claim *c)
{
    if (c != NULL)
        free(c->witnesses);
    free(c);
}

/* ---- witnesses -------------------------------------------------------------------------- */

/* The one total order on witnesses (see the top comment): <0 when a is better than b. */
static int witness_cmp(const struct state_witness *a, const struct state_witness *b)
{
    int c;

    if (a->version != b->version)
        return a->version > b->version ? -1 : 1;
    if (a->time_ms != b->time_ms)
        return a->time_ms < b->time_ms ? -1 : 1;
    if (a->claim_at_ms != b->claim_at_ms)
        return a->claim_at_ms < b->claim_at_ms ? -1 : 1;
    if (a->released != b->released)
        return a->released ? 1 : -1;
    c = memcmp(a->signature, b->signature, STATE_SIGNATURE_LEN);
    return c != 0 ? c : memcmp(a->key, b->key, STATE_OWNER_LEN);
}

static bool witness_attests(const struct name_claim *c, const struct state_witness *w)
{
    return !w->released && w->claim_at_ms == c->reserved_at_ms;
}

unsigned name_claim_witnessed(const struct name_claim *c)
{
    unsigned n = 0;

    if (c->kind == STATE_RECORD_RELEASE)
        return 0;
    for (int i = 0; i < c->witness_count; i++)
        n += witness_attests(c, &c->witnesses[i].w);
    return n;
}

bool name_claim_effective(const struct state_names *names, const struct name_claim *c,
                          uint64_t *time_ms)
{
    uint64_t times[STATE_WITNESSES_MAX];
    unsigned n = 0;

    if (!names->witnessing) {
        *time_ms = c->reserved_at_ms;
        return true;
    }
    for (int i = 0; i < c->witness_count; i++)
        if (witness_attests(c, &c->witnesses[i].w))
            times[n++] = c->witnesses[i].w.time_ms;
    if (n < names->witness_need)
        return false;
    /* the need-th smallest: a partial selection sort over at most 16 entries */
    for (unsigned i = 0; i < names->witness_need; i++) {
        unsigned min = i;

        for (unsigned j = i + 1; j < n; j++)
            if (times[j] < times[min])
                min = j;
        uint64_t t = times[i];
        times[i] = times[min];
        times[min] = t;
    }
    *time_ms = times[names->witness_need - 1];
    return true;
}

static uint64_t witness_hash(const struct state_witness *w)
{
    uint8_t buf[STATE_WITNESS_MAX_BYTES];
    int n = state_witness_encode(w, buf, sizeof(buf));

    return n < 0 ? 0 : bytes_hash(buf, (size_t)n);
}

/* Adds w to c's set under the lattice rule. Returns 1 changed, 0 not, STATE_ENOMEM. */
static int claim_add_witness(struct name_claim *c, const struct state_witness *w)
{
    struct name_witness entry = {.w = *w, .hash = witness_hash(w)};
    int at, same = -1;

    for (int i = 0; i < c->witness_count; i++)
        if (memcmp(c->witnesses[i].w.key, w->key, STATE_OWNER_LEN) == 0)
            same = i;
    if (same >= 0) {
        if (witness_cmp(w, &c->witnesses[same].w) >= 0)
            return 0; /* this witness key already gave a better (or the same) one */
        memmove(&c->witnesses[same], &c->witnesses[same + 1],
                (size_t)(c->witness_count - same - 1) * sizeof(c->witnesses[0]));
        c->witness_count--;
    } else if (c->witness_count == STATE_WITNESSES_MAX) {
        if (witness_cmp(w, &c->witnesses[STATE_WITNESSES_MAX - 1].w) >= 0)
            return 0;       /* ranks below every kept one */
        c->witness_count--; /* the worst kept one makes room */
    } else if (c->witness_count == c->witness_cap) {
        /* grown as witnesses come (a fleet of 3 keeps 3 per claim, not 16: 136 bytes each) */
        uint8_t cap = c->witness_cap ? (uint8_t)(c->witness_cap * 2) : 1;
        struct name_witness *grown = realloc(c->witnesses, cap * sizeof(c->witnesses[0]));

        if (grown == NULL)
            return STATE_ENOMEM;
        c->witnesses = grown;
        c->witness_cap = cap;
    }
    for (at = 0; at < c->witness_count; at++)
        if (witness_cmp(w, &c->witnesses[at].w) < 0)
            break;
    memmove(&c->witnesses[at + 1], &c->witnesses[at],
            (size_t)(c->witness_count - at) * sizeof(c->witnesses[0]));
    c->witnesses[at] = entry;
    c->witness_count++;
    return 1;
}

int state_names_witness(struct state_names *names, const char *name,
                        const uint8_t owner[STATE_OWNER_LEN], const struct state_witness *w,
                        struct state_name_view *changed)
{
    struct name_key *k = name_table_find(names, name);
    int idx = k != NULL ? claim_find(k, owner) : -1;
    int rc;

    if (idx < 0)
        return STATE_ENOTFOUND;
    name_table_account(names, k, -1);
    rc = claim_add_witness(k->claims[idx], w);
    name_table_account(names, k, +1);
    if (rc < 0)
        return rc;
    if (changed != NULL)
        name_key_view(names, k, changed);
    return rc == 1 ? 1 : STATE_ESTALE;
}

size_t state_names_witnesses(const struct state_names *names, const char *name,
                             const uint8_t owner[STATE_OWNER_LEN], struct state_witness *out)
{
    const struct name_key *k = name_table_find(names, name);
    int idx = k != NULL ? claim_find(k, owner) : -1;
    const struct name_claim *c;

    if (idx < 0)
        return 0;
    c = k->claims[idx];
    for (int i = 0; i < c->witness_count; i++)
        out[i] = c->witnesses[i].w;
    return c->witness_count;
}

static bool key_listed(const uint8_t (*keys)[STATE_OWNER_LEN], size_t count,
                       const uint8_t key[STATE_OWNER_LEN])
{
    for (size_t i = 0; i < count; i++)
        if (memcmp(keys[i], key, STATE_OWNER_LEN) == 0)
            return true;
    return false;
}

/* Drops c's witnesses from keys not listed; the order of the rest stays. */
static size_t claim_keep_witnesses(struct name_claim *c, const uint8_t (*keys)[STATE_OWNER_LEN],
                                   size_t count)
{
    int kept = 0;

    for (int i = 0; i < c->witness_count; i++)
        if (key_listed(keys, count, c->witnesses[i].w.key))
            c->witnesses[kept++] = c->witnesses[i];
    size_t dropped = (size_t)(c->witness_count - kept);
    c->witness_count = (uint8_t)kept;
    return dropped;
}

size_t state_names_keep_witnesses(struct state_names *names, const uint8_t (*keys)[STATE_OWNER_LEN],
                                  size_t count)
{
    struct state_hash_node *n, *next;
    size_t bucket, dropped = 0;

    STATE_HASH_TABLE_EACH (&names->keys, n, next, bucket) {
        struct name_key *k = STATE_HASH_ENTRY(n, struct name_key, node);
        bool listed = true;

        for (int i = 0; i < k->claim_count && listed; i++)
            for (int j = 0; j < k->claims[i]->witness_count && listed; j++)
                listed = key_listed(keys, count, k->claims[i]->witnesses[j].w.key);
        if (listed)
            continue;
        /* the view (held, effective times) may change: account the key out and back in */
        name_table_account(names, k, -1);
        for (int i = 0; i < k->claim_count; i++)
            dropped += claim_keep_witnesses(k->claims[i], keys, count);
        name_table_account(names, k, +1);
    }
    return dropped;
}

/* Held and tombstone counters depend on the setting: take every key out and back in. */
static void names_account_all(struct state_names *names, int sign)
{
    struct state_hash_node *n, *next;
    size_t bucket;

    STATE_HASH_TABLE_EACH (&names->keys, n, next, bucket)
        name_table_account(names, STATE_HASH_ENTRY(n, struct name_key, node), sign);
}

void state_names_set_witnessing(struct state_names *names, unsigned faults, unsigned fleet)
{
    unsigned f = fleet > 0 && faults > fleet - 1 ? fleet - 1 : faults;

    if (f > STATE_WITNESS_FAULTS_MAX)
        f = STATE_WITNESS_FAULTS_MAX;
    if (names->witnessing && names->witness_need == f + 1)
        return;
    names_account_all(names, -1);
    names->witnessing = true;
    names->witness_need = f + 1;
    names_account_all(names, +1);
}

/* ---- the abuse bound -------------------------------------------------------------------- */

/* A live claim's place in the queue: those with an effective time first, by it, then the
 * others by their owner's claim time; the owner id breaks ties. <0 when a goes first. */
static int live_order(const struct state_names *names, const struct name_claim *a,
                      const struct name_claim *b)
{
    uint64_t ta, tb;
    bool ea = name_claim_effective(names, a, &ta), eb = name_claim_effective(names, b, &tb);

    if (ea != eb)
        return ea ? -1 : 1;
    if (!ea) {
        ta = a->reserved_at_ms;
        tb = b->reserved_at_ms;
    }
    if (ta != tb)
        return ta < tb ? -1 : 1;
    return memcmp(a->owner, b->owner, STATE_OWNER_LEN);
}

/* Rank for the bound (see the top comment): <0 when a is kept before b. */
static int bound_rank_cmp(const struct state_names *names, const struct name_claim *a,
                          const struct name_claim *b, const struct name_claim *holder)
{
    bool a_tomb = a->kind == STATE_RECORD_RELEASE, b_tomb = b->kind == STATE_RECORD_RELEASE;

    if (a == holder || b == holder)
        return a == holder ? -1 : 1;
    if (a_tomb != b_tomb)
        return a_tomb ? -1 : 1;
    if (a_tomb) {
        if (a->issued_at_ms != b->issued_at_ms)
            return a->issued_at_ms > b->issued_at_ms ? -1 : 1;
        return memcmp(a->owner, b->owner, STATE_OWNER_LEN);
    }
    return live_order(names, a, b);
}

/* With the key full, returns the index in k->claims of the claim to drop for `fresh`, or -1
 * when `fresh` itself ranks last. */
static int bound_victim(const struct state_names *names, const struct name_key *k,
                        const struct name_claim *fresh)
{
    const struct name_claim *holder = NULL, *worst = fresh;
    int victim = -1;

    for (int i = 0; i <= k->claim_count; i++) {
        const struct name_claim *c = i < k->claim_count ? k->claims[i] : fresh;

        if (c->kind != STATE_RECORD_RELEASE && (holder == NULL || live_order(names, c, holder) < 0))
            holder = c;
    }
    for (int i = 0; i < k->claim_count; i++) {
        if (bound_rank_cmp(names, k->claims[i], worst, holder) > 0) {
            worst = k->claims[i];
            victim = i;
        }
    }
    return victim;
}

/* ---- merge ------------------------------------------------------------------------------ */

static int key_append(struct name_key *k, struct name_claim *c)
{
    if (k->claim_cap == 0) {
        k->claims = &k->one;
        k->claim_cap = 1;
    } else if (k->claim_count == k->claim_cap) {
        uint8_t cap = (uint8_t)(k->claim_cap * 2);
        struct name_claim **claims;

        if (cap > STATE_CLAIMS_PER_NAME_MAX)
            cap = STATE_CLAIMS_PER_NAME_MAX;
        if (k->claims == &k->one) {
            claims = malloc(cap * sizeof(*claims));
            if (claims != NULL)
                claims[0] = k->one;
        } else {
            claims = realloc(k->claims, cap * sizeof(*claims));
        }
        if (claims == NULL)
            return STATE_ENOMEM;
        k->claims = claims;
        k->claim_cap = cap;
    }
    k->claims[k->claim_count++] = c;
    return 0;
}

int state_names_merge(struct state_names *names, const struct state_record *rec,
                      struct state_name_view *changed)
{
    struct name_claim *fresh = NULL;
    struct name_key *k;
    uint8_t *enc;
    uint64_t record_hash;
    int n, idx, rc;

    if (strnlen(rec->name, sizeof(rec->name)) == sizeof(rec->name) ||
        rec->backend_count > STATE_BACKENDS_MAX)
        return STATE_EINVAL;
    enc = malloc(STATE_RECORD_MAX_BYTES);
    if (enc == NULL)
        return STATE_ENOMEM;
    n = state_record_encode(rec, enc, STATE_RECORD_MAX_BYTES);
    if (n < 0) {
        rc = n;
        goto done;
    }
    record_hash = bytes_hash(enc, (size_t)n);

    k = name_table_upsert(names, rec->name);
    if (k == NULL) {
        rc = STATE_ENOMEM;
        goto done;
    }
    idx = claim_find(k, rec->owner);
    if (idx >= 0) {
        rc = record_above(rec, enc, (size_t)n, record_hash, k->claims[idx], k->name);
        if (rc <= 0) {
            rc = rc == 0 ? STATE_ESTALE : rc;
            goto view;
        }
    }
    fresh = claim_new(rec, record_hash);
    if (fresh == NULL) {
        rc = STATE_ENOMEM;
        goto view;
    }
    if (idx < 0 && k->claim_count >= STATE_CLAIMS_PER_NAME_MAX) {
        idx = bound_victim(names, k, fresh);
        if (idx < 0) {
            rc = STATE_ESTALE; /* the newcomer ranks last: dropped, see the abuse bound */
            goto view;
        }
    }

    name_table_account(names, k, -1);
    if (idx >= 0) {
        struct name_claim *old = k->claims[idx];

        /* the witnesses are the owner's, not the version's: a new version keeps them, an
         * evicted owner's go with it */
        if (memcmp(old->owner, fresh->owner, STATE_OWNER_LEN) == 0) {
            fresh->witnesses = old->witnesses;
            fresh->witness_count = old->witness_count;
            fresh->witness_cap = old->witness_cap;
            old->witnesses = NULL;
        }
        name_claim_free(old);
        k->claims[idx] = fresh;
        rc = 1;
    } else {
        rc = key_append(k, fresh);
        rc = rc == 0 ? 1 : rc;
    }
    name_table_account(names, k, +1);
    if (rc == 1)
        fresh = NULL;

view:
    if (k->claim_count == 0) {
        name_table_remove(names, k); /* only a key created above that got nothing */
    } else if (changed != NULL) {
        name_key_view(names, k, changed);
    }
done:
    name_claim_free(fresh);
    free(enc);
    return rc;
}

/* ---- admission of client submissions ---------------------------------------------------- */

/* Who the API treats as holding a key: the holder, or while no live claim has enough
 * witnesses yet, the first pending claim by its owner's time (so an owner can expose a name it
 * reserved a moment ago, and a second owner is told it is taken). */
static int name_key_claimant(const struct state_names *names, const struct name_key *k)
{
    int h = name_key_holder(names, k);

    if (h >= 0)
        return h;
    for (int i = 0; i < k->claim_count; i++) {
        if (k->claims[i]->kind == STATE_RECORD_RELEASE)
            continue;
        if (h < 0 || live_order(names, k->claims[i], k->claims[h]) < 0)
            h = i;
    }
    return h;
}

static void format_time(uint64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (gmtime_r(&secs, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%" PRIu64 " ms", ms);
}

/* Whether rec claims the key anew for its owner (first claim, claim after own release, or a
 * changed claim time): those are the records whose claim time must be recent. */
static bool is_new_claim(const struct state_record *rec, const struct name_claim *own)
{
    return own == NULL || own->kind == STATE_RECORD_RELEASE ||
           own->reserved_at_ms != rec->reserved_at_ms;
}

int state_names_admit(const struct state_names *names, const struct state_record *rec,
                      uint64_t now_ms, char *err, size_t errlen)
{
    const struct name_key *k = name_table_find(names, rec->name);
    const struct name_claim *own = NULL, *holder = NULL;
    char owner_hex[STATE_OWNER_HEX_LEN + 1], when[32];
    bool is_claim = rec->kind == STATE_RECORD_RESERVE || rec->kind == STATE_RECORD_FQDN;

    if (k != NULL) {
        int h = name_key_claimant(names, k), o = claim_find(k, rec->owner);

        holder = h >= 0 ? k->claims[h] : NULL;
        own = o >= 0 ? k->claims[o] : NULL;
    }
    if (own != NULL && rec->version <= own->version) {
        state_errf(err, errlen, "%s: version %" PRIu64 " is not above your last version %" PRIu64,
                   rec->name, rec->version, own->version);
        return STATE_ESTALE;
    }
    if (holder != NULL && holder != own) {
        state_owner_format(holder->owner, owner_hex);
        format_time(holder->reserved_at_ms, when);
        if (is_claim) {
            state_errf(err, errlen, "%s is taken: held by %s since %s", rec->name, owner_hex, when);
            return STATE_ETAKEN;
        }
        state_errf(err, errlen, "%s is held by %s, not by the signer of this record", rec->name,
                   owner_hex);
        return STATE_ENOTOWNER;
    }
    if (holder == NULL && !is_claim) {
        if (rec->kind == STATE_RECORD_RELEASE)
            state_errf(err, errlen, "%s is not held by anyone: nothing to release", rec->name);
        else
            state_errf(err, errlen, "%s is not reserved: reserve it before exposing it", rec->name);
        return STATE_ENOTOWNER;
    }
    if (rec->kind != STATE_RECORD_RELEASE && is_new_claim(rec, own) &&
        rec->reserved_at_ms < now_ms && now_ms - rec->reserved_at_ms > NAME_CLAIM_PAST_MS) {
        state_errf(err, errlen,
                   "%s: claim time is %" PRIu64 " s in the past (a new claim may be at most %llu s "
                   "old)",
                   rec->name, (now_ms - rec->reserved_at_ms) / 1000, NAME_CLAIM_PAST_MS / 1000);
        return STATE_EINVAL;
    }
    return 0;
}
