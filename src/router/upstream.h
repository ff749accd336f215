/* The upstreams' health and the big node's mode, kept fresh by one thread
 * so that routing a request never waits on a probe: health checks every
 * health_interval (a failing node is probed less and less often, doubling
 * up to health_backoff_max, and comes back on its first good answer), the
 * mode every mode_poll. A request that cannot reach a node marks it down
 * at once (passive health), without waiting for the next probe.
 *
 * Probes: GET /api/version (nstack, ollama) or /v1/models (openai) must
 * answer 200; GET mode_url must answer {"mode": "NORMAL" | "GAMING"}. */
#ifndef NS_ROUTER_UPSTREAM_H
#define NS_ROUTER_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "router/config.h"
#include "router/policy.h"

typedef struct {
    bool healthy;
    int failures;          /* in a row */
    int64_t checked_at;    /* wall ns of the last probe; 0 never */
    double probe_ms;       /* the last probe's time */
    char error[256];       /* why the last probe failed; "" */
} ns_upstream_health;

typedef struct ns_upstreams ns_upstreams;

/* Probes every node and the mode once (so the first request sees real
 * state), then starts the thread unless one_shot (--explain). The config
 * must outlive the result. NULL only when out of memory or no thread. */
ns_upstreams *ns_upstreams_start(const ns_router_config *c, bool one_shot, char *err, size_t errlen);
void ns_upstreams_stop(ns_upstreams *u); /* NULL ok */

bool ns_upstream_healthy(ns_upstreams *u, int i);
void ns_upstream_health_of(ns_upstreams *u, int i, ns_upstream_health *out);
/* A request failed to reach node i: it is down until a probe says otherwise. */
void ns_upstream_mark_down(ns_upstreams *u, int i, const char *why);

/* The big node's mode as last polled; why gets the reason when UNREACHABLE. */
ns_node_mode ns_upstreams_mode(ns_upstreams *u, char *why, size_t whylen);

#endif
