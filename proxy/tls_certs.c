/*
 * tls_certs.c - certificate sets: chains and keys loaded from PEM, indexed by the names they
 * serve.
 *
 * A set is built off to the side (on the reload path, never on a worker), then frozen by
 * tls_cert_set_freeze() into sorted name tables that tls_cert_set_lookup() searches by binary
 * search: exact names first, then the single-label wildcard of the parent domain, the way
 * browsers match (RFC 6125 6.4.3: "*.example.org" covers "a.example.org" only).
 */
#include "proxy/err_internal.h"
#include "proxy/tls_certs_internal.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

struct tls_cert_set *tls_cert_set_new(void)
{
    return calloc(1, sizeof(struct tls_cert_set));
}

void tls_cert_set_free(struct tls_cert_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->ncerts; i++) {
        X509_free(set->certs[i].leaf);
        sk_X509_pop_free(set->certs[i].chain, X509_free);
        EVP_PKEY_free(set->certs[i].key);
    }
    free(set->certs);
    free(set->names);
    free(set);
}

/*
 * Normalises a certificate DNS name into `out` (lowercase) and says whether it is a wildcard;
 * for "*.example.org" `out` is "example.org". Refuses partial wildcards ("w*.example.org"),
 * wildcards directly over a top-level label ("*.org") and characters outside host names.
 */
static bool cert_name_normalise(const unsigned char *in, size_t len, char *out, bool *wildcard)
{
    size_t label = 0;

    *wildcard = false;
    if (len >= 2 && in[0] == '*' && in[1] == '.') {
        *wildcard = true;
        in += 2;
        len -= 2;
        if (!memchr(in, '.', len))
            return false;
    }
    if (len < 1 || len > TLS_HOST_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)tolower(in[i]);
        if (ch == '.') {
            if (label == 0)
                return false;
            label = 0;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
            if (++label > 63)
                return false;
        } else {
            return false;
        }
        out[i] = (char)ch;
    }
    out[len] = '\0';
    return label > 0;
}

static int add_name(struct tls_cert_set *set, size_t cert, const unsigned char *raw, size_t len,
                    char *err, size_t errlen)
{
    struct tls_cert_name n;

    if (!cert_name_normalise(raw, len, n.name, &n.wildcard))
        return TLS_OK; /* a name no client can ask for through SNI: ignored */
    if (set->nnames == set->names_cap) {
        size_t cap = set->names_cap ? set->names_cap * 2 : 16;
        struct tls_cert_name *names = realloc(set->names, cap * sizeof(*names));
        if (!names)
            return proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
        set->names = names;
        set->names_cap = cap;
    }
    n.cert = cert;
    n.order = set->nnames;
    set->names[set->nnames++] = n;
    return TLS_OK;
}

/* The DNS names of `leaf`: its subjectAltName dNSNames, or its CN when it has no SAN. */
static int collect_names(struct tls_cert_set *set, size_t cert, X509 *leaf, const char *origin,
                         char *err, size_t errlen)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    size_t before = set->nnames;
    int rc = TLS_OK;

    if (sans) {
        int count = sk_GENERAL_NAME_num(sans);
        if (count > TLS_CERT_NAMES_MAX) {
            rc = proxy_errf(err, errlen, TLS_ELIMIT, "%s: %d names, more than %d", origin, count,
                            TLS_CERT_NAMES_MAX);
            goto out;
        }
        for (int i = 0; i < count && rc == TLS_OK; i++) {
            GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type == GEN_DNS)
                rc = add_name(set, cert, ASN1_STRING_get0_data(gn->d.dNSName),
                              (size_t)ASN1_STRING_length(gn->d.dNSName), err, errlen);
        }
    } else {
        char cn[TLS_HOST_MAX + 2];
        int len =
            X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof(cn));
        if (len > 0 && (size_t)len < sizeof(cn))
            rc = add_name(set, cert, (const unsigned char *)cn, (size_t)len, err, errlen);
    }
    if (rc == TLS_OK && set->nnames == before)
        rc = proxy_errf(err, errlen, TLS_EINVAL, "%s: certificate names no DNS host", origin);
out:
    GENERAL_NAMES_free(sans);
    return rc;
}

