/*
 * node.c - the daemon's life cycle: start (store, routes, API, proxy, gossip), the control
 * loop, signals, housekeeping, and the graceful stop.
 *
 * Threads: this loop owns the state (names, store, route writer), gossip and the API; proxy
 * workers only read the route table under RCU. A stop runs in this order so that no
 * acknowledged work is lost: leave the cluster (peers stop sending us traffic), stop
 * accepting, let in-flight requests finish up to --drain-timeout, flush the store, exit 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "node/access_log.h"
#include "node/node_internal.h"

#define NODE_HOUSEKEEPING_MS 5000 /* compaction / tombstone check period */

/* ---- identity and addresses ------------------------------------------------------------ */

/* The node id survives restarts (data-dir/node-id) so members are not confused with new ones. */
static int node_load_id(struct node *node, char *err, size_t errlen)
{
    char path[NODE_PATH_MAX + 16];
    unsigned char raw[NODE_ID_HEX_LEN / 2];
    FILE *f;

    snprintf(path, sizeof(path), "%s/node-id", node->cfg.data_dir);
    f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%32s", node->id) == 1 && strlen(node->id) == NODE_ID_HEX_LEN &&
                 strspn(node->id, "0123456789abcdef") == NODE_ID_HEX_LEN;
        fclose(f);
        if (ok)
            return 0;
        node_log(NODE_LOG_WARN, "node", "%s is not a node id; making a new one", path);
    }
    if (RAND_bytes(raw, sizeof(raw)) != 1) {
        snprintf(err, errlen, "node id: no randomness");
        return -1;
    }
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(node->id + 2 * i, 3, "%02x", raw[i]);
    f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", node->id) < 0 || fclose(f) != 0) {
        snprintf(err, errlen, "data-dir: cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void node_own_add(struct node *node, const struct sockaddr *sa, uint16_t port)
{
    struct state_backend *be;

    if (node->own_addr_count == NODE_OWN_ADDRS_MAX)
        return;
    be = &node->own_addrs[node->own_addr_count];
    memset(be, 0, sizeof(*be));
    if (sa->sa_family == AF_INET) {
        be->family = 4;
        memcpy(be->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        be->family = 6;
        memcpy(be->addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        return;
    }
    /* a public address of ours is off limits entirely; a loopback one only on our ports, so
     * demos can run backends on 127.0.0.x beside the gateway (an unspecified one with a port
     * means every loopback address on that port to the state layer) */
    {
        static const uint8_t zero[16], one6[16] = {[15] = 1};
        bool loopback = (be->family == 4 && be->addr[0] == 127) ||
                        (be->family == 6 && memcmp(be->addr, one6, 16) == 0);
        bool unspecified = memcmp(be->addr, zero, be->family == 4 ? 4 : 16) == 0;
        be->port = loopback || unspecified ? port : 0;
    }
    /* several listeners share the interface addresses: keep one entry each */
    for (size_t i = 0; i < node->own_addr_count; i++)
        if (memcmp(&node->own_addrs[i], be, sizeof(*be)) == 0)
            return;
    node->own_addr_count++;
}

static bool node_addr_unspecified(const struct sockaddr_storage *ss)
{
    static const uint8_t zero[16];

    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == 0;
    return memcmp(&((const struct sockaddr_in6 *)ss)->sin6_addr, zero, 16) == 0;
}

/* Our addresses, for loop prevention: every listener, and every interface address when a
 * listener is bound to the unspecified address. */
static void node_collect_own_addrs(struct node *node)
{
    const struct node_addr *ls[2 * NODE_LISTEN_MAX + 3];
    size_t nls = 0;
    uv_interface_address_t *ifs = NULL;
    int nifs = 0;

    for (size_t i = 0; i < node->cfg.http_count; i++)
        ls[nls++] = &node->cfg.http[i];
    for (size_t i = 0; i < node->cfg.https_count; i++)
        ls[nls++] = &node->cfg.https[i];
    ls[nls++] = &node->cfg.gossip;
    ls[nls++] = &node->cfg.api;
    ls[nls++] = &node->cfg.advertise;
    node->own_addr_count = 0;
    uv_interface_addresses(&ifs, &nifs);
    for (size_t i = 0; i < nls; i++) {
        const struct sockaddr_storage *ss = &ls[i]->ss;
        uint16_t port =
            ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
                                           : ((const struct sockaddr_in6 *)ss)->sin6_port);
        /* the state layer reads an unspecified address with a port as "every loopback
         * address on that port"; the public ones are listed from the interfaces */
        node_own_add(node, (const struct sockaddr *)ss, port);
        if (!node_addr_unspecified(ss))
            continue;
        for (int j = 0; j < nifs; j++) {
            const struct sockaddr *ia = (const struct sockaddr *)&ifs[j].address;
            if (ss->ss_family == AF_INET && ia->sa_family != AF_INET)
                continue;
            node_own_add(node, ia, port);
        }
    }
    uv_free_interface_addresses(ifs, nifs);
}

/* Whether two lists of listen addresses are the same, in order (reload compares them). */
static bool node_listeners_equal(const struct node_addr *a, size_t na, const struct node_addr *b,
                                 size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].text, b[i].text) != 0)
            return false;
    return true;
}

