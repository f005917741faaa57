/*
 * ctl_http.c - webgwctl's HTTP client: one request per connection, blocking, with timeouts.
 *
 * The CLI sends a handful of requests to one API; a blocking client with a deadline on connect
 * and on every read is all it needs. Answers are parsed with llhttp like the server's
 * requests, so a truncated or garbled answer is reported rather than guessed at.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <llhttp.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "node/ctl.h"
#include "node/node.h"

struct ctl_parse {
    struct ctl_response *resp; /* being filled */
    size_t cap;                /* body allocation */
    bool complete;             /* on_message_complete seen */
    bool too_big;              /* body over CTL_RESPONSE_MAX */
};

static int ctl_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct ctl_parse *cp = p->data;
    struct ctl_response *r = cp->resp;

    if (r->len + len > CTL_RESPONSE_MAX) {
        cp->too_big = true;
        return -1;
    }
    if (r->len + len + 1 > cp->cap) {
        size_t cap = cp->cap ? cp->cap : 4096;
        char *nb;
        while (cap < r->len + len + 1)
            cap *= 2;
        nb = realloc(r->body, cap);
        if (!nb)
            return -1;
        r->body = nb;
        cp->cap = cap;
    }
    memcpy(r->body + r->len, at, len);
    r->len += len;
    r->body[r->len] = '\0';
    return 0;
}

static int ctl_on_complete(llhttp_t *p)
{
    struct ctl_parse *cp = p->data;

    cp->complete = true;
    return 0;
}

/* Splits "http://HOST:PORT/prefix". */
static int ctl_parse_url(const char *base, char *host, size_t hostcap, char *port, size_t portcap,
                         const char **prefix, char *err, size_t errlen)
{
    const char *p, *hend, *slash;

    if (strncmp(base, "http://", 7) != 0) {
        snprintf(err, errlen, "--api: expected http://HOST:PORT, got \"%s\"", base);
        return -1;
    }
    p = base + 7;
    slash = strchr(p, '/');
    *prefix = slash ? slash : "";
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend || (slash && hend > slash))
            goto bad;
        if ((size_t)(hend - p - 1) >= hostcap)
            goto bad;
        memcpy(host, p + 1, (size_t)(hend - p - 1));
        host[hend - p - 1] = '\0';
        p = hend + 1;
    } else {
        size_t n = strcspn(p, ":/");
        if (n == 0 || n >= hostcap)
            goto bad;
        memcpy(host, p, n);
        host[n] = '\0';
        p += n;
    }
    if (*p == ':') {
        size_t n = strcspn(p + 1, "/");
        if (n == 0 || n >= portcap)
            goto bad;
        memcpy(port, p + 1, n);
        port[n] = '\0';
    } else if (*p == '\0' || *p == '/') {
        snprintf(port, portcap, "80");
    } else {
        goto bad;
    }
    return 0;
bad:
    snprintf(err, errlen, "--api: cannot parse \"%s\" (expected http://HOST:PORT)", base);
    return -1;
}

static int ctl_connect(const char *host, const char *port, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL, *ai;
    int fd = -1, rc, last = 0;

    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        struct pollfd pfd;
        int soerr = 0;
        socklen_t sl = sizeof(soerr);

        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            goto next;
        }
        pfd.fd = fd;
        pfd.events = POLLOUT;
        rc = poll(&pfd, 1, CTL_TIMEOUT_MS);
        if (rc == 0) {
            last = ETIMEDOUT;
            goto next;
        }
        if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
            last = soerr ? soerr : errno;
            goto next;
        }
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        {
            struct timeval tv = {.tv_sec = CTL_TIMEOUT_MS / 1000};
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        }
        freeaddrinfo(res);
        return fd;
    next:
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    snprintf(err, errlen, "cannot connect to %s:%s: %s (is webgw's API there? %s)", host, port,
             strerror(last), CTL_API_HINT);
    return -1;
}

