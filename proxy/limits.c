/*
 * limits.c - per-client connection counts and request token buckets, shared by all workers. A
 * hash table with striped locks: a connection takes a lock at accept and close, a request once
 * for its token, never for long.
 *
 * A client is an IPv4 address or an IPv6 /64 (state_ip_key): whoever holds a /64 could
 * otherwise open max_conns from each of its 2^64 addresses. Keys are what the network sends,
 * so buckets are chosen by SipHash under a per-process random key: nobody can aim thousands of
 * clients at one chain. The table holds at most PROXY_IP_STRIPES * PROXY_IP_STRIPE_MAX entries.
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

int proxy_ip_init(struct proxy_iptable *t, uint32_t max_conns, uint32_t rate, uint32_t burst)
{
    memset(t, 0, sizeof(*t));
    for (int i = 0; i < PROXY_IP_STRIPES; i++)
        pthread_mutex_init(&t->lock[i], NULL);
    state_siphash_key(t->hash_key);
    t->max_conns = max_conns;
    t->rate = rate;
    t->burst = burst ? burst : rate;
    return 0;
}

void proxy_ip_destroy(struct proxy_iptable *t)
{
    for (int b = 0; b < PROXY_IP_BUCKETS; b++) {
        struct proxy_ipslot *s = t->buckets[b];
        while (s) {
            struct proxy_ipslot *n = s->next;
            free(s);
            s = n;
        }
        t->buckets[b] = NULL;
    }
    for (int i = 0; i < PROXY_IP_STRIPES; i++)
        pthread_mutex_destroy(&t->lock[i]);
}

static unsigned key_bucket(const struct proxy_iptable *t, const uint8_t key[STATE_IP_KEY_LEN])
{
    return (unsigned)(state_siphash(t->hash_key, key, STATE_IP_KEY_LEN) % PROXY_IP_BUCKETS);
}

static pthread_mutex_t *stripe(struct proxy_iptable *t, unsigned bucket)
{
    return &t->lock[bucket % PROXY_IP_STRIPES];
}

static void refill(struct proxy_iptable *t, struct proxy_ipslot *s, uint64_t now_ms)
{
    if (now_ms > s->last_ms) {
        s->tokens += (double)(now_ms - s->last_ms) * t->rate / 1000.0;
        if (s->tokens > t->burst)
            s->tokens = t->burst;
        s->last_ms = now_ms;
    }
}

struct proxy_ipslot *proxy_ip_acquire(struct proxy_iptable *t, const struct sockaddr *sa)
{
    uint8_t key[STATE_IP_KEY_LEN];
    state_ip_key(sa, key);
    unsigned b = key_bucket(t, key);
    struct proxy_ipslot *s;
    pthread_mutex_lock(stripe(t, b));
    for (s = t->buckets[b]; s; s = s->next)
        if (memcmp(s->key, key, STATE_IP_KEY_LEN) == 0)
            break;
    if (s == NULL) {
        size_t *entries = &t->entries[b % PROXY_IP_STRIPES];

        if (*entries >= PROXY_IP_STRIPE_MAX)
            goto out; /* s is NULL: refused as over the limit */
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            goto out;
        (*entries)++;
        memcpy(s->key, key, STATE_IP_KEY_LEN);
        s->tokens = t->burst;
        s->last_ms = proxy_mono_ms();
        s->next = t->buckets[b];
        t->buckets[b] = s;
    }
    if (t->max_conns && s->conns >= t->max_conns) {
        s = NULL;
        goto out;
    }
    s->conns++;
out:
    pthread_mutex_unlock(stripe(t, b));
    return s;
}

static void unlink_slot(struct proxy_iptable *t, unsigned b, struct proxy_ipslot *s)
{
    for (struct proxy_ipslot **pp = &t->buckets[b]; *pp; pp = &(*pp)->next) {
        if (*pp == s) {
            *pp = s->next;
            free(s);
            t->entries[b % PROXY_IP_STRIPES]--;
            return;
        }
    }
}

void proxy_ip_release(struct proxy_iptable *t, struct proxy_ipslot *s)
{
    unsigned b = key_bucket(t, s->key);
    pthread_mutex_lock(stripe(t, b));
    s->conns--;
    if (s->conns == 0) {
        /* keep a drained bucket around: reconnecting must not refill it */
        refill(t, s, proxy_mono_ms());
        if (t->rate == 0 || s->tokens >= t->burst)
            unlink_slot(t, b, s);
    }
    pthread_mutex_unlock(stripe(t, b));
}

bool proxy_ip_take(struct proxy_iptable *t, struct proxy_ipslot *s, uint64_t now_ms)
{
    if (t->rate == 0)
        return true;
    unsigned b = key_bucket(t, s->key);
    bool ok = false;
    pthread_mutex_lock(stripe(t, b));
    refill(t, s, now_ms);
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        ok = true;
    }
    pthread_mutex_unlock(stripe(t, b));
    return ok;
}

void proxy_ip_sweep(struct proxy_iptable *t, uint64_t now_ms)
{
    if (t->rate == 0)
        return;
    for (unsigned b = 0; b < PROXY_IP_BUCKETS; b++) {
        pthread_mutex_lock(stripe(t, b));
        struct proxy_ipslot **pp = &t->buckets[b];
        while (*pp) {
            struct proxy_ipslot *s = *pp;
            if (s->conns == 0) {
                refill(t, s, now_ms);
                if (s->tokens >= t->burst) {
                    *pp = s->next;
                    free(s);
                    t->entries[b % PROXY_IP_STRIPES]--;
                    continue;
                }
            }
            pp = &s->next;
        }
        pthread_mutex_unlock(stripe(t, b));
    }
}

void proxy_ip_stats(struct proxy_iptable *t, size_t *entries, size_t *longest)
{
    *entries = 0;
    *longest = 0;
    for (unsigned b = 0; b < PROXY_IP_BUCKETS; b++) {
        size_t chain = 0;

        pthread_mutex_lock(stripe(t, b));
        for (const struct proxy_ipslot *s = t->buckets[b]; s; s = s->next)
            chain++;
        pthread_mutex_unlock(stripe(t, b));
        *entries += chain;
        if (chain > *longest)
            *longest = chain;
    }
}
