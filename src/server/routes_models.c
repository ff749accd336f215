/* Model management and information routes, in Ollama's JSON shapes:
 * /api/tags, /api/ps, /api/show, /api/version, /api/pull, /api/delete,
 * /api/copy, and our /api/load, /api/unload and /health. */
#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/types.h"
#include "nstack/gguf.h"
#include "options.h"
#include "routes.h"
#include "runtime/pull.h"
#include "util/duration.h"
#include "util/log.h"

/* Arrays longer than this show as null in /api/show unless "verbose" (Ollama does the same). */
#define SHOW_MAX_ARRAY 1024

/* ---- small JSON helpers ---- */

/* cJSON prints numbers as doubles; sizes and nanosecond counts must stay exact. */

static cJSON *raw_i64(int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return cJSON_CreateRaw(buf);
}

static cJSON *raw_u64(uint64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(buf);
}

/* A float32 in its shortest round-tripping form (1e-05, not 9.99999974737875e-06). */
static cJSON *raw_f32(double v) {
    char buf[48];
    if (v != v || v - v != 0) return cJSON_CreateNull(); /* NaN, inf: not JSON */
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if ((float)strtod(buf, NULL) == (float)v) break;
    }
    return cJSON_CreateRaw(buf);
}

static cJSON *raw_f64(double v) {
    char buf[48];
    if (v != v || v - v != 0) return cJSON_CreateNull();
    snprintf(buf, sizeof buf, "%.17g", v);
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    return cJSON_CreateRaw(buf);
}


/* "sha256:<hex>" -> "<hex>" (Ollama's API shows digests bare) */
static const char *bare_digest(const char *d) { return strncmp(d, "sha256:", 7) == 0 ? d + 7 : d; }

/* The request's model name: "model", or the older "name". NULL after answering 400. */
static const char *model_field(ns_http_req *r, const cJSON *body) {
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
    if (!m || cJSON_IsNull(m)) m = cJSON_GetObjectItemCaseSensitive(body, "name");
    if (!m || cJSON_IsNull(m) || (cJSON_IsString(m) && !*m->valuestring)) {
        ns_http_respond_error(r, 400, "model is required");
        return NULL;
    }
    if (!cJSON_IsString(m)) {
        ns_http_respond_error(r, 400, "model must be a string");
        return NULL;
    }
    return m->valuestring;
}

/* A status for a store error message: unknown names are 404, the rest 400. */
static int store_error_status(const char *err) { return strstr(err, "not found") ? 404 : 400; }

/* ---- GGUF facts for details and model_info ---- */

typedef struct {
    char family[64];
    char quant[32];
    uint64_t n_params;
} model_facts;

/* llama.cpp's llama_ftype numbers, as general.file_type stores them. */
static const char *file_type_name(uint32_t ft) {
    static const char *const names[] = {
        [0] = "F32",     [1] = "F16",      [2] = "Q4_0",    [3] = "Q4_1",    [7] = "Q8_0",    [8] = "Q5_0",
        [9] = "Q5_1",    [10] = "Q2_K",    [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S",
        [15] = "Q4_K_M", [16] = "Q5_K_S",  [17] = "Q5_K_M", [18] = "Q6_K",   [19] = "IQ2_XXS", [20] = "IQ2_XS",
        [21] = "Q2_K_S", [22] = "IQ3_XS",  [23] = "IQ3_XXS", [24] = "IQ1_S", [25] = "IQ4_NL", [26] = "IQ3_S",
        [27] = "IQ3_M",  [28] = "IQ2_S",   [29] = "IQ2_M",  [30] = "IQ4_XS", [31] = "IQ1_M",  [32] = "BF16",
        [36] = "TQ1_0",  [37] = "TQ2_0",
    };
    return ft < sizeof names / sizeof names[0] ? names[ft] : NULL;
}

static void gguf_facts(const ns_gguf *g, model_facts *f) {
    memset(f, 0, sizeof *f);
    char *arch = ns_gguf_get_str(g, "general.architecture");
    snprintf(f->family, sizeof f->family, "%s", arch ? arch : "");
    free(arch);
    /* the count and the most common matrix type from the tensors themselves */
    uint64_t by_type[NS_TYPE_COUNT] = {0};
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        uint64_t n = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        f->n_params += n;
        if (t->n_dims >= 2 && t->type < NS_TYPE_COUNT) by_type[t->type] += n;
    }
    uint32_t ft;
    const char *name = ns_gguf_get_u32(g, "general.file_type", &ft) ? file_type_name(ft) : NULL;
    if (!name) {
        int best = -1;
        for (int t = 0; t < NS_TYPE_COUNT; t++)
            if (by_type[t] && (best < 0 || by_type[t] > by_type[best])) best = t;
        name = best >= 0 ? ns_type_name((uint32_t)best) : "unknown";
    }
    snprintf(f->quant, sizeof f->quant, "%s", name);
}

