/* nstack bench: prompt-processing and decode speed the way llama-bench
 * reports them (mean and standard deviation over repetitions, after one
 * warm-up), plus the memory bandwidth that decode reached. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "nstack/model.h"

typedef struct {
    const char *model;
    long long n_prompt, n_gen, threads, reps;
    bool json;
    ns_kv_type kv_type;
    long long mmap;   /* -mmp: 1 map the file, 0 read it into memory */
    long long n_par;  /* -np: sequences decoded together in the tg test */
} bench_opts;

static void bench_usage(FILE *f) {
    fprintf(f,
            "usage: nstack bench MODEL.gguf [-p N] [-n N] [-t N] [-r N] [-np N] [--kv-type f16|f32] [-mmp 0|1] [--json]\n"
            "  -p N   prompt tokens processed in one batch (default 512; 0 skips)\n"
            "  -n N   tokens decoded one at a time (default 128; 0 skips)\n"
            "  -t N   threads (default: online CPUs)\n"
            "  -r N   repetitions, after one warm-up (default 5)\n"
            "  -np N  tg decodes N sequences at once, one forward pass per step (continuous\n"
            "         batching); t/s is then the aggregate over all N (default 1)\n"
            "  -mmp 0 read the model into fresh memory instead of mapping it (default 1)\n");
}

typedef struct {
    double mean, sd;
} stat;

static stat stats(const double *v, int n) {
    stat s = {0, 0};
    for (int i = 0; i < n; i++) s.mean += v[i];
    s.mean /= n;
    for (int i = 0; i < n; i++) s.sd += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = n > 1 ? sqrt(s.sd / (n - 1)) : 0.0;
    return s;
}

enum { MAX_PARALLEL = 256 };

/* Tokens/s of one run: a batch of n_prompt tokens, or n_gen steps, each
 * one token of every one of n_par sequences. */
static double run_once(ns_context *c, const int32_t *toks, int n, bool batch, int n_par, char *err, size_t errlen) {
    for (int s = 0; s < n_par; s++) ns_seq_truncate(c, s, 0);
    double t0 = cli_now();
    if (batch) {
        if (ns_decode(c, 0, toks, n, false, err, errlen) != 0) return -1;
    } else if (n_par == 1) {
        for (int i = 0; i < n; i++)
            if (ns_decode(c, 0, &toks[i], 1, false, err, errlen) != 0) return -1;
    } else {
        ns_batch_item items[MAX_PARALLEL];
        for (int i = 0; i < n; i++) {
            /* each sequence its own token stream, so no two rows are equal */
            for (int s = 0; s < n_par; s++) items[s] = (ns_batch_item){s, &toks[(i + 17 * s) % n], 1};
            if (ns_decode_batch(c, items, n_par, err, errlen) != 0) return -1;
        }
    }
    return (double)n * (batch ? 1 : n_par) / (cli_now() - t0);
}

