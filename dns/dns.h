/*
 * dns.h - the authoritative DNS server every gateway runs for --domain (public interface of
 * dns/).
 *
 * The fleet's DNS answers from what gossip already tells every gateway: which gateways are
 * alive (and their public addresses), which names exist and which of them have a healthy
 * backend. There is no zone file and no transfer: every gateway computes the same answers
 * from the same fleet state.
 *
 *   dns_query.c   the query decoder: bytes -> struct dns_query (ldns does the wire format);
 *                 a pure function, fuzzed (tests/fuzz/fuzz_dns_query.c)
 *   dns_zone.c    the zone: domain, TTL, the fleet's gateways and their addresses, rotation
 *   dns_answer.c  a decoded query -> the response bytes (ldns builds the packet): SOA, NS and
 *                 glue at the apex, A/AAAA of the fleet for served names, NXDOMAIN / NODATA,
 *                 REFUSED outside the zone, minimal ANY (RFC 8482), truncation
 *   dns_rrl.c     response rate limiting per client prefix (/24, /56): a bounded, keyed table
 *   dns_server.c  UDP and TCP listeners on a libuv loop
 *
 * What a name means comes from the caller (struct dns_source): dns/ knows nothing of records,
 * gossip or health, so it is tested with a fake source and no network.
 *
 * Threading: everything here runs on the loop that owns the server (the node's control loop,
 * where the state it answers from lives). Conventions: 0 or a count on success, a negative
 * DNS_E* code on failure with a one-line message in `err` when given.
 */
#ifndef WEBGW_DNS_H
#define WEBGW_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <uv.h>

/* ---- limits ------------------------------------------------------------------------------ */

#define DNS_QUERY_MAX 4096      /* largest query read, over UDP or TCP; longer is dropped */
#define DNS_NAME_MAX 253        /* longest name, text form, no trailing dot */
#define DNS_LABEL_MAX 63        /* longest label */
#define DNS_GATEWAYS_MAX 256    /* gateways in the zone (more are left out, in id order) */
#define DNS_GATEWAY_ADDRS_MAX 8 /* public addresses per gateway */
#define DNS_ANSWER_ADDRS_MAX 64 /* A (or AAAA) records in one answer: a rotating window */
#define DNS_UDP_PAYLOAD 1232    /* our EDNS0 payload size (DNS flag day 2020) */
#define DNS_UDP_PLAIN 512       /* UDP response limit without EDNS0 */
#define DNS_TXT_MAX 8           /* TXT records per name (ACME challenges) */
#define DNS_TXT_LEN 255         /* one TXT string */
#define DNS_LISTEN_MAX 8        /* listen addresses */
#define DNS_TCP_CONNS_MAX 256   /* open TCP connections, all clients */
#define DNS_TCP_IDLE_MS 10000   /* a TCP client silent this long is closed */
#define DNS_TCP_QUERIES_MAX 100 /* queries answered on one TCP connection */
#define DNS_RRL_SLOTS 4096      /* client prefixes tracked by the rate limiter */
#define DNS_ERR_MAX 256         /* size of an error message buffer */

enum dns_error {
    DNS_OK = 0,
    DNS_EINVAL = -1,   /* bad argument or configuration */
    DNS_ENOMEM = -2,   /* out of memory */
    DNS_EFORMERR = -3, /* a query with a readable header but an unreadable body */
    DNS_EDROP = -4,    /* not worth an answer: shorter than a header, or a response */
    DNS_EIO = -5,      /* socket failure */
    DNS_ETOOBIG = -6,  /* over a size limit */
};

/* ---- the zone ---------------------------------------------------------------------------- */

/* An IP address; network byte order, IPv4 in the first 4 bytes. */
struct dns_ip {
    uint8_t family; /* 4 or 6 */
    uint8_t ip[16];
};

/* One alive, non-draining gateway as the zone shows it. */
struct dns_gateway {
    char label[DNS_LABEL_MAX + 1]; /* its name server is ns-LABEL.DOMAIN: [a-z0-9-], at most
                                      DNS_LABEL_MAX - 3 characters */
    struct dns_ip addrs[DNS_GATEWAY_ADDRS_MAX]; /* public addresses */
    size_t count;                               /* entries in addrs */
};

