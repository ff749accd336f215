/* The OpenAI-compatible API: /v1/chat/completions, /v1/completions,
 * /v1/models. Shapes follow OpenAI's API reference (chat.completion,
 * chat.completion.chunk, text_completion, model, list, error), so the
 * official clients work unchanged.
 *
 * Sampling starts from OpenAI's defaults (temperature 1, top_p 1, no top-k,
 * no repeat penalty: only presence/frequency penalties), then the model's
 * Modelfile parameters (as Ollama applies them), then the request.
 * response_format json_schema constrains the output to a JSON object; the
 * schema itself is not enforced. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nstack/tokenizer.h"
#include "server/options.h"
#include "server/prompt.h"
#include "server/routes.h"
#include "server/sessions.h"
#include "util/duration.h"
#include "util/log.h"

#define OA_MAX_N 8         /* choices per prompt */
#define OA_MAX_CHOICES 64  /* choices per request (prompts x n) */
#define OA_MAX_STOPS 4
#define OA_WAIT_MS 100     /* how long a wait for tokens lasts before the client is checked again */

/* ------------------------------------------------------------------ errors */

static const char *error_type(int status) {
    if (status == 404) return "not_found_error";
    if (status >= 500) return "server_error";
    return "invalid_request_error";
}

/* {"error":{"message","type","param","code"}}, logged once. */
static void oa_error(ns_http_req *r, int status, const char *param, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void oa_error(ns_http_req *r, int status, const char *param, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char logged[1024];
    snprintf(logged, sizeof logged, "%s", msg);
    for (char *p = logged; *p; p++)
        if (*p == '"' || *p == '\n') *p = '\'';
    ns_log(status >= 500 ? NS_LOG_ERROR : NS_LOG_WARN, "openai", "request failed",
           "status=%d request_id=%s error=\"%s\"", status, ns_http_request_id(r), logged);
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", error_type(status));
    if (param) cJSON_AddStringToObject(e, "param", param);
    else cJSON_AddNullToObject(e, "param");
    if (code) cJSON_AddStringToObject(e, "code", code);
    else cJSON_AddNullToObject(e, "code");
    ns_http_respond_json(r, status, o);
}

/* The body as a JSON object, or NULL after a 400 in OpenAI's shape. */
static cJSON *oa_parse_body(ns_http_req *r) {
    size_t len;
    const char *body = ns_http_body(r, &len);
    size_t start = 0;
    while (start < len && isspace((unsigned char)body[start])) start++;
    if (start == len) {
        oa_error(r, 400, NULL, NULL, "missing request body: send a JSON object");
        return NULL;
    }
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, false);
    size_t at = end ? (size_t)(end - body) : 0;
    if (j) {
        while (at < len && isspace((unsigned char)body[at])) at++;
        if (at < len) {
            cJSON_Delete(j);
            oa_error(r, 400, NULL, NULL, "invalid JSON at byte %zu: unexpected data after the value", at);
            return NULL;
        }
        if (!cJSON_IsObject(j)) {
            cJSON_Delete(j);
            oa_error(r, 400, NULL, NULL, "request body must be a JSON object");
            return NULL;
        }
        return j;
    }
    if (at >= len) oa_error(r, 400, NULL, NULL, "invalid JSON at byte %zu: unexpected end of input", at);
    else if (isprint((unsigned char)body[at]))
        oa_error(r, 400, NULL, NULL, "invalid JSON at byte %zu: unexpected '%c'", at, body[at]);
    else oa_error(r, 400, NULL, NULL, "invalid JSON at byte %zu: unexpected byte 0x%02x", at, (unsigned char)body[at]);
    return NULL;
}

/* --------------------------------------------------------------- utilities */

/* Valid UTF-8 copy of n bytes: invalid sequences become U+FFFD (token texts
 * may be pieces of a character). */
static char *utf8_clean(const char *p, size_t n) {
    char *out = malloc(n * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    const uint8_t *s = (const uint8_t *)p;
    for (size_t i = 0; i < n;) {
        uint8_t b = s[i];
        size_t need = 0;
        uint8_t lo = 0x80, hi = 0xBF;
        if (b < 0x80) need = 0;
        else if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) lo = 0xA0;
            if (b == 0xED) hi = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) lo = 0x90;
            if (b == 0xF4) hi = 0x8F;
        } else need = SIZE_MAX;
        bool ok = need != SIZE_MAX;
        for (size_t k = 1; ok && k <= need; k++) {
            if (i + k >= n || s[i + k] < (k == 1 ? lo : 0x80) || s[i + k] > (k == 1 ? hi : 0xBF)) ok = false;
        }
        if (ok) {
            memcpy(out + o, s + i, need + 1);
            o += need + 1;
            i += need + 1;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    out[o] = '\0';
    return out;
}

static void add_clean_string(cJSON *obj, const char *key, const char *p, size_t n) {
    char *c = utf8_clean(p, n);
    cJSON_AddStringToObject(obj, key, c ? c : "");
    free(c);
}

/* The token's text (control tokens: their text, as OpenAI shows them). */
static int token_text(const ns_vocab *v, int32_t tok, char *buf, int buflen) {
    int n = ns_token_to_piece(v, tok, false, buf, buflen);
    if (n == 0) n = ns_token_to_piece(v, tok, true, buf, buflen);
    return n < 0 ? 0 : n;
}

static cJSON *bytes_array(const char *p, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber((uint8_t)p[i]));
    return a;
}

/* {"token","logprob","bytes"} of one token (chat's logprobs shape). */
static cJSON *chat_logprob_entry(const ns_vocab *v, const ns_token_logprob *lp) {
    char buf[256];
    int n = token_text(v, lp->token, buf, sizeof buf);
    cJSON *e = cJSON_CreateObject();
    add_clean_string(e, "token", buf, (size_t)n);
    cJSON_AddNumberToObject(e, "logprob", isfinite(lp->logprob) ? lp->logprob : -9999.0);
    cJSON_AddItemToObject(e, "bytes", bytes_array(buf, n));
    return e;
}

static bool json_is_int(const cJSON *v) {
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && floor(v->valuedouble) == v->valuedouble;
}

