/*
 * test_fqdn_verdict.c - the pure half of the fqdn DNS check: DNS responses (bytes) into
 * answers, and answers plus the fleet into "points at the fleet" or not. No I/O.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dns_stub.h"
#include "node/node_dns.h"

static struct node_ip ip4(const char *text)
{
    struct node_ip ip = {.family = 4};
    assert_int_equal(inet_pton(AF_INET, text, ip.ip), 1);
    return ip;
}

static struct node_ip ip6(const char *text)
{
    struct node_ip ip = {.family = 6};
    assert_int_equal(inet_pton(AF_INET6, text, ip.ip), 1);
    return ip;
}

/* Parses one encoded response to (qname, qtype) into ans (appending). */
static void parse_response(struct node_dns_answer *ans, int rcode, const char *qname,
                           uint16_t qtype, const struct nt_dns_rr *rrs, size_t n)
{
    uint8_t buf[2048];
    char err[128];
    size_t len = nt_dns_message(7, rcode, qname, qtype, rrs, n, buf, sizeof(buf));

    assert_true(len > 0);
    assert_int_equal(node_dns_parse(buf, len, ans, err, sizeof(err)), 0);
}

static const char *fleet_text[] = {"198.51.100.1", "198.51.100.2", "2001:db8::1"};

static enum node_fqdn_verdict decide(const char *fqdn, const struct node_dns_answer *ans, char *why,
                                     size_t whylen)
{
    struct node_ip fleet[3] = {ip4(fleet_text[0]), ip4(fleet_text[1]), ip6(fleet_text[2])};
    return node_fqdn_decide(fqdn, ans, "gw.example.com", fleet, 3, why, whylen);
}

static void a_records_all_in_the_fleet_point_at_it(void **state)
{
    struct node_dns_answer ans = {0};
    struct nt_dns_rr a[] = {{"www.example.org", NT_DNS_A, "198.51.100.1"},
                            {"www.example.org", NT_DNS_A, "198.51.100.2"}};
    struct nt_dns_rr aaaa[] = {{"www.example.org", NT_DNS_AAAA, "2001:db8::1"}};
    char why[160];

    parse_response(&ans, 0, "www.example.org", NT_DNS_A, a, 2);
    parse_response(&ans, 0, "www.example.org", NT_DNS_AAAA, aaaa, 1);
    assert_int_equal(ans.addr_count, 3);
    assert_int_equal(ans.addrs[2].ip.family, 6);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_POINTS);
    assert_string_equal(why, "www.example.org: 3 addresses, all in the fleet");
    /* names compare without case */
    assert_int_equal(decide("WWW.Example.ORG", &ans, why, sizeof(why)), NODE_FQDN_POINTS);
}

static void one_address_outside_the_fleet_is_elsewhere(void **state)
{
    struct node_dns_answer ans = {0};
    struct nt_dns_rr a[] = {{"www.example.org", NT_DNS_A, "198.51.100.1"},
                            {"www.example.org", NT_DNS_A, "192.0.2.99"}};
    struct nt_dns_rr aaaa[] = {{"www.example.org", NT_DNS_AAAA, "2001:db8::2"}};
    char why[160];

    parse_response(&ans, 0, "www.example.org", NT_DNS_A, a, 2);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
    assert_string_equal(why, "www.example.org is 192.0.2.99, not a fleet address");

    memset(&ans, 0, sizeof(ans));
    parse_response(&ans, 0, "www.example.org", NT_DNS_AAAA, aaaa, 1);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
    assert_string_equal(why, "www.example.org is 2001:db8::2, not a fleet address");
}

static void no_address_or_no_name_is_elsewhere(void **state)
{
    struct node_dns_answer ans = {0};
    char why[160];

    parse_response(&ans, 0, "www.example.org", NT_DNS_A, NULL, 0);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
    assert_string_equal(why, "www.example.org: no A or AAAA record");
    parse_response(&ans, 3, "www.example.org", NT_DNS_AAAA, NULL, 0);
    assert_true(ans.nxdomain);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
    assert_string_equal(why, "www.example.org: no such domain");
}

static void cname_into_the_gateway_domain_points(void **state)
{
    struct node_dns_answer ans = {0};
    struct nt_dns_rr rrs[] = {{"www.example.org", NT_DNS_CNAME, "shop.example.org"},
                              {"shop.example.org", NT_DNS_CNAME, "Edge.GW.example.com"}};
    char why[160];

    parse_response(&ans, 0, "www.example.org", NT_DNS_A, rrs, 2);
    assert_int_equal(ans.cname_count, 2);
    assert_string_equal(ans.cnames[1].target, "edge.gw.example.com");
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_POINTS);
    assert_string_equal(why, "CNAME edge.gw.example.com, inside gw.example.com");

    /* a look-alike suffix is not the domain */
    memset(&ans, 0, sizeof(ans));
    struct nt_dns_rr fake[] = {{"www.example.org", NT_DNS_CNAME, "evilgw.example.com"}};
    parse_response(&ans, 0, "www.example.org", NT_DNS_A, fake, 1);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
}

