/*
 * acme_internal.h - what the files of acme/ share and nothing else uses: JWS (RFC 7515) and
 * JWK thumbprints (acme_jws.c), the HTTPS transport to the CA over libcurl (acme_http.c),
 * and the error-message helpers. Private to acme/ (and its tests); the interface is acme.h.
 */
#ifndef WEBGW_ACME_ACME_INTERNAL_H
#define WEBGW_ACME_ACME_INTERNAL_H

#include "acme/acme.h"

/* ---- JWS ------------------------------------------------------------------------------- */

/* acme_base64url - unpadded base64url of `len` bytes into `out` (cap >= 4*len/3+4).
 * Returns the length written, or 0 when `cap` is too small. */
size_t acme_base64url(const uint8_t *in, size_t len, char *out, size_t cap);

/* acme_jwk - the public JWK of a P-256 key, members in lexicographic order and no
 * whitespace (RFC 7638), so it doubles as the thumbprint input. Returns 0 or negative. */
int acme_jwk(EVP_PKEY *key, char *out, size_t cap, char *err, size_t errlen);

/* acme_jwk_thumbprint - base64url(SHA-256(acme_jwk)) into out (cap > ACME_THUMBPRINT_LEN). */
int acme_jwk_thumbprint(EVP_PKEY *key, char *out, size_t cap, char *err, size_t errlen);

/*
 * acme_jws - a flattened JWS JSON serialization (RFC 7515 7.2.2) of `payload` (may be ""
 * for POST-as-GET) under ES256, with a protected header holding alg, nonce, url and either
 * the account URL as kid or, when kid is NULL, the jwk. Returns a malloc'd string or NULL.
 */
char *acme_jws(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
               const char *payload, char *err, size_t errlen);

/* ---- transport (used by acme_client.c) ------------------------------------------------ */

/* One answer from the CA. */
struct acme_http_response {
    long status;                 /* HTTP status */
    char *body;                  /* NUL-terminated body (at most ACME_RESPONSE_MAX) */
    size_t len;                  /* body bytes */
    char nonce[256];             /* Replay-Nonce, "" when absent */
    char location[ACME_URL_MAX]; /* Location, "" when absent */
    long retry_after;            /* Retry-After in seconds, -1 when absent */
};

struct acme_http; /* a keep-alive HTTPS session to one CA */

struct acme_http *acme_http_new(const char *ca_file, long timeout_ms, char *err, size_t errlen);
void acme_http_free(struct acme_http *http);
/* Makes the request in flight, and every later one, fail with ACME_ECANCELED (any thread). */
void acme_http_cancel(struct acme_http *http);
bool acme_http_canceled(const struct acme_http *http);

/*
 * acme_http_request - `method` ("GET", "HEAD" or "POST") on an https:// `url`; a POST sends
 * `body` as application/jose+json. Redirects are not followed. Returns 0 with `resp`
 * filled (any status), or ACME_EHTTP/ACME_ELIMIT with a message.
 */
int acme_http_request(struct acme_http *http, const char *method, const char *url, const char *body,
                      struct acme_http_response *resp, char *err, size_t errlen);
void acme_http_response_free(struct acme_http_response *resp);

/* ---- error messages (acme_err.c) ------------------------------------------------------ */

/*
 * acme_errf - formats a message into err (when err is non-NULL and errlen > 0; truncated to
 * fit, always terminated) and returns code, so a failure path reads
 * "return acme_errf(err, errlen, ACME_EINVAL, ...)".
 */
int acme_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * acme_ssl_reason - the reason string of the most recent error on this thread's OpenSSL
 * error queue, or "unknown error" when there is none; clears the queue so a later message
 * does not report a stale reason. The string is static, never freed.
 */
const char *acme_ssl_reason(void);

#endif
