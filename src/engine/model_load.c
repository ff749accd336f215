/* Reads hyperparameters and binds weight tensors for each architecture,
 * checking every shape against the hyperparameters before use. */
#include "model_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

const char *ns_arch_name(ns_arch a) {
    switch (a) {
    case NS_ARCH_LLAMA: return "llama";
    case NS_ARCH_QWEN2: return "qwen2";
    case NS_ARCH_PHI3: return "phi3";
    }
    return "unknown";
}

typedef struct {
    const ns_gguf *g;
    const char *arch;
    const char *path;
    char *err;
    size_t errlen;
} loader;

static bool arch_u32(loader *L, const char *suffix, uint32_t *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    return ns_gguf_get_u32(L->g, key, out);
}

static bool arch_f32(loader *L, const char *suffix, float *out) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", L->arch, suffix);
    return ns_gguf_get_f32(L->g, key, out);
}

static int need_u32(loader *L, const char *suffix, uint32_t lo, uint32_t hi, int *out) {
    uint32_t v;
    if (!arch_u32(L, suffix, &v))
        return fail(L->err, L->errlen, "%s: missing or non-integer metadata %s.%s", L->path, L->arch, suffix);
    if (v < lo || v > hi)
        return fail(L->err, L->errlen, "%s: metadata %s.%s = %u is outside [%u, %u]", L->path, L->arch,
                    suffix, v, lo, hi);
    *out = (int)v;
    return 0;
}

static int read_hparams(loader *L, ns_hparams *hp) {
    uint32_t v;
    if (need_u32(L, "embedding_length", 1, 1 << 16, &hp->n_embd) ||
        need_u32(L, "block_count", 1, 1024, &hp->n_layer) ||
        need_u32(L, "feed_forward_length", 1, 1 << 20, &hp->n_ff) ||
        need_u32(L, "attention.head_count", 1, 1024, &hp->n_head))
        return -1;
    /* a per-layer array of head counts fails the integer getter: say so */
    hp->n_head_kv = hp->n_head;
    char key[128];
    snprintf(key, sizeof key, "%s.attention.head_count_kv", L->arch);
    if (ns_gguf_find(L->g, key) && need_u32(L, "attention.head_count_kv", 1, (uint32_t)hp->n_head, &hp->n_head_kv))
        return -1;
    if (hp->n_head % hp->n_head_kv != 0)
        return fail(L->err, L->errlen, "%s: head_count %d is not a multiple of head_count_kv %d", L->path,
                    hp->n_head, hp->n_head_kv);
    if (hp->n_embd % hp->n_head != 0)
        return fail(L->err, L->errlen, "%s: embedding_length %d is not a multiple of head_count %d", L->path,
                    hp->n_embd, hp->n_head);
    hp->head_dim = hp->n_embd / hp->n_head;
    if (arch_u32(L, "attention.key_length", &v) && (int)v != hp->head_dim)
        return fail(L->err, L->errlen, "%s: attention.key_length %u differs from embedding/heads %d (not supported)",
                    L->path, v, hp->head_dim);
    hp->n_ctx_train = 2048;
    if (arch_u32(L, "context_length", &v) && v > 0) hp->n_ctx_train = v > (1u << 24) ? (1 << 24) : (int)v;
    hp->n_rot = hp->head_dim;
    if (arch_u32(L, "rope.dimension_count", &v)) {
        if (v == 0 || (int)v > hp->head_dim || v % 2)
            return fail(L->err, L->errlen, "%s: rope.dimension_count %u must be even and at most the head size %d",
                        L->path, v, hp->head_dim);
        hp->n_rot = (int)v;
    }
    hp->rope_base = 10000.0f;
    float f;
    if (arch_f32(L, "rope.freq_base", &f)) {
        if (!(f > 0.0f) || !isfinite(f)) return fail(L->err, L->errlen, "%s: rope.freq_base %g is invalid", L->path, f);
        hp->rope_base = f;
    }
    hp->rope_freq_scale = 1.0f;
    snprintf(key, sizeof key, "%s.rope.scaling.type", L->arch);
    char *stype = ns_gguf_get_str(L->g, key);
    float factor = 0.0f;
    bool have_factor = arch_f32(L, "rope.scaling.factor", &factor);
    if (stype && strcmp(stype, "linear") == 0 && have_factor && factor > 0.0f) {
        hp->rope_freq_scale = 1.0f / factor;
    } else if (stype && strcmp(stype, "none") != 0 && strcmp(stype, "linear") != 0 && strcmp(stype, "longrope") != 0 &&
               strcmp(stype, "su") != 0) {
        int rc = fail(L->err, L->errlen, "%s: rope.scaling.type '%s' is not supported", L->path, stype);
        free(stype);
        return rc;
    }
    bool type_named = stype != NULL;
    free(stype);
    /* older files give a linear factor without naming the type */
    if (!type_named && arch_f32(L, "rope.scale_linear", &f) && f > 0.0f) hp->rope_freq_scale = 1.0f / f;
    hp->rope_attn_factor = 1.0f;
    if (arch_f32(L, "rope.scaling.attn_factor", &f) && f > 0.0f) hp->rope_attn_factor = f;
    hp->n_ctx_orig = hp->n_ctx_train;
    if (arch_u32(L, "rope.scaling.original_context_length", &v) && v > 0) hp->n_ctx_orig = (int)v;
    hp->n_swa = 0;
    if (arch_u32(L, "attention.sliding_window", &v)) hp->n_swa = (int)v;
    hp->rms_eps = 1e-5f;
    if (arch_f32(L, "attention.layer_norm_rms_epsilon", &f)) {
        if (!(f > 0.0f) || f > 1.0f) return fail(L->err, L->errlen, "%s: layer_norm_rms_epsilon %g is invalid", L->path, f);
        hp->rms_eps = f;
    }
    hp->rope_neox = hp->arch != NS_ARCH_LLAMA;
    return 0;
}

