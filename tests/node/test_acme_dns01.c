/*
 * test_acme_dns01.c - a wildcard certificate for the fleet through its own DNS, against
 * Debian's pebble.
 *
 * Two gateways on 127.0.0.51 and .52 with --dns-listen, --acme-wildcard and a cluster key.
 * pebble resolves through the gateway that does NOT order "*.gw.test" (-dnsserver), so its
 * DNS-01 lookup of TXT _acme-challenge.gw.test is only answered because the TXT value came to
 * that gateway through gossip. Then both gateways serve a name of the domain with the
 * wildcard, verified against pebble's root, and the TXT record is visible with dig.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "acme/acme.h"
#include "tests/node/harness.h"
#include "tests/proxy/pebble_util.h"

#define NODES 2

static struct nt_node nodes[NODES];
static struct pebble pebble;
static bool pebble_up;
static char out[16384];

static char env_key[400], ctl_out[4096], ctl_err[4096];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, ctl_out, sizeof(ctl_out), ctl_err,                \
           sizeof(ctl_err), __VA_ARGS__)

static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *p;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    if ((p = popen(cmd, "r")) == NULL)
        return -1;
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    return pclose(p);
}

/* Whether node n's HTTPS serves `host` with a certificate that verifies against pebble's
 * root for that host name: for a name nobody exposed, only the wildcard can. */
static bool serves_wildcard(const struct nt_node *n, const char *host, const char *root)
{
    sh("echo | timeout 5 openssl s_client -connect %s:%d -servername %s -CAfile %s "
       "-verify_hostname %s 2>/dev/null | grep -E 'Verify return code|BEGIN CERTIFICATE'",
       n->ip, n->https_port, host, root, host);
    /* s_client says 0 (ok) also when no certificate came at all: require one */
    return strstr(out, "BEGIN CERTIFICATE") && strstr(out, "Verify return code: 0 (ok)");
}

static void a_wildcard_certificate_through_the_fleets_dns(void **state)
{
    const char *ips[NODES] = {"127.0.0.51", "127.0.0.52"};
    char keyfile[300], listen[NODES][64], join[64], ids[NODES][64], root[300], dns[64];
    const char *idp[NODES];
    int dns_port[NODES];

    snprintf(keyfile, sizeof(keyfile), "%s/cluster.key", nt_tmpdir());
    tt_write_file(keyfile, "q1zQmR2mYJx5Yg8c1pXvkq0nWm3l7rT2pX9c4mDkJfA=\n");
    /* fixed node ids (written into the data dirs before start), so the test knows which
     * gateway orders "*.gw.test" and points pebble's resolver at the other one */
    for (int i = 0; i < NODES; i++) {
        char path[400];
        snprintf(ids[i], sizeof(ids[i]), "%032x", 0xd0100 + i);
        idp[i] = ids[i];
        snprintf(path, sizeof(path), "dns01-%d/node-id", i + 1);
        sh("mkdir -p %s/dns01-%d", nt_tmpdir(), i + 1);
        snprintf(path, sizeof(path), "dns01-%d/node-id", i + 1);
        nt_write_tmp(path, ids[i]);
        dns_port[i] = nt_free_port(ips[i]);
        snprintf(listen[i], sizeof(listen[i]), "%s:%d", ips[i], dns_port[i]);
    }
    long orderer = acme_orderer("*.gw.test", idp, NODES);
    int resolver = (int)(1 - orderer);
    assert_true(orderer == 0 || orderer == 1);
    snprintf(dns, sizeof(dns), "%s", listen[resolver]);
    pebble_start_dns(&pebble, pebble_free_port(), dns);
    pebble_up = true;
    for (int i = 0; i < NODES; i++) {
        char name[16];
        snprintf(name, sizeof(name), "dns01-%d", i + 1);
        const char *extra[] = {"--allow-loopback-backends",
                               "--domain",
                               "gw.test",
                               "--cluster-key",
                               keyfile,
                               "--dns-listen",
                               listen[i],
                               "--acme-directory",
                               pebble.directory,
                               "--acme-ca-file",
                               pebble.ca_file,
                               "--acme-wildcard",
                               i ? "--join" : NULL,
                               join,
                               NULL};
        assert_int_equal(nt_node_start(&nodes[i], name, ips[i], extra), 0);
        if (i == 0)
            snprintf(join, sizeof(join), "%s:%d", ips[0], nodes[0].gossip_port);
    }

    /* two names of the domain; neither gets its own order: the wildcard covers them */
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    assert_int_equal(ctl(nodes[0].api_url, "keygen", NULL), 0);
    const char *names[] = {"shop", "blog"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ctl(nodes[0].api_url, "reserve", names[i], NULL), 0);
        assert_int_equal(
            ctl(nodes[0].api_url, "expose", names[i], "--backend", "http://127.0.0.55:9", NULL), 0);
    }
    /* pebble's root, to verify what the gateways serve */
    char *pem = pebble_root(&pebble);
    snprintf(root, sizeof(root), "%s/pebble-root.pem", nt_tmpdir());
    tt_write_file(root, pem);
    free(pem);
    bool ok[NODES] = {false, false};
    for (int t = 0; t < 300 && !(ok[0] && ok[1]); t++) { /* pebble validates in seconds */
        for (int i = 0; i < NODES; i++)
            ok[i] = ok[i] || serves_wildcard(&nodes[i], "shop.gw.test", root);
        usleep(100000);
    }
    if (!(ok[0] && ok[1])) {
        sh("cat %s/pebble.log | tail -20", pebble.dir);
        fail_msg("wildcard not served by both (%d %d); pebble log:\n%s", ok[0], ok[1], out);
    }
    assert_true(serves_wildcard(&nodes[1], "blog.gw.test", root));
    sh("cat %s/dns01-1.log %s/dns01-2.log | grep -c 'ordering a certificate for'", nt_tmpdir(),
       nt_tmpdir());
    assert_int_equal(atoi(out), 1); /* one order in the fleet: the wildcard */
    /* the TXT record the CA read, still held (until it expires) on the resolving gateway */
    sh("dig +short @%s -p %d _acme-challenge.gw.test TXT", ips[resolver], dns_port[resolver]);
    assert_true(strlen(out) >= ACME_TXT_LEN + 2);
}

static int teardown(void **state)
{
    for (int i = 0; i < NODES; i++)
        if (nodes[i].pid)
            nt_node_stop(&nodes[i], SIGTERM, 10000);
    if (pebble_up)
        pebble_stop(&pebble);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_wildcard_certificate_through_the_fleets_dns),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
