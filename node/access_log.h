/*
 * access_log.h - the access log: one line per answered request, written without ever making
 * a proxy worker wait (private to node/).
 *
 *   access_log.c     per-worker rings, the one writer thread, drops, reopen
 *   access_format.c  an entry as a text line or a JSON object
 *   access_sink.c    where lines go: stderr, a file (reopened on SIGHUP), syslog
 *
 * A worker formats its line into its own ring (single producer, single consumer, no lock):
 * when the ring is full the line is dropped and counted. One writer thread empties the rings
 * every ACCESS_FLUSH_MS, or sooner when a ring passes half full, and is the only one that
 * touches the sink, so a sink that blocks (a full pipe, a slow disk, syslog under pressure)
 * stalls the writer alone: the rings fill, lines are dropped and counted, requests go on.
 */
#ifndef WEBGW_NODE_ACCESS_LOG_H
#define WEBGW_NODE_ACCESS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "node/node.h"
#include "proxy/proxy.h"

#define ACCESS_FLUSH_MS 100      /* the writer empties the rings at least this often */
#define ACCESS_LINE_MAX 4096     /* longest line, newline and NUL included */
#define ACCESS_STOP_WAIT_MS 2000 /* at stop, how long the writer waits for a stuck sink */
#define ACCESS_SYSLOG_PATH "/dev/log"

/* ---- sinks (access_sink.c) ------------------------------------------------------------- */

enum access_sink_kind {
    ACCESS_SINK_OFF = 0,    /* "off": no access lines */
    ACCESS_SINK_STDERR = 1, /* "stderr" (default): shared with the daemon's own log lines */
    ACCESS_SINK_FILE = 2,   /* a path: appended to, created 0640, reopened on SIGHUP */
    ACCESS_SINK_SYSLOG = 3, /* "syslog" or "syslog:SOCKET": datagrams to /dev/log or SOCKET */
};

struct access_sink {
    enum access_sink_kind kind; /* what dest named */
    char path[NODE_PATH_MAX];   /* the file, or the syslog socket */
    int fd;                     /* -1 while closed */
    bool pipe_like;             /* not a regular file: writes of at most PIPE_BUF, whole lines,
                                   so they never interleave with another writer's */
    bool socket;                /* a stream socket (stderr under systemd): send MSG_DONTWAIT */
    pid_t pid;                  /* in syslog lines */
};

/* Parses an --access-log value into its kind and path without opening anything. Returns 0,
 * or -1 with "expected ..." in err. */
int access_sink_parse(const char *dest, struct access_sink *out, char *err, size_t errlen);

/* Opens what access_sink_parse filled. Returns 0, or -1 with err naming the path and errno. */
int access_sink_open(struct access_sink *s, char *err, size_t errlen);

/* Closes it (stderr is left open). */
void access_sink_close(struct access_sink *s);

/* Writes a prefix of buf[0..len), which holds whole lines, waiting for the sink at most
 * wait_ms in all and returning early when wake_fd becomes readable. Returns the bytes written
 * (whole lines, unless the kernel took part of one: the caller writes the rest next time; 0
 * when the sink had no room in time), or -1 with errno set when the sink failed (the caller
 * drops those lines and reopens the sink). */
ssize_t access_sink_write(struct access_sink *s, const char *buf, size_t len, int wait_ms,
                          int wake_fd);

/* ---- formatting (access_format.c) ------------------------------------------------------ */

/* Writes one line for `e` into out[ACCESS_LINE_MAX], newline included, and returns its
 * length. ts is the wall-clock time as "YYYY-MM-DDTHH:MM:SS.mmmZ". Text: the daemon's line
 * ("TS info  access: ") unless bare (syslog adds its own), then time= client= host= name=
 * method= path= status= bytes_in= bytes_out= backend= duration_ms= [cut=1], "-" for an empty
 * value. JSON: an object with ts, level, component and one member per field (null for an empty
 * one), escaped as node_log_json_escape does. */
size_t access_format(const struct proxy_access_entry *e, const char *ts,
                     enum node_log_format format, bool bare, char *out);

/* ---- the log (access_log.c) ------------------------------------------------------------ */

struct access_log; /* the rings, the writer thread, the sink */

/* Starts the log: `dest` as --access-log takes it, `ring_bytes` per worker (rounded up to a
 * power of two, at least 4096). Lines to stderr are written only while `level` is info or
 * debug, as the daemon always did; a file or syslog gets them whatever the level. Returns NULL
 * with err set when the sink cannot be opened. */
struct access_log *access_log_start(const char *dest, size_t ring_bytes,
                                    enum node_log_format format, enum node_log_level level,
                                    char *err, size_t errlen);

/* The proxy's access callback (proxy_access_fn), on worker threads: formats into the
 * worker's ring, or counts a drop. Never blocks, never takes a lock. */
void access_log_entry(void *log, const struct proxy_access_entry *e);

/* SIGHUP (control loop): format and level apply to the next lines; the writer reopens the
 * sink (a file after logrotate renamed it, or another dest) on its next pass, and keeps the
 * old one, with one error line, when the new one cannot be opened. Returns 0, or -1 with err
 * set when dest does not parse (nothing changes). */
int access_log_set(struct access_log *log, const char *dest, enum node_log_format format,
                   enum node_log_level level, char *err, size_t errlen);

/* Counters for /metrics: lines written to the sink, lines dropped (a full ring, a failed or
 * stuck sink). */
uint64_t access_log_written(const struct access_log *log);
uint64_t access_log_dropped(const struct access_log *log);

/* Once no worker calls access_log_entry any more: writes what the rings hold (waiting at most
 * ACCESS_STOP_WAIT_MS for a stuck sink), stops the writer, closes the sink, frees. NULL is a
 * no-op. */
void access_log_stop(struct access_log *log);

#endif
