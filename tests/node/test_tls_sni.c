/*
 * test_tls_sni.c - one daemon with two operator certificates (--tls-cert/--tls-key given
 * twice, for different hosts): each client gets the certificate of the host it named in SNI,
 * and both names are proxied over HTTPS. Certificates come from the openssl CLI.
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

#include "harness.h"
#include "node/node.h"

static struct nt_node node;
static struct nt_backend *be_alpha, *be_beta;
static char cert[2][300], key[2][300];

/* Runs a shell command and returns its stdout (malloc'd); *status is pclose's. */
static char *sh(int *status, const char *fmt, ...)
{
    char cmd[2048];
    char *out = calloc(1, 65536);
    size_t len = 0;
    va_list ap;
    FILE *p;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    assert_non_null(p);
    for (size_t n; (n = fread(out + len, 1, 65535 - len, p)) > 0;)
        len += n;
    *status = pclose(p);
    return out;
}

/* A self-signed certificate whose CN and only SAN are `host`. */
static void make_cert(int i, const char *host)
{
    int st;
    char *out;

    snprintf(cert[i], sizeof(cert[i]), "%s/cert%d.pem", nt_tmpdir(), i);
    snprintf(key[i], sizeof(key[i]), "%s/key%d.pem", nt_tmpdir(), i);
    out = sh(&st,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
             "-subj /CN=%s -addext subjectAltName=DNS:%s -keyout %s -out %s 2>&1",
             host, host, key[i], cert[i]);
    if (st != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(st, 0);
    free(out);
}

/* The subject of the certificate the gateway presents to a client naming `host`. */
static char *served_subject(const char *host)
{
    int st;
    return sh(&st,
              "openssl s_client -connect 127.0.0.1:%d -servername %s </dev/null 2>/dev/null "
              "| openssl x509 -noout -subject 2>/dev/null",
              node.https_port, host);
}

static int setup(void **state)
{
    make_cert(0, "alpha.localhost");
    make_cert(1, "beta.localhost");
    be_alpha = nt_backend_start("127.0.0.16", "alpha-backend", 0);
    be_beta = nt_backend_start("127.0.0.17", "beta-backend", 0);
    const char *extra[] = {"--allow-loopback-backends",
                           "--tls-cert",
                           cert[0],
                           "--tls-key",
                           key[0],
                           "--tls-cert",
                           cert[1],
                           "--tls-key",
                           key[1],
                           NULL};
    return nt_node_start(&node, "sni", "127.0.0.1", extra);
}

static int teardown(void **state)
{
    nt_node_stop(&node, SIGTERM, 10000);
    nt_backend_stop(be_alpha);
    nt_backend_stop(be_beta);
    nt_cleanup();
    return 0;
}

static void expose(const char *name, struct nt_backend *be)
{
    char envkey[400], backend[64], out[4096], err[4096];
    const char *env[] = {envkey, NULL};

    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(backend, sizeof(backend), "http://%s:%d", be == be_alpha ? "127.0.0.16" : "127.0.0.17",
             nt_backend_port(be));
    const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", name, NULL};
    const char *cmd[] = {"webgwctl", "--api",     node.api_url, "expose",
                         name,       "--backend", backend,      NULL};
    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(cmd, env, out, sizeof(out), err, sizeof(err)), 0);
}

/* Fetches https://HOST/ verifying the chain against `ca` (the host's own self-signed
 * certificate): it succeeds only when the gateway presented that certificate. */
static bool fetched_with(const char *host, const char *ca, const char *want)
{
    bool ok = false;
    int st;

    for (int i = 0; i < 40 && !ok; i++) {
        char *body = sh(&st,
                        "curl -s --max-time 3 --cacert %s --resolve %s:%d:127.0.0.1 "
                        "https://%s:%d/",
                        ca, host, node.https_port, host, node.https_port);
        ok = strstr(body, want) != NULL;
        free(body);
        if (!ok)
            usleep(50000);
    }
    return ok;
}

static void each_client_sees_the_certificate_of_its_host(void **state)
{
    char envkey[400], out[4096], err[4096];
    const char *env[] = {envkey, NULL};
    const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
    char *subject;

    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    expose("alpha", be_alpha);
    expose("beta", be_beta);

    subject = served_subject("alpha.localhost");
    assert_non_null(strstr(subject, "CN = alpha.localhost"));
    free(subject);
    subject = served_subject("beta.localhost");
    assert_non_null(strstr(subject, "CN = beta.localhost"));
    free(subject);

    /* a verifying client trusts only its host's certificate: both succeed end to end */
    assert_true(fetched_with("alpha.localhost", cert[0], "alpha-backend"));
    assert_true(fetched_with("beta.localhost", cert[1], "beta-backend"));
    /* and the other host's certificate does not verify (the test can fail) */
    assert_false(fetched_with("beta.localhost", cert[0], "beta-backend"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_client_sees_the_certificate_of_its_host),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