static void cname_chain_to_fleet_addresses_points(void **state)
{
    struct node_dns_answer ans = {0};
    struct nt_dns_rr rrs[] = {{"www.example.org", NT_DNS_CNAME, "lb.example.net"},
                              {"lb.example.net", NT_DNS_A, "198.51.100.2"},
                              /* an address of another name in the message does not count */
                              {"other.example.net", NT_DNS_A, "192.0.2.1"}};
    char why[160];

    parse_response(&ans, 0, "www.example.org", NT_DNS_A, rrs, 3);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_POINTS);
    assert_string_equal(why, "lb.example.net: 1 address, all in the fleet");

    /* addresses of the fqdn itself do not count when it is a CNAME elsewhere */
    memset(&ans, 0, sizeof(ans));
    struct nt_dns_rr away[] = {{"www.example.org", NT_DNS_CNAME, "lb.example.net"},
                               {"www.example.org", NT_DNS_A, "198.51.100.1"}};
    parse_response(&ans, 0, "www.example.org", NT_DNS_A, away, 2);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
    assert_string_equal(why, "lb.example.net: no A or AAAA record");
}

static void cname_loops_and_long_chains_stop(void **state)
{
    struct node_dns_answer ans = {0};
    struct nt_dns_rr loop[] = {{"a.example.org", NT_DNS_CNAME, "b.example.org"},
                               {"b.example.org", NT_DNS_CNAME, "a.example.org"}};
    char why[160];

    parse_response(&ans, 0, "a.example.org", NT_DNS_A, loop, 2);
    assert_int_equal(decide("a.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
    assert_string_equal(why, "CNAME chain longer than 8");
}

static void too_many_records_are_not_trusted(void **state)
{
    struct node_dns_answer ans = {0};
    struct nt_dns_rr rrs[NODE_DNS_ADDRS_MAX + 1];
    char why[160];

    for (size_t i = 0; i <= NODE_DNS_ADDRS_MAX; i++)
        rrs[i] = (struct nt_dns_rr){"www.example.org", NT_DNS_A, "198.51.100.1"};
    parse_response(&ans, 0, "www.example.org", NT_DNS_A, rrs, NODE_DNS_ADDRS_MAX + 1);
    assert_true(ans.overflow);
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_ELSEWHERE);
}

static void compressed_names_are_read(void **state)
{
    /* www.example.org A 198.51.100.1, owner written as a pointer to the question (0xc00c) */
    static const uint8_t msg[] = {0x00, 0x07, 0x81, 0x80, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00,
                                  0x00, 0x00, 3,    'w',  'w',  'w',  7,    'e',  'x',  'a',
                                  'm',  'p',  'l',  'e',  3,    'o',  'r',  'g',  0,    0x00,
                                  0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01, 0x00,
                                  0x00, 0x00, 0x05, 0x00, 0x04, 198,  51,   100,  1};
    struct node_dns_answer ans = {0};
    char err[128], why[160];

    assert_int_equal(node_dns_parse(msg, sizeof(msg), &ans, err, sizeof(err)), 0);
    assert_int_equal(ans.addr_count, 1);
    assert_string_equal(ans.addrs[0].owner, "www.example.org");
    assert_int_equal(decide("www.example.org", &ans, why, sizeof(why)), NODE_FQDN_POINTS);
}

static void malformed_messages_are_refused(void **state)
{
    uint8_t buf[512];
    struct nt_dns_rr a[] = {{"www.example.org", NT_DNS_A, "198.51.100.1"}};
    size_t len = nt_dns_message(1, 0, "www.example.org", NT_DNS_A, a, 1, buf, sizeof(buf));
    struct node_dns_answer ans;
    char err[128];

    /* every truncation of a good message is refused, never read past its end */
    for (size_t cut = 0; cut < len; cut++) {
        memset(&ans, 0, sizeof(ans));
        assert_int_equal(node_dns_parse(buf, cut, &ans, err, sizeof(err)), -1);
    }
    /* a compression pointer to itself */
    {
        uint8_t loop[] = {0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1};
        memset(&ans, 0, sizeof(ans));
        assert_int_equal(node_dns_parse(loop, sizeof(loop), &ans, err, sizeof(err)), -1);
    }
    /* an A record with 5 bytes of data */
    {
        uint8_t bad[64];
        size_t n = nt_dns_message(1, 0, "x.org", NT_DNS_A, a, 0, bad, sizeof(bad));
        static const uint8_t rr[] = {1, 'x', 3, 'o', 'r', 'g', 0, 0, 1, 0, 1,
                                     0, 0,   0, 5,   0,   5,   1, 2, 3, 4, 5};
        bad[7] = 1;
        memcpy(bad + n, rr, sizeof(rr));
        memset(&ans, 0, sizeof(ans));
        assert_int_equal(node_dns_parse(bad, n + sizeof(rr), &ans, err, sizeof(err)), -1);
        assert_string_equal(err, "address record of 5 bytes");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_records_all_in_the_fleet_point_at_it),
        cmocka_unit_test(one_address_outside_the_fleet_is_elsewhere),
        cmocka_unit_test(no_address_or_no_name_is_elsewhere),
        cmocka_unit_test(cname_into_the_gateway_domain_points),
        cmocka_unit_test(cname_chain_to_fleet_addresses_points),
        cmocka_unit_test(cname_loops_and_long_chains_stop),
        cmocka_unit_test(too_many_records_are_not_trusted),
        cmocka_unit_test(compressed_names_are_read),
        cmocka_unit_test(malformed_messages_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
