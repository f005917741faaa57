/*
 * dns_server.c - the UDP and TCP listeners of the fleet's DNS, on a libuv loop.
 *
 * It runs on the node's control loop, beside gossip and the record state it answers from:
 * a query reads the member-derived zone and the name table directly, with no copy, lock or
 * hand-off between threads, and an answer costs about as much as one gossip datagram. A flood
 * cannot starve gossip: libuv reads at most 32 datagrams per socket per loop iteration, so
 * gossip's sockets get their turn every few dozen queries, and RRL turns most of a flood into
 * drops before any answer is built.
 *
 * UDP: one datagram in, at most one out, sent with uv_udp_try_send (no queue: a full socket
 * buffer drops the answer, as the kernel would). Over-limit clients are rate-limited
 * (dns_rrl.c). Datagrams longer than DNS_QUERY_MAX are dropped unread (libuv marks them
 * partial).
 *
 * TCP: two-byte length, then the message (RFC 1035 4.2.2, RFC 7766). At most
 * DNS_TCP_CONNS_MAX connections (16 per client address), DNS_TCP_QUERIES_MAX queries each,
 * closed after DNS_TCP_IDLE_MS of silence; a length over DNS_QUERY_MAX closes the
 * connection. TCP is not rate-limited: its peers cannot forge their address.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/socket.h>

#include "dns/dns_int.h"

#define DNS_TCP_PER_CLIENT_MAX 16       /* connections from one client address */
#define DNS_TCP_WRITE_QUEUE_MAX 262144u /* bytes of answers queued to a client before closing */
#define DNS_TCP_ANSWER_MAX 65535        /* a TCP message */
#define DNS_UDP_RCVBUF (1 << 20)        /* receive buffer asked for each UDP socket */

struct dns_server;

/* One TCP client: a fixed buffer for the query being read. */
struct dns_tcp_conn {
    uv_tcp_t handle;
    uv_timer_t idle;
    struct dns_server *srv;
    struct dns_tcp_conn *next, *prev; /* the server's list */
    struct sockaddr_storage peer;     /* for the per-client bound */
    uint8_t buf[2 + DNS_QUERY_MAX];   /* length prefix + query */
    size_t len;                       /* bytes in buf */
    unsigned queries;                 /* answered so far */
    int closing;                      /* handles still to close (0: open) */
};

struct dns_server {
    uv_loop_t *loop;
    struct dns_zone *zone;
    struct dns_rrl *rrl;
    uv_udp_t udp[DNS_LISTEN_MAX];    /* data: the server */
    uv_tcp_t tcp[DNS_LISTEN_MAX];    /* data: the server */
    size_t count;                    /* listeners of each kind */
    size_t open_handles;             /* handles not yet closed (the free waits for 0) */
    struct dns_tcp_conn *conns;      /* open TCP connections */
    size_t conn_count;               /* entries in conns */
    bool closing;                    /* dns_server_close was called */
    uint8_t rbuf[DNS_QUERY_MAX + 1]; /* UDP receive buffer (one datagram at a time) */
    uint8_t wbuf[DNS_UDP_PAYLOAD];   /* UDP answer */
    struct dns_stats stats;
};

static void dns_server_maybe_free(struct dns_server *srv)
{
    if (srv->closing && srv->open_handles == 0) {
        dns_rrl_free(srv->rrl);
        free(srv);
    }
}

static void dns_handle_closed(uv_handle_t *h)
{
    struct dns_server *srv = h->data;

    srv->open_handles--;
    dns_server_maybe_free(srv);
}

static void dns_count(struct dns_server *srv, const struct dns_answer_info *info)
{
    if (info->rcode < 6)
        srv->stats.rcodes[info->rcode]++;
    else
        srv->stats.badvers++;
    if (info->truncated)
        srv->stats.truncated++;
}

