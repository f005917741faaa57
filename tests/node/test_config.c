/*
 * test_config.c - the daemon's configuration: every flag and YAML key is checked as it is set,
 * a bad one is reported in one line naming the key, and flags override the file. The last
 * tests run the real `webgw` binary and check its exit status and stderr.
 */
#include <netinet/in.h>
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

#define assert_refused(err, ...)                                                                   \
    do {                                                                                           \
        struct node_config cfg_;                                                                   \
        assert_int_equal(nt_config_parse(&cfg_, err, sizeof(err), __VA_ARGS__, NULL), -1);         \
    } while (0)

static void defaults_serve_a_single_local_node(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), NULL), 0);
    assert_string_equal(cfg.domain, "localhost");
    /* [::] without /v6only: one listener per scheme serves IPv4 and IPv6 clients */
    assert_int_equal(cfg.http_count, 1);
    assert_string_equal(cfg.http[0].text, "[::]:8080");
    assert_false(cfg.http[0].v6only);
    assert_int_equal(cfg.https_count, 1);
    assert_string_equal(cfg.https[0].text, "[::]:8443");
    assert_false(cfg.https[0].v6only);
    assert_string_equal(cfg.gossip.text, "0.0.0.0:7946");
    assert_string_equal(cfg.api.text, "127.0.0.1:9080");
    assert_int_equal(cfg.join_count, 0);
    assert_false(cfg.allow_loopback_backends);
    assert_int_equal(cfg.workers, 0);
}

static void every_flag_sets_its_key(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *key = nt_write_tmp("ck", "AAAA\n");

    assert_int_equal(
        nt_config_parse(&cfg, err, sizeof(err), "--node-name", "gw-1", "--data-dir", "/tmp/x",
                        "--domain", "GW.Example.COM", "--http", "127.0.0.2:80", "--https",
                        "[::1]:443", "--gossip", "10.0.0.1:7000", "--advertise", "192.0.2.1:7000",
                        "--api=[::1]:9000", "--join", "seed1:7946", "--join", "[fd00::1]:7946",
                        "--cluster-key", key, "--workers", "3", "--allow-loopback-backends",
                        "--log-level", "debug", "--log-format", "json", "--drain-timeout", "5",
                        "--api-rate-limit", "7", "--api-body-limit", "8192", "--fleet-open", NULL),
        0);
    assert_string_equal(cfg.node_name, "gw-1");
    assert_string_equal(cfg.data_dir, "/tmp/x");
    assert_string_equal(cfg.domain, "gw.example.com");
    assert_int_equal(cfg.http_count, 1);
    assert_string_equal(cfg.http[0].text, "127.0.0.2:80");
    assert_int_equal(cfg.https_count, 1);
    assert_string_equal(cfg.https[0].text, "[::1]:443");
    assert_string_equal(cfg.gossip.text, "10.0.0.1:7000");
    assert_string_equal(cfg.advertise.text, "192.0.2.1:7000");
    assert_string_equal(cfg.api.text, "[::1]:9000");
    assert_int_equal(cfg.join_count, 2);
    assert_string_equal(cfg.join[1], "[fd00::1]:7946");
    assert_string_equal(cfg.cluster_key, key);
    assert_int_equal(cfg.workers, 3);
    assert_true(cfg.allow_loopback_backends);
    assert_int_equal(cfg.log_level, NODE_LOG_DEBUG);
    assert_int_equal(cfg.log_format, NODE_LOG_JSON);
    assert_int_equal(cfg.drain_timeout_ms, 5000);
    assert_int_equal(cfg.api_rate_limit, 7);
    assert_int_equal(cfg.api_body_limit, 8192);
    assert_true(cfg.fleet_open);
    /* --fleet-keys instead: a path; the file is read at start (test_fleet_roster.c) */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--gossip", "10.0.0.1:7000",
                                     "--cluster-key", key, "--fleet-keys", key, NULL),
                     0);
    assert_string_equal(cfg.fleet_keys, key);
    assert_false(cfg.fleet_open);
}

