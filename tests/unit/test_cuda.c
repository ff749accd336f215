/* The CUDA backend (src/engine/cuda) against the engine's CPU reference.
 *
 * Always: the backend answers "no device" cleanly where there is none (no
 * crash, a reason string, every call an error with a message), and the
 * CPU kernels work as before after it was asked.
 *
 * With a CUDA device: every kernel, every weight type, random inputs,
 * compared with the CPU code it replaces: quant.c's scalar to_float for
 * the block decoders, context.c's rms_norm, rope, silu, softmax and F16
 * attention (reproduced here operation by operation). Without one it
 * prints "SKIP: no CUDA device (reason)" and exits 77 after the first
 * group. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cuda/cuda_backend.h"
#include "engine/quant.h"
#include "testutil.h"

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(void) { return (float)((rng_u64() >> 40) * (1.0 / 16777216.0)); }
static float rng_normal(void) {
    double u1 = ((rng_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (rng_u64() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
static void fill_normal(float *x, size_t n, float sd) {
    for (size_t i = 0; i < n; i++) x[i] = rng_normal() * sd;
}

/* ---- always ------------------------------------------------------------ */

static void test_no_device_is_clean(void **state) {
    (void)state;
    const char *info = ns_cuda_build_info();
    assert_non_null(info);
    assert_true(strncmp(info, ns_cuda_built() ? "built with CUDA " : "built without CUDA", 15) == 0);
    char why[256] = "x";
    const int n = ns_cuda_device_count(why, sizeof why);
    assert_true(n >= 0);
    if (n == 0) assert_true(why[0] != 0); /* a reason, never an empty string */
    char why2[256];
    assert_int_equal(ns_cuda_available(why2, sizeof why2), n);
    assert_int_equal(ns_cuda_available(NULL, 0), n); /* cached, and NULL is fine */
    if (!ns_cuda_built()) {
        assert_string_equal(why, "not built with CUDA");
        for (int t = 0; t < NS_TYPE_COUNT; t++) assert_false(ns_cuda_matvec_supports((ns_type)t));
    }
    if (n == 0) {
        char err[256] = "";
        assert_null(ns_cuda_ctx_create(0, err, sizeof err));
        assert_true(err[0] != 0);
        ns_cuda_device_info di;
        err[0] = 0;
        assert_int_equal(ns_cuda_device_info_get(0, &di, err, sizeof err), -1);
        assert_true(err[0] != 0);
    }
    /* a NULL context is an error with a message, not a crash */
    char err[256] = "";
    assert_null(ns_cuda_alloc(NULL, 16, err, sizeof err));
    assert_true(err[0] != 0);
    err[0] = 0;
    assert_int_equal(ns_cuda_add(NULL, NULL, NULL, 4, err, sizeof err), -1);
    assert_true(err[0] != 0);
    ns_cuda_ctx_free(NULL);
    ns_cuda_free(NULL, NULL);
    printf("# %s; %d device%s%s%s\n", info, n, n == 1 ? "" : "s", n ? "" : ": ", n ? "" : why);
}

/* The CPU kernels after the backend was probed: quantize, decode and dot a
 * row as before (the probe must not have changed the CPU's state). */
static void test_cpu_path_unaffected(void **state) {
    (void)state;
    (void)ns_cuda_available(NULL, 0);
    enum { N = 512 };
    float x[N], w[N], back[N];
    fill_normal(x, N, 1.0f);
    fill_normal(w, N, 1.0f);
    const ns_type_kernels *k = ns_kernels(NS_TYPE_Q8_0);
    assert_non_null(k);
    uint8_t qw[N / 32 * 34], qx[N / 32 * 34];
    k->from_float(w, qw, N);
    k->from_float(x, qx, N);
    k->to_float(qw, back, N);
    double ref = 0.0, mag = 0.0;
    float xb[N];
    k->to_float(qx, xb, N);
    for (int i = 0; i < N; i++) {
        assert_true(fabsf(back[i] - w[i]) <= fabsf(w[i]) * 0.01f + 0.05f); /* Q8_0 round trip */
        ref += (double)back[i] * xb[i];
        mag += fabs((double)back[i] * xb[i]);
    }
    const float got = k->vec_dot(N, qw, qx);
    assert_true(fabs(got - ref) <= 1e-5 * mag);
}

