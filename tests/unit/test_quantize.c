/* Weight quantizers and `nstack quantize`'s file conversion
 * (src/engine/quantize.c, quantize_file.c).
 *
 * Without the shared folder: round trips of every type, edge-case blocks,
 * thread invariance, file-type names, the per-tensor rules on synthetic
 * models (layer patterns, tied output, fallbacks), and the written file
 * (metadata, order, data, requantizing, errors).
 *
 * With ../shared/models (the reference quantize tool's tiny-llama-<type>
 * files, made from the weights of tiny-llama-f16.gguf): every tensor of
 * every reference file against our quantizer applied to the f16 tensor,
 * block by block; the planned per-tensor types against the reference files'
 * types; whole converted files against the reference files byte for byte;
 * and a converted file's logits against the reference engine's. The test
 * exits 77 (skipped) after the synthetic tests when the folder is absent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/gguf_write.h"
#include "engine/quant.h"
#include "engine/quantize.h"
#include "nstack/gguf.h"
#include "nstack/model.h"
#include "nstack/sampler.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rng_state = 0x243f6a8885a308d3ull;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_normal(void) {
    double u1 = ((rng_u64() >> 11) + 1.0) * (1.0 / 9007199254740993.0);
    double u2 = (rng_u64() >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static const ns_type all_types[] = {
    NS_TYPE_F32,  NS_TYPE_F16,  NS_TYPE_BF16, NS_TYPE_Q8_0, NS_TYPE_Q4_0, NS_TYPE_Q4_1, NS_TYPE_Q5_0,
    NS_TYPE_Q5_1, NS_TYPE_Q2_K, NS_TYPE_Q3_K, NS_TYPE_Q4_K, NS_TYPE_Q5_K, NS_TYPE_Q6_K,
};
enum { N_TYPES = sizeof all_types / sizeof all_types[0] };

/* rms(decoded - x) / rms(x) */
static double rel_rms(ns_type t, const float *x, int64_t n) {
    uint8_t *q = malloc(ns_row_size(t, n));
    float *y = malloc(sizeof(float) * (size_t)n);
    assert_non_null(q);
    assert_non_null(y);
    assert_int_equal(ns_quantize_row(t, x, q, n), 0);
    ns_kernels(t)->to_float(q, y, n);
    double se = 0, sx = 0;
    for (int64_t i = 0; i < n; i++) {
        se += ((double)y[i] - x[i]) * ((double)y[i] - x[i]);
        sx += (double)x[i] * x[i];
    }
    free(q);
    free(y);
    return sx > 0 ? sqrt(se / sx) : sqrt(se);
}

static char *tmp_path(const char *tag) {
    const char *dir = getenv("TMPDIR");
    char *p = malloc(4096);
    assert_non_null(p);
    snprintf(p, 4096, "%s/nstack-test-quantize-%ld-%s.gguf", dir && *dir ? dir : "/tmp", (long)getpid(), tag);
    return p;
}

/* ---- rows ----------------------------------------------------------------- */

static void test_round_trip(void **state) {
    (void)state;
    /* a bound per type on the relative rms error for Gaussian weights, a
     * little above what the formats give (2^-bits scaled by the range) */
    static const struct { ns_type t; double bound; } bounds[] = {
        {NS_TYPE_F32, 0.0},    {NS_TYPE_F16, 5e-4},  {NS_TYPE_BF16, 4e-3}, {NS_TYPE_Q8_0, 0.007},
        {NS_TYPE_Q4_0, 0.11},  {NS_TYPE_Q4_1, 0.11}, {NS_TYPE_Q5_0, 0.055}, {NS_TYPE_Q5_1, 0.05},
        {NS_TYPE_Q2_K, 0.40},  {NS_TYPE_Q3_K, 0.20}, {NS_TYPE_Q4_K, 0.10}, {NS_TYPE_Q5_K, 0.05},
        {NS_TYPE_Q6_K, 0.025},
    };
    enum { N = 4096 };
    float *x = malloc(sizeof(float) * N);
    assert_non_null(x);
    for (int i = 0; i < N; i++) x[i] = rng_normal() * 0.02f;
    for (size_t k = 0; k < sizeof bounds / sizeof bounds[0]; k++) {
        assert_true(ns_quantize_supported(bounds[k].t));
        double e = rel_rms(bounds[k].t, x, N);
        printf("%-5s relative rms error %.5f (bound %.3f)\n", ns_type_name(bounds[k].t), e, bounds[k].bound);
        assert_true(e <= bounds[k].bound);
    }
    /* the finer type of each family is the more accurate */
    assert_true(rel_rms(NS_TYPE_Q6_K, x, N) < rel_rms(NS_TYPE_Q5_K, x, N));
    assert_true(rel_rms(NS_TYPE_Q5_K, x, N) < rel_rms(NS_TYPE_Q4_K, x, N));
    assert_true(rel_rms(NS_TYPE_Q4_K, x, N) < rel_rms(NS_TYPE_Q3_K, x, N));
    assert_true(rel_rms(NS_TYPE_Q3_K, x, N) < rel_rms(NS_TYPE_Q2_K, x, N));
    free(x);
}

static void test_row_errors(void **state) {
    (void)state;
    float x[512] = {0};
    uint8_t q[1024];
    assert_int_equal(ns_quantize_row(NS_TYPE_Q4_K, x, q, 128), -1);   /* not a whole block */
    assert_int_equal(ns_quantize_row(NS_TYPE_Q4_0, x, q, 48), -1);
    assert_int_equal(ns_quantize_row(NS_TYPE_Q8_K, x, q, 256), -1);   /* activations only */
    assert_int_equal(ns_quantize_row(NS_TYPE_IQ4_NL, x, q, 32), -1);
    assert_int_equal(ns_quantize_row((ns_type)99, x, q, 32), -1);
    assert_false(ns_quantize_supported(NS_TYPE_Q8_1));
    assert_int_equal(ns_quantize_row(NS_TYPE_Q6_K, x, q, 0), 0);
    assert_int_equal(ns_quantize_rows(NS_TYPE_Q4_K, x, q, 2, 100, 2), -1);
}

/* Blocks that stress the searches: all zero, constant, one spike, all
 * positive, all negative, tiny values, a single sign change. Decoding must
 * give finite values close to the input (exactly 0 for zero blocks). */
