/* The placement planner: how much of a GGUF model fits on a GPU with a
 * given amount of free memory, and what stays in RAM.
 *
 * It reads only the file's metadata and tensor infos (no weights), so it is
 * cheap enough to run before every load. The numbers are those of the
 * engine: tensor bytes from the type tables (ns_row_size, the same as the
 * loader), KV bytes as ns_kv_init allocates them. docs/ai.md ("Placement
 * planner") explains every formula.
 *
 * What goes to the GPU follows llama.cpp's -ngl / Ollama's num_gpu: a count
 * N offloads the LAST min(N, n_layer) layers, and the output head (output
 * norm + output matrix) too when N > n_layer. The planner picks the largest
 * N that fits: layers from the last one down while they fit, then the head
 * once every layer is on the GPU. The token embedding always stays in RAM
 * (a row lookup, not worth VRAM); with tied embeddings the head on the GPU
 * is a copy of it.
 *
 * There is no GPU backend yet (issue #10): the plan is advice, recorded and
 * shown, and changes nothing in how the CPU engine runs. */
#ifndef NS_RUNTIME_PLACEMENT_H
#define NS_RUNTIME_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nstack/gguf.h"
#include "nstack/model.h"

/* The batch a compute-buffer estimate assumes: the engine's and llama.cpp's
 * default prompt batch (ns_context_params.n_batch 0). */
#define NS_PLACEMENT_BATCH 512

/* VRAM left free by default: the CUDA context and driver take a few hundred
 * MiB outside any buffer we count, and other programs allocate too. */
#define NS_PLACEMENT_RESERVE_DEFAULT (INT64_C(512) << 20)

typedef struct {
    int n_ctx;            /* tokens per sequence; 0: min(training context, 4096), as the engine */
    int n_seq;            /* parallel sequences (slots); 0: 1 */
    int n_batch;          /* prompt batch; 0: NS_PLACEMENT_BATCH (capped by n_ctx) */
    ns_kv_type kv_type;
    int64_t vram_free;    /* bytes free on the device; <= 0: no GPU or unknown */
    int64_t vram_reserve; /* bytes to leave free (other programs, driver, fragmentation) */
} ns_placement_params;

typedef struct {
    int64_t weights;      /* bytes of every blk.N.* tensor */
    int64_t kv;           /* K and V of this layer for all sequences */
    bool on_gpu;
} ns_placement_layer;

typedef struct {
    /* the model */
    char arch[32];
    int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab, n_ctx_train;
    bool tied;                  /* no output.weight: the head reuses token_embd */
    /* the parameters, defaults filled in */
    int n_ctx, n_seq, n_batch;
    ns_kv_type kv_type;
    int64_t vram_free, vram_reserve;

    ns_placement_layer *layers; /* n_layer entries (ns_placement_clear frees them) */
    int64_t tok_embd;           /* token_embd.weight */
    int64_t output_norm;        /* output_norm.weight */
    int64_t output;             /* output.weight, or token_embd's bytes when tied */
    int64_t head;               /* output_norm + output: what the head costs on the GPU */
    int64_t other;              /* tensors outside blk.N and the above (rope factors) */
    int64_t layer_weights;      /* sum of layers[].weights */
    int64_t weights_total;      /* every tensor in the file, counted once */
    int64_t kv_total;           /* sum of layers[].kv */
    int64_t compute_gpu;        /* GPU compute buffer, needed once any layer is offloaded */
    int64_t compute_cpu;        /* the engine's CPU buffers (activations, scores, logits) */

    /* the decision */
    int n_gpu_layers;           /* the last n_gpu_layers layers go to the GPU */
    bool output_on_gpu;         /* only when every layer is there */
    int num_gpu;                /* n_gpu_layers + output_on_gpu: the llama.cpp -ngl / num_gpu value */
    int64_t vram_budget;        /* vram_free - vram_reserve, >= 0 */
    int64_t vram_used;          /* GPU weights + GPU KV + compute_gpu (+ other) */
    int64_t ram_used;           /* CPU weights + CPU KV + compute_cpu */
    char reason[256];           /* one line: why this many layers */
} ns_placement;

/* Plans an open file. 0, or -1 with err (missing metadata, a tensor type
 * the tables do not know, out of memory). */
int ns_placement_plan(const ns_gguf *g, const ns_placement_params *p, ns_placement *out, char *err, size_t errlen);
/* The same for a path (opened, planned, closed). */
int ns_placement_plan_file(const char *path, const ns_placement_params *p, ns_placement *out, char *err,
                           size_t errlen);
void ns_placement_clear(ns_placement *pl);

/* The num_gpu value for "auto" (-1): the plan's num_gpu, 0 when vram_free
 * is unknown/0 or the file cannot be planned. */
int ns_placement_auto_num_gpu(const ns_gguf *g, const ns_placement_params *p);

/* Free bytes of GPU `index` read now through NVML (total - used), 0 when
 * there is no NVML, no such GPU or the reading failed; *why (may be NULL)
 * gets a short reason when 0 is returned because of that, or "". */
int64_t ns_placement_gpu_free(int index, char *why, size_t whylen);


#endif
