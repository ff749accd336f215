/* The CUDA backend's API in a build without CUDA (NSTACK_CUDA=OFF, or no
 * nvcc found): no devices, and every call fails with "not built with
 * CUDA", so callers need no #ifdef. */
#include "cuda_backend.h"

#include <stdio.h>

#define NOT_BUILT "not built with CUDA"

static int not_built(char *err, size_t errlen) {
    if (err && errlen) snprintf(err, errlen, "%s", NOT_BUILT);
    return -1;
}

bool ns_cuda_built(void) { return false; }
const char *ns_cuda_build_info(void) { return "built without CUDA"; }

int ns_cuda_device_count(char *why, size_t whylen) {
    not_built(why, whylen);
    return 0;
}

int ns_cuda_device_info_get(int device, ns_cuda_device_info *info, char *err, size_t errlen) {
    return not_built(err, errlen);
}

ns_cuda_ctx *ns_cuda_ctx_create(int device, char *err, size_t errlen) {
    not_built(err, errlen);
    return NULL;
}
void ns_cuda_ctx_free(ns_cuda_ctx *c) { (void)c; }
int ns_cuda_ctx_device(const ns_cuda_ctx *c) { return -1; }
int ns_cuda_sync(ns_cuda_ctx *c, char *err, size_t errlen) { return not_built(err, errlen); }

void *ns_cuda_alloc(ns_cuda_ctx *c, size_t bytes, char *err, size_t errlen) {
    not_built(err, errlen);
    return NULL;
}
void ns_cuda_free(ns_cuda_ctx *c, void *d_ptr) { (void)d_ptr; }
int ns_cuda_upload(ns_cuda_ctx *c, void *d_dst, const void *src, size_t bytes, char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_download(ns_cuda_ctx *c, void *dst, const void *d_src, size_t bytes, char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_memset(ns_cuda_ctx *c, void *d_dst, int value, size_t bytes, char *err, size_t errlen) {
    return not_built(err, errlen);
}

bool ns_cuda_matvec_supports(ns_type t) { return false; }
int ns_cuda_matvec(ns_cuda_ctx *c, ns_type t, const void *d_w, size_t row_bytes, int64_t n, int64_t n_rows,
                   const float *d_x, float *d_y, char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_rms_norm(ns_cuda_ctx *c, float *d_out, const float *d_x, const float *d_w, int n, int n_rows, float eps,
                     char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_rope(ns_cuda_ctx *c, float *d_x, int n_tok, int n_head, int head_dim, const int32_t *d_pos,
                 const ns_cuda_rope_params *p, char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_swiglu(ns_cuda_ctx *c, float *d_out, const float *d_gate, const float *d_up, int64_t n, char *err,
                   size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_softmax(ns_cuda_ctx *c, float *d_x, int n, int n_rows, char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_add(ns_cuda_ctx *c, float *d_y, const float *d_x, int64_t n, char *err, size_t errlen) {
    return not_built(err, errlen);
}
int ns_cuda_attn_decode(ns_cuda_ctx *c, float *d_out, const float *d_q, const uint16_t *d_k, const uint16_t *d_v,
                        size_t kv_stride, int n_head, int n_head_kv, int head_dim, int first, int n_kv,
                        float *d_scores, char *err, size_t errlen) {
    return not_built(err, errlen);
}
