/*
 * log_format.h - the pieces of a log line that the daemon's log (log.c) and the access log
 * (access_format.c) share, so both write the same timestamps and the same JSON strings.
 * Private to node/.
 */
#ifndef WEBGW_NODE_LOG_FORMAT_H
#define WEBGW_NODE_LOG_FORMAT_H

#include <stddef.h>
#include <time.h>

#define NODE_LOG_TS_MAX 32 /* "2026-12-04T16:38:17.123Z" and its NUL, with room */

/* Writes "YYYY-MM-DDTHH:MM:SS" (UTC, no fraction) of t into out[NODE_LOG_TS_MAX]; returns its
 * length (19). */
size_t node_log_ts_seconds(time_t t, char *out);

/* Appends `s` to out[len..cap) as the inside of a JSON string and returns the new length.
 * '"', '\\' and control bytes are escaped; valid UTF-8 is copied; a byte that is not part of
 * valid UTF-8 becomes \u00XX, so the line is always valid JSON text. Stops early, on a whole
 * character, when fewer than 8 bytes of room would be left. */
size_t node_log_json_escape(char *out, size_t len, size_t cap, const char *s);

#endif
