/*
 * bench_fill_names.c - a data dir holding N proxy names for the daemon, for tests/bench/
 * report.sh's "1M names routed" measurement (issue 14): names app-0000000 .. app-<N-1>, each
 * with one backend, written straight into the store and compacted into a snapshot, so that
 * `webgw --data-dir DIR` starts with N routes. Signatures are filler: the snapshot load and
 * the merge do not verify them (the API and gossip did, for records that came that way).
 *
 *   bench_fill_names DIR N IP:PORT
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

int main(int argc, char **argv)
{
    char report[STATE_ERR_MAX], err[STATE_ERR_MAX], ip[64];
    struct state_record rec;
    struct in_addr a;
    if (argc != 4 || sscanf(argv[3], "%63[^:]:", ip) != 1 || inet_pton(AF_INET, ip, &a) != 1 ||
        strchr(argv[3], ':') == NULL) {
        fprintf(stderr, "usage: bench_fill_names DIR N IPv4:PORT\n");
        return 2;
    }
    long n = atol(argv[2]);
    unsigned port = (unsigned)atoi(strchr(argv[3], ':') + 1);
    struct state_names *names = state_names_new();
    for (long i = 0; i < n; i++) {
        memset(&rec, 0, sizeof(rec));
        rec.kind = STATE_RECORD_PROXY;
        snprintf(rec.name, sizeof(rec.name), "app-%07ld", i);
        for (int b = 0; b < STATE_OWNER_LEN; b++)
            rec.owner[b] = (uint8_t)(i % 64 + b);
        rec.version = 1;
        rec.reserved_at_ms = 1700000000000ULL + (uint64_t)i;
        rec.issued_at_ms = rec.reserved_at_ms + 1000;
        rec.backend_count = 1;
        rec.backends[0].family = 4;
        memcpy(rec.backends[0].addr, &a, 4);
        rec.backends[0].port = (uint16_t)port;
        for (int b = 0; b < STATE_SIGNATURE_LEN; b++)
            rec.signature[b] = (uint8_t)(i * 7 + b);
        if (state_names_merge(names, &rec, NULL) != 1) {
            fprintf(stderr, "bench_fill_names: merge of record %ld failed\n", i);
            return 1;
        }
    }
    struct state_store *store =
        state_store_open(argv[1], names, report, sizeof(report), err, sizeof(err));
    if (store == NULL || state_store_compact(store, names, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_fill_names: %s\n", err);
        return 1;
    }
    state_store_close(store);
    state_names_free(names);
    printf("%ld names in %s\n", n, argv[1]);
    return 0;
}
