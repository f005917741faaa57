/*
 * backend_addr.c - backend addresses: the text forms users type ("http://IP:PORT" for TLS
 * termination, "IP:PORT" for passthrough, IPv6 in brackets) and the address rules that keep
 * a gateway from being turned against itself or its neighbours.
 *
 * Only IP literals are accepted: a host name would make every gateway resolve it on its own,
 * at its own time, and the fleet would disagree about where a name goes. Refused addresses:
 * unspecified, multicast, broadcast, reserved (240.0.0.0/4) and link-local, the cloud metadata
 * services (169.254.169.254 on most providers, fd00:ec2::254 on AWS over IPv6, 100.100.100.200
 * on Alibaba, 168.63.129.16 on Azure), loopback unless the node allows it, the node's own
 * listen addresses and every fleet member's advertised addresses (a record pointing a name at
 * a gateway would make the fleet proxy to itself), and the operator's deny list. Every IPv6
 * form that carries an IPv4 address to an IPv4 host is read as that IPv4 address first:
 * IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d, which a
 * NAT64 gateway on the path translates) and 6to4 (2002:AABB:CCDD::/48, relayed to
 * AA.BB.CC.DD), so none of them reaches what the plain form may not. Private ranges stay
 * allowed: reaching them is what a gateway is for.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
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

/* An address reduced to one form: an IPv6 form carrying an IPv4 address becomes that IPv4
 * address, so "::ffff:127.0.0.1" or "64:ff9b::7f00:1" meets the same rules (and matches the
 * same own address) as "127.0.0.1". */
struct plain_addr {
    uint8_t family;
    uint8_t addr[16];
    const char *form; /* how the IPv4 address came in: NULL (plain), "IPv4-mapped", ... */
};

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const uint8_t v4_compat_prefix[12] = {0};
static const uint8_t nat64_prefix[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};

static struct plain_addr plain_of(uint8_t family, const uint8_t *addr)
{
    struct plain_addr p;
    const uint8_t *v4 = NULL;

    memset(&p, 0, sizeof(p));
    p.family = family;
    if (family == 4) {
        memcpy(p.addr, addr, 4);
        return p;
    }
    if (memcmp(addr, v4_mapped_prefix, 12) == 0) {
        v4 = addr + 12;
        p.form = "IPv4-mapped";
    } else if (memcmp(addr, nat64_prefix, 12) == 0) {
        v4 = addr + 12;
        p.form = "NAT64";
    } else if (addr[0] == 0x20 && addr[1] == 0x02) {
        v4 = addr + 2;
        p.form = "6to4";
    } else if (memcmp(addr, v4_compat_prefix, 12) == 0 && (addr[12] | addr[13] | addr[14]) != 0) {
        /* :: and ::1 stay IPv6 (unspecified, loopback); ::a.b.c.d is IPv4-compatible */
        v4 = addr + 12;
        p.form = "IPv4-compatible";
    }
    if (v4 == NULL) {
        memcpy(p.addr, addr, 16);
        return p;
    }
    p.family = 4;
    memcpy(p.addr, v4, 4);
    return p;
}

