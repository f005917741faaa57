/*
 * node_gossip.c - the node's side of gossip: records as gossip items, members and backend
 * health as the API shows them, and the gossip counters for /metrics.
 *
 * Items: one per owner and key, a bundle of the owner's latest record (what
 * state_names_each_record lists) and the witnesses kept for it, so two nodes that exchanged
 * every item hold the same records and witnesses. The item key is "OWNERHEX/NAME"
 * ("OWNERHEX/#HASH" when a long fqdn would not fit GOSSIP_KEY_MAX), the version is the
 * record's, and the digest hash mixes the record's and the witnesses' signatures
 * (node_bundle_hash), which tells two different bundles of one version apart.
 *
 * Without a cluster key (and without --gossip-insecure) the node runs alone: gossip runs on no
 * transport at all, nothing listens, nothing is sent, and the node neither joins nor can be
 * joined. The gossip instance still exists so that members, health and the API behave as on a
 * fleet of one.
 */
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_internal.h"

#define NODE_PROBE_REFRESH_MS 500 /* delay before recomputing our probe assignment */

void node_item_key(const struct state_record *rec, char out[GOSSIP_KEY_MAX + 1])
{
    char owner[STATE_OWNER_HEX_LEN + 1];

    state_owner_format(rec->owner, owner);
    if (strlen(rec->name) + STATE_OWNER_HEX_LEN + 1 <= GOSSIP_KEY_MAX) {
        /* memcpy, not snprintf: the length is checked above, which -Os's format-truncation
         * analysis cannot see (it broke the MinSizeRel build) */
        size_t nlen = strlen(rec->name);
        memcpy(out, owner, STATE_OWNER_HEX_LEN);
        out[STATE_OWNER_HEX_LEN] = '/';
        memcpy(out + STATE_OWNER_HEX_LEN + 1, rec->name, nlen + 1);
    } else {
        unsigned char md[32];
        unsigned int mdlen = 0;
        char hex[33];
        EVP_Digest(rec->name, strlen(rec->name), md, &mdlen, EVP_sha256(), NULL);
        for (int i = 0; i < 16; i++)
            snprintf(hex + 2 * i, 3, "%02x", md[i]);
        snprintf(out, GOSSIP_KEY_MAX + 1, "%s/#%s", owner, hex);
    }
}

/* ---- callbacks (on the control loop) ------------------------------------------------- */

static int node_on_item(void *ctx, const char *key, uint64_t version, const uint8_t *bytes,
                        size_t len)
{
    if (node_acme_item_key(key))
        return node_acme_on_item(ctx, key, version, bytes, len);
    if (node_traffic_item_key(key))
        return node_traffic_on_item(ctx, key, version, bytes, len);
    return node_record_receive(ctx, bytes, len, key);
}

/* ---- item keys of long names -------------------------------------------------------------
 *
 * An item key is "OWNERHEX/NAME", found in O(1) by name then owner. A name too long for that
 * travels as "OWNERHEX/#HASH" (node_item_key), and the hash alone does not give the name back:
 * this index does. It is filled whenever anti-entropy walks the records (each_item, before any
 * peer can ask for one of them) and when a long-named record is broadcast, and emptied when it
 * outgrows the record set, so it never holds more than the records plus a margin. A stale entry
 * costs one failed lookup. */

#define NODE_LONGKEY_BUCKETS 64 /* first size of the index (it grows) */

struct node_longkey {
    struct state_hash_node node; /* in node.longkeys, by hash */
    char hash[33];               /* the "#HASH" part, without '#' */
    char name[];                 /* the long name */
};

/* What longkey_is compares: the hash, and the name unless it is NULL. */
struct node_longkey_id {
    const char *hash; /* without '#' */
    const char *name; /* NULL: any name under that hash */
};

void node_longkeys_free(struct node *node)
{
    state_hash_table_free_all(&node->longkeys, offsetof(struct node_longkey, node));
}

static bool longkey_is(const struct state_hash_node *n, const void *key)
{
    const struct node_longkey *e = STATE_HASH_ENTRY(n, struct node_longkey, node);
    const struct node_longkey_id *id = key;

    return strcmp(e->hash, id->hash) == 0 && (id->name == NULL || strcmp(e->name, id->name) == 0);
}

