/*
 * acme_http.c - HTTPS to the ACME CA, with libcurl.
 *
 * Why libcurl rather than our own client over OpenSSL: talking to a CA needs certificate
 * and host name verification, proxies in some deployments, keep-alive, chunked bodies and
 * timeouts done right, and the traffic is a few dozen requests per certificate every two
 * months. libcurl does all of that, is in Debian with OpenSSL as its TLS library
 * (libcurl4-openssl-dev), and keeps this file to request plumbing. Only https:// is
 * allowed and redirects are not followed: ACME hands out every URL itself.
 */
#include "acme/acme_internal.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

struct acme_http {
    CURL *curl;           /* reused so the connection to the CA is kept alive */
    char *ca_file;        /* trust anchors, or NULL for the system store */
    long timeout_ms;      /* per request */
    atomic_bool canceled; /* acme_http_cancel: stop the transfer, refuse new ones */
};

void acme_http_cancel(struct acme_http *http)
{
    atomic_store(&http->canceled, true);
}

bool acme_http_canceled(const struct acme_http *http)
{
    return atomic_load(&http->canceled);
}

/* curl calls this while a transfer runs: often while data flows, about once a second while
 * nothing moves (a stalled CA included). Non-zero aborts the transfer. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    return acme_http_canceled(ctx) ? 1 : 0;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct acme_http *acme_http_new(const char *ca_file, long timeout_ms, char *err, size_t errlen)
{
    struct acme_http *http;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    http = calloc(1, sizeof(*http));
    if (!http || !(http->curl = curl_easy_init()) ||
        (ca_file && !(http->ca_file = strdup(ca_file)))) {
        snprintf(err, errlen, "out of memory");
        acme_http_free(http);
        return NULL;
    }
    http->timeout_ms = timeout_ms > 0 ? timeout_ms : 30000;
    return http;
}

void acme_http_free(struct acme_http *http)
{
    if (!http)
        return;
    if (http->curl)
        curl_easy_cleanup(http->curl);
    free(http->ca_file);
    free(http);
}

struct sink {
    struct acme_http_response *resp; /* where the answer goes */
    bool over;                       /* the body passed ACME_RESPONSE_MAX */
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    struct sink *sink = arg;
    struct acme_http_response *r = sink->resp;
    size_t n = size * nmemb;
    char *body;

    if (r->len + n > ACME_RESPONSE_MAX) {
        sink->over = true;
        return 0; /* aborts the transfer */
    }
    body = realloc(r->body, r->len + n + 1);
    if (!body)
        return 0;
    memcpy(body + r->len, data, n);
    r->body = body;
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

/* Copies the value of header `name` from `line` into out, trimmed; false if not that one. */
static bool header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name), start, end;

    if (len <= nlen || strncasecmp(line, name, nlen) != 0 || line[nlen] != ':')
        return false;
    start = nlen + 1;
    end = len;
    while (start < end && isspace((unsigned char)line[start]))
        start++;
    while (end > start && isspace((unsigned char)line[end - 1]))
        end--;
    if (end - start >= cap)
        return true; /* too long to be genuine: leave it empty */
    memcpy(out, line + start, end - start);
    out[end - start] = '\0';
    return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *arg)
{
    struct acme_http_response *r = arg;
    size_t len = size * nmemb;
    char value[64];

    /* a new status line (after a 100 Continue) starts a fresh set of headers */
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        r->nonce[0] = r->location[0] = '\0';
        r->retry_after = -1;
        return len;
    }
    if (header_value(line, len, "Replay-Nonce", r->nonce, sizeof(r->nonce)) ||
        header_value(line, len, "Location", r->location, sizeof(r->location)))
        return len;
    if (header_value(line, len, "Retry-After", value, sizeof(value))) {
        char *end;
        long secs = strtol(value, &end, 10);
        if (end != value && *end == '\0' && secs >= 0) {
            r->retry_after = secs;
        } else {
            time_t when = curl_getdate(value, NULL); /* the HTTP-date form */
            time_t now = time(NULL);
            if (when > 0)
                r->retry_after = when > now ? (long)(when - now) : 0;
        }
    }
    return len;
}

int acme_http_request(struct acme_http *http, const char *method, const char *url, const char *body,
                      struct acme_http_response *resp, char *err, size_t errlen)
{
    struct sink sink = {resp, false};
    struct curl_slist *headers = NULL;
    CURL *c = http->curl;
    CURLcode cc;
    int rc = ACME_OK;

    memset(resp, 0, sizeof(*resp));
    resp->retry_after = -1;
    if (strncmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "%s: ACME URLs must be https", url);
        return ACME_EINVAL;
    }
    if (acme_http_canceled(http))
        return acme_errf(err, errlen, ACME_ECANCELED, "%s %s: canceled (node stopping)", method,
                         url);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, http->timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, http);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "webgw-acme/" WEBGW_VERSION);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, resp);
    if (http->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, http->ca_file);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        headers = curl_slist_append(headers, "Content-Type: application/jose+json");
        if (!headers) {
            snprintf(err, errlen, "out of memory");
            return ACME_ENOMEM;
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    }
    cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        if (cc == CURLE_ABORTED_BY_CALLBACK && acme_http_canceled(http)) {
            snprintf(err, errlen, "%s %s: canceled (node stopping)", method, url);
            rc = ACME_ECANCELED;
        } else if (sink.over) {
            snprintf(err, errlen, "%s %s: response larger than %d bytes", method, url,
                     ACME_RESPONSE_MAX);
            rc = ACME_ELIMIT;
        } else {
            snprintf(err, errlen, "%s %s: %s", method, url, curl_easy_strerror(cc));
            rc = ACME_EHTTP;
        }
        acme_http_response_free(resp);
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
    if (!resp->body && !(resp->body = calloc(1, 1))) {
        snprintf(err, errlen, "out of memory");
        rc = ACME_ENOMEM;
    }
out:
    curl_slist_free_all(headers);
    return rc;
}

void acme_http_response_free(struct acme_http_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}
