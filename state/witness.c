/*
 * witness.c - gateway countersignatures of claims ("witnesses"): what a witness signs, its
 * canonical msgpack encoding, and the two containers it travels in: the gossip bundle (a
 * signed record with its owner's witnesses) and the store entry (one witness with its key and
 * owner).
 *
 * Witnesses live beside the owner's signed record, never inside it: the owner signs the
 * record, each gateway signs its own observation of it. So a witness can be added to a record
 * nobody may change, and an owner cannot fabricate one without a gateway's key.
 *
 * Signed message: "webgw-witness-v1\0" || u8 name length || name || owner (32) ||
 * be64 version || be64 claim_at_ms || u8 released || be64 time_ms. Every field has a fixed
 * size or a length prefix, so two different witnesses never sign the same bytes.
 *
 * The encodings follow record_codec.c's rules: fixed positions, msgpack's shortest forms, a
 * strict reader that never allocates, and a re-encode that must give the input back.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "state/record_internal.h"

#define WITNESS_SIGN_DOMAIN "webgw-witness-v1"
#define WITNESS_SIGN_DOMAIN_LEN 17 /* including the terminating NUL */
#define WITNESS_FIELDS 6
#define WITNESS_MSG_MAX (WITNESS_SIGN_DOMAIN_LEN + 1 + STATE_FQDN_MAX + STATE_OWNER_LEN + 25)
/* array, key, three integers of at most 9 bytes, a bool, signature */
#define WITNESS_ENCODED_MAX (1 + 2 + STATE_OWNER_LEN + 3 * 9 + 1 + 2 + STATE_SIGNATURE_LEN)
/* the longest signed record: array, bin 16 header and body, bin 8 header and signature */
#define RECORD_ENCODED_MAX (1 + 3 + STATE_RECORD_BODY_MAX + 2 + STATE_SIGNATURE_LEN)

_Static_assert(WITNESS_ENCODED_MAX <= STATE_WITNESS_MAX_BYTES, "a witness fits its limit");
_Static_assert(1 + 3 + RECORD_ENCODED_MAX + 3 + STATE_WITNESSES_MAX * WITNESS_ENCODED_MAX <=
                   STATE_BUNDLE_MAX_BYTES,
               "a record with every witness kept must fit a bundle");

/* ---- signing ---------------------------------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static size_t witness_message(const struct state_witness *w, const char *name,
                              const uint8_t owner[STATE_OWNER_LEN], uint8_t msg[WITNESS_MSG_MAX])
{
    size_t n = strnlen(name, STATE_FQDN_MAX), off = 0;

    memcpy(msg, WITNESS_SIGN_DOMAIN, WITNESS_SIGN_DOMAIN_LEN);
    off = WITNESS_SIGN_DOMAIN_LEN;
    msg[off++] = (uint8_t)n;
    memcpy(msg + off, name, n);
    off += n;
    memcpy(msg + off, owner, STATE_OWNER_LEN);
    off += STATE_OWNER_LEN;
    put_be64(msg + off, w->version);
    put_be64(msg + off + 8, w->claim_at_ms);
    msg[off + 16] = w->released ? 1 : 0;
    put_be64(msg + off + 17, w->time_ms);
    return off + 25;
}

int state_witness_sign(struct state_witness *w, const struct state_key *key,
                       const struct state_record *rec, uint64_t time_ms, char *err, size_t errlen)
{
    uint8_t msg[WITNESS_MSG_MAX];
    size_t n;

    memset(w, 0, sizeof(*w));
    state_key_owner(key, w->key);
    w->version = rec->version;
    w->claim_at_ms = rec->reserved_at_ms;
    w->released = rec->kind == STATE_RECORD_RELEASE;
    w->time_ms = time_ms;
    n = witness_message(w, rec->name, rec->owner, msg);
    return state_sign_bytes(key, msg, n, w->signature, err, errlen);
}

int state_witness_verify(const struct state_witness *w, const char *name,
                         const uint8_t owner[STATE_OWNER_LEN], char *err, size_t errlen)
{
    uint8_t msg[WITNESS_MSG_MAX];
    size_t n = witness_message(w, name, owner, msg);

    return state_verify_bytes("witness", w->key, msg, n, w->signature, err, errlen);
}

/* ---- encoding ----------------------------------------------------------------------------- */