/* Answers one query into out[cap] under `limit`; returns the length, or 0 for no answer. */
static size_t dns_respond(struct dns_server *srv, const uint8_t *buf, size_t len, bool tcp,
                          uint8_t *out, size_t cap)
{
    struct dns_query q;
    struct dns_answer_info info = {0};
    int rc = dns_query_decode(buf, len, &q);

    if (rc == DNS_EDROP) {
        srv->stats.dropped++;
        return 0;
    }
    if (rc != 0) {
        info.rcode = q.opcode != 0 ? DNS_RCODE_NOTIMP : DNS_RCODE_FORMERR;
        rc = dns_answer_error(&q, info.rcode, out, cap);
    } else {
        rc = dns_answer(srv->zone, &q, tcp ? DNS_TCP_ANSWER_MAX : dns_udp_limit(&q), out, cap,
                        &info);
    }
    if (rc <= 0) {
        srv->stats.dropped++;
        return 0;
    }
    dns_count(srv, &info);
    return (size_t)rc;
}

/* ---- UDP --------------------------------------------------------------------------------- */

static void dns_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_server *srv = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)srv->rbuf, sizeof(srv->rbuf));
}

/* Turns the answer in out[len] into an RRL slip: header and question only, TC set, no
 * larger than the query that asked. Returns the new length. */
static size_t dns_slip(uint8_t *out, size_t len, const uint8_t *query, size_t qlen)
{
    struct dns_query q;
    size_t keep = DNS_HEADER_LEN;

    if (dns_query_decode(query, qlen, &q) == 0)
        keep += q.qname_len + 4; /* the question is written first, uncompressed */
    out[2] |= 0x80 | 0x02;       /* QR, TC */
    out[3] &= 0xf0;              /* rcode NOERROR */
    memset(out + 6, 0, 6);       /* no records, OPT dropped too */
    return keep < len ? keep : len;
}

static void dns_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                         const struct sockaddr *addr, unsigned flags)
{
    struct dns_server *srv = h->data;
    size_t n;
    uv_buf_t out;

    (void)buf;
    if (nread <= 0 || addr == NULL)
        return;
    if ((flags & UV_UDP_PARTIAL) || (size_t)nread > DNS_QUERY_MAX) {
        srv->stats.dropped++;
        return;
    }
    srv->stats.queries_udp++;
    n = dns_respond(srv, srv->rbuf, (size_t)nread, false, srv->wbuf, sizeof(srv->wbuf));
    if (n == 0)
        return;
    switch (dns_rrl_check(srv->rrl, addr, uv_now(srv->loop))) {
    case DNS_RRL_SEND:
        break;
    case DNS_RRL_SLIP:
        srv->stats.rrl_slipped++;
        n = dns_slip(srv->wbuf, n, srv->rbuf, (size_t)nread);
        break;
    case DNS_RRL_DROP:
        srv->stats.rrl_dropped++;
        return;
    }
    out = uv_buf_init((char *)srv->wbuf, (unsigned)n);
    if (uv_udp_try_send(h, &out, 1, addr) < 0)
        srv->stats.dropped++;
}

/* ---- TCP --------------------------------------------------------------------------------- */

struct dns_tcp_write {
    uv_write_t req;
    uint8_t data[]; /* length prefix + answer */
};

static void dns_tcp_conn_closed(uv_handle_t *h)
{
    struct dns_tcp_conn *c = h->data;
    struct dns_server *srv = c->srv;

    if (--c->closing == 0) {
        free(c);
        srv->open_handles--;
        dns_server_maybe_free(srv);
    }
}

static void dns_tcp_close(struct dns_tcp_conn *c)
{
    struct dns_server *srv = c->srv;

    if (c->closing)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->conn_count--;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->idle, dns_tcp_conn_closed);
    uv_close((uv_handle_t *)&c->handle, dns_tcp_conn_closed);
}

static void dns_tcp_idle(uv_timer_t *t)
{
    dns_tcp_close(t->data);
}

static void dns_tcp_written(uv_write_t *req, int status)
{
    struct dns_tcp_write *w = (struct dns_tcp_write *)req;
    struct dns_tcp_conn *c = req->data;

    free(w);
    if (status < 0 || (c->queries >= DNS_TCP_QUERIES_MAX && c->handle.write_queue_size == 0))
        dns_tcp_close(c);
}

