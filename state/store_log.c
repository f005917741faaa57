/*
 * store_log.c - the durable store's lifecycle and its append-only log: taking the data
 * directory (flock), recovering on open (snapshot, then log, cutting a damaged tail), and
 * appending records with an fsync before the caller may acknowledge them.
 *
 * Recovery rule: the log is only ever appended to, so damage can only be a tail that a crash
 * left half-written, or (rarer) bytes the disk changed. Both are handled the same way: the log
 * is cut at the first entry that is not whole and valid, and one line says where and how much
 * was dropped. Cutting, rather than skipping ahead, keeps the invariant "the log is a prefix of
 * what was appended"; anything after a damaged entry came from the network and is resent by
 * anti-entropy. A record acknowledged to a client was fsynced before the acknowledgement, so a
 * crash can only tear records that were never acknowledged.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/store_private.h"

/* Appends "; " and a formatted note to report[reportlen] (one line in all). */
static void report_add(char *report, size_t reportlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void report_add(char *report, size_t reportlen, const char *fmt, ...)
{
    size_t used;
    va_list ap;

    if (report == NULL || reportlen == 0)
        return;
    used = strnlen(report, reportlen);
    if (used > 0 && used + 2 < reportlen) {
        memcpy(report + used, "; ", 3);
        used += 2;
    }
    if (used + 1 >= reportlen)
        return;
    va_start(ap, fmt);
    vsnprintf(report + used, reportlen - used, fmt, ap);
    va_end(ap);
}

static int write_all(int fd, const uint8_t *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
        off += n;
    }
    return 0;
}

/* Takes the directory: creates it if missing and flocks webgw.lock so that a second daemon on
 * the same data dir fails at start instead of interleaving appends. */