/* Ollama's format.HumanNumber: 1.1B, 7B, 260.13M, 15K */
static void human_number(uint64_t n, char *buf, size_t len) {
    double v = (double)n;
    if (n >= 1000000000ull) {
        v /= 1e9;
        snprintf(buf, len, v == (double)(uint64_t)v ? "%.0fB" : "%.1fB", v);
    } else if (n >= 1000000ull) {
        v /= 1e6;
        snprintf(buf, len, v == (double)(uint64_t)v ? "%.0fM" : "%.2fM", v);
    } else if (n >= 1000ull) {
        snprintf(buf, len, "%.0fK", v / 1e3);
    } else {
        snprintf(buf, len, "%llu", (unsigned long long)n);
    }
}

static cJSON *details_json(const model_facts *f) {
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "parent_model", "");
    cJSON_AddStringToObject(d, "format", "gguf");
    cJSON_AddStringToObject(d, "family", f->family);
    cJSON *fams = cJSON_AddArrayToObject(d, "families");
    if (fams && *f->family) cJSON_AddItemToArray(fams, cJSON_CreateString(f->family));
    char ps[32];
    human_number(f->n_params, ps, sizeof ps);
    cJSON_AddStringToObject(d, "parameter_size", f->n_params ? ps : "");
    cJSON_AddStringToObject(d, "quantization_level", f->quant);
    return d;
}

/* details for a file; a file that no longer parses gets the bare shape */
static cJSON *details_for_path(const char *path) {
    model_facts f;
    char err[256];
    ns_gguf *g = ns_gguf_open(path, err, sizeof err);
    if (g) {
        gguf_facts(g, &f);
        ns_gguf_close(g);
    } else {
        memset(&f, 0, sizeof f);
        ns_log_debug("server", "cannot read model details", "path=\"%s\" error=\"%s\"", path, err);
    }
    return details_json(&f);
}

static char *gguf_strdup(ns_gguf_str s) {
    char *p = malloc(s.len + 1);
    if (!p) return NULL;
    memcpy(p, s.ptr, s.len);
    p[s.len] = '\0';
    return p;
}

