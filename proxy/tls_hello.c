/*
 * tls_hello.c - a strict, allocation-free reader of the TLS ClientHello.
 *
 * The HTTPS listener must know the SNI host name before it decides between splicing the raw
 * bytes to a passthrough backend and terminating TLS itself, and it must decide without
 * consuming anything from the socket. So it peeks, and asks this pure function whether the
 * bytes seen so far are a whole ClientHello (RFC 8446 4.1.2, RFC 5246 7.4.1.2), a prefix of
 * one, plain text, or garbage.
 *
 * Why so strict: the bytes come from anyone on the Internet and decide where a connection
 * goes. Every length is checked against the one enclosing it and an inconsistency is an
 * answer (MALFORMED), never a guess; a passthrough backend then never sees a hello we read
 * differently from the way it will. The handshake message is reassembled into a bounded
 * stack buffer because a large hello (many key shares, padding) may span records.
 */
#include "proxy/tls_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TLS_CONTENT_HANDSHAKE 22
#define TLS_HS_CLIENT_HELLO 1
#define TLS_EXT_SERVER_NAME 0
#define TLS_EXT_ALPN 16
#define TLS_EXT_SUPPORTED_VERSIONS 43
#define TLS_SNI_HOST_NAME 0

/* A read-only window over bytes; every read checks what is left. */
struct cursor {
    const uint8_t *p; /* next unread byte */
    size_t n;         /* bytes left */
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return TLS_HELLO_MALFORMED;
}

static bool cur_u8(struct cursor *c, unsigned *v)
{
    if (c->n < 1)
        return false;
    *v = c->p[0];
    c->p += 1;
    c->n -= 1;
    return true;
}

static bool cur_u16(struct cursor *c, unsigned *v)
{
    if (c->n < 2)
        return false;
    *v = ((unsigned)c->p[0] << 8) | c->p[1];
    c->p += 2;
    c->n -= 2;
    return true;
}

/* Splits the next `len` bytes off `c` into `sub`. */
static bool cur_take(struct cursor *c, size_t len, struct cursor *sub)
{
    if (c->n < len)
        return false;
    sub->p = c->p;
    sub->n = len;
    c->p += len;
    c->n -= len;
    return true;
}

/* A vector with a one-byte length prefix (<0..2^8-1>). */
static bool cur_vec8(struct cursor *c, struct cursor *sub)
{
    unsigned len;
    return cur_u8(c, &len) && cur_take(c, len, sub);
}

/* A vector with a two-byte length prefix (<0..2^16-1>). */
static bool cur_vec16(struct cursor *c, struct cursor *sub)
{
    unsigned len;
    return cur_u16(c, &len) && cur_take(c, len, sub);
}

/*
 * A DNS host name as SNI carries it: 1..253 bytes, labels of 1..63 of [A-Za-z0-9-_], no
 * leading, trailing or doubled dot (RFC 6066 3: no trailing dot). '_' is tolerated because
 * real names carry it. Copies the name lowercased into `out`.
 */
static bool host_name_valid(const uint8_t *name, size_t len, char *out)
{
    size_t label = 0;

    if (len < 1 || len > TLS_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = name[i];
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            label++;
        } else if (ch >= 'A' && ch <= 'Z') {
            ch = (uint8_t)(ch - 'A' + 'a');
            label++;
        } else {
            return false;
        }
        if (label > 63)
            return false;
        out[i] = (char)ch;
    }
    out[len] = '\0';
    return label > 0;
}

static int parse_server_name(struct cursor ext, struct tls_client_hello *out, char *err,
                             size_t errlen)
{
    struct cursor list, name;
    unsigned type;

    if (!cur_vec16(&ext, &list) || ext.n != 0)
        return fail(err, errlen, "server_name: list length does not match extension");
    /* RFC 6066 allows one name per type and defines only host_name; OpenSSL accepts
     * exactly one entry, and so do we, so that we never route on a name it ignores. */
    if (!cur_u8(&list, &type) || !cur_vec16(&list, &name))
        return fail(err, errlen, "server_name: truncated entry");
    if (list.n != 0)
        return fail(err, errlen, "server_name: more than one entry");
    if (type != TLS_SNI_HOST_NAME)
        return fail(err, errlen, "server_name: name type %u is not host_name", type);
    if (!host_name_valid(name.p, name.n, out->sni))
        return fail(err, errlen, "server_name: invalid host name (%zu bytes)", name.n);
    out->has_sni = true;
    return TLS_HELLO_OK;
}

static int parse_alpn(struct cursor ext, struct tls_client_hello *out, char *err, size_t errlen)
{
    struct cursor list, proto;

    if (!cur_vec16(&ext, &list) || ext.n != 0)
        return fail(err, errlen, "alpn: list length does not match extension");
    if (list.n == 0)
        return fail(err, errlen, "alpn: empty protocol list");
    while (list.n > 0) {
        if (!cur_vec8(&list, &proto))
            return fail(err, errlen, "alpn: truncated protocol name");
        if (proto.n == 0)
            return fail(err, errlen, "alpn: empty protocol name");
        if (out->alpn_count == TLS_ALPN_MAX || proto.n > TLS_ALPN_NAME_MAX) {
            out->alpn_truncated = true;
            continue;
        }
        memcpy(out->alpn[out->alpn_count], proto.p, proto.n);
        out->alpn[out->alpn_count][proto.n] = '\0';
        out->alpn_count++;
    }
    return TLS_HELLO_OK;
}

