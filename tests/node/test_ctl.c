/*
 * test_ctl.c - every webgwctl command against a running webgw, as a user types them: what is
 * printed, the --json shapes, and the exit statuses (0 done, 1 refused, 2 usage, 3 unreachable or
 * not a webgw API).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <jansson.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node node;
static char env_api[128], env_key[400], env_key2[400], key_path[300];
static char out[65536], err[8192];

/* Runs webgwctl with WEBGW_API/WEBGW_KEY set and the given arguments. */
static int ctl_env(const char *key_env, ...)
{
    const char *argv[32] = {"webgwctl"};
    const char *env[] = {env_api, key_env, NULL};
    int argc = 1;
    va_list ap;

    va_start(ap, key_env);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;)
        argv[argc++] = a;
    va_end(ap);
    return nt_run(argv, env, out, sizeof(out), err, sizeof(err));
}
#define ctl(...) ctl_env(env_key, __VA_ARGS__, NULL)
#define ctl2(...) ctl_env(env_key2, __VA_ARGS__, NULL)

static int setup(void **state)
{
    const char *extra[] = {"--allow-loopback-backends", NULL};

    if (nt_node_start(&node, "ctl", "127.0.0.1", extra) != 0)
        return -1;
    snprintf(env_api, sizeof(env_api), "WEBGW_API=%s", node.api_url);
    snprintf(key_path, sizeof(key_path), "%s/keys/owner.key", nt_tmpdir());
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s", key_path);
    snprintf(env_key2, sizeof(env_key2), "WEBGW_KEY=%s/other.key", nt_tmpdir());
    return 0;
}

static int teardown(void **state)
{
    nt_node_stop(&node, SIGTERM, 5000);
    nt_cleanup();
    return 0;
}

static void keygen_writes_a_private_key_once(void **state)
{
    struct stat st;

    assert_int_equal(ctl("keygen"), 0);
    assert_int_equal(strlen(out), 65); /* 64 hex digits and a newline */
    assert_int_equal(strspn(out, "0123456789abcdef"), 64);
    assert_int_equal(stat(key_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* never overwrites */
    assert_int_equal(ctl("keygen"), 1);
    assert_non_null(strstr(err, "webgwctl: keygen:"));
    assert_int_equal(ctl2("--json", "keygen"), 0);
    json_t *doc = json_loads(out, 0, NULL);
    assert_int_equal(strlen(json_string_value(json_object_get(doc, "owner"))), 64);
    json_decref(doc);
}

/* A fresh home has no ~/.config: keygen makes the folders (0700) and the key. */
static void keygen_on_a_fresh_home(void **state)
{
    char home[400], env_home[420], path[480];
    const char *env[] = {env_api, env_home, "XDG_CONFIG_HOME=", "WEBGW_KEY=", NULL};
    const char *argv[] = {"webgwctl", "keygen", NULL};
    struct stat st;

    snprintf(home, sizeof(home), "%s/fresh-home", nt_tmpdir());
    snprintf(env_home, sizeof(env_home), "HOME=%s", home);
    assert_int_equal(nt_run(argv, env, out, sizeof(out), err, sizeof(err)), 0);
    snprintf(path, sizeof(path), "%s/.config/webgw/owner.key", home);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/.config/webgw", home);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof(path), "%s/.config", home);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
}

static void reserve_expose_show_names_release(void **state)
{
    json_t *doc, *n;

    assert_int_equal(ctl("reserve", "Demo"), 0);
    assert_non_null(strstr(out, "reserved demo"));
    /* someone else cannot take it: refused, with the server's reason */
    assert_int_equal(ctl2("reserve", "demo"), 1);
    assert_non_null(strstr(err, "refused (409)"));
    assert_int_equal(
        ctl("expose", "demo", "--backend", "http://127.0.0.1:1", "--backend", "http://127.0.0.2:2"),
        0);
    assert_non_null(strstr(out, "exposed demo"));
    assert_int_equal(ctl2("expose", "demo", "--backend", "http://127.0.0.1:3"), 1);
    assert_non_null(strstr(err, "refused (403)"));

    assert_int_equal(ctl("names"), 0);
    assert_non_null(strstr(out, "demo"));
    assert_non_null(strstr(out, "http://127.0.0.1:1 http://127.0.0.2:2"));
    assert_int_equal(ctl("--json", "names"), 0);
    doc = json_loads(out, 0, NULL);
    assert_true(json_is_array(doc));
    n = json_array_get(doc, 0);
    assert_string_equal(json_string_value(json_object_get(n, "name")), "demo");
    assert_int_equal(json_array_size(json_object_get(n, "backends")), 2);
    assert_true(json_is_boolean(json_object_get(n, "tls_passthrough")));
    assert_true(json_is_integer(json_object_get(n, "version")));
    json_decref(doc);

    assert_int_equal(ctl("show", "demo"), 0);
    assert_non_null(strstr(out, "kind:            proxy"));
    /* times in ISO 8601 UTC for people; --json keeps the raw milliseconds */
    {
        const char *r = strstr(out, "reserved_at:     ");
        assert_non_null(r);
        r += strlen("reserved_at:     ");
        assert_int_equal(strspn(r, "0123456789"), 4);
        assert_int_equal(r[4], '-');
        assert_int_equal(r[10], 'T');
        assert_int_equal(r[23], 'Z');
        assert_non_null(strstr(out, "issued_at:       20"));
    }
    assert_int_equal(ctl("--json", "show", "demo"), 0);
    doc = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "kind")), "proxy");
    /* re-exposing keeps the original claim time */
    json_int_t reserved_at = json_integer_value(json_object_get(doc, "reserved_at"));
    json_int_t version = json_integer_value(json_object_get(doc, "version"));
    json_decref(doc);
    assert_int_equal(ctl("expose", "demo", "--tls-passthrough", "--backend", "127.0.0.3:443"), 0);
    assert_int_equal(ctl("--json", "show", "demo"), 0);
    doc = json_loads(out, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(doc, "reserved_at")), reserved_at);
    assert_true(json_integer_value(json_object_get(doc, "version")) > version);
    assert_true(json_is_true(json_object_get(doc, "tls_passthrough")));
    json_decref(doc);

    assert_int_equal(ctl("release", "demo"), 0);
    assert_non_null(strstr(out, "released demo"));
    assert_int_equal(ctl("show", "demo"), 1);
    assert_non_null(strstr(err, "released"));
    assert_int_equal(ctl("names"), 0);
    assert_non_null(strstr(out, "no names"));
}

