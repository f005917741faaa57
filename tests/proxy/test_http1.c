/*
 * test_http1.c - the strict HTTP/1.1 rules as pure functions: every request smuggling case of
 * issue 4 is refused with the right status, limits answer 431/413, backend responses with the
 * same faults are refused (502), pipelined requests are split exactly, chunked bodies are
 * decoded, and the heads we write carry X-Forwarded-* and no hop-by-hop fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/http1.h"

static const struct http1_limits lim = {.max_request_line = 256,
                                        .max_header_count = 10,
                                        .max_header_bytes = 1024,
                                        .max_body_bytes = 100};

struct body {
    char data[4096];
    size_t len;
};

static int collect(void *ctx, const char *d, size_t n)
{
    struct body *b = ctx;
    memcpy(b->data + b->len, d, n);
    b->len += n;
    return 0;
}

/* Parses one request head; returns 1, 0 or -status. */
static int parse_req(const char *raw, struct http1_parser *p, struct http1_header *f,
                     struct body *b)
{
    http1_parser_init(p, true, &lim, f, 16, collect, b);
    int r = http1_parse_head(p, raw, strlen(raw));
    return r < 0 ? -p->status : r;
}

static int req_status(const char *raw)
{
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    return parse_req(raw, &p, f, &b);
}

static int resp_status(const char *raw)
{
    struct http1_parser p;
    struct http1_header f[16];
    http1_parser_init(&p, false, &lim, f, 16, NULL, NULL);
    int r = http1_parse_head(&p, raw, strlen(raw));
    return r < 0 ? -p.status : r;
}

static void test_valid_requests_parse(void **state)
{
    (void)state;
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    const char *raw = "GET /a?b=1 HTTP/1.1\r\nHost: App.Example:8080\r\nX-A:  v  \r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    assert_int_equal(p.head.head_len, strlen(raw));
    assert_true(p.message_done);
    assert_int_equal(p.head.method, HTTP_GET);
    assert_int_equal(p.head.count, 2);
    assert_int_equal(p.head.host_len, strlen("App.Example:8080"));
    assert_memory_equal(p.head.fields[1].value, "v", 1);
    assert_int_equal(p.head.fields[1].value_len, 1);
    assert_true(p.head.keep_alive);
    assert_int_equal(req_status("GET / HTTP/1.0\r\n\r\n"), 1);        /* 1.0 needs no Host */
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\n"), 0); /* incomplete */
}

static void test_smuggling_cl_te(void **state)
{
    (void)state;
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"),
                     -400);
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                                "Content-Length: 3\r\n\r\n"),
                     -400);
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\n\r\n"),
                     -400);
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\n"), -400);
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n"),
                     -400);
    assert_int_equal(
        req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
        -400);
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
                     -400);
    assert_int_equal(
        req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"), -400);
    assert_int_equal(
        req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), -400);
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n"),
                     -400);
    assert_int_equal(req_status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), -400);
    assert_int_equal(
        req_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n"), -400);
}

