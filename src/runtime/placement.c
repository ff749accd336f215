/* The placement planner (placement.h); docs/ai.md "Placement planner" has
 * the formulas with a worked example. */
#include "runtime/placement.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/matmul.h"
#include "engine/types.h"
#include "monitor/nvml.h"

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* "212.0 MiB": the unit that keeps the number readable. */
static const char *human(int64_t b, char *buf, size_t len) {
    double v = (double)b;
    if (b >= (INT64_C(1) << 30)) snprintf(buf, len, "%.2f GiB", v / (double)(INT64_C(1) << 30));
    else if (b >= (INT64_C(1) << 20)) snprintf(buf, len, "%.1f MiB", v / (double)(1 << 20));
    else snprintf(buf, len, "%.1f KiB", v / 1024.0);
    return buf;
}

/* ---- the file's shape ---- */

static int arch_u32(const ns_gguf *g, const char *arch, const char *suffix, bool required, uint32_t *out,
                    char *err, size_t errlen) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (ns_gguf_get_u32(g, key, out)) return 0;
    if (!required && !ns_gguf_find(g, key)) return 1;
    /* present but not one integer: per-layer arrays (head_count_kv of some
     * architectures) would need per-layer KV sizes */
    return fail(err, errlen, "metadata %s is %s", key, ns_gguf_find(g, key) ? "not a single integer" : "missing");
}

/* Bytes of a tensor as the engine lays it out: rows of ne[0] elements in
 * whole blocks of the type (ns_row_size), times the other dimensions. */
static int tensor_bytes(const ns_gguf_tensor *t, int64_t *out, char *err, size_t errlen) {
    if (!ns_type_get(t->type))
        return fail(err, errlen, "tensor '%.*s' has unknown type %u", (int)t->name.len, t->name.ptr, t->type);
    size_t row = ns_row_size((ns_type)t->type, t->ne[0]);
    if (row == 0 && t->ne[0] != 0)
        return fail(err, errlen, "tensor '%.*s': %lld elements per row is not a whole number of %s blocks",
                    (int)t->name.len, t->name.ptr, (long long)t->ne[0], ns_type_name(t->type));
    int64_t n = (int64_t)row;
    for (int d = 1; d < NS_GGUF_MAX_DIMS; d++) n *= t->ne[d];
    *out = n;
    return 0;
}

/* Layer index of "blk.N.<anything>", or -1. */
static int layer_of(ns_gguf_str name) {
    if (name.len < 6 || memcmp(name.ptr, "blk.", 4) != 0) return -1;
    int n = 0;
    uint64_t i = 4;
    if (!isdigit((unsigned char)name.ptr[i])) return -1;
    for (; i < name.len && isdigit((unsigned char)name.ptr[i]); i++) {
        n = n * 10 + (name.ptr[i] - '0');
        if (n > (1 << 20)) return -1;
    }
    return (i < name.len && name.ptr[i] == '.') ? n : -1;
}

void ns_placement_clear(ns_placement *pl) {
    if (!pl) return;
    free(pl->layers);
    memset(pl, 0, sizeof *pl);
}

/* ---- the decision ---- */

/* Greedy, as llama.cpp's -ngl counts: the last layer first, down to layer
 * 0, stopping at the first that does not fit (offloaded layers must be a
 * contiguous tail: the activations cross between devices once), then the
 * head once all layers are on the GPU. */
