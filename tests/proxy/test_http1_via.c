/*
 * test_http1_via.c - request-loop detection as pure functions: which Via values name this
 * fleet (lists, several fields, comments, case), how Webgw-Hops is read (largest copy, junk
 * counts as over the bound), and the head sent on: received Via kept in order with ours last,
 * Webgw-Hops replaced by the incremented count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http1.h"

static const struct http1_limits lim = {.max_request_line = 256,
                                        .max_header_count = 16,
                                        .max_header_bytes = 2048,
                                        .max_body_bytes = 100};

static struct http1_parser parser;
static struct http1_header fields[16];

static const struct http1_head *head(const char *fields_text)
{
    static char raw[2048];

    snprintf(raw, sizeof(raw), "GET /x HTTP/1.1\r\nHost: a.gw\r\n%s\r\n", fields_text);
    http1_parser_init(&parser, true, &lim, fields, 16, NULL, NULL);
    assert_int_equal(http1_parse_head(&parser, raw, strlen(raw)), 1);
    return &parser.head;
}

static enum http1_loop check(const char *fields_text, uint32_t *hops)
{
    return http1_loop_check(head(fields_text), "webgw-0123abcd", 8, hops);
}

static void via_naming_this_fleet_is_a_loop(void **state)
{
    uint32_t hops;

    (void)state;
    assert_int_equal(check("", &hops), HTTP1_LOOP_NONE);
    assert_int_equal(hops, 0);
    assert_int_equal(check("Via: 1.1 webgw-0123abcd\r\n", &hops), HTTP1_LOOP_VIA);
    assert_int_equal(check("Via: HTTP/1.0 WEBGW-0123ABCD\r\n", &hops), HTTP1_LOOP_VIA);
    assert_int_equal(
        check("Via: 1.0 fred, 1.1 p.example.net:8080, 1.1 webgw-0123abcd (webgw)\r\n", &hops),
        HTTP1_LOOP_VIA);
    assert_int_equal(check("Via: 1.0 fred\r\nX-A: b\r\nvia: 1.1 webgw-0123abcd\r\n", &hops),
                     HTTP1_LOOP_VIA);
    /* other fleets, a prefix or a longer name, the name inside a comment: not us */
    assert_int_equal(check("Via: 1.1 webgw-0123abce\r\n", &hops), HTTP1_LOOP_NONE);
    assert_int_equal(check("Via: 1.1 webgw-0123abcd0\r\n", &hops), HTTP1_LOOP_NONE);
    assert_int_equal(check("Via: 1.1 webgw-0123abc\r\n", &hops), HTTP1_LOOP_NONE);
    assert_int_equal(check("Via: 1.1 other (passed webgw-0123abcd, 1.1 webgw-0123abcd)\r\n", &hops),
                     HTTP1_LOOP_NONE);
    assert_int_equal(check("Via: 1.1 x (a \\), 1.1 webgw-0123abcd )\r\n", &hops), HTTP1_LOOP_NONE);
    /* no pseudonym configured: Via is not checked */
    assert_int_equal(http1_loop_check(head("Via: 1.1 webgw-0123abcd\r\n"), "", 8, &hops),
                     HTTP1_LOOP_NONE);
    assert_int_equal(http1_loop_check(head("Via: 1.1 webgw-0123abcd\r\n"), NULL, 8, &hops),
                     HTTP1_LOOP_NONE);
}

static void hop_count_over_the_bound_is_a_loop(void **state)
{
    uint32_t hops;

    (void)state;
    assert_int_equal(check("Webgw-Hops: 7\r\n", &hops), HTTP1_LOOP_NONE);
    assert_int_equal(hops, 7);
    assert_int_equal(check("Webgw-Hops: 8\r\n", &hops), HTTP1_LOOP_HOPS);
    assert_int_equal(check("webgw-hops: 2\r\nWebgw-Hops: 9\r\nWebgw-Hops: 1\r\n", &hops),
                     HTTP1_LOOP_HOPS);
    assert_int_equal(hops, 9);
    /* a value we did not write counts as over any bound */
    assert_int_equal(check("Webgw-Hops: -1\r\n", &hops), HTTP1_LOOP_HOPS);
    assert_int_equal(check("Webgw-Hops: 1, 2\r\n", &hops), HTTP1_LOOP_HOPS);
    assert_int_equal(check("Webgw-Hops: 9999999\r\n", &hops), HTTP1_LOOP_HOPS);
    assert_int_equal(check("Webgw-Hops:\r\n", &hops), HTTP1_LOOP_HOPS);
    assert_int_equal(hops, UINT32_MAX);
    /* Via wins when both say loop */
    assert_int_equal(check("Webgw-Hops: 99\r\nVia: 1.1 webgw-0123abcd\r\n", &hops), HTTP1_LOOP_VIA);
}

static void forwarded_head_appends_via_and_counts_the_hop(void **state)
{
    char out[2048];
    struct http1_forward fwd = {.client_ip = "192.0.2.7",
                                .proto = "http",
                                .host = "a.gw",
                                .host_len = 4,
                                .via_name = "webgw-0123abcd",
                                .hops = 4};
    const struct http1_head *h =
        head("Via: 1.0 fred\r\nWebgw-Hops: 3\r\nAccept: */*\r\nVia: 1.1 p.example.net\r\n");
    int n = http1_build_request(h, &fwd, out, sizeof(out));
    const char *fred, *p, *ours;

    (void)state;
    assert_true(n > 0);
    out[n] = '\0';
    fred = strstr(out, "\r\nVia: 1.0 fred\r\n");
    p = strstr(out, "\r\nVia: 1.1 p.example.net\r\n");
    ours = strstr(out, "\r\nVia: 1.1 webgw-0123abcd\r\n");
    assert_non_null(fred);
    assert_non_null(p);
    assert_non_null(ours);
    assert_true(fred < p && p < ours); /* received order kept, ours last */
    assert_non_null(strstr(out, "\r\nWebgw-Hops: 4\r\n"));
    assert_null(strstr(out, "Webgw-Hops: 3"));

    /* an HTTP/1.0 request is received as 1.0 */
    {
        static const char raw[] = "GET / HTTP/1.0\r\nHost: a.gw\r\n\r\n";
        http1_parser_init(&parser, true, &lim, fields, 16, NULL, NULL);
        assert_int_equal(http1_parse_head(&parser, raw, strlen(raw)), 1);
        n = http1_build_request(&parser.head, &fwd, out, sizeof(out));
        assert_true(n > 0);
        out[n] = '\0';
        assert_non_null(strstr(out, "\r\nVia: 1.0 webgw-0123abcd\r\n"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(via_naming_this_fleet_is_a_loop),
        cmocka_unit_test(hop_count_over_the_bound_is_a_loop),
        cmocka_unit_test(forwarded_head_appends_via_and_counts_the_hop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
