/* The router's API translation (router/translate.h): the prompt text the
 * policy reads and the force tag's removal, Ollama requests as OpenAI ones,
 * OpenAI answers as Ollama ones, and OpenAI's SSE streams turned into
 * Ollama's NDJSON lines whatever the split of the bytes. Outputs are
 * compared as exact strings: field order is part of what clients see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/translate.h"

#define NOW 1717500000123456789LL
#define TS "2024-06-04T11:20:00.123456789Z"

static int setup(void **state) {
    (void)state;
    /* created_at is local time: UTC makes it one fixed string */
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

static cJSON *parse(const char *s) {
    cJSON *j = cJSON_Parse(s);
    assert_non_null(j);
    return j;
}

static void assert_json(cJSON *j, const char *want) {
    assert_non_null(j);
    char *got = cJSON_PrintUnformatted(j);
    assert_string_equal(got, want);
    free(got);
}

/* ---- prompt text and the force tag ---- */

static void test_prompt_text(void **state) {
    (void)state;
    cJSON *b = parse("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"look\"},"
                     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}},{\"type\":\"text\",\"text\":\"here\"}]},"
                     "{\"role\":\"assistant\",\"content\":null}]}");
    char *t = ns_tr_prompt_text(b, NS_FRONT_OPENAI_CHAT);
    assert_string_equal(t, "be brief\nlook\nhere");
    free(t);
    cJSON_Delete(b);

    b = parse("{\"system\":\"sys\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\",\"images\":[\"AAAA\"]}]}");
    t = ns_tr_prompt_text(b, NS_FRONT_OLLAMA_CHAT);
    assert_string_equal(t, "sys\nhi");
    free(t);
    cJSON_Delete(b);

    b = parse("{\"prompt\":[\"one\",\"two\"]}");
    t = ns_tr_prompt_text(b, NS_FRONT_OPENAI_COMPLETIONS);
    assert_string_equal(t, "one\ntwo");
    free(t);
    cJSON_Delete(b);

    b = parse("{\"prompt\":\"tell me\",\"system\":\"you are\"}");
    t = ns_tr_prompt_text(b, NS_FRONT_OLLAMA_GENERATE);
    assert_string_equal(t, "you are\ntell me");
    free(t);
    /* the same body read as OpenAI's: no system field there */
    t = ns_tr_prompt_text(b, NS_FRONT_OPENAI_COMPLETIONS);
    assert_string_equal(t, "tell me");
    free(t);
    cJSON_Delete(b);

    b = parse("{\"messages\":[]}");
    t = ns_tr_prompt_text(b, NS_FRONT_OPENAI_CHAT);
    assert_string_equal(t, "");
    free(t);
    cJSON_Delete(b);

    b = parse("{\"model\":\"m\"}");
    assert_null(ns_tr_prompt_text(b, NS_FRONT_OPENAI_CHAT));
    assert_null(ns_tr_prompt_text(b, NS_FRONT_OLLAMA_GENERATE));
    cJSON_Delete(b);
    b = parse("[1]");
    assert_null(ns_tr_prompt_text(b, NS_FRONT_OPENAI_COMPLETIONS));
    cJSON_Delete(b);
}

