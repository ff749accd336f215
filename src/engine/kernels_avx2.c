/* AVX2 + FMA + F16C kernels (built with -mavx2 -mfma -mf16c). The same
 * source, included by kernels_avxvnni.c and built with -mavxvnni as well,
 * gives the avxvnni level: there the u8 x s8 dot products use VPDPBUSD and
 * the i16 x i16 scale products VPDPWSSD instead of VPMADDUBSW + VPMADDWD.
 *
 * Every dot product keeps the scalar kernel's integer block sums exactly:
 * VPMADDUBSW's i16 pair sums never saturate here (the unsigned operand is at
 * most 63, or 128 for |Q8_0| against activations in [-127, 127]), and only
 * the float accumulation of the scaled block sums is reordered.
 *
 * Each kernel is an always-inline "core" for nx activation rows (nx a
 * compile-time constant 1..4); vec_dot is the core for one row, vec_dot_n
 * runs it over groups of four rows. The per-row instruction sequence does
 * not depend on nx, so vec_dot_n is bit-identical to vec_dot. The prompt
 * GEMMs at the end keep the scalar order: bit-identical to scalar vec_dot. */
#include "kernels_x86.h"

#ifdef NS_KERNELS_AVXVNNI
#define NS_LEVEL_BUILT ns_kernels_avxvnni_built
#define NS_LEVEL_FILL ns_kernels_avxvnni
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVXVNNI__)
#define NS_LEVEL_ENABLED 1
#endif
#else
#define NS_LEVEL_BUILT ns_kernels_avx2_built
#define NS_LEVEL_FILL ns_kernels_avx2
#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define NS_LEVEL_ENABLED 1
#endif
#endif

#ifndef NS_LEVEL_ENABLED

bool NS_LEVEL_BUILT(void) { return false; }
void NS_LEVEL_FILL(ns_type_kernels *tab) { (void)tab; }

#else

#include <immintrin.h>
#include <string.h>

#include "fields.h"

#define INLINE static inline __attribute__((always_inline))

/* ---- helpers ------------------------------------------------------------ */




INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }

/* Four fp16 fields at p, p + stride, ... as floats. */
INLINE __m128 ld4h(const uint8_t *p, size_t stride) {
    const uint64_t v = (uint64_t)ld16(p) | ((uint64_t)ld16(p + stride) << 16) |
                       ((uint64_t)ld16(p + 2 * stride) << 32) | ((uint64_t)ld16(p + 3 * stride) << 48);
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)v));
}

INLINE __m256i loadu256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE __m128i loadu128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

INLINE float hsum_ps(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

INLINE float hsum_ps128(__m128 a) {
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

INLINE int hsum_epi32(__m256i v) {
    __m128i a = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(1, 0, 3, 2)));
    a = _mm_add_epi32(a, _mm_shuffle_epi32(a, _MM_SHUFFLE(2, 3, 0, 1)));
    return _mm_cvtsi128_si32(a);
}

/* Lane k of s in every lane. */
INLINE __m256 bcast(__m128 s, int k) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s), _mm256_set1_epi32(k));
}

/* u8 x s8, groups of four summed into i32 lanes (exact, see above). */
INLINE __m256i dot_us(__m256i u, __m256i s) {
#ifdef __AVXVNNI__
    return _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* acc + sum of (u8 x s8 pair sums) * i16 scales. */
INLINE __m256i dot_us_scaled(__m256i acc, __m256i u, __m256i s, __m256i scale16) {
#ifdef __AVXVNNI__
    return _mm256_dpwssd_avx_epi32(acc, _mm256_maddubs_epi16(u, s), scale16);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scale16));
#endif
}

/* sum (u - c) * s for u8 u, s8 s, constant c (as a vector of bytes). */
INLINE __m256i dot_us_off(__m256i u, __m256i s, __m256i c) {
#ifdef __AVXVNNI__
    return _mm256_sub_epi32(dot_us(u, s), dot_us(c, s));
#else
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, s), _mm256_maddubs_epi16(c, s));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
#endif
}

/* 16 bytes of packed nibbles -> 32 bytes: low nibbles, then high. */
INLINE __m256i unpack_nibbles(const uint8_t *qs) {
    const __m128i t = loadu128(qs);
    const __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    return _mm256_and_si256(v, _mm256_set1_epi8(0x0F));
}

/* Bit j of m -> 0xFF in byte j. */
INLINE __m256i bits_to_bytes(uint32_t m) {
    const __m256i v = _mm256_shuffle_epi8(
        _mm256_set1_epi32((int)m),
        _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll, 0x0101010101010101ll, 0));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

/* vec_dot and vec_dot_n from a core(n, w, x, x_stride, nx, out). */
#define DEFINE_DOTS(name, core)                                                                      \
    static float name(int64_t n, const void *w, const void *x) {                                     \
        float r;                                                                                     \
        core(n, (const uint8_t *)w, (const uint8_t *)x, 0, 1, &r);                                   \
        return r;                                                                                    \
    }                                                                                                \
    static void name##_n(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {  \
        const uint8_t *xp = x;                                                                       \
        for (; nx >= 4; nx -= 4, xp += 4 * xs, out += 4) core(n, (const uint8_t *)w, xp, xs, 4, out); \
        if (nx == 3) core(n, (const uint8_t *)w, xp, xs, 3, out);                                    \
        else if (nx == 2) core(n, (const uint8_t *)w, xp, xs, 2, out);                               \
        else if (nx == 1) core(n, (const uint8_t *)w, xp, xs, 1, out);                               \
    }

#define NXMAX 4
#define FOR_R for (int r = 0; r < nx; r++)

/* ---- F32 / F16 / BF16 --------------------------------------------------- */

INLINE void f32_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    __m256 a0[NXMAX], a1[NXMAX];
    FOR_R { a0[r] = _mm256_setzero_ps(); a1[r] = _mm256_setzero_ps(); }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_loadu_ps((const float *)(w + 4 * i));
        const __m256 w1 = _mm256_loadu_ps((const float *)(w + 4 * i + 32));
        FOR_R {
            const uint8_t *px = x + r * xs + 4 * i;
            a0[r] = _mm256_fmadd_ps(w0, _mm256_loadu_ps((const float *)px), a0[r]);
            a1[r] = _mm256_fmadd_ps(w1, _mm256_loadu_ps((const float *)(px + 32)), a1[r]);
        }
    }
    FOR_R {
        float t = 0.0f;
        for (int64_t j = i; j < n; j++) t += ldf(w + 4 * j) * ldf(x + r * xs + 4 * j);
        out[r] = hsum_ps(_mm256_add_ps(a0[r], a1[r])) + t;
    }
}
DEFINE_DOTS(dot_f32, f32_core)

INLINE void f16_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    __m256 a0[NXMAX], a1[NXMAX];
    FOR_R { a0[r] = _mm256_setzero_ps(); a1[r] = _mm256_setzero_ps(); }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = _mm256_cvtph_ps(loadu128(w + 2 * i));
        const __m256 w1 = _mm256_cvtph_ps(loadu128(w + 2 * i + 16));
        FOR_R {
            const uint8_t *px = x + r * xs + 2 * i;
            a0[r] = _mm256_fmadd_ps(w0, _mm256_cvtph_ps(loadu128(px)), a0[r]);
            a1[r] = _mm256_fmadd_ps(w1, _mm256_cvtph_ps(loadu128(px + 16)), a1[r]);
        }
    }
    FOR_R {
        float t = 0.0f;
        for (int64_t j = i; j < n; j++) t += h2f(ld16(w + 2 * j)) * h2f(ld16(x + r * xs + 2 * j));
        out[r] = hsum_ps(_mm256_add_ps(a0[r], a1[r])) + t;
    }
}
DEFINE_DOTS(dot_f16, f16_core)

INLINE __m256 bf16x8(const uint8_t *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

INLINE float bf2f(uint16_t h) {
    const uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

INLINE void bf16_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    __m256 a0[NXMAX], a1[NXMAX];
    FOR_R { a0[r] = _mm256_setzero_ps(); a1[r] = _mm256_setzero_ps(); }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 w0 = bf16x8(w + 2 * i), w1 = bf16x8(w + 2 * i + 16);
        FOR_R {
            const uint8_t *px = x + r * xs + 2 * i;
            a0[r] = _mm256_fmadd_ps(w0, bf16x8(px), a0[r]);
            a1[r] = _mm256_fmadd_ps(w1, bf16x8(px + 16), a1[r]);
        }
    }
    FOR_R {
        float t = 0.0f;
        for (int64_t j = i; j < n; j++) t += bf2f(ld16(w + 2 * j)) * bf2f(ld16(x + r * xs + 2 * j));
        out[r] = hsum_ps(_mm256_add_ps(a0[r], a1[r])) + t;
    }
}
DEFINE_DOTS(dot_bf16, bf16_core)

/* ---- 32-element blocks -------------------------------------------------
 * Four blocks per step: their scales are converted together, their scaled
 * sums added into t, t into the row's accumulator. Leftover blocks one by
 * one. */

