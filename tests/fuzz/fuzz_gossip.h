/*
 * fuzz_gossip.h - what the gossip fuzz targets and their seed generator must agree on: the
 * mode byte that starts every input, the cluster label and the test key, and a member to feed.
 *
 * The packet target reads the first input byte as a mode so one corpus reaches every decoder:
 * a bare datagram body, a plain envelope, an encrypted envelope (opened with the fixed test
 * key, so seeds sealed with it decrypt and mutations of them exercise the tag check), and the
 * whole receive path of a live member for datagrams and for stream (push-pull) messages.
 */
#ifndef WEBGW_FUZZ_GOSSIP_H
#define WEBGW_FUZZ_GOSSIP_H

#include "gossip/gossip_int.h"

enum fuzz_gossip_mode {
    FG_BODY = 0,        /* datagram body: gproto_decode, message after message */
    FG_ENV_PLAIN = 1,   /* genv_open without keys, then the body */
    FG_ENV_KEYED = 2,   /* genv_open with the test key, then the body */
    FG_RECV_DGRAM = 3,  /* gossip_receive(datagram) on a member with peers */
    FG_RECV_STREAM = 4, /* gossip_receive(stream): the push-pull decoder */
    FG_MODES = 5
};

#define FG_LABEL "fuzz-cluster"
#define FG_NOW_MS 1000000 /* the members' clock, and the time seeds are sealed at */
/* base64 of the key below, for keyring seeds */
#define FG_KEY_B64 "ZnV6ei1nb3NzaXAtdGVzdC1rZXktMzItYnl0ZXMhISE="
static const uint8_t fg_key[GOSSIP_KEY_LEN + 1] = "fuzz-gossip-test-key-32-bytes!!!";

/* A member "fuzz-self" at 127.0.0.1:7946 that knows peers "peer-1".."peer-3" (so suspect,
 * dead and alive messages reach existing entries), on a transport that drops what it sends
 * unless `capture` is set, and a fixed clock. Plain when `keyed` is false. */
struct fg_capture {
    void (*fn)(void *ctx, bool stream, const uint8_t *buf, size_t len);
    void *ctx;
};
struct gossip *fg_member(const char *id, uint16_t port, bool keyed, bool peers,
                         struct fg_capture *capture);
/* Items the member holds (3; the seed generator gives one side fewer so push-pull repairs). */
extern size_t fg_item_count;
void fg_addr(struct gossip_addr *a, uint16_t port); /* 127.0.0.1:port */

#endif /* WEBGW_FUZZ_GOSSIP_H */
