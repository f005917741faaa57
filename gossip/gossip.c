/*
 * gossip.c - SWIM membership with the Lifeguard extensions: lifecycle, timers (gossip_tick),
 * receive dispatch, dissemination of changes and items, and the design notes for all of gossip/.
 * The member table and its state transitions are in gossip_members.c, the probe cycle in
 * gossip_probe.c.
 *
 * Design, and why:
 *
 * - Failure detection is SWIM's: every protocol period a member pings the next member of a
 *   shuffled round-robin order (each member is probed within n periods, not just on average;
 *   the order is a keyed permutation of the member table drawn afresh each round, so nothing
 *   is stored per member for it: gossip_probe.c).
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
 * - Beyond the papers, three measures keep false deaths away at 20-30% datagram loss: when
 *   direct and indirect UDP probes fail,
 *   a TCP probe (carrying the buddy suspicion) is tried before suspecting, as memberlist
 *   does (with the second look below, not with the indirect probes: under random loss the
 *   datagrams of the second look do as well, and a connection for every missed ack cost
 *   more than the rest of the probing); when we do suspect, we tell the suspect at once over UDP
 * and TCP instead of waiting for gossip; and a member hearing an already-refuted suspicion about
 * itself answers the accuser directly. A member that hears of a suspicion probes the suspect at its
 * next period, so stale suspicions are checked first-hand, and each failed check is an independent
 * Lifeguard confirmation.
 * - Detection at equal bandwidth (issue 15): a kill -9 is seen in under half of Serf's time
 *   while sending fewer bytes per member than Serf (tests/gossip/test_detection.c,
 *   tests/bench/gossip_vs_serf.sh). Where the time went with memberlist's timings: about one
 *   probe period until someone probes the dead member, one period for the probe to fail,
 *   then the suspicion timeout (4 x log10(n) periods at the least, 24 x at the most) while
 *   the confirmations trickled in as other members reached the suspect in their own
 *   round-robin. The choice, Lifeguard kept and sharpened rather than Rapid:
 *     - Rapid (Suresh et al., ATC 2018) gives each member K observers on an expander graph
 *       and changes the view only when H of K agree, through a consensus round. It buys
 *       stable, agreed views under flaky links, at the price of K probes per member per
 *       period (K = 10 in the paper: five to ten times SWIM's probe bytes) and a view-change
 *       protocol. Its useful idea for us is "several independent observers before a verdict",
 *       which Lifeguard's confirmations already express without the K-fold probe cost.
 *     - So: a member that hears a suspicion probes the suspect at once (its own probe is
 *       done; gossip_probe_soon) instead of at its next turn. A dead member then collects
 *       its independent confirmations one probe period after the first accuser, and a live
 *       one gets the suspicion in that ping and refutes in the ack. With several
 *       observers arriving that fast the minimum timeout can be short: 3 confirmations
 *       (suspicion_confirm, memberlist uses 2) bring it down to 2 x log10(n) periods; a
 *       lone accuser still waits 6 times that.
 *     - A missed direct ack is retried over UDP half-way to the probe timeout (alone) and
 *       again at the timeout, beside the indirect probes: most failed probes under loss
 *       were one lost datagram, and a retry costs a datagram only on the probes that
 *       missed. With the retry at the timeout, false suspicions at 10% loss fell 8 times at
 *       the same timings (fakenet, 3 min). The early retry (gossip_probe_retry) sends the
 *       indirect probes, about twelve datagrams, on one probe in twenty-five at 10% loss
 *       instead of one in five: 681 -> 444 B/s per member of UDP + TCP at 20 members
 *       (tests/gossip/test_detection.c), with no failed probe in 9 seeds instead of two.
 *     - A second look before suspecting (gossip_probe_second): when everything above is
 *       still silent half-way through the rest of the period (450 ms of 600), the direct
 *       ping goes once more, over UDP and TCP, and indirect probes go through members drawn
 *       afresh. Under
 *       random loss a probe fails when all of its paths lose a datagram, and each such
 *       path fails one time in five (direct) or three (indirect): one more round of
 *       independent paths makes a failed probe about a hundred times rarer, at no cost in
 *       detection time (the verdict still comes at the end of the period) and in bytes
 *       only on the probes about to fail. Rapid's several observers, within one period.
 *       A re-probe after the period instead (or suspecting only after two failed periods)
 *       would have delayed every verdict by its length.
 *     - The bytes this frees (and the compact wire) pay for probing every 600 ms instead of
 *       every second: about 295 B/s of UDP per member where Serf spends 362.
 *   What Lifeguard's local health already did is unchanged: a slow member (one that
 *   receives everything 1.2 s late, test_membership) is not declared dead.
 * - Changes are never sent on their own: they ride on pings, acks and gossip rounds from two
 *   queues (membership, health, data) taken in turn within each packet (gossip_queue.c). A new
 *   change advances the next gossip round (at most one early round per 20 ms): the same
 *   number of transmissions, sent sooner. A record the node broadcasts runs that round at
 *   once, and a change queued between ticks asks the owner for an earlier tick (the clock's
 *   wake), so first sends never wait for the regular round.
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

/* ---- configuration ----------------------------------------------------------------------- */

