/* `nstack quantize`'s file conversion: per-tensor types chosen as the
 * reference quantize tool chooses them for a file type, metadata copied,
 * tensors converted one at a time and streamed to the output.
 *
 * The rules (reference tool, no importance matrix):
 *   - only tensors whose name ends in "weight", of two or more dimensions,
 *     and not norms, MoE router, position / token-type embeddings, Mamba
 *     conv, RWKV time-mix or T5 relative-bias weights, are converted; every
 *     other tensor is copied as it is;
 *   - F32 / F16 / BF16 file types give every converted tensor that type;
 *   - quantized file types start from the base type and then:
 *       output.weight (or token_embd.weight when the model ties it as the
 *       output): Q6_K, or Q8_0 for Falcon / rows not a multiple of 256,
 *       unless the base type is Q8_0 already;
 *       attn_v.weight: Q2_K -> Q4_K when n_head/n_head_kv >= 4 else Q3_K;
 *       Q3_K_M -> Q5_K for the first two, Q4_K after; Q3_K_L -> Q5_K;
 *       Q4_K_M / Q5_K_M -> Q6_K in the "more bits" layers; Q4_K_S -> Q5_K
 *       for the first four; 70B-class models Q3_K/Q4_K -> Q5_K; 8 experts:
 *       Q8_0;
 *       attn_k.weight: 8 experts -> Q8_0;
 *       ffn_down: Q2_K -> Q3_K; Q3_K_M -> Q5_K in the first 1/16 of the
 *       layers, Q4_K after (Falcon: Q3_K outside the more-bits layers);
 *       Q3_K_L -> Q5_K (Falcon Q4_K); Q4_K_M / Q5_K_M -> Q6_K in the
 *       more-bits layers (Falcon Q4_K_M: Q6_K, Q5_K, Q4_K); Q4_K_S -> Q5_K
 *       in the first 1/8;
 *       attn_output.weight: Q2_K -> Q3_K, Q3_K_M -> Q4_K, Q3_K_L -> Q5_K
 *       (8 experts: Q5_K for the low mixes; Falcon: Q3_K_L -> Q4_K);
 *       attn_qkv.weight: Q3_K_M/L -> Q4_K, Q4_K_M -> Q5_K, Q5_K_M -> Q6_K;
 *     where the "more bits" layers of n are i < n/8, i >= 7n/8 and every
 *     third layer in between ((i - n/8) % 3 == 2), and a layer index is the
 *     count of such tensors seen so far in output order (or, with experts,
 *     the number in the name);
 *   - a type whose block does not divide the row falls back (Q4_K -> Q5_0,
 *     Q5_K -> Q5_1, Q6_K -> Q8_0, Q2_K/Q3_K -> Q4_0 where the reference
 *     uses IQ4_NL, which this engine does not run), then F16;
 *   - a tensor already of the chosen type is copied unchanged.
 * Tensors are written ordered by layer number (tensors outside the blk.N.
 * layers first), then by name, as the reference tool does. */
#include "quantize.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "quant.h"

#define QUANT_VERSION 2u /* general.quantization_version of today's block layouts */

/* ---- file types --------------------------------------------------------------- */

static const struct {
    const char *name;
    ns_ftype ft;
    ns_type base;
} ftypes[] = {
    {"F32", NS_FTYPE_ALL_F32, NS_TYPE_F32},     {"F16", NS_FTYPE_F16, NS_TYPE_F16},
    {"BF16", NS_FTYPE_BF16, NS_TYPE_BF16},      {"Q8_0", NS_FTYPE_Q8_0, NS_TYPE_Q8_0},
    {"Q4_0", NS_FTYPE_Q4_0, NS_TYPE_Q4_0},      {"Q4_1", NS_FTYPE_Q4_1, NS_TYPE_Q4_1},
    {"Q5_0", NS_FTYPE_Q5_0, NS_TYPE_Q5_0},      {"Q5_1", NS_FTYPE_Q5_1, NS_TYPE_Q5_1},
    {"Q2_K", NS_FTYPE_Q2_K, NS_TYPE_Q2_K},      {"Q3_K_S", NS_FTYPE_Q3_K_S, NS_TYPE_Q3_K},
    {"Q3_K_M", NS_FTYPE_Q3_K_M, NS_TYPE_Q3_K},  {"Q3_K_L", NS_FTYPE_Q3_K_L, NS_TYPE_Q3_K},
    {"Q4_K_S", NS_FTYPE_Q4_K_S, NS_TYPE_Q4_K},  {"Q4_K_M", NS_FTYPE_Q4_K_M, NS_TYPE_Q4_K},
    {"Q5_K_S", NS_FTYPE_Q5_K_S, NS_TYPE_Q5_K},  {"Q5_K_M", NS_FTYPE_Q5_K_M, NS_TYPE_Q5_K},
    {"Q6_K", NS_FTYPE_Q6_K, NS_TYPE_Q6_K},
};
enum { N_FTYPES = sizeof ftypes / sizeof ftypes[0] };