static void test_edge_blocks(void **state) {
    (void)state;
    enum { N = 256 };
    float x[N], y[N];
    uint8_t q[N * sizeof(float)];
    for (int kind = 0; kind < 8; kind++) {
        for (int i = 0; i < N; i++) {
            switch (kind) {
            case 0: x[i] = 0.0f; break;
            case 1: x[i] = 0.75f; break;
            case 2: x[i] = i == 37 ? 50.0f : 0.01f * (float)(i % 7); break;
            case 3: x[i] = 1.0f + (float)(i % 13) * 0.1f; break;
            case 4: x[i] = -1.0f - (float)(i % 11) * 0.1f; break;
            case 5: x[i] = 1e-20f * (float)(i % 5 - 2); break;
            case 6: x[i] = i < 128 ? -0.5f : 0.5f; break;
            default: x[i] = -0.75f; break;
            }
        }
        double amax = 0;
        for (int i = 0; i < N; i++) amax = fmax(amax, fabs(x[i]));
        for (int k = 0; k < N_TYPES; k++) {
            ns_type t = all_types[k];
            assert_int_equal(ns_quantize_row(t, x, q, N), 0);
            ns_kernels(t)->to_float(q, y, N);
            for (int i = 0; i < N; i++) {
                assert_true(isfinite(y[i]));
                if (kind == 0) assert_true(y[i] == 0.0f);
                /* every format holds a block within its range; the coarse
                 * ones within a third of it, the spike block aside */
                double tol = t == NS_TYPE_Q2_K || t == NS_TYPE_Q3_K ? 0.34 : 0.2;
                if (kind == 2 || kind == 5) tol = 1.0; /* spike; below fp16's range */
                if (fabs(y[i] - x[i]) > tol * amax + 1e-30) {
                    fprintf(stderr, "%s kind %d i %d: %g -> %g\n", ns_type_name(t), kind, i, x[i], y[i]);
                    fail();
                }
            }
        }
    }
}

static void test_threads_invariant(void **state) {
    (void)state;
    const int64_t rows = 37, cols = 512;
    float *x = malloc(sizeof(float) * (size_t)(rows * cols));
    assert_non_null(x);
    for (int64_t i = 0; i < rows * cols; i++) x[i] = rng_normal();
    for (int k = 0; k < N_TYPES; k++) {
        ns_type t = all_types[k];
        size_t sz = ns_row_size(t, cols) * (size_t)rows;
        uint8_t *a = malloc(sz), *b = malloc(sz), *c = malloc(sz);
        assert_true(a && b && c);
        assert_int_equal(ns_quantize_rows(t, x, a, rows, cols, 1), 0);
        assert_int_equal(ns_quantize_rows(t, x, b, rows, cols, 3), 0);
        for (int64_t r = 0; r < rows; r++)
            assert_int_equal(ns_quantize_row(t, x + r * cols, c + (size_t)r * ns_row_size(t, cols), cols), 0);
        assert_memory_equal(a, b, sz);
        assert_memory_equal(a, c, sz);
        free(a);
        free(b);
        free(c);
    }
    free(x);
}

static void test_fit_type(void **state) {
    (void)state;
    bool fb;
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q4_K, 512, &fb), NS_TYPE_Q4_K);
    assert_false(fb);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q4_K, 320, &fb), NS_TYPE_Q5_0);
    assert_true(fb);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q5_K, 320, NULL), NS_TYPE_Q5_1);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q6_K, 320, NULL), NS_TYPE_Q8_0);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q2_K, 320, NULL), NS_TYPE_Q4_0);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q3_K, 64, NULL), NS_TYPE_Q4_0);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q6_K, 80, NULL), NS_TYPE_F16);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_Q4_0, 80, &fb), NS_TYPE_F16);
    assert_true(fb);
    assert_int_equal(ns_quantize_fit_type(NS_TYPE_F16, 7, &fb), NS_TYPE_F16);
    assert_false(fb);
}

