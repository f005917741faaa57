/*
 * test_tls_proxy.c - the gateway's HTTPS port end to end: proxy_start with a tls_store,
 * real OpenSSL clients on loopback, HTTP backends from the proxy harness and a TLS backend
 * with its own certificate for passthrough.
 *
 * What a user sees: an HTTPS request to NAME.DOMAIN answered by a backend that is told
 * X-Forwarded-Proto: https, keep-alive inside TLS; a passthrough name where the client sees
 * the backend's own certificate; alerts for names not served, for a name without a
 * certificate and for malformed hellos; HTTP-01 answers on the HTTP port; and a certificate
 * reload under a stream of HTTPS requests with none failing.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>

#include "harness.h"
#include "acme/acme.h"
#include "proxy/tls_internal.h"
#include "tests/proxy/tls_test_util.h"

/* ---- a TLS backend with its own certificate (the passthrough target) ------------------- */

struct tls_backend {
    int fd, port;
    SSL_CTX *ctx;
    atomic_int stop;
    atomic_int handshakes;
    pthread_t thread;
};

static void *tls_backend_main(void *arg)
{
    struct tls_backend *b = arg;
    while (!atomic_load(&b->stop)) {
        struct pollfd p = {b->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int c = accept(b->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = {5, 0};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        SSL *ssl = SSL_new(b->ctx);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
            char buf[4096];
            int n;
            atomic_fetch_add(&b->handshakes, 1);
            while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0)
                SSL_write(ssl, buf, n);
            SSL_shutdown(ssl);
        }
        ERR_clear_error();
        SSL_free(ssl);
        close(c);
    }
    return NULL;
}

