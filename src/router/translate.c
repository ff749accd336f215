/* Translation between Ollama's API and OpenAI's for the router (see
 * translate.h). Requests and whole answers are mapped cJSON to cJSON; a
 * streamed answer is parsed as Server-Sent Events byte by byte, so the
 * upstream's chunking (which may cut a line, a "\r\n" or a UTF-8 sequence
 * anywhere) never shows in the NDJSON lines written. */
#include "router/translate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/duration.h"

/* One SSE line or one JSON body longer than this is not an answer we can
 * use: refusing it keeps a broken upstream from growing memory without end. */
#define TR_MAX_LINE ((size_t)16 << 20)

static void set_err(char *err, size_t errlen, const char *msg) {
    if (err && errlen) snprintf(err, errlen, "%s", msg);
}

/* ---- a growable NUL-terminated byte buffer ---- */

typedef struct {
    char *p;
    size_t len, cap;
} tbuf;

static int tbuf_add(tbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

static int tbuf_str(tbuf *b, const char *s) { return tbuf_add(b, s, strlen(s)); }

static void tbuf_clear(tbuf *b) {
    b->len = 0;
    if (b->p) b->p[0] = 0;
}

/* Appends to the caller's output triple (the stream API's *out). */
static int out_add(char **out, size_t *out_len, size_t *out_cap, const char *s, size_t n) {
    if (*out_len + n + 1 > *out_cap || !*out) {
        size_t cap = *out_cap ? *out_cap : 256;
        while (cap < *out_len + n + 1) cap *= 2;
        char *p = realloc(*out, cap);
        if (!p) return -1;
        *out = p;
        *out_cap = cap;
    }
    memcpy(*out + *out_len, s, n);
    *out_len += n;
    (*out)[*out_len] = 0; /* keeps *out printable for callers that log it */
    return 0;
}

/* Prints o as one NDJSON line onto the output and frees it. */
static int out_line(cJSON *o, char **out, size_t *out_len, size_t *out_cap) {
    if (!o) return -1;
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return -1;
    int rc = out_add(out, out_len, out_cap, s, strlen(s));
    if (rc == 0) rc = out_add(out, out_len, out_cap, "\n", 1);
    free(s);
    return rc;
}

static bool is_chat(ns_front_api api) { return api == NS_FRONT_OPENAI_CHAT || api == NS_FRONT_OLLAMA_CHAT; }

/* ---- prompt text and the force tag ---- */

static int join_text(tbuf *b, bool *first, const char *s) {
    if (!*first && tbuf_add(b, "\n", 1) < 0) return -1;
    *first = false;
    return tbuf_str(b, s);
}

/* Calls fn on every string the model will read as prompt text, in the
 * order it reads them, with the container holding it (for replacement).
 * Returns how many such places exist (-1 when fn failed), so "none" can be
 * told from "empty". */
typedef int (*text_fn)(cJSON *parent, cJSON *item, void *user);

static int for_each_text(cJSON *body, ns_front_api api, text_fn fn, void *user) {
    if (!cJSON_IsObject(body)) return 0;
    int places = 0;
    cJSON *system = cJSON_GetObjectItemCaseSensitive(body, "system");
    /* Ollama's system field reaches the model too (a first system message
     * for chat, the head of the prompt for generate) */
    if ((api == NS_FRONT_OLLAMA_CHAT || api == NS_FRONT_OLLAMA_GENERATE) && cJSON_IsString(system)) {
        places++;
        if (fn(body, system, user) < 0) return -1;
    }
    if (is_chat(api)) {
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
        if (!cJSON_IsArray(msgs)) return places;
        places++;
        cJSON *m;
        cJSON_ArrayForEach(m, msgs) {
            cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
            if (cJSON_IsString(content)) {
                if (fn(m, content, user) < 0) return -1;
            } else if (cJSON_IsArray(content)) {
                cJSON *part;
                cJSON_ArrayForEach(part, content) {
                    cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
                    cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
                    if (cJSON_IsString(type) && strcmp(type->valuestring, "text") == 0 && cJSON_IsString(text) &&
                        fn(part, text, user) < 0)
                        return -1;
                }
            }
        }
        return places;
    }
    cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    if (cJSON_IsString(prompt)) {
        places++;
        if (fn(body, prompt, user) < 0) return -1;
    } else if (api == NS_FRONT_OPENAI_COMPLETIONS && cJSON_IsArray(prompt)) {
        /* an array of prompts (arrays of token ids carry no text to check) */
        places++;
        cJSON *p;
        cJSON_ArrayForEach(p, prompt) {
            if (cJSON_IsString(p) && fn(prompt, p, user) < 0) return -1;
        }
    }
    return places;
}

typedef struct {
    tbuf b;
    bool first;
} join_state;

static int join_fn(cJSON *parent, cJSON *item, void *user) {
    (void)parent;
    join_state *j = user;
    return join_text(&j->b, &j->first, item->valuestring);
}

char *ns_tr_prompt_text(const cJSON *body, ns_front_api api) {
    join_state j = {.first = true};
    /* for_each_text takes a mutable body for ns_tr_strip_tag; join_fn only reads */
    int places = for_each_text((cJSON *)body, api, join_fn, &j);
    if (places <= 0 || tbuf_add(&j.b, "", 0) < 0) {
        free(j.b.p);
        return NULL;
    }
    return j.b.p;
}

/* Removes every occurrence, rescanning from the start so that removing one
 * cannot leave a new one behind ("#force_#force_bigbig"). */
static int remove_all(char *s, const char *tag, size_t tl) {
    int n = 0;
    char *p;
    while ((p = strstr(s, tag))) {
        memmove(p, p + tl, strlen(p + tl) + 1);
        n++;
    }
    return n;
}

typedef struct {
    const char *tag;
    size_t tl;
    int removed;
} strip_state;

static int strip_fn(cJSON *parent, cJSON *item, void *user) {
    strip_state *st = user;
    if (!strstr(item->valuestring, st->tag)) return 0;
    if (!(item->type & cJSON_IsReference)) {
        /* parsed strings are owned by cJSON: shortening in place is safe */
        st->removed += remove_all(item->valuestring, st->tag, st->tl);
        return 0;
    }
    /* a reference points at memory we may not write: replace the item */
    tbuf copy = {0};
    if (tbuf_str(&copy, item->valuestring) < 0) return -1;
    int n = remove_all(copy.p, st->tag, st->tl);
    cJSON *r = cJSON_CreateString(copy.p);
    free(copy.p);
    if (!r) return -1;
    bool ok = item->string ? cJSON_ReplaceItemInObjectCaseSensitive(parent, item->string, r)
                           : cJSON_ReplaceItemViaPointer(parent, item, r);
    if (!ok) {
        cJSON_Delete(r);
        return -1;
    }
    st->removed += n;
    return 0;
}

int ns_tr_strip_tag(cJSON *body, ns_front_api api, const char *tag) {
    if (!tag || !*tag) return 0;
    strip_state st = {.tag = tag, .tl = strlen(tag)};
    for_each_text(body, api, strip_fn, &st);
    return st.removed;
}

/* ---- Ollama request -> OpenAI request ---- */

/* The comma-separated names of what could not be carried, each once. */
static int note_dropped(tbuf *d, const char *name) {
    size_t nl = strlen(name);
    for (const char *p = d->p; p && *p;) {
        const char *end = strstr(p, ", ");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == nl && memcmp(p, name, nl) == 0) return 0;
        if (!end) break;
        p = end + 2;
    }
    if (d->len && tbuf_add(d, ", ", 2) < 0) return -1;
    return tbuf_str(d, name);
}

