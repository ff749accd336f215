/* Kernel throughput: vec_dot (and vec_dot_n) per type and ISA level over
 * weight matrices bigger than the caches, the way a decode step streams them.
 *
 *   bench_kernels [-t THREADS] [-r REPS] [-m ROWS] [-k COLS] [-s MIB] [-n NX]
 *                 [-g NX] [-l LEVEL] [-a OFFSET] [-c] [TYPE...]
 *
 * A matrix of ROWS x COLS (default 2048 x 8192) is made per type and copied
 * until the copies hold at least MIB MiB (default 512), so each pass reads
 * weights from memory, not cache. One pass = every row of one copy against
 * one activation row (vec_dot) or NX rows (vec_dot_n); the copies are used in
 * turn (a timed rep repeats passes until 16 MB were read). THREADS threads
 * (default 1) split the rows. Printed per type and
 * level: weight GB/s (best and median of REPS passes) and ns per row; with
 * -n, also the vec_dot_n time per row and activation row. -c times thread
 * 0's CPU time instead of wall time (for comparing kernels' compute on a
 * busy machine, with a small matrix: -s 0 -m 48). -a places each matrix
 * OFFSET bytes (default 0) past a 64-byte boundary.
 *
 * -g NX times prompt products instead: the matrix against NX activation
 * rows as ns_matmul cuts them (tasks of 16 or 32 rows), once through vec_dot_n
 * (tiles of 32 activation rows) and once through gemm where the level has
 * it; printed as GMAC/s (weights x activation rows per second) and ns per
 * row and activation row. The activations are converted outside the timing.
 * Use -s 0 (one copy: a prompt reads each weight once per product). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "engine/cpu_features.h"
#include "engine/quant.h"

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec ts;
    clock_gettime(clock_id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float rndf(void) { return (float)((double)(rnd() >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0); }

static void put16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* A plausible weight row: quantized from random floats where the type has a
 * quantizer, else random bytes with sane fp16 scales. */
static void make_row(ns_type t, int64_t n, uint8_t *row, float *tmp) {
    const ns_type_kernels *k = ns_kernels_for_isa(t, NS_ISA_SCALAR);
    if (k->from_float) {
        for (int64_t i = 0; i < n; i++) tmp[i] = rndf();
        k->from_float(tmp, row, n);
        return;
    }
    const ns_type_info *ti = ns_type_get(t);
    for (int64_t b = 0; b < n / ti->block_size; b++) {
        uint8_t *blk = row + b * ti->type_size;
        for (uint32_t j = 0; j < ti->type_size; j++) blk[j] = (uint8_t)rnd();
        const uint16_t d = ns_fp32_to_fp16(0.01f), dm = ns_fp32_to_fp16(0.005f);
        switch (t) {
        case NS_TYPE_Q2_K: put16(blk + 80, d); put16(blk + 82, dm); break;
        case NS_TYPE_Q3_K: put16(blk + 108, d); break;
        case NS_TYPE_Q4_K: case NS_TYPE_Q5_K: put16(blk, d); put16(blk + 2, dm); break;
        case NS_TYPE_Q6_K: put16(blk + 208, d); break;
        default: break;
        }
    }
}

typedef struct {
    const ns_type_kernels *k;
    uint8_t **mats;
    int n_mats;
    int64_t rows, cols;
    size_t rb, xrow;
    const uint8_t *x;
    int nx;
    int gx;            /* -g: activation rows of a prompt product */
    const uint8_t *gq; /* gemm activation rows (NULL: use vec_dot_n) */
    size_t grow;
    float *y;
    int reps;
    int inner; /* passes per timed rep (small matrices) */
    int tid, nthreads;
    pthread_barrier_t *bar;
    double *times; /* per rep, written by thread 0 */
    float sink;
} job;

/* as in src/engine/matmul.c */
enum { TASK_ROWS = 16, GEMM_TASK_ROWS = 32, TOKEN_TILE = 32 };

/* Rows [r0, r1) of a prompt product, as ns_matmul computes them. */
static void prompt_rows(const job *j, const uint8_t *w, int64_t r0, int64_t r1) {
    float out[TOKEN_TILE];
    const int64_t task = j->gq ? GEMM_TASK_ROWS : TASK_ROWS;
    for (int64_t c0 = r0; c0 < r1; c0 += task) {
        const int64_t c1 = c0 + task < r1 ? c0 + task : r1;
        if (j->gq) {
            j->k->gemm(j->cols, w + (size_t)c0 * j->rb, j->rb, (int)(c1 - c0), j->gq, j->grow, j->gx, j->y + c0,
                       (size_t)j->rows);
            continue;
        }
        for (int t0 = 0; t0 < j->gx; t0 += TOKEN_TILE) {
            const int nt = j->gx - t0 < TOKEN_TILE ? j->gx - t0 : TOKEN_TILE;
            for (int64_t r = c0; r < c1; r++) {
                j->k->vec_dot_n(j->cols, w + (size_t)r * j->rb, j->x + (size_t)t0 * j->xrow, j->xrow, nt, out);
                for (int t = 0; t < nt; t++) j->y[(size_t)(t0 + t) * j->rows + r] = out[t];
            }
        }
    }
}

