/* The monitor's and profiler's routes (docs/observability.md):
 *   GET  /api/resources                 the machine now, loaded models, active alerts
 *   GET  /api/resources/history         ?period=1h (default 15m) &step=10s (default: ~300 points)
 *   GET  /api/metrics/generations       ?model= &limit= (100) &since=RFC3339|duration: records and per-model totals
 *   GET  /api/events/history            ?kind= &limit= (100) &since=duration: stored events, newest first
 *   GET  /api/alerts, POST /api/alerts  thresholds and active alerts; POST sets thresholds
 *   GET  /metrics                       Prometheus text format */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"
#include "routes.h"
#include "util/duration.h"

static int query_limit(ns_http_req *r, long *out);
static int query_since(ns_http_req *r, int64_t *since);

/* ---- JSON of a sample ---- */

/* -1 (unknown) becomes null, so a reader never takes it for a reading. */
static void add_known(cJSON *o, const char *key, double v) {
    if (v < 0) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static void add_known_i64(cJSON *o, const char *key, int64_t v) {
    if (v < 0) cJSON_AddNullToObject(o, key);
    else ns_route_add_i64(o, key, v);
}

/* A process's command name from /proc, "" when it is gone or hidden. */
static void process_name(int32_t pid, char *out, size_t size) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/comm", (int)pid);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(out, (int)size, f)) out[strcspn(out, "\n")] = '\0';
    fclose(f);
}

static cJSON *gpu_json(int index, const ns_gpu_reading *g, bool with_processes) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "index", index);
    cJSON_AddStringToObject(o, "name", g->name);
    add_known_i64(o, "vram_total", g->vram_total);
    add_known_i64(o, "vram_used", g->vram_used);
    add_known_i64(o, "vram_ours", g->vram_ours);
    add_known(o, "util_pct", g->util_pct);
    add_known(o, "temp_c", g->temp_c);
    add_known(o, "power_w", g->power_w);
    if (!with_processes) return o;
    cJSON *procs = cJSON_AddArrayToObject(o, "processes");
    for (int i = 0; i < g->n_procs && i < NS_MON_MAX_GPU_PROCS; i++) {
        cJSON *p = cJSON_CreateObject();
        char name[64];
        process_name(g->procs[i].pid, name, sizeof name);
        cJSON_AddNumberToObject(p, "pid", g->procs[i].pid);
        cJSON_AddStringToObject(p, "name", name);
        add_known_i64(p, "vram", g->procs[i].vram);
        cJSON_AddItemToArray(procs, p);
    }
    cJSON_AddNumberToObject(o, "processes_total", g->n_procs_total);
    return o;
}

/* with_processes: the GPUs' process lists, which only the live view has. */
static cJSON *sample_json(const ns_resource_sample *s, bool with_processes) {
    cJSON *o = cJSON_CreateObject();
    ns_route_add_time(o, "time", s->time_ns);
    cJSON *cpu = cJSON_AddObjectToObject(o, "cpu");
    add_known(cpu, "system_pct", s->cpu_system_pct);
    add_known(cpu, "process_pct", s->cpu_process_pct);
    if (s->n_cpus > 0) cJSON_AddNumberToObject(cpu, "cores", s->n_cpus);
    cJSON *ram = cJSON_AddObjectToObject(o, "ram");
    add_known_i64(ram, "total", s->ram_total);
    add_known_i64(ram, "used", s->ram_used);
    add_known_i64(ram, "available", s->ram_available);
    add_known_i64(ram, "process_rss", s->process_rss);
    add_known_i64(ram, "mapped_models", s->mapped_model);
    cJSON *gpus = cJSON_AddArrayToObject(o, "gpus");
    for (int i = 0; i < s->n_gpus && i < NS_MON_MAX_GPUS; i++)
        cJSON_AddItemToArray(gpus, gpu_json(i, &s->gpu[i], with_processes));
    return o;
}

/* A stored point in the shape of a live sample, plus how many samples it
 * averages. */
