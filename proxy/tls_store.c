/*
 * tls_store.c - the certificates the HTTPS listener terminates with, swapped atomically.
 *
 * One SSL_CTX per installed certificate set carries every setting (protocols, ciphers,
 * ALPN, tickets) and, as ex_data, the frozen set itself; the certificate is chosen per
 * connection in the servername callback with SSL_use_cert_and_key(). An SSL holds a
 * reference on its SSL_CTX, so replacing the store's context on reload leaves running
 * connections on the one they started with, and the old set is freed with the last of them
 * (the ex_data free callback). The only lock is taken to read the current context pointer
 * when a connection starts and when a reload swaps it: a few instructions per handshake,
 * which costs hundreds of microseconds anyway.
 *
 * Defaults follow current practice for a server that must still serve TLS 1.2 clients:
 * TLS 1.2 and 1.3 only; for 1.2, ECDHE key exchange with AEAD ciphers only (forward secret,
 * no CBC); X25519, P-256, P-384; no compression, no renegotiation; one TLS 1.3 ticket per
 * handshake.
 */
#include "proxy/err_internal.h"
#include "proxy/tls_certs_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
#define TLS13_SUITES "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"

struct tls_store {
    pthread_mutex_t lock;         /* guards ctx */
    SSL_CTX *ctx;                 /* context for new connections; NULL before an install */
    struct tls_ticket_ring ring;  /* ticket keys, shared by every context of this store */
    atomic_uint_fast64_t reloads; /* successful installs */
    atomic_uint_fast64_t unknown; /* refused: no certificate for the SNI */
    atomic_uint_fast64_t no_sni;  /* refused: no SNI */
    atomic_uint_fast64_t layer[TLS_COUNT_MAX]; /* HTTPS layer outcomes (tls_layer.c) */
};

/* What a context carries in its ex_data slot. */
struct ctx_data {
    struct tls_store *store;  /* back pointer: counters and ticket keys */
    struct tls_cert_set *set; /* frozen certificates, freed with the context */
};

static int ctx_data_index = -1;
static pthread_once_t ctx_data_once = PTHREAD_ONCE_INIT;

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    struct ctx_data *data = ptr;
    if (!data)
        return;
    tls_cert_set_free(data->set);
    free(data);
}

static void ctx_data_index_init(void)
{
    ctx_data_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
}

static struct ctx_data *ctx_data_of(SSL_CTX *ctx)
{
    return SSL_CTX_get_ex_data(ctx, ctx_data_index);
}

