/*
 * record_codec.c - the canonical msgpack encoding of a signed record.
 *
 * A signature is only stable if every record has exactly one byte sequence, so the format is
 * fixed positions, not a map:
 *
 *   body   = [ 1 (format), kind, name (str), owner (bin 32), version, reserved_at_ms,
 *              issued_at_ms, tls_passthrough (bool), [ backend (bin 6 | bin 18), ... ] ]
 *            where a backend is the address bytes then the port, big-endian
 *   record = [ body (bin), signature (bin 64) ]
 *
 * The body travels as a bin so a receiver verifies the signature over the exact bytes it got.
 * Integers and lengths use msgpack's shortest form, which is what msgpack-c's packer writes.
 *
 * Encoding uses msgpack-c's packer. Decoding does not use its unpacker: that allocates an
 * array's storage from the count in the header before any element arrives (a 5-byte input
 * asks for 64 GiB), and it accepts every width of every integer. The reader below walks the
 * fixed schema over the caller's bytes without allocating, bounds every length by the bytes
 * that remain, and then re-encodes what it read: if the bytes differ, the input was not
 * canonical and is refused.
 */
#include <string.h>

#include <msgpack.h>

#include "state/record_internal.h"

_Static_assert(STATE_RECORD_BODY_MAX + 2 + 3 + 2 + STATE_SIGNATURE_LEN <= STATE_RECORD_MAX_BYTES,
               "a maximal record must fit the record size limit");

#define BODY_FIELDS 9

/* ---- encoding ----------------------------------------------------------------------------- */

int state_out_write(void *data, const char *bytes, size_t n)
{
    struct state_out_buf *o = data;

    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return -1;
    }
    memcpy(o->buf + o->len, bytes, n);
    o->len += n;
    return 0;
}

static void pack_backend(msgpack_packer *pk, const struct state_backend *be)
{
    uint8_t raw[18];
    size_t alen = be->family == 4 ? 4 : 16;

    memcpy(raw, be->addr, alen);
    raw[alen] = (uint8_t)(be->port >> 8);
    raw[alen + 1] = (uint8_t)(be->port & 0xff);
    msgpack_pack_bin_with_body(pk, raw, alen + 2);
}

/* The bytes a key may hold on the wire: the normalized form, printable, no upper case.
 * Anything else would give one name two encodings, or carry control bytes into logs. */
static bool wire_name_byte(uint8_t c)
{
    return c >= 0x21 && c <= 0x7e && !(c >= 'A' && c <= 'Z');
}

/* Refuses what has no encoding at all, so that whatever encodes also decodes; the semantic
 * rules are state_record_validate's. */
static int encodable(const struct state_record *rec)
{
    const char *end;

    if (!state_record_kind_valid((int)rec->kind))
        return STATE_EINVAL;
    end = memchr(rec->name, '\0', sizeof(rec->name));
    if (end == NULL)
        return STATE_EINVAL;
    for (const char *p = rec->name; p < end; p++)
        if (!wire_name_byte((uint8_t)*p))
            return STATE_EINVAL;
    if (rec->backend_count > STATE_BACKENDS_MAX)
        return STATE_EINVAL;
    for (unsigned i = 0; i < rec->backend_count; i++)
        if (rec->backends[i].family != 4 && rec->backends[i].family != 6)
            return STATE_EINVAL;
    return 0;
}

