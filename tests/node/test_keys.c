/*
 * test_keys.c - gossip key rotation on two real webgw nodes (127.0.0.1 and .2).
 *
 * The admin endpoint /api/v1/admin/keys answers 401 without the bearer token, 403 on a node
 * without a token file, 400 with {"error"} for each kind of bad request, and never shows key
 * material. A rolling rotation through the API (install B, use B, remove A, on both nodes)
 * keeps the two nodes alive and replicating, and leaves the key files holding only B, so a
 * restarted node rejoins. A second rotation by editing the key files and sending SIGHUP does
 * the same and logs one line per node naming the count and the primary's fingerprint.
 * `webgwctl keys` lists and rotates with the token from --token-file or WEBGW_ADMIN_TOKEN.
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
#include <jansson.h>

#include "gossip/gossip.h"
#include "harness.h"

#define TOKEN "keys-test-admin-token-0123456789"
/* three fixed keys (base64 of 32 bytes) */
#define KEY_A "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE="
#define KEY_B "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
#define KEY_C "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M="

static struct nt_node nodes[2];
static char token_path[300], key_path[2][300], env_key[400], out[65536], err[8192];
static const char *extra[2][12];
static char seed[64];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void fingerprint_of(const char *b64, char fpr[GOSSIP_KEY_FPR_LEN + 1])
{
    struct gossip_keyring kr;
    char e[GOSSIP_ERR_MAX];

    assert_int_equal(gossip_keyring_parse(b64, strlen(b64), &kr, e, sizeof(e)), 0);
    gossip_key_fingerprint(kr.keys[0], fpr);
}

/* An admin request; returns the status, the whole answer in resp. */
static int admin(const struct nt_node *n, const char *method, const char *token, const char *body,
                 char *resp, size_t cap)
{
    char req[2048];
    int len = snprintf(req, sizeof(req),
                       "%s /api/v1/admin/keys HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "%s%s%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                       method, token ? "Authorization: Bearer " : "", token ? token : "",
                       token ? "\r\n" : "", strlen(body), body);

    return nt_raw(n->ip, n->api_port, req, (size_t)len, resp, cap);
}

static void expect_400(const struct nt_node *n, const char *body, const char *why)
{
    char resp[4096];

    assert_int_equal(admin(n, "POST", TOKEN, body, resp, sizeof(resp)), 400);
    if (!strstr(resp, "{\"error\"") || !strstr(resp, why))
        fail_msg("%s: want an error naming \"%s\", got %s", body, why, resp);
}

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static bool both_alive(void *ctx)
{
    (void)ctx;
    for (int i = 0; i < 2; i++) {
        struct ctl_response r;
        int st = nt_api(&nodes[i], "GET", "/api/v1/members", NULL, NULL, 0, &r);
        json_t *doc = st == 200 ? json_loads(r.body, 0, NULL) : NULL;
        size_t alive = 0, k;
        json_t *m;

        ctl_response_free(&r);
        json_array_foreach(doc, k, m)
        {
            alive += strcmp(json_string_value(json_object_get(m, "state")), "alive") == 0;
        }
        json_decref(doc);
        if (alive != 2)
            return false;
    }
    return true;
}

/* Neither node has dropped a packet it could not decrypt since it started. */
static void assert_no_decrypt_drops(void)
{
    for (int i = 0; i < 2; i++) {
        struct ctl_response r;
        assert_int_equal(nt_api(&nodes[i], "GET", "/metrics", NULL, NULL, 0, &r), 200);
        if (!strstr(r.body, "webgw_gossip_drops_total{reason=\"decrypt\"} 0\n"))
            fail_msg("node %d dropped packets it could not decrypt", i + 1);
        ctl_response_free(&r);
    }
}

/* A name reserved on node 1 reaches node 2's API. */
static void assert_replicates(const char *name)
{
    char path[128];
    bool seen = false;

    assert_int_equal(ctl(nodes[0].api_url, "reserve", name, NULL), 0);
    snprintf(path, sizeof(path), "/api/v1/names/%s", name);
    for (int i = 0; i < 100 && !seen; i++) {
        struct ctl_response r;
        seen = nt_api(&nodes[1], "GET", path, NULL, NULL, 0, &r) == 200;
        ctl_response_free(&r);
        if (!seen)
            usleep(50000);
    }
    assert_true(seen);
}

