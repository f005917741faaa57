/*
 * pebble_util.h - Debian's pebble (a real ACME server) and pebble-challtestsrv (its mock DNS)
 * started by a test on loopback: pebble's own HTTPS certificate comes from a CA the helper
 * makes, DNS answers one address for every name (changeable per name), HTTP-01 validation
 * goes to that address on the port the test chooses.
 */
#ifndef WEBGW_TESTS_PEBBLE_UTIL_H
#define WEBGW_TESTS_PEBBLE_UTIL_H

#include <sys/types.h>

#include "tests/proxy/tls_test_util.h"

struct pebble {
    char dir[64];        /* its files and logs */
    struct tt_ca ca;     /* signs pebble's HTTPS certificate */
    char ca_file[128];   /* that CA in PEM: --acme-ca-file */
    char directory[128]; /* https://127.0.0.1:PORT/dir */
    int acme_port, mgmt_port, dns_port, dns_mgmt_port;
    pid_t pebble, challtest;
};

/* Starts both; HTTP-01 validation connects to DNS answer:http_port. Aborts the test on
 * failure (pebble missing: scripts/install-deps.sh installs it). */
void pebble_start(struct pebble *p, int http_port, const char *default_ipv4);
/* The same without challtestsrv: pebble resolves (A, AAAA, and the TXT of DNS-01) through
 * `dns_server` ("IP:PORT"), e.g. a gateway's --dns-listen. */
void pebble_start_dns(struct pebble *p, int http_port, const char *dns_server);
void pebble_stop(struct pebble *p);

/* PEM of the root pebble issues under (malloc'd). */
char *pebble_root(struct pebble *p);

/* Makes DNS answer `ip` for `host` (A record), through challtestsrv's management API. */
void pebble_add_a(struct pebble *p, const char *host, const char *ip);

/* A port free on 127.0.0.1 right now. */
int pebble_free_port(void);

#endif
