/*
 * test_fleet_roster.c - the fleet roster (--fleet-keys) on real processes: a member that turns
 * malicious runs a second identity with the cluster key (a Sybil) and backdates a claim with
 * both identities' witnesses; the roster keeps the second one from counting, so the real owner
 * keeps the name. A SIGHUP that admits the second identity makes its witnesses count (and the
 * forged claim wins: the roster is what stopped it); one that removes it again drops them.
 * Also: start-up refusals (a roster without this node, a malformed line, gossip beyond
 * loopback with no roster) and `webgw identity`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node n1, n2, n3, n4;
static struct nt_backend *be_real, *be_forged;
static char out[65536], err[8192], owner_a[80], owner_b[80];
static char key1[80], key2[80], key3[80], key4[80], fleet_path[512];

/* webgwctl as owner `key` (optionally with a clock a day behind) against `api`. */
#define ctl(api, key, late, ...)                                                                   \
    nt_ctl_owner(out, sizeof(out), err, sizeof(err), api, key, late, __VA_ARGS__)

/* `webgw identity --data-dir nt_tmpdir()/name`: the node key before the node first runs. */
static void identity(const char *name, char *hex)
{
    char dir[400];
    const char *argv[] = {"webgw", "identity", "--data-dir", dir, NULL};

    snprintf(dir, sizeof(dir), "%s/%s", nt_tmpdir(), name);
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(sscanf(out, "%64s", hex), 1);
    assert_int_equal(strlen(hex), 64);
}

static void write_fleet(const char *const *keys)
{
    char text[2048];
    size_t len = (size_t)snprintf(text, sizeof(text), "# the honest operators' fleet\n");

    for (size_t i = 0; keys[i]; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len, "%s  gw%zu\r\n", keys[i], i + 1);
    snprintf(fleet_path, sizeof(fleet_path), "%s", nt_write_tmp("fleet.keys", text));
}

static bool real_owner_holds(void *ctx)
{
    return nt_holds(ctx, "victim", owner_a, "real-backend");
}

static bool forger_holds(void *ctx)
{
    return nt_holds(ctx, "victim", owner_b, "forged-backend");
}

/* n3 shows victim witnessed twice: by itself and by its second identity n4. */
static bool forged_claim_witnessed_twice(void *ctx)
{
    struct ctl_response resp;
    bool ok = nt_api(ctx, "GET", "/api/v1/names/victim", NULL, NULL, 0, &resp) == 200 &&
              resp.body && strstr(resp.body, "\"witnesses\":2");

    ctl_response_free(&resp);
    return ok;
}

static unsigned long long metric(const struct nt_node *n, const char *name)
{
    struct ctl_response resp;
    unsigned long long v = 0;
    const char *p;

    if (nt_api(n, "GET", "/metrics", NULL, NULL, 0, &resp) == 200 && resp.body &&
        (p = strstr(resp.body, name)) != NULL)
        v = strtoull(p + strlen(name), NULL, 10);
    ctl_response_free(&resp);
    return v;
}

static void keygen(const char *file, char *owner)
{
    assert_int_equal(ctl(n1.api_url, file, false, "keygen", NULL), 0);
    sscanf(out, "%64s", owner);
    assert_int_equal(strlen(owner), 64);
}

static void reload(void)
{
    assert_int_equal(kill(n1.pid, SIGHUP), 0);
    assert_int_equal(kill(n2.pid, SIGHUP), 0);
}

