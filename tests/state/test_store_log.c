/*
 * test_store_log.c - the durable store as a restarting node sees it: appended records come
 * back on reopen; a log cut at any byte of its last entry, a flipped byte in the middle, an
 * undecodable entry or a bad signature are recovered from with one report line and no crash;
 * compaction keeps every record, also when a crash comes between the snapshot and the log
 * truncation; a second process cannot open the same data dir.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store_fixtures.h"

struct fixture {
    struct sf_dir dir;
    char report[STATE_ERR_MAX];
    char err[STATE_ERR_MAX];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    sf_dir_init(&f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    sf_dir_free(&f->dir);
    free(f);
    return 0;
}

static struct state_store *open_store(struct fixture *f, struct state_names *names)
{
    struct state_store *store;

    store =
        state_store_open(f->dir.path, names, f->report, sizeof(f->report), f->err, sizeof(f->err));
    if (store == NULL)
        fail_msg("open %s: %s", f->dir.path, f->err);
    return store;
}

static void append(struct fixture *f, struct state_store *store, struct state_names *names,
                   const struct state_record *rec)
{
    assert_int_equal(state_store_append(store, rec, f->err, sizeof(f->err)), 0);
    if (names != NULL)
        assert_true(state_names_merge(names, rec, NULL) >= STATE_ESTALE);
}

/* Appends n proxy records "name-0".. and returns each entry's start offset in starts[]. */
static void append_proxies(struct fixture *f, struct state_store *store, int n, size_t *starts)
{
    char name[32];

    for (int i = 0; i < n; i++) {
        struct state_record rec;

        snprintf(name, sizeof(name), "name-%d", i);
        rec = sf_signed(&f->dir, STATE_RECORD_PROXY, name, 1, (uint16_t)(1000 + i));
        if (starts != NULL)
            starts[i] = state_store_log_bytes(store);
        append(f, store, NULL, &rec);
    }
}

static void expect_proxies(struct state_names *names, int n)
{
    struct state_name_view v;
    char name[32];

    assert_int_equal(state_names_count(names), n);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "name-%d", i);
        assert_int_equal(state_names_get(names, name, &v), 0);
        assert_true(v.held);
        assert_int_equal(v.record.backends[0].port, 1000 + i);
    }
}

/* The same bitwise CRC32C as the format says, written apart from the store's table version. */
static uint32_t crc32c_bitwise(const uint8_t *p, size_t len)
{
    uint32_t crc = 0xffffffffU;

    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0x82f63b78U & (0U - (crc & 1)));
    }
    return ~crc;
}

static void test_crc32c_check_value(void **state)
{
    /* the standard check value of CRC-32C over "123456789" */
    assert_int_equal(crc32c_bitwise((const uint8_t *)"123456789", 9), 0xe3069283U);
}

/* Records appended, some released, come back after a reopen with the same views. */
static void test_append_and_reopen(void **state)
{
    struct fixture *f = *state;
    struct state_names *a = state_names_new(), *b = state_names_new();
    struct state_store *store = open_store(f, a);
    size_t bytes;

    assert_string_equal(f->report, "");
    for (int i = 0; i < 6; i++) {
        char name[32];
        struct state_record rec;

        snprintf(name, sizeof(name), "app-%d", i);
        rec = sf_signed(&f->dir, STATE_RECORD_RESERVE, name, 1, 0);
        append(f, store, a, &rec);
        rec = sf_signed(&f->dir, STATE_RECORD_PROXY, name, 2, (uint16_t)(8000 + i));
        append(f, store, a, &rec);
        if (i % 3 == 0) {
            rec = sf_signed(&f->dir, STATE_RECORD_RELEASE, name, 3, 0);
            append(f, store, a, &rec);
        }
    }
    bytes = state_store_log_bytes(store);
    assert_int_equal(bytes, sf_size(&f->dir, "records.log"));
    state_store_close(store);

    store = open_store(f, b);
    assert_string_equal(f->report, "");
    assert_int_equal(state_store_log_bytes(store), bytes);
    assert_int_equal(nf_fingerprint(b), nf_fingerprint(a));
    assert_int_equal(state_names_count(b), 4);
    assert_int_equal(state_names_tombstones(b), 2);
    state_store_close(store);
    state_names_free(a);
    state_names_free(b);
}

/* A crash tears the last entry at any byte: every earlier entry comes back, the tail is cut
 * and reported, and the log takes appends again. */
