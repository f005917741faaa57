/*
 * test_proxy_uploads.c - request bodies reach the backend byte for byte, whatever the state of
 * the backend connection when they arrive (issue 9, item 2).
 *
 * The case that stalled: a request on a NEW backend connection whose connect completes late,
 * so the client's body fills the gateway's input buffer while it is still connecting. The
 * backend's accept queue is held full (tb_hold_connects) until the client has sent what the
 * gateway will take; the connect then completes at a SYN retransmission about 1 s later. The
 * same uploads also go over a POOLED connection (a GET first on the same client connection).
 * Sizes sit on both sides of the buffer boundaries (64 KiB in, 256 KiB queue), with
 * Content-Length and chunked framing (chunks of an odd size so they straddle reads); the
 * backend hashes what it decoded (SHA-256) and the test compares with what it sent.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "harness.h"

/* Deterministic bytes that differ along the body, so a lost or repeated piece changes the
 * hash. */
static void fill(char *buf, size_t n, uint64_t *x)
{
    for (size_t i = 0; i < n; i++) {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        buf[i] = (char)(*x >> 24);
    }
}

struct upload {
    int fd;
    long long size;
    bool chunked;
    char sha[65]; /* of what was sent */
};

/* Sends the request head and body; computes the hash of the body as sent. */
static void *send_main(void *arg)
{
    struct upload *u = arg;
    char head[256];
    if (u->chunked)
        snprintf(head, sizeof(head),
                 "POST /sha HTTP/1.1\r\nHost: up.localhost\r\nTransfer-Encoding: chunked\r\n\r\n");
    else
        snprintf(head, sizeof(head),
                 "POST /sha HTTP/1.1\r\nHost: up.localhost\r\nContent-Length: %lld\r\n\r\n",
                 u->size);
    tc_sends(u->fd, head);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    static _Thread_local char buf[70000];
    uint64_t x = 0x9e3779b97f4a7c15ull ^ (uint64_t)u->size;
    const size_t piece = 7001; /* odd: chunk and read boundaries never line up */
    for (long long sent = 0; sent < u->size;) {
        size_t n = u->size - sent < (long long)piece ? (size_t)(u->size - sent) : piece;
        char *data = buf + 16;
        fill(data, n, &x);
        EVP_DigestUpdate(md, data, n);
        if (u->chunked) {
            char hex[16];
            int hl = snprintf(hex, sizeof(hex), "%zx\r\n", n);
            memcpy(data - hl, hex, (size_t)hl);
            memcpy(data + n, "\r\n", 2);
            tc_send(u->fd, data - hl, (size_t)hl + n + 2);
        } else {
            tc_send(u->fd, data, n);
        }
        sent += (long long)n;
    }
    if (u->chunked)
        tc_sends(u->fd, "0\r\n\r\n");
    unsigned char d[32];
    EVP_DigestFinal_ex(md, d, NULL);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(u->sha + 2 * i, 3, "%02x", d[i]);
    return NULL;
}

struct release {
    struct tb_server *be;
    int delay_ms;
};

static void *release_main(void *arg)
{
    struct release *r = arg;
    usleep((useconds_t)r->delay_ms * 1000);
    tb_release_connects(r->be);
    return NULL;
}

/* One upload through a fresh proxy and backend; `pooled` sends a GET first so the upload
 * reuses that backend connection, else the backend's connect is held back while the client
 * sends. */
static void upload_case(long long size, bool chunked, bool pooled)
{
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(0);
    uint16_t port = tb_port(be);
    th_route(routes, "up.localhost", "up", &port, 1);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1; /* the pooled connection is on the worker that serves the upload */
    struct proxy *p = th_proxy(routes, &cfg);
    int fd = tc_connect(proxy_http_port(p));
    /* No response byte comes before the backend has the whole body: the wait covers the
     * upload itself, which a sanitizer build on a loaded machine makes slow (a 100 MiB
     * chunked body took over 30 s under TSan at load 20). A stall still fails. */
    struct timeval tv = {30 + (time_t)(size >> 20), 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct tc_resp r;

    if (pooled) {
        tc_sends(fd, "GET /id HTTP/1.1\r\nHost: up.localhost\r\n\r\n");
        assert_int_equal(tc_read(fd, &r, 1024, false), 200);
        tc_resp_free(&r);
        assert_int_equal(tb_accepts(be), 1);
    } else {
        tb_hold_connects(be);
    }
    struct upload u = {.fd = fd, .size = size, .chunked = chunked};
    struct release rel = {be, 400};
    pthread_t sender, releaser;
    pthread_create(&sender, NULL, send_main, &u);
    if (!pooled)
        pthread_create(&releaser, NULL, release_main, &rel);
    int st = tc_read(fd, &r, 1024, false);
    pthread_join(sender, NULL);
    if (!pooled)
        pthread_join(releaser, NULL);
    char want[160];
    snprintf(want, sizeof(want), "received %lld sha256=%s", size, u.sha);
    printf("%s %lld bytes %s: status %d, backend answered \"%s\"\n", pooled ? "pooled" : "fresh ",
           size, chunked ? "chunked" : "length ", st, r.body ? r.body : "");
    assert_int_equal(st, 200);
    assert_string_equal(r.body, want);
    tc_resp_free(&r);
    /* fresh: the filler and the gateway; pooled: the one connection of the GET */
    assert_int_equal(tb_accepts(be), pooled ? 1 : 2);

    /* the connection still works for a next request */
    tc_sends(fd, "GET /id HTTP/1.1\r\nHost: up.localhost\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 1024, false), 200);
    tc_resp_free(&r);
    close(fd);
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

static const long long sizes[] = {0, 1, 65535, 65536, 65537, 1LL << 20, 100LL << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_upload_fresh_connection_late_connect(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSIZES; i++) {
        upload_case(sizes[i], false, false);
        upload_case(sizes[i], true, false);
    }
}

static void test_upload_pooled_connection(void **state)
{
    (void)state;
    for (size_t i = 0; i < NSIZES; i++) {
        upload_case(sizes[i], false, true);
        upload_case(sizes[i], true, true);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upload_fresh_connection_late_connect),
        cmocka_unit_test(test_upload_pooled_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
