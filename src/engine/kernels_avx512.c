/* AVX-512 kernels (built with -mavx512f -mavx512bw -mavx512dq -mavx512vl on
 * top of the AVX2 flags). The same source, included by kernels_avx512vnni.c
 * and built with -mavx512vnni as well, gives the avx512vnni level: there
 * u8 x s8 dot products use VPDPBUSD and the i16 scale products VPDPWSSD.
 *
 * 512-bit vectors hold two 32-element blocks or 64 elements of a 256-element
 * super-block. Exactness as in kernels_avx2.c: integer block sums are exact
 * (VPMADDUBSW pair sums never saturate for these operands), only the float
 * accumulation order differs from the scalar kernels, and vec_dot_n is
 * bit-identical to vec_dot (same per-row instruction sequence). The prompt
 * GEMMs at the end keep the scalar order: bit-identical to scalar vec_dot. */
#include "kernels_x86.h"

#ifdef NS_KERNELS_AVX512VNNI
#define NS_LEVEL_BUILT ns_kernels_avx512vnni_built
#define NS_LEVEL_FILL ns_kernels_avx512vnni
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVX512VNNI__)
#define NS_LEVEL_ENABLED 1
#endif
#else
#define NS_LEVEL_BUILT ns_kernels_avx512_built
#define NS_LEVEL_FILL ns_kernels_avx512
#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && \
    defined(__AVX512VL__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
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

INLINE uint64_t ld4h_bits(const uint8_t *p, size_t stride) {
    return (uint64_t)ld16(p) | ((uint64_t)ld16(p + stride) << 16) | ((uint64_t)ld16(p + 2 * stride) << 32) |
           ((uint64_t)ld16(p + 3 * stride) << 48);
}

/* Four fp16 fields at p, p + stride, ... as floats. */
INLINE __m128 ld4h(const uint8_t *p, size_t stride) {
    return _mm_cvtph_ps(_mm_cvtsi64_si128((long long)ld4h_bits(p, stride)));
}

/* The first min(m, 16) lanes. */
INLINE __mmask16 tail16(int64_t m) { return (__mmask16)(m >= 16 ? 0xFFFF : (1u << m) - 1); }

INLINE __m512i loadu512(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }
INLINE __m256i loadu256(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)p); }
INLINE __m128i loadu128(const uint8_t *p) { return _mm_loadu_si128((const __m128i *)p); }

/* 32 bytes at p, then 32 at q. */
INLINE __m512i load2x256(const uint8_t *p, const uint8_t *q) {
    return _mm512_inserti64x4(_mm512_castsi256_si512(loadu256(p)), loadu256(q), 1);
}

INLINE float hsum256(__m256 v) {
    __m128 a = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

INLINE float hsum512(__m512 v) {
    return hsum256(_mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)));
}

INLINE float hsum128(__m128 a) {
    a = _mm_add_ps(a, _mm_movehl_ps(a, a));
    a = _mm_add_ss(a, _mm_movehdup_ps(a));
    return _mm_cvtss_f32(a);
}

/* zmm whose lanes 0-7 are s[a] and lanes 8-15 s[a + 1] (a = 0 or 2). */
INLINE __m512 bcast2(__m128 s, int a) {
    const __m512i idx = _mm512_setr_epi32(a, a, a, a, a, a, a, a, a + 1, a + 1, a + 1, a + 1, a + 1, a + 1, a + 1, a + 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(s));
}

/* u8 x s8, groups of four summed into i32 lanes. */
INLINE __m512i dot_us(__m512i u, __m512i s) {
#ifdef __AVX512VNNI__
    return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s);
#else
    return _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), _mm512_set1_epi16(1));
#endif
}

INLINE __m256i dot_us256(__m256i u, __m256i s) {
#ifdef __AVX512VNNI__
    return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s);
#else
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
#endif
}

/* sum (u - c) * s */
INLINE __m256i dot_us_off256(__m256i u, __m256i s, __m256i c) {
#ifdef __AVX512VNNI__
    return _mm256_sub_epi32(dot_us256(u, s), dot_us256(c, s));
#else
    const __m256i p = _mm256_sub_epi16(_mm256_maddubs_epi16(u, s), _mm256_maddubs_epi16(c, s));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
#endif
}

/* acc + sum of (u8 x s8 pair sums) * i16 scales */
INLINE __m512i dot_us_scaled(__m512i acc, __m512i u, __m512i s, __m512i scale16) {
#ifdef __AVX512VNNI__
    return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(u, s), scale16);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(u, s), scale16));
#endif
}

INLINE __m256i nibbles1(const uint8_t *qs) {
    const __m128i t = loadu128(qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
}

/* i16 vector of 32 lanes whose lane i is v's lane idx[i / 8] (v: 16 i16 in
 * the low 256 bits). */
INLINE __m512i pick4(__m512i v, int a, int b, int c, int d) {
    const __m512i idx = _mm512_set_epi16(d, d, d, d, d, d, d, d, c, c, c, c, c, c, c, c, b, b, b, b, b, b, b, b, a, a,
                                         a, a, a, a, a, a);
    return _mm512_permutexvar_epi16(idx, v);
}

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
    __m512 a0[NXMAX], a1[NXMAX];
    FOR_R { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 w0 = _mm512_loadu_ps(w + 4 * i), w1 = _mm512_loadu_ps(w + 4 * i + 64);
        FOR_R {
            const uint8_t *px = x + r * xs + 4 * i;
            a0[r] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(px), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(px + 64), a1[r]);
        }
    }
    if (i < n) { /* masked tail, up to 31 elements */
        const int64_t m = n - i;
        const __mmask16 k0 = tail16(m);
        const __mmask16 k1 = (__mmask16)(m <= 16 ? 0 : (1u << (m - 16)) - 1);
        const __m512 w0 = _mm512_maskz_loadu_ps(k0, w + 4 * i), w1 = _mm512_maskz_loadu_ps(k1, w + 4 * i + 64);
        FOR_R {
            const uint8_t *px = x + r * xs + 4 * i;
            a0[r] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(k0, px), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(k1, px + 64), a1[r]);
        }
    }
    FOR_R out[r] = hsum512(_mm512_add_ps(a0[r], a1[r]));
}
DEFINE_DOTS(dot_f32, f32_core)

INLINE void f16_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    __m512 a0[NXMAX], a1[NXMAX];
    FOR_R { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 w0 = _mm512_cvtph_ps(loadu256(w + 2 * i)), w1 = _mm512_cvtph_ps(loadu256(w + 2 * i + 32));
        FOR_R {
            const uint8_t *px = x + r * xs + 2 * i;
            a0[r] = _mm512_fmadd_ps(w0, _mm512_cvtph_ps(loadu256(px)), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_cvtph_ps(loadu256(px + 32)), a1[r]);
        }
    }
    if (i < n) {
        const int64_t m = n - i;
        const __mmask16 k0 = tail16(m);
        const __mmask16 k1 = (__mmask16)(m <= 16 ? 0 : (1u << (m - 16)) - 1);
        const __m512 w0 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k0, w + 2 * i));
        const __m512 w1 = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k1, w + 2 * i + 32));
        FOR_R {
            const uint8_t *px = x + r * xs + 2 * i;
            a0[r] = _mm512_fmadd_ps(w0, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k0, px)), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k1, px + 32)), a1[r]);
        }
    }
    FOR_R out[r] = hsum512(_mm512_add_ps(a0[r], a1[r]));
}
DEFINE_DOTS(dot_f16, f16_core)

INLINE __m512 bf16x16(__m256i v) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16)); }

INLINE void bf16_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    __m512 a0[NXMAX], a1[NXMAX];
    FOR_R { a0[r] = _mm512_setzero_ps(); a1[r] = _mm512_setzero_ps(); }
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 w0 = bf16x16(loadu256(w + 2 * i)), w1 = bf16x16(loadu256(w + 2 * i + 32));
        FOR_R {
            const uint8_t *px = x + r * xs + 2 * i;
            a0[r] = _mm512_fmadd_ps(w0, bf16x16(loadu256(px)), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, bf16x16(loadu256(px + 32)), a1[r]);
        }
    }
    if (i < n) {
        const int64_t m = n - i;
        const __mmask16 k0 = tail16(m);
        const __mmask16 k1 = (__mmask16)(m <= 16 ? 0 : (1u << (m - 16)) - 1);
        const __m512 w0 = bf16x16(_mm256_maskz_loadu_epi16(k0, w + 2 * i));
        const __m512 w1 = bf16x16(_mm256_maskz_loadu_epi16(k1, w + 2 * i + 32));
        FOR_R {
            const uint8_t *px = x + r * xs + 2 * i;
            a0[r] = _mm512_fmadd_ps(w0, bf16x16(_mm256_maskz_loadu_epi16(k0, px)), a0[r]);
            a1[r] = _mm512_fmadd_ps(w1, bf16x16(_mm256_maskz_loadu_epi16(k1, px + 32)), a1[r]);
        }
    }
    FOR_R out[r] = hsum512(_mm512_add_ps(a0[r], a1[r]));
}
DEFINE_DOTS(dot_bf16, bf16_core)

/* ---- 32-element blocks: four per step (two per vector) ------------------ */

