/*
 * test_loop.c - request loops between real webgw processes end at the first repeat.
 *
 * Fleet A is two gateways (a1, a2) sharing a cluster key; fleet B is one gateway (b) with no
 * key. Two loops, each tried with the default per-IP connection limit and with
 * --max-conns-per-ip 0 (where, before Via, nothing stopped a loop at all):
 *
 *   one fleet   name "inner" on A has two backends, relays that stand for a NAT in front of
 *               a1 and a2 (so neither gateway can tell the address is its own): a1 forwards
 *               to a1 or a2, which sees fleet A in Via and answers 508. Two requests in all.
 *   two fleets  name "ping" on A points at b, and "ping" on B points at a1: a1 -> b -> a1,
 *               which sees fleet A in Via and answers 508. Three requests in all.
 *
 * "Requests in all" is the sum of webgw_http_requests_total{name=...} over the gateways, and
 * the client gets the 508.
 */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

/* ---- a TCP relay: what a NAT or a TCP load balancer in front of a gateway does ---------- */

struct relay {
    int fd;                /* listening socket */
    int port;              /* its port */
    char to_ip[32];        /* where connections go */
    int to_port;           /* and its port */
    atomic_bool stopping;  /* the acceptor ends */
    atomic_ulong accepted; /* connections relayed */
    pthread_t thread;      /* acceptor */
};

struct relay_conn {
    int a, b; /* client side, target side */
};

static void *relay_pump(void *arg)
{
    struct relay_conn *c = arg;
    char buf[16384];

    for (;;) {
        struct pollfd p[2] = {{.fd = c->a, .events = POLLIN}, {.fd = c->b, .events = POLLIN}};
        if (poll(p, 2, 20000) <= 0)
            break;
        for (int i = 0; i < 2; i++) {
            if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(p[i].fd, buf, sizeof(buf), 0);
            if (n <= 0 || send(i ? c->a : c->b, buf, (size_t)n, MSG_NOSIGNAL) != n)
                goto out;
        }
    }
out:
    close(c->a);
    close(c->b);
    free(c);
    return NULL;
}

