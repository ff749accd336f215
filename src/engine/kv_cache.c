#include "kv_cache.h"

#include <stdlib.h>
#include <string.h>

int ns_kv_init(ns_kv_cache *kv, int n_seq, int n_layer, int n_ctx, int kv_dim, ns_kv_type type) {
    memset(kv, 0, sizeof *kv);
    kv->n_seq = n_seq;
    kv->n_layer = n_layer;
    kv->n_ctx = n_ctx;
    kv->kv_dim = kv_dim;
    kv->type = type == NS_KV_F32 ? NS_TYPE_F32 : NS_TYPE_F16;
    kv->elt_size = type == NS_KV_F32 ? 4 : 2;
    size_t n = (size_t)n_seq * n_layer * n_ctx * kv_dim * kv->elt_size;
    /* calloc: pages are only touched (and counted in RSS) as the context fills */
    kv->k = calloc(1, n);
    kv->v = calloc(1, n);
    kv->len = calloc((size_t)n_seq, sizeof *kv->len);
    if (!kv->k || !kv->v || !kv->len) {
        ns_kv_free(kv);
        return -1;
    }
    return 0;
}

void ns_kv_free(ns_kv_cache *kv) {
    free(kv->k);
    free(kv->v);
    free(kv->len);
    memset(kv, 0, sizeof *kv);
}

size_t ns_kv_bytes(const ns_kv_cache *kv) {
    return 2 * (size_t)kv->n_seq * kv->n_layer * kv->n_ctx * kv->kv_dim * kv->elt_size;
}

void ns_kv_store(const ns_kv_cache *kv, uint8_t *row, const float *src) {
    if (kv->type == NS_TYPE_F32) {
        memcpy(row, src, sizeof(float) * (size_t)kv->kv_dim);
        return;
    }
    uint16_t *h = (uint16_t *)(void *)row;
    for (int i = 0; i < kv->kv_dim; i++) h[i] = ns_fp32_to_fp16(src[i]);
}

void ns_kv_load(const ns_kv_cache *kv, const uint8_t *row, float *dst, int n) {
    if (kv->type == NS_TYPE_F32) {
        memcpy(dst, row, sizeof(float) * (size_t)n);
        return;
    }
    const uint16_t *h = (const uint16_t *)(const void *)row;
    for (int i = 0; i < n; i++) dst[i] = ns_fp16_to_fp32(h[i]);
}