static cJSON *kv_value(const ns_gguf_kv *kv, bool verbose) {
    switch (kv->type) {
    case NS_GGUF_UINT8: case NS_GGUF_UINT16: case NS_GGUF_UINT32: case NS_GGUF_UINT64:
        return raw_u64(kv->v.u64);
    case NS_GGUF_INT8: case NS_GGUF_INT16: case NS_GGUF_INT32: case NS_GGUF_INT64:
        return raw_i64(kv->v.i64);
    case NS_GGUF_FLOAT32: return raw_f32(kv->v.f64);
    case NS_GGUF_FLOAT64: return raw_f64(kv->v.f64);
    case NS_GGUF_BOOL: return cJSON_CreateBool(kv->v.u64 != 0);
    case NS_GGUF_STRING: {
        char *s = gguf_strdup(kv->v.str);
        cJSON *j = s ? cJSON_CreateString(s) : cJSON_CreateNull();
        free(s);
        return j;
    }
    case NS_GGUF_ARRAY: break;
    default: return cJSON_CreateNull();
    }
    if (!verbose && kv->arr_n > SHOW_MAX_ARRAY) return cJSON_CreateNull();
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; a && i < kv->arr_n; i++) {
        cJSON *item;
        if (kv->arr_type == NS_GGUF_STRING) {
            char *s = gguf_strdup(kv->arr_str[i]);
            item = s ? cJSON_CreateString(s) : cJSON_CreateNull();
            free(s);
        } else if (kv->arr_type == NS_GGUF_BOOL) {
            int64_t v = 0;
            ns_gguf_arr_i64(kv, i, &v);
            item = cJSON_CreateBool(v != 0);
        } else if (kv->arr_type == NS_GGUF_FLOAT32 || kv->arr_type == NS_GGUF_FLOAT64) {
            double v = 0;
            ns_gguf_arr_f64(kv, i, &v);
            item = kv->arr_type == NS_GGUF_FLOAT32 ? raw_f32(v) : raw_f64(v);
        } else {
            int64_t v = 0;
            item = ns_gguf_arr_i64(kv, i, &v) ? raw_i64(v) : cJSON_CreateNull();
        }
        cJSON_AddItemToArray(a, item);
    }
    return a;
}

static cJSON *model_info_json(const ns_gguf *g, const model_facts *f, bool verbose) {
    cJSON *mi = cJSON_CreateObject();
    for (uint64_t i = 0; mi && i < g->n_kv; i++) {
        /* Ollama leaves these two out: the template is shown on its own */
        if (ns_gguf_str_eq(g->kv[i].key, "general.name") || ns_gguf_str_eq(g->kv[i].key, "tokenizer.chat_template"))
            continue;
        char *key = gguf_strdup(g->kv[i].key);
        if (!key) continue;
        cJSON_AddItemToObject(mi, key, kv_value(&g->kv[i], verbose));
        free(key);
    }
    if (mi && !cJSON_GetObjectItemCaseSensitive(mi, "general.parameter_count"))
        cJSON_AddItemToObject(mi, "general.parameter_count", raw_u64(f->n_params));
    return mi;
}

