/*
 * session.c - one client connection: reads requests, routes them by Host, forwards each to a
 * backend connection and streams the response back, one request at a time so pipelined
 * requests are answered in order.
 *
 * States of a session:
 *
 *   HEAD      waiting for / parsing a request head (header timeout, then keep-alive timeout)
 *   CONNECT   head parsed and routed, a backend connection is being opened (connect timeout)
 *   EXCHANGE  request head sent; body streams client -> backend while the response streams
 *             backend -> client (response timeout, restarted by progress on either side)
 *   TUNNEL    after a 101: bytes both ways, untouched (tunnel idle timeout)
 *   CLOSING   last bytes flushing, then the connection closes
 *
 * Flow control, per direction (request: client -> backend; response: backend -> client), in
 * the manner of HAProxy's channels: each direction records its facts in one struct sess_dir
 * (its source ended; its destination is over the queue limit), and one function,
 * sess_update_reading(), derives from those facts and the session state whether the source is
 * read, recording who blocks it when not. Nothing else starts or stops reading, so a stop
 * always has a named reason that is re-checked whenever that reason can go away (an earlier
 * version stopped reading the client while connecting to a backend, with nothing to restart it:
 * uploads on new backend connections stalled at 64 KiB).
 *
 * Back-pressure: a direction stops reading its source while the destination has more than
 * write_queue_limit bytes waiting, and resumes below half of it. Bodies are never buffered
 * whole (only their first SESS_REPLAY_MAX bytes are kept, see Retries).
 *
 * Retries: a request goes to another backend when connecting failed, or when an idempotent
 * request lost its backend before any response byte. A pooled connection closed by its backend
 * just as a request went out (the keep-alive race that recv(MSG_PEEK) at reuse cannot see when
 * the close comes a moment later) costs nothing if the request is idempotent: it is sent again,
 * once, on a new connection to the same backend. The body bytes sent to a backend are kept (up
 * to SESS_REPLAY_MAX, framing and chunked terminator included) and every retry sends them again
 * after the head, then the rest of the body as it comes; when more was sent than is kept, no
 * retry: a byte would be lost. So memory per connection is bounded by the head limit, twice
 * the queue limit and SESS_REPLAY_MAX.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme/acme.h"
#include "proxy/internal.h"
#include "proxy/tls_internal.h"

#define CLIENT_IN_INITIAL 8192
#define SESS_REPLAY_MAX 65536 /* body bytes kept for replaying a request on a new connection */

enum sess_state { SS_HEAD, SS_CONNECT, SS_EXCHANGE, SS_TUNNEL, SS_CLOSING };

/* Why a direction's source is not read at the moment; derived by sess_update_reading(). */
enum sess_blocker {
    BLOCK_NONE = 0,  /* reading */
    BLOCK_SHUT,      /* the source ended (EOF): nothing more will come */
    BLOCK_DEST_FULL, /* the destination holds over write_queue_limit; until it drains to half */
    BLOCK_BUF_FULL,  /* the input buffer is at in_max and this state consumes none of it */
    BLOCK_STATE,     /* this state does not read the side (closing, connecting a passthrough) */
};

/* One direction of the session: the facts its reading depends on. */
struct sess_dir {
    bool shut;                 /* the source sent EOF */
    bool dest_full;            /* the destination's queue went over write_queue_limit */
    enum sess_blocker blocked; /* why the source is not read now (BLOCK_NONE: it is) */
};

struct proxy_session {
    struct proxy_conn c;     /* the client connection; first member */
    struct proxy_worker *w;  /* owning worker */
    struct proxy_link link;  /* in w->sessions */
    struct proxy_ipslot *ip; /* per-IP accounting */
    char client_ip[INET6_ADDRSTRLEN];
    bool trusted;       /* peer is a trusted proxy */
    bool https;         /* arrived over TLS: X-Forwarded-Proto https */
    bool passthrough;   /* HTTPS to a tls_passthrough route: raw bytes to the backend */
    uv_timer_t timer;   /* the one timeout of the current state */
    uint64_t deadline;  /* loop time the current state times out at */
    uint64_t timer_due; /* loop time the libuv timer is armed for; 0 = not armed */
    int handles;        /* open handles (connection, timer); freed at 0 */
    enum sess_state st;
    bool head_timer;          /* header timeout armed for the current head */
    unsigned requests;        /* requests started on this connection */
    struct http1_parser req;  /* client side */
    struct http1_parser resp; /* backend side, reset per exchange */
    struct http1_header *req_fields, *resp_fields;

    /* the current exchange */
    struct state_route route;  /* copied out of the RCU table */
    struct proxy_stat *stat;   /* counters of route.name */
    struct proxy_upstream *up; /* backend connection */
    struct proxy_wbackend *wb; /* its backend */
    uint32_t tried;            /* backends tried (bit = index in route) */
    unsigned attempts;         /* backends tried so far */
    char *replay;              /* body bytes as sent to the backend, for a retry */
    size_t replay_len;
    size_t replay_cap; /* bytes allocated for replay (kept across requests) */
    bool replay_lost;  /* more body was sent than replay holds: no retry */
    bool fresh_retry;  /* this request was already sent again on a new connection */
    char *up_head;     /* request head for the backend, kept for a retry */
    size_t up_head_len;
    size_t up_head_cap;  /* bytes allocated for up_head */
    uint64_t t_start_us; /* request head parsed */
    uint64_t ex_in;      /* client bytes of this exchange */
    uint64_t out_mark;   /* c.bytes_written at the start of the exchange */
    uint64_t resp_mark;  /* c.bytes_written before the final response head */
    int status;          /* status answered */
    int fail_status;     /* 502 or 504 if the last backend attempt failed */
    char fail_why[320];
    char host[256]; /* normalized Host, for routing and the log */
    char path[256]; /* request target, truncated, for the log */
    uint8_t method;
    bool client10;                /* client spoke HTTP/1.0 */
    bool head_only;               /* HEAD request: the response has no body */
    bool upgrade_wanted;          /* request asked for an Upgrade */
    bool req_done;                /* whole request read and forwarded */
    bool body_sent;               /* some request body bytes went to the backend */
    bool resp_head_done;          /* backend's final response head parsed */
    bool resp_started;            /* bytes of the response went to the client */
    bool chunked_out;             /* response is re-chunked to the client */
    bool client_keep;             /* connection stays open after this response */
    bool logged;                  /* this exchange was counted */
    bool in_exchange;             /* an exchange is open (counted when it ends) */
    struct sess_dir request_dir;  /* client -> backend (request bodies, tunnel bytes) */
    struct sess_dir response_dir; /* backend -> client; reset with each backend connection */
};

