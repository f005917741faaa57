/*
 * gossip_uv.c - the libuv transport and clock: UDP for datagrams, TCP for stream messages.
 *
 * One UDP socket and one TCP listener share the gossip port. A stream message travels on its
 * own short TCP connection: the sender connects, writes one frame and then reads at most one
 * frame back; the receiver hands the frame to gossip, and a stream message gossip sends to
 * that same sender while handling it (the ack of a TCP probe, a push-pull reply) is written
 * back on the connection it came in on, which then closes. Anything later goes on a new
 * connection. So a TCP probe costs one handshake, not two (with a second one, a lost SYN on
 * the way back cost a 1 s retransmission), both ends stay free of per-connection protocol
 * state, and a stuck peer costs one connection with a deadline, never a blocked exchange.
 * A frame is
 *
 *     length (4, big-endian, of what follows the address) | address length (1: 6 or 18) |
 *     sender's gossip address | sealed message
 *
 * The sender's address is in the frame because the TCP source port is ephemeral. It is not
 * authenticated, so only its port is used: replies go to the IP the connection came from, at
 * the declared gossip port. A forged address therefore cannot aim our replies (a full member
 * list) at a third party.
 *
 * The port is open to anyone who can reach it, key or not, so connections are bounded: at most
 * GUV_IN_MAX inbound (and GUV_OUT_MAX outbound, a separate budget so a flood of inbound
 * connections never stops our own probes and exchanges), at most GUV_IN_PER_PEER from one
 * peer (an IPv4 address or an IPv6 /64), and an inbound connection that sends nothing for
 * GUV_IDLE_MS is cut. Refused connections are accepted into a heap handle and closed at once,
 * or the listener would keep signalling.
 *
 * The clock is uv_now(); one uv timer is armed for the deadline gossip_tick returns and is
 * re-armed after every tick and every received message, and moved up when gossip asks for an
 * earlier tick (the clock's wake: a change queued between ticks).
 */
#include "gossip/gossip_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define GUV_IO_TIMEOUT_MS 10000 /* a connection that has not finished by then is cut */
#define GUV_IDLE_MS 2000        /* an inbound connection silent this long is cut */
#define GUV_IN_MAX 128          /* concurrent inbound stream connections */
#define GUV_OUT_MAX 128         /* concurrent outbound stream connections */
#define GUV_IN_PER_PEER 8       /* inbound connections from one IPv4 address or IPv6 /64 */

struct guv_conn {
    uv_tcp_t tcp;                 /* the connection (first: handle casts) */
    uv_timer_t timer;             /* its deadline */
    struct guv *u;                /* owner */
    struct guv_conn *prev, *next; /* owner's list */
    bool outbound;                /* we connected */
    bool replied;                 /* inbound: an answer is being written back on it */
    struct gossip_addr peer;      /* inbound: the TCP peer (its port is ephemeral); outbound:
                                     where we connected (whom an answer comes from) */
    struct gossip_addr sender;    /* inbound: the peer's gossip address (IP of the connection,
                                     declared port): whom an answer on it is for */
    uint64_t deadline;            /* inbound: loop time when the whole frame must be in */
    uv_connect_t connect;         /* outbound: connect request */
    uv_write_t write;             /* outbound: the frame write */
    uint8_t *buf;                 /* outbound: frame; inbound: reassembly */
    size_t len, cap;              /* bytes received (out: to write) / allocated */
    size_t want;                  /* inbound: whole frame size (0: header not read yet) */
    int closing;                  /* handles still to close */
};

struct guv {
    uv_loop_t *loop;              /* where everything runs */
    struct gossip *g;             /* the member */
    uv_udp_t udp;                 /* datagrams */
    uv_tcp_t listener;            /* stream messages */
    uv_timer_t timer;             /* gossip_tick deadline */
    struct guv_conn *conns;       /* open stream connections */
    struct guv_conn *answering;   /* inbound connection whose frame gossip is handling now */
    size_t nin, nout;             /* inbound / outbound connections in the list */
    size_t conn_structs;          /* connections not yet freed (their handles may be closing) */
    int open_handles;             /* udp, listener, timer still open */
    bool closing;                 /* gossip_uv_close called */
    struct gossip_addr bound;     /* what we bound */
    struct gossip_addr advertise; /* what we announce */
    uint8_t rbuf[65536];          /* datagram receive buffer */
};

