/*
 * gossip_pushpull.c - anti-entropy over TCP: member lists and item-set digests.
 *
 * Piggy-backed gossip delivers changes with high probability, not certainty, and a member
 * that was away (partition, restart, new joiner) missed them. Push-pull repairs that: a
 * member periodically (and on join, and towards dead members after a partition) opens an
 * exchange with one peer:
 *
 *   A -> B  DIGEST  bucket hashes of A's member list (the list itself when joining), and 256
 *                   bucket hashes of A's item set
 *   B -> A  REPLY   only if something differs: summaries ([id, incarnation, state]) of B's
 *                   members in the member buckets that differ, its item bucket hashes, plus
 *                   (key, version, hash) of B's items in the item buckets that differ
 *   A -> B  ITEMS   A's items that B lacks or has older, the keys A wants from B, those of
 *                   A's members in the differing member buckets that B did not list as A
 *                   knows them, and the ids of B's members that A lacks or knows older
 *   B -> A  ITEMS   the wanted items, and the wanted members in full
 *
 * Each item falls in bucket hash(key) mod 256, whose hash is the XOR of hash(key, version,
 * content hash) over its items. Members are summarised the same way (XOR of hash(id,
 * incarnation, state)) in a number of buckets the initiator picks for its fleet size (about
 * 8 members a bucket, a power of two up to GOSSIP_PP_MBUCKETS_SENT, 64): that digest is the
 * first level, the summaries of a differing bucket the second, and a member travels in full
 * only to a side that lacks it or knows it older. So member lists never travel whole: an
 * exchange where both sides agree costs the digests (under 600 bytes at any fleet size), and
 * one where they differ grows with the difference, not with the fleet. A joiner, who knows
 * nobody, gets full entries: the seed's whole list up to GOSSIP_PP_JOIN_PAGE members, beyond
 * that a page (a sample of that many), and it pulls the rest at once from the members it
 * learned, so thousands of simultaneous joins do not all land on the seeds. When both sides
 * agree (the steady state), the exchange is the DIGEST alone; a REPLY whose item or member
 * digest agrees with the DIGEST's sends it as an empty bin ("same as yours"). Summaries and
 * the member ids wanted are used only when the DIGEST says the initiator takes them
 * (GPP_SUMMARY): a member of an older version still gets full member lists.
 *
 * Every message is one msgpack array in one stream message (gossip_transport.send_stream),
 * sealed like datagrams. Member lists are merged with SWIM's rules (gossip.c): a remote
 * "dead" only makes us suspect, so a member declared dead on the other side of a partition
 * gets the chance to refute. Items repaired for a joiner are not re-gossiped (it would
 * flood the fleet with what it already has); other repairs are, which is what spreads the
 * missing side's records through the fleet after a partition heals.
 *
 * Big items (over a datagram) use the same ITEMS message with the GPP_GOSSIP flag (one item,
 * no wants).
 *
 * Only DIGEST opens an exchange. A REPLY is accepted only from a peer we sent a DIGEST to, the
 * initiator's ITEMS only from a peer we sent a REPLY to, and the answering ITEMS only from a
 * peer we asked for items, each once and within GOSSIP_PP_OPEN_MS (struct gpp_open): a member
 * list or an item list pushed at us outside an exchange is dropped as "unsolicited" before it
 * is walked. Counts are bounded before anything is allocated for them (GOSSIP_PP_ENTRIES_MAX
 * entries, GOSSIP_PP_WANTS_MAX wants; a side that wants more asks in the next exchange).
 */
#include "gossip/gossip_int.h"

#include <stdlib.h>
#include <string.h>

#define GPP_TO_INITIATOR 0x4 /* ITEMS flag: the answer to the initiator's ITEMS */
#define GPP_GOSSIP 0x8       /* ITEMS flag: a big item being gossiped, not a repair */
#define GPP_SUMMARY 0x10     /* DIGEST: the initiator takes member summaries; REPLY: they are */
#define GPP_PAGE 0x20        /* REPLY to a joiner: a sample of the members, not all of them */

/* ---- exchanges in flight ----------------------------------------------------------------- */

/* Remembers that we now wait for `stage` from `peer` (one entry per peer and stage; the
 * oldest entry goes when the table is full: its late answer is then dropped, and the next
 * periodic exchange repairs what it would have). */
static void gpp_open_set(struct gossip *g, const struct gossip_addr *peer, enum gpp_stage stage)
{
    uint64_t now = gossip_now(g);
    struct gpp_open *slot = NULL;

    for (size_t i = 0; i < GOSSIP_PP_OPEN_MAX; i++) {
        struct gpp_open *o = &g->pp_open[i];
        if (o->stage != GPP_FREE && now >= o->expires_ms)
            o->stage = GPP_FREE;
        if (o->stage == stage && gossip_addr_equal(&o->peer, peer)) {
            slot = o;
            break;
        }
        if (slot == NULL ||
            (slot->stage != GPP_FREE && (o->stage == GPP_FREE || o->expires_ms < slot->expires_ms)))
            slot = o;
    }
    slot->stage = stage;
    slot->peer = *peer;
    slot->expires_ms = now + GOSSIP_PP_OPEN_MS;
}

void gossip_pushpull_expect(struct gossip *g, const struct gossip_addr *peer, enum gpp_stage stage)
{
    gpp_open_set(g, peer, stage);
}

/* Consumes the entry waiting for `stage` from `peer`; false (dropped, counted) when there is
 * none: the message belongs to no exchange of ours. */
static bool gpp_open_take(struct gossip *g, const struct gossip_addr *peer, enum gpp_stage stage)
{
    uint64_t now = gossip_now(g);

    for (size_t i = 0; i < GOSSIP_PP_OPEN_MAX; i++) {
        struct gpp_open *o = &g->pp_open[i];
        if (o->stage == stage && now < o->expires_ms && gossip_addr_equal(&o->peer, peer)) {
            o->stage = GPP_FREE;
            return true;
        }
    }
    gossip_drop(g, GOSSIP_DROP_UNSOLICITED);
    return false;
}

/* ---- digests ----------------------------------------------------------------------------- */

