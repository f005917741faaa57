/*
 * test_acme_pebble.c - the ACME client against a real ACME server: Debian's pebble.
 *
 * The test makes its own CA and gives pebble a certificate for 127.0.0.1, runs
 * pebble-challtestsrv as a DNS server that answers 127.0.0.1 for every name, and points
 * pebble's HTTP-01 validation at a small responder in this process that answers from an
 * acme_challenges table, the way a gateway's HTTP listener does. It then proves:
 *   - a certificate for two names is ordered, validated and downloaded, and, installed in a
 *     tls_store, serves a handshake that verifies against pebble's own root;
 *   - the CA really validates through our responder: a publisher that does not publish gets
 *     the order refused with the CA's reason;
 *   - the account is reused, and bad input is refused before any request.
 * Everything listens on 127.0.0.1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "acme/acme.h"
#include "proxy/tls_internal.h"
#include "tests/proxy/pebble_util.h"
#include "tests/proxy/tls_test_util.h"

/* ---- a minimal HTTP-01 responder ---------------------------------------------------------- */

struct responder {
    int fd;                        /* listening socket on 127.0.0.1 */
    int port;                      /* its port */
    struct acme_challenges *table; /* what it answers from */
    atomic_int stop;               /* set to end the thread */
    atomic_int served;             /* challenge requests answered 200 */
    pthread_t thread;
};

static void serve_one(struct responder *r, int c)
{
    char req[4096], body[ACME_KEY_AUTH_MAX], resp[1024];
    size_t have = 0, body_len = 0;
    struct timeval tv = {2, 0};
    int status, n;

    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (have < sizeof(req) - 1) {
        ssize_t got = recv(c, req + have, sizeof(req) - 1 - have, 0);
        if (got <= 0)
            return;
        have += (size_t)got;
        req[have] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char *sp1 = strchr(req, ' '), *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strncmp(req, "GET ", 4) != 0)
        return;
    status = acme_challenges_answer(r->table, sp1 + 1, (size_t)(sp2 - sp1 - 1), body, sizeof(body),
                                    &body_len);
    if (status == 200) {
        atomic_fetch_add(&r->served, 1);
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%.*s",
                     body_len, (int)body_len, body);
    } else {
        n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    }
    send(c, resp, (size_t)n, MSG_NOSIGNAL);
}

