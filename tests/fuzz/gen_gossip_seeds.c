/*
 * gen_gossip_seeds.c - writes the seed corpora of fuzz_gossip_packet and fuzz_gossip_keyring
 * with the project's own encoders: every datagram message type (bare, in a plain envelope,
 * sealed with the test key), the datagrams and push-pull stream messages two members really
 * exchange when one joins the other, and key files. Seeds that parse let mutations start past
 * the framing. Run: gen_gossip_seeds tests/fuzz/corpus/gossip_packet
 * tests/fuzz/corpus/gossip_keyring
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_gossip.h"

static const char *packet_dir;
static int written;

static void put(const char *dir, const char *name, int mode, const uint8_t *buf, size_t len)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || (mode >= 0 && fputc(mode, f) == EOF) ||
        (len > 0 && fwrite(buf, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    written++;
}

static void samples(struct gmsg *m)
{
    static const uint8_t payload[] = "signed record bytes";

    memset(m, 0, 9 * sizeof(*m));
    m[0].type = GMSG_PING;
    m[0].seq = 77;
    strcpy(m[0].id, "fuzz-self");
    strcpy(m[0].from, "peer-1");
    m[1].type = GMSG_IPING;
    m[1].seq = 78;
    strcpy(m[1].id, "peer-2");
    gossip_addr_parse("[::1]:7948", &m[1].addr, NULL, 0);
    m[1].nack = true;
    m[2].type = GMSG_ACK;
    m[2].seq = 4000000000u;
    m[3].type = GMSG_NACK;
    m[3].seq = 1;
    m[4].type = GMSG_ALIVE;
    strcpy(m[4].id, "peer-4");
    m[4].incarnation = 1732400000;
    fg_addr(&m[4].addr, 7950);
    strcpy(m[4].meta.name, "gw-paris-1");
    strcpy(m[4].meta.domain, "gw.example.test");
    strcpy(m[4].meta.version, "0.1.0");
    fg_addr(&m[4].meta.http, 80);
    gossip_addr_parse("[::1]:443", &m[4].meta.https, NULL, 0);
    m[5].type = GMSG_SUSPECT;
    strcpy(m[5].id, "peer-2");
    m[5].incarnation = 3;
    strcpy(m[5].from, "peer-1");
    m[6].type = GMSG_DEAD;
    strcpy(m[6].id, "peer-3");
    m[6].incarnation = 3;
    strcpy(m[6].from, "peer-3");
    m[7].type = GMSG_ITEM;
    strcpy(m[7].key, "rec/delta");
    m[7].version = 5;
    m[7].bytes = payload;
    m[7].len = sizeof(payload);
    m[8].type = GMSG_HEALTH;
    strcpy(m[8].id, "peer-1");
    strcpy(m[8].key, "http://10.0.0.5:8080");
    m[8].version = 123;
    m[8].up = true;
    m[8].ttl_ms = 30000;
}

static void seal(EVP_CIPHER_CTX *ctx, bool keyed, const char *name, int mode, const uint8_t *body,
                 size_t len)
{
    struct gossip_keyring kr;
    uint8_t out[GOSSIP_UDP_MAX];
    int n;

    memset(&kr, 0, sizeof(kr));
    if (keyed) {
        memcpy(kr.keys[0], fg_key, GOSSIP_KEY_LEN);
        kr.count = 1;
    }
    n = genv_seal(ctx, &kr, FG_LABEL, FG_NOW_MS, body, len, out, sizeof(out));
    if (n < 0) {
        fprintf(stderr, "genv_seal %s: %d\n", name, n);
        exit(1);
    }
    put(packet_dir, name, mode, out, (size_t)n);
}

/* What members send: recorded, then delivered by hand. */
struct wire {
    uint8_t *buf[64];
    size_t len[64];
    bool stream[64];
    size_t n;
};

static void record(void *ctx, bool stream, const uint8_t *buf, size_t len)
{
    struct wire *w = ctx;

    if (w->n == 64)
        return;
    w->buf[w->n] = malloc(len);
    if (w->buf[w->n] == NULL)
        exit(1);
    memcpy(w->buf[w->n], buf, len);
    w->len[w->n] = len;
    w->stream[w->n++] = stream;
}

static int nstream, ndgram;

