/*
 * route_table.c - served host name -> route, read by proxy workers without locks.
 *
 * Design
 * ------
 * The table is a liburcu lock-free resizable hash table (cds_lfht, memb flavour) keyed by the
 * served host ("name.domain" or a custom fqdn). Each route lives in one immutable,
 * variable-length node allocated to fit: the host bytes, the record key only when it is not a
 * prefix of the host, and the backends packed to 7 bytes (IPv4) or 19 bytes (IPv6) each. A
 * node is never modified once published: to change a route the writer builds a new node and
 * swaps it in with cds_lfht_add_replace, which readers see atomically, so a reader holds
 * either the old node or the new one and never a mix. Removed and replaced nodes are freed by
 * call_rcu after a grace period, once no reader can still hold them.
 *
 * Readers (proxy workers) register once per thread, look the host up inside
 * rcu_read_lock/rcu_read_unlock, copy the route into a caller buffer and leave: no pointer
 * into the table survives the critical section, so a worker may block or sleep afterwards
 * without delaying reclamation.
 *
 * Hash: keyed SipHash-1-3 (state_siphash, the one keyed hash) with a per-table random key. Anyone
 * can reserve names, so an unkeyed hash would let an attacker fill one bucket chain with chosen
 * colliding names and turn every lookup into a list walk (hash flooding).
 *
 * Host names are case-insensitive: the table stores lowercase bytes and lookups fold case
 * while hashing, so "App.Example.ORG" finds "app.example.org". A lookup also accepts the
 * absolute form with one trailing dot ("app.example.org."), as Host headers may carry it.
 *
 * TSan
 * ----
 * liburcu orders memory with inline-assembly barriers and the membarrier system call, which
 * ThreadSanitizer cannot see, so without help TSan would report every read of a node by a
 * worker as racing with the writer that filled it, and every free as racing with the readers.
 * tests/tsan.supp only silences races reported entirely inside liburcu (called_from_lib);
 * our own accesses stay fully checked because this file states RCU's happens-before edges to
 * TSan explicitly, in builds with WEBGW_TSAN:
 *   publish:   the writer fills a node, then __tsan_release(node), then cds_lfht_add_replace;
 *   lookup:    a reader calls __tsan_acquire(node) before it reads any field of a node it
 *              reached through the table (in the match function and before copying);
 *   reclaim:   before rcu_read_unlock every reader does __tsan_release(&route_reclaim_sync);
 *              the writer does __tsan_release(node) before call_rcu; the reclaim callback
 *              does __tsan_acquire(&route_reclaim_sync) and __tsan_acquire(node) before free.
 * Those are exactly the guarantees RCU gives (a grace period ends only after every critical
 * section that could see the node has ended), so the annotations hide no real race: a reader
 * touching a node outside its critical section is still reported.
 */
#include "state/state.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>
#include <urcu/rculfhash.h>

#ifdef WEBGW_TSAN
#include <sanitizer/tsan_interface.h>
#define ROUTE_TSAN_RELEASE(addr) __tsan_release((void *)(addr))
#define ROUTE_TSAN_ACQUIRE(addr) __tsan_acquire((void *)(addr))
#else
#define ROUTE_TSAN_RELEASE(addr) ((void)(addr))
#define ROUTE_TSAN_ACQUIRE(addr) ((void)(addr))
#endif

/* Node flags. */
#define ROUTE_NODE_PASSTHROUGH 0x01u /* splice TLS by SNI */
#define ROUTE_NODE_OWN_NAME 0x02u    /* the key is stored after the host (not a host prefix) */

#define ROUTE_BACKEND_V4_BYTES 7  /* family, 4 address bytes, port (big-endian) */
#define ROUTE_BACKEND_V6_BYTES 19 /* family, 16 address bytes, port (big-endian) */

/* Bucket count bounds. The table grows when routes outnumber buckets and shrinks when they
 * fall under an eighth of them (hysteresis, so a count near a power of two does not thrash). */
#define ROUTE_BUCKETS_MIN 1024 /* 16 KiB of buckets: never shrink below */
#define ROUTE_SHRINK_FACTOR 8  /* shrink when count < buckets / 8 */

