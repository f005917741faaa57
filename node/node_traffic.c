/*
 * node_traffic.c - the node's side of the dashboard's traffic views: every NODE_SAMPLE_MS it
 * reads the proxy's per-name counters into the 15-minute history (traffic_history.c), signs a
 * summary of its busiest names (traffic_wire.c) and gossips it as item "traffic:ID"; it keeps
 * the other members' latest summaries and answers the API's two traffic views:
 *
 *   GET /api/v1/traffic/fleet    per name: fleet-wide counters and the per-node breakdown
 *   GET /api/v1/traffic/history  per name (this node): requests, errors, p99 per interval
 *
 * Trust and bounds (traffic_internal.h says why gossip): a summary is kept only when its
 * signature verifies with the witness key its member id announces, from a member alive or
 * suspect, for that id only; at most NODE_FLEET_NODES_MAX summaries of at most TRAFFIC_ITEM_MAX
 * bytes (256 KiB in all), each dropped when its member is gone. Refused summaries are counted,
 * not logged (a bad member could flood the log).
 *
 * Cost: a summary changes every interval while a name has traffic (its last-interval numbers
 * do) and is published only then: an unchanged one (an idle node) is never sent again, so a
 * quiet fleet sends nothing for the dashboard. A member publishes every change, so the last
 * summary of a member that is alive is its current one (push-pull repairs a change that gossip
 * lost); it is shown as stale while its member is suspect. (Republishing unchanged summaries
 * every 30 s cost each member n x 4 x ceil(log10(n+1)) item sends per 30 s: at 20 idle members
 * more bytes than the whole failure detector.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_internal.h"

struct fleet_entry {
    char id[GOSSIP_ID_MAX + 1]; /* member id */
    uint64_t seq;               /* its summary's version */
    uint64_t received_ms;       /* our loop clock when it arrived */
    size_t len;                 /* bytes */
    uint8_t bytes[];            /* the signed summary, as received */
};

struct node_traffic {
    struct traffic_history *history;                 /* this node's last 15 minutes */
    uv_timer_t timer;                                /* one sample per NODE_SAMPLE_MS */
    uint64_t seq;                                    /* our last summary's version */
    uint8_t own[TRAFFIC_ITEM_MAX];                   /* our last summary */
    size_t own_len;                                  /* its bytes (0: none yet) */
    struct fleet_entry *fleet[NODE_FLEET_NODES_MAX]; /* the other members' summaries */
    size_t nfleet;                                   /* entries in fleet */
    uint64_t refused;                                /* summaries refused (bad, forged) */
    struct traffic_summary scratch;                  /* the summary being built or read */
};

bool node_traffic_item_key(const char *key)
{
    return strncmp(key, TRAFFIC_ITEM_PREFIX, strlen(TRAFFIC_ITEM_PREFIX)) == 0;
}

/* ---- sampling --------------------------------------------------------------------------- */

struct sample_walk {
    struct node_traffic *t;    /* whose history */
    struct traffic_summary *s; /* the summary: the busiest names so far */
    uint64_t requests, errors; /* every name's sum */
    uint32_t names;            /* names seen */
};

static int sample_one(const struct proxy_name_stats *st, void *ctx)
{
    struct sample_walk *w = ctx;
    struct traffic_sample smp;
    struct traffic_name *slot = NULL;

    if (st->name[0] == '\0')
        return 0; /* requests for unknown names */
    smp = traffic_history_add(w->t->history, st);
    w->names++;
    w->requests += st->requests;
    w->errors += st->errors;
    /* keep the TRAFFIC_NAMES_MAX busiest: a free entry, or the least busy if this one beats it */
    if (w->s->count < TRAFFIC_NAMES_MAX) {
        slot = &w->s->names[w->s->count++];
    } else {
        for (size_t i = 0; i < w->s->count; i++)
            if (slot == NULL || w->s->names[i].requests < slot->requests)
                slot = &w->s->names[i];
        if (slot->requests >= st->requests)
            return 0;
    }
    snprintf(slot->name, sizeof(slot->name), "%s", st->name);
    slot->requests = st->requests;
    slot->errors = st->errors;
    slot->bytes_in = st->bytes_in;
    slot->bytes_out = st->bytes_out;
    slot->recent_requests = smp.requests;
    slot->recent_errors = smp.errors;
    slot->p99 = smp.p99;
    return 0;
}

