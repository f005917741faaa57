/*
 * gossip_share.c - member data stored once per process and shared by reference.
 *
 * Every member holds an entry for every member of the fleet, each with its id and metadata
 * (about 600 bytes: name, domain, version, addresses, witness key). A daemon holds one table,
 * but the simulator holds n of them in one process: 10,000 members would need 60 GB for
 * metadata alone. Ids and metadata never change once stored, so equal bytes are kept once,
 * reference counted, in a process-wide table keyed by keyed SipHash; a member whose metadata
 * changes takes a reference to the new bytes and drops the old.
 *
 * The table is bounded by the members that reference it (each instance holds at most
 * GOSSIP_MEMBERS_MAX). A mutex guards it: instances on different threads may share it.
 * Readers need no lock (stored bytes never change while referenced).
 */
#include "gossip/gossip_int.h"

#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct gshare_ent {
    struct gshare_ent *next; /* hash chain */
    uint64_t hash;           /* of the bytes */
    uint32_t refs;           /* holders */
    uint32_t len;            /* bytes */
    uint64_t data[];         /* the bytes (8-aligned) */
};

static pthread_mutex_t gshare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gshare_ent **gshare_table; /* chains, gshare_size of them (a power of two) */
static size_t gshare_size, gshare_count;
static uint64_t gshare_key[2];

static int gshare_grow(void)
{
    size_t size = gshare_size ? gshare_size * 2 : 256;
    struct gshare_ent **t = calloc(size, sizeof(*t));

    if (t == NULL)
        return GOSSIP_ENOMEM;
    if (gshare_size == 0)
        state_siphash_key(gshare_key);
    for (size_t i = 0; i < gshare_size; i++) {
        while (gshare_table[i] != NULL) {
            struct gshare_ent *e = gshare_table[i];
            gshare_table[i] = e->next;
            e->next = t[e->hash & (size - 1)];
            t[e->hash & (size - 1)] = e;
        }
    }
    free(gshare_table);
    gshare_table = t;
    gshare_size = size;
    return 0;
}

const void *gshare_get(const void *data, size_t len)
{
    struct gshare_ent *e = NULL;
    uint64_t h;

    if (len > UINT32_MAX)
        return NULL;
    pthread_mutex_lock(&gshare_lock);
    if (gshare_count >= gshare_size && gshare_grow() != 0)
        goto out;
    h = state_siphash(gshare_key, data, len);
    for (e = gshare_table[h & (gshare_size - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->len == len && memcmp(e->data, data, len) == 0)
            break;
    if (e == NULL) {
        e = malloc(sizeof(*e) + len);
        if (e == NULL)
            goto out;
        e->hash = h;
        e->refs = 0;
        e->len = (uint32_t)len;
        memcpy(e->data, data, len);
        e->next = gshare_table[h & (gshare_size - 1)];
        gshare_table[h & (gshare_size - 1)] = e;
        gshare_count++;
    }
    e->refs++;
out:
    pthread_mutex_unlock(&gshare_lock);
    return e != NULL ? e->data : NULL;
}

void gshare_put(const void *data)
{
    struct gshare_ent *e, **p;

    if (data == NULL)
        return;
    e = (struct gshare_ent *)((const char *)data - offsetof(struct gshare_ent, data));
    pthread_mutex_lock(&gshare_lock);
    if (--e->refs == 0) {
        for (p = &gshare_table[e->hash & (gshare_size - 1)]; *p != e; p = &(*p)->next)
            ;
        *p = e->next;
        gshare_count--;
        free(e);
    }
    pthread_mutex_unlock(&gshare_lock);
}

size_t gshare_stored(void)
{
    size_t n;

    pthread_mutex_lock(&gshare_lock);
    n = gshare_count;
    pthread_mutex_unlock(&gshare_lock);
    return n;
}
