/* An inference context: KV cache, scratch buffers and threads for one
 * model, and the forward pass of the llama family (llama, qwen2, phi3). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_cache.h"
#include "matmul.h"
#include "quant.h"
#include "model_internal.h"
#include "threadpool.h"

struct ns_context {
    const ns_model *m;
    ns_pool *pool;
    ns_kv_cache kv;
    int n_ctx, n_batch;
    /* per-batch activations, n_batch rows each */
    float *x, *xb, *q, *k, *v, *qkv, *att, *hb, *hb2;
    float *scores;         /* n_head * n_ctx attention weights */
    float *rope_cs;        /* n_rot: cos/sin pairs of the current position */
    float *q_kv;           /* per head: the query in the cache's type (head_dim floats of room) */
    void *scratch;
    int *tok_seq, *tok_pos; /* per batch row: its sequence and position */
    int32_t *batch_toks;   /* ns_decode_batch's tokens side by side (n_batch) */
    int *out_rows;         /* batch rows whose logits are computed */
    float *logits;
    size_t logits_cap;     /* floats */
    int n_logits;          /* rows held by logits */
    int logits_first;      /* batch index of logits row 0 */
    int last_n;            /* tokens in the last ns_decode call */
    int n_batch_out;       /* logits rows of the last ns_decode_batch call */
    uint32_t state_header[6]; /* the header piece of ns_seq_state_pieces */
    int load_seq, load_len;   /* ns_seq_state_load_pieces awaiting its commit */
};

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

void ns_context_free(ns_context *c) {
    if (!c) return;
    ns_pool_free(c->pool);
    ns_kv_free(&c->kv);
    free(c->x);
    free(c->xb);
    free(c->q);
    free(c->k);
    free(c->v);
    free(c->qkv);
    free(c->att);
    free(c->hb);
    free(c->hb2);
    free(c->scores);
    free(c->rope_cs);
    free(c->q_kv);
    free(c->scratch);
    free(c->tok_seq);
    free(c->tok_pos);
    free(c->batch_toks);
    free(c->out_rows);
    free(c->logits);
    free(c);
}

static float *alloc_f(size_t n) { return malloc(n * sizeof(float)); }

