/*
 * access_format.c - one access-log line from one answered request, as text (key=value, the
 * shape the daemon always wrote) or as a JSON object with a member per field, for collectors.
 *
 * Runs on the proxy worker that answered the request, so it is plain appends into a caller's
 * buffer: no allocation, no lock. Every value that came from a client (host, path) cannot
 * break the line: the head parser refused control bytes before, and JSON strings are escaped.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "node/access_log.h"
#include "node/log_format.h"

/* Appends formatted text, never past the buffer: a line that would not fit stops growing
 * (the fields are bounded well under ACCESS_LINE_MAX, so this is a guard, not a path). */
static size_t app(char *out, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static size_t app(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (len >= ACCESS_LINE_MAX - 2)
        return len;
    va_start(ap, fmt);
    n = vsnprintf(out + len, ACCESS_LINE_MAX - 2 - len, fmt, ap);
    va_end(ap);
    if (n < 0)
        return len;
    return len + (size_t)n < ACCESS_LINE_MAX - 2 ? len + (size_t)n : ACCESS_LINE_MAX - 2;
}

/* Appends a text value, "-" when empty. */
static size_t put_text(char *out, size_t len, const char *key, const char *v)
{
    return app(out, len, " %s=%s", key, v && v[0] ? v : "-");
}

/* Appends "key":"value" (escaped), or "key":null when empty. */
static size_t put_json(char *out, size_t len, const char *key, const char *v)
{
    if (!v || !v[0])
        return app(out, len, ",\"%s\":null", key);
    len = app(out, len, ",\"%s\":\"", key);
    len = node_log_json_escape(out, len, ACCESS_LINE_MAX - 64, v);
    return app(out, len, "\"");
}

size_t access_format(const struct proxy_access_entry *e, const char *ts,
                     enum node_log_format format, bool bare, char *out)
{
    double ms = (double)e->duration_us / 1000.0;
    size_t len;

    if (format == NODE_LOG_JSON) {
        len = app(out, 0, "{\"ts\":\"%s\",\"level\":\"info\",\"component\":\"access\"", ts);
        len = put_json(out, len, "client", e->client);
        len = put_json(out, len, "method", e->method);
        len = put_json(out, len, "host", e->host);
        len = put_json(out, len, "name", e->name);
        len = put_json(out, len, "path", e->path);
        len = app(out, len, ",\"status\":%d,\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64,
                  e->status, e->bytes_in, e->bytes_out);
        len = put_json(out, len, "backend", e->backend);
        len = app(out, len, ",\"duration_ms\":%.3f,\"cut\":%s}", ms, e->cut ? "true" : "false");
    } else {
        len = bare ? 0 : app(out, 0, "%s info  access: ", ts);
        len = app(out, len, "time=%s", ts);
        len = put_text(out, len, "client", e->client);
        len = put_text(out, len, "host", e->host);
        len = put_text(out, len, "name", e->name);
        len = put_text(out, len, "method", e->method);
        len = put_text(out, len, "path", e->path);
        len = app(out, len, " status=%d bytes_in=%" PRIu64 " bytes_out=%" PRIu64, e->status,
                  e->bytes_in, e->bytes_out);
        len = put_text(out, len, "backend", e->backend);
        len = app(out, len, " duration_ms=%.3f%s", ms, e->cut ? " cut=1" : "");
    }
    out[len++] = '\n'; /* app() kept room for it */
    out[len] = '\0';
    return len;
}
