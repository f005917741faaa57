/*
 * fakenet.c - simulated network and virtual clock for gossip (see fakenet.h).
 */
#include "fakenet.h"

#include "gossip/gossip_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fpkt {
    uint64_t at;  /* delivery time */
    uint64_t seq; /* FIFO among equal times */
    size_t from, to;
    bool stream;
    size_t len;
    uint8_t data[];
};

/* ---- heap -------------------------------------------------------------------------------- */

static bool fpkt_before(const struct fpkt *a, const struct fpkt *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_push(struct fakenet *net, struct fpkt *p)
{
    size_t i;

    if (net->nheap == net->heap_cap) {
        net->heap_cap = net->heap_cap ? net->heap_cap * 2 : 1024;
        net->heap = realloc(net->heap, net->heap_cap * sizeof(*net->heap));
    }
    i = net->nheap++;
    while (i > 0 && fpkt_before(p, net->heap[(i - 1) / 2])) {
        net->heap[i] = net->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    net->heap[i] = p;
}

static struct fpkt *heap_pop(struct fakenet *net)
{
    struct fpkt *top = net->heap[0], *last = net->heap[--net->nheap];
    size_t i = 0;

    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= net->nheap)
            break;
        if (c + 1 < net->nheap && fpkt_before(net->heap[c + 1], net->heap[c]))
            c++;
        if (!fpkt_before(net->heap[c], last))
            break;
        net->heap[i] = net->heap[c];
        i = c;
    }
    if (net->nheap > 0)
        net->heap[i] = last;
    return top;
}

/* ---- transport and clock ------------------------------------------------------------------ */

static size_t addr_index(const struct gossip_addr *a)
{
    return ((size_t)a->ip[1] << 16) | ((size_t)a->ip[2] << 8) | a->ip[3];
}

static bool chance(struct fakenet *net, double p)
{
    return p > 0 && (double)(grand_next(&net->rng) >> 11) / 9007199254740992.0 < p;
}

/* Retransmissions of one packet with TCP's exponential backoff: adds the waits to *delay;
 * -1 when the retries run out (the kernel gives up and resets the connection). */
static int retransmit(struct fakenet *net, uint64_t rto, int retries, uint64_t *delay)
{
    for (int tries = 0; chance(net, net->loss); tries++) {
        if (tries == retries)
            return -1;
        *delay += rto;
        rto = rto * 2 < FN_RTO_MAX ? rto * 2 : FN_RTO_MAX;
    }
    return 0;
}

/* What TCP does to one stream message on this network: the handshake (SYN and SYN-ACK,
 * first retransmission after 1 s), every MSS-sized segment (200 ms, doubling), both with
 * Linux's retry counts; a reset with probability stream_reset; and the transfer time at
 * stream_bytes_per_ms. Returns -1 when the message is lost (counted), else 0 with *delay
 * grown by the time it takes. */
int fakenet_stream_fate(struct fakenet *net, size_t len, uint64_t *delay)
{
    size_t segs = len / FN_MSS + 1;

    if (chance(net, net->stream_reset)) {
        net->streams_reset++;
        return -1;
    }
    if (retransmit(net, 1000, FN_SYN_RETRIES, delay) != 0 ||
        retransmit(net, 1000, FN_SYN_RETRIES, delay) != 0) {
        net->streams_lost++;
        return -1;
    }
    for (size_t i = 0; i < segs; i++) {
        if (retransmit(net, 200, FN_DATA_RETRIES, delay) != 0) {
            net->streams_lost++;
            return -1;
        }
    }
    if (net->stream_bytes_per_ms > 0)
        *delay += len / net->stream_bytes_per_ms;
    return 0;
}

uint64_t fakenet_wire_udp(uint64_t bytes, uint64_t msgs)
{
    return bytes + FN_WIRE_IP_UDP * msgs;
}

