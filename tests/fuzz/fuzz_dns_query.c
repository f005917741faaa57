/*
 * fuzz_dns_query.c - libFuzzer target for the fleet's DNS: any bytes through the query decoder
 * and, when it accepts them, through the answer builder, over UDP and TCP limits.
 *
 * Oracles besides the sanitizers: an answer is never longer than the transport limit, always
 * parses back with ldns, echoes the query id, has QR set, and never carries a record for a
 * name outside the zone (REFUSED ones carry none at all).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "dns/dns.h"

static enum dns_name_status fuzz_status(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "demo") == 0)
        return DNS_NAME_SERVED;
    return strcmp(name, "reserved") == 0 ? DNS_NAME_EMPTY : DNS_NAME_NONE;
}

static size_t fuzz_txt(void *ctx, const char *name, char (*out)[DNS_TXT_LEN + 1], size_t cap)
{
    (void)ctx;
    if (strcmp(name, "_acme-challenge") != 0 || cap < 1)
        return 0;
    memset(out[0], 'x', DNS_TXT_LEN);
    out[0][DNS_TXT_LEN] = '\0';
    return 1;
}

static struct dns_zone *fuzz_zone(void)
{
    static struct dns_zone *z;
    struct dns_gateway g[4];
    struct dns_source src = {.name_status = fuzz_status, .txt = fuzz_txt};
    char err[DNS_ERR_MAX];

    if (z)
        return z;
    z = dns_zone_new("gw.example.com", 30, &src, err, sizeof(err));
    memset(g, 0, sizeof(g));
    for (int i = 0; i < 4; i++) {
        snprintf(g[i].label, sizeof(g[i].label), "gw%d", i);
        for (int j = 0; j < DNS_GATEWAY_ADDRS_MAX; j++) {
            g[i].addrs[j].family = (uint8_t)(j % 2 ? 6 : 4);
            g[i].addrs[j].ip[0] = 10;
            g[i].addrs[j].ip[2] = (uint8_t)i;
            g[i].addrs[j].ip[3] = (uint8_t)j;
        }
        g[i].count = DNS_GATEWAY_ADDRS_MAX;
    }
    dns_zone_set_fleet(z, g, 4);
    return z;
}

static void fuzz_check(const struct dns_query *q, const uint8_t *out, int n, size_t limit)
{
    ldns_pkt *p = NULL;

    if (n <= 0)
        return;
    if ((size_t)n > limit)
        abort();
    if (ldns_wire2pkt(&p, out, (size_t)n) != LDNS_STATUS_OK)
        abort();
    if (ldns_pkt_id(p) != q->id || !ldns_pkt_qr(p))
        abort();
    if (ldns_pkt_get_rcode(p) == LDNS_RCODE_REFUSED &&
        ldns_pkt_ancount(p) + ldns_pkt_nscount(p) + ldns_pkt_arcount(p) != 0)
        abort();
    ldns_pkt_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t out[65535];
    struct dns_zone *z = fuzz_zone();
    struct dns_answer_info info;
    struct dns_query q;
    int rc = dns_query_decode(data, size, &q), n;

    if (rc == DNS_EFORMERR) {
        n = dns_answer_error(&q, q.opcode ? 4 : 1, out, sizeof(out));
        fuzz_check(&q, out, n, DNS_UDP_PLAIN);
        return 0;
    }
    if (rc != 0)
        return 0;
    n = dns_answer(z, &q, dns_udp_limit(&q), out, sizeof(out), &info);
    fuzz_check(&q, out, n, dns_udp_limit(&q));
    n = dns_answer(z, &q, 65535, out, sizeof(out), &info);
    fuzz_check(&q, out, n, 65535);
    return 0;
}
