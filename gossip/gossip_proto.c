/*
 * gossip_proto.c - the datagram message codec.
 *
 * A datagram body is a sequence of msgpack arrays, one per message, each starting with its
 * type (see enum gmsg_type in gossip_int.h). Encoders write into a bounded buffer and undo a
 * message that does not fit, so a packet is filled up to its limit and never beyond.
 * gproto_decode is a pure function over bytes: it checks every type, every length against
 * the limits in gossip.h and the exact element count of each message, and says why it refused
 * so the caller can count the drop. Addresses travel as 6 (IPv4) or 18 (IPv6) raw bytes: IP
 * then port, big-endian; in member metadata an address on the member's own gossip IP travels
 * as its 2-byte port alone. Member ids of 32 lowercase hex digits (the daemon's) travel as
 * their 16 bytes.
 */
#include "gossip/gossip_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- buffers ----------------------------------------------------------------------------- */

static int gwbuf_write(void *data, const char *buf, size_t len)
{
    struct gwbuf *w = data;

    if (w->overflow)
        return -1;
    if (len > w->cap - w->len) {
        size_t want = w->len + len;
        size_t ncap = w->cap ? w->cap : 256;
        uint8_t *nd;

        if (w->max == 0 || want > w->max) {
            w->overflow = true;
            return -1;
        }
        while (ncap < want)
            ncap *= 2;
        if (ncap > w->max)
            ncap = w->max;
        nd = realloc(w->data, ncap);
        if (nd == NULL) {
            w->overflow = true;
            return -1;
        }
        w->data = nd;
        w->cap = ncap;
    }
    memcpy(w->data + w->len, buf, len);
    w->len += len;
    return 0;
}

void gwbuf_init_fixed(struct gwbuf *w, uint8_t *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->data = buf;
    w->cap = cap;
    msgpack_packer_init(&w->pk, w, gwbuf_write);
}

int gwbuf_init_dynamic(struct gwbuf *w, size_t initial, size_t max)
{
    memset(w, 0, sizeof(*w));
    w->data = malloc(initial);
    if (w->data == NULL)
        return GOSSIP_ENOMEM;
    w->cap = initial;
    w->max = max;
    msgpack_packer_init(&w->pk, w, gwbuf_write);
    return 0;
}

void gwbuf_free_dynamic(struct gwbuf *w)
{
    free(w->data);
    w->data = NULL;
    w->len = w->cap = 0;
}

/* ---- encoding ---------------------------------------------------------------------------- */

void gproto_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void gproto_pack_addr(msgpack_packer *pk, const struct gossip_addr *a)
{
    uint8_t raw[18];
    size_t n = 0;

    if (a->family == 4 || a->family == 6) {
        n = a->family == 4 ? 4 : 16;
        memcpy(raw, a->ip, n);
        raw[n] = (uint8_t)(a->port >> 8);
        raw[n + 1] = (uint8_t)(a->port & 0xff);
        n += 2;
    }
    msgpack_pack_bin(pk, n);
    msgpack_pack_bin_body(pk, raw, n);
}

/* An address in member metadata: on the member's gossip IP (`base`), the port alone. */
static void gproto_pack_addr_rel(msgpack_packer *pk, const struct gossip_addr *a,
                                 const struct gossip_addr *base)
{
    uint8_t port[2];

    if (a->family == 0 || a->family != base->family ||
        memcmp(a->ip, base->ip, a->family == 4 ? 4 : 16) != 0) {
        gproto_pack_addr(pk, a);
        return;
    }
    port[0] = (uint8_t)(a->port >> 8);
    port[1] = (uint8_t)(a->port & 0xff);
    msgpack_pack_bin_with_body(pk, port, 2);
}

static bool gproto_id_is_hex32(const char *id)
{
    size_t n = 0;

    for (; id[n]; n++)
        if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')) || n == 32)
            return false;
    return n == 32;
}

void gproto_pack_id(msgpack_packer *pk, const char *id)
{
    uint8_t raw[16];

    if (!gproto_id_is_hex32(id)) {
        gproto_pack_str(pk, id);
        return;
    }
    for (size_t i = 0; i < 16; i++) {
        char hi = id[2 * i], lo = id[2 * i + 1];
        raw[i] = (uint8_t)(((hi <= '9' ? hi - '0' : hi - 'a' + 10) << 4) |
                           (lo <= '9' ? lo - '0' : lo - 'a' + 10));
    }
    msgpack_pack_bin_with_body(pk, raw, sizeof(raw));
}