static void fqdn_and_its_release(void **state)
{
    assert_int_equal(ctl("fqdn", "WWW.Example.org", "--backend", "http://127.0.0.1:4"), 0);
    assert_non_null(strstr(out, "www.example.org"));
    assert_int_equal(ctl("show", "www.example.org"), 0);
    assert_non_null(strstr(out, "kind:            fqdn"));
    assert_int_equal(ctl("release", "www.example.org"), 0);
    assert_int_equal(ctl("show", "www.example.org"), 1);
}

static void members_and_health(void **state)
{
    json_t *doc;

    assert_int_equal(ctl("members"), 0);
    assert_non_null(strstr(out, "alive"));
    assert_non_null(strstr(out, "(this node)"));
    assert_int_equal(ctl("--json", "members"), 0);
    doc = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(doc, 0), "state")),
                        "alive");
    json_decref(doc);

    assert_int_equal(ctl("reserve", "healthy"), 0);
    assert_int_equal(ctl("expose", "healthy", "--backend", "http://127.0.0.1:5"), 0);
    assert_int_equal(ctl("health"), 0);
    assert_non_null(strstr(out, ": ok"));
    assert_non_null(strstr(out, "http://127.0.0.1:5"));
    assert_int_equal(ctl("--json", "health"), 0);
    doc = json_loads(out, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(doc, "node"), "status")),
                        "ok");
    assert_true(json_is_array(json_object_get(doc, "backends")));
    json_decref(doc);
}