static struct plain_addr plain(const struct state_backend *be)
{
    return plain_of(be->family, be->addr);
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
        if (a->addr[0] >= 240)
            return "reserved address"; /* 240.0.0.0/4: never assigned, some stacks route it */
        if (a->addr[0] == 169 && a->addr[1] == 254)
            return a->addr[2] == 169 && a->addr[3] == 254 ? "cloud metadata address"
                                                          : "link-local address";
        if ((a->addr[0] == 100 && a->addr[1] == 100 && a->addr[2] == 100 && a->addr[3] == 200) ||
            (a->addr[0] == 168 && a->addr[1] == 63 && a->addr[2] == 129 && a->addr[3] == 16))
            return "cloud metadata address";
    } else {
        static const uint8_t aws_v6[16] = {0xfd, 0x00, 0x0e, 0xc2, [14] = 0x02, [15] = 0x54};
        if (a->addr[0] == 0xff)
            return "multicast address";
        if (a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80)
            return "link-local address";
        if (memcmp(a->addr, aws_v6, 16) == 0)
            return "cloud metadata address";
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

static int backend_cmp(const void *pa, const void *pb)
{
    const struct state_backend *a = pa, *b = pb;
    int c = (int)a->family - (int)b->family;

    if (c == 0)
        c = memcmp(a->addr, b->addr, 16);
    if (c == 0)
        c = (int)a->port - (int)b->port;
    return c;
}

size_t state_backends_sort(struct state_backend *v, size_t n)
{
    size_t k = 0;

    if (n == 0)
        return 0;
    qsort(v, n, sizeof(*v), backend_cmp);
    for (size_t i = 1; i < n; i++)
        if (backend_cmp(&v[k], &v[i]) != 0)
            v[++k] = v[i];
    return k + 1;
}

/* A fleet member's address, in the plain or the embedded form. */
static bool is_fleet(const struct state_backend *be, const struct plain_addr *a,
                     const struct state_validate_policy *pol)
{
    struct state_backend key;

    if (pol->fleet_addr_count == 0)
        return false;
    memset(&key, 0, sizeof(key));
    key.family = a->family;
    memcpy(key.addr, a->addr, a->family == 4 ? 4 : 16);
    key.port = be->port;
    if (bsearch(&key, pol->fleet_addrs, pol->fleet_addr_count, sizeof(key), backend_cmp))
        return true;
    if (a->family == 6)
        return false;
    /* members may advertise an IPv4 address in its IPv4-mapped form */
    memset(key.addr, 0, sizeof(key.addr));
    memcpy(key.addr, v4_mapped_prefix, 12);
    memcpy(key.addr + 12, a->addr, 4);
    key.family = 6;
    return bsearch(&key, pol->fleet_addrs, pol->fleet_addr_count, sizeof(key), backend_cmp) != NULL;
}

/* The operator's deny list matches the address as written and as the IPv4 address it
 * carries, so denying 10.0.0.0/8 also denies ::ffff:10.0.0.1 and 64:ff9b::a00:1. */
static const struct state_cidr *denied_by(const struct state_backend *be,
                                          const struct plain_addr *a,
                                          const struct state_validate_policy *pol)
{
    for (size_t i = 0; i < pol->deny_count; i++)
        if (state_cidr_contains(&pol->deny[i], be->family, be->addr) ||
            state_cidr_contains(&pol->deny[i], a->family, a->addr))
            return &pol->deny[i];
    return NULL;
}

/* "a loopback address", "an IPv4-mapped loopback address", ... for the error message */
static void describe(const struct plain_addr *a, const char *cls, char *out, size_t outlen)
{
    const char *article = cls[0] == 'u' ? "an " : "a ";

    if (a->form != NULL)
        snprintf(out, outlen, "a%s %s %s", a->form[0] == 'I' ? "n" : "", a->form, cls);
    else
        snprintf(out, outlen, "%s%s", strcmp(cls, "broadcast address") == 0 ? "the " : article,
                 cls);
}

int state_cidr_parse(const char *text, struct state_cidr *out, char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t hl = slash ? (size_t)(slash - text) : strlen(text);
    unsigned long prefix = 0;

    memset(out, 0, sizeof(*out));
    if (hl == 0 || hl >= sizeof(host)) {
        state_errf(err, errlen, "network \"%.80s\": expected IP or IP/PREFIX", text);
        return STATE_EINVAL;
    }
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, out->addr) == 1) {
        out->family = 4;
        out->prefix = 32;
    } else if (inet_pton(AF_INET6, host, out->addr) == 1) {
        out->family = 6;
        out->prefix = 128;
    } else {
        state_errf(err, errlen, "network \"%.80s\": \"%s\" is not an IP literal", text, host);
        return STATE_EINVAL;
    }
    if (slash == NULL)
        return 0;
    if (slash[1] == '\0' || strlen(slash + 1) > 3)
        goto bad_prefix;
    for (const char *c = slash + 1; *c; c++) {
        if (*c < '0' || *c > '9')
            goto bad_prefix;
        prefix = prefix * 10 + (unsigned long)(*c - '0');
    }
    if (prefix > out->prefix)
        goto bad_prefix;
    out->prefix = (uint8_t)prefix;
    return 0;
bad_prefix:
    state_errf(err, errlen, "network \"%.80s\": bad prefix length", text);
    return STATE_EINVAL;
}

bool state_cidr_contains(const struct state_cidr *net, uint8_t family, const uint8_t *addr)
{
    unsigned whole = net->prefix / 8, rest = net->prefix % 8;

    if (net->family != family)
        return false;
    if (memcmp(net->addr, addr, whole) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((net->addr[whole] ^ addr[whole]) & (uint8_t)(0xff << (8 - rest))) == 0;
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
    if (is_fleet(be, &a, pol)) {
        state_backend_format(be, true, text);
        state_errf(err, errlen,
                   "backend %s is a fleet member's advertised address (requests would loop)", text);
        return STATE_EINVAL;
    }
    if (denied_by(be, &a, pol) != NULL) {
        const struct state_cidr *d = denied_by(be, &a, pol);
        char net[INET6_ADDRSTRLEN];
        inet_ntop(d->family == 4 ? AF_INET : AF_INET6, d->addr, net, sizeof(net));
        state_backend_format(be, true, text);
        state_errf(err, errlen, "backend %s is in denied network %s/%u (--deny-backend)", text, net,
                   (unsigned)d->prefix);
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