static void advertise_follows_gossip_unless_set(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--gossip", "127.0.0.3:7946", NULL),
                     0);
    assert_string_equal(cfg.advertise.text, "127.0.0.3:7946");
}

static void bad_flags_name_the_key_and_the_problem(void **state)
{
    char err[NODE_ERR_MAX];

    assert_refused(err, "--bogus");
    assert_string_equal(err, "unknown option --bogus (see --help)");
    assert_refused(err, "--http", "localhost:8080");
    assert_non_null(strstr(err, "--http: \"localhost\" is not an IP address"));
    assert_refused(err, "--http", "127.0.0.1");
    assert_non_null(strstr(err, "--http: expected ADDR:PORT"));
    assert_refused(err, "--https", "127.0.0.1:70000");
    assert_non_null(strstr(err, "--https: port must be 1..65535"));
    assert_refused(err, "--api", "::1:9080");
    assert_non_null(strstr(err, "--api: expected ADDR:PORT (IPv6 as [ADDR]:PORT)"));
    assert_refused(err, "--gossip", "[::g]:7946");
    assert_non_null(strstr(err, "--gossip:"));
    assert_refused(err, "--advertise", "0.0.0.0:0");
    assert_non_null(strstr(err, "--advertise: port must be 1..65535"));
    assert_refused(err, "--workers", "many");
    assert_string_equal(err, "--workers: expected a whole number, got \"many\"");
    assert_refused(err, "--workers", "1000");
    assert_string_equal(err, "--workers: 1000 is out of range 0..256");
    assert_refused(err, "--log-level", "loud");
    assert_non_null(strstr(err, "--log-level: expected debug, info, warn or error"));
    assert_refused(err, "--log-format", "xml");
    assert_non_null(strstr(err, "--log-format: expected text or json"));
    assert_refused(err, "--domain", "bad_domain.com");
    assert_non_null(strstr(err, "--domain: \"bad_domain.com\" is not a domain"));
    assert_refused(err, "--domain", "a..b");
    assert_non_null(strstr(err, "--domain:"));
    assert_refused(err, "--node-name", "has space");
    assert_non_null(strstr(err, "--node-name: \"has space\" has a character outside"));
    assert_refused(err, "--join", "seed");
    assert_non_null(strstr(err, "--join: expected ADDR:PORT"));
    assert_refused(err, "--join", "bad!host:7946");
    assert_non_null(strstr(err, "--join: \"bad!host\" is neither a host name nor an IP"));
    assert_refused(err, "--data-dir", "");
    assert_string_equal(err, "--data-dir: must not be empty");
    assert_refused(err, "--api");
    assert_string_equal(err, "--api: missing value ADDR:PORT");
    assert_refused(err, "--drain-timeout", "-1");
    assert_non_null(strstr(err, "--drain-timeout: expected a whole number"));
    assert_refused(err, "--api-rate-limit", "0");
    assert_non_null(strstr(err, "--api-rate-limit: 0 is out of range"));
    assert_refused(err, "--api-body-limit", "100");
    assert_non_null(strstr(err, "--api-body-limit: 100 is out of range"));
    assert_refused(err, "--allow-loopback-backends=maybe");
    assert_non_null(strstr(err, "--allow-loopback-backends: expected true or false"));
    assert_refused(err, "stray");
    assert_non_null(strstr(err, "unexpected argument \"stray\""));

    /* 17 seeds: one too many */
    {
        struct node_config cfg;
        char *argv[40] = {"webgw"};
        int argc = 1;
        FILE *devnull = fopen("/dev/null", "w");
        for (int i = 0; i < 17; i++) {
            argv[argc++] = "--join";
            argv[argc++] = "seed:7946";
        }
        assert_int_equal(node_config_from_args(&cfg, argc, argv, devnull, err, sizeof(err)), -1);
        fclose(devnull);
        assert_string_equal(err, "--join: at most 16 seeds");
    }
}

/* Every gossip timing is a flag and a YAML key, defaults are gossip's own, and values outside
 * sane ranges (or a probe timeout not below the probe interval) are refused by name. */