static int listen_any(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- fixture --------------------------------------------------------------------------- */

struct fixture {
    struct tt_ca ca, backend_ca;
    struct tt_leaf wild, wild2;
    struct tls_store *store;
    struct acme_challenges *acme;
    struct state_routes *routes;
    struct tb_server *b1, *b2;
    struct tls_backend tb;
    struct proxy *p;
    uint16_t http, https;
    SSL_CTX *client;
};

static void route(struct state_routes *routes, const char *host, const uint16_t *ports, int n,
                  bool passthrough)
{
    struct state_route r;
    memset(&r, 0, sizeof(r));
    snprintf(r.host, sizeof(r.host), "%s", host);
    snprintf(r.name, sizeof(r.name), "%.*s", (int)strcspn(host, "."), host);
    r.backend_count = (uint8_t)n;
    r.version = 1;
    r.tls_passthrough = passthrough;
    for (int i = 0; i < n; i++) {
        r.backends[i].family = 4;
        r.backends[i].addr[0] = 127;
        r.backends[i].addr[3] = 1;
        r.backends[i].port = ports[i];
    }
    assert_int_equal(state_routes_set(routes, &r), 0);
}

static void install(struct tls_store *store, const struct tt_leaf *leaf)
{
    char err[TLS_ERR_MAX];
    struct tls_cert_set *set = tls_cert_set_new();
    assert_int_equal(tls_cert_set_add_pem(set, leaf->cert_pem, strlen(leaf->cert_pem),
                                          leaf->key_pem, strlen(leaf->key_pem), "test", err,
                                          sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_store_install(store, set, err, sizeof(err)), TLS_OK);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    struct tt_leaf own;
    char err[TLS_ERR_MAX];

    signal(SIGPIPE, SIG_IGN);
    tt_ca_new(&f->ca, "gateway CA");
    tt_ca_new(&f->backend_ca, "backend CA");
    tt_leaf_issue(&f->ca, "wild", "DNS:*.gw.test", 30, &f->wild);
    tt_leaf_issue(&f->ca, "wild2", "DNS:*.gw.test", 60, &f->wild2);
    f->store = tls_store_new(err, sizeof(err));
    install(f->store, &f->wild);
    f->acme = acme_challenges_new();

    /* the passthrough backend: its own CA and certificate, never seen by the gateway */
    tt_leaf_issue(&f->backend_ca, "backend-own", "DNS:tls.gw.test", 30, &own);
    f->tb.ctx = SSL_CTX_new(TLS_server_method());
    BIO *cb = BIO_new_mem_buf(own.cert_pem, -1), *kb = BIO_new_mem_buf(own.key_pem, -1);
    X509 *cert = PEM_read_bio_X509(cb, NULL, NULL, NULL);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
    SSL_CTX_use_certificate(f->tb.ctx, cert);
    SSL_CTX_use_PrivateKey(f->tb.ctx, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    tt_leaf_free(&own);
    f->tb.fd = listen_any(&f->tb.port);
    pthread_create(&f->tb.thread, NULL, tls_backend_main, &f->tb);

    f->b1 = tb_start(1);
    f->b2 = tb_start(2);
    f->routes = state_routes_new();
    uint16_t ports[2] = {tb_port(f->b1), tb_port(f->b2)};
    route(f->routes, "app.gw.test", ports, 2, false);
    uint16_t tport = (uint16_t)f->tb.port;
    route(f->routes, "tls.gw.test", &tport, 1, true);
    route(f->routes, "nocert.other.test", ports, 1, false);

    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 2;
    snprintf(cfg.domain, sizeof(cfg.domain), "gw.test");
    cfg.https_count = 1;
    proxy_parse_addr("127.0.0.1:0", &cfg.https[0].addr, NULL, 0);
    cfg.tls = f->store;
    cfg.acme = f->acme;
    f->p = th_proxy(f->routes, &cfg);
    f->http = proxy_http_port(f->p);
    f->https = proxy_https_port(f->p);
    assert_true(f->https != 0 && f->https != f->http);
    f->client = tt_client_ctx(f->ca.cert_pem);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    proxy_stop(f->p);
    atomic_store(&f->tb.stop, 1);
    pthread_join(f->tb.thread, NULL);
    close(f->tb.fd);
    SSL_CTX_free(f->tb.ctx);
    tb_free(f->b1);
    tb_free(f->b2);
    state_routes_free(f->routes);
    tls_store_free(f->store);
    acme_challenges_free(f->acme);
    SSL_CTX_free(f->client);
    tt_leaf_free(&f->wild);
    tt_leaf_free(&f->wild2);
    tt_ca_free(&f->ca);
    tt_ca_free(&f->backend_ca);
    free(f);
    return 0;
}

/* A TLS connection to the gateway's HTTPS port; NULL when the handshake fails (reason in
 * *reason). */
static SSL *tls_connect(SSL_CTX *ctx, uint16_t port, const char *sni, unsigned long *reason)
{
    int fd = tc_connect(port);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (sni) {
        SSL_set_tlsext_host_name(ssl, sni);
        SSL_set1_host(ssl, sni);
    }
    if (SSL_connect(ssl) != 1) {
        if (reason)
            *reason = ERR_GET_REASON(ERR_peek_error());
        ERR_clear_error();
        SSL_free(ssl);
        close(fd);
        return NULL;
    }
    return ssl;
}

static void tls_close(SSL *ssl)
{
    int fd = SSL_get_fd(ssl);
    SSL_shutdown(ssl);
    SSL_free(ssl);
    close(fd);
}

/* One HTTP/1.1 request over `ssl`; the whole response (Content-Length framing) into buf. */
static int https_get(SSL *ssl, const char *host, const char *path, char *buf, size_t cap)
{
    char req[512];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
    size_t got = 0;
    if (SSL_write(ssl, req, n) != n)
        return 0;
    for (;;) {
        int r = SSL_read(ssl, buf + got, (int)(cap - 1 - got));
        if (r <= 0)
            return 0;
        got += (size_t)r;
        buf[got] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "content-length:");
        if (end && cl && got >= (size_t)(end + 4 - buf) + (size_t)atol(cl + 15))
            break;
    }
    return atoi(buf + 9);
}

static void test_https_request_reaches_backend_as_https(void **state)
{
    struct fixture *f = *state;
    char resp[8192];
    SSL *ssl = tls_connect(f->client, f->https, "app.gw.test", NULL);

    assert_non_null(ssl);
    assert_int_equal(SSL_get_verify_result(ssl), X509_V_OK);
    assert_int_equal(https_get(ssl, "app.gw.test", "/headers", resp, sizeof(resp)), 200);
    assert_non_null(strcasestr(resp, "x-forwarded-proto: https"));
    assert_non_null(strcasestr(resp, "x-forwarded-host: app.gw.test"));
    /* keep-alive inside TLS: a second request on the same connection */
    assert_int_equal(https_get(ssl, "app.gw.test", "/id", resp, sizeof(resp)), 200);
    assert_non_null(strstr(resp, "backend-"));
    tls_close(ssl);
}

static void test_passthrough_client_sees_the_backend_certificate(void **state)
{
    struct fixture *f = *state;
    SSL_CTX *ctx = tt_client_ctx(f->backend_ca.cert_pem);
    char cn[64], buf[32];
    struct tls_store_stats st;
    SSL *ssl = tls_connect(ctx, f->https, "tls.gw.test", NULL);

    assert_non_null(ssl);
    assert_int_equal(SSL_get_verify_result(ssl), X509_V_OK);
    tt_peer_cn(ssl, cn, sizeof(cn));
    assert_string_equal(cn, "backend-own"); /* not the gateway's wildcard */
    assert_int_equal(SSL_write(ssl, "ping", 4), 4);
    assert_int_equal(SSL_read(ssl, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "ping", 4);
    tls_close(ssl);
    assert_true(atomic_load(&f->tb.handshakes) >= 1);
    tls_store_get_stats(f->store, &st);
    assert_true(st.passthrough >= 1);

    /* the gateway's own CA cannot verify it: the bytes were not terminated here */
    ssl = tls_connect(f->client, f->https, "tls.gw.test", NULL);
    assert_null(ssl);
    SSL_CTX_free(ctx);
}

static void test_unserved_names_get_an_alert_and_are_counted(void **state)
{
    struct fixture *f = *state;
    struct tls_store_stats before, after;
    unsigned long reason = 0;

    tls_store_get_stats(f->store, &before);
    assert_null(tls_connect(f->client, f->https, "unknown.gw.test", &reason));
    assert_int_equal(reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    reason = 0;
    assert_null(tls_connect(f->client, f->https, "nocert.other.test", &reason));
    assert_int_equal(reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    reason = 0;
    assert_null(tls_connect(f->client, f->https, NULL, &reason));
    assert_int_equal(reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    tls_store_get_stats(f->store, &after);
    assert_int_equal(after.refused - before.refused, 3);

    /* a malformed hello: decode_error, then close; plain HTTP: just a close */
    uint8_t hello[4096];
    size_t n = tt_client_hello("app.gw.test", NULL, 0, 0, hello, sizeof(hello));
    /* the handshake claims one byte less than its record holds: a trailing byte */
    size_t hlen = ((size_t)hello[6] << 16 | (size_t)hello[7] << 8 | hello[8]) - 1;
    hello[6] = (uint8_t)(hlen >> 16), hello[7] = (uint8_t)(hlen >> 8), hello[8] = (uint8_t)hlen;
    int fd = tc_connect(f->https);
    tc_send(fd, (const char *)hello, n);
    uint8_t reply[16];
    ssize_t got = recv(fd, reply, sizeof(reply), 0);
    assert_int_equal(got, 7);
    assert_memory_equal(reply, "\x15\x03\x03\x00\x02\x02\x32", 7);
    assert_true(tc_closed(fd, 2000));
    close(fd);
    fd = tc_connect(f->https);
    tc_sends(fd, "GET / HTTP/1.1\r\nHost: app.gw.test\r\n\r\n");
    assert_true(tc_closed(fd, 2000));
    close(fd);
    tls_store_get_stats(f->store, &after);
    assert_int_equal(after.hello_malformed - before.hello_malformed, 1);
    assert_int_equal(after.not_tls - before.not_tls, 1);

    /* and the gateway still serves */
    char resp[4096];
    SSL *ssl = tls_connect(f->client, f->https, "app.gw.test", NULL);
    assert_non_null(ssl);
    assert_int_equal(https_get(ssl, "app.gw.test", "/id", resp, sizeof(resp)), 200);
    tls_close(ssl);
}

static void test_acme_challenge_answered_on_the_http_port(void **state)
{
    struct fixture *f = *state;
    char err[ACME_ERR_MAX];
    const char *ka = "tok-42.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ";
    struct tc_resp r;

    assert_int_equal(acme_challenges_put(f->acme, "tok-42", ka, time(NULL) + 60, err, sizeof(err)),
                     ACME_OK);
    /* any Host: the CA asks for the name being validated, routed or not yet */
    assert_int_equal(tc_get(f->http, "new.gw.test", "/.well-known/acme-challenge/tok-42", &r), 200);
    assert_int_equal(r.body_len, strlen(ka) + 1); /* trailing newline: CAs trim it */
    assert_memory_equal(r.body, ka, strlen(ka));
    tc_resp_free(&r);
    assert_int_equal(tc_get(f->http, "app.gw.test", "/.well-known/acme-challenge/nope", &r), 404);
    tc_resp_free(&r);
    /* other paths still go to the backend */
    assert_int_equal(tc_get(f->http, "app.gw.test", "/id", &r), 200);
    tc_resp_free(&r);
}

struct load {
    struct fixture *f;
    atomic_int stop;
    atomic_int ok, failed;
};

static void *load_main(void *arg)
{
    struct load *l = arg;
    char resp[4096];
    while (!atomic_load(&l->stop)) {
        SSL *ssl = tls_connect(l->f->client, l->f->https, "app.gw.test", NULL);
        if (ssl && https_get(ssl, "app.gw.test", "/id", resp, sizeof(resp)) == 200)
            atomic_fetch_add(&l->ok, 1);
        else
            atomic_fetch_add(&l->failed, 1);
        if (ssl)
            tls_close(ssl);
    }
    return NULL;
}

static void test_certificate_reload_under_load_fails_no_request(void **state)
{
    struct fixture *f = *state;
    struct load l = {.f = f};
    pthread_t t[2];
    time_t expiry;

    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, load_main, &l);
    for (int i = 0; i < 40; i++) {
        install(f->store, i % 2 ? &f->wild : &f->wild2);
        usleep(10000);
    }
    atomic_store(&l.stop, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    fprintf(stderr, "reload under load: %d requests ok, %d failed, 40 reloads\n",
            atomic_load(&l.ok), atomic_load(&l.failed));
    assert_int_equal(atomic_load(&l.failed), 0);
    assert_true(atomic_load(&l.ok) > 10);
    assert_int_equal(tls_store_expiry(f->store, "app.gw.test", &expiry), TLS_OK);
}

static void test_http_redirects_to_https_except_acme_paths(void **state)
{
    struct fixture *f = *state;
    struct proxy_config cfg;
    char err[ACME_ERR_MAX];
    struct tc_resp r;

    /* a second gateway on the same routes, with the redirect on */
    proxy_config_init(&cfg);
    cfg.workers = 1;
    snprintf(cfg.domain, sizeof(cfg.domain), "gw.test");
    cfg.acme = f->acme;
    cfg.https_redirect = true;
    cfg.https_redirect_port = 8443;
    struct proxy *p = th_proxy(f->routes, &cfg);
    uint16_t port = proxy_http_port(p);

    assert_int_equal(tc_get(port, "app.gw.test", "/a/b?c=d", &r), 308);
    assert_non_null(strstr(r.head, "Location: https://app.gw.test:8443/a/b?c=d\r\n"));
    tc_resp_free(&r);
    /* the CA's validation must still get its answer over plain HTTP */
    assert_int_equal(acme_challenges_put(f->acme, "tok-r",
                                         "tok-r.abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ",
                                         time(NULL) + 60, err, sizeof(err)),
                     ACME_OK);
    assert_int_equal(tc_get(port, "app.gw.test", "/.well-known/acme-challenge/tok-r", &r), 200);
    tc_resp_free(&r);
    /* names not served are not redirected anywhere */
    assert_int_equal(tc_get(port, "unknown.gw.test", "/", &r), 404);
    tc_resp_free(&r);
    proxy_stop(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_https_request_reaches_backend_as_https),
        cmocka_unit_test(test_passthrough_client_sees_the_backend_certificate),
        cmocka_unit_test(test_unserved_names_get_an_alert_and_are_counted),
        cmocka_unit_test(test_acme_challenge_answered_on_the_http_port),
        cmocka_unit_test(test_certificate_reload_under_load_fails_no_request),
        cmocka_unit_test(test_http_redirects_to_https_except_acme_paths),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