static void sess_process(struct proxy_session *s);
static void sess_close(struct proxy_session *s, bool cut);
static void sess_connect_backend(struct proxy_session *s);
static void up_read(struct proxy_conn *c, int status);
static void up_written(struct proxy_conn *c, int status);

static struct proxy *P(struct proxy_session *s)
{
    return s->w->p;
}

/* ---- flow control ---------------------------------------------------------------------- */

static void dir_apply(struct sess_dir *d, struct proxy_conn *src, enum sess_blocker why)
{
    d->blocked = why;
    if (why == BLOCK_NONE)
        proxy_conn_read_start(src);
    else
        proxy_conn_read_stop(src);
}

/* Derives, for each direction, whether its source is read now, and reads or stops reading
 * accordingly. Called after every event that changes one of its inputs: a state change, an
 * EOF, a queue crossing its limit, input consumed. */
static void sess_update_reading(struct proxy_session *s)
{
    if (s->c.closing)
        return;
    struct sess_dir *rq = &s->request_dir;
    enum sess_blocker why = BLOCK_NONE;
    if (s->st == SS_CLOSING || (s->passthrough && s->st == SS_CONNECT))
        why = BLOCK_STATE;
    else if (rq->shut)
        why = BLOCK_SHUT;
    else if (rq->dest_full)
        why = BLOCK_DEST_FULL;
    else if (s->st != SS_TUNNEL && proxy_conn_in_full(&s->c))
        why = BLOCK_BUF_FULL;
    dir_apply(rq, &s->c, why);

    if (s->up == NULL || s->up->c.closing)
        return;
    struct sess_dir *rs = &s->response_dir;
    why = BLOCK_NONE;
    if (s->st == SS_CONNECT || s->st == SS_CLOSING || s->st == SS_HEAD)
        why = BLOCK_STATE;
    else if (rs->shut)
        why = BLOCK_SHUT;
    else if (rs->dest_full)
        why = BLOCK_DEST_FULL;
    else if (s->st != SS_TUNNEL && proxy_conn_in_full(&s->up->c))
        why = BLOCK_BUF_FULL;
    dir_apply(rs, &s->up->c, why);
}

/* After writing into `to`: marks the direction full when the queue is over the limit. */
static void dir_note_queue(struct proxy_session *s, struct sess_dir *d, struct proxy_conn *to)
{
    if (proxy_conn_pending(to) > P(s)->cfg.write_queue_limit)
        d->dest_full = true;
}

/* After `to` wrote some: true when the direction was full and has drained below half. */
static bool dir_drained(struct proxy_session *s, struct sess_dir *d, struct proxy_conn *to)
{
    if (!d->dest_full || proxy_conn_pending(to) > P(s)->cfg.write_queue_limit / 2)
        return false;
    d->dest_full = false;
    return true;
}

/* ---- timers ------------------------------------------------------------------------- */

static void on_timeout(uv_timer_t *t);

/* Sets the one deadline of the current state. The libuv timer is re-armed only when the new
 * deadline is earlier than the armed one: a later deadline (the common case, progress pushing
 * a timeout back) is checked when the armed timer fires, so a request costs no timer heap
 * operation at all once a connection is warm. */
static void timer_set(struct proxy_session *s, uint32_t ms)
{
    uint64_t due = uv_now(&s->w->loop) + ms;
    s->deadline = due;
    if (s->timer_due != 0 && s->timer_due <= due)
        return;
    s->timer_due = due;
    uv_timer_start(&s->timer, on_timeout, ms, 0);
}

/* ---- log and counters ---------------------------------------------------------------- */

static void sess_log(struct proxy_session *s, bool cut)
{
    struct proxy *p = P(s);
    if (!s->in_exchange || s->logged)
        return;
    s->logged = true;
    s->in_exchange = false;
    uint64_t now = proxy_mono_us();
    uint64_t dur = now - s->t_start_us;
    uint64_t out = s->c.bytes_written - s->out_mark;
    if (s->stat == NULL)
        s->stat = proxy_stats_get(&s->w->stats, s->route.name);
    proxy_stats_record(s->stat, s->status, s->ex_in, out, dur, cut);
    if (p->cfg.access_log == NULL)
        return;
    struct proxy_access_entry e = {
        .worker = s->w->id,
        .client = s->client_ip,
        .host = s->host,
        .name = s->route.name,
        .method = llhttp_method_name((llhttp_method_t)s->method),
        .path = s->path,
        .backend = s->wb ? s->wb->be->text : "",
        .status = s->status,
        .bytes_in = s->ex_in,
        .bytes_out = out,
        .duration_us = dur,
        .cut = cut,
    };
    p->cfg.access_log(p->cfg.access_log_ctx, &e);
}

/* ---- backend attachment ---------------------------------------------------------------- */

static void up_attach(struct proxy_session *s, struct proxy_upstream *up)
{
    s->up = up;
    up->s = s;
    up->c.on_read = up_read;
    up->c.on_written = up_written;
    up->c.owner = s;
    atomic_fetch_add_explicit(&up->wb->be->in_flight, 1, memory_order_relaxed);
}

/* Detaches the backend connection; it is returned to the pool when `reuse`, else closed. */
static void up_detach(struct proxy_session *s, bool reuse)
{
    struct proxy_upstream *up = s->up;
    if (up == NULL)
        return;
    s->up = NULL;
    s->response_dir = (struct sess_dir){0};
    atomic_fetch_sub_explicit(&up->wb->be->in_flight, 1, memory_order_relaxed);
    up->c.owner = NULL;
    if (reuse) {
        up->reused = false;
        proxy_pool_put(s->w, up);
    } else {
        proxy_upstream_close(up);
    }
}

/* ---- closing ----------------------------------------------------------------------- */

static void sess_free(struct proxy_session *s)
{
    struct proxy *p = P(s);
    proxy_list_del(&s->link);
    if (s->ip)
        proxy_ip_release(&p->ips, s->ip);
    free(s->up_head);
    free(s->replay);
    atomic_fetch_sub_explicit(&p->connections, 1, memory_order_relaxed);
    free(s);
}