/* %XX decoding of a path segment. */
static void percent_decode(const char *in, char *out, size_t outlen) {
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 1 < outlen; i++) {
        if (in[i] == '%' && isxdigit((unsigned char)in[i + 1]) && isxdigit((unsigned char)in[i + 2])) {
            char hex[3] = {in[i + 1], in[i + 2], 0};
            out[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
        } else {
            out[o++] = in[i];
        }
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------- the parameters */

typedef struct {
    char *text;    /* prompt text (owned), or NULL for a token prompt */
    int32_t *toks; /* owned token ids when given as ids */
    int n_toks;
} oa_prompt;

typedef struct {
    const char *model;
    bool stream, include_usage;
    int n;
    long long max_tokens; /* -1: no limit */
    bool set_max_tokens;
    bool set_temperature, set_top_p, set_presence, set_frequency, set_seed, set_stop;
    float temperature, top_p, presence, frequency;
    uint64_t seed;
    char *stops[OA_MAX_STOPS];
    int n_stops;
    const cJSON *logit_bias; /* into the body */
    bool logprobs;
    int top_logprobs;
    int json_mode;
    int64_t keep_alive_ns;
    /* chat */
    ns_chat_msg *msgs;
    int n_msgs;
    char **owned; /* texts the messages point at */
    int n_owned;
    char *tools_json;
    /* completions */
    oa_prompt *prompts;
    int n_prompts;
    bool echo;
} oa_params;

static void params_free(oa_params *p) {
    for (int i = 0; i < p->n_stops; i++) free(p->stops[i]);
    free(p->msgs);
    for (int i = 0; i < p->n_owned; i++) free(p->owned[i]);
    free(p->owned);
    free(p->tools_json);
    for (int i = 0; i < p->n_prompts; i++) {
        free(p->prompts[i].text);
        free(p->prompts[i].toks);
    }
    free(p->prompts);
}

/* A request error found while reading the parameters. */
typedef struct {
    int status;
    char param[64];
    const char *code;
    char msg[1024];
} oa_fail;

static int fail_at(oa_fail *f, const char *param, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail_at(oa_fail *f, const char *param, const char *fmt, ...) {
    f->status = 400;
    snprintf(f->param, sizeof f->param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->msg, sizeof f->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static void respond_fail(ns_http_req *r, const oa_fail *f) {
    oa_error(r, f->status, f->param[0] ? f->param : NULL, f->code, "%s", f->msg);
}

/* Absent and null both mean "not given". */
static const cJSON *field(const cJSON *body, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int read_number(const cJSON *body, const char *key, double lo, double hi, bool *set, float *out, oa_fail *f) {
    const cJSON *v = field(body, key);
    if (!v) return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return fail_at(f, key, "%s must be a number in [%g, %g]", key, lo, hi);
    *set = true;
    *out = (float)v->valuedouble;
    return 0;
}

static int read_int(const cJSON *body, const char *key, long long lo, long long hi, long long *out, oa_fail *f) {
    const cJSON *v = field(body, key);
    if (!v) return 0;
    if (!json_is_int(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi)
        return fail_at(f, key, "%s must be an integer in [%lld, %lld]", key, lo, hi);
    *out = (long long)v->valuedouble;
    return 1;
}

static int read_bool(const cJSON *body, const char *key, bool *out, oa_fail *f) {
    const cJSON *v = field(body, key);
    if (!v) return 0;
    if (!cJSON_IsBool(v)) return fail_at(f, key, "%s must be true or false", key);
    *out = cJSON_IsTrue(v);
    return 1;
}

static int read_stop(const cJSON *body, oa_params *p, oa_fail *f) {
    const cJSON *v = field(body, "stop");
    if (!v) return 0;
    p->set_stop = true;
    if (cJSON_IsString(v)) {
        if (v->valuestring[0] && !(p->stops[p->n_stops++] = strdup(v->valuestring)))
            return fail_at(f, "stop", "out of memory");
        return 0;
    }
    if (!cJSON_IsArray(v)) return fail_at(f, "stop", "stop must be a string or an array of strings");
    if (cJSON_GetArraySize(v) > OA_MAX_STOPS)
        return fail_at(f, "stop", "stop may hold at most %d sequences", OA_MAX_STOPS);
    const cJSON *s;
    cJSON_ArrayForEach(s, v) {
        if (!cJSON_IsString(s)) return fail_at(f, "stop", "stop must be a string or an array of strings");
        if (!s->valuestring[0]) continue;
        if (!(p->stops[p->n_stops++] = strdup(s->valuestring))) return fail_at(f, "stop", "out of memory");
    }
    return 0;
}

static int read_logit_bias(const cJSON *body, oa_params *p, oa_fail *f) {
    const cJSON *v = field(body, "logit_bias");
    if (!v) return 0;
    if (!cJSON_IsObject(v)) return fail_at(f, "logit_bias", "logit_bias must be an object of token id -> bias");
    const cJSON *e;
    cJSON_ArrayForEach(e, v) {
        char *end = NULL;
        long id = strtol(e->string, &end, 10);
        if (!e->string[0] || *end || id < 0)
            return fail_at(f, "logit_bias", "logit_bias key '%s' is not a token id", e->string);
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble) || e->valuedouble < -100 || e->valuedouble > 100)
            return fail_at(f, "logit_bias", "logit_bias values must be numbers in [-100, 100]");
    }
    p->logit_bias = v;
    return 0;
}

static int read_response_format(const cJSON *body, oa_params *p, oa_fail *f) {
    const cJSON *v = field(body, "response_format");
    if (!v) return 0;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(v, "type");
    if (!cJSON_IsObject(v) || !cJSON_IsString(type))
        return fail_at(f, "response_format", "response_format must be an object with a type");
    if (strcmp(type->valuestring, "text") == 0) p->json_mode = 0;
    else if (strcmp(type->valuestring, "json_object") == 0) p->json_mode = 2;
    else if (strcmp(type->valuestring, "json_schema") == 0) {
        /* the output is held to a JSON object; the schema's own rules are not enforced */
        p->json_mode = 2;
        ns_log_debug("openai", "json_schema: output constrained to a JSON object, schema not enforced", NULL);
    } else
        return fail_at(f, "response_format", "response_format.type must be text, json_object or json_schema, not '%s'",
                       type->valuestring);
    return 0;
}

/* The fields both endpoints share. */
static int read_common(const cJSON *body, oa_params *p, bool chat, oa_fail *f) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!cJSON_IsString(m) || !m->valuestring[0]) return fail_at(f, "model", "model is required (a model name)");
    p->model = m->valuestring;
    p->n = 1;
    p->max_tokens = chat ? -1 : 16; /* OpenAI's defaults: unlimited for chat, 16 for completions */
    p->keep_alive_ns = NS_KEEP_ALIVE_DEFAULT;
    long long x;
    if (read_bool(body, "stream", &p->stream, f) < 0) return -1;
    const cJSON *so = field(body, "stream_options");
    if (so) {
        if (!cJSON_IsObject(so)) return fail_at(f, "stream_options", "stream_options must be an object");
        if (read_bool(so, "include_usage", &p->include_usage, f) < 0) return -1;
    }
    int rc = read_int(body, "n", 1, OA_MAX_N, &x, f);
    if (rc < 0) return -1;
    if (rc) p->n = (int)x;
    if ((rc = read_int(body, "max_tokens", 1, (long long)1 << 40, &x, f)) < 0) return -1;
    if (rc) p->max_tokens = x, p->set_max_tokens = true;
    if (chat) {
        if ((rc = read_int(body, "max_completion_tokens", 1, (long long)1 << 40, &x, f)) < 0) return -1;
        if (rc) p->max_tokens = x, p->set_max_tokens = true;
    }
    if (read_number(body, "temperature", 0, 2, &p->set_temperature, &p->temperature, f) < 0) return -1;
    if (read_number(body, "top_p", 0, 1, &p->set_top_p, &p->top_p, f) < 0) return -1;
    if (read_number(body, "presence_penalty", -2, 2, &p->set_presence, &p->presence, f) < 0) return -1;
    if (read_number(body, "frequency_penalty", -2, 2, &p->set_frequency, &p->frequency, f) < 0) return -1;
    const cJSON *seed = field(body, "seed");
    if (seed) {
        if (!json_is_int(seed)) return fail_at(f, "seed", "seed must be an integer");
        p->set_seed = true;
        p->seed = seed->valuedouble < 0 ? (uint64_t)(int64_t)seed->valuedouble : (uint64_t)seed->valuedouble;
    }
    if (read_stop(body, p, f) < 0) return -1;
    if (read_logit_bias(body, p, f) < 0) return -1;
    if (read_response_format(body, p, f) < 0) return -1;
    const cJSON *user = field(body, "user");
    if (user && !cJSON_IsString(user)) return fail_at(f, "user", "user must be a string");
    const cJSON *ka = cJSON_GetObjectItemCaseSensitive(body, "keep_alive"); /* ours, as /api/chat has it */
    if (ka) {
        char err[256];
        if (ns_parse_keep_alive(ka, &p->keep_alive_ns, err, sizeof err) != 0) return fail_at(f, "keep_alive", "%s", err);
    }
    const cJSON *suffix = field(body, "suffix");
    if (suffix) return fail_at(f, "suffix", "suffix is not supported");
    return 0;
}

/* A message's content: a string, null, or an array of text parts (joined). */
static int read_content(const cJSON *c, int i, oa_params *p, const char **out, oa_fail *f) {
    char param[64];
    snprintf(param, sizeof param, "messages[%d].content", i);
    if (!c || cJSON_IsNull(c)) {
        *out = NULL;
        return 0;
    }
    if (cJSON_IsString(c)) {
        *out = c->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(c)) return fail_at(f, param, "%s must be a string or an array of content parts", param);
    size_t len = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, c) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(type)) return fail_at(f, param, "%s: every part needs a type", param);
        if (strcmp(type->valuestring, "text") != 0)
            return fail_at(f, param, "%s: content parts of type '%s' are not supported (text only)", param,
                           type->valuestring);
        if (!cJSON_IsString(text)) return fail_at(f, param, "%s: a text part needs a text string", param);
        len += strlen(text->valuestring);
    }
    char *joined = malloc(len + 1);
    if (!joined) return fail_at(f, param, "out of memory");
    joined[0] = '\0';
    size_t o = 0;
    cJSON_ArrayForEach(part, c) {
        const char *t = cJSON_GetObjectItemCaseSensitive(part, "text")->valuestring;
        size_t n = strlen(t);
        memcpy(joined + o, t, n + 1);
        o += n;
    }
    p->owned[p->n_owned++] = joined;
    *out = joined;
    return 0;
}

