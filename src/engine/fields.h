/* Reading and writing the fields of tensor blocks at any address: blocks
 * sit at 2-byte (or odd) offsets in files and buffers, so fields are never
 * dereferenced through a wider pointer. File fields are little-endian;
 * ldf/ldi16 read our own activation buffers (Q8_K), in host order. */
#ifndef NS_FIELDS_H
#define NS_FIELDS_H

#include <stdint.h>
#include <string.h>

#include "types.h"

static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline void st16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static inline uint32_t ld32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void st32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)((v >> 8) & 0xff);
    p[2] = (uint8_t)((v >> 16) & 0xff);
    p[3] = (uint8_t)(v >> 24);
}

/* An fp16 field of a block. */
static inline float ldh(const uint8_t *p) { return ns_fp16_to_fp32(ld16(p)); }

static inline float ldf(const uint8_t *p) {
    float f;
    memcpy(&f, p, sizeof f);
    return f;
}

static inline int16_t ldi16(const uint8_t *p) {
    int16_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif
