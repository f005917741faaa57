/*
 * http1.h - strict HTTP/1.1 message parsing and head rewriting (private to proxy/).
 *
 * Pure functions over bytes, no I/O, so every smuggling rule is unit-testable. Parsing is
 * llhttp (Debian's node-llhttp) plus our own checks that llhttp does not make or makes too
 * loosely: http1_scan_head() validates the raw head bytes before llhttp sees them, and
 * http1_check_head() the semantics of the fields after it parsed them.
 *
 * A message is parsed in two steps: http1_parse_head() once the whole head is buffered (the
 * header spans then point into that buffer), then http1_parse_body() over body bytes as they
 * arrive; the body callback gets decoded bytes (chunk framing removed) and the parser stops at
 * the end of each message so pipelined requests are handled one at a time, in order.
 */
#ifndef WEBGW_PROXY_HTTP1_H
#define WEBGW_PROXY_HTTP1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>

#define HTTP1_HEADERS_MAX 10000 /* hard cap on fields, whatever the configuration says */

struct http1_limits {
    uint32_t max_request_line; /* request or status line bytes, without CRLF */
    uint32_t max_header_count; /* fields in one head */
    uint32_t max_header_bytes; /* whole head including the final CRLF CRLF */
    uint64_t max_body_bytes;   /* 0 = unlimited */
};

struct http1_header {
    const char *name; /* points into the parsed buffer */
    size_t name_len;
    const char *value; /* leading/trailing whitespace removed */
    size_t value_len;
};

/* How a message body is delimited. */
enum http1_framing {
    HTTP1_FRAME_NONE = 0,    /* no body */
    HTTP1_FRAME_LENGTH = 1,  /* Content-Length */
    HTTP1_FRAME_CHUNKED = 2, /* Transfer-Encoding: chunked */
    HTTP1_FRAME_CLOSE = 3,   /* response read until the connection closes */
};

/* A parsed head. Spans point into the buffer given to http1_parse_head(). */
struct http1_head {
    bool is_request;
    uint8_t method;     /* llhttp_method_t (requests) */
    const char *target; /* request-target as sent */
    size_t target_len;
    uint16_t status;    /* responses */
    const char *reason; /* responses: reason phrase */
    size_t reason_len;
    uint8_t major, minor;        /* HTTP version */
    struct http1_header *fields; /* caller-provided array */
    size_t count;                /* fields used */
    size_t cap;                  /* fields available */
    size_t head_len;             /* bytes of the head including the final CRLF CRLF */
    enum http1_framing framing;
    uint64_t content_length; /* when framing is LENGTH */
    bool has_length;         /* a Content-Length field was present (kept for HEAD answers) */
    const char *host;        /* requests: the Host value (NULL if absent) */
    size_t host_len;
    bool keep_alive; /* the sender allows another message on this connection */
    bool upgrade;    /* Connection: upgrade with one Upgrade field (requests: "websocket" only) */
    bool expect_continue; /* requests: Expect: 100-continue */
};

typedef int (*http1_body_fn)(void *ctx, const char *data, size_t len);

struct http1_parser {
    llhttp_t ll;
    struct http1_head head;
    const struct http1_limits *lim;
    http1_body_fn on_body; /* decoded body bytes; non-zero return aborts the parse */
    void *ctx;
    uint64_t body_bytes; /* decoded body bytes of the current message */
    bool skip_body;      /* responses to HEAD, or 1xx/204/304: no body whatever the fields */
    bool message_done;   /* the current message ended */
    bool in_head;        /* collecting head spans */
    bool header_value_seen;
    /* Chunked bodies: llhttp as Debian builds it (not LLHTTP_STRICT_MODE) skips the two bytes
     * after a chunk's data whatever they are, so we check them: */
    uint64_t chunk_left;  /* data bytes of the current chunk not yet seen */
    uint8_t crlf_left;    /* bytes of the CRLF after that data still to check (0..2) */
    const char *exec_end; /* end of the buffer llhttp is executing (for that check) */
    /* ... and takes a bare LF as a line end in the trailer section after the last chunk, so
     * that section is scanned here too (CR only in CRLF, bounded like a head): */
    bool in_trailer;         /* between the last chunk's size line and the empty line */
    bool trailer_cr;         /* the last byte scanned was a CR */
    bool trailer_line_empty; /* nothing but the CR yet on the current trailer line */
    uint32_t trailer_bytes;  /* bytes of the trailer section so far (max_header_bytes) */
    int status;              /* on error: the HTTP status to answer (400, 413, 431, 502) */
    char why[128];           /* on error: a one-line reason */
};