static cJSON *db_sample_json(const ns_db_resource_sample *d) {
    ns_resource_sample s;
    ns_observe_sample_from_db(d, &s);
    cJSON *o = sample_json(&s, false);
    cJSON_AddNumberToObject(o, "samples", d->samples);
    return o;
}

static cJSON *alert_json(const ns_alert *a, int64_t since) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "metric", a->metric);
    if (a->gpu >= 0) cJSON_AddNumberToObject(o, "gpu", a->gpu);
    cJSON_AddNumberToObject(o, "value", a->value);
    cJSON_AddNumberToObject(o, "threshold", a->threshold);
    ns_route_add_time(o, "since", since);
    return o;
}

static cJSON *alerts_json(ns_observe *o) {
    ns_alerts_config cfg;
    ns_alert active[NS_OBSERVE_MAX_ALERTS];
    int64_t since[NS_OBSERVE_MAX_ALERTS];
    int n = ns_observe_alerts(o, &cfg, active, since, NS_OBSERVE_MAX_ALERTS);
    cJSON *a = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(a, "thresholds");
    cJSON_AddNumberToObject(t, "ram_pct", cfg.ram_pct);
    cJSON_AddNumberToObject(t, "vram_pct", cfg.vram_pct);
    cJSON_AddNumberToObject(t, "temp_c", cfg.temp_c);
    cJSON_AddNumberToObject(t, "clear_margin_pct", cfg.clear_margin_pct > 0 ? cfg.clear_margin_pct : NS_ALERTS_DEFAULT_MARGIN);
    cJSON_AddNumberToObject(t, "temp_clear_margin_c",
                            cfg.temp_clear_margin_c > 0 ? cfg.temp_clear_margin_c : NS_ALERTS_DEFAULT_MARGIN);
    cJSON *list = cJSON_AddArrayToObject(a, "active");
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(list, alert_json(&active[i], since[i]));
    return a;
}

/* The newest sample, or one read now when the sampler is off or has not
 * sampled yet (CPU fields then unknown). */
static bool latest(ns_server *s, ns_resource_sample *out) {
    if (s->observe->sampler && ns_sampler_latest(s->observe->sampler, out)) return true;
    if (ns_monitor_read_now(out) != 0) return false;
    out->cpu_system_pct = out->cpu_process_pct = -1;
    return true;
}

/* ---- /api/resources ---- */

static void route_resources(ns_server *s, ns_http_req *r) {
    ns_resource_sample now;
    if (!latest(s, &now)) {
        ns_http_respond_error(r, 500, "cannot read the machine's resources");
        return;
    }
    cJSON *o = sample_json(&now, true);
    cJSON_AddNumberToObject(o, "interval_ms", s->observe->sampler ? (double)s->observe->interval_ns / 1e6 : 0);
    ns_loaded_info *info = NULL;
    int n = 0;
    if (ns_runtime_ps(s->rt, &info, &n) != 0) n = 0;
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "name", info[i].name);
        ns_route_add_i64(m, "size", info[i].size);
        ns_route_add_i64(m, "size_vram", info[i].size_vram);
        cJSON_AddBoolToObject(m, "mapped", info[i].opts.use_mmap >= 0);
        cJSON_AddNumberToObject(m, "active_jobs", info[i].active_jobs);
        cJSON_AddNumberToObject(m, "queued_jobs", info[i].queued_jobs);
        cJSON_AddItemToArray(models, m);
    }
    free(info);
    cJSON_AddItemToObject(o, "alerts", alerts_json(s->observe));
    ns_http_respond_json(r, 200, o);
}

/* A query value that is a duration ("15m", "1h"); def when absent. -1
 * after answering 400. */
static int query_duration(ns_http_req *r, const char *key, int64_t def, int64_t *out) {
    const char *v = ns_http_query(r, key);
    *out = def;
    if (!v) return 0;
    char why[128];
    if (ns_duration_parse(v, out, why, sizeof why) != 0 || *out <= 0) {
        ns_http_respond_error(r, 400, "%s must be a positive duration such as 15m, 1h or 24h (%s)", key,
                              *out <= 0 ? "not positive" : why);
        return -1;
    }
    return 0;
}

