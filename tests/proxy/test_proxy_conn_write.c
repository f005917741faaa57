/*
 * test_proxy_conn_write.c - every write failure of a proxy connection reaches its on_written
 * callback, on a later loop turn, so the session's one error path runs at once (issue 9 item 7,
 * last point). Before, a write libuv refused at once (EPIPE after a shutdown) or a layer that
 * could not encode freed its request silently: the session learnt nothing and waited for its
 * timeout. A reset by the peer, reported by libuv itself, is checked as well; and the
 * connection still closes with every handle, the loop left empty.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "proxy/conn.h"
#include "proxy/proxy.h"

struct probe {
    int written_calls; /* on_written calls */
    int last_status;   /* status of the last one */
    bool in_write;     /* inside a proxy_conn_* call of the test: must not be called back */
    bool reentered;    /* on_written ran inside such a call */
    bool closed;       /* on_closed ran */
};

static void probe_written(struct proxy_conn *c, int status)
{
    struct probe *pr = c->owner;
    pr->written_calls++;
    pr->last_status = status;
    if (pr->in_write)
        pr->reentered = true;
}

static void probe_read(struct proxy_conn *c, int status)
{
    (void)c;
    (void)status;
}

static void probe_closed(struct proxy_conn *c)
{
    struct probe *pr = c->owner;
    pr->closed = true;
}

/* A loop and a connected pair on loopback: peer is a plain socket, c wraps the other end. */
struct pair {
    uv_loop_t loop;
    struct proxy_conn_loop conns;
    struct proxy_conn c;
    struct probe pr;
    int peer;
};

static void open_pair(struct pair *t)
{
    uv_loop_t *loop = &t->loop;
    struct proxy_conn *c = &t->c;
    struct probe *pr = &t->pr;
    int *peer = &t->peer;
    uv_loop_init(loop);
    proxy_conn_loop_init(loop, &t->conns);
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &al), 0);
    *peer = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*peer, (struct sockaddr *)&a, sizeof(a)), 0);
    int fd = accept(lfd, NULL, NULL);
    assert_true(fd >= 0);
    close(lfd);
    memset(pr, 0, sizeof(*pr));
    assert_int_equal(proxy_conn_init(&t->conns, c, 4096, 65536), 0);
    assert_int_equal(uv_tcp_open(&c->tcp, fd), 0);
    c->owner = pr;
    c->on_read = probe_read;
    c->on_written = probe_written;
    c->on_closed = probe_closed;
}

/* Runs the loop until on_written was called or `turns` turns passed. */
static void run_until_written(uv_loop_t *loop, struct probe *pr, int turns)
{
    for (int i = 0; i < turns && pr->written_calls == 0; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        if (pr->written_calls == 0)
            usleep(1000);
    }
}

