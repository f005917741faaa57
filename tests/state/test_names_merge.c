/*
 * test_names_merge.c - the merge rules of state_names: a property test against an independent
 * model over random record sets in random orders with duplicates (commutative, associative,
 * idempotent), and one test per rule a user relies on: first claim wins, a release beats stale
 * updates, nothing resurrects a released name, the loser of a race is a contender, the abuse
 * bound never evicts the holder, tombstones are collected after their TTL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tests/heap_in_use.h"

#include "names_fixtures.h"

/* ---- the model: the merge rules written the slow, obvious way ---------------------------- */

#define MODEL_MAX 256

struct model {
    struct state_record recs[MODEL_MAX]; /* the record set, duplicates removed */
    uint8_t enc[MODEL_MAX][STATE_RECORD_MAX_BYTES];
    int enc_len[MODEL_MAX];
    int n;
};

static int enc_cmp(const struct model *m, int a, int b)
{
    int la = m->enc_len[a], lb = m->enc_len[b];
    int c = memcmp(m->enc[a], m->enc[b], (size_t)(la < lb ? la : lb));

    return c != 0 ? c : (la > lb) - (la < lb);
}

static void model_add(struct model *m, const struct state_record *rec)
{
    int i = m->n;

    m->recs[i] = *rec;
    m->enc_len[i] = state_record_encode(rec, m->enc[i], STATE_RECORD_MAX_BYTES);
    assert_true(m->enc_len[i] > 0);
    for (int j = 0; j < i; j++)
        if (enc_cmp(m, i, j) == 0)
            return; /* a duplicate: sets hold it once */
    m->n++;
}

/* Whether record i is its owner's latest for its key: nothing above it by (version, bytes). */
static bool model_is_latest(const struct model *m, int i)
{
    for (int j = 0; j < m->n; j++) {
        if (j == i || strcmp(m->recs[j].name, m->recs[i].name) != 0 ||
            memcmp(m->recs[j].owner, m->recs[i].owner, STATE_OWNER_LEN) != 0)
            continue;
        if (m->recs[j].version > m->recs[i].version ||
            (m->recs[j].version == m->recs[i].version && enc_cmp(m, j, i) > 0))
            return false;
    }
    return true;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The fingerprint nf_fingerprint computes from a table, computed from the model. */
static uint64_t model_fingerprint(const struct model *m)
{
    const char *names[MODEL_MAX];
    int latest[MODEL_MAX], nl = 0, nn = 0;
    size_t counts[3] = {0, 0, 0};
    uint64_t h = 0xcbf29ce484222325ULL, hr;

    for (int i = 0; i < m->n; i++)
        if (model_is_latest(m, i))
            latest[nl++] = i;
    for (int i = 0; i < nl; i++) {
        bool seen = false;

        for (int j = 0; j < nn; j++)
            seen |= strcmp(names[j], m->recs[latest[i]].name) == 0;
        if (!seen)
            names[nn++] = m->recs[latest[i]].name;
    }
    qsort(names, (size_t)nn, sizeof(names[0]), name_cmp);
    hr = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < nn; k++) {
            int holder = -1, tomb = -1, live = 0, order[STATE_CLAIMS_PER_NAME_MAX * 4], no = 0;

            for (int x = 0; x < nl; x++) {
                const struct state_record *r = &m->recs[latest[x]];

                if (strcmp(r->name, names[k]) != 0)
                    continue;
                order[no++] = latest[x];
                if (r->kind == STATE_RECORD_RELEASE) {
                    const struct state_record *t = tomb >= 0 ? &m->recs[tomb] : NULL;

                    if (t == NULL || r->issued_at_ms > t->issued_at_ms ||
                        (r->issued_at_ms == t->issued_at_ms &&
                         memcmp(r->owner, t->owner, STATE_OWNER_LEN) < 0))
                        tomb = latest[x];
                    continue;
                }
                live++;
                if (holder < 0 || r->reserved_at_ms < m->recs[holder].reserved_at_ms ||
                    (r->reserved_at_ms == m->recs[holder].reserved_at_ms &&
                     memcmp(r->owner, m->recs[holder].owner, STATE_OWNER_LEN) < 0))
                    holder = latest[x];
            }
            if (pass == 0) {
                struct state_name_view v;

                memset(&v, 0, sizeof(v));
                snprintf(v.name, sizeof(v.name), "%s", names[k]);
                v.held = holder >= 0;
                v.contenders = (uint8_t)(holder >= 0 ? live - 1 : 0);
                v.record = m->recs[holder >= 0 ? holder : tomb];
                nf_view_visit(&v, &h);
                counts[0] += holder >= 0;
                counts[1] += holder < 0;
                counts[2] += (size_t)no;
                continue;
            }
            /* pass 1: the kept records of the key, by owner */
            for (int a = 0; a < no; a++)
                for (int b = a + 1; b < no; b++)
                    if (memcmp(m->recs[order[b]].owner, m->recs[order[a]].owner, STATE_OWNER_LEN) <
                        0) {
                        int t = order[a];

                        order[a] = order[b];
                        order[b] = t;
                    }
            for (int a = 0; a < no; a++)
                nf_record_visit(&m->recs[order[a]], &h);
        }
    }
    (void)hr;
    return nf_fnv(h, counts, sizeof(counts));
}

/* ---- random record sets ------------------------------------------------------------------ */

static const char *const rand_names[] = {"alpha", "bravo", "carol"};

