/*
 * fqdn_verdict.c - does an fqdn's DNS point at the fleet? Two pure functions: one reads the
 * answer section of a DNS response into names and addresses, the other follows the CNAME
 * chain from the fqdn and compares what it ends at with the fleet.
 *
 * Why "every address" and not "one of them": a name whose A records mix the fleet and
 * another host sends part of its visitors (and a CA's validation requests) elsewhere; serving
 * it would let an fqdn's owner get certificates for a name the fleet does not answer for.
 * A CNAME into --domain is trusted without addresses because the fleet answers for every
 * name under its domain by construction.
 */
#include <ares.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "node/node_dns.h"

#define DNS_HEADER_LEN 12
#define DNS_TYPE_A 1
#define DNS_TYPE_CNAME 5
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1
#define DNS_RCODE_NXDOMAIN 3

static uint16_t dns_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Expands the name at p into out[254], lowercased; *next is where the name's bytes end. */
static int dns_name(const uint8_t *buf, size_t len, const uint8_t *p, char out[254],
                    const uint8_t **next)
{
    char *name = NULL;
    long enclen = 0;
    size_t n;

    if (p >= buf + len || ares_expand_name(p, buf, (int)len, &name, &enclen) != ARES_SUCCESS ||
        enclen <= 0)
        return -1;
    n = strlen(name);
    if (n > 253) {
        ares_free_string(name);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    ares_free_string(name);
    *next = p + enclen;
    return 0;
}

int node_dns_parse(const uint8_t *buf, size_t len, struct node_dns_answer *out, char *err,
                   size_t errlen)
{
    const uint8_t *p = buf + DNS_HEADER_LEN, *end = buf + len;
    char owner[254], skip[254];
    unsigned qd, an;

    if (len < DNS_HEADER_LEN || len > 65535) {
        snprintf(err, errlen, "DNS message of %zu bytes", len);
        return -1;
    }
    if ((buf[3] & 0x0f) == DNS_RCODE_NXDOMAIN)
        out->nxdomain = true;
    qd = dns_u16(buf + 4);
    an = dns_u16(buf + 6);
    for (unsigned i = 0; i < qd; i++) {
        if (dns_name(buf, len, p, skip, &p) != 0 || end - p < 4)
            goto bad;
        p += 4;
    }
    for (unsigned i = 0; i < an; i++) {
        uint16_t type, class, rdlen;

        if (dns_name(buf, len, p, owner, &p) != 0 || end - p < 10)
            goto bad;
        type = dns_u16(p);
        class = dns_u16(p + 2);
        rdlen = dns_u16(p + 8);
        p += 10;
        if (end - p < rdlen)
            goto bad;
        if (class != DNS_CLASS_IN) {
            p += rdlen;
            continue;
        }
        if (type == DNS_TYPE_CNAME) {
            const uint8_t *after;
            if (out->cname_count == NODE_DNS_CNAMES_MAX) {
                out->overflow = true;
            } else {
                if (dns_name(buf, len, p, out->cnames[out->cname_count].target, &after) != 0 ||
                    after > p + rdlen)
                    goto bad;
                memcpy(out->cnames[out->cname_count].owner, owner, sizeof(owner));
                out->cname_count++;
            }
        } else if ((type == DNS_TYPE_A && rdlen == 4) || (type == DNS_TYPE_AAAA && rdlen == 16)) {
            if (out->addr_count == NODE_DNS_ADDRS_MAX) {
                out->overflow = true;
            } else {
                struct node_ip *ip = &out->addrs[out->addr_count].ip;
                memset(ip, 0, sizeof(*ip));
                ip->family = type == DNS_TYPE_A ? 4 : 6;
                memcpy(ip->ip, p, rdlen);
                memcpy(out->addrs[out->addr_count].owner, owner, sizeof(owner));
                out->addr_count++;
            }
        } else if (type == DNS_TYPE_A || type == DNS_TYPE_AAAA) {
            snprintf(err, errlen, "address record of %u bytes", (unsigned)rdlen);
            return -1;
        }
        p += rdlen;
    }
    return 0;
bad:
    snprintf(err, errlen, "malformed DNS message (%zu bytes)", len);
    return -1;
}

void node_ip_format(const struct node_ip *ip, char out[64])
{
    if (!inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->ip, out, 64))
        snprintf(out, 64, "?");
}

/* name is domain itself or ends with ".domain". */
static bool dns_under(const char *name, const char *domain)
{
    size_t n = strlen(name), d = strlen(domain);

    if (d == 0 || n < d || strcasecmp(name + n - d, domain) != 0)
        return false;
    return n == d || name[n - d - 1] == '.';
}

static bool dns_in_fleet(const struct node_ip *ip, const struct node_ip *fleet, size_t count)
{
    size_t bytes = ip->family == 4 ? 4 : 16;

    for (size_t i = 0; i < count; i++)
        if (fleet[i].family == ip->family && memcmp(fleet[i].ip, ip->ip, bytes) == 0)
            return true;
    return false;
}

enum node_fqdn_verdict node_fqdn_decide(const char *fqdn, const struct node_dns_answer *ans,
                                        const char *domain, const struct node_ip *fleet,
                                        size_t fleet_count, char *why, size_t whylen)
{
    const char *name = fqdn;
    size_t found = 0;
    char text[64];

    if (ans->overflow) {
        snprintf(why, whylen, "more than %d records: not checked", NODE_DNS_ADDRS_MAX);
        return NODE_FQDN_ELSEWHERE;
    }
    for (int hop = 0;; hop++) {
        const char *next = NULL;
        for (size_t i = 0; i < ans->cname_count && !next; i++)
            if (strcasecmp(ans->cnames[i].owner, name) == 0)
                next = ans->cnames[i].target;
        if (!next)
            break;
        if (hop == NODE_DNS_HOPS_MAX) {
            snprintf(why, whylen, "CNAME chain longer than %d", NODE_DNS_HOPS_MAX);
            return NODE_FQDN_ELSEWHERE;
        }
        name = next;
        if (dns_under(name, domain)) {
            snprintf(why, whylen, "CNAME %s, inside %s", name, domain);
            return NODE_FQDN_POINTS;
        }
    }
    for (size_t i = 0; i < ans->addr_count; i++) {
        if (strcasecmp(ans->addrs[i].owner, name) != 0)
            continue;
        found++;
        if (!dns_in_fleet(&ans->addrs[i].ip, fleet, fleet_count)) {
            node_ip_format(&ans->addrs[i].ip, text);
            snprintf(why, whylen, "%s is %s, not a fleet address", name, text);
            return NODE_FQDN_ELSEWHERE;
        }
    }
    if (found == 0) {
        snprintf(why, whylen, "%s: %s", name,
                 ans->nxdomain ? "no such domain" : "no A or AAAA record");
        return NODE_FQDN_ELSEWHERE;
    }
    snprintf(why, whylen, "%s: %zu address%s, all in the fleet", name, found,
             found == 1 ? "" : "es");
    return NODE_FQDN_POINTS;
}
