/* nstack mkmodel: a random-weight GGUF of a chosen architecture and shape,
 * for tests and benchmarks. The vocabulary is copied from another GGUF
 * (--vocab-from) or made up: byte tokens plus numbered pieces. The builder
 * itself is shared with the server's demo model (src/server/demo_model.c). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "engine/quantize.h"
#include "server/demo_model.h"

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
        else if (strcmp(a, "--vocab") == 0) target = &o.vocab, lo = NS_MKMODEL_MIN_VOCAB, hi = 1 << 22;
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
    ns_mkmodel_spec spec;
    ns_mkmodel_spec_init(&spec);
    spec.arch = o.arch;
    spec.vocab_from = o.vocab_from;
    spec.dim = o.dim;
    spec.layers = o.layers;
    spec.heads = o.heads;
    spec.kv_heads = o.kv_heads;
    spec.ff = o.ff;
    spec.vocab = o.vocab;
    spec.ctx = o.ctx;
    spec.seed = (uint64_t)o.seed;
    spec.type = o.type;
    spec.tied = o.tied;
    char err[512];
    if (ns_mkmodel_write(&spec, o.out, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        fprintf(stderr, "nstack mkmodel: failed to build %s\n", o.out);
        return NS_EXIT_FAIL;
    }
    return NS_EXIT_OK;
}
