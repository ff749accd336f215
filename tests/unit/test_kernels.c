/* SIMD kernels (kernels_*.c) against the scalar reference kernels of
 * quant.c, on every level this CPU supports.
 *
 * - Activation quantizers (from_float of Q8_0, Q8_1, Q8_K, F16): output
 *   bytes identical to the scalar quantizer's, including rounding ties,
 *   zero blocks, repeated extremes, tiny and huge magnitudes (and for F16
 *   every kind of float bit pattern).
 * - F16 decoding (to_float): every bit pattern, as the scalar decoder.
 * - vec_dot, exact: with all block scales 1.0 and activations small enough
 *   that every partial sum is an integer below 2^24, every float operation
 *   of either path is exact, so the two results must be equal: this checks
 *   the integer block sums (layouts, offsets, bit extraction) bit for bit.
 * - vec_dot, random scales: the SIMD kernels sum the scaled block sums in
 *   another order (lane-wise, blocks grouped). Both results are within
 *   c * eps * M of the exact value, where M bounds the sum of the absolute
 *   values of every term either path adds (the dequantized weights', and
 *   for types with an offset the offsets', products with the activations),
 *   and c counts the additions in a chain (blocks plus lane reductions). We
 *   allow |simd - scalar| <= 4 * (n_blocks + 64) * 2^-24 * M.
 * - vec_dot_n: each output bit-identical to the same level's vec_dot.
 * - gemm (prompt products): each output bit-identical to the scalar
 *   vec_dot of the same weight row and the scalar quantizer's activation
 *   row, for every count of rows and activation rows around the kernels'
 *   tile sizes, rows longer than a panel chunk, padded strides; nothing
 *   written outside the outputs or past ns_gemm_row_size.
 * - axpy_n (attention's value sums, F32 and F16 rows): every output
 *   bit-identical to the scalar kernel's (both multiply, then add, with no
 *   fused step), for lengths around the vector widths and 1 to 16 outputs;
 *   nothing written between the output rows.
 * Rows of 1 block, odd block counts, long rows, and misaligned pointers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cpu_features.h"
#include "engine/quant.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int rng_int(int lo, int hi) { return lo + (int)(rng_u64() % (uint64_t)(hi - lo + 1)); }

static float rng_uniform(void) { return (float)((rng_u64() >> 40) * (1.0 / 16777216.0)); }

static float rng_normal(void) {
    double u1 = ((rng_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (rng_u64() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static const ns_type_kernels *scalar_k(ns_type t) {
    const ns_type_kernels *k = ns_kernels_for_isa(t, NS_ISA_SCALAR);
    assert_non_null(k);
    return k;
}

/* The weight types with a vec_dot. */
static const ns_type dot_types[] = {NS_TYPE_F32,  NS_TYPE_F16,  NS_TYPE_BF16, NS_TYPE_Q4_0, NS_TYPE_Q4_1,
                                    NS_TYPE_Q5_0, NS_TYPE_Q5_1, NS_TYPE_Q8_0, NS_TYPE_Q2_K, NS_TYPE_Q3_K,
                                    NS_TYPE_Q4_K, NS_TYPE_Q5_K, NS_TYPE_Q6_K};
#define N_DOT_TYPES (sizeof dot_types / sizeof dot_types[0])

static bool is_float_type(ns_type t) { return t == NS_TYPE_F32 || t == NS_TYPE_F16 || t == NS_TYPE_BF16; }

/* fp16 fields of a weight block: (offset, role) with role 0 = scale d, 1 =
 * offset / min (Q4_1 m, K dmin). */
typedef struct {
    int off, role;
} field;

static int weight_fields(ns_type t, field f[2]) {
    switch (t) {
    case NS_TYPE_Q4_0: case NS_TYPE_Q5_0: case NS_TYPE_Q8_0:
        f[0] = (field){0, 0};
        return 1;
    case NS_TYPE_Q4_1: case NS_TYPE_Q5_1:
        f[0] = (field){0, 0};
        f[1] = (field){2, 1};
        return 2;
    case NS_TYPE_Q2_K:
        f[0] = (field){80, 0};
        f[1] = (field){82, 1};
        return 2;
    case NS_TYPE_Q3_K:
        f[0] = (field){108, 0};
        return 1;
    case NS_TYPE_Q4_K: case NS_TYPE_Q5_K:
        f[0] = (field){0, 0};
        f[1] = (field){2, 1};
        return 2;
    case NS_TYPE_Q6_K:
        f[0] = (field){208, 0};
        return 1;
    default:
        return 0;
    }
}

