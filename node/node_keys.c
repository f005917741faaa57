/*
 * node_keys.c - gossip key rotation on a running node: SIGHUP re-reads --cluster-key, and
 * GET/POST /api/v1/admin/keys (bearer token, checked by api.c) list and change the keyring.
 *
 * POST takes exactly one operation, the keys as in the key file (base64 of 32 bytes):
 *
 *     {"install": "KEY"}     add KEY as a secondary: it decrypts, it does not encrypt yet
 *     {"use": "KEY"}         make an installed KEY the primary (it encrypts from now on)
 *     {"remove": "KEY"}      drop a secondary KEY (the primary cannot be removed)
 *     {"keys": ["KEY", ...]} replace the whole ring; the first encrypts
 *
 * A change is applied to gossip first (which refuses repeats, too many keys and a switch
 * between plain and encrypted), then written to the key file atomically (temporary file,
 * fsync, rename, fsync of the directory) so a restart keeps it; if the write fails the old
 * ring is put back and the answer is 500, so what runs and what is on disk never disagree.
 * Answers and logs show key fingerprints only, never key material. What else derives from the
 * cluster key follows a change: TLS session ticket keys (from the primary) and the keys that
 * seal ACME certificates shared over gossip.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "node/node_internal.h"
#include "proxy/tls_internal.h"

#define KEYS_B64_LEN 44 /* base64 of a 32-byte key */

static json_t *keys_listing(const struct gossip_keyring *kr, const char *file)
{
    json_t *arr = json_array();
    char fpr[GOSSIP_KEY_FPR_LEN + 1];

    for (size_t i = 0; i < kr->count; i++) {
        gossip_key_fingerprint(kr->keys[i], fpr);
        json_array_append_new(arr, json_pack("{s:s, s:b}", "fingerprint", fpr, "primary", i == 0));
    }
    return json_pack("{s:o, s:i, s:b, s:s}", "keys", arr, "count", (int)kr->count, "encrypted",
                     kr->count > 0, "file", file);
}

static void keys_answer(struct node_httpd_conn *conn, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

    json_decref(body);
    if (!text) {
        node_httpd_error(conn, 500, "out of memory");
        return;
    }
    node_httpd_respond(conn, status, "application/json", text, strlen(text), "");
    free(text);
}

/* One key from its base64 text; err says what is wrong with it. */
static int keys_decode(const char *b64, uint8_t out[GOSSIP_KEY_LEN], char *err, size_t errlen)
{
    struct gossip_keyring one;
    char msg[GOSSIP_ERR_MAX];
    size_t len = strlen(b64);

    if (len != KEYS_B64_LEN || strchr(b64, '\n') || b64[0] == '#') {
        snprintf(err, errlen, "want a base64 32-byte key (44 characters), got %zu characters", len);
        return -1;
    }
    if (gossip_keyring_parse(b64, len, &one, msg, sizeof(msg)) != 0 || one.count != 1) {
        /* the parser names a line; here there is only one */
        snprintf(err, errlen, "%s", strncmp(msg, "line 1: ", 8) == 0 ? msg + 8 : msg);
        return -1;
    }
    memcpy(out, one.keys[0], GOSSIP_KEY_LEN);
    OPENSSL_cleanse(&one, sizeof(one));
    return 0;
}

static int keys_find(const struct gossip_keyring *kr, const uint8_t key[GOSSIP_KEY_LEN])
{
    for (size_t i = 0; i < kr->count; i++)
        if (CRYPTO_memcmp(kr->keys[i], key, GOSSIP_KEY_LEN) == 0)
            return (int)i;
    return -1;
}

/* Writes the ring as a key file: temporary file in the same directory, fsync, rename, then
 * fsync the directory so the rename itself survives a crash. */
