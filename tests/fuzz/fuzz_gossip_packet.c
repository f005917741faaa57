/*
 * fuzz_gossip_packet.c - libFuzzer target for everything a gossip member decodes from the
 * network: datagram bodies (gproto_decode), the envelope with and without the cluster key
 * (genv_open), and the whole receive path of a live member for datagrams and for stream
 * messages, which is where push-pull messages are decoded. The first byte picks the path (see
 * fuzz_gossip.h). Besides memory safety it checks the codec's contract: a refusal names a
 * drop reason, and every accepted message survives encode -> decode unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_gossip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fg_addr_equal(const struct gossip_addr *a, const struct gossip_addr *b)
{
    size_t n = a->family == 4 ? 4 : a->family == 6 ? 16 : 0;

    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, n) == 0;
}

static bool fg_msg_equal(const struct gmsg *a, const struct gmsg *b)
{
    return a->type == b->type && a->seq == b->seq && strcmp(a->id, b->id) == 0 &&
           strcmp(a->from, b->from) == 0 && fg_addr_equal(&a->addr, &b->addr) &&
           a->incarnation == b->incarnation && a->nack == b->nack &&
           strcmp(a->meta.name, b->meta.name) == 0 && strcmp(a->meta.domain, b->meta.domain) == 0 &&
           strcmp(a->meta.version, b->meta.version) == 0 &&
           fg_addr_equal(&a->meta.http, &b->meta.http) &&
           fg_addr_equal(&a->meta.https, &b->meta.https) && strcmp(a->key, b->key) == 0 &&
           a->version == b->version && a->len == b->len &&
           (a->len == 0 || memcmp(a->bytes, b->bytes, a->len) == 0) && a->up == b->up &&
           a->ttl_ms == b->ttl_ms;
}

/* Decodes a datagram body as gossip_receive does, round-tripping each message. */
static void fg_body(const uint8_t *body, size_t len)
{
    size_t off = 0;

    for (size_t n = 0; off < len && n < GOSSIP_MSGS_PER_PACKET; n++) {
        enum gossip_drop_reason reason;
        struct gmsg m, again;
        struct gwbuf w;
        size_t start = off, off2 = 0;

        if (gproto_decode(body, len, &off, &m, &reason) != 0) {
            if (reason != GOSSIP_DROP_MALFORMED && reason != GOSSIP_DROP_OVERSIZE &&
                reason != GOSSIP_DROP_UNKNOWN_TYPE)
                abort();
            return;
        }
        if (off <= start || off > len || strlen(m.id) > GOSSIP_ID_MAX ||
            strlen(m.key) > GOSSIP_KEY_MAX || m.len > GOSSIP_ITEM_MAX)
            abort();
        /* msgpack has several encodings of one value; ours is the shortest, so it fits in
         * what the input used plus nothing */
        if (gwbuf_init_dynamic(&w, 64, off - start) != 0)
            abort();
        if (gproto_encode(&w, &m) != 0)
            abort();
        if (gproto_decode(w.data, w.len, &off2, &again, &reason) != 0 || off2 != w.len ||
            !fg_msg_equal(&m, &again))
            abort();
        gwbuf_free_dynamic(&w);
    }
}

static void fg_envelope(const uint8_t *data, size_t size, bool keyed)
{
    static EVP_CIPHER_CTX *ctx;
    static struct greplay *replay; /* shared by every input: replays of earlier inputs too */
    struct gossip_keyring kr;
    enum gossip_drop_reason reason;
    uint8_t *copy, *body = NULL;
    int n;

    if (size > GOSSIP_UDP_MAX)
        return;
    if (ctx == NULL && (ctx = EVP_CIPHER_CTX_new()) == NULL)
        abort();
    if (replay == NULL && (replay = greplay_new()) == NULL)
        abort();
    memset(&kr, 0, sizeof(kr));
    if (keyed) {
        memcpy(kr.keys[0], fg_key, GOSSIP_KEY_LEN);
        kr.count = 1;
    }
    copy = malloc(size ? size : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data, size);
    /* the replay window sees every keyed input, at a clock that moves with the inputs */
    n = genv_open(ctx, &kr, FG_LABEL, keyed ? replay : NULL, FG_NOW_MS + (size & 0xff), copy, size,
                  &body, &reason);
    if (n >= 0) {
        if (body < copy || (size_t)n > size || body + n > copy + size)
            abort();
        fg_body(body, (size_t)n);
    } else if (reason != GOSSIP_DROP_MALFORMED && reason != GOSSIP_DROP_VERSION &&
               reason != GOSSIP_DROP_LABEL && reason != GOSSIP_DROP_DECRYPT &&
               reason != GOSSIP_DROP_UNENCRYPTED && reason != GOSSIP_DROP_ENCRYPTED &&
               reason != GOSSIP_DROP_REPLAY) {
        abort();
    }
    free(copy);
}

static void fg_receive(const uint8_t *data, size_t size, bool stream)
{
    struct gossip_addr from;
    struct gossip *g = fg_member("fuzz-self", 7946, false, true, NULL);

    if (g == NULL)
        abort();
    fg_addr(&from, 7947); /* peer-1 */
    gossip_receive(g, &from, data, size, stream);
    gossip_tick(g);
    gossip_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % FG_MODES) {
    case FG_BODY:
        fg_body(data + 1, size - 1);
        break;
    case FG_ENV_PLAIN:
        fg_envelope(data + 1, size - 1, false);
        break;
    case FG_ENV_KEYED:
        fg_envelope(data + 1, size - 1, true);
        break;
    case FG_RECV_DGRAM:
        fg_receive(data + 1, size - 1, false);
        break;
    case FG_RECV_STREAM:
        fg_receive(data + 1, size - 1, true);
        break;
    }
    return 0;
}