/* One published route; immutable from the moment it is in the table until it is freed. */
struct route_node {
    struct cds_lfht_node lfht; /* chain link and reverse hash, owned by cds_lfht */
    struct rcu_head rcu;       /* call_rcu link used to free the node after a grace period */
    uint64_t version;          /* record version that produced this route */
    uint8_t host_len;          /* bytes of the host in data[], 1..253, no NUL */
    uint8_t name_len;          /* bytes of the key: a host prefix or stored after the host */
    uint8_t flags;             /* ROUTE_NODE_* */
    uint8_t backend_count;     /* packed backends after the strings, 1..16 */
    uint8_t data[];            /* host, [key], backends */
};

struct state_routes {
    struct cds_lfht *ht;               /* host -> struct route_node */
    uint64_t hash_key[2];              /* SipHash key, random per table */
    atomic_size_t count;               /* routes in the table */
    atomic_size_t node_bytes;          /* malloc_usable_size of the live nodes */
    atomic_size_t buckets;             /* bucket count last asked of cds_lfht_resize */
    state_routes_observer_fn observer; /* told of every route published and retired */
    void *observer_ctx;                /* its context */
};

/* What a lookup compares nodes against. */
struct route_key {
    const char *host; /* lowercase host bytes */
    size_t len;       /* host length */
};

/* TSan sync object standing for "every read-side critical section so far has ended". */
static char route_reclaim_sync;

/* ---- RCU thread registration --------------------------------------------------------------- */

/* A thread is registered with liburcu at most once. Readers register explicitly (nesting
 * counted); a writer, or a reader that did not register, is registered on its first update or
 * lookup and stays registered until its thread exits (the key destructor below), because
 * liburcu must never be left with a registered thread that is gone. */
static _Thread_local bool route_rcu_registered;
static _Thread_local unsigned route_rcu_reader_refs;
static pthread_key_t route_rcu_exit_key;
static pthread_once_t route_rcu_exit_once = PTHREAD_ONCE_INIT;

static void route_rcu_thread_exit(void *arg)
{
    (void)arg;
    if (route_rcu_registered) {
        urcu_memb_unregister_thread();
        route_rcu_registered = false;
    }
}

static void route_rcu_exit_key_create(void)
{
    /* Without the key a writer thread that exits while registered would leave liburcu
     * waiting on freed thread state: treat failure as fatal, it only happens at startup. */
    if (pthread_key_create(&route_rcu_exit_key, route_rcu_thread_exit) != 0)
        abort();
}

static void route_rcu_ensure_registered(void)
{
    if (route_rcu_registered)
        return;
    pthread_once(&route_rcu_exit_once, route_rcu_exit_key_create);
    urcu_memb_register_thread();
    route_rcu_registered = true;
    pthread_setspecific(route_rcu_exit_key, &route_rcu_registered);
}

void state_routes_reader_register(void)
{
    route_rcu_reader_refs++;
    route_rcu_ensure_registered();
}

void state_routes_reader_unregister(void)
{
    if (route_rcu_reader_refs == 0)
        return;
    if (--route_rcu_reader_refs == 0 && route_rcu_registered) {
        urcu_memb_unregister_thread();
        route_rcu_registered = false;
    }
}

/* ---- hashing: SipHash-1-3 (siphash.c) over the lowercase host -------------------------------- */

static inline uint8_t route_lower(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + ('a' - 'A')) : c;
}

/* Hashes `len` bytes already folded to lowercase. */
static unsigned long route_hash(const struct state_routes *routes, const uint8_t *p, size_t len)
{
    return (unsigned long)state_siphash(routes->hash_key, p, len);
}

/* ---- nodes ---------------------------------------------------------------------------------- */

static inline const uint8_t *route_node_name(const struct route_node *node)
{
    return (node->flags & ROUTE_NODE_OWN_NAME) ? node->data + node->host_len : node->data;
}

static inline const uint8_t *route_node_backends(const struct route_node *node)
{
    size_t off = node->host_len;
    if (node->flags & ROUTE_NODE_OWN_NAME)
        off += node->name_len;
    return node->data + off;
}