static void test_ftype_names(void **state) {
    (void)state;
    static const struct { const char *name; ns_ftype ft; ns_type base; } ok[] = {
        {"q4_k_m", NS_FTYPE_Q4_K_M, NS_TYPE_Q4_K}, {"Q4_K_M", NS_FTYPE_Q4_K_M, NS_TYPE_Q4_K},
        {"Q4_K", NS_FTYPE_Q4_K_M, NS_TYPE_Q4_K},   {"q5_k", NS_FTYPE_Q5_K_M, NS_TYPE_Q5_K},
        {"q3_k", NS_FTYPE_Q3_K_M, NS_TYPE_Q3_K},   {"q3_k_s", NS_FTYPE_Q3_K_S, NS_TYPE_Q3_K},
        {"q3_k_l", NS_FTYPE_Q3_K_L, NS_TYPE_Q3_K}, {"q4_k_s", NS_FTYPE_Q4_K_S, NS_TYPE_Q4_K},
        {"q5_k_s", NS_FTYPE_Q5_K_S, NS_TYPE_Q5_K}, {"q5_k_m", NS_FTYPE_Q5_K_M, NS_TYPE_Q5_K},
        {"q2_k", NS_FTYPE_Q2_K, NS_TYPE_Q2_K},     {"Q6_K", NS_FTYPE_Q6_K, NS_TYPE_Q6_K},
        {"q8_0", NS_FTYPE_Q8_0, NS_TYPE_Q8_0},     {"q4_0", NS_FTYPE_Q4_0, NS_TYPE_Q4_0},
        {"q4_1", NS_FTYPE_Q4_1, NS_TYPE_Q4_1},     {"q5_0", NS_FTYPE_Q5_0, NS_TYPE_Q5_0},
        {"q5_1", NS_FTYPE_Q5_1, NS_TYPE_Q5_1},     {"f16", NS_FTYPE_F16, NS_TYPE_F16},
        {"BF16", NS_FTYPE_BF16, NS_TYPE_BF16},     {"f32", NS_FTYPE_ALL_F32, NS_TYPE_F32},
        {"15", NS_FTYPE_Q4_K_M, NS_TYPE_Q4_K},     {"7", NS_FTYPE_Q8_0, NS_TYPE_Q8_0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ns_ftype ft = (ns_ftype)-1;
        assert_int_equal(ns_ftype_parse(ok[i].name, &ft), 0);
        assert_int_equal(ft, ok[i].ft);
        assert_int_equal(ns_ftype_base_type(ft), ok[i].base);
        assert_non_null(ns_ftype_name(ft));
    }
    static const char *const bad[] = {"", "q4", "q4_k_x", "iq2_xxs", "q2_k_s", "4", "-15", "15x", "q4_k_m_extra_long_name"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ns_ftype ft;
        assert_int_equal(ns_ftype_parse(bad[i], &ft), -1);
    }
    assert_int_equal(ns_ftype_parse(NULL, &(ns_ftype){0}), -1);
}

/* ---- synthetic models ---------------------------------------------------------- */

typedef struct {
    int n_layer, n_head, n_head_kv, dim, ff, vocab;
    bool tied, random_data;
    ns_type type; /* of the matrices */
} synth;

static void add_t(ns_gguf_writer *w, const synth *s, const char *name, int64_t ne0, int64_t ne1) {
    ns_type t = ne1 > 1 ? s->type : NS_TYPE_F32;
    int64_t ne[2] = {ne0, ne1};
    void *data = NULL;
    if (s->random_data) {
        float *x = malloc(sizeof(float) * (size_t)(ne0 * ne1));
        assert_non_null(x);
        for (int64_t i = 0; i < ne0 * ne1; i++) x[i] = ne1 > 1 ? rng_normal() * 0.05f : 1.0f + 0.1f * rng_normal();
        data = malloc(ns_row_size(t, ne0) * (size_t)ne1);
        assert_non_null(data);
        assert_int_equal(ns_quantize_rows(t, x, data, ne1, ne0, 1), 0);
        free(x);
    }
    assert_int_equal(ns_gguf_w_tensor(w, name, t, ne1 > 1 ? 2 : 1, ne, data), 0);
    free(data);
}

/* A llama-shaped model, tensors in the converter's (llama.cpp convert)
 * order, which differs from the quantize tool's. */
static ns_gguf_writer *synth_model(const synth *s) {
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_non_null(w);
    assert_int_equal(ns_gguf_w_str(w, "general.architecture", "llama"), 0);
    assert_int_equal(ns_gguf_w_u32(w, "general.file_type", 0), 0);
    assert_int_equal(ns_gguf_w_u32(w, "llama.block_count", (uint32_t)s->n_layer), 0);
    assert_int_equal(ns_gguf_w_u32(w, "llama.embedding_length", (uint32_t)s->dim), 0);
    assert_int_equal(ns_gguf_w_u32(w, "llama.attention.head_count", (uint32_t)s->n_head), 0);
    assert_int_equal(ns_gguf_w_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv), 0);
    const int64_t dkv = s->dim / s->n_head * s->n_head_kv;
    add_t(w, s, "token_embd.weight", s->dim, s->vocab);
    add_t(w, s, "output_norm.weight", s->dim, 1);
    if (!s->tied) add_t(w, s, "output.weight", s->dim, s->vocab);
    for (int il = 0; il < s->n_layer; il++) {
        char n[64];
#define T(suffix, a, b) (snprintf(n, sizeof n, "blk.%d.%s", il, suffix), add_t(w, s, n, a, b))
        T("attn_norm.weight", s->dim, 1);
        T("attn_q.weight", s->dim, s->dim);
        T("attn_k.weight", s->dim, dkv);
        T("attn_v.weight", s->dim, dkv);
        T("attn_output.weight", s->dim, s->dim);
        T("ffn_norm.weight", s->dim, 1);
        T("ffn_gate.weight", s->dim, s->ff);
        T("ffn_up.weight", s->dim, s->ff);
        T("ffn_down.weight", s->ff, s->dim);
#undef T
    }
    return w;
}

typedef struct {
    uint8_t *buf;
    ns_gguf *g;
} mem_model;

static mem_model open_mem(ns_gguf_writer *w) {
    mem_model m = {0};
    size_t size;
    assert_int_equal(ns_gguf_w_to_mem(w, &m.buf, &size), 0);
    char err[256];
    m.g = ns_gguf_parse(m.buf, size, err, sizeof err);
    if (!m.g) fprintf(stderr, "%s\n", err);
    assert_non_null(m.g);
    ns_gguf_writer_free(w);
    return m;
}

static void close_mem(mem_model *m) {
    ns_gguf_close(m->g);
    free(m->buf);
}

static const ns_qplan_tensor *plan_find(const ns_qplan *p, const char *name) {
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->t[i].name, name) == 0) return &p->t[i];
    fprintf(stderr, "no tensor %s in the plan\n", name);
    fail();
    return NULL;
}

static ns_type plan_type(const ns_qplan *p, const char *fmt, int il) {
    char name[96];
    snprintf(name, sizeof name, fmt, il);
    return plan_find(p, name)->type;
}

