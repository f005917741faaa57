/*
 * test_route_table.c - what the proxy sees of the route table: set, lookup, replace, remove,
 * case folding, and the routes derived from name views (proxy, fqdn, passthrough, reserve,
 * release). Single writer and reader; the concurrent behaviour is in
 * test_route_table_concurrent.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "state/state.h"

static struct state_backend backend_v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
    struct state_backend be = {.family = 4, .port = port};
    be.addr[0] = a;
    be.addr[1] = b;
    be.addr[2] = c;
    be.addr[3] = d;
    return be;
}

static struct state_backend backend_v6_ula(uint16_t last, uint16_t port)
{
    struct state_backend be = {.family = 6, .port = port};
    be.addr[0] = 0xfd;
    be.addr[1] = 0x12;
    be.addr[14] = (uint8_t)(last >> 8);
    be.addr[15] = (uint8_t)last;
    return be;
}

static struct state_route make_route(const char *host, const char *name, uint64_t version)
{
    struct state_route r;
    memset(&r, 0, sizeof(r));
    snprintf(r.host, sizeof(r.host), "%s", host);
    snprintf(r.name, sizeof(r.name), "%s", name);
    r.version = version;
    r.backend_count = 1;
    r.backends[0] = backend_v4(10, 0, 0, 1, 8080);
    return r;
}

static bool lookup(struct state_routes *routes, const char *host, struct state_route *out)
{
    return state_routes_lookup(routes, host, strlen(host), out);
}

static void assert_backend_equal(const struct state_backend *a, const struct state_backend *b)
{
    assert_int_equal(a->family, b->family);
    assert_int_equal(a->port, b->port);
    assert_memory_equal(a->addr, b->addr, a->family == 4 ? 4 : 16);
}

static int setup(void **state)
{
    state_routes_reader_register();
    *state = state_routes_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    state_routes_free(*state);
    state_routes_reader_unregister();
    return 0;
}

static void lookup_returns_what_was_set(void **state)
{
    struct state_routes *routes = *state;
    struct state_route in = make_route("app.gw.example.com", "app", 7), out;

    in.tls_passthrough = false;
    in.backend_count = 2;
    in.backends[1] = backend_v6_ula(0xbeef, 443);
    assert_int_equal(state_routes_set(routes, &in), 0);
    assert_int_equal(state_routes_count(routes), 1);

    assert_true(lookup(routes, "app.gw.example.com", &out));
    assert_string_equal(out.host, "app.gw.example.com");
    assert_string_equal(out.name, "app");
    assert_false(out.tls_passthrough);
    assert_int_equal(out.version, 7);
    assert_int_equal(out.backend_count, 2);
    assert_backend_equal(&out.backends[0], &in.backends[0]);
    assert_backend_equal(&out.backends[1], &in.backends[1]);

    assert_false(lookup(routes, "other.gw.example.com", &out));
    assert_false(lookup(routes, "app.gw.example.co", &out));
    assert_false(lookup(routes, "", &out));
}

static void lookup_ignores_case_trailing_dot_and_reads_only_host_len(void **state)
{
    struct state_routes *routes = *state;
    struct state_route in = make_route("Shop.Example.ORG", "Shop.Example.ORG", 1), out;
    const char *with_port = "shop.example.org:8443";

    assert_int_equal(state_routes_set(routes, &in), 0);
    assert_true(lookup(routes, "shop.example.org", &out));
    assert_string_equal(out.host, "shop.example.org"); /* stored folded */
    assert_string_equal(out.name, "shop.example.org");
    assert_true(lookup(routes, "SHOP.EXAMPLE.ORG", &out));
    assert_true(lookup(routes, "shop.example.org.", &out));
    assert_false(lookup(routes, "shop.example.org..", &out));
    /* A Host header value with its port: the caller passes only the host part's length. */
    assert_true(state_routes_lookup(routes, with_port, strlen("shop.example.org"), &out));
    assert_false(state_routes_lookup(routes, with_port, strlen(with_port), &out));
}

