/*
 * node_fqdn.c - fqdn proxies are routed only while their DNS points at the fleet.
 *
 * An fqdn record is accepted, stored and replicated like any other (state converges on every
 * node whatever DNS says), but this node routes it, and orders its certificate, only after a
 * check found that its A/AAAA records are all fleet addresses or that a CNAME in its chain
 * leads into --domain. The check runs when the record arrives (API or gossip), at start, and
 * every --dns-interval for every held fqdn. A changed verdict removes or restores the route,
 * with one log line, an event on /api/v1/events and the counters on /metrics.
 *
 * A check the resolver could not answer (timeout, SERVFAIL) changes nothing: a resolver
 * outage must not take every custom domain down. A new fqdn stays unserved until a check
 * passes.
 *
 * "The fleet" is, at the time of the verdict: this node's own listen and advertise addresses,
 * the HTTP, HTTPS and gossip addresses of every alive or suspect member (a suspect is
 * usually alive; dropping its addresses would flap routes on one lost probe), and the
 * operator's --fleet-addr list (public addresses behind NAT or a load balancer).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_dns.h"
#include "node/node_internal.h"

#define FQDN_INFLIGHT_MAX 16    /* lookups at once: a big table is checked in waves */
#define FQDN_MEMBERS_MAX 160    /* members read for the fleet set (3 addresses each) */
#define FQDN_ENTRIES_MAX 100000 /* fqdns tracked (more are not served) */

struct fqdn_entry {
    struct state_hash_node node;   /* in node_fqdn.table, keyed by host */
    struct fqdn_entry *due_next;   /* next in the queue of checks to start */
    struct fqdn_entry **due_prev;  /* what points at us in that queue; NULL: not queued */
    char host[STATE_FQDN_MAX + 1]; /* the fqdn */
    bool served;                   /* the last verdict said it points at the fleet */
    bool checked;                  /* some verdict was drawn */
    bool due;                      /* a check should start (queued, or once inflight ends) */
    bool inflight;                 /* a lookup is running */
    bool held;                     /* still held (mark during a sweep) */
    char why[160];                 /* reason of the last verdict or failure */
};

struct node_fqdn {
    struct node *node;                    /* owner */
    struct node_dns *dns;                 /* the resolver */
    uv_timer_t timer;                     /* the periodic check */
    bool timer_open;                      /* timer not closed yet */
    struct state_hash_table table;        /* every held fqdn, by host (fqdns come from gossip:
                                             keyed, at most FQDN_ENTRIES_MAX) */
    struct fqdn_entry *due, **due_tail;   /* entries due and not inflight, oldest first */
    bool pumping;                         /* fqdn_pump is on the stack */
    struct gossip_member *members;        /* scratch for the fleet set */
    struct node_ip fleet[NODE_FLEET_MAX]; /* scratch: the fleet set */
    uint64_t points, elsewhere, failed;   /* checks by result */
    uint64_t removed, restored;           /* route changes */
};

static bool fqdn_is(const struct state_hash_node *n, const void *host)
{
    return strcmp(STATE_HASH_ENTRY(n, struct fqdn_entry, node)->host, host) == 0;
}

static uint64_t fqdn_hash(const struct node_fqdn *f, const char *host)
{
    return state_hash_table_hash(&f->table, host, strlen(host));
}

static struct fqdn_entry *fqdn_find(const struct node_fqdn *f, const char *host)
{
    struct state_hash_node *n = state_hash_table_find(&f->table, fqdn_hash(f, host), fqdn_is, host);

    return n ? STATE_HASH_ENTRY(n, struct fqdn_entry, node) : NULL;
}

static struct fqdn_entry *fqdn_add(struct node_fqdn *f, const char *host)
{
    struct fqdn_entry *e = fqdn_find(f, host);

    if (e)
        return e;
    if (!(e = calloc(1, sizeof(*e))))
        return NULL;
    snprintf(e->host, sizeof(e->host), "%s", host);
    if (state_hash_table_insert(&f->table, &e->node, fqdn_hash(f, e->host)) != 0) {
        free(e);
        return NULL; /* FQDN_ENTRIES_MAX reached, or out of memory */
    }
    return e;
}

