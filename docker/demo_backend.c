/*
 * demo_backend.c - webgw-demo-backend, the small HTTP/1.1 app the docker cluster exposes.
 *
 * The image is built FROM scratch, so the demo app can be neither python nor busybox: it is
 * this file, linked against libc only. Every request gets a short text page that names the
 * backend and echoes what the gateway forwarded (Host, X-Forwarded-*), so whoever curls
 * NAME.DOMAIN sees which backend answered and what the gateway added. Keep-alive and
 * pipelining work because the gateway pools its backend connections; what this app does not
 * implement (chunked request bodies) or will not hold (oversized heads and bodies) gets an
 * error status and a close.
 *
 *   webgw-demo-backend [--listen ADDR:PORT] [--name TEXT]
 *
 * One thread and poll(). Limits: DEMO_CONNS_MAX connections, DEMO_HEAD_MAX bytes of request
 * head, DEMO_BODY_MAX bytes of body (read and dropped), DEMO_IDLE_S seconds idle.
 * SIGTERM and SIGINT exit 0: as PID 1 in a container a signal without a handler is ignored,
 * and `docker stop` would otherwise wait for its timeout and kill.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEMO_CONNS_MAX 256
#define DEMO_HEAD_MAX 8192
#define DEMO_BODY_MAX (1024 * 1024)
#define DEMO_OUT_MAX 4096
#define DEMO_FIELD_MAX 200 /* longest echoed header value or path */
#define DEMO_IDLE_S 30

struct demo_conn {
    int fd;                      /* -1 when the slot is free */
    char in[DEMO_HEAD_MAX];      /* unparsed request bytes */
    size_t in_len;               /* bytes used in in[] */
    size_t body_left;            /* request body bytes still to drop */
    char out[DEMO_OUT_MAX];      /* the response being written */
    size_t out_len, out_off;     /* out[] used, out[] already written */
    bool close_after;            /* close once out[] is written */
    time_t last;                 /* last activity, for the idle timeout */
    char peer[INET6_ADDRSTRLEN]; /* client address, for the log line */
};

/* What the parser took from one request head; strings point into a copy of the head. */
struct demo_request {
    const char *method, *path, *host, *xff, *xfproto, *xfhost;
    long long content_length; /* -1 when absent */
    bool keep_alive, chunked;
};

static volatile sig_atomic_t demo_stop;
static struct demo_conn demo_conns[DEMO_CONNS_MAX];
static const char *demo_name = "demo";

static void demo_on_signal(int sig)
{
    (void)sig;
    demo_stop = 1;
}

/* Parses "IPv4:PORT" or "[IPv6]:PORT"; returns 0 or -1 with a message in err. */
static int demo_parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                             char *err, size_t errlen)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon;
    char *end;
    long port;
    size_t hl;

    memset(ss, 0, sizeof(*ss));
    colon = strrchr(text, ':');
    if (!colon || colon == text) {
        snprintf(err, errlen, "--listen %s: expected ADDR:PORT", text);
        return -1;
    }
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        snprintf(err, errlen, "--listen %s: port must be 1..65535", text);
        return -1;
    }
    hl = (size_t)(colon - text);
    if (text[0] == '[') {
        if (hl < 3 || text[hl - 1] != ']') {
            snprintf(err, errlen, "--listen %s: IPv6 is written [ADDR]:PORT", text);
            return -1;
        }
        text++;
        hl -= 2;
    }
    if (hl >= sizeof(host)) {
        snprintf(err, errlen, "--listen %s: address too long", text);
        return -1;
    }
    memcpy(host, text, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
        return 0;
    }
    snprintf(err, errlen, "--listen %s: not an IP address", host);
    return -1;
}

