/* From a request to prompt tokens, shared by the Ollama and OpenAI routes.
 *
 * Templates, in order of preference: a Go template given in the request
 * (Ollama's `template` field), the Modelfile template layer of a store
 * model (also a Go template), the GGUF file's Jinja `tokenizer.chat_template`,
 * and, for a file with none, plain text (messages joined, see prompt.c).
 * Go templates are run by gotmpl.h, which covers what Modelfiles use. */
#ifndef NS_SERVER_PROMPT_H
#define NS_SERVER_PROMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "nstack/chat.h"
#include "runtime/runtime.h"

/* Renders a conversation for the model (add_generation_prompt true).
 * go_template: the request's template or NULL. tools_json: JSON array or
 * NULL. Returns malloc'd text, or NULL with *status (400 for a template
 * error the request caused, 500 otherwise) and err. */
char *ns_prompt_render(const ns_loaded *lm, const ns_chat_msg *msgs, int n, const char *go_template,
                       const char *tools_json, int *status, char *err, size_t errlen);

/* Tokenizes prompt text with special tokens parsed; BOS is added when the
 * file asks for it and the text does not already start with the BOS text.
 * *out malloc'd. Returns the count (>= 1; an empty prompt becomes BOS alone,
 * or is refused 400 for a vocabulary without BOS), or -1 with err. */
int ns_prompt_tokenize(const ns_loaded *lm, const char *text, int32_t **out, char *err, size_t errlen);

#endif
