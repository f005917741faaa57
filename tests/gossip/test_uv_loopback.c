/*
 * test_uv_loopback.c - real UDP and TCP sockets on 127.0.0.1 through the libuv transport.
 *
 * Proves what the fake network cannot: that members really talk over the sockets, that the
 * cluster key encrypts and authenticates (the same key: a cluster; a rotated keyring: still
 * one cluster; a different key or another label: two clusters that never merge, with the
 * drops counted), and that closing frees every handle (uv_loop_close succeeds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gossip/gossip.h"

#define KEY1 "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define KEY2 "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="

struct member {
    struct gossip *g;
    char item_key[64]; /* last item received */
    uint64_t item_version;
};

static int on_item(void *ctx, const char *key, uint64_t version, const uint8_t *bytes, size_t len)
{
    struct member *m = ctx;

    (void)bytes;
    (void)len;
    if (strcmp(m->item_key, key) == 0 && version <= m->item_version)
        return 0;
    snprintf(m->item_key, sizeof(m->item_key), "%s", key);
    m->item_version = version;
    return 1;
}

static void open_member(uv_loop_t *loop, struct member *m, int idx, const char *keys,
                        const char *label)
{
    struct gossip_config cfg;
    struct gossip_callbacks cb = {.ctx = m, .on_item = on_item};
    char err[GOSSIP_ERR_MAX];

    memset(m, 0, sizeof(*m));
    gossip_config_default(&cfg);
    snprintf(cfg.id, sizeof(cfg.id), "member-%d", idx);
    snprintf(cfg.meta.name, sizeof(cfg.meta.name), "m%d", idx);
    assert_int_equal(gossip_addr_parse("127.0.0.1:0", &cfg.bind, NULL, 0), 0);
    snprintf(cfg.label, sizeof(cfg.label), "%s", label);
    if (keys != NULL)
        assert_int_equal(gossip_keyring_parse(keys, strlen(keys), &cfg.keyring, err, sizeof(err)),
                         0);
    cfg.probe_interval_ms = 200;
    cfg.probe_timeout_ms = 100;
    cfg.gossip_interval_ms = 50;
    cfg.seed = (uint64_t)idx;
    m->g = gossip_uv_open(loop, &cfg, &cb, err, sizeof(err));
    if (m->g == NULL)
        fail_msg("gossip_uv_open: %s", err);
}

static void join(struct member *m, struct member *seed)
{
    struct gossip_addr a;

    assert_int_equal(gossip_uv_bound_addr(seed->g, &a), 0);
    assert_int_equal(gossip_join(m->g, &a, 1), 0);
}

struct waiter {
    uv_timer_t timer;
    uint64_t left_ms;
    bool (*pred)(void *arg);
    void *arg;
    bool ok;
};

static void wait_tick(uv_timer_t *t)
{
    struct waiter *w = t->data;

    if (w->pred != NULL && w->pred(w->arg)) {
        w->ok = true;
        uv_timer_stop(t);
        return;
    }
    if (w->left_ms <= 10) {
        uv_timer_stop(t);
        return;
    }
    w->left_ms -= 10;
}

/* Runs the loop until pred holds or ms pass (pred NULL: just run ms). */
static bool run_until(uv_loop_t *loop, bool (*pred)(void *), void *arg, uint64_t ms)
{
    struct waiter w = {.left_ms = ms, .pred = pred, .arg = arg};

    uv_timer_init(loop, &w.timer);
    w.timer.data = &w;
    uv_timer_start(&w.timer, wait_tick, 10, 10);
    while (uv_is_active((uv_handle_t *)&w.timer))
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&w.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return w.ok;
}

struct group {
    struct member *m;
    size_t n;
    size_t want;
};

static bool group_sees(void *arg)
{
    struct group *gr = arg;

    for (size_t i = 0; i < gr->n; i++) {
        struct gossip_stats st;
        gossip_stats_get(gr->m[i].g, &st);
        if (st.members_alive != gr->want)
            return false;
    }
    return true;
}

