/*
 * http1_via.c - request-loop detection: the Via field (RFC 9110 7.6.3) and the Webgw-Hops
 * count.
 *
 * Two gateways whose names point at each other (one fleet behind a NAT or load balancer, or
 * two fleets) would otherwise bounce one request between them until a connection limit says
 * no, each hop holding a connection. Every request a gateway forwards carries
 * `Via: 1.1 PSEUDONYM` appended after the Via values it received, where PSEUDONYM names the
 * fleet (node_proxy.c derives it), and `Webgw-Hops: N+1` where N is what it received. A
 * gateway refuses with 508 a request whose Via already names its fleet (the first repeat), or
 * that already passed max_hops gateways (a loop through fleets whose tokens differ, or through
 * something that drops Via).
 *
 * Both fields are read from anyone, trusted or not: they can only make a request refused, so
 * a client forging them harms nobody but itself.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/http1.h"

#define HOPS_DIGITS_MAX 6 /* "Webgw-Hops" values longer than this count as over any bound */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether one Via member ("1.1 name (comment)") has `name` as its received-by. */
static bool via_member_names(const char *s, size_t len, const char *name, size_t name_len)
{
    size_t i = 0, start;

    while (i < len && is_ows(s[i]))
        i++;
    while (i < len && !is_ows(s[i])) /* received-protocol */
        i++;
    while (i < len && is_ows(s[i]))
        i++;
    start = i;
    while (i < len && !is_ows(s[i]) && s[i] != '(') /* received-by */
        i++;
    return i - start == name_len && strncasecmp(s + start, name, name_len) == 0;
}

/* Whether a Via value lists `name`. Members are split on commas outside comments; comments
 * nest and may hold quoted pairs (RFC 9110 5.6.5), so "(a, b)" is one member. */
static bool via_value_names(const char *v, size_t len, const char *name, size_t name_len)
{
    size_t member = 0;
    int depth = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len) {
            char c = v[i];
            if (depth > 0 && c == '\\') {
                i++;
                continue;
            }
            if (c == '(')
                depth++;
            else if (c == ')' && depth > 0)
                depth--;
            if (c != ',' || depth > 0)
                continue;
        }
        if (via_member_names(v + member, i - member, name, name_len))
            return true;
        member = i + 1;
    }
    return false;
}

/* A Webgw-Hops value: decimal digits, at most HOPS_DIGITS_MAX; anything else is UINT32_MAX. */
static uint32_t hops_value(const char *v, size_t len)
{
    uint32_t n = 0;

    if (len == 0 || len > HOPS_DIGITS_MAX)
        return UINT32_MAX;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return UINT32_MAX;
        n = n * 10 + (uint32_t)(v[i] - '0');
    }
    return n;
}

enum http1_loop http1_loop_check(const struct http1_head *h, const char *via_name,
                                 uint32_t max_hops, uint32_t *hops)
{
    size_t name_len = via_name ? strlen(via_name) : 0;
    bool seen = false;

    *hops = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct http1_header *f = &h->fields[i];
        if (f->name_len == 3 && http1_name_is(f, "via")) {
            if (name_len && via_value_names(f->value, f->value_len, via_name, name_len))
                seen = true;
        } else if (f->name_len == 10 && http1_name_is(f, "webgw-hops")) {
            uint32_t n = hops_value(f->value, f->value_len);
            if (n > *hops)
                *hops = n; /* several copies: the largest counts */
        }
    }
    if (seen)
        return HTTP1_LOOP_VIA;
    if (*hops >= max_hops)
        return HTTP1_LOOP_HOPS;
    return HTTP1_LOOP_NONE;
}