static int store_lock(struct state_store *store, char *err, size_t errlen)
{
    char pid[32];
    int n;

    if (mkdir(store->dir, 0700) != 0 && errno != EEXIST) {
        state_errf(err, errlen, "data dir %s: mkdir: %s", store->dir, strerror(errno));
        return STATE_EIO;
    }
    store->dir_fd = open(store->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (store->dir_fd < 0) {
        state_errf(err, errlen, "data dir %s: %s", store->dir, strerror(errno));
        return STATE_EIO;
    }
    store->lock_fd = openat(store->dir_fd, STORE_LOCK_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (store->lock_fd < 0) {
        state_errf(err, errlen, "data dir %s: open %s: %s", store->dir, STORE_LOCK_FILE,
                   strerror(errno));
        return STATE_EIO;
    }
    if (flock(store->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            state_errf(err, errlen,
                       "data dir %s is in use by another webgw process (%s/%s is locked)",
                       store->dir, store->dir, STORE_LOCK_FILE);
        else
            state_errf(err, errlen, "data dir %s: flock %s: %s", store->dir, STORE_LOCK_FILE,
                       strerror(errno));
        return STATE_EIO;
    }
    /* the pid is only for a human looking at the directory */
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(store->lock_fd, 0) == 0)
        (void)write_all(store->lock_fd, (const uint8_t *)pid, (size_t)n, 0);
    return 0;
}

/* Opens records.log, creating it with its magic when missing or when a crash tore the magic
 * itself. Returns the file size in *size. */
static int log_open(struct state_store *store, uint64_t *size, char *report, size_t reportlen,
                    char *err, size_t errlen)
{
    uint8_t magic[STORE_MAGIC_LEN];
    struct stat st;
    ssize_t n;

    store->log_fd = openat(store->dir_fd, STORE_LOG_FILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (store->log_fd < 0 || fstat(store->log_fd, &st) != 0) {
        state_errf(err, errlen, "%s/%s: %s", store->dir, STORE_LOG_FILE, strerror(errno));
        return STATE_EIO;
    }
    n = st.st_size > 0 ? pread(store->log_fd, magic, sizeof(magic), 0) : 0;
    if (n < 0) {
        state_errf(err, errlen, "%s/%s: read: %s", store->dir, STORE_LOG_FILE, strerror(errno));
        return STATE_EIO;
    }
    if (memcmp(magic, STORE_LOG_MAGIC, (size_t)n) != 0) {
        state_errf(err, errlen, "%s/%s: not a webgw records log (bad magic)", store->dir,
                   STORE_LOG_FILE);
        return STATE_EIO;
    }
    if (n < STORE_MAGIC_LEN) {
        if (n > 0)
            report_add(report, reportlen, "%s: cut torn tail at offset 0 (%zd bytes dropped)",
                       STORE_LOG_FILE, n);
        if (ftruncate(store->log_fd, 0) != 0 ||
            write_all(store->log_fd, (const uint8_t *)STORE_LOG_MAGIC, STORE_MAGIC_LEN, 0) != 0) {
            state_errf(err, errlen, "%s/%s: write: %s", store->dir, STORE_LOG_FILE,
                       strerror(errno));
            return STATE_EIO;
        }
        /* the new file and its name must both survive a crash before we accept appends */
        if (store_sync(store->log_fd, STORE_LOG_FILE, err, errlen) != 0 ||
            store_sync(store->dir_fd, store->dir, err, errlen) != 0)
            return STATE_EIO;
        *size = STORE_MAGIC_LEN;
        return 0;
    }
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Replays the log's entries into replay->names and cuts it after the last whole valid entry. */
static int log_replay(struct state_store *store, uint64_t size, struct store_replay *replay,
                      char *report, size_t reportlen, char *err, size_t errlen)
{
    enum store_scan_stop stop;
    uint8_t *map = NULL;
    size_t good = 0, body = (size_t)(size - STORE_MAGIC_LEN);
    uint64_t cut;

    store->log_size = store->synced = size;
    if (body == 0)
        return 0;
    map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, store->log_fd, 0);
    if (map == MAP_FAILED) {
        state_errf(err, errlen, "%s/%s: mmap: %s", store->dir, STORE_LOG_FILE, strerror(errno));
        return STATE_EIO;
    }
    stop = store_scan(map + STORE_MAGIC_LEN, body, store_replay_entry, replay, &good);
    munmap(map, (size_t)size);
    if (stop == STORE_SCAN_FAILED) {
        state_errf(err, errlen, "%s/%s: out of memory while replaying", store->dir, STORE_LOG_FILE);
        return STATE_ENOMEM;
    }
    if (stop == STORE_SCAN_END)
        return 0;
    cut = STORE_MAGIC_LEN + good;
    if (stop == STORE_SCAN_TORN)
        report_add(report, reportlen,
                   "%s: cut torn tail at offset %" PRIu64 " (%" PRIu64 " bytes dropped)",
                   STORE_LOG_FILE, cut, size - cut);
    else if (stop == STORE_SCAN_REJECTED)
        report_add(report, reportlen,
                   "%s: cut %s at offset %" PRIu64 " (%s; %" PRIu64 " bytes dropped)",
                   STORE_LOG_FILE, store_scan_stop_name(stop), cut, replay->decode_err, size - cut);
    else
        report_add(report, reportlen,
                   "%s: cut entry with %s at offset %" PRIu64 " (%" PRIu64 " bytes dropped)",
                   STORE_LOG_FILE, store_scan_stop_name(stop), cut, size - cut);
    if (ftruncate(store->log_fd, (off_t)cut) != 0) {
        state_errf(err, errlen, "%s/%s: ftruncate: %s", store->dir, STORE_LOG_FILE,
                   strerror(errno));
        return STATE_EIO;
    }
    if (store_sync(store->log_fd, STORE_LOG_FILE, err, errlen) != 0)
        return STATE_EIO;
    store->log_size = store->synced = cut;
    return 0;
}

struct state_store *state_store_open(const char *dir, struct state_names *names, char *report,
                                     size_t reportlen, char *err, size_t errlen)
{
    struct store_replay *replay = NULL;
    struct state_store *store;
    char note[STATE_ERR_MAX] = "";
    uint64_t size = 0;

    if (report != NULL && reportlen > 0)
        report[0] = '\0';
    store = calloc(1, sizeof(*store));
    if (store == NULL) {
        state_errf(err, errlen, "data dir %s: out of memory", dir);
        return NULL;
    }
    store->dir_fd = store->lock_fd = store->log_fd = -1;
    replay = calloc(1, sizeof(*replay));
    if (replay == NULL || (store->dir = strdup(dir)) == NULL) {
        state_errf(err, errlen, "data dir %s: out of memory", dir);
        goto fail;
    }
    replay->names = names;
    replay->verify = true;
    if (store_lock(store, err, errlen) != 0)
        goto fail;
    /* a snapshot that was being written when we died is incomplete by definition */
    if (unlinkat(store->dir_fd, STORE_SNAPSHOT_TMP, 0) != 0 && errno != ENOENT) {
        state_errf(err, errlen, "%s/%s: unlink: %s", dir, STORE_SNAPSHOT_TMP, strerror(errno));
        goto fail;
    }
    if (store_snapshot_load(store, replay, note, sizeof(note), err, errlen) != 0)
        goto fail;
    if (note[0] != '\0')
        report_add(report, reportlen, "%s", note);
    if (log_open(store, &size, report, reportlen, err, errlen) != 0 ||
        log_replay(store, size, replay, report, reportlen, err, errlen) != 0)
        goto fail;
    if (replay->unverified > 0)
        report_add(report, reportlen, "%zu records skipped (signature does not verify)",
                   replay->unverified);
    free(replay);
    return store;

fail:
    free(replay);
    state_store_close(store);
    return NULL;
}

/* A failed write or sync: the log goes back to what the last sync made durable (what follows
 * may be half written and would sit in the middle of the log after the next append, cutting
 * everything behind it at the next start). The entries dropped stay in memory, where their
 * callers merged them; anti-entropy brings them back after a restart. */
static int log_rollback(struct state_store *store, const char *what, int saved, char *err,
                        size_t errlen)
{
    if (ftruncate(store->log_fd, (off_t)store->synced) != 0)
        store->broken = true;
    store->log_size = store->synced;
    store->staged = 0;
    state_errf(err, errlen, "%s/%s: %s: %s", store->dir, STORE_LOG_FILE, what, strerror(saved));
    return STATE_EIO;
}

/* Writes the staged entries at the end of the log (no sync). */
static int stage_write(struct state_store *store, char *err, size_t errlen)
{
    if (store->staged == 0)
        return 0;
    if (write_all(store->log_fd, store->stage, store->staged, (off_t)store->log_size) != 0)
        return log_rollback(store, "write", errno ? errno : EIO, err, errlen);
    store->log_size += store->staged;
    store->staged = 0;
    return 0;
}

static int append_refused(const struct state_store *store, char *err, size_t errlen)
{
    if (!store->broken)
        return 0;
    state_errf(err, errlen, "%s/%s: refusing appends after a failed write (restart or compact)",
               store->dir, STORE_LOG_FILE);
    return STATE_EIO;
}

/* Frames payload[n] into the stage, writing the stage out first when it would not fit. */
static int stage_entry(struct state_store *store, const uint8_t *payload, int n, char *err,
                       size_t errlen)
{
    size_t need = STORE_ENTRY_HEADER + (size_t)n;

    if (append_refused(store, err, errlen) != 0)
        return STATE_EIO;
    if (store->stage == NULL && (store->stage = malloc(STORE_STAGE_MAX)) == NULL) {
        state_errf(err, errlen, "%s/%s: out of memory", store->dir, STORE_LOG_FILE);
        return STATE_ENOMEM;
    }
    if (store->staged + need > STORE_STAGE_MAX && stage_write(store, err, errlen) != 0)
        return STATE_EIO;
    store_entry_frame(payload, (uint32_t)n, store->stage + store->staged);
    store->staged += need;
    return 0;
}

int state_store_sync(struct state_store *store, char *err, size_t errlen)
{
    if (append_refused(store, err, errlen) != 0)
        return STATE_EIO;
    if (stage_write(store, err, errlen) != 0)
        return STATE_EIO;
    if (store->log_size == store->synced)
        return 0;
    store->syncs++;
    if (fdatasync(store->log_fd) != 0)
        return log_rollback(store, "fdatasync", errno, err, errlen);
    store->synced = store->log_size;
    return 0;
}

int state_store_stage(struct state_store *store, const struct state_record *rec, char *err,
                      size_t errlen)
{
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int n = state_record_encode(rec, buf, sizeof(buf));

    if (n < 0) {
        state_errf(err, errlen, "%s: cannot encode record for %s", STORE_LOG_FILE, rec->name);
        return n;
    }
    return stage_entry(store, buf, n, err, errlen);
}

int state_store_stage_witness(struct state_store *store, const char *name,
                              const uint8_t owner[STATE_OWNER_LEN], const struct state_witness *w,
                              char *err, size_t errlen)
{
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int n = state_witness_entry_encode(name, owner, w, buf, sizeof(buf));

    if (n < 0) {
        state_errf(err, errlen, "%s: cannot encode a witness for %s", STORE_LOG_FILE, name);
        return n;
    }
    return stage_entry(store, buf, n, err, errlen);
}

int state_store_append(struct state_store *store, const struct state_record *rec, char *err,
                       size_t errlen)
{
    int rc = state_store_stage(store, rec, err, errlen);

    return rc != 0 ? rc : state_store_sync(store, err, errlen);
}

int state_store_append_witness(struct state_store *store, const char *name,
                               const uint8_t owner[STATE_OWNER_LEN], const struct state_witness *w,
                               char *err, size_t errlen)
{
    int rc = state_store_stage_witness(store, name, owner, w, err, errlen);

    return rc != 0 ? rc : state_store_sync(store, err, errlen);
}

size_t state_store_unsynced(const struct state_store *store)
{
    return (size_t)(store->log_size - store->synced) + store->staged;
}

uint64_t state_store_syncs(const struct state_store *store)
{
    return store->syncs;
}

size_t state_store_log_bytes(const struct state_store *store)
{
    return (size_t)store->log_size + store->staged;
}

void state_store_close(struct state_store *store)
{
    if (store == NULL)
        return;
    if (store->log_fd >= 0) {
        char err[STATE_ERR_MAX];

        /* the caller syncs first to hear of a failure; this one is the last chance */
        (void)state_store_sync(store, err, sizeof(err));
        close(store->log_fd);
    }
    free(store->stage);
    if (store->lock_fd >= 0)
        close(store->lock_fd); /* releases the flock */
    if (store->dir_fd >= 0)
        close(store->dir_fd);
    free(store->dir);
    free(store);
}