static struct node_longkey *longkey_find(struct node *node, const char *hash, const char *name)
{
    struct node_longkey_id id = {hash, name};
    struct state_hash_node *n = state_hash_table_find(
        &node->longkeys, state_hash_table_hash(&node->longkeys, hash, strlen(hash)), longkey_is,
        &id);

    return n ? STATE_HASH_ENTRY(n, struct node_longkey, node) : NULL;
}

static void longkey_remember(struct node *node, const char *item_key, const char *name)
{
    const char *hash = strstr(item_key, "/#");
    struct node_longkey *e;

    if (hash == NULL || strlen(hash + 2) >= sizeof(e->hash))
        return;
    hash += 2;
    if (node->longkeys.count > state_names_records(node->names) + 1024)
        node_longkeys_free(node);
    if (longkey_find(node, hash, name) != NULL)
        return;
    e = malloc(sizeof(*e) + strlen(name) + 1);
    if (e == NULL)
        return;
    snprintf(e->hash, sizeof(e->hash), "%s", hash);
    memcpy(e->name, name, strlen(name) + 1);
    if (state_hash_table_insert(&node->longkeys, &e->node,
                                state_hash_table_hash(&node->longkeys, hash, strlen(hash))) != 0)
        free(e); /* not remembered: a peer asking for it gets "not found" */
}

static const char *longkey_name(struct node *node, const char *hash)
{
    const struct node_longkey *e = longkey_find(node, hash, NULL);

    return e ? e->name : NULL;
}

struct item_visit {
    struct node *node;          /* whose records and witnesses */
    gossip_item_visit_fn visit; /* gossip's visitor */
    void *visit_ctx;            /* its context */
};

static int node_each_item_one(const struct state_record *rec, void *ctx)
{
    struct item_visit *v = ctx;
    char key[GOSSIP_KEY_MAX + 1];

    node_item_key(rec, key);
    longkey_remember(v->node, key, rec->name);
    return v->visit(v->visit_ctx, key, rec->version, node_bundle_hash(v->node, rec));
}

static int node_each_item(void *ctx, gossip_item_visit_fn visit, void *visit_ctx)
{
    struct node *node = ctx;
    struct item_visit v = {node, visit, visit_ctx};
    int rc = state_names_each_record(node->names, node_each_item_one, &v);

    rc = rc ? rc : node_acme_each_item(node, visit, visit_ctx);
    return rc ? rc : node_traffic_each_item(node, visit, visit_ctx);
}

/* The record an item key names, in O(1): owner from the key, name from the key or (for long
 * names) from the index. Never a scan: a peer may ask for any number of unknown keys. */
static int node_find_item(struct node *node, const char *key, struct state_record *out)
{
    const char *slash = strchr(key, '/');
    uint8_t owner[STATE_OWNER_LEN];
    char owner_hex[STATE_OWNER_HEX_LEN + 1], check[GOSSIP_KEY_MAX + 1];
    const char *name;

    if (slash == NULL || (size_t)(slash - key) != STATE_OWNER_HEX_LEN)
        return GOSSIP_ENOTFOUND;
    memcpy(owner_hex, key, STATE_OWNER_HEX_LEN);
    owner_hex[STATE_OWNER_HEX_LEN] = '\0';
    if (state_owner_parse(owner_hex, owner) != 0)
        return GOSSIP_ENOTFOUND;
    name = slash[1] == '#' ? longkey_name(node, slash + 2) : slash + 1;
    if (name == NULL || state_names_owner_record(node->names, name, owner, out) != 0)
        return GOSSIP_ENOTFOUND;
    node_item_key(out, check);
    return strcmp(check, key) == 0 ? 0 : GOSSIP_ENOTFOUND;
}

