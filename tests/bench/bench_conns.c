/*
 * bench_conns.c - many connections and tunnel throughput through a proxy, for tests/bench/
 * report.sh (issue 14). One epoll loop, no library; three modes:
 *
 *   bench_conns hold --connect IP:PORT --host H --path P --conns N [--upgrade]
 *       opens N connections, sends one request on each (GET P, keep-alive; with --upgrade a
 *       WebSocket-style Upgrade), reads the answer (the whole response, or the 101 head), then
 *       prints "ready N" and holds every connection open until SIGTERM.
 *   bench_conns tunnel-server --listen IP:PORT [--listen IP:PORT]... (up to 4)
 *       a backend that answers any request with 101 Switching Protocols, then by path:
 *       /hold keeps the tunnel open, /sink/B reads B bytes and answers "ok\n",
 *       /source/B writes B bytes. A request without Upgrade gets its body (Content-Length)
 *       read and dropped, then a 12-byte 200 answer (the upload sink).
 *   bench_conns tunnel --connect IP:PORT --host H --path /sink/B|/source/B
 *       one Upgrade through the proxy, then sends B bytes and waits for "ok" (sink) or reads
 *       B bytes (source); prints "bytes SECONDS MB/s".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MAX 4096
#define CHUNK (256 * 1024)

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_addr(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_conns: %s: %s\n", what, strerror(errno));
    exit(1);
}

static char *request(const char *host, const char *path, bool upgrade, size_t *len)
{
    static char buf[1024];
    int n = snprintf(buf, sizeof(buf),
                     upgrade ? "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
                               "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
                             : "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n",
                     path, host);
    *len = (size_t)n;
    return buf;
}

/* Bytes of a complete response in buf[len] (head + Content-Length body), 0 if incomplete. */
static size_t response_len(const char *buf, size_t len, bool head_only)
{
    const char *end = memmem(buf, len, "\r\n\r\n", 4);
    if (end == NULL)
        return 0;
    size_t head = (size_t)(end - buf) + 4;
    if (head_only)
        return head;
    const char *cl = memmem(buf, head, "ontent-Length:", 14);
    if (cl == NULL)
        cl = memmem(buf, head, "ontent-length:", 14);
    size_t body = cl ? strtoul(cl + 14, NULL, 10) : 0;
    return len >= head + body ? head + body : 0;
}

/* ---- hold ------------------------------------------------------------------------------ */

struct hconn {
    int fd;
    size_t got;
    bool ready;
    char buf[512];
};

static int hold(const struct sockaddr_in *sa, const char *host, const char *path, long n,
                bool upgrade)
{
    size_t reqlen;
    const char *req = request(host, path, upgrade, &reqlen);
    struct hconn *c = calloc((size_t)n, sizeof(*c));
    int ep = epoll_create1(0);
    long ready = 0, opened = 0, inflight = 0;
    if (c == NULL || ep < 0)
        die("setup");
    double deadline = now_s() + 120;
    while (ready < n && !stop) {
        /* at most 256 connections being set up at once: no SYN flood, no accept queue drops */
        while (opened < n && inflight < 256) {
            struct hconn *h = &c[opened];
            h->fd = socket(AF_INET, SOCK_STREAM, 0);
            if (h->fd < 0)
                die("socket");
            if (connect(h->fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0)
                die("connect");
            if (write(h->fd, req, reqlen) != (ssize_t)reqlen)
                die("write");
            fcntl(h->fd, F_SETFL, O_NONBLOCK);
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = h};
            epoll_ctl(ep, EPOLL_CTL_ADD, h->fd, &ev);
            opened++;
            inflight++;
        }
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            struct hconn *h = evs[i].data.ptr;
            ssize_t r = read(h->fd, h->buf + h->got, sizeof(h->buf) - 1 - h->got);
            if (r <= 0) {
                fprintf(stderr, "bench_conns: connection %ld closed before its answer\n",
                        (long)(h - c));
                return 1;
            }
            h->got += (size_t)r;
            if (!h->ready && response_len(h->buf, h->got, upgrade)) {
                if (memcmp(h->buf, upgrade ? "HTTP/1.1 101" : "HTTP/1.1 200", 12) != 0) {
                    h->buf[h->got] = 0;
                    fprintf(stderr, "bench_conns: unexpected answer: %.60s\n", h->buf);
                    return 1;
                }
                h->ready = true;
                epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                ready++;
                inflight--;
            }
        }
        if (now_s() > deadline) {
            fprintf(stderr, "bench_conns: only %ld of %ld ready after 120 s\n", ready, n);
            return 1;
        }
    }
    printf("ready %ld\n", ready);
    fflush(stdout);
    /* hold until told to stop (SIGTERM or SIGINT); stdin is not watched: a background job of
     * a script has /dev/null there */
    while (!stop)
        pause();
    return 0;
}

