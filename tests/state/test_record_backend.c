/*
 * test_record_backend.c - backend addresses as users type them (parse and format back) and the
 * address rules: loopback, unspecified, multicast, link-local, IPv4-mapped disguises and the
 * gateway's own addresses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/state/record_fixtures.h"

static const char *parse_problem(const char *text, bool passthrough)
{
    static char err[STATE_ERR_MAX];
    struct state_backend be;

    err[0] = '\0';
    if (state_backend_parse(text, passthrough, &be, err, sizeof(err)) == 0) {
        assert_string_equal(err, "");
        return "";
    }
    assert_true(strlen(err) > 0);
    return err;
}

/* Parses, formats back, and returns the formatted text. */
static const char *round_trip(const char *text, bool passthrough)
{
    static char out[64];
    char err[STATE_ERR_MAX];
    struct state_backend be;

    if (state_backend_parse(text, passthrough, &be, err, sizeof(err)) != 0)
        fail_msg("%s: %s", text, err);
    state_backend_format(&be, passthrough, out);
    return out;
}

static const char *check_problem(const char *ip, uint16_t port,
                                 const struct state_validate_policy *pol)
{
    static char err[STATE_ERR_MAX];
    struct state_backend be = fixture_backend(ip, port);

    err[0] = '\0';
    if (state_backend_check(&be, pol, err, sizeof(err)) == 0)
        return "";
    return err;
}

/* ---- parsing ----------------------------------------------------------------------------- */

static void test_parse_termination_forms(void **state)
{
    struct state_backend be;
    char err[STATE_ERR_MAX];

    assert_int_equal(state_backend_parse("http://10.0.0.1:8080", false, &be, err, sizeof(err)), 0);
    assert_int_equal(be.family, 4);
    assert_memory_equal(be.addr, "\x0a\x00\x00\x01", 4);
    assert_int_equal(be.port, 8080);
    assert_string_equal(round_trip("http://10.0.0.1:8080", false), "http://10.0.0.1:8080");
    assert_string_equal(round_trip("HTTP://10.0.0.1:80/", false), "http://10.0.0.1:80");
    assert_string_equal(round_trip("http://[200:1234::5]:443", false), "http://[200:1234::5]:443");
    assert_string_equal(round_trip("http://[FD00:0:0::0001]:65535", false),
                        "http://[fd00::1]:65535");
}

static void test_parse_passthrough_forms(void **state)
{
    assert_string_equal(round_trip("192.168.1.20:443", true), "192.168.1.20:443");
    assert_string_equal(round_trip("[400::abcd]:8443", true), "[400::abcd]:8443");
    assert_string_equal(parse_problem("http://10.0.0.1:443", true),
                        "backend http://10.0.0.1:443: a passthrough backend is IP:PORT, without a "
                        "scheme (TLS goes through untouched)");
    assert_string_equal(parse_problem("10.0.0.1:443/", true),
                        "backend 10.0.0.1:443/: paths are not supported, expected IP:PORT");
}

static void test_parse_scheme_rules(void **state)
{
    assert_string_equal(parse_problem("10.0.0.1:80", false),
                        "backend 10.0.0.1:80: expected http://IP:PORT (IP:PORT alone is for "
                        "--tls-passthrough)");
    assert_string_equal(parse_problem("https://10.0.0.1:443", false),
                        "backend https://10.0.0.1:443: https backends are not supported; the "
                        "gateway terminates TLS and speaks http:// to backends (or use "
                        "--tls-passthrough with IP:PORT)");
    assert_string_equal(parse_problem("ftp://10.0.0.1:21", false),
                        "backend ftp://10.0.0.1:21: unsupported scheme, expected http://IP:PORT");
    assert_string_equal(parse_problem("http://10.0.0.1:80/app", false),
                        "backend http://10.0.0.1:80/app: paths are not supported, expected "
                        "http://IP:PORT");
    assert_string_equal(parse_problem("http://user@10.0.0.1:80", false),
                        "backend http://user@10.0.0.1:80: expected http://IP:PORT");
}

static void test_parse_host_names_refused(void **state)
{
    assert_string_equal(parse_problem("http://app.internal:8080", false),
                        "backend http://app.internal:8080: host names are not allowed, use an IP "
                        "address");
    assert_string_equal(parse_problem("localhost:443", true),
                        "backend localhost:443: host names are not allowed, use an IP address");
}

