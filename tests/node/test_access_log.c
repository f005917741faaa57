/*
 * test_access_log.c - the access log of a real webgw process: lines in a file with every
 * field, JSON lines that parse with the values the client sent (escaped), logrotate (rename,
 * SIGHUP, a new file), syslog datagrams, and a sink that takes nothing (stderr on a full pipe,
 * a FIFO nobody reads) while requests keep being answered at once and the lost lines are
 * counted in /metrics.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "node/node.h"

#define IP "127.0.0.31"

static struct nt_backend *backend;
static struct nt_node node;
static char env_key[400], out[65536], err[8192];

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static bool served(void *ctx)
{
    char body[256];
    (void)ctx;
    return nt_get(node.ip, node.http_port, "acc.localhost", "/", body, sizeof(body)) == 200;
}

/* Starts the node (extra flags, stderr on stderr_fd when > 0) and exposes acc.localhost. */
static void start(const char *name, int stderr_fd, ...)
{
    const char *extra[24] = {"--allow-loopback-backends"};
    char url[64];
    size_t n = 1;
    va_list ap;

    va_start(ap, stderr_fd);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 23;)
        extra[n++] = a;
    va_end(ap);
    extra[n] = NULL;
    assert_int_equal(nt_node_start_stderr(&node, name, IP, extra, stderr_fd), 0);
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    if (access(env_key + strlen("WEBGW_KEY="), R_OK) != 0)
        assert_int_equal(ctl(node.api_url, "keygen", NULL), 0);
    snprintf(url, sizeof(url), "http://%s:%d", IP, nt_backend_port(backend));
    assert_int_equal(ctl(node.api_url, "reserve", "acc", NULL), 0);
    assert_int_equal(ctl(node.api_url, "expose", "acc", "--backend", url, NULL), 0);
    assert_true(nt_wait(served, NULL, 10000));
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;

    if (!f)
        return strdup("");
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

struct file_has {
    const char *path; /* file */
    const char *text; /* wanted in it */
};

static bool file_has(void *ctx)
{
    struct file_has *fh = ctx;
    char *s = slurp(fh->path);
    bool ok = strstr(s, fh->text) != NULL;
    free(s);
    return ok;
}

/* The line of `text` that contains `needle` (copied into line[cap]), or false. */
static bool line_with(const char *text, const char *needle, char *line, size_t cap)
{
    const char *p = strstr(text, needle), *start, *end;

    if (!p)
        return false;
    for (start = p; start > text && start[-1] != '\n'; start--)
        ;
    end = strchr(p, '\n');
    snprintf(line, cap, "%.*s", (int)(end ? end - start : (long)strlen(start)), start);
    return true;
}

static unsigned long metric(const char *name)
{
    struct ctl_response r;
    char want[128];
    unsigned long v = 0;
    const char *p;

    snprintf(want, sizeof(want), "\n%s ", name);
    if (nt_api(&node, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body &&
        (p = strstr(r.body, want)) != NULL)
        v = strtoul(p + strlen(want), NULL, 10);
    ctl_response_free(&r);
    return v;
}

/* n GETs on one keep-alive connection; returns how many were answered 200 and the slowest
 * answer in ms. */
static int keepalive_gets(int n, double *max_ms)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)node.http_port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
    static const char req[] = "GET /load HTTP/1.1\r\nHost: acc.localhost\r\n\r\n";

    *max_ms = 0;
    inet_pton(AF_INET, IP, &sin.sin_addr);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
        return 0;
    for (int i = 0; i < n; i++) {
        char buf[4096];
        size_t have = 0;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) != (ssize_t)sizeof(req) - 1)
            break;
        /* the backend answers "acc\n" with Content-Length 4: a whole answer ends with it */
        for (;;) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            ssize_t got;
            if (poll(&p, 1, 5000) <= 0)
                goto out;
            got = recv(fd, buf + have, sizeof(buf) - 1 - have, 0);
            if (got <= 0)
                goto out;
            have += (size_t)got;
            buf[have] = '\0';
            if (have > 4 && strcmp(buf + have - 4, "acc\n") == 0)
                break;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (ms > *max_ms)
            *max_ms = ms;
        if (strncmp(buf, "HTTP/1.1 200 ", 13) == 0)
            ok++;
    }
