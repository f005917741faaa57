/*
 * conn.h - the proxy's byte-stream connection (private to proxy/).
 *
 * Everything above this layer (HTTP sessions, tunnels, backend pools) reads plaintext from
 * `in` and queues plaintext with proxy_conn_write()/proxy_conn_flush(); it never touches the
 * socket. A connection may carry a layer (struct proxy_conn_layer): the TLS termination of
 * issue 5 plugs in there, turning raw socket bytes into `in` and queued plaintext into socket
 * bytes, without the HTTP code changing. With no layer, reads land directly in `in` (no copy)
 * and output is written as queued. A raw splice (TLS passthrough) is two layer-less
 * connections whose `in` is forwarded to each other, as tunnels do after a 101.
 *
 * Output is coalesced: bytes queued during one read callback go out in one write(2) at
 * proxy_conn_flush(), which keeps small responses at one system call.
 *
 * Every write failure reaches on_written, and never from inside the call that queued or
 * flushed: libuv reports most of them itself, and those it refuses at once (a write after a
 * shutdown, a layer that cannot encode, no memory for the queue) are reported from the next
 * loop turn, through an idle handle the connections of a loop share (struct proxy_conn_loop).
 * Callers can ignore the return of a write or a flush and still learn of the failure in their
 * one error path, instead of waiting for a timeout.
 */
#ifndef WEBGW_PROXY_CONN_H
#define WEBGW_PROXY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Input buffer: bytes [off, len) are unconsumed. data is NULL (cap 0) while the connection
 * holds no unconsumed bytes: it is taken when bytes arrive and given back once they are
 * consumed (conn.c), so an idle connection holds no read buffer. */
struct proxy_buf {
    char *data;
    size_t off, len, cap;
};

struct proxy_wreq; /* one submitted or filling write, conn.c */
struct proxy_conn;

/* What the connections of one loop share: the idle handle that reports, on the next loop turn,
 * the write failures libuv refused at once (one per loop rather than one per connection). */
struct proxy_conn_loop {
    uv_idle_t defer;           /* started while `failed` is not empty */
    struct proxy_conn *failed; /* connections with a failure to report (through failed_next) */
    bool closed;               /* proxy_conn_loop_close() called */
};

/* A transform between the socket and the plaintext seen above (TLS). */
struct proxy_conn_layer {
    /* Raw bytes read from the socket: append the plaintext to c->in. <0 fails the conn. */
    int (*decode)(struct proxy_conn *c, const char *raw, size_t len);
    /* Plaintext is to be sent: transform data[len] and hand it to proxy_conn_raw_write(). */
    int (*encode)(struct proxy_conn *c, const char *data, size_t len);
    /* The connection is being freed. */
    void (*destroy)(struct proxy_conn *c);
};

struct proxy_conn {
    uv_tcp_t tcp;                         /* first: the handle's data points at the conn */
    struct proxy_buf in;                  /* plaintext read, not yet consumed */
    size_t in_max;                        /* `in` never grows past this */
    size_t in_initial;                    /* size of `in` when taken; grows while reads fill it */
    struct proxy_wreq *out;               /* plaintext queued, not yet submitted */
    size_t queued;                        /* bytes submitted and not yet written */
    const struct proxy_conn_layer *layer; /* NULL: plain TCP */
    void *layer_state;                    /* owned by the layer */
    /* Called with 0 after bytes were appended to `in`, UV_EOF at end of stream, or a libuv
     * error. Not called again after proxy_conn_close(). */
    void (*on_read)(struct proxy_conn *c, int status);
    /* Called when a write completed (status 0) or failed; c->queued is already reduced. A
     * failure refused at once is reported here on the next loop turn (see the top). */
    void (*on_written)(struct proxy_conn *c, int status);
    /* Called once its handle is closed; the owner frees its memory there. */
    void (*on_closed)(struct proxy_conn *c);
    void *owner;
    struct proxy_conn_loop *cl;     /* the loop's shared part (reports refused writes) */
    struct proxy_conn *failed_next; /* in cl->failed while write_err waits to be reported */
    int write_err;                  /* a failure refused at once, until reported; 0 = none */
    bool reading;                   /* read started */
    bool in_lent;            /* in.data is also a write's: never written into again (conn.c) */
    bool closing;            /* proxy_conn_close() called */
    bool shut;               /* write side shut down */
    bool close_when_flushed; /* close once queued reaches 0 */
    uint64_t bytes_read;     /* plaintext bytes read */
    uint64_t bytes_written;  /* plaintext bytes queued */
};

