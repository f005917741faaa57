/*
 * test_drain.c - SIGTERM loses no request.
 *
 * Under load: clients hammer a name whose backend answers slowly, the node gets SIGTERM
 * mid-load, and every request the gateway accepted is answered in full (the backend's count
 * equals the clients' 200s); the rest were refused at connect (safe to retry elsewhere). The
 * node exits 0.
 *
 * From the accept queue: connections whose handshake the kernel completed but that the worker
 * has not accepted yet when it stops accepting (the soak saw a PUT reset 30 ms after SIGTERM)
 * are answered too, with Connection: close, none reset. To hold them in the queue the test
 * stops the one proxy worker thread alone (ptrace), sends SIGTERM, connects and sends the
 * requests, then lets the worker go: the drain command is the first thing it sees.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <poll.h>
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "node/node.h"

#define CLIENTS 16
#define BACKEND_DELAY_MS 300

static struct nt_node node;
static atomic_int ok, refused, bad, ok_in_flight;
static atomic_bool term_sent;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* One request on a new connection: 1 answered 200 in full, 0 refused at connect, -1 anything
 * else (a reset, a close without an answer, a partial or wrong answer: a lost request; a
 * connection the kernel completed is the gateway's to answer, even while it drains). */
static int one_request(bool *sent_before_term)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)node.http_port)};
    const char req[] = "GET / HTTP/1.1\r\nHost: slow.localhost\r\nConnection: close\r\n\r\n";
    char resp[4096];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), rc = -1;

    inet_pton(AF_INET, node.ip, &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return 0;
    }
    if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(req) - 1)) {
        fprintf(stderr, "send failed after the connect: %s\n", strerror(errno));
        close(fd);
        return -1;
    }
    *sent_before_term = !atomic_load(&term_sent);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 15000) <= 0)
            break;
        n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (n < 0)
            fprintf(stderr, "recv after %zu bytes: %s\n", got, strerror(errno));
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    resp[got] = '\0';
    close(fd);
    if (strncmp(resp, "HTTP/1.1 200", 12) == 0 && strstr(resp, "\r\n\r\nslow-backend\n"))
        rc = 1;
    else
        fprintf(stderr, "lost or wrong answer (%zu bytes): %.80s\n", got, resp);
    return rc;
}

static void *client(void *arg)
{
    for (;;) {
        bool before = false;
        int r = one_request(&before);
        if (r == 1) {
            atomic_fetch_add(&ok, 1);
            if (before && atomic_load(&term_sent))
                atomic_fetch_add(&ok_in_flight, 1);
        } else if (r == 0) {
            atomic_fetch_add(&refused, 1);
            if (atomic_load(&term_sent))
                break; /* the gateway stopped accepting: this client is done */
        } else {
            atomic_fetch_add(&bad, 1);
        }
        if (atomic_load(&term_sent) && r != 1)
            break;
    }
    return NULL;
}

/* Exposes "slow" on `be` through the node's API and waits until the node serves it. */
static void expose_slow(struct nt_backend *be)
{
    char backend[64], key[400], env_key[420], out[4096], err[4096], body[128];
    const char *env[] = {env_key, NULL};
    const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
    const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", "slow", NULL};
    const char *expose[] = {"webgwctl", "--api",     node.api_url, "expose",
                            "slow",     "--backend", backend,      NULL};
    int st = 0;

    snprintf(backend, sizeof(backend), "http://127.0.0.13:%d", nt_backend_port(be));
    snprintf(key, sizeof(key), "%s/owner.key", nt_tmpdir());
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s", key);
    if (access(key, F_OK) != 0)
        assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);
    for (int i = 0; i < 50 && st != 200; i++) {
        st = nt_get(node.ip, node.http_port, "slow.localhost", "/", body, sizeof(body));
        if (st != 200)
            usleep(50000);
    }
    assert_int_equal(st, 200);
}

static void graceful_drain_under_load_loses_no_request(void **state)
{
    struct nt_backend *be = nt_backend_start("127.0.0.13", "slow-backend", BACKEND_DELAY_MS);
    const char *extra[] = {"--allow-loopback-backends", "--drain-timeout", "10", NULL};
    pthread_t threads[CLIENTS];
    uint64_t t0, stop_us;
    int status;

    assert_int_equal(nt_node_start(&node, "drain", "127.0.0.1", extra), 0);
    expose_slow(be);
    atomic_store(&ok, 0);
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&threads[i], NULL, client, NULL);
    usleep(1000 * 1000);
    atomic_store(&term_sent, true);
    t0 = now_us();
    status = nt_node_stop(&node, SIGTERM, 20000);
    stop_us = now_us() - t0;
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);
    fprintf(stderr,
            "drain: %d answered (%d of them in flight at SIGTERM), %d refused at connect, %d "
            "lost; backend answered %lu; stop took %.0f ms\n",
            atomic_load(&ok), atomic_load(&ok_in_flight), atomic_load(&refused), atomic_load(&bad),
            nt_backend_requests(be), (double)stop_us / 1000.0);
    assert_int_equal(status, 0);
    assert_int_equal(atomic_load(&bad), 0);
    assert_true(atomic_load(&ok) > CLIENTS);
    /* requests were in flight when SIGTERM came, and they were answered */
    assert_true(atomic_load(&ok_in_flight) > 0);
    /* nothing the backend answered was lost on the way back (the first 200 above is extra) */
    assert_int_equal(nt_backend_requests(be), (unsigned long)atomic_load(&ok) + 1);
    nt_backend_stop(be);
}

