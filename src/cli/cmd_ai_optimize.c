/* `nstack ai optimize MODEL.gguf`: the placement planner's answer for a
 * model (src/runtime/placement.h): how many layers fit in the GPU's free
 * memory, the KV cache and buffer sizes, and what stays in RAM. It reads
 * the file's metadata only; nothing is loaded or offloaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "ai.h"
#include "cli.h"
#include "runtime/placement.h"
#include "util/size.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: nstack ai optimize MODEL.gguf [options]\n"
            "  --ctx N            tokens per sequence (default: the training context, at most 4096)\n"
            "  --parallel N       sequences (slots) the KV cache holds (default: NSTACK_NUM_PARALLEL or 4,\n"
            "                     as the server)\n"
            "  --kv f16|f32       KV cache type (default f16)\n"
            "  --batch N          prompt batch the compute buffers are sized for (default 512)\n"
            "  --vram SIZE|auto   free GPU memory to plan for, e.g. 8GiB, 1.5GB, 0 (default auto: NVML)\n"
            "  --gpu N            the GPU --vram auto reads (default 0)\n"
            "  --reserve SIZE     VRAM to leave free (default 512MiB)\n"
            "  --layers           also list every layer's size and device\n"
            "  --json             the plan as JSON\n"
            "Sizes: bytes, or with K/M/G/T (powers of 1024, also KiB/MiB/GiB) or KB/MB/GB (powers of 1000).\n"
            "num_gpu follows llama.cpp's -ngl: the last N layers go to the GPU, the output head too when\n"
            "N is layers + 1. There is no GPU backend yet: this is the plan a GPU build would use.\n");
}

/* "1.5 GiB"; exact "0 B" for nothing. */
static const char *sz(int64_t b, char *buf, size_t len) {
    double v = (double)b;
    if (b == 0) snprintf(buf, len, "0 B");
    else if (b >= (INT64_C(1) << 30)) snprintf(buf, len, "%.2f GiB", v / (double)(INT64_C(1) << 30));
    else if (b >= (INT64_C(1) << 20)) snprintf(buf, len, "%.1f MiB", v / (double)(1 << 20));
    else if (b >= 1024) snprintf(buf, len, "%.1f KiB", v / 1024.0);
    else snprintf(buf, len, "%lld B", (long long)b);
    return buf;
}

/* total < 0: no total (buffers exist per device, not in the file) */
static void row(const char *what, int64_t total, int64_t gpu, int64_t cpu) {
    char a[32], b[32], c[32];
    printf("  %-22s %12s %12s %12s\n", what, total < 0 ? "-" : sz(total, a, sizeof a), sz(gpu, b, sizeof b),
           sz(cpu, c, sizeof c));
}

static void print_text(const ns_placement *pl, const char *path, const char *vram_note, bool layers) {
    char a[32], b[32], c[32];
    printf("model     %s\n", path);
    printf("          %s, %d layers, dim %d, %d heads (%d KV, head dim %d), ffn %d, vocab %d%s\n", pl->arch,
           pl->n_layer, pl->n_embd, pl->n_head, pl->n_head_kv, pl->head_dim, pl->n_ff, pl->n_vocab,
           pl->tied ? ", tied embeddings" : "");
    printf("context   %d tokens x %d sequence%s, KV %s, batch %d\n", pl->n_ctx, pl->n_seq, pl->n_seq == 1 ? "" : "s",
           pl->kv_type == NS_KV_F32 ? "f32" : "f16", pl->n_batch);
    printf("VRAM      %s free%s, reserve %s: %s to plan with\n\n", sz(pl->vram_free, a, sizeof a), vram_note,
           sz(pl->vram_reserve, b, sizeof b), sz(pl->vram_budget, c, sizeof c));

    int64_t lw_gpu = 0, kv_gpu = 0;
    for (int i = 0; i < pl->n_layer; i++)
        if (pl->layers[i].on_gpu) {
            lw_gpu += pl->layers[i].weights;
            kv_gpu += pl->layers[i].kv;
        }
    bool any = pl->n_gpu_layers > 0;
    int64_t head_cpu = pl->output_on_gpu ? 0 : pl->output_norm + (pl->tied ? 0 : pl->output);
    int64_t logits = pl->output_on_gpu ? 4 * (int64_t)pl->n_batch * pl->n_vocab : 0;
    printf("  %-22s %12s %12s %12s\n", "", "total", "GPU", "CPU");
    row("layer weights", pl->layer_weights, lw_gpu, pl->layer_weights - lw_gpu);
    row("KV cache", pl->kv_total, kv_gpu, pl->kv_total - kv_gpu);
    row(pl->tied ? "output head (tied)" : "output head", pl->head, pl->output_on_gpu ? pl->head : 0, head_cpu);
    row("token embedding", pl->tok_embd, 0, pl->tok_embd);
    if (pl->other) row("other tensors", pl->other, any ? pl->other : 0, pl->other);
    row("compute buffers", -1, any ? pl->compute_gpu + logits : 0, pl->compute_cpu);
    row("total", pl->weights_total + pl->kv_total, pl->vram_used, pl->ram_used);
    printf("  (all weights in the file: %s; compute buffers if used: GPU %s, CPU %s)\n\n",
           sz(pl->weights_total, a, sizeof a), sz(pl->compute_gpu, b, sizeof b), sz(pl->compute_cpu, c, sizeof c));

    if (layers) {
        printf("  %-8s %12s %12s  %s\n", "layer", "weights", "KV", "device");
        for (int i = 0; i < pl->n_layer; i++)
            printf("  %-8d %12s %12s  %s\n", i, sz(pl->layers[i].weights, a, sizeof a), sz(pl->layers[i].kv, b, sizeof b),
                   pl->layers[i].on_gpu ? "GPU" : "CPU");
        printf("\n");
    }
    printf("num_gpu   %d (%d of %d layers on the GPU, output head on the %s)\n", pl->num_gpu, pl->n_gpu_layers,
           pl->n_layer, pl->output_on_gpu ? "GPU" : "CPU");
    printf("reason    %s\n", pl->reason);
}