static bool add_copy(cJSON *o, const char *key, const cJSON *v) {
    cJSON *c = cJSON_Duplicate(v, true);
    if (!c) return false;
    if (!cJSON_AddItemToObject(o, key, c)) {
        cJSON_Delete(c);
        return false;
    }
    return true;
}

/* Ollama's options, in OpenAI's names and a fixed order (so that the same
 * request always gives the same bytes upstream). */
static int map_options(const cJSON *opts, cJSON *o, tbuf *dropped) {
    static const char *const numeric[] = {"temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"};
    const cJSON *v;
    for (size_t i = 0; i < 3; i++) { /* temperature, top_p, seed come before stop */
        v = cJSON_GetObjectItemCaseSensitive(opts, numeric[i]);
        if (cJSON_IsNumber(v) && !add_copy(o, numeric[i], v)) return -1;
    }
    v = cJSON_GetObjectItemCaseSensitive(opts, "stop");
    if (cJSON_IsString(v)) {
        if (!add_copy(o, "stop", v)) return -1;
    } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) > 0) {
        cJSON *stop = cJSON_AddArrayToObject(o, "stop");
        if (!stop) return -1;
        const cJSON *s;
        cJSON_ArrayForEach(s, v) {
            if (!cJSON_IsString(s)) continue;
            cJSON *c = cJSON_CreateString(s->valuestring);
            if (!c || !cJSON_AddItemToArray(stop, c)) {
                cJSON_Delete(c);
                return -1;
            }
        }
    }
    v = cJSON_GetObjectItemCaseSensitive(opts, "num_predict");
    /* a negative num_predict (-1 unlimited, -2 fill the context) is
     * OpenAI's default: no max_tokens */
    if (cJSON_IsNumber(v) && v->valuedouble >= 0) {
        /* whole tokens; the bound keeps the cast defined */
        double mt = v->valuedouble < 9e15 ? (double)(long long)v->valuedouble : 9e15;
        if (!cJSON_AddNumberToObject(o, "max_tokens", mt)) return -1;
    }
    for (size_t i = 3; i < sizeof numeric / sizeof numeric[0]; i++) {
        v = cJSON_GetObjectItemCaseSensitive(opts, numeric[i]);
        if (cJSON_IsNumber(v) && !add_copy(o, numeric[i], v)) return -1;
    }
    /* everything else, and a mapped option of the wrong type, is dropped */
    cJSON_ArrayForEach(v, opts) {
        const char *k = v->string;
        bool mapped = false;
        for (size_t i = 0; i < sizeof numeric / sizeof numeric[0]; i++)
            if (strcmp(k, numeric[i]) == 0) mapped = cJSON_IsNumber(v);
        if (strcmp(k, "num_predict") == 0) mapped = cJSON_IsNumber(v);
        if (strcmp(k, "stop") == 0) mapped = cJSON_IsString(v) || cJSON_IsArray(v);
        if (!mapped && note_dropped(dropped, k) < 0) return -1;
    }
    return 0;
}

