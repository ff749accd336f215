/* Scalar block decoders, activation quantizers and dot products for every
 * tensor type the engine computes with.
 *
 * The block layouts are those of GGUF files (ggml's): little-endian fields,
 * packed without padding. Files place blocks at any even offset and the
 * callers may hand us rows at any offset, so fields are read through byte
 * pointers (ld16 / memcpy), never through a possibly misaligned struct
 * pointer. The dot products follow the reference engine's scalar path:
 * integer sums inside a block, then one multiplication by the scales.
 *
 * Each type has its own static functions (dequant_*, quant_*, dot_*) so that
 * SIMD variants can replace them one by one behind ns_kernels(). */
#include "quant.h"

#include "fields.h"

#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>

#include "kernels_x86.h"

_Static_assert(sizeof(ns_block_q4_0) == 18, "q4_0 block size");
_Static_assert(sizeof(ns_block_q4_1) == 20, "q4_1 block size");
_Static_assert(sizeof(ns_block_q5_0) == 22, "q5_0 block size");
_Static_assert(sizeof(ns_block_q5_1) == 24, "q5_1 block size");
_Static_assert(sizeof(ns_block_q8_0) == 34, "q8_0 block size");
_Static_assert(sizeof(ns_block_q8_1) == 36, "q8_1 block size");
_Static_assert(sizeof(ns_block_q2_K) == 84, "q2_K block size");
_Static_assert(sizeof(ns_block_q3_K) == 110, "q3_K block size");
_Static_assert(sizeof(ns_block_q4_K) == 144, "q4_K block size");
_Static_assert(sizeof(ns_block_q5_K) == 176, "q5_K block size");
_Static_assert(sizeof(ns_block_q6_K) == 210, "q6_K block size");
_Static_assert(sizeof(ns_block_q8_K) == 292, "q8_K block size");

/* ---- field access ------------------------------------------------------ */

#define OFF(block, field) offsetof(block, field)

/* Round half to even, as the reference engine's nearest_int (valid far beyond
 * the |v| <= 127 range it is used for here). */
static inline int nearest_int(float f) { return (int)lrintf(f); }

static inline float max_abs(const float *x, int n) {
    float amax = 0.0f;
    for (int j = 0; j < n; j++) {
        const float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    return amax;
}

/* ---- F32 / F16 / BF16 ------------------------------------------------- */

static void dequant_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void quant_f32(const float *src, void *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static float dot_f32_f32(int64_t n, const void *w, const void *x) {
    const uint8_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)ldf(a + 4 * i) * (double)ldf(b + 4 * i);
    return (float)sum;
}

static void dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ldh(p + 2 * i);
}

static void quant_f16(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) st16(p + 2 * i, ns_fp32_to_fp16(src[i]));
}

static float dot_f16_f16(int64_t n, const void *w, const void *x) {
    const uint8_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++) sum += (double)(ldh(a + 2 * i) * ldh(b + 2 * i));
    return (float)sum;
}

static void axpy_n_f32(int64_t n, const void *x, const float *a, int ny, float *y, size_t ys) {
    const uint8_t *p = x;
    for (int j = 0; j < ny; j++)
        for (int64_t i = 0; i < n; i++) y[(size_t)j * ys + i] += a[j] * ldf(p + 4 * i);
}

static void axpy_n_f16(int64_t n, const void *x, const float *a, int ny, float *y, size_t ys) {
    const uint8_t *p = x;
    for (int j = 0; j < ny; j++)
        for (int64_t i = 0; i < n; i++) y[(size_t)j * ys + i] += a[j] * ldh(p + 2 * i);
}

static void dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    for (int64_t i = 0; i < n; i++) dst[i] = ns_bf16_to_fp32(ld16(p + 2 * i));
}

static void quant_bf16(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    for (int64_t i = 0; i < n; i++) st16(p + 2 * i, ns_fp32_to_bf16(src[i]));
}

static float dot_bf16_bf16(int64_t n, const void *w, const void *x) {
    const uint8_t *a = w, *b = x;
    double sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        sum += (double)(ns_bf16_to_fp32(ld16(a + 2 * i)) * ns_bf16_to_fp32(ld16(b + 2 * i)));
    return (float)sum;
}

/* ---- Q4_0: d * (q - 8), low nibbles are elements 0..15, high 16..31 ---- */

static void dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q4_0), dst += NS_QK) {
        const float d = ldh(b + OFF(ns_block_q4_0, d));
        const uint8_t *qs = b + OFF(ns_block_q4_0, qs);
        for (int j = 0; j < NS_QK / 2; j++) {
            dst[j] = (float)((qs[j] & 0x0F) - 8) * d;
            dst[j + NS_QK / 2] = (float)((qs[j] >> 4) - 8) * d;
        }
    }
}

