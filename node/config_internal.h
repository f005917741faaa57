/*
 * config_internal.h - what the option files share (private to node/): the option table's
 * shape, the value parsers every option goes through, and the per-part setters.
 *
 *   config.c           defaults and the command line (flags, --config first)
 *   config_table.c     the option table and --help
 *   config_values.c    one value: numbers, DURATION, booleans, paths, names, addresses
 *   config_set.c       one key: node_config_set, the gossip timings, list resets
 *   config_proxy.c     the proxy's keys, their joint checks, the proxy_config they fill
 *   config_check.c     the whole configuration's checks (pairs, files, listeners, fleet)
 *   config_yaml.c      the --config file
 */
#ifndef WEBGW_NODE_CONFIG_INTERNAL_H
#define WEBGW_NODE_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "node/node.h"

enum config_kind {
    CONFIG_STRING, /* a path or a name */
    CONFIG_ADDR,   /* IP:PORT */
    CONFIG_LIST,   /* repeatable: flags and YAML list items append */
    CONFIG_BOOL,   /* a flag without argument; true/false in YAML */
    CONFIG_UINT,   /* a bounded unsigned integer */
    CONFIG_ENUM,   /* one word out of a list */
    CONFIG_TIME,   /* a duration: seconds, or with a unit suffix (500ms, 10s, 5m) */
};

struct config_option {
    const char *key;       /* long option name and YAML key */
    enum config_kind kind; /* how the value is parsed */
    const char *arg;       /* placeholder in --help */
    const char *deflt;     /* default as shown in --help */
    const char *help;      /* one line of --help */
};

#define CONFIG_OPTIONS_MAX 128 /* bound of the table (a static assert in config_table.c) */

extern const struct config_option config_options[];
extern const size_t config_option_count;

/* The option named `key` (no dashes), or NULL. */
const struct config_option *config_find(const char *key);

/* Value parsers: each writes only the problem (no key) into err and returns -1 on a bad value. */
int config_uint(const char *value, uint64_t min, uint64_t max, uint64_t *out, char *err,
                size_t errlen);
int config_u32(const char *value, uint32_t min, uint32_t max, uint32_t *out, char *err,
               size_t errlen);
int config_bool(const char *value, bool *out, char *err, size_t errlen);
int config_path(char *dst, const char *value, char *err, size_t errlen);
int config_domain(char *dst, const char *value, char *err, size_t errlen);
int config_node_name(char *dst, const char *value, char *err, size_t errlen);
int config_ip(const char *value, uint16_t port, struct sockaddr_storage *out, char *err,
              size_t errlen);
int config_path_item(char (*list)[NODE_PATH_MAX], size_t *count, const char *value, char *err,
                     size_t errlen);
int config_listen_item(struct node_addr *list, size_t *count, const char *value, char *err,
                       size_t errlen);
int config_duration(const char *value, uint64_t min_ms, uint64_t max_ms, uint32_t *out, char *err,
                    size_t errlen);

#define CONFIG_TIME_MAX_MS (UINT64_C(86400) * 1000) /* a day: longer is a mistake */

/* Sets `key` from `value`; writes only the problem (no key) into err. */
int config_apply(struct node_config *cfg, const char *key, const char *value, char *err,
                 size_t errlen);
/* The proxy's keys (config_apply's tail); "unknown key" for any other. */
int config_apply_proxy(struct node_config *cfg, const char *key, const char *value, char *err,
                       size_t errlen);
/* The proxy options that only make sense together. */
int node_config_check_proxy(const struct node_config *cfg, char *err, size_t errlen);

#endif
