/*
 * tls_layer.c - the HTTPS port's connection layer: ClientHello first, then either a raw
 * splice (passthrough) or TLS termination with OpenSSL.
 *
 * It plugs into struct proxy_conn_layer (conn.h): libuv hands the layer raw socket bytes
 * (decode) and the HTTP code above hands it plaintext to send (encode). Three phases:
 *
 *   HELLO     raw bytes are kept in a bounded buffer until tls_hello_parse() answers. They
 *             are not consumed: the whole point is that a passthrough backend receives the
 *             very bytes the client sent, so the hello is read from our copy rather than
 *             peeked from the socket, which with libuv would need a second, racing reader.
 *   SPLICE    (passthrough) the layer copies everything buffered into c->in, unhooks itself
 *             and frees its state; from then on the connection is plain TCP to its owner.
 *   TLS       an SSL from the tls_store over two memory BIOs: raw bytes go into the read
 *             BIO, plaintext comes out into c->in; plaintext to send goes through SSL_write
 *             and the write BIO's bytes go out with proxy_conn_raw_write().
 *
 * Refusals are sent before the close with uv_try_write: the owner closes the connection as
 * soon as decode fails, which would cancel a queued write, and a 7-byte alert on a socket
 * that has written nothing yet always fits the send buffer.
 */
#include "proxy/tls_internal.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <uv.h>

#include "proxy/conn.h"

/* Raw bytes held while waiting for the hello. A maximal hello (16 KiB) cut into records of
 * 100 bytes fits; one cut into a few bytes per record is refused rather than buffered. */
#define HELLO_BUF_MAX (32 * 1024)
#define PLAIN_CHUNK 16384 /* room made in c->in when it has none left: one full record */

enum phase { PHASE_HELLO, PHASE_TLS };

struct tls_conn {
    enum phase phase;        /* see above */
    struct tls_store *store; /* certificates and counters */
    tls_route_fn route;      /* decides after the hello */
    void *route_ctx;         /* its argument */
    char *hello;             /* raw bytes while in PHASE_HELLO */
    size_t hello_len;        /* bytes in hello */
    SSL *ssl;                /* PHASE_TLS */
    BIO *rbio, *wbio;        /* memory BIOs: socket side of ssl */
    bool established;        /* handshake completed */
};

static int layer_decode(struct proxy_conn *c, const char *raw, size_t len);
static int layer_encode(struct proxy_conn *c, const char *data, size_t len);
static void layer_destroy(struct proxy_conn *c);

static const struct proxy_conn_layer tls_layer = {layer_decode, layer_encode, layer_destroy};

static void tls_conn_free(struct tls_conn *t)
{
    if (!t)
        return;
    SSL_free(t->ssl); /* frees the BIOs with it */
    free(t->hello);
    free(t);
}

int tls_conn_attach(struct proxy_conn *c, struct tls_store *store, tls_route_fn route, void *ctx)
{
    struct tls_conn *t = calloc(1, sizeof(*t));
    if (!t)
        return UV_ENOMEM;
    t->phase = PHASE_HELLO;
    t->store = store;
    t->route = route;
    t->route_ctx = ctx;
    c->layer = &tls_layer;
    c->layer_state = t;
    return 0;
}

bool tls_conn_established(const struct proxy_conn *c)
{
    const struct tls_conn *t = c->layer == &tls_layer ? c->layer_state : NULL;
    return t && t->established;
}

/* Writes a fatal alert straight to the socket (see the header comment for why). */
static void send_alert(struct proxy_conn *c, uint8_t description)
{
    char alert[7] = {21, 3, 3, 0, 2, 2, (char)description};
    uv_buf_t b = uv_buf_init(alert, sizeof(alert));
    uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
}

/* Sends what OpenSSL wrote to the write BIO. `now`: bypass the queue (before a close). */
static int flush_wbio(struct proxy_conn *c, struct tls_conn *t, bool now)
{
    char *data;
    long n = BIO_get_mem_data(t->wbio, &data);
    int rc = 0;

    if (n <= 0)
        return 0;
    if (now) {
        uv_buf_t b = uv_buf_init(data, (unsigned)n);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    } else {
        rc = proxy_conn_raw_write(c, data, (size_t)n);
    }
    (void)BIO_reset(t->wbio);
    return rc;
}

/* Fails the connection after an OpenSSL error, sending its alert if it made one. */
static int tls_failed(struct proxy_conn *c, struct tls_conn *t)
{
    if (!t->established)
        tls_store_count(t->store, TLS_COUNT_HANDSHAKE_FAILURE);
    flush_wbio(c, t, true);
    ERR_clear_error();
    return -1;
}