static int node_get_item(void *ctx, const char *key, uint64_t *version, uint8_t *buf, size_t cap)
{
    struct node *node = ctx;
    struct state_record rec;
    int len;

    if (node_acme_item_key(key))
        return node_acme_get_item(node, key, version, buf, cap);
    if (node_traffic_item_key(key))
        return node_traffic_get_item(node, key, version, buf, cap);
    if (node_find_item(node, key, &rec) != 0)
        return GOSSIP_ENOTFOUND;
    len = node_bundle_encode(node, &rec, buf, cap);
    if (len < 0)
        return GOSSIP_ETOOBIG;
    *version = rec.version;
    return len;
}

static void node_probe_refresh(uv_timer_t *t)
{
    node_proxy_probes_update(t->data);
}

/* Membership or names changed: who probes which backend may have changed too. */
void node_probes_dirty(struct node *node)
{
    if (!node->draining && !uv_is_active((uv_handle_t *)&node->probe_timer))
        uv_timer_start(&node->probe_timer, node_probe_refresh, NODE_PROBE_REFRESH_MS, 0);
}

static void node_on_member(void *ctx, const struct gossip_member *m, bool reaped)
{
    struct node *node = ctx;
    char addr[64];

    node_zone_fleet_changed(node);
    if (m->self)
        return;
    if (!reaped)
        node_witness_member(node, m->meta.name, m->meta.witness);
    node_fleet_addrs_update(node);
    gossip_addr_format(&m->addr, addr, sizeof(addr));
    if (reaped)
        node_event(node, "member", "%s (%s) forgotten", m->meta.name, addr);
    else
        node_event(node, "member", "%s (%s) is %s", m->meta.name, addr,
                   gossip_state_name(m->state));
    node_probes_dirty(node);
}

static void node_on_health(void *ctx, const char *backend, enum gossip_health_verdict verdict)
{
    struct node *node = ctx;

    node_event(node, "health", "backend %s is %s", backend, gossip_health_verdict_name(verdict));
    node_proxy_fleet_verdict(node, backend,
                             verdict == GOSSIP_HEALTH_UP     ? PROXY_VERDICT_UP
                             : verdict == GOSSIP_HEALTH_DOWN ? PROXY_VERDICT_DOWN
                                                             : PROXY_VERDICT_UNKNOWN);
}

static void node_gossip_log(void *ctx, int level, const char *msg)
{
    static const enum node_log_level map[] = {NODE_LOG_ERROR, NODE_LOG_WARN, NODE_LOG_INFO,
                                              NODE_LOG_DEBUG};

    node_log(map[level < 0 ? 0 : level > 3 ? 3 : level], "gossip", "%s", msg);
}

/* ---- start, join, leave ----------------------------------------------------------------- */

static void node_to_gossip_addr(const struct sockaddr_storage *ss, struct gossip_addr *out)
{
    memset(out, 0, sizeof(*out));
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
        out->family = 4;
        memcpy(out->ip, &s4->sin_addr, 4);
        out->port = ntohs(s4->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
        out->family = 6;
        memcpy(out->ip, &s6->sin6_addr, 16);
        out->port = ntohs(s6->sin6_port);
    }
}