out:
    close(fd);
    return ok;
}

/* ---- tests ------------------------------------------------------------------------------ */

static void file_lines_carry_every_field_and_follow_logrotate(void **state)
{
    char path[512], rotated[600], line[4096], want[128], body[256];
    struct file_has fh = {path, "path=/one?x=1 "};
    char *text;

    (void)state;
    snprintf(path, sizeof(path), "%s/access.log", nt_tmpdir());
    start("filelog", 0, "--access-log", path, NULL);
    assert_int_equal(nt_get(node.ip, node.http_port, "acc.localhost", "/one?x=1", body, 256), 200);
    assert_int_equal(nt_get(node.ip, node.http_port, "nope.localhost", "/two", body, 256), 404);
    fh.text = "path=/two ";
    assert_true(nt_wait(file_has, &fh, 5000));
    text = slurp(path);
    assert_true(line_with(text, "path=/one?x=1 ", line, sizeof(line)));
    assert_non_null(strstr(line, " info  access: time=20"));
    assert_non_null(strstr(line, " client=127.0.0.1 "));
    assert_non_null(strstr(line, " host=acc.localhost name=acc method=GET "));
    assert_non_null(strstr(line, " status=200 bytes_in="));
    snprintf(want, sizeof(want), " backend=%s:%d duration_ms=", IP, nt_backend_port(backend));
    assert_non_null(strstr(line, want));
    assert_null(strstr(line, "bytes_out=0 "));
    assert_true(line_with(text, "path=/two ", line, sizeof(line)));
    assert_non_null(strstr(line, " host=nope.localhost name=- method=GET path=/two status=404 "));
    assert_non_null(strstr(line, " backend=- "));
    free(text);
    /* they went to the file, not to stderr */
    text = slurp(node.log);
    assert_null(strstr(text, "path=/one"));
    free(text);

    /* logrotate: rename, SIGHUP, and the next lines start a new file at the same path */
    snprintf(rotated, sizeof(rotated), "%s.1", path);
    assert_int_equal(rename(path, rotated), 0);
    kill(node.pid, SIGHUP);
    fh.text = "path=/after ";
    for (int i = 0; i < 100 && !file_has(&fh); i++) {
        nt_get(node.ip, node.http_port, "acc.localhost", "/after", body, sizeof(body));
        usleep(50000);
    }
    assert_true(file_has(&fh));
    text = slurp(rotated);
    assert_non_null(strstr(text, "path=/one?x=1 "));
    free(text);
    if (metric("webgw_access_log_dropped_total") != 0) { /* what the daemon said about it */
        text = slurp(node.log);
        for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n"))
            if (strstr(l, " access") || strstr(l, "SIGHUP") || strstr(l, "reload"))
                fprintf(stderr, "node log: %s\n", l);
        free(text);
    }
    assert_int_equal(metric("webgw_access_log_dropped_total"), 0);
    assert_true(metric("webgw_access_log_lines_total") >= 3);
    assert_int_equal(nt_node_stop(&node, SIGTERM, 10000), 0);
}

