/* The runtime manager: which models are loaded, who holds them, when they
 * go (keep_alive, eviction, reload, shutdown), and the memory budget.
 *
 * One mutex (rt->mu) guards the list of models and their reference counts;
 * loading and unloading happen outside it, with the model marked LOADING or
 * UNLOADING meanwhile so that others wait for it instead of doing it twice.
 * A reaper thread sleeps until the next keep_alive expiry (a timed condvar
 * wait) and unloads what has expired or was handed to it. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "engine/cuda/cuda_backend.h"
#include "runtime/placement.h"
#include "runtime/runtime_internal.h"
#include "util/duration.h"
#include "util/log.h"

/* "3.2 GiB", or "12.5 MiB" for what would round to 0.0 GiB. */
static const char *fmt_size(int64_t bytes, char *buf, size_t len) {
    if (bytes >= (INT64_C(1) << 30) / 10) snprintf(buf, len, "%.1f GiB", (double)bytes / (double)(INT64_C(1) << 30));
    else snprintf(buf, len, "%.1f MiB", (double)bytes / (double)(1 << 20));
    return buf;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- configuration ---- */

static int env_int(const char *name, int fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || n <= 0 || n > 1 << 20) {
        ns_log_warn("runtime", "ignoring a bad setting", "var=%s value=\"%s\"", name, v);
        return fallback;
    }
    return (int)n;
}

static int64_t env_duration(const char *name, int64_t fallback) {
    const char *v = getenv(name);
    if (!v || !*v) return fallback;
    int64_t ns;
    char err[128];
    if (ns_duration_parse(v, &ns, err, sizeof err) != 0) {
        ns_log_warn("runtime", "ignoring a bad setting", "var=%s value=\"%s\"", name, v);
        return fallback;
    }
    return ns;
}

/* MemAvailable from /proc/meminfo in bytes, or -1. NSTACK_MEM_AVAILABLE
 * (bytes) replaces it where /proc/meminfo does not tell the truth (a
 * container under a memory limit sees the host's) and in tests. */
static int64_t mem_available(void) {
    const char *env = getenv("NSTACK_MEM_AVAILABLE");
    if (env && *env) {
        char *end;
        long long v = strtoll(env, &end, 10);
        if (!*end && v >= 0) return v;
        ns_log_warn("runtime", "ignoring a bad setting", "var=NSTACK_MEM_AVAILABLE value=\"%s\"", env);
    }
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return -1;
    char line[256];
    int64_t kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %" SCNd64 " kB", &kb) == 1) break;
    fclose(f);
    return kb > 0 ? kb * 1024 : -1;
}

static int online_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

static void cond_init_mono(pthread_cond_t *cv) {
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static struct timespec mono_timespec(int64_t ns) {
    struct timespec ts = {.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
    return ts;
}

/* ---- small helpers over the model list (under rt->mu) ---- */

ns_events *ns_lm_events(const ns_loaded *lm) { return lm->rt->cfg.events; }
int64_t ns_lm_request_timeout(const ns_loaded *lm) { return lm->rt->cfg.request_timeout_ns; }

static void publish(ns_runtime *rt, ns_event_kind kind, const char *model, cJSON *detail) {
    if (rt->cfg.events) {
        char *txt = detail ? cJSON_PrintUnformatted(detail) : NULL;
        ns_events_publish(rt->cfg.events, kind, model, NULL, txt);
        free(txt);
    }
    cJSON_Delete(detail);
}

static void lm_destroy(ns_loaded *lm) {
    ns_model_ref_clear(&lm->ref);
    free(lm->tmpl_err);
    free(lm);
}

static void unlink_lm(ns_runtime *rt, ns_loaded *lm) {
    for (ns_loaded **pp = &rt->models; *pp; pp = &(*pp)->next)
        if (*pp == lm) {
            *pp = lm->next;
            break;
        }
    lm->next = NULL;
    lm->removed = true;
    pthread_cond_broadcast(&rt->cv);
}

static ns_loaded *find_by_path(ns_runtime *rt, const char *path) {
    for (ns_loaded *lm = rt->models; lm; lm = lm->next)
        if (strcmp(lm->ref.path, path) == 0) return lm;
    return NULL;
}

static bool live(const ns_loaded *lm) { return lm->state == NS_LM_LOADING || lm->state == NS_LM_READY; }

/* Marks an idle model for the reaper to unload. */
static void hand_to_reaper(ns_runtime *rt, ns_loaded *lm, const char *reason) {
    lm->state = NS_LM_UNLOADING;
    lm->unload_reason = reason;
    lm->reap_pending = true;
    pthread_cond_signal(&rt->reaper_cv);
    pthread_cond_broadcast(&rt->cv);
}

/* The last reference went: start the keep_alive countdown, or hand the
 * model over to be unloaded now. */
static void went_idle(ns_runtime *rt, ns_loaded *lm) {
    if (lm->state != NS_LM_READY) return;
    if (lm->draining) hand_to_reaper(rt, lm, "reload");
    else if (lm->unload_requested) hand_to_reaper(rt, lm, "requested");
    else if (lm->keep_alive_ns == 0) hand_to_reaper(rt, lm, "expired");
    else {
        lm->expires_mono = lm->keep_alive_ns < 0 ? INT64_MAX : ns_now_mono() + lm->keep_alive_ns;
        pthread_cond_signal(&rt->reaper_cv);
    }
    pthread_cond_broadcast(&rt->cv);
}

static void unref_locked(ns_runtime *rt, ns_loaded *lm) {
    if (--lm->refs == 0) went_idle(rt, lm);
    pthread_cond_broadcast(&rt->cv);
}

/* Frees everything of a model marked UNLOADING with no references; called
 * with no lock held. Memory falls here: the KV cache and buffers are freed
 * and the file unmapped. */
static void unload_now(ns_runtime *rt, ns_loaded *lm) {
    ns_runner_stop(lm->runner);
    lm->runner = NULL;
    ns_context_free(lm->ctx);
    lm->ctx = NULL;
    ns_chat_template_free(lm->tmpl);
    lm->tmpl = NULL;
    ns_model_free(lm->model);
    lm->model = NULL;
    const char *reason = lm->unload_reason ? lm->unload_reason : "requested";
    ns_log_info("runtime", "model unloaded", "model=%s reason=%s", lm->ref.name, reason);
    if (rt->cfg.events) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "reason", reason);
        cJSON_AddNumberToObject(d, "bytes", (double)lm->est_bytes);
        publish(rt, NS_EV_UNLOADED, lm->ref.name, d);
    }
    pthread_mutex_lock(&rt->mu);
    unlink_lm(rt, lm);
    bool free_it = lm->pins == 0;
    pthread_mutex_unlock(&rt->mu);
    if (free_it) lm_destroy(lm);
}

