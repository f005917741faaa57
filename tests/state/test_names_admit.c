/*
 * test_names_admit.c - what the API answers when a client submits a record: each refusal of
 * state_names_admit with the status class and message a user sees (409 taken naming the
 * holder and its claim time, 403 not the owner, stale version, backdated claim), and the
 * submissions it lets through.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "names_fixtures.h"

#define HOUR_MS (3600ULL * 1000)

struct fixture {
    struct state_names *names;
    char err[STATE_ERR_MAX];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->names = state_names_new();
    *state = f;
    return f->names == NULL;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    state_names_free(f->names);
    free(f);
    return 0;
}

static void merge(struct fixture *f, const struct state_record *rec)
{
    assert_int_equal(state_names_merge(f->names, rec, NULL), 1);
}

static int admit(struct fixture *f, const struct state_record *rec)
{
    f->err[0] = '\0';
    return state_names_admit(f->names, rec, NF_NOW_MS, f->err, sizeof(f->err));
}

static void test_reserve_free_name(void **state)
{
    struct fixture *f = *state;
    struct state_record rec = nf_record(STATE_RECORD_RESERVE, "fresh", 1, 1, NF_NOW_MS - 1000, 0);

    assert_int_equal(admit(f, &rec), 0);
    /* a client clock up to 5 minutes behind is fine */
    rec.reserved_at_ms = NF_NOW_MS - 299000;
    assert_int_equal(admit(f, &rec), 0);
}

static void test_backdated_claim_is_invalid(void **state)
{
    struct fixture *f = *state;
    struct state_record rec =
        nf_record(STATE_RECORD_RESERVE, "fresh", 1, 1, NF_NOW_MS - 6 * 60000, 0);

    assert_int_equal(admit(f, &rec), STATE_EINVAL);
    assert_string_equal(f->err,
                        "fresh: claim time is 360 s in the past (a new claim may be at most 300 s "
                        "old)");
}

static void test_taken_names_holder_and_time(void **state)
{
    struct fixture *f = *state;
    struct state_record held = nf_record(STATE_RECORD_RESERVE, "taken", 1, 1, NF_NOW_MS, 0);
    struct state_record claim = nf_record(STATE_RECORD_RESERVE, "taken", 2, 1, NF_NOW_MS, 0);
    char hex[STATE_OWNER_HEX_LEN + 1], want[STATE_ERR_MAX];

    merge(f, &held);
    state_owner_format(held.owner, hex);
    snprintf(want, sizeof(want), "taken is taken: held by %s since 2023-11-14T22:13:20Z", hex);
    assert_int_equal(admit(f, &claim), STATE_ETAKEN);
    assert_string_equal(f->err, want);
    /* an earlier claim time does not help a newcomer through the API */
    claim.reserved_at_ms = NF_NOW_MS - 1000;
    assert_int_equal(admit(f, &claim), STATE_ETAKEN);
    /* nor does an fqdn record on a held key */
    claim.kind = STATE_RECORD_FQDN;
    assert_int_equal(admit(f, &claim), STATE_ETAKEN);
}

static void test_contender_cannot_reclaim(void **state)
{
    struct fixture *f = *state;
    struct state_record first = nf_record(STATE_RECORD_RESERVE, "race", 1, 1, NF_NOW_MS - 5, 0);
    struct state_record loser = nf_record(STATE_RECORD_RESERVE, "race", 2, 1, NF_NOW_MS, 0);

    merge(f, &first);
    merge(f, &loser); /* came by gossip: concurrent reservation elsewhere */
    loser.version = 2;
    assert_int_equal(admit(f, &loser), STATE_ETAKEN);
    loser.kind = STATE_RECORD_PROXY;
    assert_int_equal(admit(f, &loser), STATE_ENOTOWNER);
}

static void test_proxy_or_release_by_non_holder(void **state)
{
    struct fixture *f = *state;
    struct state_record held = nf_record(STATE_RECORD_RESERVE, "mine", 1, 1, NF_NOW_MS, 0);
    struct state_record proxy = nf_record(STATE_RECORD_PROXY, "mine", 2, 1, NF_NOW_MS, 80);
    struct state_record release = nf_record(STATE_RECORD_RELEASE, "mine", 2, 1, NF_NOW_MS, 0);
    char hex[STATE_OWNER_HEX_LEN + 1], want[STATE_ERR_MAX];

    merge(f, &held);
    state_owner_format(held.owner, hex);
    snprintf(want, sizeof(want), "mine is held by %s, not by the signer of this record", hex);
    assert_int_equal(admit(f, &proxy), STATE_ENOTOWNER);
    assert_string_equal(f->err, want);
    assert_int_equal(admit(f, &release), STATE_ENOTOWNER);
    assert_string_equal(f->err, want);
}

static void test_proxy_or_release_of_free_name(void **state)
{
    struct fixture *f = *state;
    struct state_record proxy = nf_record(STATE_RECORD_PROXY, "nobody", 1, 1, NF_NOW_MS, 80);
    struct state_record release = nf_record(STATE_RECORD_RELEASE, "nobody", 1, 1, NF_NOW_MS, 0);

    assert_int_equal(admit(f, &proxy), STATE_ENOTOWNER);
    assert_string_equal(f->err, "nobody is not reserved: reserve it before exposing it");
    assert_int_equal(admit(f, &release), STATE_ENOTOWNER);
    assert_string_equal(f->err, "nobody is not held by anyone: nothing to release");
}

static void test_stale_version(void **state)
{
    struct fixture *f = *state;
    struct state_record rec = nf_record(STATE_RECORD_PROXY, "shop", 1, 3, NF_NOW_MS, 80);

    merge(f, &rec);
    assert_int_equal(admit(f, &rec), STATE_ESTALE);
    assert_string_equal(f->err, "shop: version 3 is not above your last version 3");
    rec.version = 2;
    assert_int_equal(admit(f, &rec), STATE_ESTALE);
    assert_string_equal(f->err, "shop: version 2 is not above your last version 3");
}