static void set_replaces_the_whole_route(void **state)
{
    struct state_routes *routes = *state;
    struct state_route v1 = make_route("api.gw.test", "api", 1), v2, out;

    v1.backend_count = 3;
    v1.backends[1] = backend_v4(10, 0, 0, 2, 8080);
    v1.backends[2] = backend_v4(10, 0, 0, 3, 8080);
    assert_int_equal(state_routes_set(routes, &v1), 0);

    v2 = make_route("API.gw.test", "api", 2);
    v2.tls_passthrough = true;
    v2.backends[0] = backend_v6_ula(9, 9443);
    assert_int_equal(state_routes_set(routes, &v2), 0);

    assert_int_equal(state_routes_count(routes), 1);
    assert_true(lookup(routes, "api.gw.test", &out));
    assert_int_equal(out.version, 2);
    assert_true(out.tls_passthrough);
    assert_int_equal(out.backend_count, 1);
    assert_backend_equal(&out.backends[0], &v2.backends[0]);
}

static void remove_deletes_only_that_host(void **state)
{
    struct state_routes *routes = *state;
    struct state_route a = make_route("a1.gw.test", "a1", 1);
    struct state_route b = make_route("b1.gw.test", "b1", 1), out;

    assert_int_equal(state_routes_set(routes, &a), 0);
    assert_int_equal(state_routes_set(routes, &b), 0);
    assert_int_equal(state_routes_remove(routes, "A1.GW.TEST"), 0);
    assert_int_equal(state_routes_remove(routes, "a1.gw.test"), STATE_ENOTFOUND);
    assert_false(lookup(routes, "a1.gw.test", &out));
    assert_true(lookup(routes, "b1.gw.test", &out));
    assert_int_equal(state_routes_count(routes), 1);
    assert_int_equal(state_routes_remove(routes, ""), STATE_EINVAL);
}

static void set_refuses_malformed_routes(void **state)
{
    struct state_routes *routes = *state;
    struct state_route r;
    struct state_route out;

    r = make_route("", "x", 1);
    assert_int_equal(state_routes_set(routes, &r), STATE_EINVAL);
    r = make_route("ok.gw.test", "", 1);
    assert_int_equal(state_routes_set(routes, &r), STATE_EINVAL);
    r = make_route("ok.gw.test", "ok", 1);
    r.backend_count = 0;
    assert_int_equal(state_routes_set(routes, &r), STATE_EINVAL);
    r.backend_count = STATE_BACKENDS_MAX + 1;
    assert_int_equal(state_routes_set(routes, &r), STATE_EINVAL);
    r.backend_count = 1;
    r.backends[0].family = 5;
    assert_int_equal(state_routes_set(routes, &r), STATE_EINVAL);
    /* A host that fills the whole buffer without a NUL is over the 253-byte limit. */
    r = make_route("ok.gw.test", "ok", 1);
    memset(r.host, 'a', sizeof(r.host));
    assert_int_equal(state_routes_set(routes, &r), STATE_EINVAL);

    assert_int_equal(state_routes_count(routes), 0);
    assert_false(lookup(routes, "ok.gw.test", &out));
}

static void sixteen_backends_of_both_families_round_trip(void **state)
{
    struct state_routes *routes = *state;
    struct state_route in = make_route("wide.gw.test", "wide", 3), out;

    in.backend_count = STATE_BACKENDS_MAX;
    for (int i = 0; i < STATE_BACKENDS_MAX; i++)
        in.backends[i] = (i % 2) ? backend_v6_ula((uint16_t)i, (uint16_t)(1000 + i))
                                 : backend_v4(192, 168, 1, (uint8_t)i, (uint16_t)(2000 + i));
    assert_int_equal(state_routes_set(routes, &in), 0);
    assert_true(lookup(routes, "wide.gw.test", &out));
    assert_int_equal(out.backend_count, STATE_BACKENDS_MAX);
    for (int i = 0; i < STATE_BACKENDS_MAX; i++)
        assert_backend_equal(&out.backends[i], &in.backends[i]);
}

