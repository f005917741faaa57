/*
 * conn.c - byte-stream connections over libuv TCP handles, with an optional layer (TLS) in
 * between; see conn.h. Reads land in a growable buffer bounded by in_max; writes are coalesced
 * into one request per flush that owns its bytes until libuv is done with them.
 *
 * The read buffer exists only while it holds bytes (as nginx does): it is taken when the
 * socket is readable and given back once everything read was consumed, so a keep-alive
 * connection between requests, an idle backend connection or an idle tunnel holds none.
 * Read buffers of the initial sizes and write requests of the smallest size go through a small
 * per-thread cache, which keeps the request path free of malloc and free.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/conn.h"
#include "proxy/proxy.h"

#define WREQ_MIN 4096
#define LEND_MIN 8192   /* bytes passed on in the read buffer itself from this size on */
#define READ_BULK 65536 /* reads grow to this size while they fill the buffer */

/* A write: bytes of its own (data, cap), or a lent read buffer (ext, of ext_cap bytes) that
 * goes back to the buffer cache once written. p..p+len are the bytes still to write. */
struct proxy_wreq {
    uv_write_t req;
    struct proxy_conn *c;
    char *p;
    size_t len, cap;
    char *ext;
    size_t ext_cap;
    char data[];
};

/* ---- read buffers -------------------------------------------------------------------------- */

#define BUF_CACHE_SIZES 8 /* distinct sizes: reads (8 to 64 KiB as they grow), TLS, writes */
#define BUF_CACHE_MAX 32  /* buffers kept per size per thread */
/* How many a thread really keeps. Under ASan none: every buffer goes back to malloc at once,
 * since a cached buffer would hide a use after its give-back (a pointer into a read buffer
 * lent to a write that completed at once). */
#if defined(__SANITIZE_ADDRESS__)
static const unsigned buf_cache_keep = 0;
#else
static const unsigned buf_cache_keep = BUF_CACHE_MAX;
#endif
#define BUF_CACHE_BYTES (1 << 20) /* and at most this many bytes of each size */

struct buf_cache {
    size_t size[BUF_CACHE_SIZES];
    unsigned count[BUF_CACHE_SIZES];
    char *bufs[BUF_CACHE_SIZES][BUF_CACHE_MAX];
};

static _Atomic uint64_t buffers_held; /* read buffers held by connections, process-wide */
static _Thread_local struct buf_cache *cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *arg)
{
    struct buf_cache *bc = arg;
    for (int i = 0; i < BUF_CACHE_SIZES; i++)
        for (unsigned j = 0; j < bc->count[i]; j++)
            free(bc->bufs[i][j]);
    free(bc);
}

static void cache_key_init(void)
{
    (void)pthread_key_create(&cache_key, cache_free);
}

/* This thread's cache slot for buffers of `size`, or -1. */
static int cache_slot(size_t size, bool create)
{
    if (cache == NULL) {
        if (!create)
            return -1;
        pthread_once(&cache_once, cache_key_init);
        cache = calloc(1, sizeof(*cache));
        if (cache == NULL)
            return -1;
        /* freed at thread exit; the main thread's is reachable until the process ends */
        (void)pthread_setspecific(cache_key, cache);
    }
    for (int i = 0; i < BUF_CACHE_SIZES; i++) {
        if (cache->size[i] == size)
            return i;
        if (cache->size[i] == 0 && create) {
            cache->size[i] = size;
            return i;
        }
    }
    return -1;
}

/* Takes a buffer of `size` bytes for c->in (which holds none). */
static int in_take(struct proxy_conn *c, size_t size)
{
    int i = cache_slot(size, true);
    char *d = NULL;
    if (i >= 0 && cache->count[i] > 0)
        d = cache->bufs[i][--cache->count[i]];
    else
        d = malloc(size);
    if (d == NULL)
        return UV_ENOMEM;
    c->in.data = d;
    c->in.cap = size;
    c->in.off = c->in.len = 0;
    atomic_fetch_add_explicit(&buffers_held, 1, memory_order_relaxed);
    return 0;
}

/* Returns a read buffer of `cap` bytes to this thread's cache (or frees it). */
static void buf_give_back(char *data, size_t cap)
{
    int i = cache_slot(cap, true);
    if (i >= 0 && cache->count[i] < buf_cache_keep && cache->count[i] * cap < BUF_CACHE_BYTES)
        cache->bufs[i][cache->count[i]++] = data;
    else
        free(data);
    atomic_fetch_sub_explicit(&buffers_held, 1, memory_order_relaxed);
}

static void in_give_back(struct proxy_conn *c)
{
    if (c->in.data == NULL)
        return;
    if (!c->in_lent) /* a lent buffer goes back when its write is done */
        buf_give_back(c->in.data, c->in.cap);
    c->in_lent = false;
    c->in.data = NULL;
    c->in.cap = c->in.off = c->in.len = 0;
}