static int by_requests(const void *a, const void *b)
{
    const struct traffic_name *x = a, *y = b;

    return x->requests < y->requests ? 1 : x->requests > y->requests ? -1 : 0;
}

/* Whether `id` is a member we hear from (alive or suspect); its witness key into key. */
static bool member_current(const struct node *node, const char *id,
                           uint8_t key[GOSSIP_WITNESS_KEY_LEN], char *name, size_t cap)
{
    struct gossip_member m;

    if (!node->gossip || gossip_member_get(node->gossip, id, &m) != 0 ||
        (m.state != GOSSIP_ALIVE && m.state != GOSSIP_SUSPECT))
        return false;
    if (key)
        memcpy(key, m.meta.witness, GOSSIP_WITNESS_KEY_LEN);
    if (name)
        snprintf(name, cap, "%s", m.meta.name[0] ? m.meta.name : id);
    return true;
}

/* A suspect member may be gone: what it last said may no longer hold. */
static bool member_suspect(struct node *node, const char *id)
{
    struct gossip_member m;

    return node->gossip && gossip_member_get(node->gossip, id, &m) == 0 &&
           m.state == GOSSIP_SUSPECT;
}

static void fleet_remove(struct node_traffic *t, size_t i)
{
    free(t->fleet[i]);
    t->fleet[i] = t->fleet[--t->nfleet];
}

static void node_traffic_tick(uv_timer_t *timer)
{
    struct node *node = timer->data;
    struct node_traffic *t = node->traffic;
    struct traffic_summary *s = &t->scratch;
    struct sample_walk w = {.t = t, .s = s};
    uint64_t wall = state_now_ms();
    char key[GOSSIP_KEY_MAX + 1];
    int len;

    memset(s, 0, sizeof(*s));
    traffic_history_begin(t->history, wall);
    if (node->proxy)
        proxy_stats_each(node->proxy, sample_one, &w);
    traffic_history_end(t->history);

    snprintf(s->id, sizeof(s->id), "%s", node->id);
    s->seq = t->seq;
    s->sample_ms = NODE_SAMPLE_MS;
    s->names_total = w.names;
    qsort(s->names, s->count, sizeof(s->names[0]), by_requests);
    for (size_t i = 0; i < s->count; i++) {
        w.requests -= s->names[i].requests;
        w.errors -= s->names[i].errors;
    }
    s->others_requests = w.requests;
    s->others_errors = w.errors;
    /* unchanged (same numbers under the last version, Ed25519 signatures are deterministic):
     * keep the last one, which every member already has */
    uint8_t same[TRAFFIC_ITEM_MAX];
    len = node->identity ? traffic_summary_encode(s, node->identity, same, sizeof(same)) : -1;
    if (len > 0 && (size_t)len == t->own_len && memcmp(same, t->own, t->own_len) == 0)
        len = -1;
    else if (len > 0) {
        /* versions only go up, across restarts too: the wall clock, or one more than the last */
        t->seq = wall > t->seq ? wall : t->seq + 1;
        s->seq = t->seq;
        len = traffic_summary_encode(s, node->identity, t->own, sizeof(t->own));
    }
    if (len > 0) {
        t->own_len = (size_t)len;
        snprintf(key, sizeof(key), TRAFFIC_ITEM_PREFIX "%s", node->id);
        if (node->gossip && !node->gossip_lone)
            gossip_broadcast(node->gossip, key, t->seq, t->own, t->own_len);
    }
    /* forget summaries of members gone */
    for (size_t i = 0; i < t->nfleet;) {
        if (!member_current(node, t->fleet[i]->id, NULL, NULL, 0))
            fleet_remove(t, i);
        else
            i++;
    }
}

int node_traffic_start(struct node *node, char *err, size_t errlen)
{
    struct node_traffic *t = calloc(1, sizeof(*t));

    if (t == NULL || (t->history = traffic_history_new()) == NULL) {
        free(t);
        snprintf(err, errlen, "traffic history: out of memory");
        return -1;
    }
    node->traffic = t;
    uv_timer_init(&node->loop, &t->timer);
    t->timer.data = node;
    /* a first reading at once: the first interval counts from the start */
    uv_timer_start(&t->timer, node_traffic_tick, 0, NODE_SAMPLE_MS);
    return 0;
}

void node_traffic_stop(struct node *node)
{
    if (node->traffic)
        uv_timer_stop(&node->traffic->timer);
}