static void json_lines_parse_with_separate_fields(void **state)
{
    char path[512], body[256], req[512];
    struct file_has fh = {path, "\"status\":404"};
    /* a quote, a backslash, valid UTF-8 (e-acute) and a byte that is not UTF-8 */
    static const char target[] = "/q?a=\"b\\c\xc3\xa9\xff";
    char *text, *save = NULL;
    int n, lines = 0, seen = 0;

    (void)state;
    snprintf(path, sizeof(path), "%s/access.json", nt_tmpdir());
    start("jsonlog", 0, "--access-log", path, "--log-format", "json", NULL);
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: acc.localhost\r\nConnection: close\r\n\r\n", target);
    assert_int_equal(nt_raw(node.ip, node.http_port, req, (size_t)n, out, sizeof(out)), 200);
    assert_int_equal(nt_get(node.ip, node.http_port, "nope.localhost", "/", body, 256), 404);
    assert_true(nt_wait(file_has, &fh, 5000));
    text = slurp(path);
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *o = json_loads(l, 0, &jerr);
        lines++;
        assert_non_null(o); /* every line is one JSON object, valid UTF-8 included */
        assert_string_equal(json_string_value(json_object_get(o, "component")), "access");
        assert_true(json_is_string(json_object_get(o, "ts")));
        assert_string_equal(json_string_value(json_object_get(o, "client")), "127.0.0.1");
        assert_string_equal(json_string_value(json_object_get(o, "method")), "GET");
        assert_true(json_is_integer(json_object_get(o, "status")));
        assert_true(json_integer_value(json_object_get(o, "bytes_in")) > 0);
        assert_true(json_integer_value(json_object_get(o, "bytes_out")) > 0);
        assert_true(json_is_number(json_object_get(o, "duration_ms")));
        assert_true(json_is_false(json_object_get(o, "cut")));
        if (json_integer_value(json_object_get(o, "status")) == 200 &&
            strncmp(json_string_value(json_object_get(o, "path")), "/q?", 3) == 0) {
            char want[64];
            /* the invalid byte reads back as U+00FF, everything else as sent */
            assert_string_equal(json_string_value(json_object_get(o, "path")),
                                "/q?a=\"b\\c\xc3\xa9\xc3\xbf");
            assert_string_equal(json_string_value(json_object_get(o, "host")), "acc.localhost");
            assert_string_equal(json_string_value(json_object_get(o, "name")), "acc");
            snprintf(want, sizeof(want), "%s:%d", IP, nt_backend_port(backend));
            assert_string_equal(json_string_value(json_object_get(o, "backend")), want);
            seen++;
        }
        if (json_integer_value(json_object_get(o, "status")) == 404) {
            assert_true(json_is_null(json_object_get(o, "name")));
            assert_true(json_is_null(json_object_get(o, "backend")));
            seen++;
        }
        json_decref(o);
    }
    free(text);
    assert_true(lines >= 2);
    assert_int_equal(seen, 2);
    assert_int_equal(nt_node_stop(&node, SIGTERM, 10000), 0);
}

static void syslog_gets_one_datagram_per_line(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char dest[200], msg[4096], body[256];
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    bool found = false;

    (void)state;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/syslog.sock", nt_tmpdir());
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    snprintf(dest, sizeof(dest), "syslog:%s", sun.sun_path);
    start("sysloglog", 0, "--access-log", dest, NULL);
    assert_int_equal(nt_get(node.ip, node.http_port, "acc.localhost", "/via-syslog", body, 256),
                     200);
    for (int i = 0; i < 50 && !found; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 100) <= 0)
            continue;
        n = recv(fd, msg, sizeof(msg) - 1, 0);
        assert_true(n > 0);
        msg[n] = '\0';
        if (!strstr(msg, "path=/via-syslog "))
            continue;
        found = true;
        assert_true(strncmp(msg, "<30>", 4) == 0); /* daemon.info */
        assert_non_null(strstr(msg, " webgw["));
        assert_non_null(strstr(msg, "]: time=20")); /* bare: syslog stamps its own line */
        assert_non_null(strstr(msg, " status=200 "));
        assert_null(strchr(msg, '\n'));
    }
    assert_true(found);
    assert_int_equal(nt_node_stop(&node, SIGTERM, 10000), 0);
    close(fd);
}

/* Reads a pipe to its end, so a stopping daemon can write its last lines. */
static void *drain_pipe(void *arg)
{
    int fd = *(int *)arg;
    char buf[65536];

    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    return NULL;
}