/* Prepares the shared part of a loop's connections; close it with the loop's other handles,
 * once no connection of the loop writes any more. */
void proxy_conn_loop_init(uv_loop_t *loop, struct proxy_conn_loop *cl);
void proxy_conn_loop_close(struct proxy_conn_loop *cl);
/* Initializes c's TCP handle on cl's loop. Returns 0 or a libuv error. */
int proxy_conn_init(struct proxy_conn_loop *cl, struct proxy_conn *c, size_t in_initial,
                    size_t in_max);
int proxy_conn_read_start(struct proxy_conn *c);
void proxy_conn_read_stop(struct proxy_conn *c);
/* Queues bytes (copied) for the next flush. Returns 0 or UV_ENOMEM (on_written hears of it). */
int proxy_conn_write(struct proxy_conn *c, const void *data, size_t len);
/* Like proxy_conn_write for bytes read from `from`: when they are at least 8 KiB and end
 * where from's input ends, and neither connection has a layer, the read buffer itself is
 * queued (what was queued before is submitted first) and `from` reads into a new one: no copy.
 * The caller still consumes them from `from`, but must not read `data` afterwards: a write
 * that completes at once has given the buffer back already. */
int proxy_conn_write_from(struct proxy_conn *to, struct proxy_conn *from, const char *data,
                          size_t len);
/* Reserves room for n bytes in the queue and returns where to write them; commit with
 * proxy_conn_commit(). NULL on allocation failure (on_written hears of it). */
char *proxy_conn_reserve(struct proxy_conn *c, size_t n);
void proxy_conn_commit(struct proxy_conn *c, size_t n);
/* Submits queued bytes to the socket (through the layer). Returns 0 or a libuv error, which
 * on_written also gets on the next loop turn. */
int proxy_conn_flush(struct proxy_conn *c);
/* Bytes waiting to be written: submitted plus queued. Drives back-pressure. */
size_t proxy_conn_pending(const struct proxy_conn *c);
/* Layers write their output here. */
int proxy_conn_raw_write(struct proxy_conn *c, const char *data, size_t len);
/* Flushes, then shuts the write side down once everything is written (half-close). */
void proxy_conn_shutdown(struct proxy_conn *c);
/* Closes at once; pending writes are cancelled. on_closed runs later. Idempotent. */
void proxy_conn_close(struct proxy_conn *c);
/* Closes once every queued byte is written (or at once if none are). */
void proxy_conn_close_flushed(struct proxy_conn *c);
/* Takes back queued bytes that have not been submitted yet: everything queued after the first
 * `mark` bytes (a value of c->bytes_written taken earlier). Returns 0 when done, -1 (nothing
 * changed) when some of those bytes were already submitted. Lets a reply be replaced by an
 * error while nothing of it has left. */
int proxy_conn_unqueue(struct proxy_conn *c, uint64_t mark);
/* Makes room for `need` more bytes at the end of c->in, taking a buffer when it has none
 * (layers decode into it). Returns 0 or UV_ENOMEM. */
int proxy_conn_in_reserve(struct proxy_conn *c, size_t need);
/* Gives the read buffer back when it holds no unconsumed bytes (done after every read
 * callback; owners call it after consuming outside one). */
void proxy_conn_release_idle(struct proxy_conn *c);
/* Drops consumed bytes: n more bytes of `in` are consumed. */
void proxy_conn_consume(struct proxy_conn *c, size_t n);

static inline const char *proxy_conn_data(const struct proxy_conn *c)
{
    return c->in.data != NULL ? c->in.data + c->in.off : "";
}

static inline size_t proxy_conn_avail(const struct proxy_conn *c)
{
    return c->in.len - c->in.off;
}

/* True when `in` is at its maximum size and full: reading must wait for consumption. */
bool proxy_conn_in_full(const struct proxy_conn *c);

#endif /* WEBGW_PROXY_CONN_H */
