/*
 * test_route_table_concurrent.c - readers never see a torn or stale-after-fresh route while
 * a writer churns the table.
 *
 * READERS threads look up random hosts in a loop while the main thread (the writer) adds,
 * replaces and removes WEBGW_ROUTE_STRESS_NAMES names (default 100000) over several rounds,
 * growing and shrinking the hash table under the readers. Every route the writer publishes
 * encodes its version in every field (backend count, family, address, port, passthrough,
 * name), so a reader that copied a mix of two versions, or memory that was freed and reused,
 * sees fields that disagree. Each reader also checks that the versions it sees for a host
 * never go backwards. Readers cannot call cmocka asserts (they are not thread-safe), so they
 * record the first failure and the main thread asserts after joining them.
 *
 * Labelled "tsan": scripts/test.sh also runs it under ThreadSanitizer, which checks the
 * happens-before annotations of state/route_table.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>

#include <cmocka.h>

#include "state/state.h"

#define READERS 3
#define ROUNDS 5

struct reader {
    pthread_t thread;            /* the reader thread */
    struct state_routes *routes; /* the table under test */
    uint32_t names;              /* hosts are h0..h(names-1) */
    atomic_bool *stop;           /* set by the writer when it is done */
    uint32_t *last_seen;         /* per host: highest version this reader saw */
    uint64_t lookups;            /* lookups done */
    atomic_uint batches;         /* batches of 256 lookups done, read by the writer */
    atomic_bool exited;          /* the reader left its loop (stop or failure) */
    uint64_t found;              /* lookups that found a route */
    char failure[256];           /* first inconsistency, empty if none */
};

static void host_of(uint32_t i, char out[32])
{
    snprintf(out, 32, "h%06u.churn.test", i);
}

/* The route of host i at version v: every field is a function of (i, v). */
static void route_of(uint32_t i, uint32_t v, struct state_route *r)
{
    memset(r, 0, sizeof(*r));
    host_of(i, r->host);
    snprintf(r->name, sizeof(r->name), "h%06u-v%u", i, v);
    r->version = v;
    r->tls_passthrough = (v & 1) != 0;
    r->backend_count = (uint8_t)(1 + (v + i) % STATE_BACKENDS_MAX);
    for (uint8_t b = 0; b < r->backend_count; b++) {
        struct state_backend *be = &r->backends[b];
        be->family = ((v + b) & 1) ? 6 : 4;
        memcpy(be->addr, &v, sizeof(v));
        memcpy(be->addr + 4, &i, sizeof(i));
        be->addr[8] = b;
        be->port = (uint16_t)(1 + (v * 31 + b) % 65535);
    }
}

