/* The route modules. Each handler answers its request exactly once. */
#ifndef NS_SERVER_ROUTES_H
#define NS_SERVER_ROUTES_H

#include "server.h"

typedef void (*ns_route_fn)(ns_server *s, ns_http_req *r);

/* routes_ollama.c: /api/generate, /api/chat */
void ns_route_api_generate(ns_server *s, ns_http_req *r);
void ns_route_api_chat(ns_server *s, ns_http_req *r);

/* routes_models.c: model management and info */
void ns_route_api_tags(ns_server *s, ns_http_req *r);
void ns_route_api_ps(ns_server *s, ns_http_req *r);
void ns_route_api_show(ns_server *s, ns_http_req *r);
void ns_route_api_version(ns_server *s, ns_http_req *r);
void ns_route_api_pull(ns_server *s, ns_http_req *r);
void ns_route_api_delete(ns_server *s, ns_http_req *r);
void ns_route_api_copy(ns_server *s, ns_http_req *r);
void ns_route_api_load(ns_server *s, ns_http_req *r);   /* POST /api/load {"model", "options", "keep_alive"} (ours) */
void ns_route_api_unload(ns_server *s, ns_http_req *r); /* POST /api/unload {"model"} or {"all": true} (ours) */
void ns_route_health(ns_server *s, ns_http_req *r);     /* GET /health */

/* routes_openai.c */
void ns_route_v1_chat_completions(ns_server *s, ns_http_req *r);
void ns_route_v1_completions(ns_server *s, ns_http_req *r);
void ns_route_v1_models(ns_server *s, ns_http_req *r);  /* GET /v1/models and /v1/models/{id} */

/* routes_sessions.c: GET/POST /api/sessions, GET/DELETE /api/sessions/{id},
 * POST /api/sessions/{id}/{clear,truncate,snapshot}, GET /api/sessions/snapshots,
 * GET/DELETE /api/sessions/snapshots/{name}, POST /api/sessions/snapshots/{name}/restore
 * (docs/sessions.md) */
void ns_route_api_sessions(ns_server *s, ns_http_req *r);

/* routes_monitor.c: GET /metrics, /api/resources, /api/resources/history,
 * /api/metrics/generations, GET/POST /api/alerts (docs/observability.md) */
void ns_route_monitor(ns_server *s, ns_http_req *r);

/* routes_events.c: GET /api/events (Server-Sent Events, docs/observability.md) */
void ns_route_api_events(ns_server *s, ns_http_req *r);

/* routes_mode.c: GET /mode, PUT (or POST) /mode {"mode": "GAMING"} (docs/api.md) */
void ns_route_mode(ns_server *s, ns_http_req *r);

/* routes_profile.c: GET /api/profile, PUT (or POST) /api/profile {"name": "batch_inference"} (docs/api.md) */
void ns_route_api_profile(ns_server *s, ns_http_req *r);

/* routes_web.c: the dashboard, GET / (web/index.html) and GET /ui/{file}
 * (the other files of web/), embedded at build time (docs/dashboard.md) */
void ns_route_web(ns_server *s, ns_http_req *r);

/* Helpers shared by the route modules (server.c). */

/* Parses the body as a JSON object. NULL after answering 400 ("invalid JSON
 * at byte 17: ..." / "request body must be a JSON object"). */
cJSON *ns_route_parse_body(ns_http_req *r);

/* A field of a request body: absent or null gives def; any other type
 * answers 400 naming the field ("stream must be true or false") and
 * returns -1. */
int ns_route_get_string(ns_http_req *r, const cJSON *body, const char *key, const char *def, const char **out);
int ns_route_get_bool(ns_http_req *r, const cJSON *body, const char *key, bool def, bool *out);

/* o[key] = v as a JSON integer, exact beyond 2^53 (cJSON numbers are doubles). */
void ns_route_add_i64(cJSON *o, const char *key, int64_t v);

/* o[key] = the wall-clock time as RFC 3339, the form Ollama's API uses. */
void ns_route_add_time(cJSON *o, const char *key, int64_t wall_ns);

/* A model that could not be used, in Ollama's words: 404 "model \"x\" not
 * found, try pulling it first", else status (500 when 0) with err. */
void ns_route_respond_model_error(ns_http_req *r, const char *model, int status, const char *err);

#endif
