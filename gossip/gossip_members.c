/*
 * gossip_members.c - the member table and its state transitions.
 *
 * The table by id handle (lookup, walk, shared member versions), alive/suspect/dead/left
 * transitions with incarnation numbers, refutation of news about ourselves, Lifeguard
 * suspicion timeouts shrinking with confirmations, and the membership messages queued for
 * dissemination. Called from gossip.c (receive, tick),
 * gossip_probe.c and gossip_pushpull.c; see gossip.c for the design.
 */
#include "gossip/gossip_int.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- member table ------------------------------------------------------------------------ */

/* Remote input (an id in a message) is looked up in the shared table under its keyed hash
 * (gossip_share.c), then in our table by the handle: nothing is stored for an unknown id. */
struct gmember *gossip_find(const struct gossip *g, const char *id)
{
    return gossip_slot(g, gshare_lookup(GSHARE_IDS, id, strlen(id) + 1));
}

int gossip_ptr_push(struct gmember ***arr, size_t *n, size_t *cap, struct gmember *m)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        struct gmember **na = realloc(*arr, ncap * sizeof(*na));
        if (na == NULL)
            return GOSSIP_ENOMEM;
        *arr = na;
        *cap = ncap;
    }
    (*arr)[(*n)++] = m;
    return 0;
}

int gossip_sid_push(uint32_t **arr, size_t *n, size_t *cap, uint32_t sid)
{
    if (*n == *cap) {
        size_t ncap = *cap ? *cap * 2 : 16;
        uint32_t *na = realloc(*arr, ncap * sizeof(*na));
        if (na == NULL)
            return GOSSIP_ENOMEM;
        *arr = na;
        *cap = ncap;
    }
    (*arr)[(*n)++] = sid;
    return 0;
}

/* Room in the table's chunk pointers and counts for chunk c. */
static int gossip_slots_grow(struct gossip *g, size_t c)
{
    size_t n = g->nslots ? g->nslots : 4;
    struct gmember **ns;
    uint32_t *nu;

    if (c < g->nslots)
        return 0;
    while (n <= c)
        n *= 2;
    if ((ns = realloc(g->slots, n * sizeof(*ns))) == NULL)
        return GOSSIP_ENOMEM;
    memset(ns + g->nslots, 0, (n - g->nslots) * sizeof(*ns));
    g->slots = ns;
    if ((nu = realloc(g->slot_used, n * sizeof(*nu))) == NULL)
        return GOSSIP_ENOMEM;
    memset(nu + g->nslots, 0, (n - g->nslots) * sizeof(*nu));
    g->slot_used = nu;
    g->nslots = n;
    return 0;
}

