/*
 * test_proxy_options.c - the proxy's limits, timeouts, balancing, per-IP limits, trusted
 * proxies and health checks as daemon options: each parsed from a flag and from YAML, each bad
 * value refused with one line naming the key, cross-field mistakes caught at start, and a real
 * daemon whose traffic shows the options took effect (431, 429, the header timeout, HTTP
 * health checks at the interval asked).
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

#include "harness.h"
#include "node/node.h"

static void defaults_are_the_proxys(void **state)
{
    struct node_config cfg;
    struct proxy_config pc;
    struct proxy_probe_config probe;
    char err[NODE_ERR_MAX];

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), NULL), 0);
    proxy_config_init(&pc);
    proxy_probe_config_init(&probe);
    assert_int_equal(cfg.proxy.balance, PROXY_BALANCE_ROUND_ROBIN);
    assert_int_equal(cfg.proxy.max_header_bytes, pc.max_header_bytes);
    assert_int_equal(cfg.proxy.header_timeout_ms, 10000);
    assert_int_equal(cfg.proxy.rate_per_ip, 0);
    assert_int_equal(cfg.proxy.trusted_count, 0);
    assert_int_equal(cfg.proxy.max_hops, 8);
    assert_int_equal(cfg.probe.kind, PROXY_PROBE_TCP);
    assert_int_equal(cfg.probe.interval_ms, probe.interval_ms);
}

/* What every test below sets, checked the same way for flags and for YAML. */
static void assert_all_set(const struct node_config *cfg)
{
    struct proxy_config pc;

    assert_int_equal(cfg->proxy.balance, PROXY_BALANCE_LEAST_CONN);
    assert_int_equal(cfg->proxy.max_request_line, 1000);
    assert_int_equal(cfg->proxy.max_header_count, 20);
    assert_int_equal(cfg->proxy.max_header_bytes, 4096);
    assert_int_equal(cfg->proxy.max_body_bytes, 0);
    assert_int_equal(cfg->proxy.header_timeout_ms, 500);
    assert_int_equal(cfg->proxy.keepalive_timeout_ms, 7000);
    assert_int_equal(cfg->proxy.connect_timeout_ms, 250);
    assert_int_equal(cfg->proxy.response_timeout_ms, 120000);
    assert_int_equal(cfg->proxy.tunnel_idle_timeout_ms, 30000);
    assert_int_equal(cfg->proxy.retries, 0);
    assert_int_equal(cfg->proxy.pool_max_idle, 8);
    assert_int_equal(cfg->proxy.max_conns_per_ip, 0);
    assert_int_equal(cfg->proxy.max_hops, 3);
    assert_int_equal(cfg->proxy.rate_per_ip, 50);
    assert_int_equal(cfg->proxy.rate_burst, 100);
    assert_int_equal(cfg->proxy.trusted_count, 2);
    assert_int_equal(cfg->proxy.trusted[0].family, 4);
    assert_int_equal(cfg->proxy.trusted[0].prefix, 8);
    assert_int_equal(cfg->proxy.trusted[1].family, 6);
    assert_int_equal(cfg->proxy.trusted[1].prefix, 128);
    assert_int_equal(cfg->probe.kind, PROXY_PROBE_HTTP);
    assert_string_equal(cfg->probe.path, "/healthz?deep=1");
    assert_int_equal(cfg->probe.interval_ms, 500);
    assert_true(cfg->probe.timeout_ms <= cfg->probe.interval_ms);
    assert_int_equal(cfg->probe.rise, 1);
    assert_int_equal(cfg->probe.fall, 5);

    /* what the daemon hands the proxy */
    proxy_config_init(&pc);
    node_config_proxy(cfg, &pc);
    assert_int_equal(pc.balance, PROXY_BALANCE_LEAST_CONN);
    assert_int_equal(pc.max_header_bytes, 4096);
    assert_int_equal(pc.rate_burst, 100);
    assert_int_equal(pc.max_hops, 3);
    assert_int_equal(pc.trusted_count, 2);
    assert_string_equal(pc.domain, "localhost"); /* left alone */
}

