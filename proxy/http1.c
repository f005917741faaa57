/*
 * http1.c - strict HTTP/1.1 parsing: our raw-byte scan of a head, llhttp for the grammar and
 * body framing, then our semantic checks (see http1.h). Requests fail with 400/413/431,
 * responses with 502; the same code serves both so the rules cannot drift apart.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/http1.h"

#define WHY(...)                                                                                   \
    do {                                                                                           \
        if (why && whylen)                                                                         \
            snprintf(why, whylen, __VA_ARGS__);                                                    \
    } while (0)

/* RFC 9110 tchar: the bytes a field name may hold (a table: the scan tests every byte of
 * every name). */
static const unsigned char tchar[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

/* Byte classes of the head scan: only these need a look; every other byte is skipped by one
 * table load (callgrind, issue 14: the scan cost as much as llhttp). */
enum { B_PLAIN = 0, B_CR, B_LF, B_TAB, B_CTL };
static const unsigned char head_class[256] = {
    B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_TAB, B_LF,
    B_CTL, B_CTL, B_CR,  B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL,
    B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, B_CTL, [0x7f] = B_CTL,
};

int http1_scan_head(const char *buf, size_t len, const struct http1_limits *lim, bool is_request,
                    char *why, size_t whylen)
{
    const char *what = is_request ? "request" : "response";
    size_t line_start = 0;
    size_t fields = 0;
    bool first = true;

    size_t scan = len < lim->max_header_bytes ? len : lim->max_header_bytes;
    for (size_t i = 0; i < scan; i++) {
        /* eight bytes at a time while none is a control byte (< 0x20: CR, LF and HTAB among
         * them) or DEL: the exact "has a byte less than n" and "has a zero byte" word tests */
        while (scan - i >= 8) {
            uint64_t x, y, m;
            memcpy(&x, buf + i, 8);
            y = x ^ 0x7f7f7f7f7f7f7f7fULL;
            m = (((x - 0x2020202020202020ULL) & ~x) | ((y - 0x0101010101010101ULL) & ~y)) &
                0x8080808080808080ULL;
            if (m) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* the lowest flagged byte is exact (a borrow only flags bytes above a true
                 * one): go straight to it instead of testing a word at each byte up to it */
                i += (size_t)__builtin_ctzll(m) / 8;
#endif
                break;
            }
            i += 8;
        }
        if (i >= scan)
            break;
        unsigned char c = (unsigned char)buf[i];
        if (head_class[c] == B_PLAIN)
            continue;
        if (c == '\n') {
            WHY("bare LF in %s head", what);
            return -400;
        }
        if (c == '\r') {
            if (i + 1 == len)
                return 0;
            if (buf[i + 1] != '\n') {
                WHY("lone CR in %s head", what);
                return -400;
            }
            size_t line_len = i - line_start;
            if (first) {
                if (line_len == 0 && is_request && line_start == 0) {
                    /* RFC 9112 2.2: one empty line before a request line is tolerated. */
                    line_start = i + 2;
                    i++;
                    continue;
                }
                if (line_len > lim->max_request_line) {
                    WHY("%s line over %u bytes", is_request ? "request" : "status",
                        lim->max_request_line);
                    return -431;
                }
                if (line_len == 0) {
                    WHY("empty %s line", is_request ? "request" : "status");
                    return -400;
                }
                first = false;
            } else if (line_len == 0) {
                if (i + 2 > lim->max_header_bytes) { /* the final LF is past the limit */
                    WHY("%s head over %u bytes", what, lim->max_header_bytes);
                    return -431;
                }
                return (int)(i + 2);
            } else {
                const char *line = buf + line_start;
                const char *colon = memchr(line, ':', line_len);
                if (line[0] == ' ' || line[0] == '\t') {
                    WHY("obs-fold (line folding) in %s head", what);
                    return -400;
                }
                if (colon == NULL) {
                    WHY("header line without a colon");
                    return -400;
                }
                if (colon == line) {
                    WHY("empty header name");
                    return -400;
                }
                if (colon[-1] == ' ' || colon[-1] == '\t') {
                    WHY("whitespace before the colon of a header name");
                    return -400;
                }
                for (const char *n = line; n < colon; n++) {
                    if (!tchar[(unsigned char)*n]) {
                        WHY("invalid byte 0x%02x in a header name", (unsigned char)*n);
                        return -400;
                    }
                }
                if (++fields > lim->max_header_count) {
                    WHY("more than %u header fields", lim->max_header_count);
                    return -431;
                }
            }
            i++;
            line_start = i + 1;
            continue;
        }
        if (c == '\t' && first && is_request) {
            /* llhttp as built takes HTAB inside a request-target; a backend splitting the
             * line at whitespace would read another target and version */
            WHY("HTAB in the request line");
            return -400;
        }
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            WHY("%s byte 0x%02x in %s head", c == 0 ? "NUL" : "control", c, what);
            return -400;
        }
    }
    if (len > lim->max_header_bytes) { /* no end within the limit: the byte at it is over */
        WHY("%s head over %u bytes", what, lim->max_header_bytes);
        return -431;
    }
    if (first && len - line_start > lim->max_request_line) {
        WHY("%s line over %u bytes", is_request ? "request" : "status", lim->max_request_line);
        return -431;
    }
    if (len >= lim->max_header_bytes) {
        WHY("%s head over %u bytes", what, lim->max_header_bytes);
        return -431;
    }
    return 0;
}

