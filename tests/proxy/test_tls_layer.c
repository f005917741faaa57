/*
 * test_tls_layer.c - the HTTPS connection layer on real loopback sockets.
 *
 * A libuv server puts the layer on every accepted proxy_conn and echoes whatever plaintext
 * (terminated) or raw bytes (passthrough) reach c->in; clients on another thread are real
 * OpenSSL clients or raw sockets. What a user sees is asserted: a verified TLS session that
 * carries data both ways (1 MiB of it), a passthrough client whose bytes arrive untouched,
 * an unrecognized_name alert for a name not served or no SNI, a decode_error alert for a
 * malformed hello, a plain close for plain HTTP, and a counter for each.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <setjmp.h>
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
#include <uv.h>

#include "proxy/conn.h"
#include "proxy/tls_internal.h"
#include "tests/proxy/tls_test_util.h"

struct server {
    uv_loop_t loop;
    struct proxy_conn_loop conns; /* what the connections share */
    uv_tcp_t listener;
    uv_async_t wake;
    int port;
    struct tls_store *store;
    int open_conns;
    size_t max_in_cap; /* largest plaintext buffer a connection had when its bytes came */
    char last_sni[TLS_HOST_MAX + 1];
    bool last_has_sni;
};

struct echo_conn {
    struct proxy_conn c; /* first */
    struct server *srv;
};

static struct server S;
static struct tt_ca CA;

static enum tls_route route(struct proxy_conn *c, const struct tls_client_hello *h, void *ctx)
{
    struct server *srv = ctx;
    snprintf(srv->last_sni, sizeof(srv->last_sni), "%s", h->sni);
    srv->last_has_sni = h->has_sni;
    if (!h->has_sni)
        return TLS_ROUTE_REFUSE;
    if (strcmp(h->sni, "pass.test") == 0)
        return TLS_ROUTE_PASSTHROUGH;
    return tls_store_has_name(srv->store, h->sni) ? TLS_ROUTE_TERMINATE : TLS_ROUTE_REFUSE;
}

static void echo_read(struct proxy_conn *c, int status)
{
    if (status < 0) {
        proxy_conn_close(c);
        return;
    }
    size_t n = proxy_conn_avail(c);
    if (n == 0)
        return;
    if (c->in.cap > S.max_in_cap)
        S.max_in_cap = c->in.cap;
    proxy_conn_write(c, proxy_conn_data(c), n);
    proxy_conn_consume(c, n);
    proxy_conn_flush(c);
    if (!c->reading)
        proxy_conn_read_start(c);
}

static void echo_closed(struct proxy_conn *c)
{
    struct echo_conn *e = (struct echo_conn *)c;
    e->srv->open_conns--;
    free(e);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct server *srv = l->data;
    struct echo_conn *e = calloc(1, sizeof(*e));
    assert_int_equal(status, 0);
    assert_int_equal(proxy_conn_init(&srv->conns, &e->c, 4096, 65536), 0);
    e->srv = srv;
    e->c.owner = e;
    e->c.on_read = echo_read;
    e->c.on_closed = echo_closed;
    srv->open_conns++;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&e->c.tcp), 0);
    assert_int_equal(tls_conn_attach(&e->c, srv->store, route, srv), 0);
    assert_int_equal(proxy_conn_read_start(&e->c), 0);
}

static void on_wake(uv_async_t *a)
{
}

/* ---- client side: runs on its own thread while the loop runs here -------------------- */

struct client_job {
    void (*fn)(struct client_job *j);
    atomic_int done;
    /* results */
    int ok;
    char detail[256];
    unsigned long ssl_reason;
    uint8_t reply[64];
    size_t reply_len;
};

static int tcp_connect(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)S.port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *client_main(void *arg)
{
    struct client_job *j = arg;
    j->fn(j);
    atomic_store(&j->done, 1);
    uv_async_send(&S.wake);
    return NULL;
}

static void run_client(struct client_job *j)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, j), 0);
    while (!atomic_load(&j->done))
        uv_run(&S.loop, UV_RUN_ONCE);
    pthread_join(t, NULL);
    /* let the server side finish closing what the client closed */
    for (int i = 0; i < 50 && S.open_conns > 0; i++) {
        uv_run(&S.loop, UV_RUN_NOWAIT);
        usleep(2000);
    }
}