static int print_json(const ns_placement *pl, const char *path, const char *vram_source, const char *vram_note,
                      bool layers) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", path);
    cJSON_AddStringToObject(o, "arch", pl->arch);
    cJSON_AddNumberToObject(o, "n_layer", pl->n_layer);
    cJSON_AddNumberToObject(o, "n_embd", pl->n_embd);
    cJSON_AddNumberToObject(o, "n_head", pl->n_head);
    cJSON_AddNumberToObject(o, "n_head_kv", pl->n_head_kv);
    cJSON_AddNumberToObject(o, "head_dim", pl->head_dim);
    cJSON_AddNumberToObject(o, "n_ff", pl->n_ff);
    cJSON_AddNumberToObject(o, "n_vocab", pl->n_vocab);
    cJSON_AddBoolToObject(o, "tied_embeddings", pl->tied);
    cJSON_AddNumberToObject(o, "n_ctx", pl->n_ctx);
    cJSON_AddNumberToObject(o, "parallel", pl->n_seq);
    cJSON_AddNumberToObject(o, "n_batch", pl->n_batch);
    cJSON_AddStringToObject(o, "kv_type", pl->kv_type == NS_KV_F32 ? "f32" : "f16");
    cJSON_AddStringToObject(o, "vram_source", vram_source);
    if (vram_note[0]) cJSON_AddStringToObject(o, "vram_note", vram_note);
    cJSON_AddNumberToObject(o, "vram_free", (double)pl->vram_free);
    cJSON_AddNumberToObject(o, "vram_reserve", (double)pl->vram_reserve);
    cJSON_AddNumberToObject(o, "vram_budget", (double)pl->vram_budget);
    cJSON_AddNumberToObject(o, "weights_total", (double)pl->weights_total);
    cJSON_AddNumberToObject(o, "layer_weights", (double)pl->layer_weights);
    cJSON_AddNumberToObject(o, "token_embd", (double)pl->tok_embd);
    cJSON_AddNumberToObject(o, "output_norm", (double)pl->output_norm);
    cJSON_AddNumberToObject(o, "output", (double)pl->output);
    cJSON_AddNumberToObject(o, "other", (double)pl->other);
    cJSON_AddNumberToObject(o, "kv_total", (double)pl->kv_total);
    cJSON_AddNumberToObject(o, "kv_per_layer", pl->n_layer ? (double)pl->layers[0].kv : 0);
    cJSON_AddNumberToObject(o, "compute_gpu", (double)pl->compute_gpu);
    cJSON_AddNumberToObject(o, "compute_cpu", (double)pl->compute_cpu);
    cJSON_AddNumberToObject(o, "num_gpu", pl->num_gpu);
    cJSON_AddNumberToObject(o, "gpu_layers", pl->n_gpu_layers);
    cJSON_AddBoolToObject(o, "output_on_gpu", pl->output_on_gpu);
    cJSON_AddNumberToObject(o, "vram_used", (double)pl->vram_used);
    cJSON_AddNumberToObject(o, "ram_used", (double)pl->ram_used);
    cJSON_AddStringToObject(o, "reason", pl->reason);
    if (layers) {
        cJSON *arr = cJSON_AddArrayToObject(o, "layers");
        for (int i = 0; i < pl->n_layer; i++) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddNumberToObject(l, "layer", i);
            cJSON_AddNumberToObject(l, "weights", (double)pl->layers[i].weights);
            cJSON_AddNumberToObject(l, "kv", (double)pl->layers[i].kv);
            cJSON_AddStringToObject(l, "device", pl->layers[i].on_gpu ? "gpu" : "cpu");
            cJSON_AddItemToArray(arr, l);
        }
    }
    char *txt = cJSON_Print(o);
    cJSON_Delete(o);
    if (!txt) {
        fprintf(stderr, "nstack: out of memory\n");
        return NS_EXIT_FAIL;
    }
    printf("%s\n", txt);
    free(txt);
    return NS_EXIT_OK;
}

