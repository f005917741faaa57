/*
 * dns_client.c - webgw-dns-client, a DNS round-robin web client for the docker cluster.
 *
 * It does what a browser or curl does with a round-robin name, and nothing more: resolve
 * NAME with getaddrinfo() (so the container's /etc/resolv.conf decides who answers: in
 * docker/compose.yml, the fleet's own DNS), connect to the first address, and when that
 * connection fails (refused, unreachable, or no answer within --connect-timeout-ms) go on to
 * the next address. A connection that dies before the first response byte (reset, closed: the
 * gateway was killed under the request) also goes on to the next address, as browsers and
 * curl's happy-eyeballs retry do for an idempotent GET; once a byte came back it is a failure. Each
 * request is resolved afresh (no cache in between: glibc keeps none), so the printed answer set is
 * what the fleet answers at that moment.
 *
 *   webgw-dns-client NAME [--port N] [--interval-ms N] [--count N] [--connect-timeout-ms N]
 *                         [--timeout-ms N] [--expect TEXT]
 *
 * One line per request on stdout (the docker cluster test reads them from `docker logs`):
 *
 *   t=MS resolve_ms=MS ok via=IP tried=K answers=IP,IP,... status=200 first=LINE
 *   t=MS resolve_ms=MS fail reason=TEXT tried=K answers=IP,...
 *
 * t is when the request started, in milliseconds since the epoch (containers share the host's
 * clock, so a test can set it against the moment it killed a gateway); resolve_ms how long
 * getaddrinfo took; answers the addresses it returned, sorted so sets compare as text; tried
 * how many connects it took.
 * A request is ok when the status is 200 and the body contains --expect (default: "hello
 * from backend-", the demo backend's page). --count 0 (the default) runs until SIGTERM or
 * SIGINT, which exit 0. Limits: CLIENT_ADDRS_MAX addresses used per answer, CLIENT_RESP_MAX
 * bytes of response read.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_ADDRS_MAX 16
#define CLIENT_RESP_MAX 8192
#define CLIENT_REASON_MAX 160

struct client_opts {
    const char *name;        /* the round-robin name, e.g. demo.localhost */
    const char *port;        /* HTTP port on every gateway */
    long interval_ms;        /* pause between requests */
    long count;              /* requests to make; 0: until a signal */
    long connect_timeout_ms; /* give up on one address after this */
    long timeout_ms;         /* whole exchange with one gateway once connected */
    const char *expect;      /* text the body must contain */
};

/* One resolution: the addresses in getaddrinfo's order, and the sorted text for the log. */
struct client_answer {
    struct sockaddr_storage addrs[CLIENT_ADDRS_MAX];      /* in the order to try */
    socklen_t lens[CLIENT_ADDRS_MAX];                     /* their lengths */
    size_t count;                                         /* addresses held */
    char text[CLIENT_ADDRS_MAX * (INET6_ADDRSTRLEN + 1)]; /* "IP,IP,..." sorted, or "-" */
};

static volatile sig_atomic_t client_stop;

static void client_on_signal(int sig)
{
    (void)sig;
    client_stop = 1;
}

/* Milliseconds since the epoch, for the log lines. */
static long long client_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds on the monotonic clock, for timeouts. */
static long client_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_ip_text(const struct sockaddr_storage *sa, char *out, size_t cap)
{
    const void *ip = sa->ss_family == AF_INET6
                         ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                         : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (inet_ntop(sa->ss_family, ip, out, (socklen_t)cap) == NULL)
        snprintf(out, cap, "?");
}

static int client_cmp_text(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/*
 * client_resolve - NAME:PORT through getaddrinfo into `ans`. Returns 0, or -1 with the
 * resolver's message in `reason` (NXDOMAIN, NODATA, timeout: whatever glibc says).
 */
static int client_resolve(const struct client_opts *o, struct client_answer *ans, char *reason,
                          size_t cap)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char sorted[CLIENT_ADDRS_MAX][INET6_ADDRSTRLEN];
    int rc;

    memset(ans, 0, sizeof(*ans));
    snprintf(ans->text, sizeof(ans->text), "-");
    rc = getaddrinfo(o->name, o->port, &hints, &res);
    if (rc != 0) {
        snprintf(reason, cap, "resolve:%s", gai_strerror(rc));
        return -1;
    }
    for (struct addrinfo *ai = res; ai && ans->count < CLIENT_ADDRS_MAX; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(ans->addrs[0]))
            continue;
        memcpy(&ans->addrs[ans->count], ai->ai_addr, ai->ai_addrlen);
        ans->lens[ans->count] = ai->ai_addrlen;
        client_ip_text(&ans->addrs[ans->count], sorted[ans->count], sizeof(sorted[0]));
        ans->count++;
    }
    freeaddrinfo(res);
    qsort(sorted, ans->count, sizeof(sorted[0]), client_cmp_text);
    ans->text[0] = '\0';
    for (size_t i = 0; i < ans->count; i++) {
        size_t used = strlen(ans->text);
        snprintf(ans->text + used, sizeof(ans->text) - used, "%s%s", i ? "," : "", sorted[i]);
    }
    return ans->count ? 0 : (snprintf(reason, cap, "resolve:no_address"), -1);
}

