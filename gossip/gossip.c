/*
 * gossip.c - SWIM membership with the Lifeguard extensions: the protocol logic.
 *
 * Design, and why:
 *
 * - Failure detection is SWIM's: every protocol period a member pings the next member of a
 *   shuffled round-robin list (each member is probed within n periods, not just on average).
 *   No ack within the probe timeout: k other members are asked to ping it for us (indirect
 *   probes), so one lossy link does not make a member look dead. Relays answer "nack" when
 *   they heard nothing, which tells us that *they* are reachable: if even nacks do not
 *   come back, the problem is probably ours (Lifeguard, below).
 * - A failed probe makes the target *suspect*, not dead. The suspicion is gossiped; the
 *   member hears it (the buddy system puts it in the very next ping we send it) and refutes
 *   by raising its incarnation number. Only an unrefuted suspicion turns into death.
 * - Lifeguard's suspicion timeout starts long (suspicion_max_mult times the minimum) and
 *   shrinks logarithmically as other members independently confirm the suspicion, down to
 *   suspicion_mult * log10(n) probe periods: a real death is declared fast because many
 *   members notice it, a lone accuser has to wait long enough for a refutation.
 * - Lifeguard's local health score ("awareness") grows when our probes fail, when expected
 *   nacks do not arrive, and when we must refute suspicions about ourselves; it shrinks with
 *   each successful probe. Our probe period and timeout are scaled by it, so a member that
 *   is slow itself (CPU starved, GC, lost packets on its own link) accuses less and later.
 * - Members are identified by a stable id, not by address: a member that restarts (same id,
 *   maybe a new address) comes back with a higher incarnation (the node starts it from the
 *   wall clock, and any news about ourselves newer than ours is refuted with a still higher
 *   one), so nothing remembered about its previous life can win against it.
 * - Dead members are kept (dead_reap_ms) and one of them is contacted every reconnect
 *   interval with a push-pull exchange: after a partition heals, the two sides find each
 *   other again and each refutes its own death.
 * - Beyond the papers, three measures let us probe every 500 ms (twice memberlist's rate)
 *   with no false deaths at 20-30% datagram loss: when direct and indirect UDP probes fail,
 *   a TCP probe (carrying the buddy suspicion) is tried before suspecting, as memberlist
 *   does; when we do suspect, we tell the suspect at once over UDP and TCP instead of
 *   waiting for gossip; and a member hearing an already-refuted suspicion about itself
 *   answers the accuser directly. A member that hears of a suspicion probes the suspect at
 *   its next period, so stale suspicions are checked first-hand, and each failed check is an
 *   independent Lifeguard confirmation.
 * - Changes are never sent on their own: they ride on pings, acks and gossip rounds from two
 *   queues (membership, data) that alternate within each packet (gossip_queue.c). A new
 *   change advances the next gossip round (at most one early round per 20 ms): the same
 *   number of transmissions, sent sooner.
 * - A ping from a member we do not know, or a member list older than one dissemination cycle,
 *   triggers repair: a push-pull with the stranger, and re-gossip of recent news learned by
 *   push-pull, so simultaneous joins through one seed converge in seconds, not in push-pull
 *   periods.
 *
 * Everything runs from gossip_receive and gossip_tick on one thread; time comes from the
 * clock interface, so tests drive hundreds of members on virtual time.
 */
#include "gossip/gossip_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void gossip_stream_msg(struct gossip *g, const struct gossip_addr *to, const struct gmsg *m);
static void gossip_stream_msgs(struct gossip *g, const struct gossip_addr *to,
                               const struct gmsg *msgs, size_t n);
static void gossip_dispatch(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m);

/* ---- configuration ----------------------------------------------------------------------- */

void gossip_config_default(struct gossip_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->probe_interval_ms = 500;
    cfg->probe_timeout_ms = 250;
    cfg->indirect_checks = 3;
    cfg->gossip_interval_ms = 200;
    cfg->gossip_nodes = 3;
    cfg->gossip_to_dead_ms = 30000;
    cfg->suspicion_mult = 4;
    cfg->suspicion_max_mult = 6;
    cfg->retransmit_mult = 4;
    cfg->awareness_max = 8;
    cfg->pushpull_interval_ms = 30000;
    cfg->reconnect_interval_ms = 10000;
    cfg->dead_reap_ms = 3600000;
    cfg->left_reap_ms = 300000;
    cfg->health_probers = 2;
    cfg->health_ttl_ms = 30000;
    cfg->queue_max = 8192;
}

/* ---- small helpers ----------------------------------------------------------------------- */

uint64_t gossip_now(const struct gossip *g)
{
    return g->clock.now_ms(g->clock.ctx);
}

void gossip_logf(const struct gossip *g, int level, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (g->cb.log == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    g->cb.log(g->cb.ctx, level, line);
}

void gossip_drop(struct gossip *g, enum gossip_drop_reason r)
{
    g->stats.drops[r]++;
}

static uint64_t gossip_scale(const struct gossip *g, uint64_t ms)
{
    return ms * (g->awareness + 1);
}

static void gossip_awareness(struct gossip *g, int delta)
{
    int64_t a = (int64_t)g->awareness + delta;

    if (a < 0)
        a = 0;
    if (a > (int64_t)g->cfg.awareness_max - 1)
        a = g->cfg.awareness_max - 1;
    g->awareness = (uint32_t)a;
}

uint32_t gossip_retransmit_limit(const struct gossip *g)
{
    double l = ceil(log10((double)g->nlive + 1.0));
    uint32_t lim = g->cfg.retransmit_mult * (uint32_t)(l < 1 ? 1 : l);

    return lim < GOSSIP_TIERS ? lim : GOSSIP_TIERS;
}

/* ---- member table ------------------------------------------------------------------------ */

struct gmember *gossip_find(const struct gossip *g, const char *id)
{
    size_t mask = g->index_size - 1;
    size_t i = ghash64(id, strlen(id), 0) & mask;

    for (; g->index[i]; i = (i + 1) & mask)
        if (strcmp(g->index[i]->id, id) == 0)
            return g->index[i];
    return NULL;
}

static void gossip_index_put(struct gmember **index, size_t size, struct gmember *m)
{
    size_t i = ghash64(m->id, strlen(m->id), 0) & (size - 1);

    while (index[i])
        i = (i + 1) & (size - 1);
    index[i] = m;
}

static int gossip_index_rebuild(struct gossip *g, size_t size)
{
    struct gmember **ni = calloc(size, sizeof(*ni));

    if (ni == NULL)
        return GOSSIP_ENOMEM;
    for (size_t i = 0; i < g->nmembers; i++)
        gossip_index_put(ni, size, g->members[i]);
    free(g->index);
    g->index = ni;
    g->index_size = size;
    return 0;
}

static int gossip_ptr_push(struct gmember ***arr, size_t *n, size_t *cap, struct gmember *m)
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

/* suspects[] and gone[] remove by swapping the last entry in. */
static void gossip_list_remove(struct gmember **arr, size_t *n, struct gmember *m)
{
    size_t pos = m->list_pos;

    if (pos >= *n || arr[pos] != m)
        return;
    arr[pos] = arr[--(*n)];
    arr[pos]->list_pos = pos;
}

/* Most simulated members carry no metadata: keep it out of line and only when present. */
static void gossip_member_set_meta(struct gmember *m, const struct gossip_meta *meta)
{
    if (meta->name[0] == '\0' && meta->domain[0] == '\0' && meta->version[0] == '\0' &&
        meta->http.family == 0 && meta->https.family == 0) {
        free(m->meta);
        m->meta = NULL;
        return;
    }
    if (m->meta == NULL && (m->meta = malloc(sizeof(*m->meta))) == NULL)
        return;
    *m->meta = *meta;
}

void gossip_member_fill(const struct gmember *m, struct gossip_member *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->id, sizeof(out->id), "%s", m->id);
    if (m->meta != NULL)
        out->meta = *m->meta;
    out->addr = m->addr;
    out->state = m->state;
    out->incarnation = m->incarnation;
    out->state_since_ms = m->state_since_ms;
    out->self = m->self;
}

