/*
 * backend_addr.c - backend addresses: the text forms users type ("http://IP:PORT" for TLS
 * termination, "IP:PORT" for passthrough, IPv6 in brackets) and the address rules that keep
 * a gateway from being turned against itself or its neighbours.
 *
 * Only IP literals are accepted: a host name would make every gateway resolve it on its own,
 * at its own time, and the fleet would disagree about where a name goes. Refused addresses:
 * unspecified, multicast, broadcast and link-local (169.254.169.254 is the cloud metadata
 * service on most providers), loopback unless the node allows it, the same in IPv4-mapped
 * IPv6 form, and the node's own listen addresses (a record pointing a name at the gateway
 * would make it proxy to itself forever).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "state/record_internal.h"

#define BACKEND_TEXT_MAX 100 /* longer than any valid form; longer input is refused early */

/* ---- text forms --------------------------------------------------------------------------- */

void state_backend_format(const struct state_backend *be, bool passthrough, char out[64])
{
    char ip[INET6_ADDRSTRLEN] = "?";
    const char *scheme = passthrough ? "" : "http://";

    if (be->family == 4) {
        inet_ntop(AF_INET, be->addr, ip, sizeof(ip));
        snprintf(out, 64, "%s%s:%u", scheme, ip, be->port);
    } else if (be->family == 6) {
        inet_ntop(AF_INET6, be->addr, ip, sizeof(ip));
        snprintf(out, 64, "%s[%s]:%u", scheme, ip, be->port);
    } else {
        snprintf(out, 64, "%s(family %u):%u", scheme, be->family, be->port);
    }
}