static int read_messages(const cJSON *body, oa_params *p, oa_fail *f) {
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (!cJSON_IsArray(msgs) || cJSON_GetArraySize(msgs) == 0)
        return fail_at(f, "messages", "messages must be a non-empty array");
    int n = cJSON_GetArraySize(msgs);
    p->msgs = calloc((size_t)n + 1, sizeof *p->msgs);
    p->owned = calloc((size_t)n * 2 + 1, sizeof *p->owned);
    if (!p->msgs || !p->owned) return fail_at(f, "messages", "out of memory");
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        char param[64];
        snprintf(param, sizeof param, "messages[%d]", i);
        if (!cJSON_IsObject(m)) return fail_at(f, param, "%s must be an object", param);
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (!cJSON_IsString(role)) return fail_at(f, param, "%s.role is required", param);
        static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};
        bool known = false;
        for (size_t k = 0; k < sizeof roles / sizeof *roles; k++) known |= strcmp(role->valuestring, roles[k]) == 0;
        if (!known) return fail_at(f, param, "%s.role '%s' is not one of system, developer, user, assistant, tool",
                                   param, role->valuestring);
        ns_chat_msg *cm = &p->msgs[i];
        /* developer messages are what newer clients send for system */
        cm->role = strcmp(role->valuestring, "developer") == 0 ? "system" : role->valuestring;
        if (read_content(cJSON_GetObjectItemCaseSensitive(m, "content"), i, p, &cm->content, f) < 0) return -1;
        const cJSON *name = field(m, "name");
        if (name && cJSON_IsString(name)) cm->name = name->valuestring;
        const cJSON *tcid = field(m, "tool_call_id");
        if (tcid && cJSON_IsString(tcid)) cm->tool_call_id = tcid->valuestring;
        const cJSON *tc = field(m, "tool_calls");
        if (tc) {
            if (!cJSON_IsArray(tc)) return fail_at(f, param, "%s.tool_calls must be an array", param);
            char *text = cJSON_PrintUnformatted(tc);
            if (!text) return fail_at(f, param, "out of memory");
            p->owned[p->n_owned++] = text;
            cm->tool_calls_json = text;
        }
        if (!cm->content && !cm->tool_calls_json && strcmp(cm->role, "assistant") != 0)
            return fail_at(f, param, "%s.content is required", param);
        i++;
    }
    p->n_msgs = n;
    const cJSON *tools = field(body, "tools");
    if (tools) {
        if (!cJSON_IsArray(tools)) return fail_at(f, "tools", "tools must be an array");
        if (cJSON_GetArraySize(tools) > 0 && !(p->tools_json = cJSON_PrintUnformatted(tools)))
            return fail_at(f, "tools", "out of memory");
    }
    /* chat's logprobs: a boolean, with top_logprobs alternatives */
    if (read_bool(body, "logprobs", &p->logprobs, f) < 0) return -1;
    long long x;
    int rc = read_int(body, "top_logprobs", 0, NS_MAX_TOP_LOGPROBS, &x, f);
    if (rc < 0) return -1;
    if (rc) {
        if (!p->logprobs) return fail_at(f, "top_logprobs", "top_logprobs needs logprobs set to true");
        p->top_logprobs = (int)x;
    }
    return 0;
}

/* One prompt given as token ids. */
static int read_token_prompt(const cJSON *a, oa_prompt *out, oa_fail *f) {
    int n = cJSON_GetArraySize(a);
    if (n == 0) return fail_at(f, "prompt", "a token prompt must not be empty");
    out->toks = malloc(sizeof *out->toks * (size_t)n);
    if (!out->toks) return fail_at(f, "prompt", "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, a) {
        if (!json_is_int(t) || t->valuedouble < 0 || t->valuedouble > INT32_MAX)
            return fail_at(f, "prompt", "prompt token ids must be non-negative integers");
        out->toks[out->n_toks++] = (int32_t)t->valuedouble;
    }
    return 0;
}