static int route_node_match(struct cds_lfht_node *lfht, const void *arg)
{
    const struct route_node *node = caa_container_of(lfht, struct route_node, lfht);
    const struct route_key *key = arg;

    ROUTE_TSAN_ACQUIRE(node); /* we reached a published node: see what its writer wrote */
    return node->host_len == key->len && memcmp(node->data, key->host, key->len) == 0;
}

static void route_node_reclaim(struct rcu_head *head)
{
    struct route_node *node = caa_container_of(head, struct route_node, rcu);

    ROUTE_TSAN_ACQUIRE(&route_reclaim_sync); /* the grace period: every reader has left */
    ROUTE_TSAN_ACQUIRE(node);                /* and the writer is done with it */
    free(node);
}

/* Builds the immutable node for `route` with the host folded to lowercase. */
static struct route_node *route_node_build(const struct state_route *route, size_t host_len,
                                           size_t name_len)
{
    bool own_name = true;
    size_t size = sizeof(struct route_node) + host_len;
    struct route_node *node;
    uint8_t *p;

    if (name_len <= host_len) {
        own_name = false;
        for (size_t i = 0; i < name_len; i++) {
            if (route_lower((uint8_t)route->name[i]) != route_lower((uint8_t)route->host[i])) {
                own_name = true;
                break;
            }
        }
    }
    if (own_name)
        size += name_len;
    for (uint8_t i = 0; i < route->backend_count; i++)
        size += route->backends[i].family == 4 ? ROUTE_BACKEND_V4_BYTES : ROUTE_BACKEND_V6_BYTES;

    node = malloc(size);
    if (!node)
        return NULL;
    cds_lfht_node_init(&node->lfht);
    node->version = route->version;
    node->host_len = (uint8_t)host_len;
    node->name_len = (uint8_t)name_len;
    node->flags = (route->tls_passthrough ? ROUTE_NODE_PASSTHROUGH : 0) |
                  (own_name ? ROUTE_NODE_OWN_NAME : 0);
    node->backend_count = route->backend_count;
    p = node->data;
    for (size_t i = 0; i < host_len; i++)
        *p++ = route_lower((uint8_t)route->host[i]);
    if (own_name) {
        for (size_t i = 0; i < name_len; i++)
            *p++ = route_lower((uint8_t)route->name[i]);
    }
    for (uint8_t i = 0; i < route->backend_count; i++) {
        const struct state_backend *be = &route->backends[i];
        size_t addr_len = be->family == 4 ? 4 : 16;

        *p++ = be->family;
        memcpy(p, be->addr, addr_len);
        p += addr_len;
        *p++ = (uint8_t)(be->port >> 8);
        *p++ = (uint8_t)(be->port & 0xff);
    }
    return node;
}

/* Copies a node out into the caller's route. Fields past the NULs and past backend_count are
 * left untouched. */
static void route_node_copy(const struct route_node *node, struct state_route *out)
{
    const uint8_t *p = route_node_backends(node);

    memcpy(out->host, node->data, node->host_len);
    out->host[node->host_len] = '\0';
    memcpy(out->name, route_node_name(node), node->name_len);
    out->name[node->name_len] = '\0';
    out->tls_passthrough = (node->flags & ROUTE_NODE_PASSTHROUGH) != 0;
    out->backend_count = node->backend_count;
    out->version = node->version;
    for (uint8_t i = 0; i < node->backend_count; i++) {
        struct state_backend *be = &out->backends[i];
        size_t addr_len;

        be->family = *p++;
        addr_len = be->family == 4 ? 4 : 16;
        memset(be->addr, 0, sizeof(be->addr));
        memcpy(be->addr, p, addr_len);
        p += addr_len;
        be->port = (uint16_t)((p[0] << 8) | p[1]);
        p += 2;
    }
}

/* Tells the observer, if any, that `node` is now published (added) or retired. */
static void route_node_observe(struct state_routes *routes, const struct route_node *node,
                               bool added)
{
    struct state_route copy;

    if (!routes->observer)
        return;
    route_node_copy(node, &copy);
    routes->observer(routes->observer_ctx, &copy, added);
}

