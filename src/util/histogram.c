#include "util/histogram.h"

#include <string.h>

void ns_histogram_init(ns_histogram *h, const double *bounds, int n_bounds) {
    memset(h, 0, sizeof *h);
    if (n_bounds < 0) n_bounds = 0;
    if (n_bounds > NS_HIST_MAX_BOUNDS) n_bounds = NS_HIST_MAX_BOUNDS;
    h->n_bounds = n_bounds;
    if (n_bounds) memcpy(h->bounds, bounds, sizeof(double) * (size_t)n_bounds);
}

void ns_histogram_observe(ns_histogram *h, double v) {
    int i = 0;
    while (i < h->n_bounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

uint64_t ns_histogram_cumulative(const ns_histogram *h, int i) {
    uint64_t c = 0;
    for (int k = 0; k <= i && k <= h->n_bounds; k++) c += h->counts[k];
    return c;
}
