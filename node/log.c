/*
 * log.c - the daemon's log: one line per event, as text for people or JSON for collectors.
 *
 * Every module logs through node_log so an operator gets one stream with one format. A line
 * is formatted into a stack buffer and written with a single fwrite under the stream lock, so
 * lines from the control loop and the proxy workers never interleave.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "node/node.h"

static enum node_log_format log_format = NODE_LOG_TEXT;
static enum node_log_level log_threshold = NODE_LOG_INFO;
static FILE *log_stream;

static const char *const log_level_names[] = {"debug", "info", "warn", "error"};

void node_log_setup(enum node_log_format format, enum node_log_level level, void *stream)
{
    log_format = format;
    log_threshold = level;
    log_stream = stream;
}

/* Appends `s` to out as the inside of a JSON string; returns the new length. */
static size_t log_json_escape(char *out, size_t len, size_t cap, const char *s)
{
    for (; *s && len + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[len++] = '\\';
            out[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(out + len, cap - len, "\\u%04x", c);
        } else {
            out[len++] = (char)c;
        }
    }
    return len;
}

void node_log(enum node_log_level level, const char *component, const char *fmt, ...)
{
    char msg[1024], line[2560], ts[40];
    struct timespec now;
    struct tm tm;
    FILE *f = log_stream ? log_stream : stderr;
    va_list ap;
    size_t len;

    if (level < log_threshold)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* a message is one line: a newline from an error string would forge a second entry */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    len = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + len, sizeof(ts) - len, ".%03ldZ", now.tv_nsec / 1000000);

    if (log_format == NODE_LOG_JSON) {
        len =
            (size_t)snprintf(line, sizeof(line), "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"",
                             ts, log_level_names[level]);
        len = log_json_escape(line, len, sizeof(line), component);
        len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
        len = log_json_escape(line, len, sizeof(line), msg);
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
