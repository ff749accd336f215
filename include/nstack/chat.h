/* Chat templates: turning a conversation into the prompt text a model was
 * trained on.
 *
 * Models carry their format as a Jinja2 template in the GGUF key
 * `tokenizer.chat_template` (read it with ns_gguf_get_str). neurostack
 * runs it with its own interpreter, rendering exactly as Hugging Face
 * transformers' apply_chat_template does (trim_blocks, lstrip_blocks,
 * `raise_exception`, `strftime_now`, `tojson` without HTML escaping), with
 * the variables `messages`, `bos_token`, `eos_token`,
 * `add_generation_prompt` and, when given, `tools` and extra variables.
 *
 * A template that cannot be parsed or that fails while rendering (for
 * example one that raises because the roles do not alternate) gives NULL
 * and one message: "chat template error at line L, column C: reason".
 * Named built-in formats can be used instead when the user allows it.
 *
 * The rendered text may start with the BOS token text when the template
 * writes it ({{ bos_token }}): tokenize it with special tokens parsed and
 * do not add a second BOS. */
#ifndef NSTACK_CHAT_H
#define NSTACK_CHAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One message. Fields other than role and content are optional (NULL:
 * absent from the message, so `'tool_calls' in message` is false). */
typedef struct {
    const char *role;            /* "system", "user", "assistant", "tool", ... */
    const char *content;         /* NULL: content is none */
    const char *name;            /* optional */
    const char *tool_call_id;    /* optional (tool results) */
    const char *tool_calls_json; /* optional JSON array, becomes message.tool_calls */
} ns_chat_msg;

typedef struct {
    const char *bos_token; /* NULL: "" */
    const char *eos_token; /* NULL: "" */
    bool add_generation_prompt;
    const char *tools_json; /* JSON array for `tools`; NULL: tools undefined */
    const char *extra_json; /* JSON object of more variables, e.g. {"date_string": "26 Jul 2024"} */
    int64_t now;            /* strftime_now() uses this Unix time (UTC) when now_fixed, */
    bool now_fixed;         /* else the current local time */
    size_t max_output;      /* bytes of prompt text (0: 4 MiB) */
} ns_chat_opts;

typedef struct ns_chat_template ns_chat_template;

/* Parses a template once (NULL and a message in err on a syntax error).
 * Parsing costs up to about a millisecond for large templates, rendering a
 * parsed one tens of microseconds: keep the parsed template per model. A
 * parsed template may be rendered from several threads at once. */
ns_chat_template *ns_chat_template_new(const char *template_src, char *err, size_t errlen);
void ns_chat_template_free(ns_chat_template *t);

/* Renders a conversation (n messages) with a parsed template; malloc'd text or NULL. */
char *ns_chat_render(const ns_chat_template *t, const ns_chat_msg *msgs, int n, const ns_chat_opts *opts, char *err,
                     size_t errlen);

/* Parses and renders in one call. */
char *ns_chat_apply(const char *template_src, const ns_chat_msg *msgs, int n, const char *bos, const char *eos,
                    bool add_generation_prompt, char *err, size_t errlen);
char *ns_chat_apply_ex(const char *template_src, const ns_chat_msg *msgs, int n, const ns_chat_opts *opts, char *err,
                       size_t errlen);

/* Built-in formats, usable as a fallback by name: "chatml", "llama2",
 * "llama3", "phi3", "gemma", "mistral", "zephyr". The template source, or
 * NULL for an unknown name. */
const char *ns_chat_builtin(const char *name);
/* The built-in names, NULL-terminated. */
const char *const *ns_chat_builtin_names(void);
/* The built-in a template most resembles (by its markers), or NULL. */
const char *ns_chat_guess(const char *template_src);

#ifdef __cplusplus
}
#endif

#endif