/* Finds a tensor and checks its type and shape: ne0 x ne1 (ne1 = 1 for vectors). */
static const ns_gguf_tensor *find_checked(loader *L, const char *name, int64_t ne0, int64_t ne1, bool required) {
    const ns_gguf_tensor *t = ns_gguf_find_tensor(L->g, name);
    if (!t) {
        if (required) fail(L->err, L->errlen, "%s: tensor '%s' is missing", L->path, name);
        return NULL;
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        fail(L->err, L->errlen, "%s: tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", L->path,
             name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
             (long long)ne0, (long long)ne1);
        return NULL;
    }
    if (!ns_kernels((ns_type)t->type)) {
        fail(L->err, L->errlen, "%s: tensor '%s' has type %s, which the engine does not support yet", L->path, name,
             ns_type_name(t->type));
        return NULL;
    }
    return t;
}

/* 0 ok, 1 absent (when optional), -1 error */
static int bind_weight(loader *L, const char *name, int64_t ne0, int64_t ne1, bool required, ns_weight *w) {
    memset(w, 0, sizeof *w);
    const ns_gguf_tensor *t = find_checked(L, name, ne0, ne1, required);
    if (!t) return (!required && !ns_gguf_find_tensor(L->g, name)) ? 1 : -1;
    w->data = t->data;
    w->type = (ns_type)t->type;
    w->ne0 = ne0;
    w->ne1 = ne1;
    w->row_bytes = ns_row_size(w->type, ne0);
    return 0;
}

/* Small vectors (norms, biases, rope factors) are kept as F32 copies. */
static int bind_vector(loader *L, const char *name, int64_t n, bool required, float **out) {
    *out = NULL;
    ns_weight w;
    int rc = bind_weight(L, name, n, 1, required, &w);
    if (rc != 0) return rc;
    if (ns_type_get(w.type)->block_size != 1 && n % ns_type_get(w.type)->block_size) return -1;
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return fail(L->err, L->errlen, "%s: out of memory", L->path);
    ns_kernels(w.type)->to_float(w.data, v, n);
    *out = v;
    return 0;
}

static int bind_layer(loader *L, const ns_hparams *hp, int il, ns_layer *ly) {
    char name[96];
    const int64_t d = hp->n_embd, dq = (int64_t)hp->n_head * hp->head_dim,
                  dkv = (int64_t)hp->n_head_kv * hp->head_dim, ff = hp->n_ff;
#define NAME(s) (snprintf(name, sizeof name, "blk.%d.%s", il, s), name)
    if (bind_vector(L, NAME("attn_norm.weight"), d, true, &ly->attn_norm) ||
        bind_vector(L, NAME("ffn_norm.weight"), d, true, &ly->ffn_norm))
        return -1;
    if (hp->arch == NS_ARCH_PHI3) {
        if (bind_weight(L, NAME("attn_qkv.weight"), d, dq + 2 * dkv, true, &ly->wqkv) ||
            bind_weight(L, NAME("ffn_up.weight"), d, 2 * ff, true, &ly->w_up))
            return -1;
    } else {
        if (bind_weight(L, NAME("attn_q.weight"), d, dq, true, &ly->wq) ||
            bind_weight(L, NAME("attn_k.weight"), d, dkv, true, &ly->wk) ||
            bind_weight(L, NAME("attn_v.weight"), d, dkv, true, &ly->wv) ||
            bind_weight(L, NAME("ffn_gate.weight"), d, ff, true, &ly->w_gate) ||
            bind_weight(L, NAME("ffn_up.weight"), d, ff, true, &ly->w_up))
            return -1;
        bool biases_required = hp->arch == NS_ARCH_QWEN2;
        if (bind_vector(L, NAME("attn_q.bias"), dq, biases_required, &ly->bq) < 0 ||
            bind_vector(L, NAME("attn_k.bias"), dkv, biases_required, &ly->bk) < 0 ||
            bind_vector(L, NAME("attn_v.bias"), dkv, biases_required, &ly->bv) < 0)
            return -1;
    }
    if (bind_weight(L, NAME("attn_output.weight"), dq, d, true, &ly->wo) ||
        bind_weight(L, NAME("ffn_down.weight"), ff, d, true, &ly->w_down))
        return -1;
#undef NAME
    return 0;
}

