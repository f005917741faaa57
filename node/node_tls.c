/*
 * node_tls.c - the node's side of TLS: the certificate store the HTTPS listener terminates
 * with, loaded from the --tls-cert/--tls-key pairs (SNI picks among them) and reloaded on SIGHUP,
 * session ticket keys derived from the cluster key (so a session resumes on any gateway), and the
 * TLS counters and certificate expiry for /metrics.
 *
 * The HTTPS port is always served: names in passthrough mode need no certificate here, and
 * a terminated name without a certificate is refused with a TLS alert.
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node/node_internal.h"
#include "proxy/tls_internal.h"

#define NODE_TICKET_REFRESH_MS (3600 * 1000) /* ticket keys follow the epoch; check hourly */

/* notAfter of the first certificate in a PEM file, for the expiry metric (0 if unreadable). */
static time_t node_cert_not_after(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = NULL;
    time_t t = 0;

    if (!f)
        return 0;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    if (x) {
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
            t = timegm(&tm);
        X509_free(x);
    }
    return t;
}

#define NODE_TLS_ISSUED_MAX 4096 /* ACME certificates installed at once */

int node_tls_load(struct node *node, char *err, size_t errlen)
{
    const char *cert[NODE_TLS_PAIRS_MAX], *key[NODE_TLS_PAIRS_MAX];
    char terr[256];
    size_t n = node->cfg.tls_cert_count;
    /* the operator's files first (they win a name both claim; among them the first given
     * wins), then ACME's certificates */
    struct tls_pem_pair *issued = calloc(NODE_TLS_ISSUED_MAX, sizeof(*issued));
    size_t nissued = issued ? node_acme_pairs(node, issued, NODE_TLS_ISSUED_MAX) : 0;
    int rc;

    /* no certificate: the empty store refuses terminated names with an alert and still
     * serves passthrough names; there is nothing to install */
    for (size_t i = 0; i < n; i++) {
        cert[i] = node->cfg.tls_cert[i];
        key[i] = node->cfg.tls_key[i];
    }
    if (n == 0 && nissued == 0) {
        free(issued);
        if (node->tls_not_after[0])
            node_log(NODE_LOG_WARN, "tls",
                     "--tls-cert removed: the old certificate stays until "
                     "restart");
        return 0;
    }
    rc = tls_store_reload(node->tls, cert, key, n, issued, nissued, terr, sizeof(terr));
    free(issued);
    if (rc != 0) {
        snprintf(err, errlen, "tls-cert: %s", terr);
        return -1;
    }
    for (size_t i = 0; i < NODE_TLS_PAIRS_MAX; i++)
        node->tls_not_after[i] = i < n ? node_cert_not_after(cert[i]) : 0;
    return 0;
}

static void node_tls_tickets(uv_timer_t *t)
{
    struct node *node = t->data;
    char err[256];

    if (tls_store_set_ticket_secret(node->tls, node->ticket_secret, sizeof(node->ticket_secret),
                                    time(NULL), err, sizeof(err)) != 0)
        node_log(NODE_LOG_WARN, "tls", "session ticket keys not updated: %s", err);
}

const char *node_tls_warning(const struct node *node)
{
    if (node->cfg.tls_cert_count > 0 || node->cfg.acme_directory[0] != '\0')
        return NULL;
    return "https: no certificate (no --tls-cert/--tls-key, no --acme-directory): only "
           "--tls-passthrough names work over HTTPS; terminated names fail the handshake with "
           "unrecognized_name";
}

int node_tls_start(struct node *node, const uint8_t *cluster_key, char *err, size_t errlen)
{
    char terr[256];

    node->tls = tls_store_new(terr, sizeof(terr));
    if (!node->tls) {
        snprintf(err, errlen, "tls: %s", terr);
        return -1;
    }
    if (node_tls_load(node, err, errlen) != 0)
        return -1;
    if (node_tls_warning(node))
        node_log(NODE_LOG_WARN, "tls", "%s", node_tls_warning(node));
    uv_timer_init(&node->loop, &node->ticket_timer);
    node->ticket_timer.data = node;
    if (cluster_key) {
        /* every gateway with the cluster key derives the same ticket keys, from a key of their
         * own (HKDF), never the gossip key itself */
        if (gossip_key_derive(cluster_key, GOSSIP_KDF_TICKETS, node->ticket_secret) != 0) {
            snprintf(err, errlen, "tls: session ticket key derivation failed");
            return -1;
        }
        node_tls_tickets(&node->ticket_timer);
        uv_timer_start(&node->ticket_timer, node_tls_tickets, NODE_TICKET_REFRESH_MS,
                       NODE_TICKET_REFRESH_MS);
    }
    return 0;
}

void node_tls_reload(struct node *node)
{
    char err[NODE_ERR_MAX];

    if (!node->tls)
        return;
    if (node_tls_load(node, err, sizeof(err)) != 0)
        node_log(NODE_LOG_ERROR, "tls", "reload refused, keeping the running certificates: %s",
                 err);
    else if (node->cfg.tls_cert_count)
        node_event(node, "tls", "certificates reloaded from %s%s", node->cfg.tls_cert[0],
                   node->cfg.tls_cert_count > 1 ? " and the other --tls-cert files" : "");
}

void node_tls_free(struct node *node)
{
    if (node->tls) {
        tls_store_free(node->tls);
        node->tls = NULL;
    }
    OPENSSL_cleanse(node->ticket_secret, sizeof(node->ticket_secret));
}

void node_tls_metrics(const struct node *node, struct node_metrics *m)
{
    struct tls_store_stats s;
    bool any_expiry = false;

    if (!node->tls)
        return;
    tls_store_get_stats(node->tls, &s);
    node_metrics_family(m, "webgw_tls_connections_total", "counter",
                        "HTTPS connections by outcome.");
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"handshake\"} %llu\n",
                        (unsigned long long)s.handshakes);
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"resumed\"} %llu\n",
                        (unsigned long long)s.resumed);
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"passthrough\"} %llu\n",
                        (unsigned long long)s.passthrough);
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"refused\"} %llu\n",
                        (unsigned long long)s.refused);
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"malformed_hello\"} %llu\n",
                        (unsigned long long)s.hello_malformed);
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"not_tls\"} %llu\n",
                        (unsigned long long)s.not_tls);
    node_metrics_printf(m, "webgw_tls_connections_total{outcome=\"handshake_failed\"} %llu\n",
                        (unsigned long long)s.handshake_failures);
    for (size_t i = 0; i < node->cfg.tls_cert_count; i++)
        any_expiry = any_expiry || node->tls_not_after[i] != 0;
    if (any_expiry)
        node_metrics_family(m, "webgw_tls_certificate_expiry_seconds", "gauge",
                            "notAfter of each operator certificate (Unix time).");
    for (size_t i = 0; i < node->cfg.tls_cert_count; i++)
        if (node->tls_not_after[i])
            node_metrics_printf(m, "webgw_tls_certificate_expiry_seconds{file=\"%s\"} %lld\n",
                                node->cfg.tls_cert[i], (long long)node->tls_not_after[i]);
}
