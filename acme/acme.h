/*
 * acme.h - automatic certificates: an ACME (RFC 8555) client for HTTP-01 and DNS-01, the
 * challenge table every gateway answers from, and the fleet's share of the work (who orders
 * a name, certificates sealed for gossip). The public interface of acme/; the JWS and HTTPS
 * transport underneath are private (acme_internal.h).
 *
 *   challenges  struct acme_challenges: token -> key authorization, filled by whoever learns
 *               a token (the local ACME client, or gossip carrying another node's), read by
 *               the HTTP listener for GET /.well-known/acme-challenge/TOKEN
 *               (acme_challenges.c). The CA's validation request may land on any gateway,
 *               so the client publishes each token through struct acme_publisher, which the
 *               node implements with gossip, and only then asks the CA to validate.
 *   keys        ES256 account keys (acme_jws.c).
 *   client      the order flow: directory, nonce, account, order, authorizations,
 *               challenges, CSR, finalize, download (acme_client.c) over libcurl
 *               (acme_http.c). Blocking by design: certificates are ordered a few times a
 *               month, so the node runs the client on a thread of its own, never on a
 *               proxy worker.
 *   fleet       rendezvous choice of the orderer, AES-GCM sealing (acme_cluster.c).
 *   schedule    when to renew, and how long to back off after a failure (acme_schedule.c).
 *
 * Layering: acme/ uses OpenSSL, libcurl and jansson, nothing of webgw above it. The proxy
 * reads the challenge table (its HTTP listener answers the CA) and the node drives the rest
 * (node_acme.c: the worker thread, gossip, installing certificates in the proxy's TLS store):
 * node -> proxy -> acme, node -> acme.
 */
#ifndef WEBGW_ACME_ACME_H
#define WEBGW_ACME_ACME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>

#define ACME_TOKEN_MAX 128          /* longest challenge token accepted (base64url) */
#define ACME_KEY_AUTH_MAX 256       /* token + "." + 43-byte thumbprint fits */
#define ACME_CHALLENGES_MAX 4096    /* tokens held at once by one table */
#define ACME_NAMES_MAX 100          /* DNS names in one order (Let's Encrypt's limit) */
#define ACME_RESPONSE_MAX (1 << 20) /* largest CA response body read */
#define ACME_URL_MAX 2048           /* longest URL taken from the CA */
#define ACME_THUMBPRINT_LEN 43      /* base64url of a SHA-256 */
#define ACME_CHALLENGE_PREFIX "/.well-known/acme-challenge/"
#define ACME_RENEW_BEFORE_S (30 * 86400) /* renew 30 days before expiry */
#define ACME_ERR_MAX 512                 /* size of an error message buffer */

enum acme_error {
    ACME_OK = 0,
    ACME_EINVAL = -1,    /* bad argument or malformed input */
    ACME_ENOMEM = -2,    /* allocation failed */
    ACME_ECRYPTO = -3,   /* key, signature or CSR failure */
    ACME_EHTTP = -4,     /* transport failure talking to the CA */
    ACME_ECA = -5,       /* the CA answered with an error (problem document in the message) */
    ACME_ERATE = -6,     /* the CA rate-limited us: back off at least retry_after */
    ACME_ETIMEOUT = -7,  /* an authorization or order did not settle in time */
    ACME_EINVALID = -8,  /* the CA found a challenge or order invalid */
    ACME_ELIMIT = -9,    /* a limit above was reached */
    ACME_ECANCELED = -10 /* acme_client_cancel was called: the order was abandoned */
};

/* ---- challenge table ------------------------------------------------------------------- */

struct acme_challenges; /* thread-safe: gossip writes, every worker reads */

struct acme_challenges *acme_challenges_new(void);
void acme_challenges_free(struct acme_challenges *table);

/*
 * acme_challenges_put - answer `token` with `key_auth` until `expires` (unix seconds).
 * The token must be 1..ACME_TOKEN_MAX base64url characters and key_auth must be
 * "TOKEN.THUMBPRINT", so nothing else can be made to appear under the challenge path.
 * Replaces an existing entry for the token; drops expired entries. Returns 0, ACME_EINVAL
 * or ACME_ELIMIT (table full of live entries).
 */
