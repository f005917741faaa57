/*
 * test_proto.c - the wire codec, the envelope and key files, as pure functions over bytes.
 *
 * Every message type survives a round trip; every truncation, wrong type, wrong arity,
 * oversized field and unknown type is refused with the reason the drop counters use; a
 * packet of another cluster, another version, a tampered one or one sealed with another key
 * is refused; key files are read as PRODUCT.md describes and bad ones are named by line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "gossip/gossip_int.h"

#define T0 1700000000000ull /* a wall clock in ms */

#define KEY1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define KEY2 "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="

static size_t encode(const struct gmsg *m, uint8_t *buf, size_t cap)
{
    struct gwbuf w;

    gwbuf_init_fixed(&w, buf, cap);
    assert_int_equal(gproto_encode(&w, m), 0);
    return w.len;
}

static void sample_messages(struct gmsg *m, size_t *n)
{
    static const uint8_t payload[] = "signed record bytes";

    memset(m, 0, 9 * sizeof(*m));
    m[0].type = GMSG_PING;
    m[0].seq = 77;
    strcpy(m[0].id, "node-b");
    strcpy(m[0].from, "node-a");
    m[1].type = GMSG_IPING;
    m[1].seq = 78;
    strcpy(m[1].id, "node-c");
    gossip_addr_parse("[2001:db8::7]:7946", &m[1].addr, NULL, 0);
    m[1].nack = true;
    m[2].type = GMSG_ACK;
    m[2].seq = 4000000000u;
    m[3].type = GMSG_NACK;
    m[3].seq = 1;
    m[4].type = GMSG_ALIVE;
    strcpy(m[4].id, "0123456789abcdef0123456789abcdef");
    m[4].incarnation = 1732400000;
    gossip_addr_parse("192.0.2.10:7946", &m[4].addr, NULL, 0);
    strcpy(m[4].meta.name, "gw-paris-1");
    strcpy(m[4].meta.domain, "gw.example.com");
    strcpy(m[4].meta.version, "0.1.0");
    gossip_addr_parse("192.0.2.10:80", &m[4].meta.http, NULL, 0);
    gossip_addr_parse("198.51.100.7:0", &m[4].meta.public_addrs[0], NULL, 0);
    gossip_addr_parse("[2001:db8::10]:0", &m[4].meta.public_addrs[1], NULL, 0);
    m[4].meta.public_count = 2;
    m[5].type = GMSG_SUSPECT;
    strcpy(m[5].id, "node-c");
    m[5].incarnation = 9;
    strcpy(m[5].from, "node-a");
    m[6].type = GMSG_DEAD;
    strcpy(m[6].id, "node-c");
    m[6].incarnation = 10;
    strcpy(m[6].from, "node-c");
    m[7].type = GMSG_ITEM;
    strcpy(m[7].key, "demo/owner");
    m[7].version = 5;
    m[7].bytes = payload;
    m[7].len = sizeof(payload);
    m[8].type = GMSG_HEALTH;
    strcpy(m[8].id, "node-a");
    strcpy(m[8].key, "http://10.0.0.5:8080");
    m[8].version = 123;
    m[8].up = true;
    m[8].ttl_ms = 30000;
    *n = 9;
}

static void test_every_message_round_trips(void **state)
{
    struct gmsg in[9], out;
    uint8_t buf[GOSSIP_UDP_MAX];
    enum gossip_drop_reason why;
    size_t n, len, off = 0;
    struct gwbuf w;

    (void)state;
    sample_messages(in, &n);
    gwbuf_init_fixed(&w, buf, sizeof(buf));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(gproto_encode(&w, &in[i]), 0);
    len = w.len;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(gproto_decode(buf, len, &off, &out, &why), 0);
        assert_int_equal(out.type, in[i].type);
        assert_int_equal(out.seq, in[i].seq);
        assert_string_equal(out.id, in[i].id);
        assert_string_equal(out.from, in[i].from);
        assert_true(gossip_addr_equal(&out.addr, &in[i].addr) || in[i].addr.family == 0);
        assert_int_equal(out.incarnation, in[i].incarnation);
        assert_int_equal(out.nack, in[i].nack);
        assert_string_equal(out.meta.name, in[i].meta.name);
        assert_string_equal(out.meta.domain, in[i].meta.domain);
        assert_int_equal(out.meta.public_count, in[i].meta.public_count);
        for (size_t j = 0; j < in[i].meta.public_count; j++)
            assert_true(gossip_addr_equal(&out.meta.public_addrs[j], &in[i].meta.public_addrs[j]));
        assert_string_equal(out.key, in[i].key);
        assert_int_equal(out.version, in[i].version);
        assert_int_equal(out.len, in[i].len);
        if (in[i].len)
            assert_memory_equal(out.bytes, in[i].bytes, in[i].len);
        assert_int_equal(out.up, in[i].up);
        assert_int_equal(out.ttl_ms, in[i].ttl_ms);
    }
    assert_int_equal(off, len);
}

