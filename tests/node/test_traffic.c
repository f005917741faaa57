/*
 * test_traffic.c - the pieces behind the dashboard's traffic views, without a running node:
 * the signed summary a node gossips (a member can sign numbers only as itself; any changed
 * byte, truncation or trailing byte is refused; one summary never outgrows 1 KiB) and
 * the 15-minute history ring (exact per-interval counts, p99 buckets, wrap-around after 90
 * samples, at most 64 names, the least active name giving its slot to a busier one).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "node/traffic_internal.h"

static char dir[64];
static struct state_key *key_a, *key_b;

static int setup(void **state)
{
    char path[128], err[STATE_ERR_MAX];

    snprintf(dir, sizeof(dir), "/tmp/webgw-traffic-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/a.key", dir);
    key_a = state_key_generate(path, err, sizeof(err));
    snprintf(path, sizeof(path), "%s/b.key", dir);
    key_b = state_key_generate(path, err, sizeof(err));
    return key_a && key_b ? 0 : -1;
}

static int teardown(void **state)
{
    char path[128];

    state_key_free(key_a);
    state_key_free(key_b);
    snprintf(path, sizeof(path), "%s/a.key", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.key", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void fill(struct traffic_summary *s, const char *id, size_t count, size_t name_len)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id);
    s->seq = 1796414667979;
    s->sample_ms = NODE_SAMPLE_MS;
    s->names_total = (uint32_t)count;
    s->count = count;
    for (size_t i = 0; i < count; i++) {
        struct traffic_name *n = &s->names[i];
        memset(n->name, 'a' + (int)(i % 26), name_len);
        snprintf(n->name + name_len, sizeof(n->name) - name_len, "%zu", i);
        n->requests = 1000 - i;
        n->errors = i;
        n->bytes_in = 1ull << 40;
        n->bytes_out = 7;
        n->recent_requests = 12;
        n->recent_errors = 3;
        n->p99 = 4;
    }
}

static void summary_round_trip_and_signature(void **state)
{
    static struct traffic_summary s, d;
    uint8_t buf[GOSSIP_ITEM_MAX], pub_a[STATE_OWNER_LEN], pub_b[STATE_OWNER_LEN];
    char err[STATE_ERR_MAX];
    int len;

    state_key_owner(key_a, pub_a);
    state_key_owner(key_b, pub_b);
    fill(&s, "node-a", 3, 4);
    len = traffic_summary_encode(&s, key_a, buf, sizeof(buf));
    assert_true(len > STATE_SIGNATURE_LEN);
    assert_int_equal(traffic_summary_decode(buf, (size_t)len, &d, err, sizeof(err)), 0);
    assert_string_equal(d.id, "node-a");
    assert_int_equal(d.seq, s.seq);
    assert_int_equal(d.count, 3);
    assert_string_equal(d.names[2].name, s.names[2].name);
    assert_int_equal(d.names[1].requests, 999);
    assert_int_equal(d.names[0].bytes_in, 1ull << 40);
    assert_int_equal(d.names[2].p99, 4);
    assert_int_equal(traffic_summary_verify(buf, (size_t)len, pub_a, err, sizeof(err)), 0);

    /* signed by a, it does not pass as b's: a member cannot publish under another's key */
    assert_int_equal(traffic_summary_verify(buf, (size_t)len, pub_b, err, sizeof(err)), -1);
    /* and b signing a summary that claims a's id does not pass as a's */
    int blen = traffic_summary_encode(&s, key_b, buf, sizeof(buf));
    assert_true(blen > 0);
    assert_int_equal(traffic_summary_verify(buf, (size_t)blen, pub_a, err, sizeof(err)), -1);

    /* any byte changed: still decodes (a counter), but the signature refuses it */
    len = traffic_summary_encode(&s, key_a, buf, sizeof(buf));
    for (int i = 0; i < len; i++) {
        buf[i] ^= 0x01;
        assert_int_equal(traffic_summary_verify(buf, (size_t)len, pub_a, err, sizeof(err)), -1);
        buf[i] ^= 0x01;
    }
    /* every truncation and a trailing byte are refused by the decoder, never read past */
    for (int cut = 0; cut < len; cut++) {
        uint8_t *copy = malloc((size_t)cut + 1);
        memcpy(copy, buf, (size_t)cut);
        assert_int_equal(traffic_summary_decode(copy, (size_t)cut, &d, err, sizeof(err)), -1);
        free(copy);
    }
    buf[len] = 0;
    assert_int_equal(traffic_summary_decode(buf, (size_t)len + 1, &d, err, sizeof(err)), -1);
}

