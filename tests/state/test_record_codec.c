/*
 * test_record_codec.c - the canonical record encoding: every kind survives a round trip, one
 * record has one byte sequence, and malformed input of every sort is refused with a reason.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/state/record_fixtures.h"

/* ---- a hand-written encoder, so tests can build what our encoder never would ------------- */

struct raw {
    uint8_t b[4096];
    size_t n;
};

static void raw_byte(struct raw *r, uint8_t v)
{
    assert_true(r->n < sizeof(r->b));
    r->b[r->n++] = v;
}

static void raw_be(struct raw *r, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--)
        raw_byte(r, (uint8_t)(v >> (8 * i)));
}

static void raw_data(struct raw *r, const void *p, size_t n)
{
    assert_true(r->n + n <= sizeof(r->b));
    memcpy(r->b + r->n, p, n);
    r->n += n;
}

/* Shortest-form uint, or `wide` forces the 8-byte form. */
static void raw_uint(struct raw *r, uint64_t v, bool wide)
{
    if (wide) {
        raw_byte(r, 0xcf);
        raw_be(r, v, 8);
    } else if (v <= 0x7f) {
        raw_byte(r, (uint8_t)v);
    } else if (v <= 0xff) {
        raw_byte(r, 0xcc);
        raw_be(r, v, 1);
    } else if (v <= 0xffff) {
        raw_byte(r, 0xcd);
        raw_be(r, v, 2);
    } else if (v <= 0xffffffffULL) {
        raw_byte(r, 0xce);
        raw_be(r, v, 4);
    } else {
        raw_byte(r, 0xcf);
        raw_be(r, v, 8);
    }
}

static void raw_bin(struct raw *r, const void *p, size_t n)
{
    if (n < 256) {
        raw_byte(r, 0xc4);
        raw_be(r, n, 1);
    } else {
        raw_byte(r, 0xc5);
        raw_be(r, n, 2);
    }
    raw_data(r, p, n);
}

/* Knobs for the ways a body can go wrong. */
struct body_opts {
    uint64_t format;
    bool wide_version;   /* version as uint64 instead of shortest form */
    bool str8_name;      /* name with a str8 header although it is shorter than 32 */
    bool kind_as_string; /* kind written as a str */
    unsigned fields;     /* array length announced for the body */
    int backend_len;     /* > 0: bytes of the first backend's bin */
    unsigned backends;   /* backends announced (and written) */
};

static struct body_opts default_opts(void)
{
    struct body_opts o = {.format = 1, .fields = 9, .backends = 1};
    return o;
}

static void raw_body(struct raw *r, const char *name, const struct body_opts *o)
{
    uint8_t owner[32] = {0};
    size_t len = strlen(name);

    raw_byte(r, (uint8_t)(0x90 | o->fields));
    raw_uint(r, o->format, false);
    if (o->kind_as_string)
        raw_data(r, "\xa5proxy", 6);
    else
        raw_uint(r, STATE_RECORD_PROXY, false);
    if (o->str8_name) {
        raw_byte(r, 0xd9);
        raw_be(r, len, 1);
    } else {
        raw_byte(r, (uint8_t)(0xa0 | len));
    }
    raw_data(r, name, len);
    raw_bin(r, owner, sizeof(owner));
    raw_uint(r, 5, o->wide_version);
    raw_uint(r, FIXTURE_NOW_MS - 5000, false);
    raw_uint(r, FIXTURE_NOW_MS, false);
    raw_byte(r, 0xc2);
    if (o->backends < 16) {
        raw_byte(r, (uint8_t)(0x90 | o->backends));
    } else {
        raw_byte(r, 0xdc);
        raw_be(r, o->backends, 2);
    }
    for (unsigned i = 0; i < o->backends; i++) {
        uint8_t be[18] = {10, 0, 0, (uint8_t)(i + 1), 0x1f, 0x90};
        raw_bin(r, be, (i == 0 && o->backend_len > 0) ? (size_t)o->backend_len : 6);
    }
}

/* Wraps a body into a signed record [bin body, bin signature]. */
static void raw_record(struct raw *out, const struct raw *body)
{
    uint8_t sig[64] = {0};

    out->n = 0;
    raw_byte(out, 0x92);
    raw_bin(out, body->b, body->n);
    raw_bin(out, sig, sizeof(sig));
}