/* The reference tool's short aliases. */
static const struct {
    const char *name;
    ns_ftype ft;
} aliases[] = {{"Q3_K", NS_FTYPE_Q3_K_M}, {"Q4_K", NS_FTYPE_Q4_K_M}, {"Q5_K", NS_FTYPE_Q5_K_M}};

int ns_ftype_parse(const char *name, ns_ftype *out) {
    if (!name || !*name) return -1;
    char up[16];
    size_t n = strlen(name);
    if (n >= sizeof up) return -1;
    for (size_t i = 0; i <= n; i++) up[i] = (char)toupper((unsigned char)name[i]);
    for (int i = 0; i < N_FTYPES; i++)
        if (strcmp(up, ftypes[i].name) == 0) return *out = ftypes[i].ft, 0;
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++)
        if (strcmp(up, aliases[i].name) == 0) return *out = aliases[i].ft, 0;
    /* the file type's number, as the reference tool also takes it */
    char *end;
    errno = 0;
    long v = strtol(name, &end, 10);
    if (errno == 0 && *end == 0 && isdigit((unsigned char)name[0]))
        for (int i = 0; i < N_FTYPES; i++)
            if ((long)ftypes[i].ft == v) return *out = ftypes[i].ft, 0;
    return -1;
}

const char *ns_ftype_name(ns_ftype ft) {
    for (int i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ft == ft) return ftypes[i].name;
    return NULL;
}

ns_type ns_ftype_base_type(ns_ftype ft) {
    for (int i = 0; i < N_FTYPES; i++)
        if (ftypes[i].ft == ft) return ftypes[i].base;
    return NS_TYPE_COUNT;
}

const char *ns_ftype_list(void) {
    return "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k_s, q3_k_m, q3_k_l, q4_k_s, q4_k_m, "
           "q5_k_s, q5_k_m, q6_k (also q3_k, q4_k, q5_k for the _m mixes)";
}

/* ---- helpers -------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool is_float_type(uint32_t t) { return t == NS_TYPE_F32 || t == NS_TYPE_F16 || t == NS_TYPE_BF16; }

static bool has(const char *s, const char *sub) { return strstr(s, sub) != NULL; }

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A number of the model's hyperparameters: "<arch>.<key>", scalar or the
 * first element of a per-layer array; def when absent. */
static int64_t hparam(const ns_gguf *g, const char *arch, const char *key, int64_t def) {
    char k[256];
    snprintf(k, sizeof k, "%s.%s", arch, key);
    const ns_gguf_kv *kv = ns_gguf_find(g, k);
    if (!kv) return def;
    int64_t v;
    if (kv->type == NS_GGUF_ARRAY) return ns_gguf_arr_i64(kv, 0, &v) ? v : def;
    return ns_gguf_get_i64(g, k, &v) ? v : def;
}

/* ---- the plan --------------------------------------------------------------------- */

typedef struct {
    char arch[64];
    bool falcon, is_70b;
    int n_layer, n_gqa, n_expert;
    bool has_output;
    int n_attention_wv, i_attention_wv, i_ffn_down, i_ffn_gate, i_ffn_up;
} rules_state;

/* The reference's "more bits" layers. */
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

/* The layer a ffn tensor counts as: its position in output order, or for
 * MoE models the number in its name. */