/* A table lets go of a chunk: the last one frees it and the versions its entries hold. */
void gossip_chunk_release(struct gmember *e)
{
    struct gchunk *ch;

    if (e == NULL)
        return;
    ch = gchunk_of(e);
    if (atomic_fetch_sub_explicit(&ch->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < GMEMBER_CHUNK; i++)
        gshare_ver_unref(ch->e[i].ver);
    free(ch);
}

/* The table entry for sid, its chunk allocated if need be (NULL: out of memory). Not for
 * writing: that goes through gossip_member_w. */
static struct gmember *gossip_slot_make(struct gossip *g, uint32_t sid)
{
    size_t c = sid / GMEMBER_CHUNK;

    if (gossip_slots_grow(g, c) != 0)
        return NULL;
    if (g->slots[c] == NULL) {
        struct gchunk *ch = calloc(1, sizeof(*ch));
        if (ch == NULL)
            return NULL;
        atomic_init(&ch->refs, 1);
        g->slots[c] = ch->e;
    }
    return &g->slots[c][sid % GMEMBER_CHUNK];
}

/* A pointer into the chunk at old moves to the same place in the copy at new. */
static void gossip_repoint(struct gmember **p, const struct gmember *old, struct gmember *new)
{
    uintptr_t a = (uintptr_t)*p, lo = (uintptr_t)old;

    if (*p != NULL && a >= lo && a < lo + GMEMBER_CHUNK * sizeof(*old))
        *p = new + (*p - old);
}

struct gmember *gossip_unshare(struct gossip *g, uint32_t sid)
{
    size_t c = sid / GMEMBER_CHUNK;
    struct gmember *old = g->slots[c];
    struct gchunk *ch;

    if (atomic_load_explicit(&gchunk_of(old)->refs, memory_order_acquire) == 1)
        return &old[sid % GMEMBER_CHUNK];
    if ((ch = malloc(sizeof(*ch))) == NULL)
        return NULL;
    atomic_init(&ch->refs, 1);
    memcpy(ch->e, old, sizeof(ch->e));
    gshare_ver_hold(ch->e, GMEMBER_CHUNK);
    g->slots[c] = ch->e;
    /* what points into the table for long: the copy is ours now */
    gossip_repoint(&g->self, old, ch->e);
    for (size_t i = 0; i < g->nsuspects; i++)
        gossip_repoint(&g->suspects[i], old, ch->e);
    for (size_t i = 0; i < g->ngone; i++)
        gossip_repoint(&g->gone[i], old, ch->e);
    gossip_chunk_release(old);
    return &ch->e[sid % GMEMBER_CHUNK];
}

int gossip_debug_share_table(struct gossip *g, struct gossip *src)
{
    uint32_t sid;
    struct gmember mine, *m;
    size_t c;

    if (g == src || g->nmembers != 1 || g->order.range != 0 || src->nsuspects != 0 ||
        src->ngone != 0 || g->start_ms != src->start_ms)
        return GOSSIP_EINVAL;
    sid = gm_sid(g->self);
    mine = *g->self;
    if (gossip_slot(src, sid) == NULL || !gossip_is_live(mine.state))
        return GOSSIP_EINVAL;
    if (gossip_slots_grow(g, src->nslots - 1) != 0)
        return GOSSIP_ENOMEM;
    gshare_ver_hold(&mine, 1); /* while its chunk goes */
    c = sid / GMEMBER_CHUNK;
    gossip_chunk_release(g->slots[c]);
    g->slots[c] = NULL;
    g->self = NULL;
    for (c = 0; c < src->nslots; c++) {
        if (src->slots[c] != NULL)
            atomic_fetch_add_explicit(&gchunk_of(src->slots[c])->refs, 1, memory_order_relaxed);
        g->slots[c] = src->slots[c];
        g->slot_used[c] = src->slot_used[c];
    }
    g->shared = src->shared = true;
    g->nmembers = src->nmembers;
    g->nlive = src->nlive; /* every member of src is live, ours too */
    m = gossip_slot(g, sid);
    if (memcmp(m, &mine, sizeof(mine)) == 0) {
        gshare_ver_unref(mine.ver); /* the shared chunk holds it */
    } else {
        if ((m = gossip_unshare(g, sid)) == NULL) {
            g->self = gossip_slot(g, sid); /* src's view of us: consistent, if not ours */
            gshare_ver_unref(mine.ver);
            return GOSSIP_ENOMEM;
        }
        gshare_ver_unref(m->ver);
        *m = mine;
    }
    g->self = m;
    return 0;
}

struct gmember *gossip_member_next(const struct gossip *g, uint32_t *sid)
{
    for (size_t s = (size_t)*sid + 1; s / GMEMBER_CHUNK < g->nslots; s++) {
        size_t c = s / GMEMBER_CHUNK;
        if (g->slot_used[c] == 0) {
            s = (c + 1) * GMEMBER_CHUNK - 1; /* an empty chunk: on to the next */
            continue;
        }
        if (g->slots[c][s % GMEMBER_CHUNK].ver != 0) {
            *sid = (uint32_t)s;
            return &g->slots[c][s % GMEMBER_CHUNK];
        }
    }
    return NULL;
}

/* m's position in suspects[] or gone[] (n when absent). A search: entries keep no position,
 * for 4 bytes an entry are 4 bytes times n squared in the simulator. Both lists are short
 * but after mass failures, and a member leaves one once per state change. */
static size_t gossip_list_find(struct gmember *const *arr, size_t n, const struct gmember *m)
{
    size_t pos = 0;

    while (pos < n && arr[pos] != m)
        pos++;
    return pos;
}

/* suspects[] and gone[] remove by swapping the last entry in. */
static void gossip_list_remove(struct gmember **arr, size_t *n, struct gmember *m)
{
    size_t pos = gossip_list_find(arr, *n, m);

    if (pos < *n)
        arr[pos] = arr[--(*n)];
}

struct gsusp *gm_susp(const struct gossip *g, const struct gmember *m)
{
    size_t pos;

    if (m->state != GOSSIP_SUSPECT)
        return NULL;
    pos = gossip_list_find(g->suspects, g->nsuspects, m);
    return pos < g->nsuspects ? g->susps[pos] : NULL;
}

/* The suspects list carries each suspect's suspicion state at the same position. */
static void gossip_suspect_remove(struct gossip *g, struct gmember *m)
{
    size_t pos = gossip_list_find(g->suspects, g->nsuspects, m);

    if (pos >= g->nsuspects)
        return;
    free(g->susps[pos]);
    g->susps[pos] = g->susps[g->nsuspects - 1];
    g->suspects[pos] = g->suspects[--g->nsuspects];
}

/* Room for one more suspect in both lists, so that adding one cannot fail half-way. */
static int gossip_suspect_reserve(struct gossip *g)
{
    size_t cap = g->suspects_cap ? g->suspects_cap * 2 : 16;
    struct gsusp **ns;
    struct gmember **nm;

    if (g->nsuspects < g->suspects_cap)
        return 0;
    if ((ns = realloc(g->susps, cap * sizeof(*ns))) == NULL)
        return GOSSIP_ENOMEM;
    g->susps = ns;
    if ((nm = realloc(g->suspects, cap * sizeof(*nm))) == NULL)
        return GOSSIP_ENOMEM;
    g->suspects = nm;
    g->suspects_cap = cap;
    return 0;
}

static bool gossip_meta_empty(const struct gossip_meta *m)
{
    static const uint8_t none[GOSSIP_WITNESS_KEY_LEN];

    return m->name[0] == '\0' && m->domain[0] == '\0' && m->version[0] == '\0' &&
           m->http.family == 0 && m->https.family == 0 && m->public_count == 0 &&
           m->api.family == 0 && memcmp(m->witness, none, sizeof(none)) == 0;
}

static bool gossip_meta_equal(const struct gossip_meta *a, const struct gossip_meta *b);

static void gossip_copy_str(char *out, size_t cap, const char *in)
{
    memcpy(out, in, strnlen(in, cap - 1));
}

static void gossip_copy_addr(struct gossip_addr *out, const struct gossip_addr *in)
{
    out->family = in->family;
    memcpy(out->ip, in->ip, sizeof(out->ip));
    out->port = in->port;
}

/* Metadata in canonical form: equal metadata is equal bytes (no padding, nothing past a
 * string's end or the public address count), so that it is stored once (gossip_share.c). */
static struct gossip_meta gossip_meta_canonical(const struct gossip_meta *in)
{
    struct gossip_meta out;

    memset(&out, 0, sizeof(out));
    gossip_copy_str(out.name, sizeof(out.name), in->name);
    gossip_copy_str(out.domain, sizeof(out.domain), in->domain);
    gossip_copy_str(out.version, sizeof(out.version), in->version);
    gossip_copy_addr(&out.http, &in->http);
    gossip_copy_addr(&out.https, &in->https);
    gossip_copy_addr(&out.api, &in->api);
    out.public_count =
        in->public_count < GOSSIP_PUBLIC_ADDRS_MAX ? in->public_count : GOSSIP_PUBLIC_ADDRS_MAX;
    for (size_t i = 0; i < out.public_count; i++)
        gossip_copy_addr(&out.public_addrs[i], &in->public_addrs[i]);
    memcpy(out.witness, in->witness, sizeof(out.witness));
    return out;
}

/* Moves *mp to version v (its parts held by the caller); false when out of memory. */
static bool gossip_member_set_ver(struct gossip *g, struct gmember **mp, const struct gver *v)
{
    struct gmember *m = gossip_member_w(g, *mp);
    uint32_t h;

    if (m == NULL)
        return false;
    *mp = m;
    if ((h = gshare_ver_ref(v)) == 0)
        return false;
    gshare_ver_unref(m->ver);
    m->ver = h & ((1u << 30) - 1);
    return true;
}

bool gossip_member_set_inc(struct gossip *g, struct gmember **mp, uint64_t inc)
{
    struct gver v = *gm_ver(*mp);

    if (v.incarnation == inc)
        return true;
    v.incarnation = inc;
    return gossip_member_set_ver(g, mp, &v);
}

/* Metadata is shared, and only when present (most test members have none). */
void gossip_member_set_meta(struct gossip *g, struct gmember **mp, const struct gossip_meta *meta)
{
    struct gver v = *gm_ver(*mp);
    struct gossip_meta c;

    if (gossip_meta_empty(meta)) {
        if (v.meta == 0)
            return;
        v.meta = 0;
        gossip_member_set_ver(g, mp, &v);
        return;
    }
    if (v.meta != 0 && gossip_meta_equal(gm_meta(*mp), meta))
        return;
    c = gossip_meta_canonical(meta);
    if ((v.meta = gshare_ref(GSHARE_BLOBS, &c, sizeof(c))) == 0)
        return;
    gossip_member_set_ver(g, mp, &v);
    gshare_unref(GSHARE_BLOBS, v.meta);
}

bool gossip_member_set_addr(struct gossip *g, struct gmember **mp, const struct gossip_addr *addr)
{
    struct gver v = *gm_ver(*mp);
    struct gossip_addr c;
    bool ok;

    if (gossip_addr_equal(gm_addr(*mp), addr))
        return true;
    memset(&c, 0, sizeof(c)); /* canonical: no padding bytes */
    gossip_copy_addr(&c, addr);
    if ((v.addr = gshare_ref(GSHARE_BLOBS, &c, sizeof(c))) == 0)
        return false;
    ok = gossip_member_set_ver(g, mp, &v);
    gshare_unref(GSHARE_BLOBS, v.addr);
    return ok;
}

void gossip_member_fill(const struct gossip *g, const struct gmember *m, struct gossip_member *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", gm_id(m));
    if (gm_ver(m)->meta != 0)
        out->meta = *gm_meta(m);
    out->addr = *gm_addr(m);
    out->state = m->state;
    out->incarnation = gm_inc(m);
    out->state_since_ms = gm_since(g, m);
    out->self = m == g->self;
}

/* Releases what m references and frees its slot (not its place in the lists). False when
 * out of memory (its chunk could not be un-shared): nothing changed. */
bool gossip_member_free(struct gossip *g, struct gmember *m)
{
    if (m->ver == 0)
        return true;
    if ((m = gossip_member_w(g, m)) == NULL)
        return false;
    if (m->state == GOSSIP_SUSPECT)
        gossip_suspect_remove(g, m);
    g->slot_used[gm_sid(m) / GMEMBER_CHUNK]--;
    g->nmembers--;
    gshare_ver_unref(m->ver);
    memset(m, 0, sizeof(*m));
    return true;
}

static void gossip_notify(struct gossip *g, struct gmember *m, bool reaped)
{
    if (g->cb.on_member) {
        struct gossip_member pub;
        gossip_member_fill(g, m, &pub);
        g->cb.on_member(g->cb.ctx, &pub, reaped);
    }
}

/* Our clock in GMEMBER_TICK_MS after start, rounded down (never later than now). */
static uint32_t gossip_since_now(const struct gossip *g)
{
    uint64_t t = (gossip_now(g) - g->start_ms) / GMEMBER_TICK_MS;

    return t < UINT32_MAX ? (uint32_t)t : UINT32_MAX;
}

struct gmember *gossip_member_add(struct gossip *g, const char *id, const struct gossip_addr *addr,
                                  uint64_t inc)
{
    struct gmember *m;
    struct gver v;
    struct gossip_addr c;
    uint32_t sid, h = 0;

    if (g->nmembers >= GOSSIP_MEMBERS_MAX) {
        gossip_drop(g, GOSSIP_DROP_TABLE_FULL);
        return NULL;
    }
    /* ids are shared like metadata: the simulator holds every id once per member */
    if ((sid = gshare_ref(GSHARE_IDS, id, strlen(id) + 1)) == 0)
        return NULL;
    memset(&v, 0, sizeof(v));
    memset(&c, 0, sizeof(c)); /* canonical: no padding bytes */
    gossip_copy_addr(&c, addr);
    v.incarnation = inc;
    v.id_hash = ghash64(id, strlen(id), GVER_ID_HASH_SEED);
    v.sid = sid;
    if ((m = gossip_slot_make(g, sid)) == NULL || m->ver != 0 ||
        (g->shared && (m = gossip_unshare(g, sid)) == NULL) ||
        (v.addr = gshare_ref(GSHARE_BLOBS, &c, sizeof(c))) == 0 || (h = gshare_ver_ref(&v)) == 0) {
        gshare_unref(GSHARE_BLOBS, v.addr);
        gshare_unref(GSHARE_IDS, sid);
        return NULL;
    }
    /* the version holds its parts now */
    gshare_unref(GSHARE_BLOBS, v.addr);
    gshare_unref(GSHARE_IDS, sid);
    m->ver = h & ((1u << 30) - 1);
    m->state = GOSSIP_ALIVE;
    m->since = gossip_since_now(g);
    g->slot_used[sid / GMEMBER_CHUNK]++;
    g->nmembers++;
    g->nlive++;
    gossip_order_add(g, sid);
    return m;
}

void gossip_member_reap(struct gossip *g, struct gmember *m)
{
    if ((m = gossip_member_w(g, m)) == NULL)
        return; /* out of memory: reaped later */
    gossip_list_remove(g->gone, &g->ngone, m);
    gossip_notify(g, m, true);
    gossip_member_free(g, m);
}

bool gossip_is_live(enum gossip_member_state s)
{
    return s == GOSSIP_ALIVE || s == GOSSIP_SUSPECT;
}

/* Moves *mp to state s; false (nothing changed) when a suspicion cannot be allocated. */
static bool gossip_set_state(struct gossip *g, struct gmember **mp, enum gossip_member_state s)
{
    struct gmember *m = *mp;
    enum gossip_member_state old = m->state;
    bool was_gone = old == GOSSIP_DEAD || old == GOSSIP_LEFT;
    bool gone = s == GOSSIP_DEAD || s == GOSSIP_LEFT;
    struct gsusp *susp = NULL;

    if (old == s)
        return true;
    if ((m = gossip_member_w(g, m)) == NULL)
        return false;
    *mp = m;
    if (s == GOSSIP_SUSPECT &&
        ((susp = calloc(1, sizeof(*susp))) == NULL || gossip_suspect_reserve(g) != 0)) {
        free(susp);
        return false;
    }
    if (old == GOSSIP_SUSPECT)
        gossip_suspect_remove(g, m);
    /* dead -> left stays in gone[] (it is still reaped in time) */
    if (was_gone && !gone)
        gossip_list_remove(g->gone, &g->ngone, m);
    if (gossip_is_live(old) && !gossip_is_live(s))
        g->nlive--;
    if (!gossip_is_live(old) && gossip_is_live(s))
        g->nlive++;
    m->state = (uint32_t)s & 3;
    m->since = gossip_since_now(g);
    if (s == GOSSIP_SUSPECT) {
        g->susps[g->nsuspects] = susp;
        g->suspects[g->nsuspects++] = m;
    } else if (gone && !was_gone) {
        gossip_ptr_push(&g->gone, &g->ngone, &g->gone_cap, m);
    }
    return true;
}

/* ---- messages about members ------------------------------------------------------------- */

void gossip_alive_msg(const struct gmember *m, struct gmsg *out)
{
    memset(out, 0, sizeof(*out));
    out->type = GMSG_ALIVE;
    snprintf(out->id, sizeof(out->id), "%s", gm_id(m));
    out->incarnation = gm_inc(m);
    out->addr = *gm_addr(m);
    if (gm_ver(m)->meta != 0)
        out->meta = *gm_meta(m);
}

/* News (a record change, a member's new state) is what users wait for: forward it now
 * rather than at the next round. The number of transmissions stays the same (the retransmit
 * limit); only their timing moves earlier, at most one early round per GOSSIP_EAGER_GAP_MS.
 * Not in a flood (more changes queued than GOSSIP_EAGER_QUEUE_MAX, as in a cold start where
 * thousands of members join within seconds): early rounds would then run every gap, ten times
 * the datagrams of the regular cadence, and the members pay it while it lasts; the regular
 * rounds carry full packets, and push-pull exchanges bring the rest. */
void gossip_eager(struct gossip *g)
{
    uint64_t soon = g->last_round_ms + GOSSIP_EAGER_GAP_MS;
    uint64_t now = gossip_now(g);

    if (g->q_members.count + g->q_health.count + g->q_data.count > GOSSIP_EAGER_QUEUE_MAX)
        return;
    if (soon < now)
        soon = now;
    if (soon < g->gossip_next) {
        g->gossip_next = soon;
        if (g->clock.wake != NULL)
            g->clock.wake(g->clock.ctx, soon);
    }
}

void gossip_queue_member(struct gossip *g, const struct gmsg *m)
{
    uint8_t buf[GOSSIP_UDP_MAX];
    struct gwbuf w;

    gwbuf_init_fixed(&w, buf, sizeof(buf));
    if (gproto_encode(&w, m) != 0)
        return;
    /* one entry per member: its latest news replaces older news */
    if (gq_put(&g->q_members, m->id, 0, buf, w.len) != 0)
        gossip_drop(g, GOSSIP_DROP_QUEUE_FULL);
    gossip_eager(g);
}

static void gossip_queue_state(struct gossip *g, uint8_t type, const struct gmember *m,
                               const char *from)
{
    struct gmsg msg;

    memset(&msg, 0, sizeof(msg));
    msg.type = type;
    snprintf(msg.id, sizeof(msg.id), "%s", gm_id(m));
    msg.incarnation = gm_inc(m);
    snprintf(msg.from, sizeof(msg.from), "%s", from);
    gossip_queue_member(g, &msg);
}

/* Moves m to incarnation inc; when that cannot be stored (out of memory) the failure is
 * counted and logged and the caller leaves the member as it was. */
static bool gossip_take_inc(struct gossip *g, struct gmember **mp, uint64_t inc)
{
    if (gossip_member_set_inc(g, mp, inc))
        return true;
    gossip_drop(g, GOSSIP_DROP_TABLE_FULL);
    gossip_logf(g, 1, "member %s: no memory to store incarnation %llu, message ignored", gm_id(*mp),
                (unsigned long long)inc);
    return false;
}

static void gossip_refute(struct gossip *g, uint64_t inc, const char *accuser)
{
    struct gmsg msg;
    struct gmember *acc;

    if (!gossip_take_inc(g, &g->self, inc >= gm_inc(g->self) ? inc + 1 : gm_inc(g->self) + 1))
        return; /* an alive at the suspected incarnation refutes nothing; the next try will */
    /* looked up after the write: it may have moved our chunk (gossip_member_w) */
    acc = accuser ? gossip_find(g, accuser) : NULL;
    g->stats.refutations++;
    /* Lifeguard: being suspected hints that we are the slow one. */
    gossip_awareness(g, 1);
    gossip_alive_msg(g->self, &msg);
    gossip_queue_member(g, &msg);
    /* the accuser is the one member sure to act on the suspicion: tell it first-hand, over
     * TCP too, which still gets through when the datagram path is what is failing */
    if (acc != NULL && acc != g->self && gossip_is_live(acc->state)) {
        gossip_send_msgs(g, gm_addr(acc), &msg, 1);
        gossip_stream_msg(g, gm_addr(acc), &msg);
    }
    /* Everyone who hears a suspicion probes the suspect at once and confirms it one probe
     * period later (gossip_probe_soon), so the suspicion reaches its short minimum fast. A
     * member that is slow rather than dead (it reads everything late) must beat that: its
     * refutation goes straight to up to GOSSIP_REFUTE_DIRECT members, not only round by
     * round. A datagram each, and only when we are suspected. */
    {
        struct gmember *to[GOSSIP_REFUTE_DIRECT];
        size_t k = gossip_random_members(g, GOSSIP_REFUTE_DIRECT, gossip_pick_alive, NULL, to);
        for (size_t i = 0; i < k; i++)
            if (to[i] != acc)
                gossip_send_msgs(g, gm_addr(to[i]), &msg, 1);
    }
    gossip_logf(g, 3, "refuting suspicion, incarnation now %llu",
                (unsigned long long)gm_inc(g->self));
}

/* Someone still suspects an older incarnation of ours: the refutation went round without
 * reaching it. Tell it directly rather than let its suspicion run out. */
static void gossip_correct(struct gossip *g, const char *accuser)
{
    struct gmember *acc = gossip_find(g, accuser);
    struct gmsg msg;

    if (acc == NULL || acc == g->self || !gossip_is_live(acc->state))
        return;
    gossip_alive_msg(g->self, &msg);
    gossip_send_msgs(g, gm_addr(acc), &msg, 1);
    gossip_stream_msg(g, gm_addr(acc), &msg);
}

/* Compares wire metadata with what a member holds (NULL: empty). */
static bool gossip_meta_same(const struct gossip_meta *wire, const struct gossip_meta *held)
{
    if (held == NULL)
        return gossip_meta_empty(wire);
    return gossip_meta_equal(wire, held);
}

static bool gossip_meta_equal(const struct gossip_meta *a, const struct gossip_meta *b)
{
    if (strcmp(a->name, b->name) != 0 || strcmp(a->domain, b->domain) != 0 ||
        strcmp(a->version, b->version) != 0 || !gossip_addr_equal(&a->http, &b->http) ||
        !gossip_addr_equal(&a->https, &b->https) || a->public_count != b->public_count ||
        !gossip_addr_equal(&a->api, &b->api) ||
        memcmp(a->witness, b->witness, sizeof(a->witness)) != 0)
        return false;
    for (size_t i = 0; i < a->public_count && i < GOSSIP_PUBLIC_ADDRS_MAX; i++)
        if (!gossip_addr_equal(&a->public_addrs[i], &b->public_addrs[i]))
            return false;
    return true;
}

/* Incarnations only grow by refutation (one at a time) and by restarts (the node starts from
 * the unix time in seconds). One message claiming UINT64_MAX would otherwise leave the member
 * unable to ever outrank it (its refutation wraps to 0): it would be silenced for good. So an
 * incarnation is believed only up to a day past our estimate of the wall clock, or a
 * generous number of refutations past what we know of the member. */
static bool gossip_inc_plausible(struct gossip *g, const struct gmember *mem, uint64_t inc)
{
    uint64_t wall_s = g->wall_base_s + (gossip_now(g) - g->start_ms) / 1000;
    uint64_t ceiling = wall_s + GOSSIP_INC_AHEAD_S;
    uint64_t known = mem != NULL ? gm_inc(mem) : 0;

    if (known + GOSSIP_INC_STEP_MAX > ceiling)
        ceiling = known + GOSSIP_INC_STEP_MAX;
    if (inc <= ceiling)
        return true;
    gossip_drop(g, GOSSIP_DROP_INCARNATION);
    return false;
}

void gossip_on_alive(struct gossip *g, const struct gmsg *m, bool regossip_new)
{
    struct gmember *mem = gossip_find(g, m->id);
    bool new_life;

    if (!gossip_inc_plausible(g, mem, m->incarnation))
        return;
    if (mem == g->self) {
        if (g->leaving || m->incarnation < gm_inc(mem))
            return;
        if (m->incarnation == gm_inc(mem) && gossip_addr_equal(&m->addr, gm_addr(mem)) &&
            gossip_meta_same(&m->meta, gm_meta(mem)))
            return;
        /* Someone speaks for us with our incarnation or newer: a previous life of ours, or an
         * impostor with our id. Outrank it. */
        gossip_refute(g, m->incarnation, NULL);
        return;
    }
    if (mem == NULL) {
        mem = gossip_member_add(g, m->id, &m->addr, m->incarnation);
        if (mem == NULL)
            return;
        gossip_member_set_meta(g, &mem, &m->meta);
        gossip_notify(g, mem, false);
        if (regossip_new)
            gossip_queue_member(g, m);
        ghealth_member_joined(g, true);
        return;
    }
    if (m->incarnation <= gm_inc(mem))
        return;
    /* a new life: back from dead or left, or past what a refutation (one step) gives */
    new_life = !gossip_is_live(mem->state) || m->incarnation > gm_inc(mem) + 1;
    if (!gossip_take_inc(g, &mem, m->incarnation))
        return; /* not alive at the incarnation it is suspected at; a retransmission retries */
    gossip_member_set_addr(g, &mem, &m->addr);
    gossip_member_set_meta(g, &mem, &m->meta);
    if (mem->state != GOSSIP_ALIVE)
        gossip_set_state(g, &mem, GOSSIP_ALIVE);
    gossip_notify(g, mem, false);
    gossip_queue_member(g, m);
    ghealth_member_joined(g, new_life); /* back from the dead, restarted, or refuted */
}

static void gossip_suspicion_deadline(struct gsusp *s)
{
    uint64_t timeout = s->max_ms;
    uint32_t c = s->n - 1; /* confirmations beyond the first accuser */

    if (s->k == 0) {
        timeout = s->min_ms;
    } else if (c > 0) {
        double frac = log((double)c + 1.0) / log((double)s->k + 1.0);
        double raw = (double)s->max_ms - frac * (double)(s->max_ms - s->min_ms);
        timeout = raw < (double)s->min_ms ? s->min_ms : (uint64_t)raw;
    }
    s->deadline_ms = s->start_ms + timeout;
}

static void gossip_suspicion_start(struct gossip *g, struct gsusp *s, const char *from)
{
    uint32_t n = g->nlive;
    uint32_t k = g->cfg.suspicion_confirm;
    double scale = n > 1 ? log10((double)n) : 1.0;

    if (scale < 1.0)
        scale = 1.0;
    /* In a small fleet not every other member must confirm (one whose own probe was still
     * out confirms a period late, and the timeout would wait for it): at most n - 3 of them,
     * but one at least while anyone besides the accuser and the suspect could. */
    if (k + 3 > n)
        k = n > 3 ? n - 3 : (n == 3 ? 1 : 0);
    memset(s, 0, sizeof(*s));
    s->start_ms = gossip_now(g);
    s->min_ms = (uint64_t)(g->cfg.suspicion_mult * scale * g->cfg.probe_interval_ms);
    s->max_ms = s->min_ms * g->cfg.suspicion_max_mult;
    s->k = k;
    s->n = 1;
    s->probed = strcmp(from, gm_id(g->self)) == 0;
    snprintf(s->from[0], sizeof(s->from[0]), "%s", from);
    gossip_suspicion_deadline(s);
}

/* Returns true when `from` is a new, independent accuser. */
static bool gossip_suspicion_confirm(struct gsusp *s, const char *from)
{
    for (uint32_t i = 0; i < s->n; i++)
        if (strcmp(s->from[i], from) == 0)
            return false;
    if (s->n >= GOSSIP_SUSPECT_CONFIRM_MAX || s->n > s->k)
        return false;
    snprintf(s->from[s->n], sizeof(s->from[0]), "%s", from);
    s->n++;
    gossip_suspicion_deadline(s);
    return true;
}

void gossip_on_suspect(struct gossip *g, const char *id, uint64_t inc, const char *from)
{
    struct gmember *mem = gossip_find(g, id);

    if (mem == NULL || !gossip_inc_plausible(g, mem, inc))
        return;
    if (mem == g->self) {
        if (!g->leaving && inc >= gm_inc(mem))
            gossip_refute(g, inc, from);
        else if (!g->leaving)
            gossip_correct(g, from);
        return;
    }
    if (inc < gm_inc(mem) || !gossip_is_live(mem->state))
        return;
    if (mem->state == GOSSIP_SUSPECT) {
        if (inc > gm_inc(mem)) {
            gossip_member_set_inc(g, &mem, inc);
            gossip_suspicion_start(g, gm_susp(g, mem), from);
            gossip_queue_state(g, GMSG_SUSPECT, mem, from);
        } else if (gossip_suspicion_confirm(gm_susp(g, mem), from)) {
            /* pass confirmations on: others count them too */
            gossip_queue_state(g, GMSG_SUSPECT, mem, from);
        }
        return;
    }
    if (!gossip_set_state(g, &mem, GOSSIP_SUSPECT))
        return;
    gossip_member_set_inc(g, &mem, inc);
    gossip_suspicion_start(g, gm_susp(g, mem), from);
    g->stats.suspicions++;
    gossip_notify(g, mem, false);
    gossip_queue_state(g, GMSG_SUSPECT, mem, from);
    gossip_probe_soon(g, mem);
}

void gossip_on_dead(struct gossip *g, const char *id, uint64_t inc, const char *from)
{
    struct gmember *mem = gossip_find(g, id);
    bool left = strcmp(id, from) == 0;

    if (mem == NULL || !gossip_inc_plausible(g, mem, inc))
        return;
    if (mem == g->self) {
        if (!g->leaving && inc >= gm_inc(mem))
            gossip_refute(g, inc, from);
        return;
    }
    if (inc < gm_inc(mem))
        return;
    if (!gossip_is_live(mem->state)) {
        /* a leave notice outranks our own conclusion that it died */
        if (left && mem->state == GOSSIP_DEAD) {
            gossip_member_set_inc(g, &mem, inc);
            gossip_set_state(g, &mem, GOSSIP_LEFT);
            gossip_notify(g, mem, false);
            gossip_queue_state(g, GMSG_DEAD, mem, from);
        }
        return;
    }
    gossip_member_set_inc(g, &mem, inc);
    gossip_set_state(g, &mem, left ? GOSSIP_LEFT : GOSSIP_DEAD);
    gossip_notify(g, mem, false);
    gossip_queue_state(g, GMSG_DEAD, mem, from);
    gossip_logf(g, 2, "member %s (%s) %s", gm_id(mem), gm_ver(mem)->meta ? gm_meta(mem)->name : "",
                left ? "left" : "declared dead");
}
