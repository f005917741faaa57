/*
 * test_drain.c - SIGTERM under load loses no request: clients hammer a name whose backend
 * answers slowly, the node gets SIGTERM mid-load, and every request the gateway accepted is
 * answered in full (the backend's count equals the clients' 200s); the rest were refused at
 * connect (safe to retry elsewhere). The node exits 0.
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
#include <pthread.h>
#include <sys/socket.h>
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

/* One request on a new connection: 1 answered 200 in full, 0 refused before any byte, -1
 * anything else (a partial or wrong answer: a lost request). */
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
        close(fd);
        return 0;
    }
    *sent_before_term = !atomic_load(&term_sent);
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 15000) <= 0)
            break;
        n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    resp[got] = '\0';
    close(fd);
    if (got == 0)
        rc = 0;
    else if (strncmp(resp, "HTTP/1.1 200", 12) == 0 && strstr(resp, "\r\n\r\nslow-backend\n"))
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

static void graceful_drain_under_load_loses_no_request(void **state)
{
    struct nt_backend *be = nt_backend_start("127.0.0.13", "slow-backend", BACKEND_DELAY_MS);
    char backend[64], key[400], env_key[420];
    const char *extra[] = {"--allow-loopback-backends", "--drain-timeout", "10", NULL};
    pthread_t threads[CLIENTS];
    uint64_t t0;
    int status;

    assert_int_equal(nt_node_start(&node, "drain", "127.0.0.1", extra), 0);
    snprintf(backend, sizeof(backend), "http://127.0.0.13:%d", nt_backend_port(be));
    snprintf(key, sizeof(key), "%s/owner.key", nt_tmpdir());
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s", key);
    {
        char out[4096], err[4096];
        const char *env[] = {env_key, NULL};
        const char *keygen[] = {"webgwctl", "--api", node.api_url, "keygen", NULL};
        const char *reserve[] = {"webgwctl", "--api", node.api_url, "reserve", "slow", NULL};
        const char *expose[] = {"webgwctl", "--api",     node.api_url, "expose",
                                "slow",     "--backend", backend,      NULL};
        assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
        assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
        assert_int_equal(nt_run(expose, env, out, sizeof(out), err, sizeof(err)), 0);
    }
    /* the route is in place */
    {
        char body[128];
        int st = 0;
        for (int i = 0; i < 50 && st != 200; i++) {
            st = nt_get(node.ip, node.http_port, "slow.localhost", "/", body, sizeof(body));
            if (st != 200)
                usleep(50000);
        }
        assert_int_equal(st, 200);
    }
    atomic_store(&ok, 0);
    for (int i = 0; i < CLIENTS; i++)
        pthread_create(&threads[i], NULL, client, NULL);
    usleep(1000 * 1000);
    atomic_store(&term_sent, true);
    t0 = now_us();
    status = nt_node_stop(&node, SIGTERM, 20000);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(threads[i], NULL);
    fprintf(stderr,
            "drain: %d answered (%d of them in flight at SIGTERM), %d refused at connect, %d "
            "lost; backend answered %lu; stop took %.0f ms\n",
            atomic_load(&ok), atomic_load(&ok_in_flight), atomic_load(&refused), atomic_load(&bad),
            nt_backend_requests(be), (double)(now_us() - t0) / 1000.0);
    assert_int_equal(status, 0);
    assert_int_equal(atomic_load(&bad), 0);
    assert_true(atomic_load(&ok) > CLIENTS);
    /* requests were in flight when SIGTERM came, and they were answered */
    assert_true(atomic_load(&ok_in_flight) > 0);
    /* nothing the backend answered was lost on the way back (the first 200 above is extra) */
    assert_int_equal(nt_backend_requests(be), (unsigned long)atomic_load(&ok) + 1);
    nt_backend_stop(be);
}

static int teardown(void **state)
{
    if (node.pid)
        nt_node_stop(&node, SIGKILL, 5000);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(graceful_drain_under_load_loses_no_request),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
