/*
 * harness.c - real processes on loopback for the node tests (see harness.h).
 */
#include "harness.h"
#include "node/node.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char nt_dir[256];

const char *nt_tmpdir(void)
{
    if (!nt_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(nt_dir, sizeof(nt_dir), "%s/webgw-node-XXXXXX", t && t[0] ? t : "/tmp");
        if (!mkdtemp(nt_dir)) {
            perror("mkdtemp");
            exit(1);
        }
    }
    return nt_dir;
}

void nt_cleanup(void)
{
    char cmd[300];

    if (!nt_dir[0] || getenv("WEBGW_KEEP_TMP"))
        return;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", nt_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cleanup of %s failed\n", nt_dir);
    nt_dir[0] = '\0';
}

void nt_bin(const char *name, char *out, size_t cap)
{
    const char *b = getenv("WEBGW_BIN");
    snprintf(out, cap, "%s/%s", b && b[0] ? b : "./bin", name);
}

/* ip (IPv4, or IPv6 when it has a colon) and port into *ss; returns its length. */
static socklen_t nt_sockaddr(const char *ip, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
        return sizeof(*s6);
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &s4->sin_addr);
    return sizeof(*s4);
}

int nt_free_port(const char *ip)
{
    struct sockaddr_storage ss;
    socklen_t sl = nt_sockaddr(ip, 0, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0), port;

    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
        perror("nt_free_port");
        exit(1);
    }
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
    close(fd);
    return port;
}

/* Reads the start of n's log (at most cap - 1 bytes) into buf, NUL-terminated; its length. */
static size_t nt_read_log(const struct nt_node *n, char *buf, size_t cap)
{
    FILE *f = fopen(n->log, "r");
    size_t len = 0;

    if (f) {
        len = fread(buf, 1, cap - 1, f);
        fclose(f);
    }
    buf[len] = '\0';
    return len;
}

static void nt_print_log(const struct nt_node *n)
{
    char buf[8192];

    nt_read_log(n, buf, sizeof(buf));
    fprintf(stderr, "---- log of %s ----\n%s----\n", n->dir, buf);
}

/* A daemon that exited with a failure: its sanitizer report (or, without one, the end of its
 * log), so that an exit status like TSan's 66 comes with its reason. */
static void nt_print_exit_report(const struct nt_node *n)
{
    static char buf[1 << 20];
    size_t len = nt_read_log(n, buf, sizeof(buf));
    const char *from = strstr(buf, "WARNING: ThreadSanitizer");

    if (!from)
        from = strstr(buf, "ERROR: AddressSanitizer");
    if (!from)
        from = strstr(buf, "runtime error:");
    if (!from)
        from = len > 4096 ? buf + len - 4096 : buf;
    fprintf(stderr,
            "---- %s exited with a failure; its log from the report on ----\n%.16384s----\n",
            n->dir, from);
}

const char *nt_cluster_key(void)
{
    static char path[300];
    unsigned char raw[32];
    char b64[64];

    if (path[0])
        return path;
    if (RAND_bytes(raw, sizeof(raw)) != 1)
        abort();
    EVP_EncodeBlock((unsigned char *)b64, raw, sizeof(raw));
    /* not nt_write_tmp: its static path buffer may hold a test's file name right now */
    snprintf(path, sizeof(path), "%s/harness-cluster.key", nt_tmpdir());
    FILE *f = fopen(path, "w");
    if (f == NULL || fprintf(f, "%s\n", b64) < 0 || fclose(f) != 0)
        abort();
    chmod(path, 0600);
    return path;
}

static bool nt_has_flag(const char *const *extra, const char *flag)
{
    for (size_t i = 0; extra && extra[i]; i++)
        if (strcmp(extra[i], flag) == 0)
            return true;
    return false;
}

