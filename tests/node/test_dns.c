/*
 * test_dns.c - the fleet's DNS with three real gateways on 127.0.0.41-43, each with its own
 * --dns-listen and distinct --public-addr (one IPv4, seven IPv6), checked from outside with
 * dig, kdig and dnspython (tests/node/dns_probe.py):
 *
 *   - a served name gets the A/AAAA of every gateway, the same set from each one, rotated;
 *     an fqdn proxy's CNAME target FQDN.DOMAIN too;
 *     unknown names NXDOMAIN; the apex SOA and NS with glue; ANY minimal; AXFR refused;
 *     another zone REFUSED even with RD; malformed and oversized queries dropped or FORMERR
 *   - without EDNS0 the AAAA answer (21 addresses) is truncated and dig retries over TCP
 *   - a name whose only backend is dead becomes NODATA within 5 s on every gateway
 *   - a released name becomes NXDOMAIN on every gateway within 3 s
 *   - a draining gateway (SIGTERM) leaves the others' answers within 2 s
 *   - a dead gateway (kill -9) leaves the others' answers within 5 s (it is out as soon as it
 *     is suspect: well inside the failure-detection time)
 *   - RRL: a burst past --dns-rrl from one client gets slips and drops, and is answered again
 *     once the bucket refills (one second later)
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

#define NODES 3
#define DOMAIN "gw.test"

static struct nt_node nodes[NODES];
static int dns_port[NODES];
static struct nt_backend *be;
static char env_key[400], out[65536], err[8192];

/* Runs a shell command, its stdout into out; returns the exit status. */
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    FILE *p;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    p = popen(cmd, "r");
    if (p == NULL)
        return -1;
    n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static const char *probe_path(void)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/tests/node/dns_probe.py", getenv("WEBGW_SRC"));
    return path;
}

/* dnspython's one-line view of NAME TYPE at node i (mode udp, tcp or noedns). */
static const char *probe(int i, const char *name, const char *type, const char *mode)
{
    sh("/usr/bin/python3 %s answer %s %d %s %s %s 2>&1", probe_path(), nodes[i].ip, dns_port[i],
       name, type, mode);
    return out;
}

