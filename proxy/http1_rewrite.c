/*
 * http1_rewrite.c - the heads the gateway writes: requests to backends and responses to
 * clients. Framing is always regenerated from what the parser decided, never copied, so a
 * message cannot mean one thing to us and another to the next hop (request smuggling).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/http1.h"

#define CONN_TOKENS_MAX 16

/* An append-only output buffer that remembers overflow instead of checking every call, and
 * counts in `need` the bytes the whole output takes, so a caller whose buffer was short learns
 * the exact size (the *_len functions run the writers with no buffer at all). */
struct out {
    char *p;
    size_t len, cap;
    size_t need; /* bytes written or that would have been */
    bool overflow;
};

static void put(struct out *o, const char *s, size_t n)
{
    o->need += n;
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = o->overflow ? vsnprintf(NULL, 0, fmt, ap)
                        : vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->overflow = true;
        return;
    }
    o->need += (size_t)n;
    if ((size_t)n >= o->cap - o->len)
        o->overflow = true;
    else if (!o->overflow)
        o->len += (size_t)n;
}

static void put_u64(struct out *o, uint64_t v)
{
    char digits[24];
    int n = 0;
    do {
        digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, digits + sizeof(digits) - n, (size_t)n);
}

static void put_u64_field(struct out *o, const char *name, uint64_t v)
{
    puts_(o, name);
    put_u64(o, v);
    put(o, "\r\n", 2);
}

static void put_field(struct out *o, const struct http1_header *f)
{
    put(o, f->name, f->name_len);
    put(o, ": ", 2);
    put(o, f->value, f->value_len);
    put(o, "\r\n", 2);
}

/* Names that describe one hop and must not be forwarded (RFC 9110 7.6.1), plus the framing
 * fields we regenerate. Checked by length first: this runs for every field of every message. */
static bool is_hop_by_hop(const struct http1_header *f)
{
    switch (f->name_len) {
    case 2:
        return http1_name_is(f, "te");
    case 7:
        return http1_name_is(f, "trailer") || http1_name_is(f, "upgrade");
    case 10: /* Webgw-Hops is ours to count (http1_via.c): always rewritten */
        return http1_name_is(f, "connection") || http1_name_is(f, "keep-alive") ||
               http1_name_is(f, "webgw-hops");
    case 14:
        /* h2c's upgrade parameters: connection-specific (RFC 7540 3.2.1), never forwarded */
        return http1_name_is(f, "content-length") || http1_name_is(f, "http2-settings");
    case 16:
        return http1_name_is(f, "proxy-connection");
    case 17:
        return http1_name_is(f, "transfer-encoding");
    default:
        return false;
    }
}

struct span {
    const char *p;
    size_t len;
};

/* Collects the field names a Connection header lists: they are hop-by-hop too. */
static size_t connection_tokens(const struct http1_head *h, struct span *tok, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++) {
        const struct http1_header *f = &h->fields[i];
        if (!http1_name_is(f, "connection"))
            continue;
        size_t a = 0;
        while (a < f->value_len && n < cap) {
            size_t b = a;
            while (b < f->value_len && f->value[b] != ',')
                b++;
            size_t s = a, e = b;
            while (s < e && (f->value[s] == ' ' || f->value[s] == '\t'))
                s++;
            while (e > s && (f->value[e - 1] == ' ' || f->value[e - 1] == '\t'))
                e--;
            if (e > s) {
                tok[n].p = f->value + s;
                tok[n].len = e - s;
                n++;
            }
            a = b + 1;
        }
    }
    return n;
}

static bool named_by_connection(const struct http1_header *f, const struct span *tok, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (tok[i].len == f->name_len && strncasecmp(tok[i].p, f->name, f->name_len) == 0)
            return true;
    return false;
}

static const struct http1_header *find(const struct http1_head *h, const char *lower)
{
    size_t n = strlen(lower);

    for (size_t i = 0; i < h->count; i++)
        if (http1_name_is_n(&h->fields[i], lower, n))
            return &h->fields[i];
    return NULL;
}

