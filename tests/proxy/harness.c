/*
 * harness.c - see harness.h. Backends are deliberately simple blocking servers so they
 * cannot share a bug with the proxy's event-driven code.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define TB_CONNS_MAX 256

struct tb_conn {
    struct tb_server *srv;
    int fd;
    pthread_t thread;
    bool used;
};

struct tb_server {
    int id;
    int lfd;
    uint16_t port;
    pthread_t accept_thread;
    pthread_mutex_t lock;
    struct tb_conn conns[TB_CONNS_MAX];
    atomic_bool dead;
    atomic_uint_fast64_t requests;
    atomic_uint_fast64_t accepts;
    atomic_uint_fast64_t ended; /* connections whose thread is done with them */
    unsigned answers_per_conn;  /* tb_set_conn_life() */
    unsigned close_after_ms;
    unsigned idle_close_ms, idle_late_ms; /* tb_set_idle_close() */
    atomic_bool reset_uploads;            /* tb_set_reset_uploads() */
    bool hold;     /* under lock: leave connections in the kernel's accept queue */
    int filler_fd; /* tb_hold_connects(): our own connection filling that queue */
    bool joined;
};

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR)
                continue;
            return;
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until "\r\n\r\n"; returns head length or -1. Bytes after the head stay in buf. */
static ssize_t read_head(int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        buf[*have] = '\0';
        char *e = strstr(buf, "\r\n\r\n");
        if (e)
            return e + 4 - buf;
        if (*have + 1 >= cap)
            return -1;
        ssize_t n = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (n <= 0)
            return -1;
        *have += (size_t)n;
    }
}

static const char *find_field(const char *head, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(head, "\r\n"); l && l[2] != '\r'; l = strstr(l + 2, "\r\n")) {
        const char *f = l + 2;
        if (strncasecmp(f, name, nl) == 0 && f[nl] == ':') {
            const char *v = f + nl + 1;
            while (*v == ' ')
                v++;
            const char *end = strstr(v, "\r\n");
            size_t n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Consumes a body: fixed length or chunked, hashing the decoded bytes into md when given.
 * Returns body bytes or -1 (also when a chunk's data is not followed by CRLF). */
static long long read_body(int fd, char *buf, size_t cap, size_t *have, long long cl, bool chunked,
                           EVP_MD_CTX *md)
{
    long long total = 0;
    if (!chunked) {
        while (total < cl) {
            if (*have == 0) {
                ssize_t n = recv(fd, buf, cap, 0);
                if (n <= 0)
                    return -1;
                *have = (size_t)n;
            }
            size_t take = (long long)*have < cl - total ? *have : (size_t)(cl - total);
            if (md)
                EVP_DigestUpdate(md, buf, take);
            memmove(buf, buf + take, *have - take);
            *have -= take;
            total += (long long)take;
        }
        return total;
    }
    for (;;) {
        /* chunk size line */
        char *e;
        for (;;) {
            buf[*have] = '\0';
            if ((e = strstr(buf, "\r\n")) != NULL)
                break;
            ssize_t n = recv(fd, buf + *have, cap - 1 - *have, 0);
            if (n <= 0)
                return -1;
            *have += (size_t)n;
        }
        long long sz = strtoll(buf, NULL, 16);
        size_t line = (size_t)(e + 2 - buf);
        memmove(buf, buf + line, *have - line);
        *have -= line;
        if (sz == 0) {
            /* trailers end with an empty line */
            for (;;) {
                buf[*have] = '\0';
                if ((e = strstr(buf, "\r\n")) != NULL && e == buf) {
                    memmove(buf, buf + 2, *have - 2);
                    *have -= 2;
                    return total;
                }
                if (e) {
                    size_t l = (size_t)(e + 2 - buf);
                    memmove(buf, buf + l, *have - l);
                    *have -= l;
                    continue;
                }
                ssize_t n = recv(fd, buf + *have, cap - 1 - *have, 0);
                if (n <= 0)
                    return -1;
                *have += (size_t)n;
            }
        }
        if (read_body(fd, buf, cap, have, sz, false, md) < 0)
            return -1;
        while (*have < 2) {
            ssize_t n = recv(fd, buf + *have, cap - 1 - *have, 0);
            if (n <= 0)
                return -1;
            *have += (size_t)n;
        }
        if (buf[0] != '\r' || buf[1] != '\n')
            return -1;
        memmove(buf, buf + 2, *have - 2);
        *have -= 2;
        total += sz;
    }
}

/* Resets the connection (RST, no answer), as a backend process dying on it would. */
static void tb_conn_reset(struct tb_conn *c)
{
    struct linger lg = {1, 0};
    pthread_mutex_lock(&c->srv->lock);
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&c->srv->lock);
}

uint64_t th_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* tb_set_idle_close(): waits for the next request at most idle_close_ms; true when it came
 * early enough to be served, false when the connection is to close (unread bytes and all). */
static bool tb_next_before_deadline(struct tb_server *s, int fd)
{
    uint64_t deadline = th_now_ms() + s->idle_close_ms;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, (int)s->idle_close_ms) <= 0)
        return false;
    return th_now_ms() + s->idle_late_ms < deadline;
}

