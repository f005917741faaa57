/*
 * session_upstream.c - the backend side of a session: picking and connecting a backend,
 * retries (on another backend, or once more on a new connection after the keep-alive race)
 * with the body bytes sent so far replayed, the request head and body going out, and the
 * response read back and passed to the client (see the notes at the top of session.c).
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

static void up_written(struct proxy_conn *c, int status);

static void up_attach(struct proxy_session *s, struct proxy_upstream *up)
{
    s->r->up = up;
    up->s = s;
    up->c.on_read = sess_up_read;
    up->c.on_written = up_written;
    up->c.owner = s;
    atomic_fetch_add_explicit(&up->wb->be->in_flight, 1, memory_order_relaxed);
}

/* Detaches the backend connection; it is returned to the pool when `reuse`, else closed. */
void sess_up_detach(struct proxy_session *s, bool reuse)
{
    struct proxy_upstream *up = s->r != NULL ? s->r->up : NULL;
    if (up == NULL)
        return;
    s->r->up = NULL;
    s->r->response_dir = (struct sess_dir){0};
    atomic_fetch_sub_explicit(&up->wb->be->in_flight, 1, memory_order_relaxed);
    up->c.owner = NULL;
    if (reuse) {
        up->reused = false;
        proxy_pool_put(s->w, up);
    } else {
        proxy_upstream_close(up);
    }
}

/* Whether the request could be sent again on a new connection if a pooled one died under it
 * (see up_failed_before_answer): an idempotent method whose whole body fits what replay keeps
 * (a chunked body's size is not known in advance). */
static bool sess_replayable(const struct proxy_session *s)
{
    const struct http1_head *h = &s->r->req.head;

    if (!http1_method_idempotent(s->r->method))
        return false;
    return h->framing == HTTP1_FRAME_NONE ||
           (h->framing == HTTP1_FRAME_LENGTH && h->content_length <= SESS_REPLAY_MAX);
}

/* Keeps a copy of body bytes sent, for a retry (see the retry note at the top); past
 * SESS_REPLAY_MAX (or out of memory) the request is marked as one that cannot be retried. */
static void replay_keep(struct proxy_session *s, const char *data, size_t len)
{
    size_t need = s->r->replay_len + len;
    if (s->r->replay_lost || len == 0)
        return;
    if (need > SESS_REPLAY_MAX) {
        s->r->replay_lost = true;
        return;
    }
    if (need > s->r->replay_cap) {
        size_t cap = s->r->replay_cap ? s->r->replay_cap : 1024;
        while (cap < need)
            cap *= 2;
        char *n = realloc(s->r->replay, cap);
        if (n == NULL) {
            s->r->replay_lost = true;
            return;
        }
        s->r->replay = n;
        s->r->replay_cap = cap;
    }
    memcpy(s->r->replay + s->r->replay_len, data, len);
    s->r->replay_len = need;
}

/* Queues request body bytes (as framed for the backend) and keeps a copy for a retry. The
 * copy is taken first: proxy_conn_write_from may lend the client's read buffer to the write,
 * and a write that completes at once gives that buffer back before it returns, so `data` must
 * not be read after it. */
int sess_up_send_body(struct proxy_session *s, const char *data, size_t len)
{
    replay_keep(s, data, len);
    if (proxy_conn_write_from(&s->r->up->c, &s->c, data, len) != 0)
        return -1;
    s->r->body_sent = true;
    return 0;
}

static int resp_body_cb(void *ctx, const char *data, size_t len)
{
    struct proxy_session *s = ctx;
    if (s->r->chunked_out) {
        char hex[24];
        int n = snprintf(hex, sizeof(hex), "%zx\r\n", len);
        if (proxy_conn_write(&s->c, hex, (size_t)n) || proxy_conn_write(&s->c, data, len) ||
            proxy_conn_write(&s->c, "\r\n", 2))
            return -1;
        return 0;
    }
    /* a body passed on as it came: large pieces go out in the backend's read buffer itself */
    return proxy_conn_write_from(&s->c, &s->r->up->c, data, len) ? -1 : 0;
}