static int nt_spawn(struct nt_node *n, const char *const *extra)
{
    char bin[512], api[64], http[64], https[64], gossip[64];
    const char *argv[64];
    int argc = 0;

    nt_bin("webgw", bin, sizeof(bin));
    snprintf(api, sizeof(api), "%s:%d", n->ip, n->api_port);
    snprintf(http, sizeof(http), "%s:%d", n->ip, n->http_port);
    snprintf(https, sizeof(https), "%s:%d", n->ip, n->https_port);
    snprintf(gossip, sizeof(gossip), "%s:%d", n->ip, n->gossip_port);
    argv[argc++] = bin;
    argv[argc++] = "--data-dir";
    argv[argc++] = n->dir;
    argv[argc++] = "--api";
    argv[argc++] = api;
    /* --http and --https repeat (each adds a listener): a test that gives its own replaces the
     * harness's rather than adding to it */
    if (!nt_has_flag(extra, "--http")) {
        argv[argc++] = "--http";
        argv[argc++] = http;
    }
    if (!nt_has_flag(extra, "--https")) {
        argv[argc++] = "--https";
        argv[argc++] = https;
    }
    argv[argc++] = "--gossip";
    argv[argc++] = gossip;
    argv[argc++] = "--workers";
    argv[argc++] = "1";
    /* fqdn DNS checks never leave the machine: a closed loopback port unless a test gives
     * its own --dns-server (a later flag wins) */
    argv[argc++] = "--dns-server";
    argv[argc++] = "127.0.0.1:9";
    /* every harness fleet shares one cluster key, as a real fleet must */
    if (!nt_has_flag(extra, "--cluster-key") && !nt_has_flag(extra, "--gossip-insecure") &&
        !nt_has_flag(extra, NT_NO_CLUSTER_KEY)) {
        argv[argc++] = "--cluster-key";
        argv[argc++] = nt_cluster_key();
    }
    for (size_t i = 0; extra && extra[i] && argc < 62; i++)
        if (strcmp(extra[i], NT_NO_CLUSTER_KEY) != 0)
            argv[argc++] = extra[i];
    argv[argc] = NULL;

    n->pid = fork();
    if (n->pid < 0)
        return -1;
    if (n->pid == 0) {
        int fd = open(n->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(n->stderr_fd > 0 ? n->stderr_fd : fd, 2);
            dup2(fd, 1);
        }
        for (size_t i = 0; n->env[i][0] && i < NT_ENV_MAX; i++)
            putenv(n->env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 200; i++) {
        struct ctl_response resp;
        int status, st;
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            n->pid = 0;
            nt_print_log(n);
            return -1;
        }
        status = nt_api(n, "GET", "/healthz", NULL, NULL, 0, &resp);
        ctl_response_free(&resp);
        if (status == 200)
            return 0;
        usleep(50000);
    }
    nt_print_log(n);
    return -1;
}

/* The one way a node starts: fresh ports, data dir, optional environment and stderr. */
static int nt_node_launch(struct nt_node *n, const char *name, const char *ip,
                          const char *const *extra, const char *const *env, int stderr_fd)
{
    memset(n, 0, sizeof(*n));
    for (size_t i = 0; env && env[i] && i < NT_ENV_MAX; i++)
        snprintf(n->env[i], sizeof(n->env[i]), "%s", env[i]);
    n->stderr_fd = stderr_fd;
    snprintf(n->ip, sizeof(n->ip), "%s", ip);
    n->api_port = nt_free_port(ip);
    n->http_port = nt_free_port(ip);
    n->https_port = nt_free_port(ip);
    n->gossip_port = nt_free_port(ip);
    /* a truncated path would start the node in the wrong place: refuse instead */
    if (snprintf(n->dir, sizeof(n->dir), "%s/%s", nt_tmpdir(), name) >= (int)sizeof(n->dir) ||
        snprintf(n->log, sizeof(n->log), "%s/%s.log", nt_tmpdir(), name) >= (int)sizeof(n->log) ||
        snprintf(n->api_url, sizeof(n->api_url), "http://%s:%d", ip, n->api_port) >=
            (int)sizeof(n->api_url)) {
        fprintf(stderr, "nt_node_start: %s: data dir, log or API URL too long\n", name);
        return -1;
    }
    return nt_spawn(n, extra);
}

int nt_node_start(struct nt_node *n, const char *name, const char *ip, const char *const *extra)
{
    return nt_node_launch(n, name, ip, extra, NULL, 0);
}

int nt_node_start_stderr(struct nt_node *n, const char *name, const char *ip,
                         const char *const *extra, int stderr_fd)
{
    return nt_node_launch(n, name, ip, extra, NULL, stderr_fd);
}

int nt_node_start_env(struct nt_node *n, const char *name, const char *ip, const char *const *extra,
                      const char *const *env)
{
    return nt_node_launch(n, name, ip, extra, env, 0);
}

