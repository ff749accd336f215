/* The resource sampler thread (sampler.h). */
#define _GNU_SOURCE /* pthread_setname_np */
#include "monitor/sampler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "monitor/nvml.h"
#include "monitor/proc.h"
#include "util/log.h"

struct ns_sampler {
    ns_sampler_config cfg;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake; /* signalled by stop; waits use CLOCK_MONOTONIC */
    bool stop;

    /* Owned by the thread (and by start before the thread exists). */
    ns_proc_reader proc;
    ns_nvml *nvml;
    ns_alerts alerts;
    ns_cpu_times prev_cpu;
    int64_t prev_proc_ticks;
    bool have_prev;
    ns_resource_sample scratch;

    /* Under lock. */
    ns_alerts_config pending_alerts;
    bool alerts_pending;
    ns_resource_sample *ring;
    int ring_cap, ring_head /* next slot to write */, ring_len;
    uint64_t n_samples;
};

/* The NVML handle of the first running sampler, lent to
 * ns_monitor_read_now so that a check before each model load does not pay
 * for nvmlInit. The lock is held across a borrowed read, so a stopping
 * sampler cannot close the handle under it. */
static pthread_mutex_t shared_lock = PTHREAD_MUTEX_INITIALIZER;
static ns_nvml *shared_nvml;

static void set_err(char *err, size_t errlen, const char *fmt, const char *a) {
    if (err && errlen) snprintf(err, errlen, fmt, a);
}

static int64_t wall_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void add_ns(struct timespec *t, int64_t ns) {
    int64_t v = (int64_t)t->tv_nsec + ns % 1000000000LL;
    t->tv_sec += (time_t)(ns / 1000000000LL + v / 1000000000LL);
    t->tv_nsec = (long)(v % 1000000000LL);
}

static int64_t diff_ns(const struct timespec *a, const struct timespec *b) {
    return (int64_t)(a->tv_sec - b->tv_sec) * 1000000000LL + (a->tv_nsec - b->tv_nsec);
}

static void read_gpus(ns_nvml *nvml, ns_resource_sample *out) {
    int n = ns_nvml_count(nvml);
    out->n_gpus = 0;
    for (int i = 0; i < n && out->n_gpus < NS_MON_MAX_GPUS; i++)
        if (ns_nvml_read(nvml, i, &out->gpu[out->n_gpus]) == 0) out->n_gpus++;
}

/* One sample. A file that fails to read leaves its fields 0 rather than
 * dropping the sample: the GPU half may still be good. */
static void take_sample(ns_sampler *s, ns_resource_sample *out) {
    memset(out, 0, sizeof *out);
    out->time_ns = wall_ns();
    ns_cpu_times cpu;
    int64_t ticks;
    if (ns_proc_reader_cpu(&s->proc, &cpu) == 0 && ns_proc_reader_self_cpu(&s->proc, &ticks) == 0) {
        out->n_cpus = cpu.n_cpus;
        if (s->have_prev)
            ns_cpu_percent(&s->prev_cpu, &cpu, s->prev_proc_ticks, ticks, &out->cpu_system_pct,
                           &out->cpu_process_pct);
        s->prev_cpu = cpu;
        s->prev_proc_ticks = ticks;
        s->have_prev = true;
    }
    int64_t total, avail;
    if (ns_proc_reader_meminfo(&s->proc, &total, &avail) == 0) {
        out->ram_total = total;
        out->ram_available = avail;
        out->ram_used = total - avail;
    }
    int64_t rss;
    if (ns_proc_reader_rss(&s->proc, &rss) == 0) out->process_rss = rss;
    if (s->cfg.mapped_bytes) {
        int64_t m = s->cfg.mapped_bytes(s->cfg.user);
        out->mapped_model = m > 0 ? m : 0;
    }
    read_gpus(s->nvml, out);
}

