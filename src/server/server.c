/* The server application: owns the store, the event bus and the runtime,
 * and routes each request to its handler (routes.h).
 *
 * Stopping is ordered so that nothing touches a freed part: new requests
 * are refused (503) and the listener closed; requests in flight get the
 * grace period to finish; then the HTTP server is stopped, which shuts the
 * remaining connections down: routes see their client gone (http.h's
 * contract), cancel their jobs and release their models while the runtime
 * still exists, and every connection thread is joined. Only then are the
 * runtime (unloading the models), the store and the bus freed. Freeing the
 * runtime first would cancel blocked jobs sooner, but a route finishing
 * afterwards (releasing its model handle in its done callback) would touch
 * freed memory. */
#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "demo_model.h"
#include "mode.h"
#include "profile_state.h"
#include "routes.h"
#include "server.h"
#include "sessions.h"
#include "util/duration.h"
#include "util/log.h"

/* ---- host specs ---- */

int ns_server_parse_host(const char *spec, char *host, size_t hostlen, int *port, char *err, size_t errlen) {
    char buf[512];
    const char *s = spec ? spec : "";
    while (isspace((unsigned char)*s)) s++;
    snprintf(buf, sizeof buf, "%s", s);
    for (size_t n = strlen(buf); n && isspace((unsigned char)buf[n - 1]);) buf[--n] = '\0';

    /* Ollama's OLLAMA_HOST rules: the scheme sets the default port */
    int default_port = 11434;
    char *hp = buf, *sep = strstr(buf, "://");
    if (sep) {
        *sep = '\0';
        if (strcasecmp(buf, "http") == 0) default_port = 80;
        else if (strcasecmp(buf, "https") == 0) default_port = 443;
        else {
            snprintf(err, errlen, "invalid host '%s': the scheme must be http or https", spec);
            return -1;
        }
        hp = sep + 3;
    }
    char *slash = strchr(hp, '/');
    if (slash) *slash = '\0';

    const char *h = hp, *p = NULL;
    if (*hp == '[') { /* [v6]:port or [v6] */
        char *close = strchr(hp, ']');
        if (!close || (close[1] && close[1] != ':')) {
            snprintf(err, errlen, "invalid host '%s'", spec);
            return -1;
        }
        *close = '\0';
        h = hp + 1;
        if (close[1] == ':') p = close + 2;
    } else {
        char *colon = strchr(hp, ':');
        if (colon && !strchr(colon + 1, ':')) { /* exactly one colon: host:port */
            *colon = '\0';
            p = colon + 1;
        } /* several colons: a bare IPv6 address */
    }
    if (!*h) h = p ? "0.0.0.0" : "127.0.0.1"; /* ":port" listens everywhere, as Go's ":11434" does */
    if (strlen(h) >= hostlen) {
        snprintf(err, errlen, "invalid host '%s': name too long", spec);
        return -1;
    }
    snprintf(host, hostlen, "%s", h);
    *port = default_port;
    if (p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (!*p || *end || v < 0 || v > 65535) {
            snprintf(err, errlen, "invalid port in '%s': must be a number from 0 to 65535", spec);
            return -1;
        }
        *port = (int)v;
    }
    return 0;
}

/* ---- CORS, as Ollama answers browsers ---- */

static const char *const default_origins[] = {
    "http://localhost",      "https://localhost",      "http://localhost:*",      "https://localhost:*",
    "http://127.0.0.1",      "https://127.0.0.1",      "http://127.0.0.1:*",      "https://127.0.0.1:*",
    "http://0.0.0.0",        "https://0.0.0.0",        "http://0.0.0.0:*",        "https://0.0.0.0:*",
    "http://\\[::1\\]",      "http://\\[::1\\]:*",     "app://*",                 "file://*",
    "tauri://*",             "vscode-webview://*",     "vscode-file://*",
};