static void gossip_timings_are_options(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *path;

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), NULL), 0);
    assert_int_equal(cfg.gossip_timing.probe_interval_ms, 600);
    assert_int_equal(cfg.gossip_timing.probe_timeout_ms, 300);
    assert_int_equal(cfg.gossip_timing.gossip_interval_ms, 200);
    assert_int_equal(cfg.gossip_timing.fanout, 3);
    assert_int_equal(cfg.gossip_timing.suspicion_mult, 2);
    assert_int_equal(cfg.gossip_timing.pushpull_interval_ms, 30000);

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--gossip-probe-interval", "1s",
                                     "--gossip-probe-timeout", "500ms", "--gossip-interval", "50ms",
                                     "--gossip-fanout", "4", "--gossip-suspicion-mult", "5",
                                     "--gossip-pushpull-interval", "2m", NULL),
                     0);
    assert_int_equal(cfg.gossip_timing.probe_interval_ms, 1000);
    assert_int_equal(cfg.gossip_timing.probe_timeout_ms, 500);
    assert_int_equal(cfg.gossip_timing.gossip_interval_ms, 50);
    assert_int_equal(cfg.gossip_timing.fanout, 4);
    assert_int_equal(cfg.gossip_timing.suspicion_mult, 5);
    assert_int_equal(cfg.gossip_timing.pushpull_interval_ms, 120000);

    path = nt_write_tmp("gossip.yaml", "gossip-probe-interval: 2s\n"
                                       "gossip-probe-timeout: 1s\n"
                                       "gossip-interval: 300ms\n"
                                       "gossip-fanout: 2\n"
                                       "gossip-suspicion-mult: 6\n"
                                       "gossip-pushpull-interval: 45s\n");
    assert_int_equal(
        nt_config_parse(&cfg, err, sizeof(err), "--config", path, "--gossip-fanout", "5", NULL), 0);
    assert_int_equal(cfg.gossip_timing.probe_interval_ms, 2000);
    assert_int_equal(cfg.gossip_timing.probe_timeout_ms, 1000);
    assert_int_equal(cfg.gossip_timing.gossip_interval_ms, 300);
    assert_int_equal(cfg.gossip_timing.fanout, 5);
    assert_int_equal(cfg.gossip_timing.suspicion_mult, 6);
    assert_int_equal(cfg.gossip_timing.pushpull_interval_ms, 45000);

    assert_refused(err, "--gossip-probe-interval", "10ms");
    assert_string_equal(err, "--gossip-probe-interval: 10ms is out of range 100ms..60s");
    assert_refused(err, "--gossip-probe-interval", "fast");
    assert_non_null(strstr(err, "--gossip-probe-interval: expected a duration"));
    assert_refused(err, "--gossip-probe-timeout", "0");
    assert_non_null(strstr(err, "--gossip-probe-timeout: 0 is out of range"));
    assert_refused(err, "--gossip-interval", "1m");
    assert_string_equal(err, "--gossip-interval: 1m is out of range 10ms..10s");
    assert_refused(err, "--gossip-fanout", "0");
    assert_string_equal(err, "--gossip-fanout: 0 is out of range 1..16");
    assert_refused(err, "--gossip-fanout", "17");
    assert_refused(err, "--gossip-suspicion-mult", "21");
    assert_string_equal(err, "--gossip-suspicion-mult: 21 is out of range 1..20");
    assert_refused(err, "--gossip-pushpull-interval", "500ms");
    assert_non_null(strstr(err, "--gossip-pushpull-interval: 500ms is out of range"));
    assert_refused(err, "--gossip-probe-interval", "300ms", "--gossip-probe-timeout", "300ms");
    assert_non_null(strstr(err, "gossip-probe-timeout: 300ms is not below gossip-probe-interval "
                                "(300ms)"));
}

