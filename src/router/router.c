/* The router's HTTP front and request path (router.h). A request is
 * classified (signals, estimate), decided by the policy, sent to its
 * upstream and answered; the audit line is written when the answer is over.
 * Everything runs on the client connection's thread (thread per connection
 * in the HTTP layer): the upstream transfer is pumped from there (xfer.h). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "router/router.h"

#include <pcre2.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nstack/model.h"
#include "nstack/tokenizer.h"
#include "router/audit.h"
#include "router/policy.h"
#include "router/translate.h"
#include "router/upstream.h"
#include "router/xfer.h"
#include "server/http.h"
#include "server/server.h"
#include "util/duration.h"
#include "util/log.h"

#define PUMP_MS 50 /* how often a waiting request checks for a client that left */

struct ns_router {
    ns_router_config cfg;
    ns_upstreams *ups;
    ns_audit *audit;
    ns_http_server *http;
    pcre2_code *regex;
    ns_model *tok_model; /* only its vocabulary is used */
    const ns_vocab *vocab;
};

/* ---- classifying a request ---- */

typedef struct {
    ns_front_api api;
    bool stream;
    char front_model[256];
    ns_route_input in;
    ns_route_decision d;
    char first_rule[32]; /* the policy's rule when a fail-soft retry replaced it */
    char mode_why[256];
    char upstream_error[256];
    double upstream_ms; /* a whole answer's time at the upstream, as the router saw it; 0 for streams */
} plan;

static bool front_api_of(const char *path, ns_front_api *api) {
    if (strcmp(path, "/v1/chat/completions") == 0) *api = NS_FRONT_OPENAI_CHAT;
    else if (strcmp(path, "/v1/completions") == 0) *api = NS_FRONT_OPENAI_COMPLETIONS;
    else if (strcmp(path, "/api/chat") == 0) *api = NS_FRONT_OLLAMA_CHAT;
    else if (strcmp(path, "/api/generate") == 0) *api = NS_FRONT_OLLAMA_GENERATE;
    else return false;
    return true;
}

static bool is_ollama(ns_front_api api) { return api == NS_FRONT_OLLAMA_CHAT || api == NS_FRONT_OLLAMA_GENERATE; }

static bool truthy(const char *v) {
    return v && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "yes") == 0);
}

/* Prompt tokens: the small model's tokenizer when configured, else ~4
 * bytes a token (English text in the common BPE vocabularies runs 3.5 to
 * 4.5; the threshold is a rough line, not a limit). */
static long estimate_tokens(const ns_router *r, const char *text) {
    size_t n = strlen(text);
    if (r->vocab) {
        int k = ns_tokenize(r->vocab, text, n, false, false, NULL, 0);
        if (k >= 0) return k;
    }
    return (long)((n + 3) / 4);
}

/* Fills p from the request; strips the force tag from body. */
static void classify(const ns_router *r, cJSON *body, ns_front_api api, const char *force_header_value, plan *p) {
    memset(p, 0, sizeof *p);
    p->api = api;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(body, "stream");
    /* Ollama streams unless told not to; OpenAI only when asked */
    p->stream = is_ollama(api) ? !cJSON_IsFalse(st) : cJSON_IsTrue(st);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    snprintf(p->front_model, sizeof p->front_model, "%s", cJSON_IsString(m) ? m->valuestring : "");
    const ns_router_config *c = &r->cfg;
    p->in.force_header = c->force_header[0] && truthy(force_header_value);
    p->in.force_model = c->force_model[0] && strcmp(p->front_model, c->force_model) == 0;
    if (c->force_tag[0]) p->in.force_tag = ns_tr_strip_tag(body, api, c->force_tag) > 0;
    char *text = ns_tr_prompt_text(body, api);
    const char *t = text ? text : "";
    p->in.est_tokens = estimate_tokens(r, t);
    if (r->regex) {
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(r->regex, NULL);
        p->in.regex_match = md && pcre2_match(r->regex, (PCRE2_SPTR)t, strlen(t), 0, 0, md, NULL) >= 0;
        pcre2_match_data_free(md);
    }
    free(text);
    p->in.mode = ns_upstreams_mode(r->ups, p->mode_why, sizeof p->mode_why);
    p->in.small_healthy = ns_upstream_healthy(r->ups, c->small);
    p->in.big_healthy = ns_upstream_healthy(r->ups, c->big);
    ns_route_decide(c, &p->in, &p->d);
}