static void route_history(ns_server *s, ns_http_req *r) {
    int64_t period, step;
    if (query_duration(r, "period", 15LL * 60 * 1000000000, &period) != 0) return;
    if (query_duration(r, "step", period / 300 > 0 ? period / 300 : 1, &step) != 0) return;
    if (period / step > 10000) {
        ns_http_respond_error(r, 400, "period / step gives more than 10000 points; use a larger step");
        return;
    }
    int64_t until = ns_now_wall(), since = until - period;
    cJSON *o = cJSON_CreateObject();
    ns_route_add_time(o, "since", since);
    ns_route_add_time(o, "until", until);
    ns_route_add_i64(o, "step_ms", step / 1000000);
    cJSON *points = cJSON_AddArrayToObject(o, "points");
    if (s->observe->db) {
        ns_db_resource_sample *rows = NULL;
        int n = 0;
        char err[512];
        if (ns_db_resources(s->observe->db, since, until, step, &rows, &n, err, sizeof err) != 0) {
            cJSON_Delete(o);
            ns_http_respond_error(r, 500, "cannot read the resource history: %s", err);
            return;
        }
        for (int i = 0; i < n; i++) cJSON_AddItemToArray(points, db_sample_json(&rows[i]));
        free(rows);
        cJSON_AddStringToObject(o, "source", "database");
    } else if (s->observe->sampler) {
        /* no store: the sampler's ring, raw */
        ns_resource_sample *ring = malloc(sizeof *ring * NS_SAMPLER_DEFAULT_RING);
        int n = ring ? ns_sampler_recent(s->observe->sampler, ring, NS_SAMPLER_DEFAULT_RING) : 0;
        for (int i = 0; i < n; i++)
            if (ring[i].time_ns >= since) cJSON_AddItemToArray(points, sample_json(&ring[i], false));
        free(ring);
        cJSON_AddStringToObject(o, "source", "memory");
    }
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/metrics/generations ---- */

static cJSON *model_perf_json(const ns_model_perf *m) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", m->model);
    cJSON_AddNumberToObject(o, "requests", (double)m->requests);
    cJSON_AddNumberToObject(o, "failed", (double)m->failed);
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)m->prompt_tokens);
    cJSON_AddNumberToObject(o, "cached_tokens", (double)m->cached_tokens);
    cJSON_AddNumberToObject(o, "eval_tokens", (double)m->eval_tokens);
    cJSON_AddNumberToObject(o, "inference_ms", m->prompt_ms + m->eval_ms);
    cJSON_AddNumberToObject(o, "avg_tokens_per_s", ns_model_perf_avg_tps(m));
    cJSON_AddNumberToObject(o, "peak_tokens_per_s", m->peak_tps);
    cJSON_AddNumberToObject(o, "avg_ttft_ms", ns_model_perf_avg_ttft_ms(m));
    if (m->last_ns) ns_route_add_time(o, "last_at", m->last_ns);
    cJSON *f = cJSON_AddObjectToObject(o, "finish");
    for (int i = 0; i < NS_PROFILER_FINISHES && m->finishes[i].name[0]; i++)
        cJSON_AddNumberToObject(f, m->finishes[i].name, (double)m->finishes[i].count);
    return o;
}

