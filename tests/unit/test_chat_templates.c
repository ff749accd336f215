/* Real chat templates on real conversations.
 *
 * tests/data/templates/ holds the templates that models ship
 * (<model>.jinja, copied from their tokenizer_config.json or GGUF) and, in
 * <model>.cases, conversations with the exact prompt text each must give.
 * Every case says where its expected text comes from: the models'
 * documentation (llama.com prompt-format pages, model cards, Hugging Face
 * blog and course pages), the expected outputs of llama.cpp's and
 * huggingface.js's template tests (produced by transformers), or, for tool
 * calling where no document shows a full prompt, the reference renderer
 * (Python jinja2 set up as transformers' apply_chat_template).
 *
 * Case file format (README.md in that folder):
 *   === name            a case, up to "=== end"
 *   template: file      header lines: template, bos, eos, generation (yes/no),
 *   ...                 extra / tools (JSON), now (Unix time for strftime_now)
 *   --- role [null]     a message; "@ key: value" lines (tool_calls JSON, name,
 *   content lines       tool_call_id), then its content lines
 *   +++ expect          the exact text (lines joined with \n), or
 *   +++ error           a piece of the expected error message
 * Also: the Phi-3 template read from ../shared/models/tiny-phi3-q4_0.gguf,
 * the built-in formats, guessing a built-in, and the API's error paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstack/chat.h"
#include "nstack/gguf.h"
#include "testutil.h"

#define MAX_MSGS 32

typedef struct {
    char *role, *content, *tool_calls, *name, *tool_call_id;
    bool null_content;
} tmsg;

typedef struct {
    char name[160];
    char tmpl[160];
    char *bos, *eos, *extra, *tools;
    bool gen, has_now;
    long long now;
    tmsg msgs[MAX_MSGS];
    int nmsgs;
    char *expect, *error;
    int line;
} tcase;

static const char *data_dir(void) {
    static char dir[4096];
    const char *src = getenv("NSTACK_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/tests/data/templates", src && *src ? src : ".");
    return dir;
}

static char *read_data(const char *name) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", data_dir(), name);
    char *s = ns_test_read_file(path, NULL);
    if (!s) fail_msg("cannot read %s", path);
    return s;
}

/* Lines [from, to) joined with \n, malloc'd. */
static char *join_lines(char **lines, int from, int to) {
    size_t n = 1;
    for (int i = from; i < to; i++) n += strlen(lines[i]) + 1;
    char *s = malloc(n), *p = s;
    assert_non_null(s);
    for (int i = from; i < to; i++) {
        size_t k = strlen(lines[i]);
        memcpy(p, lines[i], k);
        p += k;
        if (i + 1 < to) *p++ = '\n';
    }
    *p = 0;
    return s;
}

static char *dupstr(const char *s) {
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    assert_non_null(d);
    memcpy(d, s, n + 1);
    return d;
}

static void free_case(tcase *c) {
    free(c->bos);
    free(c->eos);
    free(c->extra);
    free(c->tools);
    free(c->expect);
    free(c->error);
    for (int i = 0; i < c->nmsgs; i++) {
        free(c->msgs[i].role);
        free(c->msgs[i].content);
        free(c->msgs[i].tool_calls);
        free(c->msgs[i].name);
        free(c->msgs[i].tool_call_id);
    }
    memset(c, 0, sizeof *c);
}

