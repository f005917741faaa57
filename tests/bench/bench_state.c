/*
 * bench_state.c - how fast the state layer takes records in, how much memory a record costs,
 * and how fast proxy workers read routes while the state writer changes them.
 *
 * Phases (each printed as a row of the tables at the end):
 *   1. sign:    build N proxy records (names "bench-0000000".., two backends each: one private
 *               IPv4, one Yggdrasil IPv6) and sign them with state_record_sign on all cores,
 *               keeping only their canonical bytes, as records arrive off the wire.
 *   2. ingest:  on one thread, as the node's state writer does: decode, validate, merge,
 *               store append, route apply, timed per stage. The store of this phase lives on
 *               tmpfs (/dev/shm) where fdatasync returns at once: 1M fsyncs to a real disk
 *               take many minutes, so this phase measures the CPU cost; it is labelled
 *               "no fsync (tmpfs)" in the output. Signature verification is left out here
 *               and measured in phase 4.
 *   3. memory:  RSS (/proc/self/statm) and malloc heap in use (mallinfo2) before and after
 *               phase 2, then again around building a second route table alone from the
 *               merged names, plus the route table's own accounting (state_routes_memory).
 *   4. verify:  state_record_verify on a sample: the per-record cost gossip and the API pay.
 *   5. durable: M records through the full acknowledged path (decode, validate, verify,
 *               merge, append with fdatasync, apply) with the store on a real disk
 *               (--fsync-dir, default /var/tmp), and M bare fsync'd appends.
 *   6. lookups: 1 and 2 reader threads look up random hosts among the N routes for --seconds
 *               each, first with no writer, then while the main thread churns (re-applies
 *               every name with a new version, as fast as it can). The same runs then drive
 *               the baseline below, and the report prints the ratios.
 *
 * Anchor: HAProxy and nginx have no replicated record store to compare with, but HAProxy's
 * runtime-updatable maps show the usual alternative to RCU for the lookup side: a table behind
 * a reader-writer lock. The baseline is that, built here with the same load factor, compact
 * nodes and copy-out (and a cheaper, unkeyed hash), so the ratio isolates the synchronisation.
 * Not a test: tests/bench/state.sh builds and runs it.
 */
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "state/state.h"

#define BENCH_DOMAIN "gw.example.com"
#define BENCH_KEYS_PER_THREAD 8
#define BENCH_MAX_THREADS 64

struct bench_opts {
    size_t records;        /* N: records of the ingest and lookup phases */
    size_t durable;        /* M: records through the fsync'd path */
    size_t verify;         /* records in the verify sample */
    double seconds;        /* per lookup measurement */
    int threads;           /* signing threads */
    const char *fsync_dir; /* parent of the fsync'd store (a real disk) */
    const char *fast_dir;  /* parent of the no-fsync store (tmpfs) */
};

/* One encoded signed record. */
struct bench_blob {
    uint8_t *bytes; /* canonical encoding, inside a signer's buffer */
    uint16_t len;   /* its length */
};

struct bench_signer {
    pthread_t thread;         /* the signing thread */
    const char *dir;          /* where its keys are written */
    size_t first, end;        /* record indexes it signs: [first, end) */
    struct bench_blob *blobs; /* shared output array, this signer's range */
    uint8_t *buf;             /* its encodings, back to back */
    uint64_t now_ms;          /* claim and issue times */
    char err[STATE_ERR_MAX];  /* first failure */
    int index;                /* signer number, for key file names */
};

