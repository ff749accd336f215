/* The profiler (profiler.h): a table of per-model totals and a ring of the
 * latest records, both under one mutex. */
#include "runtime/profiler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Latency buckets in seconds, from a warm 1-token reply to a long
 * generation on a slow CPU. */
static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
#define N_LATENCY_BOUNDS ((int)(sizeof latency_bounds / sizeof latency_bounds[0]))

struct ns_profiler {
    pthread_mutex_t mu;
    ns_model_perf *models;
    int n_models, cap_models;
    ns_gen_record *ring;
    int ring_cap, ring_len, ring_next;
};

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static void str(const cJSON *o, const char *k, char *out, size_t size) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    snprintf(out, size, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

bool ns_gen_record_from_event(const ns_event *e, ns_gen_record *out) {
    if (e->kind != NS_EV_GEN_COMPLETED && e->kind != NS_EV_GEN_FAILED) return false;
    cJSON *d = cJSON_Parse(e->detail);
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        return false;
    }
    memset(out, 0, sizeof *out);
    out->time_ns = e->time_ns;
    snprintf(out->model, sizeof out->model, "%s", e->model);
    snprintf(out->request_id, sizeof out->request_id, "%s", e->request_id);
    str(d, "finish", out->finish, sizeof out->finish);
    str(d, "session", out->session, sizeof out->session);
    str(d, "error", out->error, sizeof out->error);
    out->failed = e->kind == NS_EV_GEN_FAILED;
    out->prompt_tokens = (int)num(d, "prompt_tokens");
    out->cached_tokens = (int)num(d, "cached_tokens");
    out->eval_tokens = (int)num(d, "eval_tokens");
    out->ttft_ms = num(d, "ttft_ms");
    out->queued_ms = num(d, "queued_ms");
    out->prompt_ms = num(d, "prompt_ms");
    out->prompt_tps = num(d, "prompt_tokens_per_s");
    out->eval_ms = num(d, "eval_ms");
    out->eval_tps = num(d, "tokens_per_s");
    out->total_ms = num(d, "total_ms");
    cJSON_Delete(d);
    return true;
}

ns_profiler *ns_profiler_new(int keep_recent) {
    ns_profiler *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ring_cap = keep_recent > 0 ? keep_recent : 1000;
    p->ring = calloc((size_t)p->ring_cap, sizeof *p->ring);
    if (!p->ring || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->ring);
        free(p);
        return NULL;
    }
    return p;
}

void ns_profiler_free(ns_profiler *p) {
    if (!p) return;
    pthread_mutex_destroy(&p->mu);
    free(p->models);
    free(p->ring);
    free(p);
}

/* The model's entry, created on first use; NULL when out of memory. */
static ns_model_perf *model_entry(ns_profiler *p, const char *name) {
    for (int i = 0; i < p->n_models; i++)
        if (strcmp(p->models[i].model, name) == 0) return &p->models[i];
    if (p->n_models == p->cap_models) {
        int cap = p->cap_models ? p->cap_models * 2 : 8;
        ns_model_perf *grown = realloc(p->models, (size_t)cap * sizeof *grown);
        if (!grown) return NULL;
        p->models = grown;
        p->cap_models = cap;
    }
    ns_model_perf *m = &p->models[p->n_models++];
    memset(m, 0, sizeof *m);
    snprintf(m->model, sizeof m->model, "%s", name);
    ns_histogram_init(&m->ttft_s, latency_bounds, N_LATENCY_BOUNDS);
    ns_histogram_init(&m->total_s, latency_bounds, N_LATENCY_BOUNDS);
    return m;
}

static void count_finish(ns_model_perf *m, const char *finish) {
    int i = 0;
    for (; i < NS_PROFILER_FINISHES && m->finishes[i].name[0]; i++)
        if (strcmp(m->finishes[i].name, finish) == 0) break;
    if (i == NS_PROFILER_FINISHES) i = NS_PROFILER_FINISHES - 1; /* more kinds than we know: the last one takes them */
    if (!m->finishes[i].name[0]) snprintf(m->finishes[i].name, sizeof m->finishes[i].name, "%s", finish);
    m->finishes[i].count++;
}

void ns_profiler_add(ns_profiler *p, const ns_gen_record *g) {
    pthread_mutex_lock(&p->mu);
    ns_model_perf *m = model_entry(p, g->model);
    if (m) {
        m->requests++;
        if (g->failed) m->failed++;
        m->prompt_tokens += (uint64_t)(g->prompt_tokens > 0 ? g->prompt_tokens : 0);
        m->cached_tokens += (uint64_t)(g->cached_tokens > 0 ? g->cached_tokens : 0);
        m->eval_tokens += (uint64_t)(g->eval_tokens > 0 ? g->eval_tokens : 0);
        m->prompt_ms += g->prompt_ms;
        m->eval_ms += g->eval_ms;
        m->total_ms += g->total_ms;
        m->ttft_ms += g->ttft_ms;
        /* one token's rate is its sampling time alone, not a decode speed */
        if (g->eval_tokens >= 2 && g->eval_tps > m->peak_tps) m->peak_tps = g->eval_tps;
        m->last_ns = g->time_ns;
        count_finish(m, g->finish[0] ? g->finish : "unknown");
        if (g->eval_tokens > 0) ns_histogram_observe(&m->ttft_s, g->ttft_ms / 1e3);
        ns_histogram_observe(&m->total_s, g->total_ms / 1e3);
    }
    p->ring[p->ring_next] = *g;
    p->ring_next = (p->ring_next + 1) % p->ring_cap;
    if (p->ring_len < p->ring_cap) p->ring_len++;
    pthread_mutex_unlock(&p->mu);
}

static int by_model(const void *a, const void *b) {
    return strcmp(((const ns_model_perf *)a)->model, ((const ns_model_perf *)b)->model);
}

int ns_profiler_models(ns_profiler *p, ns_model_perf **out, int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&p->mu);
    int count = p->n_models;
    ns_model_perf *copy = count ? malloc((size_t)count * sizeof *copy) : NULL;
    if (count && !copy) {
        pthread_mutex_unlock(&p->mu);
        return -1;
    }
    if (count) memcpy(copy, p->models, (size_t)count * sizeof *copy);
    pthread_mutex_unlock(&p->mu);
    if (count) qsort(copy, (size_t)count, sizeof *copy, by_model);
    *out = copy;
    *n = count;
    return 0;
}

int ns_profiler_recent(ns_profiler *p, const char *model, ns_gen_record *out, int max) {
    int k = 0;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->ring_len && k < max; i++) {
        const ns_gen_record *g = &p->ring[(p->ring_next - 1 - i + p->ring_cap) % p->ring_cap];
        if (model && *model && strcmp(g->model, model) != 0) continue;
        out[k++] = *g;
    }
    pthread_mutex_unlock(&p->mu);
    return k;
}

double ns_model_perf_avg_tps(const ns_model_perf *m) {
    return m->eval_ms > 0 ? (double)m->eval_tokens / (m->eval_ms / 1e3) : 0.0;
}

double ns_model_perf_avg_ttft_ms(const ns_model_perf *m) {
    uint64_t with_tokens = m->ttft_s.count;
    return with_tokens ? m->ttft_s.sum * 1e3 / (double)with_tokens : 0.0;
}