static int map_format(const cJSON *format, cJSON *o, tbuf *dropped) {
    if (!format || cJSON_IsNull(format) || (cJSON_IsString(format) && !*format->valuestring)) return 0;
    if (cJSON_IsString(format) && strcmp(format->valuestring, "json") == 0) {
        cJSON *rf = cJSON_AddObjectToObject(o, "response_format");
        return rf && cJSON_AddStringToObject(rf, "type", "json_object") ? 0 : -1;
    }
    if (cJSON_IsObject(format)) {
        cJSON *rf = cJSON_AddObjectToObject(o, "response_format");
        cJSON *js = rf && cJSON_AddStringToObject(rf, "type", "json_schema")
                        ? cJSON_AddObjectToObject(rf, "json_schema")
                        : NULL;
        /* OpenAI requires a name; Ollama's schema has none to give */
        if (!js || !cJSON_AddStringToObject(js, "name", "schema") || !add_copy(js, "schema", format)) return -1;
        return 0;
    }
    return note_dropped(dropped, "format");
}

/* Ollama chat messages as OpenAI's: role and content; images and tool
 * calls have no counterpart the router can produce, so they are dropped. */
static int map_messages(const cJSON *req, const cJSON *msgs, cJSON *o, tbuf *dropped, char *err, size_t errlen) {
    cJSON *out = cJSON_AddArrayToObject(o, "messages");
    if (!out) return -1;
    const cJSON *system = cJSON_GetObjectItemCaseSensitive(req, "system");
    if (cJSON_IsString(system) && *system->valuestring) {
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddItemToArray(out, m)) {
            cJSON_Delete(m);
            return -1;
        }
        if (!cJSON_AddStringToObject(m, "role", "system") ||
            !cJSON_AddStringToObject(m, "content", system->valuestring))
            return -1;
    }
    int i = 0;
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs) {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsObject(msg) || !cJSON_IsString(role)) {
            if (err && errlen) snprintf(err, errlen, "messages[%d] must be an object with a string role", i);
            return -2;
        }
        if (content && !cJSON_IsString(content) && !cJSON_IsNull(content)) {
            if (err && errlen) snprintf(err, errlen, "messages[%d].content must be a string", i);
            return -2;
        }
        cJSON *m = cJSON_CreateObject();
        if (!m || !cJSON_AddItemToArray(out, m)) {
            cJSON_Delete(m);
            return -1;
        }
        if (!cJSON_AddStringToObject(m, "role", role->valuestring) ||
            !cJSON_AddStringToObject(m, "content", cJSON_IsString(content) ? content->valuestring : ""))
            return -1;
        const cJSON *f;
        cJSON_ArrayForEach(f, msg) {
            if (strcmp(f->string, "role") && strcmp(f->string, "content") && note_dropped(dropped, f->string) < 0)
                return -1;
        }
        i++;
    }
    if (cJSON_GetArraySize(out) == 0) {
        set_err(err, errlen, "the request has no messages");
        return -2;
    }
    return 0;
}

