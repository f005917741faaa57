/* fill_names.c - see fill_names.h. */
#include "fill_names.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int fill_names(const char *dir, long n, const struct state_backend *be,
               const struct state_key *owner, bool witnessed, char *err, size_t errlen)
{
    struct state_key *key = NULL;
    char report[STATE_ERR_MAX], serr[STATE_ERR_MAX], path[4096];
    uint8_t node_key[STATE_OWNER_LEN];
    struct state_names *names;
    struct state_store *store;
    struct state_record rec;
    struct state_witness w;
    int rc = -1;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    if (witnessed) {
        snprintf(path, sizeof(path), "%s/node.key", dir);
        key = state_key_generate(path, serr, sizeof(serr));
        if (key == NULL) {
            snprintf(err, errlen, "%s: %s", path, serr);
            return -1;
        }
        state_key_owner(key, node_key);
    }
    names = state_names_new();
    if (names == NULL) {
        snprintf(err, errlen, "out of memory");
        state_key_free(key);
        return -1;
    }
    for (long i = 0; i < n; i++) {
        memset(&rec, 0, sizeof(rec));
        rec.kind = STATE_RECORD_PROXY;
        snprintf(rec.name, sizeof(rec.name), "app-%07ld", i);
        for (int b = 0; b < STATE_OWNER_LEN; b++)
            rec.owner[b] = (uint8_t)(i % 64 + b);
        if (owner != NULL)
            state_key_owner(owner, rec.owner);
        rec.version = 1;
        rec.reserved_at_ms = 1700000000000ULL + (uint64_t)i;
        rec.issued_at_ms = rec.reserved_at_ms + 1000;
        rec.backend_count = 1;
        rec.backends[0] = *be;
        for (int b = 0; b < STATE_SIGNATURE_LEN; b++)
            rec.signature[b] = (uint8_t)(i * 7 + b);
        if (owner != NULL && state_record_sign(&rec, owner, serr, sizeof(serr)) != 0) {
            snprintf(err, errlen, "record %ld: %s", i, serr);
            goto done;
        }
        if (state_names_merge(names, &rec, NULL) != 1) {
            snprintf(err, errlen, "merge of record %ld failed", i);
            goto done;
        }
        if (!witnessed)
            continue;
        memset(&w, 0, sizeof(w));
        memcpy(w.key, node_key, STATE_OWNER_LEN);
        w.version = rec.version;
        w.claim_at_ms = rec.reserved_at_ms;
        w.time_ms = rec.issued_at_ms + 1;
        for (int b = 0; b < STATE_SIGNATURE_LEN; b++)
            w.signature[b] = (uint8_t)(i * 11 + b);
        if (owner != NULL && state_witness_sign(&w, key, &rec, w.time_ms, serr, sizeof(serr)) != 0) {
            snprintf(err, errlen, "witness of record %ld: %s", i, serr);
            goto done;
        }
        if (state_names_witness(names, rec.name, rec.owner, &w, NULL) != 1) {
            snprintf(err, errlen, "witness of record %ld not kept", i);
            goto done;
        }
    }
    store = state_store_open(dir, names, report, sizeof(report), serr, sizeof(serr));
    if (store == NULL || state_store_compact(store, names, serr, sizeof(serr)) != 0) {
        snprintf(err, errlen, "%s", serr);
        state_store_close(store);
        goto done;
    }
    state_store_close(store);
    rc = 0;
done:
    state_names_free(names);
    state_key_free(key);
    return rc;
}
