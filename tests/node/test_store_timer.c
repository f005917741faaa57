/*
 * test_store_timer.c - the store's group commit (node.c) waits NODE_STORE_SYNC_MS to make
 * gossiped records and witnesses durable with one fdatasync; the API path syncs at once
 * before its 202. After an API write nothing is left staged, so the group commit's timer must
 * not stay armed to fire on nothing. A node is made in-process and the record submitted as
 * the API does (node_record_submit).
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

static void api_write_leaves_no_commit_armed(void **state)
{
    struct node_config cfg;
    struct node *node;
    struct node_submit_result res;
    struct state_record rec;
    struct state_key *key;
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    char err[NODE_ERR_MAX], keyfile[512];
    uint64_t syncs;
    int len;

    (void)state;
    snprintf(keyfile, sizeof(keyfile), "%s/store-timer.key", nt_tmpdir());
    assert_int_equal(nt_config_local(&cfg, "store-timer", "1", NULL, err, sizeof(err)), 0);
    node = node_new(&cfg, err, sizeof(err));
    assert_non_null(node);
    key = state_key_generate(keyfile, err, sizeof(err));
    assert_non_null(key);
    assert_int_equal(state_record_build(&rec, STATE_RECORD_RESERVE, "timer", NULL, 0, false,
                                        state_now_ms(), err, sizeof(err)),
                     0);
    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
    len = state_record_encode(&rec, buf, sizeof(buf));
    assert_true(len > 0);

    syncs = state_store_syncs(node->store);
    node_record_submit(node, buf, (size_t)len, &res);
    assert_int_equal(res.status, 202);
    assert_true(res.changed);
    /* the record and this node's witness: durable together, one fdatasync */
    assert_int_equal(state_store_syncs(node->store), syncs + 1);
    /* nothing staged is left for the group commit */
    assert_false(uv_is_active((uv_handle_t *)&node->store_timer));

    /* a witness staged outside the API path still waits for the group commit */
    node_store_staged(node);
    assert_true(uv_is_active((uv_handle_t *)&node->store_timer));
    state_key_free(key);
    node_free(node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_write_leaves_no_commit_armed),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nt_cleanup();
    return rc;
}