static void test_strip_tag(void **state) {
    (void)state;
    cJSON *b = parse("{\"messages\":[{\"role\":\"user\",\"content\":\"#big prove #big it\"},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a#bigb\"},"
                     "{\"type\":\"other\",\"text\":\"#big\"}]}]}");
    assert_int_equal(ns_tr_strip_tag(b, NS_FRONT_OPENAI_CHAT, "#big"), 3);
    /* only text parts are prompt text: the "other" part is left alone */
    assert_json(b, "{\"messages\":[{\"role\":\"user\",\"content\":\" prove  it\"},"
                   "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"ab\"},"
                   "{\"type\":\"other\",\"text\":\"#big\"}]}]}");
    assert_int_equal(ns_tr_strip_tag(b, NS_FRONT_OPENAI_CHAT, "#big"), 0);
    cJSON_Delete(b);

    /* removing one must not leave a new one */
    b = parse("{\"prompt\":[\"x#b#bigig\",\"#big\"],\"system\":\"#big\"}");
    assert_int_equal(ns_tr_strip_tag(b, NS_FRONT_OPENAI_COMPLETIONS, "#big"), 3);
    assert_json(b, "{\"prompt\":[\"x\",\"\"],\"system\":\"#big\"}");
    cJSON_Delete(b);

    b = parse("{\"prompt\":\"go #big\",\"system\":\"#big sys\"}");
    assert_int_equal(ns_tr_strip_tag(b, NS_FRONT_OLLAMA_GENERATE, "#big"), 2);
    assert_json(b, "{\"prompt\":\"go \",\"system\":\" sys\"}");
    assert_int_equal(ns_tr_strip_tag(b, NS_FRONT_OLLAMA_GENERATE, ""), 0);
    cJSON_Delete(b);

    /* a string cJSON does not own is replaced, not written to */
    static const char ref_text[] = "keep #big out";
    b = cJSON_CreateObject();
    cJSON_AddItemToObject(b, "prompt", cJSON_CreateStringReference(ref_text));
    assert_int_equal(ns_tr_strip_tag(b, NS_FRONT_OLLAMA_GENERATE, "#big"), 1);
    assert_json(b, "{\"prompt\":\"keep  out\"}");
    assert_string_equal(ref_text, "keep #big out");
    cJSON_Delete(b);
}

/* ---- Ollama request -> OpenAI request ---- */

static void test_ollama_chat_to_openai(void **state) {
    (void)state;
    cJSON *req =
        parse("{\"model\":\"small\",\"system\":\"be kind\",\"messages\":["
              "{\"role\":\"user\",\"content\":\"look\",\"images\":[\"AAAA\"]},"
              "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]},"
              "{\"role\":\"user\",\"content\":\"again\"}],"
              "\"options\":{\"top_k\":40,\"temperature\":0.5,\"num_predict\":128,\"stop\":[\"\\n\\n\",\"END\"],"
              "\"seed\":7,\"top_p\":0.9,\"presence_penalty\":0.25,\"frequency_penalty\":0.5,\"num_ctx\":4096},"
              "\"format\":\"json\",\"keep_alive\":\"5m\",\"tools\":[]}");
    char *dropped = NULL;
    char err[256] = "";
    cJSON *o = ns_tr_ollama_to_openai(req, NS_FRONT_OLLAMA_CHAT, "qwen-7b", &dropped, err, sizeof err);
    assert_non_null(o);
    assert_json(o, "{\"model\":\"qwen-7b\",\"messages\":[{\"role\":\"system\",\"content\":\"be kind\"},"
                   "{\"role\":\"user\",\"content\":\"look\"},{\"role\":\"assistant\",\"content\":\"\"},"
                   "{\"role\":\"user\",\"content\":\"again\"}],"
                   "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
                   "\"temperature\":0.5,\"top_p\":0.9,\"seed\":7,\"stop\":[\"\\n\\n\",\"END\"],\"max_tokens\":128,"
                   "\"presence_penalty\":0.25,\"frequency_penalty\":0.5,"
                   "\"response_format\":{\"type\":\"json_object\"}}");
    assert_string_equal(dropped, "images, tool_calls, top_k, num_ctx, keep_alive, tools");
    free(dropped);
    cJSON_Delete(o);
    cJSON_Delete(req);

    /* stream false, nothing dropped, a string stop, unlimited num_predict */
    req = parse("{\"model\":\"m\",\"stream\":false,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                "\"options\":{\"num_predict\":-1,\"stop\":\"x\"}}");
    o = ns_tr_ollama_to_openai(req, NS_FRONT_OLLAMA_CHAT, "up", &dropped, err, sizeof err);
    assert_json(o, "{\"model\":\"up\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"stream\":false,"
                   "\"stop\":\"x\"}");
    assert_string_equal(dropped, "");
    free(dropped);
    cJSON_Delete(o);
    /* dropped may be NULL */
    o = ns_tr_ollama_to_openai(req, NS_FRONT_OLLAMA_CHAT, "up", NULL, err, sizeof err);
    assert_non_null(o);
    cJSON_Delete(o);
    cJSON_Delete(req);
}

