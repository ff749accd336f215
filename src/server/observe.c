#include "observe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "util/duration.h"
#include "util/log.h"

/* ---- the event subscriber ---- */

static double detail_num(const cJSON *d, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(d, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static void record_model(ns_observe *o, const ns_event *e, const char *action) {
    ns_db_model_record m;
    memset(&m, 0, sizeof m);
    m.time_ns = e->time_ns;
    snprintf(m.model, sizeof m.model, "%s", e->model);
    snprintf(m.action, sizeof m.action, "%s", action);
    cJSON *d = cJSON_Parse(e->detail);
    m.bytes = (int64_t)detail_num(d, "bytes");
    m.ms = detail_num(d, "ms");
    cJSON_Delete(d);
    snprintf(m.detail, sizeof m.detail, "%s", e->detail);
    ns_db_add_model_record(o->db, &m);
}

/* Runs on the publishing thread: only copies into the store's queue and the
 * profiler's table, both quick and neither publishing. */
static void on_event(const ns_event *e, void *user) {
    ns_observe *o = user;
    if (o->db) {
        ns_db_event de;
        de.id = e->id;
        de.time_ns = e->time_ns;
        snprintf(de.kind, sizeof de.kind, "%s", ns_event_kind_name(e->kind));
        snprintf(de.model, sizeof de.model, "%s", e->model);
        snprintf(de.request_id, sizeof de.request_id, "%s", e->request_id);
        snprintf(de.detail, sizeof de.detail, "%s", e->detail);
        ns_db_add_event(o->db, &de);
        if (e->kind == NS_EV_LOAD_COMPLETED) record_model(o, e, "load");
        else if (e->kind == NS_EV_LOAD_FAILED) record_model(o, e, "load_failed");
        else if (e->kind == NS_EV_UNLOADED) record_model(o, e, "unload");
    }
    ns_gen_record g;
    if (!ns_gen_record_from_event(e, &g)) return;
    ns_profiler_add(o->profiler, &g);
    if (o->db) {
        ns_db_generation dg;
        memset(&dg, 0, sizeof dg);
        dg.time_ns = g.time_ns;
        snprintf(dg.request_id, sizeof dg.request_id, "%s", g.request_id);
        snprintf(dg.model, sizeof dg.model, "%s", g.model);
        dg.prompt_tokens = g.prompt_tokens;
        dg.cached_tokens = g.cached_tokens;
        dg.eval_tokens = g.eval_tokens;
        dg.ttft_ms = g.ttft_ms;
        dg.prompt_ms = g.prompt_ms;
        dg.prompt_tps = g.prompt_tps;
        dg.eval_ms = g.eval_ms;
        dg.eval_tps = g.eval_tps;
        dg.total_ms = g.total_ms;
        snprintf(dg.finish, sizeof dg.finish, "%s", g.finish);
        snprintf(dg.session, sizeof dg.session, "%s", g.session);
        snprintf(dg.error, sizeof dg.error, "%s", g.error);
        ns_db_add_generation(o->db, &dg);
    }
}

/* ---- the sampler's callbacks ---- */

/* Model files mapped into this process: they count in RSS once touched but
 * are page cache the kernel can take back, which a reader of the RSS figure
 * needs to know. */
static int64_t mapped_bytes(void *user) {
    ns_observe *o = user;
    ns_loaded_info *info = NULL;
    int n = 0;
    if (ns_runtime_ps(o->rt, &info, &n) != 0) return 0;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        struct stat st;
        if (info[i].opts.use_mmap >= 0 && stat(info[i].path, &st) == 0) total += (int64_t)st.st_size;
    }
    free(info);
    return total;
}

/* The monitor's and the store's sample structs are kept apart so neither
 * module depends on the other; these two are the whole mapping. */
void ns_observe_sample_to_db(const ns_resource_sample *s, ns_db_resource_sample *d) {
    memset(d, 0, sizeof *d);
    d->time_ns = s->time_ns;
    d->cpu_system_pct = s->cpu_system_pct;
    d->cpu_process_pct = s->cpu_process_pct;
    d->ram_total = s->ram_total;
    d->ram_used = s->ram_used;
    d->ram_available = s->ram_available;
    d->process_rss = s->process_rss;
    d->mapped_model = s->mapped_model;
    d->n_gpus = s->n_gpus < NS_DB_MAX_GPUS ? s->n_gpus : NS_DB_MAX_GPUS;
    for (int i = 0; i < d->n_gpus; i++) {
        const ns_gpu_reading *g = &s->gpu[i];
        d->gpu[i] = (ns_db_gpu){.vram_total = g->vram_total, .vram_used = g->vram_used, .vram_ours = g->vram_ours,
                                .util_pct = g->util_pct, .temp_c = g->temp_c, .power_w = g->power_w};
        snprintf(d->gpu[i].name, sizeof d->gpu[i].name, "%s", g->name);
    }
}

void ns_observe_sample_from_db(const ns_db_resource_sample *d, ns_resource_sample *s) {
    memset(s, 0, sizeof *s);
    s->time_ns = d->time_ns;
    s->cpu_system_pct = d->cpu_system_pct;
    s->cpu_process_pct = d->cpu_process_pct;
    s->ram_total = d->ram_total;
    s->ram_used = d->ram_used;
    s->ram_available = d->ram_available;
    s->process_rss = d->process_rss;
    s->mapped_model = d->mapped_model;
    s->n_gpus = d->n_gpus < NS_MON_MAX_GPUS ? d->n_gpus : NS_MON_MAX_GPUS;
    for (int i = 0; i < s->n_gpus; i++) {
        const ns_db_gpu *g = &d->gpu[i];
        s->gpu[i] = (ns_gpu_reading){.vram_total = g->vram_total, .vram_used = g->vram_used,
                                     .vram_ours = g->vram_ours, .util_pct = g->util_pct, .temp_c = g->temp_c,
                                     .power_w = g->power_w};
        snprintf(s->gpu[i].name, sizeof s->gpu[i].name, "%s", g->name);
    }
}

static void on_sample(const ns_resource_sample *s, void *user) {
    ns_observe *o = user;
    if (!o->db) return;
    ns_db_resource_sample d;
    ns_observe_sample_to_db(s, &d);
    ns_db_add_resource(o->db, &d);
}

static void on_alert(const ns_alert *a, void *user) {
    ns_observe *o = user;
    pthread_mutex_lock(&o->mu);
    int i = 0;
    for (; i < o->n_active; i++)
        if (strcmp(o->active[i].metric, a->metric) == 0 && o->active[i].gpu == a->gpu) break;
    if (a->fired && i == o->n_active && o->n_active < NS_OBSERVE_MAX_ALERTS) {
        o->active[o->n_active] = *a;
        o->active_since[o->n_active++] = ns_now_wall();
    } else if (!a->fired && i < o->n_active) {
        o->n_active--;
        o->active[i] = o->active[o->n_active];
        o->active_since[i] = o->active_since[o->n_active];
    }
    pthread_mutex_unlock(&o->mu);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "metric", a->metric);
    if (a->gpu >= 0) cJSON_AddNumberToObject(d, "gpu", a->gpu);
    cJSON_AddNumberToObject(d, "value", a->value);
    cJSON_AddNumberToObject(d, "threshold", a->threshold);
    char *text = cJSON_PrintUnformatted(d);
    cJSON_Delete(d);
    ns_log(a->fired ? NS_LOG_WARN : NS_LOG_INFO, "monitor", a->fired ? "alert fired" : "alert cleared",
           "metric=%s gpu=%d value=%.1f threshold=%.1f", a->metric, a->gpu, a->value, a->threshold);
    /* the sampler's thread is not a bus subscriber, so it may publish */
    ns_events_publish(o->bus, a->fired ? NS_EV_ALERT_FIRED : NS_EV_ALERT_CLEARED, "", "", text);
    free(text);
}

