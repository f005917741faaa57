/*
 * dns_stub.c - see dns_stub.h. The server follows CNAMEs inside its own table (as an
 * authoritative server for every name it holds would) and answers NXDOMAIN for names it
 * does not hold. One thread, a 50 ms receive timeout so stop is prompt.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dns_stub.h"

#define NT_DNS_RECORDS_MAX 32

struct nt_dns {
    int fd;                                     /* UDP socket on 127.0.0.1 */
    int port;                                   /* its port */
    pthread_t thread;                           /* the server */
    pthread_mutex_t lock;                       /* guards table and count */
    struct nt_dns_rr table[NT_DNS_RECORDS_MAX]; /* the zone */
    size_t count;                               /* records in table */
    unsigned long queries;                      /* answered */
    atomic_bool stop;                           /* asks the thread to end */
};

static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
    return p + 2;
}

/* A name as labels; returns NULL when it does not fit before end. */
static uint8_t *put_name(uint8_t *p, const uint8_t *end, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);
        if (len == 0 || len > 63 || end - p < (long)len + 1)
            return NULL;
        *p++ = (uint8_t)len;
        memcpy(p, name, len);
        p += len;
        name += len + (dot ? 1 : 0);
    }
    if (end - p < 1)
        return NULL;
    *p++ = 0;
    return p;
}

size_t nt_dns_message(uint16_t id, int rcode, const char *qname, uint16_t qtype,
                      const struct nt_dns_rr *rrs, size_t n, uint8_t *out, size_t cap)
{
    uint8_t *p = out, *end = out + cap;

    if (cap < 12)
        return 0;
    p = put16(p, id);
    p = put16(p, (uint16_t)(0x8180 | (rcode & 0x0f))); /* response, RD, RA */
    p = put16(p, 1);
    p = put16(p, (uint16_t)n);
    p = put16(p, 0);
    p = put16(p, 0);
    if (!(p = put_name(p, end, qname)) || end - p < 4)
        return 0;
    p = put16(p, qtype);
    p = put16(p, 1);
    for (size_t i = 0; i < n; i++) {
        uint8_t rdata[256], *r = rdata;
        size_t rdlen;
        if (rrs[i].type == NT_DNS_A) {
            inet_pton(AF_INET, rrs[i].value, rdata);
            rdlen = 4;
        } else if (rrs[i].type == NT_DNS_AAAA) {
            inet_pton(AF_INET6, rrs[i].value, rdata);
            rdlen = 16;
        } else {
            if (!(r = put_name(rdata, rdata + sizeof(rdata), rrs[i].value)))
                return 0;
            rdlen = (size_t)(r - rdata);
        }
        if (!(p = put_name(p, end, rrs[i].name)) || end - p < 10 + (long)rdlen)
            return 0;
        p = put16(p, rrs[i].type);
        p = put16(p, 1);
        p = put16(p, 0);
        p = put16(p, 5); /* TTL 5 s */
        p = put16(p, (uint16_t)rdlen);
        memcpy(p, rdata, rdlen);
        p += rdlen;
    }
    return (size_t)(p - out);
}

/* Reads the question name (uncompressed, as resolvers send it) into out. */
static int read_qname(const uint8_t *buf, size_t len, char *out, size_t cap, size_t *qend)
{
    size_t i = 12, o = 0;

    while (i < len && buf[i] != 0) {
        size_t l = buf[i++];
        if (l > 63 || i + l > len || o + l + 2 > cap)
            return -1;
        if (o)
            out[o++] = '.';
        for (size_t k = 0; k < l; k++)
            out[o++] = (char)buf[i + k];
        i += l;
    }
    if (i + 5 > len)
        return -1;
    out[o] = '\0';
    *qend = i + 1;
    return 0;
}

/* Builds the answer for (qname, qtype) from the table: its CNAME chain, then the records of
 * qtype at the chain's end. */
