/* Matrix products as the forward pass needs them: a weight matrix (rows of
 * ne0 elements) times n_tok activation rows.
 *
 * The activations are converted once per product: into the layout of the
 * weight type's gemm kernel when it has one and there are several tokens,
 * else into the weights' dot-product type. Work is split into chunks of
 * weight rows handed to the threads.
 *
 * gemm (quant.h) tiles weight rows x tokens in registers and reads each
 * weight once per product. Without it, inside a chunk tokens go in tiles so
 * that one weight row is decoded once per tile (vec_dot_n) while the tile's
 * activations stay in L2, and the chunk's rows stay in cache across tiles.
 *
 * A 1-token product uses vec_dot, whose SIMD sums are ordered differently
 * from gemm's (which follow the scalar kernels): the logits of a prompt
 * processed in one batch and token by token agree to rounding, not bit for
 * bit, for the types that have a gemm. */
#include "matmul.h"

#include "quant.h"

enum {
    TOKEN_TILE = 32,        /* activation rows reused per weight row */
    PROMPT_CHUNK_ROWS = 16, /* weight rows per task when n_tok > 1 */
    GEMM_MIN_TOKENS = 4,    /* fewer: vec_dot_n is as fast (bench_kernels -g) */
    GEMM_TASK_ROWS = 32,    /* weight rows per gemm task */
    GEMM_FEW_TOKENS = 16,   /* up to this many tokens, gemm tasks grow (below) */
};

size_t ns_matmul_scratch_size(int64_t ne0, int n_tok) {
    /* F32 is the widest dot-product type: 4 bytes an element */
    size_t row = (size_t)ne0 * 4;
    if (ns_gemm_row_size(ne0) > row) row = ns_gemm_row_size(ne0);
    return row * (size_t)n_tok + 64;
}

enum { MULTI_MAX = 4 }; /* matrices one ns_matmul_multi call takes together */

/* One product section: n_w matrices with the same input. Global task t
 * belongs to the matrix i with task_start[i] <= t < task_start[i + 1]. */
typedef struct {
    const ns_weight *w[MULTI_MAX];
    const ns_type_kernels *k[MULTI_MAX]; /* w[i]'s kernels */
    float *y[MULTI_MAX];
    int64_t rows_per_task[MULTI_MAX];
    int task_start[MULTI_MAX + 1];
    int n_w;
    const float *x;
    int64_t ne0;
    const ns_type_kernels *kx; /* the activations' converter (vec_dot path) */
    ns_gemm_prep_fn gemm_prep; /* or theirs (gemm path) */
    uint8_t *xq;
    size_t xq_row;
    int n_tok;
} matmul_job;

/* The matrix of global task t, and t's index among that matrix's tasks. */
static int job_matrix(const matmul_job *j, int *task) {
    int i = 0;
    while (*task >= j->task_start[i + 1]) i++;
    *task -= j->task_start[i];
    return i;
}

static void gemm_prep_task(void *arg, int task, int n_tasks) {
    const matmul_job *j = arg;
    for (int t = task; t < j->n_tok; t += n_tasks)
        j->gemm_prep(j->x + (size_t)t * j->ne0, j->ne0, j->xq + (size_t)t * j->xq_row);
}

static void gemm_task(void *arg, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = arg;
    const int i = job_matrix(j, &task);
    const ns_weight *w = j->w[i];
    const int64_t r0 = task * j->rows_per_task[i];
    const int64_t nr = w->ne1 - r0 < j->rows_per_task[i] ? w->ne1 - r0 : j->rows_per_task[i];
    j->k[i]->gemm(w->ne0, (const uint8_t *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes, (int)nr, j->xq,
                  j->xq_row, j->n_tok, j->y[i] + r0, (size_t)w->ne1);
}

static void quantize_task(void *arg, int task, int n_tasks) {
    const matmul_job *j = arg;
    for (int t = task; t < j->n_tok; t += n_tasks)
        j->kx->from_float(j->x + (size_t)t * j->ne0, j->xq + (size_t)t * j->xq_row, j->ne0);
}

static void matmul_task(void *arg, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = arg;
    const int i = job_matrix(j, &task);
    const ns_weight *w = j->w[i];
    const ns_type_kernels *k = j->k[i];
    float *y = j->y[i];
    int64_t r0 = task * j->rows_per_task[i];
    int64_t r1 = r0 + j->rows_per_task[i];
    if (r1 > w->ne1) r1 = w->ne1;
    const uint8_t *wdata = w->data;
    if (j->n_tok == 1) {
        for (int64_t r = r0; r < r1; r++) y[r] = k->vec_dot(w->ne0, wdata + (size_t)r * w->row_bytes, j->xq);
        return;
    }
    float out[TOKEN_TILE];
    for (int t0 = 0; t0 < j->n_tok; t0 += TOKEN_TILE) {
        int nt = j->n_tok - t0 < TOKEN_TILE ? j->n_tok - t0 : TOKEN_TILE;
        const uint8_t *xt = j->xq + (size_t)t0 * j->xq_row;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wrow = wdata + (size_t)r * w->row_bytes;
            if (k->vec_dot_n) {
                k->vec_dot_n(w->ne0, wrow, xt, j->xq_row, nt, out);
            } else {
                for (int t = 0; t < nt; t++) out[t] = k->vec_dot(w->ne0, wrow, xt + (size_t)t * j->xq_row);
            }
            for (int t = 0; t < nt; t++) y[(size_t)(t0 + t) * w->ne1 + r] = out[t];
        }
    }
}

