/*
 * gossip_share.c - member data stored once per process and shared by handle.
 *
 * Every member holds an entry for every member of the fleet, each with its id, address and
 * metadata (about 600 bytes: name, domain, version, addresses, witness key). A daemon holds
 * one table, but the simulator holds n of them in one process: 10,000 members would need
 * 60 GB for metadata alone. Ids, addresses and metadata never change once stored, so equal
 * bytes are kept once, reference counted, in a process-wide table keyed by keyed SipHash; a
 * member whose metadata changes takes a reference to the new bytes and drops the old.
 *
 * Each stored blob has a small number (a handle, 1 and up; 0 is "none") in one of two
 * spaces: ids (GSHARE_IDS), numbered densely so that a member table is an array indexed by
 * the id's handle (gossip_members.c: no per-table hash index, no id pointer per entry), and
 * everything else (GSHARE_BLOBS). A handle is reused once its last reference is dropped.
 *
 * A member table entry holds none of these itself but one handle of a third space
 * (GSHARE_VERS): a member's version, the tuple (id, incarnation, address, metadata), stored
 * once for every table that agrees on it (in a converged fleet, all of them). A version holds
 * one reference to each of its parts while it is stored (gshare_ver_ref / gshare_ver_unref),
 * so an entry is 8 bytes: the version's handle, the member's state and the time it changed.
 *
 * The table is bounded by the members that reference it (each instance holds at most
 * GOSSIP_MEMBERS_MAX), and handles by GSHARE_DIR * GSHARE_CHUNK a space. A mutex guards
 * it: instances on different threads may share it. Reading a held handle's bytes needs no
 * lock (stored bytes never change while referenced, and directory chunks never move).
 */
#include "gossip/gossip_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define GSHARE_CHUNK 4096u /* handles per directory chunk */
#define GSHARE_DIR 1024u   /* chunks a space: 4M handles */

struct gshare_ent {
    struct gshare_ent *next; /* hash chain */
    uint64_t hash;           /* of the bytes */
    uint32_t refs;           /* holders */
    uint32_t len;            /* bytes */
    uint32_t handle;         /* its number in its space */
    uint32_t kind;           /* GSHARE_IDS / GSHARE_BLOBS */
    uint64_t data[];         /* the bytes (8-aligned) */
};

struct gshare_space {
    struct gshare_ent **dir[GSHARE_DIR]; /* handle -> entry, chunks allocated on demand */
    uint32_t next;                       /* handles handed out so far (the next new one) */
    uint32_t *free;                      /* released handles, reused first */
    size_t nfree, free_cap;
};

static pthread_mutex_t gshare_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gshare_ent **gshare_table; /* chains, gshare_size of them (a power of two) */
static size_t gshare_size, gshare_count;
static uint64_t gshare_key[2];
static struct gshare_space gshare_spaces[GSHARE_KINDS];

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

/* A handle for e in its space (lock held); 0 when the space is full or out of memory. */
static uint32_t gshare_number(struct gshare_space *s, struct gshare_ent *e)
{
    uint32_t h;

    if (s->nfree > 0) {
        h = s->free[--s->nfree];
    } else {
        if (s->next + 1 >= GSHARE_DIR * GSHARE_CHUNK)
            return 0;
        h = s->next + 1;
        if (s->dir[h / GSHARE_CHUNK] == NULL &&
            (s->dir[h / GSHARE_CHUNK] = calloc(GSHARE_CHUNK, sizeof(struct gshare_ent *))) == NULL)
            return 0;
        s->next = h;
    }
    s->dir[h / GSHARE_CHUNK][h % GSHARE_CHUNK] = e;
    return h;
}

static void gshare_release(struct gshare_space *s, uint32_t h)
{
    if (s->nfree == s->free_cap) {
        size_t cap = s->free_cap ? s->free_cap * 2 : 256;
        uint32_t *f = realloc(s->free, cap * sizeof(*f));
        if (f == NULL)
            return; /* the handle is lost, not reused: harmless */
        s->free = f;
        s->free_cap = cap;
    }
    s->dir[h / GSHARE_CHUNK][h % GSHARE_CHUNK] = NULL;
    s->free[s->nfree++] = h;
}

static struct gshare_ent *gshare_find(int kind, const void *data, size_t len, uint64_t h)
{
    struct gshare_ent *e;