/* ---- addresses --------------------------------------------------------------------------- */

static void guv_to_sockaddr(const struct gossip_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == 6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a->ip, 16);
        s6->sin6_port = htons(a->port);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a->ip, 4);
        s4->sin_port = htons(a->port);
    }
}

static bool guv_from_sockaddr(const struct sockaddr *sa, struct gossip_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        a->family = 4;
        memcpy(a->ip, &s4->sin_addr, 4);
        a->port = ntohs(s4->sin_port);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(&s6->sin6_addr, v4mapped, 12) == 0) {
            a->family = 4;
            memcpy(a->ip, (const uint8_t *)&s6->sin6_addr + 12, 4);
        } else {
            a->family = 6;
            memcpy(a->ip, &s6->sin6_addr, 16);
        }
        a->port = ntohs(s6->sin6_port);
        return true;
    }
    return false;
}

static bool guv_unspecified(const struct gossip_addr *a)
{
    static const uint8_t zero[16];

    return memcmp(a->ip, zero, a->family == 4 ? 4 : 16) == 0;
}

/* ---- timer ------------------------------------------------------------------------------- */

static void guv_timer_cb(uv_timer_t *t);

static void guv_rearm(struct guv *u)
{
    uint64_t next, now;

    if (u->closing)
        return;
    next = gossip_tick(u->g);
    uv_update_time(u->loop);
    now = uv_now(u->loop);
    uv_timer_start(&u->timer, guv_timer_cb, next > now ? next - now : 0, 0);
}

static void guv_timer_cb(uv_timer_t *t)
{
    guv_rearm(t->data);
}

/* The clock's wake: a change queued between ticks moves the timer up. */
static void guv_wake(void *ctx, uint64_t at_ms)
{
    struct guv *u = ctx;
    uint64_t now = uv_now(u->loop);
    uint64_t delay = at_ms > now ? at_ms - now : 0;

    if (u->closing)
        return;
    if (uv_is_active((uv_handle_t *)&u->timer) && uv_timer_get_due_in(&u->timer) <= delay)
        return;
    uv_timer_start(&u->timer, guv_timer_cb, delay, 0);
}

static uint64_t guv_now(void *ctx)
{
    return uv_now(((struct guv *)ctx)->loop);
}

static uint64_t guv_wall(void *ctx)
{
    struct timespec ts;

    (void)ctx;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- datagrams --------------------------------------------------------------------------- */

static void guv_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct guv *u = h->data;

    (void)suggested;
    buf->base = (char *)u->rbuf;
    buf->len = sizeof(u->rbuf);
}

static void guv_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                         const struct sockaddr *addr, unsigned flags)
{
    struct guv *u = h->data;
    struct gossip_addr from;

    if (nread <= 0 || addr == NULL || u->closing || !guv_from_sockaddr(addr, &from))
        return;
    if (flags & UV_UDP_PARTIAL) {
        gossip_drop(u->g, GOSSIP_DROP_OVERSIZE);
        return;
    }
    gossip_receive(u->g, &from, (const uint8_t *)buf->base, (size_t)nread, false);
    guv_rearm(u);
}

static int guv_send_packet(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    struct guv *u = ctx;
    struct sockaddr_storage ss;
    uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
    int rc;

    if (u->closing)
        return GOSSIP_EIO;
    guv_to_sockaddr(to, &ss);
    /* gossip is best effort: if the socket buffer is full the packet is dropped and counted
     * rather than queued behind newer news */
    rc = uv_udp_try_send(&u->udp, &b, 1, (const struct sockaddr *)&ss);
    return rc == (int)len ? 0 : GOSSIP_EIO;
}

/* ---- stream connections ------------------------------------------------------------------ */

static void guv_conn_closed(uv_handle_t *h)
{
    struct guv_conn *c = h->data;
    struct guv *u = c->u;

    if (--c->closing > 0)
        return;
    free(c->buf);
    free(c);
    u->conn_structs--;
    if (u->closing && u->conn_structs == 0 && u->open_handles == 0) {
        gossip_free(u->g);
        free(u);
    }
}

static void guv_conn_close(struct guv_conn *c)
{
    struct guv *u = c->u;

    if (c->closing)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        u->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->outbound)
        u->nout--;
    else
        u->nin--;
    c->closing = 2;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, guv_conn_closed);
    uv_close((uv_handle_t *)&c->tcp, guv_conn_closed);
}