static void on_handle_closed(struct proxy_session *s)
{
    if (--s->handles == 0)
        sess_free(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    on_handle_closed(h->data);
}

static void on_conn_closed(struct proxy_conn *c)
{
    struct proxy_session *s = (struct proxy_session *)c;
    /* the timer goes with the connection, whichever path closed it */
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
    on_handle_closed(s);
}

static void sess_close(struct proxy_session *s, bool cut)
{
    sess_log(s, cut);
    s->st = SS_CLOSING;
    up_detach(s, false);
    proxy_conn_close(&s->c);
}

/* Ends the connection once its last bytes are written (bounded by the send timeout). */
static void sess_finish(struct proxy_session *s)
{
    s->st = SS_CLOSING;
    up_detach(s, false);
    sess_update_reading(s);
    timer_set(s, P(s)->cfg.send_timeout_ms);
    proxy_conn_close_flushed(&s->c);
}

/* ---- answers generated here ------------------------------------------------------------ */

/* Prepares the session for the next request on a kept-alive connection. */
static void sess_next(struct proxy_session *s)
{
    s->st = SS_HEAD;
    s->head_timer = false;
    http1_parser_next(&s->req);
    timer_set(s, P(s)->cfg.keepalive_timeout_ms);
    s->request_dir.dest_full = false; /* no backend queue now */
    sess_update_reading(s);
}

static void sess_local_reply(struct proxy_session *s, int status, const char *msg, bool keep,
                             const char *extra)
{
    char buf[1024];
    if (s->passthrough) {
        s->status = status;
        sess_close(s, true);
        return;
    }
    keep = keep && !s->w->draining && s->req.head.keep_alive && s->req_done && !s->request_dir.shut;
    int n = http1_build_local(status, msg, keep, s->head_only, extra, buf, sizeof(buf));
    if (n > 0)
        proxy_conn_write(&s->c, buf, (size_t)n);
    s->status = status;
    s->resp_started = true;
    proxy_conn_flush(&s->c);
    sess_log(s, false);
    up_detach(s, false);
    if (keep)
        sess_next(s);
    else
        sess_finish(s);
}

/* Answers a request that failed before any response byte reached the client, or retries it
 * (`can_retry`, and no body byte sent that is not kept for replay). */
static void sess_fail(struct proxy_session *s, int status, const char *why, bool can_retry)
{
    up_detach(s, false);
    if (can_retry && !(s->body_sent && s->replay_lost) && s->attempts <= P(s)->cfg.retries) {
        s->fail_status = status;
        snprintf(s->fail_why, sizeof(s->fail_why), "%s", why);
        sess_connect_backend(s);
        /* a pooled connection is ready at once: the body bytes already read from the client
         * go out now (no read event may come to move them: the client may have sent all) */
        if (s->st == SS_EXCHANGE && proxy_conn_avail(&s->c) != 0)
            sess_process(s);
        return;
    }
    if (s->resp_started) {
        sess_close(s, true);
        return;
    }
    sess_local_reply(s, status, why, s->req_done, NULL);
}

/* ---- request side ---------------------------------------------------------------------- */

/* Keeps a copy of body bytes sent, for a retry (see the retry note at the top); past
 * SESS_REPLAY_MAX (or out of memory) the request is marked as one that cannot be retried. */
static void replay_keep(struct proxy_session *s, const char *data, size_t len)
{
    size_t need = s->replay_len + len;
    if (s->replay_lost || len == 0)
        return;
    if (need > SESS_REPLAY_MAX) {
        s->replay_lost = true;
        return;
    }
    if (need > s->replay_cap) {
        size_t cap = s->replay_cap ? s->replay_cap : 1024;
        while (cap < need)
            cap *= 2;
        char *n = realloc(s->replay, cap);
        if (n == NULL) {
            s->replay_lost = true;
            return;
        }
        s->replay = n;
        s->replay_cap = cap;
    }
    memcpy(s->replay + s->replay_len, data, len);
    s->replay_len = need;
}

/* Queues request body bytes (as framed for the backend) and keeps a copy for a retry. */
static int up_send_body(struct proxy_session *s, const char *data, size_t len)
{
    if (proxy_conn_write(&s->up->c, data, len) != 0)
        return -1;
    s->body_sent = true;
    replay_keep(s, data, len);
    return 0;
}

static int req_body_cb(void *ctx, const char *data, size_t len)
{
    struct proxy_session *s = ctx;
    if (s->req.head.framing == HTTP1_FRAME_CHUNKED) {
        char hex[24];
        int n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
        if (up_send_body(s, hex, (size_t)n) || up_send_body(s, data, len) ||
            up_send_body(s, "\r\n", 2))
            return -1;
        return 0;
    }
    return up_send_body(s, data, len);
}

static bool own_host(const struct proxy *p, const char *host)
{
    if (strcmp(host, p->cfg.domain) == 0)
        return true;
    for (size_t i = 0; i < p->cfg.own_host_count; i++)
        if (strcmp(host, p->cfg.own_hosts[i]) == 0)
            return true;
    return false;
}

static void sess_begin_request(struct proxy_session *s)
{
    struct proxy *p = P(s);
    struct http1_head *h = &s->req.head;
    const char *hv = h->host;
    size_t hl = h->host_len;

    s->in_exchange = true;
    s->logged = false;
    s->t_start_us = proxy_mono_us();
    s->out_mark = s->c.bytes_written;
    s->ex_in = h->head_len;
    s->status = 0;
    s->method = h->method;
    s->client10 = h->minor == 0;
    s->head_only = h->method == HTTP_HEAD;
    s->upgrade_wanted = h->upgrade;
    s->req_done = s->req.message_done;
    s->body_sent = s->resp_head_done = s->resp_started = s->chunked_out = false;
    s->client_keep = false;
    s->tried = 0;
    s->attempts = 0;
    s->fail_status = 0;
    s->replay_len = 0;
    s->replay_lost = s->fresh_retry = false;
    s->stat = NULL;
    s->wb = NULL;
    s->route.name[0] = '\0';
    s->requests++;
    size_t pl = h->target_len < sizeof(s->path) - 1 ? h->target_len : sizeof(s->path) - 1;
    memcpy(s->path, h->target, pl);
    s->path[pl] = '\0';

    /* absolute-form target: its authority wins over Host (RFC 9112 3.2.2) */
    if (h->target_len > 7 &&
        (strncasecmp(h->target, "http://", 7) == 0 || strncasecmp(h->target, "https://", 8) == 0)) {
        hv = memchr(h->target, ':', h->target_len) + 3;
        const char *end = h->target + h->target_len;
        const char *e = hv;
        while (e < end && *e != '/' && *e != '?')
            e++;
        hl = (size_t)(e - hv);
    }
    int n = hv ? http1_host_normalize(hv, hl, s->host, sizeof(s->host)) : -1;
    char msg[400];
    if (n < 0) {
        s->host[0] = '\0';
        proxy_conn_consume(&s->c, h->head_len);
        sess_local_reply(s, 400, "missing or invalid Host", false, NULL);
        return;
    }
    if (p->cfg.acme && !s->https) {
        char key_auth[ACME_KEY_AUTH_MAX + 1];
        size_t klen = 0;
        int st = acme_challenges_answer(p->cfg.acme, h->target, h->target_len, key_auth,
                                        sizeof(key_auth) - 1, &klen);
        if (st != 0) {
            key_auth[klen] = '\0';
            s->route.name[0] = '\0';
            proxy_conn_consume(&s->c, h->head_len);
            sess_local_reply(s, st, st == 200 ? key_auth : "webgw: no such ACME challenge", true,
                             NULL);
            return;
        }
    }
    if (own_host(p, s->host) || !state_routes_lookup(p->routes, s->host, (size_t)n, &s->route)) {
        s->route.name[0] = '\0';
        proxy_conn_consume(&s->c, h->head_len);
        snprintf(msg, sizeof(msg), "webgw: no name \"%s\" is served here", s->host);
        sess_local_reply(s, 404, msg, true, NULL);
        return;
    }
    s->stat = proxy_stats_get(&s->w->stats, s->route.name);
    if (p->cfg.https_redirect && !s->https) {
        /* same host and target on https; an over-long or absolute-form target goes to "/"
         * rather than past the size of a local answer */
        char extra[700], port[8] = "";
        const char *target = h->target;
        size_t tlen = h->target_len;
        if (tlen == 0 || tlen > 512 || target[0] != '/')
            target = "/", tlen = 1;
        if (p->cfg.https_redirect_port && p->cfg.https_redirect_port != 443)
            snprintf(port, sizeof(port), ":%u", p->cfg.https_redirect_port);
        snprintf(extra, sizeof(extra), "Location: https://%s%s%.*s\r\n", s->host, port, (int)tlen,
                 target);
        proxy_conn_consume(&s->c, h->head_len);
        sess_local_reply(s, 308, "webgw: this name is served over HTTPS", true, extra);
        return;
    }
    if (s->route.tls_passthrough) {
        proxy_conn_consume(&s->c, h->head_len);
        snprintf(msg, sizeof(msg), "webgw: \"%s\" is served over HTTPS only", s->host);
        sess_local_reply(s, 404, msg, true, NULL);
        return;
    }
    uint32_t hops;
    enum http1_loop loop = http1_loop_check(h, p->cfg.via_name, p->cfg.max_hops, &hops);
    if (loop != HTTP1_LOOP_NONE) {
        proxy_conn_consume(&s->c, h->head_len);
        snprintf(msg, sizeof(msg), "webgw: request loop: %s",
                 loop == HTTP1_LOOP_VIA ? "this fleet forwarded it already (Via)"
                                        : "it passed too many gateways (Webgw-Hops)");
        sess_local_reply(s, 508, msg, true, NULL);
        return;
    }
    if (s->ip && !proxy_ip_take(&p->ips, s->ip, proxy_mono_ms())) {
        proxy_conn_consume(&s->c, h->head_len);
        sess_local_reply(s, 429, "webgw: too many requests from your address", true,
                         "Retry-After: 1\r\n");
        return;
    }
    struct http1_forward fwd = {
        .client_ip = s->client_ip,
        .trusted_peer = s->trusted,
        .proto = s->https ? "https" : "http",
        .host = hv, /* the Host, or the authority of an absolute-form target */
        .host_len = hl,
        .via_name = p->cfg.via_name,
        .hops = hops + 1,
    };
    /* the buffer is kept across requests: one pass and no allocation per request, unless
     * this head outgrows it; then it takes exactly what the head needs */
    int len = s->up_head ? http1_build_request(h, &fwd, s->up_head, s->up_head_cap) : -1;
    if (len < 0) {
        size_t need = http1_request_len(h, &fwd);
        char *nb = realloc(s->up_head, need);
        if (nb != NULL) {
            s->up_head = nb;
            s->up_head_cap = need;
            len = http1_build_request(h, &fwd, s->up_head, s->up_head_cap);
        }
    }
    proxy_conn_consume(&s->c, h->head_len);
    if (len < 0) {
        sess_local_reply(s, 500, "webgw: out of memory", false, NULL);
        return;
    }
    s->up_head_len = (size_t)len;
    sess_connect_backend(s);
}

/* ---- backend side ------------------------------------------------------------------------ */

static int resp_body_cb(void *ctx, const char *data, size_t len)
{
    struct proxy_session *s = ctx;
    if (s->chunked_out) {
        char hex[24];
        int n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
        if (proxy_conn_write(&s->c, hex, (size_t)n) || proxy_conn_write(&s->c, data, len) ||
            proxy_conn_write(&s->c, "\r\n", 2))
            return -1;
        return 0;
    }
    return proxy_conn_write(&s->c, data, len) ? -1 : 0;
}

static void sess_start_passthrough(struct proxy_session *s);

static void sess_upstream_ready(struct proxy_session *s)
{
    struct proxy *p = P(s);
    struct proxy_upstream *up = s->up;
    if (s->passthrough) {
        sess_start_passthrough(s);
        return;
    }
    s->st = SS_EXCHANGE;
    timer_set(s, p->cfg.response_timeout_ms);
    up->requests++;
    atomic_fetch_add_explicit(&up->wb->be->requests, 1, memory_order_relaxed);
    http1_parser_init(&s->resp, false, &p->resp_limits, s->resp_fields, p->cfg.max_header_count,
                      resp_body_cb, s);
    s->resp.skip_body = s->head_only;
    /* on a retry, the body bytes an earlier backend took go out again after the head */
    if (proxy_conn_write(&up->c, s->up_head, s->up_head_len) != 0 ||
        proxy_conn_write(&up->c, s->replay, s->replay_len) != 0) {
        sess_fail(s, 502, "webgw: cannot use the backend connection", true);
        return;
    }
    proxy_conn_flush(&up->c);
    sess_update_reading(s);
}

static void on_up_connected(struct proxy_upstream *up, int status)
{
    struct proxy_session *s = up->s;
    if (s == NULL) {
        proxy_upstream_close(up);
        return;
    }
    if (status != 0) {
        char why[160];
        proxy_backend_failed(P(s), up->wb->be, proxy_mono_ms());
        snprintf(why, sizeof(why), "webgw: backend %s: connect: %s", up->wb->be->text,
                 uv_strerror(status));
        sess_fail(s, 502, why, true);
        return;
    }
    sess_upstream_ready(s);
    if (s->st == SS_EXCHANGE)
        sess_process(s);
}

static void sess_connect_backend(struct proxy_session *s)
{
    struct proxy *p = P(s);
    for (;;) {
        struct proxy_wbackend *wb;
        int idx =
            s->attempts > p->cfg.retries ? -1 : proxy_balance_pick(s->w, &s->route, s->tried, &wb);
        if (idx < 0) {
            char msg[400];
            if (s->fail_status) {
                sess_local_reply(s, s->fail_status, s->fail_why, s->req_done, NULL);
            } else {
                snprintf(msg, sizeof(msg), "webgw: no healthy backend for \"%s\"", s->route.name);
                sess_local_reply(s, 503, msg, true, "Retry-After: 1\r\n");
            }
            return;
        }
        s->tried |= 1u << idx;
        s->attempts++;
        s->wb = wb;
        struct proxy_upstream *up = s->passthrough ? NULL : proxy_pool_take(s->w, wb);
        if (up != NULL) {
            up_attach(s, up);
            sess_upstream_ready(s);
            return;
        }
        up = proxy_upstream_connect(s->w, wb, on_up_connected);
        if (up == NULL) {
            proxy_backend_failed(p, wb->be, proxy_mono_ms());
            s->fail_status = 502;
            snprintf(s->fail_why, sizeof(s->fail_why), "webgw: backend %s: connect failed",
                     wb->be->text);
            continue;
        }
        up_attach(s, up);
        s->st = SS_CONNECT;
        timer_set(s, p->cfg.connect_timeout_ms);
        return;
    }
}

/* The final response head arrived: decide framing and keep-alive toward the client. */
static int sess_response_head(struct proxy_session *s)
{
    struct http1_head *h = &s->resp.head;
    enum http1_framing out;
    if (h->framing == HTTP1_FRAME_NONE)
        out = (s->head_only && h->has_length) ? HTTP1_FRAME_LENGTH : HTTP1_FRAME_NONE;
    else if (h->framing == HTTP1_FRAME_LENGTH)
        out = HTTP1_FRAME_LENGTH;
    else
        out = s->client10 ? HTTP1_FRAME_CLOSE : HTTP1_FRAME_CHUNKED;
    s->client_keep = s->req.head.keep_alive && !s->w->draining && s->req_done &&
                     out != HTTP1_FRAME_CLOSE && !s->upgrade_wanted && !s->request_dir.shut;
    s->resp_mark = s->c.bytes_written;
    /* one pass when the usual room is enough, else exactly the room this head takes */
    size_t cap = h->head_len + 128;
    char *dst = proxy_conn_reserve(&s->c, cap);
    int n = dst ? http1_build_response(h, out, s->client_keep, s->client10, dst, cap) : -1;
    if (n < 0 && dst != NULL) {
        cap = http1_response_len(h, out, s->client_keep, s->client10);
        dst = proxy_conn_reserve(&s->c, cap);
        n = dst ? http1_build_response(h, out, s->client_keep, s->client10, dst, cap) : -1;
    }
    if (n < 0)
        return -1;
    proxy_conn_commit(&s->c, (size_t)n);
    s->chunked_out = out == HTTP1_FRAME_CHUNKED;
    s->resp_head_done = true;
    s->resp_started = true;
    s->status = h->status;
    return 0;
}

static void exchange_done(struct proxy_session *s)
{
    if (s->chunked_out)
        proxy_conn_write(&s->c, "0\r\n\r\n", 5);
    proxy_conn_flush(&s->c);
    sess_log(s, false);
    bool reuse =
        s->req_done && s->resp.head.keep_alive && s->up && proxy_conn_avail(&s->up->c) == 0;
    up_detach(s, reuse);
    if (!s->client_keep || s->request_dir.shut) {
        sess_finish(s);
        return;
    }
    sess_next(s);
    if (proxy_conn_avail(&s->c))
        sess_process(s);
}

/* ---- tunnels (after 101) -------------------------------------------------------------- */

static void tunnel_pump(struct proxy_session *s, struct proxy_conn *from, struct proxy_conn *to)
{
    size_t n = proxy_conn_avail(from);
    if (n == 0)
        return;
    if (from == &s->c)
        s->ex_in += n;
    proxy_conn_write(to, proxy_conn_data(from), n);
    proxy_conn_consume(from, n);
    proxy_conn_flush(to);
    dir_note_queue(s, from == &s->c ? &s->request_dir : &s->response_dir, to);
    sess_update_reading(s);
}

static void tunnel_eof(struct proxy_session *s, bool from_client)
{
    if (from_client) {
        s->request_dir.shut = true;
        proxy_conn_shutdown(&s->up->c);
    } else {
        s->response_dir.shut = true;
        proxy_conn_shutdown(&s->c);
    }
    if (s->request_dir.shut && s->response_dir.shut) {
        sess_log(s, false);
        sess_finish(s);
        return;
    }
    sess_update_reading(s);
}

static void sess_start_tunnel(struct proxy_session *s)
{
    struct proxy *p = P(s);
    struct http1_head *h = &s->resp.head;
    size_t cap = http1_response_len(h, HTTP1_FRAME_NONE, true, false);
    char *dst = proxy_conn_reserve(&s->c, cap);
    int n = dst ? http1_build_response(h, HTTP1_FRAME_NONE, true, false, dst, cap) : -1;
    if (n < 0) {
        sess_close(s, true);
        return;
    }
    proxy_conn_commit(&s->c, (size_t)n);
    proxy_conn_consume(&s->up->c, h->head_len);
    s->status = 101;
    s->resp_started = s->resp_head_done = true;
    s->st = SS_TUNNEL;
    timer_set(s, p->cfg.tunnel_idle_timeout_ms);
    tunnel_pump(s, &s->up->c, &s->c);
    proxy_conn_flush(&s->c);
    tunnel_pump(s, &s->c, &s->up->c);
    sess_update_reading(s);
}

/* TLS passthrough: the backend is connected; the client's bytes (its ClientHello first, as
 * sent) go through untouched both ways, like a tunnel after 101. */
static void sess_start_passthrough(struct proxy_session *s)
{
    struct proxy *p = P(s);
    s->up->requests++;
    s->status = 200;
    s->resp_started = s->resp_head_done = true;
    s->st = SS_TUNNEL;
    atomic_fetch_add_explicit(&s->up->wb->be->requests, 1, memory_order_relaxed);
    timer_set(s, p->cfg.tunnel_idle_timeout_ms);
    tunnel_pump(s, &s->c, &s->up->c);
    if (s->request_dir.shut) /* the client half-closed while we were connecting */
        tunnel_eof(s, true);
    else
        sess_update_reading(s);
}

/* Called by tls_layer.c once the ClientHello is read: which name, and how to serve it. Only
 * decides (the layer is mid-read); a passthrough starts in sess_read right after. */
static enum tls_route sess_tls_route(struct proxy_conn *c, const struct tls_client_hello *hello,
                                     void *ctx)
{
    struct proxy_session *s = ctx;
    struct proxy *p = P(s);
    size_t len = strlen(hello->sni);

    if (!hello->has_sni || own_host(p, hello->sni) ||
        !state_routes_lookup(p->routes, hello->sni, len, &s->route))
        return TLS_ROUTE_REFUSE;
    snprintf(s->host, sizeof(s->host), "%s", hello->sni);
    if (!s->route.tls_passthrough)
        return tls_store_has_name(p->cfg.tls, hello->sni) ? TLS_ROUTE_TERMINATE : TLS_ROUTE_REFUSE;
    if (s->ip && !proxy_ip_take(&p->ips, s->ip, proxy_mono_ms()))
        return TLS_ROUTE_REFUSE;
    s->passthrough = true;
    return TLS_ROUTE_PASSTHROUGH;
}

/* The first read after the hello chose passthrough: pick a backend and connect. */
static void sess_begin_passthrough(struct proxy_session *s)
{
    s->in_exchange = true;
    s->logged = false;
    s->t_start_us = proxy_mono_us();
    s->out_mark = s->c.bytes_written;
    s->ex_in = 0;
    s->status = 0;
    s->tried = 0;
    s->attempts = 0;
    s->fail_status = 0;
    s->wb = NULL;
    s->requests++;
    s->req_done = true; /* nothing to parse: retries are safe until the tunnel starts */
    snprintf(s->path, sizeof(s->path), "-");
    s->stat = proxy_stats_get(&s->w->stats, s->route.name);
    s->st = SS_CONNECT; /* the bytes wait in c->in until the backend is there */
    sess_update_reading(s);
    sess_connect_backend(s);
}

/* ---- backend callbacks ---------------------------------------------------------------- */

/* Sends the request again, once, on a new connection to the same backend (see the retry note
 * at the top). Returns false when no connection could even be started. */
static bool sess_retry_fresh(struct proxy_session *s)
{
    struct proxy_wbackend *wb = s->up->wb;
    up_detach(s, false);
    struct proxy_upstream *up = proxy_upstream_connect(s->w, wb, on_up_connected);
    if (up == NULL)
        return false;
    s->fresh_retry = true;
    up_attach(s, up);
    s->st = SS_CONNECT;
    timer_set(s, P(s)->cfg.connect_timeout_ms);
    sess_update_reading(s);
    return true;
}

static void up_failed_before_answer(struct proxy_session *s, int status)
{
    struct proxy_upstream *up = s->up;
    char why[160];
    bool idempotent = http1_method_idempotent(s->method);
    snprintf(why, sizeof(why), "webgw: backend %s: %s before answering", up->wb->be->text,
             status == UV_EOF ? "closed the connection" : uv_strerror(status));
    /* a reused connection closing under us is the keep-alive race, not a sick backend */
    if (up->reused) {
        if (idempotent && !s->fresh_retry && !s->replay_lost && sess_retry_fresh(s))
            return;
    } else {
        proxy_backend_failed(P(s), up->wb->be, proxy_mono_ms());
    }
    sess_fail(s, 502, why, idempotent);
}

static void up_read(struct proxy_conn *c, int status)
{
    struct proxy_upstream *up = (struct proxy_upstream *)c;
    struct proxy_session *s = up->s;
    struct proxy *p;
    if (s == NULL) {
        proxy_upstream_close(up);
        return;
    }
    p = P(s);
    if (s->st == SS_TUNNEL) {
        timer_set(s, p->cfg.tunnel_idle_timeout_ms);
        if (status < 0) {
            if (status == UV_EOF)
                tunnel_eof(s, false);
            else
                sess_close(s, true);
            return;
        }
        tunnel_pump(s, &up->c, &s->c);
        return;
    }
    if (s->st != SS_EXCHANGE)
        return;
    timer_set(s, p->cfg.response_timeout_ms);
    if (status < 0) {
        if (!s->resp_head_done) {
            up_failed_before_answer(s, status);
            return;
        }
        if (status == UV_EOF && http1_parse_eof(&s->resp) == 1) {
            exchange_done(s);
            return;
        }
        sess_close(s, true);
        return;
    }
    for (;;) {
        size_t avail = proxy_conn_avail(&up->c);
        if (avail == 0)
            break;
        if (!s->resp_head_done) {
            int r = http1_parse_head(&s->resp, proxy_conn_data(&up->c), avail);
            if (r == 0)
                break;
            if (r < 0) {
                char why[320];
                snprintf(why, sizeof(why), "webgw: backend %s: invalid response: %s",
                         up->wb->be->text, s->resp.why);
                sess_fail(s, 502, why, false);
                return;
            }
            int code = s->resp.head.status;
            if (code == 101) {
                if (!s->upgrade_wanted) {
                    sess_fail(s, 502, "webgw: backend switched protocols unasked", false);
                    return;
                }
                proxy_backend_succeeded(up->wb->be);
                sess_start_tunnel(s);
                return;
            }
            if (code >= 100 && code < 200) {
                /* interim answers (100 Continue) are passed to HTTP/1.1 clients as they come */
                if (!s->client10) {
                    char line[64];
                    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n\r\n", code,
                                     http1_reason(code));
                    proxy_conn_write(&s->c, line, (size_t)n);
                }
                proxy_conn_consume(&up->c, s->resp.head.head_len);
                http1_parser_next(&s->resp);
                s->resp.skip_body = s->head_only;
                continue;
            }
            proxy_backend_succeeded(up->wb->be);
            if (sess_response_head(s) != 0) {
                sess_fail(s, 502, "webgw: response head too large", false);
                return;
            }
            proxy_conn_consume(&up->c, s->resp.head.head_len);
            if (s->resp.message_done) {
                exchange_done(s);
                return;
            }
            continue;
        }
        size_t used;
        int r = http1_parse_body(&s->resp, proxy_conn_data(&up->c), avail, &used);
        proxy_conn_consume(&up->c, used);
        if (r < 0) {
            /* a 502 while nothing of the response has left, else the client sees it cut */
            char why[320];
            snprintf(why, sizeof(why), "webgw: backend %s: invalid response body: %s",
                     up->wb->be->text, s->resp.why);
            if (proxy_conn_unqueue(&s->c, s->resp_mark) == 0) {
                s->resp_started = s->resp_head_done = s->chunked_out = false;
                sess_fail(s, 502, why, false);
            } else {
                sess_close(s, true);
            }
            return;
        }
        if (r == 1) {
            exchange_done(s);
            return;
        }
    }
    proxy_conn_flush(&s->c);
    dir_note_queue(s, &s->response_dir, &s->c);
    sess_update_reading(s);
}

