#include "matmul.h"

#include "quant.h"

size_t ns_matmul_scratch_size(int64_t ne0, int n_tok) {
    /* F32 is the widest dot-product type: 4 bytes an element */
    return (size_t)ne0 * 4 * (size_t)n_tok + 64;
}

typedef struct {
    const ns_weight *w;
    const ns_type_kernels *k;
    const uint8_t *xq;
    size_t xq_row;
    int n_tok;
    float *y;
    int64_t rows_per_task;
} matmul_job;

static void matmul_task(void *arg, int task, int n_tasks) {
    (void)n_tasks;
    const matmul_job *j = arg;
    int64_t r0 = task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task;
    if (r1 > j->w->ne1) r1 = j->w->ne1;
    const uint8_t *wdata = j->w->data;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *wrow = wdata + (size_t)r * j->w->row_bytes;
        for (int t = 0; t < j->n_tok; t++)
            j->y[(size_t)t * j->w->ne1 + r] = j->k->vec_dot(j->w->ne0, wrow, j->xq + (size_t)t * j->xq_row);
    }
}

void ns_matmul(ns_pool *pool, const ns_weight *w, const float *x, int n_tok, float *y, void *scratch) {
    const ns_type_kernels *k = ns_kernels(w->type);
    const ns_type_kernels *kx = ns_kernels(k->vec_dot_type);
    size_t xq_row = ns_row_size(k->vec_dot_type, w->ne0);
    uint8_t *xq = scratch;
    for (int t = 0; t < n_tok; t++) kx->from_float(x + (size_t)t * w->ne0, xq + (size_t)t * xq_row, w->ne0);

    int n_threads = ns_pool_threads(pool);
    /* several tasks per thread so that uneven cores still finish together */
    int64_t n_tasks = (int64_t)n_threads * 4;
    if (n_tasks > w->ne1) n_tasks = w->ne1;
    matmul_job j = {w, k, xq, xq_row, n_tok, y, (w->ne1 + n_tasks - 1) / n_tasks};
    n_tasks = (w->ne1 + j.rows_per_task - 1) / j.rows_per_task;
    ns_pool_run(pool, matmul_task, &j, (int)n_tasks);
}

void ns_weight_row(const ns_weight *w, int64_t row, float *dst) {
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    ns_kernels(w->type)->to_float(src, dst, w->ne0);
}
