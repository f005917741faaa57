/*
 * test_dns_answer.c - the fleet's DNS answers, from query bytes to response bytes, with a
 * fake name source and no network: every rcode, NODATA vs NXDOMAIN, rotation, the same answer
 * set from zones fed the same fleet in different orders, truncation at the transport's limit,
 * REFUSED outside the zone and for transfers, minimal ANY, BADVERS, malformed and oversized
 * queries, the 0x20 case echo; and the rate limiter, past its refill.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <ldns/ldns.h>

#include "dns/dns.h"

/* ---- a fake fleet ------------------------------------------------------------------------ */

static enum dns_name_status fake_status(void *ctx, const char *name)
{
    (void)ctx;
    if (strcmp(name, "demo") == 0 || strcmp(name, "www.example.org") == 0)
        return DNS_NAME_SERVED;
    if (strcmp(name, "reserved") == 0)
        return DNS_NAME_EMPTY;
    return DNS_NAME_NONE;
}

static size_t fake_txt(void *ctx, const char *name, char (*out)[DNS_TXT_LEN + 1], size_t cap)
{
    (void)ctx;
    if (strcmp(name, "_acme-challenge") != 0 || cap < 2)
        return 0;
    snprintf(out[0], DNS_TXT_LEN + 1, "token-one");
    snprintf(out[1], DNS_TXT_LEN + 1, "token-two");
    return 2;
}

static const struct dns_source fake_src = {.name_status = fake_status, .txt = fake_txt};

static void gw(struct dns_gateway *g, const char *label, const char *a, const char *b)
{
    memset(g, 0, sizeof(*g));
    snprintf(g->label, sizeof(g->label), "%s", label);
    const char *ips[2] = {a, b};
    for (int i = 0; i < 2; i++) {
        if (ips[i] == NULL)
            continue;
        struct dns_ip *ip = &g->addrs[g->count++];
        ip->family = strchr(ips[i], ':') ? 6 : 4;
        inet_pton(ip->family == 4 ? AF_INET : AF_INET6, ips[i], ip->ip);
    }
}

static struct dns_zone *zone_of(size_t n, bool reversed)
{
    struct dns_gateway g[3];
    char err[DNS_ERR_MAX];
    struct dns_zone *z = dns_zone_new("Gw.Example.COM.", 30, &fake_src, err, sizeof(err));

    assert_non_null(z);
    gw(&g[0], "gw1", "192.0.2.1", "2001:db8::1");
    gw(&g[1], "gw2", "192.0.2.2", NULL);
    gw(&g[2], "gw3", "192.0.2.3", "2001:db8::3");
    if (reversed) {
        struct dns_gateway t = g[0];
        g[0] = g[n - 1];
        g[n - 1] = t;
    }
    assert_int_equal(dns_zone_set_fleet(z, g, n), 0);
    return z;
}

/* ---- queries and answers through ldns ---------------------------------------------------- */

/* Query bytes for name/type; edns_size 0: no OPT. */
static size_t make_query(const char *name, ldns_rr_type type, uint16_t edns_size, bool rd,
                         uint8_t *buf, size_t cap)
{
    ldns_rdf *owner = ldns_dname_new_frm_str(name);
    ldns_pkt *p = ldns_pkt_query_new(owner, type, LDNS_RR_CLASS_IN, rd ? LDNS_RD : 0);
    uint8_t *wire = NULL;
    size_t size = 0;

    assert_non_null(p);
    ldns_pkt_set_id(p, 0x1234);
    if (edns_size)
        ldns_pkt_set_edns_udp_size(p, edns_size);
    assert_int_equal(ldns_pkt2wire(&wire, p, &size), LDNS_STATUS_OK);
    assert_true(size <= cap);
    memcpy(buf, wire, size);
    LDNS_FREE(wire);
    ldns_pkt_free(p);
    return size;
}

/* Decodes and answers; returns the parsed response (caller frees). */
static ldns_pkt *ask_limit(struct dns_zone *z, const uint8_t *q, size_t qlen, size_t limit,
                           struct dns_answer_info *info)
{
    struct dns_query dq;
    uint8_t out[65535];
    ldns_pkt *resp = NULL;
    int n;

