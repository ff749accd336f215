/* Random-weight GGUF models, as `nstack mkmodel` writes them, and the demo
 * model `nstack serve` creates on a fresh machine so that a first request
 * works before any real model is there (its text is gibberish: random
 * weights, a made-up vocabulary). */
#ifndef NS_SERVER_DEMO_MODEL_H
#define NS_SERVER_DEMO_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/types.h"
#include "runtime/store.h"

typedef struct {
    const char *arch;       /* "llama", "qwen2" or "phi3" */
    const char *vocab_from; /* a GGUF file whose tokenizer is copied; NULL: a made-up vocabulary */
    long long dim, layers, heads, kv_heads, ff, vocab, ctx;
    uint64_t seed;
    ns_type type;           /* every matrix (rows a block does not divide fall back) */
    bool tied;              /* no output.weight */
} ns_mkmodel_spec;

/* The smallest made-up vocabulary: specials, bytes and the pieces of "w0".."w9". */
enum { NS_MKMODEL_MIN_VOCAB = 282 };

/* mkmodel's defaults: llama, dim 256, 2 layers, 8 heads, vocab 1024, ctx 2048, f32, seed 1.
 * kv_heads and ff 0 mean "heads" and "8/3 dim rounded up to 256". */
void ns_mkmodel_spec_init(ns_mkmodel_spec *s);

/* Writes the model to out_path. The same spec always gives the same bytes.
 * Returns 0, or -1 with err (a bad shape, a vocabulary file that does not
 * load, a write failure naming the path). */
int ns_mkmodel_write(const ns_mkmodel_spec *s, const char *out_path, char *err, size_t errlen);

#define NS_DEMO_MODEL_NAME "demo:latest"

/* Creates the demo model in the store unless a model named "demo" resolves
 * already. Returns 1 when created, 0 when it was there, -1 with err. */
int ns_demo_model_ensure(ns_store *st, char *err, size_t errlen);

#endif
