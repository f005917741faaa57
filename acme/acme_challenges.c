/*
 * acme_challenges.c - the HTTP-01 answers this gateway gives, whoever ordered them.
 *
 * Entries come from the local ACME client or from gossip (another gateway's order) and are
 * read by the HTTP listener when a request targets /.well-known/acme-challenge/. Validations
 * are rare, but anyone can send that path, so a request costs one lookup in state's keyed hash
 * table (bounded by ACME_CHALLENGES_MAX) under the mutex, not a scan; nothing here is on the
 * path of ordinary traffic, which never gets past the prefix compare.
 */
#include "acme/acme_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

struct challenge {
    struct state_hash_node node;          /* in acme_challenges.table, by token */
    char token[ACME_TOKEN_MAX + 1];       /* base64url token from the CA */
    char key_auth[ACME_KEY_AUTH_MAX + 1]; /* "TOKEN.THUMBPRINT" */
    time_t expires;                       /* unix seconds; dropped after */
};

struct acme_challenges {
    pthread_mutex_t lock;          /* guards everything below */
    struct state_hash_table table; /* struct challenge by token */
};

/* A token as the table compares it: not NUL-terminated in a request target. */
struct challenge_token {
    const char *token; /* base64url */
    size_t len;        /* its bytes */
};

struct acme_challenges *acme_challenges_new(void)
{
    struct acme_challenges *t = calloc(1, sizeof(*t));
    if (t && pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        return NULL;
    }
    if (t)
        state_hash_table_init(&t->table, 8, ACME_CHALLENGES_MAX);
    return t;
}

void acme_challenges_free(struct acme_challenges *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    state_hash_table_free_all(&t->table, offsetof(struct challenge, node));
    free(t);
}

static bool is_b64url(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Drops expired entries; caller holds the lock. */
static void purge(struct acme_challenges *t, time_t now)
{
    struct state_hash_node *n, *next;
    size_t bucket;
    STATE_HASH_TABLE_EACH (&t->table, n, next, bucket) {
        struct challenge *c = STATE_HASH_ENTRY(n, struct challenge, node);
        if (c->expires <= now) {
            state_hash_table_remove(&t->table, n);
            free(c);
        }
    }
}

static bool challenge_is(const struct state_hash_node *n, const void *key)
{
    const struct challenge *c = STATE_HASH_ENTRY(n, struct challenge, node);
    const struct challenge_token *k = key;
    return strlen(c->token) == k->len && memcmp(c->token, k->token, k->len) == 0;
}

static uint64_t token_hash(const struct acme_challenges *t, const char *token, size_t len)
{
    return state_hash_table_hash(&t->table, token, len);
}

static struct challenge *find(struct acme_challenges *t, const char *token, size_t len)
{
    struct challenge_token k = {token, len};
    struct state_hash_node *n =
        state_hash_table_find(&t->table, token_hash(t, token, len), challenge_is, &k);
    return n ? STATE_HASH_ENTRY(n, struct challenge, node) : NULL;
}

int acme_challenges_put(struct acme_challenges *t, const char *token, const char *key_auth,
                        time_t expires, char *err, size_t errlen)
{
    size_t tlen = strlen(token), klen = strlen(key_auth);
    struct challenge *c;
    int rc = ACME_OK;

    if (tlen == 0 || tlen > ACME_TOKEN_MAX || !is_b64url(token, tlen)) {
        snprintf(err, errlen, "challenge token: not 1..%d base64url characters", ACME_TOKEN_MAX);
        return ACME_EINVAL;
    }
    /* key_auth = token "." thumbprint (RFC 8555 8.1) */
    if (klen != tlen + 1 + ACME_THUMBPRINT_LEN || memcmp(key_auth, token, tlen) != 0 ||
        key_auth[tlen] != '.' || !is_b64url(key_auth + tlen + 1, ACME_THUMBPRINT_LEN)) {
        snprintf(err, errlen, "challenge %s: key authorization is not TOKEN.THUMBPRINT", token);
        return ACME_EINVAL;
    }
    pthread_mutex_lock(&t->lock);
    purge(t, time(NULL));
    c = find(t, token, tlen);
    if (!c) {
        c = calloc(1, sizeof(*c));
        int added = c ? state_hash_table_insert(&t->table, &c->node, token_hash(t, token, tlen))
                      : STATE_ENOMEM;
        if (added != 0) {
            free(c);
            if (added == STATE_EFULL) {
                snprintf(err, errlen, "challenge table full (%d tokens)", ACME_CHALLENGES_MAX);
                rc = ACME_ELIMIT;
            } else {
                snprintf(err, errlen, "out of memory");
                rc = ACME_ENOMEM;
            }
            goto out;
        }
    }
    memcpy(c->token, token, tlen + 1);
    memcpy(c->key_auth, key_auth, klen + 1);
    c->expires = expires;
out:
    pthread_mutex_unlock(&t->lock);
    return rc;
}

void acme_challenges_remove(struct acme_challenges *t, const char *token)
{
    pthread_mutex_lock(&t->lock);
    struct challenge *c = find(t, token, strlen(token));
    if (c) {
        state_hash_table_remove(&t->table, &c->node);
        free(c);
    }
    pthread_mutex_unlock(&t->lock);
}

size_t acme_challenges_count(struct acme_challenges *t)
{
    pthread_mutex_lock(&t->lock);
    purge(t, time(NULL));
    size_t n = t->table.count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

int acme_challenges_answer(struct acme_challenges *t, const char *path, size_t len, char *body,
                           size_t cap, size_t *body_len)
{
    const size_t plen = sizeof(ACME_CHALLENGE_PREFIX) - 1;
    const char *token = path + plen;
    size_t tlen = len - plen;
    struct challenge *c;
    int status = 404;

    if (len < plen || memcmp(path, ACME_CHALLENGE_PREFIX, plen) != 0)
        return 0;
    if (tlen == 0 || tlen > ACME_TOKEN_MAX || !is_b64url(token, tlen))
        return 404;
    pthread_mutex_lock(&t->lock);
    c = find(t, token, tlen);
    if (c && c->expires > time(NULL)) {
        size_t n = strlen(c->key_auth);
        if (n <= cap) {
            memcpy(body, c->key_auth, n);
            *body_len = n;
            status = 200;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return status;
}

/* The single-gateway publisher: the token is answerable as soon as it is in our table. */
static int local_publish(void *ctx, const char *token, const char *key_auth, char *err,
                         size_t errlen)
{
    /* an order that is not validated within a day is abandoned by every CA */
    return acme_challenges_put(ctx, token, key_auth, time(NULL) + 86400, err, errlen);
}

static void local_withdraw(void *ctx, const char *token)
{
    acme_challenges_remove(ctx, token);
}

struct acme_publisher acme_publisher_local(struct acme_challenges *table)
{
    return (struct acme_publisher){local_publish, local_withdraw, table, NULL};
}
