/* The sampler: every control checked against an independent computation in
 * this file, statistically where the output is random.  All draws come from
 * fixed seeds, so every test gives the same answer on every run; the bounds
 * below say why a correct sampler passes them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstack/sampler.h"

/* ---- helpers ---- */

/* test data generator (independent of the sampler's own generator) */
static uint64_t trng = 0x1234567887654321ull;
static double tunit(void) {
    trng ^= trng << 13;
    trng ^= trng >> 7;
    trng ^= trng << 17;
    return (double)(trng >> 11) * (1.0 / 9007199254740992.0);
}

static void random_logits(float *l, int n, double lo, double hi) {
    for (int i = 0; i < n; i++) l[i] = (float)(lo + (hi - lo) * tunit());
}

/* every filter and penalty off, temperature 1: a plain draw from softmax */
static ns_sampler_params plain(uint64_t seed) {
    ns_sampler_params p = ns_sampler_defaults();
    p.temperature = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.typical_p = 1.0f;
    p.repeat_penalty = 1.0f;
    p.seed = seed;
    return p;
}

static ns_sampler *mk(const ns_sampler_params *p, int nv) {
    char err[256] = "";
    ns_sampler *s = ns_sampler_new_checked(p, nv, err, sizeof err);
    if (!s) fprintf(stderr, "ns_sampler_new_checked: %s\n", err);
    assert_non_null(s);
    return s;
}

/* softmax(l / temp) in double */
static void softmax_ref(const float *l, int n, double temp, double *p) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++)
        if (l[i] > mx) mx = l[i];
    for (int i = 0; i < n; i++) sum += (p[i] = exp(((double)l[i] - mx) / temp));
    for (int i = 0; i < n; i++) p[i] /= sum;
}

/* token ids ordered by logit, best first */
static const float *sort_src;
static int by_logit(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    if (sort_src[x] != sort_src[y]) return sort_src[x] > sort_src[y] ? -1 : 1;
    return x - y;
}
static int *order_of(const float *l, int n) {
    int *o = malloc(sizeof *o * (size_t)n);
    for (int i = 0; i < n; i++) o[i] = i;
    sort_src = l;
    qsort(o, (size_t)n, sizeof *o, by_logit);
    return o;
}

/* Pearson's chi-square of observed counts against probabilities. */
static double chi_square(const long *obs, const double *p, int k, long n) {
    double x2 = 0;
    for (int i = 0; i < k; i++) {
        double e = p[i] * (double)n;
        x2 += ((double)obs[i] - e) * ((double)obs[i] - e) / e;
    }
    return x2;
}

/* ---- defaults and parameter ranges ---- */

static void test_defaults_are_ollamas(void **state) {
    (void)state;
    ns_sampler_params p = ns_sampler_defaults();
    assert_true(p.temperature == 0.8f);
    assert_int_equal(p.top_k, 40);
    assert_true(p.top_p == 0.9f);
    assert_true(p.min_p == 0.0f);
    assert_true(p.typical_p == 1.0f);
    assert_int_equal(p.repeat_last_n, 64);
    assert_true(p.repeat_penalty == 1.1f);
    assert_true(p.frequency_penalty == 0.0f);
    assert_true(p.presence_penalty == 0.0f);
    assert_int_equal(p.mirostat, 0);
    assert_true(p.mirostat_tau == 5.0f);
    assert_true(p.mirostat_eta == 0.1f);
    assert_int_equal(p.n_logit_bias, 0);
    char err[128];
    assert_int_equal(ns_sampler_params_check(&p, err, sizeof err), 0);
}

