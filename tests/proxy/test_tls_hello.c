/*
 * test_tls_hello.c - the ClientHello reader against real OpenSSL hellos and broken ones.
 *
 * What a user would see: the gateway routes a TLS connection by the name the client asked
 * for, waits while only part of the hello has arrived, and refuses (never misroutes) a hello
 * whose lengths do not add up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/tls_internal.h"
#include "tests/proxy/tls_test_util.h"

static const unsigned char alpn_h2_h11[] = "\x02h2\x08http/1.1";

/* ---- a hand-made hello, for exact control over every length ------------------------- */

struct buf {
    uint8_t b[70000];
    size_t n;
};

static void put(struct buf *o, const void *p, size_t n)
{
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void put8(struct buf *o, unsigned v)
{
    o->b[o->n++] = (uint8_t)v;
}

static void put16(struct buf *o, unsigned v)
{
    put8(o, v >> 8);
    put8(o, v & 0xff);
}

static void put_ext(struct buf *o, unsigned type, const void *data, size_t len)
{
    put16(o, type);
    put16(o, (unsigned)len);
    put(o, data, len);
}

static void put_sni_ext(struct buf *o, const char *name)
{
    struct buf e = {.n = 0};
    size_t n = strlen(name);
    put16(&e, (unsigned)(n + 3));
    put8(&e, 0);
    put16(&e, (unsigned)n);
    put(&e, name, n);
    put_ext(o, 0, e.b, e.n);
}

/* One record holding one ClientHello whose extension block is `exts` (NULL: no block). */
static void make_hello(struct buf *out, const struct buf *exts)
{
    static struct buf body, hs;
    uint8_t random[32] = {0};
    body.n = hs.n = 0;
    put16(&body, 0x0303);
    put(&body, random, 32);
    put8(&body, 0);  /* session id */
    put16(&body, 2); /* cipher suites */
    put16(&body, 0x1301);
    put8(&body, 1); /* compression methods */
    put8(&body, 0);
    if (exts) {
        put16(&body, (unsigned)exts->n);
        put(&body, exts->b, exts->n);
    }
    put8(&hs, 1);
    put8(&hs, (unsigned)(body.n >> 16));
    put16(&hs, (unsigned)(body.n & 0xffff));
    put(&hs, body.b, body.n);
    out->n = 0;
    put8(out, 22);
    put16(out, 0x0301);
    put16(out, (unsigned)hs.n);
    put(out, hs.b, hs.n);
}

/* Re-frames the handshake bytes of a one-record hello into records of `size` bytes. */
static void fragment(const uint8_t *in, size_t len, size_t size, struct buf *out)
{
    size_t hs_len = len - 5;
    out->n = 0;
    for (size_t off = 0; off < hs_len; off += size) {
        size_t n = hs_len - off < size ? hs_len - off : size;
        put8(out, 22);
        put16(out, 0x0301);
        put16(out, (unsigned)n);
        put(out, in + 5 + off, n);
    }
}

static int parse(const uint8_t *b, size_t n, struct tls_client_hello *h)
{
    char err[TLS_ERR_MAX];
    return tls_hello_parse(b, n, h, err, sizeof(err));
}

static int parse_ext(const struct buf *exts)
{
    static struct buf rec;
    struct tls_client_hello h;
    make_hello(&rec, exts);
    return parse(rec.b, rec.n, &h);
}

/* Every proper prefix of a valid hello must ask for more, never decide. */
static void assert_prefixes_need_more(const uint8_t *b, size_t n)
{
    struct tls_client_hello h;
    for (size_t i = 0; i < n; i++)
        if (parse(b, i, &h) != TLS_HELLO_NEED_MORE)
            fail_msg("prefix of %zu/%zu bytes: not NEED_MORE", i, n);
}

/* ---- real hellos ------------------------------------------------------------------- */

static void test_openssl_tls13_hello_gives_sni_and_alpn(void **state)
{
    uint8_t b[4096];
    struct tls_client_hello h;
    size_t n =
        tt_client_hello("App.Example.COM", alpn_h2_h11, sizeof(alpn_h2_h11) - 1, 0, b, sizeof(b));

    assert_int_equal(parse(b, n, &h), TLS_HELLO_OK);
    assert_true(h.has_sni);
    assert_string_equal(h.sni, "app.example.com");
    assert_true(h.offers_tls13);
    assert_int_equal(h.alpn_count, 2);
    assert_string_equal(h.alpn[0], "h2");
    assert_string_equal(h.alpn[1], "http/1.1");
    assert_false(h.alpn_truncated);
    assert_int_equal(h.bytes, n);
    assert_prefixes_need_more(b, n);
}

static void test_openssl_tls12_hello_without_sni(void **state)
{
    uint8_t b[4096];
    struct tls_client_hello h;
    size_t n = tt_client_hello(NULL, NULL, 0, TLS1_2_VERSION, b, sizeof(b));

    assert_int_equal(parse(b, n, &h), TLS_HELLO_OK);
    assert_false(h.has_sni);
    assert_string_equal(h.sni, "");
    assert_false(h.offers_tls13);
    assert_int_equal(h.alpn_count, 0);
    assert_int_equal(h.legacy_version, 0x0303);
    assert_prefixes_need_more(b, n);
}

static void test_hello_fragmented_over_many_records(void **state)
{
    static uint8_t b[4096];
    static struct buf frag;
    struct tls_client_hello h;
    size_t n =
        tt_client_hello("frag.example.org", alpn_h2_h11, sizeof(alpn_h2_h11) - 1, 0, b, sizeof(b));
    size_t sizes[] = {1, 3, 4, 5, 100, 511};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        fragment(b, n, sizes[i], &frag);
        assert_int_equal(parse(frag.b, frag.n, &h), TLS_HELLO_OK);
        assert_string_equal(h.sni, "frag.example.org");
        assert_int_equal(h.bytes, frag.n);
        assert_prefixes_need_more(frag.b, frag.n);
    }
}