/* ---- the reaper ---- */

static void *reaper_main(void *arg) {
    ns_runtime *rt = arg;
    pthread_mutex_lock(&rt->mu);
    while (!rt->reaper_stop) {
        int64_t now = ns_now_mono(), next = INT64_MAX;
        ns_loaded *victim = NULL;
        for (ns_loaded *lm = rt->models; lm && !victim; lm = lm->next) {
            if (lm->state == NS_LM_UNLOADING && lm->reap_pending) {
                victim = lm;
            } else if (lm->state == NS_LM_READY && lm->refs == 0) {
                if (lm->expires_mono <= now) {
                    lm->state = NS_LM_UNLOADING;
                    lm->unload_reason = "expired";
                    victim = lm;
                } else if (lm->expires_mono < next) {
                    next = lm->expires_mono;
                }
            }
        }
        if (victim) {
            victim->reap_pending = false;
            pthread_cond_broadcast(&rt->cv);
            pthread_mutex_unlock(&rt->mu);
            unload_now(rt, victim);
            pthread_mutex_lock(&rt->mu);
            continue;
        }
        if (next == INT64_MAX) {
            pthread_cond_wait(&rt->reaper_cv, &rt->mu);
        } else {
            struct timespec ts = mono_timespec(next);
            pthread_cond_timedwait(&rt->reaper_cv, &rt->mu, &ts);
        }
    }
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

/* ---- lifetime of the runtime ---- */

ns_runtime *ns_runtime_new(const ns_runtime_config *cfg, char *err, size_t errlen) {
    ns_runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    if (cfg) rt->cfg = *cfg;
    ns_runtime_config *c = &rt->cfg;
    if (c->max_loaded <= 0) c->max_loaded = env_int("NSTACK_MAX_LOADED_MODELS", 3);
    if (c->num_parallel <= 0) c->num_parallel = env_int("NSTACK_NUM_PARALLEL", 4);
    if (c->max_queue <= 0) c->max_queue = env_int("NSTACK_MAX_QUEUE", 512);
    if (c->keep_alive_ns == 0) c->keep_alive_ns = env_duration("NSTACK_KEEP_ALIVE", 5 * 60 * INT64_C(1000000000));
    if (c->mem_budget <= 0) {
        int64_t avail = mem_available();
        c->mem_budget = avail > 0 ? avail / 10 * 9 : INT64_MAX;
    }
    if (c->defaults.n_ctx <= 0) c->defaults.n_ctx = 0; /* 4096 capped per model at load */
    if (c->defaults.n_batch <= 0) c->defaults.n_batch = 512;
    if (c->defaults.n_thread <= 0) c->defaults.n_thread = online_cpus();
    if (c->defaults.num_gpu == 0) c->defaults.num_gpu = -1;
    pthread_mutex_init(&rt->mu, NULL);
    cond_init_mono(&rt->cv);
    cond_init_mono(&rt->reaper_cv);
    if (pthread_create(&rt->reaper, NULL, reaper_main, rt) != 0) {
        set_err(err, errlen, "cannot start the runtime's reaper thread");
        pthread_cond_destroy(&rt->cv);
        pthread_cond_destroy(&rt->reaper_cv);
        pthread_mutex_destroy(&rt->mu);
        free(rt);
        return NULL;
    }
    rt->reaper_started = true;
    return rt;
}

static bool any_jobs(ns_runtime *rt) {
    for (ns_loaded *lm = rt->models; lm; lm = lm->next)
        if (lm->jobs > 0) return true;
    return false;
}

static bool any_in_motion(ns_runtime *rt) {
    for (ns_loaded *lm = rt->models; lm; lm = lm->next)
        if (lm->state != NS_LM_READY || lm->jobs > 0) return true;
    return false;
}

void ns_runtime_free(ns_runtime *rt, int64_t grace_ns) {
    if (!rt) return;
    pthread_mutex_lock(&rt->mu);
    rt->shutting_down = true;
    pthread_cond_broadcast(&rt->cv);
    if (grace_ns > 0) {
        struct timespec ts = mono_timespec(ns_now_mono() + grace_ns);
        while (any_jobs(rt))
            if (pthread_cond_timedwait(&rt->cv, &rt->mu, &ts) != 0) break;
    }
    for (ns_loaded *lm = rt->models; lm; lm = lm->next)
        if (lm->state == NS_LM_READY && lm->jobs > 0) ns_runner_cancel_all(lm->runner);
    /* cancelled jobs end at their next unit; loads and unloads in progress finish */
    while (any_in_motion(rt)) pthread_cond_wait(&rt->cv, &rt->mu);
    rt->reaper_stop = true;
    pthread_cond_signal(&rt->reaper_cv);
    pthread_mutex_unlock(&rt->mu);
    pthread_join(rt->reaper, NULL);

    while (rt->models) {
        ns_loaded *lm = rt->models;
        lm->state = NS_LM_UNLOADING;
        lm->unload_reason = "shutdown";
        unload_now(rt, lm); /* unlinks it */
    }
    pthread_cond_destroy(&rt->cv);
    pthread_cond_destroy(&rt->reaper_cv);
    pthread_mutex_destroy(&rt->mu);
    free(rt);
}

/* ---- acquire ---- */

static int check_opts(const ns_load_opts *o, char *err, size_t errlen) {
    if (o->n_ctx < 0 || o->n_ctx > (1 << 20)) {
        set_err(err, errlen, "num_ctx must be in [1, %d], got %d", 1 << 20, o->n_ctx);
        return -1;
    }
    if (o->n_batch < 0 || o->n_batch > (1 << 20)) {
        set_err(err, errlen, "num_batch must be in [1, %d], got %d", 1 << 20, o->n_batch);
        return -1;
    }
    if (o->n_thread < 0 || o->n_thread > 1024) {
        set_err(err, errlen, "num_thread must be in [1, 1024], got %d", o->n_thread);
        return -1;
    }
    if (o->num_gpu < -1) {
        set_err(err, errlen, "num_gpu must be -1 (auto) or >= 0, got %d", o->num_gpu);
        return -1;
    }
    if (o->main_gpu < 0) {
        set_err(err, errlen, "main_gpu must be >= 0, got %d", o->main_gpu);
        return -1;
    }
    if (o->kv_type != NS_KV_F16 && o->kv_type != NS_KV_F32) {
        set_err(err, errlen, "unknown KV cache type %d", (int)o->kv_type);
        return -1;
    }
    return 0;
}

/* Explicit (non-default) options of a request that differ from how the
 * model was loaded. num_gpu and main_gpu are recorded but change nothing
 * in a CPU-only build, so they are no reason to reload. */
static bool opts_conflict(const ns_load_opts *want, const ns_loaded *lm) {
    const ns_load_opts *have = &lm->opts;
    if (want->n_ctx > 0 && want->n_ctx != have->n_ctx) return true;
    if (want->n_batch > 0 && want->n_batch != have->n_batch) return true;
    if (want->n_thread > 0 && want->n_thread != have->n_thread) return true;
    if (want->kv_type != NS_KV_F16 && want->kv_type != have->kv_type) return true;
    if (want->use_mmap != 0 && want->use_mmap != have->use_mmap) return true;
    return false;
}

/* The options a model is loaded with: the request's, else the runtime's
 * defaults; a default context is capped by the model's training context. */
static ns_load_opts fill_opts(const ns_loaded *lm, const ns_load_opts *want, const ns_hparams *hp) {
    const ns_load_opts *d = &lm->defaults;
    ns_load_opts o = *want;
    if (o.n_ctx <= 0) {
        o.n_ctx = d->n_ctx > 0 ? d->n_ctx : 4096;
        if (hp->n_ctx_train > 0 && o.n_ctx > hp->n_ctx_train) o.n_ctx = hp->n_ctx_train;
    }
    if (o.n_batch <= 0) o.n_batch = d->n_batch;
    if (o.n_batch > o.n_ctx) o.n_batch = o.n_ctx;
    if (o.n_thread <= 0) o.n_thread = d->n_thread;
    if (o.num_gpu < 0) o.num_gpu = d->num_gpu;
    if (o.main_gpu <= 0) o.main_gpu = d->main_gpu;
    if (o.kv_type == NS_KV_F16) o.kv_type = d->kv_type;
    if (o.use_mmap == 0) o.use_mmap = d->use_mmap < 0 ? -1 : 1;
    return o;
}

/* Bytes a loaded model takes: the mapped file, the KV cache of every slot,
 * and the forward pass's buffers (activations of one batch, attention
 * scores, logits). */
static int64_t estimate_bytes(int64_t file_size, const ns_hparams *hp, const ns_load_opts *o, int n_seq) {
    int64_t elt = o->kv_type == NS_KV_F32 ? 4 : 2;
    int64_t kv = (int64_t)hp->n_layer * 2 * o->n_ctx * n_seq * hp->n_head_kv * hp->head_dim * elt;
    int64_t dq = (int64_t)hp->n_head * hp->head_dim, dkv = (int64_t)hp->n_head_kv * hp->head_dim;
    int64_t per_row = 2 * hp->n_embd + 3 * dq + 4 * dkv + 3 * (int64_t)hp->n_ff;
    int64_t scratch = 4 * ((int64_t)o->n_batch * per_row + (int64_t)hp->n_head * o->n_ctx +
                           (int64_t)hp->n_vocab * (2 + n_seq));
    int64_t slots = 4 * (int64_t)n_seq * o->n_ctx;
    return file_size + kv + scratch + slots;
}

/* num_gpu "auto" (-1): how many layers the placement planner would put in
 * main_gpu's free VRAM (NVML; 0 without a GPU). There is no GPU backend
 * yet (issue #10), so this only records and logs the number: the model
 * runs on the CPU exactly as before. An explicit num_gpu is kept as given. */
static int plan_gpu_layers(const ns_loaded *lm) {
    if (lm->opts.num_gpu >= 0) return lm->opts.num_gpu;
    char why[160];
    int64_t vram = ns_placement_gpu_free(lm->opts.main_gpu, why, sizeof why);
    ns_placement_params pp = {.n_ctx = lm->opts.n_ctx,
                              .n_seq = lm->n_parallel,
                              .n_batch = lm->opts.n_batch,
                              .kv_type = lm->opts.kv_type,
                              .vram_free = vram,
                              .vram_reserve = NS_PLACEMENT_RESERVE_DEFAULT};
    ns_placement pl;
    char err[256];
    if (ns_placement_plan(ns_model_gguf(lm->model), &pp, &pl, err, sizeof err) != 0) {
        ns_log_warn("runtime", "placement plan failed", "model=%s error=\"%s\"", lm->ref.name, err);
        return 0;
    }
    int n = pl.num_gpu;
    ns_log_info("runtime", "placement planned (not applied: no GPU backend yet)",
                "model=%s num_gpu=%d layers=%d gpu=%d vram_free_mib=%" PRId64 " reason=\"%s\"", lm->ref.name, n,
                pl.n_layer, lm->opts.main_gpu, vram >> 20, why[0] ? why : pl.reason);
    ns_placement_clear(&pl);
    return n;
}

/* Under rt->mu, for a model about to load: evicts least recently used idle
 * models (marked UNLOADING and linked through *victims) until it fits, in
 * the runtime's count and budget and in the memory the machine has free
 * right now (which other programs change under us), counting what the
 * victims give back. 0, or an HTTP status with err. */
static int make_room(ns_runtime *rt, ns_loaded *self, int64_t need, ns_loaded **victims, char *err, size_t errlen) {
    int64_t budget = rt->cfg.mem_budget;
    int64_t avail = mem_available(), freed = 0;
    char b1[32], b2[32], b3[32];
    if (need > budget) {
        set_err(err, errlen, "model needs %s but the memory budget is %s", fmt_size(need, b1, sizeof b1),
                fmt_size(budget, b2, sizeof b2));
        return 500;
    }
    for (;;) {
        int count = 0;
        int64_t used = 0;
        ns_loaded *lru = NULL;
        for (ns_loaded *lm = rt->models; lm; lm = lm->next) {
            if (lm == self || !live(lm)) continue;
            count++;
            used += lm->est_bytes;
            if (lm->state == NS_LM_READY && lm->refs == 0 && !lm->draining &&
                (!lru || lm->last_used < lru->last_used))
                lru = lm;
        }
        bool fits_now = avail < 0 || need <= avail + freed;
        if (count + 1 <= rt->cfg.max_loaded && used + need <= budget && fits_now) return 0;
        if (!lru && !fits_now) {
            set_err(err, errlen, "not enough memory to load %s: it needs %s and the machine has %s available%s; "
                    "free memory, or lower num_ctx or num_parallel", self->ref.name, fmt_size(need, b1, sizeof b1),
                    fmt_size(avail + freed, b2, sizeof b2), freed ? " after unloading every idle model" : "");
            return 503;
        }
        if (!lru) {
            set_err(err, errlen, "no room to load %s: %d model(s) loaded and busy (at most %d, memory budget %s, %s in use)",
                    self->ref.name, count, rt->cfg.max_loaded, fmt_size(budget, b1, sizeof b1),
                    fmt_size(used, b3, sizeof b3));
            return 503;
        }
        freed += lru->est_bytes;
        lru->state = NS_LM_UNLOADING;
        lru->unload_reason = "evicted";
        lru->next_victim = *victims;
        *victims = lru;
    }
}

/* Loads lm (state LOADING, in the list, pinned by nobody yet). On success
 * it is READY with one reference for the caller. */
static int load(ns_runtime *rt, ns_loaded *lm, char *err, size_t errlen) {
    const char *name = lm->ref.name;
    int64_t t0 = ns_now_mono();
    ns_log_info("runtime", "loading model", "model=%s path=\"%s\"", name, lm->ref.path);
    if (rt->cfg.events) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "path", lm->ref.path);
        publish(rt, NS_EV_LOAD_STARTED, name, d);
    }
    int status = 500;
    char why[512];
    int use_mmap = lm->asked.use_mmap ? lm->asked.use_mmap : lm->defaults.use_mmap;
    lm->model = ns_model_load_ex(lm->ref.path, use_mmap < 0 ? NS_GGUF_READ : NS_GGUF_MMAP, why, sizeof why);
    if (!lm->model) goto fail;
    if (!ns_model_vocab(lm->model)) {
        snprintf(why, sizeof why, "%s cannot generate text: %s", name, ns_model_vocab_error(lm->model));
        goto fail;
    }
    const ns_hparams *hp = ns_model_hparams(lm->model);
    lm->opts = fill_opts(lm, &lm->asked, hp);
    int64_t need = estimate_bytes(lm->ref.size, hp, &lm->opts, lm->n_parallel);
    lm->planned_gpu_layers = plan_gpu_layers(lm);
    /* layers the planner would offload: ask the CUDA backend once per
     * process whether there is a device, which logs the reason when not
     * (the forward pass does not offload yet: docs/cuda.md) */
    if (lm->planned_gpu_layers > 0) (void)ns_cuda_available(NULL, 0);

    ns_loaded *victims = NULL;
    pthread_mutex_lock(&rt->mu);
    if (rt->shutting_down) {
        status = 503;
        snprintf(why, sizeof why, "server is shutting down");
    } else {
        status = make_room(rt, lm, need, &victims, why, sizeof why);
        if (status == 0) lm->est_bytes = need;
    }
    pthread_mutex_unlock(&rt->mu);
    while (victims) {
        ns_loaded *v = victims;
        victims = v->next_victim;
        unload_now(rt, v);
    }
    if (status != 0) goto fail;
    status = 500;

    ns_context_params cp = {.n_ctx = lm->opts.n_ctx,
                            .n_seq = lm->n_parallel,
                            .n_threads = lm->opts.n_thread,
                            .n_batch = lm->opts.n_batch,
                            .kv_type = lm->opts.kv_type};
    lm->ctx = ns_context_new(lm->model, &cp, why, sizeof why);
    if (!lm->ctx) goto fail;
    snprintf(lm->kv_fingerprint, sizeof lm->kv_fingerprint, "%s layers=%d kv_dim=%d kv=%s", ns_arch_name(hp->arch),
             hp->n_layer, hp->n_head_kv * hp->head_dim, lm->opts.kv_type == NS_KV_F32 ? "f32" : "f16");
    char *tsrc = ns_gguf_get_str(ns_model_gguf(lm->model), "tokenizer.chat_template");
    if (tsrc) {
        char terr[256];
        lm->tmpl = ns_chat_template_new(tsrc, terr, sizeof terr);
        if (!lm->tmpl) {
            lm->tmpl_err = strdup(terr);
            ns_log_warn("runtime", "the model's chat template does not parse", "model=%s error=\"%s\"", name, terr);
        }
        free(tsrc);
    }
    lm->runner = ns_runner_start(lm, why, sizeof why);
    if (!lm->runner) goto fail;

    int64_t ms = (ns_now_mono() - t0) / 1000000;
    ns_log_info("runtime", "model loaded", "model=%s ms=%" PRId64 " n_ctx=%d parallel=%d size_mib=%" PRId64, name, ms,
                lm->opts.n_ctx, lm->n_parallel, lm->est_bytes >> 20);
    if (rt->cfg.events) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "path", lm->ref.path);
        cJSON_AddNumberToObject(d, "ms", (double)ms);
        cJSON_AddNumberToObject(d, "bytes", (double)lm->est_bytes);
        cJSON_AddNumberToObject(d, "n_ctx", lm->opts.n_ctx);
        cJSON_AddNumberToObject(d, "parallel", lm->n_parallel);
        publish(rt, NS_EV_LOAD_COMPLETED, name, d);
    }
    return 0;