static bool starts(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Value of a "key: value" (or "key:") line when it has that key. */
static const char *header_value(const char *line, const char *key) {
    size_t k = strlen(key);
    if (strncmp(line, key, k) != 0 || line[k] != ':') return NULL;
    return line[k + 1] == ' ' ? line + k + 2 : line + k + 1;
}

/* Parses the case starting at lines[*i] ("=== name"); advances past "=== end". */
static void parse_case(const char *file, char **lines, int nlines, int *i, tcase *c) {
    memset(c, 0, sizeof *c);
    c->line = *i + 1;
    snprintf(c->name, sizeof c->name, "%s:%s", file, lines[*i] + 4);
    int k = *i + 1;
    for (; k < nlines && !starts(lines[k], "--- ") && !starts(lines[k], "+++ "); k++) {
        const char *v, *l = lines[k];
        if ((v = header_value(l, "template"))) snprintf(c->tmpl, sizeof c->tmpl, "%s", v);
        else if ((v = header_value(l, "bos"))) c->bos = dupstr(v);
        else if ((v = header_value(l, "eos"))) c->eos = dupstr(v);
        else if ((v = header_value(l, "generation"))) c->gen = strcmp(v, "yes") == 0;
        else if ((v = header_value(l, "extra"))) c->extra = dupstr(v);
        else if ((v = header_value(l, "tools"))) c->tools = dupstr(v);
        else if ((v = header_value(l, "now"))) c->has_now = true, c->now = atoll(v);
        else if (l[0]) fail_msg("%s line %d: bad header line '%s'", file, k + 1, l);
    }
    while (k < nlines && starts(lines[k], "--- ")) {
        if (c->nmsgs == MAX_MSGS) fail_msg("%s: too many messages", c->name);
        tmsg *m = &c->msgs[c->nmsgs++];
        char *hdr = lines[k] + 4, *sp = strchr(hdr, ' ');
        if (sp) {
            *sp = 0;
            m->null_content = strcmp(sp + 1, "null") == 0;
        }
        m->role = dupstr(hdr);
        k++;
        for (; k < nlines && starts(lines[k], "@ "); k++) {
            const char *v, *l = lines[k] + 2;
            if ((v = header_value(l, "tool_calls"))) m->tool_calls = dupstr(v);
            else if ((v = header_value(l, "name"))) m->name = dupstr(v);
            else if ((v = header_value(l, "tool_call_id"))) m->tool_call_id = dupstr(v);
            else fail_msg("%s line %d: bad message attribute '%s'", file, k + 1, lines[k]);
        }
        int from = k;
        while (k < nlines && !starts(lines[k], "--- ") && !starts(lines[k], "+++ ")) k++;
        m->content = m->null_content ? NULL : join_lines(lines, from, k);
    }
    if (k >= nlines) fail_msg("%s: missing '+++ expect' or '+++ error'", c->name);
    bool is_error = strcmp(lines[k], "+++ error") == 0;
    if (!is_error && strcmp(lines[k], "+++ expect") != 0) fail_msg("%s: bad line '%s'", c->name, lines[k]);
    int from = ++k;
    while (k < nlines && strcmp(lines[k], "=== end") != 0) k++;
    if (k >= nlines) fail_msg("%s: missing '=== end'", c->name);
    if (is_error)
        c->error = join_lines(lines, from, k);
    else
        c->expect = join_lines(lines, from, k);
    *i = k + 1;
}

static void print_escaped(const char *label, const char *s) {
    fprintf(stderr, "%s: \"", label);
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", stderr);
        else
            fputc(*s, stderr);
    }
    fputs("\"\n", stderr);
}

static char *render_case(const tcase *c, char *err, size_t errlen) {
    char *src = read_data(c->tmpl);
    ns_chat_msg msgs[MAX_MSGS];
    for (int i = 0; i < c->nmsgs; i++) {
        msgs[i] = (ns_chat_msg){.role = c->msgs[i].role,
                                .content = c->msgs[i].content,
                                .name = c->msgs[i].name,
                                .tool_call_id = c->msgs[i].tool_call_id,
                                .tool_calls_json = c->msgs[i].tool_calls};
    }
    ns_chat_opts o = {.bos_token = c->bos,
                      .eos_token = c->eos,
                      .add_generation_prompt = c->gen,
                      .tools_json = c->tools,
                      .extra_json = c->extra,
                      .now = c->has_now ? c->now : 1721952000, /* 2024-07-26 */
                      .now_fixed = true};
    char *out = ns_chat_apply_ex(src, msgs, c->nmsgs, &o, err, errlen);
    free(src);
    return out;
}

