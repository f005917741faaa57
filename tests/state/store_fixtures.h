/*
 * store_fixtures.h - helpers for the durable store tests (test_store_*.c): a data directory
 * with an owner key, signed records, and whole-file reads and writes to damage a log the way a
 * crash or a disk would.
 */
#ifndef WEBGW_TEST_STORE_FIXTURES_H
#define WEBGW_TEST_STORE_FIXTURES_H

#include <fcntl.h>
#include <sys/stat.h>

#include "names_fixtures.h"

struct sf_dir {
    char path[256];        /* the data directory (also holds the key) */
    struct state_key *key; /* signs every record of the test */
};

static inline void sf_dir_init(struct sf_dir *d)
{
    char keypath[300], err[STATE_ERR_MAX];

    nf_tempdir(d->path);
    snprintf(keypath, sizeof(keypath), "%s/owner.pem", d->path);
    d->key = state_key_generate(keypath, err, sizeof(err));
    if (d->key == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
}

static inline void sf_dir_free(struct sf_dir *d)
{
    state_key_free(d->key);
    nf_rmdir(d->path);
}

/* A signed record; kind RESERVE/PROXY/RELEASE for `name`, backend port `port` for proxies. */
static inline struct state_record sf_signed(const struct sf_dir *d, enum state_record_kind kind,
                                            const char *name, uint64_t version, uint16_t port)
{
    struct state_record rec = nf_record(kind, name, 1, version, NF_NOW_MS, port);
    char err[STATE_ERR_MAX];

    if (state_record_sign(&rec, d->key, err, sizeof(err)) != 0) {
        fprintf(stderr, "sign: %s\n", err);
        abort();
    }
    return rec;
}

static inline void sf_path(const struct sf_dir *d, const char *file, char out[512])
{
    snprintf(out, 512, "%s/%s", d->path, file);
}

/* Reads a whole file into a new buffer; *len receives its size. */
static inline uint8_t *sf_read(const struct sf_dir *d, const char *file, size_t *len)
{
    char p[512];
    struct stat st;
    uint8_t *buf;
    int fd;

    sf_path(d, file, p);
    fd = open(p, O_RDONLY);
    if (fd < 0 || fstat(fd, &st) != 0)
        abort();
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL || read(fd, buf, (size_t)st.st_size) != st.st_size)
        abort();
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

/* Replaces a file's content with buf[len]. */
static inline void sf_write(const struct sf_dir *d, const char *file, const uint8_t *buf,
                            size_t len)
{
    char p[512];
    int fd;

    sf_path(d, file, p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || (len > 0 && write(fd, buf, len) != (ssize_t)len))
        abort();
    close(fd);
}

static inline off_t sf_size(const struct sf_dir *d, const char *file)
{
    char p[512];
    struct stat st;

    sf_path(d, file, p);
    return stat(p, &st) == 0 ? st.st_size : -1;
}

#endif /* WEBGW_TEST_STORE_FIXTURES_H */