static ns_qplan make_plan(const ns_gguf *g, ns_ftype ft) {
    ns_qplan p;
    char err[256];
    int rc = ns_quantize_plan(g, ft, &p, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    return p;
}

/* Output order: non-layer tensors by name, then layer by layer (numerically:
 * blk.10 after blk.9), by name within a layer. */
static void test_plan_order(void **state) {
    (void)state;
    synth s = {12, 8, 2, 256, 512, 300, false, false, NS_TYPE_F16};
    mem_model m = open_mem(synth_model(&s));
    ns_qplan p = make_plan(m.g, NS_FTYPE_Q4_K_M);
    assert_int_equal(p.n, 3 + 12 * 9);
    assert_string_equal(p.t[0].name, "output.weight");
    assert_string_equal(p.t[1].name, "output_norm.weight");
    assert_string_equal(p.t[2].name, "token_embd.weight");
    assert_string_equal(p.t[3].name, "blk.0.attn_k.weight");
    assert_string_equal(p.t[4].name, "blk.0.attn_norm.weight");
    assert_string_equal(p.t[11].name, "blk.0.ffn_up.weight");
    assert_string_equal(p.t[3 + 10 * 9].name, "blk.10.attn_k.weight");
    for (size_t i = 0; i < p.n; i++) assert_int_equal(p.t[i].n_dims, strstr(p.t[i].name, "norm") ? 1 : 2);
    ns_quantize_plan_free(&p);
    close_mem(&m);
}

static bool in_set(int i, const int *set, int n) {
    for (int k = 0; k < n; k++)
        if (set[k] == i) return true;
    return false;
}

/* The reference tool's per-layer choices for a 12-layer model. */
static void test_plan_rules(void **state) {
    (void)state;
    synth s = {12, 8, 2, 256, 512, 300, false, false, NS_TYPE_F16};
    mem_model m = open_mem(synth_model(&s));

    /* more-bits layers of 12: i < 1, i >= 10, (i - 1) % 3 == 2 */
    static const int more[] = {0, 3, 6, 9, 10, 11};
    for (int mix = 0; mix < 2; mix++) {
        ns_ftype ft = mix ? NS_FTYPE_Q5_K_M : NS_FTYPE_Q4_K_M;
        ns_type base = mix ? NS_TYPE_Q5_K : NS_TYPE_Q4_K;
        ns_qplan p = make_plan(m.g, ft);
        for (int il = 0; il < 12; il++) {
            ns_type want = in_set(il, more, 6) ? NS_TYPE_Q6_K : base;
            assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), want);
            assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), want);
            assert_int_equal(plan_type(&p, "blk.%d.attn_q.weight", il), base);
            assert_int_equal(plan_type(&p, "blk.%d.attn_output.weight", il), base);
            assert_int_equal(plan_type(&p, "blk.%d.ffn_gate.weight", il), base);
            assert_int_equal(plan_type(&p, "blk.%d.attn_norm.weight", il), NS_TYPE_F32);
        }
        assert_int_equal(plan_find(&p, "output.weight")->type, NS_TYPE_Q6_K);
        assert_int_equal(plan_find(&p, "token_embd.weight")->type, base);
        assert_false(plan_find(&p, "output_norm.weight")->convert);
        assert_int_equal(p.n_fallback, 0);
        assert_int_equal(p.n_requant, 0);
        ns_quantize_plan_free(&p);
    }

    ns_qplan p = make_plan(m.g, NS_FTYPE_Q3_K_M);
    for (int il = 0; il < 12; il++) {
        assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), il < 2 ? NS_TYPE_Q5_K : NS_TYPE_Q4_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), NS_TYPE_Q4_K); /* 12/16 = 0 layers of Q5_K */
        assert_int_equal(plan_type(&p, "blk.%d.attn_output.weight", il), NS_TYPE_Q4_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_up.weight", il), NS_TYPE_Q3_K);
    }
    ns_quantize_plan_free(&p);

    p = make_plan(m.g, NS_FTYPE_Q3_K_L);
    for (int il = 0; il < 12; il++) {
        assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), NS_TYPE_Q5_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), NS_TYPE_Q5_K);
        assert_int_equal(plan_type(&p, "blk.%d.attn_output.weight", il), NS_TYPE_Q5_K);
        assert_int_equal(plan_type(&p, "blk.%d.attn_k.weight", il), NS_TYPE_Q3_K);
    }
    ns_quantize_plan_free(&p);

    p = make_plan(m.g, NS_FTYPE_Q3_K_S);
    for (int il = 0; il < 12; il++) {
        assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), NS_TYPE_Q3_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), NS_TYPE_Q3_K);
    }
    ns_quantize_plan_free(&p);

    p = make_plan(m.g, NS_FTYPE_Q4_K_S);
    for (int il = 0; il < 12; il++) {
        assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), il < 4 ? NS_TYPE_Q5_K : NS_TYPE_Q4_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), il < 1 ? NS_TYPE_Q5_K : NS_TYPE_Q4_K);
    }
    ns_quantize_plan_free(&p);

    p = make_plan(m.g, NS_FTYPE_Q5_K_S);
    for (int il = 0; il < 12; il++) {
        assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), NS_TYPE_Q5_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), NS_TYPE_Q5_K);
    }
    assert_int_equal(plan_find(&p, "output.weight")->type, NS_TYPE_Q6_K);
    ns_quantize_plan_free(&p);

    /* Q2_K: n_head / n_head_kv = 4 gives attn_v Q4_K */
    p = make_plan(m.g, NS_FTYPE_Q2_K);
    for (int il = 0; il < 12; il++) {
        assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", il), NS_TYPE_Q4_K);
        assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", il), NS_TYPE_Q3_K);
        assert_int_equal(plan_type(&p, "blk.%d.attn_output.weight", il), NS_TYPE_Q3_K);
        assert_int_equal(plan_type(&p, "blk.%d.attn_q.weight", il), NS_TYPE_Q2_K);
    }
    ns_quantize_plan_free(&p);

    /* legacy types: output Q6_K (Q8_0 stays Q8_0), nothing else moves */
    static const struct { ns_ftype ft; ns_type t, out; } legacy[] = {
        {NS_FTYPE_Q4_0, NS_TYPE_Q4_0, NS_TYPE_Q6_K}, {NS_FTYPE_Q4_1, NS_TYPE_Q4_1, NS_TYPE_Q6_K},
        {NS_FTYPE_Q5_0, NS_TYPE_Q5_0, NS_TYPE_Q6_K}, {NS_FTYPE_Q5_1, NS_TYPE_Q5_1, NS_TYPE_Q6_K},
        {NS_FTYPE_Q8_0, NS_TYPE_Q8_0, NS_TYPE_Q8_0}, {NS_FTYPE_Q6_K, NS_TYPE_Q6_K, NS_TYPE_Q6_K},
    };
    for (size_t k = 0; k < sizeof legacy / sizeof legacy[0]; k++) {
        p = make_plan(m.g, legacy[k].ft);
        for (size_t i = 0; i < p.n; i++) {
            const ns_qplan_tensor *e = &p.t[i];
            ns_type want = strcmp(e->name, "output.weight") == 0 ? legacy[k].out
                           : e->n_dims == 1                     ? NS_TYPE_F32
                                                                : legacy[k].t;
            assert_int_equal(e->type, want);
        }
        ns_quantize_plan_free(&p);
    }

    /* float file types: every matrix, output included */
    p = make_plan(m.g, NS_FTYPE_BF16);
    for (size_t i = 0; i < p.n; i++) assert_int_equal(p.t[i].type, p.t[i].n_dims == 1 ? NS_TYPE_F32 : NS_TYPE_BF16);
    ns_quantize_plan_free(&p);
    p = make_plan(m.g, NS_FTYPE_F16); /* the input is F16: all copied */
    for (size_t i = 0; i < p.n; i++) assert_false(p.t[i].convert);
    ns_quantize_plan_free(&p);
    close_mem(&m);

    /* Q2_K with n_head / n_head_kv = 2: attn_v Q3_K */
    synth s2 = {2, 8, 4, 256, 512, 300, true, false, NS_TYPE_F32};
    m = open_mem(synth_model(&s2));
    p = make_plan(m.g, NS_FTYPE_Q2_K);
    assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", 1), NS_TYPE_Q3_K);
    /* tied embeddings: token_embd is the output */
    assert_int_equal(plan_find(&p, "token_embd.weight")->type, NS_TYPE_Q6_K);
    ns_quantize_plan_free(&p);
    p = make_plan(m.g, NS_FTYPE_Q8_0);
    assert_int_equal(plan_find(&p, "token_embd.weight")->type, NS_TYPE_Q8_0);
    ns_quantize_plan_free(&p);
    close_mem(&m);
}