static void up_written(struct proxy_conn *c, int status)
{
    struct proxy_upstream *up = (struct proxy_upstream *)c;
    struct proxy_session *s = up->s;
    if (s == NULL)
        return;
    if (status < 0) {
        up_read(c, status);
        return;
    }
    if (dir_drained(s, &s->request_dir, c)) {
        if (s->st == SS_TUNNEL)
            sess_update_reading(s);
        else
            sess_process(s);
    }
}

/* ---- client callbacks ----------------------------------------------------------------- */

static void sess_process(struct proxy_session *s)
{
    struct proxy *p = P(s);
    for (;;) {
        if (s->c.closing)
            return;
        size_t avail = proxy_conn_avail(&s->c);
        if (s->st == SS_HEAD) {
            if (avail == 0)
                break;
            if (!s->head_timer) {
                s->head_timer = true;
                timer_set(s, p->cfg.header_timeout_ms);
            }
            int r = http1_parse_head(&s->req, proxy_conn_data(&s->c), avail);
            if (r == 0)
                break;
            if (r < 0) {
                /* a request we cannot frame: answer and close, never guess */
                s->in_exchange = true;
                s->logged = false;
                s->t_start_us = proxy_mono_us();
                s->out_mark = s->c.bytes_written;
                s->ex_in = avail;
                s->route.name[0] = '\0';
                s->stat = NULL;
                s->req_done = false;
                sess_local_reply(s, s->req.status, s->req.why, false, NULL);
                return;
            }
            sess_begin_request(s);
            continue;
        }
        if (s->st == SS_EXCHANGE && !s->req_done) {
            if (s->up == NULL || s->request_dir.dest_full || avail == 0)
                break;
            size_t used;
            int r = http1_parse_body(&s->req, proxy_conn_data(&s->c), avail, &used);
            s->ex_in += used;
            proxy_conn_consume(&s->c, used);
            if (r < 0) {
                if (!s->resp_started)
                    sess_local_reply(s, s->req.status ? s->req.status : 400, s->req.why, false,
                                     NULL);
                else
                    sess_close(s, true);
                return;
            }
            if (r == 1) {
                s->req_done = true;
                if (s->req.head.framing == HTTP1_FRAME_CHUNKED)
                    up_send_body(s, "0\r\n\r\n", 5);
            }
            proxy_conn_flush(&s->up->c);
            dir_note_queue(s, &s->request_dir, &s->up->c);
            continue;
        }
        /* connecting, or waiting for a response: later bytes stay buffered, within in_max */
        break;
    }
    sess_update_reading(s);
}

