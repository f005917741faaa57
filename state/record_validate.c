/*
 * record_validate.c - the semantic rules a record must meet before a node accepts it, each
 * with its own message: name and domain syntax, which fields each kind carries, backend count
 * and addresses (backend_addr.c), versions and timestamps.
 *
 * The syntax checks run on normalized keys: state_name_normalize/state_fqdn_normalize fold
 * what a user typed, state_record_validate refuses a record whose key is not already in that
 * form (the signed bytes must be the one spelling every node compares).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "state/record_internal.h"

#define QUOTED_MAX 80 /* how much of an offending key an error message repeats */

enum label_problem {
    LABEL_OK,
    LABEL_EMPTY,
    LABEL_TOO_LONG,
    LABEL_BAD_CHAR,
    LABEL_UPPER,
    LABEL_LEADING_HYPHEN,
    LABEL_TRAILING_HYPHEN,
};

/* One DNS label, already folded or not: [a-z0-9-], 1..63, no '-' at either end. *bad gets
 * the offending position for LABEL_BAD_CHAR and LABEL_UPPER. */
static enum label_problem check_label(const char *s, size_t n, size_t *bad)
{
    if (n == 0)
        return LABEL_EMPTY;
    if (n > STATE_NAME_MAX)
        return LABEL_TOO_LONG;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')
            continue;
        *bad = i;
        return (c >= 'A' && c <= 'Z') ? LABEL_UPPER : LABEL_BAD_CHAR;
    }
    if (s[0] == '-')
        return LABEL_LEADING_HYPHEN;
    if (s[n - 1] == '-')
        return LABEL_TRAILING_HYPHEN;
    return LABEL_OK;
}

static void fold(const char *in, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] - 'A' + 'a') : in[i];
    out[n] = '\0';
}

/* ---- names -------------------------------------------------------------------------------- */

/* Checks a name label of n bytes; `shown` is what the message quotes (the user's spelling). */
static int check_name(const char *s, size_t n, const char *shown, size_t shown_len, char *err,
                      size_t errlen)
{
    char q[QUOTED_MAX], c[8];
    enum label_problem problem;
    size_t bad = 0;

    problem = n < STATE_NAME_MIN ? LABEL_EMPTY : check_label(s, n, &bad);
    if (problem == LABEL_OK)
        return 0;
    state_quote(shown, shown_len, q, sizeof(q));
    if (n < STATE_NAME_MIN) {
        state_errf(err, errlen, "name \"%s\" is too short: names are %d to %d characters", q,
                   STATE_NAME_MIN, STATE_NAME_MAX);
        return STATE_EINVAL;
    }
    switch (problem) {
    case LABEL_OK:
    case LABEL_EMPTY: /* reported above */
        return 0;
    case LABEL_TOO_LONG:
        state_errf(err, errlen, "name \"%s\" is too long: names are %d to %d characters", q,
                   STATE_NAME_MIN, STATE_NAME_MAX);
        break;
    case LABEL_BAD_CHAR:
        state_quote(s + bad, 1, c, sizeof(c));
        state_errf(err, errlen, "name \"%s\" has invalid character '%s': use a-z, 0-9 and '-'", q,
                   c);
        break;
    case LABEL_UPPER:
        state_errf(err, errlen, "name \"%s\" is not lowercase", q);
        break;
    case LABEL_LEADING_HYPHEN:
        state_errf(err, errlen, "name \"%s\" starts with '-'", q);
        break;
    case LABEL_TRAILING_HYPHEN:
        state_errf(err, errlen, "name \"%s\" ends with '-'", q);
        break;
    }
    return STATE_EINVAL;
}

int state_name_normalize(const char *in, char *out, char *err, size_t errlen)
{
    char tmp[STATE_FQDN_MAX + 1];
    size_t n = strnlen(in, STATE_FQDN_MAX);
    int rc;

    fold(in, n, tmp);
    rc = check_name(tmp, n, in, n, err, errlen);
    if (rc != 0)
        return rc;
    memcpy(out, tmp, n + 1);
    return 0;
}

/* ---- domains ------------------------------------------------------------------------------ */

