/*
 * test_trust.c - the trust model on real processes: a claim backdated by a fleet member whose
 * clock runs a day behind (libfaketime) does not take a name its owner holds, and a machine
 * without the cluster key can neither join nor inject.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "harness.h"

static struct nt_node n1, n2, n3;
static struct nt_backend *be_real, *be_forged;
static char out[65536], err[8192], owner_a[80], owner_b[80];

/* webgwctl as owner `key` (optionally with a clock a day behind) against `api`. */
#define ctl(api, key, late, ...)                                                                   \
    nt_ctl_owner(out, sizeof(out), err, sizeof(err), api, key, late, __VA_ARGS__)

/* Whether node n shows `victim` held by owner a, with a contender, served by the real one. */
static bool real_owner_holds(void *ctx)
{
    return nt_holds(ctx, "victim", owner_a, "real-backend");
}

static void keygen(const char *file, char *owner)
{
    assert_int_equal(ctl(n1.api_url, file, false, "keygen", NULL), 0);
    sscanf(out, "%64s", owner);
    assert_int_equal(strlen(owner), 64);
}

static void backdated_member_claim_stays_a_contender(void **state)
{
    char seed[64], real[64], forged[64];

    be_real = nt_backend_start("127.0.0.31", "real-backend", 0);
    be_forged = nt_backend_start("127.0.0.32", "forged-backend", 0);
    const char *extra1[] = {"--allow-loopback-backends", NULL};
    assert_int_equal(nt_node_start(&n1, "n1", "127.0.0.1", extra1), 0);
    snprintf(seed, sizeof(seed), "127.0.0.1:%d", n1.gossip_port);
    const char *join[] = {"--allow-loopback-backends", "--join", seed, NULL};
    assert_int_equal(nt_node_start(&n2, "n2", "127.0.0.2", join), 0);
    keygen("a.key", owner_a);
    keygen("b.key", owner_b);

    /* the owner reserves and exposes victim through n1 */
    snprintf(real, sizeof(real), "http://127.0.0.31:%d", nt_backend_port(be_real));
    assert_int_equal(ctl(n1.api_url, "a.key", false, "reserve", "victim", NULL), 0);
    assert_int_equal(ctl(n1.api_url, "a.key", false, "expose", "victim", "--backend", real, NULL),
                     0);

    /* n3 holds the key, its clock runs a day behind; alone, it accepts b's claim dated by
     * that clock, then joins the fleet */
    assert_int_equal(nt_node_start_env(&n3, "n3", "127.0.0.3", extra1, nt_day_behind_env), 0);
    snprintf(forged, sizeof(forged), "http://127.0.0.32:%d", nt_backend_port(be_forged));
    assert_int_equal(ctl(n3.api_url, "b.key", true, "reserve", "victim", NULL), 0);
    assert_int_equal(ctl(n3.api_url, "b.key", true, "expose", "victim", "--backend", forged, NULL),
                     0);
    assert_true(nt_node_stop(&n3, SIGTERM, 10000) >= 0);
    /* it joins with its data dir holding the backdated claim and its own witness of it dated a
     * day back (its clock is set right first: gossip refuses a member whose packets are a day
     * old, see the note) */
    n3.env[0][0] = '\0';
    assert_int_equal(nt_node_restart(&n3, join), 0);

    /* after convergence every node lists the real owner and serves the real backend */
    assert_true(nt_wait(real_owner_holds, &n1, 20000));
    assert_true(nt_wait(real_owner_holds, &n2, 20000));
    assert_true(nt_wait(real_owner_holds, &n3, 20000));
    sleep(2); /* and it stays so */
    assert_true(real_owner_holds(&n1) && real_owner_holds(&n2) && real_owner_holds(&n3));
}

/* A machine without the key: its datagrams are dropped and counted, it never becomes a
 * member, and it cannot even start with --join. */
static void keyless_machine_cannot_join_or_inject(void **state)
{
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)n1.gossip_port)};
    struct ctl_response resp;
    const char *argv[] = {"webgw", "--join", "127.0.0.1:7946", NULL};
    static const uint8_t junk[] = {0x01, 0x00, 0x05, 'w', 'e', 'b', 'g', 'w', 0x93, 0x01, 0x02};
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct nt_node lone;
    bool members_ok;

    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    for (int i = 0; i < 50; i++)
        sendto(fd, junk, sizeof(junk), 0, (struct sockaddr *)&to, sizeof(to));
    close(fd);
    assert_int_equal(nt_run(argv, NULL, out, sizeof(out), err, sizeof(err)), 1);
    assert_non_null(strstr(err, "without --cluster-key runs alone"));

    /* a keyless node runs alone: n1 never lists it */
    const char *extra[] = {NT_NO_CLUSTER_KEY, NULL};
    assert_int_equal(nt_node_start(&lone, "lone", "127.0.0.4", extra), 0);
    assert_int_equal(nt_api(&lone, "GET", "/healthz", NULL, NULL, 0, &resp), 200);
    assert_non_null(strstr(resp.body, "\"gossip\":\"alone\""));
    ctl_response_free(&resp);
    sleep(1);
    assert_int_equal(nt_api(&n1, "GET", "/api/v1/members", NULL, NULL, 0, &resp), 200);
    members_ok = strstr(resp.body, "127.0.0.4") == NULL;
    ctl_response_free(&resp);
    assert_true(members_ok);
    assert_true(real_owner_holds(&n1));
    nt_node_stop(&lone, SIGTERM, 10000);
}

static int teardown(void **state)
{
    struct nt_node *all[] = {&n1, &n2, &n3};

    for (size_t i = 0; i < 3; i++)
        if (all[i]->pid)
            nt_node_stop(all[i], SIGTERM, 10000);
    nt_backend_stop(be_real);
    nt_backend_stop(be_forged);
    nt_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backdated_member_claim_stays_a_contender),
        cmocka_unit_test(keyless_machine_cannot_join_or_inject),
    };

    if (!nt_have_faketime())
        return 1;
    return cmocka_run_group_tests(tests, NULL, teardown);
}