static struct state_record random_record(uint64_t *seed)
{
    static const enum state_record_kind kinds[] = {STATE_RECORD_RESERVE, STATE_RECORD_PROXY,
                                                   STATE_RECORD_PROXY, STATE_RECORD_RELEASE};
    enum state_record_kind kind = kinds[nf_rand(seed) % 4];
    const char *name = rand_names[nf_rand(seed) % 3];
    uint8_t owner = (uint8_t)(1 + nf_rand(seed) % 4);
    uint64_t version = 1 + nf_rand(seed) % 5;
    uint64_t claimed = NF_NOW_MS - 1000 * (nf_rand(seed) % 3); /* ties happen on purpose */
    uint16_t port = (uint16_t)(8000 + nf_rand(seed) % 2);      /* so do equal versions */

    return nf_record(kind, name, owner, version, claimed, port);
}

static void shuffle(int *idx, int n, uint64_t *seed)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(nf_rand(seed) % (uint64_t)(i + 1)), t = idx[i];

        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* Merges recs[idx[0..n)] into a new table, checking that merge reports a change exactly when
 * the digest moves. */
static struct state_names *merge_all(const struct state_record *recs, const int *idx, int n)
{
    struct state_names *names = state_names_new();

    assert_non_null(names);
    for (int i = 0; i < n; i++) {
        uint64_t before = state_names_digest(names);
        int rc = state_names_merge(names, &recs[idx[i]], NULL);

        assert_true(rc == 1 || rc == STATE_ESTALE);
        if (rc == 1)
            assert_int_not_equal(before, state_names_digest(names));
        else
            assert_int_equal(before, state_names_digest(names));
    }
    return names;
}

static int merge_into(const struct state_record *rec, void *ctx)
{
    int rc = state_names_merge(ctx, rec, NULL);

    return rc == 1 || rc == STATE_ESTALE ? 0 : rc;
}

/* Random record sets, merged in random orders with random duplicates, and as joins of two
 * random halves, all reach the model's state; merging everything again changes nothing. */
static void test_merge_order_independent(void **unused)
{
    static struct model m;
    struct state_record recs[40];
    int idx[120];
    uint64_t seed = 0x5eed0001;

    for (int trial = 0; trial < 300; trial++) {
        struct state_names *ref, *a, *b;
        uint64_t expect, digest;
        int n = 0;

        m.n = 0;
        for (int i = 0; i < 40; i++) {
            recs[i] = random_record(&seed);
            model_add(&m, &recs[i]);
        }
        expect = model_fingerprint(&m);
        for (int i = 0; i < 40; i++)
            idx[i] = i;
        ref = merge_all(recs, idx, 40);
        assert_int_equal(nf_fingerprint(ref), expect);
        digest = state_names_digest(ref);

        for (int perm = 0; perm < 6; perm++) {
            /* every record once, some twice or three times, in a random order */
            n = 0;
            for (int i = 0; i < 40; i++) {
                int copies = 1 + (int)(nf_rand(&seed) % 3 == 0) + (int)(nf_rand(&seed) % 7 == 0);

                while (copies-- > 0)
                    idx[n++] = i;
            }
            shuffle(idx, n, &seed);
            a = merge_all(recs, idx, n);
            assert_int_equal(nf_fingerprint(a), expect);
            assert_int_equal(state_names_digest(a), digest);
            state_names_free(a);
        }

        /* associativity: join(state(S1), state(S2)) == state(S1 u S2), S1 and S2 overlapping */
        for (int i = 0; i < 40; i++)
            idx[i] = i;
        shuffle(idx, 40, &seed);
        a = merge_all(recs, idx, 25);
        b = merge_all(recs, idx + 15, 25);
        assert_int_equal(state_names_each_record(b, merge_into, a), 0);
        assert_int_equal(nf_fingerprint(a), expect);
        assert_int_equal(state_names_digest(a), digest);

        /* idempotence: everything again is stale */
        for (int i = 0; i < 40; i++)
            assert_int_equal(state_names_merge(a, &recs[i], NULL), STATE_ESTALE);
        assert_int_equal(nf_fingerprint(a), expect);
        state_names_free(a);
        state_names_free(b);
        state_names_free(ref);
    }
}

/* ---- witnesses: the same properties, and a broken rule that they catch -------------------- */

#define W_KEYS 24 /* more witness keys than STATE_WITNESSES_MAX: the bound is exercised */
#define W_COUNT 48

/* A random witness among few versions, times and claim times, so ties are common. */
static struct state_witness random_witness(uint64_t *seed)
{
    static const uint64_t claims[] = {NF_NOW_MS, NF_NOW_MS - 1000, NF_NOW_MS - 2000};
    struct state_witness w;

    memset(&w, 0, sizeof(w));
    nf_owner(w.key, (uint8_t)(100 + nf_rand(seed) % W_KEYS));
    w.version = 1 + nf_rand(seed) % 3;
    w.claim_at_ms = claims[nf_rand(seed) % 3];
    w.released = nf_rand(seed) % 5 == 0;
    w.time_ms = NF_NOW_MS + 1000 * (nf_rand(seed) % 4);
    for (int i = 0; i < STATE_SIGNATURE_LEN; i++)
        w.signature[i] = (uint8_t)nf_rand(seed);
    if (nf_rand(seed) % 4 == 0) /* the same signature with other fields: the tie-breaks count */
        memset(w.signature, 7, STATE_SIGNATURE_LEN);
    return w;
}

/* The order name_merge.c documents ("better first": higher version, earlier time, smaller
 * claim time, claim before release, then signature and key bytes), written as a byte string
 * compared with memcmp rather than field by field, so a slip in either is caught. */
#define W_SORT_LEN (8 + 8 + 8 + 1 + STATE_SIGNATURE_LEN + STATE_OWNER_LEN)

