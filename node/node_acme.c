/*
 * node_acme.c - automatic certificates for the names the fleet serves, with no shared
 * storage: the ACME client of acme/ (acme/acme.h) driven by the node, its HTTP-01 tokens
 * and the certificates it obtains carried by gossip.
 *
 * Who orders: every CHECK_MS the control loop lists the hosts that need a certificate
 * (held, non-passthrough name and fqdn records without one valid for more than 30 days) and
 * orders those for which this node is first in rendezvous order among the alive members
 * (acme_orderer). If that node dies, the next one finds itself first and takes over.
 *
 * Ordering runs on libuv's thread pool (the client blocks on HTTPS to the CA), one order at
 * a time. Before the CA is told to validate, each token is published: the worker hands it
 * to the loop, which puts it in the local challenge table and broadcasts it as gossip item
 * "acme:c/TOKEN"; the worker then waits SETTLE_MS so the token reaches the gateway the CA's
 * DNS lookup picks. Every node answers /.well-known/acme-challenge/TOKEN from its table.
 *
 * The certificate, sealed with the cluster key (acme_cert_seal), goes out as item
 * "acme:x/HOST"; each node opens it and serves it. Push-pull carries both kinds to nodes
 * that join later. Without a cluster key nothing can be sealed: the certificate then stays
 * on the node that ordered it (a warning says so).
 *
 * DNS-01 and the wildcard (--acme-wildcard): the fleet answers DNS for its own domain
 * (node_zone.c), so the first node in rendezvous order for "*.DOMAIN" orders a wildcard
 * certificate with DNS-01. Its TXT value travels like an HTTP-01 token, as item
 * "acme:d/TOKEN" (expiry, "_acme-challenge.DOMAIN", value), and every gateway's DNS answers
 * TXT _acme-challenge.DOMAIN with the values it holds, so the CA's lookup may land anywhere.
 * Once the wildcard is served, per-name orders stop: every NAME.DOMAIN already has a
 * certificate. fqdn proxies keep HTTP-01 (their zones are not ours).
 *
 * Every node also keeps the sealed certificates it holds in DATA-DIR/acme/ (written to a
 * temporary file, fsynced, renamed), so a restart, even of the last node standing, serves
 * them at once instead of asking the CA again and running into its rate limits.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "node/node_internal.h"
#include "acme/acme.h"
#include "proxy/tls_internal.h"

#define CHECK_MS 2000        /* how often the loop looks for hosts needing a certificate */
#define SETTLE_MS 1500       /* time for a published token to reach the fleet */
#define CHALLENGE_TTL_S 3600 /* a replicated token is forgotten after this */
#define ISSUED_MAX 4096      /* certificates held (every host served by the fleet) */
#define CHALLENGES_MAX 256   /* replicated tokens held for push-pull */
#define RETRIES_MAX 1024     /* hosts in backoff after a failed order */
#define ITEM_CHALLENGE "acme:c/"
#define ITEM_CERT "acme:x/"
#define ITEM_TXT "acme:d/"
#define TXT_NAME_MAX 253 /* "_acme-challenge.DOMAIN" */

struct issued {
    char host[STATE_FQDN_MAX + 1];   /* the name it serves */
    struct acme_cert cert;           /* chain and key (PEM) */
    uint64_t version;                /* gossip version (ms when it was ordered) */
    uint8_t sealed[ACME_SEALED_MAX]; /* as gossip carries it; sealed_len 0 when not sealed */
    size_t sealed_len;
};

struct challenge_item {
    char token[ACME_TOKEN_MAX + 1];       /* the key after ITEM_CHALLENGE / ITEM_TXT */
    char key_auth[ACME_KEY_AUTH_MAX + 1]; /* what to answer: key authorization (HTTP-01) or
                                             TXT value (DNS-01) */
    char txt_name[TXT_NAME_MAX + 1];      /* DNS-01: the TXT owner; "" for HTTP-01 */
    uint64_t expires;                     /* unix seconds */
    uint64_t version;                     /* gossip version */
};

struct retry {
    char host[STATE_FQDN_MAX + 1]; /* the host that failed */
    unsigned failures;             /* consecutive failures */
    uint64_t next_ms;              /* wall clock ms of the next attempt */
};