static cJSON *gen_json(int64_t time_ns, const char *request_id, const char *model, const char *finish,
                       const char *session, const char *error, int prompt, int cached, int eval, double ttft,
                       double prompt_ms, double prompt_tps, double eval_ms, double eval_tps, double total_ms) {
    cJSON *o = cJSON_CreateObject();
    ns_route_add_time(o, "time", time_ns);
    cJSON_AddStringToObject(o, "request_id", request_id);
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "finish", finish);
    if (*session) cJSON_AddStringToObject(o, "session", session);
    if (*error) cJSON_AddStringToObject(o, "error", error);
    cJSON_AddNumberToObject(o, "prompt_tokens", prompt);
    cJSON_AddNumberToObject(o, "cached_tokens", cached);
    cJSON_AddNumberToObject(o, "eval_tokens", eval);
    cJSON_AddNumberToObject(o, "ttft_ms", ttft);
    cJSON_AddNumberToObject(o, "prompt_ms", prompt_ms);
    cJSON_AddNumberToObject(o, "prompt_tokens_per_s", prompt_tps);
    cJSON_AddNumberToObject(o, "eval_ms", eval_ms);
    cJSON_AddNumberToObject(o, "eval_tokens_per_s", eval_tps);
    cJSON_AddNumberToObject(o, "total_ms", total_ms);
    return o;
}

static void route_generations(ns_server *s, ns_http_req *r) {
    const char *model = ns_http_query(r, "model");
    long limit;
    int64_t since;
    if (query_limit(r, &limit) != 0 || query_since(r, &since) != 0) return;
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "generations");
    if (s->observe->db) {
        ns_db_generation *rows = NULL;
        int n = 0;
        char err[512];
        ns_db_flush(s->observe->db); /* a client reading right after its request sees it */
        if (ns_db_generations(s->observe->db, model, since, (int)limit, &rows, &n, err, sizeof err) != 0) {
            cJSON_Delete(o);
            ns_http_respond_error(r, 500, "cannot read generation metrics: %s", err);
            return;
        }
        for (int i = 0; i < n; i++) {
            const ns_db_generation *g = &rows[i];
            cJSON_AddItemToArray(list, gen_json(g->time_ns, g->request_id, g->model, g->finish, g->session, g->error,
                                                g->prompt_tokens, g->cached_tokens, g->eval_tokens, g->ttft_ms,
                                                g->prompt_ms, g->prompt_tps, g->eval_ms, g->eval_tps, g->total_ms));
        }
        free(rows);
        cJSON_AddStringToObject(o, "source", "database");
    } else {
        ns_gen_record *recs = malloc(sizeof *recs * (size_t)limit);
        int n = recs ? ns_profiler_recent(s->observe->profiler, model, recs, (int)limit) : 0;
        for (int i = 0; i < n; i++) {
            const ns_gen_record *g = &recs[i];
            if (g->time_ns < since) continue;
            cJSON_AddItemToArray(list, gen_json(g->time_ns, g->request_id, g->model, g->finish, g->session, g->error,
                                                g->prompt_tokens, g->cached_tokens, g->eval_tokens, g->ttft_ms,
                                                g->prompt_ms, g->prompt_tps, g->eval_ms, g->eval_tps, g->total_ms));
        }
        free(recs);
        cJSON_AddStringToObject(o, "source", "memory");
    }
    /* totals since this server started */
    ns_model_perf *perf = NULL;
    int n_perf = 0;
    cJSON *models = cJSON_AddArrayToObject(o, "models");
    if (ns_profiler_models(s->observe->profiler, &perf, &n_perf) == 0)
        for (int i = 0; i < n_perf; i++)
            if (!model || !*model || strcmp(perf[i].model, model) == 0)
                cJSON_AddItemToArray(models, model_perf_json(&perf[i]));
    free(perf);
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/events/history ---- */

/* ?limit= from 1 to 10000 (default 100); -1 after answering 400. */
static int query_limit(ns_http_req *r, long *out) {
    const char *v = ns_http_query(r, "limit");
    *out = 100;
    if (!v) return 0;
    char *end;
    *out = strtol(v, &end, 10);
    if (!*v || *end || *out < 1 || *out > 10000) {
        ns_http_respond_error(r, 400, "limit must be an integer from 1 to 10000");
        return -1;
    }
    return 0;
}

