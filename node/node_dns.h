/*
 * node_dns.h - whether an fqdn proxy's DNS points at the fleet (private to node/).
 *
 *   fqdn_verdict.c  pure functions: a DNS response (bytes) into answers, and answers plus the
 *                   fleet's addresses into a verdict. No I/O, so unit tests and fuzzers
 *                   drive them directly.
 *   node_dns.c      the resolver plumbing: c-ares driven from the node's libuv loop (socket
 *                   callbacks into uv_poll, one timer for c-ares timeouts); no thread, no
 *                   blocking call.
 *   node_fqdn.c     the node's side: which fqdns are served, checks on submission and every
 *                   --dns-interval, route removal and restoration, events, metrics.
 */
#ifndef WEBGW_NODE_DNS_H
#define WEBGW_NODE_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "node/node.h"

#define NODE_DNS_ADDRS_MAX 32  /* A/AAAA records kept from one lookup */
#define NODE_DNS_CNAMES_MAX 16 /* CNAME records kept from one lookup */
#define NODE_DNS_HOPS_MAX 8    /* longest CNAME chain followed */
#define NODE_FLEET_MAX 512     /* fleet addresses compared against */

/* One IP address, network byte order; IPv4 in the first 4 bytes. */
struct node_ip {
    uint8_t family; /* 4 or 6 */
    uint8_t ip[16];
};

/* What one or more DNS responses (the A and the AAAA query) said about a name. */
struct node_dns_answer {
    bool nxdomain; /* the name does not exist (every response said so) */
    bool overflow; /* more records than kept: the verdict will not trust it */
    size_t cname_count;
    struct {
        char owner[254];  /* lowercase, no trailing dot */
        char target[254]; /* lowercase, no trailing dot */
    } cnames[NODE_DNS_CNAMES_MAX];
    size_t addr_count;
    struct {
        char owner[254];   /* the name the address belongs to */
        struct node_ip ip; /* the address */
    } addrs[NODE_DNS_ADDRS_MAX];
};

/* Adds the answer section of one DNS response (`buf`, `len` bytes, as received) to `out`
 * (zero it before the first call): CNAME, A and AAAA records of class IN; others skipped.
 * Sets nxdomain when the response code is NXDOMAIN. Returns 0, or -1 with err set on a
 * truncated or malformed message (compression loops included). */
int node_dns_parse(const uint8_t *buf, size_t len, struct node_dns_answer *out, char *err,
                   size_t errlen);

enum node_fqdn_verdict {
    NODE_FQDN_POINTS = 0,    /* every address is the fleet's, or a CNAME leads into --domain */
    NODE_FQDN_ELSEWHERE = 1, /* an address outside the fleet, no address, or no such name */
};

/* Decides whether `fqdn` points at the fleet from its answers. The CNAME chain starting at
 * fqdn is followed (up to NODE_DNS_HOPS_MAX hops): a name in it equal to `domain` or under it
 * means POINTS (every gateway serves the domain). Otherwise the A/AAAA addresses of the
 * chain's last name must all be in `fleet` (and there must be at least one). Names compare
 * case-insensitively. Writes a one-line reason into why. */
enum node_fqdn_verdict node_fqdn_decide(const char *fqdn, const struct node_dns_answer *ans,
                                        const char *domain, const struct node_ip *fleet,
                                        size_t fleet_count, char *why, size_t whylen);

/* Formats an address as text into out[64]. */
void node_ip_format(const struct node_ip *ip, char out[64]);

/* ---- the resolver ------------------------------------------------------------------------ */

struct node_dns;

/* A lookup's end. ok false: the resolver failed (timeout, SERVFAIL, refused, malformed): no
 * verdict can be drawn, `ans` is NULL and `why` says what failed. */
typedef void (*node_dns_cb)(void *ctx, const char *host, bool ok, const struct node_dns_answer *ans,
                            const char *why);

/* A resolver on `loop` asking `server` ("IP:PORT"), or the system's resolv.conf servers when
 * NULL. Returns NULL with err set. */
struct node_dns *node_dns_new(uv_loop_t *loop, const char *server, char *err, size_t errlen);
/* Asks for the A and AAAA records of host; cb runs once, on the loop, when both answered
 * (from inside this call when c-ares fails at once, e.g. no socket). Returns 0, or -1 when
 * out of memory or closing (cb never runs then). */
int node_dns_lookup(struct node_dns *dns, const char *host, node_dns_cb cb, void *ctx);
/* Lookups not yet answered. */
size_t node_dns_pending(const struct node_dns *dns);
/* Cancels every lookup (no callback runs) and closes the handles; the memory goes once the
 * loop has run their close callbacks. NULL is fine. */
void node_dns_close(struct node_dns *dns);

#endif /* WEBGW_NODE_DNS_H */