static void gossip_member_free(struct gmember *m)
{
    free(m->meta);
    free(m->susp);
    free(m);
}

static void gossip_notify(struct gossip *g, struct gmember *m, bool reaped)
{
    if (g->cb.on_member) {
        struct gossip_member pub;
        gossip_member_fill(m, &pub);
        g->cb.on_member(g->cb.ctx, &pub, reaped);
    }
}

static struct gmember *gossip_member_add(struct gossip *g, const char *id,
                                         const struct gossip_addr *addr, uint64_t inc)
{
    struct gmember *m;

    if (g->nmembers >= GOSSIP_MEMBERS_MAX) {
        gossip_drop(g, GOSSIP_DROP_TABLE_FULL);
        return NULL;
    }
    if ((g->nmembers + 1) * 4 > g->index_size * 3 &&
        gossip_index_rebuild(g, g->index_size * 2) != 0)
        return NULL;
    m = calloc(1, sizeof(*m) + strlen(id) + 1);
    if (m == NULL)
        return NULL;
    memcpy(m->id, id, strlen(id) + 1);
    m->addr = *addr;
    m->incarnation = inc;
    m->state = GOSSIP_ALIVE;
    m->state_since_ms = gossip_now(g);
    if (gossip_ptr_push(&g->members, &g->nmembers, &g->members_cap, m) != 0) {
        free(m);
        return NULL;
    }
    gossip_index_put(g->index, g->index_size, m);
    g->nlive++;
    /* A newcomer goes to a random place among the members not yet probed this round, so it
     * is probed within one round without favouring it. */
    if (!g->probe_dirty && m != g->self &&
        gossip_ptr_push(&g->probe_order, &g->nprobe, &g->probe_cap, m) == 0) {
        size_t span = g->nprobe - g->probe_pos;
        size_t j = g->probe_pos + grand_below(&g->rng, (uint32_t)span);
        struct gmember *t = g->probe_order[j];
        g->probe_order[j] = g->probe_order[g->nprobe - 1];
        g->probe_order[g->nprobe - 1] = t;
    }
    return m;
}

static void gossip_member_reap(struct gossip *g, struct gmember *m)
{
    gossip_list_remove(g->gone, &g->ngone, m);
    for (size_t i = 0; i < g->nmembers; i++) {
        if (g->members[i] == m) {
            g->members[i] = g->members[--g->nmembers];
            break;
        }
    }
    gossip_index_rebuild(g, g->index_size);
    g->probe_dirty = true;
    gossip_notify(g, m, true);
    gossip_member_free(m);
}

static bool gossip_is_live(enum gossip_member_state s)
{
    return s == GOSSIP_ALIVE || s == GOSSIP_SUSPECT;
}

static void gossip_set_state(struct gossip *g, struct gmember *m, enum gossip_member_state s)
{
    enum gossip_member_state old = m->state;

    if (old == s)
        return;
    if (old == GOSSIP_SUSPECT) {
        gossip_list_remove(g->suspects, &g->nsuspects, m);
        free(m->susp);
        m->susp = NULL;
    }
    if (old == GOSSIP_DEAD || old == GOSSIP_LEFT)
        gossip_list_remove(g->gone, &g->ngone, m);
    if (gossip_is_live(old) && !gossip_is_live(s))
        g->nlive--;
    if (!gossip_is_live(old) && gossip_is_live(s))
        g->nlive++;
    m->state = s;
    m->state_since_ms = gossip_now(g);
    if (s == GOSSIP_SUSPECT) {
        m->list_pos = g->nsuspects;
        gossip_ptr_push(&g->suspects, &g->nsuspects, &g->suspects_cap, m);
    } else if ((s == GOSSIP_DEAD || s == GOSSIP_LEFT) &&
               (old != GOSSIP_DEAD && old != GOSSIP_LEFT)) {
        m->list_pos = g->ngone;
        gossip_ptr_push(&g->gone, &g->ngone, &g->gone_cap, m);
    }
}

/* ---- messages about members ------------------------------------------------------------- */

static void gossip_alive_msg(const struct gmember *m, struct gmsg *out)
{
    memset(out, 0, sizeof(*out));
    out->type = GMSG_ALIVE;
    snprintf(out->id, sizeof(out->id), "%s", m->id);
    out->incarnation = m->incarnation;
    out->addr = m->addr;
    if (m->meta != NULL)
        out->meta = *m->meta;
}

/* News (a record change, a member's new state) is what users wait for: forward it now
 * rather than at the next round. The number of transmissions stays the same (the retransmit
 * limit); only their timing moves earlier, at most one early round per GOSSIP_EAGER_GAP_MS. */
static void gossip_eager(struct gossip *g)
{
    uint64_t soon = g->last_round_ms + GOSSIP_EAGER_GAP_MS;
    uint64_t now = gossip_now(g);

    if (soon < now)
        soon = now;
    if (soon < g->gossip_next)
        g->gossip_next = soon;
}

static void gossip_queue_member(struct gossip *g, const struct gmsg *m)
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
    snprintf(msg.id, sizeof(msg.id), "%s", m->id);
    msg.incarnation = m->incarnation;
    snprintf(msg.from, sizeof(msg.from), "%s", from);
    gossip_queue_member(g, &msg);
}

static void gossip_refute(struct gossip *g, uint64_t inc, const char *accuser)
{
    struct gmsg msg;
    struct gmember *acc = accuser ? gossip_find(g, accuser) : NULL;

    if (inc >= g->self->incarnation)
        g->self->incarnation = inc + 1;
    else
        g->self->incarnation++;
    g->stats.refutations++;
    /* Lifeguard: being suspected hints that we are the slow one. */
    gossip_awareness(g, 1);
    gossip_alive_msg(g->self, &msg);
    gossip_queue_member(g, &msg);
    /* the accuser is the one member sure to act on the suspicion: tell it first-hand, over
     * TCP too, which still gets through when the datagram path is what is failing */
    if (acc != NULL && acc != g->self && gossip_is_live(acc->state)) {
        gossip_send_msgs(g, &acc->addr, &msg, 1);
        gossip_stream_msg(g, &acc->addr, &msg);
    }
    gossip_logf(g, 3, "refuting suspicion, incarnation now %llu",
                (unsigned long long)g->self->incarnation);
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
    gossip_send_msgs(g, &acc->addr, &msg, 1);
    gossip_stream_msg(g, &acc->addr, &msg);
}