/* ---- clocks and memory ---------------------------------------------------------------------- */

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t bench_rss_bytes(void)
{
    unsigned long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");

    if (!f)
        return 0;
    if (fscanf(f, "%lu %lu", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static size_t bench_heap_bytes(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

static const char *bench_fs_name(const char *path)
{
    struct statfs sf;

    if (statfs(path, &sf) != 0)
        return "?";
    switch ((unsigned long)sf.f_type) {
    case 0x01021994UL:
        return "tmpfs";
    case 0xEF53UL:
        return "ext4";
    case 0x58465342UL:
        return "xfs";
    case 0x9123683EUL:
        return "btrfs";
    case 0x794c7630UL:
        return "overlayfs";
    }
    return "other";
}

static int bench_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void bench_rm_tree(const char *dir)
{
    nftw(dir, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes "bench-NNNNNNN.gw.example.com" for index i into out[48]; returns its length. Readers
 * build hosts this way instead of reading them from a table, so a lookup costs only the route
 * table's cache misses, as for a proxy worker whose Host header is already in its buffer. */
static size_t bench_host(size_t i, char out[48])
{
    static const char suffix[] = "." BENCH_DOMAIN;
    char *p = out;

    memcpy(p, "bench-", 6);
    p += 6;
    for (int d = 6; d >= 0; d--) {
        p[d] = (char)('0' + i % 10);
        i /= 10;
    }
    p += 7;
    memcpy(p, suffix, sizeof(suffix));
    return (size_t)(p - out) + sizeof(suffix) - 1;
}

static double bench_thread_cpu(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_loadavg(char out[64])
{
    FILE *f = fopen("/proc/loadavg", "r");

    out[0] = '\0';
    if (f) {
        if (!fgets(out, 64, f))
            out[0] = '\0';
        fclose(f);
    }
    out[strcspn(out, "\n")] = '\0';
}

/* ---- phase 1: signed records ---------------------------------------------------------------- */

static void bench_record_of(size_t i, uint64_t now_ms, struct state_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->kind = STATE_RECORD_PROXY;
    snprintf(rec->name, sizeof(rec->name), "bench-%07zu", i);
    rec->version = 1;
    rec->reserved_at_ms = now_ms - 1000;
    rec->issued_at_ms = now_ms - 1000;
    rec->tls_passthrough = false;
    rec->backend_count = 2;
    rec->backends[0].family = 4; /* 10.x.y.z:8080 */
    rec->backends[0].addr[0] = 10;
    rec->backends[0].addr[1] = (uint8_t)(i >> 16);
    rec->backends[0].addr[2] = (uint8_t)(i >> 8);
    rec->backends[0].addr[3] = (uint8_t)(i | 1);
    rec->backends[0].port = 8080;
    rec->backends[1].family = 6; /* [200:...:i]:443, a Yggdrasil address */
    rec->backends[1].addr[0] = 0x02;
    rec->backends[1].addr[1] = 0x01;
    rec->backends[1].addr[13] = (uint8_t)(i >> 16);
    rec->backends[1].addr[14] = (uint8_t)(i >> 8);
    rec->backends[1].addr[15] = (uint8_t)(i | 1);
    rec->backends[1].port = 443;
}

static void *bench_signer_main(void *arg)
{
    struct bench_signer *s = arg;
    struct state_key *keys[BENCH_KEYS_PER_THREAD] = {0};
    struct state_record rec;
    char path[4096];
    size_t used = 0;

    s->buf = malloc((s->end - s->first) * STATE_RECORD_MAX_BYTES / 4 + STATE_RECORD_MAX_BYTES);
    if (!s->buf) {
        snprintf(s->err, sizeof(s->err), "out of memory");
        goto done;
    }
    for (int k = 0; k < BENCH_KEYS_PER_THREAD; k++) {
        snprintf(path, sizeof(path), "%s/key-%d-%d.pem", s->dir, s->index, k);
        keys[k] = state_key_generate(path, s->err, sizeof(s->err));
        if (!keys[k])
            goto done;
    }
    for (size_t i = s->first; i < s->end; i++) {
        int n;

        bench_record_of(i, s->now_ms, &rec);
        if (state_record_sign(&rec, keys[i % BENCH_KEYS_PER_THREAD], s->err, sizeof(s->err)) != 0)
            goto done;
        n = state_record_encode(&rec, s->buf + used, STATE_RECORD_MAX_BYTES);
        if (n < 0 ||
            used + (size_t)n + STATE_RECORD_MAX_BYTES >
                (s->end - s->first) * STATE_RECORD_MAX_BYTES / 4 + STATE_RECORD_MAX_BYTES) {
            snprintf(s->err, sizeof(s->err), "encode %.64s: %d (or buffer short)", rec.name, n);
            goto done;
        }
        s->blobs[i].bytes = s->buf + used;
        s->blobs[i].len = (uint16_t)n;
        used += (size_t)n;
    }
done:
    for (int k = 0; k < BENCH_KEYS_PER_THREAD; k++)
        state_key_free(keys[k]);
    return NULL;
}

/* ---- phase 2 and 5: the ingest path --------------------------------------------------------- */

struct bench_ingest {
    double t_decode, t_validate, t_verify, t_merge, t_append, t_apply; /* seconds per stage */
    size_t done;                                                       /* records applied */
};

static int bench_ingest(struct bench_blob *blobs, size_t count, bool verify,
                        struct state_names *names, struct state_store *store,
                        struct state_routes *routes, struct bench_ingest *out)
{
    struct state_validate_policy pol = {.now_ms = state_now_ms()};
    struct state_record rec;
    struct state_name_view view;
    char err[STATE_ERR_MAX];
    double t0, t1;
    int rc;

    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < count; i++) {
        t0 = bench_now();
        rc = state_record_decode(blobs[i].bytes, blobs[i].len, &rec, err, sizeof(err));
        t1 = bench_now();
        out->t_decode += t1 - t0;
        if (rc != 0)
            goto fail;
        rc = state_record_validate(&rec, &pol, err, sizeof(err));
        t0 = bench_now();
        out->t_validate += t0 - t1;
        if (rc != 0)
            goto fail;
        if (verify) {
            rc = state_record_verify(&rec, err, sizeof(err));
            t1 = bench_now();
            out->t_verify += t1 - t0;
            t0 = t1;
            if (rc != 0)
                goto fail;
        }
        rc = state_names_merge(names, &rec, &view);
        t1 = bench_now();
        out->t_merge += t1 - t0;
        if (rc != 1) {
            snprintf(err, sizeof(err), "merge: %d, expected a change", rc);
            goto fail;
        }
        rc = state_store_append(store, &rec, err, sizeof(err));
        t0 = bench_now();
        out->t_append += t0 - t1;
        if (rc != 0)
            goto fail;
        rc = state_routes_apply(routes, &view, BENCH_DOMAIN);
        t1 = bench_now();
        out->t_apply += t1 - t0;
        if (rc != 0) {
            snprintf(err, sizeof(err), "apply: %d", rc);
            goto fail;
        }
        out->done++;
    }
    return 0;
fail:
    fprintf(stderr, "bench_state: record %zu: %s\n", out->done, err);
    return -1;
}

static int bench_apply_view(const struct state_name_view *view, void *ctx)
{
    return state_routes_apply(ctx, view, BENCH_DOMAIN);
}

/* ---- phase 6: lookups ----------------------------------------------------------------------- */

/* A route table the readers and the churning writer can drive: ours, or the baseline. */
struct bench_table {
    const char *label; /* for the report */
    bool (*lookup)(void *impl, const char *host, size_t len, struct state_route *out);
    int (*update)(void *impl, size_t i, uint64_t version); /* new version of route i */
    void *impl;                                            /* the table */
};

/* Ours: the RCU table, updated as the state writer does, by applying name views. */
struct bench_rcu {
    struct state_routes *routes; /* the table */
    struct state_name_view view; /* a real view, renamed and re-versioned per update */
};

static bool bench_rcu_lookup(void *impl, const char *host, size_t len, struct state_route *out)
{
    return state_routes_lookup(((struct bench_rcu *)impl)->routes, host, len, out);
}

static int bench_rcu_update(void *impl, size_t i, uint64_t version)
{
    struct bench_rcu *b = impl;

    snprintf(b->view.name, sizeof(b->view.name), "bench-%07zu", i);
    b->view.record.version = version;
    return state_routes_apply(b->routes, &b->view, BENCH_DOMAIN);
}

/* Baseline: the usual alternative to RCU, a chained hash table behind a pthread rwlock (the
 * way HAProxy guards its runtime-updatable maps). Same load factor (one route per bucket),
 * same compact nodes and the same copy-out; a cheaper hash (FNV-1a) than our keyed SipHash.
 * Readers take the read lock for each lookup; the writer takes the write lock to swap a node
 * and frees the old one at once. */
struct bench_rw_node {
    struct bench_rw_node *next; /* chain */
    uint64_t hash;              /* FNV-1a of the host */
    uint64_t version;           /* record version */
    uint8_t host_len;           /* host bytes at data[0] */
    uint8_t name_len;           /* name bytes after the host */
    uint8_t passthrough;        /* tls_passthrough */
    uint8_t backend_count;      /* struct state_backend copies after the name */
    uint8_t data[];             /* host, name, backends */
};

struct bench_rw {
    pthread_rwlock_t lock;            /* readers share it, the writer excludes them */
    struct bench_rw_node **buckets;   /* chains */
    size_t mask;                      /* buckets - 1 */
    struct state_backend backends[2]; /* what every route points to */
};

static uint64_t bench_fnv(const uint8_t *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static bool bench_rw_lookup(void *impl, const char *host, size_t len, struct state_route *out)
{
    struct bench_rw *t = impl;
    struct bench_rw_node *n;
    uint8_t folded[STATE_FQDN_MAX];
    uint64_t h;
    bool found = false;

    if (len == 0 || len > STATE_FQDN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        folded[i] = (uint8_t)((host[i] >= 'A' && host[i] <= 'Z') ? host[i] + 32 : host[i]);
    h = bench_fnv(folded, len);
    pthread_rwlock_rdlock(&t->lock);
    for (n = t->buckets[h & t->mask]; n; n = n->next) {
        if (n->hash == h && n->host_len == len && memcmp(n->data, folded, len) == 0) {
            memcpy(out->host, n->data, n->host_len);
            out->host[n->host_len] = '\0';
            memcpy(out->name, n->data + n->host_len, n->name_len);
            out->name[n->name_len] = '\0';
            out->tls_passthrough = n->passthrough;
            out->version = n->version;
            out->backend_count = n->backend_count;
            memcpy(out->backends, n->data + n->host_len + n->name_len,
                   n->backend_count * sizeof(struct state_backend));
            found = true;
            break;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return found;
}

static struct bench_rw_node *bench_rw_node_new(struct bench_rw *t, size_t i, uint64_t version)
{
    char host[48];
    size_t hl = bench_host(i, host), nl = 13; /* "bench-NNNNNNN" */
    struct bench_rw_node *n = malloc(sizeof(*n) + hl + nl + sizeof(t->backends));

    if (!n)
        return NULL;
    n->next = NULL;
    n->hash = bench_fnv((const uint8_t *)host, hl);
    n->version = version;
    n->host_len = (uint8_t)hl;
    n->name_len = (uint8_t)nl;
    n->passthrough = 0;
    n->backend_count = 2;
    memcpy(n->data, host, hl);
    memcpy(n->data + hl, host, nl);
    memcpy(n->data + hl + nl, t->backends, sizeof(t->backends));
    return n;
}

static int bench_rw_update(void *impl, size_t i, uint64_t version)
{
    struct bench_rw *t = impl;
    struct bench_rw_node *n = bench_rw_node_new(t, i, version), **pp, *old = NULL;

    if (!n)
        return -1;
    pthread_rwlock_wrlock(&t->lock);
    for (pp = &t->buckets[n->hash & t->mask]; *pp; pp = &(*pp)->next) {
        if ((*pp)->hash == n->hash && (*pp)->host_len == n->host_len &&
            memcmp((*pp)->data, n->data, n->host_len) == 0) {
            old = *pp;
            n->next = old->next;
            break;
        }
    }
    *pp = n;
    pthread_rwlock_unlock(&t->lock);
    free(old);
    return 0;
}

static int bench_rw_init(struct bench_rw *t, size_t count)
{
    struct state_record rec;
    size_t buckets = 1024;

    while (buckets < count)
        buckets *= 2;
    memset(t, 0, sizeof(*t));
    bench_record_of(0, 0, &rec);
    memcpy(t->backends, rec.backends, sizeof(t->backends));
    t->buckets = calloc(buckets, sizeof(*t->buckets));
    if (!t->buckets || pthread_rwlock_init(&t->lock, NULL) != 0)
        return -1;
    t->mask = buckets - 1;
    for (size_t i = 0; i < count; i++) {
        if (bench_rw_update(t, i, 1) != 0)
            return -1;
    }
    return 0;
}

static void bench_rw_free(struct bench_rw *t)
{
    if (!t->buckets)
        return;
    for (size_t b = 0; b <= t->mask; b++) {
        struct bench_rw_node *n = t->buckets[b], *next;

        for (; n; n = next) {
            next = n->next;
            free(n);
        }
    }
    free(t->buckets);
    pthread_rwlock_destroy(&t->lock);
}

struct bench_reader {
    pthread_t thread;                /* the reader thread */
    const struct bench_table *table; /* table under test */
    size_t count;                    /* hosts bench-0000000.. served by the table */
    atomic_bool *go, *stop;          /* start and stop flags */
    uint64_t lookups, misses;        /* results */
    double seconds;                  /* wall time it ran */
    double cpu;                      /* CPU time it got */
};

static void *bench_reader_main(void *arg)
{
    struct bench_reader *rd = arg;
    struct state_route route;
    uint64_t seed = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)rd;
    char host[48];
    double t0, c0;

    state_routes_reader_register();
    while (!atomic_load_explicit(rd->go, memory_order_acquire))
        ;
    t0 = bench_now();
    c0 = bench_thread_cpu();
    while (!atomic_load_explicit(rd->stop, memory_order_relaxed)) {
        for (int k = 0; k < 1024; k++) {
            size_t len;

            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            len = bench_host(seed % rd->count, host);
            if (!rd->table->lookup(rd->table->impl, host, len, &route))
                rd->misses++;
        }
        rd->lookups += 1024;
    }
    rd->seconds = bench_now() - t0;
    rd->cpu = bench_thread_cpu() - c0;
    state_routes_reader_unregister();
    return NULL;
}

struct bench_lookup_result {
    int readers;        /* reader threads */
    bool churn;         /* writer running */
    double per_reader;  /* lookups/s, mean per reader */
    double per_cpu;     /* lookups per CPU-second of the readers */
    double total;       /* lookups/s, all readers */
    double writer_rate; /* route updates/s during the run */
    uint64_t misses;    /* lookups that found nothing (must be 0) */
};

static int bench_lookups(const struct bench_table *table, size_t count, int nreaders, bool churn,
                         double seconds, struct bench_lookup_result *res)
{
    struct bench_reader rd[2];
    atomic_bool go, stop;
    uint64_t updates = 0, version = 1000;
    double t0, t1;
    size_t i = 0;

    atomic_init(&go, false);
    atomic_init(&stop, false);
    for (int t = 0; t < nreaders; t++) {
        memset(&rd[t], 0, sizeof(rd[t]));
        rd[t].table = table;
        rd[t].count = count;
        rd[t].go = &go;
        rd[t].stop = &stop;
        if (pthread_create(&rd[t].thread, NULL, bench_reader_main, &rd[t]) != 0)
            return -1;
    }
    atomic_store_explicit(&go, true, memory_order_release);
    t0 = bench_now();
    if (churn) {
        do {
            for (int k = 0; k < 256; k++) {
                if (table->update(table->impl, i, version) != 0)
                    return -1;
                updates++;
                if (++i == count) {
                    i = 0;
                    version++;
                }
            }
            t1 = bench_now();
        } while (t1 - t0 < seconds);
    } else {
        do {
            usleep(10000);
            t1 = bench_now();
        } while (t1 - t0 < seconds);
    }
    atomic_store_explicit(&stop, true, memory_order_relaxed);
    memset(res, 0, sizeof(*res));
    res->readers = nreaders;
    res->churn = churn;
    res->writer_rate = (double)updates / (t1 - t0);
    {
        uint64_t lookups = 0;
        double cpu = 0;

        for (int t = 0; t < nreaders; t++) {
            pthread_join(rd[t].thread, NULL);
            res->total += (double)rd[t].lookups / rd[t].seconds;
            res->misses += rd[t].misses;
            lookups += rd[t].lookups;
            cpu += rd[t].cpu;
        }
        res->per_reader = res->total / nreaders;
        res->per_cpu = cpu > 0 ? (double)lookups / cpu : 0;
    }
    return 0;
}

/* The three runs (idle with 1 reader, churn with 1 and 2 readers) on one table. */
static int bench_lookup_runs(const struct bench_table *table, size_t count, double seconds,
                             struct bench_lookup_result res[3])
{
    if (bench_lookups(table, count, 1, false, seconds, &res[0]) != 0 ||
        bench_lookups(table, count, 1, true, seconds, &res[1]) != 0 ||
        bench_lookups(table, count, 2, true, seconds, &res[2]) != 0)
        return -1;
    for (int k = 0; k < 3; k++) {
        if (res[k].misses) {
            fprintf(stderr, "bench_state: %s: %llu lookups missed a route that exists\n",
                    table->label, (unsigned long long)res[k].misses);
            return -1;
        }
    }
    return 0;
}

/* ---- main ----------------------------------------------------------------------------------- */

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: bench_state [--records N] [--durable M] [--verify K] [--seconds S]\n"
               "                   [--threads T] [--fsync-dir DIR] [--fast-dir DIR]\n"
               "  --records N    records loaded into names, store and routes (1000000)\n"
               "  --durable M    records through the fsync'd path (2000)\n"
               "  --verify K     signatures verified in the verify sample (20000)\n"
               "  --seconds S    seconds per lookup measurement (3)\n"
               "  --threads T    signing threads (online CPUs)\n"
               "  --fsync-dir D  parent dir of the fsync'd store, on a real disk (/var/tmp)\n"
               "  --fast-dir D   parent dir of the no-fsync store, tmpfs (/dev/shm)\n");
}

static int bench_parse(int argc, char **argv, struct bench_opts *o)
{
    static const struct option longopts[] = {
        {"records", required_argument, NULL, 'n'},
        {"durable", required_argument, NULL, 'm'},
        {"verify", required_argument, NULL, 'v'},
        {"seconds", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'},
        {"fsync-dir", required_argument, NULL, 'f'},
        {"fast-dir", required_argument, NULL, 'F'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int c;

    o->records = 1000000;
    o->durable = 2000;
    o->verify = 20000;
    o->seconds = 3;
    o->threads = cpus > 0 ? (int)cpus : 1;
    o->fsync_dir = "/var/tmp";
    o->fast_dir = "/dev/shm";
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o->records = strtoul(optarg, NULL, 10);
            break;
        case 'm':
            o->durable = strtoul(optarg, NULL, 10);
            break;
        case 'v':
            o->verify = strtoul(optarg, NULL, 10);
            break;
        case 's':
            o->seconds = strtod(optarg, NULL);
            break;
        case 't':
            o->threads = atoi(optarg);
            break;
        case 'f':
            o->fsync_dir = optarg;
            break;
        case 'F':
            o->fast_dir = optarg;
            break;
        case 'h':
            bench_usage(stdout);
            exit(0);
        default:
            bench_usage(stderr);
            return -1;
        }
    }
    if (o->records < 1000 || o->records > 10000000 || o->durable < 1 || o->seconds <= 0 ||
        o->threads < 1 || o->threads > BENCH_MAX_THREADS) {
        fprintf(stderr,
                "bench_state: --records 1000..10000000, --durable >= 1, --seconds > 0, "
                "--threads 1..%d\n",
                BENCH_MAX_THREADS);
        return -1;
    }
    if (o->verify > o->records)
        o->verify = o->records;
    if (o->durable > o->records)
        o->durable = o->records;
    return 0;
}

static void bench_row(const char *what, size_t count, double seconds)
{
    printf("  %-58s %9zu %9.3f %12.0f\n", what, count, seconds,
           seconds > 0 ? (double)count / seconds : 0.0);
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct bench_signer signers[BENCH_MAX_THREADS];
    struct bench_blob *blobs = NULL;
    char load_before[64], load_after[64];
    char keydir[4096] = "", fastdir[4096] = "", syncdir[4096] = "", syncdir2[4096] = "";
    char err[STATE_ERR_MAX], report[512];
    struct state_names *names = NULL, *dnames = NULL, *bnames = NULL;
    struct state_store *store = NULL, *dstore = NULL, *bstore = NULL;
    struct state_routes *routes = NULL, *routes2 = NULL, *droutes = NULL;
    struct bench_ingest ing, ding;
    struct bench_lookup_result lk[3], lk_rw[3];
    struct bench_rcu rcu;
    struct bench_rw rw;
    struct bench_table rcu_table = {"RCU", bench_rcu_lookup, bench_rcu_update, &rcu};
    struct bench_table rw_table = {"rwlock", bench_rw_lookup, bench_rw_update, &rw};
    size_t rss0, heap0, rss1, heap1, rss2, heap2, rss3, heap3;
    double t0, t_ingest, t_sign, t_verify, t_bare, t_rebuild;
    struct state_record rec;
    int status = 1;

    if (bench_parse(argc, argv, &o) != 0)
        return 2;
    memset(signers, 0, sizeof(signers));
    memset(&rw, 0, sizeof(rw));
    memset(&rcu, 0, sizeof(rcu));
    snprintf(keydir, sizeof(keydir), "%s/webgw-bench-keys-XXXXXX", o.fast_dir);
    snprintf(fastdir, sizeof(fastdir), "%s/webgw-bench-XXXXXX", o.fast_dir);
    snprintf(syncdir, sizeof(syncdir), "%s/webgw-bench-XXXXXX", o.fsync_dir);
    snprintf(syncdir2, sizeof(syncdir2), "%s/webgw-bench-XXXXXX", o.fsync_dir);
    if (!mkdtemp(keydir) || !mkdtemp(fastdir) || !mkdtemp(syncdir) || !mkdtemp(syncdir2)) {
        fprintf(stderr, "bench_state: mkdtemp under %s / %s: %s\n", o.fast_dir, o.fsync_dir,
                strerror(errno));
        keydir[0] = fastdir[0] = syncdir[0] = syncdir2[0] = '\0';
        goto out;
    }

    /* 1. sign */
    blobs = calloc(o.records, sizeof(*blobs));
    if (!blobs)
        goto oom;
    bench_loadavg(load_before);
    t0 = bench_now();
    for (int t = 0; t < o.threads; t++) {
        signers[t].dir = keydir;
        signers[t].index = t;
        signers[t].first = o.records * (size_t)t / (size_t)o.threads;
        signers[t].end = o.records * (size_t)(t + 1) / (size_t)o.threads;
        signers[t].blobs = blobs;
        signers[t].now_ms = state_now_ms();
        if (pthread_create(&signers[t].thread, NULL, bench_signer_main, &signers[t]) != 0)
            goto oom;
    }
    for (int t = 0; t < o.threads; t++)
        pthread_join(signers[t].thread, NULL);
    t_sign = bench_now() - t0;
    for (int t = 0; t < o.threads; t++) {
        if (signers[t].err[0]) {
            fprintf(stderr, "bench_state: signer %d: %s\n", t, signers[t].err);
            goto out;
        }
    }

    /* 2. ingest, no fsync (tmpfs) */
    names = state_names_new();
    routes = state_routes_new();
    if (!names || !routes)
        goto oom;
    store = state_store_open(fastdir, names, report, sizeof(report), err, sizeof(err));
    if (!store) {
        fprintf(stderr, "bench_state: %s\n", err);
        goto out;
    }
    rss0 = bench_rss_bytes();
    heap0 = bench_heap_bytes();
    t0 = bench_now();
    if (bench_ingest(blobs, o.records, false, names, store, routes, &ing) != 0)
        goto out;
    t_ingest = bench_now() - t0;
    rss1 = bench_rss_bytes();
    heap1 = bench_heap_bytes();

    /* 3. the route table alone */
    routes2 = state_routes_new();
    if (!routes2)
        goto oom;
    rss2 = bench_rss_bytes();
    heap2 = bench_heap_bytes();
    t_rebuild = bench_now();
    if (state_names_each(names, bench_apply_view, routes2) != 0) {
        fprintf(stderr, "bench_state: rebuilding routes failed\n");
        goto out;
    }
    t_rebuild = bench_now() - t_rebuild;
    rss3 = bench_rss_bytes();
    heap3 = bench_heap_bytes();

    /* 4. verify sample */
    t_verify = bench_now();
    for (size_t i = 0; i < o.verify; i++) {
        if (state_record_decode(blobs[i].bytes, blobs[i].len, &rec, err, sizeof(err)) != 0 ||
            state_record_verify(&rec, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_state: verify %zu: %s\n", i, err);
            goto out;
        }
    }
    t_verify = bench_now() - t_verify;

    /* 5. durable: full acknowledged path, then bare fsync'd appends */
    dnames = state_names_new();
    bnames = state_names_new();
    droutes = state_routes_new();
    if (!dnames || !bnames || !droutes)
        goto oom;
    dstore = state_store_open(syncdir, dnames, report, sizeof(report), err, sizeof(err));
    bstore = dstore ? state_store_open(syncdir2, bnames, report, sizeof(report), err, sizeof(err))
                    : NULL;
    if (!dstore || !bstore) {
        fprintf(stderr, "bench_state: %s\n", err);
        goto out;
    }
    if (bench_ingest(blobs, o.durable, true, dnames, dstore, droutes, &ding) != 0)
        goto out;
    t_bare = bench_now();
    for (size_t i = 0; i < o.durable; i++) {
        if (state_record_decode(blobs[i].bytes, blobs[i].len, &rec, err, sizeof(err)) != 0 ||
            state_store_append(bstore, &rec, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_state: append %zu: %s\n", i, err);
            goto out;
        }
    }
    t_bare = bench_now() - t_bare;

    /* 6. lookups: ours, then the rwlock baseline over the same hosts */
    state_routes_free(routes2);
    routes2 = NULL;
    rcu.routes = routes;
    if (state_names_get(names, "bench-0000000", &rcu.view) != 0 ||
        bench_lookup_runs(&rcu_table, o.records, o.seconds, lk) != 0) {
        fprintf(stderr, "bench_state: lookup phase failed\n");
        goto out;
    }
    if (bench_rw_init(&rw, o.records) != 0 ||
        bench_lookup_runs(&rw_table, o.records, o.seconds, lk_rw) != 0) {
        fprintf(stderr, "bench_state: rwlock baseline failed\n");
        goto out;
    }

    /* report */
    bench_loadavg(load_after);
    printf("webgw state benchmark: %zu records (proxy, 2 backends each), %ld CPUs\n", o.records,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("load average at start: %s; at end: %s (other load on the machine skews wall-clock "
           "rates; CPU-second rates less so)\n",
           load_before, load_after);
    printf("\n  %-58s %9s %9s %12s\n", "throughput", "records", "seconds", "records/s");
    {
        char label[128];
        snprintf(label, sizeof(label), "sign + encode (%d threads)", o.threads);
        bench_row(label, o.records, t_sign);
    }
    printf("  ingest, no fsync (store on %s %s), no signature check:\n", bench_fs_name(o.fast_dir),
           o.fast_dir);
    bench_row("  total: decode+validate+merge+append+apply", ing.done, t_ingest);
    bench_row("  decode", ing.done, ing.t_decode);
    bench_row("  validate", ing.done, ing.t_validate);
    bench_row("  merge (state_names_merge)", ing.done, ing.t_merge);
    bench_row("  append (state_store_append, fdatasync free on tmpfs)", ing.done, ing.t_append);
    bench_row("  apply (state_routes_apply)", ing.done, ing.t_apply);
    bench_row("route table rebuilt alone from names (state_names_each)", o.records, t_rebuild);
    bench_row("verify (state_record_verify, Ed25519)", o.verify, t_verify);
    printf("  durable, store on %s %s:\n", bench_fs_name(o.fsync_dir), o.fsync_dir);
    bench_row("  acknowledged path: decode+validate+verify+merge+append+apply", ding.done,
              ding.t_decode + ding.t_validate + ding.t_verify + ding.t_merge + ding.t_append +
                  ding.t_apply);
    bench_row("  of which fsync'd append", ding.done, ding.t_append);
    bench_row("  bare fsync'd appends (state_store_append)", o.durable, t_bare);

    printf("\n  %-58s %12s\n", "memory", "bytes/record");
    printf("  %-58s %12.1f\n", "all state after ingest, RSS delta (names+routes)",
           (double)(rss1 - rss0) / (double)o.records);
    printf("  %-58s %12.1f\n", "all state after ingest, heap in use delta",
           (double)(heap1 - heap0) / (double)o.records);
    printf("  %-58s %12.1f\n", "route table alone, RSS delta (nodes + buckets)",
           (double)(rss3 - rss2) / (double)o.records);
    printf("  %-58s %12.1f\n", "route table alone, heap in use delta",
           (double)(heap3 - heap2) / (double)o.records);
    printf("  %-58s %12.1f\n", "route table own accounting (state_routes_memory, nodes)",
           (double)state_routes_memory(routes) / (double)state_routes_count(routes));
    printf("  %-58s %12.1f\n", "store log on disk (state_store_log_bytes)",
           (double)state_store_log_bytes(store) / (double)o.records);

    printf("\n  lookups among %zu routes, random hosts, %.0f s each; rwlock = baseline (chained "
           "hash table behind pthread_rwlock)\n",
           o.records, o.seconds);
    printf("  %-6s %-15s %7s %16s %14s %14s %13s %10s %10s\n", "table", "writer", "readers",
           "lookups/s/reader", "lookups/s all", "lookups/CPU-s", "writer upd/s", "RCU/rw rd",
           "RCU/rw wr");
    for (int k = 0; k < 3; k++) {
        const struct bench_lookup_result *rows[2] = {&lk[k], &lk_rw[k]};

        for (int j = 0; j < 2; j++) {
            const struct bench_lookup_result *r = rows[j];

            printf("  %-6s %-15s %7d %16.0f %14.0f %14.0f %13.0f", j ? "rwlock" : "RCU",
                   r->churn ? "churning" : "idle", r->readers, r->per_reader, r->total, r->per_cpu,
                   r->writer_rate);
            if (j == 0 && lk_rw[k].per_reader > 0)
                printf(" %9.2fx", lk[k].per_reader / lk_rw[k].per_reader);
            if (j == 0 && lk_rw[k].writer_rate > 0)
                printf(" %9.2fx", lk[k].writer_rate / lk_rw[k].writer_rate);
            printf("\n");
        }
    }
    status = 0;
    goto out;
oom:
    fprintf(stderr, "bench_state: out of memory or threads\n");
out:
    bench_rw_free(&rw);
    state_routes_free(routes);
    state_routes_free(routes2);
    state_routes_free(droutes);
    state_store_close(store);
    state_store_close(dstore);
    state_store_close(bstore);
    state_names_free(names);
    state_names_free(dnames);
    state_names_free(bnames);
    for (int t = 0; t < BENCH_MAX_THREADS; t++)
        free(signers[t].buf);
    free(blobs);
    if (keydir[0])
        bench_rm_tree(keydir);
    if (fastdir[0])
        bench_rm_tree(fastdir);
    if (syncdir[0])
        bench_rm_tree(syncdir);
    if (syncdir2[0])
        bench_rm_tree(syncdir2);
    return status;
}