/* Runs the handshake and reads plaintext with what the read BIO holds. */
static int tls_pump(struct proxy_conn *c, struct tls_conn *t)
{
    int rc, e;

    if (!t->established) {
        rc = SSL_do_handshake(t->ssl);
        if (rc != 1) {
            e = SSL_get_error(t->ssl, rc);
            if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                return tls_failed(c, t);
            return flush_wbio(c, t, false) < 0 ? -1 : 0;
        }
        t->established = true;
        tls_store_count(t->store, TLS_COUNT_HANDSHAKE);
        if (SSL_session_reused(t->ssl))
            tls_store_count(t->store, TLS_COUNT_RESUMED);
    }
    for (;;) {
        /* room for a whole record only when there is no room at all: SSL_read fills what it
         * is given and keeps the rest of a record for the next call. Asking for 16 KiB free
         * after every record grew the buffer (a realloc copying it) on every request. */
        if ((c->in_lent || c->in.data == NULL || c->in.len == c->in.cap) &&
            proxy_conn_in_reserve(c, PLAIN_CHUNK) != 0)
            return -1;
        rc = SSL_read(t->ssl, c->in.data + c->in.len, (int)(c->in.cap - c->in.len));
        if (rc > 0) {
            c->in.len += (size_t)rc;
            /* nothing decrypted left and no raw byte left: another SSL_read would only say
             * WANT_READ (with SSL_MODE_RELEASE_BUFFERS, after taking and freeing a buffer) */
            if (SSL_pending(t->ssl) == 0 && BIO_ctrl_pending(t->rbio) == 0)
                break;
            continue;
        }
        e = SSL_get_error(t->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_ZERO_RETURN)
            break; /* close_notify: the TCP end-of-stream that follows ends the connection */
        if (e != SSL_ERROR_WANT_WRITE)
            return tls_failed(c, t);
        break;
    }
    if (flush_wbio(c, t, false) < 0)
        return -1;
    /* bound what a fast client can pile up while the owner is busy: same rule as plain
     * connections, whose buffer stops at in_max; the owner restarts reading after consuming */
    if (proxy_conn_avail(c) >= c->in_max)
        proxy_conn_read_stop(c);
    return 0;
}

static int start_tls(struct proxy_conn *c, struct tls_conn *t)
{
    char err[TLS_ERR_MAX];

    t->ssl = tls_store_new_ssl(t->store, err, sizeof(err));
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (!t->ssl || !t->rbio || !t->wbio) {
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->rbio = t->wbio = NULL;
        send_alert(c, SSL_AD_INTERNAL_ERROR);
        tls_store_count(t->store, TLS_COUNT_HANDSHAKE_FAILURE);
        return -1;
    }
    BIO_set_mem_eof_return(t->rbio, -1); /* empty means "wait", not end of stream */
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_accept_state(t->ssl);
    t->phase = PHASE_TLS;
    if (BIO_write(t->rbio, t->hello, (int)t->hello_len) != (int)t->hello_len)
        return -1;
    free(t->hello);
    t->hello = NULL;
    t->hello_len = 0;
    return tls_pump(c, t);
}

/* Hands the buffered raw bytes to the owner and leaves the connection. */
static int start_splice(struct proxy_conn *c, struct tls_conn *t)
{
    if (proxy_conn_in_reserve(c, t->hello_len) != 0)
        return -1;
    memcpy(c->in.data + c->in.len, t->hello, t->hello_len);
    c->in.len += t->hello_len;
    c->layer = NULL;
    c->layer_state = NULL;
    tls_conn_free(t);
    return 0;
}

static int on_hello_bytes(struct proxy_conn *c, struct tls_conn *t, const char *raw, size_t len)
{
    struct tls_client_hello hello;
    char err[TLS_ERR_MAX];
    int rc;

    if (t->hello_len + len > HELLO_BUF_MAX) {
        /* more than a maximal hello's records and still undecided: cannot be valid */
        tls_store_count(t->store, TLS_COUNT_MALFORMED);
        send_alert(c, SSL_AD_DECODE_ERROR);
        return -1;
    }
    char *grown = realloc(t->hello, t->hello_len + len);
    if (!grown)
        return -1;
    t->hello = grown;
    memcpy(t->hello + t->hello_len, raw, len);
    t->hello_len += len;

    rc = tls_hello_parse((const uint8_t *)t->hello, t->hello_len, &hello, err, sizeof(err));
    switch (rc) {
    case TLS_HELLO_NEED_MORE:
        return 0;
    case TLS_HELLO_NOT_TLS:
        tls_store_count(t->store, TLS_COUNT_NOT_TLS);
        return -1;
    case TLS_HELLO_MALFORMED:
        tls_store_count(t->store, TLS_COUNT_MALFORMED);
        send_alert(c, SSL_AD_DECODE_ERROR);
        return -1;
    default:
        break;
    }
    switch (t->route(c, &hello, t->route_ctx)) {
    case TLS_ROUTE_PASSTHROUGH:
        tls_store_count(t->store, TLS_COUNT_PASSTHROUGH);
        return start_splice(c, t);
    case TLS_ROUTE_TERMINATE:
        return start_tls(c, t);
    default:
        tls_store_count(t->store, TLS_COUNT_REFUSED);
        send_alert(c, SSL_AD_UNRECOGNIZED_NAME);
        return -1;
    }
}

static int layer_decode(struct proxy_conn *c, const char *raw, size_t len)
{
    struct tls_conn *t = c->layer_state;

    if (t->phase == PHASE_HELLO)
        return on_hello_bytes(c, t, raw, len);
    if (BIO_write(t->rbio, raw, (int)len) != (int)len)
        return -1;
    return tls_pump(c, t);
}

static int layer_encode(struct proxy_conn *c, const char *data, size_t len)
{
    struct tls_conn *t = c->layer_state;

    /* Nothing can be said in the clear on an HTTPS port, and nothing is asked before the
     * handshake: an answer written earlier (a connection limit reply) is dropped. */
    if (!t->established)
        return 0;
    while (len > 0) {
        int chunk = len > INT32_MAX ? INT32_MAX : (int)len;
        int n = SSL_write(t->ssl, data, chunk);
        if (n <= 0) {
            ERR_clear_error();
            return UV_EPROTO;
        }
        data += n;
        len -= (size_t)n;
    }
    return flush_wbio(c, t, false);
}

static void layer_destroy(struct proxy_conn *c)
{
    tls_conn_free(c->layer_state);
    c->layer_state = NULL;
}
