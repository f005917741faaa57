/*
 * ctl.c - webgwctl: builds and signs records with the state library and talks to the API.
 *
 * Versions: a new record's version is max(now in ms, last known version + 1), so versions only
 * go up even when clocks step back. reserved_at (the claim time that settles conflicting
 * reservations) is kept from the name's current claim when we hold it, so re-exposing a name
 * never weakens the claim.
 *
 * Exit statuses: 0 done; 1 refused (the server said no or knows no such name, or a local failure
 * such as an existing key file); 2 usage error (the command line is wrong, including a name, FQDN
 * or backend URL that can never be valid: checked here, before any request); 3 the API could not
 * be reached or is not a webgw API.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "node/ctl.h"
#include "node/node.h"

#define CTL_BACKENDS_MAX STATE_BACKENDS_MAX

struct ctl {
    const char *api;                            /* API base URL */
    char key_path[NODE_PATH_MAX];               /* owner key file */
    bool json;                                  /* print API shapes */
    bool tls_passthrough;                       /* expose/fqdn --tls-passthrough */
    const char *backends[CTL_BACKENDS_MAX + 1]; /* --backend values */
    size_t backend_count;                       /* entries in backends */
    const char *command;                        /* first positional argument */
    const char *target;                         /* second positional argument (NAME, FQDN) */
};

static void ctl_usage(FILE *f)
{
    fprintf(f,
            "Usage: webgwctl [--api URL] [--key FILE] [--json] COMMAND [ARGS]\n"
            "Manage names on a webgw fleet: records are signed with your key and sent to one\n"
            "gateway's API, which spreads them to every gateway.\n\n"
            "Commands:\n"
            "  keygen                               make a key at --key (never overwrites) and\n"
            "                                       print its owner id\n"
            "  reserve NAME                         claim NAME (first valid claim wins)\n"
            "  expose NAME --backend URL [--backend URL]... [--tls-passthrough]\n"
            "                                       serve NAME.DOMAIN from these backends:\n"
            "                                       http://IP:PORT, or IP:PORT with passthrough\n"
            "  fqdn FQDN --backend URL... [--tls-passthrough]\n"
            "                                       serve a custom domain pointed at the fleet\n"
            "  release NAME                         give NAME (or FQDN) up for good\n"
            "  names                                list names\n"
            "  show NAME                            one name in detail\n"
            "  members                              gateways and their state\n"
            "  health                               this gateway and its backends' health\n"
            "                                       (exit 1 unless the gateway is ok)\n"
            "  keys [list | install KEY | use KEY | remove KEY] [--token-file FILE]\n"
            "                                       this gateway's gossip keys (fingerprints),\n"
            "                                       rotation; admin token from --token-file or\n"
            "                                       env WEBGW_ADMIN_TOKEN\n\n"
            "Options:\n"
            "  --api URL     API of a gateway (env WEBGW_API; default http://127.0.0.1:9080)\n"
            "  --key FILE    owner key (env WEBGW_KEY; default ~/.config/webgw/owner.key)\n"
            "  --json        print JSON as the API returns it\n"
            "  --help        this text\n\n"
            "Exit status:\n"
            "  0  done\n"
            "  1  refused: the server said no or has no such name, or a local failure\n"
            "     (an existing key file, an unreadable key)\n"
            "  2  usage: the command line is wrong, including an invalid NAME, FQDN or\n"
            "     --backend URL (checked before anything is sent)\n"
            "  3  the API cannot be reached, or --api is not a webgw API\n"
            "Errors are one line on stderr. show prints times in ISO 8601 (UTC); --json\n"
            "prints the API's raw values (milliseconds since 1970).\n");
}