struct gpp_entry {
    char key[GOSSIP_KEY_MAX + 1]; /* item key */
    uint64_t version;             /* its version */
    uint64_t hash;                /* content hash from the node (0: none) */
};

struct gpp_collect {
    uint64_t buckets[GOSSIP_PP_BUCKETS]; /* digest being built */
    const bool *want;                    /* buckets whose entries to keep (NULL: none) */
    struct gpp_entry *entries;           /* kept entries */
    size_t n, cap;
    bool nomem;
};

static unsigned gpp_bucket(const char *key)
{
    return (unsigned)(ghash64(key, strlen(key), 0x6b) & (GOSSIP_PP_BUCKETS - 1));
}

static int gpp_visit(void *ctx, const char *key, uint64_t version, uint64_t hash)
{
    struct gpp_collect *c = ctx;
    size_t klen = strlen(key);
    unsigned b;
    uint64_t mix[2] = {version, hash};

    if (klen == 0 || klen > GOSSIP_KEY_MAX)
        return 0;
    b = gpp_bucket(key);
    c->buckets[b] ^= ghash64(mix, sizeof(mix), ghash64(key, klen, 0));
    if (c->want == NULL || !c->want[b])
        return 0;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 64;
        struct gpp_entry *ne = realloc(c->entries, ncap * sizeof(*ne));
        if (ne == NULL) {
            c->nomem = true;
            return 1;
        }
        c->entries = ne;
        c->cap = ncap;
    }
    memcpy(c->entries[c->n].key, key, klen + 1);
    c->entries[c->n].version = version;
    c->entries[c->n].hash = hash;
    c->n++;
    return 0;
}

static void gpp_collect(struct gossip *g, struct gpp_collect *c, const bool *want)
{
    memset(c, 0, sizeof(*c));
    c->want = want;
    if (g->cb.each_item)
        g->cb.each_item(g->cb.ctx, gpp_visit, c);
}

static int gpp_entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gpp_entry *)a)->key, ((const struct gpp_entry *)b)->key);
}

/* A peer's entry, its key left in the received message (no copy: a reply may list many). */
struct gpp_remote {
    const char *key;  /* not NUL-terminated */
    uint32_t klen;    /* 1..GOSSIP_KEY_MAX, printable ASCII */
    uint64_t version; /* its version */
    uint64_t hash;    /* content hash */
};

/* strcmp order between a NUL-terminated key and a counted one (neither holds a NUL). */
static int gpp_key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int gpp_remote_cmp(const void *pa, const void *pb)
{
    const struct gpp_remote *a = pa, *b = pb;

    return gpp_key_cmp(a->key, a->klen, b->key, b->klen);
}

static int gpp_remote_parse(const msgpack_object *e, struct gpp_remote *out)
{
    const msgpack_object *f = e->via.array.ptr;

    if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
        f[0].type != MSGPACK_OBJECT_STR || f[0].via.str.size == 0 ||
        f[0].via.str.size > GOSSIP_KEY_MAX || gproto_u64(&f[1], &out->version) ||
        gproto_u64(&f[2], &out->hash))
        return GOSSIP_EMALFORMED;
    for (uint32_t i = 0; i < f[0].via.str.size; i++) {
        unsigned char c = (unsigned char)f[0].via.str.ptr[i];
        if (c < 0x20 || c > 0x7e)
            return GOSSIP_EMALFORMED;
    }
    out->key = f[0].via.str.ptr;
    out->klen = f[0].via.str.size;
    return 0;
}

/* ---- member digests ----------------------------------------------------------------------- */

/* Member buckets for a fleet of n: about 8 members each, a power of two, at most
 * GOSSIP_PP_MBUCKETS_SENT. The digest is the first level; the summaries of the members of
 * the buckets that differ ([id, incarnation, state], about 25 bytes each) are the second, and
 * only the members that differ travel in full. So an exchange where both sides agree costs
 * the same at 1,000 members as at 10,000 (512 bytes of member digest, where 8 members a
 * bucket cost 8 KiB at 8,000), and one where a member differs costs its bucket's summaries. */
static size_t gpp_mbuckets_for(size_t n, size_t max)
{
    size_t m = 1;

    while (m < max && m * 8 < n)
        m *= 2;
    return m;
}

/* A member's bucket and digest, from the hash of its id (gver.id_hash: every member computes
 * it alike, and once per member version instead of per exchange). */
static size_t gpp_mbucket(const struct gmember *m, size_t nb)
{
    return (size_t)(gm_ver(m)->id_hash & (nb - 1));
}

static uint64_t gpp_member_digest(const struct gmember *m)
{
    const struct gver *ver = gm_ver(m);
    uint64_t v[2] = {ver->incarnation, (uint64_t)m->state};

    return ghash64(v, sizeof(v), ver->id_hash);
}

/* Order-independent digest of the member list in nb buckets (XOR of each member's hash of
 * id, incarnation and state): equal buckets hold the same members in the same states. */
static void gpp_members_buckets(const struct gossip *g, uint64_t *out, size_t nb)
{
    const struct gmember *m;
    uint32_t sid = 0;

    memset(out, 0, nb * sizeof(*out));
    while ((m = gossip_member_next(g, &sid)) != NULL)
        out[gpp_mbucket(m, nb)] ^= gpp_member_digest(m);
}

static void gpp_pack_mbuckets(msgpack_packer *pk, const uint64_t *b, size_t nb)
{
    uint8_t raw[GOSSIP_PP_MBUCKETS_MAX * 8];

    for (size_t i = 0; i < nb; i++)
        for (size_t j = 0; j < 8; j++)
            raw[i * 8 + j] = (uint8_t)(b[i] >> (8 * j));
    msgpack_pack_bin_with_body(pk, raw, nb * 8);
}

/* A member bucket digest: a power of two of 8-byte hashes. Returns the count, 0 if malformed. */
static size_t gpp_mbuckets_parse(const msgpack_object *o, uint64_t *out)
{
    const uint8_t *p;
    size_t nb;

    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size % 8 != 0)
        return 0;
    nb = o->via.bin.size / 8;
    if (nb == 0 || nb > GOSSIP_PP_MBUCKETS_MAX || (nb & (nb - 1)) != 0)
        return 0;
    p = (const uint8_t *)o->via.bin.ptr;
    for (size_t i = 0; i < nb; i++) {
        out[i] = 0;
        for (size_t j = 0; j < 8; j++)
            out[i] |= (uint64_t)p[i * 8 + j] << (8 * j);
    }
    return nb;
}