static cJSON *tensors_json(const ns_gguf *g) {
    cJSON *a = cJSON_CreateArray();
    for (uint64_t i = 0; a && i < g->n_tensors; i++) {
        const ns_gguf_tensor *t = &g->tensors[i];
        cJSON *o = cJSON_CreateObject();
        char *name = gguf_strdup(t->name);
        cJSON_AddStringToObject(o, "name", name ? name : "");
        free(name);
        cJSON_AddStringToObject(o, "type", ns_type_name(t->type));
        cJSON *shape = cJSON_AddArrayToObject(o, "shape");
        for (uint32_t d = 0; shape && d < t->n_dims; d++) cJSON_AddItemToArray(shape, raw_i64(t->ne[d]));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* ---- /api/version, /health ---- */

void ns_route_api_version(ns_server *s, ns_http_req *r) {
    (void)s;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", NSTACK_VERSION);
    ns_http_respond_json(r, 200, o);
}

void ns_route_health(ns_server *s, ns_http_req *r) {
    ns_loaded_info *info = NULL;
    int n = 0;
    if (ns_runtime_ps(s->rt, &info, &n) != 0) n = 0;
    free(info);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    ns_route_add_i64(o, "uptime_s", (ns_now_wall() - s->started_at) / 1000000000);
    ns_route_add_i64(o, "models_loaded", n);
    cJSON_AddStringToObject(o, "version", NSTACK_VERSION);
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/tags ---- */

void ns_route_api_tags(ns_server *s, ns_http_req *r) {
    ns_model_ref *refs = NULL;
    int n = 0;
    char err[512];
    if (ns_store_list(s->store, &refs, &n, err, sizeof err) != 0) {
        ns_http_respond_error(r, 500, "cannot list models: %s", err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", refs[i].name);
        cJSON_AddStringToObject(m, "model", refs[i].name);
        ns_route_add_time(m, "modified_at", refs[i].modified);
        ns_route_add_i64(m, "size", refs[i].size);
        cJSON_AddStringToObject(m, "digest", bare_digest(refs[i].digest));
        cJSON_AddItemToObject(m, "details", details_for_path(refs[i].path));
        cJSON_AddItemToArray(models, m);
        ns_model_ref_clear(&refs[i]);
    }
    free(refs);
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/ps ---- */

void ns_route_api_ps(ns_server *s, ns_http_req *r) {
    ns_loaded_info *info = NULL;
    int n = 0;
    if (ns_runtime_ps(s->rt, &info, &n) != 0) {
        ns_http_respond_error(r, 500, "cannot list loaded models");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < n; i++) {
        const ns_loaded_info *li = &info[i];
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", li->name);
        cJSON_AddStringToObject(m, "model", li->name);
        ns_route_add_i64(m, "size", li->size);
        cJSON_AddStringToObject(m, "digest", bare_digest(li->digest));
        cJSON_AddItemToObject(m, "details", details_for_path(li->path));
        ns_route_add_time(m, "expires_at", li->expires_at);
        ns_route_add_i64(m, "size_vram", li->size_vram);
        ns_route_add_i64(m, "context_length", li->n_ctx);
        /* ours: the runner's slots and what is in them */
        ns_route_add_i64(m, "num_parallel", li->n_parallel);
        ns_route_add_i64(m, "active_requests", li->active_jobs);
        ns_route_add_i64(m, "queued_requests", li->queued_jobs);
        cJSON_AddItemToArray(models, m);
    }
    free(info);
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/show ---- */

/* PARAMETER lines as Ollama's show prints them: one per value, name padded. */
static void parameters_text(const char *params_json, ns_buf *out) {
    cJSON *p = params_json ? cJSON_Parse(params_json) : NULL;
    for (cJSON *it = p ? p->child : NULL; it; it = it->next) {
        cJSON *vals = cJSON_IsArray(it) ? it->child : it;
        for (cJSON *v = vals; v; v = cJSON_IsArray(it) ? v->next : NULL) {
            char *text = cJSON_IsString(v) ? NULL : cJSON_PrintUnformatted(v);
            if (cJSON_IsString(v)) ns_buf_printf(out, "%-30s \"%s\"\n", it->string, v->valuestring);
            else if (text) ns_buf_printf(out, "%-30s %s\n", it->string, text);
            free(text);
        }
    }
    cJSON_Delete(p);
    if (out->len && out->data[out->len - 1] == '\n') out->data[--out->len] = '\0';
}

static void modelfile_text(const ns_model_ref *ref, const char *tmpl, const char *params, const char *license,
                           ns_buf *out) {
    ns_buf_printf(out,
                  "# Modelfile generated by \"nstack show\"\n"
                  "# To build a new Modelfile based on this, replace FROM with:\n"
                  "# FROM %s\n\n"
                  "FROM %s\n",
                  ref->name, ref->path);
    if (tmpl) ns_buf_printf(out, "TEMPLATE \"\"\"%s\"\"\"\n", tmpl);
    if (ref->system_text) ns_buf_printf(out, "SYSTEM \"\"\"%s\"\"\"\n", ref->system_text);
    if (params && *params) {
        /* "name    value" -> "PARAMETER name value" */
        char *copy = strdup(params), *save = NULL;
        for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
            char *sp = strchr(line, ' ');
            if (!sp) continue;
            *sp = '\0';
            char *v = sp + 1;
            while (*v == ' ') v++;
            ns_buf_printf(out, "PARAMETER %s %s\n", line, v);
        }
        free(copy);
    }
    if (license) ns_buf_printf(out, "LICENSE \"\"\"%s\"\"\"\n", license);
}

void ns_route_api_show(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const char *name = model_field(r, body);
    if (!name) {
        cJSON_Delete(body);
        return;
    }
    bool verbose = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(body, "verbose"));
    ns_model_ref ref;
    char err[512];
    if (ns_store_resolve(s->store, name, &ref, err, sizeof err) != 0) {
        ns_http_respond_error(r, store_error_status(err), "%s", err);
        cJSON_Delete(body);
        return;
    }
    cJSON_Delete(body);
    ns_gguf *g = ns_gguf_open(ref.path, err, sizeof err);
    if (!g) {
        ns_http_respond_error(r, 500, "cannot read model %s: %s", ref.name, err);
        ns_model_ref_clear(&ref);
        return;
    }
    model_facts f;
    gguf_facts(g, &f);
    char *chat_template = ns_gguf_get_str(g, "tokenizer.chat_template");
    char *license = ns_gguf_get_str(g, "general.license");
    /* a Modelfile template layer wins, as it does when generating */
    const char *tmpl = ref.template_text ? ref.template_text : chat_template ? chat_template : "{{ .Prompt }}";
    ns_buf params = {0}, modelfile = {0};
    parameters_text(ref.params_json, &params);
    modelfile_text(&ref, tmpl, params.data, license, &modelfile);

    cJSON *o = cJSON_CreateObject();
    if (license) cJSON_AddStringToObject(o, "license", license);
    cJSON_AddStringToObject(o, "modelfile", modelfile.data ? modelfile.data : "");
    cJSON_AddStringToObject(o, "parameters", params.data ? params.data : "");
    cJSON_AddStringToObject(o, "template", tmpl);
    if (ref.system_text) cJSON_AddStringToObject(o, "system", ref.system_text);
    cJSON_AddItemToObject(o, "details", details_json(&f));
    cJSON_AddItemToObject(o, "model_info", model_info_json(g, &f, verbose));
    if (verbose) cJSON_AddItemToObject(o, "tensors", tensors_json(g));
    cJSON *caps = cJSON_AddArrayToObject(o, "capabilities");
    cJSON_AddItemToArray(caps, cJSON_CreateString("completion"));
    if (strstr(tmpl, "tools") || strstr(tmpl, ".Tools")) cJSON_AddItemToArray(caps, cJSON_CreateString("tools"));
    ns_route_add_time(o, "modified_at", ref.modified);

    ns_buf_free(&params);
    ns_buf_free(&modelfile);
    free(chat_template);
    free(license);
    ns_gguf_close(g);
    ns_model_ref_clear(&ref);
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/delete, /api/copy ---- */

void ns_route_api_delete(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const char *name = model_field(r, body);
    ns_model_name parsed;
    ns_model_ref ref;
    char err[512];
    if (!name) goto out;
    if (ns_model_name_parse(name, &parsed, err, sizeof err) != 0) {
        ns_http_respond_error(r, 400, "invalid model name '%s': %s", name, err);
        goto out;
    }
    if (ns_store_resolve(s->store, name, &ref, err, sizeof err) != 0) {
        ns_http_respond_error(r, store_error_status(err), "%s", err);
        goto out;
    }
    bool ours = ref.source == NS_SRC_NSTACK;
    char display[256];
    snprintf(display, sizeof display, "%s", ref.name);
    ns_model_ref_clear(&ref);
    if (!ours) {
        ns_http_respond_error(r, 400, "model '%s' is in Ollama's store: delete it with ollama rm", display);
        goto out;
    }
    /* a loaded copy keeps its mapping; unloading frees it as soon as it is idle */
    char uerr[256];
    ns_runtime_unload(s->rt, display, uerr, sizeof uerr);
    if (ns_store_delete(s->store, name, err, sizeof err) != 0) {
        ns_http_respond_error(r, store_error_status(err) == 404 ? 404 : 500, "%s", err);
        goto out;
    }
    ns_log_info("server", "model deleted", "model=%s request_id=%s", display, ns_http_request_id(r));
    ns_http_respond(r, 200, NULL, "", 0);
out:
    cJSON_Delete(body);
}

void ns_route_api_copy(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(body, "source");
    const cJSON *dst = cJSON_GetObjectItemCaseSensitive(body, "destination");
    ns_model_name parsed;
    ns_model_ref ref;
    char err[512];
    if (!cJSON_IsString(src) || !*src->valuestring) {
        ns_http_respond_error(r, 400, "source is required (a string)");
        goto out;
    }
    if (!cJSON_IsString(dst) || !*dst->valuestring) {
        ns_http_respond_error(r, 400, "destination is required (a string)");
        goto out;
    }
    if (ns_model_name_parse(dst->valuestring, &parsed, err, sizeof err) != 0) {
        ns_http_respond_error(r, 400, "invalid destination name '%s': %s", dst->valuestring, err);
        goto out;
    }
    if (ns_store_resolve(s->store, src->valuestring, &ref, err, sizeof err) != 0) {
        ns_http_respond_error(r, store_error_status(err), "%s", err);
        goto out;
    }
    ns_model_ref_clear(&ref);
    if (ns_store_copy(s->store, src->valuestring, dst->valuestring, err, sizeof err) != 0) {
        ns_http_respond_error(r, 500, "cannot copy %s to %s: %s", src->valuestring, dst->valuestring, err);
        goto out;
    }
    ns_log_info("server", "model copied", "source=%s destination=%s request_id=%s", src->valuestring,
                dst->valuestring, ns_http_request_id(r));
    ns_http_respond(r, 200, NULL, "", 0);
out:
    cJSON_Delete(body);
}

/* ---- /api/pull ---- */

/* A download runs on its own thread; its progress lines queue up here for
 * the streaming callback, which hands them out as they come. */
typedef struct {
    ns_server *server;
    ns_http_req *req;
    char name[256];
    char *url;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ns_buf lines; /* NDJSON not yet handed out */
    bool finished;
    int status;   /* for stream false: 200 or the failure's */
    char error[512];
    atomic_bool cancel;
} pull_task;

static void pull_emit(pull_task *t, cJSON *o) {
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text) return;
    pthread_mutex_lock(&t->mu);
    ns_buf_printf(&t->lines, "%s\n", text);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    free(text);
}

static int pull_progress(void *user, const char *status, const char *digest, int64_t total, int64_t completed) {
    pull_task *t = user;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", status);
    if (strcmp(status, "downloading") == 0) {
        if (digest && *digest) cJSON_AddStringToObject(o, "digest", digest);
        ns_route_add_i64(o, "total", total);
        ns_route_add_i64(o, "completed", completed);
    }
    pull_emit(t, o);
    return atomic_load(&t->cancel) ? 1 : 0;
}

static void pull_run(pull_task *t) {
    char err[512];
    int rc = ns_pull(t->server->store, t->name, t->url, pull_progress, t, &t->cancel, err, sizeof err);
    cJSON *o = cJSON_CreateObject();
    if (rc == 0) {
        ns_log_info("server", "model pulled", "model=%s request_id=%s", t->name, ns_http_request_id(t->req));
        /* pull.h's progress already ended with "success" */
    } else {
        ns_log_warn("server", "pull failed", "model=%s request_id=%s error=\"%s\"", t->name,
                    ns_http_request_id(t->req), err);
        cJSON_AddStringToObject(o, "error", err);
        snprintf(t->error, sizeof t->error, "%s", err);
        t->status = strstr(err, "not a GGUF") ? 400 : 500;
    }
    if (rc != 0) pull_emit(t, o);
    else cJSON_Delete(o);
    pthread_mutex_lock(&t->mu);
    t->finished = true;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void *pull_thread(void *arg) {
    pull_run(arg);
    return NULL;
}

static void pull_task_free(pull_task *t) {
    if (t->thread_started) pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    ns_buf_free(&t->lines);
    free(t->url);
    free(t);
}

static int pull_stream(void *user, ns_buf *out) {
    pull_task *t = user;
    pthread_mutex_lock(&t->mu);
    while (t->lines.len == 0 && !t->finished) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 200 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&t->cv, &t->mu, &until);
        /* a client that left or a server stopping ends the download (it stops at its next progress call) */
        if (!atomic_load(&t->cancel) && (atomic_load(&t->server->stopping) || ns_http_client_gone(t->req)))
            atomic_store(&t->cancel, true);
    }
    ns_buf_append(out, t->lines.data ? t->lines.data : "", t->lines.len);
    t->lines.len = 0;
    bool end = t->finished;
    pthread_mutex_unlock(&t->mu);
    return end ? NS_STREAM_END : NS_STREAM_MORE;
}

static void pull_done(void *user, bool client_gone) {
    pull_task *t = user;
    if (client_gone) atomic_store(&t->cancel, true);
    pull_task_free(t);
}

static bool is_url(const char *s) {
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0 || strncmp(s, "file://", 7) == 0;
}

void ns_route_api_pull(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    pull_task *t = NULL;
    const char *model = model_field(r, body);
    if (!model) goto out;
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(body, "url");
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(body, "stream");
    if (url && !cJSON_IsNull(url) && !cJSON_IsString(url)) {
        ns_http_respond_error(r, 400, "url must be a string");
        goto out;
    }
    if (stream && !cJSON_IsNull(stream) && !cJSON_IsBool(stream)) {
        ns_http_respond_error(r, 400, "stream must be true or false");
        goto out;
    }
    bool streaming = !cJSON_IsFalse(stream);
    char name[256];
    const char *from;
    if (cJSON_IsString(url) && *url->valuestring) {
        from = url->valuestring;
        snprintf(name, sizeof name, "%s", model);
    } else if (is_url(model)) {
        from = model;
        ns_pull_name_from_url(model, name, sizeof name);
    } else {
        /* a name alone: nothing to download from (no registry); fine when it is here already */
        ns_model_ref ref;
        char err[512];
        if (ns_store_resolve(s->store, model, &ref, err, sizeof err) == 0) {
            ns_model_ref_clear(&ref);
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", "success");
            if (streaming) {
                char *text = cJSON_PrintUnformatted(o);
                cJSON_Delete(o);
                ns_buf b = {0};
                ns_buf_printf(&b, "%s\n", text ? text : "{\"status\":\"success\"}");
                free(text);
                ns_http_respond(r, 200, "application/x-ndjson", b.data, b.len);
                ns_buf_free(&b);
            } else {
                ns_http_respond_json(r, 200, o);
            }
        } else {
            ns_http_respond_error(r, 400,
                                  "cannot pull '%s': pulling from a registry is not supported; give the URL of a "
                                  "GGUF file as \"model\" or in \"url\"",
                                  model);
        }
        goto out;
    }
    ns_model_name parsed;
    char err[512];
    if (ns_model_name_parse(name, &parsed, err, sizeof err) != 0) {
        ns_http_respond_error(r, 400, "invalid model name '%s': %s", name, err);
        goto out;
    }
    t = calloc(1, sizeof *t);
    if (!t || !(t->url = strdup(from))) {
        free(t);
        t = NULL;
        ns_http_respond_error(r, 500, "out of memory");
        goto out;
    }
    t->server = s;
    t->req = r;
    t->status = 200;
    snprintf(t->name, sizeof t->name, "%s", name);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->cancel, false);
    ns_log_info("server", "pulling model", "model=%s url=\"%s\" request_id=%s", name, from, ns_http_request_id(r));

    if (!streaming) {
        pull_run(t);
        if (t->status == 200) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "status", "success");
            ns_http_respond_json(r, 200, o);
        } else {
            ns_http_respond_error(r, t->status, "%s", t->error);
        }
        pull_task_free(t);
        goto out;
    }
    if (pthread_create(&t->thread, NULL, pull_thread, t) != 0) {
        pull_task_free(t);
        ns_http_respond_error(r, 500, "cannot start the download");
        goto out;
    }
    t->thread_started = true;
    ns_http_respond_stream(r, 200, "application/x-ndjson", pull_stream, pull_done, t);
out:
    cJSON_Delete(body);
}

