/*
 * session_tunnel.c - a session once it carries raw bytes both ways: after a 101 (WebSocket)
 * and for TLS passthrough, where the ClientHello's SNI (sess_tls_route, asked by tls_layer.c)
 * picks the route and the bytes go to its backend untouched.
 */
#include <stdio.h>
#include <string.h>

#include "proxy/internal.h"
#include "proxy/tls_internal.h"

void sess_tunnel_pump(struct proxy_session *s, struct proxy_conn *from, struct proxy_conn *to)
{
    size_t n = proxy_conn_avail(from);
    if (n == 0)
        return;
    if (from == &s->c)
        s->r->ex_in += n;
    proxy_conn_write_from(to, from, proxy_conn_data(from), n);
    proxy_conn_consume(from, n);
    proxy_conn_flush(to);
    sess_dir_note_queue(s, from == &s->c ? &s->request_dir : &s->r->response_dir, to);
    sess_update_reading(s);
}

void sess_tunnel_eof(struct proxy_session *s, bool from_client)
{
    if (from_client) {
        s->request_dir.shut = true;
        proxy_conn_shutdown(&s->r->up->c);
    } else {
        s->r->response_dir.shut = true;
        proxy_conn_shutdown(&s->c);
    }
    if (s->request_dir.shut && s->r->response_dir.shut) {
        sess_log(s, false);
        sess_finish(s);
        return;
    }
    sess_update_reading(s);
}

void sess_start_tunnel(struct proxy_session *s)
{
    struct proxy *p = sess_proxy(s);
    struct http1_head *h = &s->r->resp.head;
    size_t cap = http1_response_len(h, HTTP1_FRAME_NONE, true, false);
    char *dst = proxy_conn_reserve(&s->c, cap);
    int n = dst ? http1_build_response(h, HTTP1_FRAME_NONE, true, false, dst, cap) : -1;
    if (n < 0) {
        sess_close(s, true);
        return;
    }
    proxy_conn_commit(&s->c, (size_t)n);
    proxy_conn_consume(&s->r->up->c, h->head_len);
    s->r->status = 101;
    s->r->resp_started = s->r->resp_head_done = true;
    s->st = SS_TUNNEL;
    sess_timer_set(s, p->cfg.tunnel_idle_timeout_ms);
    sess_tunnel_pump(s, &s->r->up->c, &s->c);
    proxy_conn_flush(&s->c);
    sess_tunnel_pump(s, &s->c, &s->r->up->c);
    if (s->request_dir.shut) /* the client half-closed before the 101: the backend hears it */
        sess_tunnel_eof(s, true);
    else
        sess_update_reading(s);
    sess_req_tunnel(s);
}

/* TLS passthrough: the backend is connected; the client's bytes (its ClientHello first, as
 * sent) go through untouched both ways, like a tunnel after 101. */
void sess_start_passthrough(struct proxy_session *s)
{
    struct proxy *p = sess_proxy(s);
    s->r->up->requests++;
    s->r->status = 200;
    s->r->resp_started = s->r->resp_head_done = true;
    s->st = SS_TUNNEL;
    atomic_fetch_add_explicit(&s->r->up->wb->be->requests, 1, memory_order_relaxed);
    sess_timer_set(s, p->cfg.tunnel_idle_timeout_ms);
    sess_tunnel_pump(s, &s->c, &s->r->up->c);
    if (s->request_dir.shut) /* the client half-closed while we were connecting */
        sess_tunnel_eof(s, true);
    else
        sess_update_reading(s);
    sess_req_tunnel(s);
}

/* Called by tls_layer.c once the ClientHello is read: which name, and how to serve it. Only
 * decides (the layer is mid-read); a passthrough starts in sess_read right after. */
enum tls_route sess_tls_route(struct proxy_conn *c, const struct tls_client_hello *hello, void *ctx)
{
    struct proxy_session *s = ctx;
    struct proxy *p = sess_proxy(s);
    size_t len = strlen(hello->sni);
    enum tls_route how = TLS_ROUTE_REFUSE;

    /* the route is looked up into a request state, kept only by a passthrough */
    if (s->r == NULL && sess_req_take(s) != 0)
        return TLS_ROUTE_REFUSE;
    if (!hello->has_sni || sess_own_host(p, hello->sni) ||
        !state_routes_lookup(p->routes, hello->sni, len, &s->r->route))
        how = TLS_ROUTE_REFUSE;
    else if (!s->r->route.tls_passthrough)
        how = tls_store_has_name(p->cfg.tls, hello->sni) ? TLS_ROUTE_TERMINATE : TLS_ROUTE_REFUSE;
    else if (s->ip && !proxy_ip_take(&p->ips, s->ip, proxy_mono_ms()))
        how = TLS_ROUTE_REFUSE;
    else
        how = TLS_ROUTE_PASSTHROUGH;
    if (how != TLS_ROUTE_PASSTHROUGH) {
        sess_req_put(s);
        return how;
    }
    snprintf(s->r->host, sizeof(s->r->host), "%s", hello->sni);
    s->passthrough = true;
    return TLS_ROUTE_PASSTHROUGH;
}

/* The first read after the hello chose passthrough: pick a backend and connect. */
void sess_begin_passthrough(struct proxy_session *s)
{
    s->r->in_exchange = true;
    s->r->logged = false;
    s->r->t_start_us = proxy_mono_us();
    s->r->out_mark = s->c.bytes_written;
    s->r->ex_in = 0;
    s->r->status = 0;
    s->r->tried = 0;
    s->r->attempts = 0;
    s->r->fail_status = 0;
    s->r->wb = NULL;
    s->requests++;
    s->r->req_done = true; /* nothing to parse: retries are safe until the tunnel starts */
    snprintf(s->r->path, sizeof(s->r->path), "-");
    s->r->stat = proxy_stats_get(&s->w->stats, s->r->route.name);
    s->st = SS_CONNECT; /* the bytes wait in c->in until the backend is there */
    sess_update_reading(s);
    sess_connect_backend(s);
}