/* ---- with a device ------------------------------------------------------ */

static ns_cuda_ctx *ctx;
static char err[512];

#define CU_OK(call)                                                \
    do {                                                           \
        err[0] = 0;                                                \
        if ((call) != 0) fail_msg("%s: %s", #call, err);           \
    } while (0)

static void *dev_copy(const void *host, size_t bytes) {
    void *d = ns_cuda_alloc(ctx, bytes, err, sizeof err);
    if (!d) fail_msg("alloc: %s", err);
    if (host) CU_OK(ns_cuda_upload(ctx, d, host, bytes, err, sizeof err));
    return d;
}

static void fetch(void *host, const void *d, size_t bytes) { CU_OK(ns_cuda_download(ctx, host, d, bytes, err, sizeof err)); }

/* Sane f16 scale fields for random K-quant blocks: random bytes elsewhere
 * (every bit pattern of the quants and packed scales is valid), but a
 * random f16 could be Inf or NaN. */
static void put_f16(uint8_t *p, float v) {
    const uint16_t h = ns_fp32_to_fp16(v);
    p[0] = (uint8_t)(h & 0xff);
    p[1] = (uint8_t)(h >> 8);
}

static void random_kquant_block(ns_type t, uint8_t *b) {
    const ns_type_info *ti = ns_type_get(t);
    for (uint32_t i = 0; i < ti->type_size; i++) b[i] = (uint8_t)rng_u64();
    const float d = (rng_uniform() * 2.0f - 1.0f) * 0.02f, dmin = rng_uniform() * 0.02f;
    switch (t) {
    case NS_TYPE_Q2_K: put_f16(b + 80, d); put_f16(b + 82, dmin); break;
    case NS_TYPE_Q3_K: put_f16(b + 108, d); break;
    case NS_TYPE_Q4_K:
    case NS_TYPE_Q5_K: put_f16(b, d); put_f16(b + 2, dmin); break;
    case NS_TYPE_Q6_K: put_f16(b + 208, d); break;
    default: fail_msg("not a K-quant");
    }
}

static void check_matvec(ns_type t, int64_t n, int64_t rows) {
    const ns_type_kernels *k = ns_kernels_for_isa(t, NS_ISA_SCALAR);
    assert_non_null(k);
    const ns_type_info *ti = ns_type_get(t);
    const size_t rb = ns_row_size(t, n);
    uint8_t *w = malloc(rb * (size_t)rows);
    float *x = malloc(sizeof(float) * (size_t)n), *row = malloc(sizeof(float) * (size_t)n);
    float *y = malloc(sizeof(float) * (size_t)rows);
    assert_true(w && x && row && y);
    fill_normal(x, (size_t)n, 1.0f);
    for (int64_t r = 0; r < rows; r++) {
        uint8_t *wr = w + (size_t)r * rb;
        if (k->from_float) {
            fill_normal(row, (size_t)n, 0.05f);
            k->from_float(row, wr, n);
        } else {
            for (int64_t b = 0; b < n / ti->block_size; b++) random_kquant_block(t, wr + (size_t)b * ti->type_size);
        }
    }
    void *dw = dev_copy(w, rb * (size_t)rows);
    float *dx = dev_copy(x, sizeof(float) * (size_t)n), *dy = dev_copy(NULL, sizeof(float) * (size_t)rows);
    CU_OK(ns_cuda_matvec(ctx, t, dw, rb, n, rows, dx, dy, err, sizeof err));
    fetch(y, dy, sizeof(float) * (size_t)rows);
    /* The reference: quant.c's scalar decoder, then the sum in double. The
     * GPU decodes to the same floats; its FP32 sum has rounding error at
     * most k * 2^-24 * S to first order (S = sum |w_i x_i|), k the depth
     * of its sum: 32 FMAs in a chunk, n/1024 chunk sums per lane, 5 warp
     * levels. Twice that is the tolerance: e.g. 4.6e-6 S for n = 2048. */
    const double depth = 32.0 + (double)(n / 1024 + 1) + 5.0;
    for (int64_t r = 0; r < rows; r++) {
        k->to_float(w + (size_t)r * rb, row, n);
        double ref = 0.0, s = 0.0;
        for (int64_t i = 0; i < n; i++) {
            ref += (double)row[i] * x[i];
            s += fabs((double)row[i] * x[i]);
        }
        const double tol = 2.0 * depth * ldexp(1.0, -24) * s + 1e-30;
        if (!(fabs(y[r] - ref) <= tol))
            fail_msg("matvec %s n=%lld row %lld: GPU %.9g, CPU %.9g, |diff| %.3g > tol %.3g", ti->name, (long long)n,
                     (long long)r, y[r], ref, fabs(y[r] - ref), tol);
    }
    ns_cuda_free(ctx, dw);
    ns_cuda_free(ctx, dx);
    ns_cuda_free(ctx, dy);
    free(w);
    free(x);
    free(row);
    free(y);
}

static const ns_type matvec_types[] = {NS_TYPE_F32,  NS_TYPE_F16,  NS_TYPE_Q8_0, NS_TYPE_Q4_0, NS_TYPE_Q4_1,
                                       NS_TYPE_Q5_0, NS_TYPE_Q5_1, NS_TYPE_Q4_K, NS_TYPE_Q5_K, NS_TYPE_Q6_K,
                                       NS_TYPE_Q3_K, NS_TYPE_Q2_K};

static void test_matvec(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof matvec_types / sizeof matvec_types[0]; i++) {
        const ns_type t = matvec_types[i];
        assert_true(ns_cuda_matvec_supports(t));
        check_matvec(t, 256, 5);    /* one super-block; rows not a multiple of 4 */
        check_matvec(t, 2048, 67);
        check_matvec(t, 4096 + 256, 33); /* chunks not a multiple of the warp */
    }
    /* a type it does not do, and a row that is not whole blocks: errors */
    assert_false(ns_cuda_matvec_supports(NS_TYPE_IQ2_XXS));
    err[0] = 0;
    assert_int_equal(ns_cuda_matvec(ctx, NS_TYPE_Q4_0, NULL, 18, 40, 1, NULL, NULL, err, sizeof err), -1);
    assert_true(err[0] != 0);
}