static cJSON *plan_json(const ns_router *r, const plan *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "rule", p->d.rule);
    if (p->first_rule[0]) cJSON_AddStringToObject(o, "first_rule", p->first_rule);
    cJSON_AddStringToObject(o, "reason", p->d.reason);
    const ns_upstream_config *up = p->d.upstream >= 0 ? &r->cfg.upstreams[p->d.upstream] : NULL;
    if (up) {
        cJSON_AddStringToObject(o, "upstream", up->name);
        cJSON_AddStringToObject(o, "role", ns_upstream_role_name(up->role));
        cJSON_AddStringToObject(o, "upstream_model", up->model);
    } else {
        cJSON_AddNullToObject(o, "upstream");
    }
    cJSON *sig = cJSON_AddObjectToObject(o, "signals");
    cJSON_AddBoolToObject(sig, "header", p->in.force_header);
    cJSON_AddBoolToObject(sig, "model", p->in.force_model);
    cJSON_AddBoolToObject(sig, "tag", p->in.force_tag);
    cJSON_AddBoolToObject(sig, "regex", p->in.regex_match);
    cJSON_AddStringToObject(o, "mode", ns_node_mode_name(p->in.mode));
    if (p->mode_why[0]) cJSON_AddStringToObject(o, "mode_error", p->mode_why);
    cJSON_AddNumberToObject(o, "estimate", (double)p->in.est_tokens);
    cJSON_AddStringToObject(o, "estimator", r->vocab ? "tokenizer" : "bytes/4");
    cJSON_AddNumberToObject(o, "threshold", r->cfg.token_threshold);
    cJSON *h = cJSON_AddObjectToObject(o, "healthy");
    cJSON_AddBoolToObject(h, "small", p->in.small_healthy);
    cJSON_AddBoolToObject(h, "big", p->in.big_healthy);
    return o;
}

/* ---- setup shared by the server and --explain ---- */

static int setup(ns_router *r, const ns_router_config *cfg, bool one_shot, char *err, size_t errlen) {
    r->cfg = *cfg;
    if (cfg->force_regex[0]) {
        int code;
        PCRE2_SIZE off;
        r->regex = pcre2_compile((PCRE2_SPTR)cfg->force_regex, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &code, &off, NULL);
        if (!r->regex) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(code, msg, sizeof msg);
            snprintf(err, errlen, "router.force.regex: %s at offset %zu", (const char *)msg, (size_t)off);
            return -1;
        }
        pcre2_jit_compile(r->regex, PCRE2_JIT_COMPLETE); /* faster when the JIT exists; fine without */
    }
    if (cfg->tokenizer[0]) {
        char why[512];
        r->tok_model = ns_model_load_ex(cfg->tokenizer, NS_GGUF_MMAP, why, sizeof why);
        r->vocab = r->tok_model ? ns_model_vocab(r->tok_model) : NULL;
        if (!r->vocab) {
            snprintf(err, errlen, "router.tokenizer: cannot use %.300s: %s", cfg->tokenizer,
                     r->tok_model ? "it has no tokenizer" : why);
            return -1;
        }
    }
    /* the config lives in r from here, so the thread may keep a pointer */
    if (!(r->ups = ns_upstreams_start(&r->cfg, one_shot, err, errlen))) return -1;
    return 0;
}

static void teardown(ns_router *r) {
    ns_upstreams_stop(r->ups);
    ns_audit_close(r->audit);
    if (r->regex) pcre2_code_free(r->regex);
    ns_model_free(r->tok_model);
    free(r);
}

/* ---- answering ---- */

static void add_route_headers(ns_http_req *req, const ns_router *r, const plan *p) {
    ns_http_add_header(req, "X-Route-Rule", p->d.rule);
    if (p->d.upstream >= 0) ns_http_add_header(req, "X-Route-Upstream", r->cfg.upstreams[p->d.upstream].name);
}

