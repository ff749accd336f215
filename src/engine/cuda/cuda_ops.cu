// The element-wise and reduction kernels of a decode step: RMSNorm, RoPE,
// SwiGLU, softmax, residual add, and single-query attention over an F16 KV
// cache. Each follows the CPU code in context.c operation by operation
// (__fmul_rn / __fadd_rn where the CPU rounds after every operation, so
// that nvcc does not fuse them); what cannot be bit-identical (expf, sinf,
// cosf differ by an ulp or two from glibc; sums run in another order) is
// what tests/unit/test_cuda.c's tolerances allow for.
#include "cuda_internal.cuh"

namespace {

constexpr int NORM_THREADS = 256;
constexpr int ATTN_THREADS = 128; // 4 warps
constexpr int ATTN_MAX_HEAD_DIM = 512;

// Sum / max over a block of NT threads through shared memory; every thread
// gets the result.
template <int NT> __device__ double block_sum_d(double v, double *sh) {
    v = ns_warp_sum_d(v);
    const int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads(); // sh may still be read by a previous reduction
    if (l == 0) sh[w] = v;
    __syncthreads();
    double t = 0.0;
    for (int i = 0; i < NT / 32; i++) t += sh[i];
    return t;
}

template <int NT> __device__ float block_max(float v, float *sh) {
    v = ns_warp_max(v);
    const int w = threadIdx.x / 32, l = threadIdx.x % 32;
    __syncthreads();
    if (l == 0) sh[w] = v;
    __syncthreads();
    float t = -INFINITY;
    for (int i = 0; i < NT / 32; i++) t = fmaxf(t, sh[i]);
    return t;
}

// ---- RMSNorm: one block per row -----------------------------------------------
// CPU: sum of squares in double, scale = 1 / sqrtf((float)(sum / n) + eps),
// out = x * scale * w (two roundings). sqrtf and the division are IEEE
// correctly rounded in CUDA without --use_fast_math, as in C.
__global__ void rms_norm_kernel(float *out, const float *x, const float *w, int n, float eps) {
    __shared__ double sh[NORM_THREADS / 32];
    const float *xr = x + (size_t)blockIdx.x * n;
    float *o = out + (size_t)blockIdx.x * n;
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += NORM_THREADS) s += (double)xr[i] * (double)xr[i];
    s = block_sum_d<NORM_THREADS>(s, sh);
    const float scale = 1.0f / sqrtf(__fadd_rn((float)(s / n), eps));
    for (int i = threadIdx.x; i < n; i += NORM_THREADS) o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

// ---- RoPE: block (token, head), thread i = rotated pair -------------------------
// CPU (rope_angles): theta_i = pos * theta_scale^i built by repeated
// multiplication (the reference engine's way, reproduced here so the angles
// are the same floats), times freq_scale, divided by factors[i]; cos and sin
// times attn_factor. Then (rope_head) pair (a, b) = (i, i + n_rot/2) for
// NeoX, (2i, 2i+1) otherwise.
__global__ void rope_kernel(float *x, int n_head, int head_dim, const int32_t *pos, ns_cuda_rope_params p) {
    const int t = blockIdx.x / n_head, h = blockIdx.x % n_head;
    const int half = p.n_rot / 2;
    float *v = x + ((size_t)t * n_head + h) * head_dim;
    for (int i = threadIdx.x; i < half; i += blockDim.x) {
        float tb = (float)pos[t];
        for (int k = 0; k < i; k++) tb = __fmul_rn(tb, p.theta_scale);
        float theta = __fmul_rn(tb, p.freq_scale);
        if (p.d_factors) theta = __fdiv_rn(theta, p.d_factors[i]);
        const float cs = __fmul_rn(cosf(theta), p.attn_factor), sn = __fmul_rn(sinf(theta), p.attn_factor);
        const int a = p.neox ? i : 2 * i, b = p.neox ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = __fsub_rn(__fmul_rn(x0, cs), __fmul_rn(x1, sn));
        v[b] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, cs));
    }
}

// ---- SwiGLU and add: one thread per element -------------------------------------
// CPU: silu(g) = g / (1 + expf(-g)), then silu(g) * u.
__global__ void swiglu_kernel(float *out, const float *g, const float *u, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
        const float gi = g[i];
        out[i] = __fmul_rn(__fdiv_rn(gi, __fadd_rn(1.0f, expf(-gi))), u[i]);
    }
}

__global__ void add_kernel(float *y, const float *x, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        y[i] = __fadd_rn(y[i], x[i]);
}