/* Initializes a parser for requests (is_request) or responses. `fields` is where heads store
 * their field spans: cap entries, at least lim->max_header_count. */
void http1_parser_init(struct http1_parser *p, bool is_request, const struct http1_limits *lim,
                       struct http1_header *fields, size_t cap, http1_body_fn on_body, void *ctx);

/* Validates the raw bytes of a head in buf[0..len) and finds its end. Returns the head length
 * (> 0, including the final CRLF CRLF) when complete, 0 when more bytes are needed and within
 * the limits, or -status (-400 or -431) with a reason in why[whylen]. Rules: CR only in CRLF,
 * no bare LF, no NUL or other control byte (HTAB allowed in field values and the reason
 * phrase, not in a request line), no obs-fold, no whitespace
 * before the colon, no empty field name, line/count/size limits. */
int http1_scan_head(const char *buf, size_t len, const struct http1_limits *lim, bool is_request,
                    char *why, size_t whylen);

/* Parses a head from buf[0..len): returns 1 when a head was parsed (p->head filled,
 * p->head.head_len bytes used), 0 when more bytes are needed, or -1 with p->status/p->why set.
 * After 1, p->message_done tells whether the message had no body. Responses: set
 * p->skip_body before calling when the request was HEAD. */
int http1_parse_head(struct http1_parser *p, const char *buf, size_t len);

/* Feeds body bytes; *used receives how many were consumed. Returns 1 when the message ended
 * (bytes after it are the next message), 0 when all bytes were consumed and more are needed,
 * -1 on error (p->status, p->why). A chunk's data not followed by CRLF is an error (400 for
 * requests, 502 for responses), found before the last bytes of that chunk reach the body
 * callback when the CRLF is in the same buffer. So is a trailer section (after the last chunk)
 * with a bare LF or a lone CR, or over max_header_bytes. */
int http1_parse_body(struct http1_parser *p, const char *buf, size_t len, size_t *used);

/* The peer closed: ends a close-delimited response body. Returns 1 if that completed the
 * message, -1 if the message was cut short. */
int http1_parse_eof(struct http1_parser *p);

/* Prepares for the next message on the same connection. */
void http1_parser_next(struct http1_parser *p);

/* Semantic checks on a parsed head (also run by http1_parse_head): Content-Length digits only
 * and not repeated, Transfer-Encoding exactly "chunked" and only on HTTP/1.1, not both, exactly
 * one Host on HTTP/1.1 requests, at most one on HTTP/1.0. Returns 0 or -1 with why set. */
int http1_check_head(struct http1_head *h, char *why, size_t whylen);

/* ---- rewriting ---------------------------------------------------------------------------- */

/* Case-insensitive compare of a field name with a name of n bytes in lowercase letters,
 * digits and '-'. A field name holds only tchars (the scan refused anything else), so OR-ing
 * 0x20 into its bytes folds exactly the uppercase letters onto such a name: no libc call, and
 * most fields differ in length or first byte. http1_name_is takes a literal and its length at
 * compile time (a strlen and a strncasecmp per call were 17 and 11 calls a proxied request,
 * callgrind). */
static inline bool http1_name_is_n(const struct http1_header *f, const char *lower, size_t n)
{
    if (f->name_len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)f->name[i] | 0x20) != (unsigned char)lower[i])
            return false;
    return true;
}
#define http1_name_is(f, lower) http1_name_is_n((f), "" lower, sizeof(lower) - 1)

