/*
 * fuzz_witness_decode.c - libFuzzer target for the witness decoders (state/witness.c): the
 * gossip bundle (a signed record and its witnesses), a bare witness, and the store's witness
 * entry. The first input byte picks the decoder. Besides memory safety it checks the contract:
 * a refusal says why; an accepted input is the canonical encoding of what was decoded
 * (re-encoding gives the same bytes) and holds at most STATE_WITNESSES_MAX witnesses. Accepted
 * bundles then go the way gossip takes them: signature checks (which must refuse without
 * crashing) and a merge of the record and every witness into a witnessing table, whose view
 * must then name a holder only among live claims.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void merge_bundle(const struct state_record *rec, const struct state_witness *w, size_t n,
                         unsigned faults)
{
    struct state_names *names = state_names_new();
    struct state_name_view v;
    char err[STATE_ERR_MAX];

    if (names == NULL)
        abort();
    state_names_set_witnessing(names, faults % 3, 1 + faults % 5);
    (void)state_record_verify(rec, err, sizeof(err));
    if (state_names_merge(names, rec, NULL) < 0)
        goto done;
    for (size_t i = 0; i < n; i++) {
        int rc;

        err[0] = '\0';
        if (state_witness_verify(&w[i], rec->name, rec->owner, err, sizeof(err)) != 0 &&
            err[0] == '\0')
            abort();
        rc = state_names_witness(names, rec->name, rec->owner, &w[i], NULL);
        if (rc != 1 && rc != STATE_ESTALE)
            abort();
    }
    if (state_names_get(names, rec->name, &v) == 0 && v.held &&
        v.record.kind == STATE_RECORD_RELEASE)
        abort();
done:
    state_names_free(names);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t again[STATE_BUNDLE_MAX_BYTES];
    struct state_witness w[STATE_WITNESSES_MAX];
    struct state_record rec;
    uint8_t owner[STATE_OWNER_LEN];
    char err[STATE_ERR_MAX] = "", name[STATE_FQDN_MAX + 1];
    size_t n = 0;
    int len;

    if (size < 1)
        return 0;
    switch (data[0] % 3) {
    case 0:
        if (state_bundle_decode(data + 1, size - 1, &rec, w, &n, err, sizeof(err)) != 0) {
            if (err[0] == '\0' || n != 0)
                abort();
            return 0;
        }
        if (n > STATE_WITNESSES_MAX)
            abort();
        len = state_bundle_encode(&rec, w, n, again, sizeof(again));
        if (len < 0 || (size_t)len != size - 1 || memcmp(again, data + 1, size - 1) != 0)
            abort();
        merge_bundle(&rec, w, n, data[0] / 3);
        return 0;
    case 1:
        if (state_witness_decode(data + 1, size - 1, &w[0], err, sizeof(err)) != 0) {
            if (err[0] == '\0')
                abort();
            return 0;
        }
        len = state_witness_encode(&w[0], again, sizeof(again));
        if (len < 0 || (size_t)len != size - 1 || memcmp(again, data + 1, size - 1) != 0)
            abort();
        return 0;
    default:
        if (state_witness_entry_decode(data + 1, size - 1, name, owner, &w[0], err, sizeof(err)) !=
            0) {
            if (err[0] == '\0')
                abort();
            return 0;
        }
        if (strnlen(name, sizeof(name)) == sizeof(name))
            abort();
        len = state_witness_entry_encode(name, owner, &w[0], again, sizeof(again));
        if (len < 0 || (size_t)len != size - 1 || memcmp(again, data + 1, size - 1) != 0)
            abort();
        return 0;
    }
}
