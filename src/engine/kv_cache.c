#include "kv_cache.h"

#include <stdio.h>
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

/* A sequence's rows come in 2 * n_layer runs, one per layer for K then V;
 * run i (0-based) of seq, and the bytes of n tokens of one run. */
static uint8_t *run_at(const ns_kv_cache *kv, int seq, int i) {
    return (i % 2 == 0) ? ns_kv_k_row(kv, seq, i / 2, 0) : ns_kv_v_row(kv, seq, i / 2, 0);
}
static size_t run_bytes(const ns_kv_cache *kv, int n) { return (size_t)n * kv->kv_dim * kv->elt_size; }

void ns_kv_seq_copy(ns_kv_cache *kv, int src, int dst, int n) {
    if (src == dst) return;
    for (int i = 0; i < 2 * kv->n_layer; i++) memcpy(run_at(kv, dst, i), run_at(kv, src, i), run_bytes(kv, n));
    kv->len[dst] = n;
}

/* Image layout, little-endian u32 header then raw rows:
 *   "NSKV", version, n_layer, kv_dim, element type, length,
 *   then per layer: K rows [length][kv_dim], V rows [length][kv_dim]. */
enum { IMAGE_VERSION = 1, HEADER_WORDS = 6 };
static const uint32_t IMAGE_MAGIC = 0x564b534eu; /* "NSKV" read as little-endian */

size_t ns_kv_seq_image_size(const ns_kv_cache *kv, int seq) {
    if (seq < 0 || seq >= kv->n_seq) return 0;
    size_t rows = (size_t)kv->len[seq] * kv->n_layer * 2;
    return HEADER_WORDS * sizeof(uint32_t) + rows * kv->kv_dim * kv->elt_size;
}

int ns_kv_seq_save(const ns_kv_cache *kv, int seq, void *buf, size_t size) {
    size_t need = ns_kv_seq_image_size(kv, seq);
    if (need == 0 || size < need) return -1;
    uint32_t h[HEADER_WORDS] = {IMAGE_MAGIC, IMAGE_VERSION, (uint32_t)kv->n_layer, (uint32_t)kv->kv_dim,
                                (uint32_t)kv->type, (uint32_t)kv->len[seq]};
    uint8_t *p = buf;
    memcpy(p, h, sizeof h);
    p += sizeof h;
    const size_t run = run_bytes(kv, kv->len[seq]);
    for (int i = 0; i < 2 * kv->n_layer; i++, p += run) memcpy(p, run_at(kv, seq, i), run);
    return 0;
}

int ns_kv_seq_pieces(const ns_kv_cache *kv, int seq, int n_tokens, uint32_t *header, struct iovec *out, int max) {
    if (seq < 0 || seq >= kv->n_seq || n_tokens < 0 || n_tokens > kv->n_ctx || max < 1 + 2 * kv->n_layer) return -1;
    header[0] = IMAGE_MAGIC;
    header[1] = IMAGE_VERSION;
    header[2] = (uint32_t)kv->n_layer;
    header[3] = (uint32_t)kv->kv_dim;
    header[4] = (uint32_t)kv->type;
    header[5] = (uint32_t)n_tokens;
    out[0] = (struct iovec){header, HEADER_WORDS * sizeof(uint32_t)};
    for (int i = 0; i < 2 * kv->n_layer; i++) out[1 + i] = (struct iovec){run_at(kv, seq, i), run_bytes(kv, n_tokens)};
    return 1 + 2 * kv->n_layer;
}

int ns_kv_check_header(const ns_kv_cache *kv, const uint32_t *h, char *err, size_t errlen) {
    if (h[0] != IMAGE_MAGIC || h[1] != IMAGE_VERSION) {
        snprintf(err, errlen, "not a KV state image of version %d", IMAGE_VERSION);
        return -1;
    }
    if (h[2] != (uint32_t)kv->n_layer || h[3] != (uint32_t)kv->kv_dim || h[4] != (uint32_t)kv->type) {
        snprintf(err, errlen, "state is for %u layers x %u wide (type %u), this cache is %d x %d (type %d)", h[2], h[3],
                 h[4], kv->n_layer, kv->kv_dim, (int)kv->type);
        return -1;
    }
    if (h[5] > (uint32_t)kv->n_ctx) {
        snprintf(err, errlen, "state holds %u tokens, the context only %d", h[5], kv->n_ctx);
        return -1;
    }
    return 0;
}

int ns_kv_seq_load(ns_kv_cache *kv, int seq, const void *buf, size_t size, char *err, size_t errlen) {
    uint32_t h[HEADER_WORDS];
    if (seq < 0 || seq >= kv->n_seq) {
        snprintf(err, errlen, "sequence %d does not exist", seq);
        return -1;
    }
    if (size < sizeof h) {
        snprintf(err, errlen, "state image too short (%zu bytes)", size);
        return -1;
    }
    memcpy(h, buf, sizeof h);
    if (ns_kv_check_header(kv, h, err, errlen) != 0) return -1;
    const size_t run = run_bytes(kv, (int)h[5]);
    if (size != sizeof h + run * 2 * kv->n_layer) {
        snprintf(err, errlen, "state image is %zu bytes, expected %zu", size, sizeof h + run * 2 * kv->n_layer);
        return -1;
    }
    const uint8_t *p = (const uint8_t *)buf + sizeof h;
    for (int i = 0; i < 2 * kv->n_layer; i++, p += run) memcpy(run_at(kv, seq, i), p, run);
    kv->len[seq] = (int)h[5];
    return 0;
}
