/* Choosing the next token from logits: greedy, or seeded temperature with
 * top-k and top-p. */
#ifndef NSTACK_SAMPLER_H
#define NSTACK_SAMPLER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float temperature; /* <= 0: greedy */
    int top_k;         /* <= 0: all tokens */
    float top_p;       /* >= 1: off */
    uint64_t seed;
} ns_sampler_params;

typedef struct ns_sampler ns_sampler;

ns_sampler_params ns_sampler_defaults(void);
ns_sampler *ns_sampler_new(const ns_sampler_params *p, int n_vocab);
void ns_sampler_free(ns_sampler *s);
int32_t ns_sampler_sample(ns_sampler *s, const float *logits);

/* Index of the largest logit (the first of equals). */
int32_t ns_argmax(const float *logits, int n);

#ifdef __cplusplus
}
#endif
#endif