/* Runs every case of one .cases file; returns how many ran. */
static int run_cases_file(const char *file) {
    char *text = read_data(file);
    int cap = 64, nlines = 0;
    char **lines = malloc((size_t)cap * sizeof *lines);
    assert_non_null(lines);
    for (char *p = text;;) {
        if (nlines == cap) {
            cap *= 2;
            lines = realloc(lines, (size_t)cap * sizeof *lines);
            assert_non_null(lines);
        }
        lines[nlines++] = p;
        char *nl = strchr(p, '\n');
        if (!nl) break;
        *nl = 0;
        p = nl + 1;
    }
    int ran = 0, failed = 0;
    for (int i = 0; i < nlines;) {
        if (!starts(lines[i], "=== ") || strcmp(lines[i], "=== end") == 0) {
            i++;
            continue;
        }
        tcase c;
        parse_case(file, lines, nlines, &i, &c);
        char err[1024] = "";
        char *out = render_case(&c, err, sizeof err);
        ran++;
        if (c.expect) {
            if (!out) {
                fprintf(stderr, "FAIL %s (line %d): %s\n", c.name, c.line, err);
                failed++;
            } else if (strcmp(out, c.expect) != 0) {
                size_t d = 0;
                while (out[d] && out[d] == c.expect[d]) d++;
                fprintf(stderr, "FAIL %s (line %d): differs at byte %zu\n", c.name, c.line, d);
                print_escaped("  expected", c.expect);
                print_escaped("  got     ", out);
                failed++;
            }
        } else {
            if (out) {
                fprintf(stderr, "FAIL %s (line %d): rendered, expected an error with '%s'\n", c.name, c.line, c.error);
                failed++;
            } else if (!strstr(err, c.error) || !strstr(err, "chat template error at line ")) {
                fprintf(stderr, "FAIL %s (line %d): error '%s' lacks '%s'\n", c.name, c.line, err, c.error);
                failed++;
            }
        }
        free(out);
        free_case(&c);
    }
    free(lines);
    free(text);
    if (failed) fail_msg("%d of %d cases of %s failed", failed, ran, file);
    return ran;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static void test_real_templates(void **state) {
    (void)state;
    DIR *d = opendir(data_dir());
    if (!d) fail_msg("cannot open %s", data_dir());
    char *names[128];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 128) {
        size_t k = strlen(e->d_name);
        if (k > 6 && strcmp(e->d_name + k - 6, ".cases") == 0) names[n++] = dupstr(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_names);
    int total = 0;
    for (int i = 0; i < n; i++) {
        int ran = run_cases_file(names[i]);
        printf("  %-28s %d cases\n", names[i], ran);
        total += ran;
        free(names[i]);
    }
    /* one file per model: Llama 2, 3, 3.1, 3.2, Mistral v0.1 and v0.3, Qwen 2.5,
     * Phi-3, Gemma 2, DeepSeek LLM and V3, SmolLM2, Zephyr, ChatML */
    assert_true(n >= 14);
    assert_true(total >= 40);
}

/* The Phi-3 template as the GGUF carries it, and as the fixture copies it. */
static void test_phi3_gguf_template(void **state) {
    (void)state;
    const char *path = ns_test_shared_path("models/tiny-phi3-q4_0.gguf");
    if (!path) {
        skip();
        return;
    }
    char err[512];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (!g) fail_msg("%s", err);
    char *tmpl = ns_gguf_get_str(g, "tokenizer.chat_template");
    assert_non_null(tmpl);
    char *fixture = read_data("phi3-mini-gguf.jinja");
    assert_string_equal(tmpl, fixture);
    ns_chat_msg msgs[] = {{.role = "system", .content = "You are a helpful assistant."},
                          {.role = "user", .content = "How to explain Internet for a medieval knight?"}};
    char *out = ns_chat_apply(tmpl, msgs, 2, "<s>", "<|endoftext|>", true, err, sizeof err);
    if (!out) fail_msg("%s", err);
    assert_string_equal(out, "<s><|user|>\nHow to explain Internet for a medieval knight?<|end|>\n<|assistant|>\n");
    free(out);
    free(fixture);
    free(tmpl);
    ns_gguf_close(g);
}

/* The built-in formats on system + user + assistant + user. */
static void test_builtins(void **state) {
    (void)state;
    ns_chat_msg msgs[] = {{.role = "system", .content = "You are a helpful assistant."},
                          {.role = "user", .content = "Hello"},
                          {.role = "assistant", .content = "Hi there"},
                          {.role = "user", .content = "Who are you?"}};
    static const struct {
        const char *name, *bos, *eos, *expect;
    } want[] = {
        {"chatml", "", "<|im_end|>",
         "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
         "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\n"},
        {"llama2", "<s>", "</s>",
         "<s>[INST] <<SYS>>\nYou are a helpful assistant.\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] Who are you? [/INST]"},
        {"llama3", "<|begin_of_text|>", "<|eot_id|>",
         "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|>"
         "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
         "Hi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you?<|eot_id|>"
         "<|start_header_id|>assistant<|end_header_id|>\n\n"},
        {"phi3", "<s>", "<|endoftext|>",
         "<|system|>\nYou are a helpful assistant.<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there<|end|>\n"
         "<|user|>\nWho are you?<|end|>\n<|assistant|>\n"},
        {"gemma", "<bos>", "<eos>",
         "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello<end_of_turn>\n<start_of_turn>model\nHi there<end_of_turn>\n"
         "<start_of_turn>user\nWho are you?<end_of_turn>\n<start_of_turn>model\n"},
        {"mistral", "<s>", "</s>", "<s>[INST] You are a helpful assistant.\n\nHello [/INST]Hi there</s> [INST] Who are you? [/INST]"},
        {"zephyr", "<s>", "</s>",
         "<|system|>\nYou are a helpful assistant.</s>\n<|user|>\nHello</s>\n<|assistant|>\nHi there</s>\n<|user|>\nWho are you?</s>\n"
         "<|assistant|>\n"},
    };
    const char *const *names = ns_chat_builtin_names();
    int count = 0;
    while (names[count]) count++;
    assert_int_equal(count, (int)(sizeof want / sizeof want[0]));
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *src = ns_chat_builtin(want[i].name);
        assert_non_null(src);
        char err[512];
        char *out = ns_chat_apply(src, msgs, 4, want[i].bos, want[i].eos, true, err, sizeof err);
        if (!out) fail_msg("%s: %s", want[i].name, err);
        if (strcmp(out, want[i].expect) != 0) {
            print_escaped("expected", want[i].expect);
            print_escaped("got     ", out);
            fail_msg("built-in %s", want[i].name);
        }
        free(out);
        /* a built-in is its own best guess */
        assert_string_equal(ns_chat_guess(src), want[i].name);
    }
    assert_null(ns_chat_builtin("nonexistent"));
    assert_null(ns_chat_builtin(NULL));
}

