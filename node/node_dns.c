/*
 * node_dns.c - the asynchronous resolver behind the fqdn checks: c-ares on the node's libuv
 * control loop.
 *
 * c-ares tells us which sockets it wants watched (ARES_OPT_SOCK_STATE_CB); each gets a
 * uv_poll, and readiness goes back through ares_process_fd. One uv_timer follows
 * ares_timeout() so retries and timeouts happen without traffic. No thread and no blocking
 * call: a slow or dead resolver costs the control loop nothing.
 *
 * A lookup is two queries (A and AAAA) sharing one context; the caller's callback runs once
 * both ended, and never after node_dns_close (which cancels everything first).
 */
#include <ares.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_dns.h"

#define DNS_TIMEOUT_MS 2000 /* per try */
#define DNS_TRIES 2         /* tries per server */
#define DNS_TYPE_A 1
#define DNS_TYPE_AAAA 28
#define DNS_CLASS_IN 1

struct dns_poll {
    uv_poll_t handle;     /* watches fd */
    ares_socket_t fd;     /* the c-ares socket */
    struct node_dns *dns; /* owner */
    struct dns_poll *next;
};

struct node_dns {
    uv_loop_t *loop;        /* the control loop */
    ares_channel channel;   /* c-ares state */
    bool channel_ready;     /* channel initialized */
    uv_timer_t timer;       /* c-ares timeouts */
    struct dns_poll *polls; /* one per socket c-ares uses */
    size_t pending;         /* lookups not yet answered */
    size_t handles;         /* handles not yet closed (memory goes at 0 once closing) */
    bool closing;           /* node_dns_close ran: no callback any more */
};

struct dns_lookup {
    struct node_dns *dns;       /* owner */
    node_dns_cb cb;             /* caller's callback */
    void *ctx;                  /* its argument */
    int queries;                /* queries still running (2, 1, 0) */
    bool failed;                /* one query failed: no verdict */
    char why[128];              /* what failed */
    struct node_dns_answer ans; /* both responses */
    char host[254];             /* the name asked */
};

static void dns_maybe_free(struct node_dns *dns)
{
    if (dns->closing && dns->handles == 0)
        free(dns);
}

static void dns_handle_closed(uv_handle_t *h)
{
    struct node_dns *dns;

    if (h->type == UV_POLL) {
        struct dns_poll *p = h->data;
        dns = p->dns;
        free(p);
    } else {
        dns = h->data;
    }
    dns->handles--;
    dns_maybe_free(dns);
}

static void dns_on_timer(uv_timer_t *t);

/* Follows c-ares' next timeout; called after everything that may change it. */
static void dns_arm_timer(struct node_dns *dns)
{
    struct timeval tv, *t;

    if (dns->closing)
        return;
    t = ares_timeout(dns->channel, NULL, &tv);
    if (!t) {
        uv_timer_stop(&dns->timer);
        return;
    }
    /* +1: a timer due in 0.4 ms must not fire early and spin */
    uv_timer_start(&dns->timer, dns_on_timer,
                   (uint64_t)t->tv_sec * 1000 + (uint64_t)t->tv_usec / 1000 + 1, 0);
}

static void dns_on_timer(uv_timer_t *t)
{
    struct node_dns *dns = t->data;

    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_arm_timer(dns);
}

static void dns_on_poll(uv_poll_t *h, int status, int events)
{
    struct dns_poll *p = h->data;
    struct node_dns *dns = p->dns;
    ares_socket_t fd = p->fd;

    /* an error on the socket: let c-ares read it and notice */
    if (status < 0)
        events = UV_READABLE | UV_WRITABLE;
    ares_process_fd(dns->channel, (events & UV_READABLE) ? fd : ARES_SOCKET_BAD,
                    (events & UV_WRITABLE) ? fd : ARES_SOCKET_BAD);
    dns_arm_timer(dns);
}

static void dns_poll_close(struct node_dns *dns, struct dns_poll **link)
{
    struct dns_poll *p = *link;

    *link = p->next;
    uv_close((uv_handle_t *)&p->handle, dns_handle_closed);
}