static int setup(void **state)
{
    (void)state;
    snprintf(token_path, sizeof(token_path), "%s/admin.token", nt_tmpdir());
    write_file(token_path, TOKEN "\n");
    for (int i = 0; i < 2; i++) {
        snprintf(key_path[i], sizeof(key_path[i]), "%s/cluster%d.key", nt_tmpdir(), i + 1);
        write_file(key_path[i], "# test key\n" KEY_A "\n");
        const char *e[] = {"--node-name",
                           i ? "gw2" : "gw1",
                           "--cluster-key",
                           key_path[i],
                           "--admin-token-file",
                           token_path,
                           "--join",
                           seed,
                           NULL};
        memcpy(extra[i], e, sizeof(e));
        if (i == 0)
            extra[0][6] = NULL; /* the first node joins nobody */
        if (nt_node_start(&nodes[i], i ? "gw2" : "gw1", i ? "127.0.0.2" : "127.0.0.1", extra[i]) !=
            0)
            return -1;
        snprintf(seed, sizeof(seed), "127.0.0.1:%d", nodes[0].gossip_port);
    }
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    if (ctl(nodes[0].api_url, "keygen", NULL) != 0)
        return -1;
    return nt_wait(both_alive, NULL, 10000) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++)
        if (nodes[i].pid)
            nt_node_stop(&nodes[i], SIGTERM, 10000);
    nt_cleanup();
    return 0;
}

static void admin_keys_statuses(void **state)
{
    char resp[4096], fa[GOSSIP_KEY_FPR_LEN + 1];
    struct nt_node bare;

    (void)state;
    assert_int_equal(admin(&nodes[0], "GET", NULL, "", resp, sizeof(resp)), 401);
    assert_int_equal(
        admin(&nodes[0], "POST", NULL, "{\"install\": \"" KEY_B "\"}", resp, sizeof(resp)), 401);
    assert_int_equal(admin(&nodes[0], "POST", "wrong-token-wrong-token", "{}", resp, sizeof(resp)),
                     401);
    assert_non_null(strstr(resp, "Bearer"));
    assert_int_equal(admin(&nodes[0], "PUT", TOKEN, "", resp, sizeof(resp)), 405);

    expect_400(&nodes[0], "not json", "not JSON");
    expect_400(&nodes[0], "{}", "expected one of");
    expect_400(&nodes[0], "{\"frob\": \"" KEY_B "\"}", "unknown operation");
    expect_400(&nodes[0], "{\"install\": \"c2hvcnQ=\"}", "44 characters");
    expect_400(&nodes[0], "{\"install\": \"QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB\"}",
               "32 bytes");
    expect_400(&nodes[0], "{\"install\": 7}", "expected a string");
    expect_400(&nodes[0], "{\"use\": \"" KEY_B "\"}", "not installed");
    expect_400(&nodes[0], "{\"remove\": \"" KEY_A "\"}", "primary");
    expect_400(&nodes[0], "{\"keys\": []}", "1 to 8 keys");
    expect_400(&nodes[0], "{\"keys\": [\"" KEY_B "\", \"" KEY_B "\"]}", "repeats");

    /* nothing changed, and the listing shows fingerprints, never keys */
    assert_int_equal(admin(&nodes[0], "GET", TOKEN, "", resp, sizeof(resp)), 200);
    fingerprint_of(KEY_A, fa);
    assert_non_null(strstr(resp, fa));
    assert_non_null(strstr(resp, "\"count\":1"));
    assert_null(strstr(resp, KEY_A));

    /* a node without --admin-token-file refuses with 403 */
    assert_int_equal(nt_node_start(&bare, "bare", "127.0.0.3", NULL), 0);
    assert_int_equal(admin(&bare, "GET", TOKEN, "", resp, sizeof(resp)), 403);
    assert_non_null(strstr(resp, "admin API disabled"));
    assert_int_equal(nt_node_stop(&bare, SIGTERM, 5000), 0);
}

static void post_both(const char *body, const char *want)
{
    char resp[4096];

    for (int i = 0; i < 2; i++) {
        assert_int_equal(admin(&nodes[i], "POST", TOKEN, body, resp, sizeof(resp)), 200);
        assert_non_null(strstr(resp, want));
        assert_true(nt_wait(both_alive, NULL, 3000));
        usleep(300000); /* a few probe periods under the mixed keyrings */
        assert_true(both_alive(NULL));
    }
}

static void rotation_through_the_api_keeps_the_cluster(void **state)
{
    char fb[GOSSIP_KEY_FPR_LEN + 1], e[GOSSIP_ERR_MAX], want[64];
    struct gossip_keyring kr;

    (void)state;
    fingerprint_of(KEY_B, fb);
    assert_replicates("before-rotation");
    post_both("{\"install\": \"" KEY_B "\"}", "\"count\":2");
    assert_replicates("after-install");
    snprintf(want, sizeof(want), "{\"fingerprint\":\"%s\",\"primary\":true}", fb);
    post_both("{\"use\": \"" KEY_B "\"}", want);
    assert_replicates("after-use");
    post_both("{\"remove\": \"" KEY_A "\"}", "\"count\":1");
    assert_replicates("after-remove");
    assert_no_decrypt_drops();

    /* the files now hold B alone, so a restart keeps the rotation */
    for (int i = 0; i < 2; i++) {
        char fpr[GOSSIP_KEY_FPR_LEN + 1];
        assert_int_equal(gossip_keyring_load(key_path[i], &kr, e, sizeof(e)), 0);
        assert_int_equal(kr.count, 1);
        gossip_key_fingerprint(kr.keys[0], fpr);
        assert_string_equal(fpr, fb);
        assert_int_equal(access(key_path[i], R_OK), 0);
    }
    assert_int_equal(nt_node_stop(&nodes[1], SIGTERM, 10000), 0);
    assert_int_equal(nt_node_restart(&nodes[1], extra[1]), 0);
    assert_true(nt_wait(both_alive, NULL, 10000));
    assert_replicates("after-restart");
}

