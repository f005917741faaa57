/*
 * test_record_validate.c - every semantic rule a record must meet, each proven by the exact
 * message a user gets when breaking it (and by a neighbouring record that passes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/state/record_fixtures.h"

static const struct state_validate_policy policy = {.now_ms = FIXTURE_NOW_MS,
                                                    .domain = "gw.example.com"};

/* Validates and returns the message, "" when the record passes. */
static const char *problem(const struct state_record *rec, const struct state_validate_policy *p)
{
    static char err[STATE_ERR_MAX];
    int rc;

    err[0] = '\0';
    rc = state_record_validate(rec, p, err, sizeof(err));
    if (rc == 0) {
        assert_string_equal(err, "");
        return "";
    }
    assert_int_equal(rc, STATE_EINVAL);
    assert_true(strlen(err) > 0);
    return err;
}

static const char *name_problem(const char *name)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, name);
    return problem(&rec, &policy);
}

static const char *fqdn_problem(const char *name)
{
    struct state_record rec = fixture_record(STATE_RECORD_FQDN, name);
    return problem(&rec, &policy);
}

/* ---- every kind passes in its usual shape ----------------------------------------------- */

static void test_fixtures_are_valid(void **state)
{
    struct state_record rec;

    rec = fixture_record(STATE_RECORD_RESERVE, "myapp");
    assert_string_equal(problem(&rec, &policy), "");
    rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    assert_string_equal(problem(&rec, &policy), "");
    rec.tls_passthrough = true;
    assert_string_equal(problem(&rec, &policy), "");
    rec = fixture_record(STATE_RECORD_FQDN, "www.example.org");
    assert_string_equal(problem(&rec, &policy), "");
    rec = fixture_record(STATE_RECORD_RELEASE, "myapp");
    assert_string_equal(problem(&rec, &policy), "");
    rec = fixture_record(STATE_RECORD_RELEASE, "www.example.org");
    assert_string_equal(problem(&rec, &policy), "");
    /* a NULL policy is the strict default with the real clock: fixtures are in the past */
    rec = fixture_record(STATE_RECORD_PROXY, "myapp");
    assert_string_equal(problem(&rec, NULL), "");
}

/* ---- name syntax ------------------------------------------------------------------------- */

static void test_name_length(void **state)
{
    char n63[64], n64[65];

    assert_string_equal(name_problem("ab"),
                        "name \"ab\" is too short: names are 3 to 63 characters");
    assert_string_equal(name_problem("abc"), "");
    memset(n63, 'a', 63);
    n63[63] = '\0';
    memset(n64, 'a', 64);
    n64[64] = '\0';
    assert_string_equal(name_problem(n63), "");
    assert_string_equal(name_problem(n64),
                        "name \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" "
                        "is too long: names are 3 to 63 characters");
}

static void test_name_characters(void **state)
{
    assert_string_equal(name_problem("my_app"),
                        "name \"my_app\" has invalid character '_': use a-z, 0-9 and '-'");
    assert_string_equal(name_problem("my.app"),
                        "name \"my.app\" has invalid character '.': use a-z, 0-9 and '-'");
    assert_string_equal(name_problem("my\x7f"
                                     "app"),
                        "name \"my\\x7fapp\" has invalid character '\\x7f': use a-z, 0-9 and '-'");
    assert_string_equal(name_problem("my-app-2"), "");
    assert_string_equal(name_problem("123"), "");
}

static void test_name_hyphens(void **state)
{
    assert_string_equal(name_problem("-app"), "name \"-app\" starts with '-'");
    assert_string_equal(name_problem("app-"), "name \"app-\" ends with '-'");
    assert_string_equal(name_problem("a--b"), "");
}

static void test_name_in_record_must_be_lowercase(void **state)
{
    assert_string_equal(name_problem("MyApp"), "name \"MyApp\" is not lowercase");
}

