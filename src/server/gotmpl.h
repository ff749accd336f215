/* The Go text/template subset Ollama Modelfile templates use:
 * {{ .System }}, {{ .Prompt }}, {{ .Response }}, {{ .Messages }} with
 * {{ range .Messages }}{{ .Role }}{{ .Content }}{{ end }},
 * {{ if ... }}{{ else if ... }}{{ else }}{{ end }}, {{ eq .Role "user" }},
 * {{ and }}/{{ or }}/{{ not }}, {{ $x := ... }}, {{ $.System }},
 * {{ len }}, {{ slice }}, {{ index }}, trim markers {{- -}}, comments. */
#ifndef NS_SERVER_GOTMPL_H
#define NS_SERVER_GOTMPL_H

#include <stddef.h>

#include "nstack/chat.h"

/* Renders tmpl with .System (system: NULL when none), .Prompt (the last user
 * message), .Response (""), .Messages (the conversation) and
 * .Tools (tools_json, may be NULL). Returns malloc'd text, or NULL with
 * "template error at line L: reason" in err.
 * As in Ollama, .Messages holds msgs as given (system messages included,
 * consecutive messages of one role merged) and .System, when system is
 * NULL, is their system messages joined; a template that never mentions
 * .Messages runs once per exchange, the last cut after its .Response. */
char *ns_gotmpl_render(const char *tmpl, const char *system, const ns_chat_msg *msgs, int n, const char *tools_json,
                       char *err, size_t errlen);

/* Renders tmpl with dot = the JSON value data_json (NULL: nil), e.g.
 * {"Prompt": "...", "Suffix": "..."} for fill-in-the-middle. */
char *ns_gotmpl_render_json(const char *tmpl, const char *data_json, char *err, size_t errlen);

#endif
