/*
 * log.c - the daemon's log: one line per event, as text for people or JSON for collectors.
 *
 * Every module logs through node_log so an operator gets one stream with one format. A line
 * is formatted into a stack buffer and written with a single fwrite under the stream lock, so
 * lines from the control loop and the proxy workers never interleave.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node/log_format.h"
#include "node/node.h"

/* Set by the control loop (start, SIGHUP), read by every thread that logs (the probe thread,
 * the access log's writer): atomics, each read once per line. */
static _Atomic int log_format = NODE_LOG_TEXT;
static _Atomic int log_threshold = NODE_LOG_INFO;
static FILE *_Atomic log_stream;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void node_log_setup(enum node_log_format format, enum node_log_level level, void *stream)
{
    atomic_store_explicit(&log_format, (int)format, memory_order_relaxed);
    atomic_store_explicit(&log_threshold, (int)level, memory_order_relaxed);
    atomic_store_explicit(&log_stream, (FILE *)stream, memory_order_release);
}

size_t node_log_ts_seconds(time_t t, char *out)
{
    struct tm tm;

    gmtime_r(&t, &tm);
    return strftime(out, NODE_LOG_TS_MAX, "%Y-%m-%dT%H:%M:%S", &tm);
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, no surrogates, at most
 * U+10FFFF), or 0 when s does not start one. */
static size_t log_utf8_len(const unsigned char *s)
{
    if (s[0] >= 0xc2 && s[0] <= 0xdf)
        return (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (s[0] >= 0xe0 && s[0] <= 0xef) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f))
            return 0;
        return 3;
    }
    if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
            return 0;
        return 4;
    }
    return 0;
}

size_t node_log_json_escape(char *out, size_t len, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;

    while (*p && len + 8 < cap) {
        size_t n = *p >= 0x80 ? log_utf8_len(p) : 1;
        if (n > 1) {
            memcpy(out + len, p, n);
            len += n;
            p += n;
            continue;
        }
        if (*p == '"' || *p == '\\') {
            out[len++] = '\\';
            out[len++] = (char)*p;
        } else if (*p < 0x20 || *p >= 0x7f) {
            memcpy(out + len, "\\u00", 4);
            out[len + 4] = hex[*p >> 4];
            out[len + 5] = hex[*p & 0xf];
            len += 6;
        } else {
            out[len++] = (char)*p;
        }
        p++;
    }
    return len;
}

void node_log(enum node_log_level level, const char *component, const char *fmt, ...)
{
    char msg[1024], line[2560], ts[NODE_LOG_TS_MAX];
    struct timespec now;
    FILE *f;
    va_list ap;
    size_t len;

    if ((int)level < atomic_load_explicit(&log_threshold, memory_order_relaxed))
        return;
    f = atomic_load_explicit(&log_stream, memory_order_acquire);
    if (!f)
        f = stderr;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* a message is one line: a newline from an error string would forge a second entry */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    clock_gettime(CLOCK_REALTIME, &now);
    len = node_log_ts_seconds(now.tv_sec, ts);
    snprintf(ts + len, sizeof(ts) - len, ".%03ldZ", now.tv_nsec / 1000000);

    if (atomic_load_explicit(&log_format, memory_order_relaxed) == NODE_LOG_JSON) {
        len =
            (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
                             ts, log_level_names[level]);
        len = node_log_json_escape(line, len, sizeof(line), component);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
        len = node_log_json_escape(line, len, sizeof(line), msg);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\"}\n");
    } else {
        len = (size_t)snprintf(line, sizeof(line), "%s %-5s %s: %s\n", ts, log_level_names[level],
                               component, msg);
    }
    if (len >= sizeof(line))
        len = sizeof(line) - 1;
    flockfile(f);
    fwrite(line, 1, len, f);
    fflush(f);
    funlockfile(f);
}
