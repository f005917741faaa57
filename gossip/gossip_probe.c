/*
 * gossip_probe.c - SWIM failure detection: the probe cycle.
 *
 * Shuffled round-robin choice of the probe target (a permutation of the table drawn each
 * round), direct ping, indirect pings through k relays (and relaying them for others, with
 * nacks), the second look with the TCP probe fallback, random member choice, and Lifeguard's
 * local health score that scales our probe period and timeout. Driven by gossip_tick and
 * gossip_receive in gossip.c; see gossip.c for the design.
 */
#include "gossip/gossip_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t gossip_scale(const struct gossip *g, uint64_t ms)
{
    return ms * (g->awareness + 1);
}

void gossip_awareness(struct gossip *g, int delta)
{
    int64_t a = (int64_t)g->awareness + delta;

    if (a < 0)
        a = 0;
    if (a > (int64_t)g->cfg.awareness_max - 1)
        a = g->cfg.awareness_max - 1;
    g->awareness = (uint32_t)a;
}

/* ---- choosing members -------------------------------------------------------------------- */

/* A member drawn uniformly from the table, self included (NULL: none). A dense table (the
 * daemon's: id handles are numbered densely, and the simulator's once converged) draws places
 * until one holds a member; a sparse one (a simulated member that has just joined a big fleet)
 * counts its way there through the chunks' member counts. */
static struct gmember *gossip_random_member(struct gossip *g)
{
    size_t places = g->nslots * GMEMBER_CHUNK;
    uint32_t r;
    size_t c;

    if (g->nmembers == 0)
        return NULL;
    if (g->nmembers * 4 >= places) {
        for (int i = 0; i < 8; i++) {
            struct gmember *m = gossip_slot(g, grand_below(&g->rng, (uint32_t)places));
            if (m != NULL)
                return m;
        }
    }
    r = grand_below(&g->rng, (uint32_t)g->nmembers);
    for (c = 0; c < g->nslots && r >= g->slot_used[c]; c++)
        r -= g->slot_used[c];
    if (c == g->nslots)
        return NULL;
    for (size_t j = 0; j < GMEMBER_CHUNK; j++)
        if (g->slots[c][j].ver != 0 && r-- == 0)
            return &g->slots[c][j];
    return NULL;
}

/* Up to k distinct random members matching fn; tries a bounded number of times so a mostly
 * dead table cannot stall us. */
size_t gossip_random_members(struct gossip *g, size_t k, gossip_pick_fn fn, const void *arg,
                             struct gmember **out)
{
    size_t found = 0, tries = 0, limit = 3 * g->nmembers + 8;

    while (found < k && tries++ < limit && g->nmembers > 0) {
        struct gmember *m = gossip_random_member(g);
        bool dup = false;
        if (m == NULL || m == g->self || !fn(g, m, arg))
            continue;
        for (size_t i = 0; i < found; i++)
            dup = dup || out[i] == m;
        if (!dup)
            out[found++] = m;
    }
    return found;
}

bool gossip_pick_gossip(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)arg;
    if (gossip_is_live(m->state))
        return true;
    /* keep telling the recently dead or departed: if they are in fact alive (a forged leave
     * notice, a false death) they learn it and refute */
    return (m->state == GOSSIP_DEAD || m->state == GOSSIP_LEFT) &&
           gossip_now(g) - gm_since(g, m) < g->cfg.gossip_to_dead_ms;
}

static bool gossip_pick_relay(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)g;
    return m->state == GOSSIP_ALIVE && strcmp(gm_id(m), (const char *)arg) != 0;
}

bool gossip_pick_alive(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)g;
    (void)arg;
    return m->state == GOSSIP_ALIVE;
}

/* ---- probing ----------------------------------------------------------------------------- */

/* The probe order is a shuffled round-robin over the table's places: each round walks a
 * fresh pseudo-random permutation of them (a 4-round Feistel network on 2^bits places, keyed
 * from our PRNG, walking on past positions beyond the table) and probes the members it finds.
 * Every member is probed once a round, as with a shuffled list, but nothing is stored per
 * member: a list of every member cost 4 bytes an entry, n squared of them in the simulator. */
static uint32_t gossip_order_half(uint64_t key, uint32_t x, uint32_t mask)
{
    uint64_t z = key + x;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)(z ^ (z >> 31)) & mask;
}