int acme_challenges_put(struct acme_challenges *table, const char *token, const char *key_auth,
                        time_t expires, char *err, size_t errlen);

/* acme_challenges_remove - forget `token` (absent is fine). */
void acme_challenges_remove(struct acme_challenges *table, const char *token);

/* acme_challenges_count - live entries (for metrics and tests). */
size_t acme_challenges_count(struct acme_challenges *table);

/*
 * acme_challenges_answer - what the HTTP listener sends for a request target `path`
 * (`len` bytes, not NUL-terminated; any query string is part of it and never matches).
 * Returns 0 when the path is not under ACME_CHALLENGE_PREFIX (proxy it as usual), 200 with
 * the key authorization copied into `body` (`*body_len` bytes), or 404 for an unknown or
 * expired token. `cap` must be at least ACME_KEY_AUTH_MAX.
 */
int acme_challenges_answer(struct acme_challenges *table, const char *path, size_t len, char *body,
                           size_t cap, size_t *body_len);

/*
 * How the client makes a token answerable by every gateway. publish() returns 0 once the
 * token is in place everywhere the CA may connect (the gossip implementation waits for
 * dissemination), or a negative code with a message; withdraw() is called when the order
 * no longer needs the token, whatever the outcome.
 */
struct acme_publisher {
    int (*publish)(void *ctx, const char *token, const char *key_auth, char *err, size_t errlen);
    void (*withdraw)(void *ctx, const char *token);
    void *ctx;
    /* DNS-01 (optional): make TXT `name` ("_acme-challenge.IDENT") hold `value` (base64url
     * SHA-256 of the key authorization, ACME_TXT_LEN characters) wherever the CA may ask;
     * withdraw(token) ends it. */
    int (*publish_txt)(void *ctx, const char *name, const char *token, const char *value, char *err,
                       size_t errlen);
};

#define ACME_TXT_LEN 43 /* base64url of a SHA-256 digest, unpadded */

/* acme_publisher_local - a publisher that fills only `table` (a single gateway). */
struct acme_publisher acme_publisher_local(struct acme_challenges *table);

/* ---- keys and JWS ---------------------------------------------------------------------- */

/* acme_key_generate - a new ECDSA P-256 key (ES256), or NULL with a message. */
EVP_PKEY *acme_key_generate(char *err, size_t errlen);

/*
 * acme_key_load_or_create - the account key in `path` (PEM), created with mode 0600 when
 * the file does not exist. Refuses keys other than P-256. Returns 0 or a negative code.
 */
int acme_key_load_or_create(const char *path, EVP_PKEY **out, char *err, size_t errlen);

/* ---- the client ------------------------------------------------------------------------ */

struct acme_config {
    const char *directory_url;       /* e.g. https://acme-v02.api.letsencrypt.org/directory */
    const char *ca_file;             /* PEM trust anchors for the CA's HTTPS; NULL: system */
    const char *contact;             /* "mailto:ops@example.org" or NULL */
    EVP_PKEY *account_key;           /* P-256; the client takes a reference */
    struct acme_publisher publisher; /* makes HTTP-01 tokens answerable */
    const char *dns01_zone;          /* identifiers equal to or under this zone (wildcards
                                        included) are validated with DNS-01 through
                                        publisher.publish_txt; NULL: HTTP-01 only */
    long http_timeout_ms;            /* per request; 0: 30 s */
    long poll_interval_ms;           /* between status polls without Retry-After; 0: 1 s */
    long poll_timeout_ms;            /* give up on an authorization or order; 0: 120 s */
};

/* A certificate the CA issued. */
struct acme_cert {
    char *cert_pem;   /* full chain, leaf first */
    char *key_pem;    /* the new private key (P-256, PKCS#8 PEM) */
    time_t not_after; /* leaf expiry */
};

struct acme_client;

/* acme_client_new - a client for one CA and account; no network traffic yet. */
struct acme_client *acme_client_new(const struct acme_config *config, char *err, size_t errlen);
void acme_client_free(struct acme_client *client);

