/* Ollama's /api/generate and /api/chat: request checks, the prompt, a job
 * on the runtime, and the answer as NDJSON lines or one JSON object, with
 * Ollama's field names and nanosecond durations. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gotmpl.h"
#include "nstack/tokenizer.h"
#include "options.h"
#include "prompt.h"
#include "routes.h"
#include "sessions.h"
#include "util/duration.h"
#include "util/log.h"

#define POLL_MS 100
#define NS_PER_MS 1000000LL

/* ---- JSON text ---- */

/* Length of the valid UTF-8 character at s (n bytes left), or 0. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) len = 2, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) len = 3, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) len = 4, cp = c & 0x07;
    else return 0;
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp < 0xE000)) return 0;
    return len;
}

/* A JSON string; bytes that are not UTF-8 become U+FFFD, as Go's encoder
 * writes them, so a model's stray byte never makes an invalid line. */
static void json_str(ns_buf *b, const char *s, size_t n) {
    ns_buf_append(b, "\"", 1);
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        size_t clen = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c == '\n') esc = "\\n";
        else if (c == '\r') esc = "\\r";
        else if (c == '\t') esc = "\\t";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80 && !(clen = utf8_char_len((const unsigned char *)s + i, n - i))) {
            esc = "\\ufffd";
            clen = 1;
        }
        if (esc) {
            ns_buf_append(b, s + i - run, run);
            run = 0;
            ns_buf_append(b, esc, strlen(esc));
        } else {
            run += clen;
        }
        i += clen;
    }
    ns_buf_append(b, s + n - run, run);
    ns_buf_append(b, "\"", 1);
}

static void json_cstr(ns_buf *b, const char *s) { json_str(b, s, strlen(s)); }

/* ---- one generation's state ---- */

typedef struct {
    ns_server *srv;
    bool chat;
    bool with_context; /* /api/generate without raw: the final line carries context */
    char *model;       /* as the client named it; Ollama echoes that */
    int64_t t_start;   /* monotonic, when the request came in */
    int64_t load_ns;
    ns_job *job;
    bool finished;
    ns_session_turn *turn; /* the request's session, or NULL */
    ns_buf said;           /* a streamed chat session's reply, for its history */
} gen_state;

static void turn_free(ns_session_turn *turn) {
    if (!turn) return;
    ns_session_turn_abort(turn);
    free(turn);
}

static void gen_state_free(gen_state *g) {
    if (!g) return;
    if (g->job) ns_job_free(g->job);
    turn_free(g->turn); /* a session still held here did not finish: unchanged */
    ns_buf_free(&g->said);
    free(g->model);
    free(g);
}

static void line_begin(ns_buf *b, const char *model) {
    char ts[64];
    ns_time_format_rfc3339(ns_now_wall(), ts, sizeof ts);
    ns_buf_append(b, "{\"model\":", 9);
    json_cstr(b, model);
    ns_buf_printf(b, ",\"created_at\":\"%s\",", ts);
}

