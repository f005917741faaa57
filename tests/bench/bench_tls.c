/*
 * bench_tls.c - the webgw proxy alone with its HTTPS port on, one static route and one
 * operator certificate, for tests/bench/tls.sh. Like bench_proxy, it needs no cluster.
 * Serves until SIGINT/SIGTERM, then prints the TLS counters it kept.
 *
 *   bench_tls --https 127.0.0.1:18443 --cert C.pem --key K.pem --backend 127.0.0.1:18180
 *             --host localhost [--workers 1]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/proxy.h"
#include "proxy/tls_internal.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    struct proxy_config cfg;
    struct state_route route;
    struct tls_store_stats st;
    char err[PROXY_ERR_MAX];
    const char *https = "127.0.0.1:18443", *backend = "127.0.0.1:18180", *host = "localhost";
    const char *cert = NULL, *key = NULL;
    int rc = 1;

    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_conns_per_ip = 0;
    snprintf(cfg.domain, sizeof(cfg.domain), "bench.invalid");
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--https") == 0)
            https = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--key") == 0)
            key = argv[i + 1];
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[i + 1];
        else if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)atoi(argv[i + 1]);
    }
    if (!cert || !key) {
        fprintf(stderr, "bench_tls: --cert and --key are required\n");
        return 2;
    }
    cfg.tls = tls_store_new(err, sizeof(err));
    struct tls_cert_set *set = tls_cert_set_new();
    if (!cfg.tls || !set || tls_cert_set_add_files(set, cert, key, err, sizeof(err)) != 0 ||
        tls_store_install(cfg.tls, set, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tls: certificate: %s\n", err);
        return 1;
    }
    cfg.https_count = 1;
    if (proxy_parse_addr(https, &cfg.https[0].addr, err, sizeof(err)) != 0 ||
        proxy_parse_addr("127.0.0.1:0", &cfg.http[0].addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tls: %s\n", err);
        return 2;
    }
    memset(&route, 0, sizeof(route));
    snprintf(route.host, sizeof(route.host), "%s", host);
    snprintf(route.name, sizeof(route.name), "bench");
    route.backend_count = 1;
    route.version = 1;
    if (state_backend_parse(backend, true, &route.backends[0], err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_tls: --backend: %s\n", err);
        return 2;
    }
    struct state_routes *routes = state_routes_new();
    if (routes == NULL || state_routes_set(routes, &route) != 0) {
        fprintf(stderr, "bench_tls: cannot build the route table\n");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    struct proxy *p = proxy_start(&cfg, routes, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "bench_tls: %s\n", err);
        goto out;
    }
    fprintf(stderr, "bench_tls: https on %s, %s -> %s\n", https, host, backend);
    while (!stop)
        pause();
    proxy_drain(p, 2000);
    proxy_stop(p);
    tls_store_get_stats(cfg.tls, &st);
    fprintf(stderr,
            "bench_tls: handshakes=%llu resumed=%llu failures=%llu refused=%llu "
            "tickets_issued=%llu\n",
            (unsigned long long)st.handshakes, (unsigned long long)st.resumed,
            (unsigned long long)st.handshake_failures, (unsigned long long)st.refused,
            (unsigned long long)st.tickets_issued);
    rc = 0;
out:
    tls_store_free(cfg.tls);
    state_routes_free(routes);
    return rc;
}
