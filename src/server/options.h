/* Ollama's `options` object (and a Modelfile's params layer, same keys):
 * sampling, stop, num_predict and the load options. Values are checked; a
 * wrong type or range is a 400 with the key's name. Unknown keys are
 * ignored with a debug log (Ollama ignores them too). */
#ifndef NS_SERVER_OPTIONS_H
#define NS_SERVER_OPTIONS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "nstack/sampler.h"
#include "runtime/runtime.h"

typedef struct {
    ns_sampler_params sampling; /* starts as ns_sampler_defaults() */
    ns_load_opts load;          /* starts all 0 / num_gpu -1: runtime defaults */
    long long n_predict;        /* num_predict; starts -1 */
    char **stops;               /* malloc'd strings */
    int n_stops;
    ns_logit_bias *logit_bias;  /* owned; sampling.logit_bias points here */
    int n_keep;                 /* num_keep: tokens kept at the front when a session's context
                                 * shifts; -1 all of the session's first prompt;
                                 * NS_N_KEEP_UNSET when not given */
} ns_gen_options;

#define NS_N_KEEP_UNSET (-2)

void ns_gen_options_init(ns_gen_options *o);
void ns_gen_options_free(ns_gen_options *o);

/* Applies the keys of obj (NULL: nothing) over o: temperature, top_k, top_p,
 * min_p, typical_p, repeat_last_n, repeat_penalty, frequency_penalty,
 * presence_penalty, mirostat, mirostat_tau, mirostat_eta, seed, stop (string
 * or array; replaces), num_predict, num_keep, num_ctx, num_batch, num_thread,
 * num_gpu, main_gpu. Returns 0, or -1 with err such as "options.top_p must be a
 * number in [0, 1]". */
int ns_gen_options_apply(ns_gen_options *o, const cJSON *obj, const char *what, char *err, size_t errlen);

/* Parses keep_alive as Ollama does: number of seconds, or a duration
 * string; absent -> NS_KEEP_ALIVE_DEFAULT. -1 and err when malformed. */
int ns_parse_keep_alive(const cJSON *v, int64_t *out_ns, char *err, size_t errlen);

#endif
