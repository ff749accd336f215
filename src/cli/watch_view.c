/* The frame of `nstack ai watch` (watch_view.h). */
#define _GNU_SOURCE /* localtime_r */
#include "watch_view.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_LINES 96
#define LINE_CAP 1024

/* ---- UTF-8 and display width ---- */

/* The code point at s (n bytes left): its length, 0 for an invalid or
 * truncated sequence (overlongs and surrogates included). */
static int utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (n == 0) return 0;
    unsigned c = s[0];
    int len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

/* Columns a code point takes: the usual wide ranges 2, combining marks and
 * zero-width characters 0, the rest 1. Not locale-dependent on purpose (the
 * tests must give the same frames everywhere); a terminal that disagrees
 * on some rare character is off by one column on that line only. */
static int cp_width(uint32_t cp) {
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0xFE00 && cp <= 0xFE0F))
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF && cp != 0x303F) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) ||
        (cp >= 0xFF00 && cp <= 0xFF60) || (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

int watch_text_width(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    int w = 0;
    while (n > 0) {
        uint32_t cp;
        int len = utf8_decode(p, n, &cp);
        if (len == 0) {
            w++, p++, n--;
            continue;
        }
        w += cp < 0x20 || cp == 0x7F ? 1 : cp_width(cp);
        p += len, n -= (size_t)len;
    }
    return w;
}

/* Copies src into dst (cap bytes) as at most `cols` columns: control bytes
 * and invalid UTF-8 become '?' (text from a server must not move the
 * cursor or change colours), a sequence is never cut, and a string that
 * does not fit ends with '~' to show that it was cut. Returns the columns
 * written. */
static int fit(char *dst, size_t cap, const char *src, int cols) {
    size_t o = 0;
    int w = 0;
    const unsigned char *p = (const unsigned char *)src;
    size_t n = strlen(src);
    if (cap == 0) return 0;
    if (cols < 0) cols = 0;
    /* where the text stood when it last had room for the '~' */
    size_t o_mark = 0;
    int w_mark = 0;
    bool cut = false;
    while (n > 0) {
        uint32_t cp;
        int len = utf8_decode(p, n, &cp);
        const char *bytes = (const char *)p;
        int cw;
        if (len == 0 || cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0)) {
            bytes = "?";
            cw = 1;
            if (len == 0) len = 1;
        } else {
            cw = cp_width(cp);
        }
        size_t blen = bytes == (const char *)p ? (size_t)len : 1;
        if (w + cw > cols || o + blen + 2 > cap) {
            cut = true;
            break;
        }
        if (w + cw <= cols - 1) o_mark = o + blen, w_mark = w + cw;
        memcpy(dst + o, bytes, blen);
        o += blen, w += cw;
        p += len, n -= (size_t)len;
    }
    if (cut && cols > 0) {
        /* back to the last point with one column left, then the marker;
         * zero-width marks after a character go with it */
        o = o_mark, w = w_mark;
        dst[o++] = '~';
        w++;
    }
    dst[o] = 0;
    return w;
}

/* ---- the frame's lines ---- */

typedef struct {
    int width;
    int n;
    char line[MAX_LINES][LINE_CAP];
} frame;

