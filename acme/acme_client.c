/*
 * acme_client.c - ordering a certificate from an ACME CA with HTTP-01 or, for names in the
 * zone the fleet answers DNS for, DNS-01 (RFC 8555 7 and 8.4; DNS-01 is the only way to a
 * wildcard certificate).
 *
 * The flow, one blocking call per certificate: directory -> newNonce -> newAccount (once)
 * -> newOrder -> for each authorization: publish the key authorization through the
 * acme_publisher, tell the CA the challenge is ready, poll until valid -> finalize with a
 * CSR for a fresh P-256 key -> poll the order -> download the chain. Every POST is a JWS;
 * each response carries the next nonce, and a badNonce refusal is retried with it
 * (RFC 8555 6.5: clients must be ready for that). Errors carry the CA's problem document
 * ("newOrder: HTTP 403 urn:ietf:params:acme:error:rejectedIdentifier: ...") so that the
 * node's log line says what the CA objected to; rate limits come back as ACME_ERATE with
 * the CA's Retry-After so the scheduler can honour it.
 */
#include "acme/acme_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define NONCE_RETRIES 3 /* badNonce retries of one request */

struct acme_client {
    char *directory_url;                      /* where the CA lists its endpoints */
    char *contact;                            /* account contact, or NULL */
    EVP_PKEY *key;                            /* account key (a reference) */
    struct acme_publisher publisher;          /* makes tokens answerable */
    char *dns01_zone;                         /* DNS-01 for names in it; NULL: HTTP-01 only */
    long poll_interval_ms;                    /* default wait between polls */
    long poll_timeout_ms;                     /* give up on a pending object after this */
    struct acme_http *http;                   /* connection to the CA */
    char thumbprint[ACME_THUMBPRINT_LEN + 1]; /* of the account key */
    char new_nonce[ACME_URL_MAX];             /* directory entries */
    char new_account[ACME_URL_MAX];
    char new_order[ACME_URL_MAX];
    char account[ACME_URL_MAX]; /* account URL (the JWS kid), "" before newAccount */
    char nonce[256];            /* next nonce to use, "" when none is held */
};

struct acme_client *acme_client_new(const struct acme_config *cfg, char *err, size_t errlen)
{
    struct acme_client *c = calloc(1, sizeof(*c));

    if (!c) {
        acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        return NULL;
    }
    if (!cfg->directory_url || !cfg->account_key || !cfg->publisher.publish ||
        !cfg->publisher.withdraw) {
        acme_errf(err, errlen, ACME_EINVAL,
                  "acme: directory URL, account key and publisher needed");
        goto fail;
    }
    if (acme_jwk_thumbprint(cfg->account_key, c->thumbprint, sizeof(c->thumbprint), err, errlen) !=
        ACME_OK)
        goto fail;
    c->directory_url = strdup(cfg->directory_url);
    c->contact = cfg->contact ? strdup(cfg->contact) : NULL;
    if (!c->directory_url || (cfg->contact && !c->contact)) {
        acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        goto fail;
    }
    c->http = acme_http_new(cfg->ca_file, cfg->http_timeout_ms, err, errlen);
    if (!c->http)
        goto fail;
    EVP_PKEY_up_ref(cfg->account_key);
    c->key = cfg->account_key;
    c->publisher = cfg->publisher;
    if (cfg->dns01_zone && cfg->publisher.publish_txt &&
        (c->dns01_zone = strdup(cfg->dns01_zone)) == NULL) {
        acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        goto fail;
    }
    c->poll_interval_ms = cfg->poll_interval_ms > 0 ? cfg->poll_interval_ms : 1000;
    c->poll_timeout_ms = cfg->poll_timeout_ms > 0 ? cfg->poll_timeout_ms : 120000;
    return c;
fail:
    acme_client_free(c);
    return NULL;
}

void acme_client_free(struct acme_client *c)
{
    if (!c)
        return;
    acme_http_free(c->http);
    EVP_PKEY_free(c->key);
    free(c->directory_url);
    free(c->contact);
    free(c->dns01_zone);
    free(c);
}

const char *acme_client_account_url(const struct acme_client *c)
{
    return c->account;
}

void acme_cert_free(struct acme_cert *cert)
{
    free(cert->cert_pem);
    if (cert->key_pem) {
        OPENSSL_cleanse(cert->key_pem, strlen(cert->key_pem));
        free(cert->key_pem);
    }
    memset(cert, 0, sizeof(*cert));
}