fail:
    ns_context_free(lm->ctx);
    lm->ctx = NULL;
    ns_chat_template_free(lm->tmpl);
    lm->tmpl = NULL;
    ns_model_free(lm->model);
    lm->model = NULL;
    ns_log(status == 503 ? NS_LOG_WARN : NS_LOG_ERROR, "runtime", "model failed to load", "model=%s status=%d error=\"%s\"",
           name, status, why);
    if (rt->cfg.events) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "path", lm->ref.path);
        cJSON_AddStringToObject(d, "error", why);
        publish(rt, NS_EV_LOAD_FAILED, name, d);
    }
    set_err(err, errlen, "%s", why);
    return status;
}

static int resolve(ns_runtime *rt, const char *name, ns_model_ref *ref, char *err, size_t errlen) {
    memset(ref, 0, sizeof *ref);
    if (rt->cfg.store) return ns_store_resolve(rt->cfg.store, name, ref, err, errlen);
    /* no store: only paths */
    if (access(name, R_OK) != 0) {
        set_err(err, errlen, "model '%s' not found", name);
        return -1;
    }
    snprintf(ref->name, sizeof ref->name, "%s", name);
    snprintf(ref->path, sizeof ref->path, "%s", name);
    FILE *f = fopen(name, "rb");
    if (f) {
        if (fseek(f, 0, SEEK_END) == 0) ref->size = ftell(f);
        fclose(f);
    }
    ref->source = NS_SRC_PATH;
    return 0;
}

