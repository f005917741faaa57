/*
 * http1_roundtrip.c - see http1_roundtrip.h.
 */
#include "http1_roundtrip.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/http1.h"

static const struct http1_limits limits = {.max_request_line = 2048,
                                           .max_header_count = 64,
                                           .max_header_bytes = 8192,
                                           .max_body_bytes = 1 << 20};

struct sink {
    uint8_t *data;
    size_t len, cap;
};

static int sink_body(void *ctx, const char *d, size_t n)
{
    struct sink *s = ctx;
    if (s->len + n > s->cap) {
        size_t cap = (s->len + n) * 2;
        uint8_t *nd = realloc(s->data, cap);
        if (nd == NULL)
            return -1;
        s->data = nd;
        s->cap = cap;
    }
    memcpy(s->data + s->len, d, n);
    s->len += n;
    return 0;
}

/* Feeds the body in pieces of `step` bytes; returns 1 complete, 0 needs more, -1 error. */
static int feed_body(struct http1_parser *p, const uint8_t *d, size_t len, size_t step)
{
    size_t off = 0;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        size_t used;
        int r = http1_parse_body(p, (const char *)d + off, n, &used);
        if (r != 0)
            return r;
        off += used;
    }
    return 0;
}

static bool same_span(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

const char *http1_roundtrip_check(const uint8_t *data, size_t len)
{
    struct http1_header f1[64], f2[80];
    struct http1_parser p1, p2, p3;
    struct sink s1 = {0}, s2 = {0};
    const char *why = NULL;
    char *out = NULL;

    http1_parser_init(&p1, true, &limits, f1, 64, sink_body, &s1);
    if (http1_parse_head(&p1, (const char *)data, len) != 1)
        goto done; /* refused or incomplete: nothing more to hold */
    struct http1_head *h = &p1.head;
    bool absolute = h->target_len && h->target[0] != '/' && h->target[0] != '*';
    if (h->host == NULL && !absolute)
        goto done; /* nothing to route by: the session answers 400 itself */
    if (h->framing == HTTP1_FRAME_CLOSE) {
        why = "a request framed by close";
        goto done;
    }
    if (p1.status != 0) {
        why = "accepted with an error status";
        goto done;
    }

    /* rebuild for the backend and parse that */
    size_t cap = h->head_len + 1024;
    out = malloc(cap);
    struct http1_forward fwd = {
        .client_ip = "192.0.2.1", .proto = "http", .host = h->host, .host_len = h->host_len};
    int n = out ? http1_build_request(h, &fwd, out, cap) : -1;
    if (n < 0) {
        why = "rebuilt head does not fit";
        goto done;
    }
    http1_parser_init(&p2, true, &limits, f2, 80, NULL, NULL);
    struct http1_limits big = limits;
    big.max_header_bytes = (uint32_t)cap;
    big.max_header_count = 80; /* we add up to four fields */
    p2.lim = &big;
    if (http1_parse_head(&p2, out, (size_t)n) != 1 || p2.head.head_len != (size_t)n) {
        why = "rebuilt head does not parse";
        goto done;
    }
    struct http1_head *g = &p2.head;
    if (g->method != h->method || g->framing != h->framing ||
        (h->framing == HTTP1_FRAME_LENGTH && g->content_length != h->content_length)) {
        why = "method or framing changed";
        goto done;
    }
    const char *want = h->host;
    size_t want_len = h->host_len;
    if (absolute) { /* the authority replaces Host */
        want = memchr(h->target, ':', h->target_len) + 3;
        want_len = 0;
        while (want + want_len < h->target + h->target_len && want[want_len] != '/' &&
               want[want_len] != '?')
            want_len++;
    }
    if (g->host == NULL || !same_span(want, want_len, g->host, g->host_len)) {
        why = "Host changed";
        goto done;
    }
    if (g->target_len == 0 ||
        !(g->target[0] == '/' || (g->target_len == 1 && g->target[0] == '*'))) {
        why = "target not in origin-form";
        goto done;
    }
    int xff = 0;
    for (size_t i = 0; i < g->count; i++) {
        const struct http1_header *f = &g->fields[i];
        if (http1_name_is(f, "keep-alive") || http1_name_is(f, "proxy-connection") ||
            http1_name_is(f, "te") || http1_name_is(f, "trailer") ||
            (http1_name_is(f, "connection") && !h->upgrade) ||
            (http1_name_is(f, "upgrade") && !h->upgrade)) {
            why = "hop-by-hop field forwarded";
            goto done;
        }
        if (http1_name_is(f, "x-forwarded-for"))
            xff++;
    }
    if (xff != 1) {
        why = "not exactly one X-Forwarded-For";
        goto done;
    }

    /* the body decodes the same at once and byte by byte */
    if (!p1.message_done) {
        const uint8_t *body = data + h->head_len;
        size_t blen = len - h->head_len;
        http1_parser_init(&p3, true, &limits, f2, 64, sink_body, &s2);
        if (http1_parse_head(&p3, (const char *)data, len) != 1) {
            why = "head parse not repeatable";
            goto done;
        }
        int a = feed_body(&p1, body, blen, blen ? blen : 1);
        int b = feed_body(&p3, body, blen, 1);
        if (a != b || (a >= 0 && (s1.len != s2.len || memcmp(s1.data, s2.data, s1.len) != 0))) {
            why = "body decoded differently when split";
            goto done;
        }
    }
done:
    free(out);
    free(s1.data);
    free(s2.data);
    return why;
}
