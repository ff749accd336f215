/* The CUDA backend's C API: device discovery, one context per device
 * (a stream), device buffers, and the kernels of a decode step, each with
 * a C launcher.
 *
 * The implementation is CUDA C++ (cuda_backend.cu, cuda_matvec.cu,
 * cuda_ops.cu) when the build has CUDA, and cuda_stub.c otherwise, which
 * answers every call with "not built with CUDA". Callers never need an
 * #ifdef: ns_cuda_device_count() < 1 means "run on the CPU".
 *
 * Conventions: functions that can fail return 0 on success and -1 on
 * failure with a sentence in err (err may be NULL). Kernel launchers only
 * enqueue work on the context's stream; launch errors are reported at
 * once, errors of the kernel itself at the next synchronizing call
 * (ns_cuda_sync, ns_cuda_download). Pointers named d_* are device
 * pointers from ns_cuda_alloc; all float data is FP32.
 *
 * Every kernel must agree with the engine's CPU reference (quant.c's block
 * decoders and the CPU ops in context.c); tests/unit/test_cuda.c checks
 * that on a machine with a GPU. */
#ifndef NS_CUDA_BACKEND_H
#define NS_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* types.h is C: its functions have C linkage for the .cu files too */
#endif

#include "engine/types.h"

/* ---- build and devices -------------------------------------------------- */

/* Whether this binary contains the CUDA backend. */
bool ns_cuda_built(void);

/* "built with CUDA 13.0, sm_75-90" or "built without CUDA". */
const char *ns_cuda_build_info(void);

/* Number of CUDA devices usable here: >= 1, or 0 with the reason in why
 * (no driver, no device, driver too old for this runtime, not built with
 * CUDA). Never fails otherwise, never crashes without a driver. */
int ns_cuda_device_count(char *why, size_t whylen);

/* The same answer, asked once per process (later calls return the cached
 * count and reason); when there is no device, says once at info level
 * "no CUDA device: running on the CPU (reason)". why may be NULL. */
int ns_cuda_available(char *why, size_t whylen);

typedef struct {
    int index;
    char name[256];
    int cc_major, cc_minor; /* compute capability */
    int sm_count;
    size_t total_mem, free_mem; /* bytes */
} ns_cuda_device_info;

int ns_cuda_device_info_get(int device, ns_cuda_device_info *info, char *err, size_t errlen);

/* ---- contexts and buffers ----------------------------------------------- */

/* One device and a stream of its own (the kernels of one context run in
 * order). Not thread-safe: one context per thread that launches work. */
typedef struct ns_cuda_ctx ns_cuda_ctx;

ns_cuda_ctx *ns_cuda_ctx_create(int device, char *err, size_t errlen);
void ns_cuda_ctx_free(ns_cuda_ctx *c); /* NULL is fine */
int ns_cuda_ctx_device(const ns_cuda_ctx *c);
/* Waits for the context's stream: kernel errors surface here. */
int ns_cuda_sync(ns_cuda_ctx *c, char *err, size_t errlen);

/* NULL with err on failure (out of memory names the size). */
void *ns_cuda_alloc(ns_cuda_ctx *c, size_t bytes, char *err, size_t errlen);
void ns_cuda_free(ns_cuda_ctx *c, void *d_ptr); /* NULL is fine */
/* Host to device and back, ordered on the context's stream; both wait for
 * the copy to finish, so host buffers may be reused on return. */
int ns_cuda_upload(ns_cuda_ctx *c, void *d_dst, const void *src, size_t bytes, char *err, size_t errlen);
int ns_cuda_download(ns_cuda_ctx *c, void *dst, const void *d_src, size_t bytes, char *err, size_t errlen);
int ns_cuda_memset(ns_cuda_ctx *c, void *d_dst, int value, size_t bytes, char *err, size_t errlen);

/* ---- kernels ------------------------------------------------------------ */

/* Whether ns_cuda_matvec handles weights of type t. */
bool ns_cuda_matvec_supports(ns_type t);

/* d_y[r] = dot(row r of W, d_x) for r < n_rows: W is n_rows rows of n
 * elements in type t (GGUF block layout, rows row_bytes apart: a weight
 * tensor uploaded byte for byte), x is n floats (not quantized). n must be
 * a whole number of blocks. Each element is decoded exactly as quant.c's
 * to_float decodes it; the sums are FP32. */
int ns_cuda_matvec(ns_cuda_ctx *c, ns_type t, const void *d_w, size_t row_bytes, int64_t n, int64_t n_rows,
                   const float *d_x, float *d_y, char *err, size_t errlen);

/* d_out row i = d_x row i * scale_i * d_w, scale_i = 1/sqrt(mean(x_i^2) + eps),
 * for n_rows rows of n floats (context.c's rms_norm). out may be x. */
int ns_cuda_rms_norm(ns_cuda_ctx *c, float *d_out, const float *d_x, const float *d_w, int n, int n_rows, float eps,
                     char *err, size_t errlen);

/* RoPE as context.c's rope_angles + rope_head. */
typedef struct {
    int n_rot;           /* rotated dims per head (<= head_dim, even) */
    bool neox;           /* rotate (i, i + n_rot/2) instead of (2i, 2i+1) */
    float theta_scale;   /* powf(rope_base, -2.0f / n_rot), computed on the host as the CPU does */
    float freq_scale;    /* rope_freq_scale */
    float attn_factor;   /* rope_attn_factor */
    const float *d_factors; /* n_rot/2 per-frequency divisors on the device, or NULL */
} ns_cuda_rope_params;

/* Rotates in place n_tok rows of n_head heads of head_dim floats (rows
 * n_head * head_dim apart), row t at position d_pos[t] (device int32s,
 * so that a captured graph can replay with new positions). */
int ns_cuda_rope(ns_cuda_ctx *c, float *d_x, int n_tok, int n_head, int head_dim, const int32_t *d_pos,
                 const ns_cuda_rope_params *p, char *err, size_t errlen);

/* d_out[i] = silu(d_gate[i]) * d_up[i], silu(g) = g / (1 + exp(-g)). */
int ns_cuda_swiglu(ns_cuda_ctx *c, float *d_out, const float *d_gate, const float *d_up, int64_t n, char *err,
                   size_t errlen);

/* Softmax in place over each of n_rows rows of n floats. */
int ns_cuda_softmax(ns_cuda_ctx *c, float *d_x, int n, int n_rows, char *err, size_t errlen);

/* d_y[i] += d_x[i] (the residual connections). */
int ns_cuda_add(ns_cuda_ctx *c, float *d_y, const float *d_x, int64_t n, char *err, size_t errlen);

/* Single-query attention of one token over an F16 KV cache (decode), as
 * context.c's attn_task with an F16 cache: for query head h (KV head
 * h / (n_head / n_head_kv)), scores s_p = dot(q_h rounded to F16, K_p) /
 * sqrt(head_dim) for positions p in [first, n_kv), softmax, the weights
 * rounded to F16, out_h = sum_p w_p V_p.
 *   d_q      n_head * head_dim floats
 *   d_k, d_v the cache rows of positions 0.. of one sequence and layer:
 *            position p at p * kv_stride halves, KV head g at g * head_dim
 *   d_scores scratch of n_head * n_kv floats
 *   d_out    n_head * head_dim floats */
int ns_cuda_attn_decode(ns_cuda_ctx *c, float *d_out, const float *d_q, const uint16_t *d_k, const uint16_t *d_v,
                        size_t kv_stride, int n_head, int n_head_kv, int head_dim, int first, int n_kv,
                        float *d_scores, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
