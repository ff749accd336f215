/* A checksum computed on a second thread while the calling thread moves
 * the same bytes to or from a file. Saving or restoring a snapshot reads
 * the KV from memory once for the checksum and once for the copy into or
 * out of the page cache; side by side on two cores the two passes overlap
 * instead of adding up.
 *
 * The helper continues a streaming ns_checksum over a list of pieces. When
 * the bytes are all in memory already (a save) it runs freely; when they are
 * still arriving (a restore) it follows the caller's reports of how many
 * bytes are ready and never reads past them. The result equals checksumming
 * the pieces in order on one thread. */
#ifndef NS_UTIL_CHECKSUM_BEHIND_H
#define NS_UTIL_CHECKSUM_BEHIND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util/checksum.h"

typedef struct ns_checksum_behind ns_checksum_behind;

/* Starts checksumming pieces[0..n) on a new thread, continuing from *ck.
 * all_ready: every byte is there now; otherwise none is until
 * ns_checksum_behind_ready says so. The pieces' memory must stay valid until
 * finish; the array itself is copied. NULL when no thread could be started:
 * the caller then checksums the pieces itself. */
ns_checksum_behind *ns_checksum_behind_start(const ns_checksum *ck, const struct iovec *pieces, int n, bool all_ready);

/* The first `bytes` bytes of the pieces (counted across them) are ready. */
void ns_checksum_behind_ready(ns_checksum_behind *b, uint64_t bytes);

/* Waits for the thread and frees b. With abandon the checksum stops where it
 * is (the caller failed and will not report more bytes) and *ck is left
 * alone; otherwise every byte must have been reported ready, and *ck gets
 * the state after the last piece. */
void ns_checksum_behind_finish(ns_checksum_behind *b, ns_checksum *ck, bool abandon);

#endif
