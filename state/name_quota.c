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
 * Live claims per owner are counted in a chained table keyed by SipHash under the table's
 * random key (owners are remote input), kept up to date by name_table_account, one entry per
 * owner with a live claim.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/name_private.h"

#define NAME_OWNER_INITIAL_BUCKETS 64

static size_t owner_bucket(const struct state_names *names, const uint8_t owner[STATE_OWNER_LEN],
                           size_t count)
{
    return state_siphash(names->seed, owner, STATE_OWNER_LEN) & (count - 1);
}

static struct name_owner *owner_find(const struct state_names *names,
                                     const uint8_t owner[STATE_OWNER_LEN])
{
    if (names->owner_bucket_count == 0)
        return NULL;
    for (struct name_owner *o =
             names->owners[owner_bucket(names, owner, names->owner_bucket_count)];
         o != NULL; o = o->next)
        if (memcmp(o->owner, owner, STATE_OWNER_LEN) == 0)
            return o;
    return NULL;
}

/* One bucket per owner at most; on no memory the chains grow longer. */
static void owner_grow(struct state_names *names)
{
    size_t n =
        names->owner_bucket_count ? names->owner_bucket_count * 2 : NAME_OWNER_INITIAL_BUCKETS;
    struct name_owner **b;

    if (names->owner_bucket_count != 0 && names->owner_count < names->owner_bucket_count)
        return;
    b = calloc(n, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < names->owner_bucket_count; i++) {
        struct name_owner *o = names->owners[i], *next;

        for (; o != NULL; o = next) {
            size_t j = owner_bucket(names, o->owner, n);

            next = o->next;
            o->next = b[j];
            b[j] = o;
        }
    }
    free(names->owners);
    names->owners = b;
    names->owner_bucket_count = n;
}

void name_owner_count(struct state_names *names, const uint8_t owner[STATE_OWNER_LEN], int delta)
{
    struct name_owner *o = owner_find(names, owner), **pp;

    if (o == NULL) {
        if (delta <= 0)
            return;
        owner_grow(names);
        if (names->owner_bucket_count == 0 || (o = calloc(1, sizeof(*o))) == NULL)
            return; /* out of memory: this owner goes uncounted (never over its limit) */
        memcpy(o->owner, owner, STATE_OWNER_LEN);
        pp = &names->owners[owner_bucket(names, owner, names->owner_bucket_count)];
        o->next = *pp;
        *pp = o;
        names->owner_count++;
    }
    if (delta > 0)
        o->live += (size_t)delta;
    else
        o->live = o->live > (size_t)-delta ? o->live - (size_t)-delta : 0;
    if (o->live > 0)
        return;
    for (pp = &names->owners[owner_bucket(names, owner, names->owner_bucket_count)]; *pp != o;
         pp = &(*pp)->next)
        ;
    *pp = o->next;
    free(o);
    names->owner_count--;
}

void name_owner_free_all(struct state_names *names)
{
    for (size_t i = 0; i < names->owner_bucket_count; i++) {
        struct name_owner *o = names->owners[i], *next;

        for (; o != NULL; o = next) {
            next = o->next;
            free(o);
        }
    }
    free(names->owners);
    names->owners = NULL;
    names->owner_bucket_count = names->owner_count = 0;
}

size_t state_names_owner_names(const struct state_names *names,
                               const uint8_t owner[STATE_OWNER_LEN])
{
    const struct name_owner *o = owner_find(names, owner);

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