static bool node_gossip_addr_unspecified(const struct gossip_addr *a)
{
    static const uint8_t zero[16];

    return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

/* With a wildcard gossip address and no --advertise, peers need a real address: the first
 * non-loopback interface address of the same family, else loopback. */
static void node_pick_advertise(struct gossip_addr *adv)
{
    uv_interface_address_t *ifs = NULL;
    int n = 0;
    bool found = false;

    uv_interface_addresses(&ifs, &n);
    for (int i = 0; i < n && !found; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&ifs[i].address;
        if (ifs[i].is_internal)
            continue;
        if (adv->family == 4 && sa->sa_family == AF_INET) {
            memcpy(adv->ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
            found = true;
        } else if (adv->family == 6 && sa->sa_family == AF_INET6) {
            memcpy(adv->ip, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
            found = true;
        }
    }
    uv_free_interface_addresses(ifs, n);
    if (!found) {
        memset(adv->ip, 0, sizeof(adv->ip));
        if (adv->family == 4) {
            adv->ip[0] = 127;
            adv->ip[3] = 1;
        } else {
            adv->ip[15] = 1;
        }
    }
}

/* Seeds may be host names (docker service names): resolved once, at start. */
static size_t node_resolve_seeds(const struct node *node, struct gossip_addr *out, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < node->cfg.join_count && n < cap; i++) {
        char host[NODE_ADDR_TEXT_MAX], *colon;
        const char *text = node->cfg.join[i];
        struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *res = NULL;
        int rc;

        if (text[0] == '[') {
            snprintf(host, sizeof(host), "%s", text + 1);
            colon = strstr(host, "]:");
            if (colon)
                *colon++ = '\0';
        } else {
            snprintf(host, sizeof(host), "%s", text);
            colon = strrchr(host, ':');
            if (colon)
                *colon = '\0';
        }
        if (!colon)
            continue;
        rc = getaddrinfo(host, colon + 1, &hints, &res);
        if (rc != 0) {
            node_log(NODE_LOG_WARN, "gossip", "join %s: %s", text, gai_strerror(rc));
            continue;
        }
        node_to_gossip_addr((const struct sockaddr_storage *)res->ai_addr, &out[n++]);
        freeaddrinfo(res);
    }
    return n;
}

/* ---- a node without a cluster key: gossip on no transport --------------------------------- */

static int lone_send(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)to, (void)buf, (void)len;
    return 0; /* nothing leaves a node that runs alone */
}

static const struct gossip_transport_ops lone_ops = {.send_packet = lone_send,
                                                     .send_stream = lone_send};

static uint64_t lone_now(void *ctx)
{
    return uv_now(ctx);
}

static void lone_tick(uv_timer_t *t)
{
    struct node *node = t->data;
    uint64_t next = gossip_tick(node->gossip), now = uv_now(&node->loop);

    /* at least 10 ms apart: a lone member's timers are all periodic */
    uv_timer_start(t, lone_tick, next > now + 10 ? next - now : 10, 0);
}

/* Gossip for a node that runs alone: no socket, no seed, and a throwaway random key so that
 * even the in-process instance is in encrypted mode (nothing it could ever receive opens). */
static int lone_open(struct node *node, struct gossip_config *gc, const struct gossip_callbacks *cb,
                     char *err, size_t errlen)
{
    struct gossip_transport tr = {.ops = &lone_ops, .ctx = node};
    struct gossip_clock clock = {.now_ms = lone_now, .ctx = &node->loop};

    gc->keyring.count = 1;
    if (RAND_bytes(gc->keyring.keys[0], GOSSIP_KEY_LEN) != 1) {
        snprintf(err, errlen, "gossip: no randomness");
        return -1;
    }
    node->gossip = gossip_new(gc, cb, &tr, &clock, err, errlen);
    if (!node->gossip)
        return -1;
    node->gossip_lone = true;
    snprintf(node->advertise_text, sizeof(node->advertise_text), "off");
    uv_timer_init(&node->loop, &node->lone_timer);
    node->lone_timer.data = node;
    uv_timer_start(&node->lone_timer, lone_tick, 0, 0);
    node_log(NODE_LOG_INFO, "gossip",
             "no --cluster-key: this node runs alone (no gossip listener; it neither joins nor "
             "can be joined). Give every gateway the same --cluster-key to form a fleet");
    return 0;
}

const char *node_gossip_mode(const struct node *node)
{
    if (node->gossip_lone)
        return "alone";
    return node->cfg.cluster_key[0] ? "encrypted" : "insecure";
}

_Static_assert(NODE_PUBLIC_ADDRS_MAX <= GOSSIP_PUBLIC_ADDRS_MAX, "public addresses fit metadata");

/* --public-addr, or else the advertise address: what the fleet's DNS answers for us. */
static void node_public_addrs(const struct node *node, struct gossip_config *gc)
{
    for (size_t i = 0; i < node->cfg.public_addr_count; i++) {
        node_to_gossip_addr(&node->cfg.public_addr[i], &gc->meta.public_addrs[i]);
        gc->meta.public_addrs[i].port = 0;
    }
    gc->meta.public_count = (uint8_t)node->cfg.public_addr_count;
    if (gc->meta.public_count == 0) {
        gc->meta.public_addrs[0] = gc->advertise;
        gc->meta.public_addrs[0].port = 0;
        gc->meta.public_count = 1;
    }
}

int node_gossip_start(struct node *node, const struct gossip_keyring *keyring, char *err,
                      size_t errlen)
{
    struct gossip_config gc;
    struct gossip_callbacks cb = {
        .ctx = node,
        .on_item = node_on_item,
        .each_item = node_each_item,
        .get_item = node_get_item,
        .on_member = node_on_member,
        .on_health = node_on_health,
        .log = node_gossip_log,
    };
    struct gossip_addr seeds[NODE_JOIN_MAX];
    char gerr[GOSSIP_ERR_MAX];
    size_t nseeds;

    state_hash_table_init(&node->longkeys, NODE_LONGKEY_BUCKETS, SIZE_MAX);
    gossip_config_default(&gc);
    snprintf(gc.id, sizeof(gc.id), "%s", node->id);
    snprintf(gc.meta.name, sizeof(gc.meta.name), "%s", node->cfg.node_name);
    snprintf(gc.meta.domain, sizeof(gc.meta.domain), "%s", node->cfg.domain);
    snprintf(gc.meta.version, sizeof(gc.meta.version), "%s", WEBGW_VERSION);
    node_to_gossip_addr(&node->cfg.gossip.ss, &gc.bind);
    node_to_gossip_addr(&node->cfg.advertise.ss, &gc.advertise);
    if (node_gossip_addr_unspecified(&gc.advertise))
        node_pick_advertise(&gc.advertise);
    /* peers see the first --http address; a wildcard one ([::] or 0.0.0.0) is reached at the
     * advertised IP, whatever its family ([::] takes IPv4 too) */
    node_to_gossip_addr(&node->cfg.http[0].ss, &gc.meta.http);
    if (node_gossip_addr_unspecified(&gc.meta.http)) {
        gc.meta.http.family = gc.advertise.family;
        memcpy(gc.meta.http.ip, gc.advertise.ip, sizeof(gc.meta.http.ip));
    }
    /* the fleet refuses these as backends (node_fleet_addrs_update) */
    node_to_gossip_addr(&node->cfg.https[0].ss, &gc.meta.https);
    if (node_gossip_addr_unspecified(&gc.meta.https)) {
        gc.meta.https.family = gc.advertise.family;
        memcpy(gc.meta.https.ip, gc.advertise.ip, sizeof(gc.meta.https.ip));
    }
    node_to_gossip_addr(&node->cfg.api.ss, &gc.meta.api);
    if (node_gossip_addr_unspecified(&gc.meta.api)) {
        gc.meta.api.family = gc.advertise.family;
        memcpy(gc.meta.api.ip, gc.advertise.ip, sizeof(gc.meta.api.ip));
    }
    node_public_addrs(node, &gc);
    gossip_addr_format(&gc.advertise, node->advertise_text, sizeof(node->advertise_text));
    gc.health_ttl_ms = node->cfg.health_ttl_ms;
    gc.probe_interval_ms = node->cfg.gossip_timing.probe_interval_ms;
    gc.probe_timeout_ms = node->cfg.gossip_timing.probe_timeout_ms;
    gc.gossip_interval_ms = node->cfg.gossip_timing.gossip_interval_ms;
    gc.gossip_nodes = node->cfg.gossip_timing.fanout;
    gc.suspicion_mult = node->cfg.gossip_timing.suspicion_mult;
    gc.pushpull_interval_ms = node->cfg.gossip_timing.pushpull_interval_ms;
    gc.incarnation = state_now_ms() / 1000;
    RAND_bytes((unsigned char *)&gc.seed, sizeof(gc.seed));
    snprintf(gc.label, sizeof(gc.label), "%s", node->cfg.cluster_label);
    gc.keyring = *keyring;
    memcpy(gc.meta.witness, node->witness_key, sizeof(gc.meta.witness));

    uv_timer_init(&node->loop, &node->probe_timer);
    node->probe_timer.data = node;
    if (keyring->count == 0 && !node->cfg.gossip_insecure) {
        int rc = lone_open(node, &gc, &cb, gerr, sizeof(gerr));
        OPENSSL_cleanse(&gc.keyring, sizeof(gc.keyring));
        if (rc != 0)
            snprintf(err, errlen, "gossip: %s", gerr);
        node_probes_dirty(node);
        return rc;
    }
    if (keyring->count == 0)
        node_log(NODE_LOG_WARN, "gossip",
                 "--gossip-insecure: gossip on %s is plain text; anyone who reaches it can join "
                 "the fleet, read it and inject records",
                 node->cfg.gossip.text);
    node->gossip = gossip_uv_open(&node->loop, &gc, &cb, gerr, sizeof(gerr));
    OPENSSL_cleanse(&gc.keyring, sizeof(gc.keyring));
    if (!node->gossip) {
        snprintf(err, errlen, "gossip: %s", gerr);
        return -1;
    }
    nseeds = node_resolve_seeds(node, seeds, NODE_JOIN_MAX);
    if (nseeds > 0 && gossip_join(node->gossip, seeds, nseeds) != 0)
        node_log(NODE_LOG_WARN, "gossip", "join refused its seeds");
    if (node->cfg.join_count > 0 && nseeds == 0)
        node_log(NODE_LOG_WARN, "gossip", "no seed could be resolved; running alone");
    node_fleet_addrs_update(node);
    node_probes_dirty(node);
    return 0;
}

void node_gossip_broadcast(struct node *node, const char *name,
                           const uint8_t owner[STATE_OWNER_LEN])
{
    char key[GOSSIP_KEY_MAX + 1];
    struct state_record rec;
    uint8_t *buf;
    int len;

    if (!node->gossip || state_names_owner_record(node->names, name, owner, &rec) != 0)
        return;
    buf = malloc(STATE_BUNDLE_MAX_BYTES);
    len = buf ? node_bundle_encode(node, &rec, buf, STATE_BUNDLE_MAX_BYTES) : STATE_ENOMEM;
    node_item_key(&rec, key);
    longkey_remember(node, key, rec.name);
    if (len < 0 || gossip_broadcast(node->gossip, key, rec.version, buf, (size_t)len) != 0)
        node_log(NODE_LOG_WARN, "gossip", "record %s not broadcast", rec.name);
    free(buf);
    node_probes_dirty(node);
}

void node_gossip_leave(struct node *node)
{
    if (node->left)
        return;
    node->left = true;
    if (node->gossip)
        gossip_leave(node->gossip);
}

void node_gossip_close(struct node *node)
{
    if (node->gossip && node->gossip_lone) {
        uv_timer_stop(&node->lone_timer);
        gossip_free(node->gossip);
        node->gossip = NULL;
    } else if (node->gossip) {
        gossip_uv_close(node->gossip);
        node->gossip = NULL;
    }
}

bool node_health_assigned(struct node *node, const char *key)
{
    return node->gossip ? gossip_health_assigned(node->gossip, key) : true;
}

void node_health_observed(struct node *node, const char *key, bool up)
{
    if (node->gossip && !node->draining)
        gossip_health_publish(node->gossip, key, up);
}

/* ---- views ------------------------------------------------------------------------------ */

json_t *node_json_members(const struct node *node)
{
    json_t *arr = json_array();
    struct gossip_member *ms;
    size_t n, cap = 64;
    uint64_t wall = state_now_ms(), mono = uv_now((uv_loop_t *)&node->loop);

    if (!node->gossip)
        return arr;
    for (;;) {
        ms = calloc(cap, sizeof(*ms));
        if (!ms)
            return arr;
        n = gossip_members(node->gossip, ms, cap);
        if (n <= cap)
            break;
        free(ms);
        cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        const struct gossip_member *m = &ms[i];
        char addr[64], http[64];
        uint64_t since = m->state_since_ms <= mono ? wall - (mono - m->state_since_ms) : wall;
        gossip_addr_format(&m->addr, addr, sizeof(addr));
        if (m->meta.http.family)
            gossip_addr_format(&m->meta.http, http, sizeof(http));
        else
            http[0] = '\0';
        json_array_append_new(
            arr, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:s, s:s, s:s}", "id", m->id,
                           "name", m->meta.name, "addr", addr, "state",
                           m->self && node->draining ? "left" : gossip_state_name(m->state), "self",
                           m->self, "incarnation", (json_int_t)m->incarnation, "state_since",
                           (json_int_t)since, "domain", m->meta.domain, "http", http, "version",
                           m->meta.version));
    }
    free(ms);
    return arr;
}

