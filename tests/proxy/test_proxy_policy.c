/*
 * test_proxy_policy.c - the proxy's policies seen from outside: retries and passive health
 * around a dead backend, loop prevention, per-IP connection limit and request rate (429),
 * limits answered 431/413 on the wire, the access log line, least-conn and p2c balancing, and
 * active health probes.
 */
#include <pthread.h>
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

/* A port nobody listens on: bound then closed. */
static uint16_t dead_port(void)
{
    struct tb_server *s = tb_start(99);
    uint16_t port = tb_port(s);
    tb_free(s);
    return port;
}

struct health_find {
    uint16_t port;
    struct proxy_backend_health h;
    bool found;
};

static int find_health(const struct proxy_backend_health *h, void *ctx)
{
    struct health_find *f = ctx;
    if (h->addr.port == f->port) {
        f->h = *h;
        f->found = true;
    }
    return 0;
}

static void test_dead_backend_retried_and_marked_down(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *live = tb_start(1);
    uint16_t ports[2] = {dead_port(), tb_port(live)};
    th_route(routes, "app.localhost", "app", ports, 2);
    struct proxy *p = th_proxy(routes, NULL);
    for (int i = 0; i < 20; i++) {
        struct tc_resp r;
        assert_int_equal(tc_get(proxy_http_port(p), "app.localhost", "/id", &r), 200);
        assert_string_equal(r.body, "backend-1");
        tc_resp_free(&r);
    }
    struct health_find f = {.port = ports[0]};
    proxy_backends_each(p, find_health, &f);
    assert_true(f.found);
    assert_true(f.h.passive_down);
    assert_false(f.h.up);
    /* out after 3 failures in a row, then one failure per backoff period, not one per request */
    assert_true(f.h.failures >= 3);
    assert_true(f.h.failures <= 4);
    proxy_stop(p);
    tb_free(live);
    state_routes_free(routes);
}

/* One reset is a request's bad luck, not a verdict on the backend: it stays in (the next
 * request is served, where it used to get 503 for the 1 s backoff); three in a row with no
 * answer between them take it out for the backoff (500 ms here); an answer, between them or
 * after the backoff, starts the count again. */
