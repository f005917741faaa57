/*
 * httpd.c - a small HTTP/1.1 server on libuv for the API, metrics and dashboard.
 *
 * Why our own: the API is a handful of small JSON endpoints on the control loop, next to
 * gossip and the state writer; a library server would bring its own threads or loop. llhttp
 * does the parsing; this file adds the limits an internet-facing parser needs and the
 * connection life cycle:
 *
 *   accept -> per-IP and total connection caps -> read -> llhttp -> handler (answers at once)
 *   -> keep-alive or close (shutdown, drain the client's leftover bytes briefly, close)
 *
 * Per-IP state is keyed on the IPv4 address or the IPv6 /64 (state_ip_key) and placed by
 * SipHash under a random key, in a fixed table (HTTPD_IP_SLOTS).
 *
 * A request must be complete within NODE_HTTPD_IDLE_MS of the previous answer (or of accept),
 * however slowly its bytes arrive: that is the slowloris bound. A client that does not read
 * its answers stops being read (back-pressure) until the socket drains.
 */
#include <arpa/inet.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/httpd.h"
#include "node/node.h"

#define HTTPD_IP_SLOTS 4096           /* per-IP table size (rate and connection counts) */
#define HTTPD_IP_PROBES 8             /* slots searched per IP before evicting the stalest */
#define HTTPD_WRITE_QUEUE_MAX 1048576 /* unsent bytes before we stop reading a client */
#define HTTPD_LINGER_MS 2000          /* after a closing answer, how long we drain client input */

struct httpd_ip {
    uint8_t key[STATE_IP_KEY_LEN]; /* state_ip_key: IPv4 address or IPv6 /64 */
    bool used;                     /* slot holds an entry */
    double tokens;                 /* rate-limit bucket */
    uint64_t last_ms;              /* last refill / use */
    unsigned conns;                /* open connections from this IP */
};

struct node_httpd_conn {
    uv_tcp_t tcp;                        /* the client socket; must stay first */
    uv_timer_t timer;                    /* request deadline, then linger */
    struct node_httpd *srv;              /* owner */
    struct node_httpd_conn *prev, *next; /* srv->conns list */
    llhttp_t parser;                     /* request parser */
    struct httpd_ip *ip;                 /* per-IP entry (holds one of its conns) */
    char ip_text[INET6_ADDRSTRLEN];      /* peer address for handlers and logs */
    char url[NODE_HTTPD_URL_MAX + 1];    /* request target */
    size_t url_len;                      /* bytes in url */
    char hname[32];                      /* current header name (truncated: only matched) */
    size_t hname_len;                    /* bytes in hname */
    char hval[1024];                     /* current header value (truncated) */
    size_t hval_len;                     /* bytes in hval */
    char authorization[1024];            /* Authorization value */
    char content_type[128];              /* Content-Type value */
    size_t header_bytes;                 /* request line + headers so far */
    unsigned header_count;               /* header lines so far */
    uint8_t *body;                       /* request body */
    size_t body_len, body_cap;           /* its length and allocation */
    int fail_status;                     /* status to answer when the parser stops us */
    const char *fail_msg;                /* and why */
    bool responded;                      /* the current request has its answer */
    bool head;                           /* the current request is HEAD: no body back */
    bool closing;                        /* no more requests on this connection */
    bool lingering;                      /* shut down; discarding input until EOF or timer */
    bool reading;                        /* uv_read_start is in effect */
    bool destroyed;                      /* handles are being closed */
    unsigned pending_writes;             /* uv_write requests not completed */
    int handles;                         /* tcp + timer not yet closed */
};

struct node_httpd {
    uv_loop_t *loop;                     /* the control loop */
    uv_tcp_t listener;                   /* listening socket */
    bool closing;                        /* node_httpd_close was called */
    int handles;                         /* listener + connections not yet closed */
    struct node_httpd_limits limits;     /* current limits */
    node_httpd_handler_fn handler;       /* request handler */
    void *ctx;                           /* its context */
    struct node_httpd_conn *conns;       /* open connections */
    struct node_httpd_stats stats;       /* counters */
    struct httpd_ip ips[HTTPD_IP_SLOTS]; /* per-IP rate and connection state */
    uint64_t ip_hash_key[2];             /* SipHash key of ips (random per server) */
    char readbuf[65536];                 /* shared: a read is parsed before the next one */
};

struct httpd_write {
    uv_write_t req;            /* libuv request */
    struct node_httpd_conn *c; /* connection it belongs to */
    char data[];               /* head and body */
};

