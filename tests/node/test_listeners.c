/*
 * test_listeners.c - the proxy's listen addresses as a user sees them: several --http
 * addresses at once, IPv6 loopback, a [::] listener that serves IPv4 clients too (dual-stack)
 * unless /v6only, a bind failure on an --https address labelled https, and the warning when
 * HTTPS has no certificate.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node node;
static struct nt_backend *backend;
static int port_v4, port_v6, port_dual, port_v6only;

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
    return nt_get("127.0.0.1", port_v4, "lst.localhost", "/", body, sizeof(body)) == 200;
}

/* One node, four --http addresses: 127.0.0.1, [::1], a dual-stack [::] and an IPv6-only [::]. A
 * served name answers on each, over each family the address takes. */
static void every_http_address_serves_its_families(void **state)
{
    char envkey[400], target[64], out[4096], err[4096], body[128];
    char v4[64], v6[64], dual[64], v6only[64];
    const char *env[] = {envkey, NULL};
    const char *extra[] = {"--allow-loopback-backends",
                           "--http",
                           v4,
                           "--http",
                           v6,
                           "--http",
                           dual,
                           "--http",
                           v6only,
                           NULL};

    port_v4 = nt_free_port("127.0.0.1");
    snprintf(v4, sizeof(v4), "127.0.0.1:%d", port_v4);
    port_v6 = nt_free_port("::1");
    port_dual = nt_free_port("127.0.0.1");
    port_v6only = nt_free_port("::1");
    snprintf(v6, sizeof(v6), "[::1]:%d", port_v6);
    snprintf(dual, sizeof(dual), "[::]:%d", port_dual);
    snprintf(v6only, sizeof(v6only), "[::]:%d/v6only", port_v6only);
    backend = nt_backend_start("127.0.0.1", "lst-backend", 0);
    assert_non_null(backend);
    assert_int_equal(nt_node_start(&node, "lst", "127.0.0.1", extra), 0);
    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(target, sizeof(target), "http://127.0.0.1:%d", nt_backend_port(backend));
    const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
    const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", "lst", NULL};
    const char *expose[] = {"webgwctl", "--api",     node.api_url, "expose",
                            "lst",      "--backend", target,       NULL};
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_true(nt_wait(served, NULL, 10000));

    /* the first --http address (IPv4) and the second (IPv6 loopback) */
    assert_int_equal(nt_get("127.0.0.1", port_v4, "lst.localhost", "/", body, sizeof(body)), 200);
    assert_string_equal(body, "lst-backend\n");
    assert_int_equal(nt_get("::1", port_v6, "lst.localhost", "/", body, sizeof(body)), 200);
    assert_string_equal(body, "lst-backend\n");
    /* [::] without /v6only: IPv6 clients and IPv4 clients (as ::ffff:127.0.0.1) */
    assert_int_equal(nt_get("::1", port_dual, "lst.localhost", "/", body, sizeof(body)), 200);
    assert_int_equal(nt_get("127.0.0.1", port_dual, "lst.localhost", "/", body, sizeof(body)), 200);
    assert_string_equal(body, "lst-backend\n");
    /* [::]/v6only: IPv6 only; an IPv4 client is refused */
    assert_int_equal(nt_get("::1", port_v6only, "lst.localhost", "/", body, sizeof(body)), 200);
    assert_int_equal(nt_get("127.0.0.1", port_v6only, "lst.localhost", "/", body, sizeof(body)), 0);
}

/* No --tls-cert and no ACME: HTTPS still opens (for passthrough names) but says, once in the
 * log and in /healthz, that terminated names will fail. */
static void https_without_a_certificate_warns(void **state)
{
    struct ctl_response resp;
    char log[65536];
    const char *hit;
    FILE *f = fopen(node.log, "r");
    size_t n;

    assert_non_null(f);
    n = fread(log, 1, sizeof(log) - 1, f);
    fclose(f);
    log[n] = '\0';
    hit = strstr(log, "https: no certificate");
    assert_non_null(hit);
    assert_null(strstr(hit + 1, "https: no certificate")); /* one line */
    assert_non_null(strstr(hit, "unrecognized_name"));

    assert_int_equal(nt_api(&node, "GET", "/healthz", NULL, NULL, 0, &resp), 200);
    json_t *doc = json_loads(resp.body, 0, NULL);
    json_t *w = json_object_get(doc, "warnings");
    assert_int_equal(json_array_size(w), 1);
    assert_non_null(strstr(json_string_value(json_array_get(w, 0)), "https: no certificate"));
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    json_decref(doc);
    ctl_response_free(&resp);
}

/* A taken --https address stops the daemon with one line that says https, not http. */
static void https_bind_error_names_https(void **state)
{
    char out[4096], err[4096], api[64], http[64], gossip[64], dir[300];
    char https[64];
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    int holder = socket(AF_INET, SOCK_STREAM, 0);

    /* another program holds the port (no SO_REUSEPORT, so webgw cannot share it) */
    assert_int_equal(bind(holder, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(holder, 1), 0);
    assert_int_equal(getsockname(holder, (struct sockaddr *)&sin, &sl), 0);
    snprintf(api, sizeof(api), "127.0.0.1:%d", nt_free_port("127.0.0.1"));
    snprintf(http, sizeof(http), "127.0.0.1:%d", nt_free_port("127.0.0.1"));
    snprintf(gossip, sizeof(gossip), "127.0.0.1:%d", nt_free_port("127.0.0.1"));
    snprintf(https, sizeof(https), "127.0.0.1:%d", ntohs(sin.sin_port));
    snprintf(dir, sizeof(dir), "%s/https-taken", nt_tmpdir());
    const char *argv[] = {"webgw", "--api",    api,    "--data-dir", dir, "--http", http, "--https",
                          https,   "--gossip", gossip, "--workers",  "1", NULL};
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "https: bind 127.0.0.1 port"));
    assert_non_null(strstr(err, "in use"));
    assert_null(strstr(err, " http: "));
    close(holder);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_http_address_serves_its_families),
        cmocka_unit_test(https_without_a_certificate_warns),
        cmocka_unit_test(https_bind_error_names_https),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