cJSON *ns_tr_ollama_to_openai(const cJSON *req, ns_front_api api, const char *model, char **dropped, char *err,
                              size_t errlen) {
    if (dropped) *dropped = NULL;
    if (!cJSON_IsObject(req)) {
        set_err(err, errlen, "the request must be a JSON object");
        return NULL;
    }
    if (api != NS_FRONT_OLLAMA_CHAT && api != NS_FRONT_OLLAMA_GENERATE) {
        set_err(err, errlen, "only Ollama requests (/api/chat, /api/generate) are translated");
        return NULL;
    }
    bool chat = api == NS_FRONT_OLLAMA_CHAT;
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(req, "prompt");
    const cJSON *system = cJSON_GetObjectItemCaseSensitive(req, "system");
    if (chat && !cJSON_IsArray(msgs)) {
        set_err(err, errlen, msgs ? "messages must be an array" : "the request has no messages");
        return NULL;
    }
    if (!chat && prompt && !cJSON_IsString(prompt)) {
        set_err(err, errlen, "prompt must be a string");
        return NULL;
    }
    bool has_system = cJSON_IsString(system) && *system->valuestring;
    if (!chat && (!prompt || (!*prompt->valuestring && !has_system))) {
        set_err(err, errlen, "the request has no prompt");
        return NULL;
    }

    tbuf d = {0};
    cJSON *o = cJSON_CreateObject();
    if (!o || tbuf_add(&d, "", 0) < 0 || !cJSON_AddStringToObject(o, "model", model ? model : "")) goto oom;
    if (chat) {
        int rc = map_messages(req, msgs, o, &d, err, errlen);
        if (rc == -2) goto fail;
        if (rc < 0) goto oom;
    } else {
        tbuf p = {0};
        /* the system text heads the prompt, set apart as a paragraph */
        int rc = tbuf_add(&p, "", 0);
        if (rc == 0 && has_system) rc = tbuf_str(&p, system->valuestring);
        if (rc == 0 && has_system && *prompt->valuestring) rc = tbuf_str(&p, "\n\n");
        if (rc == 0) rc = tbuf_str(&p, prompt->valuestring);
        bool ok = rc == 0 && cJSON_AddStringToObject(o, "prompt", p.p);
        free(p.p);
        if (!ok) goto oom;
    }
    /* Ollama streams unless told not to; OpenAI only when told to */
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(req, "stream");
    bool streaming = cJSON_IsBool(stream) ? cJSON_IsTrue(stream) : true;
    if (!cJSON_AddBoolToObject(o, "stream", streaming)) goto oom;
    if (streaming) {
        cJSON *so = cJSON_AddObjectToObject(o, "stream_options");
        if (!so || !cJSON_AddTrueToObject(so, "include_usage")) goto oom;
    }
    const cJSON *opts = cJSON_GetObjectItemCaseSensitive(req, "options");
    if (cJSON_IsObject(opts) && map_options(opts, o, &d) < 0) goto oom;
    if (map_format(cJSON_GetObjectItemCaseSensitive(req, "format"), o, &d) < 0) goto oom;

    const cJSON *f;
    cJSON_ArrayForEach(f, req) {
        const char *k = f->string;
        if (!strcmp(k, "model") || !strcmp(k, "stream") || !strcmp(k, "format") || !strcmp(k, "system") ||
            !strcmp(k, chat ? "messages" : "prompt") || (!strcmp(k, "options") && cJSON_IsObject(f)))
            continue;
        if (note_dropped(&d, k) < 0) goto oom;
    }
    if (dropped)
        *dropped = d.p;
    else
        free(d.p);
    return o;

oom:
    set_err(err, errlen, "out of memory translating the request");
fail:
    cJSON_Delete(o);
    free(d.p);
    return NULL;
}

/* ---- OpenAI answer -> Ollama answer ---- */

/* The message of an OpenAI-style error object, in the shapes servers use:
 * {"error":{"message":...}} (OpenAI, newer vLLM), {"error":"..."}
 * (llama.cpp's older builds), {"object":"error","message":...} (older
 * vLLM). NULL when o is no error. */