int gproto_encode(struct gwbuf *w, const struct gmsg *m)
{
    msgpack_packer *pk = &w->pk;
    size_t mark = w->len;

    switch (m->type) {
    case GMSG_PING:
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint8(pk, m->type);
        msgpack_pack_uint32(pk, m->seq);
        gproto_pack_id(pk, m->id);
        gproto_pack_id(pk, m->from);
        break;
    case GMSG_IPING:
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint8(pk, m->type);
        msgpack_pack_uint32(pk, m->seq);
        gproto_pack_id(pk, m->id);
        gproto_pack_addr(pk, &m->addr);
        if (m->nack)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        break;
    case GMSG_ACK:
    case GMSG_NACK:
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint8(pk, m->type);
        msgpack_pack_uint32(pk, m->seq);
        break;
    case GMSG_ALIVE:
        msgpack_pack_array(pk, 4 + GPROTO_META_FIELDS);
        msgpack_pack_uint8(pk, m->type);
        gproto_pack_id(pk, m->id);
        msgpack_pack_uint64(pk, m->incarnation);
        gproto_pack_addr(pk, &m->addr);
        gproto_pack_meta(pk, &m->meta, &m->addr);
        break;
    case GMSG_SUSPECT:
    case GMSG_DEAD:
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint8(pk, m->type);
        gproto_pack_id(pk, m->id);
        msgpack_pack_uint64(pk, m->incarnation);
        gproto_pack_id(pk, m->from);
        break;
    case GMSG_ITEM:
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint8(pk, m->type);
        gproto_pack_str(pk, m->key);
        msgpack_pack_uint64(pk, m->version);
        msgpack_pack_bin(pk, m->len);
        msgpack_pack_bin_body(pk, m->bytes, m->len);
        break;
    case GMSG_HEALTH:
        msgpack_pack_array(pk, 6);
        msgpack_pack_uint8(pk, m->type);
        gproto_pack_id(pk, m->id);
        gproto_pack_str(pk, m->key);
        msgpack_pack_uint64(pk, m->version);
        if (m->up)
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        msgpack_pack_uint32(pk, m->ttl_ms);
        break;
    default:
        return GOSSIP_EINVAL;
    }
    if (w->overflow) {
        w->len = mark;
        w->overflow = false;
        return GOSSIP_ETOOBIG;
    }
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------------- */

bool gproto_id_valid(const char *id)
{
    if (*id == '\0')
        return false;
    for (const char *p = id; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return false;
    }
    return true;
}

/* Big-endian unsigned of `w` bytes at p. */
static uint64_t gproto_be(const uint8_t *p, size_t w)
{
    uint64_t v = 0;

    for (size_t i = 0; i < w; i++)
        v = (v << 8) | p[i];
    return v;
}

/* msgpack-c allocates a container's element array as soon as it reads the header, before any
 * element: a 5-byte header claiming 2^32 elements asks for 64 GiB. Every element takes at
 * least one byte, so a claim of more elements than bytes left is a lie; refusing it before
 * unpacking bounds what the unpacker allocates to a small multiple of the input. Input cut
 * short passes here: the unpacker refuses it, and allocates nothing for a header it lacks. */
static bool gproto_counts_fit(const uint8_t *p, size_t len)
{
    static const uint8_t fixed[32] = {
        /* payload bytes after the type byte of 0xc0..0xdf; 0xff: length or count follows */
        0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 4,    8,    1,    2,    4,    8,
        1, 2, 4, 8, 2,    3,    5,    9,    17,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t width[32] = {
        /* size of that length or count, 0xc4..0xdf */
        [4] = 1,  [5] = 2,  [6] = 4,  [7] = 1,  [8] = 2,  [9] = 4, [25] = 1,
        [26] = 2, [27] = 4, [28] = 2, [29] = 4, [30] = 2, [31] = 4};
    uint64_t pending = 1, n;
    size_t pos = 0;

    while (pending > 0 && pos < len) {
        uint8_t c = p[pos++];

        pending--;
        n = 0;
        if (c <= 0x7f || c >= 0xe0)
            continue;
        if (c <= 0x8f) {
            n = 2u * (c & 0x0f);
        } else if (c <= 0x9f) {
            n = c & 0x0f;
        } else if (c <= 0xbf) {
            pos += c & 0x1f;
            continue;
        } else if (fixed[c - 0xc0] != 0xff) {
            pos += fixed[c - 0xc0];
            continue;
        } else {
            size_t w = width[c - 0xc0];
            uint64_t v;

            if (len - pos < w)
                return true;
            v = gproto_be(p + pos, w);
            pos += w;
            if (c >= 0xdc) { /* array 16/32, map 16/32 */
                n = c >= 0xde ? 2 * v : v;
            } else { /* bin, ext (one type byte more), str */
                if (v > len - pos)
                    return true;
                pos += (size_t)v + (c >= 0xc7 && c <= 0xc9);
                continue;
            }
        }
        if (pos > len || pending + n > len - pos)
            return false;
        pending += n;
    }
    return true;
}

int gproto_unpack(msgpack_unpacked *u, const uint8_t *buf, size_t len, size_t *off)
{
    if (*off > len || !gproto_counts_fit(buf + *off, len - *off))
        return MSGPACK_UNPACK_PARSE_ERROR;
    return msgpack_unpack_next(u, (const char *)buf, len, off);
}

/* Copies a msgpack str of printable ASCII into out[cap]. */
int gproto_str(const msgpack_object *o, char *out, size_t cap, bool allow_empty)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return GOSSIP_EMALFORMED;
    if (o->via.str.size >= cap)
        return GOSSIP_ETOOBIG;
    if (o->via.str.size == 0 && !allow_empty)
        return GOSSIP_EMALFORMED;
    for (uint32_t i = 0; i < o->via.str.size; i++) {
        unsigned char c = (unsigned char)o->via.str.ptr[i];
        if (c < 0x20 || c > 0x7e)
            return GOSSIP_EMALFORMED;
    }
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return 0;
}

int gproto_u64(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return GOSSIP_EMALFORMED;
    *out = o->via.u64;
    return 0;
}

static int gproto_u32(const msgpack_object *o, uint32_t *out)
{
    uint64_t v;

    if (gproto_u64(o, &v) != 0 || v > UINT32_MAX)
        return GOSSIP_EMALFORMED;
    *out = (uint32_t)v;
    return 0;
}

static int gproto_bool(const msgpack_object *o, bool *out)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return GOSSIP_EMALFORMED;
    *out = o->via.boolean;
    return 0;
}