static void quant_q4_0(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q4_0), src += NS_QK) {
        /* the value of largest magnitude maps to -8 */
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < NS_QK; j++) {
            if (fabsf(src[j]) > amax) { amax = fabsf(src[j]); max = src[j]; }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        st16(b + OFF(ns_block_q4_0, d), ns_fp32_to_fp16(d));
        uint8_t *qs = b + OFF(ns_block_q4_0, qs);
        for (int j = 0; j < NS_QK / 2; j++) {
            int q0 = (int8_t)(src[j] * id + 8.5f);
            int q1 = (int8_t)(src[j + NS_QK / 2] * id + 8.5f);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static float dot_q4_0_q8_0(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK; i++, bw += sizeof(ns_block_q4_0), bx += sizeof(ns_block_q8_0)) {
        const uint8_t *qw = bw + OFF(ns_block_q4_0, qs);
        const int8_t *qx = (const int8_t *)(bx + OFF(ns_block_q8_0, qs));
        int isum = 0;
        for (int j = 0; j < NS_QK / 2; j++) {
            isum += ((qw[j] & 0x0F) - 8) * qx[j];
            isum += ((qw[j] >> 4) - 8) * qx[j + NS_QK / 2];
        }
        sum += (float)isum * (ldh(bw + OFF(ns_block_q4_0, d)) * ldh(bx + OFF(ns_block_q8_0, d)));
    }
    return sum;
}

/* ---- Q4_1: d * q + m ---------------------------------------------------- */

static void dequant_q4_1(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q4_1), dst += NS_QK) {
        const float d = ldh(b + OFF(ns_block_q4_1, d));
        const float m = ldh(b + OFF(ns_block_q4_1, m));
        const uint8_t *qs = b + OFF(ns_block_q4_1, qs);
        for (int j = 0; j < NS_QK / 2; j++) {
            dst[j] = (float)(qs[j] & 0x0F) * d + m;
            dst[j + NS_QK / 2] = (float)(qs[j] >> 4) * d + m;
        }
    }
}

static void min_max(const float *x, int n, float *mn, float *mx) {
    float lo = x[0], hi = x[0];
    for (int j = 1; j < n; j++) {
        if (x[j] < lo) lo = x[j];
        if (x[j] > hi) hi = x[j];
    }
    *mn = lo;
    *mx = hi;
}

static void quant_q4_1(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q4_1), src += NS_QK) {
        float mn, mx;
        min_max(src, NS_QK, &mn, &mx);
        const float d = (mx - mn) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        st16(b + OFF(ns_block_q4_1, d), ns_fp32_to_fp16(d));
        st16(b + OFF(ns_block_q4_1, m), ns_fp32_to_fp16(mn));
        uint8_t *qs = b + OFF(ns_block_q4_1, qs);
        for (int j = 0; j < NS_QK / 2; j++) {
            int q0 = (int8_t)((src[j] - mn) * id + 0.5f);
            int q1 = (int8_t)((src[j + NS_QK / 2] - mn) * id + 0.5f);
            if (q0 > 15) q0 = 15;
            if (q1 > 15) q1 = 15;
            qs[j] = (uint8_t)(q0 | (q1 << 4));
        }
    }
}

static float dot_q4_1_q8_1(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK; i++, bw += sizeof(ns_block_q4_1), bx += sizeof(ns_block_q8_1)) {
        const uint8_t *qw = bw + OFF(ns_block_q4_1, qs);
        const int8_t *qx = (const int8_t *)(bx + OFF(ns_block_q8_1, qs));
        int isum = 0;
        for (int j = 0; j < NS_QK / 2; j++) {
            isum += (qw[j] & 0x0F) * qx[j];
            isum += (qw[j] >> 4) * qx[j + NS_QK / 2];
        }
        const float dw = ldh(bw + OFF(ns_block_q4_1, d)), mw = ldh(bw + OFF(ns_block_q4_1, m));
        const float dx = ldh(bx + OFF(ns_block_q8_1, d)), sx = ldh(bx + OFF(ns_block_q8_1, s));
        sum += (dw * dx) * (float)isum + mw * sx;
    }
    return sum;
}

/* ---- Q5_0: d * (q - 16); bit 4 of element j is bit j of qh ------------- */

