/*
 * fuzz_record_decode.c - libFuzzer target for state_record_decode(), the first code to read a
 * record from the API or a gossip packet. Besides memory safety (ASan/UBSan) it checks the
 * contract signatures rely on: a refusal always says why, and an accepted input is the one
 * canonical encoding of what was decoded (re-encoding gives the same bytes). Accepted records
 * then go through validation and signature verification, which must refuse without crashing.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct state_backend own[] = {{.family = 4, .addr = {10, 0, 0, 1}, .port = 0}};
    const struct state_validate_policy pol = {
        .own_addrs = own, .own_addr_count = 1, .now_ms = 1700000000000ULL, .domain = "localhost"};
    uint8_t again[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX] = "";
    struct state_record rec;
    int n;

    if (state_record_decode(data, size, &rec, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
        return 0;
    }
    n = state_record_encode(&rec, again, sizeof(again));
    if (n < 0 || (size_t)n != size || memcmp(again, data, size) != 0)
        abort();
    if (strnlen(rec.name, sizeof(rec.name)) == sizeof(rec.name) ||
        rec.backend_count > STATE_BACKENDS_MAX)
        abort();
    err[0] = '\0';
    if (state_record_validate(&rec, &pol, err, sizeof(err)) != 0 && err[0] == '\0')
        abort();
    err[0] = '\0';
    if (state_record_verify(&rec, err, sizeof(err)) != 0 && err[0] == '\0')
        abort();
    return 0;
}
