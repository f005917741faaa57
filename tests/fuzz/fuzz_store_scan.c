/*
 * fuzz_store_scan.c - libFuzzer target for what a node reads from its data dir at start: the
 * entry scanner of records.log / records.snapshot (store_scan) and the merge of every record
 * it yields. Besides memory safety it checks the recovery contract: the scanner stops exactly
 * at the end or names why it stopped, the cut point is never past the input, and scanning the
 * kept prefix again is clean and yields the same entries. With at most
 * STATE_CLAIMS_PER_NAME_MAX entries (so no key can reach the abuse bound) merging them forward
 * and backward must give the same digest: the merge is order-independent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/store_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 64

struct collected {
    struct state_record recs[MAX_ENTRIES]; /* decoded records, in file order */
    size_t count;                          /* entries decoded */
};

static int collect(const uint8_t *rec, size_t len, void *ctx)
{
    struct collected *c = ctx;
    char err[STATE_ERR_MAX] = "";

    if (c->count == MAX_ENTRIES)
        return 0;
    if (state_record_decode(rec, len, &c->recs[c->count], err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
        return STORE_SCAN_REJECTED;
    }
    c->count++;
    return 0;
}

static void check_scan(const uint8_t *data, size_t size)
{
    static struct collected first, again;
    struct state_names *fwd, *bwd;
    enum store_scan_stop stop;
    size_t good = 0, good2 = 0;

    first.count = 0;
    again.count = 0;
    stop = store_scan(data, size, collect, &first, &good);
    if (good > size || (stop == STORE_SCAN_END) != (good == size))
        abort();
    if (store_scan(data, good, collect, &again, &good2) != STORE_SCAN_END || good2 != good)
        abort();
    if (again.count != first.count)
        abort();
    for (size_t i = 0; i < first.count; i++) {
        uint8_t x[STATE_RECORD_MAX_BYTES], y[STATE_RECORD_MAX_BYTES];
        int nx = state_record_encode(&first.recs[i], x, sizeof(x));
        int ny = state_record_encode(&again.recs[i], y, sizeof(y));

        if (nx <= 0 || nx != ny || memcmp(x, y, (size_t)nx) != 0)
            abort();
    }

    fwd = state_names_new();
    bwd = state_names_new();
    if (fwd == NULL || bwd == NULL)
        abort();
    for (size_t i = 0; i < first.count; i++) {
        int a = state_names_merge(fwd, &first.recs[i], NULL);
        int b = state_names_merge(bwd, &first.recs[first.count - 1 - i], NULL);

        /* decoded records always have an encoding, so merge takes or ignores them */
        if ((a != 1 && a != STATE_ESTALE) || (b != 1 && b != STATE_ESTALE))
            abort();
    }
    if (first.count <= STATE_CLAIMS_PER_NAME_MAX &&
        state_names_digest(fwd) != state_names_digest(bwd))
        abort();
    state_names_free(fwd);
    state_names_free(bwd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t fixed[65536];
    size_t off = 0;

    check_scan(data, size);
    /* again with every checksum made right, so mutated record bytes get past the checksum and
     * reach the decoder and the merge */
    if (size > sizeof(fixed))
        return 0;
    memcpy(fixed, data, size);
    while (size - off >= STORE_ENTRY_HEADER) {
        uint32_t len = (uint32_t)fixed[off] | (uint32_t)fixed[off + 1] << 8 |
                       (uint32_t)fixed[off + 2] << 16 | (uint32_t)fixed[off + 3] << 24;
        uint32_t crc;

        if (len == 0 || len > STATE_RECORD_MAX_BYTES || size - off - STORE_ENTRY_HEADER < len)
            break;
        crc = store_crc32c(0, fixed + off, 4);
        crc = store_crc32c(crc, fixed + off + STORE_ENTRY_HEADER, len);
        for (int i = 0; i < 4; i++)
            fixed[off + 4 + i] = (uint8_t)(crc >> (8 * i));
        off += STORE_ENTRY_HEADER + len;
    }
    check_scan(fixed, size);
    return 0;
}