static void guv_conn_timeout(uv_timer_t *t)
{
    guv_conn_close(t->data);
}

static struct guv_conn *guv_conn_new(struct guv *u, bool outbound)
{
    struct guv_conn *c;

    if ((outbound ? u->nout : u->nin) >= (outbound ? GUV_OUT_MAX : GUV_IN_MAX)) {
        gossip_drop(u->g, GOSSIP_DROP_TABLE_FULL);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->u = u;
    u->conn_structs++;
    c->outbound = outbound;
    uv_tcp_init(u->loop, &c->tcp);
    uv_timer_init(u->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->next = u->conns;
    if (u->conns)
        u->conns->prev = c;
    u->conns = c;
    if (outbound)
        u->nout++;
    else
        u->nin++;
    c->deadline = uv_now(u->loop) + GUV_IO_TIMEOUT_MS;
    uv_timer_start(&c->timer, guv_conn_timeout, outbound ? GUV_IO_TIMEOUT_MS : GUV_IDLE_MS, 0);
    return c;
}

static void guv_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void guv_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* Our frame is out. An answer we wrote: done. A message we sent: wait for at most one frame
 * back (the peer's answer) or its close, within the connection's deadline. */
static void guv_write_done(uv_write_t *req, int status)
{
    struct guv_conn *c = req->data;

    if (status != 0 || !c->outbound) {
        guv_conn_close(c);
        return;
    }
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = c->want = 0;
    if (uv_read_start((uv_stream_t *)&c->tcp, guv_conn_alloc, guv_conn_read) != 0)
        guv_conn_close(c);
}

static void guv_connected(uv_connect_t *req, int status)
{
    struct guv_conn *c = req->data;
    uv_buf_t b;

    if (status != 0) {
        if (status != UV_ECANCELED)
            gossip_drop(c->u->g, GOSSIP_DROP_SEND_FAILED);
        guv_conn_close(c);
        return;
    }
    b = uv_buf_init((char *)c->buf, (unsigned)c->len);
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, guv_write_done) != 0)
        guv_conn_close(c);
}

/* Frames a sealed message with our gossip address into a new buffer of *outlen bytes, or
 * returns NULL. */
static uint8_t *guv_frame(const struct guv *u, const uint8_t *buf, size_t len, size_t *outlen)
{
    size_t alen = u->advertise.family == 6 ? 18 : 6;
    size_t total = 1 + alen + len;
    uint8_t *p = malloc(4 + total);

    if (p == NULL)
        return NULL;
    p[0] = (uint8_t)(total >> 24);
    p[1] = (uint8_t)(total >> 16);
    p[2] = (uint8_t)(total >> 8);
    p[3] = (uint8_t)total;
    p[4] = (uint8_t)alen;
    memcpy(p + 5, u->advertise.ip, alen - 2);
    p[5 + alen - 2] = (uint8_t)(u->advertise.port >> 8);
    p[5 + alen - 1] = (uint8_t)(u->advertise.port & 0xff);
    memcpy(p + 5 + alen, buf, len);
    *outlen = 4 + total;
    return p;
}

/* Writes an answer back on the inbound connection being handled; it closes once written. */
static int guv_answer(struct guv_conn *c, const uint8_t *buf, size_t len)
{
    uv_buf_t b;

    free(c->buf);
    c->buf = guv_frame(c->u, buf, len, &c->len);
    c->cap = c->len;
    if (c->buf == NULL)
        return GOSSIP_ENOMEM;
    c->replied = true;
    /* a large answer (a push-pull reply) gets the whole I/O deadline, not the idle one */
    uv_timer_start(&c->timer, guv_conn_timeout, GUV_IO_TIMEOUT_MS, 0);
    b = uv_buf_init((char *)c->buf, (unsigned)c->len);
    c->write.data = c;
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &b, 1, guv_write_done) != 0) {
        c->replied = false;
        return GOSSIP_EIO;
    }
    return 0;
}

