/* Threshold alerts with hysteresis (alerts.h). */
#include "monitor/alerts.h"

#include <string.h>

void ns_alerts_init(ns_alerts *a, const ns_alerts_config *cfg) {
    memset(a, 0, sizeof *a);
    ns_alerts_set_config(a, cfg);
}

void ns_alerts_set_config(ns_alerts *a, const ns_alerts_config *cfg) {
    if (cfg)
        a->cfg = *cfg;
    else
        memset(&a->cfg, 0, sizeof a->cfg);
    if (a->cfg.clear_margin_pct <= 0) a->cfg.clear_margin_pct = NS_ALERTS_DEFAULT_MARGIN;
    if (a->cfg.temp_clear_margin_c <= 0) a->cfg.temp_clear_margin_c = NS_ALERTS_DEFAULT_MARGIN;
}

/* One metric's step. known = false leaves the state alone: a failed read
 * is not evidence the condition went away. */
static int step(bool *on, bool known, double value, double threshold, double margin, const char *metric, int gpu,
                ns_alert_fn cb, void *user) {
    bool next = *on;
    if (threshold <= 0)
        next = false; /* disabled: a fired alert is cleared, not left dangling */
    else if (!known)
        return 0;
    else if (!*on && value >= threshold)
        next = true;
    else if (*on && value < threshold - margin)
        next = false;
    if (next == *on) return 0;
    *on = next;
    if (cb) {
        ns_alert al = {metric, gpu, known ? value : -1, threshold, next};
        cb(&al, user);
    }
    return 1;
}

int ns_alerts_update(ns_alerts *a, const ns_resource_sample *s, ns_alert_fn cb, void *user) {
    const ns_alerts_config *c = &a->cfg;
    int calls = 0;
    bool ram_known = s->ram_total > 0 && s->ram_used >= 0;
    double ram = ram_known ? 100.0 * (double)s->ram_used / (double)s->ram_total : -1;
    calls += step(&a->ram_on, ram_known, ram, c->ram_pct, c->clear_margin_pct, "ram_pct", -1, cb, user);
    int n = s->n_gpus < NS_MON_MAX_GPUS ? s->n_gpus : NS_MON_MAX_GPUS;
    for (int i = 0; i < n; i++) {
        const ns_gpu_reading *g = &s->gpu[i];
        bool vram_known = g->vram_total > 0 && g->vram_used >= 0;
        double vram = vram_known ? 100.0 * (double)g->vram_used / (double)g->vram_total : -1;
        calls += step(&a->vram_on[i], vram_known, vram, c->vram_pct, c->clear_margin_pct, "vram_pct", i, cb, user);
        bool temp_known = g->temp_c >= 0;
        calls += step(&a->temp_on[i], temp_known, g->temp_c, c->temp_c, c->temp_clear_margin_c, "temp_c", i, cb,
                      user);
    }
    return calls;
}