#define Q4_0_SZ 18
#define Q4_1_SZ 20
#define Q5_0_SZ 22
#define Q5_1_SZ 24
#define Q8_0_SZ 34
#define Q8_1_SZ 36

/* Two blocks per vector, each owning one 128-bit lane: lo = elements 0-15
 * (low nibbles) of blocks a and b, hi = elements 16-31, activations gathered
 * the same way; each i32 lane of a dot product then belongs to one block and
 * [s_a x4, s_b x4] scales it. */

/* 16 bytes at p and at p + stride. */
INLINE __m256i load2x128(const uint8_t *p, size_t stride) {
    return _mm256_inserti128_si256(_mm256_castsi128_si256(loadu128(p)), loadu128(p + stride), 1);
}

/* Lanes 0-3 = s[a], lanes 4-7 = s[a + 1]. */
INLINE __m256 bcast2(__m128 s, int a) {
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(s), _mm256_setr_epi32(a, a, a, a, a + 1, a + 1, a + 1, a + 1));
}

/* The unsigned values of blocks at bw and bw + SZ. */
INLINE void unpack2(const uint8_t *bw, size_t SZ, int QOFF, int HOFF, __m256i *lo, __m256i *hi) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i q = load2x128(bw + QOFF, SZ);
    *lo = _mm256_and_si256(q, m4);
    *hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
    if (HOFF >= 0) {
        const uint32_t h0 = ld32(bw + HOFF), h1 = ld32(bw + SZ + HOFF);
        const __m256i b4 = _mm256_set1_epi8(0x10);
        *lo = _mm256_or_si256(*lo, _mm256_and_si256(bits_to_bytes((h0 & 0xFFFFu) | (h1 << 16)), b4));
        *hi = _mm256_or_si256(*hi, _mm256_and_si256(bits_to_bytes((h0 >> 16) | (h1 & 0xFFFF0000u)), b4));
    }
}

/* sum (lo - c) * xl + (hi - c) * xh per i32 lane (i16 pair sums below 2^15). */
INLINE __m256i dot2_off(__m256i lo, __m256i hi, __m256i xl, __m256i xh, __m256i c) {
#ifdef __AVXVNNI__
    const __m256i p = _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), lo, xl), hi, xh);
    const __m256i q = _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), c, xl), c, xh);
    return _mm256_sub_epi32(p, q);
#else
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
    const __m256i q = _mm256_add_epi16(_mm256_maddubs_epi16(c, xl), _mm256_maddubs_epi16(c, xh));
    return _mm256_madd_epi16(_mm256_sub_epi16(p, q), _mm256_set1_epi16(1));
#endif
}

INLINE __m256i dot2(__m256i lo, __m256i hi, __m256i xl, __m256i xh) {
#ifdef __AVXVNNI__
    return _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), lo, xl), hi, xh);
#else
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xl), _mm256_maddubs_epi16(hi, xh));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
#endif
}

/* 32 five-bit values of one Q5 block: nibbles | bit 4 from qh. */
INLINE __m256i unpack_q5(const uint8_t *qh, const uint8_t *qs) {
    const __m256i hi = _mm256_and_si256(bits_to_bytes(ld32(qh)), _mm256_set1_epi8(0x10));
    return _mm256_or_si256(unpack_nibbles(qs), hi);
}

/* Q4_0 / Q5_0 (value u - OFFSET) against Q8_0. */
INLINE void sym_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out,
                     const size_t SZ, const int QOFF, const int HOFF, const int OFFSET) {
    const int64_t nb = n / 32;
    const __m256i c = _mm256_set1_epi8((char)OFFSET);
    __m256 acc[NXMAX];
    FOR_R acc[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *bw = w + i * SZ;
        const __m128 dw = ld4h(bw, SZ);
        __m256i lo01, hi01, lo23, hi23;
        unpack2(bw, SZ, QOFF, HOFF, &lo01, &hi01);
        unpack2(bw + 2 * SZ, SZ, QOFF, HOFF, &lo23, &hi23);
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_0_SZ;
            const __m128 s = _mm_mul_ps(dw, ld4h(bx, Q8_0_SZ));
            const __m256i p01 = dot2_off(lo01, hi01, load2x128(bx + 2, Q8_0_SZ), load2x128(bx + 18, Q8_0_SZ), c);
            const __m256i p23 = dot2_off(lo23, hi23, load2x128(bx + 2 * Q8_0_SZ + 2, Q8_0_SZ),
                                         load2x128(bx + 2 * Q8_0_SZ + 18, Q8_0_SZ), c);
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(p01), bcast2(s, 0));
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p23), bcast2(s, 2), t);
            acc[r] = _mm256_add_ps(acc[r], t);
        }
    }
    for (; i < nb; i++) {
        const uint8_t *bw = w + i * SZ;
        const __m256i q = HOFF >= 0 ? unpack_q5(bw + HOFF, bw + QOFF) : unpack_nibbles(bw + QOFF);
        const float dw = h2f(ld16(bw));
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_0_SZ;
            const __m256i p = dot_us_off(q, loadu256(bx + 2), c);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * h2f(ld16(bx))), acc[r]);
        }
    }
    FOR_R out[r] = hsum_ps(acc[r]);
}

INLINE void q4_0_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    sym_core(n, w, x, xs, nx, out, Q4_0_SZ, 2, -1, 8);
}
DEFINE_DOTS(dot_q4_0, q4_0_core)

INLINE void q5_0_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    sym_core(n, w, x, xs, nx, out, Q5_0_SZ, 6, 2, 16);
}
DEFINE_DOTS(dot_q5_0, q5_0_core)

/* Q4_1 / Q5_1 against Q8_1: (dw*dx) * isum + mw * sx per block. */
INLINE void aff_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out,
                     const size_t SZ, const int QOFF, const int HOFF) {
    const int64_t nb = n / 32;
    __m256 acc[NXMAX];
    __m128 accm[NXMAX];
    float tail[NXMAX];
    FOR_R { acc[r] = _mm256_setzero_ps(); accm[r] = _mm_setzero_ps(); tail[r] = 0.0f; }
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *bw = w + i * SZ;
        const __m128 dw = ld4h(bw, SZ), mw = ld4h(bw + 2, SZ);
        __m256i lo01, hi01, lo23, hi23;
        unpack2(bw, SZ, QOFF, HOFF, &lo01, &hi01);
        unpack2(bw + 2 * SZ, SZ, QOFF, HOFF, &lo23, &hi23);
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_1_SZ;
            const __m128 s = _mm_mul_ps(dw, ld4h(bx, Q8_1_SZ));
            const __m256i p01 = dot2(lo01, hi01, load2x128(bx + 4, Q8_1_SZ), load2x128(bx + 20, Q8_1_SZ));
            const __m256i p23 =
                dot2(lo23, hi23, load2x128(bx + 2 * Q8_1_SZ + 4, Q8_1_SZ), load2x128(bx + 2 * Q8_1_SZ + 20, Q8_1_SZ));
            __m256 t = _mm256_mul_ps(_mm256_cvtepi32_ps(p01), bcast2(s, 0));
            t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p23), bcast2(s, 2), t);
            acc[r] = _mm256_add_ps(acc[r], t);
            accm[r] = _mm_fmadd_ps(mw, ld4h(bx + 2, Q8_1_SZ), accm[r]);
        }
    }
    for (; i < nb; i++) {
        const uint8_t *bw = w + i * SZ;
        const __m256i q = HOFF >= 0 ? unpack_q5(bw + HOFF, bw + QOFF) : unpack_nibbles(bw + QOFF);
        const float dw = h2f(ld16(bw)), mw = h2f(ld16(bw + 2));
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_1_SZ;
            const __m256i p = dot_us(q, loadu256(bx + 4));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * h2f(ld16(bx))), acc[r]);
            tail[r] += mw * h2f(ld16(bx + 2));
        }
    }
    FOR_R out[r] = hsum_ps(acc[r]) + (hsum_ps128(accm[r]) + tail[r]);
}

INLINE void q4_1_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    aff_core(n, w, x, xs, nx, out, Q4_1_SZ, 4, -1);
}
DEFINE_DOTS(dot_q4_1, q4_1_core)

INLINE void q5_1_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    aff_core(n, w, x, xs, nx, out, Q5_1_SZ, 8, 4);
}
DEFINE_DOTS(dot_q5_1, q5_1_core)