/* The place at position pos of this round (pos below range), or its inverse. */
static uint32_t gossip_order_place(const struct gossip *g, uint32_t x, bool inverse)
{
    uint32_t h = g->order.bits / 2, mask = (1u << h) - 1;

    do {
        uint32_t l = x >> h, r = x & mask;
        for (int i = 0; i < 4; i++) {
            uint32_t t;
            if (!inverse) {
                t = l ^ gossip_order_half(g->order.key[i], r, mask);
                l = r;
                r = t;
            } else {
                t = r ^ gossip_order_half(g->order.key[3 - i], l, mask);
                r = l;
                l = t;
            }
        }
        x = (l << h) | r;
    } while (x >= g->order.range); /* cycle walking: a permutation of [0, range) */
    return x;
}

static void gossip_order_start(struct gossip *g)
{
    g->order.range = (uint32_t)(g->nslots * GMEMBER_CHUNK);
    g->order.bits = 2;
    while ((1u << g->order.bits) < g->order.range)
        g->order.bits += 2;
    for (int i = 0; i < 4; i++)
        g->order.key[i] = grand_next(&g->rng);
    g->order.pos = 0;
    g->order.nlate = 0;
}

/* A newcomer goes to a random place among the members not yet probed this round, so it is
 * probed within one round without favouring it: where the permutation puts it, unless that
 * place is already behind us (or past the places the round covers), in which case it waits in
 * the late list, drawn from at random among what is left. When many come at once (a cold
 * start, a partition healing) the round ends instead and the next one takes everyone: the
 * late list stays small (it would otherwise hold a good part of the fleet for a whole round,
 * n periods, in every member), at the price of a few members probed twice in a short while. */
#define GOSSIP_ORDER_LATE_MAX 64
void gossip_order_add(struct gossip *g, uint32_t sid)
{
    if (g->order.range == 0 ||
        (sid < g->order.range && gossip_order_place(g, sid, true) >= g->order.pos))
        return;
    if (g->order.nlate >= GOSSIP_ORDER_LATE_MAX) {
        g->order.pos = g->order.range;
        g->order.nlate = 0;
        return;
    }
    if (gossip_sid_push(&g->order.late, &g->order.nlate, &g->order.late_cap, sid) != 0)
        return; /* out of memory: it is probed next round */
}

struct gmember *gossip_probe_target(struct gossip *g)
{
    bool fresh = false;

    /* A suspicion we only heard about is checked first-hand at the next period: our probe
     * carries it to the suspect (buddy system), which refutes if alive; if the probe fails,
     * that is an independent confirmation that shortens the timeout (Lifeguard). Either
     * way no member sits on a stale suspicion until its timer runs out. */
    for (size_t i = 0; i < g->nsuspects; i++) {
        if (!g->susps[i]->probed) {
            g->susps[i]->probed = true;
            return g->suspects[i];
        }
    }
    for (;;) {
        struct gmember *m;
        uint32_t sid, left;
        if (g->order.pos >= g->order.range && g->order.nlate == 0) {
            if (fresh || g->nmembers <= 1)
                return NULL; /* a whole round without a live member to probe */
            gossip_order_start(g);
            fresh = true;
        }
        /* members left in the permutation, about */
        left = (uint32_t)((uint64_t)(g->order.range - g->order.pos) * g->nmembers /
                          (g->order.range ? g->order.range : 1));
        if (g->order.nlate > 0 &&
            (g->order.pos >= g->order.range ||
             grand_below(&g->rng, (uint32_t)g->order.nlate + left) < g->order.nlate)) {
            size_t j = grand_below(&g->rng, (uint32_t)g->order.nlate);
            sid = g->order.late[j];
            g->order.late[j] = g->order.late[--g->order.nlate];
        } else {
            sid = gossip_order_place(g, g->order.pos++, false);
        }
        /* NULL: reaped since (its sid may even be another member's now: probing that one
         * early is harmless) */
        m = gossip_slot(g, sid);
        if (m != NULL && m != g->self && gossip_is_live(m->state))
            return m;
    }
}

/* The direct probe of t: a ping, and while t is suspect the suspicion with it (buddy system:
 * t hears it first-hand and can refute at once). Returns how many messages it filled. */
static size_t gossip_probe_msgs(const struct gossip *g, const struct gmember *t, struct gmsg out[2])
{
    size_t n = 1;

    memset(out, 0, 2 * sizeof(*out));
    out[0].type = GMSG_PING;
    out[0].seq = g->probe.seq;
    snprintf(out[0].id, sizeof(out[0].id), "%s", gm_id(t));
    snprintf(out[0].from, sizeof(out[0].from), "%s", gm_id(g->self));
    if (t->state == GOSSIP_SUSPECT) {
        out[1].type = GMSG_SUSPECT;
        snprintf(out[1].id, sizeof(out[1].id), "%s", gm_id(t));
        out[1].incarnation = gm_inc(t);
        snprintf(out[1].from, sizeof(out[1].from), "%s", gm_id(g->self));
        n = 2;
    }
    return n;
}