static void add_text(ns_buf *b, bool chat, const char *text, size_t len) {
    if (chat) {
        ns_buf_printf(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        json_str(b, text, len);
        ns_buf_append(b, "}", 1);
    } else {
        ns_buf_printf(b, "\"response\":");
        json_str(b, text, len);
    }
}

static void token_line(ns_buf *b, const gen_state *g, const char *text, size_t len) {
    line_begin(b, g->model);
    add_text(b, g->chat, text, len);
    ns_buf_printf(b, ",\"done\":false}\n");
}

static const char *done_reason(ns_finish f) {
    switch (f) {
    case NS_FINISH_STOP: return "stop";
    case NS_FINISH_LENGTH:
    case NS_FINISH_CONTEXT: return "length";
    default: return NULL;
    }
}

/* The status and message of a generation that did not end normally. */
static int finish_error(const gen_state *g, const ns_job_stats *st, char *msg, size_t len) {
    switch (st->finish) {
    case NS_FINISH_CANCELLED:
        snprintf(msg, len, "%s", atomic_load(&g->srv->stopping) ? "the server is shutting down"
                                                                  : "the generation was cancelled");
        return 503;
    case NS_FINISH_TIMEOUT: snprintf(msg, len, "the generation took longer than the server's request timeout"); return 503;
    default: snprintf(msg, len, "generation failed: %s", *st->error ? st->error : "unknown error"); return 500;
    }
}

/* The last object: the whole text (not streaming) or "" and the stats. */
static void final_object(ns_buf *b, const gen_state *g, const ns_job_stats *st, const char *text, size_t len) {
    line_begin(b, g->model);
    add_text(b, g->chat, text, len);
    ns_buf_printf(b, ",\"done\":true,\"done_reason\":\"%s\"", done_reason(st->finish));
    if (g->with_context) {
        ns_buf_append(b, ",\"context\":[", 12);
        for (int i = 0; i < st->n_context; i++) ns_buf_printf(b, i ? ",%d" : "%d", (int)st->context[i]);
        ns_buf_append(b, "]", 1);
    }
    int64_t total = ns_now_mono() - g->t_start;
    ns_buf_printf(b,
                  ",\"total_duration\":%lld,\"load_duration\":%lld,\"prompt_eval_count\":%d,"
                  "\"prompt_eval_duration\":%lld,\"eval_count\":%d,\"eval_duration\":%lld}",
                  (long long)total, (long long)g->load_ns, st->n_prompt, (long long)st->prompt_eval_ns, st->n_gen,
                  (long long)st->eval_ns);
}

static void error_line(ns_buf *b, const char *msg) {
    ns_buf_append(b, "{\"error\":", 9);
    json_cstr(b, msg);
    ns_buf_append(b, "}\n", 2);
}

/* ---- streaming ---- */

static int stream_fn(void *user, ns_buf *out) {
    gen_state *g = user;
    if (g->finished) return NS_STREAM_END;
    for (;;) {
        ns_job_event ev;
        /* wait for the first event; then take what is ready without waiting */
        int rc = ns_job_next(g->job, &ev, out->len ? 0 : POLL_MS);
        if (rc == 0) {
            if (out->len) return NS_STREAM_MORE;
            continue;
        }
        if (rc < 0) {
            g->finished = true;
            return NS_STREAM_END;
        }
        if (ev.kind == NS_JOB_TOKEN) {
            if (ev.len > 0) token_line(out, g, ev.text, ev.len);
            if (g->turn && ev.len > 0) ns_buf_append(&g->said, ev.text, ev.len);
            ns_job_event_clear(&ev);
            if (out->len >= 16 * 1024) return NS_STREAM_MORE;
            continue;
        }
        /* the session is saved before the client can see the end and send its next turn */
        if (g->turn) ns_session_turn_end(g->turn, &ev.stats, g->said.data, g->said.len);
        if (done_reason(ev.stats.finish)) {
            final_object(out, g, &ev.stats, "", 0);
            ns_buf_append(out, "\n", 1);
        } else {
            char msg[400];
            finish_error(g, &ev.stats, msg, sizeof msg);
            error_line(out, msg);
        }
        ns_job_event_clear(&ev);
        g->finished = true;
        return NS_STREAM_END;
    }
}

/* When the response is over: a client that went away cancels the job. */
static void stream_done(void *user, bool client_gone) {
    gen_state *g = user;
    if (client_gone && !g->finished)
        ns_log_debug("server", "client went away; generation cancelled", "model=\"%s\"", g->model);
    gen_state_free(g);
}

/* Blocks until the job is done, watching for a client that goes away. */
static void respond_blocking(ns_http_req *r, gen_state *g) {
    ns_buf text = {0}, out = {0};
    int64_t last_check = ns_now_mono();
    for (;;) {
        ns_job_event ev;
        int rc = ns_job_next(g->job, &ev, POLL_MS);
        if (rc < 0) {
            ns_http_respond_error(r, 500, "the generation ended without a result");
            break;
        }
        if (rc == 1 && ev.kind == NS_JOB_TOKEN) {
            ns_buf_append(&text, ev.text ? ev.text : "", ev.len);
            ns_job_event_clear(&ev);
        } else if (rc == 1) {
            char msg[400];
            if (g->turn) ns_session_turn_end(g->turn, &ev.stats, text.data, text.len);
            if (done_reason(ev.stats.finish)) {
                final_object(&out, g, &ev.stats, text.data ? text.data : "", text.len);
                ns_http_respond(r, 200, "application/json; charset=utf-8", out.data, out.len);
            } else {
                int status = finish_error(g, &ev.stats, msg, sizeof msg);
                ns_http_respond_error(r, status, "%s", msg);
            }
            ns_job_event_clear(&ev);
            break;
        }
        int64_t now = ns_now_mono();
        if (now - last_check >= POLL_MS * NS_PER_MS) {
            last_check = now;
            if (ns_http_client_gone(r)) {
                /* nobody reads the answer; the status only completes the request */
                ns_job_free(g->job);
                g->job = NULL;
                ns_http_respond_error(r, 499, "the client closed the connection");
                break;
            }
        }
    }
    ns_buf_free(&text);
    ns_buf_free(&out);
    gen_state_free(g);
}

/* ---- request fields ---- */

typedef struct {
    const char *model;
    ns_gen_options opts;
    int64_t keep_alive;
    int json_mode;
    bool stream;
} common_req;

/* Images need a vision model: refused unless the list is empty. */
static int check_no_images(ns_http_req *r, const cJSON *v, const char *where) {
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsArray(v)) {
        ns_http_respond_error(r, 400, "%s must be an array of base64 images", where);
        return -1;
    }
    if (cJSON_GetArraySize(v) > 0) {
        ns_http_respond_error(r, 400, "images are not supported (%s): neurostack runs text models only", where);
        return -1;
    }
    return 0;
}

