/*
 * test_forged_witness.c - a fleet member that forges witnesses cannot move a claim ahead. This
 * test process joins the fleet with the cluster key as member "forger", announcing its own
 * witness key, and gossips a claim on a name another owner holds, dated a day back and carried
 * by forged witnesses:
 *   - its own witness dated a day back (a member may lie about its own clock: f = 1 tolerates
 *     one such member),
 *   - the same member again with another early time (one member must count once),
 *   - a witness naming honest member n1's key, signed by the forger (signing for others),
 *   - a witness from a key no member announced (a non-member identity), dated a day back,
 *   - a witness dated a year ahead.
 * The real owner must stay the holder on every node; the forged claim is only a contender,
 * and the forged witnesses are refused and counted.
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
#include "state/state.h"

#define DAY_MS (24ULL * 3600 * 1000)

static struct nt_node n1, n2;
static char env_key[400], out[65536], err[8192], owner_a[80];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static int teardown(void **state)
{
    (void)state;
    nt_node_stop(&n1, SIGTERM, 10000);
    nt_node_stop(&n2, SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

/* The node's view of victim: held by owner a with `contenders` others. */
static bool a_holds(const struct nt_node *n, int contenders)
{
    struct ctl_response r;
    char want_owner[120], want_cont[40];
    bool ok;

    snprintf(want_owner, sizeof(want_owner), "\"owner\":\"%s\"", owner_a);
    snprintf(want_cont, sizeof(want_cont), "\"contenders\":%d", contenders);
    ok = nt_api(n, "GET", "/api/v1/names/victim", NULL, NULL, 0, &r) == 200 && r.body &&
         strstr(r.body, want_owner) && strstr(r.body, "\"held\":true") && strstr(r.body, want_cont);
    if (getenv("TRUST_DEBUG"))
        fprintf(stderr, "%s: %s\n", n->ip, r.body ? r.body : "-");
    ctl_response_free(&r);
    return ok;
}

static bool both_hold_alone(void *ctx)
{
    (void)ctx;
    return a_holds(&n1, 0) && a_holds(&n2, 0);
}