static int parse_port(const char *p, size_t n, uint16_t *port)
{
    unsigned long v = 0;

    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(p[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

static bool looks_like_host_name(const char *host, size_t n)
{
    bool alpha = false;

    for (size_t i = 0; i < n; i++) {
        char c = host[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            alpha = true;
        else if (!(c >= '0' && c <= '9') && c != '-' && c != '.')
            return false;
    }
    return alpha;
}

/* Parses "IP:PORT" or "[IPv6]:PORT" (no scheme, no path). */
static int parse_host_port(const char *hp, size_t n, const char *q, struct state_backend *out,
                           char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    size_t host_len;

    if (n > 0 && hp[0] == '[') {
        const char *close = memchr(hp, ']', n);

        if (close == NULL) {
            state_errf(err, errlen, "backend %s: missing ']' after the IPv6 address", q);
            return STATE_EINVAL;
        }
        host_len = (size_t)(close - hp - 1);
        if (memchr(hp, '%', host_len + 1) != NULL) {
            state_errf(err, errlen, "backend %s: IPv6 zone ids are not supported", q);
            return STATE_EINVAL;
        }
        if (host_len >= sizeof(host)) {
            state_errf(err, errlen, "backend %s: invalid IPv6 address", q);
            return STATE_EINVAL;
        }
        memcpy(host, hp + 1, host_len);
        host[host_len] = '\0';
        if (inet_pton(AF_INET6, host, out->addr) != 1) {
            state_errf(err, errlen, "backend %s: invalid IPv6 address", q);
            return STATE_EINVAL;
        }
        out->family = 6;
        port = close + 1;
    } else {
        const char *colon = memchr(hp, ':', n);

        if (colon == NULL) {
            state_errf(err, errlen, "backend %s: missing port (IP:PORT)", q);
            return STATE_EINVAL;
        }
        if (memchr(colon + 1, ':', (size_t)(hp + n - colon - 1)) != NULL) {
            state_errf(err, errlen, "backend %s: IPv6 addresses go in brackets: [ADDR]:PORT", q);
            return STATE_EINVAL;
        }
        host_len = (size_t)(colon - hp);
        if (looks_like_host_name(hp, host_len)) {
            state_errf(err, errlen, "backend %s: host names are not allowed, use an IP address", q);
            return STATE_EINVAL;
        }
        if (host_len >= sizeof(host)) {
            state_errf(err, errlen, "backend %s: invalid IPv4 address", q);
            return STATE_EINVAL;
        }
        memcpy(host, hp, host_len);
        host[host_len] = '\0';
        if (inet_pton(AF_INET, host, out->addr) != 1) {
            state_errf(err, errlen, "backend %s: invalid IPv4 address", q);
            return STATE_EINVAL;
        }
        out->family = 4;
        port = colon;
    }
    if (port == hp + n || *port != ':') {
        state_errf(err, errlen, "backend %s: missing port (IP:PORT)", q);
        return STATE_EINVAL;
    }
    port++;
    if (parse_port(port, (size_t)(hp + n - port), &out->port) != 0) {
        state_errf(err, errlen, "backend %s: port must be a number from 1 to 65535", q);
        return STATE_EINVAL;
    }
    return 0;
}

int state_backend_parse(const char *text, bool passthrough, struct state_backend *out, char *err,
                        size_t errlen)
{
    size_t len = strnlen(text, BACKEND_TEXT_MAX + 1);
    const char *sep, *hp, *slash;
    struct state_backend be;
    char q[BACKEND_TEXT_MAX + 16];
    size_t n;
    int rc;

    state_quote(text, len, q, sizeof(q));
    if (len == 0) {
        state_errf(err, errlen, "backend is empty");
        return STATE_EINVAL;
    }
    if (len > BACKEND_TEXT_MAX) {
        state_errf(err, errlen, "backend %s is too long", q);
        return STATE_EINVAL;
    }
    memset(&be, 0, sizeof(be));
    sep = strstr(text, "://");
    if (passthrough && sep != NULL) {
        state_errf(err, errlen,
                   "backend %s: a passthrough backend is IP:PORT, without a scheme (TLS goes "
                   "through untouched)",
                   q);
        return STATE_EINVAL;
    }
    if (!passthrough) {
        if (sep == NULL) {
            state_errf(err, errlen,
                       "backend %s: expected http://IP:PORT (IP:PORT alone is for "
                       "--tls-passthrough)",
                       q);
            return STATE_EINVAL;
        }
        if ((size_t)(sep - text) == 5 && strncasecmp(text, "https", 5) == 0) {
            state_errf(err, errlen,
                       "backend %s: https backends are not supported; the gateway terminates TLS "
                       "and speaks http:// to backends (or use --tls-passthrough with IP:PORT)",
                       q);
            return STATE_EINVAL;
        }
        if ((size_t)(sep - text) != 4 || strncasecmp(text, "http", 4) != 0) {
            state_errf(err, errlen, "backend %s: unsupported scheme, expected http://IP:PORT", q);
            return STATE_EINVAL;
        }
    }
    hp = passthrough ? text : sep + 3;
    n = (size_t)(text + len - hp);
    /* "http://10.0.0.1:8080/" is how people paste URLs: one bare slash is harmless, a path
     * would be silently ignored, so it is refused */
    slash = memchr(hp, '/', n);
    if (slash != NULL) {
        if (passthrough || slash != text + len - 1) {
            state_errf(err, errlen, "backend %s: paths are not supported, expected %s", q,
                       passthrough ? "IP:PORT" : "http://IP:PORT");
            return STATE_EINVAL;
        }
        n--;
    }
    if (memchr(hp, '@', n) != NULL || memchr(hp, '?', n) != NULL || memchr(hp, '#', n) != NULL) {
        state_errf(err, errlen, "backend %s: expected %s", q,
                   passthrough ? "IP:PORT" : "http://IP:PORT");
        return STATE_EINVAL;
    }
    rc = parse_host_port(hp, n, q, &be, err, errlen);
    if (rc != 0)
        return rc;
    *out = be;
    return 0;
}

/* ---- address rules ------------------------------------------------------------------------ */

/* An address reduced to one form: IPv4-mapped IPv6 becomes IPv4, so "::ffff:127.0.0.1" meets
 * the same rules (and matches the same own address) as "127.0.0.1". */
struct plain_addr {
    uint8_t family;
    uint8_t addr[16];
    bool mapped; /* came in as ::ffff:a.b.c.d */
};

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static struct plain_addr plain(const struct state_backend *be)
{
    struct plain_addr p;

    memset(&p, 0, sizeof(p));
    p.family = be->family;
    if (be->family == 4) {
        memcpy(p.addr, be->addr, 4);
    } else if (be->family == 6 && memcmp(be->addr, v4_mapped_prefix, 12) == 0) {
        p.family = 4;
        p.mapped = true;
        memcpy(p.addr, be->addr + 12, 4);
    } else {
        memcpy(p.addr, be->addr, 16);
    }
    return p;
}

static bool is_unspecified(const struct plain_addr *a)
{
    static const uint8_t zero[16] = {0};

    if (a->family == 4)
        return a->addr[0] == 0; /* 0.0.0.0/8: "this network", reaches the host itself */
    return memcmp(a->addr, zero, 16) == 0;
}

static bool is_loopback(const struct plain_addr *a)
{
    static const uint8_t one[16] = {[15] = 1};

    if (a->family == 4)
        return a->addr[0] == 127;
    return memcmp(a->addr, one, 16) == 0;
}

/* Classes refused whatever the policy; NULL when the address is none of them. */
static const char *forbidden_class(const struct plain_addr *a)
{
    if (is_unspecified(a))
        return "unspecified address";
    if (a->family == 4) {
        if (a->addr[0] >= 224 && a->addr[0] <= 239)
            return "multicast address";
        if (a->addr[0] == 255 && a->addr[1] == 255 && a->addr[2] == 255 && a->addr[3] == 255)
            return "broadcast address";
        if (a->addr[0] == 169 && a->addr[1] == 254)
            return "link-local address";
    } else {
        if (a->addr[0] == 0xff)
            return "multicast address";
        if (a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80)
            return "link-local address";
    }
    return NULL;
}

static bool is_own(const struct state_backend *be, const struct plain_addr *a,
                   const struct state_validate_policy *pol)
{
    for (size_t i = 0; i < pol->own_addr_count; i++) {
        const struct state_backend *own = &pol->own_addrs[i];
        struct plain_addr o = plain(own);

        if (own->port != 0 && own->port != be->port)
            continue;
        if (o.family == a->family && memcmp(o.addr, a->addr, 16) == 0)
            return true;
        /* a wildcard listener answers on every loopback address, of either family when it
         * is an IPv6 socket accepting IPv4 too */
        if (is_unspecified(&o) && (is_loopback(a) || is_unspecified(a)))
            return true;
    }
    return false;
}

/* "a loopback address", "an IPv4-mapped loopback address", ... for the error message */
static void describe(const struct plain_addr *a, const char *cls, char *out, size_t outlen)
{
    const char *article = "a ";

    if (a->mapped)
        article = "an IPv4-mapped ";
    else if (cls[0] == 'u')
        article = "an ";
    else if (strcmp(cls, "broadcast address") == 0)
        article = "the ";
    snprintf(out, outlen, "%s%s", article, cls);
}

int state_backend_check(const struct state_backend *be, const struct state_validate_policy *pol,
                        char *err, size_t errlen)
{
    static const struct state_validate_policy defaults;
    struct plain_addr a;
    const char *cls;
    char text[64], what[64];

    if (pol == NULL)
        pol = &defaults;
    if (be->family != 4 && be->family != 6) {
        state_errf(err, errlen, "backend has unknown address family %u", be->family);
        return STATE_EINVAL;
    }
    if (be->port == 0) {
        state_backend_format(be, true, text);
        state_errf(err, errlen, "backend %s has port 0: ports are 1 to 65535", text);
        return STATE_EINVAL;
    }
    a = plain(be);
    cls = forbidden_class(&a);
    if (cls != NULL) {
        state_backend_format(be, true, text);
        describe(&a, cls, what, sizeof(what));
        state_errf(err, errlen, "backend %s is %s", text, what);
        return STATE_EINVAL;
    }
    if (is_own(be, &a, pol)) {
        state_backend_format(be, true, text);
        state_errf(err, errlen, "backend %s is this gateway's own address (requests would loop)",
                   text);
        return STATE_EINVAL;
    }
    if (is_loopback(&a) && !pol->allow_loopback) {
        state_backend_format(be, true, text);
        describe(&a, "loopback address", what, sizeof(what));
        state_errf(err, errlen, "backend %s is %s (allowed only with --allow-loopback-backends)",
                   text, what);
        return STATE_EINVAL;
    }
    return 0;
}