ns_loaded *ns_runtime_acquire(ns_runtime *rt, const char *name, const ns_load_opts *opts, int64_t *load_ns,
                              int *status, char *err, size_t errlen) {
    int64_t load_dummy;
    int status_dummy;
    if (!load_ns) load_ns = &load_dummy;
    if (!status) status = &status_dummy;
    *load_ns = 0;
    ns_load_opts want = {.num_gpu = -1};
    if (opts) want = *opts;
    if (!name || !*name) {
        *status = 400;
        set_err(err, errlen, "model is required");
        return NULL;
    }
    if (check_opts(&want, err, errlen) != 0) {
        *status = 400;
        return NULL;
    }
    ns_model_ref ref;
    if (resolve(rt, name, &ref, err, errlen) != 0) {
        *status = 404;
        return NULL;
    }
    int64_t t0 = ns_now_mono();
    bool waited = false;
    ns_loaded *lm = NULL;
    pthread_mutex_lock(&rt->mu);
    for (;;) {
        if (rt->shutting_down) {
            pthread_mutex_unlock(&rt->mu);
            ns_model_ref_clear(&ref);
            *status = 503;
            set_err(err, errlen, "server is shutting down");
            return NULL;
        }
        lm = find_by_path(rt, ref.path);
        if (!lm) break;
        if (lm->state == NS_LM_LOADING) {
            /* one load for everyone who asks meanwhile */
            lm->pins++;
            waited = true;
            pthread_cond_wait(&rt->cv, &rt->mu);
            lm->pins--;
            if (lm->removed) {
                bool failed = lm->failed;
                if (failed) {
                    *status = lm->load_status;
                    set_err(err, errlen, "%s", lm->load_err);
                }
                if (lm->pins == 0) lm_destroy(lm);
                if (failed) {
                    pthread_mutex_unlock(&rt->mu);
                    ns_model_ref_clear(&ref);
                    return NULL;
                }
            }
            continue;
        }
        if (lm->state == NS_LM_UNLOADING || lm->draining) {
            pthread_cond_wait(&rt->cv, &rt->mu);
            continue;
        }
        if (opts_conflict(&want, lm)) {
            if (lm->refs == 0) {
                lm->state = NS_LM_UNLOADING;
                lm->unload_reason = "reload";
                pthread_mutex_unlock(&rt->mu);
                unload_now(rt, lm);
                pthread_mutex_lock(&rt->mu);
            } else {
                /* new requests wait too, so that the model drains */
                lm->draining = true;
                pthread_cond_wait(&rt->cv, &rt->mu);
            }
            continue;
        }
        lm->refs++;
        lm->last_used = ++rt->clock;
        pthread_mutex_unlock(&rt->mu);
        ns_model_ref_clear(&ref);
        if (waited) *load_ns = ns_now_mono() - t0;
        *status = 200;
        return lm;
    }

    /* not loaded: this thread loads it, others wait on the placeholder */
    lm = calloc(1, sizeof *lm);
    if (!lm) {
        pthread_mutex_unlock(&rt->mu);
        ns_model_ref_clear(&ref);
        *status = 500;
        set_err(err, errlen, "out of memory");
        return NULL;
    }
    lm->rt = rt;
    lm->state = NS_LM_LOADING;
    lm->ref = ref; /* owns the texts now */
    lm->asked = want;
    lm->n_parallel = rt->cfg.num_parallel;
    lm->keep_alive_ns = rt->cfg.keep_alive_ns;
    lm->defaults = rt->cfg.defaults; /* under rt->mu: ns_runtime_retune may change them */
    ns_loaded **tail = &rt->models;
    while (*tail) tail = &(*tail)->next;
    *tail = lm;
    pthread_mutex_unlock(&rt->mu);

    int rc = load(rt, lm, err, errlen);

    pthread_mutex_lock(&rt->mu);
    if (rc != 0) {
        lm->failed = true;
        lm->load_status = rc;
        snprintf(lm->load_err, sizeof lm->load_err, "%s", err ? err : "");
        unlink_lm(rt, lm);
        bool free_it = lm->pins == 0;
        pthread_mutex_unlock(&rt->mu);
        if (free_it) lm_destroy(lm);
        *status = rc;
        return NULL;
    }
    lm->state = NS_LM_READY;
    lm->refs = 1;
    lm->last_used = ++rt->clock;
    lm->loaded_at_wall = ns_now_wall();
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    *load_ns = ns_now_mono() - t0;
    *status = 200;
    return lm;
}