static void files_that_cannot_be_read_are_refused(void **state)
{
    char err[NODE_ERR_MAX];
    const char *cert = nt_write_tmp("cert.pem", "x");

    assert_refused(err, "--cluster-key", "/nonexistent/key");
    assert_string_equal(err,
                        "cluster-key: cannot read /nonexistent/key: No such file or directory");
    assert_refused(err, "--admin-token-file", "/nonexistent/token");
    assert_non_null(strstr(err, "admin-token-file: cannot read /nonexistent/token"));
    assert_refused(err, "--tls-cert", cert);
    assert_string_equal(err, "tls-cert: needs tls-key as well");
    assert_refused(err, "--tls-key", cert);
    assert_string_equal(err, "tls-key: needs tls-cert as well");
    assert_refused(err, "--config", "/nonexistent/webgw.yaml");
    assert_string_equal(err,
                        "config: cannot open /nonexistent/webgw.yaml: No such file or directory");
}

/* Several certificates pair with their keys by position, from flags or parallel YAML lists;
 * counts that differ are refused with a line that says so. */
static void certificates_pair_with_keys_by_position(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX], c1[512], c2[512], k1[512], k2[512], yaml[4096];
    const char *path;

    snprintf(c1, sizeof(c1), "%s", nt_write_tmp("c1.pem", "x"));
    snprintf(c2, sizeof(c2), "%s", nt_write_tmp("c2.pem", "x"));
    snprintf(k1, sizeof(k1), "%s", nt_write_tmp("k1.pem", "x"));
    snprintf(k2, sizeof(k2), "%s", nt_write_tmp("k2.pem", "x"));
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--tls-cert", c1, "--tls-key", k1,
                                     "--tls-cert", c2, "--tls-key", k2, NULL),
                     0);
    assert_int_equal(cfg.tls_cert_count, 2);
    assert_string_equal(cfg.tls_cert[1], c2);
    assert_string_equal(cfg.tls_key[1], k2);
    assert_refused(err, "--tls-cert", c1, "--tls-key", k1, "--tls-cert", c2);
    assert_string_equal(err,
                        "tls-cert: 2 given but 1 tls-key; they go in pairs, in the same order");

    snprintf(yaml, sizeof(yaml), "tls-cert:\n  - %s\n  - %s\ntls-key:\n  - %s\n  - %s\n", c1, c2,
             k1, k2);
    path = nt_write_tmp("pairs.yaml", yaml);
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.tls_cert_count, 2);
    assert_string_equal(cfg.tls_key[0], k1);
    /* flags replace the file's lists */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, "--tls-cert", c2,
                                     "--tls-key", k2, NULL),
                     0);
    assert_int_equal(cfg.tls_cert_count, 1);
    assert_string_equal(cfg.tls_cert[0], c2);
}

/* The fqdn DNS check's options: fleet addresses, the resolver and the interval. */
static void dns_check_options(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *path;

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), NULL), 0);
    assert_false(cfg.dns_server_set);
    assert_int_equal(cfg.dns_interval_ms, 60000);
    assert_int_equal(cfg.fleet_addr_count, 0);
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--fleet-addr", "192.0.2.7",
                                     "--fleet-addr", "[2001:db8::7]", "--dns-server", "127.0.0.1",
                                     "--dns-interval", "5", NULL),
                     0);
    assert_int_equal(cfg.fleet_addr_count, 2);
    assert_int_equal(cfg.fleet_addr[1].ss_family, AF_INET6);
    assert_true(cfg.dns_server_set);
    assert_string_equal(cfg.dns_server.text, "127.0.0.1:53");
    assert_int_equal(cfg.dns_interval_ms, 5000);
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--dns-server", "[::1]:5353", NULL),
                     0);
    assert_string_equal(cfg.dns_server.text, "[::1]:5353");
    assert_refused(err, "--fleet-addr", "gw.example.com");
    assert_string_equal(err, "--fleet-addr: expected an IP address, got \"gw.example.com\"");
    assert_refused(err, "--dns-server", "ns1.example.com");
    assert_refused(err, "--dns-interval", "0");

    path = nt_write_tmp("fleet.yaml", "fleet-addr:\n  - 192.0.2.1\n  - 192.0.2.2\n"
                                      "dns-server: 127.0.0.1:5300\ndns-interval: 2\n");
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.fleet_addr_count, 2);
    assert_string_equal(cfg.dns_server.text, "127.0.0.1:5300");
    assert_int_equal(cfg.dns_interval_ms, 2000);
}