/* ---- responses --------------------------------------------------------------------------- */

static json_t *parse_json(const struct acme_http_response *r)
{
    return json_loadb(r->body, r->len, 0, NULL);
}

/* Copies string member `name` of `obj` into out; false when absent, not a string or long. */
static bool json_str(json_t *obj, const char *name, char *out, size_t cap)
{
    const char *v = json_string_value(json_object_get(obj, name));
    if (!v || strlen(v) >= cap)
        return false;
    memcpy(out, v, strlen(v) + 1);
    return true;
}

/* Turns a CA error answer into a message and a code. */
static int problem(const struct acme_http_response *r, const char *what, long *retry_after,
                   char *err, size_t errlen)
{
    json_t *doc = parse_json(r);
    const char *type = json_string_value(json_object_get(doc, "type"));
    const char *detail = json_string_value(json_object_get(doc, "detail"));
    bool rate = r->status == 429 || (type && strstr(type, ":rateLimited"));
    int rc = rate ? ACME_ERATE : ACME_ECA;

    if (rate && retry_after)
        *retry_after = r->retry_after > 0 ? r->retry_after : 0;
    acme_errf(err, errlen, rc, "%s: HTTP %ld %s%s%s", what, r->status,
              type ? type : "(no problem type)", detail ? ": " : "", detail ? detail : "");
    json_decref(doc);
    return rc;
}

static bool is_bad_nonce(const struct acme_http_response *r)
{
    bool bad = false;
    if (r->status == 400) {
        json_t *doc = parse_json(r);
        const char *type = json_string_value(json_object_get(doc, "type"));
        bad = type && strcmp(type, "urn:ietf:params:acme:error:badNonce") == 0;
        json_decref(doc);
    }
    return bad;
}

/* ---- requests ---------------------------------------------------------------------------- */

static int fetch_directory(struct acme_client *c, char *err, size_t errlen)
{
    struct acme_http_response r;
    json_t *doc = NULL;
    int rc;

    if (c->new_order[0])
        return ACME_OK;
    rc = acme_http_request(c->http, "GET", c->directory_url, NULL, &r, err, errlen);
    if (rc != ACME_OK)
        return rc;
    if (r.status != 200) {
        rc = problem(&r, "directory", NULL, err, errlen);
        goto out;
    }
    doc = parse_json(&r);
    if (!json_str(doc, "newNonce", c->new_nonce, sizeof(c->new_nonce)) ||
        !json_str(doc, "newAccount", c->new_account, sizeof(c->new_account)) ||
        !json_str(doc, "newOrder", c->new_order, sizeof(c->new_order))) {
        c->new_order[0] = '\0';
        rc = acme_errf(err, errlen, ACME_ECA,
                       "directory %s: newNonce, newAccount or newOrder missing", c->directory_url);
    }
out:
    json_decref(doc);
    acme_http_response_free(&r);
    return rc;
}

static int fetch_nonce(struct acme_client *c, char *err, size_t errlen)
{
    struct acme_http_response r;
    int rc = acme_http_request(c->http, "HEAD", c->new_nonce, NULL, &r, err, errlen);

    if (rc != ACME_OK)
        return rc;
    if ((r.status == 200 || r.status == 204) && r.nonce[0])
        memcpy(c->nonce, r.nonce, sizeof(c->nonce));
    else
        rc = acme_errf(err, errlen, ACME_ECA, "newNonce: HTTP %ld without Replay-Nonce", r.status);
    acme_http_response_free(&r);
    return rc;
}

/*
 * A signed POST of `payload` ("" for POST-as-GET) to `url`, signed with the JWK when the
 * account is not known yet. Retries a badNonce refusal. The caller frees `r`.
 */
static int post(struct acme_client *c, const char *url, const char *payload,
                struct acme_http_response *r, char *err, size_t errlen)
{
    for (int attempt = 0;; attempt++) {
        char *jws;
        int rc;

        if (!c->nonce[0] && (rc = fetch_nonce(c, err, errlen)) != ACME_OK)
            return rc;
        jws = acme_jws(c->key, c->account[0] ? c->account : NULL, c->nonce, url, payload, err,
                       errlen);
        c->nonce[0] = '\0'; /* a nonce is good for one request */
        if (!jws)
            return ACME_ECRYPTO;
        rc = acme_http_request(c->http, "POST", url, jws, r, err, errlen);
        free(jws);
        if (rc != ACME_OK)
            return rc;
        if (r->nonce[0])
            memcpy(c->nonce, r->nonce, sizeof(c->nonce));
        if (!is_bad_nonce(r) || attempt == NONCE_RETRIES)
            return ACME_OK;
        acme_http_response_free(r);
    }
}

