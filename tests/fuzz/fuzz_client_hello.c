/*
 * fuzz_client_hello.c - libFuzzer target for tls_hello_parse(), the first code to read bytes
 * from an HTTPS client. Besides memory safety (ASan/UBSan) it checks the contract the
 * listener relies on: an answer from the fixed set, a consumed size within the input, a
 * host name within limits, and the same answer for the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/tls_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tls_client_hello a, b;
    char err[TLS_ERR_MAX];
    int rc = tls_hello_parse(data, size, &a, err, sizeof(err));

    if (rc != TLS_HELLO_OK && rc != TLS_HELLO_NEED_MORE && rc != TLS_HELLO_NOT_TLS &&
        rc != TLS_HELLO_MALFORMED)
        abort();
    if (rc == TLS_HELLO_OK) {
        if (a.bytes == 0 || a.bytes > size || strlen(a.sni) > TLS_HOST_MAX ||
            a.alpn_count > TLS_ALPN_MAX || a.has_sni != (a.sni[0] != '\0'))
            abort();
        /* the hello alone must parse the same: the listener forwards exactly a.bytes */
        if (tls_hello_parse(data, a.bytes, &b, NULL, 0) != TLS_HELLO_OK ||
            strcmp(a.sni, b.sni) != 0)
            abort();
    }
    if (rc == TLS_HELLO_MALFORMED && err[0] == '\0')
        abort(); /* every refusal says why */
    return 0;
}
