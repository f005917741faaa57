/*
 * acme_err.c - the error-message helpers of acme_internal.h: one formatter for the caller's
 * error buffer and one reader of the OpenSSL error queue, so every acme/ file writes its
 * "what failed: why" line the same way (the same convention as proxy/err.c, kept apart so
 * acme/ depends on nothing of webgw).
 */
#include "acme/acme_internal.h"

#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

int acme_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return code;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return code;
}

const char *acme_ssl_reason(void)
{
    unsigned long last = ERR_peek_last_error();
    const char *reason = last != 0 ? ERR_reason_error_string(last) : NULL;

    ERR_clear_error();
    return reason != NULL ? reason : "unknown error";
}