int state_record_encode_body(const struct state_record *rec, uint8_t *buf, size_t cap)
{
    struct state_out_buf out = {.buf = buf, .cap = cap};
    msgpack_packer pk;
    size_t name_len;

    if (encodable(rec) != 0)
        return STATE_EINVAL;
    name_len = strlen(rec->name);
    msgpack_packer_init(&pk, &out, state_out_write);
    msgpack_pack_array(&pk, BODY_FIELDS);
    msgpack_pack_uint64(&pk, STATE_RECORD_FORMAT);
    msgpack_pack_uint64(&pk, (uint64_t)rec->kind);
    msgpack_pack_str_with_body(&pk, rec->name, name_len);
    msgpack_pack_bin_with_body(&pk, rec->owner, STATE_OWNER_LEN);
    msgpack_pack_uint64(&pk, rec->version);
    msgpack_pack_uint64(&pk, rec->reserved_at_ms);
    msgpack_pack_uint64(&pk, rec->issued_at_ms);
    if (rec->tls_passthrough)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    msgpack_pack_array(&pk, rec->backend_count);
    for (unsigned i = 0; i < rec->backend_count; i++)
        pack_backend(&pk, &rec->backends[i]);
    if (out.overflow)
        return STATE_ETOOBIG;
    return (int)out.len;
}

int state_record_encode(const struct state_record *rec, uint8_t *buf, size_t cap)
{
    uint8_t body[STATE_RECORD_BODY_MAX];
    struct state_out_buf out = {.buf = buf, .cap = cap};
    msgpack_packer pk;
    int body_len;

    body_len = state_record_encode_body(rec, body, sizeof(body));
    if (body_len < 0)
        return body_len;
    msgpack_packer_init(&pk, &out, state_out_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin_with_body(&pk, body, (size_t)body_len);
    msgpack_pack_bin_with_body(&pk, rec->signature, STATE_SIGNATURE_LEN);
    if (out.overflow)
        return STATE_ETOOBIG;
    return (int)out.len;
}

/* ---- decoding ----------------------------------------------------------------------------- */

static int truncated(struct state_reader *r)
{
    state_errf(r->err, r->errlen, "%s truncated in field %s at byte %zu", r->what, r->field,
               r->off);
    return STATE_EINVAL;
}

static int wrong_type(struct state_reader *r, const char *expected)
{
    state_errf(r->err, r->errlen, "%s field %s: expected %s, got type byte 0x%02x at byte %zu",
               r->what, r->field, expected, r->p[r->off], r->off);
    return STATE_EINVAL;
}

/* Reads a big-endian unsigned integer of n bytes after the type byte. */
static int read_be(struct state_reader *r, size_t n, uint64_t *v)
{
    if (r->len - r->off < n)
        return truncated(r);
    *v = 0;
    for (size_t i = 0; i < n; i++)
        *v = (*v << 8) | r->p[r->off + i];
    r->off += n;
    return 0;
}

int state_read_uint(struct state_reader *r, uint64_t *v)
{
    uint8_t t;

    if (r->off >= r->len)
        return truncated(r);
    t = r->p[r->off];
    if (t <= 0x7f) {
        r->off++;
        *v = t;
        return 0;
    }
    switch (t) {
    case 0xcc:
    case 0xcd:
    case 0xce:
    case 0xcf:
        r->off++;
        return read_be(r, (size_t)1 << (t - 0xcc), v);
    }
    return wrong_type(r, "an unsigned integer");
}

int state_read_bool(struct state_reader *r, bool *v)
{
    if (r->off >= r->len)
        return truncated(r);
    if (r->p[r->off] != 0xc2 && r->p[r->off] != 0xc3)
        return wrong_type(r, "a boolean");
    *v = r->p[r->off] == 0xc3;
    r->off++;
    return 0;
}

int state_read_array(struct state_reader *r, uint64_t *count)
{
    uint8_t t;

    if (r->off >= r->len)
        return truncated(r);
    t = r->p[r->off];
    if ((t & 0xf0) == 0x90) {
        r->off++;
        *count = t & 0x0f;
        return 0;
    }
    if (t == 0xdc || t == 0xdd) {
        r->off++;
        return read_be(r, t == 0xdc ? 2 : 4, count);
    }
    return wrong_type(r, "an array");
}

/* Reads a str (is_str) or bin header and returns a pointer to its bytes inside the input. */
int state_read_bytes(struct state_reader *r, bool is_str, const uint8_t **data, size_t *n)
{
    uint64_t len;
    uint8_t t;
    int rc;

    if (r->off >= r->len)
        return truncated(r);
    t = r->p[r->off];
    if (is_str && (t & 0xe0) == 0xa0) {
        r->off++;
        len = t & 0x1f;
    } else if ((is_str && t >= 0xd9 && t <= 0xdb) || (!is_str && t >= 0xc4 && t <= 0xc6)) {
        r->off++;
        rc = read_be(r, (size_t)1 << (t - (is_str ? 0xd9 : 0xc4)), &len);
        if (rc != 0)
            return rc;
    } else {
        return wrong_type(r, is_str ? "a string" : "binary data");
    }
    if (len > r->len - r->off)
        return truncated(r);
    *data = r->p + r->off;
    *n = (size_t)len;
    r->off += (size_t)len;
    return 0;
}

int state_read_name(struct state_reader *r, const char *who, char *out)
{
    const uint8_t *name;
    size_t n;
    int rc;

    r->field = "name";
    rc = state_read_bytes(r, true, &name, &n);
    if (rc != 0)
        return rc;
    if (n > STATE_FQDN_MAX) {
        state_errf(r->err, r->errlen, "%s name is %zu bytes, over the %d-byte limit", who, n,
                   STATE_FQDN_MAX);
        return STATE_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!wire_name_byte(name[i])) {
            state_errf(r->err, r->errlen,
                       "%s name has byte 0x%02x at position %zu: names are "
                       "lowercase printable ASCII",
                       who, name[i], i);
            return STATE_EINVAL;
        }
    }
    memcpy(out, name, n);
    out[n] = '\0';
    return 0;
}

