/* Downloading a GGUF file from an http(s) URL into our store (libcurl):
 * /api/pull and `nstack pull`. */
#ifndef NS_RUNTIME_PULL_H
#define NS_RUNTIME_PULL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Called as the download goes: status is one of "pulling manifest",
 * "downloading", "verifying sha256 digest", "writing manifest", "success"
 * (Ollama's words); total/completed in bytes for "downloading" (total 0 when
 * the server did not say), digest "sha256:..." once known or "". At most
 * about 10 calls a second while downloading. Return nonzero to cancel. */
typedef int (*ns_pull_progress_fn)(void *user, const char *status, const char *digest, int64_t total,
                                   int64_t completed);

/* Downloads url and imports it under name. The file must start with the
 * GGUF magic and parse as GGUF (checked before it is stored); a partial file
 * is removed on any failure. cancel may be NULL. Returns 0, or -1 with err
 * ("HTTP 404 from <url>", "not a GGUF file", "cancelled", ...). */
int ns_pull(ns_store *s, const char *name, const char *url, ns_pull_progress_fn fn, void *user,
            atomic_bool *cancel, char *err, size_t errlen);

/* The name a URL gives when none is asked for: the file name without
 * .gguf, lower-cased, other characters made '-', tag "latest". */
void ns_pull_name_from_url(const char *url, char *buf, size_t buflen);

#endif