/* ?since=DURATION ago as a wall time, 0 when absent; -1 after a 400. */
static int query_since(ns_http_req *r, int64_t *since) {
    *since = 0;
    if (!ns_http_query(r, "since")) return 0;
    int64_t ago;
    if (query_duration(r, "since", 0, &ago) != 0) return -1;
    *since = ns_now_wall() - ago;
    return 0;
}

static void route_event_history(ns_server *s, ns_http_req *r) {
    long limit;
    int64_t since;
    if (query_limit(r, &limit) != 0 || query_since(r, &since) != 0) return;
    if (!s->observe->db) {
        ns_http_respond_error(r, 404, "no metrics database (the server runs with --db off); GET /api/events replays "
                                      "recent events");
        return;
    }
    ns_db_event *rows = NULL;
    int n = 0;
    char err[512];
    ns_db_flush(s->observe->db);
    if (ns_db_events(s->observe->db, ns_http_query(r, "kind"), since, (int)limit, &rows, &n, err, sizeof err) != 0) {
        ns_http_respond_error(r, 500, "cannot read events: %s", err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(o, "events");
    for (int i = 0; i < n; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddNumberToObject(e, "id", (double)rows[i].id);
        cJSON_AddStringToObject(e, "kind", rows[i].kind);
        ns_route_add_time(e, "time", rows[i].time_ns);
        cJSON_AddStringToObject(e, "model", rows[i].model);
        cJSON_AddStringToObject(e, "request_id", rows[i].request_id);
        cJSON *d = cJSON_Parse(rows[i].detail);
        cJSON_AddItemToObject(e, "detail", d ? d : cJSON_CreateObject());
        cJSON_AddItemToArray(list, e);
    }
    free(rows);
    ns_http_respond_json(r, 200, o);
}

/* ---- /api/alerts ---- */

static int threshold(ns_http_req *r, const cJSON *body, const char *key, double max, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > max || isnan(v->valuedouble)) {
        ns_http_respond_error(r, 400, "%s must be a number from 0 (off) to %g", key, max);
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

static void route_alerts(ns_server *s, ns_http_req *r) {
    if (strcmp(ns_http_method(r), "POST") == 0) {
        cJSON *body = ns_route_parse_body(r);
        if (!body) return;
        ns_alerts_config c = {-1, -1, -1, -1, -1};
        int bad = threshold(r, body, "ram_pct", 100, &c.ram_pct) || threshold(r, body, "vram_pct", 100, &c.vram_pct) ||
                  threshold(r, body, "temp_c", 200, &c.temp_c) ||
                  threshold(r, body, "clear_margin_pct", 100, &c.clear_margin_pct) ||
                  threshold(r, body, "temp_clear_margin_c", 100, &c.temp_clear_margin_c);
        cJSON_Delete(body);
        if (bad) return;
        ns_observe_set_alerts(s->observe, &c);
    }
    ns_http_respond_json(r, 200, alerts_json(s->observe));
}

/* ---- /metrics ---- */

static void gauge(ns_buf *b, const char *name, const char *help, double v) {
    ns_prom_family(b, name, "gauge", help);
    ns_prom_sample(b, name, NULL, v);
}

static void prom_resources(ns_server *s, ns_buf *b) {
    ns_resource_sample now;
    if (!latest(s, &now)) return;
    if (now.cpu_system_pct >= 0) gauge(b, "nstack_cpu_system_percent", "Busy CPU time of the machine, percent.", now.cpu_system_pct);
    if (now.cpu_process_pct >= 0)
        gauge(b, "nstack_cpu_process_percent", "CPU time of this process, percent of the whole machine.", now.cpu_process_pct);
    gauge(b, "nstack_ram_total_bytes", "Memory of the machine.", (double)now.ram_total);
    gauge(b, "nstack_ram_used_bytes", "Memory in use (total minus available).", (double)now.ram_used);
    gauge(b, "nstack_ram_available_bytes", "Memory available for new allocations (MemAvailable).", (double)now.ram_available);
    gauge(b, "nstack_process_rss_bytes", "Resident memory of this process.", (double)now.process_rss);
    gauge(b, "nstack_mapped_model_bytes", "Model files mapped into this process.", (double)now.mapped_model);
    struct {
        const char *name, *help;
    } fam[] = {{"nstack_gpu_vram_total_bytes", "GPU memory."},
               {"nstack_gpu_vram_used_bytes", "GPU memory in use by every process."},
               {"nstack_gpu_vram_ours_bytes", "GPU memory in use by this process."},
               {"nstack_gpu_utilization_percent", "GPU busy time, percent."},
               {"nstack_gpu_temperature_celsius", "GPU temperature."},
               {"nstack_gpu_power_watts", "GPU power draw."}};
    if (now.n_gpus == 0) return;
    for (int f = 0; f < 6; f++) {
        ns_prom_family(b, fam[f].name, "gauge", fam[f].help);
        for (int i = 0; i < now.n_gpus && i < NS_MON_MAX_GPUS; i++) {
            const ns_gpu_reading *g = &now.gpu[i];
            double v[6] = {(double)g->vram_total, (double)g->vram_used, (double)g->vram_ours, g->util_pct, g->temp_c,
                           g->power_w};
            if (v[f] < 0) continue; /* unknown: no sample rather than a false one */
            char idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            ns_prom_labels l;
            ns_prom_labels_init(&l);
            ns_prom_label(&l, "gpu", idx);
            ns_prom_label(&l, "name", g->name);
            ns_prom_sample(b, fam[f].name, &l, v[f]);
        }
    }
}

static void prom_models(ns_server *s, ns_buf *b) {
    ns_loaded_info *info = NULL;
    int n = 0;
    if (ns_runtime_ps(s->rt, &info, &n) != 0) n = 0;
    ns_prom_family(b, "nstack_models_loaded", "gauge", "Models loaded now.");
    ns_prom_sample(b, "nstack_models_loaded", NULL, n);
    ns_prom_family(b, "nstack_model_memory_bytes", "gauge", "Estimated memory of a loaded model (weights, KV cache, buffers).");
    for (int i = 0; i < n; i++) {
        ns_prom_labels l;
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "model", info[i].name);
        ns_prom_sample(b, "nstack_model_memory_bytes", &l, (double)info[i].size);
    }
    ns_prom_family(b, "nstack_model_active_requests", "gauge", "Generations running on a loaded model.");
    for (int i = 0; i < n; i++) {
        ns_prom_labels l;
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "model", info[i].name);
        ns_prom_sample(b, "nstack_model_active_requests", &l, info[i].active_jobs);
    }
    ns_prom_family(b, "nstack_model_queued_requests", "gauge", "Generations waiting for a slot of a loaded model.");
    for (int i = 0; i < n; i++) {
        ns_prom_labels l;
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "model", info[i].name);
        ns_prom_sample(b, "nstack_model_queued_requests", &l, info[i].queued_jobs);
    }
    free(info);
}