static void *worker(void *arg) {
    job *j = arg;
    const int64_t r0 = j->rows * j->tid / j->nthreads, r1 = j->rows * (j->tid + 1) / j->nthreads;
    float out[16];
    float s = 0.0f;
    int m = 0;
    for (int rep = -1; rep < j->reps; rep++) { /* rep -1: warm-up */
        pthread_barrier_wait(j->bar);
        const double t0 = now();
        for (int it = 0; it < j->inner; it++) {
            const uint8_t *w = j->mats[m];
            m = (m + 1) % j->n_mats;
            if (j->gx) {
                prompt_rows(j, w, r0, r1);
            } else if (j->nx == 0) {
                for (int64_t r = r0; r < r1; r++) s += j->k->vec_dot(j->cols, w + (size_t)r * j->rb, j->x);
            } else {
                for (int64_t r = r0; r < r1; r++) {
                    j->k->vec_dot_n(j->cols, w + (size_t)r * j->rb, j->x, j->xrow, j->nx, out);
                    s += out[0];
                }
            }
        }
        pthread_barrier_wait(j->bar);
        if (j->tid == 0 && rep >= 0) j->times[rep] = (now() - t0) / j->inner;
    }
    j->sink = s;
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs the passes; returns best and median seconds per pass. */
static void run(job *proto, int nthreads, double *best, double *median) {
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nthreads);
    job js[64];
    pthread_t th[64];
    double *times = calloc((size_t)proto->reps, sizeof(double));
    for (int i = 0; i < nthreads; i++) {
        js[i] = *proto;
        js[i].tid = i;
        js[i].nthreads = nthreads;
        js[i].bar = &bar;
        js[i].times = times;
        if (i > 0) pthread_create(&th[i], NULL, worker, &js[i]);
    }
    worker(&js[0]);
    for (int i = 1; i < nthreads; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&bar);
    qsort(times, (size_t)proto->reps, sizeof(double), cmp_d);
    *best = times[0];
    *median = times[proto->reps / 2];
    free(times);
}

static const ns_type all_types[] = {NS_TYPE_Q4_0, NS_TYPE_Q8_0, NS_TYPE_Q4_K, NS_TYPE_Q6_K, NS_TYPE_Q5_K,
                                    NS_TYPE_Q3_K, NS_TYPE_Q2_K, NS_TYPE_Q4_1, NS_TYPE_Q5_0, NS_TYPE_Q5_1,
                                    NS_TYPE_F16,  NS_TYPE_BF16, NS_TYPE_F32};

