/*
 * fuzz_http1.c - libFuzzer target for the proxy's HTTP/1.1 parser and request rewriting:
 * any input must parse without a crash, and an accepted request must survive the gateway's
 * rewrite intact (the property of tests/proxy/http1_roundtrip.h). Aborts with the reason.
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/proxy/http1_roundtrip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = http1_roundtrip_check(data, size);
    if (why != NULL) {
        fprintf(stderr, "http1 round trip: %s\n", why);
        abort();
    }
    return 0;
}