static bool origin_allowed(ns_http_req *r, const char *origin) {
    /* a page served by this server talks to it without being cross-origin */
    const char *host = ns_http_header(r, "Host");
    if (host) {
        char same[600];
        snprintf(same, sizeof same, "http://%s", host);
        if (strcmp(origin, same) == 0) return true;
        snprintf(same, sizeof same, "https://%s", host);
        if (strcmp(origin, same) == 0) return true;
    }
    for (size_t i = 0; i < sizeof default_origins / sizeof default_origins[0]; i++)
        if (fnmatch(default_origins[i], origin, 0) == 0) return true;
    /* NSTACK_ORIGINS: more patterns, comma-separated, '*' wildcards (OLLAMA_ORIGINS' rules) */
    const char *extra = getenv("NSTACK_ORIGINS");
    if (!extra) return false;
    char *copy = strdup(extra), *save = NULL;
    bool ok = false;
    for (char *tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !ok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok)) tok++;
        for (size_t n = strlen(tok); n && isspace((unsigned char)tok[n - 1]);) tok[--n] = '\0';
        ok = strcmp(tok, "*") == 0 || fnmatch(tok, origin, 0) == 0;
    }
    free(copy);
    return ok;
}

/* ---- routes ---- */

typedef struct {
    const char *method; /* GET also answers HEAD */
    const char *path;   /* ending in '/': a prefix (/v1/models/{id}) */
    ns_route_fn fn;
} route;

static const route routes[] = {
    {"GET", "/", ns_route_web},    /* the dashboard's page (routes_web.c) */
    {"GET", "/ui/", ns_route_web}, /* its other files */
    {"GET", "/health", ns_route_health},
    {"GET", "/api/version", ns_route_api_version},
    {"GET", "/api/tags", ns_route_api_tags},
    {"GET", "/api/ps", ns_route_api_ps},
    {"POST", "/api/show", ns_route_api_show},
    {"POST", "/api/pull", ns_route_api_pull},
    {"DELETE", "/api/delete", ns_route_api_delete},
    {"POST", "/api/copy", ns_route_api_copy},
    {"POST", "/api/load", ns_route_api_load},
    {"POST", "/api/unload", ns_route_api_unload},
    {"POST", "/api/generate", ns_route_api_generate},
    {"POST", "/api/chat", ns_route_api_chat},
    {"POST", "/v1/chat/completions", ns_route_v1_chat_completions},
    {"POST", "/v1/completions", ns_route_v1_completions},
    {"GET", "/v1/models", ns_route_v1_models},
    {"GET", "/v1/models/", ns_route_v1_models},
    {"GET", "/api/sessions", ns_route_api_sessions},
    {"POST", "/api/sessions", ns_route_api_sessions},
    {"GET", "/api/sessions/", ns_route_api_sessions},
    {"POST", "/api/sessions/", ns_route_api_sessions},
    {"DELETE", "/api/sessions/", ns_route_api_sessions},
    {"GET", "/api/events", ns_route_api_events},
    {"GET", "/metrics", ns_route_monitor},
    {"GET", "/api/resources", ns_route_monitor},
    {"GET", "/api/resources/history", ns_route_monitor},
    {"GET", "/api/metrics/generations", ns_route_monitor},
    {"GET", "/api/alerts", ns_route_monitor},
    {"GET", "/api/events/history", ns_route_monitor},
    {"POST", "/api/alerts", ns_route_monitor},
    {"GET", "/mode", ns_route_mode},
    {"PUT", "/mode", ns_route_mode},
    {"POST", "/mode", ns_route_mode}, /* for clients that cannot PUT */
    {"GET", "/api/profile", ns_route_api_profile},
    {"PUT", "/api/profile", ns_route_api_profile},
    {"POST", "/api/profile", ns_route_api_profile},
};

static bool path_matches(const char *pattern, const char *path) {
    size_t n = strlen(pattern);
    if (n > 1 && pattern[n - 1] == '/') return strncmp(path, pattern, n) == 0 && path[n] != '\0';
    return strcmp(pattern, path) == 0;
}