static void test_param_ranges(void **state) {
    (void)state;
    static const ns_logit_bias nan_bias[1] = {{3, NAN}};
    static const ns_logit_bias pinf_bias[1] = {{3, INFINITY}};
    static const ns_logit_bias neg_id[1] = {{-1, 1.0f}};
    static const ns_logit_bias big_id[1] = {{100, 1.0f}};
    static const ns_logit_bias ban[1] = {{3, -INFINITY}};
    struct {
        const char *want; /* substring of the message; NULL = valid */
        int field;
        double v;
    } cases[] = {
        {"top_p must be in [0, 1], got 1.5", 2, 1.5},
        {"top_p must be in [0, 1], got -0.1", 2, -0.1},
        {"top_p", 2, NAN},
        {NULL, 2, 0.0},
        {NULL, 2, 1.0},
        {"temperature must be a finite number", 0, INFINITY},
        {"temperature", 0, NAN},
        {NULL, 0, -1.0}, /* greedy */
        {"top_k must be >= 0", 1, -1},
        {"min_p must be in [0, 1], got 2", 3, 2},
        {"typical_p must be in [0, 1], got -1", 4, -1},
        {"repeat_last_n must be >= -1", 5, -2},
        {NULL, 5, -1},
        {"repeat_penalty must be a finite number > 0", 6, 0},
        {"repeat_penalty", 6, -1},
        {"repeat_penalty", 6, INFINITY},
        {NULL, 6, 0.5},
        {"frequency_penalty must be in [-2, 2], got 2.5", 7, 2.5},
        {"presence_penalty must be in [-2, 2], got -3", 8, -3},
        {NULL, 8, -2},
        {"mirostat must be 0, 1 or 2, got 3", 9, 3},
        {"mirostat must be 0, 1 or 2, got -1", 9, -1},
        {"mirostat_tau must be in [0, 100], got -1", 10, -1},
        {"mirostat_eta must be in [0, 1], got 1.5", 11, 1.5},
        {"logit_bias for token 3 must be finite or -inf", 12, 0},
        {"logit_bias for token 3 must be finite or -inf, got inf", 12, 1},
        {"logit_bias token must be >= 0, got -1", 12, 2},
        {NULL, 12, 3}, /* -inf bans: valid */
        {"n_logit_bias is 2 but logit_bias is NULL", 12, 4},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        ns_sampler_params p = ns_sampler_defaults();
        float v = (float)cases[c].v;
        switch (cases[c].field) {
        case 0: p.temperature = v; break;
        case 1: p.top_k = (int)cases[c].v; break;
        case 2: p.top_p = v; break;
        case 3: p.min_p = v; break;
        case 4: p.typical_p = v; break;
        case 5: p.repeat_last_n = (int)cases[c].v; break;
        case 6: p.repeat_penalty = v; break;
        case 7: p.frequency_penalty = v; break;
        case 8: p.presence_penalty = v; break;
        case 9: p.mirostat = (int)cases[c].v; break;
        case 10: p.mirostat_tau = v; break;
        case 11: p.mirostat_eta = v; break;
        case 12: {
            int k = (int)cases[c].v;
            p.logit_bias = k == 0 ? nan_bias : k == 1 ? pinf_bias : k == 2 ? neg_id : k == 3 ? ban : NULL;
            p.n_logit_bias = k == 4 ? 2 : 1;
            break;
        }
        }
        char err[256] = "";
        int rc = ns_sampler_params_check(&p, err, sizeof err);
        ns_sampler *s = ns_sampler_new(&p, 10);
        if (cases[c].want) {
            if (rc != -1 || !strstr(err, cases[c].want))
                fail_msg("case %zu: rc %d, message '%s', wanted '%s'", c, rc, err, cases[c].want);
            assert_null(s);
        } else {
            if (rc != 0) fail_msg("case %zu: rejected: %s", c, err);
            assert_non_null(s);
        }
        ns_sampler_free(s);
    }
    /* token ids are checked against the vocabulary when the sampler is made */
    ns_sampler_params p = ns_sampler_defaults();
    p.logit_bias = big_id;
    p.n_logit_bias = 1;
    char err[256];
    assert_int_equal(ns_sampler_params_check(&p, err, sizeof err), 0);
    assert_null(ns_sampler_new_checked(&p, 100, err, sizeof err));
    assert_non_null(strstr(err, "logit_bias token 100 is outside the vocabulary (100 tokens)"));
    ns_sampler *s = ns_sampler_new_checked(&p, 101, err, sizeof err);
    assert_non_null(s);
    ns_sampler_free(s);
    p = ns_sampler_defaults();
    assert_null(ns_sampler_new_checked(&p, 0, err, sizeof err));
    assert_non_null(strstr(err, "vocabulary size"));
    /* a tiny buffer or none is fine */
    p.top_p = 7;
    char small[8];
    assert_int_equal(ns_sampler_params_check(&p, small, sizeof small), -1);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(ns_sampler_params_check(&p, NULL, 0), -1);
}

/* ---- greedy ---- */

static void test_greedy_is_argmax(void **state) {
    (void)state;
    enum { NV = 300 };
    float l[NV];
    ns_sampler_params p = ns_sampler_defaults();
    p.temperature = 0.0f;
    p.repeat_penalty = 1.5f; /* greedy ignores the penalties (documented) */
    p.presence_penalty = 1.0f;
    p.typical_p = 0.5f;
    p.top_k = 3;
    ns_sampler *s = mk(&p, NV);
    p.temperature = -1.0f;
    ns_sampler *s2 = mk(&p, NV);
    for (int t = 0; t < 500; t++) {
        random_logits(l, NV, -5, 5);
        if (t % 7 == 0) l[t % NV] = l[(t + 1) % NV] = 9.0f; /* ties: the first */
        int32_t a = ns_argmax(l, NV);
        assert_int_equal(ns_sampler_sample(s, l), a);
        assert_int_equal(ns_sampler_sample(s2, l), a);
        ns_sampler_accept(s, a);
        ns_sampler_accept(s2, a);
    }
    ns_sampler_free(s);
    ns_sampler_free(s2);
}