/* Rows that a K block does not divide. */
static void test_plan_fallback(void **state) {
    (void)state;
    synth s = {2, 4, 4, 320, 512, 300, false, false, NS_TYPE_F32};
    mem_model m = open_mem(synth_model(&s));
    ns_qplan p = make_plan(m.g, NS_FTYPE_Q4_K_M);
    assert_int_equal(plan_find(&p, "output.weight")->type, NS_TYPE_Q8_0); /* not a fallback: the output rule */
    assert_false(plan_find(&p, "output.weight")->fallback);
    assert_int_equal(plan_type(&p, "blk.%d.attn_q.weight", 0), NS_TYPE_Q5_0);
    assert_true(plan_find(&p, "blk.0.attn_q.weight")->fallback);
    assert_int_equal(plan_type(&p, "blk.%d.attn_v.weight", 1), NS_TYPE_Q8_0);   /* Q6_K's fallback */
    assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", 1), NS_TYPE_Q6_K); /* rows of 512 fit */
    assert_int_equal(plan_type(&p, "blk.%d.ffn_down.weight", 0), NS_TYPE_Q4_K);
    assert_true(p.n_fallback > 0);
    ns_quantize_plan_free(&p);
    p = make_plan(m.g, NS_FTYPE_Q5_K_S);
    assert_int_equal(plan_type(&p, "blk.%d.attn_q.weight", 0), NS_TYPE_Q5_1);
    ns_quantize_plan_free(&p);
    p = make_plan(m.g, NS_FTYPE_Q3_K_S);
    assert_int_equal(plan_type(&p, "blk.%d.attn_q.weight", 0), NS_TYPE_Q4_0);
    ns_quantize_plan_free(&p);
    close_mem(&m);

    synth s2 = {1, 4, 4, 80, 160, 300, true, false, NS_TYPE_F32};
    m = open_mem(synth_model(&s2));
    p = make_plan(m.g, NS_FTYPE_Q4_0);
    assert_int_equal(plan_type(&p, "blk.%d.attn_q.weight", 0), NS_TYPE_F16);
    assert_int_equal(plan_find(&p, "token_embd.weight")->type, NS_TYPE_F16);
    ns_quantize_plan_free(&p);
    close_mem(&m);
}

static void test_plan_errors(void **state) {
    (void)state;
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_str(w, "general.architecture", "llama"), 0);
    int64_t ne[2] = {64, 4};
    assert_int_equal(ns_gguf_w_tensor(w, "blk.0.attn_q.weight", NS_TYPE_IQ4_NL, 2, ne, NULL), 0);
    mem_model m = open_mem(w);
    ns_qplan p;
    char err[256];
    assert_int_equal(ns_quantize_plan(m.g, NS_FTYPE_Q4_0, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "IQ4_NL"));
    assert_non_null(strstr(err, "blk.0.attn_q.weight"));
    assert_int_equal(ns_quantize_plan(m.g, (ns_ftype)5, &p, err, sizeof err), -1);
    close_mem(&m);

    w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_u16(w, "split.count", 3), 0);
    m = open_mem(w);
    assert_int_equal(ns_quantize_plan(m.g, NS_FTYPE_Q4_0, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "split"));
    close_mem(&m);
}

