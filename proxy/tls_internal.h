/*
 * tls_internal.h - TLS inside the proxy: ClientHello peeking and the certificate store.
 *
 * Two pieces that the HTTPS listener combines:
 *
 *   hello   tls_hello_parse(): a pure function over the first bytes of a connection that
 *           says whether they are a complete, well-formed TLS ClientHello and, if so, which
 *           host name (SNI) and application protocols (ALPN) it asks for. The listener
 *           peeks (MSG_PEEK) until it answers, then either splices the untouched bytes to a
 *           passthrough backend or hands the socket to OpenSSL (tls_hello.c).
 *   store   struct tls_store: the certificates this gateway can terminate for (operator
 *           files and ACME-issued ones), chosen by SNI (exact name, then *.parent
 *           wildcard), behind one SSL_CTX with TLS 1.2/1.3 only. A reload builds a whole
 *           new SSL_CTX and swaps it in; connections already running keep the one they
 *           started with. Session ticket keys come from outside so every gateway of the
 *           cluster can resume every other's sessions (tls_store.c, tls_certs.c,
 *           tls_tickets.c).
 *
 * Conventions as in state.h: 0 or a positive status on success, a negative TLS_E* code on
 * failure with a one-line human message in the caller's `err` buffer.
 */
#ifndef WEBGW_PROXY_TLS_INTERNAL_H
#define WEBGW_PROXY_TLS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

/* ---- limits ---------------------------------------------------------------------------- */

#define TLS_HOST_MAX 253          /* longest SNI host name we accept (DNS limit) */
#define TLS_ALPN_MAX 8            /* ALPN protocols remembered from one ClientHello */
#define TLS_ALPN_NAME_MAX 32      /* longest ALPN protocol name remembered */
#define TLS_HELLO_MAX_BYTES 16384 /* largest ClientHello handshake message we wait for */
#define TLS_RECORD_MAX 16384      /* TLSPlaintext.length upper bound (RFC 8446 5.1) */
#define TLS_CERTS_MAX 4096        /* certificates in one store */
#define TLS_CERT_NAMES_MAX 100    /* DNS names taken from one certificate */
#define TLS_PEM_MAX (1 << 20)     /* largest certificate chain or key file */
#define TLS_TICKET_KEYS_MAX 4     /* ticket keys held at once (first encrypts) */
#define TLS_ERR_MAX 256           /* size of an error message buffer */

enum tls_error {
    TLS_OK = 0,
    TLS_EINVAL = -1,   /* bad argument or bad input file */
    TLS_ENOMEM = -2,   /* allocation failed */
    TLS_ECRYPTO = -3,  /* OpenSSL refused something; the message says what */
    TLS_ELIMIT = -4,   /* a limit above was reached */
    TLS_ENOTFOUND = -5 /* no certificate for that name */
};

/* ---- ClientHello ----------------------------------------------------------------------- */

enum tls_hello_status {
    TLS_HELLO_OK = 0,         /* a complete, well-formed ClientHello */
    TLS_HELLO_NEED_MORE = 1,  /* a valid prefix: peek again once more bytes arrived */
    TLS_HELLO_NOT_TLS = -1,   /* the first bytes are not a TLS handshake record (plain HTTP?) */
    TLS_HELLO_MALFORMED = -2, /* a TLS record, but lengths or contents break the rules */
};

struct tls_client_hello {
    uint16_t legacy_version;                        /* ClientHello.legacy_version */
    bool offers_tls13;                              /* supported_versions lists 0x0304 */
    bool has_sni;                                   /* a server_name host_name was sent */
    char sni[TLS_HOST_MAX + 1];                     /* that name, lowercased, NUL-terminated */
    size_t alpn_count;                              /* protocols stored in alpn[] */
    bool alpn_truncated;                            /* more (or longer) protocols were sent */
    char alpn[TLS_ALPN_MAX][TLS_ALPN_NAME_MAX + 1]; /* ALPN protocol names, in client order */
    size_t bytes;                                   /* bytes of the records holding the hello */
};

/*
 * tls_hello_parse - decide what the first `len` bytes of a connection are.
 *
 * Accepts any prefix of a byte stream. Reads only buf[0..len); keeps no pointer into it;
 * allocates nothing. The ClientHello may span several handshake records (each at most
 * TLS_RECORD_MAX bytes, all of content type handshake) and may be at most
 * TLS_HELLO_MAX_BYTES long; nothing else may share its records. Checks every length
 * against its enclosing one: record, handshake, session id, cipher suites (even, non
 * empty), compression methods, the extension block (exact), each extension, the
 * server_name list (one host_name of 1..253 bytes of [A-Za-z0-9-_.], no empty label),
 * the ALPN list (non-empty names), supported_versions; a repeated extension is malformed.
 *
 * Returns TLS_HELLO_OK and fills `out` (out->bytes tells how many bytes of `buf` the
 * records holding the hello take), TLS_HELLO_NEED_MORE when `buf` is a valid prefix,
 * TLS_HELLO_NOT_TLS when the first byte already rules out a TLS handshake, or
 * TLS_HELLO_MALFORMED with the reason in `err` (when err is not NULL). `out` is
 * meaningful only on TLS_HELLO_OK.
 */
