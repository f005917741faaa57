/*
 * test_api.c - the API of a running webgw, status code by status code: every bad input gets
 * its status and a JSON {"error": ...}; a 202 record is on disk (it survives kill -9).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node node;
static struct state_key *alice, *bob;
static char token_path[300];
#define TOKEN "0123456789abcdef-admin-token"

static struct state_backend backend(const char *ip, uint16_t port)
{
    struct state_backend be;

    memset(&be, 0, sizeof(be));
    be.family = 4;
    inet_pton(AF_INET, ip, be.addr);
    be.port = port;
    return be;
}

/* A signed record; version and claim time taken from the clock so versions go up. */
static struct state_record make(struct state_key *key, enum state_record_kind kind,
                                const char *name)
{
    static uint64_t last;
    struct state_record rec;
    char err[STATE_ERR_MAX];
    uint64_t now = state_now_ms();

    if (now <= last)
        now = last + 1;
    last = now;
    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    rec.version = now;
    rec.reserved_at_ms = now;
    rec.issued_at_ms = now;
    if (kind == STATE_RECORD_PROXY || kind == STATE_RECORD_FQDN) {
        rec.backend_count = 1;
        rec.backends[0] = backend("127.0.0.1", 1); /* nothing listens on port 1 */
    }
    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
    return rec;
}

static int post_record(const struct state_record *rec, struct ctl_response *resp)
{
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int len = state_record_encode(rec, buf, sizeof(buf));

    assert_true(len > 0);
    return nt_api(&node, "POST", "/api/v1/records", "application/msgpack", buf, (size_t)len, resp);
}

/* Asserts status and that the body is {"error": "...<want>..."}. */
static void expect_error(int status, struct ctl_response *resp, int want_status, const char *want)
{
    json_t *doc;
    const char *msg;

    if (status != want_status)
        fprintf(stderr, "got %d: %s\n", status, resp->body ? resp->body : "");
    assert_int_equal(status, want_status);
    doc = json_loads(resp->body, 0, NULL);
    assert_non_null(doc);
    msg = json_string_value(json_object_get(doc, "error"));
    assert_non_null(msg);
    if (want && !strstr(msg, want)) {
        fprintf(stderr, "error \"%s\" lacks \"%s\"\n", msg, want);
        fail();
    }
    json_decref(doc);
    ctl_response_free(resp);
}