/* Q8_0 x Q8_0: |w| (unsigned) against x with w's sign. */
INLINE void q8_0_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    const int64_t nb = n / 32;
    __m256 acc[NXMAX];
    FOR_R acc[r] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *bw = w + i * Q8_0_SZ;
        const __m128 dw = ld4h(bw, Q8_0_SZ);
        __m256i q[4], a[4];
        for (int k = 0; k < 4; k++) {
            q[k] = loadu256(bw + k * Q8_0_SZ + 2);
            a[k] = _mm256_abs_epi8(q[k]);
        }
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_0_SZ;
            const __m128 s = _mm_mul_ps(dw, ld4h(bx, Q8_0_SZ));
            __m256 t = _mm256_mul_ps(
                _mm256_cvtepi32_ps(dot_us(a[0], _mm256_sign_epi8(loadu256(bx + 2), q[0]))), bcast(s, 0));
            for (int k = 1; k < 4; k++) {
                const __m256i p = dot_us(a[k], _mm256_sign_epi8(loadu256(bx + k * Q8_0_SZ + 2), q[k]));
                t = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), bcast(s, k), t);
            }
            acc[r] = _mm256_add_ps(acc[r], t);
        }
    }
    for (; i < nb; i++) {
        const uint8_t *bw = w + i * Q8_0_SZ;
        const __m256i q = loadu256(bw + 2), a = _mm256_abs_epi8(q);
        const float dw = h2f(ld16(bw));
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_0_SZ;
            const __m256i p = dot_us(a, _mm256_sign_epi8(loadu256(bx + 2), q));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * h2f(ld16(bx))), acc[r]);
        }
    }
    FOR_R out[r] = hsum_ps(acc[r]);
}
DEFINE_DOTS(dot_q8_0, q8_0_core)

/* ---- K-quants against Q8_K ----------------------------------------------
 * Per super-block of 256: an i32 vector of scale-weighted sums, converted
 * once and multiplied by the block's float scale; the min / offset terms
 * come from Q8_K's 16-element sums (bsums). */

#define Q2_K_SZ 84
#define Q3_K_SZ 110
#define Q4_K_SZ 144
#define Q5_K_SZ 176
#define Q6_K_SZ 210
#define Q8_K_SZ 292
#define Q8K_QS 4
#define Q8K_BSUMS 260

/* i16 vector whose lanes 0-7 are lane a of v and lanes 8-15 lane b, where v
 * holds eight i16 in each 128-bit half. */
INLINE __m256i pick16(__m256i v, int a, int b) {
    const __m256i idx = _mm256_set_epi8(
        (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b),
        (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b),
        (char)(2 * b + 1), (char)(2 * b), (char)(2 * b + 1), (char)(2 * b), (char)(2 * a + 1), (char)(2 * a),
        (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a),
        (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a), (char)(2 * a + 1), (char)(2 * a),
        (char)(2 * a + 1), (char)(2 * a));
    return _mm256_shuffle_epi8(v, idx);
}

/* Q4_K / Q5_K 6-bit scales and mins: 8 scale bytes, then 8 min bytes. */
INLINE __m128i k4_scales(const uint8_t *s) {
    const uint32_t u0 = ld32(s), u1 = ld32(s + 4), u2 = ld32(s + 8);
    const uint32_t sc0 = u0 & 0x3f3f3f3fu, mn0 = u1 & 0x3f3f3f3fu;
    const uint32_t sc1 = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn1 = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
    return _mm_set_epi32((int)mn1, (int)mn0, (int)sc1, (int)sc0);
}

/* sum over the 8 sub-blocks of 32 of min * (bsum pair), as 4 i32 lanes. */
INLINE __m128i k4_mins(const uint8_t *bsums, __m128i mins16) {
    const __m128i b0 = loadu128(bsums), b1 = loadu128(bsums + 16);
    return _mm_madd_epi16(_mm_hadd_epi16(b0, b1), mins16);
}

/* Q4_K / Q5_K: chunk c (64 elements: sub-block 2c in the low nibbles,
 * 2c+1 in the high) is decoded once, then used for every row; each row's
 * isum adds the chunks in the same order whatever nx is. */
INLINE void q45_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out,
                       const bool five) {
    const size_t SZ = five ? Q5_K_SZ : Q4_K_SZ;
    const int64_t nb = n / 256;
    const __m256i m4 = _mm256_set1_epi8(0x0F), b4 = _mm256_set1_epi8(0x10);
    __m256 acc[NXMAX];
    __m128 accm[NXMAX];
    FOR_R { acc[r] = _mm256_setzero_ps(); accm[r] = _mm_setzero_ps(); }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *bw = w + i * SZ;
        const float d = h2f(ld16(bw)), dmin = h2f(ld16(bw + 2));
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales(bw + 4)); /* 8 scales, 8 mins */
        const __m256i sc = _mm256_permute2x128_si256(sm, sm, 0x00);
        const __m128i mins = _mm256_extracti128_si256(sm, 1);
        const uint8_t *qs = bw + (five ? 48 : 16);
        const uint8_t *xb = x + i * Q8_K_SZ;
        __m256i isum[NXMAX];
        FOR_R isum[r] = _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            const __m256i q = loadu256(qs + 32 * c);
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                const __m256i h = _mm256_srli_epi16(loadu256(bw + 16), 2 * c); /* bit 0: low, bit 1: high */
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(h, 4), b4));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(h, 3), b4));
            }
            const __m256i sl = pick16(sc, 2 * c, 2 * c), sh = pick16(sc, 2 * c + 1, 2 * c + 1);
            FOR_R {
                const uint8_t *q8 = xb + r * xs + Q8K_QS + 64 * c;
                isum[r] = dot_us_scaled(isum[r], lo, loadu256(q8), sl);
                isum[r] = dot_us_scaled(isum[r], hi, loadu256(q8 + 32), sh);
            }
        }
        FOR_R {
            const uint8_t *bx = xb + r * xs;
            const float dy = ldf(bx);
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(dy * d), acc[r]);
            accm[r] = _mm_fmadd_ps(_mm_cvtepi32_ps(k4_mins(bx + Q8K_BSUMS, mins)), _mm_set1_ps(dy * dmin), accm[r]);
        }
    }
    FOR_R out[r] = hsum_ps(acc[r]) - hsum_ps128(accm[r]);
}

INLINE void q4_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    q45_K_core(n, w, x, xs, nx, out, false);
}
DEFINE_DOTS(dot_q4_K, q4_K_core)

INLINE void q5_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    q45_K_core(n, w, x, xs, nx, out, true);
}
DEFINE_DOTS(dot_q5_K, q5_K_core)

/* Q6_K, Q3_K, Q2_K: 16 sub-blocks of 16; each 32-byte unit k (elements
 * 32k..32k+31, sub-blocks 2k and 2k+1) is decoded once and used for every
 * row, as in q45_K_core.
 *
 * Q6_K: u = q + 32 in [0, 63]; sum sc * (u - 32) * x = sum sc * u * x -
 * 32 * sum sc * bsum. Half h (128 elements) holds in unit 4h+j: j=0 ql[l]
 * low nibbles with qh bits 0-1, j=1 ql[l+32] low / bits 2-3, j=2 ql[l]
 * high / bits 4-5, j=3 ql[l+32] high / bits 6-7. */
INLINE __m256i q6_K_unit(const uint8_t *bw, int k) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m2 = _mm256_set1_epi8(0x30);
    const int h = k >> 2, j = k & 3;
    const __m256i l = loadu256(bw + 64 * h + 32 * (j & 1));
    const __m256i hb = loadu256(bw + 128 + 32 * h);
    const __m256i lo = j < 2 ? _mm256_and_si256(l, m4) : _mm256_and_si256(_mm256_srli_epi16(l, 4), m4);
    const __m256i hi = j == 0 ? _mm256_slli_epi16(hb, 4) : j == 1 ? _mm256_slli_epi16(hb, 2) : j == 2 ? hb : _mm256_srli_epi16(hb, 2);
    return _mm256_or_si256(lo, _mm256_and_si256(hi, m2));
}