static void pack_witness(msgpack_packer *pk, const struct state_witness *w)
{
    msgpack_pack_array(pk, WITNESS_FIELDS);
    msgpack_pack_bin_with_body(pk, w->key, STATE_OWNER_LEN);
    msgpack_pack_uint64(pk, w->version);
    msgpack_pack_uint64(pk, w->claim_at_ms);
    if (w->released)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    msgpack_pack_uint64(pk, w->time_ms);
    msgpack_pack_bin_with_body(pk, w->signature, STATE_SIGNATURE_LEN);
}

int state_witness_encode(const struct state_witness *w, uint8_t *buf, size_t cap)
{
    struct state_out_buf out = {.buf = buf, .cap = cap};
    msgpack_packer pk;

    msgpack_packer_init(&pk, &out, state_out_write);
    pack_witness(&pk, w);
    return out.overflow ? STATE_ETOOBIG : (int)out.len;
}

int state_bundle_encode(const struct state_record *rec, const struct state_witness *w, size_t count,
                        uint8_t *buf, size_t cap)
{
    uint8_t record[STATE_RECORD_MAX_BYTES];
    struct state_out_buf out = {.buf = buf, .cap = cap};
    msgpack_packer pk;
    int n;

    if (count > STATE_WITNESSES_MAX)
        return STATE_EINVAL;
    n = state_record_encode(rec, record, sizeof(record));
    if (n < 0)
        return n;
    msgpack_packer_init(&pk, &out, state_out_write);
    msgpack_pack_array(&pk, 2);
    msgpack_pack_bin_with_body(&pk, record, (size_t)n);
    msgpack_pack_array(&pk, count);
    for (size_t i = 0; i < count; i++)
        pack_witness(&pk, &w[i]);
    return out.overflow ? STATE_ETOOBIG : (int)out.len;
}