static int guv_send_stream(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    struct guv *u = ctx;
    struct sockaddr_storage ss;
    struct guv_conn *c;

    if (u->closing || len > GOSSIP_STREAM_MAX)
        return GOSSIP_EIO;
    c = u->answering;
    if (c != NULL && !c->replied && gossip_addr_equal(&c->sender, to))
        return guv_answer(c, buf, len);
    c = guv_conn_new(u, true);
    if (c == NULL)
        return GOSSIP_EIO;
    c->peer = *to;
    c->buf = guv_frame(u, buf, len, &c->len);
    if (c->buf == NULL) {
        guv_conn_close(c);
        return GOSSIP_ENOMEM;
    }
    /* leave from the address we listen on: the receiver answers the connection's source IP */
    if (!guv_unspecified(&u->bound)) {
        struct gossip_addr src = u->bound;
        src.port = 0;
        guv_to_sockaddr(&src, &ss);
        uv_tcp_bind(&c->tcp, (const struct sockaddr *)&ss, 0);
    }
    guv_to_sockaddr(to, &ss);
    c->connect.data = c;
    if (uv_tcp_connect(&c->connect, &c->tcp, (const struct sockaddr *)&ss, guv_connected) != 0) {
        guv_conn_close(c);
        return GOSSIP_EIO;
    }
    return 0;
}

static void guv_conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct guv_conn *c = h->data;
    size_t target = c->want ? c->want : 4;

    (void)suggested;
    /* grow with what actually arrives, not with what the header claims: a peer announcing
     * 32 MiB and sending nothing costs us 64 KiB */
    if (c->cap < target) {
        size_t ncap = c->cap * 2 > 65536 ? c->cap * 2 : 65536;
        uint8_t *nb;
        if (c->cap == 0)
            ncap = 4;
        if (ncap > target)
            ncap = target;
        nb = realloc(c->buf, ncap);
        if (nb != NULL) {
            c->buf = nb;
            c->cap = ncap;
        }
    }
    buf->base = c->buf ? (char *)c->buf + c->len : NULL;
    buf->len = c->buf && c->cap > c->len ? c->cap - c->len : 0;
}

static void guv_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct guv_conn *c = s->data;
    struct guv *u = c->u;
    struct gossip_addr from;
    const uint8_t *p;
    size_t alen;

    (void)buf;
    if (nread < 0) {
        guv_conn_close(c);
        return;
    }
    if (nread > 0) {
        /* progress restarts the idle clock, never past the whole-frame deadline */
        uint64_t now = uv_now(u->loop);
        uint64_t left = c->deadline > now ? c->deadline - now : 0;
        uv_timer_start(&c->timer, guv_conn_timeout, left < GUV_IDLE_MS ? left : GUV_IDLE_MS, 0);
    }
    c->len += (size_t)nread;
    if (c->want == 0 && c->len == 4) {
        size_t total = ((size_t)c->buf[0] << 24) | ((size_t)c->buf[1] << 16) |
                       ((size_t)c->buf[2] << 8) | c->buf[3];
        if (total < 7 || total > 1 + 18 + (size_t)GOSSIP_STREAM_MAX) {
            gossip_drop(u->g, GOSSIP_DROP_OVERSIZE);
            guv_conn_close(c);
            return;
        }
        c->want = 4 + total;
    }
    if (c->want == 0 || c->len < c->want)
        return;
    /* one whole frame: address, then the sealed message */
    p = c->buf + 4;
    alen = p[0];
    memset(&from, 0, sizeof(from));
    if ((alen != 6 && alen != 18) || c->want < 4 + 1 + alen) {
        gossip_drop(u->g, GOSSIP_DROP_MALFORMED);
        guv_conn_close(c);
        return;
    }
    uv_read_stop(s);
    if (c->outbound) {
        /* the answer to what we sent: it comes from where we connected */
        gossip_receive(u->g, &c->peer, p + 1 + alen, c->want - 5 - alen, true);
        guv_conn_close(c);
        guv_rearm(u);
        return;
    }
    /* the declared address is not authenticated: answer the IP the connection came from,
     * at the declared gossip port */
    from = c->peer;
    from.port = (uint16_t)((p[1 + alen - 2] << 8) | p[1 + alen - 1]);
    c->sender = from;
    u->answering = c;
    gossip_receive(u->g, &from, p + 1 + alen, c->want - 5 - alen, true);
    u->answering = NULL;
    if (!c->replied)
        guv_conn_close(c);
    guv_rearm(u);
}

/* Same peer for the per-peer cap: one IPv4 address, or one IPv6 /64 (a host gets a whole /64
 * and picks any address in it). */