static int demo_listen(const char *text, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int fd, one = 1;

    if (demo_parse_listen(text, &ss, &len, err, errlen) != 0)
        return -1;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) {
        snprintf(err, errlen, "setsockopt SO_REUSEADDR: %s", strerror(errno));
        goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
        snprintf(err, errlen, "bind %s: %s", text, strerror(errno));
        goto fail;
    }
    if (listen(fd, 128) != 0) {
        snprintf(err, errlen, "listen %s: %s", text, strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

static void demo_close(struct demo_conn *c)
{
    close(c->fd);
    c->fd = -1;
}

/* Copies a header value or path for echoing: at most DEMO_FIELD_MAX bytes, printable ASCII
 * only, so a hostile request cannot inject lines into the page or the log. */
static void demo_clean(char *dst, size_t cap, const char *src)
{
    size_t n = 0;

    for (; src && *src && n + 1 < cap && n < DEMO_FIELD_MAX; src++)
        dst[n++] = (*src >= 0x20 && *src < 0x7f) ? *src : '?';
    dst[n] = '\0';
}

/* Parses a request head (NUL-terminated, CRLFs replaced in place). Returns 0, or the HTTP
 * status that explains why the head is refused. */
static int demo_parse_head(char *head, struct demo_request *r)
{
    char *line, *next, *sp1, *sp2;
    bool http10;

    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    next = strstr(head, "\r\n");
    if (!next)
        return 400;
    *next = '\0';
    next += 2;
    sp1 = strchr(head, ' ');
    sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || sp1 == head || sp2 == sp1 + 1)
        return 400;
    *sp1 = *sp2 = '\0';
    r->method = head;
    r->path = sp1 + 1;
    if (strcmp(sp2 + 1, "HTTP/1.1") != 0 && strcmp(sp2 + 1, "HTTP/1.0") != 0)
        return 505;
    http10 = strcmp(sp2 + 1, "HTTP/1.0") == 0;
    r->keep_alive = !http10;
    for (line = next; *line; line = next) {
        char *colon, *value, *end;

        next = strstr(line, "\r\n");
        if (!next)
            return 400;
        if (next == line) /* the empty line that ends the head */
            break;
        *next = '\0';
        next += 2;
        colon = strchr(line, ':');
        if (!colon || colon == line)
            return 400;
        *colon = '\0';
        for (value = colon + 1; *value == ' ' || *value == '\t'; value++)
            ;
        for (end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t');)
            *--end = '\0';
        if (strcasecmp(line, "host") == 0) {
            r->host = value;
        } else if (strcasecmp(line, "x-forwarded-for") == 0) {
            r->xff = value;
        } else if (strcasecmp(line, "x-forwarded-proto") == 0) {
            r->xfproto = value;
        } else if (strcasecmp(line, "x-forwarded-host") == 0) {
            r->xfhost = value;
        } else if (strcasecmp(line, "connection") == 0) {
            if (strcasestr(value, "close"))
                r->keep_alive = false;
            else if (http10 && strcasestr(value, "keep-alive"))
                r->keep_alive = true;
        } else if (strcasecmp(line, "transfer-encoding") == 0) {
            r->chunked = true;
        } else if (strcasecmp(line, "content-length") == 0) {
            char *digits_end;
            long long v;

            if (r->content_length >= 0 || *value < '0' || *value > '9')
                return 400;
            errno = 0;
            v = strtoll(value, &digits_end, 10);
            if (errno || *digits_end != '\0')
                return 400;
            if (v > DEMO_BODY_MAX)
                return 413;
            r->content_length = v;
        }
    }
    if (r->chunked)
        return 501;
    return 0;
}

static const char *demo_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 505:
        return "HTTP Version Not Supported";
    default:
        return "Error";
    }
}

