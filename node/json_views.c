/*
 * json_views.c - the JSON shapes of the API (PRODUCT.md names the fields): names, members,
 * backends, events. webgwctl --json prints exactly these, so they are defined once, here.
 */
#include <string.h>

#include "node/node_internal.h"

json_t *node_json_name(const struct state_name_view *view)
{
    const struct state_record *rec = &view->record;
    char owner[STATE_OWNER_HEX_LEN + 1];
    json_t *obj, *backends;

    state_owner_format(rec->owner, owner);
    backends = json_array();
    for (unsigned i = 0; i < rec->backend_count; i++) {
        char text[64];
        state_backend_format(&rec->backends[i], rec->tls_passthrough, text);
        json_array_append_new(backends, json_string(text));
    }
    obj = json_object();
    json_object_set_new(obj, "name", json_string(view->name));
    json_object_set_new(obj, "owner", json_string(owner));
    json_object_set_new(obj, "version", json_integer((json_int_t)rec->version));
    json_object_set_new(obj, "backends", backends);
    json_object_set_new(obj, "tls_passthrough", json_boolean(rec->tls_passthrough));
    json_object_set_new(obj, "kind", json_string(state_record_kind_name(rec->kind)));
    json_object_set_new(obj, "held", json_boolean(view->held));
    json_object_set_new(obj, "reserved_at", json_integer((json_int_t)rec->reserved_at_ms));
    json_object_set_new(obj, "issued_at", json_integer((json_int_t)rec->issued_at_ms));
    json_object_set_new(obj, "contenders", json_integer(view->contenders));
    /* the claim time that decides (README "Trust model"): the fleet's witnesses, not the
     * owner's reserved_at */
    json_object_set_new(obj, "claimed_at", json_integer((json_int_t)view->claimed_at_ms));
    json_object_set_new(obj, "witnesses", json_integer(view->witnesses));
    json_object_set_new(obj, "pending", json_boolean(view->pending));
    return obj;
}

static int json_names_one(const struct state_name_view *view, void *ctx)
{
    if (view->held)
        json_array_append_new(ctx, node_json_name(view));
    return 0;
}

json_t *node_json_names(const struct state_names *names)
{
    json_t *arr = json_array();

    state_names_each(names, json_names_one, arr);
    return arr;
}

json_t *node_json_events(const struct node *node)
{
    json_t *arr = json_array();

    /* newest first */
    for (size_t i = 0; i < node->events_count; i++) {
        size_t idx = (node->events_next + NODE_EVENTS_MAX - 1 - i) % NODE_EVENTS_MAX;
        const struct node_event *ev = &node->events[idx];
        json_array_append_new(arr, json_pack("{s:I, s:s, s:s}", "ts", (json_int_t)ev->ts_ms, "kind",
                                             ev->kind, "text", ev->text));
    }
    return arr;
}