static void add_line(frame *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_line(frame *f, const char *fmt, ...) {
    if (f->n >= MAX_LINES) return;
    char tmp[LINE_CAP * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char *l = f->line[f->n++];
    fit(l, LINE_CAP, tmp, f->width);
    /* no trailing blanks: a padded last cell would only cost bytes */
    size_t n = strlen(l);
    while (n > 0 && l[n - 1] == ' ') l[--n] = 0;
}

/* A cell of a table row: text fitted into exactly cols columns (padded),
 * appended to row. */
static void cell(char *row, size_t cap, const char *text, int cols) {
    size_t len = strlen(row);
    if (len >= cap - 1 || cols <= 0) return;
    int w = fit(row + len, cap - len, text, cols);
    len = strlen(row);
    while (w < cols && len + 1 < cap) row[len++] = ' ', w++;
    row[len] = 0;
}

static void fmt_bytes(double b, char *buf, size_t n) {
    if (b < 0 || !isfinite(b)) {
        snprintf(buf, n, "-");
        return;
    }
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) b /= 1024, u++;
    if (u == 0) snprintf(buf, n, "%.0f B", b);
    else snprintf(buf, n, "%.1f %s", b, units[u]);
}

/* "[####......]" of cols columns in all; "" when there is no room. */
static void bar(double pct, int cols, char *buf, size_t n) {
    buf[0] = 0;
    if (cols < 5 || (size_t)cols + 1 > n) return;
    int inner = cols - 2;
    if (pct < 0 || !isfinite(pct)) pct = 0;
    if (pct > 100) pct = 100;
    int full = (int)lround(pct * inner / 100.0);
    buf[0] = '[';
    for (int i = 0; i < inner; i++) buf[1 + i] = i < full ? '#' : '.';
    buf[cols - 1] = ']';
    buf[cols] = 0;
}

/* A labelled bar line: "LABEL [####....] TAIL", the bar taking what the
 * width leaves (at most 40 columns), none when under 5. */
static void bar_line(frame *f, const char *label, double pct, const char *tail) {
    int cols = f->width - watch_text_width(label) - watch_text_width(tail) - 2;
    if (cols > 40) cols = 40;
    char b[64];
    bar(pct, cols, b, sizeof b);
    if (*b) add_line(f, "%s %s %s", label, b, tail);
    else add_line(f, "%s %s", label, tail);
}

static double pct_of(double part, double whole) { return whole > 0 && part >= 0 ? 100.0 * part / whole : -1; }

static void render_resources(frame *f, const watch_data *d) {
    char tail[128], a[32], b[32];
    if (d->cpu_pct >= 0) {
        if (d->cores > 0) snprintf(tail, sizeof tail, "%5.1f%%  %d cores", d->cpu_pct, d->cores);
        else snprintf(tail, sizeof tail, "%5.1f%%", d->cpu_pct);
        bar_line(f, "CPU ", d->cpu_pct, tail);
    } else {
        add_line(f, "CPU  -%s", d->reachable ? "" : " (measured by the server only)");
    }
    if (d->ram_total > 0) {
        fmt_bytes(d->ram_used, a, sizeof a);
        fmt_bytes(d->ram_total, b, sizeof b);
        double p = pct_of(d->ram_used, d->ram_total);
        snprintf(tail, sizeof tail, "%s / %s  %.0f%%", a, b, p < 0 ? 0 : p);
        bar_line(f, "RAM ", p, tail);
    } else {
        add_line(f, "RAM  -");
    }
    if (d->n_gpus == 0) {
        add_line(f, "GPU  none (no NVIDIA GPU seen by NVML)");
        return;
    }
    for (int i = 0; i < d->n_gpus; i++) {
        const wv_gpu *g = &d->gpus[i];
        char label[16], extra[96] = "", part[32];
        snprintf(label, sizeof label, "GPU%d", i);
        add_line(f, "%s %s", label, g->name[0] ? g->name : "(unnamed)");
        if (g->util_pct >= 0) {
            snprintf(part, sizeof part, "  util %.0f%%", g->util_pct);
            strcat(extra, part);
        }
        if (g->temp_c >= 0) {
            snprintf(part, sizeof part, "  %.0fC", g->temp_c);
            strcat(extra, part);
        }
        if (g->power_w >= 0) {
            snprintf(part, sizeof part, "  %.0fW", g->power_w);
            strcat(extra, part);
        }
        fmt_bytes(g->vram_used, a, sizeof a);
        fmt_bytes(g->vram_total, b, sizeof b);
        double p = pct_of(g->vram_used, g->vram_total);
        snprintf(tail, sizeof tail, "%s / %s%s", a, b, extra);
        bar_line(f, "     VRAM", p, tail);
    }
}

/* A table: the first column (a name) takes what the others leave; the
 * others are dropped from the right while the name would get fewer than
 * 14 columns, so a narrow terminal shows fewer columns rather than
 * names cut to nothing. */
typedef struct {
    int n_cols;        /* columns shown, the name included */
    int name_cols;     /* the name's width */
    const int *widths; /* the other columns' widths */
} table_fit;

static table_fit fit_table(int width, const int *widths, int n_other) {
    table_fit t = {.widths = widths};
    int k = n_other;
    for (;;) {
        int fixed = 0;
        for (int i = 0; i < k; i++) fixed += widths[i];
        int nc = width - 2 - fixed;
        if (nc >= 14 || k == 0) {
            t.n_cols = k + 1;
            t.name_cols = nc < 6 ? 6 : nc;
            return t;
        }
        k--;
    }
}

static void table_row(frame *f, const table_fit *t, const char *const *cells) {
    char row[LINE_CAP];
    snprintf(row, sizeof row, "  ");
    /* one space always parts the name from the next column */
    cell(row, sizeof row, cells[0], t->n_cols > 1 ? t->name_cols - 1 : t->name_cols);
    if (t->n_cols > 1) cell(row, sizeof row, " ", 1);
    for (int i = 1; i < t->n_cols; i++) cell(row, sizeof row, cells[i], t->widths[i - 1]);
    add_line(f, "%s", row);
}

static void render_models(frame *f, const watch_data *d) {
    if (!d->reachable) return;
    if (d->n_models_total == 0) {
        add_line(f, "MODELS  none loaded");
        return;
    }
    add_line(f, "MODELS  %d loaded", d->n_models_total);
    static const int widths[] = {10, 10, 7, 6};
    table_fit t = fit_table(f->width, widths, 4);
    table_row(f, &t, (const char *const[]){"NAME", "SIZE", "VRAM", "ACTIVE", "QUEUED"});
    for (int i = 0; i < d->n_models; i++) {
        const wv_model *m = &d->models[i];
        char sz[32], vr[32], ac[16], qu[16];
        fmt_bytes(m->size, sz, sizeof sz);
        fmt_bytes(m->size_vram, vr, sizeof vr);
        if (m->active >= 0) snprintf(ac, sizeof ac, "%d", m->active);
        else snprintf(ac, sizeof ac, "-");
        if (m->queued >= 0) snprintf(qu, sizeof qu, "%d", m->queued);
        else snprintf(qu, sizeof qu, "-");
        table_row(f, &t, (const char *const[]){m->name, sz, vr, ac, qu});
    }
    if (d->n_models_total > d->n_models) add_line(f, "  ... and %d more", d->n_models_total - d->n_models);
}

static void render_generations(frame *f, const watch_data *d) {
    if (!d->reachable) return;
    if (d->n_gens == 0) {
        add_line(f, "RECENT GENERATIONS  none yet");
        return;
    }
    add_line(f, "RECENT GENERATIONS");
    static const int widths[] = {10, 10, 8, 8};
    table_fit t = fit_table(f->width, widths, 4);
    table_row(f, &t, (const char *const[]){"MODEL", "TOK/S", "TTFT", "TOKENS", "FINISH"});
    for (int i = 0; i < d->n_gens; i++) {
        const wv_gen *g = &d->gens[i];
        char tps[32], ttft[32], tok[16];
        if (g->tokens_per_s >= 0) snprintf(tps, sizeof tps, "%.1f", g->tokens_per_s);
        else snprintf(tps, sizeof tps, "-");
        if (g->ttft_ms < 0) snprintf(ttft, sizeof ttft, "-");
        else if (g->ttft_ms < 1000) snprintf(ttft, sizeof ttft, "%.0f ms", g->ttft_ms);
        else snprintf(ttft, sizeof ttft, "%.2f s", g->ttft_ms / 1000);
        snprintf(tok, sizeof tok, "%d", g->eval_tokens);
        table_row(f, &t, (const char *const[]){g->model, tps, ttft, tok, g->finish});
    }
}

int watch_render(const watch_data *d, int width, int height, char *buf, size_t cap) {
    static frame fr; /* ~100 KB: not on the stack; the CLI renders from one thread */
    frame *f = &fr;
    f->n = 0;
    f->width = width < 10 ? 10 : width;

    /* the header: title and server on the left, clock and key on the right
     * when they fit */
    char left[512], right[64];
    snprintf(left, sizeof left, "nstack ai watch  %s", d->host);
    snprintf(right, sizeof right, "%s%sq quits", d->clock, d->clock[0] ? "  " : "");
    int lw = watch_text_width(left), rw = watch_text_width(right);
    if (lw + 2 + rw <= f->width) add_line(f, "%s%*s%s", left, f->width - lw - rw, "", right);
    else add_line(f, "%s", left);
    if (!d->reachable) {
        add_line(f, "server: unreachable (%s)", d->host);
        if (d->error[0]) add_line(f, "  %s", d->error);
    }
    add_line(f, "%s", "");
    render_resources(f, d);
    if (d->reachable) {
        add_line(f, "%s", "");
        render_models(f, d);
        add_line(f, "%s", "");
        render_generations(f, d);
        add_line(f, "%s", "");
        if (d->n_alerts == 0) add_line(f, "ALERTS  none");
        else add_line(f, "ALERTS  %d active", d->n_alerts);
        for (int i = 0; i < d->n_alerts; i++) add_line(f, "  ! %s", d->alerts[i]);
    }

    /* too many lines for the height: the first ones, and a last line that
     * says how many are hidden */
    int n = f->n;
    if (height > 0 && n > height) {
        int hidden = n - (height - 1);
        n = height - 1;
        char more[64];
        snprintf(more, sizeof more, "(+%d lines: enlarge the terminal)", hidden);
        fit(f->line[n], LINE_CAP, more, f->width);
        n++;
    }
    size_t o = 0;
    if (cap == 0) return 0;
    buf[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(f->line[i]);
        if (o + len + 2 > cap) break;
        if (i > 0) buf[o++] = '\n';
        memcpy(buf + o, f->line[i], len);
        o += len;
        buf[o] = 0;
    }
    return n;
}

/* ---- filling the data ---- */

void watch_data_init(watch_data *d, const char *host) {
    memset(d, 0, sizeof *d);
    snprintf(d->host, sizeof d->host, "%s", host ? host : "");
    d->cpu_pct = -1;
    d->ram_total = d->ram_used = -1;
}

static double num(const cJSON *o, const char *key, double dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static const char *str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void alert_text(const cJSON *a, char *buf, size_t n) {
    const char *metric = str(a, "metric");
    double value = num(a, "value", -1), threshold = num(a, "threshold", -1);
    int gpu = (int)num(a, "gpu", -1);
    if (strcmp(metric, "ram_pct") == 0)
        snprintf(buf, n, "RAM %.0f%% in use (threshold %.0f%%)", value, threshold);
    else if (strcmp(metric, "vram_pct") == 0)
        snprintf(buf, n, "GPU%d VRAM %.0f%% in use (threshold %.0f%%)", gpu, value, threshold);
    else if (strcmp(metric, "temp_c") == 0)
        snprintf(buf, n, "GPU%d at %.0fC (threshold %.0fC)", gpu, value, threshold);
    else
        snprintf(buf, n, "%s %g (threshold %g)", metric, value, threshold);
}

static void models_from(watch_data *d, const cJSON *list, const char *active_key, const char *queued_key) {
    d->n_models = d->n_models_total = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, list) {
        d->n_models_total++;
        if (d->n_models >= WV_MAX_MODELS) continue;
        wv_model *w = &d->models[d->n_models++];
        snprintf(w->name, sizeof w->name, "%s", str(m, "name"));
        w->size = num(m, "size", -1);
        w->size_vram = num(m, "size_vram", -1);
        w->active = (int)num(m, active_key, -1);
        w->queued = (int)num(m, queued_key, -1);
    }
}

void watch_data_from_json(watch_data *d, const cJSON *res, const cJSON *ps, const cJSON *gens) {
    d->reachable = true;
    if (res) {
        const char *t = str(res, "time");
        /* RFC 3339: the clock is at 11..18 */
        if (strlen(t) >= 19 && t[10] == 'T') snprintf(d->clock, sizeof d->clock, "%.8s", t + 11);
        const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(res, "cpu");
        d->cpu_pct = num(cpu, "system_pct", -1);
        d->cores = (int)num(cpu, "cores", 0);
        const cJSON *ram = cJSON_GetObjectItemCaseSensitive(res, "ram");
        d->ram_total = num(ram, "total", -1);
        d->ram_used = num(ram, "used", -1);
        d->n_gpus = 0;
        const cJSON *g;
        cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(res, "gpus")) {
            if (d->n_gpus >= WV_MAX_GPUS) break;
            wv_gpu *w = &d->gpus[d->n_gpus++];
            snprintf(w->name, sizeof w->name, "%s", str(g, "name"));
            w->vram_total = num(g, "vram_total", -1);
            w->vram_used = num(g, "vram_used", -1);
            w->util_pct = num(g, "util_pct", -1);
            w->temp_c = num(g, "temp_c", -1);
            w->power_w = num(g, "power_w", -1);
        }
        if (!ps) models_from(d, cJSON_GetObjectItemCaseSensitive(res, "models"), "active_jobs", "queued_jobs");
        d->n_alerts = 0;
        const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(res, "alerts");
        const cJSON *a;
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(alerts, "active")) {
            if (d->n_alerts >= WV_MAX_ALERTS) break;
            alert_text(a, d->alerts[d->n_alerts], sizeof d->alerts[0]);
            d->n_alerts++;
        }
    }
    if (ps) models_from(d, cJSON_GetObjectItemCaseSensitive(ps, "models"), "active_requests", "queued_requests");
    if (gens) {
        d->n_gens = 0;
        const cJSON *g;
        cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(gens, "generations")) {
            if (d->n_gens >= WV_MAX_GENS) break;
            wv_gen *w = &d->gens[d->n_gens++];
            snprintf(w->model, sizeof w->model, "%s", str(g, "model"));
            snprintf(w->finish, sizeof w->finish, "%s", str(g, "finish"));
            w->tokens_per_s = num(g, "eval_tokens_per_s", -1);
            w->ttft_ms = num(g, "ttft_ms", -1);
            w->eval_tokens = (int)num(g, "eval_tokens", 0);
        }
    }
}