/* What a name under the domain is, as the fleet sees it. */
enum dns_name_status {
    DNS_NAME_NONE = 0,  /* no such name: NXDOMAIN */
    DNS_NAME_EMPTY = 1, /* the name exists but has no healthy backend: NODATA */
    DNS_NAME_SERVED = 2 /* served: A/AAAA of the fleet */
};

/* Where names come from (the node). Both callbacks run on the server's loop. */
struct dns_source {
    void *ctx; /* first argument of each callback */
    /* The status of `name`, lowercase and relative to the domain: "demo" for demo.DOMAIN, or
     * an fqdn proxy's name ("www.example.org" for www.example.org.DOMAIN). Required. */
    enum dns_name_status (*name_status)(void *ctx, const char *name);
    /* The TXT strings of `name` (relative, lowercase, e.g. "_acme-challenge"), at most `cap`
     * into out; returns how many. Optional (NULL: no TXT records). */
    size_t (*txt)(void *ctx, const char *name, char (*out)[DNS_TXT_LEN + 1], size_t cap);
};

struct dns_zone; /* domain, TTL, fleet, rotation counter (opaque) */

/* A zone for `domain` (case-insensitive, no trailing dot needed) with answers valid `ttl`
 * seconds. `src` is copied. Returns NULL with err set (bad domain, out of memory). */
struct dns_zone *dns_zone_new(const char *domain, uint32_t ttl, const struct dns_source *src,
                              char *err, size_t errlen);
void dns_zone_free(struct dns_zone *zone);
/* Replaces the fleet (alive, non-draining gateways). Copied; sorted so that every gateway
 * holding the same set answers the same set. Gateways past DNS_GATEWAYS_MAX, addresses past
 * DNS_GATEWAY_ADDRS_MAX and labels that are not valid are left out. Returns 0 or DNS_ENOMEM. */
int dns_zone_set_fleet(struct dns_zone *zone, const struct dns_gateway *gws, size_t count);
void dns_zone_set_ttl(struct dns_zone *zone, uint32_t ttl);

/* ---- queries and answers ----------------------------------------------------------------- */

/* A decoded query. */
struct dns_query {
    uint16_t id;                  /* echoed */
    uint8_t opcode;               /* 0 = QUERY; others get NOTIMP */
    bool rd;                      /* recursion desired: echoed, never granted */
    bool cd;                      /* checking disabled: echoed */
    uint16_t qtype;               /* the question's type */
    uint16_t qclass;              /* its class */
    uint8_t qname_wire[256];      /* the question's name as sent (case kept: 0x20 resolvers
                                     check it), uncompressed wire form */
    size_t qname_len;             /* bytes in qname_wire */
    char qname[DNS_NAME_MAX + 2]; /* lowercase text, no trailing dot ("" for the root) */
    bool edns;                    /* the query carried an OPT record */
    uint8_t edns_version;         /* its version (we speak 0; others get BADVERS) */
    uint16_t edns_udp_size;       /* the client's advertised UDP payload size */
    bool edns_do;                 /* DNSSEC OK (we sign nothing; only echoed) */
};

/* Decodes a query of `len` bytes (at most DNS_QUERY_MAX). Returns 0; DNS_EFORMERR when the
 * header is readable but the rest is not, or there is not exactly one question (q->id and
 * q->opcode are set: answer FORMERR); DNS_EDROP for fewer than 12 bytes, a response (QR set)
 * or an oversized message (no answer at all). A pure function: no allocation outlives it. */
int dns_query_decode(const uint8_t *buf, size_t len, struct dns_query *q);

/* What an answer was, for counters and tests. */
struct dns_answer_info {
    uint8_t rcode;    /* 0 NOERROR, 1 FORMERR, 3 NXDOMAIN, 4 NOTIMP, 5 REFUSED, 16 BADVERS */
    bool truncated;   /* TC set: the records did not fit */
    uint16_t ancount; /* records in the answer section */
};