static int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int ctl_fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("webgwctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* Sends a request; maps transport failures to exit 3 and leaves HTTP errors to the caller.
 * ctl_http's message already says to check --api / WEBGW_API. */
static int ctl_call(const struct ctl *c, const char *method, const char *path, const char *ctype,
                    const void *body, size_t len, struct ctl_response *resp)
{
    char err[NODE_ERR_MAX];
    int rc = ctl_http(c->api, method, path, ctype, body, len, resp, err, sizeof(err));

    if (rc == -2)
        return ctl_fail(NODE_CTL_USAGE, "%s", err);
    if (rc != 0)
        return ctl_fail(NODE_CTL_UNREACHABLE, "%s", err);
    return NODE_CTL_OK;
}

/* The server's {"error": ...} as one line, or that --api is not a webgw API. */
static int ctl_refused(const struct ctl *c, const struct ctl_response *resp)
{
    char msg[NODE_ERR_MAX + 256];
    int rc = ctl_answer_error(c->api, resp, msg, sizeof(msg));

    return ctl_fail(rc, "%s", msg);
}

/* A 2xx answer's JSON, or NULL with *rc set: a body that is not JSON is not webgw's. */
static json_t *ctl_parse_json(const struct ctl *c, const struct ctl_response *resp, int *rc)
{
    json_t *doc = json_loadb(resp->body, resp->len, 0, NULL);

    if (!doc)
        *rc = ctl_fail(NODE_CTL_UNREACHABLE, "%s is not a webgw API (its answer is not JSON; %s)",
                       c->api, CTL_API_HINT);
    return doc;
}

/* Milliseconds since 1970 as ISO 8601 UTC ("2026-12-04T16:55:42.123Z") into out[CTL_TIME_MAX]. */
#define CTL_TIME_MAX 40
static void ctl_iso_time(json_int_t ms, char out[CTL_TIME_MAX])
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    size_t n;

    if (ms <= 0 || !gmtime_r(&secs, &tm) ||
        (n = strftime(out, CTL_TIME_MAX, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        snprintf(out, CTL_TIME_MAX, "-");
        return;
    }
    snprintf(out + n, CTL_TIME_MAX - n, ".%03dZ", (int)(ms % 1000));
}

/* Creates every missing folder of `path`'s parent (mkdir -p), new ones mode 0700: the key
 * folder holds a secret. Returns 0 or -1 with errno set and the failing folder in `failed`. */
static int ctl_mkdir_parents(const char *path, char *failed, size_t cap)
{
    char dir[NODE_PATH_MAX];
    char *slash;

    snprintf(dir, sizeof(dir), "%s", path);
    slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            snprintf(failed, cap, "%s", dir);
            return -1;
        }
        *p = saved;
        if (saved == '\0')
            return 0;
    }
}

static void ctl_print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));

    if (text) {
        puts(text);
        free(text);
    }
}

/* ---- keys and records ------------------------------------------------------------------- */

static int ctl_keygen(const struct ctl *c)
{
    char err[STATE_ERR_MAX], owner[STATE_OWNER_HEX_LEN + 1], dir[NODE_PATH_MAX];
    uint8_t raw[STATE_OWNER_LEN];
    struct state_key *key;

    /* the default path's folders (~/.config/webgw) may not exist yet on a fresh home */
    if (ctl_mkdir_parents(c->key_path, dir, sizeof(dir)) != 0)
        return ctl_fail(NODE_CTL_REFUSED, "keygen: cannot create %s: %s", dir, strerror(errno));
    key = state_key_generate(c->key_path, err, sizeof(err));
    if (!key)
        return ctl_fail(NODE_CTL_REFUSED, "keygen: %s", err);
    state_key_owner(key, raw);
    state_key_free(key);
    state_owner_format(raw, owner);
    if (c->json) {
        json_t *doc = json_pack("{s:s, s:s}", "owner", owner, "key", c->key_path);
        ctl_print_json(doc);
        json_decref(doc);
    } else {
        printf("%s\n", owner);
        fprintf(stderr, "key written to %s (keep it secret; it is your names' only owner)\n",
                c->key_path);
    }
    return NODE_CTL_OK;
}

/* What we know of a key before writing a new record for it. */
struct ctl_known {
    uint64_t version;     /* highest version seen for the key (0: none) */
    uint64_t reserved_at; /* our claim time when we hold it (0: no claim of ours) */
};

static int ctl_lookup(const struct ctl *c, const char *key, const uint8_t owner[STATE_OWNER_LEN],
                      struct ctl_known *known)
{
    struct ctl_response resp;
    char path[STATE_FQDN_MAX + 32], me[STATE_OWNER_HEX_LEN + 1];
    json_t *doc;
    int rc;