static void sess_read(struct proxy_conn *c, int status)
{
    struct proxy_session *s = (struct proxy_session *)c;
    struct proxy *p = P(s);
    if (status < 0) {
        switch (s->st) {
        case SS_TUNNEL:
            if (status == UV_EOF)
                tunnel_eof(s, true);
            else
                sess_close(s, true);
            return;
        case SS_CONNECT:
        case SS_EXCHANGE:
            if (status == UV_EOF && s->req_done) {
                /* half-close after a complete request: still answer it */
                s->request_dir.shut = true;
                sess_update_reading(s);
                return;
            }
            sess_close(s, true);
            return;
        default:
            sess_close(s, false);
            return;
        }
    }
    if (s->st == SS_TUNNEL) {
        timer_set(s, p->cfg.tunnel_idle_timeout_ms);
        tunnel_pump(s, &s->c, &s->up->c);
        return;
    }
    if (s->passthrough) {
        if (s->st == SS_HEAD)
            sess_begin_passthrough(s);
        return;
    }
    if (s->st == SS_EXCHANGE && !s->req_done)
        timer_set(s, p->cfg.response_timeout_ms);
    sess_process(s);
}

static void sess_written(struct proxy_conn *c, int status)
{
    struct proxy_session *s = (struct proxy_session *)c;
    if (status < 0) {
        sess_close(s, true);
        return;
    }
    if (s->up && dir_drained(s, &s->response_dir, c)) {
        sess_update_reading(s);
        /* bytes may already wait in the backend buffer */
        if (s->up && proxy_conn_avail(&s->up->c))
            up_read(&s->up->c, 0);
    }
}