#define Q4_0_SZ 18
#define Q4_1_SZ 20
#define Q5_0_SZ 22
#define Q5_1_SZ 24
#define Q8_0_SZ 34
#define Q8_1_SZ 36

/* Four 32-element blocks per step, arranged so that each block owns one
 * 128-bit lane: lo = the blocks' elements 0-15 (low nibbles), hi = elements
 * 16-31 (high nibbles), and the activations gathered the same way; then
 * each i32 lane of the dot products belongs to one block, and one vector of
 * scales [s0 x4, s1 x4, s2 x4, s3 x4] serves all four blocks. */

/* 16 bytes at p, p + stride, p + 2 * stride, p + 3 * stride. */
INLINE __m512i load4x128(const uint8_t *p, size_t stride) {
    __m512i v = _mm512_castsi128_si512(loadu128(p));
    v = _mm512_inserti32x4(v, loadu128(p + stride), 1);
    v = _mm512_inserti32x4(v, loadu128(p + 2 * stride), 2);
    return _mm512_inserti32x4(v, loadu128(p + 3 * stride), 3);
}

/* Lanes 4k..4k+3 = s[k]. */
INLINE __m512 bcast4(__m128 s) {
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                 _mm512_castps128_ps512(s));
}

/* Q5 fifth bits of four blocks: bits 0-15 of each qh (elements 0-15) for the
 * lo vector, bits 16-31 for hi. */
INLINE void q5_hmasks4(const uint8_t *qh, size_t stride, __mmask64 *klo, __mmask64 *khi) {
    const uint64_t h0 = ld32(qh), h1 = ld32(qh + stride), h2 = ld32(qh + 2 * stride), h3 = ld32(qh + 3 * stride);
    *klo = _cvtu64_mask64((h0 & 0xFFFF) | ((h1 & 0xFFFF) << 16) | ((h2 & 0xFFFF) << 32) | ((h3 & 0xFFFF) << 48));
    *khi = _cvtu64_mask64((h0 >> 16) | ((h1 >> 16) << 16) | ((h2 >> 16) << 32) | ((h3 >> 16) << 48));
}

INLINE __m256i q5_hbits1(const uint8_t *h, __m256i u) {
    return _mm256_mask_add_epi8(u, _cvtu32_mask32(ld32(h)), u, _mm256_set1_epi8(16));
}

/* The unsigned values of four blocks: lo (elements 0-15) and hi (16-31). */
INLINE void unpack4(const uint8_t *bw, size_t SZ, int QOFF, int HOFF, __m512i *lo, __m512i *hi) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    const __m512i q = load4x128(bw + QOFF, SZ);
    *lo = _mm512_and_si512(q, m4);
    *hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    if (HOFF >= 0) {
        __mmask64 klo, khi;
        q5_hmasks4(bw + HOFF, SZ, &klo, &khi);
        const __m512i b4 = _mm512_set1_epi8(16);
        *lo = _mm512_mask_add_epi8(*lo, klo, *lo, b4);
        *hi = _mm512_mask_add_epi8(*hi, khi, *hi, b4);
    }
}

/* sum (lo - c) * xl + (hi - c) * xh per i32 lane. */
INLINE __m512i dot4_off(__m512i lo, __m512i hi, __m512i xl, __m512i xh, __m512i c) {
#ifdef __AVX512VNNI__
    const __m512i p = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
    const __m512i q = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), c, xl), c, xh);
    return _mm512_sub_epi32(p, q);
#else
    /* i16 pair sums: |.| <= 2 * (31 * 127) + 2 * (16 * 127) < 2^15 */
    const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(lo, xl), _mm512_maddubs_epi16(hi, xh));
    const __m512i q = _mm512_add_epi16(_mm512_maddubs_epi16(c, xl), _mm512_maddubs_epi16(c, xh));
    return _mm512_madd_epi16(_mm512_sub_epi16(p, q), _mm512_set1_epi16(1));
#endif
}

INLINE __m512i dot4(__m512i lo, __m512i hi, __m512i xl, __m512i xh) {
#ifdef __AVX512VNNI__
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), lo, xl), hi, xh);
#else
    const __m512i p = _mm512_add_epi16(_mm512_maddubs_epi16(lo, xl), _mm512_maddubs_epi16(hi, xh));
    return _mm512_madd_epi16(p, _mm512_set1_epi16(1));
#endif
}

/* Q4_0 / Q5_0 (value u - c) against Q8_0. */
#define SYM_CORE(NAME, SZ, QOFF, HOFF, OFFSET)                                                               \
    INLINE void NAME(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {   \
        const int64_t nb = n / 32;                                                                           \
        const __m512i c = _mm512_set1_epi8(OFFSET);                                                         \
        __m512 acc[NXMAX];                                                                                   \
        __m256 acc1[NXMAX];                                                                                  \
        FOR_R { acc[r] = _mm512_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }                               \
        int64_t i = 0;                                                                                       \
        for (; i + 4 <= nb; i += 4) {                                                                        \
            const uint8_t *bw = w + i * SZ;                                                                  \
            const __m128 dw = ld4h(bw, SZ);                                                                  \
            __m512i lo, hi;                                                                                  \
            unpack4(bw, SZ, QOFF, HOFF, &lo, &hi);                                                           \
            FOR_R {                                                                                          \
                const uint8_t *bx = x + r * xs + i * Q8_0_SZ;                                                \
                const __m128 s = _mm_mul_ps(dw, ld4h(bx, Q8_0_SZ));                                          \
                const __m512i xl = load4x128(bx + 2, Q8_0_SZ), xh = load4x128(bx + 18, Q8_0_SZ);             \
                const __m512i p = dot4_off(lo, hi, xl, xh, c);                                               \
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), bcast4(s), acc[r]);                          \
            }                                                                                                \
        }                                                                                                    \
        for (; i < nb; i++) {                                                                                \
            const uint8_t *bw = w + i * SZ;                                                                  \
            __m256i u = nibbles1(bw + QOFF);                                                                 \
            if (HOFF >= 0) u = q5_hbits1(bw + HOFF, u);                                                      \
            const float dw = h2f(ld16(bw));                                                                  \
            FOR_R {                                                                                          \
                const uint8_t *bx = x + r * xs + i * Q8_0_SZ;                                                \
                const __m256i p = dot_us_off256(u, loadu256(bx + 2), _mm512_castsi512_si256(c));            \
                acc1[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * h2f(ld16(bx))), acc1[r]); \
            }                                                                                                \
        }                                                                                                    \
        FOR_R out[r] = hsum512(acc[r]) + hsum256(acc1[r]);                                                   \
    }

SYM_CORE(q4_0_core, Q4_0_SZ, 2, -1, 8)
DEFINE_DOTS(dot_q4_0, q4_0_core)
SYM_CORE(q5_0_core, Q5_0_SZ, 6, 2, 16)
DEFINE_DOTS(dot_q5_0, q5_0_core)

/* Q4_1 / Q5_1 against Q8_1: (dw*dx) * isum + mw * sx per block. */
#define AFF_CORE(NAME, SZ, QOFF, HOFF)                                                                       \
    INLINE void NAME(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {   \
        const int64_t nb = n / 32;                                                                           \
        __m512 acc[NXMAX];                                                                                   \
        __m256 acc1[NXMAX];                                                                                  \
        __m128 accm[NXMAX];                                                                                  \
        float tail[NXMAX];                                                                                   \
        FOR_R {                                                                                              \
            acc[r] = _mm512_setzero_ps();                                                                    \
            acc1[r] = _mm256_setzero_ps();                                                                   \
            accm[r] = _mm_setzero_ps();                                                                      \
            tail[r] = 0.0f;                                                                                  \
        }                                                                                                    \
        int64_t i = 0;                                                                                       \
        for (; i + 4 <= nb; i += 4) {                                                                        \
            const uint8_t *bw = w + i * SZ;                                                                  \
            const __m128 dw = ld4h(bw, SZ), mw = ld4h(bw + 2, SZ);                                           \
            __m512i lo, hi;                                                                                  \
            unpack4(bw, SZ, QOFF, HOFF, &lo, &hi);                                                           \
            FOR_R {                                                                                          \
                const uint8_t *bx = x + r * xs + i * Q8_1_SZ;                                                \
                const __m128 s = _mm_mul_ps(dw, ld4h(bx, Q8_1_SZ));                                          \
                const __m512i xl = load4x128(bx + 4, Q8_1_SZ), xh = load4x128(bx + 20, Q8_1_SZ);             \
                acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot4(lo, hi, xl, xh)), bcast4(s), acc[r]);       \
                accm[r] = _mm_fmadd_ps(mw, ld4h(bx + 2, Q8_1_SZ), accm[r]);                                  \
            }                                                                                                \
        }                                                                                                    \
        for (; i < nb; i++) {                                                                                \
            const uint8_t *bw = w + i * SZ;                                                                  \
            __m256i u = nibbles1(bw + QOFF);                                                                 \
            if (HOFF >= 0) u = q5_hbits1(bw + HOFF, u);                                                      \
            const float dw = h2f(ld16(bw)), mw = h2f(ld16(bw + 2));                                          \
            FOR_R {                                                                                          \
                const uint8_t *bx = x + r * xs + i * Q8_1_SZ;                                                \
                const __m256i p = dot_us256(u, loadu256(bx + 4));                                            \
                acc1[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * h2f(ld16(bx))), acc1[r]); \
                tail[r] += mw * h2f(ld16(bx + 2));                                                           \
            }                                                                                                \
        }                                                                                                    \
        FOR_R out[r] = (hsum512(acc[r]) + hsum256(acc1[r])) + (hsum128(accm[r]) + tail[r]);                  \
    }