static void dequant_q5_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q5_0), dst += NS_QK) {
        const float d = ldh(b + OFF(ns_block_q5_0, d));
        const uint32_t qh = ld32(b + OFF(ns_block_q5_0, qh));
        const uint8_t *qs = b + OFF(ns_block_q5_0, qs);
        for (int j = 0; j < NS_QK / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            dst[j] = (float)(((qs[j] & 0x0F) | h0) - 16) * d;
            dst[j + NS_QK / 2] = (float)(((qs[j] >> 4) | h1) - 16) * d;
        }
    }
}

static void quant_q5_0(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q5_0), src += NS_QK) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < NS_QK; j++) {
            if (fabsf(src[j]) > amax) { amax = fabsf(src[j]); max = src[j]; }
        }
        const float d = max / -16.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        st16(b + OFF(ns_block_q5_0, d), ns_fp32_to_fp16(d));
        uint8_t *qs = b + OFF(ns_block_q5_0, qs);
        uint32_t qh = 0;
        for (int j = 0; j < NS_QK / 2; j++) {
            int q0 = (int8_t)(src[j] * id + 16.5f);
            int q1 = (int8_t)(src[j + NS_QK / 2] * id + 16.5f);
            if (q0 > 31) q0 = 31;
            if (q1 > 31) q1 = 31;
            qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        st32(b + OFF(ns_block_q5_0, qh), qh);
    }
}

static float dot_q5_0_q8_0(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK; i++, bw += sizeof(ns_block_q5_0), bx += sizeof(ns_block_q8_0)) {
        const uint32_t qh = ld32(bw + OFF(ns_block_q5_0, qh));
        const uint8_t *qw = bw + OFF(ns_block_q5_0, qs);
        const int8_t *qx = (const int8_t *)(bx + OFF(ns_block_q8_0, qs));
        int isum = 0;
        for (int j = 0; j < NS_QK / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            isum += (((qw[j] & 0x0F) | h0) - 16) * qx[j];
            isum += (((qw[j] >> 4) | h1) - 16) * qx[j + NS_QK / 2];
        }
        sum += (float)isum * (ldh(bw + OFF(ns_block_q5_0, d)) * ldh(bx + OFF(ns_block_q8_0, d)));
    }
    return sum;
}

/* ---- Q5_1: d * q + m, high bits as Q5_0 ---------------------------------- */

static void dequant_q5_1(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q5_1), dst += NS_QK) {
        const float d = ldh(b + OFF(ns_block_q5_1, d));
        const float m = ldh(b + OFF(ns_block_q5_1, m));
        const uint32_t qh = ld32(b + OFF(ns_block_q5_1, qh));
        const uint8_t *qs = b + OFF(ns_block_q5_1, qs);
        for (int j = 0; j < NS_QK / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            dst[j] = (float)((qs[j] & 0x0F) | h0) * d + m;
            dst[j + NS_QK / 2] = (float)((qs[j] >> 4) | h1) * d + m;
        }
    }
}

static void quant_q5_1(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q5_1), src += NS_QK) {
        float mn, mx;
        min_max(src, NS_QK, &mn, &mx);
        const float d = (mx - mn) / 31.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        st16(b + OFF(ns_block_q5_1, d), ns_fp32_to_fp16(d));
        st16(b + OFF(ns_block_q5_1, m), ns_fp32_to_fp16(mn));
        uint8_t *qs = b + OFF(ns_block_q5_1, qs);
        uint32_t qh = 0;
        for (int j = 0; j < NS_QK / 2; j++) {
            int q0 = (uint8_t)((src[j] - mn) * id + 0.5f);
            int q1 = (uint8_t)((src[j + NS_QK / 2] - mn) * id + 0.5f);
            if (q0 > 31) q0 = 31;
            if (q1 > 31) q1 = 31;
            qs[j] = (uint8_t)((q0 & 0x0F) | ((q1 & 0x0F) << 4));
            qh |= (uint32_t)((q0 >> 4) & 1) << j;
            qh |= (uint32_t)((q1 >> 4) & 1) << (j + 16);
        }
        st32(b + OFF(ns_block_q5_1, qh), qh);
    }
}