static void usage_errors_exit_2(void **state)
{
    assert_int_equal(ctl_env(env_key, NULL), 2);
    assert_int_equal(ctl("frobnicate"), 2);
    assert_non_null(strstr(err, "unknown command"));
    assert_int_equal(ctl("--bogus", "names"), 2);
    assert_int_equal(ctl("reserve"), 2);
    assert_non_null(strstr(err, "missing NAME"));
    assert_int_equal(ctl("reserve", "-bad-"), 2);
    /* a bad name is a usage error in every command that takes one, with the same words (show
     * used to send it and exit 1 on the server's 400) */
    assert_int_equal(ctl("reserve", "bad_name"), 2);
    {
        static char reserve_err[sizeof(err)];
        memcpy(reserve_err, err + strlen("webgwctl: reserve: "),
               sizeof(err) - strlen("webgwctl: reserve: "));
        assert_int_equal(ctl("show", "bad_name"), 2);
        assert_string_equal(err + strlen("webgwctl: show: "), reserve_err);
        assert_int_equal(ctl("release", "bad_name"), 2);
        assert_int_equal(ctl("expose", "bad_name", "--backend", "http://127.0.0.1:1"), 2);
        assert_int_equal(ctl("show", "bad..fqdn"), 2);
        assert_int_equal(ctl("show", "nosuchname"), 1); /* valid but unknown: the server says */
    }
    /* a bad backend names the URL once */
    assert_int_equal(ctl("expose", "demo", "--backend", "http://127.0.0.21"), 2);
    assert_non_null(strstr(err, "missing port"));
    assert_null(strstr(strstr(err, "127.0.0.21") + 1, "127.0.0.21"));
    assert_int_equal(ctl("expose", "demo"), 2);
    assert_non_null(strstr(err, "--backend"));
    assert_int_equal(ctl("expose", "demo", "--backend", "http://app.internal:80"), 2);
    assert_non_null(strstr(err, "--backend http://app.internal:80:"));
    assert_int_equal(ctl("names", "extra"), 2);
    assert_int_equal(ctl("--api", "ftp://x", "names"), 2);
    /* one line each */
    assert_int_equal(strchr(err, '\n') - err, strlen(err) - 1);
}

static void refused_and_unreachable(void **state)
{
    char api[64];
    const char *argv[] = {"webgwctl", "--api", api, "names", NULL};

    /* server refusal: a loopback backend on the gateway's own API port */
    assert_int_equal(ctl("reserve", "looped"), 0);
    {
        char be[64];
        snprintf(be, sizeof(be), "http://127.0.0.1:%d", node.api_port);
        assert_int_equal(ctl("expose", "looped", "--backend", be), 1);
        assert_non_null(strstr(err, "refused (400)"));
    }
    /* a key that does not exist */
    {
        const char *missing = "WEBGW_KEY=/nonexistent/key";
        assert_int_equal(ctl_env(missing, "reserve", "nokey", NULL), 1);
        assert_non_null(strstr(err, "key:"));
    }
    /* nothing listens: exit 3 */
    snprintf(api, sizeof(api), "http://127.0.0.1:%d", nt_free_port("127.0.0.1"));
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 3);
    assert_non_null(strstr(err, "cannot connect"));
    assert_non_null(strstr(err, "Connection refused"));
    assert_non_null(strstr(err, "check --api or WEBGW_API"));
    /* --api pointed at the proxy port: not a webgw API, for reads and for writes */
    snprintf(api, sizeof(api), "http://127.0.0.1:%d", node.http_port);
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 3);
    assert_non_null(strstr(err, "is not a webgw API"));
    assert_null(strstr(err, "no reason given"));
    {
        const char *show[] = {"webgwctl", "--api", api, "show", "demo", NULL};
        const char *reserve[] = {"webgwctl", "--api", api, "reserve", "demo", NULL};
        const char *env[] = {env_key, NULL};
        assert_int_equal(nt_run(show, env, out, sizeof(out), err, sizeof(err)), 3);
        assert_non_null(strstr(err, "is not a webgw API"));
        assert_int_equal(nt_run(reserve, env, out, sizeof(out), err, sizeof(err)), 3);
        assert_non_null(strstr(err, "is not a webgw API"));
    }
    snprintf(api, sizeof(api), "http://127.0.0.1:%d", nt_free_port("127.0.0.1"));
    /* --api beats WEBGW_API */
    {
        const char *env[] = {env_api, NULL};
        assert_int_equal(nt_run(argv, env, out, sizeof(out), err, sizeof(err)), 3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keygen_writes_a_private_key_once),
        cmocka_unit_test(keygen_on_a_fresh_home),
        cmocka_unit_test(reserve_expose_show_names_release),
        cmocka_unit_test(fqdn_and_its_release),
        cmocka_unit_test(members_and_health),
        cmocka_unit_test(usage_errors_exit_2),
        cmocka_unit_test(refused_and_unreachable),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