/* Rows per task of one matrix in the product of n_tok tokens on n_threads. */
static int64_t task_rows(const ns_weight *w, int n_tok, int n_threads, bool gemm) {
    if (gemm) {
        int64_t rows = GEMM_TASK_ROWS;
        if (n_tok <= GEMM_FEW_TOKENS) {
            /* few tokens: the product streams the weights, and longer runs
             * of rows let the kernel prefetch the next panel while it
             * computes one (a few tasks per thread still balance cores) */
            int64_t few = w->ne1 / ((int64_t)n_threads * 4);
            few = (few + 15) / 16 * 16;
            if (few > rows) rows = few;
        }
        return rows;
    }
    if (n_tok > 1) return PROMPT_CHUNK_ROWS;
    /* several tasks per thread so that uneven cores still finish together */
    int64_t n_tasks = (int64_t)n_threads * 4;
    if (n_tasks > w->ne1) n_tasks = w->ne1;
    return (w->ne1 + n_tasks - 1) / n_tasks;
}

/* Whether a product of n_tok tokens with these kernels takes the gemm path. */
static bool uses_gemm(const ns_type_kernels *k, int n_tok) { return n_tok >= GEMM_MIN_TOKENS && k->gemm != NULL; }

/* Whether w[0..n_w) can share one converted input: the same width, the same
 * path, and on it the same converter. */
static bool can_share_input(const ns_weight *const *w, int n_w, int n_tok) {
    const ns_type_kernels *k0 = ns_kernels(w[0]->type);
    const bool gemm = uses_gemm(k0, n_tok);
    for (int i = 1; i < n_w; i++) {
        const ns_type_kernels *k = ns_kernels(w[i]->type);
        if (w[i]->ne0 != w[0]->ne0 || uses_gemm(k, n_tok) != gemm) return false;
        if (gemm ? k->gemm_prep != k0->gemm_prep : k->vec_dot_type != k0->vec_dot_type) return false;
    }
    return true;
}

void ns_matmul_multi(ns_pool *pool, const ns_weight *const *w, int n_w, const float *x, int n_tok, float *const *y,
                     void *scratch) {
    if (n_w > MULTI_MAX || (n_w > 1 && !can_share_input(w, n_w, n_tok))) {
        for (int i = 0; i < n_w; i++) ns_matmul_multi(pool, &w[i], 1, x, n_tok, &y[i], scratch);
        return;
    }
    const ns_type_kernels *k = ns_kernels(w[0]->type);
    const int n_threads = ns_pool_threads(pool);
    const bool gemm = uses_gemm(k, n_tok);
    matmul_job j = {.n_w = n_w, .x = x, .ne0 = w[0]->ne0, .kx = ns_kernels(k->vec_dot_type), .gemm_prep = k->gemm_prep,
                    .xq = scratch, .n_tok = n_tok};
    j.xq_row = gemm ? ns_gemm_row_size(j.ne0) : ns_row_size(k->vec_dot_type, j.ne0);
    long long rows = 0;
    for (int i = 0; i < n_w; i++) {
        j.w[i] = w[i];
        j.k[i] = ns_kernels(w[i]->type);
        j.y[i] = y[i];
        j.rows_per_task[i] = task_rows(w[i], n_tok, n_threads, gemm);
        j.task_start[i + 1] = j.task_start[i] + (int)((w[i]->ne1 + j.rows_per_task[i] - 1) / j.rows_per_task[i]);
        rows += w[i]->ne1;
    }
    const int n_convert = n_tok < n_threads ? n_tok : n_threads;
    /* pool sections by their size: small ones stay on this thread */
    const long long convert_work = (long long)n_tok * j.ne0, product_work = convert_work * rows;
    ns_pool_run_work(pool, gemm ? gemm_prep_task : quantize_task, &j, n_convert, convert_work);
    ns_pool_run_work(pool, gemm ? gemm_task : matmul_task, &j, j.task_start[n_w], product_work);
}

void ns_matmul(ns_pool *pool, const ns_weight *w, const float *x, int n_tok, float *y, void *scratch) {
    ns_matmul_multi(pool, &w, 1, x, n_tok, &y, scratch);
}

void ns_weight_row(const ns_weight *w, int64_t row, float *dst) {
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    ns_kernels(w->type)->to_float(src, dst, w->ne0);
}