int state_witness_entry_encode(const char *name, const uint8_t owner[STATE_OWNER_LEN],
                               const struct state_witness *w, uint8_t *buf, size_t cap)
{
    struct state_out_buf out = {.buf = buf, .cap = cap};
    msgpack_packer pk;
    size_t n = strnlen(name, STATE_FQDN_MAX + 1);

    if (n == 0 || n > STATE_FQDN_MAX)
        return STATE_EINVAL;
    msgpack_packer_init(&pk, &out, state_out_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_str_with_body(&pk, name, n);
    msgpack_pack_bin_with_body(&pk, owner, STATE_OWNER_LEN);
    pack_witness(&pk, w);
    return out.overflow ? STATE_ETOOBIG : (int)out.len;
}

/* ---- decoding ----------------------------------------------------------------------------- */

static int read_fixed(struct state_reader *r, const char *field, uint8_t *out, size_t want)
{
    const uint8_t *p;
    size_t n;
    int rc;

    r->field = field;
    if ((rc = state_read_bytes(r, false, &p, &n)) != 0)
        return rc;
    if (n != want) {
        state_errf(r->err, r->errlen, "%s field %s is %zu bytes, expected %zu", r->what, field, n,
                   want);
        return STATE_EINVAL;
    }
    memcpy(out, p, want);
    return 0;
}

static int read_witness(struct state_reader *r, struct state_witness *w)
{
    uint64_t count;
    int rc;

    memset(w, 0, sizeof(*w));
    r->field = "witness";
    if ((rc = state_read_array(r, &count)) != 0)
        return rc;
    if (count != WITNESS_FIELDS) {
        state_errf(r->err, r->errlen, "witness has %llu fields, expected %d",
                   (unsigned long long)count, WITNESS_FIELDS);
        return STATE_EINVAL;
    }
    if ((rc = read_fixed(r, "key", w->key, STATE_OWNER_LEN)) != 0)
        return rc;
    r->field = "version";
    if ((rc = state_read_uint(r, &w->version)) != 0)
        return rc;
    r->field = "claim_at_ms";
    if ((rc = state_read_uint(r, &w->claim_at_ms)) != 0)
        return rc;
    r->field = "released";
    if ((rc = state_read_bool(r, &w->released)) != 0)
        return rc;
    r->field = "time_ms";
    if ((rc = state_read_uint(r, &w->time_ms)) != 0)
        return rc;
    return read_fixed(r, "signature", w->signature, STATE_SIGNATURE_LEN);
}

/* The whole input was read, and it is the one encoding of what was read. */
static int finish(struct state_reader *r, const uint8_t *again, int n)
{
    if (r->off != r->len) {
        state_errf(r->err, r->errlen, "%s has %zu trailing bytes", r->what, r->len - r->off);
        return STATE_EINVAL;
    }
    if (n < 0 || (size_t)n != r->len || memcmp(again, r->p, r->len) != 0) {
        state_errf(r->err, r->errlen, "%s is not in canonical encoding", r->what);
        return STATE_EINVAL;
    }
    return 0;
}

int state_witness_decode(const uint8_t *buf, size_t len, struct state_witness *out, char *err,
                         size_t errlen)
{
    struct state_reader r = {.p = buf, .len = len, .what = "witness", .err = err, .errlen = errlen};
    uint8_t again[STATE_WITNESS_MAX_BYTES];
    int rc;

    if (len > STATE_WITNESS_MAX_BYTES) {
        state_errf(err, errlen, "witness is %zu bytes, over the %d-byte limit", len,
                   STATE_WITNESS_MAX_BYTES);
        return STATE_ETOOBIG;
    }
    rc = read_witness(&r, out);
    if (rc == 0)
        rc = finish(&r, again, state_witness_encode(out, again, sizeof(again)));
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int state_bundle_decode(const uint8_t *buf, size_t len, struct state_record *rec,
                        struct state_witness *w, size_t *count, char *err, size_t errlen)
{
    struct state_reader r = {.p = buf, .len = len, .what = "bundle", .err = err, .errlen = errlen};
    const uint8_t *record;
    size_t record_len;
    uint64_t n;
    uint8_t *again = NULL;
    int rc;

    *count = 0;
    if (len > STATE_BUNDLE_MAX_BYTES) {
        state_errf(err, errlen, "bundle is %zu bytes, over the %d-byte limit", len,
                   STATE_BUNDLE_MAX_BYTES);
        return STATE_ETOOBIG;
    }
    r.field = "bundle";
    if ((rc = state_read_array(&r, &n)) != 0)
        return rc;
    if (n != 2) {
        state_errf(err, errlen, "bundle has %llu parts, expected 2 (record, witnesses)",
                   (unsigned long long)n);
        return STATE_EINVAL;
    }
    r.field = "record";
    if ((rc = state_read_bytes(&r, false, &record, &record_len)) != 0)
        return rc;
    if ((rc = state_record_decode(record, record_len, rec, err, errlen)) != 0)
        return rc;
    r.field = "witnesses";
    if ((rc = state_read_array(&r, &n)) != 0)
        return rc;
    if (n > STATE_WITNESSES_MAX) {
        state_errf(err, errlen, "bundle has %llu witnesses, over the limit of %d",
                   (unsigned long long)n, STATE_WITNESSES_MAX);
        return STATE_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((rc = read_witness(&r, &w[i])) != 0)
            return rc;
    again = malloc(STATE_BUNDLE_MAX_BYTES);
    if (again == NULL)
        return STATE_ENOMEM;
    rc = finish(&r, again, state_bundle_encode(rec, w, (size_t)n, again, STATE_BUNDLE_MAX_BYTES));
    free(again);
    if (rc == 0)
        *count = (size_t)n;
    return rc;
}

int state_witness_entry_decode(const uint8_t *buf, size_t len, char *name,
                               uint8_t owner[STATE_OWNER_LEN], struct state_witness *w, char *err,
                               size_t errlen)
{
    struct state_reader r = {
        .p = buf, .len = len, .what = "witness entry", .err = err, .errlen = errlen};
    uint8_t again[STATE_FQDN_MAX + 64 + STATE_WITNESS_MAX_BYTES];
    uint64_t n;
    int rc;

    if (len > sizeof(again)) {
        state_errf(err, errlen, "witness entry is %zu bytes, over the %zu-byte limit", len,
                   sizeof(again));
        return STATE_ETOOBIG;
    }
    r.field = "witness entry";
    if ((rc = state_read_array(&r, &n)) != 0)
        return rc;
    if (n != 3) {
        state_errf(err, errlen, "witness entry has %llu parts, expected 3 (name, owner, witness)",
                   (unsigned long long)n);
        return STATE_EINVAL;
    }
    if ((rc = state_read_name(&r, "witness entry", name)) != 0)
        return rc;
    if ((rc = read_fixed(&r, "owner", owner, STATE_OWNER_LEN)) != 0)
        return rc;
    if ((rc = read_witness(&r, w)) != 0)
        return rc;
    return finish(&r, again, state_witness_entry_encode(name, owner, w, again, sizeof(again)));
}