/* Q3_K's 16 signed 6-bit scales. */
INLINE __m128i q3_K_scales(const uint8_t *s) {
    const uint32_t a0 = ld32(s), a1 = ld32(s + 4), a2 = ld32(s + 8);
    const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const uint32_t s0 = (a0 & m4) | ((a2 & m2) << 4);
    const uint32_t s1 = (a1 & m4) | (((a2 >> 2) & m2) << 4);
    const uint32_t s2 = ((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4);
    const uint32_t s3 = ((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4);
    return _mm_sub_epi8(_mm_set_epi32((int)s3, (int)s2, (int)s1, (int)s0), _mm_set1_epi8(32));
}

/* Q2_K / Q3_K unit k = 4h + j: 2-bit group j of qs[32h..32h+31]; Q3_K adds
 * 4 where hmask bit k of hmask[l] is set (value u - 4 via the bsums). */
INLINE __m256i q23_K_unit(const uint8_t *qs, const uint8_t *hm, int k) {
    const int h = k >> 2, j = k & 3;
    __m256i u = _mm256_and_si256(_mm256_srli_epi16(loadu256(qs + 32 * h), 2 * j), _mm256_set1_epi8(3));
    if (hm) {
        const __m256i m = loadu256(hm);
        const __m256i hb = k >= 2 ? _mm256_srli_epi16(m, k - 2) : _mm256_slli_epi16(m, 2 - k);
        u = _mm256_or_si256(u, _mm256_and_si256(hb, _mm256_set1_epi8(4)));
    }
    return u;
}

/* kind: 6 = Q6_K, 3 = Q3_K, 2 = Q2_K */
INLINE void k16_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out,
                     const int kind) {
    const size_t SZ = kind == 6 ? Q6_K_SZ : kind == 3 ? Q3_K_SZ : Q2_K_SZ;
    const int64_t nb = n / 256;
    __m256 acc[NXMAX], accm[NXMAX];
    FOR_R { acc[r] = _mm256_setzero_ps(); accm[r] = _mm256_setzero_ps(); }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *bw = w + i * SZ;
        __m256i sc16, mn16 = _mm256_setzero_si256();
        float d, dmin = 0.0f;
        if (kind == 6) {
            sc16 = _mm256_cvtepi8_epi16(loadu128(bw + 192));
            d = h2f(ld16(bw + 208));
        } else if (kind == 3) {
            sc16 = _mm256_cvtepi8_epi16(q3_K_scales(bw + 96));
            d = h2f(ld16(bw + 108));
        } else {
            const __m128i sb = loadu128(bw);
            sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0F)));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0F)));
            d = h2f(ld16(bw + 80));
            dmin = h2f(ld16(bw + 82));
        }
        const __m256i sc_lo = _mm256_permute2x128_si256(sc16, sc16, 0x00); /* scales 0-7 */
        const __m256i sc_hi = _mm256_permute2x128_si256(sc16, sc16, 0x11); /* scales 8-15 */
        const uint8_t *xb = x + i * Q8_K_SZ;
        __m256i isum[NXMAX];
        FOR_R isum[r] = _mm256_setzero_si256();
        for (int k = 0; k < 8; k++) {
            const __m256i u = kind == 6 ? q6_K_unit(bw, k) : q23_K_unit(bw + (kind == 3 ? 32 : 16), kind == 3 ? bw : NULL, k);
            const __m256i scv = pick16(k < 4 ? sc_lo : sc_hi, 2 * (k & 3), 2 * (k & 3) + 1);
            FOR_R isum[r] = dot_us_scaled(isum[r], u, loadu256(xb + r * xs + Q8K_QS + 32 * k), scv);
        }
        FOR_R {
            const uint8_t *bx = xb + r * xs;
            const __m256i bs = loadu256(bx + Q8K_BSUMS);
            const float dy = ldf(bx);
            if (kind == 2) {
                accm[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(bs, mn16)), _mm256_set1_ps(dy * dmin), accm[r]);
            } else {
                const __m256i corr = _mm256_madd_epi16(bs, sc16);
                isum[r] = _mm256_sub_epi32(isum[r], _mm256_slli_epi32(corr, kind == 6 ? 5 : 2));
            }
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), _mm256_set1_ps(kind == 2 ? dy * d : d * dy), acc[r]);
        }
    }
    FOR_R out[r] = kind == 2 ? hsum_ps(acc[r]) - hsum_ps(accm[r]) : hsum_ps(acc[r]);
}

INLINE void q6_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    k16_core(n, w, x, xs, nx, out, 6);
}
DEFINE_DOTS(dot_q6_K, q6_K_core)

INLINE void q3_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    k16_core(n, w, x, xs, nx, out, 3);
}
DEFINE_DOTS(dot_q3_K, q3_K_core)

INLINE void q2_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    k16_core(n, w, x, xs, nx, out, 2);
}
DEFINE_DOTS(dot_q2_K, q2_K_core)

/* ---- activation quantizers (bit-identical to quant.c's) ------------------ */

/* roundf: to nearest, halves away from zero. */
INLINE __m256 round_away(__m256 v) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 f = _mm256_andnot_ps(sgn, _mm256_sub_ps(v, t));
    const __m256 up = _mm256_cmp_ps(f, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sgn), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(up, one));
}

INLINE float hmax_ps(__m256 v) {
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* 4 x 8 int32 (each in [-128, 127]) -> 32 int8 in order. */
INLINE __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
    const __m256i abcd = _mm256_packs_epi16(ab, cd);
    return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}


/* One block of 32: writes 32 int8 at qs, returns d; *isum gets their sum. */
INLINE float q8_block(const float *src, uint8_t *qs, int *isum) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    __m256 v[4];
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(src + 8 * k);
    const __m256 m01 = _mm256_max_ps(_mm256_andnot_ps(sgn, v[0]), _mm256_andnot_ps(sgn, v[1]));
    const __m256 m23 = _mm256_max_ps(_mm256_andnot_ps(sgn, v[2]), _mm256_andnot_ps(sgn, v[3]));
    const float amax = hmax_ps(_mm256_max_ps(m01, m23));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m256 idv = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = _mm256_cvttps_epi32(round_away(_mm256_mul_ps(v[k], idv)));
    _mm256_storeu_si256((__m256i *)qs, pack_i8(q[0], q[1], q[2], q[3]));
    if (isum) *isum = hsum_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    return d;
}

static void quant_q8_0(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += Q8_0_SZ, src += 32) {
        const float d = q8_block(src, b + 2, NULL);
        st16(b, ns_fp32_to_fp16(d));
    }
}

static void quant_q8_1(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += Q8_1_SZ, src += 32) {
        int isum;
        const float d = q8_block(src, b + 4, &isum);
        st16(b, ns_fp32_to_fp16(d));
        st16(b + 2, ns_fp32_to_fp16((float)isum * d));
    }
}

static void quant_q8_K(const float *src, void *dst, int64_t n) {
    const __m256 sgn = _mm256_set1_ps(-0.0f);
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, b += Q8_K_SZ, src += 256) {
        __m256 m = _mm256_setzero_ps();
        for (int k = 0; k < 32; k++) m = _mm256_max_ps(_mm256_andnot_ps(sgn, _mm256_loadu_ps(src + 8 * k)), m);
        const float amax = hmax_ps(m);
        float d = 0.0f;
        int16_t bsums[16];
        if (amax == 0.0f) {
            memset(b + Q8K_QS, 0, 256);
            memset(bsums, 0, sizeof bsums);
        } else {
            /* the first element of largest magnitude, as the scalar loop finds it */
            float max = 0.0f;
            const __m256 am = _mm256_set1_ps(amax);
            for (int k = 0; k < 32; k++) {
                const __m256 v = _mm256_loadu_ps(src + 8 * k);
                const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sgn, v), am, _CMP_EQ_OQ));
                if (hit) {
                    max = src[8 * k + __builtin_ctz((unsigned)hit)];
                    break;
                }
            }
            const float iscale = -127.0f / max;
            const __m256 is = _mm256_set1_ps(iscale);
            const __m256i lim = _mm256_set1_epi32(127);
            for (int k = 0; k < 8; k++) {
                __m256i q[4];
                for (int j = 0; j < 4; j++) {
                    const __m256 v = _mm256_mul_ps(is, _mm256_loadu_ps(src + 32 * k + 8 * j));
                    q[j] = _mm256_min_epi32(_mm256_cvtps_epi32(v), lim);
                }
                _mm256_storeu_si256((__m256i *)(b + Q8K_QS + 32 * k), pack_i8(q[0], q[1], q[2], q[3]));
                bsums[2 * k] = (int16_t)hsum_epi32(_mm256_add_epi32(q[0], q[1]));
                bsums[2 * k + 1] = (int16_t)hsum_epi32(_mm256_add_epi32(q[2], q[3]));
            }
            d = 1.0f / iscale;
        }
        memcpy(b, &d, sizeof d);
        memcpy(b + Q8K_BSUMS, bsums, sizeof bsums);
    }
}

static void quant_f16(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(src + i);
        if (_mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q))) {
            for (int j = 0; j < 8; j++) st16(p + 2 * (i + j), ns_fp32_to_fp16(src[i + j])); /* NaN: as quant.c */
        } else {
            _mm_storeu_si128((__m128i *)(p + 2 * i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        }
    }
    for (; i < n; i++) st16(p + 2 * i, ns_fp32_to_fp16(src[i]));
}

/* Attention's value sums (quant.h). A product and a sum, not a fused
 * multiply-add, so that every output equals the scalar kernel's. */
INLINE void axpy_n8(__m256 v, const float *a, int ny, float *y, size_t ys) {
    for (int j = 0; j < ny; j++) {
        float *yj = y + (size_t)j * ys;
        _mm256_storeu_ps(yj, _mm256_add_ps(_mm256_loadu_ps(yj), _mm256_mul_ps(_mm256_set1_ps(a[j]), v)));
    }
}

/* One element of the tails. The product is its own statement: this file is
 * built with FMA, and clang contracts a * b + c written as one expression. */
INLINE void axpy1(float *y, float a, float x) {
    const float prod = a * x;
    *y += prod;
}

static void axpy_n_f32(int64_t n, const void *x, const float *a, int ny, float *y, size_t ys) {
    const float *p = x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) axpy_n8(_mm256_loadu_ps(p + i), a, ny, y + i, ys);
    for (; i < n; i++)
        for (int j = 0; j < ny; j++) axpy1(&y[(size_t)j * ys + i], a[j], p[i]);
}