int main(int argc, char **argv) {
    int nthreads = 1, reps = 7, nx = 0, gx = 0;
    int64_t rows = 2048, cols = 8192;
    double mib = 512;
    int only_level = -1, offset = 0;
    ns_type types[32];
    int n_types = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) rows = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-k") && i + 1 < argc) cols = atoll(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) mib = atof(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc) nx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-g") && i + 1 < argc) gx = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c")) clock_id = CLOCK_THREAD_CPUTIME_ID;
        else if (!strcmp(argv[i], "-a") && i + 1 < argc) offset = atoi(argv[++i]) & 63;
        else if (!strcmp(argv[i], "-l") && i + 1 < argc) {
            ns_isa l;
            if (!ns_isa_parse(argv[++i], &l)) {
                fprintf(stderr, "unknown level %s\n", argv[i]);
                return 2;
            }
            only_level = (int)l;
        } else {
            int found = 0;
            for (uint32_t t = 0; t < NS_TYPE_COUNT && n_types < 32; t++) {
                const char *nm = ns_type_name(t);
                if (nm && !strcasecmp(nm, argv[i]) && ns_kernels_for_isa((ns_type)t, NS_ISA_SCALAR)) {
                    types[n_types++] = (ns_type)t;
                    found = 1;
                }
            }
            if (!found) {
                fprintf(stderr,
                        "usage: %s [-t THREADS] [-r REPS] [-m ROWS] [-k COLS] [-s MIB] [-n NX] [-g NX] [-l LEVEL] [-a OFFSET] [-c] [TYPE...]\n",
                        argv[0]);
                return 2;
            }
        }
    }
    if (nthreads < 1 || nthreads > 64 || reps < 1 || nx < 0 || nx > 16 || gx < 0 || gx > 4096 || rows < 1 ||
        cols < 256 || cols % 256) {
        fprintf(stderr, "bad arguments (COLS must be a multiple of 256, -n NX at most 16, -g NX at most 4096)\n");
        return 2;
    }
    if (n_types == 0) {
        memcpy(types, all_types, sizeof all_types);
        n_types = (int)(sizeof all_types / sizeof all_types[0]);
    }
    printf("# %lld x %lld, %d thread(s), %d reps, %s time, cpu best level %s\n", (long long)rows, (long long)cols,
           nthreads, reps, clock_id == CLOCK_MONOTONIC ? "wall" : "thread-0 CPU", ns_isa_name(ns_isa_detected()));
    if (gx) {
        printf("# prompt products: %d activation rows\n", gx);
        printf("%-6s %-11s %-9s %10s %10s %12s\n", "type", "level", "kernel", "GMAC/s", "GMAC/s med", "ns/row/tok");
    } else {
        printf("%-6s %-11s %10s %10s %10s", "type", "level", "GB/s best", "GB/s med", "ns/row");
        if (nx) printf(" %14s %12s", "vec_dot_n GB/s", "ns/row/tok");
        printf("\n");
    }
    float *tmp = malloc(sizeof(float) * (size_t)cols);
    for (int ti = 0; ti < n_types; ti++) {
        const ns_type t = types[ti];
        const ns_type vt = ns_kernels_for_isa(t, NS_ISA_SCALAR)->vec_dot_type;
        const size_t rb = ns_row_size(t, cols), xrow = ns_row_size(vt, cols);
        const size_t mat = rb * (size_t)rows;
        int n_mats = (int)(mib * 1048576.0 / (double)mat) + 1;
        uint8_t **mats = malloc(sizeof(uint8_t *) * (size_t)n_mats);
        uint8_t **bases = malloc(sizeof(uint8_t *) * (size_t)n_mats);
        const size_t alloc = (mat + 64 + 63) / 64 * 64;
        for (int c = 0; c < n_mats; c++) {
            bases[c] = aligned_alloc(64, alloc);
            mats[c] = bases[c] + offset;
            if (c == 0)
                for (int64_t r = 0; r < rows; r++) make_row(t, cols, mats[0] + (size_t)r * rb, tmp);
            else
                memcpy(mats[c], mats[0], mat);
        }
        const int n_act = gx > 16 ? gx : 16;
        uint8_t *x = malloc(xrow * (size_t)n_act);
        float *acts = malloc(sizeof(float) * (size_t)cols * (size_t)n_act);
        for (int j = 0; j < n_act; j++) {
            for (int64_t i = 0; i < cols; i++) acts[(size_t)j * cols + i] = rndf();
            ns_kernels_for_isa(vt, NS_ISA_SCALAR)->from_float(acts + (size_t)j * cols, x + (size_t)j * xrow, cols);
        }
        const size_t grow = ns_gemm_row_size(cols);
        uint8_t *gq = gx ? malloc(grow * (size_t)gx) : NULL;
        float *y = gx ? malloc(sizeof(float) * (size_t)rows * (size_t)gx) : NULL;
        for (int l = 0; l < NS_ISA_COUNT; l++) {
            if (only_level >= 0 && l != only_level) continue;
            const ns_type_kernels *k = ns_kernels_for_isa(t, (ns_isa)l);
            if (k == NULL) continue;
            /* a timed rep reads at least 16 MB, so that timer overhead does not count */
            const int inner = mat >= (16u << 20) ? 1 : (int)((16u << 20) / mat);
            job j = {.k = k, .mats = mats, .n_mats = n_mats, .rows = rows, .cols = cols, .rb = rb,
                     .xrow = xrow, .x = x, .nx = 0, .reps = reps, .inner = inner};
            double best, med;
            if (gx) {
                const double macs = (double)rows * (double)cols * gx;
                j.gx = gx;
                j.y = y;
                j.inner = 1;
                for (int use_gemm = 0; use_gemm < 2; use_gemm++) {
                    if (use_gemm) {
                        if (k->gemm == NULL) continue;
                        for (int a = 0; a < gx; a++) k->gemm_prep(acts + (size_t)a * cols, cols, gq + (size_t)a * grow);
                        j.gq = gq;
                        j.grow = grow;
                    } else if (k->vec_dot_n == NULL) {
                        continue;
                    }
                    run(&j, nthreads, &best, &med);
                    printf("%-6s %-11s %-9s %10.2f %10.2f %12.3f\n", ns_type_name(t), ns_isa_name((ns_isa)l),
                           use_gemm ? "gemm" : "vec_dot_n", macs / best * 1e-9, macs / med * 1e-9,
                           best * 1e9 / (double)rows / gx);
                    fflush(stdout);
                }
                continue;
            }
            run(&j, nthreads, &best, &med);
            printf("%-6s %-11s %10.2f %10.2f %10.1f", ns_type_name(t), ns_isa_name((ns_isa)l), (double)mat / best * 1e-9,
                   (double)mat / med * 1e-9, best * 1e9 / (double)rows);
            if (nx && k->vec_dot_n) {
                j.nx = nx;
                run(&j, nthreads, &best, &med);
                printf(" %14.2f %12.1f", (double)mat / best * 1e-9, best * 1e9 / (double)rows / nx);
            }
            printf("\n");
            fflush(stdout);
        }
        for (int c = 0; c < n_mats; c++) free(bases[c]);
        free(mats);
        free(bases);
        free(x);
        free(acts);
        free(gq);
        free(y);
    }
    free(tmp);
    return 0;
}
