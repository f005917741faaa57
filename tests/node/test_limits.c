/*
 * test_limits.c - growth limits on real processes: --max-names-per-owner answers 403 and
 * --max-records 429 at the API, with one clear line from webgwctl; records past the limits
 * that arrive by gossip from a member without limits are dropped, logged and counted in
 * /metrics, so a member cannot grow another node's store through gossip.
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

static struct nt_node n1, n2;
static char key_a[400], key_b[400], out[65536], err[8192];

#define ctl_as(key, ...)                                                                           \
    nt_ctl((const char *const[]){key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static int setup(void **state)
{
    char seed[64];
    const char *lim[] = {"--max-names-per-owner", "2", "--max-records", "4", NULL};

    if (nt_node_start(&n1, "n1", "127.0.0.1", lim) != 0)
        return -1;
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", n1.gossip_port);
    const char *join[] = {"--join", seed, NULL};
    if (nt_node_start(&n2, "n2", "127.0.0.2", join) != 0)
        return -1;
    snprintf(key_a, sizeof(key_a), "WEBGW_KEY=%s/a.key", nt_tmpdir());
    snprintf(key_b, sizeof(key_b), "WEBGW_KEY=%s/b.key", nt_tmpdir());
    return ctl_as(key_a, n1.api_url, "keygen", NULL) == 0 &&
                   ctl_as(key_b, n1.api_url, "keygen", NULL) == 0
               ? 0
               : -1;
}

static int teardown(void **state)
{
    nt_node_stop(&n1, SIGTERM, 10000);
    nt_node_stop(&n2, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

/* One line on stderr, naming the limit. */
static void assert_one_line(const char *what)
{
    char *nl = strchr(err, '\n');

    assert_non_null(strstr(err, what));
    assert_true(nl == NULL || nl[1] == '\0');
}

static void api_refuses_past_the_owner_and_fleet_limits(void **state)
{
    struct ctl_response r;

    assert_int_equal(ctl_as(key_a, n1.api_url, "reserve", "a-one", NULL), 0);
    assert_int_equal(ctl_as(key_a, n1.api_url, "reserve", "a-two", NULL), 0);
    assert_int_not_equal(ctl_as(key_a, n1.api_url, "reserve", "a-three", NULL), 0);
    assert_one_line("max-names-per-owner");
    /* releasing one frees a place; changing a held name is never refused */
    assert_int_equal(ctl_as(key_a, n1.api_url, "release", "a-two", NULL), 0);
    assert_int_equal(ctl_as(key_a, n1.api_url, "reserve", "a-three", NULL), 0);
    /* the fleet limit: a-one, a-two (tombstone), a-three and b-one make 4 records */
    assert_int_equal(ctl_as(key_b, n1.api_url, "reserve", "b-one", NULL), 0);
    assert_int_not_equal(ctl_as(key_b, n1.api_url, "reserve", "b-two", NULL), 0);
    assert_one_line("max-records");
    /* the API's status and JSON error */
    assert_int_equal(nt_api(&n1, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(
        strstr(r.body, "webgw_records_submitted_total{outcome=\"over_owner_limit\"} 1"));
    assert_non_null(
        strstr(r.body, "webgw_records_submitted_total{outcome=\"over_fleet_limit\"} 1"));
    ctl_response_free(&r);
}

static bool gossip_refusal_counted(void *ctx)
{
    struct ctl_response r;
    bool ok;

    (void)ctx;
    ok = nt_api(&n1, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body != NULL &&
         strstr(r.body, "webgw_records_gossiped_total{outcome=\"over_limit\"} 0") == NULL &&
         strstr(r.body, "webgw_records_gossiped_total{outcome=\"over_limit\"}") != NULL;
    ctl_response_free(&r);
    return ok;
}

/* n2 has no such limits: b's names reserved there reach n1 by gossip, which keeps none past
 * its limits (it holds 4 records already), logs the refusal and counts it. */
static void gossip_past_the_limits_is_dropped(void **state)
{
    struct ctl_response r;
    char log[65536];
    FILE *f;
    size_t n;

    assert_int_equal(ctl_as(key_b, n2.api_url, "reserve", "b-two", NULL), 0);
    assert_int_equal(ctl_as(key_b, n2.api_url, "reserve", "b-three", NULL), 0);
    assert_true(nt_wait(gossip_refusal_counted, NULL, 15000));
    sleep(2); /* anti-entropy rounds offer them again: still refused */
    assert_int_equal(nt_api(&n1, "GET", "/api/v1/names/b-two", NULL, NULL, 0, &r), 404);
    ctl_response_free(&r);
    assert_int_equal(nt_api(&n1, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "webgw_records 4\n"));
    ctl_response_free(&r);
    /* n2 keeps them (no limits there), pending: n1, the other witness, refused them */
    nt_api(&n2, "GET", "/api/v1/names/b-three", NULL, NULL, 0, &r);
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "\"pending\":true"));
    ctl_response_free(&r);
    f = fopen(n1.log, "r");
    assert_non_null(f);
    n = fread(log, 1, sizeof(log) - 1, f);
    fclose(f);
    log[n] = '\0';
    assert_non_null(strstr(log, "record dropped: "));
    assert_non_null(strstr(log, "refused: the fleet is at its limit of 4 records (max-records)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_refuses_past_the_owner_and_fleet_limits),
        cmocka_unit_test(gossip_past_the_limits_is_dropped),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
