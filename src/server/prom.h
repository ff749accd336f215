/* Writing the Prometheus text exposition format (version 0.0.4): metric
 * families with HELP and TYPE lines, escaped label values, histograms with
 * cumulative "le" buckets. */
#ifndef NS_SERVER_PROM_H
#define NS_SERVER_PROM_H

#include "http.h"
#include "util/histogram.h"

#define NS_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* # HELP and # TYPE lines; type is "counter", "gauge" or "histogram". */
void ns_prom_family(ns_buf *out, const char *name, const char *type, const char *help);

/* A set of labels being built: `{k="v",k2="v2"}` with values escaped. */
typedef struct {
    char text[1024];
    size_t len;
} ns_prom_labels;
void ns_prom_labels_init(ns_prom_labels *l);
void ns_prom_label(ns_prom_labels *l, const char *key, const char *value);

/* name{labels} value, with integers printed as integers. */
void ns_prom_sample(ns_buf *out, const char *name, const ns_prom_labels *l, double value);

/* name_bucket{labels,le=...} for each bound and +Inf, name_sum, name_count. */
void ns_prom_histogram(ns_buf *out, const char *name, const ns_prom_labels *l, const ns_histogram *h);

#endif