/* Each real template is recognized as the built-in of its family. */
static void test_guess(void **state) {
    (void)state;
    static const struct {
        const char *file, *guess;
    } want[] = {
        {"llama2-chat.jinja", "llama2"},         {"llama3-instruct.jinja", "llama3"},
        {"llama3.1-instruct.jinja", "llama3"},   {"llama3.2-instruct.jinja", "llama3"},
        {"mistral-v0.1-instruct.jinja", "mistral"}, {"mistral-v0.3-instruct.jinja", "mistral"},
        {"qwen2.5-instruct.jinja", "chatml"},    {"smollm2-instruct.jinja", "chatml"},
        {"chatml-openhermes.jinja", "chatml"},   {"phi3-mini-gguf.jinja", "phi3"},
        {"gemma2-it.jinja", "gemma"},            {"zephyr-7b-beta.jinja", "zephyr"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char *src = read_data(want[i].file);
        const char *g = ns_chat_guess(src);
        if (!g || strcmp(g, want[i].guess) != 0) fail_msg("%s: guessed %s, want %s", want[i].file, g ? g : "nothing", want[i].guess);
        free(src);
    }
    assert_null(ns_chat_guess("{{ messages }}"));
    assert_null(ns_chat_guess("{{ '<|im_start|>user<|im_sep|>' }}")); /* Phi-4 is not ChatML */
    assert_null(ns_chat_guess(NULL));
}

/* Parse once, render many times; errors of the API itself. */
static void test_api(void **state) {
    (void)state;
    char err[512];
    char *src = read_data("llama3-instruct.jinja");
    ns_chat_template *t = ns_chat_template_new(src, err, sizeof err);
    assert_non_null(t);
    ns_chat_msg m[] = {{.role = "user", .content = "Hi"}};
    ns_chat_opts o = {.bos_token = "<|begin_of_text|>", .add_generation_prompt = false};
    for (int i = 0; i < 3; i++) {
        char *out = ns_chat_render(t, m, 1, &o, err, sizeof err);
        assert_non_null(out);
        assert_string_equal(out, "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
        free(out);
    }
    /* no messages at all: the template decides (this one renders nothing) */
    char *out = ns_chat_render(t, NULL, 0, &o, err, sizeof err);
    assert_non_null(out);
    assert_string_equal(out, "");
    free(out);
    /* bad JSON inputs name the input and the place */
    o.tools_json = "[{\"a\": }]";
    assert_null(ns_chat_render(t, m, 1, &o, err, sizeof err));
    assert_non_null(strstr(err, "invalid tools_json"));
    assert_non_null(strstr(err, "column 8"));
    o.tools_json = NULL;
    o.extra_json = "[1]";
    assert_null(ns_chat_render(t, m, 1, &o, err, sizeof err));
    assert_non_null(strstr(err, "invalid extra_json: expected a JSON object"));
    o.extra_json = NULL;
    ns_chat_msg bad[] = {{.role = "assistant", .content = NULL, .tool_calls_json = "[1, 2"}};
    assert_null(ns_chat_render(t, bad, 1, &o, err, sizeof err));
    assert_non_null(strstr(err, "tool_calls_json of message 0"));
    assert_null(ns_chat_render(t, NULL, 2, &o, err, sizeof err));
    ns_chat_template_free(t);
    ns_chat_template_free(NULL);
    free(src);

    /* a template with a syntax error: one message with its line and column */
    assert_null(ns_chat_template_new("{% for m in messages %}\n{{ m.content }\n{% endfor %}", err, sizeof err));
    assert_string_equal(err, "chat template error at line 2, column 14: unexpected '}', expected '}}'");
    assert_null(ns_chat_apply("{% if messages %}x", m, 1, "", "", true, err, sizeof err));
    assert_string_equal(err, "chat template error at line 1, column 19: unexpected end of template: missing {% endif %} "
                             "for the {% if %} at line 1");
    assert_null(ns_chat_template_new(NULL, err, sizeof err));
    /* a template that fails while rendering */
    assert_null(ns_chat_apply("{{ messages[0].content.upper() + 1 }}", m, 1, "", "", true, err, sizeof err));
    assert_non_null(strstr(err, "chat template error at line 1, column "));
    assert_non_null(strstr(err, "can only concatenate str (not \"int\") to str"));
    /* small error buffers are fine */
    char tiny[8];
    assert_null(ns_chat_apply("{% endfor %}", m, 1, "", "", true, tiny, sizeof tiny));
    assert_int_equal(strlen(tiny), 7);
    assert_null(ns_chat_apply("{% endfor %}", m, 1, "", "", true, NULL, 0));
    /* message fields are absent unless given, content may be none */
    ns_chat_msg full[] = {{.role = "tool", .content = NULL, .name = "calc", .tool_call_id = "abc"}};
    out = ns_chat_apply("{% for m in messages %}{{ m.content is none }} {{ m.name }} {{ m.tool_call_id }} "
                        "{{ 'tool_calls' in m }} {{ m|length }}{% endfor %}",
                        full, 1, NULL, NULL, false, err, sizeof err);
    assert_non_null(out);
    assert_string_equal(out, "True calc abc False 4");
    free(out);
    /* the output size limit */
    ns_chat_opts lim = {.max_output = 100};
    assert_null(ns_chat_apply_ex("{% for i in range(1000) %}xxxxxxxxxx{% endfor %}", m, 1, &lim, err, sizeof err));
    assert_non_null(strstr(err, "output size limit"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_templates), cmocka_unit_test(test_phi3_gguf_template), cmocka_unit_test(test_builtins),
        cmocka_unit_test(test_guess),          cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