/* Picks the certificate by SNI; refuses the handshake when there is none. */
static int on_servername(SSL *ssl, int *alert, void *arg)
{
    struct ctx_data *data = ctx_data_of(SSL_get_SSL_CTX(ssl));
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const struct tls_cert *cert;

    if (!host) {
        atomic_fetch_add_explicit(&data->store->no_sni, 1, memory_order_relaxed);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    cert = tls_cert_set_lookup(data->set, host);
    if (!cert) {
        atomic_fetch_add_explicit(&data->store->unknown, 1, memory_order_relaxed);
        *alert = SSL_AD_UNRECOGNIZED_NAME;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    if (SSL_use_cert_and_key(ssl, cert->leaf, cert->key, cert->chain, 1) != 1) {
        ERR_clear_error();
        *alert = SSL_AD_INTERNAL_ERROR;
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    return SSL_TLSEXT_ERR_OK;
}

/* We speak HTTP/1.1 only. A client offering ALPN without it gets no ALPN answer rather than
 * a fatal alert: it may still speak HTTP/1.1 (RFC 7301 allows either). */
static int on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char ours[] = "\x08http/1.1";
    unsigned char *selected;

    if (SSL_select_next_proto(&selected, outlen, ours, sizeof(ours) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static int on_ticket(SSL *ssl, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct ctx_data *data = ctx_data_of(SSL_get_SSL_CTX(ssl));
    return tls_ticket_ring_crypt(&data->store->ring, key_name, iv, cctx, hctx, enc);
}

struct tls_store *tls_store_new(char *err, size_t errlen)
{
    struct tls_store *store;

    pthread_once(&ctx_data_once, ctx_data_index_init);
    if (ctx_data_index < 0) {
        proxy_errf(err, errlen, TLS_ECRYPTO, "SSL_CTX_get_ex_new_index failed");
        return NULL;
    }
    store = calloc(1, sizeof(*store));
    if (!store) {
        proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&store->lock, NULL) != 0) {
        free(store);
        proxy_errf(err, errlen, TLS_ENOMEM, "pthread_mutex_init failed");
        return NULL;
    }
    if (tls_ticket_ring_init(&store->ring, err, errlen) != TLS_OK) {
        pthread_mutex_destroy(&store->lock);
        free(store);
        return NULL;
    }
    return store;
}

void tls_store_free(struct tls_store *store)
{
    if (!store)
        return;
    SSL_CTX_free(store->ctx);
    tls_ticket_ring_destroy(&store->ring);
    pthread_mutex_destroy(&store->lock);
    free(store);
}

/* A new server context over `set` (frozen), owning it on success. */
static SSL_CTX *ctx_build(struct tls_store *store, struct tls_cert_set *set, char *err,
                          size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    struct ctx_data *data = NULL;

    if (!ctx) {
        proxy_errf(err, errlen, TLS_ECRYPTO, "SSL_CTX_new: %s", proxy_ssl_reason());
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1 || SSL_CTX_set_num_tickets(ctx, 1) != 1 ||
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"webgw", 5) != 1) {
        proxy_errf(err, errlen, TLS_ECRYPTO, "SSL_CTX settings: %s", proxy_ssl_reason());
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* idle keep-alive connections should not pin 2 x 16 KiB of buffers each */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn, NULL);
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket) != 1) {
        proxy_errf(err, errlen, TLS_ECRYPTO, "ticket callback: %s", proxy_ssl_reason());
        goto fail;
    }
    data = malloc(sizeof(*data));
    if (!data) {
        proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
        goto fail;
    }
    data->store = store;
    data->set = set;
    if (SSL_CTX_set_ex_data(ctx, ctx_data_index, data) != 1) {
        free(data);
        proxy_errf(err, errlen, TLS_ECRYPTO, "SSL_CTX_set_ex_data: %s", proxy_ssl_reason());
        goto fail;
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

int tls_store_install(struct tls_store *store, struct tls_cert_set *set, char *err, size_t errlen)
{
    SSL_CTX *ctx, *old;

    if (!set)
        return proxy_errf(err, errlen, TLS_EINVAL, "no certificate set");
    tls_cert_set_freeze(set);
    ctx = ctx_build(store, set, err, errlen);
    if (!ctx) {
        tls_cert_set_free(set);
        return TLS_ECRYPTO;
    }
    pthread_mutex_lock(&store->lock);
    old = store->ctx;
    store->ctx = ctx;
    pthread_mutex_unlock(&store->lock);
    SSL_CTX_free(old); /* connections still on it hold their own references */
    atomic_fetch_add_explicit(&store->reloads, 1, memory_order_relaxed);
    return TLS_OK;
}

SSL *tls_store_new_ssl(struct tls_store *store, char *err, size_t errlen)
{
    SSL *ssl = NULL;
    bool installed;

    pthread_mutex_lock(&store->lock);
    installed = store->ctx != NULL;
    if (installed)
        ssl = SSL_new(store->ctx);
    pthread_mutex_unlock(&store->lock);
    if (!installed)
        proxy_errf(err, errlen, TLS_ENOTFOUND, "no certificates installed");
    else if (!ssl)
        proxy_errf(err, errlen, TLS_ECRYPTO, "SSL_new: %s", proxy_ssl_reason());
    return ssl;
}

/* Looks `host` up in the current set, holding a reference on its context (in *held, may be
 * NULL) so that a concurrent install cannot free the set under us. */
static const struct tls_cert *current_lookup(struct tls_store *store, const char *host,
                                             SSL_CTX **held)
{
    struct ctx_data *data;

    pthread_mutex_lock(&store->lock);
    *held = store->ctx;
    if (*held)
        SSL_CTX_up_ref(*held);
    pthread_mutex_unlock(&store->lock);
    if (!*held)
        return NULL;
    data = ctx_data_of(*held);
    return tls_cert_set_lookup(data->set, host);
}

bool tls_store_has_name(struct tls_store *store, const char *host)
{
    SSL_CTX *held;
    bool found = current_lookup(store, host, &held) != NULL;
    SSL_CTX_free(held);
    return found;
}

int tls_store_expiry(struct tls_store *store, const char *host, time_t *not_after)
{
    SSL_CTX *held;
    const struct tls_cert *cert = current_lookup(store, host, &held);
    int rc = TLS_ENOTFOUND;

    if (cert) {
        *not_after = cert->not_after;
        rc = TLS_OK;
    }
    SSL_CTX_free(held);
    return rc;
}

int tls_store_set_ticket_keys(struct tls_store *store, const struct tls_ticket_key *keys, size_t n,
                              char *err, size_t errlen)
{
    return tls_ticket_ring_set(&store->ring, keys, n, err, errlen);
}

int tls_store_reload(struct tls_store *store, const char *const *cert_files,
                     const char *const *key_files, size_t nfiles, const struct tls_pem_pair *issued,
                     size_t nissued, char *err, size_t errlen)
{
    struct tls_cert_set *set = tls_cert_set_new();
    int rc = TLS_OK;

    if (!set)
        return proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
    for (size_t i = 0; i < nfiles && rc == TLS_OK; i++)
        rc = tls_cert_set_add_files(set, cert_files[i], key_files[i], err, errlen);
    for (size_t i = 0; i < nissued && rc == TLS_OK; i++)
        rc = tls_cert_set_add_pem(set, issued[i].cert_pem, strlen(issued[i].cert_pem),
                                  issued[i].key_pem, strlen(issued[i].key_pem),
                                  issued[i].origin ? issued[i].origin : "issued", err, errlen);
    if (rc != TLS_OK) {
        tls_cert_set_free(set);
        return rc;
    }
    return tls_store_install(store, set, err, errlen);
}

int tls_store_set_ticket_secret(struct tls_store *store, const uint8_t *secret, size_t len,
                                time_t now, char *err, size_t errlen)
{
    struct tls_ticket_key keys[2];
    uint64_t epoch = (uint64_t)now / TLS_TICKET_EPOCH_S;
    int rc;

    if ((rc = tls_ticket_key_derive(secret, len, epoch, &keys[0], err, errlen)) != TLS_OK ||
        (rc = tls_ticket_key_derive(secret, len, epoch - 1, &keys[1], err, errlen)) != TLS_OK)
        return rc;
    rc = tls_store_set_ticket_keys(store, keys, 2, err, errlen);
    OPENSSL_cleanse(keys, sizeof(keys));
    return rc;
}

void tls_store_count(struct tls_store *store, enum tls_count what)
{
    atomic_fetch_add_explicit(&store->layer[what], 1, memory_order_relaxed);
}

void tls_store_get_stats(struct tls_store *store, struct tls_store_stats *out)
{
#define LAYER(i) atomic_load_explicit(&store->layer[i], memory_order_relaxed)
    out->not_tls = LAYER(TLS_COUNT_NOT_TLS);
    out->hello_malformed = LAYER(TLS_COUNT_MALFORMED);
    out->refused = LAYER(TLS_COUNT_REFUSED);
    out->passthrough = LAYER(TLS_COUNT_PASSTHROUGH);
    out->handshakes = LAYER(TLS_COUNT_HANDSHAKE);
    out->resumed = LAYER(TLS_COUNT_RESUMED);
    out->handshake_failures = LAYER(TLS_COUNT_HANDSHAKE_FAILURE);
#undef LAYER
    out->reloads = atomic_load_explicit(&store->reloads, memory_order_relaxed);
    out->unknown_sni = atomic_load_explicit(&store->unknown, memory_order_relaxed);
    out->no_sni = atomic_load_explicit(&store->no_sni, memory_order_relaxed);
    out->tickets_issued = atomic_load_explicit(&store->ring.issued, memory_order_relaxed);
    out->tickets_recognised = atomic_load_explicit(&store->ring.recognised, memory_order_relaxed);
}