static bool guv_same_peer(const struct gossip_addr *a, const struct gossip_addr *b)
{
    return a->family == b->family && memcmp(a->ip, b->ip, a->family == 4 ? 4 : 8) == 0;
}

static size_t guv_peer_conns(const struct guv *u, const struct gossip_addr *peer)
{
    size_t n = 0;

    for (const struct guv_conn *c = u->conns; c != NULL; c = c->next)
        if (!c->outbound && guv_same_peer(&c->peer, peer))
            n++;
    return n;
}

static void guv_free_handle(uv_handle_t *h)
{
    free(h);
}

/* Over the inbound cap: accept into a handle of its own and close it, so the listener stops
 * signalling. It lives on the heap because uv_close finishes on a later loop iteration. */
static void guv_refuse(struct guv *u, uv_stream_t *server)
{
    uv_tcp_t *tmp = malloc(sizeof(*tmp));

    if (tmp == NULL)
        return;
    uv_tcp_init(u->loop, tmp);
    /* a reset frees the socket at once instead of leaving it in TIME_WAIT */
    if (uv_accept(server, (uv_stream_t *)tmp) != 0 || uv_tcp_close_reset(tmp, guv_free_handle) != 0)
        uv_close((uv_handle_t *)tmp, guv_free_handle);
}

static void guv_accept(uv_stream_t *server, int status)
{
    struct guv *u = server->data;
    struct guv_conn *c;
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);

    if (status != 0 || u->closing)
        return;
    c = guv_conn_new(u, false);
    if (c == NULL) {
        guv_refuse(u, server);
        return;
    }
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) != 0 ||
        !guv_from_sockaddr((struct sockaddr *)&ss, &c->peer)) {
        guv_conn_close(c);
        return;
    }
    /* counts itself: it is already in the list */
    if (guv_peer_conns(u, &c->peer) > GUV_IN_PER_PEER) {
        gossip_drop(u->g, GOSSIP_DROP_TABLE_FULL);
        guv_conn_close(c);
        return;
    }
    if (uv_read_start((uv_stream_t *)&c->tcp, guv_conn_alloc, guv_conn_read) != 0)
        guv_conn_close(c);
}

/* Binds a TCP and a UDP socket to the same address and port. With port 0 the kernel picks
 * the TCP port and UDP takes the same; if that one is busy for UDP, another is tried. Plain
 * sockets rather than uv handles so a failed attempt is undone synchronously. Returns 0 or
 * a negative errno. */
static int guv_bind_pair(const struct gossip_addr *want, int *tfd, int *ufd,
                         struct gossip_addr *got)
{
    int family = want->family == 6 ? AF_INET6 : AF_INET;
    int attempts = want->port == 0 ? 32 : 1;
    int rc = -EADDRINUSE;