struct node_acme {
    struct node *node;             /* owner */
    struct acme_challenges *table; /* what the HTTP port answers (given to the proxy) */
    struct acme_client *client;    /* used by the worker thread only */
    EVP_PKEY *account;             /* account key (data-dir/acme-account.pem) */
    /* sealing keys derived from the cluster keys (GOSSIP_KDF_SEAL): [0] seals, all open; then
     * the raw cluster keys themselves, which only open: certificates sealed before keys were
     * derived (DATA-DIR/acme/, or gossiped by a not yet upgraded member) still load, and are
     * sealed anew under the derived key at renewal */
    uint8_t keys[2 * GOSSIP_KEYS_MAX][ACME_SEAL_KEY_LEN];
    size_t nkeys;      /* 0: certificates stay local */
    uv_timer_t timer;  /* CHECK_MS */
    uv_async_t async;  /* worker -> loop: publish and withdraw */
    uv_mutex_t mutex;  /* guards the request below and stopping */
    uv_cond_t cond;    /* signals req_done */
    bool req_pending;  /* a request waits for the loop */
    bool req_done;     /* the loop handled it */
    bool req_withdraw; /* remove rather than publish */
    int req_rc;        /* its result */
    char req_token[ACME_TOKEN_MAX + 1];
    char req_key_auth[ACME_KEY_AUTH_MAX + 1];
    char req_txt_name[TXT_NAME_MAX + 1]; /* DNS-01: TXT owner; "" for HTTP-01 */
    char req_err[ACME_ERR_MAX];
    bool stopping;  /* no more publishing: the loop is closing */
    uv_work_t work; /* the order in flight */
    bool busy;      /* work is queued or running */
    char job_host[STATE_FQDN_MAX + 1];
    struct acme_cert job_cert;
    int job_rc;
    long job_retry;
    char job_err[ACME_ERR_MAX];
    struct issued *issued; /* certificates served */
    size_t nissued;
    struct challenge_item chals[CHALLENGES_MAX];
    size_t nchals;
    struct retry retries[RETRIES_MAX];
    size_t nretries;
};

/* Fills a->keys from a cluster keyring (see the field). */
static void acme_keys_from_ring(struct node_acme *a, const struct gossip_keyring *kr)
{
    size_t n = kr->count < GOSSIP_KEYS_MAX ? kr->count : GOSSIP_KEYS_MAX;

    OPENSSL_cleanse(a->keys, sizeof(a->keys));
    a->nkeys = 0;
    for (size_t i = 0; i < n; i++)
        if (gossip_key_derive(kr->keys[i], GOSSIP_KDF_SEAL, a->keys[a->nkeys]) == 0)
            a->nkeys++;
    for (size_t i = 0; i < n && a->nkeys > 0; i++)
        memcpy(a->keys[a->nkeys++], kr->keys[i], ACME_SEAL_KEY_LEN);
}

static uint64_t wall_ms(void)
{
    return state_now_ms();
}

/* Installs the operator's and ACME's certificates after a change. */
static void certificates_changed(struct node *node)
{
    char err[NODE_ERR_MAX];
    if (node->tls && node_tls_load(node, err, sizeof(err)) != 0)
        node_log(NODE_LOG_ERROR, "acme", "certificates not installed: %s", err);
}

/* ---- challenge items ----------------------------------------------------------------- */

/* HTTP-01: expiry (8 bytes, big-endian) then the key authorization. DNS-01: expiry, the TXT
 * owner, a NUL, the TXT value. */
static size_t challenge_encode(const struct challenge_item *c, uint8_t *buf, size_t cap)
{
    size_t n = strlen(c->key_auth), t = c->txt_name[0] ? strlen(c->txt_name) + 1 : 0;
    if (cap < 8 + t + n)
        return 0;
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(c->expires >> (56 - 8 * i));
    memcpy(buf + 8, c->txt_name, t);
    memcpy(buf + 8 + t, c->key_auth, n);
    return 8 + t + n;
}

/* A DNS-01 item's owner and value: "_acme-challenge." + a name, and ACME_TXT_LEN base64url
 * characters; anything else from gossip is refused. */
static bool challenge_txt_valid(const char *name, const char *value)
{
    size_t n = strlen(value);

    if (strncmp(name, "_acme-challenge.", 16) != 0 || strlen(name) <= 16 || n != ACME_TXT_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((value[i] >= 'a' && value[i] <= 'z') || (value[i] >= 'A' && value[i] <= 'Z') ||
              (value[i] >= '0' && value[i] <= '9') || value[i] == '-' || value[i] == '_'))
            return false;
    return true;
}

/* Keeps (or refreshes) a token this node answers for, and remembers it for push-pull. */
static int challenge_hold(struct node_acme *a, const char *token, const char *key_auth,
                          const char *txt_name, uint64_t expires, uint64_t version, char *err,
                          size_t errlen)
{
    struct challenge_item *c = NULL;
    uint64_t now = (uint64_t)time(NULL);
    size_t i, out = 0;

    for (i = 0; i < a->nchals; i++) /* drop expired ones first */
        if (a->chals[i].expires > now)
            a->chals[out++] = a->chals[i];
    a->nchals = out;
    for (i = 0; i < a->nchals && !c; i++)
        if (strcmp(a->chals[i].token, token) == 0)
            c = &a->chals[i];
    if (c && c->version >= version)
        return 0;
    if (txt_name[0] && !challenge_txt_valid(txt_name, key_auth)) {
        snprintf(err, errlen, "malformed DNS-01 challenge");
        return -1;
    }
    if (!txt_name[0] &&
        acme_challenges_put(a->table, token, key_auth, (time_t)expires, err, errlen) != 0)
        return -1;
    if (!c) {
        if (a->nchals == CHALLENGES_MAX) {
            snprintf(err, errlen, "too many ACME tokens in flight");
            return -1;
        }
        c = &a->chals[a->nchals++];
    }
    snprintf(c->token, sizeof(c->token), "%s", token);
    snprintf(c->key_auth, sizeof(c->key_auth), "%s", key_auth);
    snprintf(c->txt_name, sizeof(c->txt_name), "%s", txt_name);
    c->expires = expires;
    c->version = version;
    return 1;
}