static int ensure_account(struct acme_client *c, long *retry_after, char *err, size_t errlen)
{
    struct acme_http_response r;
    json_t *payload;
    char *text;
    int rc;

    if (c->account[0])
        return ACME_OK;
    payload = json_pack("{s:b}", "termsOfServiceAgreed", 1);
    if (payload && c->contact)
        json_object_set_new(payload, "contact", json_pack("[s]", c->contact));
    text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    if (!text)
        return acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
    rc = post(c, c->new_account, text, &r, err, errlen);
    free(text);
    if (rc != ACME_OK)
        return rc;
    if ((r.status == 200 || r.status == 201) && r.location[0])
        memcpy(c->account, r.location, sizeof(c->account));
    else
        rc = problem(&r, "newAccount", retry_after, err, errlen);
    acme_http_response_free(&r);
    return rc;
}

/* Sleeps `ms` in slices of at most 100 ms; false as soon as the client is canceled. */
static bool sleep_ms(const struct acme_client *c, long ms)
{
    while (ms > 0 && !acme_http_canceled(c->http)) {
        long slice = ms < 100 ? ms : 100;
        struct timespec ts = {0, slice * 1000000L};
        nanosleep(&ts, NULL);
        ms -= slice;
    }
    return !acme_http_canceled(c->http);
}

void acme_client_cancel(struct acme_client *client)
{
    if (client != NULL)
        acme_http_cancel(client->http);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/*
 * POST-as-GETs `url` until its "status" leaves `pending_states` (space separated), then
 * returns its JSON in *out (caller decrefs). Honours Retry-After up to 10 s per wait.
 */
static int poll_status(struct acme_client *c, const char *url, const char *what,
                       const char *pending_states, json_t **out, char *err, size_t errlen)
{
    long deadline = now_ms() + c->poll_timeout_ms;

    for (;;) {
        struct acme_http_response r;
        json_t *doc;
        const char *status;
        long wait;
        int rc = post(c, url, "", &r, err, errlen);

        if (rc != ACME_OK)
            return rc;
        if (r.status != 200) {
            rc = problem(&r, what, NULL, err, errlen);
            acme_http_response_free(&r);
            return rc;
        }
        doc = parse_json(&r);
        status = json_string_value(json_object_get(doc, "status"));
        if (!status) {
            json_decref(doc);
            acme_http_response_free(&r);
            return acme_errf(err, errlen, ACME_ECA, "%s: answer without status", what);
        }
        char key[32];
        snprintf(key, sizeof(key), " %s ", status);
        char states[128];
        snprintf(states, sizeof(states), " %s ", pending_states);
        if (!strstr(states, key)) {
            *out = doc;
            acme_http_response_free(&r);
            return ACME_OK;
        }
        wait = r.retry_after > 0 ? (r.retry_after > 10 ? 10000 : r.retry_after * 1000)
                                 : c->poll_interval_ms;
        json_decref(doc);
        acme_http_response_free(&r);
        if (now_ms() + wait > deadline)
            return acme_errf(err, errlen, ACME_ETIMEOUT, "%s: still %s after %ld ms", what,
                             pending_states, c->poll_timeout_ms);
        if (!sleep_ms(c, wait))
            return acme_errf(err, errlen, ACME_ECANCELED, "%s: canceled (node stopping)", what);
    }
}

/* The error the CA attached to an invalid authorization's challenge, for the message. */
static void challenge_error(json_t *authz, char *out, size_t cap)
{
    size_t i;
    json_t *ch;
    out[0] = '\0';
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        json_t *e = json_object_get(ch, "error");
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *detail = json_string_value(json_object_get(e, "detail"));
        if (type || detail) {
            snprintf(out, cap, "%s: %s", type ? type : "error", detail ? detail : "");
            return;
        }
    }
}

