/*
 * config_yaml.c - reads the --config file: a YAML mapping whose keys are the long option
 * names. Values are scalars; repeatable keys (http, https, join, tls-cert, tls-key, fleet-addr,
 * deny-backend, trusted-proxy) may also be sequences, which replace the default; tls-cert and
 * tls-key are parallel lists, paired by position. Parsing is libyaml's; the checks on each value
 * are config_set.c's, so a file and a flag fail with the same words.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#include "node/node.h"

static int yaml_set(struct node_config *cfg, const char *path, const yaml_node_t *keynode,
                    const char *key, const char *value, char *err, size_t errlen)
{
    char why[NODE_ERR_MAX];

    if (node_config_set(cfg, key, value, why, sizeof(why)) != 0) {
        snprintf(err, errlen, "%s: line %zu: %s", path, keynode->start_mark.line + 1, why);
        return -1;
    }
    return 0;
}

int node_config_load_file(struct node_config *cfg, const char *path, char *err, size_t errlen)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    struct stat st;
    FILE *f;
    int rc = -1;
    bool have_doc = false;

    f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "config: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) == 0 && st.st_size > NODE_CONFIG_FILE_MAX) {
        snprintf(err, errlen, "config: %s is larger than %d bytes", path, NODE_CONFIG_FILE_MAX);
        fclose(f);
        return -1;
    }
    if (!yaml_parser_initialize(&parser)) {
        snprintf(err, errlen, "config: out of memory");
        fclose(f);
        return -1;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s: line %zu: %s", path, parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
        goto out;
    }
    have_doc = true;
    root = yaml_document_get_root_node(&doc);
    if (!root || (root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0)) {
        rc = 0; /* an empty file changes nothing */
        goto out;
    }
    if (root->type != YAML_MAPPING_NODE) {
        snprintf(err, errlen, "%s: line %zu: expected a mapping of option names to values", path,
                 root->start_mark.line + 1);
        goto out;
    }
    for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        const char *key;

        if (!k || k->type != YAML_SCALAR_NODE || !v) {
            snprintf(err, errlen, "%s: line %zu: keys must be option names", path,
                     k ? k->start_mark.line + 1 : 0);
            goto out;
        }
        key = (const char *)k->data.scalar.value;
        if (strcmp(key, "config") == 0) {
            snprintf(err, errlen, "%s: line %zu: config: not allowed inside a config file", path,
                     k->start_mark.line + 1);
            goto out;
        }
        /* a list in the file replaces the embedded default (http, https) rather than adding */
        if (node_config_is_list(key))
            node_config_clear_list(cfg, key);
        if (v->type == YAML_SCALAR_NODE) {
            if (yaml_set(cfg, path, k, key, (const char *)v->data.scalar.value, err, errlen) != 0)
                goto out;
        } else if (v->type == YAML_SEQUENCE_NODE && node_config_is_list(key)) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++) {
                yaml_node_t *item = yaml_document_get_node(&doc, *it);
                if (!item || item->type != YAML_SCALAR_NODE) {
                    snprintf(err, errlen, "%s: line %zu: %s: items must be strings", path,
                             k->start_mark.line + 1, key);
                    goto out;
                }
                if (yaml_set(cfg, path, k, key, (const char *)item->data.scalar.value, err,
                             errlen) != 0)
                    goto out;
            }
        } else {
            snprintf(err, errlen, "%s: line %zu: %s: expected a single value", path,
                     k->start_mark.line + 1, key);
            goto out;
        }
    }
    rc = 0;
out:
    if (have_doc)
        yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}