/* ---- the publisher (worker thread side) and its loop half ---------------------------- */

static int request(struct node_acme *a, bool withdraw, const char *token, const char *key_auth,
                   const char *txt_name, char *err, size_t errlen)
{
    int rc;

    uv_mutex_lock(&a->mutex);
    if (a->stopping) {
        uv_mutex_unlock(&a->mutex);
        snprintf(err, errlen, "node stopping");
        return ACME_EINVAL;
    }
    a->req_pending = true;
    a->req_done = false;
    a->req_withdraw = withdraw;
    snprintf(a->req_token, sizeof(a->req_token), "%s", token);
    snprintf(a->req_key_auth, sizeof(a->req_key_auth), "%s", key_auth ? key_auth : "");
    snprintf(a->req_txt_name, sizeof(a->req_txt_name), "%s", txt_name ? txt_name : "");
    uv_async_send(&a->async);
    while (!a->req_done && !a->stopping)
        uv_cond_wait(&a->cond, &a->mutex);
    rc = a->req_done ? a->req_rc : ACME_EINVAL;
    if (rc != 0)
        snprintf(err, errlen, "%s", a->req_done ? a->req_err : "node stopping");
    uv_mutex_unlock(&a->mutex);
    return rc;
}

static int publish(void *ctx, const char *token, const char *key_auth, char *err, size_t errlen)
{
    struct node_acme *a = ctx;
    int rc = request(a, false, token, key_auth, NULL, err, errlen);
    if (rc == 0) {
        struct timespec ts = {SETTLE_MS / 1000, (SETTLE_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* let gossip carry it to the gateway the CA will ask */
    }
    return rc;
}

/* DNS-01: the TXT value goes where a key authorization would, with its owner name. */
static int publish_txt(void *ctx, const char *name, const char *token, const char *value, char *err,
                       size_t errlen)
{
    struct node_acme *a = ctx;
    int rc = request(a, false, token, value, name, err, errlen);
    if (rc == 0) {
        struct timespec ts = {SETTLE_MS / 1000, (SETTLE_MS % 1000) * 1000000L};
        nanosleep(&ts, NULL); /* let gossip carry it to the gateway the CA's resolver asks */
    }
    return rc;
}

static void withdraw(void *ctx, const char *token)
{
    char err[ACME_ERR_MAX];
    request(ctx, true, token, NULL, NULL, err, sizeof(err));
}

static void on_async(uv_async_t *h)
{
    struct node_acme *a = h->data;
    struct node *node = a->node;

    uv_mutex_lock(&a->mutex);
    if (!a->req_pending) {
        uv_mutex_unlock(&a->mutex);
        return;
    }
    a->req_pending = false;
    a->req_rc = 0;
    if (a->req_withdraw) {
        /* the other nodes let their copy expire: withdrawing is local housekeeping */
        acme_challenges_remove(a->table, a->req_token);
    } else {
        uint64_t version = wall_ms();
        struct challenge_item c;
        uint8_t buf[8 + TXT_NAME_MAX + 1 + ACME_KEY_AUTH_MAX];
        char key[GOSSIP_KEY_MAX + 16];
        int held = challenge_hold(a, a->req_token, a->req_key_auth, a->req_txt_name,
                                  (uint64_t)time(NULL) + CHALLENGE_TTL_S, version, a->req_err,
                                  sizeof(a->req_err));
        if (held < 0) {
            a->req_rc = ACME_EINVAL;
        } else if (node->gossip) {
            snprintf(c.key_auth, sizeof(c.key_auth), "%s", a->req_key_auth);
            snprintf(c.txt_name, sizeof(c.txt_name), "%s", a->req_txt_name);
            c.expires = (uint64_t)time(NULL) + CHALLENGE_TTL_S;
            size_t n = challenge_encode(&c, buf, sizeof(buf));
            snprintf(key, sizeof(key), "%s%s", c.txt_name[0] ? ITEM_TXT : ITEM_CHALLENGE,
                     a->req_token);
            if (gossip_broadcast(node->gossip, key, version, buf, n) != 0)
                node_log(NODE_LOG_WARN, "acme", "token %s not broadcast", a->req_token);
        }
    }
    a->req_done = true;
    uv_cond_broadcast(&a->cond);
    uv_mutex_unlock(&a->mutex);
}

/* ---- certificates held ---------------------------------------------------------------- */

static struct issued *issued_find(struct node_acme *a, const char *host)
{
    for (size_t i = 0; i < a->nissued; i++)
        if (strcmp(a->issued[i].host, host) == 0)
            return &a->issued[i];
    return NULL;
}

/* Takes ownership of cert's strings. Returns the entry, or NULL when full. */
static struct issued *issued_set(struct node_acme *a, const char *host, struct acme_cert *cert,
                                 uint64_t version)
{
    struct issued *it = issued_find(a, host);
    if (!it) {
        if (a->nissued == ISSUED_MAX)
            return NULL;
        it = &a->issued[a->nissued++];
        memset(it, 0, sizeof(*it));
        snprintf(it->host, sizeof(it->host), "%s", host);
    } else {
        acme_cert_free(&it->cert);
    }
    it->cert = *cert;
    memset(cert, 0, sizeof(*cert));
    it->version = version;
    it->sealed_len = 0;
    return it;
}

size_t node_acme_pairs(struct node *node, struct tls_pem_pair *out, size_t cap)
{
    struct node_acme *a = node->acme;
    size_t n = 0;
    for (size_t i = 0; a && i < a->nissued && n < cap; i++)
        out[n++] = (struct tls_pem_pair){a->issued[i].cert.cert_pem, a->issued[i].cert.key_pem,
                                         a->issued[i].host};
    return n;
}

/* ---- on disk ------------------------------------------------------------------------- */

/* DATA-DIR/acme/HOST.sealed: version (8 bytes, big-endian) then the sealed item. */
static void persist(struct node_acme *a, const struct issued *it)
{
    char dir[NODE_PATH_MAX + 8], path[NODE_PATH_MAX + STATE_FQDN_MAX + 32], tmp[sizeof(path) + 8];
    uint8_t head[8];
    int fd;

    if (it->sealed_len == 0)
        return;
    snprintf(dir, sizeof(dir), "%s/acme", a->node->cfg.data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        goto fail;
    snprintf(path, sizeof(path), "%s/%s.sealed", dir, it->host);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    for (int i = 0; i < 8; i++)
        head[i] = (uint8_t)(it->version >> (56 - 8 * i));
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        goto fail;
    if (write(fd, head, 8) != 8 ||
        write(fd, it->sealed, it->sealed_len) != (ssize_t)it->sealed_len || fsync(fd) != 0) {
        close(fd);
        unlink(tmp);
        goto fail;
    }
    close(fd);
    if (rename(tmp, path) != 0)
        goto fail;
    return;
fail:
    node_log(NODE_LOG_WARN, "acme", "certificate for %s not saved in %s: %s", it->host, dir,
             strerror(errno));
}

/* Loads what persist() wrote; returns how many certificates were loaded. */
static size_t load_saved(struct node_acme *a)
{
    char dir[NODE_PATH_MAX + 8], path[NODE_PATH_MAX + 300], err[ACME_ERR_MAX];
    uint8_t buf[8 + ACME_SEALED_MAX];
    struct dirent *e;
    size_t loaded = 0;
    DIR *d;

    snprintf(dir, sizeof(dir), "%s/acme", a->node->cfg.data_dir);
    d = opendir(dir);
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL) {
        char host[STATE_FQDN_MAX + 1];
        size_t len = strlen(e->d_name);
        if (len <= 7 || len - 7 > STATE_FQDN_MAX || strcmp(e->d_name + len - 7, ".sealed") != 0)
            continue;
        memcpy(host, e->d_name, len - 7);
        host[len - 7] = '\0';
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
        if (f)
            fclose(f);
        struct acme_cert cert;
        uint64_t version = 0;
        for (int i = 0; i < 8 && n > 8; i++)
            version = (version << 8) | buf[i];
        if (n <= 8 || a->nkeys == 0 ||
            acme_cert_open((const uint8_t(*)[ACME_SEAL_KEY_LEN])a->keys, a->nkeys, host, buf + 8,
                           n - 8, &cert, err, sizeof(err)) != 0) {
            node_log(NODE_LOG_WARN, "acme", "%s: not loaded: %s", path, n <= 8 ? "truncated" : err);
            continue;
        }
        struct issued *it = issued_set(a, host, &cert, version);
        if (!it) {
            acme_cert_free(&cert);
            break;
        }
        memcpy(it->sealed, buf + 8, n - 8);
        it->sealed_len = n - 8;
        loaded++;
    }
    closedir(d);
    return loaded;
}

/* ---- ordering ------------------------------------------------------------------------- */

static struct retry *retry_find(struct node_acme *a, const char *host, bool create)
{
    for (size_t i = 0; i < a->nretries; i++)
        if (strcmp(a->retries[i].host, host) == 0)
            return &a->retries[i];
    if (!create || a->nretries == RETRIES_MAX)
        return NULL;
    struct retry *r = &a->retries[a->nretries++];
    memset(r, 0, sizeof(*r));
    snprintf(r->host, sizeof(r->host), "%s", host);
    return r;
}

static void work_run(uv_work_t *w)
{
    struct node_acme *a = w->data;
    const char *names[1] = {a->job_host};
    a->job_rc = acme_client_issue(a->client, names, 1, &a->job_cert, &a->job_retry, a->job_err,
                                  sizeof(a->job_err));
}

static void work_done(uv_work_t *w, int status)
{
    struct node_acme *a = w->data;
    struct node *node = a->node;
    char err[ACME_ERR_MAX];

    a->busy = false;
    if (a->stopping) { /* the node is closing: the certificate is not needed any more */
        acme_cert_free(&a->job_cert);
        return;
    }
    if (status != 0 || a->job_rc != 0) {
        struct retry *r = retry_find(a, a->job_host, true);
        long wait = 0;
        if (r) {
            r->failures++;
            wait =
                acme_backoff_seconds(r->failures, a->job_retry, (double)(rand() % 1000) / 1000.0);
            r->next_ms = wall_ms() + (uint64_t)wait * 1000;
        }
        node_log(NODE_LOG_ERROR, "acme", "certificate for %s: %s (retry in %ld s)", a->job_host,
                 status ? "cancelled" : a->job_err, wait);
        acme_cert_free(&a->job_cert);
        return;
    }
    struct retry *r = retry_find(a, a->job_host, false);
    if (r)
        r->failures = 0, r->next_ms = 0;
    uint64_t version = wall_ms();
    struct issued *it = issued_set(a, a->job_host, &a->job_cert, version);
    if (!it) {
        node_log(NODE_LOG_ERROR, "acme", "certificate for %s: too many certificates held",
                 a->job_host);
        acme_cert_free(&a->job_cert);
        return;
    }
    node_event(node, "acme", "certificate issued for %s", it->host);
    if (a->nkeys == 0) {
        node_log(NODE_LOG_WARN, "acme",
                 "no --cluster-key: the certificate for %s is served by this node only", it->host);
    } else if (acme_cert_seal(a->keys[0], it->host, &it->cert, it->sealed, sizeof(it->sealed),
                              &it->sealed_len, err, sizeof(err)) != 0) {
        node_log(NODE_LOG_ERROR, "acme", "%s", err);
    } else if (node->gossip) {
        char key[GOSSIP_KEY_MAX + 16];
        snprintf(key, sizeof(key), ITEM_CERT "%s", it->host);
        if (strlen(key) > GOSSIP_KEY_MAX ||
            gossip_broadcast(node->gossip, key, version, it->sealed, it->sealed_len) != 0)
            node_log(NODE_LOG_WARN, "acme", "certificate for %s not shared (name too long)",
                     it->host);
    }
    persist(a, it);
    certificates_changed(node);
}

struct needs {
    struct node_acme *a;           /* whose view */
    char host[STATE_FQDN_MAX + 1]; /* first host found that this node must order */
    const char **ids;              /* alive member ids (NULL: alone) */
    size_t nids;
    const char *self;
};

static int needs_one(const struct state_name_view *view, void *ctx)
{
    struct needs *n = ctx;
    struct node_acme *a = n->a;
    const struct state_record *rec = &view->record;
    char host[STATE_FQDN_MAX + 1];
    time_t expiry;

    if (!view->held || rec->tls_passthrough ||
        (rec->kind != STATE_RECORD_PROXY && rec->kind != STATE_RECORD_FQDN))
        return 0;
    /* with --acme-wildcard every NAME.DOMAIN is covered by the wildcard */
    if (rec->kind == STATE_RECORD_PROXY && a->node->cfg.acme_wildcard)
        return 0;
    /* a CA asks the fqdn's DNS: no order before it points at the fleet */
    if (rec->kind == STATE_RECORD_FQDN && !node_fqdn_served(a->node, rec->name))
        return 0;
    if (rec->kind == STATE_RECORD_PROXY) {
        if ((size_t)snprintf(host, sizeof(host), "%s.%s", rec->name, a->node->cfg.domain) >=
            sizeof(host))
            return 0;
    } else {
        snprintf(host, sizeof(host), "%s", rec->name);
    }
    /* served already by a certificate not due for renewal (operator's or issued) */
    if (tls_store_expiry(a->node->tls, host, &expiry) == 0 && !acme_renewal_due(expiry, time(NULL)))
        return 0;
    struct retry *r = retry_find(a, host, false);
    if (r && r->next_ms > wall_ms())
        return 0;
    if (n->nids > 0) {
        long who = acme_orderer(host, n->ids, n->nids);
        if (who < 0 || strcmp(n->ids[who], n->self) != 0)
            return 0; /* another gateway orders it */
    }
    snprintf(n->host, sizeof(n->host), "%s", host);
    return 1;
}

/* --acme-wildcard: whether this node must order *.DOMAIN now (into n->host). */
static bool wildcard_needed(struct needs *n)
{
    struct node_acme *a = n->a;
    char host[STATE_FQDN_MAX + 1];
    time_t expiry;

    if (!a->node->cfg.acme_wildcard ||
        (size_t)snprintf(host, sizeof(host), "*.%s", a->node->cfg.domain) >= sizeof(host))
        return false;
    if (tls_store_expiry(a->node->tls, host, &expiry) == 0 && !acme_renewal_due(expiry, time(NULL)))
        return false;
    struct retry *r = retry_find(a, host, false);
    if (r && r->next_ms > wall_ms())
        return false;
    if (n->nids > 0) {
        long who = acme_orderer(host, n->ids, n->nids);
        if (who < 0 || strcmp(n->ids[who], n->self) != 0)
            return false;
    }
    snprintf(n->host, sizeof(n->host), "%s", host);
    return true;
}

size_t node_acme_txt(struct node *node, const char *owner, char (*out)[256], size_t cap)
{
    struct node_acme *a = node->acme;
    uint64_t now = (uint64_t)time(NULL);
    size_t n = 0;

    for (size_t i = 0; a && i < a->nchals && n < cap; i++) {
        size_t len = strlen(a->chals[i].key_auth);
        /* a TXT value is a 43-byte digest; one that would not fit out[] whole is skipped, not
         * cut (a Debug build's -Wformat-truncation saw that snprintf could cut it) */
        if (a->chals[i].txt_name[0] && a->chals[i].expires > now && len < sizeof(out[0]) &&
            strcasecmp(a->chals[i].txt_name, owner) == 0)
            memcpy(out[n++], a->chals[i].key_auth, len + 1);
    }
    return n;
}

static void on_timer(uv_timer_t *t)
{
    struct node_acme *a = t->data;
    struct node *node = a->node;
    struct gossip_member *members = NULL;
    const char **ids = NULL;
    struct needs n = {.a = a};

    if (a->busy || a->stopping || !node->tls)
        return;
    if (node->gossip) {
        size_t cap = 16, total;
        members = calloc(cap, sizeof(*members));
        if (!members)
            goto out;
        total = gossip_members(node->gossip, members, cap);
        if (total > cap) { /* a large fleet: ask again with room for everyone */
            struct gossip_member *more = realloc(members, total * sizeof(*members));
            if (!more)
                goto out;
            members = more;
            cap = total;
            total = gossip_members(node->gossip, members, cap);
            if (total > cap)
                total = cap;
        }
        ids = calloc(total ? total : 1, sizeof(*ids));
        if (!ids)
            goto out;
        for (size_t i = 0; i < total; i++) {
            if (members[i].state != GOSSIP_ALIVE)
                continue;
            ids[n.nids++] = members[i].id;
            if (members[i].self)
                n.self = members[i].id;
        }
        n.ids = ids;
        if (!n.self)
            n.nids = 0;
    }
    if (!wildcard_needed(&n) && state_names_each(node->names, needs_one, &n) != 1)
        goto out;
    snprintf(a->job_host, sizeof(a->job_host), "%s", n.host);
    memset(&a->job_cert, 0, sizeof(a->job_cert));
    a->job_retry = 0;
    a->job_err[0] = '\0';
    a->work.data = a;
    if (uv_queue_work(&node->loop, &a->work, work_run, work_done) == 0) {
        a->busy = true;
        node_log(NODE_LOG_INFO, "acme", "ordering a certificate for %s", a->job_host);
    }
out:
    free(members);
    free(ids);
}

/* ---- gossip items --------------------------------------------------------------------- */

bool node_acme_item_key(const char *key)
{
    return strncmp(key, "acme:", 5) == 0;
}

int node_acme_on_item(struct node *node, const char *key, uint64_t version, const uint8_t *bytes,
                      size_t len)
{
    struct node_acme *a = node->acme;
    char err[ACME_ERR_MAX];

    if (!a)
        return 0; /* ACME off here: nothing to answer with, nothing to serve */
    if (strncmp(key, ITEM_CHALLENGE, strlen(ITEM_CHALLENGE)) == 0) {
        char key_auth[ACME_KEY_AUTH_MAX + 1];
        uint64_t expires = 0;
        if (len <= 8 || len - 8 > ACME_KEY_AUTH_MAX)
            return -1;
        for (int i = 0; i < 8; i++)
            expires = (expires << 8) | bytes[i];
        memcpy(key_auth, bytes + 8, len - 8);
        key_auth[len - 8] = '\0';
        if (expires <= (uint64_t)time(NULL))
            return 0;
        int rc = challenge_hold(a, key + strlen(ITEM_CHALLENGE), key_auth, "", expires, version,
                                err, sizeof(err));
        if (rc < 0)
            node_log(NODE_LOG_WARN, "acme", "token from gossip refused: %s", err);
        return rc;
    }
    if (strncmp(key, ITEM_TXT, strlen(ITEM_TXT)) == 0) {
        char name[TXT_NAME_MAX + 1], value[ACME_KEY_AUTH_MAX + 1];
        const uint8_t *nul = len > 8 ? memchr(bytes + 8, 0, len - 8) : NULL;
        uint64_t expires = 0;
        size_t nlen, vlen;
        if (nul == NULL || (nlen = (size_t)(nul - bytes - 8)) > TXT_NAME_MAX ||
            (vlen = len - 8 - nlen - 1) > ACME_KEY_AUTH_MAX)
            return -1;
        for (int i = 0; i < 8; i++)
            expires = (expires << 8) | bytes[i];
        memcpy(name, bytes + 8, nlen + 1);
        memcpy(value, nul + 1, vlen);
        value[vlen] = '\0';
        if (expires <= (uint64_t)time(NULL))
            return 0;
        int rc = challenge_hold(a, key + strlen(ITEM_TXT), value, name, expires, version, err,
                                sizeof(err));
        if (rc < 0)
            node_log(NODE_LOG_WARN, "acme", "DNS-01 challenge from gossip refused: %s", err);
        return rc;
    }
    if (strncmp(key, ITEM_CERT, strlen(ITEM_CERT)) == 0) {
        const char *host = key + strlen(ITEM_CERT);
        struct issued *it = issued_find(a, host);
        struct acme_cert cert;
        if (it && it->version >= version)
            return 0;
        if (a->nkeys == 0 || len > ACME_SEALED_MAX ||
            acme_cert_open((const uint8_t(*)[ACME_SEAL_KEY_LEN])a->keys, a->nkeys, host, bytes, len,
                           &cert, err, sizeof(err)) != 0) {
            node_log(NODE_LOG_WARN, "acme", "certificate from gossip refused: %s",
                     a->nkeys ? err : "no --cluster-key to open it");
            return -1;
        }
        it = issued_set(a, host, &cert, version);
        if (!it) {
            acme_cert_free(&cert);
            return -1;
        }
        memcpy(it->sealed, bytes, len);
        it->sealed_len = len;
        persist(a, it);
        node_event(node, "acme", "certificate for %s received from the fleet", host);
        certificates_changed(node);
        return 1;
    }
    return -1;
}

int node_acme_each_item(struct node *node, gossip_item_visit_fn visit, void *visit_ctx)
{
    struct node_acme *a = node->acme;
    char key[GOSSIP_KEY_MAX + 16];
    int rc = 0;

    for (size_t i = 0; a && i < a->nchals && rc == 0; i++) {
        snprintf(key, sizeof(key), "%s%s", a->chals[i].txt_name[0] ? ITEM_TXT : ITEM_CHALLENGE,
                 a->chals[i].token);
        rc = visit(visit_ctx, key, a->chals[i].version, 0);
    }
    for (size_t i = 0; a && i < a->nissued && rc == 0; i++) {
        snprintf(key, sizeof(key), ITEM_CERT "%s", a->issued[i].host);
        if (a->issued[i].sealed_len == 0 || strlen(key) > GOSSIP_KEY_MAX)
            continue;
        rc = visit(visit_ctx, key, a->issued[i].version, 0);
    }
    return rc;
}

int node_acme_get_item(struct node *node, const char *key, uint64_t *version, uint8_t *buf,
                       size_t cap)
{
    struct node_acme *a = node->acme;

    if (!a)
        return GOSSIP_ENOTFOUND;
    bool txt = strncmp(key, ITEM_TXT, strlen(ITEM_TXT)) == 0;
    if (txt || strncmp(key, ITEM_CHALLENGE, strlen(ITEM_CHALLENGE)) == 0) {
        for (size_t i = 0; i < a->nchals; i++) {
            if (strcmp(a->chals[i].token, key + strlen(ITEM_CHALLENGE)) != 0 ||
                (a->chals[i].txt_name[0] != '\0') != txt)
                continue;
            size_t n = challenge_encode(&a->chals[i], buf, cap);
            if (n == 0)
                return GOSSIP_ETOOBIG;
            *version = a->chals[i].version;
            return (int)n;
        }
    } else if (strncmp(key, ITEM_CERT, strlen(ITEM_CERT)) == 0) {
        struct issued *it = issued_find(a, key + strlen(ITEM_CERT));
        if (it && it->sealed_len) {
            if (it->sealed_len > cap)
                return GOSSIP_ETOOBIG;
            memcpy(buf, it->sealed, it->sealed_len);
            *version = it->version;
            return (int)it->sealed_len;
        }
    }
    return GOSSIP_ENOTFOUND;
}

/* ---- lifecycle ------------------------------------------------------------------------ */

int node_acme_setup(struct node *node, struct proxy_config *pc, char *err, size_t errlen)
{
    struct node_acme *a;
    char path[NODE_PATH_MAX + 32], aerr[ACME_ERR_MAX];
    struct gossip_keyring ring;

    if (node->cfg.acme_directory[0] == '\0')
        return 0;
    a = calloc(1, sizeof(*a));
    if (!a || !(a->issued = calloc(ISSUED_MAX, sizeof(*a->issued))) ||
        !(a->table = acme_challenges_new())) {
        snprintf(err, errlen, "acme: out of memory");
        goto fail;
    }
    a->node = node;
    snprintf(path, sizeof(path), "%s/acme-account.pem", node->cfg.data_dir);
    if (acme_key_load_or_create(path, &a->account, aerr, sizeof(aerr)) != 0) {
        snprintf(err, errlen, "acme: %s", aerr);
        goto fail;
    }
    if (node->cfg.cluster_key[0] &&
        gossip_keyring_load(node->cfg.cluster_key, &ring, aerr, sizeof(aerr)) == 0) {
        acme_keys_from_ring(a, &ring);
        OPENSSL_cleanse(&ring, sizeof(ring));
    }
    struct acme_config ac = {
        .directory_url = node->cfg.acme_directory,
        .ca_file = node->cfg.acme_ca_file[0] ? node->cfg.acme_ca_file : NULL,
        .contact = node->cfg.acme_email[0] ? node->cfg.acme_email : NULL,
        .account_key = a->account,
        .publisher = {publish, withdraw, a, publish_txt},
        .dns01_zone = node->cfg.acme_wildcard ? node->cfg.domain : NULL,
        .poll_interval_ms = 500,
    };
    char contact[300];
    if (node->cfg.acme_email[0]) {
        snprintf(contact, sizeof(contact), "mailto:%s", node->cfg.acme_email);
        ac.contact = contact;
    }
    a->client = acme_client_new(&ac, aerr, sizeof(aerr));
    if (!a->client) {
        snprintf(err, errlen, "acme: %s", aerr);
        goto fail;
    }
    uv_mutex_init(&a->mutex);
    uv_cond_init(&a->cond);
    uv_async_init(&node->loop, &a->async, on_async);
    a->async.data = a;
    uv_timer_init(&node->loop, &a->timer);
    a->timer.data = a;
    uv_timer_start(&a->timer, on_timer, CHECK_MS, CHECK_MS);
    node->acme = a;
    pc->acme = a->table;
    size_t saved = load_saved(a);
    if (saved) {
        node_log(NODE_LOG_INFO, "acme", "%zu saved certificates loaded", saved);
        certificates_changed(node);
    }
    node_log(NODE_LOG_INFO, "acme", "automatic certificates from %s%s", node->cfg.acme_directory,
             a->nkeys ? ", shared through the cluster key" : " (no --cluster-key: not shared)");
    return 0;
fail:
    if (a) {
        acme_challenges_free(a->table);
        EVP_PKEY_free(a->account);
        free(a->issued);
        free(a);
    }
    return -1;
}

void node_acme_stop(struct node *node)
{
    struct node_acme *a = node->acme;
    if (!a || a->stopping)
        return;
    uv_mutex_lock(&a->mutex);
    a->stopping = true;
    uv_cond_broadcast(&a->cond);
    uv_mutex_unlock(&a->mutex);
    /* an order in flight ends within about a second, not at curl's timeout or a poll's wait */
    acme_client_cancel(a->client);
    uv_timer_stop(&a->timer);
    uv_close((uv_handle_t *)&a->timer, NULL);
    uv_close((uv_handle_t *)&a->async, NULL);
}

void node_acme_free(struct node *node)
{
    struct node_acme *a = node->acme;
    if (!a)
        return;
    for (size_t i = 0; i < a->nissued; i++)
        acme_cert_free(&a->issued[i].cert);
    acme_cert_free(&a->job_cert);
    acme_client_free(a->client);
    acme_challenges_free(a->table);
    EVP_PKEY_free(a->account);
    OPENSSL_cleanse(a->keys, sizeof(a->keys));
    uv_mutex_destroy(&a->mutex);
    uv_cond_destroy(&a->cond);
    free(a->issued);
    free(a);
    node->acme = NULL;
}

void node_acme_set_keys(struct node *node, const struct gossip_keyring *kr)
{
    if (node->acme)
        acme_keys_from_ring(node->acme, kr);
}