/* Byte ranges of a block that hold quantized values (not scales). */
static int quant_ranges(ns_type t, int r[3][2]) {
    switch (t) {
    case NS_TYPE_Q4_0: r[0][0] = 2; r[0][1] = 16; return 1;
    case NS_TYPE_Q4_1: r[0][0] = 4; r[0][1] = 16; return 1;
    case NS_TYPE_Q5_0: r[0][0] = 2; r[0][1] = 20; return 1;
    case NS_TYPE_Q5_1: r[0][0] = 4; r[0][1] = 20; return 1;
    case NS_TYPE_Q8_0: r[0][0] = 2; r[0][1] = 32; return 1;
    case NS_TYPE_Q2_K: r[0][0] = 16; r[0][1] = 64; return 1;
    case NS_TYPE_Q3_K: r[0][0] = 0; r[0][1] = 96; return 1;
    case NS_TYPE_Q4_K: r[0][0] = 16; r[0][1] = 128; return 1;
    case NS_TYPE_Q5_K: r[0][0] = 16; r[0][1] = 160; return 1;
    case NS_TYPE_Q6_K: r[0][0] = 0; r[0][1] = 192; return 1;
    default: return 0;
    }
}

/* A weight row of n elements: random quantized bytes, fp16 scales either
 * 1.0 (exact) or random of varied magnitude. */
static void make_weights(ns_type t, int64_t n, uint8_t *row, bool exact) {
    const ns_type_info *ti = ns_type_get(t);
    if (is_float_type(t)) {
        for (int64_t i = 0; i < n; i++) {
            const float v = exact ? (float)rng_int(-8, 8) : rng_normal() * 0.5f;
            if (t == NS_TYPE_F32) memcpy(row + 4 * i, &v, 4);
            else if (t == NS_TYPE_F16) put16(row + 2 * i, ns_fp32_to_fp16(v));
            else put16(row + 2 * i, ns_fp32_to_bf16(v));
        }
        return;
    }
    const int64_t nb = n / ti->block_size;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = row + b * ti->type_size;
        for (uint32_t j = 0; j < ti->type_size; j++) blk[j] = (uint8_t)rng_u64();
        field f[2];
        const int nf = weight_fields(t, f);
        for (int k = 0; k < nf; k++) {
            float v;
            if (exact) v = f[k].role == 0 ? 1.0f : (float)rng_int(-4, 4);
            else v = (f[k].role == 0 ? 0.01f : 0.005f) * (0.25f + rng_uniform()) * (rng_u64() & 1 ? 1.0f : -1.0f);
            if (exact && t != NS_TYPE_Q4_1 && t != NS_TYPE_Q5_1) v = 1.0f;
            put16(blk + f[k].off, ns_fp32_to_fp16(v));
        }
    }
}

/* An activation row of the vec_dot type: quantized from random floats by the
 * scalar quantizer, or (exact) built with scale 1.0 and values in [-R, R]. */
static void make_acts(ns_type vt, int64_t n, uint8_t *row, bool exact, int R, float *tmp) {
    if (!exact) {
        for (int64_t i = 0; i < n; i++) tmp[i] = rng_normal();
        scalar_k(vt)->from_float(tmp, row, n);
        return;
    }
    if (is_float_type(vt)) {
        for (int64_t i = 0; i < n; i++) tmp[i] = (float)rng_int(-R, R);
        scalar_k(vt)->from_float(tmp, row, n);
        return;
    }
    const ns_type_info *ti = ns_type_get(vt);
    for (int64_t b = 0; b < n / ti->block_size; b++) {
        uint8_t *blk = row + b * ti->type_size;
        if (vt == NS_TYPE_Q8_K) {
            const float one = 1.0f;
            memcpy(blk, &one, 4);
            int8_t *qs = (int8_t *)(blk + 4);
            for (int j = 0; j < 256; j++) qs[j] = (int8_t)rng_int(-R, R);
            for (int g = 0; g < 16; g++) {
                int16_t s = 0;
                for (int j = 0; j < 16; j++) s = (int16_t)(s + qs[16 * g + j]);
                memcpy(blk + 260 + 2 * g, &s, 2);
            }
        } else {
            const int qoff = vt == NS_TYPE_Q8_1 ? 4 : 2;
            int sum = 0;
            for (int j = 0; j < 32; j++) {
                const int v = rng_int(-R, R);
                blk[qoff + j] = (uint8_t)(int8_t)v;
                sum += v;
            }
            put16(blk, ns_fp32_to_fp16(1.0f));
            if (vt == NS_TYPE_Q8_1) put16(blk + 2, ns_fp32_to_fp16((float)sum));
        }
    }
}

