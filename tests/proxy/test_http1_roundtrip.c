/*
 * test_http1_roundtrip.c - the property of http1_roundtrip.h over valid requests and a few
 * hundred thousand seeded mutations of them (bytes replaced by the ones smuggling hides in:
 * CR, LF, NUL, space, tab, colon, comma; bytes inserted, deleted, lines duplicated). The same
 * check runs under libFuzzer in tests/fuzz/fuzz_http1.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "http1_roundtrip.h"

static const char *const seeds[] = {
    "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n",
    "GET http://a.example:8080/p?q HTTP/1.1\r\nHost: a.example\r\nAccept: */*\r\n\r\n",
    "POST /u HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: 1\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Y\r\nUpgrade: websocket\r\n"
    "X-Y: 1\r\nKeep-Alive: 5\r\nTE: trailers\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
    "PUT /x HTTP/1.1\r\nHost: [::1]:80\r\nExpect: 100-continue\r\nContent-Length: 0\r\n\r\n",
};

static uint64_t rng = 0x243f6a8885a308d3ULL;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
    static const uint8_t special[] = {'\r', '\n', 0, ' ', '\t', ':', ',', '0', 'a', 0x7f, 0x80};
    int ops = 1 + (int)(next() % 3);
    for (int k = 0; k < ops; k++) {
        size_t at = len ? next() % len : 0;
        switch (next() % 4) {
        case 0:
            if (len)
                buf[at] = special[next() % sizeof(special)];
            break;
        case 1:
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = special[next() % sizeof(special)];
                len++;
            }
            break;
        case 2:
            if (len) {
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        case 3: { /* duplicate the line at `at` */
            size_t s = at, e = at;
            while (s > 0 && buf[s - 1] != '\n')
                s--;
            while (e < len && buf[e] != '\n')
                e++;
            if (e < len)
                e++;
            size_t l = e - s;
            if (len + l <= cap) {
                memmove(buf + e + l, buf + e, len - e);
                memcpy(buf + e, buf + s, l);
                len += l;
            }
            break;
        }
        }
    }
    return len;
}

static void test_valid_requests_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        const char *why = http1_roundtrip_check((const uint8_t *)seeds[i], strlen(seeds[i]));
        if (why)
            fprintf(stderr, "seed %zu: %s\n", i, why);
        assert_null(why);
    }
}

static void test_mutated_requests_hold_the_property(void **state)
{
    (void)state;
    uint8_t buf[1024];
    int failures = 0;
    for (int it = 0; it < 200000; it++) {
        const char *seed = seeds[next() % (sizeof(seeds) / sizeof(seeds[0]))];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        len = mutate(buf, len, sizeof(buf));
        const char *why = http1_roundtrip_check(buf, len);
        if (why && failures++ < 5) {
            fprintf(stderr, "iteration %d: %s: ", it, why);
            for (size_t i = 0; i < len; i++)
                fprintf(stderr, buf[i] >= 32 && buf[i] < 127 ? "%c" : "\\x%02x", buf[i]);
            fprintf(stderr, "\n");
        }
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests_round_trip),
        cmocka_unit_test(test_mutated_requests_hold_the_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