ns_context *ns_context_new(const ns_model *m, const ns_context_params *p, char *err, size_t errlen) {
    const ns_hparams *hp = &m->hp;
    ns_context_params d = {0};
    if (!p) p = &d;
    ns_context *c = calloc(1, sizeof *c);
    if (!c) {
        fail(err, errlen, "out of memory");
        return NULL;
    }
    c->m = m;
    c->n_ctx = p->n_ctx > 0 ? p->n_ctx : (hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096);
    if (c->n_ctx > (1 << 20)) {
        fail(err, errlen, "context size %d is too large", c->n_ctx);
        goto error;
    }
    int n_seq = p->n_seq > 0 ? p->n_seq : 1;
    c->n_batch = p->n_batch > 0 ? p->n_batch : 512;
    if (c->n_batch > c->n_ctx) c->n_batch = c->n_ctx;
    int n_threads = p->n_threads;
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    c->pool = ns_pool_new(n_threads);
    if (!c->pool) {
        fail(err, errlen, "cannot start %d threads", n_threads);
        goto error;
    }
    int kv_dim = hp->n_head_kv * hp->head_dim;
    if (ns_kv_init(&c->kv, n_seq, hp->n_layer, c->n_ctx, kv_dim, p->kv_type) != 0) {
        fail(err, errlen, "out of memory for a KV cache of %d tokens", c->n_ctx);
        goto error;
    }
    size_t nb = (size_t)c->n_batch;
    size_t dq = (size_t)hp->n_head * hp->head_dim;
    size_t wide = (size_t)hp->n_embd > dq ? (size_t)hp->n_embd : dq;
    c->x = alloc_f(nb * hp->n_embd);
    c->xb = alloc_f(nb * wide);
    c->q = alloc_f(nb * dq);
    c->k = alloc_f(nb * kv_dim);
    c->v = alloc_f(nb * kv_dim);
    c->qkv = alloc_f(nb * (dq + 2 * (size_t)kv_dim));
    c->att = alloc_f(nb * dq);
    c->hb = alloc_f(nb * 2 * (size_t)hp->n_ff);
    c->hb2 = alloc_f(nb * (size_t)hp->n_ff);
    c->scores = alloc_f((size_t)hp->n_head * c->n_ctx);
    c->rope_cs = alloc_f((size_t)hp->n_rot);
    c->q_kv = alloc_f((size_t)hp->n_head * hp->head_dim);
    int64_t widest_in = hp->n_ff > hp->n_embd ? hp->n_ff : hp->n_embd;
    if ((int64_t)dq > widest_in) widest_in = (int64_t)dq;
    c->scratch = malloc(ns_matmul_scratch_size(widest_in, c->n_batch));
    c->logits_cap = (size_t)hp->n_vocab;
    c->logits = alloc_f(c->logits_cap);
    c->load_len = -1;
    c->tok_seq = malloc(sizeof(int) * nb);
    c->tok_pos = malloc(sizeof(int) * nb);
    c->batch_toks = malloc(sizeof(int32_t) * nb);
    c->out_rows = malloc(sizeof(int) * nb);
    if (!c->x || !c->xb || !c->q || !c->k || !c->v || !c->qkv || !c->att || !c->hb || !c->hb2 || !c->scores || !c->rope_cs ||
        !c->q_kv || !c->scratch || !c->logits ||
        !c->tok_seq || !c->tok_pos || !c->batch_toks || !c->out_rows) {
        fail(err, errlen, "out of memory for context buffers");
        goto error;
    }
    return c;
error:
    ns_context_free(c);
    return NULL;
}

int ns_context_n_ctx(const ns_context *c) { return c->n_ctx; }
int ns_context_n_threads(const ns_context *c) { return ns_pool_threads(c->pool); }

int ns_seq_len(const ns_context *c, int seq) {
    if (seq < 0 || seq >= c->kv.n_seq) return -1;
    return c->kv.len[seq];
}

void ns_seq_truncate(ns_context *c, int seq, int n_keep) {
    if (seq < 0 || seq >= c->kv.n_seq || n_keep < 0) return;
    if (n_keep < c->kv.len[seq]) c->kv.len[seq] = n_keep;
}

const float *ns_context_logits(const ns_context *c, int i) {
    if (i < 0) i = c->last_n - 1;
    int row = i - c->logits_first;
    if (row < 0 || row >= c->n_logits) return NULL;
    return c->logits + (size_t)row * c->m->hp.n_vocab;
}

/* ---- element-wise parts ---- */