static void requests_go_on_while_stderr_is_a_full_pipe(void **state)
{
    int p[2];
    double max_ms;
    pthread_t t;
    unsigned long dropped, written;

    (void)state;
    assert_int_equal(pipe(p), 0);
    /* the default sink (stderr), a small ring so it fills after a few hundred lines */
    start("stderrfull", p[1], "--access-log-buffer", "4096", NULL);
    close(p[1]);
    /* health verdicts are logged by the control loop: let them pass before the pipe fills */
    sleep(3);
    /* nobody reads p[0]: 64 KiB of pipe, the writer's stage and the ring fill, then lines
     * are dropped; before the access log had a writer, the worker blocked right there */
    assert_int_equal(keepalive_gets(4000, &max_ms), 4000);
    print_message("4000 requests with stderr full: slowest answer %.1f ms\n", max_ms);
    assert_true(max_ms < 1000);
    /* read the pipe: the control loop's own lines were blocked too (it logs synchronously) */
    pthread_create(&t, NULL, drain_pipe, &p[0]);
    dropped = metric("webgw_access_log_dropped_total");
    written = metric("webgw_access_log_lines_total");
    print_message("dropped %lu, written %lu\n", dropped, written);
    assert_true(dropped > 0);
    assert_true(written > 0);
    assert_int_equal(nt_node_stop(&node, SIGTERM, 10000), 0);
    pthread_join(t, NULL);
    close(p[0]);
}

static void requests_go_on_while_the_access_fifo_is_not_read(void **state)
{
    char path[512];
    double max_ms;
    int rd;
    unsigned long dropped;

    (void)state;
    snprintf(path, sizeof(path), "%s/access.fifo", nt_tmpdir());
    assert_int_equal(mkfifo(path, 0600), 0);
    rd = open(path, O_RDONLY | O_NONBLOCK); /* a reader that never reads */
    assert_true(rd >= 0);
    start("fifolog", 0, "--access-log", path, "--access-log-buffer", "4096", NULL);
    assert_int_equal(keepalive_gets(4000, &max_ms), 4000);
    print_message("4000 requests with the FIFO full: slowest answer %.1f ms\n", max_ms);
    assert_true(max_ms < 1000);
    dropped = metric("webgw_access_log_dropped_total");
    assert_true(dropped > 0);
    /* the stuck writer does not hold up the stop either */
    assert_int_equal(nt_node_stop(&node, SIGTERM, 10000), 0);
    close(rd);
}

static void options_parse_from_flags_and_yaml(void **state)
{
    struct node_config cfg;
    char e[NODE_ERR_MAX], yaml[512];

    (void)state;
    assert_int_equal(nt_config_parse(&cfg, e, sizeof(e), NULL), 0);
    assert_string_equal(cfg.access_log, "stderr");
    assert_int_equal(cfg.access_log_buffer, 1u << 20);
    assert_int_equal(nt_config_parse(&cfg, e, sizeof(e), "--access-log", "syslog",
                                     "--access-log-buffer", "65536", NULL),
                     0);
    assert_string_equal(cfg.access_log, "syslog");
    assert_int_equal(cfg.access_log_buffer, 65536);
    snprintf(yaml, sizeof(yaml), "%s",
             nt_write_tmp("access.yaml",
                          "access-log: /var/log/webgw/access.log\naccess-log-buffer: 8192\n"));
    assert_int_equal(nt_config_parse(&cfg, e, sizeof(e), "--config", yaml, NULL), 0);
    assert_string_equal(cfg.access_log, "/var/log/webgw/access.log");
    assert_int_equal(cfg.access_log_buffer, 8192);
    assert_int_equal(nt_config_parse(&cfg, e, sizeof(e), "--access-log", "syslog:dev/log", NULL),
                     -1);
    assert_string_equal(e, "--access-log: syslog:SOCKET needs an absolute socket path under 108 "
                           "bytes");
    assert_int_equal(nt_config_parse(&cfg, e, sizeof(e), "--access-log-buffer", "100", NULL), -1);
    assert_string_equal(e, "--access-log-buffer: 100 is out of range 4096..1073741824");
}

static int setup(void **state)
{
    (void)state;
    backend = nt_backend_start(IP, "acc", 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (node.pid)
        nt_node_stop(&node, SIGKILL, 1000);
    nt_backend_stop(backend);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options_parse_from_flags_and_yaml),
        cmocka_unit_test(file_lines_carry_every_field_and_follow_logrotate),
        cmocka_unit_test(json_lines_parse_with_separate_fields),
        cmocka_unit_test(syslog_gets_one_datagram_per_line),
        cmocka_unit_test(requests_go_on_while_stderr_is_a_full_pipe),
        cmocka_unit_test(requests_go_on_while_the_access_fifo_is_not_read),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