static bool gossip_meta_empty(const struct gossip_meta *m)
{
    return m->name[0] == '\0' && m->domain[0] == '\0' && m->version[0] == '\0' &&
           m->http.family == 0 && m->https.family == 0;
}

static bool gossip_meta_equal(const struct gossip_meta *a, const struct gossip_meta *b);

/* Compares wire metadata with what a member holds (NULL: empty). */
static bool gossip_meta_same(const struct gossip_meta *wire, const struct gossip_meta *held)
{
    if (held == NULL)
        return gossip_meta_empty(wire);
    return gossip_meta_equal(wire, held);
}

static bool gossip_meta_equal(const struct gossip_meta *a, const struct gossip_meta *b)
{
    return strcmp(a->name, b->name) == 0 && strcmp(a->domain, b->domain) == 0 &&
           strcmp(a->version, b->version) == 0 && gossip_addr_equal(&a->http, &b->http) &&
           gossip_addr_equal(&a->https, &b->https);
}

void gossip_on_alive(struct gossip *g, const struct gmsg *m, bool regossip_new)
{
    struct gmember *mem = gossip_find(g, m->id);

    if (mem == g->self) {
        if (g->leaving || m->incarnation < mem->incarnation)
            return;
        if (m->incarnation == mem->incarnation && gossip_addr_equal(&m->addr, &mem->addr) &&
            gossip_meta_same(&m->meta, mem->meta))
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
        gossip_member_set_meta(mem, &m->meta);
        gossip_notify(g, mem, false);
        if (regossip_new)
            gossip_queue_member(g, m);
        return;
    }
    if (m->incarnation <= mem->incarnation)
        return;
    mem->incarnation = m->incarnation;
    mem->addr = m->addr;
    gossip_member_set_meta(mem, &m->meta);
    if (mem->state != GOSSIP_ALIVE)
        gossip_set_state(g, mem, GOSSIP_ALIVE);
    gossip_notify(g, mem, false);
    gossip_queue_member(g, m);
}

static void gossip_suspicion_deadline(struct gossip *g, struct gmember *m)
{
    uint64_t timeout = m->susp->max_ms;
    uint32_t c = m->susp->n - 1; /* confirmations beyond the first accuser */

    if (m->susp->k == 0) {
        timeout = m->susp->min_ms;
    } else if (c > 0) {
        double frac = log((double)c + 1.0) / log((double)m->susp->k + 1.0);
        double raw = (double)m->susp->max_ms - frac * (double)(m->susp->max_ms - m->susp->min_ms);
        timeout = raw < (double)m->susp->min_ms ? m->susp->min_ms : (uint64_t)raw;
    }
    m->susp->deadline_ms = m->susp->start_ms + timeout;
}

static bool gossip_suspicion_start(struct gossip *g, struct gmember *m, const char *from)
{
    uint32_t n = g->nlive;
    uint32_t k = g->cfg.suspicion_mult > 2 ? g->cfg.suspicion_mult - 2 : 0;
    double scale = n > 1 ? log10((double)n) : 1.0;

    if (scale < 1.0)
        scale = 1.0;
    if (n < k + 2)
        k = 0;
    if (m->susp == NULL && (m->susp = calloc(1, sizeof(*m->susp))) == NULL)
        return false;
    m->susp->start_ms = gossip_now(g);
    m->susp->min_ms = (uint64_t)(g->cfg.suspicion_mult * scale * g->cfg.probe_interval_ms);
    m->susp->max_ms = m->susp->min_ms * g->cfg.suspicion_max_mult;
    m->susp->k = k;
    m->susp->n = 1;
    m->susp->probed = strcmp(from, g->self->id) == 0;
    snprintf(m->susp->from[0], sizeof(m->susp->from[0]), "%s", from);
    gossip_suspicion_deadline(g, m);
    return true;
}

/* Returns true when `from` is a new, independent accuser. */
static bool gossip_suspicion_confirm(struct gossip *g, struct gmember *m, const char *from)
{
    for (uint32_t i = 0; i < m->susp->n; i++)
        if (strcmp(m->susp->from[i], from) == 0)
            return false;
    if (m->susp->n >= GOSSIP_SUSPECT_CONFIRM_MAX || m->susp->n > m->susp->k)
        return false;
    snprintf(m->susp->from[m->susp->n], sizeof(m->susp->from[0]), "%s", from);
    m->susp->n++;
    gossip_suspicion_deadline(g, m);
    return true;
}

void gossip_on_suspect(struct gossip *g, const char *id, uint64_t inc, const char *from)
{
    struct gmember *mem = gossip_find(g, id);

    if (mem == NULL)
        return;
    if (mem == g->self) {
        if (!g->leaving && inc >= mem->incarnation)
            gossip_refute(g, inc, from);
        else if (!g->leaving)
            gossip_correct(g, from);
        return;
    }
    if (inc < mem->incarnation || !gossip_is_live(mem->state))
        return;
    if (mem->state == GOSSIP_SUSPECT) {
        if (inc > mem->incarnation) {
            mem->incarnation = inc;
            if (!gossip_suspicion_start(g, mem, from))
                return;
            gossip_queue_state(g, GMSG_SUSPECT, mem, from);
        } else if (gossip_suspicion_confirm(g, mem, from)) {
            /* pass confirmations on: others count them too */
            gossip_queue_state(g, GMSG_SUSPECT, mem, from);
        }
        return;
    }
    mem->incarnation = inc;
    if (!gossip_suspicion_start(g, mem, from))
        return;
    gossip_set_state(g, mem, GOSSIP_SUSPECT);
    g->stats.suspicions++;
    gossip_notify(g, mem, false);
    gossip_queue_state(g, GMSG_SUSPECT, mem, from);
}

void gossip_on_dead(struct gossip *g, const char *id, uint64_t inc, const char *from)
{
    struct gmember *mem = gossip_find(g, id);
    bool left = strcmp(id, from) == 0;

    if (mem == NULL)
        return;
    if (mem == g->self) {
        if (!g->leaving && inc >= mem->incarnation)
            gossip_refute(g, inc, from);
        return;
    }
    if (inc < mem->incarnation)
        return;
    if (!gossip_is_live(mem->state)) {
        /* a leave notice outranks our own conclusion that it died */
        if (left && mem->state == GOSSIP_DEAD) {
            mem->incarnation = inc;
            gossip_set_state(g, mem, GOSSIP_LEFT);
            gossip_notify(g, mem, false);
            gossip_queue_state(g, GMSG_DEAD, mem, from);
        }
        return;
    }
    mem->incarnation = inc;
    gossip_set_state(g, mem, left ? GOSSIP_LEFT : GOSSIP_DEAD);
    gossip_notify(g, mem, false);
    gossip_queue_state(g, GMSG_DEAD, mem, from);
    gossip_logf(g, 2, "member %s (%s) %s", mem->id, mem->meta ? mem->meta->name : "",
                left ? "left" : "declared dead");
}