int tls_hello_parse(const uint8_t *buf, size_t len, struct tls_client_hello *out, char *err,
                    size_t errlen);

/* ---- session ticket keys --------------------------------------------------------------- */

struct tls_ticket_key {
    uint8_t name[16];     /* key name sent in the ticket, picks the key on resumption */
    uint8_t aes_key[32];  /* AES-256-CBC key encrypting the ticket */
    uint8_t hmac_key[32]; /* HMAC-SHA256 key authenticating the ticket */
};

/*
 * tls_ticket_key_derive - the ticket key of one epoch, derived from a cluster secret.
 *
 * HKDF-SHA256 over `secret` with the epoch number in the info, so every gateway holding the
 * same secret (the cluster key) computes the same keys without exchanging them, and keys
 * rotate by moving to the next epoch. Returns 0 or TLS_ECRYPTO.
 */
int tls_ticket_key_derive(const uint8_t *secret, size_t secret_len, uint64_t epoch,
                          struct tls_ticket_key *out, char *err, size_t errlen);

/* ---- certificate sets ------------------------------------------------------------------ */

struct tls_cert_set; /* a builder: certificates collected before they are installed */

/* tls_cert_set_new - an empty set, or NULL when out of memory. */
struct tls_cert_set *tls_cert_set_new(void);

/* tls_cert_set_free - frees a set that was not handed to tls_store_install(). NULL is ok. */
void tls_cert_set_free(struct tls_cert_set *set);

/*
 * tls_cert_set_add_pem - add one certificate chain (leaf first) and its private key.
 *
 * The names served are the leaf's DNS subjectAltNames (its CN only when it has none);
 * "*.example.org" serves every single label under example.org. The key must match the
 * leaf. When two certificates claim the same name, the one added first wins, so add
 * operator files before issued ones. `origin` (a file name, "acme") goes into messages.
 * Returns 0, TLS_EINVAL (unreadable PEM, key mismatch, no usable name), TLS_ELIMIT or
 * TLS_ENOMEM.
 */
int tls_cert_set_add_pem(struct tls_cert_set *set, const char *cert_pem, size_t cert_len,
                         const char *key_pem, size_t key_len, const char *origin, char *err,
                         size_t errlen);

/* tls_cert_set_add_files - tls_cert_set_add_pem() on the contents of two PEM files. */
int tls_cert_set_add_files(struct tls_cert_set *set, const char *cert_path, const char *key_path,
                           char *err, size_t errlen);

/* ---- the store ------------------------------------------------------------------------- */

struct tls_store; /* what the HTTPS listener terminates with; safe to share between threads */

struct tls_store_stats {
    uint64_t not_tls;            /* HTTPS connections whose first bytes were not TLS */
    uint64_t hello_malformed;    /* ClientHellos refused as malformed (alert decode_error) */
    uint64_t refused;            /* refused at the hello: no SNI or a name not served */
    uint64_t passthrough;        /* connections handed raw to a passthrough backend */
    uint64_t handshakes;         /* handshakes completed (terminated here) */
    uint64_t resumed;            /* of which resumed a session */
    uint64_t handshake_failures; /* handshakes OpenSSL failed */
    uint64_t reloads;            /* successful tls_store_install() calls */
    uint64_t unknown_sni;        /* handshakes refused: no certificate for the name */
    uint64_t no_sni;             /* handshakes refused: no server_name at all */
    uint64_t tickets_issued;     /* session tickets encrypted */
    uint64_t tickets_recognised; /* tickets presented under one of our keys */
};

/* tls_store_new - an empty store (every handshake refused until a set is installed). */
struct tls_store *tls_store_new(char *err, size_t errlen);

/* tls_store_free - frees the store. Free every SSL made from it first: their handshake
 * callbacks read the store's ticket keys and counters. */
void tls_store_free(struct tls_store *store);

/*
 * tls_store_install - make `set` the certificates of new handshakes.
 *
 * Builds a fresh SSL_CTX (TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers, no compression
 * or renegotiation, ALPN http/1.1, tickets with the store's ticket keys) over `set` and
 * swaps it in atomically. Connections that already called tls_store_new_ssl() keep the
 * old context and certificates until they end. Takes ownership of `set` whatever the
 * result; on failure the current certificates stay in place.
 */
int tls_store_install(struct tls_store *store, struct tls_cert_set *set, char *err, size_t errlen);

/*
 * tls_store_new_ssl - a server-side SSL for one accepted connection, or NULL (message in
 * err). The certificate is chosen during the handshake from the SNI; no SNI or a name
 * without certificate ends the handshake with an unrecognized_name alert.
 */
SSL *tls_store_new_ssl(struct tls_store *store, char *err, size_t errlen);

/*
 * tls_store_has_name - whether a handshake for `host` (any case) would find a certificate
 * now. The listener asks before terminating so it can count and refuse early.
 */