static const char *error_message(const cJSON *o, char *buf, size_t buflen) {
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    const cJSON *obj = cJSON_GetObjectItemCaseSensitive(o, "object");
    if (!e && cJSON_IsString(obj) && strcmp(obj->valuestring, "error") == 0) e = o;
    if (!e || cJSON_IsNull(e)) return NULL;
    if (cJSON_IsString(e)) return e->valuestring;
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (cJSON_IsString(msg) && *msg->valuestring) return msg->valuestring;
    /* an error without a message: show what there is */
    char *s = cJSON_PrintUnformatted(e);
    snprintf(buf, buflen, "the upstream returned an error: %s", s ? s : "(unprintable)");
    free(s);
    return buf;
}

static bool add_int64(cJSON *o, const char *key, int64_t v) {
    /* raw, so that large nanosecond counts keep every digit (cJSON prints
     * big doubles with an exponent, which Go's integer decoding rejects) */
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)v);
    return cJSON_AddRawToObject(o, key, num) != NULL;
}

/* {"model","created_at","message":{"role","content"}} or {...,"response"}:
 * the head every Ollama line shares. */
static cJSON *ollama_head(const char *model, int64_t now_ns, bool chat, const char *text) {
    char ts[64];
    ns_time_format_rfc3339(now_ns, ts, sizeof ts);
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddStringToObject(o, "model", model ? model : "") || !cJSON_AddStringToObject(o, "created_at", ts))
        goto oom;
    if (chat) {
        cJSON *m = cJSON_AddObjectToObject(o, "message");
        if (!m || !cJSON_AddStringToObject(m, "role", "assistant") || !cJSON_AddStringToObject(m, "content", text))
            goto oom;
    } else if (!cJSON_AddStringToObject(o, "response", text)) {
        goto oom;
    }
    return o;
oom:
    cJSON_Delete(o);
    return NULL;
}

static const char *done_reason(const char *finish) {
    /* Ollama knows stop and length; content_filter, tool_calls and the
     * like all mean the model stopped */
    return finish && strcmp(finish, "length") == 0 ? "length" : "stop";
}

/* The tail of a done object; counts < 0 are absent (Ollama omits them). */
static bool add_done(cJSON *o, const char *finish, bool with_total, int64_t total_ns, long long prompt_n,
                     long long gen_n) {
    if (!cJSON_AddTrueToObject(o, "done") || !cJSON_AddStringToObject(o, "done_reason", done_reason(finish)))
        return false;
    if (with_total && !add_int64(o, "total_duration", total_ns)) return false;
    if (prompt_n >= 0 && !add_int64(o, "prompt_eval_count", prompt_n)) return false;
    if (gen_n >= 0 && !add_int64(o, "eval_count", gen_n)) return false;
    return true;
}

static long long usage_count(const cJSON *usage, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(usage, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < 0) return -1;
    return v->valuedouble < 9e15 ? (long long)v->valuedouble : (long long)9e15; /* a defined cast */
}

cJSON *ns_tr_openai_to_ollama(const cJSON *resp, ns_front_api api, const char *front_model, int64_t now_ns,
                              int64_t total_ns, char *err, size_t errlen) {
    if (!cJSON_IsObject(resp)) {
        set_err(err, errlen, "the upstream's answer is not a JSON object");
        return NULL;
    }
    char ebuf[512];
    const char *emsg = error_message(resp, ebuf, sizeof ebuf);
    if (emsg) {
        set_err(err, errlen, emsg);
        return NULL;
    }
    bool chat = api == NS_FRONT_OLLAMA_CHAT || api == NS_FRONT_OPENAI_CHAT;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(resp, "choices");
    const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
    if (!cJSON_IsArray(choices) || !cJSON_IsObject(c0)) {
        set_err(err, errlen, "the upstream's answer is not an OpenAI completion (no choices)");
        return NULL;
    }
    const cJSON *text;
    if (chat) {
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(c0, "message");
        if (!cJSON_IsObject(msg)) {
            set_err(err, errlen, "the upstream's answer is not a chat completion (choices[0] has no message)");
            return NULL;
        }
        text = cJSON_GetObjectItemCaseSensitive(msg, "content");
    } else {
        text = cJSON_GetObjectItemCaseSensitive(c0, "text");
        if (!text) {
            set_err(err, errlen, "the upstream's answer is not a text completion (choices[0] has no text)");
            return NULL;
        }
    }
    /* content is null when a chat answer is only tool calls */
    if (text && !cJSON_IsString(text) && !cJSON_IsNull(text)) {
        set_err(err, errlen, "the upstream's answer has a text that is not a string");
        return NULL;
    }
    const cJSON *finish = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(resp, "usage");
    cJSON *o = ollama_head(front_model, now_ns, chat, cJSON_IsString(text) ? text->valuestring : "");
    if (!o || !add_done(o, cJSON_IsString(finish) ? finish->valuestring : NULL, true, total_ns,
                        usage_count(usage, "prompt_tokens"), usage_count(usage, "completion_tokens"))) {
        cJSON_Delete(o);
        set_err(err, errlen, "out of memory translating the answer");
        return NULL;
    }
    return o;
}

