/*
 * addr.c - "ADDR:PORT" parsing and printing for the daemon's listen and seed addresses.
 *
 * Listen addresses are IP literals (IPv6 in brackets, "[::1]:8080") so that a config never
 * depends on DNS at start; seeds may be host names, which gossip resolves when it joins.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node.h"

/* Splits "HOST:PORT" / "[V6]:PORT" into host and port. Returns 0 or -1 with err set. */
static int addr_split(const char *text, char *host, size_t hostcap, unsigned *port, bool *bracketed,
                      char *err, size_t errlen)
{
    const char *colon, *host_start = text, *host_end;
    char *end;
    unsigned long p;

    *bracketed = false;
    if (text[0] == '[') {
        host_start = text + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            goto bad;
        colon = host_end + 1;
        *bracketed = true;
    } else {
        colon = strrchr(text, ':');
        if (!colon || memchr(text, ':', (size_t)(colon - text)))
            goto bad; /* no port, or an unbracketed IPv6 literal */
        host_end = colon;
    }
    if (host_end == host_start || (size_t)(host_end - host_start) >= hostcap)
        goto bad;
    memcpy(host, host_start, (size_t)(host_end - host_start));
    host[host_end - host_start] = '\0';
    if (colon[1] < '0' || colon[1] > '9')
        goto bad;
    p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || p == 0 || p > 65535) {
        snprintf(err, errlen, "port must be 1..65535 in \"%s\"", text);
        return -1;
    }
    *port = (unsigned)p;
    return 0;
bad:
    snprintf(err, errlen, "expected ADDR:PORT (IPv6 as [ADDR]:PORT), got \"%s\"", text);
    return -1;
}

int node_addr_parse(const char *text, struct node_addr *out, char *err, size_t errlen)
{
    char host[256];
    unsigned port;
    bool bracketed;

    memset(out, 0, sizeof(*out));
    if (addr_split(text, host, sizeof(host), &port, &bracketed, err, errlen) != 0)
        return -1;
    if (bracketed) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->ss;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            goto not_ip;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)&out->ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            goto not_ip;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
    }
    node_addr_format((struct sockaddr *)&out->ss, out->text);
    return 0;
not_ip:
    snprintf(err, errlen, "\"%s\" is not an IP address (listen addresses must be literal)", host);
    return -1;
}

int node_listen_parse(const char *text, struct node_addr *out, char *err, size_t errlen)
{
    static const char suffix[] = "/v6only";
    char addr[NODE_ADDR_TEXT_MAX];
    size_t len = strlen(text), slen = sizeof(suffix) - 1;
    bool v6only = len > slen && strcmp(text + len - slen, suffix) == 0;

    if (len >= sizeof(addr)) {
        snprintf(err, errlen, "address longer than %zu bytes", sizeof(addr) - 1);
        return -1;
    }
    snprintf(addr, sizeof(addr), "%.*s", (int)(v6only ? len - slen : len), text);
    if (node_addr_parse(addr, out, err, errlen) != 0)
        return -1;
    if (v6only && out->ss.ss_family != AF_INET6) {
        snprintf(err, errlen, "/v6only needs an IPv6 address, got \"%s\"", text);
        return -1;
    }
    out->v6only = v6only;
    if (v6only)
        snprintf(out->text + strlen(out->text), sizeof(out->text) - strlen(out->text), "%s",
                 suffix);
    return 0;
}

/* The port of a parsed address, and whether its IP is the wildcard of its family. */
static uint16_t addr_port(const struct node_addr *a, bool *wildcard)
{
    static const uint8_t zero[16];

    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        *wildcard = memcmp(&s6->sin6_addr, zero, 16) == 0;
        return ntohs(s6->sin6_port);
    }
    *wildcard = ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == 0;
    return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
}

bool node_listen_overlap(const struct node_addr *a, const struct node_addr *b)
{
    bool wa, wb;
    uint16_t pa = addr_port(a, &wa), pb = addr_port(b, &wb);

    if (pa != pb)
        return false;
    if (a->ss.ss_family == b->ss.ss_family) {
        if (wa || wb)
            return true;
        if (a->ss.ss_family == AF_INET)
            return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr ==
                   ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
        return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr,
                      &((const struct sockaddr_in6 *)&b->ss)->sin6_addr, 16) == 0;
    }
    /* one IPv4, one IPv6: only a dual-stack [::] reaches IPv4 clients */
    return (a->ss.ss_family == AF_INET6 && wa && !a->v6only) ||
           (b->ss.ss_family == AF_INET6 && wb && !b->v6only);
}

int node_hostport_check(const char *text, char *err, size_t errlen)
{
    char host[256];
    unsigned port;
    bool bracketed;

    if (strlen(text) >= NODE_ADDR_TEXT_MAX) {
        snprintf(err, errlen, "address longer than %d bytes", NODE_ADDR_TEXT_MAX - 1);
        return -1;
    }
    if (addr_split(text, host, sizeof(host), &port, &bracketed, err, errlen) != 0)
        return -1;
    if (bracketed) {
        struct in6_addr a6;
        if (inet_pton(AF_INET6, host, &a6) != 1) {
            snprintf(err, errlen, "\"%s\" is not an IPv6 address", host);
            return -1;
        }
        return 0;
    }
    for (const char *p = host; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.')) {
            snprintf(err, errlen, "\"%s\" is neither a host name nor an IP address", host);
            return -1;
        }
    }
    return 0;
}

void node_addr_format(const struct sockaddr *sa, char out[64])
{
    char ip[INET6_ADDRSTRLEN];

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
        snprintf(out, 64, "[%s]:%u", ip, ntohs(sin6->sin6_port));
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
        snprintf(out, 64, "%s:%u", ip, ntohs(sin->sin_port));
    } else {
        snprintf(out, 64, "(unknown family %d)", sa->sa_family);
    }
}