static void test_smuggling_bytes(void **state)
{
    (void)state;
    /* obs-fold */
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n"), -400);
    /* bare LF and lone CR */
    assert_int_equal(req_status("GET / HTTP/1.1\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), -400);
    /* NUL and control bytes */
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\001b\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX: a\177b\r\n\r\n"), -400);
    struct http1_parser p;
    struct http1_header f[16];
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n";
    http1_parser_init(&p, true, &lim, f, 16, NULL, NULL);
    assert_int_equal(http1_parse_head(&p, nul, sizeof(nul) - 1), -1);
    assert_int_equal(p.status, 400);
    /* whitespace before the colon, bad names */
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX\t: 5\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\n: 5\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nX(y): 5\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n"), -400);
    /* Host rules */
    assert_int_equal(req_status("GET / HTTP/1.1\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), -400);
    /* versions and methods */
    assert_int_equal(req_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("G@T / HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    /* request-target forms: origin, absolute, and * for OPTIONS only */
    assert_int_equal(req_status("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(req_status("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("OPTIONS *, HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("GET a.example:80 HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("GET http://a.example HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
}

static void test_limits(void **state)
{
    (void)state;
    char buf[2048];
    /* request line over 256 */
    snprintf(buf, sizeof(buf), "GET /%0300d HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    assert_int_equal(req_status(buf), -431);
    /* still incomplete but already too long: refused before the head ends */
    snprintf(buf, sizeof(buf), "GET /%0300d", 0);
    assert_int_equal(req_status(buf), -431);
    /* more than 10 fields */
    strcpy(buf, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < 10; i++)
        strcat(buf, "X-A: b\r\n");
    strcat(buf, "\r\n");
    assert_int_equal(req_status(buf), -431);
    /* head over 1024 bytes */
    snprintf(buf, sizeof(buf), "GET / HTTP/1.1\r\nHost: a\r\nX: %01100d\r\n\r\n", 0);
    assert_int_equal(req_status(buf), -431);
    /* declared body over 100 */
    assert_int_equal(req_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n"), -413);
    /* chunked body growing over 100 */
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    const char *raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    char chunk[200];
    int n = snprintf(chunk, sizeof(chunk), "65\r\n%0101d\r\n", 0);
    size_t used;
    assert_int_equal(http1_parse_body(&p, chunk, (size_t)n, &used), -1);
    assert_int_equal(p.status, 413);
}

static void test_chunked_body_and_pipelining(void **state)
{
    (void)state;
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    const char *raw = "POST /u HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n"
                      "GET /next HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    assert_int_equal(p.head.framing, HTTP1_FRAME_CHUNKED);
    assert_false(p.message_done);
    size_t off = p.head.head_len, used;
    assert_int_equal(http1_parse_body(&p, raw + off, strlen(raw) - off, &used), 1);
    assert_int_equal(b.len, 11);
    assert_memory_equal(b.data, "hello world", 11);
    off += used;
    assert_string_equal(raw + off, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    http1_parser_next(&p);
    assert_int_equal(http1_parse_head(&p, raw + off, strlen(raw) - off), 1);
    assert_int_equal(p.head.target_len, 5);
    assert_memory_equal(p.head.target, "/next", 5);

    /* a malformed chunk size is refused */
    struct body b2 = {.len = 0};
    raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b2), 1);
    off = p.head.head_len;
    assert_int_equal(http1_parse_body(&p, raw + off, strlen(raw) - off, &used), -1);
    assert_int_equal(p.status, 400);
}

/* Feeds `body` to a parser that read `head`, cut into two buffers at `cut`. Returns the last
 * parse_body result; the decoded bytes land in b. */
static int feed_split(bool is_request, const char *head, const char *body, size_t cut,
                      struct body *b, int *status)
{
    static const struct http1_limits big = {
        .max_request_line = 256, .max_header_count = 10, .max_header_bytes = 1024};
    struct http1_parser p;
    struct http1_header f[16];
    http1_parser_init(&p, is_request, &big, f, 16, collect, b);
    if (http1_parse_head(&p, head, strlen(head)) != 1)
        return -2;
    size_t len = strlen(body), used;
    int r = http1_parse_body(&p, body, cut, &used);
    if (r == 0)
        r = http1_parse_body(&p, body + cut, len - cut, &used);
    *status = p.status;
    return r;
}

/* A chunked request head and a chunked response head: dir 0 and 1 below. */
static const char *const chunked_heads[2] = {
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"};

/* `body` after a chunked head (dir 0: request, 1: response) is refused (400 / 502) wherever a
 * read boundary cuts it in two. */
static void expect_refused_at_every_cut(int dir, const char *body)
{
    for (size_t cut = 0; cut <= strlen(body); cut++) {
        struct body b = {.len = 0};
        int status = 0;
        int r = feed_split(dir == 0, chunked_heads[dir], body, cut, &b, &status);
        if (r != -1)
            fprintf(stderr, "%s body \"%s\" cut at %zu: %d\n", dir ? "response" : "request", body,
                    cut, r);
        assert_int_equal(r, -1);
        assert_int_equal(status, dir == 0 ? 400 : 502);
    }
}

/* llhttp as built skips the 2 bytes after a chunk's data unchecked: we check them, in either
 * direction and wherever a read boundary falls (issue 9 item 4). */
static void test_chunk_data_must_end_in_crlf(void **state)
{
    (void)state;
    static const char *const bad[] = {"3\r\nabcXY0\r\n\r\n", "3\r\nabcdef\r\n0\r\n\r\n",
                                      "3\r\nabc\rX0\r\n\r\n", "3\r\nabc\n\r0\r\n\r\n",
                                      "2\r\nab\r\n3\r\nabc\r\r\n0\r\n\r\n"};
    for (int dir = 0; dir < 2; dir++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            expect_refused_at_every_cut(dir, bad[i]);
            /* all in one buffer: the chunk's bytes are not even passed on */
            struct body b = {.len = 0};
            int status = 0;
            assert_int_equal(
                feed_split(dir == 0, chunked_heads[dir], bad[i], strlen(bad[i]), &b, &status), -1);
            assert_true(b.len < 3 || i == 4);
        }
        /* the well-formed body still parses, whatever the cut */
        const char *good = "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        for (size_t cut = 0; cut <= strlen(good); cut++) {
            struct body b = {.len = 0};
            int status = 0;
            assert_int_equal(feed_split(dir == 0, chunked_heads[dir], good, cut, &b, &status), 1);
            assert_int_equal(b.len, 5);
            assert_memory_equal(b.data, "abcde", 5);
        }
    }
}

/* llhttp as built takes a bare LF (and a lone CR) as a line end in the trailer section after
 * the last chunk: refused in either direction wherever a read boundary falls, while good
 * trailers still end the message exactly where they end. */
static void test_chunked_trailer_line_ends(void **state)
{
    (void)state;
    static const char *const bad[] = {"0\r\n\n",           "0\r\nX: y\n\r\n",
                                      "1\r\na\r\n0\r\n\n", "0\r\nX: y\r\nZ: w\n\r\n",
                                      "0\r\n\rX",          "0\r\nX: y\rZ\r\n\r\n"};
    for (int dir = 0; dir < 2; dir++) {
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
            expect_refused_at_every_cut(dir, bad[i]);
        static const char *const good[] = {"0\r\n\r\n", "0\r\nX: y\r\n\r\n",
                                           "2\r\nab\r\n0\r\nX: y\r\nZ: w\r\n\r\n"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            for (size_t cut = 0; cut <= strlen(good[i]); cut++) {
                struct body b = {.len = 0};
                int status = 0;
                assert_int_equal(
                    feed_split(dir == 0, chunked_heads[dir], good[i], cut, &b, &status), 1);
            }
        }
    }
    /* the bytes after a good trailer are the next request, whole */
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    static const struct http1_limits small = {
        .max_request_line = 256, .max_header_count = 10, .max_header_bytes = 64};
    const char *raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "0\r\nX: y\r\n\r\nGET / HTTP/1.1\r\n";
    http1_parser_init(&p, true, &small, f, 16, collect, &b);
    assert_int_equal(http1_parse_head(&p, raw, strlen(raw)), 1);
    size_t off = p.head.head_len, used;
    assert_int_equal(http1_parse_body(&p, raw + off, strlen(raw) - off, &used), 1);
    assert_string_equal(raw + off + used, "GET / HTTP/1.1\r\n");
    /* a trailer section is bounded like a head */
    char big[200];
    int n = snprintf(big, sizeof(big), "0\r\nX: %080d\r\n\r\n", 0);
    http1_parser_init(&p, true, &small, f, 16, collect, &b);
    assert_int_equal(http1_parse_head(&p, raw, strlen(raw)), 1);
    assert_int_equal(http1_parse_body(&p, big, (size_t)n, &used), -1);
    assert_int_equal(p.status, 431);
}

/* What llhttp 8.1 accepts as Debian builds it (without LLHTTP_STRICT_MODE) and its strict
 * mode refuses, found by running both builds over the same inputs: each is refused here. */
static void test_llhttp_loose_mode_covered(void **state)
{
    (void)state;
    /* header names with a space in or before the colon: our raw scan */
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHo st: a\r\n\r\n"), -400);
    assert_int_equal(req_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), -400);
    assert_int_equal(resp_status("HTTP/1.1 200 OK\r\nContent Length: 0\r\n\r\n"), -502);
    /* HTAB and control bytes inside the request-target: our raw scan */
    assert_int_equal(req_status("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    assert_int_equal(req_status("GET /a\x0c HTTP/1.1\r\nHost: a\r\n\r\n"), -400);
    /* the two bytes after chunk data: test_chunk_data_must_end_in_crlf */
    /* bare LF or lone CR in the chunked trailer section: test_chunked_trailer_line_ends */
}

static void test_responses(void **state)
{
    (void)state;
    assert_int_equal(resp_status("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), 1);
    assert_int_equal(
        resp_status("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n"), -502);
    assert_int_equal(
        resp_status("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"),
        -502);
    assert_int_equal(resp_status("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), -502);
    assert_int_equal(resp_status("HTTP/1.1 200 OK\nContent-Length: 2\r\n\r\n"), -502);
    assert_int_equal(resp_status("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), -502);
    assert_int_equal(resp_status("HTTP/1.1 200 OK\r\nX : a\r\n\r\n"), -502);
    assert_int_equal(resp_status("HTTP/1.1 2000 OK\r\n\r\n"), -502);

    struct http1_parser p;
    struct http1_header f[16];
    http1_parser_init(&p, false, &lim, f, 16, NULL, NULL);
    assert_int_equal(http1_parse_head(&p, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", 30), 1);
    assert_int_equal(p.head.framing, HTTP1_FRAME_CLOSE);
    assert_false(p.head.keep_alive);
    http1_parser_init(&p, false, &lim, f, 16, NULL, NULL);
    p.skip_body = true; /* answer to HEAD */
    const char *r = "HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n";
    assert_int_equal(http1_parse_head(&p, r, strlen(r)), 1);
    assert_true(p.message_done);
    assert_true(p.head.has_length);
    assert_int_equal(p.head.framing, HTTP1_FRAME_NONE);
}

static bool contains(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static void test_request_rewrite(void **state)
{
    (void)state;
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    const char *raw = "GET http://app.gw/x?y HTTP/1.1\r\nHost: other.gw\r\n"
                      "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                      "TE: trailers\r\nProxy-Connection: x\r\nX-Forwarded-For: 6.6.6.6\r\n"
                      "X-Forwarded-Proto: https\r\nX-Forwarded-Host: evil\r\nAccept: */*\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    char out[2048];
    struct http1_forward fwd = {
        .client_ip = "10.1.2.3", .proto = "http", .host = "app.gw", .host_len = 6};
    int n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    assert_true(n > 0);
    out[n] = '\0';
    assert_true(strncmp(out, "GET /x?y HTTP/1.1\r\n", 19) == 0);
    assert_true(contains(out, "\r\nHost: app.gw\r\n"));
    assert_false(contains(out, "other.gw"));
    assert_true(contains(out, "\r\nAccept: */*\r\n"));
    assert_true(contains(out, "\r\nX-Forwarded-For: 10.1.2.3\r\n"));
    assert_true(contains(out, "\r\nX-Forwarded-Proto: http\r\n"));
    assert_true(contains(out, "\r\nX-Forwarded-Host: app.gw\r\n"));
    assert_false(contains(out, "6.6.6.6"));
    assert_false(contains(out, "evil"));
    assert_false(contains(out, "X-Secret"));
    assert_false(contains(out, "Keep-Alive"));
    assert_false(contains(out, "TE:"));
    assert_false(contains(out, "Proxy-Connection"));
    assert_false(contains(out, "Connection"));
    assert_true(n > 4 && strcmp(out + n - 4, "\r\n\r\n") == 0);

    /* a trusted peer's chain is kept and extended */
    fwd.trusted_peer = true;
    n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    out[n] = '\0';
    assert_true(contains(out, "\r\nX-Forwarded-For: 6.6.6.6, 10.1.2.3\r\n"));
    assert_true(contains(out, "\r\nX-Forwarded-Proto: https\r\n"));
    assert_true(contains(out, "\r\nX-Forwarded-Host: evil\r\n"));

    /* framing regenerated, upgrade kept */
    raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    out[n] = '\0';
    assert_true(contains(out, "\r\nTransfer-Encoding: chunked\r\n"));
    raw = "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    assert_true(p.head.upgrade);
    n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    out[n] = '\0';
    assert_true(contains(out, "\r\nConnection: upgrade\r\nUpgrade: websocket\r\n"));
    /* too small a buffer is refused, not overrun */
    assert_int_equal(http1_build_request(&p.head, &fwd, out, 20), -1);
}

/* RFC 7239 Forwarded: ours replaces the client's, IPv6 and host:port quoted; a trusted
 * peer's list is extended; *_len gives the exact size of what is written. */
static void test_forwarded_rewrite(void **state)
{
    (void)state;
    struct http1_parser p;
    struct http1_header f[16];
    struct body b = {.len = 0};
    const char *raw = "GET / HTTP/1.1\r\nHost: app.gw:8080\r\nForwarded: for=6.6.6.6\r\n"
                      "X-Real-IP: 6.6.6.6\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    char out[2048];
    struct http1_forward fwd = {"2001:db8::1", false, "https", "app.gw:8080", 11, NULL, 0};
    int n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    assert_true(n > 0);
    assert_int_equal(http1_request_len(&p.head, &fwd), (size_t)n);
    out[n] = '\0';
    assert_true(
        contains(out, "\r\nForwarded: for=\"[2001:db8::1]\";proto=https;host=\"app.gw:8080\"\r\n"));
    assert_true(contains(out, "\r\nX-Real-IP: 2001:db8::1\r\n"));
    assert_false(contains(out, "6.6.6.6"));
    /* one byte short: refused, never cut */
    assert_int_equal(http1_build_request(&p.head, &fwd, out, (size_t)n - 1), -1);
    fwd = (struct http1_forward){"10.0.0.1", true, "http", "app.gw", 6, NULL, 0};
    n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    out[n] = '\0';
    assert_true(
        contains(out, "\r\nForwarded: for=6.6.6.6, for=10.0.0.1;proto=http;host=app.gw\r\n"));
    assert_true(contains(out, "\r\nX-Real-IP: 6.6.6.6\r\n"));
    /* h2c is no upgrade: Upgrade and HTTP2-Settings go */
    raw = "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
          "HTTP2-Settings: AAMAAABk\r\n\r\n";
    assert_int_equal(parse_req(raw, &p, f, &b), 1);
    assert_false(p.head.upgrade);
    n = http1_build_request(&p.head, &fwd, out, sizeof(out));
    out[n] = '\0';
    assert_false(contains(out, "h2c"));
    assert_false(contains(out, "HTTP2-Settings"));
    assert_false(contains(out, "Upgrade"));
}

static void test_response_rewrite(void **state)
{
    (void)state;
    struct http1_parser p;
    struct http1_header f[16];
    const char *raw = "HTTP/1.1 200 OK\r\nConnection: close, X-Hop\r\nX-Hop: 1\r\n"
                      "Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n";
    http1_parser_init(&p, false, &lim, f, 16, NULL, NULL);
    assert_int_equal(http1_parse_head(&p, raw, strlen(raw)), 1);
    char out[1024];
    int n = http1_build_response(&p.head, HTTP1_FRAME_CHUNKED, true, false, out, sizeof(out));
    out[n] = '\0';
    assert_true(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_true(contains(out, "Content-Type: text/plain\r\n"));
    assert_true(contains(out, "Transfer-Encoding: chunked\r\n"));
    assert_false(contains(out, "X-Hop"));
    assert_false(contains(out, "Connection"));
    /* an HTTP/1.0 client gets the body until close */
    n = http1_build_response(&p.head, HTTP1_FRAME_CLOSE, false, true, out, sizeof(out));
    out[n] = '\0';
    assert_false(contains(out, "Transfer-Encoding"));
    assert_true(contains(out, "Connection: close\r\n"));
    n = http1_build_local(404, "no such name", true, false, NULL, out, sizeof(out));
    out[n] = '\0';
    assert_true(strncmp(out, "HTTP/1.1 404 Not Found\r\n", 24) == 0);
    assert_true(contains(out, "Content-Length: 13\r\n"));
    assert_true(contains(out, "\r\n\r\nno such name\n"));
}

static void test_host_normalize(void **state)
{
    (void)state;
    char out[256];
    assert_int_equal(http1_host_normalize("App.Example.COM:8080", 20, out, sizeof(out)), 15);
    assert_string_equal(out, "app.example.com");
    assert_int_equal(http1_host_normalize("app.example.com.", 16, out, sizeof(out)), 15);
    assert_int_equal(http1_host_normalize("[::1]:80", 8, out, sizeof(out)), 5);
    assert_string_equal(out, "[::1]");
    assert_int_equal(http1_host_normalize("a b", 3, out, sizeof(out)), -1);
    assert_int_equal(http1_host_normalize("a:x", 3, out, sizeof(out)), -1);
    assert_int_equal(http1_host_normalize(":80", 3, out, sizeof(out)), -1);
    assert_int_equal(http1_host_normalize("a/b", 3, out, sizeof(out)), -1);
}

/* The raw scan goes a word at a time and jumps to the first byte it flagged: a control byte,
 * DEL, a bare LF or a lone CR at any offset of a value (every alignment of the word) is still
 * refused, and an HTAB or a byte above 0x7f still allowed. */
static void test_control_byte_at_every_offset(void **state)
{
    static const char bad[] = {'\001', '\037', '\177', '\n', '\r'};
    char raw[128], value[40];

    (void)state;
    for (size_t at = 0; at < 24; at++) {
        memset(value, 'v', sizeof(value));
        value[24] = '\0';
        for (size_t b = 0; b < sizeof(bad); b++) {
            value[at] = bad[b];
            snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX: w%s\r\n\r\n", value);
            assert_int_equal(req_status(raw), -400);
        }
        value[at] = '\t';
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX: w%s\r\n\r\n", value);
        assert_true(req_status(raw) > 0);
        value[at] = (char)0xe9;
        snprintf(raw, sizeof(raw), "GET / HTTP/1.1\r\nHost: a\r\nX: w%s\r\n\r\n", value);
        assert_true(req_status(raw) > 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests_parse),
        cmocka_unit_test(test_smuggling_cl_te),
        cmocka_unit_test(test_smuggling_bytes),
        cmocka_unit_test(test_control_byte_at_every_offset),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_chunked_body_and_pipelining),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_chunk_data_must_end_in_crlf),
        cmocka_unit_test(test_chunked_trailer_line_ends),
        cmocka_unit_test(test_llhttp_loose_mode_covered),
        cmocka_unit_test(test_request_rewrite),
        cmocka_unit_test(test_forwarded_rewrite),
        cmocka_unit_test(test_response_rewrite),
        cmocka_unit_test(test_host_normalize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