static void put_be(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void witness_sort_key(const struct state_witness *w, uint8_t out[W_SORT_LEN])
{
    put_be(out, UINT64_MAX - w->version);
    put_be(out + 8, w->time_ms);
    put_be(out + 16, w->claim_at_ms);
    out[24] = w->released;
    memcpy(out + 25, w->signature, STATE_SIGNATURE_LEN);
    memcpy(out + 25 + STATE_SIGNATURE_LEN, w->key, STATE_OWNER_LEN);
}

static int model_witness_cmp(const struct state_witness *a, const struct state_witness *b)
{
    uint8_t ka[W_SORT_LEN], kb[W_SORT_LEN];

    witness_sort_key(a, ka);
    witness_sort_key(b, kb);
    return memcmp(ka, kb, W_SORT_LEN);
}

/* The model of one owner's witness set: each key's best, then the N best, sorted. */
static size_t model_witnesses(const struct state_witness *all, int n, struct state_witness *out)
{
    struct state_witness best[W_COUNT];
    size_t nb = 0;

    for (int i = 0; i < n; i++) {
        size_t j;

        for (j = 0; j < nb; j++)
            if (memcmp(best[j].key, all[i].key, STATE_OWNER_LEN) == 0)
                break;
        if (j == nb)
            best[nb++] = all[i];
        else if (model_witness_cmp(&all[i], &best[j]) < 0)
            best[j] = all[i];
    }
    for (size_t a = 0; a < nb; a++)
        for (size_t b = a + 1; b < nb; b++)
            if (model_witness_cmp(&best[b], &best[a]) < 0) {
                struct state_witness t = best[a];
                best[a] = best[b];
                best[b] = t;
            }
    if (nb > STATE_WITNESSES_MAX)
        nb = STATE_WITNESSES_MAX;
    memcpy(out, best, nb * sizeof(out[0]));
    return nb;
}

/* A witness-set rule under test: adds w to set[*n] (at most STATE_WITNESSES_MAX). */
typedef void (*wset_add_fn)(struct state_witness *set, size_t *n, const struct state_witness *w);

/* The real rule, through a state table holding one owner's record. */
static void real_add(struct state_witness *set, size_t *n, const struct state_witness *w)
{
    struct state_record rec = nf_record(STATE_RECORD_RESERVE, "alpha", 1, 1, NF_NOW_MS, 0);
    struct state_names *names = state_names_new();

    assert_int_equal(state_names_merge(names, &rec, NULL), 1);
    for (size_t i = 0; i < *n; i++)
        assert_int_equal(state_names_witness(names, "alpha", rec.owner, &set[i], NULL), 1);
    state_names_witness(names, "alpha", rec.owner, w, NULL);
    *n = state_names_witnesses(names, "alpha", rec.owner, set);
    state_names_free(names);
}

/* A plausible broken rule: per key the newest version wins (as the real one), but the bound
 * keeps the earliest times. The two orders disagree, so what survives depends on grouping. */
static void broken_add(struct state_witness *set, size_t *n, const struct state_witness *w)
{
    size_t worst = 0;

    for (size_t i = 0; i < *n; i++) {
        if (memcmp(set[i].key, w->key, STATE_OWNER_LEN) == 0) {
            if (model_witness_cmp(w, &set[i]) < 0)
                set[i] = *w;
            return;
        }
    }
    if (*n < STATE_WITNESSES_MAX) {
        set[(*n)++] = *w;
        return;
    }
    for (size_t i = 1; i < *n; i++)
        if (set[i].time_ms > set[worst].time_ms)
            worst = i;
    if (w->time_ms < set[worst].time_ms)
        set[worst] = *w;
}

static void wset_sort(struct state_witness *set, size_t n)
{
    for (size_t a = 0; a < n; a++)
        for (size_t b = a + 1; b < n; b++)
            if (model_witness_cmp(&set[b], &set[a]) < 0) {
                struct state_witness t = set[a];
                set[a] = set[b];
                set[b] = t;
            }
}

static bool wset_equal(struct state_witness *a, size_t na, struct state_witness *b, size_t nb)
{
    wset_sort(a, na);
    wset_sort(b, nb);
    return na == nb && memcmp(a, b, na * sizeof(a[0])) == 0;
}

/* Runs the property check on `add` for `trials` random witness multisets: every order with
 * duplicates, and the join of two overlapping halves, gives the model's set. Returns how many
 * trials broke it. */
static int wset_violations(wset_add_fn add, int trials, uint64_t seed)
{
    struct state_witness all[W_COUNT], expect[STATE_WITNESSES_MAX], got[STATE_WITNESSES_MAX],
        half[STATE_WITNESSES_MAX];
    int idx[3 * W_COUNT], violations = 0;

    for (int trial = 0; trial < trials; trial++) {
        size_t ne, ng, nh;
        int n;
        bool broken = false;

        for (int i = 0; i < W_COUNT; i++)
            all[i] = random_witness(&seed);
        ne = model_witnesses(all, W_COUNT, expect);
        for (int perm = 0; perm < 6 && !broken; perm++) {
            n = 0;
            for (int i = 0; i < W_COUNT; i++)
                for (int c = 1 + (int)(nf_rand(&seed) % 3 == 0); c > 0; c--)
                    idx[n++] = i;
            shuffle(idx, n, &seed);
            ng = 0;
            for (int i = 0; i < n; i++)
                add(got, &ng, &all[idx[i]]);
            broken |= !wset_equal(got, ng, expect, ne);
        }
        /* associativity: state(S1) joined with state(S2) */
        for (int i = 0; i < W_COUNT; i++)
            idx[i] = i;
        shuffle(idx, W_COUNT, &seed);
        ng = nh = 0;
        for (int i = 0; i < 30; i++)
            add(got, &ng, &all[idx[i]]);
        for (int i = 18; i < W_COUNT; i++)
            add(half, &nh, &all[idx[i]]);
        for (size_t i = 0; i < nh; i++)
            add(got, &ng, &half[i]);
        broken |= !wset_equal(got, ng, expect, ne);
        violations += broken;
    }
    return violations;
}

/* The witness rule is a join (commutative, associative, idempotent, equal to the model), and
 * the same check does catch a rule that only looks right. */
static void test_witness_sets_are_a_lattice(void **unused)
{
    assert_int_equal(wset_violations(real_add, 200, 0x5eed0002), 0);
    assert_true(wset_violations(broken_add, 200, 0x5eed0002) > 0);
}

/* The view with witnesses, against a model: the holder is the live claim whose need-th
 * earliest attesting witness time is smallest (owner breaking ties); claims with fewer
 * attesting witnesses are contenders. Units are bundles (a record and some witnesses of its
 * owner's entry), merged in random orders with duplicates; every order gives the same views,
 * witness lists and digest. */
static void test_witnessed_merge_order_independent(void **unused)
{
    enum { RECS = 24 };
    struct state_record recs[RECS];
    struct state_witness wits[RECS][4];
    int nw[RECS], idx[3 * RECS];
    uint64_t seed = 0x5eed0003;

    for (int trial = 0; trial < 150; trial++) {
        unsigned faults = (unsigned)(nf_rand(&seed) % 3),
                 fleet = 1 + (unsigned)(nf_rand(&seed) % 5);
        struct state_names *ref = NULL;

        for (int i = 0; i < RECS; i++) {
            recs[i] = random_record(&seed);
            nw[i] = (int)(nf_rand(&seed) % 5);
            for (int j = 0; j < nw[i]; j++) {
                wits[i][j] = random_witness(&seed);
                /* mostly witnesses of this very claim, so holders exist */
                if (nf_rand(&seed) % 3 != 0) {
                    wits[i][j].claim_at_ms = recs[i].reserved_at_ms;
                    wits[i][j].released = false;
                }
            }
        }
        for (int perm = 0; perm < 5; perm++) {
            struct state_names *a = state_names_new();
            int n = 0;

            state_names_set_witnessing(a, faults, fleet);
            for (int i = 0; i < RECS; i++)
                for (int c = 1 + (int)(nf_rand(&seed) % 3 == 0); c > 0; c--)
                    idx[n++] = i;
            shuffle(idx, n, &seed);
            for (int i = 0; i < n; i++) {
                const struct state_record *r = &recs[idx[i]];
                int rc = state_names_merge(a, r, NULL);

                assert_true(rc == 1 || rc == STATE_ESTALE);
                for (int j = 0; j < nw[idx[i]]; j++) {
                    rc = state_names_witness(a, r->name, r->owner, &wits[idx[i]][j], NULL);
                    assert_true(rc == 1 || rc == STATE_ESTALE);
                }
            }
            if (ref == NULL) {
                ref = a;
                continue;
            }
            assert_int_equal(state_names_digest(a), state_names_digest(ref));
            assert_int_equal(nf_fingerprint(a), nf_fingerprint(ref));
            for (size_t k = 0; k < 3; k++) {
                struct state_name_view va, vr;
                int ga = state_names_get(a, rand_names[k], &va);

                assert_int_equal(ga, state_names_get(ref, rand_names[k], &vr));
                if (ga != 0)
                    continue;
                assert_int_equal(va.held, vr.held);
                assert_int_equal(va.pending, vr.pending);
                assert_int_equal(va.claimed_at_ms, vr.claimed_at_ms);
                assert_memory_equal(va.record.owner, vr.record.owner, STATE_OWNER_LEN);
            }
            state_names_free(a);
        }
        /* the model of the holder, brute force from the inputs: per (name, owner) every
         * witness ever given for it; per distinct witness key its newest observation (highest
         * version, then earliest time, smallest claim time, a claim before a release); the
         * claim's time is the smallest t such that need distinct keys attest this claim at or
         * before t. (Each claim gets at most 8 witnesses here, below STATE_WITNESSES_MAX, so
         * the bound never drops one.) */
        for (size_t k = 0; k < 3; k++) {
            struct state_name_view v;
            uint64_t best_t = 0;
            int best_owner = -1;
            unsigned need = (faults > fleet - 1 ? fleet - 1 : faults) + 1;

            if (state_names_get(ref, rand_names[k], &v) != 0)
                continue;
            for (uint8_t o = 1; o <= 4; o++) {
                struct state_record r;
                const struct state_witness *newest[W_KEYS] = {0};
                uint8_t owner[STATE_OWNER_LEN];
                bool found = false;
                uint64_t t_found = 0;

                nf_owner(owner, o);
                if (state_names_owner_record(ref, rand_names[k], owner, &r) != 0 ||
                    r.kind == STATE_RECORD_RELEASE)
                    continue;
                for (int i = 0; i < RECS; i++) {
                    if (strcmp(recs[i].name, rand_names[k]) != 0 || recs[i].owner[0] != o)
                        continue;
                    for (int j = 0; j < nw[i]; j++) {
                        const struct state_witness *w = &wits[i][j], *cur;
                        int slot = w->key[0] - 100;

                        cur = newest[slot];
                        if (cur == NULL || w->version > cur->version ||
                            (w->version == cur->version &&
                             (w->time_ms < cur->time_ms ||
                              (w->time_ms == cur->time_ms &&
                               (w->claim_at_ms < cur->claim_at_ms ||
                                (w->claim_at_ms == cur->claim_at_ms && cur->released))))))
                            newest[slot] = w;
                    }
                }
                for (int cand = 0; cand < W_KEYS; cand++) {
                    const struct state_witness *c = newest[cand];
                    unsigned at_or_before = 0;

                    if (c == NULL || c->released || c->claim_at_ms != r.reserved_at_ms)
                        continue;
                    for (int other = 0; other < W_KEYS; other++) {
                        const struct state_witness *x = newest[other];
                        at_or_before += x != NULL && !x->released &&
                                        x->claim_at_ms == r.reserved_at_ms &&
                                        x->time_ms <= c->time_ms;
                    }
                    if (at_or_before >= need && (!found || c->time_ms < t_found)) {
                        found = true;
                        t_found = c->time_ms;
                    }
                }
                if (found && (best_owner < 0 || t_found < best_t)) {
                    best_owner = o;
                    best_t = t_found;
                }
            }
            assert_int_equal(v.held, best_owner >= 0);
            if (best_owner >= 0) {
                assert_int_equal(v.record.owner[0], best_owner);
                assert_int_equal(v.claimed_at_ms, best_t);
            }
        }
        state_names_free(ref);
    }
}

/* ---- the rules, one by one --------------------------------------------------------------- */

static void expect_view(struct state_names *names, const char *name, bool held, uint8_t holder,
                        enum state_record_kind kind, uint64_t version)
{
    struct state_name_view v;
    uint8_t owner[STATE_OWNER_LEN];

    assert_int_equal(state_names_get(names, name, &v), 0);
    assert_string_equal(v.name, name);
    assert_int_equal(v.held, held);
    nf_owner(owner, holder);
    assert_memory_equal(v.record.owner, owner, STATE_OWNER_LEN);
    assert_int_equal(v.record.kind, kind);
    assert_int_equal(v.record.version, version);
}

/* A release beats every lower version of its owner, whichever arrives first. */
static void test_release_beats_stale_update(void **unused)
{
    struct state_record reserve = nf_record(STATE_RECORD_RESERVE, "shop", 1, 1, NF_NOW_MS, 0);
    struct state_record proxy = nf_record(STATE_RECORD_PROXY, "shop", 1, 2, NF_NOW_MS, 80);
    struct state_record release = nf_record(STATE_RECORD_RELEASE, "shop", 1, 3, NF_NOW_MS, 0);
    struct state_names *names = state_names_new();
    struct state_name_view v;

    assert_int_equal(state_names_merge(names, &release, &v), 1);
    assert_false(v.held);
    assert_int_equal(state_names_merge(names, &proxy, &v), STATE_ESTALE);
    assert_false(v.held);
    assert_int_equal(state_names_merge(names, &reserve, NULL), STATE_ESTALE);
    expect_view(names, "shop", false, 1, STATE_RECORD_RELEASE, 3);
    assert_int_equal(state_names_count(names), 0);
    assert_int_equal(state_names_tombstones(names), 1);
    assert_int_equal(state_names_records(names), 1);
    state_names_free(names);

    /* the usual order gives the same end */
    names = state_names_new();
    assert_int_equal(state_names_merge(names, &reserve, NULL), 1);
    assert_int_equal(state_names_merge(names, &proxy, &v), 1);
    assert_true(v.held);
    assert_int_equal(v.record.backends[0].port, 80);
    assert_int_equal(state_names_merge(names, &release, &v), 1);
    assert_false(v.held);
    expect_view(names, "shop", false, 1, STATE_RECORD_RELEASE, 3);
    state_names_free(names);
}

/* After a release another owner can take the name, and no stale record of the old owner takes
 * it back, even one with an earlier claim time. */
static void test_no_resurrection_after_release(void **unused)
{
    struct state_record old_proxy =
        nf_record(STATE_RECORD_PROXY, "shop", 1, 2, NF_NOW_MS - 50000, 80);
    struct state_record release =
        nf_record(STATE_RECORD_RELEASE, "shop", 1, 3, NF_NOW_MS - 50000, 0);
    struct state_record newcomer = nf_record(STATE_RECORD_RESERVE, "shop", 2, 1, NF_NOW_MS, 0);
    struct state_names *names = state_names_new();
    struct state_name_view v;

    assert_int_equal(state_names_merge(names, &release, NULL), 1);
    assert_int_equal(state_names_merge(names, &newcomer, &v), 1);
    assert_true(v.held);
    assert_int_equal(v.contenders, 0);
    assert_int_equal(state_names_merge(names, &old_proxy, &v), STATE_ESTALE);
    expect_view(names, "shop", true, 2, STATE_RECORD_RESERVE, 1);
    assert_int_equal(state_names_count(names), 1);
    assert_int_equal(state_names_tombstones(names), 0);
    assert_int_equal(state_names_records(names), 2); /* the tombstone stays with the key */
    state_names_free(names);
}

/* Two owners reserve one name at once: every order gives the earliest claim, the owner id
 * breaking an exact tie, and the loser is counted as a contender. */
static void test_concurrent_reservations(void **unused)
{
    struct {
        uint64_t at1, at2;
        uint8_t winner;
    } cases[] = {
        {NF_NOW_MS - 10, NF_NOW_MS, 1},
        {NF_NOW_MS, NF_NOW_MS - 10, 2},
        {NF_NOW_MS, NF_NOW_MS, 1}, /* same millisecond: smaller owner id */
    };

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct state_record r1 = nf_record(STATE_RECORD_RESERVE, "race", 1, 1, cases[c].at1, 0);
        struct state_record r2 = nf_record(STATE_RECORD_PROXY, "race", 2, 1, cases[c].at2, 81);
        const struct state_record *orders[2][2] = {{&r1, &r2}, {&r2, &r1}};

        for (int o = 0; o < 2; o++) {
            struct state_names *names = state_names_new();
            struct state_name_view v;

            assert_int_equal(state_names_merge(names, orders[o][0], NULL), 1);
            assert_int_equal(state_names_merge(names, orders[o][1], &v), 1);
            assert_true(v.held);
            assert_int_equal(v.contenders, 1);
            assert_int_equal(v.record.owner[0], cases[c].winner);
            expect_view(names, "race", true, cases[c].winner,
                        cases[c].winner == 1 ? STATE_RECORD_RESERVE : STATE_RECORD_PROXY, 1);
            state_names_free(names);
        }
    }
}

