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

/* A cursor over untrusted msgpack bytes (record_codec.c): the strict, non-allocating reader
 * the record and witness decoders share. `what` and `field` name the place for messages. */
struct state_reader {
    const uint8_t *p;  /* input */
    size_t len;        /* its length */
    size_t off;        /* next byte to read */
    const char *what;  /* "record", "witness": which layer the offsets refer to */
    const char *field; /* field being read */
    char *err;         /* caller's message buffer (may be NULL) */
    size_t errlen;     /* its size */
};
int state_read_uint(struct state_reader *r, uint64_t *v);
int state_read_bool(struct state_reader *r, bool *v);
int state_read_array(struct state_reader *r, uint64_t *count);
/* A str (is_str) or bin header; *data points at its bytes inside the input. */
int state_read_bytes(struct state_reader *r, bool is_str, const uint8_t **data, size_t *n);
/* Reads a key (str of wire name bytes, at most STATE_FQDN_MAX) into out[STATE_FQDN_MAX + 1];
 * messages start with `who` ("record"). */
int state_read_name(struct state_reader *r, const char *who, char *out);

/* A bounded output buffer for msgpack-c's packer; overflow is remembered, not written. */
struct state_out_buf {
    uint8_t *buf;  /* destination */
    size_t cap;    /* its size */
    size_t len;    /* bytes written */
    bool overflow; /* a write did not fit */
};
int state_out_write(void *data, const char *bytes, size_t n); /* msgpack_packer_write */

/* Whether a record kind is one of the four known kinds. */
int state_record_kind_valid(int kind);

#endif /* WEBGW_STATE_RECORD_INTERNAL_H */