static void memory_accounting_follows_the_routes(void **state)
{
    struct state_routes *routes = *state;
    struct state_route r = make_route("compact-name.gw.example.com", "compact-name", 1);
    char host[64];
    size_t one;

    assert_int_equal(state_routes_memory(routes), 0);
    assert_int_equal(state_routes_set(routes, &r), 0);
    one = state_routes_memory(routes);
    /* A route is stored compactly: far less than the 800-byte struct state_route. */
    assert_true(one > 0);
    assert_true(one <= 128);

    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof(host), "n%04d.gw.example.com", i);
        r = make_route(host, host, 1);
        assert_int_equal(state_routes_set(routes, &r), 0);
    }
    assert_int_equal(state_routes_count(routes), 1001);
    assert_true(state_routes_memory(routes) > 1000 * 50);
    for (int i = 0; i < 1000; i++) {
        snprintf(host, sizeof(host), "n%04d.gw.example.com", i);
        assert_int_equal(state_routes_remove(routes, host), 0);
    }
    assert_int_equal(state_routes_count(routes), 1);
    assert_int_equal(state_routes_memory(routes), one);
}

static void many_hosts_are_all_found(void **state)
{
    struct state_routes *routes = *state;
    struct state_route r, out;
    char host[64];
    const int n = 20000;

    for (int i = 0; i < n; i++) {
        snprintf(host, sizeof(host), "h%05d.gw.test", i);
        r = make_route(host, host, (uint64_t)i + 1);
        assert_int_equal(state_routes_set(routes, &r), 0);
    }
    assert_int_equal(state_routes_count(routes), n);
    for (int i = 0; i < n; i += 2) {
        snprintf(host, sizeof(host), "h%05d.gw.test", i);
        assert_int_equal(state_routes_remove(routes, host), 0);
    }
    for (int i = 0; i < n; i++) {
        snprintf(host, sizeof(host), "h%05d.gw.test", i);
        if (i % 2) {
            assert_true(lookup(routes, host, &out));
            assert_int_equal(out.version, (uint64_t)i + 1);
            assert_string_equal(out.name, host);
        } else {
            assert_false(lookup(routes, host, &out));
        }
    }
    assert_int_equal(state_routes_count(routes), n / 2);
}

static void table_grows_and_shrinks_without_losing_routes(void **state)
{
    struct state_routes *routes = *state;
    struct state_route r, out;
    char host[64];
    const int n = 50000, keep = 100;

    /* Grows from 1024 buckets to 64K, then shrinks back as nearly everything goes, and grows
     * again: every route must stay reachable through each resize. */
    for (int cycle = 0; cycle < 2; cycle++) {
        for (int i = 0; i < n; i++) {
            snprintf(host, sizeof(host), "g%05d.gw.test", i);
            r = make_route(host, host, (uint64_t)cycle + 1);
            assert_int_equal(state_routes_set(routes, &r), 0);
        }
        for (int i = keep; i < n; i++) {
            snprintf(host, sizeof(host), "g%05d.gw.test", i);
            assert_int_equal(state_routes_remove(routes, host), 0);
        }
        assert_int_equal(state_routes_count(routes), keep);
        for (int i = 0; i < n; i += (i < keep ? 1 : 97)) {
            snprintf(host, sizeof(host), "g%05d.gw.test", i);
            assert_int_equal(lookup(routes, host, &out), i < keep);
            if (i < keep)
                assert_int_equal(out.version, (uint64_t)cycle + 1);
        }
    }
}

/* ---- routes derived from name views -------------------------------------------------------- */

static struct state_name_view proxy_view(const char *name, uint64_t version)
{
    struct state_name_view v;
    memset(&v, 0, sizeof(v));
    snprintf(v.name, sizeof(v.name), "%s", name);
    v.held = true;
    v.record.kind = STATE_RECORD_PROXY;
    snprintf(v.record.name, sizeof(v.record.name), "%s", name);
    v.record.version = version;
    v.record.backend_count = 2;
    v.record.backends[0] = backend_v4(10, 1, 0, 1, 80);
    v.record.backends[1] = backend_v6_ula(2, 8080);
    return v;
}