/* dig +short, sorted, one line. */
static const char *dig_short(int i, const char *name, const char *type)
{
    sh("dig +short +tries=1 +time=2 @%s -p %d %s %s | sort | tr '\\n' ' '", nodes[i].ip,
       dns_port[i], name, type);
    return out;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls cond until it holds or `bound_ms` of wall-clock time passed (each poll runs dig, which
 * takes a while here, so nt_wait's count of sleeps would not be a time bound). Prints how long
 * it took, for the figures in the README. */
static bool within(const char *what, bool (*cond)(void *), void *ctx, int bound_ms)
{
    uint64_t start = now_ms();

    do {
        if (cond(ctx)) {
            fprintf(stderr, "[ TIMING   ] %s: %llu ms (bound %d ms)\n", what,
                    (unsigned long long)(now_ms() - start), bound_ms);
            return true;
        }
        usleep(20000);
    } while (now_ms() - start <= (uint64_t)bound_ms);
    return false;
}

#define ctl(...)                                                                                   \
    nt_ctl((const char *const[]){env_key, NULL}, out, sizeof(out), err, sizeof(err), __VA_ARGS__)

static int setup(void **state)
{
    char seed[64];

    be = nt_backend_start("127.0.0.44", "backend", 0);
    for (int i = 0; i < NODES; i++) {
        char name[8], ip[16], listen[40], v4[16], v6[7][32];
        snprintf(name, sizeof(name), "gw%d", i + 1);
        snprintf(ip, sizeof(ip), "127.0.0.%d", 41 + i);
        dns_port[i] = nt_free_port(ip);
        snprintf(listen, sizeof(listen), "%s:%d", ip, dns_port[i]);
        snprintf(v4, sizeof(v4), "127.0.0.%d", 41 + i);
        for (int j = 0; j < 7; j++)
            snprintf(v6[j], sizeof(v6[j]), "2001:db8::%d:%d", i + 1, j);
        snprintf(seed, sizeof(seed), "127.0.0.41:%d", nodes[0].gossip_port);
        const char *extra[] = {"--allow-loopback-backends",
                               "--node-name",
                               name,
                               "--cluster-label",
                               "dnstest",
                               "--domain",
                               DOMAIN,
                               "--dns-listen",
                               listen,
                               "--dns-rrl",
                               i == 2 ? "50" : "0",
                               "--health-interval",
                               "200ms",
                               "--health-fall",
                               "2",
                               "--public-addr",
                               v4,
                               "--public-addr",
                               v6[0],
                               "--public-addr",
                               v6[1],
                               "--public-addr",
                               v6[2],
                               "--public-addr",
                               v6[3],
                               "--public-addr",
                               v6[4],
                               "--public-addr",
                               v6[5],
                               "--public-addr",
                               v6[6],
                               i ? "--join" : NULL,
                               seed,
                               NULL};
        if (nt_node_start(&nodes[i], name, ip, extra) != 0)
            return -1;
    }
    snprintf(env_key, sizeof(env_key), "WEBGW_KEY=%s/owner.key", nt_tmpdir());
    return ctl(nodes[0].api_url, "keygen", NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    for (int i = 0; i < NODES; i++)
        if (nodes[i].pid)
            nt_node_stop(&nodes[i], SIGTERM, 10000);
    nt_backend_stop(be);
    nt_cleanup();
    return 0;
}

struct want {
    int node;         /* whose answer */
    const char *name; /* query */
    const char *type; /* A, AAAA, ... */
    const char *text; /* expected dig +short output, sorted and joined */
};

static bool answer_is(void *ctx)
{
    struct want *w = ctx;
    return strcmp(dig_short(w->node, w->name, w->type), w->text) == 0;
}

static bool status_is(void *ctx)
{
    struct want *w = ctx;
    sh("dig +tries=1 +time=2 @%s -p %d %s %s | grep -o 'status: [A-Z]*'", nodes[w->node].ip,
       dns_port[w->node], w->name, w->type);
    return strstr(out, w->text) != NULL;
}

#define ALL_V4 "127.0.0.41 127.0.0.42 127.0.0.43 "

static void the_fleet_answers_for_a_served_name(void **state)
{
    char backend[64];

    /* all three gateways in every gateway's answers */
    for (int i = 0; i < NODES; i++) {
        struct want w = {i, DOMAIN, "NS", "ns-gw1.gw.test. ns-gw2.gw.test. ns-gw3.gw.test. "};
        assert_true(nt_wait(answer_is, &w, 10000));
    }
    snprintf(backend, sizeof(backend), "http://127.0.0.44:%d", nt_backend_port(be));
    assert_int_equal(ctl(nodes[0].api_url, "reserve", "demo", NULL), 0);
    assert_int_equal(ctl(nodes[0].api_url, "expose", "demo", "--backend", backend, NULL), 0);
    for (int i = 0; i < NODES; i++) {
        struct want w = {i, "demo." DOMAIN, "A", ALL_V4};
        assert_true(within("new name -> answered", answer_is, &w, 5000));
    }
    /* kdig agrees, and the order rotates between queries */
    sh("for k in 1 2 3 4 5 6; do kdig +short +retry=0 @%s -p %d demo.%s A | head -1; done | sort "
       "-u | wc -l",
       nodes[1].ip, dns_port[1], DOMAIN);
    assert_int_equal(atoi(out), 3);
    /* an fqdn proxy is answered at FQDN.DOMAIN, the target its owner CNAMEs to */
    assert_int_equal(ctl(nodes[0].api_url, "fqdn", "shop.example.org", "--backend", backend, NULL),
                     0);
    for (int i = 0; i < NODES; i++) {
        struct want w = {i, "shop.example.org." DOMAIN, "A", ALL_V4};
        assert_true(within("fqdn target -> answered", answer_is, &w, 5000));
    }
    struct want outside = {0, "shop.example.org", "A", "status: REFUSED"};
    assert_true(status_is(&outside)); /* the fqdn itself is not our zone */
    /* dnspython: authoritative, TTL 30, 21 AAAA with EDNS0 */
    probe(2, "demo." DOMAIN, "AAAA", "udp");
    assert_non_null(strstr(out, "NOERROR flags=qr,aa,rd an=21 ns=0 ttl=30 |"));
    assert_non_null(strstr(out, "2001:db8::1:0 2001:db8::1:1"));
}

static void every_gateway_gives_the_same_answer_set(void **state)
{
    char cmd[1024], *line, *next;
    int len = snprintf(cmd, sizeof(cmd),
                       "/usr/bin/python3 %s answers tcp demo.%s:A,demo.%s:AAAA,%s:NS,%s:SOA,"
                       "ns-gw2.%s:A,nothing.%s:A",
                       probe_path(), DOMAIN, DOMAIN, DOMAIN, DOMAIN, DOMAIN, DOMAIN);

    for (int i = 0; i < NODES; i++)
        len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, " %s:%d", nodes[i].ip, dns_port[i]);
    sh("%s", cmd);
    /* six lines per gateway; gateway i's k-th line equals gateway 0's */
    char *lines[3 * 6];
    int n = 0;
    for (line = out; n < 18 && (next = strchr(line, '\n')) != NULL; line = next + 1) {
        *next = '\0';
        lines[n++] = line;
    }
    assert_int_equal(n, 18);
    for (int k = 0; k < 6; k++)
        for (int i = 1; i < NODES; i++)
            assert_string_equal(lines[i * 6 + k], lines[k]);
    assert_non_null(strstr(lines[3], "NOERROR flags=qr,aa,rd an=1"));       /* SOA */
    assert_non_null(strstr(lines[5], "NXDOMAIN flags=qr,aa,rd an=0 ns=1")); /* with SOA */
    /* NS glue: every name server's addresses */
    assert_non_null(strstr(lines[2], "ns-gw3.gw.test.=127.0.0.43"));
    assert_non_null(strstr(lines[2], "ns-gw1.gw.test.=2001:db8::1:6"));
}

static void protocol_edges(void **state)
{
    struct want nx = {0, "nosuchname." DOMAIN, "A", "status: NXDOMAIN"};
    struct want refused = {0, "www.example.com", "A", "status: REFUSED"};

    assert_true(status_is(&nx));
    assert_true(status_is(&refused)); /* dig sets RD by default */
    /* AXFR refused */
    sh("dig +tries=1 @%s -p %d %s AXFR", nodes[0].ip, dns_port[0], DOMAIN);
    assert_non_null(strstr(out, "Transfer failed"));
    /* ANY: one HINFO */
    sh("kdig +retry=0 @%s -p %d %s ANY", nodes[0].ip, dns_port[0], DOMAIN);
    assert_non_null(strstr(out, "HINFO"));
    assert_non_null(strstr(out, "RFC8482"));
    assert_null(strstr(out, "\tNS\t"));
    /* without EDNS0, 21 AAAA do not fit 512 bytes: TC, and dig retries over TCP */
    sh("dig +noedns +tries=1 @%s -p %d demo.%s AAAA", nodes[0].ip, dns_port[0], DOMAIN);
    assert_non_null(strstr(out, "Truncated, retrying in TCP mode"));
    assert_non_null(strstr(out, "ANSWER: 21"));
    probe(0, "demo." DOMAIN, "AAAA", "noedns");
    assert_non_null(strstr(out, "flags=qr,aa,tc,rd an=0"));
    /* malformed and oversized: short and oversized get nothing; a broken body FORMERR (1);
     * a response (QR set) is never answered */
    sh("/usr/bin/python3 %s garbage %s %d", probe_path(), nodes[0].ip, dns_port[0]);
    assert_string_equal(out, "answered=3:1,4:1\n");
    /* still answering */
    struct want w = {0, "demo." DOMAIN, "A", ALL_V4};
    assert_true(answer_is(&w));
}

/* A name whose only backend never answers: served while the fleet knows nothing of it, NODATA
 * (not NXDOMAIN) once the probers' "down" verdict has spread, on every gateway. */
static void a_name_without_a_healthy_backend_is_nodata(void **state)
{
    struct want nodata = {0, "gone." DOMAIN, "A", ""};
    struct want st = {1, "gone." DOMAIN, "A", "status: NOERROR"};

    assert_int_equal(ctl(nodes[0].api_url, "reserve", "gone", NULL), 0);
    assert_int_equal(
        ctl(nodes[0].api_url, "expose", "gone", "--backend", "http://127.0.0.45:9", NULL), 0);
    for (int i = 0; i < NODES; i++) {
        nodata.node = i;
        if (!within("dead backend -> NODATA", answer_is, &nodata, 5000)) {
            sh("curl -s %s/api/v1/backends", nodes[i].api_url);
            fail_msg("gone.%s still served 5 s after its expose; backends: %s", DOMAIN, out);
        }
    }
    assert_true(status_is(&st)); /* NODATA, not NXDOMAIN */
}

static void rrl_limits_a_burst_and_refills(void **state)
{
    int full, slipped, none;

    /* --dns-rrl 50 on the third gateway (0 on the others, which the polls of the other
     * tests hit from the same 127.0.0.0/24): a burst of 200 from one client gets about 50 full
     * answers */
    sh("/usr/bin/python3 %s rrl %s %d nothing.%s 200", probe_path(), nodes[2].ip, dns_port[2],
       DOMAIN);
    assert_int_equal(sscanf(out, "full=%d slipped=%d none=%d", &full, &slipped, &none), 3);
    assert_true(full >= 50 && full <= 60);
    assert_true(slipped > 40 && none > 40);
    sleep(1); /* past the refill */
    sh("/usr/bin/python3 %s rrl %s %d nothing.%s 20", probe_path(), nodes[2].ip, dns_port[2],
       DOMAIN);
    assert_string_equal(out, "full=20 slipped=0 none=0\n");
}

static void a_released_name_leaves_every_gateway(void **state)
{
    assert_int_equal(ctl(nodes[1].api_url, "release", "demo", NULL), 0);
    for (int i = 0; i < NODES; i++) {
        struct want w = {i, "demo." DOMAIN, "A", "status: NXDOMAIN"};
        assert_true(within("released -> NXDOMAIN", status_is, &w, 3000));
    }
    /* exposed again for the next tests */
    char backend[64];
    snprintf(backend, sizeof(backend), "http://127.0.0.44:%d", nt_backend_port(be));
    assert_int_equal(ctl(nodes[0].api_url, "reserve", "demo2", NULL), 0);
    assert_int_equal(ctl(nodes[0].api_url, "expose", "demo2", "--backend", backend, NULL), 0);
    for (int i = 0; i < NODES; i++) {
        struct want w = {i, "demo2." DOMAIN, "A", ALL_V4};
        assert_true(within("new name -> answered", answer_is, &w, 5000));
    }
}

static void a_draining_gateway_leaves_the_answers(void **state)
{
    pid_t pid = nodes[2].pid;

    kill(pid, SIGTERM);
    for (int i = 0; i < 2; i++) {
        struct want w = {i, "demo2." DOMAIN, "A", "127.0.0.41 127.0.0.42 "};
        assert_true(within("SIGTERM -> out of the answers", answer_is, &w, 2000));
    }
    assert_int_equal(nt_node_stop(&nodes[2], 0, 10000), 0); /* the drain ends with exit 0 */
    struct want ns = {0, DOMAIN, "NS", "ns-gw1.gw.test. ns-gw2.gw.test. "};
    assert_true(answer_is(&ns));
}

static void a_dead_gateway_leaves_the_answers(void **state)
{
    struct want w = {0, "demo2." DOMAIN, "A", "127.0.0.41 "};

    nt_node_stop(&nodes[1], SIGKILL, 5000);
    assert_true(within("kill -9 -> out of the answers", answer_is, &w, 5000));
    w.type = "AAAA";
    sh("dig +short @%s -p %d demo2.%s AAAA | grep -c '2001:db8::2:'", nodes[0].ip, dns_port[0],
       DOMAIN);
    assert_int_equal(atoi(out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_fleet_answers_for_a_served_name),
        cmocka_unit_test(every_gateway_gives_the_same_answer_set),
        cmocka_unit_test(protocol_edges),
        cmocka_unit_test(a_name_without_a_healthy_backend_is_nodata),
        cmocka_unit_test(rrl_limits_a_burst_and_refills),
        cmocka_unit_test(a_released_name_leaves_every_gateway),
        cmocka_unit_test(a_draining_gateway_leaves_the_answers),
        cmocka_unit_test(a_dead_gateway_leaves_the_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