AFF_CORE(q4_1_core, Q4_1_SZ, 4, -1)
DEFINE_DOTS(dot_q4_1, q4_1_core)
AFF_CORE(q5_1_core, Q5_1_SZ, 8, 4)
DEFINE_DOTS(dot_q5_1, q5_1_core)

/* Q8_0 x Q8_0: |w| against x negated where w < 0. */
INLINE void q8_0_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    const int64_t nb = n / 32;
    __m512 acc[NXMAX];
    __m256 acc1[NXMAX];
    FOR_R { acc[r] = _mm512_setzero_ps(); acc1[r] = _mm256_setzero_ps(); }
    int64_t i = 0;
    for (; i + 4 <= nb; i += 4) {
        const uint8_t *bw = w + i * Q8_0_SZ;
        const __m128 dw = ld4h(bw, Q8_0_SZ);
        const __m512i q01 = load2x256(bw + 2, bw + Q8_0_SZ + 2);
        const __m512i q23 = load2x256(bw + 2 * Q8_0_SZ + 2, bw + 3 * Q8_0_SZ + 2);
        const __mmask64 n01 = _mm512_movepi8_mask(q01), n23 = _mm512_movepi8_mask(q23);
        const __m512i a01 = _mm512_abs_epi8(q01), a23 = _mm512_abs_epi8(q23);
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_0_SZ;
            const __m128 s = _mm_mul_ps(dw, ld4h(bx, Q8_0_SZ));
            const __m512i x01 = load2x256(bx + 2, bx + Q8_0_SZ + 2);
            const __m512i x23 = load2x256(bx + 2 * Q8_0_SZ + 2, bx + 3 * Q8_0_SZ + 2);
            const __m512i p01 = dot_us(a01, _mm512_mask_sub_epi8(x01, n01, _mm512_setzero_si512(), x01));
            const __m512i p23 = dot_us(a23, _mm512_mask_sub_epi8(x23, n23, _mm512_setzero_si512(), x23));
            __m512 t = _mm512_mul_ps(_mm512_cvtepi32_ps(p01), bcast2(s, 0));
            t = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p23), bcast2(s, 2), t);
            acc[r] = _mm512_add_ps(acc[r], t);
        }
    }
    for (; i < nb; i++) {
        const uint8_t *bw = w + i * Q8_0_SZ;
        const __m256i q = loadu256(bw + 2), a = _mm256_abs_epi8(q);
        const float dw = h2f(ld16(bw));
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_0_SZ;
            const __m256i p = dot_us256(a, _mm256_sign_epi8(loadu256(bx + 2), q));
            acc1[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * h2f(ld16(bx))), acc1[r]);
        }
    }
    FOR_R out[r] = hsum512(acc[r]) + hsum256(acc1[r]);
}
DEFINE_DOTS(dot_q8_0, q8_0_core)

/* ---- K-quants against Q8_K ---------------------------------------------- */

#define Q2_K_SZ 84
#define Q3_K_SZ 110
#define Q4_K_SZ 144
#define Q5_K_SZ 176
#define Q6_K_SZ 210
#define Q8_K_SZ 292
#define Q8K_QS 4
#define Q8K_BSUMS 260

INLINE __m128i k4_scales(const uint8_t *s) {
    const uint32_t u0 = ld32(s), u1 = ld32(s + 4), u2 = ld32(s + 8);
    const uint32_t sc0 = u0 & 0x3f3f3f3fu, mn0 = u1 & 0x3f3f3f3fu;
    const uint32_t sc1 = (u2 & 0x0f0f0f0fu) | (((u0 >> 6) & 0x03030303u) << 4);
    const uint32_t mn1 = ((u2 >> 4) & 0x0f0f0f0fu) | (((u1 >> 6) & 0x03030303u) << 4);
    return _mm_set_epi32((int)mn1, (int)mn0, (int)sc1, (int)sc0);
}

/* Q4_K / Q5_K: 4 chunks of 64 (sub-blocks 2c: low nibbles, 2c+1: high). The
 * mins: sum_j min_j * (bsum[2j] + bsum[2j+1]) = madd(bsums, mins doubled). */
INLINE void q45_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out,
                       const bool five) {
    const size_t SZ = five ? Q5_K_SZ : Q4_K_SZ;
    const int64_t nb = n / 256;
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512 acc[NXMAX];
    __m256 accm[NXMAX];
    FOR_R { acc[r] = _mm512_setzero_ps(); accm[r] = _mm256_setzero_ps(); }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *bw = w + i * SZ;
        const float d = h2f(ld16(bw)), dmin = h2f(ld16(bw + 2));
        const __m256i sm = _mm256_cvtepu8_epi16(k4_scales(bw + 4)); /* 8 scales, 8 mins */
        const __m512i sm512 = _mm512_castsi256_si512(sm);
        /* each min twice: lanes 2j, 2j+1 = min j */
        const __m256i mins2 = _mm256_permutexvar_epi16(
            _mm256_set_epi16(15, 15, 14, 14, 13, 13, 12, 12, 11, 11, 10, 10, 9, 9, 8, 8), sm);
        const uint8_t *qs = bw + (five ? 48 : 16);
        __m512i u[4], scv[4];
        const __m512i qh = five ? load2x256(bw + 16, bw + 16) : _mm512_setzero_si512();
        const __m512i qhz = five ? _mm512_mask_srli_epi16(qh, (__mmask32)0xFFFF0000u, qh, 1) : qh; /* [qh, qh >> 1] */
        for (int c = 0; c < 4; c++) {
            const __m256i q = loadu256(qs + 32 * c);
            u[c] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
            if (five) {
                const __mmask64 k = _mm512_test_epi8_mask(qhz, _mm512_set1_epi8((char)(1 << (2 * c))));
                u[c] = _mm512_mask_add_epi8(u[c], k, u[c], _mm512_set1_epi8(16));
            }
            scv[c] = pick4(sm512, 2 * c, 2 * c, 2 * c + 1, 2 * c + 1);
        }
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_K_SZ;
            const uint8_t *q8 = bx + Q8K_QS;
            /* two independent chains */
            __m512i i0 = dot_us_scaled(_mm512_setzero_si512(), u[0], loadu512(q8), scv[0]);
            __m512i i1 = dot_us_scaled(_mm512_setzero_si512(), u[1], loadu512(q8 + 64), scv[1]);
            i0 = dot_us_scaled(i0, u[2], loadu512(q8 + 128), scv[2]);
            i1 = dot_us_scaled(i1, u[3], loadu512(q8 + 192), scv[3]);
            const __m512i isum = _mm512_add_epi32(i0, i1);
            const float dy = ldf(bx);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dy * d), acc[r]);
            const __m256i mm = _mm256_madd_epi16(loadu256(bx + Q8K_BSUMS), mins2);
            accm[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mm), _mm256_set1_ps(dy * dmin), accm[r]);
        }
    }
    FOR_R out[r] = hsum512(acc[r]) - hsum256(accm[r]);
}

INLINE void q4_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    q45_K_core(n, w, x, xs, nx, out, false);
}
DEFINE_DOTS(dot_q4_K, q4_K_core)

INLINE void q5_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    q45_K_core(n, w, x, xs, nx, out, true);
}
DEFINE_DOTS(dot_q5_K, q5_K_core)

/* Q6_K: u in [0, 63], value u - 32; per half of 128: ql[0..63] low nibbles
 * are elements 0-63, high nibbles 64-127; qh[l] bits 2k..2k+1 belong to
 * element 32k + l. */
INLINE void q6_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    const int64_t nb = n / 256;
    const __m512i m4 = _mm512_set1_epi8(0x0F), m2 = _mm512_set1_epi8(0x30);
    __m512 acc[NXMAX];
    FOR_R acc[r] = _mm512_setzero_ps();
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *bw = w + i * Q6_K_SZ;
        const __m256i sc16 = _mm256_cvtepi8_epi16(loadu128(bw + 192));
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
        const float d = h2f(ld16(bw + 208));
        __m512i u[4], scv[4];
        for (int h = 0; h < 2; h++) {
            const __m512i a = loadu512(bw + 64 * h);
            const __m256i hb = loadu256(bw + 128 + 32 * h);
            const __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
            const __m512i lo_h = _mm512_and_si512(_mm512_slli_epi16(hz, 4), m2);
            const __m512i hi_h = _mm512_and_si512(hz, m2);
            u[2 * h] = _mm512_ternarylogic_epi32(a, m4, lo_h, 0xEA);                            /* (a & m4) | lo_h */
            u[2 * h + 1] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(a, 4), m4, hi_h, 0xEA); /* same, high nibbles */
            scv[2 * h] = pick4(sc512, 8 * h + 0, 8 * h + 1, 8 * h + 2, 8 * h + 3);
            scv[2 * h + 1] = pick4(sc512, 8 * h + 4, 8 * h + 5, 8 * h + 6, 8 * h + 7);
        }
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_K_SZ;
            const uint8_t *q8 = bx + Q8K_QS;
            __m512i isum = _mm512_setzero_si512();
            for (int k = 0; k < 4; k++) isum = dot_us_scaled(isum, u[k], loadu512(q8 + 64 * k), scv[k]);
            const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(loadu256(bx + Q8K_BSUMS), sc16), 5);
            isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(d * ldf(bx)), acc[r]);
        }
    }
    FOR_R out[r] = hsum512(acc[r]);
}
DEFINE_DOTS(dot_q6_K, q6_K_core)

