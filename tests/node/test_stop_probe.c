/*
 * test_stop_probe.c - a probe result still pending when the node stops is dropped, not run on
 * the freed probe queue (before: SIGTERM under ASan ended in a silent SIGABRT after
 * "node: stopped", 2 of 10 soak stops).
 *
 * The probe thread hands results to the control loop with uv_async_send; stop runs from a
 * timer or the drain's work-done callback, so the loop turn that stops the node can still
 * reach the async phase with that send pending. The test makes exactly that turn: a node with
 * its proxy, a pending probe_async, node_proxy_stop, one more loop pass, then node_free.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node_internal.h"

static void test_pending_probe_result_at_stop(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        struct node_config cfg;
        struct node *node;
        char err[NODE_ERR_MAX], name[32];

        snprintf(name, sizeof(name), "stop-probe-%d", round);
        assert_int_equal(nt_config_local(&cfg, name, "2", NULL, err, sizeof(err)), 0);
        node = node_new(&cfg, err, sizeof(err));
        assert_non_null(node);
        assert_true(node->probe_mutex_ready);
        /* the probe thread's last result, queued and announced just before the stop */
        node->probe_count = 1;
        uv_async_send(&node->probe_async);
        node_proxy_stop(node);
        /* the rest of the loop turn that stopped the node: the async phase must not run the
         * drain on the destroyed mutex and freed queue (uv_mutex_lock aborts on EINVAL) */
        uv_run(&node->loop, UV_RUN_NOWAIT);
        node_free(node);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pending_probe_result_at_stop),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nt_cleanup();
    return rc;
}
