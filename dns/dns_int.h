/*
 * dns_int.h - what the files of dns/ share (private): the zone's layout and wire constants.
 */
#ifndef WEBGW_DNS_INT_H
#define WEBGW_DNS_INT_H

#include "dns/dns.h"

#define DNS_HEADER_LEN 12

/* rcodes and types we use by number */
enum {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
    DNS_RCODE_BADVERS = 16,
};

/* The fleet's addresses by family, sorted, ready to rotate; and the name servers. */
struct dns_zone {
    char domain[DNS_NAME_MAX + 1]; /* lowercase, no trailing dot */
    size_t domain_len;             /* strlen(domain) */
    uint32_t ttl;                  /* of positive answers, NS, glue and SOA minimum */
    struct dns_source src;         /* names and TXT records */
    struct dns_gateway *gws;       /* the fleet, sorted by label then addresses */
    size_t gw_count;               /* entries in gws */
    struct dns_ip *v4, *v6;        /* every gateway's addresses by family, sorted */
    size_t v4_count, v6_count;     /* entries in v4, v6 */
    uint64_t rotation;             /* moves by one per answer */
};

/* The gateway whose name server is ns-LABEL (label: the part after "ns-"), or NULL. */
const struct dns_gateway *dns_zone_gateway(const struct dns_zone *zone, const char *label);

#endif /* WEBGW_DNS_INT_H */
