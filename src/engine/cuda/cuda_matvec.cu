// Mat-vec y = W·x for the engine's weight types, x in FP32.
//
// Shape of the kernel: one warp per weight row (4 rows per block); lane l
// takes the row's 32-element chunks l, l + 32, ..., decodes each chunk to
// floats exactly as quant.c's to_float does, and multiplies it with x; the
// warp then sums its lanes. Every type is reduced to one function,
// chunk<T>(row, c, x): the dot product of elements [32c, 32c + 32) with x.
//
// Exactness: the decoded values are bit-identical to quant.c's (products
// and sums are written with __fmul_rn / __fadd_rn, which nvcc never fuses
// into an FMA, because the CPU decoders round after each operation). Only
// the order of the FP32 sum differs from a sequential one.
//
// Not done yet (docs/cuda.md): quantizing x to Q8_1 once and using integer
// dot products (dp4a), as llama.cpp's mmvq does; wider, coalesced loads;
// several activation rows per weight pass (prompt processing, which should
// rather use cuBLAS / tensor cores on dequantized tiles).
#include "cuda_internal.cuh"

namespace {

constexpr int CHUNK = 32;
constexpr int ROWS_PER_BLOCK = 4;

// ---- F32 / F16: plain arrays ------------------------------------------------

template <ns_type T> struct chunk;

template <> struct chunk<NS_TYPE_F32> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *p = row + (size_t)c * CHUNK * 4;
        float s = 0.0f;
        for (int i = 0; i < CHUNK; i++) s += ns_ldf(p + 4 * i) * x[i];
        return s;
    }
};

template <> struct chunk<NS_TYPE_F16> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *p = row + (size_t)c * CHUNK * 2;
        float s = 0.0f;
        for (int i = 0; i < CHUNK; i++) s += ns_ldh(p + 2 * i) * x[i];
        return s;
    }
};

// ---- 32-element blocks: chunk c is block c ----------------------------------

// Q8_0, 34 bytes: d (f16) | qs[32] (int8).  x_j = qs[j] * d
template <> struct chunk<NS_TYPE_Q8_0> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)c * 34;
        const float d = ns_ldh(b);
        float s = 0.0f;
        for (int j = 0; j < 32; j++) s += __fmul_rn((float)(int8_t)b[2 + j], d) * x[j];
        return s;
    }
};

// Q4_0, 18 bytes: d (f16) | qs[16]. Byte j: low nibble is element j, high
// nibble element j + 16.  x = (q - 8) * d
template <> struct chunk<NS_TYPE_Q4_0> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)c * 18;
        const float d = ns_ldh(b);
        const uint8_t *qs = b + 2;
        float s = 0.0f;
        for (int j = 0; j < 16; j++) {
            s += __fmul_rn((float)((qs[j] & 0x0F) - 8), d) * x[j];
            s += __fmul_rn((float)((qs[j] >> 4) - 8), d) * x[j + 16];
        }
        return s;
    }
};

// Q4_1, 20 bytes: d (f16) | m (f16) | qs[16], nibbles as Q4_0.  x = q * d + m
template <> struct chunk<NS_TYPE_Q4_1> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)c * 20;
        const float d = ns_ldh(b), m = ns_ldh(b + 2);
        const uint8_t *qs = b + 4;
        float s = 0.0f;
        for (int j = 0; j < 16; j++) {
            s += __fadd_rn(__fmul_rn((float)(qs[j] & 0x0F), d), m) * x[j];
            s += __fadd_rn(__fmul_rn((float)(qs[j] >> 4), d), m) * x[j + 16];
        }
        return s;
    }
};

// Q5_0, 22 bytes: d (f16) | qh (u32 LE) | qs[16]. Nibbles as Q4_0; bit j of
// qh is bit 4 of element j (j < 32).  x = (q - 16) * d
template <> struct chunk<NS_TYPE_Q5_0> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)c * 22;
        const float d = ns_ldh(b);
        const uint32_t qh = ns_ld32(b + 2);
        const uint8_t *qs = b + 6;
        float s = 0.0f;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4, h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            s += __fmul_rn((float)(((qs[j] & 0x0F) | h0) - 16), d) * x[j];
            s += __fmul_rn((float)(((qs[j] >> 4) | h1) - 16), d) * x[j + 16];
        }
        return s;
    }
};

