/*
 * node_witness.c - this gateway as a witness of claims: its own Ed25519 identity, the roster of
 * witness keys the fleet announced, countersigning the records it sees, and admitting the
 * witnesses other gateways send.
 *
 * Why: an owner signs its own claim time, so the owner's clock (or a lying fleet member's)
 * cannot order claims. Each gateway attests, with its own key and clock, when it first saw a
 * claim; the state layer orders claims by the (f+1)-th earliest attested time (the reasoning
 * is at the top of state/name_merge.c, the trust model in the README).
 *
 *   identity  DATA-DIR/node.key, an Ed25519 key made on first start (0600, never overwritten);
 *             its public half rides in this member's gossip metadata, which travels under the
 *             cluster key
 *   roster    every witness key announced by a member, ever (DATA-DIR/witness-roster, one hex
 *             key a line, at most NODE_ROSTER_MAX). Add-only on purpose: a member that leaves
 *             still saw what it saw, and a roster that could shrink would let whoever forges
 *             departures lower f. Witnesses from keys outside it are not kept (a fleet member
 *             could otherwise mint keys by the thousand and crowd real witnesses out); they come
 *             back with the next anti-entropy exchange once the key is known.
 *   policy    a witness is kept when its key is in the roster, its signature verifies and its
 *             time is at most STATE_FUTURE_SKEW_MS ahead of our clock
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node_internal.h"

#define ROSTER_FILE "witness-roster"
#define IDENTITY_FILE "node.key"

/* ---- roster ----------------------------------------------------------------------------- */

static bool roster_has(const struct node *node, const uint8_t key[STATE_OWNER_LEN])
{
    for (size_t i = 0; i < node->roster_count; i++)
        if (memcmp(node->roster[i], key, STATE_OWNER_LEN) == 0)
            return true;
    return false;
}

/* Writes the roster (temporary file, fsync, rename): a restart keeps every key it knew. */
static void roster_save(const struct node *node)
{
    char path[NODE_PATH_MAX + 32], tmp[NODE_PATH_MAX + 40], hex[STATE_OWNER_HEX_LEN + 1];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", node->cfg.data_dir, ROSTER_FILE);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL) {
        node_log(NODE_LOG_ERROR, "witness", "cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    for (size_t i = 0; i < node->roster_count; i++) {
        state_owner_format(node->roster[i], hex);
        fprintf(f, "%s\n", hex);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0 || fclose(f) != 0 || rename(tmp, path) != 0)
        node_log(NODE_LOG_ERROR, "witness", "cannot write %s: %s", path, strerror(errno));
}

/* The fleet size changed: claims may need more (or, at start, fewer) witnesses. */
static void roster_apply(struct node *node)
{
    state_names_set_witnessing(node->names, node->cfg.witness_faults, (unsigned)node->roster_count);
}

static int roster_add(struct node *node, const uint8_t key[STATE_OWNER_LEN])
{
    if (roster_has(node, key))
        return 0;
    if (node->roster_count == NODE_ROSTER_MAX) {
        node_log(NODE_LOG_WARN, "witness", "witness roster full (%d keys): a new key is ignored",
                 NODE_ROSTER_MAX);
        return -1;
    }
    memcpy(node->roster[node->roster_count++], key, STATE_OWNER_LEN);
    return 1;
}

static void roster_load(struct node *node)
{
    char path[NODE_PATH_MAX + 32], line[160];
    uint8_t key[STATE_OWNER_LEN];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", node->cfg.data_dir, ROSTER_FILE);
    f = fopen(path, "r");
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        if (state_owner_parse(line, key) == 0)
            roster_add(node, key);
    }
    fclose(f);
}

void node_witness_member(struct node *node, const uint8_t key[GOSSIP_WITNESS_KEY_LEN])
{
    static const uint8_t none[GOSSIP_WITNESS_KEY_LEN];
    char hex[STATE_OWNER_HEX_LEN + 1];

    if (memcmp(key, none, sizeof(none)) == 0 || roster_add(node, key) != 1)
        return;
    roster_save(node);
    roster_apply(node);
    node_routes_rebuild(node);
    state_owner_format(key, hex);
    node_log(NODE_LOG_INFO, "witness", "witness %.16s joins the roster (%zu keys, claims need %u)",
             hex, node->roster_count, node_witness_need(node));
}

unsigned node_witness_need(const struct node *node)
{
    unsigned fleet = (unsigned)node->roster_count, f = node->cfg.witness_faults;

    return (fleet > 0 && f > fleet - 1 ? fleet - 1 : f) + 1;
}

/* ---- identity --------------------------------------------------------------------------- */