static void test_ollama_generate_to_openai(void **state) {
    (void)state;
    cJSON *req = parse("{\"model\":\"m\",\"prompt\":\"Why?\",\"system\":\"Answer briefly.\",\"raw\":true,"
                       "\"context\":[1,2],\"stream\":true,\"options\":{\"temperature\":0,\"mirostat\":1},"
                       "\"format\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}");
    char *dropped = NULL;
    char err[256] = "";
    cJSON *o = ns_tr_ollama_to_openai(req, NS_FRONT_OLLAMA_GENERATE, "up", &dropped, err, sizeof err);
    assert_json(o, "{\"model\":\"up\",\"prompt\":\"Answer briefly.\\n\\nWhy?\",\"stream\":true,"
                   "\"stream_options\":{\"include_usage\":true},\"temperature\":0,"
                   "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"schema\","
                   "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}}");
    assert_string_equal(dropped, "mirostat, raw, context");
    free(dropped);
    cJSON_Delete(o);
    cJSON_Delete(req);

    /* an unknown format string and a wrongly typed option are dropped, not guessed */
    req = parse("{\"prompt\":\"p\",\"stream\":false,\"format\":\"yaml\",\"options\":{\"temperature\":\"hot\"}}");
    o = ns_tr_ollama_to_openai(req, NS_FRONT_OLLAMA_GENERATE, "up", &dropped, err, sizeof err);
    assert_json(o, "{\"model\":\"up\",\"prompt\":\"p\",\"stream\":false}");
    assert_string_equal(dropped, "temperature, format");
    free(dropped);
    cJSON_Delete(o);
    cJSON_Delete(req);
}

static void test_ollama_to_openai_errors(void **state) {
    (void)state;
    static const struct {
        const char *body;
        ns_front_api api;
        const char *err;
    } cases[] = {
        {"[]", NS_FRONT_OLLAMA_CHAT, "the request must be a JSON object"},
        {"{\"model\":\"m\"}", NS_FRONT_OLLAMA_CHAT, "the request has no messages"},
        {"{\"messages\":[]}", NS_FRONT_OLLAMA_CHAT, "the request has no messages"},
        {"{\"messages\":{}}", NS_FRONT_OLLAMA_CHAT, "messages must be an array"},
        {"{\"messages\":[{\"content\":\"x\"}]}", NS_FRONT_OLLAMA_CHAT,
         "messages[0] must be an object with a string role"},
        {"{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":[1]}]}",
         NS_FRONT_OLLAMA_CHAT, "messages[1].content must be a string"},
        {"{\"model\":\"m\"}", NS_FRONT_OLLAMA_GENERATE, "the request has no prompt"},
        {"{\"prompt\":\"\"}", NS_FRONT_OLLAMA_GENERATE, "the request has no prompt"},
        {"{\"prompt\":[\"a\"]}", NS_FRONT_OLLAMA_GENERATE, "prompt must be a string"},
        {"{\"prompt\":\"a\"}", NS_FRONT_OPENAI_COMPLETIONS,
         "only Ollama requests (/api/chat, /api/generate) are translated"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *req = parse(cases[i].body);
        char *dropped = (char *)"untouched";
        char err[256] = "";
        assert_null(ns_tr_ollama_to_openai(req, cases[i].api, "up", &dropped, err, sizeof err));
        assert_null(dropped);
        assert_string_equal(err, cases[i].err);
        cJSON_Delete(req);
    }
    /* a system alone is a prompt */
    cJSON *req = parse("{\"prompt\":\"\",\"system\":\"s\",\"stream\":false}");
    char err[256] = "";
    cJSON *o = ns_tr_ollama_to_openai(req, NS_FRONT_OLLAMA_GENERATE, "up", NULL, err, sizeof err);
    assert_json(o, "{\"model\":\"up\",\"prompt\":\"s\",\"stream\":false}");
    cJSON_Delete(o);
    cJSON_Delete(req);
}

/* ---- OpenAI answer -> Ollama answer ---- */