/* When the holder releases, the waiting contender gets the name; when both release, the view
 * is the newest tombstone. */
static void test_holder_release_promotes_contender(void **unused)
{
    struct state_record a = nf_record(STATE_RECORD_PROXY, "queue", 1, 1, NF_NOW_MS - 100, 80);
    struct state_record b = nf_record(STATE_RECORD_PROXY, "queue", 2, 1, NF_NOW_MS, 90);
    struct state_record a_rel = nf_record(STATE_RECORD_RELEASE, "queue", 1, 2, NF_NOW_MS - 100, 0);
    struct state_record b_rel = nf_record(STATE_RECORD_RELEASE, "queue", 2, 5, NF_NOW_MS, 0);
    struct state_names *names = state_names_new();
    struct state_name_view v;

    assert_int_equal(state_names_merge(names, &a, NULL), 1);
    assert_int_equal(state_names_merge(names, &b, NULL), 1);
    expect_view(names, "queue", true, 1, STATE_RECORD_PROXY, 1);
    assert_int_equal(state_names_merge(names, &a_rel, &v), 1);
    assert_true(v.held);
    assert_int_equal(v.contenders, 0);
    assert_int_equal(v.record.backends[0].port, 90);
    assert_int_equal(state_names_merge(names, &b_rel, &v), 1);
    assert_false(v.held);
    expect_view(names, "queue", false, 2, STATE_RECORD_RELEASE, 5); /* issued last */
    assert_int_equal(state_names_tombstones(names), 1);
    state_names_free(names);
}

