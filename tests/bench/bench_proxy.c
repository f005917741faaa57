/*
 * bench_proxy.c - runs the webgw proxy alone with one static route, for tests/bench/proxy.sh:
 * the daemon needs a cluster and signed records, a benchmark needs neither. Serves until
 * SIGINT/SIGTERM, then drains and prints the per-name counters it kept.
 *
 *   bench_proxy --listen 127.0.0.1:18083 --backend 127.0.0.1:18080 --host bench.localhost
 *               [--workers 1] [--balance round-robin]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy/proxy.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int print_stats(const struct proxy_name_stats *s, void *ctx)
{
    (void)ctx;
    fprintf(stderr, "bench_proxy: name=%s requests=%llu bytes_in=%llu bytes_out=%llu errors=%llu\n",
            s->name[0] ? s->name : "-", (unsigned long long)s->requests,
            (unsigned long long)s->bytes_in, (unsigned long long)s->bytes_out,
            (unsigned long long)s->errors);
    return 0;
}

int main(int argc, char **argv)
{
    struct proxy_config cfg;
    struct state_route route;
    char err[PROXY_ERR_MAX];
    const char *listen = "127.0.0.1:18083", *backend = "127.0.0.1:18080";
    const char *host = "bench.localhost";
    proxy_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_conns_per_ip = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen = argv[i + 1];
        else if (strcmp(argv[i], "--backend") == 0)
            backend = argv[i + 1];
        else if (strcmp(argv[i], "--host") == 0)
            host = argv[i + 1];
        else if (strcmp(argv[i], "--workers") == 0)
            cfg.workers = (unsigned)atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--balance") == 0 &&
                 proxy_parse_balance(argv[i + 1], &cfg.balance, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_proxy: %s\n", err);
            return 2;
        }
    }
    if (proxy_parse_addr(listen, &cfg.http[0].addr, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_proxy: --listen: %s\n", err);
        return 2;
    }
    memset(&route, 0, sizeof(route));
    snprintf(route.host, sizeof(route.host), "%s", host);
    snprintf(route.name, sizeof(route.name), "bench");
    route.backend_count = 1;
    route.version = 1;
    if (state_backend_parse(backend, true, &route.backends[0], err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_proxy: --backend: %s\n", err);
        return 2;
    }
    struct state_routes *routes = state_routes_new();
    if (routes == NULL || state_routes_set(routes, &route) != 0) {
        fprintf(stderr, "bench_proxy: cannot build the route table\n");
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    struct proxy *p = proxy_start(&cfg, routes, err, sizeof(err));
    if (p == NULL) {
        fprintf(stderr, "bench_proxy: %s\n", err);
        state_routes_free(routes);
        return 1;
    }
    fprintf(stderr, "bench_proxy: listening on %s, %s -> %s\n", listen, host, backend);
    while (!stop)
        pause();
    proxy_drain(p, 2000);
    proxy_stats_each(p, print_stats, NULL);
    proxy_stop(p);
    state_routes_free(routes);
    return 0;
}
