/* A small HTTP client (libcurl) for the commands that talk to a running
 * `nstack serve` (or Ollama): JSON requests, JSON or NDJSON answers, and
 * errors that say what went wrong and what to do:
 *
 *   cannot reach the server at http://127.0.0.1:11434: connection refused (is `nstack serve` running?)
 *
 * One client holds one connection that later requests reuse. Not
 * thread-safe: one client per thread. */
#ifndef NS_CLI_CLIENT_H
#define NS_CLI_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#define CLIENT_DEFAULT_HOST "127.0.0.1:11434"

/* The base URL ("http://host:port", plus a path prefix when the spec has
 * one, never a trailing '/') for a host spec in OLLAMA_HOST's forms: "host",
 * "host:port", "[::1]:port", "http://host:port", "https://host". The port
 * defaults to 11434 (443 for https), as `nstack serve` listens; a server
 * listening on every address (0.0.0.0, ::) is reached on loopback.
 * Returns 0, or -1 with err. */
int client_base_url_for(const char *spec, char *url, size_t urllen, char *err, size_t errlen);

/* The spec the commands use: --host's value when given, else NSTACK_HOST,
 * else CLIENT_DEFAULT_HOST. */
const char *client_host_spec(const char *host_opt);

typedef struct client client;

/* NULL with err for a bad host spec or no memory. */
client *client_open(const char *host_spec, char *err, size_t errlen);
void client_close(client *c);
/* client_open for a command: NS_EXIT_OK with *c, or the exit code after
 * saying why on stderr (a bad host spec is a usage error). */
int client_open_cli(const char *host_spec, client **c);
const char *client_url(const client *c); /* the base URL */
/* A limit on each whole request from now on, in ms (0, the default: none;
 * generations may take as long as they take). */
void client_set_timeout(client *c, long timeout_ms);

/* One request with a JSON body (body NULL: none). On a 2xx answer returns 0
 * and *out (when out is not NULL) gets the parsed body, NULL when it is
 * empty or not JSON (the caller frees it). Returns -1 with err when the
 * server cannot be reached, or answers an error: then err is the server's
 * "error" message when it sent one. */
int client_call(client *c, const char *method, const char *path, const cJSON *body, cJSON **out, char *err,
                size_t errlen);

/* A request whose answer is NDJSON (a non-streaming answer is one line):
 * fn gets each line's object in order; it returns 0 to go on, nonzero to
 * stop reading (client_stream then returns 0). A line {"error": "..."} ends
 * the stream: -1 with that message. Errors otherwise as client_call's. */
typedef int (*client_line_fn)(void *user, const cJSON *line);
int client_stream(client *c, const char *method, const char *path, const cJSON *body, client_line_fn fn, void *user,
                  char *err, size_t errlen);

/* About the last request: the HTTP status (0 when none came), and whether
 * the error came from the server as a JSON {"error"} (false: unreachable,
 * or an answer that was not ours, such as "404 page not found" from an
 * older server). */
int client_last_status(const client *c);
bool client_last_error_from_server(const client *c);

#endif