static void on_timeout(uv_timer_t *t)
{
    struct proxy_session *s = t->data;
    struct proxy *p = P(s);
    uint64_t now = uv_now(&s->w->loop);
    if (now < s->deadline) { /* pushed back since it was armed */
        s->timer_due = s->deadline;
        uv_timer_start(&s->timer, on_timeout, s->deadline - now, 0);
        return;
    }
    s->timer_due = 0;
    switch (s->st) {
    case SS_HEAD:
        if (proxy_conn_avail(&s->c) > 0) {
            s->in_exchange = true;
            s->logged = false;
            s->t_start_us = proxy_mono_us();
            s->out_mark = s->c.bytes_written;
            s->ex_in = proxy_conn_avail(&s->c);
            s->route.name[0] = '\0';
            s->req_done = false;
            sess_local_reply(s, 408, "webgw: request head not received in time", false, NULL);
        } else {
            sess_close(s, false);
        }
        return;
    case SS_CONNECT: {
        char why[160];
        proxy_backend_failed(p, s->up->wb->be, proxy_mono_ms());
        snprintf(why, sizeof(why), "webgw: backend %s: connect timeout", s->up->wb->be->text);
        sess_fail(s, 504, why, true);
        return;
    }
    case SS_EXCHANGE:
        if (!s->resp_head_done && s->up) {
            char why[160];
            proxy_backend_failed(p, s->up->wb->be, proxy_mono_ms());
            snprintf(why, sizeof(why), "webgw: backend %s: no answer in time", s->up->wb->be->text);
            sess_fail(s, 504, why, false);
            return;
        }
        sess_close(s, true);
        return;
    case SS_TUNNEL:
        sess_close(s, false);
        return;
    case SS_CLOSING:
        sess_close(s, true);
        return;
    }
}

