/*
 * test_acme_stop.c - a node stops promptly with a certificate order in flight.
 *
 * The "CA" is a TCP listener that never accepts: the kernel completes the handshake, so the
 * node's ACME client (curl, 30 s per request) waits for a TLS answer that never comes. A
 * name is exposed so the node orders its certificate; once the log says so, SIGTERM. The
 * node used to wait for curl's timeout before exiting (about 30 s); the order is now
 * canceled and the stop takes what a stop without an order takes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/node/harness.h"

#define STOP_BOUND_MS 5000 /* the leave-spread wait and closing handles; a stuck order: 30 s */

static struct nt_node n1;
static int ca_fd = -1;
static char env_key[400], out[16384], err[8192];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int teardown(void **state)
{
    (void)state;
    if (n1.pid)
        nt_node_stop(&n1, SIGKILL, 5000);
    if (ca_fd >= 0)
        close(ca_fd);
    nt_cleanup();
    return 0;
}

static void stop_with_an_order_in_flight_is_prompt(void **state)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    char directory[96], backend[64];

    (void)state;
    /* the silent CA: listens, never accepts, never answers */
    ca_fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(ca_fd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(ca_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(ca_fd, 16), 0);
    assert_int_equal(getsockname(ca_fd, (struct sockaddr *)&sa, &len), 0);
    snprintf(directory, sizeof(directory), "https://127.0.0.1:%d/dir", ntohs(sa.sin_port));

    const char *extra[] = {"--allow-loopback-backends", "--domain", "gw.test",
                           "--acme-directory",          directory,  NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", extra), 0);
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    snprintf(backend, sizeof(backend), "http://127.0.0.15:%d", nt_free_port("127.0.0.15"));
    assert_int_equal(ctl(n1.api_url, "keygen", NULL), 0);
    assert_int_equal(ctl(n1.api_url, "reserve", "shop", NULL), 0);
    assert_int_equal(ctl(n1.api_url, "expose", "shop", "--backend", backend, NULL), 0);

    long t0 = now_ms();
    while (!nt_file_has(n1.log, "ordering a certificate") && now_ms() - t0 < 20000)
        usleep(100000);
    assert_true(nt_file_has(n1.log, "ordering a certificate"));
    usleep(1000 * 1000); /* well inside the request curl would wait 30 s for */

    long stop0 = now_ms();
    int rc = nt_node_stop(&n1, SIGTERM, 60000);
    long took = now_ms() - stop0;
    printf("  stop with an order in flight took %ld ms (exit %d)\n", took, rc);
    assert_int_equal(rc, 0);
    assert_true(took < STOP_BOUND_MS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(stop_with_an_order_in_flight_is_prompt, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
