/*
 * dns_answer.c - a decoded query into the response bytes. ldns builds and writes the packet
 * (name compression included); this file decides what goes into it.
 *
 * The zone, relative to DOMAIN:
 *   DOMAIN                  SOA and NS (every gateway, ns-LABEL.DOMAIN, glue in additional)
 *   ns-LABEL.DOMAIN         A/AAAA of that gateway
 *   NAME.DOMAIN             A/AAAA of every alive, non-draining gateway when NAME is served;
 *                           NODATA when it exists without a healthy backend; else NXDOMAIN
 *   FQDN.DOMAIN             the same for an fqdn proxy (www.example.org.DOMAIN): the target
 *                           an fqdn's owner CNAMEs to
 *   _acme-challenge.DOMAIN  TXT: the DNS-01 challenges the fleet holds
 *
 * Choices, each for a reason:
 *   - Names outside DOMAIN are REFUSED, recursion desired or not: an authoritative server that
 *     answered them would be an open resolver.
 *   - ANY gets one synthesized HINFO "RFC8482" (RFC 8482): the full set is an amplifier.
 *   - AXFR/IXFR are REFUSED: the zone is computed from gossip, there is nothing to transfer,
 *     and a transfer is the largest answer there is.
 *   - A response that does not fit the transport's limit goes out with TC and no records, so
 *     the client retries over TCP instead of acting on a partial address list.
 *   - Negative answers carry the SOA (RFC 2308) with the zone TTL as the negative TTL, so a
 *     name that appears is visible within one TTL everywhere.
 *   - SOA serial is constant (1): there are no transfers, and a serial computed per gateway
 *     would break "every gateway gives the same answer".
 */
#include <ldns/ldns.h>
#include <stdio.h>
#include <string.h>

#include "dns/dns_int.h"

#define DNS_TYPE_ANY 255
#define DNS_TYPE_AXFR 252
#define DNS_TYPE_IXFR 251
#define DNS_CLASS_IN 1
#define DNS_SOA_REFRESH 3600
#define DNS_SOA_RETRY 600
#define DNS_SOA_EXPIRE 86400

/* What the query's name is in the zone. */
enum dns_node_kind {
    DNS_NODE_OUTSIDE, /* not under DOMAIN */
    DNS_NODE_NONE,    /* under DOMAIN, does not exist */
    DNS_NODE_APEX,    /* DOMAIN itself */
    DNS_NODE_NS,      /* ns-LABEL of a gateway */
    DNS_NODE_EMPTY,   /* a name without a healthy backend, or a TXT-only name */
    DNS_NODE_SERVED,  /* a served name */
};

struct dns_build {
    struct dns_zone *zone;
    const struct dns_query *q;
    ldns_pkt *pkt;
    const struct dns_gateway *ns_gw; /* DNS_NODE_NS: which one */
    char txt[DNS_TXT_MAX][DNS_TXT_LEN + 1];
    size_t txt_count;
    bool failed; /* an allocation failed */
};

/* ---- records ----------------------------------------------------------------------------- */

/* "PREFIX.DOMAIN." (prefix NULL: the apex) as a name rdf. */
static ldns_rdf *dns_dname(const struct dns_zone *z, const char *prefix)
{
    char text[2 * DNS_NAME_MAX + 8];

    if (prefix)
        snprintf(text, sizeof(text), "%s.%s.", prefix, z->domain);
    else
        snprintf(text, sizeof(text), "%s.", z->domain);
    return ldns_dname_new_frm_str(text);
}

/* A record with `owner` (taken) and no rdata yet, pushed into `section`; NULL on failure. */
static ldns_rr *dns_rr(struct dns_build *b, ldns_rdf *owner, ldns_rr_type type, uint32_t ttl,
                       ldns_pkt_section section)
{
    ldns_rr *rr = owner ? ldns_rr_new() : NULL;

    if (rr == NULL) {
        ldns_rdf_deep_free(owner);
        b->failed = true;
        return NULL;
    }
    ldns_rr_set_owner(rr, owner);
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl);
    if (!ldns_pkt_push_rr(b->pkt, section, rr)) {
        ldns_rr_free(rr);
        b->failed = true;
        return NULL;
    }
    return rr;
}

