/*
 * test_fqdn_dns.c - a real webgw serves an fqdn proxy only while its DNS points at the fleet.
 * The DNS is a stub server in this test (UDP on 127.0.0.1, an ephemeral port) whose table the
 * test changes; the daemon asks it (--dns-server) every second (--dns-interval 1). The node
 * listens on 127.0.0.1, so 127.0.0.1 is a fleet address; 203.0.113.10 is one by --fleet-addr;
 * 127.0.0.2 is one while a second node listening there is a member.
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

#include "dns_stub.h"
#include "harness.h"
#include "node/node.h"

#define FQDN "www.example.org"

static struct nt_node node;
static struct nt_backend *be;
static struct nt_dns *dns;
static char envkey[400];

static int setup(void **state)
{
    char port[16];

    dns = nt_dns_start();
    nt_dns_set(dns, FQDN, NT_DNS_A, "127.0.0.1");
    be = nt_backend_start("127.0.0.19", "fqdn-backend", 0);
    snprintf(port, sizeof(port), "127.0.0.1:%d", nt_dns_port(dns));
    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    const char *extra[] = {"--allow-loopback-backends",
                           "--dns-server",
                           port,
                           "--dns-interval",
                           "1",
                           "--fleet-addr",
                           "203.0.113.10",
                           NULL};
    return nt_node_start(&node, "fqdn", "127.0.0.1", extra);
}

static int teardown(void **state)
{
    nt_node_stop(&node, SIGTERM, 10000);
    nt_backend_stop(be);
    nt_dns_stop(dns);
    nt_cleanup();
    return 0;
}

static int get_status(const char *host)
{
    char body[4096];
    int st = nt_get("127.0.0.1", node.http_port, host, "/", body, sizeof(body));
    if (st == 200 && !strstr(body, "fqdn-backend"))
        return -1;
    return st;
}

struct want {
    const char *host;
    int status;
};

static bool status_is(void *ctx)
{
    struct want *w = ctx;
    return get_status(w->host) == w->status;
}

/* Waits up to timeout_ms for host to answer `status`; 1 s checks, so 3 s is plenty. */
static bool becomes(const char *host, int status, int timeout_ms)
{
    struct want w = {host, status};
    return nt_wait(status_is, &w, timeout_ms);
}

static bool api_has(const char *path, const char *text)
{
    struct ctl_response r;
    bool found = nt_api(&node, "GET", path, NULL, NULL, 0, &r) == 200 && strstr(r.body, text);
    ctl_response_free(&r);
    return found;
}

struct api_text {
    const char *path, *text;
};

static bool api_text_present(void *arg)
{
    const struct api_text *t = arg;
    return api_has(t->path, t->text);
}

/* The check runs after the API answered: its event appears within one lookup (3 s is plenty). */
static bool api_comes_to_have(const char *path, const char *text)
{
    struct api_text t = {path, text};
    return nt_wait(api_text_present, &t, 3000);
}

static void fqdn(const char *name, char *out, size_t cap)
{
    char backend[64], err[4096];
    const char *env[] = {envkey, NULL};

    snprintf(backend, sizeof(backend), "http://127.0.0.19:%d", nt_backend_port(be));
    const char *cmd[] = {"webgwctl", "--api",     node.api_url, "--json", "fqdn",
                         name,       "--backend", backend,      NULL};
    assert_int_equal(nt_run(cmd, env, out, cap, err, sizeof(err)), 0);
}