/* Largest |product| of one weight value (its offset part included) and an
 * activation of magnitude 1, with all scales 1: keeps exact sums < 2^24. */
static int max_weight(ns_type t) {
    switch (t) {
    case NS_TYPE_F32: case NS_TYPE_F16: case NS_TYPE_BF16: return 8;
    /* SIMD paths may sum u * x and the offset * x separately (u: the
     * unsigned stored value), so both parts count */
    case NS_TYPE_Q4_0: return 15 + 8;
    case NS_TYPE_Q4_1: return 15 + 4;
    case NS_TYPE_Q5_0: return 31 + 16;
    case NS_TYPE_Q5_1: return 31 + 4;
    case NS_TYPE_Q8_0: return 128 + 128;
    case NS_TYPE_Q2_K: return 15 * 3 + 15;
    case NS_TYPE_Q3_K: return 32 * (7 + 4);
    case NS_TYPE_Q4_K: return 63 * 15 + 63;
    case NS_TYPE_Q5_K: return 63 * 31 + 63;
    case NS_TYPE_Q6_K: return 128 * (63 + 32);
    default: return 1;
    }
}

/* M of the header comment: sum |w_i x_i| + |offset_i x_i| in double, from
 * the scalar decoders (offset_i: the value of element i with its quantized
 * bits zeroed). */
static double magnitude(ns_type t, int64_t n, const uint8_t *w, const uint8_t *x) {
    const ns_type_kernels *kw = scalar_k(t);
    const ns_type_kernels *kx = scalar_k(kw->vec_dot_type);
    const size_t wb = ns_row_size(t, n);
    float *wd = malloc(sizeof(float) * (size_t)n), *wz = malloc(sizeof(float) * (size_t)n);
    float *xd = malloc(sizeof(float) * (size_t)n);
    uint8_t *w0 = malloc(wb);
    assert_non_null(wd); assert_non_null(wz); assert_non_null(xd); assert_non_null(w0);
    memcpy(w0, w, wb);
    int r[3][2];
    const int nr = quant_ranges(t, r);
    const ns_type_info *ti = ns_type_get(t);
    for (int64_t b = 0; !is_float_type(t) && b < n / ti->block_size; b++)
        for (int k = 0; k < nr; k++) memset(w0 + b * ti->type_size + r[k][0], 0, (size_t)r[k][1]);
    kw->to_float(w, wd, n);
    kw->to_float(w0, wz, n);
    kx->to_float(x, xd, n);
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) m += (fabs((double)wd[i]) + (is_float_type(t) ? 0.0 : fabs((double)wz[i]))) * fabs((double)xd[i]);
    free(wd); free(wz); free(xd); free(w0);
    return m;
}

/* The SIMD levels this CPU runs. */
static int simd_levels(ns_isa out[NS_ISA_COUNT]) {
    int k = 0;
    for (int l = 1; l < NS_ISA_COUNT; l++)
        if (ns_isa_supported((ns_isa)l)) out[k++] = (ns_isa)l;
    return k;
}

/* ---- dispatch ----------------------------------------------------------- */