static int layer_of(const rules_state *s, int counter, const char *name, char *err, size_t errlen) {
    if (s->n_expert <= 1) return counter;
    int il;
    if (sscanf(name, "blk.%d.", &il) != 1 || il < 0 || il >= s->n_layer) {
        set_err(err, errlen, "cannot tell the layer of tensor %s", name);
        return -1;
    }
    return il;
}

/* The type the reference tool picks for a converted tensor of a quantized
 * file type (before the fit check). -1 on error. */
static int rule_type(rules_state *s, ns_ftype ft, const char *name, int64_t ne0, ns_type *type, char *err,
                     size_t errlen) {
    ns_type t = *type;
    if (strcmp(name, "output.weight") == 0 || (!s->has_output && strcmp(name, "token_embd.weight") == 0)) {
        if (s->falcon || ne0 % NS_QK_K != 0) t = NS_TYPE_Q8_0;
        else if (t != NS_TYPE_Q8_0) t = NS_TYPE_Q6_K;
    } else if (strcmp(name, "token_embd.weight") == 0) {
        /* only the importance-matrix and ternary file types change it */
    } else if (has(name, "attn_v.weight")) {
        const int i = s->i_attention_wv;
        if (ft == NS_FTYPE_Q2_K) t = s->n_gqa >= 4 ? NS_TYPE_Q4_K : NS_TYPE_Q3_K;
        else if (ft == NS_FTYPE_Q3_K_M) t = i < 2 ? NS_TYPE_Q5_K : NS_TYPE_Q4_K;
        else if (ft == NS_FTYPE_Q3_K_L) t = NS_TYPE_Q5_K;
        else if ((ft == NS_FTYPE_Q4_K_M || ft == NS_FTYPE_Q5_K_M) && more_bits(i, s->n_attention_wv)) t = NS_TYPE_Q6_K;
        else if (ft == NS_FTYPE_Q4_K_S && i < 4) t = NS_TYPE_Q5_K;
        if (s->is_70b && (t == NS_TYPE_Q3_K || t == NS_TYPE_Q4_K)) t = NS_TYPE_Q5_K;
        if (s->n_expert == 8) t = NS_TYPE_Q8_0;
        s->i_attention_wv++;
    } else if (has(name, "attn_k.weight")) {
        if (s->n_expert == 8) t = NS_TYPE_Q8_0;
    } else if (has(name, "attn_q.weight")) {
        /* only importance-matrix file types change it */
    } else if (has(name, "ffn_down")) {
        const int il = layer_of(s, s->i_ffn_down, name, err, errlen), nl = s->n_layer;
        if (il < 0) return -1;
        if (ft == NS_FTYPE_Q2_K) t = NS_TYPE_Q3_K;
        else if (ft == NS_FTYPE_Q3_K_M)
            t = il < nl / 16 ? NS_TYPE_Q5_K : !s->falcon || more_bits(il, nl) ? NS_TYPE_Q4_K : NS_TYPE_Q3_K;
        else if (ft == NS_FTYPE_Q3_K_L) t = s->falcon ? NS_TYPE_Q4_K : NS_TYPE_Q5_K;
        else if (ft == NS_FTYPE_Q4_K_M) {
            if (s->falcon) t = il < nl / 16 ? NS_TYPE_Q6_K : more_bits(il, nl) ? NS_TYPE_Q5_K : NS_TYPE_Q4_K;
            else if (more_bits(il, nl)) t = NS_TYPE_Q6_K;
        } else if (ft == NS_FTYPE_Q5_K_M && more_bits(il, nl)) t = NS_TYPE_Q6_K;
        else if (ft == NS_FTYPE_Q4_K_S && !s->falcon && il < nl / 8) t = NS_TYPE_Q5_K;
        s->i_ffn_down++;
    } else if (has(name, "attn_output.weight")) {
        if (!s->falcon) {
            if (s->n_expert == 8) {
                if (ft == NS_FTYPE_Q2_K || ft == NS_FTYPE_Q3_K_S || ft == NS_FTYPE_Q3_K_M || ft == NS_FTYPE_Q4_K_S ||
                    ft == NS_FTYPE_Q4_K_M)
                    t = NS_TYPE_Q5_K;
            } else if (ft == NS_FTYPE_Q2_K) t = NS_TYPE_Q3_K;
            else if (ft == NS_FTYPE_Q3_K_M) t = NS_TYPE_Q4_K;
            else if (ft == NS_FTYPE_Q3_K_L) t = NS_TYPE_Q5_K;
        } else if (ft == NS_FTYPE_Q3_K_L) {
            t = NS_TYPE_Q4_K;
        }
    } else if (has(name, "attn_qkv.weight")) {
        if (ft == NS_FTYPE_Q3_K_M || ft == NS_FTYPE_Q3_K_L) t = NS_TYPE_Q4_K;
        else if (ft == NS_FTYPE_Q4_K_M) t = NS_TYPE_Q5_K;
        else if (ft == NS_FTYPE_Q5_K_M) t = NS_TYPE_Q6_K;
    } else if (has(name, "ffn_gate")) {
        if (layer_of(s, s->i_ffn_gate, name, err, errlen) < 0) return -1;
        s->i_ffn_gate++;
    } else if (has(name, "ffn_up")) {
        if (layer_of(s, s->i_ffn_up, name, err, errlen) < 0) return -1;
        s->i_ffn_up++;
    }
    *type = t;
    return 0;
}

