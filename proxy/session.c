/*
 * session.c - one client connection: reads requests, routes them by Host, forwards each to a
 * backend connection and streams the response back, one request at a time so pipelined
 * requests are answered in order.
 *
 * A session's code is in four files: this one (the client side: request heads and bodies,
 * local answers, timeouts, closing), session_flow.c (whether each direction is read),
 * session_upstream.c (the backend side: connect, retry, request out, response in) and
 * session_tunnel.c (raw bytes after a 101, TLS passthrough). Their shared types and
 * prototypes are in internal.h. The notes below are about all four.
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
 * the queue limit and SESS_REPLAY_MAX; an idle keep-alive connection keeps no more than
 * SESS_REPLAY_IDLE of it.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "acme/acme.h"
#include "proxy/internal.h"
#include "proxy/tls_internal.h"

#define CLIENT_IN_INITIAL 8192

#define REQ_CACHE_MAX 64 /* request states a worker keeps for its next requests */

static int req_body_cb(void *ctx, const char *data, size_t len);

/* Sets the one deadline of the current state (deadline.c: a list move, no timer operation). */
void sess_timer_set(struct proxy_session *s, uint32_t ms)
{
    proxy_deadline_set(&s->w->deadlines, &s->deadline, ms);
}

int sess_req_take(struct proxy_session *s)
{
    struct proxy_worker *w = s->w;
    struct proxy *p = w->p;
    struct sess_req *r = w->req_free;
    if (r != NULL) {
        w->req_free = r->next_free;
        w->req_free_count--;
    } else {
        r = malloc(sizeof(*r));
        if (r == NULL)
            return -1;
        r->replay = r->up_head = NULL;
        r->replay_cap = r->up_head_cap = 0;
    }
    memset(&r->stat, 0, offsetof(struct sess_req, host) - offsetof(struct sess_req, stat));
    r->host[0] = r->path[0] = '\0';
    r->route.name[0] = '\0';
    r->fail_why[0] = '\0';
    http1_parser_init(&r->req, true, &p->req_limits, w->head_fields, p->cfg.max_header_count,
                      req_body_cb, s);
    s->r = r;
    return 0;
}

void sess_req_put(struct proxy_session *s)
{
    struct proxy_worker *w = s->w;
    struct sess_req *r = s->r;
    if (r == NULL)
        return;
    s->r = NULL;
    if (r->replay_cap > SESS_REPLAY_IDLE || r->cut_to_tunnel) { /* an upload's copy is not kept */
        free(r->replay);
        r->replay = NULL;
        r->replay_cap = 0;
    }
    if (w->req_free_count >= REQ_CACHE_MAX || r->cut_to_tunnel) {
        free(r->replay);
        free(r->up_head);
        free(r);
        return;
    }
    r->next_free = w->req_free;
    w->req_free = r;
    w->req_free_count++;
}

void sess_req_tunnel(struct proxy_session *s)
{
    struct sess_req *r = s->r;
    /* the log names the route through its counters: a tunnel without them keeps the route */
    if (r == NULL || r->cut_to_tunnel || r->stat == NULL || s->c.closing)
        return;
    free(r->replay);
    free(r->up_head);
    r->replay = r->up_head = NULL;
    r->replay_cap = r->up_head_cap = r->replay_len = r->up_head_len = 0;
    r->cut_to_tunnel = true;
    /* shrinking keeps the bytes up to `path` whether or not it moves them */
    struct sess_req *n = realloc(r, offsetof(struct sess_req, req));
    if (n != NULL)
        s->r = n;
}

void proxy_worker_req_cache_free(struct proxy_worker *w)
{
    while (w->req_free != NULL) {
        struct sess_req *r = w->req_free;
        w->req_free = r->next_free;
        free(r->replay);
        free(r->up_head);
        free(r);
    }
    w->req_free_count = 0;
}