INLINE __m128i q3_K_scales(const uint8_t *s) {
    const uint32_t a0 = ld32(s), a1 = ld32(s + 4), a2 = ld32(s + 8);
    const uint32_t m4 = 0x0f0f0f0fu, m2 = 0x03030303u;
    const uint32_t s0 = (a0 & m4) | ((a2 & m2) << 4);
    const uint32_t s1 = (a1 & m4) | (((a2 >> 2) & m2) << 4);
    const uint32_t s2 = ((a0 >> 4) & m4) | (((a2 >> 4) & m2) << 4);
    const uint32_t s3 = ((a1 >> 4) & m4) | (((a2 >> 6) & m2) << 4);
    return _mm_sub_epi8(_mm_set_epi32((int)s3, (int)s2, (int)s1, (int)s0), _mm_set1_epi8(32));
}

/* Q2_K / Q3_K: vector z (0..3) holds elements 64z..64z+63, i.e. half z/2,
 * 2-bit groups 2(z%2) and 2(z%2)+1 of that half's 32 bytes. Q3_K adds 4 where
 * its hmask bit (bit 2z or 2z+1 of hmask[l]) is set, and subtracts 4 from
 * every value through the bsums. */
INLINE void q23_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out,
                       const bool three) {
    const size_t SZ = three ? Q3_K_SZ : Q2_K_SZ;
    const int64_t nb = n / 256;
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512 acc[NXMAX];
    __m256 accm[NXMAX];
    FOR_R { acc[r] = _mm512_setzero_ps(); accm[r] = _mm256_setzero_ps(); }
    for (int64_t i = 0; i < nb; i++) {
        const uint8_t *bw = w + i * SZ;
        __m256i sc16, mn16 = _mm256_setzero_si256();
        float d, dmin = 0.0f;
        const uint8_t *qs;
        __m512i hz = _mm512_setzero_si512();
        if (three) {
            sc16 = _mm256_cvtepi8_epi16(q3_K_scales(bw + 96));
            d = h2f(ld16(bw + 108));
            qs = bw + 32;
            const __m512i hm = load2x256(bw, bw);
            hz = _mm512_mask_srli_epi16(hm, (__mmask32)0xFFFF0000u, hm, 1); /* [hm, hm >> 1] */
        } else {
            const __m128i sb = loadu128(bw);
            sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(sb, _mm_set1_epi8(0x0F)));
            mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sb, 4), _mm_set1_epi8(0x0F)));
            d = h2f(ld16(bw + 80));
            dmin = h2f(ld16(bw + 82));
            qs = bw + 16;
        }
        const __m512i sc512 = _mm512_castsi256_si512(sc16);
        __m512i u[4], scv[4];
        for (int h = 0; h < 2; h++) {
            const __m256i q = loadu256(qs + 32 * h);
            const __m512i qz = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 2), 1);
            u[2 * h] = _mm512_and_si512(qz, m3);
            u[2 * h + 1] = _mm512_and_si512(_mm512_srli_epi16(qz, 4), m3);
        }
        for (int z = 0; z < 4; z++) {
            if (three) {
                const __mmask64 k = _mm512_test_epi8_mask(hz, _mm512_set1_epi8((char)(1 << (2 * z))));
                u[z] = _mm512_mask_add_epi8(u[z], k, u[z], _mm512_set1_epi8(4));
            }
            scv[z] = pick4(sc512, 4 * z, 4 * z + 1, 4 * z + 2, 4 * z + 3);
        }
        FOR_R {
            const uint8_t *bx = x + r * xs + i * Q8_K_SZ;
            const uint8_t *q8 = bx + Q8K_QS;
            __m512i isum = _mm512_setzero_si512();
            for (int z = 0; z < 4; z++) isum = dot_us_scaled(isum, u[z], loadu512(q8 + 64 * z), scv[z]);
            const __m256i bs = loadu256(bx + Q8K_BSUMS);
            const float dy = ldf(bx);
            if (three) {
                const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(bs, sc16), 2);
                isum = _mm512_sub_epi32(isum, _mm512_zextsi256_si512(corr));
            } else {
                const __m256i mm = _mm256_madd_epi16(bs, mn16);
                accm[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mm), _mm256_set1_ps(dy * dmin), accm[r]);
            }
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum), _mm512_set1_ps(dy * d), acc[r]);
        }
    }
    FOR_R out[r] = three ? hsum512(acc[r]) : hsum512(acc[r]) - hsum256(accm[r]);
}

INLINE void q2_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    q23_K_core(n, w, x, xs, nx, out, false);
}
DEFINE_DOTS(dot_q2_K, q2_K_core)

INLINE void q3_K_core(int64_t n, const uint8_t *w, const uint8_t *x, size_t xs, const int nx, float *out) {
    q23_K_core(n, w, x, xs, nx, out, true);
}
DEFINE_DOTS(dot_q3_K, q3_K_core)

/* ---- activation quantizers (bit-identical to quant.c's) ------------------ */

/* roundf: to nearest, halves away from zero. */
INLINE __m512 round_away(__m512 v) {
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_abs_ps(_mm512_sub_ps(v, t));
    const __mmask16 up = _mm512_cmp_ps_mask(f, _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)),
        _mm512_castps_si512(_mm512_set1_ps(1.0f))));
    return _mm512_mask_add_ps(t, up, t, one);
}

/* One block of 32: 32 int8 at qs, returns d; *isum gets their sum. */
INLINE float q8_block(const float *src, uint8_t *qs, int *isum) {
    const __m512 v0 = _mm512_loadu_ps(src), v1 = _mm512_loadu_ps(src + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const __m512 idv = _mm512_set1_ps(id);
    const __m512i q0 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v0, idv)));
    const __m512i q1 = _mm512_cvttps_epi32(round_away(_mm512_mul_ps(v1, idv)));
    _mm_storeu_si128((__m128i *)qs, _mm512_cvtsepi32_epi8(q0));
    _mm_storeu_si128((__m128i *)(qs + 16), _mm512_cvtsepi32_epi8(q1));
    if (isum) *isum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
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
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / 256; i++, b += Q8_K_SZ, src += 256) {
        __m512 m = _mm512_setzero_ps();
        for (int k = 0; k < 16; k++) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(src + 16 * k)), m);
        const float amax = _mm512_reduce_max_ps(m);
        float d = 0.0f;
        int16_t bsums[16];
        if (amax == 0.0f) {
            memset(b + Q8K_QS, 0, 256);
            memset(bsums, 0, sizeof bsums);
        } else {
            float max = 0.0f;
            const __m512 am = _mm512_set1_ps(amax);
            for (int k = 0; k < 16; k++) {
                const __mmask16 hit =
                    _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(src + 16 * k)), am, _CMP_EQ_OQ);
                if (hit) {
                    max = src[16 * k + __builtin_ctz((unsigned)hit)];
                    break;
                }
            }
            const float iscale = -127.0f / max;
            const __m512 is = _mm512_set1_ps(iscale);
            const __m512i lim = _mm512_set1_epi32(127);
            for (int k = 0; k < 16; k++) {
                const __m512 v = _mm512_mul_ps(is, _mm512_loadu_ps(src + 16 * k));
                const __m512i q = _mm512_min_epi32(_mm512_cvtps_epi32(v), lim);
                _mm_storeu_si128((__m128i *)(b + Q8K_QS + 16 * k), _mm512_cvtsepi32_epi8(q));
                bsums[k] = (int16_t)_mm512_reduce_add_epi32(q);
            }
            d = 1.0f / iscale;
        }
        memcpy(b, &d, sizeof d);
        memcpy(b + Q8K_BSUMS, bsums, sizeof bsums);
    }
}

/* F16C conversion is exact, like ns_fp16_to_fp32. */
static void dequant_f16(const void *src, float *dst, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(loadu256(p + 2 * i)));
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        _mm512_mask_storeu_ps(dst + i, k, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p + 2 * i)));
    }
}

/* Attention's value sums (quant.h), a product and a sum (not fused) as in
 * the scalar kernel, 16 elements at a time, the tail masked. (Masking every
 * vector instead was 4% slower at 8 sequences x 256 tokens.) */
INLINE void axpy_n16(__m512 v, __mmask16 k, const float *a, int ny, float *y, size_t ys) {
    for (int j = 0; j < ny; j++) {
        float *yj = y + (size_t)j * ys;
        const __m512 s = _mm512_add_ps(_mm512_maskz_loadu_ps(k, yj), _mm512_mul_ps(_mm512_set1_ps(a[j]), v));
        _mm512_mask_storeu_ps(yj, k, s);
    }
}