void ns_runtime_release(ns_runtime *rt, ns_loaded *lm, int64_t keep_alive_ns) {
    if (!lm) return;
    pthread_mutex_lock(&rt->mu);
    lm->keep_alive_ns = keep_alive_ns == NS_KEEP_ALIVE_DEFAULT ? rt->cfg.keep_alive_ns : keep_alive_ns;
    unref_locked(rt, lm);
    pthread_mutex_unlock(&rt->mu);
}

int ns_lm_job_ref(ns_loaded *lm, char *err, size_t errlen) {
    ns_runtime *rt = lm->rt;
    pthread_mutex_lock(&rt->mu);
    if (rt->shutting_down || lm->state != NS_LM_READY) {
        pthread_mutex_unlock(&rt->mu);
        set_err(err, errlen, "server is shutting down");
        return -1;
    }
    lm->refs++;
    lm->jobs++;
    pthread_mutex_unlock(&rt->mu);
    return 0;
}

void ns_lm_job_done(ns_loaded *lm) {
    ns_runtime *rt = lm->rt;
    pthread_mutex_lock(&rt->mu);
    lm->jobs--;
    unref_locked(rt, lm);
    pthread_mutex_unlock(&rt->mu);
}

/* ---- unload ---- */

/* Under rt->mu: the loaded model a name (or path) designates. */
static ns_loaded *find_named(ns_runtime *rt, const char *name, const ns_model_ref *ref) {
    for (ns_loaded *lm = rt->models; lm; lm = lm->next) {
        if (!live(lm)) continue;
        if (ref && strcmp(lm->ref.path, ref->path) == 0) return lm;
        if (strcasecmp(lm->ref.name, name) == 0 || strcmp(lm->ref.path, name) == 0) return lm;
    }
    return NULL;
}