static void apply_proxy_serves_name_under_domain(void **state)
{
    struct state_routes *routes = *state;
    struct state_name_view v = proxy_view("myapp", 4);
    struct state_route out;

    assert_int_equal(state_routes_apply(routes, &v, "gw.example.com"), 0);
    assert_true(lookup(routes, "myapp.gw.example.com", &out));
    assert_string_equal(out.host, "myapp.gw.example.com");
    assert_string_equal(out.name, "myapp");
    assert_int_equal(out.version, 4);
    assert_false(out.tls_passthrough);
    assert_int_equal(out.backend_count, 2);
    assert_backend_equal(&out.backends[0], &v.record.backends[0]);
    assert_backend_equal(&out.backends[1], &v.record.backends[1]);
    assert_false(lookup(routes, "myapp", &out));
    assert_false(lookup(routes, "myapp.localhost", &out));
    assert_int_equal(state_routes_count(routes), 1);
}

static void apply_fqdn_serves_the_domain_itself(void **state)
{
    struct state_routes *routes = *state;
    struct state_name_view v = proxy_view("www.example.org", 2);
    struct state_route out;

    v.record.kind = STATE_RECORD_FQDN;
    assert_int_equal(state_routes_apply(routes, &v, "gw.example.com"), 0);
    assert_true(lookup(routes, "www.example.org", &out));
    assert_string_equal(out.name, "www.example.org");
    assert_int_equal(out.version, 2);
    assert_false(lookup(routes, "www.example.org.gw.example.com", &out));
}

static void apply_carries_tls_passthrough(void **state)
{
    struct state_routes *routes = *state;
    struct state_name_view v = proxy_view("secure", 1);
    struct state_route out;

    v.record.tls_passthrough = true;
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    assert_true(lookup(routes, "secure.localhost", &out));
    assert_true(out.tls_passthrough);

    v.record.tls_passthrough = false;
    v.record.version = 2;
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    assert_true(lookup(routes, "secure.localhost", &out));
    assert_false(out.tls_passthrough);
    assert_int_equal(out.version, 2);
}

static void apply_removes_released_reserved_and_free_names(void **state)
{
    struct state_routes *routes = *state;
    struct state_name_view v, fq;
    struct state_route out;

    /* Release tombstone: the name goes away. */
    v = proxy_view("gone", 1);
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    assert_true(lookup(routes, "gone.localhost", &out));
    v.held = false;
    v.record.kind = STATE_RECORD_RELEASE;
    v.record.backend_count = 0;
    v.record.version = 2;
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    assert_false(lookup(routes, "gone.localhost", &out));
    /* Applying the removal again is not an error. */
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);

    /* A held name whose latest record is a bare reservation has no route. */
    v = proxy_view("parked", 1);
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    v.record.kind = STATE_RECORD_RESERVE;
    v.record.backend_count = 0;
    v.record.version = 2;
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    assert_false(lookup(routes, "parked.localhost", &out));

    /* A proxy record on a key nobody holds any more (lost a conflict) is not served. */
    v = proxy_view("lost", 1);
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    v.held = false;
    assert_int_equal(state_routes_apply(routes, &v, "localhost"), 0);
    assert_false(lookup(routes, "lost.localhost", &out));

    /* Releasing a custom domain removes the domain, not "domain.DOMAIN". */
    fq = proxy_view("shop.example.net", 1);
    fq.record.kind = STATE_RECORD_FQDN;
    assert_int_equal(state_routes_apply(routes, &fq, "localhost"), 0);
    assert_true(lookup(routes, "shop.example.net", &out));
    fq.held = false;
    fq.record.kind = STATE_RECORD_RELEASE;
    fq.record.backend_count = 0;
    assert_int_equal(state_routes_apply(routes, &fq, "localhost"), 0);
    assert_false(lookup(routes, "shop.example.net", &out));

    assert_int_equal(state_routes_count(routes), 0);
}

