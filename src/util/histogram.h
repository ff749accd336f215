/* A fixed-bucket histogram in Prometheus's shape: upper bounds in
 * ascending order, counts per bucket plus one above the last bound, a sum
 * and a count. Not locked: its owner serialises observe and copy. */
#ifndef NS_UTIL_HISTOGRAM_H
#define NS_UTIL_HISTOGRAM_H

#include <stdint.h>

#define NS_HIST_MAX_BOUNDS 16

typedef struct {
    int n_bounds;
    double bounds[NS_HIST_MAX_BOUNDS];
    uint64_t counts[NS_HIST_MAX_BOUNDS + 1]; /* counts[i]: v <= bounds[i] and above bounds[i-1]; counts[n]: above all */
    double sum;
    uint64_t count;
} ns_histogram;

/* n_bounds is cut to NS_HIST_MAX_BOUNDS; bounds must ascend. */
void ns_histogram_init(ns_histogram *h, const double *bounds, int n_bounds);
void ns_histogram_observe(ns_histogram *h, double v);
/* Observations <= bounds[i] (Prometheus's cumulative "le" count). */
uint64_t ns_histogram_cumulative(const ns_histogram *h, int i);

#endif
