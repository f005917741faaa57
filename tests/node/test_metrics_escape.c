/*
 * test_metrics_escape.c - /metrics stays parseable whatever a fleet member publishes. Health
 * keys come from gossip, and a member may name a backend with a '"' or a '\' in it: as a raw
 * label value that ends the label early and breaks every scrape of the page. A member that
 * holds the cluster key (this test process, through the gossip library) publishes such a key;
 * the node must print it escaped as the Prometheus text format says.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gossip/gossip.h"
#include "harness.h"

#define ME_KEY "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

static struct nt_node n1;

static int teardown(void **state)
{
    (void)state;
    nt_node_stop(&n1, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

static void hostile_health_key_is_escaped(void **state)
{
    const char *keyfile = nt_write_tmp("cluster.key", ME_KEY "\n");
    char kf[512], err[GOSSIP_ERR_MAX], seedtext[64];
    struct gossip_config cfg;
    struct gossip_addr seed;
    struct gossip *g;
    uv_loop_t loop;
    bool seen = false;

    (void)state;
    snprintf(kf, sizeof(kf), "%s", keyfile);
    const char *extra[] = {"--cluster-key", kf, NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", extra), 0);

    uv_loop_init(&loop);
    gossip_config_default(&cfg);
    snprintf(cfg.id, sizeof(cfg.id), "hostile-member");
    snprintf(cfg.label, sizeof(cfg.label), "webgw");
    assert_int_equal(gossip_keyring_load(kf, &cfg.keyring, err, sizeof(err)), 0);
    assert_int_equal(gossip_addr_parse("127.0.0.1:0", &cfg.bind, NULL, 0), 0);
    cfg.incarnation = (uint64_t)time(NULL);
    g = gossip_uv_open(&loop, &cfg, NULL, err, sizeof(err));
    assert_non_null(g);
    snprintf(seedtext, sizeof(seedtext), "127.0.0.1:%d", n1.gossip_port);
    assert_int_equal(gossip_addr_parse(seedtext, &seed, NULL, 0), 0);
    assert_int_equal(gossip_join(g, &seed, 1), 0);
    for (int i = 0; i < 1500 && !seen; i++) {
        struct ctl_response r;
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(10000);
        if (i % 20 != 19)
            continue;
        gossip_health_publish(g, "http://10.0.0.1:80\"evil\\", true);
        if (nt_api(&n1, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body != NULL &&
            strstr(r.body, "observer=\"hostile-member\"") != NULL) {
            seen = true;
            /* escaped, and no raw quote inside the value */
            assert_non_null(strstr(r.body, "backend=\"http://10.0.0.1:80\\\"evil\\\\\""));
            assert_null(strstr(r.body, ":80\"evil"));
        }
        ctl_response_free(&r);
    }
    assert_true(seen);
    gossip_uv_close(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostile_health_key_is_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