/* ---- /api/load, /api/unload ---- */

void ns_route_api_load(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    ns_gen_options opts;
    ns_gen_options_init(&opts);
    char err[512];
    int64_t keep_alive = NS_KEEP_ALIVE_DEFAULT;
    const char *name = model_field(r, body);
    if (!name) goto out;
    if (ns_gen_options_apply(&opts, cJSON_GetObjectItemCaseSensitive(body, "options"), "options", err, sizeof err) != 0 ||
        ns_parse_keep_alive(cJSON_GetObjectItemCaseSensitive(body, "keep_alive"), &keep_alive, err, sizeof err) != 0) {
        ns_http_respond_error(r, 400, "%s", err);
        goto out;
    }
    int64_t load_ns = 0, t0 = ns_now_mono();
    int status = 500;
    ns_loaded *lm = ns_runtime_acquire(s->rt, name, &opts.load, &load_ns, &status, err, sizeof err);
    if (!lm) {
        ns_http_respond_error(r, status, "%s", err);
        goto out;
    }
    char loaded_name[256];
    snprintf(loaded_name, sizeof loaded_name, "%s", ns_loaded_ref(lm)->name);
    int n_ctx = ns_loaded_n_ctx(lm);
    ns_runtime_release(s->rt, lm, keep_alive);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", loaded_name);
    ns_route_add_time(o, "created_at", ns_now_wall());
    cJSON_AddBoolToObject(o, "done", true);
    cJSON_AddStringToObject(o, "done_reason", "load");
    ns_route_add_i64(o, "load_duration", load_ns);
    ns_route_add_i64(o, "total_duration", ns_now_mono() - t0);
    ns_route_add_i64(o, "context_length", n_ctx);
    ns_http_respond_json(r, 200, o);
out:
    ns_gen_options_free(&opts);
    cJSON_Delete(body);
}