/* model, stream, keep_alive, format, and options over the Modelfile's
 * params layer. Answers and returns -1 on a bad request. */
static int parse_common(ns_server *s, ns_http_req *r, const cJSON *body, common_req *c) {
    ns_gen_options_init(&c->opts);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (m && !cJSON_IsNull(m) && !cJSON_IsString(m)) {
        ns_http_respond_error(r, 400, "model must be a string");
        return -1;
    }
    if (!m || !cJSON_IsString(m) || !*m->valuestring) {
        ns_http_respond_error(r, 400, "model is required");
        return -1;
    }
    c->model = m->valuestring;
    if (ns_route_get_bool(r, body, "stream", true, &c->stream)) return -1;
    char err[512];
    if (ns_parse_keep_alive(cJSON_GetObjectItemCaseSensitive(body, "keep_alive"), &c->keep_alive, err, sizeof err)) {
        ns_http_respond_error(r, 400, "%s", err);
        return -1;
    }
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, "format");
    c->json_mode = 0;
    if (f && cJSON_IsString(f) && strcmp(f->valuestring, "json") == 0) {
        c->json_mode = 1;
    } else if (f && cJSON_IsObject(f)) {
        /* a JSON schema: the output is held to "an object"; the schema's own
         * constraints are not enforced */
        c->json_mode = 2;
    } else if (f && !cJSON_IsNull(f) && !(cJSON_IsString(f) && !*f->valuestring)) {
        ns_http_respond_error(r, 400, "format must be \"json\" or a JSON schema object");
        return -1;
    }

    /* The Modelfile's PARAMETER values are defaults under the request's. */
    ns_model_ref ref;
    if (ns_store_resolve(s->store, c->model, &ref, err, sizeof err) != 0) {
        ns_route_respond_model_error(r, c->model, strstr(err, "not found") ? 404 : 400, err);
        return -1;
    }
    int rc = 0;
    if (ref.params_json && *ref.params_json) {
        cJSON *params = cJSON_Parse(ref.params_json);
        if (!params || ns_gen_options_apply(&c->opts, params, "the model's params", err, sizeof err) != 0) {
            if (!params) snprintf(err, sizeof err, "the model's params layer is not valid JSON");
            ns_http_respond_error(r, 500, "%s", err);
            rc = -1;
        }
        cJSON_Delete(params);
    }
    ns_model_ref_clear(&ref);
    if (rc) return -1;
    if (ns_gen_options_apply(&c->opts, cJSON_GetObjectItemCaseSensitive(body, "options"), "options", err,
                             sizeof err) != 0) {
        ns_http_respond_error(r, 400, "%s", err);
        return -1;
    }
    return 0;
}

/* No prompt / no messages: load the model (or, with keep_alive 0, unload
 * it) and say so, as Ollama does. */
