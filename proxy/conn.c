/*
 * conn.c - byte-stream connections over libuv TCP handles, with an optional layer (TLS) in
 * between; see conn.h. Reads land in a growable buffer bounded by in_max; writes are coalesced
 * into one request per flush that owns its bytes until libuv is done with them.
 */
#include <stdlib.h>
#include <string.h>

#include "proxy/conn.h"

#define WREQ_MIN 4096

struct proxy_wreq {
    uv_write_t req;
    struct proxy_conn *c;
    size_t len, cap;
    char data[];
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void write_failed(struct proxy_conn *c, int err);

int proxy_conn_init(uv_loop_t *loop, struct proxy_conn *c, size_t in_initial, size_t in_max)
{
    memset(c, 0, sizeof(*c));
    c->in_max = in_max;
    c->in.cap = in_initial;
    c->in.data = malloc(in_initial);
    if (c->in.data == NULL)
        return UV_ENOMEM;
    int rc = uv_tcp_init(loop, &c->tcp);
    if (rc != 0) {
        free(c->in.data);
        c->in.data = NULL;
        return rc;
    }
    c->tcp.data = c;
    uv_idle_init(loop, &c->defer);
    c->defer.data = c;
    c->handles = 2;
    return 0;
}

bool proxy_conn_in_full(const struct proxy_conn *c)
{
    return c->in.off == 0 && c->in.len == c->in.cap && c->in.cap >= c->in_max;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct proxy_conn *c = h->data;
    struct proxy_buf *b = &c->in;
    (void)suggested;
    if (b->off == b->len) {
        b->off = b->len = 0;
    } else if (b->cap - b->len < 2048 && b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->len == b->cap && b->cap < c->in_max) {
        size_t ncap = b->cap * 2 > c->in_max ? c->in_max : b->cap * 2;
        char *n = realloc(b->data, ncap);
        if (n != NULL) {
            b->data = n;
            b->cap = ncap;
        }
    }
    if (c->layer) {
        /* raw bytes go to a scratch buffer the layer decodes from */
        static _Thread_local char raw[16384];
        buf->base = raw;
        buf->len = sizeof(raw);
        return;
    }
    buf->base = b->data + b->len;
    buf->len = b->cap - b->len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct proxy_conn *c = s->data;
    if (c->closing)
        return;
    if (nread == 0 || nread == UV_ENOBUFS)
        return;
    if (nread < 0) {
        c->on_read(c, (int)nread);
        return;
    }
    if (c->layer) {
        if (c->layer->decode(c, buf->base, (size_t)nread) < 0) {
            c->on_read(c, UV_EPROTO);
            return;
        }
    } else {
        c->in.len += (size_t)nread;
    }
    c->bytes_read += (uint64_t)nread;
    c->on_read(c, 0);
}

int proxy_conn_read_start(struct proxy_conn *c)
{
    if (c->reading || c->closing)
        return 0;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc == 0)
        c->reading = true;
    return rc;
}

void proxy_conn_read_stop(struct proxy_conn *c)
{
    if (!c->reading || c->closing)
        return;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
}

char *proxy_conn_reserve(struct proxy_conn *c, size_t n)
{
    struct proxy_wreq *w = c->out;
    if (w == NULL || w->cap - w->len < n) {
        size_t used = w ? w->len : 0;
        size_t cap = w ? w->cap : WREQ_MIN;
        while (cap - used < n)
            cap *= 2;
        struct proxy_wreq *nw = realloc(w, sizeof(*nw) + cap);
        if (nw == NULL) {
            write_failed(c, UV_ENOMEM);
            return NULL;
        }
        if (w == NULL)
            nw->len = 0;
        nw->cap = cap;
        nw->c = c;
        c->out = w = nw;
    }
    return w->data + w->len;
}

void proxy_conn_commit(struct proxy_conn *c, size_t n)
{
    c->out->len += n;
    c->bytes_written += n;
}

int proxy_conn_write(struct proxy_conn *c, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    char *dst = proxy_conn_reserve(c, len);
    if (dst == NULL)
        return UV_ENOMEM;
    memcpy(dst, data, len);
    proxy_conn_commit(c, len);
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    struct proxy_wreq *w = (struct proxy_wreq *)req; /* req is the first member */
    struct proxy_conn *c = w->c;
    c->queued -= w->len;
    free(w);
    if (c->closing)
        return;
    if (c->on_written)
        c->on_written(c, status);
    if (!c->closing && c->close_when_flushed && c->queued == 0 && c->out == NULL)
        proxy_conn_close(c);
}

