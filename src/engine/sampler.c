/* The sampler chain described in include/nstack/sampler.h. */
#include "nstack/sampler.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    double p;    /* probability within the current candidate set */
    float logit; /* after bias, penalties (and temperature, once applied) */
    float aux;   /* scratch: typical-p's score */
    int32_t id;
} candidate;

struct ns_sampler {
    ns_sampler_params p;
    ns_logit_bias *bias;
    int n_vocab;
    uint64_t rng;
    float mu;

    /* working set of one ns_sampler_sample call */
    candidate *cand;
    int n_cand;
    int n_sorted; /* cand[0..n_sorted) are the best n_sorted, best first */
    float *dense; /* logits after bias and penalties, by token id */
    float *raw;   /* the logits as given, for ns_sampler_logprobs */
    int32_t last; /* last sampled token, -1 if none */

    /* penalty window: a ring of the last repeat_last_n accepted tokens (all
     * of them when repeat_last_n == -1), grown as tokens come */
    int32_t *hist;
    size_t hist_cap, hist_head, hist_len;
    int32_t *count;  /* occurrences in the window, by token id */
    uint32_t *stamp; /* "already penalized in this call" marks */
    uint32_t stamp_cur;
};

ns_sampler_params ns_sampler_defaults(void) {
    ns_sampler_params p;
    memset(&p, 0, sizeof p);
    p.temperature = 0.8f;
    p.top_k = 40;
    p.top_p = 0.9f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.repeat_last_n = 64;
    p.repeat_penalty = 1.1f;
    p.frequency_penalty = 0.0f;
    p.presence_penalty = 0.0f;
    p.mirostat = 0;
    p.mirostat_tau = 5.0f;
    p.mirostat_eta = 0.1f;
    p.seed = 0;
    p.logit_bias = NULL;
    p.n_logit_bias = 0;
    return p;
}

/* ---- parameter checks ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* value within [lo, hi], NaN never is */
static bool in_range(float v, double lo, double hi) { return v >= lo && v <= hi; }

int ns_sampler_params_check(const ns_sampler_params *p, char *err, size_t errlen) {
    if (!p) return fail(err, errlen, "sampler parameters missing");
    if (!isfinite(p->temperature))
        return fail(err, errlen, "temperature must be a finite number (<= 0 for greedy), got %g", (double)p->temperature);
    if (p->top_k < 0) return fail(err, errlen, "top_k must be >= 0 (0 = all tokens), got %d", p->top_k);
    if (!in_range(p->top_p, 0, 1)) return fail(err, errlen, "top_p must be in [0, 1], got %g", (double)p->top_p);
    if (!in_range(p->min_p, 0, 1)) return fail(err, errlen, "min_p must be in [0, 1], got %g", (double)p->min_p);
    if (!in_range(p->typical_p, 0, 1))
        return fail(err, errlen, "typical_p must be in [0, 1], got %g", (double)p->typical_p);
    if (p->repeat_last_n < -1)
        return fail(err, errlen, "repeat_last_n must be >= -1 (-1 = all tokens, 0 = off), got %d", p->repeat_last_n);
    if (!(p->repeat_penalty > 0) || !isfinite(p->repeat_penalty))
        return fail(err, errlen, "repeat_penalty must be a finite number > 0 (1 = off), got %g", (double)p->repeat_penalty);
    if (!in_range(p->frequency_penalty, -2, 2))
        return fail(err, errlen, "frequency_penalty must be in [-2, 2], got %g", (double)p->frequency_penalty);
    if (!in_range(p->presence_penalty, -2, 2))
        return fail(err, errlen, "presence_penalty must be in [-2, 2], got %g", (double)p->presence_penalty);
    if (p->mirostat < 0 || p->mirostat > 2)
        return fail(err, errlen, "mirostat must be 0, 1 or 2, got %d", p->mirostat);
    if (!in_range(p->mirostat_tau, 0, 100))
        return fail(err, errlen, "mirostat_tau must be in [0, 100], got %g", (double)p->mirostat_tau);
    if (!in_range(p->mirostat_eta, 0, 1))
        return fail(err, errlen, "mirostat_eta must be in [0, 1], got %g", (double)p->mirostat_eta);
    if (p->n_logit_bias < 0) return fail(err, errlen, "n_logit_bias must be >= 0, got %d", p->n_logit_bias);
    if (p->n_logit_bias > 0 && !p->logit_bias)
        return fail(err, errlen, "n_logit_bias is %d but logit_bias is NULL", p->n_logit_bias);
    for (int i = 0; i < p->n_logit_bias; i++) {
        const ns_logit_bias *b = &p->logit_bias[i];
        if (b->token < 0) return fail(err, errlen, "logit_bias token must be >= 0, got %d", (int)b->token);
        if (isnan(b->bias) || (isinf(b->bias) && b->bias > 0))
            return fail(err, errlen, "logit_bias for token %d must be finite or -inf, got %g", (int)b->token,
                        (double)b->bias);
    }
    return 0;
}