/* Waits for `events` on fd until `deadline` (client_now_ms). Returns 1 ready, 0 timeout. */
static int client_wait(int fd, short events, long deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        long left = deadline - client_now_ms();
        if (left <= 0)
            return 0;
        int rc = poll(&p, 1, (int)left);
        if (rc > 0)
            return 1;
        if (rc == 0)
            return 0;
        if (errno != EINTR)
            return 0;
    }
}

/*
 * client_connect - a non-blocking connect to one address within the connect timeout.
 * Returns the connected fd, or -1 with why in `reason`.
 */
static int client_connect(const struct client_opts *o, const struct sockaddr_storage *sa,
                          socklen_t len, char *reason, size_t cap)
{
    int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int soerr = 0;
    socklen_t sl = sizeof(soerr);

    if (fd < 0) {
        snprintf(reason, cap, "socket:%s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)sa, len) == 0)
        return fd;
    if (errno != EINPROGRESS) {
        snprintf(reason, cap, "connect:%s", strerror(errno));
        goto failed;
    }
    if (!client_wait(fd, POLLOUT, client_now_ms() + o->connect_timeout_ms)) {
        snprintf(reason, cap, "connect:timeout");
        goto failed;
    }
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0) {
        snprintf(reason, cap, "connect:%s", strerror(soerr ? soerr : errno));
        goto failed;
    }
    return fd;
failed:
    close(fd);
    return -1;
}

/*
 * client_exchange - GET / with Host: NAME on a connected fd; reads until the gateway closes
 * (Connection: close) or CLIENT_RESP_MAX. Returns the status (0 when unreadable) and puts
 * the response's first body line in `first`.
 */
static int client_exchange(const struct client_opts *o, int fd, char *first, size_t first_cap,
                           bool *matched, bool *answered, char *reason, size_t cap)
{
    char req[512], resp[CLIENT_RESP_MAX + 1];
    size_t got = 0;
    long deadline = client_now_ms() + o->timeout_ms;
    int n = snprintf(req, sizeof(req),
                     "GET / HTTP/1.1\r\nHost: %s\r\nUser-Agent: webgw-dns-client\r\n"
                     "Connection: close\r\n\r\n",
                     o->name);
    int status = 0;

    *matched = false;
    *answered = false;
    snprintf(first, first_cap, "-");
    if (n < 0 || (size_t)n >= sizeof(req) || send(fd, req, (size_t)n, MSG_NOSIGNAL) != (ssize_t)n) {
        snprintf(reason, cap, "send:%s", n < 0 ? "format" : strerror(errno));
        return 0;
    }
    while (got < CLIENT_RESP_MAX) {
        if (!client_wait(fd, POLLIN, deadline)) {
            snprintf(reason, cap, "read:timeout");
            return 0;
        }
        ssize_t r = recv(fd, resp + got, CLIENT_RESP_MAX - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(reason, cap, "read:%s", strerror(errno));
            return 0;
        }
        if (r == 0)
            break;
        got += (size_t)r;
        *answered = true;
    }
    resp[got] = '\0';
    if (sscanf(resp, "HTTP/1.%*[01] %3d", &status) != 1) {
        snprintf(reason, cap, "bad_status_line");
        return 0;
    }
    const char *body = strstr(resp, "\r\n\r\n");
    if (body != NULL) {
        body += 4;
        size_t len = strcspn(body, "\r\n");
        if (len >= first_cap)
            len = first_cap - 1;
        memcpy(first, body, len);
        first[len] = '\0';
        for (char *p = first; *p; p++)
            if (*p == ' ')
                *p = '_';
        *matched = strstr(body, o->expect) != NULL;
    }
    if (status != 200 || !*matched)
        snprintf(reason, cap, "status_%d_%s", status, *matched ? "body_ok" : "unexpected_body");
    return status;
}

/* Spaces in a reason become '_', so every line splits into KEY=VALUE fields on blanks. */
static const char *client_field(char *text)
{
    for (char *p = text; *p; p++)
        if (*p == ' ')
            *p = '_';
    return text;
}

/* One request: resolve, then try the addresses in order until one answers. Prints its line. */
static bool client_request(const struct client_opts *o)
{
    struct client_answer ans;
    char reason[CLIENT_REASON_MAX] = "", first[96], via[INET6_ADDRSTRLEN];
    long long t = client_wall_ms();
    long r0 = client_now_ms(), resolve_ms;
    size_t tried = 0;
    int rc = client_resolve(o, &ans, reason, sizeof(reason));

    resolve_ms = client_now_ms() - r0;
    if (rc != 0) {
        printf("t=%lld resolve_ms=%ld fail reason=%s tried=0 answers=-\n", t, resolve_ms,
               client_field(reason));
        return false;
    }
    for (size_t i = 0; i < ans.count; i++) {
        bool matched, answered;
        int fd, status;

        tried++;
        fd = client_connect(o, &ans.addrs[i], ans.lens[i], reason, sizeof(reason));
        if (fd < 0)
            continue; /* what a round-robin client does: the next address */
        client_ip_text(&ans.addrs[i], via, sizeof(via));
        status = client_exchange(o, fd, first, sizeof(first), &matched, &answered, reason,
                                 sizeof(reason));
        close(fd);
        if (!answered)
            continue; /* died before any response byte: the GET is safe to send elsewhere */
        if (status == 200 && matched) {
            printf("t=%lld resolve_ms=%ld ok via=%s tried=%zu answers=%s status=200 first=%s\n", t,
                   resolve_ms, via, tried, ans.text, first);
            return true;
        }
        break; /* the gateway answered: a wrong answer is a failure, not a dead address */
    }
    printf("t=%lld resolve_ms=%ld fail reason=%s tried=%zu answers=%s\n", t, resolve_ms,
           client_field(reason), tried, ans.text);
    return false;
}

static void client_usage(FILE *out)
{
    fprintf(out,
            "usage: webgw-dns-client NAME [--port N] [--interval-ms N] [--count N]\n"
            "                        [--connect-timeout-ms N] [--timeout-ms N] [--expect TEXT]\n"
            "Resolves NAME with getaddrinfo (the container's resolv.conf) before every\n"
            "request, GETs / from the first address that accepts a connection, and prints\n"
            "one line per request: t=MS ok|fail ... answers=IP,...\n");
}

/* client_number - a whole number in [lo, hi] from `s`, or -1 with a message. */
static long client_number(const char *opt, const char *s, long lo, long hi)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "webgw-dns-client: %s must be a number from %ld to %ld, not '%s'\n", opt,
                lo, hi, s);
        return -1;
    }
    return v;
}