// Q5_1, 24 bytes: d (f16) | m (f16) | qh (u32 LE) | qs[16], bits as Q5_0.
// x = q * d + m
template <> struct chunk<NS_TYPE_Q5_1> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)c * 24;
        const float d = ns_ldh(b), m = ns_ldh(b + 2);
        const uint32_t qh = ns_ld32(b + 4);
        const uint8_t *qs = b + 8;
        float s = 0.0f;
        for (int j = 0; j < 16; j++) {
            const int h0 = (int)((qh >> j) & 1u) << 4, h1 = (int)((qh >> (j + 16)) & 1u) << 4;
            s += __fadd_rn(__fmul_rn((float)((qs[j] & 0x0F) | h0), d), m) * x[j];
            s += __fadd_rn(__fmul_rn((float)((qs[j] >> 4) | h1), d), m) * x[j + 16];
        }
        return s;
    }
};

// ---- K-quants: 256-element super-blocks, chunk c is sub-chunk c % 8 of
// super-block c / 8 ------------------------------------------------------------

// The 6-bit scale and min j (0..7) of Q4_K / Q5_K, packed in 12 bytes:
// j < 4: sc = s[j] & 63, mn = s[j+4] & 63; j >= 4: sc = (s[j+4] & 15) |
// (s[j-4] >> 6) << 4, mn = (s[j+4] >> 4) | (s[j] >> 6) << 4.
__device__ __forceinline__ void k4_scale_min(const uint8_t *s, int j, int *sc, int *mn) {
    if (j < 4) {
        *sc = s[j] & 63;
        *mn = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4);
        *mn = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
    }
}

// Q4_K, 144 bytes: d (f16) | dmin (f16) | scales[12] | qs[128]. Each 64
// elements use 32 bytes of qs: elements 0..31 the low nibbles (scale/min
// 2i), 32..63 the high nibbles (scale/min 2i+1). x = d*sc * q - dmin*mn
template <> struct chunk<NS_TYPE_Q4_K> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)(c / 8) * 144;
        const int j = (int)(c % 8);
        int sc, mn;
        k4_scale_min(b + 4, j, &sc, &mn);
        const float d1 = __fmul_rn(ns_ldh(b), (float)sc), m1 = __fmul_rn(ns_ldh(b + 2), (float)mn);
        const uint8_t *q = b + 16 + 32 * (j / 2);
        const int shift = 4 * (j & 1);
        float s = 0.0f;
        for (int l = 0; l < 32; l++) s += __fsub_rn(__fmul_rn(d1, (float)((q[l] >> shift) & 0x0F)), m1) * x[l];
        return s;
    }
};

// Q5_K, 176 bytes: d | dmin | scales[12] | qh[32] | qs[128]. Nibbles and
// scales as Q4_K; for the 64 elements i (0..3), bit 2i of qh[l] is bit 4 of
// element 64i + l and bit 2i+1 that of element 64i + 32 + l.
template <> struct chunk<NS_TYPE_Q5_K> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)(c / 8) * 176;
        const int j = (int)(c % 8);
        int sc, mn;
        k4_scale_min(b + 4, j, &sc, &mn);
        const float d1 = __fmul_rn(ns_ldh(b), (float)sc), m1 = __fmul_rn(ns_ldh(b + 2), (float)mn);
        const uint8_t *qh = b + 16;
        const uint8_t *q = b + 48 + 32 * (j / 2);
        const int shift = 4 * (j & 1);
        const unsigned u = 1u << j; // = 1 << (2*(j/2) + (j&1))
        float s = 0.0f;
        for (int l = 0; l < 32; l++) {
            const int v = ((q[l] >> shift) & 0x0F) + ((qh[l] & u) ? 16 : 0);
            s += __fsub_rn(__fmul_rn(d1, (float)v), m1) * x[l];
        }
        return s;
    }
};

