/* Chat templates: the conversation as template variables, the built-in
 * fallback formats, and guessing which built-in a template resembles.
 * The template language itself lives in jinja_*.c. */
#include "nstack/chat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/jinja_template.h"

struct ns_chat_template {
    jx_template *t;
};

/* ------------------------------------------------------------- built-ins */

/* Fallback formats. They follow the models' own templates, but never
 * raise: a system message is folded into the first user turn where the
 * format has no system role. */
static const struct {
    const char *name;
    const char *src;
} builtins[] = {
    {"chatml",
     "{%- for message in messages %}"
     "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
     "{%- endfor %}"
     "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"},
    /* meta-llama/Llama-2-7b-chat-hf, without the alternation check */
    {"llama2",
     "{%- if messages[0]['role'] == 'system' %}{%- set loop_messages = messages[1:] %}"
     "{%- set system_message = messages[0]['content'] %}"
     "{%- else %}{%- set loop_messages = messages %}{%- set system_message = false %}{%- endif %}"
     "{%- for message in loop_messages %}"
     "{%- if loop.index0 == 0 and system_message != false %}"
     "{%- set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
     "{%- else %}{%- set content = message['content'] %}{%- endif %}"
     "{%- if message['role'] == 'user' %}{{- bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
     "{%- elif message['role'] == 'assistant' %}{{- ' ' + content.strip() + ' ' + eos_token }}{%- endif %}"
     "{%- endfor %}"},
    /* meta-llama/Meta-Llama-3-8B-Instruct */
    {"llama3",
     "{%- set loop_messages = messages %}{%- for message in loop_messages %}"
     "{%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}"
     "{%- if loop.index0 == 0 %}{%- set content = bos_token + content %}{%- endif %}{{- content }}"
     "{%- endfor %}"
     "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"},
    /* microsoft/Phi-3-mini-4k-instruct */
    {"phi3",
     "{%- for message in messages %}"
     "{%- if message['role'] == 'system' %}{{- '<|system|>\\n' + message['content'] + '<|end|>\\n' }}"
     "{%- elif message['role'] == 'user' %}{{- '<|user|>\\n' + message['content'] + '<|end|>\\n' }}"
     "{%- elif message['role'] == 'assistant' %}{{- '<|assistant|>\\n' + message['content'] + '<|end|>\\n' }}"
     "{%- endif %}{%- endfor %}"
     "{%- if add_generation_prompt %}{{- '<|assistant|>\\n' }}{%- else %}{{- eos_token }}{%- endif %}"},
    /* google/gemma-2-9b-it, with the system message put before the first user turn */
    {"gemma",
     "{{- bos_token }}"
     "{%- if messages[0]['role'] == 'system' %}{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' %}"
     "{%- set loop_messages = messages[1:] %}"
     "{%- else %}{%- set first_user_prefix = '' %}{%- set loop_messages = messages %}{%- endif %}"
     "{%- for message in loop_messages %}"
     "{%- if message['role'] == 'assistant' %}{%- set role = 'model' %}{%- else %}{%- set role = message['role'] %}{%- endif %}"
     "{{- '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else '') + message['content'] | trim + '<end_of_turn>\\n' }}"
     "{%- endfor %}"
     "{%- if add_generation_prompt %}{{- '<start_of_turn>model\\n' }}{%- endif %}"},
    /* mistralai/Mistral-7B-Instruct-v0.1, with the system message put before the first user turn */
    {"mistral",
     "{{- bos_token }}"
     "{%- if messages[0]['role'] == 'system' %}{%- set system_message = messages[0]['content'] %}"
     "{%- set loop_messages = messages[1:] %}{%- else %}{%- set loop_messages = messages %}{%- endif %}"
     "{%- for message in loop_messages %}"
     "{%- if message['role'] == 'user' %}"
     "{%- if loop.first and system_message is defined %}"
     "{{- '[INST] ' + system_message + '\\n\\n' + message['content'] + ' [/INST]' }}"
     "{%- else %}{{- '[INST] ' + message['content'] + ' [/INST]' }}{%- endif %}"
     "{%- elif message['role'] == 'assistant' %}{{- message['content'] + eos_token + ' ' }}{%- endif %}"
     "{%- endfor %}"},
    /* HuggingFaceH4/zephyr-7b-beta */
    {"zephyr",
     "{% for message in messages %}\n"
     "{% if message['role'] == 'user' %}\n{{ '<|user|>\\n' + message['content'] + eos_token }}\n"
     "{% elif message['role'] == 'system' %}\n{{ '<|system|>\\n' + message['content'] + eos_token }}\n"
     "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\\n'  + message['content'] + eos_token }}\n"
     "{% endif %}\n"
     "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n"
     "{% endfor %}"},
};