uint64_t fakenet_wire_tcp(uint64_t bytes, uint64_t msgs)
{
    uint64_t segs = bytes / FN_MSS + msgs;

    return bytes + msgs * FN_WIRE_FRAME + FN_WIRE_TCP_SEG * (msgs * 7 + 2 * segs);
}

static int fn_send(struct fn_node *src, const struct gossip_addr *to, const uint8_t *buf,
                   size_t len, bool stream)
{
    struct fakenet *net = src->net;
    size_t dst = addr_index(to);
    struct fpkt *p;
    uint64_t delay;

    if (stream) {
        net->stream_bytes += len;
        net->stream_count++;
        net->wire_tcp += fakenet_wire_tcp(len, 1);
        src->wire_sent += fakenet_wire_tcp(len, 1);
    } else {
        net->dgram_bytes += len;
        net->dgram_count++;
        net->wire_udp += fakenet_wire_udp(len, 1);
        src->wire_sent += fakenet_wire_udp(len, 1);
        if (len > GOSSIP_UDP_MAX)
            abort(); /* the protocol must never build an oversized datagram */
    }
    if (to->family != 4 || to->ip[0] != 10 || dst >= net->n)
        return 0;
    if (net->nodes[dst].group != src->group)
        return 0;
    if (!stream && chance(net, net->loss))
        return 0;
    delay = net->delay_min_ms;
    if (net->delay_max_ms > net->delay_min_ms)
        delay += grand_below(&net->rng, net->delay_max_ms - net->delay_min_ms + 1);
    delay += net->nodes[dst].in_delay_ms;
    if (stream && fakenet_stream_fate(net, len, &delay) != 0)
        return 0;
    p = malloc(sizeof(*p) + len);
    p->at = net->now + delay;
    p->seq = net->pkt_seq++;
    p->from = src->idx;
    p->to = dst;
    p->stream = stream;
    p->len = len;
    memcpy(p->data, buf, len);
    heap_push(net, p);
    return 0;
}

static int fn_send_packet(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    return fn_send(ctx, to, buf, len, false);
}

static int fn_send_stream(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    return fn_send(ctx, to, buf, len, true);
}

static const struct gossip_transport_ops fn_ops = {fn_send_packet, fn_send_stream};

static uint64_t fn_now(void *ctx)
{
    return ((struct fn_node *)ctx)->net->now;
}

/* The member's wall clock: the fleet's, off by its wall_offset_ms. */
static uint64_t fn_wall(void *ctx)
{
    const struct fn_node *node = ctx;

    return (uint64_t)((int64_t)(FN_WALL_EPOCH_MS + node->net->now) + node->wall_offset_ms);
}

/* The clock's wake: gossip wants a tick earlier than it last said. */
static void fn_wake(void *ctx, uint64_t at_ms)
{
    struct fn_node *node = ctx;

    if (at_ms < node->next_tick)
        node->next_tick = at_ms;
}

/* ---- item store callbacks ---------------------------------------------------------------- */

const struct fn_item *fakenet_item(const struct fn_node *node, const char *key)
{
    for (size_t i = 0; i < node->nitems; i++)
        if (strcmp(node->items[i].key, key) == 0)
            return &node->items[i];
    return NULL;
}

static int fn_store(struct fn_node *node, const char *key, uint64_t version, const uint8_t *bytes,
                    size_t len)
{
    struct fn_item *it = (struct fn_item *)fakenet_item(node, key);

    if (len > FN_ITEM_VALUE_MAX)
        return -1;
    if (it != NULL && version < it->version) {
        node->stale_offered++;
        return 0;
    }
    if (it != NULL && version == it->version)
        return 0;
    if (it == NULL) {
        if (node->nitems == node->items_cap) {
            node->items_cap = node->items_cap ? node->items_cap * 2 : 16;
            node->items = realloc(node->items, node->items_cap * sizeof(*node->items));
        }
        it = &node->items[node->nitems++];
        memset(it, 0, sizeof(*it));
        snprintf(it->key, sizeof(it->key), "%s", key);
    }
    it->version = version;
    it->len = len;
    memcpy(it->value, bytes, len);
    it->learned_ms = node->net->now;
    return 1;
}

