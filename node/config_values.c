/*
 * config_values.c - the parsers of one option value: bounded whole numbers, DURATION
 * (500ms, 10s, 5m), booleans, paths, the domain, the node name, IP literals and the
 * repeatable paths and listeners. Each writes only the problem into err; the caller names the key.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "node/config_internal.h"

int config_uint(const char *value, uint64_t min, uint64_t max, uint64_t *out, char *err,
                size_t errlen)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (value[0] < '0' || value[0] > '9')
        goto bad;
    v = strtoull(value, &end, 10);
    if (errno != 0 || *end != '\0')
        goto bad;
    if (v < min || v > max) {
        snprintf(err, errlen, "%llu is out of range %llu..%llu", v, (unsigned long long)min,
                 (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
bad:
    snprintf(err, errlen, "expected a whole number, got \"%s\"", value);
    return -1;
}

int config_bool(const char *value, bool *out, char *err, size_t errlen)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(value, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(value, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    snprintf(err, errlen, "expected true or false, got \"%s\"", value);
    return -1;
}

int config_path(char *dst, const char *value, char *err, size_t errlen)
{
    if (value[0] == '\0') {
        snprintf(err, errlen, "must not be empty");
        return -1;
    }
    if (strlen(value) >= NODE_PATH_MAX) {
        snprintf(err, errlen, "path longer than %d bytes", NODE_PATH_MAX - 1);
        return -1;
    }
    snprintf(dst, NODE_PATH_MAX, "%s", value);
    return 0;
}

/* A domain: dot-separated DNS labels, lowercased into dst. */
int config_domain(char *dst, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value), label = 0;

    if (len == 0 || len > STATE_FQDN_MAX) {
        snprintf(err, errlen, "must be 1..%d characters", STATE_FQDN_MAX);
        return -1;
    }
    for (size_t i = 0; i <= len; i++) {
        char c = value[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || value[i - 1] == '-') {
                snprintf(err, errlen, "\"%.60s\" is not a domain (labels of 1..63 [a-z0-9-])",
                         value);
                return -1;
            }
            label = 0;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0))) {
            snprintf(err, errlen, "\"%.60s\" is not a domain (labels of 1..63 [a-z0-9-])", value);
            return -1;
        }
        label++;
    }
    for (size_t i = 0; i <= len; i++)
        dst[i] = (value[i] >= 'A' && value[i] <= 'Z') ? (char)(value[i] - 'A' + 'a') : value[i];
    return 0;
}

int config_node_name(char *dst, const char *value, char *err, size_t errlen)
{
    size_t len = strlen(value);

    if (len == 0 || len > NODE_NAME_MAX) {
        snprintf(err, errlen, "must be 1..%d characters", NODE_NAME_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        char c = value[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.')) {
            snprintf(err, errlen, "\"%s\" has a character outside [A-Za-z0-9._-]", value);
            return -1;
        }
    }
    memcpy(dst, value, len + 1);
    return 0;
}

/* An IP literal without port ("192.0.2.1", "2001:db8::1" or "[2001:db8::1]"), port `port`. */
int config_ip(const char *value, uint16_t port, struct sockaddr_storage *out, char *err,
              size_t errlen)
{
    char buf[64];
    size_t len = strlen(value);
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

    memset(out, 0, sizeof(*out));
    if (len >= 2 && value[0] == '[' && value[len - 1] == ']' && len - 2 < sizeof(buf)) {
        memcpy(buf, value + 1, len - 2);
        buf[len - 2] = '\0';
    } else if (len < sizeof(buf)) {
        memcpy(buf, value, len + 1);
    } else {
        buf[0] = '\0';
    }
    if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(port);
        return 0;
    }
    if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        return 0;
    }
    snprintf(err, errlen, "expected an IP address, got \"%.80s\"", value);
    return -1;
}

/* A repeatable path: appended to list[*count] (at most NODE_TLS_PAIRS_MAX). */
int config_path_item(char (*list)[NODE_PATH_MAX], size_t *count, const char *value, char *err,
                     size_t errlen)
{
    if (*count == NODE_TLS_PAIRS_MAX) {
        snprintf(err, errlen, "at most %d files", NODE_TLS_PAIRS_MAX);
        return -1;
    }
    if (config_path(list[*count], value, err, errlen) != 0)
        return -1;
    (*count)++;
    return 0;
}

int config_listen_item(struct node_addr *list, size_t *count, const char *value, char *err,
                       size_t errlen)
{
    if (*count == NODE_LISTEN_MAX) {
        snprintf(err, errlen, "at most %d addresses", NODE_LISTEN_MAX);
        return -1;
    }
    if (node_listen_parse(value, &list[*count], err, errlen) != 0)
        return -1;
    (*count)++;
    return 0;
}

/* A duration into milliseconds, min_ms..max_ms. A bare number is seconds, as for
 * --drain-timeout; the suffixes ms, s and m say the unit, so "500ms" is half a second. */
int config_duration(const char *value, uint64_t min_ms, uint64_t max_ms, uint32_t *out, char *err,
                    size_t errlen)
{
    char *end;
    unsigned long long v, scale;

    errno = 0;
    if (value[0] < '0' || value[0] > '9')
        goto bad;
    v = strtoull(value, &end, 10);
    if (errno != 0)
        goto bad;
    if (strcmp(end, "ms") == 0)
        scale = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        scale = 1000;
    else if (strcmp(end, "m") == 0)
        scale = 60000;
    else
        goto bad;
    if (v > max_ms / scale || v * scale < min_ms) {
        snprintf(err, errlen, "%s is out of range %llums..%llus", value, (unsigned long long)min_ms,
                 (unsigned long long)max_ms / 1000);
        return -1;
    }
    *out = (uint32_t)(v * scale);
    return 0;
bad:
    snprintf(err, errlen,
             "expected a duration (10s, 500ms, 5m; a bare number is seconds), got \"%.60s\"",
             value);
    return -1;
}

/* A bounded unsigned integer into a uint32_t field. */
int config_u32(const char *value, uint32_t min, uint32_t max, uint32_t *out, char *err,
               size_t errlen)
{
    uint64_t n;

    if (config_uint(value, min, max, &n, err, errlen) != 0)
        return -1;
    *out = (uint32_t)n;
    return 0;
}
