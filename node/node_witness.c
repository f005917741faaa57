/*
 * node_witness.c - this gateway as a witness of claims: its own Ed25519 identity, the roster of
 * witness keys that count, countersigning the records it sees, and admitting the witnesses
 * other gateways send.
 *
 * Why: an owner signs its own claim time, so the owner's clock (or a lying fleet member's)
 * cannot order claims. Each gateway attests, with its own key and clock, when it first saw a
 * claim; the state layer orders claims by the (f+1)-th earliest attested time (the reasoning
 * is at the top of state/name_merge.c, the trust model in the README).
 *
 *   identity  DATA-DIR/node.key, an Ed25519 key made on first start or by `webgw identity`
 *             (0600, never overwritten); its public half rides in this member's gossip
 *             metadata, which travels under the cluster key
 *   roster    who may witness. f only means something if one operator cannot be several
 *             witnesses, and anyone holding the cluster key can start a process with a fresh
 *             node.key: so the roster is the operators' list, --fleet-keys FILE (fleet_keys.c
 *             in state/), one key per admitted gateway. It is read at start and on SIGHUP; f'
 *             counts its keys; this node's own key must be in it. A key it stops listing
 *             stops counting at once: the kept witnesses of that key are dropped
 *             (state_names_keep_witnesses) and the store forgets them at the next snapshot, so
 *             every node with the same file derives the same holders from the same
 *             witnesses, whatever it kept before. A witness from a key added later comes back
 *             with the next anti-entropy exchange.
 *             Without --fleet-keys the roster is open: every witness key a member ever
 *             announced (DATA-DIR/witness-roster, one hex key a line, add-only so a departed
 *             gateway's witnesses still count and forged departures cannot lower f). That
 *             lets one cluster-key holder be f+1 identities, so the daemon allows it only
 *             while gossip stays on loopback or with an explicit --fleet-open (config.c).
 *             In both modes witnesses from keys outside the roster are not kept (a member
 *             could otherwise mint keys by the thousand and crowd real witnesses out).
 *   policy    a witness is kept when its key is in the roster, its signature verifies and its
 *             time is at most STATE_FUTURE_SKEW_MS ahead of our clock
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

void node_witness_member(struct node *node, const char *member_name,
                         const uint8_t key[GOSSIP_WITNESS_KEY_LEN])
{
    static const uint8_t none[GOSSIP_WITNESS_KEY_LEN];
    char hex[STATE_OWNER_HEX_LEN + 1];

    if (memcmp(key, none, sizeof(none)) == 0)
        return;
    state_owner_format(key, hex);
    if (node->fleet != NULL) {
        if (!roster_has(node, key))
            node_log(NODE_LOG_WARN, "witness",
                     "member %s announces node key %.16s, which --fleet-keys does not list: "
                     "its witnesses do not count",
                     member_name, hex);
        return;
    }
    if (roster_add(node, key) != 1)
        return;
    roster_save(node);
    roster_apply(node);
    node_routes_rebuild(node);
    node_log(NODE_LOG_INFO, "witness", "witness %.16s joins the roster (%zu keys, claims need %u)",
             hex, node->roster_count, node_witness_need(node));
}

const char *node_witness_fleet_mode(const struct node *node)
{
    return node->fleet != NULL ? "roster" : "open";
}

unsigned node_witness_need(const struct node *node)
{
    unsigned fleet = (unsigned)node->roster_count, f = node->cfg.witness_faults;

    return (fleet > 0 && f > fleet - 1 ? fleet - 1 : f) + 1;
}

/* ---- identity --------------------------------------------------------------------------- */

/* Reads --fleet-keys into *fk: 0, or -1 with err set ("fleet-keys: FILE:LINE: why", or a file
 * that leaves this node out, with its key to add). */
static int fleet_read(const struct node *node, const char *path, struct state_fleet_keys *fk,
                      char *err, size_t errlen)
{
    char serr[STATE_ERR_MAX], hex[STATE_OWNER_HEX_LEN + 1];

    if (state_fleet_keys_load(path, fk, serr, sizeof(serr)) != 0) {
        /* serr already names the file and line; cut to what fits after the prefix */
        snprintf(err, errlen, "fleet-keys: %.*s", (int)sizeof(serr) - 13, serr);
        return -1;
    }
    if (!state_fleet_keys_has(fk, node->witness_key)) {
        state_owner_format(node->witness_key, hex);
        snprintf(err, errlen,
                 "fleet-keys: %s does not list this node's key; add the line \"%s %s\" (on "
                 "every gateway's copy)",
                 path, hex, node->cfg.node_name);
        return -1;
    }
    return 0;
}

/* Installs fk as the roster: f' follows its size, witnesses of keys it leaves out go. */
static void fleet_install(struct node *node, struct state_fleet_keys *fk)
{
    size_t dropped;

    free(node->fleet);
    node->fleet = fk;
    memcpy(node->roster, fk->keys, fk->count * sizeof(fk->keys[0]));
    node->roster_count = fk->count;
    roster_apply(node);
    dropped = state_names_keep_witnesses(node->names, node->roster, node->roster_count);
    if (dropped > 0) {
        node_log(NODE_LOG_INFO, "witness",
                 "dropped %zu kept witnesses of keys --fleet-keys does not list", dropped);
        node_compact_soon(node); /* the store forgets them too */
    }
}

