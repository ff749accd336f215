/* Matrix products as the forward pass needs them: a weight matrix (rows of
 * ne0 elements) times n_tok activation rows.
 *
 * The activations are converted once into the weights' dot-product type.
 * Work is split into chunks of weight rows handed to the threads; inside a
 * chunk, tokens go in tiles so that one weight row is decoded once per tile
 * (vec_dot_n) while the tile's activations stay in L2, and the chunk's rows
 * stay in cache across tiles: for a 512-token prompt each weight is read
 * from memory n_tok / TOKEN_TILE times instead of n_tok times. */
#include "matmul.h"

#include "quant.h"

enum {
    TOKEN_TILE = 32,        /* activation rows reused per weight row */
    PROMPT_CHUNK_ROWS = 16, /* weight rows per task when n_tok > 1 */
};

size_t ns_matmul_scratch_size(int64_t ne0, int n_tok) {
    /* F32 is the widest dot-product type: 4 bytes an element */
    return (size_t)ne0 * 4 * (size_t)n_tok + 64;
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
    ns_pool_run(pool, quantize_task, &j, n_tok < n_threads ? n_tok : n_threads);

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
    ns_pool_run(pool, matmul_task, &j, (int)n_tasks);
}

void ns_weight_row(const ns_weight *w, int64_t row, float *dst) {
    const uint8_t *src = (const uint8_t *)w->data + (size_t)row * w->row_bytes;
    ns_kernels(w->type)->to_float(src, dst, w->ne0);
}