/* Before bytes are written into c->in: a buffer lent to a write is left to it, the bytes not
 * consumed yet (rarely any) copied into a buffer of c's own. */
static int in_unlend(struct proxy_conn *c)
{
    if (!c->in_lent)
        return 0;
    struct proxy_buf old = c->in;
    c->in_lent = false;
    c->in.data = NULL;
    if (old.off == old.len)
        return 0;
    int rc = in_take(c, old.cap);
    if (rc != 0) {
        c->in_lent = true;
        c->in.data = old.data; /* still readable; the caller fails the connection */
        return rc;
    }
    memcpy(c->in.data, old.data + old.off, old.len - old.off);
    c->in.len = old.len - old.off;
    return 0;
}

uint64_t proxy_read_buffers(void)
{
    return atomic_load_explicit(&buffers_held, memory_order_relaxed);
}

/* A write request with room for cap bytes: the smallest size comes from the cache. */
static struct proxy_wreq *wreq_new(size_t cap)
{
    struct proxy_wreq *w = NULL;
    if (cap <= WREQ_MIN) {
        cap = WREQ_MIN;
        int i = cache_slot(sizeof(*w) + cap, true);
        if (i >= 0 && cache->count[i] > 0)
            w = (struct proxy_wreq *)(void *)cache->bufs[i][--cache->count[i]];
    }
    if (w == NULL)
        w = malloc(sizeof(*w) + cap);
    if (w == NULL)
        return NULL;
    w->p = w->data;
    w->len = 0;
    w->cap = cap;
    w->ext = NULL;
    return w;
}

static void wreq_free(struct proxy_wreq *w)
{
    if (w == NULL)
        return;
    if (w->ext != NULL) {
        buf_give_back(w->ext, w->ext_cap);
        free(w);
        return;
    }
    int i = w->cap == WREQ_MIN ? cache_slot(sizeof(*w) + WREQ_MIN, true) : -1;
    if (i >= 0 && cache->count[i] < buf_cache_keep)
        cache->bufs[i][cache->count[i]++] = (char *)w;
    else
        free(w);
}

int proxy_conn_in_reserve(struct proxy_conn *c, size_t need)
{
    struct proxy_buf *b = &c->in;
    if (in_unlend(c) != 0)
        return UV_ENOMEM;
    if (b->data == NULL) {
        size_t size = c->in_initial ? c->in_initial : 4096;
        while (size < need)
            size *= 2;
        return in_take(c, size);
    }
    if (b->cap - b->len >= need)
        return 0;
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->cap - b->len >= need)
            return 0;
    }
    size_t cap = b->cap;
    while (cap - b->len < need)
        cap *= 2;
    char *n = realloc(b->data, cap);
    if (n == NULL)
        return UV_ENOMEM;
    b->data = n;
    b->cap = cap;
    return 0;
}