static void dns_rdata(struct dns_build *b, ldns_rr *rr, ldns_rdf *rdf)
{
    if (rr == NULL || rdf == NULL || !ldns_rr_push_rdf(rr, rdf)) {
        ldns_rdf_deep_free(rdf);
        b->failed = true;
    }
}

static ldns_rdf *dns_qname(const struct dns_query *q)
{
    return ldns_dname_new_frm_data((uint16_t)q->qname_len, q->qname_wire);
}

static void dns_add_soa(struct dns_build *b, ldns_pkt_section section)
{
    const struct dns_zone *z = b->zone;
    char mname[DNS_LABEL_MAX + 4];
    ldns_rr *rr = dns_rr(b, dns_dname(z, NULL), LDNS_RR_TYPE_SOA, z->ttl, section);

    snprintf(mname, sizeof(mname), "ns-%s", z->gw_count ? z->gws[0].label : "0");
    dns_rdata(b, rr, dns_dname(z, mname));
    dns_rdata(b, rr, dns_dname(z, "hostmaster"));
    dns_rdata(b, rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, 1));
    dns_rdata(b, rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, DNS_SOA_REFRESH));
    dns_rdata(b, rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, DNS_SOA_RETRY));
    dns_rdata(b, rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, DNS_SOA_EXPIRE));
    dns_rdata(b, rr, ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, z->ttl));
}

/* A or AAAA records for `owner_fn` from ips[n], starting at `start`, at most `max`. */
static void dns_add_addrs(struct dns_build *b, ldns_rdf *owner, const struct dns_ip *ips, size_t n,
                          uint8_t family, size_t start, ldns_pkt_section section)
{
    size_t shown = n < DNS_ANSWER_ADDRS_MAX ? n : DNS_ANSWER_ADDRS_MAX;

    for (size_t i = 0; i < shown; i++) {
        const struct dns_ip *ip = &ips[(start + i) % n];
        ldns_rr *rr;
        if (ip->family != family)
            continue;
        rr = dns_rr(b, ldns_rdf_clone(owner), family == 4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA,
                    b->zone->ttl, section);
        dns_rdata(b, rr,
                  ldns_rdf_new_frm_data(family == 4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA,
                                        family == 4 ? 4 : 16, ip->ip));
    }
}

/* NS records of every gateway (one per label) with their glue. */
static void dns_add_ns(struct dns_build *b)
{
    const struct dns_zone *z = b->zone;

    for (size_t i = 0; i < z->gw_count; i++) {
        char ns[DNS_LABEL_MAX + 4];
        ldns_rr *rr;
        if (i > 0 && strcmp(z->gws[i].label, z->gws[i - 1].label) == 0)
            continue;
        snprintf(ns, sizeof(ns), "ns-%s", z->gws[i].label);
        rr = dns_rr(b, dns_dname(z, NULL), LDNS_RR_TYPE_NS, z->ttl, LDNS_SECTION_ANSWER);
        dns_rdata(b, rr, dns_dname(z, ns));
        ldns_rdf *glue = dns_dname(z, ns);
        if (glue == NULL) {
            b->failed = true;
            continue;
        }
        dns_add_addrs(b, glue, z->gws[i].addrs, z->gws[i].count, 4, 0, LDNS_SECTION_ADDITIONAL);
        dns_add_addrs(b, glue, z->gws[i].addrs, z->gws[i].count, 6, 0, LDNS_SECTION_ADDITIONAL);
        ldns_rdf_deep_free(glue);
    }
}

static void dns_add_txt(struct dns_build *b)
{
    for (size_t i = 0; i < b->txt_count; i++) {
        ldns_rr *rr =
            dns_rr(b, dns_qname(b->q), LDNS_RR_TYPE_TXT, b->zone->ttl, LDNS_SECTION_ANSWER);
        size_t n = strlen(b->txt[i]);
        uint8_t raw[DNS_TXT_LEN + 1];
        raw[0] = (uint8_t)n;
        memcpy(raw + 1, b->txt[i], n);
        dns_rdata(b, rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, n + 1, raw));
    }
}

/* RFC 8482 section 4.2: one synthesized HINFO instead of every record set. */
static void dns_add_any(struct dns_build *b)
{
    static const uint8_t cpu[] = {7, 'R', 'F', 'C', '8', '4', '8', '2'}, os[] = {0};
    ldns_rr *rr = dns_rr(b, dns_qname(b->q), LDNS_RR_TYPE_HINFO, b->zone->ttl, LDNS_SECTION_ANSWER);

    dns_rdata(b, rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, sizeof(cpu), cpu));
    dns_rdata(b, rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, sizeof(os), os));
}

