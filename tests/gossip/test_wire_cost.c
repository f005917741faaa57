/*
 * test_wire_cost.c - what a member costs on the wire in the steady state, with what the daemon
 * really sends: 32-hex member ids, its metadata (witness key, API and public addresses) and a
 * cluster key (every packet sealed).
 *
 * A converged cluster runs a virtual minute with nothing happening but probes, acks and
 * anti-entropy; the bytes every member sent, per member per second, are counted as they would
 * be on the wire: datagrams with their IPv4 and UDP headers (28 bytes), stream messages with
 * the frame header and the TCP segments of a short connection (handshake, data, close: see
 * wire_tcp). Prints the figures; the bounds are the compact wire's (version 3), which the
 * text ids of version 2 exceeded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "fakenet.h"
#include "gossip/gossip_int.h"

#define WIRE_IP_UDP 28  /* IPv4 + UDP headers */
#define WIRE_TCP_SEG 52 /* IPv4 + TCP headers with timestamps */
#define WIRE_FRAME 11   /* gossip_uv frame: length, address length, IPv4 address and port */

struct wire {
    double udp_bps; /* datagram bytes per member per second, headers included */
    double tcp_bps; /* stream bytes per member per second, headers included */
    double pkt_ps;  /* datagrams per member per second */
};

/* A short TCP connection carrying `bytes` in `msgs` messages: SYN, SYN-ACK, ACK, a segment
 * (and an ack) per MSS, FIN and ACK both ways. */
static double wire_tcp(uint64_t bytes, uint64_t msgs)
{
    uint64_t segs = bytes / FN_MSS + msgs;

    return (double)(bytes + msgs * WIRE_FRAME + WIRE_TCP_SEG * (msgs * 7 + 2 * segs));
}

static struct wire steady_state(size_t n, uint64_t seed)
{
    struct fakenet *net = fakenet_new(n, seed);
    struct wire w;
    uint64_t b0, c0, s0, sc0;
    const double secs = 60;

    net->daemon_sized = true;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(fakenet_start_join(net, i, 0), 0);
    for (int s = 0; s < 600 && !fakenet_converged(net, n); s++)
        fakenet_run(net, 100);
    assert_true(fakenet_converged(net, n));
    /* past the join chatter and the first round of push-pull exchanges */
    fakenet_run(net, 60000);
    b0 = net->dgram_bytes;
    c0 = net->dgram_count;
    s0 = net->stream_bytes;
    sc0 = net->stream_count;
    fakenet_run(net, (uint64_t)(secs * 1000));
    w.pkt_ps = (double)(net->dgram_count - c0) / (double)n / secs;
    w.udp_bps =
        (double)(net->dgram_bytes - b0 + WIRE_IP_UDP * (net->dgram_count - c0)) / (double)n / secs;
    w.tcp_bps = wire_tcp(net->stream_bytes - s0, net->stream_count - sc0) / (double)n / secs;
    assert_true(fakenet_converged(net, n));
    fakenet_free(net);
    return w;
}

static void test_bytes_per_member_per_second(void **state)
{
    static const size_t sizes[] = {5, 20, 50};

    (void)state;
    printf("  steady state, daemon-sized ids and metadata, encrypted, probe 500ms, push-pull "
           "30s\n");
    printf("  %4s %10s %10s %10s %10s\n", "n", "pkt/s", "udp B/s", "tcp B/s", "total B/s");
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        struct wire w = steady_state(sizes[i], 900 + sizes[i]);
        printf("  %4zu %10.1f %10.1f %10.1f %10.1f\n", sizes[i], w.pkt_ps, w.udp_bps, w.tcp_bps,
               w.udp_bps + w.tcp_bps);
        /* four datagrams a second (two pings, two acks); wire version 2 spent 420 B/s on them,
         * version 3 spends 356 */
        assert_true(w.pkt_ps <= 4.1);
        assert_true(w.udp_bps <= 360);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_per_member_per_second),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