static float dot_q5_1_q8_1(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK; i++, bw += sizeof(ns_block_q5_1), bx += sizeof(ns_block_q8_1)) {
        const uint32_t qh = ld32(bw + OFF(ns_block_q5_1, qh));
        const uint8_t *qw = bw + OFF(ns_block_q5_1, qs);
        const int8_t *qx = (const int8_t *)(bx + OFF(ns_block_q8_1, qs));
        int isum = 0;
        for (int j = 0; j < NS_QK / 2; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4;
            const int h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            isum += ((qw[j] & 0x0F) | h0) * qx[j];
            isum += ((qw[j] >> 4) | h1) * qx[j + NS_QK / 2];
        }
        const float dw = ldh(bw + OFF(ns_block_q5_1, d)), mw = ldh(bw + OFF(ns_block_q5_1, m));
        const float dx = ldh(bx + OFF(ns_block_q8_1, d)), sx = ldh(bx + OFF(ns_block_q8_1, s));
        sum += (dw * dx) * (float)isum + mw * sx;
    }
    return sum;
}

/* ---- Q8_0 / Q8_1: d * q, scale amax / 127, round half away from zero --- */

static void dequant_q8_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q8_0), dst += NS_QK) {
        const float d = ldh(b + OFF(ns_block_q8_0, d));
        const int8_t *qs = (const int8_t *)(b + OFF(ns_block_q8_0, qs));
        for (int j = 0; j < NS_QK; j++) dst[j] = (float)qs[j] * d;
    }
}

static void quant_q8_0(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q8_0), src += NS_QK) {
        const float d = max_abs(src, NS_QK) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        st16(b + OFF(ns_block_q8_0, d), ns_fp32_to_fp16(d));
        int8_t *qs = (int8_t *)(b + OFF(ns_block_q8_0, qs));
        for (int j = 0; j < NS_QK; j++) qs[j] = (int8_t)roundf(src[j] * id);
    }
}

static float dot_q8_0_q8_0(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK; i++, bw += sizeof(ns_block_q8_0), bx += sizeof(ns_block_q8_0)) {
        const int8_t *qw = (const int8_t *)(bw + OFF(ns_block_q8_0, qs));
        const int8_t *qx = (const int8_t *)(bx + OFF(ns_block_q8_0, qs));
        int isum = 0;
        for (int j = 0; j < NS_QK; j++) isum += qw[j] * qx[j];
        sum += (float)isum * (ldh(bw + OFF(ns_block_q8_0, d)) * ldh(bx + OFF(ns_block_q8_0, d)));
    }
    return sum;
}

static void dequant_q8_1(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q8_1), dst += NS_QK) {
        const float d = ldh(b + OFF(ns_block_q8_1, d));
        const int8_t *qs = (const int8_t *)(b + OFF(ns_block_q8_1, qs));
        for (int j = 0; j < NS_QK; j++) dst[j] = (float)qs[j] * d;
    }
}

static void quant_q8_1(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK; i++, b += sizeof(ns_block_q8_1), src += NS_QK) {
        const float d = max_abs(src, NS_QK) / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        int8_t *qs = (int8_t *)(b + OFF(ns_block_q8_1, qs));
        int isum = 0;
        for (int j = 0; j < NS_QK; j++) {
            qs[j] = (int8_t)roundf(src[j] * id);
            isum += qs[j];
        }
        st16(b + OFF(ns_block_q8_1, d), ns_fp32_to_fp16(d));
        st16(b + OFF(ns_block_q8_1, s), ns_fp32_to_fp16((float)isum * d));
    }
}

/* ---- Q8_K: float d, 256 int8, int16 sums of each 16 -------------------- */

static void dequant_q8_K(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q8_K), dst += NS_QK_K) {
        const float d = ldf(b + OFF(ns_block_q8_K, d));
        const int8_t *qs = (const int8_t *)(b + OFF(ns_block_q8_K, qs));
        for (int j = 0; j < NS_QK_K; j++) dst[j] = d * (float)qs[j];
    }
}

static void quant_q8_K(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q8_K), src += NS_QK_K) {
        int8_t *qs = (int8_t *)(b + OFF(ns_block_q8_K, qs));
        int16_t bsums[NS_QK_K / 16];
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < NS_QK_K; j++) {
            if (fabsf(src[j]) > amax) { amax = fabsf(src[j]); max = src[j]; }
        }
        float d = 0.0f;
        if (amax == 0.0f) {
            memset(qs, 0, NS_QK_K);
        } else {
            /* the value of largest magnitude maps to -127 */
            const float iscale = -127.0f / max;
            for (int j = 0; j < NS_QK_K; j++) {
                const int v = nearest_int(iscale * src[j]);
                qs[j] = (int8_t)(v > 127 ? 127 : v);
            }
            d = 1.0f / iscale;
        }
        for (int g = 0; g < NS_QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += qs[g * 16 + j];
            bsums[g] = (int16_t)s;
        }
        memcpy(b + OFF(ns_block_q8_K, d), &d, sizeof d);
        memcpy(b + OFF(ns_block_q8_K, bsums), bsums, sizeof bsums);
    }
}