/* ---- admin token and reload --------------------------------------------------------------- */

static int node_load_admin_token(struct node *node, char *err, size_t errlen)
{
    FILE *f;
    size_t n;

    node->admin_token[0] = '\0';
    if (node->cfg.admin_token_file[0] == '\0')
        return 0;
    f = fopen(node->cfg.admin_token_file, "r");
    if (!f) {
        snprintf(err, errlen, "admin-token-file: cannot open %s: %s", node->cfg.admin_token_file,
                 strerror(errno));
        return -1;
    }
    n = fread(node->admin_token, 1, sizeof(node->admin_token) - 1, f);
    fclose(f);
    node->admin_token[n] = '\0';
    node->admin_token[strcspn(node->admin_token, "\r\n")] = '\0';
    if (strlen(node->admin_token) < 16) {
        snprintf(err, errlen, "admin-token-file: %s: token must be at least 16 characters",
                 node->cfg.admin_token_file);
        node->admin_token[0] = '\0';
        return -1;
    }
    return 0;
}

static struct node_httpd_limits node_api_limits(const struct node_config *cfg)
{
    struct node_httpd_limits l = {.body_max = cfg->api_body_limit,
                                  .rate_per_s = cfg->api_rate_limit};
    return l;
}

/* SIGHUP: re-read the file and the flags; apply what can change live, name what cannot. */
static void node_reload(struct node *node)
{
    struct node_config cfg;
    char err[NODE_ERR_MAX];

    if (!node->argv) {
        node_log(NODE_LOG_WARN, "config", "SIGHUP: no command line to reload from");
        return;
    }
    node_sd_notify("RELOADING=1");
    if (node_config_from_args(&cfg, node->argc, node->argv, stdout, err, sizeof(err)) != 0) {
        node_log(NODE_LOG_ERROR, "config", "reload refused, keeping the running config: %s", err);
        node_sd_notify("READY=1");
        return;
    }
    if (!node_listeners_equal(cfg.http, cfg.http_count, node->cfg.http, node->cfg.http_count) ||
        !node_listeners_equal(cfg.https, cfg.https_count, node->cfg.https, node->cfg.https_count) ||
        strcmp(cfg.gossip.text, node->cfg.gossip.text) ||
        strcmp(cfg.api.text, node->cfg.api.text) || strcmp(cfg.data_dir, node->cfg.data_dir) ||
        strcmp(cfg.domain, node->cfg.domain) || cfg.workers != node->cfg.workers)
        node_log(NODE_LOG_WARN, "config",
                 "listen addresses, data-dir, domain and workers change only on restart");
    if (strcmp(cfg.dns_server.text, node->cfg.dns_server.text) ||
        cfg.dns_server_set != node->cfg.dns_server_set)
        node_log(NODE_LOG_WARN, "config", "dns-server changes only on restart");
    node->cfg.log_level = cfg.log_level;
    node->cfg.log_format = cfg.log_format;
    node_log_setup(cfg.log_format, cfg.log_level, NULL);
    /* the access log's file is reopened even when its path did not change: logrotate moved it */
    if (node->access && access_log_set(node->access, cfg.access_log, cfg.log_format, cfg.log_level,
                                       err, sizeof(err)) != 0)
        node_log(NODE_LOG_ERROR, "config", "access-log: %s (keeping %s)", err,
                 node->cfg.access_log);
    else
        memcpy(node->cfg.access_log, cfg.access_log, sizeof(cfg.access_log));
    if (cfg.access_log_buffer != node->cfg.access_log_buffer)
        node_log(NODE_LOG_WARN, "config", "access-log-buffer changes only on restart");
    if (node->cfg.allow_loopback_backends != cfg.allow_loopback_backends) {
        /* routes and probes follow the address policy */
        node->cfg.allow_loopback_backends = cfg.allow_loopback_backends;
        node_routes_rebuild(node);
        node_probes_dirty(node);
    }
    node->cfg.drain_timeout_ms = cfg.drain_timeout_ms;
    node->cfg.api_rate_limit = cfg.api_rate_limit;
    node->cfg.api_body_limit = cfg.api_body_limit;
    node->cfg.compact_bytes = cfg.compact_bytes;
    node->cfg.tombstone_ttl_ms = cfg.tombstone_ttl_ms;
    {
        struct proxy_config was, now;
        proxy_config_init(&was);
        proxy_config_init(&now);
        node_config_proxy(&node->cfg, &was);
        node_config_proxy(&cfg, &now);
        if (memcmp(&was, &now, sizeof(now)) != 0)
            node_log(NODE_LOG_WARN, "config",
                     "proxy limits, timeouts, balance and trusted proxies change only on restart");
    }
    if (cfg.health_ttl_ms != node->cfg.health_ttl_ms)
        node_log(NODE_LOG_WARN, "config", "health-ttl changes only on restart");
    if (memcmp(&node->cfg.probe, &cfg.probe, sizeof(cfg.probe)) != 0) {
        node->cfg.probe = cfg.probe; /* the next probe set uses it */
        node_probes_dirty(node);
    }
    memcpy(node->cfg.admin_token_file, cfg.admin_token_file, sizeof(cfg.admin_token_file));
    memcpy(node->cfg.tls_cert, cfg.tls_cert, sizeof(cfg.tls_cert));
    memcpy(node->cfg.tls_key, cfg.tls_key, sizeof(cfg.tls_key));
    node->cfg.tls_cert_count = cfg.tls_cert_count;
    memcpy(node->cfg.fleet_addr, cfg.fleet_addr, sizeof(cfg.fleet_addr));
    node->cfg.fleet_addr_count = cfg.fleet_addr_count;
    if (node->cfg.dns_interval_ms != cfg.dns_interval_ms) {
        node->cfg.dns_interval_ms = cfg.dns_interval_ms;
        node_fqdn_set_interval(node);
    }
    node->cfg.tls_key_count = cfg.tls_key_count;
    if (node_load_admin_token(node, err, sizeof(err)) != 0)
        node_log(NODE_LOG_ERROR, "config", "%s (admin API now off)", err);
    node_keys_reload(node, cfg.cluster_key);
    node_witness_reload(node, cfg.fleet_keys);
    if (cfg.fleet_open != node->cfg.fleet_open)
        node_log(NODE_LOG_WARN, "config", "fleet-open changes only on restart");
    node_tls_reload(node);
    {
        struct node_httpd_limits limits = node_api_limits(&cfg);
        node_httpd_set_limits(node->api, &limits);
    }
    node_event(node, "node", "configuration reloaded");
    node_sd_notify("READY=1");
}

