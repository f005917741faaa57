/*
 * fuzz_gossip_member.c - the gossip member the fuzz targets feed and the seed generator runs:
 * fixed clock, a transport that hands what it sends to an optional capture, and a node side
 * holding three items so push-pull digests, replies and item requests have something to say.
 */
#include "fuzz_gossip.h"

#include <stdio.h>
#include <string.h>

static const char *const fg_items[] = {"rec/alpha", "rec/bravo", "rec/charlie"};
size_t fg_item_count = 3;

static uint64_t fg_now(void *ctx)
{
    (void)ctx;
    return FG_NOW_MS;
}

static int fg_send(struct fg_capture *c, bool stream, const uint8_t *buf, size_t len)
{
    if (c != NULL && c->fn != NULL)
        c->fn(c->ctx, stream, buf, len);
    return 0;
}

static int fg_send_packet(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    (void)to;
    return fg_send(ctx, false, buf, len);
}

static int fg_send_stream(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    (void)to;
    return fg_send(ctx, true, buf, len);
}

static int fg_on_item(void *ctx, const char *key, uint64_t version, const uint8_t *bytes,
                      size_t len)
{
    (void)ctx;
    (void)version;
    (void)bytes;
    /* a node rejects empty records and takes the rest as new */
    return key[0] != '\0' && len > 0 ? 1 : -1;
}

static int fg_each_item(void *ctx, gossip_item_visit_fn visit, void *visit_ctx)
{
    (void)ctx;
    for (size_t i = 0; i < fg_item_count && i < sizeof(fg_items) / sizeof(fg_items[0]); i++) {
        int rc = visit(visit_ctx, fg_items[i], i + 1, 0x1000 + i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int fg_get_item(void *ctx, const char *key, uint64_t *version, uint8_t *buf, size_t cap)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof(fg_items) / sizeof(fg_items[0]); i++) {
        if (strcmp(key, fg_items[i]) == 0) {
            int n = snprintf((char *)buf, cap, "record bytes of %s", key);
            if (n < 0 || (size_t)n >= cap)
                return GOSSIP_ETOOBIG;
            *version = i + 1;
            return n;
        }
    }
    return GOSSIP_ENOTFOUND;
}

void fg_addr(struct gossip_addr *a, uint16_t port)
{
    memset(a, 0, sizeof(*a));
    a->family = 4;
    a->ip[0] = 127;
    a->ip[3] = 1;
    a->port = port;
}

struct gossip *fg_member(const char *id, uint16_t port, bool keyed, bool peers,
                         struct fg_capture *capture)
{
    static const struct gossip_transport_ops ops = {fg_send_packet, fg_send_stream};
    const struct gossip_callbacks cb = {
        .on_item = fg_on_item, .each_item = fg_each_item, .get_item = fg_get_item};
    const struct gossip_transport tr = {&ops, capture};
    const struct gossip_clock clock = {fg_now, NULL, NULL};
    struct gossip_config cfg;
    char err[GOSSIP_ERR_MAX];
    struct gossip *g;

    gossip_config_default(&cfg);
    snprintf(cfg.id, sizeof(cfg.id), "%s", id);
    snprintf(cfg.label, sizeof(cfg.label), "%s", FG_LABEL);
    snprintf(cfg.meta.name, sizeof(cfg.meta.name), "%s", id);
    snprintf(cfg.meta.domain, sizeof(cfg.meta.domain), "gw.example.test");
    fg_addr(&cfg.advertise, port);
    cfg.incarnation = 5;
    cfg.seed = 42;
    if (keyed) {
        memcpy(cfg.keyring.keys[0], fg_key, GOSSIP_KEY_LEN);
        cfg.keyring.count = 1;
    }
    g = gossip_new(&cfg, &cb, &tr, &clock, err, sizeof(err));
    if (g == NULL)
        return NULL;
    for (int i = 1; peers && i <= 3; i++) {
        struct gossip_addr a;
        char pid[16];
        snprintf(pid, sizeof(pid), "peer-%d", i);
        fg_addr(&a, (uint16_t)(port + i));
        if (gossip_debug_add_member(g, pid, &a, 3) != 0) {
            gossip_free(g);
            return NULL;
        }
    }
    return g;
}
