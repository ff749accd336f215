/* A fast non-cryptographic 64-bit checksum for large buffers (snapshot
 * files): it catches torn writes and bit rot, not tampering. It must run
 * near memory speed (>= 10 GB/s on one core of an AVX2 machine) so that
 * checking a snapshot costs little next to reading it.
 *
 * Streaming: ns_checksum_update may be called with any split of the data
 * and gives the same result as one call over the whole. */
#ifndef NS_UTIL_CHECKSUM_H
#define NS_UTIL_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t lane[4];
    uint8_t tail[32]; /* bytes not yet folded into the lanes */
    size_t n_tail;
    uint64_t total;   /* bytes seen */
} ns_checksum;

void ns_checksum_init(ns_checksum *c, uint64_t seed);
void ns_checksum_update(ns_checksum *c, const void *data, size_t n);
uint64_t ns_checksum_final(const ns_checksum *c);
/* One call: init(seed 0) + update + final. */
uint64_t ns_checksum64(const void *data, size_t n);

#endif