/* c-ares opens, changes or closes a socket. */
static void dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    struct node_dns *dns = data;
    struct dns_poll **link = &dns->polls, *p;
    int events = (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0);

    while (*link && (*link)->fd != fd)
        link = &(*link)->next;
    if (!events) {
        if (*link)
            dns_poll_close(dns, link);
        return;
    }
    p = *link;
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p)
            return; /* the query times out; c-ares reports it */
        if (uv_poll_init_socket(dns->loop, &p->handle, fd) != 0) {
            free(p);
            return;
        }
        p->fd = fd;
        p->dns = dns;
        p->handle.data = p;
        p->next = dns->polls;
        dns->polls = p;
        dns->handles++;
    }
    uv_poll_start(&p->handle, events, dns_on_poll);
}

/* Drops one reference of a lookup (each query holds one, node_dns_lookup one while it
 * issues them); the last one reports and frees. */
static void dns_lookup_release(struct dns_lookup *l)
{
    struct node_dns *dns = l->dns;

    if (--l->queries > 0)
        return;
    dns->pending--;
    if (!dns->closing)
        l->cb(l->ctx, l->host, !l->failed, l->failed ? NULL : &l->ans, l->why);
    free(l);
}

/* One of a lookup's two queries ended. */
static void dns_on_answer(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    struct dns_lookup *l = arg;
    char err[96];

    if (status == ARES_SUCCESS || status == ARES_ENODATA || status == ARES_ENOTFOUND) {
        /* a negative answer is an answer: the name has no such record, or does not exist */
        if (!abuf || alen <= 0 ||
            node_dns_parse(abuf, (size_t)alen, &l->ans, err, sizeof(err)) != 0) {
            l->failed = true;
            snprintf(l->why, sizeof(l->why), "%s", abuf ? err : "empty answer");
        }
    } else if (!l->failed) {
        l->failed = true;
        snprintf(l->why, sizeof(l->why), "resolver: %s", ares_strerror(status));
    }
    dns_lookup_release(l);
}

struct node_dns *node_dns_new(uv_loop_t *loop, const char *server, char *err, size_t errlen)
{
    struct node_dns *dns = calloc(1, sizeof(*dns));
    struct ares_options opts;
    int rc;

    if (!dns) {
        snprintf(err, errlen, "dns: out of memory");
        return NULL;
    }
    rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: %s", ares_strerror(rc));
        free(dns);
        return NULL;
    }
    dns->loop = loop;
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = dns_sock_state;
    opts.sock_state_cb_data = dns;
    opts.timeout = DNS_TIMEOUT_MS;
    opts.tries = DNS_TRIES;
    rc = ares_init_options(&dns->channel, &opts,
                           ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: %s", ares_strerror(rc));
        ares_library_cleanup();
        free(dns);
        return NULL;
    }
    dns->channel_ready = true;
    if (server && (rc = ares_set_servers_ports_csv(dns->channel, server)) != ARES_SUCCESS) {
        snprintf(err, errlen, "dns-server %s: %s", server, ares_strerror(rc));
        ares_destroy(dns->channel);
        ares_library_cleanup();
        free(dns);
        return NULL;
    }
    uv_timer_init(loop, &dns->timer);
    dns->timer.data = dns;
    dns->handles = 1;
    return dns;
}

int node_dns_lookup(struct node_dns *dns, const char *host, node_dns_cb cb, void *ctx)
{
    struct dns_lookup *l;

    if (dns->closing || strlen(host) > 253)
        return -1;
    l = calloc(1, sizeof(*l));
    if (!l)
        return -1;
    l->dns = dns;
    l->cb = cb;
    l->ctx = ctx;
    l->queries = 3; /* A, AAAA, and ours until both are issued */
    snprintf(l->host, sizeof(l->host), "%s", host);
    dns->pending++;
    /* c-ares may end a query inside ares_query (a socket that cannot open): our reference
     * keeps l alive until both are issued */
    ares_query(dns->channel, l->host, DNS_CLASS_IN, DNS_TYPE_A, dns_on_answer, l);
    ares_query(dns->channel, l->host, DNS_CLASS_IN, DNS_TYPE_AAAA, dns_on_answer, l);
    dns_lookup_release(l);
    dns_arm_timer(dns);
    return 0;
}

size_t node_dns_pending(const struct node_dns *dns)
{
    return dns ? dns->pending : 0;
}

void node_dns_close(struct node_dns *dns)
{
    if (!dns || dns->closing)
        return;
    dns->closing = true;
    /* runs every callback with ARES_EDESTRUCTION (ignored above) and closes its sockets */
    ares_destroy(dns->channel);
    ares_library_cleanup();
    while (dns->polls)
        dns_poll_close(dns, &dns->polls);
    uv_close((uv_handle_t *)&dns->timer, dns_handle_closed);
}
