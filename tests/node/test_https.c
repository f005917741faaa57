/*
 * test_https.c - the webgw daemon serving HTTPS: --tls-cert/--tls-key, a name exposed
 * through webgwctl answered over TLS on --https, an unserved name refused with an alert, and
 * SIGHUP picking up a replaced certificate without a restart.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/node/harness.h"
#include "tests/proxy/tls_test_util.h"

static struct nt_node node;

/* GET / on https://IP:PORT with SNI `host`; status, body and the certificate's CN. Returns
 * the status, 0 when no answer, -1 when the handshake failed (TLS reason in *reason). */
static int https_get(SSL_CTX *ctx, const char *host, char *body, size_t cap, char *cn, size_t cnlen,
                     unsigned long *reason)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)node.https_port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), status = 0;
    struct timeval tv = {5, 0};
    char req[256], resp[8192];
    size_t got = 0;
    SSL *ssl = NULL;

    inet_pton(AF_INET, node.ip, &a.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        goto out;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, host);
    SSL_set1_host(ssl, host);
    if (SSL_connect(ssl) != 1) {
        if (reason)
            *reason = ERR_GET_REASON(ERR_peek_error());
        status = -1;
        goto out;
    }
    tt_peer_cn(ssl, cn, cnlen);
    int n =
        snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", host);
    SSL_write(ssl, req, n);
    for (;;) {
        int r = SSL_read(ssl, resp + got, (int)(sizeof(resp) - 1 - got));
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    resp[got] = '\0';
    if (got > 12 && strncmp(resp, "HTTP/1.1 ", 9) == 0)
        status = atoi(resp + 9);
    char *b = strstr(resp, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
out:
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return status;
}

static void https_serves_names_and_reloads_certificates(void **state)
{
    struct tt_ca ca;
    struct tt_leaf first, second;
    char cert[300], key[300], owner[300], env_key[320], backend[64], body[256], cn[64];
    unsigned long reason = 0;
    int st = 0;

    tt_ca_new(&ca, "https test CA");
    tt_leaf_issue(&ca, "first", "DNS:*.gw.test", 30, &first);
    tt_leaf_issue(&ca, "second", "DNS:*.gw.test", 30, &second);
    snprintf(cert, sizeof(cert), "%s/tls.crt", nt_tmpdir());
    snprintf(key, sizeof(key), "%s/tls.key", nt_tmpdir());
    tt_write_file(cert, first.cert_pem);
    tt_write_file(key, first.key_pem);
    struct nt_backend *be = nt_backend_start("127.0.0.14", "tls-backend", 0);
    const char *extra[] = {"--allow-loopback-backends",
                           "--domain",
                           "gw.test",
                           "--tls-cert",
                           cert,
                           "--tls-key",
                           key,
                           NULL};
    assert_int_equal(nt_node_start(&node, "https", "127.0.0.1", extra), 0);

    snprintf(backend, sizeof(backend), "http://127.0.0.14:%d", nt_backend_port(be));
    snprintf(owner, sizeof(owner), "%s/owner.key", nt_tmpdir());
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s", owner);
    {
        char out[4096], err[4096];
        const char *env[] = {env_key, NULL};
        const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
        const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", "shop", NULL};
        const char *expose[] = {"webgwctl", "--api",     node.api_url, "expose",
                                "shop",     "--backend", backend,      NULL};
        assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
        assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
        assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);
    }
    SSL_CTX *ctx = tt_client_ctx(ca.cert_pem);
    for (int i = 0; i < 50 && st != 200; i++) {
        st = https_get(ctx, "shop.gw.test", body, sizeof(body), cn, sizeof(cn), NULL);
        if (st != 200)
            usleep(50000);
    }
    assert_int_equal(st, 200);
    assert_string_equal(body, "tls-backend\n");
    assert_string_equal(cn, "first");

    /* with a certificate, /healthz has no HTTPS warning */
    {
        struct ctl_response resp;
        assert_int_equal(nt_api(&node, "GET", "/healthz", NULL, NULL, 0, &resp), 200);
        json_t *doc = json_loads(resp.body, 0, NULL);
        assert_int_equal(json_array_size(json_object_get(doc, "warnings")), 0);
        assert_true(json_is_array(json_object_get(doc, "warnings")));
        json_decref(doc);
        ctl_response_free(&resp);
    }

    /* a name nobody exposed: a TLS alert, not a certificate */
    assert_int_equal(https_get(ctx, "nobody.gw.test", body, sizeof(body), cn, sizeof(cn), &reason),
                     -1);
    assert_int_equal(reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);

    /* the operator replaces the files and sends SIGHUP: new handshakes get the new one */
    tt_write_file(cert, second.cert_pem);
    tt_write_file(key, second.key_pem);
    assert_int_equal(kill(node.pid, SIGHUP), 0);
    for (int i = 0; i < 50; i++) {
        st = https_get(ctx, "shop.gw.test", body, sizeof(body), cn, sizeof(cn), NULL);
        if (st == 200 && strcmp(cn, "second") == 0)
            break;
        usleep(50000);
    }
    assert_int_equal(st, 200);
    assert_string_equal(cn, "second");

    /* a broken replacement is refused and the running certificate stays */
    tt_write_file(key, first.key_pem); /* no longer matches the certificate */
    assert_int_equal(kill(node.pid, SIGHUP), 0);
    usleep(300000);
    assert_int_equal(https_get(ctx, "shop.gw.test", body, sizeof(body), cn, sizeof(cn), NULL), 200);
    assert_string_equal(cn, "second");

    assert_int_equal(nt_node_stop(&node, SIGTERM, 10000), 0);
    SSL_CTX_free(ctx);
    nt_backend_stop(be);
    tt_leaf_free(&first);
    tt_leaf_free(&second);
    tt_ca_free(&ca);
}

static int teardown(void **state)
{
    if (node.pid)
        nt_node_stop(&node, SIGKILL, 5000);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(https_serves_names_and_reloads_certificates),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, teardown);
}
