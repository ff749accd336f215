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
 * message), .Response (""), .Messages (the non-system messages) and
 * .Tools (tools_json, may be NULL). Returns malloc'd text, or NULL with
 * "template error at line L: reason" in err. */
char *ns_gotmpl_render(const char *tmpl, const char *system, const ns_chat_msg *msgs, int n, const char *tools_json,
                       char *err, size_t errlen);

#endif