static void put_framing(struct out *o, enum http1_framing framing, uint64_t length)
{
    if (framing == HTTP1_FRAME_LENGTH)
        put_u64_field(o, "Content-Length: ", length);
    else if (framing == HTTP1_FRAME_CHUNKED)
        puts_(o, "Transfer-Encoding: chunked\r\n");
}

/* A Forwarded (RFC 7239) value is a token, or a quoted-string when it holds other bytes (the
 * ':' of a port, the brackets of IPv6). Values here come validated (an IP we formatted, a
 * Host that passed http1_host_normalize), but quote and escape by the grammar anyway. */
static void put_forwarded_value(struct out *o, const char *v, size_t n, bool brackets)
{
    bool token = !brackets && n > 0;
    for (size_t i = 0; i < n && token; i++) {
        unsigned char c = (unsigned char)v[i];
        token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                strchr("!#$%&'*+-.^_`|~", c) != NULL;
    }
    if (token) {
        put(o, v, n);
        return;
    }
    put(o, brackets ? "\"[" : "\"", brackets ? 2 : 1);
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '"' || v[i] == '\\')
            put(o, "\\", 1);
        put(o, v + i, 1);
    }
    put(o, brackets ? "]\"" : "\"", brackets ? 2 : 1);
}

/* Our element of Forwarded: for=CLIENT;proto=PROTO;host=HOST. */
static void put_forwarded_element(struct out *o, const struct http1_forward *fwd)
{
    put(o, "for=", 4);
    put_forwarded_value(o, fwd->client_ip, strlen(fwd->client_ip),
                        strchr(fwd->client_ip, ':') != NULL);
    put(o, ";proto=", 7);
    puts_(o, fwd->proto);
    if (fwd->host && fwd->host_len) {
        put(o, ";host=", 6);
        put_forwarded_value(o, fwd->host, fwd->host_len, false);
    }
}

/* Fields a client sends about earlier hops, folded into one list (trusted peers) or dropped
 * (anyone else), then ours: "X-Forwarded-For" and "Forwarded" extend the list with this hop. */
static void put_hop_list(struct out *o, const struct http1_head *h, size_t first, const char *lower,
                         const char *name, bool trusted)
{
    puts_(o, name);
    put(o, ": ", 2);
    if (trusted) {
        size_t n = strlen(lower);

        for (size_t j = first; j < h->count; j++) {
            if (!http1_name_is_n(&h->fields[j], lower, n))
                continue;
            put(o, h->fields[j].value, h->fields[j].value_len);
            put(o, ", ", 2);
        }
    }
}

