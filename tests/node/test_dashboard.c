/*
 * test_dashboard.c - the dashboard, rendered by a real browser: headless Chromium loads
 * /dashboard from a two-node cluster, runs its JavaScript against the live API, and the DOM
 * it leaves must show the cluster as the API describes it (members and their state, the
 * name, its backend with the health each prober reported, the name's traffic, the events).
 * A screenshot is kept as dashboard.png in the test's build directory.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node gw1, gw2;
static struct nt_backend *be;
static char env_key[400];

/* Runs headless Chromium on url; returns the DOM after scripts ran (malloc'd) or NULL. */
static char *chromium(const char *url, const char *screenshot)
{
    char cmd[2048];
    size_t cap = 1 << 20, len = 0;
    char *dom = malloc(cap);
    FILE *p;

    /* virtual time lets the page's fetches and timers run to completion before the dump */
    snprintf(cmd, sizeof(cmd),
             "chromium --headless=new --no-sandbox --disable-gpu --no-first-run "
             "--user-data-dir=%s/chromium --hide-scrollbars --window-size=1400,900 "
             "--virtual-time-budget=6000 %s%s %s 2>/dev/null",
             nt_tmpdir(), screenshot ? "--screenshot=" : "--dump-dom", screenshot ? screenshot : "",
             url);
    p = popen(cmd, "r");
    if (!p) {
        free(dom);
        return NULL;
    }
    for (size_t n; (n = fread(dom + len, 1, cap - 1 - len, p)) > 0;)
        len += n;
    dom[len] = '\0';
    if (pclose(p) != 0) {
        free(dom);
        return NULL;
    }
    return dom;
}

static int ctl(const struct nt_node *n, ...)
{
    const char *env[] = {env_key, NULL};
    char out[8192], err[4096];
    va_list ap;
    int rc;

    va_start(ap, n);
    rc = nt_ctlv(env, out, sizeof(out), err, sizeof(err), n->api_url, ap);
    va_end(ap);
    return rc;
}

static int setup(void **state)
{
    char seed[64];
    const char *extra1[] = {"--allow-loopback-backends", "--node-name", "dash-one", NULL};

    be = nt_backend_start("127.0.0.14", "dash-backend", 0);
    if (nt_node_start(&gw1, "dash1", "127.0.0.1", extra1) != 0)
        return -1;
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", gw1.gossip_port);
    const char *extra2[] = {
        "--allow-loopback-backends", "--node-name", "dash-two", "--join", seed, NULL};
    if (nt_node_start(&gw2, "dash2", "127.0.0.2", extra2) != 0)
        return -1;
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    return ctl(&gw1, "keygen", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    nt_node_stop(&gw1, SIGTERM, 10000);
    nt_node_stop(&gw2, SIGTERM, 10000);
    nt_backend_stop(be);
    nt_cleanup();
    return 0;
}

static bool both_alive(void *ctx)
{
    struct ctl_response r;
    bool ok = nt_api(&gw1, "GET", "/api/v1/members", NULL, NULL, 0, &r) == 200 &&
              strstr(r.body, "dash-two") && !strstr(r.body, "suspect");

    ctl_response_free(&r);
    return ok;
}

static bool health_known(void *ctx)
{
    struct ctl_response r;
    bool ok = nt_api(&gw1, "GET", "/api/v1/backends", NULL, NULL, 0, &r) == 200 &&
              strstr(r.body, "\"health\":\"up\"");

    ctl_response_free(&r);
    return ok;
}

static void dashboard_renders_the_live_cluster(void **state)
{
    char backend[64], url[128], body[128], shot[512], *dom;
    struct stat st;

    assert_true(nt_wait(both_alive, NULL, 10000));
    snprintf(backend, sizeof(backend), "http://127.0.0.14:%d", nt_backend_port(be));
    assert_int_equal(ctl(&gw1, "reserve", "shop", NULL), 0);
    assert_int_equal(ctl(&gw1, "expose", "shop", "--backend", backend, NULL), 0);
    for (int i = 0; i < 7; i++) {
        int st_ = 0;
        for (int k = 0; k < 40 && st_ != 200; k++) {
            st_ = nt_get(gw1.ip, gw1.http_port, "shop.localhost", "/", body, sizeof(body));
            if (st_ != 200)
                usleep(50000);
        }
        assert_int_equal(st_, 200);
    }
    assert_true(nt_wait(health_known, NULL, 10000));

    snprintf(url, sizeof(url), "%s/dashboard", gw1.api_url);
    dom = chromium(url, NULL);
    assert_non_null(dom);
    /* the script ran and rendered, with no error banner */
    assert_non_null(strstr(dom, "data-ready=\"1\""));
    assert_null(strstr(dom, "id=\"error\" style=\"display: block;\""));
    /* it polls: within the 6 s of virtual time it fetched the API more than once */
    {
        const char *polls = strstr(dom, "data-polls=\"");
        assert_non_null(polls);
        fprintf(stderr, "dashboard polled %d times\n", atoi(polls + 12));
        assert_true(atoi(polls + 12) >= 2);
    }
    /* members with their state */
    assert_non_null(strstr(dom, "data-member=\"dash-one\""));
    assert_non_null(strstr(dom, "data-member=\"dash-two\""));
    assert_non_null(strstr(dom, "<span class=\"badge alive\">alive</span>"));
    /* the name, its backend and a verdict per prober */
    assert_non_null(strstr(dom, "data-name=\"shop\""));
    assert_non_null(strstr(dom, backend));
    assert_non_null(strstr(dom, "<span class=\"badge up\">up</span>"));
    assert_non_null(strstr(dom, "class=\"probe up\""));
    /* traffic: the 7 requests above */
    {
        const char *row = strstr(dom, "data-traffic=\"shop\"");
        assert_non_null(row);
        assert_non_null(strstr(row, "<td class=\"num\">7</td>"));
    }
    /* events */
    assert_non_null(strstr(dom, "reserve shop"));
    assert_non_null(strstr(dom, "dash-two (127.0.0.2:"));
    free(dom);

    /* a change on the other node shows on the next load: the page reads live data */
    assert_int_equal(ctl(&gw2, "reserve", "later", NULL), 0);
    dom = chromium(url, NULL);
    assert_non_null(dom);
    assert_non_null(strstr(dom, "data-name=\"later\""));
    free(dom);

    {
        char cwd[400];
        snprintf(shot, sizeof(shot), "%s/dashboard.png", getcwd(cwd, sizeof(cwd)) ? cwd : ".");
    }
    dom = chromium(url, shot);
    free(dom);
    assert_int_equal(stat(shot, &st), 0);
    assert_true(st.st_size > 10000);
    fprintf(stderr, "screenshot: %s (%lld bytes)\n", shot, (long long)st.st_size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dashboard_renders_the_live_cluster),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
