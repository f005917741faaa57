/*
 * sd_notify.c - tells systemd (Type=notify) that we are ready, reloading or stopping.
 *
 * The protocol is one datagram on the unix socket named by $NOTIFY_SOCKET ('@' = abstract
 * namespace); writing it ourselves saves a library for ten lines.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/node_internal.h"

void node_sd_notify(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sun;
    size_t plen;
    int fd;

    if (!path || (path[0] != '/' && path[0] != '@'))
        return;
    plen = strlen(path);
    if (plen >= sizeof(sun.sun_path))
        return;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, plen);
    if (path[0] == '@')
        sun.sun_path[0] = '\0';
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun,
               (socklen_t)(offsetof(struct sockaddr_un, sun_path) + plen)) < 0)
        node_log(NODE_LOG_DEBUG, "systemd", "sd_notify %s failed", state);
    close(fd);
}