void ns_route_api_unload(ns_server *s, ns_http_req *r) {
    cJSON *body = ns_route_parse_body(r);
    if (!body) return;
    const cJSON *all = cJSON_GetObjectItemCaseSensitive(body, "all");
    if (cJSON_IsTrue(all)) {
        ns_runtime_unload_all(s->rt);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "done", true);
        cJSON_AddStringToObject(o, "done_reason", "unload");
        ns_http_respond_json(r, 200, o);
        cJSON_Delete(body);
        return;
    }
    const char *name = model_field(r, body);
    if (name) {
        /* the runtime knows models by the name they resolved to ("demo" is "demo:latest") */
        ns_model_ref ref;
        char err[512], display[256];
        snprintf(display, sizeof display, "%s", name);
        if (ns_store_resolve(s->store, name, &ref, err, sizeof err) == 0) {
            snprintf(display, sizeof display, "%s", ref.name);
            ns_model_ref_clear(&ref);
        }
        if (ns_runtime_unload(s->rt, display, err, sizeof err) != 0) {
            ns_http_respond_error(r, 404, "%s", err);
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "model", display);
            cJSON_AddBoolToObject(o, "done", true);
            cJSON_AddStringToObject(o, "done_reason", "unload");
            ns_http_respond_json(r, 200, o);
        }
    }
    cJSON_Delete(body);
}