static void every_flag_sets_its_field(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];

    assert_int_equal(
        nt_config_parse(
            &cfg, err, sizeof(err), "--balance", "least-conn", "--max-request-line", "1000",
            "--max-header-count", "20", "--max-header-bytes=4096", "--max-body-bytes", "0",
            "--header-timeout", "500ms", "--keepalive-timeout", "7", "--connect-timeout", "250ms",
            "--response-timeout", "2m", "--tunnel-timeout", "30s", "--retries", "0",
            "--backend-pool-idle", "8", "--max-conns-per-ip", "0", "--max-hops", "3",
            "--rate-per-ip", "50", "--rate-burst", "100", "--trusted-proxy", "10.0.0.0/8",
            "--trusted-proxy", "::1", "--health-check", "http", "--health-path", "/healthz?deep=1",
            "--health-interval", "500ms", "--health-rise", "1", "--health-fall", "5", NULL),
        0);
    assert_all_set(&cfg);
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--balance", "p2c", NULL), 0);
    assert_int_equal(cfg.proxy.balance, PROXY_BALANCE_P2C);
}

static void every_yaml_key_sets_its_field(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *path = nt_write_tmp("proxy.yaml", "balance: least-conn\n"
                                                  "max-request-line: 1000\n"
                                                  "max-header-count: 20\n"
                                                  "max-header-bytes: 4096\n"
                                                  "max-body-bytes: 0\n"
                                                  "header-timeout: 500ms\n"
                                                  "keepalive-timeout: 7\n"
                                                  "connect-timeout: 250ms\n"
                                                  "response-timeout: 2m\n"
                                                  "tunnel-timeout: 30s\n"
                                                  "retries: 0\n"
                                                  "backend-pool-idle: 8\n"
                                                  "max-conns-per-ip: 0\n"
                                                  "max-hops: 3\n"
                                                  "rate-per-ip: 50\n"
                                                  "rate-burst: 100\n"
                                                  "trusted-proxy:\n"
                                                  "  - 10.0.0.0/8\n"
                                                  "  - \"::1\"\n"
                                                  "health-check: http\n"
                                                  "health-path: /healthz?deep=1\n"
                                                  "health-interval: 500ms\n"
                                                  "health-rise: 1\n"
                                                  "health-fall: 5\n");
    char copy[512];

    snprintf(copy, sizeof(copy), "%s", path);
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", copy, NULL), 0);
    assert_all_set(&cfg);
    /* a flag replaces the file's list rather than adding to it */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", copy, "--trusted-proxy",
                                     "192.0.2.0/24", NULL),
                     0);
    assert_int_equal(cfg.proxy.trusted_count, 1);
    assert_int_equal(cfg.proxy.trusted[0].prefix, 24);
}

/* One bad value per key: refused, and the message is exactly "--KEY: problem". */
static void bad_values_name_the_key(void **state)
{
    static const struct {
        const char *key, *value, *message;
    } cases[] = {
        {"balance", "random", "--balance: expected round-robin, least-conn or p2c, got \"random\""},
        {"max-request-line", "63", "--max-request-line: 63 is out of range 64..1048576"},
        {"max-header-count", "lots", "--max-header-count: expected a whole number, got \"lots\""},
        {"max-header-bytes", "2000000", "--max-header-bytes: 2000000 is out of range 64..1048576"},
        {"max-body-bytes", "-1", "--max-body-bytes: expected a whole number, got \"-1\""},
        {"header-timeout", "0", "--header-timeout: 0 is out of range 1ms..86400s"},
        {"keepalive-timeout", "10h",
         "--keepalive-timeout: expected a duration (10s, 500ms, 5m; a bare number is seconds), "
         "got \"10h\""},
        {"connect-timeout", "0ms", "--connect-timeout: 0ms is out of range 1ms..86400s"},
        {"response-timeout", "86401", "--response-timeout: 86401 is out of range 1ms..86400s"},
        {"tunnel-timeout", "ms",
         "--tunnel-timeout: expected a duration (10s, 500ms, 5m; a bare number is seconds), "
         "got \"ms\""},
        {"retries", "17", "--retries: 17 is out of range 0..16"},
        {"backend-pool-idle", "100000", "--backend-pool-idle: 100000 is out of range 0..65536"},
        {"max-conns-per-ip", "x", "--max-conns-per-ip: expected a whole number, got \"x\""},
        {"max-hops", "0", "--max-hops: 0 is out of range 1..255"},
        {"rate-per-ip", "2000000", "--rate-per-ip: 2000000 is out of range 0..1000000"},
        {"rate-burst", "1.5", "--rate-burst: expected a whole number, got \"1.5\""},
        {"trusted-proxy", "10.0.0.0/33",
         "--trusted-proxy: expected IP or IP/PREFIX, got \"10.0.0.0/33\""},
        {"trusted-proxy", "proxy.example",
         "--trusted-proxy: expected IP or IP/PREFIX, got \"proxy.example\""},
        {"health-check", "icmp", "--health-check: expected tcp or http, got \"icmp\""},
        {"health-path", "healthz", "--health-path: must start with / and be under 256 bytes"},
        {"health-path", "/a b", "--health-path: space, control or non-ASCII byte at offset 2"},
        {"health-interval", "5ms", "--health-interval: 5ms is out of range 10ms..3600s"},
        {"health-rise", "0", "--health-rise: 0 is out of range 1..100"},
        {"health-fall", "101", "--health-fall: 101 is out of range 1..100"},
    };
    struct node_config cfg;
    char err[NODE_ERR_MAX], flag[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(flag, sizeof(flag), "--%s", cases[i].key);
        assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), flag, cases[i].value, NULL), -1);
        assert_string_equal(err, cases[i].message);
        assert_null(strchr(err, '\n'));
    }
}