/* ---- life ---- */

ns_observe *ns_observe_start(const ns_observe_config *cfg, ns_events *bus, ns_runtime *rt, char *err, size_t errlen) {
    ns_observe *o = calloc(1, sizeof *o);
    if (!o) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    o->bus = bus;
    o->rt = rt;
    o->sub_id = -1;
    pthread_mutex_init(&o->mu, NULL);
    o->alerts = cfg->alerts;
    if (!(o->profiler = ns_profiler_new(0)) || !(o->requests = ns_request_stats_new())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!cfg->db_path || strcmp(cfg->db_path, "off") != 0) {
        if (cfg->db_path && *cfg->db_path) snprintf(o->db_path, sizeof o->db_path, "%s", cfg->db_path);
        else if (ns_db_default_path(o->db_path, sizeof o->db_path, err, errlen) != 0) goto fail;
        char why[512];
        if (!(o->db = ns_db_open(o->db_path, NULL, why, sizeof why))) {
            snprintf(err, errlen, "cannot open the metrics database %.300s: %s", o->db_path, why);
            goto fail;
        }
        ns_log_info("monitor", "metrics database open", "path=\"%s\" schema=%d", o->db_path, ns_db_schema_version());
    }
    o->sub_id = ns_events_subscribe(bus, on_event, o);
    if (o->sub_id < 0) {
        snprintf(err, errlen, "cannot subscribe to events");
        goto fail;
    }
    o->interval_ns = cfg->sample_interval_ns ? cfg->sample_interval_ns : NS_SAMPLER_DEFAULT_INTERVAL_NS;
    if (o->interval_ns > 0) {
        ns_sampler_config sc = {.interval_ns = o->interval_ns, .no_gpu = cfg->no_gpu, .alerts = o->alerts,
                                .user = o, .mapped_bytes = mapped_bytes, .on_sample = on_sample,
                                .on_alert = on_alert};
        if (!(o->sampler = ns_sampler_start(&sc, err, errlen))) goto fail;
    }
    return o;
fail:
    ns_observe_stop(o);
    return NULL;
}