static void prom_generations(ns_server *s, ns_buf *b) {
    ns_model_perf *perf = NULL;
    int n = 0;
    if (ns_profiler_models(s->observe->profiler, &perf, &n) != 0) return;
    ns_prom_family(b, "nstack_generations_total", "counter", "Generations finished, by model and finish reason.");
    for (int i = 0; i < n; i++)
        for (int k = 0; k < NS_PROFILER_FINISHES && perf[i].finishes[k].name[0]; k++) {
            ns_prom_labels l;
            ns_prom_labels_init(&l);
            ns_prom_label(&l, "model", perf[i].model);
            ns_prom_label(&l, "finish", perf[i].finishes[k].name);
            ns_prom_sample(b, "nstack_generations_total", &l, (double)perf[i].finishes[k].count);
        }
    struct {
        const char *name, *help;
        int which;
    } counters[] = {{"nstack_prompt_tokens_total", "Prompt tokens of finished generations (cached ones included).", 0},
                    {"nstack_cached_prompt_tokens_total", "Prompt tokens reused from the KV cache.", 1},
                    {"nstack_generated_tokens_total", "Tokens generated.", 2},
                    {"nstack_prompt_eval_seconds_total", "Time spent evaluating prompts.", 3},
                    {"nstack_generation_seconds_total", "Time spent generating tokens.", 4}};
    for (int c = 0; c < 5; c++) {
        ns_prom_family(b, counters[c].name, "counter", counters[c].help);
        for (int i = 0; i < n; i++) {
            double v[5] = {(double)perf[i].prompt_tokens, (double)perf[i].cached_tokens, (double)perf[i].eval_tokens,
                           perf[i].prompt_ms / 1e3, perf[i].eval_ms / 1e3};
            ns_prom_labels l;
            ns_prom_labels_init(&l);
            ns_prom_label(&l, "model", perf[i].model);
            ns_prom_sample(b, counters[c].name, &l, v[counters[c].which]);
        }
    }
    ns_prom_family(b, "nstack_time_to_first_token_seconds", "histogram", "From a request's admission to the queue to its first token.");
    for (int i = 0; i < n; i++) {
        ns_prom_labels l;
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "model", perf[i].model);
        ns_prom_histogram(b, "nstack_time_to_first_token_seconds", &l, &perf[i].ttft_s);
    }
    ns_prom_family(b, "nstack_generation_duration_seconds", "histogram", "From a request's admission to the queue to its end.");
    for (int i = 0; i < n; i++) {
        ns_prom_labels l;
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "model", perf[i].model);
        ns_prom_histogram(b, "nstack_generation_duration_seconds", &l, &perf[i].total_s);
    }
    free(perf);
}