static void respond_load(ns_server *s, ns_http_req *r, const common_req *c, bool chat) {
    const char *reason = "load";
    if (c->keep_alive == 0) {
        char err[256];
        ns_runtime_unload(s->rt, c->model, err, sizeof err); /* not loaded: nothing to do */
        reason = "unload";
    } else {
        int64_t load_ns = 0;
        int status = 0;
        char err[512];
        ns_loaded *lm = ns_runtime_acquire(s->rt, c->model, &c->opts.load, &load_ns, &status, err, sizeof err);
        if (!lm) {
            ns_route_respond_model_error(r, c->model, status, err);
            return;
        }
        ns_runtime_release(s->rt, lm, c->keep_alive);
    }
    ns_buf b = {0};
    line_begin(&b, c->model);
    add_text(&b, chat, "", 0);
    ns_buf_printf(&b, ",\"done\":true,\"done_reason\":\"%s\"}", reason);
    ns_http_respond(r, 200, "application/json; charset=utf-8", b.data, b.len);
    ns_buf_free(&b);
}

/* Queues the job, gives the model handle back, and answers. Takes the
 * prompt tokens and the session's turn (may be NULL). */
static void run_generation(ns_server *s, ns_http_req *r, ns_loaded *lm, common_req *c, int32_t *toks, int n_toks,
                           ns_session_turn *turn, bool chat, bool with_context, int64_t t_start, int64_t load_ns) {
    ns_gen_params p = {.prompt = toks,
                       .n_prompt = n_toks,
                       .sampling = c->opts.sampling,
                       .stops = (const char *const *)c->opts.stops,
                       .n_stops = c->opts.n_stops,
                       .n_predict = c->opts.n_predict,
                       .json_mode = c->json_mode,
                       .request_id = ns_http_request_id(r),
                       .wake_on_done = !c->stream};
    if (turn) ns_session_turn_params(turn, &p);
    int status = 0;
    char err[512];
    ns_job *job = ns_job_submit(lm, &p, &status, err, sizeof err);
    ns_runtime_release(s->rt, lm, c->keep_alive);
    free(toks);
    if (!job) {
        turn_free(turn);
        ns_http_respond_error(r, status ? status : 500, "%s", err);
        return;
    }
    gen_state *g = calloc(1, sizeof *g);
    if (!g || !(g->model = strdup(c->model))) {
        free(g);
        ns_job_free(job);
        turn_free(turn);
        ns_http_respond_error(r, 500, "out of memory");
        return;
    }
    g->turn = turn;
    g->srv = s;
    g->chat = chat;
    g->with_context = with_context;
    g->t_start = t_start;
    g->load_ns = load_ns;
    g->job = job;
    if (c->stream) ns_http_respond_stream(r, 200, "application/x-ndjson", stream_fn, stream_done, g);
    else respond_blocking(r, g);
}

/* ---- sessions ---- */

/* The request's session: "session" or X-Session-Id. 0 with *id (NULL when
 * none), or -1 after answering 400. */
static int session_id(ns_http_req *r, const cJSON *body, const char **id) {
    char err[512];
    if (ns_session_id_of(r, body, id, err, sizeof err) != 0) {
        ns_http_respond_error(r, 400, "%s", err);
        return -1;
    }
    return 0;
}

/* Holds the session for this request on lm. 0 with *out (NULL without a
 * session), or -1 after answering. */
static int session_begin(ns_server *s, ns_http_req *r, ns_loaded *lm, const char *id, ns_session_kind kind,
                         ns_session_turn **out) {
    *out = NULL;
    if (!id) return 0;
    ns_session_turn *t = calloc(1, sizeof *t);
    if (!t) {
        ns_http_respond_error(r, 500, "out of memory");
        return -1;
    }
    char err[512];
    int status = ns_session_turn_begin(s->sessions, id, lm, kind, ns_http_request_id(r), t, err, sizeof err);
    if (status) {
        free(t);
        ns_http_respond_error(r, status, "%s", err);
        return -1;
    }
    *out = t;
    return 0;
}

/* The request's model, loaded, and the session's turn begun when it names
 * one. NULL after answering (an unknown model, a busy session, ...). */