    assert_int_equal(dns_query_decode(q, qlen, &dq), 0);
    n = dns_answer(z, &dq, limit ? limit : dns_udp_limit(&dq), out, sizeof(out), info);
    assert_true(n > 0);
    assert_true((size_t)n <= (limit ? limit : dns_udp_limit(&dq)));
    assert_int_equal(ldns_wire2pkt(&resp, out, (size_t)n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_id(resp), 0x1234);
    assert_true(ldns_pkt_qr(resp));
    return resp;
}

static ldns_pkt *ask(struct dns_zone *z, const char *name, ldns_rr_type type,
                     struct dns_answer_info *info)
{
    uint8_t q[512];
    size_t len = make_query(name, type, 1232, false, q, sizeof(q));
    return ask_limit(z, q, len, 0, info);
}

/* The answer section's addresses as sorted text, joined by spaces. */
static void answer_set(const ldns_pkt *p, char *out, size_t cap, bool sorted)
{
    const ldns_rr_list *an = ldns_pkt_answer(p);
    char items[64][64];
    size_t n = ldns_rr_list_rr_count(an), len = 0;

    assert_true(n <= 64);
    for (size_t i = 0; i < n; i++) {
        char *s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(an, i), 0));
        snprintf(items[i], sizeof(items[i]), "%s", s);
        free(s);
    }
    if (sorted)
        qsort(items, n, sizeof(items[0]), (int (*)(const void *, const void *))strcmp);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", items[i]);
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_served_name_gets_every_gateway_rotated(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    char set[512], first[3][64];
    ldns_pkt *p;

    (void)state;
    for (int i = 0; i < 3; i++) {
        p = ask(z, "demo.gw.example.com.", LDNS_RR_TYPE_A, &info);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
        assert_true(ldns_pkt_aa(p));
        assert_int_equal(ldns_pkt_ancount(p), 3);
        assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), 30);
        answer_set(p, set, sizeof(set), true);
        assert_string_equal(set, "192.0.2.1 192.0.2.2 192.0.2.3");
        answer_set(p, set, sizeof(set), false);
        snprintf(first[i], sizeof(first[i]), "%.*s", (int)strcspn(set, " "), set);
        ldns_pkt_free(p);
    }
    /* three queries, three different first addresses */
    assert_string_not_equal(first[0], first[1]);
    assert_string_not_equal(first[1], first[2]);
    assert_string_not_equal(first[0], first[2]);
    p = ask(z, "demo.gw.example.com.", LDNS_RR_TYPE_AAAA, &info);
    answer_set(p, set, sizeof(set), true);
    assert_string_equal(set, "2001:db8::1 2001:db8::3");
    ldns_pkt_free(p);
    /* an fqdn proxy's CNAME target inside the domain */
    p = ask(z, "www.example.org.gw.example.com.", LDNS_RR_TYPE_A, &info);
    assert_int_equal(ldns_pkt_ancount(p), 3);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

static void test_every_gateway_gives_the_same_set(void **state)
{
    struct dns_zone *a = zone_of(3, false), *b = zone_of(3, true);
    struct dns_answer_info info;
    char sa[512], sb[512];
    const char *names[] = {"demo.gw.example.com.", "gw.example.com."};
    ldns_rr_type types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA, LDNS_RR_TYPE_NS};

    (void)state;
    for (size_t i = 0; i < 2; i++)
        for (size_t t = 0; t < 3; t++) {
            ldns_pkt *pa = ask(a, names[i], types[t], &info),
                     *pb = ask(b, names[i], types[t], &info);
            answer_set(pa, sa, sizeof(sa), true);
            answer_set(pb, sb, sizeof(sb), true);
            assert_string_equal(sa, sb);
            assert_int_equal(ldns_pkt_arcount(pa), ldns_pkt_arcount(pb));
            ldns_pkt_free(pa);
            ldns_pkt_free(pb);
        }
    dns_zone_free(a);
    dns_zone_free(b);
}

static void test_nxdomain_and_nodata_carry_the_soa(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    ldns_pkt *p;

    (void)state;
    p = ask(z, "unknown.gw.example.com.", LDNS_RR_TYPE_A, &info);
    assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
    assert_int_equal(ldns_pkt_ancount(p), 0);
    assert_int_equal(ldns_pkt_nscount(p), 1);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(p), 0)), LDNS_RR_TYPE_SOA);
    ldns_pkt_free(p);
    /* exists without a healthy backend: NODATA */
    p = ask(z, "reserved.gw.example.com.", LDNS_RR_TYPE_A, &info);
    assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(p), 0);
    assert_int_equal(ldns_pkt_nscount(p), 1);
    ldns_pkt_free(p);
    /* served, other type: NODATA */
    p = ask(z, "demo.gw.example.com.", LDNS_RR_TYPE_MX, &info);
    assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(p), 0);
    ldns_pkt_free(p);
    /* a fleet without IPv6: AAAA is NODATA */
    dns_zone_free(z);
    z = zone_of(2, true); /* gw2 (v4 only) and gw1 */
    struct dns_gateway only = {.label = "gw2"};
    gw(&only, "gw2", "192.0.2.2", NULL);
    dns_zone_set_fleet(z, &only, 1);
    p = ask(z, "demo.gw.example.com.", LDNS_RR_TYPE_AAAA, &info);
    assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NOERROR);
    assert_int_equal(ldns_pkt_ancount(p), 0);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