static void decide(ns_placement *pl) {
    char a[32], b[32], c[32], e[32];
    const int n_layer = pl->n_layer;
    /* the head's cost includes the logits of a whole batch in VRAM */
    const int64_t head_cost = pl->head + 4 * (int64_t)pl->n_batch * pl->n_vocab;
    int64_t budget = pl->vram_free > pl->vram_reserve ? pl->vram_free - pl->vram_reserve : 0;
    pl->vram_budget = pl->vram_free > 0 ? budget : 0;
    int n = 0;
    int64_t used = 0;
    if (pl->vram_free <= 0) {
        snprintf(pl->reason, sizeof pl->reason, "no GPU memory known (no GPU, or free VRAM unknown): all %d layers on the CPU",
                 n_layer);
    } else if (budget == 0) {
        snprintf(pl->reason, sizeof pl->reason, "the reserve of %s leaves nothing of the %s free: all %d layers on the CPU",
                 human(pl->vram_reserve, a, sizeof a), human(pl->vram_free, b, sizeof b), n_layer);
    } else {
        /* the first offloaded layer brings the fixed costs with it */
        used = pl->compute_gpu + pl->other;
        for (int il = n_layer - 1; il >= 0; il--) {
            int64_t cost = pl->layers[il].weights + pl->layers[il].kv;
            if (used + cost > budget) {
                if (n == 0)
                    snprintf(pl->reason, sizeof pl->reason,
                             "0 of %d layers: the compute buffer (%s) and the last layer (%s) need %s, %s available "
                             "after the reserve",
                             n_layer, human(pl->compute_gpu + pl->other, a, sizeof a), human(cost, b, sizeof b),
                             human(used + cost, c, sizeof c), human(budget, e, sizeof e));
                else
                    snprintf(pl->reason, sizeof pl->reason, "%d of %d layers: the next (layer %d) needs %s, %s left", n,
                             n_layer, il, human(cost, a, sizeof a), human(budget - used, b, sizeof b));
                break;
            }
            used += cost;
            pl->layers[il].on_gpu = true;
            n++;
        }
        if (n == 0) used = 0;
        if (n == n_layer) {
            if (used + head_cost <= budget) {
                used += head_cost;
                pl->output_on_gpu = true;
                snprintf(pl->reason, sizeof pl->reason, "all %d layers and the output head: %s of %s, %s left", n_layer,
                         human(used, a, sizeof a), human(budget, b, sizeof b), human(budget - used, c, sizeof c));
            } else {
                snprintf(pl->reason, sizeof pl->reason,
                         "all %d layers, not the output head: it needs %s (weights and logits), %s left", n_layer,
                         human(head_cost, a, sizeof a), human(budget - used, b, sizeof b));
            }
        }
    }
    pl->n_gpu_layers = n;
    pl->num_gpu = n + (pl->output_on_gpu ? 1 : 0);
    pl->vram_used = used;

    /* RAM: the token embedding (always), the small tensors, the head when it
     * stays, every CPU layer with its KV, and the engine's buffers. With
     * tied embeddings a CPU head is the token embedding itself. */
    int64_t ram = pl->tok_embd + pl->other + pl->compute_cpu;
    if (!pl->output_on_gpu) ram += pl->output_norm + (pl->tied ? 0 : pl->output);
    for (int il = 0; il < n_layer; il++)
        if (!pl->layers[il].on_gpu) ram += pl->layers[il].weights + pl->layers[il].kv;
    pl->ram_used = ram;
}