static void test_openai_to_ollama(void **state) {
    (void)state;
    char err[256] = "";
    cJSON *r = parse("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"qwen\","
                     "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\"},"
                     "\"finish_reason\":\"stop\"}],"
                     "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":3,\"total_tokens\":15}}");
    cJSON *o = ns_tr_openai_to_ollama(r, NS_FRONT_OLLAMA_CHAT, "small", NOW, 2500000000LL, err, sizeof err);
    assert_json(o, "{\"model\":\"small\",\"created_at\":\"" TS "\",\"message\":{\"role\":\"assistant\","
                   "\"content\":\"Hi there\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":2500000000,"
                   "\"prompt_eval_count\":12,\"eval_count\":3}");
    cJSON_Delete(o);
    cJSON_Delete(r);

    /* generate; length; no usage: the counts are left out as Ollama does */
    r = parse("{\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"once upon\","
              "\"finish_reason\":\"length\"}]}");
    o = ns_tr_openai_to_ollama(r, NS_FRONT_OLLAMA_GENERATE, "small", NOW, 98765432101234LL, err, sizeof err);
    assert_json(o, "{\"model\":\"small\",\"created_at\":\"" TS "\",\"response\":\"once upon\",\"done\":true,"
                   "\"done_reason\":\"length\",\"total_duration\":98765432101234}");
    cJSON_Delete(o);
    cJSON_Delete(r);

    /* other finish reasons, and a null content (tool calls only) */
    r = parse("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null},"
              "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":0}}");
    o = ns_tr_openai_to_ollama(r, NS_FRONT_OLLAMA_CHAT, "small", NOW, 1, err, sizeof err);
    assert_json(o, "{\"model\":\"small\",\"created_at\":\"" TS "\",\"message\":{\"role\":\"assistant\","
                   "\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":1,"
                   "\"prompt_eval_count\":5,\"eval_count\":0}");
    cJSON_Delete(o);
    cJSON_Delete(r);
}

static void test_openai_to_ollama_errors(void **state) {
    (void)state;
    static const struct {
        const char *body;
        ns_front_api api;
        const char *err;
    } cases[] = {
        {"{\"error\":{\"message\":\"The model `x` does not exist.\",\"type\":\"invalid_request_error\"}}",
         NS_FRONT_OLLAMA_CHAT, "The model `x` does not exist."},
        {"{\"object\":\"error\",\"message\":\"context too long\",\"code\":400}", NS_FRONT_OLLAMA_GENERATE,
         "context too long"},
        {"{\"error\":\"plain\"}", NS_FRONT_OLLAMA_CHAT, "plain"},
        {"{\"error\":{\"code\":500}}", NS_FRONT_OLLAMA_CHAT, "the upstream returned an error: {\"code\":500}"},
        {"\"text\"", NS_FRONT_OLLAMA_CHAT, "the upstream's answer is not a JSON object"},
        {"{\"choices\":[]}", NS_FRONT_OLLAMA_CHAT, "the upstream's answer is not an OpenAI completion (no choices)"},
        {"{\"choices\":[{\"text\":\"a\"}]}", NS_FRONT_OLLAMA_CHAT,
         "the upstream's answer is not a chat completion (choices[0] has no message)"},
        {"{\"choices\":[{\"message\":{\"content\":\"a\"}}]}", NS_FRONT_OLLAMA_GENERATE,
         "the upstream's answer is not a text completion (choices[0] has no text)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *r = parse(cases[i].body);
        char err[256] = "";
        assert_null(ns_tr_openai_to_ollama(r, cases[i].api, "m", NOW, 0, err, sizeof err));
        assert_string_equal(err, cases[i].err);
        cJSON_Delete(r);
    }
}

/* ---- streams ---- */

/* Feeds t cut at the given offsets (ascending), then finishes; returns
 * everything written, and the return codes ORed into *rc. */
static char *run_stream(ns_front_api api, const char *t, size_t n, const size_t *cuts, size_t n_cuts, int *rc,
                        char *err, size_t errlen) {
    ns_tr_stream *s = ns_tr_stream_new(api, "small");
    assert_non_null(s);
    ns_tr_stream_set_start(s, NOW - 2500000000LL);
    char *out = NULL;
    size_t len = 0, cap = 0;
    size_t at = 0;
    *rc = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        *rc |= ns_tr_stream_feed(s, t + at, end - at, NOW, &out, &len, &cap, err, errlen);
        at = end;
    }
    *rc |= ns_tr_stream_finish(s, NOW, 7000000000LL, &out, &len, &cap);
    assert_true(ns_tr_stream_done(s) || *rc < 0);
    ns_tr_stream_free(s);
    if (!out) out = calloc(1, 1);
    assert_int_equal(strlen(out), len);
    return out;
}