/* ---- llhttp callbacks --------------------------------------------------------------------- */

static struct http1_parser *P(llhttp_t *ll)
{
    return (struct http1_parser *)ll->data;
}

static int cb_url(llhttp_t *ll, const char *at, size_t len)
{
    struct http1_head *h = &P(ll)->head;
    if (h->target == NULL)
        h->target = at;
    h->target_len += len;
    return 0;
}

static int cb_status(llhttp_t *ll, const char *at, size_t len)
{
    struct http1_head *h = &P(ll)->head;
    if (h->reason == NULL)
        h->reason = at;
    h->reason_len += len;
    return 0;
}

static int cb_field(llhttp_t *ll, const char *at, size_t len)
{
    struct http1_parser *p = P(ll);
    struct http1_head *h = &p->head;
    if (!p->in_head)
        return 0; /* trailer fields: dropped, the framing is regenerated */
    if (h->count == 0 || p->header_value_seen) {
        if (h->count == h->cap) {
            p->status = h->is_request ? 431 : 502;
            snprintf(p->why, sizeof(p->why), "too many header fields");
            return HPE_USER;
        }
        h->fields[h->count].name = at;
        h->fields[h->count].name_len = 0;
        h->fields[h->count].value = NULL;
        h->fields[h->count].value_len = 0;
        h->count++;
        p->header_value_seen = false;
    }
    h->fields[h->count - 1].name_len += len;
    return 0;
}

static int cb_value(llhttp_t *ll, const char *at, size_t len)
{
    struct http1_parser *p = P(ll);
    struct http1_head *h = &p->head;
    if (!p->in_head || h->count == 0)
        return 0;
    struct http1_header *f = &h->fields[h->count - 1];
    if (f->value == NULL)
        f->value = at;
    f->value_len += len;
    p->header_value_seen = true;
    return 0;
}

static int cb_headers_complete(llhttp_t *ll)
{
    struct http1_parser *p = P(ll);
    struct http1_head *h = &p->head;
    h->method = ll->method;
    h->major = ll->http_major;
    h->minor = ll->http_minor;
    h->status = ll->status_code;
    p->in_head = false;
    /* Upgrades are ours to decide (http1_check_head, then the backend's 101): llhttp would
     * stop at the end of any request with Connection: upgrade and an Upgrade field and parse
     * nothing after it, so a declined or refused upgrade broke the next request. */
    if (h->is_request)
        ll->upgrade = 0;
    if (!h->is_request && (p->skip_body || (h->status >= 100 && h->status < 200) ||
                           h->status == 204 || h->status == 304))
        return 1;
    return 0;
}