static void axpy_n_f16(int64_t n, const void *x, const float *a, int ny, float *y, size_t ys) {
    const uint8_t *p = x;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) axpy_n8(_mm256_cvtph_ps(loadu128(p + 2 * i)), a, ny, y + i, ys);
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        for (int j = 0; j < ny; j++) axpy1(&y[(size_t)j * ys + i], a[j], ns_fp16_to_fp32(h));
    }
}

/* F16C conversion is exact, NaN payloads included, like ns_fp16_to_fp32. */
static void dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    for (; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = ns_fp16_to_fp32(h);
    }
}

/* ---- prompt GEMM: 8 weight rows x up to 4 activation rows --------------
 * kernels_avx512.c's scheme in 256-bit vectors (lanes are weight rows): a
 * panel holds 8 rows' blocks unpacked to unsigned bytes (value + offset)
 * and transposed so that vector g of a block has, in lane r, bytes
 * 4g..4g+3 of row r; a dot product with an activation dword broadcast to
 * all lanes advances 8 row sums at once. Per (row, activation row) the
 * arithmetic is the scalar kernel's, so every output equals scalar
 * vec_dot's bit for bit (see there). */

/* sizes as in kernels_avx512.c */
enum { GEMM_ROWS = 8, GEMM_TOKS = 4, GEMM_KC = 64, GEMM_XBLOCK = 40 };

typedef enum { GW_Q4_0, GW_Q5_0, GW_Q8_0, GW_Q4_1, GW_Q5_1 } gemm_wtype;

typedef struct {
    __m256i w[GEMM_KC][8];
    __m256 d[GEMM_KC], m[GEMM_KC];
} gemm_panel;

INLINE bool gw_affine(gemm_wtype t) { return t == GW_Q4_1 || t == GW_Q5_1; }

INLINE size_t gw_size(gemm_wtype t) {
    switch (t) {
    case GW_Q4_0: return Q4_0_SZ;
    case GW_Q5_0: return Q5_0_SZ;
    case GW_Q8_0: return Q8_0_SZ;
    case GW_Q4_1: return Q4_1_SZ;
    default: return Q5_1_SZ;
    }
}

INLINE int gw_offset(gemm_wtype t) {
    switch (t) {
    case GW_Q4_0: return 8;
    case GW_Q5_0: return 16;
    case GW_Q8_0: return 128;
    default: return 0;
    }
}

/* One block's 32 values as unsigned bytes, in element order. */
INLINE __m256i gw_unpack(const uint8_t *b, gemm_wtype t) {
    switch (t) {
    case GW_Q4_0: return unpack_nibbles(b + 2);
    case GW_Q5_0: return unpack_q5(b + 2, b + 6);
    case GW_Q8_0: return _mm256_xor_si256(loadu256(b + 2), _mm256_set1_epi8((char)0x80));
    case GW_Q4_1: return unpack_nibbles(b + 4);
    default: return unpack_q5(b + 4, b + 8);
    }
}

/* Defeats contraction of a product into a following addition. */
INLINE __m256 rounded(__m256 v) {
    __asm__("" : "+x"(v));
    return v;
}

INLINE int32_t ld_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 8 rows of 32 bytes -> 8 vectors, vector g holding bytes 4g..4g+3 of row r
 * in lane r. */
INLINE void gemm_transpose(const __m256i z[GEMM_ROWS], __m256i *out) {
    __m256i s[8];
    for (int h = 0; h < 8; h += 4) {
        const __m256i t0 = _mm256_unpacklo_epi32(z[h], z[h + 1]), t1 = _mm256_unpackhi_epi32(z[h], z[h + 1]);
        const __m256i t2 = _mm256_unpacklo_epi32(z[h + 2], z[h + 3]), t3 = _mm256_unpackhi_epi32(z[h + 2], z[h + 3]);
        s[h] = _mm256_unpacklo_epi64(t0, t2);
        s[h + 1] = _mm256_unpackhi_epi64(t0, t2);
        s[h + 2] = _mm256_unpacklo_epi64(t1, t3);
        s[h + 3] = _mm256_unpackhi_epi64(t1, t3);
    }
    /* s[g] (g < 4): rows 0-3, dwords g | g + 4; s[g + 4]: rows 4-7 */
    for (int g = 0; g < 4; g++) {
        out[g] = _mm256_permute2x128_si256(s[g], s[g + 4], 0x20);
        out[g + 4] = _mm256_permute2x128_si256(s[g], s[g + 4], 0x31);
    }
}

/* Panel of rows w, w + ws, ... (nr of them; the rest repeat the last) for
 * blocks k0 .. k0 + nbc - 1. */
INLINE void gemm_pack(gemm_panel *p, const uint8_t *w, size_t ws, int nr, int64_t k0, int nbc, gemm_wtype t) {
    const size_t SZ = gw_size(t);
    const uint8_t *rows[GEMM_ROWS];
    for (int r = 0; r < GEMM_ROWS; r++) rows[r] = w + (size_t)(r < nr ? r : nr - 1) * ws + (size_t)k0 * SZ;
    for (int k = 0; k < nbc; k++) {
        uint16_t dh[GEMM_ROWS], mh[GEMM_ROWS];
        __m256i z[GEMM_ROWS];
        for (int r = 0; r < GEMM_ROWS; r++) {
            const uint8_t *b = rows[r] + (size_t)k * SZ;
            z[r] = gw_unpack(b, t);
            dh[r] = ld16(b);
            mh[r] = ld16(b + 2);
        }
        gemm_transpose(z, p->w[k]);
        p->d[k] = _mm256_cvtph_ps(loadu128((const uint8_t *)dh));
        if (gw_affine(t)) p->m[k] = _mm256_cvtph_ps(loadu128((const uint8_t *)mh));
    }
}

/* acc + the 8 rows' integer sums of one block against activation bytes q. */
INLINE __m256i gemm_dot(__m256i acc, const gemm_panel *p, int k, const uint8_t *q) {
#ifdef __AVXVNNI__
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++)
        acc = _mm256_dpbusd_avx_epi32(acc, _mm256_load_si256(&p->w[k][g]), _mm256_set1_epi32(ld_i32(q + 4 * g)));
    return acc;
#else
    /* i16 sums of four pairs: |.| <= 4 * 2 * 31 * 127 < 2^15 */
    const __m256i one = _mm256_set1_epi16(1);
#pragma GCC unroll 2
    for (int h = 0; h < 8; h += 4) {
        __m256i s = _mm256_maddubs_epi16(_mm256_load_si256(&p->w[k][h]), _mm256_set1_epi32(ld_i32(q + 4 * h)));
#pragma GCC unroll 3
        for (int g = h + 1; g < h + 4; g++)
            s = _mm256_add_epi16(
                s, _mm256_maddubs_epi16(_mm256_load_si256(&p->w[k][g]), _mm256_set1_epi32(ld_i32(q + 4 * g))));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, one));
    }
    return acc;
#endif
}

/* T activation rows (at x, x + xs, ...) against a panel's chunk; rmask
 * selects the panel's real rows. */
INLINE void gemm_tile(const gemm_panel *p, int nbc, const uint8_t *x, size_t xs, int64_t k0, const int T, float *y,
                      size_t ys, __m256i rmask, bool first, gemm_wtype t) {
    const uint8_t *xb[GEMM_TOKS];
    __m256 acc[GEMM_TOKS];
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) {
        xb[j] = x + (size_t)j * xs + (size_t)k0 * GEMM_XBLOCK;
        acc[j] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(y + (size_t)j * ys, rmask);
    }
    for (int k = 0; k < nbc; k++) {
        const __m256 dw = p->d[k];
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
            const uint8_t *b = xb[j] + (size_t)k * GEMM_XBLOCK;
            const __m256i init = gw_affine(t) ? _mm256_setzero_si256() : _mm256_set1_epi32(ld_i32(b + 36));
            const __m256i isum = gemm_dot(init, p, k, b);
            const __m256 s = _mm256_mul_ps(dw, _mm256_set1_ps(ldf(b + 32)));
            __m256 v = rounded(_mm256_mul_ps(_mm256_cvtepi32_ps(isum), s));
            if (gw_affine(t)) v = _mm256_add_ps(v, rounded(_mm256_mul_ps(p->m[k], _mm256_set1_ps(ldf(b + 36)))));
            acc[j] = _mm256_add_ps(acc[j], v);
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) _mm256_maskstore_ps(y + (size_t)j * ys, rmask, acc[j]);
}