/* ---- items ------------------------------------------------------------------------------- */

void gossip_queue_data(struct gossip *g, const char *qkey, uint64_t version, const struct gmsg *m)
{
    uint8_t small[GOSSIP_UDP_MAX];
    struct gwbuf w;
    int rc;

    gwbuf_init_fixed(&w, small, g->udp_body_max);
    rc = gproto_encode(&w, m);
    if (rc == 0) {
        rc = gq_put(&g->q_data, qkey, version, small, w.len);
    } else if (rc == GOSSIP_ETOOBIG) {
        /* does not fit a datagram: it will travel over TCP */
        if (gwbuf_init_dynamic(&w, GOSSIP_ITEM_MAX + GOSSIP_KEY_MAX + 64,
                               GOSSIP_ITEM_MAX + GOSSIP_KEY_MAX + 64) != 0)
            return;
        rc = gproto_encode(&w, m);
        if (rc == 0)
            rc = gq_put(&g->q_big, qkey, version, w.data, w.len);
        gwbuf_free_dynamic(&w);
    }
    if (rc != 0)
        gossip_drop(g, GOSSIP_DROP_QUEUE_FULL);
}

static void gossip_queue_item(struct gossip *g, const char *key, uint64_t version,
                              const uint8_t *bytes, size_t len)
{
    char qkey[GOSSIP_KEY_MAX + 3];
    struct gmsg m;

    memset(&m, 0, sizeof(m));
    m.type = GMSG_ITEM;
    snprintf(m.key, sizeof(m.key), "%s", key);
    m.version = version;
    m.bytes = bytes;
    m.len = len;
    snprintf(qkey, sizeof(qkey), "i:%s", key);
    gossip_queue_data(g, qkey, version, &m);
    gossip_eager(g);
}

int gossip_broadcast(struct gossip *g, const char *key, uint64_t version, const uint8_t *bytes,
                     size_t len)
{
    size_t klen = key ? strlen(key) : 0;

    if (klen == 0 || klen > GOSSIP_KEY_MAX)
        return GOSSIP_EINVAL;
    for (size_t i = 0; i < klen; i++)
        if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e)
            return GOSSIP_EINVAL;
    if (len > GOSSIP_ITEM_MAX)
        return GOSSIP_ETOOBIG;
    gossip_queue_item(g, key, version, bytes, len);
    return 0;
}

void gossip_on_item(struct gossip *g, const char *key, uint64_t version, const uint8_t *bytes,
                    size_t len, bool regossip)
{
    int rc;

    if (g->cb.on_item == NULL)
        return;
    rc = g->cb.on_item(g->cb.ctx, key, version, bytes, len);
    if (rc < 0) {
        gossip_drop(g, GOSSIP_DROP_ITEM_REJECTED);
        return;
    }
    if (rc == 0)
        return;
    g->stats.items_received++;
    if (regossip)
        gossip_queue_item(g, key, version, bytes, len);
}

/* ---- sending ----------------------------------------------------------------------------- */

static bool gossip_fill_one(struct gossip *g, struct gqueue *q, struct gwbuf *w, uint32_t limit,
                            struct gq_entry **picked, size_t *npicked)
{
    struct gq_entry *e = gq_pick(q, limit, w->cap - w->len);

    if (e == NULL)
        return false;
    memcpy(w->data + w->len, e->msg, e->len);
    w->len += e->len;
    picked[(*npicked)++] = e;
    if (e->len > 1 && e->msg[1] == GMSG_ITEM)
        g->stats.items_sent++;
    return true;
}

/* Piggy-backs queued changes into the rest of the packet, alternating membership and data. */
static void gossip_fill(struct gossip *g, struct gwbuf *w, size_t nmsgs)
{
    struct gq_entry *pm[GOSSIP_MSGS_PER_PACKET], *pd[GOSSIP_MSGS_PER_PACKET];
    size_t npm = 0, npd = 0;
    uint32_t limit = gossip_retransmit_limit(g);

    gq_begin(&g->q_members);
    gq_begin(&g->q_data);
    while (nmsgs + npm + npd + 2 <= GOSSIP_MSGS_PER_PACKET) {
        bool a = gossip_fill_one(g, &g->q_members, w, limit, pm, &npm);
        bool b = gossip_fill_one(g, &g->q_data, w, limit, pd, &npd);
        if (!a && !b)
            break;
    }
    for (size_t i = 0; i < npm; i++)
        gq_sent(&g->q_members, pm[i], limit);
    for (size_t i = 0; i < npd; i++)
        gq_sent(&g->q_data, pd[i], limit);
}

static void gossip_send_body(struct gossip *g, const struct gossip_addr *to, const uint8_t *body,
                             size_t len)
{
    uint8_t out[GOSSIP_UDP_MAX];
    int n = genv_seal(g->cipher, &g->cfg.keyring, g->cfg.label, body, len, out, sizeof(out));

    if (n < 0 || g->tr.ops->send_packet(g->tr.ctx, to, out, (size_t)n) != 0) {
        gossip_drop(g, GOSSIP_DROP_SEND_FAILED);
        return;
    }
    g->stats.packets_sent++;
    g->stats.bytes_sent += (uint64_t)n;
}

void gossip_send_msgs(struct gossip *g, const struct gossip_addr *to, const struct gmsg *msgs,
                      size_t n)
{
    uint8_t body[GOSSIP_UDP_MAX];
    struct gwbuf w;

    gwbuf_init_fixed(&w, body, g->udp_body_max);
    for (size_t i = 0; i < n; i++)
        if (gproto_encode(&w, &msgs[i]) != 0)
            return;
    gossip_fill(g, &w, n);
    if (w.len == 0)
        return;
    gossip_send_body(g, to, body, w.len);
}

void gossip_send_stream(struct gossip *g, const struct gossip_addr *to, const uint8_t *body,
                        size_t len)
{
    size_t cap = len + genv_overhead(&g->cfg.keyring, g->cfg.label);
    uint8_t *out;
    int n;

    if (cap > GOSSIP_STREAM_MAX) {
        gossip_drop(g, GOSSIP_DROP_OVERSIZE);
        return;
    }
    out = malloc(cap);
    if (out == NULL)
        return;
    n = genv_seal(g->cipher, &g->cfg.keyring, g->cfg.label, body, len, out, cap);
    if (n < 0 || g->tr.ops->send_stream(g->tr.ctx, to, out, (size_t)n) != 0) {
        gossip_drop(g, GOSSIP_DROP_SEND_FAILED);
    } else {
        g->stats.streams_sent++;
        g->stats.stream_bytes_sent += (uint64_t)n;
    }
    free(out);
}

/* ---- choosing members -------------------------------------------------------------------- */

typedef bool (*gossip_pick_fn)(const struct gossip *g, const struct gmember *m, const void *arg);

/* Up to k distinct random members matching fn; tries a bounded number of times so a mostly
 * dead table cannot stall us. */
static size_t gossip_random_members(struct gossip *g, size_t k, gossip_pick_fn fn, const void *arg,
                                    struct gmember **out)
{
    size_t found = 0, tries = 0, limit = 3 * g->nmembers + 8;