int cmd_bench(int argc, char **argv) {
    bench_opts o = {NULL, 512, 128, 0, 5, false, NS_KV_F16, 1, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        long long *target = NULL, lo = 0, hi = 1 << 20;
        if (strcmp(a, "-p") == 0) target = &o.n_prompt;
        else if (strcmp(a, "-n") == 0) target = &o.n_gen;
        else if (strcmp(a, "-t") == 0 || strcmp(a, "--threads") == 0) target = &o.threads, lo = 1, hi = 1024;
        else if (strcmp(a, "-r") == 0) target = &o.reps, lo = 1, hi = 1000;
        else if (strcmp(a, "-np") == 0 || strcmp(a, "--parallel") == 0) target = &o.n_par, lo = 1, hi = MAX_PARALLEL;
        else if (strcmp(a, "-mmp") == 0 || strcmp(a, "--mmap") == 0) target = &o.mmap, lo = 0, hi = 1;
        if (target) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_int(v, lo, hi, target)) goto bad;
        } else if (strcmp(a, "--json") == 0) {
            o.json = true;
        } else if (strcmp(a, "--kv-type") == 0) {
            if (!(v = cli_value(argc, argv, &i)) || !cli_parse_kv_type(v, &o.kv_type)) goto bad;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            bench_usage(stdout);
            return NS_EXIT_OK;
        } else if (!o.model && a[0] != '-') {
            o.model = a;
        } else {
            fprintf(stderr, "nstack bench: unexpected argument '%s'\n", a);
            return NS_EXIT_USAGE;
        }
        continue;
    bad:
        fprintf(stderr, "nstack bench: invalid value for %s\n", a);
        return NS_EXIT_USAGE;
    }
    if (!o.model) {
        bench_usage(stderr);
        return NS_EXIT_USAGE;
    }

    char err[512];
    int rc = NS_EXIT_FAIL;
    ns_context *c = NULL;
    int32_t *toks = NULL;
    double *rates = NULL;
    ns_model *m = ns_model_load_ex(o.model, o.mmap ? NS_GGUF_MMAP : NS_GGUF_READ, err, sizeof err);
    if (!m) {
        fprintf(stderr, "nstack: %s\n", err);
        return NS_EXIT_FAIL;
    }
    const ns_hparams *hp = ns_model_hparams(m);
    int n_max = (int)(o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen);
    long long n_batch = o.n_prompt > o.n_par ? o.n_prompt : o.n_par;
    ns_context_params cp = {.n_ctx = n_max > 0 ? n_max : 1, .n_seq = (int)o.n_par, .n_threads = (int)o.threads,
                            .n_batch = (int)n_batch, .kv_type = o.kv_type};
    c = ns_context_new(m, &cp, err, sizeof err);
    toks = malloc(sizeof(int32_t) * (size_t)(n_max > 0 ? n_max : 1));
    rates = malloc(sizeof(double) * (size_t)o.reps);
    if (!c || !toks || !rates) {
        fprintf(stderr, "nstack: %s\n", c ? "out of memory" : err);
        goto out;
    }
    /* token ids do not change the arithmetic; spread them over the vocabulary */
    for (int i = 0; i < n_max; i++) toks[i] = (int32_t)(((uint64_t)i * 7919u + 13u) % (uint64_t)hp->n_vocab);

    /* bytes one decode step streams: every weight once (the embedding only
     * one row unless it is also the output matrix) plus the KV read so far */
    const ns_gguf *g = ns_model_gguf(m);
    double weight_bytes = 0, params = 0, file_bytes = 0;
    const ns_gguf_tensor *emb = ns_gguf_find_tensor(g, "token_embd.weight");
    bool tied = ns_gguf_find_tensor(g, "output.weight") == NULL;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        double ne = (double)t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3];
        params += ne;
        file_bytes += (double)t->nbytes;
        weight_bytes += (t == emb && !tied) ? (double)t->nbytes / (double)t->ne[1] : (double)t->nbytes;
    }
    double kv_row = 2.0 * hp->n_layer * hp->n_head_kv * hp->head_dim * (o.kv_type == NS_KV_F16 ? 2 : 4);

    const char *tests[2] = {"pp", "tg"};
    long long sizes[2] = {o.n_prompt, o.n_gen};
    if (!o.json) {
        printf("| model | size | params | threads | test | t/s | decode GB/s |\n");
        printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    } else {
        printf("[");
    }
    int printed = 0;
    for (int k = 0; k < 2; k++) {
        if (sizes[k] <= 0) continue;
        int n = (int)sizes[k];
        const int n_par = k == 0 ? 1 : (int)o.n_par;
        if (run_once(c, toks, n, k == 0, n_par, err, sizeof err) < 0) { /* warm-up: page in weights */
            fprintf(stderr, "nstack: %s\n", err);
            goto out;
        }
        for (int r = 0; r < o.reps; r++) rates[r] = run_once(c, toks, n, k == 0, n_par, err, sizeof err);
        stat s = stats(rates, (int)o.reps);
        /* a decode step reads the weights once and each sequence's KV of
         * (n-1)/2 earlier tokens on average */
        double gbps = k == 1 ? s.mean / n_par * (weight_bytes + n_par * kv_row * (n - 1) / 2.0) / 1e9 : 0.0;
        char test[48];
        if (n_par > 1) snprintf(test, sizeof test, "%s%dx%d", tests[k], n, n_par);
        else snprintf(test, sizeof test, "%s%d", tests[k], n);
        if (o.json) {
            printf("%s{\"model\":\"%s\",\"arch\":\"%s\",\"size_bytes\":%.0f,\"params\":%.0f,\"threads\":%d,"
                   "\"test\":\"%s\",\"n_tokens\":%d,\"n_seq\":%d,\"reps\":%lld,\"avg_ts\":%.3f,\"stddev_ts\":%.3f",
                   printed ? "," : "", o.model, ns_arch_name(hp->arch), file_bytes, params,
                   ns_context_n_threads(c), test, n, n_par, o.reps, s.mean, s.sd);
            if (k == 1) printf(",\"bandwidth_gbs\":%.2f", gbps);
            printf("}");
        } else {
            printf("| %s %.2fB | %.2f GiB | %.2f B | %d | %s | %.2f ± %.2f |", ns_arch_name(hp->arch), params / 1e9,
                   file_bytes / (1024.0 * 1024 * 1024), params / 1e9, ns_context_n_threads(c), test, s.mean, s.sd);
            if (k == 1) printf(" %.1f |\n", gbps);
            else printf(" |\n");
        }
        fflush(stdout);
        printed++;
    }
    if (o.json) printf("]\n");
    rc = NS_EXIT_OK;
out:
    free(rates);
    free(toks);
    ns_context_free(c);
    ns_model_free(m);
    return rc;
}
