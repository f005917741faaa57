/*
 * test_proxy_loop.c - request-loop marks on the wire: the backend receives the client's Via
 * with this fleet's appended and the hop count plus one; a request that names this fleet in
 * Via or arrives with the hop bound reached is answered 508 and never reaches the backend.
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
#include "state/state.h"

static int request(uint16_t port, const char *fields, struct tc_resp *r)
{
    char req[1024];
    int fd = tc_connect(port);
    int n = snprintf(req, sizeof(req),
                     "GET /headers HTTP/1.1\r\nHost: app.localhost\r\n%sConnection: close\r\n\r\n",
                     fields);
    tc_send(fd, req, (size_t)n);
    int st = tc_read(fd, r, 1 << 16, false);
    close(fd);
    return st;
}

static void loop_marks_on_the_wire(void **state)
{
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(1);
    uint16_t bp = tb_port(be);
    struct proxy_config cfg;
    struct tc_resp r;

    (void)state;
    th_route(routes, "app.localhost", "app", &bp, 1);
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_hops = 4;
    snprintf(cfg.via_name, sizeof(cfg.via_name), "webgw-feedc0de");
    struct proxy *p = th_proxy(routes, &cfg);

    /* passes: Via kept and extended, hops counted */
    assert_int_equal(
        request(proxy_http_port(p), "Via: 1.0 fred, 1.1 other\r\nWebgw-Hops: 3\r\n", &r), 200);
    assert_non_null(strstr(r.body, "\r\nVia: 1.0 fred, 1.1 other\r\n"));
    assert_non_null(strstr(r.body, "\r\nVia: 1.1 webgw-feedc0de\r\n"));
    assert_true(strstr(r.body, "1.1 other") < strstr(r.body, "webgw-feedc0de"));
    assert_non_null(strstr(r.body, "\r\nWebgw-Hops: 4\r\n"));
    assert_null(strstr(r.body, "Webgw-Hops: 3"));
    tc_resp_free(&r);
    assert_int_equal(request(proxy_http_port(p), "", &r), 200);
    assert_non_null(strstr(r.body, "\r\nWebgw-Hops: 1\r\n"));
    tc_resp_free(&r);
    uint64_t reached = tb_requests(be);

    /* refused before any backend: this fleet in Via, or the bound reached */
    assert_int_equal(request(proxy_http_port(p), "Via: 1.1 x, 1.1 WEBGW-FEEDC0DE\r\n", &r), 508);
    assert_non_null(strstr(r.body, "request loop"));
    tc_resp_free(&r);
    assert_int_equal(request(proxy_http_port(p), "Webgw-Hops: 4\r\n", &r), 508);
    assert_non_null(strstr(r.body, "Webgw-Hops"));
    tc_resp_free(&r);
    assert_int_equal(tb_requests(be), reached);

    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loop_marks_on_the_wire),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