void gossip_probe_start(struct gossip *g, uint64_t now)
{
    struct gmember *t = gossip_probe_target(g);
    struct gmsg msgs[2];
    size_t n;
    uint64_t timeout = gossip_scale(g, g->cfg.probe_timeout_ms);

    g->probe.active = false;
    if (t == NULL)
        return;
    memset(&g->probe, 0, sizeof(g->probe));
    g->probe.active = true;
    g->probe.seq = ++g->seq;
    snprintf(g->probe.target, sizeof(g->probe.target), "%s", gm_id(t));
    g->probe.target_inc = gm_inc(t);
    g->probe.timeout_at = now + timeout;
    g->probe.retry_at = now + timeout / 2;
    /* the second look: half-way between the indirect probes and the end of the period */
    g->probe.second_at = now + (timeout + gossip_scale(g, g->cfg.probe_interval_ms)) / 2;
    n = gossip_probe_msgs(g, t, msgs);
    g->stats.probes++;
    gossip_send_msgs(g, gm_addr(t), msgs, n);
}

/* Asks up to indirect_checks random alive members (not t) to ping t for the probe in flight;
 * with `nack` they answer "nack" when t stays silent. Returns how many were asked. */
static uint32_t gossip_probe_relay(struct gossip *g, const struct gmember *t, bool nack)
{
    struct gmember *relays[16];
    size_t k = g->cfg.indirect_checks < 16 ? g->cfg.indirect_checks : 16;
    struct gmsg m;

    k = gossip_random_members(g, k, gossip_pick_relay, gm_id(t), relays);
    memset(&m, 0, sizeof(m));
    m.type = GMSG_IPING;
    m.seq = g->probe.seq;
    snprintf(m.id, sizeof(m.id), "%s", gm_id(t));
    m.addr = *gm_addr(t);
    m.nack = nack;
    for (size_t i = 0; i < k; i++)
        gossip_send_msgs(g, gm_addr(relays[i]), &m, 1);
    g->stats.indirect_probes += k;
    return (uint32_t)k;
}

/* The probe in flight is still silent: indirect probes through random members and the direct
 * ping once more. At the probe timeout (second false) the relays answer nacks; at the second
 * look (second true, see gossip_probe_second) the ping also goes over TCP. */
static void gossip_probe_again(struct gossip *g, bool second)
{
    struct gmember *t = gossip_find(g, g->probe.target);
    struct gmsg tm[2];
    size_t tn;
    uint32_t k;

    if (second)
        g->probe.second_sent = true;
    else
        g->probe.indirect_sent = true;
    if (t == NULL)
        return;
    k = gossip_probe_relay(g, t, !second);
    if (!second)
        g->probe.nacks_expected = k;
    tn = gossip_probe_msgs(g, t, tm);
    gossip_send_msgs(g, gm_addr(t), tm, tn);
    if (second)
        gossip_stream_msgs(g, gm_addr(t), tm, tn);
}

/* The direct ack is late, half-way to the probe timeout: the ping once more, alone. Under
 * random loss most missed acks are one lost datagram, which a second ping (one datagram and
 * its ack) repairs; the indirect probes at the timeout (a datagram to each of 3 relays, their
 * pings, the target's acks and the relays' acks or nacks: about twelve) then go out on about
 * one probe in twenty-five at 10% loss instead of one in five. The verdict still comes at
 * the end of the period, so a dead member is seen no later. */
void gossip_probe_retry(struct gossip *g)
{
    struct gmember *t = gossip_find(g, g->probe.target);
    struct gmsg tm[2];
    size_t tn;

    g->probe.retry_sent = true;
    if (t == NULL)
        return;
    tn = gossip_probe_msgs(g, t, tm);
    gossip_send_msgs(g, gm_addr(t), tm, tn);
}

/* The direct ack is late: indirect probes, and the direct ping again (a lost ping or ack is
 * the commonest reason for a missed deadline, and a second try costs one datagram on the
 * probes that need it). */
void gossip_probe_indirect(struct gossip *g)
{
    gossip_probe_again(g, false);
}

