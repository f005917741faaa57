/*
 * bench_names_store.c - cost of the merged name table and the durable store at scale:
 *   - merging N distinct proxy records (records/s) and the heap bytes the table keeps per
 *     record (mallinfo2 before and after);
 *   - digest and full iteration over the set;
 *   - compaction of the set into a snapshot and a cold open that loads it back;
 *   - appends with fdatasync, against the anchor of raw pwrite + fdatasync of entries of the
 *     same size on the same file system (the ratio is what the store adds to the disk);
 *   - log replay with signature verification (what a restart pays for records not yet
 *     compacted).
 *
 * Usage: bench_names_store [records] [appends] [dir]
 *        (defaults: 1000000 records, 300 appends, a temporary dir under $TMPDIR or /tmp)
 */
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state/state.h"

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_used(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

/* Record i: a proxy for "app-<i>" with two backends, owner spread over 64 keys. Signatures
 * are filler: merge and compaction do not verify (the API and gossip paths did). */
static void make_record(long i, struct state_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->kind = STATE_RECORD_PROXY;
    snprintf(rec->name, sizeof(rec->name), "app-%07ld", i);
    for (int b = 0; b < STATE_OWNER_LEN; b++)
        rec->owner[b] = (uint8_t)(i % 64 + b);
    rec->version = 1 + (uint64_t)(i % 3);
    rec->reserved_at_ms = 1700000000000ULL + (uint64_t)i;
    rec->issued_at_ms = rec->reserved_at_ms + 1000;
    rec->backend_count = 2;
    rec->backends[0] = (struct state_backend){
        .family = 4, .addr = {10, 0, (uint8_t)(i >> 8), (uint8_t)i}, .port = 8080};
    rec->backends[1] =
        (struct state_backend){.family = 6, .addr = {0x02, 0x00, [15] = 5}, .port = 8081};
    for (int b = 0; b < STATE_SIGNATURE_LEN; b++)
        rec->signature[b] = (uint8_t)(i * 7 + b);
}

static void line(const char *what, double n, double secs, const char *unit)
{
    printf("%-34s %12.0f %s/s  %10.1f us/op\n", what, n / secs, unit, secs * 1e6 / n);
}

static int count_record(const struct state_record *rec, void *ctx)
{
    (*(size_t *)ctx)++;
    return 0;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000, appends = argc > 2 ? atol(argv[2]) : 300;
    char dir[256], report[STATE_ERR_MAX], err[STATE_ERR_MAX], path[512], keypath[512];
    struct state_names *names, *loaded;
    struct state_store *store;
    struct state_record rec, *signed_recs;
    struct state_key *key;
    size_t heap0, visited = 0;
    double t, ours, anchor;
    uint64_t digest;
    int rc = 1, fd;

    if (argc > 3) {
        snprintf(dir, sizeof(dir), "%s", argv[3]);
    } else {
        snprintf(dir, sizeof(dir), "%s/webgw-bench-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        if (mkdtemp(dir) == NULL) {
            perror("mkdtemp");
            return 1;
        }
    }

    /* ---- merge ---- */
    heap0 = heap_used();
    names = state_names_new();
    t = now_s();
    for (long i = 0; i < n; i++) {
        make_record(i, &rec);
        if (state_names_merge(names, &rec, NULL) != 1) {
            fprintf(stderr, "merge of record %ld failed\n", i);
            return 1;
        }
    }
    t = now_s() - t;
    printf("%ld records (proxy, 2 backends)\n", n);
    line("merge (distinct keys)", (double)n, t, "rec");
    printf("%-34s %12.0f bytes/record (heap)\n", "memory", (double)(heap_used() - heap0) / n);
    t = now_s();
    for (long i = 0; i < n; i++) {
        make_record(i, &rec);
        state_names_merge(names, &rec, NULL);
    }
    line("merge (duplicates, no change)", (double)n, now_s() - t, "rec");
    t = now_s();
    digest = state_names_digest(names);
    state_names_each_record(names, count_record, &visited);
    line("each_record (sorted)", (double)visited, now_s() - t, "rec");

    /* ---- compaction and cold open ---- */
    snprintf(path, sizeof(path), "%s/records.log", dir);
    store = state_store_open(dir, names, report, sizeof(report), err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    t = now_s();
    if (state_store_compact(store, names, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    line("compact (snapshot write + fsync)", (double)n, now_s() - t, "rec");
    state_store_close(store);
    loaded = state_names_new();
    t = now_s();
    store = state_store_open(dir, loaded, report, sizeof(report), err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    line("open (snapshot load)", (double)n, now_s() - t, "rec");
    if (state_names_digest(loaded) != digest || state_names_records(loaded) != (size_t)n) {
        fprintf(stderr, "snapshot round trip lost records\n");
        return 1;
    }
    state_names_free(loaded);

    /* ---- durable appends against raw pwrite + fdatasync ---- */
    snprintf(keypath, sizeof(keypath), "%s/bench.pem", dir);
    key = state_key_generate(keypath, err, sizeof(err));
    if (key == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    signed_recs = calloc((size_t)appends, sizeof(*signed_recs));
    if (signed_recs == NULL)
        return 1;
    for (long i = 0; i < appends; i++) {
        make_record(0, &signed_recs[i]);
        signed_recs[i].version = 10 + (uint64_t)i;
        state_record_sign(&signed_recs[i], key, err, sizeof(err));
    }
    rec = signed_recs[0];
    snprintf(path, sizeof(path), "%s/anchor.log", dir);
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    ours = anchor = 0;
    {
        uint8_t entry[8 + STATE_RECORD_MAX_BYTES];
        int enc = state_record_encode(&rec, entry + 8, sizeof(entry) - 8);
        off_t off = 0;

        /* interleaved in slices of 25 so that disk noise hits both sides alike */
        for (long i = 0; i < appends;) {
            long end = i + 25 < appends ? i + 25 : appends;

            t = now_s();
            for (long j = i; j < end; j++) {
                if (state_store_append(store, &signed_recs[j], err, sizeof(err)) != 0) {
                    fprintf(stderr, "%s\n", err);
                    return 1;
                }
            }
            ours += now_s() - t;
            t = now_s();
            for (long j = i; j < end; j++) {
                if (pwrite(fd, entry, 8 + (size_t)enc, off) < 0 || fdatasync(fd) != 0) {
                    perror("anchor");
                    return 1;
                }
                off += 8 + enc;
            }
            anchor += now_s() - t;
            i = end;
        }
    }
    state_store_close(store);
    close(fd);
    unlink(path);
    line("append + fdatasync", (double)appends, ours, "rec");
    line("anchor: pwrite + fdatasync", (double)appends, anchor, "rec");
    printf("ratio append webgw/anchor throughput: %.2f\n", anchor / ours);

    /* ---- log replay with verification (the appends above are signed) ---- */
    loaded = state_names_new();
    /* drop the snapshot so the open only replays the log */
    snprintf(path, sizeof(path), "%s/records.snapshot", dir);
    unlink(path);
    t = now_s();
    store = state_store_open(dir, loaded, report, sizeof(report), err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    line("open (log replay, verify each)", (double)appends, now_s() - t, "rec");
    state_store_close(store);
    state_names_free(loaded);
    state_key_free(key);
    state_names_free(names);
    free(signed_recs);
    rc = 0;

    if (argc <= 3) {
        const char *files[] = {"records.log", "records.snapshot", "webgw.lock", "bench.pem"};

        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
            snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
            unlink(path);
        }
        rmdir(dir);
    }
    return rc;
}
