/*
 * err_internal.h - the error-message helpers the TLS files of proxy/ share, so each
 * writes its "what failed: why" line into the caller's buffer the same way. Private to proxy/.
 */
#ifndef WEBGW_PROXY_ERR_INTERNAL_H
#define WEBGW_PROXY_ERR_INTERNAL_H

#include <stddef.h>

/*
 * proxy_errf - formats a message into err (when err is non-NULL and errlen > 0; truncated to
 * fit, always terminated) and returns code, so a failure path reads
 * "return proxy_errf(err, errlen, -EINVAL, ...)".
 */
int proxy_errf(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/*
 * proxy_ssl_reason - the reason string of the most recent error on this thread's OpenSSL
 * error queue, or "unknown error" when there is none; clears the queue so a later message
 * does not report a stale reason. The string is static, never freed.
 */
const char *proxy_ssl_reason(void);

#endif
