/* The interactive chat of `nstack run` (no prompt on a terminal, or --chat):
 * keeps the conversation and its KV cache between turns, with the
 * `ollama run` commands /bye, /clear, /set parameter, /set system. */
#ifndef NS_CLI_CHAT_REPL_H
#define NS_CLI_CHAT_REPL_H

#include <stdio.h>

#include "nstack/chat.h"
#include "nstack/model.h"
#include "nstack/sampler.h"

typedef struct {
    const ns_model *m;
    ns_context *c;
    ns_sampler_params sp;
    long long n_predict;
    const char **stops;
    int n_stops;
    const ns_chat_template *tmpl; /* NULL: no template, turns are plain text continuations */
    const char *system;           /* initial system prompt or NULL */
    FILE *in, *out;
    bool interactive;             /* print the ">>> " prompt and the greeting */
} chat_opts;

/* Runs until /bye or end of input. Returns a process exit code. */
int chat_repl(const chat_opts *o);

#endif