static ns_loaded *acquire_for_turn(ns_server *s, ns_http_req *r, const common_req *c, const char *sid,
                                   ns_session_kind kind, ns_session_turn **turn, int64_t *load_ns) {
    int status = 0;
    char err[512];
    *load_ns = 0;
    ns_loaded *lm = ns_runtime_acquire(s->rt, c->model, &c->opts.load, load_ns, &status, err, sizeof err);
    if (!lm) {
        ns_route_respond_model_error(r, c->model, status, err);
        return NULL;
    }
    if (session_begin(s, r, lm, sid, kind, turn) != 0) {
        ns_runtime_release(s->rt, lm, c->keep_alive);
        return NULL;
    }
    return lm;
}

/* ---- /api/generate ---- */

/* Text for the model: raw, fill-in-the-middle, or the template's prompt. */
static char *generate_text(ns_http_req *r, ns_loaded *lm, const char *model, const char *prompt, const char *suffix,
                           const char *system, const char *tmpl, bool raw) {
    char err[512];
    int status = 500;
    char *text = NULL;
    if (raw) {
        text = strdup(prompt);
        if (!text) ns_http_respond_error(r, 500, "out of memory");
        return text;
    }
    if (*suffix) {
        const ns_model_ref *ref = ns_loaded_ref(lm);
        const char *t = *tmpl ? tmpl : ref ? ref->template_text : NULL;
        if (!t || !strstr(t, "Suffix")) {
            ns_http_respond_error(r, 400, "%s does not support insert", model);
            return NULL;
        }
        cJSON *data = cJSON_CreateObject();
        cJSON_AddStringToObject(data, "Prompt", prompt);
        cJSON_AddStringToObject(data, "Suffix", suffix);
        cJSON_AddStringToObject(data, "Response", "");
        char *json = cJSON_PrintUnformatted(data);
        cJSON_Delete(data);
        text = json ? ns_gotmpl_render_json(t, json, err, sizeof err) : NULL;
        free(json);
        if (!text) ns_http_respond_error(r, *tmpl ? 400 : 500, "%s", json ? err : "out of memory");
        return text;
    }
    ns_chat_msg msgs[2];
    int n = 0;
    if (*system) msgs[n++] = (ns_chat_msg){.role = "system", .content = system};
    msgs[n++] = (ns_chat_msg){.role = "user", .content = prompt};
    text = ns_prompt_render(lm, msgs, n, *tmpl ? tmpl : NULL, NULL, &status, err, sizeof err);
    if (!text) ns_http_respond_error(r, status, "%s", err);
    return text;
}

/* Checks `context` before the model loads: an array of token ids. */
static int check_context_shape(ns_http_req *r, const cJSON *ctx) {
    if (!ctx || cJSON_IsNull(ctx)) return 0;
    if (!cJSON_IsArray(ctx)) {
        ns_http_respond_error(r, 400, "context must be an array of token ids");
        return -1;
    }
    int i = 0;
    for (const cJSON *t = ctx->child; t; t = t->next, i++) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 0 ||
            t->valuedouble > INT32_MAX) {
            ns_http_respond_error(r, 400, "context[%d] is not a token id", i);
            return -1;
        }
    }
    return 0;
}

/* context tokens first, then the new text's tokens (no second BOS). */
static int context_then_text(ns_http_req *r, ns_loaded *lm, const cJSON *ctx, const char *text, int32_t **out) {
    const ns_vocab *v = ns_loaded_vocab(lm);
    int n_ctx = cJSON_GetArraySize(ctx);
    int32_t n_vocab = ns_vocab_size(v), bos = ns_vocab_bos(v);
    size_t len = strlen(text);
    int n_new = ns_tokenize(v, text, len, false, true, NULL, 0);
    if (n_new < 0) {
        ns_http_respond_error(r, 500, "cannot tokenize the prompt");
        return -1;
    }
    int32_t *toks = malloc(sizeof(int32_t) * (size_t)(n_ctx + n_new + 1));
    if (!toks) {
        ns_http_respond_error(r, 500, "out of memory");
        return -1;
    }
    int k = 0;
    for (const cJSON *t = ctx->child; t; t = t->next, k++) {
        if (t->valuedouble >= n_vocab) {
            ns_http_respond_error(r, 400, "context[%d] is %.0f, not a token of this model (vocabulary of %d)", k,
                                  t->valuedouble, (int)n_vocab);
            free(toks);
            return -1;
        }
        toks[k] = (int32_t)t->valuedouble;
    }
    ns_tokenize(v, text, len, false, true, toks + k, n_new);
    if (n_new > 0 && toks[k] == bos) { /* a template that wrote {{ bos_token }} */
        memmove(toks + k, toks + k + 1, sizeof(int32_t) * (size_t)(n_new - 1));
        n_new--;
    }
    if (k + n_new == 0) {
        free(toks);
        ns_http_respond_error(r, 400, "the prompt is empty");
        return -1;
    }
    *out = toks;
    return k + n_new;
}