/* A verifying TLS client for `sni`: sends `len` bytes and expects them echoed. */
static void tls_echo(struct client_job *j, const char *sni, size_t len)
{
    SSL_CTX *ctx = tt_client_ctx(CA.cert_pem);
    SSL *ssl = SSL_new(ctx);
    int fd = tcp_connect();
    char *out = malloc(len), *in = malloc(len);
    size_t got = 0;

    for (size_t i = 0; i < len; i++)
        out[i] = (char)('a' + i % 23);
    SSL_set_fd(ssl, fd);
    if (sni) {
        SSL_set_tlsext_host_name(ssl, sni);
        SSL_set1_host(ssl, sni);
    }
    SSL_set_alpn_protos(ssl, (const unsigned char *)"\x08http/1.1", 9);
    if (SSL_connect(ssl) != 1) {
        j->ssl_reason = ERR_GET_REASON(ERR_peek_error());
        snprintf(j->detail, sizeof(j->detail), "connect: %s",
                 ERR_reason_error_string(ERR_peek_error()));
        ERR_clear_error();
        goto out;
    }
    const unsigned char *alpn;
    unsigned alpn_len;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn_len != 8 || memcmp(alpn, "http/1.1", 8) != 0) {
        snprintf(j->detail, sizeof(j->detail), "ALPN not http/1.1");
        goto out;
    }
    /* write in pieces and read the echo as it comes, as a real client would */
    size_t sent = 0;
    while (got < len) {
        if (sent < len) {
            int n = SSL_write(ssl, out + sent, (int)(len - sent < 65536 ? len - sent : 65536));
            if (n <= 0)
                goto out;
            sent += (size_t)n;
        }
        while (got < sent) {
            int n = SSL_read(ssl, in + got, (int)(len - got));
            if (n <= 0) {
                snprintf(j->detail, sizeof(j->detail), "read failed after %zu bytes", got);
                goto out;
            }
            got += (size_t)n;
        }
    }
    j->ok = memcmp(in, out, len) == 0;
    SSL_shutdown(ssl);
out:
    free(out);
    free(in);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

static void job_terminate(struct client_job *j)
{
    tls_echo(j, "secure.test", 1 << 20);
}

static void job_small(struct client_job *j)
{
    tls_echo(j, "secure.test", 100);
}

static void job_unknown_sni(struct client_job *j)
{
    tls_echo(j, "nobody.test", 10);
}

static void job_no_sni(struct client_job *j)
{
    tls_echo(j, NULL, 10);
}

/* Sends raw bytes, then reads until EOF (or `want` bytes) into j->reply. */
static void raw_exchange(struct client_job *j, const uint8_t *data, size_t len, size_t want)
{
    int fd = tcp_connect();
    if (send(fd, data, len, MSG_NOSIGNAL) != (ssize_t)len) {
        close(fd);
        return;
    }
    j->reply_len = 0;
    while (j->reply_len < sizeof(j->reply) && j->reply_len < want) {
        ssize_t n = recv(fd, j->reply + j->reply_len, sizeof(j->reply) - j->reply_len, 0);
        if (n <= 0)
            break;
        j->reply_len += (size_t)n;
    }
    j->ok = 1;
    close(fd);
}

static uint8_t hello_buf[8192];
static size_t hello_len;