static void audit(ns_router *r, ns_http_req *req, const plan *p, int status, int64_t t0, int64_t first_byte,
                  size_t bytes, const char *error) {
    cJSON *o = plan_json(r, p);
    char when[40];
    ns_time_format_rfc3339(ns_now_wall(), when, sizeof when);
    cJSON_AddStringToObject(o, "time", when);
    cJSON_AddStringToObject(o, "request_id", req ? ns_http_request_id(req) : "");
    cJSON_AddStringToObject(o, "path", req ? ns_http_path(req) : "");
    cJSON_AddStringToObject(o, "model", p->front_model);
    cJSON_AddBoolToObject(o, "stream", p->stream);
    cJSON_AddNumberToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "latency_ms", (double)(ns_now_mono() - t0) / 1e6);
    if (first_byte) cJSON_AddNumberToObject(o, "first_byte_ms", (double)(first_byte - t0) / 1e6);
    /* the router's own share of a whole answer: latency_ms - upstream_ms */
    if (p->upstream_ms > 0) cJSON_AddNumberToObject(o, "upstream_ms", p->upstream_ms);
    cJSON_AddNumberToObject(o, "bytes", (double)bytes);
    if (p->upstream_error[0]) cJSON_AddStringToObject(o, "upstream_error", p->upstream_error);
    if (error && *error) cJSON_AddStringToObject(o, "error", error);
    ns_audit_write(r->audit, o);
    cJSON_Delete(o);
}

/* The request body for upstream i; *translated when it was rewritten to
 * OpenAI's API (an Ollama request to an openai-kind node). */
static char *upstream_body(const ns_router *r, cJSON *body, const plan *p, int i, const char **path, bool *translated,
                           char *err, size_t errlen) {
    const ns_upstream_config *up = &r->cfg.upstreams[i];
    *translated = false;
    if (up->kind == NS_UPSTREAM_OPENAI && is_ollama(p->api)) {
        char *dropped = NULL;
        cJSON *t = ns_tr_ollama_to_openai(body, p->api, up->model, &dropped, err, errlen);
        if (!t) return NULL;
        if (dropped && *dropped)
            ns_log_debug("router", "fields the upstream's API has no room for", "upstream=%s dropped=\"%s\"", up->name,
                         dropped);
        free(dropped);
        /* the translation keeps the stream choice the policy saw */
        cJSON_DeleteItemFromObjectCaseSensitive(t, "stream");
        cJSON_AddBoolToObject(t, "stream", p->stream);
        char *text = cJSON_PrintUnformatted(t);
        cJSON_Delete(t);
        *path = p->api == NS_FRONT_OLLAMA_CHAT ? "/v1/chat/completions" : "/v1/completions";
        *translated = true;
        return text;
    }
    cJSON_DeleteItemFromObjectCaseSensitive(body, "model");
    cJSON_AddStringToObject(body, "model", up->model);
    return cJSON_PrintUnformatted(body);
}

typedef enum { SENT_NOTHING, ANSWERED } outcome;

/* A failure the small node can take over: no answer, or the big node
 * answering 5xx before any byte reached the client. */
static bool retryable(const ns_xfer *x) { return x->status == 0 || x->status >= 500; }

/* ---- streaming ---- */

typedef struct {
    ns_router *r;
    ns_http_req *req;
    plan p;
    ns_xfer x;
    char *body; /* the upstream request's, alive for the transfer */
    ns_tr_stream *tr;
    int64_t t0, first_byte;
    size_t sent;
    char last;  /* the last byte sent, to start an error on a new line */
    bool ended;
    char error[256];
} stream_state;

static void stream_error(stream_state *s, ns_buf *out, const char *msg) {
    snprintf(s->error, sizeof s->error, "%s", msg);
    if (s->last && s->last != '\n') ns_buf_append(out, "\n", 1);
    cJSON *e = cJSON_CreateObject();
    if (is_ollama(s->p.api)) {
        cJSON_AddStringToObject(e, "error", msg);
        char *t = cJSON_PrintUnformatted(e);
        ns_buf_printf(out, "%s\n", t ? t : "{}");
        free(t);
    } else {
        cJSON *inner = cJSON_AddObjectToObject(e, "error");
        cJSON_AddStringToObject(inner, "message", msg);
        cJSON_AddStringToObject(inner, "type", "upstream_error");
        char *t = cJSON_PrintUnformatted(e);
        ns_buf_printf(out, "data: %s\n\n", t ? t : "{}");
        free(t);
    }
    cJSON_Delete(e);
}

