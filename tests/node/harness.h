/*
 * harness.h - helpers for the node tests: start real webgw processes on loopback, talk HTTP
 * to them, run webgwctl and capture what it prints.
 */
#ifndef WEBGW_TESTS_NODE_HARNESS_H
#define WEBGW_TESTS_NODE_HARNESS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <uv.h>

#include "node/ctl.h"

#define NT_ENV_MAX 4
/* Pseudo-flag for nt_node_start: start without the harness's cluster key (removed before
 * exec). */
#define NT_NO_CLUSTER_KEY "--nt-no-cluster-key"

struct nt_node {
    pid_t pid;                 /* running webgw, or 0 */
    char ip[32];               /* loopback address it listens on */
    int api_port;              /* --api port */
    int http_port;             /* --http port */
    int https_port;            /* --https port */
    int gossip_port;           /* --gossip port */
    char dir[256];             /* its data dir */
    char log[300];             /* its stderr */
    char api_url[96];          /* http://IP:PORT */
    int stderr_fd;             /* where its stderr goes; 0 = the log file */
    char env[NT_ENV_MAX][300]; /* extra environment of the process ("K=V"; "" ends) */
};

/* The key file every harness node gets unless its flags name one (--cluster-key,
 * --gossip-insecure or NT_NO_CLUSTER_KEY); it overrides a --config file's. */
const char *nt_cluster_key(void);

/* A fresh directory under $TMPDIR (removed by nt_cleanup). */
const char *nt_tmpdir(void);
/* Writes `text` to nt_tmpdir()/name and returns the path (a static buffer, valid until the
 * next call); aborts the test process when the file cannot be written. */
const char *nt_write_tmp(const char *name, const char *text);
struct node_config;
/* Parses "webgw" followed by the NULL-terminated arguments with node_config_from_args
 * (help text to /dev/null); returns its result, the message in err. */
int nt_config_parse(struct node_config *cfg, char *err, size_t errlen, ...);
/* The configuration of a node made in-process (node_new): data dir nt_tmpdir()/name, a fresh
 * loopback port for each of --http, --https, --gossip and --api, `workers` proxy threads, then
 * the `extra` flags (NULL-terminated, may be NULL). Returns what nt_config_parse does. */
int nt_config_local(struct node_config *cfg, const char *name, const char *workers,
                    const char *const *extra, char *err, size_t errlen);
void nt_cleanup(void);

/* A port free on `ip` (IPv4, or IPv6 such as "::1") right now. */
int nt_free_port(const char *ip);

/* Starts webgw on `ip` with fresh ports and a data dir under nt_tmpdir(), plus extra flags
 * (NULL-terminated, may be NULL; an --http or --https among them replaces the harness's
 * listener of that scheme, whose port is then unused); waits until /healthz answers. `name` names
 * the node and its data dir. Returns 0, or -1 (the log is printed). */
int nt_node_start(struct nt_node *n, const char *name, const char *ip, const char *const *extra);
/* nt_node_start with extra environment entries for the process ("K=V", NULL-terminated). */
int nt_node_start_env(struct nt_node *n, const char *name, const char *ip, const char *const *extra,
                      const char *const *env);
/* nt_node_start with the daemon's stderr on `stderr_fd` instead of its log file (stdout
 * still goes to the log). */
int nt_node_start_stderr(struct nt_node *n, const char *name, const char *ip,
                         const char *const *extra, int stderr_fd);
/* Starts it again on the same ports and data dir. */
int nt_node_restart(struct nt_node *n, const char *const *extra);
/* Sends `sig` and waits up to timeout_ms for the exit; returns the exit status, 128+signal
 * when killed, -1 on timeout (then it is killed). */
int nt_node_stop(struct nt_node *n, int sig, int timeout_ms);

/* One HTTP request to the node's API; returns the status (0 when unreachable). */
int nt_api(const struct nt_node *n, const char *method, const char *path, const char *ctype,
           const void *body, size_t len, struct ctl_response *resp);

/* Raw bytes to ip:port (IPv6 when ip has a colon); reads the answer until close or timeout into out
 * (NUL-terminated). Returns the status of the first answer, or 0. */