int ai_optimize(int argc, char **argv) {
    char serr[256] = ""; /* why a size did not parse, for the message at bad: */
    const char *path = NULL, *vram_arg = "auto";
    long long ctx = 0, parallel = 0, batch = 0, gpu = 0;
    ns_kv_type kv = NS_KV_F16;
    int64_t reserve = NS_PLACEMENT_RESERVE_DEFAULT;
    bool json = false, layers = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        long long *target = NULL, hi = 1 << 20;
        if (strcmp(a, "--ctx") == 0) target = &ctx;
        else if (strcmp(a, "--parallel") == 0) target = &parallel, hi = 4096;
        else if (strcmp(a, "--batch") == 0) target = &batch;
        else if (strcmp(a, "--gpu") == 0) target = &gpu, hi = 64;
        if (target) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (!cli_parse_int(v, target == &gpu ? 0 : 1, hi, target)) goto bad;
        } else if (strcmp(a, "--kv") == 0 || strcmp(a, "--kv-type") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (!cli_parse_kv_type(v, &kv)) goto bad;
        } else if (strcmp(a, "--vram") == 0) {
            if (!(vram_arg = v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            int64_t tmp;
            if (strcmp(vram_arg, "auto") != 0 && ns_size_parse(vram_arg, &tmp, serr, sizeof serr) != 0) goto bad;
        } else if (strcmp(a, "--reserve") == 0) {
            if (!(v = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
            if (ns_size_parse(v, &reserve, serr, sizeof serr) != 0) goto bad;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--layers") == 0) {
            layers = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return NS_EXIT_OK;
        } else if (!path && a[0] != '-') {
            path = a;
        } else {
            fprintf(stderr, "nstack ai optimize: unexpected argument '%s'\n", a);
            usage(stderr);
            return NS_EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "nstack ai optimize: invalid value '%s' for %s%s%s\n", v, a, serr[0] ? ": " : "", serr);
        return NS_EXIT_USAGE;
    }
    if (!path) {
        usage(stderr);
        return NS_EXIT_USAGE;
    }
    if (parallel == 0) {
        /* the server's default slot count, so the plan matches what it loads */
        const char *env = getenv("NSTACK_NUM_PARALLEL");
        if (!env || !cli_parse_int(env, 1, 4096, &parallel)) parallel = 4;
    }

    ns_placement_params pp = {.n_ctx = (int)ctx, .n_seq = (int)parallel, .n_batch = (int)batch, .kv_type = kv,
                              .vram_reserve = reserve};
    char note[200] = "", why[160] = "";
    const char *source = "given";
    if (strcmp(vram_arg, "auto") == 0) {
        source = "nvml";
        pp.vram_free = ns_placement_gpu_free((int)gpu, why, sizeof why);
        if (why[0]) {
            snprintf(note, sizeof note, " (%s: planning for the CPU only)", why);
            if (!json) fprintf(stderr, "nstack ai optimize: %s; planning with 0 bytes of VRAM\n", why);
        } else {
            snprintf(note, sizeof note, " on GPU %lld (NVML)", gpu);
        }
    } else {
        ns_size_parse(vram_arg, &pp.vram_free, serr, sizeof serr);
    }

    ns_placement pl;
    char err[512];
    if (ns_placement_plan_file(path, &pp, &pl, err, sizeof err) != 0) {
        fprintf(stderr, "nstack ai optimize: %s\n", err);
        return NS_EXIT_FAIL;
    }
    int rc = NS_EXIT_OK;
    if (json) {
        rc = print_json(&pl, path, source, why, layers);
    } else {
        print_text(&pl, path, note, layers);
    }
    ns_placement_clear(&pl);
    return rc;
}
