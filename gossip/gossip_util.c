/*
 * gossip_util.c - addresses, hashing and the PRNG used by the gossip layer.
 *
 * The PRNG is ours (splitmix64) rather than random(3) so every member carries its own
 * seeded stream: simulations are reproducible and members do not share hidden state.
 */
#include "gossip/gossip_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gossip_addr_parse(const char *text, struct gossip_addr *out, char *err, size_t errlen)
{
    char host[64];
    const char *port_text;
    const char *end;
    size_t hlen;
    char *pend;
    unsigned long port;

    memset(out, 0, sizeof(*out));
    if (text == NULL || *text == '\0')
        goto fail;
    if (text[0] == '[') {
        end = strchr(text, ']');
        if (end == NULL || end[1] != ':')
            goto fail;
        hlen = (size_t)(end - text - 1);
        if (hlen == 0 || hlen >= sizeof(host))
            goto fail;
        memcpy(host, text + 1, hlen);
        host[hlen] = '\0';
        port_text = end + 2;
        if (inet_pton(AF_INET6, host, out->ip) != 1)
            goto fail;
        out->family = 6;
    } else {
        end = strrchr(text, ':');
        if (end == NULL)
            goto fail;
        hlen = (size_t)(end - text);
        if (hlen == 0 || hlen >= sizeof(host))
            goto fail;
        memcpy(host, text, hlen);
        host[hlen] = '\0';
        port_text = end + 1;
        if (inet_pton(AF_INET, host, out->ip) != 1)
            goto fail;
        out->family = 4;
    }
    if (*port_text < '0' || *port_text > '9')
        goto fail;
    errno = 0;
    port = strtoul(port_text, &pend, 10);
    if (errno != 0 || *pend != '\0' || port > 65535)
        goto fail;
    out->port = (uint16_t)port;
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    if (err != NULL)
        snprintf(err, errlen, "bad address \"%s\": want IP:PORT or [IPv6]:PORT", text ? text : "");
    return GOSSIP_EINVAL;
}

char *gossip_addr_format(const struct gossip_addr *a, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN];

    if (a->family == 4 && inet_ntop(AF_INET, a->ip, ip, sizeof(ip)) != NULL)
        snprintf(out, outlen, "%s:%u", ip, a->port);
    else if (a->family == 6 && inet_ntop(AF_INET6, a->ip, ip, sizeof(ip)) != NULL)
        snprintf(out, outlen, "[%s]:%u", ip, a->port);
    else
        snprintf(out, outlen, "-");
    return out;
}

bool gossip_addr_equal(const struct gossip_addr *a, const struct gossip_addr *b)
{
    size_t n = a->family == 4 ? 4 : 16;

    return a->family == b->family && a->port == b->port && memcmp(a->ip, b->ip, n) == 0;
}

/* FNV-1a over the bytes, finished with the splitmix64 mixer so nearby keys spread over all
 * 64 bits (bucket selection and rendezvous scores use the low and high bits). */
uint64_t ghash64(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

uint64_t grand_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint32_t grand_below(uint64_t *state, uint32_t n)
{
    if (n == 0)
        return 0;
    return (uint32_t)(((grand_next(state) >> 32) * (uint64_t)n) >> 32);
}

const char *gossip_state_name(enum gossip_member_state state)
{
    switch (state) {
    case GOSSIP_ALIVE:
        return "alive";
    case GOSSIP_SUSPECT:
        return "suspect";
    case GOSSIP_DEAD:
        return "dead";
    case GOSSIP_LEFT:
        return "left";
    }
    return "unknown";
}

const char *gossip_drop_reason_name(enum gossip_drop_reason r)
{
    static const char *const names[GOSSIP_DROP__COUNT] = {
        [GOSSIP_DROP_MALFORMED] = "malformed",
        [GOSSIP_DROP_VERSION] = "version",
        [GOSSIP_DROP_OVERSIZE] = "oversize",
        [GOSSIP_DROP_LABEL] = "label",
        [GOSSIP_DROP_DECRYPT] = "decrypt",
        [GOSSIP_DROP_UNENCRYPTED] = "unencrypted",
        [GOSSIP_DROP_ENCRYPTED] = "encrypted",
        [GOSSIP_DROP_UNKNOWN_TYPE] = "unknown_type",
        [GOSSIP_DROP_WRONG_TARGET] = "wrong_target",
        [GOSSIP_DROP_ITEM_REJECTED] = "item_rejected",
        [GOSSIP_DROP_QUEUE_FULL] = "queue_full",
        [GOSSIP_DROP_SEND_FAILED] = "send_failed",
        [GOSSIP_DROP_TABLE_FULL] = "table_full",
        [GOSSIP_DROP_INCARNATION] = "incarnation",
        [GOSSIP_DROP_UNSOLICITED] = "unsolicited",
        [GOSSIP_DROP_REPLAY] = "replay",
        [GOSSIP_DROP_CLOCK] = "clock",
    };

    if ((unsigned)r >= GOSSIP_DROP__COUNT)
        return "unknown";
    return names[r];
}

const char *gossip_health_verdict_name(enum gossip_health_verdict v)
{
    switch (v) {
    case GOSSIP_HEALTH_UP:
        return "up";
    case GOSSIP_HEALTH_DOWN:
        return "down";
    case GOSSIP_HEALTH_UNKNOWN:
        break;
    }
    return "unknown";
}
