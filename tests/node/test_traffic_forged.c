/*
 * test_traffic_forged.c - a fleet member can publish traffic numbers only as itself. This test
 * process joins a 2-node fleet with the cluster key as member "forger" (announcing its own
 * witness key) and gossips three traffic summaries, each with a version a day ahead:
 *   - one under honest member n2's item key and id, signed by the forger,
 *   - one under n2's item key carrying the forger's own id (a relabelled summary),
 *   - its own, claiming 777 requests for "shop".
 * n1 must show the forger's 777 requests labelled "forger", keep nothing from the first two
 * (n2's line stays its own, with no "shop"), and count them as refused.
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
#include <jansson.h>

#include "gossip/gossip.h"
#include "harness.h"
#include "node/traffic_internal.h"

#define DAY_MS (24ULL * 3600 * 1000)

static struct nt_node n1, n2;

static int teardown(void **state)
{
    (void)state;
    nt_node_stop(&n1, SIGTERM, 10000);
    nt_node_stop(&n2, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

/* n1's fleet view: the requests `node` reports for `name` (-1: none), and `refused`. */
static long n1_fleet(const char *name, const char *node, long *refused)
{
    struct ctl_response r;
    json_t *j = NULL, *row, *n;
    long found = -1;
    size_t i, k;

    if (nt_api(&n1, "GET", "/api/v1/traffic/fleet", NULL, NULL, 0, &r) == 200)
        j = json_loads(r.body, 0, NULL);
    ctl_response_free(&r);
    if (refused)
        *refused = (long)json_integer_value(json_object_get(j, "refused"));
    json_array_foreach(json_object_get(j, "names"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) != 0)
            continue;
        json_array_foreach(json_object_get(row, "nodes"), k, n)
        {
            if (strcmp(json_string_value(json_object_get(n, "node")), node) == 0)
                found = (long)json_integer_value(json_object_get(n, "requests"));
        }
    }
    json_decref(j);
    return found;
}

/* Encodes a summary under `id` claiming `requests` for "shop", signed with `key`. */
static int forge(const char *id, const struct state_key *key, uint64_t seq, uint64_t requests,
                 uint8_t *buf, size_t cap)
{
    static struct traffic_summary s;

    memset(&s, 0, sizeof(s));
    snprintf(s.id, sizeof(s.id), "%s", id);
    s.seq = seq;
    s.sample_ms = NODE_SAMPLE_MS;
    s.names_total = 1;
    s.count = 1;
    snprintf(s.names[0].name, sizeof(s.names[0].name), "shop");
    s.names[0].requests = requests;
    s.names[0].recent_requests = 10;
    return traffic_summary_encode(&s, key, buf, cap);
}

static void a_member_publishes_numbers_only_as_itself(void **state)
{
    char seedtext[64], serr[STATE_ERR_MAX], path[400];
    char n2_id[GOSSIP_ID_MAX + 1] = "", key[GOSSIP_KEY_MAX + 1];
    struct gossip_member members[8];
    struct state_key *forger;
    uint8_t buf[TRAFFIC_ITEM_MAX];
    uint64_t ahead = state_now_ms() + DAY_MS;
    long refused = 0, before = 0;
    struct gossip *g;
    uv_loop_t loop;
    int len;

    (void)state;
    const char *one[] = {"--node-name", "n1", NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", one), 0);
    snprintf(seedtext, sizeof(seedtext), "127.0.0.1:%d", n1.gossip_port);
    const char *join[] = {"--node-name", "n2", "--join", seedtext, NULL};
    assert_int_equal(nt_node_start(&n2, "n2", "127.0.0.2", join), 0);

    snprintf(path, sizeof(path), "%s/forger.key", nt_tmpdir());
    forger = state_key_generate(path, serr, sizeof(serr));
    assert_non_null(forger);
    uv_loop_init(&loop);
    g = nt_gossip_member(&loop, "forger", nt_cluster_key(), forger, seedtext, NULL);
    assert_non_null(g);
    /* the forger knows n2's id once it sees the whole fleet, and n1 knows the forger */
    for (int i = 0; i < 100 && (n2_id[0] == '\0' || gossip_live_count(g) < 3); i++) {
        nt_spin(&loop, 100);
        size_t nm = gossip_members(g, members, 8);
        for (size_t k = 0; k < nm && k < 8; k++)
            if (members[k].addr.port == n2.gossip_port)
                memcpy(n2_id, members[k].id, sizeof(n2_id));
    }
    assert_true(n2_id[0] != '\0');
    nt_spin(&loop, 1000);
    n1_fleet("shop", "n2", &before);

    /* 1. n2's key and id, the forger's signature */
    len = forge(n2_id, forger, ahead, 999999, buf, sizeof(buf));
    assert_true(len > 0);
    snprintf(key, sizeof(key), TRAFFIC_ITEM_PREFIX "%s", n2_id);
    assert_int_equal(gossip_broadcast(g, key, ahead, buf, (size_t)len), 0);
    /* 2. n2's key, the forger's own id and signature */
    len = forge("forger", forger, ahead + 1, 888888, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(gossip_broadcast(g, key, ahead + 1, buf, (size_t)len), 0);
    /* 3. its own, honest about being its own */
    len = forge("forger", forger, ahead, 777, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(gossip_broadcast(g, TRAFFIC_ITEM_PREFIX "forger", ahead, buf, (size_t)len), 0);

    for (int i = 0; i < 100 && n1_fleet("shop", "forger", NULL) != 777; i++)
        nt_spin(&loop, 100);
    assert_int_equal(n1_fleet("shop", "forger", &refused), 777);
    for (int i = 0; i < 30 && refused < before + 2; i++) {
        nt_spin(&loop, 100);
        n1_fleet("shop", "forger", &refused);
    }
    fprintf(stderr, "refused on n1: %ld (before: %ld)\n", refused, before);
    assert_true(refused >= before + 2);
    {
        struct ctl_response r;
        const char *p;
        assert_int_equal(nt_api(&n1, "GET", "/metrics", NULL, NULL, 0, &r), 200);
        p = strstr(r.body, "\nwebgw_traffic_summaries_refused_total ");
        assert_non_null(p);
        assert_true(atol(p + 39) >= 2);
        ctl_response_free(&r);
    }
    /* n2's line is still n2's own: no "shop" under its name, not 999999, not 888888 */
    nt_spin(&loop, 2000);
    assert_int_equal(n1_fleet("shop", "n2", NULL), -1);
    /* and the total of shop is what the forger claimed for itself, labelled as its own */
    assert_int_equal(n1_fleet("shop", "n1", NULL), -1);

    gossip_uv_close(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    state_key_free(forger);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_member_publishes_numbers_only_as_itself),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
