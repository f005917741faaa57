/*
 * test_daemon.c - the daemon as an operator runs it: systemd readiness (sd_notify READY=1,
 * STOPPING=1), SIGHUP reloading the config file (a bad file keeps the running config), JSON
 * log lines, and `webgw` with no arguments serving a single node on the embedded defaults.
 */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "node/node.h"

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Receives one datagram within timeout_ms into buf (NUL-terminated); returns its length. */
static ssize_t recv_notify(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    ssize_t n;

    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    n = recv(fd, buf, cap - 1, 0);
    buf[n > 0 ? n : 0] = '\0';
    return n;
}

static void systemd_hears_ready_and_stopping(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct nt_node n;
    char buf[256];
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/notify.sock", nt_tmpdir());
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    setenv("NOTIFY_SOCKET", sun.sun_path, 1);
    assert_int_equal(nt_node_start(&n, "notify", "127.0.0.1", NULL), 0);
    unsetenv("NOTIFY_SOCKET");
    assert_true(recv_notify(fd, buf, sizeof(buf), 5000) > 0);
    assert_string_equal(buf, "READY=1");
    kill(n.pid, SIGTERM);
    assert_true(recv_notify(fd, buf, sizeof(buf), 5000) > 0);
    assert_string_equal(buf, "STOPPING=1");
    assert_int_equal(nt_node_stop(&n, 0, 10000), 0);
    close(fd);
}

static bool log_has(const char *path, const char *what)
{
    char *text = read_file(path);
    bool found = strstr(text, what) != NULL;

    free(text);
    return found;
}

struct log_wait {
    const char *path; /* log file */
    const char *what; /* text to find */
};

static bool log_wait_cond(void *ctx)
{
    struct log_wait *w = ctx;
    return log_has(w->path, w->what);
}

