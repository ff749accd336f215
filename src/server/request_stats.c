#include "request_stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prom.h"

static const double latency_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};

typedef struct {
    char method[16];
    const char *route; /* a route table pattern: lives as long as the program */
    int status;
    uint64_t count;
} count_row;

typedef struct {
    char method[16];
    const char *route;
    ns_histogram latency;
} latency_row;

struct ns_request_stats {
    pthread_mutex_t mu;
    count_row *counts;
    int n_counts, cap_counts;
    latency_row *latencies;
    int n_latencies, cap_latencies;
};

ns_request_stats *ns_request_stats_new(void) {
    ns_request_stats *st = calloc(1, sizeof *st);
    if (st && pthread_mutex_init(&st->mu, NULL) != 0) {
        free(st);
        return NULL;
    }
    return st;
}

void ns_request_stats_free(ns_request_stats *st) {
    if (!st) return;
    pthread_mutex_destroy(&st->mu);
    free(st->counts);
    free(st->latencies);
    free(st);
}

/* Grows an array of rows by one; NULL when out of memory. */
static void *grow(void *rows, int *n, int *cap, size_t size) {
    if (*n == *cap) {
        int c = *cap ? *cap * 2 : 16;
        void *g = realloc(rows, (size_t)c * size);
        if (!g) return NULL;
        rows = g;
        *cap = c;
    }
    return rows;
}

void ns_request_stats_add(ns_request_stats *st, const ns_http_done *d) {
    pthread_mutex_lock(&st->mu);
    int i = 0;
    for (; i < st->n_counts; i++)
        if (st->counts[i].status == d->status && strcmp(st->counts[i].route, d->route) == 0 &&
            strcmp(st->counts[i].method, d->method) == 0)
            break;
    if (i == st->n_counts) {
        count_row *g = grow(st->counts, &st->n_counts, &st->cap_counts, sizeof *g);
        if (g) {
            st->counts = g;
            count_row *c = &g[st->n_counts++];
            memset(c, 0, sizeof *c);
            snprintf(c->method, sizeof c->method, "%s", d->method);
            c->route = d->route;
            c->status = d->status;
        }
    }
    if (i < st->n_counts) st->counts[i].count++;

    int k = 0;
    for (; k < st->n_latencies; k++)
        if (strcmp(st->latencies[k].route, d->route) == 0 && strcmp(st->latencies[k].method, d->method) == 0) break;
    if (k == st->n_latencies) {
        latency_row *g = grow(st->latencies, &st->n_latencies, &st->cap_latencies, sizeof *g);
        if (g) {
            st->latencies = g;
            latency_row *l = &g[st->n_latencies++];
            snprintf(l->method, sizeof l->method, "%s", d->method);
            l->route = d->route;
            ns_histogram_init(&l->latency, latency_bounds, (int)(sizeof latency_bounds / sizeof latency_bounds[0]));
        }
    }
    if (k < st->n_latencies) ns_histogram_observe(&st->latencies[k].latency, d->seconds);
    pthread_mutex_unlock(&st->mu);
}

void ns_request_stats_prometheus(ns_request_stats *st, ns_buf *out) {
    pthread_mutex_lock(&st->mu);
    ns_prom_family(out, "nstack_http_requests_total", "counter", "HTTP requests answered, by method, route and status.");
    for (int i = 0; i < st->n_counts; i++) {
        const count_row *c = &st->counts[i];
        ns_prom_labels l;
        char status[16];
        snprintf(status, sizeof status, "%d", c->status);
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "method", c->method);
        ns_prom_label(&l, "route", c->route);
        ns_prom_label(&l, "status", status);
        ns_prom_sample(out, "nstack_http_requests_total", &l, (double)c->count);
    }
    ns_prom_family(out, "nstack_http_request_duration_seconds", "histogram",
                   "Time from a request's headers to the end of its response, streaming included.");
    for (int i = 0; i < st->n_latencies; i++) {
        ns_prom_labels l;
        ns_prom_labels_init(&l);
        ns_prom_label(&l, "method", st->latencies[i].method);
        ns_prom_label(&l, "route", st->latencies[i].route);
        ns_prom_histogram(out, "nstack_http_request_duration_seconds", &l, &st->latencies[i].latency);
    }
    pthread_mutex_unlock(&st->mu);
}
