/* Talking to local AI runtimes over HTTP (libcurl) for detection and the
 * `nstack ai` / `nstack vram` commands: a plain request helper with a
 * short timeout, and the Ollama API calls that list, unload and preload
 * models. `nstack serve` speaks the same API, so all of these work against
 * it too.
 *
 * Every call takes the base URL ("http://127.0.0.1:11434", no trailing
 * '/') and a timeout in milliseconds for the whole request. Proxies from
 * the environment are ignored: these are loopback calls, and an
 * http_proxy meant for the internet must not swallow them. */
#ifndef NS_DETECT_OLLAMA_CLIENT_H
#define NS_DETECT_OLLAMA_CLIENT_H

#include <stddef.h>

#include "detect/detect.h"

/* One request; body NULL sends none (a body is sent as JSON). On any HTTP
 * answer returns 0 with *status and *out (malloc'd, NUL-terminated, may be
 * empty; the caller frees it; out may be NULL). -1 with err when nothing
 * answered (refused, timed out). */
int ns_http_request(const char *method, const char *url, const char *body, int timeout_ms, long *status, char **out,
                    size_t *outlen, char *err, size_t errlen);

/* GET /api/version: the "version" string. 0, or -1 with err (no answer,
 * not 200, not JSON with a "version" string). */
int ns_ollama_version(const char *base, int timeout_ms, char *version, size_t vlen, char *err, size_t errlen);

/* GET /api/ps: up to max loaded models into models (name, size, size_vram,
 * expires_at, active: nstack's active_requests + queued_requests, -1 when
 * the runtime does not say). *n gets how many. 0, or -1 with err. */
int ns_ollama_ps(const char *base, int timeout_ms, ns_ai_model *models, int max, int *n, char *err, size_t errlen);

/* POST /api/generate {"model": model, "keep_alive": 0}: unloads it (not
 * loaded is no error for the runtime). 0, or -1 with err (the runtime's
 * "error" message when it sent one). */
int ns_ollama_unload(const char *base, const char *model, int timeout_ms, char *err, size_t errlen);

/* POST /api/generate {"model": model} with no prompt: loads it and keeps it
 * for the runtime's default keep-alive. Loading a big model is slow: give a
 * long timeout. 0, or -1 with err. */
int ns_ollama_preload(const char *base, const char *model, int timeout_ms, char *err, size_t errlen);

#endif