void node_traffic_free(struct node *node)
{
    struct node_traffic *t = node->traffic;

    if (t == NULL)
        return;
    while (t->nfleet)
        fleet_remove(t, 0);
    traffic_history_free(t->history);
    free(t);
    node->traffic = NULL;
}

/* ---- gossip items ----------------------------------------------------------------------- */

int node_traffic_on_item(struct node *node, const char *key, uint64_t version, const uint8_t *bytes,
                         size_t len)
{
    struct node_traffic *t = node->traffic;
    const char *id = key + strlen(TRAFFIC_ITEM_PREFIX);
    uint8_t pub[GOSSIP_WITNESS_KEY_LEN];
    static const uint8_t none[GOSSIP_WITNESS_KEY_LEN];
    char err[STATE_ERR_MAX];
    size_t i;

    if (t == NULL || strcmp(id, node->id) == 0)
        return 0; /* we are the authority on our own numbers */
    if (!member_current(node, id, pub, NULL, 0) || memcmp(pub, none, sizeof(pub)) == 0)
        return 0; /* not (or no longer) a member we hear from: nothing to label it with */
    if (traffic_summary_decode(bytes, len, &t->scratch, err, sizeof(err)) != 0 ||
        strcmp(t->scratch.id, id) != 0 || t->scratch.seq != version ||
        traffic_summary_verify(bytes, len, pub, err, sizeof(err)) != 0) {
        t->refused++;
        return -1;
    }
    for (i = 0; i < t->nfleet; i++)
        if (strcmp(t->fleet[i]->id, id) == 0)
            break;
    if (i < t->nfleet && t->fleet[i]->seq >= version)
        return 0;
    if (i == t->nfleet && t->nfleet == NODE_FLEET_NODES_MAX) {
        t->refused++;
        return 0;
    }
    struct fleet_entry *e = malloc(sizeof(*e) + len);
    if (e == NULL)
        return 0;
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->seq = version;
    e->received_ms = uv_now(&node->loop);
    e->len = len;
    memcpy(e->bytes, bytes, len);
    if (i < t->nfleet)
        free(t->fleet[i]);
    else
        t->nfleet++;
    t->fleet[i] = e;
    return 1;
}

int node_traffic_each_item(struct node *node, gossip_item_visit_fn visit, void *visit_ctx)
{
    struct node_traffic *t = node->traffic;
    char key[GOSSIP_KEY_MAX + 1];
    int rc = 0;

    if (t == NULL)
        return 0;
    if (t->own_len) {
        snprintf(key, sizeof(key), TRAFFIC_ITEM_PREFIX "%s", node->id);
        rc = visit(visit_ctx, key, t->seq, 0);
    }
    for (size_t i = 0; i < t->nfleet && rc == 0; i++) {
        snprintf(key, sizeof(key), TRAFFIC_ITEM_PREFIX "%s", t->fleet[i]->id);
        rc = visit(visit_ctx, key, t->fleet[i]->seq, 0);
    }
    return rc;
}

int node_traffic_get_item(struct node *node, const char *key, uint64_t *version, uint8_t *buf,
                          size_t cap)
{
    struct node_traffic *t = node->traffic;
    const char *id = key + strlen(TRAFFIC_ITEM_PREFIX);
    const uint8_t *bytes = NULL;
    size_t len = 0;

    if (t == NULL)
        return GOSSIP_ENOTFOUND;
    if (strcmp(id, node->id) == 0 && t->own_len) {
        bytes = t->own;
        len = t->own_len;
        *version = t->seq;
    }
    for (size_t i = 0; bytes == NULL && i < t->nfleet; i++) {
        if (strcmp(t->fleet[i]->id, id) == 0) {
            bytes = t->fleet[i]->bytes;
            len = t->fleet[i]->len;
            *version = t->fleet[i]->seq;
        }
    }
    if (bytes == NULL)
        return GOSSIP_ENOTFOUND;
    if (len > cap)
        return GOSSIP_ETOOBIG;
    memcpy(buf, bytes, len);
    return (int)len;
}

/* ---- views ------------------------------------------------------------------------------ */

static double per_second(uint64_t n, uint32_t sample_ms)
{
    return sample_ms ? (double)n * 1000.0 / sample_ms : 0.0;
}