/* What a peer listed about a member: packed entries are checked (gpp_members_check) first. */
struct gpp_listed {
    char id[GOSSIP_ID_MAX + 1]; /* member id */
    uint64_t incarnation;       /* as the peer knows it */
    uint64_t state;             /* as the peer knows it */
};

static int gpp_listed_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gpp_listed *)a)->id, ((const struct gpp_listed *)b)->id);
}

/* ---- encoding ---------------------------------------------------------------------------- */

/* Whether member i goes into a member list: `diff` (nb buckets) says which buckets differ
 * (NULL: every member), `listed` (sorted, n) what the peer already told us about them: a
 * member it listed exactly as we know it is left out. */
struct gpp_member_filter {
    const bool *diff;
    size_t nb;
    const struct gpp_listed *listed;
    size_t nlisted;
    size_t stride, offset; /* a page: every stride-th member from offset (0: no paging) */
    bool summary;          /* [id, incarnation, state] only (GPP_SUMMARY) */
};

static bool gpp_member_wanted(const struct gossip *g, const struct gmember *m,
                              const struct gpp_member_filter *f)
{
    struct gpp_listed key;
    const struct gpp_listed *hit;

    if (f == NULL)
        return true;
    if (f->stride > 1 && (gm_sid(m) + f->offset) % f->stride != 0 && m != g->self)
        return false;
    if (f->diff != NULL && !f->diff[gpp_mbucket(m, f->nb)])
        return false;
    if (f->nlisted == 0)
        return true;
    snprintf(key.id, sizeof(key.id), "%s", gm_id(m));
    hit = bsearch(&key, f->listed, f->nlisted, sizeof(key), gpp_listed_cmp);
    return hit == NULL || hit->incarnation != gm_inc(m) || hit->state != (uint64_t)m->state;
}

/* One member list entry: [id, incarnation, state, address, metadata..., age ms]. */
static void gpp_pack_member(const struct gossip *g, msgpack_packer *pk, const struct gmember *m,
                            uint64_t now)
{
    static const struct gossip_meta none_meta;
    const struct gossip_meta *meta = gm_ver(m)->meta ? gm_meta(m) : &none_meta;

    msgpack_pack_array(pk, 5 + GPROTO_META_FIELDS);
    gproto_pack_id(pk, gm_id(m));
    msgpack_pack_uint64(pk, gm_inc(m));
    msgpack_pack_uint8(pk, (uint8_t)m->state);
    gproto_pack_addr(pk, gm_addr(m));
    gproto_pack_meta(pk, meta, gm_addr(m));
    msgpack_pack_uint64(pk, now - gm_since(g, m));
}

/* Packs the members that pass `filter` (NULL: all; `none`: an empty list). */
static void gpp_pack_members(struct gossip *g, msgpack_packer *pk,
                             const struct gpp_member_filter *filter, bool none)
{
    uint64_t now = gossip_now(g);
    const struct gmember *m;
    uint32_t sid = 0;
    size_t n = 0;

    if (none) {
        msgpack_pack_array(pk, 0);
        return;
    }
    while ((m = gossip_member_next(g, &sid)) != NULL)
        n += gpp_member_wanted(g, m, filter);
    msgpack_pack_array(pk, n);
    for (sid = 0; (m = gossip_member_next(g, &sid)) != NULL;) {
        if (!gpp_member_wanted(g, m, filter))
            continue;
        if (filter != NULL && filter->summary) {
            msgpack_pack_array(pk, 3);
            gproto_pack_id(pk, gm_id(m));
            msgpack_pack_uint64(pk, gm_inc(m));
            msgpack_pack_uint8(pk, (uint8_t)m->state);
        } else {
            gpp_pack_member(g, pk, m, now);
        }
    }
}

/* The item digest: GOSSIP_PP_BUCKETS 8-byte hashes (2 KiB), or, when few buckets hold
 * anything (a fleet with few records: its traffic summaries), only those, as (index byte,
 * 8-byte hash) pairs in increasing index order: 9 bytes each, never 2048 in all, so the two
 * forms cannot be confused. An all-empty digest is one pair (0, 0), never an empty bin (a
 * reply's "same as yours"). The dense digest was most of an idle member's TCP bytes. */
#define GPP_SPARSE_MAX ((GOSSIP_PP_BUCKETS * 8 - 1) / 9) /* pairs: always under 2048 bytes */

static void gpp_put64(uint8_t *p, uint64_t v)
{
    for (size_t j = 0; j < 8; j++)
        p[j] = (uint8_t)(v >> (8 * j));
}

static uint64_t gpp_get64(const uint8_t *p)
{
    uint64_t v = 0;

    for (size_t j = 0; j < 8; j++)
        v |= (uint64_t)p[j] << (8 * j);
    return v;
}

static void gpp_pack_buckets(msgpack_packer *pk, const uint64_t *buckets)
{
    uint8_t raw[GOSSIP_PP_BUCKETS * 8];
    size_t used = 0, len = 0;

    for (size_t i = 0; i < GOSSIP_PP_BUCKETS; i++)
        used += buckets[i] != 0;
    if (used > GPP_SPARSE_MAX) {
        for (size_t i = 0; i < GOSSIP_PP_BUCKETS; i++)
            gpp_put64(raw + i * 8, buckets[i]);
        len = sizeof(raw);
    } else {
        for (size_t i = 0; i < GOSSIP_PP_BUCKETS; i++) {
            if (buckets[i] == 0)
                continue;
            raw[len] = (uint8_t)i;
            gpp_put64(raw + len + 1, buckets[i]);
            len += 9;
        }
        if (len == 0) {
            memset(raw, 0, 9);
            len = 9;
        }
    }
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, raw, len);
}

static void gpp_send(struct gossip *g, const struct gossip_addr *to, struct gwbuf *w)
{
    if (w->overflow)
        gossip_drop(g, GOSSIP_DROP_OVERSIZE);
    else
        gossip_send_stream(g, to, w->data, w->len);
    gwbuf_free_dynamic(w);
}