/* ---- life cycle ---- */

void ns_sampler_free(ns_sampler *s) {
    if (!s) return;
    free(s->bias);
    free(s->cand);
    free(s->dense);
    free(s->raw);
    free(s->hist);
    free(s->count);
    free(s->stamp);
    free(s);
}

ns_sampler *ns_sampler_new_checked(const ns_sampler_params *p, int n_vocab, char *err, size_t errlen) {
    if (ns_sampler_params_check(p, err, errlen) != 0) return NULL;
    if (n_vocab <= 0) {
        fail(err, errlen, "vocabulary size must be > 0, got %d", n_vocab);
        return NULL;
    }
    for (int i = 0; i < p->n_logit_bias; i++)
        if (p->logit_bias[i].token >= n_vocab) {
            fail(err, errlen, "logit_bias token %d is outside the vocabulary (%d tokens)", (int)p->logit_bias[i].token,
                 n_vocab);
            return NULL;
        }
    ns_sampler *s = calloc(1, sizeof *s);
    if (!s) goto oom;
    s->p = *p;
    s->n_vocab = n_vocab;
    size_t nv = (size_t)n_vocab;
    if (p->n_logit_bias > 0) {
        s->bias = malloc(sizeof *s->bias * (size_t)p->n_logit_bias);
        if (!s->bias) goto oom;
        memcpy(s->bias, p->logit_bias, sizeof *s->bias * (size_t)p->n_logit_bias);
    }
    s->p.logit_bias = s->bias;
    s->cand = malloc(sizeof *s->cand * nv);
    s->dense = malloc(sizeof *s->dense * nv);
    s->raw = malloc(sizeof *s->raw * nv);
    s->count = calloc(nv, sizeof *s->count);
    s->stamp = calloc(nv, sizeof *s->stamp);
    if (!s->cand || !s->dense || !s->raw || !s->count || !s->stamp) goto oom;
    ns_sampler_reset(s);
    return s;
oom:
    fail(err, errlen, "out of memory creating the sampler");
    ns_sampler_free(s);
    return NULL;
}

ns_sampler *ns_sampler_new(const ns_sampler_params *p, int n_vocab) {
    return ns_sampler_new_checked(p, n_vocab, NULL, 0);
}

void ns_sampler_reset(ns_sampler *s) {
    s->rng = s->p.seed;
    s->mu = 2.0f * s->p.mirostat_tau;
    s->last = -1;
    for (size_t i = 0; i < s->hist_len; i++) s->count[s->hist[(s->hist_head + i) % s->hist_cap]] = 0;
    s->hist_head = s->hist_len = 0;
}

float ns_sampler_mirostat_mu(const ns_sampler *s) { return s->mu; }

/* ---- history ---- */

void ns_sampler_accept(ns_sampler *s, int32_t token) {
    if (token < 0 || token >= s->n_vocab || s->p.repeat_last_n == 0) return;
    size_t limit = s->p.repeat_last_n > 0 ? (size_t)s->p.repeat_last_n : SIZE_MAX;
    if (s->hist_len == limit) { /* a full window (then hist_cap == limit): the oldest leaves */
        s->count[s->hist[s->hist_head]]--;
        s->hist[s->hist_head] = token;
        s->hist_head = (s->hist_head + 1) % s->hist_cap;
    } else {
        if (s->hist_len == s->hist_cap) { /* grow towards the window size, unwrapping the ring */
            size_t cap = s->hist_cap ? s->hist_cap * 2 : 256;
            if (cap > limit) cap = limit;
            int32_t *h = malloc(sizeof *h * cap);
            if (!h) return; /* out of memory: the token is not counted */
            for (size_t i = 0; i < s->hist_len; i++) h[i] = s->hist[(s->hist_head + i) % s->hist_cap];
            free(s->hist);
            s->hist = h;
            s->hist_cap = cap;
            s->hist_head = 0;
        }
        s->hist[(s->hist_head + s->hist_len) % s->hist_cap] = token;
        s->hist_len++;
    }
    s->count[token]++;
}