static void bad_yaml_values_name_file_line_and_key(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX], path[512], want[700];

    snprintf(path, sizeof(path), "%s",
             nt_write_tmp("badproxy.yaml", "balance: round-robin\ntrusted-proxy:\n  - 10.0.0.0/8\n"
                                           "  - nope\n"));
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), -1);
    snprintf(want, sizeof(want),
             "%s: line 2: trusted-proxy: expected IP or IP/PREFIX, got \"nope\"", path);
    assert_string_equal(err, want);
    snprintf(path, sizeof(path), "%s", nt_write_tmp("badtime.yaml", "header-timeout: soon\n"));
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), -1);
    assert_non_null(strstr(err, "line 1: header-timeout: expected a duration"));
}

/* Options valid one by one but not together: caught at start, before any socket. */
static void cross_field_errors_are_caught_at_start(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--max-request-line", "9000",
                                     "--max-header-bytes", "4096", NULL),
                     -1);
    assert_string_equal(err, "max-request-line: 9000 is over max-header-bytes (4096), which "
                             "includes the request line");
    /* the same from a file, whatever order the keys come in */
    {
        char path[512];
        snprintf(path, sizeof(path), "%s",
                 nt_write_tmp("cross.yaml", "max-header-bytes: 1024\nmax-request-line: 2048\n"));
        assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), -1);
        assert_non_null(strstr(err, "max-request-line: 2048 is over max-header-bytes (1024)"));
    }
    /* lowering both together is fine */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--max-request-line", "512",
                                     "--max-header-bytes", "1024", NULL),
                     0);
    /* a health TTL too short for the probe period would let verdicts expire between probes */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--health-ttl", "10s", NULL), -1);
    assert_string_equal(err, "health-ttl: 10000ms is under 4x (health-interval 2000ms + probe "
                             "timeout 1000ms): verdicts would expire between two probes");
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--health-ttl", "4s",
                                     "--health-interval", "500ms", NULL),
                     0);
    assert_int_equal(cfg.health_ttl_ms, 4000);
}