/* ---- Q2_K ---------------------------------------------------------------
 * 16 sub-blocks of 16. scales[k]: low nibble scale, high nibble min.
 * qs holds 2-bit values: for each half of 128, byte l (0..31) of that half's
 * 32 bytes holds, at bit shift 2*j, element 128*h + 32*j + l.
 * x = d * sc * q - dmin * m. */

static void dequant_q2_K(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q2_K)) {
        const float d = ldh(b + OFF(ns_block_q2_K, d));
        const float dmin = ldh(b + OFF(ns_block_q2_K, dmin));
        const uint8_t *sc = b + OFF(ns_block_q2_K, scales);
        const uint8_t *q = b + OFF(ns_block_q2_K, qs);
        int is = 0;
        for (int h = 0; h < NS_QK_K / 128; h++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++, is++) {
                    const float dl = d * (float)(sc[is] & 0x0F);
                    const float ml = dmin * (float)(sc[is] >> 4);
                    for (int l = 0; l < 16; l++) *dst++ = dl * (float)((q[16 * k + l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

static float dot_q2_K_q8_K(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK_K; i++, bw += sizeof(ns_block_q2_K), bx += sizeof(ns_block_q8_K)) {
        const uint8_t *sc = bw + OFF(ns_block_q2_K, scales);
        const uint8_t *q = bw + OFF(ns_block_q2_K, qs);
        const int8_t *q8 = (const int8_t *)(bx + OFF(ns_block_q8_K, qs));
        int summs = 0;
        for (int k = 0; k < NS_QK_K / 16; k++)
            summs += ldi16(bx + OFF(ns_block_q8_K, bsums) + 2 * k) * (sc[k] >> 4);
        int isum = 0, is = 0;
        for (int h = 0; h < NS_QK_K / 128; h++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int k = 0; k < 2; k++, is++, q8 += 16) {
                    int s = 0;
                    for (int l = 0; l < 16; l++) s += q8[l] * ((q[16 * k + l] >> shift) & 3);
                    isum += (sc[is] & 0x0F) * s;
                }
            }
        }
        const float dy = ldf(bx + OFF(ns_block_q8_K, d));
        const float dall = dy * ldh(bw + OFF(ns_block_q2_K, d));
        const float dmin = dy * ldh(bw + OFF(ns_block_q2_K, dmin));
        sum += dall * (float)isum - dmin * (float)summs;
    }
    return sum;
}

/* ---- Q3_K ---------------------------------------------------------------
 * 16 sub-blocks of 16 with 6-bit signed scales (stored + 32) packed in 12
 * bytes: scale k has its low 4 bits in scales[k] (k < 8) or the high nibble
 * of scales[k - 8], and its top 2 bits at bit 2*(k/4) of scales[8 + k%4].
 * Low 2 bits of each value as in Q2_K; hmask bit j of byte l (l < 32) is the
 * third bit of element 32*j + l; a clear bit subtracts 4. */

static inline int q3_K_scale(const uint8_t *s, int k) {
    const int lo = k < 8 ? (s[k] & 0x0F) : (s[k - 8] >> 4);
    const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

static void dequant_q3_K(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q3_K)) {
        const float d = ldh(b + OFF(ns_block_q3_K, d));
        const uint8_t *sc = b + OFF(ns_block_q3_K, scales);
        const uint8_t *hm = b + OFF(ns_block_q3_K, hmask);
        const uint8_t *q = b + OFF(ns_block_q3_K, qs);
        int is = 0;
        unsigned m = 1;
        for (int h = 0; h < NS_QK_K / 128; h++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++, is++) {
                    const float dl = d * (float)q3_K_scale(sc, is);
                    for (int l = 16 * k; l < 16 * k + 16; l++) {
                        const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        *dst++ = dl * (float)v;
                    }
                }
            }
        }
    }
}

static float dot_q3_K_q8_K(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK_K; i++, bw += sizeof(ns_block_q3_K), bx += sizeof(ns_block_q8_K)) {
        const uint8_t *sc = bw + OFF(ns_block_q3_K, scales);
        const uint8_t *hm = bw + OFF(ns_block_q3_K, hmask);
        const uint8_t *q = bw + OFF(ns_block_q3_K, qs);
        const int8_t *q8 = (const int8_t *)(bx + OFF(ns_block_q8_K, qs));
        int isum = 0, is = 0;
        unsigned m = 1;
        for (int h = 0; h < NS_QK_K / 128; h++, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m <<= 1) {
                for (int k = 0; k < 2; k++, is++) {
                    int s = 0;
                    for (int l = 16 * k; l < 16 * k + 16; l++) {
                        const int v = ((q[l] >> shift) & 3) - ((hm[l] & m) ? 0 : 4);
                        s += v * *q8++;
                    }
                    isum += q3_K_scale(sc, is) * s;
                }
            }
        }
        const float dd = ldh(bw + OFF(ns_block_q3_K, d)) * ldf(bx + OFF(ns_block_q8_K, d));
        sum += dd * (float)isum;
    }
    return sum;
}

