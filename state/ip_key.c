/*
 * ip_key.c - what a per-client table is keyed on: an IPv4 address, or an IPv6 /64 (state.h
 * says why). Every per-IP limit (proxy connections and rates, the API server, the DNS rate
 * limiter's own coarser prefix aside) keys on this, then hashes it with state_siphash.
 */
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "state/state.h"

bool state_ip_key(const struct sockaddr *sa, uint8_t out[STATE_IP_KEY_LEN])
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(out, 0, STATE_IP_KEY_LEN);
    if (sa->sa_family == AF_INET) {
        out[0] = 4;
        memcpy(out + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

        if (memcmp(a, mapped, sizeof(mapped)) == 0) {
            out[0] = 4;
            memcpy(out + 1, a + 12, 4);
        } else {
            out[0] = 6;
            memcpy(out + 1, a, 8);
        }
        return true;
    }
    return false;
}