static bool method_matches(const char *route_method, const char *method) {
    return strcmp(route_method, method) == 0 || (strcmp(route_method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* "GET, HEAD, OPTIONS" for the path's routes; false when no route has the path. */
static bool allowed_methods(const char *path, char *buf, size_t len) {
    size_t j = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!path_matches(routes[i].path, path)) continue;
        j += (size_t)snprintf(buf + j, len - j, "%s, ", routes[i].method);
        if (strcmp(routes[i].method, "GET") == 0) j += (size_t)snprintf(buf + j, len - j, "HEAD, ");
        if (j >= len) j = len - 1;
    }
    if (j == 0) return false;
    snprintf(buf + j, len - j, "OPTIONS");
    return true;
}

static void dispatch(void *app, ns_http_req *r) {
    ns_server *s = app;
    const char *method = ns_http_method(r), *path = ns_http_path(r);

    const char *origin = ns_http_header(r, "Origin");
    if (origin && *origin) {
        if (!origin_allowed(r, origin)) {
            ns_http_respond_error(r, 403, "origin %s is not allowed (add it to NSTACK_ORIGINS)", origin);
            return;
        }
        ns_http_add_header(r, "Access-Control-Allow-Origin", origin);
        ns_http_add_header(r, "Vary", "Origin");
    }
    if (strcmp(method, "OPTIONS") == 0) {
        char allow[256];
        if (!allowed_methods(path, allow, sizeof allow)) snprintf(allow, sizeof allow, "OPTIONS");
        ns_http_add_header(r, "Allow", allow);
        if (origin && *origin) {
            const char *want = ns_http_header(r, "Access-Control-Request-Headers");
            ns_http_add_header(r, "Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS");
            ns_http_add_header(r, "Access-Control-Allow-Headers",
                               want && *want ? want
                                             : "Authorization, Content-Type, User-Agent, Accept, X-Requested-With");
            ns_http_add_header(r, "Access-Control-Max-Age", "43200");
        }
        ns_http_respond(r, 204, NULL, "", 0);
        return;
    }
    if (atomic_load(&s->stopping)) {
        ns_http_add_header(r, "Connection", "close");
        ns_http_respond_error(r, 503, "server is shutting down");
        return;
    }
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (path_matches(routes[i].path, path) && method_matches(routes[i].method, method)) {
            ns_http_set_route(r, routes[i].path);
            routes[i].fn(s, r);
            return;
        }
    }
    char allow[256];
    if (allowed_methods(path, allow, sizeof allow)) {
        ns_http_add_header(r, "Allow", allow);
        ns_http_respond_error(r, 405, "method %s is not allowed for %s (allowed: %s)", method, path, allow);
        return;
    }
    ns_http_respond_error(r, 404, "not found: %s %s", method, path);
}

void ns_route_respond_model_error(ns_http_req *r, const char *model, int status, const char *err) {
    if (status == 404) ns_http_respond_error(r, 404, "model \"%s\" not found, try pulling it first", model);
    else ns_http_respond_error(r, status ? status : 500, "%s", err);
}