/* Whether the reference tool converts this tensor at all. */
static bool convertible(const char *name, uint32_t n_dims) {
    static const char *const skip[] = {
        "_norm.weight",          "ffn_gate_inp.weight",       "ssm_conv1d.weight",       "time_mix_first.weight",
        "time_mix_w1.weight",    "time_mix_w2.weight",        "time_mix_decay_w1.weight", "time_mix_decay_w2.weight",
        "time_mix_lerp_fused.weight", "attn_rel_b.weight",
    };
    if (!ends_with(name, "weight") || n_dims < 2) return false;
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (has(name, skip[i])) return false;
    return strcmp(name, "position_embd.weight") != 0 && strcmp(name, "token_types.weight") != 0;
}

static int layer_key(const char *name) {
    int il;
    return sscanf(name, "blk.%d.", &il) == 1 ? il : -1;
}

static int cmp_order(const void *a, const void *b) {
    const ns_qplan_tensor *x = a, *y = b;
    int la = layer_key(x->name), lb = layer_key(y->name);
    if (la != lb) return la < lb ? -1 : 1;
    return strcmp(x->name, y->name);
}

void ns_quantize_plan_free(ns_qplan *plan) {
    if (!plan) return;
    for (size_t i = 0; i < plan->n; i++) free(plan->t[i].name);
    free(plan->t);
    memset(plan, 0, sizeof *plan);
}

