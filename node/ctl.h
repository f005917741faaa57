/*
 * ctl.h - webgwctl's parts (private to node/): a blocking HTTP/1.1 client for the API.
 */
#ifndef WEBGW_NODE_CTL_H
#define WEBGW_NODE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_RESPONSE_MAX (16u << 20) /* largest API answer we read */
#define CTL_TIMEOUT_MS 10000         /* connect and each read/write */

struct ctl_response {
    int status; /* HTTP status */
    char *body; /* NUL-terminated body (malloc'd) */
    size_t len; /* body bytes */
};

/* Sends one request to `base` ("http://HOST:PORT", optional path prefix) + `path` and reads
 * the answer. Returns 0 with `resp` filled (free with ctl_response_free), or -1 with err set
 * when the API could not be reached or answered something that is not HTTP. */
int ctl_http(const char *base, const char *method, const char *path, const char *content_type,
             const void *body, size_t len, struct ctl_response *resp, char *err, size_t errlen);
/* The same with "Authorization: Bearer TOKEN" when token is not NULL (admin endpoints). */
int ctl_http_bearer(const char *base, const char *method, const char *path,
                    const char *content_type, const void *body, size_t len, const char *token,
                    struct ctl_response *resp, char *err, size_t errlen);
void ctl_response_free(struct ctl_response *resp);

/* `webgwctl keys ...` (ctl_keys.c): argv holds what follows "keys". Returns the exit status. */
int ctl_keys_main(const char *api, bool json, int argc, char **argv);

#endif /* WEBGW_NODE_CTL_H */