static int read_prompts(const cJSON *body, oa_params *p, oa_fail *f) {
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (!pr || cJSON_IsNull(pr)) return fail_at(f, "prompt", "prompt is required");
    if (cJSON_IsString(pr)) {
        p->prompts = calloc(1, sizeof *p->prompts);
        if (!p->prompts || !(p->prompts[0].text = strdup(pr->valuestring))) return fail_at(f, "prompt", "out of memory");
        p->n_prompts = 1;
    } else if (cJSON_IsArray(pr)) {
        int n = cJSON_GetArraySize(pr);
        if (n == 0) return fail_at(f, "prompt", "prompt must not be an empty array");
        const cJSON *first = cJSON_GetArrayItem(pr, 0);
        if (cJSON_IsNumber(first)) { /* one prompt of token ids */
            p->prompts = calloc(1, sizeof *p->prompts);
            if (!p->prompts) return fail_at(f, "prompt", "out of memory");
            p->n_prompts = 1;
            if (read_token_prompt(pr, &p->prompts[0], f) < 0) return -1;
        } else {
            p->prompts = calloc((size_t)n, sizeof *p->prompts);
            if (!p->prompts) return fail_at(f, "prompt", "out of memory");
            const cJSON *e;
            cJSON_ArrayForEach(e, pr) {
                oa_prompt *op = &p->prompts[p->n_prompts++];
                if (cJSON_IsString(e)) {
                    if (!(op->text = strdup(e->valuestring))) return fail_at(f, "prompt", "out of memory");
                } else if (cJSON_IsArray(e)) {
                    if (read_token_prompt(e, op, f) < 0) return -1;
                } else {
                    return fail_at(f, "prompt", "prompt must be a string, an array of strings, or token id arrays");
                }
            }
        }
    } else {
        return fail_at(f, "prompt", "prompt must be a string, an array of strings, or token id arrays");
    }
    if (read_bool(body, "echo", &p->echo, f) < 0) return -1;
    /* completions' logprobs: how many alternatives (0 = the chosen token only) */
    const cJSON *lp = field(body, "logprobs");
    if (lp) {
        if (!json_is_int(lp) || lp->valuedouble < 0 || lp->valuedouble > NS_MAX_TOP_LOGPROBS)
            return fail_at(f, "logprobs", "logprobs must be an integer in [0, %d]", NS_MAX_TOP_LOGPROBS);
        p->logprobs = true;
        p->top_logprobs = (int)lp->valuedouble;
        if (p->echo) return fail_at(f, "echo", "echo with logprobs is not supported (no prompt logprobs)");
    }
    const cJSON *best_of = field(body, "best_of");
    if (best_of && !(json_is_int(best_of) && (int)best_of->valuedouble == p->n))
        return fail_at(f, "best_of", "best_of is not supported (other than equal to n)");
    if (p->n_prompts * p->n > OA_MAX_CHOICES)
        return fail_at(f, "n", "at most %d completions per request (prompts x n)", OA_MAX_CHOICES);
    return 0;
}

/* ------------------------------------------------------------ generations */

typedef struct {
    ns_job *job;
    bool done;
    ns_finish finish;
    int n_prompt, n_gen;
    char error[256];
    bool started;        /* streaming: the first chunk went out */
    ns_buf text;         /* non-streaming: the content so far */
    cJSON *lp_content;   /* chat: logprobs.content entries */
    cJSON *lp_tokens, *lp_token_logprobs, *lp_top, *lp_offsets; /* completions' legacy shape */
    size_t offset;       /* completions: bytes of text so far, for text_offset */
    char *echo;          /* completions: the prompt text to put first */
} oa_choice;

typedef struct {
    ns_server *s;
    ns_http_req *r;
    ns_loaded *lm;
    int64_t keep_alive_ns;
    bool chat, stream, include_usage, logprobs;
    int top_logprobs;
    char id[96], model[256], fingerprint[32], request_id[64];
    int64_t created;
    int n_choices, n_per_prompt;
    oa_choice *choices;
    int rr;              /* round robin over the choices' jobs */
    int n_live;
    bool tail_sent;      /* streaming: usage and [DONE] written */
    ns_session_turn *turn; /* the request's session (one choice), or NULL */
} oa_gen;

static void gen_free(oa_gen *g) {
    if (!g) return;
    for (int i = 0; i < g->n_choices; i++) {
        oa_choice *c = &g->choices[i];
        if (c->job) ns_job_free(c->job);
        ns_buf_free(&c->text);
        cJSON_Delete(c->lp_content);
        cJSON_Delete(c->lp_tokens);
        cJSON_Delete(c->lp_token_logprobs);
        cJSON_Delete(c->lp_top);
        cJSON_Delete(c->lp_offsets);
        free(c->echo);
    }
    free(g->choices);
    if (g->turn) { /* still held: the generation did not finish, the session is unchanged */
        ns_session_turn_abort(g->turn);
        free(g->turn);
    }
    if (g->lm) ns_runtime_release(g->s->rt, g->lm, g->keep_alive_ns);
    free(g);
}

/* The next event of any running job, taking turns so n > 1 choices
 * interleave. Waits up to wait_ms in all; the choice index, or -1. */
static int next_event(oa_gen *g, ns_job_event *ev, int wait_ms) {
    for (int k = 0; k < g->n_choices; k++) {
        int i = (g->rr + k) % g->n_choices;
        oa_choice *c = &g->choices[i];
        if (c->done) continue;
        if (ns_job_next(c->job, ev, 0) == 1) {
            g->rr = (i + 1) % g->n_choices;
            return i;
        }
    }
    if (g->n_live == 0) return -1;
    /* nothing ready: wait on the live jobs in turn, a slice each */
    int slice = wait_ms / g->n_live;
    if (slice < 1) slice = 1;
    for (int k = 0; k < g->n_choices; k++) {
        int i = (g->rr + k) % g->n_choices;
        oa_choice *c = &g->choices[i];
        if (c->done) continue;
        if (ns_job_next(c->job, ev, slice) == 1) {
            g->rr = (i + 1) % g->n_choices;
            return i;
        }
    }
    return -1;
}

static const char *finish_reason(ns_finish f) {
    /* a full context, a time limit: the output was cut short */
    return f == NS_FINISH_STOP ? "stop" : "length";
}

/* Records a token's logprobs in the choice (non-streaming) or in entries
 * for one chunk (streaming: fresh arrays the caller attaches). */