/* ---- determinism ---- */

static void run_sequence(const ns_sampler_params *p, int nv, int steps, int32_t *out) {
    ns_sampler *s = mk(p, nv);
    float *l = malloc(sizeof *l * (size_t)nv);
    uint64_t save = trng;
    trng = 99; /* the same logits for every run */
    for (int t = 0; t < steps; t++) {
        random_logits(l, nv, 0, 4);
        out[t] = ns_sampler_sample(s, l);
        ns_sampler_accept(s, out[t]);
    }
    /* after a reset the sampler repeats itself */
    ns_sampler_reset(s);
    trng = 99;
    for (int t = 0; t < steps; t++) {
        random_logits(l, nv, 0, 4);
        int32_t again = ns_sampler_sample(s, l);
        assert_int_equal(again, out[t]);
        ns_sampler_accept(s, again);
    }
    trng = save;
    free(l);
    ns_sampler_free(s);
}

static void test_seed_determinism(void **state) {
    (void)state;
    enum { NV = 64, T = 2000 };
    static int32_t a[T], b[T], c[T];
    for (int mode = 0; mode < 3; mode++) {
        ns_sampler_params p = ns_sampler_defaults(); /* top-k 40, top-p 0.9, penalties */
        p.mirostat = mode;
        p.presence_penalty = 0.2f;
        p.seed = 42;
        run_sequence(&p, NV, T, a);
        run_sequence(&p, NV, T, b);
        assert_memory_equal(a, b, sizeof a);
        p.seed = 43;
        run_sequence(&p, NV, T, c);
        int diff = 0;
        for (int t = 0; t < T; t++) diff += a[t] != c[t];
        assert_true(diff > T / 4); /* another seed, another sequence */
    }
}

/* ---- temperature: frequencies match softmax ---- */

/* K = 8 tokens, N = 200000 draws.  With an exact sampler Pearson's statistic
 * follows chi-square with 7 degrees of freedom (every expected count is in
 * the thousands, far above the usual 5), whose 0.999 quantile is 24.32: a
 * correct sampler fails this bound with probability 0.001, and since the seed
 * is fixed the outcome is decided once.  The test has power: moving 0.01 of
 * probability from one token to another adds about N * 0.01^2 * (1/p1 + 1/p2)
 * >= 2 * 20 = 40 to the statistic's expectation (p <= 0.5 here), well past
 * the bound; the last check shows it tells temperatures apart. */
static void test_temperature_matches_softmax(void **state) {
    (void)state;
    enum { K = 8 };
    const long N = 200000;
    const float l[K] = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -3.0f};
    const float temps[] = {1.0f, 0.7f, 2.0f};
    for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
        ns_sampler_params p = plain(1000 + ti);
        p.temperature = temps[ti];
        ns_sampler *s = mk(&p, K);
        long obs[K] = {0};
        for (long i = 0; i < N; i++) {
            int32_t t = ns_sampler_sample(s, l);
            assert_true(t >= 0 && t < K);
            obs[t]++;
        }
        double pr[K];
        softmax_ref(l, K, temps[ti], pr);
        double x2 = chi_square(obs, pr, K, N);
        if (!(x2 < 24.32)) fail_msg("temperature %g: chi-square %g >= 24.32", (double)temps[ti], x2);
        if (temps[ti] == 2.0f) { /* the same counts are far from temperature 1 */
            softmax_ref(l, K, 1.0, pr);
            assert_true(chi_square(obs, pr, K, N) > 1000);
        }
        ns_sampler_free(s);
    }
}

/* ---- top-k ---- */

static void check_top_k(int nv, int k, float temp, int draws) {
    float *l = malloc(sizeof *l * (size_t)nv);
    random_logits(l, nv, 0, 3);
    int *ord = order_of(l, nv);
    char *in = calloc((size_t)nv, 1);
    for (int i = 0; i < k; i++) in[ord[i]] = 1;
    ns_sampler_params p = plain(7);
    p.top_k = k;
    p.temperature = temp;
    ns_sampler *s = mk(&p, nv);
    int *seen = calloc((size_t)nv, sizeof *seen);
    for (int i = 0; i < draws; i++) {
        int32_t t = ns_sampler_sample(s, l);
        if (!in[t]) fail_msg("top-k %d drew token %d, not among the best %d", k, t, k);
        seen[t]++;
    }
    /* with a flat-ish distribution over k tokens (logits within 3 of each
     * other) every one shows up, given enough draws per token */
    if (draws >= 50 * k)
        for (int i = 0; i < k; i++) assert_true(seen[ord[i]] > 0);
    ns_sampler_free(s);
    free(seen);
    free(in);
    free(ord);
    free(l);
}

