/*
 * node_records.c - the record flow: how a signed record becomes state on this node.
 *
 * The API and gossip share one path so that a record means the same thing whichever way it
 * came:
 *
 *   size -> decode -> validate -> verify -> [admit: API only] -> merge -> fsync -> routes
 *        -> [202: API only] -> dissemination
 *
 * Two differences, both deliberate. Admission (taken, not the owner, stale version) answers a
 * client precisely; gossip skips it because merge alone decides the replicated state. And a
 * client's record is checked against this node's address policy (loopback allowed or not, our
 * own listen addresses), while a gossiped record is checked only against the rules every node
 * shares: if nodes refused each other's records by local policy, their states would never
 * converge. The proxy still refuses to forward to its own addresses.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_internal.h"

void node_validate_policy(const struct node *node, struct state_validate_policy *pol)
{
    memset(pol, 0, sizeof(*pol));
    pol->allow_loopback = node->cfg.allow_loopback_backends;
    pol->own_addrs = node->own_addrs;
    pol->own_addr_count = node->own_addr_count;
    pol->now_ms = state_now_ms();
    pol->domain = node->cfg.domain;
    pol->fleet_addrs = node->fleet_addrs;
    pol->fleet_addr_count = node->fleet_addr_count;
    pol->deny = node->cfg.deny_backend;
    pol->deny_count = node->cfg.deny_backend_count;
}

static void fleet_add(struct state_backend *v, size_t *n, const struct gossip_addr *a)
{
    static const uint8_t zero[16];

    /* a wildcard is a listener's, not an address anyone reaches it at */
    if ((a->family != 4 && a->family != 6) || a->port == 0 ||
        memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0)
        return;
    memset(&v[*n], 0, sizeof(v[*n]));
    v[*n].family = a->family;
    memcpy(v[*n].addr, a->ip, a->family == 4 ? 4 : 16);
    v[*n].port = a->port;
    (*n)++;
}

void node_fleet_addrs_update(struct node *node)
{
    struct gossip_member *members;
    struct state_backend *v;
    size_t count, n = 0;

    if (!node->gossip)
        return;
    count = gossip_members(node->gossip, NULL, 0);
    members = calloc(count ? count : 1, sizeof(*members));
    v = calloc(count * 4 + 1, sizeof(*v));
    if (!members || !v) {
        free(members);
        free(v);
        return;
    }
    count = gossip_members(node->gossip, members, count);
    /* every state: a dead member's addresses come back with it */
    for (size_t i = 0; i < count; i++) {
        fleet_add(v, &n, &members[i].addr);
        fleet_add(v, &n, &members[i].meta.http);
        fleet_add(v, &n, &members[i].meta.https);
        fleet_add(v, &n, &members[i].meta.api);
    }
    free(members);
    n = state_backends_sort(v, n);
    if (n == node->fleet_addr_count &&
        (n == 0 || memcmp(v, node->fleet_addrs, n * sizeof(*v)) == 0)) {
        free(v);
        return;
    }
    free(node->fleet_addrs);
    node->fleet_addrs = v;
    node->fleet_addr_count = n;
    node_routes_rebuild(node);
}

bool node_backend_allowed(const struct node *node, const struct state_backend *be)
{
    struct state_validate_policy pol;
    char err[STATE_ERR_MAX];

    node_validate_policy(node, &pol);
    return state_backend_check(be, &pol, err, sizeof(err)) == 0;
}

/* Routes follow this node's address policy, not only the shared rules: a record accepted by
 * a node started with --allow-loopback-backends reaches every node (state converges), but a
 * node without the flag never forwards to its own loopback services, nor any node to its own
 * addresses. Backends this node refuses are left out of its route; a name left with none has
 * no route here. */