static void test_levels(void **state) {
    (void)state;
    const ns_isa det = ns_isa_detected(), act = ns_isa_active();
    assert_true(ns_isa_supported(NS_ISA_SCALAR));
    assert_true(ns_isa_supported(det));
    assert_true(act <= det);
    assert_true(ns_isa_supported(act));
    for (int l = 0; l < NS_ISA_COUNT; l++) {
        ns_isa p;
        assert_true(ns_isa_parse(ns_isa_name((ns_isa)l), &p));
        assert_int_equal(p, l);
        const ns_isa c = ns_isa_clamp((ns_isa)l);
        assert_true(c <= (ns_isa)l);
        assert_true(ns_isa_supported(c));
        for (int m = c + 1; m <= l; m++) assert_false(ns_isa_supported((ns_isa)m));
        /* every type has kernels on every supported level, none elsewhere */
        for (size_t i = 0; i < N_DOT_TYPES; i++) {
            const ns_type_kernels *k = ns_kernels_for_isa(dot_types[i], (ns_isa)l);
            if (ns_isa_supported((ns_isa)l)) {
                assert_non_null(k);
                assert_non_null(k->vec_dot);
                assert_int_equal(k->vec_dot_type, scalar_k(dot_types[i])->vec_dot_type);
            } else {
                assert_null(k);
            }
        }
    }
    ns_isa p;
    assert_false(ns_isa_parse("sse9", &p));
    assert_false(ns_isa_parse(NULL, &p));
    assert_true(ns_isa_parse("AVX2", &p));
    assert_int_equal(p, NS_ISA_AVX2);
    assert_string_equal(ns_isa_active_name(), ns_isa_name(act));
    for (size_t i = 0; i < N_DOT_TYPES; i++) assert_ptr_equal(ns_kernels(dot_types[i]), ns_kernels_for_isa(dot_types[i], act));
    /* run under NSTACK_ISA=... the active level is the request, clamped */
    const char *env = getenv("NSTACK_ISA");
    if (env != NULL && ns_isa_parse(env, &p)) {
        assert_int_equal(act, ns_isa_clamp(p < det ? p : det));
    } else {
        assert_int_equal(act, det);
    }
    const ns_cpu_features *f = ns_cpu_features_get();
    printf("# cpu: avx2=%d fma=%d f16c=%d avx512f/bw/dq/vl=%d%d%d%d avx512vnni=%d avx_vnni=%d; detected %s, active %s\n",
           f->avx2, f->fma, f->f16c, f->avx512f, f->avx512bw, f->avx512dq, f->avx512vl, f->avx512vnni,
           f->avx_vnni, ns_isa_name(det), ns_isa_name(act));
}

/* ---- activation quantizers ---------------------------------------------- */

/* Fills n floats with one of several patterns. */
static void fill_pattern(float *x, int64_t n, int bs, int pattern) {
    for (int64_t i = 0; i < n; i++) x[i] = rng_normal();
    for (int64_t b = 0; b < n / bs; b++) {
        float *v = x + b * bs;
        const int p = pattern == 6 ? (int)(b % 6) : pattern;
        switch (p) {
        case 0: break;
        case 1: /* zero block, with negative zeros */
            for (int j = 0; j < bs; j++) v[j] = (j & 1) ? -0.0f : 0.0f;
            break;
        case 2: /* scale 1 exactly (amax 127), then halves: rounding ties */
            for (int j = 0; j < bs; j++) v[j] = (float)rng_int(-127, 126) + 0.5f;
            v[rng_int(0, bs - 1)] = (rng_u64() & 1) ? 127.0f : -127.0f;
            break;
        case 3: /* the extreme twice, with both signs */
            for (int j = 0; j < bs; j++) v[j] *= 0.5f;
            v[rng_int(0, bs / 2 - 1)] = -3.0f;
            v[rng_int(bs / 2, bs - 1)] = 3.0f;
            break;
        case 4: /* tiny and huge */
            for (int j = 0; j < bs; j++) v[j] *= (b & 1) ? 1e-30f : 1e30f;
            break;
        case 5: /* integers (exact products) */
            for (int j = 0; j < bs; j++) v[j] = (float)rng_int(-200, 200);
            break;
        default: break;
        }
    }
}

static void check_quantizer(ns_type vt, int64_t n, int pattern, int misalign) {
    const ns_type_kernels *ks = scalar_k(vt);
    const size_t rb = ns_row_size(vt, n);
    float *xbuf = malloc(sizeof(float) * (size_t)n + 16);
    uint8_t *a = malloc(rb + 8), *b = malloc(rb + 8);
    assert_non_null(xbuf); assert_non_null(a); assert_non_null(b);
    float *x = (float *)((uint8_t *)xbuf + 4 * (misalign & 1)); /* 4-byte aligned, not 32 */
    const int bs = vt == NS_TYPE_F16 ? 32 : (int)ns_type_get(vt)->block_size;
    fill_pattern(x, n, bs, pattern);
    memset(a, 0x5a, rb + 8);
    ks->from_float(x, a + misalign, n);
    ns_isa lv[NS_ISA_COUNT];
    const int nl = simd_levels(lv);
    for (int li = 0; li < nl; li++) {
        const ns_type_kernels *k = ns_kernels_for_isa(vt, lv[li]);
        assert_non_null(k);
        memset(b, 0x5a, rb + 8);
        k->from_float(x, b + misalign, n);
        if (memcmp(a, b, rb + 8) != 0) {
            for (size_t i = 0; i < rb + 8; i++)
                if (a[i] != b[i]) {
                    fail_msg("%s from_float on %s, n=%lld pattern %d: byte %zu differs (%02x vs %02x)",
                             ns_type_name(vt), ns_isa_name(lv[li]), (long long)n, pattern, i, a[i], b[i]);
                }
        }
    }
    free(xbuf); free(a); free(b);
}

