/* From a conversation to prompt text and tokens (prompt.h). */
#include "prompt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gotmpl.h"
#include "nstack/gguf.h"
#include "nstack/tokenizer.h"
#include "util/log.h"

static const char *token_text(const ns_vocab *v, int32_t id) {
    const char *t = id >= 0 ? ns_vocab_token_text(v, id) : NULL;
    return t ? t : "";
}

/* A model without any template: the messages' texts, one after another,
 * separated by a blank line ("system\n\nprompt" for /api/generate). */
static char *render_plain(const ns_chat_msg *msgs, int n, char *err, size_t errlen) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += (msgs[i].content ? strlen(msgs[i].content) : 0) + 2;
    char *out = malloc(len + 1), *p = out;
    if (!out) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *c = msgs[i].content ? msgs[i].content : "";
        if (!*c) continue;
        if (p > out) {
            memcpy(p, "\n\n", 2);
            p += 2;
        }
        size_t cl = strlen(c);
        memcpy(p, c, cl);
        p += cl;
    }
    *p = 0;
    return out;
}

/* The file's template did not parse: the built-in format it resembles. */
static char *render_fallback(const ns_loaded *lm, const ns_chat_msg *msgs, int n, const ns_chat_opts *co, int *status,
                             char *err, size_t errlen) {
    char *src = ns_gguf_get_str(ns_model_gguf(ns_loaded_model(lm)), "tokenizer.chat_template");
    const char *name = src ? ns_chat_guess(src) : NULL;
    free(src);
    if (!name) name = "chatml";
    ns_log_debug("server", "the model's chat template does not parse; using a built-in format", "format=%s reason=\"%s\"",
                 name, ns_loaded_template_error(lm));
    char *text = ns_chat_apply_ex(ns_chat_builtin(name), msgs, n, co, err, errlen);
    if (!text) *status = 400;
    return text;
}

char *ns_prompt_render(const ns_loaded *lm, const ns_chat_msg *msgs, int n, const char *go_template,
                       const char *tools_json, int *status, char *err, size_t errlen) {
    *status = 500;
    const ns_model_ref *ref = ns_loaded_ref(lm);
    const ns_vocab *v = ns_loaded_vocab(lm);

    /* The Modelfile's system prompt is the default when the conversation
     * has none (as Ollama's chat handler does). */
    bool has_system = false;
    for (int i = 0; i < n; i++)
        if (msgs[i].role && strcmp(msgs[i].role, "system") == 0) has_system = true;
    const char *model_system = ref && ref->system_text && *ref->system_text && !has_system ? ref->system_text : NULL;
    ns_chat_msg *all = calloc((size_t)n + 1, sizeof *all);
    if (!all) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    int k = 0;
    if (model_system) all[k++] = (ns_chat_msg){.role = "system", .content = model_system};
    for (int i = 0; i < n; i++) all[k++] = msgs[i];

    char *text = NULL;
    if (go_template && *go_template) {
        text = ns_gotmpl_render(go_template, NULL, all, k, tools_json, err, errlen);
        if (!text) *status = 400;
    } else if (ref && ref->template_text && *ref->template_text) {
        char why[400];
        text = ns_gotmpl_render(ref->template_text, NULL, all, k, tools_json, why, sizeof why);
        if (!text) snprintf(err, errlen, "the model's Modelfile template failed: %s", why);
    } else if (ns_loaded_template(lm) || ns_loaded_template_error(lm)) {
        int32_t bos = ns_vocab_bos(v), eos = ns_vocab_eos(v);
        ns_chat_opts co = {.bos_token = token_text(v, bos),
                           .eos_token = token_text(v, eos),
                           .add_generation_prompt = true,
                           .tools_json = tools_json};
        if (ns_loaded_template(lm)) {
            /* a render error is the template refusing this conversation
             * (raise_exception: roles must alternate, ...) */
            text = ns_chat_render(ns_loaded_template(lm), all, k, &co, err, errlen);
            if (!text) *status = 400;
        } else {
            text = render_fallback(lm, all, k, &co, status, err, errlen);
        }
    } else {
        text = render_plain(all, k, err, errlen);
    }
    free(all);
    return text;
}

int ns_prompt_tokenize(const ns_loaded *lm, const char *text, int32_t **out, char *err, size_t errlen) {
    *out = NULL;
    const ns_vocab *v = ns_loaded_vocab(lm);
    int32_t bos = ns_vocab_bos(v);
    const char *bos_text = bos >= 0 ? ns_vocab_token_text(v, bos) : NULL;
    /* a template that writes {{ bos_token }} already put it there */
    bool add_bos = ns_vocab_add_bos(v) && !(bos_text && *bos_text && strncmp(text, bos_text, strlen(bos_text)) == 0);
    size_t len = strlen(text);
    int n = ns_tokenize(v, text, len, add_bos, true, NULL, 0);
    if (n < 0) {
        snprintf(err, errlen, "cannot tokenize the prompt");
        return -1;
    }
    if (n == 0) {
        if (bos < 0) {
            snprintf(err, errlen, "the prompt is empty and the model has no BOS token to start from");
            return -1;
        }
        /* an empty prompt starts from BOS alone */
        if (!(*out = malloc(sizeof(int32_t)))) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        (*out)[0] = bos;
        return 1;
    }
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)n);
    if (!toks) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (ns_tokenize(v, text, len, add_bos, true, toks, n) != n) {
        free(toks);
        snprintf(err, errlen, "cannot tokenize the prompt");
        return -1;
    }
    *out = toks;
    return n;
}
