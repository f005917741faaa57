/*
 * gossip_member.c - a fleet member played by the test process itself: a gossip instance under
 * the cluster key, joined to a running node, so a test can send what a malicious (or merely
 * listening) member would. Declared in harness.h.
 */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "gossip/gossip.h"
#include "state/state.h"
#include "tests/node/harness.h"

struct gossip *nt_gossip_member(uv_loop_t *loop, const char *id, const char *keyfile,
                                const struct state_key *witness, const char *seed,
                                const struct gossip_callbacks *cb)
{
    struct gossip_config cfg;
    struct gossip_addr at;
    struct gossip *g;
    char err[256];

    gossip_config_default(&cfg);
    snprintf(cfg.id, sizeof(cfg.id), "%s", id);
    snprintf(cfg.meta.name, sizeof(cfg.meta.name), "%s", id);
    snprintf(cfg.label, sizeof(cfg.label), "webgw");
    if (witness != NULL)
        state_key_owner(witness, cfg.meta.witness);
    if (gossip_keyring_load(keyfile, &cfg.keyring, err, sizeof(err)) != 0 ||
        gossip_addr_parse("127.0.0.1:0", &cfg.bind, NULL, 0) != 0 ||
        gossip_addr_parse(seed, &at, NULL, 0) != 0) {
        fprintf(stderr, "nt_gossip_member %s: %s\n", id, err);
        return NULL;
    }
    cfg.incarnation = (uint64_t)time(NULL);
    g = gossip_uv_open(loop, &cfg, cb, err, sizeof(err));
    if (g == NULL) {
        fprintf(stderr, "nt_gossip_member %s: %s\n", id, err);
        return NULL;
    }
    if (gossip_join(g, &at, 1) != 0) {
        fprintf(stderr, "nt_gossip_member %s: join through %s failed\n", id, seed);
        gossip_uv_close(g);
        return NULL;
    }
    return g;
}

void nt_spin(uv_loop_t *loop, int ms)
{
    for (int i = 0; i < ms / 10; i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
}