/* One owner signing two different records with one version converges on the larger encoding,
 * whatever the order. */
static void test_equal_version_tie_break(void **unused)
{
    struct state_record x = nf_record(STATE_RECORD_PROXY, "twin", 1, 4, NF_NOW_MS, 8000);
    struct state_record y = nf_record(STATE_RECORD_PROXY, "twin", 1, 4, NF_NOW_MS, 9000);
    uint8_t ex[STATE_RECORD_MAX_BYTES], ey[STATE_RECORD_MAX_BYTES];
    int nx = state_record_encode(&x, ex, sizeof(ex)), ny = state_record_encode(&y, ey, sizeof(ey));
    uint16_t want = memcmp(ex, ey, (size_t)(nx < ny ? nx : ny)) > 0 ? 8000 : 9000;
    struct state_name_view v1, v2;
    struct state_names *n1 = state_names_new(), *n2 = state_names_new();

    assert_int_equal(nx, ny);
    assert_int_equal(state_names_merge(n1, &x, NULL), 1);
    state_names_merge(n1, &y, &v1);
    assert_int_equal(state_names_merge(n2, &y, NULL), 1);
    state_names_merge(n2, &x, &v2);
    assert_int_equal(v1.record.backends[0].port, want);
    assert_int_equal(v2.record.backends[0].port, want);
    assert_int_equal(state_names_digest(n1), state_names_digest(n2));
    assert_int_equal(state_names_records(n1), 1);
    state_names_free(n1);
    state_names_free(n2);
}

