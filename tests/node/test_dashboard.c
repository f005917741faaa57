/*
 * test_dashboard.c - the dashboard, rendered by a real browser: headless Chromium loads
 * /dashboard from a two-node cluster, runs its JavaScript against the live API, and the DOM
 * it leaves must show the cluster as the API describes it (members and their state, the
 * name, its backend with the health each prober reported, the name's traffic, the events).
 * Then traffic runs on both nodes for more than a minute: the page must show the fleet-wide
 * total per name with each node's share (each node's count arrives by gossip, as a summary that
 * node signed), charts of the last samples drawn as points, and how old each health verdict
 * is. A screenshot is kept as dashboard.png in the test's build directory.
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
#include <jansson.h>
#include <time.h>

#include "harness.h"
#include "node/node.h"

static struct nt_node gw1, gw2;
static struct nt_backend *be;
static char env_key[400];
static int shop_before; /* requests to shop through gw1 in the first test */

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
    shop_before = 7;
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
    /* who may witness: no --fleet-keys, gossip on loopback */
    assert_non_null(strstr(dom, "class=\"badge suspect\" title=\"who may witness claims\">fleet "
                                "open (loopback)</span>"));
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

/* GET path on gw as JSON (NULL when it fails). */
static json_t *api_json(const struct nt_node *gw, const char *path)
{
    struct ctl_response r;
    json_t *j = NULL;

    if (nt_api(gw, "GET", path, NULL, NULL, 0, &r) == 200)
        j = json_loads(r.body, 0, NULL);
    ctl_response_free(&r);
    return j;
}

/* Requests to `name` that node `node` reports in gw1's fleet view; -1 when not listed. */
static long fleet_requests(const char *name, const char *node)
{
    json_t *fleet = api_json(&gw1, "/api/v1/traffic/fleet"), *row, *n;
    long found = -1;
    size_t i, j;

    json_array_foreach(json_object_get(fleet, "names"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) != 0)
            continue;
        json_array_foreach(json_object_get(row, "nodes"), j, n)
        {
            if (strcmp(json_string_value(json_object_get(n, "node")), node) == 0)
                found = (long)json_integer_value(json_object_get(n, "requests"));
        }
    }
    json_decref(fleet);
    return found;
}

/* Sum of gw1's history samples of `name` (what its charts draw). */
static long history_sum(const char *name)
{
    json_t *h = api_json(&gw1, "/api/v1/traffic/history"), *row, *v;
    long sum = -1;
    size_t i, j;

    json_array_foreach(json_object_get(h, "names"), i, row)
    {
        if (strcmp(json_string_value(json_object_get(row, "name")), name) != 0)
            continue;
        sum = 0;
        json_array_foreach(json_object_get(row, "requests"), j, v)
        {
            sum += (long)json_integer_value(v);
        }
    }
    json_decref(h);
    return sum;
}

struct expect {
    const char *name, *node; /* whose count */
    long requests;           /* what it must be */
};

static bool fleet_has(void *ctx)
{
    const struct expect *e = ctx;
    return fleet_requests(e->name, e->node) == e->requests;
}

static bool history_has(void *ctx)
{
    const struct expect *e = ctx;
    return history_sum(e->name) == e->requests;
}

/* The number in attribute `attr` of the first element after `from` that has it; -1 if none. */
static long attr_after(const char *from, const char *attr)
{
    char pat[64];
    const char *p;

    snprintf(pat, sizeof(pat), "%s=\"", attr);
    p = from ? strstr(from, pat) : NULL;
    return p ? atol(p + strlen(pat)) : -1;
}

/* Within the element that starts at `row` (up to the next "</tr>"), the data-points of the chart
 * of `series`; -1 if none. */
static long chart_points(const char *row, const char *series)
{
    char pat[64], *end, *copy;
    const char *p;
    long n = -1;

    if (row == NULL || (end = strstr(row, "</tr>")) == NULL)
        return -1;
    copy = strndup(row, (size_t)(end - row));
    snprintf(pat, sizeof(pat), "data-series=\"%s\"", series);
    p = strstr(copy, pat);
    if (p) {
        const char *tag = p;
        while (tag > copy && *tag != '<')
            tag--;
        n = attr_after(tag, "data-points");
        /* and the line is really there: a polyline with that many coordinates or more */
        const char *pl = strstr(p, "<polyline points=\"");
        if (pl == NULL || n <= 0)
            n = -1;
        else {
            long pairs = 0;
            for (const char *c = pl + 18; *c && *c != '"'; c++)
                pairs += *c == ',';
            if (pairs < n)
                n = -1;
        }
    }
    free(copy);
    return n;
}

