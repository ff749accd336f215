/* The token loop shared by one-shot `nstack run` and the interactive chat:
 * sample, stream the text through the stop-sequence matcher, decode the
 * token, until end of generation, a stop sequence, the token budget or a
 * full context. */
#ifndef NS_CLI_GENERATE_H
#define NS_CLI_GENERATE_H

#include <stdbool.h>
#include <stdio.h>

#include "nstack/model.h"
#include "nstack/sampler.h"
#include "nstack/stop.h"

/* A growable list of token ids. */
typedef struct {
    int32_t *ids;
    int n, cap;
} tokvec;

int tokvec_push(tokvec *v, int32_t id);
void tokvec_free(tokvec *v);

typedef struct {
    long long n_gen;     /* tokens sampled */
    bool context_full;
} gen_result;

/* Generates after the logits of the last ns_decode on sequence 0.
 * prev_bos: the last token in the cache is BOS (SentencePiece drops the
 * first space then). Text goes to out, and is appended to text when it is
 * not NULL (malloc'd, NUL-terminated, *text may start NULL); every token
 * decoded into the cache is pushed on decoded when not NULL. Returns 0, or
 * -1 with err on a decode failure. */
int cli_generate(ns_context *c, const ns_vocab *v, ns_sampler *s, ns_stop *stop, long long n_predict, bool prev_bos,
                 FILE *out, char **text, tokvec *decoded, gen_result *res, char *err, size_t errlen);

#endif