/* ---- streaming: SSE -> NDJSON ---- */

typedef enum {
    MODE_UNKNOWN, /* only whitespace so far */
    MODE_SSE,
    MODE_JSON /* the upstream answered with one JSON body (an error, mostly) */
} stream_mode;

struct ns_tr_stream {
    ns_front_api api;
    bool chat;
    char *model;
    stream_mode mode;
    tbuf line;       /* the current SSE line, without its end */
    bool cr_pending; /* the last byte was \r: a \n right after it ends nothing */
    tbuf data;       /* the current event's data lines, joined by \n */
    bool has_data;
    tbuf body; /* MODE_JSON: the whole body so far */
    bool saw_event;
    char finish[32];           /* the last finish_reason seen */
    long long prompt_n, gen_n; /* from a usage chunk; -1 none */
    bool has_start;
    int64_t start_ns;
    bool done, failed;
    char fail_msg[512];
};

ns_tr_stream *ns_tr_stream_new(ns_front_api api, const char *front_model) {
    ns_tr_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->model = strdup(front_model ? front_model : "");
    if (!s->model) {
        free(s);
        return NULL;
    }
    s->api = api;
    s->chat = is_chat(api);
    s->prompt_n = s->gen_n = -1;
    return s;
}

void ns_tr_stream_set_start(ns_tr_stream *s, int64_t start_ns) {
    s->has_start = true;
    s->start_ns = start_ns;
}

bool ns_tr_stream_done(const ns_tr_stream *s) { return s->done; }

void ns_tr_stream_free(ns_tr_stream *s) {
    if (!s) return;
    free(s->model);
    free(s->line.p);
    free(s->data.p);
    free(s->body.p);
    free(s);
}

typedef struct {
    char **out;
    size_t *len, *cap;
} out_ref;

/* Marks the stream broken: feed returns -1 from now on with the same
 * message, and finish writes nothing (the caller writes the error line). */
static int stream_fail(ns_tr_stream *s, char *err, size_t errlen, const char *msg) {
    s->failed = true;
    snprintf(s->fail_msg, sizeof s->fail_msg, "%s", msg);
    set_err(err, errlen, s->fail_msg);
    return -1;
}

static int emit_error(ns_tr_stream *s, out_ref o, const char *msg) {
    s->done = true;
    cJSON *e = cJSON_CreateObject();
    if (!e || !cJSON_AddStringToObject(e, "error", msg)) {
        cJSON_Delete(e);
        return -1;
    }
    return out_line(e, o.out, o.len, o.cap);
}

static int emit_done(ns_tr_stream *s, out_ref o, int64_t now_ns, bool with_total, int64_t total_ns) {
    s->done = true;
    cJSON *d = ollama_head(s->model, now_ns, s->chat, "");
    if (!d || !add_done(d, s->finish[0] ? s->finish : NULL, with_total, total_ns, s->prompt_n, s->gen_n)) {
        cJSON_Delete(d);
        return -1;
    }
    return out_line(d, o.out, o.len, o.cap);
}

/* One chunk of the SSE stream: a text delta, a finish_reason, usage, or an
 * error in the stream's place. */
