#include "router/policy.h"

#include <stdio.h>

const char *ns_node_mode_name(ns_node_mode m) {
    switch (m) {
    case NS_NODE_NORMAL: return "NORMAL";
    case NS_NODE_GAMING: return "GAMING";
    default: return "UNREACHABLE";
    }
}

static void pick(ns_route_decision *d, int upstream, const char *rule) {
    d->upstream = upstream;
    d->rule = rule;
}

/* Where the policy's choice of big lands when big is down. */
static void big_or_fail_soft(const ns_router_config *c, const ns_route_input *in, ns_route_decision *d,
                             const char *rule, const char *why) {
    if (in->big_healthy) {
        pick(d, c->big, rule);
        snprintf(d->reason, sizeof d->reason, "%s: big", why);
    } else {
        pick(d, c->small, "fail_soft");
        snprintf(d->reason, sizeof d->reason, "%s, but the big node is unhealthy: small", why);
    }
}

void ns_route_decide(const ns_router_config *c, const ns_route_input *in, ns_route_decision *d) {
    d->reason[0] = '\0';
    const char *force = in->force_header ? "the force header" : in->force_model ? "the force model alias"
                        : in->force_tag  ? "the force tag"
                                         : NULL;
    if (force) {
        char why[128];
        snprintf(why, sizeof why, "%s asks for big", force);
        big_or_fail_soft(c, in, d, "force_big", why);
    } else if (in->mode != NS_NODE_NORMAL) {
        bool gaming = in->mode == NS_NODE_GAMING;
        pick(d, c->small, gaming ? "gaming" : "mode_unreachable");
        snprintf(d->reason, sizeof d->reason, "%s: small",
                 gaming ? "the big node is in GAMING mode" : "the big node's mode endpoint is unreachable, taken as GAMING");
    } else if (in->est_tokens >= c->token_threshold) {
        char why[128];
        snprintf(why, sizeof why, "NORMAL mode and ~%ld prompt tokens >= %d", in->est_tokens, c->token_threshold);
        big_or_fail_soft(c, in, d, "threshold", why);
    } else if (in->regex_match) {
        big_or_fail_soft(c, in, d, "force_regex", "NORMAL mode and the prompt matches the force regex");
    } else {
        pick(d, c->small, "below_threshold");
        snprintf(d->reason, sizeof d->reason, "NORMAL mode and ~%ld prompt tokens < %d: small", in->est_tokens,
                 c->token_threshold);
    }
    if (d->upstream == c->small && !in->small_healthy) {
        /* never load a gaming machine because the small one is down */
        if (in->mode == NS_NODE_NORMAL && in->big_healthy) {
            pick(d, c->big, "small_unhealthy");
            snprintf(d->reason, sizeof d->reason, "the small node is unhealthy and the big one is in NORMAL mode: big");
        } else {
            pick(d, -1, "no_upstream");
            snprintf(d->reason, sizeof d->reason, "the small node is unhealthy and the big one is %s",
                     !in->big_healthy ? "unhealthy too" : "not in NORMAL mode");
        }
    }
}
