/*
 * test_gossip_long_names.c - a record whose name is too long for a plain item key
 * ("OWNERHEX/NAME" over 255 bytes) travels as "OWNERHEX/#HASH", and the node that holds it
 * finds the name again through its long-key index (node_gossip.c) when a peer asks for that
 * key. The record is made on gw1, gw1 restarts (its log replayed: nothing left to broadcast)
 * and only then gw2 joins, so gw2 can learn it from anti-entropy alone (push-pull every 1 s).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node gw1, gw2;
static char env_key[400], out[65536], err[8192], name[STATE_FQDN_MAX + 1];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static const char *const gw1_extra[] = {"--allow-loopback-backends", "--gossip-pushpull-interval",
                                        "1s", NULL};

static int setup(void **state)
{

    (void)state;
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    /* 3 labels of 60 and "example.org": 194 bytes, a key of 65 + 194 > 255 */
    snprintf(name, sizeof(name), "%.60s.%.60s.%.60s.example.org",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
             "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
             "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc");
    return nt_node_start(&gw1, "gw1", "127.0.0.1", gw1_extra);
}

static int teardown(void **state)
{
    (void)state;
    if (gw2.pid)
        nt_node_stop(&gw2, SIGTERM, 10000);
    if (gw1.pid)
        nt_node_stop(&gw1, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

static bool gw2_has_it(void *ctx)
{
    struct ctl_response r;
    char path[400];
    int status;

    (void)ctx;
    snprintf(path, sizeof(path), "/api/v1/names/%s", name);
    status = nt_api(&gw2, "GET", path, NULL, NULL, 0, &r);
    ctl_response_free(&r);
    return status == 200;
}

static void a_long_named_record_reaches_a_late_joiner(void **state)
{
    char seed[64];

    (void)state;
    assert_int_equal(strlen(name), 194);
    assert_int_equal(ctl(gw1.api_url, "keygen", NULL), 0);
    assert_int_equal(ctl(gw1.api_url, "fqdn", name, "--backend", "http://127.0.0.11:4", NULL), 0);
    assert_int_equal(nt_node_stop(&gw1, SIGTERM, 10000), 0);
    assert_int_equal(nt_node_restart(&gw1, gw1_extra), 0);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", gw1.gossip_port);
    const char *extra[] = {
        "--allow-loopback-backends", "--gossip-pushpull-interval", "1s", "--join", seed, NULL};
    assert_int_equal(nt_node_start(&gw2, "gw2", "127.0.0.2", extra), 0);
    assert_true(nt_wait(gw2_has_it, NULL, 20000));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_long_named_record_reaches_a_late_joiner, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