static void axpy_n_f32(int64_t n, const void *x, const float *a, int ny, float *y, size_t ys) {
    const float *p = x;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) axpy_n16(_mm512_loadu_ps(p + i), 0xFFFF, a, ny, y + i, ys);
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        axpy_n16(_mm512_maskz_loadu_ps(k, p + i), k, a, ny, y + i, ys);
    }
}

static void axpy_n_f16(int64_t n, const void *x, const float *a, int ny, float *y, size_t ys) {
    const uint8_t *p = x;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) axpy_n16(_mm512_cvtph_ps(loadu256(p + 2 * i)), 0xFFFF, a, ny, y + i, ys);
    if (i < n) {
        const __mmask16 k = tail16(n - i);
        axpy_n16(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(k, p + 2 * i)), k, a, ny, y + i, ys);
    }
}

static void quant_f16(const float *src, void *dst, int64_t n) {
    uint8_t *p = dst;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(src + i);
        if (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q)) {
            for (int j = 0; j < 16; j++) st16(p + 2 * (i + j), ns_fp32_to_fp16(src[i + j])); /* NaN: as quant.c */
        } else {
            _mm256_storeu_si256((__m256i *)(p + 2 * i), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        }
    }
    for (; i < n; i++) st16(p + 2 * i, ns_fp32_to_fp16(src[i]));
}

/* ---- prompt GEMM: 16 weight rows x up to 8 activation rows -------------
 * Lanes are weight rows. A panel holds 16 rows' blocks unpacked to unsigned
 * bytes (value + offset) and transposed so that vector g of a block has, in
 * lane r, bytes 4g..4g+3 of row r; one VPDPBUSD with an activation dword
 * broadcast to all lanes then advances 16 row sums at once, and eight of
 * them cover a 32-element block. The panel is built once per chunk of
 * GEMM_KC blocks and used by every activation row; y holds the running sums
 * between chunks.
 *
 * Per (row, activation row) the arithmetic is the scalar kernel's: the
 * exact integer block sum (the offset removed through the activation row's
 * block sum, precomputed by gemm_prep), then sum += (float)isum * (dw * dx)
 * (Q4_1 / Q5_1: sum += (dw * dx) * isum + mw * sx) block after block, each
 * product rounded (never fused), so every output equals scalar vec_dot's. */

/* A panel holds GEMM_KC blocks (40 KiB, on the stack); an activation block
 * (GEMM_XBLOCK bytes) is 32 values, the scale, and the offset or sum term. */
enum { GEMM_ROWS = 16, GEMM_TOKS = 8, GEMM_KC = 64, GEMM_XBLOCK = 40 };

typedef enum { GW_Q4_0, GW_Q5_0, GW_Q8_0, GW_Q4_1, GW_Q5_1 } gemm_wtype;

typedef struct {
    __m512i w[GEMM_KC][8];
    __m512 d[GEMM_KC], m[GEMM_KC];
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

/* The offset subtracted from the unpacked unsigned values. */
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
    case GW_Q4_0: return nibbles1(b + 2);
    case GW_Q5_0: return q5_hbits1(b + 2, nibbles1(b + 6));
    case GW_Q8_0: return _mm256_xor_si256(loadu256(b + 2), _mm256_set1_epi8((char)0x80));
    case GW_Q4_1: return nibbles1(b + 4);
    default: return q5_hbits1(b + 4, nibbles1(b + 8));
    }
}

/* Defeats contraction of a product into a following addition. */
INLINE __m512 rounded(__m512 v) {
    __asm__("" : "+v"(v));
    return v;
}

INLINE int32_t ld_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* 16 rows of 32 bytes -> 8 vectors, vector g holding bytes 4g..4g+3 of row
 * r in lane r. Rows i | i + 4 and 8 + i | 12 + i share a vector so that
 * the 4x4 transposes within 128-bit lanes leave the rows in lane order. */
INLINE void gemm_transpose(const __m256i u[GEMM_ROWS], __m512i *out) {
    __m512i z[8], s[8];
    for (int i = 0; i < 8; i++) {
        const int ra = i < 4 ? i : i + 4;
        z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(u[ra]), u[ra + 4], 1);
    }
    for (int h = 0; h < 8; h += 4) {
        const __m512i t0 = _mm512_unpacklo_epi32(z[h], z[h + 1]), t1 = _mm512_unpackhi_epi32(z[h], z[h + 1]);
        const __m512i t2 = _mm512_unpacklo_epi32(z[h + 2], z[h + 3]), t3 = _mm512_unpackhi_epi32(z[h + 2], z[h + 3]);
        s[h] = _mm512_unpacklo_epi64(t0, t2);
        s[h + 1] = _mm512_unpackhi_epi64(t0, t2);
        s[h + 2] = _mm512_unpacklo_epi64(t1, t3);
        s[h + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    for (int g = 0; g < 4; g++) {
        out[g] = _mm512_shuffle_i32x4(s[g], s[g + 4], 0x88);
        out[g + 4] = _mm512_shuffle_i32x4(s[g], s[g + 4], 0xDD);
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
        __m256i u[GEMM_ROWS];
        for (int r = 0; r < GEMM_ROWS; r++) {
            const uint8_t *b = rows[r] + (size_t)k * SZ;
            u[r] = gw_unpack(b, t);
            dh[r] = ld16(b);
            mh[r] = ld16(b + 2);
        }
        gemm_transpose(u, p->w[k]);
        p->d[k] = _mm512_cvtph_ps(loadu256((const uint8_t *)dh));
        if (gw_affine(t)) p->m[k] = _mm512_cvtph_ps(loadu256((const uint8_t *)mh));
    }
}

/* The 4-bit types (values packed two to a byte: byte j holds element j and,
 * in its high nibble, element j + 16) transpose their 16 packed bytes per
 * row instead of 32 unpacked ones: half the shuffles, and the nibbles split
 * after the transpose (low nibbles are elements 4g..4g+3 of vector g, high
 * ones 16 + 4g..). The 4x4 dword transposes within 128-bit lanes leave lane
 * p holding row gemm_row_of(p) = 4 (p % 4) + p / 4, a permutation that is
 * its own inverse: the scales are packed in that order and gemm_tile puts
 * the sums back in row order. Small activation batches (decoding several
 * sequences at once) spend much of their time packing, so this matters
 * most there. */
INLINE bool gw_packed4(gemm_wtype t) { return t == GW_Q4_0 || t == GW_Q4_1; }

INLINE int gemm_row_of(int p) { return 4 * (p % 4) + p / 4; }

INLINE __m512i load4rows(const uint8_t *const *rows, int i, size_t off) {
    __m512i v = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(rows[4 * i] + off)));
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 * i + 1] + off)), 1);
    v = _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 * i + 2] + off)), 2);
    return _mm512_inserti32x4(v, _mm_loadu_si128((const __m128i *)(rows[4 * i + 3] + off)), 3);
}

INLINE void gemm_pack4(gemm_panel *p, const uint8_t *w, size_t ws, int nr, int64_t k0, int nbc, gemm_wtype t) {
    const size_t SZ = gw_size(t), QOFF = t == GW_Q4_0 ? 2 : 4;
    const uint8_t *rows[GEMM_ROWS];
    for (int r = 0; r < GEMM_ROWS; r++) rows[r] = w + (size_t)(r < nr ? r : nr - 1) * ws + (size_t)k0 * SZ;
    const __m512i lo = _mm512_set1_epi8(0x0F);
    for (int k = 0; k < nbc; k++) {
        uint16_t dh[GEMM_ROWS], mh[GEMM_ROWS];
        const size_t off = (size_t)k * SZ + QOFF;
        const __m512i z0 = load4rows(rows, 0, off), z1 = load4rows(rows, 1, off);
        const __m512i z2 = load4rows(rows, 2, off), z3 = load4rows(rows, 3, off);
        const __m512i t0 = _mm512_unpacklo_epi32(z0, z1), t1 = _mm512_unpackhi_epi32(z0, z1);
        const __m512i t2 = _mm512_unpacklo_epi32(z2, z3), t3 = _mm512_unpackhi_epi32(z2, z3);
        const __m512i g[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                              _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
        for (int q = 0; q < 4; q++) {
            p->w[k][q] = _mm512_and_si512(g[q], lo);
            p->w[k][q + 4] = _mm512_and_si512(_mm512_srli_epi16(g[q], 4), lo);
        }
        for (int l = 0; l < GEMM_ROWS; l++) {
            const uint8_t *b = rows[gemm_row_of(l)] + (size_t)k * SZ;
            dh[l] = ld16(b);
            mh[l] = ld16(b + 2);
        }
        p->d[k] = _mm512_cvtph_ps(loadu256((const uint8_t *)dh));
        if (gw_affine(t)) p->m[k] = _mm512_cvtph_ps(loadu256((const uint8_t *)mh));
    }
}

/* acc + the 16 rows' integer sums of one block against activation bytes q. */
INLINE __m512i gemm_dot(__m512i acc, const __m512i *w, const uint8_t *q) {
#ifdef __AVX512VNNI__
#pragma GCC unroll 8
    for (int g = 0; g < 8; g++) acc = _mm512_dpbusd_epi32(acc, w[g], _mm512_set1_epi32(ld_i32(q + 4 * g)));
    return acc;
#else
    /* i16 sums of four pairs: |.| <= 4 * 2 * 31 * 127 < 2^15 */
    const __m512i one = _mm512_set1_epi16(1);
    for (int h = 0; h < 8; h += 4) {
        __m512i s = _mm512_maddubs_epi16(w[h], _mm512_set1_epi32(ld_i32(q + 4 * h)));
        for (int g = h + 1; g < h + 4; g++)
            s = _mm512_add_epi16(s, _mm512_maddubs_epi16(w[g], _mm512_set1_epi32(ld_i32(q + 4 * g))));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(s, one));
    }
    return acc;
#endif
}