static int keys_write_file(const char *path, const struct gossip_keyring *kr, char *err,
                           size_t errlen)
{
    char tmp[NODE_PATH_MAX + 16], dir[NODE_PATH_MAX + 1], line[KEYS_B64_LEN + 2];
    const char *head = "# webgw cluster keys: the first encrypts, all decrypt "
                       "(written by the admin API)\n";
    int fd = -1, dfd = -1, rc = -1;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cluster key %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (write(fd, head, strlen(head)) != (ssize_t)strlen(head))
        goto write_fail;
    for (size_t i = 0; i < kr->count; i++) {
        EVP_EncodeBlock((unsigned char *)line, kr->keys[i], GOSSIP_KEY_LEN);
        line[KEYS_B64_LEN] = '\n';
        if (write(fd, line, KEYS_B64_LEN + 1) != KEYS_B64_LEN + 1)
            goto write_fail;
    }
    if (fsync(fd) != 0)
        goto write_fail;
    if (close(fd) != 0) {
        fd = -1;
        goto write_fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0) {
        snprintf(err, errlen, "cluster key %s: rename: %s", path, strerror(errno));
        unlink(tmp);
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
    goto out;
write_fail:
    snprintf(err, errlen, "cluster key %s: write: %s", tmp, errno ? strerror(errno) : "short");
    if (fd >= 0)
        close(fd);
    fd = -1;
    unlink(tmp);
out:
    OPENSSL_cleanse(line, sizeof(line));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Everything else keyed by the cluster key follows the new ring, then one log line. */
static void keys_installed(struct node *node, const char *how, const struct gossip_keyring *kr)
{
    char fpr[GOSSIP_KEY_FPR_LEN + 1], err[256];
    uint8_t secret[sizeof(node->ticket_secret)];

    gossip_key_fingerprint(kr->keys[0], fpr);
    node_acme_set_keys(node, kr);
    /* session ticket keys derive from the primary so any gateway resumes any session; tickets
     * under the old primary fall back to a full handshake */
    if (node->tls && gossip_key_derive(kr->keys[0], GOSSIP_KDF_TICKETS, secret) == 0 &&
        CRYPTO_memcmp(node->ticket_secret, secret, sizeof(node->ticket_secret)) != 0) {
        memcpy(node->ticket_secret, secret, sizeof(node->ticket_secret));
        if (tls_store_set_ticket_secret(node->tls, node->ticket_secret, sizeof(node->ticket_secret),
                                        time(NULL), err, sizeof(err)) != 0)
            node_log(NODE_LOG_WARN, "tls", "session ticket keys not updated: %s", err);
    }
    OPENSSL_cleanse(secret, sizeof(secret));
    node_event(node, "keys", "cluster keys %s: %zu key%s, primary %s", how, kr->count,
               kr->count == 1 ? "" : "s", fpr);
}

void node_keys_reload(struct node *node, const char *path)
{
    struct gossip_keyring kr;
    char err[NODE_ERR_MAX], gerr[GOSSIP_ERR_MAX];

    if (!node->gossip)
        return;
    if (path[0] == '\0') {
        if (node->cfg.cluster_key[0])
            node_log(NODE_LOG_ERROR, "keys",
                     "SIGHUP: --cluster-key removed; a running node cannot switch to plain "
                     "gossip (restart every member)");
        return;
    }
    if (gossip_keyring_load(path, &kr, err, sizeof(err)) != 0) {
        node_log(NODE_LOG_ERROR, "keys", "SIGHUP: keeping the running keys: %s", err);
        return;
    }
    if (gossip_set_keyring(node->gossip, &kr, gerr, sizeof(gerr)) != 0) {
        node_log(NODE_LOG_ERROR, "keys", "SIGHUP: keeping the running keys: %s: %s", path, gerr);
    } else {
        snprintf(node->cfg.cluster_key, sizeof(node->cfg.cluster_key), "%s", path);
        keys_installed(node, "reloaded (SIGHUP)", &kr);
    }
    OPENSSL_cleanse(&kr, sizeof(kr));
}

/* Builds the new ring from the request into *kr (which holds the running ring). Returns the
 * HTTP status to answer on error (err set), 0 on success. */
static int keys_change(json_t *doc, struct gossip_keyring *kr, const char **how, char *err,
                       size_t errlen)
{
    static const char *const ops[] = {"install", "use", "remove", "keys"};
    uint8_t key[GOSSIP_KEY_LEN];
    char kerr[GOSSIP_ERR_MAX];
    const char *op = NULL;
    json_t *val = NULL;
    int idx, rc = 400;

    if (!json_is_object(doc) || json_object_size(doc) != 1) {
        snprintf(err, errlen,
                 "expected one of {\"install\": KEY}, {\"use\": KEY}, "
                 "{\"remove\": KEY}, {\"keys\": [KEY, ...]}");
        return 400;
    }
    for (size_t i = 0; i < 4 && !op; i++)
        if ((val = json_object_get(doc, ops[i])) != NULL)
            op = ops[i];
    if (!op) {
        snprintf(err, errlen, "unknown operation (install, use, remove or keys)");
        return 400;
    }
    *how = op;
    if (strcmp(op, "keys") == 0) {
        struct gossip_keyring next = {.count = 0};
        size_t n = json_array_size(val);

        if (!json_is_array(val) || n == 0 || n > GOSSIP_KEYS_MAX) {
            snprintf(err, errlen, "\"keys\" must list 1 to %d keys", GOSSIP_KEYS_MAX);
            return 400;
        }
        for (size_t i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(val, i));
            if (!s || keys_decode(s, next.keys[i], kerr, sizeof(kerr)) != 0) {
                snprintf(err, errlen, "key %zu: %s", i + 1, s ? kerr : "not a string");
                OPENSSL_cleanse(&next, sizeof(next));
                return 400;
            }
            next.count++;
        }
        *kr = next;
        OPENSSL_cleanse(&next, sizeof(next));
        return 0;
    }
    if (!json_is_string(val) || keys_decode(json_string_value(val), key, kerr, sizeof(kerr))) {
        snprintf(err, errlen, "%s: %s", op, json_is_string(val) ? kerr : "expected a string");
        return 400;
    }
    idx = keys_find(kr, key);
    if (strcmp(op, "install") == 0) {
        if (idx < 0 && kr->count == GOSSIP_KEYS_MAX) {
            snprintf(err, errlen, "install: the ring already holds %d keys", GOSSIP_KEYS_MAX);
            goto out;
        }
        if (idx < 0)
            memcpy(kr->keys[kr->count++], key, GOSSIP_KEY_LEN);
    } else if (idx < 0) {
        snprintf(err, errlen, "%s: key is not installed (install it first)", op);
        goto out;
    } else if (strcmp(op, "use") == 0) {
        memmove(kr->keys[1], kr->keys[0], (size_t)idx * GOSSIP_KEY_LEN);
        memcpy(kr->keys[0], key, GOSSIP_KEY_LEN);
    } else if (idx == 0) {
        snprintf(err, errlen, "remove: cannot remove the primary key (use another one first)");
        goto out;
    } else {
        memmove(kr->keys[idx], kr->keys[idx + 1], (kr->count - (size_t)idx - 1) * GOSSIP_KEY_LEN);
        kr->count--;
        OPENSSL_cleanse(kr->keys[kr->count], GOSSIP_KEY_LEN);
    }
    rc = 0;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

static void keys_post(struct node *node, struct node_httpd_conn *conn,
                      const struct node_httpd_request *req)
{
    struct gossip_keyring old, next;
    char err[NODE_PATH_MAX + 2 * NODE_ERR_MAX], gerr[GOSSIP_ERR_MAX];
    const char *how = "";
    json_error_t jerr;
    json_t *doc = NULL;
    int status;

    gossip_keyring_get(node->gossip, &old);
    next = old;
    if (old.count == 0 || node->cfg.cluster_key[0] == '\0') {
        node_httpd_error(conn, 409,
                         "this node runs plain gossip (no --cluster-key): keys can only be "
                         "added by restarting every member with a key file");
        goto out;
    }
    doc = json_loadb((const char *)req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        snprintf(err, sizeof(err), "body is not JSON: %s", jerr.text);
        node_httpd_error(conn, 400, err);
        goto out;
    }
    status = keys_change(doc, &next, &how, err, sizeof(err));
    if (status == 0 && gossip_set_keyring(node->gossip, &next, gerr, sizeof(gerr)) != 0) {
        snprintf(err, sizeof(err), "%s", gerr);
        status = 400;
    }
    if (status != 0) {
        node_httpd_error(conn, status, err);
        goto out;
    }
    if (keys_write_file(node->cfg.cluster_key, &next, err, sizeof(err)) != 0) {
        /* what runs must match what a restart would load */
        gossip_set_keyring(node->gossip, &old, gerr, sizeof(gerr));
        node_log(NODE_LOG_ERROR, "keys", "admin API %s refused: %s", how, err);
        node_httpd_error(conn, 500, err);
        goto out;
    }
    snprintf(err, sizeof(err), "changed (admin API %s)", how);
    keys_installed(node, err, &next);
    keys_answer(conn, 200, keys_listing(&next, node->cfg.cluster_key));
out:
    json_decref(doc);
    OPENSSL_cleanse(&old, sizeof(old));
    OPENSSL_cleanse(&next, sizeof(next));
}

void node_api_keys(struct node *node, struct node_httpd_conn *conn,
                   const struct node_httpd_request *req)
{
    struct gossip_keyring kr;

    if (!node->gossip) {
        node_httpd_error(conn, 503, "gossip is not running");
        return;
    }
    if (strcmp(req->method, "POST") == 0) {
        keys_post(node, conn, req);
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        node_httpd_respond(conn, 405, "application/json", "{\"error\": \"method not allowed\"}\n",
                           strlen("{\"error\": \"method not allowed\"}\n"), "Allow: GET, POST\r\n");
        return;
    }
    gossip_keyring_get(node->gossip, &kr);
    keys_answer(conn, 200, keys_listing(&kr, node->cfg.cluster_key));
    OPENSSL_cleanse(&kr, sizeof(kr));
}