static void test_torn_tail_at_every_offset(void **state)
{
    struct fixture *f = *state;
    struct state_names *names = state_names_new();
    struct state_store *store = open_store(f, names);
    size_t starts[5], len;
    uint8_t *full;
    char want[STATE_ERR_MAX];

    append_proxies(f, store, 5, starts);
    state_store_close(store);
    state_names_free(names);
    full = sf_read(&f->dir, "records.log", &len);

    for (size_t cut = starts[4]; cut < len; cut++) {
        sf_write(&f->dir, "records.log", full, cut);
        names = state_names_new();
        store = open_store(f, names);
        if (cut == starts[4])
            snprintf(want, sizeof(want), "%s", "");
        else
            snprintf(want, sizeof(want),
                     "records.log: cut torn tail at offset %zu (%zu bytes dropped)", starts[4],
                     cut - starts[4]);
        assert_string_equal(f->report, want);
        assert_int_equal(state_store_log_bytes(store), starts[4]);
        assert_int_equal(sf_size(&f->dir, "records.log"), starts[4]);
        expect_proxies(names, 4);
        state_store_close(store);
        state_names_free(names);
    }

    /* after a cut the log is whole again: append the lost record and reopen cleanly */
    names = state_names_new();
    store = open_store(f, names);
    assert_string_equal(f->report, "");
    append_proxies(f, store, 5, NULL); /* names 0..3 again are duplicates, harmless */
    state_store_close(store);
    state_names_free(names);
    names = state_names_new();
    store = open_store(f, names);
    assert_string_equal(f->report, "");
    expect_proxies(names, 5);
    state_store_close(store);
    state_names_free(names);
    free(full);
}

/* A torn file magic (crash right after creating the log) is rewritten. */
static void test_torn_magic(void **state)
{
    struct fixture *f = *state;
    struct state_names *names = state_names_new();
    struct state_store *store;

    sf_write(&f->dir, "records.log", (const uint8_t *)"WGWL", 4);
    store = open_store(f, names);
    assert_string_equal(f->report, "records.log: cut torn tail at offset 0 (4 bytes dropped)");
    assert_int_equal(state_store_log_bytes(store), 8);
    append_proxies(f, store, 1, NULL);
    state_store_close(store);
    store = open_store(f, names);
    assert_string_equal(f->report, "");
    state_store_close(store);
    state_names_free(names);
}

/* One flipped byte in the middle entry: the log is cut there and the report says why. */
static void test_corrupt_middle_entry(void **state)
{
    struct fixture *f = *state;
    struct state_names *names = state_names_new();
    struct state_store *store = open_store(f, names);
    size_t starts[5], len;
    uint8_t *full;
    char want[STATE_ERR_MAX];

    append_proxies(f, store, 5, starts);
    state_store_close(store);
    state_names_free(names);
    full = sf_read(&f->dir, "records.log", &len);

    full[starts[2] + 20] ^= 0x40; /* inside the record bytes */
    sf_write(&f->dir, "records.log", full, len);
    names = state_names_new();
    store = open_store(f, names);
    snprintf(want, sizeof(want),
             "records.log: cut entry with bad checksum at offset %zu (%zu bytes dropped)",
             starts[2], len - starts[2]);
    assert_string_equal(f->report, want);
    expect_proxies(names, 2);
    assert_int_equal(sf_size(&f->dir, "records.log"), starts[2]);
    state_store_close(store);
    state_names_free(names);

    /* a length over the record limit is named as such */
    full[starts[2] + 20] ^= 0x40;
    full[starts[3] + 3] = 0x7f;
    sf_write(&f->dir, "records.log", full, len);
    names = state_names_new();
    store = open_store(f, names);
    snprintf(want, sizeof(want),
             "records.log: cut entry with bad length at offset %zu (%zu bytes dropped)", starts[3],
             len - starts[3]);
    assert_string_equal(f->report, want);
    expect_proxies(names, 3);
    state_store_close(store);
    state_names_free(names);
    free(full);
}

/* An entry whose checksum holds but whose bytes are not a record is cut with the decoder's
 * reason; a record whose signature fails is skipped and counted, and the rest stays. */
