/*
 * access_sink.c - where access lines go: stderr (the default, shared with the daemon's own
 * lines), a file, or syslog. Only the access log's writer thread calls these.
 *
 * The writer must never hang on a sink, or it could not stop: a file we open is opened
 * O_NONBLOCK (a FIFO then answers EAGAIN instead of blocking; a regular file ignores it),
 * syslog datagrams are sent MSG_DONTWAIT, and before writing to stderr, which we share and must
 * not switch to non-blocking, we poll it for room (or send MSG_DONTWAIT when it is a socket,
 * as under systemd). On a pipe, writes are at most PIPE_BUF bytes
 * of whole lines, so the kernel never interleaves them with the daemon's own log lines.
 *
 * Syslog is spoken directly (RFC 3164 lines, facility daemon, severity info, to /dev/log or the
 * socket named after "syslog:"), not through syslog(3), whose send blocks while the
 * receiver's queue is full.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "node/access_log.h"

#define SYSLOG_PRI 30 /* LOG_DAEMON (3) * 8 + LOG_INFO (6) */

int access_sink_parse(const char *dest, struct access_sink *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->fd = -1;
    if (dest[0] == '\0' || strlen(dest) >= sizeof(out->path)) {
        snprintf(err, errlen, "expected stderr, syslog, syslog:SOCKET, off or a file path");
        return -1;
    }
    if (strcmp(dest, "off") == 0) {
        out->kind = ACCESS_SINK_OFF;
    } else if (strcmp(dest, "stderr") == 0) {
        out->kind = ACCESS_SINK_STDERR;
    } else if (strcmp(dest, "syslog") == 0 || strncmp(dest, "syslog:", 7) == 0) {
        const char *sock = dest[6] == ':' ? dest + 7 : ACCESS_SYSLOG_PATH;
        struct sockaddr_un sun;
        if (sock[0] != '/' || strlen(sock) >= sizeof(sun.sun_path)) {
            snprintf(err, errlen, "syslog:SOCKET needs an absolute socket path under %zu bytes",
                     sizeof(sun.sun_path));
            return -1;
        }
        out->kind = ACCESS_SINK_SYSLOG;
        snprintf(out->path, sizeof(out->path), "%s", sock);
    } else {
        out->kind = ACCESS_SINK_FILE;
        snprintf(out->path, sizeof(out->path), "%s", dest);
    }
    return 0;
}

int access_sink_open(struct access_sink *s, char *err, size_t errlen)
{
    struct stat st;

    s->pid = getpid();
    switch (s->kind) {
    case ACCESS_SINK_OFF:
        return 0;
    case ACCESS_SINK_STDERR:
        s->fd = STDERR_FILENO;
        break;
    case ACCESS_SINK_FILE:
        s->fd = open(s->path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0640);
        if (s->fd < 0) {
            snprintf(err, errlen, "cannot open %s: %s", s->path, strerror(errno));
            return -1;
        }
        break;
    case ACCESS_SINK_SYSLOG: {
        struct sockaddr_un sun = {.sun_family = AF_UNIX};
        size_t plen = strnlen(s->path, sizeof(sun.sun_path) - 1); /* checked by the parse */
        memcpy(sun.sun_path, s->path, plen);
        s->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (s->fd < 0 || connect(s->fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
            snprintf(err, errlen, "syslog: cannot connect to %s: %s", s->path, strerror(errno));
            access_sink_close(s);
            return -1;
        }
        return 0;
    }
    }
    s->pipe_like = fstat(s->fd, &st) != 0 || !S_ISREG(st.st_mode);
    s->socket = s->pipe_like && S_ISSOCK(st.st_mode); /* journald's stderr: send(MSG_DONTWAIT) */
    return 0;
}

void access_sink_close(struct access_sink *s)
{
    if (s->fd >= 0 && s->fd != STDERR_FILENO)
        close(s->fd);
    s->fd = -1;
}

/* Waits until fd takes bytes, wake_fd has news, or wait_ms passed (0: just looks). True when
 * fd is ready. */
static bool sink_wait(int fd, int wait_ms, int wake_fd)
{
    struct pollfd p[2] = {{.fd = fd, .events = POLLOUT}, {.fd = wake_fd, .events = POLLIN}};

    if (poll(p, wake_fd >= 0 ? 2 : 1, wait_ms > 0 ? wait_ms : 0) <= 0)
        return false;
    return (p[0].revents & (POLLOUT | POLLERR | POLLHUP)) != 0;
}

/* Length of the longest prefix of buf[0..len) made of whole lines and at most max bytes. */
static size_t whole_lines(const char *buf, size_t len, size_t max)
{
    size_t n = len < max ? len : max;

    while (n > 0 && buf[n - 1] != '\n')
        n--;
    return n;
}

/* One datagram per line: "<30>Mmm dd hh:mm:ss webgw[PID]: LINE" (RFC 3164, local time). */
static ssize_t sink_syslog(struct access_sink *s, const char *buf, size_t len, int wait_ms,
                           int wake_fd)
{
    char msg[ACCESS_LINE_MAX + 64], stamp[32];
    size_t done = 0;
    time_t now = time(NULL);
    struct tm tm;

    localtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    while (done < len) {
        const char *nl = memchr(buf + done, '\n', len - done);
        size_t line = (size_t)(nl - (buf + done));
        int n = snprintf(msg, sizeof(msg), "<%d>%s webgw[%ld]: %.*s", SYSLOG_PRI, stamp,
                         (long)s->pid, (int)line, buf + done);
        if (n < 0 || (size_t)n >= sizeof(msg))
            n = (int)sizeof(msg) - 1;
        if (send(s->fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS)
                return done ? (ssize_t)done : -1;
            if (!sink_wait(s->fd, wait_ms, wake_fd))
                return (ssize_t)done;
            wait_ms = 0; /* one wait per call: the writer comes back to its rings */
            continue;
        }
        done += line + 1;
    }
    return (ssize_t)done;
}

ssize_t access_sink_write(struct access_sink *s, const char *buf, size_t len, int wait_ms,
                          int wake_fd)
{
    size_t done = 0;

    if (s->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (s->kind == ACCESS_SINK_SYSLOG)
        return sink_syslog(s, buf, len, wait_ms, wake_fd);
    while (done < len) {
        size_t n = s->pipe_like ? whole_lines(buf + done, len - done, PIPE_BUF) : len - done;
        ssize_t w;
        if (n == 0) /* a line over PIPE_BUF: not made by access_format (ACCESS_LINE_MAX) */
            n = len - done;
        /* stderr is shared and blocking: write only what it has room for right now */
        if (s->fd == STDERR_FILENO && s->pipe_like && !s->socket) {
            if (!sink_wait(s->fd, wait_ms, wake_fd))
                break;
            wait_ms = 0;
        }
        if (s->socket)
            w = send(s->fd, buf + done, n, MSG_DONTWAIT | MSG_NOSIGNAL);
        else
            w = write(s->fd, buf + done, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return done ? (ssize_t)done : -1;
            if (!sink_wait(s->fd, wait_ms, wake_fd))
                break;
            wait_ms = 0;
            continue;
        }
        done += (size_t)w;
    }
    return (ssize_t)done;
}
