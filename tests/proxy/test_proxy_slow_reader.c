/*
 * test_proxy_slow_reader.c - a keep-alive client that reads a response more slowly than the
 * backend sends it. The proxy's last writes of the response are then still queued in libuv
 * when the exchange ends and the session gives its request state back (sess_next); their
 * completions arrive on a session with no request. Found by the ASan soak (a worker stopped
 * on "member access within null pointer of type 'struct sess_req'" in sess_written; a release
 * build would take SIGSEGV). The connection must stay usable: the next request on it is
 * answered, on a fresh and on a pooled backend connection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define BIG (4u << 20) /* more than the client's socket buffer and the proxy's queue hold */
#define DOWNLOADS 10   /* without the fix, the first few fail (10 of 10 runs, ASan build) */

/* Reads a response of BIG bytes in small pieces with pauses: the proxy's writes queue. */
static void read_download_slowly(int fd)
{
    char head[4096];
    size_t hl = 0;
    /* the head, byte by byte so nothing of the body is taken with it */
    while (hl < 4 || memcmp(head + hl - 4, "\r\n\r\n", 4) != 0) {
        assert_true(hl < sizeof(head) - 1);
        assert_int_equal(tc_recv(fd, head + hl, 1), 1);
        hl++;
    }
    head[hl] = '\0';
    assert_non_null(strstr(head, "200"));
    size_t got = 0;
    char buf[16384];
    int piece = 0;
    while (got < BIG) {
        size_t want = BIG - got < sizeof(buf) ? BIG - got : sizeof(buf);
        ssize_t n = tc_recv(fd, buf, want);
        assert_true(n > 0);
        got += (size_t)n;
        if (++piece % 4 == 0)
            usleep(1000);
    }
}

static void one_slow_download_then_more(uint16_t port)
{
    int fd = tc_connect(port);
    int rcvbuf = 65536; /* no autotuning: the proxy's queue, not the kernel, holds the rest */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    char req[128];
    snprintf(req, sizeof(req), "GET /download?n=%u HTTP/1.1\r\nHost: app.localhost\r\n\r\n", BIG);
    tc_sends(fd, req);
    usleep(200000); /* the proxy fills the sockets and its queue */
    read_download_slowly(fd);
    /* the queued writes complete while the connection waits for its next request */
    usleep(200000);
    tc_sends(fd, "GET /id HTTP/1.1\r\nHost: app.localhost\r\n\r\n");
    struct tc_resp r;
    assert_int_equal(tc_read(fd, &r, 1024, false), 200);
    assert_string_equal(r.body, "backend-0");
    assert_false(r.closed);
    tc_resp_free(&r);
    close(fd);
}

static void test_slow_reader_keeps_connection(void **state)
{
    (void)state;
    struct proxy_config cfg;
    proxy_config_init(&cfg);
    cfg.workers = 1;
    struct th_fixture f;
    th_fixture_start(&f, 1, &cfg);
    /* the first download opens a fresh backend connection, the next ones reuse the pool */
    for (int i = 0; i < DOWNLOADS; i++)
        one_slow_download_then_more(f.port);
    assert_int_equal(tb_accepts(f.be[0]), 1);
    th_fixture_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_reader_keeps_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