static void test_apex_soa_ns_and_glue(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    char set[512];
    ldns_pkt *p;

    (void)state;
    p = ask(z, "gw.example.com.", LDNS_RR_TYPE_NS, &info);
    answer_set(p, set, sizeof(set), true);
    assert_string_equal(set,
                        "ns-gw1.gw.example.com. ns-gw2.gw.example.com. ns-gw3.gw.example.com.");
    assert_int_equal(ldns_pkt_arcount(p), 5); /* glue: 3 A + 2 AAAA (ldns keeps the OPT apart) */
    ldns_pkt_free(p);
    p = ask(z, "gw.example.com.", LDNS_RR_TYPE_SOA, &info);
    assert_int_equal(ldns_pkt_ancount(p), 1);
    char *soa = ldns_rr2str(ldns_rr_list_rr(ldns_pkt_answer(p), 0));
    assert_non_null(
        strstr(soa, "ns-gw1.gw.example.com. hostmaster.gw.example.com. 1 3600 600 86400 30"));
    free(soa);
    ldns_pkt_free(p);
    p = ask(z, "ns-gw3.gw.example.com.", LDNS_RR_TYPE_AAAA, &info);
    answer_set(p, set, sizeof(set), true);
    assert_string_equal(set, "2001:db8::3");
    ldns_pkt_free(p);
    p = ask(z, "ns-gw9.gw.example.com.", LDNS_RR_TYPE_A, &info);
    assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
    ldns_pkt_free(p);
    p = ask(z, "_acme-challenge.gw.example.com.", LDNS_RR_TYPE_TXT, &info);
    assert_int_equal(ldns_pkt_ancount(p), 2);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

static void test_other_zones_recursion_and_transfers_are_refused(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    uint8_t q[512];
    size_t len;
    ldns_pkt *p;
    const char *outside[] = {"example.com.", "xgw.example.com.", "gw.example.com.evil.",
                             "demo.gw.example.org.", "."};

    (void)state;
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        len = make_query(outside[i], LDNS_RR_TYPE_A, 0, true, q, sizeof(q));
        p = ask_limit(z, q, len, 0, &info);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
        assert_false(ldns_pkt_ra(p));
        assert_int_equal(ldns_pkt_ancount(p), 0);
        ldns_pkt_free(p);
    }
    ldns_rr_type xfr[] = {LDNS_RR_TYPE_AXFR, LDNS_RR_TYPE_IXFR};
    for (size_t i = 0; i < 2; i++) {
        len = make_query("gw.example.com.", xfr[i], 0, false, q, sizeof(q));
        p = ask_limit(z, q, len, 65535, &info);
        assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
        ldns_pkt_free(p);
    }
    dns_zone_free(z);
}