// Q6_K, 210 bytes: ql[128] | qh[64] | scales[16] (int8) | d (f16). Each half
// of 128 elements uses 64 bytes of ql and 32 of qh; with l < 32 and
// r = 0..3, element 32r + l of the half has the low nibble (r < 2) or high
// nibble (r >= 2) of ql[l + 32*(r&1)] and bits 2r..2r+1 of qh[l] as its top
// 2 bits; scale scales[8*half + (32r + l)/16]. x = d * sc * (q - 32)
template <> struct chunk<NS_TYPE_Q6_K> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)(c / 8) * 210;
        const int j = (int)(c % 8), h = j / 4, r = j % 4;
        const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
        const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
        const float d = ns_ldh(b + 208);
        const float d0 = __fmul_rn(d, (float)sc[2 * r]), d1 = __fmul_rn(d, (float)sc[2 * r + 1]);
        float s = 0.0f;
        for (int l = 0; l < 32; l++) {
            const int lo = ql[l + 32 * (r & 1)];
            const int nib = (r & 2) ? (lo >> 4) : (lo & 0x0F);
            const int v = (nib | (((qh[l] >> (2 * r)) & 3) << 4)) - 32;
            s += __fmul_rn(l < 16 ? d0 : d1, (float)v) * x[l];
        }
        return s;
    }
};

// Q3_K, 110 bytes: hmask[32] | qs[64] | scales[12] | d (f16). 16 sub-blocks
// of 16 with 6-bit signed scales (stored + 32): scale k has its low 4 bits
// in scales[k] (k < 8) or the high nibble of scales[k-8], its top 2 bits at
// bit 2*(k/4) of scales[8 + k%4]. For half h and shift 2s (chunk 4h + s),
// element l (0..31) has bits (qs[32h + l] >> 2s) & 3, and bit 4h + s of
// hmask[l] set, or 4 subtracted. x = d * scale * v
__device__ __forceinline__ int q3_K_scale(const uint8_t *s, int k) {
    const int lo = k < 8 ? (s[k] & 0x0F) : (s[k - 8] >> 4);
    const int hi = (s[8 + (k & 3)] >> (2 * (k >> 2))) & 3;
    return (lo | (hi << 4)) - 32;
}

template <> struct chunk<NS_TYPE_Q3_K> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)(c / 8) * 110;
        const int j = (int)(c % 8), h = j / 4, sft = j % 4;
        const uint8_t *hm = b, *q = b + 32 + 32 * h, *scales = b + 96;
        const float d = ns_ldh(b + 108);
        const float d0 = __fmul_rn(d, (float)q3_K_scale(scales, 8 * h + 2 * sft));
        const float d1 = __fmul_rn(d, (float)q3_K_scale(scales, 8 * h + 2 * sft + 1));
        const unsigned m = 1u << (4 * h + sft);
        float s = 0.0f;
        for (int l = 0; l < 32; l++) {
            const int v = ((q[l] >> (2 * sft)) & 3) - ((hm[l] & m) ? 0 : 4);
            s += __fmul_rn(l < 16 ? d0 : d1, (float)v) * x[l];
        }
        return s;
    }
};

// Q2_K, 84 bytes: scales[16] | qs[64] | d (f16) | dmin (f16). scales[k]: low
// nibble the scale, high nibble the min of sub-block k (16 elements). For
// half h and shift 2s (chunk 4h + s), element l (0..31) is
// (qs[32h + l] >> 2s) & 3, sub-block 8h + 2s + l/16. x = d*sc * q - dmin*mn
template <> struct chunk<NS_TYPE_Q2_K> {
    static __device__ float dot(const uint8_t *row, int64_t c, const float *x) {
        const uint8_t *b = row + (size_t)(c / 8) * 84;
        const int j = (int)(c % 8), h = j / 4, sft = j % 4;
        const uint8_t *sc = b + 8 * h + 2 * sft, *q = b + 16 + 32 * h;
        const float d = ns_ldh(b + 80), dmin = ns_ldh(b + 82);
        const float dl0 = __fmul_rn(d, (float)(sc[0] & 0x0F)), ml0 = __fmul_rn(dmin, (float)(sc[0] >> 4));
        const float dl1 = __fmul_rn(d, (float)(sc[1] & 0x0F)), ml1 = __fmul_rn(dmin, (float)(sc[1] >> 4));
        float s = 0.0f;
        for (int l = 0; l < 32; l++) {
            const float v = (float)((q[l] >> (2 * sft)) & 3);
            s += (l < 16 ? __fsub_rn(__fmul_rn(dl0, v), ml0) : __fsub_rn(__fmul_rn(dl1, v), ml1)) * x[l];
        }
        return s;
    }
};