/* Whether `ident` (an authorization's identifier: a wildcard's is its base name) is validated
 * with DNS-01: it is the zone or under it. */
static bool in_dns01_zone(const struct acme_client *c, const char *ident)
{
    size_t n = strlen(ident), z = c->dns01_zone ? strlen(c->dns01_zone) : 0;

    if (z == 0 || n < z || strcasecmp(ident + n - z, c->dns01_zone) != 0)
        return false;
    return n == z || ident[n - z - 1] == '.';
}

/* Completes one authorization with HTTP-01 or DNS-01. The token goes into *published for
 * withdrawal. */
static int authorize(struct acme_client *c, const char *url, char *published, size_t pubcap,
                     char *err, size_t errlen)
{
    struct acme_http_response r;
    json_t *authz = NULL, *ch, *done = NULL;
    char token[ACME_TOKEN_MAX + 1] = "", ch_url[ACME_URL_MAX] = "", ident[256] = "";
    char key_auth[ACME_KEY_AUTH_MAX + 1], why[512];
    const char *status;
    size_t i;
    int rc = post(c, url, "", &r, err, errlen);

    if (rc != ACME_OK)
        return rc;
    if (r.status != 200) {
        rc = problem(&r, "authorization", NULL, err, errlen);
        goto out;
    }
    authz = parse_json(&r);
    status = json_string_value(json_object_get(authz, "status"));
    json_str(json_object_get(authz, "identifier"), "value", ident, sizeof(ident));
    if (status && strcmp(status, "valid") == 0)
        goto out; /* reused from an earlier order */
    if (!status || strcmp(status, "pending") != 0) {
        rc = acme_errf(err, errlen, ACME_EINVALID, "authorization for %s is %s", ident,
                       status ? status : "without status");
        goto out;
    }
    const char *want = in_dns01_zone(c, ident) ? "dns-01" : "http-01";
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        const char *type = json_string_value(json_object_get(ch, "type"));
        if (type && strcmp(type, want) == 0 && json_str(ch, "token", token, sizeof(token)) &&
            json_str(ch, "url", ch_url, sizeof(ch_url)))
            break;
        token[0] = ch_url[0] = '\0';
    }
    if (!token[0]) {
        rc = acme_errf(err, errlen, ACME_ECA, "authorization for %s offers no usable %s", ident,
                       want);
        goto out;
    }
    snprintf(key_auth, sizeof(key_auth), "%s.%s", token, c->thumbprint);
    if (want[0] == 'd') {
        uint8_t digest[32];
        char value[ACME_TXT_LEN + 8], name[300];
        /* RFC 8555 8.4: TXT _acme-challenge.IDENT = base64url(SHA-256(key authorization)) */
        if (EVP_Digest(key_auth, strlen(key_auth), digest, NULL, EVP_sha256(), NULL) != 1 ||
            acme_base64url(digest, sizeof(digest), value, sizeof(value)) != ACME_TXT_LEN) {
            rc = acme_errf(err, errlen, ACME_ECRYPTO, "dns-01 digest failed");
            goto out;
        }
        snprintf(name, sizeof(name), "_acme-challenge.%s", ident);
        rc = c->publisher.publish_txt(c->publisher.ctx, name, token, value, err, errlen);
    } else {
        rc = c->publisher.publish(c->publisher.ctx, token, key_auth, err, errlen);
    }
    if (rc != ACME_OK)
        goto out;
    snprintf(published, pubcap, "%s", token);

    /* only now may the CA come and look */
    acme_http_response_free(&r);
    rc = post(c, ch_url, "{}", &r, err, errlen);
    if (rc != ACME_OK)
        goto out;
    if (r.status != 200) {
        rc = problem(&r, "challenge", NULL, err, errlen);
        goto out;
    }
    rc = poll_status(c, url, "authorization", "pending processing", &done, err, errlen);
    if (rc != ACME_OK)
        goto out;
    status = json_string_value(json_object_get(done, "status"));
    if (strcmp(status, "valid") != 0) {
        challenge_error(done, why, sizeof(why));
        rc = acme_errf(err, errlen, ACME_EINVALID, "%s for %s: %s%s%s", want, ident, status,
                       why[0] ? ": " : "", why);
    }
out:
    json_decref(done);
    json_decref(authz);
    acme_http_response_free(&r);
    return rc;
}

