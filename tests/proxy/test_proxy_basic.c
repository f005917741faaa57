/*
 * test_proxy_basic.c - the proxy path end to end on loopback, with worker threads: routing
 * by Host, keep-alive, pipelining in order, HTTP/1.0, HEAD, chunked and close-delimited
 * responses, X-Forwarded-* as the backend sees them, 404/503 pages, counters and health.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static int setup(void **state)
{
    static struct th_fixture f;
    th_fixture_start(&f, 2, NULL);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    th_fixture_stop(*state);
    return 0;
}

static void test_routes_by_host(void **state)
{
    struct th_fixture *f = *state;
    struct tc_resp r;
    assert_int_equal(tc_get(f->port, "app.localhost", "/id", &r), 200);
    assert_true(strncmp(r.body, "backend-", 8) == 0);
    tc_resp_free(&r);
    /* case and port do not matter */
    assert_int_equal(tc_get(f->port, "APP.Localhost:8080", "/id", &r), 200);
    tc_resp_free(&r);
    assert_int_equal(tc_get(f->port, "nope.localhost", "/id", &r), 404);
    assert_non_null(strstr(r.body, "nope.localhost"));
    tc_resp_free(&r);
    /* the gateway's own domain is never proxied */
    assert_int_equal(tc_get(f->port, "localhost", "/id", &r), 404);
    tc_resp_free(&r);
}

static void test_keepalive_and_round_robin(void **state)
{
    struct th_fixture *f = *state;
    int fd = tc_connect(f->port);
    int seen[2] = {0, 0};
    for (int i = 0; i < 20; i++) {
        struct tc_resp r;
        tc_sends(fd, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
        assert_int_equal(tc_read(fd, &r, 1024, false), 200);
        assert_false(r.closed);
        seen[r.body[8] - '0']++;
        tc_resp_free(&r);
    }
    close(fd);
    assert_true(seen[0] >= 5 && seen[1] >= 5);
}

static void test_pipelining_in_order(void **state)
{
    struct th_fixture *f = *state;
    int fd = tc_connect(f->port);
    tc_sends(fd, "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nX-Seq: 1\r\n\r\n"
                 "GET /chunked HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
                 "HEAD /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n"
                 "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nX-Seq: 4\r\n\r\n");
    struct tc_resp r;
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    assert_non_null(strstr(r.body, "X-Seq: 1"));
    tc_resp_free(&r);
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    assert_string_equal(r.body, "hello world");
    assert_non_null(strstr(r.head, "Transfer-Encoding: chunked"));
    tc_resp_free(&r);
    assert_int_equal(tc_read(fd, &r, 1 << 16, true), 200);
    assert_non_null(strstr(r.head, "Content-Length: 9"));
    tc_resp_free(&r);
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    assert_non_null(strstr(r.body, "X-Seq: 4"));
    tc_resp_free(&r);
    close(fd);
}

static void test_forwarded_headers(void **state)
{
    struct th_fixture *f = *state;
    int fd = tc_connect(f->port);
    tc_sends(fd, "GET /headers HTTP/1.1\r\nHost: app.localhost:80\r\nX-Forwarded-For: 6.6.6.6\r\n"
                 "Connection: keep-alive, X-Drop\r\nX-Drop: secret\r\nX-Keep: yes\r\n\r\n");
    struct tc_resp r;
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    assert_non_null(strstr(r.body, "X-Forwarded-For: 127.0.0.1\r\n"));
    assert_non_null(strstr(r.body, "X-Forwarded-Proto: http\r\n"));
    assert_non_null(strstr(r.body, "X-Forwarded-Host: app.localhost:80\r\n"));
    assert_non_null(strstr(r.body, "X-Keep: yes\r\n"));
    assert_null(strstr(r.body, "6.6.6.6"));
    assert_null(strstr(r.body, "X-Drop"));
    tc_resp_free(&r);
    close(fd);
}

static void test_http10_and_close_delimited(void **state)
{
    struct th_fixture *f = *state;
    int fd = tc_connect(f->port);
    tc_sends(fd, "GET /chunked HTTP/1.0\r\nHost: app.localhost\r\n\r\n");
    struct tc_resp r;
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    assert_string_equal(r.body, "hello world"); /* de-chunked for a 1.0 client */
    assert_null(strstr(r.head, "Transfer-Encoding"));
    assert_true(r.closed);
    tc_resp_free(&r);
    close(fd);
    /* a backend body delimited by close goes out chunked to a 1.1 client, which keeps its
     * connection */
    fd = tc_connect(f->port);
    tc_sends(fd, "GET /close HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    assert_string_equal(r.body, "bye");
    assert_non_null(strstr(r.head, "Transfer-Encoding: chunked"));
    tc_resp_free(&r);
    tc_sends(fd, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 1 << 16, false), 200);
    tc_resp_free(&r);
    close(fd);
}

static int count_name(const struct proxy_name_stats *s, void *ctx)
{
    if (strcmp(s->name, "app") == 0)
        *(struct proxy_name_stats *)ctx = *s;
    return 0;
}

static int count_up(const struct proxy_backend_health *h, void *ctx)
{
    if (h->up)
        (*(int *)ctx)++;
    return 0;
}

static void test_counters_and_health(void **state)
{
    struct th_fixture *f = *state;
    struct tc_resp r;
    struct proxy_name_stats before = {.requests = 0}, after = {.requests = 0};
    proxy_stats_each(f->p, count_name, &before);
    assert_int_equal(tc_get(f->port, "app.localhost", "/id", &r), 200);
    tc_resp_free(&r);
    /* counted right after the response is queued: give the worker a moment */
    for (int i = 0; i < 100 && after.requests < before.requests + 1; i++) {
        usleep(1000);
        proxy_stats_each(f->p, count_name, &after);
    }
    /* >=: the previous test's last request may be counted in between */
    assert_true(after.requests >= before.requests + 1);
    assert_true(after.bytes_out > before.bytes_out + 9);
    assert_true(after.bytes_in > before.bytes_in + 20);
    assert_true(after.status_2xx >= before.status_2xx + 1);
    int up = 0;
    proxy_backends_each(f->p, count_up, &up);
    assert_int_equal(up, 2);
    /* a fleet DOWN verdict takes a backend out of rotation */
    struct state_backend b0 = {.family = 4, .addr = {127, 0, 0, 1}, .port = tb_port(f->be[0])};
    proxy_health_set_fleet(f->p, &b0, PROXY_VERDICT_DOWN);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(tc_get(f->port, "app.localhost", "/id", &r), 200);
        assert_string_equal(r.body, "backend-1");
        tc_resp_free(&r);
    }
    struct state_backend b1 = b0;
    b1.port = tb_port(f->be[1]);
    proxy_health_set_fleet(f->p, &b1, PROXY_VERDICT_DOWN);
    assert_int_equal(tc_get(f->port, "app.localhost", "/id", &r), 503);
    tc_resp_free(&r);
    proxy_health_set_fleet(f->p, &b0, PROXY_VERDICT_UP);
    proxy_health_set_fleet(f->p, &b1, PROXY_VERDICT_UNKNOWN);
    assert_int_equal(tc_get(f->port, "app.localhost", "/id", &r), 200);
    tc_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_by_host),
        cmocka_unit_test(test_keepalive_and_round_robin),
        cmocka_unit_test(test_pipelining_in_order),
        cmocka_unit_test(test_forwarded_headers),
        cmocka_unit_test(test_http10_and_close_delimited),
        cmocka_unit_test(test_counters_and_health),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