    memset(known, 0, sizeof(*known));
    snprintf(path, sizeof(path), "/api/v1/names/%s", key);
    rc = ctl_call(c, "GET", path, NULL, NULL, 0, &resp);
    if (rc != NODE_CTL_OK)
        return rc;
    doc = json_loadb(resp.body, resp.len, 0, NULL);
    /* webgw answers 404 for an unknown name with a JSON error; a 404 without one is some other
     * server's (ctl_refused says so) */
    if ((resp.status != 200 && resp.status != 404) || !doc) {
        json_decref(doc);
        rc = ctl_refused(c, &resp);
        ctl_response_free(&resp);
        return rc;
    }
    ctl_response_free(&resp);
    if (!doc)
        return NODE_CTL_OK;
    state_owner_format(owner, me);
    {
        json_t *v = json_object_get(doc, "version");
        const char *holder = json_string_value(json_object_get(doc, "owner"));
        bool held = json_is_true(json_object_get(doc, "held"));
        if (json_is_integer(v))
            known->version = (uint64_t)json_integer_value(v);
        if (held && holder && strcmp(holder, me) == 0)
            known->reserved_at = (uint64_t)json_integer_value(json_object_get(doc, "reserved_at"));
    }
    json_decref(doc);
    return NODE_CTL_OK;
}

static int ctl_submit(const struct ctl *c, struct state_record *rec, const char *verb)
{
    struct state_key *key;
    struct ctl_known known;
    struct ctl_response resp;
    uint8_t owner[STATE_OWNER_LEN], buf[STATE_RECORD_MAX_BYTES];
    char err[STATE_ERR_MAX], owner_hex[STATE_OWNER_HEX_LEN + 1];
    uint64_t now = state_now_ms();
    int len, rc;

    key = state_key_load(c->key_path, err, sizeof(err));
    if (!key)
        return ctl_fail(NODE_CTL_REFUSED, "key: %s (make one with webgwctl keygen)", err);
    state_key_owner(key, owner);
    rc = ctl_lookup(c, rec->name, owner, &known);
    if (rc != NODE_CTL_OK)
        goto out;
    rec->version = known.version + 1 > now ? known.version + 1 : now;
    rec->reserved_at_ms = known.reserved_at ? known.reserved_at : now;
    rec->issued_at_ms = now;
    if (state_record_sign(rec, key, err, sizeof(err)) != 0) {
        rc = ctl_fail(NODE_CTL_REFUSED, "sign: %s", err);
        goto out;
    }
    len = state_record_encode(rec, buf, sizeof(buf));
    if (len < 0) {
        rc = ctl_fail(NODE_CTL_REFUSED, "record too large to encode");
        goto out;
    }
    rc = ctl_call(c, "POST", "/api/v1/records", "application/msgpack", buf, (size_t)len, &resp);
    if (rc != NODE_CTL_OK)
        goto out;
    if (resp.status != 202) {
        rc = ctl_refused(c, &resp);
        ctl_response_free(&resp);
        goto out;
    }
    state_owner_format(owner, owner_hex);
    if (c->json) {
        json_t *doc = json_loadb(resp.body, resp.len, 0, NULL);
        if (!doc)
            doc = json_object();
        json_object_set_new(doc, "name", json_string(rec->name));
        json_object_set_new(doc, "kind", json_string(state_record_kind_name(rec->kind)));
        json_object_set_new(doc, "owner", json_string(owner_hex));
        json_object_set_new(doc, "version", json_integer((json_int_t)rec->version));
        ctl_print_json(doc);
        json_decref(doc);
    } else {
        printf("%s %s (version %llu, owner %.12s...)\n", verb, rec->name,
               (unsigned long long)rec->version, owner_hex);
    }
    ctl_response_free(&resp);
out:
    state_key_free(key);
    return rc;
}