void sess_log(struct proxy_session *s, bool cut)
{
    struct proxy *p = sess_proxy(s);
    if (s->r == NULL || !s->r->in_exchange || s->r->logged)
        return;
    s->r->logged = true;
    s->r->in_exchange = false;
    uint64_t now = proxy_mono_us();
    uint64_t dur = now - s->r->t_start_us;
    uint64_t out = s->c.bytes_written - s->r->out_mark;
    if (s->r->stat == NULL) /* never for a tunnel: it has no route any more */
        s->r->stat = proxy_stats_get(&s->w->stats, s->r->route.name);
    proxy_stats_record(s->r->stat, s->r->status, s->r->ex_in, out, dur, cut);
    if (p->cfg.access_log == NULL)
        return;
    struct proxy_access_entry e = {
        .worker = s->w->id,
        .client = s->client_ip,
        .host = s->r->host,
        .name = s->r->stat ? s->r->stat->name : s->r->route.name,
        .method = llhttp_method_name((llhttp_method_t)s->r->method),
        .path = s->r->path,
        .backend = s->r->wb ? s->r->wb->be->text : "",
        .status = s->r->status,
        .bytes_in = s->r->ex_in,
        .bytes_out = out,
        .duration_us = dur,
        .cut = cut,
    };
    p->cfg.access_log(p->cfg.access_log_ctx, &e);
}

/* The connection's handle is closed, whichever path closed it: the session goes. */
static void on_conn_closed(struct proxy_conn *c)
{
    struct proxy_session *s = (struct proxy_session *)c;
    struct proxy *p = sess_proxy(s);
    proxy_deadline_clear(&s->w->deadlines, &s->deadline);
    sess_up_detach(s, false);
    sess_req_put(s);
    proxy_list_del(&s->link);
    if (s->ip)
        proxy_ip_release(&p->ips, s->ip);
    atomic_fetch_sub_explicit(&p->connections, 1, memory_order_relaxed);
    free(s);
}

void sess_close(struct proxy_session *s, bool cut)
{
    sess_log(s, cut);
    s->st = SS_CLOSING;
    sess_up_detach(s, false);
    proxy_deadline_clear(&s->w->deadlines, &s->deadline);
    proxy_conn_close(&s->c);
}

/* Ends the connection once its last bytes are written (bounded by the send timeout). */
void sess_finish(struct proxy_session *s)
{
    s->st = SS_CLOSING;
    sess_up_detach(s, false);
    sess_update_reading(s);
    sess_timer_set(s, sess_proxy(s)->cfg.send_timeout_ms);
    proxy_conn_close_flushed(&s->c);
}

/* Prepares the session for the next request on a kept-alive connection. */
void sess_next(struct proxy_session *s)
{
    s->st = SS_HEAD;
    s->head_timer = false;
    sess_req_put(s); /* the next request takes one when its first byte arrives */
    sess_timer_set(s, sess_proxy(s)->cfg.keepalive_timeout_ms);
    s->request_dir.dest_full = false; /* no backend queue now */
    sess_update_reading(s);
}

void sess_local_reply(struct proxy_session *s, int status, const char *msg, bool keep,
                      const char *extra)
{
    char buf[1024];
    if (s->passthrough) {
        s->r->status = status;
        sess_close(s, true);
        return;
    }
    keep = keep && !s->w->draining && s->r->req.head.keep_alive && s->r->req_done &&
           !s->request_dir.shut;
    int n = http1_build_local(status, msg, keep, s->r->head_only, extra, buf, sizeof(buf));
    if (n > 0)
        proxy_conn_write(&s->c, buf, (size_t)n);
    s->r->status = status;
    s->r->resp_started = true;
    proxy_conn_flush(&s->c);
    sess_log(s, false);
    sess_up_detach(s, false);
    if (keep)
        sess_next(s);
    else
        sess_finish(s);
}

/* Answers a request that failed before any response byte reached the client, or retries it
 * (`can_retry`, and no body byte sent that is not kept for replay). */
void sess_fail(struct proxy_session *s, int status, const char *why, bool can_retry)
{
    sess_up_detach(s, false);
    if (can_retry && !(s->r->body_sent && s->r->replay_lost) &&
        s->r->attempts <= sess_proxy(s)->cfg.retries) {
        s->r->fail_status = status;
        snprintf(s->r->fail_why, sizeof(s->r->fail_why), "%s", why);
        sess_connect_backend(s);
        /* a pooled connection is ready at once: the body bytes already read from the client
         * go out now (no read event may come to move them: the client may have sent all) */
        if (s->st == SS_EXCHANGE && proxy_conn_avail(&s->c) != 0)
            sess_process(s);
        return;
    }
    if (s->r->resp_started) {
        sess_close(s, true);
        return;
    }
    sess_local_reply(s, status, why, s->r->req_done, NULL);
}

static int req_body_cb(void *ctx, const char *data, size_t len)
{
    struct proxy_session *s = ctx;
    if (s->r->req.head.framing == HTTP1_FRAME_CHUNKED) {
        char hex[24];
        int n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
        if (sess_up_send_body(s, hex, (size_t)n) || sess_up_send_body(s, data, len) ||
            sess_up_send_body(s, "\r\n", 2))
            return -1;
        return 0;
    }
    return sess_up_send_body(s, data, len);
}

