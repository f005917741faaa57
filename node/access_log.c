/*
 * access_log.c - per-worker rings and the one writer thread of the access log (see
 * access_log.h for the design).
 *
 * A ring is a power-of-two byte buffer with one producer (its worker) and one consumer (the
 * writer): the worker publishes whole lines by moving `head` forward with a release store, the
 * writer frees space by moving `tail` the same way. Neither side ever waits for the other. A
 * worker that finds no room drops its line and counts it; one that fills its ring past half
 * wakes the writer through an eventfd (at most once per writer pass, so at most one syscall
 * per half ring). Rings are created by their worker on its first line, so the log needs no
 * worker count.
 *
 * The writer copies whole lines from every ring into its stage buffer and writes the stage to
 * the sink, waiting for a slow sink at most ACCESS_FLUSH_MS at a time so that it keeps
 * answering reopen and stop requests. While the sink takes nothing the stage stays full, the
 * rings fill, and the workers drop: memory stays at workers x ring + stage.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "node/access_log.h"
#include "node/log_format.h"

#define ACCESS_STAGE_BYTES (256 * 1024) /* what the writer hands the sink at most at once */
#define ACCESS_ERROR_EVERY_S 10         /* a failing sink is reported at most this often */

struct access_ring {
    _Alignas(64) _Atomic size_t head;      /* bytes published by the worker */
    _Alignas(64) _Atomic size_t tail;      /* bytes taken by the writer */
    _Alignas(64) _Atomic uint64_t dropped; /* lines that found no room (worker writes) */
    atomic_bool nudged;                    /* the worker woke the writer since its last pass */
    time_t ts_sec;                         /* the worker's cached second ... */
    char ts[NODE_LOG_TS_MAX];              /* ... as "YYYY-MM-DDTHH:MM:SS" */
    size_t ts_len;                         /* its length */
    size_t mask;                           /* capacity - 1 */
    char *buf;                             /* capacity bytes */
};

struct access_log {
    struct access_ring *_Atomic rings[PROXY_WORKERS_MAX]; /* by worker index, made lazily */
    size_t ring_bytes;                                    /* capacity of each ring */
    _Atomic int format;                                   /* enum node_log_format */
    atomic_bool enabled;                                  /* lines are wanted at all */
    atomic_bool bare;                                     /* no daemon prefix (syslog) */
    int wake_fd;                                          /* eventfd: wakes the writer */
    pthread_t writer;                                     /* the one thread at the sink */
    atomic_bool stopping;                                 /* access_log_stop was called */
    pthread_mutex_t lock;            /* guards pending and reopen (control loop, writer) */
    char pending[NODE_PATH_MAX + 8]; /* dest to switch to ("syslog:" and a path) */
    bool reopen;                     /* the writer reopens (pending) on its next pass */
    struct access_sink sink;         /* writer only, after start */
    char *stage;                     /* writer only: lines taken from the rings */
    size_t stage_len;                /* bytes in stage */
    time_t error_logged;             /* writer only: when a sink failure was last logged */
    _Atomic uint64_t written;        /* lines the sink took */
    _Atomic uint64_t writer_dropped; /* lines lost in a failed sink or at stop */
};

/* Lines wanted for this dest and level: stderr follows the daemon's level as it always did
 * (info shows them), a file or syslog was asked for explicitly. */
static bool access_wanted(enum access_sink_kind kind, enum node_log_level level)
{
    return kind != ACCESS_SINK_OFF && (kind != ACCESS_SINK_STDERR || level <= NODE_LOG_INFO);
}

static void access_wake(struct access_log *al)
{
    uint64_t one = 1;
    ssize_t rc = write(al->wake_fd, &one, sizeof(one)); /* EAGAIN: already pending */
    (void)rc;
}