static int stream_fn(void *user, ns_buf *out) {
    stream_state *s = user;
    if (s->ended) return NS_STREAM_END;
    ns_xfer *x = &s->x;
    if (x->len == 0 && !x->finished) ns_xfer_pump(x, PUMP_MS * 5);
    if (x->len) {
        if (s->tr) {
            char *t = NULL;
            size_t tl = 0, tc = 0;
            char err[256];
            int rc = ns_tr_stream_feed(s->tr, x->data, x->len, ns_now_wall(), &t, &tl, &tc, err, sizeof err);
            if (tl) ns_buf_append(out, t, tl);
            free(t);
            if (rc != 0) {
                char msg[400];
                snprintf(msg, sizeof msg, "upstream %s sent a stream the router cannot read: %s",
                         s->r->cfg.upstreams[s->p.d.upstream].name, err);
                stream_error(s, out, msg);
                s->ended = true;
            }
        } else {
            ns_buf_append(out, x->data, x->len);
        }
        ns_xfer_consume(x, x->len);
    }
    if (!s->ended && x->finished && x->len == 0) {
        s->ended = true;
        if (x->error[0]) {
            char msg[400];
            snprintf(msg, sizeof msg, "upstream %s failed mid-stream: %s", s->r->cfg.upstreams[s->p.d.upstream].name,
                     x->error);
            ns_upstream_mark_down(s->r->ups, s->p.d.upstream, x->error);
            stream_error(s, out, msg);
        } else if (s->tr && !ns_tr_stream_done(s->tr)) {
            char *t = NULL;
            size_t tl = 0, tc = 0;
            ns_tr_stream_finish(s->tr, ns_now_wall(), ns_now_mono() - s->t0, &t, &tl, &tc);
            if (tl) ns_buf_append(out, t, tl);
            free(t);
        }
    }
    if (out->len) {
        s->sent += out->len;
        s->last = out->data[out->len - 1];
    }
    return out->len || !s->ended ? NS_STREAM_MORE : NS_STREAM_END;
}

static void stream_done(void *user, bool client_gone) {
    stream_state *s = user;
    const char *err = s->error[0] ? s->error : client_gone ? "the client went away" : NULL;
    audit(s->r, s->req, &s->p, 200, s->t0, s->first_byte, s->sent, err);
    ns_xfer_end(&s->x);
    ns_tr_stream_free(s->tr);
    free(s->body);
    free(s);
}

/* ---- one attempt on one upstream ---- */

static void drop(stream_state *s) {
    ns_xfer_end(&s->x);
    free(s->body);
    free(s);
}

/* Sends the request to p->d.upstream and answers the client, unless the
 * upstream failed before anything was sent (SENT_NOTHING: the caller may
 * fail soft; p->upstream_error says why). */