static int fn_on_item(void *ctx, const char *key, uint64_t version, const uint8_t *bytes,
                      size_t len)
{
    return fn_store(ctx, key, version, bytes, len);
}

static int fn_each_item(void *ctx, gossip_item_visit_fn visit, void *vctx)
{
    struct fn_node *node = ctx;

    for (size_t i = 0; i < node->nitems; i++) {
        int rc = visit(vctx, node->items[i].key, node->items[i].version,
                       ghash64(node->items[i].value, node->items[i].len, 0));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int fn_get_item(void *ctx, const char *key, uint64_t *version, uint8_t *buf, size_t cap)
{
    const struct fn_item *it = fakenet_item(ctx, key);

    if (it == NULL)
        return GOSSIP_ENOTFOUND;
    if (it->len > cap)
        return GOSSIP_ETOOBIG;
    *version = it->version;
    memcpy(buf, it->value, it->len);
    return (int)it->len;
}

static void fn_on_member(void *ctx, const struct gossip_member *m, bool reaped)
{
    struct fn_node *node = ctx;

    if (reaped)
        return;
    if (m->state == GOSSIP_DEAD)
        node->deaths_seen++;
    if (m->state == GOSSIP_SUSPECT)
        node->suspicions_seen++;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

struct fakenet *fakenet_new(size_t max_nodes, uint64_t seed)
{
    struct fakenet *net = calloc(1, sizeof(*net));

    net->rng = seed;
    net->step_ms = 1;
    net->delay_min_ms = 1;
    net->delay_max_ms = 5;
    net->nodes = calloc(max_nodes, sizeof(*net->nodes));
    net->n = max_nodes;
    for (size_t i = 0; i < max_nodes; i++) {
        struct fn_node *node = &net->nodes[i];
        node->net = net;
        node->idx = i;
        node->addr.family = 4;
        node->addr.ip[0] = 10;
        node->addr.ip[1] = (uint8_t)(i >> 16);
        node->addr.ip[2] = (uint8_t)(i >> 8);
        node->addr.ip[3] = (uint8_t)i;
        node->addr.port = 7946;
    }
    return net;
}

void fakenet_free(struct fakenet *net)
{
    for (size_t i = 0; i < net->n; i++) {
        gossip_free(net->nodes[i].g);
        free(net->nodes[i].items);
    }
    while (net->nheap > 0)
        free(heap_pop(net));
    free(net->heap);
    free(net->nodes);
    free(net);
}

void fakenet_id(const struct fakenet *net, size_t idx, char out[GOSSIP_ID_MAX + 1])
{
    if (!net->daemon_sized) {
        snprintf(out, GOSSIP_ID_MAX + 1, "node-%zu", idx);
        return;
    }
    /* like node_load_id: 16 random-looking bytes in lowercase hex */
    snprintf(out, GOSSIP_ID_MAX + 1, "%016llx%016llx",
             (unsigned long long)ghash64(&idx, sizeof(idx), 1),
             (unsigned long long)ghash64(&idx, sizeof(idx), 2));
}

/* What node_gossip_start puts in the metadata: a host name, the domain, the version, HTTP,
 * HTTPS and API addresses on the advertised IP, one public address and the witness key. */
static void fn_daemon_meta(struct fakenet *net, size_t idx, struct gossip_config *cfg)
{
    const struct gossip_addr *a = &net->nodes[idx].addr;

    snprintf(cfg->meta.name, sizeof(cfg->meta.name), "gateway-%03zu", idx);
    snprintf(cfg->meta.domain, sizeof(cfg->meta.domain), "gw.example.com");
    snprintf(cfg->meta.version, sizeof(cfg->meta.version), "0.9.0");
    cfg->meta.http = cfg->meta.https = cfg->meta.api = *a;
    cfg->meta.http.port = 8080;
    cfg->meta.https.port = 8443;
    cfg->meta.api.port = 9080;
    cfg->meta.public_addrs[0] = *a;
    cfg->meta.public_addrs[0].ip[0] = 203;
    cfg->meta.public_addrs[0].port = 0;
    cfg->meta.public_count = 1;
    for (size_t i = 0; i < GOSSIP_WITNESS_KEY_LEN; i++)
        cfg->meta.witness[i] = (uint8_t)(grand_next(&net->rng) | 1);
    cfg->keyring.count = 1;
    memset(cfg->keyring.keys[0], 0x5a, GOSSIP_KEY_LEN);
}

void fakenet_config(struct fakenet *net, size_t idx, struct gossip_config *cfg)
{
    gossip_config_default(cfg);
    fakenet_id(net, idx, cfg->id);
    snprintf(cfg->meta.name, sizeof(cfg->meta.name), "gw%zu", idx);
    snprintf(cfg->meta.domain, sizeof(cfg->meta.domain), "gw.example");
    snprintf(cfg->meta.version, sizeof(cfg->meta.version), "test");
    cfg->advertise = net->nodes[idx].addr;
    cfg->seed = grand_next(&net->rng);
    if (net->daemon_sized)
        fn_daemon_meta(net, idx, cfg);
}

int fakenet_start(struct fakenet *net, size_t idx, const struct gossip_config *cfg)
{
    struct fn_node *node = &net->nodes[idx];
    struct gossip_transport tr = {&fn_ops, node};
    struct gossip_clock clock = {fn_now, node, fn_wall, fn_wake};
    struct gossip_callbacks cb = {
        .ctx = node,
        .on_item = fn_on_item,
        .each_item = fn_each_item,
        .get_item = fn_get_item,
        .on_member = fn_on_member,
    };
    char err[GOSSIP_ERR_MAX];

    gossip_free(node->g);
    node->g = gossip_new(cfg, &cb, &tr, &clock, err, sizeof(err));
    if (node->g == NULL) {
        fprintf(stderr, "fakenet: %s\n", err);
        return -1;
    }
    node->up = true;
    node->next_tick = net->now;
    return 0;
}

int fakenet_start_join(struct fakenet *net, size_t idx, size_t seed)
{
    struct gossip_config cfg;

    fakenet_config(net, idx, &cfg);
    if (fakenet_start(net, idx, &cfg) != 0)
        return -1;
    if (idx != seed)
        return gossip_join(net->nodes[idx].g, &net->nodes[seed].addr, 1);
    return 0;
}

void fakenet_kill(struct fakenet *net, size_t idx)
{
    net->nodes[idx].up = false;
}

/* ---- running ----------------------------------------------------------------------------- */

void fakenet_run(struct fakenet *net, uint64_t ms)
{
    uint64_t end = net->now + ms;

    while (net->now < end) {
        net->now += net->step_ms;
        if (net->now > end)
            net->now = end;
        while (net->nheap > 0 && net->heap[0]->at <= net->now) {
            struct fpkt *p = heap_pop(net);
            struct fn_node *dst = &net->nodes[p->to];
            if (dst->up && dst->g != NULL && net->nodes[p->from].group == dst->group) {
                gossip_receive(dst->g, &net->nodes[p->from].addr, p->data, p->len, p->stream);
                dst->next_tick = net->now;
            }
            free(p);
        }
        for (size_t i = 0; i < net->n; i++) {
            struct fn_node *node = &net->nodes[i];
            if (node->up && node->g != NULL && node->next_tick <= net->now)
                node->next_tick = gossip_tick(node->g);
        }
    }
}

static bool fn_all_alive(struct fakenet *net, void *arg)
{
    (void)arg;
    return fakenet_converged(net, net->n);
}

uint64_t fakenet_run_until(struct fakenet *net, fakenet_pred pred, void *arg, uint64_t check_ms,
                           uint64_t limit_ms)
{
    uint64_t start = net->now;

    while (net->now - start < limit_ms) {
        if (pred(net, arg))
            return net->now - start;
        fakenet_run(net, check_ms);
    }
    return pred(net, arg) ? net->now - start : UINT64_MAX;
}

bool fakenet_converged(struct fakenet *net, size_t alive)
{
    for (size_t i = 0; i < net->n; i++) {
        const struct gossip *g = net->nodes[i].g;
        /* the counts gossip keeps (gossip_stats_get would walk every member table) */
        if (!net->nodes[i].up || g == NULL)
            continue;
        if (g->nlive != alive || g->nsuspects != 0)
            return false;
    }
    return true;
}

uint64_t fakenet_cold_start(struct fakenet *net, size_t nseeds, uint64_t window_ms,
                            uint64_t limit_ms, uint64_t *last_start)
{
    struct gossip_addr seeds[GOSSIP_SEEDS_MAX];
    size_t next = 0;
    uint64_t t0 = net->now;

    if (nseeds == 0 || nseeds > GOSSIP_SEEDS_MAX || nseeds > net->n)
        return UINT64_MAX;
    for (size_t i = 0; i < nseeds; i++)
        seeds[i] = net->nodes[i].addr;
    *last_start = t0 + window_ms;
    while (next < net->n) {
        /* node i starts at t0 + window * i / n: the seeds first, the last one at the end */
        while (next < net->n && (net->n == 1 || net->now - t0 >= window_ms * next / (net->n - 1))) {
            struct gossip_config cfg;
            struct gossip_addr to[GOSSIP_SEEDS_MAX];
            size_t nto = 0;
            for (size_t i = 0; i < nseeds; i++)
                if (i != next) /* a seed joins through the others */
                    to[nto++] = seeds[i];
            fakenet_config(net, next, &cfg);
            if (fakenet_start(net, next, &cfg) != 0 ||
                (nto > 0 && gossip_join(net->nodes[next].g, to, nto) != 0))
                return UINT64_MAX;
            next++;
        }
        fakenet_run(net, net->step_ms);
    }
    *last_start = net->now;
    return fakenet_run_until(net, fn_all_alive, NULL, 250, limit_ms);
}

enum gossip_member_state fakenet_state(struct fakenet *net, size_t viewer, size_t subject)
{
    struct gossip_member m;
    char id[GOSSIP_ID_MAX + 1];

    fakenet_id(net, subject, id);
    if (gossip_member_get(net->nodes[viewer].g, id, &m) != 0)
        return GOSSIP_DEAD;
    return m.state;
}

int fakenet_publish(struct fakenet *net, size_t idx, const char *key, uint64_t version,
                    const void *value, size_t len)
{
    struct fn_node *node = &net->nodes[idx];

    if (fn_store(node, key, version, value, len) != 1)
        return -1;
    return gossip_broadcast(node->g, key, version, value, len);
}

bool fakenet_item_everywhere(struct fakenet *net, const char *key, uint64_t version)
{
    for (size_t i = 0; i < net->n; i++) {
        const struct fn_item *it;
        if (!net->nodes[i].up || net->nodes[i].g == NULL)
            continue;
        it = fakenet_item(&net->nodes[i], key);
        if (it == NULL || it->version != version)
            return false;
    }
    return true;
}

bool fakenet_item_at_everywhere(struct fakenet *net, void *arg)
{
    const struct fakenet_item_at *a = arg;

    return fakenet_item_everywhere(net, a->key, a->version);
}

bool fakenet_health_holds(struct fakenet *net, size_t idx, const char *const *backends, size_t n,
                          bool (*up)(size_t i))
{
    for (size_t i = 0; i < n; i++)
        if (gossip_health_verdict(net->nodes[idx].g, backends[i], NULL, NULL) !=
            (up(i) ? GOSSIP_HEALTH_UP : GOSSIP_HEALTH_DOWN))
            return false;
    return true;
}
