#include "nstack/sampler.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    float logit;
    int32_t id;
} candidate;

struct ns_sampler {
    ns_sampler_params p;
    int n_vocab;
    uint64_t rng;
    candidate *cand;
    double *prob;
};

ns_sampler_params ns_sampler_defaults(void) {
    ns_sampler_params p = {0.8f, 40, 0.9f, 0};
    return p;
}

/* splitmix64: small, fast and good enough for drawing one token per step */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double next_unit(uint64_t *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

ns_sampler *ns_sampler_new(const ns_sampler_params *p, int n_vocab) {
    if (n_vocab <= 0) return NULL;
    ns_sampler *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->p = *p;
    s->n_vocab = n_vocab;
    s->rng = p->seed;
    s->cand = malloc(sizeof(candidate) * (size_t)n_vocab);
    s->prob = malloc(sizeof(double) * (size_t)n_vocab);
    if (!s->cand || !s->prob) {
        ns_sampler_free(s);
        return NULL;
    }
    return s;
}

void ns_sampler_free(ns_sampler *s) {
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s);
}

int32_t ns_argmax(const float *logits, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

static int by_logit_desc(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->logit != y->logit) return x->logit < y->logit ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int32_t ns_sampler_sample(ns_sampler *s, const float *logits) {
    if (s->p.temperature <= 0.0f) return ns_argmax(logits, s->n_vocab);
    int n = s->n_vocab;
    for (int i = 0; i < n; i++) s->cand[i] = (candidate){logits[i], i};
    /* top-k: partial ordering is enough, but a full sort of the vocabulary
     * costs well under a millisecond next to a forward pass */
    qsort(s->cand, (size_t)n, sizeof *s->cand, by_logit_desc);
    if (s->p.top_k > 0 && s->p.top_k < n) n = s->p.top_k;
    double maxl = s->cand[0].logit, sum = 0.0;
    double *prob = s->prob;
    for (int i = 0; i < n; i++) {
        prob[i] = exp((s->cand[i].logit - maxl) / s->p.temperature);
        sum += prob[i];
    }
    for (int i = 0; i < n; i++) prob[i] /= sum;
    if (s->p.top_p > 0.0f && s->p.top_p < 1.0f) {
        double cum = 0.0;
        int keep = n;
        for (int i = 0; i < n; i++) {
            cum += prob[i];
            if (cum >= s->p.top_p) {
                keep = i + 1;
                break;
            }
        }
        n = keep;
        sum = cum; /* draw within the kept mass */
    } else {
        sum = 1.0;
    }
    double r = next_unit(&s->rng) * sum, acc = 0.0;
    int32_t chosen = s->cand[n - 1].id;
    for (int i = 0; i < n; i++) {
        acc += prob[i];
        if (r < acc) {
            chosen = s->cand[i].id;
            break;
        }
    }
    return chosen;
}