/* ---- element-wise ops: the CPU code of context.c, copied --------------- */

static void cpu_rms_norm(float *out, const float *x, const float *w, int n, float eps) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

static void test_rms_norm(void **state) {
    (void)state;
    enum { N = 4096, R = 3 };
    static float x[N * R], w[N], out[N * R], ref[N];
    fill_normal(x, N * R, 2.0f);
    fill_normal(w, N, 1.0f);
    float *dx = dev_copy(x, sizeof x), *dw = dev_copy(w, sizeof w), *dout = dev_copy(NULL, sizeof out);
    CU_OK(ns_cuda_rms_norm(ctx, dout, dx, dw, N, R, 1e-5f, err, sizeof err));
    fetch(out, dout, sizeof out);
    /* Same operations, same roundings; the double sum runs in another
     * order, which can move (float)(sum / n) by one ulp: 4 ulp covers it. */
    for (int r = 0; r < R; r++) {
        cpu_rms_norm(ref, x + r * N, w, N, 1e-5f);
        for (int i = 0; i < N; i++) assert_true(fabsf(out[r * N + i] - ref[i]) <= 4 * FLT_EPSILON * fabsf(ref[i]));
    }
    ns_cuda_free(ctx, dx);
    ns_cuda_free(ctx, dw);
    ns_cuda_free(ctx, dout);
}

static void cpu_rope(float *h, int pos, int n_rot, bool neox, float base, float freq_scale, float attn_factor,
                     const float *factors) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    float theta_base = (float)pos;
    const int half = n_rot / 2;
    for (int i = 0; i < half; i++) {
        float theta = theta_base * freq_scale;
        if (factors) theta /= factors[i];
        const float c = cosf(theta) * attn_factor, s = sinf(theta) * attn_factor;
        theta_base *= theta_scale;
        const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
        const float x0 = h[a], x1 = h[b];
        h[a] = x0 * c - x1 * s;
        h[b] = x0 * s + x1 * c;
    }
}

