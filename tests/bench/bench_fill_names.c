/*
 * bench_fill_names.c - a data dir holding N proxy names for the daemon, for tests/bench/
 * report.sh's "1M names routed" measurement (issue 14): fill_names.h says what it writes.
 *
 *   bench_fill_names DIR N IPv4:PORT [--witnessed]
 *
 * --witnessed: the dir of a gateway that served the names (its node.key and its witness of
 * each); without it, a dir from before witnesses, which the daemon countersigns at start.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fill_names.h"

int main(int argc, char **argv)
{
    char err[STATE_ERR_MAX], ip[64];
    struct state_backend be;
    struct in_addr a;
    bool witnessed = argc == 5 && strcmp(argv[4], "--witnessed") == 0;

    if ((argc != 4 && !witnessed) || sscanf(argv[3], "%63[^:]:", ip) != 1 ||
        inet_pton(AF_INET, ip, &a) != 1 || strchr(argv[3], ':') == NULL) {
        fprintf(stderr, "usage: bench_fill_names DIR N IPv4:PORT [--witnessed]\n");
        return 2;
    }
    long n = atol(argv[2]);
    memset(&be, 0, sizeof(be));
    be.family = 4;
    memcpy(be.addr, &a, 4);
    be.port = (uint16_t)atoi(strchr(argv[3], ':') + 1);
    if (fill_names(argv[1], n, &be, NULL, witnessed, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_fill_names: %s\n", err);
        return 1;
    }
    printf("%ld names in %s%s\n", n, argv[1], witnessed ? ", witnessed by its node key" : "");
    return 0;
}