static void sighup_reloads_the_config_file(void **state)
{
    struct nt_node n;
    char cfg[400], cfgflag[420];
    struct ctl_response r;
    int got429 = 0;

    snprintf(cfg, sizeof(cfg), "%s/reload.yaml", nt_tmpdir());
    write_file(cfg, "log-format: text\napi-rate-limit: 1000\n");
    snprintf(cfgflag, sizeof(cfgflag), "%s", cfg);
    const char *extra[] = {"--config", cfgflag, NULL};
    assert_int_equal(nt_node_start(&n, "reload", "127.0.0.1", extra), 0);

    /* a broken file is refused and the node keeps running on what it had */
    write_file(cfg, "log-format: xml\n");
    kill(n.pid, SIGHUP);
    struct log_wait refused = {n.log, "reload refused, keeping the running config"};
    assert_true(nt_wait(log_wait_cond, &refused, 5000));
    assert_true(log_has(n.log, "log-format: expected text or json"));
    assert_int_equal(nt_api(&n, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    ctl_response_free(&r);

    /* a good one applies: JSON logs from now on, and the new rate limit */
    write_file(cfg, "log-format: json\napi-rate-limit: 1\n");
    kill(n.pid, SIGHUP);
    struct log_wait reloaded = {n.log, "\"msg\":\"configuration reloaded\""};
    assert_true(nt_wait(log_wait_cond, &reloaded, 5000));
    for (int i = 0; i < 8; i++) {
        if (nt_api(&n, "GET", "/api/v1/names", NULL, NULL, 0, &r) == 429)
            got429++;
        ctl_response_free(&r);
    }
    assert_true(got429 > 0);
    assert_int_equal(nt_node_stop(&n, SIGTERM, 10000), 0);

    /* every line after the reload is one JSON object with ts, level, component and msg */
    {
        char *text = read_file(n.log), *line = strstr(text, "{\"ts\"");
        int objects = 0;
        assert_non_null(line);
        for (char *next; line && *line; line = next) {
            json_t *doc;
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            doc = json_loads(line, 0, NULL);
            assert_non_null(doc);
            assert_non_null(json_object_get(doc, "ts"));
            assert_non_null(json_string_value(json_object_get(doc, "level")));
            assert_non_null(json_string_value(json_object_get(doc, "component")));
            assert_non_null(json_string_value(json_object_get(doc, "msg")));
            json_decref(doc);
            objects++;
        }
        assert_true(objects >= 3); /* reloaded, draining, stopped */
        free(text);
    }
}

/* `webgw` alone: a single node on the embedded defaults, in its working directory. The
 * defaults are fixed ports (8080, 8443, 7946, 9080) that other programs on a shared machine
 * may hold, so the check runs in a network namespace of its own (unshare -n, as root). */
static void no_arguments_runs_a_single_node(void **state)
{
    char bin[512], dir[256], script[2048], path[400];
    int status;
    char *text;

    nt_bin("webgw", bin, sizeof(bin));
    snprintf(dir, sizeof(dir), "%s/defaults", nt_tmpdir());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(script, sizeof(script),
             "unshare -n sh -c '"
             "ip link set lo up && cd %s && { %s 2>webgw.log & pid=$!; "
             "for i in $(seq 1 200); do curl -fsS -o healthz.json http://127.0.0.1:9080/healthz "
             "&& break; sleep 0.05; done; "
             "curl -s -o body.txt -w %%{http_code} -H \"Host: nobody.localhost\" "
             "http://127.0.0.1:8080/ >proxy.status; "
             "kill -INT $pid; wait $pid; echo $? >exit.status; }'",
             dir, bin);
    status = system(script);
    assert_int_equal(WEXITSTATUS(status), 0);

    snprintf(path, sizeof(path), "%s/healthz.json", dir);
    text = read_file(path);
    assert_non_null(strstr(text, "\"status\":\"ok\""));
    assert_non_null(strstr(text, "\"domain\":\"localhost\""));
    free(text);
    /* the proxy answers on 8080 for NAME.localhost: an unknown name is a clean 404 */
    snprintf(path, sizeof(path), "%s/proxy.status", dir);
    text = read_file(path);
    assert_string_equal(text, "404");
    free(text);
    /* SIGINT: a clean stop */
    snprintf(path, sizeof(path), "%s/exit.status", dir);
    text = read_file(path);
    assert_string_equal(text, "0\n");
    free(text);
    /* the data lives in ./data */
    snprintf(path, sizeof(path), "%s/data/node-id", dir);
    assert_int_equal(access(path, R_OK), 0);
}

static bool compacted(void *ctx)
{
    struct ctl_response r;
    bool ok = nt_api(ctx, "GET", "/metrics", NULL, NULL, 0, &r) == 200 && r.body &&
              !strstr(r.body, "webgw_store_compactions_total 0\n") &&
              strstr(r.body, "webgw_store_compactions_total ");

    ctl_response_free(&r);
    return ok;
}

/* The record log is compacted into a snapshot in the background once it passes
 * --compact-bytes; nothing is lost across the compaction and a restart. */
static void the_log_is_compacted_when_it_grows(void **state)
{
    struct nt_node n;
    struct ctl_response r;
    char envkey[400], out[4096], err[4096], name[16];
    const char *extra[] = {"--compact-bytes", "4096", NULL};
    const char *env[] = {envkey, NULL};

    assert_int_equal(nt_node_start(&n, "compact", "127.0.0.1", extra), 0);
    snprintf(envkey, sizeof(envkey), "WEBGW_KEY=%s/compact.key", nt_tmpdir());
    const char *keygen[] = {"webgwctl", "--api", n.api_url, "keygen", NULL};
    assert_int_equal(nt_run(keygen, env, out, sizeof(out), err, sizeof(err)), 0);
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "name-%02d", i);
        const char *reserve[] = {"webgwctl", "--api", n.api_url, "reserve", name, NULL};
        assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 0);
    }
    assert_true(nt_wait(compacted, &n, 10000));
    assert_int_equal(nt_node_stop(&n, SIGKILL, 5000), 128 + SIGKILL);
    assert_int_equal(nt_node_restart(&n, extra), 0);
    assert_int_equal(nt_api(&n, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"names\":30"));
    ctl_response_free(&r);
    assert_int_equal(nt_node_stop(&n, SIGTERM, 10000), 0);
}

static int teardown(void **state)
{
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(systemd_hears_ready_and_stopping),
        cmocka_unit_test(sighup_reloads_the_config_file),
        cmocka_unit_test(no_arguments_runs_a_single_node),
        cmocka_unit_test(the_log_is_compacted_when_it_grows),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