void gossip_pushpull_start(struct gossip *g, const struct gossip_addr *to, bool join)
{
    struct gpp_collect c;
    struct gwbuf w;
    uint64_t mb[GOSSIP_PP_MBUCKETS_MAX];
    /* Catching up (the last exchange taught us members: a cold start, a healed partition),
     * the lists differ in many buckets of 64: at 10,000 members every bucket (156 members)
     * held a difference and each exchange carried every member's summary. Then about 8
     * members a bucket, up to the 1,024 every member accepts: a larger digest, and
     * summaries of the differing members' buckets only. */
    size_t nb = gpp_mbuckets_for(g->nmembers, g->pp_catchup_ms > 0 ? GOSSIP_PP_MBUCKETS_MAX
                                                                   : GOSSIP_PP_MBUCKETS_SENT);

    if (gwbuf_init_dynamic(&w, 4096, GOSSIP_STREAM_MAX - 256) != 0)
        return;
    gpp_collect(g, &c, NULL);
    msgpack_pack_array(&w.pk, 6);
    msgpack_pack_uint8(&w.pk, GMSG_PP_DIGEST);
    msgpack_pack_uint8(&w.pk, GPP_REPLY | GPP_SUMMARY | (join ? GPP_JOIN : 0));
    gproto_pack_id(&w.pk, gm_id(g->self));
    /* the list itself only when joining (it is the joiner and maybe a few others); otherwise
     * its digest, and the members of the buckets that differ follow */
    gpp_pack_members(g, &w.pk, NULL, !join);
    gpp_pack_buckets(&w.pk, c.buckets);
    gpp_members_buckets(g, mb, nb);
    gpp_pack_mbuckets(&w.pk, mb, nb);
    free(c.entries);
    gpp_open_set(g, to, GPP_DIGEST_SENT);
    gpp_send(g, to, &w);
}

/* Appends an item message ([8, key, version, bytes]) fetched from the node. */
static bool gpp_pack_item(struct gossip *g, msgpack_packer *pk, const char *key, uint8_t *buf)
{
    uint64_t version = 0;
    int len;
    struct gmsg m;
    struct gwbuf *w = pk->data;

    if (g->cb.get_item == NULL)
        return false;
    len = g->cb.get_item(g->cb.ctx, key, &version, buf, GOSSIP_ITEM_MAX);
    if (len < 0)
        return false;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_ITEM;
    snprintf(m.key, sizeof(m.key), "%s", key);
    m.version = version;
    m.bytes = buf;
    m.len = (size_t)len;
    return gproto_encode(w, &m) == 0;
}

void gossip_send_big_item(struct gossip *g, const struct gossip_addr *to, const uint8_t *msg,
                          size_t len)
{
    struct gwbuf w;

    if (gwbuf_init_dynamic(&w, len + 128, len + 128 + GOSSIP_ID_MAX) != 0)
        return;
    msgpack_pack_array(&w.pk, 6);
    msgpack_pack_uint8(&w.pk, GMSG_PP_ITEMS);
    msgpack_pack_uint8(&w.pk, GPP_GOSSIP);
    gproto_pack_id(&w.pk, gm_id(g->self));
    msgpack_pack_array(&w.pk, 1);
    if (!w.overflow && len <= w.cap - w.len) {
        memcpy(w.data + w.len, msg, len);
        w.len += len;
    }
    msgpack_pack_array(&w.pk, 0);
    msgpack_pack_array(&w.pk, 0);
    gpp_send(g, to, &w);
}

/* ---- decoding ---------------------------------------------------------------------------- */

static int gpp_buckets(const msgpack_object *o, uint64_t *out)
{
    const uint8_t *p;
    size_t len;

    if (o->type != MSGPACK_OBJECT_BIN)
        return GOSSIP_EMALFORMED;
    p = (const uint8_t *)o->via.bin.ptr;
    len = o->via.bin.size;
    if (len == GOSSIP_PP_BUCKETS * 8) {
        for (size_t i = 0; i < GOSSIP_PP_BUCKETS; i++)
            out[i] = gpp_get64(p + i * 8);
        return 0;
    }
    if (len == 0 || len % 9 != 0 || len / 9 > GPP_SPARSE_MAX)
        return GOSSIP_EMALFORMED;
    memset(out, 0, GOSSIP_PP_BUCKETS * sizeof(*out));
    for (size_t k = 0; k < len; k += 9) {
        if (k > 0 && p[k] <= p[k - 9])
            return GOSSIP_EMALFORMED; /* indices strictly increasing: one form per digest */
        out[p[k]] = gpp_get64(p + k + 1);
    }
    return 0;
}

/* Validates a member list completely before applying any of it: half-applied garbage would
 * be worse than none. */
static int gpp_members_check(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > GOSSIP_MEMBERS_MAX)
        return GOSSIP_EMALFORMED;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        struct gmsg m;
        uint64_t state, age;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 5 + GPROTO_META_FIELDS)
            return GOSSIP_EMALFORMED;
        const msgpack_object *f = e->via.array.ptr;
        if (gproto_id(&f[0], m.id) || gproto_u64(&f[1], &m.incarnation) ||
            gproto_u64(&f[2], &state) || state > 3 || gproto_addr(&f[3], &m.addr) ||
            m.addr.family == 0 || gproto_meta(&f[4], &m.meta, &m.addr) ||
            gproto_u64(&f[4 + GPROTO_META_FIELDS], &age))
            return GOSSIP_EMALFORMED;
    }
    return 0;
}

/* A member summary list (GPP_SUMMARY): [id, incarnation, state] entries. */
static int gpp_summaries_check(const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > GOSSIP_MEMBERS_MAX)
        return GOSSIP_EMALFORMED;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *e = &o->via.array.ptr[i];
        char id[GOSSIP_ID_MAX + 1];
        uint64_t inc, state;
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            gproto_id(&e->via.array.ptr[0], id) || gproto_u64(&e->via.array.ptr[1], &inc) ||
            gproto_u64(&e->via.array.ptr[2], &state) || state > 3)
            return GOSSIP_EMALFORMED;
    }
    return 0;
}