/* The weights of the panel after this one (16 segments of len bytes, ws
 * apart), fetched into L2 while this one's tiles compute: packing alone
 * leaves the arithmetic and the memory waits one after the other, and with
 * few activation rows (decoding several sequences at once) that doubled a
 * product's time. A cursor (row, offset) walks them, per_step lines per
 * step of the tile loop. */
typedef struct {
    const uint8_t *row;
    size_t ws, len, off;
    int rows_left, per_step;
} gemm_prefetch;

INLINE gemm_prefetch gemm_prefetch_init(const uint8_t *base, size_t ws, size_t len, int nbc) {
    gemm_prefetch pf = {base, ws, len, 0, base ? GEMM_ROWS : 0, 0};
    const size_t lines = (len + 63) / 64 * GEMM_ROWS;
    pf.per_step = (int)((lines + (size_t)nbc - 1) / (size_t)nbc);
    return pf;
}

INLINE void gemm_prefetch_step(gemm_prefetch *pf) {
    for (int i = 0; i < pf->per_step && pf->rows_left > 0; i++) {
        _mm_prefetch((const char *)(pf->row + pf->off), _MM_HINT_T1);
        pf->off += 64;
        if (pf->off >= pf->len) {
            pf->off = 0;
            pf->row += pf->ws;
            pf->rows_left--;
        }
    }
}

/* The panel after (r0, k0) of a product over nb blocks of sz bytes in
 * chunks of kc, spread over `steps` calls of gemm_prefetch_step: the next
 * chunk of these rows, else the first chunk of the next 16 rows (none past
 * the task's rows: another thread may take those). */
/* Past this many activation rows a panel's arithmetic is long enough for
 * the hardware prefetchers, and the explicit one only competes with them. */
enum { GEMM_PREFETCH_MAX_X = 16 };

INLINE gemm_prefetch gemm_next_panel(const uint8_t *w, size_t ws, int r0, int n_rows, int64_t k0, int64_t nb, int kc,
                                     size_t sz, int steps) {
    if (k0 + kc < nb) {
        const int64_t nk = nb - k0 - kc < kc ? nb - k0 - kc : kc;
        return gemm_prefetch_init(w + (size_t)r0 * ws + (size_t)(k0 + kc) * sz, ws, (size_t)nk * sz, steps);
    }
    if (r0 + 2 * GEMM_ROWS <= n_rows)
        return gemm_prefetch_init(w + (size_t)(r0 + GEMM_ROWS) * ws, ws, (size_t)(nb < kc ? nb : kc) * sz, steps);
    return gemm_prefetch_init(NULL, ws, 0, steps);
}

/* T activation rows (at x, x + xs, ...) against a panel's chunk. The loops
 * over activation rows are unrolled so that the accumulators and the row
 * pointers stay in registers. */
INLINE void gemm_tile(const gemm_panel *p, int nbc, const uint8_t *x, size_t xs, int64_t k0, const int T, float *y,
                      size_t ys, __mmask16 rmask, bool first, gemm_wtype t, gemm_prefetch *pf) {
    const uint8_t *xb[GEMM_TOKS];
    __m512 acc[GEMM_TOKS];
    /* gemm_pack4's lane order, and back (the permutation is its own inverse) */
    const __m512i perm = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
#pragma GCC unroll 8
    for (int j = 0; j < T; j++) {
        xb[j] = x + (size_t)j * xs + (size_t)k0 * GEMM_XBLOCK;
        acc[j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(rmask, y + (size_t)j * ys);
        if (!first && gw_packed4(t)) acc[j] = _mm512_permutexvar_ps(perm, acc[j]);
    }
    for (int k = 0; k < nbc; k++) {
        if (pf) gemm_prefetch_step(pf);
        __m512i w[8];
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) w[g] = _mm512_load_si512(&p->w[k][g]);
        const __m512 dw = p->d[k];
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) {
            const uint8_t *b = xb[j] + (size_t)k * GEMM_XBLOCK;
            const __m512i init = gw_affine(t) ? _mm512_setzero_si512() : _mm512_set1_epi32(ld_i32(b + 36));
            const __m512i isum = gemm_dot(init, w, b);
            const __m512 s = _mm512_mul_ps(dw, _mm512_set1_ps(ldf(b + 32)));
            __m512 v = rounded(_mm512_mul_ps(_mm512_cvtepi32_ps(isum), s));
            if (gw_affine(t)) v = _mm512_add_ps(v, rounded(_mm512_mul_ps(p->m[k], _mm512_set1_ps(ldf(b + 36)))));
            acc[j] = _mm512_add_ps(acc[j], v);
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < T; j++)
        _mm512_mask_storeu_ps(y + (size_t)j * ys, rmask, gw_packed4(t) ? _mm512_permutexvar_ps(perm, acc[j]) : acc[j]);
}

/* Per panel of rows and chunk of blocks: the panel is built, then every tile
 * of activation rows runs against it. */