    while (found < k && tries++ < limit && g->nmembers > 0) {
        struct gmember *m = g->members[grand_below(&g->rng, (uint32_t)g->nmembers)];
        bool dup = false;
        if (m == g->self || !fn(g, m, arg))
            continue;
        for (size_t i = 0; i < found; i++)
            dup = dup || out[i] == m;
        if (!dup)
            out[found++] = m;
    }
    return found;
}

static bool gossip_pick_gossip(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)arg;
    if (gossip_is_live(m->state))
        return true;
    /* keep telling the recently dead: if they are in fact alive they learn it and refute */
    return m->state == GOSSIP_DEAD && gossip_now(g) - m->state_since_ms < g->cfg.gossip_to_dead_ms;
}

static bool gossip_pick_relay(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)g;
    return m->state == GOSSIP_ALIVE && strcmp(m->id, (const char *)arg) != 0;
}

static bool gossip_pick_alive(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)g;
    (void)arg;
    return m->state == GOSSIP_ALIVE;
}

/* ---- probing ----------------------------------------------------------------------------- */

static void gossip_probe_rebuild(struct gossip *g)
{
    g->nprobe = 0;
    g->probe_pos = 0;
    for (size_t i = 0; i < g->nmembers; i++)
        if (g->members[i] != g->self)
            gossip_ptr_push(&g->probe_order, &g->nprobe, &g->probe_cap, g->members[i]);
    for (size_t i = g->nprobe; i > 1; i--) {
        size_t j = grand_below(&g->rng, (uint32_t)i);
        struct gmember *t = g->probe_order[i - 1];
        g->probe_order[i - 1] = g->probe_order[j];
        g->probe_order[j] = t;
    }
    g->probe_dirty = false;
}

static struct gmember *gossip_probe_target(struct gossip *g)
{
    /* A suspicion we only heard about is checked first-hand at the next period: our probe
     * carries it to the suspect (buddy system), which refutes if alive; if the probe fails,
     * that is an independent confirmation that shortens the timeout (Lifeguard). Either
     * way no member sits on a stale suspicion until its timer runs out. */
    for (size_t i = 0; i < g->nsuspects; i++) {
        if (!g->suspects[i]->susp->probed) {
            g->suspects[i]->susp->probed = true;
            return g->suspects[i];
        }
    }
    if (g->probe_dirty)
        gossip_probe_rebuild(g);
    for (size_t tries = 0; tries <= g->nprobe + 1; tries++) {
        struct gmember *m;
        if (g->probe_pos >= g->nprobe) {
            gossip_probe_rebuild(g);
            if (g->nprobe == 0)
                return NULL;
        }
        m = g->probe_order[g->probe_pos++];
        if (gossip_is_live(m->state))
            return m;
    }
    return NULL;
}

static void gossip_probe_start(struct gossip *g, uint64_t now)
{
    struct gmember *t = gossip_probe_target(g);
    struct gmsg msgs[2];
    size_t n = 1;

    g->probe.active = false;
    if (t == NULL)
        return;
    memset(&g->probe, 0, sizeof(g->probe));
    g->probe.active = true;
    g->probe.seq = ++g->seq;
    snprintf(g->probe.target, sizeof(g->probe.target), "%s", t->id);
    g->probe.target_inc = t->incarnation;
    g->probe.timeout_at = now + gossip_scale(g, g->cfg.probe_timeout_ms);
    memset(msgs, 0, sizeof(msgs));
    msgs[0].type = GMSG_PING;
    msgs[0].seq = g->probe.seq;
    snprintf(msgs[0].id, sizeof(msgs[0].id), "%s", t->id);
    snprintf(msgs[0].from, sizeof(msgs[0].from), "%s", g->self->id);
    if (t->state == GOSSIP_SUSPECT) {
        /* buddy system: tell it first-hand so it can refute right away */
        msgs[1].type = GMSG_SUSPECT;
        snprintf(msgs[1].id, sizeof(msgs[1].id), "%s", t->id);
        msgs[1].incarnation = t->incarnation;
        snprintf(msgs[1].from, sizeof(msgs[1].from), "%s", g->self->id);
        n = 2;
    }
    g->stats.probes++;
    gossip_send_msgs(g, &t->addr, msgs, n);
}

static void gossip_probe_indirect(struct gossip *g)
{
    struct gmember *t = gossip_find(g, g->probe.target);
    struct gmember *relays[16];
    size_t k = g->cfg.indirect_checks < 16 ? g->cfg.indirect_checks : 16;
    struct gmsg m;

    g->probe.indirect_sent = true;
    if (t == NULL)
        return;
    k = gossip_random_members(g, k, gossip_pick_relay, t->id, relays);
    memset(&m, 0, sizeof(m));
    m.type = GMSG_IPING;
    m.seq = g->probe.seq;
    snprintf(m.id, sizeof(m.id), "%s", t->id);
    m.addr = t->addr;
    m.nack = true;
    for (size_t i = 0; i < k; i++)
        gossip_send_msgs(g, &relays[i]->addr, &m, 1);
    g->probe.nacks_expected = (uint32_t)k;
    {
        struct gmsg tm[2];
        size_t tn = 1;
        memset(tm, 0, sizeof(tm));
        tm[0].type = GMSG_PING;
        tm[0].seq = g->probe.seq;
        snprintf(tm[0].id, sizeof(tm[0].id), "%s", t->id);
        snprintf(tm[0].from, sizeof(tm[0].from), "%s", g->self->id);
        if (t->state == GOSSIP_SUSPECT) {
            /* the buddy suspicion rides on this probe too */
            tm[1].type = GMSG_SUSPECT;
            snprintf(tm[1].id, sizeof(tm[1].id), "%s", t->id);
            tm[1].incarnation = t->incarnation;
            snprintf(tm[1].from, sizeof(tm[1].from), "%s", g->self->id);
            tn = 2;
        }
        gossip_stream_msgs(g, &t->addr, tm, tn);
    }
    g->stats.indirect_probes += k;
}

static void gossip_probe_conclude(struct gossip *g)
{
    struct gmember *t;

    g->probe.active = false;
    if (g->probe.acked) {
        gossip_awareness(g, -1);
        return;
    }
    g->stats.probes_failed++;
    if (g->probe.nacks_expected > 0)
        gossip_awareness(g, (int)(g->probe.nacks_expected - g->probe.nacks));
    else
        gossip_awareness(g, 1);
    t = gossip_find(g, g->probe.target);
    if (t != NULL && gossip_is_live(t->state) && t->incarnation == g->probe.target_inc) {
        struct gmsg sm;
        gossip_on_suspect(g, t->id, t->incarnation, g->self->id);
        /* Buddy system, at once and over TCP too: tell the suspect directly instead of
         * waiting for gossip or our next probe of it, through the path most likely to get
         * there when datagrams are being lost. A live member refutes (or, if it already
         * refuted, corrects us) within a round trip. */
        memset(&sm, 0, sizeof(sm));
        sm.type = GMSG_SUSPECT;
        snprintf(sm.id, sizeof(sm.id), "%s", t->id);
        sm.incarnation = t->incarnation;
        snprintf(sm.from, sizeof(sm.from), "%s", g->self->id);
        gossip_send_msgs(g, &t->addr, &sm, 1);
        gossip_stream_msg(g, &t->addr, &sm);
    }
}

