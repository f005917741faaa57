/*
 * record.c - small pieces every record file needs: kind names, the wall clock, and the
 * error-message helpers that keep untrusted bytes out of log lines.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "state/record_internal.h"

const char *state_record_kind_name(enum state_record_kind kind)
{
    switch (kind) {
    case STATE_RECORD_RESERVE:
        return "reserve";
    case STATE_RECORD_PROXY:
        return "proxy";
    case STATE_RECORD_FQDN:
        return "fqdn";
    case STATE_RECORD_RELEASE:
        return "release";
    }
    return "unknown";
}

int state_record_kind_valid(int kind)
{
    return kind >= STATE_RECORD_RESERVE && kind <= STATE_RECORD_RELEASE;
}

uint64_t state_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void state_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static size_t quoted_len(unsigned char c)
{
    return (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? 1 : 4;
}

void state_quote(const char *in, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t total = 0, limit, o = 0;

    if (outlen == 0)
        return;
    for (size_t i = 0; i < len; i++)
        total += quoted_len((unsigned char)in[i]);
    /* when the whole string does not fit, keep room for "..." so a cut string says so */
    limit = total < outlen ? outlen - 1 : (outlen > 4 ? outlen - 4 : 0);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];

        if (o + quoted_len(c) > limit)
            break;
        if (quoted_len(c) == 1) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (total >= outlen && outlen > 4) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}