/* An address in member metadata: a 2-byte bin is a port on the member's gossip IP. */
static int gproto_addr_rel(const msgpack_object *o, struct gossip_addr *out,
                           const struct gossip_addr *base)
{
    const uint8_t *p;

    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 2)
        return gproto_addr(o, out);
    if (base->family != 4 && base->family != 6)
        return GOSSIP_EMALFORMED;
    p = (const uint8_t *)o->via.bin.ptr;
    *out = *base;
    out->port = (uint16_t)((p[0] << 8) | p[1]);
    return 0;
}

int gproto_addr(const msgpack_object *o, struct gossip_addr *out)
{
    const uint8_t *p;
    size_t n;

    memset(out, 0, sizeof(*out));
    if (o->type != MSGPACK_OBJECT_BIN)
        return GOSSIP_EMALFORMED;
    n = o->via.bin.size;
    p = (const uint8_t *)o->via.bin.ptr;
    if (n == 0)
        return 0;
    if (n != 6 && n != 18)
        return GOSSIP_EMALFORMED;
    out->family = n == 6 ? 4 : 6;
    memcpy(out->ip, p, n - 2);
    out->port = (uint16_t)((p[n - 2] << 8) | p[n - 1]);
    return 0;
}

/* ---- member metadata --------------------------------------------------------------------- */

#define GPROTO_META_TAG_PUBLIC 1  /* extension tag: public addresses */
#define GPROTO_META_TAG_API 2     /* extension tag: API address */
#define GPROTO_META_TAG_WITNESS 3 /* extension tag: witness public key */

void gproto_pack_meta(msgpack_packer *pk, const struct gossip_meta *meta,
                      const struct gossip_addr *base)
{
    static const uint8_t none[GOSSIP_WITNESS_KEY_LEN];
    size_t n =
        meta->public_count < GOSSIP_PUBLIC_ADDRS_MAX ? meta->public_count : GOSSIP_PUBLIC_ADDRS_MAX;
    bool witness = memcmp(meta->witness, none, sizeof(none)) != 0;

    gproto_pack_str(pk, meta->name);
    gproto_pack_str(pk, meta->domain);
    gproto_pack_str(pk, meta->version);
    gproto_pack_addr_rel(pk, &meta->http, base);
    gproto_pack_addr_rel(pk, &meta->https, base);
    /* extension map: empty tags are left out, so a member without them costs one byte */
    msgpack_pack_map(pk, (n ? 1 : 0) + (meta->api.family ? 1 : 0) + (witness ? 1 : 0));
    if (n) {
        msgpack_pack_uint8(pk, GPROTO_META_TAG_PUBLIC);
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            gproto_pack_addr_rel(pk, &meta->public_addrs[i], base);
    }
    if (meta->api.family) {
        msgpack_pack_uint8(pk, GPROTO_META_TAG_API);
        gproto_pack_addr_rel(pk, &meta->api, base);
    }
    if (witness) {
        msgpack_pack_uint8(pk, GPROTO_META_TAG_WITNESS);
        msgpack_pack_bin_with_body(pk, meta->witness, GOSSIP_WITNESS_KEY_LEN);
    }
}