/* ---- receiving --------------------------------------------------------------------------- */

static void gossip_reply(struct gossip *g, const struct gossip_addr *to, uint8_t type, uint32_t seq)
{
    struct gmsg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.seq = seq;
    gossip_send_msgs(g, to, &m, 1);
}

static void gossip_on_iping(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m)
{
    struct grelay *r = NULL;
    struct gmsg ping;

    for (size_t i = 0; i < GOSSIP_RELAYS_MAX; i++) {
        if (!g->relays[i].used) {
            r = &g->relays[i];
            break;
        }
    }
    if (r == NULL) {
        gossip_drop(g, GOSSIP_DROP_TABLE_FULL);
        return;
    }
    r->used = true;
    r->local_seq = ++g->seq;
    r->orig_seq = m->seq;
    r->requester = *from;
    r->nack = m->nack;
    r->deadline_ms = gossip_now(g) + g->cfg.probe_timeout_ms;
    memset(&ping, 0, sizeof(ping));
    ping.type = GMSG_PING;
    ping.seq = r->local_seq;
    memcpy(ping.id, m->id, sizeof(ping.id));
    snprintf(ping.from, sizeof(ping.from), "%s", g->self->id);
    gossip_send_msgs(g, &m->addr, &ping, 1);
}

static void gossip_on_ack(struct gossip *g, uint32_t seq)
{
    if (g->probe.active && seq == g->probe.seq) {
        g->probe.acked = true;
        return;
    }
    for (size_t i = 0; i < GOSSIP_RELAYS_MAX; i++) {
        struct grelay *r = &g->relays[i];
        if (r->used && r->local_seq == seq) {
            r->used = false;
            gossip_reply(g, &r->requester, GMSG_ACK, r->orig_seq);
            return;
        }
    }
}

/* A member that pings us without being in our table missed our gossip about it (or we
 * missed its): one push-pull with it repairs both views at once. Rate limited to one per
 * probe period so a flood of unknown pingers costs little. */
static void gossip_on_unknown_sender(struct gossip *g, const struct gossip_addr *from,
                                     const char *id)
{
    uint64_t now = gossip_now(g);

    if (g->leaving || gossip_find(g, id) != NULL || now < g->unknown_pp_next)
        return;
    g->unknown_pp_next = now + g->cfg.probe_interval_ms;
    g->stats.pushpulls++;
    gossip_pushpull_start(g, from, false);
}

/* A probe over TCP: the fallback when neither the direct nor the indirect UDP probes got an
 * answer, so a member behind a lossy UDP path is not suspected while TCP still reaches it. */
static void gossip_stream_msgs(struct gossip *g, const struct gossip_addr *to,
                               const struct gmsg *msgs, size_t n)
{
    uint8_t body[1024];
    struct gwbuf w;

    gwbuf_init_fixed(&w, body, sizeof(body));
    for (size_t i = 0; i < n; i++)
        if (gproto_encode(&w, &msgs[i]) != 0)
            return;
    gossip_send_stream(g, to, body, w.len);
}

static void gossip_stream_msg(struct gossip *g, const struct gossip_addr *to, const struct gmsg *m)
{
    gossip_stream_msgs(g, to, m, 1);
}

void gossip_stream_datagram_msg(struct gossip *g, const struct gossip_addr *from,
                                const uint8_t *body, size_t len)
{
    struct gmsg m, ack;
    enum gossip_drop_reason reason;
    size_t off = 0;

    for (size_t n = 0; off < len; n++) {
        if (n == GOSSIP_MSGS_PER_PACKET) {
            gossip_drop(g, GOSSIP_DROP_OVERSIZE);
            return;
        }
        if (gproto_decode(body, len, &off, &m, &reason) != 0) {
            gossip_drop(g, reason);
            return;
        }
        if (m.type == GMSG_PING) {
            if (strcmp(m.id, g->self->id) != 0) {
                gossip_drop(g, GOSSIP_DROP_WRONG_TARGET);
                return;
            }
            memset(&ack, 0, sizeof(ack));
            ack.type = GMSG_ACK;
            ack.seq = m.seq;
            gossip_stream_msg(g, from, &ack);
        } else if (m.type == GMSG_ACK || m.type == GMSG_SUSPECT || m.type == GMSG_ALIVE) {
            gossip_dispatch(g, from, &m);
        } else {
            gossip_drop(g, GOSSIP_DROP_UNKNOWN_TYPE);
        }
    }
}

static void gossip_dispatch(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m)
{
    switch (m->type) {
    case GMSG_PING:
        if (strcmp(m->id, g->self->id) != 0) {
            gossip_drop(g, GOSSIP_DROP_WRONG_TARGET);
            return;
        }
        gossip_reply(g, from, GMSG_ACK, m->seq);
        gossip_on_unknown_sender(g, from, m->from);
        break;
    case GMSG_IPING:
        gossip_on_iping(g, from, m);
        break;
    case GMSG_ACK:
        gossip_on_ack(g, m->seq);
        break;
    case GMSG_NACK:
        if (g->probe.active && m->seq == g->probe.seq)
            g->probe.nacks++;
        break;
    case GMSG_ALIVE:
        gossip_on_alive(g, m, true);
        break;
    case GMSG_SUSPECT:
        gossip_on_suspect(g, m->id, m->incarnation, m->from);
        break;
    case GMSG_DEAD:
        gossip_on_dead(g, m->id, m->incarnation, m->from);
        break;
    case GMSG_ITEM:
        gossip_on_item(g, m->key, m->version, m->bytes, m->len, true);
        break;
    case GMSG_HEALTH:
        ghealth_on_msg(g, m);
        break;
    default:
        gossip_drop(g, GOSSIP_DROP_UNKNOWN_TYPE);
        break;
    }
}

void gossip_receive(struct gossip *g, const struct gossip_addr *from, const uint8_t *buf,
                    size_t len, bool stream)
{
    uint8_t dgram[GOSSIP_UDP_MAX];
    uint8_t *copy = dgram, *body = NULL;
    enum gossip_drop_reason reason;
    size_t off = 0;
    int blen;

    if (stream) {
        g->stats.streams_received++;
        g->stats.stream_bytes_received += len;
    } else {
        g->stats.packets_received++;
        g->stats.bytes_received += len;
    }
    if (len > (stream ? GOSSIP_STREAM_MAX : GOSSIP_UDP_MAX)) {
        gossip_drop(g, GOSSIP_DROP_OVERSIZE);
        return;
    }
    if (stream) {
        copy = malloc(len ? len : 1);
        if (copy == NULL)
            return;
    }
    memcpy(copy, buf, len);
    blen = genv_open(g->cipher, &g->cfg.keyring, g->cfg.label, copy, len, &body, &reason);
    if (blen < 0) {
        gossip_drop(g, reason);
        goto done;
    }
    if (stream) {
        gossip_pushpull_receive(g, from, body, (size_t)blen);
        goto done;
    }
    for (size_t n = 0; off < (size_t)blen; n++) {
        struct gmsg m;
        if (n == GOSSIP_MSGS_PER_PACKET) {
            gossip_drop(g, GOSSIP_DROP_OVERSIZE);
            break;
        }
        if (gproto_decode(body, (size_t)blen, &off, &m, &reason) != 0) {
            /* the rest of the packet cannot be trusted to be framed right */
            gossip_drop(g, reason);
            break;
        }
        gossip_dispatch(g, from, &m);
    }
done:
    if (copy != dgram)
        free(copy);
}

