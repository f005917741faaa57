/*
 * bench_tls_client.c - a TLS handshake load generator for tests/bench/tls.sh.
 *
 * openssl s_time cannot send SNI, and the gateway refuses hellos without it, so this is
 * the same measurement with a name: THREADS threads connect, handshake (TLS 1.3 unless
 * told otherwise) and close cleanly, for SECONDS. With --resume each thread does one full
 * handshake, keeps the session and resumes it on every later connection. Prints one line:
 * "handshakes N rate R/s resumed M failed F client_cpu_us C" (C: this process's own CPU per
 * handshake, user + system: a full handshake costs the client about twice what it costs a
 * server, so with one thread the rate measures the client as much as the server).
 *
 *   bench_tls_client --connect 127.0.0.1:18443 --sni localhost [--threads 2] [--seconds 5]
 *                    [--resume] [--tls12]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static struct sockaddr_in target;
static const char *sni = "localhost";
static bool resume, tls12;
static double seconds = 5;
static atomic_long handshakes, resumed, failed;
static atomic_int stop;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One connection: handshake, clean close. Returns the session when keep is set. */
static int one(SSL_CTX *ctx, SSL_SESSION *session, SSL_SESSION **keep)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok = 0;
    SSL *ssl = NULL;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&target, sizeof(target)) != 0)
        goto out;
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni);
    if (session)
        SSL_set_session(ssl, session);
    if (SSL_connect(ssl) != 1)
        goto out;
    ok = 1;
    if (SSL_session_reused(ssl))
        atomic_fetch_add(&resumed, 1);
    if (keep) {
        /* TLS 1.3 tickets come after the handshake: read until one arrived */
        char b;
        struct timeval tv = {0, 200000};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        SSL_read(ssl, &b, 1);
        *keep = SSL_get1_session(ssl);
    }
    SSL_shutdown(ssl);
out:
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return ok;
}

static void *worker(void *arg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL_SESSION *session = NULL;
    (void)arg;
    if (tls12)
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (resume && !one(ctx, NULL, &session))
        atomic_fetch_add(&failed, 1);
    while (!atomic_load(&stop)) {
        if (one(ctx, session, NULL))
            atomic_fetch_add(&handshakes, 1);
        else
            atomic_fetch_add(&failed, 1);
    }
    SSL_SESSION_free(session);
    SSL_CTX_free(ctx);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *connect_to = "127.0.0.1:18443";
    int threads = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--connect") == 0 && i + 1 < argc)
            connect_to = argv[++i];
        else if (strcmp(argv[i], "--sni") == 0 && i + 1 < argc)
            sni = argv[++i];
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--resume") == 0)
            resume = true;
        else if (strcmp(argv[i], "--tls12") == 0)
            tls12 = true;
    }
    char host[64];
    const char *colon = strrchr(connect_to, ':');
    if (!colon || (size_t)(colon - connect_to) >= sizeof(host) || threads < 1 || threads > 64) {
        fprintf(stderr, "bench_tls_client: --connect IP:PORT, --threads 1..64\n");
        return 2;
    }
    memcpy(host, connect_to, (size_t)(colon - connect_to));
    host[colon - connect_to] = '\0';
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &target.sin_addr) != 1) {
        fprintf(stderr, "bench_tls_client: %s is not an IPv4 address\n", host);
        return 2;
    }
    pthread_t t[64];
    double t0 = now();
    for (int i = 0; i < threads; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double dt = now() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_us = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
                    (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    long n = atomic_load(&handshakes);
    printf("handshakes %ld rate %.0f/s resumed %ld failed %ld client_cpu_us %.0f\n", n,
           (double)n / dt, atomic_load(&resumed), atomic_load(&failed),
           n > 0 ? cpu_us / (double)n : 0);
    return atomic_load(&handshakes) > 0 ? 0 : 1;
}
