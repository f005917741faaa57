/*
 * dns_rrl.c - response rate limiting per client prefix.
 *
 * UDP source addresses can be forged, so an open DNS server is an amplifier: a small query
 * with a victim's address buys a larger answer sent to the victim. Limiting responses per
 * *prefix* (/24, /56, as BIND's RRL does) bounds what one victim network can receive from
 * each gateway, whatever addresses inside it the attacker forges.
 *
 * The table is fixed (DNS_RRL_SLOTS slots, allocated once), open-addressed with linear
 * probing over a window of DNS_RRL_PROBE slots, keyed with SipHash under a random key: an
 * attacker choosing prefixes cannot aim them at one window. When a window is full, its least
 * recently seen slot is reused, so the table never grows and a flood of distinct prefixes
 * only makes the limiter forget (never block) someone.
 *
 * Each slot is a token bucket of `rate` tokens per second, holding at most one second's
 * worth. Limited responses alternate between a truncated empty answer ("slip": a real
 * resolver retries over TCP, which cannot be forged) and nothing.
 */
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "dns/dns_int.h"
#include "state/state.h"

#define DNS_RRL_PROBE 8 /* slots searched per prefix */

struct dns_rrl_slot {
    uint8_t prefix[8]; /* /24 (3 bytes) or /56 (7 bytes), family in byte 7 */
    bool used;         /* holds a prefix */
    uint32_t tokens_m; /* tokens, in thousandths */
    uint64_t seen_ms;  /* last refill */
    uint32_t limited;  /* responses limited since the last one sent (slip alternation) */
};

struct dns_rrl {
    uint32_t rate;                            /* tokens per second; 0: off */
    uint64_t key[2];                          /* SipHash key */
    struct dns_rrl_slot slots[DNS_RRL_SLOTS]; /* the table */
};

struct dns_rrl *dns_rrl_new(uint32_t rate)
{
    struct dns_rrl *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return NULL;
    r->rate = rate;
    state_siphash_key(r->key);
    return r;
}

void dns_rrl_free(struct dns_rrl *rrl)
{
    free(rrl);
}

/* The client's prefix: 3 bytes of IPv4 or 7 of IPv6, and the family in the last byte. */
static bool dns_rrl_prefix(const struct sockaddr *sa, uint8_t out[8])
{
    memset(out, 0, 8);
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 3);
        out[7] = 4;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0) { /* an IPv4 client on a dual-stack socket */
            memcpy(out, a + 12, 3);
            out[7] = 4;
        } else {
            memcpy(out, a, 7);
            out[7] = 6;
        }
        return true;
    }
    return false;
}

static struct dns_rrl_slot *dns_rrl_slot(struct dns_rrl *r, const uint8_t prefix[8],
                                         uint64_t now_ms)
{
    size_t start = (size_t)(state_siphash(r->key, prefix, 8) % DNS_RRL_SLOTS);
    struct dns_rrl_slot *oldest = NULL;

    for (size_t i = 0; i < DNS_RRL_PROBE; i++) {
        struct dns_rrl_slot *s = &r->slots[(start + i) % DNS_RRL_SLOTS];
        if (s->used && memcmp(s->prefix, prefix, 8) == 0)
            return s;
        if (!s->used) {
            oldest = s;
            break;
        }
        if (oldest == NULL || s->seen_ms < oldest->seen_ms)
            oldest = s;
    }
    memset(oldest, 0, sizeof(*oldest));
    memcpy(oldest->prefix, prefix, 8);
    oldest->used = true;
    oldest->tokens_m = r->rate * 1000u; /* a new prefix starts with a full second */
    oldest->seen_ms = now_ms;
    return oldest;
}

enum dns_rrl_verdict dns_rrl_check(struct dns_rrl *rrl, const struct sockaddr *client,
                                   uint64_t now_ms)
{
    uint8_t prefix[8];
    struct dns_rrl_slot *s;
    uint64_t cap, tokens;

    if (rrl == NULL || rrl->rate == 0 || !dns_rrl_prefix(client, prefix))
        return DNS_RRL_SEND;
    s = dns_rrl_slot(rrl, prefix, now_ms);
    cap = (uint64_t)rrl->rate * 1000u;
    if (now_ms > s->seen_ms) {
        /* rate tokens per second = rate thousandths per millisecond */
        tokens = s->tokens_m + (now_ms - s->seen_ms) * rrl->rate;
        s->tokens_m = (uint32_t)(tokens > cap ? cap : tokens);
        s->seen_ms = now_ms;
    }
    if (s->tokens_m >= 1000) {
        s->tokens_m -= 1000;
        s->limited = 0;
        return DNS_RRL_SEND;
    }
    return (s->limited++ % 2 == 0) ? DNS_RRL_SLIP : DNS_RRL_DROP;
}
