/*
 * api.c - the API's routes (PRODUCT.md): which handler answers which method and path, and the
 * admin operations behind a bearer token.
 *
 *   GET  /healthz                 GET /api/v1/members          GET /api/v1/names
 *   GET  /api/v1/names/NAME       POST /api/v1/records         GET /api/v1/backends
 *   GET  /api/v1/events           GET /api/v1/traffic          GET /metrics
 *   GET  /api/v1/traffic/fleet    GET /api/v1/traffic/history
 *   GET  /dashboard
 *   POST /api/v1/admin/drain      graceful stop, as SIGTERM               (bearer token)
 *   POST /api/v1/admin/leave      leave the cluster, keep serving          (bearer token)
 *   GET  /api/v1/admin/keys       gossip key fingerprints                  (bearer token)
 *   POST /api/v1/admin/keys       install / use / remove / replace keys    (node_keys.c)
 *
 * Every error is {"error": "..."} with its status. Handlers run on the control loop and answer
 * before returning.
 */
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/node_internal.h"

static void api_json(struct node_httpd_conn *conn, int status, json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);

    json_decref(body);
    if (!text) {
        node_httpd_error(conn, 500, "out of memory");
        return;
    }
    node_httpd_respond(conn, status, "application/json", text, strlen(text), "");
    free(text);
}

static bool api_method(struct node_httpd_conn *conn, const struct node_httpd_request *req,
                       const char *want)
{
    if (strcmp(req->method, want) == 0)
        return true;
    node_httpd_respond(conn, 405, "application/json", "{\"error\": \"method not allowed\"}\n",
                       strlen("{\"error\": \"method not allowed\"}\n"),
                       strcmp(want, "GET") == 0 ? "Allow: GET\r\n" : "Allow: POST\r\n");
    return false;
}

static void api_healthz(struct node *node, struct node_httpd_conn *conn)
{
    const struct sockaddr_storage *http = &node->cfg.http[0].ss;
    unsigned http_port =
        ntohs(http->ss_family == AF_INET ? ((const struct sockaddr_in *)http)->sin_port
                                         : ((const struct sockaddr_in6 *)http)->sin6_port);
    json_t *body =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:I, s:I, s:I, s:s, s:i}", "status",
                  node->draining ? "draining" : "ok", "node", node->cfg.node_name, "id", node->id,
                  "version", WEBGW_VERSION, "domain", node->cfg.domain, "http_port", (int)http_port,
                  "uptime_s", (json_int_t)((state_now_ms() - node->started_ms) / 1000), "names",
                  (json_int_t)state_names_count(node->names), "routes",
                  (json_int_t)state_routes_count(node->routes), "gossip", node_gossip_mode(node),
                  "witnesses_needed", (int)node_witness_need(node));
    /* who may witness: the operators' roster (--fleet-keys) or every announced key */
    json_object_set_new(body, "fleet", json_string(node_witness_fleet_mode(node)));
    json_object_set_new(body, "fleet_keys", json_integer((json_int_t)node->roster_count));
    /* things that work but likely not as the operator meant; status stays "ok" */
    {
        json_t *warnings = json_array();
        if (node_tls_warning(node))
            json_array_append_new(warnings, json_string(node_tls_warning(node)));
        if (strcmp(node_gossip_mode(node), "insecure") == 0)
            json_array_append_new(warnings,
                                  json_string("--gossip-insecure: gossip is plain text and anyone "
                                              "who reaches it can join and inject records"));
        if (node->cfg.fleet_open)
            json_array_append_new(warnings,
                                  json_string("--fleet-open: every key a member announces may "
                                              "witness; one holder of the cluster key can run "
                                              "extra identities and take names"));
        json_object_set_new(body, "warnings", warnings);
    }
    api_json(conn, node->draining ? 503 : 200, body);
}

static void api_name(struct node *node, struct node_httpd_conn *conn, const char *raw)
{
    struct state_name_view view;
    char key[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX + STATE_FQDN_MAX];

    /* a label or a custom domain: normalize as whichever it is */
    if ((strchr(raw, '.') ? state_fqdn_normalize(raw, key, err, sizeof(err))
                          : state_name_normalize(raw, key, err, sizeof(err))) != 0) {
        node_httpd_error(conn, 400, err);
        return;
    }
    if (state_names_get(node->names, key, &view) != 0) {
        snprintf(err, sizeof(err), "no such name: %s", key);
        node_httpd_error(conn, 404, err);
        return;
    }
    if (!view.held) {
        json_t *body = node_json_name(&view);
        snprintf(err, sizeof(err), "%s was released", key);
        json_object_set_new(body, "error", json_string(err));
        api_json(conn, 404, body);
        return;
    }
    {
        json_t *body = node_json_name(&view);
        if (view.record.kind == STATE_RECORD_FQDN)
            node_fqdn_json(node, key, body);
        api_json(conn, 200, body);
    }
}

/* Body forms: the encoded record itself (application/msgpack, application/octet-stream), or
 * JSON {"record": "<base64>"} for clients that only speak JSON. */