/* Writes what `w` holds as seeds, delivers it to `to`, and empties it. */
static void deliver(struct wire *w, struct gossip *to, uint16_t from_port)
{
    struct gossip_addr from;

    fg_addr(&from, from_port);
    for (size_t i = 0; i < w->n; i++) {
        char name[64];
        if (w->stream[i] && w->len[i] > 8192)
            continue;
        if (w->stream[i])
            snprintf(name, sizeof(name), "recv-stream-%d", nstream++);
        else
            snprintf(name, sizeof(name), "recv-dgram-%d", ndgram++);
        put(packet_dir, name, w->stream[i] ? FG_RECV_STREAM : FG_RECV_DGRAM, w->buf[i], w->len[i]);
        if (to != NULL)
            gossip_receive(to, &from, w->buf[i], w->len[i], w->stream[i]);
        free(w->buf[i]);
    }
    w->n = 0;
}

/* A joins B (B knows peers, A holds one item fewer): the digest, the reply, both item
 * messages, and the datagrams of the first protocol period. */
static void exchange(void)
{
    static struct wire wa, wb;
    struct fg_capture ca = {record, &wa}, cb = {record, &wb};
    struct gossip *a, *b;
    struct gossip_addr seed;

    fg_item_count = 1;
    a = fg_member("fuzz-joiner", 7960, false, false, &ca);
    fg_item_count = 3;
    b = fg_member("fuzz-self", 7946, false, true, &cb);
    if (a == NULL || b == NULL)
        exit(1);
    fg_addr(&seed, 7946);
    if (gossip_join(a, &seed, 1) != 0)
        exit(1);
    for (int round = 0; round < 4; round++) {
        deliver(&wa, b, 7960);
        deliver(&wb, a, 7946);
    }
    gossip_broadcast(b, "rec/echo", 9, (const uint8_t *)"a fresh record", 14);
    gossip_tick(a);
    gossip_tick(b);
    deliver(&wa, b, 7960);
    deliver(&wb, NULL, 7946);
    gossip_free(a);
    gossip_free(b);
}

static void key_files(const char *dir)
{
    static const char one[] = FG_KEY_B64 "\n";
    static const char rotation[] = "# new key first, old key second\r\n"
                                   "  " FG_KEY_B64 "  \r\n"
                                   "\r\n"
                                   "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\r\n";
    static const char short_line[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\n";
    static const char not_32[] = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ==\n";
    char eight[8 * 45 + 1] = "";

    for (int i = 0; i < 8; i++) {
        uint8_t key[GOSSIP_KEY_LEN];
        memset(key, 'a' + i, sizeof(key));
        EVP_EncodeBlock((unsigned char *)eight + 45 * i, key, sizeof(key));
        eight[45 * i + 44] = '\n';
    }
    eight[8 * 45] = '\0';
    put(dir, "one", -1, (const uint8_t *)one, strlen(one));
    put(dir, "rotation", -1, (const uint8_t *)rotation, strlen(rotation));
    put(dir, "eight", -1, (const uint8_t *)eight, strlen(eight));
    put(dir, "short-line", -1, (const uint8_t *)short_line, strlen(short_line));
    put(dir, "not-32-bytes", -1, (const uint8_t *)not_32, strlen(not_32));
}

int main(int argc, char **argv)
{
    static const char *const names[] = {"ping",    "iping", "ack",  "nack",  "alive",
                                        "suspect", "dead",  "item", "health"};
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    uint8_t all[GOSSIP_UDP_MAX];
    struct gmsg m[9];
    struct gwbuf w;

    if (argc != 3 || ctx == NULL) {
        fprintf(stderr, "usage: %s PACKET_DIR KEYRING_DIR\n", argv[0]);
        return 2;
    }
    packet_dir = argv[1];
    samples(m);
    gwbuf_init_fixed(&w, all, sizeof(all));
    for (size_t i = 0; i < 9; i++) {
        uint8_t one[GOSSIP_UDP_MAX];
        struct gwbuf w1;
        char name[64];

        gwbuf_init_fixed(&w1, one, sizeof(one));
        if (gproto_encode(&w1, &m[i]) != 0 || gproto_encode(&w, &m[i]) != 0)
            return 1;
        snprintf(name, sizeof(name), "body-%s", names[i]);
        put(packet_dir, name, FG_BODY, one, w1.len);
        snprintf(name, sizeof(name), "keyed-%s", names[i]);
        seal(ctx, true, name, FG_ENV_KEYED, one, w1.len);
        snprintf(name, sizeof(name), "recv-%s", names[i]);
        seal(ctx, false, name, FG_RECV_DGRAM, one, w1.len);
    }
    put(packet_dir, "body-all", FG_BODY, all, w.len);
    seal(ctx, false, "plain-all", FG_ENV_PLAIN, all, w.len);
    seal(ctx, true, "keyed-all", FG_ENV_KEYED, all, w.len);
    exchange();
    key_files(argv[2]);
    EVP_CIPHER_CTX_free(ctx);
    printf("%d seeds (%d stream messages, %d datagrams exchanged)\n", written, nstream, ndgram);
    return 0;
}