/*
 * acme_client_issue - orders, validates (HTTP-01) and downloads a certificate for `names`
 * (1..ACME_NAMES_MAX DNS names, first one the CN). Creates the account on first use.
 * Blocks for as long as the CA takes. A badNonce answer is retried with the fresh nonce.
 * On ACME_ERATE, `*retry_after` (if not NULL) holds the CA's Retry-After in seconds (0 when
 * it sent none). Returns 0 and fills `out`, or a negative ACME_E* code with the CA's own
 * words in `err`.
 */
int acme_client_issue(struct acme_client *client, const char *const *names, size_t n,
                      struct acme_cert *out, long *retry_after, char *err, size_t errlen);

/*
 * acme_client_cancel - abandons the order in flight, from any thread: the request under way
 * stops within about a second (curl calls its progress callback about once a second while
 * nothing moves, more often while data flows) and a wait between polls within 100 ms; that and
 * every later acme_client_issue return ACME_ECANCELED. For a node that is stopping: without it,
 * its stop waited for curl's per-request timeout (30 s) or a poll wait (up to 10 s).
 */
void acme_client_cancel(struct acme_client *client);

/* acme_cert_free - frees the strings of `cert` (scrubbing the key). */
void acme_cert_free(struct acme_cert *cert);

/* acme_client_account_url - the account URL once known ("" before), for logs. */
const char *acme_client_account_url(const struct acme_client *client);

/* ---- the fleet: who orders, and certificates sealed for gossip (acme_cluster.c) -------- */

#define ACME_SEALED_MAX 4096 /* a sealed certificate fits one gossip item (GOSSIP_ITEM_MAX) */
#define ACME_SEAL_KEY_LEN 32 /* AES-256-GCM key: the cluster key */

/*
 * acme_orderer - which of `n` alive members orders the certificate of `name`: the highest
 * SHA-256(member id || 0 || name) (rendezvous hashing). Every node computes the same answer
 * from the same member list, orders spread over the fleet, and when the orderer dies only
 * its names move. Returns the index into ids, or -1 when n is 0.
 */
long acme_orderer(const char *name, const char *const *ids, size_t n);

/*
 * acme_cert_seal - `cert` for `name` encrypted with AES-256-GCM under the cluster key, for
 * replication through gossip (every gateway serves every name; no shared storage). The
 * chain and key travel as DER; `name` is authenticated (AAD), so a sealed item cannot be
 * replayed under another name. Returns 0 with *out_len set, ACME_ELIMIT when it would not
 * fit `cap` (at most ACME_SEALED_MAX), or ACME_EINVAL / ACME_ECRYPTO.
 */
int acme_cert_seal(const uint8_t key[ACME_SEAL_KEY_LEN], const char *name,
                   const struct acme_cert *cert, uint8_t *out, size_t cap, size_t *out_len,
                   char *err, size_t errlen);

/*
 * acme_cert_open - the reverse, trying each of `nkeys` keys (the keyring: all decrypt).
 * Checks that the key matches the leaf and that the leaf covers `name`. Fills `out` (PEM,
 * free with acme_cert_free). Returns 0, ACME_EINVAL (malformed, not for this name, or no key
 * opens it) or ACME_ENOMEM.
 */
int acme_cert_open(const uint8_t (*keys)[ACME_SEAL_KEY_LEN], size_t nkeys, const char *name,
                   const uint8_t *in, size_t len, struct acme_cert *out, char *err, size_t errlen);

/* ---- scheduling ------------------------------------------------------------------------ */

/* acme_renewal_due - whether a certificate expiring at `not_after` should be renewed now. */
bool acme_renewal_due(time_t not_after, time_t now);

/*
 * acme_backoff_seconds - how long to wait before attempt number `failures` (1 after the
 * first failure): 60 s doubling up to 24 h, never less than the CA's `retry_after`, spread
 * by `jitter` in [0, 1) over the upper quarter so a fleet does not retry in lockstep.
 */
long acme_backoff_seconds(unsigned failures, long retry_after, double jitter);

#endif