static int ctl_record(const struct ctl *c, enum state_record_kind kind)
{
    struct state_record rec;
    char err[STATE_ERR_MAX];
    const char *verb = kind == STATE_RECORD_RESERVE   ? "reserved"
                       : kind == STATE_RECORD_RELEASE ? "released"
                                                      : "exposed";

    memset(&rec, 0, sizeof(rec));
    rec.kind = kind;
    if (!c->target)
        return ctl_fail(NODE_CTL_USAGE, "%s: missing %s", c->command,
                        kind == STATE_RECORD_FQDN ? "FQDN" : "NAME");
    if (kind == STATE_RECORD_FQDN || (kind == STATE_RECORD_RELEASE && strchr(c->target, '.'))) {
        if (state_fqdn_normalize(c->target, rec.name, err, sizeof(err)) != 0)
            return ctl_fail(NODE_CTL_USAGE, "%s: %s", c->command, err);
    } else if (state_name_normalize(c->target, rec.name, err, sizeof(err)) != 0) {
        return ctl_fail(NODE_CTL_USAGE, "%s: %s", c->command, err);
    }
    if (kind == STATE_RECORD_PROXY || kind == STATE_RECORD_FQDN) {
        if (c->backend_count == 0)
            return ctl_fail(NODE_CTL_USAGE, "%s: at least one --backend URL is needed", c->command);
        if (c->backend_count > CTL_BACKENDS_MAX)
            return ctl_fail(NODE_CTL_USAGE, "%s: at most %d backends", c->command,
                            CTL_BACKENDS_MAX);
        rec.tls_passthrough = c->tls_passthrough;
        for (size_t i = 0; i < c->backend_count; i++) {
            if (state_backend_parse(c->backends[i], c->tls_passthrough, &rec.backends[i], err,
                                    sizeof(err)) != 0)
                return ctl_fail(NODE_CTL_USAGE, "%s: --%s", c->command, err); /* err names it */
        }
        rec.backend_count = (uint8_t)c->backend_count;
    } else if (c->backend_count || c->tls_passthrough) {
        return ctl_fail(NODE_CTL_USAGE, "%s takes no --backend or --tls-passthrough", c->command);
    }
    return ctl_submit(c, &rec, verb);
}

/* ---- reading commands ------------------------------------------------------------------- */

/* GETs path and returns the parsed JSON, or NULL with *rc set. */
static json_t *ctl_get(const struct ctl *c, const char *path, int *rc)
{
    struct ctl_response resp;
    json_t *doc;

    *rc = ctl_call(c, "GET", path, NULL, NULL, 0, &resp);
    if (*rc != NODE_CTL_OK)
        return NULL;
    if (resp.status != 200 && !(resp.status == 503 && strcmp(path, "/healthz") == 0)) {
        *rc = ctl_refused(c, &resp);
        ctl_response_free(&resp);
        return NULL;
    }
    doc = ctl_parse_json(c, &resp, rc);
    ctl_response_free(&resp);
    return doc;
}

static void ctl_join_backends(json_t *backends, char *out, size_t cap)
{
    size_t i, n = 0;
    json_t *b;

    out[0] = '\0';
    json_array_foreach(backends, i, b)
    {
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%s%s", i ? " " : "",
                              json_string_value(b));
    }
    if (n == 0)
        snprintf(out, cap, "-");
}

static int ctl_names(const struct ctl *c)
{
    int rc;
    json_t *doc = ctl_get(c, "/api/v1/names", &rc), *n;
    size_t i;

    if (!doc)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
    } else if (json_array_size(doc) == 0) {
        printf("no names\n");
    } else {
        printf("%-30s %-14s %-15s %s\n", "NAME", "OWNER", "VERSION", "BACKENDS");
        json_array_foreach(doc, i, n)
        {
            char backends[1200];
            ctl_join_backends(json_object_get(n, "backends"), backends, sizeof(backends));
            printf("%-30s %-14.12s %-15lld %s%s\n", json_string_value(json_object_get(n, "name")),
                   json_string_value(json_object_get(n, "owner")),
                   (long long)json_integer_value(json_object_get(n, "version")), backends,
                   json_is_true(json_object_get(n, "tls_passthrough")) ? " (tls passthrough)" : "");
        }
    }
    json_decref(doc);
    return NODE_CTL_OK;
}

