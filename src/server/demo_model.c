/* Random-weight GGUF models (`nstack mkmodel`) and the server's demo model.
 *
 * Weights are uniform in +-1/sqrt(fan-in) from a splitmix64 stream seeded by
 * the spec, drawn in a fixed order, so a spec always gives the same file.
 * The vocabulary is copied from another GGUF or made up: byte tokens plus
 * numbered word pieces. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_model.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "engine/quantize.h"
#include "nstack/gguf.h"
#include "util/log.h"

typedef struct {
    uint64_t state;
} mk_rng;

static uint64_t rng_next(mk_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(mk_rng *r) { return (float)((rng_next(r) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

void ns_mkmodel_spec_init(ns_mkmodel_spec *s) {
    *s = (ns_mkmodel_spec){.arch = "llama", .dim = 256, .layers = 2, .heads = 8, .vocab = 1024, .ctx = 2048,
                           .seed = 1, .type = NS_TYPE_F32};
}

/* A rows x cols matrix (cols = ne0) of uniform values in +-scale, encoded as type. */
static int add_matrix(ns_gguf_writer *w, mk_rng *rng, const char *name, ns_type type, int64_t ne0, int64_t ne1,
                      float scale) {
    /* rows not a whole number of blocks: the quantize tool's fallback type, F32 when none fits */
    bool fell_back;
    type = ns_quantize_fit_type(type, ne0, &fell_back);
    if (fell_back && type == NS_TYPE_F16) type = NS_TYPE_F32;
    size_t row = ns_row_size(type, ne0);
    uint8_t *data = malloc(row * (size_t)ne1);
    float *tmp = malloc(sizeof(float) * (size_t)ne0 * (size_t)ne1);
    if (!data || !tmp) {
        free(data);
        free(tmp);
        return -1;
    }
    for (int64_t i = 0; i < ne0 * ne1; i++) tmp[i] = rng_uniform(rng) * scale;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ns_quantize_rows(type, tmp, data, ne1, ne0, cpus > 0 ? (int)(cpus < 64 ? cpus : 64) : 1);
    int64_t ne[2] = {ne0, ne1};
    int rc = ns_gguf_w_tensor(w, name, type, ne1 == 1 ? 1 : 2, ne, data);
    free(data);
    free(tmp);
    return rc;
}

static int add_vector(ns_gguf_writer *w, mk_rng *rng, const char *name, int64_t n, float value, float jitter) {
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return -1;
    for (int64_t i = 0; i < n; i++) v[i] = value + jitter * rng_uniform(rng);
    int64_t ne[1] = {n};
    int rc = ns_gguf_w_tensor(w, name, NS_TYPE_F32, 1, ne, v);
    free(v);
    return rc;
}

/* The made-up vocabulary: <unk> <s> </s>, the 256 byte tokens, then the
 * pieces of words "w<digits>": "▁", "w", the digits, "▁w", and "▁w" followed
 * by every digit string, shortest first. Each piece's prefix comes before it,
 * so the SentencePiece merges reach every word: "w123" is one token once the
 * vocabulary is large enough (1,000+ pieces for all three-digit words). */
enum { MADE_UP_BASE = 3 + 256 + 1 + 1 + 10 + 1 };
_Static_assert(NS_MKMODEL_MIN_VOCAB == MADE_UP_BASE + 10, "the smallest vocabulary holds w0..w9");

static void made_up_piece(int i, char *buf, size_t len) {
    if (i == 0) snprintf(buf, len, "<unk>");
    else if (i == 1) snprintf(buf, len, "<s>");
    else if (i == 2) snprintf(buf, len, "</s>");
    else if (i < 3 + 256) snprintf(buf, len, "<0x%02X>", i - 3);
    else if (i == 259) snprintf(buf, len, "\xe2\x96\x81");
    else if (i == 260) snprintf(buf, len, "w");
    else if (i < 271) snprintf(buf, len, "%d", i - 261);
    else if (i == 271) snprintf(buf, len, "\xe2\x96\x81w");
    else {
        /* digit strings in order: 10 of length 1, 100 of length 2, ... */
        int k = i - MADE_UP_BASE, width = 1;
        for (int count = 10; k >= count && width < 9; count *= 10, width++) k -= count;
        snprintf(buf, len, "\xe2\x96\x81w%0*d", width, k % 1000000000);
    }
}