/* A list of member ids (the members wanted in full after summaries). */
static int gpp_ids_check(const msgpack_object *o)
{
    char id[GOSSIP_ID_MAX + 1];

    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > GOSSIP_PP_WANTS_MAX)
        return GOSSIP_EMALFORMED;
    for (uint32_t i = 0; i < o->via.array.size; i++)
        if (gproto_id(&o->via.array.ptr[i], id))
            return GOSSIP_EMALFORMED;
    return 0;
}

/* After an exchange that taught us members we did not know, the next one comes soon
 * (GOSSIP_PP_CATCHUP_MS, with a random peer) instead of a whole push-pull period later: in a
 * cold start every member's list is missing the members that started after it, and one
 * exchange with a random member brings all it knows. Exchanges that bring nothing new double
 * the gap (gossip_tick) until it reaches the period: a member whose peer happened to know
 * less keeps asking others for a while. */
static void gpp_catch_up(struct gossip *g, uint64_t gap_ms)
{
    uint64_t soon = gossip_now(g) + gap_ms + grand_below(&g->rng, (uint32_t)(gap_ms / 2 + 1));

    if (g->leaving)
        return;
    g->pp_catchup_ms = GOSSIP_PP_CATCHUP_MS;
    if (soon < g->pushpull_next) {
        g->pushpull_next = soon;
        if (g->clock.wake != NULL)
            g->clock.wake(g->clock.ctx, soon);
    }
}

static void gpp_members_merge(struct gossip *g, const msgpack_object *o, const char *from_id)
{
    /* News younger than one dissemination cycle is still spreading: a member we learn of
     * here joins in spreading it, or members that learned it the same way would all stay
     * silent and the epidemic would die out (many simultaneous joins through one seed).
     * Older news the fleet already has; repeating it would only cost bandwidth. */
    uint64_t recent = 2ull * g->cfg.gossip_interval_ms * gossip_retransmit_limit(g);
    size_t known = g->nmembers;

    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *f = o->via.array.ptr[i].via.array.ptr;
        struct gmsg m;
        uint64_t state, age;

        memset(&m, 0, sizeof(m));
        m.type = GMSG_ALIVE;
        gproto_id(&f[0], m.id);
        gproto_u64(&f[1], &m.incarnation);
        gproto_u64(&f[2], &state);
        gproto_addr(&f[3], &m.addr);
        gproto_meta(&f[4], &m.meta, &m.addr);
        gproto_u64(&f[4 + GPROTO_META_FIELDS], &age);
        switch (state) {
        case GOSSIP_ALIVE:
            gossip_on_alive(g, &m, strcmp(m.id, from_id) == 0 || age < recent);
            break;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
            gossip_on_suspect(g, m.id, m.incarnation, from_id);
            break;
        case GOSSIP_LEFT:
            gossip_on_dead(g, m.id, m.incarnation, m.id);
            break;
        }
    }
    if (g->nmembers > known)
        gpp_catch_up(g, GOSSIP_PP_CATCHUP_MS);
}

/* Applies a summary list (checked): news that needs no more than the summary (suspect, dead,
 * left) at once, like a full list; the ids of live members we lack or know older are packed
 * into `wants` (at most GOSSIP_PP_WANTS_MAX: the rest comes in the next exchange), to be
 * fetched in full. Returns how many. */
static size_t gpp_summaries_apply(struct gossip *g, const msgpack_object *o, const char *from_id,
                                  msgpack_packer *wants)
{
    size_t n = 0;

    for (uint32_t i = 0; i < o->via.array.size; i++) {
        const msgpack_object *f = o->via.array.ptr[i].via.array.ptr;
        char id[GOSSIP_ID_MAX + 1];
        uint64_t inc, state;
        const struct gmember *m;

        gproto_id(&f[0], id);
        gproto_u64(&f[1], &inc);
        gproto_u64(&f[2], &state);
        switch (state) {
        case GOSSIP_ALIVE:
            m = gossip_find(g, id);
            if ((m == NULL || gm_inc(m) < inc) && n < GOSSIP_PP_WANTS_MAX) {
                gproto_pack_id(wants, id);
                n++;
            }
            break;
        case GOSSIP_SUSPECT:
        case GOSSIP_DEAD:
            gossip_on_suspect(g, id, inc, from_id);
            break;
        case GOSSIP_LEFT:
            gossip_on_dead(g, id, inc, id);
            break;
        }
    }
    return n;
}

/* Decodes an item message object into m (bytes point into the stream body). */
static int gpp_item(const msgpack_object *o, struct gmsg *m)
{
    const msgpack_object *f;
    uint64_t type;

    memset(m, 0, sizeof(*m));
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 4)
        return GOSSIP_EMALFORMED;
    f = o->via.array.ptr;
    if (gproto_u64(&f[0], &type) || type != GMSG_ITEM ||
        gproto_str(&f[1], m->key, sizeof(m->key), false) || gproto_u64(&f[2], &m->version) ||
        f[3].type != MSGPACK_OBJECT_BIN || f[3].via.bin.size > GOSSIP_ITEM_MAX)
        return GOSSIP_EMALFORMED;
    m->bytes = (const uint8_t *)f[3].via.bin.ptr;
    m->len = f[3].via.bin.size;
    return 0;
}

/* ---- the exchange ------------------------------------------------------------------------ */