/* Wire version 3: a daemon id (32 lowercase hex) travels as 16 bytes, other ids as text, and
 * metadata addresses on the member's own gossip IP as their port alone. */
static void test_compact_ids_and_addresses(void **state)
{
    static const char hex_a[] = "0123456789abcdef0123456789abcdef";
    static const char hex_b[] = "fedcba9876543210fedcba9876543210";
    struct gmsg m, out;
    uint8_t buf[GOSSIP_UDP_MAX];
    enum gossip_drop_reason why;
    size_t len, off = 0;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = GMSG_PING;
    m.seq = 77;
    strcpy(m.id, hex_a);
    strcpy(m.from, hex_b);
    len = encode(&m, buf, sizeof(buf));
    /* array, type, seq, two bin 16 (2 + 16 each): 73 bytes as text */
    assert_int_equal(len, 3 + 2 * 18);
    assert_int_equal(gproto_decode(buf, len, &off, &out, &why), 0);
    assert_string_equal(out.id, hex_a);
    assert_string_equal(out.from, hex_b);

    /* upper case, or another length: text, and it comes back as it went */
    strcpy(m.id, "0123456789ABCDEF0123456789ABCDEF");
    strcpy(m.from, "0123456789abcdef0123456789abcdef0");
    len = encode(&m, buf, sizeof(buf));
    off = 0;
    assert_int_equal(gproto_decode(buf, len, &off, &out, &why), 0);
    assert_string_equal(out.id, m.id);
    assert_string_equal(out.from, m.from);

    /* an id bin of another size is refused */
    {
        struct gwbuf w;
        static const uint8_t fifteen[15];
        gwbuf_init_fixed(&w, buf, sizeof(buf));
        msgpack_pack_array(&w.pk, 4);
        msgpack_pack_uint8(&w.pk, GMSG_PING);
        msgpack_pack_uint8(&w.pk, 1);
        msgpack_pack_bin_with_body(&w.pk, fifteen, sizeof(fifteen));
        gproto_pack_id(&w.pk, hex_b);
        off = 0;
        assert_int_not_equal(gproto_decode(buf, w.len, &off, &out, &why), 0);
        assert_int_equal(why, GOSSIP_DROP_MALFORMED);
    }

    /* alive: http, https, api and a public address on the gossip IP shrink to ports */
    memset(&m, 0, sizeof(m));
    m.type = GMSG_ALIVE;
    strcpy(m.id, hex_a);
    m.incarnation = 1732400000;
    gossip_addr_parse("192.0.2.10:7946", &m.addr, NULL, 0);
    gossip_addr_parse("192.0.2.10:8080", &m.meta.http, NULL, 0);
    gossip_addr_parse("192.0.2.10:8443", &m.meta.https, NULL, 0);
    gossip_addr_parse("192.0.2.10:9080", &m.meta.api, NULL, 0);
    gossip_addr_parse("192.0.2.10:0", &m.meta.public_addrs[0], NULL, 0);
    gossip_addr_parse("[2001:db8::10]:0", &m.meta.public_addrs[1], NULL, 0);
    m.meta.public_count = 2;
    len = encode(&m, buf, sizeof(buf));
    off = 0;
    assert_int_equal(gproto_decode(buf, len, &off, &out, &why), 0);
    assert_string_equal(out.id, hex_a);
    assert_true(gossip_addr_equal(&out.meta.http, &m.meta.http));
    assert_true(gossip_addr_equal(&out.meta.https, &m.meta.https));
    assert_true(gossip_addr_equal(&out.meta.api, &m.meta.api));
    assert_true(gossip_addr_equal(&out.meta.public_addrs[0], &m.meta.public_addrs[0]));
    assert_true(gossip_addr_equal(&out.meta.public_addrs[1], &m.meta.public_addrs[1]));
    /* array 1, type 1, id 18 (34 as text), incarnation 5, address 8, three empty strings 3,
     * http and https 4 each (8 whole), map 1, tag 1 + array 1 + 4 (8 whole) + IPv6 20,
     * tag 1 + api 4 (8 whole): 76 bytes, 108 in version 2 */
    assert_int_equal(len, 76);

    /* a port alone is only understood in metadata: an indirect probe's target must be whole */
    {
        struct gwbuf w;
        static const uint8_t port[2] = {0x1f, 0x0a};
        gwbuf_init_fixed(&w, buf, sizeof(buf));
        msgpack_pack_array(&w.pk, 5);
        msgpack_pack_uint8(&w.pk, GMSG_IPING);
        msgpack_pack_uint8(&w.pk, 1);
        gproto_pack_id(&w.pk, hex_b);
        msgpack_pack_bin_with_body(&w.pk, port, sizeof(port));
        msgpack_pack_true(&w.pk);
        off = 0;
        assert_int_not_equal(gproto_decode(buf, w.len, &off, &out, &why), 0);
        assert_int_equal(why, GOSSIP_DROP_MALFORMED);
    }
}