static size_t count_lines(const char *p, size_t len)
{
    size_t n = 0;
    for (const char *end = p + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
        n++;
    return n;
}

/* ---- the worker side ------------------------------------------------------------------ */

static struct access_ring *ring_new(size_t bytes)
{
    struct access_ring *r = aligned_alloc(64, sizeof(*r));

    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    r->buf = malloc(bytes);
    if (!r->buf) {
        free(r);
        return NULL;
    }
    r->mask = bytes - 1;
    r->ts_sec = -1;
    return r;
}

void access_log_entry(void *log, const struct proxy_access_entry *e)
{
    struct access_log *al = log;
    struct access_ring *r;
    char line[ACCESS_LINE_MAX], ts[NODE_LOG_TS_MAX];
    struct timespec now;
    size_t len, head, tail, cap, off, first;

    if (!atomic_load_explicit(&al->enabled, memory_order_relaxed) || e->worker >= PROXY_WORKERS_MAX)
        return;
    r = atomic_load_explicit(&al->rings[e->worker], memory_order_relaxed);
    if (!r) { /* only this worker stores this slot */
        r = ring_new(al->ring_bytes);
        if (!r)
            return;
        atomic_store_explicit(&al->rings[e->worker], r, memory_order_release);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    if (now.tv_sec != r->ts_sec) { /* strftime once a second, not once a request */
        r->ts_sec = now.tv_sec;
        r->ts_len = node_log_ts_seconds(now.tv_sec, r->ts);
    }
    memcpy(ts, r->ts, r->ts_len);
    {
        long ms = now.tv_nsec / 1000000; /* ".mmmZ" by hand: no printf per request */
        char *t = ts + r->ts_len;
        t[0] = '.';
        t[1] = (char)('0' + ms / 100);
        t[2] = (char)('0' + ms / 10 % 10);
        t[3] = (char)('0' + ms % 10);
        t[4] = 'Z';
        t[5] = '\0';
    }
    len = access_format(e, ts, atomic_load_explicit(&al->format, memory_order_relaxed),
                        atomic_load_explicit(&al->bare, memory_order_relaxed), line);

    cap = r->mask + 1;
    head = atomic_load_explicit(&r->head, memory_order_relaxed);
    tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    if (cap - (head - tail) < len) {
        atomic_store_explicit(&r->dropped,
                              atomic_load_explicit(&r->dropped, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        return;
    }
    off = head & r->mask;
    first = len < cap - off ? len : cap - off;
    memcpy(r->buf + off, line, first);
    memcpy(r->buf, line + first, len - first);
    atomic_store_explicit(&r->head, head + len, memory_order_release);
    if (head + len - tail > cap / 2 &&
        !atomic_exchange_explicit(&r->nudged, true, memory_order_relaxed))
        access_wake(al);
}

/* ---- the writer ------------------------------------------------------------------------- */

/* Moves whole lines from every ring into the stage, as many as fit. */
static void writer_collect(struct access_log *al)
{
    for (size_t i = 0; i < PROXY_WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load_explicit(&al->rings[i], memory_order_acquire);
        size_t head, tail, n, off, first;
        if (!r)
            continue;
        atomic_store_explicit(&r->nudged, false, memory_order_relaxed);
        head = atomic_load_explicit(&r->head, memory_order_acquire);
        tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
        n = head - tail;
        if (n > ACCESS_STAGE_BYTES - al->stage_len)
            n = ACCESS_STAGE_BYTES - al->stage_len;
        if (n == 0)
            continue;
        off = tail & r->mask;
        first = n < r->mask + 1 - off ? n : r->mask + 1 - off;
        memcpy(al->stage + al->stage_len, r->buf + off, first);
        memcpy(al->stage + al->stage_len + first, r->buf, n - first);
        while (n > 0 && al->stage[al->stage_len + n - 1] != '\n') /* the stage was full */
            n--;
        al->stage_len += n;
        atomic_store_explicit(&r->tail, tail + n, memory_order_release);
    }
}

static bool rings_empty(struct access_log *al)
{
    for (size_t i = 0; i < PROXY_WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load_explicit(&al->rings[i], memory_order_acquire);
        if (r && atomic_load_explicit(&r->head, memory_order_acquire) !=
                     atomic_load_explicit(&r->tail, memory_order_relaxed))
            return false;
    }
    return true;
}

static void writer_drop_stage(struct access_log *al)
{
    atomic_fetch_add_explicit(&al->writer_dropped, count_lines(al->stage, al->stage_len),
                              memory_order_relaxed);
    al->stage_len = 0;
}

static void writer_error(struct access_log *al, const char *what)
{
    time_t now = time(NULL);

    if (now - al->error_logged < ACCESS_ERROR_EVERY_S)
        return;
    al->error_logged = now;
    node_log(NODE_LOG_ERROR, "access", "access log: %s (lines are dropped and counted)", what);
}

/* Switches to the pending dest (SIGHUP, or after a sink failure). A new sink that cannot be
 * opened leaves the old one in place. */
static void writer_reopen(struct access_log *al)
{
    struct access_sink next;
    char dest[NODE_PATH_MAX + 8], err[NODE_ERR_MAX];
    bool reopen;

    pthread_mutex_lock(&al->lock);
    reopen = al->reopen;
    al->reopen = false;
    memcpy(dest, al->pending, sizeof(dest));
    pthread_mutex_unlock(&al->lock);
    if (!reopen)
        return;
    if (access_sink_parse(dest, &next, err, sizeof(err)) != 0 ||
        access_sink_open(&next, err, sizeof(err)) != 0) {
        char what[NODE_ERR_MAX + 64];
        snprintf(what, sizeof(what), "reopen refused, keeping the old sink: %s", err);
        al->error_logged = 0; /* a SIGHUP's outcome is always told */
        writer_error(al, what);
        return;
    }
    access_sink_close(&al->sink);
    al->sink = next;
}

static void writer_flush(struct access_log *al, int wait_ms)
{
    ssize_t n;

    if (al->stage_len == 0)
        return;
    if (al->sink.kind == ACCESS_SINK_OFF) { /* turned off: what was queued goes quietly */
        al->stage_len = 0;
        return;
    }
    n = access_sink_write(&al->sink, al->stage, al->stage_len, wait_ms, al->wake_fd);
    if (n < 0) {
        char what[NODE_PATH_MAX + 128];
        snprintf(what, sizeof(what), "writing to %s: %s",
                 al->sink.kind == ACCESS_SINK_STDERR ? "stderr" : al->sink.path, strerror(errno));
        writer_error(al, what);
        writer_drop_stage(al);
        if (al->sink.kind != ACCESS_SINK_STDERR) { /* a new file or socket may do better */
            pthread_mutex_lock(&al->lock);
            if (!al->reopen) {
                al->reopen = true;
                snprintf(al->pending, sizeof(al->pending), "%s%s",
                         al->sink.kind == ACCESS_SINK_SYSLOG ? "syslog:" : "", al->sink.path);
            }
            pthread_mutex_unlock(&al->lock);
        }
        return;
    }
    atomic_fetch_add_explicit(&al->written, count_lines(al->stage, (size_t)n),
                              memory_order_relaxed);
    memmove(al->stage, al->stage + n, al->stage_len - (size_t)n);
    al->stage_len -= (size_t)n;
}

static uint64_t mono_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void *writer_main(void *arg)
{
    struct access_log *al = arg;
    uint64_t deadline = 0;

    for (;;) {
        uint64_t pending;
        bool stopping = atomic_load(&al->stopping);
        ssize_t rc = read(al->wake_fd, &pending, sizeof(pending)); /* non-blocking */

        (void)rc;
        if (stopping && deadline == 0)
            deadline = mono_ms() + ACCESS_STOP_WAIT_MS;
        writer_reopen(al);
        writer_collect(al);
        writer_flush(al, stopping ? (int)(deadline > mono_ms() ? deadline - mono_ms() : 0)
                                  : ACCESS_FLUSH_MS);
        if (stopping) {
            if (al->stage_len == 0 && rings_empty(al))
                break;
            if (mono_ms() >= deadline) { /* the sink is stuck: count what is left, go */
                do {
                    writer_drop_stage(al);
                    writer_collect(al);
                } while (al->stage_len > 0);
                break;
            }
            continue;
        }
        if (al->stage_len == 0) { /* all written: sleep until the next flush or a nudge */
            struct pollfd p = {.fd = al->wake_fd, .events = POLLIN};
            poll(&p, 1, ACCESS_FLUSH_MS);
        }
    }
    return NULL;
}

/* ---- life cycle and counters ---------------------------------------------------------- */

struct access_log *access_log_start(const char *dest, size_t ring_bytes,
                                    enum node_log_format format, enum node_log_level level,
                                    char *err, size_t errlen)
{
    struct access_log *al = calloc(1, sizeof(*al));
    size_t cap = 4096;

    if (!al) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    al->wake_fd = -1;
    al->sink.fd = -1;
    while (cap < ring_bytes && cap < ((size_t)1 << 30))
        cap <<= 1;
    al->ring_bytes = cap;
    if (access_sink_parse(dest, &al->sink, err, errlen) != 0 ||
        access_sink_open(&al->sink, err, errlen) != 0)
        goto fail;
    al->stage = malloc(ACCESS_STAGE_BYTES);
    al->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!al->stage || al->wake_fd < 0) {
        snprintf(err, errlen, "out of memory or file descriptors");
        goto fail;
    }
    atomic_init(&al->format, (int)format);
    atomic_init(&al->enabled, access_wanted(al->sink.kind, level));
    atomic_init(&al->bare, al->sink.kind == ACCESS_SINK_SYSLOG);
    pthread_mutex_init(&al->lock, NULL);
    if (pthread_create(&al->writer, NULL, writer_main, al) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        pthread_mutex_destroy(&al->lock);
        goto fail;
    }
    return al;
fail:
    access_sink_close(&al->sink);
    if (al->wake_fd >= 0)
        close(al->wake_fd);
    free(al->stage);
    free(al);
    return NULL;
}

int access_log_set(struct access_log *al, const char *dest, enum node_log_format format,
                   enum node_log_level level, char *err, size_t errlen)
{
    struct access_sink next;

    if (access_sink_parse(dest, &next, err, errlen) != 0)
        return -1;
    pthread_mutex_lock(&al->lock);
    snprintf(al->pending, sizeof(al->pending), "%s", dest);
    al->reopen = true;
    pthread_mutex_unlock(&al->lock);
    atomic_store(&al->format, (int)format);
    atomic_store(&al->bare, next.kind == ACCESS_SINK_SYSLOG);
    atomic_store(&al->enabled, access_wanted(next.kind, level));
    access_wake(al);
    return 0;
}

uint64_t access_log_written(const struct access_log *al)
{
    return al ? atomic_load_explicit(&al->written, memory_order_relaxed) : 0;
}

uint64_t access_log_dropped(const struct access_log *al)
{
    uint64_t n;

    if (!al)
        return 0;
    n = atomic_load_explicit(&al->writer_dropped, memory_order_relaxed);
    for (size_t i = 0; i < PROXY_WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load_explicit(&al->rings[i], memory_order_acquire);
        if (r)
            n += atomic_load_explicit(&r->dropped, memory_order_relaxed);
    }
    return n;
}

void access_log_stop(struct access_log *al)
{
    if (!al)
        return;
    atomic_store(&al->stopping, true);
    access_wake(al);
    pthread_join(al->writer, NULL);
    access_sink_close(&al->sink);
    close(al->wake_fd);
    pthread_mutex_destroy(&al->lock);
    for (size_t i = 0; i < PROXY_WORKERS_MAX; i++) {
        struct access_ring *r = atomic_load(&al->rings[i]);
        if (r) {
            free(r->buf);
            free(r);
        }
    }
    free(al->stage);
    free(al);
}