static int submit(struct proxy_conn *c, struct proxy_wreq *w)
{
    size_t off = 0;
    if (c->queued == 0) {
        /* uv_try_write first: a write that completes at once needs no request and, unlike
         * uv_write, no epoll_ctl to re-arm the watcher afterwards (one per response saved) */
        uv_buf_t now = uv_buf_init(w->data, (unsigned)w->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n == (int)w->len) {
            free(w);
            return 0;
        }
        if (n > 0)
            off = (size_t)n;
        /* errors other than EAGAIN are reported by uv_write below, through on_written */
    }
    if (off) {
        memmove(w->data, w->data + off, w->len - off);
        w->len -= off;
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    c->queued += w->len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        /* refused at once (EPIPE after a shutdown, EBADF): no on_write will come */
        c->queued -= w->len;
        free(w);
        write_failed(c, rc);
    }
    return rc;
}

static void on_defer(uv_idle_t *h)
{
    struct proxy_conn *c = h->data;
    int err = c->write_err;
    uv_idle_stop(h);
    c->write_err = 0;
    if (!c->closing && err != 0 && c->on_written)
        c->on_written(c, err);
}

/* A write failed without libuv taking it: on_written hears of it on the next loop turn. */
static void write_failed(struct proxy_conn *c, int err)
{
    if (c->closing || c->write_err != 0)
        return;
    c->write_err = err;
    uv_idle_start(&c->defer, on_defer);
}

int proxy_conn_raw_write(struct proxy_conn *c, const char *data, size_t len)
{
    struct proxy_wreq *w = malloc(sizeof(*w) + len);
    if (w == NULL) {
        write_failed(c, UV_ENOMEM);
        return UV_ENOMEM;
    }
    w->c = c;
    w->len = w->cap = len;
    memcpy(w->data, data, len);
    return submit(c, w);
}

int proxy_conn_flush(struct proxy_conn *c)
{
    struct proxy_wreq *w = c->out;
    if (w == NULL || c->closing)
        return 0;
    c->out = NULL;
    if (w->len == 0) {
        free(w);
        return 0;
    }
    if (c->layer) {
        int rc = c->layer->encode(c, w->data, w->len);
        free(w);
        if (rc < 0)
            write_failed(c, rc);
        return rc;
    }
    return submit(c, w);
}

size_t proxy_conn_pending(const struct proxy_conn *c)
{
    return c->queued + (c->out ? c->out->len : 0);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

void proxy_conn_shutdown(struct proxy_conn *c)
{
    if (c->closing || c->shut)
        return;
    proxy_conn_flush(c);
    uv_shutdown_t *req = malloc(sizeof(*req));
    if (req == NULL || uv_shutdown(req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        free(req);
        return;
    }
    c->shut = true;
}

static void on_close(uv_handle_t *h)
{
    struct proxy_conn *c = h->data;
    if (--c->handles != 0)
        return;
    free(c->in.data);
    c->in.data = NULL;
    free(c->out);
    c->out = NULL;
    if (c->layer && c->layer->destroy)
        c->layer->destroy(c);
    if (c->on_closed)
        c->on_closed(c);
}

void proxy_conn_close(struct proxy_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->reading = false;
    uv_close((uv_handle_t *)&c->defer, on_close);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void proxy_conn_close_flushed(struct proxy_conn *c)
{
    if (c->closing)
        return;
    proxy_conn_flush(c);
    if (c->queued == 0)
        proxy_conn_close(c);
    else
        c->close_when_flushed = true;
}

int proxy_conn_unqueue(struct proxy_conn *c, uint64_t mark)
{
    size_t unsent = c->out ? c->out->len : 0;
    if (mark > c->bytes_written || c->bytes_written - unsent > mark)
        return -1;
    size_t drop = (size_t)(c->bytes_written - mark);
    if (drop) {
        c->out->len -= drop;
        c->bytes_written -= drop;
    }
    return 0;
}

void proxy_conn_consume(struct proxy_conn *c, size_t n)
{
    c->in.off += n;
    if (c->in.off == c->in.len)
        c->in.off = c->in.len = 0;
}