/* ---- timers ------------------------------------------------------------------------------ */

static void gossip_round(struct gossip *g)
{
    struct gmember *targets[16];
    size_t k = g->cfg.gossip_nodes < 16 ? g->cfg.gossip_nodes : 16;
    uint32_t limit = gossip_retransmit_limit(g);

    if (g->q_members.count == 0 && g->q_data.count == 0 && g->q_big.count == 0)
        return;
    k = gossip_random_members(g, k, gossip_pick_gossip, NULL, targets);
    for (size_t i = 0; i < k; i++) {
        struct gq_entry *big;
        gossip_send_msgs(g, &targets[i]->addr, NULL, 0);
        gq_begin(&g->q_big);
        big = gq_pick(&g->q_big, limit, GOSSIP_STREAM_MAX);
        if (big != NULL) {
            gossip_send_big_item(g, &targets[i]->addr, big->msg, big->len);
            g->stats.items_sent++;
            gq_sent(&g->q_big, big, limit);
        }
    }
}

static void gossip_reconnect(struct gossip *g)
{
    if (g->nlive <= 1 && g->nseeds > 0) {
        for (size_t i = 0; i < g->nseeds; i++)
            gossip_pushpull_start(g, &g->seeds[i], true);
        return;
    }
    for (size_t tries = 0; tries < 4 && g->ngone > 0; tries++) {
        struct gmember *m = g->gone[grand_below(&g->rng, (uint32_t)g->ngone)];
        if (m->state == GOSSIP_DEAD) {
            gossip_pushpull_start(g, &m->addr, false);
            return;
        }
    }
}

static void gossip_housekeeping(struct gossip *g, uint64_t now)
{
    for (size_t i = 0; i < g->ngone;) {
        struct gmember *m = g->gone[i];
        uint64_t ttl = m->state == GOSSIP_LEFT ? g->cfg.left_reap_ms : g->cfg.dead_reap_ms;
        if (now - m->state_since_ms >= ttl) {
            gq_remove(&g->q_members, m->id);
            gossip_member_reap(g, m);
            continue; /* the last entry moved into slot i */
        }
        i++;
    }
    ghealth_expire(g, now);
}

static uint64_t gossip_pushpull_period(const struct gossip *g)
{
    uint64_t p = g->cfg.pushpull_interval_ms;

    /* like memberlist: big clusters exchange full state less often per member */
    if (g->nlive > 32)
        p *= (uint64_t)ceil(log2((double)g->nlive) - log2(32.0)) + 1;
    return p;
}

static uint64_t gossip_min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

uint64_t gossip_tick(struct gossip *g)
{
    uint64_t now = gossip_now(g);
    uint64_t next;

    if (!g->leaving) {
        if (g->probe.active && !g->probe.acked && !g->probe.indirect_sent &&
            now >= g->probe.timeout_at)
            gossip_probe_indirect(g);
        if (now >= g->probe_next) {
            if (g->probe.active)
                gossip_probe_conclude(g);
            gossip_probe_start(g, now);
            g->probe_next = now + gossip_scale(g, g->cfg.probe_interval_ms);
        }
    }
    for (size_t i = 0; i < GOSSIP_RELAYS_MAX; i++) {
        struct grelay *r = &g->relays[i];
        if (r->used && now >= r->deadline_ms) {
            r->used = false;
            if (r->nack)
                gossip_reply(g, &r->requester, GMSG_NACK, r->orig_seq);
        }
    }
    for (size_t i = 0; i < g->nsuspects;) {
        struct gmember *m = g->suspects[i];
        if (now >= m->susp->deadline_ms) {
            g->stats.deaths++;
            gossip_on_dead(g, m->id, m->incarnation, g->self->id);
            continue; /* removed from suspects[]: slot i now holds another */
        }
        i++;
    }
    if (now >= g->gossip_next) {
        g->last_round_ms = now;
        gossip_round(g);
        g->gossip_next = now + g->cfg.gossip_interval_ms;
    }
    if (now >= g->pushpull_next) {
        struct gmember *peer;
        if (!g->leaving && gossip_random_members(g, 1, gossip_pick_alive, NULL, &peer) == 1) {
            g->stats.pushpulls++;
            gossip_pushpull_start(g, &peer->addr, false);
        }
        g->pushpull_next = now + gossip_pushpull_period(g);
    }
    if (now >= g->reconnect_next) {
        if (!g->leaving)
            gossip_reconnect(g);
        g->reconnect_next = now + g->cfg.reconnect_interval_ms;
    }
    if (now >= g->housekeeping_next) {
        gossip_housekeeping(g, now);
        g->housekeeping_next = now + 1000;
    }

    next = gossip_min(g->gossip_next, g->pushpull_next);
    next = gossip_min(next, g->reconnect_next);
    next = gossip_min(next, g->housekeeping_next);
    if (!g->leaving) {
        next = gossip_min(next, g->probe_next);
        if (g->probe.active && !g->probe.acked && !g->probe.indirect_sent)
            next = gossip_min(next, g->probe.timeout_at);
    }
    for (size_t i = 0; i < g->nsuspects; i++)
        next = gossip_min(next, g->suspects[i]->susp->deadline_ms);
    for (size_t i = 0; i < GOSSIP_RELAYS_MAX; i++)
        if (g->relays[i].used)
            next = gossip_min(next, g->relays[i].deadline_ms);
    return next;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static int gossip_check_config(const struct gossip_config *c, char *err, size_t errlen)
{
    const char *what = NULL;

    if (!gproto_id_valid(c->id))
        what = "node id must be 1-64 characters of [A-Za-z0-9._:-]";
    else if (c->advertise.family != 4 && c->advertise.family != 6)
        what = "advertise address is required";
    else if (strlen(c->label) > GOSSIP_LABEL_MAX)
        what = "cluster label longer than 64 characters";
    else if (c->probe_interval_ms == 0 || c->probe_timeout_ms == 0 ||
             c->probe_timeout_ms >= c->probe_interval_ms)
        what = "probe timeout must be positive and below the probe interval";
    else if (c->gossip_interval_ms == 0 || c->gossip_nodes == 0)
        what = "gossip interval and gossip nodes must be positive";
    else if (c->suspicion_mult == 0 || c->suspicion_max_mult == 0 || c->retransmit_mult == 0 ||
             c->awareness_max == 0)
        what = "suspicion, retransmit and awareness multipliers must be positive";
    else if (c->pushpull_interval_ms == 0 || c->reconnect_interval_ms == 0)
        what = "push-pull and reconnect intervals must be positive";
    else if (c->health_probers == 0 || c->health_ttl_ms == 0)
        what = "health probers and TTL must be positive";
    if (what == NULL)
        return 0;
    if (err != NULL)
        snprintf(err, errlen, "gossip config: %s", what);
    return GOSSIP_EINVAL;
}

struct gossip *gossip_new(const struct gossip_config *cfg, const struct gossip_callbacks *cb,
                          const struct gossip_transport *tr, const struct gossip_clock *clock,
                          char *err, size_t errlen)
{
    struct gossip *g = NULL;
    uint64_t now;

    if (gossip_check_config(cfg, err, errlen) != 0)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        goto nomem;
    g->cfg = *cfg;
    if (cb != NULL)
        g->cb = *cb;
    g->tr = *tr;
    g->clock = *clock;
    g->rng = cfg->seed ^ ghash64(cfg->id, strlen(cfg->id), 0x5157);
    g->cipher = EVP_CIPHER_CTX_new();
    g->health = ghealth_new();
    g->index_size = 64;
    g->index = calloc(g->index_size, sizeof(*g->index));
    if (g->cipher == NULL || g->health == NULL || g->index == NULL ||
        gq_init(&g->q_members, cfg->queue_max) != 0 || gq_init(&g->q_data, cfg->queue_max) != 0 ||
        gq_init(&g->q_big, 256) != 0)
        goto nomem;
    g->udp_body_max = GOSSIP_UDP_MAX - genv_overhead(&cfg->keyring, cfg->label);
    g->self = gossip_member_add(g, cfg->id, &cfg->advertise, cfg->incarnation);
    if (g->self == NULL)
        goto nomem;
    g->self->self = true;
    gossip_member_set_meta(g->self, &cfg->meta);
    now = gossip_now(g);
    /* stagger the first period so members started together do not probe in lockstep */
    g->probe_next = now + grand_below(&g->rng, cfg->probe_interval_ms);
    g->gossip_next = now + cfg->gossip_interval_ms;
    g->pushpull_next =
        now + cfg->pushpull_interval_ms + grand_below(&g->rng, cfg->pushpull_interval_ms / 2 + 1);
    g->reconnect_next = now + cfg->reconnect_interval_ms;
    g->housekeeping_next = now + 1000;
    if (cfg->keyring.count == 0)
        gossip_logf(g, 1,
                    "gossip runs in plain mode: no cluster key, packets are neither "
                    "encrypted nor authenticated");
    return g;
nomem:
    if (err != NULL)
        snprintf(err, errlen, "gossip: out of memory");
    gossip_free(g);
    return NULL;
}

void gossip_free(struct gossip *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->nmembers; i++)
        gossip_member_free(g->members[i]);
    free(g->members);
    free(g->index);
    free(g->suspects);
    free(g->gone);
    free(g->probe_order);
    gq_destroy(&g->q_members);
    gq_destroy(&g->q_data);
    gq_destroy(&g->q_big);
    ghealth_free(g->health);
    EVP_CIPHER_CTX_free(g->cipher);
    OPENSSL_cleanse(&g->cfg.keyring, sizeof(g->cfg.keyring));
    free(g);
}

