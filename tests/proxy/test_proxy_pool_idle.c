/*
 * test_proxy_pool_idle.c - the backend keep-alive pool gives its connections back, and
 * proxy_backend_pool_idle() (webgw_backend_pool_idle in /metrics) says how many it holds.
 *
 * The pool keeps the connections of the last pool_idle_timeout_ms's peak concurrency: N
 * requests at once to a backend leave N idle connections (the backend saw N connections), and
 * each is closed by the first once-a-second sweep after it has been idle for the timeout (the
 * backend sees it closed). A connection reused before then is idle again from its reuse and
 * stays. This is what the soak's "FDs flat" judges net of; a pool that kept connections past
 * the timeout, or a count that drifted from the pool, would read as a descriptor leak there.
 *
 * Timeout shortened to POOL_TIMEOUT_MS; the sweep runs every SWEEP_MS. Bounds: a connection
 * idle since t is still pooled at t + timeout - EARLY_MS, and closed by t + timeout + sweep +
 * LATE_MS.
 */
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

#include "harness.h"

enum {
    CONC = 8,               /* requests at once */
    SLOW_MS = 400,          /* each held this long by the backend, so all CONC overlap */
    POOL_TIMEOUT_MS = 1500, /* pool_idle_timeout_ms */
    SWEEP_MS = 1000,        /* the workers' sweep period (proxy.c) */
    EARLY_MS = 250,         /* still pooled this long before its timeout */
    LATE_MS = 600,          /* gone this long after its timeout and a sweep, at most */
};

static void sleep_until(uint64_t t)
{
    uint64_t n = th_now_ms();
    if (t > n)
        usleep((useconds_t)(t - n) * 1000u);
}

/* Polls until the pool holds `want` connections and `be` has ended `ended` of its own; returns
 * the time it took, or fails the test past `by` (monotonic ms). */
static uint64_t wait_pool(struct th_fixture *f, uint64_t want, uint64_t ended, uint64_t by,
                          const char *what)
{
    uint64_t t0 = th_now_ms();
    for (;;) {
        uint64_t idle = proxy_backend_pool_idle(f->p), gone = tb_ended(f->be[0]);
        if (idle == want && gone == ended)
            return th_now_ms() - t0;
        if (th_now_ms() > by) {
            fail_msg("%s: pool %llu (want %llu), backend saw %llu closed (want %llu), %llu ms "
                     "late",
                     what, (unsigned long long)idle, (unsigned long long)want,
                     (unsigned long long)gone, (unsigned long long)ended,
                     (unsigned long long)(th_now_ms() - by));
        }
        usleep(10 * 1000);
    }
}

/* CONC requests at once, one on each client connection; returns when all are answered. */
static void burst(const int *fds)
{
    char req[128];
    snprintf(req, sizeof(req), "GET /slow?ms=%d HTTP/1.1\r\nHost: app.localhost\r\n\r\n", SLOW_MS);
    for (int i = 0; i < CONC; i++)
        tc_sends(fds[i], req);
    for (int i = 0; i < CONC; i++) {
        struct tc_resp r;
        assert_int_equal(tc_read(fds[i], &r, 64, false), 200);
        assert_string_equal(r.body, "slow");
        assert_false(r.closed);
        tc_resp_free(&r);
    }
}