/* The second look (see gossip.c): nothing came back from the direct ping, its retry or the
 * indirect probes by half-way through what is left of the period. Under random loss that is
 * mostly bad luck on independent paths, so before the period ends in a suspicion, try again:
 * the direct ping once more, indirect probes through members drawn afresh (no nacks: they
 * would come after the period), and the ping over TCP, for a member whose datagrams do not
 * get through at all. It costs only on the probes that are about to fail, and it does not
 * delay the verdict on a dead member. The TCP probe went out with the indirect probes before:
 * under 10% loss that was a connection for one probe in five, 355 B/s of TCP per member. */
void gossip_probe_second(struct gossip *g)
{
    gossip_probe_again(g, true);
}

/* We just heard that another member suspects `m`: probe it now rather than at our next
 * period, so that if it is dead our failed probe (an independent confirmation) comes one
 * period after the accuser's, and if it is alive our ping carries the suspicion to it and its
 * ack brings the refutation back. Only when our own probe is done (acked, or none): an
 * unanswered probe keeps its full period. */
void gossip_probe_soon(struct gossip *g, struct gmember *m)
{
    uint64_t now = gossip_now(g);

    if (g->leaving || gm_susp(g, m) == NULL || gm_susp(g, m)->probed || now >= g->probe_next)
        return;
    if (g->probe.active && !g->probe.acked)
        return;
    g->probe_next = now;
    if (g->clock.wake != NULL)
        g->clock.wake(g->clock.ctx, now);
}

void gossip_probe_conclude(struct gossip *g)
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
    if (t != NULL && gossip_is_live(t->state) && gm_inc(t) == g->probe.target_inc) {
        struct gmsg sm;
        gossip_on_suspect(g, gm_id(t), gm_inc(t), gm_id(g->self));
        t = gossip_find(g, g->probe.target); /* the write may have moved it (gossip_member_w) */
        /* Buddy system, at once and over TCP too: tell the suspect directly instead of
         * waiting for gossip or our next probe of it, through the path most likely to get
         * there when datagrams are being lost. A live member refutes (or, if it already
         * refuted, corrects us) within a round trip. */
        memset(&sm, 0, sizeof(sm));
        sm.type = GMSG_SUSPECT;
        snprintf(sm.id, sizeof(sm.id), "%s", gm_id(t));
        sm.incarnation = gm_inc(t);
        snprintf(sm.from, sizeof(sm.from), "%s", gm_id(g->self));
        gossip_send_msgs(g, gm_addr(t), &sm, 1);
        gossip_stream_msg(g, gm_addr(t), &sm);
    }
}

void gossip_reply(struct gossip *g, const struct gossip_addr *to, uint8_t type, uint32_t seq)
{
    struct gmsg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.seq = seq;
    gossip_send_msgs(g, to, &m, 1);
}

void gossip_on_iping(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m)
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
    /* Lifeguard's nack tells the requester that we, its relay, are reachable: it must arrive
     * before the requester's period ends. The requester asked at its probe timeout and
     * concludes one probe timeout later (at the defaults), so a nack at our own deadline
     * always came too late and every failed probe counted as if no relay had answered. We
     * still pass on an ack up to the deadline. */
    r->nack_ms = gossip_now(g) + g->cfg.probe_timeout_ms / 2;
    r->deadline_ms = gossip_now(g) + g->cfg.probe_timeout_ms;
    memset(&ping, 0, sizeof(ping));
    ping.type = GMSG_PING;
    ping.seq = r->local_seq;
    memcpy(ping.id, m->id, sizeof(ping.id));
    snprintf(ping.from, sizeof(ping.from), "%s", gm_id(g->self));
    gossip_send_msgs(g, &m->addr, &ping, 1);
}

void gossip_on_ack(struct gossip *g, uint32_t seq)
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

/* A probe over TCP: the fallback when neither the direct nor the indirect UDP probes got an
 * answer, so a member behind a lossy UDP path is not suspected while TCP still reaches it. */
void gossip_stream_msgs(struct gossip *g, const struct gossip_addr *to, const struct gmsg *msgs,
                        size_t n)
{
    uint8_t body[1024];
    struct gwbuf w;

    gwbuf_init_fixed(&w, body, sizeof(body));
    for (size_t i = 0; i < n; i++)
        if (gproto_encode(&w, &msgs[i]) != 0)
            return;
    gossip_send_stream(g, to, body, w.len);
}

void gossip_stream_msg(struct gossip *g, const struct gossip_addr *to, const struct gmsg *m)
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
            if (strcmp(m.id, gm_id(g->self)) != 0) {
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