bool tls_store_has_name(struct tls_store *store, const char *host);

/*
 * tls_store_expiry - notAfter of the certificate that serves `host` now, in `*not_after`.
 * Returns 0 or TLS_ENOTFOUND. ACME renewal uses it.
 */
int tls_store_expiry(struct tls_store *store, const char *host, time_t *not_after);

/*
 * tls_store_set_ticket_keys - replace the session ticket keys (1..TLS_TICKET_KEYS_MAX).
 *
 * keys[0] encrypts new tickets; every key decrypts, and a ticket under an older key is
 * accepted and renewed. Gateways given the same keys resume each other's sessions.
 * Takes effect at once, also for contexts installed earlier.
 */
int tls_store_set_ticket_keys(struct tls_store *store, const struct tls_ticket_key *keys, size_t n,
                              char *err, size_t errlen);

/* An issued certificate held in memory (ACME), for tls_store_reload(). */
struct tls_pem_pair {
    const char *cert_pem; /* chain, leaf first, NUL-terminated */
    const char *key_pem;  /* its key, NUL-terminated */
    const char *origin;   /* for messages, e.g. "acme app.example.org" */
};

/*
 * tls_store_reload - what SIGHUP and a renewal do: builds a set from the operator's files
 * (cert_files[i] with key_files[i], in order) followed by the issued pairs, and installs it.
 * Operator files come first, so they win a name both claim. All or nothing: on any error
 * (message names the file) the running certificates stay. Returns 0 or a TLS_E* code.
 */
int tls_store_reload(struct tls_store *store, const char *const *cert_files,
                     const char *const *key_files, size_t nfiles, const struct tls_pem_pair *issued,
                     size_t nissued, char *err, size_t errlen);

#define TLS_TICKET_EPOCH_S (12 * 3600) /* ticket key lifetime as encryption key */

/*
 * tls_store_set_ticket_secret - cluster-wide ticket keys from a shared secret (the cluster
 * key): the key of the current epoch (now / TLS_TICKET_EPOCH_S) encrypts, the previous
 * epoch's still decrypts. Every gateway calling this with the same secret and a clock within
 * an epoch of the others resumes the others' sessions. Call again at least once per epoch.
 */
int tls_store_set_ticket_secret(struct tls_store *store, const uint8_t *secret, size_t len,
                                time_t now, char *err, size_t errlen);

/* tls_store_stats - a snapshot of the store's counters. */
void tls_store_get_stats(struct tls_store *store, struct tls_store_stats *out);

/* ---- the HTTPS connection layer -------------------------------------------------------- */

struct proxy_conn; /* proxy/conn.h */

/* What to do with an HTTPS connection once its ClientHello is known. */
enum tls_route {
    TLS_ROUTE_TERMINATE = 0,   /* handshake here, then plaintext HTTP in c->in */
    TLS_ROUTE_PASSTHROUGH = 1, /* hand the raw bytes, untouched, to the owner (splice) */
    TLS_ROUTE_REFUSE = 2,      /* no route for that name: unrecognized_name alert, close */
};

/*
 * Called once per connection, on its loop thread, when the ClientHello is complete and well
 * formed. For TLS_ROUTE_PASSTHROUGH the layer removes itself before its owner's on_read
 * runs: every byte received so far (the hello and anything after it) is then in c->in,
 * exactly as sent, and later reads land there directly. The callback must not close the
 * connection (answer TLS_ROUTE_REFUSE instead); it may start connecting a backend.
 */
typedef enum tls_route (*tls_route_fn)(struct proxy_conn *c, const struct tls_client_hello *hello,
                                       void *ctx);

/*
 * tls_conn_attach - puts the HTTPS layer on a connection that has not started reading.
 *
 * Until the ClientHello is whole nothing reaches c->in. Then: bytes that are not TLS close
 * the connection; a malformed hello gets a decode_error alert; the route callback decides
 * the rest. After a completed handshake c->in receives plaintext and everything written to
 * the connection is encrypted. Failures end the connection through on_read(c, UV_EPROTO),
 * after the alert (if any) was written. Every outcome is counted in the store's stats.
 * Returns 0 or UV_ENOMEM.
 */
int tls_conn_attach(struct proxy_conn *c, struct tls_store *store, tls_route_fn route, void *ctx);

/* tls_conn_established - whether the connection finished a TLS handshake. */
bool tls_conn_established(const struct proxy_conn *c);

/* Internal to tls_*.c: counts one layer outcome in the store. */
enum tls_count {
    TLS_COUNT_NOT_TLS,
    TLS_COUNT_MALFORMED,
    TLS_COUNT_REFUSED,
    TLS_COUNT_PASSTHROUGH,
    TLS_COUNT_HANDSHAKE,
    TLS_COUNT_RESUMED,
    TLS_COUNT_HANDSHAKE_FAILURE,
    TLS_COUNT_MAX
};
void tls_store_count(struct tls_store *store, enum tls_count what);

#endif