static int decode_backends(struct state_reader *r, struct state_record *out)
{
    uint64_t count;
    int rc;

    r->field = "backends";
    rc = state_read_array(r, &count);
    if (rc != 0)
        return rc;
    if (count > STATE_BACKENDS_MAX) {
        state_errf(r->err, r->errlen, "record has %llu backends, over the limit of %d",
                   (unsigned long long)count, STATE_BACKENDS_MAX);
        return STATE_EINVAL;
    }
    out->backend_count = (uint8_t)count;
    for (unsigned i = 0; i < count; i++) {
        struct state_backend *be = &out->backends[i];
        const uint8_t *raw;
        size_t n, alen;

        r->field = "backend";
        rc = state_read_bytes(r, false, &raw, &n);
        if (rc != 0)
            return rc;
        if (n != 6 && n != 18) {
            state_errf(r->err, r->errlen,
                       "record backend %u is %zu bytes: expected 6 (IPv4) or 18 (IPv6)", i + 1, n);
            return STATE_EINVAL;
        }
        alen = n - 2;
        be->family = alen == 4 ? 4 : 6;
        memcpy(be->addr, raw, alen);
        be->port = (uint16_t)(raw[alen] << 8 | raw[alen + 1]);
    }
    return 0;
}

static int decode_body(const uint8_t *body, size_t len, struct state_record *out, char *err,
                       size_t errlen)
{
    struct state_reader r = {.p = body,
                             .len = len,
                             .what = "record body",
                             .field = "body",
                             .err = err,
                             .errlen = errlen};
    const uint8_t *owner;
    uint64_t count, format, kind;
    size_t n;
    int rc;

    rc = state_read_array(&r, &count);
    if (rc != 0)
        return rc;
    if (count != BODY_FIELDS) {
        state_errf(err, errlen, "record body has %llu fields, expected %d",
                   (unsigned long long)count, BODY_FIELDS);
        return STATE_EINVAL;
    }
    r.field = "format";
    if ((rc = state_read_uint(&r, &format)) != 0)
        return rc;
    if (format != STATE_RECORD_FORMAT) {
        state_errf(err, errlen, "unknown record format version %llu (this node reads %d)",
                   (unsigned long long)format, STATE_RECORD_FORMAT);
        return STATE_EINVAL;
    }
    r.field = "kind";
    if ((rc = state_read_uint(&r, &kind)) != 0)
        return rc;
    if (kind < STATE_RECORD_RESERVE || kind > STATE_RECORD_RELEASE) {
        state_errf(err, errlen, "unknown record kind %llu", (unsigned long long)kind);
        return STATE_EINVAL;
    }
    out->kind = (enum state_record_kind)kind;
    if ((rc = state_read_name(&r, "record", out->name)) != 0)
        return rc;
    r.field = "owner";
    if ((rc = state_read_bytes(&r, false, &owner, &n)) != 0)
        return rc;
    if (n != STATE_OWNER_LEN) {
        state_errf(err, errlen, "record owner is %zu bytes, expected %d", n, STATE_OWNER_LEN);
        return STATE_EINVAL;
    }
    memcpy(out->owner, owner, STATE_OWNER_LEN);
    r.field = "version";
    if ((rc = state_read_uint(&r, &out->version)) != 0)
        return rc;
    r.field = "reserved_at_ms";
    if ((rc = state_read_uint(&r, &out->reserved_at_ms)) != 0)
        return rc;
    r.field = "issued_at_ms";
    if ((rc = state_read_uint(&r, &out->issued_at_ms)) != 0)
        return rc;
    r.field = "tls_passthrough";
    if ((rc = state_read_bool(&r, &out->tls_passthrough)) != 0)
        return rc;
    if ((rc = decode_backends(&r, out)) != 0)
        return rc;
    if (r.off != len) {
        state_errf(err, errlen, "record body has %zu trailing bytes", len - r.off);
        return STATE_EINVAL;
    }
    return 0;
}