static void test_rope(void **state) {
    (void)state;
    enum { T = 3, H = 4, HD = 64 };
    const int32_t pos[T] = {0, 17, 4095};
    float factors[HD / 2];
    for (int i = 0; i < HD / 2; i++) factors[i] = 1.0f + 3.0f * rng_uniform();
    int32_t *dpos = dev_copy(pos, sizeof pos);
    float *dfac = dev_copy(factors, sizeof factors);
    for (int variant = 0; variant < 8; variant++) {
        const bool neox = variant & 1, with_factors = variant & 2;
        const int n_rot = (variant & 4) ? HD / 2 : HD; /* partial rotation leaves the rest alone */
        const float base = neox ? 1e6f : 10000.0f, freq_scale = with_factors ? 0.25f : 1.0f;
        const float attn_factor = with_factors ? 1.2f : 1.0f;
        static float x[T * H * HD], out[T * H * HD], ref[T * H * HD];
        fill_normal(x, T * H * HD, 1.0f);
        memcpy(ref, x, sizeof x);
        float *dx = dev_copy(x, sizeof x);
        ns_cuda_rope_params p = {n_rot, neox, powf(base, -2.0f / (float)n_rot), freq_scale, attn_factor,
                                 with_factors ? dfac : NULL};
        CU_OK(ns_cuda_rope(ctx, dx, T, H, HD, dpos, &p, err, sizeof err));
        fetch(out, dx, sizeof out);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < H; h++)
                cpu_rope(ref + (t * H + h) * HD, pos[t], n_rot, neox, base, freq_scale, attn_factor,
                         with_factors ? factors : NULL);
        /* The angles are the same floats; CUDA's cosf/sinf are within 2 ulp
         * (glibc's within 1), so each output moves by at most a few ulp of
         * (|x0| + |x1|) * attn_factor: 8 ulp of the largest input of the head. */
        for (int i = 0; i < T * H * HD; i++) {
            const float *hx = x + (i / HD) * HD;
            float amax = 0.0f;
            for (int j = 0; j < HD; j++) amax = fmaxf(amax, fabsf(hx[j]));
            if (!(fabsf(out[i] - ref[i]) <= 8 * FLT_EPSILON * 2.0f * amax * attn_factor))
                fail_msg("rope variant %d element %d: GPU %.9g CPU %.9g", variant, i, out[i], ref[i]);
        }
        ns_cuda_free(ctx, dx);
    }
    ns_cuda_free(ctx, dpos);
    ns_cuda_free(ctx, dfac);
}

static void test_swiglu_add(void **state) {
    (void)state;
    enum { N = 100003 };
    static float g[N], u[N], out[N], y[N], y0[N];
    for (int i = 0; i < N; i++) g[i] = (rng_uniform() * 2.0f - 1.0f) * 12.0f;
    fill_normal(u, N, 1.0f);
    fill_normal(y0, N, 1.0f);
    float *dg = dev_copy(g, sizeof g), *du = dev_copy(u, sizeof u), *dout = dev_copy(NULL, sizeof out);
    float *dy = dev_copy(y0, sizeof y0);
    CU_OK(ns_cuda_swiglu(ctx, dout, dg, du, N, err, sizeof err));
    CU_OK(ns_cuda_add(ctx, dy, du, N, err, sizeof err));
    fetch(out, dout, sizeof out);
    fetch(y, dy, sizeof y);
    for (int i = 0; i < N; i++) {
        const float silu = g[i] / (1.0f + expf(-g[i]));
        const float ref = silu * u[i];
        /* CUDA's expf is within 2 ulp, glibc's within 1; the division and
         * product round the same way: 8 ulp of the result. */
        if (!(fabsf(out[i] - ref) <= 8 * FLT_EPSILON * fabsf(ref) + 1e-30f))
            fail_msg("swiglu %d: g=%g GPU %.9g CPU %.9g", i, g[i], out[i], ref);
        assert_true(y[i] == y0[i] + u[i]); /* one IEEE addition: exact */
    }
    ns_cuda_free(ctx, dg);
    ns_cuda_free(ctx, du);
    ns_cuda_free(ctx, dout);
    ns_cuda_free(ctx, dy);
}

