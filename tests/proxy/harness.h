/*
 * harness.h - helpers for the proxy's end-to-end tests: small HTTP backends on loopback
 * (thread per connection, blocking sockets), a blocking HTTP client, and a proxy started
 * in-process on a route table the test fills.
 */
#ifndef WEBGW_TESTS_PROXY_HARNESS_H
#define WEBGW_TESTS_PROXY_HARNESS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proxy/proxy.h"

/* A test backend. Paths it serves:
 *   /id               "backend-N"
 *   /slow?ms=N        "slow" after N ms
 *   /headers          the request head it received, as the body
 *   /download?n=N     N bytes of 'x' with Content-Length, written in 64 KiB pieces
 *   /chunked          "hello world" in three chunks
 *   /bighead/N        "ok" under a response head of exactly N bytes (N >= 64) of "Xnnnn:y"
 *                     fields (no space after the colon)
 *   /upload           reads the body (Content-Length or chunked), answers "received N"
 *   /sha              the same, answering "received N sha256=HEX" of the decoded body
 *   /ws               with Upgrade: answers 101, then echoes every byte until EOF
 *   /close            "bye" without Content-Length, then closes (read-until-close framing)
 *   /reset            resets the connection (RST) once the head is read, before any body
 *   /bad/K            the K-th malformed response (smuggling cases, garbage, unasked 101;
 *                     9 and 10: chunk data not followed by CRLF; 11 and 12: a bare LF
 *                     in the trailer section)
 */
struct tb_server;

struct tb_server *tb_start(int id);
uint16_t tb_port(const struct tb_server *s);
uint64_t tb_requests(const struct tb_server *s); /* requests it received */
uint64_t tb_accepts(const struct tb_server *s);  /* connections it accepted */
/* Connections it is done with: the gateway closed them (EOF or reset seen), or the backend
 * ended them by its own rule (tb_set_conn_life, tb_set_idle_close, /close, /reset ...). */
uint64_t tb_ended(const struct tb_server *s);
/* Makes new connections to it hang in SYN_SENT: its accept queue is filled by a connection of
 * our own and not served. After tb_release_connects() a waiting connect completes at its next
 * SYN retransmission, about 1 s after it started: a backend whose connect completes late. */
void tb_hold_connects(struct tb_server *s);
/* Keep-alive that ends under the gateway (call before any traffic). answers_per_conn > 0: each
 * connection answers that many requests, then reads the next one whole and closes without a
 * word. close_after_ms > 0: after its first answer a connection reads nothing more and closes
 * that long after. 0 turns either off. */
void tb_set_conn_life(struct tb_server *s, unsigned answers_per_conn, unsigned close_after_ms);
/* An idle timeout like Node's keepAliveTimeout (call before any traffic): a connection idle
 * idle_ms after an answer closes; a request that arrives within late_ms of that deadline is
 * noticed too late (a busy loop) and its connection closes without an answer. */
void tb_set_idle_close(struct tb_server *s, unsigned idle_ms, unsigned late_ms);
void tb_release_connects(struct tb_server *s);
/* on: every request but GET and HEAD is read whole, then its connection is reset (RST) without
 * an answer, as by a backend process dying on it. GETs are still answered. */
void tb_set_reset_uploads(struct tb_server *s, bool on);
/* Kills it the hard way: listener closed, every connection reset. */
void tb_kill(struct tb_server *s);
void tb_free(struct tb_server *s); /* kills if needed and joins its threads */

/* A route for host with the given backends (127.0.0.1 ports). */
void th_route(struct state_routes *routes, const char *host, const char *name,
              const uint16_t *ports, int n);

/* Starts a proxy on 127.0.0.1:0 with `cfg` (or defaults with 2 workers when NULL). */
struct proxy *th_proxy(struct state_routes *routes, struct proxy_config *cfg);

/* What most tests stand on: n backends (ids 0..n-1) behind app.localhost (name "app") and a
 * proxy in front of them. */
#define TH_BACKENDS_MAX 4
struct th_fixture {
    struct state_routes *routes;
    struct tb_server *be[TH_BACKENDS_MAX];
    int n;           /* backends started */
    struct proxy *p; /* started with the cfg given to th_fixture_start */
    uint16_t port;   /* its HTTP port */
};

/* Starts the fixture; cfg as th_proxy(). */
void th_fixture_start(struct th_fixture *f, int n, struct proxy_config *cfg);
/* Stops the proxy, frees the backends and the routes. */
void th_fixture_stop(struct th_fixture *f);

/* Monotonic clock in milliseconds, for tests that time what they wait for. */
uint64_t th_now_ms(void);

/* Client. */
int tc_connect(uint16_t port);
void tc_send(int fd, const char *data, size_t len);
void tc_sends(int fd, const char *s);

struct tc_resp {
    int status;      /* 0 when no response could be read */
    char head[4096]; /* the response head */
    char *body;      /* malloc'd, NUL-terminated (NULL when discard) */
    size_t body_len;
    bool closed; /* the connection was closed after the response */
};

/* Reads one response (Content-Length, chunked or until close). Bodies over keep_max bytes are
 * counted but not kept. Returns the status or 0. */
int tc_read(int fd, struct tc_resp *r, size_t keep_max, bool head_request);
void tc_resp_free(struct tc_resp *r);
/* recv(2) that first returns the bytes tc_read() read past a response (after a 101: the
 * tunnel's first bytes). */
ssize_t tc_recv(int fd, char *buf, size_t cap);
/* Exactly len bytes through tc_recv; aborts (the test fails) when the connection ends or errs
 * first. */
void tc_recv_exact(int fd, char *buf, size_t len);
/* True when the peer closes the connection within timeout_ms (after any pending bytes). */
bool tc_closed(int fd, int timeout_ms);

/* One request on a fresh connection; returns the status, body in r. */
int tc_get(uint16_t port, const char *host, const char *path, struct tc_resp *r);

#endif
