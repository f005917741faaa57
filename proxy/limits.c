/*
 * limits.c - per-client-IP connection counts and request token buckets, shared by all
 * workers. A hash table with striped locks: a connection takes a lock at accept and close, a
 * request once for its token, never for long.
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

static void make_key(const struct sockaddr *sa, uint8_t key[17])
{
    memset(key, 0, 17);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        key[0] = 6;
        memcpy(key + 1, &in6->sin6_addr, 16);
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &in4->sin_addr, 4);
    }
}

static unsigned key_bucket(const uint8_t key[17])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 17; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % PROXY_IP_BUCKETS;
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
    uint8_t key[17];
    make_key(sa, key);
    unsigned b = key_bucket(key);
    struct proxy_ipslot *s;
    pthread_mutex_lock(stripe(t, b));
    for (s = t->buckets[b]; s; s = s->next)
        if (memcmp(s->key, key, 17) == 0)
            break;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            goto out;
        memcpy(s->key, key, 17);
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
            return;
        }
    }
}

void proxy_ip_release(struct proxy_iptable *t, struct proxy_ipslot *s)
{
    unsigned b = key_bucket(s->key);
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
    unsigned b = key_bucket(s->key);
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
                    continue;
                }
            }
            pp = &s->next;
        }
        pthread_mutex_unlock(stripe(t, b));
    }
}