static int decode_record(const uint8_t *buf, size_t len, struct state_record *out, char *err,
                         size_t errlen)
{
    struct state_reader r = {
        .p = buf, .len = len, .what = "record", .field = "record", .err = err, .errlen = errlen};
    uint8_t again[STATE_RECORD_MAX_BYTES];
    const uint8_t *body, *sig;
    size_t body_len, sig_len;
    uint64_t count;
    int rc, n;

    if (len > STATE_RECORD_MAX_BYTES) {
        state_errf(err, errlen, "record is %zu bytes, over the %d-byte limit", len,
                   STATE_RECORD_MAX_BYTES);
        return STATE_ETOOBIG;
    }
    memset(out, 0, sizeof(*out));
    if ((rc = state_read_array(&r, &count)) != 0)
        return rc;
    if (count != 2) {
        state_errf(err, errlen, "record has %llu parts, expected 2 (body, signature)",
                   (unsigned long long)count);
        return STATE_EINVAL;
    }
    r.field = "body";
    if ((rc = state_read_bytes(&r, false, &body, &body_len)) != 0)
        return rc;
    r.field = "signature";
    if ((rc = state_read_bytes(&r, false, &sig, &sig_len)) != 0)
        return rc;
    if (sig_len != STATE_SIGNATURE_LEN) {
        state_errf(err, errlen, "record signature is %zu bytes, expected %d", sig_len,
                   STATE_SIGNATURE_LEN);
        return STATE_EINVAL;
    }
    if (r.off != len) {
        state_errf(err, errlen, "record has %zu trailing bytes", len - r.off);
        return STATE_EINVAL;
    }
    if ((rc = decode_body(body, body_len, out, err, errlen)) != 0)
        return rc;
    memcpy(out->signature, sig, STATE_SIGNATURE_LEN);

    /* One record, one byte sequence: whatever wider integer or longer length header the
     * reader tolerated shows up here as a difference. */
    n = state_record_encode(out, again, sizeof(again));
    if (n < 0 || (size_t)n != len || memcmp(again, buf, len) != 0) {
        state_errf(err, errlen, "record is not in canonical encoding");
        return STATE_EINVAL;
    }
    return 0;
}

int state_record_decode(const uint8_t *buf, size_t len, struct state_record *out, char *err,
                        size_t errlen)
{
    int rc = decode_record(buf, len, out, err, errlen);

    /* a refused record leaves nothing half-filled behind for a careless caller */
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