static const llhttp_settings_t *httpd_settings(void);
static void httpd_conn_close(struct node_httpd_conn *c);
static void httpd_resume(struct node_httpd_conn *c);

const char *node_httpd_status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static uint64_t httpd_now_ms(const struct node_httpd *srv)
{
    return uv_now(srv->loop);
}

/* Finds or makes the entry of an IP; NULL when the table neighbourhood is full of IPs that
 * hold connections (treated as over the limit). */
static struct httpd_ip *httpd_ip_get(struct node_httpd *srv, const uint8_t key[STATE_IP_KEY_LEN])
{
    uint64_t h = state_siphash(srv->ip_hash_key, key, STATE_IP_KEY_LEN);
    struct httpd_ip *victim = NULL;

    for (int p = 0; p < HTTPD_IP_PROBES; p++) {
        struct httpd_ip *e = &srv->ips[(h + (uint64_t)p) % HTTPD_IP_SLOTS];
        if (e->used && memcmp(e->key, key, STATE_IP_KEY_LEN) == 0)
            return e;
        if (!e->used || e->conns == 0) {
            if (!victim || !e->used || (victim->used && e->last_ms < victim->last_ms))
                victim = e;
        }
    }
    if (!victim)
        return NULL;
    memset(victim, 0, sizeof(*victim));
    memcpy(victim->key, key, STATE_IP_KEY_LEN);
    victim->used = true;
    victim->tokens = 2.0 * srv->limits.rate_per_s;
    victim->last_ms = httpd_now_ms(srv);
    return victim;
}

static bool httpd_rate_ok(struct node_httpd *srv, struct httpd_ip *e)
{
    uint64_t now = httpd_now_ms(srv);
    double burst = 2.0 * srv->limits.rate_per_s;

    e->tokens += (double)(now - e->last_ms) * srv->limits.rate_per_s / 1000.0;
    if (e->tokens > burst)
        e->tokens = burst;
    e->last_ms = now;
    if (e->tokens < 1.0)
        return false;
    e->tokens -= 1.0;
    return true;
}

static void httpd_maybe_free(struct node_httpd *srv)
{
    if (srv->closing && srv->handles == 0)
        free(srv);
}

static void httpd_conn_handle_closed(uv_handle_t *h)
{
    struct node_httpd_conn *c = h->data;
    struct node_httpd *srv = c->srv;

    if (--c->handles > 0)
        return;
    free(c->body);
    free(c);
    srv->handles--;
    httpd_maybe_free(srv);
}

static void httpd_conn_destroy(struct node_httpd_conn *c)
{
    struct node_httpd *srv = c->srv;

    if (c->destroyed)
        return;
    c->destroyed = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->ip && c->ip->conns > 0)
        c->ip->conns--;
    srv->stats.conns_open--;
    c->handles = 2;
    uv_close((uv_handle_t *)&c->tcp, httpd_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, httpd_conn_handle_closed);
}

static void httpd_linger_timeout(uv_timer_t *t)
{
    httpd_conn_destroy(t->data);
}

static void httpd_shutdown_done(uv_shutdown_t *req, int status)
{
    struct node_httpd_conn *c = req->data;

    free(req);
    if (status != 0 || c->srv->closing) {
        httpd_conn_destroy(c);
        return;
    }
    /* the client may still be sending (a refused body): read and drop it briefly so our
     * answer is not destroyed by a reset */
    c->lingering = true;
    uv_timer_start(&c->timer, httpd_linger_timeout, HTTPD_LINGER_MS, 0);
}

/* Called when a closing connection has no write left: half-close, then linger. */
static void httpd_conn_finish(struct node_httpd_conn *c)
{
    uv_shutdown_t *req;

    if (c->lingering || c->destroyed)
        return;
    req = malloc(sizeof(*req));
    if (!req) {
        httpd_conn_destroy(c);
        return;
    }
    req->data = c;
    c->lingering = true; /* blocks a second shutdown; reads now discard */
    if (uv_shutdown(req, (uv_stream_t *)&c->tcp, httpd_shutdown_done) != 0) {
        free(req);
        httpd_conn_destroy(c);
    }
}

static void httpd_conn_close(struct node_httpd_conn *c)
{
    c->closing = true;
    if (c->pending_writes == 0)
        httpd_conn_finish(c);
}

static void httpd_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct node_httpd_conn *c = h->data;

    buf->base = c->srv->readbuf;
    buf->len = sizeof(c->srv->readbuf);
}