static void rms_norm(float *out, const float *x, const float *w, int n, float eps) {
    double sum = 0.0; /* double: the mean of squares of thousands of values */
    for (int i = 0; i < n; i++) sum += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

/* cos and sin of every rotated pair at position pos, interleaved:
 * theta_i = pos * base^(-2i/n_rot) * freq_scale, divided by factors[i] when
 * the model has per-frequency factors, both scaled by the attention factor.
 * The powers are built by repeated multiplication, as the reference does. */
static void rope_angles(float *cs, int pos, const ns_hparams *hp, const float *factors) {
    const float theta_scale = powf(hp->rope_base, -2.0f / (float)hp->n_rot);
    float theta_base = (float)pos;
    for (int i = 0; i < hp->n_rot / 2; i++) {
        float theta = theta_base * hp->rope_freq_scale;
        if (factors) theta /= factors[i];
        cs[2 * i] = cosf(theta) * hp->rope_attn_factor;
        cs[2 * i + 1] = sinf(theta) * hp->rope_attn_factor;
        theta_base *= theta_scale;
    }
}

/* Rotates one head in place with angles from rope_angles. */
static void rope_head(float *h, const float *cs, const ns_hparams *hp) {
    const int half = hp->n_rot / 2;
    for (int i = 0; i < half; i++) {
        int a = hp->rope_neox ? i : 2 * i;
        int b = hp->rope_neox ? i + half : 2 * i + 1;
        float x0 = h[a], x1 = h[b];
        h[a] = x0 * cs[2 * i] - x1 * cs[2 * i + 1];
        h[b] = x0 * cs[2 * i + 1] + x1 * cs[2 * i];
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* ---- attention ---- */

typedef struct {
    ns_context *c;
    int layer, n_tok;
    int per_task; /* query heads per task, all of one KV head's group */
    int parts;    /* tasks per group: n_head_kv * parts tasks in all */
} attn_job;

enum {
    ATTN_HEADS_MAX = 16,    /* query heads one task takes at most */
    ATTN_ROUND_CHUNK = 256, /* attention weights rounded to F16 per call */
};

/* How a layer's attention splits into tasks: a whole group of heads that
 * share a KV head reads each key and value row once for all of them, but
 * the tasks must still be enough to keep every thread busy. Returns the
 * number of tasks. */
static int attn_split(const ns_hparams *hp, int n_threads, attn_job *j) {
    const int group = hp->n_head / hp->n_head_kv;
    int per = group;
    while (per > 1 && hp->n_head / per < 2 * n_threads) per = (per + 1) / 2;
    j->per_task = per < ATTN_HEADS_MAX ? per : ATTN_HEADS_MAX;
    j->parts = (group + j->per_task - 1) / j->per_task;
    return hp->n_head_kv * j->parts;
}

/* Query heads [h0, h0 + nh) of one KV head's group for every token of the
 * batch: causal (and windowed) softmax attention over its own sequence's
 * cache, which already holds this batch's keys/values (c->tok_seq /
 * c->tok_pos say whose and where). Each key and value row is decoded once
 * for the nh heads (vec_dot_n, axpy_n).
 * With an F16 cache the query and the attention weights are rounded to F16
 * before their products with F16 keys and values, as the reference engine
 * does (its F16 dot products take both operands in F16). */
static void attn_task(void *arg, int task, int n_tasks) {
    (void)n_tasks;
    const attn_job *j = arg;
    ns_context *c = j->c;
    const ns_hparams *hp = &c->m->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv;
    const int kvh = task / j->parts, i0 = (task % j->parts) * j->per_task;
    const int h0 = kvh * group + i0, nh = group - i0 < j->per_task ? group - i0 : j->per_task;
    const int dq = hp->n_head * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    const ns_type_kernels *kk = ns_kernels(c->kv.type);
    const bool f16 = c->kv.type == NS_TYPE_F16;
    const size_t head_off = (size_t)kvh * hd * c->kv.elt_size;
    /* the heads' queries in the cache's type, hd floats of room apart */
    const size_t q_stride = sizeof(float) * (size_t)hd;
    uint8_t *qh = (uint8_t *)(c->q_kv + (size_t)h0 * hd);
    float dots[ATTN_HEADS_MAX], w[ATTN_HEADS_MAX], maxv[ATTN_HEADS_MAX];
    double sum[ATTN_HEADS_MAX];
    for (int t = 0; t < j->n_tok; t++) {
        const int pos = c->tok_pos[t], seq = c->tok_seq[t];
        const float *q = c->q + (size_t)t * dq + (size_t)h0 * hd;
        for (int i = 0; i < nh; i++) {
            kk->from_float(q + (size_t)i * hd, qh + (size_t)i * q_stride, hd);
            maxv[i] = -INFINITY;
            sum[i] = 0.0;
        }
        int first = 0;
        if (hp->n_swa > 0 && pos - hp->n_swa + 1 > 0) first = pos - hp->n_swa + 1;
        for (int p = first; p <= pos; p++) {
            const uint8_t *krow = ns_kv_k_row(&c->kv, seq, j->layer, p) + head_off;
            if (kk->vec_dot_n) kk->vec_dot_n(hd, krow, qh, q_stride, nh, dots);
            else for (int i = 0; i < nh; i++) dots[i] = kk->vec_dot(hd, krow, qh + (size_t)i * q_stride);
            for (int i = 0; i < nh; i++) {
                float s = dots[i] * scale;
                c->scores[(size_t)(h0 + i) * c->n_ctx + p] = s;
                if (s > maxv[i]) maxv[i] = s;
            }
        }
        for (int i = 0; i < nh; i++) {
            float *sc = c->scores + (size_t)(h0 + i) * c->n_ctx;
            for (int p = first; p <= pos; p++) {
                sc[p] = expf(sc[p] - maxv[i]);
                sum[i] += sc[p];
            }
            /* the weights themselves, ready for the values (F16: rounded
             * through the cache type's own conversions, a chunk at a time) */
            const float inv = (float)(1.0 / sum[i]);
            for (int p = first; p <= pos; p++) sc[p] *= inv;
            if (f16) {
                uint16_t tmp[ATTN_ROUND_CHUNK];
                for (int p0 = first; p0 <= pos; p0 += ATTN_ROUND_CHUNK) {
                    const int m = pos + 1 - p0 < ATTN_ROUND_CHUNK ? pos + 1 - p0 : ATTN_ROUND_CHUNK;
                    kk->from_float(sc + p0, tmp, m);
                    kk->to_float(tmp, sc + p0, m);
                }
            }
        }
        float *out = c->att + (size_t)t * dq + (size_t)h0 * hd;
        memset(out, 0, sizeof(float) * (size_t)hd * nh);
        for (int p = first; p <= pos; p++) {
            for (int i = 0; i < nh; i++) w[i] = c->scores[(size_t)(h0 + i) * c->n_ctx + p];
            kk->axpy_n(hd, ns_kv_v_row(&c->kv, seq, j->layer, p) + head_off, w, nh, out, (size_t)hd);
        }
    }
}

/* ---- one batch through the model ---- */

/* Runs n tokens (n <= n_batch), row t belonging to sequence c->tok_seq[t]
 * at position c->tok_pos[t], and stores their keys and values. Tokens of
 * one sequence are consecutive rows in position order, so causal attention
 * within the batch needs nothing more. Logits of the n_out rows listed in
 * c->out_rows go to `logits`, one row each (none when n_out is 0). The
 * weights are read once for all the rows. */
static void forward_rows(ns_context *c, const int32_t *tokens, int n, float *logits, int n_out) {
    const ns_model *m = c->m;
    const ns_hparams *hp = &m->hp;
    const int d = hp->n_embd, hd = hp->head_dim;
    const int dq = hp->n_head * hd, dkv = hp->n_head_kv * hd, ff = hp->n_ff;
    const float *factors = m->rope_freqs;
    if (m->rope_factors_long || m->rope_factors_short) {
        /* LongRoPE: the long set once the context exceeds the original one */
        factors = (c->n_ctx > hp->n_ctx_orig && m->rope_factors_long) ? m->rope_factors_long : m->rope_factors_short;
        if (!factors) factors = m->rope_factors_long;
    }
    long long attn_work = 0;
    for (int t = 0; t < n; t++) attn_work += 2LL * hp->n_head * (c->tok_pos[t] + 1) * hd;

    for (int t = 0; t < n; t++) ns_weight_row(&m->tok_embd, tokens[t], c->x + (size_t)t * d);

    for (int il = 0; il < hp->n_layer; il++) {
        const ns_layer *ly = &m->layers[il];
        for (int t = 0; t < n; t++) rms_norm(c->xb + (size_t)t * d, c->x + (size_t)t * d, ly->attn_norm, d, hp->rms_eps);

        if (ly->wqkv.data) {
            const int w = dq + 2 * dkv;
            ns_matmul(c->pool, &ly->wqkv, c->xb, n, c->qkv, c->scratch);
            for (int t = 0; t < n; t++) {
                const float *src = c->qkv + (size_t)t * w;
                memcpy(c->q + (size_t)t * dq, src, sizeof(float) * dq);
                memcpy(c->k + (size_t)t * dkv, src + dq, sizeof(float) * dkv);
                memcpy(c->v + (size_t)t * dkv, src + dq + dkv, sizeof(float) * dkv);
            }
        } else {
            const ns_weight *qkv[3] = {&ly->wq, &ly->wk, &ly->wv};
            float *out[3] = {c->q, c->k, c->v};
            ns_matmul_multi(c->pool, qkv, 3, c->xb, n, out, c->scratch);
        }
        for (int t = 0; t < n; t++) {
            float *q = c->q + (size_t)t * dq, *k = c->k + (size_t)t * dkv, *v = c->v + (size_t)t * dkv;
            const int seq = c->tok_seq[t], pos = c->tok_pos[t];
            if (ly->bq) for (int i = 0; i < dq; i++) q[i] += ly->bq[i];
            if (ly->bk) for (int i = 0; i < dkv; i++) k[i] += ly->bk[i];
            if (ly->bv) for (int i = 0; i < dkv; i++) v[i] += ly->bv[i];
            rope_angles(c->rope_cs, pos, hp, factors);
            for (int h = 0; h < hp->n_head; h++) rope_head(q + (size_t)h * hd, c->rope_cs, hp);
            for (int h = 0; h < hp->n_head_kv; h++) rope_head(k + (size_t)h * hd, c->rope_cs, hp);
            ns_kv_store(&c->kv, ns_kv_k_row(&c->kv, seq, il, pos), k);
            ns_kv_store(&c->kv, ns_kv_v_row(&c->kv, seq, il, pos), v);
        }
        attn_job aj = {.c = c, .layer = il, .n_tok = n};
        ns_pool_run_work(c->pool, attn_task, &aj, attn_split(hp, ns_pool_threads(c->pool), &aj), attn_work);

        ns_matmul(c->pool, &ly->wo, c->att, n, c->xb, c->scratch);
        for (size_t i = 0; i < (size_t)n * d; i++) c->x[i] += c->xb[i];

        for (int t = 0; t < n; t++) rms_norm(c->xb + (size_t)t * d, c->x + (size_t)t * d, ly->ffn_norm, d, hp->rms_eps);
        if (ly->w_gate.data) {
            const ns_weight *gate_up[2] = {&ly->w_gate, &ly->w_up};
            float *out[2] = {c->hb, c->hb2};
            ns_matmul_multi(c->pool, gate_up, 2, c->xb, n, out, c->scratch);
            for (size_t i = 0; i < (size_t)n * ff; i++) c->hb[i] = silu(c->hb[i]) * c->hb2[i];
        } else {
            /* fused: each row of the output holds the gate then the up half */
            ns_matmul(c->pool, &ly->w_up, c->xb, n, c->hb, c->scratch);
            for (int t = 0; t < n; t++) {
                const float *gu = c->hb + (size_t)t * 2 * ff;
                float *o = c->hb2 + (size_t)t * ff;
                for (int i = 0; i < ff; i++) o[i] = silu(gu[i]) * gu[ff + i];
            }
            memcpy(c->hb, c->hb2, sizeof(float) * (size_t)n * ff);
        }
        ns_matmul(c->pool, &ly->w_down, c->hb, n, c->xb, c->scratch);
        for (size_t i = 0; i < (size_t)n * d; i++) c->x[i] += c->xb[i];
    }
    for (int t = 0; t < n; t++)
        if (c->tok_pos[t] + 1 > c->kv.len[c->tok_seq[t]]) c->kv.len[c->tok_seq[t]] = c->tok_pos[t] + 1;

    if (n_out == 0) return;
    for (int r = 0; r < n_out; r++)
        rms_norm(c->xb + (size_t)r * d, c->x + (size_t)c->out_rows[r] * d, m->output_norm, d, hp->rms_eps);
    ns_matmul(c->pool, &m->output, c->xb, n_out, logits, c->scratch);
}

static int check_tokens(const ns_context *c, const int32_t *tokens, int n, char *err, size_t errlen) {
    const int n_vocab = c->m->hp.n_vocab;
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= n_vocab)
            return fail(err, errlen, "token %d at position %d is outside the vocabulary (0..%d)", tokens[i], i,
                        n_vocab - 1);
    return 0;
}

static int reserve_logits(ns_context *c, int rows, char *err, size_t errlen) {
    size_t need = (size_t)rows * c->m->hp.n_vocab;
    if (need <= c->logits_cap) return 0;
    float *nl = realloc(c->logits, need * sizeof(float));
    if (!nl) return fail(err, errlen, "out of memory for %d rows of logits", rows);
    c->logits = nl;
    c->logits_cap = need;
    return 0;
}

int ns_decode(ns_context *c, int seq, const int32_t *tokens, int n, bool all_logits, char *err, size_t errlen) {
    const int n_vocab = c->m->hp.n_vocab;
    if (seq < 0 || seq >= c->kv.n_seq) return fail(err, errlen, "sequence %d does not exist (0..%d)", seq, c->kv.n_seq - 1);
    if (n <= 0) return fail(err, errlen, "no tokens to evaluate");
    if (n > c->n_ctx - c->kv.len[seq])
        return fail(err, errlen, "context is full: %d tokens held + %d new > context size %d", c->kv.len[seq], n,
                    c->n_ctx);
    if (check_tokens(c, tokens, n, err, errlen) != 0) return -1;
    if (reserve_logits(c, all_logits ? n : 1, err, errlen) != 0) return -1;
    for (int done = 0; done < n;) {
        int chunk = n - done < c->n_batch ? n - done : c->n_batch;
        bool last = done + chunk == n;
        const int pos0 = c->kv.len[seq];
        for (int t = 0; t < chunk; t++) {
            c->tok_seq[t] = seq;
            c->tok_pos[t] = pos0 + t;
        }
        int n_out = 0;
        float *dst = NULL;
        if (all_logits) {
            for (int t = 0; t < chunk; t++) c->out_rows[t] = t;
            n_out = chunk;
            dst = c->logits + (size_t)done * n_vocab;
        } else if (last) {
            c->out_rows[0] = chunk - 1;
            n_out = 1;
            dst = c->logits;
        }
        forward_rows(c, tokens + done, chunk, dst, n_out);
        done += chunk;
    }
    c->last_n = n;
    c->n_logits = all_logits ? n : 1;
    c->logits_first = all_logits ? 0 : n - 1;
    c->n_batch_out = 0;
    return 0;
}

int ns_decode_batch(ns_context *c, const ns_batch_item *items, int n_items, char *err, size_t errlen) {
    if (n_items <= 0) return fail(err, errlen, "no sequences to evaluate");
    int total = 0;
    for (int i = 0; i < n_items; i++) {
        const ns_batch_item *it = &items[i];
        if (it->seq < 0 || it->seq >= c->kv.n_seq)
            return fail(err, errlen, "sequence %d does not exist (0..%d)", it->seq, c->kv.n_seq - 1);
        for (int k = 0; k < i; k++)
            if (items[k].seq == it->seq) return fail(err, errlen, "sequence %d appears twice in one batch", it->seq);
        if (it->n <= 0) return fail(err, errlen, "sequence %d has no tokens to evaluate", it->seq);
        if (it->n > c->n_ctx - c->kv.len[it->seq])
            return fail(err, errlen, "context of sequence %d is full: %d tokens held + %d new > context size %d",
                        it->seq, c->kv.len[it->seq], it->n, c->n_ctx);
        if (check_tokens(c, it->tokens, it->n, err, errlen) != 0) return -1;
        total += it->n;
    }
    if (total > c->n_batch)
        return fail(err, errlen, "batch of %d tokens is larger than the context's batch size %d", total, c->n_batch);
    if (reserve_logits(c, n_items, err, errlen) != 0) return -1;
    /* the tokens side by side, as forward_rows reads them */
    int32_t *toks = c->batch_toks;
    int row = 0;
    for (int i = 0; i < n_items; i++) {
        const ns_batch_item *it = &items[i];
        const int pos0 = c->kv.len[it->seq];
        for (int t = 0; t < it->n; t++, row++) {
            toks[row] = it->tokens[t];
            c->tok_seq[row] = it->seq;
            c->tok_pos[row] = pos0 + t;
        }
        c->out_rows[i] = row - 1;
    }
    forward_rows(c, toks, total, c->logits, n_items);
    c->last_n = 0;
    c->n_logits = 0;
    c->n_batch_out = n_items;
    return 0;
}

const float *ns_context_batch_logits(const ns_context *c, int item) {
    if (item < 0 || item >= c->n_batch_out) return NULL;
    return c->logits + (size_t)item * c->m->hp.n_vocab;
}

int ns_seq_copy(ns_context *c, int src, int dst, int n) {
    if (src < 0 || src >= c->kv.n_seq || dst < 0 || dst >= c->kv.n_seq || n < 0 || n > c->kv.len[src]) return -1;
    ns_kv_seq_copy(&c->kv, src, dst, n);
    return 0;
}

size_t ns_seq_state_size(const ns_context *c, int seq) { return ns_kv_seq_image_size(&c->kv, seq); }

int ns_seq_state_save(const ns_context *c, int seq, void *buf, size_t size) {
    return ns_kv_seq_save(&c->kv, seq, buf, size);
}

int ns_seq_state_pieces(ns_context *c, int seq, struct iovec *out, int max) {
    if (seq < 0 || seq >= c->kv.n_seq) return -1;
    return ns_kv_seq_pieces(&c->kv, seq, c->kv.len[seq], c->state_header, out, max);
}

int ns_seq_state_load_pieces(ns_context *c, int seq, int n_tokens, struct iovec *out, int max, char *err,
                             size_t errlen) {
    if (seq < 0 || seq >= c->kv.n_seq) return fail(err, errlen, "sequence %d does not exist", seq);
    if (n_tokens < 0 || n_tokens > c->n_ctx)
        return fail(err, errlen, "state holds %d tokens, the context only %d", n_tokens, c->n_ctx);
    int n = ns_kv_seq_pieces(&c->kv, seq, n_tokens, c->state_header, out, max);
    if (n < 0) return fail(err, errlen, "room for %d pieces is too little", max);
    c->kv.len[seq] = 0; /* its rows are about to be overwritten */
    c->load_seq = seq;
    c->load_len = n_tokens;
    return n;
}

int ns_seq_state_load_commit(ns_context *c, int seq, char *err, size_t errlen) {
    if (seq != c->load_seq || c->load_len < 0) return fail(err, errlen, "no state load is pending for sequence %d", seq);
    int len = c->load_len;
    c->load_len = -1;
    /* the header the caller read must describe exactly what was asked */
    if (ns_kv_check_header(&c->kv, c->state_header, err, errlen) != 0) return -1;
    if (c->state_header[5] != (uint32_t)len)
        return fail(err, errlen, "state image holds %u tokens, expected %d", c->state_header[5], len);
    c->kv.len[seq] = len;
    return 0;
}

int ns_seq_state_load(ns_context *c, int seq, const void *buf, size_t size, char *err, size_t errlen) {
    return ns_kv_seq_load(&c->kv, seq, buf, size, err, errlen);
}