/* Under rt->mu: unload lm at once when idle (returns true: the caller must
 * call unload_now), else once its jobs end. */
static bool request_unload(ns_loaded *lm) {
    if (lm->state == NS_LM_READY && lm->refs == 0) {
        lm->state = NS_LM_UNLOADING;
        lm->unload_reason = "requested";
        return true;
    }
    lm->unload_requested = true;
    return false;
}

int ns_runtime_unload(ns_runtime *rt, const char *name, char *err, size_t errlen) {
    if (!name || !*name) {
        set_err(err, errlen, "model is required");
        return -1;
    }
    ns_model_ref ref;
    char rerr[256];
    bool resolved = (rt->cfg.store ? ns_store_resolve(rt->cfg.store, name, &ref, rerr, sizeof rerr) : -1) == 0;
    pthread_mutex_lock(&rt->mu);
    ns_loaded *lm = find_named(rt, name, resolved ? &ref : NULL);
    if (resolved) ns_model_ref_clear(&ref);
    if (!lm) {
        pthread_mutex_unlock(&rt->mu);
        set_err(err, errlen, "model '%s' is not loaded", name);
        return -1;
    }
    bool now = request_unload(lm);
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
    if (now) unload_now(rt, lm);
    return 0;
}

void ns_runtime_unload_all(ns_runtime *rt) {
    pthread_mutex_lock(&rt->mu);
    for (;;) {
        ns_loaded *idle = NULL;
        for (ns_loaded *lm = rt->models; lm; lm = lm->next) {
            if (!live(lm) || lm->unload_requested) continue;
            if (request_unload(lm)) {
                idle = lm;
                break;
            }
        }
        if (!idle) break;
        pthread_mutex_unlock(&rt->mu);
        unload_now(rt, idle);
        pthread_mutex_lock(&rt->mu);
    }
    pthread_cond_broadcast(&rt->cv);
    pthread_mutex_unlock(&rt->mu);
}