static void httpd_request_timeout(uv_timer_t *t)
{
    struct node_httpd_conn *c = t->data;

    /* mid-request: say why; idle keep-alive: just close */
    if (c->header_bytes > 0 && !c->closing) {
        c->fail_status = 408;
        node_httpd_error(c, 408, "request not received in time");
    }
    httpd_conn_close(c);
}

static void httpd_write_done(uv_write_t *req, int status)
{
    struct httpd_write *w = (struct httpd_write *)req;
    struct node_httpd_conn *c = w->c;

    free(w);
    c->pending_writes--;
    if (status != 0) {
        c->closing = true;
        if (c->pending_writes == 0)
            httpd_conn_destroy(c);
        return;
    }
    if (c->closing) {
        if (c->pending_writes == 0)
            httpd_conn_finish(c);
        return;
    }
    if (!c->reading && c->tcp.write_queue_size < HTTPD_WRITE_QUEUE_MAX)
        httpd_resume(c);
}

void node_httpd_respond(struct node_httpd_conn *c, int status, const char *content_type,
                        const void *body, size_t len, const char *extra_headers)
{
    struct httpd_write *w;
    char head[1024];
    int hlen;
    uv_buf_t buf;

    if (c->responded)
        return;
    c->responded = true;
    c->srv->stats.requests++;
    if (status == 429)
        c->srv->stats.rate_limited++;
    if (c->fail_status)
        c->closing = true;
    hlen = snprintf(head, sizeof(head),
                    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                    "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s%s\r\n",
                    status, node_httpd_status_text(status), content_type, len,
                    c->closing ? "Connection: close\r\n" : "", extra_headers ? extra_headers : "");
    if (hlen < 0 || (size_t)hlen >= sizeof(head))
        hlen = (int)sizeof(head) - 1;
    w = malloc(sizeof(*w) + (size_t)hlen + len);
    if (!w) {
        c->closing = true;
        return;
    }
    w->c = c;
    memcpy(w->data, head, (size_t)hlen);
    if (c->head)
        len = 0; /* same headers (Content-Length included), no body */
    if (len)
        memcpy(w->data + hlen, body, len);
    buf = uv_buf_init(w->data, (unsigned)((size_t)hlen + len));
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, httpd_write_done) != 0) {
        free(w);
        c->closing = true;
        return;
    }
    c->pending_writes++;
}

void node_httpd_error(struct node_httpd_conn *c, int status, const char *message)
{
    char body[512];
    size_t n = 0;

    n += (size_t)snprintf(body, sizeof(body), "{\"error\": \"");
    for (const char *p = message; *p && n + 8 < sizeof(body); p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch == '"' || ch == '\\') {
            body[n++] = '\\';
            body[n++] = (char)ch;
        } else if (ch < 0x20) {
            n += (size_t)snprintf(body + n, sizeof(body) - n, "\\u%04x", ch);
        } else {
            body[n++] = (char)ch;
        }
    }
    n += (size_t)snprintf(body + n, sizeof(body) - n, "\"}\n");
    node_httpd_respond(c, status, "application/json", body, n,
                       status == 429 ? "Retry-After: 1\r\n" : "");
}

/* ---- parser callbacks ------------------------------------------------------------------- */

static int httpd_fail(struct node_httpd_conn *c, int status, const char *msg)
{
    c->fail_status = status;
    c->fail_msg = msg;
    return -1;
}

static int httpd_count_header_bytes(struct node_httpd_conn *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > NODE_HTTPD_HEADER_BYTES)
        return httpd_fail(c, 431, "request headers too large");
    return 0;
}

static int httpd_on_message_begin(llhttp_t *p)
{
    struct node_httpd_conn *c = p->data;

    c->url_len = 0;
    c->hname_len = c->hval_len = 0;
    c->authorization[0] = c->content_type[0] = '\0';
    c->header_bytes = 0;
    c->header_count = 0;
    c->body_len = 0;
    c->responded = false;
    c->head = false;
    return 0;
}

static int httpd_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct node_httpd_conn *c = p->data;

    if (c->url_len + len > NODE_HTTPD_URL_MAX)
        return httpd_fail(c, 431, "request target too long");
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    c->url[c->url_len] = '\0';
    return httpd_count_header_bytes(c, len);
}

static void httpd_append(char *dst, size_t *len, size_t cap, const char *at, size_t n)
{
    size_t room = cap - 1 - *len;

    if (n > room)
        n = room;
    memcpy(dst + *len, at, n);
    *len += n;
    dst[*len] = '\0';
}