static void yaml_keys_are_the_long_options(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *path = nt_write_tmp("good.yaml", "# a node\n"
                                                 "node-name: gw-2\n"
                                                 "domain: gw.test\n"
                                                 "http: 127.0.0.5:8080\n"
                                                 "join:\n"
                                                 "  - 127.0.0.1:7946\n"
                                                 "  - 127.0.0.2:7946\n"
                                                 "allow-loopback-backends: true\n"
                                                 "gossip-insecure: true\n"
                                                 "fleet-open: true\n"
                                                 "witness-faults: 2\n"
                                                 "workers: 2\n"
                                                 "log-format: json\n");

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), 0);
    assert_string_equal(cfg.node_name, "gw-2");
    assert_true(cfg.gossip_insecure);
    assert_true(cfg.fleet_open);
    assert_int_equal(cfg.witness_faults, 2);
    assert_string_equal(cfg.domain, "gw.test");
    assert_int_equal(cfg.http_count, 1);
    assert_string_equal(cfg.http[0].text, "127.0.0.5:8080");
    assert_int_equal(cfg.join_count, 2);
    assert_string_equal(cfg.join[0], "127.0.0.1:7946");
    assert_true(cfg.allow_loopback_backends);
    assert_int_equal(cfg.workers, 2);
    assert_int_equal(cfg.log_format, NODE_LOG_JSON);

    /* flags override the file, wherever they stand on the line; --join replaces the list */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--workers", "4", "--config", path,
                                     "--join", "127.0.0.9:7946", NULL),
                     0);
    assert_int_equal(cfg.workers, 4);
    assert_int_equal(cfg.join_count, 1);
    assert_string_equal(cfg.join[0], "127.0.0.9:7946");
    assert_string_equal(cfg.domain, "gw.test");

    /* an empty file is the defaults */
    path = nt_write_tmp("empty.yaml", "");
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), 0);
    assert_string_equal(cfg.domain, "localhost");
}

static void bad_yaml_names_file_line_key_and_problem(void **state)
{
    char err[NODE_ERR_MAX], want[600];
    const char *path;

    path = nt_write_tmp("unknown.yaml", "domain: gw.test\nlisten: 1.2.3.4:80\n");
    assert_refused(err, "--config", path);
    snprintf(want, sizeof(want), "%s: line 2: listen: unknown key", path);
    assert_string_equal(err, want);

    path = nt_write_tmp("badval.yaml", "http: 127.0.0.1:99999\n");
    assert_refused(err, "--config", path);
    snprintf(want, sizeof(want), "%s: line 1: http: port must be 1..65535 in \"127.0.0.1:99999\"",
             path);
    assert_string_equal(err, want);

    path = nt_write_tmp("syntax.yaml", "domain: [unclosed\n");
    assert_refused(err, "--config", path);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "line "));

    path = nt_write_tmp("list.yaml", "- http\n- https\n");
    assert_refused(err, "--config", path);
    assert_non_null(strstr(err, "expected a mapping of option names to values"));

    path = nt_write_tmp("nested.yaml", "http:\n  addr: 1.2.3.4\n");
    assert_refused(err, "--config", path);
    assert_non_null(strstr(err, "line 1: http: expected a single value"));

    path = nt_write_tmp("self.yaml", "config: other.yaml\n");
    assert_refused(err, "--config", path);
    assert_non_null(strstr(err, "config: not allowed inside a config file"));

    path = nt_write_tmp("joinbad.yaml", "join:\n  - nope\n");
    assert_refused(err, "--config", path);
    assert_non_null(strstr(err, "join: expected ADDR:PORT"));
}