int ns_placement_plan(const ns_gguf *g, const ns_placement_params *p, ns_placement *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    ns_placement_params d = {0};
    if (!p) p = &d;
    if (p->n_ctx < 0 || p->n_seq < 0 || p->n_batch < 0 || p->vram_reserve < 0)
        return fail(err, errlen, "context, parallel, batch and reserve must not be negative");
    if (p->kv_type != NS_KV_F16 && p->kv_type != NS_KV_F32) return fail(err, errlen, "unknown KV cache type %d", (int)p->kv_type);
    char *arch = ns_gguf_get_str(g, "general.architecture");
    if (!arch) return fail(err, errlen, "general.architecture is missing");
    snprintf(out->arch, sizeof out->arch, "%s", arch);
    uint32_t emb, nl, ff, nh, nkv, ctx = 2048;
    int rc = 0;
    if (arch_u32(g, arch, "embedding_length", true, &emb, err, errlen) ||
        arch_u32(g, arch, "block_count", true, &nl, err, errlen) ||
        arch_u32(g, arch, "feed_forward_length", true, &ff, err, errlen) ||
        arch_u32(g, arch, "attention.head_count", true, &nh, err, errlen))
        rc = -1;
    if (rc == 0) {
        int r = arch_u32(g, arch, "attention.head_count_kv", false, &nkv, err, errlen);
        if (r < 0) rc = -1;
        else if (r == 1) nkv = nh;
    }
    if (rc == 0 && arch_u32(g, arch, "context_length", false, &ctx, err, errlen) < 0) rc = -1;
    free(arch);
    if (rc != 0) return -1;
    /* the loader's limits: keeps every product below in 64 bits */
    if (emb < 1 || emb > (1u << 16) || nl < 1 || nl > 1024 || ff < 1 || ff > (1u << 20) || nh < 1 || nh > 1024 ||
        nkv < 1 || nkv > nh || emb % nh != 0)
        return fail(err, errlen, "hyperparameters out of range (embedding %u, layers %u, ffn %u, heads %u/%u)", emb, nl,
                    ff, nh, nkv);
    out->n_embd = (int)emb;
    out->n_layer = (int)nl;
    out->n_ff = (int)ff;
    out->n_head = (int)nh;
    out->n_head_kv = (int)nkv;
    out->head_dim = (int)(emb / nh);
    out->n_ctx_train = ctx == 0 ? 2048 : ctx > (1u << 24) ? (1 << 24) : (int)ctx;

    const ns_gguf_tensor *te = ns_gguf_find_tensor(g, "token_embd.weight");
    if (!te) return fail(err, errlen, "tensor 'token_embd.weight' is missing");
    if (te->ne[1] < 1 || te->ne[1] > (1 << 24)) return fail(err, errlen, "token_embd.weight has %lld rows", (long long)te->ne[1]);
    out->n_vocab = (int)te->ne[1];

    /* the parameters, with the engine's defaults */
    out->n_ctx = p->n_ctx > 0 ? p->n_ctx : (out->n_ctx_train < 4096 ? out->n_ctx_train : 4096);
    if (out->n_ctx > (1 << 20)) return fail(err, errlen, "context size %d is too large", out->n_ctx);
    out->n_seq = p->n_seq > 0 ? p->n_seq : 1;
    if (out->n_seq > 4096) return fail(err, errlen, "%d parallel sequences is too many", out->n_seq);
    out->n_batch = p->n_batch > 0 ? p->n_batch : NS_PLACEMENT_BATCH;
    if (out->n_batch > out->n_ctx) out->n_batch = out->n_ctx; /* as ns_context_new */
    out->kv_type = p->kv_type;
    out->vram_free = p->vram_free > 0 ? p->vram_free : 0;
    out->vram_reserve = p->vram_reserve;

    out->layers = calloc((size_t)out->n_layer, sizeof *out->layers);
    if (!out->layers) return fail(err, errlen, "out of memory");

    /* weights: every tensor once, by where it goes */
    bool have_output = false;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        int64_t nb = 0;
        if (tensor_bytes(t, &nb, err, errlen) != 0) goto error;
        out->weights_total += nb;
        int il = layer_of(t->name);
        if (il >= 0 && il < out->n_layer) {
            out->layers[il].weights += nb;
            out->layer_weights += nb;
        } else if (ns_gguf_str_eq(t->name, "token_embd.weight")) {
            out->tok_embd = nb;
        } else if (ns_gguf_str_eq(t->name, "output_norm.weight")) {
            out->output_norm = nb;
        } else if (ns_gguf_str_eq(t->name, "output.weight")) {
            out->output = nb;
            have_output = true;
        } else {
            out->other += nb; /* rope factors, or blocks beyond block_count */
        }
    }
    out->tied = !have_output;
    /* tied: the head on the GPU is a copy of the token embedding, which
     * stays in RAM for the row lookups */
    if (out->tied) out->output = out->tok_embd;
    out->head = out->output_norm + out->output;

    /* KV as ns_kv_init allocates it: K and V rows of kv_dim elements for
     * every position of every sequence; GQA shrinks kv_dim, not n_ctx. */
    const int64_t elt = p->kv_type == NS_KV_F32 ? 4 : 2;
    const int64_t kv_dim = (int64_t)out->n_head_kv * out->head_dim;
    const int64_t kv_layer = 2 * (int64_t)out->n_ctx * out->n_seq * kv_dim * elt;
    for (int il = 0; il < out->n_layer; il++) out->layers[il].kv = kv_layer;
    out->kv_total = kv_layer * out->n_layer;

    /* Compute buffers for a prompt batch of B tokens (floats are 4 bytes):
     * GPU: one layer's activations at a time (the graph reuses them layer
     *   to layer): residual and normed input (2 n_embd), q and the attention
     *   output (2 dq), k and v (2 dkv), gate, up and their product (3 n_ff);
     *   plus that layer's attention scores n_head x n_ctx x B (no flash
     *   attention, the largest single buffer at long contexts). The logits
     *   of the batch (B x n_vocab) count with the head.
     * CPU: what ns_context_new allocates (as manager.c's estimate): per
     *   batch row 2 n_embd + 3 dq + 4 dkv + 3 n_ff floats, scores n_head x
     *   n_ctx, logits n_vocab x (2 + n_seq), a position list per slot, and
     *   the matmul scratch of the widest input. */
    const int64_t B = out->n_batch, dq = (int64_t)out->n_head * out->head_dim;
    out->compute_gpu = 4 * (B * (2 * (int64_t)out->n_embd + 2 * dq + 2 * kv_dim + 3 * (int64_t)out->n_ff) +
                            (int64_t)out->n_head * out->n_ctx * B);
    int64_t widest = out->n_ff > out->n_embd ? out->n_ff : out->n_embd;
    if (dq > widest) widest = dq;
    out->compute_cpu = 4 * (B * (2 * (int64_t)out->n_embd + 3 * dq + 4 * kv_dim + 3 * (int64_t)out->n_ff) +
                            (int64_t)out->n_head * out->n_ctx + (int64_t)out->n_vocab * (2 + out->n_seq) +
                            (int64_t)out->n_seq * out->n_ctx) +
                       (int64_t)ns_matmul_scratch_size(widest, (int)B);

    decide(out);
    return 0;