/* Normalizes a Host value (or the authority of an absolute-form target) into out: port
 * stripped, lowercased, trailing dot removed, IPv6 brackets kept. Returns the length, or -1 when
 * the value is not a valid host[:port]. out holds at least 256 bytes. */
int http1_host_normalize(const char *host, size_t len, char *out, size_t cap);

/* What the gateway adds when forwarding a request. */
struct http1_forward {
    const char *client_ip; /* textual client address */
    bool trusted_peer;     /* keep and extend client-sent X-Forwarded-*, Forwarded, X-Real-IP */
    const char *proto;     /* "http" or "https" */
    const char *host;      /* original Host value for X-Forwarded-Host */
    size_t host_len;
    const char *via_name; /* this fleet's Via pseudonym, appended to Via; NULL or "" = none */
    uint32_t hops;        /* Webgw-Hops sent: the count received plus one */
};

/* Writes the request head for the backend into out[cap]: origin-form target, HTTP/1.1,
 * hop-by-hop fields (HTTP2-Settings among them) and those named by Connection removed,
 * X-Forwarded-For/-Proto/-Host, Forwarded (RFC 7239: for=;proto=;host=, IPv6 and ports quoted)
 * and X-Real-IP set, client copies dropped unless trusted_peer (then lists are extended),
 * received Via fields kept and ours appended after them, Webgw-Hops replaced by fwd->hops,
 * framing regenerated from h->framing, and Connection/Upgrade kept only for an upgrade
 * (h->upgrade). Returns the length or -1 if cap is short. */
int http1_build_request(const struct http1_head *h, const struct http1_forward *fwd, char *out,
                        size_t cap);
/* The exact length http1_build_request() writes for the same arguments. */
size_t http1_request_len(const struct http1_head *h, const struct http1_forward *fwd);

/* Writes the response head for the client into out[cap]: HTTP/1.1 status line, hop-by-hop
 * fields removed, framing as given (LENGTH copies h->content_length), "Connection: close"
 * when !keep_alive, "Connection: keep-alive" for HTTP/1.0 clients that keep it. A 101 keeps
 * Connection: upgrade and Upgrade. Returns the length or -1 if cap is short. */
int http1_build_response(const struct http1_head *h, enum http1_framing framing, bool keep_alive,
                         bool client_http10, char *out, size_t cap);
/* The exact length http1_build_response() writes for the same arguments. */
size_t http1_response_len(const struct http1_head *h, enum http1_framing framing, bool keep_alive,
                          bool client_http10);

/* Writes a short response generated by the gateway (404, 502, ...): text/plain body `msg`.
 * Returns the length or -1 if cap is short. */
int http1_build_local(int status, const char *msg, bool keep_alive, bool head_only,
                      const char *extra_fields, char *out, size_t cap);

const char *http1_reason(int status);

/* ---- request loops (http1_via.c) ---------------------------------------------------------- */

enum http1_loop {
    HTTP1_LOOP_NONE = 0, /* forward it */
    HTTP1_LOOP_VIA = 1,  /* a Via member's received-by is via_name: it came through us */
    HTTP1_LOOP_HOPS = 2, /* Webgw-Hops says max_hops gateways or more were passed already */
};

/* Reads every Via and Webgw-Hops field of a request head. *hops receives the hop count it
 * arrived with (the largest Webgw-Hops; 0 without one; UINT32_MAX for a value that is not 1 to
 * 6 digits). Returns HTTP1_LOOP_VIA when via_name (compared case-insensitively; NULL or "" =
 * not checked) is the received-by of a Via member, else HTTP1_LOOP_HOPS when *hops >=
 * max_hops, else HTTP1_LOOP_NONE. */
enum http1_loop http1_loop_check(const struct http1_head *h, const char *via_name,
                                 uint32_t max_hops, uint32_t *hops);

/* Method is idempotent per RFC 9110 (GET, HEAD, OPTIONS, TRACE, PUT, DELETE). */
bool http1_method_idempotent(uint8_t method);

#endif /* WEBGW_PROXY_HTTP1_H */