static void served_only_while_dns_points_at_the_fleet(void **state)
{
    char out[4096], err[4096];
    const char *env[] = {envkey, NULL};
    const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};

    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    fqdn(FQDN, out, sizeof(out));
    /* pointed at this node: served */
    assert_true(becomes(FQDN, 200, 3000));
    assert_true(nt_dns_queries(dns) > 0);

    /* repointed elsewhere: 404 within the check interval (1 s, plus the lookup) */
    nt_dns_set(dns, FQDN, NT_DNS_A, "192.0.2.1");
    assert_true(becomes(FQDN, 404, 3000));
    assert_true(api_has("/api/v1/events",
                        FQDN " no longer served: " FQDN " is 192.0.2.1, not a fleet address"));
    assert_true(api_has("/metrics", "webgw_fqdn_route_changes_total{change=\"removed\"} 1"));
    assert_true(api_has("/metrics", "webgw_fqdns{served=\"false\"} 1"));
    /* the record itself stays held and replicated: only the route went, and the name's view
     * says why */
    assert_true(api_has("/api/v1/names/" FQDN, "\"served\":false"));
    assert_true(api_has("/api/v1/names/" FQDN, "192.0.2.1, not a fleet address"));

    /* pointed back: served again */
    nt_dns_set(dns, FQDN, NT_DNS_A, "127.0.0.1");
    assert_true(becomes(FQDN, 200, 3000));
    assert_true(api_has("/metrics", "webgw_fqdn_route_changes_total{change=\"restored\"} 1"));

    /* an operator fleet address counts, and so does a CNAME into --domain (localhost) */
    nt_dns_set(dns, FQDN, NT_DNS_A, "203.0.113.10");
    nt_dns_set(dns, FQDN, NT_DNS_A, "192.0.2.1");
    assert_true(becomes(FQDN, 404, 3000));
    nt_dns_set(dns, FQDN, NT_DNS_A, "203.0.113.10");
    assert_true(becomes(FQDN, 200, 3000));
    nt_dns_set(dns, FQDN, NT_DNS_CNAME, "edge.localhost");
    usleep(1500000);
    assert_int_equal(get_status(FQDN), 200);
    nt_dns_set(dns, FQDN, 0, NULL); /* NXDOMAIN */
    assert_true(becomes(FQDN, 404, 3000));
}

static void a_new_fqdn_waits_for_its_check(void **state)
{
    char out[4096];

    /* a name this DNS never pointed anywhere: accepted (202), told why, never routed */
    fqdn("shop.example.net", out, sizeof(out));
    if (!strstr(out, "served once its DNS points at the fleet"))
        fprintf(stderr, "webgwctl said: %s\n", out);
    assert_non_null(strstr(out, "served once its DNS points at the fleet"));
    assert_true(api_comes_to_have("/api/v1/events",
                                  "shop.example.net not served until its DNS points at the fleet: "
                                  "shop.example.net: no such domain"));
    assert_int_equal(get_status("shop.example.net"), 404);
    /* its DNS appears: the periodic check picks it up */
    nt_dns_set(dns, "shop.example.net", NT_DNS_A, "127.0.0.1");
    assert_true(becomes("shop.example.net", 200, 3000));
}

/* The fleet is every alive member's addresses: an fqdn pointed at another member is served
 * here while that member lives, and no longer once it left. */
static void another_members_address_counts_while_it_is_alive(void **state)
{
    struct nt_node peer;
    char seed[64], out[4096];

    snprintf(seed, sizeof(seed), "127.0.0.1:%d", node.gossip_port);
    const char *extra[] = {"--allow-loopback-backends", "--join", seed, NULL};
    assert_int_equal(nt_node_start(&peer, "peer", "127.0.0.2", extra), 0);
    nt_dns_set(dns, "app.example.com", NT_DNS_A, "127.0.0.2");
    fqdn("app.example.com", out, sizeof(out));
    assert_true(becomes("app.example.com", 200, 5000));
    assert_int_equal(nt_node_stop(&peer, SIGTERM, 10000), 0);
    assert_true(becomes("app.example.com", 404, 5000));
    assert_true(api_has("/api/v1/events", "app.example.com no longer served: app.example.com is "
                                          "127.0.0.2, not a fleet address"));
}

static bool checks_failed(void *ctx)
{
    return !api_has("/metrics", "webgw_fqdn_dns_checks_total{result=\"failed\"} 0\n");
}

static void a_failing_resolver_changes_nothing(void **state)
{
    /* the stub stops answering: checks fail (counted), the served fqdn stays served */
    nt_dns_set(dns, FQDN, NT_DNS_A, "127.0.0.1");
    assert_true(becomes(FQDN, 200, 3000));
    nt_dns_stop(dns);
    dns = NULL;
    /* a query in flight when the stub stopped waits out c-ares' 2 s timeout first */
    assert_true(nt_wait(checks_failed, NULL, 8000));
    assert_int_equal(get_status(FQDN), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(served_only_while_dns_points_at_the_fleet),
        cmocka_unit_test(a_new_fqdn_waits_for_its_check),
        cmocka_unit_test(another_members_address_counts_while_it_is_alive),
        cmocka_unit_test(a_failing_resolver_changes_nothing),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