static void test_quantizers_identical(void **state) {
    (void)state;
    const ns_type vts[] = {NS_TYPE_Q8_0, NS_TYPE_Q8_1, NS_TYPE_Q8_K, NS_TYPE_F16};
    for (size_t t = 0; t < sizeof vts / sizeof vts[0]; t++) {
        const int64_t bs = vts[t] == NS_TYPE_Q8_K ? 256 : 32;
        const int64_t lens[] = {bs, 3 * bs, 7 * bs, 2048, 8192};
        for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
            for (int p = 0; p <= 6; p++)
                for (int rep = 0; rep < 3; rep++) check_quantizer(vts[t], lens[li], p, rep);
    }
    /* F16 also at lengths that are not a multiple of 8 */
    for (int64_t n = 1; n < 40; n++) check_quantizer(NS_TYPE_F16, n, 0, (int)(n & 3));
}

static void test_f16_all_bit_patterns(void **state) {
    (void)state;
    /* random float bit patterns: NaNs, infinities, subnormals, overflow */
    const int64_t n = 1 << 16;
    float *x = malloc(sizeof(float) * (size_t)n);
    uint8_t *a = malloc(2 * (size_t)n), *b = malloc(2 * (size_t)n);
    assert_non_null(x); assert_non_null(a); assert_non_null(b);
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)rng_u64();
        if (i % 3 == 0) u = (u & 0x8000ffffu) | (uint32_t)rng_int(96, 150) << 23; /* near f16's range */
        memcpy(&x[i], &u, 4);
    }
    scalar_k(NS_TYPE_F16)->from_float(x, a, n);
    ns_isa lv[NS_ISA_COUNT];
    const int nl = simd_levels(lv);
    for (int li = 0; li < nl; li++) {
        ns_kernels_for_isa(NS_TYPE_F16, lv[li])->from_float(x, b, n);
        assert_memory_equal(a, b, 2 * (size_t)n);
    }
    free(x); free(a); free(b);
}

/* F16 decoding (to_float), every level: every 16-bit pattern, and lengths
 * that leave tails; NaNs need only stay NaNs. */
static void test_f16_decode(void **state) {
    (void)state;
    const int64_t n = 1 << 16;
    uint8_t *h = malloc(2 * (size_t)n);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    assert_non_null(h); assert_non_null(a); assert_non_null(b);
    for (int64_t i = 0; i < n; i++) put16(h + 2 * i, (uint16_t)i);
    ns_isa lv[NS_ISA_COUNT];
    const int nl = simd_levels(lv);
    for (int64_t k = 1; k <= 41; k++) {
        const int64_t len = k <= 40 ? k : n, start = len < n ? rng_int(0, (int)(n - len)) : 0;
        scalar_k(NS_TYPE_F16)->to_float(h + 2 * start, a, len);
        for (int li = 0; li < nl; li++) {
            ns_kernels_for_isa(NS_TYPE_F16, lv[li])->to_float(h + 2 * start, b, len);
            for (int64_t i = 0; i < len; i++)
                if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], sizeof(float)) != 0)
                    fail_msg("F16 to_float on %s: %04x -> %.9g, scalar %.9g", ns_isa_name(lv[li]),
                             (unsigned)(start + i), (double)b[i], (double)a[i]);
        }
    }
    free(h); free(a); free(b);
}

/* ---- dot products ------------------------------------------------------- */

typedef struct {
    uint8_t *wbuf, *xbuf;
    uint8_t *w, *x;
    float *tmp;
} bufs;

static bufs alloc_bufs(ns_type t, int64_t n, int nx, size_t xstride, int misalign) {
    bufs b;
    b.wbuf = malloc(ns_row_size(t, n) + 64);
    b.xbuf = malloc(xstride * (size_t)nx + 64);
    b.tmp = malloc(sizeof(float) * (size_t)n);
    assert_non_null(b.wbuf); assert_non_null(b.xbuf); assert_non_null(b.tmp);
    b.w = b.wbuf + misalign;
    b.x = b.xbuf + (misalign * 5 + 3) % 8;
    return b;
}

