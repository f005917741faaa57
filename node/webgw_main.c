/*
 * webgw_main.c - the `webgw` daemon's entry point: configuration, logging, run, exit status;
 * and `webgw identity`, which prints a gateway's node key before it first runs (for the
 * --fleet-keys roster).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "node/node.h"

static int identity_main(int argc, char **argv)
{
    const char *data_dir = "./data";
    char hex[STATE_OWNER_HEX_LEN + 1], err[NODE_ERR_MAX];
    bool created;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            data_dir = argv[++i];
        } else if (strncmp(argv[i], "--data-dir=", 11) == 0) {
            data_dir = argv[i] + 11;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("Usage: webgw identity [--data-dir DIR]\n"
                   "Prints this gateway's node key (64 hex digits), the line to put in the\n"
                   "fleet's --fleet-keys file. Makes DIR/node.key (0600) when there is none and\n"
                   "never overwrites one; DIR defaults to ./data like the daemon's.\n");
            return 0;
        } else {
            fprintf(stderr,
                    "webgw identity: unexpected argument \"%s\" (usage: webgw identity "
                    "[--data-dir DIR])\n",
                    argv[i]);
            return 2;
        }
    }
    if (data_dir[0] == '\0' || node_identity(data_dir, hex, &created, err, sizeof(err)) != 0) {
        fprintf(stderr, "webgw identity: %s\n",
                data_dir[0] ? err : "--data-dir: must not be empty");
        return 1;
    }
    if (created)
        fprintf(stderr, "webgw identity: made %s/node.key\n", data_dir);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    struct node_config cfg;
    struct node *node;
    char err[NODE_ERR_MAX];
    int rc;

    if (argc >= 2 && strcmp(argv[1], "identity") == 0)
        return identity_main(argc, argv);
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