static int lines_logged;
static char last_line[512];

static void capture_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    (void)level;
    lines_logged++;
    snprintf(last_line, sizeof(last_line), "%s", msg);
}

static int no_send(void *ctx, const struct gossip_addr *to, const uint8_t *buf, size_t len)
{
    (void)ctx;
    (void)to;
    (void)buf;
    (void)len;
    return 0;
}

static uint64_t fixed_now(void *ctx)
{
    return *(uint64_t *)ctx;
}

/* A packet of wire version 2 (text ids) is dropped and counted as "version", and the operator
 * hears of it in one line a minute, not one a packet. */
static void test_old_wire_version_is_refused_cleanly(void **state)
{
    static const struct gossip_transport_ops ops = {no_send, no_send};
    uint64_t now = T0;
    struct gossip_transport tr = {&ops, NULL};
    struct gossip_clock clock = {fixed_now, &now, NULL, NULL};
    struct gossip_callbacks cb = {.log = capture_log};
    struct gossip_config cfg;
    struct gossip_stats st;
    struct gossip_addr from;
    struct gossip *g;
    char err[GOSSIP_ERR_MAX];
    static const uint8_t v2[] = {2, 0, 0, 0x92, 0x03, 0x01};

    (void)state;
    gossip_config_default(&cfg);
    strcpy(cfg.id, "0123456789abcdef0123456789abcdef");
    gossip_addr_parse("192.0.2.1:7946", &cfg.advertise, NULL, 0);
    gossip_addr_parse("192.0.2.2:7946", &from, NULL, 0);
    g = gossip_new(&cfg, &cb, &tr, &clock, err, sizeof(err));
    assert_non_null(g);
    lines_logged = 0;
    for (int i = 0; i < 5; i++)
        gossip_receive(g, &from, v2, sizeof(v2), false);
    gossip_stats_get(g, &st);
    assert_int_equal(st.drops[GOSSIP_DROP_VERSION], 5);
    assert_int_equal(lines_logged, 1);
    assert_non_null(strstr(last_line, "192.0.2.2:7946 in wire version 2"));
    assert_non_null(strstr(last_line, "speaks version 3"));
    now += 60000;
    gossip_receive(g, &from, v2, sizeof(v2), true);
    assert_int_equal(lines_logged, 2);
    gossip_free(g);
}

/* Packs an alive message by hand with the given extension map writer. */
static size_t alive_with_ext(uint8_t *buf, size_t cap, void (*ext)(msgpack_packer *pk))
{
    struct gwbuf w;
    struct gossip_addr a;

    gossip_addr_parse("192.0.2.10:7946", &a, NULL, 0);
    gwbuf_init_fixed(&w, buf, cap);
    msgpack_pack_array(&w.pk, 4 + GPROTO_META_FIELDS);
    msgpack_pack_uint8(&w.pk, GMSG_ALIVE);
    gproto_pack_str(&w.pk, "node-x");
    msgpack_pack_uint64(&w.pk, 3);
    gproto_pack_addr(&w.pk, &a);
    gproto_pack_str(&w.pk, "gw");
    gproto_pack_str(&w.pk, "example.com");
    gproto_pack_str(&w.pk, "9.9");
    gproto_pack_addr(&w.pk, &a);
    gproto_pack_addr(&w.pk, &a);
    ext(&w.pk);
    return w.len;
}

