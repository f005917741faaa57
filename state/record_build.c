/*
 * record_build.c - turns what a user typed (a name or domain, backend URLs, a flag) into an
 * unsigned record. One builder for the CLI, the API and the tests, so a name typed "MyApp" or
 * a backend typed "http://10.0.0.1:80/" becomes the same record everywhere.
 */
#include <string.h>

#include "state/record_internal.h"

int state_record_build(struct state_record *rec, enum state_record_kind kind, const char *key,
                       const char *const *backends, size_t backend_count, bool tls_passthrough,
                       uint64_t now_ms, char *err, size_t errlen)
{
    bool wants_backends = kind == STATE_RECORD_PROXY || kind == STATE_RECORD_FQDN;
    const char *what = state_record_kind_name(kind);
    bool fqdn;
    int rc;

    memset(rec, 0, sizeof(*rec));
    if (!state_record_kind_valid((int)kind)) {
        state_errf(err, errlen, "unknown record kind %d", (int)kind);
        return STATE_EINVAL;
    }
    fqdn = kind == STATE_RECORD_FQDN || (kind == STATE_RECORD_RELEASE && strchr(key, '.') != NULL);
    rc = fqdn ? state_fqdn_normalize(key, rec->name, err, errlen)
              : state_name_normalize(key, rec->name, err, errlen);
    if (rc != 0)
        goto fail;
    if (!wants_backends && backend_count != 0) {
        state_errf(err, errlen, "a %s record carries no backends (got %zu)", what, backend_count);
        goto fail;
    }
    if (!wants_backends && tls_passthrough) {
        state_errf(err, errlen, "a %s record carries no tls_passthrough flag", what);
        goto fail;
    }
    if (wants_backends && (backend_count < 1 || backend_count > STATE_BACKENDS_MAX)) {
        state_errf(err, errlen, "a %s record needs 1 to %d backends (got %zu)", what,
                   STATE_BACKENDS_MAX, backend_count);
        goto fail;
    }
    for (size_t i = 0; i < backend_count; i++) {
        rc = state_backend_parse(backends[i], tls_passthrough, &rec->backends[i], err, errlen);
        if (rc != 0)
            goto fail;
    }
    rec->kind = kind;
    rec->backend_count = (uint8_t)backend_count;
    rec->tls_passthrough = tls_passthrough;
    rec->version = now_ms;
    rec->reserved_at_ms = now_ms;
    rec->issued_at_ms = now_ms;
    return 0;

fail:
    memset(rec, 0, sizeof(*rec));
    return STATE_EINVAL;
}