static void test_top_k_never_outside(void **state) {
    (void)state;
    check_top_k(100, 5, 1.5f, 10000);
    check_top_k(32000, 40, 2.0f, 3000);  /* the heap selection path */
    check_top_k(32000, 600, 3.0f, 3000); /* the quickselect path */
    check_top_k(3000, 1, 1.0f, 200);     /* k = 1 is greedy */
}

/* ---- top-p ---- */

static void check_top_p(int nv, float top_p, double lo, double hi, float temp, int draws) {
    float *l = malloc(sizeof *l * (size_t)nv);
    double *pr = malloc(sizeof *pr * (size_t)nv);
    random_logits(l, nv, lo, hi);
    int *ord = order_of(l, nv);
    softmax_ref(l, nv, 1.0, pr); /* top-p looks at temperature 1 */
    char *in = calloc((size_t)nv, 1);
    double cum = 0;
    int n_in = 0;
    for (int i = 0; i < nv; i++) {
        in[ord[i]] = 1;
        n_in++;
        cum += pr[ord[i]];
        if (cum >= top_p) break;
    }
    ns_sampler_params p = plain(11);
    p.top_p = top_p;
    p.temperature = temp;
    ns_sampler *s = mk(&p, nv);
    int outside = 0, last_seen = 0;
    for (int i = 0; i < draws; i++) {
        int32_t t = ns_sampler_sample(s, l);
        outside += !in[t];
        last_seen |= t == ord[n_in - 1];
    }
    if (outside)
        fail_msg("top-p %g (nucleus of %d of %d): %d of %d draws outside", (double)top_p, n_in, nv, outside, draws);
    /* the nucleus is not cut short either: its last member is drawn (when
     * it is likely enough to be seen) */
    if (n_in <= 50 && draws >= 10000) assert_true(last_seen);
    ns_sampler_free(s);
    free(in);
    free(ord);
    free(pr);
    free(l);
}

static void test_top_p_never_outside_nucleus(void **state) {
    (void)state;
    check_top_p(50, 0.9f, 0, 4, 1.0f, 10000);
    check_top_p(50, 0.5f, 0, 4, 3.0f, 10000);   /* temperature does not move the nucleus */
    check_top_p(2000, 0.95f, 0, 6, 1.0f, 10000); /* the quickselect path */
    check_top_p(32000, 0.9f, 0, 20, 1.0f, 1000); /* small nucleus in a big vocabulary */
    check_top_p(32000, 0.5f, 0, 1, 1.0f, 1000);  /* nucleus of thousands */
    check_top_p(20, 0.0f, 0, 4, 1.0f, 10000);   /* top_p 0 keeps the best token */
}

/* ---- min-p ---- */

static void test_min_p_threshold(void **state) {
    (void)state;
    enum { NV = 200 };
    float l[NV];
    random_logits(l, NV, 0, 6);
    const float mp = 0.2f;
    float mx = l[ns_argmax(l, NV)];
    char in[NV];
    int n_in = 0;
    for (int i = 0; i < NV; i++) n_in += (in[i] = (double)l[i] >= (double)mx + log(mp));
    assert_true(n_in > 2 && n_in < NV / 2);
    ns_sampler_params p = plain(5);
    p.min_p = mp;
    p.temperature = 2.0f; /* min-p looks at temperature 1 */
    ns_sampler *s = mk(&p, NV);
    int seen[NV] = {0};
    for (int i = 0; i < 10000; i++) {
        int32_t t = ns_sampler_sample(s, l);
        if (!in[t]) fail_msg("min-p drew token %d with p/p_max = %g < %g", t, exp((double)l[t] - mx), (double)mp);
        seen[t]++;
    }
    /* inside the set probabilities are within 0.2^(1/2) of each other at
     * temperature 2, so each allowed token is expected hundreds of times */
    for (int i = 0; i < NV; i++)
        if (in[i]) assert_true(seen[i] > 0);
    ns_sampler_free(s);
}

/* ---- typical-p ---- */

static void test_typical_p_set(void **state) {
    (void)state;
    enum { NV = 30 };
    float l[NV];
    double pr[NV], score[NV];
    random_logits(l, NV, 0, 5);
    softmax_ref(l, NV, 1.0, pr);
    double h = 0;
    for (int i = 0; i < NV; i++) h -= pr[i] * log(pr[i]);
    for (int i = 0; i < NV; i++) score[i] = fabs(-log(pr[i]) - h);
    int ord[NV];
    for (int i = 0; i < NV; i++) ord[i] = i;
    for (int i = 1; i < NV; i++) /* insertion sort by score */
        for (int j = i; j > 0 && score[ord[j]] < score[ord[j - 1]]; j--) {
            int t = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = t;
        }
    const float tp = 0.5f;
    char in[NV] = {0};
    double cum = 0;
    int n_in = 0;
    for (int i = 0; i < NV; i++) {
        in[ord[i]] = 1;
        n_in++;
        cum += pr[ord[i]];
        if (cum > tp) break;
    }
    assert_true(n_in < NV);
    ns_sampler_params p = plain(3);
    p.typical_p = tp;
    ns_sampler *s = mk(&p, NV);
    int seen[NV] = {0};
    for (int i = 0; i < 10000; i++) {
        int32_t t = ns_sampler_sample(s, l);
        if (!in[t]) fail_msg("typical-p drew token %d outside the typical set", t);
        seen[t]++;
    }
    for (int i = 0; i < NV; i++)
        if (in[i] && pr[i] > 0.005) assert_true(seen[i] > 0);
    ns_sampler_free(s);
}