static void test_bytes_after_the_hello_are_not_counted(void **state)
{
    /* A client may pipeline early data or an alert; the listener must forward it intact. */
    static uint8_t b[4200];
    struct tls_client_hello h;
    size_t n = tt_client_hello("a.example", NULL, 0, 0, b, sizeof(b));
    memcpy(b + n, "\x17\x03\x03\x00\x01X", 6);

    assert_int_equal(parse(b, n + 6, &h), TLS_HELLO_OK);
    assert_int_equal(h.bytes, n);
}

/* ---- not TLS at all ---------------------------------------------------------------- */

static void test_plain_http_and_other_protocols_are_not_tls(void **state)
{
    struct tls_client_hello h;
    const struct {
        const char *b;
        size_t n;
    } inputs[] = {{"GET / HTTP/1.1\r\n", 16},  {"\x15\x03\x03\x00\x02\x02\x28", 7},
                  {"\x80\x2e\x01\x03\x01", 5}, {"\x16\x00", 2},
                  {"\x16\x02\x00", 3},         {"P", 1}};

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
        assert_int_equal(parse((const uint8_t *)inputs[i].b, inputs[i].n, &h), TLS_HELLO_NOT_TLS);
    assert_int_equal(parse((const uint8_t *)"", 0, &h), TLS_HELLO_NEED_MORE);
    assert_int_equal(parse((const uint8_t *)"\x16", 1, &h), TLS_HELLO_NEED_MORE);
}

/* ---- malformed --------------------------------------------------------------------- */

static void test_hand_made_hello_is_accepted(void **state)
{
    static struct buf exts, rec;
    struct tls_client_hello h;
    exts.n = 0;
    put_sni_ext(&exts, "Foo.Example");
    make_hello(&rec, &exts);
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_OK);
    assert_string_equal(h.sni, "foo.example");

    make_hello(&rec, NULL); /* no extension block at all: valid, no SNI */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_OK);
    assert_false(h.has_sni);
}

static void test_record_and_handshake_lengths(void **state)
{
    static uint8_t b[4096], m[4096];
    struct tls_client_hello h;
    char err[TLS_ERR_MAX];
    size_t n = tt_client_hello("len.example", NULL, 0, 0, b, sizeof(b));
    size_t rlen = ((size_t)b[3] << 8) | b[4];
    size_t hlen = ((size_t)b[6] << 16) | ((size_t)b[7] << 8) | b[8];

    /* record one byte longer than sent: still waiting */
    memcpy(m, b, n);
    m[3] = (uint8_t)((rlen + 1) >> 8), m[4] = (uint8_t)(rlen + 1);
    assert_int_equal(parse(m, n, &h), TLS_HELLO_NEED_MORE);
    /* record one byte shorter: its last byte now starts a record, here of type 23 (the
     * byte is key-share randomness in a real hello; 22 there would read as a valid prefix) */
    m[3] = (uint8_t)((rlen - 1) >> 8), m[4] = (uint8_t)(rlen - 1);
    m[n - 1] = 23;
    assert_int_equal(parse(m, n, &h), TLS_HELLO_MALFORMED);
    /* handshake one byte shorter than its record: trailing byte */
    memcpy(m, b, n);
    m[8] = (uint8_t)(hlen - 1), m[7] = (uint8_t)((hlen - 1) >> 8);
    assert_int_equal(tls_hello_parse(m, n, &h, err, sizeof(err)), TLS_HELLO_MALFORMED);
    assert_non_null(strstr(err, "after the client hello"));
    /* handshake longer than its record: waits for a next record, which must be handshake */
    memcpy(m, b, n);
    m[8] = (uint8_t)(hlen + 1), m[7] = (uint8_t)((hlen + 1) >> 8);
    assert_int_equal(parse(m, n, &h), TLS_HELLO_NEED_MORE);
    memcpy(m + n, "\x17\x03\x03\x00\x01X", 6);
    assert_int_equal(parse(m, n + 6, &h), TLS_HELLO_MALFORMED);
    /* record lengths 0 and 2^14+1 */
    assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, &h), TLS_HELLO_MALFORMED);
    assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, &h), TLS_HELLO_MALFORMED);
    /* not a client_hello, and a hello announced larger than the limit */
    assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9, &h),
                     TLS_HELLO_MALFORMED);
    assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x00\x04\x01\x00\x40\x01", 9, &h),
                     TLS_HELLO_MALFORMED);
    /* handshake header split over records is fine */
    assert_int_equal(parse((const uint8_t *)"\x16\x03\x01\x00\x02\x01\x00", 7, &h),
                     TLS_HELLO_NEED_MORE);
}