/* ---- what is loaded ---- */

const ns_model *ns_loaded_model(const ns_loaded *lm) { return lm->model; }
const ns_vocab *ns_loaded_vocab(const ns_loaded *lm) { return ns_model_vocab(lm->model); }
const ns_model_ref *ns_loaded_ref(const ns_loaded *lm) { return &lm->ref; }
const ns_chat_template *ns_loaded_template(const ns_loaded *lm) { return lm->tmpl; }
const char *ns_loaded_template_error(const ns_loaded *lm) { return lm->tmpl_err; }
int ns_loaded_n_ctx(const ns_loaded *lm) { return lm->opts.n_ctx; }
const ns_load_opts *ns_loaded_opts(const ns_loaded *lm) { return &lm->opts; }

void ns_runtime_retune(ns_runtime *rt, const ns_runtime_config *c) {
    int parallel = c->num_parallel > 0 ? c->num_parallel : env_int("NSTACK_NUM_PARALLEL", 4);
    int64_t keep = c->keep_alive_ns != 0 ? c->keep_alive_ns
                                         : env_duration("NSTACK_KEEP_ALIVE", 5 * 60 * INT64_C(1000000000));
    pthread_mutex_lock(&rt->mu);
    rt->cfg.num_parallel = parallel;
    rt->cfg.keep_alive_ns = keep;
    rt->cfg.defaults.n_ctx = c->defaults.n_ctx > 0 ? c->defaults.n_ctx : 0;
    rt->cfg.defaults.n_batch = c->defaults.n_batch > 0 ? c->defaults.n_batch : 512;
    pthread_mutex_unlock(&rt->mu);
}