bool sess_own_host(const struct proxy *p, const char *host)
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
    struct proxy *p = sess_proxy(s);
    struct http1_head *h = &s->r->req.head;
    const char *hv = h->host;
    size_t hl = h->host_len;

    s->r->in_exchange = true;
    s->r->logged = false;
    s->r->t_start_us = proxy_mono_us();
    s->r->out_mark = s->c.bytes_written;
    s->r->ex_in = h->head_len;
    s->r->status = 0;
    s->r->method = h->method;
    s->r->client10 = h->minor == 0;
    s->r->head_only = h->method == HTTP_HEAD;
    s->r->upgrade_wanted = h->upgrade;
    s->r->req_done = s->r->req.message_done;
    s->r->body_sent = s->r->resp_head_done = s->r->resp_started = s->r->chunked_out = false;
    s->r->client_keep = false;
    s->r->tried = 0;
    s->r->attempts = 0;
    s->r->fail_status = 0;
    s->r->replay_len = 0;
    s->r->replay_lost = s->r->fresh_retry = false;
    s->r->stat = NULL;
    s->r->wb = NULL;
    s->r->route.name[0] = '\0';
    s->requests++;
    size_t pl = h->target_len < sizeof(s->r->path) - 1 ? h->target_len : sizeof(s->r->path) - 1;
    memcpy(s->r->path, h->target, pl);
    s->r->path[pl] = '\0';

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
    int n = hv ? http1_host_normalize(hv, hl, s->r->host, sizeof(s->r->host)) : -1;
    char msg[400];
    if (n < 0) {
        s->r->host[0] = '\0';
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
            s->r->route.name[0] = '\0';
            proxy_conn_consume(&s->c, h->head_len);
            sess_local_reply(s, st, st == 200 ? key_auth : "webgw: no such ACME challenge", true,
                             NULL);
            return;
        }
    }
    if (sess_own_host(p, s->r->host) ||
        !state_routes_lookup(p->routes, s->r->host, (size_t)n, &s->r->route)) {
        s->r->route.name[0] = '\0';
        proxy_conn_consume(&s->c, h->head_len);
        snprintf(msg, sizeof(msg), "webgw: no name \"%s\" is served here", s->r->host);
        sess_local_reply(s, 404, msg, true, NULL);
        return;
    }
    s->r->stat = proxy_stats_get(&s->w->stats, s->r->route.name);
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
        snprintf(extra, sizeof(extra), "Location: https://%s%s%.*s\r\n", s->r->host, port,
                 (int)tlen, target);
        proxy_conn_consume(&s->c, h->head_len);
        sess_local_reply(s, 308, "webgw: this name is served over HTTPS", true, extra);
        return;
    }
    if (s->r->route.tls_passthrough) {
        proxy_conn_consume(&s->c, h->head_len);
        snprintf(msg, sizeof(msg), "webgw: \"%s\" is served over HTTPS only", s->r->host);
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
    int len = s->r->up_head ? http1_build_request(h, &fwd, s->r->up_head, s->r->up_head_cap) : -1;
    if (len < 0) {
        size_t need = http1_request_len(h, &fwd);
        char *nb = realloc(s->r->up_head, need);
        if (nb != NULL) {
            s->r->up_head = nb;
            s->r->up_head_cap = need;
            len = http1_build_request(h, &fwd, s->r->up_head, s->r->up_head_cap);
        }
    }
    proxy_conn_consume(&s->c, h->head_len);
    if (len < 0) {
        sess_local_reply(s, 500, "webgw: out of memory", false, NULL);
        return;
    }
    s->r->up_head_len = (size_t)len;
    sess_connect_backend(s);
}