static void test_name_normalize_folds_case(void **state)
{
    char out[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX];

    assert_int_equal(state_name_normalize("MyApp-2", out, err, sizeof(err)), 0);
    assert_string_equal(out, "myapp-2");
    strcpy(out, "untouched");
    assert_int_equal(state_name_normalize("My_App", out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "name \"My_App\" has invalid character '_': use a-z, 0-9 and '-'");
    assert_string_equal(out, "untouched");
    assert_int_equal(state_name_normalize("", out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "name \"\" is too short: names are 3 to 63 characters");
}

static void test_name_message_quotes_safely(void **state)
{
    char out[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX];

    /* a newline or quote in a name must not break the one-line log or the JSON answer */
    assert_int_equal(state_name_normalize("a\"b\nc", out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "name \"a\\x22b\\x0ac\" has invalid character '\\x22': use a-z, 0-9 "
                             "and '-'");

    /* a long hostile name is cut, and says so, instead of filling the message */
    {
        char typed[400];

        memset(typed, '\n', sizeof(typed) - 1);
        typed[sizeof(typed) - 1] = '\0';
        assert_int_equal(state_fqdn_normalize(typed, out, err, sizeof(err)), STATE_EINVAL);
        assert_true(strlen(err) < 128);
        assert_string_equal(err,
                            "fqdn \"\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a"
                            "\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a\\x0a...\" is too long: at most 253 "
                            "characters");
    }
}

/* ---- fqdn syntax ------------------------------------------------------------------------- */

static void test_fqdn_labels(void **state)
{
    assert_string_equal(fqdn_problem("localhost"),
                        "fqdn \"localhost\" needs at least two labels, like www.example.org");
    assert_string_equal(fqdn_problem("www..example.org"),
                        "fqdn \"www..example.org\" has an empty label");
    assert_string_equal(fqdn_problem(".example.org"), "fqdn \".example.org\" has an empty label");
    assert_string_equal(fqdn_problem("www.example.org."),
                        "fqdn \"www.example.org.\" has an empty label");
    assert_string_equal(fqdn_problem("www.-example.org"),
                        "fqdn \"www.-example.org\": label \"-example\" starts with '-'");
    assert_string_equal(fqdn_problem("www.example-.org"),
                        "fqdn \"www.example-.org\": label \"example-\" ends with '-'");
    assert_string_equal(fqdn_problem("www.ex_ample.org"),
                        "fqdn \"www.ex_ample.org\" has invalid character '_': use a-z, 0-9, '-' "
                        "and '.'");
    assert_string_equal(fqdn_problem("www.Example.org"),
                        "fqdn \"www.Example.org\" is not lowercase");
    assert_string_equal(fqdn_problem("a.io"), "");
    assert_string_equal(fqdn_problem("x-1.y-2.example.co.uk"), "");
}

static void test_fqdn_lengths(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_FQDN, "x");
    char label64[80], err[STATE_ERR_MAX];
    char out[STATE_FQDN_MAX + 1];

    memset(label64, 'a', 64);
    strcpy(label64 + 64, ".example.org");
    assert_string_equal(
        fqdn_problem(label64),
        "fqdn \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.example.org"
        "\": label \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "\" is longer than 63 characters");
    /* 253 characters is the limit: four 62-char labels joined by dots, minus one character */
    memset(rec.name, 'a', STATE_FQDN_MAX);
    rec.name[STATE_FQDN_MAX] = '\0';
    for (int i = 62; i < STATE_FQDN_MAX; i += 63)
        rec.name[i] = '.';
    assert_int_equal(strlen(rec.name), 253);
    assert_string_equal(problem(&rec, &policy), "");
    /* 254 cannot be in a record (the buffer is the limit), but can be typed */
    {
        char typed[300];

        memcpy(typed, rec.name, 253);
        strcpy(typed + 253, "b");
        assert_int_equal(state_fqdn_normalize(typed, out, err, sizeof(err)), STATE_EINVAL);
        assert_non_null(strstr(err, "is too long: at most 253 characters"));
        /* but 253 plus the absolute-name dot is fine */
        strcpy(typed + 253, ".");
        assert_int_equal(state_fqdn_normalize(typed, out, err, sizeof(err)), 0);
        assert_string_equal(out, rec.name);
    }
}

static void test_fqdn_numeric_tld(void **state)
{
    assert_string_equal(fqdn_problem("10.0.0.1"),
                        "fqdn \"10.0.0.1\" ends in a numeric label: IP addresses are not domains");
    assert_string_equal(
        fqdn_problem("example.123"),
        "fqdn \"example.123\" ends in a numeric label: IP addresses are not domains");
    assert_string_equal(fqdn_problem("123.example"), "");
}

static void test_fqdn_within_gateway_domain(void **state)
{
    struct state_validate_policy p = policy;
    struct state_record rec;

    assert_string_equal(fqdn_problem("myapp.gw.example.com"),
                        "fqdn \"myapp.gw.example.com\" is within the gateway domain "
                        "gw.example.com: names there are reserved, not proxied as custom domains");
    assert_string_equal(fqdn_problem("gw.example.com"),
                        "fqdn \"gw.example.com\" is within the gateway domain gw.example.com: "
                        "names there are reserved, not proxied as custom domains");
    /* a suffix that is not a label boundary is another domain */
    assert_string_equal(fqdn_problem("mygw.example.com"), "");
    assert_string_equal(fqdn_problem("example.com"), "");
    /* the domain as configured may be spelled with capitals and a trailing dot */
    p.domain = "GW.Example.COM.";
    rec = fixture_record(STATE_RECORD_FQDN, "a.gw.example.com");
    assert_string_equal(problem(&rec, &p),
                        "fqdn \"a.gw.example.com\" is within the gateway domain GW.Example.COM.: "
                        "names there are reserved, not proxied as custom domains");
    p.domain = "localhost";
    rec = fixture_record(STATE_RECORD_FQDN, "app.localhost");
    assert_string_equal(problem(&rec, &p),
                        "fqdn \"app.localhost\" is within the gateway domain localhost: names "
                        "there are reserved, not proxied as custom domains");
    p.domain = NULL;
    assert_string_equal(problem(&rec, &p), "");
}

static void test_fqdn_normalize(void **state)
{
    char out[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX];

    assert_int_equal(state_fqdn_normalize("WWW.Example.ORG.", out, err, sizeof(err)), 0);
    assert_string_equal(out, "www.example.org");
    assert_int_equal(state_fqdn_normalize("", out, err, sizeof(err)), STATE_EINVAL);
    assert_string_equal(err, "fqdn is empty");
    assert_int_equal(state_fqdn_normalize("www.example.org..", out, err, sizeof(err)),
                     STATE_EINVAL);
    assert_string_equal(err, "fqdn \"www.example.org..\" has an empty label");
}

static void test_release_key_is_name_or_fqdn(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RELEASE, "my_app");

    assert_string_equal(problem(&rec, &policy),
                        "name \"my_app\" has invalid character '_': use a-z, 0-9 and '-'");
    rec = fixture_record(STATE_RECORD_RELEASE, "www..example.org");
    assert_string_equal(problem(&rec, &policy), "fqdn \"www..example.org\" has an empty label");
}

/* ---- kinds and fields -------------------------------------------------------------------- */

static void test_unknown_kind(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");

    rec.kind = (enum state_record_kind)7;
    assert_string_equal(problem(&rec, &policy), "unknown record kind 7");
}

static void test_reserve_and_release_carry_no_backends(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");

    rec.backend_count = 1;
    rec.backends[0] = fixture_backend("10.0.0.1", 80);
    assert_string_equal(problem(&rec, &policy), "a reserve record carries no backends (got 1)");
    rec = fixture_record(STATE_RECORD_RESERVE, "myapp");
    rec.tls_passthrough = true;
    assert_string_equal(problem(&rec, &policy), "a reserve record carries no tls_passthrough flag");
    rec = fixture_record(STATE_RECORD_RELEASE, "myapp");
    rec.backend_count = 2;
    rec.backends[0] = fixture_backend("10.0.0.1", 80);
    rec.backends[1] = fixture_backend("10.0.0.2", 80);
    assert_string_equal(problem(&rec, &policy), "a release record carries no backends (got 2)");
    rec = fixture_record(STATE_RECORD_RELEASE, "myapp");
    rec.tls_passthrough = true;
    assert_string_equal(problem(&rec, &policy), "a release record carries no tls_passthrough flag");
}

static void test_proxy_and_fqdn_backend_count(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");

    rec.backend_count = 0;
    assert_string_equal(problem(&rec, &policy), "a proxy record needs 1 to 16 backends (got 0)");
    rec = fixture_record(STATE_RECORD_FQDN, "www.example.org");
    rec.backend_count = 0;
    assert_string_equal(problem(&rec, &policy), "a fqdn record needs 1 to 16 backends (got 0)");
    rec.backend_count = 17;
    assert_string_equal(problem(&rec, &policy), "a fqdn record needs 1 to 16 backends (got 17)");
    rec.backend_count = 16;
    for (int i = 0; i < 16; i++) {
        rec.backends[i] = fixture_backend("10.0.0.1", 80);
        rec.backends[i].addr[3] = (uint8_t)(i + 1);
    }
    assert_string_equal(problem(&rec, &policy), "");
}

static void test_duplicate_backend(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");

    rec.backends[1] = rec.backends[0];
    assert_string_equal(problem(&rec, &policy), "backend http://10.1.2.3:8080 is listed twice");
    rec.backends[1].port = 8081; /* same IP, other port: two backends */
    assert_string_equal(problem(&rec, &policy), "");
}

static void test_backend_addresses_checked(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");

    rec.backends[1] = fixture_backend("127.0.0.1", 8080);
    assert_string_equal(problem(&rec, &policy), "backend 127.0.0.1:8080 is a loopback address "
                                                "(allowed only with --allow-loopback-backends)");
    rec.backends[1] = fixture_backend("10.0.0.9", 0);
    assert_string_equal(problem(&rec, &policy),
                        "backend 10.0.0.9:0 has port 0: ports are 1 to 65535");
}

/* ---- versions and time ------------------------------------------------------------------- */

static void test_version_zero(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");

    rec.version = 0;
    assert_string_equal(problem(&rec, &policy), "version must be at least 1");
    rec.version = 1;
    assert_string_equal(problem(&rec, &policy), "");
    /* the top of the range: 2^53 is the last version, 2^63 (accepted once) is refused */
    rec.version = STATE_VERSION_MAX;
    assert_string_equal(problem(&rec, &policy), "");
    rec.version = STATE_VERSION_MAX + 1;
    assert_string_equal(problem(&rec, &policy),
                        "version 9007199254740993 is above the highest, 2^53 (9007199254740992)");
    rec.version = 1ULL << 63;
    assert_non_null(strstr(problem(&rec, &policy), "is above the highest"));
}

static void test_reserved_after_issued(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");

    rec.reserved_at_ms = 2000;
    rec.issued_at_ms = 1999;
    assert_string_equal(problem(&rec, &policy), "reserved_at_ms 2000 is after issued_at_ms 1999");
    rec.issued_at_ms = 2000;
    assert_string_equal(problem(&rec, &policy), "");
}

static void test_future_timestamps(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "myapp");

    rec.issued_at_ms = FIXTURE_NOW_MS + STATE_FUTURE_SKEW_MS;
    assert_string_equal(problem(&rec, &policy), "");
    rec.issued_at_ms = FIXTURE_NOW_MS + STATE_FUTURE_SKEW_MS + 1;
    assert_string_equal(problem(&rec, &policy),
                        "issued_at_ms is 300001 ms ahead of this node's clock (limit 300000 ms): "
                        "check the signer's clock");
    /* a reservation dated in the future drags issued_at with it (reserved <= issued) */
    rec.reserved_at_ms = UINT64_MAX;
    rec.issued_at_ms = UINT64_MAX;
    assert_string_equal(problem(&rec, &policy),
                        "issued_at_ms is 18446742373709551615 ms ahead of this node's clock "
                        "(limit 300000 ms): check the signer's clock");
}