/* Tag 1: an array of address bins, none empty. */
static int gproto_meta_public(const msgpack_object *v, struct gossip_meta *out,
                              const struct gossip_addr *base)
{
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return GOSSIP_EMALFORMED;
    if (v->via.array.size > GOSSIP_PUBLIC_ADDRS_MAX)
        return GOSSIP_ETOOBIG;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        int rc = gproto_addr_rel(&v->via.array.ptr[i], &out->public_addrs[i], base);
        if (rc != 0)
            return rc;
        if (out->public_addrs[i].family == 0)
            return GOSSIP_EMALFORMED;
    }
    out->public_count = (uint8_t)v->via.array.size;
    return 0;
}

int gproto_meta(const msgpack_object *f, struct gossip_meta *out, const struct gossip_addr *base)
{
    const msgpack_object *ext = &f[5];
    int rc;

    if ((rc = gproto_str(&f[0], out->name, sizeof(out->name), true)) ||
        (rc = gproto_str(&f[1], out->domain, sizeof(out->domain), true)) ||
        (rc = gproto_str(&f[2], out->version, sizeof(out->version), true)) ||
        (rc = gproto_addr_rel(&f[3], &out->http, base)) ||
        (rc = gproto_addr_rel(&f[4], &out->https, base)))
        return rc;
    out->public_count = 0;
    memset(&out->api, 0, sizeof(out->api));
    memset(out->witness, 0, sizeof(out->witness));
    if (ext->type != MSGPACK_OBJECT_MAP)
        return GOSSIP_EMALFORMED;
    if (ext->via.map.size > GOSSIP_META_EXT_MAX)
        return GOSSIP_ETOOBIG;
    for (uint32_t i = 0; i < ext->via.map.size; i++) {
        const msgpack_object_kv *kv = &ext->via.map.ptr[i];
        uint64_t tag;
        if (gproto_u64(&kv->key, &tag) != 0)
            return GOSSIP_EMALFORMED;
        if (tag == GPROTO_META_TAG_PUBLIC && (rc = gproto_meta_public(&kv->val, out, base)) != 0)
            return rc;
        if (tag == GPROTO_META_TAG_API && (rc = gproto_addr_rel(&kv->val, &out->api, base)) != 0)
            return rc;
        if (tag == GPROTO_META_TAG_WITNESS) {
            if (kv->val.type != MSGPACK_OBJECT_BIN ||
                kv->val.via.bin.size != GOSSIP_WITNESS_KEY_LEN)
                return GOSSIP_EMALFORMED;
            memcpy(out->witness, kv->val.via.bin.ptr, GOSSIP_WITNESS_KEY_LEN);
        }
        /* other tags: metadata of a newer member, skipped */
    }
    return 0;
}

int gproto_id(const msgpack_object *o, char out[GOSSIP_ID_MAX + 1])
{
    static const char hex[] = "0123456789abcdef";
    int rc;

    if (o->type == MSGPACK_OBJECT_BIN) {
        const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
        if (o->via.bin.size != 16)
            return GOSSIP_EMALFORMED;
        for (size_t i = 0; i < 16; i++) {
            out[2 * i] = hex[p[i] >> 4];
            out[2 * i + 1] = hex[p[i] & 15];
        }
        out[32] = '\0';
        return 0;
    }
    rc = gproto_str(o, out, GOSSIP_ID_MAX + 1, false);

    if (rc != 0)
        return rc;
    return gproto_id_valid(out) ? 0 : GOSSIP_EMALFORMED;
}