static void dns_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_tcp_conn *c = h->data;

    (void)suggested;
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

/* Answers every whole query in the buffer; returns false when the connection was closed. */
static bool dns_tcp_serve(struct dns_tcp_conn *c)
{
    struct dns_server *srv = c->srv;

    while (c->len >= 2 && !c->closing) {
        size_t qlen = ((size_t)c->buf[0] << 8) | c->buf[1], n;
        struct dns_tcp_write *w;
        uv_buf_t b;

        if (qlen == 0 || qlen > DNS_QUERY_MAX) {
            srv->stats.dropped++;
            dns_tcp_close(c);
            return false;
        }
        if (c->len < 2 + qlen)
            return true;
        srv->stats.queries_tcp++;
        w = malloc(sizeof(*w) + 2 + DNS_TCP_ANSWER_MAX);
        if (w == NULL) {
            dns_tcp_close(c);
            return false;
        }
        n = dns_respond(srv, c->buf + 2, qlen, true, w->data + 2, DNS_TCP_ANSWER_MAX);
        memmove(c->buf, c->buf + 2 + qlen, c->len - 2 - qlen);
        c->len -= 2 + qlen;
        c->queries++;
        if (n == 0) {
            free(w);
            dns_tcp_close(c);
            return false;
        }
        w->data[0] = (uint8_t)(n >> 8);
        w->data[1] = (uint8_t)n;
        w->req.data = c;
        b = uv_buf_init((char *)w->data, (unsigned)(n + 2));
        if (uv_write(&w->req, (uv_stream_t *)&c->handle, &b, 1, dns_tcp_written) != 0) {
            free(w);
            dns_tcp_close(c);
            return false;
        }
        if (c->queries >= DNS_TCP_QUERIES_MAX) {
            uv_read_stop((uv_stream_t *)&c->handle); /* closed once the answers are out */
            return false;
        }
        if (c->handle.write_queue_size > DNS_TCP_WRITE_QUEUE_MAX) {
            dns_tcp_close(c); /* a client that asks and never reads */
            return false;
        }
    }
    return true;
}

static void dns_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct dns_tcp_conn *c = s->data;

    (void)buf;
    if (nread < 0) {
        dns_tcp_close(c);
        return;
    }
    c->len += (size_t)nread;
    uv_timer_again(&c->idle);
    dns_tcp_serve(c);
}

static bool dns_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                  &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
}

static bool dns_tcp_admit(struct dns_server *srv, const struct sockaddr_storage *peer)
{
    size_t same = 0;

    if (srv->conn_count >= DNS_TCP_CONNS_MAX)
        return false;
    for (struct dns_tcp_conn *c = srv->conns; c; c = c->next)
        if (dns_same_ip(&c->peer, peer) && ++same >= DNS_TCP_PER_CLIENT_MAX)
            return false;
    return true;
}

static void dns_tcp_accept(uv_stream_t *l, int status)
{
    struct dns_server *srv = l->data;
    struct dns_tcp_conn *c;
    int len = sizeof(struct sockaddr_storage);

    if (status < 0 || (c = calloc(1, sizeof(*c))) == NULL)
        return;
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->handle);
    uv_timer_init(srv->loop, &c->idle);
    c->handle.data = c->idle.data = c;
    srv->open_handles++;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->conn_count++;
    if (uv_accept(l, (uv_stream_t *)&c->handle) != 0 ||
        uv_tcp_getpeername(&c->handle, (struct sockaddr *)&c->peer, &len) != 0) {
        dns_tcp_close(c);
        return;
    }
    srv->conn_count--; /* not counting itself in the admission check */
    if (!dns_tcp_admit(srv, &c->peer)) {
        srv->conn_count++;
        srv->stats.tcp_refused++;
        dns_tcp_close(c);
        return;
    }
    srv->conn_count++;
    uv_tcp_nodelay(&c->handle, 1);
    uv_timer_start(&c->idle, dns_tcp_idle, DNS_TCP_IDLE_MS, DNS_TCP_IDLE_MS);
    uv_read_start((uv_stream_t *)&c->handle, dns_tcp_alloc, dns_tcp_read);
}

