/*
 * bench_gossip_member.c - one gossip member on a real socket, for tests/bench/gossip_vs_serf.sh.
 *
 * Runs a webgw gossip member (the real libuv transport, default timings unless told) and
 * prints one line per event with the wall clock in milliseconds, so a driver can time a
 * failure, a join or a record across many processes on one machine:
 *
 *     <ms> alive|suspect|dead|left <member id>
 *     <ms> item <key> <version>
 *
 * Commands on stdin, one per line: "broadcast KEY VERSION" (a 200-byte item, like a small
 * record), "leave", "quit". Loopback only: it refuses to bind anything outside 127.0.0.0/8.
 *
 *   bench_gossip_member --id ID --bind 127.0.0.x:PORT [--join ADDR] [--probe-ms N]
 */
#include "gossip/gossip.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct member {
    struct gossip *g; /* the member */
    uv_loop_t *loop;  /* its loop */
    uv_pipe_t in;     /* stdin */
    char line[512];   /* command being read */
    size_t len;
    char keys[64][64]; /* items held (the bench sends few) */
    uint64_t versions[64];
    size_t nkeys;
};

static uint64_t wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_member(void *ctx, const struct gossip_member *m, bool reaped)
{
    (void)ctx;
    if (reaped || m->self)
        return;
    printf("%llu %s %s\n", (unsigned long long)wall_ms(), gossip_state_name(m->state), m->id);
    fflush(stdout);
}

static int on_item(void *ctx, const char *key, uint64_t version, const uint8_t *bytes, size_t len)
{
    struct member *mb = ctx;
    size_t i;

    (void)bytes;
    (void)len;
    for (i = 0; i < mb->nkeys; i++)
        if (strcmp(mb->keys[i], key) == 0)
            break;
    if (i < mb->nkeys && mb->versions[i] >= version)
        return 0;
    if (i == mb->nkeys) {
        if (mb->nkeys == 64)
            return 0;
        snprintf(mb->keys[mb->nkeys++], sizeof(mb->keys[0]), "%s", key);
    }
    mb->versions[i] = version;
    printf("%llu item %s %llu\n", (unsigned long long)wall_ms(), key, (unsigned long long)version);
    fflush(stdout);
    return 1;
}

static int each_item(void *ctx, gossip_item_visit_fn visit, void *vctx)
{
    struct member *mb = ctx;

    for (size_t i = 0; i < mb->nkeys; i++)
        if (visit(vctx, mb->keys[i], mb->versions[i], 0) != 0)
            return 1;
    return 0;
}

static int get_item(void *ctx, const char *key, uint64_t *version, uint8_t *buf, size_t cap)
{
    struct member *mb = ctx;

    for (size_t i = 0; i < mb->nkeys; i++) {
        if (strcmp(mb->keys[i], key) == 0 && cap >= 200) {
            *version = mb->versions[i];
            memset(buf, 'r', 200);
            return 200;
        }
    }
    return GOSSIP_ENOTFOUND;
}

static void command(struct member *mb, char *line)
{
    char key[64];
    unsigned long long version;
    uint8_t value[200];

    if (sscanf(line, "broadcast %63s %llu", key, &version) == 2) {
        memset(value, 'r', sizeof(value));
        on_item(mb, key, version, value, sizeof(value));
        gossip_broadcast(mb->g, key, version, value, sizeof(value));
    } else if (strcmp(line, "leave") == 0) {
        gossip_leave(mb->g);
    } else if (strcmp(line, "quit") == 0) {
        uv_stop(mb->loop);
    }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static char chunk[4096];

    (void)h;
    (void)suggested;
    buf->base = chunk;
    buf->len = sizeof(chunk);
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct member *mb = s->data;

    if (n < 0) {
        uv_read_stop(s);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf->base[i] == '\n' || mb->len == sizeof(mb->line) - 1) {
            mb->line[mb->len] = '\0';
            command(mb, mb->line);
            mb->len = 0;
        } else {
            mb->line[mb->len++] = buf->base[i];
        }
    }
}

int main(int argc, char **argv)
{
    struct gossip_config cfg;
    struct gossip_callbacks cb;
    struct member mb;
    struct gossip_addr join;
    char err[GOSSIP_ERR_MAX];
    bool joining = false;
    uv_loop_t loop;

    memset(&mb, 0, sizeof(mb));
    gossip_config_default(&cfg);
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--id") == 0) {
            snprintf(cfg.id, sizeof(cfg.id), "%s", argv[i + 1]);
            snprintf(cfg.meta.name, sizeof(cfg.meta.name), "%s", argv[i + 1]);
        } else if (strcmp(argv[i], "--bind") == 0) {
            if (gossip_addr_parse(argv[i + 1], &cfg.bind, err, sizeof(err)) != 0 ||
                cfg.bind.family != 4 || cfg.bind.ip[0] != 127) {
                fprintf(stderr, "--bind: want 127.x.y.z:PORT (loopback only)\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--join") == 0) {
            if (gossip_addr_parse(argv[i + 1], &join, err, sizeof(err)) != 0 || join.family != 4 ||
                join.ip[0] != 127) {
                fprintf(stderr, "--join: want 127.x.y.z:PORT (loopback only)\n");
                return 2;
            }
            joining = true;
        } else if (strcmp(argv[i], "--probe-ms") == 0) {
            cfg.probe_interval_ms = (uint32_t)atoi(argv[i + 1]);
            cfg.probe_timeout_ms = cfg.probe_interval_ms / 2;
        } else {
            fprintf(stderr, "unknown option %s\n", argv[i]);
            return 2;
        }
    }
    cfg.incarnation = wall_ms() / 1000;
    cfg.seed = (uint64_t)getpid() ^ wall_ms();
    signal(SIGPIPE, SIG_IGN);
    memset(&cb, 0, sizeof(cb));
    cb.ctx = &mb;
    cb.on_member = on_member;
    cb.on_item = on_item;
    cb.each_item = each_item;
    cb.get_item = get_item;
    uv_loop_init(&loop);
    mb.loop = &loop;
    mb.g = gossip_uv_open(&loop, &cfg, &cb, err, sizeof(err));
    if (mb.g == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (joining)
        gossip_join(mb.g, &join, 1);
    uv_pipe_init(&loop, &mb.in, 0);
    uv_pipe_open(&mb.in, 0);
    mb.in.data = &mb;
    uv_read_start((uv_stream_t *)&mb.in, alloc_cb, read_cb);
    printf("%llu ready %s\n", (unsigned long long)wall_ms(), cfg.id);
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    gossip_uv_close(mb.g);
    uv_close((uv_handle_t *)&mb.in, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : 1;
}