/* ---- accept and drain ----------------------------------------------------------------- */

static bool peer_trusted(const struct proxy *p, const struct sockaddr_storage *ss)
{
    uint8_t addr[16];
    uint8_t fam;
    if (ss->ss_family == AF_INET6) {
        memcpy(addr, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        fam = 6;
    } else {
        memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        fam = 4;
    }
    for (size_t i = 0; i < p->cfg.trusted_count; i++) {
        const struct proxy_cidr *c = &p->cfg.trusted[i];
        if (c->family != fam)
            continue;
        unsigned full = c->prefix / 8, rest = c->prefix % 8;
        if (memcmp(c->addr, addr, full) != 0)
            continue;
        if (rest && ((c->addr[full] ^ addr[full]) & (0xff << (8 - rest))) != 0)
            continue;
        return true;
    }
    return false;
}

struct proxy_session *proxy_session_new(struct proxy_worker *w)
{
    struct proxy *p = w->p;
    size_t cap = p->cfg.max_header_count;
    struct proxy_session *s = calloc(1, sizeof(*s) + 2 * cap * sizeof(struct http1_header));
    if (s == NULL)
        return NULL;
    size_t in_max = proxy_conn_in_max(p);
    if (proxy_conn_init(&w->loop, &s->c, CLIENT_IN_INITIAL, in_max) != 0) {
        free(s);
        return NULL;
    }
    s->w = w;
    s->req_fields = (struct http1_header *)(s + 1);
    s->resp_fields = s->req_fields + cap;
    s->c.owner = s;
    s->c.on_read = sess_read;
    s->c.on_written = sess_written;
    s->c.on_closed = on_conn_closed;
    s->handles = 2;
    uv_timer_init(&w->loop, &s->timer);
    s->timer.data = s;
    proxy_list_add(&w->sessions, &s->link);
    atomic_fetch_add_explicit(&p->connections, 1, memory_order_relaxed);
    http1_parser_init(&s->req, true, &p->req_limits, s->req_fields, cap, req_body_cb, s);
    s->st = SS_HEAD;
    return s;
}

struct proxy_conn *proxy_session_conn(struct proxy_session *s)
{
    return &s->c;
}

void proxy_session_abort(struct proxy_session *s)
{
    sess_close(s, false);
}

void proxy_session_begin(struct proxy_session *s, bool https)
{
    struct proxy *p = P(s);
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    s->https = https;
    if (uv_tcp_getpeername(&s->c.tcp, (struct sockaddr *)&ss, &sl) != 0) {
        sess_close(s, false);
        return;
    }
    if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, s->client_ip,
                  sizeof(s->client_ip));
    else
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, s->client_ip,
                  sizeof(s->client_ip));
    s->trusted = peer_trusted(p, &ss);
    s->ip = proxy_ip_acquire(&p->ips, (struct sockaddr *)&ss);
    if (s->ip == NULL) {
        /* over the per-IP connection limit: a short answer, then close */
        char buf[256];
        int n = http1_build_local(429, "webgw: too many connections from your address", false,
                                  false, NULL, buf, sizeof(buf));
        proxy_conn_write(&s->c, buf, (size_t)n);
        sess_finish(s);
        return;
    }
    uv_tcp_nodelay(&s->c.tcp, 1);
    s->head_timer = true;
    timer_set(s, p->cfg.header_timeout_ms);
    sess_update_reading(s);
}