static void chunk_framing_error(struct http1_parser *p)
{
    p->status = p->head.is_request ? 400 : 502;
    snprintf(p->why, sizeof(p->why), "chunk data not followed by CRLF");
}

/* Checks the CRLF after a chunk's data against the bytes [q, end) that follow it; they may
 * arrive over several buffers (crlf_left says how many are still due). Returns -1 on a
 * mismatch. */
static int check_chunk_crlf(struct http1_parser *p, const char *q, const char *end)
{
    while (p->crlf_left && q < end) {
        char want = p->crlf_left == 2 ? '\r' : '\n';
        if (*q++ != want)
            return -1;
        p->crlf_left--;
    }
    return 0;
}

/* Scans trailer-section bytes [q, end) for what llhttp as built lets through: a bare LF or a
 * lone CR as a line end. Stops at the empty line that ends the section. Returns -1 (status and
 * why set) on a fault. */
static int scan_trailer(struct http1_parser *p, const char *q, const char *end)
{
    for (; p->in_trailer && q < end; q++) {
        if (++p->trailer_bytes > p->lim->max_header_bytes) {
            p->status = p->head.is_request ? 431 : 502;
            snprintf(p->why, sizeof(p->why), "trailer section over %u bytes",
                     p->lim->max_header_bytes);
            return -1;
        }
        if (p->trailer_cr) {
            if (*q != '\n')
                break;
            p->trailer_cr = false;
            if (p->trailer_line_empty)
                p->in_trailer = false; /* CRLF on its own: the message ends here */
            p->trailer_line_empty = true;
        } else if (*q == '\r') {
            p->trailer_cr = true;
        } else if (*q == '\n') {
            break;
        } else {
            p->trailer_line_empty = false;
        }
    }
    if (!p->in_trailer || q == end)
        return 0;
    p->status = p->head.is_request ? 400 : 502;
    snprintf(p->why, sizeof(p->why), "%s in the chunked trailer section",
             *q == '\n' ? "bare LF" : "CR not followed by LF");
    return -1;
}

static int cb_chunk_header(llhttp_t *ll)
{
    struct http1_parser *p = P(ll);
    /* a last chunk (size 0) has no data and no CRLF of its own: the trailer section follows */
    p->chunk_left = ll->content_length;
    p->crlf_left = 0;
    if (ll->content_length != 0)
        return 0;
    /* pause where the trailer section starts, for http1_parse_body to scan it */
    p->in_trailer = true;
    p->trailer_cr = false;
    p->trailer_line_empty = true;
    p->trailer_bytes = 0;
    return HPE_PAUSED;
}

static int cb_body(llhttp_t *ll, const char *at, size_t len)
{
    struct http1_parser *p = P(ll);
    if (p->head.framing == HTTP1_FRAME_CHUNKED) {
        p->chunk_left = len < p->chunk_left ? p->chunk_left - len : 0;
        if (p->chunk_left == 0) {
            p->crlf_left = 2;
            if (check_chunk_crlf(p, at + len, p->exec_end) != 0) {
                chunk_framing_error(p);
                return HPE_USER;
            }
        }
    }
    p->body_bytes += len;
    if (p->lim->max_body_bytes && p->head.is_request && p->body_bytes > p->lim->max_body_bytes) {
        p->status = 413;
        snprintf(p->why, sizeof(p->why), "request body over %llu bytes",
                 (unsigned long long)p->lim->max_body_bytes);
        return HPE_USER;
    }
    if (p->on_body && p->on_body(p->ctx, at, len) != 0) {
        if (!p->status) {
            p->status = p->head.is_request ? 400 : 502;
            snprintf(p->why, sizeof(p->why), "body aborted");
        }
        return HPE_USER;
    }
    return 0;
}

static int cb_message_complete(llhttp_t *ll)
{
    P(ll)->message_done = true;
    return HPE_PAUSED;
}