int node_witness_start(struct node *node, char *err, size_t errlen)
{
    char path[NODE_PATH_MAX + 32], serr[STATE_ERR_MAX];

    node->roster = calloc(NODE_ROSTER_MAX, sizeof(*node->roster));
    if (node->roster == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/%s", node->cfg.data_dir, IDENTITY_FILE);
    node->identity = access(path, F_OK) == 0 ? state_key_load(path, serr, sizeof(serr))
                                             : state_key_generate(path, serr, sizeof(serr));
    if (node->identity == NULL) {
        snprintf(err, errlen, "data-dir: node identity: %s", serr);
        return -1;
    }
    state_key_owner(node->identity, node->witness_key);
    roster_load(node);
    if (roster_add(node, node->witness_key) == 1)
        roster_save(node);
    roster_apply(node);
    return 0;
}

void node_witness_free(struct node *node)
{
    state_key_free(node->identity);
    node->identity = NULL;
    free(node->roster);
    node->roster = NULL;
    node->roster_count = 0;
}

/* ---- countersigning --------------------------------------------------------------------- */

/* Whether our own kept witness already attests rec (the same claim, or its release). */
static bool witnessed_by_us(const struct node *node, const struct state_record *rec)
{
    struct state_witness w[STATE_WITNESSES_MAX];
    size_t n = state_names_witnesses(node->names, rec->name, rec->owner, w);
    bool release = rec->kind == STATE_RECORD_RELEASE;

    for (size_t i = 0; i < n; i++)
        if (memcmp(w[i].key, node->witness_key, STATE_OWNER_LEN) == 0)
            return w[i].released == release && (release || w[i].claim_at_ms == rec->reserved_at_ms);
    return false;
}

/* Merges an admitted witness and stores it. Returns 1 when it was new, 0 when not, <0 on a
 * failure (logged). */
static int witness_keep(struct node *node, const char *name, const uint8_t owner[STATE_OWNER_LEN],
                        const struct state_witness *w, struct state_name_view *view)
{
    char err[STATE_ERR_MAX];
    int rc = state_names_witness(node->names, name, owner, w, view);

    if (rc != 1)
        return rc == STATE_ESTALE || rc == STATE_ENOTFOUND ? 0 : rc;
    if (state_store_append_witness(node->store, name, owner, w, err, sizeof(err)) != 0) {
        /* kept in memory; anti-entropy brings it back after a restart */
        node_log(NODE_LOG_ERROR, "store", "witness for %s not stored: %s", name, err);
    }
    if (state_store_log_bytes(node->store) >= node->cfg.compact_bytes)
        node_compact_soon(node);
    return 1;
}

int node_witness_record(struct node *node, const char *name, const uint8_t owner[STATE_OWNER_LEN],
                        struct state_name_view *view)
{
    struct state_record rec;
    struct state_witness w;
    char err[STATE_ERR_MAX];
    int rc;

    if (node->identity == NULL || state_names_owner_record(node->names, name, owner, &rec) != 0 ||
        witnessed_by_us(node, &rec))
        return 0;
    if (state_witness_sign(&w, node->identity, &rec, state_now_ms(), err, sizeof(err)) != 0) {
        node_log(NODE_LOG_ERROR, "witness", "cannot sign a witness for %s: %s", name, err);
        return -1;
    }
    rc = witness_keep(node, name, owner, &w, view);
    node->rec_stats.witnesses_signed += rc == 1;
    return rc;
}

static bool witness_same(const struct state_witness *a, const struct state_witness *b)
{
    return a->version == b->version && a->claim_at_ms == b->claim_at_ms &&
           a->released == b->released && a->time_ms == b->time_ms &&
           memcmp(a->key, b->key, STATE_OWNER_LEN) == 0 &&
           memcmp(a->signature, b->signature, STATE_SIGNATURE_LEN) == 0;
}

int node_witness_admit(struct node *node, const char *name, const uint8_t owner[STATE_OWNER_LEN],
                       const struct state_witness *w, struct state_name_view *view, char *err,
                       size_t errlen)
{
    struct state_witness kept[STATE_WITNESSES_MAX];
    size_t nkept = state_names_witnesses(node->names, name, owner, kept);
    char hex[STATE_OWNER_HEX_LEN + 1];
    int rc;

    /* a witness we keep already (every bundle resent repeats them) costs no verify */
    for (size_t i = 0; i < nkept; i++)
        if (witness_same(&kept[i], w))
            return 0;
    if (!roster_has(node, w->key)) {
        state_owner_format(w->key, hex);
        snprintf(err, errlen, "witness %.16s is not a known fleet member", hex);
        node->rec_stats.witnesses_refused++;
        return STATE_EINVAL;
    }
    if (w->time_ms > state_now_ms() + STATE_FUTURE_SKEW_MS) {
        snprintf(err, errlen, "witness time %llu is in the future", (unsigned long long)w->time_ms);
        node->rec_stats.witnesses_refused++;
        return STATE_EINVAL;
    }
    if (state_witness_verify(w, name, owner, err, errlen) != 0) {
        node->rec_stats.witnesses_refused++;
        return STATE_ESIGNATURE;
    }
    rc = witness_keep(node, name, owner, w, view);
    node->rec_stats.witnesses_kept += rc == 1;
    return rc;
}

/* Startup: attest whatever the store holds that we have not attested yet (a data dir from
 * before witnesses, or records that arrived just before a crash). */
static int witness_one(const struct state_record *rec, void *ctx)
{
    node_witness_record(ctx, rec->name, rec->owner, NULL);
    return 0;
}

void node_witness_all(struct node *node)
{
    state_names_each_record(node->names, witness_one, node);
}

/* ---- bundles ---------------------------------------------------------------------------- */

int node_bundle_encode(const struct node *node, const struct state_record *rec, uint8_t *buf,
                       size_t cap)
{
    struct state_witness w[STATE_WITNESSES_MAX];
    size_t n = state_names_witnesses(node->names, rec->name, rec->owner, w);

    return state_bundle_encode(rec, w, n, buf, cap);
}

uint64_t node_bundle_hash(const struct node *node, const struct state_record *rec)
{
    struct state_witness w[STATE_WITNESSES_MAX];
    size_t n = state_names_witnesses(node->names, rec->name, rec->owner, w);
    uint64_t h = 0;

    /* the record's signature and every kept witness's: two nodes with the same record but
     * different witnesses differ, so push-pull exchanges the bundle */
    for (int i = 0; i < 8; i++)
        h = (h << 8) | rec->signature[i];
    for (size_t i = 0; i < n; i++) {
        uint64_t x = 0;
        for (int j = 0; j < 8; j++)
            x = (x << 8) | w[i].signature[j];
        h ^= x * 0x9e3779b97f4a7c15ULL + i;
    }
    return h ? h : 1;
}
