/*
 * http1_roundtrip.h - one property of the proxy's HTTP/1.1 code, shared by the cmocka test
 * (test_http1_roundtrip.c, seeded mutations) and the libFuzzer target (tests/fuzz):
 *
 *   for any bytes, parsing never crashes; when a request head is accepted, the head the
 *   gateway writes for the backend parses again to the same method, origin-form target, Host
 *   and body framing, carries no hop-by-hop field, and exactly one X-Forwarded-For; and the
 *   body bytes after the head are decoded the same way whether they arrive at once or one
 *   byte at a time.
 *
 * http1_roundtrip_check() returns 0 when the property holds and a short reason otherwise.
 */
#ifndef WEBGW_TESTS_PROXY_HTTP1_ROUNDTRIP_H
#define WEBGW_TESTS_PROXY_HTTP1_ROUNDTRIP_H

#include <stddef.h>
#include <stdint.h>

const char *http1_roundtrip_check(const uint8_t *data, size_t len);

#endif