static const llhttp_settings_t *settings(void)
{
    static llhttp_settings_t s = {
        .on_url = cb_url,
        .on_status = cb_status,
        .on_header_field = cb_field,
        .on_header_value = cb_value,
        .on_headers_complete = cb_headers_complete,
        .on_chunk_header = cb_chunk_header,
        .on_body = cb_body,
        .on_message_complete = cb_message_complete,
    };
    return &s;
}

void http1_parser_init(struct http1_parser *p, bool is_request, const struct http1_limits *lim,
                       struct http1_header *fields, size_t cap, http1_body_fn on_body, void *ctx)
{
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->ll, is_request ? HTTP_REQUEST : HTTP_RESPONSE, settings());
    p->ll.data = p;
    p->lim = lim;
    p->on_body = on_body;
    p->ctx = ctx;
    p->head.is_request = is_request;
    p->head.fields = fields;
    p->head.cap = cap;
}

void http1_parser_next(struct http1_parser *p)
{
    struct http1_header *fields = p->head.fields;
    size_t cap = p->head.cap;
    bool is_request = p->head.is_request;
    if (llhttp_get_errno(&p->ll) == HPE_PAUSED)
        llhttp_resume(&p->ll);
    memset(&p->head, 0, sizeof(p->head));
    p->head.fields = fields;
    p->head.cap = cap;
    p->head.is_request = is_request;
    p->body_bytes = 0;
    p->chunk_left = 0;
    p->crlf_left = 0;
    p->in_trailer = false;
    p->skip_body = false;
    p->message_done = false;
    p->header_value_seen = false;
    p->status = 0;
    p->why[0] = '\0';
}

static void set_llhttp_error(struct http1_parser *p, llhttp_errno_t e)
{
    if (p->status)
        return;
    p->status = p->head.is_request ? 400 : 502;
    const char *reason = llhttp_get_error_reason(&p->ll);
    snprintf(p->why, sizeof(p->why), "%s: %s", llhttp_errno_name(e), reason ? reason : "");
}

int http1_parse_head(struct http1_parser *p, const char *buf, size_t len)
{
    int n = http1_scan_head(buf, len, p->lim, p->head.is_request, p->why, sizeof(p->why));
    if (n <= 0) {
        if (n < 0)
            p->status = p->head.is_request ? -n : 502;
        return n < 0 ? -1 : 0;
    }
    if (llhttp_get_errno(&p->ll) == HPE_PAUSED)
        llhttp_resume(&p->ll);
    p->in_head = true;
    p->exec_end = buf + n;
    p->header_value_seen = false;
    p->head.count = 0;
    p->head.target = p->head.reason = NULL;
    p->head.target_len = p->head.reason_len = 0;
    llhttp_errno_t e = llhttp_execute(&p->ll, buf, (size_t)n);
    if (e != HPE_OK && e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) {
        set_llhttp_error(p, e);
        return -1;
    }
    if (p->in_head) {
        /* the scan saw a complete head that llhttp did not finish: never trust it */
        p->status = p->head.is_request ? 400 : 502;
        snprintf(p->why, sizeof(p->why), "incomplete head");
        return -1;
    }
    p->head.head_len = (size_t)n;
    if (http1_check_head(&p->head, p->why, sizeof(p->why)) != 0) {
        p->status = p->head.is_request ? 400 : 502;
        return -1;
    }
    if (!p->head.is_request && p->skip_body)
        p->head.framing = HTTP1_FRAME_NONE;
    if (p->head.is_request && p->lim->max_body_bytes && p->head.framing == HTTP1_FRAME_LENGTH &&
        p->head.content_length > p->lim->max_body_bytes) {
        p->status = 413;
        snprintf(p->why, sizeof(p->why), "request body of %llu bytes over %llu",
                 (unsigned long long)p->head.content_length,
                 (unsigned long long)p->lim->max_body_bytes);
        return -1;
    }
    return 1;
}