static void test_parse_addresses(void **state)
{
    assert_string_equal(parse_problem("http://10.0.0:80", false),
                        "backend http://10.0.0:80: invalid IPv4 address");
    assert_string_equal(parse_problem("http://10.0.0.256:80", false),
                        "backend http://10.0.0.256:80: invalid IPv4 address");
    assert_string_equal(parse_problem("http://[fd00::g]:80", false),
                        "backend http://[fd00::g]:80: invalid IPv6 address");
    assert_string_equal(parse_problem("http://fd00::1:80", false),
                        "backend http://fd00::1:80: IPv6 addresses go in brackets: [ADDR]:PORT");
    assert_string_equal(parse_problem("http://[fd00::1:80", false),
                        "backend http://[fd00::1:80: missing ']' after the IPv6 address");
    assert_string_equal(parse_problem("http://[fe80::1%eth0]:80", false),
                        "backend http://[fe80::1%eth0]:80: IPv6 zone ids are not supported");
}

static void test_parse_ports(void **state)
{
    assert_string_equal(parse_problem("http://10.0.0.1", false),
                        "backend http://10.0.0.1: missing port (IP:PORT)");
    assert_string_equal(parse_problem("http://[fd00::1]", false),
                        "backend http://[fd00::1]: missing port (IP:PORT)");
    assert_string_equal(parse_problem("http://[fd00::1]80", false),
                        "backend http://[fd00::1]80: missing port (IP:PORT)");
    assert_string_equal(parse_problem("http://10.0.0.1:", false),
                        "backend http://10.0.0.1:: port must be a number from 1 to 65535");
    assert_string_equal(parse_problem("http://10.0.0.1:0", false),
                        "backend http://10.0.0.1:0: port must be a number from 1 to 65535");
    assert_string_equal(parse_problem("http://10.0.0.1:65536", false),
                        "backend http://10.0.0.1:65536: port must be a number from 1 to 65535");
    assert_string_equal(parse_problem("http://10.0.0.1:-80", false),
                        "backend http://10.0.0.1:-80: port must be a number from 1 to 65535");
    assert_string_equal(parse_problem("http://10.0.0.1:8080x", false),
                        "backend http://10.0.0.1:8080x: port must be a number from 1 to 65535");
    assert_string_equal(parse_problem("http://10.0.0.1:1", false), "");
    assert_string_equal(parse_problem("http://10.0.0.1:65535", false), "");
}