static void job_passthrough(struct client_job *j)
{
    /* a real hello, then bytes that would be the client's next flight: all echoed as sent */
    uint8_t data[8192 + 16];
    int fd = tcp_connect();
    size_t got = 0;
    memcpy(data, hello_buf, hello_len);
    memcpy(data + hello_len, "\x14\x03\x03\x00\x01\x01", 6);
    size_t len = hello_len + 6;
    j->ok = 0;
    /* in two pieces, so the hello is split across reads */
    send(fd, data, 40, MSG_NOSIGNAL);
    usleep(20000);
    send(fd, data + 40, len - 40, MSG_NOSIGNAL);
    uint8_t back[8192 + 16];
    while (got < len) {
        ssize_t n = recv(fd, back + got, len - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    j->ok = got == len && memcmp(back, data, len) == 0;
    /* after the splice, later bytes are raw too */
    send(fd, "more", 4, MSG_NOSIGNAL);
    got = 0;
    while (got < 4) {
        ssize_t n = recv(fd, back + got, 4 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    j->ok = j->ok && got == 4 && memcmp(back, "more", 4) == 0;
    close(fd);
}

static void job_malformed(struct client_job *j)
{
    uint8_t bad[8192];
    memcpy(bad, hello_buf, hello_len);
    /* the handshake claims one byte less than its record holds: a trailing byte */
    size_t hlen = ((size_t)bad[6] << 16 | (size_t)bad[7] << 8 | bad[8]) - 1;
    bad[6] = (uint8_t)(hlen >> 16), bad[7] = (uint8_t)(hlen >> 8), bad[8] = (uint8_t)hlen;
    raw_exchange(j, bad, hello_len, sizeof(j->reply));
}

static void job_plain_http(struct client_job *j)
{
    const char *req = "GET / HTTP/1.1\r\nHost: secure.test\r\n\r\n";
    raw_exchange(j, (const uint8_t *)req, strlen(req), sizeof(j->reply));
}

/* ---- tests ----------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct tt_leaf leaf;
    char err[TLS_ERR_MAX];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int alen = sizeof(a);

    signal(SIGPIPE, SIG_IGN);
    tt_ca_new(&CA, "layer CA");
    tt_leaf_issue(&CA, "secure", "DNS:secure.test", 30, &leaf);
    S.store = tls_store_new(err, sizeof(err));
    struct tls_cert_set *set = tls_cert_set_new();
    assert_int_equal(tls_cert_set_add_pem(set, leaf.cert_pem, strlen(leaf.cert_pem), leaf.key_pem,
                                          strlen(leaf.key_pem), "secure", err, sizeof(err)),
                     TLS_OK);
    assert_int_equal(tls_store_install(S.store, set, err, sizeof(err)), TLS_OK);
    tt_leaf_free(&leaf);
    hello_len = tt_client_hello("pass.test", NULL, 0, 0, hello_buf, sizeof(hello_buf));

    assert_int_equal(uv_loop_init(&S.loop), 0);
    assert_int_equal(uv_async_init(&S.loop, &S.wake, on_wake), 0);
    proxy_conn_loop_init(&S.loop, &S.conns);
    assert_int_equal(uv_tcp_init(&S.loop, &S.listener), 0);
    S.listener.data = &S;
    assert_int_equal(uv_tcp_bind(&S.listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&S.listener, 16, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&S.listener, (struct sockaddr *)&a, &alen), 0);
    S.port = ntohs(a.sin_port);
    return 0;
}

static int teardown(void **state)
{
    uv_close((uv_handle_t *)&S.listener, NULL);
    uv_close((uv_handle_t *)&S.wake, NULL);
    proxy_conn_loop_close(&S.conns);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    assert_int_equal(S.open_conns, 0);
    assert_int_equal(uv_loop_close(&S.loop), 0);
    tls_store_free(S.store);
    tt_ca_free(&CA);
    return 0;
}

static void test_terminated_session_carries_a_megabyte_both_ways(void **state)
{
    struct client_job j = {.fn = job_terminate};
    struct tls_store_stats st;
    run_client(&j);
    if (!j.ok)
        fail_msg("TLS echo failed: %s", j.detail);
    assert_string_equal(S.last_sni, "secure.test");
    tls_store_get_stats(S.store, &st);
    assert_int_equal(st.handshakes, 1);
}

/* A request of a few bytes is read into one buffer of a record's size (16 KiB): the layer
 * asked for 16 KiB free before every SSL_read, so after the first record the buffer was
 * grown to 32 KiB (a realloc copying it) on every request of a keep-alive connection. */
static void test_small_request_reads_without_growing_the_buffer(void **state)
{
    struct client_job j = {.fn = job_small};
    S.max_in_cap = 0;
    run_client(&j);
    if (!j.ok)
        fail_msg("TLS echo failed: %s", j.detail);
    assert_int_equal(S.max_in_cap, 16384);
}

static void test_passthrough_bytes_arrive_untouched(void **state)
{
    struct client_job j = {.fn = job_passthrough};
    struct tls_store_stats st;
    run_client(&j);
    assert_true(j.ok);
    assert_string_equal(S.last_sni, "pass.test");
    tls_store_get_stats(S.store, &st);
    assert_int_equal(st.passthrough, 1);
    assert_int_equal(st.handshakes, 2); /* the two sessions above, none of ours for it */
}

static void test_unknown_name_and_missing_sni_get_unrecognized_name(void **state)
{
    struct client_job a = {.fn = job_unknown_sni}, b = {.fn = job_no_sni};
    struct tls_store_stats st;
    run_client(&a);
    assert_false(a.ok);
    assert_int_equal(a.ssl_reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    run_client(&b);
    assert_false(b.ok);
    assert_false(S.last_has_sni);
    assert_int_equal(b.ssl_reason, SSL_R_TLSV1_UNRECOGNIZED_NAME);
    tls_store_get_stats(S.store, &st);
    assert_int_equal(st.refused, 2);
}

static void test_malformed_hello_gets_decode_error_and_close(void **state)
{
    struct client_job j = {.fn = job_malformed};
    struct tls_store_stats st;
    run_client(&j);
    assert_true(j.ok);
    assert_int_equal(j.reply_len, 7);
    assert_memory_equal(j.reply, "\x15\x03\x03\x00\x02\x02\x32", 7); /* fatal decode_error */
    tls_store_get_stats(S.store, &st);
    assert_int_equal(st.hello_malformed, 1);
}

static void test_plain_http_on_the_https_port_is_closed(void **state)
{
    struct client_job j = {.fn = job_plain_http};
    struct tls_store_stats st;
    run_client(&j);
    assert_true(j.ok);
    assert_int_equal(j.reply_len, 0);
    tls_store_get_stats(S.store, &st);
    assert_int_equal(st.not_tls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terminated_session_carries_a_megabyte_both_ways),
        cmocka_unit_test(test_small_request_reads_without_growing_the_buffer),
        cmocka_unit_test(test_passthrough_bytes_arrive_untouched),
        cmocka_unit_test(test_unknown_name_and_missing_sni_get_unrecognized_name),
        cmocka_unit_test(test_malformed_hello_gets_decode_error_and_close),
        cmocka_unit_test(test_plain_http_on_the_https_port_is_closed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