static int made_up_vocab(ns_gguf_writer *w, int n_vocab) {
    char **tokens = calloc((size_t)n_vocab, sizeof *tokens);
    float *scores = malloc(sizeof(float) * (size_t)n_vocab);
    int32_t *types = malloc(sizeof(int32_t) * (size_t)n_vocab);
    int rc = -1;
    if (!tokens || !scores || !types) goto out;
    for (int i = 0; i < n_vocab; i++) {
        char buf[64];
        made_up_piece(i, buf, sizeof buf);
        tokens[i] = strdup(buf);
        if (!tokens[i]) goto out;
        scores[i] = i < 3 + 256 ? 0.0f : -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : i < 3 + 256 ? 6 : 1;
    }
    if (ns_gguf_w_str(w, "tokenizer.ggml.model", "llama") ||
        ns_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)tokens, (uint64_t)n_vocab) ||
        ns_gguf_w_arr_f32(w, "tokenizer.ggml.scores", scores, (uint64_t)n_vocab) ||
        ns_gguf_w_arr_i32(w, "tokenizer.ggml.token_type", types, (uint64_t)n_vocab) ||
        ns_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1) || ns_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2) ||
        ns_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0) || ns_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", true))
        goto out;
    rc = 0;
out:
    if (tokens)
        for (int i = 0; i < n_vocab; i++) free(tokens[i]);
    free(tokens);
    free(scores);
    free(types);
    return rc;
}

/* Copies every tokenizer.ggml.* key of src; returns the vocabulary size or -1. */
static int copy_vocab(ns_gguf_writer *w, const char *path, char *err, size_t errlen) {
    ns_gguf *g = ns_gguf_open(path, err, errlen);
    if (!g) return -1;
    int n_vocab = -1;
    for (uint64_t i = 0; i < g->n_kv; i++) {
        const ns_gguf_kv *kv = &g->kv[i];
        if (kv->key.len < 14 || memcmp(kv->key.ptr, "tokenizer.ggml", 14) != 0) continue;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(kv->key.len < 255 ? kv->key.len : 255), kv->key.ptr);
        int rc = 0;
        if (kv->type == NS_GGUF_STRING) {
            char *s = strndup(kv->v.str.ptr, (size_t)kv->v.str.len);
            rc = s ? ns_gguf_w_str(w, key, s) : -1;
            free(s);
        } else if (kv->type == NS_GGUF_BOOL) {
            rc = ns_gguf_w_bool(w, key, kv->v.u64 != 0);
        } else if (kv->type == NS_GGUF_UINT32 || kv->type == NS_GGUF_UINT8 || kv->type == NS_GGUF_UINT16) {
            rc = ns_gguf_w_u32(w, key, (uint32_t)kv->v.u64);
        } else if (kv->type == NS_GGUF_INT32 || kv->type == NS_GGUF_INT8 || kv->type == NS_GGUF_INT16) {
            rc = ns_gguf_w_i32(w, key, (int32_t)kv->v.i64);
        } else if (kv->type == NS_GGUF_ARRAY && kv->arr_type == NS_GGUF_STRING) {
            char **strs = calloc(kv->arr_n ? kv->arr_n : 1, sizeof *strs);
            rc = strs ? 0 : -1;
            for (uint64_t j = 0; rc == 0 && j < kv->arr_n; j++)
                if (!(strs[j] = strndup(kv->arr_str[j].ptr, (size_t)kv->arr_str[j].len))) rc = -1;
            if (rc == 0) rc = ns_gguf_w_arr_str(w, key, (const char *const *)strs, kv->arr_n);
            if (strs)
                for (uint64_t j = 0; j < kv->arr_n; j++) free(strs[j]);
            free(strs);
            if (strcmp(key, "tokenizer.ggml.tokens") == 0) n_vocab = (int)kv->arr_n;
        } else if (kv->type == NS_GGUF_ARRAY && (kv->arr_type == NS_GGUF_FLOAT32 || kv->arr_type == NS_GGUF_INT32)) {
            /* arr_data may be unaligned inside the file: copy out element-wise */
            float *fv = malloc(sizeof(float) * (kv->arr_n ? kv->arr_n : 1));
            rc = fv ? 0 : -1;
            if (fv && kv->arr_type == NS_GGUF_FLOAT32) {
                memcpy(fv, kv->arr_data, sizeof(float) * kv->arr_n);
                rc = ns_gguf_w_arr_f32(w, key, fv, kv->arr_n);
            } else if (fv) {
                memcpy(fv, kv->arr_data, sizeof(int32_t) * kv->arr_n);
                rc = ns_gguf_w_arr_i32(w, key, (const int32_t *)(const void *)fv, kv->arr_n);
            }
            free(fv);
        }
        /* other types (u64 counts, merges of odd types) are not needed by the tokenizer */
        if (rc != 0) {
            ns_gguf_close(g);
            snprintf(err, errlen, "out of memory copying the tokenizer of %s", path);
            return -1;
        }
    }
    ns_gguf_close(g);
    if (n_vocab <= 0) snprintf(err, errlen, "%s has no tokenizer.ggml.tokens", path);
    return n_vocab;
}