int nt_raw(const char *ip, int port, const void *req, size_t len, char *out, size_t cap);

/* Runs a program (argv[0] relative to $WEBGW_BIN) with extra env entries ("K=V", NULL-
 * terminated), capturing stdout and stderr. Returns the exit status. */
int nt_run(const char *const *argv, const char *const *env, char *out, size_t outcap, char *err,
           size_t errcap);

/* webgwctl --api api_url followed by the NULL-terminated arguments (at most 28), with extra env
 * entries as nt_run (the owner key is usually one: "WEBGW_KEY=path"), capturing stdout and stderr
 * into out and err. Returns the exit status. nt_ctlv takes the arguments as a va_list. */
int nt_ctl(const char *const *env, char *out, size_t outcap, char *err, size_t errcap,
           const char *api_url, ...);
int nt_ctlv(const char *const *env, char *out, size_t outcap, char *err, size_t errcap,
            const char *api_url, va_list ap);

/* ---- clocks a day behind (the trust tests) ---------------------------------------------- */

#define NT_FAKETIME_LIB "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
/* The environment of a process whose clock runs a day behind (an ASan build refuses a preloaded
 * library ahead of its runtime unless told not to check); NULL-terminated. */
extern const char *const nt_day_behind_env[];
/* True when libfaketime is installed; otherwise says how to install it on stderr. */
bool nt_have_faketime(void);

/* webgwctl as the owner whose key is nt_tmpdir()/keyfile (optionally with a clock a day behind)
 * against api, arguments NULL-terminated; out and err as nt_ctl. Returns the exit status. */
int nt_ctl_owner(char *out, size_t outcap, char *err, size_t errcap, const char *api,
                 const char *keyfile, bool day_behind, ...);

/* Whether node n lists `name` held by `owner` (hex) with exactly one contender, and serves it
 * from a backend whose answer contains `tag`. TRUST_DEBUG=1 prints each view. */
bool nt_holds(const struct nt_node *n, const char *name, const char *owner, const char *tag);

/* $WEBGW_BIN/name into out. */
void nt_bin(const char *name, char *out, size_t cap);

#endif

/* A tiny HTTP backend on ip:port (port 0 picks one), a thread per connection, keep-alive:
 * every request is answered 200 with body "<tag>\n" after delay_ms. */
struct nt_backend;
struct nt_backend *nt_backend_start(const char *ip, const char *tag, int delay_ms);
/* The same on a given port (a backend that comes back where it was). */
struct nt_backend *nt_backend_start_port(const char *ip, int port, const char *tag, int delay_ms);
int nt_backend_port(const struct nt_backend *b);
unsigned long nt_backend_requests(const struct nt_backend *b);
void nt_backend_stop(struct nt_backend *b);

/* GET http://ip:port/path with Host: host on a new connection. Returns the status (0 when
 * nothing came back) and copies the body into body[cap]. */
int nt_get(const char *ip, int port, const char *host, const char *path, char *body, size_t cap);

/* Whether the file (a node's log) holds `what` in its first MiB. */
bool nt_file_has(const char *path, const char *what);

/* Polls until `cond(ctx)` is true or timeout_ms passes. */
bool nt_wait(bool (*cond)(void *ctx), void *ctx, int timeout_ms);

/* ---- a fleet member played by the test process (gossip_member.c) ----------------------- */

struct gossip;
struct gossip_callbacks;
struct state_key;

/* Opens a gossip member `id` (also its metadata name) on 127.0.0.1 under the cluster key in
 * keyfile, announcing witness's public key when witness is not NULL, with callbacks cb (may be
 * NULL), and starts its join through seed ("IP:PORT"). NULL, with the reason on stderr, on
 * failure. Run `loop` (nt_spin) for it to make progress; gossip_uv_close() it at the end. */
struct gossip *nt_gossip_member(uv_loop_t *loop, const char *id, const char *keyfile,
                                const struct state_key *witness, const char *seed,
                                const struct gossip_callbacks *cb);

/* Runs `loop` without blocking for about ms milliseconds (10 ms steps). */
void nt_spin(uv_loop_t *loop, int ms);