static void gpp_on_digest(struct gossip *g, const struct gossip_addr *from, const msgpack_object *f,
                          uint8_t flags, const char *from_id)
{
    uint64_t theirs[GOSSIP_PP_BUCKETS];
    bool diff[GOSSIP_PP_BUCKETS];
    uint64_t their_mb[GOSSIP_PP_MBUCKETS_MAX], our_mb[GOSSIP_PP_MBUCKETS_MAX];
    bool mdiff[GOSSIP_PP_MBUCKETS_MAX];
    struct gpp_member_filter mf;
    struct gpp_collect c;
    struct gwbuf w;
    size_t ndiff, nmdiff = 0, nb;

    if (gpp_members_check(&f[3]) != 0 || gpp_buckets(&f[4], theirs) != 0 ||
        (nb = gpp_mbuckets_parse(&f[5], their_mb)) == 0) {
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
        return;
    }
    gpp_members_merge(g, &f[3], from_id);
    if (!(flags & GPP_REPLY))
        return;
    /* first pass: our digest; second: our entries where the digests differ */
    gpp_collect(g, &c, NULL);
    ndiff = 0;
    for (size_t i = 0; i < GOSSIP_PP_BUCKETS; i++)
        ndiff += diff[i] = c.buckets[i] != theirs[i];
    free(c.entries);
    /* their digest was taken before they sent us their list (a joiner's): compare with ours */
    gpp_members_buckets(g, our_mb, nb);
    for (size_t i = 0; i < nb; i++)
        nmdiff += mdiff[i] = our_mb[i] != their_mb[i];
    if (ndiff == 0 && nmdiff == 0 && !(flags & GPP_JOIN))
        return; /* the steady state: we agree on everything, one message was enough */
    memset(&mf, 0, sizeof(mf));
    mf.diff = mdiff;
    mf.nb = nb;
    if (flags & GPP_JOIN) {
        /* A joiner gets a page, not the whole fleet: a sample of GOSSIP_PP_JOIN_PAGE members
         * to start from, and it pulls the rest from them (summaries first, then what it
         * lacks). In a cold start of thousands the seeds no longer send every joiner every
         * member (5,000 members: 108 MB/s at the busiest seed). */
        if (g->nmembers > GOSSIP_PP_JOIN_PAGE) {
            mf.stride = (g->nmembers + GOSSIP_PP_JOIN_PAGE - 1) / GOSSIP_PP_JOIN_PAGE;
            mf.offset = grand_below(&g->rng, (uint32_t)mf.stride);
        }
    } else if (flags & GPP_SUMMARY) {
        /* the differing buckets as summaries: the initiator asks in full for what it lacks,
         * so an exchange costs what differs, not every member of a bucket that differs */
        mf.summary = true;
    }
    gpp_collect(g, &c, diff);
    if (c.nomem || gwbuf_init_dynamic(&w, 4096, GOSSIP_STREAM_MAX - 256) != 0) {
        free(c.entries);
        return;
    }
    msgpack_pack_array(&w.pk, 7);
    msgpack_pack_uint8(&w.pk, GMSG_PP_REPLY);
    msgpack_pack_uint8(&w.pk, (uint8_t)((flags & GPP_JOIN) | (mf.summary ? GPP_SUMMARY : 0) |
                                        (mf.stride > 1 ? GPP_PAGE : 0)));
    gproto_pack_id(&w.pk, gm_id(g->self));
    gpp_pack_members(g, &w.pk, &mf, nmdiff == 0);
    /* a digest that agrees with theirs travels as an empty bin: "same as yours" */
    if (ndiff > 0)
        gpp_pack_buckets(&w.pk, c.buckets);
    else
        msgpack_pack_bin(&w.pk, 0);
    msgpack_pack_array(&w.pk, c.n);
    for (size_t i = 0; i < c.n; i++) {
        msgpack_pack_array(&w.pk, 3);
        gproto_pack_str(&w.pk, c.entries[i].key);
        msgpack_pack_uint64(&w.pk, c.entries[i].version);
        msgpack_pack_uint64(&w.pk, c.entries[i].hash);
    }
    gpp_pack_mbuckets(&w.pk, our_mb, nmdiff > 0 ? nb : 0);
    free(c.entries);
    gpp_open_set(g, from, GPP_REPLY_SENT);
    gpp_send(g, from, &w);
}

