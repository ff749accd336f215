/* The Go text/template subset for Modelfile templates: real templates from
 * Ollama's library (llama2, llama3, llama3.1 with tools, qwen2/chatml,
 * phi3, mistral) rendered to the prompts Ollama produces for them, the
 * language features one by one, and the errors and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/gotmpl.h"

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static void expect_render(const char *tmpl, const ns_chat_msg *msgs, int n, const char *tools, const char *want) {
    char err[512] = "";
    char *got = ns_gotmpl_render(tmpl, NULL, msgs, n, tools, err, sizeof err);
    if (!got) fprintf(stderr, "render failed: %s\n", err);
    assert_non_null(got);
    if (strcmp(got, want) != 0) fprintf(stderr, "want: [%s]\ngot:  [%s]\n", want, got);
    assert_string_equal(got, want);
    free(got);
}

static void expect_json(const char *tmpl, const char *data, const char *want) {
    char err[512] = "";
    char *got = ns_gotmpl_render_json(tmpl, data, err, sizeof err);
    if (!got) fprintf(stderr, "render of [%s] failed: %s\n", tmpl, err);
    assert_non_null(got);
    if (strcmp(got, want) != 0) fprintf(stderr, "template: [%s]\nwant: [%s]\ngot:  [%s]\n", tmpl, want, got);
    assert_string_equal(got, want);
    free(got);
}

static void expect_error(const char *tmpl, const char *data, const char *want_substr) {
    char err[512] = "";
    char *got = ns_gotmpl_render_json(tmpl, data, err, sizeof err);
    if (got) fprintf(stderr, "template [%s] rendered [%s], expected an error\n", tmpl, got);
    assert_null(got);
    if (!strstr(err, want_substr)) fprintf(stderr, "error [%s] lacks [%s]\n", err, want_substr);
    assert_non_null(strstr(err, want_substr));
    assert_non_null(strstr(err, "template error at line "));
}

/* ---- Ollama library templates ---- */

static const char llama2_tmpl[] = "[INST] <<SYS>>{{ .System }}<</SYS>>\n\n{{ .Prompt }} [/INST]\n";

static void test_llama2_legacy(void **state) {
    (void)state;
    ns_chat_msg one[] = {{.role = "system", .content = "Be brief."}, {.role = "user", .content = "Hi"}};
    expect_render(llama2_tmpl, one, N(one), NULL, "[INST] <<SYS>>Be brief.<</SYS>>\n\nHi [/INST]\n");
    /* a legacy template runs once per exchange */
    ns_chat_msg turns[] = {{.role = "user", .content = "A"}, {.role = "assistant", .content = "B"},
                           {.role = "user", .content = "C"}};
    expect_render(llama2_tmpl, turns, N(turns), NULL,
                  "[INST] <<SYS>><</SYS>>\n\nA [/INST]\n[INST] <<SYS>><</SYS>>\n\nC [/INST]\n");
}

static const char llama3_tmpl[] =
    "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
    "{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}<|eot_id|>{{ end }}"
    "<|start_header_id|>assistant<|end_header_id|>\n\n{{ .Response }}<|eot_id|>";