void proxy_session_accept(struct proxy_worker *w, uv_stream_t *listener)
{
    struct proxy_session *s = proxy_session_new(w);
    if (s == NULL)
        return;
    if (uv_accept(listener, (uv_stream_t *)&s->c.tcp) != 0) {
        sess_close(s, false);
        return;
    }
    proxy_session_begin(s, false);
}

/* The HTTPS port: the same session with the TLS layer (tls_layer.c) below it, which asks
 * sess_tls_route() what to do once the ClientHello is in. */
void proxy_session_accept_https(struct proxy_worker *w, uv_stream_t *listener)
{
    struct proxy_session *s = proxy_session_new(w);
    if (s == NULL)
        return;
    if (uv_accept(listener, (uv_stream_t *)&s->c.tcp) != 0 ||
        tls_conn_attach(&s->c, P(s)->cfg.tls, sess_tls_route, s) != 0) {
        sess_close(s, false);
        return;
    }
    proxy_session_begin(s, true);
}

void proxy_session_drain(struct proxy_worker *w)
{
    struct proxy_link *l = w->sessions.next;
    while (l != &w->sessions) {
        struct proxy_session *s = PROXY_CONTAINER(l, struct proxy_session, link);
        l = l->next;
        /* idle keep-alive connections go now; busy ones end after their response */
        if (s->st == SS_HEAD && proxy_conn_avail(&s->c) == 0)
            sess_close(s, false);
    }
}

void proxy_session_close_all(struct proxy_worker *w)
{
    struct proxy_link *l = w->sessions.next;
    while (l != &w->sessions) {
        struct proxy_session *s = PROXY_CONTAINER(l, struct proxy_session, link);
        l = l->next;
        sess_close(s, true);
    }
}

void proxy_session_mark_held(struct proxy_worker *w)
{
    for (struct proxy_link *l = w->sessions.next; l != &w->sessions; l = l->next) {
        struct proxy_session *s = PROXY_CONTAINER(l, struct proxy_session, link);
        if (s->wb)
            s->wb->held = true;
        if (s->up && s->up->wb)
            s->up->wb->held = true;
        if (s->stat)
            s->stat->held = true;
    }
}
