/*
 * test_record_build.c - records built from what users type: keys are normalized, backends
 * parsed in the right form, counts checked, and a built record signs, travels and validates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/state/record_fixtures.h"

static const char *build_problem(enum state_record_kind kind, const char *key,
                                 const char *const *backends, size_t n, bool passthrough)
{
    static char err[STATE_ERR_MAX];
    struct state_record rec;

    err[0] = '\0';
    if (state_record_build(&rec, kind, key, backends, n, passthrough, FIXTURE_NOW_MS, err,
                           sizeof(err)) == 0)
        return "";
    assert_true(strlen(err) > 0);
    return err;
}

static void test_build_proxy(void **state)
{
    const char *backends[] = {"http://10.0.0.1:8080/", "HTTP://[200::5]:80"};
    struct state_record rec;
    char err[STATE_ERR_MAX], text[64];

    assert_int_equal(state_record_build(&rec, STATE_RECORD_PROXY, "MyApp", backends, 2, false,
                                        FIXTURE_NOW_MS, err, sizeof(err)),
                     0);
    assert_int_equal(rec.kind, STATE_RECORD_PROXY);
    assert_string_equal(rec.name, "myapp");
    assert_int_equal(rec.backend_count, 2);
    state_backend_format(&rec.backends[0], false, text);
    assert_string_equal(text, "http://10.0.0.1:8080");
    state_backend_format(&rec.backends[1], false, text);
    assert_string_equal(text, "http://[200::5]:80");
    assert_false(rec.tls_passthrough);
    assert_true(rec.version == FIXTURE_NOW_MS && rec.reserved_at_ms == FIXTURE_NOW_MS &&
                rec.issued_at_ms == FIXTURE_NOW_MS);
}

static void test_build_other_kinds(void **state)
{
    const char *pass[] = {"10.0.0.1:443"};
    struct state_record rec;
    char err[STATE_ERR_MAX];

    assert_int_equal(state_record_build(&rec, STATE_RECORD_FQDN, "WWW.Example.org.", pass, 1, true,
                                        FIXTURE_NOW_MS, err, sizeof(err)),
                     0);
    assert_string_equal(rec.name, "www.example.org");
    assert_true(rec.tls_passthrough);
    assert_int_equal(state_record_build(&rec, STATE_RECORD_RESERVE, "my-app", NULL, 0, false,
                                        FIXTURE_NOW_MS, err, sizeof(err)),
                     0);
    assert_string_equal(rec.name, "my-app");
    assert_int_equal(state_record_build(&rec, STATE_RECORD_RELEASE, "Shop.Example.org", NULL, 0,
                                        false, FIXTURE_NOW_MS, err, sizeof(err)),
                     0);
    assert_string_equal(rec.name, "shop.example.org");
}

static void test_build_errors(void **state)
{
    const char *http[] = {"http://10.0.0.1:80"};
    const char *bare[] = {"10.0.0.1:80"};
    const char *many[17];

    assert_string_equal(build_problem(STATE_RECORD_RESERVE, "my_app", NULL, 0, false),
                        "name \"my_app\" has invalid character '_': use a-z, 0-9 and '-'");
    assert_string_equal(build_problem(STATE_RECORD_FQDN, "example", http, 1, false),
                        "fqdn \"example\" needs at least two labels, like www.example.org");
    assert_string_equal(build_problem(STATE_RECORD_RESERVE, "myapp", http, 1, false),
                        "a reserve record carries no backends (got 1)");
    assert_string_equal(build_problem(STATE_RECORD_RELEASE, "myapp", NULL, 0, true),
                        "a release record carries no tls_passthrough flag");
    assert_string_equal(build_problem(STATE_RECORD_PROXY, "myapp", NULL, 0, false),
                        "a proxy record needs 1 to 16 backends (got 0)");
    for (int i = 0; i < 17; i++)
        many[i] = http[0];
    assert_string_equal(build_problem(STATE_RECORD_PROXY, "myapp", many, 17, false),
                        "a proxy record needs 1 to 16 backends (got 17)");
    assert_string_equal(build_problem(STATE_RECORD_PROXY, "myapp", bare, 1, false),
                        "backend 10.0.0.1:80: expected http://IP:PORT (IP:PORT alone is for "
                        "--tls-passthrough)");
    assert_string_equal(build_problem(STATE_RECORD_PROXY, "myapp", http, 1, true),
                        "backend http://10.0.0.1:80: a passthrough backend is IP:PORT, without a "
                        "scheme (TLS goes through untouched)");
    assert_string_equal(build_problem((enum state_record_kind)0, "myapp", NULL, 0, false),
                        "unknown record kind 0");
}

static void test_built_record_signs_travels_validates(void **state)
{
    const char *backends[] = {"http://10.0.0.1:8080"};
    const struct state_validate_policy pol = {.now_ms = FIXTURE_NOW_MS};
    char dir[] = "/tmp/webgw-test-build-XXXXXX", path[64], err[STATE_ERR_MAX];
    uint8_t buf[STATE_RECORD_MAX_BYTES];
    struct state_record rec, got;
    struct state_key *key;
    int n;

    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/k", dir);
    key = state_key_generate(path, err, sizeof(err));
    assert_non_null(key);
    assert_int_equal(state_record_build(&rec, STATE_RECORD_PROXY, "myapp", backends, 1, false,
                                        FIXTURE_NOW_MS, err, sizeof(err)),
                     0);
    assert_int_equal(state_record_sign(&rec, key, err, sizeof(err)), 0);
    n = state_record_encode(&rec, buf, sizeof(buf));
    assert_true(n > 0);
    assert_int_equal(state_record_decode(buf, (size_t)n, &got, err, sizeof(err)), 0);
    assert_int_equal(state_record_verify(&got, err, sizeof(err)), 0);
    assert_int_equal(state_record_validate(&got, &pol, err, sizeof(err)), 0);
    state_key_free(key);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_proxy),
        cmocka_unit_test(test_build_other_kinds),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_built_record_signs_travels_validates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