/* As in kernels_avx512.c. */
INLINE void gemm_impl(int64_t n, const void *wv, size_t ws, int n_rows, const void *xv, size_t xs, int n_x, float *y,
                      size_t ys, gemm_wtype t) {
    const uint8_t *w = wv, *x = xv;
    const int64_t nb = n / 32;
    gemm_panel p __attribute__((aligned(32)));
    for (int r0 = 0; r0 < n_rows; r0 += GEMM_ROWS) {
        const int nr = n_rows - r0 < GEMM_ROWS ? n_rows - r0 : GEMM_ROWS;
        const __m256i rm = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int64_t k0 = 0; k0 < nb; k0 += GEMM_KC) {
            const int nbc = nb - k0 < GEMM_KC ? (int)(nb - k0) : GEMM_KC;
            const bool first = k0 == 0;
            gemm_pack(&p, w + (size_t)r0 * ws, ws, nr, k0, nbc, t);
            for (int j = 0; j < n_x;) {
                const int left = n_x - j, T = left >= 4 ? 4 : left >= 2 ? 2 : 1;
                const uint8_t *xj = x + (size_t)j * xs;
                float *yj = y + (size_t)j * ys + r0;
                if (T == 4) gemm_tile(&p, nbc, xj, xs, k0, 4, yj, ys, rm, first, t);
                else if (T == 2) gemm_tile(&p, nbc, xj, xs, k0, 2, yj, ys, rm, first, t);
                else gemm_tile(&p, nbc, xj, xs, k0, 1, yj, ys, rm, first, t);
                j += T;
            }
        }
    }
}

/* One activation row: per block the values and the scale of the Q8_0 /
 * Q8_1 quantizer, then -offset * (sum of the values), or for the affine
 * types the Q8_1 sum term s. */
INLINE void gemm_prep_impl(const float *src, int64_t n, void *dst, gemm_wtype t) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 32; i++, b += GEMM_XBLOCK, src += 32) {
        int isum;
        const float d = q8_block(src, b, &isum);
        const float dh = h2f(ns_fp32_to_fp16(d));
        memcpy(b + 32, &dh, 4);
        if (gw_affine(t)) {
            const float s = h2f(ns_fp32_to_fp16((float)isum * d));
            memcpy(b + 36, &s, 4);
        } else {
            const int32_t e = -gw_offset(t) * isum;
            memcpy(b + 36, &e, 4);
        }
    }
}

#define DEFINE_GEMM(name, t)                                                                                   \
    static void gemm_prep_##name(const float *x, int64_t n, void *dst) { gemm_prep_impl(x, n, dst, t); }       \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int n_rows, const void *x, size_t xs, int n_x, \
                            float *y, size_t ys) {                                                              \
        gemm_impl(n, w, ws, n_rows, x, xs, n_x, y, ys, t);                                                      \
    }

DEFINE_GEMM(q4_0, GW_Q4_0)
DEFINE_GEMM(q5_0, GW_Q5_0)
DEFINE_GEMM(q4_1, GW_Q4_1)
DEFINE_GEMM(q5_1, GW_Q5_1)
#ifdef __AVXVNNI__
/* Q8_0 unpacks to value + 128 in [0, 255]: VPMADDUBSW pair sums would
 * saturate, so only the VNNI level has it. */
DEFINE_GEMM(q8_0, GW_Q8_0)
#endif

/* ---- prompt GEMM for K-quants ------------------------------------------------
 * kernels_avx512.c's K-quant scheme in 256-bit vectors (8 rows a panel);
 * each output equals scalar vec_dot's bit for bit (see there). */

enum { GEMM_KKC = 8, GEMM_KXBLOCK = 320, KX_D = 256, KX_BSUMS = 260, KX_PAIRS = 292 };

typedef enum { GK_Q2_K, GK_Q3_K, GK_Q4_K, GK_Q5_K, GK_Q6_K } gemm_ktype;

typedef struct {
    __m256i w[GEMM_KKC][8][8];
    __m256i sc[GEMM_KKC][16]; /* i32 sub-block scales (Q4_K / Q5_K: 8) */
    __m256i mp[GEMM_KKC][8];  /* i16 pairs: mins (Q4_K / Q5_K: 4), Q6_K scales */
    __m256 d[GEMM_KKC], dmin[GEMM_KKC];
} gemm_kpanel;

INLINE size_t gk_size(gemm_ktype t) {
    switch (t) {
    case GK_Q2_K: return Q2_K_SZ;
    case GK_Q3_K: return Q3_K_SZ;
    case GK_Q4_K: return Q4_K_SZ;
    case GK_Q5_K: return Q5_K_SZ;
    default: return Q6_K_SZ;
    }
}

/* Sub-blocks of 16 elements (else 32), and mins (else an offset). */
INLINE bool gk_sub16(gemm_ktype t) { return t == GK_Q2_K || t == GK_Q3_K || t == GK_Q6_K; }
INLINE bool gk_mins(gemm_ktype t) { return t == GK_Q2_K || t == GK_Q4_K || t == GK_Q5_K; }

/* 32 bytes at offset off of each row's super-block, transposed. */
INLINE void gk_transpose(const uint8_t *const *rows, size_t off, __m256i *out) {
    __m256i v[GEMM_ROWS];
    for (int r = 0; r < GEMM_ROWS; r++) v[r] = loadu256(rows[r] + off);
    gemm_transpose(v, out);
}

/* Bytes of v with bit b set -> 16, others 0. */
INLINE __m256i bit16(__m256i v, int b) {
    const __m256i m = _mm256_set1_epi8((char)(1 << b));
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, m), m), _mm256_set1_epi8(16));
}

/* The eight units (elements 32u..32u+31) of one super-block of each row as
 * unsigned bytes, transposed: the packed bytes are transposed first and the
 * values unpacked in that layout (the same byte of a row holds values of
 * two or four units). */
INLINE void gk_units(__m256i w[8][8], const uint8_t *const *rows, gemm_ktype t) {
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    __m256i a[8];
    if (t == GK_Q2_K || t == GK_Q3_K) {
        /* 2-bit values: unit 4h + s is bits 2s..2s+1 of qs bytes 32h..32h+31;
         * Q3_K adds 4 where bit u of hmask[l] is set */
        const __m256i m3 = _mm256_set1_epi8(3);
        __m256i hm[8];
        if (t == GK_Q3_K) gk_transpose(rows, 0, hm);
        for (int h = 0; h < 2; h++) {
            gk_transpose(rows, (size_t)(t == GK_Q3_K ? 32 : 16) + 32 * h, a);
            for (int sh = 0; sh < 4; sh++) {
                const int u = 4 * h + sh;
                for (int g = 0; g < 8; g++) {
                    w[u][g] = _mm256_and_si256(_mm256_srli_epi16(a[g], 2 * sh), m3);
                    if (t == GK_Q3_K) w[u][g] = _mm256_or_si256(w[u][g], _mm256_srli_epi16(bit16(hm[g], u), 2));
                }
            }
        }
        return;
    }
    if (t == GK_Q6_K) {
        __m256i h[2][8];
        gk_transpose(rows, 128, h[0]);
        gk_transpose(rows, 160, h[1]);
        for (int c = 0; c < 4; c++) { /* ql bytes 32c..32c+31: units u and u + 2 */
            gk_transpose(rows, (size_t)32 * c, a);
            const int hh = c / 2, u = 4 * hh + (c & 1);
            for (int g = 0; g < 8; g++) {
                const __m256i qh = h[hh][g];
                const __m256i hl = _mm256_and_si256((c & 1) ? _mm256_slli_epi16(qh, 2) : _mm256_slli_epi16(qh, 4), m30);
                const __m256i hu = _mm256_and_si256((c & 1) ? _mm256_srli_epi16(qh, 2) : qh, m30);
                w[u][g] = _mm256_or_si256(_mm256_and_si256(a[g], m4), hl);
                w[u + 2][g] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(a[g], 4), m4), hu);
            }
        }
        return;
    }
    __m256i qh[8];
    if (t == GK_Q5_K) gk_transpose(rows, 16, qh);
    for (int c = 0; c < 4; c++) {
        gk_transpose(rows, (size_t)(t == GK_Q5_K ? 48 : 16) + 32 * c, a);
        for (int g = 0; g < 8; g++) {
            w[2 * c][g] = _mm256_and_si256(a[g], m4);
            w[2 * c + 1][g] = _mm256_and_si256(_mm256_srli_epi16(a[g], 4), m4);
            if (t == GK_Q5_K) {
                w[2 * c][g] = _mm256_or_si256(w[2 * c][g], bit16(qh[g], 2 * c));
                w[2 * c + 1][g] = _mm256_or_si256(w[2 * c + 1][g], bit16(qh[g], 2 * c + 1));
            }
        }
    }
}

INLINE __m256i byte6(__m256i v, int i) { return _mm256_and_si256(_mm256_srli_epi32(v, 8 * i), _mm256_set1_epi32(63)); }

/* Scales (and mins, d, dmin) of one super-block of each row, gathered with
 * the rows in lanes: row r's block at base + off[r]. */
INLINE const int *at(const uint8_t *p) { return (const int *)(const void *)p; }

