/* `nstack serve`: the application behind the HTTP layer. Owns the store,
 * the event bus and the runtime, and dispatches requests to the route
 * modules (routes.h). */
#ifndef NS_SERVER_SERVER_H
#define NS_SERVER_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"
#include "observe.h"
#include "runtime/events.h"
#include "runtime/runtime.h"
#include "runtime/store.h"

typedef struct {
    const char *host;        /* NULL: NSTACK_HOST or 127.0.0.1:11434; accepts "host", "host:port", "http://host:port" */
    const char *models_dir;  /* NULL: store default */
    const char *ollama_dir;  /* NULL: store default */
    const char *default_model; /* model /api/generate etc. fall back to when none is named? No: Ollama requires
                                * a model; this is only what `serve` preloads. NULL: none */
    size_t max_body;         /* 0: 32 MiB */
    bool create_demo;        /* create the demo model (demo_model.h) when the store has none */
    const char *snapshot_dir; /* session snapshots; NULL: ns_snapshot_dir() (NSTACK_SNAPSHOTS or the data dir) */
    ns_runtime_config runtime;
    const char *profile;     /* `serve --profile NAME`: this run's profile, over the state file's; NULL: the file's */
    ns_observe_config observe; /* db_path NULL: the default file; tests pass "off" or their own */
} ns_server_config;

typedef struct ns_server {
    ns_server_config cfg;
    ns_store *store;
    ns_events *events;
    ns_runtime *rt;
    ns_http_server *http;
    struct ns_sessions *sessions; /* sessions.h */
    struct ns_mode *mode;         /* mode.h: NORMAL or GAMING, for the router */
    struct ns_profile_state *profile; /* profile_state.h: the active profile */
    ns_observe *observe;
    int64_t started_at;      /* wall ns */
    atomic_bool stopping;
} ns_server;

/* Parses "host", "host:port", "[::1]:port", "http://host:port" (Ollama's
 * OLLAMA_HOST rules; default port 11434). */
int ns_server_parse_host(const char *spec, char *host, size_t hostlen, int *port, char *err, size_t errlen);

ns_server *ns_server_start(const ns_server_config *cfg, char *err, size_t errlen);
int ns_server_port(const ns_server *s);
/* Graceful: stop accepting, let generations finish for up to grace_ns,
 * cancel the rest, unload models, free everything. */
void ns_server_stop(ns_server *s, int64_t grace_ns);

#endif
