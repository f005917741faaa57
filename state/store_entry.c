/*
 * store_entry.c - the entry format shared by records.log and records.snapshot: CRC32C, framing,
 * and the scanner that walks entries and says exactly where and why a file stops being valid.
 * The scanner is a pure function over bytes so that damaged files of every shape can be tested
 * (and fuzzed) without a disk.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "state/store_private.h"

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82f63b78), table-driven ------------------ */

static uint32_t crc32c_table[256];
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;

        for (int b = 0; b < 8; b++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78U : c >> 1;
        crc32c_table[i] = c;
    }
}

uint32_t store_crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;

    pthread_once(&crc32c_once, crc32c_init);
    crc = ~crc;
    for (size_t i = 0; i < len; i++)
        crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- framing ---------------------------------------------------------------------------- */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void store_entry_frame(const uint8_t *rec, uint32_t len, uint8_t *out)
{
    uint32_t crc;

    put_u32(out, len);
    crc = store_crc32c(0, out, 4);
    crc = store_crc32c(crc, rec, len);
    put_u32(out + 4, crc);
    memmove(out + STORE_ENTRY_HEADER, rec, len);
}

enum store_scan_stop store_scan(const uint8_t *buf, size_t len, store_entry_fn fn, void *ctx,
                                size_t *good)
{
    size_t off = 0;

    while (off < len) {
        size_t left = len - off;
        uint32_t rlen, crc;
        int rc;

        *good = off;
        if (left < STORE_ENTRY_HEADER)
            return STORE_SCAN_TORN;
        rlen = get_u32(buf + off);
        if (rlen == 0 || rlen > STATE_RECORD_MAX_BYTES)
            return STORE_SCAN_BAD_LENGTH;
        if (left - STORE_ENTRY_HEADER < rlen)
            return STORE_SCAN_TORN;
        crc = store_crc32c(0, buf + off, 4);
        crc = store_crc32c(crc, buf + off + STORE_ENTRY_HEADER, rlen);
        if (crc != get_u32(buf + off + 4))
            return STORE_SCAN_BAD_CHECKSUM;
        rc = fn(buf + off + STORE_ENTRY_HEADER, rlen, ctx);
        if (rc != 0)
            return rc == STORE_SCAN_FAILED ? STORE_SCAN_FAILED : STORE_SCAN_REJECTED;
        off += STORE_ENTRY_HEADER + rlen;
    }
    *good = off;
    return STORE_SCAN_END;
}

const char *store_scan_stop_name(enum store_scan_stop stop)
{
    switch (stop) {
    case STORE_SCAN_END:
        return "clean";
    case STORE_SCAN_TORN:
        return "torn entry";
    case STORE_SCAN_BAD_LENGTH:
        return "bad length";
    case STORE_SCAN_BAD_CHECKSUM:
        return "bad checksum";
    case STORE_SCAN_REJECTED:
        return "undecodable record";
    case STORE_SCAN_FAILED:
        return "out of memory";
    }
    return "unknown";
}

/* ---- replay ----------------------------------------------------------------------------- */

/* A witness entry ([name, owner, witness], a 3-element array) beside the records. */
static int replay_witness(struct store_replay *replay, const uint8_t *buf, size_t len)
{
    char name[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX];
    uint8_t owner[STATE_OWNER_LEN];
    struct state_witness w;
    int rc;

    if (state_witness_entry_decode(buf, len, name, owner, &w, replay->decode_err,
                                   sizeof(replay->decode_err)) != 0)
        return STORE_SCAN_REJECTED;
    if (replay->verify && state_witness_verify(&w, name, owner, err, sizeof(err)) != 0) {
        replay->unverified++;
        return 0;
    }
    rc = state_names_witness(replay->names, name, owner, &w, NULL);
    if (rc == STATE_ENOMEM)
        return STORE_SCAN_FAILED;
    replay->loaded++;
    return 0;
}

int store_replay_entry(const uint8_t *rec, size_t len, void *ctx)
{
    struct store_replay *replay = ctx;
    struct state_record r;
    char err[STATE_ERR_MAX];
    int rc;

    if (len > 0 && rec[0] == STORE_WITNESS_ENTRY_TAG)
        return replay_witness(replay, rec, len);
    if (state_record_decode(rec, len, &r, replay->decode_err, sizeof(replay->decode_err)) != 0)
        return STORE_SCAN_REJECTED;
    if (replay->verify && state_record_verify(&r, err, sizeof(err)) != 0) {
        /* checksummed, so written whole by us: a key or format change, not disk damage */
        replay->unverified++;
        return 0;
    }
    rc = state_names_merge(replay->names, &r, NULL);
    if (rc == STATE_ENOMEM)
        return STORE_SCAN_FAILED;
    replay->loaded++;
    return 0;
}

/* ---- small helpers ---------------------------------------------------------------------- */

int store_sync(int fd, const char *what, char *err, size_t errlen)
{
    if (fsync(fd) != 0) {
        state_errf(err, errlen, "fsync %s: %s", what, strerror(errno));
        return STATE_EIO;
    }
    return 0;
}