/* Unlinks a node found by the writer (inside its read-side critical section) and schedules
 * it to be freed after a grace period. */
static void route_node_retire(struct state_routes *routes, struct route_node *node)
{
    route_node_observe(routes, node, false);
    atomic_fetch_sub_explicit(&routes->count, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&routes->node_bytes, malloc_usable_size(node), memory_order_relaxed);
    ROUTE_TSAN_RELEASE(node); /* the writer's last reads (match) precede the free */
    urcu_memb_call_rcu(&node->rcu, route_node_reclaim);
}

/* ---- table ---------------------------------------------------------------------------------- */

/* Keeps about one route per bucket. cds_lfht's own automatic resizing lets chains reach eight
 * nodes before it grows (and only at power-of-two counts), and every node on a chain is a
 * cache miss for the reader: on a 1M-route table that multiplied lookup time. So the writer
 * sizes the table itself: it doubles the buckets when routes outnumber them and halves them
 * when routes fall under an eighth. cds_lfht_resize runs in the writer's thread and readers
 * keep going during it; it must be called outside a read-side critical section. Growing is
 * amortised: the doubling to 1M buckets populates 512K bucket nodes once. */
static void route_table_resize(struct state_routes *routes)
{
    size_t count = atomic_load_explicit(&routes->count, memory_order_relaxed);
    size_t buckets = atomic_load_explicit(&routes->buckets, memory_order_relaxed);
    size_t want = buckets;

    while (count > want)
        want *= 2;
    while (want > ROUTE_BUCKETS_MIN && count < want / ROUTE_SHRINK_FACTOR)
        want /= 2;
    if (want == buckets)
        return;
    /* Concurrent writers: one of them wins the right to resize to its target. */
    if (atomic_compare_exchange_strong(&routes->buckets, &buckets, want))
        cds_lfht_resize(routes->ht, want);
}

struct state_routes *state_routes_new(void)
{
    struct state_routes *routes = calloc(1, sizeof(*routes));

    if (!routes)
        return NULL;
    state_siphash_key(routes->hash_key);
    atomic_init(&routes->count, 0);
    atomic_init(&routes->node_bytes, 0);
    atomic_init(&routes->buckets, ROUTE_BUCKETS_MIN);
    /* No CDS_LFHT_AUTO_RESIZE: see route_table_resize. */
    routes->ht =
        cds_lfht_new_flavor(ROUTE_BUCKETS_MIN, ROUTE_BUCKETS_MIN, 0, 0, &urcu_memb_flavor, NULL);
    if (!routes->ht) {
        free(routes);
        return NULL;
    }
    return routes;
}

void state_routes_free(struct state_routes *routes)
{
    struct cds_lfht_iter iter;
    struct route_node *node;

    if (!routes)
        return;
    route_rcu_ensure_registered();
    urcu_memb_read_lock();
    cds_lfht_for_each_entry(routes->ht, &iter, node, lfht)
    {
        if (cds_lfht_del(routes->ht, &node->lfht) == 0)
            route_node_retire(routes, node);
    }
    urcu_memb_read_unlock();
    /* Wait until every node scheduled above (and earlier) is freed. */
    urcu_memb_barrier();
    cds_lfht_destroy(routes->ht, NULL);
    free(routes);
}

/* Length of a NUL-terminated field of at most `max` bytes, or max + 1 when unterminated. */
static size_t route_field_len(const char *s, size_t max)
{
    return strnlen(s, max + 1);
}

