/*
 * tls_certs_internal.h - what tls_certs.c and tls_store.c share: the layout of a certificate
 * set and its frozen name index. Nothing outside the TLS files includes this.
 */
#ifndef WEBGW_PROXY_TLS_CERTS_INTERNAL_H
#define WEBGW_PROXY_TLS_CERTS_INTERNAL_H

#include "proxy/tls_internal.h"

#include <pthread.h>
#include <stdatomic.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* One certificate chain and its key. */
struct tls_cert {
    X509 *leaf;             /* the end-entity certificate */
    STACK_OF(X509) * chain; /* intermediates sent after it, in file order */
    EVP_PKEY *key;          /* the leaf's private key */
    time_t not_after;       /* leaf expiry (UTC) */
    char origin[128];       /* file name or "acme", for messages */
};

/* One name a certificate serves. */
struct tls_cert_name {
    char name[TLS_HOST_MAX + 1]; /* lowercase; for a wildcard the parent ("example.org") */
    bool wildcard;               /* came from "*.name" */
    size_t cert;                 /* index into certs[] */
    size_t order;                /* insertion order: the first claim of a name wins */
};

struct tls_cert_set {
    struct tls_cert *certs;      /* certificates in insertion order */
    size_t ncerts, certs_cap;    /* used and allocated */
    struct tls_cert_name *names; /* every name; sorted (exact, then wildcard) once frozen */
    size_t nnames, names_cap;    /* used and allocated */
};

/* tls_cert_set_freeze - sorts and de-duplicates the names; no add after this. */
void tls_cert_set_freeze(struct tls_cert_set *set);

/*
 * tls_cert_set_lookup - the certificate for `host` (any case) in a frozen set: an exact name,
 * else the wildcard of its parent domain, else NULL.
 */
const struct tls_cert *tls_cert_set_lookup(const struct tls_cert_set *set, const char *host);

/* The session ticket keys of a store: read by handshakes, replaced from outside. */
struct tls_ticket_ring {
    pthread_mutex_t lock;                            /* guards keys and n */
    struct tls_ticket_key keys[TLS_TICKET_KEYS_MAX]; /* keys[0] encrypts, all decrypt */
    size_t n;                                        /* keys in use, >= 1 */
    atomic_uint_fast64_t issued;                     /* tickets encrypted */
    atomic_uint_fast64_t recognised;                 /* tickets presented under a key we hold */
};

/* tls_ticket_ring_init - a ring with one random key (tickets work on a lone node). */
int tls_ticket_ring_init(struct tls_ticket_ring *ring, char *err, size_t errlen);
void tls_ticket_ring_destroy(struct tls_ticket_ring *ring);
int tls_ticket_ring_set(struct tls_ticket_ring *ring, const struct tls_ticket_key *keys, size_t n,
                        char *err, size_t errlen);

/*
 * tls_ticket_ring_crypt - the body of an SSL_CTX ticket key callback
 * (SSL_CTX_set_tlsext_ticket_key_evp_cb): sets up encryption under keys[0] (enc = 1) or
 * finds the key named `key_name` for decryption. Returns 1 (use), 2 (use and renew: an older
 * key), 0 (unknown key: full handshake) or -1 (error).
 */
int tls_ticket_ring_crypt(struct tls_ticket_ring *ring, unsigned char key_name[16],
                          unsigned char *iv, EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc);

#endif