static int httpd_on_header_field(llhttp_t *p, const char *at, size_t len)
{
    struct node_httpd_conn *c = p->data;

    httpd_append(c->hname, &c->hname_len, sizeof(c->hname), at, len);
    return httpd_count_header_bytes(c, len);
}

static int httpd_on_header_value(llhttp_t *p, const char *at, size_t len)
{
    struct node_httpd_conn *c = p->data;

    httpd_append(c->hval, &c->hval_len, sizeof(c->hval), at, len);
    return httpd_count_header_bytes(c, len);
}

static int httpd_on_header_value_complete(llhttp_t *p)
{
    struct node_httpd_conn *c = p->data;

    if (++c->header_count > NODE_HTTPD_HEADERS_MAX)
        return httpd_fail(c, 431, "too many request headers");
    if (strcasecmp(c->hname, "authorization") == 0)
        snprintf(c->authorization, sizeof(c->authorization), "%s", c->hval);
    else if (strcasecmp(c->hname, "content-type") == 0)
        snprintf(c->content_type, sizeof(c->content_type), "%.127s", c->hval);
    c->hname_len = c->hval_len = 0;
    c->hname[0] = c->hval[0] = '\0';
    return httpd_count_header_bytes(c, 4);
}

static int httpd_on_headers_complete(llhttp_t *p)
{
    struct node_httpd_conn *c = p->data;

    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > c->srv->limits.body_max)
        return httpd_fail(c, 413, "request body too large");
    return 0;
}

static int httpd_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct node_httpd_conn *c = p->data;

    if (c->body_len + len > c->srv->limits.body_max)
        return httpd_fail(c, 413, "request body too large");
    if (c->body_len + len > c->body_cap) {
        size_t cap = c->body_cap ? c->body_cap : 4096;
        uint8_t *nb;
        while (cap < c->body_len + len)
            cap *= 2;
        nb = realloc(c->body, cap);
        if (!nb)
            return httpd_fail(c, 500, "out of memory");
        c->body = nb;
        c->body_cap = cap;
    }
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    return 0;
}

static int httpd_on_message_complete(llhttp_t *p)
{
    struct node_httpd_conn *c = p->data;
    struct node_httpd *srv = c->srv;
    struct node_httpd_request req;
    char *q;

    memset(&req, 0, sizeof(req));
    req.method = llhttp_method_name((llhttp_method_t)p->method);
    c->head = p->method == HTTP_HEAD;
    if (c->head)
        req.method = "GET"; /* answered as GET, without the body */
    q = strchr(c->url, '?');
    if (q)
        *q++ = '\0';
    req.path = c->url;
    req.query = q ? q : "";
    req.authorization = c->authorization;
    req.content_type = c->content_type;
    req.body = c->body_len ? c->body : NULL;
    req.body_len = c->body_len;
    req.client_ip = c->ip_text;

    if (!llhttp_should_keep_alive(p) || srv->closing)
        c->closing = true;
    if (c->ip && !httpd_rate_ok(srv, c->ip))
        node_httpd_error(c, 429, "rate limit exceeded: slow down");
    else
        srv->handler(srv->ctx, c, &req);
    if (!c->responded)
        node_httpd_error(c, 500, "no answer");
    /* the next request gets a fresh deadline */
    if (!c->closing)
        uv_timer_start(&c->timer, httpd_request_timeout, NODE_HTTPD_IDLE_MS, 0);
    return c->closing ? HPE_PAUSED : 0;
}

static const llhttp_settings_t *httpd_settings(void)
{
    static llhttp_settings_t s;
    static bool ready;

    if (!ready) { /* only ever touched from the control loop */
        llhttp_settings_init(&s);
        s.on_message_begin = httpd_on_message_begin;
        s.on_url = httpd_on_url;
        s.on_header_field = httpd_on_header_field;
        s.on_header_value = httpd_on_header_value;
        s.on_header_value_complete = httpd_on_header_value_complete;
        s.on_headers_complete = httpd_on_headers_complete;
        s.on_body = httpd_on_body;
        s.on_message_complete = httpd_on_message_complete;
        ready = true;
    }
    return &s;
}

/* ---- connections ------------------------------------------------------------------------ */