static void dashboard_after_a_minute_of_traffic(void **state)
{
    char body[128], url[128], shot[512], rowpat[64], *dom;
    long n1 = 0, n2 = 0, errors = 0;
    struct timespec t0, t;

    /* a second name whose backend refuses connections: its requests are errors (502) */
    assert_int_equal(ctl(&gw1, "reserve", "flaky", NULL), 0);
    assert_int_equal(ctl(&gw1, "expose", "flaky", "--backend", "http://127.0.0.15:9", NULL), 0);
    /* 65 s of traffic on both nodes: two requests through gw1 for one through gw2 */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        if (nt_get(gw1.ip, gw1.http_port, "shop.localhost", "/", body, sizeof(body)) == 200)
            n1++;
        if (nt_get(gw1.ip, gw1.http_port, "shop.localhost", "/", body, sizeof(body)) == 200)
            n1++;
        if (nt_get(gw2.ip, gw2.http_port, "shop.localhost", "/", body, sizeof(body)) == 200)
            n2++;
        int st = nt_get(gw1.ip, gw1.http_port, "flaky.localhost", "/", body, sizeof(body));
        if (st >= 500)
            errors++;
        usleep(100000);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (t.tv_sec - t0.tv_sec < 65);
    fprintf(stderr, "traffic: shop %ld via dash-one, %ld via dash-two; flaky %ld errors\n", n1, n2,
            errors);
    assert_true(n1 > 100 && n2 > 50 && errors > 50);

    /* dash-two's count reaches dash-one by gossip, in its next signed summary (every 10 s) */
    struct expect two = {"shop", "dash-two", n2}, one = {"shop", "dash-one", n1 + shop_before};
    assert_true(nt_wait(fleet_has, &two, 30000));
    assert_true(nt_wait(fleet_has, &one, 1000));
    /* dash-one's history holds every request once its next sample is taken */
    assert_true(nt_wait(history_has, &one, 15000));

    snprintf(url, sizeof(url), "%s/dashboard", gw1.api_url);
    dom = chromium(url, NULL);
    assert_non_null(dom);
    assert_non_null(strstr(dom, "data-ready=\"1\""));
    /* fleet-wide total of shop, and each node's share */
    {
        const char *row = strstr(dom, "data-traffic=\"shop\"");
        assert_non_null(row);
        assert_int_equal(attr_after(row, "data-requests"), n1 + n2 + shop_before);
        snprintf(rowpat, sizeof(rowpat), "<td class=\"num\">%ld</td>", n1 + n2 + shop_before);
        assert_non_null(strstr(row, rowpat));
        assert_int_equal(attr_after(strstr(row, "data-node=\"dash-one\""), "data-requests"),
                         n1 + shop_before);
        assert_int_equal(attr_after(strstr(row, "data-node=\"dash-two\""), "data-requests"), n2);
        assert_non_null(strstr(dom, "2 nodes reporting"));
    }
    /* charts: more than a minute at one sample per 10 s is at least 6 points per series */
    {
        const char *shop = strstr(dom, "data-history=\"shop\"");
        const char *flaky = strstr(dom, "data-history=\"flaky\"");
        long req = chart_points(shop, "requests"), p99 = chart_points(shop, "p99");
        long err = chart_points(flaky, "errors");
        fprintf(stderr, "chart points: shop requests %ld, shop p99 %ld, flaky errors %ld\n", req,
                p99, err);
        assert_true(req >= 6);
        assert_true(p99 >= 6);
        assert_true(err >= 6);
    }
    /* each verdict and each prober's result says how old it is */
    {
        const char *v = strstr(dom, "data-verdict-age=\"");
        assert_non_null(v);
        assert_true(atol(v + 18) >= 0 && atol(v + 18) <= 30);
        assert_true(attr_after(strstr(dom, "class=\"probe up\""), "data-age") >= 0);
        assert_non_null(strstr(dom, "s ago"));
    }
    free(dom);

    {
        char cwd[400];
        snprintf(shot, sizeof(shot), "%s/dashboard.png", getcwd(cwd, sizeof(cwd)) ? cwd : ".");
    }
    dom = chromium(url, shot);
    free(dom);
    fprintf(stderr, "screenshot after a minute: %s\n", shot);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dashboard_renders_the_live_cluster),
        cmocka_unit_test(dashboard_after_a_minute_of_traffic),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