int http1_parse_body(struct http1_parser *p, const char *buf, size_t len, size_t *used)
{
    *used = 0;
    if (p->message_done)
        return 1;
    if (len == 0)
        return 0;
    if (check_chunk_crlf(p, buf, buf + len) != 0) {
        chunk_framing_error(p);
        return -1;
    }
    if (scan_trailer(p, buf, buf + len) != 0)
        return -1;
    p->exec_end = buf + len;
    size_t off = 0;
    for (;;) {
        llhttp_errno_t e = llhttp_execute(&p->ll, buf + off, len - off);
        if (e == HPE_OK) {
            *used = len;
            return 0;
        }
        if (e != HPE_PAUSED && e != HPE_PAUSED_UPGRADE) {
            set_llhttp_error(p, e);
            return -1;
        }
        const char *pos = llhttp_get_error_pos(&p->ll);
        off = pos ? (size_t)(pos - buf) : len;
        if (p->message_done) {
            *used = off;
            return 1;
        }
        /* paused by cb_chunk_header at the start of the trailer section */
        llhttp_resume(&p->ll);
        if (scan_trailer(p, buf + off, buf + len) != 0)
            return -1;
    }
}

int http1_parse_eof(struct http1_parser *p)
{
    if (p->message_done)
        return 1;
    if (p->head.framing != HTTP1_FRAME_CLOSE)
        return -1;
    llhttp_errno_t e = llhttp_finish(&p->ll);
    if ((e == HPE_OK || e == HPE_PAUSED) && p->message_done)
        return 1;
    return -1;
}

/* ---- semantic checks ---------------------------------------------------------------------- */

static void trim(const char **v, size_t *len)
{
    while (*len && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*len)--;
    }
    while (*len && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
        (*len)--;
}

/* Calls fn for each comma-separated token of a value, trimmed; stops when fn returns true. */
static bool each_token(const char *v, size_t len, bool (*fn)(const char *, size_t, void *),
                       void *ctx)
{
    size_t i = 0;
    while (i <= len) {
        size_t j = i;
        while (j < len && v[j] != ',')
            j++;
        const char *t = v + i;
        size_t tl = j - i;
        trim(&t, &tl);
        if (tl && fn(t, tl, ctx))
            return true;
        i = j + 1;
    }
    return false;
}

struct conn_tokens {
    bool close, keep_alive, upgrade;
};

static bool note_conn_token(const char *t, size_t len, void *ctx)
{
    struct conn_tokens *ct = ctx;
    if (len == 5 && strncasecmp(t, "close", 5) == 0)
        ct->close = true;
    else if (len == 10 && strncasecmp(t, "keep-alive", 10) == 0)
        ct->keep_alive = true;
    else if (len == 7 && strncasecmp(t, "upgrade", 7) == 0)
        ct->upgrade = true;
    return false;
}