int gossip_join(struct gossip *g, const struct gossip_addr *seeds, size_t count)
{
    struct gmsg alive;

    if (count == 0 || count > GOSSIP_SEEDS_MAX)
        return GOSSIP_EINVAL;
    memcpy(g->seeds, seeds, count * sizeof(*seeds));
    g->nseeds = count;
    gossip_alive_msg(g->self, &alive);
    gossip_queue_member(g, &alive);
    for (size_t i = 0; i < count; i++)
        gossip_pushpull_start(g, &seeds[i], true);
    return 0;
}

void gossip_leave(struct gossip *g)
{
    struct gmember *targets[16];
    struct gmsg m;
    size_t k;

    if (g->leaving)
        return;
    g->leaving = true;
    g->probe.active = false;
    g->self->state = GOSSIP_LEFT;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_DEAD;
    snprintf(m.id, sizeof(m.id), "%s", g->self->id);
    m.incarnation = g->self->incarnation;
    snprintf(m.from, sizeof(m.from), "%s", g->self->id);
    gossip_queue_member(g, &m);
    k = gossip_random_members(g, 2 * g->cfg.gossip_nodes < 16 ? 2 * g->cfg.gossip_nodes : 16,
                              gossip_pick_alive, NULL, targets);
    for (size_t i = 0; i < k; i++)
        gossip_send_msgs(g, &targets[i]->addr, &m, 1);
    gossip_logf(g, 2, "leaving the cluster");
}

/* ---- views ------------------------------------------------------------------------------- */

static int gossip_member_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gossip_member *)a)->id, ((const struct gossip_member *)b)->id);
}

size_t gossip_members(const struct gossip *g, struct gossip_member *out, size_t cap)
{
    size_t n = g->nmembers < cap ? g->nmembers : cap;

    if (n < g->nmembers) {
        /* not enough room to sort everything: copy the smallest ids by sorting a full copy */
        struct gossip_member *all = malloc(g->nmembers * sizeof(*all));
        if (all == NULL)
            return g->nmembers;
        for (size_t i = 0; i < g->nmembers; i++)
            gossip_member_fill(g->members[i], &all[i]);
        qsort(all, g->nmembers, sizeof(*all), gossip_member_cmp);
        memcpy(out, all, n * sizeof(*all));
        free(all);
        return g->nmembers;
    }
    for (size_t i = 0; i < n; i++)
        gossip_member_fill(g->members[i], &out[i]);
    qsort(out, n, sizeof(*out), gossip_member_cmp);
    return g->nmembers;
}

int gossip_member_get(const struct gossip *g, const char *id, struct gossip_member *out)
{
    const struct gmember *m = gossip_find(g, id);

    if (m == NULL)
        return GOSSIP_ENOTFOUND;
    gossip_member_fill(m, out);
    return 0;
}

size_t gossip_live_count(const struct gossip *g)
{
    return g->nlive;
}

void gossip_stats_get(const struct gossip *g, struct gossip_stats *out)
{
    *out = g->stats;
    out->drops[GOSSIP_DROP_QUEUE_FULL] +=
        g->q_members.evicted + g->q_data.evicted + g->q_big.evicted;
    out->awareness = g->awareness;
    out->members_alive = out->members_suspect = out->members_dead = out->members_left = 0;
    for (size_t i = 0; i < g->nmembers; i++) {
        switch (g->members[i]->state) {
        case GOSSIP_ALIVE:
            out->members_alive++;
            break;
        case GOSSIP_SUSPECT:
            out->members_suspect++;
            break;
        case GOSSIP_DEAD:
            out->members_dead++;
            break;
        case GOSSIP_LEFT:
            out->members_left++;
            break;
        }
    }
    out->queue_membership = (uint32_t)g->q_members.count;
    out->queue_data = (uint32_t)(g->q_data.count + g->q_big.count);
    out->incarnation = g->self->incarnation;
}

int gossip_debug_add_member(struct gossip *g, const char *id, const struct gossip_addr *addr,
                            uint64_t incarnation)
{
    if (gossip_find(g, id) != NULL || !gproto_id_valid(id))
        return GOSSIP_EINVAL;
    return gossip_member_add(g, id, addr, incarnation) ? 0 : GOSSIP_ENOMEM;
}