INLINE void gemm_kscales(gemm_kpanel *p, int k, const uint8_t *base, __m256i off, gemm_ktype t) {
    const int *b = at(base);
    const __m256i m4 = _mm256_set1_epi32(15), m2 = _mm256_set1_epi32(3);
    if (t == GK_Q2_K) { /* scales[j]: low nibble the scale, high the min */
        __m256i s4[4];
        for (int m = 0; m < 4; m++) s4[m] = _mm256_i32gather_epi32(at(base + 4 * m), off, 1);
        for (int j = 0; j < 16; j++) p->sc[k][j] = _mm256_and_si256(_mm256_srli_epi32(s4[j / 4], 8 * (j % 4)), m4);
        for (int i = 0; i < 8; i++) {
            const __m256i v = _mm256_srli_epi32(s4[i / 2], 16 * (i % 2));
            p->mp[k][i] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(v, 4), m4),
                                          _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(v, 12), m4), 16));
        }
        const __m256i dd = _mm256_i32gather_epi32(at(base + 80), off, 1);
        const __m256i lo16 = _mm256_and_si256(dd, _mm256_set1_epi32(0xFFFF)), hi16 = _mm256_srli_epi32(dd, 16);
        const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo16, hi16), 0xD8);
        p->d[k] = _mm256_cvtph_ps(_mm256_castsi256_si128(pk));
        p->dmin[k] = _mm256_cvtph_ps(_mm256_extracti128_si256(pk, 1));
        return;
    }
    if (t == GK_Q3_K) { /* 6-bit scales - 32: low 4 bits in bytes 0-7 (two a byte), high 2 in bytes 8-11 */
        const __m256i a0 = _mm256_i32gather_epi32(at(base + 96), off, 1), a1 = _mm256_i32gather_epi32(at(base + 100), off, 1);
        const __m256i a2 = _mm256_i32gather_epi32(at(base + 104), off, 1);
        for (int j = 0; j < 16; j++) {
            const int bb = j % 8;
            const __m256i lo = _mm256_and_si256(_mm256_srli_epi32(bb < 4 ? a0 : a1, 8 * (bb % 4) + 4 * (j / 8)), m4);
            const __m256i hi = _mm256_and_si256(_mm256_srli_epi32(a2, 8 * (j % 4) + 2 * (j / 4)), m2);
            p->sc[k][j] = _mm256_sub_epi32(_mm256_or_si256(lo, _mm256_slli_epi32(hi, 4)), _mm256_set1_epi32(32));
        }
        for (int i = 0; i < 8; i++)
            p->mp[k][i] = _mm256_or_si256(_mm256_and_si256(p->sc[k][2 * i], _mm256_set1_epi32(0xFFFF)),
                                          _mm256_slli_epi32(p->sc[k][2 * i + 1], 16));
        /* d: bytes 108-109, read as the top of the dword at 106 (the block ends at 110) */
        const __m256i dv = _mm256_srli_epi32(_mm256_i32gather_epi32(at(base + 106), off, 1), 16);
        p->d[k] = _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(dv, dv), 0x08)));
        return;
    }
    if (t == GK_Q6_K) {
        __m256i s4[4];
        for (int m = 0; m < 4; m++) s4[m] = _mm256_i32gather_epi32(at(base + 192 + 4 * m), off, 1);
        for (int j = 0; j < 16; j++) /* sign-extend byte j % 4 */
            p->sc[k][j] = _mm256_srai_epi32(_mm256_slli_epi32(s4[j / 4], 24 - 8 * (j % 4)), 24);
        for (int i = 0; i < 8; i++) { /* bytes 2i, 2i + 1 as i16 */
            const __m256i v = i % 2 ? _mm256_srli_epi32(s4[i / 2], 16) : s4[i / 2];
            const __m256i lo = _mm256_srai_epi16(_mm256_slli_epi16(v, 8), 8), hi = _mm256_srai_epi16(v, 8);
            p->mp[k][i] = _mm256_blend_epi16(lo, _mm256_slli_epi32(hi, 16), 0xAA);
        }
        /* d: bytes 208-209, read as the top of the dword at 206 (the block ends at 210) */
        const __m256i dv = _mm256_srli_epi32(_mm256_i32gather_epi32(at(base + 206), off, 1), 16);
        p->d[k] = _mm256_cvtph_ps(_mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi32(dv, dv), 0x08)));
        return;
    }
    const __m256i dd = _mm256_i32gather_epi32(b, off, 1);
    const __m256i u0 = _mm256_i32gather_epi32(at(base + 4), off, 1);
    const __m256i u1 = _mm256_i32gather_epi32(at(base + 8), off, 1);
    const __m256i u2 = _mm256_i32gather_epi32(at(base + 12), off, 1);
    __m256i mn[8];
    for (int j = 0; j < 4; j++) {
        p->sc[k][j] = byte6(u0, j);
        mn[j] = byte6(u1, j);
        /* j + 4: low 4 bits from u2's byte j, high 2 from the top of byte j of u0 / u1 */
        const __m256i b2 = _mm256_srli_epi32(u2, 8 * j);
        const __m256i h0 = _mm256_and_si256(_mm256_srli_epi32(u0, 8 * j + 6), m2);
        const __m256i h1 = _mm256_and_si256(_mm256_srli_epi32(u1, 8 * j + 6), m2);
        p->sc[k][j + 4] = _mm256_or_si256(_mm256_and_si256(b2, m4), _mm256_slli_epi32(h0, 4));
        mn[j + 4] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(b2, 4), m4), _mm256_slli_epi32(h1, 4));
    }
    for (int i = 0; i < 4; i++) p->mp[k][i] = _mm256_or_si256(mn[2 * i], _mm256_slli_epi32(mn[2 * i + 1], 16));
    const __m256i lo16 = _mm256_and_si256(dd, _mm256_set1_epi32(0xFFFF)), hi16 = _mm256_srli_epi32(dd, 16);
    /* packus: [lo 0-3, hi 0-3, lo 4-7, hi 4-7] as u16 */
    const __m256i pk = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo16, hi16), 0xD8);
    p->d[k] = _mm256_cvtph_ps(_mm256_castsi256_si128(pk));
    p->dmin[k] = _mm256_cvtph_ps(_mm256_extracti128_si256(pk, 1));
}

INLINE void gemm_kpack(gemm_kpanel *p, const uint8_t *w, size_t ws, int nr, int64_t k0, int nbc, gemm_ktype t) {
    const size_t SZ = gk_size(t);
    const uint8_t *rows[GEMM_ROWS];
    int32_t offs[GEMM_ROWS];
    for (int r = 0; r < GEMM_ROWS; r++) {
        offs[r] = (int32_t)((size_t)(r < nr ? r : nr - 1) * ws);
        rows[r] = w + offs[r] + (size_t)k0 * SZ;
    }
    const __m256i off = loadu256((const uint8_t *)offs);
    for (int k = 0; k < nbc; k++) {
        const uint8_t *blocks[GEMM_ROWS];
        for (int r = 0; r < GEMM_ROWS; r++) blocks[r] = rows[r] + (size_t)k * SZ;
        gk_units(p->w[k], blocks, t);
        gemm_kscales(p, k, w + (size_t)(k0 + k) * SZ, off, t);
    }
}

/* Sums of four groups (16 elements, from vector w[0]) of values up to 63. */
INLINE __m256i gemm_dot4(const __m256i *w, const uint8_t *q) {
#ifdef __AVXVNNI__
    __m256i acc = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++)
        acc = _mm256_dpbusd_avx_epi32(acc, _mm256_load_si256(w + g), _mm256_set1_epi32(ld_i32(q + 4 * g)));
    return acc;
#else
    /* i16 sums of two pairs: |.| <= 2 * 2 * 63 * 127 < 2^15 */
    const __m256i one = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int h = 0; h < 4; h += 2) {
        const __m256i s =
            _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_load_si256(w + h), _mm256_set1_epi32(ld_i32(q + 4 * h))),
                             _mm256_maddubs_epi16(_mm256_load_si256(w + h + 1), _mm256_set1_epi32(ld_i32(q + 4 * h + 4))));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(s, one));
    }
    return acc;
#endif
}

/* acc + sum of i16 pair products. */
INLINE __m256i dot_i16(__m256i acc, __m256i a, __m256i b) {
#ifdef __AVXVNNI__
    return _mm256_dpwssd_avx_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#endif
}

INLINE void gemm_ktile(const gemm_kpanel *p, int nbc, const uint8_t *x, size_t xs, int64_t k0, const int T, float *y,
                       size_t ys, __m256i rmask, bool first, gemm_ktype t) {
    const uint8_t *xb[GEMM_TOKS];
    __m256 acc[GEMM_TOKS];
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) {
        xb[j] = x + (size_t)j * xs + (size_t)k0 * GEMM_KXBLOCK;
        acc[j] = first ? _mm256_setzero_ps() : _mm256_maskload_ps(y + (size_t)j * ys, rmask);
    }
    for (int k = 0; k < nbc; k++) {
        __m256i isum[GEMM_TOKS];
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) isum[j] = _mm256_setzero_si256();
        for (int u = 0; u < 8; u++) {
            const __m256i *w = p->w[k][u];
            if (gk_sub16(t)) {
                const __m256i sa = p->sc[k][2 * u], sb = p->sc[k][2 * u + 1];
#pragma GCC unroll 4
                for (int j = 0; j < T; j++) {
                    const uint8_t *q = xb[j] + (size_t)k * GEMM_KXBLOCK + 32 * u;
                    const __m256i a = _mm256_mullo_epi32(gemm_dot4(w, q), sa);
                    const __m256i b = _mm256_mullo_epi32(gemm_dot4(w + 4, q + 16), sb);
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_add_epi32(a, b));
                }
            } else {
                const __m256i sc = p->sc[k][u];
#pragma GCC unroll 4
                for (int j = 0; j < T; j++) {
                    const uint8_t *q = xb[j] + (size_t)k * GEMM_KXBLOCK + 32 * u;
                    const __m256i s = _mm256_add_epi32(gemm_dot4(w, q), gemm_dot4(w + 4, q + 16));
                    isum[j] = _mm256_add_epi32(isum[j], _mm256_mullo_epi32(s, sc));
                }
            }
        }