/* ---- tunnel server ---------------------------------------------------------------------- */

enum smode { S_HEAD, S_BODY, S_HOLD, S_SINK, S_SOURCE, S_DONE };

struct sconn {
    int fd;
    enum smode mode;
    size_t got;
    uint64_t left; /* bytes to sink or to source */
    char head[HEAD_MAX];
};

static char zeros[CHUNK];
static const char ok200[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nhello world\n";

static void sconn_close(int ep, struct sconn *s)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, NULL);
    close(s->fd);
    free(s);
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EAGAIN) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 1000);
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void sconn_head(int ep, struct sconn *s)
{
    static const char ok101[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                                "Upgrade: websocket\r\n"
                                "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    char *end = memmem(s->head, s->got, "\r\n\r\n", 4);
    if (end == NULL) {
        if (s->got == sizeof(s->head))
            sconn_close(ep, s);
        return;
    }
    size_t headlen = (size_t)(end - s->head) + 4;
    char path[256] = "";
    sscanf(s->head, "%*s %255s", path);
    if (memmem(s->head, headlen, "pgrade", 6) == NULL) {
        /* a plain request: its body (Content-Length) is read and dropped, then 200 */
        size_t body;
        const char *cl = memmem(s->head, headlen, "ontent-Length:", 14);
        if (cl == NULL)
            cl = memmem(s->head, headlen, "ontent-length:", 14);
        body = cl ? strtoull(cl + 14, NULL, 10) : 0;
        size_t extra = s->got - headlen;
        s->got = 0;
        if (body > extra) {
            s->mode = S_BODY;
            s->left = body - extra;
            return;
        }
        write_all(s->fd, ok200, sizeof(ok200) - 1);
        return;
    }
    write_all(s->fd, ok101, sizeof(ok101) - 1);
    size_t extra = s->got - headlen;
    if (strncmp(path, "/sink/", 6) == 0) {
        s->mode = S_SINK;
        s->left = strtoull(path + 6, NULL, 10);
        s->left = s->left > extra ? s->left - extra : 0;
        if (s->left == 0) {
            write_all(s->fd, "ok\n", 3);
            s->mode = S_DONE;
        }
    } else if (strncmp(path, "/source/", 8) == 0) {
        s->mode = S_SOURCE;
        s->left = strtoull(path + 8, NULL, 10);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = s};
        epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
    } else {
        s->mode = S_HOLD;
    }
}

#define LISTEN_MAX 4

static int tunnel_server(const struct sockaddr_in *sa, int nl)
{
    static int lfds[LISTEN_MAX];
    int ep = epoll_create1(0), one = 1;
    for (int l = 0; l < nl; l++) {
        lfds[l] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        setsockopt(lfds[l], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(lfds[l], (const struct sockaddr *)&sa[l], sizeof(sa[l])) != 0 ||
            listen(lfds[l], 4096) != 0)
            die("listen");
        struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &lfds[l]};
        epoll_ctl(ep, EPOLL_CTL_ADD, lfds[l], &lev);
    }
    static char buf[CHUNK];
    while (!stop) {
        struct epoll_event evs[256];
        int k = epoll_wait(ep, evs, 256, 1000);
        for (int i = 0; i < k; i++) {
            struct sconn *s = evs[i].data.ptr;
            if ((int *)evs[i].data.ptr >= lfds && (int *)evs[i].data.ptr < lfds + nl) {
                int fd, lfd = *(int *)evs[i].data.ptr;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    struct sconn *n = calloc(1, sizeof(*n));
                    if (n == NULL)
                        die("calloc");
                    n->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = n};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if ((evs[i].events & EPOLLOUT) && s->mode == S_SOURCE) {
                size_t n = s->left < CHUNK ? (size_t)s->left : CHUNK;
                ssize_t w = write(s->fd, zeros, n);
                if (w > 0)
                    s->left -= (uint64_t)w;
                if (s->left == 0) {
                    s->mode = S_DONE;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
                    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &ev);
                }
                if (w < 0 && errno != EAGAIN) {
                    sconn_close(ep, s);
                    continue;
                }
            }
            if (!(evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                continue;
            ssize_t r;
            if (s->mode == S_HEAD) {
                r = read(s->fd, s->head + s->got, sizeof(s->head) - s->got);
                if (r > 0) {
                    s->got += (size_t)r;
                    sconn_head(ep, s);
                    continue;
                }
            } else {
                r = read(s->fd, buf, sizeof(buf));
                if (r > 0 && s->mode == S_BODY) {
                    s->left = s->left > (uint64_t)r ? s->left - (uint64_t)r : 0;
                    if (s->left == 0) {
                        write_all(s->fd, ok200, sizeof(ok200) - 1);
                        s->mode = S_HEAD;
                    }
                }
                if (r > 0 && s->mode == S_SINK) {
                    s->left = s->left > (uint64_t)r ? s->left - (uint64_t)r : 0;
                    if (s->left == 0) {
                        write_all(s->fd, "ok\n", 3);
                        s->mode = S_DONE;
                    }
                }
                if (r > 0)
                    continue;
            }
            if (r == 0 || (r < 0 && errno != EAGAIN))
                sconn_close(ep, s);
        }
    }
    return 0;
}

