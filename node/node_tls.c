/*
 * node_tls.c - the node's side of HTTPS: loads --tls-cert/--tls-key into the proxy's
 * certificate store, reloads them on SIGHUP, and keeps session ticket keys derived from the
 * cluster key so that a client resumes its TLS session on any gateway of the fleet.
 *
 * HTTPS is served when a certificate is configured; without one the port stays closed (a
 * listener that can only send alerts helps nobody). A reload that fails keeps the running
 * certificates and says why in the log; connections in flight keep theirs either way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "node/node_internal.h"
#include "proxy/tls_internal.h"

#define NODE_TLS_ISSUED_MAX 4096 /* ACME certificates installed at once */

/* Operator files (when configured) first, then the ACME certificates: all or nothing. */
static int node_tls_load(struct node *node, char *err, size_t errlen)
{
    const char *cert = node->cfg.tls_cert, *key = node->cfg.tls_key;
    size_t files = node->cfg.tls_cert[0] ? 1 : 0;
    struct tls_pem_pair *pairs = calloc(NODE_TLS_ISSUED_MAX, sizeof(*pairs));
    int rc;

    if (!pairs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t n = node_acme_pairs(node, pairs, NODE_TLS_ISSUED_MAX);
    rc = tls_store_reload(node->tls, &cert, &key, files, pairs, n, err, errlen);
    free(pairs);
    return rc;
}

void node_tls_rebuild(struct node *node)
{
    char err[TLS_ERR_MAX];

    if (node->tls && node_tls_load(node, err, sizeof(err)) != 0)
        node_log(NODE_LOG_ERROR, "tls", "certificates not updated: %s", err);
}

int node_tls_setup(struct node *node, struct proxy_config *pc, char *err, size_t errlen)
{
    char terr[TLS_ERR_MAX];
    struct gossip_keyring ring;

    pc->https_enabled = false;
    if (node->cfg.tls_cert[0] == '\0' && node->cfg.acme_directory[0] == '\0') {
        node_log(NODE_LOG_INFO, "tls",
                 "no --tls-cert nor --acme-directory: HTTPS port %s not served",
                 node->cfg.https.text);
        return 0;
    }
    node->tls = tls_store_new(terr, sizeof(terr));
    if (!node->tls || node_tls_load(node, terr, sizeof(terr)) != 0) {
        snprintf(err, errlen, "tls: %s", terr);
        node_tls_free(node);
        return -1;
    }
    if (node->cfg.cluster_key[0] &&
        gossip_keyring_load(node->cfg.cluster_key, &ring, terr, sizeof(terr)) == 0 &&
        ring.count > 0) {
        memcpy(node->ticket_secret, ring.keys[0], sizeof(node->ticket_secret));
        node->ticket_secret_set = true;
        OPENSSL_cleanse(&ring, sizeof(ring));
    }
    node_tls_tick(node);
    pc->tls = node->tls;
    pc->https_enabled = true;
    node_log(NODE_LOG_INFO, "tls", "HTTPS on %s with %s%s", node->cfg.https.text,
             node->cfg.tls_cert[0] ? node->cfg.tls_cert : "ACME certificates",
             node->ticket_secret_set ? ", session tickets shared through the cluster key" : "");
    return 0;
}

void node_tls_reload(struct node *node)
{
    char err[TLS_ERR_MAX];

    if (!node->tls)
        return;
    if (node->cfg.tls_cert[0] == '\0' && !node->acme) {
        node_log(NODE_LOG_WARN, "tls", "--tls-cert removed: HTTPS stops only on restart");
        return;
    }
    if (node_tls_load(node, err, sizeof(err)) != 0) {
        node_log(NODE_LOG_ERROR, "tls", "reload refused, keeping the running certificates: %s",
                 err);
        return;
    }
    node_event(node, "tls", "certificates reloaded");
}

void node_tls_tick(struct node *node)
{
    char err[TLS_ERR_MAX];

    if (!node->tls || !node->ticket_secret_set)
        return; /* the store's own random key: sessions resume on this gateway only */
    if (tls_store_set_ticket_secret(node->tls, node->ticket_secret, sizeof(node->ticket_secret),
                                    time(NULL), err, sizeof(err)) != 0)
        node_log(NODE_LOG_ERROR, "tls", "session ticket keys: %s", err);
}

void node_tls_free(struct node *node)
{
    tls_store_free(node->tls);
    node->tls = NULL;
    OPENSSL_cleanse(node->ticket_secret, sizeof(node->ticket_secret));
    node->ticket_secret_set = false;
}