static void build_request(struct out *o, const struct http1_head *h,
                          const struct http1_forward *fwd)
{
    struct span tok[CONN_TOKENS_MAX];
    size_t ntok = connection_tokens(h, tok, CONN_TOKENS_MAX);
    const char *target = h->target;
    size_t target_len = h->target_len;
    const char *authority = NULL;
    size_t authority_len = 0;

    /* absolute-form goes out in origin-form: the backend sees the path only */
    if (target_len > 7 && (strncasecmp(target, "http://", 7) == 0 ||
                           (target_len > 8 && strncasecmp(target, "https://", 8) == 0))) {
        const char *auth = memchr(target, ':', target_len) + 3;
        const char *end = target + target_len;
        const char *path = auth;
        while (path < end && *path != '/' && *path != '?')
            path++;
        authority = auth;
        authority_len = (size_t)(path - auth);
        target = path;
        target_len = (size_t)(end - path);
    }
    puts_(o, llhttp_method_name((llhttp_method_t)h->method));
    put(o, " ", 1);
    if (target_len == 0 || target[0] == '?')
        put(o, "/", 1);
    put(o, target, target_len);
    puts_(o, " HTTP/1.1\r\n");

    /* absolute-form: the authority is what we routed by (RFC 9112 3.2.2 says to ignore Host
     * then), so it becomes the Host the backend sees, replacing the client's */
    if (authority_len) {
        put(o, "Host: ", 6);
        put(o, authority, authority_len);
        put(o, "\r\n", 2);
    }
    bool xff_sent = false, fwd_sent = false;
    for (size_t i = 0; i < h->count; i++) {
        const struct http1_header *f = &h->fields[i];
        bool is_host = f->name_len == 4 && http1_name_is(f, "host");
        if (authority_len && is_host)
            continue;
        /* Connection may not strip Host: it is end-to-end and the backend needs it */
        if (is_hop_by_hop(f) || (!is_host && named_by_connection(f, tok, ntok)))
            continue;
        if (http1_name_is(f, "x-forwarded-for")) {
            if (fwd->trusted_peer && !xff_sent) {
                /* fold every trusted copy into one list, then append the peer */
                put_hop_list(o, h, i, "x-forwarded-for", "X-Forwarded-For", true);
                puts_(o, fwd->client_ip);
                put(o, "\r\n", 2);
                xff_sent = true;
            }
            continue;
        }
        if (http1_name_is(f, "forwarded")) {
            if (fwd->trusted_peer && !fwd_sent) {
                put_hop_list(o, h, i, "forwarded", "Forwarded", true);
                put_forwarded_element(o, fwd);
                put(o, "\r\n", 2);
                fwd_sent = true;
            }
            continue;
        }
        if (http1_name_is(f, "x-forwarded-proto") || http1_name_is(f, "x-forwarded-host") ||
            http1_name_is(f, "x-real-ip")) {
            if (fwd->trusted_peer)
                put_field(o, f);
            continue;
        }
        put_field(o, f);
    }
    if (!xff_sent) {
        put(o, "X-Forwarded-For: ", 17);
        puts_(o, fwd->client_ip);
        put(o, "\r\n", 2);
    }
    if (!fwd_sent) {
        put(o, "Forwarded: ", 11);
        put_forwarded_element(o, fwd);
        put(o, "\r\n", 2);
    }
    if (!fwd->trusted_peer || find(h, "x-real-ip") == NULL) {
        put(o, "X-Real-IP: ", 11);
        puts_(o, fwd->client_ip);
        put(o, "\r\n", 2);
    }
    if (!fwd->trusted_peer || find(h, "x-forwarded-proto") == NULL) {
        put(o, "X-Forwarded-Proto: ", 19);
        puts_(o, fwd->proto);
        put(o, "\r\n", 2);
    }
    if ((!fwd->trusted_peer || find(h, "x-forwarded-host") == NULL) && fwd->host) {
        put(o, "X-Forwarded-Host: ", 18);
        put(o, fwd->host, fwd->host_len);
        put(o, "\r\n", 2);
    }
    /* received Via fields went out above in their order; ours comes last (RFC 9110 7.6.3) */
    if (fwd->via_name && fwd->via_name[0]) { /* "Via: 1.1 NAME": no printf per request */
        put(o, "Via: ", 5);
        put_u64(o, h->major);
        put(o, ".", 1);
        put_u64(o, h->minor);
        put(o, " ", 1);
        puts_(o, fwd->via_name);
        put(o, "\r\n", 2);
    }
    if (fwd->hops)
        put_u64_field(o, "Webgw-Hops: ", fwd->hops);
    if (h->upgrade) {
        const struct http1_header *up = find(h, "upgrade");
        puts_(o, "Connection: upgrade\r\nUpgrade: ");
        put(o, up->value, up->value_len);
        put(o, "\r\n", 2);
    }
    put_framing(o, h->framing, h->content_length);
    put(o, "\r\n", 2);
}

int http1_build_request(const struct http1_head *h, const struct http1_forward *fwd, char *buf,
                        size_t cap)
{
    struct out o = {buf, 0, cap, 0, false};
    build_request(&o, h, fwd);
    return o.overflow ? -1 : (int)o.len;
}

size_t http1_request_len(const struct http1_head *h, const struct http1_forward *fwd)
{
    struct out o = {NULL, 0, 0, 0, false};
    build_request(&o, h, fwd);
    return o.need;
}

