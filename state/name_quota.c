/*
 * name_quota.c - growth limits of the record set: live names per owner and records in all.
 *
 * Anyone can make owner keys, and a fleet member can gossip whatever its keys signed, so
 * without a limit one party grows every node's memory and disk without bound. The API and the
 * gossip receive path ask state_names_quota before a record takes a new place: the API
 * answers 403 (owner) or 429 (fleet), gossip drops the record and counts it. Updates of what
 * is kept always pass, so a limit never stops an owner from changing or releasing its names.
 *
 * The rule is the same on every node and is checked against what the node holds. Nodes that
 * hold the same set refuse the same records; an owner that races two gateways past its limit
 * can leave nodes with different subsets of its names (each within the limit), which stays
 * so until the owner releases some.
 *
 * Live claims per owner are counted in state's keyed hash table (hash_table.c: SipHash under
 * the table's random key, owners are remote input), kept up to date by name_table_account,
 * one entry per owner with a live claim.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/name_private.h"

static bool owner_is(const struct state_hash_node *n, const void *owner)
{
    return memcmp(STATE_HASH_ENTRY(n, struct name_owner, node)->owner, owner, STATE_OWNER_LEN) == 0;
}

static struct name_owner *owner_find(const struct state_names *names,
                                     const uint8_t owner[STATE_OWNER_LEN], uint64_t hash)
{
    struct state_hash_node *n = state_hash_table_find(&names->owners, hash, owner_is, owner);

    return n ? STATE_HASH_ENTRY(n, struct name_owner, node) : NULL;
}

void name_owner_count(struct state_names *names, const uint8_t owner[STATE_OWNER_LEN], int delta)
{
    uint64_t hash = state_hash_table_hash(&names->owners, owner, STATE_OWNER_LEN);
    struct name_owner *o = owner_find(names, owner, hash);

    if (o == NULL) {
        if (delta <= 0 || (o = calloc(1, sizeof(*o))) == NULL)
            return; /* out of memory: this owner goes uncounted (never over its limit) */
        memcpy(o->owner, owner, STATE_OWNER_LEN);
        if (state_hash_table_insert(&names->owners, &o->node, hash) != 0) {
            free(o);
            return;
        }
    }
    if (delta > 0)
        o->live += (size_t)delta;
    else
        o->live = o->live > (size_t)-delta ? o->live - (size_t)-delta : 0;
    if (o->live > 0)
        return;
    state_hash_table_remove(&names->owners, &o->node);
    free(o);
}

void name_owner_free_all(struct state_names *names)
{
    state_hash_table_free_all(&names->owners, offsetof(struct name_owner, node));
}

size_t state_names_owner_names(const struct state_names *names,
                               const uint8_t owner[STATE_OWNER_LEN])
{
    const struct name_owner *o =
        owner_find(names, owner, state_hash_table_hash(&names->owners, owner, STATE_OWNER_LEN));

    return o != NULL ? o->live : 0;
}

int state_names_quota(const struct state_names *names, const struct state_record *rec,
                      const struct state_quota *q, char *err, size_t errlen)
{
    const struct name_key *k = name_table_find(names, rec->name);
    const struct name_claim *cur = NULL;
    char hex[STATE_OWNER_HEX_LEN + 1];
    size_t live;

    for (int i = 0; k != NULL && i < k->claim_count; i++)
        if (memcmp(k->claims[i]->owner, rec->owner, STATE_OWNER_LEN) == 0)
            cur = k->claims[i];
    if (cur == NULL && q->records_max != 0 && names->record_count >= q->records_max) {
        snprintf(err, errlen, "%s refused: the fleet is at its limit of %zu records (max-records)",
                 rec->name, q->records_max);
        return STATE_EFULL;
    }
    if (rec->kind == STATE_RECORD_RELEASE || (cur != NULL && cur->kind != STATE_RECORD_RELEASE))
        return 0;
    live = state_names_owner_names(names, rec->owner);
    if (q->names_per_owner != 0 && live >= q->names_per_owner) {
        state_owner_format(rec->owner, hex);
        snprintf(err, errlen,
                 "%s refused: owner %.16s is at its limit of %zu names (max-names-per-owner)",
                 rec->name, hex, q->names_per_owner);
        return STATE_EQUOTA;
    }
    return 0;
}