error:
    ns_placement_clear(out);
    return -1;
}

int ns_placement_plan_file(const char *path, const ns_placement_params *p, ns_placement *out, char *err,
                           size_t errlen) {
    memset(out, 0, sizeof *out);
    ns_gguf *g = ns_gguf_open(path, err, errlen);
    if (!g) return -1;
    char why[384];
    int rc = ns_placement_plan(g, p, out, why, sizeof why);
    if (rc != 0) fail(err, errlen, "%s: %s", path, why);
    ns_gguf_close(g);
    return rc;
}

int ns_placement_auto_num_gpu(const ns_gguf *g, const ns_placement_params *p) {
    if (!g || !p || p->vram_free <= 0) return 0;
    ns_placement pl;
    char err[256];
    if (ns_placement_plan(g, p, &pl, err, sizeof err) != 0) return 0;
    int n = pl.num_gpu;
    ns_placement_clear(&pl);
    return n;
}

int64_t ns_placement_gpu_free(int index, char *why, size_t whylen) {
    if (why && whylen) why[0] = '\0';
    ns_nvml *nv = ns_nvml_open();
    if (!nv) {
        if (why && whylen) snprintf(why, whylen, "no NVIDIA GPU: NVML is not available");
        return 0;
    }
    int64_t free_b = 0;
    int n = ns_nvml_count(nv);
    ns_gpu_reading r;
    if (index < 0 || index >= n) {
        if (why && whylen) snprintf(why, whylen, "GPU %d not found (%d GPU%s)", index, n, n == 1 ? "" : "s");
    } else if (ns_nvml_read(nv, index, &r) != 0 || r.vram_total < 0 || r.vram_used < 0) {
        if (why && whylen) snprintf(why, whylen, "the memory of GPU %d could not be read", index);
    } else {
        free_b = r.vram_total > r.vram_used ? r.vram_total - r.vram_used : 0;
    }
    ns_nvml_close(nv);
    return free_b;
}