/* ---- penalties ---- */

static void test_penalties_exact(void **state) {
    (void)state;
    enum { NV = 10 };
    const float l[NV] = {2.0f, -1.0f, 0.5f, 0.0f, 3.0f, -2.0f, 1.0f, 1.0f, 1.0f, 1.0f};
    float out[NV], want[NV];
    ns_sampler_params p = plain(1);
    p.repeat_penalty = 1.5f;
    p.frequency_penalty = 0.2f;
    p.presence_penalty = 0.3f;
    p.repeat_last_n = 4;
    ns_sampler *s = mk(&p, NV);

    /* no history: nothing changes */
    ns_sampler_adjusted_logits(s, l, out);
    assert_memory_equal(out, l, sizeof l);

    /* history 0 1 0 2 4 5: the window is the last 4 = {0, 2, 4, 5}, each
     * once; token 1 has left the window */
    const int32_t h1[] = {0, 1, 0, 2, 4, 5};
    ns_sampler_accept_many(s, h1, 6);
    ns_sampler_adjusted_logits(s, l, out);
    memcpy(want, l, sizeof want);
    want[0] = 2.0f / 1.5f - 0.2f - 0.3f;
    want[2] = 0.5f / 1.5f - 0.2f - 0.3f;
    want[4] = 3.0f / 1.5f - 0.2f - 0.3f;
    want[5] = -2.0f * 1.5f - 0.2f - 0.3f; /* negative logits are multiplied */
    for (int i = 0; i < NV; i++) assert_float_equal(out[i], want[i], 1e-6);

    /* 0 three times and 3 (logit 0: multiplied, stays 0) once */
    const int32_t h2[] = {0, 0, 0, 3};
    ns_sampler_accept_many(s, h2, 4);
    ns_sampler_adjusted_logits(s, l, out);
    memcpy(want, l, sizeof want);
    want[0] = 2.0f / 1.5f - 3 * 0.2f - 0.3f;
    want[3] = 0.0f - 0.2f - 0.3f;
    for (int i = 0; i < NV; i++) assert_float_equal(out[i], want[i], 1e-6);

    /* reset forgets */
    ns_sampler_reset(s);
    ns_sampler_adjusted_logits(s, l, out);
    assert_memory_equal(out, l, sizeof l);
    ns_sampler_free(s);

    /* -1: the whole history counts; 0: penalties off */
    p.repeat_last_n = -1;
    s = mk(&p, NV);
    for (int i = 0; i < 1000; i++) ns_sampler_accept(s, 9);
    ns_sampler_accept(s, 6);
    ns_sampler_adjusted_logits(s, l, out);
    memcpy(want, l, sizeof want);
    want[9] = 1.0f / 1.5f - 1000 * 0.2f - 0.3f;
    want[6] = 1.0f / 1.5f - 0.2f - 0.3f;
    for (int i = 0; i < NV; i++) assert_float_equal(out[i], want[i], 1e-3);
    ns_sampler_free(s);
    p.repeat_last_n = 0;
    s = mk(&p, NV);
    ns_sampler_accept_many(s, h1, 6);
    ns_sampler_adjusted_logits(s, l, out);
    assert_memory_equal(out, l, sizeof l);
    ns_sampler_free(s);

    /* repeat penalty alone; the bias is added before the penalty */
    static const ns_logit_bias bias[1] = {{1, 3.0f}};
    p = plain(1);
    p.repeat_penalty = 2.0f;
    p.logit_bias = bias;
    p.n_logit_bias = 1;
    s = mk(&p, NV);
    ns_sampler_accept(s, 1);
    ns_sampler_accept(s, 7);
    ns_sampler_adjusted_logits(s, l, out);
    memcpy(want, l, sizeof want);
    want[1] = (-1.0f + 3.0f) / 2.0f;
    want[7] = 1.0f / 2.0f;
    for (int i = 0; i < NV; i++) assert_float_equal(out[i], want[i], 1e-6);
    ns_sampler_free(s);
}

/* A window longer than the ring's first allocation, against a brute-force
 * count of the last N tokens at every step. */