/* ---- where the name is ------------------------------------------------------------------- */

static enum dns_node_kind dns_classify(struct dns_build *b)
{
    struct dns_zone *z = b->zone;
    const char *name = b->q->qname;
    size_t n = strlen(name);
    char rel[DNS_NAME_MAX + 1];
    size_t rlen;

    if (n == z->domain_len && memcmp(name, z->domain, n) == 0)
        return DNS_NODE_APEX;
    if (n <= z->domain_len + 1 || name[n - z->domain_len - 1] != '.' ||
        memcmp(name + n - z->domain_len, z->domain, z->domain_len) != 0)
        return DNS_NODE_OUTSIDE;
    rlen = n - z->domain_len - 1;
    memcpy(rel, name, rlen);
    rel[rlen] = '\0';
    if (z->src.txt)
        b->txt_count = z->src.txt(z->src.ctx, rel, b->txt, DNS_TXT_MAX);
    if (rlen > 3 && memcmp(rel, "ns-", 3) == 0 && !memchr(rel, '.', rlen) &&
        (b->ns_gw = dns_zone_gateway(z, rel + 3)) != NULL)
        return DNS_NODE_NS;
    switch (z->src.name_status(z->src.ctx, rel)) {
    case DNS_NAME_SERVED:
        return DNS_NODE_SERVED;
    case DNS_NAME_EMPTY:
        return DNS_NODE_EMPTY;
    case DNS_NAME_NONE:
        break;
    }
    return b->txt_count ? DNS_NODE_EMPTY : DNS_NODE_NONE;
}

/* Fills the sections for an in-zone name; returns the rcode. */
static uint8_t dns_fill(struct dns_build *b, enum dns_node_kind kind)
{
    struct dns_zone *z = b->zone;
    uint16_t t = b->q->qtype;
    size_t before;
    ldns_rdf *owner;

    if (kind == DNS_NODE_NONE) {
        dns_add_soa(b, LDNS_SECTION_AUTHORITY);
        return DNS_RCODE_NXDOMAIN;
    }
    before = ldns_pkt_ancount(b->pkt);
    if (t == DNS_TYPE_ANY) {
        dns_add_any(b);
    } else if (kind == DNS_NODE_APEX && t == LDNS_RR_TYPE_SOA) {
        dns_add_soa(b, LDNS_SECTION_ANSWER);
    } else if (kind == DNS_NODE_APEX && t == LDNS_RR_TYPE_NS) {
        dns_add_ns(b);
    } else if (t == LDNS_RR_TYPE_TXT) {
        dns_add_txt(b);
    } else if ((t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA) &&
               (kind == DNS_NODE_SERVED || kind == DNS_NODE_NS)) {
        uint8_t family = t == LDNS_RR_TYPE_A ? 4 : 6;
        owner = dns_qname(b->q);
        if (owner == NULL) {
            b->failed = true;
        } else if (kind == DNS_NODE_NS) {
            dns_add_addrs(b, owner, b->ns_gw->addrs, b->ns_gw->count, family, 0,
                          LDNS_SECTION_ANSWER);
        } else {
            const struct dns_ip *ips = family == 4 ? z->v4 : z->v6;
            size_t n = family == 4 ? z->v4_count : z->v6_count;
            if (n)
                dns_add_addrs(b, owner, ips, n, family, (size_t)(z->rotation % n),
                              LDNS_SECTION_ANSWER);
        }
        ldns_rdf_deep_free(owner);
    }
    if (ldns_pkt_ancount(b->pkt) == before)
        dns_add_soa(b, LDNS_SECTION_AUTHORITY); /* NODATA */
    return DNS_RCODE_NOERROR;
}

/* ---- the packet -------------------------------------------------------------------------- */