static int parse_supported_versions(struct cursor ext, struct tls_client_hello *out, char *err,
                                    size_t errlen)
{
    struct cursor list;
    unsigned v;

    if (!cur_vec8(&ext, &list) || ext.n != 0)
        return fail(err, errlen, "supported_versions: list length does not match extension");
    if (list.n < 2 || list.n % 2 != 0)
        return fail(err, errlen, "supported_versions: bad list length %zu", list.n);
    while (cur_u16(&list, &v))
        if (v == 0x0304)
            out->offers_tls13 = true;
    return TLS_HELLO_OK;
}

/* The ClientHello body, once reassembled whole. */
static int parse_body(struct cursor c, struct tls_client_hello *out, char *err, size_t errlen)
{
    struct cursor skip, suites, exts, ext;
    unsigned version, type;
    uint8_t seen[65536 / 8];
    int rc;

    if (!cur_u16(&c, &version) || !cur_take(&c, 32, &skip))
        return fail(err, errlen, "client_hello: truncated version or random");
    if (version >> 8 != 3)
        return fail(err, errlen, "client_hello: version 0x%04x is not TLS", version);
    out->legacy_version = (uint16_t)version;
    if (!cur_vec8(&c, &skip) || skip.n > 32)
        return fail(err, errlen, "client_hello: bad session id");
    if (!cur_vec16(&c, &suites) || suites.n < 2 || suites.n % 2 != 0)
        return fail(err, errlen, "client_hello: bad cipher suites length");
    if (!cur_vec8(&c, &skip) || skip.n < 1)
        return fail(err, errlen, "client_hello: bad compression methods");
    if (c.n == 0)
        return TLS_HELLO_OK; /* a TLS 1.2 hello may have no extensions: then no SNI */
    if (!cur_vec16(&c, &exts) || c.n != 0)
        return fail(err, errlen, "client_hello: extensions length does not match message");

    memset(seen, 0, sizeof(seen));
    while (exts.n > 0) {
        if (!cur_u16(&exts, &type) || !cur_vec16(&exts, &ext))
            return fail(err, errlen, "client_hello: truncated extension");
        if (seen[type / 8] & (1u << (type % 8)))
            return fail(err, errlen, "client_hello: extension %u repeated", type);
        seen[type / 8] |= (uint8_t)(1u << (type % 8));
        switch (type) {
        case TLS_EXT_SERVER_NAME:
            rc = parse_server_name(ext, out, err, errlen);
            break;
        case TLS_EXT_ALPN:
            rc = parse_alpn(ext, out, err, errlen);
            break;
        case TLS_EXT_SUPPORTED_VERSIONS:
            rc = parse_supported_versions(ext, out, err, errlen);
            break;
        default:
            rc = TLS_HELLO_OK;
        }
        if (rc != TLS_HELLO_OK)
            return rc;
    }
    return TLS_HELLO_OK;
}

int tls_hello_parse(const uint8_t *buf, size_t len, struct tls_client_hello *out, char *err,
                    size_t errlen)
{
    uint8_t hs[4 + TLS_HELLO_MAX_BYTES]; /* the handshake message, reassembled */
    size_t hs_len = 0, total = 0, pos = 0;

    if (err && errlen)
        err[0] = '\0';
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return TLS_HELLO_NEED_MORE;

    for (;;) {
        size_t have = len - pos, rlen, avail;

        /* Judge every header byte we already have, so garbage is refused early. */
        if (have >= 1 && buf[pos] != TLS_CONTENT_HANDSHAKE) {
            if (pos == 0)
                return TLS_HELLO_NOT_TLS;
            return fail(err, errlen, "record: content type %u inside the client hello", buf[pos]);
        }
        if (have >= 2 && buf[pos + 1] != 3) {
            if (pos == 0)
                return TLS_HELLO_NOT_TLS;
            return fail(err, errlen, "record: version major %u is not TLS", buf[pos + 1]);
        }
        if (have < 5)
            return TLS_HELLO_NEED_MORE;
        rlen = ((size_t)buf[pos + 3] << 8) | buf[pos + 4];
        if (rlen == 0 || rlen > TLS_RECORD_MAX)
            return fail(err, errlen, "record: length %zu out of range", rlen);

        avail = have - 5 < rlen ? have - 5 : rlen;
        if (hs_len + avail > sizeof(hs))
            return fail(err, errlen, "client_hello: larger than %d bytes", TLS_HELLO_MAX_BYTES);
        memcpy(hs + hs_len, buf + pos + 5, avail);
        hs_len += avail;

        if (hs_len >= 4 && total == 0) {
            size_t msg_len = ((size_t)hs[1] << 16) | ((size_t)hs[2] << 8) | hs[3];
            if (hs[0] != TLS_HS_CLIENT_HELLO)
                return fail(err, errlen, "handshake: type %u is not client_hello", hs[0]);
            if (msg_len > TLS_HELLO_MAX_BYTES)
                return fail(err, errlen, "client_hello: length %zu over %d", msg_len,
                            TLS_HELLO_MAX_BYTES);
            total = 4 + msg_len;
        }
        /* The hello is the whole first flight: nothing may follow it in its records. */
        if (total != 0 && hs_len > total)
            return fail(err, errlen, "record: %zu bytes after the client hello", hs_len - total);
        if (avail < rlen)
            return TLS_HELLO_NEED_MORE;
        pos += 5 + rlen;
        if (total != 0 && hs_len == total)
            break;
    }

    out->bytes = pos;
    return parse_body((struct cursor){hs + 4, total - 4}, out, err, errlen);
}