static int records_route(struct node *node, const struct state_name_view *view)
{
    struct state_name_view local = *view;
    struct state_record *rec = &local.record;
    uint8_t kept = 0;

    /* an fqdn is routed only while its DNS points at the fleet (node_fqdn.c); applying the
     * view as unheld removes the host with the route table's own guards */
    if (view->held && rec->kind == STATE_RECORD_FQDN && !node_fqdn_served(node, view->name)) {
        local.held = false;
        return state_routes_apply(node->routes, &local, node->cfg.domain);
    }

    for (unsigned i = 0; i < rec->backend_count; i++)
        if (node_backend_allowed(node, &rec->backends[i]))
            rec->backends[kept++] = rec->backends[i];
    if (kept != rec->backend_count)
        node_log(NODE_LOG_WARN, "routes", "%s: %u of %u backends refused by this node's policy",
                 view->name, (unsigned)(rec->backend_count - kept), (unsigned)rec->backend_count);
    rec->backend_count = kept;
    if (state_routes_apply(node->routes, &local, node->cfg.domain) != 0)
        return -1;
    if (local.held)
        node_proxy_fleet_sync(node, rec);
    return 0;
}

/* Our own witness of owner's record on name (when we have not attested its claim yet), then
 * the key's route and an event from the view that results. */
static void records_settle(struct node *node, const struct state_record *rec, const char *via,
                           bool record_changed)
{
    struct state_name_view view;
    char owner[STATE_OWNER_HEX_LEN + 1];

    node_witness_record(node, rec->name, rec->owner, NULL);
    if (state_names_get(node->names, rec->name, &view) != 0)
        return;
    if (records_route(node, &view) != 0) {
        /* the record is durable; the route catches up on the next rebuild */
        node_log(NODE_LOG_ERROR, "routes", "route update for %s failed", view.name);
    }
    node_probes_dirty(node);
    if (view.held && view.record.kind == STATE_RECORD_FQDN)
        node_fqdn_check_soon(node, view.name);
    if (!record_changed)
        return;
    state_owner_format(rec->owner, owner);
    node_event(node, "record", "%s %s v%llu by %.12s (%s)%s", state_record_kind_name(rec->kind),
               rec->name, (unsigned long long)rec->version, owner, via,
               rec->kind == STATE_RECORD_RELEASE                                          ? ""
               : view.held && memcmp(view.record.owner, rec->owner, STATE_OWNER_LEN) == 0 ? ""
               : view.pending ? " - waiting for witnesses"
                              : " - a contender");
}

/* Stages a record the merge called new information (group commit: durable within
 * NODE_STORE_SYNC_MS; the API syncs before it acknowledges). */
static int records_commit(struct node *node, const struct state_record *rec, char *err,
                          size_t errlen)
{
    if (state_store_stage(node->store, rec, err, errlen) != 0)
        return -1;
    node_store_staged(node);
    if (state_store_log_bytes(node->store) >= node->cfg.compact_bytes)
        node_compact_soon(node);
    return 0;
}

/* The growth limits (state_names_quota) under this node's settings. */
static int records_quota(const struct node *node, const struct state_record *rec, char *err,
                         size_t errlen)
{
    const struct state_quota q = {.names_per_owner = (size_t)node->cfg.max_names_per_owner,
                                  .records_max = (size_t)node->cfg.max_records};

    return state_names_quota(node->names, rec, &q, err, errlen);
}

void node_record_submit(struct node *node, const uint8_t *buf, size_t len,
                        struct node_submit_result *res)
{
    struct state_record rec;
    struct state_name_view view, current;
    struct state_validate_policy pol;
    char err[STATE_ERR_MAX];
    int rc;