INLINE void gemm_impl(int64_t n, const void *wv, size_t ws, int n_rows, const void *xv, size_t xs, int n_x, float *y,
                      size_t ys, gemm_wtype t) {
    const uint8_t *w = wv, *x = xv;
    const int64_t nb = n / 32;
    gemm_panel p __attribute__((aligned(64)));
    for (int r0 = 0; r0 < n_rows; r0 += GEMM_ROWS) {
        const int nr = n_rows - r0 < GEMM_ROWS ? n_rows - r0 : GEMM_ROWS;
        const __mmask16 rm = (__mmask16)((1u << nr) - 1);
        for (int64_t k0 = 0; k0 < nb; k0 += GEMM_KC) {
            const int nbc = nb - k0 < GEMM_KC ? (int)(nb - k0) : GEMM_KC;
            const bool first = k0 == 0;
            if (gw_packed4(t)) gemm_pack4(&p, w + (size_t)r0 * ws, ws, nr, k0, nbc, t);
            else gemm_pack(&p, w + (size_t)r0 * ws, ws, nr, k0, nbc, t);
            gemm_prefetch pf = gemm_next_panel(w, ws, r0, n_rows, k0, nb, GEMM_KC, gw_size(t), nbc);
            for (int j = 0; j < n_x;) {
                const int left = n_x - j, T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
                const uint8_t *xj = x + (size_t)j * xs;
                float *yj = y + (size_t)j * ys + r0;
                gemm_prefetch *pj = j == 0 && n_x <= GEMM_PREFETCH_MAX_X ? &pf : NULL;
                if (T == 8) gemm_tile(&p, nbc, xj, xs, k0, 8, yj, ys, rm, first, t, pj);
                else if (T == 4) gemm_tile(&p, nbc, xj, xs, k0, 4, yj, ys, rm, first, t, pj);
                else if (T == 2) gemm_tile(&p, nbc, xj, xs, k0, 2, yj, ys, rm, first, t, pj);
                else gemm_tile(&p, nbc, xj, xs, k0, 1, yj, ys, rm, first, t, pj);
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
#ifdef __AVX512VNNI__
/* Q8_0 unpacks to value + 128 in [0, 255]: VPMADDUBSW pair sums would
 * saturate, so only the VNNI level has it. */
DEFINE_GEMM(q8_0, GW_Q8_0)
#endif

/* ---- prompt GEMM for K-quants ------------------------------------------------
 * As above, per 256-element super-block: eight units of 32 elements, each
 * unpacked to unsigned bytes and transposed to 8 vectors (lanes = rows).
 * The sums of a sub-block (32 elements for Q4_K / Q5_K, 16 for the others)
 * are multiplied by the row's sub-block scale in integers (VPMULLD); the
 * mins (Q2_K, Q4_K, Q5_K) and the offsets (Q3_K 4, Q6_K 32) go through the
 * activations' block sums as i16 pairs (VPDPWSSD). The integer sums and the float steps are the
 * scalar kernel's, so each output equals scalar vec_dot's bit for bit.
 *
 * Activation row: per super-block GEMM_KXBLOCK bytes: the 256 values, the
 * Q8_K scale, the 16 Q8_K block sums (i16), and for Q4_K / Q5_K the 8 sums
 * of 32 (i16). */

/* GEMM_KKC super-blocks a panel (45 KiB) */
enum { GEMM_KKC = 8, GEMM_KXBLOCK = 320, KX_D = 256, KX_BSUMS = 260, KX_PAIRS = 292 };

typedef enum { GK_Q2_K, GK_Q3_K, GK_Q4_K, GK_Q5_K, GK_Q6_K } gemm_ktype;

typedef struct {
    __m512i w[GEMM_KKC][8][8];
    __m512i sc[GEMM_KKC][16]; /* i32 sub-block scales (Q4_K / Q5_K: 8) */
    __m512i mp[GEMM_KKC][8];  /* i16 pairs: the mins (Q4_K / Q5_K: 4), or the scales */
    __m512 d[GEMM_KKC], dmin[GEMM_KKC];
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
INLINE void gk_transpose(const uint8_t *const *rows, size_t off, __m512i *out) {
    __m256i v[GEMM_ROWS];
    for (int r = 0; r < GEMM_ROWS; r++) v[r] = loadu256(rows[r] + off);
    gemm_transpose(v, out);
}

/* The eight units (elements 32u..32u+31) of one super-block of each row as
 * unsigned bytes, transposed: the packed bytes are transposed first and the
 * values unpacked in that layout (the same byte of a row holds values of
 * two or four units). */
INLINE void gk_units(__m512i w[8][8], const uint8_t *const *rows, gemm_ktype t) {
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    __m512i a[8];
    if (t == GK_Q2_K || t == GK_Q3_K) {
        /* 2-bit values: unit 4h + s is bits 2s..2s+1 of qs bytes 32h..32h+31;
         * Q3_K adds 4 where bit u of hmask[l] is set */
        const __m512i m3 = _mm512_set1_epi8(3);
        __m512i hm[8];
        if (t == GK_Q3_K) gk_transpose(rows, 0, hm);
        for (int h = 0; h < 2; h++) {
            gk_transpose(rows, (size_t)(t == GK_Q3_K ? 32 : 16) + 32 * h, a);
            for (int sh = 0; sh < 4; sh++) {
                const int u = 4 * h + sh;
                for (int g = 0; g < 8; g++) {
                    w[u][g] = _mm512_and_si512(_mm512_srli_epi16(a[g], 2 * sh), m3);
                    if (t == GK_Q3_K) {
                        const __mmask64 kb = _mm512_test_epi8_mask(hm[g], _mm512_set1_epi8((char)(1 << u)));
                        w[u][g] = _mm512_mask_add_epi8(w[u][g], kb, w[u][g], _mm512_set1_epi8(4));
                    }
                }
            }
        }
        return;
    }
    if (t == GK_Q6_K) {
        __m512i h[2][8];
        gk_transpose(rows, 128, h[0]);
        gk_transpose(rows, 160, h[1]);
        for (int c = 0; c < 4; c++) { /* ql bytes 32c..32c+31: units c & 1 (+ 4 * (c / 2)) and + 2 */
            gk_transpose(rows, (size_t)32 * c, a);
            const int hh = c / 2, u = 4 * hh + (c & 1);
            for (int g = 0; g < 8; g++) {
                const __m512i qh = h[hh][g], m30 = _mm512_set1_epi8(0x30);
                /* unit u: high bits at 2r of qh, r = u % 4 */
                const __m512i hl = _mm512_and_si512((c & 1) ? _mm512_slli_epi16(qh, 2) : _mm512_slli_epi16(qh, 4), m30);
                const __m512i hu = _mm512_and_si512((c & 1) ? _mm512_srli_epi16(qh, 2) : qh, m30);
                w[u][g] = _mm512_ternarylogic_epi32(a[g], m4, hl, 0xEA);
                w[u + 2][g] = _mm512_ternarylogic_epi32(_mm512_srli_epi16(a[g], 4), m4, hu, 0xEA);
            }
        }
        return;
    }
    __m512i qh[8];
    if (t == GK_Q5_K) gk_transpose(rows, 16, qh);
    for (int c = 0; c < 4; c++) {
        gk_transpose(rows, (size_t)(t == GK_Q5_K ? 48 : 16) + 32 * c, a);
        for (int g = 0; g < 8; g++) {
            w[2 * c][g] = _mm512_and_si512(a[g], m4);
            w[2 * c + 1][g] = _mm512_and_si512(_mm512_srli_epi16(a[g], 4), m4);
            if (t == GK_Q5_K) {
                const __m512i b16 = _mm512_set1_epi8(16);
                const __mmask64 k0 = _mm512_test_epi8_mask(qh[g], _mm512_set1_epi8((char)(1 << (2 * c))));
                const __mmask64 k1 = _mm512_test_epi8_mask(qh[g], _mm512_set1_epi8((char)(2 << (2 * c))));
                w[2 * c][g] = _mm512_mask_add_epi8(w[2 * c][g], k0, w[2 * c][g], b16);
                w[2 * c + 1][g] = _mm512_mask_add_epi8(w[2 * c + 1][g], k1, w[2 * c + 1][g], b16);
            }
        }
    }
}

/* Lane r: bits 8i..8i+5 of v, i.e. byte i's low 6 bits. */
INLINE __m512i byte6(__m512i v, int i) { return _mm512_and_si512(_mm512_srli_epi32(v, 8 * i), _mm512_set1_epi32(63)); }

/* Scales (and mins, d, dmin) of one super-block of each row, gathered with
 * the rows in lanes: row r's block at base + off[r]. */
INLINE void gemm_kscales(gemm_kpanel *p, int k, const uint8_t *base, __m512i off, gemm_ktype t) {
    const __m512i m4 = _mm512_set1_epi32(15), m2 = _mm512_set1_epi32(3);
    if (t == GK_Q2_K) { /* scales[j]: low nibble the scale, high the min */
        __m512i s4[4];
        for (int m = 0; m < 4; m++) s4[m] = _mm512_i32gather_epi32(off, base + 4 * m, 1);
        for (int j = 0; j < 16; j++) p->sc[k][j] = _mm512_and_si512(_mm512_srli_epi32(s4[j / 4], 8 * (j % 4)), m4);
        for (int i = 0; i < 8; i++) {
            const __m512i v = _mm512_srli_epi32(s4[i / 2], 16 * (i % 2));
            p->mp[k][i] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(v, 4), m4),
                                          _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(v, 12), m4), 16));
        }
        const __m512i dd = _mm512_i32gather_epi32(off, base + 80, 1);
        p->d[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
        p->dmin[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
        return;
    }
    if (t == GK_Q3_K) { /* 6-bit scales - 32: low 4 bits in bytes 0-7 (two a byte), high 2 in bytes 8-11 */
        const __m512i a0 = _mm512_i32gather_epi32(off, base + 96, 1), a1 = _mm512_i32gather_epi32(off, base + 100, 1);
        const __m512i a2 = _mm512_i32gather_epi32(off, base + 104, 1);
        for (int j = 0; j < 16; j++) {
            const int b = j % 8;
            const __m512i lo = _mm512_and_si512(_mm512_srli_epi32(b < 4 ? a0 : a1, 8 * (b % 4) + 4 * (j / 8)), m4);
            const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(a2, 8 * (j % 4) + 2 * (j / 4)), m2);
            p->sc[k][j] = _mm512_sub_epi32(_mm512_or_si512(lo, _mm512_slli_epi32(hi, 4)), _mm512_set1_epi32(32));
        }
        for (int i = 0; i < 8; i++)
            p->mp[k][i] = _mm512_or_si512(_mm512_and_si512(p->sc[k][2 * i], _mm512_set1_epi32(0xFFFF)),
                                          _mm512_slli_epi32(p->sc[k][2 * i + 1], 16));
        /* d: bytes 108-109, read as the top of the dword at 106 (the block ends at 110) */
        const __m512i dv = _mm512_srli_epi32(_mm512_i32gather_epi32(off, base + 106, 1), 16);
        p->d[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dv));
        return;
    }
    if (t == GK_Q6_K) {
        __m512i s4[4];
        for (int m = 0; m < 4; m++) s4[m] = _mm512_i32gather_epi32(off, base + 192 + 4 * m, 1);
        for (int j = 0; j < 16; j++) /* sign-extend byte j % 4 */
            p->sc[k][j] = _mm512_srai_epi32(_mm512_slli_epi32(s4[j / 4], 24 - 8 * (j % 4)), 24);
        for (int i = 0; i < 8; i++) { /* bytes 2i, 2i + 1 as i16 */
            const __m512i v = i % 2 ? _mm512_srli_epi32(s4[i / 2], 16) : s4[i / 2];
            const __m512i lo = _mm512_srai_epi16(_mm512_slli_epi16(v, 8), 8), hi = _mm512_srai_epi16(v, 8);
            p->mp[k][i] = _mm512_mask_blend_epi16(0xAAAAAAAAu, lo, _mm512_slli_epi32(hi, 16));
        }
        /* d: bytes 208-209, read as the top of the dword at 206 (the block ends at 210) */
        const __m512i dv = _mm512_srli_epi32(_mm512_i32gather_epi32(off, base + 206, 1), 16);
        p->d[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dv));
        return;
    }
    const __m512i dd = _mm512_i32gather_epi32(off, base, 1);
    const __m512i u0 = _mm512_i32gather_epi32(off, base + 4, 1), u1 = _mm512_i32gather_epi32(off, base + 8, 1);
    const __m512i u2 = _mm512_i32gather_epi32(off, base + 12, 1);
    __m512i mn[8];
    for (int j = 0; j < 4; j++) {
        p->sc[k][j] = byte6(u0, j);
        mn[j] = byte6(u1, j);
        /* j + 4: low 4 bits from u2's byte j, high 2 from the top of byte j of u0 / u1 */
        const __m512i b2 = _mm512_srli_epi32(u2, 8 * j);
        const __m512i h0 = _mm512_and_si512(_mm512_srli_epi32(u0, 8 * j + 6), m2);
        const __m512i h1 = _mm512_and_si512(_mm512_srli_epi32(u1, 8 * j + 6), m2);
        p->sc[k][j + 4] = _mm512_or_si512(_mm512_and_si512(b2, m4), _mm512_slli_epi32(h0, 4));
        mn[j + 4] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(b2, 4), m4), _mm512_slli_epi32(h1, 4));
    }
    for (int i = 0; i < 4; i++) p->mp[k][i] = _mm512_or_si512(mn[2 * i], _mm512_slli_epi32(mn[2 * i + 1], 16));
    p->d[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(dd));
    p->dmin[k] = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(dd, 16)));
}