static void ext_unknown_tag(msgpack_packer *pk)
{
    struct gossip_addr a;

    gossip_addr_parse("203.0.113.9:0", &a, NULL, 0);
    msgpack_pack_map(pk, 2);
    msgpack_pack_uint8(pk, 77); /* a tag from a newer member */
    msgpack_pack_str(pk, 5);
    msgpack_pack_str_body(pk, "later", 5);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_array(pk, 1);
    gproto_pack_addr(pk, &a);
}

static void ext_too_many_addrs(msgpack_packer *pk)
{
    struct gossip_addr a;

    gossip_addr_parse("203.0.113.9:0", &a, NULL, 0);
    msgpack_pack_map(pk, 1);
    msgpack_pack_uint8(pk, 1);
    msgpack_pack_array(pk, GOSSIP_PUBLIC_ADDRS_MAX + 1);
    for (int i = 0; i < GOSSIP_PUBLIC_ADDRS_MAX + 1; i++)
        gproto_pack_addr(pk, &a);
}

static void ext_not_a_map(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}

/* Metadata grows through the extension map: a tag this member does not know is skipped, and
 * the public addresses it knows are still read; more addresses than the bound are refused. */
static void test_metadata_extensions(void **state)
{
    uint8_t buf[GOSSIP_UDP_MAX];
    struct gmsg out;
    enum gossip_drop_reason why;
    size_t len, off = 0;

    (void)state;
    len = alive_with_ext(buf, sizeof(buf), ext_unknown_tag);
    assert_int_equal(gproto_decode(buf, len, &off, &out, &why), 0);
    assert_int_equal(out.meta.public_count, 1);
    assert_int_equal(out.meta.public_addrs[0].ip[0], 203);
    off = 0;
    len = alive_with_ext(buf, sizeof(buf), ext_too_many_addrs);
    assert_true(gproto_decode(buf, len, &off, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_OVERSIZE);
    off = 0;
    len = alive_with_ext(buf, sizeof(buf), ext_not_a_map);
    assert_true(gproto_decode(buf, len, &off, &out, &why) < 0);
}

static void test_every_truncation_is_refused(void **state)
{
    struct gmsg in[9], out;
    uint8_t buf[GOSSIP_UDP_MAX];
    enum gossip_drop_reason why;
    size_t n;

    (void)state;
    sample_messages(in, &n);
    for (size_t i = 0; i < n; i++) {
        size_t len = encode(&in[i], buf, sizeof(buf));
        for (size_t cut = 0; cut < len; cut++) {
            size_t off = 0;
            assert_true(gproto_decode(buf, cut, &off, &out, &why) < 0);
            assert_int_equal(why, GOSSIP_DROP_MALFORMED);
        }
    }
}

static void test_bad_shapes_are_refused_with_reason(void **state)
{
    /* each: a msgpack message and the reason it must be dropped for */
    static const struct {
        const char *what;
        uint8_t bytes[16];
        size_t len;
        enum gossip_drop_reason why;
    } cases[] = {
        {"not an array", {0x03}, 1, GOSSIP_DROP_MALFORMED},
        {"empty array", {0x90}, 1, GOSSIP_DROP_MALFORMED},
        {"unknown type 99", {0x92, 0x63, 0x01}, 3, GOSSIP_DROP_UNKNOWN_TYPE},
        {"ack with 3 fields", {0x93, 0x03, 0x01, 0x01}, 4, GOSSIP_DROP_MALFORMED},
        {"ack seq negative", {0x92, 0x03, 0xff}, 3, GOSSIP_DROP_MALFORMED},
        {"ack seq over u32", {0x92, 0x03, 0xcf, 1, 0, 0, 0, 0, 0, 0, 0}, 11, GOSSIP_DROP_MALFORMED},
        {"ping id not a string", {0x94, 0x01, 0x01, 0x01, 0xa1, 'a'}, 6, GOSSIP_DROP_MALFORMED},
        {"ping empty id", {0x94, 0x01, 0x01, 0xa0, 0xa1, 'a'}, 6, GOSSIP_DROP_MALFORMED},
        {"ping id with space",
         {0x94, 0x01, 0x01, 0xa2, 'a', ' ', 0xa1, 'a'},
         8,
         GOSSIP_DROP_MALFORMED},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gmsg out;
        enum gossip_drop_reason why;
        size_t off = 0;
        int rc = gproto_decode(cases[i].bytes, cases[i].len, &off, &out, &why);
        if (rc >= 0 || why != cases[i].why)
            fail_msg("%s: rc %d reason %s", cases[i].what, rc, gossip_drop_reason_name(why));
    }
}

static void test_oversized_fields_are_refused(void **state)
{
    uint8_t buf[8192];
    struct gwbuf w;
    struct gmsg out;
    enum gossip_drop_reason why;
    size_t off = 0;
    char longid[100];
    static uint8_t big[GOSSIP_ITEM_MAX + 1];

    (void)state;
    /* an id of 99 characters */
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    gwbuf_init_fixed(&w, buf, sizeof(buf));
    msgpack_pack_array(&w.pk, 4);
    msgpack_pack_uint8(&w.pk, GMSG_PING);
    msgpack_pack_uint8(&w.pk, 1);
    gproto_pack_str(&w.pk, longid);
    gproto_pack_str(&w.pk, "a");
    assert_true(gproto_decode(buf, w.len, &off, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_OVERSIZE);
    /* an item one byte over the limit */
    gwbuf_init_fixed(&w, buf, sizeof(buf));
    msgpack_pack_array(&w.pk, 4);
    msgpack_pack_uint8(&w.pk, GMSG_ITEM);
    gproto_pack_str(&w.pk, "k");
    msgpack_pack_uint8(&w.pk, 1);
    msgpack_pack_bin(&w.pk, sizeof(big));
    msgpack_pack_bin_body(&w.pk, big, sizeof(big));
    off = 0;
    assert_true(gproto_decode(buf, w.len, &off, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_OVERSIZE);
}

static void test_encoder_never_overflows_its_buffer(void **state)
{
    uint8_t buf[64];
    struct gwbuf w;
    struct gmsg in[9];
    size_t n;

    (void)state;
    sample_messages(in, &n);
    gwbuf_init_fixed(&w, buf, sizeof(buf));
    assert_int_equal(gproto_encode(&w, &in[2]), 0);
    /* the alive message does not fit the rest: refused, and the buffer is as it was */
    size_t before = w.len;
    assert_int_equal(gproto_encode(&w, &in[4]), GOSSIP_ETOOBIG);
    assert_int_equal(w.len, before);
}

static void keyring(const char *text, struct gossip_keyring *kr)
{
    char err[GOSSIP_ERR_MAX];

    assert_int_equal(gossip_keyring_parse(text, strlen(text), kr, err, sizeof(err)), 0);
}

static void test_envelope_seals_and_refuses(void **state)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    struct gossip_keyring k1, k21, k2, none = {0};
    static const uint8_t body[] = "\x92\x03\x07";
    uint8_t pkt[256], copy[256], *out;
    enum gossip_drop_reason why;
    int n;

    (void)state;
    keyring(KEY1, &k1);
    keyring(KEY2 "\n" KEY1, &k21);
    keyring(KEY2, &k2);

    n = genv_seal(ctx, &k1, "prod", T0, body, 3, pkt, sizeof(pkt));
    assert_int_equal(n, (int)(3 + 4 + 8 + 12 + 3 + 16));
    /* the body is not in clear */
    assert_null(memmem(pkt, (size_t)n, body, 3));
    /* a second key of the ring decrypts */
    memcpy(copy, pkt, (size_t)n);
    assert_int_equal(genv_open(ctx, &k21, "prod", NULL, T0, copy, (size_t)n, &out, &why), 3);
    assert_memory_equal(out, body, 3);
    /* another key: refused as undecryptable */
    memcpy(copy, pkt, (size_t)n);
    assert_true(genv_open(ctx, &k2, "prod", NULL, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_DECRYPT);
    /* another cluster label, same key */
    memcpy(copy, pkt, (size_t)n);
    assert_true(genv_open(ctx, &k1, "staging", NULL, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_LABEL);
    /* one flipped ciphertext bit */
    memcpy(copy, pkt, (size_t)n);
    copy[n - 17] ^= 1;
    assert_true(genv_open(ctx, &k1, "prod", NULL, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_DECRYPT);
    /* the label in clear cannot be swapped either: it is authenticated */
    memcpy(copy, pkt, (size_t)n);
    copy[3] = 'P';
    assert_true(genv_open(ctx, &k1, "Prod", NULL, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_DECRYPT);
    /* an unknown wire version */
    memcpy(copy, pkt, (size_t)n);
    copy[0] = 1;
    assert_true(genv_open(ctx, &k1, "prod", NULL, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_VERSION);
    /* encrypted packet to a plain member, plain packet to an encrypting one */
    memcpy(copy, pkt, (size_t)n);
    assert_true(genv_open(ctx, &none, "prod", NULL, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_ENCRYPTED);
    n = genv_seal(ctx, &none, "prod", T0, body, 3, pkt, sizeof(pkt));
    assert_int_equal(n, 3 + 4 + 3);
    assert_true(genv_open(ctx, &k1, "prod", NULL, T0, pkt, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_UNENCRYPTED);
    assert_int_equal(genv_open(ctx, &none, "prod", NULL, T0, pkt, (size_t)n, &out, &why), 3);
    /* truncated headers */
    for (int cut = 0; cut < 7; cut++)
        assert_true(genv_open(ctx, &none, "prod", NULL, T0, pkt, (size_t)cut, &out, &why) < 0);
    /* no room: refused, never written past cap */
    assert_int_equal(genv_seal(ctx, &k1, "prod", T0, body, 3, pkt, 20), GOSSIP_ETOOBIG);
    EVP_CIPHER_CTX_free(ctx);
}

static void test_key_files(void **state)
{
    struct gossip_keyring kr;
    char err[GOSSIP_ERR_MAX];
    const char *ok = "# cluster keys, newest first\n" KEY2 "\r\n\n  " KEY1 "  \n";
    const char *path = "/tmp/webgw-gossip-test.key";
    FILE *f;

    (void)state;
    assert_int_equal(gossip_keyring_parse(ok, strlen(ok), &kr, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 2);
    assert_memory_equal(kr.keys[0], "fedcba9876543210fedcba9876543210", 32);
    assert_memory_equal(kr.keys[1], "0123456789abcdef0123456789abcdef", 32);

    assert_true(gossip_keyring_parse("c2hvcnQ=\n", 9, &kr, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "line 1"));
    assert_true(gossip_keyring_parse("\n" KEY1 "x\n", 47, &kr, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "line 2"));
    {
        const char *bad = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNk*WY=";
        assert_true(gossip_keyring_parse(bad, strlen(bad), &kr, err, sizeof(err)) < 0);
        assert_non_null(strstr(err, "base64"));
    }
    {
        /* 33 bytes encoded: wrong size even though 44 characters long */
        const char *b33 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWZh";
        assert_true(gossip_keyring_parse(b33, strlen(b33), &kr, err, sizeof(err)) < 0);
    }
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(KEY1 "\n", f);
    fclose(f);
    assert_int_equal(gossip_keyring_load(path, &kr, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 1);
    f = fopen(path, "w");
    fputs("# only a comment\n", f);
    fclose(f);
    assert_true(gossip_keyring_load(path, &kr, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "no key"));
    remove(path);
    assert_true(gossip_keyring_load(path, &kr, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, path));
}

static void test_addresses(void **state)
{
    struct gossip_addr a;
    char err[GOSSIP_ERR_MAX], out[64];

    (void)state;
    assert_int_equal(gossip_addr_parse("127.0.0.1:7946", &a, err, sizeof(err)), 0);
    assert_string_equal(gossip_addr_format(&a, out, sizeof(out)), "127.0.0.1:7946");
    assert_int_equal(gossip_addr_parse("[::1]:80", &a, err, sizeof(err)), 0);
    assert_string_equal(gossip_addr_format(&a, out, sizeof(out)), "[::1]:80");
    assert_true(gossip_addr_parse("host:80", &a, err, sizeof(err)) < 0);
    assert_non_null(strstr(err, "host:80"));
    assert_true(gossip_addr_parse("1.2.3.4:65536", &a, err, sizeof(err)) < 0);
    assert_true(gossip_addr_parse("1.2.3.4", &a, err, sizeof(err)) < 0);
    assert_true(gossip_addr_parse("[::1:80", &a, err, sizeof(err)) < 0);
    assert_true(gossip_addr_parse("1.2.3.4:", &a, err, sizeof(err)) < 0);
}

/* Found by fuzz_gossip_packet: msgpack-c allocates a container's elements when it reads the
 * header, so five bytes claiming 2^32 elements made every member try to allocate 64 GiB per
 * packet (and abort under ASan). Such claims are refused before unpacking, with the reason
 * "malformed", on the datagram path and on the stream (push-pull) path. */
static void test_lying_element_counts_are_refused_before_allocation(void **state)
{
    static const uint8_t lies[][9] = {
        {0xdd, 0xff, 0xff, 0xff, 0xff},             /* array32: 4294967295 elements */
        {0xdf, 0x40, 0x00, 0x00, 0x00},             /* map32: 2^30 pairs */
        {0x94, 0x01, 0xdc, 0xff, 0xff},             /* array16 inside a ping */
        {0x92, 0x93, 0x01, 0x02, 0x03, 0x94, 0x01}, /* nested: 4 claimed, 1 byte left */
    };
    static const size_t lens[] = {5, 5, 5, 7};
    enum gossip_drop_reason why;
    struct gmsg out;

    (void)state;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        msgpack_unpacked u;
        size_t off = 0;

        msgpack_unpacked_init(&u);
        assert_int_equal(gproto_unpack(&u, lies[i], lens[i], &off), MSGPACK_UNPACK_PARSE_ERROR);
        msgpack_unpacked_destroy(&u);
        off = 0;
        assert_true(gproto_decode(lies[i], lens[i], &off, &out, &why) < 0);
        assert_int_equal(why, GOSSIP_DROP_MALFORMED);
    }
}

/* The guard must not refuse honest msgpack: one value of every format, nested in maps and
 * arrays, with long str/bin/ext, unpacks whole. */
static void test_every_msgpack_format_passes_the_count_guard(void **state)
{
    static char big[70000];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_unpacked u;
    size_t off = 0;

    (void)state;
    memset(big, 'x', sizeof(big));
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "k", 1);
    msgpack_pack_array(&pk, 20);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_int64(&pk, -5);
    msgpack_pack_int64(&pk, -300);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_float(&pk, 1.5f);
    msgpack_pack_double(&pk, 2.5);
    msgpack_pack_str_with_body(&pk, big, 31);
    msgpack_pack_str_with_body(&pk, big, 200);
    msgpack_pack_str_with_body(&pk, big, sizeof(big));
    msgpack_pack_bin_with_body(&pk, big, 10);
    msgpack_pack_bin_with_body(&pk, big, 300);
    msgpack_pack_bin_with_body(&pk, big, sizeof(big));
    msgpack_pack_ext_with_body(&pk, big, 1, 7);
    msgpack_pack_ext_with_body(&pk, big, 16, 7);
    msgpack_pack_ext_with_body(&pk, big, 100, 7);
    msgpack_pack_ext_with_body(&pk, big, sizeof(big), 7);
    msgpack_pack_array(&pk, 0);
    msgpack_pack_array(&pk, 20);
    for (int i = 0; i < 20; i++)
        msgpack_pack_map(&pk, 0);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_map(&pk, 17);
    for (int i = 0; i < 17; i++) {
        msgpack_pack_int(&pk, i);
        msgpack_pack_int(&pk, -i);
    }
    msgpack_unpacked_init(&u);
    assert_int_equal(gproto_unpack(&u, (const uint8_t *)sb.data, sb.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb.size);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/* A captured envelope opens once: sent again it is refused before any decryption; one stamped
 * outside the window either way is refused too, and only authenticated envelopes take a place
 * in the window (a forged one cannot block the real one). */
static void test_envelope_replay_window(void **state)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    struct greplay *rp = greplay_new();
    struct gossip_keyring k1;
    static const uint8_t body[] = "\x92\x03\x07";
    uint8_t pkt[256], copy[256], forged[256], *out;
    enum gossip_drop_reason why;
    int n;

    (void)state;
    keyring(KEY1, &k1);
    n = genv_seal(ctx, &k1, "prod", T0, body, 3, pkt, sizeof(pkt));
    /* a forgery reusing the time and nonce, wrong tag: refused, and not remembered */
    memcpy(forged, pkt, (size_t)n);
    forged[n - 1] ^= 1;
    assert_true(genv_open(ctx, &k1, "prod", rp, T0, forged, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_DECRYPT);
    memcpy(copy, pkt, (size_t)n);
    assert_int_equal(genv_open(ctx, &k1, "prod", rp, T0 + 5, copy, (size_t)n, &out, &why), 3);
    memcpy(copy, pkt, (size_t)n);
    assert_true(genv_open(ctx, &k1, "prod", rp, T0 + 6, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_REPLAY);
    /* the time is authenticated: moving it makes the tag fail */
    n = genv_seal(ctx, &k1, "prod", T0 + 1, body, 3, pkt, sizeof(pkt));
    memcpy(copy, pkt, (size_t)n);
    copy[3 + 4 + 7] ^= 1;
    assert_true(genv_open(ctx, &k1, "prod", rp, T0, copy, (size_t)n, &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_DECRYPT);
    /* outside the window, either way: refused before decryption */
    memcpy(copy, pkt, (size_t)n);
    assert_true(genv_open(ctx, &k1, "prod", rp, T0 + GOSSIP_REPLAY_WINDOW_MS + 2, copy, (size_t)n,
                          &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_CLOCK);
    memcpy(copy, pkt, (size_t)n);
    assert_true(genv_open(ctx, &k1, "prod", rp, T0 - GOSSIP_REPLAY_WINDOW_MS - 1, copy, (size_t)n,
                          &out, &why) < 0);
    assert_int_equal(why, GOSSIP_DROP_CLOCK);
    /* inside it, either way, by the 5 minutes records allow a clock to be off (and more) */
    n = genv_seal(ctx, &k1, "prod", T0 + 2, body, 3, pkt, sizeof(pkt));
    memcpy(copy, pkt, (size_t)n);
    assert_int_equal(
        genv_open(ctx, &k1, "prod", rp, T0 + 2 + 300000 + 60000, copy, (size_t)n, &out, &why), 3);
    n = genv_seal(ctx, &k1, "prod", T0 + 3, body, 3, pkt, sizeof(pkt));
    memcpy(copy, pkt, (size_t)n);
    assert_int_equal(
        genv_open(ctx, &k1, "prod", rp, T0 + 3 - 300000 - 60000, copy, (size_t)n, &out, &why), 3);
    /* many envelopes: memory stays bounded and no forgotten one gets in again */
    for (uint32_t i = 0; i < GOSSIP_REPLAY_MAX + 1000; i++) {
        uint8_t nonce[GOSSIP_NONCE_LEN] = {0};
        memcpy(nonce, &i, sizeof(i));
        greplay_record(rp, T0 + 10, T0 + 10 + i / 1000, nonce);
    }
    for (uint32_t i = 0; i < GOSSIP_REPLAY_MAX + 1000; i += 997) {
        uint8_t nonce[GOSSIP_NONCE_LEN] = {0};
        memcpy(nonce, &i, sizeof(i));
        assert_true(greplay_check(rp, T0 + 10, T0 + 10 + i / 1000, nonce) != 0);
    }
    greplay_free(rp);
    EVP_CIPHER_CTX_free(ctx);
}

/* Each purpose gets its own key, none equal to the cluster key; fixed per key (every member
 * derives the same). */
static void test_key_derivation_separates_purposes(void **state)
{
    struct gossip_keyring k1;
    uint8_t a[GOSSIP_KEY_LEN], b[GOSSIP_KEY_LEN], c[GOSSIP_KEY_LEN], again[GOSSIP_KEY_LEN];

    (void)state;
    keyring(KEY1, &k1);
    assert_int_equal(gossip_key_derive(k1.keys[0], GOSSIP_KDF_GOSSIP, a), 0);
    assert_int_equal(gossip_key_derive(k1.keys[0], GOSSIP_KDF_TICKETS, b), 0);
    assert_int_equal(gossip_key_derive(k1.keys[0], GOSSIP_KDF_SEAL, c), 0);
    assert_int_equal(gossip_key_derive(k1.keys[0], GOSSIP_KDF_GOSSIP, again), 0);
    assert_memory_equal(a, again, GOSSIP_KEY_LEN);
    assert_memory_not_equal(a, b, GOSSIP_KEY_LEN);
    assert_memory_not_equal(a, c, GOSSIP_KEY_LEN);
    assert_memory_not_equal(b, c, GOSSIP_KEY_LEN);
    assert_memory_not_equal(a, k1.keys[0], GOSSIP_KEY_LEN);
    assert_memory_not_equal(b, k1.keys[0], GOSSIP_KEY_LEN);
    assert_memory_not_equal(c, k1.keys[0], GOSSIP_KEY_LEN);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_replay_window),
        cmocka_unit_test(test_key_derivation_separates_purposes),
        cmocka_unit_test(test_every_message_round_trips),
        cmocka_unit_test(test_compact_ids_and_addresses),
        cmocka_unit_test(test_old_wire_version_is_refused_cleanly),
        cmocka_unit_test(test_metadata_extensions),
        cmocka_unit_test(test_every_truncation_is_refused),
        cmocka_unit_test(test_bad_shapes_are_refused_with_reason),
        cmocka_unit_test(test_oversized_fields_are_refused),
        cmocka_unit_test(test_encoder_never_overflows_its_buffer),
        cmocka_unit_test(test_envelope_seals_and_refuses),
        cmocka_unit_test(test_key_files),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_lying_element_counts_are_refused_before_allocation),
        cmocka_unit_test(test_every_msgpack_format_passes_the_count_guard),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
