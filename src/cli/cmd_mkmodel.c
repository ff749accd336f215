/* nstack mkmodel: a random-weight GGUF of a chosen architecture and shape,
 * for tests and benchmarks. The vocabulary is copied from another GGUF
 * (--vocab-from) or made up: byte tokens plus numbered pieces. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "engine/quantize.h"
#include "nstack/gguf.h"

typedef struct {
    const char *out, *arch, *vocab_from;
    long long dim, layers, heads, kv_heads, ff, vocab, ctx, seed;
    ns_type type;
    bool tied;
} mk_opts;

static void mk_usage(FILE *f) {
    fprintf(f,
            "usage: nstack mkmodel OUT.gguf [options]\n"
            "  --arch A         llama (default), qwen2 or phi3\n"
            "  --dim N          embedding size (default 256)\n"
            "  --layers N       blocks (default 2)\n"
            "  --heads N        attention heads (default 8)\n"
            "  --kv-heads N     key/value heads (default: heads)\n"
            "  --ff N           feed-forward size (default 4*dim rounded)\n"
            "  --vocab N        vocabulary size of the made-up vocabulary (default 1024)\n"
            "  --vocab-from F   copy the tokenizer of GGUF file F instead\n"
            "  --ctx N          training context length (default 2048)\n"
            "  --type T         weight type: f32 (default), f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,\n"
            "                   q2_k, q3_k, q4_k, q5_k, q6_k (every matrix; mixes such as q4_k_m: nstack quantize)\n"
            "  --tied           no output.weight: the token embedding is reused\n"
            "  --seed S         random seed (default 1)\n"
            "Example, a llama-shaped 1.1B model: --dim 2048 --layers 16 --heads 32 --kv-heads 8 --ff 5632 --vocab 32000\n");
}

static uint64_t rng_state;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rng_uniform(void) { return (float)((rng_next() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

static int parse_type(const char *s, ns_type *t) {
    static const struct { const char *name; ns_type type; } types[] = {
        {"f32", NS_TYPE_F32}, {"f16", NS_TYPE_F16}, {"bf16", NS_TYPE_BF16}, {"q8_0", NS_TYPE_Q8_0},
        {"q4_0", NS_TYPE_Q4_0}, {"q4_1", NS_TYPE_Q4_1}, {"q5_0", NS_TYPE_Q5_0}, {"q5_1", NS_TYPE_Q5_1},
        {"q2_k", NS_TYPE_Q2_K}, {"q3_k", NS_TYPE_Q3_K}, {"q4_k", NS_TYPE_Q4_K}, {"q5_k", NS_TYPE_Q5_K},
        {"q6_k", NS_TYPE_Q6_K},
    };
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(s, types[i].name) == 0) {
            *t = types[i].type;
            return ns_quantize_supported(*t) ? 0 : -1;
        }
    return -1;
}

/* A rows x cols matrix (cols = ne0) of uniform values in +-scale, encoded as type. */
static int add_matrix(ns_gguf_writer *w, const char *name, ns_type type, int64_t ne0, int64_t ne1, float scale) {
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
    for (int64_t i = 0; i < ne0 * ne1; i++) tmp[i] = rng_uniform() * scale;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    ns_quantize_rows(type, tmp, data, ne1, ne0, cpus > 0 ? (int)(cpus < 64 ? cpus : 64) : 1);
    int64_t ne[2] = {ne0, ne1};
    int rc = ns_gguf_w_tensor(w, name, type, ne1 == 1 ? 1 : 2, ne, data);
    free(data);
    free(tmp);
    return rc;
}