void proxy_conn_release_idle(struct proxy_conn *c)
{
    if (c->in.off == c->in.len)
        in_give_back(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void write_failed(struct proxy_conn *c, int err);

static void on_defer(uv_idle_t *h);

void proxy_conn_loop_init(uv_loop_t *loop, struct proxy_conn_loop *cl)
{
    memset(cl, 0, sizeof(*cl));
    uv_idle_init(loop, &cl->defer);
    cl->defer.data = cl;
}

void proxy_conn_loop_close(struct proxy_conn_loop *cl)
{
    if (cl->closed)
        return;
    cl->closed = true;
    uv_close((uv_handle_t *)&cl->defer, NULL);
}

int proxy_conn_init(struct proxy_conn_loop *cl, struct proxy_conn *c, size_t in_initial,
                    size_t in_max)
{
    memset(c, 0, sizeof(*c));
    c->in_max = in_max;
    c->in_initial = in_initial < in_max ? in_initial : in_max;
    c->cl = cl;
    int rc = uv_tcp_init(cl->defer.loop, &c->tcp);
    if (rc != 0)
        return rc;
    c->tcp.data = c;
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
    if (in_unlend(c) != 0) {
        buf->base = NULL;
        buf->len = 0; /* libuv reports UV_ENOBUFS */
        return;
    }
    if (b->data == NULL && !c->layer) {
        if (in_take(c, c->in_initial) != 0) {
            buf->base = NULL;
            buf->len = 0; /* libuv reports UV_ENOBUFS */
            return;
        }
    }
    if (b->off == b->len) {
        b->off = b->len = 0;
    } else if (b->cap - b->len < 2048 && b->off > 0) {
        memmove(b->data, b->data + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
    }
    if (b->data != NULL && b->len == b->cap && b->cap < c->in_max) {
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
    if (nread == 0 || nread == UV_ENOBUFS) {
        proxy_conn_release_idle(c); /* nothing came (EAGAIN) */
        return;
    }
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
        /* a read that filled the buffer: a stream is flowing, read it in bigger pieces (the
         * buffer is taken at this size from the next read on) */
        if ((size_t)nread == buf->len && c->in_initial < READ_BULK && c->in_initial < c->in_max)
            c->in_initial = c->in_initial * 2 > c->in_max ? c->in_max : c->in_initial * 2;
    }
    c->bytes_read += (uint64_t)nread;
    c->on_read(c, 0);
    /* everything read was consumed: the buffer goes back until the next bytes arrive. The
     * owner keeps no pointer into it past consumption (what it needs later, it copied). */
    if (!c->closing)
        proxy_conn_release_idle(c);
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
    if (w == NULL && n <= WREQ_MIN) {
        w = wreq_new(n);
        if (w == NULL)
            return NULL;
        w->c = c;
        c->out = w;
    }
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
        nw->p = nw->data;
        nw->ext = NULL;
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
    wreq_free(w);
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
        uv_buf_t now = uv_buf_init(w->p, (unsigned)w->len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n == (int)w->len) {
            wreq_free(w);
            return 0;
        }
        if (n > 0)
            off = (size_t)n;
        /* errors other than EAGAIN are reported by uv_write below, through on_written */
    }
    w->p += off;
    w->len -= off;
    uv_buf_t b = uv_buf_init(w->p, (unsigned)w->len);
    c->queued += w->len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        /* refused at once (EPIPE after a shutdown, EBADF): no on_write will come */
        c->queued -= w->len;
        wreq_free(w);
        write_failed(c, rc);
    }
    return rc;
}

static void on_defer(uv_idle_t *h)
{
    struct proxy_conn_loop *cl = h->data;
    struct proxy_conn *c = cl->failed;
    /* failures found while these are reported wait for the next turn */
    cl->failed = NULL;
    while (c != NULL) {
        struct proxy_conn *next = c->failed_next;
        int err = c->write_err;
        c->failed_next = NULL;
        c->write_err = 0;
        if (!c->closing && err != 0 && c->on_written)
            c->on_written(c, err);
        c = next;
    }
    if (cl->failed == NULL)
        uv_idle_stop(h);
}

/* Takes c off the list of failures to report (it is closing: nobody hears of them). */
static void defer_forget(struct proxy_conn *c)
{
    if (c->write_err == 0)
        return;
    for (struct proxy_conn **at = &c->cl->failed; *at != NULL; at = &(*at)->failed_next)
        if (*at == c) {
            *at = c->failed_next;
            break;
        }
    c->failed_next = NULL;
    c->write_err = 0;
}

/* A write failed without libuv taking it: on_written hears of it on the next loop turn. */
static void write_failed(struct proxy_conn *c, int err)
{
    if (c->closing || c->write_err != 0 || c->cl->closed)
        return;
    c->write_err = err;
    c->failed_next = c->cl->failed;
    c->cl->failed = c;
    uv_idle_start(&c->cl->defer, on_defer);
}

int proxy_conn_raw_write(struct proxy_conn *c, const char *data, size_t len)
{
    struct proxy_wreq *w = wreq_new(len);
    if (w == NULL) {
        write_failed(c, UV_ENOMEM);
        return UV_ENOMEM;
    }
    w->c = c;
    w->len = len;
    memcpy(w->data, data, len);
    return submit(c, w);
}

int proxy_conn_write_from(struct proxy_conn *to, struct proxy_conn *from, const char *data,
                          size_t len)
{
    struct proxy_buf *b = &from->in;
    if (len < LEND_MIN || to->layer || from->layer || from->in_lent || to->closing ||
        b->data == NULL || data < b->data + b->off || data + len != b->data + b->len)
        return proxy_conn_write(to, data, len);
    struct proxy_wreq *w = malloc(sizeof(*w));
    if (w == NULL)
        return proxy_conn_write(to, data, len);
    w->c = to;
    w->p = (char *)data;
    w->len = len;
    w->cap = 0;
    w->ext = b->data;
    w->ext_cap = b->cap;
    from->in_lent = true;
    proxy_conn_flush(to); /* what was queued before goes first */
    to->bytes_written += len;
    return submit(to, w);
}

int proxy_conn_flush(struct proxy_conn *c)
{
    struct proxy_wreq *w = c->out;
    if (w == NULL || c->closing)
        return 0;
    c->out = NULL;
    if (w->len == 0) {
        wreq_free(w);
        return 0;
    }
    if (c->layer) {
        int rc = c->layer->encode(c, w->data, w->len);
        wreq_free(w);
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
    defer_forget(c);
    in_give_back(c);
    wreq_free(c->out);
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