static uint64_t metric(const struct nt_node *n, const char *line)
{
    struct ctl_response r;
    unsigned long long v = 0;
    const char *p;

    if (nt_api(n, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body &&
        (p = strstr(r.body, line)) != NULL)
        sscanf(p + strlen(line), " %llu", &v);
    ctl_response_free(&r);
    return v;
}

/* Runs the forger's loop for ms milliseconds. */
static void forged_witnesses_do_not_move_a_claim_ahead(void **state)
{
    char seedtext[64], serr[STATE_ERR_MAX], item[GOSSIP_KEY_MAX + 1];
    char hex[STATE_OWNER_HEX_LEN + 1], path[400];
    struct state_key *forger, *stranger, *owner_b;
    struct state_witness w[5];
    struct gossip_member members[8];
    struct state_record rec, later;
    uint8_t n1_witness[STATE_OWNER_LEN], bundle[STATE_BUNDLE_MAX_BYTES];
    uint64_t now = state_now_ms(), refused_before;
    size_t nm;
    struct gossip *g;
    uv_loop_t loop;
    bool found = false;
    int len;

    (void)state;
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", NULL), 0);
    snprintf(seedtext, sizeof(seedtext), "127.0.0.1:%d", n1.gossip_port);
    const char *join[] = {"--join", seedtext, NULL};
    assert_int_equal(nt_node_start(&n2, "n2", "127.0.0.2", join), 0);

    /* the real owner reserves victim; both gateways witness it */
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/a.key", nt_tmpdir());
    assert_int_equal(ctl(n1.api_url, "keygen", NULL), 0);
    sscanf(out, "%64s", owner_a);
    assert_int_equal(ctl(n1.api_url, "reserve", "victim", NULL), 0);
    assert_true(nt_wait(both_hold_alone, NULL, 10000));

    /* the forger joins with the cluster key and its own witness key */
    snprintf(path, sizeof(path), "%s/forger.key", nt_tmpdir());
    forger = state_key_generate(path, serr, sizeof(serr));
    snprintf(path, sizeof(path), "%s/stranger.key", nt_tmpdir());
    stranger = state_key_generate(path, serr, sizeof(serr));
    snprintf(path, sizeof(path), "%s/b.key", nt_tmpdir());
    owner_b = state_key_generate(path, serr, sizeof(serr));
    assert_true(forger && stranger && owner_b);
    uv_loop_init(&loop);
    g = nt_gossip_member(&loop, "forger", nt_cluster_key(), forger, seedtext, NULL);
    assert_non_null(g);
    for (int i = 0; i < 100 && !(nt_file_has(n1.log, "joins the roster (3 keys") &&
                                 nt_file_has(n2.log, "joins the roster (3 keys"));
         i++)
        nt_spin(&loop, 100);
    assert_true(nt_file_has(n1.log, "joins the roster (3 keys"));
    assert_true(nt_file_has(n2.log, "joins the roster (3 keys"));
    nm = gossip_members(g, members, 8);
    for (size_t i = 0; i < nm && i < 8; i++)
        if (members[i].addr.port == n1.gossip_port) {
            memcpy(n1_witness, members[i].meta.witness, STATE_OWNER_LEN);
            found = true;
        }
    assert_true(found);

    /* owner b's claim on victim, dated a day back, with the forged witnesses */
    assert_int_equal(state_record_build(&rec, STATE_RECORD_RESERVE, "victim", NULL, 0, false,
                                        now - DAY_MS, serr, sizeof(serr)),
                     0);
    assert_int_equal(state_record_sign(&rec, owner_b, serr, sizeof(serr)), 0);
    assert_int_equal(state_witness_sign(&w[0], forger, &rec, now - DAY_MS, serr, sizeof(serr)), 0);
    assert_int_equal(state_witness_sign(&w[1], forger, &rec, now - DAY_MS + 7, serr, sizeof(serr)),
                     0);
    assert_int_equal(state_witness_sign(&w[2], forger, &rec, now - DAY_MS + 1, serr, sizeof(serr)),
                     0);
    memcpy(w[2].key, n1_witness, STATE_OWNER_LEN); /* "n1 saw it a day ago", signed by forger */
    assert_int_equal(
        state_witness_sign(&w[3], stranger, &rec, now - DAY_MS + 2, serr, sizeof(serr)), 0);
    /* a year ahead, for a newer version: it would outrank the forger's early one per key */
    later = rec;
    later.version++;
    assert_int_equal(
        state_witness_sign(&w[4], forger, &later, now + 365 * DAY_MS, serr, sizeof(serr)), 0);
    len = state_bundle_encode(&rec, w, 5, bundle, sizeof(bundle));
    assert_true(len > 0);
    state_owner_format(rec.owner, hex);
    snprintf(item, sizeof(item), "%s/victim", hex);
    refused_before = metric(&n1, "webgw_witnesses_total{outcome=\"refused\"}");
    assert_int_equal(gossip_broadcast(g, item, rec.version, bundle, (size_t)len), 0);

    /* both gateways take b's claim as a contender, never as the holder */
    for (int i = 0; i < 100 && !(a_holds(&n1, 1) && a_holds(&n2, 1)); i++)
        nt_spin(&loop, 100);
    for (int i = 0; i < 5; i++) {
        nt_spin(&loop, 400);
        assert_true(a_holds(&n1, 1));
        assert_true(a_holds(&n2, 1));
    }
    assert_true(metric(&n1, "webgw_witnesses_total{outcome=\"refused\"}") >= refused_before + 3);

    gossip_uv_close(g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    state_key_free(forger);
    state_key_free(stranger);
    state_key_free(owner_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(forged_witnesses_do_not_move_a_claim_ahead),
    };

    return cmocka_run_group_tests(tests, NULL, teardown);
}
