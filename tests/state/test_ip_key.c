/*
 * test_ip_key.c - what every per-client table keys on (state_ip_key): an IPv4 address, an IPv6
 * /64, an IPv4-mapped IPv6 address as its IPv4 address; other families refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/un.h>

#include "state/state.h"

static void key_of(const char *text, uint8_t out[STATE_IP_KEY_LEN])
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(1234);
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(4321);
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
    assert_true(state_ip_key((struct sockaddr *)&ss, out));
}

static void test_clients(void **state)
{
    uint8_t a[STATE_IP_KEY_LEN], b[STATE_IP_KEY_LEN];
    static const uint8_t v4[STATE_IP_KEY_LEN] = {4, 192, 0, 2, 7};
    struct sockaddr_un un = {.sun_family = AF_UNIX};

    (void)state;
    key_of("192.0.2.7", a);
    assert_memory_equal(a, v4, sizeof(v4));
    key_of("::ffff:192.0.2.7", b); /* a dual-stack socket's IPv4 client */
    assert_memory_equal(a, b, sizeof(a));
    key_of("192.0.2.8", b);
    assert_memory_not_equal(a, b, sizeof(a));

    key_of("2001:db8:1:2::1", a); /* one /64, whatever the interface id */
    key_of("2001:db8:1:2:ffff:ffff:ffff:ffff", b);
    assert_memory_equal(a, b, sizeof(a));
    assert_int_equal(a[0], 6);
    key_of("2001:db8:1:3::1", b); /* the next /64 */
    assert_memory_not_equal(a, b, sizeof(a));
    key_of("::1", a);
    key_of("::2", b); /* ::/64 is one client too: no special case */
    assert_memory_equal(a, b, sizeof(a));

    assert_false(state_ip_key((struct sockaddr *)&un, a));
    for (int i = 0; i < STATE_IP_KEY_LEN; i++)
        assert_int_equal(a[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_clients)};

    return cmocka_run_group_tests(tests, NULL, NULL);
}