static void summary_bad_fields_refused(void **state)
{
    static struct traffic_summary s, d;
    uint8_t buf[GOSSIP_ITEM_MAX];
    char err[STATE_ERR_MAX];
    int len;

    /* a name with a character no name has */
    fill(&s, "node-a", 1, 3);
    s.names[0].name[1] = '<';
    len = traffic_summary_encode(&s, key_a, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(traffic_summary_decode(buf, (size_t)len, &d, err, sizeof(err)), -1);
    /* a p99 bucket past the histogram */
    fill(&s, "node-a", 1, 3);
    s.names[0].p99 = PROXY_LATENCY_BUCKETS + 1;
    len = traffic_summary_encode(&s, key_a, buf, sizeof(buf));
    assert_int_equal(traffic_summary_decode(buf, (size_t)len, &d, err, sizeof(err)), -1);
    /* an id with a character no member id has */
    fill(&s, "node a", 1, 3);
    len = traffic_summary_encode(&s, key_a, buf, sizeof(buf));
    assert_int_equal(traffic_summary_decode(buf, (size_t)len, &d, err, sizeof(err)), -1);
}

/* Encodes TRAFFIC_NAMES_MAX names of name_len (+ digits) characters; returns how many were
 * listed, checking the size bound and that listed + others keeps every request. */
static size_t listed_of(size_t name_len)
{
    static struct traffic_summary s, d;
    uint8_t buf[GOSSIP_ITEM_MAX];
    char err[STATE_ERR_MAX];
    uint64_t all = 0, listed = 0;

    fill(&s, "0123456789abcdef0123456789abcdef", TRAFFIC_NAMES_MAX, name_len);
    for (size_t i = 0; i < s.count; i++)
        all += s.names[i].requests;
    int len = traffic_summary_encode(&s, key_a, buf, sizeof(buf));
    assert_true(len > 0 && len <= TRAFFIC_ITEM_MAX);
    assert_int_equal(traffic_summary_decode(buf, (size_t)len, &d, err, sizeof(err)), 0);
    for (size_t i = 0; i < d.count; i++)
        listed += d.names[i].requests;
    assert_int_equal(listed + d.others_requests, all);
    fprintf(stderr, "names of %zu+ characters: %zu listed in %d bytes, the rest in others\n",
            name_len, d.count, len);
    return d.count;
}

static void summary_fits_one_datagram(void **state)
{
    /* 24 names of 240 characters would be 6.8 KB: the sender lists what fits 1 KiB (a gossip
     * datagram with room for its framing) and sums the rest */
    assert_int_equal(listed_of(240), 3);
    assert_int_equal(listed_of(8), 17);
    assert_int_equal(listed_of(1), 20);
    /* a summary over the bound is refused by the decoder */
    static struct traffic_summary d;
    static uint8_t big[TRAFFIC_ITEM_MAX + 1];
    char err[STATE_ERR_MAX];
    assert_int_equal(traffic_summary_decode(big, sizeof(big), &d, err, sizeof(err)), -1);
}

static struct proxy_name_stats stat_of(const char *name, uint64_t requests, uint64_t errors,
                                       uint64_t slow)
{
    struct proxy_name_stats s;

    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.requests = requests;
    s.errors = errors;
    s.latency_count[0] = requests - slow; /* under 1 ms */
    s.latency_count[6] = slow;            /* 50..100 ms */
    return s;
}

struct collected {
    char name[64];
    struct traffic_sample samples[NODE_HISTORY_SAMPLES];
    size_t count;
    int names;
};

static void collect(void *ctx, const char *name, const struct traffic_sample *samples, size_t count)
{
    struct collected *c = ctx;

    c->names++;
    if (strcmp(name, c->name) == 0) {
        memcpy(c->samples, samples, count * sizeof(*samples));
        c->count = count;
    }
}

static void history_counts_each_interval(void **state)
{
    struct traffic_history *h = traffic_history_new();
    struct collected c = {.name = "shop"};
    uint64_t total = 0, errors = 0;

    /* 100 intervals: 10 to 12 more requests each, 2 of them errors */
    for (int t = 1; t <= 100; t++) {
        traffic_history_begin(h, 1000u * (unsigned)t);
        total += 10 + (unsigned)t % 3;
        errors += 2;
        struct proxy_name_stats s = stat_of("shop", total, errors, 0);
        traffic_history_add(h, &s);
        traffic_history_end(h);
    }
    traffic_history_each(h, collect, &c);
    assert_int_equal(c.names, 1);
    /* the ring keeps the last 90 intervals, oldest first, each exactly its own counts */
    assert_int_equal(c.count, NODE_HISTORY_SAMPLES);
    for (size_t i = 0; i < c.count; i++) {
        int t = 11 + (int)i;
        assert_int_equal(c.samples[i].requests, 10 + t % 3);
        assert_int_equal(c.samples[i].errors, 2);
    }
    assert_int_equal(traffic_history_end_ms(h), 100000);
    traffic_history_free(h);

    /* p99: the bucket that holds the 99th percentile request */
    uint64_t counts[PROXY_LATENCY_BUCKETS] = {0};
    assert_int_equal(traffic_p99_bucket(counts), 0);
    assert_int_equal(traffic_p99_ms(0), -1);
    counts[0] = 99;
    counts[6] = 1;
    assert_int_equal(traffic_p99_ms(traffic_p99_bucket(counts)), 1);
    counts[6] = 2;
    assert_int_equal(traffic_p99_ms(traffic_p99_bucket(counts)), 100);
    counts[PROXY_LATENCY_BUCKETS - 1] = 50;
    assert_int_equal(traffic_p99_ms(traffic_p99_bucket(counts)), 5000);
}

static void history_is_bounded(void **state)
{
    struct traffic_history *h = traffic_history_new();
    struct collected c = {.name = "busy"};
    char name[32];

    /* 100 names with traffic: 64 get a history, the others are counted as refused */
    traffic_history_begin(h, 1);
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof(name), "name-%03d", i);
        struct proxy_name_stats s = stat_of(name, 1, 0, 0);
        traffic_history_add(h, &s);
    }
    traffic_history_end(h);
    assert_int_equal(traffic_history_names(h), NODE_HISTORY_NAMES);
    assert_int_equal(traffic_history_refused(h), 100 - NODE_HISTORY_NAMES);
    /* next interval: name-000 stays idle, every other listed name gets one more request, and a
     * busier newcomer takes the least active slot (name-000's) */
    traffic_history_begin(h, 2);
    for (int i = 1; i < NODE_HISTORY_NAMES; i++) {
        snprintf(name, sizeof(name), "name-%03d", i);
        struct proxy_name_stats s = stat_of(name, 2, 0, 0);
        traffic_history_add(h, &s);
    }
    struct proxy_name_stats busy = stat_of("busy", 500, 0, 0);
    traffic_history_add(h, &busy);
    /* a second newcomer takes another idle-enough slot, not the one the first just got */
    struct proxy_name_stats late = stat_of("late", 400, 0, 0);
    traffic_history_add(h, &late);
    traffic_history_end(h);
    assert_int_equal(traffic_history_names(h), NODE_HISTORY_NAMES);
    traffic_history_begin(h, 3);
    busy.requests = 530;
    traffic_history_add(h, &busy);
    traffic_history_end(h);
    traffic_history_each(h, collect, &c);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.samples[0].requests, 30);
    /* names the proxy stopped listing give their slots up once their ring is empty */
    for (int t = 0; t < NODE_HISTORY_SAMPLES + 1; t++) {
        traffic_history_begin(h, 4 + (unsigned)t);
        traffic_history_end(h);
    }
    assert_int_equal(traffic_history_names(h), 0);
    traffic_history_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(summary_round_trip_and_signature),
        cmocka_unit_test(summary_bad_fields_refused),
        cmocka_unit_test(summary_fits_one_datagram),
        cmocka_unit_test(history_counts_each_interval),
        cmocka_unit_test(history_is_bounded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
