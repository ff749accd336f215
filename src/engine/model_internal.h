/* The model's parts, shared by the loader and the forward pass. */
#ifndef NS_MODEL_INTERNAL_H
#define NS_MODEL_INTERNAL_H

#include "nstack/model.h"
#include "types.h"

/* A 2-D weight matrix in the mapped file: ne1 rows of ne0 elements. */
typedef struct {
    const void *data;
    ns_type type;
    int64_t ne0, ne1;
    size_t row_bytes;
} ns_weight;

typedef struct {
    float *attn_norm;            /* n_embd */
    ns_weight wq, wk, wv;        /* separate projections (llama, qwen2) */
    ns_weight wqkv;              /* fused projection (phi3); data NULL if absent */
    float *bq, *bk, *bv;         /* biases (qwen2); NULL if absent */
    ns_weight wo;
    float *ffn_norm;
    ns_weight w_gate, w_up;      /* w_gate.data NULL: w_up holds gate then up (phi3) */
    ns_weight w_down;
} ns_layer;

struct ns_model {
    ns_gguf *gguf;
    ns_hparams hp;
    ns_vocab *vocab;
    char vocab_err[256];
    ns_weight tok_embd;
    float *output_norm;
    ns_weight output;            /* the token embedding when tied */
    ns_layer *layers;
    float *rope_factors_long;    /* n_rot/2 divisors of each frequency; NULL if absent */
    float *rope_factors_short;
    float *rope_freqs;           /* Llama-3 style per-frequency divisors; NULL if absent */
};

#endif