/* ---- housekeeping ------------------------------------------------------------------------ */

static void node_housekeeping(uv_timer_t *t)
{
    struct node *node = t->data;
    char err[STATE_ERR_MAX];
    size_t collected;

    collected = state_names_collect(node->names, state_now_ms(), node->cfg.tombstone_ttl_ms);
    if (collected)
        node_log(NODE_LOG_INFO, "state", "collected %zu expired tombstones", collected);
    if (state_store_log_bytes(node->store) >= node->cfg.compact_bytes || collected) {
        uint64_t t0 = uv_hrtime();
        if (state_store_compact(node->store, node->names, err, sizeof(err)) != 0) {
            node_log(NODE_LOG_ERROR, "store", "compaction failed: %s", err);
            return;
        }
        node->rec_stats.compactions++;
        node_log(NODE_LOG_INFO, "store", "compacted %zu records in %.1f ms",
                 state_names_records(node->names), (double)(uv_hrtime() - t0) / 1e6);
    }
}

static void node_store_timer(uv_timer_t *t)
{
    node_store_sync(t->data);
}

void node_store_staged(struct node *node)
{
    if (!uv_is_active((uv_handle_t *)&node->store_timer) &&
        !uv_is_closing((uv_handle_t *)&node->store_timer))
        uv_timer_start(&node->store_timer, node_store_timer, NODE_STORE_SYNC_MS, 0);
}

int node_store_flush(struct node *node, char *err, size_t errlen)
{
    uv_timer_stop(&node->store_timer); /* nothing is left for it, or the failure is told now */
    if (node->store == NULL || state_store_sync(node->store, err, errlen) == 0)
        return 0;
    return -1;
}