/* The binary: exit status 1 and exactly one line on stderr naming the key. */
static void daemon_exits_with_one_line_on_bad_input(void **state)
{
    char out[32768], err[4096]; /* --help is over 8 KiB */
    const char *bad_flag[] = {"webgw", "--http", "nope", NULL};
    const char *path = nt_write_tmp("bin.yaml", "workers: lots\n");
    const char *bad_file[] = {"webgw", "--config", path, NULL};
    const char *help[] = {"webgw", "--help", NULL};

    assert_int_equal(nt_run(bad_flag, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(err, "webgw: --http: expected ADDR:PORT (IPv6 as [ADDR]:PORT), got "
                             "\"nope\"\n");
    assert_int_equal(nt_run(bad_file, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "line 1: workers: expected a whole number"));
    assert_non_null(strchr(err, '\n'));
    assert_int_equal(strchr(err, '\n') - err, strlen(err) - 1); /* one line */

    /* secure by default: no cluster key, no fleet, unless plain gossip is asked for by name */
    const char *join_plain[] = {"webgw", "--join", "127.0.0.1:7946", NULL};
    assert_int_equal(nt_run(join_plain, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_string_equal(err, "webgw: join: a node without --cluster-key runs alone; give the "
                             "fleet's --cluster-key (or --gossip-insecure to gossip in plain "
                             "text, which anyone can join)\n");
    const char *faults[] = {"webgw", "--witness-faults", "9", NULL};
    assert_int_equal(nt_run(faults, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "--witness-faults"));

    /* --help documents every key */
    assert_int_equal(nt_run(help, NULL, out, sizeof(out), err, sizeof(err)), 0);
    static const char *const keys[] = {"--node-name",      "--data-dir",
                                       "--domain",         "--http",
                                       "--https",          "--gossip",
                                       "--advertise",      "--api",
                                       "--join",           "--cluster-key",
                                       "--workers",        "--tls-cert",
                                       "--tls-key",        "--allow-loopback-backends",
                                       "--config",         "--admin-token-file",
                                       "--log-level",      "--log-format",
                                       "--drain-timeout",  "--gossip-insecure",
                                       "--witness-faults", "SIGHUP"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        assert_non_null(strstr(out, keys[i]));
}

/* A start-up failure (API port taken) is one line too, and the exit status is 1. */
static void daemon_reports_a_taken_port(void **state)
{
    struct nt_node a;
    char out[4096], err[4096], api[64], dir[300];

    assert_int_equal(nt_node_start(&a, "taken", "127.0.0.1", NULL), 0);
    snprintf(api, sizeof(api), "127.0.0.1:%d", a.api_port);
    snprintf(dir, sizeof(dir), "%s/taken2", nt_tmpdir());
    const char *argv[] = {"webgw",       "--api",   api,           "--data-dir",
                          dir,           "--http",  "127.0.0.1:1", "--gossip",
                          "127.0.0.1:1", "--https", "127.0.0.1:2", NULL};
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "address already in use"));
    assert_int_equal(nt_node_stop(&a, SIGTERM, 5000), 0);
}

/* --http and --https repeat, as flags and as YAML lists; a list in the file replaces the
 * default, flags replace the file's list. */
static void listeners_repeat_as_flags_and_yaml_lists(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *path = nt_write_tmp("listen.yaml", "http:\n"
                                                   "  - 0.0.0.0:80\n"
                                                   "  - \"[::]:80/v6only\"\n"
                                                   "https: 127.0.0.1:443\n");

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--http", "127.0.0.1:8080", "--http",
                                     "[::1]:8080", "--https", "127.0.0.1:8443", "--https",
                                     "[::1]:8443", NULL),
                     0);
    assert_int_equal(cfg.http_count, 2);
    assert_string_equal(cfg.http[0].text, "127.0.0.1:8080");
    assert_string_equal(cfg.http[1].text, "[::1]:8080");
    assert_int_equal(cfg.https_count, 2);
    assert_string_equal(cfg.https[1].text, "[::1]:8443");

    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.http_count, 2);
    assert_string_equal(cfg.http[0].text, "0.0.0.0:80");
    assert_false(cfg.http[0].v6only);
    assert_string_equal(cfg.http[1].text, "[::]:80/v6only");
    assert_true(cfg.http[1].v6only);
    assert_int_equal(cfg.https_count, 1);
    assert_string_equal(cfg.https[0].text, "127.0.0.1:443");

    assert_int_equal(
        nt_config_parse(&cfg, err, sizeof(err), "--config", path, "--http", "[::1]:81", NULL), 0);
    assert_int_equal(cfg.http_count, 1);
    assert_string_equal(cfg.http[0].text, "[::1]:81");
    assert_int_equal(cfg.https_count, 1); /* untouched by the --http flag */
}