static int write_model(ns_gguf_writer *w, const ns_mkmodel_spec *o, const char *out_path, char *err, size_t errlen) {
    mk_rng rng = {o->seed};
    const long long kv_heads = o->kv_heads ? o->kv_heads : o->heads;
    const long long ffl = o->ff ? o->ff : (o->dim * 8 / 3 + 255) / 256 * 256;
    const char *arch = o->arch;
    char key[128];
#define AK(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    int n_vocab;
    if (o->vocab_from) {
        if ((n_vocab = copy_vocab(w, o->vocab_from, err, errlen)) <= 0) return -1;
    } else {
        if (made_up_vocab(w, (int)o->vocab) != 0) goto oom;
        n_vocab = (int)o->vocab;
    }
    const int64_t d = o->dim, hd = o->dim / o->heads, dq = o->dim, dkv = kv_heads * hd, ff = ffl;
    bool neox = strcmp(arch, "llama") != 0;
    if (ns_gguf_w_str(w, "general.architecture", arch) || ns_gguf_w_str(w, "general.name", "nstack mkmodel") ||
        ns_gguf_w_u32(w, "general.alignment", 32) || ns_gguf_w_u32(w, AK("context_length"), (uint32_t)o->ctx) ||
        ns_gguf_w_u32(w, AK("embedding_length"), (uint32_t)d) || ns_gguf_w_u32(w, AK("block_count"), (uint32_t)o->layers) ||
        ns_gguf_w_u32(w, AK("feed_forward_length"), (uint32_t)ff) ||
        ns_gguf_w_u32(w, AK("attention.head_count"), (uint32_t)o->heads) ||
        ns_gguf_w_u32(w, AK("attention.head_count_kv"), (uint32_t)kv_heads) ||
        ns_gguf_w_f32(w, AK("attention.layer_norm_rms_epsilon"), 1e-5f) ||
        ns_gguf_w_f32(w, AK("rope.freq_base"), neox && strcmp(arch, "qwen2") == 0 ? 1e6f : 10000.0f) ||
        ns_gguf_w_u32(w, AK("rope.dimension_count"), (uint32_t)hd))
        goto oom;
    if (strcmp(arch, "phi3") == 0 && ns_gguf_w_u32(w, AK("attention.sliding_window"), (uint32_t)o->ctx)) goto oom;
#undef AK
    /* weights ~ U(-a, a) with a = 1/sqrt(fan-in) keeps activations near unit scale */
    const float a_d = 1.0f / sqrtf((float)d), a_ff = 1.0f / sqrtf((float)ff);
    if (add_matrix(w, &rng, "token_embd.weight", o->type, d, n_vocab, 1.0f) ||
        add_vector(w, &rng, "output_norm.weight", d, 1.0f, 0.1f) ||
        (!o->tied && add_matrix(w, &rng, "output.weight", o->type, d, n_vocab, a_d)))
        goto oom;
    for (long long il = 0; il < o->layers; il++) {
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld.%s", il, s), n)
        if (add_vector(w, &rng, NAME("attn_norm.weight"), d, 1.0f, 0.1f) ||
            add_vector(w, &rng, NAME("ffn_norm.weight"), d, 1.0f, 0.1f))
            goto oom;
        if (strcmp(arch, "phi3") == 0) {
            if (add_matrix(w, &rng, NAME("attn_qkv.weight"), o->type, d, dq + 2 * dkv, a_d) ||
                add_matrix(w, &rng, NAME("ffn_up.weight"), o->type, d, 2 * ff, a_d))
                goto oom;
        } else {
            if (add_matrix(w, &rng, NAME("attn_q.weight"), o->type, d, dq, a_d) ||
                add_matrix(w, &rng, NAME("attn_k.weight"), o->type, d, dkv, a_d) ||
                add_matrix(w, &rng, NAME("attn_v.weight"), o->type, d, dkv, a_d) ||
                add_matrix(w, &rng, NAME("ffn_gate.weight"), o->type, d, ff, a_d) ||
                add_matrix(w, &rng, NAME("ffn_up.weight"), o->type, d, ff, a_d))
                goto oom;
            if (strcmp(arch, "qwen2") == 0 &&
                (add_vector(w, &rng, NAME("attn_q.bias"), dq, 0.0f, 0.1f) ||
                 add_vector(w, &rng, NAME("attn_k.bias"), dkv, 0.0f, 0.1f) ||
                 add_vector(w, &rng, NAME("attn_v.bias"), dkv, 0.0f, 0.1f)))
                goto oom;
        }
        if (add_matrix(w, &rng, NAME("attn_output.weight"), o->type, dq, d, a_d) ||
            add_matrix(w, &rng, NAME("ffn_down.weight"), o->type, ff, d, a_ff))
            goto oom;
#undef NAME
    }
    return ns_gguf_w_to_file(w, out_path, err, errlen);
oom:
    snprintf(err, errlen, "out of memory building %s", out_path);
    return -1;
}