static void test_softmax(void **state) {
    (void)state;
    enum { N = 1000, R = 3 };
    static float x[N * R], out[N * R];
    fill_normal(x, N * R, 5.0f);
    float *dx = dev_copy(x, sizeof x);
    CU_OK(ns_cuda_softmax(ctx, dx, N, R, err, sizeof err));
    fetch(out, dx, sizeof out);
    for (int r = 0; r < R; r++) {
        const float *xr = x + r * N;
        float mx = -INFINITY;
        for (int i = 0; i < N; i++) mx = fmaxf(mx, xr[i]);
        double sum = 0.0;
        float e[N];
        for (int i = 0; i < N; i++) sum += (e[i] = expf(xr[i] - mx));
        const float inv = (float)(1.0 / sum);
        /* expf within 2 ulp on the GPU, 1 on the CPU; the sum of those
         * moves inv by as much: 8 ulp of each weight. */
        for (int i = 0; i < N; i++) {
            const float ref = e[i] * inv;
            assert_true(fabsf(out[r * N + i] - ref) <= 8 * FLT_EPSILON * ref + 1e-37f);
        }
    }
    ns_cuda_free(ctx, dx);
}

/* context.c's attn_task for one query token and an F16 cache, with the
 * scalar F16 kernels (q and the weights rounded to F16, F16 dot products
 * summed in double, axpy in position order). */
static void cpu_attn(float *out, const float *q, const uint16_t *k, const uint16_t *v, size_t stride, int n_head,
                     int n_head_kv, int hd, int first, int n_kv, float *w_out) {
    const ns_type_kernels *kk = ns_kernels_for_isa(NS_TYPE_F16, NS_ISA_SCALAR);
    const float scale = 1.0f / sqrtf((float)hd);
    uint16_t *qh = malloc(sizeof(uint16_t) * (size_t)hd);
    float *sc = malloc(sizeof(float) * (size_t)n_kv);
    uint16_t *tmp = malloc(sizeof(uint16_t) * (size_t)n_kv);
    for (int h = 0; h < n_head; h++) {
        const int g = h / (n_head / n_head_kv);
        kk->from_float(q + (size_t)h * hd, qh, hd);
        float mx = -INFINITY;
        for (int p = first; p < n_kv; p++) {
            sc[p] = kk->vec_dot(hd, k + (size_t)p * stride + (size_t)g * hd, qh) * scale;
            if (sc[p] > mx) mx = sc[p];
        }
        double sum = 0.0;
        for (int p = first; p < n_kv; p++) {
            sc[p] = expf(sc[p] - mx);
            sum += sc[p];
        }
        const float inv = (float)(1.0 / sum);
        for (int p = first; p < n_kv; p++) sc[p] *= inv;
        kk->from_float(sc + first, tmp, n_kv - first);
        kk->to_float(tmp, sc + first, n_kv - first);
        float *o = out + (size_t)h * hd;
        memset(o, 0, sizeof(float) * (size_t)hd);
        for (int p = first; p < n_kv; p++) kk->axpy_n(hd, v + (size_t)p * stride + (size_t)g * hd, &sc[p], 1, o, (size_t)hd);
        memcpy(w_out + (size_t)h * n_kv, sc, sizeof(float) * (size_t)n_kv);
    }
    free(qh);
    free(sc);
    free(tmp);
}