static void test_parse_limits(void **state)
{
    char long_text[200];

    assert_string_equal(parse_problem("", false), "backend is empty");
    memset(long_text, '1', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    assert_non_null(strstr(parse_problem(long_text, false), "is too long"));
    assert_string_equal(parse_problem("http://10.0.0.1:80\n", false),
                        "backend http://10.0.0.1:80\\x0a: port must be a number from 1 to 65535");
}

/* ---- address rules ----------------------------------------------------------------------- */

static const struct state_validate_policy strict = {.now_ms = FIXTURE_NOW_MS};

static void test_private_overlays_allowed(void **state)
{
    assert_string_equal(check_problem("10.1.2.3", 80, &strict), "");
    assert_string_equal(check_problem("192.168.0.10", 80, &strict), "");
    assert_string_equal(check_problem("200:1234::5", 80, &strict), "");  /* Yggdrasil */
    assert_string_equal(check_problem("400:1::2", 80, &strict), "");     /* Mycelium */
    assert_string_equal(check_problem("fd12:3456::1", 80, &strict), ""); /* ULA */
}

static void test_loopback(void **state)
{
    struct state_validate_policy allow = {.allow_loopback = true};

    assert_string_equal(check_problem("127.0.0.1", 80, &strict),
                        "backend 127.0.0.1:80 is a loopback address (allowed only with "
                        "--allow-loopback-backends)");
    assert_string_equal(check_problem("127.255.0.9", 80, &strict),
                        "backend 127.255.0.9:80 is a loopback address (allowed only with "
                        "--allow-loopback-backends)");
    assert_string_equal(check_problem("::1", 80, &strict),
                        "backend [::1]:80 is a loopback address (allowed only with "
                        "--allow-loopback-backends)");
    assert_string_equal(check_problem("::ffff:127.0.0.1", 80, &strict),
                        "backend [::ffff:127.0.0.1]:80 is an IPv4-mapped loopback address "
                        "(allowed only with --allow-loopback-backends)");
    assert_string_equal(check_problem("127.0.0.1", 80, &allow), "");
    assert_string_equal(check_problem("::1", 80, &allow), "");
    assert_string_equal(check_problem("::ffff:127.0.0.1", 80, &allow), "");
    assert_string_equal(check_problem("127.0.0.1", 80, NULL),
                        "backend 127.0.0.1:80 is a loopback address (allowed only with "
                        "--allow-loopback-backends)");
}

static void test_always_forbidden(void **state)
{
    struct state_validate_policy allow = {.allow_loopback = true};

    assert_string_equal(check_problem("0.0.0.0", 80, &allow),
                        "backend 0.0.0.0:80 is an unspecified address");
    assert_string_equal(check_problem("0.1.2.3", 80, &allow),
                        "backend 0.1.2.3:80 is an unspecified address");
    assert_string_equal(check_problem("::", 80, &allow),
                        "backend [::]:80 is an unspecified address");
    assert_string_equal(check_problem("::ffff:0.0.0.0", 80, &allow),
                        "backend [::ffff:0.0.0.0]:80 is an IPv4-mapped unspecified address");
    assert_string_equal(check_problem("224.0.0.1", 80, &allow),
                        "backend 224.0.0.1:80 is a multicast address");
    assert_string_equal(check_problem("239.255.255.250", 80, &allow),
                        "backend 239.255.255.250:80 is a multicast address");
    assert_string_equal(check_problem("ff02::1", 80, &allow),
                        "backend [ff02::1]:80 is a multicast address");
    assert_string_equal(check_problem("::ffff:224.0.0.1", 80, &allow),
                        "backend [::ffff:224.0.0.1]:80 is an IPv4-mapped multicast address");
    assert_string_equal(check_problem("255.255.255.255", 80, &allow),
                        "backend 255.255.255.255:80 is the broadcast address");
    assert_string_equal(check_problem("169.254.1.2", 80, &allow),
                        "backend 169.254.1.2:80 is a link-local address");
    assert_string_equal(check_problem("fe80::1", 80, &allow),
                        "backend [fe80::1]:80 is a link-local address");
    assert_string_equal(check_problem("febf::1", 80, &allow),
                        "backend [febf::1]:80 is a link-local address");
    assert_string_equal(check_problem("fec0::1", 80, &allow), "");
    assert_string_equal(check_problem("223.255.255.255", 80, &allow), "");
    assert_string_equal(check_problem("240.0.0.1", 80, &allow),
                        "backend 240.0.0.1:80 is a reserved address");
    assert_string_equal(check_problem("254.255.255.255", 80, &allow),
                        "backend 254.255.255.255:80 is a reserved address");
}

/* The metadata service hands out cloud credentials: no form of its address may get through,
 * whatever the policy. */
static void test_cloud_metadata_in_every_form(void **state)
{
    struct state_validate_policy allow = {.allow_loopback = true};
    static const char *const forms[][2] = {
        {"169.254.169.254", "a cloud metadata address"},
        {"::ffff:169.254.169.254", "an IPv4-mapped cloud metadata address"},
        {"::ffff:a9fe:a9fe", "an IPv4-mapped cloud metadata address"},
        {"64:ff9b::a9fe:a9fe", "a NAT64 cloud metadata address"},
        {"64:ff9b::169.254.169.254", "a NAT64 cloud metadata address"},
        {"2002:a9fe:a9fe::", "a 6to4 cloud metadata address"},
        {"2002:a9fe:a9fe:1234::1", "a 6to4 cloud metadata address"},
        {"::a9fe:a9fe", "an IPv4-compatible cloud metadata address"},
        {"::169.254.169.254", "an IPv4-compatible cloud metadata address"},
        {"fd00:ec2::254", "a cloud metadata address"},
        {"100.100.100.200", "a cloud metadata address"},
        {"::ffff:100.100.100.200", "an IPv4-mapped cloud metadata address"},
        {"64:ff9b::6464:64c8", "a NAT64 cloud metadata address"},
        {"168.63.129.16", "a cloud metadata address"},
        /* the other embedded forms of what the plain form may not reach */
        {"64:ff9b::7f00:1", "a NAT64 loopback address"},
        {"2002:7f00:1::", "a 6to4 loopback address"},
        {"64:ff9b::e000:1", "a NAT64 multicast address"},
        {"2002:f000:1::", "a 6to4 reserved address"},
        {"::f000:1", "an IPv4-compatible reserved address"},
    };

    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        const char *got = check_problem(forms[i][0], 80, &strict);
        if (strstr(got, forms[i][1]) == NULL)
            fail_msg("%s: got \"%s\", want \"%s\"", forms[i][0], got, forms[i][1]);
        if (strstr(forms[i][1], "loopback") == NULL &&
            strstr(check_problem(forms[i][0], 80, &allow), forms[i][1]) == NULL)
            fail_msg("%s allowed with loopback allowed", forms[i][0]);
    }
    /* neighbours stay allowed: private ranges are what a gateway is for */
    assert_string_equal(check_problem("100.100.100.201", 80, &strict), "");
    assert_string_equal(check_problem("100.64.0.1", 80, &strict), "");
    assert_string_equal(check_problem("10.0.0.1", 80, &strict), "");
    assert_string_equal(check_problem("64:ff9b::a00:1", 80, &strict), "");
    assert_string_equal(check_problem("2002:a00:1::", 80, &strict), "");
    assert_string_equal(check_problem("fd00:ec2::253", 80, &strict), "");
    assert_string_equal(check_problem("2001:db8::1", 80, &strict), "");
}