int node_store_sync(struct node *node)
{
    char err[STATE_ERR_MAX];

    if (node_store_flush(node, err, sizeof(err)) == 0)
        return 0;
    node_log(NODE_LOG_ERROR, "store", "staged records and witnesses not stored: %s", err);
    return -1;
}

void node_compact_soon(struct node *node)
{
    /* after this loop turn: the append that grew the log is answered first */
    if (!node->draining && uv_is_active((uv_handle_t *)&node->housekeeping) &&
        uv_timer_get_due_in(&node->housekeeping) > 0)
        uv_timer_start(&node->housekeeping, node_housekeeping, 0, NODE_HOUSEKEEPING_MS);
}

/* ---- stop ------------------------------------------------------------------------------- */

#define NODE_LEAVE_SPREAD_MS 1000 /* gossip: about 5 gossip rounds for the leave notice */

/* Closes the node's own handles (signals, timers, the probe async); the API server and gossip
 * close their own. */
static void node_close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h) && (h->type == UV_SIGNAL || h->type == UV_TIMER || h->type == UV_ASYNC) &&
        h->data == arg)
        uv_close(h, NULL);
}

/* The last steps of a stop, once peers heard we leave and the proxy drained: stop the
 * workers, close gossip, write a snapshot (a short log to replay next start), leave the loop. */
void node_drain_step(struct node *node)
{
    char err[STATE_ERR_MAX];

    if (node->stopped || !node->leave_done || !node->proxy_drained)
        return;
    node->stopped = true;
    node_acme_stop(node);
    node_fqdn_stop(node);
    node_zone_stop(node);
    node_proxy_stop(node);
    node_gossip_close(node);
    if (node->store && state_store_compact(node->store, node->names, err, sizeof(err)) != 0)
        node_log(NODE_LOG_WARN, "store", "final snapshot not written: %s", err);
    node_log(NODE_LOG_INFO, "node", "stopped");
    uv_stop(&node->loop);
}

static void node_leave_spread(uv_timer_t *t)
{
    struct node *node = t->data;

    node->leave_done = true;
    node_drain_step(node);
}

void node_drain(struct node *node, const char *why)
{
    if (node->draining) {
        node_log(NODE_LOG_WARN, "node",
                 "already draining (%s): in-flight requests get up to --drain-timeout", why);
        return;
    }
    node->draining = true;
    node_sd_notify("STOPPING=1");
    node_event(node, "node", "draining (%s): leaving the cluster, finishing requests", why);
    uv_timer_stop(&node->housekeeping);
    uv_timer_stop(&node->probe_timer);
    node_traffic_stop(node);
    /* 1. peers stop counting on us */
    node_gossip_leave(node);
    node_zone_fleet_changed(node); /* our own addresses leave our answers at once */
    uv_timer_start(&node->leave_timer, node_leave_spread, node->gossip ? NODE_LEAVE_SPREAD_MS : 0,
                   0);
    /* 2. stop accepting API connections (the answer to an admin drain still goes out) */
    node_httpd_close(node->api);
    node->api = NULL;
    /* 3. the proxy closes its listeners and lets in-flight requests finish */
    node_proxy_drain(node);
    node_drain_step(node);
}

