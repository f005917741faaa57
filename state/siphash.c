/*
 * siphash.c - the one keyed hash of every table whose keys come from the network (names,
 * client prefixes): SipHash-1-3 (Aumasson and Bernstein), written from the paper's
 * description, under a random per-table key, so nobody can choose keys that collide.
 */
#include <stdint.h>
#include <sys/random.h>
#include <time.h>

#include "state/state.h"

static inline uint64_t rotl64(uint64_t x, int b)
{
    return (x << b) | (x >> (64 - b));
}

#define SIP_ROUND(v0, v1, v2, v3)                                                                  \
    do {                                                                                           \
        v0 += v1;                                                                                  \
        v1 = rotl64(v1, 13);                                                                       \
        v1 ^= v0;                                                                                  \
        v0 = rotl64(v0, 32);                                                                       \
        v2 += v3;                                                                                  \
        v3 = rotl64(v3, 16);                                                                       \
        v3 ^= v2;                                                                                  \
        v0 += v3;                                                                                  \
        v3 = rotl64(v3, 21);                                                                       \
        v3 ^= v0;                                                                                  \
        v2 += v1;                                                                                  \
        v1 = rotl64(v1, 17);                                                                       \
        v1 ^= v2;                                                                                  \
        v2 = rotl64(v2, 32);                                                                       \
    } while (0)

uint64_t state_siphash(const uint64_t seed[2], const void *s, size_t len)
{
    uint64_t v0 = seed[0] ^ 0x736f6d6570736575ULL, v1 = seed[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = seed[0] ^ 0x6c7967656e657261ULL, v3 = seed[1] ^ 0x7465646279746573ULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t whole = len & ~(size_t)7;
    uint64_t m, last = (uint64_t)len << 56;

    for (size_t i = 0; i < whole; i += 8) {
        m = 0;
        for (int b = 0; b < 8; b++)
            m |= (uint64_t)p[i + b] << (8 * b);
        v3 ^= m;
        SIP_ROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    for (size_t i = whole; i < len; i++)
        last |= (uint64_t)p[i] << (8 * (i - whole));
    v3 ^= last;
    SIP_ROUND(v0, v1, v2, v3);
    v0 ^= last;
    v2 ^= 0xff;
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    SIP_ROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

void state_siphash_key(uint64_t key[2])
{
    if (getrandom(key, 2 * sizeof(uint64_t), GRND_NONBLOCK) != 2 * (ssize_t)sizeof(uint64_t)) {
        /* early boot without entropy: a weaker key still spreads ordinary keys well */
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        key[0] = (uint64_t)ts.tv_nsec ^ (uint64_t)(uintptr_t)key;
        key[1] = (uint64_t)ts.tv_sec * 0x9e3779b97f4a7c15ULL;
    }
}