static void test_penalty_window_brute_force(void **state) {
    (void)state;
    enum { NV = 12, N = 300, T = 1500 };
    static int32_t hist[T];
    float l[NV], out[NV];
    random_logits(l, NV, -2, 2);
    const int windows[] = {N, 1, 256, 257, -1};
    for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
        ns_sampler_params p = plain(1);
        p.repeat_penalty = 1.25f;
        p.frequency_penalty = 0.01f;
        p.presence_penalty = 0.1f;
        p.repeat_last_n = windows[w];
        ns_sampler *s = mk(&p, NV);
        for (int t = 0; t < T; t++) {
            hist[t] = (int32_t)(tunit() * (t % 3 ? 4 : NV)); /* some tokens far more often */
            ns_sampler_accept(s, hist[t]);
            if (t % 37 != 0 && t != T - 1) continue;
            int cnt[NV] = {0};
            int from = windows[w] < 0 || t + 1 < windows[w] ? 0 : t + 1 - windows[w];
            for (int i = from; i <= t; i++) cnt[hist[i]]++;
            ns_sampler_adjusted_logits(s, l, out);
            for (int i = 0; i < NV; i++) {
                float want = l[i];
                if (cnt[i] > 0) {
                    want = want <= 0 ? want * 1.25f : want / 1.25f;
                    want -= (float)cnt[i] * 0.01f + 0.1f;
                }
                if (fabsf(out[i] - want) > 1e-4f)
                    fail_msg("window %d, step %d, token %d: %g, want %g", windows[w], t, i, (double)out[i],
                             (double)want);
            }
        }
        ns_sampler_free(s);
    }
}

/* Draws follow softmax of the adjusted logits (same chi-square bound as the
 * temperature test: 7 degrees of freedom, 0.999 quantile 24.32). */
static void test_penalties_shape_draws(void **state) {
    (void)state;
    enum { K = 8 };
    const long N = 100000;
    const float l[K] = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f};
    ns_sampler_params p = plain(77);
    p.repeat_penalty = 1.3f;
    p.frequency_penalty = 0.5f;
    p.presence_penalty = 0.25f;
    p.repeat_last_n = 8;
    ns_sampler *s = mk(&p, K);
    const int32_t h[] = {0, 0, 1, 5, 7};
    ns_sampler_accept_many(s, h, 5);
    float adj[K];
    ns_sampler_adjusted_logits(s, l, adj);
    assert_true(adj[0] < l[0] && adj[1] < l[1] && adj[5] < l[5] && adj[2] == l[2]);
    long obs[K] = {0};
    for (long i = 0; i < N; i++) obs[ns_sampler_sample(s, l)]++; /* not accepted: history fixed */
    double pr[K];
    softmax_ref(adj, K, 1.0, pr);
    double x2 = chi_square(obs, pr, K, N);
    if (!(x2 < 24.32)) fail_msg("penalized draws: chi-square %g", x2);
    ns_sampler_free(s);
}

/* ---- logit bias ---- */

static void test_logit_bias(void **state) {
    (void)state;
    enum { NV = 50 };
    float l[NV];
    random_logits(l, NV, 0, 2);
    int *ord = order_of(l, NV);
    int best = ord[0], second = ord[1], low = ord[NV - 1];
    ns_logit_bias bias[2] = {{best, -INFINITY}, {low, -1.0f}};
    ns_sampler_params p = plain(21);
    p.temperature = 3.0f;
    p.logit_bias = bias;
    p.n_logit_bias = 2;
    ns_sampler *s = mk(&p, NV);
    bias[0].bias = 0; /* the sampler keeps its own copy */
    int low_seen = 0;
    for (int i = 0; i < 10000; i++) {
        int32_t t = ns_sampler_sample(s, l);
        assert_int_not_equal(t, best);
        low_seen += t == low;
    }
    assert_true(low_seen > 0); /* a finite bias only lowers */
    ns_sampler_free(s);

    /* greedy honours bans and boosts */
    bias[0] = (ns_logit_bias){best, -INFINITY};
    p.temperature = 0;
    p.n_logit_bias = 1;
    s = mk(&p, NV);
    assert_int_equal(ns_sampler_sample(s, l), second);
    ns_sampler_free(s);
    bias[0] = (ns_logit_bias){low, 10.0f};
    s = mk(&p, NV);
    assert_int_equal(ns_sampler_sample(s, l), low);
    ns_sampler_free(s);

    /* everything banned: no token */
    ns_logit_bias all[NV];
    for (int i = 0; i < NV; i++) all[i] = (ns_logit_bias){i, -INFINITY};
    p.logit_bias = all;
    p.n_logit_bias = NV;
    for (int mode = 0; mode < 3; mode++) {
        p.mirostat = mode;
        p.temperature = mode ? 1.0f : 0.0f;
        s = mk(&p, NV);
        assert_int_equal(ns_sampler_sample(s, l), -1);
        ns_token_logprob lp[2];
        assert_int_equal(ns_sampler_logprobs(s, 1, lp), -1);
        p.temperature = 1.0f;
        ns_sampler_free(s);
    }
    free(ord);
}