INLINE void gemm_kpack(gemm_kpanel *p, const uint8_t *w, size_t ws, int nr, int64_t k0, int nbc, gemm_ktype t) {
    const size_t SZ = gk_size(t);
    const uint8_t *rows[GEMM_ROWS];
    int32_t offs[GEMM_ROWS];
    for (int r = 0; r < GEMM_ROWS; r++) {
        offs[r] = (int32_t)((size_t)(r < nr ? r : nr - 1) * ws);
        rows[r] = w + offs[r] + (size_t)k0 * SZ;
    }
    const __m512i off = _mm512_loadu_si512(offs);
    for (int k = 0; k < nbc; k++) {
        const uint8_t *blocks[GEMM_ROWS];
        for (int r = 0; r < GEMM_ROWS; r++) blocks[r] = rows[r] + (size_t)k * SZ;
        gk_units(p->w[k], blocks, t);
        gemm_kscales(p, k, w + (size_t)(k0 + k) * SZ, off, t);
    }
}

/* Sums of four groups (16 elements) of values up to 63. */
INLINE __m512i gemm_dot4(const __m512i *w, const uint8_t *q) {
#ifdef __AVX512VNNI__
    __m512i acc = _mm512_setzero_si512();
#pragma GCC unroll 4
    for (int g = 0; g < 4; g++) acc = _mm512_dpbusd_epi32(acc, w[g], _mm512_set1_epi32(ld_i32(q + 4 * g)));
    return acc;
#else
    /* i16 sums of two pairs: |.| <= 2 * 2 * 63 * 127 < 2^15 */
    const __m512i one = _mm512_set1_epi16(1);
    __m512i acc = _mm512_setzero_si512();
    for (int h = 0; h < 4; h += 2) {
        const __m512i s = _mm512_add_epi16(_mm512_maddubs_epi16(w[h], _mm512_set1_epi32(ld_i32(q + 4 * h))),
                                           _mm512_maddubs_epi16(w[h + 1], _mm512_set1_epi32(ld_i32(q + 4 * h + 4))));
        acc = _mm512_add_epi32(acc, _mm512_madd_epi16(s, one));
    }
    return acc;
#endif
}

/* acc + sum of i16 pair products. */
INLINE __m512i dot_i16(__m512i acc, __m512i a, __m512i b) {
#ifdef __AVX512VNNI__
    return _mm512_dpwssd_epi32(acc, a, b);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}

INLINE void gemm_ktile(const gemm_kpanel *p, int nbc, const uint8_t *x, size_t xs, int64_t k0, const int T, float *y,
                       size_t ys, __mmask16 rmask, bool first, gemm_ktype t, gemm_prefetch *pf) {
    const uint8_t *xb[GEMM_TOKS];
    __m512 acc[GEMM_TOKS];
#pragma GCC unroll 8
    for (int j = 0; j < T; j++) {
        xb[j] = x + (size_t)j * xs + (size_t)k0 * GEMM_KXBLOCK;
        acc[j] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(rmask, y + (size_t)j * ys);
    }
    for (int k = 0; k < nbc; k++) {
        __m512i isum[GEMM_TOKS];
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) isum[j] = _mm512_setzero_si512();
        for (int u = 0; u < 8; u++) {
            if (pf) gemm_prefetch_step(pf);
            __m512i w[8];
#pragma GCC unroll 8
            for (int g = 0; g < 8; g++) w[g] = _mm512_load_si512(&p->w[k][u][g]);
            if (gk_sub16(t)) {
                const __m512i sa = p->sc[k][2 * u], sb = p->sc[k][2 * u + 1];
#pragma GCC unroll 8
                for (int j = 0; j < T; j++) {
                    const uint8_t *q = xb[j] + (size_t)k * GEMM_KXBLOCK + 32 * u;
                    const __m512i a = _mm512_mullo_epi32(gemm_dot4(w, q), sa);
                    const __m512i b = _mm512_mullo_epi32(gemm_dot4(w + 4, q + 16), sb);
                    isum[j] = _mm512_add_epi32(isum[j], _mm512_add_epi32(a, b));
                }
            } else {
                const __m512i sc = p->sc[k][u];
#pragma GCC unroll 8
                for (int j = 0; j < T; j++) {
                    const uint8_t *q = xb[j] + (size_t)k * GEMM_KXBLOCK + 32 * u;
                    isum[j] = _mm512_add_epi32(isum[j], _mm512_mullo_epi32(gemm_dot(_mm512_setzero_si512(), w, q), sc));
                }
            }
        }
#pragma GCC unroll 8
        for (int j = 0; j < T; j++) {
            const uint8_t *b = xb[j] + (size_t)k * GEMM_KXBLOCK;
            const __m512 dy = _mm512_set1_ps(ldf(b + KX_D));
            if (!gk_mins(t)) {
                /* the offset (Q3_K 4, Q6_K 32): sum of scale * block sum, in i16 pairs */
                __m512i corr = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int i = 0; i < 8; i++) corr = dot_i16(corr, p->mp[k][i], _mm512_set1_epi32(ld_i32(b + KX_BSUMS + 4 * i)));
                const __m512i is = _mm512_sub_epi32(isum[j], _mm512_slli_epi32(corr, t == GK_Q6_K ? 5 : 2));
                acc[j] = _mm512_add_ps(acc[j], rounded(_mm512_mul_ps(_mm512_mul_ps(p->d[k], dy), _mm512_cvtepi32_ps(is))));
            } else {
                /* mins against the sums of 16 (Q2_K) or 32 */
                __m512i summs = _mm512_setzero_si512();
                const int np = t == GK_Q2_K ? 8 : 4;
                const uint8_t *bs = b + (t == GK_Q2_K ? KX_BSUMS : KX_PAIRS);
#pragma GCC unroll 8
                for (int i = 0; i < np; i++) summs = dot_i16(summs, p->mp[k][i], _mm512_set1_epi32(ld_i32(bs + 4 * i)));
                const __m512 t1 = rounded(_mm512_mul_ps(_mm512_mul_ps(p->d[k], dy), _mm512_cvtepi32_ps(isum[j])));
                const __m512 t2 = rounded(_mm512_mul_ps(_mm512_mul_ps(p->dmin[k], dy), _mm512_cvtepi32_ps(summs)));
                acc[j] = _mm512_add_ps(acc[j], _mm512_sub_ps(t1, t2));
            }
        }
    }
#pragma GCC unroll 8
    for (int j = 0; j < T; j++) _mm512_mask_storeu_ps(y + (size_t)j * ys, rmask, acc[j]);
}

INLINE void gemm_kimpl(int64_t n, const void *wv, size_t ws, int n_rows, const void *xv, size_t xs, int n_x, float *y,
                      size_t ys, gemm_ktype t) {
    const uint8_t *w = wv, *x = xv;
    const int64_t nb = n / 256;
    gemm_kpanel p __attribute__((aligned(64)));
    for (int r0 = 0; r0 < n_rows; r0 += GEMM_ROWS) {
        const int nr = n_rows - r0 < GEMM_ROWS ? n_rows - r0 : GEMM_ROWS;
        const __mmask16 rm = (__mmask16)((1u << nr) - 1);
        for (int64_t k0 = 0; k0 < nb; k0 += GEMM_KKC) {
            const int nbc = nb - k0 < GEMM_KKC ? (int)(nb - k0) : GEMM_KKC;
            const bool first = k0 == 0;
            gemm_kpack(&p, w + (size_t)r0 * ws, ws, nr, k0, nbc, t);
            /* one prefetch step per 32-element unit */
            gemm_prefetch pf = gemm_next_panel(w, ws, r0, n_rows, k0, nb, GEMM_KKC, gk_size(t), 8 * nbc);
            for (int j = 0; j < n_x;) {
                const int left = n_x - j, T = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
                const uint8_t *xj = x + (size_t)j * xs;
                float *yj = y + (size_t)j * ys + r0;
                gemm_prefetch *pj = j == 0 && n_x <= GEMM_PREFETCH_MAX_X ? &pf : NULL;
                if (T == 8) gemm_ktile(&p, nbc, xj, xs, k0, 8, yj, ys, rm, first, t, pj);
                else if (T == 4) gemm_ktile(&p, nbc, xj, xs, k0, 4, yj, ys, rm, first, t, pj);
                else if (T == 2) gemm_ktile(&p, nbc, xj, xs, k0, 2, yj, ys, rm, first, t, pj);
                else gemm_ktile(&p, nbc, xj, xs, k0, 1, yj, ys, rm, first, t, pj);
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
#ifdef __AVX512VNNI__
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
