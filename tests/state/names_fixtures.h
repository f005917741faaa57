/*
 * names_fixtures.h - helpers for the name table and store tests (test_names_*.c,
 * test_store_*.c): record builders with explicit owner/version/claim time, a deterministic
 * random generator, temporary data directories, and a fingerprint of everything a user can
 * observe of a name table (views and kept records), so two tables can be compared whole.
 */
#ifndef WEBGW_TEST_NAMES_FIXTURES_H
#define WEBGW_TEST_NAMES_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/state.h"

#define NF_NOW_MS 1700000000000ULL /* fixed "now": tests never read the clock */

/* xorshift64*: reproducible randomness; failures print the seed. */
static inline uint64_t nf_rand(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545f4914f6cdd1dULL;
}

static inline void nf_owner(uint8_t owner[STATE_OWNER_LEN], uint8_t tag)
{
    for (int i = 0; i < STATE_OWNER_LEN; i++)
        owner[i] = (uint8_t)(tag * 31 + i);
    owner[0] = tag; /* owner order follows the tag */
}

/* A record of `kind` for `name` by owner `tag`, with the given version and claim time. Proxy
 * and fqdn records get one backend whose port is `port` (so equal versions can differ). */
static inline struct state_record nf_record(enum state_record_kind kind, const char *name,
                                            uint8_t tag, uint64_t version, uint64_t reserved_at_ms,
                                            uint16_t port)
{
    struct state_record rec;

    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    snprintf(rec.name, sizeof(rec.name), "%s", name);
    nf_owner(rec.owner, tag);
    rec.version = version;
    rec.reserved_at_ms = reserved_at_ms;
    rec.issued_at_ms = reserved_at_ms + version * 1000;
    if (kind == STATE_RECORD_PROXY || kind == STATE_RECORD_FQDN) {
        rec.backend_count = 1;
        rec.backends[0].family = 4;
        rec.backends[0].addr[0] = 10;
        rec.backends[0].addr[3] = tag;
        rec.backends[0].port = port;
    }
    for (int i = 0; i < STATE_SIGNATURE_LEN; i++)
        rec.signature[i] = (uint8_t)(tag + version + i);
    return rec;
}

/* FNV-1a over bytes, for fingerprints. */
static inline uint64_t nf_fnv(uint64_t h, const void *data, size_t len)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

static inline uint64_t nf_record_fnv(uint64_t h, const struct state_record *rec)
{
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    int n = state_record_encode(rec, buf, sizeof(buf));

    return n > 0 ? nf_fnv(h, buf, (size_t)n) : nf_fnv(h, "?", 1);
}

static inline int nf_view_visit(const struct state_name_view *v, void *ctx)
{
    uint64_t *h = ctx;

    *h = nf_fnv(*h, v->name, strlen(v->name) + 1);
    *h = nf_fnv(*h, &v->held, sizeof(v->held));
    *h = nf_fnv(*h, &v->contenders, sizeof(v->contenders));
    *h = nf_record_fnv(*h, &v->record);
    return 0;
}

static inline int nf_record_visit(const struct state_record *rec, void *ctx)
{
    return (*(uint64_t *)ctx = nf_record_fnv(*(uint64_t *)ctx, rec)), 0;
}

/* Everything observable: every view in order, every kept record in order, the counters. */
static inline uint64_t nf_fingerprint(const struct state_names *names)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t counts[3] = {state_names_count(names), state_names_tombstones(names),
                        state_names_records(names)};

    state_names_each(names, nf_view_visit, &h);
    state_names_each_record(names, nf_record_visit, &h);
    return nf_fnv(h, counts, sizeof(counts));
}

/* A fresh temporary directory under $TMPDIR (or /tmp); path holds 256 bytes. */
static inline void nf_tempdir(char path[256])
{
    const char *tmp = getenv("TMPDIR");

    snprintf(path, 256, "%s/webgw-test-XXXXXX", tmp != NULL ? tmp : "/tmp");
    if (mkdtemp(path) == NULL) {
        perror("mkdtemp");
        abort();
    }
}

/* rm -r of a test directory (one level of files, which is all the store makes). */
static inline void nf_rmdir(const char *path)
{
    static const char *files[] = {"webgw.lock",           "records.log", "records.snapshot",
                                  "records.snapshot.tmp", "owner.pem",   "other.pem"};
    char p[512];

    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", path, files[i]);
        unlink(p);
    }
    rmdir(path);
}

#endif /* WEBGW_TEST_NAMES_FIXTURES_H */
