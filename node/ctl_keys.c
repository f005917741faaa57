/*
 * ctl_keys.c - `webgwctl keys`: list and rotate one gateway's gossip keys through
 * /api/v1/admin/keys. The admin token comes from --token-file FILE or the environment
 * (WEBGW_ADMIN_TOKEN), never from the command line where `ps` would show it.
 *
 *     webgwctl keys [list]            fingerprints, the primary first
 *     webgwctl keys install KEY       add KEY (base64) as a secondary
 *     webgwctl keys use KEY           make an installed KEY the primary
 *     webgwctl keys remove KEY        drop a secondary KEY
 *
 * Rotation is per gateway: run each step against every gateway before the next step.
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/ctl.h"
#include "node/node.h"

#define CTL_TOKEN_MAX 255

static int keys_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int keys_fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("webgwctl: keys: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

static int keys_token(const char *file, char *out, size_t cap)
{
    const char *env = getenv("WEBGW_ADMIN_TOKEN");
    FILE *f;
    size_t n;

    if (!file) {
        if (!env || !env[0])
            return keys_fail(NODE_CTL_USAGE, "needs the admin token: --token-file FILE or "
                                             "WEBGW_ADMIN_TOKEN");
        if (strlen(env) >= cap)
            return keys_fail(NODE_CTL_USAGE, "WEBGW_ADMIN_TOKEN is longer than %zu", cap - 1);
        snprintf(out, cap, "%s", env);
        return NODE_CTL_OK;
    }
    f = fopen(file, "r");
    if (!f)
        return keys_fail(NODE_CTL_USAGE, "--token-file: cannot read %s", file);
    n = fread(out, 1, cap - 1, f);
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (!out[0])
        return keys_fail(NODE_CTL_USAGE, "--token-file: %s is empty", file);
    return NODE_CTL_OK;
}

static int keys_print(const char *api, const struct ctl_response *resp, bool json)
{
    json_t *doc = json_loadb(resp->body, resp->len, 0, NULL), *k;
    size_t i;

    if (!doc)
        return keys_fail(NODE_CTL_UNREACHABLE, "%s is not a webgw API (its answer is not JSON; %s)",
                         api, CTL_API_HINT);
    if (json) {
        char *text = json_dumps(doc, JSON_INDENT(2));
        if (text)
            puts(text);
        free(text);
    } else {
        json_array_foreach(json_object_get(doc, "keys"), i, k)
        {
            printf("%s  %s\n", json_string_value(json_object_get(k, "fingerprint")),
                   json_is_true(json_object_get(k, "primary")) ? "primary (encrypts)"
                                                               : "secondary (decrypts)");
        }
    }
    json_decref(doc);
    return NODE_CTL_OK;
}

int ctl_keys_main(const char *api, bool json, int argc, char **argv)
{
    const char *token_file = NULL, *op = NULL, *key = NULL;
    char token[CTL_TOKEN_MAX + 1], err[NODE_ERR_MAX], *body = NULL;
    struct ctl_response resp;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--token-file") == 0 && i + 1 < argc) {
            token_file = argv[++i];
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--api") == 0 && i + 1 < argc) {
            api = argv[++i];
        } else if (argv[i][0] == '-') {
            return keys_fail(NODE_CTL_USAGE, "unknown option %s (see --help)", argv[i]);
        } else if (!op) {
            op = argv[i];
        } else if (!key) {
            key = argv[i];
        } else {
            return keys_fail(NODE_CTL_USAGE, "unexpected argument \"%s\"", argv[i]);
        }
    }
    if (!op)
        op = "list";
    if (strcmp(op, "list") == 0) {
        if (key)
            return keys_fail(NODE_CTL_USAGE, "list takes no argument");
    } else if (strcmp(op, "install") == 0 || strcmp(op, "use") == 0 || strcmp(op, "remove") == 0) {
        json_t *doc;
        if (!key)
            return keys_fail(NODE_CTL_USAGE, "%s needs a KEY (base64 of 32 bytes)", op);
        doc = json_pack("{s:s}", op, key);
        body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
        json_decref(doc);
        if (!body)
            return keys_fail(NODE_CTL_REFUSED, "out of memory");
    } else {
        return keys_fail(NODE_CTL_USAGE, "unknown keys command \"%s\" (list, install, use, remove)",
                         op);
    }
    rc = keys_token(token_file, token, sizeof(token));
    if (rc != NODE_CTL_OK)
        goto out;
    rc = ctl_http_bearer(api, body ? "POST" : "GET", "/api/v1/admin/keys",
                         body ? "application/json" : NULL, body, body ? strlen(body) : 0, token,
                         &resp, err, sizeof(err));
    if (rc != 0) {
        rc = keys_fail(rc == -2 ? NODE_CTL_USAGE : NODE_CTL_UNREACHABLE, "%s", err);
        goto out;
    }
    if (resp.status != 200) {
        char msg[NODE_ERR_MAX + 256];
        rc = ctl_answer_error(api, &resp, msg, sizeof(msg));
        keys_fail(rc, "%s", msg);
    } else {
        rc = keys_print(api, &resp, json);
    }
    ctl_response_free(&resp);
out:
    memset(token, 0, sizeof(token));
    free(body);
    return rc;
}