static int check_fqdn(const char *s, size_t n, const char *shown, size_t shown_len, char *err,
                      size_t errlen)
{
    char q[QUOTED_MAX], lq[QUOTED_MAX], c[8];
    size_t start = 0, labels = 0, bad = 0;
    enum label_problem problem;
    bool numeric = false;

    state_quote(shown, shown_len, q, sizeof(q));
    if (n == 0) {
        state_errf(err, errlen, "fqdn is empty");
        return STATE_EINVAL;
    }
    if (n > STATE_FQDN_MAX) {
        state_errf(err, errlen, "fqdn \"%s\" is too long: at most %d characters", q,
                   STATE_FQDN_MAX);
        return STATE_EINVAL;
    }
    for (size_t i = 0; i <= n; i++) {
        const char *label = s + start;
        size_t len = i - start;

        if (i < n && s[i] != '.')
            continue;
        labels++;
        start = i + 1;
        problem = check_label(label, len, &bad);
        if (problem != LABEL_OK)
            state_quote(label, len, lq, sizeof(lq));
        switch (problem) {
        case LABEL_OK:
            break;
        case LABEL_EMPTY:
            state_errf(err, errlen, "fqdn \"%s\" has an empty label", q);
            return STATE_EINVAL;
        case LABEL_TOO_LONG:
            state_errf(err, errlen, "fqdn \"%s\": label \"%s\" is longer than %d characters", q, lq,
                       STATE_NAME_MAX);
            return STATE_EINVAL;
        case LABEL_BAD_CHAR:
            state_quote(label + bad, 1, c, sizeof(c));
            state_errf(err, errlen,
                       "fqdn \"%s\" has invalid character '%s': use a-z, 0-9, '-' and '.'", q, c);
            return STATE_EINVAL;
        case LABEL_UPPER:
            state_errf(err, errlen, "fqdn \"%s\" is not lowercase", q);
            return STATE_EINVAL;
        case LABEL_LEADING_HYPHEN:
            state_errf(err, errlen, "fqdn \"%s\": label \"%s\" starts with '-'", q, lq);
            return STATE_EINVAL;
        case LABEL_TRAILING_HYPHEN:
            state_errf(err, errlen, "fqdn \"%s\": label \"%s\" ends with '-'", q, lq);
            return STATE_EINVAL;
        }
        numeric = strspn(label, "0123456789") >= len;
    }
    if (labels < 2) {
        state_errf(err, errlen, "fqdn \"%s\" needs at least two labels, like www.example.org", q);
        return STATE_EINVAL;
    }
    /* no top-level domain is all digits: this is an IP address typed as a domain */
    if (numeric) {
        state_errf(err, errlen, "fqdn \"%s\" ends in a numeric label: IP addresses are not domains",
                   q);
        return STATE_EINVAL;
    }
    return 0;
}

int state_fqdn_normalize(const char *in, char *out, char *err, size_t errlen)
{
    char tmp[STATE_FQDN_MAX + 2];
    size_t n = strnlen(in, STATE_FQDN_MAX + 2), shown = n;
    int rc;

    /* "www.example.org." is the same domain written absolute */
    if (n > 0 && in[n - 1] == '.')
        n--;
    if (n > STATE_FQDN_MAX)
        return check_fqdn(in, n, in, shown, err, errlen);
    fold(in, n, tmp);
    rc = check_fqdn(tmp, n, in, shown, err, errlen);
    if (rc != 0)
        return rc;
    memcpy(out, tmp, n + 1);
    return 0;
}

/* Whether key equals domain or ends in "." + domain; the domain as configured may carry
 * upper case or a trailing dot. */
static bool under_domain(const char *key, const char *domain)
{
    size_t k = strlen(key), d = strlen(domain);

    if (d > 0 && domain[d - 1] == '.')
        d--;
    if (d == 0 || d > k)
        return false;
    if (strncasecmp(key + k - d, domain, d) != 0)
        return false;
    return k == d || key[k - d - 1] == '.';
}

/* ---- records ------------------------------------------------------------------------------ */

static int check_key(const struct state_record *rec, const struct state_validate_policy *pol,
                     char *err, size_t errlen)
{
    const char *name = rec->name;
    size_t n = strnlen(name, sizeof(rec->name));
    char q[QUOTED_MAX];
    bool fqdn;

    if (n == sizeof(rec->name)) {
        state_errf(err, errlen, "record name is not terminated");
        return STATE_EINVAL;
    }
    /* a release names whichever key it deletes: a label or a domain */
    fqdn = rec->kind == STATE_RECORD_FQDN ||
           (rec->kind == STATE_RECORD_RELEASE && memchr(name, '.', n) != NULL);
    if (!fqdn)
        return check_name(name, n, name, n, err, errlen);
    if (check_fqdn(name, n, name, n, err, errlen) != 0)
        return STATE_EINVAL;
    if (rec->kind == STATE_RECORD_FQDN && pol->domain != NULL && under_domain(name, pol->domain)) {
        state_quote(name, n, q, sizeof(q));
        state_errf(err, errlen,
                   "fqdn \"%s\" is within the gateway domain %s: names there are reserved, not "
                   "proxied as custom domains",
                   q, pol->domain);
        return STATE_EINVAL;
    }
    return 0;
}