static void *relay_accept(void *arg)
{
    struct relay *r = arg;

    while (!atomic_load(&r->stopping)) {
        struct pollfd p = {.fd = r->fd, .events = POLLIN};
        struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)r->to_port)};
        struct relay_conn *c;
        pthread_t t;
        int a, b;

        if (poll(&p, 1, 100) <= 0 || (a = accept(r->fd, NULL, NULL)) < 0)
            continue;
        inet_pton(AF_INET, r->to_ip, &to.sin_addr);
        b = socket(AF_INET, SOCK_STREAM, 0);
        if (b < 0 || connect(b, (struct sockaddr *)&to, sizeof(to)) != 0) {
            close(a);
            if (b >= 0)
                close(b);
            continue;
        }
        atomic_fetch_add(&r->accepted, 1);
        c = malloc(sizeof(*c));
        c->a = a;
        c->b = b;
        if (pthread_create(&t, NULL, relay_pump, c) != 0) {
            close(a);
            close(b);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

static struct relay *relay_start(const char *ip, const char *to_ip, int to_port)
{
    struct relay *r = calloc(1, sizeof(*r));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    int one = 1;

    snprintf(r->to_ip, sizeof(r->to_ip), "%s", to_ip);
    r->to_port = to_port;
    inet_pton(AF_INET, ip, &sin.sin_addr);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(r->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(r->fd, 512) != 0 ||
        getsockname(r->fd, (struct sockaddr *)&sin, &sl) != 0) {
        perror("relay_start");
        exit(1);
    }
    r->port = ntohs(sin.sin_port);
    pthread_create(&r->thread, NULL, relay_accept, r);
    return r;
}

/* Stops accepting and frees the relay; connections still open end when their peers close
 * (their pump threads hold only the two sockets). */
static void relay_stop(struct relay *r)
{
    atomic_store(&r->stopping, true);
    pthread_join(r->thread, NULL);
    close(r->fd);
    free(r);
}

/* ---- the fleets ------------------------------------------------------------------------- */

static struct nt_node a1, a2, b;
static struct relay *ra1, *ra2;
static char env_key[400], out[65536], err[8192];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

/* webgw_http_requests_total{name="NAME"} on one gateway (0 when absent). */
static unsigned long requests_of(const struct nt_node *n, const char *name)
{
    struct ctl_response r;
    char want[128];
    unsigned long v = 0;
    const char *p;

    snprintf(want, sizeof(want), "webgw_http_requests_total{name=\"%s\"} ", name);
    if (nt_api(n, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body &&
        (p = strstr(r.body, want)) != NULL)
        v = strtoul(p + strlen(want), NULL, 10);
    ctl_response_free(&r);
    return v;
}

struct route_check {
    const struct nt_node *at; /* gateway */
    const char *host;         /* Host */
};

/* The name is routed there (any answer but 404 means a route: 508 included). */
static bool routed(void *ctx)
{
    struct route_check *rc = ctx;
    char body[512];
    int st = nt_get(rc->at->ip, rc->at->http_port, rc->host, "/", body, sizeof(body));

    return st != 0 && st != 404;
}

/* `run` keeps each run's data dirs apart. */
static void start_fleets(const char *conns_per_ip, const char *run)
{
    char seed[64], url[96], keyfile[512], d1[16], d2[16], d3[16];
    const char *common[] = {"--allow-loopback-backends", "--max-conns-per-ip", conns_per_ip};

    snprintf(d1, sizeof(d1), "a1-%s", run);
    snprintf(d2, sizeof(d2), "a2-%s", run);
    snprintf(d3, sizeof(d3), "b-%s", run);
    /* a fixed key: fleet A's pseudonym derives from it */
    snprintf(keyfile, sizeof(keyfile), "%s",
             nt_write_tmp("fleet-a.key", "c2VjcmV0LWtleS1vZi1mbGVldC1hLWZvci10aGUtdGU=\n"));
    {
        const char *x[] = {common[0], common[1],       common[2], "--node-name",
                           "a1",      "--cluster-key", keyfile,   NULL};
        assert_int_equal(nt_node_start(&a1, d1, "127.0.0.81", x), 0);
    }
    snprintf(seed, sizeof(seed), "127.0.0.81:%d", a1.gossip_port);
    {
        const char *x[] = {common[0],       common[1], common[2], "--node-name", "a2",
                           "--cluster-key", keyfile,   "--join",  seed,          NULL};
        assert_int_equal(nt_node_start(&a2, d2, "127.0.0.82", x), 0);
    }
    {
        const char *x[] = {common[0], common[1], common[2], "--node-name", "b", NULL};
        assert_int_equal(nt_node_start(&b, d3, "127.0.0.83", x), 0);
    }
    ra1 = relay_start("127.0.0.91", a1.ip, a1.http_port);
    ra2 = relay_start("127.0.0.92", a2.ip, a2.http_port);

    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    if (access(env_key + strlen("WEBGW_KEY="), R_OK) != 0)
        assert_int_equal(ctl(a1.api_url, "keygen", NULL), 0);

    /* one fleet: "inner" on A goes to a1 or a2 through their relays */
    {
        char r1[64], r2[64];
        snprintf(r1, sizeof(r1), "http://127.0.0.91:%d", ra1->port);
        snprintf(r2, sizeof(r2), "http://127.0.0.92:%d", ra2->port);
        assert_int_equal(ctl(a1.api_url, "reserve", "inner", NULL), 0);
        assert_int_equal(ctl(a1.api_url, "expose", "inner", "--backend", r1, "--backend", r2, NULL),
                         0);
    }
    /* two fleets: "ping" on A goes to b, "ping" on B goes to a1 */
    snprintf(url, sizeof(url), "http://%s:%d", b.ip, b.http_port);
    assert_int_equal(ctl(a1.api_url, "reserve", "ping", NULL), 0);
    assert_int_equal(ctl(a1.api_url, "expose", "ping", "--backend", url, NULL), 0);
    snprintf(url, sizeof(url), "http://%s:%d", a1.ip, a1.http_port);
    assert_int_equal(ctl(b.api_url, "reserve", "ping", NULL), 0);
    assert_int_equal(ctl(b.api_url, "expose", "ping", "--backend", url, NULL), 0);

    /* every gateway routes both names before anything is counted (a2 learns by gossip) */
    {
        struct route_check checks[] = {{&a1, "inner.localhost"},
                                       {&a2, "inner.localhost"},
                                       {&a1, "ping.localhost"},
                                       {&a2, "ping.localhost"},
                                       {&b, "ping.localhost"}};
        for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++)
            assert_true(nt_wait(routed, &checks[i], 10000));
    }
}

static void stop_fleets(void)
{
    nt_node_stop(&a1, SIGTERM, 10000);
    nt_node_stop(&a2, SIGTERM, 10000);
    nt_node_stop(&b, SIGTERM, 10000);
    relay_stop(ra1);
    relay_stop(ra2);
}

static unsigned long total_requests(const char *name)
{
    return requests_of(&a1, name) + requests_of(&a2, name) + requests_of(&b, name);
}

/* One client request; returns how many requests the gateways handled for it in all, once
 * nothing moves any more. */
static unsigned long one_request(const char *host, const char *name, int *status)
{
    char body[512];
    unsigned long before = total_requests(name), now;

    *status = nt_get(a1.ip, a1.http_port, host, "/", body, sizeof(body));
    /* a loop still going on would keep adding: wait until the count stands still */
    now = total_requests(name);
    for (int i = 0; i < 10; i++) {
        unsigned long again;
        usleep(100000);
        again = total_requests(name);
        if (again == now)
            break;
        now = again;
    }
    if (*status == 508)
        assert_non_null(strstr(body, "request loop"));
    return now - before;
}

static void loops_end_at_the_first_repeat(const char *conns_per_ip, const char *run)
{
    int status;

    start_fleets(conns_per_ip, run);
    /* the routing checks above were loops themselves: each is counted, then this one */
    assert_int_equal(one_request("inner.localhost", "inner", &status), 2);
    assert_int_equal(status, 508);
    assert_int_equal(one_request("ping.localhost", "ping", &status), 3);
    assert_int_equal(status, 508);
    /* and again: nothing was left running by the first ones */
    assert_int_equal(one_request("ping.localhost", "ping", &status), 3);
    assert_int_equal(status, 508);
    stop_fleets();
}

static void loops_end_with_the_per_ip_limit(void **state)
{
    (void)state;
    loops_end_at_the_first_repeat("256", "limit");
}

static void loops_end_without_a_per_ip_limit(void **state)
{
    (void)state;
    loops_end_at_the_first_repeat("0", "nolimit");
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
        cmocka_unit_test(loops_end_with_the_per_ip_limit),
        cmocka_unit_test(loops_end_without_a_per_ip_limit),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
