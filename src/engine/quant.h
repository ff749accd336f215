/* Block decoding and dot products for every tensor type the engine runs.
 *
 * A matrix-vector product w·x first converts x once into the weight type's
 * "vec_dot type" (Q8_0, Q8_1, Q8_K, F16, BF16 or F32, as the reference engine
 * does), then calls vec_dot per row. Kernels are reached through a table so
 * that SIMD variants can replace the scalar ones at run time. */
#ifndef NS_QUANT_H
#define NS_QUANT_H

#include "cpu_features.h"
#include "types.h"

typedef void (*ns_to_float_fn)(const void *src, float *dst, int64_t n);
typedef void (*ns_from_float_fn)(const float *src, void *dst, int64_t n);
typedef float (*ns_vec_dot_fn)(int64_t n, const void *w, const void *x);
/* out[j] = vec_dot(n, w, x + j * x_stride) for j in [0, nx): one weight row
 * against nx activation rows, the weight blocks decoded once for several
 * rows. Each out[j] is bit-identical to what the same table's vec_dot
 * returns for that row. */
typedef void (*ns_vec_dot_n_fn)(int64_t n, const void *w, const void *x, size_t x_stride, int nx,
                                float *out);

/* Prompt processing: many weight rows times many activation rows, as a
 * register-tiled product (several weight rows against several activation
 * rows per step, the weight blocks unpacked once per tile of rows).
 *
 * gemm_prep converts one activation row of n floats into the layout that
 * the same table entry's gemm reads, at most ns_gemm_row_size(n) bytes
 * (quantized the way from_float of vec_dot_type quantizes). gemm computes
 *   y[t * y_stride + r] = dot(row r of w, activation row t)
 * for r < n_rows, t < n_x, weight row r at w + r * w_stride, activation row
 * t at x + t * x_stride. Each output is bit-identical to what the scalar
 * table's vec_dot returns for the same rows (its sums follow the scalar
 * order), which the SIMD vec_dot is not: outputs of gemm and of the active
 * vec_dot agree within the kernels' tolerance, not bit for bit. */
/* Attention's weighted sum of values: y_j[i] += a[j] * x[i] for i < n,
 * j < ny, where y_j = y + j * y_stride floats and x is one row in this
 * type, decoded once for the ny outputs (the query heads that share a KV
 * head). Provided for the KV cache types (F32, F16). */
typedef void (*ns_axpy_n_fn)(int64_t n, const void *x, const float *a, int ny, float *y, size_t y_stride);

typedef void (*ns_gemm_prep_fn)(const float *x, int64_t n, void *dst);
typedef void (*ns_gemm_fn)(int64_t n, const void *w, size_t w_stride, int n_rows, const void *x, size_t x_stride,
                           int n_x, float *y, size_t y_stride);

/* Bytes of one gemm activation row of n elements (n a multiple of 32): the
 * values plus 8 bytes of scales and sums per 32, rounded up to a cache
 * line. */
static inline size_t ns_gemm_row_size(int64_t n) { return ((size_t)n + 8 * (size_t)(n / 32) + 63) & ~(size_t)63; }

typedef struct {
    ns_to_float_fn to_float;       /* decode n elements (whole blocks) */
    ns_from_float_fn from_float;   /* encode n elements; NULL if not provided */
    ns_vec_dot_fn vec_dot;         /* w in this type, x in vec_dot_type */
    ns_type vec_dot_type;
    ns_vec_dot_n_fn vec_dot_n;     /* optional: NULL if not provided */
    ns_gemm_prep_fn gemm_prep;     /* optional, with gemm: both or neither */
    ns_gemm_fn gemm;
    ns_axpy_n_fn axpy_n;           /* optional: NULL if not provided */
} ns_type_kernels;

/* NULL for a type the engine cannot compute with. The table is that of the
 * active level (ns_isa_active(), chosen once at first use). */
const ns_type_kernels *ns_kernels(ns_type t);

/* The kernels of a given level, for tests and benchmarks; NULL if the level
 * is not supported here (ns_isa_supported) or t has no kernels. */
const ns_type_kernels *ns_kernels_for_isa(ns_type t, ns_isa level);

/* Block layouts, byte-exact with GGUF files. */
#define NS_QK 32
#define NS_QK_K 256
#define NS_K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[NS_QK / 2]; } ns_block_q4_0;
typedef struct { uint16_t d, m; uint8_t qs[NS_QK / 2]; } ns_block_q4_1;
typedef struct { uint16_t d; uint8_t qh[4]; uint8_t qs[NS_QK / 2]; } ns_block_q5_0;
typedef struct { uint16_t d, m; uint8_t qh[4]; uint8_t qs[NS_QK / 2]; } ns_block_q5_1;
typedef struct { uint16_t d; int8_t qs[NS_QK]; } ns_block_q8_0;
typedef struct { uint16_t d, s; int8_t qs[NS_QK]; } ns_block_q8_1;
typedef struct { uint8_t scales[NS_QK_K / 16]; uint8_t qs[NS_QK_K / 4]; uint16_t d, dmin; } ns_block_q2_K;
typedef struct { uint8_t hmask[NS_QK_K / 8]; uint8_t qs[NS_QK_K / 4]; uint8_t scales[12]; uint16_t d; } ns_block_q3_K;
typedef struct { uint16_t d, dmin; uint8_t scales[NS_K_SCALE_SIZE]; uint8_t qs[NS_QK_K / 2]; } ns_block_q4_K;
typedef struct { uint16_t d, dmin; uint8_t scales[NS_K_SCALE_SIZE]; uint8_t qh[NS_QK_K / 8]; uint8_t qs[NS_QK_K / 2]; } ns_block_q5_K;
typedef struct { uint8_t ql[NS_QK_K / 2]; uint8_t qh[NS_QK_K / 4]; int8_t scales[NS_QK_K / 16]; uint16_t d; } ns_block_q6_K;
typedef struct { float d; int8_t qs[NS_QK_K]; int16_t bsums[NS_QK_K / 16]; } ns_block_q8_K;

#endif