/* Listeners that would take the same clients are refused, naming both; /v6only is for IPv6. */
static void overlapping_listeners_are_refused(void **state)
{
    char err[NODE_ERR_MAX];
    struct node_config cfg;

    assert_refused(err, "--http", "[::]:8080", "--https", "0.0.0.0:8080");
    assert_string_equal(err, "https: 0.0.0.0:8080 overlaps http [::]:8080 (a [::] listener "
                             "takes IPv4 too unless /v6only)");
    assert_refused(err, "--http", "127.0.0.1:8080", "--http", "127.0.0.1:8080");
    assert_non_null(strstr(err, "http: 127.0.0.1:8080 overlaps http 127.0.0.1:8080"));
    assert_refused(err, "--http", "0.0.0.0:8080", "--http", "127.0.0.1:8080");
    assert_refused(err, "--http", "127.0.0.1:8080/v6only");
    assert_string_equal(err,
                        "--http: /v6only needs an IPv6 address, got \"127.0.0.1:8080/v6only\"");
    assert_refused(err, "--http", "[::]:8080", "--http", "[::]:8080/v6only");

    /* the two families split on one port: IPv6-only [::] beside 0.0.0.0 */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--http", "[::]:8080/v6only", "--http",
                                     "0.0.0.0:8080", "--https", "[::1]:8080/v6only", NULL),
                     -1); /* [::] covers [::1] */
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--http", "[::]:8080/v6only", "--http",
                                     "0.0.0.0:8080", NULL),
                     0);
    assert_int_equal(cfg.http_count, 2);
}

/* The keys the other tests leave alone (DNS, ACME, the store's limits, the cluster label), set
 * as flags and refused by name, and every list key of the file replaced by its flag. */
