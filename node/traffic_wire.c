/*
 * traffic_wire.c - the bytes of a node's traffic summary, as gossip carries it (item
 * "traffic:ID", version = seq). Fixed-width big-endian fields, every length checked:
 *
 *   u8 format (1) | u8 id length, id | u64 seq | u32 sample_ms | u32 names_total |
 *   u64 others_requests | u64 others_errors | u8 count |
 *   count x (u8 name length, name | u64 requests | u64 errors | u64 bytes_in | u64 bytes_out |
 *            u32 recent_requests | u32 recent_errors | u8 p99) |
 *   Ed25519 signature (64) over TRAFFIC_SIGN_DOMAIN followed by everything before it
 *
 * The whole item fits TRAFFIC_ITEM_MAX (1 KiB), which bounds what one member can make every
 * other member keep and lets it travel in a datagram (names beyond that are summed into
 * "others" by the sender).
 */
#include <stdio.h>
#include <string.h>

#include "node/traffic_internal.h"

#define TRAFFIC_FORMAT 1
#define TRAFFIC_HEAD_FIXED (1 + 1 + 8 + 4 + 4 + 8 + 8 + 1) /* without the id */
#define TRAFFIC_NAME_FIXED (1 + 8 * 4 + 4 + 4 + 1)         /* without the name */

struct wbuf {
    uint8_t *p; /* output */
    size_t len; /* written */
    size_t cap; /* room */
    bool full;  /* something did not fit */
};

static void put(struct wbuf *w, const void *src, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return;
    }
    memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_u(struct wbuf *w, uint64_t v, int bytes)
{
    uint8_t b[8];

    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(w, b, (size_t)bytes);
}

static size_t name_size(const struct traffic_name *n)
{
    return 1 + strlen(n->name) + TRAFFIC_NAME_FIXED - 1;
}

int traffic_summary_encode(struct traffic_summary *s, const struct state_key *key, uint8_t *buf,
                           size_t cap)
{
    uint8_t msg[sizeof(TRAFFIC_SIGN_DOMAIN) - 1 + TRAFFIC_ITEM_MAX];
    struct wbuf w = {.p = msg, .cap = sizeof(msg)};
    size_t idlen = strlen(s->id), room, dom = sizeof(TRAFFIC_SIGN_DOMAIN) - 1, listed = 0;
    char err[STATE_ERR_MAX];

    if (idlen == 0 || idlen > GOSSIP_ID_MAX || cap < STATE_SIGNATURE_LEN)
        return -1;
    /* what fits beside the head and the signature; the rest is summed into others */
    room = (cap > TRAFFIC_ITEM_MAX ? TRAFFIC_ITEM_MAX : cap) - STATE_SIGNATURE_LEN;
    if (room < TRAFFIC_HEAD_FIXED + idlen)
        return -1;
    room -= TRAFFIC_HEAD_FIXED + idlen;
    for (size_t i = 0; i < s->count; i++) {
        size_t need = name_size(&s->names[i]);
        if (listed < TRAFFIC_NAMES_MAX && strlen(s->names[i].name) <= STATE_FQDN_MAX &&
            need <= room) {
            room -= need;
            s->names[listed++] = s->names[i];
        } else {
            s->others_requests += s->names[i].requests;
            s->others_errors += s->names[i].errors;
        }
    }
    s->count = listed;
    put(&w, TRAFFIC_SIGN_DOMAIN, dom);
    put_u(&w, TRAFFIC_FORMAT, 1);
    put_u(&w, idlen, 1);
    put(&w, s->id, idlen);
    put_u(&w, s->seq, 8);
    put_u(&w, s->sample_ms, 4);
    put_u(&w, s->names_total, 4);
    put_u(&w, s->others_requests, 8);
    put_u(&w, s->others_errors, 8);
    put_u(&w, s->count, 1);
    for (size_t i = 0; i < s->count; i++) {
        const struct traffic_name *n = &s->names[i];
        put_u(&w, strlen(n->name), 1);
        put(&w, n->name, strlen(n->name));
        put_u(&w, n->requests, 8);
        put_u(&w, n->errors, 8);
        put_u(&w, n->bytes_in, 8);
        put_u(&w, n->bytes_out, 8);
        put_u(&w, n->recent_requests, 4);
        put_u(&w, n->recent_errors, 4);
        put_u(&w, n->p99, 1);
    }
    if (w.full || w.len - dom + STATE_SIGNATURE_LEN > cap ||
        state_sign_bytes(key, msg, w.len, buf + (w.len - dom), err, sizeof(err)) != 0)
        return -1;
    memcpy(buf, msg + dom, w.len - dom);
    return (int)(w.len - dom + STATE_SIGNATURE_LEN);
}

