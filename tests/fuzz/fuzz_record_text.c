/*
 * fuzz_record_text.c - libFuzzer target for the parsers of what users type into the CLI and
 * the API: state_backend_parse, state_name_normalize and state_fqdn_normalize. Besides memory
 * safety it checks that they are fixed points: a parsed backend formats to text that parses
 * to the same address, and a normalized key normalizes to itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void backend_round_trip(const char *text, bool passthrough)
{
    struct state_backend a, b;
    char err[STATE_ERR_MAX] = "", out[64];

    if (state_backend_parse(text, passthrough, &a, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
        return;
    }
    state_backend_format(&a, passthrough, out);
    if (state_backend_parse(out, passthrough, &b, err, sizeof(err)) != 0 || a.family != b.family ||
        a.port != b.port || memcmp(a.addr, b.addr, 16) != 0)
        abort();
    err[0] = '\0';
    if (state_backend_check(&a, NULL, err, sizeof(err)) != 0 && err[0] == '\0')
        abort();
}

static void key_fixed_point(const char *text,
                            int (*normalize)(const char *, char *, char *, size_t))
{
    char out[STATE_FQDN_MAX + 1], again[STATE_FQDN_MAX + 1], err[STATE_ERR_MAX] = "";

    if (normalize(text, out, err, sizeof(err)) != 0) {
        if (err[0] == '\0')
            abort();
        return;
    }
    if (normalize(out, again, err, sizeof(err)) != 0 || strcmp(out, again) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size > 4096)
        return 0;
    text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    backend_round_trip(text, false);
    backend_round_trip(text, true);
    key_fixed_point(text, state_name_normalize);
    key_fixed_point(text, state_fqdn_normalize);
    free(text);
    return 0;
}