/* Every member's advertised HTTP, HTTPS, API and gossip address, not only this node's. */
static void test_fleet_member_addresses(void **state)
{
    struct state_backend fleet[] = {
        fixture_backend("10.1.0.2", 80),   fixture_backend("10.1.0.2", 443),
        fixture_backend("10.1.0.2", 7900), fixture_backend("10.1.0.2", 7946),
        fixture_backend("fd00::3", 80),    fixture_backend("10.1.0.2", 80),
    };
    struct state_validate_policy pol = {.allow_loopback = true};
    const char *loop = "is a fleet member's advertised address (requests would loop)";

    pol.fleet_addrs = fleet;
    pol.fleet_addr_count = state_backends_sort(fleet, 6);
    assert_int_equal(pol.fleet_addr_count, 5);
    assert_non_null(strstr(check_problem("10.1.0.2", 80, &pol), loop));
    assert_non_null(strstr(check_problem("10.1.0.2", 443, &pol), loop));
    assert_non_null(strstr(check_problem("10.1.0.2", 7900, &pol), loop));
    assert_non_null(strstr(check_problem("10.1.0.2", 7946, &pol), loop));
    assert_non_null(strstr(check_problem("::ffff:10.1.0.2", 7946, &pol), loop));
    assert_non_null(strstr(check_problem("64:ff9b::a01:2", 80, &pol), loop));
    assert_non_null(strstr(check_problem("fd00::3", 80, &pol), loop));
    /* the same hosts' other ports are ordinary backends */
    assert_string_equal(check_problem("10.1.0.2", 8080, &pol), "");
    assert_string_equal(check_problem("fd00::3", 8080, &pol), "");
}

