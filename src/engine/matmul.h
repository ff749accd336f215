/* Weight-matrix times activations over the thread pool. */
#ifndef NS_MATMUL_H
#define NS_MATMUL_H

#include "model_internal.h"
#include "threadpool.h"

/* Scratch bytes ns_matmul needs for n_tok activation rows of length ne0. */
size_t ns_matmul_scratch_size(int64_t ne0, int n_tok);

/* y[t * w->ne1 + r] = row r of w · x[t * w->ne0 ...] for t < n_tok.
 * The activations are converted once into the weights' dot-product type. */
void ns_matmul(ns_pool *pool, const ns_weight *w, const float *x, int n_tok, float *y, void *scratch);

/* ns_matmul of n_w matrices with the same input (Q, K and V; gate and up):
 * the input is converted once and one pool section covers all their rows,
 * y[i] receiving w[i]'s product. Matrices that cannot share the converted
 * input (other widths, other activation types) are done one by one. */
void ns_matmul_multi(ns_pool *pool, const ns_weight *const *w, int n_w, const float *x, int n_tok, float *const *y,
                     void *scratch);

/* One row of w decoded to floats (embedding lookup). */
void ns_weight_row(const ns_weight *w, int64_t row, float *dst);

#endif