static int setup(void **state)
{
    char err[STATE_ERR_MAX], path[300];
    FILE *f;

    snprintf(path, sizeof(path), "%s/alice.key", nt_tmpdir());
    alice = state_key_generate(path, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/bob.key", nt_tmpdir());
    bob = state_key_generate(path, err, sizeof(err));
    snprintf(token_path, sizeof(token_path), "%s/admin.token", nt_tmpdir());
    f = fopen(token_path, "w");
    fputs(TOKEN "\n", f);
    fclose(f);
    const char *extra[] = {"--allow-loopback-backends",
                           "--admin-token-file",
                           token_path,
                           "--api-body-limit",
                           "8192",
                           NULL};
    if (!alice || !bob || nt_node_start(&node, "api", "127.0.0.1", extra) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    if (node.pid)
        nt_node_stop(&node, SIGKILL, 5000);
    state_key_free(alice);
    state_key_free(bob);
    nt_cleanup();
    return 0;
}

static void healthz_and_read_endpoints_answer_json(void **state)
{
    struct ctl_response r;
    json_t *doc;

    assert_int_equal(nt_api(&node, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    doc = json_loads(r.body, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(doc, "domain")), "localhost");
    json_decref(doc);
    ctl_response_free(&r);

    assert_int_equal(nt_api(&node, "GET", "/api/v1/members", NULL, NULL, 0, &r), 200);
    doc = json_loads(r.body, 0, NULL);
    assert_true(json_array_size(doc) >= 1);
    json_t *m = json_array_get(doc, 0);
    for (const char *const *f = (const char *const[]){"id", "name", "addr", "state", NULL}; *f; f++)
        assert_non_null(json_object_get(m, *f));
    assert_string_equal(json_string_value(json_object_get(m, "state")), "alive");
    json_decref(doc);
    ctl_response_free(&r);

    assert_int_equal(nt_api(&node, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "# TYPE webgw_names gauge"));
    assert_non_null(strstr(r.body, "webgw_members{state=\"alive\"} "));
    ctl_response_free(&r);

    assert_int_equal(nt_api(&node, "GET", "/dashboard", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "<title>webgw dashboard</title>"));
    assert_null(strstr(r.body, "src=\"http")); /* no external assets */
    ctl_response_free(&r);
}

static void record_accepted_then_listed(void **state)
{
    struct ctl_response r;
    struct state_record res = make(alice, STATE_RECORD_RESERVE, "alpha");
    struct state_record prx;
    json_t *doc, *n;
    char owner[STATE_OWNER_HEX_LEN + 1];

    assert_int_equal(post_record(&res, &r), 202);
    ctl_response_free(&r);
    /* the same record again: a retry, still 202 */
    assert_int_equal(post_record(&res, &r), 202);
    assert_non_null(strstr(r.body, "already"));
    ctl_response_free(&r);

    prx = make(alice, STATE_RECORD_PROXY, "alpha");
    prx.reserved_at_ms = res.reserved_at_ms;
    prx.backend_count = 2;
    prx.backends[1] = backend("127.0.0.2", 9);
    {
        char err[STATE_ERR_MAX];
        assert_int_equal(state_record_sign(&prx, alice, err, sizeof(err)), 0);
    }
    /* as base64 in JSON this time */
    {
        uint8_t buf[STATE_RECORD_MAX_BYTES];
        char b64[4 * STATE_RECORD_MAX_BYTES / 3 + 8], body[sizeof(b64) + 32];
        int len = state_record_encode(&prx, buf, sizeof(buf));
        EVP_EncodeBlock((unsigned char *)b64, buf, len);
        snprintf(body, sizeof(body), "{\"record\": \"%s\"}", b64);
        assert_int_equal(
            nt_api(&node, "POST", "/api/v1/records", "application/json", body, strlen(body), &r),
            202);
        ctl_response_free(&r);
    }

    assert_int_equal(nt_api(&node, "GET", "/api/v1/names", NULL, NULL, 0, &r), 200);
    doc = json_loads(r.body, 0, NULL);
    ctl_response_free(&r);
    assert_int_equal(json_array_size(doc), 1);
    n = json_array_get(doc, 0);
    state_owner_format(prx.owner, owner);
    assert_string_equal(json_string_value(json_object_get(n, "name")), "alpha");
    assert_string_equal(json_string_value(json_object_get(n, "owner")), owner);
    assert_int_equal(json_integer_value(json_object_get(n, "version")), prx.version);
    assert_string_equal(json_string_value(json_array_get(json_object_get(n, "backends"), 1)),
                        "http://127.0.0.2:9");
    assert_true(json_is_false(json_object_get(n, "tls_passthrough")));
    json_decref(doc);

    assert_int_equal(nt_api(&node, "GET", "/api/v1/names/ALPHA", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"name\":\"alpha\""));
    ctl_response_free(&r);
    assert_int_equal(nt_api(&node, "GET", "/api/v1/backends", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "http://127.0.0.2:9"));
    ctl_response_free(&r);
}

static void bad_records_get_400(void **state)
{
    struct ctl_response r;
    struct state_record rec;
    char err[STATE_ERR_MAX];

    expect_error(nt_api(&node, "POST", "/api/v1/records", "application/msgpack", "garbage", 7, &r),
                 &r, 400, "malformed record");
    expect_error(nt_api(&node, "POST", "/api/v1/records", "application/msgpack", NULL, 0, &r), &r,
                 400, "empty body");
    expect_error(nt_api(&node, "POST", "/api/v1/records", "application/json", "{\"x\":1}", 7, &r),
                 &r, 400, "expected JSON");
    expect_error(nt_api(&node, "POST", "/api/v1/records", "application/json",
                        "{\"record\":\"!!!!\"}", 17, &r),
                 &r, 400, "base64");
    /* a name that breaks the syntax rules */
    rec = make(alice, STATE_RECORD_RESERVE, "xx");
    expect_error(post_record(&rec, &r), &r, 400, "xx");
    /* a backend on this gateway's own API port: a loop */
    rec = make(alice, STATE_RECORD_PROXY, "alpha");
    rec.backends[0] = backend("127.0.0.1", (uint16_t)node.api_port);
    assert_int_equal(state_record_sign(&rec, alice, err, sizeof(err)), 0);
    expect_error(post_record(&rec, &r), &r, 400, "own address");
    /* dated far in the future */
    rec = make(alice, STATE_RECORD_RESERVE, "future");
    rec.issued_at_ms += 3600 * 1000;
    rec.version = rec.issued_at_ms;
    assert_int_equal(state_record_sign(&rec, alice, err, sizeof(err)), 0);
    expect_error(post_record(&rec, &r), &r, 400, NULL);
}

static void bad_signature_and_not_owner_get_403(void **state)
{
    struct ctl_response r;
    struct state_record rec = make(alice, STATE_RECORD_RESERVE, "signed");

    rec.signature[10] ^= 0x40;
    expect_error(post_record(&rec, &r), &r, 403, "signature");
    /* bob exposes alice's name */
    rec = make(bob, STATE_RECORD_PROXY, "alpha");
    expect_error(post_record(&rec, &r), &r, 403, NULL);
    /* bob releases alice's name */
    rec = make(bob, STATE_RECORD_RELEASE, "alpha");
    expect_error(post_record(&rec, &r), &r, 403, NULL);
}

static void taken_name_and_stale_version_get_409(void **state)
{
    struct ctl_response r;
    struct state_record rec = make(bob, STATE_RECORD_RESERVE, "alpha");

    expect_error(post_record(&rec, &r), &r, 409, NULL);
    /* alice's own record with a version below her current one */
    rec = make(alice, STATE_RECORD_PROXY, "alpha");
    rec.version = 5;
    {
        char err[STATE_ERR_MAX];
        assert_int_equal(state_record_sign(&rec, alice, err, sizeof(err)), 0);
    }
    expect_error(post_record(&rec, &r), &r, 409, NULL);
}

static void oversized_input_gets_413_and_431(void **state)
{
    struct ctl_response r;
    char *big = malloc(20000), out[4096], *req;
    size_t n;

    memset(big, 'a', 20000);
    /* over the body limit (8192 here) */
    expect_error(nt_api(&node, "POST", "/api/v1/records", "application/msgpack", big, 9000, &r), &r,
                 413, "too large");
    /* under the body limit, over the record limit */
    expect_error(nt_api(&node, "POST", "/api/v1/records", "application/msgpack", big, 4000, &r), &r,
                 413, "limit");
    /* headers over 16 KiB */
    req = malloc(40000);
    n = (size_t)snprintf(req, 40000, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: %.*s\r\n\r\n",
                         18000, big);
    assert_int_equal(nt_raw("127.0.0.1", node.api_port, req, n, out, sizeof(out)), 431);
    /* a malformed request line */
    assert_int_equal(
        nt_raw("127.0.0.1", node.api_port, "GET / HTTP/9.9\r\n\r\n", 18, out, sizeof(out)), 400);
    assert_non_null(strstr(out, "\"error\""));
    free(req);
    free(big);
}

static void unknown_paths_methods_and_types(void **state)
{
    struct ctl_response r;

    expect_error(nt_api(&node, "GET", "/api/v1/names/nosuchname", NULL, NULL, 0, &r), &r, 404,
                 "no such name");
    expect_error(nt_api(&node, "GET", "/api/v1/names/Bad_Name!", NULL, NULL, 0, &r), &r, 400, NULL);
    expect_error(nt_api(&node, "GET", "/nope", NULL, NULL, 0, &r), &r, 404, "no such endpoint");
    expect_error(nt_api(&node, "DELETE", "/api/v1/names", NULL, NULL, 0, &r), &r, 405, NULL);
    expect_error(nt_api(&node, "GET", "/api/v1/records", NULL, NULL, 0, &r), &r, 405, NULL);
    expect_error(nt_api(&node, "POST", "/api/v1/records", "text/plain", "x", 1, &r), &r, 415, NULL);
}

/* HEAD gets headers only, and pipelined requests are answered in order on one connection. */
static void head_and_pipelining(void **state)
{
    static const char req[] = "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    char out[8192], *second, *third;

    assert_int_equal(nt_raw("127.0.0.1", node.api_port, req, sizeof(req) - 1, out, sizeof(out)),
                     200);
    second = strstr(out + 1, "HTTP/1.1 404");
    assert_non_null(second);
    third = strstr(second + 1, "HTTP/1.1 200");
    assert_non_null(third);
    /* the HEAD answer carries no body: the 404 follows its blank line directly */
    assert_ptr_equal(strstr(out, "\r\n\r\n") + 4, second);
    assert_non_null(strstr(third, "\"status\":\"ok\""));
    assert_non_null(strstr(third, "Connection: close"));
}

static int api_connect(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)node.api_port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* One client IP holds at most 64 API connections: the 65th is closed at once, and a slot
 * frees when one of the 64 closes. */
static void connections_per_ip_are_capped(void **state)
{
    int fds[64], extra;
    char buf[64];
    struct ctl_response r;

    for (int i = 0; i < 64; i++)
        fds[i] = api_connect();
    usleep(100000);
    extra = api_connect();
    {
        struct pollfd pfd = {.fd = extra, .events = POLLIN};
        assert_int_equal(poll(&pfd, 1, 3000), 1);
        assert_int_equal(recv(extra, buf, sizeof(buf), 0), 0); /* closed, nothing said */
    }
    close(extra);
    close(fds[0]);
    usleep(100000);
    assert_int_equal(nt_api(&node, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    ctl_response_free(&r);
    for (int i = 1; i < 64; i++)
        close(fds[i]);
}

static void admin_needs_the_bearer_token(void **state)
{
    struct ctl_response r;
    char req[512], out[2048];
    int n;

    expect_error(nt_api(&node, "POST", "/api/v1/admin/drain", NULL, NULL, 0, &r), &r, 401,
                 "Bearer");
    n = snprintf(req, sizeof(req),
                 "POST /api/v1/admin/drain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong"
                 "\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(nt_raw("127.0.0.1", node.api_port, req, (size_t)n, out, sizeof(out)), 401);
}

static void released_name_is_404_and_record_survives_kill_9(void **state)
{
    struct ctl_response r;
    struct state_record rec = make(alice, STATE_RECORD_RELEASE, "alpha");

    assert_int_equal(post_record(&rec, &r), 202);
    ctl_response_free(&r);
    expect_error(nt_api(&node, "GET", "/api/v1/names/alpha", NULL, NULL, 0, &r), &r, 404,
                 "released");
    rec = make(bob, STATE_RECORD_RESERVE, "durable");
    assert_int_equal(post_record(&rec, &r), 202);
    ctl_response_free(&r);

    /* acknowledged means on disk: kill -9 right after the 202 and start again */
    assert_int_equal(nt_node_stop(&node, SIGKILL, 5000), 128 + SIGKILL);
    const char *extra[] = {"--allow-loopback-backends", "--admin-token-file", token_path, NULL};
    assert_int_equal(nt_node_restart(&node, extra), 0);
    assert_int_equal(nt_api(&node, "GET", "/api/v1/names/durable", NULL, NULL, 0, &r), 200);
    ctl_response_free(&r);
    expect_error(nt_api(&node, "GET", "/api/v1/names/alpha", NULL, NULL, 0, &r), &r, 404,
                 "released");
}

static void admin_drain_stops_the_node_cleanly(void **state)
{
    char req[512], out[2048];
    struct ctl_response r;
    int n = snprintf(req, sizeof(req),
                     "POST /api/v1/admin/leave HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                     "\r\nContent-Length: 0\r\n\r\n");

    /* leave: the node tells the fleet it is gone but keeps answering */
    assert_int_equal(nt_raw("127.0.0.1", node.api_port, req, (size_t)n, out, sizeof(out)), 202);
    assert_int_equal(nt_api(&node, "GET", "/api/v1/members", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"state\":\"left\""));
    ctl_response_free(&r);
    assert_int_equal(nt_api(&node, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    ctl_response_free(&r);

    n = snprintf(req, sizeof(req),
                 "POST /api/v1/admin/drain HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " TOKEN
                 "\r\nContent-Length: 0\r\n\r\n");

    assert_int_equal(nt_raw("127.0.0.1", node.api_port, req, (size_t)n, out, sizeof(out)), 202);
    /* it exits 0 on its own */
    assert_int_equal(nt_node_stop(&node, 0, 5000), 0);
}

/* A node with a rate limit of 2/s (burst 4) answers 429 once the burst is spent. */
static void rate_limit_gets_429(void **state)
{
    struct nt_node slow;
    struct ctl_response r;
    const char *extra[] = {"--api-rate-limit", "2", NULL};
    int got429 = 0;

    assert_int_equal(nt_node_start(&slow, "slow", "127.0.0.1", extra), 0);
    for (int i = 0; i < 10; i++) {
        int st = nt_api(&slow, "GET", "/api/v1/names", NULL, NULL, 0, &r);
        if (st == 429) {
            expect_error(st, &r, 429, "rate limit");
            got429++;
        } else {
            ctl_response_free(&r);
        }
    }
    assert_true(got429 >= 5);
    assert_int_equal(nt_node_stop(&slow, SIGTERM, 5000), 0);
}

static void admin_disabled_without_token_file(void **state)
{
    struct nt_node plain;
    struct ctl_response r;

    assert_int_equal(nt_node_start(&plain, "plain", "127.0.0.1", NULL), 0);
    expect_error(nt_api(&plain, "POST", "/api/v1/admin/leave", NULL, NULL, 0, &r), &r, 403,
                 "admin API disabled");
    /* loopback backends are refused without --allow-loopback-backends */
    {
        struct state_record rec = make(alice, STATE_RECORD_RESERVE, "lonely");
        uint8_t buf[STATE_RECORD_MAX_BYTES];
        int len;
        len = state_record_encode(&rec, buf, sizeof(buf));
        assert_int_equal(
            nt_api(&plain, "POST", "/api/v1/records", "application/msgpack", buf, (size_t)len, &r),
            202);
        ctl_response_free(&r);
        rec = make(alice, STATE_RECORD_PROXY, "lonely");
        len = state_record_encode(&rec, buf, sizeof(buf));
        expect_error(
            nt_api(&plain, "POST", "/api/v1/records", "application/msgpack", buf, (size_t)len, &r),
            &r, 400, "loopback");
    }
    assert_int_equal(nt_node_stop(&plain, SIGINT, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(healthz_and_read_endpoints_answer_json),
        cmocka_unit_test(record_accepted_then_listed),
        cmocka_unit_test(bad_records_get_400),
        cmocka_unit_test(bad_signature_and_not_owner_get_403),
        cmocka_unit_test(taken_name_and_stale_version_get_409),
        cmocka_unit_test(oversized_input_gets_413_and_431),
        cmocka_unit_test(unknown_paths_methods_and_types),
        cmocka_unit_test(head_and_pipelining),
        cmocka_unit_test(connections_per_ip_are_capped),
        cmocka_unit_test(admin_needs_the_bearer_token),
        cmocka_unit_test(released_name_is_404_and_record_survives_kill_9),
        cmocka_unit_test(admin_drain_stops_the_node_cleanly),
        cmocka_unit_test(rate_limit_gets_429),
        cmocka_unit_test(admin_disabled_without_token_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