static bool log_has(const struct nt_node *n, const char *needle)
{
    static char text[1 << 20];
    FILE *f = fopen(n->log, "r");
    size_t len;

    if (!f)
        return false;
    len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[len] = '\0';
    return strstr(text, needle) != NULL;
}

static void rotation_by_sighup_keeps_the_cluster(void **state)
{
    char fc[GOSSIP_KEY_FPR_LEN + 1], line[128];
    const char *steps[] = {KEY_B "\n" KEY_C "\n", KEY_C "\n" KEY_B "\n", KEY_C "\n"};

    (void)state;
    fingerprint_of(KEY_C, fc);
    for (size_t s = 0; s < 3; s++) {
        for (int i = 0; i < 2; i++) {
            write_file(key_path[i], steps[s]);
            assert_int_equal(kill(nodes[i].pid, SIGHUP), 0);
            usleep(400000);
            assert_true(both_alive(NULL));
        }
        assert_replicates(s == 0 ? "hup-install" : s == 1 ? "hup-use" : "hup-remove");
    }
    snprintf(line, sizeof(line), "cluster keys reloaded (SIGHUP): 1 key, primary %s", fc);
    for (int i = 0; i < 2; i++) {
        assert_true(log_has(&nodes[i], line));
        assert_false(log_has(&nodes[i], KEY_C));
        assert_false(log_has(&nodes[i], KEY_B));
    }
    /* a broken file is refused and the running keys stay */
    write_file(key_path[1], "not a key\n");
    assert_int_equal(kill(nodes[1].pid, SIGHUP), 0);
    usleep(300000);
    assert_true(log_has(&nodes[1], "SIGHUP: keeping the running keys"));
    assert_replicates("after-bad-file");
}

static int keys_ctl(const char *token_env, const char *const *args)
{
    const char *argv[16] = {"webgwctl", "--api", nodes[0].api_url, "keys"};
    const char *env[] = {token_env, NULL};
    int argc = 4;

    for (; *args; args++)
        argv[argc++] = *args;
    argv[argc] = NULL;
    return nt_run(argv, env, out, sizeof(out), err, sizeof(err));
}

static void webgwctl_keys(void **state)
{
    char fa[GOSSIP_KEY_FPR_LEN + 1], fc[GOSSIP_KEY_FPR_LEN + 1];

    (void)state;
    fingerprint_of(KEY_A, fa);
    fingerprint_of(KEY_C, fc);
    /* no token: usage error before any request; a wrong one: refused by the node */
    assert_int_equal(keys_ctl("X=1", (const char *[]){"list", NULL}), 2);
    assert_non_null(strstr(err, "WEBGW_ADMIN_TOKEN"));
    assert_int_equal(keys_ctl("WEBGW_ADMIN_TOKEN=nope", (const char *[]){"list", NULL}), 1);
    assert_non_null(strstr(err, "refused (401)"));
    assert_int_equal(keys_ctl("X=1", (const char *[]){"--token-file", token_path, NULL}), 0);
    assert_non_null(strstr(out, fc));
    assert_non_null(strstr(out, "primary"));
    assert_int_equal(keys_ctl("WEBGW_ADMIN_TOKEN=" TOKEN, (const char *[]){"use", KEY_A, NULL}), 1);
    assert_non_null(strstr(err, "not installed"));
    assert_int_equal(keys_ctl("WEBGW_ADMIN_TOKEN=" TOKEN, (const char *[]){"install", KEY_A, NULL}),
                     0);
    assert_non_null(strstr(out, fa));
    assert_non_null(strstr(out, "secondary"));
    assert_int_equal(
        keys_ctl("WEBGW_ADMIN_TOKEN=" TOKEN, (const char *[]){"--json", "remove", KEY_A, NULL}), 0);
    assert_non_null(strstr(out, "\"count\": 1"));
    assert_null(strstr(out, fa));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(admin_keys_statuses),
        cmocka_unit_test(rotation_through_the_api_keeps_the_cluster),
        cmocka_unit_test(rotation_by_sighup_keeps_the_cluster),
        cmocka_unit_test(webgwctl_keys),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
