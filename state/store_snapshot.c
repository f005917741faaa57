/*
 * store_snapshot.c - compaction of the durable store: records.snapshot holds every record of
 * the merged set (each owner's latest per key), after which the log can start over empty.
 *
 * The snapshot is written beside the live one (records.snapshot.tmp), fsynced, renamed over
 * records.snapshot and the directory fsynced; only then is the log truncated. A crash at any
 * point leaves either the old snapshot and the full log, or the new snapshot and a log whose
 * records it already holds: replaying both is harmless because merging is idempotent.
 *
 * Loading does not verify the snapshot's signatures, while log replay does. Every record in a
 * snapshot comes from the merged set, which only ever took records after their signature
 * verified, and each entry is checksummed. Verifying again would cost one Ed25519 verification
 * per record at every start (about 290 us each on the 2-core CI machine: five minutes for a
 * million records), to guard against nothing that anyone able to write the data dir could not
 * do anyway. The log stays verified: it is short (compaction empties it) and it is where a
 * record would land if a bug ever appended one that had not been checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/store_private.h"

#define SNAPSHOT_BUFFER (64 * 1024)

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int store_snapshot_load(struct state_store *store, struct store_replay *replay, char *note,
                        size_t notelen, char *err, size_t errlen)
{
    enum store_scan_stop stop;
    size_t before, entries, good = 0;
    uint8_t *map;
    uint64_t expected;
    struct stat st;
    int fd;

    note[0] = '\0';
    fd = openat(store->dir_fd, STORE_SNAPSHOT_FILE, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT)
        return 0;
    if (fd < 0 || fstat(fd, &st) != 0) {
        state_errf(err, errlen, "%s/%s: %s", store->dir, STORE_SNAPSHOT_FILE, strerror(errno));
        if (fd >= 0)
            close(fd);
        return STATE_EIO;
    }
    if ((size_t)st.st_size < STORE_SNAPSHOT_HEADER) {
        /* renamed into place only after an fsync: this is outside damage, keep going */
        state_errf(note, notelen, "%s: too short (%lld bytes), ignored", STORE_SNAPSHOT_FILE,
                   (long long)st.st_size);
        close(fd);
        return 0;
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        state_errf(err, errlen, "%s/%s: mmap: %s", store->dir, STORE_SNAPSHOT_FILE,
                   strerror(errno));
        return STATE_EIO;
    }
    if (memcmp(map, STORE_SNAPSHOT_MAGIC, STORE_MAGIC_LEN) != 0) {
        state_errf(err, errlen, "%s/%s: not a webgw snapshot (bad magic)", store->dir,
                   STORE_SNAPSHOT_FILE);
        munmap(map, (size_t)st.st_size);
        return STATE_EIO;
    }
    expected = get_u64(map + STORE_MAGIC_LEN);
    replay->verify = false;
    before = replay->loaded + replay->unverified;
    stop = store_scan(map + STORE_SNAPSHOT_HEADER, (size_t)st.st_size - STORE_SNAPSHOT_HEADER,
                      store_replay_entry, replay, &good);
    munmap(map, (size_t)st.st_size);
    replay->verify = true;
    if (stop == STORE_SCAN_FAILED) {
        state_errf(err, errlen, "%s/%s: out of memory while loading", store->dir,
                   STORE_SNAPSHOT_FILE);
        return STATE_ENOMEM;
    }
    entries = replay->loaded + replay->unverified - before;
    if (stop != STORE_SCAN_END || entries != expected)
        state_errf(note, notelen,
                   "%s: damaged at offset %zu (%s), loaded %zu of %" PRIu64 " records",
                   STORE_SNAPSHOT_FILE, STORE_SNAPSHOT_HEADER + good, store_scan_stop_name(stop),
                   entries, expected);
    return 0;
}

/* Buffered writer of the snapshot being built; state_names_each_record feeds it. */
struct snapshot_writer {
    int fd;         /* records.snapshot.tmp */
    uint8_t *buf;   /* SNAPSHOT_BUFFER bytes */
    size_t used;    /* bytes waiting in buf */
    off_t off;      /* file offset of buf[0] */
    uint64_t count; /* entries written */
    int error;      /* errno of the first failed write, or a STATE_E* code from encoding */
    const struct state_names *names; /* where each record's witnesses are read */
};