int main(int argc, char **argv)
{
    struct client_opts o = {.port = "8080",
                            .interval_ms = 200,
                            .connect_timeout_ms = 1000,
                            .timeout_ms = 3000,
                            .expect = "hello from backend-"};
    long failures = 0, requests = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long *num = NULL, lo = 0, hi = 3600000;

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            client_usage(stdout);
            return 0;
        }
        if (a[0] != '-') {
            if (o.name != NULL) {
                fprintf(stderr, "webgw-dns-client: one NAME only ('%s' and '%s')\n", o.name, a);
                return 2;
            }
            o.name = a;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "webgw-dns-client: %s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--port") == 0)
            o.port = argv[++i];
        else if (strcmp(a, "--expect") == 0)
            o.expect = argv[++i];
        else if (strcmp(a, "--interval-ms") == 0)
            num = &o.interval_ms;
        else if (strcmp(a, "--count") == 0)
            num = &o.count, hi = 1000000000;
        else if (strcmp(a, "--connect-timeout-ms") == 0)
            num = &o.connect_timeout_ms, lo = 1;
        else if (strcmp(a, "--timeout-ms") == 0)
            num = &o.timeout_ms, lo = 1;
        else {
            fprintf(stderr, "webgw-dns-client: unknown option %s (see --help)\n", a);
            return 2;
        }
        if (num != NULL && (*num = client_number(a, argv[++i], lo, hi)) < 0)
            return 2;
    }
    if (o.name == NULL || strlen(o.name) > 253) {
        fprintf(stderr, "webgw-dns-client: give the NAME to resolve (at most 253 characters)\n");
        return 2;
    }
    signal(SIGTERM, client_on_signal);
    signal(SIGINT, client_on_signal);
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (!client_stop && (o.count == 0 || requests < o.count)) {
        requests++;
        if (!client_request(&o))
            failures++;
        if (o.interval_ms > 0 && !client_stop)
            usleep((useconds_t)o.interval_ms * 1000);
    }
    fprintf(stderr, "webgw-dns-client: %ld requests, %ld failed\n", requests, failures);
    return o.count > 0 && failures > 0 ? 1 : 0;
}