/* The binary exits 1 with that one line. */
static void daemon_exits_with_one_line(void **state)
{
    char out[16384], err[4096];
    const char *bad[] = {"webgw", "--rate-burst", "many", NULL};
    const char *cross[] = {"webgw", "--max-header-bytes", "100", NULL};
    const char *help[] = {"webgw", "--help", NULL};
    static const char *const keys[] = {
        "--balance",
        "--max-request-line",
        "--max-header-count",
        "--max-header-bytes",
        "--max-body-bytes",
        "--header-timeout",
        "--keepalive-timeout",
        "--connect-timeout",
        "--response-timeout",
        "--tunnel-timeout",
        "--retries",
        "--backend-pool-idle",
        "--max-conns-per-ip",
        "--rate-per-ip",
        "--rate-burst",
        "--trusted-proxy",
        "--health-check",
        "--health-path",
        "--health-interval",
        "--health-rise",
        "--health-fall",
        "--max-hops",
        "A DURATION is seconds",
    };

    assert_int_equal(nt_run(bad, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(err, "webgw: --rate-burst: expected a whole number, got \"many\"\n");
    assert_int_equal(nt_run(cross, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(err, "webgw: max-request-line: 8192 is over max-header-bytes (100), "
                             "which includes the request line\n");
    assert_int_equal(nt_run(help, NULL, out, sizeof(out), err, sizeof(err)), 0);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(strstr(out, keys[i]));
}

/* ---- a real daemon --------------------------------------------------------------------- */

static struct nt_node node;
static struct nt_backend *backend;

static int teardown(void **state)
{
    nt_node_stop(&node, SIGTERM, 10000);
    nt_backend_stop(backend);
    nt_cleanup();
    return 0;
}

static bool served(void *ctx)
{
    char body[128];
    return nt_get(node.ip, node.http_port, "opts.localhost", "/", body, sizeof(body)) == 200;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void options_take_effect_on_traffic(void **state)
{
    char envkey[400], target[64], out[4096], err[4096], resp[4096], body[128];
    static char req[4096];
    const char *env[] = {envkey, NULL};
    const char *extra[] = {"--allow-loopback-backends",
                           "--max-header-bytes",
                           "1024",
                           "--max-request-line",
                           "512",
                           "--rate-per-ip",
                           "2",
                           "--rate-burst",
                           "2",
                           "--balance",
                           "least-conn",
                           "--header-timeout",
                           "500ms",
                           "--health-check",
                           "http",
                           "--health-interval",
                           "100ms",
                           "--health-rise",
                           "1",
                           NULL};
    int n, status[3];
    double t0;

    backend = nt_backend_start("127.0.0.1", "opts-backend", 0);
    assert_non_null(backend);
    assert_int_equal(nt_node_start(&node, "opts", "127.0.0.1", extra), 0);
    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(target, sizeof(target), "http://127.0.0.1:%d", nt_backend_port(backend));
    const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
    const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", "opts", NULL};
    const char *expose[] = {"webgwctl", "--api",     node.api_url, "expose",
                            "opts",     "--backend", target,       NULL};
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(nt_wait(served, NULL, 10000));

    /* --max-header-bytes 1024: a 2 KB header field is 431 (before any token is taken) */
    n = snprintf(req, sizeof(req),
                 "GET / HTTP/1.1\r\nHost: opts.localhost\r\nConnection: close\r\nX-Big: %02000d"
                 "\r\n\r\n",
                 0);
    assert_int_equal(nt_raw(node.ip, node.http_port, req, (size_t)n, resp, sizeof(resp)), 431);

    /* --rate-per-ip 2 --rate-burst 2: after a second's refill, two pass and the third is 429 */
    usleep(1200000);
    for (int i = 0; i < 3; i++)
        status[i] = nt_get(node.ip, node.http_port, "opts.localhost", "/", body, sizeof(body));
    assert_int_equal(status[0], 200);
    assert_int_equal(status[1], 200);
    assert_int_equal(status[2], 429);

    /* --header-timeout 500ms: a head that never ends is cut well before the 10 s default
     * (nt_raw would otherwise give up after 3 s of silence) */
    t0 = now_s();
    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: opts.localhost\r\n");
    nt_raw(node.ip, node.http_port, req, (size_t)n, resp, sizeof(resp));
    assert_true(now_s() - t0 < 2.0);
    assert_true(now_s() - t0 >= 0.4);

    /* --health-check http --health-interval 100ms: the backend sees a GET about every 100 ms
     * with no client traffic at all (a tcp check, the default, sends no request; the default
     * interval is 2 s) */
    {
        unsigned long before = nt_backend_requests(backend);
        usleep(1000000);
        assert_true(nt_backend_requests(backend) - before >= 5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_the_proxys),
        cmocka_unit_test(every_flag_sets_its_field),
        cmocka_unit_test(every_yaml_key_sets_its_field),
        cmocka_unit_test(bad_values_name_the_key),
        cmocka_unit_test(bad_yaml_values_name_file_line_and_key),
        cmocka_unit_test(cross_field_errors_are_caught_at_start),
        cmocka_unit_test(daemon_exits_with_one_line),
        cmocka_unit_test(options_take_effect_on_traffic),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