/* Adds one node's numbers for one name to the fleet row of that name. */
static void fleet_add(json_t *rows, const char *id, const char *node_name, const char *name,
                      const struct traffic_name *n, uint32_t sample_ms)
{
    json_t *row = json_object_get(rows, name);
    long p99 = traffic_p99_ms(n->p99);

    if (row == NULL) {
        row = json_pack("{s:s, s:I, s:I, s:I, s:I, s:f, s:[]}", "name", name, "requests",
                        (json_int_t)0, "errors", (json_int_t)0, "bytes_in", (json_int_t)0,
                        "bytes_out", (json_int_t)0, "rate", 0.0, "nodes");
        json_object_set_new(rows, name, row);
    }
    const char *sum[] = {"requests", "errors", "bytes_in", "bytes_out"};
    const uint64_t add[] = {n->requests, n->errors, n->bytes_in, n->bytes_out};
    for (int k = 0; k < 4; k++)
        json_object_set_new(
            row, sum[k],
            json_integer(json_integer_value(json_object_get(row, sum[k])) + (json_int_t)add[k]));
    double rate = per_second(n->recent_requests, sample_ms);
    json_object_set_new(row, "rate",
                        json_real(json_real_value(json_object_get(row, "rate")) + rate));
    json_array_append_new(json_object_get(row, "nodes"),
                          json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:f, s:o}", "id", id, "node",
                                    node_name, "requests", (json_int_t)n->requests, "errors",
                                    (json_int_t)n->errors, "bytes_in", (json_int_t)n->bytes_in,
                                    "bytes_out", (json_int_t)n->bytes_out, "rate", rate, "p99_ms",
                                    p99 < 0 ? json_null() : json_integer(p99)));
}

/* One node's summary into the rows and its line into nodes. */
static void fleet_add_summary(json_t *rows, json_t *nodes, const struct traffic_summary *s,
                              const char *node_name, bool self, uint64_t age_ms, bool stale)
{
    for (size_t i = 0; i < s->count; i++)
        fleet_add(rows, s->id, node_name, s->names[i].name, &s->names[i], s->sample_ms);
    json_array_append_new(
        nodes, json_pack("{s:s, s:s, s:b, s:I, s:b, s:I, s:I, s:I, s:I}", "id", s->id, "name",
                         node_name, "self", self, "age_ms", (json_int_t)age_ms, "stale", stale,
                         "names_total", (json_int_t)s->names_total, "names_listed",
                         (json_int_t)s->count, "others_requests", (json_int_t)s->others_requests,
                         "others_errors", (json_int_t)s->others_errors));
}

struct self_walk {
    json_t *rows;                    /* fleet rows by name */
    json_t *index;                   /* name -> entry of our last summary */
    const struct traffic_summary *s; /* that summary (the last interval's rate and p99) */
    const char *id, *node_name;      /* us */
    uint32_t names;                  /* names counted */
};

static int self_one(const struct proxy_name_stats *st, void *ctx)
{
    struct self_walk *w = ctx;
    struct traffic_name n = {0};
    json_t *i;

    if (st->name[0] == '\0')
        return 0;
    w->names++;
    n.requests = st->requests;
    n.errors = st->errors;
    n.bytes_in = st->bytes_in;
    n.bytes_out = st->bytes_out;
    if ((i = json_object_get(w->index, st->name)) != NULL) {
        const struct traffic_name *last = &w->s->names[json_integer_value(i)];
        n.recent_requests = last->recent_requests;
        n.recent_errors = last->recent_errors;
        n.p99 = last->p99;
    }
    fleet_add(w->rows, w->id, w->node_name, st->name, &n, NODE_SAMPLE_MS);
    return 0;
}

/* This node's line: its live counters (not its last summary, up to NODE_SAMPLE_MS old), with
 * the last interval's rate and p99 from that summary. Every name is listed. */
static void fleet_add_self(struct node *node, json_t *rows, json_t *nodes)
{
    struct node_traffic *t = node->traffic;
    struct self_walk w = {.rows = rows,
                          .index = json_object(),
                          .s = &t->scratch,
                          .id = node->id,
                          .node_name = node->cfg.node_name};
    char err[STATE_ERR_MAX];

    if (t->own_len == 0 ||
        traffic_summary_decode(t->own, t->own_len, &t->scratch, err, sizeof(err)) != 0)
        t->scratch.count = 0;
    for (size_t i = 0; i < t->scratch.count; i++)
        json_object_set_new(w.index, t->scratch.names[i].name, json_integer((json_int_t)i));
    if (node->proxy)
        proxy_stats_each(node->proxy, self_one, &w);
    json_decref(w.index);
    json_array_append_new(
        nodes, json_pack("{s:s, s:s, s:b, s:I, s:b, s:I, s:I, s:I, s:I}", "id", node->id, "name",
                         node->cfg.node_name, "self", true, "age_ms", (json_int_t)0, "stale", false,
                         "names_total", (json_int_t)w.names, "names_listed", (json_int_t)w.names,
                         "others_requests", (json_int_t)0, "others_errors", (json_int_t)0));
}