static void add_logprobs(const oa_gen *g, oa_choice *c, const ns_job_event *ev) {
    if (!g->logprobs || ev->token < 0 || ev->n_lp < 1) return;
    const ns_vocab *v = ns_loaded_vocab(g->lm);
    if (g->chat) {
        if (!c->lp_content) c->lp_content = cJSON_CreateArray();
        cJSON *e = chat_logprob_entry(v, &ev->lp[0]);
        cJSON *top = cJSON_AddArrayToObject(e, "top_logprobs");
        for (int k = 1; k < ev->n_lp && k <= g->top_logprobs; k++)
            cJSON_AddItemToArray(top, chat_logprob_entry(v, &ev->lp[k]));
        cJSON_AddItemToArray(c->lp_content, e);
        return;
    }
    if (!c->lp_tokens) {
        c->lp_tokens = cJSON_CreateArray();
        c->lp_token_logprobs = cJSON_CreateArray();
        c->lp_top = cJSON_CreateArray();
        c->lp_offsets = cJSON_CreateArray();
    }
    char buf[256];
    int n = token_text(v, ev->lp[0].token, buf, sizeof buf);
    char *clean = utf8_clean(buf, (size_t)n);
    cJSON_AddItemToArray(c->lp_tokens, cJSON_CreateString(clean ? clean : ""));
    free(clean);
    cJSON_AddItemToArray(c->lp_token_logprobs, cJSON_CreateNumber(isfinite(ev->lp[0].logprob) ? ev->lp[0].logprob : -9999.0));
    cJSON *top = cJSON_CreateObject();
    for (int k = 1; k < ev->n_lp && k <= g->top_logprobs; k++) {
        n = token_text(v, ev->lp[k].token, buf, sizeof buf);
        clean = utf8_clean(buf, (size_t)n);
        if (clean && !cJSON_HasObjectItem(top, clean))
            cJSON_AddNumberToObject(top, clean, isfinite(ev->lp[k].logprob) ? ev->lp[k].logprob : -9999.0);
        free(clean);
    }
    cJSON_AddItemToArray(c->lp_top, top);
    cJSON_AddItemToArray(c->lp_offsets, cJSON_CreateNumber((double)c->offset));
}

/* The logprobs object of a choice (taking the arrays), or null. */
static cJSON *take_logprobs(const oa_gen *g, oa_choice *c) {
    if (!g->logprobs) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (g->chat) {
        cJSON_AddItemToObject(o, "content", c->lp_content ? c->lp_content : cJSON_CreateArray());
        cJSON_AddNullToObject(o, "refusal");
        c->lp_content = NULL;
        return o;
    }
    cJSON_AddItemToObject(o, "tokens", c->lp_tokens ? c->lp_tokens : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "token_logprobs", c->lp_token_logprobs ? c->lp_token_logprobs : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "top_logprobs", c->lp_top ? c->lp_top : cJSON_CreateArray());
    cJSON_AddItemToObject(o, "text_offset", c->lp_offsets ? c->lp_offsets : cJSON_CreateArray());
    c->lp_tokens = c->lp_token_logprobs = c->lp_top = c->lp_offsets = NULL;
    return o;
}

static cJSON *usage_object(const oa_gen *g) {
    long long prompt = 0, completion = 0;
    for (int i = 0; i < g->n_choices; i++) {
        /* each prompt counts once, however many choices it has */
        if (i % g->n_per_prompt == 0) prompt += g->choices[i].n_prompt;
        completion += g->choices[i].n_gen;
    }
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)completion);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(prompt + completion));
    return u;
}

/* The fields every response object starts with. */
static cJSON *response_head(const oa_gen *g, const char *object) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", g->id);
    cJSON_AddStringToObject(o, "object", object);
    cJSON_AddNumberToObject(o, "created", (double)g->created);
    cJSON_AddStringToObject(o, "model", g->model);
    cJSON_AddStringToObject(o, "system_fingerprint", g->fingerprint);
    return o;
}

/* A token or DONE event applied to its choice. Returns the text to show
 * (may be empty); *finished when the choice ended. */
static void apply_done(oa_gen *g, oa_choice *c, const ns_job_event *ev) {
    c->done = true;
    g->n_live--;
    c->finish = ev->stats.finish;
    c->n_prompt = ev->stats.n_prompt;
    c->n_gen = ev->stats.n_gen;
    /* saved before the client sees the end and sends its next turn */
    if (g->turn) ns_session_turn_end(g->turn, &ev->stats, c->text.data, c->text.len);
    if (ev->stats.finish == NS_FINISH_ERROR)
        snprintf(c->error, sizeof c->error, "%s", ev->stats.error[0] ? ev->stats.error : "generation failed");
    if (ev->stats.finish == NS_FINISH_CANCELLED) snprintf(c->error, sizeof c->error, "generation was cancelled");
    if (ev->stats.finish == NS_FINISH_TIMEOUT)
        ns_log_warn("openai", "generation stopped at the request time limit", "request_id=%s", g->request_id);
}

/* ------------------------------------------------------------- streaming */

static void append_chunk(ns_buf *out, cJSON *chunk) {
    char *text = cJSON_PrintUnformatted(chunk);
    cJSON_Delete(chunk);
    if (!text) return;
    ns_buf_printf(out, "data: %s\n\n", text);
    free(text);
}

/* One chunk for choice i: delta content (chat) or text (completions). */
static cJSON *stream_chunk(oa_gen *g, int i, const char *role, const char *text, size_t len, const char *finish,
                           cJSON *logprobs) {
    cJSON *chunk = response_head(g, g->chat ? "chat.completion.chunk" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(chunk, "choices");
    cJSON *ch = cJSON_CreateObject();
    cJSON_AddItemToArray(choices, ch);
    cJSON_AddNumberToObject(ch, "index", i);
    if (g->chat) {
        cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
        if (role) cJSON_AddStringToObject(delta, "role", role);
        if (text) add_clean_string(delta, "content", text, len);
    } else {
        add_clean_string(ch, "text", text ? text : "", text ? len : 0);
    }
    cJSON_AddItemToObject(ch, "logprobs", logprobs ? logprobs : cJSON_CreateNull());
    if (finish) cJSON_AddStringToObject(ch, "finish_reason", finish);
    else cJSON_AddNullToObject(ch, "finish_reason");
    /* with include_usage every chunk carries usage: null but the last */
    if (g->include_usage) cJSON_AddNullToObject(chunk, "usage");
    return chunk;
}

static void stream_error(ns_buf *out, const char *msg) {
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "message", msg);
    cJSON_AddStringToObject(e, "type", "server_error");
    cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    append_chunk(out, o);
}

static int stream_fn(void *user, ns_buf *out) {
    oa_gen *g = user;
    /* first: each choice's opening chunk (chat: the role; completions with
     * echo: the prompt) */
    bool opened = false;
    for (int i = 0; i < g->n_choices; i++) {
        oa_choice *c = &g->choices[i];
        if (c->started) continue;
        c->started = true;
        opened = true;
        if (g->chat) append_chunk(out, stream_chunk(g, i, "assistant", "", 0, NULL, NULL));
        else if (c->echo) append_chunk(out, stream_chunk(g, i, NULL, c->echo, strlen(c->echo), NULL, NULL));
    }
    if (opened && out->len) return NS_STREAM_MORE;
    while (g->n_live > 0) {
        ns_job_event ev;
        int i = next_event(g, &ev, OA_WAIT_MS);
        if (i < 0) {
            if (ns_http_client_gone(g->r)) return NS_STREAM_END; /* done() frees the jobs */
            continue;
        }
        oa_choice *c = &g->choices[i];
        if (ev.kind == NS_JOB_TOKEN) {
            add_logprobs(g, c, &ev);
            cJSON *lp = NULL;
            if (g->logprobs && (c->lp_content || c->lp_tokens)) lp = take_logprobs(g, c);
            if (ev.len > 0 || lp) append_chunk(out, stream_chunk(g, i, NULL, ev.text ? ev.text : "", ev.len, NULL, lp));
            if (g->turn && ev.len > 0) ns_buf_append(&c->text, ev.text, ev.len); /* the session's history */
            c->offset += ev.len;
            ns_job_event_clear(&ev);
            if (out->len) return NS_STREAM_MORE;
            continue;
        }
        apply_done(g, c, &ev);
        ns_job_event_clear(&ev);
        if (c->finish == NS_FINISH_ERROR || c->finish == NS_FINISH_CANCELLED) {
            stream_error(out, c->error);
        } else {
            /* the last chunk of a choice: its finish_reason, an empty delta */
            append_chunk(out, stream_chunk(g, i, NULL, g->chat ? NULL : "", 0, finish_reason(c->finish), NULL));
        }
        return NS_STREAM_MORE;
    }
    if (g->include_usage) {
        cJSON *chunk = response_head(g, g->chat ? "chat.completion.chunk" : "text_completion");
        cJSON_AddArrayToObject(chunk, "choices");
        cJSON_AddItemToObject(chunk, "usage", usage_object(g));
        append_chunk(out, chunk);
    }
    ns_buf_printf(out, "data: [DONE]\n\n");
    g->tail_sent = true;
    return NS_STREAM_END;
}