int ns_quantize_plan(const ns_gguf *g, ns_ftype ft, ns_qplan *plan, char *err, size_t errlen) {
    memset(plan, 0, sizeof *plan);
    const ns_type base = ns_ftype_base_type(ft);
    if (base == NS_TYPE_COUNT) {
        set_err(err, errlen, "unknown file type %d", (int)ft);
        return -1;
    }
    if (g->version < 2) { /* metadata is copied as it lies in the file: v2/v3 layout */
        set_err(err, errlen, "GGUF version %u files are not supported", (unsigned)g->version);
        return -1;
    }
    int64_t split_count = 1;
    if (ns_gguf_get_i64(g, "split.count", &split_count) && split_count > 1) {
        set_err(err, errlen, "the file is part of a model split in %" PRId64 " files, which is not supported",
                split_count);
        return -1;
    }

    rules_state s = {0};
    char *arch = ns_gguf_get_str(g, "general.architecture");
    snprintf(s.arch, sizeof s.arch, "%s", arch ? arch : "");
    free(arch);
    s.falcon = strcmp(s.arch, "falcon") == 0;
    s.n_layer = (int)hparam(g, s.arch, "block_count", 0);
    const int64_t n_head = hparam(g, s.arch, "attention.head_count", 0);
    const int64_t n_head_kv = hparam(g, s.arch, "attention.head_count_kv", n_head);
    s.n_gqa = n_head_kv > 0 ? (int)(n_head / n_head_kv) : 0;
    s.n_expert = (int)hparam(g, s.arch, "expert_count", 0);
    /* the reference's 70B size class, which gets more bits in attn_v */
    s.is_70b = s.n_layer == 80 && ((strcmp(s.arch, "llama") == 0 && n_head != n_head_kv) ||
                                   strcmp(s.arch, "qwen2") == 0 || strcmp(s.arch, "deci") == 0);

    plan->ftype = ft;
    plan->n = (size_t)g->n_tensors;
    plan->t = calloc(plan->n ? plan->n : 1, sizeof *plan->t);
    if (!plan->t) goto oom;
    for (size_t i = 0; i < plan->n; i++) {
        const ns_gguf_tensor *src = &g->tensors[i];
        ns_qplan_tensor *e = &plan->t[i];
        e->src = src;
        e->name = strndup(src->name.ptr, (size_t)src->name.len);
        if (!e->name) goto oom;
        if (strlen(e->name) != src->name.len) {
            set_err(err, errlen, "tensor %zu: name holds a NUL byte", i);
            goto fail;
        }
        e->n_dims = 1;
        for (uint32_t d = 0; d < NS_GGUF_MAX_DIMS; d++)
            if (src->ne[d] > 1) e->n_dims = d + 1;
        if (strcmp(e->name, "output.weight") == 0) s.has_output = true;
        if (has(e->name, "attn_v.weight") || has(e->name, "attn_qkv.weight") || has(e->name, "attn_kv_b.weight"))
            s.n_attention_wv++;
    }
    qsort(plan->t, plan->n, sizeof *plan->t, cmp_order);

    for (size_t i = 0; i < plan->n; i++) {
        ns_qplan_tensor *e = &plan->t[i];
        const uint32_t in_type = e->src->type;
        e->type = (ns_type)in_type;
        if (!convertible(e->name, e->n_dims)) continue;
        ns_type t = base;
        if (!is_float_type(base)) {
            if (rule_type(&s, ft, e->name, e->src->ne[0], &t, err, errlen) != 0) goto fail;
            t = ns_quantize_fit_type(t, e->src->ne[0], &e->fallback);
            if (e->fallback) plan->n_fallback++;
        }
        if (t == (ns_type)in_type) continue;
        const ns_type_kernels *k = ns_kernels((ns_type)in_type);
        if (!k || !k->to_float) {
            set_err(err, errlen, "tensor %s: cannot convert from type %s", e->name, ns_type_name(in_type));
            goto fail;
        }
        e->type = t;
        e->convert = true;
        e->requant = !is_float_type(in_type);
        if (e->requant) plan->n_requant++;
    }
    return 0;
oom:
    set_err(err, errlen, "out of memory");
fail:
    ns_quantize_plan_free(plan);
    return -1;
}

/* ---- writing ------------------------------------------------------------------------- */

/* Serialized size of a metadata value (after its type field). */
static uint64_t kv_value_size(const ns_gguf_kv *kv) {
    static const uint8_t scalar[] = {
        [NS_GGUF_UINT8] = 1, [NS_GGUF_INT8] = 1, [NS_GGUF_UINT16] = 2, [NS_GGUF_INT16] = 2,
        [NS_GGUF_UINT32] = 4, [NS_GGUF_INT32] = 4, [NS_GGUF_FLOAT32] = 4, [NS_GGUF_BOOL] = 1,
        [NS_GGUF_UINT64] = 8, [NS_GGUF_INT64] = 8, [NS_GGUF_FLOAT64] = 8,
    };
    if (kv->type == NS_GGUF_STRING) return 8 + kv->v.str.len;
    if (kv->type != NS_GGUF_ARRAY) return kv->type < sizeof scalar ? scalar[kv->type] : 0;
    uint64_t n = 4 + 8;
    if (kv->arr_type == NS_GGUF_STRING) {
        for (uint64_t i = 0; i < kv->arr_n; i++) n += 8 + kv->arr_str[i].len;
    } else {
        n += kv->arr_n * (kv->arr_type < sizeof scalar ? scalar[kv->arr_type] : 0);
    }
    return n;
}

/* The bytes of a metadata pair as they lie in the input file (the key's
 * length field, the key, the type, the value): copied unchanged. */