/* Returns NULL when `got` is exactly the route (i, got->version), else what differs. */
static const char *route_mismatch(uint32_t i, const struct state_route *got)
{
    struct state_route want;
    uint32_t v = (uint32_t)got->version;

    if (got->version == 0 || got->version > UINT32_MAX)
        return "version out of range";
    route_of(i, v, &want);
    if (strcmp(got->host, want.host) != 0)
        return "host differs from the one looked up";
    if (strcmp(got->name, want.name) != 0)
        return "name belongs to another version";
    if (got->tls_passthrough != want.tls_passthrough)
        return "passthrough belongs to another version";
    if (got->backend_count != want.backend_count)
        return "backend count belongs to another version";
    for (uint8_t b = 0; b < want.backend_count; b++) {
        const struct state_backend *x = &got->backends[b], *y = &want.backends[b];
        if (x->family != y->family || x->port != y->port ||
            memcmp(x->addr, y->addr, x->family == 4 ? 4 : 16) != 0)
            return "backend belongs to another version";
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    struct reader *rd = arg;
    struct state_route got;
    char host[32];
    uint64_t seed = (uint64_t)(uintptr_t)rd * 0x9e3779b97f4a7c15ULL | 1;

    state_routes_reader_register();
    while (!atomic_load_explicit(rd->stop, memory_order_acquire) && !rd->failure[0]) {
        for (int k = 0; k < 256; k++) {
            uint32_t i;
            const char *bad;

            seed ^= seed << 13; /* xorshift64: a cheap private random sequence */
            seed ^= seed >> 7;
            seed ^= seed << 17;
            i = (uint32_t)(seed % rd->names);
            host_of(i, host);
            rd->lookups++;
            if (!state_routes_lookup(rd->routes, host, strlen(host), &got))
                continue;
            rd->found++;
            bad = route_mismatch(i, &got);
            if (!bad && got.version < rd->last_seen[i])
                bad = "version went backwards";
            if (bad) {
                snprintf(rd->failure, sizeof(rd->failure), "%s: %s at version %llu (had %u)", host,
                         bad, (unsigned long long)got.version, rd->last_seen[i]);
                break;
            }
            rd->last_seen[i] = (uint32_t)got.version;
        }
        atomic_fetch_add_explicit(&rd->batches, 1, memory_order_relaxed);
    }
    atomic_store(&rd->exited, true);
    state_routes_reader_unregister();
    return NULL;
}

static uint32_t stress_names(void)
{
    const char *env = getenv("WEBGW_ROUTE_STRESS_NAMES");
    long n = env ? strtol(env, NULL, 10) : 100000;
    return n >= 100 ? (uint32_t)n : 100000;
}

static void readers_see_whole_routes_while_writer_churns(void **state)
{
    const uint32_t names = stress_names();
    struct state_routes *routes = state_routes_new();
    struct reader readers[READERS];
    uint32_t *version = calloc(names, sizeof(*version));
    bool *present = calloc(names, sizeof(*present));
    atomic_bool stop;
    struct state_route r;
    char host[32];
    size_t expected = 0;
    uint64_t writes = 0;

    assert_non_null(routes);
    assert_non_null(version);
    assert_non_null(present);
    atomic_init(&stop, false);
    for (int t = 0; t < READERS; t++) {
        memset(&readers[t], 0, sizeof(readers[t]));
        atomic_init(&readers[t].batches, 0);
        atomic_init(&readers[t].exited, false);
        readers[t].routes = routes;
        readers[t].names = names;
        readers[t].stop = &stop;
        readers[t].last_seen = calloc(names, sizeof(uint32_t));
        assert_non_null(readers[t].last_seen);
        assert_int_equal(pthread_create(&readers[t].thread, NULL, reader_main, &readers[t]), 0);
    }

    /* Round 0 adds every name (the table grows under the readers), later rounds replace most
     * names and remove or re-add the others, and the last round removes most of them (the
     * table shrinks). */
    for (uint32_t round = 0; round < ROUNDS; round++) {
        unsigned before[READERS];

        for (int t = 0; t < READERS; t++)
            before[t] = atomic_load(&readers[t].batches);
        for (uint32_t i = 0; i < names; i++) {
            bool remove = round > 0 && ((i + round) % 3 == 0 || round == ROUNDS - 1) && i % 10 != 0;
            if (remove) {
                host_of(i, host);
                assert_int_equal(state_routes_remove(routes, host),
                                 present[i] ? 0 : STATE_ENOTFOUND);
                expected -= present[i];
                present[i] = false;
            } else {
                route_of(i, ++version[i], &r);
                assert_int_equal(state_routes_set(routes, &r), 0);
                expected += !present[i];
                present[i] = true;
            }
            writes++;
        }
        assert_int_equal(state_routes_count(routes), expected);
        /* Every reader must have looked up during this round, however the scheduler ran us,
         * or the test would prove nothing about concurrency. */
        for (int t = 0; t < READERS; t++) {
            while (atomic_load(&readers[t].batches) == before[t] &&
                   !atomic_load(&readers[t].exited))
                sched_yield();
        }
    }
    atomic_store_explicit(&stop, true, memory_order_release);

    for (int t = 0; t < READERS; t++) {
        assert_int_equal(pthread_join(readers[t].thread, NULL), 0);
        if (readers[t].failure[0])
            fail_msg("reader %d: %s", t, readers[t].failure);
        /* The readers really ran alongside the writer and found routes. */
        assert_true(readers[t].lookups >= 256u * ROUNDS);
        assert_true(readers[t].found > 0);
        print_message("reader %d: %llu lookups, %llu found, writer %llu updates\n", t,
                      (unsigned long long)readers[t].lookups, (unsigned long long)readers[t].found,
                      (unsigned long long)writes);
        free(readers[t].last_seen);
    }

    /* After the churn the table holds exactly the last version of every present name. */
    state_routes_reader_register();
    for (uint32_t i = 0; i < names; i++) {
        bool found;
        host_of(i, host);
        found = state_routes_lookup(routes, host, strlen(host), &r);
        assert_int_equal(found, present[i]);
        if (found) {
            assert_null(route_mismatch(i, &r));
            assert_int_equal(r.version, version[i]);
        }
    }
    state_routes_reader_unregister();
    state_routes_free(routes);
    free(version);
    free(present);
}

struct lazy_reader {
    pthread_t thread;            /* the reader thread */
    struct state_routes *routes; /* the table under test */
    atomic_bool *stop;           /* set by the writer when it is done */
    atomic_uint_fast64_t found;  /* lookups that found the route */
    char failure[256];           /* first inconsistency, empty if none */
};

/* A reader that never calls state_routes_reader_register: the table registers it on its first
 * lookup and unregisters it when the thread exits. */
static void *lazy_reader_main(void *arg)
{
    struct lazy_reader *rd = arg;
    struct state_route got;
    char host[32];
    uint32_t last = 0;

    host_of(7, host);
    while (!atomic_load_explicit(rd->stop, memory_order_acquire) && !rd->failure[0]) {
        const char *bad;

        if (!state_routes_lookup(rd->routes, host, strlen(host), &got))
            continue;
        atomic_fetch_add_explicit(&rd->found, 1, memory_order_relaxed);
        bad = route_mismatch(7, &got);
        if (!bad && got.version < last)
            bad = "version went backwards";
        if (bad)
            snprintf(rd->failure, sizeof(rd->failure), "%s at version %llu", bad,
                     (unsigned long long)got.version);
        last = (uint32_t)got.version;
    }
    return NULL;
}

static void readers_that_never_register_are_safe(void **state)
{
    struct state_routes *routes = state_routes_new();
    struct lazy_reader readers[2];
    atomic_bool stop;
    struct state_route r;
    uint32_t v = 2;

    assert_non_null(routes);
    atomic_init(&stop, false);
    route_of(7, 1, &r);
    assert_int_equal(state_routes_set(routes, &r), 0);
    for (int t = 0; t < 2; t++) {
        memset(&readers[t], 0, sizeof(readers[t]));
        readers[t].routes = routes;
        readers[t].stop = &stop;
        atomic_init(&readers[t].found, 0);
        assert_int_equal(pthread_create(&readers[t].thread, NULL, lazy_reader_main, &readers[t]),
                         0);
    }
    /* Replacing one host over and over frees a node per update while the readers copy it;
     * keep going until both readers have copied it many times while it changed. */
    while (v < 20000 || atomic_load(&readers[0].found) < 1000 ||
           atomic_load(&readers[1].found) < 1000) {
        route_of(7, v++, &r);
        assert_int_equal(state_routes_set(routes, &r), 0);
        assert_true(v < 100000000); /* readers that never run fail instead of hanging */
    }
    atomic_store_explicit(&stop, true, memory_order_release);
    for (int t = 0; t < 2; t++) {
        assert_int_equal(pthread_join(readers[t].thread, NULL), 0);
        if (readers[t].failure[0])
            fail_msg("reader %d: %s", t, readers[t].failure);
    }
    /* The readers have exited and were unregistered with their threads: more updates and the
     * free still complete their grace periods. */
    for (uint32_t end = v + 100; v < end; v++) {
        route_of(7, v, &r);
        assert_int_equal(state_routes_set(routes, &r), 0);
    }
    state_routes_free(routes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(readers_see_whole_routes_while_writer_churns),
        cmocka_unit_test(readers_that_never_register_are_safe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
