/*
 * dns_query.c - the query decoder: bytes from a client into struct dns_query.
 *
 * ldns (NLnet Labs) reads the wire format: name compression, label bounds, record counts
 * against the bytes present, the OPT pseudo-record. We check around it what ldns leaves to the
 * caller: the length bound, a response arriving as a query (QR set: answering it could start a
 * loop between two servers), exactly one question, and the question's name copied out in both
 * forms we need (wire form as sent, for the echo; lowercase text, for lookups).
 */
#include <ldns/ldns.h>
#include <string.h>

#include "dns/dns_int.h"

/* Header fields readable from any message of 12 bytes or more. */
static void dns_query_header(const uint8_t *buf, struct dns_query *q)
{
    q->id = (uint16_t)((buf[0] << 8) | buf[1]);
    q->opcode = (buf[2] >> 3) & 0x0f;
    q->rd = buf[2] & 0x01;
    q->cd = buf[3] & 0x10;
}

/* The question's name: wire bytes as sent, and the lowercase text form. */
static int dns_query_name(const ldns_rdf *owner, struct dns_query *q)
{
    const uint8_t *w = ldns_rdf_data(owner);
    size_t n = ldns_rdf_size(owner), pos = 0, out = 0;

    if (n == 0 || n > sizeof(q->qname_wire))
        return DNS_EFORMERR;
    memcpy(q->qname_wire, w, n);
    q->qname_len = n;
    /* labels: length byte, then bytes; ldns checked the lengths add up to n */
    while (pos < n && w[pos] != 0) {
        size_t len = w[pos++];
        if (len > DNS_LABEL_MAX || pos + len > n)
            return DNS_EFORMERR;
        if (out != 0)
            q->qname[out++] = '.';
        for (size_t i = 0; i < len; i++) {
            uint8_t c = w[pos + i];
            /* a dot or a NUL inside a label cannot match any name of ours; keep it out of the
             * text form so it cannot be mistaken for a label boundary */
            if (c == '.' || c == '\0')
                c = '?';
            q->qname[out++] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
            if (out > DNS_NAME_MAX)
                return DNS_EFORMERR;
        }
        pos += len;
    }
    q->qname[out] = '\0';
    return 0;
}

int dns_query_decode(const uint8_t *buf, size_t len, struct dns_query *q)
{
    ldns_pkt *pkt = NULL;
    const ldns_rr_list *qs;
    const ldns_rr *rr;
    int rc;

    memset(q, 0, sizeof(*q));
    if (len < DNS_HEADER_LEN || len > DNS_QUERY_MAX || (buf[2] & 0x80))
        return DNS_EDROP;
    dns_query_header(buf, q);
    if (q->opcode != 0)
        return DNS_EFORMERR; /* the caller answers NOTIMP from the header alone */
    /* one question, no answers: a query (counts are checked before ldns allocates for them) */
    if (buf[4] != 0 || buf[5] != 1 || buf[6] != 0 || buf[7] != 0)
        return DNS_EFORMERR;
    if (ldns_wire2pkt(&pkt, buf, len) != LDNS_STATUS_OK)
        return DNS_EFORMERR;
    rc = DNS_EFORMERR;
    qs = ldns_pkt_question(pkt);
    if (qs == NULL || ldns_rr_list_rr_count(qs) != 1)
        goto done;
    rr = ldns_rr_list_rr(qs, 0);
    if (ldns_rr_owner(rr) == NULL || dns_query_name(ldns_rr_owner(rr), q) != 0)
        goto done;
    q->qtype = (uint16_t)ldns_rr_get_type(rr);
    q->qclass = (uint16_t)ldns_rr_get_class(rr);
    if (ldns_pkt_edns(pkt)) {
        q->edns = true;
        q->edns_version = ldns_pkt_edns_version(pkt);
        q->edns_udp_size = ldns_pkt_edns_udp_size(pkt);
        q->edns_do = ldns_pkt_edns_do(pkt);
    }
    rc = 0;
done:
    ldns_pkt_free(pkt);
    return rc;
}

size_t dns_udp_limit(const struct dns_query *q)
{
    if (!q->edns || q->edns_udp_size <= DNS_UDP_PLAIN)
        return DNS_UDP_PLAIN;
    return q->edns_udp_size < DNS_UDP_PAYLOAD ? q->edns_udp_size : DNS_UDP_PAYLOAD;
}