static void test_nan_logits_never_chosen(void **state) {
    (void)state;
    enum { NV = 20 };
    float l[NV];
    random_logits(l, NV, 0, 1);
    l[3] = NAN;
    l[0] = NAN;
    ns_sampler_params p = plain(8);
    ns_sampler *s = mk(&p, NV);
    for (int i = 0; i < 2000; i++) {
        int32_t t = ns_sampler_sample(s, l);
        assert_true(t != 3 && t != 0 && t >= 0 && t < NV);
    }
    ns_sampler_free(s);
    p.temperature = 0;
    s = mk(&p, NV);
    int32_t t = ns_sampler_sample(s, l);
    assert_true(t != 3 && t != 0);
    ns_sampler_free(s);
}

/* ---- Mirostat ---- */

/* A Zipf-like model: p(rank r) ~ r^-1.1 over 1000 tokens, shuffled over the
 * ids.  Mirostat's update mu -= eta * (surprise - tau) means the mean
 * surprise over steps a..b equals tau + (mu_a - mu_b) / (eta * (b - a)):
 * it stays near tau exactly when mu stays bounded, which is the point of the
 * algorithm.  Each step's surprise, read back from mu, must also be a real
 * surprise of the drawn token: >= 0, and no more than its surprise under the
 * untruncated distribution (truncation only raises probabilities). */