    memset(res, 0, sizeof(*res));
    if (len > STATE_RECORD_MAX_BYTES) {
        res->status = 413;
        snprintf(res->message, sizeof(res->message), "record is %zu bytes, the limit is %d", len,
                 STATE_RECORD_MAX_BYTES);
        node->rec_stats.too_big++;
        return;
    }
    if (len == 0) {
        res->status = 400;
        snprintf(res->message, sizeof(res->message), "empty body: expected a signed record");
        node->rec_stats.invalid++;
        return;
    }
    err[0] = '\0';
    if (state_record_decode(buf, len, &rec, err, sizeof(err)) != 0) {
        res->status = 400;
        snprintf(res->message, sizeof(res->message), "malformed record: %s", err);
        node->rec_stats.invalid++;
        return;
    }
    node_validate_policy(node, &pol);
    if (state_record_validate(&rec, &pol, err, sizeof(err)) != 0) {
        res->status = 400;
        snprintf(res->message, sizeof(res->message), "%s", err);
        node->rec_stats.invalid++;
        return;
    }
    if (state_record_verify(&rec, err, sizeof(err)) != 0) {
        res->status = 403;
        snprintf(res->message, sizeof(res->message), "%s", err[0] ? err : "bad signature");
        node->rec_stats.forbidden++;
        return;
    }
    /* a retry of a record we already hold is a success, not a stale version: the client may
     * have lost our first 202 */
    if (state_names_get(node->names, rec.name, &current) == 0 &&
        memcmp(current.record.signature, rec.signature, STATE_SIGNATURE_LEN) == 0) {
        res->status = 202;
        snprintf(res->message, sizeof(res->message), "already accepted");
        node->rec_stats.duplicate++;
        return;
    }
    rc = state_names_admit(node->names, &rec, pol.now_ms, err, sizeof(err));
    if (rc != 0) {
        switch (rc) {
        case STATE_ETAKEN:
        case STATE_ESTALE:
            res->status = 409;
            node->rec_stats.conflict++;
            break;
        case STATE_ENOTOWNER:
        case STATE_ESIGNATURE:
            res->status = 403;
            node->rec_stats.forbidden++;
            break;
        case STATE_ETOOBIG:
            res->status = 413;
            node->rec_stats.too_big++;
            break;
        case STATE_EINVAL:
            res->status = 400;
            node->rec_stats.invalid++;
            break;
        default:
            res->status = 500;
            node->rec_stats.failed++;
            break;
        }
        snprintf(res->message, sizeof(res->message), "%s", err[0] ? err : "refused");
        return;
    }
    rc = records_quota(node, &rec, err, sizeof(err));
    if (rc != 0) {
        res->status = rc == STATE_EQUOTA ? 403 : 429;
        if (rc == STATE_EQUOTA)
            node->rec_stats.over_owner_limit++;
        else
            node->rec_stats.over_fleet_limit++;
        snprintf(res->message, sizeof(res->message), "%s", err);
        return;
    }
    rc = state_names_merge(node->names, &rec, &view);
    if (rc == STATE_ESTALE) {
        res->status = 202;
        snprintf(res->message, sizeof(res->message), "already known");
        node->rec_stats.duplicate++;
        return;
    }
    if (rc < 0) {
        res->status = 500;
        snprintf(res->message, sizeof(res->message), "merge failed: out of memory");
        node->rec_stats.failed++;
        return;
    }
    /* the record and our witness of it, durable together (one fdatasync) before the 202 */
    rc = records_commit(node, &rec, err, sizeof(err));
    if (rc == 0) {
        node_witness_record(node, rec.name, rec.owner, NULL); /* a failure is logged */
        rc = node_store_flush(node, err, sizeof(err));
    }
    if (rc != 0) {
        res->status = 500;
        snprintf(res->message, sizeof(res->message), "not stored: %s", err);
        node_log(NODE_LOG_ERROR, "store", "record %s v%llu not stored: %s", rec.name,
                 (unsigned long long)rec.version, err);
        node->rec_stats.failed++;
        return;
    }
    node->rec_stats.accepted++;
    records_settle(node, &rec, "api", true);
    /* durable here first, then the fleet hears of it, with our witness */
    node_gossip_broadcast(node, rec.name, rec.owner);
    res->status = 202;
    res->changed = true;
    snprintf(res->message, sizeof(res->message), "accepted %s %s v%llu%s",
             state_record_kind_name(rec.kind), rec.name, (unsigned long long)rec.version,
             rec.kind == STATE_RECORD_FQDN && !node_fqdn_served(node, rec.name)
                 ? "; served once its DNS points at the fleet (checking now)"
                 : "");
}