/* Writes the response to `q` into out[cap] (cap >= DNS_UDP_PLAIN). `limit` is the largest
 * response the transport allows (UDP: 512, or the client's EDNS size capped at
 * DNS_UDP_PAYLOAD; TCP: 65535); a response that does not fit is sent with TC set and no
 * records. Each call moves the rotation of the address lists by one. Returns the length, or
 * DNS_ENOMEM / DNS_ETOOBIG. */
int dns_answer(struct dns_zone *zone, const struct dns_query *q, size_t limit, uint8_t *out,
               size_t cap, struct dns_answer_info *info);
/* The FORMERR (or NOTIMP when `notimp`) response to a query whose header only was readable. */
int dns_answer_error(const struct dns_query *q, uint8_t rcode, uint8_t *out, size_t cap);

/* The UDP response limit for `q`: 512 without EDNS0, else the client's size within
 * [512, DNS_UDP_PAYLOAD]. */
size_t dns_udp_limit(const struct dns_query *q);

/* ---- response rate limiting -------------------------------------------------------------- */

/* Limits UDP responses per client prefix (/24 for IPv4, /56 for IPv6), so the fleet cannot be
 * used to amplify traffic toward a spoofed victim. A token bucket of `rate` responses per
 * second (burst: one second's worth) per prefix, in a table of DNS_RRL_SLOTS keyed with
 * SipHash under a random key. When the table is full the least recently seen prefix in the
 * probed window is forgotten. */
struct dns_rrl;
struct dns_rrl *dns_rrl_new(uint32_t rate);
void dns_rrl_free(struct dns_rrl *rrl);

enum dns_rrl_verdict {
    DNS_RRL_SEND = 0, /* within the rate */
    DNS_RRL_SLIP = 1, /* over: send a truncated, empty answer (a real client retries over TCP) */
    DNS_RRL_DROP = 2, /* over: send nothing */
};
/* Charges one response to `client`'s prefix at `now_ms`. Over the rate, every second limited
 * response slips (TC) and the others are dropped, as BIND's RRL "slip 2". rate 0: always SEND. */
enum dns_rrl_verdict dns_rrl_check(struct dns_rrl *rrl, const struct sockaddr *client,
                                   uint64_t now_ms);

/* ---- the server -------------------------------------------------------------------------- */

struct dns_server_config {
    struct sockaddr_storage listen[DNS_LISTEN_MAX]; /* UDP and TCP on each */
    size_t listen_count;                            /* entries in listen */
    uint32_t rrl_rate;                              /* UDP responses/s per prefix; 0 off */
};

struct dns_stats {
    uint64_t queries_udp, queries_tcp; /* queries answered (or refused) */
    uint64_t rcodes[6];                /* answers by rcode 0..5 */
    uint64_t badvers;                  /* BADVERS answers */
    uint64_t truncated;                /* answers sent with TC (too large for UDP) */
    uint64_t dropped;                  /* unanswerable: short, responses, oversized */
    uint64_t rrl_dropped, rrl_slipped; /* rate-limited */
    uint64_t tcp_refused;              /* connections closed at once: too many open */
};

struct dns_server;

/* Binds every listen address (UDP and TCP) on `loop` and answers from `zone` (which must
 * outlive the server). Returns NULL with err set ("bind 127.0.0.1:53: address in use"). */
struct dns_server *dns_server_start(uv_loop_t *loop, const struct dns_server_config *cfg,
                                    struct dns_zone *zone, char *err, size_t errlen);
/* Closes every handle; the memory goes once the loop has run their close callbacks. */
void dns_server_close(struct dns_server *srv);
void dns_server_stats(const struct dns_server *srv, struct dns_stats *out);
/* The address listener i is bound to (port 0 resolved). Returns 0 or DNS_EINVAL. */
int dns_server_bound(const struct dns_server *srv, size_t i, struct sockaddr_storage *out);

#endif /* WEBGW_DNS_H */