/* ---- lifecycle --------------------------------------------------------------------------- */

/* A burst of queries (a resolver's retries, a benchmark's 200 in flight) must not overflow the
 * socket while the loop is busy: each small datagram costs about 1 KiB of receive buffer
 * (its skb), so the kernel's default 208 KiB holds only ~200. Ask for DNS_UDP_RCVBUF: forced
 * past net.core.rmem_max when the process may (CAP_NET_ADMIN, as NSD does), else whatever
 * rmem_max allows. Never fatal: a smaller buffer only drops more of a burst. */
static int dns_udp_buffers(uv_udp_t *udp)
{
    uv_os_fd_t fd;
    int size = DNS_UDP_RCVBUF;

    if (uv_fileno((uv_handle_t *)udp, &fd) == 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == 0)
        return 0;
    (void)uv_recv_buffer_size((uv_handle_t *)udp, &size);
    return 0;
}

static int dns_bind(struct dns_server *srv, size_t i, const struct sockaddr *sa, char *err,
                    size_t errlen)
{
    char text[INET6_ADDRSTRLEN + 8] = "?";
    int rc;

    if (sa->sa_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)sa, text, sizeof(text));
    else
        uv_ip6_name((const struct sockaddr_in6 *)sa, text, sizeof(text));
    uv_udp_init(srv->loop, &srv->udp[i]);
    uv_tcp_init(srv->loop, &srv->tcp[i]);
    srv->udp[i].data = srv->tcp[i].data = srv;
    srv->open_handles += 2;
    srv->count = i + 1;
    if ((rc = uv_udp_bind(&srv->udp[i], sa, 0)) != 0 || (rc = dns_udp_buffers(&srv->udp[i])) != 0 ||
        (rc = uv_udp_recv_start(&srv->udp[i], dns_udp_alloc, dns_udp_recv)) != 0 ||
        (rc = uv_tcp_bind(&srv->tcp[i], sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&srv->tcp[i], 128, dns_tcp_accept)) != 0) {
        snprintf(err, errlen, "dns-listen %s port %u: %s", text,
                 ntohs(((const struct sockaddr_in *)sa)->sin_port), uv_strerror(rc));
        return DNS_EIO;
    }
    return 0;
}

struct dns_server *dns_server_start(uv_loop_t *loop, const struct dns_server_config *cfg,
                                    struct dns_zone *zone, char *err, size_t errlen)
{
    struct dns_server *srv;

    if (cfg->listen_count == 0 || cfg->listen_count > DNS_LISTEN_MAX || zone == NULL) {
        snprintf(err, errlen, "1..%d listen addresses and a zone are required", DNS_LISTEN_MAX);
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL || (srv->rrl = dns_rrl_new(cfg->rrl_rate)) == NULL) {
        free(srv);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    srv->loop = loop;
    srv->zone = zone;
    for (size_t i = 0; i < cfg->listen_count; i++) {
        if (dns_bind(srv, i, (const struct sockaddr *)&cfg->listen[i], err, errlen) != 0) {
            dns_server_close(srv);
            return NULL;
        }
    }
    return srv;
}

void dns_server_close(struct dns_server *srv)
{
    if (srv == NULL || srv->closing)
        return;
    srv->closing = true;
    while (srv->conns)
        dns_tcp_close(srv->conns);
    for (size_t i = 0; i < srv->count; i++) {
        uv_close((uv_handle_t *)&srv->udp[i], dns_handle_closed);
        uv_close((uv_handle_t *)&srv->tcp[i], dns_handle_closed);
    }
    dns_server_maybe_free(srv);
}

void dns_server_stats(const struct dns_server *srv, struct dns_stats *out)
{
    *out = srv->stats;
}

int dns_server_bound(const struct dns_server *srv, size_t i, struct sockaddr_storage *out)
{
    int len = sizeof(*out);

    if (i >= srv->count || uv_udp_getsockname(&srv->udp[i], (struct sockaddr *)out, &len))
        return DNS_EINVAL;
    return 0;
}