#define N_BUILTINS (sizeof builtins / sizeof builtins[0])

const char *ns_chat_builtin(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_BUILTINS; i++)
        if (strcmp(builtins[i].name, name) == 0) return builtins[i].src;
    return NULL;
}

static const char *const builtin_names[] = {"chatml", "llama2", "llama3", "phi3", "gemma", "mistral", "zephyr", NULL};
_Static_assert(sizeof builtin_names / sizeof builtin_names[0] == N_BUILTINS + 1, "one name per built-in");

const char *const *ns_chat_builtin_names(void) { return builtin_names; }

const char *ns_chat_guess(const char *src) {
    if (!src) return NULL;
    if (strstr(src, "<|start_header_id|>")) return "llama3";
    if (strstr(src, "<|im_sep|>")) return NULL; /* Phi-4: ChatML-like, but not ChatML */
    if (strstr(src, "<|im_start|>")) return "chatml";
    if (strstr(src, "<start_of_turn>")) return "gemma";
    if (strstr(src, "<<SYS>>")) return "llama2";
    if (strstr(src, "[INST]")) return "mistral";
    if (strstr(src, "<|user|>") && strstr(src, "<|end|>")) return "phi3";
    if (strstr(src, "<|user|>")) return "zephyr";
    return NULL;
}

/* ------------------------------------------------------------- variables */

typedef struct {
    const ns_chat_msg *msgs;
    int n;
    const ns_chat_opts *o;
} chat_vars;

static jv json_value(jx_env *env, const char *text) { return jx_json_parse(env, text, strlen(text)); }

static void setup_vars(jx_env *env, jx_dict *vars, void *ud) {
    const chat_vars *cv = ud;
    const ns_chat_opts *o = cv->o;
    jv messages = jv_list(env, (size_t)cv->n);
    for (int i = 0; i < cv->n; i++) {
        const ns_chat_msg *m = &cv->msgs[i];
        jv d = jv_dict(env, 4);
        jx_dict_sets(env, d.u.d, "role", jv_cstr(env, m->role ? m->role : ""));
        jx_dict_sets(env, d.u.d, "content", m->content ? jv_cstr(env, m->content) : jv_none());
        if (m->name) jx_dict_sets(env, d.u.d, "name", jv_cstr(env, m->name));
        if (m->tool_call_id) jx_dict_sets(env, d.u.d, "tool_call_id", jv_cstr(env, m->tool_call_id));
        if (m->tool_calls_json) jx_dict_sets(env, d.u.d, "tool_calls", json_value(env, m->tool_calls_json));
        jx_list_push(env, messages.u.l, d);
    }
    jx_dict_sets(env, vars, "messages", messages);
    jx_dict_sets(env, vars, "bos_token", jv_cstr(env, o->bos_token ? o->bos_token : ""));
    jx_dict_sets(env, vars, "eos_token", jv_cstr(env, o->eos_token ? o->eos_token : ""));
    jx_dict_sets(env, vars, "add_generation_prompt", jv_bool(o->add_generation_prompt));
    if (o->tools_json) jx_dict_sets(env, vars, "tools", json_value(env, o->tools_json));
    if (o->extra_json) {
        jv extra = json_value(env, o->extra_json);
        for (size_t i = 0; i < extra.u.d->n; i++) jx_dict_set(env, vars, extra.u.d->keys[i], extra.u.d->vals[i]);
    }
}

