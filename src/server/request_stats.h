/* HTTP request counts and latencies for /metrics: counts by method, route
 * pattern and status, and a latency histogram per method and route. Fed by
 * the HTTP layer's on_done hook; thread-safe. The route patterns come from
 * the server's route table, so the label sets stay few whatever paths
 * clients send. */
#ifndef NS_SERVER_REQUEST_STATS_H
#define NS_SERVER_REQUEST_STATS_H

#include "http.h"

typedef struct ns_request_stats ns_request_stats;

ns_request_stats *ns_request_stats_new(void);
void ns_request_stats_free(ns_request_stats *st);
void ns_request_stats_add(ns_request_stats *st, const ns_http_done *d);

/* Appends nstack_http_requests_total and
 * nstack_http_request_duration_seconds (Prometheus text format). */
void ns_request_stats_prometheus(ns_request_stats *st, ns_buf *out);

#endif