void gossip_config_default(struct gossip_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->probe_interval_ms = 600;
    cfg->probe_timeout_ms = 300;
    cfg->indirect_checks = 3;
    cfg->gossip_interval_ms = 200;
    cfg->gossip_nodes = 3;
    cfg->gossip_to_dead_ms = 30000;
    cfg->suspicion_mult = 2;
    cfg->suspicion_max_mult = 6;
    cfg->suspicion_confirm = 3;
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

uint64_t gossip_wall(const struct gossip *g)
{
    return g->clock.wall_ms ? g->clock.wall_ms(g->clock.ctx) : g->clock.now_ms(g->clock.ctx);
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

/* Membership news queued at most: one entry per member, but no more than a member can still
 * pass on. In a flood (a cold start of thousands) the regular rounds carry about 150 entries a
 * second in all, each sent retransmit-limit times, so 1024 entries are two minutes of sending;
 * older news is evicted (most-sent first) and push-pull brings it. 8192 entries of news cost
 * 2 MB a member and bought nothing. */
static size_t gossip_member_queue_max(const struct gossip_config *cfg)
{
    return cfg->queue_max < GOSSIP_MEMBER_QUEUE_MAX ? cfg->queue_max : GOSSIP_MEMBER_QUEUE_MAX;
}

uint32_t gossip_retransmit_limit(const struct gossip *g)
{
    double l = ceil(log10((double)g->nlive + 1.0));
    uint32_t lim = g->cfg.retransmit_mult * (uint32_t)(l < 1 ? 1 : l);

    return lim < GOSSIP_TIERS ? lim : GOSSIP_TIERS;
}

/* ---- items ------------------------------------------------------------------------------- */

static void gossip_round(struct gossip *g);

/* Runs the dissemination round now if it is due (gossip_eager may just have made it so). */
static void gossip_round_if_due(struct gossip *g)
{
    uint64_t now = gossip_now(g);

    if (now < g->gossip_next)
        return;
    g->last_round_ms = now;
    gossip_round(g);
    g->gossip_next = now + g->cfg.gossip_interval_ms;
}

void gossip_queue_data(struct gossip *g, const char *qkey, uint64_t version, const struct gmsg *m)
{
    uint8_t small[GOSSIP_UDP_MAX];
    struct gwbuf w;
    int rc;

    gwbuf_init_fixed(&w, small, g->udp_body_max);
    rc = gproto_encode(&w, m);
    if (rc == 0) {
        rc =
            gq_put(m->type == GMSG_HEALTH ? &g->q_health : &g->q_data, qkey, version, small, w.len);
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
    /* the first transmissions leave now, not at the owner's next timer: at small n the wait
     * for the next round was the whole spread time */
    gossip_round_if_due(g);
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
                            uint32_t copies, struct gq_entry **picked, size_t *npicked)
{
    struct gq_entry *e = gq_pick(q, limit, w->cap - w->len);

    if (e == NULL)
        return false;
    memcpy(w->data + w->len, e->msg, e->len);
    w->len += e->len;
    picked[(*npicked)++] = e;
    if (e->len > 1 && e->msg[1] == GMSG_ITEM)
        g->stats.items_sent += copies ? copies : 1;
    return true;
}

/* Piggy-backs queued changes into the rest of the packet, taking in turn from membership,
 * health and data. Health has a queue of its own: in the shared one, newest first, the records
 * of a fleet taking a thousand names (and every member forwarding each record it has not seen)
 * kept landing on top of a verdict's restatement, which then waited minutes behind them while
 * the copies it refreshes expired ("unknown" fleet-wide; test_health_flood). The packet goes to
 * `copies` members (a gossip round's targets): each picked entry counts that many
 * transmissions. 0: the changes ride along a probe's message (ping, ack) and are not counted:
 * the first of those otherwise took a new change's first transmission, the change then waited
 * behind every unsent one in the queue (test_spread_backlog). */
static void gossip_fill(struct gossip *g, struct gwbuf *w, size_t nmsgs, uint32_t copies)
{
    struct gqueue *qs[3] = {&g->q_members, &g->q_health, &g->q_data};
    struct gq_entry *picked[3][GOSSIP_MSGS_PER_PACKET];
    size_t n[3] = {0, 0, 0};
    uint32_t limit = gossip_retransmit_limit(g);

    for (size_t q = 0; q < 3; q++)
        gq_begin(qs[q]);
    for (bool any = true; any && nmsgs + n[0] + n[1] + n[2] + 3 <= GOSSIP_MSGS_PER_PACKET;) {
        any = false;
        for (size_t q = 0; q < 3; q++)
            any |= gossip_fill_one(g, qs[q], w, limit, copies, picked[q], &n[q]);
    }
    for (size_t q = 0; q < 3 && copies > 0; q++)
        for (size_t i = 0; i < n[q]; i++)
            gq_sent_n(qs[q], picked[q][i], limit, copies);
}

static void gossip_send_body(struct gossip *g, const struct gossip_addr *to, const uint8_t *body,
                             size_t len)
{
    uint8_t out[GOSSIP_UDP_MAX];
    int n =
        genv_seal(g->cipher, &g->wire, g->cfg.label, gossip_wall(g), body, len, out, sizeof(out));

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
    gossip_fill(g, &w, n, 0);
    if (w.len == 0)
        return;
    gossip_send_body(g, to, body, w.len);
}

void gossip_send_stream(struct gossip *g, const struct gossip_addr *to, const uint8_t *body,
                        size_t len)
{
    size_t cap = len + genv_overhead(&g->wire, g->cfg.label);
    uint8_t *out;
    int n;

    if (cap > GOSSIP_STREAM_MAX) {
        gossip_drop(g, GOSSIP_DROP_OVERSIZE);
        return;
    }
    out = malloc(cap);
    if (out == NULL)
        return;
    n = genv_seal(g->cipher, &g->wire, g->cfg.label, gossip_wall(g), body, len, out, cap);
    if (n < 0 || g->tr.ops->send_stream(g->tr.ctx, to, out, (size_t)n) != 0) {
        gossip_drop(g, GOSSIP_DROP_SEND_FAILED);
    } else {
        g->stats.streams_sent++;
        g->stats.stream_bytes_sent += (uint64_t)n;
    }
    free(out);
}

/* ---- receiving --------------------------------------------------------------------------- */

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
void gossip_dispatch(struct gossip *g, const struct gossip_addr *from, const struct gmsg *m)
{
    switch (m->type) {
    case GMSG_PING:
        if (strcmp(m->id, gm_id(g->self)) != 0) {
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

/* A member speaking another wire version (a fleet half upgraded) is refused packet by packet;
 * the operator hears of it once a minute, not once a packet. */
static void gossip_log_version(struct gossip *g, const struct gossip_addr *from, uint8_t version)
{
    uint64_t now = gossip_now(g);
    char text[64];

    if (g->version_log_next != 0 && now < g->version_log_next)
        return;
    g->version_log_next = now + 60000;
    gossip_logf(g, 1,
                "gossip: dropped a packet from %s in wire version %u; this member speaks version "
                "%u and every member of a fleet must speak the same (upgrade them all)",
                gossip_addr_format(from, text, sizeof(text)), version, GOSSIP_WIRE_VERSION);
}

/* A member's envelopes are refused because its clock is off ours by more than the window:
 * everything it says is lost until its clock is fixed, so say so (once a minute at most). */
static void gossip_warn_clock(struct gossip *g, const struct gossip_addr *from, const uint8_t *in,
                              size_t len)
{
    uint64_t now = gossip_now(g), ts = 0, wall = gossip_wall(g);
    size_t h = 3 + (size_t)in[2];
    char addr[64];

    if (g->clock_warned_ms != 0 && now - g->clock_warned_ms < 60000)
        return;
    g->clock_warned_ms = now ? now : 1;
    for (size_t i = 0; i < GOSSIP_TIME_LEN && h + i < len; i++)
        ts = (ts << 8) | in[h + i];
    gossip_addr_format(from, addr, sizeof(addr));
    gossip_logf(g, 1,
                "gossip from %s refused: its clock is %lld s %s ours (at most %d s is accepted; "
                "check NTP on both)",
                addr, (long long)((ts > wall ? ts - wall : wall - ts) / 1000),
                ts > wall ? "ahead of" : "behind", GOSSIP_REPLAY_WINDOW_MS / 1000);
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
    blen = genv_open(g->cipher, &g->wire, g->cfg.label, g->replay, gossip_wall(g), copy, len, &body,
                     &reason);
    if (blen < 0) {
        gossip_drop(g, reason);
        if (reason == GOSSIP_DROP_VERSION)
            gossip_log_version(g, from, len > 0 ? buf[0] : 0);
        if (reason == GOSSIP_DROP_CLOCK)
            gossip_warn_clock(g, from, buf, len);
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

static bool gossip_pick_live(const struct gossip *g, const struct gmember *m, const void *arg)
{
    (void)g;
    (void)arg;
    return gossip_is_live(m->state);
}

/* Recently dead or departed (gossip_pick_gossip but not live). */
static bool gossip_pick_gone(const struct gossip *g, const struct gmember *m, const void *arg)
{
    return !gossip_is_live(m->state) && gossip_pick_gossip(g, m, arg);
}

/* One packet of queued changes for the round's k live targets, each change counting k
 * transmissions at once. Filling a packet per target sent a new change to the first target
 * only: it then had one transmission, and the queue sends the least-sent first, so behind a
 * backlog of unsent changes (a thousand records after a burst) its next one waited minutes;
 * and that single copy could go to a member dead for less than gossip_to_dead_ms. A record
 * broadcast through the soak's gw5 just after gw2 died reached the others only with the next
 * push-pull, 14.6 s later (test_spread_backlog). The recently dead or departed still hear the
 * round's packet (so that one alive after all learns it and refutes), as an extra copy that
 * does not count. */
static void gossip_round(struct gossip *g)
{
    struct gmember *targets[17];
    size_t k = g->cfg.gossip_nodes < 16 ? g->cfg.gossip_nodes : 16;
    uint32_t limit = gossip_retransmit_limit(g);
    uint8_t body[GOSSIP_UDP_MAX];
    struct gwbuf w;
    size_t gone;

    if (g->q_members.count == 0 && g->q_health.count == 0 && g->q_data.count == 0 &&
        g->q_big.count == 0)
        return;
    k = gossip_random_members(g, k, gossip_pick_live, NULL, targets);
    gone = gossip_random_members(g, 1, gossip_pick_gone, NULL, targets + k);
    if (k + gone == 0)
        return;
    gwbuf_init_fixed(&w, body, g->udp_body_max);
    gossip_fill(g, &w, 0, (uint32_t)k);
    for (size_t i = 0; i < k + gone && w.len > 0; i++)
        gossip_send_body(g, gm_addr(targets[i]), body, w.len);
    for (size_t i = 0; i < k; i++) {
        struct gq_entry *big;
        gq_begin(&g->q_big);
        big = gq_pick(&g->q_big, limit, GOSSIP_STREAM_MAX);
        if (big != NULL) {
            gossip_send_big_item(g, gm_addr(targets[i]), big->msg, big->len);
            g->stats.items_sent++;
            gq_sent(&g->q_big, big, limit);
        }
    }
}

/* Asks the next seed of a join in progress, unless a seed already answered. Our own address
 * in the seed list (every member given the same seeds) is skipped. */
static void gossip_join_next(struct gossip *g, uint64_t now)
{
    if (g->join_next >= g->nseeds || now < g->join_at_ms)
        return;
    if (g->nlive > 1 || g->leaving) {
        g->join_next = g->nseeds; /* joined: the rest is not needed */
        return;
    }
    while (g->join_next < g->nseeds && gossip_addr_equal(&g->seeds[g->join_next], gm_addr(g->self)))
        g->join_next++;
    if (g->join_next == g->nseeds)
        return;
    gossip_pushpull_start(g, &g->seeds[g->join_next++], true);
    g->join_at_ms = now + GOSSIP_JOIN_STAGGER_MS;
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
            gossip_pushpull_start(g, gm_addr(m), false);
            return;
        }
    }
}

static void gossip_housekeeping(struct gossip *g, uint64_t now)
{
    for (size_t i = 0; i < g->ngone;) {
        struct gmember *m = g->gone[i];
        uint64_t ttl = m->state == GOSSIP_LEFT ? g->cfg.left_reap_ms : g->cfg.dead_reap_ms;
        if (now - gm_since(g, m) >= ttl) {
            gq_remove(&g->q_members, gm_id(m));
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

/* The probe in flight is still silent after its indirect probes: the second look is next. */
static bool gossip_probe_second_due(const struct gossip *g)
{
    return g->probe.active && !g->probe.acked && g->probe.indirect_sent && !g->probe.second_sent;
}

/* The probe in flight is still silent half-way to its timeout: the early direct retry. */
static bool gossip_probe_retry_due(const struct gossip *g)
{
    return g->probe.active && !g->probe.acked && !g->probe.retry_sent && !g->probe.indirect_sent;
}

uint64_t gossip_tick(struct gossip *g)
{
    uint64_t now = gossip_now(g);
    uint64_t next;

    if (!g->leaving) {
        if (gossip_probe_retry_due(g) && now >= g->probe.retry_at)
            gossip_probe_retry(g);
        if (g->probe.active && !g->probe.acked && !g->probe.indirect_sent &&
            now >= g->probe.timeout_at)
            gossip_probe_indirect(g);
        if (gossip_probe_second_due(g) && now >= g->probe.second_at)
            gossip_probe_second(g);
        if (now >= g->probe_next) {
            if (g->probe.active)
                gossip_probe_conclude(g);
            gossip_probe_start(g, now);
            g->probe_next = now + gossip_scale(g, g->cfg.probe_interval_ms);
        }
    }
    for (size_t i = 0; i < GOSSIP_RELAYS_MAX; i++) {
        struct grelay *r = &g->relays[i];
        if (r->used && r->nack && now >= r->nack_ms) {
            r->nack = false;
            gossip_reply(g, &r->requester, GMSG_NACK, r->orig_seq);
        }
        if (r->used && now >= r->deadline_ms)
            r->used = false;
    }
    for (size_t i = 0; i < g->nsuspects;) {
        struct gmember *m = g->suspects[i];
        if (now >= g->susps[i]->deadline_ms) {
            g->stats.deaths++;
            gossip_on_dead(g, gm_id(m), gm_inc(m), gm_id(g->self));
            continue; /* removed from suspects[]: slot i now holds another */
        }
        i++;
    }
    gossip_round_if_due(g);
    if (now >= g->pushpull_next) {
        struct gmember *peer;
        if (!g->leaving && gossip_random_members(g, 1, gossip_pick_alive, NULL, &peer) == 1) {
            g->stats.pushpulls++;
            gossip_pushpull_start(g, gm_addr(peer), false);
        }
        g->pushpull_next = now + gossip_pushpull_period(g);
        /* catching up (gossip_pushpull.c): the gap doubles while exchanges bring nothing new,
         * up to the period */
        if (g->pp_catchup_ms > 0) {
            g->pp_catchup_ms *= 2;
            if (now + g->pp_catchup_ms < g->pushpull_next)
                g->pushpull_next = now + g->pp_catchup_ms;
            else
                g->pp_catchup_ms = 0;
        }
    }
    gossip_join_next(g, now);
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
    if (g->join_next < g->nseeds)
        next = gossip_min(next, g->join_at_ms);
    if (!g->leaving) {
        next = gossip_min(next, g->probe_next);
        if (gossip_probe_retry_due(g))
            next = gossip_min(next, g->probe.retry_at);
        if (g->probe.active && !g->probe.acked && !g->probe.indirect_sent)
            next = gossip_min(next, g->probe.timeout_at);
        if (gossip_probe_second_due(g))
            next = gossip_min(next, g->probe.second_at);
    }
    for (size_t i = 0; i < g->nsuspects; i++)
        next = gossip_min(next, g->susps[i]->deadline_ms);
    for (size_t i = 0; i < GOSSIP_RELAYS_MAX; i++)
        if (g->relays[i].used)
            next = gossip_min(next,
                              g->relays[i].nack ? g->relays[i].nack_ms : g->relays[i].deadline_ms);
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
    else if (c->suspicion_confirm >= GOSSIP_SUSPECT_CONFIRM_MAX)
        what = "suspicion confirmations must be below 8";
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
    g->replay = greplay_new();
    if (g->cipher == NULL || g->health == NULL || g->replay == NULL ||
        gossip_keyring_derive(&cfg->keyring, &g->wire) != 0 ||
        gq_init(&g->q_members, gossip_member_queue_max(cfg)) != 0 ||
        gq_init(&g->q_health, cfg->queue_max) != 0 || gq_init(&g->q_data, cfg->queue_max) != 0 ||
        gq_init(&g->q_big, 256) != 0)
        goto nomem;
    g->udp_body_max = GOSSIP_UDP_MAX - genv_overhead(&cfg->keyring, cfg->label);
    g->start_ms = gossip_now(g); /* before any member: state times count from it */
    g->self = gossip_member_add(g, cfg->id, &cfg->advertise, cfg->incarnation);
    if (g->self == NULL)
        goto nomem;
    gossip_member_set_meta(g, &g->self, &cfg->meta);
    now = g->start_ms;
    g->wall_base_s = cfg->incarnation;
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
    /* the chunks hold the entries' versions (a shared chunk: for every table) */
    for (size_t i = 0; i < g->nsuspects; i++)
        free(g->susps[i]);
    for (size_t i = 0; i < g->nslots; i++)
        gossip_chunk_release(g->slots[i]);
    free(g->slots);
    free(g->slot_used);
    free(g->suspects);
    free(g->susps);
    free(g->gone);
    free(g->order.late);
    gq_destroy(&g->q_members);
    gq_destroy(&g->q_health);
    gq_destroy(&g->q_data);
    gq_destroy(&g->q_big);
    ghealth_free(g->health);
    greplay_free(g->replay);
    OPENSSL_cleanse(&g->wire, sizeof(g->wire));
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
    /* one seed at a time: each answers a joiner with its whole member list, so asking all of
     * them at once moved the fleet's list once per seed; the next seed is asked only if we
     * are still alone GOSSIP_JOIN_STAGGER_MS later (gossip_join_next) */
    g->join_next = 0;
    g->join_at_ms = gossip_now(g);
    gossip_join_next(g, g->join_at_ms);
    return 0;
}

void gossip_leave(struct gossip *g)
{
    struct gmember *targets[16], *self;
    struct gmsg m;
    size_t k;

    if (g->leaving)
        return;
    g->leaving = true;
    g->probe.active = false;
    self = gossip_member_w(g, g->self); /* moves g->self along when it copies */
    if (self != NULL)                   /* NULL: out of memory, our state stays */
        self->state = GOSSIP_LEFT;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_DEAD;
    snprintf(m.id, sizeof(m.id), "%s", gm_id(g->self));
    m.incarnation = gm_inc(g->self);
    snprintf(m.from, sizeof(m.from), "%s", gm_id(g->self));
    gossip_queue_member(g, &m);
    k = gossip_random_members(g, 2 * g->cfg.gossip_nodes < 16 ? 2 * g->cfg.gossip_nodes : 16,
                              gossip_pick_alive, NULL, targets);
    for (size_t i = 0; i < k; i++)
        gossip_send_msgs(g, gm_addr(targets[i]), &m, 1);
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
    const struct gmember *m;
    uint32_t sid = 0;

    if (n == 0) /* a count only (out may be NULL) */
        return g->nmembers;
    if (n < g->nmembers) {
        /* not enough room to sort everything: copy the smallest ids by sorting a full copy */
        struct gossip_member *all = malloc(g->nmembers * sizeof(*all));
        size_t k = 0;
        if (all == NULL)
            return g->nmembers;
        while (k < g->nmembers && (m = gossip_member_next(g, &sid)) != NULL)
            gossip_member_fill(g, m, &all[k++]);
        qsort(all, k, sizeof(*all), gossip_member_cmp);
        memcpy(out, all, n * sizeof(*all));
        free(all);
        return g->nmembers;
    }
    for (size_t i = 0; i < n && (m = gossip_member_next(g, &sid)) != NULL; i++)
        gossip_member_fill(g, m, &out[i]);
    qsort(out, n, sizeof(*out), gossip_member_cmp);
    return g->nmembers;
}

int gossip_member_get(const struct gossip *g, const char *id, struct gossip_member *out)
{
    const struct gmember *m = gossip_find(g, id);

    if (m == NULL)
        return GOSSIP_ENOTFOUND;
    gossip_member_fill(g, m, out);
    return 0;
}

size_t gossip_live_count(const struct gossip *g)
{
    return g->nlive;
}

void gossip_stats_get(const struct gossip *g, struct gossip_stats *out)
{
    const struct gmember *m;
    uint32_t sid = 0;

    *out = g->stats;
    out->drops[GOSSIP_DROP_QUEUE_FULL] +=
        g->q_members.evicted + g->q_health.evicted + g->q_data.evicted + g->q_big.evicted;
    out->awareness = g->awareness;
    out->members_alive = out->members_suspect = out->members_dead = out->members_left = 0;
    while ((m = gossip_member_next(g, &sid)) != NULL) {
        switch (m->state) {
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
    out->queue_data = (uint32_t)(g->q_health.count + g->q_data.count + g->q_big.count);
    out->incarnation = gm_inc(g->self);
}

int gossip_debug_add_member(struct gossip *g, const char *id, const struct gossip_addr *addr,
                            uint64_t incarnation)
{
    if (gossip_find(g, id) != NULL || !gproto_id_valid(id))
        return GOSSIP_EINVAL;
    return gossip_member_add(g, id, addr, incarnation) ? 0 : GOSSIP_ENOMEM;
}

int gossip_debug_seal(struct gossip *g, const uint8_t *body, size_t len, uint8_t *out, size_t cap)
{
    return genv_seal(g->cipher, &g->wire, g->cfg.label, gossip_wall(g), body, len, out, cap);
}