static void test_undecodable_and_unverified(void **state)
{
    struct fixture *f = *state;
    struct state_names *names = state_names_new();
    struct state_store *store = open_store(f, names);
    struct state_record forged = sf_signed(&f->dir, STATE_RECORD_PROXY, "forged", 1, 666);
    uint8_t junk[8 + 5] = {5, 0, 0, 0, 0, 0, 0, 0, 0x93, 1, 2, 3, 4};
    uint32_t crc;
    size_t len, before;
    uint8_t *full;

    append_proxies(f, store, 2, NULL);
    forged.signature[0] ^= 1;
    append(f, store, NULL, &forged);
    append_proxies(f, store, 3, NULL);
    state_store_close(store);
    state_names_free(names);

    names = state_names_new();
    store = open_store(f, names);
    assert_string_equal(f->report, "1 records skipped (signature does not verify)");
    expect_proxies(names, 3);
    assert_int_equal(state_names_get(names, "forged", &(struct state_name_view){0}),
                     STATE_ENOTFOUND);
    state_store_close(store);
    state_names_free(names);

    /* a checksummed entry that does not decode */
    full = sf_read(&f->dir, "records.log", &len);
    before = len;
    /* the checksum covers the length bytes and the record bytes */
    memmove(junk + 4, junk + 8, 5);
    crc = crc32c_bitwise(junk, 9);
    memmove(junk + 8, junk + 4, 5);
    junk[4] = (uint8_t)crc;
    junk[5] = (uint8_t)(crc >> 8);
    junk[6] = (uint8_t)(crc >> 16);
    junk[7] = (uint8_t)(crc >> 24);
    full = realloc(full, len + sizeof(junk));
    memcpy(full + len, junk, sizeof(junk));
    sf_write(&f->dir, "records.log", full, len + sizeof(junk));
    names = state_names_new();
    store = open_store(f, names);
    assert_non_null(strstr(f->report, "records.log: cut undecodable record at offset "));
    assert_non_null(strstr(f->report, "13 bytes dropped)"));
    assert_non_null(strstr(f->report, "; 1 records skipped (signature does not verify)"));
    assert_int_equal(state_store_log_bytes(store), before);
    expect_proxies(names, 3);
    state_store_close(store);
    state_names_free(names);
    free(full);
}

/* A file that is not our log is refused, not truncated. */
static void test_foreign_log_refused(void **state)
{
    struct fixture *f = *state;
    struct state_names *names = state_names_new();
    char want[1024];

    sf_write(&f->dir, "records.log", (const uint8_t *)"hello, world\n", 13);
    assert_null(
        state_store_open(f->dir.path, names, f->report, sizeof(f->report), f->err, sizeof(f->err)));
    snprintf(want, sizeof(want), "%s/records.log: not a webgw records log (bad magic)",
             f->dir.path);
    assert_string_equal(f->err, want);
    assert_int_equal(sf_size(&f->dir, "records.log"), 13);
    state_names_free(names);
}

/* Two processes (or two opens) cannot share a data dir; the lock goes with the store. */
static void test_data_dir_lock(void **state)
{
    struct fixture *f = *state;
    struct state_names *names = state_names_new();
    struct state_store *store = open_store(f, names), *second;
    char want[1024];

    second =
        state_store_open(f->dir.path, names, f->report, sizeof(f->report), f->err, sizeof(f->err));
    assert_null(second);
    snprintf(want, sizeof(want),
             "data dir %s is in use by another webgw process (%s/webgw.lock is locked)",
             f->dir.path, f->dir.path);
    assert_string_equal(f->err, want);
    state_store_close(store);
    second = open_store(f, names);
    state_store_close(second);
    state_names_free(names);
}

static void fill_mixed(struct fixture *f, struct state_store *store, struct state_names *names,
                       int n)
{
    for (int i = 0; i < n; i++) {
        char name[32];
        struct state_record rec;

        snprintf(name, sizeof(name), "mix-%03d", i);
        rec = sf_signed(&f->dir, STATE_RECORD_RESERVE, name, 1, 0);
        append(f, store, names, &rec);
        rec = sf_signed(&f->dir, STATE_RECORD_PROXY, name, 2, (uint16_t)(2000 + i));
        append(f, store, names, &rec);
        if (i % 4 == 0) {
            rec = sf_signed(&f->dir, STATE_RECORD_RELEASE, name, 3, 0);
            append(f, store, names, &rec);
        }
    }
}

/* Compaction empties the log and keeps the state, also with records appended after it and
 * when a crash leaves the full old log beside the new snapshot. */