static void route_metrics(ns_server *s, ns_http_req *r) {
    ns_buf b = {0};
    ns_prom_family(&b, "nstack_up", "gauge", "1 while the server runs.");
    ns_prom_sample(&b, "nstack_up", NULL, 1);
    ns_prom_family(&b, "nstack_uptime_seconds", "gauge", "Seconds since the server started.");
    ns_prom_sample(&b, "nstack_uptime_seconds", NULL, (double)((ns_now_wall() - s->started_at) / 1000000000));
    ns_request_stats_prometheus(s->observe->requests, &b);
    prom_generations(s, &b);
    prom_models(s, &b);
    prom_resources(s, &b);
    ns_alerts_config cfg;
    ns_alert active[NS_OBSERVE_MAX_ALERTS];
    int64_t since[NS_OBSERVE_MAX_ALERTS];
    int n = ns_observe_alerts(s->observe, &cfg, active, since, NS_OBSERVE_MAX_ALERTS);
    ns_prom_family(&b, "nstack_alerts_active", "gauge", "Resource alerts fired and not cleared.");
    ns_prom_sample(&b, "nstack_alerts_active", NULL, n);
    if (s->observe->db) {
        ns_prom_family(&b, "nstack_db_dropped_total", "counter", "Records the metrics database queue had to drop.");
        ns_prom_sample(&b, "nstack_db_dropped_total", NULL, (double)ns_db_dropped(s->observe->db));
    }
    if (!b.data) {
        ns_http_respond_error(r, 500, "out of memory");
        return;
    }
    ns_http_respond(r, 200, NS_PROM_CONTENT_TYPE, b.data, b.len);
    ns_buf_free(&b);
}

void ns_route_monitor(ns_server *s, ns_http_req *r) {
    const char *path = ns_http_path(r);
    if (strcmp(path, "/metrics") == 0) route_metrics(s, r);
    else if (strcmp(path, "/api/resources") == 0) route_resources(s, r);
    else if (strcmp(path, "/api/resources/history") == 0) route_history(s, r);
    else if (strcmp(path, "/api/metrics/generations") == 0) route_generations(s, r);
    else if (strcmp(path, "/api/alerts") == 0) route_alerts(s, r);
    else if (strcmp(path, "/api/events/history") == 0) route_event_history(s, r);
    else ns_http_respond_error(r, 404, "not found: %s %s", ns_http_method(r), path);
}