/* Closes the connection (and the peer, unless -1): every handle closes, the loop is empty. */
static void close_and_check(struct pair *t)
{
    proxy_conn_close(&t->c);
    proxy_conn_loop_close(&t->conns);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_true(t->pr.closed);
    if (t->peer >= 0)
        close(t->peer);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

/* A write after our own shutdown: libuv refuses it at once with EPIPE. */
static void test_write_after_shutdown_reported(void **state)
{
    (void)state;
    static struct pair t;
    open_pair(&t);
    proxy_conn_shutdown(&t.c);
    t.pr.in_write = true;
    assert_int_equal(proxy_conn_write(&t.c, "late", 4), 0); /* queued: fails at the flush */
    int rc = proxy_conn_flush(&t.c);
    t.pr.in_write = false;
    assert_int_equal(rc, UV_EPIPE);
    assert_int_equal(t.pr.written_calls, 0); /* not from inside the flush */
    run_until_written(&t.loop, &t.pr, 5);    /* the next turn */
    assert_int_equal(t.pr.written_calls, 1);
    assert_int_equal(t.pr.last_status, UV_EPIPE);
    assert_false(t.pr.reentered);
    close_and_check(&t);
}

static int failing_decode(struct proxy_conn *c, const char *raw, size_t len)
{
    (void)c;
    (void)raw;
    (void)len;
    return 0;
}

static int failing_encode(struct proxy_conn *c, const char *data, size_t len)
{
    (void)c;
    (void)data;
    (void)len;
    return UV_EPROTO;
}

/* A layer (TLS) that cannot encode what is flushed. */
static void test_layer_encode_failure_reported(void **state)
{
    (void)state;
    static const struct proxy_conn_layer layer = {failing_decode, failing_encode, NULL};
    static struct pair t;
    open_pair(&t);
    t.c.layer = &layer;
    t.pr.in_write = true;
    assert_int_equal(proxy_conn_write(&t.c, "data", 4), 0);
    assert_int_equal(proxy_conn_flush(&t.c), UV_EPROTO);
    t.pr.in_write = false;
    run_until_written(&t.loop, &t.pr, 5);
    assert_int_equal(t.pr.written_calls, 1);
    assert_int_equal(t.pr.last_status, UV_EPROTO);
    assert_false(t.pr.reentered);
    close_and_check(&t);
}

/* The peer resets the connection: libuv's own failure report, through the same callback. */
static void test_write_to_reset_peer_reported(void **state)
{
    (void)state;
    static struct pair t;
    open_pair(&t);
    struct linger lg = {1, 0};
    setsockopt(t.peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(t.peer);
    t.peer = -1;
    usleep(20000); /* the RST is in */
    static char big[1 << 20];
    for (int i = 0; i < 4 && t.pr.written_calls == 0; i++) {
        proxy_conn_write(&t.c, big, sizeof(big));
        proxy_conn_flush(&t.c);
        run_until_written(&t.loop, &t.pr, 200);
    }
    assert_true(t.pr.written_calls >= 1);
    assert_true(t.pr.last_status < 0);
    close_and_check(&t);
}

/* A failure pending when the connection closes is dropped, and the close still completes. */
static void test_close_with_failure_pending(void **state)
{
    (void)state;
    static struct pair t;
    open_pair(&t);
    proxy_conn_shutdown(&t.c);
    proxy_conn_write(&t.c, "x", 1);
    proxy_conn_flush(&t.c);
    close_and_check(&t);
    assert_int_equal(t.pr.written_calls, 0);
}

/* Forwarding without a copy: bytes read on one connection and passed on with
 * proxy_conn_write_from() go out in the read buffer itself (it is lent: the source reads into a
 * new one), and stay intact while queued behind a peer that does not read, however much more the
 * source reads meanwhile (a lent buffer written into again would corrupt them). */
static void test_forward_lends_read_buffer(void **state)
{
    (void)state;
    static struct pair a, b; /* a: the source, b: the destination */
    open_pair(&a);
    a.c.on_read = probe_read;
    /* b on a's loop: one loop runs both */
    int bpeer;
    {
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t al = sizeof(sa);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 1), 0);
        assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &al), 0);
        bpeer = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(bpeer, (struct sockaddr *)&sa, sizeof(sa)), 0);
        int fd = accept(lfd, NULL, NULL);
        close(lfd);
        memset(&b.pr, 0, sizeof(b.pr));
        assert_int_equal(proxy_conn_init(&a.conns, &b.c, 4096, 65536), 0);
        assert_int_equal(uv_tcp_open(&b.c.tcp, fd), 0);
        b.c.owner = &b.pr;
        b.c.on_read = probe_read;
        b.c.on_written = probe_written;
        b.c.on_closed = probe_closed;
    }
    enum { TOTAL = 8 << 20 };
    static unsigned char sent[TOTAL], got[TOTAL];
    for (size_t i = 0; i < TOTAL; i++)
        sent[i] = (unsigned char)(i * 31 + (i >> 12));
    assert_int_equal(proxy_conn_read_start(&a.c), 0);
    size_t in = 0, fwd = 0, lent = 0;
    while (fwd < TOTAL) {
        ssize_t n = 0;
        if (in < TOTAL) {
            n = send(a.peer, sent + in, TOTAL - in < 65536 ? TOTAL - in : 65536, MSG_DONTWAIT);
            if (n > 0)
                in += (size_t)n;
        }
        /* nothing could be sent: wait for a to read (it always reads) */
        uv_run(&a.loop, n > 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
        size_t avail = proxy_conn_avail(&a.c);
        if (avail == 0)
            continue;
        bool was = a.c.in_lent;
        proxy_conn_write_from(&b.c, &a.c, proxy_conn_data(&a.c), avail);
        lent += !was && a.c.in_lent;
        proxy_conn_consume(&a.c, avail);
        /* as the session does after forwarding: a piece under the lending size was copied
         * into b's output buffer and waits for the flush (without it the test hung whenever
         * the last read was short: 3 of 8 runs under ASan at load 3) */
        proxy_conn_flush(&b.c);
        proxy_conn_release_idle(&a.c);
        fwd += avail;
    }
    /* b's peer has read nothing so far: most of it waits in lent buffers */
    fprintf(stderr, "forwarded %d bytes, %zu read buffers lent, %zu bytes queued unread\n", TOTAL,
            lent, b.c.queued);
    assert_true(lent > 0);
    size_t have = 0;
    while (have < TOTAL) {
        ssize_t n = recv(bpeer, got + have, TOTAL - have, MSG_DONTWAIT);
        if (n > 0)
            have += (size_t)n;
        else
            poll(&(struct pollfd){bpeer, POLLIN, 0}, 1, 5); /* b's writes need the loop too */
        uv_run(&a.loop, UV_RUN_NOWAIT);
    }
    assert_memory_equal(sent, got, TOTAL);
    assert_int_equal(b.c.queued, 0);
    assert_int_equal(b.pr.written_calls > 0, true);
    assert_true(b.pr.last_status == 0);
    proxy_conn_close(&b.c);
    close(bpeer);
    close_and_check(&a);
    assert_int_equal(proxy_read_buffers(), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemon does: a write to a reset peer is an error code */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_after_shutdown_reported),
        cmocka_unit_test(test_layer_encode_failure_reported),
        cmocka_unit_test(test_write_to_reset_peer_reported),
        cmocka_unit_test(test_close_with_failure_pending),
        cmocka_unit_test(test_forward_lends_read_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