static void free_bufs(bufs *b) {
    free(b->wbuf); free(b->xbuf); free(b->tmp);
}

static void check_dot(ns_type t, int64_t n, bool exact, int misalign) {
    const ns_type_kernels *ks = scalar_k(t);
    const ns_type vt = ks->vec_dot_type;
    const size_t xr = ns_row_size(vt, n);
    bufs B = alloc_bufs(t, n, 1, xr, misalign);
    make_weights(t, n, B.w, exact);
    int R = 127;
    if (exact) {
        const double lim = 16777216.0 / ((double)n * max_weight(t));
        if (lim < 1.0) {
            free_bufs(&B);
            return; /* too long for exact sums */
        }
        R = lim >= 127 ? 127 : (int)lim;
    }
    make_acts(vt, n, B.x, exact, R, B.tmp);
    const float ref = ks->vec_dot(n, B.w, B.x);
    const double M = magnitude(t, n, B.w, B.x);
    const int64_t nblocks = n / ns_type_get(t)->block_size;
    const double tol = 4.0 * (double)(nblocks + 64) * ldexp(1.0, -24) * M;
    ns_isa lv[NS_ISA_COUNT];
    const int nl = simd_levels(lv);
    for (int li = 0; li < nl; li++) {
        const ns_type_kernels *k = ns_kernels_for_isa(t, lv[li]);
        const float got = k->vec_dot(n, B.w, B.x);
        if (exact) {
            if (got != ref)
                fail_msg("%s on %s n=%lld exact: %.9g vs scalar %.9g", ns_type_name(t), ns_isa_name(lv[li]),
                         (long long)n, (double)got, (double)ref);
        } else if (!(fabs((double)got - (double)ref) <= tol)) {
            fail_msg("%s on %s n=%lld: %.9g vs scalar %.9g (diff %.3g, tol %.3g, M %.3g)", ns_type_name(t),
                     ns_isa_name(lv[li]), (long long)n, (double)got, (double)ref, fabs((double)got - (double)ref),
                     tol, M);
        }
    }
    free_bufs(&B);
}

static void lengths_for(ns_type t, int64_t *lens, int *nlens) {
    const int64_t bs = ns_type_get(t)->block_size;
    if (bs == 1) {
        const int64_t l[] = {1, 7, 8, 15, 16, 17, 31, 33, 100, 255, 2048, 8191};
        memcpy(lens, l, sizeof l);
        *nlens = (int)(sizeof l / sizeof l[0]);
    } else if (bs == 32) {
        const int64_t l[] = {32, 64, 96, 128, 160, 224, 352, 2048, 8192 + 96};
        memcpy(lens, l, sizeof l);
        *nlens = (int)(sizeof l / sizeof l[0]);
    } else {
        const int64_t l[] = {256, 512, 768, 1280, 2048, 8192};
        memcpy(lens, l, sizeof l);
        *nlens = (int)(sizeof l / sizeof l[0]);
    }
}

static void test_dot_exact(void **state) {
    (void)state;
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        int64_t lens[16];
        int nl;
        lengths_for(dot_types[ti], lens, &nl);
        for (int li = 0; li < nl; li++)
            for (int rep = 0; rep < 6; rep++) check_dot(dot_types[ti], lens[li], true, rep % 4);
    }
}

static void test_dot_random(void **state) {
    (void)state;
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        int64_t lens[16];
        int nl;
        lengths_for(dot_types[ti], lens, &nl);
        for (int li = 0; li < nl; li++)
            for (int rep = 0; rep < 6; rep++) check_dot(dot_types[ti], lens[li], false, rep % 4);
    }
}