/* ---- one tunnel's throughput ----------------------------------------------------------- */

static int tunnel(const struct sockaddr_in *sa, const char *host, const char *path)
{
    size_t reqlen, got = 0;
    const char *req = request(host, path, true, &reqlen);
    static char buf[CHUNK];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0)
        die("connect");
    double t0 = now_s();
    if (write_all(fd, req, reqlen) != 0)
        die("write");
    size_t head = 0;
    while (head == 0) {
        ssize_t r = read(fd, buf + got, HEAD_MAX - got);
        if (r <= 0)
            die("read head");
        got += (size_t)r;
        head = response_len(buf, got, true);
        if (head == 0 && got == HEAD_MAX) {
            fprintf(stderr, "bench_conns: answer head too long\n");
            return 1;
        }
    }
    if (memcmp(buf, "HTTP/1.1 101", 12) != 0) {
        fprintf(stderr, "bench_conns: no 101: %.60s\n", buf);
        return 1;
    }
    uint64_t total;
    if (strncmp(path, "/sink/", 6) == 0) {
        total = strtoull(path + 6, NULL, 10);
        for (uint64_t left = total; left;) {
            size_t n = left < CHUNK ? (size_t)left : CHUNK;
            if (write_all(fd, zeros, n) != 0)
                die("write body");
            left -= n;
        }
        char ok[4] = "";
        size_t o = 0;
        while (o < 3) {
            ssize_t r = read(fd, ok + o, 3 - o);
            if (r <= 0)
                die("read ok");
            o += (size_t)r;
        }
    } else {
        total = strtoull(path + 8, NULL, 10);
        uint64_t seen = got - head;
        while (seen < total) {
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0)
                die("read body");
            seen += (uint64_t)r;
        }
    }
    double t = now_s() - t0;
    printf("%llu %.3f %.1f\n", (unsigned long long)total, t, (double)total / t / 1e6);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *listen_on[LISTEN_MAX], *host = "bench.localhost", *path = "/";
    long conns = 1;
    int nlisten = 0;
    bool upgrade = false;
    struct sockaddr_in sa;
    if (argc < 2) {
        fprintf(stderr, "usage: bench_conns hold|tunnel-server|tunnel [options]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--upgrade") == 0)
            upgrade = true;
        else if (i + 1 >= argc)
            break;
        else if (strcmp(argv[i], "--connect") == 0)
            connect_to = argv[++i];
        else if (strcmp(argv[i], "--listen") == 0)
            listen_on[nlisten < LISTEN_MAX ? nlisten++ : LISTEN_MAX - 1] = argv[++i];
        else if (strcmp(argv[i], "--host") == 0)
            host = argv[++i];
        else if (strcmp(argv[i], "--path") == 0)
            path = argv[++i];
        else if (strcmp(argv[i], "--conns") == 0)
            conns = atol(argv[++i]);
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    if (strcmp(argv[1], "tunnel-server") == 0) {
        struct sockaddr_in lsa[LISTEN_MAX];
        for (int l = 0; l < nlisten; l++)
            if (parse_addr(listen_on[l], &lsa[l]) != 0)
                nlisten = 0;
        if (nlisten == 0) {
            fprintf(stderr, "bench_conns: give --listen IP:PORT (repeatable, up to 4)\n");
            return 2;
        }
        return tunnel_server(lsa, nlisten);
    }
    if (connect_to == NULL || parse_addr(connect_to, &sa) != 0) {
        fprintf(stderr, "bench_conns: give --connect IP:PORT (or --listen for the server)\n");
        return 2;
    }
    if (strcmp(argv[1], "hold") == 0)
        return hold(&sa, host, path, conns, upgrade);
    if (strcmp(argv[1], "tunnel") == 0)
        return tunnel(&sa, host, path);
    fprintf(stderr, "bench_conns: unknown mode %s\n", argv[1]);
    return 2;
}
