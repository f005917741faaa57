/*
 * test_fqdn_table.c - the fqdn checks' table (node_fqdn.c) holds its stated bound of 100,000
 * fqdns, each found by a keyed hash, and the sweep forgets those no longer held.
 *
 * fqdn records arrive from gossip, so the table is keyed by remote input. Before it was a
 * linear array: every arrival and every sweep mark scanned it (O(n) each, O(n^2) a sweep),
 * and its doubling capacity stopped at 65,536 although the bound said 100,000, so fqdns past
 * that went unchecked (never served). A node is made with a resolver on a loopback port
 * nobody answers; checks are asked for directly, as the API and gossip paths do.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node_internal.h"

#define FQDNS 100000 /* FQDN_ENTRIES_MAX */

/* The "reason" node_fqdn_json reports: "" for a tracked fqdn not checked yet, "not checked
 * yet" for one the table does not hold. */
static bool tracked(const struct node *node, const char *host)
{
    json_t *obj = json_object();
    bool held;

    node_fqdn_json(node, host, obj);
    held = strcmp(json_string_value(json_object_get(json_object_get(obj, "dns"), "reason")),
                  "not checked yet") != 0;
    json_decref(obj);
    return held;
}

static void test_holds_its_bound_and_forgets_released(void **state)
{
    struct node_config cfg;
    struct node *node;
    char err[NODE_ERR_MAX], dns[64];
    const char *extra[] = {"--dns-server", dns, NULL};
    char host[64];

    (void)state;
    snprintf(dns, sizeof(dns), "127.0.0.1:%d", nt_free_port("127.0.0.1"));
    assert_int_equal(nt_config_local(&cfg, "fqdn-table", "1", extra, err, sizeof(err)), 0);
    node = node_new(&cfg, err, sizeof(err));
    assert_non_null(node);

    for (int i = 0; i < FQDNS; i++) {
        snprintf(host, sizeof(host), "site-%d.example.net", i);
        node_fqdn_check_soon(node, host);
    }
    assert_true(tracked(node, "site-0.example.net"));
    assert_true(tracked(node, "site-65536.example.net")); /* the old array stopped before */
    assert_true(tracked(node, "site-99999.example.net"));
    node_fqdn_check_soon(node, "one-too-many.example.net"); /* logged, not tracked */
    assert_false(tracked(node, "one-too-many.example.net"));
    assert_false(tracked(node, "site-100000.example.net"));

    /* the first sweep (its timer is due at once) finds none of them held: all go but the
     * few whose lookup is still running */
    uv_run(&node->loop, UV_RUN_NOWAIT);
    assert_false(tracked(node, "site-99999.example.net"));
    assert_false(tracked(node, "site-65536.example.net"));
    node_fqdn_check_soon(node, "one-too-many.example.net"); /* room again */
    assert_true(tracked(node, "one-too-many.example.net"));
    node_free(node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_holds_its_bound_and_forgets_released),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nt_cleanup();
    return rc;
}