/* vec_dot_n: every output equal to vec_dot's, bit for bit. */
static void test_dot_n(void **state) {
    (void)state;
    ns_isa lv[NS_ISA_COUNT];
    const int nlv = simd_levels(lv);
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        const ns_type t = dot_types[ti];
        const ns_type vt = scalar_k(t)->vec_dot_type;
        const int64_t bs = ns_type_get(t)->block_size;
        const int64_t lens[] = {bs == 1 ? 37 : bs, bs == 1 ? 2048 : bs * 5, bs == 1 ? 4099 : bs * (bs == 32 ? 67 : 9)};
        for (size_t li = 0; li < 3; li++) {
            const int64_t n = lens[li];
            const size_t xr = ns_row_size(vt, n), xstride = xr + 3;
            const int nx = 9;
            bufs B = alloc_bufs(t, n, nx, xstride, (int)li);
            make_weights(t, n, B.w, false);
            for (int j = 0; j < nx; j++) make_acts(vt, n, B.x + (size_t)j * xstride, false, 127, B.tmp);
            for (int l = 0; l < nlv; l++) {
                const ns_type_kernels *k = ns_kernels_for_isa(t, lv[l]);
                if (k->vec_dot_n == NULL) continue;
                for (int m = 1; m <= nx; m++) {
                    float out[16];
                    for (int j = 0; j < 16; j++) out[j] = -12345.0f;
                    k->vec_dot_n(n, B.w, B.x, xstride, m, out);
                    for (int j = 0; j < m; j++) {
                        const float one = k->vec_dot(n, B.w, B.x + (size_t)j * xstride);
                        if (memcmp(&one, &out[j], sizeof one) != 0)
                            fail_msg("%s on %s n=%lld: vec_dot_n(%d)[%d] = %.9g, vec_dot %.9g", ns_type_name(t),
                                     ns_isa_name(lv[l]), (long long)n, m, j, (double)out[j], (double)one);
                    }
                    assert_true(out[m] == -12345.0f);
                }
            }
            free_bufs(&B);
        }
    }
}


/* gemm against scalar vec_dot, bit for bit. */
static void check_gemm(ns_type t, ns_isa level, int64_t n, int n_rows, int n_x, int misalign) {
    const ns_type_kernels *k = ns_kernels_for_isa(t, level), *ks = scalar_k(t);
    const ns_type_kernels *kx = scalar_k(ks->vec_dot_type);
    const size_t wrow = ns_row_size(t, n), ws = wrow + (size_t)(misalign & 1) * 6;
    const size_t grow = ns_gemm_row_size(n), gs = grow + 64 * (size_t)(misalign & 2);
    const size_t xrow = ns_row_size(ks->vec_dot_type, n);
    const size_t ys = (size_t)n_rows + (size_t)misalign;
    uint8_t *wbuf = malloc(ws * (size_t)n_rows + 64), *g = malloc(gs * (size_t)n_x + 64);
    uint8_t *xq = malloc(xrow);
    float *xf = malloc(sizeof(float) * (size_t)n * (size_t)n_x), *y = malloc(sizeof(float) * (ys * (size_t)n_x + 8));
    assert_non_null(wbuf); assert_non_null(g); assert_non_null(xq); assert_non_null(xf); assert_non_null(y);
    uint8_t *w = wbuf + misalign;
    for (int r = 0; r < n_rows; r++) make_weights(t, n, w + (size_t)r * ws, false);
    const int xbs = (int)ns_type_get(ks->vec_dot_type)->block_size;
    for (int j = 0; j < n_x; j++) fill_pattern(xf + (size_t)j * n, n, xbs, j % 4 == 3 ? 6 : 0);
    memset(g, 0x5a, gs * (size_t)n_x + 64);
    for (int j = 0; j < n_x; j++) {
        k->gemm_prep(xf + (size_t)j * n, n, g + (size_t)j * gs);
        for (size_t b = grow; b < gs; b++)
            if (g[(size_t)j * gs + b] != 0x5a) fail_msg("%s gemm_prep wrote past its row", ns_type_name(t));
    }
    for (size_t i = 0; i < ys * (size_t)n_x + 8; i++) y[i] = -12345.0f;
    k->gemm(n, w, ws, n_rows, g, gs, n_x, y, ys);
    for (int j = 0; j < n_x; j++) {
        kx->from_float(xf + (size_t)j * n, xq, n);
        for (size_t r = 0; r < ys; r++) {
            const float got = y[(size_t)j * ys + r];
            if (r >= (size_t)n_rows) {
                if (got != -12345.0f) fail_msg("%s gemm wrote outside its outputs", ns_type_name(t));
                continue;
            }
            const float want = ks->vec_dot(n, w + r * ws, xq);
            if (memcmp(&got, &want, sizeof got) != 0)
                fail_msg("%s gemm on %s n=%lld rows=%d x=%d: y[%d][%zu] = %.9g, scalar vec_dot %.9g", ns_type_name(t),
                         ns_isa_name(level), (long long)n, n_rows, n_x, j, r, (double)got, (double)want);
        }
    }
    for (size_t i = ys * (size_t)n_x; i < ys * (size_t)n_x + 8; i++) assert_true(y[i] == -12345.0f);
    free(wbuf); free(g); free(xq); free(xf); free(y);
}

