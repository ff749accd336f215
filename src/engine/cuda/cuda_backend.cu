// Device discovery, contexts and buffers of the CUDA backend (the C API in
// cuda_backend.h). The runtime is linked statically (CUDA::cudart_static):
// it opens libcuda.so.1 at the first call, so on a machine without the
// driver cudaGetDeviceCount fails with a reason instead of the binary
// failing to start.
#include "cuda_internal.cuh"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#ifndef NSTACK_CUDA_ARCH_LO
#define NSTACK_CUDA_ARCH_LO 0
#endif
#ifndef NSTACK_CUDA_ARCH_HI
#define NSTACK_CUDA_ARCH_HI 0
#endif
#define NS_STR2(x) #x
#define NS_STR(x) NS_STR2(x)

extern "C" {

bool ns_cuda_built(void) { return true; }

const char *ns_cuda_build_info(void) {
    // CUDART_VERSION is 13000 for 13.0: the toolkit this was compiled with.
    static char info[64];
    if (!info[0])
        snprintf(info, sizeof info, "built with CUDA %d.%d, sm_%s-%s", CUDART_VERSION / 1000, (CUDART_VERSION % 1000) / 10,
                 NS_STR(NSTACK_CUDA_ARCH_LO), NS_STR(NSTACK_CUDA_ARCH_HI));
    return info;
}

int ns_cuda_device_count(char *why, size_t whylen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        // cudaErrorNoDevice, cudaErrorInsufficientDriver (driver older than
        // this runtime, or none: libcuda missing), cudaErrorInitializationError...
        // The error stays sticky in the runtime's last-error slot; clear it
        // so later, unrelated calls do not report it.
        (void)cudaGetLastError();
        if (why && whylen) {
            // The runtime says "driver version is insufficient" also when
            // there is no driver at all: tell the two apart.
            void *h = e == cudaErrorInsufficientDriver ? dlopen("libcuda.so.1", RTLD_LAZY | RTLD_LOCAL) : NULL;
            if (e == cudaErrorInsufficientDriver && !h)
                snprintf(why, whylen, "no NVIDIA driver: libcuda.so.1 cannot be loaded");
            else
                snprintf(why, whylen, "%s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
            if (h) dlclose(h);
        }
        return 0;
    }
    if (n < 1) {
        if (why && whylen) snprintf(why, whylen, "the CUDA driver reports no device");
        return 0;
    }
    if (why && whylen) why[0] = 0;
    return n;
}

int ns_cuda_device_info_get(int device, ns_cuda_device_info *info, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    cudaDeviceProp p;
    cudaError_t e = cudaGetDeviceProperties(&p, device);
    if (e != cudaSuccess) return ns_cuda_fail(err, errlen, e, "cudaGetDeviceProperties");
    info->index = device;
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->cc_major = p.major;
    info->cc_minor = p.minor;
    info->sm_count = p.multiProcessorCount;
    info->total_mem = p.totalGlobalMem;
    // Free memory needs the device's primary context (created here if it
    // was not: about 300 MB of the device's memory for the process's life).
    if ((e = cudaSetDevice(device)) != cudaSuccess) return ns_cuda_fail(err, errlen, e, "cudaSetDevice");
    size_t free_b = 0, total_b = 0;
    if ((e = cudaMemGetInfo(&free_b, &total_b)) != cudaSuccess) return ns_cuda_fail(err, errlen, e, "cudaMemGetInfo");
    info->free_mem = free_b;
    return 0;
}

ns_cuda_ctx *ns_cuda_ctx_create(int device, char *err, size_t errlen) {
    int n = ns_cuda_device_count(err, errlen);
    if (n < 1) return NULL;
    if (device < 0 || device >= n) {
        ns_cuda_failf(err, errlen, "CUDA device %d does not exist (%d device%s)", device, n, n == 1 ? "" : "s");
        return NULL;
    }
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        ns_cuda_fail(err, errlen, e, "cudaSetDevice");
        return NULL;
    }
    ns_cuda_ctx *c = (ns_cuda_ctx *)calloc(1, sizeof *c);
    if (!c) {
        ns_cuda_failf(err, errlen, "out of host memory");
        return NULL;
    }
    c->device = device;
    // Non-blocking: the engine's stream must not serialize with the legacy
    // default stream that other code in the process might use.
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess) {
        ns_cuda_fail(err, errlen, e, "cudaStreamCreate");
        free(c);
        return NULL;
    }
    return c;
}

void ns_cuda_ctx_free(ns_cuda_ctx *c) {
    if (!c) return;
    if (cudaSetDevice(c->device) == cudaSuccess) {
        (void)cudaStreamSynchronize(c->stream);
        (void)cudaStreamDestroy(c->stream);
    }
    (void)cudaGetLastError();
    free(c);
}

int ns_cuda_ctx_device(const ns_cuda_ctx *c) { return c ? c->device : -1; }

int ns_cuda_sync(ns_cuda_ctx *c, char *err, size_t errlen) {
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    cudaError_t e = cudaStreamSynchronize(c->stream);
    return e == cudaSuccess ? 0 : ns_cuda_fail(err, errlen, e, "cudaStreamSynchronize");
}

void *ns_cuda_alloc(ns_cuda_ctx *c, size_t bytes, char *err, size_t errlen) {
    if (ns_cuda_use(c, err, errlen) != 0) return NULL;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); // out of memory is not sticky; clear it
        char what[96];
        snprintf(what, sizeof what, "cudaMalloc of %zu bytes on device %d", bytes, c->device);
        ns_cuda_fail(err, errlen, e, what);
        return NULL;
    }
    return p;
}

void ns_cuda_free(ns_cuda_ctx *c, void *d_ptr) {
    if (!c || !d_ptr) return;
    if (cudaSetDevice(c->device) == cudaSuccess) (void)cudaFree(d_ptr);
    (void)cudaGetLastError();
}

static int copy(ns_cuda_ctx *c, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, const char *what,
                char *err, size_t errlen) {
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    if (bytes == 0) return 0;
    // On the context's stream, so the copy is ordered after the kernels
    // already queued; then waited for (host buffers are pageable).
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, kind, c->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(c->stream);
    return e == cudaSuccess ? 0 : ns_cuda_fail(err, errlen, e, what);
}

int ns_cuda_upload(ns_cuda_ctx *c, void *d_dst, const void *src, size_t bytes, char *err, size_t errlen) {
    return copy(c, d_dst, src, bytes, cudaMemcpyHostToDevice, "upload", err, errlen);
}

int ns_cuda_download(ns_cuda_ctx *c, void *dst, const void *d_src, size_t bytes, char *err, size_t errlen) {
    return copy(c, dst, d_src, bytes, cudaMemcpyDeviceToHost, "download", err, errlen);
}

int ns_cuda_memset(ns_cuda_ctx *c, void *d_dst, int value, size_t bytes, char *err, size_t errlen) {
    if (ns_cuda_use(c, err, errlen) != 0) return -1;
    cudaError_t e = cudaMemsetAsync(d_dst, value, bytes, c->stream);
    return e == cudaSuccess ? 0 : ns_cuda_fail(err, errlen, e, "cudaMemsetAsync");
}

} // extern "C"