static int writer_flush(struct snapshot_writer *w)
{
    size_t done = 0;

    while (done < w->used) {
        ssize_t n = pwrite(w->fd, w->buf + done, w->used - done, w->off + (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            w->error = n < 0 ? errno : EIO;
            return -1;
        }
        done += (size_t)n;
    }
    w->off += (off_t)w->used;
    w->used = 0;
    return 0;
}

/* Room for one more entry in the buffer (flushing it first when full). */
static uint8_t *writer_room(struct snapshot_writer *w)
{
    if (SNAPSHOT_BUFFER - w->used < STORE_ENTRY_HEADER + STATE_RECORD_MAX_BYTES &&
        writer_flush(w) != 0)
        return NULL;
    return w->buf + w->used + STORE_ENTRY_HEADER;
}

static int writer_commit(struct snapshot_writer *w, int n)
{
    if (n < 0) {
        w->error = EINVAL;
        return -1;
    }
    store_entry_frame(w->buf + w->used + STORE_ENTRY_HEADER, (uint32_t)n, w->buf + w->used);
    w->used += STORE_ENTRY_HEADER + (size_t)n;
    w->count++;
    return 0;
}

/* A record, then the witnesses of its owner on its key (a replay needs the record first). */
static int writer_add(const struct state_record *rec, void *ctx)
{
    struct state_witness wit[STATE_WITNESSES_MAX];
    struct snapshot_writer *w = ctx;
    size_t count;
    uint8_t *at;

    if ((at = writer_room(w)) == NULL ||
        writer_commit(w, state_record_encode(rec, at, STATE_RECORD_MAX_BYTES)) != 0)
        return -1;
    count = state_names_witnesses(w->names, rec->name, rec->owner, wit);
    for (size_t i = 0; i < count; i++)
        if ((at = writer_room(w)) == NULL ||
            writer_commit(w, state_witness_entry_encode(rec->name, rec->owner, &wit[i], at,
                                                        STATE_RECORD_MAX_BYTES)) != 0)
            return -1;
    return 0;
}

int state_store_compact(struct state_store *store, const struct state_names *names, char *err,
                        size_t errlen)
{
    struct snapshot_writer w = {.fd = -1, .names = names};
    uint8_t header[STORE_SNAPSHOT_HEADER];
    int rc = STATE_EIO;

    w.buf = malloc(SNAPSHOT_BUFFER);
    if (w.buf == NULL) {
        state_errf(err, errlen, "%s: out of memory", STORE_SNAPSHOT_TMP);
        return STATE_ENOMEM;
    }
    w.fd =
        openat(store->dir_fd, STORE_SNAPSHOT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (w.fd < 0) {
        state_errf(err, errlen, "%s/%s: %s", store->dir, STORE_SNAPSHOT_TMP, strerror(errno));
        goto fail;
    }
    w.off = STORE_SNAPSHOT_HEADER;
    if (state_names_each_record(names, writer_add, &w) != 0 || writer_flush(&w) != 0) {
        state_errf(err, errlen, "%s/%s: write: %s", store->dir, STORE_SNAPSHOT_TMP,
                   strerror(w.error ? w.error : ENOMEM));
        goto fail;
    }
    /* the count goes in last: a reader can tell a snapshot that lost entries */
    memcpy(header, STORE_SNAPSHOT_MAGIC, STORE_MAGIC_LEN);
    put_u64(header + STORE_MAGIC_LEN, w.count);
    if (pwrite(w.fd, header, sizeof(header), 0) != (ssize_t)sizeof(header)) {
        state_errf(err, errlen, "%s/%s: write: %s", store->dir, STORE_SNAPSHOT_TMP,
                   strerror(errno));
        goto fail;
    }
    if (store_sync(w.fd, STORE_SNAPSHOT_TMP, err, errlen) != 0)
        goto fail;
    close(w.fd);
    w.fd = -1;
    if (renameat(store->dir_fd, STORE_SNAPSHOT_TMP, store->dir_fd, STORE_SNAPSHOT_FILE) != 0) {
        state_errf(err, errlen, "%s: rename %s to %s: %s", store->dir, STORE_SNAPSHOT_TMP,
                   STORE_SNAPSHOT_FILE, strerror(errno));
        goto fail;
    }
    if (store_sync(store->dir_fd, store->dir, err, errlen) != 0)
        goto done; /* renamed: the tmp file is gone, the log still holds everything */
    /* the snapshot is durable: the log's records are all in it */
    if (ftruncate(store->log_fd, STORE_MAGIC_LEN) != 0) {
        state_errf(err, errlen, "%s/%s: ftruncate: %s", store->dir, STORE_LOG_FILE,
                   strerror(errno));
        goto done;
    }
    /* staged entries are in the snapshot too (names holds everything appended) */
    store->log_size = store->synced = STORE_MAGIC_LEN;
    store->staged = 0;
    store->broken = false; /* whatever a failed append left behind is gone */
    if (store_sync(store->log_fd, STORE_LOG_FILE, err, errlen) != 0)
        goto done;
    rc = 0;
    goto done;

fail:
    if (w.fd >= 0)
        close(w.fd);
    unlinkat(store->dir_fd, STORE_SNAPSHOT_TMP, 0);
done:
    free(w.buf);
    return rc;
}