static size_t answer(struct nt_dns *d, uint16_t id, const char *qname, uint16_t qtype, uint8_t *out,
                     size_t cap)
{
    struct nt_dns_rr rrs[NT_DNS_RECORDS_MAX];
    size_t n = 0;
    char name[254];
    bool exists = false;

    snprintf(name, sizeof(name), "%s", qname);
    pthread_mutex_lock(&d->lock);
    for (int hop = 0; hop < 8; hop++) {
        bool followed = false;
        for (size_t i = 0; i < d->count && n < NT_DNS_RECORDS_MAX; i++) {
            if (strcasecmp(d->table[i].name, name) != 0)
                continue;
            exists = true;
            if (d->table[i].type == NT_DNS_CNAME && !followed) {
                rrs[n++] = d->table[i];
                snprintf(name, sizeof(name), "%s", d->table[i].value);
                followed = true;
            }
        }
        if (!followed)
            break;
    }
    for (size_t i = 0; i < d->count && n < NT_DNS_RECORDS_MAX; i++)
        if (strcasecmp(d->table[i].name, name) == 0 && d->table[i].type == qtype)
            rrs[n++] = d->table[i];
    d->queries++;
    pthread_mutex_unlock(&d->lock);
    return nt_dns_message(id, exists ? 0 : 3, qname, qtype, rrs, n, out, cap);
}

static void *serve(void *arg)
{
    struct nt_dns *d = arg;
    uint8_t buf[512], out[4096];

    while (!d->stop) {
        struct sockaddr_storage from;
        socklen_t fromlen = sizeof(from);
        ssize_t len = recvfrom(d->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
        char qname[254];
        size_t qend, n;

        if (len < 12 || read_qname(buf, (size_t)len, qname, sizeof(qname), &qend) != 0)
            continue;
        n = answer(d, (uint16_t)((buf[0] << 8) | buf[1]), qname,
                   (uint16_t)((buf[qend] << 8) | buf[qend + 1]), out, sizeof(out));
        if (n)
            sendto(d->fd, out, n, 0, (struct sockaddr *)&from, fromlen);
    }
    return NULL;
}

struct nt_dns *nt_dns_start(void)
{
    struct nt_dns *d = calloc(1, sizeof(*d));
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    struct timeval tv = {.tv_sec = 0, .tv_usec = 50000};

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(d->fd, (struct sockaddr *)&sin, &slen) != 0) {
        perror("nt_dns_start");
        exit(1);
    }
    setsockopt(d->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    d->port = ntohs(sin.sin_port);
    pthread_mutex_init(&d->lock, NULL);
    pthread_create(&d->thread, NULL, serve, d);
    return d;
}

int nt_dns_port(const struct nt_dns *d)
{
    return d->port;
}

void nt_dns_set(struct nt_dns *d, const char *name, uint16_t type, const char *value)
{
    size_t kept = 0;

    pthread_mutex_lock(&d->lock);
    for (size_t i = 0; i < d->count; i++)
        if (strcasecmp(d->table[i].name, name) != 0)
            d->table[kept++] = d->table[i];
    d->count = kept;
    if (type && d->count < NT_DNS_RECORDS_MAX) {
        struct nt_dns_rr *rr = &d->table[d->count++];
        snprintf(rr->name, sizeof(rr->name), "%s", name);
        rr->type = type;
        snprintf(rr->value, sizeof(rr->value), "%s", value);
    }
    pthread_mutex_unlock(&d->lock);
}

unsigned long nt_dns_queries(const struct nt_dns *d)
{
    unsigned long n;

    pthread_mutex_lock((pthread_mutex_t *)&d->lock);
    n = d->queries;
    pthread_mutex_unlock((pthread_mutex_t *)&d->lock);
    return n;
}

void nt_dns_stop(struct nt_dns *d)
{
    if (!d)
        return;
    d->stop = true;
    pthread_join(d->thread, NULL);
    close(d->fd);
    pthread_mutex_destroy(&d->lock);
    free(d);
}