static int check_times(const struct state_record *rec, const struct state_validate_policy *pol,
                       char *err, size_t errlen)
{
    uint64_t now = pol->now_ms != 0 ? pol->now_ms : state_now_ms();

    if (rec->version == 0) {
        state_errf(err, errlen, "version must be at least 1");
        return STATE_EINVAL;
    }
    if (rec->version > STATE_VERSION_MAX) {
        state_errf(err, errlen, "version %llu is above the highest, 2^53 (%llu)",
                   (unsigned long long)rec->version, (unsigned long long)STATE_VERSION_MAX);
        return STATE_EINVAL;
    }
    if (rec->reserved_at_ms > rec->issued_at_ms) {
        state_errf(err, errlen, "reserved_at_ms %llu is after issued_at_ms %llu",
                   (unsigned long long)rec->reserved_at_ms, (unsigned long long)rec->issued_at_ms);
        return STATE_EINVAL;
    }
    /* reserved_at <= issued_at, so bounding issued_at bounds both */
    if (rec->issued_at_ms > now && rec->issued_at_ms - now > STATE_FUTURE_SKEW_MS) {
        state_errf(err, errlen,
                   "issued_at_ms is %llu ms ahead of this node's clock (limit %d ms): check the "
                   "signer's clock",
                   (unsigned long long)(rec->issued_at_ms - now), STATE_FUTURE_SKEW_MS);
        return STATE_EINVAL;
    }
    return 0;
}

static int check_fields(const struct state_record *rec, char *err, size_t errlen)
{
    const char *kind = state_record_kind_name(rec->kind);

    switch (rec->kind) {
    case STATE_RECORD_RESERVE:
    case STATE_RECORD_RELEASE:
        if (rec->backend_count != 0) {
            state_errf(err, errlen, "a %s record carries no backends (got %u)", kind,
                       rec->backend_count);
            return STATE_EINVAL;
        }
        if (rec->tls_passthrough) {
            state_errf(err, errlen, "a %s record carries no tls_passthrough flag", kind);
            return STATE_EINVAL;
        }
        return 0;
    case STATE_RECORD_PROXY:
    case STATE_RECORD_FQDN:
        if (rec->backend_count < 1 || rec->backend_count > STATE_BACKENDS_MAX) {
            state_errf(err, errlen, "a %s record needs 1 to %d backends (got %u)", kind,
                       STATE_BACKENDS_MAX, rec->backend_count);
            return STATE_EINVAL;
        }
        return 0;
    }
    return STATE_EINVAL;
}

static int check_backends(const struct state_record *rec, const struct state_validate_policy *pol,
                          char *err, size_t errlen)
{
    for (unsigned i = 0; i < rec->backend_count; i++) {
        const struct state_backend *be = &rec->backends[i];
        int rc = state_backend_check(be, pol, err, errlen);

        if (rc != 0)
            return rc;
        for (unsigned j = 0; j < i; j++) {
            const struct state_backend *prev = &rec->backends[j];
            size_t alen = be->family == 4 ? 4 : 16;
            char text[64];

            if (prev->family == be->family && prev->port == be->port &&
                memcmp(prev->addr, be->addr, alen) == 0) {
                state_backend_format(be, rec->tls_passthrough, text);
                state_errf(err, errlen, "backend %s is listed twice", text);
                return STATE_EINVAL;
            }
        }
    }
    return 0;
}

int state_record_validate(const struct state_record *rec, const struct state_validate_policy *pol,
                          char *err, size_t errlen)
{
    static const struct state_validate_policy defaults;
    int rc;

    if (pol == NULL)
        pol = &defaults;
    if (!state_record_kind_valid((int)rec->kind)) {
        state_errf(err, errlen, "unknown record kind %d", (int)rec->kind);
        return STATE_EINVAL;
    }
    if ((rc = check_key(rec, pol, err, errlen)) != 0)
        return rc;
    if ((rc = check_times(rec, pol, err, errlen)) != 0)
        return rc;
    if ((rc = check_fields(rec, err, errlen)) != 0)
        return rc;
    return check_backends(rec, pol, err, errlen);
}
