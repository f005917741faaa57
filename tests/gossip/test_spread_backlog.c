/*
 * test_spread_backlog.c - a new record spreads at once even behind a backlog of records.
 *
 * The soak saw a record broadcast through gw5 take 14.6 s to reach the others (it came with
 * the next push-pull) while every gateway's data queue held ~1000 records and gw2 had just
 * been killed. The queue sends the least-sent entries first: once a new record was sent to
 * the round's first target (or rode a ping or ack to one member) it sat behind a thousand
 * never-sent ones, so it got one transmission per gateway instead of the retransmit limit,
 * and that one could go to the dead member (members dead less than gossip_to_dead_ms are
 * still gossip targets).
 *
 * Here: 5 members, every data queue holding ~1000 sizeable records, member 1 killed; then
 * member 4 publishes new records one by one and each must reach every live member within 1 s.
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

static size_t data_queued(struct fakenet *net, size_t idx)
{
    struct gossip *g = net->nodes[idx].g;

    return g->q_health.count + g->q_data.count + g->q_big.count;
}

static void test_new_record_spreads_behind_backlog(void **state)
{
    enum { RUN_MS = 6000, N = 5, KILLED = 1, PUBLISHER = 4, BACKLOG = 300, TRIALS = 30 };
    struct fakenet *net = fakenet_new(N, 4242);
    uint8_t value[400];
    char key[64];
    size_t slow = 0;

    (void)state;
    for (size_t i = 0; i < N; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    for (int s = 0; s < 600 && !fakenet_converged(net, N); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, N));
    fakenet_run(net, 10000);

    /* a backlog: every member publishes BACKLOG records of 400 bytes, every member forwards
     * the others' once it has them: ~1000 queued at each */
    memset(value, 'v', sizeof(value));
    for (size_t k = 0; k < BACKLOG; k++)
        for (size_t i = 0; i < N; i++) {
            snprintf(key, sizeof(key), "old/%zu/%zu", i, k);
            assert_int_equal(fakenet_publish(net, i, key, 1, value, sizeof(value)), 0);
        }
    fakenet_run(net, RUN_MS);

    fakenet_kill(net, KILLED);
    for (int s = 0; s < 300 && fakenet_state(net, PUBLISHER, KILLED) != GOSSIP_DEAD; s++)
        fakenet_run(net, 100);
    assert_int_equal(fakenet_state(net, PUBLISHER, KILLED), GOSSIP_DEAD);
    for (size_t i = 0; i < N; i++)
        if (i != KILLED) {
            printf("  member %zu: %zu data entries queued, %zu items held\n", i,
                   data_queued(net, i), net->nodes[i].nitems);
            assert_true(data_queued(net, i) >= 500);
        }

    for (size_t t = 0; t < TRIALS; t++) {
        struct fakenet_item_at a = {key, 1};
        uint64_t took;
        snprintf(key, sizeof(key), "new/%zu", t);
        assert_int_equal(fakenet_publish(net, PUBLISHER, key, 1, value, sizeof(value)), 0);
        took = fakenet_run_until(net, fakenet_item_at_everywhere, &a, 10, 1000);
        if (took == UINT64_MAX) {
            printf("  %s: not everywhere after 1 s:", key);
            for (size_t i = 0; i < N; i++) {
                struct gq_entry *e = NULL;
                char qk[80];
                snprintf(qk, sizeof(qk), "i:%s", key);
                if (net->nodes[i].g->q_data.count)
                    for (size_t tt = 0; tt < GOSSIP_TIERS && !e; tt++)
                        for (struct gq_entry *x = net->nodes[i].g->q_data.tiers[tt]; x; x = x->next)
                            if (strcmp(x->key, qk) == 0) {
                                e = x;
                                break;
                            }
                printf(" %zu:%s/%d", i, fakenet_item(&net->nodes[i], key) ? "has" : "no",
                       e ? (int)e->transmits : -1);
            }
            printf("\n");
            slow++;
            fakenet_run_until(net, fakenet_item_at_everywhere, &a, 10, 60000);
        }
        fakenet_run(net, 300);
    }
    printf("  %zu of %d new records took over 1 s to reach every live member\n", slow, TRIALS);
    assert_int_equal(slow, 0);
    fakenet_free(net);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_record_spreads_behind_backlog),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