static outcome attempt(ns_router *r, ns_http_req *req, cJSON *body, plan *p, int64_t t0) {
    int i = p->d.upstream;
    const ns_upstream_config *up = &r->cfg.upstreams[i];
    const char *path = ns_http_path(req);
    bool translated;
    char err[256];
    char *text = upstream_body(r, body, p, i, &path, &translated, err, sizeof err);
    if (!text) {
        add_route_headers(req, r, p);
        ns_http_respond_error(req, 400, "%s", err);
        audit(r, req, p, 400, t0, 0, 0, err);
        return ANSWERED;
    }
    char url[1024], auth[300], rid[80];
    snprintf(url, sizeof url, "%s%s", up->url, path);
    const char *headers[3] = {"Content-Type: application/json", rid, auth};
    snprintf(rid, sizeof rid, "X-Request-Id: %s", ns_http_request_id(req));
    int n_headers = 2;
    if (up->api_key[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", up->api_key);
        n_headers = 3;
    }
    stream_state *s = calloc(1, sizeof *s);
    if (!s) {
        free(text);
        ns_http_respond_error(req, 500, "out of memory");
        return ANSWERED;
    }
    s->r = r;
    s->req = req;
    s->p = *p;
    s->body = text;
    s->t0 = t0;
    ns_xfer *x = &s->x;
    int64_t sent_at = ns_now_mono();
    ns_xfer_start(x, url, text, strlen(text), headers, n_headers, up->connect_timeout_ns, up->timeout_ns);
    /* the first byte: headers within first_byte_timeout, the client still there */
    int64_t deadline = ns_now_mono() + up->first_byte_timeout_ns;
    while (!x->headers_done && !x->finished) {
        if (ns_http_client_gone(req)) {
            audit(r, req, p, 499, t0, 0, 0, "the client went away before the upstream answered");
            drop(s);
            return ANSWERED;
        }
        if (ns_now_mono() > deadline) {
            snprintf(x->error, sizeof x->error, "no answer within the first-byte timeout");
            x->finished = true;
            break;
        }
        ns_xfer_pump(x, PUMP_MS);
    }
    /* a stream that started well is passed on as it comes */
    if (x->headers_done && x->status == 200 && p->stream && !x->error[0]) {
        s->first_byte = ns_now_mono();
        if (translated && (s->tr = ns_tr_stream_new(p->api, p->front_model)) != NULL)
            ns_tr_stream_set_start(s->tr, ns_now_wall() - (ns_now_mono() - t0)); /* feeds take wall times */
        add_route_headers(req, r, p);
        const char *ct = translated ? "application/x-ndjson"
                         : x->content_type[0] ? x->content_type
                                              : (is_ollama(p->api) ? "application/x-ndjson" : "text/event-stream");
        ns_http_respond_stream(req, 200, ct, stream_fn, stream_done, s);
        return ANSWERED;
    }
    /* anything else is read whole first, so a failure can still go elsewhere */
    while (!x->finished) {
        if (ns_http_client_gone(req)) {
            audit(r, req, p, 499, t0, 0, x->received, "the client went away");
            drop(s);
            return ANSWERED;
        }
        ns_xfer_pump(x, PUMP_MS);
    }
    p->upstream_ms = (double)(ns_now_mono() - sent_at) / 1e6;
    if (x->error[0] || (retryable(x) && up->role == NS_ROLE_BIG)) {
        if (x->error[0]) {
            snprintf(p->upstream_error, sizeof p->upstream_error, "%s", x->error);
            ns_upstream_mark_down(r->ups, i, x->error);
        } else {
            snprintf(p->upstream_error, sizeof p->upstream_error, "%s answered %ld", up->name, x->status);
        }
        drop(s);
        return SENT_NOTHING;
    }
    add_route_headers(req, r, p);
    if (translated && x->status == 200) {
        cJSON *resp = cJSON_ParseWithLength(x->data ? x->data : "", x->len);
        cJSON *o = resp ? ns_tr_openai_to_ollama(resp, p->api, p->front_model, ns_now_wall(), ns_now_mono() - t0, err,
                                                  sizeof err)
                        : NULL;
        cJSON_Delete(resp);
        if (!o) {
            ns_http_respond_error(req, 502, "upstream %s answered something the router cannot read: %s", up->name,
                                  resp ? err : "not JSON");
            audit(r, req, p, 502, t0, 0, x->received, "unreadable upstream answer");
        } else {
            ns_http_respond_json(req, 200, o);
            audit(r, req, p, 200, t0, 0, x->received, NULL);
        }
    } else {
        ns_http_respond(req, (int)x->status, x->content_type[0] ? x->content_type : "application/json",
                        x->data ? x->data : "", x->len);
        audit(r, req, p, (int)x->status, t0, 0, x->received, NULL);
    }
    drop(s);
    return ANSWERED;
}

static void route_request(ns_router *r, ns_http_req *req, ns_front_api api) {
    int64_t t0 = ns_now_mono();
    size_t len;
    const char *text = ns_http_body(req, &len);
    cJSON *body = cJSON_ParseWithLength(text, len);
    if (!cJSON_IsObject(body)) {
        cJSON_Delete(body);
        ns_http_respond_error(req, 400, "request body must be a JSON object");
        return;
    }
    plan p;
    const char *hv = r->cfg.force_header[0] ? ns_http_header(req, r->cfg.force_header) : NULL;
    classify(r, body, api, hv, &p);
    for (int tries = 0; tries < 2; tries++) {
        if (p.d.upstream < 0) {
            add_route_headers(req, r, &p);
            ns_http_respond_error(req, 503, "no upstream can take this request: %s", p.d.reason);
            audit(r, req, &p, 503, t0, 0, 0, p.d.reason);
            break;
        }
        if (attempt(r, req, body, &p, t0) == ANSWERED) break;
        /* the chosen node failed before answering: fail soft to small */
        const ns_upstream_config *failed = &r->cfg.upstreams[p.d.upstream];
        if (failed->role == NS_ROLE_BIG && ns_upstream_healthy(r->ups, r->cfg.small)) {
            snprintf(p.first_rule, sizeof p.first_rule, "%s", p.d.rule);
            p.d.upstream = r->cfg.small;
            p.d.rule = "fail_soft";
            snprintf(p.d.reason, sizeof p.d.reason, "the big node failed before answering (%.180s): small",
                     p.upstream_error);
            continue;
        }
        add_route_headers(req, r, &p);
        ns_http_respond_error(req, 502, "upstream %s failed: %s", failed->name, p.upstream_error);
        audit(r, req, &p, 502, t0, 0, 0, p.upstream_error);
        break;
    }
    cJSON_Delete(body);
}

/* ---- the other routes ---- */

static void route_models(ns_router *r, ns_http_req *req, bool ollama) {
    cJSON *o = cJSON_CreateObject();
    cJSON *list = ollama ? cJSON_AddArrayToObject(o, "models") : NULL;
    if (!ollama) {
        cJSON_AddStringToObject(o, "object", "list");
        list = cJSON_AddArrayToObject(o, "data");
    }
    /* what a client may ask for: each node's model, and the force alias */
    const char *names[NS_ROUTER_MAX_UPSTREAMS + 1];
    int n = 0;
    for (int i = 0; i < r->cfg.n_upstreams; i++) names[n++] = r->cfg.upstreams[i].model;
    if (r->cfg.force_model[0]) names[n++] = r->cfg.force_model;
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        if (ollama) {
            cJSON_AddStringToObject(m, "name", names[i]);
            cJSON_AddStringToObject(m, "model", names[i]);
        } else {
            cJSON_AddStringToObject(m, "id", names[i]);
            cJSON_AddStringToObject(m, "object", "model");
            cJSON_AddStringToObject(m, "owned_by", "nstack-router");
        }
        cJSON_AddItemToArray(list, m);
    }
    ns_http_respond_json(req, 200, o);
}