void ns_sampler_accept_many(ns_sampler *s, const int32_t *tokens, int n) {
    for (int i = 0; i < n; i++) ns_sampler_accept(s, tokens[i]);
}

/* ---- random numbers: splitmix64, small, fast and plenty for one draw per token ---- */

static uint64_t next_u64(uint64_t *st) {
    uint64_t z = (*st += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) with 53 bits */
static double next_unit(uint64_t *st) { return (double)(next_u64(st) >> 11) * (1.0 / 9007199254740992.0); }

/* ---- candidate ordering ---- */

/* a before b: larger logit first, then lower id (a total order, so every
 * sort below gives one answer on every libc) */
static bool better(const candidate *a, const candidate *b) {
    if (a->logit != b->logit) return a->logit > b->logit;
    return a->id < b->id;
}

static int cmp_better(const void *x, const void *y) {
    const candidate *a = x, *b = y;
    return better(a, b) ? -1 : better(b, a) ? 1 : 0;
}

/* min-heap on "better": the root is the worst of the heap */
static void sift_down(candidate *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && better(&h[w], &h[l])) w = l;
        if (r < n && better(&h[w], &h[r])) w = r;
        if (w == i) return;
        candidate t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

/* Make cand[0..m) the best m candidates, best first. */
static void sort_top(ns_sampler *s, int m) {
    int n = s->n_cand;
    if (m > n) m = n;
    if (m <= s->n_sorted) return;
    candidate *c = s->cand;
    if (m > n / 8 || n <= 1024) {
        qsort(c, (size_t)n, sizeof *c, cmp_better);
        s->n_sorted = n;
        return;
    }
    /* heap of the best m seen so far in c[0..m); losers swap to the back */
    for (int i = m / 2 - 1; i >= 0; i--) sift_down(c, m, i);
    for (int i = m; i < n; i++)
        if (better(&c[i], &c[0])) {
            candidate t = c[0];
            c[0] = c[i];
            c[i] = t;
            sift_down(c, m, 0);
        }
    qsort(c, (size_t)m, sizeof *c, cmp_better);
    s->n_sorted = m;
}

static void swap_cand(candidate *a, candidate *b) {
    candidate t = *a;
    *a = *b;
    *b = t;
}

/* Partition c[lo, hi) around a median-of-three pivot: the better ones first.
 * Returns the pivot's final index. */
static int partition(candidate *c, int lo, int hi) {
    int mid = lo + (hi - lo) / 2, last = hi - 1;
    /* order c[lo], c[mid], c[last] so that the median lands on last */
    if (better(&c[mid], &c[lo])) swap_cand(&c[mid], &c[lo]);
    if (better(&c[last], &c[lo])) swap_cand(&c[last], &c[lo]);
    if (better(&c[mid], &c[last])) swap_cand(&c[mid], &c[last]);
    candidate pv = c[last];
    int st = lo;
    for (int i = lo; i < last; i++)
        if (better(&c[i], &pv)) swap_cand(&c[i], &c[st++]);
    swap_cand(&c[st], &c[last]);
    return st;
}

/* Move the best m candidates to cand[0..m), in no particular order
 * (quickselect; every candidate is distinct under better(), so it is
 * deterministic and never degenerates on equal logits). */
static void select_top(ns_sampler *s, int m) {
    candidate *c = s->cand;
    int lo = 0, hi = s->n_cand;
    if (m <= s->n_sorted || m >= hi) return;
    while (hi - lo > 1) {
        int st = partition(c, lo, hi);
        if (st == m) break;
        if (st < m) lo = st + 1;
        else hi = st;
    }
    s->n_sorted = 0;
}

static float max_logit(const ns_sampler *s) {
    if (s->n_sorted > 0) return s->cand[0].logit;
    float m = -INFINITY;
    for (int i = 0; i < s->n_cand; i++)
        if (s->cand[i].logit > m) m = s->cand[i].logit;
    return m;
}

/* p = softmax(logit) over the current candidates */
static void softmax(ns_sampler *s) {
    double mx = max_logit(s), sum = 0.0;
    for (int i = 0; i < s->n_cand; i++) {
        s->cand[i].p = (double)expf((float)((double)s->cand[i].logit - mx));
        sum += s->cand[i].p;
    }
    for (int i = 0; i < s->n_cand; i++) s->cand[i].p /= sum;
}

/* index of the draw from the (normalized) p of the current candidates */
static int draw(ns_sampler *s) {
    double r = next_unit(&s->rng), acc = 0.0;
    for (int i = 0; i < s->n_cand; i++) {
        acc += s->cand[i].p;
        if (r < acc) return i;
    }
    /* rounding left r above the total: the last token with mass */
    for (int i = s->n_cand - 1; i > 0; i--)
        if (s->cand[i].p > 0) return i;
    return 0;
}

/* ---- the steps of the chain ---- */

static void apply_bias(ns_sampler *s) {
    for (int i = 0; i < s->p.n_logit_bias; i++) {
        float *l = &s->dense[s->bias[i].token];
        *l = isinf(s->bias[i].bias) ? -INFINITY : *l + s->bias[i].bias;
    }
}

static void apply_penalties(ns_sampler *s) {
    const ns_sampler_params *p = &s->p;
    if (p->repeat_last_n == 0 || s->hist_len == 0) return;
    if (p->repeat_penalty == 1.0f && p->frequency_penalty == 0.0f && p->presence_penalty == 0.0f) return;
    if (++s->stamp_cur == 0) { /* wrapped after 2^32 calls: clear the marks */
        memset(s->stamp, 0, sizeof *s->stamp * (size_t)s->n_vocab);
        s->stamp_cur = 1;
    }
    for (size_t i = 0; i < s->hist_len; i++) {
        int32_t t = s->hist[(s->hist_head + i) % s->hist_cap];
        if (s->stamp[t] == s->stamp_cur) continue;
        s->stamp[t] = s->stamp_cur;
        int c = s->count[t];
        float *l = &s->dense[t];
        if (*l <= 0) *l *= p->repeat_penalty;
        else *l /= p->repeat_penalty;
        *l -= (float)c * p->frequency_penalty + (c > 0 ? p->presence_penalty : 0.0f);
    }
}

static void top_k(ns_sampler *s, int k) {
    if (k <= 0 || k >= s->n_cand) return;
    if (k <= 256) sort_top(s, k); /* a small heap: about one comparison per token */
    else select_top(s, k);
    s->n_cand = k;
    if (s->n_sorted > k) s->n_sorted = k;
}

static int cmp_typical(const void *x, const void *y) {
    const candidate *a = x, *b = y;
    if (a->aux != b->aux) return a->aux < b->aux ? -1 : 1;
    return cmp_better(a, b);
}

static void typical_p(ns_sampler *s, float tp) {
    if (tp >= 1.0f || s->n_cand <= 1) return;
    softmax(s);
    double h = 0.0;
    for (int i = 0; i < s->n_cand; i++)
        if (s->cand[i].p > 0) h -= s->cand[i].p * log(s->cand[i].p);
    for (int i = 0; i < s->n_cand; i++) {
        double pi = s->cand[i].p;
        s->cand[i].aux = pi > 0 ? (float)fabs(-log(pi) - h) : INFINITY;
    }
    qsort(s->cand, (size_t)s->n_cand, sizeof *s->cand, cmp_typical);
    s->n_sorted = 0;
    double cum = 0.0;
    for (int i = 0; i < s->n_cand; i++) {
        cum += s->cand[i].p;
        if (cum > tp) {
            s->n_cand = i + 1;
            break;
        }
    }
}

/* The nucleus: the shortest run of the best candidates whose mass reaches
 * tp.  Found without sorting: a quickselect that decides, at each pivot,
 * whether the mass of the better side already reaches what is missing. */
static void top_p(ns_sampler *s, float tp) {
    if (tp >= 1.0f || s->n_cand <= 1) return;
    softmax(s);
    candidate *c = s->cand;
    int lo = 0, hi = s->n_cand; /* c[0, lo) are in; the boundary is in [lo, hi) */
    double in = 0.0;             /* mass of c[0, lo) */
    bool moved = false;
    while (hi - lo > 16) {
        int st = partition(c, lo, hi);
        moved = true;
        double better_mass = 0.0;
        for (int i = lo; i < st; i++) better_mass += c[i].p;
        if (in + better_mass >= tp) {
            hi = st; /* the boundary is among the better ones */
        } else {
            in += better_mass + c[st].p;
            lo = st + 1;
            if (in >= tp) {
                hi = lo;
                break;
            }
        }
    }
    if (hi > lo) { /* a few left: sort them and walk */
        qsort(c + lo, (size_t)(hi - lo), sizeof *c, cmp_better);
        for (int i = lo; i < hi; i++) {
            in += c[i].p;
            if (in >= tp) {
                hi = i + 1;
                break;
            }
        }
    }
    /* hi = end of the nucleus (everything when rounding kept the mass short);
     * sorted if it was all done by the final sort */
    s->n_sorted = moved ? 0 : hi;
    s->n_cand = hi;
}

static void min_p(ns_sampler *s, float mp) {
    if (mp <= 0.0f || s->n_cand <= 1) return;
    double thr = (double)max_logit(s) + log((double)mp);
    int kept = 0, sorted_kept = 0;
    for (int i = 0; i < s->n_cand; i++)
        if ((double)s->cand[i].logit >= thr) {
            if (i < s->n_sorted) sorted_kept++;
            s->cand[kept++] = s->cand[i];
        }
    /* the sorted prefix holds the best tokens, so what it lost was the
     * worst of it and everything after it is gone too */
    s->n_sorted = sorted_kept;
    s->n_cand = kept; /* never 0: the best token passes */
}

static void scale(ns_sampler *s, float temp) {
    if (temp == 1.0f) return;
    for (int i = 0; i < s->n_cand; i++) s->cand[i].logit /= temp;
}

static int best_index(const ns_sampler *s) {
    int b = 0;
    for (int i = 1; i < s->n_cand; i++)
        if (better(&s->cand[i], &s->cand[b])) b = i;
    return b;
}

static void mirostat_update(ns_sampler *s, double p_chosen) {
    double surprise = p_chosen > 0 ? -log2(p_chosen) : 0.0;
    s->mu = (float)((double)s->mu - (double)s->p.mirostat_eta * (surprise - (double)s->p.mirostat_tau));
}

/* Mirostat 1: estimate the Zipf exponent s_hat from the best m tokens, keep
 * the k best that the target surprise mu implies, draw. */
static int mirostat1(ns_sampler *s) {
    const int m = 100;
    sort_top(s, m);
    softmax(s);
    double sum_tb = 0.0, sum_tt = 0.0;
    int lim = s->n_cand - 1 < m - 1 ? s->n_cand - 1 : m - 1;
    for (int i = 0; i < lim; i++) {
        double pa = s->cand[i].p, pb = s->cand[i + 1].p;
        if (!(pb > 0)) break;
        double t = log((double)(i + 2) / (double)(i + 1));
        sum_tb += t * log(pa / pb);
        sum_tt += t * t;
    }
    double k = 1.0;
    if (sum_tt > 0) {
        double s_hat = sum_tb / sum_tt, eps = s_hat - 1.0, nv = (double)s->n_vocab;
        double base = fabs(eps) < 1e-7 ? exp2((double)s->mu) / log(nv) /* the limit as eps -> 0 */
                                       : eps * exp2((double)s->mu) / (1.0 - pow(nv, -eps));
        k = s_hat > 0 ? pow(base, 1.0 / s_hat) : (double)s->n_cand;
    }
    int ki = !(k >= 1.0) ? 1 : k >= (double)s->n_cand ? s->n_cand : (int)k;
    top_k(s, ki);
    softmax(s);
    int i = draw(s);
    mirostat_update(s, s->cand[i].p);
    return i;
}

/* Mirostat 2: keep the tokens whose surprise is at most mu, draw. */
static int mirostat2(ns_sampler *s) {
    softmax(s);
    double thr = exp2(-(double)s->mu); /* surprise <= mu  <=>  p >= 2^-mu */
    int b = best_index(s), kept = 0;
    candidate best = s->cand[b];
    for (int i = 0; i < s->n_cand; i++)
        if (s->cand[i].p >= thr) s->cand[kept++] = s->cand[i];
    if (kept == 0) {
        s->cand[0] = best;
        kept = 1;
    }
    s->n_cand = kept;
    s->n_sorted = 0;
    softmax(s);
    int i = draw(s);
    mirostat_update(s, s->cand[i].p);
    return i;
}

void ns_sampler_adjusted_logits(ns_sampler *s, const float *logits, float *out) {
    for (int i = 0; i < s->n_vocab; i++) s->dense[i] = isnan(logits[i]) ? -INFINITY : logits[i];
    apply_bias(s);
    if (s->p.mirostat == 0) apply_penalties(s);
    memcpy(out, s->dense, sizeof *out * (size_t)s->n_vocab);
}

int32_t ns_sampler_sample(ns_sampler *s, const float *logits) {
    const ns_sampler_params *p = &s->p;
    const int nv = s->n_vocab;
    for (int i = 0; i < nv; i++) {
        float l = isnan(logits[i]) ? -INFINITY : logits[i];
        s->raw[i] = l;
        s->dense[i] = l;
    }
    s->last = -1;
    apply_bias(s);

    /* greedy: the model's most likely token that the bias allows */
    if (p->temperature <= 0.0f) {
        int32_t b = ns_argmax(s->dense, nv);
        if (s->dense[b] == -INFINITY) return -1;
        return s->last = b;
    }

    if (p->mirostat == 0) apply_penalties(s);

    s->n_cand = 0;
    s->n_sorted = 0;
    if (p->mirostat == 0 && p->top_k > 0 && p->top_k <= 256 && p->top_k < nv / 8) {
        /* top-k straight from the logits: a heap of the best k, so the
         * whole vocabulary is never copied (the usual case, top_k 40) */
        candidate *h = s->cand;
        int k = p->top_k, n = 0;
        for (int i = 0; i < nv; i++) {
            float l = s->dense[i];
            if (l == -INFINITY) continue;
            if (n < k) {
                h[n++] = (candidate){0.0, l, 0.0f, i};
                if (n == k)
                    for (int j = k / 2 - 1; j >= 0; j--) sift_down(h, k, j);
            } else if (l > h[0].logit) { /* equal logits: the lower id, already in, stays */
                h[0] = (candidate){0.0, l, 0.0f, i};
                sift_down(h, k, 0);
            }
        }
        qsort(h, (size_t)n, sizeof *h, cmp_better);
        s->n_cand = s->n_sorted = n;
    } else {
        for (int i = 0; i < nv; i++)
            if (s->dense[i] != -INFINITY) s->cand[s->n_cand++] = (candidate){0.0, s->dense[i], 0.0f, i};
    }
    if (s->n_cand == 0) return -1;

    int chosen;
    if (p->mirostat != 0) {
        scale(s, p->temperature);
        chosen = p->mirostat == 1 ? mirostat1(s) : mirostat2(s);
    } else {
        top_k(s, p->top_k);
        typical_p(s, p->typical_p);
        top_p(s, p->top_p);
        min_p(s, p->min_p);
        scale(s, p->temperature);
        softmax(s);
        chosen = draw(s);
    }
    return s->last = s->cand[chosen].id;
}

/* ---- log-probabilities ---- */

static int cmp_lp(const void *x, const void *y) {
    const ns_token_logprob *a = x, *b = y;
    if (a->logprob != b->logprob) return a->logprob > b->logprob ? -1 : 1;
    return (a->token > b->token) - (a->token < b->token);
}

int ns_sampler_logprobs(const ns_sampler *s, int n_top, ns_token_logprob *out) {
    if (!s || s->last < 0) return -1;
    const int nv = s->n_vocab;
    const float *raw = s->raw;
    float mx = raw[ns_argmax(raw, nv)];
    double sum = 0.0;
    for (int i = 0; i < nv; i++) sum += exp((double)raw[i] - mx);
    double lse = (double)mx + log(sum);
    out[0] = (ns_token_logprob){s->last, (float)((double)raw[s->last] - lse)};
    if (n_top < 0) n_top = 0;
    if (n_top > nv) n_top = nv;
    ns_token_logprob *top = out + 1;
    if (n_top <= 64) {
        /* insertion into a short sorted list */
        int have = 0;
        for (int i = 0; i < nv && n_top > 0; i++) {
            float l = raw[i];
            if (have == n_top && !(l > top[have - 1].logprob)) continue; /* ties: lower id stays */
            int j = have < n_top ? have++ : have - 1;
            while (j > 0 && l > top[j - 1].logprob) {
                top[j] = top[j - 1];
                j--;
            }
            top[j] = (ns_token_logprob){i, l};
        }
    } else {
        ns_token_logprob *all = malloc(sizeof *all * (size_t)nv);
        if (!all) return -1;
        for (int i = 0; i < nv; i++) all[i] = (ns_token_logprob){i, raw[i]};
        qsort(all, (size_t)nv, sizeof *all, cmp_lp);
        memcpy(top, all, sizeof *top * (size_t)n_top);
        free(all);
    }
    for (int i = 0; i < n_top; i++) top[i].logprob = (float)((double)top[i].logprob - lse);
    return 1 + n_top;
}

int32_t ns_argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}
