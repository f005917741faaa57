/*
 * record_fixtures.h - sample records for the record tests (test_record_*.c): one builder per
 * kind, so each test states only the field it is about.
 */
#ifndef WEBGW_TEST_RECORD_FIXTURES_H
#define WEBGW_TEST_RECORD_FIXTURES_H

#include <arpa/inet.h>
#include <string.h>

#include "state/state.h"

#define FIXTURE_NOW_MS 1700000000000ULL /* a fixed "now" so tests never read the clock */

static inline struct state_backend fixture_backend(const char *ip, uint16_t port)
{
    struct state_backend be;

    memset(&be, 0, sizeof(be));
    if (inet_pton(AF_INET, ip, be.addr) == 1) {
        be.family = 4;
    } else {
        inet_pton(AF_INET6, ip, be.addr);
        be.family = 6;
    }
    be.port = port;
    return be;
}

static inline struct state_record fixture_record(enum state_record_kind kind, const char *name)
{
    struct state_record rec;

    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    strcpy(rec.name, name);
    for (int i = 0; i < STATE_OWNER_LEN; i++)
        rec.owner[i] = (uint8_t)(0xa0 + i);
    rec.version = 7;
    rec.reserved_at_ms = FIXTURE_NOW_MS - 60000;
    rec.issued_at_ms = FIXTURE_NOW_MS - 1000;
    for (int i = 0; i < STATE_SIGNATURE_LEN; i++)
        rec.signature[i] = (uint8_t)i;
    if (kind == STATE_RECORD_PROXY || kind == STATE_RECORD_FQDN) {
        rec.backend_count = 2;
        rec.backends[0] = fixture_backend("10.1.2.3", 8080);
        rec.backends[1] = fixture_backend("200:1234::5", 443);
    }
    return rec;
}

#endif /* WEBGW_TEST_RECORD_FIXTURES_H */
