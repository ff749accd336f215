/* nstack logits: teacher-forced evaluation of a token list, printing the
 * best logits after each position as JSON lines (what the reference checks
 * compare against). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nstack/model.h"

static int parse_tokens(const char *s, int32_t **out, int *n) {
    int cap = 16, len = 0;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    if (!ids) return -1;
    const char *p = s;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return -1;
        }
        if (len == cap) {
            int32_t *nb = realloc(ids, sizeof(int32_t) * (size_t)(cap *= 2));
            if (!nb) {
                free(ids);
                return -1;
            }
            ids = nb;
        }
        ids[len++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (len == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    *n = len;
    return 0;
}

typedef struct {
    float logit;
    int32_t id;
} scored;

/* The k best of n logits, best first (ties: lower id first). */
static void top_k(const float *logits, int n, int k, scored *out) {
    int have = 0;
    for (int i = 0; i < n; i++) {
        float l = logits[i];
        if (have == k && !(l > out[k - 1].logit)) continue;
        int j = have < k ? have++ : k - 1;
        while (j > 0 && out[j - 1].logit < l) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = (scored){l, i};
    }
}

int cmd_logits(int argc, char **argv) {
    const char *path = NULL, *tok_arg = NULL;
    long long k = 10, n_ctx = 0, n_threads = 0;
    ns_kv_type kv_type = NS_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (strcmp(a, "--tokens") == 0) {
            if (!(tok_arg = cli_value(argc, argv, &i))) return NS_EXIT_USAGE;
        } else if (strcmp(a, "--top") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 1, 1 << 20, &k)) goto bad;
        } else if (strcmp(a, "--ctx") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 1, 1 << 20, &n_ctx)) goto bad;
        } else if (strcmp(a, "--threads") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, 1, 1024, &n_threads)) goto bad;
        } else if (strcmp(a, "--kv-type") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_kv_type(v, &kv_type)) goto bad;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            printf("usage: nstack logits MODEL.gguf --tokens 1,2,3 [--top K] [--ctx N] [--threads N] [--kv-type f16|f32]\n");
            return NS_EXIT_OK;
        } else if (!path && a[0] != '-') {
            path = a;
        } else {
            fprintf(stderr, "nstack logits: unexpected argument '%s'\n", a);
            return NS_EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "nstack logits: invalid value for %s\n", a);
        return NS_EXIT_USAGE;
    }
    if (!path || !tok_arg) {
        fprintf(stderr, "usage: nstack logits MODEL.gguf --tokens 1,2,3 [--top K]\n");
        return NS_EXIT_USAGE;
    }
    int32_t *ids;
    int n;
    if (parse_tokens(tok_arg, &ids, &n) != 0) {
        fprintf(stderr, "nstack logits: --tokens must be a comma-separated list of token ids\n");
        return NS_EXIT_USAGE;
    }
    int rc = NS_EXIT_FAIL;
    char err[512];
    ns_context *c = NULL;
    scored *best = NULL;
    ns_model *m = ns_model_load(path, err, sizeof err);
    if (!m) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    if (n_ctx == 0) n_ctx = n > 512 ? n : 512;
    ns_context_params cp = {.n_ctx = (int)n_ctx, .n_threads = (int)n_threads, .kv_type = kv_type};
    c = ns_context_new(m, &cp, err, sizeof err);
    if (!c) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    if (ns_decode(c, 0, ids, n, true, err, sizeof err) != 0) {
        fprintf(stderr, "nstack: %s\n", err);
        goto out;
    }
    int n_vocab = ns_model_hparams(m)->n_vocab;
    if (k > n_vocab) k = n_vocab;
    best = malloc(sizeof(scored) * (size_t)k);
    if (!best) goto out;
    for (int i = 0; i < n; i++) {
        top_k(ns_context_logits(c, i), n_vocab, (int)k, best);
        printf("{\"pos\":%d,\"token\":%d,\"top\":[", i, ids[i]);
        for (int j = 0; j < k; j++) printf("%s[%d,%.6f]", j ? "," : "", best[j].id, best[j].logit);
        printf("]}\n");
    }
    rc = NS_EXIT_OK;
out:
    free(best);
    free(ids);
    ns_context_free(c);
    ns_model_free(m);
    return rc;
}