static void test_operator_deny_list(void **state)
{
    struct state_cidr deny[3];
    struct state_validate_policy pol = {.deny = deny, .deny_count = 3};
    char err[STATE_ERR_MAX];

    assert_int_equal(state_cidr_parse("10.20.0.0/16", &deny[0], err, sizeof(err)), 0);
    assert_int_equal(state_cidr_parse("fd00:abcd::/32", &deny[1], err, sizeof(err)), 0);
    assert_int_equal(state_cidr_parse("192.0.2.7", &deny[2], err, sizeof(err)), 0);
    assert_string_equal(check_problem("10.20.3.4", 80, &pol),
                        "backend 10.20.3.4:80 is in denied network 10.20.0.0/16 (--deny-backend)");
    assert_non_null(strstr(check_problem("::ffff:10.20.3.4", 80, &pol), "10.20.0.0/16"));
    assert_non_null(strstr(check_problem("64:ff9b::a14:304", 80, &pol), "10.20.0.0/16"));
    assert_non_null(strstr(check_problem("fd00:abcd:1::1", 80, &pol), "fd00:abcd::/32"));
    assert_non_null(strstr(check_problem("192.0.2.7", 80, &pol), "192.0.2.7/32"));
    assert_string_equal(check_problem("10.21.3.4", 80, &pol), "");
    assert_string_equal(check_problem("192.0.2.8", 80, &pol), "");
    assert_string_equal(check_problem("fd00:abce::1", 80, &pol), "");
    assert_int_equal(state_cidr_parse("10.0.0.0/33", &deny[0], err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "network \"10.0.0.0/33\": bad prefix length");
    assert_int_equal(state_cidr_parse("example.org/8", &deny[0], err, sizeof(err)), STATE_EINVAL);
    assert_int_equal(state_cidr_parse("10.0.0.0/", &deny[0], err, sizeof(err)), STATE_EINVAL);
}

static void test_bad_family_and_port(void **state)
{
    struct state_backend be = fixture_backend("10.0.0.1", 80);
    char err[STATE_ERR_MAX];

    be.family = 5;
    assert_int_equal(state_backend_check(&be, &strict, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "backend has unknown address family 5");
    assert_string_equal(check_problem("10.0.0.1", 0, &strict),
                        "backend 10.0.0.1:0 has port 0: ports are 1 to 65535");
}

static void test_own_addresses(void **state)
{
    struct state_backend own[] = {
        fixture_backend("10.9.9.9", 0),       /* the whole public IP */
        fixture_backend("192.168.5.5", 7946), /* only the gossip port */
        fixture_backend("fd00::9", 8080),
    };
    struct state_validate_policy pol = {.own_addrs = own, .own_addr_count = 3};
    const char *loop = "is this gateway's own address (requests would loop)";

    assert_non_null(strstr(check_problem("10.9.9.9", 80, &pol), loop));
    assert_non_null(strstr(check_problem("10.9.9.9", 8443, &pol), loop));
    assert_string_equal(check_problem("::ffff:10.9.9.9", 80, &pol),
                        "backend [::ffff:10.9.9.9]:80 is this gateway's own address (requests "
                        "would loop)");
    assert_string_equal(check_problem("192.168.5.5", 7946, &pol),
                        "backend 192.168.5.5:7946 is this gateway's own address (requests would "
                        "loop)");
    assert_string_equal(check_problem("192.168.5.5", 8080, &pol), "");
    assert_non_null(strstr(check_problem("fd00::9", 8080, &pol), loop));
    assert_string_equal(check_problem("fd00::9", 8081, &pol), "");
    assert_string_equal(check_problem("10.9.9.8", 80, &pol), "");
}

static void test_own_ports_refused_even_with_loopback_allowed(void **state)
{
    /* a demo node with --allow-loopback-backends listening on 0.0.0.0:8080 and the API on
     * 127.0.0.1:9080: other loopback ports are fine, its own are not */
    struct state_backend own[] = {
        fixture_backend("0.0.0.0", 8080),
        fixture_backend("127.0.0.1", 9080),
        fixture_backend("::", 8443),
    };
    struct state_validate_policy pol = {
        .allow_loopback = true, .own_addrs = own, .own_addr_count = 3};

    assert_string_equal(check_problem("127.0.0.1", 3000, &pol), "");
    assert_string_equal(check_problem("127.0.0.1", 9080, &pol),
                        "backend 127.0.0.1:9080 is this gateway's own address (requests would "
                        "loop)");
    assert_string_equal(check_problem("127.0.0.2", 8080, &pol),
                        "backend 127.0.0.2:8080 is this gateway's own address (requests would "
                        "loop)");
    assert_string_equal(check_problem("::1", 8443, &pol),
                        "backend [::1]:8443 is this gateway's own address (requests would loop)");
    assert_string_equal(check_problem("127.0.0.1", 8443, &pol),
                        "backend 127.0.0.1:8443 is this gateway's own address (requests would "
                        "loop)");
    assert_string_equal(check_problem("::1", 9080, &pol), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_termination_forms),
        cmocka_unit_test(test_parse_passthrough_forms),
        cmocka_unit_test(test_parse_scheme_rules),
        cmocka_unit_test(test_parse_host_names_refused),
        cmocka_unit_test(test_parse_addresses),
        cmocka_unit_test(test_parse_ports),
        cmocka_unit_test(test_parse_limits),
        cmocka_unit_test(test_private_overlays_allowed),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_always_forbidden),
        cmocka_unit_test(test_cloud_metadata_in_every_form),
        cmocka_unit_test(test_fleet_member_addresses),
        cmocka_unit_test(test_operator_deny_list),
        cmocka_unit_test(test_bad_family_and_port),
        cmocka_unit_test(test_own_addresses),
        cmocka_unit_test(test_own_ports_refused_even_with_loopback_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