/* Every 2-way split and the byte-by-byte feed give exactly want. */
static void check_all_splits(ns_front_api api, const char *t, const char *want) {
    size_t n = strlen(t);
    char err[256];
    int rc;
    for (size_t cut = 0; cut <= n; cut++) {
        char *got = run_stream(api, t, n, &cut, 1, &rc, err, sizeof err);
        if (strcmp(got, want) != 0) fail_msg("split at %zu of %zu:\n%s\nwanted:\n%s", cut, n, got, want);
        assert_int_equal(rc, 0);
        free(got);
    }
    size_t *cuts = malloc(n * sizeof *cuts);
    assert_non_null(cuts);
    for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
    char *got = run_stream(api, t, n, cuts, n, &rc, err, sizeof err);
    assert_int_equal(rc, 0);
    assert_string_equal(got, want);
    free(got);
    free(cuts);
}

#define CHUNK_HEAD                                                                                                     \
    "{\"id\":\"chatcmpl-9\",\"object\":\"chat.completion.chunk\",\"created\":1717500000,\"model\":\"qwen\","
/* the UTF-8 text: é (2 bytes), 世界 (3 each), 🌍 (4) */
#define UNICODE_TEXT "h\xc3\xa9llo \xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x8c\x8d"

/* A chat stream as OpenAI sends it with include_usage: a role-only chunk,
 * text, an empty finish chunk, then the usage chunk, then [DONE]. */
static const char chat_sse[] =
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" UNICODE_TEXT "\"},"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\n\\\"quoted\\\"\"},"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}],\"usage\":null}\n\n"
    "data: " CHUNK_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":4,"
    "\"total_tokens\":25}}\n\n"
    "data: [DONE]\n\n";

#define LINE_HEAD "{\"model\":\"small\",\"created_at\":\"" TS "\","
static const char chat_ndjson[] =
    LINE_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"" UNICODE_TEXT "\"},\"done\":false}\n" LINE_HEAD
              "\"message\":{\"role\":\"assistant\",\"content\":\"\\n\\\"quoted\\\"\"},\"done\":false}\n" LINE_HEAD
              "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"length\","
              "\"total_duration\":2500000000,\"prompt_eval_count\":21,\"eval_count\":4}\n";

static void test_stream_chat_splits(void **state) {
    (void)state;
    check_all_splits(NS_FRONT_OLLAMA_CHAT, chat_sse, chat_ndjson);
}

/* The same stream with \r\n line ends, comments, event and id fields, a
 * data field without the space, and a retry: the same lines come out. */
static const char chat_sse_crlf[] =
    ": keep-alive\r\n\r\n"
    "event: message\r\nid: 1\r\n"
    "data:" CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "retry: 100\r\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" UNICODE_TEXT "\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    ":\r\n"
    "id: 2\r\ndata: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\\n\\\"quoted\\\"\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "data: " CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}\r\n\r\n"
    "data: " CHUNK_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":4}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

static void test_stream_crlf_comments(void **state) {
    (void)state;
    check_all_splits(NS_FRONT_OLLAMA_CHAT, chat_sse_crlf, chat_ndjson);
    /* lone \r line ends are SSE too */
    char *cr = strdup(chat_sse_crlf);
    size_t w = 0;
    for (size_t i = 0; cr[i]; i++)
        if (!(cr[i] == '\n' && i && cr[i - 1] == '\r')) cr[w++] = cr[i];
    cr[w] = 0;
    check_all_splits(NS_FRONT_OLLAMA_CHAT, cr, chat_ndjson);
    free(cr);
}

/* A data field split over two data lines is one event, joined by \n. */
static void test_stream_multiline_data(void **state) {
    (void)state;
    static const char t[] = "data: {\"choices\":[{\"index\":0,\n"
                            "data: \"delta\":{\"content\":\"x\"}}]}\n\n"
                            "data: [DONE]\n\n";
    check_all_splits(NS_FRONT_OLLAMA_CHAT, t,
                     LINE_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"done\":false}\n" LINE_HEAD
                               "\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,"
                               "\"done_reason\":\"stop\",\"total_duration\":2500000000}\n");
}

/* A completions stream (/api/generate) that ends without [DONE], the last
 * line without its end: finish writes the done line with its total_ns. */