/* Checks one JSON input before rendering, so its errors name the input. */
static bool check_json(const char *what, const char *text, bool want_object, char *err, size_t errlen) {
    if (!text) return true;
    jx_arena arena;
    jx_arena_init(&arena, 64u << 20);
    jmp_buf jb;
    char jerr[400];
    jx_env env = {.arena = &arena, .jb = &jb, .err = jerr, .errlen = sizeof jerr, .src = text, .srclen = strlen(text)};
    bool ok = true;
    if (setjmp(jb)) {
        if (err && errlen) snprintf(err, errlen, "invalid %s: %s", what, jerr);
        ok = false;
    } else {
        jv v = jx_json_parse(&env, text, strlen(text));
        if (want_object && v.t != JV_DICT) {
            if (err && errlen) snprintf(err, errlen, "invalid %s: expected a JSON object", what);
            ok = false;
        }
    }
    jx_arena_free(&arena);
    return ok;
}

/* ------------------------------------------------------------- API */

ns_chat_template *ns_chat_template_new(const char *template_src, char *err, size_t errlen) {
    if (err && errlen) err[0] = 0;
    if (!template_src) {
        if (err && errlen) snprintf(err, errlen, "no chat template");
        return NULL;
    }
    char jerr[512];
    jx_template *t = jx_template_parse(template_src, strlen(template_src), jerr, sizeof jerr);
    if (!t) {
        if (err && errlen) snprintf(err, errlen, "chat template error at %s", jerr);
        return NULL;
    }
    ns_chat_template *ct = malloc(sizeof *ct);
    if (!ct) {
        jx_template_free(t);
        if (err && errlen) snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ct->t = t;
    return ct;
}

void ns_chat_template_free(ns_chat_template *t) {
    if (!t) return;
    jx_template_free(t->t);
    free(t);
}

char *ns_chat_render(const ns_chat_template *t, const ns_chat_msg *msgs, int n, const ns_chat_opts *opts, char *err,
                     size_t errlen) {
    if (err && errlen) err[0] = 0;
    ns_chat_opts defaults = {0};
    if (!opts) opts = &defaults;
    if (!t || n < 0 || (n > 0 && !msgs)) {
        if (err && errlen) snprintf(err, errlen, "invalid arguments to ns_chat_render");
        return NULL;
    }
    char what[64];
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof what, "tool_calls_json of message %d", i);
        if (!check_json(what, msgs[i].tool_calls_json, false, err, errlen)) return NULL;
    }
    if (!check_json("tools_json", opts->tools_json, false, err, errlen)) return NULL;
    if (!check_json("extra_json", opts->extra_json, true, err, errlen)) return NULL;
    chat_vars cv = {.msgs = msgs, .n = n, .o = opts};
    jx_options jo = {.max_output = opts->max_output, .now = opts->now, .now_fixed = opts->now_fixed};
    char jerr[512];
    char *out = jx_template_render(t->t, &jo, setup_vars, &cv, jerr, sizeof jerr, NULL);
    if (!out && err && errlen) snprintf(err, errlen, "chat template error at %s", jerr);
    return out;
}

char *ns_chat_apply_ex(const char *template_src, const ns_chat_msg *msgs, int n, const ns_chat_opts *opts, char *err,
                       size_t errlen) {
    ns_chat_template *t = ns_chat_template_new(template_src, err, errlen);
    if (!t) return NULL;
    char *out = ns_chat_render(t, msgs, n, opts, err, errlen);
    ns_chat_template_free(t);
    return out;
}

char *ns_chat_apply(const char *template_src, const ns_chat_msg *msgs, int n, const char *bos, const char *eos,
                    bool add_generation_prompt, char *err, size_t errlen) {
    ns_chat_opts o = {.bos_token = bos, .eos_token = eos, .add_generation_prompt = add_generation_prompt};
    return ns_chat_apply_ex(template_src, msgs, n, &o, err, errlen);
}