static void test_llama3_legacy_cut_after_response(void **state) {
    (void)state;
    ns_chat_msg one[] = {{.role = "system", .content = "S"}, {.role = "user", .content = "Hi"}};
    expect_render(llama3_tmpl, one, N(one), NULL,
                  "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    ns_chat_msg turns[] = {{.role = "user", .content = "A"}, {.role = "assistant", .content = "B"},
                           {.role = "user", .content = "C"}};
    expect_render(llama3_tmpl, turns, N(turns), NULL,
                  "<|start_header_id|>user<|end_header_id|>\n\nA<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\nB<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nC<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* the system text given apart from the messages */
    char err[256];
    ns_chat_msg u[] = {{.role = "user", .content = "Hi"}};
    char *got = ns_gotmpl_render(llama3_tmpl, "Sys", u, 1, NULL, err, sizeof err);
    assert_non_null(got);
    assert_string_equal(got, "<|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|>"
                             "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                             "<|start_header_id|>assistant<|end_header_id|>\n\n");
    free(got);
}

static const char llama31_tmpl[] =
    "{{- if or .System .Tools }}<|start_header_id|>system<|end_header_id|>\n"
    "{{- if .System }}\n\n{{ .System }}\n{{- end }}\n"
    "{{- if .Tools }}\n\nCutting Knowledge Date: December 2023\n\n"
    "When you receive a tool call response, use the output to format an answer to the orginal user question.\n\n"
    "You are a helpful assistant with tool calling capabilities.\n{{- end }}<|eot_id|>\n"
    "{{- end }}\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
    "{{- if eq .Role \"user\" }}<|start_header_id|>user<|end_header_id|>\n"
    "{{- if and $.Tools $last }}\n\n"
    "Given the following functions, please respond with a JSON for a function call with its proper arguments that "
    "best answers the given prompt.\n\n"
    "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its value}. Do "
    "not use variables.\n\n"
    "{{ range $.Tools }}\n{{- . }}\n{{ end }}\nQuestion: {{ .Content }}<|eot_id|>\n"
    "{{- else }}\n\n{{ .Content }}<|eot_id|>\n"
    "{{- end }}{{ if $last }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}\n"
    "{{- else if eq .Role \"assistant\" }}<|start_header_id|>assistant<|end_header_id|>\n"
    "{{- if .ToolCalls }}\n"
    "{{ range .ToolCalls }}\n{\"name\": \"{{ .Function.Name }}\", \"parameters\": {{ .Function.Arguments }}}{{ end "
    "}}\n"
    "{{- else }}\n\n{{ .Content }}\n{{- end }}{{ if not $last }}<|eot_id|>{{ end }}\n"
    "{{- else if eq .Role \"tool\" }}<|start_header_id|>ipython<|end_header_id|>\n\n"
    "{{ .Content }}<|eot_id|>{{ if $last }}<|start_header_id|>assistant<|end_header_id|>\n\n{{ end }}\n"
    "{{- end }}\n"
    "{{- end }}";

static void test_llama31_messages(void **state) {
    (void)state;
    ns_chat_msg m[] = {{.role = "system", .content = "S"}, {.role = "user", .content = "Hi"}};
    expect_render(llama31_tmpl, m, N(m), NULL,
                  "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static void test_llama31_tools(void **state) {
    (void)state;
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather "
                        "now\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
                        "\"required\":[\"city\"]}}}]";
    ns_chat_msg m[] = {
        {.role = "user", .content = "Weather in Paris?"},
        {.role = "assistant",
         .content = "",
         .tool_calls_json = "[{\"function\":{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Paris\"}}}]"},
        {.role = "tool", .content = "22C"},
    };
    expect_render(llama31_tmpl, m, N(m), tools,
                  "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
                  "When you receive a tool call response, use the output to format an answer to the orginal user "
                  "question.\n\nYou are a helpful assistant with tool calling capabilities.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n"
                  "{\"name\": \"get_weather\", \"parameters\": {\"city\":\"Paris\"}}<|eot_id|>"
                  "<|start_header_id|>ipython<|end_header_id|>\n\n22C<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
    /* the tools listed in the last user turn, printed as JSON */
    ns_chat_msg q[] = {{.role = "user", .content = "Q"}};
    expect_render(llama31_tmpl, q, N(q), tools,
                  "<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n\n"
                  "When you receive a tool call response, use the output to format an answer to the orginal user "
                  "question.\n\nYou are a helpful assistant with tool calling capabilities.<|eot_id|>"
                  "<|start_header_id|>user<|end_header_id|>\n\n"
                  "Given the following functions, please respond with a JSON for a function call with its proper "
                  "arguments that best answers the given prompt.\n\n"
                  "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and "
                  "its value}. Do not use variables.\n\n"
                  "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather now\","
                  "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
                  "\"required\":[\"city\"]}}}\n\nQuestion: Q<|eot_id|>"
                  "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static const char qwen2_tmpl[] =
    "{{- if .Messages }}\n"
    "{{- if or .System .Tools }}<|im_start|>system\n"
    "{{- if .System }}\n{{ .System }}\n{{- end }}\n"
    "{{- if .Tools }}\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    "{{- range .Tools }}\n{\"type\": \"function\", \"function\": {{ .Function }}}\n{{- end }}\n</tools>\n\n"
    "For each function call, return a json object with function name and arguments within <tool_call></tool_call> "
    "XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call>\n"
    "{{- end }}<|im_end|>\n{{ end }}\n"
    "{{- range $i, $_ := .Messages }}\n"
    "{{- $last := eq (len (slice $.Messages $i)) 1 -}}\n"
    "{{- if eq .Role \"user\" }}<|im_start|>user\n{{ .Content }}<|im_end|>\n"
    "{{ else if eq .Role \"assistant\" }}<|im_start|>assistant\n"
    "{{ if .Content }}{{ .Content }}\n"
    "{{- else if .ToolCalls }}<tool_call>\n"
    "{{ range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ .Function.Arguments }}}\n"
    "{{ end }}</tool_call>\n"
    "{{- end }}{{ if not $last }}<|im_end|>\n{{ end }}\n"
    "{{- else if eq .Role \"tool\" }}<|im_start|>user\n<tool_response>\n{{ .Content }}\n</tool_response><|im_end|>\n"
    "{{ end }}\n"
    "{{- if and (ne .Role \"assistant\") $last }}<|im_start|>assistant\n{{ end }}\n"
    "{{- end }}\n"
    "{{- else }}\n"
    "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
    "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}<|im_start|>assistant\n"
    "{{ end }}{{ .Response }}{{ if .Response }}<|im_end|>{{ end }}";

static void test_qwen2_chatml(void **state) {
    (void)state;
    ns_chat_msg m[] = {{.role = "system", .content = "You are helpful."}, {.role = "user", .content = "Hello"}};
    expect_render(qwen2_tmpl, m, N(m), NULL,
                  "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
                  "<|im_start|>assistant\n");
    ns_chat_msg t[] = {{.role = "user", .content = "A"}, {.role = "assistant", .content = "B"},
                       {.role = "user", .content = "C"}};
    expect_render(qwen2_tmpl, t, N(t), NULL,
                  "<|im_start|>user\nA<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n<|im_start|>user\nC<|im_end|>\n"
                  "<|im_start|>assistant\n");
    /* two user messages in a row are merged, as Ollama does */
    ns_chat_msg d[] = {{.role = "user", .content = "one"}, {.role = "user", .content = "two"}};
    expect_render(qwen2_tmpl, d, N(d), NULL, "<|im_start|>user\none\n\ntwo<|im_end|>\n<|im_start|>assistant\n");
    /* tools: .Function prints as JSON */
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]";
    ns_chat_msg u[] = {{.role = "user", .content = "x"}};
    expect_render(qwen2_tmpl, u, N(u), tools,
                  "<|im_start|>system\n\n# Tools\n\nYou may call one or more functions to assist with the user "
                  "query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
                  "{\"type\": \"function\", \"function\": {\"name\":\"f\",\"parameters\":{}}}\n</tools>\n\n"
                  "For each function call, return a json object with function name and arguments within "
                  "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
                  "<args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
}

static void test_phi3(void **state) {
    (void)state;
    const char *legacy = "{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}{{ if .Prompt }}<|user|>\n"
                         "{{ .Prompt }}<|end|>\n{{ end }}<|assistant|>\n{{ .Response }}<|end|>\n";
    ns_chat_msg m[] = {{.role = "system", .content = "S"}, {.role = "user", .content = "Hi"}};
    expect_render(legacy, m, N(m), NULL, "<|system|>\nS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n");
    const char *msgs = "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}<|assistant|>\n";
    expect_render(msgs, m, N(m), NULL, "<|system|>\nS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n");
}

static const char mistral_tmpl[] =
    "{{- if .Messages }}\n"
    "{{- range $index, $_ := .Messages }}\n"
    "{{- if eq .Role \"user\" }}\n"
    "{{- if and (eq (len (slice $.Messages $index)) 1) $.Tools }}[AVAILABLE_TOOLS] {{ $.Tools }}[/AVAILABLE_TOOLS]\n"
    "{{- end }}[INST] {{ if and $.System (eq (len (slice $.Messages $index)) 1) }}{{ $.System }}\n\n"
    "{{ end }}{{ .Content }}[/INST]\n"
    "{{- else if eq .Role \"assistant\" }}\n"
    "{{- if .Content }}{{ .Content }}\n"
    "{{- else if .ToolCalls }}[TOOL_CALLS] [\n"
    "{{- range .ToolCalls }}{\"name\": \"{{ .Function.Name }}\", \"arguments\": {{ .Function.Arguments }}}\n"
    "{{- end }}]\n"
    "{{- end }}</s>\n"
    "{{- else if eq .Role \"tool\" }}[TOOL_RESULTS] {\"content\": {{ .Content }}} [/TOOL_RESULTS]\n"
    "{{- end }}\n"
    "{{- end }}\n"
    "{{- else }}[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}[/INST]\n"
    "{{- end }}{{ .Response }}\n"
    "{{- if .Response }}</s>\n"
    "{{- end }}";

static void test_mistral(void **state) {
    (void)state;
    ns_chat_msg m[] = {{.role = "system", .content = "S"},
                       {.role = "user", .content = "A"},
                       {.role = "assistant", .content = "B"},
                       {.role = "user", .content = "C"}};
    expect_render(mistral_tmpl, m, N(m), NULL, "[INST] A[/INST]B</s>[INST] S\n\nC[/INST]");
    const char *tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]";
    ns_chat_msg u[] = {{.role = "user", .content = "x"}};
    expect_render(mistral_tmpl, u, N(u), tools,
                  "[AVAILABLE_TOOLS] [{\"type\":\"function\",\"function\":{\"name\":\"f\"}}][/AVAILABLE_TOOLS]"
                  "[INST] x[/INST]");
}

/* ---- the language ---- */

static void test_text_and_trim(void **state) {
    (void)state;
    expect_json("plain text", NULL, "plain text");
    expect_json("", NULL, "");
    expect_json("a  {{- \"b\" -}}  \n c", NULL, "abc");
    expect_json("a {{ \"b\" }} c", NULL, "a b c");
    expect_json("x {{/* a comment */}} y", NULL, "x  y");
    expect_json("x {{- /* a comment */ -}} y", NULL, "xy");
    expect_json("{{ -3 }} {{ 1.5 }} {{ 0x10 }} {{ 'a' }} {{ 1e3 }} {{ 1e6 }} {{ 0.0001 }}", NULL,
                "-3 1.5 16 97 1000 1e+06 0.0001");
    expect_json("{{ `raw \\n` }}|{{ \"esc\\t\\u00e9\" }}", NULL, "raw \\n|esc\t\xc3\xa9");
    expect_json("{{ true }} {{ false }} {{ nil }}.", NULL, "true false .");
}

static void test_fields_and_vars(void **state) {
    (void)state;
    const char *d = "{\"A\":{\"B\":\"deep\"},\"L\":[1,2,3],\"S\":\"str\",\"n\":2.5,\"tool_calls\":[7]}";
    expect_json("{{ .A.B }} {{ .S }} {{ .n }} {{ .Missing }}|", d, "deep str 2.5 |");
    expect_json("{{ .ToolCalls }}", d, "[7]");
    expect_json("{{ $x := .S }}{{ $x }}{{ $x = \"new\" }}{{ $x }}", d, "strnew");
    expect_json("{{ with .A }}{{ .B }}{{ $.S }}{{ end }}", d, "deepstr");
    expect_json("{{ with .Missing }}yes{{ else }}no{{ end }}", d, "no");
    expect_json("{{ (index .L 1) }} {{ (.A).B }}", d, "2 deep");
    expect_json("{{ .L }} {{ .A }}", d, "[1,2,3] {\"B\":\"deep\"}");
    expect_json("{{ .S | printf \"%s!\" }}", d, "str!");
    expect_json("{{ .S | len | printf \"%d\" }}", d, "3");
}

static void test_conditionals(void **state) {
    (void)state;
    const char *d = "{\"T\":true,\"F\":false,\"Z\":0,\"E\":\"\",\"L\":[],\"M\":{},\"S\":\"x\"}";
    expect_json("{{ if .T }}a{{ end }}{{ if .F }}b{{ end }}{{ if .Z }}c{{ end }}{{ if .E }}d{{ end }}"
                "{{ if .L }}e{{ end }}{{ if .M }}f{{ end }}{{ if .S }}g{{ end }}{{ if .Nope }}h{{ end }}",
                d, "ag");
    expect_json("{{ if .F }}1{{ else if .Z }}2{{ else if .S }}3{{ else }}4{{ end }}", d, "3");
    expect_json("{{ if .F }}1{{ else if .Z }}2{{ else }}4{{ end }}", d, "4");
    expect_json("{{ if and .T .S }}y{{ end }}{{ if and .T .F }}n{{ end }}{{ or .E .S }}{{ or .E .Z }}", d, "yx0");
    expect_json("{{ not .T }} {{ not .E }}", d, "false true");
    /* and/or stop early: the index below would fail */
    expect_json("{{ if and .F (index .L 5) }}x{{ else }}ok{{ end }}", d, "ok");
    expect_json("{{ if or .T (index .L 5) }}ok{{ end }}", d, "ok");
}

static void test_comparisons(void **state) {
    (void)state;
    const char *d = "{\"R\":\"user\",\"N\":3}";
    expect_json("{{ eq .R \"user\" }} {{ eq .R \"a\" \"b\" \"user\" }} {{ ne .R \"user\" }}", d, "true true false");
    expect_json("{{ lt .N 4 }} {{ le .N 3 }} {{ gt .N 3 }} {{ ge .N 3.0 }} {{ lt \"a\" \"b\" }}", d,
                "true true false true true");
    expect_json("{{ eq .Missing nil }} {{ eq .N 3 }}", d, "true true");
    expect_error("{{ eq .R 1 }}", d, "incompatible types");
    expect_error("{{ lt .R 1 }}", d, "incompatible types");
}

static void test_range(void **state) {
    (void)state;
    const char *d = "{\"L\":[\"a\",\"b\",\"c\"],\"M\":{\"z\":1,\"a\":2},\"E\":[]}";
    expect_json("{{ range .L }}<{{ . }}>{{ end }}", d, "<a><b><c>");
    expect_json("{{ range $i, $v := .L }}{{ $i }}={{ $v }};{{ end }}", d, "0=a;1=b;2=c;");
    expect_json("{{ range $k, $v := .M }}{{ $k }}={{ $v }};{{ end }}", d, "a=2;z=1;");
    expect_json("{{ range .E }}x{{ else }}empty{{ end }}", d, "empty");
    expect_json("{{ range .Nope }}x{{ end }}.", d, ".");
    expect_json("{{ range 3 }}{{ . }}{{ end }}", d, "012");
    expect_json("{{ range .L }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ . }}{{ end }}", d, "ac");
    expect_json("{{ range .L }}{{ if eq . \"b\" }}{{ break }}{{ end }}{{ . }}{{ end }}", d, "a");
    /* a variable declared in the body is per iteration; one outside can be assigned */
    expect_json("{{ $n := 0 }}{{ range $i, $_ := .L }}{{ $n = $i }}{{ $t := . }}{{ $t }}{{ end }}{{ $n }}", d,
                "abc2");
    expect_json("{{ range $i, $_ := .L }}{{ $last := eq (len (slice $.L $i)) 1 }}{{ if $last }}last={{ . }}{{ end "
                "}}{{ end }}",
                d, "last=c");
}

static void test_functions(void **state) {
    (void)state;
    const char *d = "{\"L\":[1,2,3,4],\"S\":\"hello\",\"M\":{\"k\":\"v\"},\"J\":{\"a\":\"<b>\"}}";
    expect_json("{{ len .L }} {{ len .S }} {{ len .M }} {{ len .Nope }}", d, "4 5 1 0");
    expect_json("{{ index .L 0 }} {{ index .M \"k\" }} {{ index .M \"x\" }}.", d, "1 v .");
    expect_json("{{ slice .L 1 3 }} {{ slice .L 2 }} {{ slice .S 1 3 }}", d, "[2,3] [3,4] el");
    expect_json("{{ print 1 2 \"a\" \"b\" 3 }}|{{ println \"x\" 1 }}|", d, "1 2ab3|x 1\n|");
    expect_json("{{ printf \"%d-%s-%q-%v-%5.2f-%x-%t-%%\" 42 \"s\" \"q\" .L 3.14159 255 true }}", d,
                "42-s-\"q\"-[1,2,3,4]- 3.14-ff-true-%");
    expect_json("{{ json .J }} {{ json .S }}", d, "{\"a\":\"\\u003cb\\u003e\"} \"hello\"");
    expect_json("{{ html \"<a&b>\" }} {{ urlquery \"a b/c\" }}", d, "&lt;a&amp;b&gt; a+b%2Fc");
    char err[128];
    char *date = ns_gotmpl_render_json("{{ currentDate }}", NULL, err, sizeof err);
    assert_non_null(date);
    assert_int_equal(strlen(date), 10);
    free(date);
    expect_error("{{ index .L 9 }}", d, "index out of range");
    expect_error("{{ slice .L 3 1 }}", d, "index out of range");
    expect_error("{{ not }}", d, "wrong number of args");
}

static void test_errors(void **state) {
    (void)state;
    expect_error("line1\n{{ nosuchfunc 1 }}", NULL, "at line 2: function \"nosuchfunc\" not defined");
    expect_error("a\nb\n{{ .X ", NULL, "line 3: unclosed action");
    expect_error("{{ if .X }}never closed", NULL, "missing {{ end }}");
    expect_error("{{ end }}", NULL, "unexpected {{ end }}");
    expect_error("{{ else }}", NULL, "unexpected {{ else }}");
    expect_error("{{ \"unterminated }}", NULL, "unterminated quoted string");
    expect_error("{{ $y }}", NULL, "undefined variable: $y");
    expect_error("{{ $y = 1 }}", NULL, "undefined variable: $y");
    expect_error("{{ break }}", NULL, "outside {{ range }}");
    expect_error("{{ define \"x\" }}{{ end }}", NULL, "not supported");
    expect_error("{{ .S.Field }}", "{\"S\":\"x\"}", "can't evaluate field Field in type string");
    expect_error("{{ .S 1 }}", "{\"S\":\"x\"}", "can't give argument to non-function");
    expect_error("{{ }}", NULL, "missing value");
    expect_error("{{ range \"abc\" }}{{ end }}", NULL, "range can't iterate over string");
    expect_error("{{ /* unclosed }}", NULL, "unexpected");
    expect_error("{{/* unclosed }}", NULL, "unclosed comment");
    expect_error("{{ ( }}", NULL, "unexpected");
    /* the request's template errors reach ns_gotmpl_render too */
    char err[256] = "";
    ns_chat_msg m[] = {{.role = "user", .content = "x"}};
    assert_null(ns_gotmpl_render("{{ if }}", NULL, m, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "template error at line 1"));
}

static void test_limits(void **state) {
    (void)state;
    /* 8 bytes a time, a million times: stops at the output limit */
    expect_error("{{ range 1000 }}{{ range 1000 }}12345678{{ end }}{{ end }}", NULL, "output is larger than");
    expect_error("{{ range 2000 }}{{ range 1000 }}{{ end }}{{ end }}", NULL, "loop iterations");
    /* deep nesting is refused, not a stack overflow */
    char deep[4096] = "";
    for (int i = 0; i < 200; i++) strcat(deep, "{{ if true }}");
    expect_error(deep, NULL, "nesting deeper than");
    char parens[2048] = "{{ ";
    for (int i = 0; i < 200; i++) strcat(parens, "(");
    strcat(parens, "1");
    for (int i = 0; i < 200; i++) strcat(parens, ")");
    strcat(parens, " }}");
    expect_error(parens, NULL, "nesting deeper than");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_llama2_legacy),
        cmocka_unit_test(test_llama3_legacy_cut_after_response),
        cmocka_unit_test(test_llama31_messages),
        cmocka_unit_test(test_llama31_tools),
        cmocka_unit_test(test_qwen2_chatml),
        cmocka_unit_test(test_phi3),
        cmocka_unit_test(test_mistral),
        cmocka_unit_test(test_text_and_trim),
        cmocka_unit_test(test_fields_and_vars),
        cmocka_unit_test(test_conditionals),
        cmocka_unit_test(test_comparisons),
        cmocka_unit_test(test_range),
        cmocka_unit_test(test_functions),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
