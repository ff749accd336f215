/* Choosing the next token from logits.
 *
 * Controls: logit bias, repetition / frequency / presence penalties over the
 * last N accepted tokens, top-k, typical-p, top-p, min-p, temperature,
 * Mirostat 1 and 2, a seeded random draw; greedy when temperature <= 0.
 *
 * Order of the chain (the reference engine's default order, llama.cpp's
 * common sampler, which Ollama's llama.cpp runner also uses):
 *
 *   mirostat == 0:
 *     logits -> logit bias -> penalties -> top-k -> typical-p -> top-p
 *            -> min-p -> temperature -> random draw
 *   mirostat == 1 or 2:
 *     logits -> logit bias -> temperature -> Mirostat (truncate, draw,
 *            update mu)                      (no penalties, no top-k/p...)
 *
 * Consequences worth knowing:
 * - top-k, typical-p, top-p and min-p look at the distribution at
 *   temperature 1 (after bias and penalties); temperature only reshapes what
 *   they kept.  top-p keeps the smallest prefix whose mass is >= top_p,
 *   typical-p the smallest set (by |surprise - entropy|) whose mass is
 *   > typical_p, min-p the tokens with p >= min_p * p_max.  Each keeps at
 *   least one token.
 * - temperature <= 0 is greedy: the token with the largest logit after the
 *   logit bias (bans hold), first of equals; penalties, filters and Mirostat
 *   do not apply, and the random generator is not used.  This is what
 *   Ollama's engine does at temperature 0, and what llama.cpp gives with its
 *   own defaults (its penalties default to off); it keeps greedy output
 *   equal to the model's argmax text while our defaults keep Ollama's 1.1
 *   repeat penalty for sampling.  (llama.cpp alone would also apply a
 *   non-default penalty before its greedy pick.)
 * - penalties (as llama.cpp): for every distinct token seen c > 0 times in
 *   the window, logit /= repeat_penalty if logit > 0 else logit *=
 *   repeat_penalty; then logit -= c * frequency_penalty + presence_penalty.
 * - Mirostat mu starts at 2 * tau; after each draw mu -= eta * (surprise -
 *   tau), with surprise = -log2 p(chosen) in the truncated, renormalized
 *   distribution.  Mirostat 1 estimates the Zipf exponent from the 100 most
 *   likely tokens and keeps the top k it implies; Mirostat 2 keeps the
 *   tokens whose surprise is <= mu (at least the most likely one).
 *
 * History: the sampler does NOT record what it samples by itself.  Callers
 * feed every token that enters the sequence with ns_sampler_accept(): the
 * prompt tokens first (as the reference engine does, so the prompt counts
 * for the penalties), then each generated token once it is kept.
 *
 * Determinism: the same params (seed included), the same accepted tokens and
 * the same logits give the same tokens, run after run (the random generator
 * is our own splitmix64 and every sort has a total order, so nothing depends
 * on the C library's rand() or qsort()).
 */
#ifndef NSTACK_SAMPLER_H
#define NSTACK_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t token;
    float bias; /* added to the logit; -INFINITY bans the token */
} ns_logit_bias;

/* Ranges (ns_sampler_params_check enforces them); defaults are Ollama's
 * (api.DefaultOptions): */
typedef struct {
    float temperature;       /* finite; <= 0: greedy.                 0.8  */
    int top_k;               /* >= 0; 0: all tokens.                  40   */
    float top_p;             /* [0, 1]; 1: off.                       0.9  */
    float min_p;             /* [0, 1]; 0: off.                       0.0  */
    float typical_p;         /* [0, 1]; 1: off.                       1.0  */
    int repeat_last_n;       /* >= -1; window for the penalties: 0 off,
                              * -1 every accepted token.              64   */
    float repeat_penalty;    /* (0, inf) finite; 1: off.              1.1  */
    float frequency_penalty; /* [-2, 2] (OpenAI's range); 0: off.     0.0  */
    float presence_penalty;  /* [-2, 2]; 0: off.                      0.0  */
    int mirostat;            /* 0 off, 1 Mirostat, 2 Mirostat 2.0.    0    */
    float mirostat_tau;      /* [0, 100]: target surprise in bits.    5.0  */
    float mirostat_eta;      /* [0, 1]: learning rate.                0.1  */
    uint64_t seed;           /* any value.                            0    */
    /* Per-token biases, copied by ns_sampler_new (the array need not
     * outlive it); token in [0, n_vocab), bias finite or -INFINITY.   none */
    const ns_logit_bias *logit_bias;
    int n_logit_bias;
} ns_sampler_params;

typedef struct {
    int32_t token;
    float logprob; /* natural log of the probability */
} ns_token_logprob;

typedef struct ns_sampler ns_sampler;

ns_sampler_params ns_sampler_defaults(void);

/* 0 when every field is within its range, else -1 with one line in err such
 * as "top_p must be in [0, 1], got 1.5".  Token ids of logit biases are only
 * checked against the vocabulary by ns_sampler_new_checked. */
int ns_sampler_params_check(const ns_sampler_params *p, char *err, size_t errlen);

/* NULL when the params are invalid (see ns_sampler_params_check), a logit
 * bias names a token outside [0, n_vocab), n_vocab <= 0 or memory runs out. */
ns_sampler *ns_sampler_new(const ns_sampler_params *p, int n_vocab);
/* The same, with the reason in err (err may be NULL). */
ns_sampler *ns_sampler_new_checked(const ns_sampler_params *p, int n_vocab, char *err, size_t errlen);
void ns_sampler_free(ns_sampler *s);

/* Forget the history, reset Mirostat's mu to 2 * tau and the random
 * generator to the seed: the sampler is as new. */
void ns_sampler_reset(ns_sampler *s);

/* Record a token that entered the sequence (prompt or generated). Ids
 * outside [0, n_vocab) are ignored. */
void ns_sampler_accept(ns_sampler *s, int32_t token);
void ns_sampler_accept_many(ns_sampler *s, const int32_t *tokens, int n);

/* The next token for these n_vocab logits (not modified).  NaN logits count
 * as -INFINITY.  Returns -1 only when no token is possible (every logit is
 * -INFINITY after the bias).  Does not accept the token. */
int32_t ns_sampler_sample(ns_sampler *s, const float *logits);

/* Log-probabilities of the last ns_sampler_sample call, computed like the
 * OpenAI API and llama.cpp's server report them: log-softmax of the raw
 * logits given to ns_sampler_sample, over the whole vocabulary, before logit
 * bias, penalties, filters and temperature (so they do not depend on the
 * sampling settings).  out[0] is the chosen token, out[1..] the n_top most
 * likely tokens, best first (ties: lower id first).  out needs room for
 * 1 + n_top entries.  Returns the number written (1 + min(n_top, n_vocab)),
 * or -1 before the first sample or when the last sample returned -1. */
int ns_sampler_logprobs(const ns_sampler *s, int n_top, ns_token_logprob *out);

/* The logits as the filters of ns_sampler_sample see them (temperature > 0):
 * NaN made -INFINITY, logit bias added, and the penalties of the current
 * history applied (not with Mirostat, whose chain has none).  out gets
 * n_vocab values; nothing else changes.  For inspection and tests. */
void ns_sampler_adjusted_logits(ns_sampler *s, const float *logits, float *out);

/* Mirostat's current mu (2 * tau until the first Mirostat draw). */
float ns_sampler_mirostat_mu(const ns_sampler *s);

/* Index of the largest logit (the first of equals). */
int32_t ns_argmax(const float *logits, int n);

#ifdef __cplusplus
}
#endif
#endif