static void test_future_checked_against_real_clock(void **state)
{
    struct state_validate_policy p = {.now_ms = 0};
    struct state_record rec = fixture_record(STATE_RECORD_RESERVE, "myapp");

    rec.issued_at_ms = state_now_ms() + 3600 * 1000;
    assert_non_null(strstr(problem(&rec, &p), "ahead of this node's clock"));
    rec.issued_at_ms = state_now_ms();
    assert_string_equal(problem(&rec, &p), "");
}

static void test_first_broken_rule_is_reported(void **state)
{
    struct state_record rec = fixture_record(STATE_RECORD_PROXY, "-bad");

    rec.version = 0;
    rec.backend_count = 0;
    assert_string_equal(problem(&rec, &policy), "name \"-bad\" starts with '-'");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_are_valid),
        cmocka_unit_test(test_name_length),
        cmocka_unit_test(test_name_characters),
        cmocka_unit_test(test_name_hyphens),
        cmocka_unit_test(test_name_in_record_must_be_lowercase),
        cmocka_unit_test(test_name_normalize_folds_case),
        cmocka_unit_test(test_name_message_quotes_safely),
        cmocka_unit_test(test_fqdn_labels),
        cmocka_unit_test(test_fqdn_lengths),
        cmocka_unit_test(test_fqdn_numeric_tld),
        cmocka_unit_test(test_fqdn_within_gateway_domain),
        cmocka_unit_test(test_fqdn_normalize),
        cmocka_unit_test(test_release_key_is_name_or_fqdn),
        cmocka_unit_test(test_unknown_kind),
        cmocka_unit_test(test_reserve_and_release_carry_no_backends),
        cmocka_unit_test(test_proxy_and_fqdn_backend_count),
        cmocka_unit_test(test_duplicate_backend),
        cmocka_unit_test(test_backend_addresses_checked),
        cmocka_unit_test(test_version_zero),
        cmocka_unit_test(test_reserved_after_issued),
        cmocka_unit_test(test_future_timestamps),
        cmocka_unit_test(test_future_checked_against_real_clock),
        cmocka_unit_test(test_first_broken_rule_is_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
