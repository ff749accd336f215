/* The in-process cost of a 1-token generation, the baseline that
 * bench/server.sh compares `POST /api/generate` against.
 *
 *   bench_engine_1tok [-n ITERS] [-w WARMUP] [-t THREADS] [-p PROMPT] MODEL
 *
 * Each iteration does what a route does for one request, minus HTTP and
 * JSON: acquire the (warm) model from the runtime, tokenize the prompt,
 * submit a greedy job with n_predict 1, release the handle and wait for the
 * job's DONE event. Prints mean, p50, p99 and max in microseconds as one
 * "key=value" line for scripts, after a human-readable one. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nstack/tokenizer.h"
#include "runtime/runtime.h"
#include "runtime/store.h"

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void usage(FILE *f) {
    fprintf(f, "usage: bench_engine_1tok [-n ITERS] [-w WARMUP] [-t THREADS] [-p PROMPT] MODEL\n"
               "  -n ITERS    timed iterations (default 2000)\n"
               "  -w WARMUP   untimed iterations first (default 50)\n"
               "  -t THREADS  threads of the model's runner (default: the runtime's, online CPUs)\n"
               "  -p PROMPT   prompt text (default \"Once upon a time\")\n");
}

/* One request's worth of work; returns its wall time in ns, or -1. */
static int64_t one_generation(ns_runtime *rt, const char *model, const ns_load_opts *opts, const char *prompt) {
    char err[512];
    int status = 0;
    int64_t load_ns = 0;
    int64_t t0 = now_ns();
    ns_loaded *lm = ns_runtime_acquire(rt, model, opts, &load_ns, &status, err, sizeof err);
    if (!lm) {
        fprintf(stderr, "bench_engine_1tok: %s (status %d)\n", err, status);
        return -1;
    }
    const ns_vocab *vocab = ns_loaded_vocab(lm);
    int32_t toks[512];
    int n = ns_tokenize(vocab, prompt, strlen(prompt), ns_vocab_add_bos(vocab), false, toks, 512);
    if (n < 1 || n > 512) {
        fprintf(stderr, "bench_engine_1tok: the prompt does not tokenize to 1..512 tokens\n");
        ns_runtime_release(rt, lm, NS_KEEP_ALIVE_DEFAULT);
        return -1;
    }
    ns_gen_params p = {0};
    p.prompt = toks;
    p.n_prompt = n;
    p.sampling = ns_sampler_defaults();
    p.sampling.temperature = 0;
    p.n_predict = 1;
    p.request_id = "bench";
    ns_job *job = ns_job_submit(lm, &p, &status, err, sizeof err);
    ns_runtime_release(rt, lm, -1);
    if (!job) {
        fprintf(stderr, "bench_engine_1tok: submit: %s (status %d)\n", err, status);
        return -1;
    }
    ns_job_event ev;
    int ok = 0;
    while (ns_job_next(job, &ev, -1) > 0) {
        if (ev.kind == NS_JOB_DONE) ok = ev.stats.finish == NS_FINISH_LENGTH || ev.stats.finish == NS_FINISH_STOP;
        ns_job_event_clear(&ev);
    }
    ns_job_free(job);
    int64_t dt = now_ns() - t0;
    if (!ok) {
        fprintf(stderr, "bench_engine_1tok: the job did not finish normally\n");
        return -1;
    }
    return dt;
}

/* The runtime needs a store; give it an empty one of its own so the
 * benchmark never writes to the user's model directory. */
static void remove_store(const char *dir) {
    char sub[4096];
    snprintf(sub, sizeof sub, "%s/manifests", dir);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/blobs", dir);
    rmdir(sub);
    rmdir(dir);
}

int main(int argc, char **argv) {
    long iters = 2000, warmup = 50;
    int threads = 0;
    const char *prompt = "Once upon a time";
    int opt;
    while ((opt = getopt(argc, argv, "n:w:t:p:h")) != -1) {
        switch (opt) {
        case 'n': iters = strtol(optarg, NULL, 10); break;
        case 'w': warmup = strtol(optarg, NULL, 10); break;
        case 't': threads = (int)strtol(optarg, NULL, 10); break;
        case 'p': prompt = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || iters < 1 || warmup < 0 || threads < 0) {
        usage(stderr);
        return 2;
    }
    const char *model = argv[optind];

    char dir[] = "/tmp/nstack-bench-store.XXXXXX";
    if (!mkdtemp(dir)) {
        fprintf(stderr, "bench_engine_1tok: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    char err[512];
    int rc = 1;
    int64_t *samples = NULL;
    ns_runtime *rt = NULL;
    ns_store *store = ns_store_open(dir, "/nonexistent/ollama-models", err, sizeof err);
    if (!store) {
        fprintf(stderr, "bench_engine_1tok: %s\n", err);
        goto out;
    }
    ns_runtime_config cfg = {0};
    cfg.store = store;
    cfg.defaults.n_thread = threads;
    rt = ns_runtime_new(&cfg, err, sizeof err);
    if (!rt) {
        fprintf(stderr, "bench_engine_1tok: %s\n", err);
        goto out;
    }
    ns_load_opts opts = {0};
    opts.num_gpu = -1;
    samples = malloc((size_t)iters * sizeof *samples);
    if (!samples) goto out;
    for (long i = 0; i < warmup; i++)
        if (one_generation(rt, model, &opts, prompt) < 0) goto out;
    int64_t total = 0;
    for (long i = 0; i < iters; i++) {
        samples[i] = one_generation(rt, model, &opts, prompt);
        if (samples[i] < 0) goto out;
        total += samples[i];
    }
    qsort(samples, (size_t)iters, sizeof *samples, cmp_i64);
    double mean_us = (double)total / (double)iters / 1e3;
    double p50_us = (double)samples[(iters - 1) / 2] / 1e3;
    double p99_us = (double)samples[(long)((double)(iters - 1) * 0.99)] / 1e3;
    double max_us = (double)samples[iters - 1] / 1e3;
    printf("%ld in-process 1-token generations: mean %.1f us, p50 %.1f us, p99 %.1f us, max %.1f us, %.0f/s\n",
           iters, mean_us, p50_us, p99_us, max_us, 1e6 / mean_us);
    printf("engine_1tok iters=%ld mean_us=%.1f p50_us=%.1f p99_us=%.1f max_us=%.1f\n", iters, mean_us, p50_us,
           p99_us, max_us);
    rc = 0;
out:
    free(samples);
    if (rt) ns_runtime_free(rt, 0);
    if (store) ns_store_close(store);
    remove_store(dir);
    return rc;
}