static void check_attn(int n_head, int n_head_kv, int hd, int first, int n_kv) {
    const size_t stride = (size_t)n_head_kv * hd;
    float *q = malloc(sizeof(float) * (size_t)n_head * hd);
    uint16_t *k = malloc(sizeof(uint16_t) * stride * (size_t)n_kv), *v = malloc(sizeof(uint16_t) * stride * (size_t)n_kv);
    float *out = malloc(sizeof(float) * (size_t)n_head * hd), *ref = malloc(sizeof(float) * (size_t)n_head * hd);
    float *w = malloc(sizeof(float) * (size_t)n_head * n_kv);
    assert_true(q && k && v && out && ref && w);
    fill_normal(q, (size_t)n_head * hd, 1.0f);
    for (size_t i = 0; i < stride * (size_t)n_kv; i++) {
        k[i] = ns_fp32_to_fp16(rng_normal());
        v[i] = ns_fp32_to_fp16(rng_normal());
    }
    float *dq = dev_copy(q, sizeof(float) * (size_t)n_head * hd);
    uint16_t *dk = dev_copy(k, sizeof(uint16_t) * stride * n_kv), *dv = dev_copy(v, sizeof(uint16_t) * stride * n_kv);
    float *dout = dev_copy(NULL, sizeof(float) * (size_t)n_head * hd);
    float *dsc = dev_copy(NULL, sizeof(float) * (size_t)n_head * n_kv);
    CU_OK(ns_cuda_attn_decode(ctx, dout, dq, dk, dv, stride, n_head, n_head_kv, hd, first, n_kv, dsc, err, sizeof err));
    fetch(out, dout, sizeof(float) * (size_t)n_head * hd);
    cpu_attn(ref, q, k, v, stride, n_head, n_head_kv, hd, first, n_kv, w);
    /* The scores differ by the FP32-vs-double sum of hd exact products
     * (~1e-6 relative); that can move a weight across an F16 rounding
     * boundary, one F16 ulp, at most 2^-10 of the weight. So output d may
     * differ by 2^-10 * sum_p w_p |V_p[d]|, plus the sums' own rounding:
     * the tolerance is twice that. */
    for (int h = 0; h < n_head; h++) {
        const int g = h / (n_head / n_head_kv);
        for (int d = 0; d < hd; d++) {
            double mag = 0.0;
            for (int p = first; p < n_kv; p++)
                mag += w[(size_t)h * n_kv + p] * fabsf(ns_fp16_to_fp32(v[(size_t)p * stride + (size_t)g * hd + d]));
            const double tol = 2.0 * ldexp(1.0, -10) * mag + 1e-6;
            const float a = out[(size_t)h * hd + d], b = ref[(size_t)h * hd + d];
            if (!(fabs(a - b) <= tol))
                fail_msg("attn head %d dim %d (hd %d, [%d, %d)): GPU %.9g CPU %.9g tol %.3g", h, d, hd, first, n_kv, a,
                         b, tol);
        }
    }
    ns_cuda_free(ctx, dq);
    ns_cuda_free(ctx, dk);
    ns_cuda_free(ctx, dv);
    ns_cuda_free(ctx, dout);
    ns_cuda_free(ctx, dsc);
    free(q);
    free(k);
    free(v);
    free(out);
    free(ref);
    free(w);
}

static void test_attn_decode(void **state) {
    (void)state;
    check_attn(8, 2, 64, 0, 300);   /* GQA, 4 query heads per KV head */
    check_attn(8, 8, 128, 0, 1);    /* the first token: one position */
    check_attn(4, 1, 128, 100, 777); /* a sliding window starting at 100 */
    check_attn(8, 4, 8, 0, 64);     /* stories260K's shape */
}

int main(void) {
    const struct CMUnitTest always[] = {
        cmocka_unit_test(test_no_device_is_clean),
        cmocka_unit_test(test_cpu_path_unaffected),
    };
    int rc = cmocka_run_group_tests_name("cuda: without a device", always, NULL, NULL);
    if (rc != 0) return rc;

    char why[256];
    if (ns_cuda_device_count(why, sizeof why) < 1) {
        printf("SKIP: no CUDA device (%s)\n", why);
        return NS_TEST_SKIP;
    }
    ns_cuda_device_info di;
    if (ns_cuda_device_info_get(0, &di, err, sizeof err) == 0)
        printf("# device 0: %s, compute %d.%d, %d SMs, %zu MiB (%zu free)\n", di.name, di.cc_major, di.cc_minor,
               di.sm_count, di.total_mem >> 20, di.free_mem >> 20);
    ctx = ns_cuda_ctx_create(0, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "cannot create a CUDA context: %s\n", err);
        return 1;
    }
    const struct CMUnitTest gpu[] = {
        cmocka_unit_test(test_matvec),      cmocka_unit_test(test_rms_norm), cmocka_unit_test(test_rope),
        cmocka_unit_test(test_swiglu_add),  cmocka_unit_test(test_softmax),  cmocka_unit_test(test_attn_decode),
    };
    rc = cmocka_run_group_tests_name("cuda: kernels against the CPU", gpu, NULL, NULL);
    ns_cuda_ctx_free(ctx);
    return rc;
}
