/* Keys and values of every layer for several sequences, each with its own
 * length. Storage is [seq][layer][pos][kv_dim] so that one sequence's first
 * n positions are, per layer, one contiguous run: truncation is a length
 * change and serialization a handful of large copies. */
#ifndef NS_KV_CACHE_H
#define NS_KV_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "nstack/model.h"
#include "types.h"

typedef struct {
    int n_seq, n_layer, n_ctx, kv_dim;
    ns_type type;        /* NS_TYPE_F16 or NS_TYPE_F32 */
    size_t elt_size;
    uint8_t *k, *v;
    int *len;            /* tokens held per sequence */
} ns_kv_cache;

int ns_kv_init(ns_kv_cache *kv, int n_seq, int n_layer, int n_ctx, int kv_dim, ns_kv_type type);
void ns_kv_free(ns_kv_cache *kv);
size_t ns_kv_bytes(const ns_kv_cache *kv);

/* Start of the row for (seq, layer, pos). */
static inline uint8_t *ns_kv_k_row(const ns_kv_cache *kv, int seq, int layer, int pos) {
    size_t idx = (((size_t)seq * kv->n_layer + layer) * kv->n_ctx + pos) * kv->kv_dim;
    return kv->k + idx * kv->elt_size;
}
static inline uint8_t *ns_kv_v_row(const ns_kv_cache *kv, int seq, int layer, int pos) {
    size_t idx = (((size_t)seq * kv->n_layer + layer) * kv->n_ctx + pos) * kv->kv_dim;
    return kv->v + idx * kv->elt_size;
}

/* Stores kv_dim floats, converting to the cache type. */
void ns_kv_store(const ns_kv_cache *kv, uint8_t *row, const float *src);
/* Reads kv_dim (or n) floats back. */
void ns_kv_load(const ns_kv_cache *kv, const uint8_t *row, float *dst, int n);

/* Makes dst hold src's first n positions (every layer); n <= len[src]. */
void ns_kv_seq_copy(ns_kv_cache *kv, int src, int dst, int n);

/* One sequence's rows as a self-describing image (see ns_seq_state_save). */
size_t ns_kv_seq_image_size(const ns_kv_cache *kv, int seq);
int ns_kv_seq_save(const ns_kv_cache *kv, int seq, void *buf, size_t size);
/* The image of seq's first n_tokens as pieces: the header (written into
 * header[6]) then per layer the K run and the V run, pointing into the
 * cache. Returns the count (1 + 2 * n_layer), or -1. */
int ns_kv_seq_pieces(const ns_kv_cache *kv, int seq, int n_tokens, uint32_t *header, struct iovec *out, int max);
/* An image header (6 words) that fits this cache: 0, or -1 with err. */
int ns_kv_check_header(const ns_kv_cache *kv, const uint32_t *header, char *err, size_t errlen);
/* Returns 0, or -1 with a reason in err when the image does not fit this cache. */
int ns_kv_seq_load(ns_kv_cache *kv, int seq, const void *buf, size_t size, char *err, size_t errlen);

#endif