static void sess_upstream_ready(struct proxy_session *s)
{
    struct proxy *p = sess_proxy(s);
    struct proxy_upstream *up = s->r->up;
    if (s->passthrough) {
        sess_start_passthrough(s);
        return;
    }
    s->st = SS_EXCHANGE;
    sess_timer_set(s, p->cfg.response_timeout_ms);
    up->requests++;
    atomic_fetch_add_explicit(&up->wb->be->requests, 1, memory_order_relaxed);
    http1_parser_init(&s->r->resp, false, &p->resp_limits, s->w->head_fields,
                      p->cfg.max_header_count, resp_body_cb, s);
    s->r->resp.skip_body = s->r->head_only;
    /* on a retry, the body bytes an earlier backend took go out again after the head */
    if (proxy_conn_write(&up->c, s->r->up_head, s->r->up_head_len) != 0 ||
        proxy_conn_write(&up->c, s->r->replay, s->r->replay_len) != 0) {
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
        proxy_backend_failed(sess_proxy(s), up->wb->be, proxy_mono_ms());
        snprintf(why, sizeof(why), "webgw: backend %s: connect: %s", up->wb->be->text,
                 uv_strerror(status));
        sess_fail(s, 502, why, true);
        return;
    }
    sess_upstream_ready(s);
    if (s->st == SS_EXCHANGE)
        sess_process(s);
}

void sess_connect_backend(struct proxy_session *s)
{
    struct proxy *p = sess_proxy(s);
    for (;;) {
        struct proxy_wbackend *wb;
        int idx = s->r->attempts > p->cfg.retries
                      ? -1
                      : proxy_balance_pick(s->w, &s->r->route, s->r->tried, &wb);
        if (idx < 0) {
            char msg[400];
            if (s->r->fail_status) {
                sess_local_reply(s, s->r->fail_status, s->r->fail_why, s->r->req_done, NULL);
            } else {
                snprintf(msg, sizeof(msg), "webgw: no healthy backend for \"%s\"",
                         s->r->route.name);
                sess_local_reply(s, 503, msg, true, "Retry-After: 1\r\n");
            }
            return;
        }
        s->r->tried |= 1u << idx;
        s->r->attempts++;
        s->r->wb = wb;
        struct proxy_upstream *up =
            s->passthrough
                ? NULL
                : proxy_pool_take(s->w, wb,
                                  sess_replayable(s) ? UINT64_MAX : p->cfg.pool_unsafe_idle_ms);
        if (up != NULL) {
            up_attach(s, up);
            sess_upstream_ready(s);
            return;
        }
        up = proxy_upstream_connect(s->w, wb, on_up_connected);
        if (up == NULL) {
            proxy_backend_failed(p, wb->be, proxy_mono_ms());
            s->r->fail_status = 502;
            snprintf(s->r->fail_why, sizeof(s->r->fail_why), "webgw: backend %s: connect failed",
                     wb->be->text);
            continue;
        }
        up_attach(s, up);
        s->st = SS_CONNECT;
        sess_timer_set(s, p->cfg.connect_timeout_ms);
        return;
    }
}