static void second_identity_cannot_take_a_name(void **state)
{
    char seed1[64], seed3[64], real[64], forged[64], pushpull[] = "1s";
    struct ctl_response resp;

    (void)state;
    /* the operators learn each gateway's key before it runs and list the three of them */
    identity("n1", key1);
    identity("n2", key2);
    identity("n3", key3);
    {
        char again[80];
        identity("n1", again); /* never overwritten */
        assert_string_equal(again, key1);
    }
    write_fleet((const char *[]){key1, key2, key3, NULL});

    be_real = nt_backend_start("127.0.0.31", "real-backend", 0);
    be_forged = nt_backend_start("127.0.0.32", "forged-backend", 0);
    const char *honest1[] = {"--allow-loopback-backends",  "--fleet-keys", fleet_path,
                             "--gossip-pushpull-interval", pushpull,       NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", honest1), 0);
    snprintf(seed1, sizeof(seed1), "127.0.0.1:%d", n1.gossip_port);
    const char *honest[] = {"--allow-loopback-backends",
                            "--fleet-keys",
                            fleet_path,
                            "--gossip-pushpull-interval",
                            pushpull,
                            "--join",
                            seed1,
                            NULL};
    assert_int_equal(nt_node_start(&n2, "n2", "127.0.0.2", honest), 0);
    assert_int_equal(nt_api(&n1, "GET", "/healthz", NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp.body, "\"fleet\":\"roster\""));
    assert_non_null(strstr(resp.body, "\"fleet_keys\":3"));
    ctl_response_free(&resp);
    keygen("a.key", owner_a);
    keygen("b.key", owner_b);

    /* the owner reserves and exposes victim through n1 */
    snprintf(real, sizeof(real), "http://127.0.0.31:%d", nt_backend_port(be_real));
    assert_int_equal(ctl(n1.api_url, "a.key", false, "reserve", "victim", NULL), 0);
    assert_int_equal(ctl(n1.api_url, "a.key", false, "expose", "victim", "--backend", real, NULL),
                     0);

    /* n3's operator turns malicious: n3 and a second identity n4 (a fresh node.key, the same
     * cluster key, in no roster) run with clocks a day behind and an open roster of their own;
     * b's claim, dated by those clocks, gets both their witnesses a day back */
    const char *const *env = nt_day_behind_env;
    const char *alone[] = {"--allow-loopback-backends", "--gossip-pushpull-interval", pushpull,
                           NULL};
    assert_int_equal(nt_node_start_env(&n3, "n3", "127.0.0.3", alone, env), 0);
    snprintf(seed3, sizeof(seed3), "127.0.0.3:%d", n3.gossip_port);
    const char *sybil[] = {
        "--allow-loopback-backends", "--gossip-pushpull-interval", pushpull, "--join", seed3, NULL};
    assert_int_equal(nt_node_start_env(&n4, "n4", "127.0.0.4", sybil, env), 0);
    snprintf(forged, sizeof(forged), "http://127.0.0.32:%d", nt_backend_port(be_forged));
    assert_int_equal(ctl(n3.api_url, "b.key", true, "reserve", "victim", NULL), 0);
    assert_int_equal(ctl(n3.api_url, "b.key", true, "expose", "victim", "--backend", forged, NULL),
                     0);
    assert_true(nt_wait(forged_claim_witnessed_twice, &n3, 20000));
    identity("n4", key4);
    assert_true(nt_node_stop(&n4, SIGTERM, 10000) >= 0);
    assert_true(nt_node_stop(&n3, SIGTERM, 10000) >= 0);

    /* both join the fleet with their data dirs (clocks set right: gossip refuses day-old
     * packets); n3 says outright that its roster is open */
    n3.env[0][0] = n4.env[0][0] = '\0';
    const char *rejoin3[] = {"--allow-loopback-backends",
                             "--gossip-pushpull-interval",
                             pushpull,
                             "--fleet-open",
                             "--join",
                             seed1,
                             NULL};
    assert_int_equal(nt_node_restart(&n3, rejoin3), 0);
    assert_int_equal(nt_node_restart(&n4, rejoin3), 0);
    assert_int_equal(nt_api(&n3, "GET", "/healthz", NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp.body, "\"fleet\":\"open\""));
    assert_non_null(strstr(resp.body, "--fleet-open: every key a member announces"));
    ctl_response_free(&resp);

    /* n1 and n2 hold every witness n3 has but n4's: the real owner keeps the name */
    assert_true(nt_wait(real_owner_holds, &n1, 20000));
    assert_true(nt_wait(real_owner_holds, &n2, 20000));
    sleep(3); /* a few anti-entropy rounds later, still */
    assert_true(real_owner_holds(&n1) && real_owner_holds(&n2));
    assert_true(metric(&n1, "webgw_witnesses_total{outcome=\"unadmitted\"}") > 0);
}

/* The roster is what stopped it: admitting n4 (SIGHUP) makes its witnesses count, and two
 * identities of one operator backdate the claim; removing it again drops them. */
static void reload_admits_and_removes_a_gateway(void **state)
{
    (void)state;
    write_fleet((const char *[]){key1, key2, key3, key4, NULL});
    reload();
    assert_true(nt_wait(forger_holds, &n1, 20000));
    assert_true(nt_wait(forger_holds, &n2, 20000));

    write_fleet((const char *[]){key1, key2, key3, NULL});
    reload();
    assert_true(nt_wait(real_owner_holds, &n1, 20000));
    assert_true(nt_wait(real_owner_holds, &n2, 20000));

    /* a bad file on reload keeps the roster and says so */
    nt_write_tmp("fleet.keys", "not a key\n");
    reload();
    sleep(1);
    assert_true(real_owner_holds(&n1));
    {
        char log[65536] = "";
        FILE *f = fopen(n1.log, "r");
        size_t n = f ? fread(log, 1, sizeof(log) - 1, f) : 0;
        if (f)
            fclose(f);
        log[n] = '\0';
        assert_non_null(strstr(log, "fleet.keys:1: expected a node key"));
        assert_non_null(strstr(log, "(keeping the roster of 3 keys)"));
    }
    write_fleet((const char *[]){key1, key2, key3, NULL});
}

/* Start-up: a roster that leaves this node out names its key; a malformed line names file and
 * line; gossip beyond loopback needs a roster or --fleet-open. */
static void start_refusals(void **state)
{
    char dir[400], path[512];
    const char *argv[] = {"webgw", "--data-dir", dir, "--fleet-keys", path, NULL};
    struct node_config cfg;
    char cerr[NODE_ERR_MAX];

    (void)state;
    snprintf(dir, sizeof(dir), "%s/outsider", nt_tmpdir());
    write_fleet((const char *[]){key1, key2, NULL});
    snprintf(path, sizeof(path), "%s", fleet_path);
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "does not list this node's key; add the line \""));
    {
        char refusal[sizeof(err)], outsider[80];
        snprintf(refusal, sizeof(refusal), "%s", err);
        identity("outsider", outsider); /* the key the daemon made and named */
        assert_non_null(strstr(refusal, outsider));
    }
    snprintf(path, sizeof(path), "%s", nt_write_tmp("bad.keys", "# ok\n\nxyz gw1\n"));
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "bad.keys:3: expected a node key"));

    assert_int_equal(nt_config_parse(&cfg, cerr, sizeof(cerr), "--cluster-key", nt_cluster_key(),
                                     "--gossip", "0.0.0.0:7946", NULL),
                     -1);
    assert_non_null(strstr(cerr, "gossip: 0.0.0.0:7946 is not loopback: give --fleet-keys FILE"));
    assert_int_equal(nt_config_parse(&cfg, cerr, sizeof(cerr), "--gossip-insecure", NULL), -1);
    assert_int_equal(nt_config_parse(&cfg, cerr, sizeof(cerr), "--cluster-key", nt_cluster_key(),
                                     "--gossip", "0.0.0.0:7946", "--fleet-open", NULL),
                     0);
    assert_int_equal(nt_config_parse(&cfg, cerr, sizeof(cerr), "--cluster-key", nt_cluster_key(),
                                     "--gossip", "[::]:7946", "--fleet-keys", fleet_path, NULL),
                     0);
    assert_int_equal(nt_config_parse(&cfg, cerr, sizeof(cerr), "--cluster-key", nt_cluster_key(),
                                     "--gossip", "127.0.0.1:7946", NULL),
                     0);
    assert_int_equal(
        nt_config_parse(&cfg, cerr, sizeof(cerr), "--fleet-open", "--fleet-keys", fleet_path, NULL),
        -1);
    assert_non_null(strstr(cerr, "fleet-open: contradicts --fleet-keys"));
    /* no cluster key, no gossip socket: nothing to protect */
    assert_int_equal(nt_config_parse(&cfg, cerr, sizeof(cerr), NULL), 0);
}

static int teardown(void **state)
{
    struct nt_node *all[] = {&n1, &n2, &n3, &n4};

    (void)state;
    for (size_t i = 0; i < 4; i++)
        if (all[i]->pid)
            nt_node_stop(all[i], SIGTERM, 10000);
    nt_backend_stop(be_real);
    nt_backend_stop(be_forged);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(second_identity_cannot_take_a_name),
        cmocka_unit_test(reload_admits_and_removes_a_gateway),
        cmocka_unit_test(start_refusals),
    };

    if (!nt_have_faketime())
        return 1;
    return cmocka_run_group_tests(tests, NULL, teardown);
}