static void test_single_reset_keeps_backend_in(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(0);
    tb_set_reset_uploads(be, true); /* PUTs are reset unanswered, GETs answered */
    uint16_t port = tb_port(be);
    th_route(routes, "app.localhost", "app", &port, 1);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.down_backoff_ms = 500; /* the test runs past it */
    struct proxy *p = th_proxy(routes, &cfg);
    uint16_t pp = proxy_http_port(p);
    /* fail, answer, fail, fail, answer: never three in a row */
    const char *steps = "RGRRG";
    for (const char *c = steps; *c; c++) {
        struct tc_resp r;
        if (*c == 'G') {
            int st = tc_get(pp, "app.localhost", "/id", &r);
            if (st != 200)
                fprintf(stderr, "GET after %.*s: %d %s\n", (int)(c - steps), steps, st, r.body);
            assert_int_equal(st, 200);
        } else {
            int fd = tc_connect(pp);
            /* a fresh connection each time: a reset there counts against the backend */
            tc_sends(fd, "PUT /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n");
            assert_int_equal(tc_read(fd, &r, 4096, false), 502);
            close(fd);
        }
        tc_resp_free(&r);
    }
    struct health_find f = {.port = port};
    proxy_backends_each(p, find_health, &f);
    assert_true(f.found);
    assert_false(f.h.passive_down);
    assert_int_equal(f.h.failures, 3);
    /* the third failure in a row takes it out */
    for (int i = 0; i < 3; i++) {
        struct tc_resp r;
        int fd = tc_connect(pp);
        tc_sends(fd, "PUT /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 0\r\n\r\n");
        assert_int_equal(tc_read(fd, &r, 4096, false), 502);
        tc_resp_free(&r);
        close(fd);
    }
    struct tc_resp r;
    assert_int_equal(tc_get(pp, "app.localhost", "/id", &r), 503);
    tc_resp_free(&r);
    proxy_backends_each(p, find_health, &f);
    assert_true(f.h.passive_down);
    /* past the backoff it is tried again; its answer ends the count, so one more reset does
     * not take it out again */
    usleep(600 * 1000);
    assert_int_equal(tc_get(pp, "app.localhost", "/id", &r), 200);
    tc_resp_free(&r);
    int fd = tc_connect(pp);
    tc_sends(fd, "PUT /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 4096, false), 502);
    tc_resp_free(&r);
    close(fd);
    assert_int_equal(tc_get(pp, "app.localhost", "/id", &r), 200);
    tc_resp_free(&r);
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

static void test_no_backend_left_answers_502_then_503(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    uint16_t port = dead_port();
    th_route(routes, "app.localhost", "app", &port, 1);
    struct proxy *p = th_proxy(routes, NULL);
    struct tc_resp r;
    /* the first three requests find the backend refusing connections */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(tc_get(proxy_http_port(p), "app.localhost", "/id", &r), 502);
        assert_non_null(strstr(r.body, "connect"));
        tc_resp_free(&r);
    }
    /* then it is down (backoff): no healthy backend */
    assert_int_equal(tc_get(proxy_http_port(p), "app.localhost", "/id", &r), 503);
    assert_non_null(strstr(r.body, "no healthy backend"));
    tc_resp_free(&r);
    proxy_stop(p);
    state_routes_free(routes);
}

static void test_loop_prevention(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    struct tb_server *be = tb_start(0);
    /* an address the operator lists as the gateway's own (any port) */
    cfg.own_addrs[0] =
        (struct state_backend){.family = 4, .addr = {127, 0, 0, 1}, .port = tb_port(be)};
    cfg.own_addr_count = 1;
    snprintf(cfg.own_hosts[0], sizeof(cfg.own_hosts[0]), "api.localhost");
    cfg.own_host_count = 1;
    struct proxy *p = th_proxy(routes, &cfg);
    uint16_t self = proxy_http_port(p);
    /* a name whose backend is the gateway itself */
    th_route(routes, "loop.localhost", "loop", &self, 1);
    uint16_t bp = tb_port(be);
    th_route(routes, "own.localhost", "own", &bp, 1);
    th_route(routes, "api.localhost", "api", &bp, 1);
    struct tc_resp r;
    assert_int_equal(tc_get(self, "loop.localhost", "/id", &r), 503);
    tc_resp_free(&r);
    assert_int_equal(tc_get(self, "own.localhost", "/id", &r), 503);
    tc_resp_free(&r);
    assert_int_equal(tc_get(self, "api.localhost", "/id", &r), 404);
    tc_resp_free(&r);
    assert_int_equal(tb_requests(be), 0);
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

static void test_per_ip_limits(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(0);
    uint16_t bp = tb_port(be);
    th_route(routes, "app.localhost", "app", &bp, 1);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 2;
    cfg.max_conns_per_ip = 3;
    cfg.rate_per_ip = 5;
    cfg.rate_burst = 5;
    struct proxy *p = th_proxy(routes, &cfg);
    uint16_t port = proxy_http_port(p);
    int fds[3];
    for (int i = 0; i < 3; i++)
        fds[i] = tc_connect(port);
    usleep(100000); /* let the workers accept them */
    int extra = tc_connect(port);
    struct tc_resp r;
    assert_int_equal(tc_read(extra, &r, 1024, false), 429);
    assert_true(r.closed || tc_closed(extra, 1000));
    tc_resp_free(&r);
    close(extra);
    /* token bucket: a burst of 5, then 429 with Retry-After */
    int ok = 0, limited = 0;
    for (int i = 0; i < 8; i++) {
        tc_sends(fds[0], "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
        int st = tc_read(fds[0], &r, 1024, false);
        if (st == 200)
            ok++;
        if (st == 429) {
            limited++;
            assert_non_null(strstr(r.head, "Retry-After: 1"));
        }
        tc_resp_free(&r);
    }
    assert_true(ok >= 5 && ok <= 6);
    assert_int_equal(ok + limited, 8);
    for (int i = 0; i < 3; i++)
        close(fds[i]);
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

static void test_limits_on_the_wire(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(0);
    uint16_t bp = tb_port(be);
    th_route(routes, "app.localhost", "app", &bp, 1);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_header_bytes = 4096;
    cfg.max_request_line = 1024;
    cfg.max_body_bytes = 1000;
    struct proxy *p = th_proxy(routes, &cfg);
    uint16_t port = proxy_http_port(p);
    char *big = malloc(8192);
    struct tc_resp r;
    /* header too large */
    int n = snprintf(big, 8192, "GET /id HTTP/1.1\r\nHost: app.localhost\r\nX-Big: ");
    memset(big + n, 'a', 5000);
    strcpy(big + n + 5000, "\r\n\r\n");
    int fd = tc_connect(port);
    tc_sends(fd, big);
    assert_int_equal(tc_read(fd, &r, 1024, false), 431);
    assert_true(r.closed || tc_closed(fd, 1000));
    tc_resp_free(&r);
    close(fd);
    /* request line too long */
    n = snprintf(big, 8192, "GET /");
    memset(big + n, 'a', 2000);
    strcpy(big + n + 2000, " HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
    fd = tc_connect(port);
    tc_sends(fd, big);
    assert_int_equal(tc_read(fd, &r, 1024, false), 431);
    tc_resp_free(&r);
    close(fd);
    /* body declared too large, and a chunked body growing too large */
    fd = tc_connect(port);
    tc_sends(fd, "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nContent-Length: 1001\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 1024, false), 413);
    tc_resp_free(&r);
    close(fd);
    fd = tc_connect(port);
    tc_sends(fd,
             "POST /upload HTTP/1.1\r\nHost: app.localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3e8\r\n");
    memset(big, 'b', 1000);
    tc_send(fd, big, 1000);
    tc_sends(fd, "\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 1024, false), 413);
    tc_resp_free(&r);
    close(fd);
    free(big);
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

struct log_capture {
    pthread_mutex_t lock;
    char last[1024];
    int lines;
};

/* Keeps the entry's fields as key=value text, to check each value below. */
static void capture(void *ctx, const struct proxy_access_entry *e)
{
    struct log_capture *c = ctx;
    pthread_mutex_lock(&c->lock);
    snprintf(c->last, sizeof(c->last),
             "worker=%u client=%s host=%s name=%s method=%s path=%s status=%d bytes_in=%llu "
             "bytes_out=%llu backend=%s duration_us=%llu cut=%d ",
             e->worker, e->client, e->host, e->name, e->method, e->path, e->status,
             (unsigned long long)e->bytes_in, (unsigned long long)e->bytes_out, e->backend,
             (unsigned long long)e->duration_us, e->cut);
    c->lines++;
    pthread_mutex_unlock(&c->lock);
}

static void test_access_log_line(void **state)
{
    (void)state;
    struct log_capture cap = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(0);
    uint16_t bp = tb_port(be);
    th_route(routes, "app.localhost", "app", &bp, 1);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.access_log = capture;
    cfg.access_log_ctx = &cap;
    struct proxy *p = th_proxy(routes, &cfg);
    struct tc_resp r;
    assert_int_equal(tc_get(proxy_http_port(p), "App.localhost", "/download?n=3", &r), 200);
    tc_resp_free(&r);
    char line[1024] = "";
    for (int i = 0; i < 200; i++) {
        pthread_mutex_lock(&cap.lock);
        int lines = cap.lines;
        snprintf(line, sizeof(line), "%s", cap.last);
        pthread_mutex_unlock(&cap.lock);
        if (lines)
            break;
        usleep(5000);
    }
    char want[128];
    snprintf(want, sizeof(want), "backend=127.0.0.1:%u ", bp);
    assert_non_null(strstr(line, "worker=0 "));
    assert_non_null(strstr(line, "client=127.0.0.1 "));
    assert_non_null(strstr(line, "host=app.localhost "));
    assert_non_null(strstr(line, "name=app "));
    assert_non_null(strstr(line, "method=GET "));
    assert_non_null(strstr(line, "path=/download?n=3 "));
    assert_non_null(strstr(line, "status=200 "));
    assert_null(strstr(line, "bytes_in=0 "));
    assert_null(strstr(line, "bytes_out=0 "));
    assert_non_null(strstr(line, want));
    assert_null(strstr(line, "duration_us=0 "));
    assert_non_null(strstr(line, "cut=0 "));
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

static void balance_spread(enum proxy_balance policy)
{
    struct state_routes *routes = state_routes_new();
    struct tb_server *be[3] = {tb_start(0), tb_start(1), tb_start(2)};
    uint16_t ports[3] = {tb_port(be[0]), tb_port(be[1]), tb_port(be[2])};
    th_route(routes, "app.localhost", "app", ports, 3);
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.balance = policy;
    struct proxy *p = th_proxy(routes, &cfg);
    int fd = tc_connect(proxy_http_port(p));
    for (int i = 0; i < 60; i++) {
        struct tc_resp r;
        tc_sends(fd, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
        assert_int_equal(tc_read(fd, &r, 1024, false), 200);
        tc_resp_free(&r);
    }
    close(fd);
    /* sequential requests: every policy must use every backend */
    for (int i = 0; i < 3; i++)
        assert_true(tb_requests(be[i]) >= 5);
    proxy_stop(p);
    for (int i = 0; i < 3; i++)
        tb_free(be[i]);
    state_routes_free(routes);
}

static void test_least_conn_and_p2c_use_all_backends(void **state)
{
    (void)state;
    balance_spread(PROXY_BALANCE_LEAST_CONN);
    balance_spread(PROXY_BALANCE_P2C);
}

struct probe_log {
    pthread_mutex_t lock;
    int up, down;      /* verdict changes */
    int restated_up;   /* unchanged UP verdicts reported again */
    int restated_down; /* unchanged DOWN verdicts reported again */
};

static void on_probe(void *ctx, const struct state_backend *be, enum proxy_verdict v, bool changed,
                     const char *detail)
{
    struct probe_log *l = ctx;
    (void)be;
    (void)detail;
    pthread_mutex_lock(&l->lock);
    if (v == PROXY_VERDICT_UP)
        *(changed ? &l->up : &l->restated_up) += 1;
    else if (v == PROXY_VERDICT_DOWN)
        *(changed ? &l->down : &l->restated_down) += 1;
    pthread_mutex_unlock(&l->lock);
}

static int probe_log_get(struct probe_log *l, const int *field)
{
    pthread_mutex_lock(&l->lock);
    int v = *field;
    pthread_mutex_unlock(&l->lock);
    return v;
}

static void test_active_probes(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *be = tb_start(0);
    struct proxy *p = th_proxy(routes, NULL);
    struct probe_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct state_backend set[2] = {
        {.family = 4, .addr = {127, 0, 0, 1}, .port = tb_port(be)},
        {.family = 4, .addr = {127, 0, 0, 1}, .port = dead_port()},
    };
    struct proxy_probe_config pc;
    proxy_probe_config_init(&pc);
    pc.kind = PROXY_PROBE_HTTP;
    snprintf(pc.path, sizeof(pc.path), "/id");
    pc.interval_ms = 50;
    pc.timeout_ms = 500;
    char err[PROXY_ERR_MAX];
    assert_int_equal(proxy_probe_set(p, set, 2, &pc, on_probe, &log, err, sizeof(err)), 0);
    int up = 0, down = 0;
    for (int i = 0; i < 200 && (up < 1 || down < 1); i++) {
        usleep(10000);
        pthread_mutex_lock(&log.lock);
        up = log.up;
        down = log.down;
        pthread_mutex_unlock(&log.lock);
    }
    assert_int_equal(up, 1);
    assert_int_equal(down, 1);
    uint64_t before = tb_requests(be);
    int restated_up = probe_log_get(&log, &log.restated_up);
    int restated_down = probe_log_get(&log, &log.restated_down);
    usleep(300000);
    assert_true(tb_requests(be) >= before + 2); /* probing goes on every interval */
    /* and every probe restates the unchanged verdict: what keeps it fresh in gossip */
    assert_true(probe_log_get(&log, &log.restated_up) >= restated_up + 2);
    assert_true(probe_log_get(&log, &log.restated_down) >= restated_down + 2);
    assert_int_equal(probe_log_get(&log, &log.up), 1);
    assert_int_equal(probe_log_get(&log, &log.down), 1);
    /* a 404 path turns the live backend DOWN after `fall` failures */
    snprintf(pc.path, sizeof(pc.path), "/missing");
    assert_int_equal(proxy_probe_set(p, set, 1, &pc, on_probe, &log, err, sizeof(err)), 0);
    for (int i = 0; i < 200 && down < 2; i++) {
        usleep(10000);
        pthread_mutex_lock(&log.lock);
        down = log.down;
        pthread_mutex_unlock(&log.lock);
    }
    assert_int_equal(down, 2);
    pc.path[0] = 'x';
    assert_int_equal(proxy_probe_set(p, set, 1, &pc, on_probe, &log, err, sizeof(err)),
                     PROXY_EINVAL);
    proxy_stop(p);
    tb_free(be);
    state_routes_free(routes);
}

/* Gossip lets every report expire after its TTL; a backend this node itself probes down must
 * stay out of load balancing when the fleet verdict falls back to UNKNOWN. */
static void test_probed_down_backend_stays_out_when_fleet_verdict_expires(void **state)
{
    (void)state;
    struct state_routes *routes = state_routes_new();
    struct tb_server *live = tb_start(1);
    uint16_t ports[2] = {dead_port(), tb_port(live)};
    th_route(routes, "app.localhost", "app", ports, 2);
    struct proxy *p = th_proxy(routes, NULL);
    struct probe_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct state_backend set[2] = {
        {.family = 4, .addr = {127, 0, 0, 1}, .port = ports[0]},
        {.family = 4, .addr = {127, 0, 0, 1}, .port = ports[1]},
    };
    struct proxy_probe_config pc;
    proxy_probe_config_init(&pc);
    pc.interval_ms = 50;
    pc.timeout_ms = 200;
    char err[PROXY_ERR_MAX];
    assert_int_equal(proxy_probe_set(p, set, 2, &pc, on_probe, &log, err, sizeof(err)), 0);
    for (int i = 0; i < 300 && probe_log_get(&log, &log.down) < 1; i++)
        usleep(10000);
    assert_int_equal(probe_log_get(&log, &log.down), 1);
    /* the fleet said down, then every report expired */
    proxy_health_set_fleet(p, &set[0], PROXY_VERDICT_DOWN);
    proxy_health_set_fleet(p, &set[0], PROXY_VERDICT_UNKNOWN);
    struct health_find f = {.port = ports[0]};
    proxy_backends_each(p, find_health, &f);
    assert_true(f.found);
    assert_int_equal(f.h.probe, PROXY_VERDICT_DOWN);
    assert_int_equal(f.h.fleet, PROXY_VERDICT_UNKNOWN);
    assert_false(f.h.up);
    for (int i = 0; i < 20; i++) {
        struct tc_resp r;
        assert_int_equal(tc_get(proxy_http_port(p), "app.localhost", "/id", &r), 200);
        assert_string_equal(r.body, "backend-1");
        tc_resp_free(&r);
    }
    f.found = false;
    proxy_backends_each(p, find_health, &f);
    assert_int_equal(f.h.failures, 0); /* never even tried */
    /* once this node stops probing it, its old verdict no longer vetoes the backend */
    assert_int_equal(proxy_probe_set(p, set + 1, 1, &pc, on_probe, &log, err, sizeof(err)), 0);
    bool up = false;
    for (int i = 0; i < 300 && !up; i++) {
        usleep(10000);
        f.found = false;
        proxy_backends_each(p, find_health, &f);
        up = f.h.up;
    }
    assert_true(up);
    assert_int_equal(f.h.probe, PROXY_VERDICT_UNKNOWN);
    proxy_stop(p);
    tb_free(live);
    state_routes_free(routes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dead_backend_retried_and_marked_down),
        cmocka_unit_test(test_no_backend_left_answers_502_then_503),
        cmocka_unit_test(test_single_reset_keeps_backend_in),
        cmocka_unit_test(test_loop_prevention),
        cmocka_unit_test(test_per_ip_limits),
        cmocka_unit_test(test_limits_on_the_wire),
        cmocka_unit_test(test_access_log_line),
        cmocka_unit_test(test_least_conn_and_p2c_use_all_backends),
        cmocka_unit_test(test_active_probes),
        cmocka_unit_test(test_probed_down_backend_stays_out_when_fleet_verdict_expires),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