void ns_route_api_generate(ns_server *s, ns_http_req *r) {
    int64_t t_start = ns_now_mono();
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    common_req c;
    const char *prompt, *suffix, *system, *tmpl;
    bool raw;
    const cJSON *ctx = cJSON_GetObjectItemCaseSensitive(body, "context");
    const char *sid = NULL;
    ns_session_turn *turn = NULL;
    if (parse_common(s, r, body, &c) || ns_route_get_string(r, body, "prompt", "", &prompt) ||
        ns_route_get_string(r, body, "suffix", "", &suffix) || ns_route_get_string(r, body, "system", "", &system) ||
        ns_route_get_string(r, body, "template", "", &tmpl) || ns_route_get_bool(r, body, "raw", false, &raw) ||
        check_no_images(r, cJSON_GetObjectItemCaseSensitive(body, "images"), "images") ||
        check_context_shape(r, ctx) || session_id(r, body, &sid))
        goto out;
    if (sid && ctx && !cJSON_IsNull(ctx)) {
        ns_http_respond_error(r, 400, "context and session cannot be used together: the session holds the context");
        goto out;
    }
    if (!*prompt) {
        respond_load(s, r, &c, false);
        goto out;
    }
    int64_t load_ns;
    ns_loaded *lm = acquire_for_turn(s, r, &c, sid, NS_SESSION_GENERATE, &turn, &load_ns);
    if (!lm) goto out;
    int status = 0;
    char err[512];
    if (turn && !*system && ns_session_turn_system(turn)) system = ns_session_turn_system(turn);
    char *text = generate_text(r, lm, c.model, prompt, suffix, system, tmpl, raw);
    int32_t *toks = NULL;
    int n = -1;
    if (text && turn) {
        const ns_model_ref *ref = ns_loaded_ref(lm);
        bool with_system = !raw && (*system || (ref && ref->system_text && *ref->system_text));
        status = ns_session_turn_generate(turn, lm, text, with_system, c.opts.n_keep, &toks, &n, err, sizeof err);
        if (status) {
            ns_http_respond_error(r, status, "%s", err);
            n = -1;
        }
    } else if (text && ctx && cJSON_GetArraySize(ctx) > 0) {
        n = context_then_text(r, lm, ctx, text, &toks);
    } else if (text) {
        n = ns_prompt_tokenize(lm, text, &toks, err, sizeof err);
        if (n < 0) ns_http_respond_error(r, 400, "%s", err);
    }
    free(text);
    if (n < 0) {
        turn_free(turn);
        ns_runtime_release(s->rt, lm, c.keep_alive);
        goto out;
    }
    run_generation(s, r, lm, &c, toks, n, turn, false, !raw, t_start, load_ns);
out:
    ns_gen_options_free(&c.opts);
    cJSON_Delete(body);
}

/* ---- /api/chat ---- */

typedef struct {
    ns_chat_msg *msgs;
    int n;
    char **owned; /* printed tool_calls, one slot per message */
    int n_owned;
    char *tools_json;
} chat_input;

static void chat_input_free(chat_input *in) {
    for (int i = 0; i < in->n_owned; i++) free(in->owned[i]);
    free(in->owned);
    free(in->msgs);
    free(in->tools_json);
}

