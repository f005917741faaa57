/*
 * fuzz_gossip_answer.c - libFuzzer target for the push-pull answer parser.
 *
 * A member parses a REPLY (member list, bucket hashes, item entries) or an ITEMS list (items,
 * wants, member list) only from a peer whose exchange it waits for: the input is handed to a
 * member that waits for every kind of answer from that peer, so each mutation reaches the
 * parsers, the bounds checks (entries, wants) and the merge of what they yield. Oracle: no
 * crash, no sanitizer report, no leak, and the member still ticks.
 */
#include <stdlib.h>

#include "tests/fuzz/fuzz_gossip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gossip_addr peer;
    struct gossip *g = fg_member("fuzz-self", 7946, false, true, NULL);

    if (g == NULL)
        abort();
    fg_addr(&peer, 7947); /* peer-1 */
    gossip_pushpull_expect(g, &peer, GPP_DIGEST_SENT);
    gossip_pushpull_expect(g, &peer, GPP_ITEMS_SENT);
    gossip_pushpull_expect(g, &peer, GPP_REPLY_SENT);
    gossip_pushpull_receive(g, &peer, data, size);
    gossip_tick(g);
    gossip_free(g);
    return 0;
}
