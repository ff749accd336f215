/* The snapshot checksum (checksum.h). Four lanes take one 8-byte word each
 * from every 32-byte stripe. A lane's step multiplies the word by an odd
 * constant, xors it in, rotates, and multiplies by the lane's own odd
 * constant. Multiplying the word first matters: a multiply only carries a
 * difference upwards, so without it a flip in a high bit would stay a fixed
 * pattern that a flip in the lane's next word could cancel exactly. Each
 * step is a bijection of the lane for a given word, so a change confined to
 * one lane never vanishes; the four dependency chains are independent, so
 * the CPU runs them side by side. The finish folds the lanes, the length and
 * the last < 32 bytes into one word with steps of the same kind, then
 * avalanches it. */
#include "checksum.h"

#include <string.h>

#define NS_CK_STRIPE 32

static const uint64_t lane_mul[4] = {0x9362da5cc13da58bull, 0x8f7b7676d015b0ddull, 0x8a119b9e16bc1733ull,
                                     0xe09e467ada679f81ull};
static const uint64_t lane_init[4] = {0x8787c0de2f960063ull, 0x99d5269512e74f7bull, 0xa712755f6cace4d5ull,
                                      0xba2dde83458bfed1ull};
#define MIX_A 0x8f7b7676d015b0ddull
#define MIX_B 0xa712755f6cace4d5ull
#define WORD_MUL 0xf2a74de452e6b439ull

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

/* Little-endian on every host, so a file checks the same everywhere. */
static inline uint64_t load64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

static inline uint64_t lane_step(uint64_t lane, uint64_t word, uint64_t mul) {
    return rotl64(lane ^ (word * WORD_MUL), 29) * mul;
}

/* Folds whole stripes into the lanes; returns the bytes consumed. */
static size_t fold_stripes(uint64_t lane[4], const uint8_t *p, size_t n) {
    uint64_t a = lane[0], b = lane[1], c = lane[2], d = lane[3];
    size_t done = 0;
    for (; n - done >= NS_CK_STRIPE; done += NS_CK_STRIPE) {
        const uint8_t *s = p + done;
        a = lane_step(a, load64(s), lane_mul[0]);
        b = lane_step(b, load64(s + 8), lane_mul[1]);
        c = lane_step(c, load64(s + 16), lane_mul[2]);
        d = lane_step(d, load64(s + 24), lane_mul[3]);
    }
    lane[0] = a, lane[1] = b, lane[2] = c, lane[3] = d;
    return done;
}

void ns_checksum_init(ns_checksum *c, uint64_t seed) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < 4; i++) c->lane[i] = lane_init[i] ^ (seed * lane_mul[i]);
}

void ns_checksum_update(ns_checksum *c, const void *data, size_t n) {
    const uint8_t *p = data;
    if (n == 0) return;
    c->total += n;
    if (c->n_tail) {
        size_t take = NS_CK_STRIPE - c->n_tail;
        if (take > n) take = n;
        memcpy(c->tail + c->n_tail, p, take);
        c->n_tail += take;
        p += take;
        n -= take;
        if (c->n_tail < NS_CK_STRIPE) return;
        fold_stripes(c->lane, c->tail, NS_CK_STRIPE);
        c->n_tail = 0;
    }
    size_t done = fold_stripes(c->lane, p, n);
    c->n_tail = n - done;
    memcpy(c->tail, p + done, c->n_tail);
}

static inline uint64_t avalanche(uint64_t h) {
    h ^= h >> 29;
    h *= MIX_A;
    h ^= h >> 32;
    h *= MIX_B;
    h ^= h >> 29;
    h *= MIX_A;
    h ^= h >> 32;
    return h;
}

uint64_t ns_checksum_final(const ns_checksum *c) {
    uint64_t h = c->total * MIX_B;
    for (int i = 0; i < 4; i++) h = rotl64(h ^ c->lane[i], 23) * lane_mul[i];
    size_t i = 0;
    for (; i + 8 <= c->n_tail; i += 8) h = rotl64(h ^ (load64(c->tail + i) * WORD_MUL), 27) * MIX_A;
    for (; i < c->n_tail; i++) h = rotl64(h ^ (c->tail[i] * MIX_A), 11) * MIX_B;
    return avalanche(h);
}

uint64_t ns_checksum64(const void *data, size_t n) {
    ns_checksum c;
    ns_checksum_init(&c, 0);
    ns_checksum_update(&c, data, n);
    return ns_checksum_final(&c);
}
