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

typedef struct {
    const ns_weight *w;
    const ns_type_kernels *k;
    const ns_type_kernels *kx;
    const float *x;
    uint8_t *xq;
    size_t xq_row;
    int n_tok;
    float *y;
    int64_t rows_per_task;
} matmul_job;

static void gemm_prep_task(void *arg, int task, int n_tasks) {
    const matmul_job *j = arg;
    for (int t = task; t < j->n_tok; t += n_tasks)
        j->k->gemm_prep(j->x + (size_t)t * j->w->ne0, j->w->ne0, j->xq + (size_t)t * j->xq_row);
}

static void gemm_task(void *arg, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = arg;
    const ns_weight *w = j->w;
    const int64_t r0 = task * j->rows_per_task;
    const int64_t nr = w->ne1 - r0 < j->rows_per_task ? w->ne1 - r0 : j->rows_per_task;
    j->k->gemm(w->ne0, (const uint8_t *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes, (int)nr, j->xq, j->xq_row,
               j->n_tok, j->y + r0, (size_t)w->ne1);
}

static void quantize_task(void *arg, int task, int n_tasks) {
    const matmul_job *j = arg;
    for (int t = task; t < j->n_tok; t += n_tasks)
        j->kx->from_float(j->x + (size_t)t * j->w->ne0, j->xq + (size_t)t * j->xq_row, j->w->ne0);
}

static void matmul_task(void *arg, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = arg;
    const ns_weight *w = j->w;
    int64_t r0 = task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task;
    if (r1 > w->ne1) r1 = w->ne1;
    const uint8_t *wdata = w->data;
    if (j->n_tok == 1) {
        for (int64_t r = r0; r < r1; r++) j->y[r] = j->k->vec_dot(w->ne0, wdata + (size_t)r * w->row_bytes, j->xq);
        return;
    }
    float out[TOKEN_TILE];
    for (int t0 = 0; t0 < j->n_tok; t0 += TOKEN_TILE) {
        int nt = j->n_tok - t0 < TOKEN_TILE ? j->n_tok - t0 : TOKEN_TILE;
        const uint8_t *xt = j->xq + (size_t)t0 * j->xq_row;
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wrow = wdata + (size_t)r * w->row_bytes;
            if (j->k->vec_dot_n) {
                j->k->vec_dot_n(w->ne0, wrow, xt, j->xq_row, nt, out);
            } else {
                for (int t = 0; t < nt; t++) out[t] = j->k->vec_dot(w->ne0, wrow, xt + (size_t)t * j->xq_row);
            }
            for (int t = 0; t < nt; t++) j->y[(size_t)(t0 + t) * w->ne1 + r] = out[t];
        }
    }
}

void ns_matmul(ns_pool *pool, const ns_weight *w, const float *x, int n_tok, float *y, void *scratch) {
    const ns_type_kernels *k = ns_kernels(w->type);
    matmul_job j = {w, k, ns_kernels(k->vec_dot_type), x, scratch, ns_row_size(k->vec_dot_type, w->ne0), n_tok, y, 0};
    const int n_threads = ns_pool_threads(pool);
    const int n_convert = n_tok < n_threads ? n_tok : n_threads;
    /* pool sections by their size: small ones stay on this thread */
    const long long convert_work = (long long)n_tok * w->ne0, product_work = convert_work * w->ne1;
    if (n_tok >= GEMM_MIN_TOKENS && k->gemm != NULL) {
        j.xq_row = ns_gemm_row_size(w->ne0);
        ns_pool_run_work(pool, gemm_prep_task, &j, n_convert, convert_work);
        j.rows_per_task = GEMM_TASK_ROWS;
        if (n_tok <= GEMM_FEW_TOKENS) {
            /* few tokens: the product streams the weights, and longer runs
             * of rows let the kernel prefetch the next panel while it
             * computes one (a few tasks per thread still balance cores) */
            int64_t rows = w->ne1 / ((int64_t)n_threads * 4);
            rows = (rows + 15) / 16 * 16;
            if (rows > j.rows_per_task) j.rows_per_task = rows;
        }
        ns_pool_run_work(pool, gemm_task, &j, (int)((w->ne1 + j.rows_per_task - 1) / j.rows_per_task), product_work);
        return;
    }
    ns_pool_run_work(pool, quantize_task, &j, n_convert, convert_work);

    int64_t n_tasks;
    if (n_tok == 1) {
        /* several tasks per thread so that uneven cores still finish together */
        n_tasks = (int64_t)n_threads * 4;
        if (n_tasks > w->ne1) n_tasks = w->ne1;
        j.rows_per_task = (w->ne1 + n_tasks - 1) / n_tasks;
    } else {
        j.rows_per_task = PROMPT_CHUNK_ROWS;
    }
    n_tasks = (w->ne1 + j.rows_per_task - 1) / j.rows_per_task;
    ns_pool_run_work(pool, matmul_task, &j, (int)n_tasks, product_work);
}

void ns_weight_row(const ns_weight *w, int64_t row, float *dst) {
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    ns_kernels(w->type)->to_float(src, dst, w->ne0);
}