/* Writes the response head and body into c->out. */
static void demo_respond(struct demo_conn *c, int status, const char *method, const char *body)
{
    bool head_only = method && strcmp(method, "HEAD") == 0;
    int n;

    n = snprintf(c->out, sizeof(c->out),
                 "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\nX-Demo-Backend: %s\r\nConnection: %s\r\n\r\n%s",
                 status, demo_reason(status), strlen(body), demo_name,
                 c->close_after ? "close" : "keep-alive", head_only ? "" : body);
    c->out_len = n < 0 ? 0 : ((size_t)n < sizeof(c->out) ? (size_t)n : sizeof(c->out) - 1);
    c->out_off = 0;
}

/* Answers one complete head of hlen bytes at the start of c->in. */
static void demo_handle(struct demo_conn *c, size_t hlen)
{
    char head[DEMO_HEAD_MAX + 1], body[2048], path[DEMO_FIELD_MAX + 1], host[DEMO_FIELD_MAX + 1];
    char xff[DEMO_FIELD_MAX + 1], xfproto[DEMO_FIELD_MAX + 1], xfhost[DEMO_FIELD_MAX + 1];
    struct demo_request r;
    int status;

    memcpy(head, c->in, hlen);
    head[hlen] = '\0';
    memmove(c->in, c->in + hlen, c->in_len - hlen);
    c->in_len -= hlen;
    status = demo_parse_head(head, &r);
    if (status != 0) {
        char why[64];

        c->close_after = true;
        snprintf(why, sizeof(why), "%d %s\n", status, demo_reason(status));
        demo_respond(c, status, NULL, why);
        printf("%s %d refused request\n", c->peer, status);
        return;
    }
    c->close_after = !r.keep_alive;
    c->body_left = r.content_length > 0 ? (size_t)r.content_length : 0;
    demo_clean(path, sizeof(path), r.path);
    if (strcmp(path, "/healthz") == 0) {
        demo_respond(c, 200, r.method, "ok\n");
        return;
    }
    demo_clean(host, sizeof(host), r.host ? r.host : "-");
    demo_clean(xff, sizeof(xff), r.xff ? r.xff : "-");
    demo_clean(xfproto, sizeof(xfproto), r.xfproto ? r.xfproto : "-");
    demo_clean(xfhost, sizeof(xfhost), r.xfhost ? r.xfhost : "-");
    snprintf(body, sizeof(body),
             "hello from %s\npath: %s\nhost: %s\nx-forwarded-for: %s\n"
             "x-forwarded-proto: %s\nx-forwarded-host: %s\n",
             demo_name, path, host, xff, xfproto, xfhost);
    demo_respond(c, 200, r.method, body);
    printf("%s %s %s %s 200\n", c->peer, host, r.method, path);
}

/* Drops body bytes and answers buffered requests until a response is pending (one at a time,
 * so pipelined requests are answered in order without an unbounded output queue). */
static void demo_process(struct demo_conn *c)
{
    while (c->out_len == 0 && !c->close_after) {
        char *end;

        if (c->body_left > 0) {
            size_t drop = c->body_left < c->in_len ? c->body_left : c->in_len;

            if (drop == 0)
                return;
            memmove(c->in, c->in + drop, c->in_len - drop);
            c->in_len -= drop;
            c->body_left -= drop;
            continue;
        }
        end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        if (!end) {
            if (c->in_len == sizeof(c->in)) {
                c->close_after = true;
                c->in_len = 0;
                demo_respond(c, 431, NULL, "431 request head too large\n");
            }
            return;
        }
        demo_handle(c, (size_t)(end - c->in) + 4);
    }
}

static void demo_accept(int lfd)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        struct demo_conn *c = NULL;
        int fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd < 0)
            return;
        for (size_t i = 0; i < DEMO_CONNS_MAX && !c; i++)
            if (demo_conns[i].fd < 0)
                c = &demo_conns[i];
        if (!c) { /* over the connection limit: refuse rather than queue */
            close(fd);
            continue;
        }
        memset(c, 0, sizeof(*c));
        c->fd = fd;
        c->last = time(NULL);
        if (ss.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, c->peer, sizeof(c->peer));
        else
            inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, c->peer, sizeof(c->peer));
    }
}