static ldns_pkt *dns_pkt_start(const struct dns_query *q, uint8_t rcode, bool aa)
{
    ldns_pkt *p = ldns_pkt_new();
    ldns_rr *question;

    if (p == NULL)
        return NULL;
    ldns_pkt_set_id(p, q->id);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_aa(p, aa);
    ldns_pkt_set_rd(p, q->rd);
    ldns_pkt_set_cd(p, q->cd);
    ldns_pkt_set_opcode(p, (ldns_pkt_opcode)q->opcode);
    ldns_pkt_set_rcode(p, rcode & 0x0f);
    if (q->edns) {
        ldns_pkt_set_edns_udp_size(p, DNS_UDP_PAYLOAD);
        ldns_pkt_set_edns_extended_rcode(p, (uint8_t)(rcode >> 4));
        ldns_pkt_set_edns_do(p, q->edns_do);
    }
    if (q->qname_len > 0) {
        question = ldns_rr_new();
        ldns_rdf *owner = dns_qname(q);
        if (question == NULL || owner == NULL) {
            ldns_rr_free(question);
            ldns_rdf_deep_free(owner);
            ldns_pkt_free(p);
            return NULL;
        }
        ldns_rr_set_owner(question, owner);
        ldns_rr_set_question(question, true);
        ldns_rr_set_type(question, (ldns_rr_type)q->qtype);
        ldns_rr_set_class(question, (ldns_rr_class)q->qclass);
        ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, question);
    }
    return p;
}

/* Writes pkt into out[cap]; returns the length, or DNS_ETOOBIG when over `limit`. */
static int dns_pkt_write(ldns_pkt *p, size_t limit, uint8_t *out, size_t cap)
{
    uint8_t *wire = NULL;
    size_t size = 0;
    int rc;

    if (ldns_pkt2wire(&wire, p, &size) != LDNS_STATUS_OK)
        return DNS_ENOMEM;
    if (size > limit || size > cap)
        rc = DNS_ETOOBIG;
    else {
        memcpy(out, wire, size);
        rc = (int)size;
    }
    LDNS_FREE(wire);
    return rc;
}

/* An answer with no records: errors, and the truncated form of an answer too large. */
static int dns_answer_bare(const struct dns_query *q, uint8_t rcode, bool aa, bool tc, uint8_t *out,
                           size_t cap)
{
    ldns_pkt *p = dns_pkt_start(q, rcode, aa);
    int rc;

    if (p == NULL)
        return DNS_ENOMEM;
    ldns_pkt_set_tc(p, tc);
    rc = dns_pkt_write(p, cap, out, cap);
    ldns_pkt_free(p);
    return rc;
}

int dns_answer_error(const struct dns_query *q, uint8_t rcode, uint8_t *out, size_t cap)
{
    struct dns_query bare = *q;

    /* no question echoed: it could not be read */
    bare.qname_len = 0;
    return dns_answer_bare(&bare, rcode, false, false, out, cap);
}

int dns_answer(struct dns_zone *zone, const struct dns_query *q, size_t limit, uint8_t *out,
               size_t cap, struct dns_answer_info *info)
{
    struct dns_build b = {.zone = zone, .q = q};
    enum dns_node_kind kind;
    uint8_t rcode;
    int rc;

    memset(info, 0, sizeof(*info));
    zone->rotation++;
    if (limit > cap)
        limit = cap;
    if (q->edns && q->edns_version != 0) {
        info->rcode = DNS_RCODE_BADVERS;
        return dns_answer_bare(q, DNS_RCODE_BADVERS, false, false, out, cap);
    }
    kind = q->qclass == DNS_CLASS_IN ? dns_classify(&b) : DNS_NODE_OUTSIDE;
    if (kind == DNS_NODE_OUTSIDE || q->qtype == DNS_TYPE_AXFR || q->qtype == DNS_TYPE_IXFR) {
        info->rcode = DNS_RCODE_REFUSED;
        return dns_answer_bare(q, DNS_RCODE_REFUSED, false, false, out, cap);
    }
    b.pkt = dns_pkt_start(q, DNS_RCODE_NOERROR, true);
    if (b.pkt == NULL)
        return DNS_ENOMEM;
    rcode = dns_fill(&b, kind);
    ldns_pkt_set_rcode(b.pkt, rcode);
    info->rcode = rcode;
    info->ancount = ldns_pkt_ancount(b.pkt);
    rc = b.failed ? DNS_ENOMEM : dns_pkt_write(b.pkt, limit, out, cap);
    ldns_pkt_free(b.pkt);
    if (rc == DNS_ETOOBIG) {
        info->truncated = true;
        info->ancount = 0;
        return dns_answer_bare(q, rcode, true, true, out, cap);
    }
    return rc;
}
