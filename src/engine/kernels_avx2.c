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
 * not depend on nx, so vec_dot_n is bit-identical to vec_dot. */
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
    tab[NS_TYPE_Q8_0].from_float = quant_q8_0;
    tab[NS_TYPE_Q8_1].from_float = quant_q8_1;
    tab[NS_TYPE_Q8_K].from_float = quant_q8_K;
}

#endif
