/* The frame of `nstack ai watch`, apart from the terminal: the data one
 * frame shows (filled from the server's JSON answers, or from a local
 * reading when the server cannot be reached) and a renderer that lays it out
 * for a given width and height. No escape sequences and no terminal calls
 * here, so the unit tests render frames of any size into a buffer.
 *
 * Every line of a frame is at most `width` columns (UTF-8 sequences are
 * never cut, control bytes and invalid UTF-8 from the server become '?'),
 * and a frame has at most `height` lines (0: no limit, for a snapshot). */
#ifndef NS_CLI_WATCH_VIEW_H
#define NS_CLI_WATCH_VIEW_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "monitor/sample.h"

#define WV_MAX_GPUS 8
#define WV_MAX_MODELS 16
#define WV_MAX_GENS 5
#define WV_MAX_ALERTS 8

typedef struct {
    char name[96];
    double vram_total, vram_used; /* bytes, -1 unknown */
    double util_pct, temp_c, power_w; /* -1 unknown */
} wv_gpu;

typedef struct {
    char name[128];
    double size, size_vram; /* bytes, -1 unknown */
    int active, queued;     /* -1 unknown */
} wv_model;

typedef struct {
    char model[128];
    char finish[16];
    double tokens_per_s, ttft_ms; /* -1 unknown */
    int eval_tokens;
} wv_gen;

typedef struct {
    char host[256];     /* the server's base URL */
    bool reachable;     /* false: the machine's numbers were read here */
    char error[256];    /* why the server could not be read (unreachable) */
    char clock[16];     /* "HH:MM:SS" of the reading, "" for none */
    double cpu_pct;     /* -1 unknown */
    int cores;          /* 0 unknown */
    double ram_total, ram_used; /* bytes, -1 unknown */
    int n_gpus;
    wv_gpu gpus[WV_MAX_GPUS];
    int n_models, n_models_total; /* shown, and all the server reported */
    wv_model models[WV_MAX_MODELS];
    int n_gens;
    wv_gen gens[WV_MAX_GENS];
    int n_alerts;
    char alerts[WV_MAX_ALERTS][128];
} watch_data;

/* Empty data for host (every number unknown). */
void watch_data_init(watch_data *d, const char *host);

/* From the answers of GET /api/resources, /api/ps and
 * /api/metrics/generations; any of them may be NULL (not fetched). The
 * models come from /api/ps when given, else from /api/resources. */
void watch_data_from_json(watch_data *d, const cJSON *resources, const cJSON *ps, const cJSON *generations);

/* From a local reading (ns_monitor_read_now), for an unreachable server. */
void watch_data_from_sample(watch_data *d, const ns_resource_sample *s);

/* Renders one frame: lines separated by '\n' (none after the last), NUL
 * terminated, truncated to fit cap. width is clamped to at least 10.
 * Returns the number of lines. */
int watch_render(const watch_data *d, int width, int height, char *buf, size_t cap);

/* The display width of a UTF-8 string (wide East Asian characters and
 * emoji count 2, invalid bytes 1). For the tests and the renderer. */
int watch_text_width(const char *s);

#endif