static int ctl_send_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int ctl_http(const char *base, const char *method, const char *path, const char *content_type,
             const void *body, size_t len, struct ctl_response *resp, char *err, size_t errlen)
{
    return ctl_http_bearer(base, method, path, content_type, body, len, NULL, resp, err, errlen);
}

int ctl_http_bearer(const char *base, const char *method, const char *path,
                    const char *content_type, const void *body, size_t len, const char *token,
                    struct ctl_response *resp, char *err, size_t errlen)
{
    char host[256], port[16], head[1536], buf[16384];
    const char *prefix;
    llhttp_settings_t settings;
    llhttp_t parser;
    struct ctl_parse cp = {.resp = resp};
    int fd, hlen;
    llhttp_errno_t perr = HPE_OK;

    memset(resp, 0, sizeof(*resp));
    if (ctl_parse_url(base, host, sizeof(host), port, sizeof(port), &prefix, err, errlen) != 0)
        return -2;
    fd = ctl_connect(host, port, err, errlen);
    if (fd < 0)
        return -1;
    hlen = snprintf(
        head, sizeof(head),
        "%s %s%s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: webgwctl/%s\r\n"
        "Accept: application/json\r\nConnection: close\r\n%s%s%s%s%s%s"
        "Content-Length: %zu\r\n\r\n",
        method, strcmp(prefix, "/") == 0 ? "" : prefix, path, strchr(host, ':') ? "[" : "", host,
        strchr(host, ':') ? "]" : "", port, WEBGW_VERSION, content_type ? "Content-Type: " : "",
        content_type ? content_type : "", content_type ? "\r\n" : "",
        token ? "Authorization: Bearer " : "", token ? token : "", token ? "\r\n" : "", len);
    if (hlen < 0 || (size_t)hlen >= sizeof(head) || ctl_send_all(fd, head, (size_t)hlen) != 0 ||
        (len && ctl_send_all(fd, body, len) != 0)) {
        snprintf(err, errlen, "sending to %s: %s", base, strerror(errno));
        close(fd);
        return -1;
    }
    llhttp_settings_init(&settings);
    settings.on_body = ctl_on_body;
    settings.on_message_complete = ctl_on_complete;
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = &cp;
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "reading from %s: %s", base,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            goto fail;
        }
        if (n == 0) {
            perr = llhttp_finish(&parser);
            break;
        }
        perr = llhttp_execute(&parser, buf, (size_t)n);
        if (perr != HPE_OK || cp.complete)
            break;
    }
    if (cp.too_big) {
        snprintf(err, errlen, "answer from %s is larger than %u bytes", base, CTL_RESPONSE_MAX);
        goto fail;
    }
    if (!cp.complete || (perr != HPE_OK && perr != HPE_PAUSED)) {
        snprintf(err, errlen, "%s did not answer with HTTP (%s)", base,
                 perr != HPE_OK ? llhttp_get_error_reason(&parser) : "connection closed early");
        goto fail;
    }
    close(fd);
    resp->status = parser.status_code;
    if (!resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    return 0;
fail:
    close(fd);
    ctl_response_free(resp);
    return -1;
}

int ctl_answer_error(const char *api, const struct ctl_response *resp, char *msg, size_t cap)
{
    json_t *doc = json_loadb(resp->body ? resp->body : "", resp->len, 0, NULL);
    const char *why = json_string_value(json_object_get(doc, "error"));
    int rc = NODE_CTL_REFUSED;

    /* every error webgw's API sends is a JSON object with "error"; anything else (an HTML
     * page, the proxy's plain-text 404) means --api names some other server */
    if (why)
        snprintf(msg, cap, "refused (%d): %s", resp->status, why);
    else {
        snprintf(msg, cap, "%s is not a webgw API (it answered HTTP %d without a webgw error; %s)",
                 api, resp->status, CTL_API_HINT);
        rc = NODE_CTL_UNREACHABLE;
    }
    json_decref(doc);
    return rc;
}

void ctl_response_free(struct ctl_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = 0;
}
