/* Weight quantizers for the K-quant types (Q2_K .. Q6_K) and the row
 * dispatcher for every type the engine writes.
 *
 * The K-quant encoders reproduce the reference engine's reference
 * quantizers step by step (the searches, the order of float operations and
 * the round-half-to-even rounding), since `nstack quantize` aims at the same
 * bytes as the reference tool. Super-blocks hold 256 weights in sub-blocks of
 * 16 (Q2_K, Q3_K, Q6_K) or 32 (Q4_K, Q5_K); each sub-block gets its own
 * scale (and min), and the sub-block scales are themselves quantized against
 * one or two fp16 super-block factors. */
#include "quantize.h"

#include "fields.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"
#include "threadpool.h"

/* Below this magnitude a group of weights counts as all zero. */
#define GROUP_EPS 1e-15f

/* Round to nearest, ties to even: adding 1.5 * 2^23 leaves the integer in the
 * low mantissa bits (valid for |v| < 2^22, far beyond the ranges used here).
 * The reference computes it this way; lrintf would agree, this spelling
 * keeps the same float addition. */
static inline int round_even(float v) {
    float t = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }


#define FIELD(block, field) offsetof(block, field)

/* ---- sub-block fits ------------------------------------------------------ */

/* Symmetric fit of n values to integers in [-nmax, nmax-1] with weights
 * x^2: start from the scale that maps the value of largest magnitude to
 * -nmax, then try 18 nearby scales (nmax +- 0.1 .. 0.9) and keep the one
 * whose least-squares scale explains most of the weighted signal. L gets
 * q + nmax; returns the scale (0 for an all-zero group). Q6_K's sub-block
 * search. */
static float fit_symmetric(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)(l + nmax);
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; is++) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
            float w = x[i] * x[i];
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + clampi(round_even(iscale * x[i]), -nmax, nmax - 1));
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

/* Q3_K's sub-block fit: the scale that maps the largest magnitude to -nmax,
 * then up to five passes that move single values to the level the
 * leave-one-out least-squares scale prefers, whenever that raises
 * (sum w x l)^2 / (sum w l^2) with w = x^2. L gets q + nmax. */
static float fit_symmetric_refine(int n, int nmax, const float *x, int8_t *L) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (a > amax) {
            amax = a;
            max = x[i];
        }
    }
    if (amax < GROUP_EPS) {
        memset(L, 0, (size_t)n);
        return 0.0f;
    }
    float iscale = -nmax / max;
    float sumlx = 0.0f, suml2 = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = clampi(round_even(iscale * x[i]), -nmax, nmax - 1);
        L[i] = (int8_t)l;
        float w = x[i] * x[i];
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    for (int pass = 0; pass < 5; pass++) {
        int changed = 0;
        for (int i = 0; i < n; i++) {
            float w = x[i] * x[i];
            float slx = sumlx - w * x[i] * L[i];
            if (slx > 0) {
                float sl2 = suml2 - w * L[i] * L[i];
                int nl = clampi(round_even(x[i] * sl2 / slx), -nmax, nmax - 1);
                if (nl != L[i]) {
                    slx += w * x[i] * nl;
                    sl2 += w * nl * nl;
                    if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
                        L[i] = (int8_t)nl;
                        sumlx = slx;
                        suml2 = sl2;
                        changed++;
                    }
                }
            }
        }
        if (!changed) break;
    }
    for (int i = 0; i < n; i++) L[i] = (int8_t)(L[i] + nmax);
    return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* Asymmetric fit x ~ scale * l - min, l in [0, nmax], min >= 0, for the
 * types with mins (Q2_K, Q4_K, Q5_K). The first guess spans [min(x, 0),
 * max(x)]; then nstep+1 candidate inverse scales (rmin + rdelta*k + nmax) /
 * range each give levels, a weighted least-squares scale and offset for
 * those levels (offset clamped to <= 0), and the candidate with the smaller
 * weighted error (absolute when use_mad, else squared) replaces the best.
 * Returns the scale and the min (as a positive number) in *the_min. */