template <ns_type T>
__global__ void __launch_bounds__(32 * ROWS_PER_BLOCK)
    matvec_kernel(const uint8_t *__restrict__ w, size_t row_bytes, int64_t n_chunks, int64_t n_rows,
                  const float *__restrict__ x, float *__restrict__ y) {
    const int64_t r = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.y;
    if (r >= n_rows) return; // the whole warp: r is the same for its lanes
    const uint8_t *row = w + (size_t)r * row_bytes;
    float acc = 0.0f;
    for (int64_t c = threadIdx.x; c < n_chunks; c += 32) acc += chunk<T>::dot(row, c, x + c * CHUNK);
    acc = ns_warp_sum(acc);
    if (threadIdx.x == 0) y[r] = acc;
}

template <ns_type T>
cudaError_t launch(cudaStream_t s, const void *w, size_t row_bytes, int64_t n, int64_t n_rows, const float *x,
                   float *y) {
    const dim3 block(32, ROWS_PER_BLOCK);
    const dim3 grid((unsigned)((n_rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK));
    matvec_kernel<T><<<grid, block, 0, s>>>((const uint8_t *)w, row_bytes, n / CHUNK, n_rows, x, y);
    return cudaSuccess;
}

} // namespace

extern "C" {

bool ns_cuda_matvec_supports(ns_type t) {
    switch (t) {
    case NS_TYPE_F32: case NS_TYPE_F16: case NS_TYPE_Q8_0: case NS_TYPE_Q4_0: case NS_TYPE_Q4_1:
    case NS_TYPE_Q5_0: case NS_TYPE_Q5_1: case NS_TYPE_Q4_K: case NS_TYPE_Q5_K: case NS_TYPE_Q6_K:
    case NS_TYPE_Q3_K: case NS_TYPE_Q2_K:
        return true;
    default:
        return false;
    }
}

int ns_cuda_matvec(ns_cuda_ctx *c, ns_type t, const void *d_w, size_t row_bytes, int64_t n, int64_t n_rows,
                   const float *d_x, float *d_y, char *err, size_t errlen) {
    if (!ns_cuda_matvec_supports(t)) return ns_cuda_failf(err, errlen, "matvec: type %s not supported on CUDA", ns_type_name(t));
    // Every type's blocks are a whole number of 32-element chunks; a row
    // must be whole blocks and hold at least what its elements need.
    const ns_type_info *ti = ns_type_get((uint32_t)t);
    if (n <= 0 || n_rows < 0 || n % ti->block_size != 0)
        return ns_cuda_failf(err, errlen, "matvec: %lld elements is not a whole number of %s blocks", (long long)n,
                             ti->name);
    if (row_bytes < ns_row_size(t, n)) return ns_cuda_failf(err, errlen, "matvec: row_bytes %zu < %zu", row_bytes, ns_row_size(t, n));
    if (n_rows == 0) return 0;
    if ((n_rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK > 0x7fffffff) return ns_cuda_failf(err, errlen, "matvec: too many rows");
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    cudaStream_t s = c->stream;
    switch (t) {
    case NS_TYPE_F32: launch<NS_TYPE_F32>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_F16: launch<NS_TYPE_F16>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q8_0: launch<NS_TYPE_Q8_0>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q4_0: launch<NS_TYPE_Q4_0>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q4_1: launch<NS_TYPE_Q4_1>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q5_0: launch<NS_TYPE_Q5_0>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q5_1: launch<NS_TYPE_Q5_1>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q4_K: launch<NS_TYPE_Q4_K>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q5_K: launch<NS_TYPE_Q5_K>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q6_K: launch<NS_TYPE_Q6_K>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q3_K: launch<NS_TYPE_Q3_K>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    case NS_TYPE_Q2_K: launch<NS_TYPE_Q2_K>(s, d_w, row_bytes, n, n_rows, d_x, d_y); break;
    default: break;
    }
    return ns_cuda_launched(err, errlen, "matvec");
}

} // extern "C"