/* Decodes the fields of one message array whose type and size were checked. */
static int gproto_fields(const msgpack_object *a, struct gmsg *m)
{
    const msgpack_object *f = a->via.array.ptr;
    int rc = 0;

    switch (m->type) {
    case GMSG_PING:
        if ((rc = gproto_u32(&f[1], &m->seq)) || (rc = gproto_id(&f[2], m->id)) ||
            (rc = gproto_id(&f[3], m->from)))
            return rc;
        break;
    case GMSG_IPING:
        if ((rc = gproto_u32(&f[1], &m->seq)) || (rc = gproto_id(&f[2], m->id)) ||
            (rc = gproto_addr(&f[3], &m->addr)) || (rc = gproto_bool(&f[4], &m->nack)))
            return rc;
        if (m->addr.family == 0)
            return GOSSIP_EMALFORMED;
        break;
    case GMSG_ACK:
    case GMSG_NACK:
        return gproto_u32(&f[1], &m->seq);
    case GMSG_ALIVE:
        if ((rc = gproto_id(&f[1], m->id)) || (rc = gproto_u64(&f[2], &m->incarnation)) ||
            (rc = gproto_addr(&f[3], &m->addr)) || (rc = gproto_meta(&f[4], &m->meta, &m->addr)))
            return rc;
        if (m->addr.family == 0)
            return GOSSIP_EMALFORMED;
        break;
    case GMSG_SUSPECT:
    case GMSG_DEAD:
        if ((rc = gproto_id(&f[1], m->id)) || (rc = gproto_u64(&f[2], &m->incarnation)) ||
            (rc = gproto_id(&f[3], m->from)))
            return rc;
        break;
    case GMSG_ITEM:
        if ((rc = gproto_str(&f[1], m->key, sizeof(m->key), false)) ||
            (rc = gproto_u64(&f[2], &m->version)))
            return rc;
        if (f[3].type != MSGPACK_OBJECT_BIN)
            return GOSSIP_EMALFORMED;
        if (f[3].via.bin.size > GOSSIP_ITEM_MAX)
            return GOSSIP_ETOOBIG;
        m->bytes = (const uint8_t *)f[3].via.bin.ptr;
        m->len = f[3].via.bin.size;
        break;
    case GMSG_HEALTH:
        if ((rc = gproto_id(&f[1], m->id)) ||
            (rc = gproto_str(&f[2], m->key, GOSSIP_BACKEND_MAX + 1, false)) ||
            (rc = gproto_u64(&f[3], &m->version)) || (rc = gproto_bool(&f[4], &m->up)) ||
            (rc = gproto_u32(&f[5], &m->ttl_ms)))
            return rc;
        break;
    default:
        return GOSSIP_EINVAL;
    }
    return 0;
}

static size_t gproto_arity(uint8_t type)
{
    switch (type) {
    case GMSG_PING:
    case GMSG_SUSPECT:
    case GMSG_DEAD:
    case GMSG_ITEM:
        return 4;
    case GMSG_IPING:
        return 5;
    case GMSG_ACK:
    case GMSG_NACK:
        return 2;
    case GMSG_ALIVE:
        return 4 + GPROTO_META_FIELDS;
    case GMSG_HEALTH:
        return 6;
    }
    return 0;
}

int gproto_decode(const uint8_t *buf, size_t len, size_t *off, struct gmsg *out,
                  enum gossip_drop_reason *reason)
{
    msgpack_unpacked u;
    msgpack_unpack_return ur;
    const msgpack_object *a;
    uint64_t type;
    size_t arity;
    int rc;

    memset(out, 0, sizeof(*out));
    *reason = GOSSIP_DROP_MALFORMED;
    if (*off >= len)
        return GOSSIP_EMALFORMED;
    msgpack_unpacked_init(&u);
    ur = gproto_unpack(&u, buf, len, off);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        rc = GOSSIP_EMALFORMED;
        goto done;
    }
    a = &u.data;
    rc = GOSSIP_EMALFORMED;
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size < 1)
        goto done;
    if (gproto_u64(&a->via.array.ptr[0], &type) != 0)
        goto done;
    arity = type <= 255 ? gproto_arity((uint8_t)type) : 0;
    if (arity == 0) {
        *reason = GOSSIP_DROP_UNKNOWN_TYPE;
        goto done;
    }
    if (a->via.array.size != arity)
        goto done;
    out->type = (uint8_t)type;
    rc = gproto_fields(a, out);
    if (rc == GOSSIP_ETOOBIG)
        *reason = GOSSIP_DROP_OVERSIZE;
done:
    msgpack_unpacked_destroy(&u);
    if (rc != 0)
        out->bytes = NULL;
    return rc;
}