static void remaining_keys_set_and_refuse(void **state)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];
    const char *path;

    assert_int_equal(
        nt_config_parse(&cfg, err, sizeof(err), "--cluster-label", "blue", "--dns-listen",
                        "127.0.0.1:5353", "--public-addr", "[2001:db8::7]", "--public-addr",
                        "192.0.2.7", "--dns-ttl", "60", "--dns-rrl", "0", "--acme-directory",
                        "https://ca.test/dir", "--acme-email", "ops@example.com", "--acme-wildcard",
                        "--https-redirect", "--deny-backend", "10.1.0.0/16", "--access-log-buffer",
                        "8192", "--compact-bytes", "65536", "--tombstone-ttl", "3600",
                        "--max-names-per-owner", "0", "--max-records", "5", NULL),
        0);
    assert_string_equal(cfg.cluster_label, "blue");
    assert_int_equal(cfg.dns_listen_count, 1);
    assert_int_equal(cfg.public_addr_count, 2);
    assert_int_equal(cfg.public_addr[0].ss_family, AF_INET6);
    assert_int_equal(cfg.public_addr[1].ss_family, AF_INET);
    assert_int_equal(cfg.dns_ttl, 60);
    assert_int_equal(cfg.dns_rrl, 0);
    assert_string_equal(cfg.acme_directory, "https://ca.test/dir");
    assert_string_equal(cfg.acme_email, "ops@example.com");
    assert_true(cfg.acme_wildcard);
    assert_true(cfg.https_redirect);
    assert_int_equal(cfg.deny_backend_count, 1);
    assert_int_equal(cfg.access_log_buffer, 8192);
    assert_int_equal(cfg.compact_bytes, 65536);
    assert_int_equal(cfg.tombstone_ttl_ms, 3600 * 1000);
    assert_int_equal(cfg.max_names_per_owner, 0);
    assert_int_equal(cfg.max_records, 5);

    assert_refused(err, "--cluster-label", "");
    assert_string_equal(err, "--cluster-label: must be 1..64 characters");
    assert_refused(err, "--dns-ttl", "0");
    assert_string_equal(err, "--dns-ttl: 0 is out of range 1..86400");
    assert_refused(err, "--public-addr", "gw.test");
    assert_string_equal(err, "--public-addr: expected an IP address, got \"gw.test\"");
    assert_refused(err, "--acme-directory", "http://ca.test/dir");
    assert_string_equal(err, "--acme-directory: must be an https:// URL");
    assert_refused(err, "--acme-email", "ops");
    assert_string_equal(err, "--acme-email: expected an e-mail address");
    assert_refused(err, "--acme-wildcard");
    assert_string_equal(err, "acme-wildcard: needs --dns-listen and --acme-directory");
    assert_refused(err, "--deny-backend", "10.1.0.0/40");
    assert_non_null(strstr(err, "--deny-backend: expected IP or IP/PREFIX"));
    assert_refused(err, "--access-log-buffer", "100");
    assert_non_null(strstr(err, "--access-log-buffer: 100 is out of range"));
    assert_refused(err, "--tombstone-ttl", "0");
    assert_non_null(strstr(err, "--tombstone-ttl: 0 is out of range"));
    assert_refused(err, "--health-interval", "5h");
    assert_non_null(strstr(err, "--health-interval: expected a duration"));

    /* each list of the file is replaced, not added to, by its first flag */
    path = nt_write_tmp("lists.yaml", "http: [127.0.0.1:8080, 127.0.0.2:8080]\n"
                                      "https: [127.0.0.1:8443, 127.0.0.2:8443]\n"
                                      "fleet-addr: [192.0.2.1, 192.0.2.2]\n"
                                      "deny-backend: [10.0.0.0/8, 10.2.0.0/16]\n"
                                      "trusted-proxy: [10.0.0.1, 10.0.0.2]\n"
                                      "dns-listen: [127.0.0.1:5353, 127.0.0.2:5353]\n"
                                      "public-addr: [192.0.2.3, 192.0.2.4]\n");
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, NULL), 0);
    assert_int_equal(cfg.http_count + cfg.https_count + cfg.fleet_addr_count +
                         cfg.deny_backend_count + cfg.proxy.trusted_count + cfg.dns_listen_count +
                         cfg.public_addr_count,
                     14);
    assert_int_equal(nt_config_parse(&cfg, err, sizeof(err), "--config", path, "--http",
                                     "127.0.0.3:8080", "--https", "127.0.0.3:8443", "--fleet-addr",
                                     "192.0.2.9", "--deny-backend", "10.3.0.0/16",
                                     "--trusted-proxy", "10.0.0.3", "--dns-listen",
                                     "127.0.0.3:5353", "--public-addr", "192.0.2.5", NULL),
                     0);
    assert_int_equal(cfg.http_count + cfg.https_count + cfg.fleet_addr_count +
                         cfg.deny_backend_count + cfg.proxy.trusted_count + cfg.dns_listen_count +
                         cfg.public_addr_count,
                     7);
    assert_true(node_config_is_list("public-addr"));
    assert_false(node_config_is_list("dns-ttl"));
    assert_false(node_config_is_list("no-such-key"));
}

static int teardown(void **state)
{
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_serve_a_single_local_node),
        cmocka_unit_test(every_flag_sets_its_key),
        cmocka_unit_test(advertise_follows_gossip_unless_set),
        cmocka_unit_test(bad_flags_name_the_key_and_the_problem),
        cmocka_unit_test(gossip_timings_are_options),
        cmocka_unit_test(files_that_cannot_be_read_are_refused),
        cmocka_unit_test(yaml_keys_are_the_long_options),
        cmocka_unit_test(certificates_pair_with_keys_by_position),
        cmocka_unit_test(dns_check_options),
        cmocka_unit_test(bad_yaml_names_file_line_key_and_problem),
        cmocka_unit_test(daemon_exits_with_one_line_on_bad_input),
        cmocka_unit_test(daemon_reports_a_taken_port),
        cmocka_unit_test(listeners_repeat_as_flags_and_yaml_lists),
        cmocka_unit_test(overlapping_listeners_are_refused),
        cmocka_unit_test(remaining_keys_set_and_refuse),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
