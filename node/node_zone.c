/*
 * node_zone.c - the fleet's DNS (dns/) wired to the node: which gateways answer, and what a
 * name is.
 *
 * Gateways: every gossip member that is alive (suspect, dead and left members are out: a
 * draining gateway announces its leave at once, so SIGTERM takes it out of the answers within
 * one gossip round, and a killed one leaves when it becomes suspect) and serves the same
 * --domain, with the public addresses it announces in its metadata (--public-addr, default its
 * advertise address). Rebuilt on every member change.
 *
 * Names: looked up per query in the merged record set. A held proxy record (name or fqdn) with
 * at least one backend the fleet does not consider down is served; any other held key exists
 * without data (NODATA); anything else does not exist. Only fleet-wide inputs are used (the
 * gossiped health verdict, not this node's passive view or its loopback policy), so every
 * gateway gives the same answer for the same fleet state.
 */
#include <string.h>

#include "dns/dns.h"
#include "node/node_internal.h"

/* The ns-LABEL of a member: its name lowercased, other characters as '-', or its id. */
static void node_zone_label(const struct gossip_member *m, char out[DNS_LABEL_MAX + 1])
{
    size_t n = 0;
    const char *src = m->meta.name[0] ? m->meta.name : m->id;

    for (size_t i = 0; src[i] && n < DNS_LABEL_MAX - 3; i++) {
        char c = src[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            c = '-';
        if (c == '-' && (n == 0 || out[n - 1] == '-'))
            continue;
        out[n++] = c;
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
}

static void node_zone_ip(const struct gossip_addr *a, struct dns_ip *out)
{
    memset(out, 0, sizeof(*out));
    out->family = a->family;
    memcpy(out->ip, a->ip, a->family == 4 ? 4 : 16);
}

void node_zone_fleet_changed(struct node *node)
{
    struct gossip_member *members;
    struct dns_gateway *gws;
    size_t total, n = 0;

    if (node->zone == NULL || node->gossip == NULL)
        return;
    total = gossip_members(node->gossip, NULL, 0);
    members = calloc(total ? total : 1, sizeof(*members));
    gws = calloc(total ? total : 1, sizeof(*gws));
    if (members == NULL || gws == NULL)
        goto done;
    total = gossip_members(node->gossip, members, total);
    for (size_t i = 0; i < total; i++) {
        const struct gossip_member *m = &members[i];
        struct dns_gateway *g = &gws[n];
        if (m->state != GOSSIP_ALIVE || strcasecmp(m->meta.domain, node->cfg.domain) != 0)
            continue;
        node_zone_label(m, g->label);
        for (size_t j = 0; j < m->meta.public_count && j < DNS_GATEWAY_ADDRS_MAX; j++)
            node_zone_ip(&m->meta.public_addrs[j], &g->addrs[g->count++]);
        if (g->count == 0 && m->meta.http.family) /* a member without --public-addr support */
            node_zone_ip(&m->meta.http, &g->addrs[g->count++]);
        if (g->count > 0 && g->label[0])
            n++;
        else
            memset(g, 0, sizeof(*g));
    }
    if (dns_zone_set_fleet(node->zone, gws, n) != 0)
        node_log(NODE_LOG_WARN, "dns", "out of memory updating the fleet");
done:
    free(members);
    free(gws);
}

/* A proxy record is served while one of its backends is not down in the fleet's verdict. */
static enum dns_name_status node_zone_name(void *ctx, const char *name)
{
    struct node *node = ctx;
    struct state_name_view view;
    const struct state_record *r = &view.record;

    if (strlen(name) > STATE_FQDN_MAX || state_names_get(node->names, name, &view) != 0 ||
        !view.held)
        return DNS_NAME_NONE;
    if (r->kind != STATE_RECORD_PROXY && r->kind != STATE_RECORD_FQDN)
        return DNS_NAME_EMPTY;
    for (size_t i = 0; i < r->backend_count; i++) {
        char key[64];
        node_backend_key(&r->backends[i], key);
        if (gossip_health_verdict(node->gossip, key, NULL, NULL) != GOSSIP_HEALTH_DOWN)
            return DNS_NAME_SERVED;
    }
    return DNS_NAME_EMPTY;
}

/* TXT records: the DNS-01 challenges replicated by gossip (node_acme.c). */
static size_t node_zone_txt(void *ctx, const char *name, char (*out)[DNS_TXT_LEN + 1], size_t cap)
{
    struct node *node = ctx;
    char owner[2 * STATE_FQDN_MAX + 2];
    char vals[DNS_TXT_MAX][DNS_TXT_LEN + 1];
    size_t n;

    if (strncmp(name, "_acme-challenge", 15) != 0)
        return 0;
    snprintf(owner, sizeof(owner), "%s.%s", name, node->cfg.domain);
    n = node_acme_txt(node, owner, vals, cap < DNS_TXT_MAX ? cap : DNS_TXT_MAX);
    for (size_t i = 0; i < n; i++) {
        memcpy(out[i], vals[i], DNS_TXT_LEN);
        out[i][DNS_TXT_LEN] = '\0';
    }
    return n;
}

int node_zone_start(struct node *node, char *err, size_t errlen)
{
    struct dns_source src = {.ctx = node, .name_status = node_zone_name, .txt = node_zone_txt};
    struct dns_server_config sc = {.rrl_rate = node->cfg.dns_rrl};
    char why[DNS_ERR_MAX];

    if (node->cfg.dns_listen_count == 0)
        return 0;
    node->zone = dns_zone_new(node->cfg.domain, node->cfg.dns_ttl, &src, why, sizeof(why));
    if (node->zone == NULL) {
        snprintf(err, errlen, "dns: %s", why);
        return -1;
    }
    for (size_t i = 0; i < node->cfg.dns_listen_count; i++)
        sc.listen[i] = node->cfg.dns_listen[i].ss;
    sc.listen_count = node->cfg.dns_listen_count;
    node_zone_fleet_changed(node);
    node->dns = dns_server_start(&node->loop, &sc, node->zone, why, sizeof(why));
    if (node->dns == NULL) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    return 0;
}

void node_zone_stop(struct node *node)
{
    dns_server_close(node->dns);
    node->dns = NULL;
}

void node_zone_free(struct node *node)
{
    dns_zone_free(node->zone);
    node->zone = NULL;
}

void node_zone_metrics(const struct node *node, struct node_metrics *m)
{
    static const char *const rcodes[] = {"noerror",  "formerr", "servfail",
                                         "nxdomain", "notimp",  "refused"};
    struct dns_stats s;

    if (node->dns == NULL)
        return;
    dns_server_stats(node->dns, &s);
    node_metrics_family(m, "webgw_dns_queries_total", "counter", "DNS queries by transport");
    node_metrics_printf(m, "webgw_dns_queries_total{transport=\"udp\"} %llu\n",
                        (unsigned long long)s.queries_udp);
    node_metrics_printf(m, "webgw_dns_queries_total{transport=\"tcp\"} %llu\n",
                        (unsigned long long)s.queries_tcp);
    node_metrics_family(m, "webgw_dns_responses_total", "counter", "DNS responses by rcode");
    for (size_t i = 0; i < 6; i++)
        node_metrics_printf(m, "webgw_dns_responses_total{rcode=\"%s\"} %llu\n", rcodes[i],
                            (unsigned long long)s.rcodes[i]);
    node_metrics_printf(m, "webgw_dns_responses_total{rcode=\"badvers\"} %llu\n",
                        (unsigned long long)s.badvers);
    node_metrics_family(m, "webgw_dns_truncated_total", "counter",
                        "DNS answers sent with TC (too large for UDP)");
    node_metrics_printf(m, "webgw_dns_truncated_total %llu\n", (unsigned long long)s.truncated);
    node_metrics_family(m, "webgw_dns_dropped_total", "counter",
                        "DNS messages not answered, by reason");
    node_metrics_printf(m, "webgw_dns_dropped_total{reason=\"malformed\"} %llu\n",
                        (unsigned long long)s.dropped);
    node_metrics_printf(m, "webgw_dns_dropped_total{reason=\"rrl\"} %llu\n",
                        (unsigned long long)s.rrl_dropped);
    node_metrics_printf(m, "webgw_dns_dropped_total{reason=\"tcp_full\"} %llu\n",
                        (unsigned long long)s.tcp_refused);
    node_metrics_family(m, "webgw_dns_rrl_slipped_total", "counter",
                        "rate-limited DNS answers sent truncated (TC) instead of dropped");
    node_metrics_printf(m, "webgw_dns_rrl_slipped_total %llu\n", (unsigned long long)s.rrl_slipped);
}