/* The final response head arrived: decide framing and keep-alive toward the client. */
static int sess_response_head(struct proxy_session *s)
{
    struct http1_head *h = &s->r->resp.head;
    enum http1_framing out;
    if (h->framing == HTTP1_FRAME_NONE)
        out = (s->r->head_only && h->has_length) ? HTTP1_FRAME_LENGTH : HTTP1_FRAME_NONE;
    else if (h->framing == HTTP1_FRAME_LENGTH)
        out = HTTP1_FRAME_LENGTH;
    else
        out = s->r->client10 ? HTTP1_FRAME_CLOSE : HTTP1_FRAME_CHUNKED;
    s->r->client_keep = s->r->req.head.keep_alive && !s->w->draining && s->r->req_done &&
                        out != HTTP1_FRAME_CLOSE && !s->r->upgrade_wanted && !s->request_dir.shut;
    s->r->resp_mark = s->c.bytes_written;
    /* one pass when the usual room is enough, else exactly the room this head takes */
    size_t cap = h->head_len + 128;
    char *dst = proxy_conn_reserve(&s->c, cap);
    int n = dst ? http1_build_response(h, out, s->r->client_keep, s->r->client10, dst, cap) : -1;
    if (n < 0 && dst != NULL) {
        cap = http1_response_len(h, out, s->r->client_keep, s->r->client10);
        dst = proxy_conn_reserve(&s->c, cap);
        n = dst ? http1_build_response(h, out, s->r->client_keep, s->r->client10, dst, cap) : -1;
    }
    if (n < 0)
        return -1;
    proxy_conn_commit(&s->c, (size_t)n);
    s->r->chunked_out = out == HTTP1_FRAME_CHUNKED;
    s->r->resp_head_done = true;
    s->r->resp_started = true;
    s->r->status = h->status;
    return 0;
}

static void exchange_done(struct proxy_session *s)
{
    if (s->r->chunked_out)
        proxy_conn_write(&s->c, "0\r\n\r\n", 5);
    proxy_conn_flush(&s->c);
    sess_log(s, false);
    bool reuse = s->r->req_done && s->r->resp.head.keep_alive && s->r->up &&
                 proxy_conn_avail(&s->r->up->c) == 0;
    sess_up_detach(s, reuse);
    if (!s->r->client_keep || s->request_dir.shut) {
        sess_finish(s);
        return;
    }
    sess_next(s);
    if (proxy_conn_avail(&s->c))
        sess_process(s);
}

/* Sends the request again, once, on a new connection to the same backend (see the retry note
 * at the top). Returns false when no connection could even be started. */
static bool sess_retry_fresh(struct proxy_session *s)
{
    struct proxy_wbackend *wb = s->r->up->wb;
    sess_up_detach(s, false);
    struct proxy_upstream *up = proxy_upstream_connect(s->w, wb, on_up_connected);
    if (up == NULL)
        return false;
    s->r->fresh_retry = true;
    up_attach(s, up);
    s->st = SS_CONNECT;
    sess_timer_set(s, sess_proxy(s)->cfg.connect_timeout_ms);
    sess_update_reading(s);
    return true;
}

static void up_failed_before_answer(struct proxy_session *s, int status)
{
    struct proxy_upstream *up = s->r->up;
    char why[200], conn[80] = "";
    bool idempotent = http1_method_idempotent(s->r->method);
    struct sockaddr_storage local;
    int len = sizeof(local);
    /* a kept-alive connection: which one and how long it had been idle, so the backend's own
     * log of its idle closes can be matched to this answer */
    if (up->reused && uv_tcp_getsockname(&up->c.tcp, (struct sockaddr *)&local, &len) == 0)
        snprintf(conn, sizeof(conn), " (kept-alive connection from port %u, idle %llu ms)",
                 ntohs(local.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&local)->sin6_port
                                                   : ((struct sockaddr_in *)&local)->sin_port),
                 (unsigned long long)up->reused_after);
    snprintf(why, sizeof(why), "webgw: backend %s: %s before answering%s", up->wb->be->text,
             status == UV_EOF ? "closed the connection" : uv_strerror(status), conn);
    /* a reused connection closing under us is the keep-alive race, not a sick backend */
    if (up->reused) {
        if (idempotent && !s->r->fresh_retry && !s->r->replay_lost && sess_retry_fresh(s))
            return;
    } else {
        proxy_backend_failed(sess_proxy(s), up->wb->be, proxy_mono_ms());
    }
    sess_fail(s, 502, why, idempotent);
}

