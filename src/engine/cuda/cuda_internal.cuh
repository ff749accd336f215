// Shared by the backend's .cu files: the context, error reporting and the
// small device helpers the kernels use. Not part of the C API.
#ifndef NS_CUDA_INTERNAL_CUH
#define NS_CUDA_INTERNAL_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include "cuda_backend.h"

struct ns_cuda_ctx {
    int device;
    cudaStream_t stream;
};

// err gets "what: CUDA's message (error name)"; returns -1 for the caller
// to pass on.
static inline int ns_cuda_fail(char *err, size_t errlen, cudaError_t e, const char *what) {
    if (err && errlen) snprintf(err, errlen, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
    return -1;
}

__attribute__((format(printf, 3, 4))) static inline int ns_cuda_failf(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

// Makes the context's device current for this thread (contexts of several
// devices may be used from one thread); 0 or -1 with err.
static inline int ns_cuda_use(ns_cuda_ctx *c, char *err, size_t errlen) {
    if (!c) return ns_cuda_failf(err, errlen, "no CUDA context");
    cudaError_t e = cudaSetDevice(c->device);
    return e == cudaSuccess ? 0 : ns_cuda_fail(err, errlen, e, "cudaSetDevice");
}

// After a launch: a bad configuration or a missing kernel image for this
// GPU shows up here, not later.
static inline int ns_cuda_launched(char *err, size_t errlen, const char *kernel) {
    cudaError_t e = cudaGetLastError();
    return e == cudaSuccess ? 0 : ns_cuda_fail(err, errlen, e, kernel);
}

// ---- device helpers --------------------------------------------------------
// Block fields sit at any byte offset (blocks of 18, 20, 22, 34... bytes), so
// they are read a byte at a time, as quant.c's fields.h does; little-endian.

__device__ __forceinline__ uint16_t ns_ld16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

__device__ __forceinline__ uint32_t ns_ld32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

// IEEE half to float: exact, subnormals included, as ns_fp16_to_fp32.
__device__ __forceinline__ float ns_h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float ns_ldh(const uint8_t *p) { return ns_h2f(ns_ld16(p)); }
__device__ __forceinline__ float ns_ldf(const uint8_t *p) { return __uint_as_float(ns_ld32(p)); }

// Round to nearest even through half and back: what the CPU path does with
// ns_fp32_to_fp16 then ns_fp16_to_fp32 (both IEEE round-to-nearest-even).
__device__ __forceinline__ float ns_round_f16(float x) { return __half2float(__float2half_rn(x)); }

__device__ __forceinline__ float ns_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double ns_warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float ns_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

#endif