static void route_health(ns_router *r, ns_http_req *req) {
    cJSON *o = cJSON_CreateObject();
    char why[256];
    ns_node_mode mode = ns_upstreams_mode(r->ups, why, sizeof why);
    bool any = false;
    cJSON *ups = cJSON_AddArrayToObject(o, "upstreams");
    for (int i = 0; i < r->cfg.n_upstreams; i++) {
        ns_upstream_health h;
        ns_upstream_health_of(r->ups, i, &h);
        any = any || h.healthy;
        cJSON *u = cJSON_CreateObject();
        cJSON_AddStringToObject(u, "name", r->cfg.upstreams[i].name);
        cJSON_AddStringToObject(u, "role", ns_upstream_role_name(r->cfg.upstreams[i].role));
        cJSON_AddStringToObject(u, "kind", ns_upstream_kind_name(r->cfg.upstreams[i].kind));
        cJSON_AddStringToObject(u, "url", r->cfg.upstreams[i].url);
        cJSON_AddBoolToObject(u, "healthy", h.healthy);
        cJSON_AddNumberToObject(u, "failures", h.failures);
        if (h.error[0]) cJSON_AddStringToObject(u, "error", h.error);
        cJSON_AddItemToArray(ups, u);
    }
    cJSON_AddStringToObject(o, "status", any ? "ok" : "no healthy upstream");
    cJSON_AddStringToObject(o, "mode", ns_node_mode_name(mode));
    if (why[0]) cJSON_AddStringToObject(o, "mode_error", why);
    cJSON_AddStringToObject(o, "audit_log", ns_audit_path(r->audit));
    ns_http_respond_json(req, any ? 200 : 503, o);
}