static int parse_messages(ns_http_req *r, const cJSON *body, chat_input *in) {
    memset(in, 0, sizeof *in);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "messages");
    if (arr && !cJSON_IsNull(arr) && !cJSON_IsArray(arr)) {
        ns_http_respond_error(r, 400, "messages must be an array");
        return -1;
    }
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools)) {
            ns_http_respond_error(r, 400, "tools must be an array");
            return -1;
        }
        if (cJSON_GetArraySize(tools) > 0 && !(in->tools_json = cJSON_PrintUnformatted(tools))) goto oom;
    }
    int n = arr ? cJSON_GetArraySize(arr) : 0;
    if (n == 0) return 0;
    in->msgs = calloc((size_t)n, sizeof *in->msgs);
    in->owned = calloc((size_t)n, sizeof *in->owned);
    if (!in->msgs || !in->owned) goto oom;
    in->n_owned = n;
    int i = 0;
    for (const cJSON *m = arr->child; m; m = m->next, i++, in->n++) {
        ns_chat_msg *cm = &in->msgs[i];
        if (!cJSON_IsObject(m)) {
            ns_http_respond_error(r, 400, "messages[%d] must be an object", i);
            return -1;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        const cJSON *tool_name = cJSON_GetObjectItemCaseSensitive(m, "tool_name");
        char where[48];
        snprintf(where, sizeof where, "messages[%d].images", i);
        if (!cJSON_IsString(role) || !*role->valuestring) {
            ns_http_respond_error(r, 400, "messages[%d].role must be a string such as \"user\"", i);
            return -1;
        }
        if (content && !cJSON_IsNull(content) && !cJSON_IsString(content)) {
            ns_http_respond_error(r, 400, "messages[%d].content must be a string", i);
            return -1;
        }
        if (check_no_images(r, cJSON_GetObjectItemCaseSensitive(m, "images"), where)) return -1;
        if (tool_name && !cJSON_IsNull(tool_name) && !cJSON_IsString(tool_name)) {
            ns_http_respond_error(r, 400, "messages[%d].tool_name must be a string", i);
            return -1;
        }
        cm->role = role->valuestring;
        cm->content = cJSON_IsString(content) ? content->valuestring : "";
        cm->name = cJSON_IsString(tool_name) ? tool_name->valuestring : NULL;
        if (calls && !cJSON_IsNull(calls)) {
            if (!cJSON_IsArray(calls)) {
                ns_http_respond_error(r, 400, "messages[%d].tool_calls must be an array", i);
                return -1;
            }
            if (!(in->owned[i] = cJSON_PrintUnformatted(calls))) goto oom;
            cm->tool_calls_json = in->owned[i];
        }
    }
    return 0;
oom:
    ns_http_respond_error(r, 500, "out of memory");
    return -1;
}

void ns_route_api_chat(ns_server *s, ns_http_req *r) {
    int64_t t_start = ns_now_mono();
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    common_req c;
    chat_input in = {0};
    const char *tmpl, *sid = NULL;
    ns_session_turn *turn = NULL;
    if (parse_common(s, r, body, &c) || parse_messages(r, body, &in) ||
        ns_route_get_string(r, body, "template", "", &tmpl) || session_id(r, body, &sid))
        goto out;
    if (in.n == 0) {
        respond_load(s, r, &c, true);
        goto out;
    }
    int64_t load_ns;
    ns_loaded *lm = acquire_for_turn(s, r, &c, sid, NS_SESSION_CHAT, &turn, &load_ns);
    if (!lm) goto out;
    int status = 0;
    char err[512];
    int32_t *toks = NULL;
    int n = -1;
    if (turn) {
        /* the request's messages are the new ones: the session has the rest */
        status = ns_session_turn_chat(turn, lm, in.msgs, in.n, *tmpl ? tmpl : NULL, in.tools_json, c.opts.n_keep,
                                      &toks, &n, err, sizeof err);
        if (status) {
            ns_http_respond_error(r, status, "%s", err);
            n = -1;
        }
    } else {
        char *text =
            ns_prompt_render(lm, in.msgs, in.n, *tmpl ? tmpl : NULL, in.tools_json, &status, err, sizeof err);
        if (!text) {
            ns_http_respond_error(r, status, "%s", err);
        } else {
            n = ns_prompt_tokenize(lm, text, &toks, err, sizeof err);
            if (n < 0) ns_http_respond_error(r, 400, "%s", err);
        }
        free(text);
    }
    if (n < 0) {
        turn_free(turn);
        ns_runtime_release(s->rt, lm, c.keep_alive);
        goto out;
    }
    run_generation(s, r, lm, &c, toks, n, turn, true, false, t_start, load_ns);
out:
    chat_input_free(&in);
    ns_gen_options_free(&c.opts);
    cJSON_Delete(body);
}