#pragma GCC unroll 4
        for (int j = 0; j < T; j++) {
            const uint8_t *b = xb[j] + (size_t)k * GEMM_KXBLOCK;
            const __m256 dy = _mm256_set1_ps(ldf(b + KX_D));
            if (!gk_mins(t)) {
                /* the offset (Q3_K 4, Q6_K 32): sum of scale * block sum, in i16 pairs */
                __m256i corr = _mm256_setzero_si256();
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) corr = dot_i16(corr, p->mp[k][i], _mm256_set1_epi32(ld_i32(b + KX_BSUMS + 4 * i)));
                const __m256i is = _mm256_sub_epi32(isum[j], _mm256_slli_epi32(corr, t == GK_Q6_K ? 5 : 2));
                acc[j] = _mm256_add_ps(acc[j], rounded(_mm256_mul_ps(_mm256_mul_ps(p->d[k], dy), _mm256_cvtepi32_ps(is))));
            } else {
                /* mins against the sums of 16 (Q2_K) or 32 */
                __m256i summs = _mm256_setzero_si256();
                const int np = t == GK_Q2_K ? 8 : 4;
                const uint8_t *bs = b + (t == GK_Q2_K ? KX_BSUMS : KX_PAIRS);
#pragma GCC unroll 8
                for (int i = 0; i < np; i++) summs = dot_i16(summs, p->mp[k][i], _mm256_set1_epi32(ld_i32(bs + 4 * i)));
                const __m256 t1 = rounded(_mm256_mul_ps(_mm256_mul_ps(p->d[k], dy), _mm256_cvtepi32_ps(isum[j])));
                const __m256 t2 = rounded(_mm256_mul_ps(_mm256_mul_ps(p->dmin[k], dy), _mm256_cvtepi32_ps(summs)));
                acc[j] = _mm256_add_ps(acc[j], _mm256_sub_ps(t1, t2));
            }
        }
    }
#pragma GCC unroll 4
    for (int j = 0; j < T; j++) _mm256_maskstore_ps(y + (size_t)j * ys, rmask, acc[j]);
}

INLINE void gemm_kimpl(int64_t n, const void *wv, size_t ws, int n_rows, const void *xv, size_t xs, int n_x, float *y,
                      size_t ys, gemm_ktype t) {
    const uint8_t *w = wv, *x = xv;
    const int64_t nb = n / 256;
    gemm_kpanel p __attribute__((aligned(32)));
    for (int r0 = 0; r0 < n_rows; r0 += GEMM_ROWS) {
        const int nr = n_rows - r0 < GEMM_ROWS ? n_rows - r0 : GEMM_ROWS;
        const __m256i rm = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        for (int64_t k0 = 0; k0 < nb; k0 += GEMM_KKC) {
            const int nbc = nb - k0 < GEMM_KKC ? (int)(nb - k0) : GEMM_KKC;
            const bool first = k0 == 0;
            gemm_kpack(&p, w + (size_t)r0 * ws, ws, nr, k0, nbc, t);
            for (int j = 0; j < n_x;) {
                const int left = n_x - j, T = left >= 4 ? 4 : left >= 2 ? 2 : 1;
                const uint8_t *xj = x + (size_t)j * xs;
                float *yj = y + (size_t)j * ys + r0;
                if (T == 4) gemm_ktile(&p, nbc, xj, xs, k0, 4, yj, ys, rm, first, t);
                else if (T == 2) gemm_ktile(&p, nbc, xj, xs, k0, 2, yj, ys, rm, first, t);
                else gemm_ktile(&p, nbc, xj, xs, k0, 1, yj, ys, rm, first, t);
                j += T;
            }
        }
    }
}

/* One activation row: the Q8_K quantizer's blocks, rearranged, plus the
 * sums of 32 for the mins. */
static void gemm_kprep(const float *src, int64_t n, void *dst) {
    uint8_t *b = dst;
    uint8_t tmp[Q8_K_SZ];
    for (int64_t i = 0; i < n / 256; i++, b += GEMM_KXBLOCK, src += 256) {
        quant_q8_K(src, tmp, 256);
        memcpy(b, tmp + Q8K_QS, 256);
        memcpy(b + KX_D, tmp, 4);
        memcpy(b + KX_BSUMS, tmp + Q8K_BSUMS, 32);
        for (int j = 0; j < 8; j++) {
            const int16_t s = (int16_t)(ldi16(tmp + Q8K_BSUMS + 4 * j) + ldi16(tmp + Q8K_BSUMS + 4 * j + 2));
            memcpy(b + KX_PAIRS + 2 * j, &s, 2);
        }
        memset(b + KX_PAIRS + 16, 0, GEMM_KXBLOCK - KX_PAIRS - 16);
    }
}

#define DEFINE_KGEMM(name, t)                                                                                  \
    static void gemm_##name(int64_t n, const void *w, size_t ws, int n_rows, const void *x, size_t xs, int n_x, \
                            float *y, size_t ys) {                                                              \
        gemm_kimpl(n, w, ws, n_rows, x, xs, n_x, y, ys, t);                                                     \
    }

DEFINE_KGEMM(q2_K, GK_Q2_K)
DEFINE_KGEMM(q3_K, GK_Q3_K)
DEFINE_KGEMM(q4_K, GK_Q4_K)
DEFINE_KGEMM(q5_K, GK_Q5_K)
DEFINE_KGEMM(q6_K, GK_Q6_K)

/* ---- the table ---------------------------------------------------------- */

bool NS_LEVEL_BUILT(void) { return true; }

void NS_LEVEL_FILL(ns_type_kernels *tab) {
#define SET(t, fn)                 \
    tab[t].vec_dot = fn;           \
    tab[t].vec_dot_n = fn##_n;
    SET(NS_TYPE_F32, dot_f32);
    SET(NS_TYPE_F16, dot_f16);
    SET(NS_TYPE_BF16, dot_bf16);
    SET(NS_TYPE_Q4_0, dot_q4_0);
    SET(NS_TYPE_Q4_1, dot_q4_1);
    SET(NS_TYPE_Q5_0, dot_q5_0);
    SET(NS_TYPE_Q5_1, dot_q5_1);
    SET(NS_TYPE_Q8_0, dot_q8_0);
    SET(NS_TYPE_Q2_K, dot_q2_K);
    SET(NS_TYPE_Q3_K, dot_q3_K);
    SET(NS_TYPE_Q4_K, dot_q4_K);
    SET(NS_TYPE_Q5_K, dot_q5_K);
    SET(NS_TYPE_Q6_K, dot_q6_K);
#undef SET
    tab[NS_TYPE_F16].from_float = quant_f16;
    tab[NS_TYPE_F16].to_float = dequant_f16;
    tab[NS_TYPE_F16].axpy_n = axpy_n_f16;
    tab[NS_TYPE_F32].axpy_n = axpy_n_f32;
    tab[NS_TYPE_Q8_0].from_float = quant_q8_0;
    tab[NS_TYPE_Q8_1].from_float = quant_q8_1;
    tab[NS_TYPE_Q8_K].from_float = quant_q8_K;
#define SET_GEMM(t, name)                  \
    tab[t].gemm_prep = gemm_prep_##name;   \
    tab[t].gemm = gemm_##name;
    SET_GEMM(NS_TYPE_Q4_0, q4_0);
    SET_GEMM(NS_TYPE_Q5_0, q5_0);
    SET_GEMM(NS_TYPE_Q4_1, q4_1);
    SET_GEMM(NS_TYPE_Q5_1, q5_1);
#ifdef __AVXVNNI__
    SET_GEMM(NS_TYPE_Q8_0, q8_0);
#endif
    tab[NS_TYPE_Q2_K].gemm_prep = gemm_kprep;
    tab[NS_TYPE_Q2_K].gemm = gemm_q2_K;
    tab[NS_TYPE_Q3_K].gemm_prep = gemm_kprep;
    tab[NS_TYPE_Q3_K].gemm = gemm_q3_K;
    tab[NS_TYPE_Q4_K].gemm_prep = gemm_kprep;
    tab[NS_TYPE_Q4_K].gemm = gemm_q4_K;
    tab[NS_TYPE_Q5_K].gemm_prep = gemm_kprep;
    tab[NS_TYPE_Q5_K].gemm = gemm_q5_K;
    tab[NS_TYPE_Q6_K].gemm_prep = gemm_kprep;
    tab[NS_TYPE_Q6_K].gemm = gemm_q6_K;
#undef SET_GEMM
}

#endif