static int decode_raw_body(const char *name, const struct body_opts *o, char *err)
{
    struct raw body = {.n = 0}, rec = {.n = 0};
    struct state_record out;

    raw_body(&body, name, o);
    raw_record(&rec, &body);
    return state_record_decode(rec.b, rec.n, &out, err, STATE_ERR_MAX);
}

/* ---- round trips ------------------------------------------------------------------------- */

static void round_trip(const struct state_record *rec)
{
    uint8_t buf[STATE_RECORD_MAX_BYTES], again[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX] = "";
    struct state_record out;
    int n, m;

    n = state_record_encode(rec, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(state_record_decode(buf, (size_t)n, &out, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_memory_equal(&out, rec, sizeof(out));
    /* the decoded record encodes to the very same bytes: signatures stay valid in transit */
    m = state_record_encode(&out, again, sizeof(again));
    assert_int_equal(m, n);
    assert_memory_equal(again, buf, (size_t)n);
}

static void test_round_trip_every_kind(void **state)
{
    struct state_record rec;

    rec = fixture_record(STATE_RECORD_RESERVE, "myapp");
    round_trip(&rec);
    rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    round_trip(&rec);
    rec.tls_passthrough = true;
    round_trip(&rec);
    rec = fixture_record(STATE_RECORD_FQDN, "www.example.org");
    round_trip(&rec);
    rec = fixture_record(STATE_RECORD_RELEASE, "myapp");
    round_trip(&rec);
}

static void test_round_trip_extremes(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_FQDN, "x");
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int n;

    /* longest name, every backend IPv6, largest integers: still under the record limit */
    memset(rec.name, 'a', STATE_FQDN_MAX);
    rec.name[STATE_FQDN_MAX] = '\0';
    rec.version = UINT64_MAX;
    rec.reserved_at_ms = UINT64_MAX - 1;
    rec.issued_at_ms = UINT64_MAX;
    rec.backend_count = STATE_BACKENDS_MAX;
    for (int i = 0; i < STATE_BACKENDS_MAX; i++) {
        rec.backends[i] = fixture_backend("2001:db8::1", (uint16_t)(65535 - i));
        rec.backends[i].addr[15] = (uint8_t)i;
    }
    round_trip(&rec);
    n = state_record_encode(&rec, buf, sizeof(buf));
    assert_true(n > 0 && n <= STATE_RECORD_MAX_BYTES);

    /* and the smallest values */
    rec = fixture_record(STATE_RECORD_RESERVE, "abc");
    rec.version = 0;
    rec.reserved_at_ms = 0;
    rec.issued_at_ms = 0;
    round_trip(&rec);
}

static void test_encoder_matches_hand_encoding(void **state)
{
    /* Our packer and the spec written out by hand agree byte for byte: the format is what the
     * comment in record_codec.c says, not whatever msgpack-c happens to do. */
    struct body_opts o = default_opts();
    struct raw body = {.n = 0};
    struct state_record rec;
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int n;

    raw_body(&body, "myapp", &o);
    memset(&rec, 0, sizeof(rec));
    rec.kind = STATE_RECORD_PROXY;
    strcpy(rec.name, "myapp");
    rec.version = 5;
    rec.reserved_at_ms = FIXTURE_NOW_MS - 5000;
    rec.issued_at_ms = FIXTURE_NOW_MS;
    rec.backend_count = 1;
    rec.backends[0] = fixture_backend("10.0.0.1", 8080);
    n = state_record_encode_body(&rec, buf, sizeof(buf));
    assert_int_equal(n, (int)body.n);
    assert_memory_equal(buf, body.b, body.n);
}

/* ---- canonical form ---------------------------------------------------------------------- */

static void test_hand_encoding_decodes(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX] = "";

    /* the control case for the tests below: the unmodified hand encoding is accepted */
    assert_int_equal(decode_raw_body("myapp", &o, err), 0);
}

static void test_wide_integer_is_not_canonical(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.wide_version = true;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record is not in canonical encoding");
}

static void test_long_string_header_is_not_canonical(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.str8_name = true;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record is not in canonical encoding");
}

static void test_wide_outer_bin_is_not_canonical(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");
    uint8_t body[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX];
    struct state_record out;
    struct raw r = {.n = 0};
    int n;

    n = state_record_encode_body(&rec, body, sizeof(body));
    assert_true(n > 0 && n < 256);
    raw_byte(&r, 0x92);
    raw_byte(&r, 0xc5); /* bin16 for a body that fits bin8 */
    raw_be(&r, (uint64_t)n, 2);
    raw_data(&r, body, (size_t)n);
    raw_bin(&r, rec.signature, 64);
    assert_int_equal(state_record_decode(r.b, r.n, &out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "record is not in canonical encoding");
}

/* ---- malformed input --------------------------------------------------------------------- */

static void test_truncated_at_every_length(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp"), out;
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX];
    int n;

    n = state_record_encode(&rec, buf, sizeof(buf));
    assert_true(n > 0);
    for (int len = 0; len < n; len++) {
        err[0] = '\0';
        assert_int_equal(state_record_decode(buf, (size_t)len, &out, err, sizeof(err)),
                         STATE_EINVAL);
        assert_true(strlen(err) > 0);
    }
    assert_int_equal(state_record_decode(buf, 3, &out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "record truncated in field body at byte 3");
}

static void test_trailing_bytes(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp"), out;
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX];
    int n;

    n = state_record_encode(&rec, buf, sizeof(buf));
    buf[n] = 0xc0;
    assert_int_equal(state_record_decode(buf, (size_t)n + 1, &out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "record has 1 trailing bytes");
}

static void test_trailing_bytes_inside_body(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp"), out;
    uint8_t body[STATE_RECORD_MAX_BYTES];
    struct raw r = {.n = 0};
    char err[STATE_ERR_MAX];
    int n;

    n = state_record_encode_body(&rec, body, sizeof(body));
    body[n++] = 0x00;
    raw_byte(&r, 0x92);
    raw_bin(&r, body, (size_t)n);
    raw_bin(&r, rec.signature, 64);
    assert_int_equal(state_record_decode(r.b, r.n, &out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "record body has 1 trailing bytes");
}

static void test_oversized_record(void **state)
{
    static uint8_t big[STATE_RECORD_MAX_BYTES + 1];
    struct state_record out;
    char err[STATE_ERR_MAX];

    assert_int_equal(state_record_decode(big, sizeof(big), &out, err, sizeof(err)), STATE_ETOOBIG);
    assert_string_equal(err, "record is 2049 bytes, over the 2048-byte limit");
}

static void test_unknown_format_version(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.format = 2;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "unknown record format version 2 (this node reads 1)");
}

static void test_wrong_type(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.kind_as_string = true;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record body field kind: expected an unsigned integer, got type "
                             "byte 0xa5 at byte 2");
}

static void test_wrong_field_count(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.fields = 10;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record body has 10 fields, expected 9");
}

static void test_name_bytes_refused(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    assert_int_equal(decode_raw_body("myApp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record name has byte 0x41 at position 2: names are lowercase "
                             "printable ASCII");
    assert_int_equal(decode_raw_body("my\x01pp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record name has byte 0x01 at position 2: names are lowercase "
                             "printable ASCII");
}

static void test_name_with_nul_refused(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp"), out;
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX];
    int n;

    /* "myapp" -> "my\0pp" in place: the str header still says 5 bytes */
    n = state_record_encode(&rec, buf, sizeof(buf));
    for (int i = 0; i + 5 <= n; i++) {
        if (memcmp(buf + i, "myapp", 5) == 0) {
            buf[i + 2] = '\0';
            break;
        }
    }
    assert_int_equal(state_record_decode(buf, (size_t)n, &out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "record name has byte 0x00 at position 2: names are lowercase "
                             "printable ASCII");
}

static void test_too_many_backends(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.backends = 17;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record has 17 backends, over the limit of 16");
    o.backends = 16;
    assert_int_equal(decode_raw_body("myapp", &o, err), 0);
}

static void test_bad_backend_length(void **state)
{
    struct body_opts o = default_opts();
    char err[STATE_ERR_MAX];

    o.backend_len = 5;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
    assert_string_equal(err, "record backend 1 is 5 bytes: expected 6 (IPv4) or 18 (IPv6)");
    o.backend_len = 17;
    assert_int_equal(decode_raw_body("myapp", &o, err), STATE_EINVAL);
}

static void test_huge_announced_lengths(void **state)
{
    /* Headers announcing billions of elements or bytes must be refused from the bytes that
     * remain, without trying to allocate what they announce. */
    static const uint8_t arr32[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t bin32[] = {0x92, 0xc6, 0xff, 0xff, 0xff, 0xff, 0x00};
    static const uint8_t arr16[] = {0xdc, 0x00, 0x02, 0xc4, 0x00};
    struct state_record out;
    char err[STATE_ERR_MAX];

    assert_int_equal(state_record_decode(arr32, sizeof(arr32), &out, err, sizeof(err)),
                     STATE_EINVAL);
    assert_string_equal(err, "record has 4294967295 parts, expected 2 (body, signature)");
    assert_int_equal(state_record_decode(bin32, sizeof(bin32), &out, err, sizeof(err)),
                     STATE_EINVAL);
    assert_string_equal(err, "record truncated in field body at byte 6");
    /* a wide array header for 2 parts: truncated first, and never canonical */
    assert_int_equal(state_record_decode(arr16, sizeof(arr16), &out, err, sizeof(err)),
                     STATE_EINVAL);
}

static void test_refused_record_leaves_output_zeroed(void **state)
{
    struct body_opts o = default_opts();
    struct raw body = {.n = 0}, rec = {.n = 0};
    struct state_record out, zero;
    char err[STATE_ERR_MAX];

    o.wide_version = true; /* fully parsed, refused only at the canonical check */
    raw_body(&body, "myapp", &o);
    raw_record(&rec, &body);
    memset(&zero, 0, sizeof(zero));
    memset(&out, 0x5a, sizeof(out));
    assert_int_equal(state_record_decode(rec.b, rec.n, &out, err, sizeof(err)), STATE_EINVAL);
    assert_memory_equal(&out, &zero, sizeof(out));
}

/* ---- encoder limits ---------------------------------------------------------------------- */

static void test_encode_short_buffer(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int n;

    n = state_record_encode(&rec, buf, sizeof(buf));
    assert_true(n > 0);
    for (int cap = 0; cap < n; cap++)
        assert_int_equal(state_record_encode(&rec, buf, (size_t)cap), STATE_ETOOBIG);
    assert_int_equal(state_record_encode(&rec, buf, (size_t)n), n);
}

static void test_encode_refuses_unencodable(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    uint8_t buf[STATE_RECORD_MAX_BYTES];

    rec.backends[1].family = 5;
    assert_int_equal(state_record_encode(&rec, buf, sizeof(buf)), STATE_EINVAL);
    rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    rec.backend_count = STATE_BACKENDS_MAX + 1;
    assert_int_equal(state_record_encode(&rec, buf, sizeof(buf)), STATE_EINVAL);
    rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    rec.kind = (enum state_record_kind)9;
    assert_int_equal(state_record_encode(&rec, buf, sizeof(buf)), STATE_EINVAL);
    rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    memset(rec.name, 'a', sizeof(rec.name)); /* no terminating NUL */
    assert_int_equal(state_record_encode(&rec, buf, sizeof(buf)), STATE_EINVAL);
    /* whatever encodes must decode: names the decoder refuses are not encoded either */
    strcpy(rec.name, "MyApp");
    assert_int_equal(state_record_encode(&rec, buf, sizeof(buf)), STATE_EINVAL);
    strcpy(rec.name, "my app");
    assert_int_equal(state_record_encode_body(&rec, buf, sizeof(buf)), STATE_EINVAL);
}

static void test_kind_names(void **state)
{
    assert_string_equal(state_record_kind_name(STATE_RECORD_RESERVE), "reserve");
    assert_string_equal(state_record_kind_name(STATE_RECORD_PROXY), "proxy");
    assert_string_equal(state_record_kind_name(STATE_RECORD_FQDN), "fqdn");
    assert_string_equal(state_record_kind_name(STATE_RECORD_RELEASE), "release");
    assert_string_equal(state_record_kind_name((enum state_record_kind)0), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_kind),
        cmocka_unit_test(test_round_trip_extremes),
        cmocka_unit_test(test_encoder_matches_hand_encoding),
        cmocka_unit_test(test_hand_encoding_decodes),
        cmocka_unit_test(test_wide_integer_is_not_canonical),
        cmocka_unit_test(test_long_string_header_is_not_canonical),
        cmocka_unit_test(test_wide_outer_bin_is_not_canonical),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_trailing_bytes_inside_body),
        cmocka_unit_test(test_oversized_record),
        cmocka_unit_test(test_unknown_format_version),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_wrong_field_count),
        cmocka_unit_test(test_name_bytes_refused),
        cmocka_unit_test(test_name_with_nul_refused),
        cmocka_unit_test(test_too_many_backends),
        cmocka_unit_test(test_bad_backend_length),
        cmocka_unit_test(test_huge_announced_lengths),
        cmocka_unit_test(test_refused_record_leaves_output_zeroed),
        cmocka_unit_test(test_encode_short_buffer),
        cmocka_unit_test(test_encode_refuses_unencodable),
        cmocka_unit_test(test_kind_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