static void api_records(struct node *node, struct node_httpd_conn *conn,
                        const struct node_httpd_request *req)
{
    struct node_submit_result res;
    uint8_t decoded[STATE_RECORD_MAX_BYTES + 3];
    const uint8_t *rec = req->body;
    size_t len = req->body_len;

    if (strncasecmp(req->content_type, "application/json", 16) == 0) {
        json_error_t jerr;
        json_t *doc = json_loadb((const char *)req->body, req->body_len, 0, &jerr);
        const char *b64 = doc ? json_string_value(json_object_get(doc, "record")) : NULL;
        size_t b64len = b64 ? strlen(b64) : 0;
        int n;

        if (!b64) {
            json_decref(doc);
            node_httpd_error(conn, 400, "expected JSON {\"record\": \"<base64>\"}");
            node->rec_stats.invalid++;
            return;
        }
        if (b64len / 4 * 3 > sizeof(decoded)) {
            json_decref(doc);
            node_httpd_error(conn, 413, "record larger than the limit");
            node->rec_stats.too_big++;
            return;
        }
        n = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)b64len);
        if (n < 0 || b64len % 4 != 0) {
            json_decref(doc);
            node_httpd_error(conn, 400, "record is not valid base64");
            node->rec_stats.invalid++;
            return;
        }
        /* EVP_DecodeBlock counts padding as zero bytes */
        if (b64len >= 1 && b64[b64len - 1] == '=')
            n--;
        if (b64len >= 2 && b64[b64len - 2] == '=')
            n--;
        json_decref(doc);
        rec = decoded;
        len = (size_t)n;
    } else if (req->content_type[0] != '\0' &&
               strncasecmp(req->content_type, "application/msgpack", 19) != 0 &&
               strncasecmp(req->content_type, "application/octet-stream", 24) != 0) {
        node_httpd_error(conn, 415,
                         "send application/msgpack (the signed record) or application/json");
        return;
    }
    node_record_submit(node, rec, len, &res);
    if (res.status == 202) {
        api_json(conn, 202, json_pack("{s:s, s:b}", "status", res.message, "changed", res.changed));
        return;
    }
    node_httpd_error(conn, res.status, res.message);
}

/* Admin operations: refused unless a token file is configured and the bearer matches. */
static bool api_admin_allowed(struct node *node, struct node_httpd_conn *conn,
                              const struct node_httpd_request *req)
{
    size_t want = strlen(node->admin_token);
    const char *got = req->authorization;

    if (want == 0) {
        node_httpd_error(conn, 403, "admin API disabled: start webgw with --admin-token-file");
        return false;
    }
    if (strncasecmp(got, "Bearer ", 7) != 0 || strlen(got + 7) != want ||
        CRYPTO_memcmp(got + 7, node->admin_token, want) != 0) {
        node_httpd_respond(conn, 401, "application/json",
                           "{\"error\": \"admin operation needs Authorization: Bearer TOKEN\"}\n",
                           strlen("{\"error\": \"admin operation needs Authorization: Bearer "
                                  "TOKEN\"}\n"),
                           "WWW-Authenticate: Bearer\r\n");
        return false;
    }
    return true;
}

void node_api_handle(void *ctx, struct node_httpd_conn *conn, const struct node_httpd_request *req)
{
    struct node *node = ctx;
    const char *p = req->path;

    if (strcmp(p, "/healthz") == 0) {
        if (api_method(conn, req, "GET"))
            api_healthz(node, conn);
    } else if (strcmp(p, "/api/v1/members") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_members(node));
    } else if (strcmp(p, "/api/v1/names") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_names(node->names));
    } else if (strncmp(p, "/api/v1/names/", 14) == 0 && p[14] != '\0') {
        if (api_method(conn, req, "GET"))
            api_name(node, conn, p + 14);
    } else if (strcmp(p, "/api/v1/records") == 0) {
        if (api_method(conn, req, "POST"))
            api_records(node, conn, req);
    } else if (strcmp(p, "/api/v1/backends") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_backends(node));
    } else if (strcmp(p, "/api/v1/traffic") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_traffic(node));
    } else if (strcmp(p, "/api/v1/traffic/fleet") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_traffic_fleet(node));
    } else if (strcmp(p, "/api/v1/traffic/history") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_traffic_history(node));
    } else if (strcmp(p, "/api/v1/events") == 0) {
        if (api_method(conn, req, "GET"))
            api_json(conn, 200, node_json_events(node));
    } else if (strcmp(p, "/metrics") == 0) {
        if (api_method(conn, req, "GET")) {
            size_t len;
            char *text = node_metrics_render(node, &len);
            if (!text) {
                node_httpd_error(conn, 500, "out of memory");
                return;
            }
            node_httpd_respond(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len,
                               "");
            free(text);
        }
    } else if (strcmp(p, "/dashboard") == 0 || strcmp(p, "/") == 0) {
        if (api_method(conn, req, "GET"))
            node_httpd_respond(conn, 200, "text/html; charset=utf-8", node_dashboard_html,
                               node_dashboard_html_len,
                               "Content-Security-Policy: default-src 'self'; "
                               "script-src 'unsafe-inline'; style-src 'unsafe-inline'\r\n");
    } else if (strcmp(p, "/api/v1/admin/drain") == 0) {
        if (api_method(conn, req, "POST") && api_admin_allowed(node, conn, req)) {
            api_json(conn, 202, json_pack("{s:s}", "status", "draining"));
            node_drain(node, "admin API");
        }
    } else if (strcmp(p, "/api/v1/admin/leave") == 0) {
        if (api_method(conn, req, "POST") && api_admin_allowed(node, conn, req)) {
            /* the fleet stops counting on this node (no probes, no health duty); it keeps
             * serving whoever still reaches it until it is stopped */
            node_gossip_leave(node);
            node_event(node, "node", "left the cluster (admin API); still serving until stopped");
            api_json(conn, 202, json_pack("{s:s}", "status", "left"));
        }
    } else if (strcmp(p, "/api/v1/admin/keys") == 0) {
        if (api_admin_allowed(node, conn, req))
            node_api_keys(node, conn, req);
    } else {
        node_httpd_error(conn, 404, "no such endpoint (see /api/v1/names, /healthz, /dashboard)");
    }
}
