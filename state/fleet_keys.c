/*
 * fleet_keys.c - the fleet roster an operator writes (--fleet-keys FILE): the node keys whose
 * witnesses count. Why a roster at all is at the top of node/node_witness.c.
 *
 * Format, one entry a line:
 *
 *     # the fleet of example.net
 *     3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29  gw1
 *     9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60  gw2   # rack 4
 *
 * a node key as `webgw identity` prints it (64 hex digits), then optionally a label (the
 * gateway's name, shown in logs; up to STATE_FLEET_LABEL_MAX printable characters, spaces
 * allowed). `#` starts a comment anywhere; blank lines and CRLF line ends are fine. Anything
 * else is refused with the line number: a listed key that is misread would silently shrink
 * the fleet, so nothing is skipped. A key listed twice is refused too (two gateways sharing a
 * node.key would be one witness counted as two in the operator's head).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

static bool label_char(char c)
{
    return c >= 0x20 && c < 0x7f;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t';
}

/* One line (without its end): 0 with *has_key set when it lists a key, or -1 with why set. */
static int parse_line(const char *line, size_t len, uint8_t key[STATE_OWNER_LEN], char *label,
                      bool *has_key, char *why, size_t whylen)
{
    char hex[STATE_OWNER_HEX_LEN + 1];
    size_t i = 0, start, end;

    *has_key = false;
    for (size_t j = 0; j < len; j++)
        if (line[j] == '#') {
            len = j; /* the comment goes */
            break;
        }
    while (i < len && blank(line[i]))
        i++;
    if (i == len)
        return 0;
    start = i;
    while (i < len && !blank(line[i]))
        i++;
    if (i - start != STATE_OWNER_HEX_LEN) {
        snprintf(why, whylen,
                 "expected a node key (64 hex digits, as `webgw identity` prints), got \"%.*s\"",
                 (int)(i - start > 40 ? 40 : i - start), line + start);
        return -1;
    }
    memcpy(hex, line + start, STATE_OWNER_HEX_LEN);
    hex[STATE_OWNER_HEX_LEN] = '\0';
    if (state_owner_parse(hex, key) != 0) {
        snprintf(why, whylen, "\"%.64s\" is not a node key (64 hex digits)", hex);
        return -1;
    }
    while (i < len && blank(line[i]))
        i++;
    end = len;
    while (end > i && blank(line[end - 1]))
        end--;
    if (end - i > STATE_FLEET_LABEL_MAX) {
        snprintf(why, whylen, "label longer than %d characters", STATE_FLEET_LABEL_MAX);
        return -1;
    }
    for (size_t j = i; j < end; j++)
        if (!label_char(line[j])) {
            snprintf(why, whylen, "label holds a control or non-ASCII byte (0x%02x)",
                     (unsigned char)line[j]);
            return -1;
        }
    memcpy(label, line + i, end - i);
    label[end - i] = '\0';
    *has_key = true;
    return 0;
}

int state_fleet_keys_parse(const char *text, size_t len, const char *what,
                           struct state_fleet_keys *out, char *err, size_t errlen)
{
    size_t pos = 0, lineno = 0;

    memset(out, 0, sizeof(*out));
    if (len > STATE_FLEET_FILE_MAX) {
        snprintf(err, errlen, "%s: larger than %d bytes", what, STATE_FLEET_FILE_MAX);
        return STATE_EINVAL;
    }
    while (pos < len) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        uint8_t key[STATE_OWNER_LEN];
        char label[STATE_FLEET_LABEL_MAX + 1], why[160];
        bool has_key;

        pos += n + (nl != NULL);
        lineno++;
        if (n > 0 && line[n - 1] == '\r')
            n--;
        if (memchr(line, '\0', n) != NULL) {
            snprintf(err, errlen, "%s:%zu: a NUL byte", what, lineno);
            goto fail;
        }
        if (parse_line(line, n, key, label, &has_key, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "%s:%zu: %s", what, lineno, why);
            goto fail;
        }
        if (!has_key)
            continue;
        for (size_t i = 0; i < out->count; i++)
            if (memcmp(out->keys[i], key, STATE_OWNER_LEN) == 0) {
                snprintf(err, errlen, "%s:%zu: key %.16s... is listed twice (line %u)", what,
                         lineno, line + strspn(line, " \t"), out->lines[i]);
                goto fail;
            }
        if (out->count == STATE_FLEET_KEYS_MAX) {
            snprintf(err, errlen, "%s:%zu: more than %d keys", what, lineno, STATE_FLEET_KEYS_MAX);
            goto fail;
        }
        memcpy(out->keys[out->count], key, STATE_OWNER_LEN);
        memcpy(out->labels[out->count], label, sizeof(label));
        out->lines[out->count] = (unsigned)lineno;
        out->count++;
    }
    return 0;
fail:
    memset(out, 0, sizeof(*out));
    return STATE_EINVAL;
}

int state_fleet_keys_load(const char *path, struct state_fleet_keys *out, char *err, size_t errlen)
{
    char *buf = malloc(STATE_FLEET_FILE_MAX + 1);
    FILE *f;
    size_t n;
    int rc;

    memset(out, 0, sizeof(*out));
    if (buf == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return STATE_ENOMEM;
    }
    f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        free(buf);
        return STATE_EIO;
    }
    n = fread(buf, 1, STATE_FLEET_FILE_MAX + 1, f);
    rc = ferror(f);
    fclose(f);
    if (rc != 0) {
        snprintf(err, errlen, "cannot read %s", path);
        free(buf);
        return STATE_EIO;
    }
    rc = state_fleet_keys_parse(buf, n, path, out, err, errlen);
    free(buf);
    return rc;
}

bool state_fleet_keys_has(const struct state_fleet_keys *fk, const uint8_t key[STATE_OWNER_LEN])
{
    for (size_t i = 0; i < fk->count; i++)
        if (memcmp(fk->keys[i], key, STATE_OWNER_LEN) == 0)
            return true;
    return false;
}