/* ---- connections in the accept queue ------------------------------------------------- */

#define QUEUED 32 /* connections waiting in the worker's accept queue at the drain */

/* The thread id of the daemon's proxy worker 0 (named by proxy.c), or -1. */
static pid_t worker_tid(pid_t pid)
{
    char path[320], comm[32];
    struct dirent *d;
    pid_t tid = -1;
    DIR *dir;

    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    dir = opendir(path);
    if (dir == NULL)
        return -1;
    while (tid < 0 && (d = readdir(dir)) != NULL) {
        FILE *f;
        if (d->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid, d->d_name);
        f = fopen(path, "r");
        if (f == NULL)
            continue;
        if (fgets(comm, sizeof(comm), f) && strcmp(comm, "proxy-worker0\n") == 0)
            tid = (pid_t)atoi(d->d_name);
        fclose(f);
    }
    closedir(dir);
    return tid;
}

/* Reads one answer until the gateway closes; returns what arrived, NUL-terminated, and the
 * error that ended it (0: a clean close). */
static size_t read_answer(int fd, char *buf, size_t cap, int *error)
{
    size_t got = 0;

    *error = ETIMEDOUT;
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 5000) <= 0)
            break;
        n = recv(fd, buf + got, cap - 1 - got, 0);
        if (n <= 0) {
            *error = n == 0 ? 0 : errno;
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

static void queued_connections_are_answered_not_reset(void **state)
{
    struct nt_backend *be = nt_backend_start("127.0.0.13", "queued-backend", 0);
    const char *extra[] = {"--allow-loopback-backends", "--workers", "1",
                           "--drain-timeout",           "10",        NULL};
    const char req[] = "POST / HTTP/1.1\r\nHost: slow.localhost\r\nContent-Length: 0\r\n\r\n";
    struct sockaddr_in sin = {.sin_family = AF_INET};
    int fds[QUEUED], answered = 0, reset = 0, other = 0, wst, status;
    pid_t tid;

    (void)state;
    assert_int_equal(nt_node_start(&node, "drainq", "127.0.0.1", extra), 0);
    expose_slow(be);
    tid = worker_tid(node.pid);
    assert_true(tid > 0);
    /* the worker alone stops; the control loop and the kernel go on */
    assert_int_equal(ptrace(PTRACE_SEIZE, tid, NULL, NULL), 0);
    assert_int_equal(ptrace(PTRACE_INTERRUPT, tid, NULL, NULL), 0);
    assert_int_equal(waitpid(tid, &wst, __WALL), tid);
    assert_true(WIFSTOPPED(wst));
    /* the control loop starts the drain: the command waits in the stopped worker's loop */
    assert_int_equal(kill(node.pid, SIGTERM), 0);
    for (int i = 0; i < 500 && !nt_file_has(node.log, "draining (SIGTERM)"); i++)
        usleep(10000);
    assert_true(nt_file_has(node.log, "draining (SIGTERM)"));
    usleep(200000); /* the thread pool runs proxy_drain, which wakes the worker's loop */
    /* the listener is still open: the kernel completes these handshakes into its queue */
    sin.sin_port = htons((uint16_t)node.http_port);
    inet_pton(AF_INET, node.ip, &sin.sin_addr);
    for (int i = 0; i < QUEUED; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)), 0);
        assert_int_equal(send(fds[i], req, sizeof(req) - 1, MSG_NOSIGNAL),
                         (ssize_t)sizeof(req) - 1);
    }
    assert_int_equal(ptrace(PTRACE_DETACH, tid, NULL, NULL), 0);
    for (int i = 0; i < QUEUED; i++) {
        char buf[4096];
        int error;
        size_t got = read_answer(fds[i], buf, sizeof(buf), &error);
        if (got > 0 && error == 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0 &&
            strstr(buf, "\r\nConnection: close\r\n") && strstr(buf, "\r\n\r\nqueued-backend\n"))
            answered++;
        else if (error == ECONNRESET)
            reset++;
        else
            other++;
        if (error != 0 || got == 0)
            fprintf(stderr, "connection %d: %zu bytes, %s: %.60s\n", i, got,
                    error ? strerror(error) : "closed", buf);
        close(fds[i]);
    }
    status = nt_node_stop(&node, 0, 20000);
    fprintf(stderr, "queued at the drain: %d answered with Connection: close, %d reset, %d other\n",
            answered, reset, other);
    assert_int_equal(reset, 0);
    assert_int_equal(answered, QUEUED);
    /* the warm-up GET and the 32 (counted after each answer: read once the node is gone) */
    assert_int_equal(nt_backend_requests(be), QUEUED + 1);
    assert_int_equal(status, 0);
    nt_backend_stop(be);
}

/* After each test: a node a failed test left running is killed (a stopped worker too). */
static int stop_node(void **state)
{
    (void)state;
    if (node.pid)
        nt_node_stop(&node, SIGKILL, 5000);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(graceful_drain_under_load_loses_no_request, stop_node),
        cmocka_unit_test_teardown(queued_connections_are_answered_not_reset, stop_node),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
