/* Everything `nstack serve` knows about itself over time, in one place:
 * the resource sampler and its alerts, the profiler, the HTTP request
 * statistics and the SQLite store, wired to the event bus. The routes of
 * routes_monitor.c and routes_events.c read from here.
 *
 * Data flow: the runtime publishes events; one bus subscriber copies each
 * into the store's queue and feeds generation records to the profiler. The
 * sampler hands each sample to the store and publishes alert events. Nothing
 * here ever blocks a request: the store writes on its own thread. */
#ifndef NS_SERVER_OBSERVE_H
#define NS_SERVER_OBSERVE_H

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>

#include "http.h"
#include "monitor/alerts.h"
#include "monitor/sampler.h"
#include "request_stats.h"
#include "runtime/events.h"
#include "runtime/profiler.h"
#include "runtime/runtime.h"
#include "store/db.h"

typedef struct {
    const char *db_path;        /* NULL: ns_db_default_path(); "off": no store */
    int64_t sample_interval_ns; /* 0: 100 ms; < 0: no sampler */
    ns_alerts_config alerts;    /* thresholds, <= 0 off (`serve` starts with the defaults below) */
    bool no_gpu;                /* do not open NVML */
} ns_observe_config;

/* Default alert thresholds: RAM and VRAM at 90 %, GPU at 85 C. */
#define NS_ALERT_RAM_PCT 90.0
#define NS_ALERT_VRAM_PCT 90.0
#define NS_ALERT_TEMP_C 85.0

#define NS_OBSERVE_MAX_ALERTS 24

typedef struct ns_observe {
    ns_events *bus;
    int sub_id;
    ns_runtime *rt;
    ns_profiler *profiler;
    ns_request_stats *requests;
    ns_db *db;                  /* NULL: store off or failed to open (logged) */
    char db_path[4096];
    ns_sampler *sampler;        /* NULL: sampler off */
    int64_t interval_ns;
    pthread_mutex_t mu;         /* guards the fields below */
    ns_alerts_config alerts;
    int n_active;
    ns_alert active[NS_OBSERVE_MAX_ALERTS]; /* alerts fired and not cleared */
    int64_t active_since[NS_OBSERVE_MAX_ALERTS];
} ns_observe;

/* Starts the parts. A store that cannot be opened is an error (a server
 * asked to persist must not run silently without it); NVML missing is not. */
ns_observe *ns_observe_start(const ns_observe_config *cfg, ns_events *bus, ns_runtime *rt, char *err, size_t errlen);
/* The sampler reads the runtime, so it stops before the runtime is freed;
 * the rest stops after, so the runtime's last events (unloads) are stored. */
void ns_observe_stop_sampler(ns_observe *o); /* NULL ok */
void ns_observe_stop(ns_observe *o);         /* NULL ok; flushes the store */

/* Between the monitor's samples and the store's rows. */
void ns_observe_sample_to_db(const ns_resource_sample *s, ns_db_resource_sample *d);
void ns_observe_sample_from_db(const ns_db_resource_sample *d, ns_resource_sample *s);

/* The HTTP layer's on_done hook (app is the server). */
void ns_observe_http_done(ns_observe *o, const ns_http_done *d);

/* New alert thresholds (fields < 0 keep the current value, 0 disables). */
void ns_observe_set_alerts(ns_observe *o, const ns_alerts_config *cfg);
/* The current thresholds and active alerts; returns how many are active. */
int ns_observe_alerts(ns_observe *o, ns_alerts_config *cfg, ns_alert *active, int64_t *since, int max);

#endif