/* Member id -> display name, for health observers. */
static const char *node_member_name(const struct node *node, const char *id, char *buf, size_t cap)
{
    struct gossip_member m;

    if (gossip_member_get(node->gossip, id, &m) == 0 && m.meta.name[0]) {
        snprintf(buf, cap, "%s", m.meta.name);
        return buf;
    }
    return id;
}

struct health_collect {
    const struct node *node; /* for member names */
    json_t *by_key;          /* backend key -> [observer entries] */
    uint64_t mono;           /* gossip clock now */
};

static int node_health_collect(void *ctx, const struct gossip_health_entry *e)
{
    struct health_collect *hc = ctx;
    json_t *list = json_object_get(hc->by_key, e->backend);
    char name[GOSSIP_NAME_MAX + 1];

    if (!list) {
        list = json_array();
        json_object_set_new(hc->by_key, e->backend, list);
    }
    json_array_append_new(
        list,
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "node",
                  node_member_name(hc->node, e->observer, name, sizeof(name)), "id", e->observer,
                  "health", e->up ? "up" : "down", "expires_in_ms",
                  (json_int_t)(e->expires_ms > hc->mono ? e->expires_ms - hc->mono : 0), "age_ms",
                  (json_int_t)(hc->mono > e->observed_ms ? hc->mono - e->observed_ms : 0)));
    return 0;
}