static void *responder_main(void *arg)
{
    struct responder *r = arg;
    while (!atomic_load(&r->stop)) {
        struct pollfd p = {r->fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int c = accept(r->fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(r, c);
        close(c);
    }
    return NULL;
}

static int listen_loopback(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 64), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- pebble (tests/proxy/pebble_util.c) and the responder --------------------------------- */

struct fixture {
    struct pebble pebble;       /* the CA under test */
    struct responder responder; /* where pebble's HTTP-01 validation lands */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->responder.table = acme_challenges_new();
    f->responder.fd = listen_loopback(&f->responder.port);
    assert_int_equal(pthread_create(&f->responder.thread, NULL, responder_main, &f->responder), 0);
    /* every name resolves to 127.0.0.1, where the responder listens */
    pebble_start(&f->pebble, f->responder.port, "127.0.0.1");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pebble_stop(&f->pebble);
    atomic_store(&f->responder.stop, 1);
    pthread_join(f->responder.thread, NULL);
    close(f->responder.fd);
    acme_challenges_free(f->responder.table);
    free(f);
    return 0;
}

static struct acme_client *client_with(struct fixture *f, struct acme_publisher pub, EVP_PKEY *key)
{
    char err[ACME_ERR_MAX];
    struct acme_config cfg = {
        .directory_url = f->pebble.directory,
        .ca_file = f->pebble.ca_file,
        .contact = "mailto:ops@webgw.test",
        .account_key = key,
        .publisher = pub,
        .http_timeout_ms = 10000,
        .poll_interval_ms = 100,
        .poll_timeout_ms = 30000,
    };
    struct acme_client *c = acme_client_new(&cfg, err, sizeof(err));
    if (!c)
        fail_msg("acme_client_new: %s", err);
    return c;
}

static void test_certificate_issued_validated_and_served(void **state)
{
    struct fixture *f = *state;
    char err[ACME_ERR_MAX], cn[64];
    EVP_PKEY *key = acme_key_generate(err, sizeof(err));
    struct acme_client *c = client_with(f, acme_publisher_local(f->responder.table), key);
    const char *names[] = {"shop.webgw.test", "www.shop.webgw.test"};
    struct acme_cert cert;
    long retry = -1;
    int rc;

    rc = acme_client_issue(c, names, 2, &cert, &retry, err, sizeof(err));
    if (rc != ACME_OK)
        fail_msg("issue: %d %s", rc, err);
    assert_non_null(strstr(acme_client_account_url(c), "https://127.0.0.1:"));
    assert_true(atomic_load(&f->responder.served) >= 2);            /* pebble asked us, per name */
    assert_int_equal(acme_challenges_count(f->responder.table), 0); /* withdrawn after */
    assert_true(cert.not_after > time(NULL) + 86400);

    /* the gateway serves it: handshake for both names, verified against pebble's root */
    struct tls_store *store = tls_store_new(err, sizeof(err));
    struct tls_cert_set *set = tls_cert_set_new();
    assert_int_equal(tls_cert_set_add_pem(set, cert.cert_pem, strlen(cert.cert_pem), cert.key_pem,
                                          strlen(cert.key_pem), "acme", err, sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_store_install(store, set, err, sizeof(err)), TLS_OK);
    char *root = pebble_root(&f->pebble);
    SSL_CTX *client_ctx = tt_client_ctx(root);
    for (int i = 0; i < 2; i++) {
        SSL *client = SSL_new(client_ctx), *server = tls_store_new_ssl(store, err, sizeof(err));
        SSL_set_tlsext_host_name(client, names[i]);
        SSL_set1_host(client, names[i]);
        assert_true(tt_handshake(client, server));
        assert_int_equal(SSL_get_verify_result(client), X509_V_OK);
        tt_peer_cn(client, cn, sizeof(cn));
        SSL_free(client);
        SSL_free(server);
    }
    time_t expiry;
    assert_int_equal(tls_store_expiry(store, "www.shop.webgw.test", &expiry), TLS_OK);
    assert_int_equal(expiry, cert.not_after);

    /* the same account orders again without a new registration */
    char account[ACME_URL_MAX];
    snprintf(account, sizeof(account), "%s", acme_client_account_url(c));
    const char *one[] = {"api.webgw.test"};
    struct acme_cert cert2;
    rc = acme_client_issue(c, one, 1, &cert2, &retry, err, sizeof(err));
    if (rc != ACME_OK)
        fail_msg("second issue: %d %s", rc, err);
    assert_string_equal(acme_client_account_url(c), account);

    acme_cert_free(&cert2);
    free(root);
    SSL_CTX_free(client_ctx);
    tls_store_free(store);
    acme_cert_free(&cert);
    acme_client_free(c);
    EVP_PKEY_free(key);
}

/* A publisher that claims success but tells nobody: the CA must then refuse. */
static int silent_publish(void *ctx, const char *token, const char *key_auth, char *err,
                          size_t errlen)
{
    atomic_fetch_add((atomic_int *)ctx, 1);
    return ACME_OK;
}

static void silent_withdraw(void *ctx, const char *token)
{
}

static void test_unpublished_challenge_is_refused_by_the_ca(void **state)
{
    struct fixture *f = *state;
    char err[ACME_ERR_MAX];
    atomic_int published = 0;
    EVP_PKEY *key = acme_key_generate(err, sizeof(err));
    struct acme_client *c = client_with(
        f, (struct acme_publisher){silent_publish, silent_withdraw, &published, NULL}, key);
    const char *names[] = {"nobody-answers.webgw.test"};
    struct acme_cert cert;
    long retry;

    assert_int_equal(acme_client_issue(c, names, 1, &cert, &retry, err, sizeof(err)),
                     ACME_EINVALID);
    assert_int_equal(atomic_load(&published), 1);
    assert_non_null(strstr(err, "http-01 for nobody-answers.webgw.test: invalid"));
    assert_null(cert.cert_pem);

    /* refused before any request */
    const char *bad[] = {"*.webgw.test"};
    assert_int_equal(acme_client_issue(c, bad, 1, &cert, &retry, err, sizeof(err)), ACME_EINVAL);
    assert_non_null(strstr(err, "wildcards only in the DNS-01 zone"));
    assert_int_equal(acme_client_issue(c, bad, 0, &cert, &retry, err, sizeof(err)), ACME_EINVAL);
    acme_client_free(c);
    EVP_PKEY_free(key);
}

static void test_unreachable_ca_is_a_transport_error(void **state)
{
    struct fixture *f = *state;
    char err[ACME_ERR_MAX], url[128];
    EVP_PKEY *key = acme_key_generate(err, sizeof(err));
    struct acme_config cfg = {.directory_url = url,
                              .ca_file = f->pebble.ca_file,
                              .account_key = key,
                              .publisher = acme_publisher_local(f->responder.table),
                              .http_timeout_ms = 2000};
    const char *names[] = {"x.webgw.test"};
    struct acme_cert cert;

    snprintf(url, sizeof(url), "https://127.0.0.1:%d/dir", pebble_free_port());
    struct acme_client *c = acme_client_new(&cfg, err, sizeof(err));
    assert_int_equal(acme_client_issue(c, names, 1, &cert, NULL, err, sizeof(err)), ACME_EHTTP);
    assert_non_null(strstr(err, "GET https://127.0.0.1:"));
    acme_client_free(c);

    /* the CA's certificate must verify: without our CA file curl refuses pebble */
    cfg.directory_url = f->pebble.directory;
    cfg.ca_file = "/dev/null";
    c = acme_client_new(&cfg, err, sizeof(err));
    assert_int_equal(acme_client_issue(c, names, 1, &cert, NULL, err, sizeof(err)), ACME_EHTTP);
    acme_client_free(c);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certificate_issued_validated_and_served),
        cmocka_unit_test(test_unpublished_challenge_is_refused_by_the_ca),
        cmocka_unit_test(test_unreachable_ca_is_a_transport_error),
    };
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, setup, teardown);
}
