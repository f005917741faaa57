/*
 * dns_zone.c - the zone: the domain, its TTL and the fleet that answers for it.
 *
 * The node replaces the fleet whenever a member changes state or metadata. The zone keeps it
 * sorted (gateways by label, addresses by bytes) so that two gateways holding the same
 * members build byte-identical answer sets; only the rotation offset differs from answer to
 * answer. Addresses shared by several gateways (one load balancer in front of two) are
 * listed once.
 */
#include <stdlib.h>
#include <string.h>

#include "dns/dns_int.h"

static bool dns_label_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > DNS_LABEL_MAX - 3 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

/* Lowercases and checks a domain: labels of [a-z0-9-_] between dots, no empty label. */
static int dns_domain_set(struct dns_zone *z, const char *domain, char *err, size_t errlen)
{
    size_t n = strlen(domain), label = 0;

    while (n > 0 && domain[n - 1] == '.')
        n--;
    if (n == 0 || n > DNS_NAME_MAX) {
        snprintf(err, errlen, "domain must be 1..%d characters", DNS_NAME_MAX);
        return DNS_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = domain[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c == '.') {
            if (label == 0)
                goto bad;
            label = 0;
        } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
            if (++label > DNS_LABEL_MAX)
                goto bad;
        } else {
            goto bad;
        }
        z->domain[i] = c;
    }
    z->domain[n] = '\0';
    z->domain_len = n;
    return 0;
bad:
    snprintf(err, errlen, "domain \"%.80s\" is not a valid DNS name", domain);
    return DNS_EINVAL;
}

struct dns_zone *dns_zone_new(const char *domain, uint32_t ttl, const struct dns_source *src,
                              char *err, size_t errlen)
{
    struct dns_zone *z;

    if (src == NULL || src->name_status == NULL) {
        snprintf(err, errlen, "a name source is required");
        return NULL;
    }
    z = calloc(1, sizeof(*z));
    if (z == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (dns_domain_set(z, domain, err, errlen) != 0) {
        free(z);
        return NULL;
    }
    z->ttl = ttl;
    z->src = *src;
    return z;
}

void dns_zone_free(struct dns_zone *zone)
{
    if (zone == NULL)
        return;
    free(zone->gws);
    free(zone->v4);
    free(zone->v6);
    free(zone);
}

void dns_zone_set_ttl(struct dns_zone *zone, uint32_t ttl)
{
    zone->ttl = ttl;
}

static int dns_ip_cmp(const void *a, const void *b)
{
    const struct dns_ip *x = a, *y = b;

    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    return memcmp(x->ip, y->ip, sizeof(x->ip));
}

static int dns_gateway_cmp(const void *a, const void *b)
{
    const struct dns_gateway *x = a, *y = b;
    int c = strcmp(x->label, y->label);

    if (c != 0)
        return c;
    if (x->count != y->count)
        return x->count < y->count ? -1 : 1;
    for (size_t i = 0; i < x->count; i++)
        if ((c = dns_ip_cmp(&x->addrs[i], &y->addrs[i])) != 0)
            return c;
    return 0;
}

/* Sorts and removes duplicates; returns the new count. */
static size_t dns_ips_unique(struct dns_ip *ips, size_t n)
{
    size_t out = 0;

    qsort(ips, n, sizeof(*ips), dns_ip_cmp);
    for (size_t i = 0; i < n; i++)
        if (out == 0 || dns_ip_cmp(&ips[out - 1], &ips[i]) != 0)
            ips[out++] = ips[i];
    return out;
}

int dns_zone_set_fleet(struct dns_zone *zone, const struct dns_gateway *gws, size_t count)
{
    struct dns_gateway *g = NULL;
    struct dns_ip *v4 = NULL, *v6 = NULL;
    size_t n = 0, n4 = 0, n6 = 0;

    if (count > 0) {
        size_t cap = count < DNS_GATEWAYS_MAX ? count : DNS_GATEWAYS_MAX;
        g = calloc(cap, sizeof(*g));
        v4 = calloc(cap * DNS_GATEWAY_ADDRS_MAX, sizeof(*v4));
        v6 = calloc(cap * DNS_GATEWAY_ADDRS_MAX, sizeof(*v6));
        if (g == NULL || v4 == NULL || v6 == NULL) {
            free(g);
            free(v4);
            free(v6);
            return DNS_ENOMEM;
        }
        for (size_t i = 0; i < count && n < cap; i++) {
            struct dns_gateway *d = &g[n];
            if (!dns_label_valid(gws[i].label))
                continue;
            memcpy(d->label, gws[i].label, sizeof(d->label));
            for (size_t j = 0; j < gws[i].count && j < DNS_GATEWAY_ADDRS_MAX; j++) {
                const struct dns_ip *a = &gws[i].addrs[j];
                struct dns_ip ip = {.family = a->family};
                if (a->family == 4)
                    memcpy(ip.ip, a->ip, 4);
                else if (a->family == 6)
                    memcpy(ip.ip, a->ip, 16);
                else
                    continue;
                d->addrs[d->count++] = ip;
            }
            d->count = dns_ips_unique(d->addrs, d->count);
            for (size_t j = 0; j < d->count; j++) {
                if (d->addrs[j].family == 4)
                    v4[n4++] = d->addrs[j];
                else
                    v6[n6++] = d->addrs[j];
            }
            n++;
        }
        qsort(g, n, sizeof(*g), dns_gateway_cmp);
        n4 = dns_ips_unique(v4, n4);
        n6 = dns_ips_unique(v6, n6);
    }
    free(zone->gws);
    free(zone->v4);
    free(zone->v6);
    zone->gws = g;
    zone->gw_count = n;
    zone->v4 = v4;
    zone->v4_count = n4;
    zone->v6 = v6;
    zone->v6_count = n6;
    return 0;
}

const struct dns_gateway *dns_zone_gateway(const struct dns_zone *zone, const char *label)
{
    /* several gateways may share a label (two nodes with one name): the first one's glue */
    for (size_t i = 0; i < zone->gw_count; i++)
        if (strcmp(zone->gws[i].label, label) == 0)
            return &zone->gws[i];
    return NULL;
}