static int handle_chunk(ns_tr_stream *s, const cJSON *chunk, int64_t now_ns, out_ref o, char *err, size_t errlen) {
    if (!cJSON_IsObject(chunk))
        return stream_fail(s, err, errlen, "the upstream sent an SSE event that is not a JSON object");
    char ebuf[512];
    const char *emsg = error_message(chunk, ebuf, sizeof ebuf);
    if (emsg) return emit_error(s, o, emsg);

    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(chunk, "usage");
    if (cJSON_IsObject(usage)) {
        long long p = usage_count(usage, "prompt_tokens"), g = usage_count(usage, "completion_tokens");
        if (p >= 0) s->prompt_n = p;
        if (g >= 0) s->gen_n = g;
    }
    /* Ollama has no n: the router never asks for more than one choice, so
     * the first is the answer */
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
    if (!cJSON_IsObject(c0)) return 0; /* the usage chunk has no choices */
    const cJSON *finish = cJSON_GetObjectItemCaseSensitive(c0, "finish_reason");
    if (cJSON_IsString(finish)) snprintf(s->finish, sizeof s->finish, "%s", finish->valuestring);
    const cJSON *text = s->chat
                            ? cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(c0, "delta"), "content")
                            : cJSON_GetObjectItemCaseSensitive(c0, "text");
    /* the first chat chunk carries only the role: no line for it */
    if (!cJSON_IsString(text) || !*text->valuestring) return 0;
    cJSON *line = ollama_head(s->model, now_ns, s->chat, text->valuestring);
    if (!line || !cJSON_AddFalseToObject(line, "done")) {
        cJSON_Delete(line);
        return -1;
    }
    return out_line(line, o.out, o.len, o.cap);
}

static int64_t total_since_start(const ns_tr_stream *s, int64_t now_ns) {
    /* a wall clock stepped back must not give a negative duration */
    return s->has_start && now_ns > s->start_ns ? now_ns - s->start_ns : 0;
}

/* The end of an SSE event (a blank line): its data is one chunk. */
static int dispatch_event(ns_tr_stream *s, int64_t now_ns, out_ref o, char *err, size_t errlen) {
    if (!s->has_data) return 0;
    s->has_data = false;
    const char *d = s->data.p;
    size_t n = s->data.len;
    while (n && (d[n - 1] == ' ' || d[n - 1] == '\t')) n--;
    int rc = 0;
    if (n == 0) {
        /* an empty data field carries nothing */
    } else if (n == 6 && memcmp(d, "[DONE]", 6) == 0) {
        s->saw_event = true;
        if (emit_done(s, o, now_ns, s->has_start, total_since_start(s, now_ns)) < 0) rc = -1;
    } else {
        s->saw_event = true;
        cJSON *chunk = cJSON_ParseWithLengthOpts(d, s->data.len + 1, NULL, true);
        if (!chunk) {
            char msg[200];
            snprintf(msg, sizeof msg, "the upstream sent SSE data that is not JSON: \"%.60s%s\"", d,
                     n > 60 ? "..." : "");
            rc = stream_fail(s, err, errlen, msg);
        } else {
            rc = handle_chunk(s, chunk, now_ns, o, err, errlen);
            cJSON_Delete(chunk);
        }
    }
    tbuf_clear(&s->data);
    return rc;
}

/* One SSE line (without its end), as the SSE spec reads it: a blank line
 * ends the event, ":" starts a comment, "field: value" with one optional
 * space after the colon; only data matters here (event, id and retry are
 * OpenAI-irrelevant). */
static int sse_line(ns_tr_stream *s, int64_t now_ns, out_ref o, char *err, size_t errlen) {
    const char *l = s->line.p ? s->line.p : "";
    size_t n = s->line.len;
    if (n == 0) return dispatch_event(s, now_ns, o, err, errlen);
    if (l[0] == ':') return 0;
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    if (flen != 4 || memcmp(l, "data", 4) != 0) return 0;
    const char *v = colon ? colon + 1 : l + n;
    if (v < l + n && *v == ' ') v++;
    if (s->has_data && tbuf_add(&s->data, "\n", 1) < 0) return -1;
    if (tbuf_add(&s->data, v, (size_t)(l + n - v)) < 0) return -1;
    if (s->data.len > TR_MAX_LINE) return stream_fail(s, err, errlen, "the upstream sent an SSE event over 16 MiB");
    s->has_data = true;
    return 0;
}

