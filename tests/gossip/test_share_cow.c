/*
 * test_share_cow.c - member tables that share chunks (gossip_debug_share_table, what the
 * simulator's -t and -S build) are copy-on-write: a table that writes an entry takes its own
 * copy of the chunk first (gossip_member_w), and the tables it shared with do not change.
 * Every kind of store into an entry is exercised on a shared chunk: a refutation (our own
 * entry), a suspicion, a new life with a new address and metadata, a death, a leave notice, a
 * reap, a new member, a leave of our own. Without the copy the other tables would see the writes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "fakenet.h"
#include "gossip/gossip_int.h"

#define MEMBERS 5000 /* a few chunks of GMEMBER_CHUNK */

/* Every entry of g's table by id handle (a free slot: zero). */
static struct gmember *snapshot(const struct gossip *g, size_t places)
{
    struct gmember *s = calloc(places, sizeof(*s));

    assert_non_null(s);
    for (size_t sid = 0; sid < places; sid++) {
        const struct gmember *m = gossip_slot(g, (uint32_t)sid);
        if (m != NULL)
            s[sid] = *m;
    }
    return s;
}

/* sids whose entries differ between g's table and the snapshot */
static size_t differing(const struct gossip *g, const struct gmember *snap, size_t places)
{
    size_t n = 0;
    struct gmember *now = snapshot(g, places);

    for (size_t sid = 0; sid < places; sid++)
        n += memcmp(&now[sid], &snap[sid], sizeof(*now)) != 0;
    free(now);
    return n;
}

static uint32_t refs(const struct gossip *g, const struct gmember *m)
{
    return gchunk_of(g->slots[gm_sid(m) / GMEMBER_CHUNK])->refs;
}

/* A member of g other than itself whose chunk g still shares with others; its id. */
static const char *shared_member(struct gossip *g)
{
    struct gmember *m;
    uint32_t sid = 0;

    while ((m = gossip_member_next(g, &sid)) != NULL)
        if (m != g->self && refs(g, m) > 1 && strncmp(gm_id(m), "member-", 7) == 0)
            return gm_id(m);
    fail_msg("no shared chunk left");
    return NULL;
}