/* HAProxy's contract for Content-Length: digits only, every digit checked for overflow. */
static int parse_content_length(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    if (len == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        if (n > (UINT64_MAX - 9) / 10)
            return -1;
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    *out = n;
    return 0;
}

/* RFC 9112 3.2: "/path", "http(s)://authority/path", or "*" for OPTIONS; nothing else is
 * forwarded (authority-form belongs to CONNECT, which we refuse). */
static bool target_form_ok(const struct http1_head *h)
{
    const char *t = h->target;
    size_t n = h->target_len;
    if (n == 0 || t == NULL)
        return false;
    if (t[0] == '/')
        return true;
    if (n == 1 && t[0] == '*')
        return h->method == HTTP_OPTIONS;
    size_t skip = 0;
    if (n > 7 && strncasecmp(t, "http://", 7) == 0)
        skip = 7;
    else if (n > 8 && strncasecmp(t, "https://", 8) == 0)
        skip = 8;
    if (skip == 0)
        return false;
    /* a non-empty authority, then a path or query or nothing */
    size_t a = skip;
    while (a < n && t[a] != '/' && t[a] != '?')
        a++;
    char host[256];
    return a > skip && http1_host_normalize(t + skip, a - skip, host, sizeof(host)) >= 0;
}

int http1_check_head(struct http1_head *h, char *why, size_t whylen)
{
    unsigned cl = 0, te = 0, host = 0, upgrade = 0;
    bool websocket = false;
    struct conn_tokens ct = {0};

    if (h->major != 1 || h->minor > 1) {
        WHY("unsupported HTTP version %u.%u", h->major, h->minor);
        return -1;
    }
    h->host = NULL;
    h->host_len = 0;
    for (size_t i = 0; i < h->count; i++) {
        struct http1_header *f = &h->fields[i];
        if (f->value == NULL)
            f->value = f->name + f->name_len;
        trim(&f->value, &f->value_len);
        if (http1_name_is(f, "content-length")) {
            if (++cl > 1) {
                WHY("repeated Content-Length");
                return -1;
            }
            if (parse_content_length(f->value, f->value_len, &h->content_length) != 0) {
                WHY("malformed Content-Length");
                return -1;
            }
        } else if (http1_name_is(f, "transfer-encoding")) {
            if (++te > 1) {
                WHY("repeated Transfer-Encoding");
                return -1;
            }
            if (f->value_len != 7 || strncasecmp(f->value, "chunked", 7) != 0) {
                WHY("Transfer-Encoding other than exactly \"chunked\"");
                return -1;
            }
        } else if (http1_name_is(f, "host")) {
            if (++host > 1) {
                WHY("repeated Host");
                return -1;
            }
            h->host = f->value;
            h->host_len = f->value_len;
        } else if (http1_name_is(f, "connection")) {
            each_token(f->value, f->value_len, note_conn_token, &ct);
        } else if (http1_name_is(f, "upgrade")) {
            upgrade++;
            websocket = f->value_len == 9 && strncasecmp(f->value, "websocket", 9) == 0;
        } else if (http1_name_is(f, "expect")) {
            h->expect_continue =
                f->value_len == 12 && strncasecmp(f->value, "100-continue", 12) == 0;
        }
    }
    if (cl && te) {
        WHY("both Content-Length and Transfer-Encoding");
        return -1;
    }
    if (te && h->minor == 0) {
        WHY("Transfer-Encoding in an HTTP/1.0 message");
        return -1;
    }
    if (h->is_request && h->minor == 1 && host == 0) {
        WHY("missing Host in an HTTP/1.1 request");
        return -1;
    }
    if (h->is_request && h->method == HTTP_CONNECT) {
        WHY("CONNECT is not served");
        return -1;
    }
    if (h->is_request && !target_form_ok(h)) {
        WHY("request target is not origin-form, absolute-form or OPTIONS *");
        return -1;
    }
    h->has_length = cl != 0;
    if (te)
        h->framing = HTTP1_FRAME_CHUNKED;
    else if (cl)
        h->framing = h->content_length ? HTTP1_FRAME_LENGTH : HTTP1_FRAME_NONE;
    else
        h->framing = h->is_request ? HTTP1_FRAME_NONE : HTTP1_FRAME_CLOSE;
    if (!h->is_request &&
        ((h->status >= 100 && h->status < 200) || h->status == 204 || h->status == 304))
        h->framing = HTTP1_FRAME_NONE;
    h->keep_alive = h->minor == 1 ? !ct.close : (ct.keep_alive && !ct.close);
    if (h->framing == HTTP1_FRAME_CLOSE)
        h->keep_alive = false;
    /* The only upgrade served is WebSocket: anything else (h2c above all, the smuggling vector
     * of a backend that speaks HTTP/2 after an Upgrade we did not see through) is a plain
     * request whose Upgrade field is dropped as hop-by-hop. */
    h->upgrade = ct.upgrade && upgrade == 1 && (!h->is_request || websocket);
    return 0;
}

bool http1_method_idempotent(uint8_t method)
{
    switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PUT:
    case HTTP_DELETE:
        return true;
    default:
        return false;
    }
}