void watch_data_from_sample(watch_data *d, const ns_resource_sample *s) {
    d->reachable = false;
    time_t t = (time_t)(s->time_ns / 1000000000LL);
    struct tm tm;
    if (s->time_ns > 0 && localtime_r(&t, &tm)) strftime(d->clock, sizeof d->clock, "%H:%M:%S", &tm);
    /* a single reading has no CPU share (that needs two) */
    d->cpu_pct = s->cpu_system_pct > 0 ? s->cpu_system_pct : -1;
    d->cores = s->n_cpus;
    d->ram_total = s->ram_total > 0 ? (double)s->ram_total : -1;
    d->ram_used = s->ram_used >= 0 ? (double)s->ram_used : -1;
    d->n_gpus = 0;
    for (int i = 0; i < s->n_gpus && i < NS_MON_MAX_GPUS && d->n_gpus < WV_MAX_GPUS; i++) {
        const ns_gpu_reading *g = &s->gpu[i];
        wv_gpu *w = &d->gpus[d->n_gpus++];
        snprintf(w->name, sizeof w->name, "%s", g->name);
        w->vram_total = (double)g->vram_total;
        w->vram_used = (double)g->vram_used;
        w->util_pct = g->util_pct;
        w->temp_c = g->temp_c;
        w->power_w = g->power_w;
    }
    d->n_models = d->n_models_total = d->n_gens = d->n_alerts = 0;
}