static void node_on_signal(uv_signal_t *s, int signum)
{
    struct node *node = s->data;

    if (signum == SIGHUP)
        node_reload(node);
    else
        node_drain(node, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* ---- start ------------------------------------------------------------------------------ */

struct node *node_new(const struct node_config *cfg, char *err, size_t errlen)
{
    struct node *node = calloc(1, sizeof(*node));
    char report[STATE_ERR_MAX], serr[STATE_ERR_MAX];
    struct node_httpd_limits limits;
    struct gossip_keyring keyring = {.count = 0};
    int rc;

    if (!node) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    node->cfg = *cfg;
    node->started_ms = state_now_ms();
    uv_loop_init(&node->loop);
    uv_timer_init(&node->loop, &node->store_timer);
    node->store_timer.data = node;
    if (mkdir(cfg->data_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "data-dir: cannot create %s: %s", cfg->data_dir, strerror(errno));
        goto fail;
    }
    if (node_load_id(node, err, errlen) != 0 || node_load_admin_token(node, err, errlen) != 0)
        goto fail;
    node_collect_own_addrs(node);

    node->names = state_names_new();
    node->routes = state_routes_new();
    if (!node->names || !node->routes) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    report[0] = '\0';
    node->store =
        state_store_open(cfg->data_dir, node->names, report, sizeof(report), serr, sizeof(serr));
    if (!node->store) {
        snprintf(err, errlen, "data-dir: %s", serr);
        goto fail;
    }
    if (report[0])
        node_log(NODE_LOG_WARN, "store", "%s", report);
    if (node_witness_start(node, err, errlen) != 0)
        goto fail;
    node_witness_all(node);
    node_store_sync(node); /* the witnesses of the start: one fdatasync */
    node_routes_rebuild(node);

    /* the cluster key encrypts gossip and seeds the TLS session ticket keys */
    if (cfg->cluster_key[0] &&
        gossip_keyring_load(cfg->cluster_key, &keyring, serr, sizeof(serr)) != 0) {
        snprintf(err, errlen, "cluster-key: %s", serr);
        goto fail;
    }
    if (node_tls_start(node, keyring.count ? keyring.keys[0] : NULL, err, errlen) != 0 ||
        node_proxy_start(node, keyring.count ? keyring.keys[0] : NULL, err, errlen) != 0 ||
        node_gossip_start(node, &keyring, err, errlen) != 0 ||
        node_fqdn_start(node, err, errlen) != 0 || node_zone_start(node, err, errlen) != 0 ||
        node_traffic_start(node, err, errlen) != 0)
        goto fail;
    OPENSSL_cleanse(&keyring, sizeof(keyring));

    limits = node_api_limits(cfg);
    rc = node_httpd_start(&node->loop, (const struct sockaddr *)&cfg->api.ss, &limits,
                          node_api_handle, node, &node->api, err, errlen);
    if (rc != 0)
        goto fail;

    uv_signal_init(&node->loop, &node->sig_term);
    uv_signal_init(&node->loop, &node->sig_int);
    uv_signal_init(&node->loop, &node->sig_hup);
    node->sig_term.data = node->sig_int.data = node->sig_hup.data = node;
    uv_signal_start(&node->sig_term, node_on_signal, SIGTERM);
    uv_signal_start(&node->sig_int, node_on_signal, SIGINT);
    uv_signal_start(&node->sig_hup, node_on_signal, SIGHUP);
    uv_timer_init(&node->loop, &node->housekeeping);
    uv_timer_init(&node->loop, &node->leave_timer);
    node->housekeeping.data = node->leave_timer.data = node;
    uv_timer_start(&node->housekeeping, node_housekeeping, NODE_HOUSEKEEPING_MS,
                   NODE_HOUSEKEEPING_MS);

    {
        char http[2 * NODE_LISTEN_MAX * 72];
        size_t off = 0;
        for (size_t i = 0; i < cfg->http_count + cfg->https_count; i++) {
            bool tls = i >= cfg->http_count;
            const struct node_addr *l = tls ? &cfg->https[i - cfg->http_count] : &cfg->http[i];
            off += (size_t)snprintf(http + off, sizeof(http) - off, "%s%s %s", i ? ", " : "",
                                    tls ? "https" : "http", l->text);
        }
        node_event(node, "node", "%s started: %zu names from %s, %s, gossip %s, api http://%s",
                   cfg->node_name, state_names_count(node->names), cfg->data_dir, http,
                   node->advertise_text, cfg->api.text);
    }
    return node;
fail:
    OPENSSL_cleanse(&keyring, sizeof(keyring));
    node_free(node);
    return NULL;
}

void node_set_argv(struct node *node, int argc, char **argv)
{
    node->argc = argc;
    node->argv = argv;
}

int node_run(struct node *node)
{
    node_sd_notify("READY=1");
    uv_run(&node->loop, UV_RUN_DEFAULT);
    return node->exit_code;
}

void node_free(struct node *node)
{
    if (!node)
        return;
    node_httpd_close(node->api);
    node->api = NULL;
    node_acme_stop(node);
    node_fqdn_stop(node);
    node_zone_stop(node);
    node_proxy_stop(node);
    node_gossip_close(node);
    node_tls_free(node);
    /* every handle is closed before the loop: connections finish writing their last answer */
    uv_walk(&node->loop, node_close_walk, node);
    uv_run(&node->loop, UV_RUN_DEFAULT);
    node_acme_free(node);
    node_fqdn_free(node);
    node_zone_free(node);
    node_traffic_free(node);
    if (uv_loop_close(&node->loop) != 0)
        node_log(NODE_LOG_WARN, "node", "event loop still had open handles at exit");
    if (node->store) {
        node_store_sync(node);
        state_store_close(node->store);
    }
    if (node->routes)
        state_routes_free(node->routes);
    if (node->names)
        state_names_free(node->names);
    node_witness_free(node);
    free(node->fleet_addrs);
    node_longkeys_free(node);
    free(node);
}