json_t *node_json_traffic_fleet(struct node *node)
{
    struct node_traffic *t = node->traffic;
    json_t *rows = json_object(), *nodes = json_array(), *names = json_array(), *row;
    uint64_t now = uv_now(&node->loop);
    char err[STATE_ERR_MAX], name[GOSSIP_ID_MAX + 1]; /* a display name, or the id */
    const char *k;

    if (t)
        fleet_add_self(node, rows, nodes);
    for (size_t i = 0; t && i < t->nfleet; i++) {
        const struct fleet_entry *e = t->fleet[i];
        if (!member_current(node, e->id, NULL, name, sizeof(name)) ||
            traffic_summary_decode(e->bytes, e->len, &t->scratch, err, sizeof(err)) != 0)
            continue;
        fleet_add_summary(rows, nodes, &t->scratch, name, false, now - e->received_ms,
                          member_suspect(node, e->id));
    }
    json_object_foreach(rows, k, row)
    {
        json_array_append(names, row);
    }
    json_decref(rows);
    return json_pack("{s:i, s:o, s:o, s:I}", "sample_ms", NODE_SAMPLE_MS, "nodes", nodes, "names",
                     names, "refused", (json_int_t)(t ? t->refused : 0));
}

static void history_one(void *ctx, const char *name, const struct traffic_sample *samples,
                        size_t count)
{
    json_t *req = json_array(), *errs = json_array(), *p99 = json_array();

    for (size_t i = 0; i < count; i++) {
        long ms = traffic_p99_ms(samples[i].p99);
        json_array_append_new(req, json_integer(samples[i].requests));
        json_array_append_new(errs, json_integer(samples[i].errors));
        json_array_append_new(p99, ms < 0 ? json_null() : json_integer(ms));
    }
    json_array_append_new(ctx, json_pack("{s:s, s:o, s:o, s:o}", "name", name, "requests", req,
                                         "errors", errs, "p99_ms", p99));
}

json_t *node_json_traffic_history(const struct node *node)
{
    const struct node_traffic *t = node->traffic;
    json_t *names = json_array();

    if (t)
        traffic_history_each(t->history, history_one, names);
    return json_pack("{s:i, s:i, s:i, s:I, s:I, s:o}", "sample_ms", NODE_SAMPLE_MS, "samples_max",
                     NODE_HISTORY_SAMPLES, "names_max", NODE_HISTORY_NAMES, "end_ms",
                     (json_int_t)(t ? traffic_history_end_ms(t->history) : 0), "refused",
                     (json_int_t)(t ? traffic_history_refused(t->history) : 0), "names", names);
}

void node_traffic_metrics(const struct node *node, struct node_metrics *m)
{
    const struct node_traffic *t = node->traffic;

    if (t == NULL)
        return;
    node_metrics_family(m, "webgw_traffic_summaries", "gauge",
                        "Other members' traffic summaries kept for the fleet view.");
    node_metrics_printf(m, "webgw_traffic_summaries %zu\n", t->nfleet);
    node_metrics_family(m, "webgw_traffic_summaries_refused_total", "counter",
                        "Traffic summaries refused: malformed, not signed by their member, "
                        "or no room.");
    node_metrics_printf(m, "webgw_traffic_summaries_refused_total %llu\n",
                        (unsigned long long)t->refused);
    node_metrics_family(m, "webgw_traffic_history_names", "gauge",
                        "Names with a 15-minute history on this node (at most 64).");
    node_metrics_printf(m, "webgw_traffic_history_names %zu\n", traffic_history_names(t->history));
    node_metrics_family(m, "webgw_traffic_history_refused_total", "counter",
                        "Names that found no history slot.");
    node_metrics_printf(m, "webgw_traffic_history_refused_total %llu\n",
                        (unsigned long long)traffic_history_refused(t->history));
}