// ---- softmax: one block per row --------------------------------------------------
// As the CPU attention does it: e = expf(x - max), sum in double, x = e * (float)(1 / sum).
__global__ void softmax_kernel(float *x, int n) {
    __shared__ double shd[NORM_THREADS / 32];
    __shared__ float shf[NORM_THREADS / 32];
    float *r = x + (size_t)blockIdx.x * n;
    float mx = -INFINITY;
    for (int i = threadIdx.x; i < n; i += NORM_THREADS) mx = fmaxf(mx, r[i]);
    mx = block_max<NORM_THREADS>(mx, shf);
    double s = 0.0;
    for (int i = threadIdx.x; i < n; i += NORM_THREADS) {
        const float e = expf(__fsub_rn(r[i], mx));
        r[i] = e;
        s += e;
    }
    s = block_sum_d<NORM_THREADS>(s, shd);
    const float inv = (float)(1.0 / s);
    for (int i = threadIdx.x; i < n; i += NORM_THREADS) r[i] = __fmul_rn(r[i], inv);
}

// ---- attention, one query token (decode) -------------------------------------------
// One block per query head, three passes over the positions [first, n_kv):
//  1. scores: warp w takes positions first + w, + 4, ...; its lanes split
//     head_dim and the warp sums. The query is rounded to F16 first and a
//     product of two halves is exact in FP32, as in the CPU's F16 vec_dot
//     (which sums in double: only the order and width of the sum differ).
//  2. softmax over the block's row of d_scores (max, expf, sum in double),
//     the weights rounded to F16 as the CPU rounds them before the values.
//  3. thread d (< head_dim) sums w_p * V_p[d] over p in position order,
//     as the CPU's axpy does.
// Straightforward, not fast: one block per head leaves most of a large GPU
// idle at short contexts and reads K with a stride. The later version is
// flash-decoding (docs/cuda.md): split the positions over several blocks
// per head, each keeping a running max, sum and partial output (online
// softmax), then a small kernel merges the splits; K/V tiles in shared
// memory, several heads of one KV group per block. It would change the
// F16 rounding point of the weights, so its test tolerance must say so.
__global__ void __launch_bounds__(ATTN_THREADS)
    attn_decode_kernel(float *out, const float *q, const __half *k, const __half *v, size_t kv_stride, int n_head,
                       int n_head_kv, int head_dim, int first, int n_kv, float *scores, float scale) {
    __shared__ float qh[ATTN_MAX_HEAD_DIM];
    __shared__ double shd[ATTN_THREADS / 32];
    __shared__ float shf[ATTN_THREADS / 32];
    const int h = blockIdx.x;
    const int g = h / (n_head / n_head_kv);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *sc = scores + (size_t)h * n_kv;
    for (int d = threadIdx.x; d < head_dim; d += ATTN_THREADS) qh[d] = ns_round_f16(q[(size_t)h * head_dim + d]);
    __syncthreads();

    for (int p = first + warp; p < n_kv; p += ATTN_THREADS / 32) {
        const __half *kr = k + (size_t)p * kv_stride + (size_t)g * head_dim;
        float s = 0.0f;
        for (int d = lane; d < head_dim; d += 32) s += qh[d] * __half2float(kr[d]);
        s = ns_warp_sum(s);
        if (lane == 0) sc[p] = __fmul_rn(s, scale);
    }
    __syncthreads();

    float mx = -INFINITY;
    for (int p = first + threadIdx.x; p < n_kv; p += ATTN_THREADS) mx = fmaxf(mx, sc[p]);
    mx = block_max<ATTN_THREADS>(mx, shf);
    double sum = 0.0;
    for (int p = first + threadIdx.x; p < n_kv; p += ATTN_THREADS) {
        const float e = expf(__fsub_rn(sc[p], mx));
        sc[p] = e;
        sum += e;
    }
    sum = block_sum_d<ATTN_THREADS>(sum, shd);
    const float inv = (float)(1.0 / sum);
    for (int p = first + threadIdx.x; p < n_kv; p += ATTN_THREADS) sc[p] = ns_round_f16(__fmul_rn(sc[p], inv));
    __syncthreads();

    for (int d = threadIdx.x; d < head_dim; d += ATTN_THREADS) {
        const __half *vc = v + (size_t)g * head_dim + d;
        float acc = 0.0f;
        for (int p = first; p < n_kv; p++) acc = __fadd_rn(acc, __fmul_rn(sc[p], __half2float(vc[(size_t)p * kv_stride])));
        out[(size_t)h * head_dim + d] = acc;
    }
}