static void build_response(struct out *o, const struct http1_head *h, enum http1_framing framing,
                           bool keep_alive, bool client_http10)
{
    struct span tok[CONN_TOKENS_MAX];
    size_t ntok = connection_tokens(h, tok, CONN_TOKENS_MAX);

    char status[14] = "HTTP/1.1 000 ";
    status[9] = (char)('0' + h->status / 100 % 10);
    status[10] = (char)('0' + h->status / 10 % 10);
    status[11] = (char)('0' + h->status % 10);
    put(o, status, 13);
    if (h->reason_len)
        put(o, h->reason, h->reason_len);
    else
        puts_(o, http1_reason(h->status));
    put(o, "\r\n", 2);
    for (size_t i = 0; i < h->count; i++) {
        const struct http1_header *f = &h->fields[i];
        if (is_hop_by_hop(f) || named_by_connection(f, tok, ntok))
            continue;
        put_field(o, f);
    }
    if (h->status == 101) {
        const struct http1_header *up = find(h, "upgrade");
        puts_(o, "Connection: upgrade\r\n");
        if (up) {
            put(o, "Upgrade: ", 9);
            put(o, up->value, up->value_len);
            put(o, "\r\n", 2);
        }
    } else {
        put_framing(o, framing, h->content_length);
        if (!keep_alive)
            puts_(o, "Connection: close\r\n");
        else if (client_http10)
            puts_(o, "Connection: keep-alive\r\n");
    }
    put(o, "\r\n", 2);
}

int http1_build_response(const struct http1_head *h, enum http1_framing framing, bool keep_alive,
                         bool client_http10, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap, 0, false};
    build_response(&o, h, framing, keep_alive, client_http10);
    return o.overflow ? -1 : (int)o.len;
}

size_t http1_response_len(const struct http1_head *h, enum http1_framing framing, bool keep_alive,
                          bool client_http10)
{
    struct out o = {NULL, 0, 0, 0, false};
    build_response(&o, h, framing, keep_alive, client_http10);
    return o.need;
}

int http1_build_local(int status, const char *msg, bool keep_alive, bool head_only,
                      const char *extra_fields, char *buf, size_t cap)
{
    struct out o = {buf, 0, cap, 0, false};
    size_t mlen = strlen(msg);
    putf(&o,
         "HTTP/1.1 %03d %s\r\nServer: webgw\r\nContent-Type: text/plain; charset=utf-8\r\n"
         "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n",
         status, http1_reason(status), mlen + 1, extra_fields ? extra_fields : "",
         keep_alive ? "" : "Connection: close\r\n");
    if (!head_only) {
        put(&o, msg, mlen);
        put(&o, "\n", 1);
    }
    return o.overflow ? -1 : (int)o.len;
}

const char *http1_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 308:
        return "Permanent Redirect";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 508:
        return "Loop Detected";
    default:
        return "Unknown";
    }
}

int http1_host_normalize(const char *host, size_t len, char *out, size_t cap)
{
    size_t n = 0;
    if (len == 0)
        return -1;
    if (host[0] == '[') {
        const char *end = memchr(host, ']', len);
        if (end == NULL)
            return -1;
        size_t l = (size_t)(end - host) + 1;
        if (l >= cap)
            return -1;
        for (size_t i = 0; i < l; i++) {
            char c = host[i];
            if (!(c == '[' || c == ']' || c == ':' || c == '.' || (c >= '0' && c <= '9') ||
                  (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
                return -1;
            out[n++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
        host += l;
        len -= l;
    } else {
        while (len && *host != ':') {
            char c = *host;
            if (c >= 'A' && c <= 'Z')
                c = (char)(c + 32);
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                  c == '_'))
                return -1;
            if (n + 1 >= cap)
                return -1;
            out[n++] = c;
            host++;
            len--;
        }
        if (n && out[n - 1] == '.')
            n--;
        if (n == 0)
            return -1;
    }
    if (len) { /* ":PORT" */
        if (*host != ':' || len < 2 || len > 6)
            return -1;
        for (size_t i = 1; i < len; i++)
            if (host[i] < '0' || host[i] > '9')
                return -1;
    }
    out[n] = '\0';
    return (int)n;
}