void ns_model_free(ns_model *m) {
    if (!m) return;
    if (m->layers) {
        for (int i = 0; i < m->hp.n_layer; i++) {
            ns_layer *ly = &m->layers[i];
            free(ly->attn_norm);
            free(ly->ffn_norm);
            free(ly->bq);
            free(ly->bk);
            free(ly->bv);
        }
        free(m->layers);
    }
    free(m->output_norm);
    free(m->rope_factors_long);
    free(m->rope_factors_short);
    free(m->rope_freqs);
    ns_vocab_free(m->vocab);
    ns_gguf_close(m->gguf);
    free(m);
}

ns_model *ns_model_load(const char *path, char *err, size_t errlen) {
    return ns_model_load_ex(path, NS_GGUF_MMAP, err, errlen);
}

ns_model *ns_model_load_ex(const char *path, ns_gguf_load how, char *err, size_t errlen) {
    ns_model *m = calloc(1, sizeof *m);
    if (!m) {
        fail(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    m->gguf = ns_gguf_open_ex(path, how, err, errlen);
    if (!m->gguf) goto error;
    loader L = {m->gguf, NULL, path, err, errlen};
    char *arch = ns_gguf_get_str(m->gguf, "general.architecture");
    if (!arch) {
        fail(err, errlen, "%s: general.architecture is missing", path);
        goto error;
    }
    if (strcmp(arch, "llama") == 0) m->hp.arch = NS_ARCH_LLAMA;
    else if (strcmp(arch, "qwen2") == 0) m->hp.arch = NS_ARCH_QWEN2;
    else if (strcmp(arch, "phi3") == 0) m->hp.arch = NS_ARCH_PHI3;
    else {
        fail(err, errlen, "%s: architecture '%s' is not supported (supported: llama, qwen2, phi3)", path, arch);
        free(arch);
        goto error;
    }
    free(arch);
    L.arch = ns_arch_name(m->hp.arch);
    ns_hparams *hp = &m->hp;
    if (read_hparams(&L, hp) != 0) goto error;

    const ns_gguf_tensor *emb = ns_gguf_find_tensor(m->gguf, "token_embd.weight");
    if (!emb) {
        fail(err, errlen, "%s: tensor 'token_embd.weight' is missing", path);
        goto error;
    }
    if (emb->ne[1] < 1 || emb->ne[1] > (1 << 24)) {
        fail(err, errlen, "%s: token_embd.weight has %lld rows", path, (long long)emb->ne[1]);
        goto error;
    }
    hp->n_vocab = (int)emb->ne[1];
    if (bind_weight(&L, "token_embd.weight", hp->n_embd, hp->n_vocab, true, &m->tok_embd) ||
        bind_vector(&L, "output_norm.weight", hp->n_embd, true, &m->output_norm))
        goto error;
    int rc = bind_weight(&L, "output.weight", hp->n_embd, hp->n_vocab, false, &m->output);
    if (rc < 0) goto error;
    if (rc == 1) m->output = m->tok_embd; /* tied embeddings */

    if (bind_vector(&L, "rope_factors_long.weight", hp->n_rot / 2, false, &m->rope_factors_long) < 0 ||
        bind_vector(&L, "rope_factors_short.weight", hp->n_rot / 2, false, &m->rope_factors_short) < 0 ||
        bind_vector(&L, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs) < 0)
        goto error;

    m->layers = calloc((size_t)hp->n_layer, sizeof *m->layers);
    if (!m->layers) {
        fail(err, errlen, "%s: out of memory", path);
        goto error;
    }
    for (int il = 0; il < hp->n_layer; il++)
        if (bind_layer(&L, hp, il, &m->layers[il]) != 0) goto error;

    m->vocab = ns_vocab_load(m->gguf, m->vocab_err, sizeof m->vocab_err);
    if (m->vocab && ns_vocab_size(m->vocab) != hp->n_vocab) {
        snprintf(m->vocab_err, sizeof m->vocab_err, "vocabulary has %d tokens but the model %d",
                 ns_vocab_size(m->vocab), hp->n_vocab);
        ns_vocab_free(m->vocab);
        m->vocab = NULL;
    }
    return m;
error:
    ns_model_free(m);
    return NULL;
}

const ns_hparams *ns_model_hparams(const ns_model *m) { return &m->hp; }
const ns_vocab *ns_model_vocab(const ns_model *m) { return m->vocab; }
const char *ns_model_vocab_error(const ns_model *m) { return m->vocab ? NULL : m->vocab_err; }
const ns_gguf *ns_model_gguf(const ns_model *m) { return m->gguf; }
