/* Threshold alerts with hysteresis over resource samples. Pure logic: no
 * clock, no threads; the sampler owns one ns_alerts and feeds it samples.
 *
 * An alert fires once when its value reaches the threshold (>=) and clears
 * once when the value falls below threshold - margin; in between nothing is
 * reported however the value jitters, so a value hovering around the line
 * does not flap. Metrics: "ram_pct" (gpu -1), and per GPU "vram_pct" and
 * "temp_c". An unknown value (no total, -1 reading) changes nothing. */
#ifndef NS_MONITOR_ALERTS_H
#define NS_MONITOR_ALERTS_H

#include <stdbool.h>

#include "monitor/sample.h"

typedef struct {
    /* Thresholds; <= 0 disables that alert (and clears it if it had fired). */
    double ram_pct, vram_pct, temp_c;
    /* Hysteresis; <= 0 means the default, 5 (percentage points / degrees C). */
    double clear_margin_pct, temp_clear_margin_c;
} ns_alerts_config;

typedef struct {
    const char *metric; /* "ram_pct", "vram_pct" or "temp_c" (static) */
    int gpu;            /* GPU index, -1 for RAM */
    double value, threshold;
    bool fired; /* true: crossed up; false: cleared */
} ns_alert;

typedef void (*ns_alert_fn)(const ns_alert *alert, void *user);

typedef struct {
    ns_alerts_config cfg;
    bool ram_on;
    bool vram_on[NS_MON_MAX_GPUS], temp_on[NS_MON_MAX_GPUS];
} ns_alerts;

#define NS_ALERTS_DEFAULT_MARGIN 5.0

/* Starts with nothing fired. cfg may be NULL (everything disabled). */
void ns_alerts_init(ns_alerts *a, const ns_alerts_config *cfg);
/* New thresholds; fired state is kept and judged against them on the next
 * update. */
void ns_alerts_set_config(ns_alerts *a, const ns_alerts_config *cfg);
/* Compares the sample with the thresholds and calls cb for each change of
 * state; returns how many calls it made. cb may be NULL. */
int ns_alerts_update(ns_alerts *a, const ns_resource_sample *s, ns_alert_fn cb, void *user);

#endif