/* Every metadata type, copied; the file written, reopened and checked. */
static void test_write(void **state) {
    (void)state;
    synth s = {2, 4, 2, 256, 512, 64, false, true, NS_TYPE_F32};
    ns_gguf_writer *w = synth_model(&s);
    static const char *const strs[] = {"a", "", "c\xe2\x96\x81"};
    static const int32_t ints[] = {-1, 2, 3};
    static const uint8_t bools[] = {1, 0};
    assert_int_equal(ns_gguf_w_u8(w, "x.u8", 200), 0);
    assert_int_equal(ns_gguf_w_i8(w, "x.i8", -100), 0);
    assert_int_equal(ns_gguf_w_u16(w, "x.u16", 60000), 0);
    assert_int_equal(ns_gguf_w_i16(w, "x.i16", -30000), 0);
    assert_int_equal(ns_gguf_w_i32(w, "x.i32", -7), 0);
    assert_int_equal(ns_gguf_w_u64(w, "x.u64", 1ull << 40), 0);
    assert_int_equal(ns_gguf_w_i64(w, "x.i64", -(1ll << 40)), 0);
    assert_int_equal(ns_gguf_w_f32(w, "x.f32", 0.125f), 0);
    assert_int_equal(ns_gguf_w_f64(w, "x.f64", 1e100), 0);
    assert_int_equal(ns_gguf_w_bool(w, "x.bool", true), 0);
    assert_int_equal(ns_gguf_w_arr_str(w, "x.strs", strs, 3), 0);
    assert_int_equal(ns_gguf_w_arr_i32(w, "x.ints", ints, 3), 0);
    assert_int_equal(ns_gguf_w_arr(w, "x.bools", NS_GGUF_BOOL, bools, 2), 0);
    assert_int_equal(ns_gguf_w_arr(w, "x.empty", NS_GGUF_FLOAT64, NULL, 0), 0);
    assert_int_equal(ns_gguf_w_u32(w, "general.quantization_version", 1), 0);
    assert_int_equal(ns_gguf_w_u16(w, "split.count", 1), 0);
    assert_int_equal(ns_gguf_w_str(w, "x.last", "end"), 0);
    mem_model in = open_mem(w);

    ns_qplan p = make_plan(in.g, NS_FTYPE_Q4_K_M);
    char *path = tmp_path("write");
    char err[512];
    int rc = ns_quantize_write(in.g, &p, path, 2, NULL, err, sizeof err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    ns_gguf *out = ns_gguf_open(path, err, sizeof err);
    if (!out) fprintf(stderr, "%s\n", err);
    assert_non_null(out);
    assert_int_equal(out->version, 3);
    assert_int_equal(out->alignment, 32);

    /* metadata: the input's keys in order minus file_type,
     * quantization_version and split.*, then those two */
    uint64_t j = 0;
    for (uint64_t i = 0; i < in.g->n_kv; i++) {
        const ns_gguf_kv *a = &in.g->kv[i];
        if (ns_gguf_str_eq(a->key, "general.file_type") || ns_gguf_str_eq(a->key, "general.quantization_version") ||
            ns_gguf_str_eq(a->key, "split.count"))
            continue;
        assert_true(j < out->n_kv);
        const ns_gguf_kv *b = &out->kv[j++];
        assert_int_equal(a->key.len, b->key.len);
        assert_memory_equal(a->key.ptr, b->key.ptr, a->key.len);
        assert_int_equal(a->type, b->type);
        if (a->type == NS_GGUF_STRING) {
            assert_int_equal(a->v.str.len, b->v.str.len);
            assert_memory_equal(a->v.str.ptr, b->v.str.ptr, a->v.str.len);
        } else if (a->type == NS_GGUF_ARRAY) {
            assert_int_equal(a->arr_type, b->arr_type);
            assert_int_equal(a->arr_n, b->arr_n);
            for (uint64_t k = 0; k < a->arr_n && a->arr_type == NS_GGUF_STRING; k++) {
                assert_int_equal(a->arr_str[k].len, b->arr_str[k].len);
                assert_memory_equal(a->arr_str[k].ptr, b->arr_str[k].ptr, a->arr_str[k].len);
            }
            for (uint64_t k = 0; k < a->arr_n && a->arr_type != NS_GGUF_STRING; k++) {
                double x = 0, y = 1;
                assert_true(ns_gguf_arr_f64(a, k, &x));
                assert_true(ns_gguf_arr_f64(b, k, &y));
                assert_true(x == y);
            }
        } else {
            assert_memory_equal(&a->v, &b->v, sizeof a->v);
        }
    }
    assert_int_equal(j + 2, out->n_kv);
    assert_true(ns_gguf_str_eq(out->kv[j].key, "general.quantization_version"));
    assert_true(ns_gguf_str_eq(out->kv[j + 1].key, "general.file_type"));
    uint32_t v;
    assert_true(ns_gguf_get_u32(out, "general.quantization_version", &v) && v == 2);
    assert_true(ns_gguf_get_u32(out, "general.file_type", &v) && v == NS_FTYPE_Q4_K_M);

    /* tensors: the plan's order and types; data = our quantizer applied to
     * the input, 1-D tensors copied */
    assert_int_equal(out->n_tensors, p.n);
    for (size_t i = 0; i < p.n; i++) {
        const ns_gguf_tensor *t = &out->tensors[i];
        const ns_qplan_tensor *e = &p.t[i];
        assert_true(ns_gguf_str_eq(t->name, e->name));
        assert_int_equal(t->type, e->type);
        assert_int_equal(t->n_dims, e->n_dims);
        assert_int_equal(t->offset % 32, 0);
        const int64_t n = e->src->ne[0] * e->src->ne[1];
        if (!e->convert) {
            assert_int_equal(t->nbytes, e->src->nbytes);
            assert_memory_equal(t->data, e->src->data, t->nbytes);
            continue;
        }
        uint8_t *q = malloc(t->nbytes);
        assert_non_null(q);
        assert_int_equal(ns_quantize_row(e->type, (const float *)e->src->data, q, n), 0);
        assert_memory_equal(q, t->data, t->nbytes);
        free(q);
    }
    ns_gguf_close(out);

    /* converting the result to the same mix again copies every tensor */
    out = ns_gguf_open(path, err, sizeof err);
    assert_non_null(out);
    ns_qplan p2 = make_plan(out, NS_FTYPE_Q4_K_M);
    for (size_t i = 0; i < p2.n; i++) assert_false(p2.t[i].convert);
    ns_quantize_plan_free(&p2);

    /* requantizing: Q4_K_M -> Q8_0 decodes the quantized tensors first */
    p2 = make_plan(out, NS_FTYPE_Q8_0);
    assert_true(p2.n_requant > 0);
    char *path2 = tmp_path("requant");
    assert_int_equal(ns_quantize_write(out, &p2, path2, 1, NULL, err, sizeof err), 0);
    ns_gguf *re = ns_gguf_open(path2, err, sizeof err);
    assert_non_null(re);
    const ns_gguf_tensor *a = ns_gguf_find_tensor(out, "blk.1.ffn_up.weight");
    const ns_gguf_tensor *b = ns_gguf_find_tensor(re, "blk.1.ffn_up.weight");
    assert_true(a && b && a->type == NS_TYPE_Q4_K && b->type == NS_TYPE_Q8_0);
    const int64_t n = a->ne[0] * a->ne[1];
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    assert_true(x && y);
    ns_kernels(NS_TYPE_Q4_K)->to_float(a->data, x, n);
    ns_kernels(NS_TYPE_Q8_0)->to_float(b->data, y, n);
    for (int64_t i = 0; i < n; i++) assert_true(fabsf(x[i] - y[i]) < 0.002f);
    free(x);
    free(y);
    ns_gguf_close(re);
    ns_quantize_plan_free(&p2);
    ns_gguf_close(out);
    unlink(path2);
    free(path2);

    /* errors: an unwritable path leaves nothing behind */
    char bad[4200];
    snprintf(bad, sizeof bad, "%s.d/no/such/dir/out.gguf", path);
    assert_int_equal(ns_quantize_write(in.g, &p, bad, 1, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot create"));

    ns_quantize_plan_free(&p);
    close_mem(&in);
    unlink(path);
    free(path);
}

/* A file of metadata only converts to one of metadata only. */
static void test_write_empty(void **state) {
    (void)state;
    ns_gguf_writer *w = ns_gguf_writer_new();
    assert_int_equal(ns_gguf_w_str(w, "general.name", "empty"), 0);
    mem_model in = open_mem(w);
    ns_qplan p = make_plan(in.g, NS_FTYPE_Q6_K);
    assert_int_equal(p.n, 0);
    char *path = tmp_path("empty"), err[512];
    assert_int_equal(ns_quantize_write(in.g, &p, path, 1, NULL, err, sizeof err), 0);
    ns_gguf *out = ns_gguf_open(path, err, sizeof err);
    if (!out) fprintf(stderr, "%s\n", err);
    assert_non_null(out);
    assert_int_equal(out->n_tensors, 0);
    assert_int_equal(out->n_kv, 3);
    uint32_t v;
    assert_true(ns_gguf_get_u32(out, "general.file_type", &v) && v == NS_FTYPE_Q6_K);
    ns_gguf_close(out);
    ns_quantize_plan_free(&p);
    close_mem(&in);
    unlink(path);
    free(path);
}

/* ---- against the reference tool's files ------------------------------------------ */

static const char *const ref_types[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q2_k",
                                        "q3_k_m", "q4_k_m", "q5_k_m", "q6_k"};
enum { N_REF = sizeof ref_types / sizeof ref_types[0] };

static char shared_dir[4096];

static ns_gguf *open_shared(const char *name) {
    char path[4400], err[512];
    snprintf(path, sizeof path, "%s/%s", shared_dir, name);
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) fprintf(stderr, "%s\n", err);
    assert_non_null(g);
    return g;
}

/* Our quantization of one f16 tensor, kept per (tensor, type): the token
 * embedding's Q6_K serves nine of the files. */
typedef struct {
    const ns_gguf_tensor *src;
    ns_type type;
    uint8_t *data;
} qcache;

static qcache cache[256];
static int n_cache;

static const uint8_t *quantized(const ns_gguf_tensor *src, ns_type type) {
    for (int i = 0; i < n_cache; i++)
        if (cache[i].src == src && cache[i].type == type) return cache[i].data;
    assert_true(n_cache < (int)(sizeof cache / sizeof cache[0]));
    const int64_t ne0 = src->ne[0], rows = src->ne[1] * src->ne[2] * src->ne[3];
    float *x = malloc(sizeof(float) * (size_t)(ne0 * rows));
    uint8_t *q = malloc(ns_row_size(type, ne0) * (size_t)rows);
    assert_true(x && q);
    ns_kernels((ns_type)src->type)->to_float(src->data, x, ne0 * rows);
    assert_int_equal(ns_quantize_rows(type, x, q, rows, ne0, 2), 0);
    free(x);
    cache[n_cache++] = (qcache){src, type, q};
    return q;
}

/* Every tensor of every reference file against our quantizer on the same
 * f16 weights, block by block. All of them are byte-identical today; the
 * bounds leave room only for rare rounding ties (a compiler that fuses a
 * multiply-add in the searches could flip one), and a differing block must
 * still decode to within one quantization step. */
static void test_ref_tensors(void **state) {
    (void)state;
    ns_gguf *f16 = open_shared("tiny-llama-f16.gguf");
    long blocks[NS_TYPE_COUNT] = {0}, same[NS_TYPE_COUNT] = {0};
    double worst[NS_TYPE_COUNT] = {0};
    for (int r = 0; r < N_REF; r++) {
        char name[64];
        snprintf(name, sizeof name, "tiny-llama-%s.gguf", ref_types[r]);
        ns_gguf *ref = open_shared(name);
        assert_int_equal(ref->n_tensors, f16->n_tensors);
        for (uint64_t i = 0; i < ref->n_tensors; i++) {
            const ns_gguf_tensor *rt = &ref->tensors[i];
            char tname[128];
            snprintf(tname, sizeof tname, "%.*s", (int)rt->name.len, rt->name.ptr);
            const ns_gguf_tensor *src = ns_gguf_find_tensor(f16, tname);
            assert_non_null(src);
            if (rt->type == src->type) { /* copied */
                assert_int_equal(rt->nbytes, src->nbytes);
                assert_memory_equal(rt->data, src->data, rt->nbytes);
                continue;
            }
            const ns_type t = (ns_type)rt->type;
            const uint8_t *ours = quantized(src, t);
            const ns_type_info *ti = ns_type_get(t);
            const uint64_t nb = rt->nbytes / ti->type_size;
            for (uint64_t b = 0; b < nb; b++) {
                const uint8_t *x = ours + b * ti->type_size, *y = (const uint8_t *)rt->data + b * ti->type_size;
                blocks[t]++;
                if (memcmp(x, y, ti->type_size) == 0) {
                    same[t]++;
                    continue;
                }
                float dx[256], dy[256], amax = 0, diff = 0;
                ns_kernels(t)->to_float(x, dx, ti->block_size);
                ns_kernels(t)->to_float(y, dy, ti->block_size);
                for (uint32_t k = 0; k < ti->block_size; k++) {
                    amax = fmaxf(amax, fabsf(dy[k]));
                    diff = fmaxf(diff, fabsf(dx[k] - dy[k]));
                }
                if (amax > 0 && diff / amax > worst[t]) worst[t] = diff / amax;
            }
        }
        ns_gguf_close(ref);
    }
    for (int t = 0; t < NS_TYPE_COUNT; t++) {
        if (!blocks[t]) continue;
        const bool k_quant = ns_type_get((uint32_t)t)->block_size == 256;
        printf("%-5s %8ld blocks, %8ld byte-identical (%.4f%%), worst differing block %.4f of its range\n",
               ns_type_name((uint32_t)t), blocks[t], same[t], 100.0 * (double)same[t] / (double)blocks[t], worst[t]);
        assert_true((double)(blocks[t] - same[t]) <= (k_quant ? 1e-3 : 1e-4) * (double)blocks[t]);
        assert_true(worst[t] <= (k_quant ? 0.5 : 0.15));
    }
    for (int i = 0; i < n_cache; i++) free(cache[i].data);
    n_cache = 0;
    ns_gguf_close(f16);
}

/* The planned types and order against each reference file's. */
static void test_ref_plans(void **state) {
    (void)state;
    ns_gguf *f16 = open_shared("tiny-llama-f16.gguf");
    for (int r = 0; r < N_REF; r++) {
        char name[64];
        snprintf(name, sizeof name, "tiny-llama-%s.gguf", ref_types[r]);
        ns_gguf *ref = open_shared(name);
        ns_ftype ft;
        assert_int_equal(ns_ftype_parse(ref_types[r], &ft), 0);
        uint32_t ref_ft = 0;
        assert_true(ns_gguf_get_u32(ref, "general.file_type", &ref_ft));
        assert_int_equal(ref_ft, ft);
        ns_qplan p = make_plan(f16, ft);
        assert_int_equal(p.n, ref->n_tensors);
        for (size_t i = 0; i < p.n; i++) {
            if (!ns_gguf_str_eq(ref->tensors[i].name, p.t[i].name) || ref->tensors[i].type != p.t[i].type) {
                fprintf(stderr, "%s tensor %zu: ours %s %s, reference %.*s %s\n", ref_types[r], i, p.t[i].name,
                        ns_type_name(p.t[i].type), (int)ref->tensors[i].name.len, ref->tensors[i].name.ptr,
                        ns_type_name(ref->tensors[i].type));
                fail();
            }
        }
        ns_quantize_plan_free(&p);
        ns_gguf_close(ref);
    }
    ns_gguf_close(f16);
}

static bool same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = ns_test_read_file(a, &na), *y = ns_test_read_file(b, &nb);
    bool same = x && y && na == nb && memcmp(x, y, na) == 0;
    free(x);
    free(y);
    return same;
}

/* The reference engine's logits for the first prompt of refs/<model>.jsonl,
 * teacher-forced, against ours on path (as tests/unit/test_refs.c checks). */
static void check_logits(const char *path, const char *model) {
    char rel[4400];
    snprintf(rel, sizeof rel, "%s/refs/%s.jsonl", shared_dir, model);
    char *text = ns_test_read_file(rel, NULL);
    assert_non_null(text);
    char *nl = strchr(text, '\n');
    if (nl) *nl = 0;
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    const cJSON *ptoks = cJSON_GetObjectItem(j, "prompt_tokens"), *steps = cJSON_GetObjectItem(j, "steps");
    const int np = cJSON_GetArraySize(ptoks), ns = cJSON_GetArraySize(steps), n = np + ns - 1;
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n);
    assert_non_null(toks);
    for (int i = 0; i < np; i++) toks[i] = cJSON_GetArrayItem(ptoks, i)->valueint;
    for (int i = 0; i < ns - 1; i++) toks[np + i] = cJSON_GetObjectItem(cJSON_GetArrayItem(steps, i), "token")->valueint;

    char err[512];
    ns_model *m = ns_model_load(path, err, sizeof err);
    if (!m) fprintf(stderr, "%s\n", err);
    assert_non_null(m);
    ns_context_params cp = {.n_ctx = n + 8, .n_threads = 2, .kv_type = NS_KV_F16};
    ns_context *c = ns_context_new(m, &cp, err, sizeof err);
    assert_non_null(c);
    assert_int_equal(ns_decode(c, 0, toks, n, true, err, sizeof err), 0);
    float worst = 0;
    for (int s = 0; s < ns; s++) {
        const float *lg = ns_context_logits(c, np - 1 + s);
        const cJSON *top = cJSON_GetObjectItem(cJSON_GetArrayItem(steps, s), "top");
        for (int k = 0; k < cJSON_GetArraySize(top); k++) {
            const cJSON *pair = cJSON_GetArrayItem(top, k);
            float d = fabsf(lg[cJSON_GetArrayItem(pair, 0)->valueint] - (float)cJSON_GetArrayItem(pair, 1)->valuedouble);
            worst = fmaxf(worst, d);
        }
        int32_t best = ns_argmax(lg, ns_model_hparams(m)->n_vocab);
        bool top5 = false;
        for (int k = 0; k < 5 && k < cJSON_GetArraySize(top); k++)
            top5 |= cJSON_GetArrayItem(cJSON_GetArrayItem(top, k), 0)->valueint == best;
        assert_true(top5);
    }
    printf("%s converted here: max |logit diff| vs the reference engine %.5f (tolerance 0.05)\n", model, worst);
    assert_true(worst <= 0.05f);
    ns_context_free(c);
    ns_model_free(m);
    free(toks);
    cJSON_Delete(j);
    free(text);
}

