/*
 * test_proxy_headers.c - header hygiene as a backend sees it (issue 9, item 7): Forwarded and
 * X-Real-IP from a client never reach the backend and ours are set (RFC 7239 Forwarded); h2c
 * upgrades (Upgrade: h2c, HTTP2-Settings) and any Upgrade but WebSocket's are stripped;
 * duplicate Upgrade fields leave the connection usable for the next request; heads at the
 * size limit are forwarded whatever the rewrite adds, in both directions. Each on a fresh and
 * a pooled backend connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define LIMIT 8192 /* max_header_bytes of the proxy under test */

static int setup(void **state)
{
    static struct th_fixture f;
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1; /* one pool: a client's second request reuses the first's connection */
    cfg.max_header_bytes = LIMIT;
    cfg.max_header_count = 2000;
    th_fixture_start(&f, 1, &cfg);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    th_fixture_stop(*state);
    return 0;
}

/* Sends req twice on one client connection (the second goes over the pooled backend
 * connection the first left) and checks each answer with check(). */
static void twice(struct th_fixture *f, const char *req, int want,
                  void (*check)(const struct tc_resp *r))
{
    int fd = tc_connect(f->port);
    for (int i = 0; i < (want == 431 ? 1 : 2); i++) { /* a 431 closes the connection */
        struct tc_resp r;
        tc_sends(fd, req);
        int st = tc_read(fd, &r, 1 << 16, false);
        if (st != want)
            fprintf(stderr, "%s connection: %d %s\n", i ? "pooled" : "fresh", st, r.body);
        assert_int_equal(st, want);
        if (check)
            check(&r);
        tc_resp_free(&r);
    }
    close(fd);
}

static void check_forwarded(const struct tc_resp *r)
{
    assert_null(strstr(r->body, "6.6.6.6"));
    assert_null(strstr(r->body, "evil"));
    assert_non_null(
        strstr(r->body, "\r\nForwarded: for=127.0.0.1;proto=http;host=app.localhost\r\n"));
    assert_non_null(strstr(r->body, "\r\nX-Real-IP: 127.0.0.1\r\n"));
    assert_non_null(strstr(r->body, "\r\nX-Forwarded-For: 127.0.0.1\r\n"));
}

static void test_forwarded_and_real_ip_replaced(void **state)
{
    twice(*state,
          "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nForwarded: for=6.6.6.6;host=evil\r\n"
          "X-Real-IP: 6.6.6.6\r\nforwarded: for=\"[2001:db8::6]\"\r\nX-Real-Ip: evil\r\n\r\n",
          200, check_forwarded);
}

static void check_no_upgrade(const struct tc_resp *r)
{
    assert_null(strstr(r->body, "Upgrade"));
    assert_null(strstr(r->body, "upgrade"));
    assert_null(strstr(r->body, "HTTP2-Settings"));
    assert_null(strstr(r->body, "h2c"));
    assert_null(strstr(r->body, "Connection"));
}

static void test_h2c_and_other_upgrades_stripped(void **state)
{
    struct th_fixture *f = *state;
    /* the h2c request as curl --http2 sends it */
    twice(f,
          "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nConnection: Upgrade, HTTP2-Settings\r\n"
          "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
          200, check_no_upgrade);
    /* HTTP2-Settings not named by Connection, and an Upgrade that is not WebSocket */
    twice(f,
          "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nConnection: upgrade\r\n"
          "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n",
          200, check_no_upgrade);
    twice(f,
          "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nConnection: upgrade\r\n"
          "Upgrade: TLS/1.2\r\n\r\n",
          200, check_no_upgrade);
    /* Upgrade without Connection: upgrade is not an upgrade either */
    twice(f, "GET /headers HTTP/1.1\r\nHost: app.localhost\r\nUpgrade: websocket\r\n\r\n", 200,
          check_no_upgrade);
}

static void test_duplicate_upgrade_next_request_served(void **state)
{
    struct th_fixture *f = *state;
    static const char *const firsts[] = {
        "GET /id HTTP/1.1\r\nHost: app.localhost\r\nConnection: upgrade\r\n"
        "Upgrade: websocket\r\nUpgrade: websocket\r\n\r\n",
        "GET /id HTTP/1.1\r\nHost: app.localhost\r\nConnection: upgrade\r\nUpgrade: h2c\r\n\r\n",
    };
    for (size_t i = 0; i < 2; i++) {
        int fd = tc_connect(f->port);
        for (int round = 0; round < 2; round++) { /* fresh, then pooled backend connection */
            struct tc_resp r;
            tc_sends(fd, firsts[i]);
            assert_int_equal(tc_read(fd, &r, 4096, false), 200);
            assert_false(r.closed);
            tc_resp_free(&r);
            tc_sends(fd, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
            int st = tc_read(fd, &r, 4096, false);
            if (st != 200)
                fprintf(stderr, "case %zu round %d: next request answered %d\n", i, round, st);
            assert_int_equal(st, 200);
            assert_string_equal(r.body, "backend-0");
            tc_resp_free(&r);
        }
        close(fd);
    }
}

/* A request head of exactly n bytes of "Xnnnn:y" fields: the gateway's rewrite grows it by a
 * byte per field plus the fields it adds. */
static char *request_head(size_t n)
{
    char *h = malloc(n + 1);
    size_t hl = (size_t)sprintf(h, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n");
    for (int k = 0; hl + 9 + 8 <= n; k++)
        hl += (size_t)sprintf(h + hl, "X%04d:y\r\n", k);
    size_t pad = n - hl - 6;
    memcpy(h + hl, "P:", 2);
    memset(h + hl + 2, 'p', pad);
    memcpy(h + hl + 2 + pad, "\r\n\r\n", 5);
    assert_int_equal(strlen(h), n);
    return h;
}

static void test_heads_at_the_limit(void **state)
{
    struct th_fixture *f = *state;
    for (int d = -1; d <= 1; d++) {
        size_t n = (size_t)(LIMIT + d);
        char *req = request_head(n);
        twice(f, req, d <= 0 ? 200 : 431, NULL);
        free(req);
        char path[64];
        snprintf(path, sizeof(path), "GET /bighead/%zu HTTP/1.1\r\nHost: app.localhost\r\n\r\n", n);
        twice(f, path, d <= 0 ? 200 : 502, NULL);
        printf("heads of %zu bytes (limit %d): request and response answered as expected\n", n,
               LIMIT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forwarded_and_real_ip_replaced),
        cmocka_unit_test(test_h2c_and_other_upgrades_stripped),
        cmocka_unit_test(test_duplicate_upgrade_next_request_served),
        cmocka_unit_test(test_heads_at_the_limit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
