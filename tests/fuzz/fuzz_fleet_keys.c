/*
 * fuzz_fleet_keys.c - libFuzzer target for state_fleet_keys_parse(), the reader of the fleet
 * roster (--fleet-keys) an operator writes by hand, the sibling of fuzz_gossip_keyring. Besides
 * memory safety it checks the contract: a refusal always says why (naming the file and a
 * line) and leaves no key behind; an accepted file holds at most STATE_FLEET_KEYS_MAX distinct
 * keys with printable labels; and writing them back out as "HEX LABEL" lines parses to the
 * same keys and labels in the same order.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct state_fleet_keys fk, again;
    static char text[STATE_FLEET_KEYS_MAX * (STATE_OWNER_HEX_LEN + STATE_FLEET_LABEL_MAX + 2)];
    char err[STATE_ERR_MAX] = "";
    size_t tlen = 0;

    if (state_fleet_keys_parse((const char *)data, size, "f", &fk, err, sizeof(err)) != 0) {
        if (strncmp(err, "f:", 2) != 0 || fk.count != 0)
            abort();
        return 0;
    }
    if (fk.count > STATE_FLEET_KEYS_MAX)
        abort();
    for (size_t i = 0; i < fk.count; i++) {
        char hex[STATE_OWNER_HEX_LEN + 1];

        for (size_t j = 0; j < i; j++)
            if (memcmp(fk.keys[i], fk.keys[j], STATE_OWNER_LEN) == 0)
                abort();
        for (const char *p = fk.labels[i]; *p; p++)
            if (*p < 0x20 || *p > 0x7e || *p == '#')
                abort();
        state_owner_format(fk.keys[i], hex);
        tlen += (size_t)snprintf(text + tlen, sizeof(text) - tlen, "%s %s\n", hex, fk.labels[i]);
    }
    if (state_fleet_keys_parse(text, tlen, "f", &again, err, sizeof(err)) != 0 ||
        again.count != fk.count || memcmp(again.keys, fk.keys, fk.count * sizeof(fk.keys[0])) != 0)
        abort();
    for (size_t i = 0; i < fk.count; i++)
        if (strcmp(again.labels[i], fk.labels[i]) != 0)
            abort();
    return 0;
}