static void test_snapshot_compaction(void **state)
{
    struct fixture *f = *state;
    struct state_names *a = state_names_new(), *b;
    struct state_store *store = open_store(f, a);
    size_t len;
    uint8_t *old_log;

    fill_mixed(f, store, a, 40);
    old_log = sf_read(&f->dir, "records.log", &len);
    assert_int_equal(state_store_compact(store, a, f->err, sizeof(f->err)), 0);
    assert_int_equal(state_store_log_bytes(store), 8);
    assert_int_equal(sf_size(&f->dir, "records.log"), 8);
    assert_int_equal(sf_size(&f->dir, "records.snapshot.tmp"), -1);
    state_store_close(store);

    /* crash after the rename, before the truncation: old log + new snapshot */
    sf_write(&f->dir, "records.log", old_log, len);
    b = state_names_new();
    store = open_store(f, b);
    assert_string_equal(f->report, "");
    assert_int_equal(state_names_records(b), 40);
    assert_int_equal(nf_fingerprint(b), nf_fingerprint(a));
    state_store_close(store);
    state_names_free(b);

    /* compaction again, then appends after it */
    b = state_names_new();
    store = open_store(f, b);
    assert_int_equal(state_store_compact(store, b, f->err, sizeof(f->err)), 0);
    for (int i = 0; i < 3; i++) {
        char name[32];
        struct state_record rec;

        snprintf(name, sizeof(name), "name-%d", i);
        rec = sf_signed(&f->dir, STATE_RECORD_PROXY, name, 1, (uint16_t)(1000 + i));
        append(f, store, a, &rec);
    }
    state_store_close(store);
    state_names_free(b);
    b = state_names_new();
    store = open_store(f, b);
    assert_string_equal(f->report, "");
    assert_int_equal(state_names_records(b), 43);
    assert_int_equal(nf_fingerprint(b), nf_fingerprint(a));
    assert_int_equal(state_names_digest(b), state_names_digest(a));
    state_store_close(store);
    state_names_free(b);

    /* a leftover temporary snapshot from a crash mid-compaction is ignored and removed */
    sf_write(&f->dir, "records.snapshot.tmp", (const uint8_t *)"WGWSNP1\nxx", 10);
    b = state_names_new();
    store = open_store(f, b);
    assert_int_equal(sf_size(&f->dir, "records.snapshot.tmp"), -1);
    assert_int_equal(nf_fingerprint(b), nf_fingerprint(a));
    state_store_close(store);
    state_names_free(b);
    free(old_log);
    state_names_free(a);
}

/* A damaged snapshot does not stop the node: the valid prefix loads and the report says what
 * was lost. */
static void test_snapshot_damage_reported(void **state)
{
    struct fixture *f = *state;
    struct state_names *a = state_names_new(), *b = state_names_new();
    struct state_store *store = open_store(f, a);
    size_t len;
    uint8_t *snap;

    fill_mixed(f, store, a, 10);
    assert_int_equal(state_store_compact(store, a, f->err, sizeof(f->err)), 0);
    state_store_close(store);
    snap = sf_read(&f->dir, "records.snapshot", &len);
    snap[len - 10] ^= 0xff; /* inside the last record */
    sf_write(&f->dir, "records.snapshot", snap, len);

    store = open_store(f, b);
    assert_non_null(strstr(f->report, "records.snapshot: damaged at offset "));
    assert_non_null(strstr(f->report, "(bad checksum), loaded 9 of 10 records"));
    assert_int_equal(state_names_records(b), 9);
    state_store_close(store);
    free(snap);
    state_names_free(a);
    state_names_free(b);
}

/* Collected tombstones stay gone across a restart once a compaction has run: the snapshot is
 * written from the table, not copied from the log. */
static void test_collected_tombstones_stay_collected(void **state)
{
    struct fixture *f = *state;
    struct state_names *a = state_names_new(), *b = state_names_new();
    struct state_store *store = open_store(f, a);
    struct state_record rec;

    rec = sf_signed(&f->dir, STATE_RECORD_RESERVE, "gone", 1, 0);
    append(f, store, a, &rec);
    rec = sf_signed(&f->dir, STATE_RECORD_RELEASE, "gone", 2, 0);
    append(f, store, a, &rec);
    rec = sf_signed(&f->dir, STATE_RECORD_RESERVE, "kept", 1, 0);
    append(f, store, a, &rec);
    assert_int_equal(state_names_collect(a, NF_NOW_MS + STATE_TOMBSTONE_TTL_MS_DEFAULT + 60000,
                                         STATE_TOMBSTONE_TTL_MS_DEFAULT),
                     1);
    assert_int_equal(state_store_compact(store, a, f->err, sizeof(f->err)), 0);
    state_store_close(store);

    store = open_store(f, b);
    assert_int_equal(state_names_get(b, "gone", &(struct state_name_view){0}), STATE_ENOTFOUND);
    assert_int_equal(state_names_get(b, "kept", &(struct state_name_view){0}), 0);
    assert_int_equal(state_names_digest(b), state_names_digest(a));
    state_store_close(store);
    state_names_free(a);
    state_names_free(b);
}