/* At STATE_CLAIMS_PER_NAME_MAX owners a key drops its worst-ranked claim: a later claim than
 * every other is refused, an earlier one takes the name and the latest contender goes; the
 * holder is never the one dropped. */
static void test_claims_bound(void **unused)
{
    struct state_names *names = state_names_new();
    struct state_record rec;
    struct state_name_view v;
    uint8_t tag;

    for (tag = 10; tag < 10 + STATE_CLAIMS_PER_NAME_MAX; tag++) {
        rec = nf_record(STATE_RECORD_RESERVE, "crowd", tag, 1, NF_NOW_MS + tag, 0);
        assert_int_equal(state_names_merge(names, &rec, NULL), 1);
    }
    assert_int_equal(state_names_records(names), STATE_CLAIMS_PER_NAME_MAX);
    rec = nf_record(STATE_RECORD_RESERVE, "crowd", 99, 1, NF_NOW_MS + 500, 0);
    assert_int_equal(state_names_merge(names, &rec, &v), STATE_ESTALE);
    assert_int_equal(v.contenders, STATE_CLAIMS_PER_NAME_MAX - 1);
    expect_view(names, "crowd", true, 10, STATE_RECORD_RESERVE, 1);

    /* an earlier claim wins: it becomes holder, the latest claim (tag 17) is dropped */
    rec = nf_record(STATE_RECORD_RESERVE, "crowd", 5, 1, NF_NOW_MS - 1, 0);
    assert_int_equal(state_names_merge(names, &rec, &v), 1);
    expect_view(names, "crowd", true, 5, STATE_RECORD_RESERVE, 1);
    assert_int_equal(state_names_records(names), STATE_CLAIMS_PER_NAME_MAX);
    rec = nf_record(STATE_RECORD_RESERVE, "crowd", 10 + STATE_CLAIMS_PER_NAME_MAX - 1, 2,
                    NF_NOW_MS + 17, 0);
    assert_int_equal(state_names_merge(names, &rec, NULL), STATE_ESTALE); /* still last */

    /* a tombstone ranks above contenders: it is kept and the last contender goes */
    rec = nf_record(STATE_RECORD_RELEASE, "crowd", 3, 9, NF_NOW_MS - 5, 0);
    assert_int_equal(state_names_merge(names, &rec, &v), 1);
    assert_true(v.held);
    assert_int_equal(v.contenders, STATE_CLAIMS_PER_NAME_MAX - 2);
    expect_view(names, "crowd", true, 5, STATE_RECORD_RESERVE, 1);
    state_names_free(names);
}