static void test_stream_generate_no_done(void **state) {
    (void)state;
    static const char t[] =
        "data: "
        "{\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Once\",\"finish_reason\":null}]}\n\n"
        "data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\" "
        "upon\",\"finish_reason\":null}]}\n\n"
        "data: {\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"\",\"finish_reason\":\"stop\"}]}";
    check_all_splits(NS_FRONT_OLLAMA_GENERATE, t,
                     LINE_HEAD
                     "\"response\":\"Once\",\"done\":false}\n" LINE_HEAD
                     "\"response\":\" upon\",\"done\":false}\n" LINE_HEAD
                     "\"response\":\"\",\"done\":true,\"done_reason\":\"stop\",\"total_duration\":7000000000}\n");
}

/* Without set_start the [DONE] line has no total_duration; bytes after
 * [DONE] are ignored; the output buffer is reused across feeds. */
static void test_stream_no_start(void **state) {
    (void)state;
    ns_tr_stream *s = ns_tr_stream_new(NS_FRONT_OLLAMA_GENERATE, "g");
    char *out = NULL;
    size_t len = 0, cap = 0;
    char err[128];
    static const char t[] =
        "data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DONE]\n\ndata: {\"choices\":[{\"text\":\"b\"}]}\n\n";
    assert_int_equal(ns_tr_stream_feed(s, t, strlen(t), NOW, &out, &len, &cap, err, sizeof err), 0);
    assert_true(ns_tr_stream_done(s));
    assert_int_equal(ns_tr_stream_feed(s, "data: x\n\n", 9, NOW, &out, &len, &cap, err, sizeof err), 0);
    assert_int_equal(ns_tr_stream_finish(s, NOW, 5, &out, &len, &cap), 0);
    assert_string_equal(out, "{\"model\":\"g\",\"created_at\":\"" TS "\",\"response\":\"a\",\"done\":false}\n"
                             "{\"model\":\"g\",\"created_at\":\"" TS "\",\"response\":\"\",\"done\":true,"
                             "\"done_reason\":\"stop\"}\n");
    free(out);
    ns_tr_stream_free(s);
    ns_tr_stream_free(NULL);
}

/* An upstream that answers a stream request with a JSON error body. */
static void test_stream_error_object(void **state) {
    (void)state;
    static const char t[] = "  \n{\"error\":{\"message\":\"model \\\"x\\\" not found\",\"type\":\"NotFoundError\","
                            "\"code\":404}}\n";
    check_all_splits(NS_FRONT_OLLAMA_CHAT, t, "{\"error\":\"model \\\"x\\\" not found\"}\n");
    /* the line comes as soon as the object is complete, before finish */
    ns_tr_stream *s = ns_tr_stream_new(NS_FRONT_OLLAMA_CHAT, "small");
    char *out = NULL;
    size_t len = 0, cap = 0;
    char err[128];
    assert_int_equal(ns_tr_stream_feed(s, t, strlen(t) - 2, NOW, &out, &len, &cap, err, sizeof err), 0);
    assert_int_equal(len, 0);
    assert_false(ns_tr_stream_done(s));
    assert_int_equal(ns_tr_stream_feed(s, t + strlen(t) - 2, 2, NOW, &out, &len, &cap, err, sizeof err), 0);
    assert_true(ns_tr_stream_done(s));
    assert_string_equal(out, "{\"error\":\"model \\\"x\\\" not found\"}\n");
    free(out);
    ns_tr_stream_free(s);

    /* an error inside the SSE stream ends it the same way */
    static const char mid[] = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                              "data: {\"object\":\"error\",\"message\":\"engine died\",\"code\":500}\n\n"
                              "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
    check_all_splits(NS_FRONT_OLLAMA_CHAT, mid,
                     LINE_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n"
                               "{\"error\":\"engine died\"}\n");

    /* a body cut short */
    static const char cut[] = "{\"error\":{\"message\":\"trunc";
    check_all_splits(NS_FRONT_OLLAMA_CHAT, cut,
                     "{\"error\":\"the upstream's answer ended before its JSON was complete\"}\n");
}