static void check_mirostat(int mode, float tau, float temp) {
    enum { NV = 1000, T = 6000, BURN = 1000 };
    float l[NV];
    int perm[NV];
    for (int i = 0; i < NV; i++) perm[i] = i;
    for (int i = NV - 1; i > 0; i--) {
        int j = (int)(tunit() * (i + 1));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    for (int r = 0; r < NV; r++) l[perm[r]] = (float)(-1.1 * log(r + 1.0));
    double pr[NV];
    softmax_ref(l, NV, temp, pr);
    ns_sampler_params p = plain(31 + (uint64_t)mode);
    p.mirostat = mode;
    p.mirostat_tau = tau;
    p.mirostat_eta = 0.1f;
    p.temperature = temp;
    p.repeat_penalty = 1.5f; /* the Mirostat chain has no penalties: no effect */
    ns_sampler *s = mk(&p, NV);
    assert_float_equal(ns_sampler_mirostat_mu(s), 2 * tau, 1e-6);
    double mu_prev = ns_sampler_mirostat_mu(s), mu_lo = INFINITY, mu_hi = -INFINITY, sum = 0, sum_full = 0;
    double mu_burn = 0;
    for (int t = 0; t < T; t++) {
        int32_t tok = ns_sampler_sample(s, l);
        assert_true(tok >= 0 && tok < NV);
        ns_sampler_accept(s, tok);
        double mu = ns_sampler_mirostat_mu(s);
        double surprise = tau + (mu_prev - mu) / 0.1;
        double full = -log2(pr[tok]);
        if (surprise < -1e-3 || surprise > full + 1e-3)
            fail_msg("mirostat %d step %d: surprise %g outside [0, %g]", mode, t, surprise, full);
        mu_prev = mu;
        if (t == BURN - 1) mu_burn = mu;
        if (t >= BURN) {
            sum += surprise;
            sum_full += full;
            if (mu < mu_lo) mu_lo = mu;
            if (mu > mu_hi) mu_hi = mu;
        }
    }
    double mean = sum / (T - BURN);
    /* mu settles in a band above the target: kept tokens have surprise up
     * to about mu and average tau, so mu > tau; and mu far above the target
     * truncates little, so the surprise rises to the entropy and pulls it
     * back (observed bands: [5.4, 7.8] for tau 3, [8, 12.3] for tau 5) */
    if (!(mu_lo > tau && mu_hi < 3 * tau))
        fail_msg("mirostat %d: mu in [%g, %g] for tau %g", mode, mu_lo, mu_hi, (double)tau);
    /* with mu in a band of width w the identity above bounds the error by
     * w / (eta * 5000) ~ 0.01; 0.05 leaves room */
    if (fabs(mean - tau) > 0.05) fail_msg("mirostat %d: mean surprise %g, tau %g", mode, mean, (double)tau);
    assert_float_equal(mean, tau + (mu_burn - mu_prev) / (0.1 * (T - BURN)), 1e-3);
    /* and the draws were truncated: the untruncated surprise of what was
     * drawn is well below what plain sampling gives (the entropy) */
    double plain_surprise = 0;
    for (int i = 0; i < NV; i++) plain_surprise -= pr[i] * log2(pr[i]);
    double mean_full = sum_full / (T - BURN);
    print_message("mirostat %d, tau %g, temperature %g: mu in [%.2f, %.2f], mean surprise %.3f, untruncated %.2f, "
                  "entropy %.2f\n",
                  mode, (double)tau, (double)temp, mu_lo, mu_hi, mean, mean_full, plain_surprise);
    if (!(mean_full >= mean - 1e-9 && mean_full < plain_surprise - 1.0))
        fail_msg("mirostat %d: full-distribution surprise %g (tau %g, entropy %g)", mode, mean_full, (double)tau,
                 plain_surprise);
    ns_sampler_reset(s);
    assert_float_equal(ns_sampler_mirostat_mu(s), 2 * tau, 1e-6);
    ns_sampler_free(s);
}

static void test_mirostat(void **state) {
    (void)state;
    check_mirostat(2, 3.0f, 1.0f);
    check_mirostat(2, 5.0f, 1.0f);
    check_mirostat(1, 3.0f, 1.0f);
    check_mirostat(1, 5.0f, 1.0f);
    check_mirostat(2, 4.0f, 1.5f);
}

/* ---- log-probabilities ---- */

static void test_logprobs(void **state) {
    (void)state;
    enum { NV = 100 };
    float l[NV];
    random_logits(l, NV, -3, 3);
    l[17] = l[42] = 3.5f; /* a tie at the top: lower id first */
    static const ns_logit_bias bias[1] = {{5, 4.0f}};
    ns_sampler_params p = ns_sampler_defaults();
    p.temperature = 0.5f;
    p.logit_bias = bias;
    p.n_logit_bias = 1;
    p.seed = 9;
    ns_sampler *s = mk(&p, NV);
    ns_token_logprob out[1 + NV];
    assert_int_equal(ns_sampler_logprobs(s, 5, out), -1); /* nothing sampled yet */
    double mx = 3.5, sum = 0;
    for (int i = 0; i < NV; i++) sum += exp((double)l[i] - mx);
    double lse = mx + log(sum);
    int *ord = order_of(l, NV);
    for (int step = 0; step < 20; step++) {
        int32_t t = ns_sampler_sample(s, l);
        ns_sampler_accept(s, t);
        assert_int_equal(ns_sampler_logprobs(s, 5, out), 6);
        assert_int_equal(out[0].token, t);
        /* raw logits: neither the bias, the penalties nor temperature 0.5 */
        assert_float_equal(out[0].logprob, (double)l[t] - lse, 1e-5);
        for (int i = 0; i < 5; i++) {
            assert_int_equal(out[1 + i].token, ord[i]);
            assert_float_equal(out[1 + i].logprob, (double)l[ord[i]] - lse, 1e-5);
        }
        assert_int_equal(out[1].token, 17);
        assert_int_equal(out[2].token, 42);
    }
    /* the whole vocabulary (the sorting path): probabilities sum to 1 */
    assert_int_equal(ns_sampler_logprobs(s, 1000, out), 1 + NV);
    double total = 0;
    for (int i = 0; i < NV; i++) {
        total += exp(out[1 + i].logprob);
        assert_int_equal(out[1 + i].token, ord[i]);
        if (i) assert_true(out[1 + i].logprob <= out[i].logprob);
    }
    assert_float_equal(total, 1.0, 1e-5);
    assert_int_equal(ns_sampler_logprobs(s, 0, out), 1);
    ns_sampler_free(s);
    free(ord);
}

/* ---- accept: ids outside the vocabulary are ignored ---- */

static void test_accept_bounds(void **state) {
    (void)state;
    enum { NV = 4 };
    const float l[NV] = {1, 1, 1, 1};
    float out[NV];
    ns_sampler_params p = plain(1);
    p.presence_penalty = 1.0f;
    ns_sampler *s = mk(&p, NV);
    ns_sampler_accept(s, -1);
    ns_sampler_accept(s, NV);
    ns_sampler_accept_many(s, NULL, 0);
    ns_sampler_adjusted_logits(s, l, out);
    assert_memory_equal(out, l, sizeof l);
    ns_sampler_free(s);
    ns_sampler_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_are_ollamas),
        cmocka_unit_test(test_param_ranges),
        cmocka_unit_test(test_greedy_is_argmax),
        cmocka_unit_test(test_seed_determinism),
        cmocka_unit_test(test_temperature_matches_softmax),
        cmocka_unit_test(test_top_k_never_outside),
        cmocka_unit_test(test_top_p_never_outside_nucleus),
        cmocka_unit_test(test_min_p_threshold),
        cmocka_unit_test(test_typical_p_set),
        cmocka_unit_test(test_penalties_exact),
        cmocka_unit_test(test_penalty_window_brute_force),
        cmocka_unit_test(test_penalties_shape_draws),
        cmocka_unit_test(test_logit_bias),
        cmocka_unit_test(test_nan_logits_never_chosen),
        cmocka_unit_test(test_mirostat),
        cmocka_unit_test(test_logprobs),
        cmocka_unit_test(test_accept_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
