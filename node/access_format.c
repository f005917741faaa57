/*
 * access_format.c - one access-log line from one answered request, as text (key=value, the
 * shape the daemon always wrote) or as a JSON object with a member per field, for collectors.
 *
 * Runs on the proxy worker that answered the request, so it is plain appends into a caller's
 * buffer: no allocation, no lock. Every value that came from a client (host, path) cannot
 * break the line: the head parser refused control bytes before, and JSON strings are escaped.
 */
#include <stdint.h>
#include <string.h>

#include "node/access_log.h"
#include "node/log_format.h"

/* Lines stop growing here, keeping room for the newline and the NUL (the fields are bounded
 * well under ACCESS_LINE_MAX, so this is a guard, not a path). */
#define LINE_LIMIT (ACCESS_LINE_MAX - 2)

/* Plain appends rather than printf: this runs once per request, and vsnprintf cost more than
 * the rest of the request path's user space (callgrind, issue 14). */
static size_t put(char *out, size_t len, const char *s, size_t n)
{
    if (len >= LINE_LIMIT)
        return len;
    if (n > LINE_LIMIT - len)
        n = LINE_LIMIT - len;
    memcpy(out + len, s, n);
    return len + n;
}

static size_t put_str(char *out, size_t len, const char *s)
{
    return put(out, len, s, strlen(s));
}

/* A literal, its length known at compile time. */
#define put_lit(out, len, s) put((out), (len), "" s, sizeof(s) - 1)

static size_t put_u64(char *out, size_t len, uint64_t v)
{
    char d[20];
    size_t i = sizeof(d);
    do
        d[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    return put(out, len, d + i, sizeof(d) - i);
}

static size_t put_int(char *out, size_t len, int v)
{
    if (v < 0)
        return put_u64(out, put(out, len, "-", 1), (uint64_t)0 - (uint64_t)(int64_t)v);
    return put_u64(out, len, (uint64_t)v);
}

/* Microseconds as milliseconds with three decimals ("%.3f" of us / 1000, exactly). */
static size_t put_ms(char *out, size_t len, uint64_t us)
{
    unsigned frac = (unsigned)(us % 1000);
    char f[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10),
                 (char)('0' + frac % 10)};
    len = put_u64(out, len, us / 1000);
    return put(out, len, f, sizeof(f));
}

/* Appends " key=value", "-" when empty (put_text: key is a literal). */
static size_t put_text_n(char *out, size_t len, const char *key, size_t keylen, const char *v)
{
    len = put(out, len, " ", 1);
    len = put(out, len, key, keylen);
    len = put(out, len, "=", 1);
    return put_str(out, len, v && v[0] ? v : "-");
}
#define put_text(out, len, key, v) put_text_n((out), (len), "" key, sizeof(key) - 1, (v))

/* Appends ,"key":"value" (escaped), or ,"key":null when empty. */
static size_t put_json(char *out, size_t len, const char *key, const char *v)
{
    len = put(out, len, ",\"", 2);
    len = put_str(out, len, key);
    if (!v || !v[0])
        return put(out, len, "\":null", 6);
    len = put(out, len, "\":\"", 3);
    len = node_log_json_escape(out, len, ACCESS_LINE_MAX - 64, v);
    return put(out, len, "\"", 1);
}

size_t access_format(const struct proxy_access_entry *e, const char *ts,
                     enum node_log_format format, bool bare, char *out)
{
    size_t len;

    if (format == NODE_LOG_JSON) {
        len = put_lit(out, 0, "{\"ts\":\"");
        len = put_str(out, len, ts);
        len = put_lit(out, len, "\",\"level\":\"info\",\"component\":\"access\"");
        len = put_json(out, len, "client", e->client);
        len = put_json(out, len, "method", e->method);
        len = put_json(out, len, "host", e->host);
        len = put_json(out, len, "name", e->name);
        len = put_json(out, len, "path", e->path);
        len = put_lit(out, len, ",\"status\":");
        len = put_int(out, len, e->status);
        len = put_lit(out, len, ",\"bytes_in\":");
        len = put_u64(out, len, e->bytes_in);
        len = put_lit(out, len, ",\"bytes_out\":");
        len = put_u64(out, len, e->bytes_out);
        len = put_json(out, len, "backend", e->backend);
        len = put_lit(out, len, ",\"duration_ms\":");
        len = put_ms(out, len, e->duration_us);
        len = e->cut ? put_lit(out, len, ",\"cut\":true}") : put_lit(out, len, ",\"cut\":false}");
    } else {
        len = 0;
        if (!bare) {
            len = put_str(out, len, ts);
            len = put_lit(out, len, " info  access: ");
        }
        len = put_lit(out, len, "time=");
        len = put_str(out, len, ts);
        len = put_text(out, len, "client", e->client);
        len = put_text(out, len, "host", e->host);
        len = put_text(out, len, "name", e->name);
        len = put_text(out, len, "method", e->method);
        len = put_text(out, len, "path", e->path);
        len = put_lit(out, len, " status=");
        len = put_int(out, len, e->status);
        len = put_lit(out, len, " bytes_in=");
        len = put_u64(out, len, e->bytes_in);
        len = put_lit(out, len, " bytes_out=");
        len = put_u64(out, len, e->bytes_out);
        len = put_text(out, len, "backend", e->backend);
        len = put_lit(out, len, " duration_ms=");
        len = put_ms(out, len, e->duration_us);
        if (e->cut)
            len = put_lit(out, len, " cut=1");
    }
    out[len++] = '\n'; /* put() kept room for it */
    out[len] = '\0';
    return len;
}