static void test_gemm(void **state) {
    (void)state;
    ns_isa lv[NS_ISA_COUNT];
    const int nlv = simd_levels(lv);
    int checked = 0;
    for (size_t ti = 0; ti < N_DOT_TYPES; ti++) {
        const ns_type t = dot_types[ti];
        for (int l = 0; l < nlv; l++) {
            const ns_type_kernels *k = ns_kernels_for_isa(t, lv[l]);
            assert_true((k->gemm == NULL) == (k->gemm_prep == NULL));
            if (k->gemm == NULL) continue;
            checked++;
            /* around the kernels' chunks of 2048 elements */
            const int64_t bs = ns_type_get(t)->block_size;
            const int64_t lens[] = {bs, 3 * bs, 2048, 2048 + bs, 4096 + 3 * bs};
            for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
                const int shapes[][2] = {{1, 1}, {16, 8}, {17, 9}, {33, 13}, {7, 3}, {15, 5}, {8, 2}, {24, 7}, {5, 17}};
                for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                    check_gemm(t, lv[l], lens[li], shapes[si][0], shapes[si][1], (int)(si + li) % 4);
            }
            for (int nx = 1; nx <= 12; nx++)
                for (int nr = 1; nr <= 18; nr += 17 - nr > 2 ? 3 : 1) check_gemm(t, lv[l], 2 * bs, nr, nx, nx % 4);
        }
    }
    printf("# gemm checked on %d type x level pairs\n", checked);
}

/* ---- attention value sums ------------------------------------------------ */

static void check_axpy_n(ns_type t, ns_isa level, int64_t n, int ny) {
    const size_t ys = (size_t)n + 3; /* a gap after each output row */
    const size_t esz = t == NS_TYPE_F16 ? 2 : 4;
    float *xf = malloc(sizeof(float) * (size_t)n), *a = malloc(sizeof(float) * (size_t)ny);
    uint8_t *x = malloc(esz * (size_t)n);
    float *y0 = malloc(sizeof(float) * ys * (size_t)ny), *y1 = malloc(sizeof(float) * ys * (size_t)ny);
    assert_non_null(xf); assert_non_null(a); assert_non_null(x); assert_non_null(y0); assert_non_null(y1);
    for (int64_t i = 0; i < n; i++) xf[i] = rng_normal();
    scalar_k(t)->from_float(xf, x, n);
    for (int j = 0; j < ny; j++) a[j] = rng_uniform();
    for (size_t i = 0; i < ys * (size_t)ny; i++) y0[i] = y1[i] = rng_normal();
    scalar_k(t)->axpy_n(n, x, a, ny, y0, ys);
    ns_kernels_for_isa(t, level)->axpy_n(n, x, a, ny, y1, ys);
    for (size_t i = 0; i < ys * (size_t)ny; i++)
        if (memcmp(&y0[i], &y1[i], sizeof(float)) != 0)
            fail_msg("%s axpy_n on %s n=%lld ny=%d: y[%zu] = %.9g, scalar %.9g", ns_type_name(t), ns_isa_name(level),
                     (long long)n, ny, i, (double)y1[i], (double)y0[i]);
    free(xf); free(a); free(x); free(y0); free(y1);
}

static void test_axpy_n(void **state) {
    (void)state;
    ns_isa lv[NS_ISA_COUNT];
    const int nl = simd_levels(lv);
    const ns_type types[] = {NS_TYPE_F32, NS_TYPE_F16};
    const int64_t lens[] = {1, 7, 8, 9, 15, 16, 17, 31, 33, 64, 80, 96, 128, 256};
    const int nys[] = {1, 2, 3, 4, 5, 8, 16};
    for (size_t ti = 0; ti < sizeof types / sizeof *types; ti++) {
        assert_non_null(scalar_k(types[ti])->axpy_n);
        for (int l = 0; l < nl; l++)
            for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
                for (size_t yi = 0; yi < sizeof nys / sizeof *nys; yi++) check_axpy_n(types[ti], lv[l], lens[li], nys[yi]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_quantizers_identical),
        cmocka_unit_test(test_f16_all_bit_patterns),
        cmocka_unit_test(test_f16_decode),
        cmocka_unit_test(test_dot_exact),
        cmocka_unit_test(test_dot_random),
        cmocka_unit_test(test_dot_n),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_axpy_n),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
