/*
 * httpd.h - the small HTTP/1.1 server behind the API, metrics and dashboard (private to node/).
 *
 * One libuv loop, llhttp for parsing, synchronous handlers: a handler answers before it
 * returns, so pipelined requests are answered in order without a queue. Every input is bounded:
 * request line and headers (431), body (413), connections per client IP, requests per second
 * per client IP (429), idle and header time.
 */
#ifndef WEBGW_NODE_HTTPD_H
#define WEBGW_NODE_HTTPD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define NODE_HTTPD_URL_MAX 2048       /* request target bytes */
#define NODE_HTTPD_HEADER_BYTES 16384 /* request line plus headers (431 beyond) */
#define NODE_HTTPD_HEADERS_MAX 64     /* header lines */
#define NODE_HTTPD_CONNS_MAX 1024     /* connections at once */
#define NODE_HTTPD_CONNS_PER_IP 64    /* connections at once from one client IP */
#define NODE_HTTPD_IDLE_MS 15000      /* a connection quiet this long is closed (slowloris) */

struct node_httpd;
struct node_httpd_conn;

/* One parsed request, valid only during the handler call. */
struct node_httpd_request {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* target without the query, not percent-decoded */
    const char *query;         /* after '?', or "" */
    const char *authorization; /* Authorization header value, or "" */
    const char *content_type;  /* Content-Type header value, or "" */
    const uint8_t *body;       /* request body (NULL when empty) */
    size_t body_len;           /* its length, at most the body limit */
    const char *client_ip;     /* peer address without port */
};

struct node_httpd_limits {
    size_t body_max;     /* largest body (413 beyond) */
    unsigned rate_per_s; /* requests per second per client IP (429 beyond), burst twice that */
};

typedef void (*node_httpd_handler_fn)(void *ctx, struct node_httpd_conn *conn,
                                      const struct node_httpd_request *req);

/* Binds and listens on `addr`. Returns 0 or a negative libuv code with err set. */
int node_httpd_start(uv_loop_t *loop, const struct sockaddr *addr,
                     const struct node_httpd_limits *limits, node_httpd_handler_fn handler,
                     void *ctx, struct node_httpd **out, char *err, size_t errlen);
/* New limits apply to the next request (SIGHUP). */
void node_httpd_set_limits(struct node_httpd *srv, const struct node_httpd_limits *limits);
/* Stops accepting, lets pending responses flush, closes every connection and frees the
 * server once all handles are closed. */
void node_httpd_close(struct node_httpd *srv);

/* Answers the current request. `extra_headers` is "" or complete "Name: value\r\n" lines.
 * Call exactly once per request, from the handler. */
void node_httpd_respond(struct node_httpd_conn *conn, int status, const char *content_type,
                        const void *body, size_t len, const char *extra_headers);
/* Answers {"error": message} with `status`. */
void node_httpd_error(struct node_httpd_conn *conn, int status, const char *message);

const char *node_httpd_status_text(int status);

/* Counters for /metrics. */
struct node_httpd_stats {
    uint64_t requests;      /* requests answered */
    uint64_t rate_limited;  /* answered 429 */
    uint64_t bad_requests;  /* refused by the parser or a limit (400/413/431) */
    uint64_t conns_refused; /* closed at accept for a connection limit */
    uint64_t conns_open;    /* open now */
};
void node_httpd_stats(const struct node_httpd *srv, struct node_httpd_stats *out);

#endif /* WEBGW_NODE_HTTPD_H */