static void stream_done(void *user, bool client_gone) {
    oa_gen *g = user;
    /* the request may be gone already: only the copied id is used */
    if (client_gone && !g->tail_sent)
        ns_log_info("openai", "client went away: generation cancelled", "request_id=%s", g->request_id);
    gen_free(g);
}

/* --------------------------------------------------------- non-streaming */

static void respond_whole(oa_gen *g) {
    ns_http_req *r = g->r;
    int64_t checked = ns_now_mono();
    while (g->n_live > 0) {
        ns_job_event ev;
        int i = next_event(g, &ev, OA_WAIT_MS);
        /* tokens may flow without a pause: look at the client every so often */
        if (i < 0 || ns_now_mono() - checked > (int64_t)OA_WAIT_MS * 1000000) {
            checked = ns_now_mono();
            if (ns_http_client_gone(r)) {
                if (i >= 0) ns_job_event_clear(&ev);
                ns_log_info("openai", "client went away: generation cancelled", "request_id=%s",
                            ns_http_request_id(r));
                /* nobody reads this answer: no second log line for it */
                static const char gone[] = "{\"error\":{\"message\":\"client went away\",\"type\":"
                                           "\"invalid_request_error\",\"param\":null,\"code\":null}}";
                ns_http_respond(r, 400, "application/json; charset=utf-8", gone, sizeof gone - 1);
                gen_free(g);
                return;
            }
            if (i < 0) continue;
        }
        oa_choice *c = &g->choices[i];
        if (ev.kind == NS_JOB_TOKEN) {
            add_logprobs(g, c, &ev);
            if (ev.len) ns_buf_append(&c->text, ev.text, ev.len);
            c->offset += ev.len;
        } else {
            apply_done(g, c, &ev);
        }
        ns_job_event_clear(&ev);
    }
    for (int i = 0; i < g->n_choices; i++) {
        oa_choice *c = &g->choices[i];
        if (c->finish == NS_FINISH_ERROR || c->finish == NS_FINISH_CANCELLED) {
            int status = c->finish == NS_FINISH_CANCELLED ? 503 : 500;
            oa_error(r, status, NULL, NULL, "%s", c->error);
            gen_free(g);
            return;
        }
    }
    cJSON *o = response_head(g, g->chat ? "chat.completion" : "text_completion");
    cJSON *choices = cJSON_AddArrayToObject(o, "choices");
    for (int i = 0; i < g->n_choices; i++) {
        oa_choice *c = &g->choices[i];
        cJSON *ch = cJSON_CreateObject();
        cJSON_AddItemToArray(choices, ch);
        cJSON_AddNumberToObject(ch, "index", i);
        const char *text = c->text.data ? c->text.data : "";
        if (g->chat) {
            cJSON *msg = cJSON_AddObjectToObject(ch, "message");
            cJSON_AddStringToObject(msg, "role", "assistant");
            add_clean_string(msg, "content", text, c->text.len);
            cJSON_AddNullToObject(msg, "refusal");
        } else {
            size_t elen = c->echo ? strlen(c->echo) : 0;
            char *joined = malloc(elen + c->text.len + 1);
            if (joined) {
                if (elen) memcpy(joined, c->echo, elen);
                memcpy(joined + elen, text, c->text.len);
                add_clean_string(ch, "text", joined, elen + c->text.len);
                free(joined);
            }
        }
        cJSON_AddItemToObject(ch, "logprobs", take_logprobs(g, c));
        cJSON_AddStringToObject(ch, "finish_reason", finish_reason(c->finish));
    }
    cJSON_AddItemToObject(o, "usage", usage_object(g));
    ns_http_respond_json(r, 200, o);
    gen_free(g);
}

/* ------------------------------------------------------------ the handler */