static void demo_on_readable(struct demo_conn *c)
{
    ssize_t n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        demo_close(c);
        return;
    }
    if (n > 0) {
        c->in_len += (size_t)n;
        c->last = time(NULL);
        demo_process(c);
    }
}

static void demo_on_writable(struct demo_conn *c)
{
    ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR)
            demo_close(c);
        return;
    }
    c->out_off += (size_t)n;
    c->last = time(NULL);
    if (c->out_off < c->out_len)
        return;
    c->out_len = c->out_off = 0;
    if (c->close_after) {
        demo_close(c);
        return;
    }
    demo_process(c);
}

static void demo_usage(FILE *f)
{
    fprintf(f, "Usage: webgw-demo-backend [--listen ADDR:PORT] [--name TEXT]\n"
               "A tiny HTTP/1.1 app for the webgw demos: every request gets a page naming\n"
               "this backend and echoing Host and X-Forwarded-*. Defaults: --listen\n"
               "0.0.0.0:8000, --name demo. GET /healthz answers ok.\n");
}

int main(int argc, char **argv)
{
    static struct pollfd pfd[DEMO_CONNS_MAX + 1];
    static struct demo_conn *pconn[DEMO_CONNS_MAX + 1];
    const char *listen_at = "0.0.0.0:8000";
    struct sigaction sa = {.sa_handler = demo_on_signal};
    char err[256];
    int lfd;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            demo_usage(stdout);
            return 0;
        }
        if (i + 1 < argc && strcmp(argv[i], "--listen") == 0) {
            listen_at = argv[++i];
        } else if (i + 1 < argc && strcmp(argv[i], "--name") == 0) {
            demo_name = argv[++i];
        } else {
            fprintf(stderr, "webgw-demo-backend: unknown or incomplete option %s\n", argv[i]);
            demo_usage(stderr);
            return 2;
        }
    }
    if (strpbrk(demo_name, "\r\n")) {
        fprintf(stderr, "webgw-demo-backend: --name must be one line\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    lfd = demo_listen(listen_at, err, sizeof(err));
    if (lfd < 0) {
        fprintf(stderr, "webgw-demo-backend: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < DEMO_CONNS_MAX; i++)
        demo_conns[i].fd = -1;
    printf("webgw-demo-backend %s listening on %s\n", demo_name, listen_at);

    while (!demo_stop) {
        time_t now = time(NULL);
        nfds_t n = 1;
        int ready;

        pfd[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < DEMO_CONNS_MAX; i++) {
            struct demo_conn *c = &demo_conns[i];

            if (c->fd < 0)
                continue;
            if (now - c->last > DEMO_IDLE_S) {
                demo_close(c);
                continue;
            }
            /* While a response is pending, stop reading: a client that pipelines without
             * reading answers is held by TCP back-pressure, not by our memory. */
            pfd[n] = (struct pollfd){.fd = c->fd, .events = c->out_len ? POLLOUT : POLLIN};
            pconn[n++] = c;
        }
        ready = poll(pfd, n, 1000);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "webgw-demo-backend: poll: %s\n", strerror(errno));
            close(lfd);
            return 1;
        }
        if (pfd[0].revents & POLLIN)
            demo_accept(lfd);
        for (nfds_t i = 1; i < n; i++) {
            struct demo_conn *c = pconn[i];

            if (c->fd < 0 || pfd[i].revents == 0)
                continue;
            if (pfd[i].revents & POLLOUT)
                demo_on_writable(c);
            else if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR))
                demo_on_readable(c);
        }
    }
    for (size_t i = 0; i < DEMO_CONNS_MAX; i++)
        if (demo_conns[i].fd >= 0)
            demo_close(&demo_conns[i]);
    close(lfd);
    printf("webgw-demo-backend %s stopped\n", demo_name);
    return 0;
}