static void gpp_on_reply(struct gossip *g, const struct gossip_addr *from, const msgpack_object *f,
                         uint8_t flags, const char *from_id)
{
    uint64_t theirs[GOSSIP_PP_BUCKETS];
    bool diff[GOSSIP_PP_BUCKETS];
    struct gpp_collect c = {.entries = NULL};
    struct gpp_remote *remote = NULL;
    size_t nremote, i = 0, j = 0, nitems = 0, nwants = 0;
    struct gwbuf items, wants;
    uint8_t *buf = NULL;
    bool ok = false, members_differ = false;
    uint64_t their_mb[GOSSIP_PP_MBUCKETS_MAX], our_mb[GOSSIP_PP_MBUCKETS_MAX];
    bool mdiff[GOSSIP_PP_MBUCKETS_MAX];
    struct gpp_member_filter mf;
    struct gpp_listed *listed = NULL;
    size_t nb = 1, nmwants = 0;
    bool items_same, members_same, summary = flags & GPP_SUMMARY;
    struct gwbuf mwants = {.data = NULL};

    /* an empty digest in a reply means "same as yours" */
    items_same = f[4].type == MSGPACK_OBJECT_BIN && f[4].via.bin.size == 0;
    members_same = f[6].type == MSGPACK_OBJECT_BIN && f[6].via.bin.size == 0;
    if ((summary ? gpp_summaries_check(&f[3]) : gpp_members_check(&f[3])) != 0 ||
        (!items_same && gpp_buckets(&f[4], theirs) != 0) || f[5].type != MSGPACK_OBJECT_ARRAY ||
        (!members_same && (nb = gpp_mbuckets_parse(&f[6], their_mb)) == 0)) {
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
        return;
    }
    nremote = f[5].via.array.size;
    if (nremote > GOSSIP_PP_ENTRIES_MAX) {
        gossip_drop(g, GOSSIP_DROP_OVERSIZE);
        return;
    }
    remote = calloc(nremote ? nremote : 1, sizeof(*remote));
    if (remote == NULL)
        return;
    for (size_t k = 0; k < nremote; k++) {
        if (gpp_remote_parse(&f[5].via.array.ptr[k], &remote[k]) != 0) {
            gossip_drop(g, GOSSIP_DROP_MALFORMED);
            free(remote);
            return;
        }
    }
    /* the member buckets where we differ, before we take theirs in: they listed their members
     * of those buckets; ours that they did not list as we know them go back to them */
    gpp_members_buckets(g, our_mb, nb);
    for (size_t k = 0; k < nb; k++)
        members_differ |= mdiff[k] = !members_same && our_mb[k] != their_mb[k];
    listed = calloc(f[3].via.array.size ? f[3].via.array.size : 1, sizeof(*listed));
    if (listed == NULL)
        goto done;
    for (uint32_t k = 0; k < f[3].via.array.size; k++) {
        const msgpack_object *e = f[3].via.array.ptr[k].via.array.ptr;
        gproto_id(&e[0], listed[k].id);
        gproto_u64(&e[1], &listed[k].incarnation);
        gproto_u64(&e[2], &listed[k].state);
    }
    if (f[3].via.array.size > 1)
        qsort(listed, f[3].via.array.size, sizeof(*listed), gpp_listed_cmp);
    if (summary) {
        if (gwbuf_init_dynamic(&mwants, 1024, GOSSIP_STREAM_MAX / 4) != 0)
            goto done;
        nmwants = gpp_summaries_apply(g, &f[3], from_id, &mwants.pk);
    } else {
        gpp_members_merge(g, &f[3], from_id);
        /* a joiner's page: pull the rest from the members it named, without waiting */
        if (flags & GPP_PAGE)
            gpp_catch_up(g, GOSSIP_PP_PAGE_NEXT_MS);
    }
    memset(&mf, 0, sizeof(mf));
    mf.diff = mdiff;
    mf.nb = nb;
    mf.listed = listed;
    mf.nlisted = f[3].via.array.size;

    gpp_collect(g, &c, NULL);
    for (size_t k = 0; k < GOSSIP_PP_BUCKETS; k++)
        diff[k] = !items_same && c.buckets[k] != theirs[k];
    free(c.entries);
    gpp_collect(g, &c, diff);
    if (c.nomem)
        goto done;
    if (c.n == 0 && nremote == 0 && !members_differ && nmwants == 0) {
        ok = true; /* the steady state: same members, same items, nothing more to say */
        goto done;
    }
    if (c.n > 1)
        qsort(c.entries, c.n, sizeof(*c.entries), gpp_entry_cmp);
    if (nremote > 1)
        qsort(remote, nremote, sizeof(*remote), gpp_remote_cmp);
    buf = malloc(GOSSIP_ITEM_MAX);
    if (buf == NULL || gwbuf_init_dynamic(&items, 4096, GOSSIP_STREAM_MAX / 2) != 0)
        goto done;
    if (gwbuf_init_dynamic(&wants, 1024, GOSSIP_STREAM_MAX / 4) != 0) {
        gwbuf_free_dynamic(&items);
        goto done;
    }
    /* merge-walk the two sorted lists: send what they lack or have older, want the reverse */
    while (i < c.n || j < nremote) {
        int cmp = i == c.n       ? 1
                  : j == nremote ? -1
                                 : gpp_key_cmp(c.entries[i].key, strlen(c.entries[i].key),
                                               remote[j].key, remote[j].klen);
        bool want = false;
        if (cmp < 0) {
            nitems += gpp_pack_item(g, &items.pk, c.entries[i].key, buf);
            i++;
        } else if (cmp > 0) {
            want = true;
            j++;
        } else {
            const struct gpp_entry *a = &c.entries[i];
            const struct gpp_remote *b = &remote[j];
            if (a->version > b->version || (a->version == b->version && a->hash != b->hash))
                nitems += gpp_pack_item(g, &items.pk, a->key, buf);
            want = b->version > a->version || (a->version == b->version && a->hash != b->hash);
            i++;
            j++;
        }
        /* the rest is asked for in the next exchange */
        if (want && nwants < GOSSIP_PP_WANTS_MAX) {
            msgpack_pack_str(&wants.pk, remote[j - 1].klen);
            msgpack_pack_str_body(&wants.pk, remote[j - 1].key, remote[j - 1].klen);
            nwants++;
        }
    }
    if ((nitems > 0 || nwants > 0 || members_differ || nmwants > 0) && !items.overflow &&
        !wants.overflow && !(summary && mwants.overflow)) {
        struct gwbuf w;
        if (gwbuf_init_dynamic(&w, items.len + wants.len + (summary ? mwants.len : 0) + 128,
                               GOSSIP_STREAM_MAX - 256) == 0) {
            /* a peer that sent summaries takes the members we want as a 7th field */
            msgpack_pack_array(&w.pk, summary ? 7 : 6);
            msgpack_pack_uint8(&w.pk, GMSG_PP_ITEMS);
            msgpack_pack_uint8(&w.pk,
                               (uint8_t)((flags & GPP_JOIN) | (nwants || nmwants ? GPP_REPLY : 0)));
            gproto_pack_id(&w.pk, gm_id(g->self));
            msgpack_pack_array(&w.pk, nitems);
            if (!w.overflow && items.len <= w.cap - w.len) {
                memcpy(w.data + w.len, items.data, items.len);
                w.len += items.len;
            }
            msgpack_pack_array(&w.pk, nwants);
            if (!w.overflow && wants.len <= w.cap - w.len) {
                memcpy(w.data + w.len, wants.data, wants.len);
                w.len += wants.len;
            }
            gpp_pack_members(g, &w.pk, &mf, !members_differ);
            if (summary) {
                /* through the packer's writer: the member list may have used the room */
                msgpack_pack_array(&w.pk, nmwants);
                w.pk.callback(w.pk.data, (const char *)mwants.data, mwants.len);
            }
            if (nwants > 0 || nmwants > 0)
                gpp_open_set(g, from, GPP_ITEMS_SENT);
            gpp_send(g, from, &w);
        }
    }
    gwbuf_free_dynamic(&items);
    gwbuf_free_dynamic(&wants);
    ok = true;
done:
    if (!ok)
        gossip_logf(g, 1, "push-pull: out of memory while comparing item sets");
    if (mwants.data != NULL)
        gwbuf_free_dynamic(&mwants);
    free(buf);
    free(c.entries);
    free(remote);
    free(listed);
}