/* ---- Q4_K / Q5_K --------------------------------------------------------
 * 8 sub-blocks of 32 with 6-bit scales and mins packed in 12 bytes:
 * j < 4: scale = s[j] & 63, min = s[j+4] & 63;
 * j >= 4: scale = (s[j+4] & 15) | (s[j-4] >> 6) << 4,
 *         min   = (s[j+4] >> 4) | (s[j]   >> 6) << 4.
 * Each 64 elements use 32 bytes of qs: low nibbles first, then high.
 * Q5_K: bit 2*c (low half) / 2*c+1 (high half) of qh[l] is the fifth bit of
 * element 64*c + l / 64*c + 32 + l. x = d * sc * q - dmin * m. */

static inline void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

static void dequant_q4_K(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q4_K)) {
        const float d = ldh(b + OFF(ns_block_q4_K, d));
        const float dmin = ldh(b + OFF(ns_block_q4_K, dmin));
        const uint8_t *s = b + OFF(ns_block_q4_K, scales);
        const uint8_t *q = b + OFF(ns_block_q4_K, qs);
        for (int c = 0; c < NS_QK_K / 64; c++, q += 32) {
            int sc, mn;
            k4_scale_min(s, 2 * c, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(s, 2 * c + 1, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)(q[l] & 0x0F) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static float dot_q4_K_q8_K(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK_K; i++, bw += sizeof(ns_block_q4_K), bx += sizeof(ns_block_q8_K)) {
        const uint8_t *s = bw + OFF(ns_block_q4_K, scales);
        const uint8_t *q = bw + OFF(ns_block_q4_K, qs);
        const int8_t *q8 = (const int8_t *)(bx + OFF(ns_block_q8_K, qs));
        const uint8_t *bs = bx + OFF(ns_block_q8_K, bsums);
        int isum = 0, summs = 0;
        for (int c = 0; c < NS_QK_K / 64; c++, q += 32, q8 += 64) {
            int sc1, mn1, sc2, mn2;
            k4_scale_min(s, 2 * c, &sc1, &mn1);
            k4_scale_min(s, 2 * c + 1, &sc2, &mn2);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += (q[l] & 0x0F) * q8[l];
                s2 += (q[l] >> 4) * q8[l + 32];
            }
            isum += sc1 * s1 + sc2 * s2;
            summs += mn1 * (ldi16(bs + 8 * c) + ldi16(bs + 8 * c + 2));
            summs += mn2 * (ldi16(bs + 8 * c + 4) + ldi16(bs + 8 * c + 6));
        }
        const float dy = ldf(bx + OFF(ns_block_q8_K, d));
        const float d = dy * ldh(bw + OFF(ns_block_q4_K, d));
        const float dmin = dy * ldh(bw + OFF(ns_block_q4_K, dmin));
        sum += d * (float)isum - dmin * (float)summs;
    }
    return sum;
}

static void dequant_q5_K(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q5_K)) {
        const float d = ldh(b + OFF(ns_block_q5_K, d));
        const float dmin = ldh(b + OFF(ns_block_q5_K, dmin));
        const uint8_t *s = b + OFF(ns_block_q5_K, scales);
        const uint8_t *qh = b + OFF(ns_block_q5_K, qh);
        const uint8_t *q = b + OFF(ns_block_q5_K, qs);
        for (int c = 0; c < NS_QK_K / 64; c++, q += 32) {
            int sc, mn;
            k4_scale_min(s, 2 * c, &sc, &mn);
            const float d1 = d * (float)sc, m1 = dmin * (float)mn;
            k4_scale_min(s, 2 * c + 1, &sc, &mn);
            const float d2 = d * (float)sc, m2 = dmin * (float)mn;
            const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
            for (int l = 0; l < 32; l++) *dst++ = d1 * (float)((q[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) *dst++ = d2 * (float)((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
        }
    }
}

static float dot_q5_K_q8_K(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK_K; i++, bw += sizeof(ns_block_q5_K), bx += sizeof(ns_block_q8_K)) {
        const uint8_t *s = bw + OFF(ns_block_q5_K, scales);
        const uint8_t *qh = bw + OFF(ns_block_q5_K, qh);
        const uint8_t *q = bw + OFF(ns_block_q5_K, qs);
        const int8_t *q8 = (const int8_t *)(bx + OFF(ns_block_q8_K, qs));
        const uint8_t *bs = bx + OFF(ns_block_q8_K, bsums);
        int isum = 0, summs = 0;
        for (int c = 0; c < NS_QK_K / 64; c++, q += 32, q8 += 64) {
            int sc1, mn1, sc2, mn2;
            k4_scale_min(s, 2 * c, &sc1, &mn1);
            k4_scale_min(s, 2 * c + 1, &sc2, &mn2);
            const unsigned u1 = 1u << (2 * c), u2 = 2u << (2 * c);
            int s1 = 0, s2 = 0;
            for (int l = 0; l < 32; l++) {
                s1 += ((q[l] & 0x0F) + ((qh[l] & u1) ? 16 : 0)) * q8[l];
                s2 += ((q[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) * q8[l + 32];
            }
            isum += sc1 * s1 + sc2 * s2;
            summs += mn1 * (ldi16(bs + 8 * c) + ldi16(bs + 8 * c + 2));
            summs += mn2 * (ldi16(bs + 8 * c + 4) + ldi16(bs + 8 * c + 6));
        }
        const float dy = ldf(bx + OFF(ns_block_q8_K, d));
        const float d = dy * ldh(bw + OFF(ns_block_q5_K, d));
        const float dmin = dy * ldh(bw + OFF(ns_block_q5_K, dmin));
        sum += d * (float)isum - dmin * (float)summs;
    }
    return sum;
}

/* ---- Q6_K ---------------------------------------------------------------
 * 16 sub-blocks of 16 with int8 scales; x = d * sc * (q - 32). For each half
 * of 128 (64 bytes of ql, 32 of qh), with l < 32:
 *   element l      : ql[l]      low nibble, qh[l] bits 0-1
 *   element l + 32 : ql[l + 32] low nibble, qh[l] bits 2-3
 *   element l + 64 : ql[l]      high nibble, qh[l] bits 4-5
 *   element l + 96 : ql[l + 32] high nibble, qh[l] bits 6-7 */

static inline int q6_K_value(const uint8_t *ql, const uint8_t *qh, int e) {
    const int l = e & 31, r = e >> 5; /* e in 0..127 of one half */
    const int lo = (r & 1) ? ql[l + 32] : ql[l];
    const int nib = (r & 2) ? (lo >> 4) : (lo & 0x0F);
    return (nib | (((qh[l] >> (2 * r)) & 3) << 4)) - 32;
}

static void dequant_q6_K(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / NS_QK_K; i++, b += sizeof(ns_block_q6_K)) {
        const float d = ldh(b + OFF(ns_block_q6_K, d));
        const int8_t *sc = (const int8_t *)(b + OFF(ns_block_q6_K, scales));
        const uint8_t *ql = b + OFF(ns_block_q6_K, ql);
        const uint8_t *qh = b + OFF(ns_block_q6_K, qh);
        for (int h = 0; h < NS_QK_K / 128; h++, ql += 64, qh += 32, sc += 8) {
            for (int e = 0; e < 128; e++) *dst++ = d * (float)sc[e / 16] * (float)q6_K_value(ql, qh, e);
        }
    }
}

static float dot_q6_K_q8_K(int64_t n, const void *w, const void *x) {
    const uint8_t *bw = w, *bx = x;
    float sum = 0.0f;
    for (int64_t i = 0; i < n / NS_QK_K; i++, bw += sizeof(ns_block_q6_K), bx += sizeof(ns_block_q8_K)) {
        const int8_t *sc = (const int8_t *)(bw + OFF(ns_block_q6_K, scales));
        const uint8_t *ql = bw + OFF(ns_block_q6_K, ql);
        const uint8_t *qh = bw + OFF(ns_block_q6_K, qh);
        const int8_t *q8 = (const int8_t *)(bx + OFF(ns_block_q8_K, qs));
        int isum = 0;
        for (int h = 0; h < NS_QK_K / 128; h++, ql += 64, qh += 32, sc += 8) {
            for (int g = 0; g < 8; g++) {
                int s = 0;
                for (int e = 16 * g; e < 16 * g + 16; e++) s += q6_K_value(ql, qh, e) * *q8++;
                isum += sc[g] * s;
            }
        }
        const float dd = ldh(bw + OFF(ns_block_q6_K, d)) * ldf(bx + OFF(ns_block_q8_K, d));
        sum += dd * (float)isum;
    }
    return sum;
}

/* ---- the tables ---------------------------------------------------------
 * The scalar table is the reference; each SIMD level starts from the level
 * below it (avx512vnni from avx512, avx512 and avxvnni from avx2) and
 * replaces the kernels it has. All tables are built once, at first use. */

static const ns_type_kernels scalar_kernels[NS_TYPE_COUNT] = {
    [NS_TYPE_F32] = {dequant_f32, quant_f32, dot_f32_f32, NS_TYPE_F32, NULL, NULL, NULL, axpy_n_f32},
    [NS_TYPE_F16] = {dequant_f16, quant_f16, dot_f16_f16, NS_TYPE_F16, NULL, NULL, NULL, axpy_n_f16},
    [NS_TYPE_BF16] = {dequant_bf16, quant_bf16, dot_bf16_bf16, NS_TYPE_BF16, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q4_0] = {dequant_q4_0, quant_q4_0, dot_q4_0_q8_0, NS_TYPE_Q8_0, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q4_1] = {dequant_q4_1, quant_q4_1, dot_q4_1_q8_1, NS_TYPE_Q8_1, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q5_0] = {dequant_q5_0, quant_q5_0, dot_q5_0_q8_0, NS_TYPE_Q8_0, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q5_1] = {dequant_q5_1, quant_q5_1, dot_q5_1_q8_1, NS_TYPE_Q8_1, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q8_0] = {dequant_q8_0, quant_q8_0, dot_q8_0_q8_0, NS_TYPE_Q8_0, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q8_1] = {dequant_q8_1, quant_q8_1, NULL, NS_TYPE_Q8_1, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q2_K] = {dequant_q2_K, NULL, dot_q2_K_q8_K, NS_TYPE_Q8_K, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q3_K] = {dequant_q3_K, NULL, dot_q3_K_q8_K, NS_TYPE_Q8_K, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q4_K] = {dequant_q4_K, NULL, dot_q4_K_q8_K, NS_TYPE_Q8_K, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q5_K] = {dequant_q5_K, NULL, dot_q5_K_q8_K, NS_TYPE_Q8_K, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q6_K] = {dequant_q6_K, NULL, dot_q6_K_q8_K, NS_TYPE_Q8_K, NULL, NULL, NULL, NULL},
    [NS_TYPE_Q8_K] = {dequant_q8_K, quant_q8_K, NULL, NS_TYPE_Q8_K, NULL, NULL, NULL, NULL},
};

static ns_type_kernels level_kernels[NS_ISA_COUNT][NS_TYPE_COUNT];
static bool level_ready[NS_ISA_COUNT];
static const ns_type_kernels *active_kernels;
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build_level(ns_isa level, ns_isa base, void (*fill)(ns_type_kernels *)) {
    if (!level_ready[base] || !ns_isa_supported(level)) return;
    memcpy(level_kernels[level], level_kernels[base], sizeof level_kernels[level]);
    fill(level_kernels[level]);
    level_ready[level] = true;
}

static void build_tables(void) {
    memcpy(level_kernels[NS_ISA_SCALAR], scalar_kernels, sizeof scalar_kernels);
    level_ready[NS_ISA_SCALAR] = true;
    build_level(NS_ISA_AVX2, NS_ISA_SCALAR, ns_kernels_avx2);
    build_level(NS_ISA_AVXVNNI, NS_ISA_AVX2, ns_kernels_avxvnni);
    build_level(NS_ISA_AVX512, NS_ISA_AVX2, ns_kernels_avx512);
    build_level(NS_ISA_AVX512VNNI, NS_ISA_AVX512, ns_kernels_avx512vnni);
    ns_isa a = ns_isa_active();
    while (!level_ready[a]) a = (ns_isa)(a - 1);
    active_kernels = level_kernels[a];
}

static const ns_type_kernels *lookup(const ns_type_kernels *tab, ns_type t) {
    if ((unsigned)t >= NS_TYPE_COUNT || tab[t].to_float == NULL) return NULL;
    return &tab[t];
}

const ns_type_kernels *ns_kernels(ns_type t) {
    pthread_once(&tables_once, build_tables);
    return lookup(active_kernels, t);
}

const ns_type_kernels *ns_kernels_for_isa(ns_type t, ns_isa level) {
    pthread_once(&tables_once, build_tables);
    if ((unsigned)level >= NS_ISA_COUNT || !level_ready[level]) return NULL;
    return lookup(level_kernels[level], t);
}