static void dispatch(void *app, ns_http_req *req) {
    ns_router *r = app;
    const char *method = ns_http_method(req), *path = ns_http_path(req);
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    ns_front_api api;
    if (front_api_of(path, &api)) {
        ns_http_set_route(req, path);
        if (strcmp(method, "POST") == 0) route_request(r, req, api);
        else ns_http_respond_error(req, 405, "method %s is not allowed for %s (allowed: POST)", method, path);
    } else if (get && strcmp(path, "/v1/models") == 0) {
        route_models(r, req, false);
    } else if (get && strcmp(path, "/api/tags") == 0) {
        route_models(r, req, true);
    } else if (get && (strcmp(path, "/health") == 0 || strcmp(path, "/") == 0)) {
        route_health(r, req);
    } else if (get && strcmp(path, "/api/version") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "version", NSTACK_VERSION);
        ns_http_respond_json(req, 200, o);
    } else {
        ns_http_respond_error(req, 404, "not found: %s %s (the router serves /v1/chat/completions, /v1/completions, "
                                        "/v1/models, /api/chat, /api/generate, /api/tags, /health)", method, path);
    }
}

ns_router *ns_router_start(const ns_router_config *cfg, char *err, size_t errlen) {
    ns_router *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    char host[256];
    int port;
    if (!(r->audit = ns_audit_open(cfg->audit_log, cfg->audit_max_size, err, errlen)) || setup(r, cfg, false, err, errlen) != 0 ||
        ns_server_parse_host(cfg->listen, host, sizeof host, &port, err, errlen) != 0)
        goto fail;
    ns_http_config hc = {.host = host, .port = port, .max_body = 32u << 20};
    if (!(r->http = ns_http_server_start(&hc, dispatch, r, err, errlen))) goto fail;
    ns_log_info("router", "listening", "url=http://%s:%d small=%s big=%s audit=\"%s\"", host,
                ns_http_server_port(r->http), r->cfg.upstreams[r->cfg.small].name, r->cfg.upstreams[r->cfg.big].name,
                ns_audit_path(r->audit));
    return r;
fail:
    teardown(r);
    return NULL;
}

int ns_router_port(const ns_router *r) { return ns_http_server_port(r->http); }

void ns_router_stop(ns_router *r) {
    if (!r) return;
    ns_http_server_quiesce(r->http);
    ns_http_server_wait_idle(r->http, 5LL * 1000000000);
    ns_http_server_stop(r->http);
    teardown(r);
}

int ns_router_explain(const ns_router_config *cfg, const char *path, const char *body, const char *const *headers,
                      int n_headers, cJSON **out, char *err, size_t errlen) {
    *out = NULL;
    ns_front_api api;
    if (!front_api_of(path, &api)) {
        snprintf(err, errlen, "%s is not a route the router decides on (/v1/chat/completions, /v1/completions, "
                 "/api/chat, /api/generate)", path);
        return -1;
    }
    cJSON *b = cJSON_Parse(body ? body : "");
    if (!cJSON_IsObject(b)) {
        cJSON_Delete(b);
        snprintf(err, errlen, "the request body must be a JSON object");
        return -1;
    }
    ns_router *r = calloc(1, sizeof *r);
    if (!r || setup(r, cfg, true, err, errlen) != 0) {
        cJSON_Delete(b);
        if (r) teardown(r);
        else snprintf(err, errlen, "out of memory");
        return -1;
    }
    const char *hv = NULL;
    size_t hl = strlen(cfg->force_header);
    for (int i = 0; i < n_headers && hl; i++)
        if (strncasecmp(headers[i], cfg->force_header, hl) == 0 && headers[i][hl] == ':') {
            hv = headers[i] + hl + 1;
            while (*hv == ' ') hv++;
        }
    plan p;
    classify(r, b, api, hv, &p);
    *out = plan_json(r, &p);
    cJSON_AddBoolToObject(*out, "stream", p.stream);
    cJSON_Delete(b);
    teardown(r);
    return 0;
}