static void apply_never_lets_an_fqdn_inside_the_domain_shadow_a_name(void **state)
{
    struct state_routes *routes = *state;
    struct state_name_view name = proxy_view("shop", 1), fq;
    struct state_route out;

    assert_int_equal(state_routes_apply(routes, &name, "gw.example.com"), 0);

    /* Another owner's fqdn record for the very host NAME.DOMAIN serves is refused... */
    fq = proxy_view("shop.gw.example.com", 9);
    fq.record.kind = STATE_RECORD_FQDN;
    fq.record.backends[0] = backend_v4(10, 66, 66, 66, 80);
    assert_int_equal(state_routes_apply(routes, &fq, "gw.example.com"), STATE_EINVAL);
    assert_int_equal(state_routes_apply(routes, &fq, "GW.Example.COM."), STATE_EINVAL);
    /* ...as are the domain itself and anything deeper inside it... */
    snprintf(fq.name, sizeof(fq.name), "gw.example.com");
    assert_int_equal(state_routes_apply(routes, &fq, "gw.example.com"), STATE_EINVAL);
    snprintf(fq.name, sizeof(fq.name), "a.shop.gw.example.com");
    assert_int_equal(state_routes_apply(routes, &fq, "gw.example.com"), STATE_EINVAL);
    /* ...and its release does not take the name's route down. */
    snprintf(fq.name, sizeof(fq.name), "shop.gw.example.com");
    fq.held = false;
    fq.record.kind = STATE_RECORD_RELEASE;
    fq.record.backend_count = 0;
    assert_int_equal(state_routes_apply(routes, &fq, "gw.example.com"), 0);

    assert_true(lookup(routes, "shop.gw.example.com", &out));
    assert_string_equal(out.name, "shop");
    assert_int_equal(out.version, 1);
    assert_int_equal(state_routes_count(routes), 1);

    /* A look-alike outside the domain is an ordinary custom domain. */
    fq = proxy_view("shopgw.example.com", 1);
    fq.record.kind = STATE_RECORD_FQDN;
    assert_int_equal(state_routes_apply(routes, &fq, "gw.example.com"), 0);
    assert_true(lookup(routes, "shopgw.example.com", &out));
}

static void apply_refuses_missing_domain_and_overlong_hosts(void **state)
{
    struct state_routes *routes = *state;
    struct state_name_view v = proxy_view("myapp", 1);
    char domain[240];

    assert_int_equal(state_routes_apply(routes, &v, NULL), STATE_EINVAL);
    assert_int_equal(state_routes_apply(routes, &v, ""), STATE_EINVAL);
    memset(domain, 'd', sizeof(domain) - 1);
    domain[sizeof(domain) - 1] = '\0';
    memset(v.name, 'a', 20);
    v.name[20] = '\0'; /* 20 + 1 + 239 > 253 */
    assert_int_equal(state_routes_apply(routes, &v, domain), STATE_EINVAL);
    assert_int_equal(state_routes_count(routes), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(lookup_returns_what_was_set, setup, teardown),
        cmocka_unit_test_setup_teardown(lookup_ignores_case_trailing_dot_and_reads_only_host_len,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(set_replaces_the_whole_route, setup, teardown),
        cmocka_unit_test_setup_teardown(remove_deletes_only_that_host, setup, teardown),
        cmocka_unit_test_setup_teardown(set_refuses_malformed_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(sixteen_backends_of_both_families_round_trip, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(memory_accounting_follows_the_routes, setup, teardown),
        cmocka_unit_test_setup_teardown(many_hosts_are_all_found, setup, teardown),
        cmocka_unit_test_setup_teardown(table_grows_and_shrinks_without_losing_routes, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(apply_proxy_serves_name_under_domain, setup, teardown),
        cmocka_unit_test_setup_teardown(apply_fqdn_serves_the_domain_itself, setup, teardown),
        cmocka_unit_test_setup_teardown(apply_carries_tls_passthrough, setup, teardown),
        cmocka_unit_test_setup_teardown(apply_removes_released_reserved_and_free_names, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(apply_never_lets_an_fqdn_inside_the_domain_shadow_a_name,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(apply_refuses_missing_domain_and_overlong_hosts, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
