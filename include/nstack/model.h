/* Loading a GGUF model and running it: the engine's public API. */
#ifndef NSTACK_MODEL_H
#define NSTACK_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "gguf.h"
#include "tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ns_model ns_model;
typedef struct ns_context ns_context;

typedef enum { NS_ARCH_LLAMA, NS_ARCH_QWEN2, NS_ARCH_PHI3 } ns_arch;

typedef struct {
    ns_arch arch;
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;
    int n_ff;
    int n_ctx_train;
    int n_rot;             /* rotated dims per head */
    bool rope_neox;        /* rotate (i, i + n_rot/2) instead of (2i, 2i+1) */
    float rope_base;
    float rope_freq_scale; /* 1/factor of linear scaling */
    float rope_attn_factor;/* multiplies cos/sin (LongRoPE's magnitude scaling) */
    int n_ctx_orig;        /* context the rope factors' "short" set is for */
    int n_swa;             /* sliding window; 0 = none */
    float rms_eps;
} ns_hparams;

/* Maps and validates path. The vocabulary is loaded when the file's
 * tokenizer is supported; otherwise ns_model_vocab() is NULL and
 * ns_model_vocab_error() says why. */
ns_model *ns_model_load(const char *path, char *err, size_t errlen);
/* The same, choosing whether the weights are mapped or read (gguf.h). */
ns_model *ns_model_load_ex(const char *path, ns_gguf_load how, char *err, size_t errlen);
void ns_model_free(ns_model *m);

const ns_hparams *ns_model_hparams(const ns_model *m);
const ns_vocab *ns_model_vocab(const ns_model *m);
const char *ns_model_vocab_error(const ns_model *m);
const ns_gguf *ns_model_gguf(const ns_model *m);
const char *ns_arch_name(ns_arch a);

typedef enum { NS_KV_F16 = 0, NS_KV_F32 = 1 } ns_kv_type;

typedef struct {
    int n_ctx;        /* tokens per sequence; 0 = min(train context, 4096) */
    int n_seq;        /* sequences the KV cache holds; 0 = 1 */
    int n_threads;    /* 0 = online CPUs */
    int n_batch;      /* tokens per forward pass for prompts; 0 = 512 */
    ns_kv_type kv_type;
} ns_context_params;

ns_context *ns_context_new(const ns_model *m, const ns_context_params *p, char *err, size_t errlen);
void ns_context_free(ns_context *c);

int ns_context_n_ctx(const ns_context *c);
int ns_context_n_threads(const ns_context *c);

/* Evaluates n tokens of sequence seq, appended after the tokens it already
 * holds. With all_logits, logits for every token are kept (see
 * ns_context_logits); otherwise only for the last. Returns 0, or -1 with err
 * (bad token id, context full, bad sequence). */
int ns_decode(ns_context *c, int seq, const int32_t *tokens, int n, bool all_logits,
              char *err, size_t errlen);

/* Logits (n_vocab floats) for token i of the last ns_decode call; i = -1
 * is the last token. NULL if not kept. */
const float *ns_context_logits(const ns_context *c, int i);

/* Several sequences in one forward pass (continuous batching): each item's
 * tokens are appended to its sequence, and the weights are read once for
 * all of them. A sequence appears at most once; the tokens of all items
 * together must fit in the context's n_batch. Logits are kept for the last
 * token of each item (ns_context_batch_logits). The result for each item
 * equals ns_decode of that item alone up to float rounding (matrix
 * products over several rows sum in another order than one-row products). */
typedef struct {
    int seq;
    const int32_t *tokens;
    int n;
} ns_batch_item;
int ns_decode_batch(ns_context *c, const ns_batch_item *items, int n_items, char *err, size_t errlen);
/* Logits of item i's last token from the last ns_decode_batch call; NULL otherwise. */
const float *ns_context_batch_logits(const ns_context *c, int item);

/* Tokens held for seq, and dropping all after the first n_keep. */
int ns_seq_len(const ns_context *c, int seq);
void ns_seq_truncate(ns_context *c, int seq, int n_keep);

/* Makes sequence dst hold the first n tokens of sequence src (a shared
 * prompt prefix is computed once). 0, or -1 for bad arguments. */
int ns_seq_copy(ns_context *c, int src, int dst, int n);

/* A sequence's state (the keys and values of its tokens) as bytes, for
 * snapshots and moving a conversation between slots. The image starts with
 * a header (layers, KV width, element type, length) that ns_seq_state_load
 * checks against the context before copying anything. */
size_t ns_seq_state_size(const ns_context *c, int seq);
int ns_seq_state_save(const ns_context *c, int seq, void *buf, size_t size);
int ns_seq_state_load(ns_context *c, int seq, const void *buf, size_t size, char *err, size_t errlen);

/* The same image without a copy, for file I/O straight from and into the
 * cache (snapshots at disk speed). ns_seq_state_pieces: the pieces of seq's
 * image (a header, then per layer a K and a V run inside the cache), valid
 * until the context next changes; returns the count or -1 (max too small,
 * bad seq). Loading: ns_seq_state_load_pieces empties seq and returns the
 * pieces an image of n_tokens tokens must be read into (header included);
 * then ns_seq_state_load_commit checks the header that was read and makes
 * seq hold the tokens (on failure seq stays empty). Both pieces calls need
 * room for 1 + 2 * n_layer pieces. */
int ns_seq_state_pieces(ns_context *c, int seq, struct iovec *out, int max);
int ns_seq_state_load_pieces(ns_context *c, int seq, int n_tokens, struct iovec *out, int max, char *err,
                             size_t errlen);
int ns_seq_state_load_commit(ns_context *c, int seq, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
