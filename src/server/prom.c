#include "prom.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void ns_prom_family(ns_buf *out, const char *name, const char *type, const char *help) {
    ns_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void ns_prom_labels_init(ns_prom_labels *l) {
    l->len = 0;
    l->text[0] = '\0';
}

/* Appends c to the label text when it fits; a label set that would not fit
 * is cut, which never happens with our short names and values. */
static void put(ns_prom_labels *l, char c) {
    if (l->len + 1 < sizeof l->text) {
        l->text[l->len++] = c;
        l->text[l->len] = '\0';
    }
}

void ns_prom_label(ns_prom_labels *l, const char *key, const char *value) {
    if (l->len) put(l, ',');
    for (const char *p = key; *p; p++) put(l, *p);
    put(l, '=');
    put(l, '"');
    for (const char *p = value; *p; p++) {
        if (*p == '\\' || *p == '"') {
            put(l, '\\');
            put(l, *p);
        } else if (*p == '\n') {
            put(l, '\\');
            put(l, 'n');
        } else {
            put(l, *p);
        }
    }
    put(l, '"');
}

static void number(ns_buf *out, double v) {
    if (isnan(v)) ns_buf_printf(out, "NaN");
    else if (isinf(v)) ns_buf_printf(out, v > 0 ? "+Inf" : "-Inf");
    else if (v == floor(v) && fabs(v) < 1e15) ns_buf_printf(out, "%.0f", v);
    else ns_buf_printf(out, "%.9g", v);
}

static void labels_with(ns_buf *out, const ns_prom_labels *l, const char *extra) {
    bool any = (l && l->len) || extra;
    if (!any) return;
    ns_buf_printf(out, "{%s%s%s}", l && l->len ? l->text : "", l && l->len && extra ? "," : "", extra ? extra : "");
}

void ns_prom_sample(ns_buf *out, const char *name, const ns_prom_labels *l, double value) {
    ns_buf_printf(out, "%s", name);
    labels_with(out, l, NULL);
    ns_buf_printf(out, " ");
    number(out, value);
    ns_buf_printf(out, "\n");
}

void ns_prom_histogram(ns_buf *out, const char *name, const ns_prom_labels *l, const ns_histogram *h) {
    char le[64];
    for (int i = 0; i <= h->n_bounds; i++) {
        if (i < h->n_bounds) snprintf(le, sizeof le, "le=\"%g\"", h->bounds[i]);
        else snprintf(le, sizeof le, "le=\"+Inf\"");
        ns_buf_printf(out, "%s_bucket", name);
        labels_with(out, l, le);
        ns_buf_printf(out, " %llu\n", (unsigned long long)ns_histogram_cumulative(h, i));
    }
    ns_buf_printf(out, "%s_sum", name);
    labels_with(out, l, NULL);
    ns_buf_printf(out, " ");
    number(out, h->sum);
    ns_buf_printf(out, "\n%s_count", name);
    labels_with(out, l, NULL);
    ns_buf_printf(out, " %llu\n", (unsigned long long)h->count);
}
