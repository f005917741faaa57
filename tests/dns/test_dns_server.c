/*
 * test_dns_server.c - the fleet's DNS server on a real UDP socket (127.0.0.1, an ephemeral
 * port): a burst of queries that lands while the server's loop is busy is all answered. 800
 * queries are sent before the loop runs at all, as when a resolver's retries or a benchmark's
 * 200 in flight arrive while the control loop gossips; with the kernel's default receive
 * buffer (208 KiB, about 200 small datagrams) most of them were dropped, and a benchmark lost
 * 7-14 queries a round where NSD lost none.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "dns/dns.h"

#define BURST 800

static enum dns_name_status fake_status(void *ctx, const char *name)
{
    (void)ctx;
    return strcmp(name, "demo") == 0 ? DNS_NAME_SERVED : DNS_NAME_NONE;
}

static const struct dns_source fake_src = {.name_status = fake_status};

/* "demo.gw.test. A" with id `id`, RD clear, no EDNS. */
static size_t query(uint16_t id, uint8_t *out)
{
    static const uint8_t qname[] = {4, 'd', 'e', 'm', 'o', 2, 'g', 'w', 4, 't', 'e', 's', 't', 0};
    size_t n = 0;

    out[n++] = (uint8_t)(id >> 8);
    out[n++] = (uint8_t)id;
    out[n++] = 0; /* flags: a standard query */
    out[n++] = 0;
    out[n++] = 0; /* QDCOUNT 1 */
    out[n++] = 1;
    memset(out + n, 0, 6); /* AN, NS, AR 0 */
    n += 6;
    memcpy(out + n, qname, sizeof(qname));
    n += sizeof(qname);
    out[n++] = 0; /* QTYPE A */
    out[n++] = 1;
    out[n++] = 0; /* QCLASS IN */
    out[n++] = 1;
    return n;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void burst_while_the_loop_is_busy_is_all_answered(void **state)
{
    uv_loop_t loop;
    char err[DNS_ERR_MAX];
    struct dns_gateway g = {.count = 1};
    struct dns_server_config cfg = {.listen_count = 1};
    struct sockaddr_in *sa = (struct sockaddr_in *)&cfg.listen[0];
    struct sockaddr_storage bound;
    static uint8_t seen[BURST];
    size_t answered = 0, sent = 0;
    uint8_t buf[512];
    int fd;

    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct dns_zone *zone = dns_zone_new("gw.test.", 30, &fake_src, err, sizeof(err));
    assert_non_null(zone);
    snprintf(g.label, sizeof(g.label), "gw1");
    g.addrs[0].family = 4;
    inet_pton(AF_INET, "192.0.2.1", g.addrs[0].ip);
    assert_int_equal(dns_zone_set_fleet(zone, &g, 1), 0);
    sa->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &sa->sin_addr);
    struct dns_server *srv = dns_server_start(&loop, &cfg, zone, err, sizeof(err));
    assert_non_null(srv);
    assert_int_equal(dns_server_bound(srv, 0, &bound), 0);

    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    assert_true(fd >= 0);
    /* the loop has not run: every query waits in the server's receive buffer */
    for (uint16_t id = 0; id < BURST; id++) {
        size_t n = query(id, buf);
        if (sendto(fd, buf, n, 0, (struct sockaddr *)&bound, sizeof(struct sockaddr_in)) ==
            (ssize_t)n)
            sent++;
    }
    assert_int_equal(sent, BURST);
    double end = now_s() + 5;
    while (answered < BURST && now_s() < end) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t r;
        while ((r = recv(fd, buf, sizeof(buf), 0)) >= 12) {
            unsigned id = (unsigned)buf[0] << 8 | buf[1];
            if (id < BURST && !seen[id]) {
                seen[id] = 1;
                answered++;
            }
        }
        if (answered < BURST)
            usleep(1000);
    }
    struct dns_stats st;
    dns_server_stats(srv, &st);
    printf("  %zu of %d queries sent before the loop ran were answered (server counted %llu)\n",
           answered, BURST, (unsigned long long)st.queries_udp);
    assert_int_equal(answered, BURST);

    close(fd);
    dns_server_close(srv);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    dns_zone_free(zone);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(burst_while_the_loop_is_busy_is_all_answered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