/* Group commit: staged records and witnesses cost no fdatasync each; they are written in
 * batches (memory stays bounded), made durable by one sync (or with the next append), kept by
 * a close without a sync, and taken into a snapshot by a compaction. */
static void test_staged_group_commit(void **state)
{
    struct fixture *f = *state;
    struct state_names *a = state_names_new(), *b = state_names_new();
    struct state_store *store = open_store(f, a);
    struct state_witness w, kept[STATE_WITNESSES_MAX];
    struct state_record rec;
    char name[32];
    size_t bytes;
    int n = 2400; /* about 340 KB of entries: more than one stage */

    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "grp-%04d", i);
        rec = sf_signed(&f->dir, STATE_RECORD_PROXY, name, 1, (uint16_t)(3000 + i % 1000));
        assert_int_equal(state_store_stage(store, &rec, f->err, sizeof(f->err)), 0);
        assert_true(state_names_merge(a, &rec, NULL) >= STATE_ESTALE);
    }
    assert_int_equal(state_witness_sign(&w, f->dir.key, &rec, NF_NOW_MS, f->err, sizeof(f->err)),
                     0);
    assert_int_equal(state_store_stage_witness(store, name, rec.owner, &w, f->err, sizeof(f->err)),
                     0);
    assert_int_equal(state_names_witness(a, name, rec.owner, &w, NULL), 1);
    bytes = state_store_log_bytes(store);
    assert_int_equal(state_store_syncs(store), 0);
    assert_int_equal(state_store_unsynced(store), bytes - 8);
    /* written in batches of at most 256 KiB, none synced yet */
    assert_true(sf_size(&f->dir, "records.log") > 8);
    assert_true(sf_size(&f->dir, "records.log") < (off_t)bytes);
    assert_true((off_t)bytes - sf_size(&f->dir, "records.log") <= 256 * 1024);

    assert_int_equal(state_store_sync(store, f->err, sizeof(f->err)), 0);
    assert_int_equal(state_store_syncs(store), 1);
    assert_int_equal(state_store_unsynced(store), 0);
    assert_int_equal(sf_size(&f->dir, "records.log"), (off_t)bytes);
    assert_int_equal(state_store_sync(store, f->err, sizeof(f->err)), 0); /* nothing new */
    assert_int_equal(state_store_syncs(store), 1);

    /* an append makes what was staged before it durable with it: one fdatasync */
    rec = sf_signed(&f->dir, STATE_RECORD_PROXY, "grp-staged", 1, 4000);
    assert_int_equal(state_store_stage(store, &rec, f->err, sizeof(f->err)), 0);
    assert_true(state_names_merge(a, &rec, NULL) >= STATE_ESTALE);
    rec = sf_signed(&f->dir, STATE_RECORD_PROXY, "grp-acked", 1, 4001);
    append(f, store, a, &rec);
    assert_int_equal(state_store_syncs(store), 2);

    /* staged, then closed without a sync: the close writes them */
    rec = sf_signed(&f->dir, STATE_RECORD_PROXY, "grp-closed", 1, 4002);
    assert_int_equal(state_store_stage(store, &rec, f->err, sizeof(f->err)), 0);
    assert_true(state_names_merge(a, &rec, NULL) >= STATE_ESTALE);
    state_store_close(store);
    store = open_store(f, b);
    assert_string_equal(f->report, "");
    assert_int_equal(state_names_records(b), n + 3);
    assert_int_equal(state_names_digest(b), state_names_digest(a));
    assert_int_equal(state_names_witnesses(b, name, rec.owner, kept), 1);

    /* a compaction takes staged entries into the snapshot and empties the log */
    rec = sf_signed(&f->dir, STATE_RECORD_PROXY, "grp-compacted", 1, 4003);
    assert_int_equal(state_store_stage(store, &rec, f->err, sizeof(f->err)), 0);
    assert_true(state_names_merge(b, &rec, NULL) >= STATE_ESTALE);
    assert_int_equal(state_store_compact(store, b, f->err, sizeof(f->err)), 0);
    assert_int_equal(state_store_unsynced(store), 0);
    assert_int_equal(state_store_log_bytes(store), 8);
    state_store_close(store);
    state_names_free(a);
    a = state_names_new();
    store = open_store(f, a);
    assert_int_equal(state_names_records(a), n + 4);
    assert_int_equal(state_names_digest(a), state_names_digest(b));
    state_store_close(store);
    state_names_free(a);
    state_names_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test_setup_teardown(test_append_and_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_at_every_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_magic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_middle_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_undecodable_and_unverified, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_log_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_dir_lock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_damage_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_collected_tombstones_stay_collected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_staged_group_commit, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
