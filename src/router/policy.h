/* The routing policy of DESIGN.md §3, as one pure function: the signals a
 * request carries and the state of the nodes in, the upstream and the rule
 * that chose it out. No I/O, so every path is unit-tested and
 * `nstack route --explain` runs the very same code. In order:
 *
 *   1. a force signal (header, model alias, prompt tag) → big, if healthy;
 *   2. the big node's mode GAMING, or its mode endpoint unreachable (the
 *      safe side) → small;
 *   3. NORMAL: estimated prompt tokens >= threshold, or the force regex
 *      matches → big; else small;
 *   4. big chosen but unhealthy → small (fail soft).
 *
 * A small node that is down sends NORMAL traffic to a healthy big node
 * (rule small_unhealthy); in GAMING (or with the mode unknown) it never
 * does: the answer is 503 (rule no_upstream). */
#ifndef NS_ROUTER_POLICY_H
#define NS_ROUTER_POLICY_H

#include <stdbool.h>

#include "router/config.h"

typedef enum { NS_NODE_NORMAL, NS_NODE_GAMING, NS_NODE_UNREACHABLE } ns_node_mode;

const char *ns_node_mode_name(ns_node_mode m); /* "NORMAL", "GAMING", "UNREACHABLE" */

typedef struct {
    bool force_header, force_model, force_tag; /* force-big signals seen */
    bool regex_match;
    long est_tokens;
    ns_node_mode mode;
    bool small_healthy, big_healthy;
} ns_route_input;

typedef struct {
    int upstream;      /* index into the config's upstreams; -1: none (503) */
    const char *rule;  /* force_big, gaming, mode_unreachable, threshold, force_regex, below_threshold,
                        * fail_soft, small_unhealthy, no_upstream */
    char reason[256];  /* the rule in words, for the audit log and --explain */
} ns_route_decision;

void ns_route_decide(const ns_router_config *c, const ns_route_input *in, ns_route_decision *out);

#endif