void ns_runtime_get_config(ns_runtime *rt, ns_runtime_config *out) {
    pthread_mutex_lock(&rt->mu);
    *out = rt->cfg;
    pthread_mutex_unlock(&rt->mu);
}

int ns_runtime_ps(ns_runtime *rt, ns_loaded_info **out, int *n) {
    *out = NULL;
    *n = 0;
    pthread_mutex_lock(&rt->mu);
    int count = 0;
    for (ns_loaded *lm = rt->models; lm; lm = lm->next)
        if (lm->state == NS_LM_READY) count++;
    ns_loaded_info *info = calloc((size_t)(count ? count : 1), sizeof *info);
    if (!info) {
        pthread_mutex_unlock(&rt->mu);
        return -1;
    }
    int64_t mono = ns_now_mono(), wall = ns_now_wall();
    int i = 0;
    for (ns_loaded *lm = rt->models; lm; lm = lm->next) {
        if (lm->state != NS_LM_READY) continue;
        ns_loaded_info *x = &info[i++];
        snprintf(x->name, sizeof x->name, "%s", lm->ref.name);
        snprintf(x->path, sizeof x->path, "%s", lm->ref.path);
        snprintf(x->digest, sizeof x->digest, "%s", lm->ref.digest);
        x->size = lm->est_bytes;
        x->size_vram = 0;
        x->planned_gpu_layers = lm->planned_gpu_layers;
        x->loaded_at = lm->loaded_at_wall;
        if (lm->keep_alive_ns < 0) x->expires_at = INT64_MAX;
        else if (lm->refs > 0) x->expires_at = wall + lm->keep_alive_ns;
        else x->expires_at = wall + (lm->expires_mono - mono);
        x->n_ctx = lm->opts.n_ctx;
        x->n_parallel = lm->n_parallel;
        ns_runner_counts(lm->runner, &x->active_jobs, &x->queued_jobs);
        x->opts = lm->opts;
    }
    pthread_mutex_unlock(&rt->mu);
    *out = info;
    *n = count;
    return 0;
}

/* ---- session KV (runtime.h) ---- */

const char *ns_loaded_kv_fingerprint(const ns_loaded *lm) { return lm->kv_fingerprint; }

/* The arguments every session KV call shares, and the one it needs besides. */
static bool kv_args_ok(const char *what, const char *session, const int32_t *tokens, int n_tokens, bool needed_given,
                       char *err, size_t errlen) {
    if (!session || !session[0] || n_tokens < 0 || (n_tokens > 0 && !tokens) || !needed_given) {
        set_err(err, errlen, "bad session %s arguments", what);
        return false;
    }
    return true;
}

int ns_session_kv_export(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, void **kv,
                         size_t *kv_bytes, char *err, size_t errlen) {
    if (!kv_args_ok("export", session, tokens, n_tokens, kv != NULL, err, errlen)) return 400;
    return ns_runner_kv_export(lm->runner, session, tokens, n_tokens, kv, kv_bytes, err, errlen);
}

int ns_session_kv_import(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, const void *kv,
                         size_t kv_bytes, char *err, size_t errlen) {
    if (!kv_args_ok("import", session, tokens, n_tokens, kv != NULL, err, errlen)) return 400;
    return ns_runner_kv_import(lm->runner, session, tokens, n_tokens, kv, kv_bytes, err, errlen);
}

int ns_session_kv_save_with(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                            void *arg, char *err, size_t errlen) {
    if (!kv_args_ok("save", session, tokens, n_tokens, io != NULL, err, errlen)) return 400;
    return ns_runner_kv_save_with(lm->runner, session, tokens, n_tokens, io, arg, err, errlen);
}

int ns_session_kv_load_with(ns_loaded *lm, const char *session, const int32_t *tokens, int n_tokens, ns_kv_io_fn io,
                            void *arg, char *err, size_t errlen) {
    if (!kv_args_ok("load", session, tokens, n_tokens, io != NULL, err, errlen)) return 400;
    return ns_runner_kv_load_with(lm->runner, session, tokens, n_tokens, io, arg, err, errlen);
}

void ns_runtime_session_forget(ns_runtime *rt, const char *session) {
    if (!session) return;
    pthread_mutex_lock(&rt->mu);
    for (ns_loaded *lm = rt->models; lm; lm = lm->next)
        if (lm->state == NS_LM_READY && lm->runner) ns_runner_forget(lm->runner, session);
    pthread_mutex_unlock(&rt->mu);
}