int ns_mkmodel_write(const ns_mkmodel_spec *o, const char *out_path, char *err, size_t errlen) {
    const long long kv_heads = o->kv_heads ? o->kv_heads : o->heads;
    if (!o->arch || (strcmp(o->arch, "llama") && strcmp(o->arch, "qwen2") && strcmp(o->arch, "phi3"))) {
        snprintf(err, errlen, "unknown architecture '%s' (llama, qwen2 or phi3)", o->arch ? o->arch : "");
        return -1;
    }
    if (o->dim <= 0 || o->heads <= 0 || kv_heads <= 0 || o->layers <= 0 || o->ctx <= 0 || o->ff < 0 ||
        o->dim % o->heads || o->heads % kv_heads || (o->dim / o->heads) % 2) {
        snprintf(err, errlen, "dim must split into an even head size, heads into kv-heads");
        return -1;
    }
    if (!o->vocab_from && (o->vocab < NS_MKMODEL_MIN_VOCAB || o->vocab > (1 << 22))) {
        snprintf(err, errlen, "vocab must be between %d and %d", NS_MKMODEL_MIN_VOCAB, 1 << 22);
        return -1;
    }
    if (!ns_quantize_supported(o->type)) {
        snprintf(err, errlen, "weight type %s cannot be written", ns_type_name(o->type));
        return -1;
    }
    ns_gguf_writer *w = ns_gguf_writer_new();
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int rc = write_model(w, o, out_path, err, errlen);
    ns_gguf_writer_free(w);
    return rc;
}

/* ---- the demo model ---- */

/* llama-shaped, ~2.5 MB in Q8_0, written in well under a second. */
static void demo_spec(ns_mkmodel_spec *s) {
    ns_mkmodel_spec_init(s);
    s->dim = 256;
    s->layers = 2;
    s->heads = 8;
    s->vocab = 1024;
    s->ctx = 4096;
    s->type = NS_TYPE_Q8_0;
    s->seed = 20240601;
}

int ns_demo_model_ensure(ns_store *st, char *err, size_t errlen) {
    ns_model_ref ref;
    char rerr[256];
    if (ns_store_resolve(st, "demo", &ref, rerr, sizeof rerr) == 0) {
        ns_model_ref_clear(&ref);
        return 0;
    }
    char tmp[4096];
    if (ns_store_temp_path(st, tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "cannot create the demo model: no temporary file in %s", ns_store_dir(st));
        return -1;
    }
    ns_mkmodel_spec spec;
    demo_spec(&spec);
    char werr[512];
    if (ns_mkmodel_write(&spec, tmp, werr, sizeof werr) != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot create the demo model: %s", werr);
        return -1;
    }
    if (ns_store_import(st, NS_DEMO_MODEL_NAME, tmp, false, NULL, NULL, NULL, werr, sizeof werr) != 0) {
        unlink(tmp);
        snprintf(err, errlen, "cannot create the demo model: %s", werr);
        return -1;
    }
    ns_log_info("server", "created demo model 'demo' (random weights, for trying the API)", "model=%s",
                NS_DEMO_MODEL_NAME);
    return 1;
}