int state_routes_set(struct state_routes *routes, const struct state_route *route)
{
    struct route_node *node, *old;
    struct cds_lfht_node *replaced;
    struct route_key key;
    size_t host_len, name_len;

    if (!routes || !route)
        return STATE_EINVAL;
    host_len = route_field_len(route->host, STATE_FQDN_MAX);
    name_len = route_field_len(route->name, STATE_FQDN_MAX);
    if (host_len == 0 || host_len > STATE_FQDN_MAX || name_len == 0 || name_len > STATE_FQDN_MAX)
        return STATE_EINVAL;
    if (route->backend_count < 1 || route->backend_count > STATE_BACKENDS_MAX)
        return STATE_EINVAL;
    for (uint8_t i = 0; i < route->backend_count; i++) {
        if (route->backends[i].family != 4 && route->backends[i].family != 6)
            return STATE_EINVAL;
    }

    node = route_node_build(route, host_len, name_len);
    if (!node)
        return STATE_ENOMEM;
    key.host = (const char *)node->data;
    key.len = host_len;

    /* the new route's references are counted before the old one's are dropped, so a backend
     * both name is never seen unreferenced in between */
    route_node_observe(routes, node, true);
    route_rcu_ensure_registered();
    ROUTE_TSAN_RELEASE(node); /* publish: readers that find the node see it filled in */
    urcu_memb_read_lock();
    replaced = cds_lfht_add_replace(routes->ht, route_hash(routes, node->data, host_len),
                                    route_node_match, &key, &node->lfht);
    atomic_fetch_add_explicit(&routes->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&routes->node_bytes, malloc_usable_size(node), memory_order_relaxed);
    if (replaced) {
        old = caa_container_of(replaced, struct route_node, lfht);
        route_node_retire(routes, old);
    }
    urcu_memb_read_unlock();
    if (!replaced)
        route_table_resize(routes);
    return 0;
}

/* Folds host[0..len) into buf, dropping one trailing dot; returns the length or -1. */
static int route_host_fold(const char *host, size_t len, uint8_t buf[STATE_FQDN_MAX])
{
    if (!host)
        return -1;
    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 0 || len > STATE_FQDN_MAX)
        return -1;
    for (size_t i = 0; i < len; i++)
        buf[i] = route_lower((uint8_t)host[i]);
    return (int)len;
}

int state_routes_remove(struct state_routes *routes, const char *host)
{
    uint8_t folded[STATE_FQDN_MAX];
    struct cds_lfht_iter iter;
    struct cds_lfht_node *found;
    struct route_key key;
    int len, rc = STATE_ENOTFOUND;

    if (!routes || !host)
        return STATE_EINVAL;
    len = route_host_fold(host, strnlen(host, STATE_FQDN_MAX + 2), folded);
    if (len < 0)
        return STATE_EINVAL;
    key.host = (const char *)folded;
    key.len = (size_t)len;

    route_rcu_ensure_registered();
    urcu_memb_read_lock();
    cds_lfht_lookup(routes->ht, route_hash(routes, folded, key.len), route_node_match, &key, &iter);
    found = cds_lfht_iter_get_node(&iter);
    if (found && cds_lfht_del(routes->ht, found) == 0) {
        route_node_retire(routes, caa_container_of(found, struct route_node, lfht));
        rc = 0;
    }
    urcu_memb_read_unlock();
    if (rc == 0)
        route_table_resize(routes);
    return rc;
}

bool state_routes_lookup(struct state_routes *routes, const char *host, size_t host_len,
                         struct state_route *out)
{
    uint8_t folded[STATE_FQDN_MAX];
    struct cds_lfht_iter iter;
    struct cds_lfht_node *found;
    struct route_key key;
    int len;

    if (!routes || !out)
        return false;
    /* An unregistered reader would be invisible to grace periods and could read freed
     * nodes: register it now (one thread-local load when already registered). */
    if (!route_rcu_registered)
        route_rcu_ensure_registered();
    len = route_host_fold(host, host_len, folded);
    if (len < 0)
        return false;
    key.host = (const char *)folded;
    key.len = (size_t)len;

    urcu_memb_read_lock();
    cds_lfht_lookup(routes->ht, route_hash(routes, folded, key.len), route_node_match, &key, &iter);
    found = cds_lfht_iter_get_node(&iter);
    if (found) {
        const struct route_node *node = caa_container_of(found, struct route_node, lfht);

        ROUTE_TSAN_ACQUIRE(node);
        route_node_copy(node, out);
    }
    ROUTE_TSAN_RELEASE(&route_reclaim_sync); /* our reads precede any reclaim after unlock */
    urcu_memb_read_unlock();
    return found != NULL;
}