static float fit_scale_min(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                           uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; i++) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        memset(L, 0, (size_t)n);
        *the_min = -min;
        return 0.0f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_err = 0.0f;
    for (int i = 0; i < n; i++) {
        int l = round_even(iscale * (x[i] - min));
        L[i] = (uint8_t)clampi(l, 0, nmax);
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        best_err += weights[i] * diff;
    }
    for (int is = 0; is <= nstep; is++) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            int l = clampi(round_even(iscale * (x[i] - min)), 0, nmax);
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float err = 0.0f;
            for (int i = 0; i < n; i++) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                err += weights[i] * diff;
            }
            if (err < best_err) {
                memcpy(L, Laux, (size_t)n);
                best_err = err;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

/* Q4_K / Q5_K: eight 6-bit scales and eight 6-bit mins in 12 bytes. */
static void pack_scale_min_k4(uint8_t *s, int j, uint8_t ls, uint8_t lm) {
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] |= (uint8_t)((ls >> 4) << 6);
        s[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

static void unpack_scale_min_k4(const uint8_t *s, int j, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (uint8_t)((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4));
        *mn = (uint8_t)((s[j + 4] >> 4) | ((s[j] >> 6) << 4));
    }
}

/* ---- Q2_K ------------------------------------------------------------------ */

static void quantize_q2_K(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    uint8_t L[NS_QK_K], Laux[16];
    float weights[16], mins[NS_QK_K / 16], scales[NS_QK_K / 16];
    const float q4scale = 15.0f;
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K, b += sizeof(ns_block_q2_K)) {
        uint8_t *sc = b + FIELD(ns_block_q2_K, scales);
        float max_scale = 0.0f, max_min = 0.0f;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            for (int l = 0; l < 16; l++) weights[l] = fabsf(x[16 * j + l]);
            scales[j] = fit_scale_min(16, 3, x + 16 * j, weights, L + 16 * j, &mins[j], Laux, -0.5f, 0.1f, 15, true);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        /* 4-bit sub-block scales (low nibble) and mins (high nibble) */
        if (max_scale > 0) {
            float iscale = q4scale / max_scale;
            for (int j = 0; j < NS_QK_K / 16; j++) sc[j] = (uint8_t)round_even(iscale * scales[j]);
            st16(b + FIELD(ns_block_q2_K, d), ns_fp32_to_fp16(max_scale / q4scale));
        } else {
            memset(sc, 0, NS_QK_K / 16);
            st16(b + FIELD(ns_block_q2_K, d), ns_fp32_to_fp16(0.0f));
        }
        if (max_min > 0) {
            float iscale = q4scale / max_min;
            for (int j = 0; j < NS_QK_K / 16; j++) sc[j] |= (uint8_t)(round_even(iscale * mins[j]) << 4);
            st16(b + FIELD(ns_block_q2_K, dmin), ns_fp32_to_fp16(max_min / q4scale));
        } else {
            st16(b + FIELD(ns_block_q2_K, dmin), ns_fp32_to_fp16(0.0f));
        }
        /* requantize against the stored (rounded) factors */
        const float dall = ldh(b + FIELD(ns_block_q2_K, d));
        const float mall = ldh(b + FIELD(ns_block_q2_K, dmin));
        for (int j = 0; j < NS_QK_K / 16; j++) {
            const float d = dall * (sc[j] & 0xF);
            if (!d) continue;
            const float dm = mall * (sc[j] >> 4);
            for (int k = 0; k < 16; k++) L[16 * j + k] = (uint8_t)clampi(round_even((x[16 * j + k] + dm) / d), 0, 3);
        }
        uint8_t *qs = b + FIELD(ns_block_q2_K, qs);
        for (int j = 0; j < NS_QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

/* ---- Q3_K ------------------------------------------------------------------ */

static void quantize_q3_K(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    int8_t L[NS_QK_K];
    float scales[NS_QK_K / 16];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K, b += sizeof(ns_block_q3_K)) {
        uint8_t *sc = b + FIELD(ns_block_q3_K, scales);
        float max_scale = 0.0f, amax = 0.0f;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            scales[j] = fit_symmetric_refine(16, 4, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > amax) {
                amax = a;
                max_scale = scales[j];
            }
        }
        /* 6-bit signed sub-block scales: low nibbles in bytes 0..7, the two
         * high bits of scale j in byte 8 + j%4 at bit 2*(j/4) */
        memset(sc, 0, 12);
        if (max_scale) {
            float iscale = -32.0f / max_scale;
            for (int j = 0; j < NS_QK_K / 16; j++) {
                /* the reference keeps this in an int8 before clamping */
                int8_t l8 = (int8_t)round_even(iscale * scales[j]);
                int l = clampi(l8, -32, 31) + 32;
                if (j < 8) sc[j] = (uint8_t)(l & 0xF);
                else sc[j - 8] |= (uint8_t)((l & 0xF) << 4);
                sc[j % 4 + 8] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
            }
            st16(b + FIELD(ns_block_q3_K, d), ns_fp32_to_fp16(1 / iscale));
        } else {
            st16(b + FIELD(ns_block_q3_K, d), ns_fp32_to_fp16(0.0f));
        }
        const float dall = ldh(b + FIELD(ns_block_q3_K, d));
        for (int j = 0; j < NS_QK_K / 16; j++) {
            int s = j < 8 ? sc[j] & 0xF : sc[j - 8] >> 4;
            s = (s | (((sc[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
            const float d = dall * s;
            if (!d) continue;
            for (int k = 0; k < 16; k++) L[16 * j + k] = (int8_t)(clampi(round_even(x[16 * j + k] / d), -4, 3) + 4);
        }
        /* bit 2 of each level goes to hmask: byte j % 32, bit j / 32 */
        uint8_t *hm = b + FIELD(ns_block_q3_K, hmask);
        memset(hm, 0, NS_QK_K / 8);
        for (int j = 0; j < NS_QK_K; j++) {
            if (L[j] > 3) {
                hm[j % (NS_QK_K / 8)] |= (uint8_t)(1u << (j / (NS_QK_K / 8)));
                L[j] = (int8_t)(L[j] - 4);
            }
        }
        uint8_t *qs = b + FIELD(ns_block_q3_K, qs);
        for (int j = 0; j < NS_QK_K; j += 128)
            for (int l = 0; l < 32; l++)
                qs[j / 4 + l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6));
    }
}

/* ---- Q4_K and Q5_K ------------------------------------------------------------ */

/* The part both share: per 32-weight sub-block an asymmetric fit weighted by
 * rms(sub-block) + |x|, then 6-bit scales and mins against fp16 d and dmin,
 * then levels requantized against the stored factors. nmax 15 or 31. */
static void kquant_scales_levels(const float *x, int nmax, float rmin, int nstep, uint8_t *d_field,
                                 uint8_t *dmin_field, uint8_t *sc, uint8_t *L) {
    uint8_t Laux[32];
    float weights[32], mins[NS_QK_K / 32], scales[NS_QK_K / 32];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < NS_QK_K / 32; j++) {
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += x[32 * j + l] * x[32 * j + l];
        float av_x = sqrtf(sum_x2 / 32);
        for (int l = 0; l < 32; l++) weights[l] = av_x + fabsf(x[32 * j + l]);
        scales[j] = fit_scale_min(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin, 0.1f, nstep, false);
        if (scales[j] > max_scale) max_scale = scales[j];
        if (mins[j] > max_min) max_min = mins[j];
    }
    float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    memset(sc, 0, NS_K_SCALE_SIZE);
    for (int j = 0; j < NS_QK_K / 32; j++) {
        /* the reference stores these through uint8 before the clamp to 63 */
        uint8_t ls = (uint8_t)round_even(inv_scale * scales[j]);
        uint8_t lm = (uint8_t)round_even(inv_min * mins[j]);
        if (ls > 63) ls = 63;
        if (lm > 63) lm = 63;
        pack_scale_min_k4(sc, j, ls, lm);
    }
    st16(d_field, ns_fp32_to_fp16(max_scale / 63.0f));
    st16(dmin_field, ns_fp32_to_fp16(max_min / 63.0f));
    const float dall = ldh(d_field), mall = ldh(dmin_field);
    for (int j = 0; j < NS_QK_K / 32; j++) {
        uint8_t s, m;
        unpack_scale_min_k4(sc, j, &s, &m);
        const float d = dall * s;
        if (!d) continue;
        const float dm = mall * m;
        for (int k = 0; k < 32; k++) L[32 * j + k] = (uint8_t)clampi(round_even((x[32 * j + k] + dm) / d), 0, nmax);
    }
}

static void quantize_q4_K(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    uint8_t L[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K, b += sizeof(ns_block_q4_K)) {
        kquant_scales_levels(x, 15, -1.0f, 20, b + FIELD(ns_block_q4_K, d), b + FIELD(ns_block_q4_K, dmin),
                             b + FIELD(ns_block_q4_K, scales), L);
        /* 64 weights per 32 bytes: the first 32 in low nibbles */
        uint8_t *q = b + FIELD(ns_block_q4_K, qs);
        for (int j = 0; j < NS_QK_K; j += 64, q += 32)
            for (int l = 0; l < 32; l++) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
    }
}

static void quantize_q5_K(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    uint8_t L[NS_QK_K];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K, b += sizeof(ns_block_q5_K)) {
        kquant_scales_levels(x, 31, -0.5f, 15, b + FIELD(ns_block_q5_K, d), b + FIELD(ns_block_q5_K, dmin),
                             b + FIELD(ns_block_q5_K, scales), L);
        /* low 4 bits as in Q4_K; bit 4 of weight 64*k + l (+32) is bit 2k
         * (2k+1) of qh[l] */
        uint8_t *qh = b + FIELD(ns_block_q5_K, qh);
        uint8_t *ql = b + FIELD(ns_block_q5_K, qs);
        memset(qh, 0, NS_QK_K / 8);
        uint8_t m1 = 1, m2 = 2;
        for (int j = 0; j < NS_QK_K; j += 64, ql += 32) {
            for (int l = 0; l < 32; l++) {
                int l1 = L[j + l], l2 = L[j + l + 32];
                if (l1 > 15) {
                    l1 -= 16;
                    qh[l] |= m1;
                }
                if (l2 > 15) {
                    l2 -= 16;
                    qh[l] |= m2;
                }
                ql[l] = (uint8_t)(l1 | (l2 << 4));
            }
            m1 = (uint8_t)(m1 << 2);
            m2 = (uint8_t)(m2 << 2);
        }
    }
}

/* ---- Q6_K ------------------------------------------------------------------ */

static void quantize_q6_K(const float *x, void *dst, int64_t n) {
    uint8_t *b = dst;
    int8_t L[NS_QK_K];
    float scales[NS_QK_K / 16];
    for (int64_t i = 0; i < n / NS_QK_K; i++, x += NS_QK_K, b += sizeof(ns_block_q6_K)) {
        float max_scale = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < NS_QK_K / 16; j++) {
            scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
            float a = fabsf(scales[j]);
            if (a > max_abs) {
                max_abs = a;
                max_scale = scales[j];
            }
        }
        if (max_abs < GROUP_EPS) {
            memset(b, 0, sizeof(ns_block_q6_K));
            continue;
        }
        /* 8-bit signed sub-block scales against one fp16 factor */
        float iscale = -128.0f / max_scale;
        st16(b + FIELD(ns_block_q6_K, d), ns_fp32_to_fp16(1 / iscale));
        int8_t *sc = (int8_t *)(b + FIELD(ns_block_q6_K, scales));
        for (int j = 0; j < NS_QK_K / 16; j++) {
            int s = round_even(iscale * scales[j]);
            sc[j] = (int8_t)(s < 127 ? s : 127);
        }
        const float dall = ldh(b + FIELD(ns_block_q6_K, d));
        for (int j = 0; j < NS_QK_K / 16; j++) {
            const float d = dall * sc[j];
            if (!d) continue;
            for (int k = 0; k < 16; k++) L[16 * j + k] = (int8_t)(clampi(round_even(x[16 * j + k] / d), -32, 31) + 32);
        }
        /* per 128 weights: low nibbles of weights l and l+64 in ql[l], of
         * l+32 and l+96 in ql[l+32]; the two high bits of all four in qh[l] */
        uint8_t *ql = b + FIELD(ns_block_q6_K, ql);
        uint8_t *qh = b + FIELD(ns_block_q6_K, qh);
        for (int j = 0; j < NS_QK_K; j += 128, ql += 64, qh += 32) {
            for (int l = 0; l < 32; l++) {
                const int q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
                ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

/* ---- dispatch ---------------------------------------------------------------- */

typedef void (*quant_fn)(const float *src, void *dst, int64_t n);

static quant_fn quantizer(ns_type t) {
    switch (t) {
    case NS_TYPE_Q2_K: return quantize_q2_K;
    case NS_TYPE_Q3_K: return quantize_q3_K;
    case NS_TYPE_Q4_K: return quantize_q4_K;
    case NS_TYPE_Q5_K: return quantize_q5_K;
    case NS_TYPE_Q6_K: return quantize_q6_K;
    case NS_TYPE_F32: case NS_TYPE_F16: case NS_TYPE_BF16: case NS_TYPE_Q8_0:
    case NS_TYPE_Q4_0: case NS_TYPE_Q4_1: case NS_TYPE_Q5_0: case NS_TYPE_Q5_1: {
        /* the engine's own encoders are the reference ones for these */
        const ns_type_kernels *k = ns_kernels(t);
        return k ? k->from_float : NULL;
    }
    default: return NULL;
    }
}

bool ns_quantize_supported(ns_type t) { return quantizer(t) != NULL; }

int ns_quantize_row(ns_type t, const float *src, void *dst, int64_t n) {
    quant_fn f = quantizer(t);
    if (!f || n < 0 || (n > 0 && ns_row_size(t, n) == 0)) return -1;
    if (n > 0) f(src, dst, n);
    return 0;
}

typedef struct {
    quant_fn f;
    const float *src;
    uint8_t *dst;
    int64_t nrows, n_per_row;
    size_t row_bytes;
} rows_job;

static void rows_task(void *arg, int task, int n_tasks) {
    const rows_job *j = arg;
    int64_t r0 = j->nrows * task / n_tasks, r1 = j->nrows * (task + 1) / n_tasks;
    if (r1 > r0) j->f(j->src + r0 * j->n_per_row, j->dst + (size_t)r0 * j->row_bytes, (r1 - r0) * j->n_per_row);
}

int ns_quantize_rows(ns_type t, const float *src, void *dst, int64_t nrows, int64_t n_per_row, int n_threads) {
    quant_fn f = quantizer(t);
    if (!f || nrows < 0 || n_per_row <= 0) return -1;
    size_t row_bytes = ns_row_size(t, n_per_row);
    if (row_bytes == 0) return -1;
    if (nrows == 0) return 0;
    rows_job job = {f, src, dst, nrows, n_per_row, row_bytes};
    if (n_threads > nrows) n_threads = (int)nrows;
    ns_pool *pool = n_threads > 1 ? ns_pool_new(n_threads) : NULL;
    if (pool) {
        /* several tasks per thread even out rows of uneven cost */
        int64_t tasks = (int64_t)n_threads * 4;
        ns_pool_run(pool, rows_task, &job, (int)(tasks < nrows ? tasks : nrows));
        ns_pool_free(pool);
    } else {
        rows_task(&job, 0, 1);
    }
    return 0;
}

ns_type ns_quantize_fit_type(ns_type t, int64_t ne0, bool *fell_back) {
    if (fell_back) *fell_back = false;
    if (ns_row_size(t, ne0) != 0) return t;
    if (fell_back) *fell_back = true;
    ns_type f;
    switch (t) {
    case NS_TYPE_Q2_K: case NS_TYPE_Q3_K: f = NS_TYPE_Q4_0; break;
    case NS_TYPE_Q4_K: f = NS_TYPE_Q5_0; break;
    case NS_TYPE_Q5_K: f = NS_TYPE_Q5_1; break;
    case NS_TYPE_Q6_K: f = NS_TYPE_Q8_0; break;
    default: f = NS_TYPE_F16; break;
    }
    return ns_row_size(f, ne0) != 0 ? f : NS_TYPE_F16;
}