static void writes_copy_shared_chunks(void **state)
{
    struct fakenet *net = fakenet_new(4, 91);
    struct gossip *a, *b, *c, *d;
    struct gmember *snap_a, *snap_c, *m;
    char id[GOSSIP_ID_MAX + 1], self_id[GOSSIP_ID_MAX + 1];
    struct gossip_addr addr;
    struct gmsg alive;
    const char *t;
    size_t places;
    uint64_t inc;

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
    }
    a = net->nodes[0].g;
    b = net->nodes[1].g;
    c = net->nodes[2].g;
    d = net->nodes[3].g;
    /* a's table: the other nodes as they hold themselves, and MEMBERS more */
    for (size_t i = 1; i < 4; i++) {
        struct gmember *self = net->nodes[i].g->self;
        fakenet_id(net, i, id);
        assert_int_equal(gossip_debug_add_member(a, id, gm_addr(self), gm_inc(self)), 0);
        m = gossip_find(a, id);
        gossip_member_set_meta(a, &m, gm_meta(self));
    }
    addr = net->nodes[2].addr;
    for (size_t j = 0; j < MEMBERS; j++) {
        snprintf(id, sizeof(id), "member-%zu", j);
        addr.port = (uint16_t)(10000 + j);
        assert_int_equal(gossip_debug_add_member(a, id, &addr, 7), 0);
    }
    assert_int_equal(gossip_debug_share_table(b, a), 0);
    assert_int_equal(gossip_debug_share_table(c, a), 0);
    assert_int_equal(gossip_debug_share_table(d, a), 0);
    assert_int_equal(gossip_debug_share_table(c, a), GOSSIP_EINVAL); /* c holds others now */
    places = a->nslots * GMEMBER_CHUNK;
    assert_true(places >= MEMBERS + 4);
    snap_a = snapshot(a, places);
    snap_c = snapshot(c, places);
    assert_int_equal(differing(b, snap_a, places), 0); /* b holds a's table, itself as a does */
    assert_int_equal(b->nmembers, MEMBERS + 4);
    assert_int_equal(b->nlive, MEMBERS + 4);
    for (size_t k = 0; k < a->nslots; k++) {
        assert_ptr_equal(b->slots[k], a->slots[k]); /* nothing copied yet */
        assert_int_equal(b->slot_used[k], a->slot_used[k]);
    }
    fakenet_id(net, 1, self_id);
    assert_ptr_equal(b->self, gossip_find(b, self_id));
    assert_true(refs(b, b->self) == 4);

    /* d leaves at once: its own entry, in a chunk the four share */
    gossip_leave(d);
    assert_int_equal(d->self->state, GOSSIP_LEFT);
    assert_int_equal(gossip_find(a, gm_id(d->self))->state, GOSSIP_ALIVE);
    assert_ptr_equal(d->self, gossip_find(d, gm_id(d->self)));
    assert_int_equal(refs(d, d->self), 1);

    /* a refutation: b's own entry, in a chunk the three share; b->self follows the copy */
    inc = gm_inc(b->self);
    gossip_on_suspect(b, self_id, inc, "member-1");
    assert_int_equal(gm_inc(b->self), inc + 1);
    assert_int_equal(gm_inc(gossip_find(a, self_id)), inc);
    assert_ptr_equal(b->self, gossip_find(b, self_id));
    assert_int_equal(refs(b, b->self), 1);

    /* a suspicion: state, time and incarnation */
    t = shared_member(b);
    gossip_on_suspect(b, t, 8, "member-2");
    m = gossip_find(b, t);
    assert_int_equal(m->state, GOSSIP_SUSPECT);
    assert_int_equal(gm_inc(m), 8);
    assert_int_equal(gossip_find(a, t)->state, GOSSIP_ALIVE);
    assert_non_null(gm_susp(b, m)); /* the suspects list holds the copy */
    assert_int_equal(refs(b, m), 1);

    /* a new life with another address and metadata */
    t = shared_member(b);
    gossip_alive_msg(gossip_find(b, t), &alive);
    alive.incarnation = 20;
    alive.addr.port = 9;
    snprintf(alive.meta.name, sizeof(alive.meta.name), "renamed");
    gossip_on_alive(b, &alive, false);
    m = gossip_find(b, t);
    assert_int_equal(gm_inc(m), 20);
    assert_int_equal(gm_addr(m)->port, 9);
    assert_string_equal(gm_meta(m)->name, "renamed");
    assert_int_equal(gm_inc(gossip_find(a, t)), 7);
    assert_null(gm_meta(gossip_find(c, t)));

    /* a death, then its reap */
    t = shared_member(b);
    gossip_on_dead(b, t, 7, "member-3");
    m = gossip_find(b, t);
    assert_int_equal(m->state, GOSSIP_DEAD);
    assert_int_equal(b->ngone, 1);
    assert_ptr_equal(b->gone[0], m);
    snprintf(id, sizeof(id), "%s", t);
    gossip_member_reap(b, m);
    assert_null(gossip_find(b, id));
    assert_non_null(gossip_find(a, id));
    assert_int_equal(b->nmembers, MEMBERS + 3);

    /* a leave notice */
    t = shared_member(b);
    gossip_on_dead(b, t, 7, t);
    assert_int_equal(gossip_find(b, t)->state, GOSSIP_LEFT);
    assert_int_equal(gossip_find(c, t)->state, GOSSIP_ALIVE);

    /* a new member: in a chunk of its own or one b shares */
    memset(&alive, 0, sizeof(alive));
    alive.type = GMSG_ALIVE;
    snprintf(alive.id, sizeof(alive.id), "member-new");
    alive.incarnation = 1;
    alive.addr = addr;
    gossip_on_alive(b, &alive, false);
    assert_non_null(gossip_find(b, "member-new"));
    assert_null(gossip_find(a, "member-new"));

    /* b leaves: its own entry again */
    gossip_leave(b);
    assert_int_equal(b->self->state, GOSSIP_LEFT);
    assert_int_equal(gossip_find(a, self_id)->state, GOSSIP_ALIVE);

    /* a writes too (its chunks are shared with c): c does not see it */
    t = shared_member(a);
    gossip_on_suspect(a, t, 7, "member-4");
    assert_int_equal(gossip_find(a, t)->state, GOSSIP_SUSPECT);
    assert_int_equal(gossip_find(c, t)->state, GOSSIP_ALIVE);
    assert_int_equal(differing(a, snap_a, places), 1);

    /* c never wrote: its table is as it was, entry for entry */
    assert_int_equal(differing(c, snap_c, places), 0);
    assert_int_equal(c->nmembers, MEMBERS + 4);
    assert_ptr_equal(c->self, gossip_find(c, gm_id(c->self)));
    assert_int_equal(gm_inc(c->self), gm_inc(gossip_find(a, gm_id(c->self))));
    free(snap_a);
    free(snap_c);

    /* the table that built the chunks goes first: the others still hold them */
    gossip_free(a);
    net->nodes[0].g = NULL;
    assert_int_equal(gossip_find(c, "member-1")->state, GOSSIP_ALIVE);
    assert_int_equal(gm_inc(gossip_find(c, "member-1")), 7);
    fakenet_free(net);
    assert_int_equal(gshare_stored(), 0); /* every version's references were balanced */
}