static void test_hello_body_lengths(void **state)
{
    static struct buf rec;
    struct tls_client_hello h;
    make_hello(&rec, NULL);
    size_t sid = 5 + 4 + 2 + 32; /* offset of the session id length */

    rec.b[sid] = 33; /* session id longer than 32 */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
    make_hello(&rec, NULL);
    rec.b[sid + 2] = 3; /* odd cipher suites length */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
    make_hello(&rec, NULL);
    rec.b[sid + 2] = 0; /* no cipher suite */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
    make_hello(&rec, NULL);
    rec.b[sid + 5] = 0; /* no compression method */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
    make_hello(&rec, NULL);
    rec.b[9] = 2; /* version 2.3 */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
}

static void test_extension_block_lengths(void **state)
{
    static struct buf exts, rec;
    struct tls_client_hello h;
    exts.n = 0;
    put_sni_ext(&exts, "x.example");
    make_hello(&rec, &exts);
    size_t blk = rec.n - exts.n - 2; /* offset of the extensions length */

    rec.b[blk + 1]++; /* block claims one byte more than the message holds */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
    rec.b[blk + 1] -= 2; /* one byte less: the last extension is cut */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
    make_hello(&rec, &exts);
    rec.b[blk + 5]++; /* the extension's own length overruns the block */
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_MALFORMED);
}

static void test_server_name_rules(void **state)
{
    static struct buf exts;
    const char *bad[] = {"a b.example", "a..example", "example.", ".example",
                         "ex\x01mple",  "ex/ample",   ""};
    char long_label[80], long_name[300];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        exts.n = 0;
        put_sni_ext(&exts, bad[i]);
        assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    }
    memset(long_label, 'a', 64), long_label[64] = '\0';
    exts.n = 0;
    put_sni_ext(&exts, long_label);
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    long_label[63] = '\0'; /* 63 is the longest label */
    exts.n = 0;
    put_sni_ext(&exts, long_label);
    assert_int_equal(parse_ext(&exts), TLS_HELLO_OK);
    for (int i = 0; i < 254; i++) /* 254 bytes: one over the DNS limit */
        long_name[i] = (i % 2) ? '.' : 'a';
    long_name[253] = 'a', long_name[254] = '\0';
    exts.n = 0;
    put_sni_ext(&exts, long_name);
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);

    /* two server_name extensions */
    exts.n = 0;
    put_sni_ext(&exts, "a.example");
    put_sni_ext(&exts, "b.example");
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);

    /* two names in one list; a name of unknown type; list length off by one; empty ext */
    uint8_t two[] = {0, 12, 0, 0, 3, 'a', 'b', 'c', 0, 0, 3, 'd', 'e', 'f'};
    exts.n = 0;
    put_ext(&exts, 0, two, sizeof(two) - 0);
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    uint8_t other[] = {0, 6, 1, 0, 3, 'a', 'b', 'c'};
    exts.n = 0;
    put_ext(&exts, 0, other, sizeof(other));
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    uint8_t off[] = {0, 7, 0, 0, 3, 'a', 'b', 'c'};
    exts.n = 0;
    put_ext(&exts, 0, off, sizeof(off));
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    uint8_t name_over[] = {0, 6, 0, 0, 4, 'a', 'b', 'c'};
    exts.n = 0;
    put_ext(&exts, 0, name_over, sizeof(name_over));
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    exts.n = 0;
    put_ext(&exts, 0, "", 0);
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
}