int tls_cert_set_add_pem(struct tls_cert_set *set, const char *cert_pem, size_t cert_len,
                         const char *key_pem, size_t key_len, const char *origin, char *err,
                         size_t errlen)
{
    struct tls_cert c = {0};
    struct tm not_after;
    BIO *bio = NULL;
    X509 *extra;
    int rc;

    if (cert_len > TLS_PEM_MAX || key_len > TLS_PEM_MAX)
        return proxy_errf(err, errlen, TLS_ELIMIT, "%s: PEM larger than %d bytes", origin,
                          TLS_PEM_MAX);
    if (set->ncerts >= TLS_CERTS_MAX)
        return proxy_errf(err, errlen, TLS_ELIMIT, "%s: more than %d certificates", origin,
                          TLS_CERTS_MAX);

    bio = BIO_new_mem_buf(cert_pem, (int)cert_len);
    c.chain = sk_X509_new_null();
    if (!bio || !c.chain) {
        rc = proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
        goto fail;
    }
    c.leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (!c.leaf) {
        rc = proxy_errf(err, errlen, TLS_EINVAL, "%s: no PEM certificate: %s", origin,
                        proxy_ssl_reason());
        goto fail;
    }
    while ((extra = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(c.chain, extra)) {
            X509_free(extra);
            rc = proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
            goto fail;
        }
    }
    ERR_clear_error(); /* the loop ends on "no start line": expected */
    BIO_free(bio);

    bio = BIO_new_mem_buf(key_pem, (int)key_len);
    if (!bio) {
        rc = proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
        goto fail;
    }
    c.key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (!c.key) {
        rc = proxy_errf(err, errlen, TLS_EINVAL, "%s: no PEM private key: %s", origin,
                        proxy_ssl_reason());
        goto fail;
    }
    if (X509_check_private_key(c.leaf, c.key) != 1) {
        ERR_clear_error();
        rc = proxy_errf(err, errlen, TLS_EINVAL, "%s: private key does not match certificate",
                        origin);
        goto fail;
    }
    if (ASN1_TIME_to_tm(X509_get0_notAfter(c.leaf), &not_after) != 1) {
        rc = proxy_errf(err, errlen, TLS_EINVAL, "%s: unreadable notAfter", origin);
        goto fail;
    }
    c.not_after = timegm(&not_after);
    snprintf(c.origin, sizeof(c.origin), "%s", origin);

    if (set->ncerts == set->certs_cap) {
        size_t cap = set->certs_cap ? set->certs_cap * 2 : 4;
        struct tls_cert *certs = realloc(set->certs, cap * sizeof(*certs));
        if (!certs) {
            rc = proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
            goto fail;
        }
        set->certs = certs;
        set->certs_cap = cap;
    }
    size_t names_before = set->nnames;
    rc = collect_names(set, set->ncerts, c.leaf, origin, err, errlen);
    if (rc != TLS_OK) {
        set->nnames = names_before;
        goto fail;
    }
    set->certs[set->ncerts++] = c;
    BIO_free(bio);
    return TLS_OK;

fail:
    BIO_free(bio);
    X509_free(c.leaf);
    sk_X509_pop_free(c.chain, X509_free);
    EVP_PKEY_free(c.key);
    return rc;
}

/* Reads a whole file of at most TLS_PEM_MAX bytes into a NUL-terminated buffer. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n;
    int rc;

    if (!f)
        return proxy_errf(err, errlen, TLS_EINVAL, "%s: %s", path, strerror(errno));
    buf = malloc(TLS_PEM_MAX + 1);
    if (!buf) {
        rc = proxy_errf(err, errlen, TLS_ENOMEM, "out of memory");
        goto fail;
    }
    n = fread(buf, 1, TLS_PEM_MAX + 1, f);
    if (ferror(f)) {
        rc = proxy_errf(err, errlen, TLS_EINVAL, "%s: read failed", path);
        goto fail;
    }
    if (n > TLS_PEM_MAX) {
        rc = proxy_errf(err, errlen, TLS_ELIMIT, "%s: larger than %d bytes", path, TLS_PEM_MAX);
        goto fail;
    }
    buf[n] = '\0';
    fclose(f);
    *data = buf;
    *len = n;
    return TLS_OK;
fail:
    free(buf);
    fclose(f);
    return rc;
}

int tls_cert_set_add_files(struct tls_cert_set *set, const char *cert_path, const char *key_path,
                           char *err, size_t errlen)
{
    char *cert = NULL, *key = NULL;
    size_t cert_len, key_len;
    int rc = read_file(cert_path, &cert, &cert_len, err, errlen);

    if (rc == TLS_OK)
        rc = read_file(key_path, &key, &key_len, err, errlen);
    if (rc == TLS_OK)
        rc = tls_cert_set_add_pem(set, cert, cert_len, key, key_len, cert_path, err, errlen);
    if (key)
        OPENSSL_cleanse(key, key_len);
    free(cert);
    free(key);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    const struct tls_cert_name *x = a, *y = b;
    int c;

    if (x->wildcard != y->wildcard)
        return x->wildcard ? 1 : -1;
    c = strcmp(x->name, y->name);
    if (c != 0)
        return c;
    return x->order < y->order ? -1 : x->order > y->order;
}

void tls_cert_set_freeze(struct tls_cert_set *set)
{
    size_t out = 0;

    qsort(set->names, set->nnames, sizeof(*set->names), name_cmp);
    /* Same name twice: the first added (lowest order) sorts first and wins. */
    for (size_t i = 0; i < set->nnames; i++) {
        if (out > 0 && set->names[out - 1].wildcard == set->names[i].wildcard &&
            strcmp(set->names[out - 1].name, set->names[i].name) == 0)
            continue;
        set->names[out++] = set->names[i];
    }
    set->nnames = out;
}

static const struct tls_cert *find(const struct tls_cert_set *set, const char *name, bool wildcard)
{
    size_t lo = 0, hi = set->nnames;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct tls_cert_name *n = &set->names[mid];
        int c = n->wildcard != wildcard ? (n->wildcard ? 1 : -1) : strcmp(n->name, name);
        if (c == 0)
            return &set->certs[n->cert];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct tls_cert *tls_cert_set_lookup(const struct tls_cert_set *set, const char *host)
{
    char lower[TLS_HOST_MAX + 1];
    size_t len = strlen(host);
    const struct tls_cert *c;
    const char *dot;

    if (len == 0 || len > TLS_HOST_MAX)
        return NULL;
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)tolower((unsigned char)host[i]);
    c = find(set, lower, false);
    if (c)
        return c;
    dot = strchr(lower, '.');
    if (!dot || dot == lower)
        return NULL;
    return find(set, dot + 1, true);
}
