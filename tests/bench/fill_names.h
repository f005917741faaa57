/*
 * fill_names.h - a data dir holding N routed names for the daemon, written straight into the
 * store and compacted into a snapshot: tests/bench/report.sh's "1M names routed" measurement
 * (bench_fill_names) and the start and group-commit tests (tests/node/test_store_sync.c).
 */
#ifndef WEBGW_TESTS_FILL_NAMES_H
#define WEBGW_TESTS_FILL_NAMES_H

#include <stdbool.h>

#include "state/state.h"

/* Writes n proxy names app-0000000 .. app-<n-1> into the data dir `dir` (created if missing),
 * each with the one backend `be`. With owner NULL, 64 made-up owners and filler signatures
 * (1M names in seconds): a snapshot's load and the merge do not verify them (the API and
 * gossip did, for records that came that way), so only a gateway alone can serve such a dir.
 * With an owner key, every record is that owner's, signed (gossip accepts them: give
 * --max-names-per-owner 0 past 1,000 names). With `witnessed`, the dir also gets a node
 * identity (dir/node.key, as `webgw identity` makes it) and each record that node's witness
 * (signed when the records are), as a gateway that served the names restarts with; without,
 * it is a data dir from before witnesses, which the daemon witnesses at start. Returns 0, or
 * -1 with err set. */
int fill_names(const char *dir, long n, const struct state_backend *be,
               const struct state_key *owner, bool witnessed, char *err, size_t errlen);

#endif