unsigned grid_for(int64_t n, int threads) {
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 65535 ? (b > 0 ? b : 1) : 65535); // grid-stride loops cover the rest
}

} // namespace

extern "C" {

int ns_cuda_rms_norm(ns_cuda_ctx *c, float *d_out, const float *d_x, const float *d_w, int n, int n_rows, float eps,
                     char *err, size_t errlen) {
    if (n <= 0 || n_rows < 0) return ns_cuda_failf(err, errlen, "rms_norm: bad shape %d x %d", n_rows, n);
    if (n_rows == 0) return 0;
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    rms_norm_kernel<<<n_rows, NORM_THREADS, 0, c->stream>>>(d_out, d_x, d_w, n, eps);
    return ns_cuda_launched(err, errlen, "rms_norm");
}

int ns_cuda_rope(ns_cuda_ctx *c, float *d_x, int n_tok, int n_head, int head_dim, const int32_t *d_pos,
                 const ns_cuda_rope_params *p, char *err, size_t errlen) {
    if (!p || p->n_rot <= 0 || p->n_rot % 2 || p->n_rot > head_dim || n_head <= 0 || n_tok < 0)
        return ns_cuda_failf(err, errlen, "rope: bad shape (n_rot %d, head_dim %d, n_head %d)", p ? p->n_rot : 0,
                             head_dim, n_head);
    if (n_tok == 0) return 0;
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    const int half = p->n_rot / 2, threads = half < 128 ? ((half + 31) / 32) * 32 : 128;
    rope_kernel<<<(unsigned)(n_tok * n_head), threads, 0, c->stream>>>(d_x, n_head, head_dim, d_pos, *p);
    return ns_cuda_launched(err, errlen, "rope");
}

int ns_cuda_swiglu(ns_cuda_ctx *c, float *d_out, const float *d_gate, const float *d_up, int64_t n, char *err,
                   size_t errlen) {
    if (n <= 0) return n == 0 ? 0 : ns_cuda_failf(err, errlen, "swiglu: bad length");
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    swiglu_kernel<<<grid_for(n, 256), 256, 0, c->stream>>>(d_out, d_gate, d_up, n);
    return ns_cuda_launched(err, errlen, "swiglu");
}

int ns_cuda_softmax(ns_cuda_ctx *c, float *d_x, int n, int n_rows, char *err, size_t errlen) {
    if (n <= 0 || n_rows < 0) return ns_cuda_failf(err, errlen, "softmax: bad shape %d x %d", n_rows, n);
    if (n_rows == 0) return 0;
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    softmax_kernel<<<n_rows, NORM_THREADS, 0, c->stream>>>(d_x, n);
    return ns_cuda_launched(err, errlen, "softmax");
}

int ns_cuda_add(ns_cuda_ctx *c, float *d_y, const float *d_x, int64_t n, char *err, size_t errlen) {
    if (n <= 0) return n == 0 ? 0 : ns_cuda_failf(err, errlen, "add: bad length");
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    add_kernel<<<grid_for(n, 256), 256, 0, c->stream>>>(d_y, d_x, n);
    return ns_cuda_launched(err, errlen, "add");
}

int ns_cuda_attn_decode(ns_cuda_ctx *c, float *d_out, const float *d_q, const uint16_t *d_k, const uint16_t *d_v,
                        size_t kv_stride, int n_head, int n_head_kv, int head_dim, int first, int n_kv,
                        float *d_scores, char *err, size_t errlen) {
    if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv || head_dim <= 0 || head_dim > ATTN_MAX_HEAD_DIM)
        return ns_cuda_failf(err, errlen, "attn_decode: bad heads (%d query, %d KV, head_dim %d; at most %d)", n_head,
                             n_head_kv, head_dim, ATTN_MAX_HEAD_DIM);
    if (first < 0 || n_kv <= first) return ns_cuda_failf(err, errlen, "attn_decode: empty range [%d, %d)", first, n_kv);
    if (kv_stride < (size_t)n_head_kv * head_dim) return ns_cuda_failf(err, errlen, "attn_decode: kv_stride too small");
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    // 1 / sqrtf(head_dim) on the host, as the CPU computes it
    const float scale = 1.0f / sqrtf((float)head_dim);
    attn_decode_kernel<<<n_head, ATTN_THREADS, 0, c->stream>>>(d_out, d_q, (const __half *)d_k, (const __half *)d_v,
                                                                kv_stride, n_head, n_head_kv, head_dim, first, n_kv,
                                                                d_scores, scale);
    return ns_cuda_launched(err, errlen, "attn_decode");
}

} // extern "C"