static const uint8_t *kv_bytes(const ns_gguf *g, const ns_gguf_kv *kv, size_t *len) {
    const uint8_t *key = (const uint8_t *)kv->key.ptr;
    if (key < g->base + 8 || key > g->base + g->size) return NULL;
    uint64_t n = 8 + kv->key.len + 4 + kv_value_size(kv);
    const uint8_t *start = key - 8;
    if (n > (uint64_t)(g->base + g->size - start)) return NULL;
    *len = (size_t)n;
    return start;
}

static bool kv_key_is(const ns_gguf_kv *kv, const char *k) { return ns_gguf_str_eq(kv->key, k); }

/* Keys the output gets anew (set again after the copied ones, as the
 * reference does) or drops. */
static bool kv_replaced(const ns_gguf_kv *kv) {
    return kv_key_is(kv, "general.quantization_version") || kv_key_is(kv, "general.file_type") ||
           kv_key_is(kv, "split.no") || kv_key_is(kv, "split.count") || kv_key_is(kv, "split.tensors.count");
}

typedef struct {
    FILE *f;
    bool failed;
    uint64_t pos;
} out_file;

static void put(out_file *o, const void *p, size_t n) {
    if (o->failed || n == 0) return;
    if (fwrite(p, 1, n, o->f) != n) o->failed = true;
    o->pos += n;
}

static void put_u32(out_file *o, uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(o, b, 4);
}

static void put_u64(out_file *o, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    put(o, b, 8);
}

static void put_str(out_file *o, const char *s) {
    put_u64(o, strlen(s));
    put(o, s, strlen(s));
}