    for (e = gshare_table[h & (gshare_size - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->kind == (uint32_t)kind && e->len == len &&
            memcmp(e->data, data, len) == 0)
            return e;
    return NULL;
}

/* gshare_ref; *created tells whether the bytes were stored just now (the first reference). */
static uint32_t gshare_ref_new(int kind, const void *data, size_t len, bool *created)
{
    struct gshare_ent *e = NULL;
    uint32_t handle = 0;
    uint64_t h;

    *created = false;
    if (len > UINT32_MAX || kind < 0 || kind >= GSHARE_KINDS)
        return 0;
    pthread_mutex_lock(&gshare_lock);
    if (gshare_count >= gshare_size && gshare_grow() != 0)
        goto out;
    h = state_siphash(gshare_key, data, len) ^ (uint64_t)kind;
    e = gshare_find(kind, data, len, h);
    if (e == NULL) {
        e = malloc(sizeof(*e) + len);
        if (e == NULL)
            goto out;
        e->hash = h;
        e->refs = 0;
        e->len = (uint32_t)len;
        e->kind = (uint32_t)kind;
        memcpy(e->data, data, len);
        if ((e->handle = gshare_number(&gshare_spaces[kind], e)) == 0) {
            free(e);
            goto out;
        }
        e->next = gshare_table[h & (gshare_size - 1)];
        gshare_table[h & (gshare_size - 1)] = e;
        gshare_count++;
        *created = true;
    }
    e->refs++;
    handle = e->handle;
out:
    pthread_mutex_unlock(&gshare_lock);
    return handle;
}

uint32_t gshare_ref(int kind, const void *data, size_t len)
{
    bool created;

    return gshare_ref_new(kind, data, len, &created);
}

/* One more reference to a handle the caller holds. */
static void gshare_hold(int kind, uint32_t handle)
{
    if (handle == 0)
        return;
    pthread_mutex_lock(&gshare_lock);
    gshare_spaces[kind].dir[handle / GSHARE_CHUNK][handle % GSHARE_CHUNK]->refs++;
    pthread_mutex_unlock(&gshare_lock);
}

uint32_t gshare_lookup(int kind, const void *data, size_t len)
{
    struct gshare_ent *e = NULL;

    if (len > UINT32_MAX || kind < 0 || kind >= GSHARE_KINDS)
        return 0;
    pthread_mutex_lock(&gshare_lock);
    if (gshare_size > 0)
        e = gshare_find(kind, data, len, state_siphash(gshare_key, data, len) ^ (uint64_t)kind);
    pthread_mutex_unlock(&gshare_lock);
    return e != NULL ? e->handle : 0;
}

const void *gshare_data(int kind, uint32_t handle)
{
    struct gshare_ent *const *chunk;

    if (handle == 0)
        return NULL;
    chunk = gshare_spaces[kind].dir[handle / GSHARE_CHUNK];
    return chunk[handle % GSHARE_CHUNK]->data;
}

/* gshare_unref; true when that was the last reference (the bytes are gone). */
static bool gshare_unref_last(int kind, uint32_t handle)
{
    struct gshare_ent *e, **p;
    bool last = false;

    if (handle == 0)
        return false;
    pthread_mutex_lock(&gshare_lock);
    e = gshare_spaces[kind].dir[handle / GSHARE_CHUNK][handle % GSHARE_CHUNK];
    if (--e->refs == 0) {
        for (p = &gshare_table[e->hash & (gshare_size - 1)]; *p != e; p = &(*p)->next)
            ;
        *p = e->next;
        gshare_count--;
        gshare_release(&gshare_spaces[kind], handle);
        free(e);
        last = true;
    }
    pthread_mutex_unlock(&gshare_lock);
    return last;
}

void gshare_unref(int kind, uint32_t handle)
{
    gshare_unref_last(kind, handle);
}

/* A version's parts are held once per stored version: by the reference that stored it, and
 * released with the last one. The caller holds the parts while it asks, so they cannot go
 * away in between (another thread may store or drop the same version meanwhile: each store
 * and each last drop moves the parts' counts once). */
uint32_t gshare_ver_ref(const struct gver *v)
{
    bool created;
    uint32_t h = gshare_ref_new(GSHARE_VERS, v, sizeof(*v), &created);

    if (h != 0 && created) {
        gshare_hold(GSHARE_IDS, v->sid);
        gshare_hold(GSHARE_BLOBS, v->addr);
        gshare_hold(GSHARE_BLOBS, v->meta);
    }
    return h;
}

void gshare_ver_unref(uint32_t handle)
{
    struct gver v;

    if (handle == 0)
        return;
    v = *gshare_ver(handle);
    if (gshare_unref_last(GSHARE_VERS, handle)) {
        gshare_unref(GSHARE_IDS, v.sid);
        gshare_unref(GSHARE_BLOBS, v.addr);
        gshare_unref(GSHARE_BLOBS, v.meta);
    }
}

void gshare_ver_hold(const struct gmember *e, size_t n)
{
    pthread_mutex_lock(&gshare_lock);
    for (size_t i = 0; i < n; i++)
        if (e[i].ver != 0)
            gshare_spaces[GSHARE_VERS]
                .dir[e[i].ver / GSHARE_CHUNK][e[i].ver % GSHARE_CHUNK]
                ->refs++;
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
