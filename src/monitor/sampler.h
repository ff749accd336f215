/* The resource sampler: one thread, named "ns-sampler" (so a benchmark can
 * find it in /proc/<pid>/task/<tid>/comm and charge its CPU time), that every
 * interval reads CPU, RAM, this process's RSS, the bytes of mapped models
 * and every GPU; keeps the latest sample and a ring of recent ones; runs
 * the threshold alerts; and hands each sample to a callback.
 *
 * Cost: the /proc files stay open and are pread from offset 0 into one
 * buffer, parsed by hand; nothing is allocated per sample.
 *
 * Callbacks run on the sampler thread, outside its lock (they may call
 * ns_sampler_latest/recent/set_alerts), and must be quick: a slow one
 * delays the next sample. */
#ifndef NS_MONITOR_SAMPLER_H
#define NS_MONITOR_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "monitor/alerts.h"
#include "monitor/sample.h"

#define NS_SAMPLER_THREAD_NAME "ns-sampler"
#define NS_SAMPLER_DEFAULT_INTERVAL_NS 100000000LL /* 100 ms */
#define NS_SAMPLER_MIN_INTERVAL_NS 1000000LL       /* 1 ms */
#define NS_SAMPLER_DEFAULT_RING 600                /* 1 minute at 100 ms */

typedef struct {
    int64_t interval_ns; /* <= 0: 100 ms; raised to at least 1 ms */
    int ring;            /* samples kept for ns_sampler_recent; <= 0: 600 */
    const char *proc_root; /* NULL: "/proc" */
    bool no_gpu;           /* skip NVML entirely */
    ns_alerts_config alerts;
    void *user; /* passed to every callback below */
    /* Bytes of model files mapped right now; NULL counts 0. Called on the
     * sampler thread: must be thread-safe. */
    int64_t (*mapped_bytes)(void *user);
    void (*on_sample)(const ns_resource_sample *s, void *user);
    void (*on_alert)(const ns_alert *a, void *user);
} ns_sampler_config;

typedef struct ns_sampler ns_sampler;

/* Opens the /proc files and NVML, takes the baseline CPU reading and starts
 * the thread; the first sample arrives one interval later. NULL + err when
 * /proc cannot be read or the thread cannot start. */
ns_sampler *ns_sampler_start(const ns_sampler_config *cfg, char *err, size_t errlen);
/* Wakes the thread (it does not wait out the interval), joins it, frees
 * everything. NULL is a no-op. */
void ns_sampler_stop(ns_sampler *s);
/* The newest sample; false before the first. */
bool ns_sampler_latest(ns_sampler *s, ns_resource_sample *out);
/* Up to max of the newest samples, oldest first; returns how many. */
int ns_sampler_recent(ns_sampler *s, ns_resource_sample *out, int max);
/* New alert thresholds, applied before the next sample's alerts. */
void ns_sampler_set_alerts(ns_sampler *s, const ns_alerts_config *cfg);
/* Samples taken so far (tests and /metrics). */
uint64_t ns_sampler_count(ns_sampler *s);

/* One reading now, without a sampler: RAM, RSS and GPUs; CPU fields 0 and
 * mapped_model 0 (no callback here). For the "will this model fit" check
 * before a load. Uses the running sampler's NVML handle when there is one,
 * so it does not pay for nvmlInit. 0, or -1 when /proc cannot be read. */
int ns_monitor_read_now(ns_resource_sample *out);

#endif