/* The simulator's fleet: member 0's table given to all; the protocol runs on it, and a death
 * is seen by every survivor (each writes the dead member's entry into its own copy). */
#define FLEET 40
static bool all_see_dead(struct fakenet *net, void *arg)
{
    for (size_t i = 0; i < FLEET; i++)
        if (i != *(size_t *)arg && fakenet_state(net, i, *(size_t *)arg) != GOSSIP_DEAD)
            return false;
    return true;
}

static void shared_fleet_detects_a_death(void **state)
{
    struct fakenet *net = fakenet_new(FLEET, 92);
    char id[GOSSIP_ID_MAX + 1];
    size_t victim = 17;
    uint64_t suspicions = 0;

    (void)state;
    net->daemon_sized = true;
    for (size_t i = 0; i < FLEET; i++) {
        struct gossip_config cfg;
        fakenet_config(net, i, &cfg);
        assert_int_equal(fakenet_start(net, i, &cfg), 0);
    }
    for (size_t j = 1; j < FLEET; j++) {
        struct gmember *self = net->nodes[j].g->self, *m;
        fakenet_id(net, j, id);
        assert_int_equal(
            gossip_debug_add_member(net->nodes[0].g, id, &net->nodes[j].addr, gm_inc(self)), 0);
        m = gossip_find(net->nodes[0].g, id);
        gossip_member_set_meta(net->nodes[0].g, &m, gm_meta(self));
    }
    for (size_t i = 1; i < FLEET; i++) {
        struct gossip *g = net->nodes[i].g;
        assert_int_equal(gossip_debug_share_table(g, net->nodes[0].g), 0);
        /* each member's own entry is as member 0 holds it: nothing copied */
        size_t k = gm_sid(g->self) / GMEMBER_CHUNK;
        assert_ptr_equal(g->slots[k], net->nodes[0].g->slots[k]);
    }
    assert_true(fakenet_converged(net, FLEET));
    fakenet_run(net, 20000);
    assert_true(fakenet_converged(net, FLEET));
    for (size_t i = 0; i < FLEET; i++)
        suspicions += net->nodes[i].suspicions_seen;
    assert_int_equal(suspicions, 0);
    fakenet_kill(net, victim);
    assert_true(fakenet_run_until(net, all_see_dead, &victim, 100, 60000) != UINT64_MAX);
    fakenet_id(net, victim, id);
    for (size_t i = 0; i < FLEET; i++) { /* the survivors wrote the death into copies */
        struct gossip *g = net->nodes[i].g;
        if (i != victim)
            assert_int_equal(refs(g, gossip_find(g, id)), 1);
    }
    fakenet_free(net);
    assert_int_equal(gshare_stored(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(writes_copy_shared_chunks),
        cmocka_unit_test(shared_fleet_detects_a_death),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
