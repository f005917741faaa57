/*
 * config.c - the daemon's configuration from its command line: embedded defaults, then the
 * --config file, then the other flags. The options are config_table.c's; each value is checked
 * when it is set (config_set.c) and the whole once at the end (config_check.c). A bad one stops
 * the daemon with one line naming the key ("--http: port must be 1..65535 in ...").
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "node/config_internal.h"

void node_config_defaults(struct node_config *cfg)
{
    char err[NODE_ERR_MAX];

    memset(cfg, 0, sizeof(*cfg));
    if (gethostname(cfg->node_name, sizeof(cfg->node_name)) != 0 || cfg->node_name[0] == '\0')
        snprintf(cfg->node_name, sizeof(cfg->node_name), "webgw");
    cfg->node_name[sizeof(cfg->node_name) - 1] = '\0';
    snprintf(cfg->data_dir, sizeof(cfg->data_dir), "./data");
    snprintf(cfg->domain, sizeof(cfg->domain), "localhost");
    snprintf(cfg->cluster_label, sizeof(cfg->cluster_label), "webgw");
    node_listen_parse("[::]:8080", &cfg->http[0], err, sizeof(err));
    node_listen_parse("[::]:8443", &cfg->https[0], err, sizeof(err));
    cfg->http_count = cfg->https_count = 1;
    node_addr_parse("0.0.0.0:7946", &cfg->gossip, err, sizeof(err));
    node_addr_parse("127.0.0.1:9080", &cfg->api, err, sizeof(err));
    cfg->advertise = cfg->gossip;
    cfg->log_level = NODE_LOG_INFO;
    cfg->log_format = NODE_LOG_TEXT;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "stderr");
    cfg->access_log_buffer = 1u << 20;
    cfg->drain_timeout_ms = 10000;
    cfg->api_rate_limit = 100;
    cfg->max_names_per_owner = 1000;
    cfg->max_records = 100000;
    cfg->api_body_limit = 16384;
    cfg->compact_bytes = 8u << 20;
    cfg->tombstone_ttl_ms = STATE_TOMBSTONE_TTL_MS_DEFAULT;
    cfg->dns_interval_ms = 60000;
    cfg->witness_faults = 1;
    cfg->dns_ttl = 30;
    cfg->dns_rrl = 100;
    proxy_config_init(&cfg->proxy);
    proxy_probe_config_init(&cfg->probe);
    cfg->health_ttl_ms = NODE_HEALTH_TTL_MS_DEFAULT;
    node_config_gossip_defaults(&cfg->gossip_timing);
}

/* Splits argv[i] ("--key", "--key=value") and fetches its value; returns the option or NULL
 * with err set. *i is advanced past a separate value. */
static const struct config_option *config_flag(int argc, char **argv, int *i, char *key,
                                               size_t keycap, const char **value, char *err,
                                               size_t errlen)
{
    const char *arg = argv[*i], *eq;
    const struct config_option *opt;
    size_t klen;

    if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
        snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", arg);
        return NULL;
    }
    eq = strchr(arg, '=');
    klen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (klen >= keycap)
        klen = keycap - 1;
    memcpy(key, arg + 2, klen);
    key[klen] = '\0';
    opt = config_find(key);
    if (!opt) {
        snprintf(err, errlen, "unknown option --%s (see --help)", key);
        return NULL;
    }
    if (eq) {
        *value = eq + 1;
    } else if (opt->kind == CONFIG_BOOL) {
        *value = "true";
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        snprintf(err, errlen, "--%s: missing value %s", key, opt->arg);
        return NULL;
    }
    return opt;
}

int node_config_from_args(struct node_config *cfg, int argc, char **argv, void *out, char *err,
                          size_t errlen)
{
    char key[64], why[NODE_ERR_MAX];
    const char *value, *config_file = NULL;
    bool replaced[CONFIG_OPTIONS_MAX] = {false};

    node_config_defaults(cfg);
    /* first pass: --help, --version and --config, so the file is read before other flags */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            node_config_usage(out);
            return 1;
        }
        if (strcmp(argv[i], "--version") == 0) {
            fprintf(out, "webgw %s\n", WEBGW_VERSION);
            return 1;
        }
        if (!config_flag(argc, argv, &i, key, sizeof(key), &value, err, errlen))
            return -1;
        if (strcmp(key, "config") == 0)
            config_file = value;
    }
    if (config_file) {
        if (config_apply(cfg, "config", config_file, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--config: %s", why);
            return -1;
        }
        if (node_config_load_file(cfg, config_file, err, errlen) != 0)
            return -1;
    }
    for (int i = 1; i < argc; i++) {
        config_flag(argc, argv, &i, key, sizeof(key), &value, err, errlen);
        if (strcmp(key, "config") == 0)
            continue;
        {
            size_t idx = (size_t)(config_find(key) - config_options);
            if (config_options[idx].kind == CONFIG_LIST && !replaced[idx]) {
                /* flags replace the file's list rather than add to it */
                node_config_clear_list(cfg, key);
                replaced[idx] = true;
            }
        }
        if (config_apply(cfg, key, value, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "--%s: %s", key, why);
            return -1;
        }
    }
    return node_config_check(cfg, err, errlen);
}