struct rbuf {
    const uint8_t *p; /* input */
    size_t len;       /* left */
    bool bad;         /* ran out */
};

static uint64_t get_u(struct rbuf *r, int bytes)
{
    uint64_t v = 0;

    if (r->bad || r->len < (size_t)bytes) {
        r->bad = true;
        return 0;
    }
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | r->p[i];
    r->p += bytes;
    r->len -= (size_t)bytes;
    return v;
}

/* Copies a length-prefixed string of allowed characters into out[cap]; false when bad. */
static bool get_text(struct rbuf *r, char *out, size_t cap, size_t max, const char *allowed)
{
    size_t n = (size_t)get_u(r, 1);

    if (r->bad || n == 0 || n > max || n >= cap || r->len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (r->p[i] == 0 || strchr(allowed, r->p[i]) == NULL)
            return false;
    memcpy(out, r->p, n);
    out[n] = '\0';
    r->p += n;
    r->len -= n;
    return true;
}

#define ID_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-"
#define NAME_CHARS "abcdefghijklmnopqrstuvwxyz0123456789.-"

int traffic_summary_decode(const uint8_t *buf, size_t len, struct traffic_summary *out, char *err,
                           size_t errlen)
{
    struct rbuf r = {.p = buf, .len = len};

    memset(out, 0, sizeof(*out));
    if (len > TRAFFIC_ITEM_MAX || len < STATE_SIGNATURE_LEN) {
        snprintf(err, errlen, "traffic summary of %zu bytes", len);
        return -1;
    }
    r.len -= STATE_SIGNATURE_LEN;
    if (get_u(&r, 1) != TRAFFIC_FORMAT) {
        snprintf(err, errlen, "traffic summary: unknown format");
        return -1;
    }
    if (!get_text(&r, out->id, sizeof(out->id), GOSSIP_ID_MAX, ID_CHARS)) {
        snprintf(err, errlen, "traffic summary: bad member id");
        return -1;
    }
    out->seq = get_u(&r, 8);
    out->sample_ms = (uint32_t)get_u(&r, 4);
    out->names_total = (uint32_t)get_u(&r, 4);
    out->others_requests = get_u(&r, 8);
    out->others_errors = get_u(&r, 8);
    out->count = (size_t)get_u(&r, 1);
    if (r.bad || out->count > TRAFFIC_NAMES_MAX) {
        snprintf(err, errlen, "traffic summary: truncated head or too many names");
        return -1;
    }
    for (size_t i = 0; i < out->count; i++) {
        struct traffic_name *n = &out->names[i];
        if (!get_text(&r, n->name, sizeof(n->name), STATE_FQDN_MAX, NAME_CHARS)) {
            snprintf(err, errlen, "traffic summary: bad name %zu", i);
            return -1;
        }
        n->requests = get_u(&r, 8);
        n->errors = get_u(&r, 8);
        n->bytes_in = get_u(&r, 8);
        n->bytes_out = get_u(&r, 8);
        n->recent_requests = (uint32_t)get_u(&r, 4);
        n->recent_errors = (uint32_t)get_u(&r, 4);
        n->p99 = (uint8_t)get_u(&r, 1);
        if (n->p99 > PROXY_LATENCY_BUCKETS)
            r.bad = true;
    }
    if (r.bad || r.len != 0) {
        snprintf(err, errlen, "traffic summary: %s",
                 r.bad ? "truncated or bad field" : "trailing bytes");
        return -1;
    }
    return 0;
}

int traffic_summary_verify(const uint8_t *buf, size_t len, const uint8_t pub[STATE_OWNER_LEN],
                           char *err, size_t errlen)
{
    uint8_t msg[sizeof(TRAFFIC_SIGN_DOMAIN) - 1 + TRAFFIC_ITEM_MAX];
    size_t dom = sizeof(TRAFFIC_SIGN_DOMAIN) - 1;

    if (len < STATE_SIGNATURE_LEN || len > TRAFFIC_ITEM_MAX) {
        snprintf(err, errlen, "traffic summary of %zu bytes", len);
        return -1;
    }
    memcpy(msg, TRAFFIC_SIGN_DOMAIN, dom);
    memcpy(msg + dom, buf, len - STATE_SIGNATURE_LEN);
    return state_verify_bytes("member", pub, msg, dom + len - STATE_SIGNATURE_LEN,
                              buf + len - STATE_SIGNATURE_LEN, err, errlen) == 0
               ? 0
               : -1;
}
