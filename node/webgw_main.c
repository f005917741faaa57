/*
 * webgw_main.c - the `webgw` daemon's entry point: configuration, logging, run, exit status.
 */
#include <signal.h>
#include <stdio.h>

#include "node/node.h"

int main(int argc, char **argv)
{
    struct node_config cfg;
    struct node *node;
    char err[NODE_ERR_MAX];
    int rc;

    rc = node_config_from_args(&cfg, argc, argv, stdout, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "webgw: %s\n", err);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    node_log_setup(cfg.log_format, cfg.log_level, NULL);
    node = node_new(&cfg, err, sizeof(err));
    if (!node) {
        node_log(NODE_LOG_ERROR, "node", "cannot start: %s", err);
        return 1;
    }
    node_set_argv(node, argc, argv);
    rc = node_run(node);
    node_free(node);
    return rc;
}
