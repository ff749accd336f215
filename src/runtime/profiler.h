/* The performance profiler: one record per finished generation (from the
 * runner's generation_completed / generation_failed events, whose timing
 * fields are the ones the API responses report) and per-model totals,
 * averages, peaks and latency histograms for /metrics and the dashboard.
 * Thread-safe; adding a record is a few hundred nanoseconds under a mutex,
 * so it can run inside an event-bus subscriber. */
#ifndef NS_RUNTIME_PROFILER_H
#define NS_RUNTIME_PROFILER_H

#include <stdbool.h>
#include <stdint.h>

#include "runtime/events.h"
#include "util/histogram.h"

typedef struct {
    int64_t time_ns; /* wall clock when it ended */
    char model[256];
    char request_id[48];
    char finish[16]; /* "stop", "length", "context", "cancelled", "timeout", "error" */
    char session[65];
    char error[256];
    bool failed;
    int prompt_tokens, cached_tokens, eval_tokens;
    double ttft_ms;   /* submitted -> first token */
    double queued_ms; /* submitted -> admitted to a slot */
    double prompt_ms, prompt_tps; /* admitted -> first token; evaluated prompt tokens per second */
    double eval_ms, eval_tps;     /* first token -> end; generated tokens per second */
    double total_ms;              /* submitted -> end */
} ns_gen_record;

/* Fills out from a generation_completed / generation_failed event; false
 * for any other event or a detail that is not a JSON object. */
bool ns_gen_record_from_event(const ns_event *e, ns_gen_record *out);

#define NS_PROFILER_FINISHES 8

typedef struct {
    char model[256];
    uint64_t requests, failed;
    uint64_t prompt_tokens, cached_tokens, eval_tokens;
    double prompt_ms, eval_ms, total_ms, ttft_ms; /* sums */
    double peak_tps;                               /* best eval_tps of a request with >= 2 tokens */
    int64_t last_ns;
    struct {
        char name[16];
        uint64_t count;
    } finishes[NS_PROFILER_FINISHES];
    ns_histogram ttft_s, total_s; /* seconds */
} ns_model_perf;

typedef struct ns_profiler ns_profiler;

/* keep_recent: how many records ns_profiler_recent can return (0: 1000). */
ns_profiler *ns_profiler_new(int keep_recent);
void ns_profiler_free(ns_profiler *p);
void ns_profiler_add(ns_profiler *p, const ns_gen_record *g);

/* Copies of every model's totals, sorted by name; *out malloc'd (NULL when
 * n is 0). 0, or -1 out of memory. */
int ns_profiler_models(ns_profiler *p, ns_model_perf **out, int *n);

/* Up to max of the most recent records, newest first, of one model (NULL or
 * "": all). Returns the count. */
int ns_profiler_recent(ns_profiler *p, const char *model, ns_gen_record *out, int max);

/* Averages derived from totals: tokens per second over all generation time,
 * mean TTFT (0 when nothing yet). */
double ns_model_perf_avg_tps(const ns_model_perf *m);
double ns_model_perf_avg_ttft_ms(const ns_model_perf *m);

#endif