/* A CSR for `names` under a new P-256 key, DER in base64url. */
static int make_csr(const char *const *names, size_t n, EVP_PKEY **key_out, char **csr_out,
                    char *err, size_t errlen)
{
    EVP_PKEY *key = acme_key_generate(err, errlen);
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = NULL;
    char *sans = NULL, *b64 = NULL;
    unsigned char *der = NULL;
    size_t sans_len = 0;
    int der_len, rc = ACME_ECRYPTO;

    if (!key || !req || !exts) {
        acme_errf(err, errlen, rc, "CSR: allocation failed");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        sans_len += strlen(names[i]) + 5;
    sans = calloc(1, sans_len + 1);
    if (!sans) {
        acme_errf(err, errlen, rc = ACME_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        strcat(sans, i ? ",DNS:" : "DNS:");
        strcat(sans, names[i]);
    }
    san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans);
    if (!san || !sk_X509_EXTENSION_push(exts, san) || X509_REQ_set_version(req, 0) != 1 ||
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_ASC,
                                   (const unsigned char *)names[0], -1, -1, 0) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_add_extensions(req, exts) != 1 ||
        X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        if (!sk_X509_EXTENSION_num(exts))
            X509_EXTENSION_free(san);
        acme_errf(err, errlen, rc, "CSR: %s", ERR_reason_error_string(ERR_peek_last_error()));
        goto out;
    }
    der_len = i2d_X509_REQ(req, &der);
    b64 = der_len > 0 ? malloc((size_t)der_len * 4 / 3 + 8) : NULL;
    if (!b64 || !acme_base64url(der, (size_t)der_len, b64, (size_t)der_len * 4 / 3 + 8)) {
        free(b64);
        acme_errf(err, errlen, rc, "CSR: encoding failed");
        goto out;
    }
    *csr_out = b64;
    *key_out = key;
    key = NULL;
    rc = ACME_OK;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    free(sans);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return rc;
}

/* Checks the downloaded chain: its leaf carries our key; notes its expiry. */
static int check_chain(const char *pem, EVP_PKEY *key, time_t *not_after, char *err, size_t errlen)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    struct tm tm;
    int rc = ACME_OK;

    if (!leaf)
        rc = acme_errf(err, errlen, ACME_ECA, "certificate: no PEM certificate in the download");
    else if (X509_check_private_key(leaf, key) != 1)
        rc = acme_errf(err, errlen, ACME_ECA, "certificate: does not match the key we sent");
    else if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &tm) != 1)
        rc = acme_errf(err, errlen, ACME_ECA, "certificate: unreadable notAfter");
    else
        *not_after = timegm(&tm);
    ERR_clear_error();
    X509_free(leaf);
    BIO_free(bio);
    return rc;
}

static bool name_ok(const char *name)
{
    size_t len = strlen(name), label = 0;
    if (len < 1 || len > 253)
        return false;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
    }
    return label > 0;
}

int acme_client_issue(struct acme_client *c, const char *const *names, size_t n,
                      struct acme_cert *out, long *retry_after, char *err, size_t errlen)
{
    struct acme_http_response r = {0};
    json_t *order = NULL, *ids = NULL, *done = NULL, *authzs;
    char order_url[ACME_URL_MAX] = "", finalize[ACME_URL_MAX], cert_url[ACME_URL_MAX];
    char(*published)[ACME_TOKEN_MAX + 1] = NULL;
    char *text = NULL, *csr = NULL;
    EVP_PKEY *cert_key = NULL;
    size_t i, npublished = 0;
    json_t *item;
    int rc;

    memset(out, 0, sizeof(*out));
    if (retry_after)
        *retry_after = 0;
    if (n < 1 || n > ACME_NAMES_MAX)
        return acme_errf(err, errlen, ACME_EINVAL, "order: 1 to %d names, not %zu", ACME_NAMES_MAX,
                         n);
    for (i = 0; i < n; i++) {
        /* a wildcard "*.ZONE" only where DNS-01 validates it (HTTP-01 has no wildcards) */
        bool wild = strncmp(names[i], "*.", 2) == 0 && in_dns01_zone(c, names[i] + 2);
        if (!name_ok(wild ? names[i] + 2 : names[i]))
            return acme_errf(err, errlen, ACME_EINVAL,
                             "order: \"%s\" is not a lowercase DNS name (wildcards only in the "
                             "DNS-01 zone)",
                             names[i]);
    }

