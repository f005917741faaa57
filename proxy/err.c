/*
 * err.c - the error-message helpers of err_internal.h: one formatter for the caller's error
 * buffer and one reader of the OpenSSL error queue, shared by the TLS files.
 */
#include "proxy/err_internal.h"

#include <stdarg.h>
#include <stdio.h>

#include <openssl/err.h>

int proxy_errf(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *proxy_ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}