/* Whole files: converted here = written by the reference tool, byte for
 * byte (header, metadata, order, offsets, padding, data). */
static void test_ref_files(void **state) {
    (void)state;
    ns_gguf *f16 = open_shared("tiny-llama-f16.gguf");
    static const char *const which[] = {"q4_k_m", "q8_0"};
    for (size_t k = 0; k < sizeof which / sizeof which[0]; k++) {
        ns_ftype ft;
        assert_int_equal(ns_ftype_parse(which[k], &ft), 0);
        ns_qplan p = make_plan(f16, ft);
        char *path = tmp_path(which[k]);
        char err[512];
        assert_int_equal(ns_quantize_write(f16, &p, path, 2, NULL, err, sizeof err), 0);
        char ref[4400], model[64];
        snprintf(model, sizeof model, "tiny-llama-%s", which[k]);
        snprintf(ref, sizeof ref, "%s/%s.gguf", shared_dir, model);
        bool same = same_file(path, ref);
        printf("%s: converted file %s the reference tool's\n", which[k], same ? "is byte-identical to" : "DIFFERS from");
        assert_true(same);
        if (k == 0) check_logits(path, model);
        unlink(path);
        free(path);
        ns_quantize_plan_free(&p);
    }
    ns_gguf_close(f16);
}

int main(void) {
    const struct CMUnitTest synthetic[] = {
        cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_row_errors),
        cmocka_unit_test(test_edge_blocks),    cmocka_unit_test(test_threads_invariant),
        cmocka_unit_test(test_fit_type),       cmocka_unit_test(test_ftype_names),
        cmocka_unit_test(test_plan_order),     cmocka_unit_test(test_plan_rules),
        cmocka_unit_test(test_plan_fallback),  cmocka_unit_test(test_plan_errors),
        cmocka_unit_test(test_write),          cmocka_unit_test(test_write_empty),
    };
    int failed = cmocka_run_group_tests_name("quantize", synthetic, NULL, NULL);
    const char *p = ns_test_shared_path("models/tiny-llama-f16.gguf");
    if (!p) return failed ? failed : NS_TEST_SKIP;
    snprintf(shared_dir, sizeof shared_dir, "%s", p);
    *strrchr(shared_dir, '/') = 0;
    const struct CMUnitTest reference[] = {
        cmocka_unit_test(test_ref_tensors),
        cmocka_unit_test(test_ref_plans),
        cmocka_unit_test(test_ref_files),
    };
    return failed + cmocka_run_group_tests_name("quantize vs reference files", reference, NULL, NULL);
}