/* An upstream that ignored stream:true: its whole answer is one done line. */
static void test_stream_whole_body(void **state) {
    (void)state;
    static const char t[] = "{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"all\"},"
                            "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":1}}";
    check_all_splits(NS_FRONT_OLLAMA_CHAT, t,
                     LINE_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"all\"},\"done\":true,"
                               "\"done_reason\":\"stop\",\"total_duration\":2500000000,\"prompt_eval_count\":2,"
                               "\"eval_count\":1}\n");
}

static void test_stream_malformed(void **state) {
    (void)state;
    static const char t[] = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"
                            "data: <html>502 Bad Gateway</html>\n\n"
                            "data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n";
    size_t n = strlen(t);
    for (size_t cut = 0; cut <= n; cut++) {
        char err[256] = "";
        int rc;
        char *got = run_stream(NS_FRONT_OLLAMA_CHAT, t, n, &cut, 1, &rc, err, sizeof err);
        assert_int_equal(rc, -1);
        assert_string_equal(err, "the upstream sent SSE data that is not JSON: \"<html>502 Bad Gateway</html>\"");
        /* the text before stays, finish adds nothing: the caller ends it */
        assert_string_equal(got, LINE_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n");
        free(got);
    }
    /* later feeds keep failing with the same message */
    ns_tr_stream *s = ns_tr_stream_new(NS_FRONT_OLLAMA_CHAT, "small");
    char *out = NULL;
    size_t len = 0, cap = 0;
    char err[256] = "";
    assert_int_equal(ns_tr_stream_feed(s, "data: nope\n\n", 12, NOW, &out, &len, &cap, err, sizeof err), -1);
    err[0] = 0;
    assert_int_equal(ns_tr_stream_feed(s, "data: [DONE]\n\n", 14, NOW, &out, &len, &cap, err, sizeof err), -1);
    assert_string_equal(err, "the upstream sent SSE data that is not JSON: \"nope\"");
    assert_int_equal(ns_tr_stream_finish(s, NOW, 1, &out, &len, &cap), 0);
    assert_int_equal(len, 0);
    assert_false(ns_tr_stream_done(s));
    free(out);
    ns_tr_stream_free(s);

    /* a JSON chunk that is not an object */
    s = ns_tr_stream_new(NS_FRONT_OLLAMA_CHAT, "small");
    assert_int_equal(ns_tr_stream_feed(s, "data: [1,2]\n\n", 13, NOW, &out, &len, &cap, err, sizeof err), -1);
    assert_string_equal(err, "the upstream sent an SSE event that is not a JSON object");
    free(out);
    ns_tr_stream_free(s);
}

/* A malformed last event has no later feed to fail in: finish writes the
 * error line itself. So does a stream with no event at all. */
static void test_stream_bad_ends(void **state) {
    (void)state;
    check_all_splits(NS_FRONT_OLLAMA_CHAT, "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"cho",
                     LINE_HEAD "\"message\":{\"role\":\"assistant\",\"content\":\"a\"},\"done\":false}\n"
                               "{\"error\":\"the upstream sent SSE data that is not JSON: \\\"{\\\"cho\\\"\"}\n");
    check_all_splits(NS_FRONT_OLLAMA_CHAT, "",
                     "{\"error\":\"the upstream closed its stream without sending an answer\"}\n");
    check_all_splits(NS_FRONT_OLLAMA_CHAT, ": only a comment\n\n",
                     "{\"error\":\"the upstream closed its stream without sending an answer\"}\n");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prompt_text),
        cmocka_unit_test(test_strip_tag),
        cmocka_unit_test(test_ollama_chat_to_openai),
        cmocka_unit_test(test_ollama_generate_to_openai),
        cmocka_unit_test(test_ollama_to_openai_errors),
        cmocka_unit_test(test_openai_to_ollama),
        cmocka_unit_test(test_openai_to_ollama_errors),
        cmocka_unit_test(test_stream_chat_splits),
        cmocka_unit_test(test_stream_crlf_comments),
        cmocka_unit_test(test_stream_multiline_data),
        cmocka_unit_test(test_stream_generate_no_done),
        cmocka_unit_test(test_stream_no_start),
        cmocka_unit_test(test_stream_error_object),
        cmocka_unit_test(test_stream_whole_body),
        cmocka_unit_test(test_stream_malformed),
        cmocka_unit_test(test_stream_bad_ends),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