    if ((rc = fetch_directory(c, err, errlen)) != ACME_OK ||
        (rc = ensure_account(c, retry_after, err, errlen)) != ACME_OK)
        return rc;

    ids = json_array();
    for (i = 0; ids && i < n; i++)
        json_array_append_new(ids, json_pack("{s:s,s:s}", "type", "dns", "value", names[i]));
    json_t *payload = ids ? json_pack("{s:O}", "identifiers", ids) : NULL;
    text = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
    json_decref(payload);
    if (!text) {
        rc = acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        goto out;
    }
    rc = post(c, c->new_order, text, &r, err, errlen);
    if (rc != ACME_OK)
        goto out;
    if (r.status != 201 || !r.location[0]) {
        rc = problem(&r, "newOrder", retry_after, err, errlen);
        goto out;
    }
    memcpy(order_url, r.location, sizeof(order_url));
    order = parse_json(&r);
    authzs = json_object_get(order, "authorizations");
    if (!json_str(order, "finalize", finalize, sizeof(finalize)) || !json_is_array(authzs) ||
        json_array_size(authzs) == 0 || json_array_size(authzs) > ACME_NAMES_MAX) {
        rc =
            acme_errf(err, errlen, ACME_ECA, "newOrder: answer without finalize or authorizations");
        goto out;
    }
    published = calloc(json_array_size(authzs), sizeof(*published));
    if (!published) {
        rc = acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        goto out;
    }
    json_array_foreach(authzs, i, item)
    {
        const char *url = json_string_value(item);
        if (!url) {
            rc = acme_errf(err, errlen, ACME_ECA, "newOrder: authorization is not a URL");
            goto out;
        }
        published[npublished][0] = '\0';
        rc = authorize(c, url, published[npublished], sizeof(published[0]), err, errlen);
        if (published[npublished][0])
            npublished++;
        if (rc != ACME_OK)
            goto out;
    }

    rc = make_csr(names, n, &cert_key, &csr, err, errlen);
    if (rc != ACME_OK)
        goto out;
    free(text);
    if (asprintf(&text, "{\"csr\":\"%s\"}", csr) < 0) {
        text = NULL;
        rc = acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        goto out;
    }
    acme_http_response_free(&r);
    rc = post(c, finalize, text, &r, err, errlen);
    if (rc != ACME_OK)
        goto out;
    if (r.status != 200) {
        rc = problem(&r, "finalize", retry_after, err, errlen);
        goto out;
    }
    rc = poll_status(c, order_url, "order", "pending ready processing", &done, err, errlen);
    if (rc != ACME_OK)
        goto out;
    if (strcmp(json_string_value(json_object_get(done, "status")), "valid") != 0 ||
        !json_str(done, "certificate", cert_url, sizeof(cert_url))) {
        rc = acme_errf(err, errlen, ACME_EINVALID, "order %s: %s", order_url,
                       json_string_value(json_object_get(done, "status")));
        goto out;
    }
    acme_http_response_free(&r);
    rc = post(c, cert_url, "", &r, err, errlen);
    if (rc != ACME_OK)
        goto out;
    if (r.status != 200) {
        rc = problem(&r, "certificate", retry_after, err, errlen);
        goto out;
    }
    rc = check_chain(r.body, cert_key, &out->not_after, err, errlen);
    if (rc != ACME_OK)
        goto out;

    BIO *bio = BIO_new(BIO_s_mem());
    char *pem;
    long pem_len;
    if (!bio || PEM_write_bio_PrivateKey(bio, cert_key, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pem_len = BIO_get_mem_data(bio, &pem)) <= 0 ||
        !(out->key_pem = strndup(pem, (size_t)pem_len))) {
        BIO_free(bio);
        rc = acme_errf(err, errlen, ACME_ENOMEM, "out of memory");
        goto out;
    }
    BIO_free(bio);
    out->cert_pem = r.body;
    r.body = NULL;
out:
    for (i = 0; i < npublished; i++)
        c->publisher.withdraw(c->publisher.ctx, published[i]);
    if (rc != ACME_OK)
        acme_cert_free(out);
    free(published);
    free(text);
    free(csr);
    EVP_PKEY_free(cert_key);
    json_decref(ids);
    json_decref(order);
    json_decref(done);
    acme_http_response_free(&r);
    return rc;
}