int nt_node_restart(struct nt_node *n, const char *const *extra)
{
    return nt_spawn(n, extra);
}

int nt_node_stop(struct nt_node *n, int sig, int timeout_ms)
{
    int st;

    if (n->pid <= 0)
        return -1;
    kill(n->pid, sig);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(n->pid, &st, WNOHANG) == n->pid) {
            int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            n->pid = 0;
            if (rc != 0)
                nt_print_exit_report(n);
            return rc;
        }
        usleep(10000);
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, &st, 0);
    n->pid = 0;
    nt_print_log(n);
    return -1;
}

int nt_api(const struct nt_node *n, const char *method, const char *path, const char *ctype,
           const void *body, size_t len, struct ctl_response *resp)
{
    char err[256];

    if (ctl_http(n->api_url, method, path, ctype, body, len, resp, err, sizeof(err)) != 0)
        return 0;
    return resp->status;
}

int nt_raw(const char *ip, int port, const void *req, size_t len, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t sl = nt_sockaddr(ip, port, &ss);
    int fd = socket(ss.ss_family, SOCK_STREAM, 0), status = 0;
    size_t got = 0;
    const char *p = req;

    out[0] = '\0';
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) != 0)
        goto out;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server may close early (413): read what it said */
        p += n;
        len -= (size_t)n;
    }
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&pfd, 1, 3000) <= 0 || got + 1 >= cap)
            break;
        n = recv(fd, out + got, cap - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    if (strncmp(out, "HTTP/1.1 ", 9) == 0)
        status = atoi(out + 9);
out:
    if (fd >= 0)
        close(fd);
    return status;
}

static void nt_drain(int fd, char *buf, size_t cap, size_t *len)
{
    for (;;) {
        ssize_t n;
        if (*len + 1 >= cap) {
            char sink[4096];
            n = read(fd, sink, sizeof(sink));
        } else {
            n = read(fd, buf + *len, cap - 1 - *len);
            if (n > 0)
                *len += (size_t)n;
        }
        if (n <= 0)
            break;
    }
    buf[*len] = '\0';
}

int nt_run(const char *const *argv, const char *const *env, char *out, size_t outcap, char *err,
           size_t errcap)
{
    int po[2], pe[2], st;
    char bin[512];
    size_t olen = 0, elen = 0;
    pid_t pid;

    if (pipe(po) != 0 || pipe(pe) != 0)
        return -1;
    nt_bin(argv[0], bin, sizeof(bin));
    pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    /* outputs are small: read stdout to the end, then stderr */
    nt_drain(po[0], out, outcap, &olen);
    nt_drain(pe[0], err, errcap, &elen);
    close(po[0]);
    close(pe[0]);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int nt_ctlv(const char *const *env, char *out, size_t outcap, char *err, size_t errcap,
            const char *api_url, va_list ap)
{
    const char *argv[32] = {"webgwctl", "--api", api_url};
    int argc = 3;

    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 31;)
        argv[argc++] = a;
    return nt_run(argv, env, out, outcap, err, errcap);
}

int nt_ctl(const char *const *env, char *out, size_t outcap, char *err, size_t errcap,
           const char *api_url, ...)
{
    va_list ap;
    int rc;

    va_start(ap, api_url);
    rc = nt_ctlv(env, out, outcap, err, errcap, api_url, ap);
    va_end(ap);
    return rc;
}

bool nt_have_faketime(void)
{
    if (access(NT_FAKETIME_LIB, R_OK) == 0)
        return true;
    fprintf(stderr, "%s missing: apt-get install faketime (scripts/install-deps.sh)\n",
            NT_FAKETIME_LIB);
    return false;
}

const char *const nt_day_behind_env[] = {"LD_PRELOAD=" NT_FAKETIME_LIB, "FAKETIME=-1d",
                                         "ASAN_OPTIONS=verify_asan_link_order=0:detect_leaks=1",
                                         NULL};

int nt_ctl_owner(char *out, size_t outcap, char *err, size_t errcap, const char *api,
                 const char *keyfile, bool day_behind, ...)
{
    char env_key[400];
    const char *env[5] = {env_key};
    va_list ap;
    int rc;

    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/%s", nt_tmpdir(), keyfile);
    for (size_t i = 0; day_behind && nt_day_behind_env[i]; i++)
        env[i + 1] = nt_day_behind_env[i];
    va_start(ap, day_behind);
    rc = nt_ctlv(env, out, outcap, err, errcap, api, ap);
    va_end(ap);
    return rc;
}

