/* The placement planner (src/runtime/placement.c), its size parser and the
 * runtime's use of it for num_gpu "auto" (src/runtime/manager.c).
 *
 * Without the shared folder: 4-layer models written by mkmodel's builder
 * (ns_mkmodel_write) in Q4_0, Q8_0 and F16, whose sizes are computed by hand
 * below, against made-up VRAM sizes: nothing, everything, exactly at a
 * boundary and one byte short of it, a reserve larger than the VRAM; and
 * the runtime with the fake NVML of test_monitor (GPU 0: 16 GiB, 4 GiB used).
 *
 * With ../shared/models: stories260K (F32, hand-computed), tiny-llama-q4_0
 * (hand-computed layers, tied embeddings), and the K-quant mix q4_k_m whose
 * layers differ (checked against the GGUF reader's own tensor sizes). Those
 * tests are skipped when the folder is absent. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/placement.h"
#include "util/size.h"
#include "runtime/runtime.h"
#include "server/demo_model.h"
#include "testutil.h"

#ifndef FAKE_NVML_PATH
#error "tests/CMakeLists.txt defines FAKE_NVML_PATH for test_placement"
#endif

static char tmp_dir[256];
static char path_q4[512], path_q4_tied[512], path_q8[512], path_f16[512];

#define MIB (INT64_C(1) << 20)
#define GIB (INT64_C(1) << 30)

/* ---- the synthetic model, by hand ----------------------------------------
 * llama, dim 256, 4 layers, 8 heads, 4 KV heads (head_dim 32, kv_dim 128),
 * ffn 512, vocab 512 (mkmodel's made-up vocabulary). Every matrix has rows
 * of 256 or 512 elements, whole blocks of 32 for every type used here. */
enum { DIM = 256, LAYERS = 4, HEADS = 8, KV_HEADS = 4, FF = 512, VOCAB = 512, KV_DIM = 128 };

/* Bytes of one row of n elements: Q4_0 = 18 bytes per 32 (f16 scale +
 * 16 bytes of nibbles), Q8_0 = 34 per 32 (f16 scale + 32 bytes), F16 = 2 per
 * element. */
static int64_t row_bytes(ns_type t, int64_t n) {
    switch (t) {
    case NS_TYPE_Q4_0: return n / 32 * 18;
    case NS_TYPE_Q8_0: return n / 32 * 34;
    case NS_TYPE_F16: return n * 2;
    default: return n * 4;
    }
}

/* One layer: two F32 norms (2 x 256 x 4 = 2048) and
 *   attn_q      256 rows of 256     attn_k, attn_v  128 rows of 256 each
 *   attn_output 256 rows of 256     ffn_gate, ffn_up 512 rows of 256 each
 *   ffn_down    256 rows of 512
 * Q4_0: 2048 + 256*144 + 2*128*144 + 256*144 + 2*512*144 + 256*288
 *     = 2048 + 36864 + 36864 + 36864 + 147456 + 73728 = 333824 */
static int64_t layer_bytes(ns_type t) {
    return 2 * DIM * 4 + DIM * row_bytes(t, DIM) + 2 * KV_DIM * row_bytes(t, DIM) + DIM * row_bytes(t, DIM) +
           2 * FF * row_bytes(t, DIM) + DIM * row_bytes(t, FF);
}