static void on_alert(const ns_alert *a, void *user) {
    ns_sampler *s = user;
    if (a->gpu >= 0)
        ns_log(a->fired ? NS_LOG_WARN : NS_LOG_INFO, "monitor", a->fired ? "resource alert" : "resource alert cleared",
               "metric=%s gpu=%d value=%.1f threshold=%.1f", a->metric, a->gpu, a->value, a->threshold);
    else
        ns_log(a->fired ? NS_LOG_WARN : NS_LOG_INFO, "monitor", a->fired ? "resource alert" : "resource alert cleared",
               "metric=%s value=%.1f threshold=%.1f", a->metric, a->value, a->threshold);
    if (s->cfg.on_alert) s->cfg.on_alert(a, s->cfg.user);
}

static void *run(void *arg) {
    ns_sampler *s = arg;
    pthread_setname_np(pthread_self(), NS_SAMPLER_THREAD_NAME);
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&s->lock);
    for (;;) {
        add_ns(&next, s->cfg.interval_ns);
        while (!s->stop)
            if (pthread_cond_timedwait(&s->wake, &s->lock, &next) == ETIMEDOUT) break;
        if (s->stop) break;
        pthread_mutex_unlock(&s->lock);

        take_sample(s, &s->scratch);

        pthread_mutex_lock(&s->lock);
        s->ring[s->ring_head] = s->scratch;
        s->ring_head = (s->ring_head + 1) % s->ring_cap;
        if (s->ring_len < s->ring_cap) s->ring_len++;
        s->n_samples++;
        bool new_alerts = s->alerts_pending;
        ns_alerts_config alerts_cfg = s->pending_alerts;
        s->alerts_pending = false;
        pthread_mutex_unlock(&s->lock);

        /* Callbacks outside the lock: they may call back into the sampler. */
        if (new_alerts) ns_alerts_set_config(&s->alerts, &alerts_cfg);
        ns_alerts_update(&s->alerts, &s->scratch, on_alert, s);
        if (s->cfg.on_sample) s->cfg.on_sample(&s->scratch, s->cfg.user);

        /* Fell more than an interval behind (a slow callback, a suspended
         * machine): start the schedule again from now instead of firing a
         * burst of samples to catch up. */
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (diff_ns(&now, &next) > s->cfg.interval_ns) next = now;
        pthread_mutex_lock(&s->lock);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void free_sampler(ns_sampler *s) {
    pthread_mutex_lock(&shared_lock);
    if (shared_nvml && shared_nvml == s->nvml) shared_nvml = NULL;
    pthread_mutex_unlock(&shared_lock);
    ns_nvml_close(s->nvml);
    ns_proc_reader_close(&s->proc);
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s->ring);
    free(s);
}

ns_sampler *ns_sampler_start(const ns_sampler_config *cfg, char *err, size_t errlen) {
    ns_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        set_err(err, errlen, "%s", "out of memory");
        return NULL;
    }
    if (cfg) s->cfg = *cfg;
    if (s->cfg.interval_ns <= 0) s->cfg.interval_ns = NS_SAMPLER_DEFAULT_INTERVAL_NS;
    if (s->cfg.interval_ns < NS_SAMPLER_MIN_INTERVAL_NS) s->cfg.interval_ns = NS_SAMPLER_MIN_INTERVAL_NS;
    if (s->cfg.ring <= 0) s->cfg.ring = NS_SAMPLER_DEFAULT_RING;
    const char *root = s->cfg.proc_root ? s->cfg.proc_root : "/proc";
    s->cfg.proc_root = NULL; /* the caller's string is not kept */

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s->lock, NULL);
    s->proc.fd_stat = s->proc.fd_self_stat = s->proc.fd_meminfo = s->proc.fd_statm = -1;

    s->ring_cap = s->cfg.ring;
    s->ring = calloc((size_t)s->ring_cap, sizeof *s->ring);
    if (!s->ring) {
        set_err(err, errlen, "%s", "out of memory for the sample ring");
        free_sampler(s);
        return NULL;
    }
    if (ns_proc_reader_open(&s->proc, root, err, errlen) != 0) {
        free_sampler(s);
        return NULL;
    }
    ns_alerts_init(&s->alerts, &s->cfg.alerts);
    if (!s->cfg.no_gpu) s->nvml = ns_nvml_open();

    /* Baseline for the first sample's CPU deltas; it also reads every file
     * once, so a /proc that opens but does not parse fails here, loudly. */
    int64_t total, avail;
    if (ns_proc_reader_cpu(&s->proc, &s->prev_cpu) != 0 ||
        ns_proc_reader_self_cpu(&s->proc, &s->prev_proc_ticks) != 0 ||
        ns_proc_reader_meminfo(&s->proc, &total, &avail) != 0) {
        set_err(err, errlen, "cannot parse stat, self/stat or meminfo under %s", root);
        free_sampler(s);
        return NULL;
    }
    s->have_prev = true;

    int rc = pthread_create(&s->thread, NULL, run, s);
    if (rc != 0) {
        set_err(err, errlen, "pthread_create: %s", strerror(rc));
        free_sampler(s);
        return NULL;
    }
    if (s->nvml) {
        pthread_mutex_lock(&shared_lock);
        if (!shared_nvml) shared_nvml = s->nvml;
        pthread_mutex_unlock(&shared_lock);
    }
    ns_log_info("monitor", "sampler started", "interval_ms=%.1f ring=%d gpus=%d", s->cfg.interval_ns / 1e6,
                s->ring_cap, ns_nvml_count(s->nvml));
    return s;
}

