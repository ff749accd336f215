/* The HTTP layer: libmicrohttpd in thread-per-connection mode behind a small
 * request/response API, so routes never see MHD.
 *
 * A route gets an ns_http_req whose body is complete (bodies over the limit
 * were answered 413 before any route ran), and answers it exactly once with
 * one of the ns_http_respond* calls. A route may block (each connection has
 * its own thread); while it waits on a long job it polls
 * ns_http_client_gone() to notice a client that went away. Every response
 * carries X-Request-Id. */
#ifndef NS_SERVER_HTTP_H
#define NS_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef struct ns_http_req ns_http_req;
typedef struct ns_http_server ns_http_server;

/* A growable byte buffer (streaming callbacks append to one). */
typedef struct {
    char *data;
    size_t len, cap;
} ns_buf;
int ns_buf_append(ns_buf *b, const void *p, size_t n);
int ns_buf_printf(ns_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ns_buf_free(ns_buf *b);

const char *ns_http_method(const ns_http_req *r); /* "GET", "POST", ... */
const char *ns_http_path(const ns_http_req *r);   /* without the query string */
const char *ns_http_header(const ns_http_req *r, const char *name); /* case-insensitive; NULL if absent */
const char *ns_http_query(const ns_http_req *r, const char *key);   /* decoded; NULL if absent */
const char *ns_http_body(const ns_http_req *r, size_t *len);        /* NUL-terminated; "" when none */
const char *ns_http_request_id(const ns_http_req *r);
const char *ns_http_peer(const ns_http_req *r); /* "127.0.0.1:53412" */
/* True once the client closed its connection (checked without blocking). */
bool ns_http_client_gone(ns_http_req *r);

/* Adds a response header (before the respond call). */
void ns_http_add_header(ns_http_req *r, const char *name, const char *value);

/* Answers with a copy of body. Returns 0, or -1 when the response could not
 * be queued (the connection is dropped). */
int ns_http_respond(ns_http_req *r, int status, const char *content_type, const char *body, size_t len);
/* Answers with json printed unformatted; frees json. */
int ns_http_respond_json(ns_http_req *r, int status, cJSON *json);
/* {"error": "<message>"}: the shape Ollama's API uses. Logged once at warn
 * (4xx) or error (5xx) level with the request id. */
int ns_http_respond_error(ns_http_req *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Streaming (chunked transfer encoding). fn is called on the connection's
 * thread whenever the connection can take more bytes; it may block until it
 * has some, appends them to out and returns NS_STREAM_MORE, or NS_STREAM_END
 * after the last bytes. done is called exactly once when the response is
 * over: normally, or because the client went away or the server is stopping
 * (client_gone true); free user there. If this call fails, done is called
 * before it returns. */
enum { NS_STREAM_MORE = 0, NS_STREAM_END = 1 };
typedef int (*ns_stream_fn)(void *user, ns_buf *out);
typedef void (*ns_stream_done_fn)(void *user, bool client_gone);
int ns_http_respond_stream(ns_http_req *r, int status, const char *content_type, ns_stream_fn fn,
                           ns_stream_done_fn done, void *user);

typedef void (*ns_http_handler)(void *app, ns_http_req *r);

/* The route pattern a request matched (a string that outlives the request,
 * e.g. "/api/sessions/"), which metrics label it with; unset: "other". */
void ns_http_set_route(ns_http_req *r, const char *pattern);

/* What on_done hears once per request, when its response is over. */
typedef struct {
    const char *method;
    const char *route; /* ns_http_set_route's pattern or "other" */
    int status;        /* 0 when nothing was answered */
    double seconds;    /* from the headers to the end of the response */
    bool client_gone;
} ns_http_done;
typedef void (*ns_http_done_fn)(void *app, const ns_http_done *d);

typedef struct {
    const char *host;      /* "127.0.0.1", "0.0.0.0", "::1", "localhost" */
    int port;              /* 0: any free port (see ns_http_server_port) */
    size_t max_body;       /* bytes; larger bodies get 413 */
    int max_connections;   /* 0: 1024 */
    int connection_timeout_s; /* idle keep-alive connections close after this; 0: 300 */
    ns_http_done_fn on_done;  /* optional, called with the handler's app on the connection's thread */
} ns_http_config;

/* Starts listening; handler is called for every request with app. NULL and
 * err ("cannot listen on 127.0.0.1:11434: address in use") on failure. */
ns_http_server *ns_http_server_start(const ns_http_config *cfg, ns_http_handler handler, void *app, char *err,
                                     size_t errlen);
int ns_http_server_port(const ns_http_server *s);
/* Stops accepting new connections (open ones keep being served), so a
 * graceful stop can let requests in flight finish first. */
void ns_http_server_quiesce(ns_http_server *s);
/* Waits up to timeout_ns for every request in flight (handlers and streams)
 * to be over; returns how many are still going. */
int ns_http_server_wait_idle(ns_http_server *s, int64_t timeout_ns);
/* Stops accepting, ends open connections (streams see client_gone) and
 * joins every thread. */
void ns_http_server_stop(ns_http_server *s);

#endif