static void httpd_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct node_httpd_conn *c = s->data;
    llhttp_errno_t rc;

    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(s);
        c->reading = false;
        if (c->lingering || c->pending_writes == 0)
            httpd_conn_destroy(c);
        else
            c->closing = true;
        return;
    }
    if (c->lingering || c->closing)
        return; /* input after our last answer is dropped */
    rc = llhttp_execute(&c->parser, buf->base, (size_t)nread);
    if (rc == HPE_OK) {
        if (c->tcp.write_queue_size >= HTTPD_WRITE_QUEUE_MAX) {
            uv_read_stop(s); /* the client does not read its answers: stop reading it */
            c->reading = false;
        }
        return;
    }
    if (rc != HPE_PAUSED && rc != HPE_PAUSED_UPGRADE) {
        int status = c->fail_status ? c->fail_status : 400;
        char msg[200];
        if (status != 500)
            c->srv->stats.bad_requests++;
        snprintf(msg, sizeof(msg), "%s",
                 c->fail_msg ? c->fail_msg : llhttp_get_error_reason(&c->parser));
        c->fail_status = status;
        c->responded = false;
        node_httpd_error(c, status, msg[0] ? msg : "malformed request");
    }
    httpd_conn_close(c);
}

static void httpd_resume(struct node_httpd_conn *c)
{
    if (uv_read_start((uv_stream_t *)&c->tcp, httpd_alloc, httpd_read) == 0)
        c->reading = true;
}

static void httpd_refuse_closed(uv_handle_t *h)
{
    free(h);
}

static void httpd_on_connection(uv_stream_t *listener, int status)
{
    struct node_httpd *srv = listener->data;
    struct node_httpd_conn *c;
    struct sockaddr_storage peer;
    int plen = sizeof(peer);
    uint8_t key[STATE_IP_KEY_LEN];

    if (status != 0 || srv->closing)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&peer, &plen) != 0)
        goto refuse;
    if (peer.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, c->ip_text,
                  sizeof(c->ip_text));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, c->ip_text,
                  sizeof(c->ip_text));
    state_ip_key((struct sockaddr *)&peer, key);
    if (srv->stats.conns_open >= NODE_HTTPD_CONNS_MAX)
        goto refuse;
    c->ip = httpd_ip_get(srv, key);
    if (!c->ip || c->ip->conns >= NODE_HTTPD_CONNS_PER_IP)
        goto refuse;
    c->ip->conns++;
    uv_tcp_nodelay(&c->tcp, 1);
    c->tcp.data = c;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    llhttp_init(&c->parser, HTTP_REQUEST, httpd_settings());
    c->parser.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->handles++;
    srv->stats.conns_open++;
    uv_timer_start(&c->timer, httpd_request_timeout, NODE_HTTPD_IDLE_MS, 0);
    httpd_resume(c);
    return;
refuse:
    srv->stats.conns_refused++;
    /* c->tcp is the first member: freeing the handle frees the connection */
    uv_close((uv_handle_t *)&c->tcp, httpd_refuse_closed);
}

int node_httpd_start(uv_loop_t *loop, const struct sockaddr *addr,
                     const struct node_httpd_limits *limits, node_httpd_handler_fn handler,
                     void *ctx, struct node_httpd **out, char *err, size_t errlen)
{
    struct node_httpd *srv = calloc(1, sizeof(*srv));
    char where[64];
    int rc;

    node_addr_format(addr, where);
    if (!srv) {
        snprintf(err, errlen, "api %s: out of memory", where);
        return UV_ENOMEM;
    }
    srv->loop = loop;
    state_siphash_key(srv->ip_hash_key);
    srv->limits = *limits;
    srv->handler = handler;
    srv->ctx = ctx;
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->handles = 1;
    rc = uv_tcp_bind(&srv->listener, addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 128, httpd_on_connection);
    if (rc != 0) {
        snprintf(err, errlen, "api: listen on %s: %s", where, uv_strerror(rc));
        node_httpd_close(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

void node_httpd_set_limits(struct node_httpd *srv, const struct node_httpd_limits *limits)
{
    srv->limits = *limits;
}

static void httpd_listener_closed(uv_handle_t *h)
{
    struct node_httpd *srv = h->data;

    srv->handles--;
    httpd_maybe_free(srv);
}

void node_httpd_close(struct node_httpd *srv)
{
    struct node_httpd_conn *c, *next;

    if (!srv || srv->closing)
        return;
    srv->closing = true;
    uv_close((uv_handle_t *)&srv->listener, httpd_listener_closed);
    for (c = srv->conns; c; c = next) {
        next = c->next;
        if (c->pending_writes == 0)
            httpd_conn_destroy(c);
        else
            c->closing = true; /* destroyed once its answer is written */
    }
}

void node_httpd_stats(const struct node_httpd *srv, struct node_httpd_stats *out)
{
    *out = srv->stats;
}