static int ctl_show(const struct ctl *c)
{
    char path[STATE_FQDN_MAX + 32], backends[1200], key[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX];
    char reserved[CTL_TIME_MAX], issued[CTL_TIME_MAX];
    int rc;
    json_t *doc;

    if (!c->target)
        return ctl_fail(NODE_CTL_USAGE, "show: missing NAME");
    /* the same checks, words and exit status as reserve/expose/fqdn/release */
    if ((strchr(c->target, '.') ? state_fqdn_normalize(c->target, key, err, sizeof(err))
                                : state_name_normalize(c->target, key, err, sizeof(err))) != 0)
        return ctl_fail(NODE_CTL_USAGE, "show: %s", err);
    snprintf(path, sizeof(path), "/api/v1/names/%s", key);
    doc = ctl_get(c, path, &rc);
    if (!doc)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
    } else {
        ctl_join_backends(json_object_get(doc, "backends"), backends, sizeof(backends));
        ctl_iso_time(json_integer_value(json_object_get(doc, "reserved_at")), reserved);
        ctl_iso_time(json_integer_value(json_object_get(doc, "issued_at")), issued);
        printf("name:            %s\nowner:           %s\nkind:            %s\n"
               "version:         %lld\nreserved_at:     %s\nissued_at:       %s\n"
               "backends:        %s\ntls_passthrough: %s\ncontenders:      %lld\n",
               json_string_value(json_object_get(doc, "name")),
               json_string_value(json_object_get(doc, "owner")),
               json_string_value(json_object_get(doc, "kind")),
               (long long)json_integer_value(json_object_get(doc, "version")), reserved, issued,
               backends, json_is_true(json_object_get(doc, "tls_passthrough")) ? "yes" : "no",
               (long long)json_integer_value(json_object_get(doc, "contenders")));
    }
    json_decref(doc);
    return NODE_CTL_OK;
}

static int ctl_members(const struct ctl *c)
{
    int rc;
    json_t *doc = ctl_get(c, "/api/v1/members", &rc), *m;
    size_t i;

    if (!doc)
        return rc;
    if (c->json) {
        ctl_print_json(doc);
    } else {
        printf("%-24s %-24s %-8s %s\n", "NAME", "ADDR", "STATE", "ID");
        json_array_foreach(doc, i, m)
        {
            printf("%-24s %-24s %-8s %s%s\n", json_string_value(json_object_get(m, "name")),
                   json_string_value(json_object_get(m, "addr")),
                   json_string_value(json_object_get(m, "state")),
                   json_string_value(json_object_get(m, "id")),
                   json_is_true(json_object_get(m, "self")) ? " (this node)" : "");
        }
    }
    json_decref(doc);
    return NODE_CTL_OK;
}

static int ctl_health(const struct ctl *c)
{
    int rc;
    json_t *health = ctl_get(c, "/healthz", &rc), *backends, *b;
    size_t i;

    if (!health)
        return rc;
    backends = ctl_get(c, "/api/v1/backends", &rc);
    if (!backends) {
        json_decref(health);
        return rc;
    }
    if (c->json) {
        json_t *doc = json_pack("{s:O, s:O}", "node", health, "backends", backends);
        ctl_print_json(doc);
        json_decref(doc);
    } else {
        printf("node %s: %s (%lld names, up %llds)\n",
               json_string_value(json_object_get(health, "node")),
               json_string_value(json_object_get(health, "status")),
               (long long)json_integer_value(json_object_get(health, "names")),
               (long long)json_integer_value(json_object_get(health, "uptime_s")));
        if (json_array_size(backends) == 0)
            printf("no backends\n");
        else
            printf("%-30s %-28s %s\n", "NAME", "BACKEND", "HEALTH");
        json_array_foreach(backends, i, b)
        {
            printf("%-30s %-28s %s\n", json_string_value(json_object_get(b, "name")),
                   json_string_value(json_object_get(b, "backend")),
                   json_string_value(json_object_get(b, "health")));
        }
    }
    {
        const char *status = json_string_value(json_object_get(health, "status"));
        rc = status && strcmp(status, "ok") == 0 ? NODE_CTL_OK : NODE_CTL_REFUSED;
    }
    json_decref(health);
    json_decref(backends);
    return rc;
}

/* ---- command line ----------------------------------------------------------------------- */