static void put_zeros(out_file *o, uint64_t n) {
    static const uint8_t z[256];
    while (n) {
        size_t k = n < sizeof z ? (size_t)n : sizeof z;
        put(o, z, k);
        n -= k;
    }
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static uint64_t n_rows(const ns_gguf_tensor *t) {
    uint64_t r = 1;
    for (int d = 1; d < NS_GGUF_MAX_DIMS; d++) r *= (uint64_t)t->ne[d];
    return r;
}

static uint64_t out_bytes(const ns_qplan_tensor *e) {
    return e->convert ? ns_row_size(e->type, e->src->ne[0]) * n_rows(e->src) : e->src->nbytes;
}

/* Converts one tensor into *buf (grown as needed). */
static int convert_tensor(const ns_qplan_tensor *e, int n_threads, float **f32, size_t *f32_cap, uint8_t **buf,
                          size_t *buf_cap) {
    const ns_gguf_tensor *t = e->src;
    const int64_t ne0 = t->ne[0];
    const uint64_t rows = n_rows(t);
    const size_t nel = (size_t)(rows * (uint64_t)ne0);
    const size_t out = (size_t)out_bytes(e);
    if (nel > *f32_cap) {
        float *p = realloc(*f32, nel * sizeof(float));
        if (!p) return -1;
        *f32 = p;
        *f32_cap = nel;
    }
    if (out > *buf_cap) {
        uint8_t *p = realloc(*buf, out);
        if (!p) return -1;
        *buf = p;
        *buf_cap = out;
    }
    ns_kernels((ns_type)t->type)->to_float(t->data, *f32, (int64_t)nel);
    return ns_quantize_rows(e->type, *f32, *buf, (int64_t)rows, ne0, n_threads);
}

static void shape_str(const ns_gguf_tensor *t, uint32_t n_dims, char *buf, size_t len) {
    size_t p = 0;
    p += (size_t)snprintf(buf + p, len - p, "[");
    for (uint32_t d = 0; d < n_dims && p < len; d++)
        p += (size_t)snprintf(buf + p, len - p, "%s%" PRId64, d ? ", " : "", t->ne[d]);
    if (p < len) snprintf(buf + p, len - p, "]");
}

/* The file is written next to path and renamed over it at the end, so a
 * failed run leaves no partial file and the input may be the output. Paths
 * that are not regular files (/dev/null, a pipe) are written directly. */
int ns_quantize_write(const ns_gguf *g, const ns_qplan *plan, const char *path, int n_threads, FILE *log,
                      char *err, size_t errlen) {
    struct stat st;
    bool direct = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    char *tmp = NULL;
    if (!direct) {
        size_t n = strlen(path) + 32;
        tmp = malloc(n);
        if (!tmp) {
            set_err(err, errlen, "out of memory");
            return -1;
        }
        snprintf(tmp, n, "%s.tmp-%ld", path, (long)getpid());
    }
    const char *wpath = direct ? path : tmp;
    out_file o = {fopen(wpath, "wb"), false, 0};
    if (!o.f) {
        set_err(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        free(tmp);
        return -1;
    }
    setvbuf(o.f, NULL, _IOFBF, 1 << 20);
    const uint64_t align = g->alignment ? g->alignment : 32;
    float *f32 = NULL;
    uint8_t *buf = NULL;
    size_t f32_cap = 0, buf_cap = 0;
    int rc = -1;

    /* header and metadata */
    uint64_t n_kv = 2;
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (!kv_replaced(&g->kv[i])) n_kv++;
    put(&o, "GGUF", 4);
    put_u32(&o, 3);
    put_u64(&o, plan->n);
    put_u64(&o, n_kv);
    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (kv_replaced(&g->kv[i])) continue;
        size_t len;
        const uint8_t *p = kv_bytes(g, &g->kv[i], &len);
        if (!p) {
            set_err(err, errlen, "metadata key %" PRIu64 " does not lie in the input file", i);
            goto out;
        }
        put(&o, p, len);
    }
    put_str(&o, "general.quantization_version");
    put_u32(&o, NS_GGUF_UINT32);
    put_u32(&o, QUANT_VERSION);
    put_str(&o, "general.file_type");
    put_u32(&o, NS_GGUF_UINT32);
    put_u32(&o, (uint32_t)plan->ftype);

    /* tensor infos */
    uint64_t off = 0;
    for (size_t i = 0; i < plan->n; i++) {
        const ns_qplan_tensor *e = &plan->t[i];
        put_str(&o, e->name);
        put_u32(&o, e->n_dims);
        for (uint32_t d = 0; d < e->n_dims; d++) put_u64(&o, (uint64_t)e->src->ne[d]);
        put_u32(&o, (uint32_t)e->type);
        put_u64(&o, off);
        off += align_up(out_bytes(e), align);
    }
    put_zeros(&o, align_up(o.pos, align) - o.pos);

    /* data */
    uint64_t total_in = 0, total_out = 0;
    for (size_t i = 0; i < plan->n && !o.failed; i++) {
        const ns_qplan_tensor *e = &plan->t[i];
        const uint64_t nb = out_bytes(e);
        if (e->convert) {
            if (convert_tensor(e, n_threads, &f32, &f32_cap, &buf, &buf_cap) != 0) {
                set_err(err, errlen, "tensor %s: out of memory", e->name);
                goto out;
            }
            put(&o, buf, (size_t)nb);
        } else {
            put(&o, e->src->data, (size_t)nb);
        }
        put_zeros(&o, align_up(nb, align) - nb);
        total_in += e->src->nbytes;
        total_out += nb;
        if (log) {
            char shape[96];
            shape_str(e->src, e->n_dims, shape, sizeof shape);
            fprintf(log, "[%4zu/%4zu] %-36s %-22s %-5s -> %-5s %9.3f MiB -> %9.3f MiB%s\n", i + 1, plan->n, e->name,
                    shape, ns_type_name(e->src->type), ns_type_name(e->type), (double)e->src->nbytes / 1048576.0,
                    (double)nb / 1048576.0, e->fallback ? " (fallback)" : "");
        }
    }
    if (log && !o.failed)
        fprintf(log, "model size %.2f MiB -> %.2f MiB\n", (double)total_in / 1048576.0,
                (double)total_out / 1048576.0);
    rc = 0;
out:;
    int e = o.failed ? errno : 0;
    if (fclose(o.f) != 0 && !o.failed) {
        o.failed = true;
        e = errno;
    }
    if (rc == 0 && o.failed) {
        set_err(err, errlen, "%s: write failed: %s", path, strerror(e ? e : EIO));
        rc = -1;
    }
    if (rc == 0 && !direct && rename(tmp, path) != 0) {
        set_err(err, errlen, "%s: cannot create: %s", path, strerror(errno));
        rc = -1;
    }
    if (rc != 0 && !direct) unlink(tmp);
    free(tmp);
    free(f32);
    free(buf);
    return rc;
}