void node_witness_reload(struct node *node, const char *path)
{
    struct state_fleet_keys *fk;
    char err[NODE_ERR_MAX];
    size_t added = 0, removed = 0;

    if ((path[0] != '\0') != (node->fleet != NULL)) {
        node_log(NODE_LOG_WARN, "config", "fleet-keys on or off changes only on restart");
        return;
    }
    if (node->fleet == NULL)
        return;
    fk = malloc(sizeof(*fk));
    if (fk == NULL || fleet_read(node, path, fk, err, sizeof(err)) != 0) {
        node_log(NODE_LOG_ERROR, "config", "%s (keeping the roster of %zu keys)",
                 fk ? err : "fleet-keys: out of memory", node->roster_count);
        free(fk);
        return;
    }
    for (size_t i = 0; i < fk->count; i++)
        added += !roster_has(node, fk->keys[i]);
    for (size_t i = 0; i < node->roster_count; i++)
        removed += !state_fleet_keys_has(fk, node->roster[i]);
    snprintf(node->cfg.fleet_keys, sizeof(node->cfg.fleet_keys), "%s", path);
    fleet_install(node, fk);
    node_routes_rebuild(node);
    node_log(NODE_LOG_INFO, "witness",
             "fleet-keys %s: %zu keys (%zu added, %zu removed), claims need %u", path,
             node->roster_count, added, removed, node_witness_need(node));
}

/* Loads node.key from data_dir, or makes it (0600) when there is none. */
static struct state_key *identity_open(const char *data_dir, bool *created, char *err,
                                       size_t errlen)
{
    char path[NODE_PATH_MAX + 32];

    snprintf(path, sizeof(path), "%s/%s", data_dir, IDENTITY_FILE);
    *created = access(path, F_OK) != 0;
    return *created ? state_key_generate(path, err, errlen) : state_key_load(path, err, errlen);
}

int node_identity(const char *data_dir, char hex[STATE_OWNER_HEX_LEN + 1], bool *created, char *err,
                  size_t errlen)
{
    char serr[STATE_ERR_MAX];
    uint8_t pub[STATE_OWNER_LEN];
    struct state_key *key;

    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "data-dir: cannot create %s: %s", data_dir, strerror(errno));
        return -1;
    }
    key = identity_open(data_dir, created, serr, sizeof(serr));
    if (key == NULL) {
        snprintf(err, errlen, "data-dir: node identity: %s", serr);
        return -1;
    }
    state_key_owner(key, pub);
    state_key_free(key);
    state_owner_format(pub, hex);
    return 0;
}

int node_witness_start(struct node *node, char *err, size_t errlen)
{
    char serr[STATE_ERR_MAX], hex[STATE_OWNER_HEX_LEN + 1];
    bool created;

    node->roster = calloc(NODE_ROSTER_MAX, sizeof(*node->roster));
    if (node->roster == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    node->identity = identity_open(node->cfg.data_dir, &created, serr, sizeof(serr));
    if (node->identity == NULL) {
        snprintf(err, errlen, "data-dir: node identity: %s", serr);
        return -1;
    }
    state_key_owner(node->identity, node->witness_key);
    state_owner_format(node->witness_key, hex);
    if (node->cfg.fleet_keys[0] != '\0') {
        struct state_fleet_keys *fk = malloc(sizeof(*fk));

        if (fk == NULL || fleet_read(node, node->cfg.fleet_keys, fk, err, errlen) != 0) {
            if (fk == NULL)
                snprintf(err, errlen, "out of memory");
            free(fk);
            return -1;
        }
        fleet_install(node, fk);
        node_log(NODE_LOG_INFO, "witness", "node key %s; fleet-keys %s: %zu keys, claims need %u",
                 hex, node->cfg.fleet_keys, node->roster_count, node_witness_need(node));
        return 0;
    }
    roster_load(node);
    if (roster_add(node, node->witness_key) == 1)
        roster_save(node);
    roster_apply(node);
    node_log(NODE_LOG_INFO, "witness", "node key %s; open roster: %zu keys, claims need %u", hex,
             node->roster_count, node_witness_need(node));
    if (node->cfg.fleet_open)
        node_log(NODE_LOG_WARN, "witness",
                 "--fleet-open: every key a member announces may witness; one holder of the "
                 "cluster key can run extra identities and take names (give --fleet-keys)");
    return 0;
}

void node_witness_free(struct node *node)
{
    state_key_free(node->identity);
    node->identity = NULL;
    free(node->roster);
    node->roster = NULL;
    free(node->fleet);
    node->fleet = NULL;
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
    /* group commit: durable within NODE_STORE_SYNC_MS, or with the next acknowledged record */
    if (state_store_stage_witness(node->store, name, owner, w, err, sizeof(err)) != 0) {
        /* kept in memory; anti-entropy brings it back after a restart */
        node_log(NODE_LOG_ERROR, "store", "witness for %s not stored: %s", name, err);
    } else {
        node_store_staged(node);
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
        if (node->fleet != NULL) {
            snprintf(err, errlen, "witness %.16s is not in --fleet-keys", hex);
            node->rec_stats.witnesses_unadmitted++;
        } else {
            snprintf(err, errlen, "witness %.16s is not a known fleet member", hex);
            node->rec_stats.witnesses_refused++;
        }
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