/* The holder updates and releases a name it claimed long ago; only moving its claim time
 * counts as a new claim. */
static void test_holder_updates(void **state)
{
    struct fixture *f = *state;
    struct state_record rec = nf_record(STATE_RECORD_RESERVE, "shop", 1, 1, NF_NOW_MS - HOUR_MS, 0);

    merge(f, &rec);
    rec = nf_record(STATE_RECORD_PROXY, "shop", 1, 2, NF_NOW_MS - HOUR_MS, 80);
    assert_int_equal(admit(f, &rec), 0);
    rec.reserved_at_ms = NF_NOW_MS - HOUR_MS / 2;
    assert_int_equal(admit(f, &rec), STATE_EINVAL);
    rec = nf_record(STATE_RECORD_RELEASE, "shop", 1, 2, NF_NOW_MS - HOUR_MS, 0);
    assert_int_equal(admit(f, &rec), 0);
    /* err may be NULL */
    rec.version = 1;
    assert_int_equal(state_names_admit(f->names, &rec, NF_NOW_MS, NULL, 0), STATE_ESTALE);
}

/* After a release anyone may claim the name; its old owner only with a higher version. */
static void test_claim_after_release(void **state)
{
    struct fixture *f = *state;
    struct state_record rec =
        nf_record(STATE_RECORD_RELEASE, "again", 1, 4, NF_NOW_MS - HOUR_MS, 0);

    merge(f, &rec);
    rec = nf_record(STATE_RECORD_RESERVE, "again", 2, 1, NF_NOW_MS, 0);
    assert_int_equal(admit(f, &rec), 0);
    rec = nf_record(STATE_RECORD_RESERVE, "again", 1, 4, NF_NOW_MS, 0);
    assert_int_equal(admit(f, &rec), STATE_ESTALE);
    rec.version = 5;
    assert_int_equal(admit(f, &rec), 0);
    /* re-claiming with the old claim time is a new claim, and too old */
    rec.reserved_at_ms = NF_NOW_MS - HOUR_MS;
    assert_int_equal(admit(f, &rec), STATE_EINVAL);
}

static void test_fqdn_claims(void **state)
{
    struct fixture *f = *state;
    struct state_record rec = nf_record(STATE_RECORD_FQDN, "www.example.org", 1, 1, NF_NOW_MS, 443);

    assert_int_equal(admit(f, &rec), 0);
    merge(f, &rec);
    rec.version = 2;
    assert_int_equal(admit(f, &rec), 0);
}

/* Growth limits: only a record taking a new place counts; updates and releases always pass; a
 * release frees a place; the per-owner count survives a change of the witnessing setting. */
static void test_quota(void **state)
{
    const struct state_quota q = {.names_per_owner = 2, .records_max = 4};
    struct state_names *names = state_names_new();
    char err[STATE_ERR_MAX];
    struct state_record r;

    (void)state;
    r = nf_record(STATE_RECORD_RESERVE, "one", 1, 1, NF_NOW_MS, 0);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), 0);
    assert_int_equal(state_names_merge(names, &r, NULL), 1);
    r = nf_record(STATE_RECORD_RESERVE, "two", 1, 1, NF_NOW_MS, 0);
    assert_int_equal(state_names_merge(names, &r, NULL), 1);
    assert_int_equal(state_names_owner_names(names, r.owner), 2);
    r = nf_record(STATE_RECORD_RESERVE, "three", 1, 1, NF_NOW_MS, 0);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), STATE_EQUOTA);
    assert_non_null(strstr(err, "max-names-per-owner"));
    /* an update of a held name passes; so does a release, which frees a place */
    r = nf_record(STATE_RECORD_PROXY, "two", 1, 2, NF_NOW_MS, 80);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), 0);
    r = nf_record(STATE_RECORD_RELEASE, "two", 1, 3, NF_NOW_MS, 0);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), 0);
    assert_int_equal(state_names_merge(names, &r, NULL), 1);
    state_names_set_witnessing(names, 1, 3); /* every key accounted out and back in */
    assert_int_equal(state_names_owner_names(names, r.owner), 1);
    r = nf_record(STATE_RECORD_RESERVE, "three", 1, 1, NF_NOW_MS, 0);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), 0);
    assert_int_equal(state_names_merge(names, &r, NULL), 1);
    /* reviving the tombstone of "two" would be a third live name */
    r = nf_record(STATE_RECORD_RESERVE, "two", 1, 4, NF_NOW_MS, 0);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), STATE_EQUOTA);
    /* the fleet: one, two (tombstone), three and another owner's make 4 records */
    r = nf_record(STATE_RECORD_RESERVE, "four", 2, 1, NF_NOW_MS, 0);
    assert_int_equal(state_names_merge(names, &r, NULL), 1);
    r = nf_record(STATE_RECORD_RESERVE, "five", 3, 1, NF_NOW_MS, 0);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), STATE_EFULL);
    assert_non_null(strstr(err, "max-records"));
    /* but an existing entry's update still passes */
    r = nf_record(STATE_RECORD_PROXY, "four", 2, 2, NF_NOW_MS, 80);
    assert_int_equal(state_names_quota(names, &r, &q, err, sizeof(err)), 0);
    state_names_free(names);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_reserve_free_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backdated_claim_is_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_taken_names_holder_and_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contender_cannot_reclaim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_or_release_by_non_holder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_or_release_of_free_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_holder_updates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claim_after_release, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fqdn_claims, setup, teardown),
        cmocka_unit_test(test_quota),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
