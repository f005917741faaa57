/*
 * record_internal.h - helpers shared by the record files of state/ (codec, signatures,
 * validation, backend addresses). Private to state/: the rest of the program includes state.h.
 */
#ifndef WEBGW_STATE_RECORD_INTERNAL_H
#define WEBGW_STATE_RECORD_INTERNAL_H

#include <stdarg.h>

#include "state/state.h"

/* Version number leading every encoded body; a decoder refuses any other. */
#define STATE_RECORD_FORMAT 1

/* Prepended to the body before signing so a record signature can never be replayed as the
 * signature of another message type signed by the same key. */
#define STATE_RECORD_SIGN_DOMAIN "webgw-record-v1"
#define STATE_RECORD_SIGN_DOMAIN_LEN 16 /* including the terminating NUL */

/* Largest body state_record_encode_body can produce: 9-element array, longest name, 16
 * IPv6 backends. Checked against STATE_RECORD_MAX_BYTES at compile time in record_codec.c. */
#define STATE_RECORD_BODY_MAX 1024

/* Writes a printf-style message into err[errlen] when err is not NULL. */
void state_errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies in[len] into out[outlen] as a quoted-safe string: printable ASCII is kept, other
 * bytes become \xHH, and the result is cut with "..." when too long. Untrusted names go into
 * log lines and HTTP answers through this. */
void state_quote(const char *in, size_t len, char *out, size_t outlen);

/* Whether a record kind is one of the four known kinds. */
int state_record_kind_valid(int kind);

#endif /* WEBGW_STATE_RECORD_INTERNAL_H */
