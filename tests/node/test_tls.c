/*
 * test_tls.c - HTTPS through the node: the operator's certificate (--tls-cert/--tls-key)
 * terminates TLS for NAME.DOMAIN, SIGHUP swaps in a renewed certificate without a restart,
 * a broken one is refused and the running one stays, and /metrics shows the expiry.
 * Certificates are made by the openssl CLI; clients are curl and openssl s_client.
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
static struct nt_backend *be;
static char cert[300], key[300];

/* Runs a shell command, returns its stdout (malloc'd) and sets *status. */
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

static void make_cert(const char *cn)
{
    int st;
    char *out = sh(&st,
                   "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                   "-subj /CN=%s -addext subjectAltName=DNS:sec.localhost -keyout %s -out %s "
                   "2>&1",
                   cn, key, cert);
    if (st != 0)
        fprintf(stderr, "%s", out);
    assert_int_equal(st, 0);
    free(out);
}

/* The subject of the certificate the gateway presents for sec.localhost. */
static char *served_subject(void)
{
    int st;
    return sh(&st,
              "openssl s_client -connect 127.0.0.1:%d -servername sec.localhost </dev/null "
              "2>/dev/null | openssl x509 -noout -subject 2>/dev/null",
              node.https_port);
}

static int setup(void **state)
{
    snprintf(cert, sizeof(cert), "%s/cert.pem", nt_tmpdir());
    snprintf(key, sizeof(key), "%s/key.pem", nt_tmpdir());
    make_cert("first");
    be = nt_backend_start("127.0.0.15", "tls-backend", 0);
    const char *extra[] = {"--allow-loopback-backends", "--tls-cert", cert, "--tls-key", key, NULL};
    return nt_node_start(&node, "tls", "127.0.0.1", extra);
}

static int teardown(void **state)
{
    nt_node_stop(&node, SIGTERM, 10000);
    nt_backend_stop(be);
    nt_cleanup();
    return 0;
}

static void https_terminates_with_the_operator_certificate(void **state)
{
    char envkey[400], backend[64], out[4096], err[4096];
    const char *env[] = {envkey, NULL};
    char *body, *subject;
    int st = 0;

    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(backend, sizeof(backend), "http://127.0.0.15:%d", nt_backend_port(be));
    const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
    const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", "sec", NULL};
    const char *expose[] = {"webgwctl", "--api",     node.api_url, "expose",
                            "sec",      "--backend", backend,      NULL};
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);

    for (int i = 0; i < 40; i++) {
        body = sh(&st,
                  "curl -sk --max-time 3 --resolve sec.localhost:%d:127.0.0.1 "
                  "https://sec.localhost:%d/",
                  node.https_port, node.https_port);
        if (strstr(body, "tls-backend"))
            break;
        free(body);
        body = NULL;
        usleep(50000);
    }
    assert_non_null(body);
    free(body);
    subject = served_subject();
    assert_non_null(strstr(subject, "CN = first"));
    free(subject);
}

static void sighup_swaps_the_certificate(void **state)
{
    struct ctl_response r;
    char *subject;
    bool swapped = false;

    make_cert("second");
    kill(node.pid, SIGHUP);
    for (int i = 0; i < 40 && !swapped; i++) {
        subject = served_subject();
        swapped = strstr(subject, "CN = second") != NULL;
        free(subject);
        if (!swapped)
            usleep(50000);
    }
    assert_true(swapped);

    /* a broken pair is refused; the running certificate stays */
    {
        FILE *f = fopen(key, "w");
        fputs("-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n", f);
        fclose(f);
    }
    kill(node.pid, SIGHUP);
    usleep(300000);
    subject = served_subject();
    assert_non_null(strstr(subject, "CN = second"));
    free(subject);
    assert_int_equal(nt_api(&node, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    ctl_response_free(&r);

    assert_int_equal(nt_api(&node, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "webgw_tls_certificate_expiry_seconds{file="));
    assert_non_null(strstr(r.body, "webgw_tls_connections_total{outcome=\"handshake\"} "));
    ctl_response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_terminates_with_the_operator_certificate),
        cmocka_unit_test(sighup_swaps_the_certificate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