static int feed_sse(ns_tr_stream *s, const char *data, size_t len, int64_t now_ns, out_ref o, char *err,
                    size_t errlen) {
    size_t i = 0;
    while (i < len && !s->done && !s->failed) {
        if (s->cr_pending) {
            s->cr_pending = false;
            if (data[i] == '\n') { /* the rest of a \r\n cut between feeds */
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < len && data[j] != '\r' && data[j] != '\n') j++;
        if (tbuf_add(&s->line, data + i, j - i) < 0) return -1;
        if (s->line.len > TR_MAX_LINE) return stream_fail(s, err, errlen, "the upstream sent an SSE line over 16 MiB");
        if (j == len) break; /* the line goes on in the next feed */
        if (data[j] == '\r') {
            if (j + 1 < len && data[j + 1] == '\n')
                j++;
            else if (j + 1 == len)
                s->cr_pending = true;
        }
        i = j + 1;
        int rc = sse_line(s, now_ns, o, err, errlen);
        tbuf_clear(&s->line);
        if (rc < 0) return rc;
    }
    return 0;
}

/* A JSON body instead of a stream: an error (the usual case: a bad model
 * name, a context overflow), or a whole completion from an upstream that
 * ignored stream:true. Parsed once it is complete. */
static int json_body_try(ns_tr_stream *s, int64_t now_ns, bool at_end, out_ref o, char *err, size_t errlen) {
    size_t n = s->body.len;
    while (n && (s->body.p[n - 1] == ' ' || s->body.p[n - 1] == '\t' || s->body.p[n - 1] == '\r' ||
                 s->body.p[n - 1] == '\n'))
        n--;
    if (!at_end && (n == 0 || s->body.p[n - 1] != '}')) return 0; /* cannot be complete yet */
    cJSON *j = cJSON_ParseWithLengthOpts(s->body.p, s->body.len + 1, NULL, true);
    if (!j) {
        if (!at_end) return 0;
        return emit_error(s, o, "the upstream's answer ended before its JSON was complete");
    }
    int rc;
    char ebuf[512];
    const char *emsg = error_message(j, ebuf, sizeof ebuf);
    if (emsg) {
        rc = emit_error(s, o, emsg);
    } else {
        char terr[256];
        cJSON *whole =
            ns_tr_openai_to_ollama(j, s->api, s->model, now_ns, total_since_start(s, now_ns), terr, sizeof terr);
        if (whole) {
            s->done = true;
            rc = out_line(whole, o.out, o.len, o.cap);
        } else {
            char msg[320];
            snprintf(msg, sizeof msg, "the upstream answered with JSON instead of a stream: %.200s", terr);
            rc = at_end ? emit_error(s, o, msg) : stream_fail(s, err, errlen, msg);
        }
    }
    cJSON_Delete(j);
    return rc;
}

int ns_tr_stream_feed(ns_tr_stream *s, const char *data, size_t len, int64_t now_ns, char **out, size_t *out_len,
                      size_t *out_cap, char *err, size_t errlen) {
    if (s->failed) {
        set_err(err, errlen, s->fail_msg);
        return -1;
    }
    if (s->done) return 0; /* after [DONE] or an error: nothing more to say */
    out_ref o = {out, out_len, out_cap};
    if (s->mode == MODE_UNKNOWN) {
        size_t i = 0;
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
        if (i == len) return 0;
        s->mode = data[i] == '{' ? MODE_JSON : MODE_SSE;
        data += i;
        len -= i;
    }
    if (s->mode == MODE_JSON) {
        if (tbuf_add(&s->body, data, len) < 0) goto oom;
        if (s->body.len > TR_MAX_LINE) return stream_fail(s, err, errlen, "the upstream's JSON answer is over 16 MiB");
        if (json_body_try(s, now_ns, false, o, err, errlen) < 0)
            return s->failed ? -1 : stream_fail(s, err, errlen, "out of memory");
        return 0;
    }
    int rc = feed_sse(s, data, len, now_ns, o, err, errlen);
    if (rc < 0 && !s->failed) goto oom;
    return rc;
oom:
    return stream_fail(s, err, errlen, "out of memory translating the stream");
}

int ns_tr_stream_finish(ns_tr_stream *s, int64_t now_ns, int64_t total_ns, char **out, size_t *out_len,
                        size_t *out_cap) {
    if (s->done || s->failed) return 0;
    out_ref o = {out, out_len, out_cap};
    char err[256];
    if (s->mode == MODE_JSON) return json_body_try(s, now_ns, true, o, err, sizeof err);
    /* the end of the body ends its last line and event (the SSE spec would
     * discard an unterminated event; an upstream that closes right after
     * its last data line still said it) */
    int rc = 0;
    if (s->line.len) {
        rc = sse_line(s, now_ns, o, err, sizeof err);
        tbuf_clear(&s->line);
    }
    if (rc == 0 && !s->done) rc = dispatch_event(s, now_ns, o, err, sizeof err);
    /* a malformed tail: there is no later call to report it, so the error
     * line is written here */
    if (rc < 0) return s->failed ? emit_error(s, o, s->fail_msg) : -1;
    if (s->done) return 0;
    if (!s->saw_event) return emit_error(s, o, "the upstream closed its stream without sending an answer");
    return emit_done(s, o, now_ns, true, total_ns);
}