void state_routes_observe(struct state_routes *routes, state_routes_observer_fn fn, void *ctx)
{
    struct cds_lfht_iter iter;
    struct route_node *node;

    routes->observer = fn;
    routes->observer_ctx = ctx;
    if (!fn)
        return;
    route_rcu_ensure_registered();
    urcu_memb_read_lock();
    cds_lfht_for_each_entry(routes->ht, &iter, node, lfht)
    {
        ROUTE_TSAN_ACQUIRE(node);
        route_node_observe(routes, node, true);
    }
    urcu_memb_read_unlock();
}

size_t state_routes_count(struct state_routes *routes)
{
    return routes ? atomic_load_explicit(&routes->count, memory_order_relaxed) : 0;
}

size_t state_routes_memory(struct state_routes *routes)
{
    return routes ? atomic_load_explicit(&routes->node_bytes, memory_order_relaxed) : 0;
}

/* ---- deriving routes from records ----------------------------------------------------------- */

/* True when host is `domain` itself or inside it (case-insensitive). */
static bool route_host_in_domain(const char *host, const char *domain)
{
    size_t hl = strlen(host), dl = domain ? strlen(domain) : 0;

    if (dl > 0 && domain[dl - 1] == '.')
        dl--;
    if (dl == 0 || hl < dl || strncasecmp(host + hl - dl, domain, dl) != 0)
        return false;
    return hl == dl || host[hl - dl - 1] == '.';
}

/* The host a key is served as: a label (no dot) under the gateway domain, an fqdn as itself.
 * The record kind decides when it can; reserve and release records carry either shape. */
static int route_host_of(const struct state_name_view *view, const char *key, const char *domain,
                         char host[STATE_FQDN_MAX + 1], bool *fqdn)
{
    enum state_record_kind kind = view->record.kind;
    int n;

    *fqdn = kind == STATE_RECORD_FQDN || (kind != STATE_RECORD_PROXY && strchr(key, '.'));
    if (*fqdn) {
        n = snprintf(host, STATE_FQDN_MAX + 1, "%s", key);
    } else {
        if (!domain || !*domain)
            return STATE_EINVAL;
        n = snprintf(host, STATE_FQDN_MAX + 1, "%s.%s", key, domain);
    }
    if (n <= 0 || n > STATE_FQDN_MAX)
        return STATE_EINVAL;
    return 0;
}

int state_routes_apply(struct state_routes *routes, const struct state_name_view *view,
                       const char *domain)
{
    const struct state_record *rec;
    struct state_route route;
    const char *key;
    size_t key_len;
    bool serve, fqdn;
    int rc;

    if (!routes || !view)
        return STATE_EINVAL;
    rec = &view->record;
    key = view->name[0] ? view->name : rec->name;
    key_len = strnlen(key, STATE_FQDN_MAX + 1);
    if (key_len == 0 || key_len > STATE_FQDN_MAX)
        return STATE_EINVAL;
    rc = route_host_of(view, key, domain, route.host, &fqdn);
    if (rc < 0)
        return rc;

    serve = view->held && (rec->kind == STATE_RECORD_PROXY || rec->kind == STATE_RECORD_FQDN) &&
            rec->backend_count >= 1;
    /* A custom domain inside the gateway's own domain would share hosts with NAME.DOMAIN routes
     * (fqdn "shop.gw.example.com" against name "shop"), so a record for one key could replace
     * or remove the route of another owner's key. Such fqdns are never served, and their
     * removal leaves the name's route alone. */
    if (fqdn && route_host_in_domain(route.host, domain))
        return serve ? STATE_EINVAL : 0;
    if (!serve) {
        rc = state_routes_remove(routes, route.host);
        return rc == STATE_ENOTFOUND ? 0 : rc;
    }
    if (rec->backend_count > STATE_BACKENDS_MAX)
        return STATE_EINVAL;
    memcpy(route.name, key, key_len + 1);
    route.tls_passthrough = rec->tls_passthrough;
    route.backend_count = rec->backend_count;
    memcpy(route.backends, rec->backends, sizeof(route.backends[0]) * rec->backend_count);
    route.version = rec->version;
    return state_routes_set(routes, &route);
}
