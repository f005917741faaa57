/*
 * webgw_main.c - the `webgw` daemon's entry point: configuration, logging, run, exit status;
 * and `webgw identity`, which prints a gateway's node key before it first runs (for the
 * --fleet-keys roster).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "node/node.h"

#define IDENTITY_USAGE "webgw identity [--config FILE] [--data-dir DIR]"

/* `webgw identity`: the node key in the data dir the daemon would use with the same --config
 * and --data-dir (the file's data-dir, a flag overriding it), checked as the daemon checks it. */
static int identity_main(int argc, char **argv)
{
    struct node_config cfg;
    const char *config = NULL, *data_dir = NULL;
    char hex[STATE_OWNER_HEX_LEN + 1], err[NODE_ERR_MAX];
    bool created;

    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], **dst, *eq = strchr(arg, '=');
        size_t klen = eq ? (size_t)(eq - arg) : strlen(arg);

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            printf("Usage: " IDENTITY_USAGE "\n"
                   "Prints this gateway's node key (64 hex digits), the line to put in the\n"
                   "fleet's --fleet-keys file. Makes DIR/node.key (0600) when there is none and\n"
                   "never overwrites one. DIR is the daemon's: --data-dir, else the data-dir of\n"
                   "the --config file, else ./data.\n");
            return 0;
        }
        if (klen == 8 && strncmp(arg, "--config", 8) == 0) {
            dst = &config;
        } else if (klen == 10 && strncmp(arg, "--data-dir", 10) == 0) {
            dst = &data_dir;
        } else {
            fprintf(stderr,
                    "webgw identity: unexpected argument \"%s\" (usage: " IDENTITY_USAGE ")\n",
                    arg);
            return 2;
        }
        if (eq == NULL && i + 1 >= argc) {
            fprintf(stderr, "webgw identity: %s: missing value %s\n", arg,
                    dst == &config ? "FILE" : "DIR");
            return 2;
        }
        *dst = eq ? eq + 1 : argv[++i];
    }
    node_config_defaults(&cfg);
    if (config != NULL && node_config_set(&cfg, "config", config, err, sizeof(err)) != 0) {
        fprintf(stderr, "webgw identity: --%s\n", err);
        return 1;
    }
    if (config != NULL && node_config_load_file(&cfg, config, err, sizeof(err)) != 0) {
        fprintf(stderr, "webgw identity: %s\n", err);
        return 1;
    }
    if ((data_dir != NULL && node_config_set(&cfg, "data-dir", data_dir, err, sizeof(err)) != 0) ||
        node_identity(cfg.data_dir, hex, &created, err, sizeof(err)) != 0) {
        fprintf(stderr, "webgw identity: %s%s\n", data_dir != NULL ? "--" : "", err);
        return 1;
    }
    if (created)
        fprintf(stderr, "webgw identity: made %s/node.key\n", cfg.data_dir);
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