struct backends_walk {
    const struct node *node; /* whose views */
    json_t *arr;             /* output */
    json_t *observers;       /* backend key -> observer entries */
    json_t *local;           /* backend key -> this node's proxy view */
};

static int node_backends_one(const struct state_name_view *view, void *ctx)
{
    struct backends_walk *w = ctx;
    const struct state_record *rec = &view->record;

    if (!view->held)
        return 0;
    for (unsigned i = 0; i < rec->backend_count; i++) {
        char text[64], key[64];
        unsigned up = 0, down = 0;
        enum gossip_health_verdict v = GOSSIP_HEALTH_UNKNOWN;
        json_t *obs, *local;

        state_backend_format(&rec->backends[i], rec->tls_passthrough, text);
        node_backend_key(&rec->backends[i], key);
        if (w->node->gossip)
            v = gossip_health_verdict(w->node->gossip, key, &up, &down);
        obs = json_object_get(w->observers, key);
        local = json_object_get(w->local, key);
        json_t *entry = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:o, s:o}", "name", view->name,
                                  "backend", text, "key", key, "health",
                                  gossip_health_verdict_name(v), "up_votes", (int)up, "down_votes",
                                  (int)down, "observers", obs ? json_incref(obs) : json_array(),
                                  "local", local ? json_incref(local) : json_null());
        /* the verdict is as old as the newest result behind it; none: no "age_ms" */
        json_int_t age = -1;
        size_t j;
        json_t *o;
        json_array_foreach(obs, j, o)
        {
            json_int_t a = json_integer_value(json_object_get(o, "age_ms"));
            if (age < 0 || a < age)
                age = a;
        }
        if (age >= 0)
            json_object_set_new(entry, "age_ms", json_integer(age));
        json_array_append_new(w->arr, entry);
    }
    return 0;
}