/* Released keys go after the TTL; younger tombstones and held keys stay. */
static void test_collect_tombstones(void **unused)
{
    const uint64_t day = 24ULL * 3600 * 1000;
    struct state_record old_rel = nf_record(STATE_RECORD_RELEASE, "old", 1, 2, NF_NOW_MS, 0);
    struct state_record new_rel = nf_record(STATE_RECORD_RELEASE, "new", 1, 2, NF_NOW_MS, 0);
    struct state_record held = nf_record(STATE_RECORD_RESERVE, "held", 1, 1, NF_NOW_MS, 0);
    struct state_record taken_rel = nf_record(STATE_RECORD_RELEASE, "taken", 1, 2, NF_NOW_MS, 0);
    struct state_record taken = nf_record(STATE_RECORD_RESERVE, "taken", 2, 1, NF_NOW_MS, 0);
    struct state_names *names = state_names_new();
    struct state_name_view v;
    uint64_t empty_digest = state_names_digest(names), held_digest;

    new_rel.issued_at_ms = NF_NOW_MS + 6 * day;
    state_names_merge(names, &held, NULL);
    held_digest = state_names_digest(names);
    state_names_merge(names, &taken, NULL);
    state_names_merge(names, &taken_rel, NULL);
    state_names_merge(names, &old_rel, NULL);
    state_names_merge(names, &new_rel, NULL);
    assert_int_equal(state_names_tombstones(names), 2);

    assert_int_equal(state_names_collect(names, NF_NOW_MS + day, STATE_TOMBSTONE_TTL_MS_DEFAULT),
                     0);
    assert_int_equal(
        state_names_collect(names, NF_NOW_MS + 8 * day, STATE_TOMBSTONE_TTL_MS_DEFAULT), 1);
    assert_int_equal(state_names_get(names, "old", &v), STATE_ENOTFOUND);
    assert_int_equal(state_names_get(names, "new", &v), 0);
    assert_int_equal(state_names_get(names, "taken", &v), 0);
    assert_int_equal(state_names_records(names), 5 - 1);
    assert_int_equal(
        state_names_collect(names, NF_NOW_MS + 14 * day, STATE_TOMBSTONE_TTL_MS_DEFAULT), 1);
    assert_int_equal(state_names_tombstones(names), 0);
    assert_int_equal(state_names_count(names), 2);

    /* the digest is a sum over kept records: removing them all brings it back */
    state_names_free(names);
    names = state_names_new();
    state_names_merge(names, &held, NULL);
    state_names_merge(names, &old_rel, NULL);
    assert_int_equal(
        state_names_collect(names, NF_NOW_MS + 8 * day, STATE_TOMBSTONE_TTL_MS_DEFAULT), 1);
    assert_int_equal(state_names_digest(names), held_digest);
    assert_int_not_equal(held_digest, empty_digest);
    state_names_free(names);
}

static int count_and_stop(const struct state_name_view *v, void *ctx)
{
    int *seen = ctx;

    return ++*seen == 2 ? 42 : 0;
}

static int collect_order(const struct state_name_view *v, void *ctx)
{
    char *out = ctx;

    strcat(out, v->name);
    strcat(out, ",");
    return 0;
}

/* Iteration is sorted by key, stops on demand, and unknown keys are not found. */
static void test_each_sorted_and_get(void **unused)
{
    const char *keys[] = {"zulu", "alpha", "mike", "www.example.org"};
    struct state_names *names = state_names_new();
    struct state_name_view v;
    char order[128] = "";
    int seen = 0;

    for (size_t i = 0; i < 4; i++) {
        struct state_record rec = nf_record(i == 3 ? STATE_RECORD_FQDN : STATE_RECORD_RESERVE,
                                            keys[i], 1, 1, NF_NOW_MS, 443);

        assert_int_equal(state_names_merge(names, &rec, NULL), 1);
    }
    assert_int_equal(state_names_each(names, collect_order, order), 0);
    assert_string_equal(order, "alpha,mike,www.example.org,zulu,");
    assert_int_equal(state_names_each(names, count_and_stop, &seen), 42);
    assert_int_equal(seen, 2);
    /* the unordered walk visits the same keys, once each, and stops on demand too */
    order[0] = '\0';
    assert_int_equal(state_names_each_unordered(names, collect_order, order), 0);
    assert_int_equal(strlen(order), strlen("alpha,mike,www.example.org,zulu,"));
    for (size_t i = 0; i < 4; i++) {
        char item[32];

        snprintf(item, sizeof(item), "%s,", keys[i]);
        assert_non_null(strstr(order, item));
    }
    seen = 0;
    assert_int_equal(state_names_each_unordered(names, count_and_stop, &seen), 42);
    assert_int_equal(seen, 2);
    assert_int_equal(state_names_get(names, "nope", &v), STATE_ENOTFOUND);
    assert_int_equal(state_names_count(names), 4);
    assert_int_equal(state_names_fqdns(names), 1); /* www.example.org */
    state_names_free(names);
}