static int make_model(const char *path, ns_type type, bool tied) {
    ns_mkmodel_spec s;
    ns_mkmodel_spec_init(&s);
    s.arch = "llama";
    s.dim = DIM;
    s.layers = LAYERS;
    s.heads = HEADS;
    s.kv_heads = KV_HEADS;
    s.ff = FF;
    s.vocab = VOCAB;
    s.ctx = 2048;
    s.type = type;
    s.tied = tied;
    char err[256];
    if (ns_mkmodel_write(&s, path, err, sizeof err) != 0) {
        fprintf(stderr, "mkmodel %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

/* The parameters most tests use: 1024 tokens x 2 slots, F16 KV, batch 512. */
static ns_placement_params params(int64_t vram, int64_t reserve) {
    ns_placement_params p = {.n_ctx = 1024, .n_seq = 2, .kv_type = NS_KV_F16, .vram_free = vram, .vram_reserve = reserve};
    return p;
}

/* KV per layer: 2 (K and V) x 1024 tokens x 2 sequences x 128 (4 KV heads x
 * 32) x 2 bytes (f16) = 1048576 */
#define KV_LAYER_F16 INT64_C(1048576)
/* GPU compute buffer, B = 512, n_ctx = 1024, dq = 256, kv_dim = 128:
 *   activations 512 x (2*256 + 2*256 + 2*128 + 3*512) = 512 x 2816 = 1441792
 *   scores      8 heads x 1024 x 512                  = 4194304
 *   (1441792 + 4194304) x 4 bytes                     = 22544384 */
#define COMPUTE_GPU INT64_C(22544384)
/* CPU buffers: 4 x (512 x (2*256 + 3*256 + 4*128 + 3*512) + 8*1024 + 512*(2+2) + 2*1024)
 *            = 4 x (512 x 3328 + 8192 + 2048 + 2048) = 4 x 1716224 = 6864896
 * plus matmul scratch: 512 rows x max(512*4, 640) + 64 = 1048640 -> 7913536 */
#define COMPUTE_CPU INT64_C(7913536)
/* Q4_0 layer + its KV: 333824 + 1048576 = 1382400 */
#define LAYER_COST_Q4 INT64_C(1382400)
/* The head: output_norm 1024 + output 512 rows x 144 = 73728, plus the
 * logits of a batch 4 x 512 x 512 = 1048576 -> 1123328 */
#define HEAD_COST_Q4 INT64_C(1123328)

static ns_placement plan(const char *path, ns_placement_params p) {
    ns_placement pl;
    char err[256] = "";
    int rc = ns_placement_plan_file(path, &p, &pl, err, sizeof err);
    if (rc != 0) fprintf(stderr, "plan: %s\n", err);
    assert_int_equal(rc, 0);
    return pl;
}

/* ---- sizes ------------------------------------------------------------- */

static void test_sizes_q4_0(void **state) {
    (void)state;
    assert_int_equal(layer_bytes(NS_TYPE_Q4_0), 333824);
    ns_placement pl = plan(path_q4, params(0, 0));
    assert_string_equal(pl.arch, "llama");
    assert_int_equal(pl.n_layer, 4);
    assert_int_equal(pl.head_dim, 32);
    assert_int_equal(pl.n_head_kv, 4);
    assert_int_equal(pl.n_vocab, 512);
    assert_false(pl.tied);
    for (int i = 0; i < LAYERS; i++) {
        assert_int_equal(pl.layers[i].weights, 333824);
        assert_int_equal(pl.layers[i].kv, KV_LAYER_F16);
        assert_false(pl.layers[i].on_gpu);
    }
    /* token_embd: 512 rows x 144; output the same; output_norm 256 x 4 */
    assert_int_equal(pl.tok_embd, 73728);
    assert_int_equal(pl.output, 73728);
    assert_int_equal(pl.output_norm, 1024);
    assert_int_equal(pl.head, 74752);
    assert_int_equal(pl.other, 0);
    assert_int_equal(pl.layer_weights, 4 * 333824);
    assert_int_equal(pl.weights_total, 4 * 333824 + 73728 + 73728 + 1024);
    assert_int_equal(pl.kv_total, 4 * KV_LAYER_F16);
    assert_int_equal(pl.compute_gpu, COMPUTE_GPU);
    assert_int_equal(pl.compute_cpu, COMPUTE_CPU);
    /* all on the CPU: embedding + head + 4 x (layer + KV) + buffers
     * = 73728 + 74752 + 4 x 1382400 + 7913536 = 13591616 */
    assert_int_equal(pl.ram_used, 13591616);
    assert_int_equal(pl.vram_used, 0);
    assert_int_equal(pl.num_gpu, 0);
    ns_placement_clear(&pl);
}

static void test_sizes_q8_f16_f32kv(void **state) {
    (void)state;
    /* Q8_0 layer: 2048 + 256*272 + 2*128*272 + 256*272 + 2*512*272 + 256*544
     *           = 2048 + 69632 + 69632 + 69632 + 278528 + 139264 = 628736 */
    assert_int_equal(layer_bytes(NS_TYPE_Q8_0), 628736);
    ns_placement pl = plan(path_q8, params(0, 0));
    for (int i = 0; i < LAYERS; i++) assert_int_equal(pl.layers[i].weights, 628736);
    assert_int_equal(pl.tok_embd, 512 * 272);
    ns_placement_clear(&pl);

    /* F16 layer: 2048 + 256*512 + 2*128*512 + 256*512 + 2*512*512 + 256*1024
     *          = 2048 + 131072 + 131072 + 131072 + 524288 + 262144 = 1181696 */
    assert_int_equal(layer_bytes(NS_TYPE_F16), 1181696);
    ns_placement_params p = params(0, 0);
    p.kv_type = NS_KV_F32; /* 4 bytes an element: twice the f16 KV */
    pl = plan(path_f16, p);
    for (int i = 0; i < LAYERS; i++) {
        assert_int_equal(pl.layers[i].weights, 1181696);
        assert_int_equal(pl.layers[i].kv, 2 * KV_LAYER_F16);
    }
    ns_placement_clear(&pl);

    /* defaults: n_ctx 0 -> min(2048 train, 4096) = 2048, one sequence,
     * batch 512: KV 2 x 2048 x 1 x 128 x 2 = 1048576 per layer */
    ns_placement_params d = {0};
    pl = plan(path_q4, d);
    assert_int_equal(pl.n_ctx, 2048);
    assert_int_equal(pl.n_seq, 1);
    assert_int_equal(pl.n_batch, 512);
    assert_int_equal(pl.layers[0].kv, 1048576);
    ns_placement_clear(&pl);

    /* a batch larger than the context is capped, as in the engine: n_ctx
     * 256, B 256: compute_gpu = 4 x (256 x 2816 + 8 x 256 x 256) = 4980736 */
    p = params(0, 0);
    p.n_ctx = 256;
    pl = plan(path_q4, p);
    assert_int_equal(pl.n_batch, 256);
    assert_int_equal(pl.compute_gpu, 4980736);
    ns_placement_clear(&pl);
}

static void test_tied(void **state) {
    (void)state;
    ns_placement pl = plan(path_q4_tied, params(GIB, 0));
    assert_true(pl.tied);
    /* the head on the GPU is a copy of the token embedding */
    assert_int_equal(pl.output, 73728);
    assert_int_equal(pl.head, 74752);
    /* counted once in the file */
    assert_int_equal(pl.weights_total, 4 * 333824 + 73728 + 1024);
    assert_true(pl.output_on_gpu);
    assert_int_equal(pl.num_gpu, 5);
    /* RAM keeps the embedding for lookups: 73728 + buffers 7913536 */
    assert_int_equal(pl.ram_used, 73728 + COMPUTE_CPU);
    ns_placement_clear(&pl);

    /* on the CPU a tied head costs nothing beyond the embedding and its norm:
     * 73728 + 1024 + 4 x 1382400 + 7913536 = 13517888 */
    pl = plan(path_q4_tied, params(0, 0));
    assert_int_equal(pl.ram_used, 13517888);
    ns_placement_clear(&pl);
}

/* ---- the decision ------------------------------------------------------ */

static void test_no_vram(void **state) {
    (void)state;
    ns_placement pl = plan(path_q4, params(0, 512 * MIB));
    assert_int_equal(pl.n_gpu_layers, 0);
    assert_false(pl.output_on_gpu);
    assert_int_equal(pl.vram_budget, 0);
    assert_non_null(strstr(pl.reason, "no GPU memory"));
    ns_placement_clear(&pl);
    ns_placement_params p = params(-1, 0); /* unknown */
    pl = plan(path_q4, p);
    assert_int_equal(pl.num_gpu, 0);
    ns_placement_clear(&pl);
}

static void test_everything_fits(void **state) {
    (void)state;
    ns_placement pl = plan(path_q4, params(64 * GIB, 512 * MIB));
    assert_int_equal(pl.n_gpu_layers, 4);
    assert_true(pl.output_on_gpu);
    assert_int_equal(pl.num_gpu, 5);
    /* 22544384 + 4 x 1382400 + 1123328 = 29197312 */
    assert_int_equal(pl.vram_used, 29197312);
    /* only the embedding and the CPU buffers stay: 73728 + 7913536 */
    assert_int_equal(pl.ram_used, 73728 + COMPUTE_CPU);
    assert_non_null(strstr(pl.reason, "all 4 layers and the output head"));
    ns_placement_clear(&pl);
}

static void test_boundaries(void **state) {
    (void)state;
    const int64_t reserve = 100 * MIB;
    /* exactly compute + two layers: the last two layers (3 and 2) fit */
    int64_t two = COMPUTE_GPU + 2 * LAYER_COST_Q4; /* 25309184 */
    assert_int_equal(two, 25309184);
    ns_placement pl = plan(path_q4, params(reserve + two, reserve));
    assert_int_equal(pl.n_gpu_layers, 2);
    assert_false(pl.output_on_gpu);
    assert_int_equal(pl.num_gpu, 2);
    assert_false(pl.layers[0].on_gpu);
    assert_false(pl.layers[1].on_gpu);
    assert_true(pl.layers[2].on_gpu);
    assert_true(pl.layers[3].on_gpu);
    assert_int_equal(pl.vram_used, two);
    /* RAM: 73728 + 74752 + 2 x 1382400 + 7913536 = 10826816 */
    assert_int_equal(pl.ram_used, 10826816);
    /* "2 of 4 layers: the next (layer 1) needs 1.3 MiB, 0.0 KiB left" */
    assert_non_null(strstr(pl.reason, "2 of 4 layers: the next (layer 1) needs 1.3 MiB"));
    ns_placement_clear(&pl);

    /* one byte short: only one layer */
    pl = plan(path_q4, params(reserve + two - 1, reserve));
    assert_int_equal(pl.n_gpu_layers, 1);
    assert_true(pl.layers[3].on_gpu);
    assert_false(pl.layers[2].on_gpu);
    assert_int_equal(pl.vram_used, COMPUTE_GPU + LAYER_COST_Q4);
    ns_placement_clear(&pl);

    /* exactly everything: 29197312 */
    int64_t all = COMPUTE_GPU + 4 * LAYER_COST_Q4 + HEAD_COST_Q4;
    pl = plan(path_q4, params(reserve + all, reserve));
    assert_int_equal(pl.num_gpu, 5);
    assert_int_equal(pl.vram_used, all);
    ns_placement_clear(&pl);

    /* one byte short of the head: every layer, the head on the CPU */
    pl = plan(path_q4, params(reserve + all - 1, reserve));
    assert_int_equal(pl.n_gpu_layers, 4);
    assert_false(pl.output_on_gpu);
    assert_int_equal(pl.num_gpu, 4);
    assert_non_null(strstr(pl.reason, "all 4 layers, not the output head"));
    /* RAM: 73728 + 74752 (head) + 7913536 */
    assert_int_equal(pl.ram_used, 73728 + 74752 + COMPUTE_CPU);
    ns_placement_clear(&pl);

    /* the compute buffer alone fits but not with a layer: nothing offloaded */
    pl = plan(path_q4, params(reserve + COMPUTE_GPU + LAYER_COST_Q4 - 1, reserve));
    assert_int_equal(pl.num_gpu, 0);
    assert_int_equal(pl.vram_used, 0);
    assert_non_null(strstr(pl.reason, "0 of 4 layers"));
    ns_placement_clear(&pl);
}

static void test_reserve_larger_than_vram(void **state) {
    (void)state;
    ns_placement pl = plan(path_q4, params(256 * MIB, 512 * MIB));
    assert_int_equal(pl.num_gpu, 0);
    assert_int_equal(pl.vram_budget, 0);
    assert_non_null(strstr(pl.reason, "reserve"));
    ns_placement_clear(&pl);
    /* equal: nothing left either */
    pl = plan(path_q4, params(512 * MIB, 512 * MIB));
    assert_int_equal(pl.num_gpu, 0);
    ns_placement_clear(&pl);
}

static void test_auto_num_gpu(void **state) {
    (void)state;
    char err[256];
    ns_gguf *g = ns_gguf_open(path_q4, err, sizeof err);
    assert_non_null(g);
    ns_placement_params p = params(0, 0);
    assert_int_equal(ns_placement_auto_num_gpu(g, &p), 0);
    assert_int_equal(ns_placement_auto_num_gpu(g, NULL), 0);
    assert_int_equal(ns_placement_auto_num_gpu(NULL, &p), 0);
    p = params(GIB, 0);
    assert_int_equal(ns_placement_auto_num_gpu(g, &p), 5);
    p = params(COMPUTE_GPU + 3 * LAYER_COST_Q4, 0);
    assert_int_equal(ns_placement_auto_num_gpu(g, &p), 3);
    ns_gguf_close(g);
}

static void test_errors(void **state) {
    (void)state;
    ns_placement pl;
    char err[512] = "";
    ns_placement_params p = params(0, 0);
    assert_int_equal(ns_placement_plan_file("/nonexistent/model.gguf", &p, &pl, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/model.gguf"));
    p.n_ctx = -5;
    assert_int_equal(ns_placement_plan_file(path_q4, &p, &pl, err, sizeof err), -1);
    assert_non_null(strstr(err, "negative"));
    assert_null(pl.layers);
}

static void test_parse_size(void **state) {
    (void)state;
    int64_t v = -1;
    char err[256];
    assert_int_equal(ns_size_parse("8GiB", &v, err, sizeof err), 0);
    assert_int_equal(v, 8 * GIB);
    assert_int_equal(ns_size_parse("512MiB", &v, err, sizeof err), 0);
    assert_int_equal(v, 512 * MIB);
    assert_int_equal(ns_size_parse("1.5GB", &v, err, sizeof err), 0);
    assert_int_equal(v, 1500000000);
    assert_int_equal(ns_size_parse("1.5 gib", &v, err, sizeof err), 0);
    assert_int_equal(v, 3 * GIB / 2);
    assert_int_equal(ns_size_parse("4096", &v, err, sizeof err), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(ns_size_parse("2k", &v, err, sizeof err), 0);
    assert_int_equal(v, 2048);
    assert_int_equal(ns_size_parse("0", &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(ns_size_parse("24G", &v, err, sizeof err), 0);
    assert_int_equal(v, 24 * GIB);
    const char *bad[] = {"", "GiB", "-1GiB", "1..5G", "1e9", "0x10", "12 parsecs", "8GiBs", "inf", "99999999999T", NULL};
    for (int i = 0; bad[i]; i++) {
        if (ns_size_parse(bad[i], &v, err, sizeof err) == 0) fail_msg("'%s' parsed", bad[i]);
    }
    assert_int_equal(ns_size_parse(NULL, &v, err, sizeof err), -1);
}

/* ---- the runtime's num_gpu auto --------------------------------------- */

static int planned_of(ns_runtime *rt, const char *path, int num_gpu) {
    ns_load_opts o = {.num_gpu = num_gpu, .n_ctx = 1024};
    int status = 0;
    char err[256] = "";
    ns_loaded *lm = ns_runtime_acquire(rt, path, &o, NULL, &status, err, sizeof err);
    if (!lm) fprintf(stderr, "acquire: %d %s\n", status, err);
    assert_non_null(lm);
    ns_loaded_info *info = NULL;
    int n = 0;
    assert_int_equal(ns_runtime_ps(rt, &info, &n), 0);
    int planned = -100;
    for (int i = 0; i < n; i++)
        if (strcmp(info[i].path, path) == 0) {
            planned = info[i].planned_gpu_layers;
            assert_int_equal(info[i].size_vram, 0); /* nothing is offloaded */
            assert_int_equal(info[i].opts.num_gpu, num_gpu < 0 ? -1 : num_gpu);
        }
    free(info);
    ns_runtime_release(rt, lm, 0);
    ns_runtime_unload_all(rt);
    return planned;
}

static void test_runtime_auto(void **state) {
    (void)state;
    ns_runtime_config cfg = {.num_parallel = 2, .max_loaded = 1, .mem_budget = 8 * GIB};
    char err[256];
    /* the fake GPU 0: 16 GiB total, 4 GiB used: 12 GiB free, all fits */
    setenv("NSTACK_NVML_LIB", FAKE_NVML_PATH, 1);
    ns_runtime *rt = ns_runtime_new(&cfg, err, sizeof err);
    assert_non_null(rt);
    assert_int_equal(planned_of(rt, path_q4, -1), 5);
    /* an explicit num_gpu is recorded as given */
    assert_int_equal(planned_of(rt, path_q4, 2), 2);
    /* no NVML: 0 */
    setenv("NSTACK_NVML_LIB", "/nonexistent/libnvidia-ml.so.1", 1);
    assert_int_equal(planned_of(rt, path_q4, -1), 0);
    ns_runtime_free(rt, 0);
    unsetenv("NSTACK_NVML_LIB");
}

/* ---- the shared models ------------------------------------------------- */

static bool shared_present;

static void test_shared_stories(void **state) {
    (void)state;
    if (!shared_present) skip();
    const char *path = ns_test_shared_path("models/stories260K.gguf");
    /* F32, dim 64, 5 layers, 8 heads / 4 KV (head_dim 8, kv_dim 32), ffn 172,
     * vocab 512, training context 512, an output.weight of its own.
     * Layer: norms 2 x 64 x 4 = 512; q, o 64 x 64 x 4 = 16384 each;
     * k, v 32 x 64 x 4 = 8192 each; gate, up, down 172 x 64 x 4 = 44032 each:
     * 512 + 32768 + 16384 + 132096 = 181760 */
    ns_placement_params p = {.n_seq = 4, .kv_type = NS_KV_F16, .vram_free = 0};
    ns_placement pl = plan(path, p);
    assert_int_equal(pl.n_layer, 5);
    assert_int_equal(pl.head_dim, 8);
    assert_int_equal(pl.n_ctx, 512); /* the training context, under 4096 */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(pl.layers[i].weights, 181760);
        /* 2 x 512 tokens x 4 sequences x 32 x 2 bytes = 262144 */
        assert_int_equal(pl.layers[i].kv, 262144);
    }
    assert_false(pl.tied);
    /* output: 512 x 64 x 4 = 131072, its norm 256 */
    assert_int_equal(pl.output, 131072);
    assert_int_equal(pl.head, 131328);
    assert_int_equal(pl.tok_embd, 131072);
    ns_placement_clear(&pl);
}

static void test_shared_tiny_llama(void **state) {
    (void)state;
    if (!shared_present) skip();
    const char *path = ns_test_shared_path("models/tiny-llama-q4_0.gguf");
    /* Q4_0, dim 256, 2 layers, 8 heads / 4 KV, ffn 768, tied. Layer:
     * norms 2048; q, o 256 rows x 144 = 36864 each; k, v 128 x 144 = 18432
     * each; gate, up 768 rows x 144 = 110592 each; down 256 rows of 768 =
     * 256 x 432 = 110592: 2048 + 73728 + 36864 + 331776 = 444416 */
    ns_placement_params p = {.n_ctx = 4096, .n_seq = 1, .kv_type = NS_KV_F16};
    ns_placement pl = plan(path, p);
    assert_true(pl.tied);
    assert_int_equal(pl.n_vocab, 32000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pl.layers[i].weights, 444416);
        /* 2 x 4096 x 1 x 128 x 2 = 2097152 */
        assert_int_equal(pl.layers[i].kv, 2097152);
    }
    assert_int_equal(pl.output, pl.tok_embd);
    ns_placement_clear(&pl);
}

/* A K-quant mix: layers hold different types, so their sizes differ; each
 * must equal the sum the GGUF reader computed for that layer's tensors. */
static void test_shared_kquant_mix(void **state) {
    (void)state;
    if (!shared_present) skip();
    const char *path = ns_test_shared_path("models/tiny-llama-q4_k_m.gguf");
    char err[256];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    assert_non_null(g);
    int64_t want[2] = {0, 0}, rest = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        if (t->name.len > 6 && memcmp(t->name.ptr, "blk.0.", 6) == 0) want[0] += (int64_t)t->nbytes;
        else if (t->name.len > 6 && memcmp(t->name.ptr, "blk.1.", 6) == 0) want[1] += (int64_t)t->nbytes;
        else rest += (int64_t)t->nbytes;
    }
    ns_placement_params p = {.n_ctx = 2048, .n_seq = 1, .vram_free = 64 * GIB};
    ns_placement pl;
    assert_int_equal(ns_placement_plan(g, &p, &pl, err, sizeof err), 0);
    assert_int_equal(pl.layers[0].weights, want[0]);
    assert_int_equal(pl.layers[1].weights, want[1]);
    assert_true(want[0] != want[1]);
    assert_int_equal(pl.tok_embd + pl.output_norm + pl.other, rest);
    assert_int_equal(pl.num_gpu, 3);
    /* a budget between one and two layers: the last layer only. Reserve 0,
     * free = compute + layer 1 + KV (2 x 2048 x 128 x 2 = 1048576) */
    int64_t one = pl.compute_gpu + want[1] + 1048576;
    ns_placement_clear(&pl);
    p.vram_free = one;
    assert_int_equal(ns_placement_plan(g, &p, &pl, err, sizeof err), 0);
    assert_int_equal(pl.n_gpu_layers, 1);
    assert_true(pl.layers[1].on_gpu);
    ns_placement_clear(&pl);
    ns_gguf_close(g);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/nstack-test-placement-XXXXXX");
    if (!mkdtemp(tmp_dir)) return 1;
    snprintf(path_q4, sizeof path_q4, "%s/q4_0.gguf", tmp_dir);
    snprintf(path_q4_tied, sizeof path_q4_tied, "%s/q4_0-tied.gguf", tmp_dir);
    snprintf(path_q8, sizeof path_q8, "%s/q8_0.gguf", tmp_dir);
    snprintf(path_f16, sizeof path_f16, "%s/f16.gguf", tmp_dir);
    if (make_model(path_q4, NS_TYPE_Q4_0, false) || make_model(path_q4_tied, NS_TYPE_Q4_0, true) ||
        make_model(path_q8, NS_TYPE_Q8_0, false) || make_model(path_f16, NS_TYPE_F16, false))
        return 1;
    shared_present = ns_test_shared_path("models/stories260K.gguf") != NULL;

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_q4_0),
        cmocka_unit_test(test_sizes_q8_f16_f32kv),
        cmocka_unit_test(test_tied),
        cmocka_unit_test(test_no_vram),
        cmocka_unit_test(test_everything_fits),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_reserve_larger_than_vram),
        cmocka_unit_test(test_auto_num_gpu),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test(test_runtime_auto),
        cmocka_unit_test(test_shared_stories),
        cmocka_unit_test(test_shared_tiny_llama),
        cmocka_unit_test(test_shared_kquant_mix),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    return failed;
}