static uint64_t random_seed(void) {
    /* no seed: a different draw each request, as OpenAI does */
    static _Atomic uint64_t counter;
    uint64_t x = (uint64_t)ns_now_mono() ^ ((uint64_t)ns_now_wall() << 17) ^ (counter++ * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

/* Sampling and stops: OpenAI's defaults, the model's parameters, the
 * request. */
static int build_sampling(const oa_params *p, ns_loaded *lm, ns_gen_options *o, ns_logit_bias **bias, int *n_bias,
                          oa_fail *f) {
    ns_gen_options_init(o);
    o->sampling.temperature = 1.0f;
    o->sampling.top_p = 1.0f;
    o->sampling.top_k = 0;
    o->sampling.min_p = 0.0f;
    o->sampling.typical_p = 1.0f;
    o->sampling.repeat_penalty = 1.0f;
    const ns_model_ref *ref = ns_loaded_ref(lm);
    if (ref && ref->params_json) {
        cJSON *params = cJSON_Parse(ref->params_json);
        char err[256];
        int rc = params ? ns_gen_options_apply(o, params, "model parameters", err, sizeof err) : 0;
        cJSON_Delete(params);
        if (rc != 0) {
            f->status = 500;
            snprintf(f->msg, sizeof f->msg, "the model's parameters are invalid: %s", err);
            return -1;
        }
    }
    if (p->set_temperature) o->sampling.temperature = p->temperature;
    if (p->set_top_p) o->sampling.top_p = p->top_p;
    if (p->set_presence) o->sampling.presence_penalty = p->presence;
    if (p->set_frequency) o->sampling.frequency_penalty = p->frequency;
    o->sampling.seed = p->set_seed ? p->seed : random_seed();
    *bias = NULL;
    *n_bias = 0;
    if (p->logit_bias) {
        int n_vocab = ns_vocab_size(ns_loaded_vocab(lm));
        int n = cJSON_GetArraySize(p->logit_bias);
        *bias = calloc((size_t)n + 1, sizeof **bias);
        if (!*bias) return fail_at(f, "logit_bias", "out of memory");
        const cJSON *e;
        cJSON_ArrayForEach(e, p->logit_bias) {
            long id = strtol(e->string, NULL, 10);
            if (id >= n_vocab)
                return fail_at(f, "logit_bias", "logit_bias token %ld is outside the vocabulary (%d tokens)", id, n_vocab);
            (*bias)[*n_bias].token = (int32_t)id;
            (*bias)[*n_bias].bias = e->valuedouble <= -100 ? -INFINITY : (float)e->valuedouble;
            (*n_bias)++;
        }
        o->sampling.logit_bias = *bias;
        o->sampling.n_logit_bias = *n_bias;
    }
    char err[256];
    if (ns_sampler_params_check(&o->sampling, err, sizeof err) != 0) return fail_at(f, NULL, "%s", err);
    return 0;
}

/* The chat prompt (ns_prompt_render puts the Modelfile's system message
 * first when the request has none). */
static char *chat_prompt_text(const oa_params *p, ns_loaded *lm, oa_fail *f) {
    int status = 0;
    char err[512];
    char *text = ns_prompt_render(lm, p->msgs, p->n_msgs, NULL, p->tools_json, &status, err, sizeof err);
    if (!text) {
        f->status = status ? status : 500;
        snprintf(f->param, sizeof f->param, "%s", status == 400 ? "messages" : "");
        snprintf(f->msg, sizeof f->msg, "%s", err);
    }
    return text;
}

/* The prompts' token ids (one per prompt) and, with echo, their texts. */
static int tokenize_prompts(const oa_params *p, ns_loaded *lm, oa_gen *g, int32_t **toks, int *n_toks, char **echo,
                            oa_fail *f) {
    const ns_vocab *v = ns_loaded_vocab(lm);
    int n_vocab = ns_vocab_size(v);
    char err[512];
    if (g->turn) {
        /* a session: the new messages (or text) after its history */
        int st = g->chat ? ns_session_turn_chat(g->turn, lm, p->msgs, p->n_msgs, NULL, p->tools_json, NS_N_KEEP_UNSET,
                                                &toks[0], &n_toks[0], err, sizeof err)
                         : ns_session_turn_generate(g->turn, lm, p->prompts[0].text, false, NS_N_KEEP_UNSET, &toks[0],
                                                    &n_toks[0], err, sizeof err);
        if (st) {
            f->status = st;
            snprintf(f->param, sizeof f->param, "%s", st == 400 ? (g->chat ? "messages" : "prompt") : "");
            snprintf(f->msg, sizeof f->msg, "%s", err);
            return -1;
        }
        if (!g->chat && p->echo && !(echo[0] = strdup(p->prompts[0].text))) return fail_at(f, "prompt", "out of memory");
        return 0;
    }
    if (g->chat) {
        char *text = chat_prompt_text(p, lm, f);
        if (!text) return -1;
        n_toks[0] = ns_prompt_tokenize(lm, text, &toks[0], err, sizeof err);
        free(text);
        if (n_toks[0] < 0) return fail_at(f, "messages", "%s", err);
        return 0;
    }
    for (int i = 0; i < p->n_prompts; i++) {
        const oa_prompt *op = &p->prompts[i];
        if (op->text) {
            n_toks[i] = ns_prompt_tokenize(lm, op->text, &toks[i], err, sizeof err);
            if (n_toks[i] < 0) return fail_at(f, "prompt", "%s", err);
            if (p->echo && !(echo[i] = strdup(op->text))) return fail_at(f, "prompt", "out of memory");
        } else {
            for (int k = 0; k < op->n_toks; k++)
                if (op->toks[k] >= n_vocab)
                    return fail_at(f, "prompt", "prompt token %d is outside the vocabulary (%d tokens)", op->toks[k],
                                   n_vocab);
            toks[i] = malloc(sizeof **toks * (size_t)op->n_toks);
            if (!toks[i]) return fail_at(f, "prompt", "out of memory");
            memcpy(toks[i], op->toks, sizeof **toks * (size_t)op->n_toks);
            n_toks[i] = op->n_toks;
            if (p->echo && !(echo[i] = ns_detokenize(v, op->toks, op->n_toks, false)))
                return fail_at(f, "prompt", "out of memory");
        }
    }
    return 0;
}

static void log_user(ns_http_req *r, const cJSON *body) {
    const cJSON *user = cJSON_GetObjectItemCaseSensitive(body, "user");
    if (!cJSON_IsString(user) || !ns_log_enabled(NS_LOG_DEBUG)) return;
    char clean[128];
    size_t i = 0;
    for (const char *p = user->valuestring; *p && i + 1 < sizeof clean; p++)
        clean[i++] = isalnum((unsigned char)*p) || strchr("-_.@:", *p) ? *p : '_';
    clean[i] = '\0';
    ns_log_debug("openai", "request user", "user=%s request_id=%s", clean, ns_http_request_id(r));
}

static void fingerprint_of(const ns_model_ref *ref, char *out, size_t outlen) {
    /* changes with the model file, like OpenAI's backend fingerprint */
    const char *hex = ref && strncmp(ref->digest, "sha256:", 7) == 0 ? ref->digest + 7 : NULL;
    if (hex && strlen(hex) >= 10) snprintf(out, outlen, "fp_%.10s", hex);
    else snprintf(out, outlen, "fp_nstack");
}

static void run_completion(ns_server *s, ns_http_req *r, bool chat) {
    cJSON *body = oa_parse_body(r);
    if (!body) return;
    oa_params p = {0};
    oa_fail f = {0};
    oa_gen *g = NULL;
    ns_gen_options opts;
    bool opts_init = false;
    ns_logit_bias *bias = NULL;
    int n_bias = 0;
    int32_t *toks[OA_MAX_CHOICES] = {0};
    int n_toks[OA_MAX_CHOICES] = {0};
    char *echo[OA_MAX_CHOICES] = {0};

    if (read_common(body, &p, chat, &f) < 0) goto fail;
    if ((chat ? read_messages(body, &p, &f) : read_prompts(body, &p, &f)) < 0) goto fail;
    log_user(r, body);
    const char *sid = NULL;
    char err[512];
    if (ns_session_id_of(r, body, &sid, err, sizeof err) != 0) {
        fail_at(&f, "session", "%s", err);
        goto fail;
    }
    if (sid && p.n != 1) {
        fail_at(&f, "n", "a session takes one completion per request (n must be 1)");
        goto fail;
    }
    if (sid && !chat && (p.n_prompts != 1 || !p.prompts[0].text)) {
        fail_at(&f, "prompt", "a session takes one text prompt per request");
        goto fail;
    }

    g = calloc(1, sizeof *g);
    if (!g) {
        fail_at(&f, NULL, "out of memory");
        goto fail;
    }
    g->s = s;
    g->r = r;
    g->chat = chat;
    g->stream = p.stream;
    g->include_usage = p.stream && p.include_usage;
    g->logprobs = p.logprobs;
    g->top_logprobs = p.top_logprobs;
    g->keep_alive_ns = p.keep_alive_ns;
    g->created = ns_now_wall() / 1000000000;
    g->n_per_prompt = p.n;
    snprintf(g->request_id, sizeof g->request_id, "%s", ns_http_request_id(r));
    snprintf(g->id, sizeof g->id, "%s%s", chat ? "chatcmpl-" : "cmpl-", ns_http_request_id(r));
    snprintf(g->model, sizeof g->model, "%s", p.model);
    int n_prompts = chat ? 1 : p.n_prompts;
    g->n_choices = n_prompts * p.n;
    g->choices = calloc((size_t)g->n_choices, sizeof *g->choices);
    if (!g->choices) {
        fail_at(&f, NULL, "out of memory");
        goto fail;
    }

    ns_load_opts lo = {0};
    lo.num_gpu = -1;
    int64_t load_ns = 0;
    int status = 0;
    g->lm = ns_runtime_acquire(s->rt, p.model, &lo, &load_ns, &status, err, sizeof err);
    if (!g->lm) {
        f.status = status ? status : 500;
        if (f.status == 404) {
            f.code = "model_not_found";
            snprintf(f.param, sizeof f.param, "model");
            snprintf(f.msg, sizeof f.msg, "The model '%s' does not exist: %s", p.model, err);
        } else {
            snprintf(f.msg, sizeof f.msg, "%s", err);
        }
        goto fail;
    }
    fingerprint_of(ns_loaded_ref(g->lm), g->fingerprint, sizeof g->fingerprint);
    if (build_sampling(&p, g->lm, &opts, &bias, &n_bias, &f) < 0) {
        opts_init = true;
        goto fail;
    }
    opts_init = true;
    if (sid) {
        if (!(g->turn = calloc(1, sizeof *g->turn))) {
            fail_at(&f, NULL, "out of memory");
            goto fail;
        }
        status = ns_session_turn_begin(s->sessions, sid, g->lm, chat ? NS_SESSION_CHAT : NS_SESSION_GENERATE,
                                       ns_http_request_id(r), g->turn, err, sizeof err);
        if (status) {
            free(g->turn);
            g->turn = NULL;
            f.status = status;
            snprintf(f.param, sizeof f.param, "session");
            snprintf(f.msg, sizeof f.msg, "%s", err);
            goto fail;
        }
    }
    if (tokenize_prompts(&p, g->lm, g, toks, n_toks, echo, &f) < 0) goto fail;

    /* the request's stops replace the model's */
    const char *const *stops = (const char *const *)opts.stops;
    int n_stops = opts.n_stops;
    if (p.set_stop) {
        stops = (const char *const *)p.stops;
        n_stops = p.n_stops;
    }
    for (int i = 0; i < g->n_choices; i++) {
        int pi = i / p.n;
        ns_gen_params gp = {0};
        gp.prompt = toks[pi];
        gp.n_prompt = n_toks[pi];
        gp.sampling = opts.sampling;
        gp.sampling.seed = opts.sampling.seed + (uint64_t)(i % p.n);
        gp.stops = stops;
        gp.n_stops = n_stops;
        /* a chat without max_tokens takes the model's num_predict, if it has one */
        gp.n_predict = !p.set_max_tokens && chat ? opts.n_predict : p.max_tokens;
        gp.logprobs = p.logprobs;
        gp.top_logprobs = p.top_logprobs;
        gp.json_mode = p.json_mode;
        gp.request_id = ns_http_request_id(r);
        gp.wake_on_done = !p.stream;
        if (g->turn) ns_session_turn_params(g->turn, &gp);
        int st = 0;
        g->choices[i].job = ns_job_submit(g->lm, &gp, &st, err, sizeof err);
        if (!g->choices[i].job) {
            f.status = st ? st : 500;
            if (strstr(err, "context")) f.code = "context_length_exceeded";
            snprintf(f.param, sizeof f.param, "%s", f.status == 400 ? (chat ? "messages" : "prompt") : "");
            snprintf(f.msg, sizeof f.msg, "%s", err);
            goto fail;
        }
        g->n_live++;
        if (i % p.n == 0 && echo[pi]) g->choices[i].echo = echo[pi], echo[pi] = NULL;
        else if (echo[pi] && !(g->choices[i].echo = strdup(echo[pi]))) {
            fail_at(&f, NULL, "out of memory");
            goto fail;
        }
        if (g->choices[i].echo) g->choices[i].offset = strlen(g->choices[i].echo);
    }
    for (int i = 0; i < OA_MAX_CHOICES; i++) {
        free(toks[i]);
        free(echo[i]);
    }
    ns_gen_options_free(&opts);
    free(bias);
    params_free(&p);
    cJSON_Delete(body);
    if (g->stream) {
        ns_http_respond_stream(r, 200, "text/event-stream", stream_fn, stream_done, g);
    } else {
        respond_whole(g);
    }
    return;

fail:
    respond_fail(r, &f);
    for (int i = 0; i < OA_MAX_CHOICES; i++) {
        free(toks[i]);
        free(echo[i]);
    }
    if (opts_init) ns_gen_options_free(&opts);
    free(bias);
    gen_free(g);
    params_free(&p);
    cJSON_Delete(body);
}

void ns_route_v1_chat_completions(ns_server *s, ns_http_req *r) { run_completion(s, r, true); }

void ns_route_v1_completions(ns_server *s, ns_http_req *r) { run_completion(s, r, false); }

/* ---------------------------------------------------------------- models */

static cJSON *model_object(const ns_model_ref *ref) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", ref->name);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)(ref->modified / 1000000000));
    /* Ollama's models belong to their namespace ("library" by default) */
    const char *owner = "nstack";
    ns_model_name nm;
    char err[128];
    if (ref->source == NS_SRC_OLLAMA)
        owner = ns_model_name_parse(ref->name, &nm, err, sizeof err) == 0 && nm.ns[0] ? nm.ns : "library";
    cJSON_AddStringToObject(o, "owned_by", owner);
    return o;
}

void ns_route_v1_models(ns_server *s, ns_http_req *r) {
    const char *path = ns_http_path(r);
    static const char prefix[] = "/v1/models/";
    char err[512];
    if (strncmp(path, prefix, sizeof prefix - 1) == 0 && path[sizeof prefix - 1]) {
        char id[1024];
        percent_decode(path + sizeof prefix - 1, id, sizeof id);
        ns_model_ref ref = {0};
        if (ns_store_resolve(s->store, id, &ref, err, sizeof err) != 0) {
            oa_error(r, 404, "model", "model_not_found", "The model '%s' does not exist", id);
            return;
        }
        ns_http_respond_json(r, 200, model_object(&ref));
        ns_model_ref_clear(&ref);
        return;
    }
    ns_model_ref *refs = NULL;
    int n = 0;
    if (ns_store_list(s->store, &refs, &n, err, sizeof err) != 0) {
        oa_error(r, 500, NULL, NULL, "cannot list models: %s", err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(o, "data");
    for (int i = 0; i < n; i++) {
        cJSON_AddItemToArray(data, model_object(&refs[i]));
        ns_model_ref_clear(&refs[i]);
    }
    free(refs);
    ns_http_respond_json(r, 200, o);
}