/* Many keys: the table grows and finds every one of them. */
static void test_many_keys(void **unused)
{
    struct state_names *names = state_names_new();
    struct state_name_view v;
    char name[32];

    for (int i = 0; i < 20000; i++) {
        snprintf(name, sizeof(name), "key-%05d", i);
        struct state_record rec = nf_record(STATE_RECORD_PROXY, name, (uint8_t)(i % 7), 1,
                                            NF_NOW_MS, (uint16_t)(1 + i % 60000));

        assert_int_equal(state_names_merge(names, &rec, NULL), 1);
    }
    assert_int_equal(state_names_count(names), 20000);
    for (int i = 0; i < 20000; i += 7) {
        snprintf(name, sizeof(name), "key-%05d", i);
        assert_int_equal(state_names_get(names, name, &v), 0);
        assert_int_equal(v.record.backends[0].port, 1 + i % 60000);
    }
    state_names_free(names);
}

/* One owner's record on a key, held or contending, found without walking the table: what
 * anti-entropy answers a peer's "want" with, and what drops a stale gossiped record before
 * its signature is checked. */
static void test_owner_record_lookup(void **unused)
{
    struct state_names *names = state_names_new();
    struct state_record a = nf_record(STATE_RECORD_RESERVE, "shop", 1, 3, NF_NOW_MS, 0);
    struct state_record b = nf_record(STATE_RECORD_RESERVE, "shop", 2, 5, NF_NOW_MS + 10, 0);
    struct state_record out;
    uint8_t stranger[STATE_OWNER_LEN];

    (void)unused;
    assert_int_equal(state_names_merge(names, &a, NULL), 1);
    assert_int_equal(state_names_merge(names, &b, NULL), 1);
    assert_int_equal(state_names_owner_record(names, "shop", a.owner, &out), 0);
    assert_int_equal(out.version, 3);
    assert_memory_equal(out.signature, a.signature, STATE_SIGNATURE_LEN);
    /* the contender's record too, not only the holder's */
    assert_int_equal(state_names_owner_record(names, "shop", b.owner, &out), 0);
    assert_int_equal(out.version, 5);
    assert_string_equal(out.name, "shop");
    nf_owner(stranger, 9);
    assert_int_equal(state_names_owner_record(names, "shop", stranger, &out), STATE_ENOTFOUND);
    assert_int_equal(state_names_owner_record(names, "nope", a.owner, &out), STATE_ENOTFOUND);
    state_names_free(names);
}

/* Adds witness number k (of key tag 100 + k) to each of the keys wit-00000 .. */
static void witness_keys(struct state_names *names, int keys, int k)
{
    struct state_witness w;
    char name[32];

    memset(&w, 0, sizeof(w));
    nf_owner(w.key, (uint8_t)(100 + k));
    w.version = 1;
    w.claim_at_ms = NF_NOW_MS;
    w.time_ms = NF_NOW_MS + 1 + (uint64_t)k;
    for (int i = 0; i < keys; i++) {
        struct state_record rec = nf_record(STATE_RECORD_PROXY, "x", 1, 1, NF_NOW_MS, 80);

        snprintf(name, sizeof(name), "wit-%05d", i);
        assert_int_equal(state_names_witness(names, name, rec.owner, &w, NULL), 1);
    }
}

/* A claim's witnesses take the room they use: one or three witnesses cost about one or four
 * 136-byte entries, not room for STATE_WITNESSES_MAX of them (2,176 bytes a claim: 2.2 GB of
 * a gateway's 2.5 GB with 1M witnessed names). */
static void test_witness_memory(void **unused)
{
    enum { KEYS = 5000 };
    struct state_names *names = state_names_new();
    struct state_witness kept[STATE_WITNESSES_MAX];
    char name[32];
    size_t before, one, three;

    for (int i = 0; i < KEYS; i++) {
        snprintf(name, sizeof(name), "wit-%05d", i);
        struct state_record rec = nf_record(STATE_RECORD_PROXY, name, 1, 1, NF_NOW_MS, 80);
        assert_int_equal(state_names_merge(names, &rec, NULL), 1);
    }
    before = heap_in_use();
    witness_keys(names, KEYS, 0);
    one = (heap_in_use() - before) / KEYS;
    witness_keys(names, KEYS, 1);
    witness_keys(names, KEYS, 2);
    three = (heap_in_use() - before) / KEYS;
    printf("heap per claim: %zu bytes with one witness, %zu with three\n", one, three);
    assert_true(one <= 200);
    assert_true(three <= 4 * 136 + 64);
    /* and they are all there, best first */
    struct state_record rec = nf_record(STATE_RECORD_PROXY, "x", 1, 1, NF_NOW_MS, 80);
    assert_int_equal(state_names_witnesses(names, "wit-04999", rec.owner, kept), 3);
    assert_true(kept[0].time_ms < kept[1].time_ms && kept[1].time_ms < kept[2].time_ms);
    state_names_free(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_order_independent),
        cmocka_unit_test(test_witness_sets_are_a_lattice),
        cmocka_unit_test(test_witnessed_merge_order_independent),
        cmocka_unit_test(test_release_beats_stale_update),
        cmocka_unit_test(test_no_resurrection_after_release),
        cmocka_unit_test(test_concurrent_reservations),
        cmocka_unit_test(test_holder_release_promotes_contender),
        cmocka_unit_test(test_equal_version_tie_break),
        cmocka_unit_test(test_claims_bound),
        cmocka_unit_test(test_owner_record_lookup),
        cmocka_unit_test(test_collect_tombstones),
        cmocka_unit_test(test_each_sorted_and_get),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_witness_memory),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