static void ctl_default_key(char *out, size_t cap)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");

    if (xdg && xdg[0])
        snprintf(out, cap, "%s/webgw/owner.key", xdg);
    else
        snprintf(out, cap, "%s/.config/webgw/owner.key", home && home[0] ? home : ".");
}

int node_ctl_main(int argc, char **argv)
{
    struct ctl c;
    const char *env_key = getenv("WEBGW_KEY"), *env_api = getenv("WEBGW_API");
    const char *positional[3] = {NULL};
    size_t npos = 0;

    memset(&c, 0, sizeof(c));
    c.api = env_api && env_api[0] ? env_api : "http://127.0.0.1:9080";
    if (env_key && env_key[0])
        snprintf(c.key_path, sizeof(c.key_path), "%s", env_key);
    else
        ctl_default_key(c.key_path, sizeof(c.key_path));

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            ctl_usage(stdout);
            return NODE_CTL_OK;
        } else if (strcmp(a, "--version") == 0) {
            printf("webgwctl %s\n", WEBGW_VERSION);
            return NODE_CTL_OK;
        } else if (strcmp(a, "--json") == 0) {
            c.json = true;
        } else if (strcmp(a, "--tls-passthrough") == 0) {
            c.tls_passthrough = true;
        } else if (strcmp(a, "--api") == 0 || strcmp(a, "--key") == 0 ||
                   strcmp(a, "--backend") == 0) {
            if (i + 1 >= argc)
                return ctl_fail(NODE_CTL_USAGE, "%s: missing value", a);
            const char *v = argv[++i];
            if (a[2] == 'a') {
                c.api = v;
            } else if (a[2] == 'k') {
                if (strlen(v) >= sizeof(c.key_path))
                    return ctl_fail(NODE_CTL_USAGE, "--key: path too long");
                snprintf(c.key_path, sizeof(c.key_path), "%s", v);
            } else {
                if (c.backend_count > CTL_BACKENDS_MAX)
                    return ctl_fail(NODE_CTL_USAGE, "--backend: at most %d backends",
                                    CTL_BACKENDS_MAX);
                c.backends[c.backend_count++] = v;
            }
        } else if (a[0] == '-' && a[1] != '\0') {
            return ctl_fail(NODE_CTL_USAGE, "unknown option %s (see --help)", a);
        } else if (npos == 0 && strcmp(a, "keys") == 0) {
            /* admin command with its own options (ctl_keys.c) */
            return ctl_keys_main(c.api, c.json, argc - i - 1, argv + i + 1);
        } else {
            if (npos == 2)
                return ctl_fail(NODE_CTL_USAGE, "unexpected argument \"%s\"", a);
            positional[npos++] = a;
        }
    }
    if (npos == 0) {
        ctl_usage(stderr);
        return NODE_CTL_USAGE;
    }
    c.command = positional[0];
    c.target = positional[1];

    if (strcmp(c.command, "keygen") == 0)
        return c.target ? ctl_fail(NODE_CTL_USAGE, "keygen takes no argument (use --key FILE)")
                        : ctl_keygen(&c);
    if (strcmp(c.command, "reserve") == 0)
        return ctl_record(&c, STATE_RECORD_RESERVE);
    if (strcmp(c.command, "expose") == 0)
        return ctl_record(&c, STATE_RECORD_PROXY);
    if (strcmp(c.command, "fqdn") == 0)
        return ctl_record(&c, STATE_RECORD_FQDN);
    if (strcmp(c.command, "release") == 0)
        return ctl_record(&c, STATE_RECORD_RELEASE);
    if (c.target && strcmp(c.command, "show") != 0)
        return ctl_fail(NODE_CTL_USAGE, "%s takes no argument", c.command);
    if (strcmp(c.command, "names") == 0)
        return ctl_names(&c);
    if (strcmp(c.command, "show") == 0)
        return ctl_show(&c);
    if (strcmp(c.command, "members") == 0)
        return ctl_members(&c);
    if (strcmp(c.command, "health") == 0)
        return ctl_health(&c);
    return ctl_fail(NODE_CTL_USAGE, "unknown command \"%s\" (see --help)", c.command);
}
