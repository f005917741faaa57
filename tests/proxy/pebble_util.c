/*
 * pebble_util.c - pebble and its mock DNS for the ACME tests; see pebble_util.h.
 */
#include "tests/proxy/pebble_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "acme/acme_internal.h"

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "pebble_util: " __VA_ARGS__);                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)

int pebble_free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        DIE("no free port");
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t spawn(const char *log, char *const argv[], char *const envp[])
{
    posix_spawn_file_actions_t fa;
    pid_t pid;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        DIE("cannot start %s: %s (scripts/install-deps.sh installs pebble)", argv[0], strerror(rc));
    return pid;
}

static long https_get(struct pebble *p, const char *url, char **body)
{
    char err[ACME_ERR_MAX];
    struct acme_http_response r;
    struct acme_http *http = acme_http_new(p->ca_file, 2000, err, sizeof(err));
    long status = 0;
    if (http && acme_http_request(http, "GET", url, NULL, &r, err, sizeof(err)) == ACME_OK) {
        status = r.status;
        if (body)
            *body = r.body;
        else
            acme_http_response_free(&r);
    }
    acme_http_free(http);
    return status;
}

/* Starts pebble; with dns_server NULL also challtestsrv as its DNS (answering default_ipv4). */
static void pebble_spawn(struct pebble *p, int http_port, const char *default_ipv4,
                         const char *dns_server)
{
    struct tt_leaf leaf;
    char cert[160], key[160], config[160], log[160], dns[64], mgmt[64];

    memset(p, 0, sizeof(*p));
    snprintf(p->dir, sizeof(p->dir), "/tmp/webgw-pebble-XXXXXX");
    if (!mkdtemp(p->dir))
        DIE("mkdtemp failed");
    tt_ca_new(&p->ca, "pebble https CA (test)");
    tt_leaf_issue(&p->ca, "127.0.0.1", "IP:127.0.0.1,DNS:localhost", 2, &leaf);
    snprintf(p->ca_file, sizeof(p->ca_file), "%s/ca.pem", p->dir);
    snprintf(cert, sizeof(cert), "%s/pebble.crt", p->dir);
    snprintf(key, sizeof(key), "%s/pebble.key", p->dir);
    tt_write_file(p->ca_file, p->ca.cert_pem);
    tt_write_file(cert, leaf.cert_pem);
    tt_write_file(key, leaf.key_pem);
    tt_leaf_free(&leaf);

    p->acme_port = pebble_free_port();
    p->mgmt_port = pebble_free_port();
    p->dns_port = pebble_free_port();
    p->dns_mgmt_port = pebble_free_port();
    snprintf(config, sizeof(config), "%s/pebble.json", p->dir);
    FILE *cf = fopen(config, "w");
    if (!cf)
        DIE("cannot write %s", config);
    fprintf(cf,
            "{\"pebble\": {\"listenAddress\": \"127.0.0.1:%d\", "
            "\"managementListenAddress\": \"127.0.0.1:%d\", \"certificate\": \"%s\", "
            "\"privateKey\": \"%s\", \"httpPort\": %d, \"tlsPort\": %d, "
            "\"ocspResponderURL\": \"\", \"externalAccountBindingRequired\": false}}\n",
            p->acme_port, p->mgmt_port, cert, key, http_port, pebble_free_port());
    fclose(cf);

    snprintf(dns, sizeof(dns), "127.0.0.1:%d", p->dns_port);
    snprintf(mgmt, sizeof(mgmt), "127.0.0.1:%d", p->dns_mgmt_port);
    snprintf(log, sizeof(log), "%s/challtestsrv.log", p->dir);
    if (dns_server)
        snprintf(dns, sizeof(dns), "%s", dns_server);
    char *ct_argv[] = {"pebble-challtestsrv",
                       "-dns01",
                       dns,
                       "-http01",
                       "",
                       "-https01",
                       "",
                       "-tlsalpn01",
                       "",
                       "-management",
                       mgmt,
                       "-defaultIPv4",
                       (char *)default_ipv4,
                       "-defaultIPv6",
                       "",
                       NULL};
    char *no_env[] = {NULL};
    if (!dns_server)
        p->challtest = spawn(log, ct_argv, no_env);
    snprintf(log, sizeof(log), "%s/pebble.log", p->dir);
    char *pb_argv[] = {"pebble", "-config", config, "-dnsserver", dns, NULL};
    char *pb_env[] = {"PEBBLE_VA_NOSLEEP=1", NULL};
    p->pebble = spawn(log, pb_argv, pb_env);
    snprintf(p->directory, sizeof(p->directory), "https://127.0.0.1:%d/dir", p->acme_port);
    for (int i = 0; i < 100; i++) {
        if (https_get(p, p->directory, NULL) == 200)
            return;
        usleep(100000);
    }
    DIE("pebble did not answer on %s (logs in %s)", p->directory, p->dir);
}

void pebble_start(struct pebble *p, int http_port, const char *default_ipv4)
{
    pebble_spawn(p, http_port, default_ipv4, NULL);
}

void pebble_start_dns(struct pebble *p, int http_port, const char *dns_server)
{
    pebble_spawn(p, http_port, "", dns_server);
}

void pebble_stop(struct pebble *p)
{
    char cmd[128];
    pid_t pids[2] = {p->pebble, p->challtest};
    for (int i = 0; i < 2; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGTERM);
            waitpid(pids[i], NULL, 0);
        }
    }
    tt_ca_free(&p->ca);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", p->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "pebble_util: could not remove %s\n", p->dir);
}

char *pebble_root(struct pebble *p)
{
    char url[128], *body = NULL;
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/roots/0", p->mgmt_port);
    if (https_get(p, url, &body) != 200)
        DIE("no root from %s", url);
    return body;
}

void pebble_add_a(struct pebble *p, const char *host, const char *ip)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p->dns_mgmt_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char body[300], req[600], resp[256];
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int n = snprintf(body, sizeof(body), "{\"host\":\"%s\",\"addresses\":[\"%s\"]}", host, ip);
    int m = snprintf(req, sizeof(req),
                     "POST /add-a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                     n, body);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, req, (size_t)m, 0) != m)
        DIE("challtestsrv management unreachable");
    ssize_t got = recv(fd, resp, sizeof(resp) - 1, 0);
    close(fd);
    if (got < 12 || strncmp(resp + 9, "200", 3) != 0)
        DIE("challtestsrv refused the A record for %s", host);
}