int ns_route_get_string(ns_http_req *r, const cJSON *body, const char *key, const char *def, const char **out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        ns_http_respond_error(r, 400, "%s must be a string", key);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

int ns_route_get_bool(ns_http_req *r, const cJSON *body, const char *key, bool def, bool *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, key);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        ns_http_respond_error(r, 400, "%s must be true or false", key);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

void ns_route_add_i64(cJSON *o, const char *key, int64_t v) {
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    cJSON_AddRawToObject(o, key, buf);
}

void ns_route_add_time(cJSON *o, const char *key, int64_t wall_ns) {
    char ts[64];
    ns_time_format_rfc3339(wall_ns, ts, sizeof ts);
    cJSON_AddStringToObject(o, key, ts);
}

cJSON *ns_route_parse_body(ns_http_req *r) {
    size_t len;
    const char *body = ns_http_body(r, &len);
    size_t start = 0;
    while (start < len && isspace((unsigned char)body[start])) start++;
    if (start == len) {
        ns_http_respond_error(r, 400, "missing request body");
        return NULL;
    }
    /* the _Opts form reports where parsing stopped without cJSON's global
     * (and thread-unsafe) error pointer */
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(body, len, &end, false);
    size_t at = end ? (size_t)(end - body) : 0;
    if (!j) {
        if (at >= len) ns_http_respond_error(r, 400, "invalid JSON at byte %zu: unexpected end of input", at);
        else if (isprint((unsigned char)body[at]))
            ns_http_respond_error(r, 400, "invalid JSON at byte %zu: unexpected '%c'", at, body[at]);
        else ns_http_respond_error(r, 400, "invalid JSON at byte %zu: unexpected byte 0x%02x", at, (unsigned char)body[at]);
        return NULL;
    }
    while (at < len && isspace((unsigned char)body[at])) at++;
    if (at < len) {
        cJSON_Delete(j);
        ns_http_respond_error(r, 400, "invalid JSON at byte %zu: unexpected data after the value", at);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        ns_http_respond_error(r, 400, "request body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ---- lifecycle ---- */

static void http_done(void *app, const ns_http_done *d) {
    ns_server *s = app;
    ns_observe_http_done(s->observe, d);
}

static void free_parts(ns_server *s) {
    ns_observe_stop_sampler(s->observe);
    if (s->rt) ns_runtime_free(s->rt, 0);
    ns_observe_stop(s->observe); /* after the runtime's last events */
    if (s->store) ns_store_close(s->store);
    ns_sessions_free(s->sessions);
    ns_mode_free(s->mode);
    ns_profile_state_free(s->profile);
    if (s->events) ns_events_free(s->events);
    free(s);
}

static int preload(ns_server *s, const char *name, char *err, size_t errlen) {
    ns_load_opts opts = {0};
    opts.num_gpu = -1;
    int64_t load_ns = 0;
    int status = 0;
    char lerr[512];
    ns_loaded *lm = ns_runtime_acquire(s->rt, name, &opts, &load_ns, &status, lerr, sizeof lerr);
    if (!lm) {
        snprintf(err, errlen, "cannot preload %s: %s", name, lerr);
        return -1;
    }
    ns_runtime_release(s->rt, lm, NS_KEEP_ALIVE_DEFAULT);
    ns_log_info("server", "preloaded model", "model=%s ms=%lld", name, (long long)(load_ns / 1000000));
    return 0;
}

ns_server *ns_server_start(const ns_server_config *cfg, char *err, size_t errlen) {
    ns_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    atomic_init(&s->stopping, false);
    s->started_at = ns_now_wall();

    char host[256];
    int port;
    const char *spec = cfg->host ? cfg->host : getenv("NSTACK_HOST");
    if (ns_server_parse_host(spec && *spec ? spec : "127.0.0.1:11434", host, sizeof host, &port, err, errlen) != 0)
        goto fail;

    if (!(s->store = ns_store_open(cfg->models_dir, cfg->ollama_dir, err, errlen))) goto fail;
    if (!(s->events = ns_events_new())) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (!(s->sessions = ns_sessions_new(s->events, 0))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    /* before the listener, so the first GET /mode already answers what the state file says */
    if (!(s->mode = ns_mode_open(NULL, s->events))) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    ns_runtime_config rc = cfg->runtime;
    /* the active profile's settings over the flags' (profile_state.h) */
    if (!(s->profile = ns_profile_state_open(NULL, NULL, cfg->profile, &cfg->runtime, &rc, s->events, err, errlen)))
        goto fail;
    rc.store = s->store;
    rc.events = s->events;
    if (!(s->rt = ns_runtime_new(&rc, err, errlen))) goto fail;
    if (!(s->observe = ns_observe_start(&cfg->observe, s->events, s->rt, err, errlen))) goto fail;
    if (cfg->create_demo && ns_demo_model_ensure(s->store, err, errlen) < 0) goto fail;
    if (cfg->default_model && *cfg->default_model && preload(s, cfg->default_model, err, errlen) != 0) goto fail;

    ns_http_config hc = {.host = host, .port = port, .max_body = cfg->max_body ? cfg->max_body : 32u << 20,
                         .on_done = http_done};
    s->cfg.max_body = hc.max_body;
    if (!(s->http = ns_http_server_start(&hc, dispatch, s, err, errlen))) goto fail;
    bool v6 = strchr(host, ':') != NULL;
    char msg[320];
    snprintf(msg, sizeof msg, "listening on http://%s%s%s:%d", v6 ? "[" : "", host, v6 ? "]" : "",
             ns_http_server_port(s->http));
    ns_log_info("server", msg, "models=\"%s\" version=%s", ns_store_dir(s->store), NSTACK_VERSION);
    return s;
fail:
    free_parts(s);
    return NULL;
}

int ns_server_port(const ns_server *s) { return ns_http_server_port(s->http); }

void ns_server_stop(ns_server *s, int64_t grace_ns) {
    if (!s) return;
    int64_t t0 = ns_now_mono();
    atomic_store(&s->stopping, true);
    ns_http_server_quiesce(s->http);
    int left = ns_http_server_wait_idle(s->http, grace_ns);
    if (left > 0) ns_log_info("server", "cancelling requests still running", "requests=%d", left);
    ns_http_server_stop(s->http);
    s->http = NULL;
    free_parts(s); /* the runtime has no jobs left: it unloads at once */
    ns_log_info("server", "stopped", "ms=%lld", (long long)((ns_now_mono() - t0) / 1000000));
}