static void test_any_is_answered_minimally(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    ldns_pkt *p;

    (void)state;
    p = ask(z, "gw.example.com.", LDNS_RR_TYPE_ANY, &info);
    assert_int_equal(ldns_pkt_ancount(p), 1);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(p), 0)), LDNS_RR_TYPE_HINFO);
    assert_int_equal(ldns_pkt_arcount(p), 0); /* no glue */
    ldns_pkt_free(p);
    p = ask(z, "demo.gw.example.com.", LDNS_RR_TYPE_ANY, &info);
    assert_int_equal(ldns_pkt_ancount(p), 1);
    ldns_pkt_free(p);
    p = ask(z, "nothing.gw.example.com.", LDNS_RR_TYPE_ANY, &info);
    assert_int_equal(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

/* 40 addresses do not fit 512 bytes: without EDNS the answer is truncated and empty; with
 * EDNS (1232) or over TCP it is whole. */
static void test_truncation_at_the_transport_limit(void **state)
{
    struct dns_gateway g[5];
    char err[DNS_ERR_MAX];
    struct dns_zone *z = dns_zone_new("gw.example.com", 30, &fake_src, err, sizeof(err));
    struct dns_answer_info info;
    uint8_t q[512];
    size_t len;
    ldns_pkt *p;

    (void)state;
    for (int i = 0; i < 5; i++) {
        char label[8];
        memset(&g[i], 0, sizeof(g[i]));
        snprintf(label, sizeof(label), "gw%d", i);
        snprintf(g[i].label, sizeof(g[i].label), "%s", label);
        for (int j = 0; j < DNS_GATEWAY_ADDRS_MAX; j++) {
            g[i].addrs[j].family = 6;
            g[i].addrs[j].ip[0] = 0x20;
            g[i].addrs[j].ip[14] = (uint8_t)i;
            g[i].addrs[j].ip[15] = (uint8_t)j;
        }
        g[i].count = DNS_GATEWAY_ADDRS_MAX;
    }
    assert_int_equal(dns_zone_set_fleet(z, g, 5), 0);
    len = make_query("demo.gw.example.com.", LDNS_RR_TYPE_AAAA, 0, false, q, sizeof(q));
    p = ask_limit(z, q, len, 0, &info);
    assert_true(ldns_pkt_tc(p));
    assert_true(info.truncated);
    assert_int_equal(ldns_pkt_ancount(p), 0);
    ldns_pkt_free(p);
    len = make_query("demo.gw.example.com.", LDNS_RR_TYPE_AAAA, 4096, false, q, sizeof(q));
    p = ask_limit(z, q, len, 0, &info); /* capped at 1232: 40 AAAA fit (~1.2 KB)? */
    if (ldns_pkt_tc(p))
        assert_int_equal(ldns_pkt_ancount(p), 0);
    else
        assert_int_equal(ldns_pkt_ancount(p), 40);
    ldns_pkt_free(p);
    p = ask_limit(z, q, len, 65535, &info); /* TCP */
    assert_false(ldns_pkt_tc(p));
    assert_int_equal(ldns_pkt_ancount(p), 40);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

static void test_query_case_is_echoed(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    ldns_pkt *p;
    char *q, *a;

    (void)state;
    p = ask(z, "DeMo.gW.ExAmPlE.cOm.", LDNS_RR_TYPE_A, &info);
    q = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
    a = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(p), 0)));
    assert_string_equal(q, "DeMo.gW.ExAmPlE.cOm.");
    assert_string_equal(a, "DeMo.gW.ExAmPlE.cOm.");
    free(q);
    free(a);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

static void test_bad_queries(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_query dq;
    uint8_t q[DNS_QUERY_MAX + 16], out[1024];
    size_t len;
    int n;

    (void)state;
    /* shorter than a header, a response, oversized: no answer */
    len = make_query("demo.gw.example.com.", LDNS_RR_TYPE_A, 0, false, q, sizeof(q));
    assert_int_equal(dns_query_decode(q, 11, &dq), DNS_EDROP);
    q[2] |= 0x80;
    assert_int_equal(dns_query_decode(q, len, &dq), DNS_EDROP);
    q[2] &= 0x7f;
    memset(q + len, 0, sizeof(q) - len);
    assert_int_equal(dns_query_decode(q, DNS_QUERY_MAX + 1, &dq), DNS_EDROP);
    /* a cut question, two questions, a compression loop: FORMERR with the id */
    for (size_t cut = 12; cut < len; cut++)
        assert_int_equal(dns_query_decode(q, cut, &dq), DNS_EFORMERR);
    assert_int_equal(dq.id, 0x1234);
    n = dns_answer_error(&dq, 1, out, sizeof(out));
    assert_int_equal(n, 12);
    assert_int_equal(out[3] & 0x0f, 1);
    q[5] = 2;
    assert_int_equal(dns_query_decode(q, len, &dq), DNS_EFORMERR);
    q[5] = 1;
    uint8_t loop[] = {0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
    assert_int_equal(dns_query_decode(loop, sizeof(loop), &dq), DNS_EFORMERR);
    /* another opcode (NOTIFY = 4) */
    q[2] = (uint8_t)(4 << 3);
    assert_int_equal(dns_query_decode(q, len, &dq), DNS_EFORMERR);
    assert_int_equal(dq.opcode, 4);
    dns_zone_free(z);
}

static void test_edns_version_1_gets_badvers(void **state)
{
    struct dns_zone *z = zone_of(3, false);
    struct dns_answer_info info;
    ldns_rdf *owner = ldns_dname_new_frm_str("demo.gw.example.com.");
    ldns_pkt *qp = ldns_pkt_query_new(owner, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0), *p;
    uint8_t *wire = NULL;
    size_t size = 0;

    (void)state;
    ldns_pkt_set_id(qp, 0x1234);
    ldns_pkt_set_edns_udp_size(qp, 1232);
    ldns_pkt_set_edns_version(qp, 1);
    assert_int_equal(ldns_pkt2wire(&wire, qp, &size), LDNS_STATUS_OK);
    p = ask_limit(z, wire, size, 0, &info);
    assert_int_equal(info.rcode, 16);
    assert_int_equal(ldns_pkt_edns_extended_rcode(p), 1);
    LDNS_FREE(wire);
    ldns_pkt_free(qp);
    ldns_pkt_free(p);
    dns_zone_free(z);
}

static struct sockaddr_storage client(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        ss.ss_family = AF_INET6;
        inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)&ss)->sin6_addr);
    } else {
        ss.ss_family = AF_INET;
        inet_pton(AF_INET, ip, &((struct sockaddr_in *)&ss)->sin_addr);
    }
    return ss;
}