static void one_get(int fd)
{
    struct tc_resp r;
    tc_sends(fd, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
    assert_int_equal(tc_read(fd, &r, 64, false), 200);
    tc_resp_free(&r);
}

/* Until `t`, a request on fd whenever a third of the pool timeout has passed since *last. */
static void keep_until(int fd, uint64_t *last, uint64_t t)
{
    for (;;) {
        if (th_now_ms() >= *last + POOL_TIMEOUT_MS / 3) {
            one_get(fd);
            *last = th_now_ms();
        }
        uint64_t next = *last + POOL_TIMEOUT_MS / 3;
        if (th_now_ms() >= t)
            return;
        sleep_until(next < t ? next : t);
    }
}

/* The proxy (2 workers) in front of one backend, and CONC client connections to it. */
static void start(struct th_fixture *f, uint32_t pool_timeout_ms, int *fds)
{
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 2;
    cfg.pool_idle_timeout_ms = pool_timeout_ms;
    th_fixture_start(f, 1, &cfg);
    assert_int_equal(proxy_backend_pool_idle(f->p), 0);
    for (int i = 0; i < CONC; i++)
        fds[i] = tc_connect(f->port);
}

static void stop(struct th_fixture *f, int *fds)
{
    for (int i = 0; i < CONC; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    th_fixture_stop(f);
}

/* Fresh connections pooled, then reused (the pooled path) and pooled again: each is closed
 * one timeout after it last went idle, and one kept busy stays. */
static void test_pool_gives_connections_back_after_the_idle_timeout(void **state)
{
    (void)state;
    struct th_fixture f;
    int fds[CONC];
    start(&f, POOL_TIMEOUT_MS, fds);

    /* fresh: CONC connections opened, all pooled once answered */
    burst(fds);
    uint64_t idle1 = th_now_ms();
    uint64_t took = wait_pool(&f, CONC, 0, idle1 + 500, "after the first burst");
    assert_int_equal(tb_accepts(f.be[0]), CONC);
    printf("  %d requests at once: %d backend connections, pool %d (%llu ms after the answers)\n",
           CONC, (int)tb_accepts(f.be[0]), CONC, (unsigned long long)took);

    /* pooled: before the timeout the same client connections (so the same workers) take
     * every pooled connection again; none is opened, none closed */
    sleep_until(idle1 + POOL_TIMEOUT_MS / 2);
    assert_int_equal(proxy_backend_pool_idle(f.p), CONC);
    burst(fds);
    uint64_t idle2 = th_now_ms();
    wait_pool(&f, CONC, 0, idle2 + 500, "after the second burst");
    assert_int_equal(tb_accepts(f.be[0]), CONC);
    assert_int_equal(tb_requests(f.be[0]), 2 * CONC);

    /* one client keeps asking every third of the timeout: its worker reuses its most recent
     * pooled connection, which never times out; the others are idle since idle2 */
    uint64_t last = idle2;
    keep_until(fds[0], &last, idle2 + POOL_TIMEOUT_MS - EARLY_MS);
    assert_int_equal(proxy_backend_pool_idle(f.p), CONC); /* not yet: idle since the reuse */
    assert_int_equal(tb_ended(f.be[0]), 0);
    uint64_t by = idle2 + POOL_TIMEOUT_MS + SWEEP_MS + LATE_MS, gone = 0;
    while (th_now_ms() < by) { /* the kept one stays busy through the sweeps */
        keep_until(fds[0], &last, th_now_ms() + 10);
        if (gone == 0 && proxy_backend_pool_idle(f.p) == 1 && tb_ended(f.be[0]) == CONC - 1)
            gone = th_now_ms() - idle2;
    }
    if (gone == 0)
        wait_pool(&f, 1, CONC - 1, by, "after the reused ones timed out");
    assert_int_equal(proxy_backend_pool_idle(f.p), 1);
    assert_int_equal(tb_ended(f.be[0]), CONC - 1);
    assert_int_equal(tb_accepts(f.be[0]), CONC);
    printf("  reused once, then idle: %d closed %llu ms after (timeout %d, sweep %d); the one "
           "reused every %d ms stays\n",
           CONC - 1, (unsigned long long)gone, POOL_TIMEOUT_MS, SWEEP_MS, POOL_TIMEOUT_MS / 3);

    /* the last one, left alone, goes too */
    uint64_t idle3 = last;
    sleep_until(idle3 + POOL_TIMEOUT_MS - EARLY_MS);
    assert_int_equal(proxy_backend_pool_idle(f.p), 1);
    took = wait_pool(&f, 0, CONC, idle3 + POOL_TIMEOUT_MS + SWEEP_MS + LATE_MS,
                     "after the last one timed out");
    printf("  and the last one %llu ms after its last use\n",
           (unsigned long long)(took + POOL_TIMEOUT_MS - EARLY_MS));
    assert_int_equal(tb_accepts(f.be[0]), CONC);

    stop(&f, fds);
}

/* A backend that closes idle connections itself: each close is seen while idle and leaves the
 * pool (and the count) at once, long before the gateway's own timeout. */
static void test_pool_counts_connections_the_backend_closes(void **state)
{
    (void)state;
    struct th_fixture f;
    int fds[CONC];
    start(&f, 60000, fds);
    tb_set_idle_close(f.be[0], 300, 0);
    burst(fds);
    uint64_t t = th_now_ms();
    assert_int_equal(tb_accepts(f.be[0]), CONC);
    wait_pool(&f, 0, CONC, t + 300 + LATE_MS, "after the backend closed them");
    printf("  backend closing at 300 ms idle: pool 0 after %llu ms\n",
           (unsigned long long)(th_now_ms() - t));
    stop(&f, fds);
}

/* A drain closes the idle pool at once. */
static void test_pool_emptied_by_drain(void **state)
{
    (void)state;
    struct th_fixture f;
    int fds[CONC];
    start(&f, 60000, fds);
    burst(fds);
    wait_pool(&f, CONC, 0, th_now_ms() + 500, "after the burst");
    for (int i = 0; i < CONC; i++) {
        close(fds[i]);
        fds[i] = -1;
    }
    assert_int_equal(proxy_drain(f.p, 2000), 0);
    wait_pool(&f, 0, CONC, th_now_ms() + 500, "after the drain");
    th_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_gives_connections_back_after_the_idle_timeout),
        cmocka_unit_test(test_pool_counts_connections_the_backend_closes),
        cmocka_unit_test(test_pool_emptied_by_drain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