bool nt_holds(const struct nt_node *n, const char *name, const char *owner, const char *tag)
{
    struct ctl_response resp;
    char path[300], want[120], host[300], body[256];
    bool ok;

    snprintf(path, sizeof(path), "/api/v1/names/%s", name);
    snprintf(want, sizeof(want), "\"owner\":\"%s\"", owner);
    snprintf(host, sizeof(host), "%s.localhost", name);
    ok = nt_api(n, "GET", path, NULL, NULL, 0, &resp) == 200 && resp.body &&
         strstr(resp.body, want) && strstr(resp.body, "\"held\":true") &&
         strstr(resp.body, "\"contenders\":1");
    if (getenv("TRUST_DEBUG"))
        fprintf(stderr, "%s: %s\n", n->ip, resp.body ? resp.body : "-");
    ctl_response_free(&resp);
    return ok && nt_get(n->ip, n->http_port, host, "/", body, sizeof(body)) == 200 &&
           strstr(body, tag) != NULL;
}

/* ---- a tiny backend ---------------------------------------------------------------------- */

#include <pthread.h>
#include <stdatomic.h>

struct nt_backend {
    int fd;                /* listening socket */
    int port;              /* its port */
    char tag[64];          /* body of every answer */
    int delay_ms;          /* before each answer */
    atomic_ulong requests; /* answered */
    atomic_bool stopping;  /* stop accepting */
    atomic_int active;     /* connection threads running */
    pthread_t thread;      /* acceptor */
};

struct nt_backend_conn {
    struct nt_backend *b; /* owner */
    int fd;               /* client */
};

static void *nt_backend_serve(void *arg)
{
    struct nt_backend_conn *c = arg;
    char buf[16384];
    size_t have = 0;

    for (;;) {
        char *end;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        ssize_t n;
        /* a stopped backend drops its keep-alive connections too, as a dead one would */
        if (atomic_load(&c->b->stopping))
            break;
        if (poll(&pfd, 1, 100) == 0)
            continue;
        n = recv(c->fd, buf + have, sizeof(buf) - 1 - have, 0);
        if (n <= 0)
            break;
        have += (size_t)n;
        buf[have] = '\0';
        /* bodiless requests only (GET/HEAD): a head ends the request */
        while ((end = strstr(buf, "\r\n\r\n")) != NULL) {
            char resp[256];
            size_t used = (size_t)(end + 4 - buf);
            int len;
            if (c->b->delay_ms)
                usleep((useconds_t)c->b->delay_ms * 1000);
            len = snprintf(resp, sizeof(resp),
                           "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu"
                           "\r\n\r\n%s\n",
                           strlen(c->b->tag) + 1, c->b->tag);
            if (send(c->fd, resp, (size_t)len, MSG_NOSIGNAL) != len)
                goto out;
            atomic_fetch_add(&c->b->requests, 1);
            memmove(buf, buf + used, have - used);
            have -= used;
            buf[have] = '\0';
        }
        if (have == sizeof(buf) - 1)
            break;
    }
out:
    close(c->fd);
    atomic_fetch_sub(&c->b->active, 1);
    free(c);
    return NULL;
}

