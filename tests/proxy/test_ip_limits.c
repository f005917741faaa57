/*
 * test_ip_limits.c - the per-client table of proxy/limits.c: a client is an IPv4 address or an
 * IPv6 /64, keys chosen to collide under the old unkeyed FNV-1a do not pile into one chain, and
 * the table stops growing at its bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>

#include "proxy/internal.h"

static struct sockaddr_storage addr(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    return ss;
}

static struct proxy_ipslot *acquire(struct proxy_iptable *t, const char *text)
{
    struct sockaddr_storage ss = addr(text);

    return proxy_ip_acquire(t, (struct sockaddr *)&ss);
}

/* Two addresses of one /64 are one client: they share its connection limit; the next /64 is
 * another client; an IPv4-mapped address is its IPv4 client. */
static void test_ipv6_slash64_shares_a_limit(void **unused)
{
    struct proxy_iptable t;
    struct proxy_ipslot *a, *b, *c;

    proxy_ip_init(&t, 2, 0, 0);
    a = acquire(&t, "2001:db8:1:2::1");
    b = acquire(&t, "2001:db8:1:2:ffff:ffff:ffff:fffe");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_null(acquire(&t, "2001:db8:1:2:8000::77")); /* a third connection of the /64 */
    c = acquire(&t, "2001:db8:1:3::1");                /* the next /64 */
    assert_non_null(c);
    assert_ptr_not_equal(c, a);

    assert_non_null(acquire(&t, "192.0.2.7"));
    assert_non_null(acquire(&t, "::ffff:192.0.2.7"));
    assert_null(acquire(&t, "192.0.2.7"));
    assert_non_null(acquire(&t, "192.0.2.8"));
    proxy_ip_destroy(&t);
}

/* The bucket the old table gave a 17-byte key (family, address): 32-bit FNV-1a mod 4096. */
static unsigned old_fnv_bucket(const uint8_t ip[4])
{
    uint8_t key[17] = {4, ip[0], ip[1], ip[2], ip[3]};
    uint32_t h = 2166136261u;

    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % 4096;
}

/* 2,000 clients that all fell in one bucket of the old unkeyed table (a list walk under a
 * stripe lock at every accept, close and request) spread over the keyed one. */
static void test_fnv_colliding_clients_spread(void **unused)
{
    struct proxy_iptable t;
    struct proxy_ipslot **held = calloc(2000, sizeof(*held));
    size_t n = 0, entries, longest;
    uint8_t ip[4] = {10, 0, 0, 0};
    unsigned target = old_fnv_bucket(ip);

    proxy_ip_init(&t, 0, 0, 0);
    for (uint32_t i = 1; n < 2000; i++) {
        char text[32];

        ip[1] = (uint8_t)(i >> 16);
        ip[2] = (uint8_t)(i >> 8);
        ip[3] = (uint8_t)i;
        if (old_fnv_bucket(ip) != target)
            continue;
        inet_ntop(AF_INET, ip, text, sizeof(text));
        held[n] = acquire(&t, text);
        assert_non_null(held[n]);
        n++;
    }
    proxy_ip_stats(&t, &entries, &longest);
    assert_int_equal(entries, 2000);
    assert_true(longest < 16);
    for (size_t i = 0; i < n; i++)
        proxy_ip_release(&t, held[i]);
    proxy_ip_stats(&t, &entries, &longest);
    assert_int_equal(entries, 0);
    proxy_ip_destroy(&t);
    free(held);
}

/* Past PROXY_IP_STRIPES * PROXY_IP_STRIPE_MAX clients a new one is refused, not stored. */
static void test_table_is_bounded(void **unused)
{
    const size_t bound = (size_t)PROXY_IP_STRIPES * PROXY_IP_STRIPE_MAX, tries = bound + 5000;
    struct proxy_ipslot **held = calloc(tries, sizeof(*held));
    struct proxy_iptable t;
    size_t kept = 0, entries, longest;

    proxy_ip_init(&t, 0, 0, 0);
    for (size_t i = 0; i < tries; i++) {
        struct sockaddr_in s4 = {.sin_family = AF_INET};

        s4.sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
        held[i] = proxy_ip_acquire(&t, (struct sockaddr *)&s4);
        kept += held[i] != NULL;
    }
    proxy_ip_stats(&t, &entries, &longest);
    assert_true(kept <= bound);
    assert_true(kept > bound - 2000); /* stripes fill about evenly */
    assert_int_equal(entries, kept);
    for (size_t i = 0; i < tries; i++)
        if (held[i])
            proxy_ip_release(&t, held[i]);
    proxy_ip_stats(&t, &entries, &longest);
    assert_int_equal(entries, 0);
    proxy_ip_destroy(&t);
    free(held);
}

/* The table hash depends on the per-process key: the same bytes under two keys land apart. */
static void test_hash_depends_on_key(void **unused)
{
    uint64_t k1[2], k2[2];
    uint8_t key[STATE_IP_KEY_LEN] = {4, 10, 0, 0, 1};
    int differ = 0;

    state_siphash_key(k1);
    state_siphash_key(k2);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    for (int i = 0; i < 64; i++) {
        key[4] = (uint8_t)i;
        differ += state_siphash(k1, key, sizeof(key)) != state_siphash(k2, key, sizeof(key));
    }
    assert_int_equal(differ, 64);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv6_slash64_shares_a_limit),
        cmocka_unit_test(test_fnv_colliding_clients_spread),
        cmocka_unit_test(test_table_is_bounded),
        cmocka_unit_test(test_hash_depends_on_key),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