json_t *node_json_backends(const struct node *node)
{
    struct health_collect hc = {.node = node, .by_key = json_object()};
    struct backends_walk w = {.node = node, .arr = json_array()};

    hc.mono = uv_now((uv_loop_t *)&node->loop);
    if (node->gossip)
        gossip_health_each(node->gossip, node_health_collect, &hc);
    w.observers = hc.by_key;
    w.local = node_proxy_local_health(node);
    state_names_each(node->names, node_backends_one, &w);
    json_decref(w.observers);
    json_decref(w.local);
    return w.arr;
}

/* ---- metrics ----------------------------------------------------------------------------- */

static int node_metrics_health_one(void *ctx, const struct gossip_health_entry *e)
{
    struct node_metrics *m = ctx;
    char backend[2 * GOSSIP_BACKEND_MAX + 1], observer[2 * GOSSIP_ID_MAX + 1];

    /* both come from gossip: any member names them */
    node_metrics_printf(m, "webgw_backend_up{backend=\"%s\",observer=\"%s\"} %d\n",
                        node_metrics_label(e->backend, backend, sizeof(backend)),
                        node_metrics_label(e->observer, observer, sizeof(observer)), e->up ? 1 : 0);
    return 0;
}

void node_gossip_metrics(const struct node *node, struct node_metrics *m)
{
    struct gossip_stats s;

    if (!node->gossip)
        return;
    gossip_stats_get(node->gossip, &s);
    node_metrics_family(m, "webgw_members", "gauge", "Cluster members by state, as seen here.");
    node_metrics_printf(m, "webgw_members{state=\"alive\"} %u\n", s.members_alive);
    node_metrics_printf(m, "webgw_members{state=\"suspect\"} %u\n", s.members_suspect);
    node_metrics_printf(m, "webgw_members{state=\"dead\"} %u\n", s.members_dead);
    node_metrics_printf(m, "webgw_members{state=\"left\"} %u\n", s.members_left);
    node_metrics_family(m, "webgw_gossip_packets_total", "counter", "Gossip datagrams.");
    node_metrics_printf(m, "webgw_gossip_packets_total{direction=\"sent\"} %llu\n",
                        (unsigned long long)s.packets_sent);
    node_metrics_printf(m, "webgw_gossip_packets_total{direction=\"received\"} %llu\n",
                        (unsigned long long)s.packets_received);
    node_metrics_family(m, "webgw_gossip_bytes_total", "counter", "Gossip bytes on the wire.");
    node_metrics_printf(m, "webgw_gossip_bytes_total{direction=\"sent\",transport=\"udp\"} %llu\n",
                        (unsigned long long)s.bytes_sent);
    node_metrics_printf(m,
                        "webgw_gossip_bytes_total{direction=\"received\",transport=\"udp\"} %llu\n",
                        (unsigned long long)s.bytes_received);
    node_metrics_printf(m, "webgw_gossip_bytes_total{direction=\"sent\",transport=\"tcp\"} %llu\n",
                        (unsigned long long)s.stream_bytes_sent);
    node_metrics_printf(m,
                        "webgw_gossip_bytes_total{direction=\"received\",transport=\"tcp\"} %llu\n",
                        (unsigned long long)s.stream_bytes_received);
    node_metrics_family(m, "webgw_gossip_drops_total", "counter",
                        "Gossip input dropped, by reason.");
    for (int r = 0; r < GOSSIP_DROP__COUNT; r++)
        node_metrics_printf(m, "webgw_gossip_drops_total{reason=\"%s\"} %llu\n",
                            gossip_drop_reason_name((enum gossip_drop_reason)r),
                            (unsigned long long)s.drops[r]);
    node_metrics_family(m, "webgw_gossip_probes_total", "counter", "SWIM probes, by outcome.");
    node_metrics_printf(m, "webgw_gossip_probes_total{outcome=\"sent\"} %llu\n",
                        (unsigned long long)s.probes);
    node_metrics_printf(m, "webgw_gossip_probes_total{outcome=\"failed\"} %llu\n",
                        (unsigned long long)s.probes_failed);
    node_metrics_family(m, "webgw_gossip_awareness", "gauge",
                        "Lifeguard local health score (0 = healthy).");
    node_metrics_printf(m, "webgw_gossip_awareness %u\n", s.awareness);
    node_metrics_family(m, "webgw_gossip_queue", "gauge", "Changes awaiting retransmission.");
    node_metrics_printf(m, "webgw_gossip_queue{class=\"membership\"} %u\n", s.queue_membership);
    node_metrics_printf(m, "webgw_gossip_queue{class=\"data\"} %u\n", s.queue_data);
    node_metrics_family(m, "webgw_backend_up", "gauge",
                        "Backend health as each prober reported it (1 up, 0 down).");
    gossip_health_each(node->gossip, node_metrics_health_one, m);
}
