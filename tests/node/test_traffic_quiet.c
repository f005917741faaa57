/*
 * test_traffic_quiet.c - an idle fleet sends nothing for the dashboard: a node whose traffic
 * summary has not changed does not publish it again.
 *
 * Two idle daemons; this test process joins their fleet with the cluster key as a gossip
 * member and records every traffic summary version it is given (by gossip or push-pull) for
 * 45 s, past several 10 s samples. Each node's summary reaches it once, in one version. Before
 * the change an unchanged summary was published again every 30 s: a second version of each
 * arrived within the 45 s (and every member passed each one on 4 x ceil(log10(n+1)) times,
 * which at 20 idle members cost more bytes than the failure detector).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gossip/gossip.h"
#include "harness.h"
#include "node/traffic_internal.h"

static struct nt_node n1, n2;

struct seen {
    char key[8][GOSSIP_KEY_MAX + 1]; /* traffic item keys */
    uint64_t version[8];             /* the newest version of each */
    unsigned versions[8];            /* distinct versions of each received */
    size_t n;
};

static int teardown(void **state)
{
    (void)state;
    nt_node_stop(&n1, SIGTERM, 10000);
    nt_node_stop(&n2, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

static int on_item(void *ctx, const char *key, uint64_t version, const uint8_t *bytes, size_t len)
{
    struct seen *s = ctx;
    size_t i;

    (void)bytes;
    (void)len;
    if (strncmp(key, TRAFFIC_ITEM_PREFIX, strlen(TRAFFIC_ITEM_PREFIX)) != 0)
        return 0;
    for (i = 0; i < s->n && strcmp(s->key[i], key) != 0; i++)
        ;
    if (i == s->n) {
        if (s->n == 8)
            return 0;
        snprintf(s->key[s->n++], sizeof(s->key[0]), "%s", key);
    } else if (version <= s->version[i]) {
        return 0;
    }
    s->version[i] = version;
    s->versions[i]++;
    return 1;
}

static void an_idle_fleet_does_not_republish_summaries(void **state)
{
    char seedtext[64];
    struct gossip_callbacks cb = {0};
    struct seen seen = {0};
    struct gossip *g;
    uv_loop_t loop;

    (void)state;
    const char *one[] = {"--node-name", "n1", NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", one), 0);
    snprintf(seedtext, sizeof(seedtext), "127.0.0.1:%d", n1.gossip_port);
    const char *join[] = {"--node-name", "n2", "--join", seedtext, NULL};
    assert_int_equal(nt_node_start(&n2, "n2", "127.0.0.2", join), 0);

    uv_loop_init(&loop);
    cb.ctx = &seen;
    cb.on_item = on_item;
    g = nt_gossip_member(&loop, "listener", nt_cluster_key(), NULL, seedtext, &cb);
    assert_non_null(g);
    for (int i = 0; i < 100 && gossip_live_count(g) < 3; i++)
        nt_spin(&loop, 100);
    assert_int_equal(gossip_live_count(g), 3);
    /* past three samples (10 s) and the old 30 s republication, with push-pulls between */
    nt_spin(&loop, 45000);
    for (size_t i = 0; i < seen.n; i++)
        fprintf(stderr, "%s: %u version(s)\n", seen.key[i], seen.versions[i]);
    /* both nodes' summaries arrived (the join or push-pull carries them) */
    assert_int_equal(seen.n, 2);
    for (size_t i = 0; i < seen.n; i++)
        assert_int_equal(seen.versions[i], 1);

    gossip_uv_close(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(an_idle_fleet_does_not_republish_summaries),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