void sess_process(struct proxy_session *s)
{
    struct proxy *p = sess_proxy(s);
    for (;;) {
        if (s->c.closing)
            return;
        size_t avail = proxy_conn_avail(&s->c);
        if (s->st == SS_HEAD) {
            if (avail == 0)
                break;
            if (s->r == NULL && sess_req_take(s) != 0) {
                sess_close(s, false); /* out of memory: nothing to answer with */
                return;
            }
            if (!s->head_timer) {
                s->head_timer = true;
                sess_timer_set(s, p->cfg.header_timeout_ms);
            }
            int r = http1_parse_head(&s->r->req, proxy_conn_data(&s->c), avail);
            if (r == 0)
                break;
            if (r < 0) {
                /* a request we cannot frame: answer and close, never guess */
                s->r->in_exchange = true;
                s->r->logged = false;
                s->r->t_start_us = proxy_mono_us();
                s->r->out_mark = s->c.bytes_written;
                s->r->ex_in = avail;
                s->r->route.name[0] = '\0';
                s->r->stat = NULL;
                s->r->req_done = false;
                sess_local_reply(s, s->r->req.status, s->r->req.why, false, NULL);
                return;
            }
            sess_begin_request(s);
            continue;
        }
        if (s->st == SS_EXCHANGE && !s->r->req_done) {
            if (s->r->up == NULL || s->request_dir.dest_full || avail == 0)
                break;
            size_t used;
            int r = http1_parse_body(&s->r->req, proxy_conn_data(&s->c), avail, &used);
            s->r->ex_in += used;
            proxy_conn_consume(&s->c, used);
            if (r < 0) {
                if (!s->r->resp_started)
                    sess_local_reply(s, s->r->req.status ? s->r->req.status : 400, s->r->req.why,
                                     false, NULL);
                else
                    sess_close(s, true);
                return;
            }
            if (r == 1) {
                s->r->req_done = true;
                if (s->r->req.head.framing == HTTP1_FRAME_CHUNKED)
                    sess_up_send_body(s, "0\r\n\r\n", 5);
            }
            proxy_conn_flush(&s->r->up->c);
            sess_dir_note_queue(s, &s->request_dir, &s->r->up->c);
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
    struct proxy *p = sess_proxy(s);
    if (status < 0) {
        switch (s->st) {
        case SS_TUNNEL:
            if (status == UV_EOF)
                sess_tunnel_eof(s, true);
            else
                sess_close(s, true);
            return;
        case SS_CONNECT:
        case SS_EXCHANGE:
            if (status == UV_EOF && s->r->req_done) {
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
        sess_timer_set(s, p->cfg.tunnel_idle_timeout_ms);
        sess_tunnel_pump(s, &s->c, &s->r->up->c);
        return;
    }
    if (s->passthrough) {
        if (s->st == SS_HEAD)
            sess_begin_passthrough(s);
        return;
    }
    if (s->st == SS_EXCHANGE && !s->r->req_done)
        sess_timer_set(s, p->cfg.response_timeout_ms);
    sess_process(s);
}

static void sess_written(struct proxy_conn *c, int status)
{
    struct proxy_session *s = (struct proxy_session *)c;
    if (status < 0) {
        sess_close(s, true);
        return;
    }
    /* the last writes of a response can complete after the exchange ended and gave its
     * request state back (sess_next): with no request, no response direction waits on them */
    if (s->r != NULL && s->r->up && sess_dir_drained(s, &s->r->response_dir, c)) {
        sess_update_reading(s);
        /* bytes may already wait in the backend buffer */
        if (s->r->up && proxy_conn_avail(&s->r->up->c))
            sess_up_read(&s->r->up->c, 0);
    }
}

/* The deadline of the current state passed (deadline.c). */
void proxy_session_expired(struct proxy_deadline *d)
{
    struct proxy_session *s = PROXY_CONTAINER(d, struct proxy_session, deadline);
    struct proxy *p = sess_proxy(s);
    if (s->c.closing)
        return;
    switch (s->st) {
    case SS_HEAD:
        if (proxy_conn_avail(&s->c) > 0 && (s->r != NULL || sess_req_take(s) == 0)) {
            s->r->in_exchange = true;
            s->r->logged = false;
            s->r->t_start_us = proxy_mono_us();
            s->r->out_mark = s->c.bytes_written;
            s->r->ex_in = proxy_conn_avail(&s->c);
            s->r->route.name[0] = '\0';
            s->r->req_done = false;
            sess_local_reply(s, 408, "webgw: request head not received in time", false, NULL);
        } else {
            sess_close(s, false);
        }
        return;
    case SS_CONNECT: {
        char why[160];
        proxy_backend_failed(p, s->r->up->wb->be, proxy_mono_ms());
        snprintf(why, sizeof(why), "webgw: backend %s: connect timeout", s->r->up->wb->be->text);
        sess_fail(s, 504, why, true);
        return;
    }
    case SS_EXCHANGE:
        if (!s->r->resp_head_done && s->r->up) {
            char why[160];
            proxy_backend_failed(p, s->r->up->wb->be, proxy_mono_ms());
            snprintf(why, sizeof(why), "webgw: backend %s: no answer in time",
                     s->r->up->wb->be->text);
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
    struct proxy_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    size_t in_max = proxy_conn_in_max(p);
    if (proxy_conn_init(&w->conns, &s->c, CLIENT_IN_INITIAL, in_max) != 0) {
        free(s);
        return NULL;
    }
    s->w = w;
    s->c.owner = s;
    s->c.on_read = sess_read;
    s->c.on_written = sess_written;
    s->c.on_closed = on_conn_closed;
    proxy_list_add(&w->sessions, &s->link);
    atomic_fetch_add_explicit(&p->connections, 1, memory_order_relaxed);
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

/* A connection that has sent no request yet, while the worker drains: its first byte is due
 * within PROXY_DRAIN_FIRST_REQUEST_MS (a client sends its request right after connecting; one
 * that only opened a connection for later must not hold the stop up for the header timeout),
 * and then its head gets the whole header timeout. */
static void sess_drain_first_request(struct proxy_session *s)
{
    uint32_t ms = sess_proxy(s)->cfg.header_timeout_ms;

    s->head_timer = false; /* the first byte arms the header timeout (sess_process) */
    sess_timer_set(s, ms < PROXY_DRAIN_FIRST_REQUEST_MS ? ms : PROXY_DRAIN_FIRST_REQUEST_MS);
}

void proxy_session_begin(struct proxy_session *s, bool https)
{
    struct proxy *p = sess_proxy(s);
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
    if (s->w->draining) {
        sess_drain_first_request(s); /* taken from the queue of a listener about to close */
    } else {
        s->head_timer = true;
        sess_timer_set(s, p->cfg.header_timeout_ms);
    }
    sess_update_reading(s);
}

/* Starts a session on the next connection of `listener`, or on `fd` when listener is NULL (a
 * draining worker takes its listener's queue with accept4 itself, proxy.c). `https` puts the TLS
 * layer (tls_layer.c) below it, which asks sess_tls_route() what to do once the ClientHello is
 * in. */
static void session_start(struct proxy_worker *w, uv_stream_t *listener, int fd, bool https)
{
    struct proxy_session *s = proxy_session_new(w);
    int rc;

    if (s == NULL) {
        if (listener == NULL)
            close(fd);
        return;
    }
    rc = listener ? uv_accept(listener, (uv_stream_t *)&s->c.tcp) : uv_tcp_open(&s->c.tcp, fd);
    if (rc != 0 && listener == NULL)
        close(fd); /* not the handle's: uv_tcp_open refused it */
    if (rc != 0 ||
        (https && tls_conn_attach(&s->c, sess_proxy(s)->cfg.tls, sess_tls_route, s) != 0)) {
        sess_close(s, false);
        return;
    }
    proxy_session_begin(s, https);
}

void proxy_session_accept(struct proxy_worker *w, uv_stream_t *listener)
{
    session_start(w, listener, -1, false);
}

void proxy_session_accept_https(struct proxy_worker *w, uv_stream_t *listener)
{
    session_start(w, listener, -1, true);
}

void proxy_session_accept_fd(struct proxy_worker *w, int fd, bool https)
{
    session_start(w, NULL, fd, https);
}

/* Whether the client sent bytes not parsed yet, read or still in the kernel: a request is on
 * its way in, and closing now would answer it with a reset. */
static bool sess_input_waiting(struct proxy_session *s)
{
    uv_os_fd_t fd;
    char b;

    if (proxy_conn_avail(&s->c) > 0)
        return true;
    if (uv_fileno((const uv_handle_t *)&s->c.tcp, &fd) != 0)
        return false;
    return recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

void proxy_session_drain(struct proxy_worker *w)
{
    struct proxy_link *l = w->sessions.next;
    while (l != &w->sessions) {
        struct proxy_session *s = PROXY_CONTAINER(l, struct proxy_session, link);
        l = l->next;
        /* busy ones end after their response (Connection: close), and so does a request
         * arriving now; idle kept-alive connections go now; new ones get their first request
         * answered */
        if (s->st != SS_HEAD || s->c.closing || sess_input_waiting(s))
            continue;
        if (s->requests > 0)
            sess_close(s, false);
        else
            sess_drain_first_request(s);
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
        if (s->r == NULL)
            continue;
        if (s->r->wb)
            s->r->wb->held = true;
        if (s->r->up && s->r->up->wb)
            s->r->up->wb->held = true;
        if (s->r->stat)
            s->r->stat->held = true;
    }
}
