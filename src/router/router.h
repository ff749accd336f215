/* The router (docs/router.md): one OpenAI- and Ollama-compatible endpoint
 * in front of a small and a big upstream, routing each request by the
 * policy of policy.h, passing streams through as they come, failing soft to
 * the small node when the big one cannot answer, and writing one audit line
 * per decision. `nstack route` runs it alone; `nstack serve --config` runs
 * it beside the server when the config has a [router] table. */
#ifndef NS_ROUTER_ROUTER_H
#define NS_ROUTER_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "router/config.h"

typedef struct ns_router ns_router;

/* Loads the tokenizer (when configured), opens the audit log, probes the
 * upstreams and the mode once, and starts listening on cfg->listen. */
ns_router *ns_router_start(const ns_router_config *cfg, char *err, size_t errlen);
int ns_router_port(const ns_router *r);
void ns_router_stop(ns_router *r); /* NULL ok */

/* How a request would be routed, without sending it: path is the front
 * route ("/v1/chat/completions", ...), headers "Name: value" lines. The
 * upstreams and the mode are probed once. *out: {"rule", "reason",
 * "upstream", "role", "signals", "mode", "estimate", ...}. 0, or -1 with
 * err (a bad config, an unknown path, a body that is not JSON). */
int ns_router_explain(const ns_router_config *cfg, const char *path, const char *body, const char *const *headers,
                      int n_headers, cJSON **out, char *err, size_t errlen);

#endif
