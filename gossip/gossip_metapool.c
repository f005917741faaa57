/*
 * gossip_metapool.c - member metadata stored once per process and shared by reference.
 *
 * Every member holds an entry for every member of the fleet, each with its metadata (about
 * 600 bytes: name, domain, version, addresses, witness key). A daemon holds one table, but the
 * simulator holds n of them in one process: 10,000 members would need 60 GB for metadata
 * alone. Metadata is immutable once stored, so equal metadata is kept once, reference
 * counted, in a process-wide table keyed by keyed SipHash of its canonical form; a member
 * whose metadata changes takes a reference to the new one and drops the old.
 *
 * The table is bounded by the members that reference it (each instance holds at most
 * GOSSIP_MEMBERS_MAX). A mutex guards it: instances on different threads may share it.
 * Readers need no lock (an entry never changes while referenced).
 */
#include "gossip/gossip_int.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct gmeta_ent {
    struct gmeta_ent *next;  /* hash chain */
    uint64_t hash;           /* of meta */
    uint64_t refs;           /* members holding it */
    struct gossip_meta meta; /* canonical: zero past every string and count */
};

static pthread_mutex_t gmeta_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gmeta_ent **gmeta_table; /* chains, gmeta_size of them (a power of two) */
static size_t gmeta_size, gmeta_count;
static uint64_t gmeta_key[2];

static void gmeta_copy_str(char *out, size_t cap, const char *in)
{
    size_t len = strnlen(in, cap - 1);

    memcpy(out, in, len);
}

static void gmeta_copy_addr(struct gossip_addr *out, const struct gossip_addr *in)
{
    out->family = in->family;
    memcpy(out->ip, in->ip, sizeof(out->ip));
    out->port = in->port;
}

/* The canonical form: equal metadata is equal bytes (no padding or bytes past a NUL). */
static void gmeta_canon(const struct gossip_meta *in, struct gossip_meta *out)
{
    memset(out, 0, sizeof(*out));
    gmeta_copy_str(out->name, sizeof(out->name), in->name);
    gmeta_copy_str(out->domain, sizeof(out->domain), in->domain);
    gmeta_copy_str(out->version, sizeof(out->version), in->version);
    gmeta_copy_addr(&out->http, &in->http);
    gmeta_copy_addr(&out->https, &in->https);
    gmeta_copy_addr(&out->api, &in->api);
    out->public_count =
        in->public_count < GOSSIP_PUBLIC_ADDRS_MAX ? in->public_count : GOSSIP_PUBLIC_ADDRS_MAX;
    for (size_t i = 0; i < out->public_count; i++)
        gmeta_copy_addr(&out->public_addrs[i], &in->public_addrs[i]);
    memcpy(out->witness, in->witness, sizeof(out->witness));
}

static int gmeta_grow(void)
{
    size_t size = gmeta_size ? gmeta_size * 2 : 256;
    struct gmeta_ent **t = calloc(size, sizeof(*t));

    if (t == NULL)
        return GOSSIP_ENOMEM;
    if (gmeta_size == 0)
        state_siphash_key(gmeta_key);
    for (size_t i = 0; i < gmeta_size; i++) {
        while (gmeta_table[i] != NULL) {
            struct gmeta_ent *e = gmeta_table[i];
            gmeta_table[i] = e->next;
            e->next = t[e->hash & (size - 1)];
            t[e->hash & (size - 1)] = e;
        }
    }
    free(gmeta_table);
    gmeta_table = t;
    gmeta_size = size;
    return 0;
}

const struct gossip_meta *gmeta_get(const struct gossip_meta *meta)
{
    struct gossip_meta canon;
    struct gmeta_ent *e = NULL;
    uint64_t h;

    gmeta_canon(meta, &canon);
    pthread_mutex_lock(&gmeta_lock);
    if (gmeta_count >= gmeta_size && gmeta_grow() != 0)
        goto out;
    h = state_siphash(gmeta_key, &canon, sizeof(canon));
    for (e = gmeta_table[h & (gmeta_size - 1)]; e != NULL; e = e->next)
        if (e->hash == h && memcmp(&e->meta, &canon, sizeof(canon)) == 0)
            break;
    if (e == NULL) {
        e = malloc(sizeof(*e));
        if (e == NULL)
            goto out;
        e->hash = h;
        e->refs = 0;
        e->meta = canon;
        e->next = gmeta_table[h & (gmeta_size - 1)];
        gmeta_table[h & (gmeta_size - 1)] = e;
        gmeta_count++;
    }
    e->refs++;
out:
    pthread_mutex_unlock(&gmeta_lock);
    return e != NULL ? &e->meta : NULL;
}

void gmeta_put(const struct gossip_meta *meta)
{
    struct gmeta_ent *e, **p;

    if (meta == NULL)
        return;
    e = (struct gmeta_ent *)((const char *)meta - offsetof(struct gmeta_ent, meta));
    pthread_mutex_lock(&gmeta_lock);
    if (--e->refs == 0) {
        for (p = &gmeta_table[e->hash & (gmeta_size - 1)]; *p != e; p = &(*p)->next)
            ;
        *p = e->next;
        gmeta_count--;
        free(e);
    }
    pthread_mutex_unlock(&gmeta_lock);
}

size_t gmeta_stored(void)
{
    size_t n;

    pthread_mutex_lock(&gmeta_lock);
    n = gmeta_count;
    pthread_mutex_unlock(&gmeta_lock);
    return n;
}