static void test_alpn_and_versions_rules(void **state)
{
    static struct buf exts, rec;
    struct tls_client_hello h;

    uint8_t empty_list[] = {0, 0};
    exts.n = 0;
    put_ext(&exts, 16, empty_list, sizeof(empty_list));
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    uint8_t empty_name[] = {0, 3, 0, 1, 'x'};
    exts.n = 0;
    put_ext(&exts, 16, empty_name, sizeof(empty_name));
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);

    /* ten protocols: eight kept, the rest noted */
    uint8_t many[2 + 10 * 3];
    many[0] = 0, many[1] = 30;
    for (int i = 0; i < 10; i++)
        many[2 + 3 * i] = 2, many[3 + 3 * i] = 'p', many[4 + 3 * i] = (uint8_t)('0' + i);
    exts.n = 0;
    put_ext(&exts, 16, many, sizeof(many));
    make_hello(&rec, &exts);
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_OK);
    assert_int_equal(h.alpn_count, TLS_ALPN_MAX);
    assert_true(h.alpn_truncated);
    assert_string_equal(h.alpn[7], "p7");

    uint8_t odd_versions[] = {3, 3, 4, 3};
    exts.n = 0;
    put_ext(&exts, 43, odd_versions, sizeof(odd_versions));
    assert_int_equal(parse_ext(&exts), TLS_HELLO_MALFORMED);
    uint8_t versions[] = {4, 3, 4, 3, 3};
    exts.n = 0;
    put_ext(&exts, 43, versions, sizeof(versions));
    make_hello(&rec, &exts);
    assert_int_equal(parse(rec.b, rec.n, &h), TLS_HELLO_OK);
    assert_true(h.offers_tls13);
}

static void test_large_hello_over_the_limit(void **state)
{
    static struct buf exts, rec, frag;
    struct tls_client_hello h;
    static uint8_t pad[16000];
    exts.n = 0;
    put_sni_ext(&exts, "big.example");
    put_ext(&exts, 21, pad, sizeof(pad)); /* padding: fits */
    make_hello(&rec, &exts);
    fragment(rec.b, rec.n, 16384, &frag);
    assert_int_equal(parse(frag.b, frag.n, &h), TLS_HELLO_OK);
    assert_string_equal(h.sni, "big.example");

    put_ext(&exts, 22, pad, 1000); /* now the message is over 16 KiB */
    make_hello(&rec, &exts);
    fragment(rec.b, rec.n, 16384, &frag);
    assert_int_equal(parse(frag.b, frag.n, &h), TLS_HELLO_MALFORMED);
}

static void test_every_single_byte_mutation_is_answered(void **state)
{
    /* A cheap deterministic fuzz: flip each byte of a real hello to a few values. The
     * reader must answer each (ASan watches the reads) and any OK must be self-consistent. */
    static uint8_t b[4096], m[4096];
    struct tls_client_hello h;
    size_t n =
        tt_client_hello("mut.example", alpn_h2_h11, sizeof(alpn_h2_h11) - 1, 0, b, sizeof(b));
    const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0xff};
    size_t ok = 0, bad = 0;

    for (size_t i = 0; i < n; i++) {
        for (size_t v = 0; v < sizeof(values); v++) {
            memcpy(m, b, n);
            m[i] = values[v];
            int rc = parse(m, n, &h);
            assert_true(rc == TLS_HELLO_OK || rc == TLS_HELLO_NEED_MORE ||
                        rc == TLS_HELLO_NOT_TLS || rc == TLS_HELLO_MALFORMED);
            if (rc == TLS_HELLO_OK) {
                assert_true(h.bytes <= n);
                assert_true(strlen(h.sni) <= TLS_HOST_MAX);
                ok++;
            } else {
                bad++;
            }
        }
    }
    /* bytes of random, suites and unknown extensions change nothing; lengths do */
    assert_true(ok > 0 && bad > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openssl_tls13_hello_gives_sni_and_alpn),
        cmocka_unit_test(test_openssl_tls12_hello_without_sni),
        cmocka_unit_test(test_hello_fragmented_over_many_records),
        cmocka_unit_test(test_bytes_after_the_hello_are_not_counted),
        cmocka_unit_test(test_plain_http_and_other_protocols_are_not_tls),
        cmocka_unit_test(test_hand_made_hello_is_accepted),
        cmocka_unit_test(test_record_and_handshake_lengths),
        cmocka_unit_test(test_hello_body_lengths),
        cmocka_unit_test(test_extension_block_lengths),
        cmocka_unit_test(test_server_name_rules),
        cmocka_unit_test(test_alpn_and_versions_rules),
        cmocka_unit_test(test_large_hello_over_the_limit),
        cmocka_unit_test(test_every_single_byte_mutation_is_answered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