int node_record_receive(struct node *node, const uint8_t *buf, size_t len, const char *item_key)
{
    struct state_witness *w = NULL;
    struct state_record rec, held;
    struct state_validate_policy pol;
    char err[STATE_ERR_MAX];
    size_t nw = 0;
    bool changed = false, record_changed = false;
    int rc;

    w = malloc(STATE_WITNESSES_MAX * sizeof(*w));
    if (w == NULL)
        return STATE_ENOMEM;
    if (len > STATE_BUNDLE_MAX_BYTES ||
        state_bundle_decode(buf, len, &rec, w, &nw, err, sizeof(err)) != 0)
        goto drop;
    if (item_key) {
        char key[GOSSIP_KEY_MAX + 1];
        node_item_key(&rec, key);
        if (strcmp(key, item_key) != 0) {
            snprintf(err, sizeof(err), "item key %.80s does not match its record", item_key);
            goto drop;
        }
    }
    /* an Ed25519 check costs far more than a lookup: a record older than (or the same as)
     * the one we hold from its owner changes nothing, so it is not verified nor merged (its
     * witnesses still count: they attest the owner's entry, whichever version we hold) */
    if (state_names_owner_record(node->names, rec.name, rec.owner, &held) == 0 &&
        (rec.version < held.version ||
         (rec.version == held.version &&
          memcmp(rec.signature, held.signature, STATE_SIGNATURE_LEN) == 0))) {
        node->rec_stats.from_gossip_stale++;
        rc = STATE_ESTALE;
    } else if (records_quota(node, &rec, err, sizeof(err)) != 0) {
        /* past a limit: dropped before the verify, its witnesses with it (they attest an
         * entry we do not keep); logged once a minute, counted always */
        uint64_t now = state_now_ms();

        node->rec_stats.from_gossip_over_limit++;
        if (now - node->rec_stats.over_limit_logged_ms >= 60000) {
            node->rec_stats.over_limit_logged_ms = now;
            node_log(NODE_LOG_WARN, "gossip", "record dropped: %s (%llu so far)", err,
                     (unsigned long long)node->rec_stats.from_gossip_over_limit);
        }
        free(w);
        return STATE_EINVAL;
    } else {
        if (state_record_verify(&rec, err, sizeof(err)) != 0)
            goto drop;
        /* shared rules only: see the comment at the top of this file */
        memset(&pol, 0, sizeof(pol));
        pol.allow_loopback = true;
        pol.now_ms = state_now_ms();
        pol.domain = node->cfg.domain;
        if (state_record_validate(&rec, &pol, err, sizeof(err)) != 0)
            goto drop;
        rc = state_names_merge(node->names, &rec, NULL);
    }
    if (rc < 0 && rc != STATE_ESTALE) {
        free(w);
        return rc;
    }
    if (rc == 1) {
        if (records_commit(node, &rec, err, sizeof(err)) != 0) {
            node_log(NODE_LOG_ERROR, "store", "gossiped record %s not stored: %s", rec.name, err);
            free(w);
            return STATE_EIO;
        }
        node->rec_stats.from_gossip_accepted++;
        changed = record_changed = true;
    }
    /* the witnesses attest the owner's entry, whichever of its versions we hold */
    for (size_t i = 0; i < nw; i++) {
        rc = node_witness_admit(node, rec.name, rec.owner, &w[i], NULL, err, sizeof(err));
        if (rc < 0)
            node_log(NODE_LOG_DEBUG, "gossip", "witness for %s refused: %s", rec.name, err);
        changed |= rc == 1;
    }
    free(w);
    changed |= node_witness_record(node, rec.name, rec.owner, NULL) == 1;
    if (changed) {
        records_settle(node, &rec, "gossip", record_changed);
        node_gossip_broadcast(node, rec.name, rec.owner);
    }
    return 0;
drop:
    free(w);
    node->rec_stats.from_gossip_dropped++;
    node_log(NODE_LOG_DEBUG, "gossip", "record dropped: %s", err);
    return STATE_EINVAL;
}

static int records_route_one(const struct state_name_view *view, void *ctx)
{
    records_route(ctx, view);
    return 0;
}

void node_route_name(struct node *node, const char *name)
{
    struct state_name_view view;

    if (state_names_get(node->names, name, &view) == 0)
        records_route(node, &view);
}

void node_routes_rebuild(struct node *node)
{
    state_names_each_unordered(node->names, records_route_one, node);
}

void node_event(struct node *node, const char *kind, const char *fmt, ...)
{
    struct node_event *ev = &node->events[node->events_next];
    va_list ap;

    ev->ts_ms = state_now_ms();
    snprintf(ev->kind, sizeof(ev->kind), "%s", kind);
    va_start(ap, fmt);
    vsnprintf(ev->text, sizeof(ev->text), fmt, ap);
    va_end(ap);
    node->events_next = (node->events_next + 1) % NODE_EVENTS_MAX;
    if (node->events_count < NODE_EVENTS_MAX)
        node->events_count++;
    node_log(NODE_LOG_INFO, kind, "%s", ev->text);
}
