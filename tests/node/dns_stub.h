/*
 * dns_stub.h - a tiny authoritative DNS server for the fqdn tests: UDP on 127.0.0.1, an
 * ephemeral port, answering A, AAAA and CNAME from a table the test changes while it runs.
 * Also the message encoder the verdict unit tests build their responses with.
 */
#ifndef WEBGW_TESTS_NODE_DNS_STUB_H
#define WEBGW_TESTS_NODE_DNS_STUB_H

#include <stddef.h>
#include <stdint.h>

#define NT_DNS_A 1
#define NT_DNS_CNAME 5
#define NT_DNS_AAAA 28

/* One resource record as text: value is an IP for A/AAAA, a name for CNAME. */
struct nt_dns_rr {
    char name[254];
    uint16_t type;
    char value[254];
};

/* Encodes a response to (qname, qtype) with the given answers, uncompressed. Returns the
 * length, or 0 when it does not fit in cap. */
size_t nt_dns_message(uint16_t id, int rcode, const char *qname, uint16_t qtype,
                      const struct nt_dns_rr *rrs, size_t n, uint8_t *out, size_t cap);

struct nt_dns;
/* Starts the server thread; exits the test on failure. */
struct nt_dns *nt_dns_start(void);
int nt_dns_port(const struct nt_dns *d);
/* Replaces every record of `name` with one record (type, value); type 0 removes the name. */
void nt_dns_set(struct nt_dns *d, const char *name, uint16_t type, const char *value);
/* Queries answered so far. */
unsigned long nt_dns_queries(const struct nt_dns *d);
void nt_dns_stop(struct nt_dns *d);

#endif