/* The check queue: fqdn_pump starts checks from its head, so it never scans the table. */
static void fqdn_due_unlink(struct node_fqdn *f, struct fqdn_entry *e)
{
    if (!e->due_prev)
        return;
    *e->due_prev = e->due_next;
    if (e->due_next)
        e->due_next->due_prev = e->due_prev;
    else
        f->due_tail = e->due_prev;
    e->due_prev = NULL;
    e->due_next = NULL;
}

/* Marks a check due; one running already is followed by another when it ends. */
static void fqdn_set_due(struct node_fqdn *f, struct fqdn_entry *e)
{
    e->due = true;
    if (e->inflight || e->due_prev)
        return;
    e->due_next = NULL;
    e->due_prev = f->due_tail;
    *f->due_tail = e;
    f->due_tail = &e->due_next;
}

static void fqdn_remove(struct node_fqdn *f, struct fqdn_entry *e)
{
    fqdn_due_unlink(f, e);
    state_hash_table_remove(&f->table, &e->node);
    free(e);
}

static void fleet_add(struct node_fqdn *f, size_t *n, const struct sockaddr_storage *ss)
{
    struct node_ip ip = {0};
    static const uint8_t zero[16];

    if (*n == NODE_FLEET_MAX)
        return;
    if (ss->ss_family == AF_INET) {
        ip.family = 4;
        memcpy(ip.ip, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        ip.family = 6;
        memcpy(ip.ip, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    } else {
        return;
    }
    if (memcmp(ip.ip, zero, ip.family == 4 ? 4 : 16) == 0)
        return; /* 0.0.0.0 and :: are listen wildcards, nobody's address */
    f->fleet[(*n)++] = ip;
}

static void fleet_add_gossip(struct node_fqdn *f, size_t *n, const struct gossip_addr *ga)
{
    struct sockaddr_storage ss = {0};

    if (ga->family == 4) {
        ss.ss_family = AF_INET;
        memcpy(&((struct sockaddr_in *)&ss)->sin_addr, ga->ip, 4);
    } else if (ga->family == 6) {
        ss.ss_family = AF_INET6;
        memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, ga->ip, 16);
    }
    fleet_add(f, n, &ss);
}

/* The fleet as this node sees it now (see the top of the file). */
static size_t fqdn_fleet(struct node_fqdn *f)
{
    const struct node_config *cfg = &f->node->cfg;
    size_t n = 0, m = 0;

    for (size_t i = 0; i < cfg->fleet_addr_count; i++)
        fleet_add(f, &n, &cfg->fleet_addr[i]);
    for (size_t i = 0; i < cfg->http_count; i++)
        fleet_add(f, &n, &cfg->http[i].ss);
    for (size_t i = 0; i < cfg->https_count; i++)
        fleet_add(f, &n, &cfg->https[i].ss);
    fleet_add(f, &n, &cfg->advertise.ss);
    if (f->node->gossip)
        m = gossip_members(f->node->gossip, f->members, FQDN_MEMBERS_MAX);
    for (size_t i = 0; i < m; i++) {
        const struct gossip_member *mb = &f->members[i];
        if (mb->state != GOSSIP_ALIVE && mb->state != GOSSIP_SUSPECT)
            continue;
        fleet_add_gossip(f, &n, &mb->meta.http);
        fleet_add_gossip(f, &n, &mb->meta.https);
        fleet_add_gossip(f, &n, &mb->addr);
    }
    return n;
}

static void fqdn_pump(struct node_fqdn *f);

static void fqdn_on_lookup(void *ctx, const char *host, bool ok, const struct node_dns_answer *ans,
                           const char *failure)
{
    struct node_fqdn *f = ctx;
    struct node *node = f->node;
    struct fqdn_entry *e = fqdn_find(f, host);
    char why[sizeof(e->why)];
    bool points;

    if (!e)
        goto next; /* released meanwhile */
    e->inflight = false;
    if (e->due)
        fqdn_set_due(f, e); /* marked due while this check ran */
    if (!ok) {
        f->failed++;
        if (strcmp(e->why, failure) != 0)
            node_log(NODE_LOG_WARN, "fqdn", "%s: DNS check failed, still %s: %s", host,
                     e->served ? "served" : "not served", failure);
        snprintf(e->why, sizeof(e->why), "%s", failure);
        goto next;
    }
    points = node_fqdn_decide(host, ans, node->cfg.domain, f->fleet, fqdn_fleet(f), why,
                              sizeof(why)) == NODE_FQDN_POINTS;
    if (points)
        f->points++;
    else
        f->elsewhere++;
    if (points != e->served) {
        e->served = points;
        if (points && e->checked)
            f->restored++;
        if (!points)
            f->removed++;
        node_event(node, "fqdn", "%s %s: %s", host,
                   points ? "served, DNS points at the fleet" : "no longer served", why);
        node_route_name(node, host);
    } else if (!e->checked && !points) {
        node_event(node, "fqdn", "%s not served until its DNS points at the fleet: %s", host, why);
    }
    e->checked = true;
    snprintf(e->why, sizeof(e->why), "%s", why);
next:
    fqdn_pump(f);
}

/* Starts due checks, oldest first, at most FQDN_INFLIGHT_MAX at once. */
static void fqdn_pump(struct node_fqdn *f)
{
    if (f->pumping || !f->dns)
        return;
    f->pumping = true;
    while (f->due && node_dns_pending(f->dns) < FQDN_INFLIGHT_MAX) {
        struct fqdn_entry *e = f->due;

        fqdn_due_unlink(f, e);
        e->due = false;
        e->inflight = true;
        /* the callback may run inside the call (and clears inflight itself) */
        if (node_dns_lookup(f->dns, e->host, fqdn_on_lookup, f) != 0)
            e->inflight = false;
    }
    f->pumping = false;
}

static int fqdn_mark(const struct state_name_view *view, void *ctx)
{
    struct node_fqdn *f = ctx;
    struct fqdn_entry *e;

    if (!view->held || view->record.kind != STATE_RECORD_FQDN)
        return 0;
    e = fqdn_add(f, view->name);
    if (e) {
        e->held = true;
        fqdn_set_due(f, e);
    }
    return 0;
}

/* Every --dns-interval: re-check every held fqdn, forget released ones. */
static void fqdn_sweep(uv_timer_t *t)
{
    struct node_fqdn *f = t->data;
    struct state_hash_node *n, *next;
    size_t bucket;

    STATE_HASH_TABLE_EACH (&f->table, n, next, bucket)
        STATE_HASH_ENTRY(n, struct fqdn_entry, node)->held = false;
    /* a fleet of 1M names and no fqdn walks nothing */
    if (state_names_fqdns(f->node->names) > 0)
        state_names_each_unordered(f->node->names, fqdn_mark, f);
    STATE_HASH_TABLE_EACH (&f->table, n, next, bucket) {
        struct fqdn_entry *e = STATE_HASH_ENTRY(n, struct fqdn_entry, node);

        if (!e->held && !e->inflight)
            fqdn_remove(f, e);
    }
    state_hash_table_shrink(&f->table);
    fqdn_pump(f);
}

int node_fqdn_start(struct node *node, char *err, size_t errlen)
{
    struct node_fqdn *f = calloc(1, sizeof(*f));

    if (!f || !(f->members = calloc(FQDN_MEMBERS_MAX, sizeof(*f->members)))) {
        free(f);
        snprintf(err, errlen, "fqdn: out of memory");
        return -1;
    }
    f->node = node;
    state_hash_table_init(&f->table, 64, FQDN_ENTRIES_MAX);
    f->due_tail = &f->due;
    f->dns = node_dns_new(&node->loop, node->cfg.dns_server_set ? node->cfg.dns_server.text : NULL,
                          err, errlen);
    if (!f->dns) {
        free(f->members);
        free(f);
        return -1;
    }
    uv_timer_init(&node->loop, &f->timer);
    f->timer.data = f;
    f->timer_open = true;
    node->fqdn = f;
    uv_timer_start(&f->timer, fqdn_sweep, 0, node->cfg.dns_interval_ms);
    return 0;
}

void node_fqdn_set_interval(struct node *node)
{
    struct node_fqdn *f = node->fqdn;

    if (f && f->timer_open)
        uv_timer_start(&f->timer, fqdn_sweep, node->cfg.dns_interval_ms, node->cfg.dns_interval_ms);
}

void node_fqdn_stop(struct node *node)
{
    struct node_fqdn *f = node->fqdn;

    if (!f)
        return;
    node_dns_close(f->dns);
    f->dns = NULL;
    if (f->timer_open) {
        uv_close((uv_handle_t *)&f->timer, NULL);
        f->timer_open = false;
    }
}

void node_fqdn_free(struct node *node)
{
    struct node_fqdn *f = node->fqdn;

    if (!f)
        return;
    state_hash_table_free_all(&f->table, offsetof(struct fqdn_entry, node));
    free(f->members);
    free(f);
    node->fqdn = NULL;
}

bool node_fqdn_served(const struct node *node, const char *fqdn)
{
    const struct fqdn_entry *e = node->fqdn ? fqdn_find(node->fqdn, fqdn) : NULL;
    return e && e->served;
}

void node_fqdn_check_soon(struct node *node, const char *fqdn)
{
    struct fqdn_entry *e;

    if (!node->fqdn)
        return; /* not started yet: the first sweep checks every held fqdn */
    e = fqdn_add(node->fqdn, fqdn);
    if (!e) {
        node_log(NODE_LOG_ERROR, "fqdn", "%s: not checked, too many fqdns (%d)", fqdn,
                 FQDN_ENTRIES_MAX);
        return;
    }
    fqdn_set_due(node->fqdn, e);
    fqdn_pump(node->fqdn);
}

void node_fqdn_json(const struct node *node, const char *fqdn, json_t *obj)
{
    const struct fqdn_entry *e = node->fqdn ? fqdn_find(node->fqdn, fqdn) : NULL;

    json_object_set_new(obj, "dns",
                        json_pack("{s:b, s:b, s:s}", "served", e && e->served, "checked",
                                  e && e->checked, "reason", e ? e->why : "not checked yet"));
}

void node_fqdn_metrics(const struct node *node, struct node_metrics *m)
{
    const struct node_fqdn *f = node->fqdn;
    struct state_hash_node *n, *next;
    size_t served = 0, bucket;

    if (!f)
        return;
    STATE_HASH_TABLE_EACH (&f->table, n, next, bucket)
        served += STATE_HASH_ENTRY(n, struct fqdn_entry, node)->served;
    node_metrics_family(m, "webgw_fqdns", "gauge",
                        "Held fqdn proxies, by whether their DNS points at the fleet.");
    node_metrics_printf(m, "webgw_fqdns{served=\"true\"} %zu\n", served);
    node_metrics_printf(m, "webgw_fqdns{served=\"false\"} %zu\n", f->table.count - served);
    node_metrics_family(m, "webgw_fqdn_dns_checks_total", "counter",
                        "DNS checks of fqdn proxies, by result.");
    node_metrics_printf(m, "webgw_fqdn_dns_checks_total{result=\"fleet\"} %llu\n",
                        (unsigned long long)f->points);
    node_metrics_printf(m, "webgw_fqdn_dns_checks_total{result=\"elsewhere\"} %llu\n",
                        (unsigned long long)f->elsewhere);
    node_metrics_printf(m, "webgw_fqdn_dns_checks_total{result=\"failed\"} %llu\n",
                        (unsigned long long)f->failed);
    node_metrics_family(m, "webgw_fqdn_route_changes_total", "counter",
                        "fqdn routes removed (DNS left the fleet) and restored (it came back).");
    node_metrics_printf(m, "webgw_fqdn_route_changes_total{change=\"removed\"} %llu\n",
                        (unsigned long long)f->removed);
    node_metrics_printf(m, "webgw_fqdn_route_changes_total{change=\"restored\"} %llu\n",
                        (unsigned long long)f->restored);
}