static void *tb_conn_main(void *arg)
{
    struct tb_conn *c = arg;
    struct tb_server *s = c->srv;
    static const size_t cap = 65536;
    char *buf = malloc(cap);
    size_t have = 0;
    unsigned nreq = 0; /* requests read on this connection */
    for (;;) {
        if (nreq > 0 && s->close_after_ms) {
            /* an idle timeout racing the next request: reads nothing more, then closes */
            usleep(s->close_after_ms * 1000u);
            break;
        }
        if (nreq > 0 && s->idle_close_ms && have == 0 && !tb_next_before_deadline(s, c->fd))
            break;
        ssize_t hl = read_head(c->fd, buf, cap, &have);
        if (hl < 0)
            break;
        atomic_fetch_add(&s->requests, 1);
        nreq++;
        char head[8192];
        size_t n = (size_t)hl < sizeof(head) - 1 ? (size_t)hl : sizeof(head) - 1;
        memcpy(head, buf, n);
        head[n] = '\0';
        memmove(buf, buf + hl, have - (size_t)hl);
        have -= (size_t)hl;
        char v[256], path[1024] = "";
        sscanf(head, "%*s %1023s", path);
        long long cl = find_field(head, "content-length", v, sizeof(v)) ? atoll(v) : 0;
        bool chunked = find_field(head, "transfer-encoding", v, sizeof(v)) != NULL;
        if (strcmp(path, "/reset") == 0) {
            tb_conn_reset(c); /* before reading any body */
            break;
        }
        EVP_MD_CTX *md = strcmp(path, "/sha") == 0 ? EVP_MD_CTX_new() : NULL;
        if (md)
            EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        long long got = read_body(c->fd, buf, cap, &have, cl, chunked, md);
        if (got < 0 || (s->answers_per_conn && nreq > s->answers_per_conn)) {
            EVP_MD_CTX_free(md);
            break;
        }
        if (atomic_load(&s->reset_uploads) && strncmp(head, "GET ", 4) != 0 &&
            strncmp(head, "HEAD ", 5) != 0) {
            EVP_MD_CTX_free(md);
            tb_conn_reset(c);
            break;
        }
        char out[16384];
        if (md) {
            unsigned char d[32];
            char body[160];
            EVP_DigestFinal_ex(md, d, NULL);
            EVP_MD_CTX_free(md);
            int bl = snprintf(body, sizeof(body), "received %lld sha256=", got);
            for (int i = 0; i < 32; i++)
                bl += snprintf(body + bl, sizeof(body) - (size_t)bl, "%02x", d[i]);
            int ol = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s",
                              bl, body);
            write_all(c->fd, out, (size_t)ol);
            continue;
        }
        if (strncmp(path, "/slow?ms=", 9) == 0) {
            usleep((useconds_t)atoi(path + 9) * 1000u);
            static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow";
            write_all(c->fd, r, sizeof(r) - 1);
        } else if (strcmp(path, "/id") == 0) {
            char body[32];
            int bl = snprintf(body, sizeof(body), "backend-%d", s->id);
            int ol = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s",
                              bl, body);
            write_all(c->fd, out, (size_t)ol);
        } else if (strcmp(path, "/headers") == 0) {
            int ol = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                              strlen(head));
            write_all(c->fd, out, (size_t)ol);
            write_all(c->fd, head, strlen(head));
        } else if (strncmp(path, "/download?n=", 12) == 0) {
            long long total = atoll(path + 12);
            int ol = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n\r\n",
                              total);
            write_all(c->fd, out, (size_t)ol);
            char *chunk = malloc(65536);
            memset(chunk, 'x', 65536);
            while (total > 0 && !atomic_load(&s->dead)) {
                size_t k = total > 65536 ? 65536 : (size_t)total;
                write_all(c->fd, chunk, k);
                total -= (long long)k;
            }
            free(chunk);
        } else if (strncmp(path, "/bighead/", 9) == 0) {
            /* a response head of exactly N bytes, of short fields written without the space
             * after the colon (so a gateway rewriting it grows it by one byte per field) */
            size_t want = (size_t)atol(path + 9), bl = 0;
            char *h = malloc(want + 64);
            bl += (size_t)sprintf(h, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
            for (int k = 0; bl + 9 + 8 <= want; k++)
                bl += (size_t)sprintf(h + bl, "X%04d:y\r\n", k % 10000);
            size_t pad = want - bl - 2 - 4; /* "P:" ... "\r\n" then "\r\n" */
            memcpy(h + bl, "P:", 2);
            memset(h + bl + 2, 'p', pad);
            memcpy(h + bl + 2 + pad, "\r\n\r\nok", 6);
            write_all(c->fd, h, want + 2);
            free(h);
        } else if (strcmp(path, "/chunked") == 0) {
            static const char r[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n";
            write_all(c->fd, r, sizeof(r) - 1);
        } else if (strcmp(path, "/upload") == 0) {
            char body[64];
            int bl = snprintf(body, sizeof(body), "received %lld", got);
            int ol = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s",
                              bl, body);
            write_all(c->fd, out, (size_t)ol);
        } else if (strcmp(path, "/ws") == 0 && find_field(head, "upgrade", v, sizeof(v))) {
            static const char r[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                    "Connection: Upgrade\r\n\r\n";
            write_all(c->fd, r, sizeof(r) - 1);
            if (have)
                write_all(c->fd, buf, have);
            for (;;) {
                ssize_t k = recv(c->fd, buf, cap, 0);
                if (k <= 0)
                    break;
                write_all(c->fd, buf, (size_t)k);
            }
            break;
        } else if (strncmp(path, "/bad/", 5) == 0) {
            /* responses a backend must not get away with (502 and the connection dropped) */
            static const char *const bad[] = {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
                "HTTP/1.1 200 OK\nContent-Length: 2\n\nab",
                "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nab",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nab",
                "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nab",
                "HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nab",
                "garbage\r\n\r\n",
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\n",
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\n\r\n",
            };
            int k = atoi(path + 5);
            if (k >= 0 && k < (int)(sizeof(bad) / sizeof(bad[0])))
                write_all(c->fd, bad[k], strlen(bad[k]));
            break;
        } else if (strcmp(path, "/close") == 0) {
            static const char r[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbye";
            write_all(c->fd, r, sizeof(r) - 1);
            break;
        } else {
            static const char r[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            write_all(c->fd, r, sizeof(r) - 1);
        }
    }
    free(buf);
    pthread_mutex_lock(&s->lock);
    if (c->fd >= 0)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_add(&s->ended, 1);
    return NULL;
}

static void *tb_accept_main(void *arg)
{
    struct tb_server *s = arg;
    for (;;) {
        struct pollfd pf = {s->lfd, POLLIN, 0};
        int rc = poll(&pf, 1, 20);
        if (atomic_load(&s->dead))
            break;
        if (rc <= 0)
            continue;
        pthread_mutex_lock(&s->lock);
        if (s->hold) {
            pthread_mutex_unlock(&s->lock);
            usleep(2000);
            continue;
        }
        int fd = accept(s->lfd, NULL, NULL); /* lfd is non-blocking */
        if (fd < 0) {
            pthread_mutex_unlock(&s->lock);
            continue;
        }
        atomic_fetch_add(&s->accepts, 1);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct tb_conn *c = NULL;
        for (int i = 0; i < TB_CONNS_MAX && !c; i++)
            if (!s->conns[i].used)
                c = &s->conns[i];
        if (c) {
            c->used = true;
            c->srv = s;
            c->fd = fd;
            pthread_create(&c->thread, NULL, tb_conn_main, c);
        } else {
            close(fd);
        }
        pthread_mutex_unlock(&s->lock);
    }
    return NULL;
}

struct tb_server *tb_start(int id)
{
    struct tb_server *s = calloc(1, sizeof(*s));
    s->id = id;
    pthread_mutex_init(&s->lock, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    s->filler_fd = -1;
    if (bind(s->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(s->lfd, 128) != 0)
        abort();
    fcntl(s->lfd, F_SETFL, fcntl(s->lfd, F_GETFL) | O_NONBLOCK);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->accept_thread, NULL, tb_accept_main, s);
    return s;
}

uint16_t tb_port(const struct tb_server *s)
{
    return s->port;
}

uint64_t tb_requests(const struct tb_server *s)
{
    return atomic_load(&((struct tb_server *)s)->requests);
}

uint64_t tb_accepts(const struct tb_server *s)
{
    return atomic_load(&((struct tb_server *)s)->accepts);
}

uint64_t tb_ended(const struct tb_server *s)
{
    return atomic_load(&((struct tb_server *)s)->ended);
}

void tb_set_conn_life(struct tb_server *s, unsigned answers_per_conn, unsigned close_after_ms)
{
    s->answers_per_conn = answers_per_conn;
    s->close_after_ms = close_after_ms;
}

void tb_set_idle_close(struct tb_server *s, unsigned idle_ms, unsigned late_ms)
{
    s->idle_close_ms = idle_ms;
    s->idle_late_ms = late_ms;
}

void tb_set_reset_uploads(struct tb_server *s, bool on)
{
    atomic_store(&s->reset_uploads, on);
}

void tb_hold_connects(struct tb_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->hold = true;
    /* a backlog of 0 admits one queued connection: ours. The kernel then drops the SYNs of
     * every other connect, which completes only at a SYN retransmission (1 s) after release */
    if (listen(s->lfd, 0) != 0)
        abort();
    pthread_mutex_unlock(&s->lock);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(s->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    s->filler_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s->filler_fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        abort();
}

void tb_release_connects(struct tb_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->hold = false;
    if (listen(s->lfd, 128) != 0)
        abort();
    pthread_mutex_unlock(&s->lock);
    if (s->filler_fd >= 0)
        close(s->filler_fd);
    s->filler_fd = -1;
}

void tb_kill(struct tb_server *s)
{
    if (atomic_exchange(&s->dead, true))
        return;
    shutdown(s->lfd, SHUT_RDWR);
    pthread_mutex_lock(&s->lock);
    for (int i = 0; i < TB_CONNS_MAX; i++) {
        if (!s->conns[i].used)
            continue;
        struct linger lg = {1, 0}; /* RST, like a killed process */
        setsockopt(s->conns[i].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        shutdown(s->conns[i].fd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&s->lock);
}

void tb_free(struct tb_server *s)
{
    tb_kill(s);
    pthread_join(s->accept_thread, NULL);
    for (int i = 0; i < TB_CONNS_MAX; i++) {
        if (s->conns[i].used) {
            pthread_join(s->conns[i].thread, NULL);
            if (s->conns[i].fd >= 0)
                close(s->conns[i].fd);
        }
    }
    close(s->lfd);
    if (s->filler_fd >= 0)
        close(s->filler_fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void th_route(struct state_routes *routes, const char *host, const char *name,
              const uint16_t *ports, int n)
{
    struct state_route r;
    memset(&r, 0, sizeof(r));
    snprintf(r.host, sizeof(r.host), "%s", host);
    snprintf(r.name, sizeof(r.name), "%s", name);
    r.backend_count = (uint8_t)n;
    r.version = 1;
    for (int i = 0; i < n; i++) {
        r.backends[i].family = 4;
        r.backends[i].addr[0] = 127;
        r.backends[i].addr[3] = 1;
        r.backends[i].port = ports[i];
    }
    if (state_routes_set(routes, &r) != 0)
        abort();
}

struct proxy *th_proxy(struct state_routes *routes, struct proxy_config *cfg)
{
    struct proxy_config def;
    if (cfg == NULL) {
        proxy_config_init(&def);
        def.workers = 2;
        cfg = &def;
    }
    proxy_parse_addr("127.0.0.1:0", &cfg->http[0].addr, NULL, 0);
    cfg->http_count = 1;
    char err[PROXY_ERR_MAX];
    struct proxy *p = proxy_start(cfg, routes, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "proxy_start: %s\n", err);
        abort();
    }
    return p;
}

void th_fixture_start(struct th_fixture *f, int n, struct proxy_config *cfg)
{
    uint16_t ports[TH_BACKENDS_MAX];
    memset(f, 0, sizeof(*f));
    if (n < 1 || n > TH_BACKENDS_MAX)
        abort();
    f->routes = state_routes_new();
    for (f->n = 0; f->n < n; f->n++) {
        f->be[f->n] = tb_start(f->n);
        ports[f->n] = tb_port(f->be[f->n]);
    }
    th_route(f->routes, "app.localhost", "app", ports, n);
    f->p = th_proxy(f->routes, cfg);
    f->port = proxy_http_port(f->p);
}

void th_fixture_stop(struct th_fixture *f)
{
    proxy_stop(f->p);
    for (int i = 0; i < f->n; i++)
        tb_free(f->be[i]);
    state_routes_free(f->routes);
}

int tc_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        abort();
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

void tc_send(int fd, const char *data, size_t len)
{
    write_all(fd, data, len);
}

void tc_sends(int fd, const char *s)
{
    write_all(fd, s, strlen(s));
}

/* Buffered reader state lives in a small per-fd table so pipelined responses split right. */
#define TC_FDS 1024
static _Thread_local char *tc_pending[TC_FDS];
static _Thread_local size_t tc_pending_len[TC_FDS];

ssize_t tc_recv(int fd, char *buf, size_t cap)
{
    if (fd < TC_FDS && tc_pending_len[fd]) {
        size_t n = tc_pending_len[fd] < cap ? tc_pending_len[fd] : cap;
        memcpy(buf, tc_pending[fd], n);
        memmove(tc_pending[fd], tc_pending[fd] + n, tc_pending_len[fd] - n);
        tc_pending_len[fd] -= n;
        if (tc_pending_len[fd] == 0) {
            free(tc_pending[fd]);
            tc_pending[fd] = NULL;
        }
        return (ssize_t)n;
    }
    return recv(fd, buf, cap, 0);
}

void tc_recv_exact(int fd, char *buf, size_t len)
{
    size_t have = 0;
    while (have < len) {
        ssize_t n = tc_recv(fd, buf + have, len - have);
        if (n <= 0) { /* as the other tc_ helpers: the test stops here */
            fprintf(stderr, "tc_recv_exact: connection ended after %zu of %zu bytes\n", have, len);
            abort();
        }
        have += (size_t)n;
    }
}

static void tc_unread(int fd, const char *p, size_t n)
{
    if (n == 0 || fd >= TC_FDS)
        return;
    char *nb = malloc(tc_pending_len[fd] + n);
    memcpy(nb, p, n);
    if (tc_pending_len[fd])
        memcpy(nb + n, tc_pending[fd], tc_pending_len[fd]);
    free(tc_pending[fd]);
    tc_pending[fd] = nb;
    tc_pending_len[fd] += n;
}

static void body_add(struct tc_resp *r, const char *p, size_t n, size_t keep_max)
{
    if (r->body_len + n <= keep_max) {
        r->body = realloc(r->body, r->body_len + n + 1);
        memcpy(r->body + r->body_len, p, n);
        r->body[r->body_len + n] = '\0';
    }
    r->body_len += n;
}

int tc_read(int fd, struct tc_resp *r, size_t keep_max, bool head_request)
{
    memset(r, 0, sizeof(*r));
    char buf[65536];
    size_t have = 0;
    char *e = NULL;
    for (;;) {
        buf[have] = '\0';
        if ((e = strstr(buf, "\r\n\r\n")) != NULL)
            break;
        ssize_t n = tc_recv(fd, buf + have, sizeof(buf) - 1 - have);
        if (n <= 0) {
            r->closed = true;
            return 0;
        }
        have += (size_t)n;
    }
    size_t hl = (size_t)(e + 4 - buf);
    memcpy(r->head, buf, hl < sizeof(r->head) - 1 ? hl : sizeof(r->head) - 1);
    sscanf(r->head, "HTTP/1.%*d %d", &r->status);
    char v[64];
    long long cl = -1;
    bool chunked = false;
    if (find_field(r->head, "content-length", v, sizeof(v)))
        cl = atoll(v);
    if (find_field(r->head, "transfer-encoding", v, sizeof(v)))
        chunked = true;
    bool closing = find_field(r->head, "connection", v, sizeof(v)) && strcasecmp(v, "close") == 0;
    size_t rest = have - hl;
    memmove(buf, buf + hl, rest);
    r->body = calloc(1, 1);
    if (head_request || r->status == 204 || r->status == 304 || r->status == 101 ||
        (r->status >= 100 && r->status < 200)) {
        tc_unread(fd, buf, rest);
        return r->status;
    }
    if (chunked) {
        /* decode chunks */
        size_t bh = rest;
        for (;;) {
            char *le;
            for (;;) {
                buf[bh] = '\0';
                if ((le = strstr(buf, "\r\n")) != NULL)
                    break;
                ssize_t n = tc_recv(fd, buf + bh, sizeof(buf) - 1 - bh);
                if (n <= 0)
                    return 0;
                bh += (size_t)n;
            }
            size_t sz = (size_t)strtoull(buf, NULL, 16);
            size_t line = (size_t)(le + 2 - buf);
            memmove(buf, buf + line, bh - line);
            bh -= line;
            for (int part = 0; part < 2; part++) {
                /* the chunk's data, then its CRLF */
                size_t need = part == 0 ? sz : 2;
                while (need) {
                    if (bh == 0) {
                        ssize_t n = tc_recv(fd, buf, sizeof(buf) - 1);
                        if (n <= 0)
                            return 0;
                        bh = (size_t)n;
                    }
                    size_t take = bh < need ? bh : need;
                    if (part == 0)
                        body_add(r, buf, take, keep_max);
                    memmove(buf, buf + take, bh - take);
                    bh -= take;
                    need -= take;
                }
            }
            if (sz == 0)
                break;
        }
        tc_unread(fd, buf, bh);
    } else if (cl >= 0) {
        size_t take = rest < (size_t)cl ? rest : (size_t)cl;
        body_add(r, buf, take, keep_max);
        tc_unread(fd, buf + take, rest - take);
        while (r->body_len < (size_t)cl) {
            size_t want = (size_t)cl - r->body_len;
            ssize_t n = tc_recv(fd, buf, want < sizeof(buf) ? want : sizeof(buf));
            if (n <= 0)
                return 0;
            body_add(r, buf, (size_t)n, keep_max);
        }
    } else {
        body_add(r, buf, rest, keep_max);
        for (;;) {
            ssize_t n = tc_recv(fd, buf, sizeof(buf));
            if (n <= 0)
                break;
            body_add(r, buf, (size_t)n, keep_max);
        }
        r->closed = true;
    }
    if (closing)
        r->closed = tc_closed(fd, 2000);
    return r->status;
}

void tc_resp_free(struct tc_resp *r)
{
    free(r->body);
    r->body = NULL;
}

bool tc_closed(int fd, int timeout_ms)
{
    char b[4096];
    if (fd < TC_FDS && tc_pending_len[fd])
        return false;
    struct pollfd pf = {fd, POLLIN, 0};
    for (;;) {
        int rc = poll(&pf, 1, timeout_ms);
        if (rc <= 0)
            return false;
        ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return true;
        if (n < 0)
            return false;
    }
}

int tc_get(uint16_t port, const char *host, const char *path, struct tc_resp *r)
{
    char req[1024];
    int fd = tc_connect(port);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host);
    tc_sends(fd, req);
    int st = tc_read(fd, r, 1 << 20, false);
    close(fd);
    return st;
}