static void gpp_on_items(struct gossip *g, const struct gossip_addr *from, const msgpack_object *f,
                         uint32_t nf, uint8_t flags)
{
    const msgpack_object *items = &f[3], *wants = &f[4], *mwants = nf > 6 ? &f[6] : NULL;
    uint32_t nmw = mwants != NULL ? mwants->via.array.size : 0;
    bool regossip;
    struct gwbuf w;
    uint8_t *buf;
    size_t n = 0;

    if (items->type != MSGPACK_OBJECT_ARRAY || wants->type != MSGPACK_OBJECT_ARRAY ||
        gpp_members_check(&f[5]) != 0 || (mwants != NULL && gpp_ids_check(mwants) != 0)) {
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
        return;
    }
    if (wants->via.array.size > GOSSIP_PP_WANTS_MAX) {
        gossip_drop(g, GOSSIP_DROP_OVERSIZE);
        return;
    }
    /* a gossiped big item is one item on its own; anything else answers an exchange of ours */
    if (flags & GPP_GOSSIP) {
        if (items->via.array.size > 1 || wants->via.array.size > 0 || f[5].via.array.size > 0 ||
            nmw > 0) {
            gossip_drop(g, GOSSIP_DROP_MALFORMED);
            return;
        }
    } else if (!gpp_open_take(g, from,
                              (flags & GPP_TO_INITIATOR) ? GPP_ITEMS_SENT : GPP_REPLY_SENT)) {
        return;
    }
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        struct gmsg m;
        if (gpp_item(&items->via.array.ptr[i], &m) != 0) {
            gossip_drop(g, GOSSIP_DROP_MALFORMED);
            return;
        }
    }
    if (f[5].via.array.size > 0) {
        char from_id[GOSSIP_ID_MAX + 1];
        gproto_id(&f[2], from_id);
        gpp_members_merge(g, &f[5], from_id);
    }
    /* a joiner does not re-gossip the fleet's state back to the fleet */
    regossip = (flags & GPP_GOSSIP) || !((flags & GPP_JOIN) && (flags & GPP_TO_INITIATOR));
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        struct gmsg m;
        gpp_item(&items->via.array.ptr[i], &m);
        gossip_on_item(g, m.key, m.version, m.bytes, m.len, regossip);
    }
    if (!(flags & GPP_REPLY) || (wants->via.array.size == 0 && nmw == 0))
        return;
    buf = malloc(GOSSIP_ITEM_MAX);
    if (buf == NULL)
        return;
    if (gwbuf_init_dynamic(&w, 4096, GOSSIP_STREAM_MAX - 256) != 0) {
        free(buf);
        return;
    }
    msgpack_pack_array(&w.pk, 6);
    msgpack_pack_uint8(&w.pk, GMSG_PP_ITEMS);
    msgpack_pack_uint8(&w.pk, (uint8_t)((flags & GPP_JOIN) | GPP_TO_INITIATOR));
    gproto_pack_id(&w.pk, gm_id(g->self));
    /* count first: msgpack arrays carry their length up front */
    for (uint32_t i = 0; i < wants->via.array.size; i++) {
        char key[GOSSIP_KEY_MAX + 1];
        uint64_t v;
        if (gproto_str(&wants->via.array.ptr[i], key, sizeof(key), false) == 0 && g->cb.get_item &&
            g->cb.get_item(g->cb.ctx, key, &v, buf, GOSSIP_ITEM_MAX) >= 0)
            n++;
    }
    msgpack_pack_array(&w.pk, n);
    for (uint32_t i = 0; i < wants->via.array.size; i++) {
        char key[GOSSIP_KEY_MAX + 1];
        if (gproto_str(&wants->via.array.ptr[i], key, sizeof(key), false) == 0)
            gpp_pack_item(g, &w.pk, key, buf);
    }
    msgpack_pack_array(&w.pk, 0);
    /* the members asked for after our summaries, in full */
    n = 0;
    for (uint32_t i = 0; i < nmw; i++) {
        char id[GOSSIP_ID_MAX + 1];
        gproto_id(&mwants->via.array.ptr[i], id);
        n += gossip_find(g, id) != NULL;
    }
    msgpack_pack_array(&w.pk, n);
    for (uint32_t i = 0; i < nmw; i++) {
        char id[GOSSIP_ID_MAX + 1];
        const struct gmember *m;
        gproto_id(&mwants->via.array.ptr[i], id);
        if ((m = gossip_find(g, id)) != NULL)
            gpp_pack_member(g, &w.pk, m, gossip_now(g));
    }
    free(buf);
    gpp_send(g, from, &w);
}

void gossip_pushpull_receive(struct gossip *g, const struct gossip_addr *from, const uint8_t *body,
                             size_t len)
{
    msgpack_unpacked u;
    size_t off = 0;
    const msgpack_object *f;
    uint64_t type, flags;
    char from_id[GOSSIP_ID_MAX + 1];

    msgpack_unpacked_init(&u);
    if (gproto_unpack(&u, body, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 2) {
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
        goto done;
    }
    f = u.data.via.array.ptr;
    if (gproto_u64(&f[0], &type) == 0 && type < GMSG_PP_DIGEST) {
        /* datagram messages over TCP (the probe fallback): a sequence, like a datagram */
        gossip_stream_datagram_msg(g, from, body, len);
        goto done;
    }
    if (off != len) {
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
        goto done;
    }
    if (u.data.via.array.size < 3 || gproto_u64(&f[1], &flags) || flags > 0xff ||
        gproto_id(&f[2], from_id)) {
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
        goto done;
    }
    if (type == GMSG_PP_DIGEST && u.data.via.array.size == 6)
        gpp_on_digest(g, from, f, (uint8_t)flags, from_id);
    else if (type == GMSG_PP_REPLY && u.data.via.array.size == 7) {
        if (gpp_open_take(g, from, GPP_DIGEST_SENT))
            gpp_on_reply(g, from, f, (uint8_t)flags, from_id);
    } else if (type == GMSG_PP_ITEMS && (u.data.via.array.size == 6 || u.data.via.array.size == 7))
        gpp_on_items(g, from, f, u.data.via.array.size, (uint8_t)flags);
    else if (type == GMSG_PP_DIGEST || type == GMSG_PP_REPLY || type == GMSG_PP_ITEMS)
        gossip_drop(g, GOSSIP_DROP_MALFORMED);
    else
        gossip_drop(g, GOSSIP_DROP_UNKNOWN_TYPE);
done:
    msgpack_unpacked_destroy(&u);
}