    for (int a = 0; a < attempts; a++) {
        struct sockaddr_storage ss, bound;
        socklen_t slen =
            family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        socklen_t blen = sizeof(bound);
        int one = 1;

        *tfd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        *ufd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (*tfd < 0 || *ufd < 0) {
            rc = -errno;
            goto next;
        }
        /* TCP only: lets a restarted member reuse its port while old connections linger in
         * TIME_WAIT; a live listener on the port still makes bind fail */
        setsockopt(*tfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        guv_to_sockaddr(want, &ss);
        if (bind(*tfd, (struct sockaddr *)&ss, slen) != 0 ||
            getsockname(*tfd, (struct sockaddr *)&bound, &blen) != 0) {
            rc = -errno;
            goto next;
        }
        guv_from_sockaddr((struct sockaddr *)&bound, got);
        guv_to_sockaddr(got, &ss);
        if (bind(*ufd, (struct sockaddr *)&ss, slen) != 0) {
            rc = -errno;
            goto next;
        }
        return 0;
    next:
        if (*tfd >= 0)
            close(*tfd);
        if (*ufd >= 0)
            close(*ufd);
        *tfd = *ufd = -1;
        if (rc != -EADDRINUSE)
            break;
    }
    return rc;
}

/* ---- lifecycle --------------------------------------------------------------------------- */

static const struct gossip_transport_ops guv_ops = {guv_send_packet, guv_send_stream};

static void guv_handle_closed(uv_handle_t *h)
{
    struct guv *u = h->data;

    if (--u->open_handles == 0 && u->conn_structs == 0 && u->closing) {
        gossip_free(u->g);
        free(u);
    }
}

struct gossip *gossip_uv_open(uv_loop_t *loop, const struct gossip_config *cfg,
                              const struct gossip_callbacks *cb, char *err, size_t errlen)
{
    struct guv *u = calloc(1, sizeof(*u));
    struct gossip_config c = *cfg;
    int tfd = -1, ufd = -1;
    char text[64];
    int rc;
    struct gossip_transport tr;
    struct gossip_clock clock;

    if (u == NULL) {
        snprintf(err, errlen, "gossip: out of memory");
        return NULL;
    }
    u->loop = loop;
    u->bound = cfg->bind;
    if (u->bound.family == 0) {
        snprintf(err, errlen, "gossip: no bind address");
        free(u);
        return NULL;
    }
    uv_udp_init(loop, &u->udp);
    uv_tcp_init(loop, &u->listener);
    uv_timer_init(loop, &u->timer);
    u->udp.data = u->listener.data = u->timer.data = u;
    u->open_handles = 3;
    rc = guv_bind_pair(&cfg->bind, &tfd, &ufd, &u->bound);
    if (rc == 0) {
        rc = uv_tcp_open(&u->listener, tfd);
        if (rc == 0)
            tfd = -1;
        if (rc == 0 && (rc = uv_udp_open(&u->udp, ufd)) == 0)
            ufd = -1;
        if (rc == 0)
            rc = uv_listen((uv_stream_t *)&u->listener, 128, guv_accept);
    }
    if (tfd >= 0)
        close(tfd);
    if (ufd >= 0)
        close(ufd);
    if (rc != 0) {
        snprintf(err, errlen, "bind %s: %s", gossip_addr_format(&cfg->bind, text, sizeof(text)),
                 uv_strerror(rc));
        goto fail;
    }
    uv_udp_set_ttl(&u->udp, 64);
    c.bind = u->bound;
    if (c.advertise.family == 0) {
        if (guv_unspecified(&u->bound)) {
            snprintf(err, errlen, "gossip: --advertise is required when binding to %s",
                     gossip_addr_format(&u->bound, text, sizeof(text)));
            goto fail;
        }
        c.advertise = u->bound;
    }
    if (c.advertise.port == 0)
        c.advertise.port = u->bound.port;
    u->advertise = c.advertise;
    tr.ops = &guv_ops;
    tr.ctx = u;
    clock.now_ms = guv_now;
    clock.wall_ms = guv_wall;
    clock.wake = guv_wake;
    clock.ctx = u;
    u->g = gossip_new(&c, cb, &tr, &clock, err, errlen);
    if (u->g == NULL)
        goto fail;
    u->g->uv = u;
    if (uv_udp_recv_start(&u->udp, guv_udp_alloc, guv_udp_recv) != 0) {
        snprintf(err, errlen, "gossip: cannot receive on UDP");
        goto fail;
    }
    guv_rearm(u);
    return u->g;
fail:
    if (u->g != NULL) {
        gossip_free(u->g);
        u->g = NULL;
    }
    /* handles must be closed through the loop; the struct goes when the last one is */
    u->closing = true;
    u->g = NULL;
    uv_close((uv_handle_t *)&u->udp, guv_handle_closed);
    uv_close((uv_handle_t *)&u->listener, guv_handle_closed);
    uv_close((uv_handle_t *)&u->timer, guv_handle_closed);
    return NULL;
}

void gossip_uv_close(struct gossip *g)
{
    struct guv *u;

    if (g == NULL || g->uv == NULL)
        return;
    u = g->uv;
    if (u->closing)
        return;
    u->closing = true;
    uv_timer_stop(&u->timer);
    uv_udp_recv_stop(&u->udp);
    while (u->conns)
        guv_conn_close(u->conns);
    uv_close((uv_handle_t *)&u->udp, guv_handle_closed);
    uv_close((uv_handle_t *)&u->listener, guv_handle_closed);
    uv_close((uv_handle_t *)&u->timer, guv_handle_closed);
}

int gossip_uv_bound_addr(const struct gossip *g, struct gossip_addr *out)
{
    const struct guv *u = g->uv;

    if (u == NULL)
        return GOSSIP_EINVAL;
    *out = u->bound;
    return 0;
}
