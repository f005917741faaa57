/*
 * store_private.h - what the durable store's files share: the on-disk layout, the checksum,
 * the entry scanner, and the store handle. Private to state/: the rest of the program
 * includes state.h.
 *
 * On disk, in the data directory:
 *   webgw.lock         flock()ed while a process uses the directory (holds its pid)
 *   records.log        STORE_LOG_MAGIC, then entries appended one per accepted record
 *   records.snapshot   STORE_SNAPSHOT_MAGIC, u64 record count (LE), then entries
 *   records.snapshot.tmp  a snapshot being written (removed on open)
 * An entry is [u32 length LE][u32 CRC32C LE][payload, `length` bytes]; the checksum covers
 * the four length bytes and the payload, so a damaged length is caught too. A payload is a
 * canonical signed record, or a witness entry [name, owner, witness] (witness.c) that
 * follows the record it attests.
 */
#ifndef WEBGW_STATE_STORE_PRIVATE_H
#define WEBGW_STATE_STORE_PRIVATE_H

#include "state/record_internal.h" /* state_errf */
#include "state/state.h"

#define STORE_LOCK_FILE "webgw.lock"
#define STORE_LOG_FILE "records.log"
#define STORE_SNAPSHOT_FILE "records.snapshot"
#define STORE_SNAPSHOT_TMP "records.snapshot.tmp"

#define STORE_MAGIC_LEN 8
#define STORE_LOG_MAGIC "WGWLOG1\n"      /* 8 bytes, no NUL written */
#define STORE_SNAPSHOT_MAGIC "WGWSNP1\n" /* 8 bytes, no NUL written */
#define STORE_SNAPSHOT_HEADER (STORE_MAGIC_LEN + 8)
#define STORE_ENTRY_HEADER 8
/* First byte of a witness entry (a 3-element msgpack array); a record entry starts with 0x92 */
#define STORE_WITNESS_ENTRY_TAG 0x93

/* Staged entries are written out once this many bytes wait (and at every sync). */
#define STORE_STAGE_MAX (256 * 1024)

struct state_store {
    char *dir;         /* data directory path, for messages */
    int dir_fd;        /* the directory, for openat/renameat and its fsync */
    int lock_fd;       /* webgw.lock, flock()ed for the store's lifetime */
    int log_fd;        /* records.log, read-write */
    uint64_t log_size; /* bytes of records.log that hold whole entries (written) */
    uint64_t synced;   /* of those, the bytes fdatasync made durable (<= log_size) */
    uint8_t *stage;    /* framed entries not written yet (group commit) */
    size_t staged;     /* bytes in stage */
    uint64_t syncs;    /* fdatasync calls on the log */
    bool broken;       /* a failed append could not be rolled back: refuse appends */
};

/* CRC32C (Castagnoli). Start with crc = 0; feed more data by passing the previous result. */
uint32_t store_crc32c(uint32_t crc, const void *data, size_t len);

/* Frames the record rec[len] as one entry into out[STORE_ENTRY_HEADER + len]. */
void store_entry_frame(const uint8_t *rec, uint32_t len, uint8_t *out);

/* Why a scan stopped before the end of its buffer. */
enum store_scan_stop {
    STORE_SCAN_END = 0,      /* every byte belonged to a whole, valid entry */
    STORE_SCAN_TORN,         /* the last entry is cut short (crash during an append) */
    STORE_SCAN_BAD_LENGTH,   /* a length of 0 or above STATE_RECORD_MAX_BYTES */
    STORE_SCAN_BAD_CHECKSUM, /* the entry's bytes do not match its checksum */
    STORE_SCAN_REJECTED,     /* the visitor refused the record (undecodable) */
    STORE_SCAN_FAILED,       /* the visitor failed (out of memory): not damage, abort */
};

/* Called per checksummed entry; returns 0 to go on, STORE_SCAN_REJECTED or STORE_SCAN_FAILED
 * to stop. */
typedef int (*store_entry_fn)(const uint8_t *rec, size_t len, void *ctx);

/* Walks the entries in buf[len] from its start. Returns why it stopped and, in *good, how many
 * bytes of buf hold whole accepted entries (where a cut must happen). */
enum store_scan_stop store_scan(const uint8_t *buf, size_t len, store_entry_fn fn, void *ctx,
                                size_t *good);

/* Describes a scan stop for a report ("bad checksum", "torn entry", ...). */
const char *store_scan_stop_name(enum store_scan_stop stop);

/* Replay context shared by snapshot load and log replay. */
struct store_replay {
    struct state_names *names;      /* where records are merged */
    bool verify;                    /* check signatures (log: yes; snapshot: no, see
                                       store_snapshot.c) */
    size_t loaded;                  /* entries decoded (and verified when asked) */
    size_t unverified;              /* entries skipped: signature does not verify */
    char decode_err[STATE_ERR_MAX]; /* why the last rejected entry did not decode */
};

/* store_entry_fn that decodes, verifies and merges one record (ctx: struct store_replay). */
int store_replay_entry(const uint8_t *rec, size_t len, void *ctx);

/* Loads records.snapshot (if any) into replay->names. Damage is not fatal: the valid prefix is
 * kept and described in note[notelen] (empty when clean). Returns 0, or a negative STATE_E*
 * code with err set when the file cannot be read at all. */
int store_snapshot_load(struct state_store *store, struct store_replay *replay, char *note,
                        size_t notelen, char *err, size_t errlen);

/* fsync of a file descriptor with a message naming `what` on failure. */
int store_sync(int fd, const char *what, char *err, size_t errlen);

#endif /* WEBGW_STATE_STORE_PRIVATE_H */