void sess_up_read(struct proxy_conn *c, int status)
{
    struct proxy_upstream *up = (struct proxy_upstream *)c;
    struct proxy_session *s = up->s;
    struct proxy *p;
    if (s == NULL) {
        proxy_upstream_close(up);
        return;
    }
    p = sess_proxy(s);
    if (s->st == SS_TUNNEL) {
        sess_timer_set(s, p->cfg.tunnel_idle_timeout_ms);
        if (status < 0) {
            if (status == UV_EOF)
                sess_tunnel_eof(s, false);
            else
                sess_close(s, true);
            return;
        }
        sess_tunnel_pump(s, &up->c, &s->c);
        return;
    }
    if (s->st != SS_EXCHANGE)
        return;
    sess_timer_set(s, p->cfg.response_timeout_ms);
    if (status < 0) {
        if (!s->r->resp_head_done) {
            up_failed_before_answer(s, status);
            return;
        }
        if (status == UV_EOF && http1_parse_eof(&s->r->resp) == 1) {
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
        if (!s->r->resp_head_done) {
            int r = http1_parse_head(&s->r->resp, proxy_conn_data(&up->c), avail);
            if (r == 0)
                break;
            if (r < 0) {
                char why[320];
                snprintf(why, sizeof(why), "webgw: backend %s: invalid response: %s",
                         up->wb->be->text, s->r->resp.why);
                sess_fail(s, 502, why, false);
                return;
            }
            int code = s->r->resp.head.status;
            if (code == 101) {
                if (!s->r->upgrade_wanted) {
                    sess_fail(s, 502, "webgw: backend switched protocols unasked", false);
                    return;
                }
                proxy_backend_succeeded(up->wb->be);
                sess_start_tunnel(s);
                return;
            }
            if (code >= 100 && code < 200) {
                /* interim answers (100 Continue) are passed to HTTP/1.1 clients as they come */
                if (!s->r->client10) {
                    char line[64];
                    int n = snprintf(line, sizeof(line), "HTTP/1.1 %03d %s\r\n\r\n", code,
                                     http1_reason(code));
                    proxy_conn_write(&s->c, line, (size_t)n);
                }
                proxy_conn_consume(&up->c, s->r->resp.head.head_len);
                http1_parser_next(&s->r->resp);
                s->r->resp.skip_body = s->r->head_only;
                continue;
            }
            proxy_backend_succeeded(up->wb->be);
            if (sess_response_head(s) != 0) {
                sess_fail(s, 502, "webgw: response head too large", false);
                return;
            }
            proxy_conn_consume(&up->c, s->r->resp.head.head_len);
            if (s->r->resp.message_done) {
                exchange_done(s);
                return;
            }
            continue;
        }
        size_t used;
        int r = http1_parse_body(&s->r->resp, proxy_conn_data(&up->c), avail, &used);
        proxy_conn_consume(&up->c, used);
        if (r < 0) {
            /* a 502 while nothing of the response has left, else the client sees it cut */
            char why[320];
            snprintf(why, sizeof(why), "webgw: backend %s: invalid response body: %s",
                     up->wb->be->text, s->r->resp.why);
            if (proxy_conn_unqueue(&s->c, s->r->resp_mark) == 0) {
                s->r->resp_started = s->r->resp_head_done = s->r->chunked_out = false;
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
    sess_dir_note_queue(s, &s->r->response_dir, &s->c);
    sess_update_reading(s);
}

static void up_written(struct proxy_conn *c, int status)
{
    struct proxy_upstream *up = (struct proxy_upstream *)c;
    struct proxy_session *s = up->s;
    if (s == NULL)
        return;
    if (status < 0) {
        sess_up_read(c, status);
        return;
    }
    if (sess_dir_drained(s, &s->request_dir, c)) {
        if (s->st == SS_TUNNEL)
            sess_update_reading(s);
        else
            sess_process(s);
    }
}
