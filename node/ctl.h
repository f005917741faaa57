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

/* Hint appended to every "cannot reach the API" message: where the URL comes from. */
#define CTL_API_HINT "check --api or WEBGW_API"

/* Explains an API answer that is not a success, as one line into msg (without the "webgwctl: "
 * prefix), and returns the exit status: NODE_CTL_REFUSED with the server's {"error": ...} when
 * webgw answered, NODE_CTL_UNREACHABLE when the answer carries no webgw error at all (--api
 * points at something else, e.g. the proxy port or another web server). */
int ctl_answer_error(const char *api, const struct ctl_response *resp, char *msg, size_t cap);

/* `webgwctl keys ...` (ctl_keys.c): argv holds what follows "keys". Returns the exit status. */
int ctl_keys_main(const char *api, bool json, int argc, char **argv);

#endif /* WEBGW_NODE_CTL_H */