static void *nt_backend_accept(void *arg)
{
    struct nt_backend *b = arg;

    while (!atomic_load(&b->stopping)) {
        struct pollfd pfd = {.fd = b->fd, .events = POLLIN};
        struct nt_backend_conn *c;
        pthread_t t;
        int fd;

        if (poll(&pfd, 1, 100) <= 0)
            continue;
        fd = accept4(b->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        c = malloc(sizeof(*c));
        c->b = b;
        c->fd = fd;
        atomic_fetch_add(&b->active, 1);
        if (pthread_create(&t, NULL, nt_backend_serve, c) != 0) {
            atomic_fetch_sub(&b->active, 1);
            close(fd);
            free(c);
            continue;
        }
        pthread_detach(t);
    }
    return NULL;
}

struct nt_backend *nt_backend_start(const char *ip, const char *tag, int delay_ms)
{
    return nt_backend_start_port(ip, 0, tag, delay_ms);
}

struct nt_backend *nt_backend_start_port(const char *ip, int port, const char *tag, int delay_ms)
{
    struct nt_backend *b = calloc(1, sizeof(*b));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    socklen_t sl = sizeof(sin);
    int one = 1;

    snprintf(b->tag, sizeof(b->tag), "%s", tag);
    b->delay_ms = delay_ms;
    inet_pton(AF_INET, ip, &sin.sin_addr);
    /* CLOEXEC: a daemon started later must not inherit the listener and keep the port open
     * after nt_backend_stop (its kernel backlog would still complete connections) */
    b->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(b->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(b->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || listen(b->fd, 512) != 0 ||
        getsockname(b->fd, (struct sockaddr *)&sin, &sl) != 0) {
        perror("nt_backend_start");
        exit(1);
    }
    b->port = ntohs(sin.sin_port);
    pthread_create(&b->thread, NULL, nt_backend_accept, b);
    return b;
}

int nt_backend_port(const struct nt_backend *b)
{
    return b->port;
}

unsigned long nt_backend_requests(const struct nt_backend *b)
{
    return atomic_load(&((struct nt_backend *)b)->requests);
}

void nt_backend_stop(struct nt_backend *b)
{
    if (!b)
        return;
    atomic_store(&b->stopping, true);
    pthread_join(b->thread, NULL);
    close(b->fd);
    /* connection threads see `stopping` within 100 ms and close; the struct outlives them,
     * and is leaked rather than freed under a running thread */
    for (int i = 0; i < 300 && atomic_load(&b->active) > 0; i++)
        usleep(10000);
    if (atomic_load(&b->active) == 0)
        free(b);
}

int nt_get(const char *ip, int port, const char *host, const char *path, char *body, size_t cap)
{
    char req[512], resp[16384], *p;
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     path, host);
    int status = nt_raw(ip, port, req, (size_t)n, resp, sizeof(resp));

    if (body && cap) {
        body[0] = '\0';
        p = strstr(resp, "\r\n\r\n");
        if (p)
            snprintf(body, cap, "%s", p + 4);
    }
    return status;
}

bool nt_file_has(const char *path, const char *what)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        return false;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, what) != NULL;
}

bool nt_wait(bool (*cond)(void *ctx), void *ctx, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        if (cond(ctx))
            return true;
        usleep(50000);
    }
    return false;
}

const char *nt_write_tmp(const char *name, const char *text)
{
    static char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", nt_tmpdir(), name);
    f = fopen(path, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "harness: cannot write %s: %s\n", path, strerror(errno));
        abort();
    }
    return path;
}

static int config_argv(struct node_config *cfg, int argc, char **argv, char *err, size_t errlen)
{
    FILE *devnull = fopen("/dev/null", "w");
    int rc;

    err[0] = '\0';
    rc = node_config_from_args(cfg, argc, argv, devnull, err, errlen);
    fclose(devnull);
    return rc;
}

int nt_config_parse(struct node_config *cfg, char *err, size_t errlen, ...)
{
    char *argv[96] = {"webgw"};
    int argc = 1;
    va_list ap;

    va_start(ap, errlen);
    for (char *a; (a = va_arg(ap, char *)) != NULL && argc < 95;)
        argv[argc++] = a;
    va_end(ap);
    return config_argv(cfg, argc, argv, err, errlen);
}

int nt_config_local(struct node_config *cfg, const char *name, const char *workers,
                    const char *const *extra, char *err, size_t errlen)
{
    static const char *const listeners[] = {"--http", "--https", "--gossip", "--api"};
    char data[512], addr[4][64];
    char *argv[96] = {"webgw", "--data-dir", data, "--workers", (char *)workers};
    int argc = 5;

    snprintf(data, sizeof(data), "%s/%s", nt_tmpdir(), name);
    for (int i = 0; i < 4; i++) {
        snprintf(addr[i], sizeof(addr[i]), "127.0.0.1:%d", nt_free_port("127.0.0.1"));
        argv[argc++] = (char *)listeners[i];
        argv[argc++] = addr[i];
    }
    for (size_t i = 0; extra != NULL && extra[i] != NULL && argc < 95; i++)
        argv[argc++] = (char *)extra[i];
    return config_argv(cfg, argc, argv, err, errlen);
}