void ns_observe_stop_sampler(ns_observe *o) {
    if (!o) return;
    ns_sampler_stop(o->sampler);
    o->sampler = NULL;
}

void ns_observe_stop(ns_observe *o) {
    if (!o) return;
    ns_sampler_stop(o->sampler);
    if (o->sub_id >= 0) ns_events_unsubscribe(o->bus, o->sub_id);
    ns_db_close(o->db);
    ns_profiler_free(o->profiler);
    ns_request_stats_free(o->requests);
    pthread_mutex_destroy(&o->mu);
    free(o);
}

void ns_observe_http_done(ns_observe *o, const ns_http_done *d) { ns_request_stats_add(o->requests, d); }

void ns_observe_set_alerts(ns_observe *o, const ns_alerts_config *cfg) {
    pthread_mutex_lock(&o->mu);
    if (cfg->ram_pct >= 0) o->alerts.ram_pct = cfg->ram_pct;
    if (cfg->vram_pct >= 0) o->alerts.vram_pct = cfg->vram_pct;
    if (cfg->temp_c >= 0) o->alerts.temp_c = cfg->temp_c;
    if (cfg->clear_margin_pct >= 0) o->alerts.clear_margin_pct = cfg->clear_margin_pct;
    if (cfg->temp_clear_margin_c >= 0) o->alerts.temp_clear_margin_c = cfg->temp_clear_margin_c;
    ns_alerts_config now = o->alerts;
    pthread_mutex_unlock(&o->mu);
    if (o->sampler) ns_sampler_set_alerts(o->sampler, &now);
}

int ns_observe_alerts(ns_observe *o, ns_alerts_config *cfg, ns_alert *active, int64_t *since, int max) {
    pthread_mutex_lock(&o->mu);
    *cfg = o->alerts;
    int n = o->n_active < max ? o->n_active : max;
    for (int i = 0; i < n; i++) {
        active[i] = o->active[i];
        since[i] = o->active_since[i];
    }
    pthread_mutex_unlock(&o->mu);
    return n;
}