static int add_vector(ns_gguf_writer *w, const char *name, int64_t n, float value, float jitter) {
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return -1;
    for (int64_t i = 0; i < n; i++) v[i] = value + jitter * rng_uniform();
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
enum { MADE_UP_BASE = 3 + 256 + 1 + 1 + 10 + 1, MADE_UP_MIN = MADE_UP_BASE + 10 };

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
static int copy_vocab(ns_gguf_writer *w, const char *path) {
    char err[512];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) {
        fprintf(stderr, "nstack: %s\n", err);
        return -1;
    }
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
            return -1;
        }
    }
    ns_gguf_close(g);
    if (n_vocab <= 0) fprintf(stderr, "nstack: %s has no tokenizer.ggml.tokens\n", path);
    return n_vocab;
}

int cmd_mkmodel(int argc, char **argv) {
    mk_opts o = {NULL, "llama", NULL, 256, 2, 8, 0, 0, 1024, 2048, 1, NS_TYPE_F32, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long long *target = NULL, lo = 1, hi = 1 << 20;
        if (strcmp(a, "--dim") == 0) target = &o.dim;
        else if (strcmp(a, "--layers") == 0) target = &o.layers, hi = 512;
        else if (strcmp(a, "--heads") == 0) target = &o.heads, hi = 1024;
        else if (strcmp(a, "--kv-heads") == 0) target = &o.kv_heads, hi = 1024;
        else if (strcmp(a, "--ff") == 0) target = &o.ff;
        else if (strcmp(a, "--vocab") == 0) target = &o.vocab, lo = MADE_UP_MIN, hi = 1 << 22;
        else if (strcmp(a, "--ctx") == 0) target = &o.ctx, hi = 1 << 24;
        else if (strcmp(a, "--seed") == 0) target = &o.seed, lo = 0, hi = INT64_MAX;
        if (target) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, lo, hi, target)) goto bad;
        } else if (strcmp(a, "--arch") == 0) {
            if (!(v = cli_value(argc, argv, &i))) goto bad;
            if (strcmp(v, "llama") && strcmp(v, "qwen2") && strcmp(v, "phi3")) goto bad;
            o.arch = v;
        } else if (strcmp(a, "--type") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || parse_type(v, &o.type) != 0) goto bad;
        } else if (strcmp(a, "--vocab-from") == 0) {
            if (!(o.vocab_from = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--tied") == 0) {
            o.tied = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            mk_usage(stdout);
            return NS_EXIT_OK;
        } else if (!o.out && a[0] != '-') {
            o.out = a;
        } else {
            fprintf(stderr, "nstack mkmodel: unexpected argument '%s'\n", a);
            return NS_EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "nstack mkmodel: invalid value for %s\n", a);
        return NS_EXIT_USAGE;
    }
    if (!o.out) {
        mk_usage(stderr);
        return NS_EXIT_USAGE;
    }
    if (o.kv_heads == 0) o.kv_heads = o.heads;
    if (o.ff == 0) o.ff = (o.dim * 8 / 3 + 255) / 256 * 256;
    if (o.dim % o.heads || o.heads % o.kv_heads || (o.dim / o.heads) % 2) {
        fprintf(stderr, "nstack mkmodel: dim must split into an even head size, heads into kv-heads\n");
        return NS_EXIT_USAGE;
    }
    rng_state = (uint64_t)o.seed;

    ns_gguf_writer *w = ns_gguf_writer_new();
    if (!w) return NS_EXIT_FAIL;
    int rc = NS_EXIT_FAIL;
    const char *arch = o.arch;
    char key[128];
#define AK(s) (snprintf(key, sizeof key, "%s.%s", arch, s), key)
    int n_vocab = o.vocab_from ? copy_vocab(w, o.vocab_from) : (made_up_vocab(w, (int)o.vocab) ? -1 : (int)o.vocab);
    if (n_vocab <= 0) goto out;
    const int64_t d = o.dim, hd = o.dim / o.heads, dq = o.dim, dkv = o.kv_heads * hd, ff = o.ff;
    bool neox = strcmp(arch, "llama") != 0;
    if (ns_gguf_w_str(w, "general.architecture", arch) || ns_gguf_w_str(w, "general.name", "nstack mkmodel") ||
        ns_gguf_w_u32(w, "general.alignment", 32) || ns_gguf_w_u32(w, AK("context_length"), (uint32_t)o.ctx) ||
        ns_gguf_w_u32(w, AK("embedding_length"), (uint32_t)d) || ns_gguf_w_u32(w, AK("block_count"), (uint32_t)o.layers) ||
        ns_gguf_w_u32(w, AK("feed_forward_length"), (uint32_t)ff) ||
        ns_gguf_w_u32(w, AK("attention.head_count"), (uint32_t)o.heads) ||
        ns_gguf_w_u32(w, AK("attention.head_count_kv"), (uint32_t)o.kv_heads) ||
        ns_gguf_w_f32(w, AK("attention.layer_norm_rms_epsilon"), 1e-5f) ||
        ns_gguf_w_f32(w, AK("rope.freq_base"), neox && strcmp(arch, "qwen2") == 0 ? 1e6f : 10000.0f) ||
        ns_gguf_w_u32(w, AK("rope.dimension_count"), (uint32_t)hd))
        goto out;
    if (strcmp(arch, "phi3") == 0 && ns_gguf_w_u32(w, AK("attention.sliding_window"), (uint32_t)o.ctx)) goto out;
#undef AK
    /* weights ~ U(-a, a) with a = 1/sqrt(fan-in) keeps activations near unit scale */
    const float a_d = 1.0f / sqrtf((float)d), a_ff = 1.0f / sqrtf((float)ff);
    if (add_matrix(w, "token_embd.weight", o.type, d, n_vocab, 1.0f) ||
        add_vector(w, "output_norm.weight", d, 1.0f, 0.1f) ||
        (!o.tied && add_matrix(w, "output.weight", o.type, d, n_vocab, a_d)))
        goto out;
    for (long long il = 0; il < o.layers; il++) {
        char n[96];
#define NAME(s) (snprintf(n, sizeof n, "blk.%lld.%s", il, s), n)
        if (add_vector(w, NAME("attn_norm.weight"), d, 1.0f, 0.1f) || add_vector(w, NAME("ffn_norm.weight"), d, 1.0f, 0.1f))
            goto out;
        if (strcmp(arch, "phi3") == 0) {
            if (add_matrix(w, NAME("attn_qkv.weight"), o.type, d, dq + 2 * dkv, a_d) ||
                add_matrix(w, NAME("ffn_up.weight"), o.type, d, 2 * ff, a_d))
                goto out;
        } else {
            if (add_matrix(w, NAME("attn_q.weight"), o.type, d, dq, a_d) ||
                add_matrix(w, NAME("attn_k.weight"), o.type, d, dkv, a_d) ||
                add_matrix(w, NAME("attn_v.weight"), o.type, d, dkv, a_d) ||
                add_matrix(w, NAME("ffn_gate.weight"), o.type, d, ff, a_d) ||
                add_matrix(w, NAME("ffn_up.weight"), o.type, d, ff, a_d))
                goto out;
            if (strcmp(arch, "qwen2") == 0 &&
                (add_vector(w, NAME("attn_q.bias"), dq, 0.0f, 0.1f) || add_vector(w, NAME("attn_k.bias"), dkv, 0.0f, 0.1f) ||
                 add_vector(w, NAME("attn_v.bias"), dkv, 0.0f, 0.1f)))
                goto out;
        }
        if (add_matrix(w, NAME("attn_output.weight"), o.type, dq, d, a_d) ||
            add_matrix(w, NAME("ffn_down.weight"), o.type, ff, d, a_ff))
            goto out;
#undef NAME
    }
    char err[512];
    if (ns_gguf_w_to_file(w, o.out, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    rc = NS_EXIT_OK;
out:
    if (rc != NS_EXIT_OK) fprintf(stderr, "nstack mkmodel: failed to build %s\n", o.out);
    ns_gguf_writer_free(w);
    return rc;
}