/* 10/s per prefix: ten answers, then slip/drop alternating for the whole /24 (or /56), other
 * prefixes untouched, and the bucket full again a second later. */
static void test_rrl_limits_per_prefix_and_refills(void **state)
{
    struct dns_rrl *r = dns_rrl_new(10);
    struct sockaddr_storage a = client("198.51.100.7"), b = client("198.51.100.200"),
                            c = client("203.0.113.1"), v6a = client("2001:db8:0:1::1"),
                            v6b = client("2001:db8:0:ff::2");
    unsigned slip = 0, drop = 0;

    (void)state;
    for (int i = 0; i < 10; i++)
        assert_int_equal(dns_rrl_check(r, (struct sockaddr *)&a, 1000), DNS_RRL_SEND);
    for (int i = 0; i < 10; i++) {
        enum dns_rrl_verdict v = dns_rrl_check(r, (struct sockaddr *)&b, 1000);
        slip += v == DNS_RRL_SLIP;
        drop += v == DNS_RRL_DROP;
    }
    assert_int_equal(slip, 5);
    assert_int_equal(drop, 5);
    assert_int_equal(dns_rrl_check(r, (struct sockaddr *)&c, 1000), DNS_RRL_SEND);
    /* 100 ms later: one token */
    assert_int_equal(dns_rrl_check(r, (struct sockaddr *)&a, 1100), DNS_RRL_SEND);
    assert_int_not_equal(dns_rrl_check(r, (struct sockaddr *)&a, 1100), DNS_RRL_SEND);
    /* past the refill: a full second again */
    for (int i = 0; i < 10; i++)
        assert_int_equal(dns_rrl_check(r, (struct sockaddr *)&a, 2200), DNS_RRL_SEND);
    assert_int_not_equal(dns_rrl_check(r, (struct sockaddr *)&a, 2200), DNS_RRL_SEND);
    /* IPv6 /56: the two addresses share 2001:db8:0:0/56 */
    for (int i = 0; i < 10; i++)
        assert_int_equal(dns_rrl_check(r, (struct sockaddr *)&v6a, 1000), DNS_RRL_SEND);
    assert_int_not_equal(dns_rrl_check(r, (struct sockaddr *)&v6b, 1000), DNS_RRL_SEND);
    dns_rrl_free(r);
}

/* A flood of distinct prefixes never grows the table and never blocks a fresh client. */
static void test_rrl_table_is_bounded(void **state)
{
    struct dns_rrl *r = dns_rrl_new(1);

    (void)state;
    for (uint32_t i = 0; i < 200000; i++) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(i << 8)};
        assert_int_equal(dns_rrl_check(r, (struct sockaddr *)&sa, 5000), DNS_RRL_SEND);
    }
    dns_rrl_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_served_name_gets_every_gateway_rotated),
        cmocka_unit_test(test_every_gateway_gives_the_same_set),
        cmocka_unit_test(test_nxdomain_and_nodata_carry_the_soa),
        cmocka_unit_test(test_apex_soa_ns_and_glue),
        cmocka_unit_test(test_other_zones_recursion_and_transfers_are_refused),
        cmocka_unit_test(test_any_is_answered_minimally),
        cmocka_unit_test(test_truncation_at_the_transport_limit),
        cmocka_unit_test(test_query_case_is_echoed),
        cmocka_unit_test(test_bad_queries),
        cmocka_unit_test(test_edns_version_1_gets_badvers),
        cmocka_unit_test(test_rrl_limits_per_prefix_and_refills),
        cmocka_unit_test(test_rrl_table_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