void ns_sampler_stop(ns_sampler *s) {
    if (!s) return;
    pthread_mutex_lock(&s->lock);
    s->stop = true;
    pthread_cond_signal(&s->wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    free_sampler(s);
}

bool ns_sampler_latest(ns_sampler *s, ns_resource_sample *out) {
    pthread_mutex_lock(&s->lock);
    bool have = s->ring_len > 0;
    if (have) *out = s->ring[(s->ring_head + s->ring_cap - 1) % s->ring_cap];
    pthread_mutex_unlock(&s->lock);
    return have;
}

int ns_sampler_recent(ns_sampler *s, ns_resource_sample *out, int max) {
    if (max <= 0) return 0;
    pthread_mutex_lock(&s->lock);
    int n = s->ring_len < max ? s->ring_len : max;
    int first = (s->ring_head + s->ring_cap - n) % s->ring_cap;
    for (int i = 0; i < n; i++) out[i] = s->ring[(first + i) % s->ring_cap];
    pthread_mutex_unlock(&s->lock);
    return n;
}

void ns_sampler_set_alerts(ns_sampler *s, const ns_alerts_config *cfg) {
    pthread_mutex_lock(&s->lock);
    if (cfg)
        s->pending_alerts = *cfg;
    else
        memset(&s->pending_alerts, 0, sizeof s->pending_alerts);
    s->alerts_pending = true;
    pthread_mutex_unlock(&s->lock);
}

uint64_t ns_sampler_count(ns_sampler *s) {
    pthread_mutex_lock(&s->lock);
    uint64_t n = s->n_samples;
    pthread_mutex_unlock(&s->lock);
    return n;
}

int ns_monitor_read_now(ns_resource_sample *out) {
    memset(out, 0, sizeof *out);
    out->time_ns = wall_ns();
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    out->n_cpus = cpus > 0 ? (int)cpus : 0;
    int64_t total, avail, rss;
    if (ns_proc_meminfo("/proc", &total, &avail) != 0) return -1;
    out->ram_total = total;
    out->ram_available = avail;
    out->ram_used = total - avail;
    if (ns_proc_self_rss("/proc", &rss) == 0) out->process_rss = rss;

    pthread_mutex_lock(&shared_lock);
    if (shared_nvml) {
        read_gpus(shared_nvml, out);
        pthread_mutex_unlock(&shared_lock);
        return 0;
    }
    pthread_mutex_unlock(&shared_lock);
    ns_nvml *nvml = ns_nvml_open();
    read_gpus(nvml, out);
    ns_nvml_close(nvml);
    return 0;
}