static bool item_everywhere(void *arg)
{
    struct group *gr = arg;

    for (size_t i = 1; i < gr->n; i++)
        if (strcmp(gr->m[i].item_key, "name/demo") != 0 || gr->m[i].item_version != 3)
            return false;
    return true;
}

static void close_all(uv_loop_t *loop, struct member *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gossip_uv_close(m[i].g);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void test_encrypted_cluster_forms_and_spreads_items(void **state)
{
    uv_loop_t loop;
    struct member m[3];
    struct group gr = {m, 3, 3};
    uint8_t big[3000];
    struct gossip_stats st;

    (void)state;
    uv_loop_init(&loop);
    for (int i = 0; i < 3; i++)
        open_member(&loop, &m[i], i, KEY1 "\n", "prod");
    join(&m[1], &m[0]);
    join(&m[2], &m[0]);
    assert_true(run_until(&loop, group_sees, &gr, 10000));
    /* an item bigger than a datagram crosses over TCP */
    memset(big, 'x', sizeof(big));
    assert_int_equal(gossip_broadcast(m[0].g, "name/demo", 3, big, sizeof(big)), 0);
    assert_true(run_until(&loop, item_everywhere, &gr, 10000));
    gossip_stats_get(m[1].g, &st);
    assert_true(st.packets_received > 0);
    assert_true(st.streams_received > 0);
    assert_int_equal(st.drops[GOSSIP_DROP_DECRYPT], 0);
    close_all(&loop, m, 3);
}

static void test_key_rotation_keeps_one_cluster(void **state)
{
    uv_loop_t loop;
    struct member m[3];
    struct group gr = {m, 3, 3};

    (void)state;
    uv_loop_init(&loop);
    /* mid-rotation: one member still encrypts with the old key, one already with the new,
     * one has only the old key listed second; all hold both, so all understand each other */
    open_member(&loop, &m[0], 0, KEY1 "\n" KEY2 "\n", "prod");
    open_member(&loop, &m[1], 1, KEY2 "\n" KEY1 "\n", "prod");
    open_member(&loop, &m[2], 2, "# rotated on Monday\n" KEY2 "\n\n" KEY1 "\n", "prod");
    join(&m[1], &m[0]);
    join(&m[2], &m[1]);
    assert_true(run_until(&loop, group_sees, &gr, 10000));
    close_all(&loop, m, 3);
}

static void test_wrong_key_never_merges(void **state)
{
    uv_loop_t loop;
    struct member m[2];
    struct group gr = {m, 2, 2};
    struct gossip_stats st;

    (void)state;
    uv_loop_init(&loop);
    open_member(&loop, &m[0], 0, KEY1, "prod");
    open_member(&loop, &m[1], 1, KEY2, "prod");
    join(&m[1], &m[0]);
    assert_false(run_until(&loop, group_sees, &gr, 1500));
    gossip_stats_get(m[0].g, &st);
    assert_true(st.drops[GOSSIP_DROP_DECRYPT] > 0);
    assert_int_equal(st.members_alive, 1);
    close_all(&loop, m, 2);
}

static void test_label_mismatch_never_merges(void **state)
{
    uv_loop_t loop;
    struct member m[2];
    struct group gr = {m, 2, 2};
    struct gossip_stats st;

    (void)state;
    uv_loop_init(&loop);
    open_member(&loop, &m[0], 0, KEY1, "prod");
    open_member(&loop, &m[1], 1, KEY1, "staging");
    join(&m[1], &m[0]);
    assert_false(run_until(&loop, group_sees, &gr, 1500));
    gossip_stats_get(m[0].g, &st);
    assert_true(st.drops[GOSSIP_DROP_LABEL] > 0);
    assert_int_equal(st.members_alive, 1);
    close_all(&loop, m, 2);
}

static void test_plain_and_encrypted_do_not_mix(void **state)
{
    uv_loop_t loop;
    struct member m[2];
    struct group gr = {m, 2, 2};
    struct gossip_stats st0, st1;

    (void)state;
    uv_loop_init(&loop);
    open_member(&loop, &m[0], 0, KEY1, "");
    open_member(&loop, &m[1], 1, NULL, "");
    join(&m[1], &m[0]);
    join(&m[0], &m[1]);
    assert_false(run_until(&loop, group_sees, &gr, 1500));
    gossip_stats_get(m[0].g, &st0);
    gossip_stats_get(m[1].g, &st1);
    assert_true(st0.drops[GOSSIP_DROP_UNENCRYPTED] > 0);
    assert_true(st1.drops[GOSSIP_DROP_ENCRYPTED] > 0);
    close_all(&loop, m, 2);
}

static void test_bind_conflict_is_reported(void **state)
{
    uv_loop_t loop;
    struct member m;
    struct gossip_config cfg;
    struct gossip_addr a;
    char err[GOSSIP_ERR_MAX] = "";
    char text[64];

    (void)state;
    uv_loop_init(&loop);
    open_member(&loop, &m, 0, NULL, "");
    assert_int_equal(gossip_uv_bound_addr(m.g, &a), 0);
    gossip_config_default(&cfg);
    snprintf(cfg.id, sizeof(cfg.id), "other");
    cfg.bind = a;
    /* UDP allows address reuse, TCP does not: the second bind must fail with a message */
    assert_null(gossip_uv_open(&loop, &cfg, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, gossip_addr_format(&a, text, sizeof(text))));
    assert_non_null(strstr(err, "bind"));
    gossip_uv_close(m.g);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

struct junk {
    uv_tcp_t tcp;
    uv_connect_t req;
    uv_write_t wr;
    uint8_t frame[8];
};

static void junk_written(uv_write_t *w, int status)
{
    (void)status;
    uv_close((uv_handle_t *)w->handle, NULL);
}

static void junk_connected(uv_connect_t *req, int status)
{
    struct junk *j = req->data;
    uv_buf_t b = uv_buf_init((char *)j->frame, sizeof(j->frame));

    if (status != 0) {
        uv_close((uv_handle_t *)&j->tcp, NULL);
        return;
    }
    uv_write(&j->wr, (uv_stream_t *)&j->tcp, &b, 1, junk_written);
}

static bool drops_seen(void *arg)
{
    struct gossip_stats st;

    gossip_stats_get(((struct member *)arg)->g, &st);
    return st.drops[GOSSIP_DROP_VERSION] >= 1 && st.drops[GOSSIP_DROP_MALFORMED] >= 1 &&
           st.drops[GOSSIP_DROP_OVERSIZE] >= 1;
}

static void test_garbage_is_dropped_and_counted(void **state)
{
    uv_loop_t loop;
    struct member m;
    struct gossip_addr a;
    struct sockaddr_in sa;
    uv_udp_t udp;
    struct junk j;
    /* a datagram of another protocol version, and one truncated inside its header */
    static const uint8_t v9[] = {9, 0, 0, 0x92, 0x03, 0x01};
    static const uint8_t cut[] = {3, 0, 40, 'x'}; /* 3: the wire version */
    uv_buf_t b;

    (void)state;
    uv_loop_init(&loop);
    open_member(&loop, &m, 0, NULL, "");
    assert_int_equal(gossip_uv_bound_addr(m.g, &a), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    memcpy(&sa.sin_addr, a.ip, 4);
    sa.sin_port = htons(a.port);
    uv_udp_init(&loop, &udp);
    b = uv_buf_init((char *)v9, sizeof(v9));
    assert_int_equal(uv_udp_try_send(&udp, &b, 1, (const struct sockaddr *)&sa), sizeof(v9));
    b = uv_buf_init((char *)cut, sizeof(cut));
    assert_int_equal(uv_udp_try_send(&udp, &b, 1, (const struct sockaddr *)&sa), sizeof(cut));
    /* a TCP frame announcing 2 GiB: refused from its header, nothing allocated for it */
    memset(&j, 0, sizeof(j));
    j.frame[0] = 0x80;
    uv_tcp_init(&loop, &j.tcp);
    j.req.data = &j;
    assert_int_equal(uv_tcp_connect(&j.req, &j.tcp, (const struct sockaddr *)&sa, junk_connected),
                     0);
    assert_true(run_until(&loop, drops_seen, &m, 5000));
    uv_close((uv_handle_t *)&udp, NULL);
    close_all(&loop, &m, 1);
}

/* Opens n TCP connections to `to` from 127.0.0.<first>..<first+spread-1> that send nothing
 * (an attacker holding sockets open, no key needed). Returns how many connected. */
static size_t flood_open(uv_loop_t *loop, const struct gossip_addr *to, int *fds, size_t n,
                         int first, int spread)
{
    struct sockaddr_in dst, src;
    size_t ok = 0;

    memset(&dst, 0, sizeof(dst));
    dst.sin_family = AF_INET;
    memcpy(&dst.sin_addr, to->ip, 4);
    dst.sin_port = htons(to->port);
    for (size_t i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(fds[i] >= 0);
        memset(&src, 0, sizeof(src));
        src.sin_family = AF_INET;
        src.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)(first + (int)(i % (size_t)spread)));
        assert_int_equal(bind(fds[i], (struct sockaddr *)&src, sizeof(src)), 0);
        if (connect(fds[i], (struct sockaddr *)&dst, sizeof(dst)) == 0 || errno == EINPROGRESS)
            ok++;
        /* let the listener accept as we go: the backlog is 128 */
        if (i % 64 == 63)
            run_until(loop, NULL, NULL, 20);
    }
    return ok;
}

static void flood_close(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* 2,000 connections to the gossip TCP port, first from one address, then from 200: the node
 * refuses past its per-address and total caps (without aborting: the 257th connection used to
 * close a stack-allocated handle), keeps serving a peer joining during the one-address flood,
 * closes the idle connections quickly, and a member joins normally afterwards. */
static void test_connection_flood_is_capped(void **state)
{
    enum { FLOOD = 2000 };
    uv_loop_t loop;
    struct member m[3];
    struct group two = {m, 2, 2}, three = {m, 3, 3};
    struct gossip_addr a;
    struct gossip_stats st;
    struct rlimit rl;
    static int fds[FLOOD];

    (void)state;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 3 * FLOOD) {
        rl.rlim_cur = rl.rlim_max < 3 * FLOOD ? rl.rlim_max : 3 * FLOOD;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < 2 * FLOOD + 64)
        skip();
    uv_loop_init(&loop);
    open_member(&loop, &m[0], 0, KEY1, "prod");
    open_member(&loop, &m[1], 1, KEY1, "prod");
    assert_int_equal(gossip_uv_bound_addr(m[0].g, &a), 0);

    /* one address holds as many connections as it can: a peer elsewhere still joins */
    assert_int_equal(flood_open(&loop, &a, fds, FLOOD / 2, 2, 1), FLOOD / 2);
    run_until(&loop, NULL, NULL, 200);
    join(&m[1], &m[0]);
    assert_true(run_until(&loop, group_sees, &two, 10000));
    gossip_stats_get(m[0].g, &st);
    assert_true(st.drops[GOSSIP_DROP_TABLE_FULL] >= FLOOD / 2 - 64);

    /* then from 200 addresses: the total cap refuses the rest, nothing aborts */
    assert_int_equal(flood_open(&loop, &a, fds + FLOOD / 2, FLOOD / 2, 10, 200), FLOOD / 2);
    run_until(&loop, NULL, NULL, 300);
    /* idle connections are cut within seconds; then a new member joins as usual */
    run_until(&loop, NULL, NULL, 2500);
    open_member(&loop, &m[2], 2, KEY1, "prod");
    join(&m[2], &m[0]);
    assert_true(run_until(&loop, group_sees, &three, 10000));
    flood_close(fds, FLOOD);
    close_all(&loop, m, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encrypted_cluster_forms_and_spreads_items),
        cmocka_unit_test(test_key_rotation_keeps_one_cluster),
        cmocka_unit_test(test_wrong_key_never_merges),
        cmocka_unit_test(test_label_mismatch_never_merges),
        cmocka_unit_test(test_plain_and_encrypted_do_not_mix),
        cmocka_unit_test(test_bind_conflict_is_reported),
        cmocka_unit_test(test_garbage_is_dropped_and_counted),
        cmocka_unit_test(test_connection_flood_is_capped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
